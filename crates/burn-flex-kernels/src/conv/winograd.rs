//! Winograd's minimal filtering algorithm F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for
//! Convolutional Neural Networks", 2016) for the 3 × 3, stride-1 convolutions, with its
//! exact adjoint for the weight gradient.
//!
//! The output is cut into 2 × 2 tiles; tile `t` reads a 4 × 4 patch `d` of the zero-padded
//! input (its rows and columns `2·ty … 2·ty + 3`, `2·tx … 2·tx + 3`). With the 3 × 3 filter
//! `g` of output channel `o` and input channel `c`,
//!
//! ```text
//! y_t[o] = Aᵀ [ Σ_c U[o, c] ⊙ V[c, t] ] A,    U = G g Gᵀ,    V = Bᵀ d B,
//!
//!      ⎡1  0 -1  0⎤        ⎡ 1    0    0 ⎤
//! Bᵀ = ⎢0  1  1  0⎥    G = ⎢1/2  1/2  1/2⎥    Aᵀ = ⎡1  1  1  0⎤
//!      ⎢0 -1  1  0⎥        ⎢1/2 -1/2  1/2⎥         ⎣0  1 -1 -1⎦
//!      ⎣0  1  0 -1⎦        ⎣ 0    0    1 ⎦
//! ```
//!
//! so for each of the 16 transformed positions `ξ` the sum over channels is one matrix
//! product `M[ξ] (o × tiles) = U[ξ] (o × c) · V[ξ] (c × tiles)`: 16 products for 4 outputs per
//! tile instead of 36, 2.25 times fewer multiplications than the patch-matrix product of
//! [`conv`](super), and each product spans several images (about a hundred tiles)
//! instead of one. The formula is exact in real arithmetic; in float32 its rounding stays within a few
//! units in the last place of the largest values (the transforms only add, subtract and halve).
//!
//! The weight gradient is the adjoint of the same computation:
//! `∂U[ξ] = Σ_tiles ∂M[ξ] · V[ξ]ᵀ` with `∂M = A ∂y Aᵀ`, then `∂g = Gᵀ ∂U G`. The input
//! gradient of a stride-1 convolution is itself a stride-1 convolution (of the output gradient
//! with the flipped weight, see [`conv::input_grad`](super::input_grad)), so it runs
//! through [`forward`] too.
//!
//! On CPUs with AVX-512 the forward products run through a register-blocked kernel that reads
//! `U[ξ]` and `V[ξ]` where the transforms wrote them (`product`); the weight gradient's, whose
//! right-hand side is `V[ξ]` transposed, go to gemm.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::buffer::{assume_init, uninit};

use super::{
    Epilogue, Geometry, add_vectors, at_least, copy_blocks, images_per_task, masked_block, matmul,
};

/// Transformed positions per tile: a 4 × 4 input patch for a 2 × 2 output tile.
const XI: usize = 16;

/// About this many tiles go into one matrix product: enough columns for the products to run
/// near their peak, few enough that the transformed input and output (`16 × channels × tiles`
/// each, 400 KiB for the conv VAE's 64 channels and 98 tiles) stay in a core's L2 cache
/// (2 MiB on the machines of docs/performance.md) with room to spare; at 256 tiles (1 MiB each)
/// the transforms' stores miss it.
const TILES_PER_PRODUCT: usize = 128;

/// Whether [`forward`] and [`weight_grad`] take this geometry: a 3 × 3 kernel at stride 1 (any
/// padding) with at least 16 channels on each side. With fewer channels the products are too
/// thin for the transforms to pay off (the conv VAE's 1 → 32 and 32 → 1 layers).
pub(crate) fn applies(g: &Geometry) -> bool {
    g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.c >= 16 && g.o >= 16
}

/// Extra values at the end of each buffer and plane, so that rows can be moved as whole
/// 16-value blocks.
const SLACK: usize = 16;

/// The tile grid of one image. Tile `t = ty·tw + tx` of an image is its `t`-th value in every
/// transformed array, so that the transforms are flat loops over `t` (they vectorize).
struct Tiles {
    /// Tile rows and columns: `⌈oh / 2⌉`, `⌈ow / 2⌉`.
    th: usize,
    tw: usize,
}

impl Tiles {
    fn new(g: &Geometry) -> Self {
        Self {
            th: g.oh.div_ceil(2),
            tw: g.ow.div_ceil(2),
        }
    }

    /// Tiles per image.
    fn per_image(&self) -> usize {
        self.th * self.tw
    }

    /// Values of the largest plane (see [`Scratch::planes`]): `th + 1` rows of `tw`.
    fn plane(&self) -> usize {
        (self.th + 1) * self.tw
    }

    /// Images per matrix product.
    fn images_per_product(&self) -> usize {
        (TILES_PER_PRODUCT / self.per_image().max(1)).max(1)
    }
}

/// Per-thread buffers.
#[derive(Default)]
struct Scratch {
    /// One channel of the zero-padded input (or output gradient): `2·(th + 1)` rows of
    /// `2·tw + 2` values.
    padded: Vec<f32>,
    /// Its even and its odd columns: `tw + 1` values per row.
    even: Vec<f32>,
    odd: Vec<f32>,
    /// Eight planes, each [`Tiles::plane`] + [`SLACK`] long: for row parity `π` (even, odd
    /// rows) and column offset `j` (0–3), plane `(π, j)` holds `padded[2m + π][2tx + j]` at
    /// `m·tw + tx`. Tile `t = ty·tw + tx` then finds its 4 × 4 patch (rows `2ty … 2ty + 3`) at
    /// `t` and `t + tw` of the planes. For the output gradient, planes `(a, b)`, `a, b < 2`,
    /// hold `dy[2ty + a][2tx + b]` at `t`.
    planes: Vec<f32>,
    /// `V` (or the transformed output gradient): `16 × channels × tiles`.
    v: Vec<f32>,
    /// `M` (or `∂M`): `16 × o × tiles`.
    m: Vec<f32>,
    /// The four output values of every tile of one channel, before they are interleaved.
    y: Vec<f32>,
}

impl Scratch {
    /// Grows every buffer to what this geometry needs (they never shrink: each rayon thread
    /// keeps one [`Scratch`] for the life of the process, a few MiB, so that a training step
    /// neither allocates nor zeroes them again).
    fn fit(&mut self, g: &Geometry, tl: &Tiles) {
        let tiles = tl.images_per_product() * tl.per_image();
        let rows = 2 * (tl.th + 1);
        for (buffer, len) in [
            (&mut self.padded, rows * (2 * tl.tw + 2) + SLACK),
            (&mut self.even, rows * (tl.tw + 1) + SLACK),
            (&mut self.odd, rows * (tl.tw + 1) + SLACK),
            (&mut self.planes, 8 * (tl.plane() + SLACK)),
            (&mut self.v, XI * g.c * tiles),
            (&mut self.m, XI * g.o * tiles),
            (&mut self.y, 4 * tl.per_image()),
        ] {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's [`Scratch`], fitted to the geometry. `f` must not start rayon
/// work (a task stolen while `f` runs would find the scratch borrowed).
fn with_scratch<R>(g: &Geometry, tl: &Tiles, f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut s = cell.borrow_mut();
        s.fit(g, tl);
        f(&mut s)
    })
}

/// Fills [`Scratch::planes`] from one channel `src` (`src_h × src_w`) placed at row `top` and
/// column `left` of a zero-padded grid of `2·rows_per` rows: plane `(π, j)`, `π < 2`,
/// `j < offsets`, gets grid value `(2m + π, 2tx + j)` at `m·tw + tx`, `m < rows_per`. Every
/// step is a flat loop or a 16-value block move.
#[inline(always)]
fn split_planes(
    src: &[f32],
    (src_h, src_w): (usize, usize),
    (top, left): (usize, usize),
    (offsets, rows_per): (usize, usize),
    tl: &Tiles,
    s: &mut Scratch,
) {
    let tw = tl.tw;
    let (half, rows) = (tw + 1, 2 * rows_per);
    let row_len = 2 * half;
    let padded = &mut s.padded[..rows * row_len + SLACK];
    padded.fill(0.0);
    let cols = src_w.min(row_len.saturating_sub(left));
    if cols > 0 {
        for sy in 0..src_h.min(rows.saturating_sub(top)) {
            let from = sy * src_w;
            let to = &mut padded[(sy + top) * row_len + left..];
            if cols <= 16 && from + 16 <= src.len() {
                // Zeros past the row: padding, or the next row's values, written after.
                let block = masked_block(&src[from..], cols);
                for (t, b) in to[..16].iter_mut().zip(block) {
                    *t = f32::from_bits(b);
                }
            } else {
                to[..cols].copy_from_slice(&src[from..from + cols]);
            }
        }
    }
    let n = rows * half;
    let pairs = padded[..2 * n].chunks_exact(2);
    for ((e, o), pair) in s.even[..n].iter_mut().zip(&mut s.odd[..n]).zip(pairs) {
        *e = pair[0];
        *o = pair[1];
    }
    let plane = tl.plane() + SLACK;
    for parity in 0..2 {
        for m in 0..rows_per {
            let r = (2 * m + parity) * half;
            for j in 0..offsets {
                let from = if j % 2 == 0 { &s.even } else { &s.odd };
                let to = &mut s.planes[(parity * offsets + j) * plane + m * tw..];
                copy_blocks(to, &from[r + j / 2..], tw);
            }
        }
    }
}

/// Column `K` of `d B` for one patch row, whose four values are `q[0..4][t]`:
/// `d0 − d2, d1 + d2, d2 − d1, d1 − d3`.
#[inline(always)]
fn column<const K: usize>(q: &[&[f32]; 4], t: usize) -> f32 {
    match K {
        0 => q[0][t] - q[2][t],
        1 => q[1][t] + q[2][t],
        2 => q[2][t] - q[1][t],
        _ => q[1][t] - q[3][t],
    }
}

/// Column `K` of `V = Bᵀ (d B)` for all `n` tiles: rows `r0 − r2, r1 + r2, r2 − r1, r1 − r3` of
/// `d B`. `lo` and `hi` are the planes at `t` (patch rows 0 and 1: even, odd) and at `t + tw`
/// (rows 2 and 3).
#[inline(always)]
fn input_column<const K: usize>(
    (even_lo, odd_lo): (&[&[f32]; 4], &[&[f32]; 4]),
    (even_hi, odd_hi): (&[&[f32]; 4], &[&[f32]; 4]),
    [v0, v1, v2, v3]: [&mut [f32]; 4],
    n: usize,
) {
    let (v0, v1, v2, v3) = (&mut v0[..n], &mut v1[..n], &mut v2[..n], &mut v3[..n]);
    for t in 0..n {
        let r0 = column::<K>(even_lo, t);
        let r1 = column::<K>(odd_lo, t);
        let r2 = column::<K>(even_hi, t);
        let r3 = column::<K>(odd_hi, t);
        v0[t] = r0 - r2;
        v1[t] = r1 + r2;
        v2[t] = r2 - r1;
        v3[t] = r1 - r3;
    }
}

/// Four disjoint rows of `v`, each `n` long, starting at `at[i]` (in increasing order).
fn four_rows(v: &mut [f32], at: [usize; 4], n: usize) -> [&mut [f32]; 4] {
    let (_, rest) = v.split_at_mut(at[0]);
    let (r0, rest) = rest.split_at_mut(at[1] - at[0]);
    let (r1, rest) = rest.split_at_mut(at[2] - at[1]);
    let (r2, r3) = rest.split_at_mut(at[3] - at[2]);
    [&mut r0[..n], &mut r1[..n], &mut r2[..n], &mut r3[..n]]
}

/// Writes `V = Bᵀ d B` of every tile of one image `x` (`c × h × w`) into `v[ξ][c][t0 + t]`
/// (`stride` tiles per row of `v`).
#[inline(always)]
fn input_tiles_run(g: &Geometry, tl: &Tiles, x: &[f32], s: &mut Scratch, stride: usize, t0: usize) {
    let (tw, n) = (tl.tw, tl.per_image());
    let plane = tl.plane() + SLACK;
    for c in 0..g.c {
        split_planes(
            &x[c * g.h * g.w..][..g.h * g.w],
            (g.h, g.w),
            (g.ph, g.pw),
            (4, tl.th + 1),
            tl,
            s,
        );
        let planes = &s.planes;
        let p = |parity: usize, j: usize, shift: usize| {
            &planes[(parity * 4 + j) * plane + shift..][..n]
        };
        let at = |parity, shift| [0, 1, 2, 3].map(|j| p(parity, j, shift));
        let lo = (&at(0, 0), &at(1, 0));
        let hi = (&at(0, tw), &at(1, tw));
        let row = |i: usize, k: usize| ((4 * i + k) * g.c + c) * stride + t0;
        let rows = |k: usize| [0, 1, 2, 3].map(|i| row(i, k));
        input_column::<0>(lo, hi, four_rows(&mut s.v, rows(0), n), n);
        input_column::<1>(lo, hi, four_rows(&mut s.v, rows(1), n), n);
        input_column::<2>(lo, hi, four_rows(&mut s.v, rows(2), n), n);
        input_column::<3>(lo, hi, four_rows(&mut s.v, rows(3), n), n);
    }
}

multiversion!(fn input_tiles[](
    g: &Geometry,
    tl: &Tiles,
    x: &[f32],
    s: &mut Scratch,
    stride: usize,
    t0: usize,
) => input_tiles_run);

/// Writes `V` of one image like [`input_tiles`], through [`wide_rows`] when the CPU has
/// AVX-512 and a padded row fits one register (tiles per row ≤ 7: images up to 14 wide).
#[inline]
fn transform_input(g: &Geometry, tl: &Tiles, x: &[f32], s: &mut Scratch, stride: usize, t0: usize) {
    #[cfg(target_arch = "x86_64")]
    if wide_rows::applies(tl) {
        // SAFETY: `applies` checked that the CPU has AVX-512F.
        unsafe { wide_rows::input_tiles(g, tl, x, &mut s.v, stride, t0) };
        return;
    }
    input_tiles(g, tl, x, s, stride, t0);
}

/// Writes `∂M` of one image like [`output_grad_tiles`], through [`wide_rows`] where it applies.
#[inline]
fn transform_output_grad(
    g: &Geometry,
    tl: &Tiles,
    dy: &[f32],
    s: &mut Scratch,
    stride: usize,
    t0: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if wide_rows::applies(tl) && g.ow <= 2 * tl.tw {
        // SAFETY: `applies` checked that the CPU has AVX-512F.
        unsafe { wide_rows::output_grad_tiles(g, tl, dy, &mut s.m, stride, t0) };
        return;
    }
    output_grad_tiles(g, tl, dy, s, stride, t0);
}

/// Writes one image's output like [`output_tiles`], through [`wide_rows`] where it applies.
#[inline]
fn transform_output(
    g: &Geometry,
    tl: &Tiles,
    m: (&[f32], usize, usize),
    out: Epilogue<'_>,
    ys: &mut [f32],
    y: &mut [MaybeUninit<f32>],
) {
    #[cfg(target_arch = "x86_64")]
    if wide_rows::applies(tl) && g.ow <= 2 * tl.tw {
        // SAFETY: `applies` checked that the CPU has AVX-512F.
        unsafe { wide_rows::output_tiles(g, tl, m, out, y) };
        return;
    }
    output_tiles(g, tl, m, out, ys, y);
}

/// The input transform with one AVX-512 register per padded row (16 columns): `Bᵀ` as four
/// additions of whole rows, then `B` on each result with lane permutations, two rows at a time.
/// No plane copies and no loops of a few dozen tiles, which made the flat version cost more
/// than its matrix products on the conv VAE's 14 × 14 layers.
#[cfg(target_arch = "x86_64")]
mod wide_rows {
    use super::{Epilogue, Geometry, Tiles, XI};
    use crate::conv::lanes;
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// Whether [`input_tiles`] takes this tile grid on this CPU.
    pub(super) fn applies(tl: &Tiles) -> bool {
        2 * tl.tw + 2 <= 16 && std::arch::is_x86_feature_detected!("avx512f")
    }

    /// The permutation index vector whose lane `l` is `lane(l)`.
    fn index_vector(lane: impl Fn(i32) -> i32) -> __m512i {
        let lanes: [i32; 16] = std::array::from_fn(|l| lane(l as i32));
        // SAFETY: an unaligned load of 16 integers from a local array, with AVX-512F (every
        // caller runs on a CPU that has it).
        unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) }
    }

    /// Lane indices into the pair `(a, b)` of a permutation: lanes `0..8` read `a`, lanes
    /// `8..16` read `b`, each at `2·tx + offset` (clamped into the register; the lanes with
    /// `tx ≥ tw` are never stored).
    fn pick(offset: i32) -> __m512i {
        let lane = |l: i32| {
            let within = (2 * (l % 8) + offset).min(15);
            within + if l < 8 { 0 } else { 16 }
        };
        index_vector(lane)
    }

    /// Stores the four column values `cols[k]` of transform rows `i` (lanes 0–7) and `i + 1`
    /// (lanes 8–15) of one tile row: the `keep` lanes of row `r`, column `k` go to
    /// `dst[at(4r + k)…]`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, and `dst` must hold the `keep` lanes from every `at(ξ)`.
    #[target_feature(enable = "avx512f")]
    unsafe fn store_two_rows(
        dst: &mut [f32],
        cols: [__m512; 4],
        i: usize,
        keep: __mmask16,
        at: impl Fn(usize) -> usize,
    ) {
        for (k, value) in cols.into_iter().enumerate() {
            let high = _mm512_shuffle_f32x4::<0b11_10_11_10>(value, value);
            for (row, lanes) in [(i, value), (i + 1, high)] {
                // SAFETY: the caller's contract.
                unsafe {
                    _mm512_mask_storeu_ps(dst.as_mut_ptr().add(at(4 * row + k)), keep, lanes)
                };
            }
        }
    }

    /// Stores two consecutive tile rows at once, as [`store_two_rows`] stores one: tile rows
    /// `ty` and `ty + 1` are adjacent in the transformed arrays (tile `t = ty·tw + tx`), so
    /// lanes `0..tw` of `a` (row `ty`) and of `b` (row `ty + 1`) go to one store of `2·tw`
    /// lanes from `at(ξ)` (tile row `ty`'s place), halving the stores, which bound the
    /// transforms. `pairs` picks those lanes for transform rows `i` and `i + 1`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, and `dst` must hold the `keep` lanes from every `at(ξ)`.
    #[target_feature(enable = "avx512f")]
    unsafe fn store_tile_row_pair(
        dst: &mut [f32],
        (a, b): ([__m512; 4], [__m512; 4]),
        i: usize,
        (pairs, keep): ([__m512i; 2], __mmask16),
        at: impl Fn(usize) -> usize,
    ) {
        for k in 0..4 {
            for (row, pick) in [(i, pairs[0]), (i + 1, pairs[1])] {
                let lanes = _mm512_permutex2var_ps(a[k], pick, b[k]);
                // SAFETY: the caller's contract.
                unsafe {
                    _mm512_mask_storeu_ps(dst.as_mut_ptr().add(at(4 * row + k)), keep, lanes)
                };
            }
        }
    }

    /// The lane picks of [`store_tile_row_pair`] for `tw ≤ 7` tiles a row: lanes `0..tw` of
    /// `a`, then of `b` (transform row `i`: lanes `0..8` of each), and lanes `8..8 + tw` of
    /// each (row `i + 1`); and the mask of the `2·tw` lanes stored.
    fn tile_row_pairs(tw: usize) -> ([__m512i; 2], __mmask16) {
        debug_assert!(tw <= 7);
        let pick = |from: i32| {
            let tw = tw as i32;
            let lane = |l: i32| {
                if l < tw {
                    from + l
                } else {
                    16 + from + (l - tw).min(7)
                }
            };
            index_vector(lane)
        };
        ([pick(0), pick(8)], lanes(2 * tw))
    }

    /// Writes `V = Bᵀ d B` of every tile of one image `x` (`c × h × w`) into
    /// `v[ξ][c][t0 + t]` (`stride` tiles per row of `v`), as [`super::input_tiles`] does.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, and the grid must fit (see [`applies`]).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn input_tiles(
        g: &Geometry,
        tl: &Tiles,
        x: &[f32],
        v: &mut [f32],
        stride: usize,
        t0: usize,
    ) {
        let (th, tw) = (tl.th, tl.tw);
        assert!(2 * tw + 2 <= 16, "a padded row fits one register");
        assert!(x.len() >= g.c * g.h * g.w, "the whole image");
        assert!(
            t0 + th * tw <= stride && XI * g.c * stride <= v.len(),
            "V holds the image's tiles"
        );
        let rows = 2 * th + 2;
        let cols = g.w.min((2 * tw + 2).saturating_sub(g.pw));
        let load: __mmask16 = (((1u32 << cols) - 1) << g.pw.min(16)) as __mmask16;
        let keep = lanes(tw);
        let (even, odd, even_next, odd_next) = (pick(0), pick(1), pick(2), pick(3));
        // The transformed columns of tile row `ty` from its patch rows, for transform rows
        // (0, 1) and (2, 3).
        let tile_row = |p0: __m512, p1: __m512, p2: __m512, p3: __m512| {
            // Bᵀ d: rows d0 − d2, d1 + d2, d2 − d1, d1 − d3 of the patch rows.
            let r = [
                _mm512_sub_ps(p0, p2),
                _mm512_add_ps(p1, p2),
                _mm512_sub_ps(p2, p1),
                _mm512_sub_ps(p1, p3),
            ];
            [0, 2].map(|i| {
                let (a, b) = (r[i], r[i + 1]);
                // Columns 2tx, 2tx + 1, 2tx + 2, 2tx + 3 of rows i (lanes 0–7) and i + 1
                // (lanes 8–15).
                let e = _mm512_permutex2var_ps(a, even, b);
                let o = _mm512_permutex2var_ps(a, odd, b);
                let e2 = _mm512_permutex2var_ps(a, even_next, b);
                let o2 = _mm512_permutex2var_ps(a, odd_next, b);
                // (Bᵀ d) B: columns c0 − c2, c1 + c2, c2 − c1, c1 − c3.
                [
                    _mm512_sub_ps(e, e2),
                    _mm512_add_ps(o, e2),
                    _mm512_sub_ps(e2, o),
                    _mm512_sub_ps(o, o2),
                ]
            })
        };
        let pairs = tile_row_pairs(tw);
        for c in 0..g.c {
            let plane = &x[c * g.h * g.w..][..g.h * g.w];
            // Padded row `r`: image row `r − ph` at columns `pw …`, zeros elsewhere.
            let row = |r: usize| {
                if r >= g.ph && r - g.ph < g.h {
                    // SAFETY: the mask reads `cols ≤ w` values from the start of an image row.
                    unsafe { _mm512_maskz_expandloadu_ps(load, plane[(r - g.ph) * g.w..].as_ptr()) }
                } else {
                    _mm512_setzero_ps()
                }
            };
            let at = |ty: usize| move |xi: usize| (xi * g.c + c) * stride + t0 + ty * tw;
            let (mut p0, mut p1) = (row(0), row(1));
            let mut ty = 0;
            while ty < th {
                debug_assert!(2 * ty + 3 < rows);
                let (p2, p3) = (row(2 * ty + 2), row(2 * ty + 3));
                let first = tile_row(p0, p1, p2, p3);
                if ty + 1 < th {
                    let (p4, p5) = (row(2 * ty + 4), row(2 * ty + 5));
                    let second = tile_row(p2, p3, p4, p5);
                    for (h, i) in [(0, 0), (1, 2)] {
                        // SAFETY: `2·tw` values from each `at(ξ)` (tile rows ty and ty + 1),
                        // inside `v` (asserted above).
                        unsafe { store_tile_row_pair(v, (first[h], second[h]), i, pairs, at(ty)) };
                    }
                    (p0, p1) = (p4, p5);
                    ty += 2;
                } else {
                    for (h, i) in [(0, 0), (1, 2)] {
                        // SAFETY: `tw` values from each `at(ξ)`, inside `v` (asserted above).
                        unsafe { store_two_rows(v, first[h], i, keep, at(ty)) };
                    }
                    ty += 1;
                }
            }
        }
    }

    /// Writes `∂M = A ∂y Aᵀ` of every tile of one image's output gradient `dy`
    /// (`o × oh × ow`) into `m[ξ][o][t0 + t]`, as [`super::output_grad_tiles`] does: `A` as
    /// whole-row additions, `Aᵀ` with lane permutations.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, and the grid must fit (see [`applies`]).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn output_grad_tiles(
        g: &Geometry,
        tl: &Tiles,
        dy: &[f32],
        m: &mut [f32],
        stride: usize,
        t0: usize,
    ) {
        let (th, tw) = (tl.th, tl.tw);
        assert!(
            2 * tw + 2 <= 16 && g.ow <= 2 * tw,
            "an output row fits one register"
        );
        assert!(dy.len() >= g.o * g.oh * g.ow, "the whole image");
        assert!(
            t0 + th * tw <= stride && XI * g.o * stride <= m.len(),
            "∂M holds the image's tiles"
        );
        let load = lanes(g.ow);
        let keep = lanes(tw);
        let (even, odd, zero) = (pick(0), pick(1), _mm512_setzero_ps());
        for o in 0..g.o {
            let plane = &dy[o * g.oh * g.ow..][..g.oh * g.ow];
            // Row `r` of the gradient, zero past its last row and column.
            let row = |r: usize| {
                if r < g.oh {
                    // SAFETY: the mask reads the row's `ow` values.
                    unsafe { _mm512_maskz_loadu_ps(load, plane[r * g.ow..].as_ptr()) }
                } else {
                    zero
                }
            };
            for ty in 0..th {
                let (y0, y1) = (row(2 * ty), row(2 * ty + 1));
                // A ∂y: rows y0, y0 + y1, y0 − y1, −y1.
                let r = [
                    y0,
                    _mm512_add_ps(y0, y1),
                    _mm512_sub_ps(y0, y1),
                    _mm512_sub_ps(zero, y1),
                ];
                for i in [0, 2] {
                    let (a, b) = (r[i], r[i + 1]);
                    let e = _mm512_permutex2var_ps(a, even, b);
                    let od = _mm512_permutex2var_ps(a, odd, b);
                    // (A ∂y) Aᵀ: columns e, e + o, e − o, −o.
                    let cols = [
                        e,
                        _mm512_add_ps(e, od),
                        _mm512_sub_ps(e, od),
                        _mm512_sub_ps(zero, od),
                    ];
                    let at = |xi: usize| (xi * g.o + o) * stride + t0 + ty * tw;
                    // SAFETY: `tw` values from each `at(ξ)`, inside `m` (asserted above).
                    unsafe { store_two_rows(m, cols, i, keep, at) };
                }
            }
        }
    }

    /// Writes `y = Aᵀ M A` with the [`Epilogue`] `out` of every tile of one image from
    /// `m[ξ][o][t0 + t]` into `y` (`o × oh × ow`), as [`super::output_tiles`] does.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, and the grid must fit (see [`applies`]).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn output_tiles(
        g: &Geometry,
        tl: &Tiles,
        (m, stride, t0): (&[f32], usize, usize),
        out: Epilogue<'_>,
        y: &mut [MaybeUninit<f32>],
    ) {
        let (th, tw) = (tl.th, tl.tw);
        assert!(
            2 * tw + 2 <= 16 && g.ow <= 2 * tw,
            "an output row fits one register"
        );
        assert!(y.len() >= g.o * g.oh * g.ow, "the whole image");
        assert!(
            t0 + th * tw <= stride && XI * g.o * stride <= m.len(),
            "M holds the image's tiles"
        );
        let read = lanes(tw);
        let write = lanes(g.ow);
        // Lanes 2tx and 2tx + 1 of an output row from tile tx of the left and right values.
        let interleave = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let floor = _mm512_set1_ps(out.floor());
        for o in 0..g.o {
            let bias = _mm512_set1_ps(out.bias_of(o));
            for ty in 0..th {
                // SAFETY: `tw` values of row (ξ, o) from the image's tile row, inside `m`.
                let mm: [__m512; XI] = std::array::from_fn(|xi| unsafe {
                    let at = (xi * g.o + o) * stride + t0 + ty * tw;
                    _mm512_maskz_loadu_ps(read, m.as_ptr().add(at))
                });
                // M A: each row's (m0 + m1 + m2, m1 − m2 − m3).
                let q: [(__m512, __m512); 4] = std::array::from_fn(|r| {
                    let [m0, m1, m2, m3] = [mm[4 * r], mm[4 * r + 1], mm[4 * r + 2], mm[4 * r + 3]];
                    (
                        _mm512_add_ps(_mm512_add_ps(m0, m1), m2),
                        _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3),
                    )
                });
                // Aᵀ (M A): rows q0 + q1 + q2 and q1 − q2 − q3.
                let top = (
                    _mm512_add_ps(_mm512_add_ps(q[0].0, q[1].0), q[2].0),
                    _mm512_add_ps(_mm512_add_ps(q[0].1, q[1].1), q[2].1),
                );
                let bottom = (
                    _mm512_sub_ps(_mm512_sub_ps(q[1].0, q[2].0), q[3].0),
                    _mm512_sub_ps(_mm512_sub_ps(q[1].1, q[2].1), q[3].1),
                );
                for (a, (left, right)) in [(0, top), (1, bottom)] {
                    let oy = 2 * ty + a;
                    if oy >= g.oh {
                        break;
                    }
                    let v = _mm512_add_ps(_mm512_permutex2var_ps(left, interleave, right), bias);
                    // The activation's floor where v < floor (NaN stays).
                    let below = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, floor);
                    let v = _mm512_mask_blend_ps(below, v, floor);
                    let at = (o * g.oh + oy) * g.ow;
                    // SAFETY: `ow` values of output row oy, inside `y`; MaybeUninit<f32> has
                    // the layout of f32.
                    unsafe {
                        _mm512_mask_storeu_ps(y.as_mut_ptr().add(at).cast::<f32>(), write, v)
                    };
                }
            }
        }
    }
}

/// The forward products `M[ξ] = U[ξ] · V[ξ]` read straight from the layouts the transforms
/// use (`U[ξ]` `o × c`, `V[ξ]` `c × tiles`, `M[ξ]` `o × tiles`, row-major), with no packing
/// (gemm would copy each `V[ξ]` into its panels before multiplying). A
/// register block holds 8 output channels × 48 tiles (three 16-lane vectors, 24
/// accumulators); per input channel it loads the three vectors of `V[ξ]`'s row and adds them
/// times one broadcast weight per output channel. The block's 64 rows of `V[ξ]` (12 KiB) and
/// `U[ξ]` (16 KiB) stay in the L1 cache while the output channels are swept.
#[cfg(target_arch = "x86_64")]
mod product {
    use crate::conv::lanes;
    use std::arch::x86_64::*;

    /// Tiles per register block: three vectors.
    const TILES: usize = 48;
    /// Output channels per register block.
    const ROWS: usize = 8;

    /// Whether [`product`] runs on this CPU: it has AVX-512F.
    pub(super) fn applies() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }

    /// `m[r][t] = Σ_k u[r][k] · v[k][t]` for `r < o`, `t < tiles`: `u` is `o × c`, `v`
    /// `c × tiles` and `m` `o × tiles`, each row-major and contiguous.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn product(
        (o, c, tiles): (usize, usize, usize),
        u: &[f32],
        v: &[f32],
        m: &mut [f32],
    ) {
        assert!(
            u.len() >= o * c && v.len() >= c * tiles && m.len() >= o * tiles,
            "product: operands too short"
        );
        for t0 in (0..tiles).step_by(TILES) {
            let left = tiles - t0;
            // SAFETY: the block's tiles t0 … t0 + left.min(48) are inside every row (the
            // lengths are asserted above); masked lanes are neither read nor written.
            unsafe {
                match left.div_ceil(16) {
                    1 => rows::<1>((o, c, tiles), u, v, m, t0, left),
                    2 => rows::<2>((o, c, tiles), u, v, m, t0, left),
                    _ => rows::<3>((o, c, tiles), u, v, m, t0, left),
                }
            }
        }
    }

    /// Every output channel's block of `V` vectors from tile `t0` (`left` tiles remain).
    ///
    /// # Safety
    /// As [`product`], with `t0 < tiles` and `V = ⌈left.min(48) / 16⌉`.
    #[target_feature(enable = "avx512f")]
    unsafe fn rows<const V: usize>(
        (o, c, tiles): (usize, usize, usize),
        u: &[f32],
        v: &[f32],
        m: &mut [f32],
        t0: usize,
        left: usize,
    ) {
        let masks: [__mmask16; V] = std::array::from_fn(|j| lanes(left.saturating_sub(16 * j)));
        let mut r = 0;
        // SAFETY: the caller's contract; rows r … r + R are below o.
        unsafe {
            while r + ROWS <= o {
                block::<ROWS, V>(c, u.as_ptr().add(r * c), v, (m, tiles), (r, t0), masks);
                r += ROWS;
            }
            while r < o {
                block::<1, V>(c, u.as_ptr().add(r * c), v, (m, tiles), (r, t0), masks);
                r += 1;
            }
        }
    }

    /// Rows `r … r + R` and the `V` vectors of tiles from `t0` of `M`.
    ///
    /// # Safety
    /// As [`rows`]; `u` points at row `r` of `U`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn block<const R: usize, const V: usize>(
        c: usize,
        u: *const f32,
        v: &[f32],
        (m, tiles): (&mut [f32], usize),
        (r, t0): (usize, usize),
        masks: [__mmask16; V],
    ) {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for k in 0..c {
            // SAFETY: row k of V holds the block's unmasked lanes; U's rows r … r + R hold c
            // values.
            unsafe {
                let row = v.as_ptr().add(k * tiles + t0);
                let x: [__m512; V] = std::array::from_fn(|j| {
                    _mm512_maskz_loadu_ps(masks[j], row.wrapping_add(16 * j))
                });
                for (i, a) in acc.iter_mut().enumerate() {
                    let w = _mm512_set1_ps(*u.add(i * c + k));
                    for j in 0..V {
                        a[j] = _mm512_fmadd_ps(w, x[j], a[j]);
                    }
                }
            }
        }
        for (i, a) in acc.iter().enumerate() {
            let at = m.as_mut_ptr().wrapping_add((r + i) * tiles + t0);
            for j in 0..V {
                // SAFETY: row r + i of M holds the block's unmasked lanes.
                unsafe { _mm512_mask_storeu_ps(at.wrapping_add(16 * j), masks[j], a[j]) };
            }
        }
    }
}

/// Row `r` of `M A` at tile `t`: `(m0 + m1 + m2, m1 − m2 − m3)` of `M`'s row `r`.
#[inline(always)]
fn times_a(mm: &[&[f32]; XI], r: usize, t: usize) -> (f32, f32) {
    let (m0, m1, m2, m3) = (
        mm[4 * r][t],
        mm[4 * r + 1][t],
        mm[4 * r + 2][t],
        mm[4 * r + 3][t],
    );
    (m0 + m1 + m2, m1 - m2 - m3)
}

/// Writes `y = Aᵀ M A` with the [`Epilogue`] `out` (bias, activation) of every tile of one image from `m[ξ][o][t0 + t]` (`stride`
/// tiles per row of `m`) into `y` (`o × oh × ow`); the parts of tiles past the output's last
/// row or column are dropped.
#[inline(always)]
fn output_tiles_run(
    g: &Geometry,
    tl: &Tiles,
    (m, stride, t0): (&[f32], usize, usize),
    out: Epilogue<'_>,
    ys: &mut [f32],
    y: &mut [MaybeUninit<f32>],
) {
    let (tw, n) = (tl.tw, tl.per_image());
    let pairs = g.ow / 2;
    for o in 0..g.o {
        let (b, floor) = (out.bias_of(o), out.floor());
        let mm: [&[f32]; XI] = std::array::from_fn(|xi| &m[(xi * g.o + o) * stride + t0..][..n]);
        let [y00, y01, y10, y11] = four_rows(ys, [0, n, 2 * n, 3 * n], n);
        for t in 0..n {
            let (q0, q1, q2, q3) = (
                times_a(&mm, 0, t),
                times_a(&mm, 1, t),
                times_a(&mm, 2, t),
                times_a(&mm, 3, t),
            );
            y00[t] = at_least(q0.0 + q1.0 + q2.0 + b, floor);
            y01[t] = at_least(q0.1 + q1.1 + q2.1 + b, floor);
            y10[t] = at_least(q1.0 - q2.0 - q3.0 + b, floor);
            y11[t] = at_least(q1.1 - q2.1 - q3.1 + b, floor);
        }
        for oy in 0..g.oh {
            let (ty, a) = (oy / 2, oy % 2);
            let (left, right) = if a == 0 {
                (&*y00, &*y01)
            } else {
                (&*y10, &*y11)
            };
            let (left, right) = (&left[ty * tw..][..tw], &right[ty * tw..][..tw]);
            let row = &mut y[(o * g.oh + oy) * g.ow..][..g.ow];
            let (pair_cols, last) = row.split_at_mut(2 * pairs);
            for ((out, l), r) in pair_cols.chunks_exact_mut(2).zip(left).zip(right) {
                out[0].write(*l);
                out[1].write(*r);
            }
            if let Some(out) = last.first_mut() {
                out.write(left[pairs]);
            }
        }
    }
}

multiversion!(fn output_tiles[](
    g: &Geometry,
    tl: &Tiles,
    m: (&[f32], usize, usize),
    out: Epilogue<'_>,
    ys: &mut [f32],
    y: &mut [MaybeUninit<f32>],
) => output_tiles_run);

/// Column `K` of `∂y Aᵀ` for one output row `(y0, y1)`: `y0, y0 + y1, y0 − y1, −y1`.
#[inline(always)]
fn times_a_transposed<const K: usize>(y0: f32, y1: f32) -> f32 {
    match K {
        0 => y0,
        1 => y0 + y1,
        2 => y0 - y1,
        _ => -y1,
    }
}

/// Column `K` of `∂M = A (∂y Aᵀ)` for all `n` tiles: rows `r0, r0 + r1, r0 − r1, −r1`.
#[inline(always)]
fn output_grad_column<const K: usize>(
    [y00, y01, y10, y11]: [&[f32]; 4],
    [d0, d1, d2, d3]: [&mut [f32]; 4],
    n: usize,
) {
    let (y00, y01, y10, y11) = (&y00[..n], &y01[..n], &y10[..n], &y11[..n]);
    let (d0, d1, d2, d3) = (&mut d0[..n], &mut d1[..n], &mut d2[..n], &mut d3[..n]);
    for t in 0..n {
        let r0 = times_a_transposed::<K>(y00[t], y01[t]);
        let r1 = times_a_transposed::<K>(y10[t], y11[t]);
        d0[t] = r0;
        d1[t] = r0 + r1;
        d2[t] = r0 - r1;
        d3[t] = -r1;
    }
}

/// Writes `∂M = A ∂y Aᵀ` of every tile of one image's output gradient `dy` (`o × oh × ow`,
/// zero past its last row and column) into `dm[ξ][o][t0 + t]` (in [`Scratch::m`]).
#[inline(always)]
fn output_grad_tiles_run(
    g: &Geometry,
    tl: &Tiles,
    dy: &[f32],
    s: &mut Scratch,
    stride: usize,
    t0: usize,
) {
    let n = tl.per_image();
    let plane = tl.plane() + SLACK;
    for o in 0..g.o {
        split_planes(
            &dy[o * g.oh * g.ow..][..g.oh * g.ow],
            (g.oh, g.ow),
            (0, 0),
            (2, tl.th),
            tl,
            s,
        );
        let planes = &s.planes;
        let y = [0, 1, 2, 3].map(|ab| &planes[ab * plane..][..n]);
        let row = |xi: usize| (xi * g.o + o) * stride + t0;
        let rows = |k: usize| [row(k), row(4 + k), row(8 + k), row(12 + k)];
        output_grad_column::<0>(y, four_rows(&mut s.m, rows(0), n), n);
        output_grad_column::<1>(y, four_rows(&mut s.m, rows(1), n), n);
        output_grad_column::<2>(y, four_rows(&mut s.m, rows(2), n), n);
        output_grad_column::<3>(y, four_rows(&mut s.m, rows(3), n), n);
    }
}

multiversion!(fn output_grad_tiles[](
    g: &Geometry,
    tl: &Tiles,
    dy: &[f32],
    s: &mut Scratch,
    stride: usize,
    t0: usize,
) => output_grad_tiles_run);

/// `G` of F(2×2, 3×3), 4 × 3.
const G: [[f32; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// `U[ξ][o][c] = (G g Gᵀ)[ξ]` for every filter `g = weight[o][c]` (`o × c × 3 × 3`).
fn transform_weight(g: &Geometry, weight: &[f32]) -> Vec<f32> {
    let pairs = g.o * g.c;
    let mut u = vec![0.0f32; XI * pairs];
    for (pair, f) in weight.chunks_exact(9).enumerate() {
        // G g: 4 × 3.
        let gg: [[f32; 3]; 4] = std::array::from_fn(|k| {
            std::array::from_fn(|j| (0..3).map(|i| G[k][i] * f[3 * i + j]).sum())
        });
        for k in 0..4 {
            for l in 0..4 {
                u[(4 * k + l) * pairs + pair] = (0..3).map(|j| gg[k][j] * G[l][j]).sum();
            }
        }
    }
    u
}

/// The convolution's output, `o × oh × ow` per image, with the [`Epilogue`] `out`.
pub(crate) fn forward(g: &Geometry, x: &[f32], weight: &[f32], out: Epilogue<'_>) -> Vec<f32> {
    let tl = Tiles::new(g);
    let u = transform_weight(g, weight);
    let per_task = images_per_task(g);
    let (feature, image, tiles) = (g.feature(), g.image(), tl.per_image());
    #[cfg(target_arch = "x86_64")]
    let own_product = product::applies();
    let mut ys = uninit(g.batch * feature);
    ys.par_chunks_mut(feature * per_task)
        .enumerate()
        .for_each(|(task, outs)| {
            with_scratch(g, &tl, |s| {
                let first = task * per_task;
                let images = outs.len() / feature;
                for start in (0..images).step_by(tl.images_per_product()) {
                    let n = tl.images_per_product().min(images - start);
                    let stride = n * tiles;
                    for i in 0..n {
                        let b = first + start + i;
                        transform_input(g, &tl, &x[b * image..][..image], s, stride, i * tiles);
                    }
                    for xi in 0..XI {
                        let (mo, uo, vo) = (xi * g.o * stride, xi * g.o * g.c, xi * g.c * stride);
                        #[cfg(target_arch = "x86_64")]
                        if own_product {
                            // SAFETY: `product::applies` checked that the CPU has AVX-512F.
                            unsafe {
                                product::product(
                                    (g.o, g.c, stride),
                                    &u[uo..],
                                    &s.v[vo..],
                                    &mut s.m[mo..],
                                )
                            };
                            continue;
                        }
                        // SAFETY: m[ξ] is o × stride, U[ξ] o × c and V[ξ] c × stride, row-major,
                        // inside their buffers.
                        unsafe {
                            matmul(
                                (g.o, stride, g.c),
                                (s.m[mo..].as_mut_ptr(), stride, 1),
                                false,
                                (u[uo..].as_ptr(), g.c, 1),
                                (s.v[vo..].as_ptr(), stride, 1),
                            );
                        }
                    }
                    for i in 0..n {
                        let y = &mut outs[(start + i) * feature..][..feature];
                        let m = (&s.m[..], stride, i * tiles);
                        transform_output(g, &tl, m, out, &mut s.y, y);
                    }
                }
            })
        });
    // SAFETY: output_tiles wrote every value of every image.
    unsafe { assume_init(ys) }
}

/// The gradient with respect to the weight, `o × c × 3 × 3`: `Gᵀ (Σ ∂M · Vᵀ) G`.
pub(crate) fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let tl = Tiles::new(g);
    let per_task = images_per_task(g);
    let tasks = g.batch.div_ceil(per_task);
    let (feature, image, tiles, pairs) = (g.feature(), g.image(), tl.per_image(), g.o * g.c);
    let du = (0..tasks)
        .into_par_iter()
        .fold(
            || vec![0.0f32; XI * pairs],
            |mut du, task| {
                with_scratch(g, &tl, |s| {
                    let end = ((task + 1) * per_task).min(g.batch);
                    let mut start = task * per_task;
                    while start < end {
                        let n = tl.images_per_product().min(end - start);
                        let stride = n * tiles;
                        for (i, b) in (start..start + n).enumerate() {
                            transform_input(g, &tl, &x[b * image..][..image], s, stride, i * tiles);
                            let dy_b = &dy[b * feature..][..feature];
                            transform_output_grad(g, &tl, dy_b, s, stride, i * tiles);
                        }
                        for xi in 0..XI {
                            // SAFETY: ∂U[ξ] is o × c, ∂M[ξ] o × stride (row-major) and V[ξ]ᵀ
                            // stride × c, read from the c × stride V[ξ] with strides
                            // (1, stride).
                            unsafe {
                                matmul(
                                    (g.o, g.c, stride),
                                    (du[xi * pairs..].as_mut_ptr(), g.c, 1),
                                    true,
                                    (s.m[xi * g.o * stride..].as_ptr(), stride, 1),
                                    (s.v[xi * g.c * stride..].as_ptr(), 1, stride),
                                );
                            }
                        }
                        start += n;
                    }
                });
                du
            },
        )
        .reduce(|| vec![0.0f32; XI * pairs], add_vectors);
    // ∂g = Gᵀ ∂U G for every filter.
    let mut dw = vec![0.0f32; 9 * pairs];
    for (pair, f) in dw.chunks_exact_mut(9).enumerate() {
        // ∂U G: 4 × 3; then Gᵀ (∂U G).
        let ug: [[f32; 3]; 4] = std::array::from_fn(|k| {
            std::array::from_fn(|j| {
                (0..4)
                    .map(|l| du[(4 * k + l) * pairs + pair] * G[l][j])
                    .sum()
            })
        });
        for (ij, v) in f.iter_mut().enumerate() {
            let (i, j) = (ij / 3, ij % 3);
            *v = G.iter().zip(&ug).map(|(gk, uk)| gk[i] * uk[j]).sum();
        }
    }
    dw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{check_against_patch_matrix, conv3x3};

    /// Winograd against the patch-matrix kernels: odd and even sizes, every padding up to
    /// beyond the kernel's reach, batches that span several products with a remainder.
    #[test]
    fn equals_the_patch_matrix_convolution() {
        // (batch, c, (h, w), o, padding before, padding after)
        let cases = [
            (3, 16, (14, 14), 16, (1, 1), (1, 1)),
            (2, 16, (9, 11), 24, (0, 0), (0, 0)),
            (2, 17, (5, 6), 16, (2, 1), (2, 1)),
            (1, 16, (4, 3), 18, (0, 1), (2, 0)),
            (37, 16, (7, 7), 16, (1, 1), (1, 1)),
            (2, 20, (1, 1), 16, (3, 3), (3, 3)),
            // More than 7 tiles a row: the flat input transform.
            (2, 16, (9, 21), 16, (1, 1), (1, 1)),
        ];
        for (batch, c, hw, o, before, after) in cases {
            let g = conv3x3(batch, c, hw, o, before, after);
            assert!(applies(&g));
            check_against_patch_matrix("Winograd", &g, (forward, weight_grad));
        }
    }

    /// The AVX-512 transforms against the flat ones, value for value (within rounding: the
    /// two add in different orders), on grids with every padding and up to 7 tiles a row: the
    /// input transform, the output gradient's and the output's (with bias and ReLU).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_register_transforms_equal_the_flat_ones() {
        use crate::tests::{assert_close_scaled, spread};
        let cases = [
            (3, 16, (14, 14), 16, (1, 1), (1, 1)),
            (2, 16, (9, 11), 24, (0, 0), (0, 0)),
            (2, 17, (5, 6), 16, (2, 1), (2, 1)),
            (1, 16, (4, 3), 18, (0, 1), (2, 0)),
            (2, 20, (1, 1), 16, (3, 3), (3, 3)),
            (2, 16, (12, 13), 16, (2, 2), (0, 1)),
        ];
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        for (batch, c, hw, o, before, after) in cases {
            let g = conv3x3(batch, c, hw, o, before, after);
            let tl = Tiles::new(&g);
            assert!(wide_rows::applies(&tl), "{g:?}");
            let x = spread(g.batch * g.image(), -1.0, 1.0, 7);
            let dy = spread(g.batch * g.feature(), -1.0, 1.0, 8);
            let (mut flat, mut wide) = (Scratch::default(), Scratch::default());
            let (n, tiles) = (g.batch, tl.per_image());
            for s in [&mut flat, &mut wide] {
                s.fit(&g, &tl);
                // The whole batch in one product's buffers.
                s.v.resize(s.v.len().max(XI * g.c * n * tiles), 0.0);
                s.m.resize(s.m.len().max(XI * g.o * n * tiles), 0.0);
            }
            for b in 0..n {
                let image = &x[b * g.image()..][..g.image()];
                let grad = &dy[b * g.feature()..][..g.feature()];
                input_tiles(&g, &tl, image, &mut flat, n * tiles, b * tiles);
                output_grad_tiles(&g, &tl, grad, &mut flat, n * tiles, b * tiles);
                // SAFETY: the CPU has AVX-512F and the grid fits (checked above).
                unsafe {
                    wide_rows::input_tiles(&g, &tl, image, &mut wide.v, n * tiles, b * tiles);
                    wide_rows::output_grad_tiles(&g, &tl, grad, &mut wide.m, n * tiles, b * tiles);
                }
            }
            let names = ("registers", "flat");
            let (len_v, len_m) = (XI * g.c * n * tiles, XI * g.o * n * tiles);
            let what = format!("{g:?}");
            assert_close_scaled(&what, &wide.v[..len_v], &flat.v[..len_v], 1e-6, names);
            assert_close_scaled(&what, &wide.m[..len_m], &flat.m[..len_m], 1e-6, names);
            // The output transform of the same ∂M values, as if they were M.
            let bias = spread(g.o, -1.0, 1.0, 9);
            for relu in [false, true] {
                let out = Epilogue {
                    bias: Some(&bias),
                    relu,
                };
                let mut ys = [(); 2].map(|_| [MaybeUninit::<f32>::uninit(); 1].repeat(g.feature()));
                for b in 0..n {
                    let m = (&flat.m[..], n * tiles, b * tiles);
                    output_tiles(&g, &tl, m, out, &mut flat.y, &mut ys[0]);
                    // SAFETY: as above.
                    unsafe { wide_rows::output_tiles(&g, &tl, m, out, &mut ys[1]) };
                    // SAFETY: both wrote every value of the image.
                    let [want, got] = [0, 1].map(|k| unsafe {
                        std::slice::from_raw_parts(ys[k].as_ptr().cast::<f32>(), g.feature())
                    });
                    assert_close_scaled(&format!("{what} output"), got, want, 1e-6, names);
                }
            }
        }
    }

    /// The packing-free product against a plain triple loop, on shapes with every kind of
    /// remainder: output channels not a multiple of the 8-row block, tile counts below, at
    /// and past one, two and three 16-lane vectors of a 48-tile block.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_product_kernel_equals_the_plain_product() {
        use crate::tests::{assert_close_scaled, spread};
        if !product::applies() {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        for (o, c) in [(1, 1), (8, 16), (13, 17), (64, 64)] {
            for tiles in [1, 15, 16, 17, 33, 47, 48, 49, 98, 130] {
                let u = spread(o * c, -1.0, 1.0, 3);
                let v = spread(c * tiles, -1.0, 1.0, 4);
                let mut want = vec![0.0f32; o * tiles];
                for r in 0..o {
                    for t in 0..tiles {
                        want[r * tiles + t] = (0..c).map(|k| u[r * c + k] * v[k * tiles + t]).sum();
                    }
                }
                // One value of slack past the end: it must stay as it was.
                let mut got = vec![f32::NAN; o * tiles + 1];
                // SAFETY: the CPU has AVX-512F (checked above).
                unsafe { product::product((o, c, tiles), &u, &v, &mut got) };
                let what = format!("o {o}, c {c}, tiles {tiles}");
                assert_close_scaled(&what, &got[..o * tiles], &want, 1e-6, ("kernel", "loop"));
                assert!(got[o * tiles].is_nan(), "{what}: wrote past the product");
            }
        }
    }

    #[test]
    fn takes_only_wide_3x3_stride_1_convolutions() {
        let g = conv3x3(1, 64, (14, 14), 64, (1, 1), (1, 1));
        assert!(applies(&g));
        assert!(!applies(&Geometry { c: 1, ..g }));
        assert!(!applies(&Geometry { o: 1, ..g }));
        assert!(!applies(&Geometry { sh: 2, oh: 7, ..g }));
        assert!(!applies(&Geometry { kw: 2, ow: 13, ..g }));
    }
}
