//! 2-D convolution on float32 slices in burn's NCHW layout: the forward pass and both
//! gradients as one matrix product per image, split over rayon threads by image.
//!
//! For one image with `C` input channels and a `kh × kw` kernel, the patch matrix
//! `col[(c, i, j), p]` (`K = C·kh·kw` rows, one column per output pixel `p`) holds the input
//! value under kernel tap `(i, j)` of channel `c` at output pixel `p` (zero in the padding).
//! With the weight `W` as an `O × K` matrix:
//!
//! - forward: `y = W · col(x) + b`
//! - input gradient: `dx = col2im(Wᵀ · dy)`, where `col2im` adds each patch entry back onto
//!   the input pixel it was read from
//! - weight gradient: `dW = Σ_images dy · col(x)ᵀ`; bias gradient `db = Σ_images, pixels dy`.
//!
//! The transposed convolution is the adjoint of the convolution with the same weight (burn's and
//! PyTorch's definition): its forward pass is the input gradient above, and its gradients are
//! the convolution's forward pass and weight gradient with the roles of the tensors swapped.
//!
//! burn-flex 0.22 runs the weight gradient as a convolution whose "kernel" is the whole output
//! gradient (one 64 × 19600 × 9 product per input channel for the conv VAE) and the input
//! gradient through an NHWC copy and a scatter; here every product is one well-shaped
//! matrix multiplication per image.
//!
//! [`forward`] and [`weight_grad`] send 3 × 3, stride-1 geometries to
//! [`winograd`] (16+ channels on both sides) or [`direct`] (at most 4 on one side), and the
//! rest to `implicit` on CPUs with AVX-512
//! (the products read the padded image in place); the patch-matrix versions are
//! [`patch_forward`] and [`patch_weight_grad`].

mod direct;
#[cfg(target_arch = "x86_64")]
mod implicit;
mod winograd;

use rayon::prelude::*;

pub(crate) use crate::layer::ConvGeometry as Geometry;

impl Geometry {
    /// Rows of the zero-padded image that the kernel reads: `(oh − 1)·sh + kh`.
    pub(super) fn padded_h(&self) -> usize {
        (self.oh - 1) * self.sh + self.kh
    }

    /// Columns of the zero-padded image that the kernel reads: `(ow − 1)·sw + kw`.
    pub(super) fn padded_w(&self) -> usize {
        (self.ow - 1) * self.sw + self.kw
    }

    /// Each padded row is stored split by column phase: columns `φ, φ + sw, φ + 2sw, …` for
    /// `φ = 0 … sw − 1`, each phase `phase_len()` long. A kernel tap `j` then reads
    /// `phase j mod sw` from `j div sw` on: a contiguous run at every stride.
    pub(super) fn phase_len(&self) -> usize {
        self.padded_w().div_ceil(self.sw)
    }

    /// Values of one stored padded row: `sw · phase_len()`.
    pub(super) fn row_len(&self) -> usize {
        self.sw * self.phase_len()
    }

    /// Where padded column `px` is stored within its row.
    #[inline(always)]
    pub(super) fn column(&self, px: usize) -> usize {
        (px % self.sw) * self.phase_len() + px / self.sw
    }

    /// Values of one zero-padded image.
    pub(super) fn padded(&self) -> usize {
        self.c * self.padded_h() * self.row_len()
    }

    /// The part of the image inside the padded extent: rows `0..rows` and columns `0..cols`
    /// of the image land at rows `ph..` and columns `pw..` of the padded image.
    fn covered(&self) -> (usize, usize) {
        let rows = self.padded_h().saturating_sub(self.ph).min(self.h);
        let cols = self.padded_w().saturating_sub(self.pw).min(self.w);
        (rows, cols)
    }
}

/// What the forward kernels do to every output value `v` of channel `o` as they write it:
/// `v + bias[o]` (when there is a bias), then `max(0, ·)` when `relu`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
}

impl Epilogue<'_> {
    /// The bias of output channel `o` (0 without one).
    #[inline(always)]
    pub(super) fn bias_of(&self, o: usize) -> f32 {
        self.bias.map_or(0.0, |b| b[o])
    }

    /// The activation's floor for [`at_least`]: 0 for the ReLU, −∞ (no change) otherwise.
    /// One branch-free select in the kernels' inner loops, whichever the activation.
    #[inline(always)]
    pub(crate) fn floor(&self) -> f32 {
        if self.relu { 0.0 } else { f32::NEG_INFINITY }
    }

    /// The activation on every value of `t` (already with its bias).
    #[inline(always)]
    pub(crate) fn activate_all(&self, t: &mut [f32]) {
        if self.relu {
            for v in t {
                *v = at_least(*v, 0.0);
            }
        }
    }
}

/// `floor` where `v < floor`, else `v`: with floor 0 a ReLU that keeps NaN (unlike
/// `f32::max`, which would turn it into 0 and hide it), with floor −∞ the identity.
#[inline(always)]
pub(crate) fn at_least(v: f32, floor: f32) -> f32 {
    if v < floor { floor } else { v }
}

/// Extra values at the end of the padded image and of the patch matrix, so that a run can
/// always be moved as whole 16-value blocks.
pub(super) const SLACK: usize = 16;

/// Per-thread buffers: one zero-padded image and one patch matrix, each with [`SLACK`].
struct Scratch {
    padded: Vec<f32>,
    col: Vec<f32>,
    /// Whether `padded` may hold non-zero values outside the image (after [`col2im`]);
    /// [`im2col`] only rewrites the image part, so its padding stays zero from one image to
    /// the next.
    dirty: bool,
}

impl Scratch {
    fn new(g: &Geometry) -> Self {
        Self {
            padded: vec![0.0; g.padded() + SLACK],
            col: vec![0.0; g.k() * g.p() + SLACK],
            dirty: false,
        }
    }
}

/// Copies `src[..n]` to `dst[..n]` in 16-value blocks; the last block may also write up to 15
/// values past `n` (the callers write in increasing order and overwrite them, or they land in
/// the slack). Short rows (14 values in the conv VAE) then cost one block move instead of a
/// call to `memcpy`.
#[inline(always)]
pub(super) fn copy_blocks(dst: &mut [f32], src: &[f32], n: usize) {
    let mut t = 0;
    while t < n {
        let block: &[f32; 16] = src[t..t + 16].try_into().expect("16 values");
        dst[t..t + 16].copy_from_slice(block);
        t += 16;
    }
}

/// The first `keep` source values of a 16-value block, the rest replaced by +0.0 (selected as
/// bits with a mask, so no infinity or NaN past the run leaks in and the loop vectorizes).
#[inline(always)]
pub(super) fn masked_block(src: &[f32], keep: usize) -> [u32; 16] {
    let from: &[f32; 16] = src[..16].try_into().expect("16 values");
    let mut out = [0u32; 16];
    for (l, (o, f)) in out.iter_mut().zip(from).enumerate() {
        *o = f.to_bits() & ((l < keep) as u32).wrapping_neg();
    }
    out
}

/// Adds `src[t]` to `dst[t]` for `t < n` in blocks of 16 values: the values of the last block
/// past `n` get +0.0 added (they must be readable, and are rewritten unchanged).
#[inline(always)]
fn add_blocks(dst: &mut [f32], src: &[f32], n: usize) {
    let mut t = 0;
    while t < n {
        let add = masked_block(&src[t..], n - t);
        let to: &mut [f32; 16] = (&mut dst[t..t + 16]).try_into().expect("16 values");
        for (d, a) in to.iter_mut().zip(add) {
            *d += f32::from_bits(a);
        }
        t += 16;
    }
}

/// At column stride 2, where image columns `0, 2, 4, …` and `1, 3, 5, …` of one stored padded
/// `row` go: the runs from padded column `pw` and from `pw + 1` (in different phases).
#[inline(always)]
fn phase_pair<'a>(g: &Geometry, row: &'a mut [f32]) -> (&'a mut [f32], &'a mut [f32]) {
    let half = g.phase_len();
    let (even, odd) = row.split_at_mut(half);
    let start = g.pw / 2;
    if g.pw.is_multiple_of(2) {
        (&mut even[start..], &mut odd[start..])
    } else {
        (&mut odd[start..], &mut even[start + 1..])
    }
}

/// `first[i] = row[2i]`, `second[i] = row[2i + 1]`: one pass that vectorizes (a strided copy
/// per phase does not). With AVX-512, 32 values per
/// step in two permutations, with masked loads and stores for the rest: the conv VAE's rows
/// are 28 values, which the compiler's 8-pair loop left mostly to its scalar remainder.
#[inline(always)]
fn deinterleave(row: &[f32], first: &mut [f32], second: &mut [f32]) {
    assert!(
        first.len() >= row.len().div_ceil(2) && second.len() >= row.len() / 2,
        "deinterleave: targets too short"
    );
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; the lengths are asserted above.
        return unsafe { rows512::deinterleave(row, first, second) };
    }
    let pairs = row.chunks_exact(2);
    if let Some(&last) = pairs.remainder().first() {
        first[row.len() / 2] = last;
    }
    for ((a, b), pair) in first.iter_mut().zip(second.iter_mut()).zip(pairs) {
        *a = pair[0];
        *b = pair[1];
    }
}

/// `row[2i] = first[i]`, `row[2i + 1] = second[i]`: the inverse of [`deinterleave`], also 32
/// values per step with AVX-512.
#[inline(always)]
pub(super) fn interleave<T: RowValue>(first: &[f32], second: &[f32], row: &mut [T]) {
    let n = row.len();
    assert!(
        first.len() >= n.div_ceil(2) && second.len() >= n / 2,
        "interleave: sources too short"
    );
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; the lengths are asserted above; `T` is `f32` or
        // `MaybeUninit<f32>`, which has the layout of `f32`.
        return unsafe { rows512::interleave(first, second, row.as_mut_ptr().cast(), n) };
    }
    let mut pairs = row.chunks_exact_mut(2);
    for ((pair, &a), &b) in (&mut pairs).zip(first).zip(second) {
        pair[0].set(a);
        pair[1].set(b);
    }
    if let Some(last) = pairs.into_remainder().first_mut() {
        last.set(first[n / 2]);
    }
}

/// `dst = src` for short rows (a few dozen values): masked 16-value moves with AVX-512, where
/// `copy_from_slice` would call `memcpy` once per row.
#[inline(always)]
pub(super) fn copy_row<T: RowValue>(dst: &mut [T], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "copy_row: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; both runs hold src.len() values; `T` has the layout
        // of `f32`.
        return unsafe { rows512::copy(dst.as_mut_ptr().cast(), src, src.len()) };
    }
    for (d, &v) in dst.iter_mut().zip(src) {
        d.set(v);
    }
}

/// A slot a row move can write: `f32`, or `MaybeUninit<f32>` for outputs not yet initialized.
pub(super) trait RowValue {
    /// Writes `v` into the slot.
    fn set(&mut self, v: f32);
}

impl RowValue for f32 {
    #[inline(always)]
    fn set(&mut self, v: f32) {
        *self = v;
    }
}

impl RowValue for std::mem::MaybeUninit<f32> {
    #[inline(always)]
    fn set(&mut self, v: f32) {
        self.write(v);
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use rows512::lanes;

/// The AVX-512 row moves of [`deinterleave`], [`interleave`] and [`copy_row`].
#[cfg(target_arch = "x86_64")]
mod rows512 {
    use std::arch::x86_64::*;

    /// The first `n.min(16)` lanes of a 16-lane mask.
    #[inline(always)]
    pub(crate) fn lanes(n: usize) -> __mmask16 {
        ((1u32 << n.min(16)) - 1) as __mmask16
    }

    /// # Safety
    /// The CPU must have AVX-512F; `first` must hold `⌈n / 2⌉` and `second` `⌊n / 2⌋` values
    /// for `n = row.len()`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn deinterleave(row: &[f32], first: &mut [f32], second: &mut [f32]) {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let n = row.len();
        let mut i = 0;
        while i < n {
            let rem = (n - i).min(32);
            // SAFETY: masked lanes are neither read nor written; the unmasked ones are inside
            // the slices (the caller's contract). `wrapping_add`: the pointer of an all-masked
            // half may point past the slice.
            unsafe {
                let src = row.as_ptr().wrapping_add(i);
                let a = _mm512_maskz_loadu_ps(lanes(rem), src);
                let b = _mm512_maskz_loadu_ps(lanes(rem.saturating_sub(16)), src.wrapping_add(16));
                let (e, o) = (
                    _mm512_permutex2var_ps(a, even, b),
                    _mm512_permutex2var_ps(a, odd, b),
                );
                _mm512_mask_storeu_ps(
                    first.as_mut_ptr().wrapping_add(i / 2),
                    lanes(rem.div_ceil(2)),
                    e,
                );
                _mm512_mask_storeu_ps(second.as_mut_ptr().wrapping_add(i / 2), lanes(rem / 2), o);
            }
            i += 32;
        }
    }

    /// `row[2i] = first[i]`, `row[2i + 1] = second[i]` for the `n` values of `row`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `row` must be writable for `n` values, `first` hold
    /// `⌈n / 2⌉` and `second` `⌊n / 2⌋`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn interleave(first: &[f32], second: &[f32], row: *mut f32, n: usize) {
        let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        let mut i = 0;
        while i < n {
            let rem = (n - i).min(32);
            // SAFETY: as in `deinterleave`.
            unsafe {
                let a = _mm512_maskz_loadu_ps(
                    lanes(rem.div_ceil(2)),
                    first.as_ptr().wrapping_add(i / 2),
                );
                let b = _mm512_maskz_loadu_ps(lanes(rem / 2), second.as_ptr().wrapping_add(i / 2));
                let dst = row.wrapping_add(i);
                _mm512_mask_storeu_ps(dst, lanes(rem), _mm512_permutex2var_ps(a, low, b));
                _mm512_mask_storeu_ps(
                    dst.wrapping_add(16),
                    lanes(rem.saturating_sub(16)),
                    _mm512_permutex2var_ps(a, high, b),
                );
            }
            i += 32;
        }
    }

    /// `dst[..n] = src[..n]`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `dst` must be writable for `n` values and `src` hold `n`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn copy(dst: *mut f32, src: &[f32], n: usize) {
        let mut i = 0;
        while i < n {
            let m = lanes(n - i);
            // SAFETY: the unmasked lanes are inside both runs (the caller's contract).
            unsafe {
                let v = _mm512_maskz_loadu_ps(m, src.as_ptr().add(i));
                _mm512_mask_storeu_ps(dst.add(i), m, v);
            }
            i += 16;
        }
    }
}

/// Writes image `x` (`c × h × w`) into the zero-padded, phase-split layout of [`Geometry`]
/// (`padded`: `g.padded()` values and more). Only the image part is written: the padding keeps
/// whatever it held (zeros, in every caller).
#[inline(always)]
pub(super) fn pad_image(g: &Geometry, x: &[f32], padded: &mut [f32]) {
    let (hp, rl) = (g.padded_h(), g.row_len());
    let (rows, cols) = g.covered();
    for ch in 0..g.c {
        for iy in 0..rows {
            let at = (ch * hp + iy + g.ph) * rl;
            let from = (ch * g.h + iy) * g.w;
            if g.sw == 1 && cols <= 16 && from + 16 <= x.len() {
                // One masked block: the values past the row are written as zeros, which is
                // what the padding holds, or land where later rows and the slack go.
                let block = masked_block(&x[from..], cols);
                let to: &mut [f32; 16] = (&mut padded[at + g.pw..at + g.pw + 16])
                    .try_into()
                    .expect("16 values");
                for (t, b) in to.iter_mut().zip(block) {
                    *t = f32::from_bits(b);
                }
            } else if g.sw == 1 {
                copy_row(
                    &mut padded[at + g.pw..at + g.pw + cols],
                    &x[from..from + cols],
                );
            } else if g.sw == 2 {
                let (first, second) = phase_pair(g, &mut padded[at..at + g.row_len()]);
                deinterleave(&x[from..from + cols], first, second);
            } else {
                // Image columns t, t + sw, t + 2sw, … are stored one after another.
                let row = &x[from..from + cols];
                for t in 0..g.sw.min(cols) {
                    let to = &mut padded[at + g.column(g.pw + t)..];
                    for (d, &v) in to.iter_mut().zip(row.iter().skip(t).step_by(g.sw)) {
                        *d = v;
                    }
                }
            }
        }
    }
}

multiversion!(pub(super) fn pad[](g: &Geometry, x: &[f32], padded: &mut [f32]) => pad_image);

/// Fills `scratch.col` (`k × p`, row-major) with the patches of one image `x` (`c × h × w`),
/// through the zero-padded, phase-split copy in `scratch.padded`.
#[inline(always)]
fn im2col_run(g: &Geometry, x: &[f32], scratch: &mut Scratch) {
    let (hp, rl) = (g.padded_h(), g.row_len());
    if scratch.dirty {
        scratch.padded.fill(0.0);
        scratch.dirty = false;
    }
    pad_image(g, x, &mut scratch.padded);
    let padded = &scratch.padded;
    let (p, ow) = (g.p(), g.ow);
    let col = &mut scratch.col;
    let mut r = 0;
    for ch in 0..g.c {
        for i in 0..g.kh {
            for j in 0..g.kw {
                let tap = g.column(j);
                for oy in 0..g.oh {
                    let src = &padded[(ch * hp + oy * g.sh + i) * rl + tap..];
                    copy_blocks(&mut col[r * p + oy * ow..], src, ow);
                }
                r += 1;
            }
        }
    }
}

multiversion!(fn im2col[](g: &Geometry, x: &[f32], scratch: &mut Scratch) => im2col_run);

/// Adds every entry of `scratch.col` (`k × p`) onto the input pixel of one image that
/// [`im2col`] read it from, and writes the sums to `dx` (`c × h × w`, zero where the kernel
/// never reads).
#[inline(always)]
fn col2im_run(g: &Geometry, scratch: &mut Scratch, dx: &mut [f32]) {
    let (hp, rl) = (g.padded_h(), g.row_len());
    let (p, ow) = (g.p(), g.ow);
    let padded = &mut scratch.padded;
    padded.fill(0.0);
    scratch.dirty = true;
    // Kernel column outermost: the blocks of taps j and j + sw overlap (shifted by one value),
    // and adding into a block that was just stored stalls the store-to-load forwarding.
    for ch in 0..g.c {
        for j in 0..g.kw {
            let tap = g.column(j);
            for i in 0..g.kh {
                let r = (ch * g.kh + i) * g.kw + j;
                for oy in 0..g.oh {
                    let dst = &mut padded[(ch * hp + oy * g.sh + i) * rl + tap..];
                    add_blocks(dst, &scratch.col[r * p + oy * ow..], ow);
                }
            }
        }
    }
    let (rows, cols) = g.covered();
    for ch in 0..g.c {
        for iy in 0..rows {
            let at = (ch * hp + iy + g.ph) * rl;
            let to = &mut dx[(ch * g.h + iy) * g.w..(ch * g.h + iy) * g.w + cols];
            if g.sw == 1 {
                to.copy_from_slice(&padded[at + g.pw..at + g.pw + cols]);
            } else if g.sw == 2 {
                let (first, second) = phase_pair(g, &mut padded[at..at + g.row_len()]);
                interleave(first, second, to);
            } else {
                for t in 0..g.sw.min(cols) {
                    let from = &padded[at + g.column(g.pw + t)..];
                    for (v, &f) in to.iter_mut().skip(t).step_by(g.sw).zip(from) {
                        *v = f;
                    }
                }
            }
        }
    }
}

multiversion!(fn col2im[](g: &Geometry, scratch: &mut Scratch, dx: &mut [f32]) => col2im_run);

/// `dst (m × n) = [dst +] lhs (m × k) · rhs (k × n)`, each matrix given by its pointer and
/// (row stride, column stride) in elements; one thread.
///
/// # Safety
/// Every pointer must be valid for the elements its strides and sizes reach, and `dst` must
/// not overlap the inputs.
pub(super) unsafe fn matmul(
    sizes: (usize, usize, usize),
    dst: (*mut f32, usize, usize),
    accumulate: bool,
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
) {
    // SAFETY: the caller's contract.
    unsafe { matmul_on(gemm::Parallelism::None, sizes, dst, accumulate, lhs, rhs) }
}

/// [`matmul`] split over threads as `parallelism` says (gemm's own split).
///
/// # Safety
/// As for [`matmul`].
pub(super) unsafe fn matmul_on(
    parallelism: gemm::Parallelism,
    (m, n, k): (usize, usize, usize),
    dst: (*mut f32, usize, usize),
    accumulate: bool,
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
) {
    // SAFETY: the caller's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.0,
            dst.2 as isize,
            dst.1 as isize,
            accumulate,
            lhs.0,
            lhs.2 as isize,
            lhs.1 as isize,
            rhs.0,
            rhs.2 as isize,
            rhs.1 as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Images per rayon task: the batch split evenly over the pool's threads, so that each task
/// allocates its buffers once (every image costs the same).
pub(super) fn images_per_task(g: &Geometry) -> usize {
    g.batch.div_ceil(rayon::current_num_threads().max(1))
}

/// Allocates `batch × len` outputs and calls `run(scratch, b, out_b)` for every image `b`
/// with its `len` outputs, one contiguous range of images per rayon task, each task with its
/// own [`Scratch`].
fn per_image(
    g: &Geometry,
    len: usize,
    run: impl Fn(&mut Scratch, usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let per_task = images_per_task(g);
    let mut out = vec![0.0f32; g.batch * len];
    out.par_chunks_mut(len * per_task)
        .enumerate()
        .for_each_init(
            || Scratch::new(g),
            |scratch, (task, outs)| {
                for (n, out_b) in outs.chunks_exact_mut(len).enumerate() {
                    run(scratch, task * per_task + n, out_b);
                }
            },
        );
    out
}

/// The convolution's output `o × oh × ow` per image, with the [`Epilogue`] `out` (bias and
/// activation): through [`winograd`](super::winograd) or [`direct`](super::direct) where they
/// apply, otherwise [`patch_forward`].
pub(crate) fn forward(g: &Geometry, x: &[f32], weight: &[f32], out: Epilogue<'_>) -> Vec<f32> {
    if winograd::applies(g) {
        winograd::forward(g, x, weight, out)
    } else if direct::applies(g) {
        direct::forward(g, x, weight, out)
    } else {
        #[cfg(target_arch = "x86_64")]
        if implicit::applies(g) {
            return implicit::forward(g, x, weight, out);
        }
        patch_forward(g, x, weight, out)
    }
}

/// The convolution's output `o × oh × ow` per image as `W · col(x)`, with the [`Epilogue`]
/// `out`.
pub(crate) fn patch_forward(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    out: Epilogue<'_>,
) -> Vec<f32> {
    let (k, p, o) = (g.k(), g.p(), g.o);
    per_image(g, g.feature(), |scratch, b, y_img| {
        im2col(g, &x[b * g.image()..(b + 1) * g.image()], scratch);
        if let Some(bias) = out.bias {
            for (row, &v) in y_img.chunks_exact_mut(p).zip(bias) {
                row.fill(v);
            }
        }
        // SAFETY: y_img is o × p, weight o × k, col k × p, all row-major.
        unsafe {
            matmul(
                (o, p, k),
                (y_img.as_mut_ptr(), p, 1),
                out.bias.is_some(),
                (weight.as_ptr(), k, 1),
                (scratch.col.as_ptr(), p, 1),
            );
        }
        // While the image's output is in cache.
        out.activate_all(y_img);
    })
}

/// The gradient with respect to the convolution's input, `c × h × w` per image:
/// `col2im(Wᵀ · dy)`. Also the forward pass of the transposed convolution.
///
/// At stride 1 this is itself a convolution, of `dy` with the weight flipped in space and
/// with its channel axes swapped, padded by `kh − 1 − ph` and `kw − 1 − pw`; that runs through
/// [`forward`] (patch copies, no scatter).
pub(crate) fn input_grad(g: &Geometry, dy: &[f32], weight: &[f32]) -> Vec<f32> {
    if g.sh == 1 && g.sw == 1 && g.ph < g.kh && g.pw < g.kw {
        let adjoint = Geometry {
            batch: g.batch,
            c: g.o,
            h: g.oh,
            w: g.ow,
            o: g.c,
            oh: g.h,
            ow: g.w,
            kh: g.kh,
            kw: g.kw,
            sh: 1,
            sw: 1,
            ph: g.kh - 1 - g.ph,
            pw: g.kw - 1 - g.pw,
        };
        let taps = g.kh * g.kw;
        let mut flipped = vec![0.0f32; weight.len()];
        for o in 0..g.o {
            for c in 0..g.c {
                let from = &weight[(o * g.c + c) * taps..(o * g.c + c + 1) * taps];
                let to = &mut flipped[(c * g.o + o) * taps..(c * g.o + o + 1) * taps];
                for (t, v) in to.iter_mut().zip(from.iter().rev()) {
                    *t = *v;
                }
            }
        }
        return forward(&adjoint, dy, &flipped, Epilogue::default());
    }
    #[cfg(target_arch = "x86_64")]
    if implicit::applies(g) {
        return implicit::input_grad(g, dy, weight);
    }
    patch_input_grad(g, dy, weight)
}

/// The gradient with respect to the convolution's input as `col2im(Wᵀ · dy)`.
pub(crate) fn patch_input_grad(g: &Geometry, dy: &[f32], weight: &[f32]) -> Vec<f32> {
    let (k, p, o) = (g.k(), g.p(), g.o);
    per_image(g, g.image(), |scratch, b, dx_img| {
        let dy_img = &dy[b * g.feature()..(b + 1) * g.feature()];
        // SAFETY: col is k × p; Wᵀ is k × o read from the o × k weight with strides (1, k);
        // dy_img is o × p.
        unsafe {
            matmul(
                (k, p, o),
                (scratch.col.as_mut_ptr(), p, 1),
                false,
                (weight.as_ptr(), 1, k),
                (dy_img.as_ptr(), p, 1),
            );
        }
        col2im(g, scratch, dx_img);
    })
}

/// The gradient with respect to the weight, `o × k`: through [`winograd`](super::winograd) or
/// [`direct`](super::direct) where they apply, otherwise [`patch_weight_grad`].
pub(crate) fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    if winograd::applies(g) {
        winograd::weight_grad(g, x, dy)
    } else if direct::applies(g) {
        direct::weight_grad(g, x, dy)
    } else {
        #[cfg(target_arch = "x86_64")]
        if implicit::applies(g) {
            return implicit::weight_grad(g, x, dy);
        }
        patch_weight_grad(g, x, dy)
    }
}

/// The gradient with respect to the weight, `o × k`, as `Σ_images dy · col(x)ᵀ`.
pub(crate) fn patch_weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (k, p, o) = (g.k(), g.p(), g.o);
    let per_task = images_per_task(g);
    let tasks = g.batch.div_ceil(per_task);
    (0..tasks)
        .into_par_iter()
        .fold(
            || (vec![0.0f32; o * k], Scratch::new(g), false),
            |(mut dw, mut scratch, mut started), task| {
                let end = ((task + 1) * per_task).min(g.batch);
                for b in task * per_task..end {
                    im2col(g, &x[b * g.image()..(b + 1) * g.image()], &mut scratch);
                    let dy_img = &dy[b * g.feature()..(b + 1) * g.feature()];
                    // SAFETY: dw is o × k; dy_img o × p; col(x)ᵀ is p × k read from the
                    // k × p col with strides (1, p).
                    unsafe {
                        matmul(
                            (o, k, p),
                            (dw.as_mut_ptr(), k, 1),
                            started,
                            (dy_img.as_ptr(), p, 1),
                            (scratch.col.as_ptr(), 1, p),
                        );
                    }
                    started = true;
                }
                (dw, scratch, started)
            },
        )
        .map(|(dw, _, _)| dw)
        .reduce(|| vec![0.0f32; o * k], add_vectors)
}

/// `a + b`, value by value (the two are equally long): the reduction of per-thread gradients.
pub(super) fn add_vectors<T: Copy + core::ops::AddAssign>(mut a: Vec<T>, b: Vec<T>) -> Vec<T> {
    for (x, &y) in a.iter_mut().zip(&b) {
        *x += y;
    }
    a
}

/// Sums `t` (`batch × channels × pixels`) over images and pixels: one value per channel
/// (16 float32 lanes per row, the rows added in float64), split over threads by image. When
/// `relu_output` (the output of a ReLU, shaped as `t`) is given, `t` is first set to 0 where
/// that output is 0 or less: the gradient `t` of the ReLU's output becomes the gradient of its
/// input (ReLU's derivative at 0 taken as 0, as burn and PyTorch take it), in the same pass.
pub(crate) fn channel_sums(
    t: &mut [f32],
    relu_output: Option<&[f32]>,
    batch: usize,
    channels: usize,
) -> Vec<f32> {
    let image = t.len() / batch.max(1);
    let pixels = image / channels.max(1);
    if image == 0 || pixels == 0 {
        return vec![0.0; channels];
    }
    let chunk = image * images_per_chunk(image);
    let sums = t
        .par_chunks_mut(chunk)
        .enumerate()
        .fold(
            || vec![0.0f64; channels],
            |mut sums, (i, part)| {
                if let Some(y) = relu_output {
                    relu_mask(part, &y[i * chunk..]);
                }
                add_row_sums(part, pixels, &mut sums);
                sums
            },
        )
        .reduce(|| vec![0.0f64; channels], add_vectors);
    sums.into_iter().map(|s| s as f32).collect()
}

/// `d = 0` where `y ≤ 0` (`y` may be longer than `d`).
#[inline(always)]
fn relu_mask_run(d: &mut [f32], y: &[f32]) {
    let y = &y[..d.len()];
    for (d, &y) in d.iter_mut().zip(y) {
        *d = if y <= 0.0 { 0.0 } else { *d };
    }
}

multiversion!(fn relu_mask[](d: &mut [f32], y: &[f32]) => relu_mask_run);

/// Adds the sum of each `pixels`-long row of `t` to `sums[row mod channels]`.
#[inline(always)]
fn add_row_sums_run(t: &[f32], pixels: usize, sums: &mut [f64]) {
    for img in t.chunks_exact(pixels * sums.len()) {
        for (s, row) in sums.iter_mut().zip(img.chunks_exact(pixels)) {
            let mut lanes = [0.0f32; 16];
            let mut blocks = row.chunks_exact(16);
            for block in &mut blocks {
                for (l, v) in lanes.iter_mut().zip(block) {
                    *l += v;
                }
            }
            let tail: f32 = blocks.remainder().iter().sum();
            *s += lanes.iter().map(|&l| l as f64).sum::<f64>() + tail as f64;
        }
    }
}

multiversion!(fn add_row_sums[](t: &[f32], pixels: usize, sums: &mut [f64]) => add_row_sums_run);

/// Adds `bias[c]` to every one of the `pixels` values of channel `c` of `t`
/// (`batch × channels × pixels`), then takes the ReLU when `relu`.
pub(crate) fn add_channel_bias(t: &mut [f32], bias: &[f32], pixels: usize, relu: bool) {
    let image = (bias.len() * pixels).max(1);
    let floor = if relu { 0.0 } else { f32::NEG_INFINITY };
    t.par_chunks_mut(image * images_per_chunk(image))
        .for_each(|chunk| add_bias(chunk, bias, pixels, floor));
}

#[inline(always)]
fn add_bias_run(t: &mut [f32], bias: &[f32], pixels: usize, floor: f32) {
    for img in t.chunks_exact_mut(bias.len() * pixels) {
        for (row, &v) in img.chunks_exact_mut(pixels).zip(bias) {
            for x in row {
                *x = at_least(*x + v, floor);
            }
        }
    }
}

multiversion!(pub(super) fn add_bias[](t: &mut [f32], bias: &[f32], pixels: usize, floor: f32) => add_bias_run);

/// Images of `len` values per rayon task in the element-wise passes: about 64 Ki values.
fn images_per_chunk(len: usize) -> usize {
    (65_536 / len.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::MaybeUninit;

    /// The row moves against index arithmetic, for every length from 0 to 70 (empty, shorter
    /// than one register, the conv VAE's 14 and 28, several 32-value steps with every
    /// remainder), into targets longer than needed: nothing past the row may change.
    #[test]
    fn row_moves_put_every_value_in_its_place_and_nothing_else() {
        const GUARD: f32 = -7.5;
        for n in 0..=70usize {
            let row: Vec<f32> = (0..n).map(|i| i as f32 + 0.25).collect();
            let (mut first, mut second) = (vec![GUARD; n / 2 + 20], vec![GUARD; n / 2 + 20]);
            deinterleave(&row, &mut first, &mut second);
            for i in 0..first.len() {
                let want = if 2 * i < n { row[2 * i] } else { GUARD };
                assert_eq!(first[i], want, "deinterleave n = {n}: first[{i}]");
            }
            for i in 0..second.len() {
                let want = if 2 * i + 1 < n { row[2 * i + 1] } else { GUARD };
                assert_eq!(second[i], want, "deinterleave n = {n}: second[{i}]");
            }

            let mut back = vec![GUARD; n + 20];
            interleave(&first, &second, &mut back[..n]);
            assert_eq!(&back[..n], &row[..], "interleave n = {n}");
            assert!(
                back[n..].iter().all(|&v| v == GUARD),
                "interleave n = {n}: overrun"
            );
            let mut uninit_row = vec![MaybeUninit::new(GUARD); n];
            interleave(&first, &second, &mut uninit_row);
            // SAFETY: every slot was initialized (to GUARD, then by the interleave).
            let got: Vec<f32> = uninit_row
                .iter()
                .map(|v| unsafe { v.assume_init() })
                .collect();
            assert_eq!(got, row, "interleave into MaybeUninit, n = {n}");

            let mut copy = vec![GUARD; n + 20];
            copy_row(&mut copy[..n], &row);
            assert_eq!(&copy[..n], &row[..], "copy_row n = {n}");
            assert!(
                copy[n..].iter().all(|&v| v == GUARD),
                "copy_row n = {n}: overrun"
            );
        }
    }
}
