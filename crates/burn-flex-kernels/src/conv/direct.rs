//! Direct 3 × 3, stride-1 convolutions for layers with very few channels on one side (the
//! conv VAE's first layer, 1 → 32, and its last, 32 → 1).
//!
//! A patch matrix for such a layer is large (`9·c` rows of one value per output pixel) while
//! the matrix product with it is thin (one or a few rows, or a 9-long inner dimension), so
//! building it costs more than the arithmetic. Here the zero-padded input `x̃` of one image is
//! laid out once with a row stride `s`, and an output plane is kept at the same spacing, so
//! that every tap `(i, j)` is the same input plane read from offset `i·s + j`: flat loops that
//! vectorize.
//!
//! - forward: `y[o][f] = b[o] + Σ_c Σ_{i,j} w[o][c][i][j] · x̃[c][f + i·s + j]` for every
//!   position `f = oy·s + ox` (the nine taps of one channel in one pass)
//! - weight gradient: `∂w[o][c][i][j] = Σ_images Σ_f ∂y[o][f] · x̃[c][f + i·s + j]`, with `∂y`
//!   zero past each row's `ow` values (one dot product per tap, in four 16-lane partial sums)
//!
//! The input gradient of a stride-1 convolution is the forward pass of its adjoint, which also
//! has a one-channel side, so it runs through [`forward`].

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::buffer::{assume_init, uninit};

use super::{Epilogue, Geometry, add_vectors, copy_row, images_per_task};

/// Values per register block.
const LANES: usize = 16;

/// Whether [`forward`] and [`weight_grad`] take this geometry: a 3 × 3 kernel at stride 1 with
/// at most 4 channels on one side.
pub(crate) fn applies(g: &Geometry) -> bool {
    g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.c.min(g.o) <= 4
}

/// The zero-padded copy of one image: `c` planes of `rows` rows, `stride` values per row.
struct Padded {
    rows: usize,
    stride: usize,
    values: Vec<f32>,
}

impl Padded {
    /// Rows `oh + kh − 1`; row length `16·⌈ow / 16⌉ + kw − 1`, so that the 16-value blocks of
    /// every tap stay inside the row and read zeros past the kernel's reach.
    fn new(g: &Geometry) -> Self {
        let rows = g.oh + g.kh - 1;
        let stride = LANES * g.ow.div_ceil(LANES) + g.kw - 1;
        Self {
            rows,
            stride,
            // Slack: the weight gradient reads each plane from a tap's offset (up to `kw − 1`
            // past it) in whole 64-value blocks.
            values: vec![0.0; g.c * rows * stride + 5 * LANES],
        }
    }

    /// Copies image `x` (`c × h × w`) in; the padding keeps its zeros, since every image writes
    /// the same positions.
    fn fill(&mut self, g: &Geometry, x: &[f32]) {
        let image_rows = g.h.min(self.rows.saturating_sub(g.ph));
        // Only the columns a tap can reach: the rest of the row stays zero.
        let image_cols = g.w.min((g.ow + g.kw - 1).saturating_sub(g.pw));
        for c in 0..g.c {
            for iy in 0..image_rows {
                let to = (c * self.rows + iy + g.ph) * self.stride + g.pw;
                copy_row(
                    &mut self.values[to..to + image_cols],
                    &x[(c * g.h + iy) * g.w..][..image_cols],
                );
            }
        }
    }
}

/// One image's output `y` (`o × oh × ow`). `acc` holds one output channel with its rows spaced
/// like the padded input's (`oh·stride` values), so that every tap is one flat pass.
#[inline(always)]
fn forward_image_run(
    g: &Geometry,
    x: &Padded,
    weight: &[f32],
    out: Epilogue<'_>,
    acc: &mut [f32],
    y: &mut [MaybeUninit<f32>],
) {
    let len = acc.len();
    for o in 0..g.o {
        acc.fill(out.bias_of(o));
        for c in 0..g.c {
            let w: &[f32; 9] = weight[(o * g.c + c) * 9..][..9].try_into().expect("3 × 3");
            // The nine taps' inputs, each `len` long: one pass with all nine multiply-adds.
            let plane = &x.values[c * x.rows * x.stride..];
            let r: [&[f32]; 9] =
                std::array::from_fn(|tap| &plane[(tap / 3) * x.stride + tap % 3..][..len]);
            for (l, a) in acc.iter_mut().enumerate() {
                let mut s = *a;
                for tap in 0..9 {
                    s = w[tap].mul_add(r[tap][l], s);
                }
                *a = s;
            }
        }
        out.activate_all(acc);
        let y_o = &mut y[o * g.oh * g.ow..][..g.oh * g.ow];
        for (row, from) in y_o.chunks_exact_mut(g.ow).zip(acc.chunks(x.stride)) {
            copy_row(row, &from[..g.ow]);
        }
    }
}

multiversion!(fn forward_image[](
    g: &Geometry,
    x: &Padded,
    weight: &[f32],
    out: Epilogue<'_>,
    acc: &mut [f32],
    y: &mut [MaybeUninit<f32>],
) => forward_image_run);

/// The convolution's output, `o × oh × ow` per image, with the [`Epilogue`] `out`.
pub(crate) fn forward(g: &Geometry, x: &[f32], weight: &[f32], out: Epilogue<'_>) -> Vec<f32> {
    let per_task = images_per_task(g);
    let (image, feature) = (g.image(), g.feature());
    // Not zeroed: forward_image writes every value.
    let mut ys = uninit(g.batch * feature);
    ys.par_chunks_mut(feature * per_task)
        .enumerate()
        .for_each(|(task, outs)| {
            let mut padded = Padded::new(g);
            let mut acc = vec![0.0f32; g.oh * padded.stride];
            for (n, y) in outs.chunks_exact_mut(feature).enumerate() {
                let b = task * per_task + n;
                padded.fill(g, &x[b * image..][..image]);
                forward_image(g, &padded, weight, out, &mut acc, y);
            }
        });
    // SAFETY: forward_image wrote every value of every image.
    unsafe { assume_init(ys) }
}

/// `a[l] += d[l]·v[l]` for 16 lanes.
#[inline(always)]
fn fma16(a: &mut [f32; LANES], d: &[f32], v: &[f32]) {
    for ((a, d), v) in a.iter_mut().zip(&d[..LANES]).zip(&v[..LANES]) {
        *a = d.mul_add(*v, *a);
    }
}

/// `Σ d[i]·v[i]`, both a whole number of 64-value blocks long, in four independent 16-lane
/// partial sums (they stay in registers).
#[inline(always)]
fn dot(d: &[f32], v: &[f32]) -> f32 {
    let mut acc = [[0.0f32; LANES]; 4];
    for (d, v) in d.chunks_exact(4 * LANES).zip(v.chunks_exact(4 * LANES)) {
        for (k, a) in acc.iter_mut().enumerate() {
            fma16(a, &d[k * LANES..], &v[k * LANES..]);
        }
    }
    let [a0, a1, a2, a3] = acc;
    let mut sum = [0.0f32; LANES];
    for l in 0..LANES {
        sum[l] = (a0[l] + a1[l]) + (a2[l] + a3[l]);
    }
    sum.iter().sum()
}

/// Adds one image's weight gradient to `dw` (`o × c × 3 × 3`); `dy` is the image's output
/// gradient with its rows spaced like the padded input's (`x.stride` values, zeros past `ow`),
/// so that every tap is one flat dot product of `oh·stride` values.
#[inline(always)]
fn weight_grad_image_run(g: &Geometry, x: &Padded, dy: &[f32], dw: &mut [f32]) {
    let len = g.oh * x.stride;
    let blocks = len.div_ceil(4 * LANES);
    for o in 0..g.o {
        let d = &dy[o * blocks * 4 * LANES..][..blocks * 4 * LANES];
        for c in 0..g.c {
            for tap in 0..9 {
                let (i, j) = (tap / 3, tap % 3);
                let v = &x.values[(c * x.rows + i) * x.stride + j..][..blocks * 4 * LANES];
                dw[(o * g.c + c) * 9 + tap] += dot(d, v);
            }
        }
    }
}

multiversion!(fn weight_grad_image[](g: &Geometry, x: &Padded, dy: &[f32], dw: &mut [f32]) => weight_grad_image_run);

/// The gradient with respect to the weight, `o × c × 3 × 3`.
pub(crate) fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let per_task = images_per_task(g);
    let tasks = g.batch.div_ceil(per_task);
    let (image, feature, len) = (g.image(), g.feature(), g.o * g.k());
    (0..tasks)
        .into_par_iter()
        .fold(
            || {
                let padded = Padded::new(g);
                // Each channel's rows at the padded input's spacing, in whole 64-value blocks.
                let per_channel = (g.oh * padded.stride).div_ceil(4 * LANES) * 4 * LANES;
                let dy_rows = vec![0.0f32; g.o * per_channel];
                (vec![0.0f32; len], (padded, dy_rows, per_channel))
            },
            |(mut dw, (mut padded, mut dy_rows, per_channel)), task| {
                for b in task * per_task..((task + 1) * per_task).min(g.batch) {
                    padded.fill(g, &x[b * image..][..image]);
                    // The positions past `ow` in each row stay zero.
                    let dy_b = &dy[b * feature..][..feature];
                    for (o, plane) in dy_b.chunks_exact(g.oh * g.ow).enumerate() {
                        for (oy, from) in plane.chunks_exact(g.ow).enumerate() {
                            let at = o * per_channel + oy * padded.stride;
                            copy_row(&mut dy_rows[at..at + g.ow], from);
                        }
                    }
                    weight_grad_image(g, &padded, &dy_rows, &mut dw);
                }
                (dw, (padded, dy_rows, per_channel))
            },
        )
        .map(|(dw, _)| dw)
        .reduce(|| vec![0.0f32; len], add_vectors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{check_against_patch_matrix, conv3x3};

    /// The direct kernels against the patch-matrix ones: one channel on either side, padding
    /// from none to beyond the kernel's reach, rows shorter and longer than one block.
    #[test]
    fn equals_the_patch_matrix_convolution() {
        // (batch, c, (h, w), o, padding before, padding after)
        let cases = [
            (3, 1, (28, 28), 32, (1, 1), (1, 1)),
            (3, 32, (28, 28), 1, (1, 1), (1, 1)),
            (2, 2, (5, 37), 7, (0, 2), (1, 0)),
            (5, 9, (6, 4), 4, (0, 0), (0, 0)),
            (2, 3, (4, 5), 1, (3, 2), (2, 3)),
        ];
        for (batch, c, hw, o, before, after) in cases {
            let g = conv3x3(batch, c, hw, o, before, after);
            assert!(applies(&g));
            check_against_patch_matrix("direct", &g, (forward, weight_grad));
        }
    }
}
