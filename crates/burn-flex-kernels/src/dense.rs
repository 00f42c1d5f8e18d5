//! Dense (fully connected) layers on `flex`: `y = act(x·W + b)` for `x` of `n × d_in` rows,
//! `W` of `d_in × d_out` and `b` of `d_out`, and its three gradients.
//!
//! burn-flex runs such a layer as a matrix product into a zeroed buffer that is then copied
//! once more (an aligned copy of every new tensor), a bias addition on one thread, and the
//! activation as another pass; its backward pass sums the bias gradient on one thread too. Here
//! the rows are split over threads, and each thread, per block of rows small enough to stay in
//! L2, writes the product (gemm) and then adds the bias and applies the activation in one pass
//! over the block while it is in cache. The backward pass takes the activation's derivative
//! from the saved output and sums the bias gradient in the same pass, on every thread.

use super::conv::{matmul, matmul_on};
use super::vmath::{expm1, tanh};
use crate::buffer::{assume_init, uninit};
pub(crate) use crate::layer::Activation;
use core::mem::MaybeUninit;
use rayon::prelude::*;

/// The sizes of a layer: `n` rows of `d_in` inputs and `d_out` outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    pub n: usize,
    pub d_in: usize,
    pub d_out: usize,
}

/// Output bytes per block of rows: a block stays in L2 (1.25–2 MiB per core on recent x86
/// server cores) between the product and the activation.
const BLOCK_BYTES: usize = 1 << 20;
/// Below this many multiply-adds one thread does the whole layer.
const PARALLEL_MIN: usize = 1 << 18;

/// Rows per rayon task: all of them for small layers, else the rows split evenly over the
/// pool's threads.
fn rows_per_task(d: Dims) -> usize {
    let threads = if d.n * d.d_in * d.d_out < PARALLEL_MIN {
        1
    } else {
        rayon::current_num_threads().max(1)
    };
    d.n.div_ceil(threads).max(1)
}

/// An activation other than the identity, its value and its derivative from its own output
/// (`y > 0` exactly where `z > 0` for each).
trait Act: Copy + Send + Sync {
    fn value(&self, z: f32) -> f32;
    /// `g · act'(z)` given `y = act(z)`.
    fn grad(&self, y: f32, g: f32) -> f32;
}

#[derive(Clone, Copy)]
struct Relu;
#[derive(Clone, Copy)]
struct Tanh;
#[derive(Clone, Copy)]
struct Elu(f32);

impl Act for Relu {
    #[inline(always)]
    fn value(&self, z: f32) -> f32 {
        super::conv::at_least(z, 0.0)
    }
    #[inline(always)]
    fn grad(&self, y: f32, g: f32) -> f32 {
        if y > 0.0 { g } else { 0.0 }
    }
}

impl Act for Tanh {
    #[inline(always)]
    fn value(&self, z: f32) -> f32 {
        tanh(z)
    }
    #[inline(always)]
    fn grad(&self, y: f32, g: f32) -> f32 {
        g * (1.0 - y * y)
    }
}

impl Act for Elu {
    #[inline(always)]
    fn value(&self, z: f32) -> f32 {
        let neg = self.0 * expm1(z);
        if z > 0.0 { z } else { neg }
    }
    /// `α eᶻ = y + α` where `z ≤ 0`.
    #[inline(always)]
    fn grad(&self, y: f32, g: f32) -> f32 {
        if y > 0.0 { g } else { g * (y + self.0) }
    }
}

/// The identity, for [`bias_activate`] only (its gradient pass is skipped).
#[derive(Clone, Copy)]
struct Identity;

impl Act for Identity {
    #[inline(always)]
    fn value(&self, z: f32) -> f32 {
        z
    }
    #[inline(always)]
    fn grad(&self, _y: f32, g: f32) -> f32 {
        g
    }
}

/// `y ← act(y + b)` row by row, `b` holding one value per column.
#[inline(always)]
fn bias_activate_run<A: Act>(act: &A, y: &mut [f32], b: &[f32]) {
    for row in y.chunks_exact_mut(b.len()) {
        for (v, &c) in row.iter_mut().zip(b) {
            *v = act.value(*v + c);
        }
    }
}

multiversion!(
    fn bias_activate_simd[A: Act](act: &A, y: &mut [f32], b: &[f32]) => bias_activate_run
);

/// `dy ← act'·dy` row by row, adding each row into `sums`.
#[inline(always)]
fn grad_rows_run<A: Act>(act: &A, y: &[f32], dy: &mut [f32], sums: &mut [f32]) {
    let cols = sums.len();
    for (y, dy) in y.chunks_exact(cols).zip(dy.chunks_exact_mut(cols)) {
        for ((g, &y), s) in dy.iter_mut().zip(y).zip(sums.iter_mut()) {
            *g = act.grad(y, *g);
            *s += *g;
        }
    }
}

multiversion!(
    fn grad_rows_simd[A: Act](act: &A, y: &[f32], dy: &mut [f32], sums: &mut [f32])
        => grad_rows_run
);

/// `sums += ` the rows of `rows` (each `sums.len()` long).
#[inline(always)]
fn column_sums_run(rows: &[f32], sums: &mut [f32]) {
    for row in rows.chunks_exact(sums.len()) {
        for (s, &v) in sums.iter_mut().zip(row) {
            *s += v;
        }
    }
}

multiversion!(fn column_sums_simd[](rows: &[f32], sums: &mut [f32]) => column_sums_run);

/// `y ← act(y + b)` on every row of `y`.
fn bias_activate(act: Activation, y: &mut [f32], b: &[f32]) {
    match act {
        Activation::Identity => bias_activate_simd(&Identity, y, b),
        Activation::Relu => bias_activate_simd(&Relu, y, b),
        Activation::Tanh => bias_activate_simd(&Tanh, y, b),
        Activation::Elu(alpha) => bias_activate_simd(&Elu(alpha as f32), y, b),
    }
}

/// The forward pass: `act(x·W + b)`, `n × d_out`. `x` is `n × d_in`, `w` `d_in × d_out`, both
/// row-major, `b` has `d_out` values.
pub(crate) fn forward(d: Dims, x: &[f32], w: &[f32], b: &[f32], act: Activation) -> Vec<f32> {
    assert!(x.len() == d.n * d.d_in && w.len() == d.d_in * d.d_out && b.len() == d.d_out);
    let mut y = uninit(d.n * d.d_out);
    if y.is_empty() {
        return Vec::new();
    }
    let per_task = rows_per_task(d);
    let block = (BLOCK_BYTES / 4 / d.d_out).clamp(16, per_task.max(16));
    y.par_chunks_mut(per_task * d.d_out)
        .enumerate()
        .for_each(|(task, rows)| {
            for (k, out) in rows.chunks_mut(block * d.d_out).enumerate() {
                let first = task * per_task + k * block;
                let m = out.len() / d.d_out;
                if d.d_in == 0 {
                    out.fill(MaybeUninit::new(0.0));
                } else {
                    // SAFETY: `out` is m × d_out, the rows of x from `first` m × d_in, w
                    // d_in × d_out, all row-major and in bounds; gemm writes every value of
                    // `out` without reading it (no accumulation).
                    unsafe {
                        matmul(
                            (m, d.d_out, d.d_in),
                            (out.as_mut_ptr().cast::<f32>(), d.d_out, 1),
                            false,
                            (x[first * d.d_in..].as_ptr(), d.d_in, 1),
                            (w.as_ptr(), d.d_out, 1),
                        );
                    }
                }
                // SAFETY: every value of `out` was written just above.
                let out = unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) };
                // The bias and the activation while the block is in cache.
                bias_activate(act, out, b);
            }
        });
    // SAFETY: the tasks' blocks cover `y`, and each block was written in full.
    unsafe { assume_init(y) }
}

/// The gradient through the activation, in place: `dy ← act'(z)·dy` given the layer's output
/// `y` (not needed for the identity), and, when `bias_grad`, the column sums of the result
/// (the bias gradient), in the same pass.
pub(crate) fn through_activation(
    d: Dims,
    act: Activation,
    y: Option<&[f32]>,
    dy: &mut [f32],
    bias_grad: bool,
) -> Option<Vec<f32>> {
    assert_eq!(dy.len(), d.n * d.d_out);
    let identity = act == Activation::Identity;
    if identity && !bias_grad {
        return None;
    }
    if dy.is_empty() {
        return bias_grad.then(|| vec![0.0; d.d_out]);
    }
    let per_task = rows_per_task(d) * d.d_out;
    let partial: Vec<Vec<f32>> = if identity {
        // The gradient passes unchanged: only its column sums.
        dy.par_chunks(per_task)
            .map(|dy| {
                let mut sums = vec![0.0f32; d.d_out];
                column_sums_simd(dy, &mut sums);
                sums
            })
            .collect()
    } else {
        let y = y.expect("the layer's output, for the activation's derivative");
        assert_eq!(y.len(), dy.len());
        dy.par_chunks_mut(per_task)
            .zip(y.par_chunks(per_task))
            .map(|(dy, y)| {
                let mut sums = vec![0.0f32; d.d_out];
                match act {
                    Activation::Identity => unreachable!("handled above"),
                    Activation::Relu => grad_rows_simd(&Relu, y, dy, &mut sums),
                    Activation::Tanh => grad_rows_simd(&Tanh, y, dy, &mut sums),
                    Activation::Elu(alpha) => grad_rows_simd(&Elu(alpha as f32), y, dy, &mut sums),
                }
                sums
            })
            .collect()
    };
    bias_grad.then(|| {
        let mut total = vec![0.0f32; d.d_out];
        // In task order, so the sums do not depend on scheduling.
        for sums in partial {
            for (t, s) in total.iter_mut().zip(sums) {
                *t += s;
            }
        }
        total
    })
}

/// The input gradient `dz·Wᵀ`, `n × d_in`, from the gradient `dz` (`n × d_out`) after the
/// activation.
pub(crate) fn input_grad(d: Dims, dz: &[f32], w: &[f32]) -> Vec<f32> {
    assert!(dz.len() == d.n * d.d_out && w.len() == d.d_in * d.d_out);
    let mut dx = uninit(d.n * d.d_in);
    if dx.is_empty() {
        return Vec::new();
    }
    let per_task = rows_per_task(d);
    dx.par_chunks_mut(per_task * d.d_in)
        .enumerate()
        .for_each(|(task, out)| {
            let first = task * per_task;
            let m = out.len() / d.d_in;
            // SAFETY: out is m × d_in, the rows of dz from `first` m × d_out, and Wᵀ
            // (d_out × d_in) is w read with row stride 1 and column stride d_out; gemm writes
            // every value of `out` without reading it (no accumulation).
            unsafe {
                matmul(
                    (m, d.d_in, d.d_out),
                    (out.as_mut_ptr().cast::<f32>(), d.d_in, 1),
                    false,
                    (dz[first * d.d_out..].as_ptr(), d.d_out, 1),
                    (w.as_ptr(), 1, d.d_out),
                );
            }
        });
    // SAFETY: the tasks' blocks cover `dx`, and gemm wrote each in full.
    unsafe { assume_init(dx) }
}

/// The weight gradient `xᵀ·dz`, `d_in × d_out` (a sum over the `n` rows; gemm splits it over
/// threads).
pub(crate) fn weight_grad(d: Dims, x: &[f32], dz: &[f32]) -> Vec<f32> {
    assert!(x.len() == d.n * d.d_in && dz.len() == d.n * d.d_out);
    let mut dw = uninit(d.d_in * d.d_out);
    if dw.is_empty() {
        return Vec::new();
    }
    if d.n == 0 {
        dw.iter_mut().for_each(|v| {
            v.write(0.0);
        });
    } else {
        let parallelism = if rows_per_task(d) < d.n {
            gemm::Parallelism::Rayon(0)
        } else {
            gemm::Parallelism::None
        };
        // SAFETY: dw is d_in × d_out, xᵀ (d_in × n) is x read with row stride 1 and column
        // stride d_in, dz is n × d_out; gemm writes every value of `dw` without reading it.
        unsafe {
            matmul_on(
                parallelism,
                (d.d_in, d.d_out, d.n),
                (dw.as_mut_ptr().cast::<f32>(), d.d_out, 1),
                false,
                (x.as_ptr(), 1, d.d_in),
                (dz.as_ptr(), d.d_out, 1),
            );
        }
    }
    // SAFETY: written in full above.
    unsafe { assume_init(dw) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `m × n` product `Σ_t a(i, t)·b(t, j)` over `t < k`, in float64, one value at a time.
    fn product(
        (m, k, n): (usize, usize, usize),
        a: impl Fn(usize, usize) -> f32,
        b: impl Fn(usize, usize) -> f32,
    ) -> Vec<f64> {
        (0..m * n)
            .map(|at| {
                let (i, j) = (at / n, at % n);
                (0..k).map(|t| a(i, t) as f64 * b(t, j) as f64).sum()
            })
            .collect()
    }

    fn spread(n: usize, seed: u32) -> Vec<f32> {
        crate::tests::spread(n, -1.0, 1.0, seed)
    }

    fn close(what: &str, got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= tol * (1.0 + w.abs()),
                "{what}: value {i} is {g}, float64 says {w}"
            );
        }
    }

    /// Every kernel against the float64 formulas, for sizes below and above the parallel
    /// threshold, with row counts that do not divide into tasks or blocks evenly.
    #[test]
    fn the_layer_and_its_gradients_equal_the_float64_formulas() {
        // (activation, its value, its derivative), in float64.
        type Case = (Activation, fn(f64) -> f64, fn(f64) -> f64);
        let acts: [Case; 4] = [
            (Activation::Identity, |z| z, |_| 1.0),
            (
                Activation::Relu,
                |z| z.max(0.0),
                |z| if z > 0.0 { 1.0 } else { 0.0 },
            ),
            (Activation::Tanh, f64::tanh, |z| 1.0 - z.tanh().powi(2)),
            (
                Activation::Elu(0.7),
                |z| if z > 0.0 { z } else { 0.7 * z.exp_m1() },
                |z| if z > 0.0 { 1.0 } else { 0.7 * z.exp() },
            ),
        ];
        for (n, d_in, d_out) in [
            (1, 1, 1),
            (3, 5, 2),
            (37, 19, 23),
            (1001, 33, 700),
            (64, 784, 20),
        ] {
            let d = Dims { n, d_in, d_out };
            let x = spread(n * d_in, 1);
            let w = spread(d_in * d_out, 2);
            let b = spread(d_out, 3);
            let g = spread(n * d_out, 4);
            let xw = product(
                (n, d_in, d_out),
                |r, i| x[r * d_in + i],
                |i, j| w[i * d_out + j],
            );
            let z: Vec<f64> = xw
                .iter()
                .enumerate()
                .map(|(at, v)| v + b[at % d_out] as f64)
                .collect();
            for (act, f, df) in acts {
                let what = format!("{n}x{d_in} → {d_out}, {act:?}");
                let y = forward(d, &x, &w, &b, act);
                let want: Vec<f64> = z.iter().map(|&z| f(z)).collect();
                close(&format!("{what}: output"), &y, &want, 1e-5);
                let mut dz = g.clone();
                let db = through_activation(d, act, Some(&y), &mut dz, true).expect("asked");
                let dz_want: Vec<f64> = z.iter().zip(&g).map(|(&z, &g)| g as f64 * df(z)).collect();
                close(
                    &format!("{what}: through the activation"),
                    &dz,
                    &dz_want,
                    1e-5,
                );
                let db_want: Vec<f64> = (0..d_out)
                    .map(|j| (0..n).map(|r| dz_want[r * d_out + j]).sum())
                    .collect();
                close(
                    &format!("{what}: bias gradient"),
                    &db,
                    &db_want,
                    1e-5 * n as f64,
                );
                let dx = input_grad(d, &dz, &w);
                // ∂x = ∂z·Wᵀ
                let dx_want = product(
                    (n, d_out, d_in),
                    |r, j| dz[r * d_out + j],
                    |j, i| w[i * d_out + j],
                );
                close(
                    &format!("{what}: input gradient"),
                    &dx,
                    &dx_want,
                    1e-5 * d_out as f64,
                );
                let dw = weight_grad(d, &x, &dz);
                // ∂W = xᵀ·∂z
                let dw_want = product(
                    (d_in, n, d_out),
                    |i, r| x[r * d_in + i],
                    |r, j| dz[r * d_out + j],
                );
                close(
                    &format!("{what}: weight gradient"),
                    &dw,
                    &dw_want,
                    1e-5 * n as f64,
                );
            }
        }
    }

    #[test]
    fn the_relu_keeps_nan_and_the_identity_leaves_the_gradient_alone() {
        let d = Dims {
            n: 1,
            d_in: 1,
            d_out: 3,
        };
        let y = forward(
            d,
            &[1.0],
            &[f32::NAN, -2.0, 3.0],
            &[0.0; 3],
            Activation::Relu,
        );
        assert!(y[0].is_nan() && y[1] == 0.0 && y[2] == 3.0, "{y:?}");
        let mut dy = vec![1.0, 2.0, 3.0];
        assert_eq!(
            through_activation(d, Activation::Identity, None, &mut dy, false),
            None
        );
        let sums = through_activation(d, Activation::Identity, None, &mut dy, true);
        assert_eq!((dy, sums), (vec![1.0, 2.0, 3.0], Some(vec![1.0, 2.0, 3.0])));
    }
}
