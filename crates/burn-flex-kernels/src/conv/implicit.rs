//! Implicit-GEMM convolutions for CPUs with AVX-512: the forward pass and the weight gradient
//! of the layers that [`winograd`](super::winograd) and [`direct`](super::direct) do not take
//! (the conv VAE's two stride-2 layers), with no patch matrix.
//!
//! The patch-matrix kernels of [`conv`](super) copy every input value `kh·kw` times into
//! the patch matrix, and gemm copies that matrix again into its packed panels before it
//! multiplies. Here the matrix product reads the zero-padded, phase-split image
//! ([`pad_image`](super::pad_image)) in place. In that layout the input under kernel tap
//! `(c, i, j)` of output pixel `(oy, ox)` is at `oy·sh·row + off[c, i, j] + ox` for a fixed
//! offset per tap, so a run of output pixels of one row reads a contiguous run of each tap's
//! values:
//!
//! - forward: `y[o][oy, ox] = b[o] + Σ_{c,i,j} w[o][c][i][j] · x̃[oy·sh·row + off[c,i,j] + ox]`.
//!   A register block holds 32 output channels (two 16-lane vectors) of 14 pixels of one output
//!   row (28 of the 32 registers); each tap adds one weight vector pair times one broadcast
//!   input value per pixel, the inner loop of a matrix product (`K = c·kh·kw`) whose right-hand
//!   side is read straight from the image. The block is written pixel-major (`pixel × o`) and
//!   transposed into burn's `o × oh × ow` with the bias and the activation.
//! - weight gradient: `∂w[o][c,i,j] = Σ_images Σ_{oy,ox} ∂y[o][oy, ox] · x̃[oy·sh·row +
//!   off[c,i,j] + ox]`. A register block holds 64 output channels (four vectors) of 6 taps (or
//!   32 of 12); each output pixel adds the output gradient's channel vectors (from a
//!   pixel-major copy of `∂y`) times one broadcast input value per tap.
//!
//! Same arithmetic as the patch-matrix kernels (the same products, summed in another order);
//! the tests hold the two to 10⁻⁵ of the largest value.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::{
    Epilogue, Geometry, SLACK, add_bias, add_vectors, copy_row, images_per_task, interleave, pad,
};
use crate::buffer::{assume_init, uninit};

/// Output pixels per forward register block.
const PIXELS: usize = 14;

/// Taps per pass over an image's output rows in the forward blocks: their weights (32
/// channels, 8 KiB) stay in the L1 cache from one output row to the next.
const TAPS_PER_PASS: usize = 64;

/// Lanes of one register.
const LANES: usize = 16;

/// Whether [`forward`] and [`weight_grad`] run on this CPU (any geometry): it has AVX-512F.
pub(crate) fn applies(_g: &Geometry) -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Where each kernel tap `(c, i, j)` (in the weight's order) reads the padded image, relative
/// to output pixel `(oy, ox)`'s place `oy·sh·row + ox`.
fn tap_offsets(g: &Geometry) -> Vec<usize> {
    let (hp, rl) = (g.padded_h(), g.row_len());
    let mut offsets = Vec::with_capacity(g.k());
    for c in 0..g.c {
        for i in 0..g.kh {
            for j in 0..g.kw {
                offsets.push((c * hp + i) * rl + g.column(j));
            }
        }
    }
    offsets
}

/// `count` rounded up to a multiple of `to`.
fn round_up(count: usize, to: usize) -> usize {
    count.div_ceil(to) * to
}

/// Per-thread buffers: the zero-padded image (its padding is never written, so it stays zero)
/// and a pixel-major block of `pixels × channels`.
struct Scratch {
    padded: Vec<f32>,
    block: Vec<f32>,
}

impl Scratch {
    fn new(g: &Geometry, block: usize) -> Self {
        Self {
            padded: vec![0.0; g.padded() + SLACK],
            block: vec![0.0; block],
        }
    }
}

/// `dst[p·dst_stride + 0..32] = [dst[…] +] Σ_k w[k·w_stride + 0..32] · src[offsets[k] + p]` for
/// the first `n ≤ PIXELS` pixels `p` (all [`PIXELS`] are computed: `src` must be readable
/// `PIXELS − 1` values past every tap's last pixel); with `accumulate`, the sum continues from
/// `dst`'s values.
///
/// # Safety
/// The CPU must have AVX-512F, and every pointer must be valid as described.
// The pixel index addresses the input and two accumulator rows at once.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx512f")]
unsafe fn forward_block(
    w: *const f32,
    w_stride: usize,
    offsets: &[usize],
    src: *const f32,
    (dst, dst_stride): (*mut f32, usize),
    n: usize,
    accumulate: bool,
) {
    let mut acc = [[_mm512_setzero_ps(); PIXELS]; 2];
    if accumulate {
        for p in 0..n {
            for (v, a) in acc.iter_mut().enumerate() {
                // SAFETY: the caller's contract: dst p·dst_stride + 0..32 is readable for p < n.
                a[p] = unsafe { _mm512_loadu_ps(dst.add(p * dst_stride + v * LANES)) };
            }
        }
    }
    for (k, &off) in offsets.iter().enumerate() {
        // SAFETY: the caller's contract: weights k·w_stride + 0..32 and inputs off + 0..PIXELS
        // are readable.
        unsafe {
            let w0 = _mm512_loadu_ps(w.add(k * w_stride));
            let w1 = _mm512_loadu_ps(w.add(k * w_stride + LANES));
            let s = src.add(off);
            for p in 0..PIXELS {
                let x = _mm512_set1_ps(*s.add(p));
                acc[0][p] = _mm512_fmadd_ps(w0, x, acc[0][p]);
                acc[1][p] = _mm512_fmadd_ps(w1, x, acc[1][p]);
            }
        }
    }
    for p in 0..n {
        // SAFETY: the caller's contract: dst p·dst_stride + 0..32 is writable for p < n.
        unsafe {
            _mm512_storeu_ps(dst.add(p * dst_stride), acc[0][p]);
            _mm512_storeu_ps(dst.add(p * dst_stride + LANES), acc[1][p]);
        }
    }
}

/// `dst[j·dst_stride + i] = src[i·src_stride + j]` for a 16 × 16 block, in registers
/// (unpacks of pairs of rows, then of pairs of pairs, then two rounds of 128-bit lane
/// shuffles).
///
/// # Safety
/// The CPU must have AVX-512F; the 16 rows of 16 values must be readable and writable.
#[target_feature(enable = "avx512f")]
unsafe fn transpose16(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
    // SAFETY: the caller's contract.
    let r: [__m512; 16] =
        std::array::from_fn(|i| unsafe { _mm512_loadu_ps(src.add(i * src_stride)) });
    // Pairs of rows, interleaved by 32-bit lanes.
    let t: [__m512; 16] = std::array::from_fn(|i| {
        let (a, b) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_ps(a, b)
        } else {
            _mm512_unpackhi_ps(a, b)
        }
    });
    // Pairs of pairs, interleaved by 64-bit lanes: u[4q + m] from t[4q + m / 2] and
    // t[4q + m / 2 + 2].
    let u: [__m512; 16] = std::array::from_fn(|i| {
        let (q, m) = (i / 4, i % 4);
        let a = _mm512_castps_pd(t[4 * q + (m >> 1)]);
        let b = _mm512_castps_pd(t[4 * q + (m >> 1) + 2]);
        _mm512_castpd_ps(if m & 1 == 0 {
            _mm512_unpacklo_pd(a, b)
        } else {
            _mm512_unpackhi_pd(a, b)
        })
    });
    // 128-bit lanes: first within the halves of eight rows, then across them.
    let v: [__m512; 16] = std::array::from_fn(|i| {
        let (half, m) = (i / 8, i % 8);
        let (a, b) = (u[8 * half + m % 4], u[8 * half + m % 4 + 4]);
        if m < 4 {
            _mm512_shuffle_f32x4::<0x88>(a, b)
        } else {
            _mm512_shuffle_f32x4::<0xdd>(a, b)
        }
    });
    for i in 0..16 {
        let (a, b) = (v[i % 8], v[i % 8 + 8]);
        let row = if i < 8 {
            _mm512_shuffle_f32x4::<0x88>(a, b)
        } else {
            _mm512_shuffle_f32x4::<0xdd>(a, b)
        };
        // SAFETY: the caller's contract.
        unsafe { _mm512_storeu_ps(dst.add(i * dst_stride), row) };
    }
}

/// `dst[j·dst_stride + i] = src[i·src_stride + j]` for `i < rows`, `j < cols`: 16 × 16 blocks
/// in registers, the edges one value at a time.
fn transpose(
    (src, src_stride): (&[f32], usize),
    (rows, cols): (usize, usize),
    (dst, dst_stride): (&mut [MaybeUninit<f32>], usize),
) {
    let (full_rows, full_cols) = (rows / 16 * 16, cols / 16 * 16);
    if rows > 0 && cols > 0 {
        assert!(
            src.len() >= (rows - 1) * src_stride + cols,
            "transpose: source too short"
        );
        assert!(
            dst.len() >= (cols - 1) * dst_stride + rows,
            "transpose: target too short"
        );
    }
    for i in (0..full_rows).step_by(16) {
        for j in (0..full_cols).step_by(16) {
            // SAFETY: AVX-512F is checked by `applies` (the only way here); the block's rows
            // i … i + 16 and columns j … j + 16 are inside both matrices (asserted above).
            unsafe {
                transpose16(
                    src.as_ptr().add(i * src_stride + j),
                    src_stride,
                    dst.as_mut_ptr().add(j * dst_stride + i).cast::<f32>(),
                    dst_stride,
                );
            }
        }
    }
    for i in 0..rows {
        let from = if i < full_rows { full_cols } else { 0 };
        for j in from..cols {
            dst[j * dst_stride + i].write(src[i * src_stride + j]);
        }
    }
}

/// The weight as a tap-major `k × o_pad` matrix (`o_pad`: `o` rounded up to 32, zeros past
/// `o`), the forward blocks' left-hand side.
fn weight_by_tap(g: &Geometry, weight: &[f32], o_pad: usize) -> Vec<f32> {
    let k = g.k();
    let mut w = vec![0.0f32; k * o_pad];
    for (o, row) in weight.chunks_exact(k).enumerate() {
        for (tap, &v) in row.iter().enumerate() {
            w[tap * o_pad + o] = v;
        }
    }
    w
}

/// The convolution's output, `o × oh × ow` per image, with the [`Epilogue`] `out`.
pub(crate) fn forward(g: &Geometry, x: &[f32], weight: &[f32], out: Epilogue<'_>) -> Vec<f32> {
    let o_pad = round_up(g.o, 2 * LANES);
    let w = weight_by_tap(g, weight, o_pad);
    let zeros;
    let bias = match out.bias {
        Some(bias) => bias,
        None => {
            zeros = vec![0.0f32; g.o];
            &zeros
        }
    };
    let offsets = tap_offsets(g);
    let (image, feature, pixels) = (g.image(), g.feature(), g.p());
    let row_step = g.sh * g.row_len();
    let per_task = images_per_task(g);
    let mut ys = uninit(g.batch * feature);
    ys.par_chunks_mut(feature * per_task)
        .enumerate()
        .for_each_init(
            || Scratch::new(g, pixels * o_pad),
            |s, (task, outs)| {
                for (n, y) in outs.chunks_exact_mut(feature).enumerate() {
                    let b = task * per_task + n;
                    pad(g, &x[b * image..][..image], &mut s.padded);
                    for (chunk, offs) in offsets.chunks(TAPS_PER_PASS).enumerate() {
                        let w = &w[chunk * TAPS_PER_PASS * o_pad..];
                        for oy in 0..g.oh {
                            for ox in (0..g.ow).step_by(PIXELS) {
                                let at = (oy * g.ow + ox) * o_pad;
                                for ob in (0..o_pad).step_by(2 * LANES) {
                                    // SAFETY: AVX-512F is checked by `applies`; the weight rows
                                    // hold o_pad ≥ ob + 32 values; the padded image has SLACK ≥
                                    // PIXELS − 1 values past its last tap's last pixel; the
                                    // block is pixels × o_pad and receives pixels
                                    // oy·ow + ox … + n.
                                    unsafe {
                                        forward_block(
                                            w.as_ptr().add(ob),
                                            o_pad,
                                            offs,
                                            s.padded.as_ptr().add(oy * row_step + ox),
                                            (s.block.as_mut_ptr().add(at + ob), o_pad),
                                            PIXELS.min(g.ow - ox),
                                            chunk > 0,
                                        );
                                    }
                                }
                            }
                        }
                    }
                    write_output(&s.block, o_pad, (bias, out.floor()), y);
                }
            },
        );
    // SAFETY: write_output wrote every value of every image.
    unsafe { assume_init(ys) }
}

/// `y[o][p] = max(floor, block[p][o] + bias[o])` (`floor` −∞ for no activation): the
/// pixel-major block into burn's layout.
fn write_output(
    block: &[f32],
    o_pad: usize,
    (bias, floor): (&[f32], f32),
    y: &mut [MaybeUninit<f32>],
) {
    let pixels = y.len() / bias.len().max(1);
    transpose((block, o_pad), (pixels, bias.len()), (y, pixels));
    // SAFETY: the transpose wrote all o × pixels values.
    let y = unsafe { &mut *(y as *mut [MaybeUninit<f32>] as *mut [f32]) };
    add_bias(y, bias, pixels, floor);
}

/// One phase `(ρ, σ)` of a strided convolution's input gradient: the padded-image rows
/// `sh·R + ρ` and columns `sw·S + σ`, which only the taps `i = ρ + sh·m`, `j = σ + sw·n` reach,
/// from output pixel `(R − m, S − n)`. Over the output gradient padded by `(kh − 1) / sh` rows
/// and `(kw − 1) / sw` columns in front (`dyp`), that is a stride-1 correlation:
/// `dx̃[c][sh·R + ρ][sw·S + σ] = Σ_{o,m,n} w[o][c][ρ + sh·m][σ + sw·n] · dyp[o][R + M − m][S +
/// N − n]`, the forward blocks' sum with the taps `(o, m, n)`.
struct Phase {
    /// The taps' weights, `taps × c_pad` (zeros past `c`).
    weight: Vec<f32>,
    /// The taps' offsets in `dyp` relative to pixel `(R, S)`'s place `R·row + S`.
    offsets: Vec<usize>,
    /// The phase's first `(R, S)` inside the image, and how many rows and columns are.
    first: (usize, usize),
    size: (usize, usize),
    /// Where the phase's pixel-major block (`rows × cols × c_pad`) starts in one image's
    /// buffer of all phases' blocks.
    start: usize,
}

/// The grid indices `T` whose padded place `stride·T + phase` falls on the image, which spans
/// `pad … pad + len` of the padded extent: `(first T, count)`.
fn phase_range(pad: usize, len: usize, stride: usize, phase: usize) -> (usize, usize) {
    let first = pad.saturating_sub(phase).div_ceil(stride);
    let end = (pad + len).saturating_sub(phase).div_ceil(stride);
    (first, end.saturating_sub(first))
}

/// The layout of the padded output gradient and the phases of [`input_grad`].
struct Adjoint {
    /// Rows and columns of the grid that holds every phase's.
    grid: (usize, usize),
    /// Rows and columns of padding in front of the output gradient in `dyp`.
    front: (usize, usize),
    /// Values per row of `dyp`, and per channel.
    row: usize,
    plane: usize,
    c_pad: usize,
    phases: Vec<Phase>,
    /// Values of all phases' blocks of one image.
    block_len: usize,
}

impl Adjoint {
    fn new(g: &Geometry, weight: &[f32]) -> Self {
        let grid = ((g.ph + g.h).div_ceil(g.sh), (g.pw + g.w).div_ceil(g.sw));
        let front = ((g.kh - 1) / g.sh, (g.kw - 1) / g.sw);
        let row = grid.1 + front.1;
        let plane = (grid.0 + front.0) * row;
        let c_pad = round_up(g.c, 2 * LANES);
        let mut phases = Vec::with_capacity(g.sh * g.sw);
        let mut block_len = 0;
        for rho in 0..g.sh {
            for sigma in 0..g.sw {
                let (mut w, mut offsets) = (Vec::new(), Vec::new());
                for o in 0..g.o {
                    for i in (rho..g.kh).step_by(g.sh) {
                        for j in (sigma..g.kw).step_by(g.sw) {
                            let (m, n) = ((i - rho) / g.sh, (j - sigma) / g.sw);
                            offsets.push(o * plane + (front.0 - m) * row + front.1 - n);
                            let at = w.len();
                            w.resize(at + c_pad, 0.0);
                            for c in 0..g.c {
                                w[at + c] = weight[((o * g.c + c) * g.kh + i) * g.kw + j];
                            }
                        }
                    }
                }
                let (r0, rows) = phase_range(g.ph, g.h, g.sh, rho);
                let (s0, cols) = phase_range(g.pw, g.w, g.sw, sigma);
                phases.push(Phase {
                    weight: w,
                    offsets,
                    first: (r0, s0),
                    size: (rows, cols),
                    start: block_len,
                });
                block_len += rows * cols * c_pad;
            }
        }
        Self {
            grid,
            front,
            row,
            plane,
            c_pad,
            phases,
            block_len,
        }
    }

    /// One image's output gradient `dy` (`o × oh × ow`) into `dyp` (its padding stays zero).
    fn pad(&self, g: &Geometry, dy: &[f32], dyp: &mut [f32]) {
        let rows = g.oh.min(self.grid.0);
        let cols = g.ow.min(self.grid.1);
        for o in 0..g.o {
            for oy in 0..rows {
                let to = o * self.plane + (oy + self.front.0) * self.row + self.front.1;
                copy_row(
                    &mut dyp[to..to + cols],
                    &dy[(o * g.oh + oy) * g.ow..][..cols],
                );
            }
        }
    }
}

/// The gradient with respect to the convolution's input, `c × h × w` per image (the forward
/// pass of the transposed convolution), for strides above 1: one [`Phase`] correlation per
/// stride phase, no scatter of a patch matrix.
pub(crate) fn input_grad(g: &Geometry, dy: &[f32], weight: &[f32]) -> Vec<f32> {
    let adj = Adjoint::new(g, weight);
    let (image, feature) = (g.image(), g.feature());
    let per_task = images_per_task(g);
    let mut dxs = uninit(g.batch * image);
    dxs.par_chunks_mut(image * per_task)
        .enumerate()
        .for_each_init(
            || {
                let dyp = vec![0.0f32; g.o * adj.plane + SLACK];
                // One row phase's column phases at a time (see `scatter_phases`).
                let cells = adj
                    .phases
                    .chunks(g.sw)
                    .map(|row| row.iter().map(|p| p.size.0 * p.size.1).sum::<usize>());
                let planes = uninit(g.c * cells.max().unwrap_or(0));
                (dyp, vec![0.0f32; adj.block_len], planes)
            },
            |(dyp, block, planes), (task, outs)| {
                for (n, dx) in outs.chunks_exact_mut(image).enumerate() {
                    let b = task * per_task + n;
                    adj.pad(g, &dy[b * feature..][..feature], dyp);
                    for phase in &adj.phases {
                        let (rows, cols) = phase.size;
                        let out = &mut block[phase.start..][..rows * cols * adj.c_pad];
                        let taps = phase.offsets.chunks(TAPS_PER_PASS).enumerate();
                        for (chunk, offs) in taps {
                            let w = &phase.weight[chunk * TAPS_PER_PASS * adj.c_pad..];
                            for r in 0..rows {
                                let src = (phase.first.0 + r) * adj.row + phase.first.1;
                                for s0 in (0..cols).step_by(PIXELS) {
                                    let at = (r * cols + s0) * adj.c_pad;
                                    for cb in (0..adj.c_pad).step_by(2 * LANES) {
                                        // SAFETY: AVX-512F is checked by `applies`; the phase's
                                        // weight rows hold c_pad ≥ cb + 32 values; every offset
                                        // plus the grid place is inside dyp, which has SLACK ≥
                                        // PIXELS − 1 values past its end; the block is
                                        // rows × cols × c_pad.
                                        unsafe {
                                            forward_block(
                                                w.as_ptr().add(cb),
                                                adj.c_pad,
                                                offs,
                                                dyp.as_ptr().add(src + s0),
                                                (out.as_mut_ptr().add(at + cb), adj.c_pad),
                                                PIXELS.min(cols - s0),
                                                chunk > 0,
                                            );
                                        }
                                    }
                                }
                            }
                        }
                    }
                    scatter_phases(g, &adj, block, planes, dx);
                }
            },
        );
    // SAFETY: every dx pixel belongs to one phase, and the loop above wrote it.
    unsafe { assume_init(dxs) }
}

/// `dx[c][iy][ix]` (one image) from the pixel-major block of phase
/// `((iy + ph) mod sh, (ix + pw) mod sw)`, through `planes` (the phases of one row phase `ρ`,
/// channel-major). At column stride 2 the two phases of a row are interleaved in one pass;
/// other strides write each phase's columns one at a time.
fn scatter_phases(
    g: &Geometry,
    adj: &Adjoint,
    block: &[f32],
    planes: &mut [MaybeUninit<f32>],
    dx: &mut [MaybeUninit<f32>],
) {
    for rho in 0..g.sh {
        let phases = &adj.phases[rho * g.sw..][..g.sw];
        // Each phase of the row phase, transposed to channel-major planes: (first column in
        // the image, columns, plane values).
        let mut at = 0;
        let mut runs = Vec::with_capacity(g.sw);
        for (sigma, phase) in phases.iter().enumerate() {
            let (rows, cols) = phase.size;
            let cells = rows * cols;
            transpose(
                (&block[phase.start..], adj.c_pad),
                (cells, g.c),
                (&mut planes[at..], cells),
            );
            // First column in the image: `phase_range` starts each phase inside it.
            let ix0 = g.sw * phase.first.1 + sigma - g.pw;
            runs.push((ix0, cols, at));
            at += g.c * cells;
        }
        // SAFETY: the transposes wrote the first `at` values.
        let planes = unsafe { &*(&planes[..at] as *const [MaybeUninit<f32>] as *const [f32]) };
        let rows = phases[0].size.0;
        for c in 0..g.c {
            for r in 0..rows {
                let iy = g.sh * (phases[0].first.0 + r) + rho - g.ph;
                let row = &mut dx[(c * g.h + iy) * g.w..][..g.w];
                let plane_row = |&(_, cols, start): &(usize, usize, usize)| {
                    &planes[start + (c * rows + r) * cols..][..cols]
                };
                if g.sw == 2 && g.w >= 2 {
                    // Image column 0 is padded column pw, in phase pw mod 2.
                    let even = g.pw % 2;
                    interleave(plane_row(&runs[even]), plane_row(&runs[1 - even]), row);
                } else {
                    for run @ &(ix0, _, _) in &runs {
                        for (to, &v) in row[ix0..].iter_mut().step_by(g.sw).zip(plane_row(run)) {
                            to.write(v);
                        }
                    }
                }
            }
        }
    }
}

/// `dwt[kk·stride + 16v…] += Σ_{oy, ox} dy[(oy·ow + ox)·stride + 16v…] · src[oy·row_step +
/// offsets[kk] + ox]` for `V` vectors of output channels and `KB` taps.
///
/// # Safety
/// The CPU must have AVX-512F, and every pointer must be valid as described.
#[target_feature(enable = "avx512f")]
unsafe fn weight_block<const V: usize, const KB: usize>(
    dwt: *mut f32,
    stride: usize,
    offsets: &[usize; KB],
    src: *const f32,
    (row_step, oh, ow): (usize, usize, usize),
    dy: *const f32,
) {
    let mut acc = [[_mm512_setzero_ps(); KB]; V];
    for (v, acc_v) in acc.iter_mut().enumerate() {
        for (kk, a) in acc_v.iter_mut().enumerate() {
            // SAFETY: the caller's contract.
            *a = unsafe { _mm512_loadu_ps(dwt.add(kk * stride + v * LANES)) };
        }
    }
    for oy in 0..oh {
        // SAFETY: the caller's contract: every tap's run of ow inputs of row oy, and the ow
        // pixel rows of dy, are readable.
        unsafe {
            let row = src.add(oy * row_step);
            let d_row = dy.add(oy * ow * stride);
            for ox in 0..ow {
                let d: [__m512; V] =
                    std::array::from_fn(|v| _mm512_loadu_ps(d_row.add(ox * stride + v * LANES)));
                let at = row.add(ox);
                for kk in 0..KB {
                    let x = _mm512_set1_ps(*at.add(offsets[kk]));
                    for v in 0..V {
                        acc[v][kk] = _mm512_fmadd_ps(d[v], x, acc[v][kk]);
                    }
                }
            }
        }
    }
    for (v, acc_v) in acc.iter().enumerate() {
        for (kk, a) in acc_v.iter().enumerate() {
            // SAFETY: the caller's contract.
            unsafe { _mm512_storeu_ps(dwt.add(kk * stride + v * LANES), *a) };
        }
    }
}

/// `dy` of one image (`o × pixels`) pixel-major into `to` (`pixels × o_pad`; the values past
/// `o` are left as they are, zeros).
fn transpose_into(dy: &[f32], o: usize, o_pad: usize, to: &mut [f32]) {
    let pixels = dy.len() / o.max(1);
    // SAFETY: MaybeUninit<f32> has f32's layout, and only initialized values are written.
    let to = unsafe { &mut *(to as *mut [f32] as *mut [MaybeUninit<f32>]) };
    transpose((dy, pixels), (o, pixels), (to, o_pad));
}

/// The gradient with respect to the weight, `o × c × kh × kw`, summed over the batch.
pub(crate) fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    // 64 channels by 6 taps, or (at most 32 channels) 32 by 12: 24 accumulators either way.
    if g.o > 2 * LANES {
        weight_grad_blocks::<4, 6>(g, x, dy)
    } else {
        weight_grad_blocks::<2, 12>(g, x, dy)
    }
}

fn weight_grad_blocks<const V: usize, const KB: usize>(
    g: &Geometry,
    x: &[f32],
    dy: &[f32],
) -> Vec<f32> {
    let o_pad = round_up(g.o, V * LANES);
    let k = g.k();
    let k_pad = round_up(k, KB);
    // Taps past k read the first tap's inputs into rows that are dropped.
    let mut offsets = tap_offsets(g);
    offsets.resize(k_pad, 0);
    let (image, feature, pixels) = (g.image(), g.feature(), g.p());
    let steps = (g.sh * g.row_len(), g.oh, g.ow);
    let per_task = images_per_task(g);
    let tasks = g.batch.div_ceil(per_task);
    let dwt = (0..tasks)
        .into_par_iter()
        .fold(
            || (vec![0.0f32; k_pad * o_pad], Scratch::new(g, pixels * o_pad)),
            |(mut dwt, mut s), task| {
                let end = ((task + 1) * per_task).min(g.batch);
                for b in task * per_task..end {
                    pad(g, &x[b * image..][..image], &mut s.padded);
                    transpose_into(&dy[b * feature..][..feature], g.o, o_pad, &mut s.block);
                    for ob in (0..o_pad).step_by(V * LANES) {
                        for (kb, offs) in offsets.chunks_exact(KB).enumerate() {
                            let offs: &[usize; KB] = offs.try_into().expect("KB taps");
                            // SAFETY: AVX-512F is checked by `applies`; dwt is k_pad × o_pad
                            // and the block's rows kb·KB … + KB, channels ob … + 16V are in it;
                            // every tap's ow inputs of every output row are inside the padded
                            // image; the block of dy is pixels × o_pad.
                            unsafe {
                                weight_block::<V, KB>(
                                    dwt.as_mut_ptr().add(kb * KB * o_pad + ob),
                                    o_pad,
                                    offs,
                                    s.padded.as_ptr(),
                                    steps,
                                    s.block.as_ptr().add(ob),
                                );
                            }
                        }
                    }
                }
                (dwt, s)
            },
        )
        .map(|(dwt, _)| dwt)
        .reduce(|| vec![0.0f32; k_pad * o_pad], add_vectors);
    let mut dw = vec![0.0f32; g.o * k];
    for (o, row) in dw.chunks_exact_mut(k).enumerate() {
        for (tap, v) in row.iter_mut().enumerate() {
            *v = dwt[tap * o_pad + o];
        }
    }
    dw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv;
    use crate::tests::{assert_close_scaled, check_against_patch_matrix, spread};

    fn geometry(
        (batch, c, h, w): (usize, usize, usize, usize),
        o: usize,
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
        (ph, pw): (usize, usize),
    ) -> Geometry {
        Geometry {
            batch,
            c,
            h,
            w,
            o,
            oh: (h + 2 * ph - kh) / sh + 1,
            ow: (w + 2 * pw - kw) / sw + 1,
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
        }
    }

    #[test]
    fn transposes_whole_blocks_and_edges() {
        if !applies(&geometry((1, 1, 3, 3), 1, (1, 1), (1, 1), (0, 0))) {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        for (rows, cols) in [(1, 1), (16, 16), (33, 17), (7, 40), (48, 32)] {
            let src_stride = cols + 3;
            let src = spread(rows * src_stride, -1.0, 1.0, 7);
            let dst_stride = rows + 2;
            let mut dst = vec![MaybeUninit::new(f32::NAN); cols * dst_stride];
            transpose((&src, src_stride), (rows, cols), (&mut dst, dst_stride));
            for i in 0..rows {
                for j in 0..cols {
                    // SAFETY: every slot was initialized (to NaN, or by the transpose).
                    let got = unsafe { dst[j * dst_stride + i].assume_init() };
                    assert_eq!(got, src[i * src_stride + j], "{rows} × {cols}: [{i}][{j}]");
                }
            }
        }
    }

    #[test]
    fn the_implicit_products_equal_the_patch_matrix() {
        if !applies(&geometry((1, 1, 3, 3), 1, (1, 1), (1, 1), (0, 0))) {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        let cases = [
            // The conv VAE's stride-2 layers' shapes (its encoder layer and the convolution
            // its transposed decoder layer is the adjoint of), padded 0 and 1 on both sides.
            geometry((3, 32, 28, 28), 64, (3, 3), (2, 2), (0, 0)),
            geometry((2, 32, 28, 28), 64, (3, 3), (2, 2), (1, 1)),
            // Channel counts that are not multiples of 16 or 32; rows wider than one block.
            geometry((2, 5, 33, 31), 7, (3, 3), (2, 2), (1, 1)),
            geometry((3, 3, 9, 40), 33, (2, 3), (1, 2), (0, 1)),
            geometry((1, 4, 11, 11), 40, (5, 5), (3, 3), (2, 2)),
            geometry((5, 6, 7, 7), 9, (1, 1), (1, 1), (0, 0)),
        ];
        for g in cases {
            check_against_patch_matrix("implicit GEMM", &g, (forward, weight_grad));
            let dy = spread(g.batch * g.feature(), -1.0, 1.0, 5);
            let weight = spread(g.o * g.k(), -1.0, 1.0, 6);
            assert_close_scaled(
                &format!("{g:?}: input gradient"),
                &input_grad(&g, &dy, &weight),
                &conv::patch_input_grad(&g, &dy, &weight),
                1e-5,
                ("implicit GEMM", "patch matrix"),
            );
        }
    }
}
