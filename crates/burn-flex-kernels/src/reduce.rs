//! Row sums and repetition on `flex`, each with its adjoint: sums over a tensor's trailing
//! dimensions (a distribution's event dimensions) and the `k`-fold repetition of a batch along
//! its first dimension (the samples of the IWAE and Monte Carlo objectives).
//!
//! burn-flex's `sum_dim` backward builds a tensor of ones and multiplies it by the broadcast
//! gradient, two passes on one thread, and its `repeat_dim` copies its result twice, on one
//! thread too. Here each is one pass, split over the rayon threads.

use crate::buffer::{PARALLEL_MIN, assume_init, uninit};
use core::mem::MaybeUninit;
use rayon::prelude::*;

/// Items per rayon task when `items` items of `size` elements each are split over the pool:
/// all of them below [`PARALLEL_MIN`] elements.
pub(crate) fn per_task(items: usize, size: usize) -> usize {
    let threads = if items * size < PARALLEL_MIN {
        1
    } else {
        rayon::current_num_threads().max(1)
    };
    items.div_ceil(threads).max(1)
}

/// Lanes of the running sums: one AVX-512 register, so that a row's sum vectorizes and its
/// rounding error grows with `len / LANES` rather than `len`.
const LANES: usize = 16;

/// The sum of `values` in [`LANES`] running sums, combined pairwise at the end.
#[inline(always)]
fn sum_run(values: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    acc[0] + tail
}

multiversion!(
    /// The sum of `values` (a run of a fused formula's values, in L1).
    pub(crate) fn sum[](values: &[f32]) -> f32 => sum_run
);

#[inline(always)]
fn row_sums_run(values: &[f32], cols: usize, out: &mut [MaybeUninit<f32>]) {
    for (o, row) in out.iter_mut().zip(values.chunks_exact(cols)) {
        o.write(sum_run(row));
    }
}

multiversion!(
    fn row_sums_simd[](values: &[f32], cols: usize, out: &mut [MaybeUninit<f32>]) => row_sums_run
);

/// `out[r] = Σ_c values[r·cols + c]` for the `values.len() / cols` rows (`cols > 0`).
pub(crate) fn row_sums(values: &[f32], cols: usize) -> Vec<f32> {
    let rows = values.len() / cols;
    let mut out = uninit(rows);
    let chunk = per_task(rows, cols);
    out.par_chunks_mut(chunk)
        .zip(values.par_chunks(chunk * cols))
        .for_each(|(out, values)| row_sums_simd(values, cols, out));
    // SAFETY: the chunks cover `out`, and each task writes one sum per row of its chunk.
    unsafe { assume_init(out) }
}

#[inline(always)]
fn broadcast_run(g: &[f32], cols: usize, out: &mut [MaybeUninit<f32>]) {
    for (&v, row) in g.iter().zip(out.chunks_exact_mut(cols)) {
        for o in row {
            o.write(v);
        }
    }
}

multiversion!(
    fn broadcast_simd[](g: &[f32], cols: usize, out: &mut [MaybeUninit<f32>]) => broadcast_run
);

/// `out[r·cols + c] = g[r]`: the adjoint of [`row_sums`] (`cols > 0`).
pub(crate) fn broadcast_rows(g: &[f32], cols: usize) -> Vec<f32> {
    let mut out = uninit(g.len() * cols);
    let chunk = per_task(g.len(), cols);
    out.par_chunks_mut(chunk * cols)
        .zip(g.par_chunks(chunk))
        .for_each(|(out, g)| broadcast_simd(g, cols, out));
    // SAFETY: the chunks cover `out`, and each task writes every slot of its rows.
    unsafe { assume_init(out) }
}

/// `values` repeated `times` times, one copy after the other (`values` not empty).
pub(crate) fn tile(values: &[f32], times: usize) -> Vec<f32> {
    let len = values.len();
    let mut out = uninit(len * times);
    let chunk = per_task(times, len);
    out.par_chunks_mut(chunk * len).for_each(|out| {
        for copy in out.chunks_exact_mut(len) {
            // SAFETY: `copy` has room for `len` floats, `values` holds `len` floats, and the
            // two do not overlap (`out` is a fresh buffer).
            unsafe {
                core::ptr::copy_nonoverlapping(
                    values.as_ptr(),
                    copy.as_mut_ptr().cast::<f32>(),
                    len,
                );
            }
        }
    });
    // SAFETY: the chunks cover `out`, and each task copies `values` into every block of its
    // chunk.
    unsafe { assume_init(out) }
}

#[inline(always)]
fn add_run(out: &mut [f32], block: &[f32]) {
    for (o, v) in out.iter_mut().zip(block) {
        *o += v;
    }
}

multiversion!(fn add_simd[](out: &mut [f32], block: &[f32]) => add_run);

/// `out[j] = Σ_b g[b·len + j]`: the adjoint of [`tile`], for `g` of `len · times` elements
/// (`len > 0`). The columns are split over the threads; each sums its columns block by block,
/// in block order, so the result does not depend on the thread count.
pub(crate) fn sum_tiles(g: &[f32], len: usize) -> Vec<f32> {
    let times = g.len() / len;
    let mut out = vec![0.0f32; len];
    // Columns per task, in whole cache lines.
    let chunk = per_task(len, times).div_ceil(LANES) * LANES;
    out.par_chunks_mut(chunk).enumerate().for_each(|(t, out)| {
        let start = t * chunk;
        for block in g.chunks_exact(len) {
            add_simd(out, &block[start..start + out.len()]);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with no pattern that a wrong index could reproduce.
    fn values(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919) % 1013) as f32 / 101.3 - 5.0)
            .collect()
    }

    fn assert_close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= tol * (1.0 + w.abs()),
                "at {i}: got {g}, want {w}"
            );
        }
    }

    /// Shapes below and above the threading threshold, rows shorter than one register, rows
    /// with a tail, and more threads than rows.
    const SHAPES: [(usize, usize); 6] = [
        (1, 1),
        (3, 5),
        (7, 33),
        (3200, 784),
        (2, 100_000),
        (70_001, 1),
    ];

    #[test]
    fn row_sums_match_float64_sums() {
        for (rows, cols) in SHAPES {
            let v = values(rows * cols);
            let want: Vec<f64> = v
                .chunks_exact(cols)
                .map(|r| r.iter().map(|&x| x as f64).sum())
                .collect();
            // float32 sums of up to 10⁵ terms of size ≤ 5, 16 lanes, pairwise at the end.
            assert_close(&row_sums(&v, cols), &want, 1e-4);
        }
    }

    #[test]
    fn broadcast_rows_is_the_adjoint_of_row_sums() {
        for (rows, cols) in SHAPES {
            let g = values(rows);
            let got = broadcast_rows(&g, cols);
            let want: Vec<f64> = (0..rows * cols).map(|i| g[i / cols] as f64).collect();
            assert_close(&got, &want, 0.0);
        }
    }

    #[test]
    fn tile_repeats_and_sum_tiles_adds_the_repeats() {
        for (times, len) in [(1, 1), (3, 5), (50, 64 * 784), (1000, 1), (2, 70_001)] {
            let v = values(len);
            let tiled = tile(&v, times);
            let want: Vec<f64> = (0..len * times).map(|i| v[i % len] as f64).collect();
            assert_close(&tiled, &want, 0.0);

            let g = values(len * times);
            let want: Vec<f64> = (0..len)
                .map(|j| (0..times).map(|b| g[b * len + j] as f64).sum())
                .collect();
            assert_close(&sum_tiles(&g, len), &want, 1e-5);
        }
    }
}
