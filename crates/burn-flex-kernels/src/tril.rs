//! Batched kernels of full-covariance Gaussians `N(μ, L Lᵀ)`, `L` lower triangular (`K × K`,
//! row-major; only its lower triangle is read, and the gradients of the upper triangle are 0):
//!
//! * [`log_prob`]: `−½‖z‖² − Σₖ ln Lₖₖ` with `L z = x − μ` by forward substitution (the
//!   log-density less `(K/2) ln 2π`), and its gradients [`log_prob_grad`]: with `w = L⁻ᵀ z`
//!   (back substitution), `∂/∂x = −w`, `∂/∂μ = w`, `∂/∂L = tril(w zᵀ) − diag(1/Lₖₖ)`;
//! * [`affine`]: `μ + L ε`, and its gradients [`affine_grad`]: `∂/∂μ = g`,
//!   `∂/∂L = tril(g εᵀ)`, `∂/∂ε = Lᵀ g`.
//!
//! The rows: `x` (or `ε`) holds `n` rows of `K` values, `μ` holds `m` rows and `L` `m`
//! matrices, `m` dividing `n`; row `r` goes with the parameters of row `r mod m` (the leading
//! sample dimensions of a value repeat the batch of parameters). The gradients of repeated
//! parameters are summed over the repeats.
//!
//! The substitutions run on blocks of [`LANES`] rows, one row per lane: the entries are loaded
//! lane by lane, and every arithmetic step of the substitutions, the divisions and the
//! logarithms is one vector operation over the block. The affine map and its gradient, a
//! product per entry of `L`, run one row at a time, reading the matrices in order. The rows are
//! split over the rayon threads.

use crate::buffer::{PARALLEL_MIN, assume_init, uninit};
use crate::reduce::sum_tiles;
use crate::vmath;
use core::mem::MaybeUninit;
use rayon::prelude::*;

/// Rows per block: one AVX2 register of float32.
const LANES: usize = 8;

type Lanes = [f32; LANES];

/// The parameters: `μ` (`m` rows of `k`) and `L` (`m` matrices of `k × k`).
#[derive(Clone, Copy)]
struct Params<'a> {
    loc: &'a [f32],
    l: &'a [f32],
    k: usize,
    m: usize,
}

/// One block's rows: the offsets of each lane's row in the values (`r·k`), in `μ` (`b·k`) and in
/// `L` (`b·k²`), `b = r mod m`. Lanes past the block's last row repeat it (their results are not
/// written).
struct Block {
    x: [usize; LANES],
    loc: [usize; LANES],
    l: [usize; LANES],
}

impl Block {
    /// The block of the `len` rows from `first` (`0 < len ≤ LANES`).
    #[inline(always)]
    fn new(first: usize, len: usize, p: Params<'_>) -> Self {
        let mut b = Block {
            x: [0; LANES],
            loc: [0; LANES],
            l: [0; LANES],
        };
        let mut row = first % p.m;
        for lane in 0..LANES {
            b.x[lane] = (first + lane.min(len - 1)) * p.k;
            b.loc[lane] = row * p.k;
            b.l[lane] = row * p.k * p.k;
            if lane + 1 < len {
                row += 1;
                if row == p.m {
                    row = 0;
                }
            }
        }
        b
    }
}

/// Entry `i` of each lane's row: `v[offsets[lane] + i]`.
#[inline(always)]
fn gather(v: &[f32], offsets: &[usize; LANES], i: usize) -> Lanes {
    core::array::from_fn(|lane| v[offsets[lane] + i])
}

/// `z = L⁻¹(x − μ)` for the block's rows into `z` (`k` lanes), by forward substitution; returns
/// `(‖z‖², Σₖ ln Lₖₖ)`.
#[inline(always)]
fn solve(p: Params<'_>, x: &[f32], blk: &Block, z: &mut [Lanes]) -> (Lanes, Lanes) {
    let k = p.k;
    let mut squares = [0.0f32; LANES];
    let mut log_det = [0.0f32; LANES];
    for i in 0..k {
        let (xi, mi) = (gather(x, &blk.x, i), gather(p.loc, &blk.loc, i));
        let mut acc: Lanes = core::array::from_fn(|lane| xi[lane] - mi[lane]);
        for (j, zj) in z[..i].iter().enumerate() {
            let lij = gather(p.l, &blk.l, i * k + j);
            for lane in 0..LANES {
                acc[lane] -= lij[lane] * zj[lane];
            }
        }
        let lii = gather(p.l, &blk.l, i * k + i);
        let mut zi = [0.0f32; LANES];
        for lane in 0..LANES {
            zi[lane] = acc[lane] / lii[lane];
            squares[lane] += zi[lane] * zi[lane];
            log_det[lane] += vmath::ln(lii[lane]);
        }
        z[i] = zi;
    }
    (squares, log_det)
}

/// `w = L⁻ᵀ z` for the block's rows into `w` (`k` lanes), by back substitution.
#[inline(always)]
fn solve_transposed(p: Params<'_>, blk: &Block, z: &[Lanes], w: &mut [Lanes]) {
    let k = p.k;
    for i in (0..k).rev() {
        let mut acc = z[i];
        for (j, wj) in w.iter().enumerate().skip(i + 1) {
            let lji = gather(p.l, &blk.l, j * k + i);
            for lane in 0..LANES {
                acc[lane] -= lji[lane] * wj[lane];
            }
        }
        let lii = gather(p.l, &blk.l, i * k + i);
        for lane in 0..LANES {
            acc[lane] /= lii[lane];
        }
        w[i] = acc;
    }
}

/// [`log_prob`] on the rows `first..first + out.len()`.
#[inline(always)]
fn log_prob_run(p: Params<'_>, x: &[f32], first: usize, out: &mut [MaybeUninit<f32>]) {
    let mut z = vec![[0.0f32; LANES]; p.k];
    for (c, out) in out.chunks_mut(LANES).enumerate() {
        let blk = Block::new(first + c * LANES, out.len(), p);
        let (squares, log_det) = solve(p, x, &blk, &mut z);
        for (lane, o) in out.iter_mut().enumerate() {
            o.write(-0.5 * squares[lane] - log_det[lane]);
        }
    }
}

multiversion!(
    fn log_prob_simd[](p: Params<'_>, x: &[f32], first: usize, out: &mut [MaybeUninit<f32>])
        => log_prob_run
);

/// Rows per task: a whole number of blocks, all rows on one thread when the work is small.
fn task_rows(n: usize, k: usize) -> usize {
    if n * k * k < PARALLEL_MIN {
        return n.max(1);
    }
    let tasks = 4 * rayon::current_num_threads().max(1);
    n.div_ceil(tasks).div_ceil(LANES) * LANES
}

/// `−½‖L_b⁻¹(x_r − μ_b)‖² − Σₖ ln (L_b)ₖₖ` for each of the `x.len() / k` rows `r` of `x`,
/// `b = r mod m` with `m = loc.len() / k` (`l` holds `m` matrices; `k > 0`, `m > 0`).
pub(crate) fn log_prob(loc: &[f32], l: &[f32], x: &[f32], k: usize) -> Vec<f32> {
    let p = Params {
        loc,
        l,
        k,
        m: loc.len() / k,
    };
    let n = x.len() / k;
    let mut out = uninit(n);
    let chunk = task_rows(n, k);
    out.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(t, out)| log_prob_simd(p, x, t * chunk, out));
    // SAFETY: the chunks cover `out`, and each task writes one value per row of its chunk.
    unsafe { assume_init(out) }
}

/// [`log_prob_grad`] on the rows `first..`: `gw` gets `g·w` per row (`k` values) and `gl`
/// `g·(tril(w zᵀ) − diag(1/Lₖₖ))` per row (`k²` values), each when present.
#[inline(always)]
fn log_prob_grad_run(
    p: Params<'_>,
    x: &[f32],
    g: &[f32],
    first: usize,
    rows: usize,
    mut gw: Option<&mut [MaybeUninit<f32>]>,
    mut gl: Option<&mut [MaybeUninit<f32>]>,
) {
    let k = p.k;
    let mut z = vec![[0.0f32; LANES]; k];
    let mut w = vec![[0.0f32; LANES]; k];
    let mut start = 0;
    while start < rows {
        let len = LANES.min(rows - start);
        let blk = Block::new(first + start, len, p);
        solve(p, x, &blk, &mut z);
        solve_transposed(p, &blk, &z, &mut w);
        let gr: Lanes = core::array::from_fn(|lane| g[first + start + lane.min(len - 1)]);
        if let Some(gw) = gw.as_deref_mut() {
            for lane in 0..len {
                let row = &mut gw[(start + lane) * k..(start + lane + 1) * k];
                for (i, o) in row.iter_mut().enumerate() {
                    o.write(gr[lane] * w[i][lane]);
                }
            }
        }
        if let Some(gl) = gl.as_deref_mut() {
            for lane in 0..len {
                let row = &mut gl[(start + lane) * k * k..(start + lane + 1) * k * k];
                for i in 0..k {
                    let gwi = gr[lane] * w[i][lane];
                    let lii = p.l[blk.l[lane] + i * k + i];
                    for (j, o) in row[i * k..(i + 1) * k].iter_mut().enumerate() {
                        let v = if j < i {
                            gwi * z[j][lane]
                        } else if j == i {
                            gwi * z[i][lane] - gr[lane] / lii
                        } else {
                            0.0
                        };
                        o.write(v);
                    }
                }
            }
        }
        start += len;
    }
}

multiversion!(
    fn log_prob_grad_simd[](
        p: Params<'_>,
        x: &[f32],
        g: &[f32],
        first: usize,
        rows: usize,
        gw: Option<&mut [MaybeUninit<f32>]>,
        gl: Option<&mut [MaybeUninit<f32>]>
    ) => log_prob_grad_run
);

/// `buffer` in `tasks` parts of `size` elements (the last one shorter), or `tasks` times
/// nothing when `buffer` is empty (a gradient that is not needed).
fn parts(
    buffer: &mut [MaybeUninit<f32>],
    size: usize,
    tasks: usize,
) -> Vec<Option<&mut [MaybeUninit<f32>]>> {
    if buffer.is_empty() {
        (0..tasks).map(|_| None).collect()
    } else {
        buffer.chunks_mut(size).map(Some).collect()
    }
}

/// A per-row gradient summed over the repeats of a parameter of `len` values.
fn per_parameter(g: Vec<f32>, len: usize) -> Vec<f32> {
    if g.len() == len {
        g
    } else {
        sum_tiles(&g, len)
    }
}

/// The gradients of [`log_prob`] for the output gradient `g` (one value per row), for the
/// inputs with `needed` (`[loc, l, x]`): `[∂/∂μ, ∂/∂L, ∂/∂x]`, the first two summed over the
/// repeats of the parameters.
pub(crate) fn log_prob_grad(
    loc: &[f32],
    l: &[f32],
    x: &[f32],
    k: usize,
    g: &[f32],
    needed: [bool; 3],
) -> [Option<Vec<f32>>; 3] {
    let p = Params {
        loc,
        l,
        k,
        m: loc.len() / k,
    };
    let n = g.len();
    let mut gw = if needed[0] || needed[2] {
        uninit(n * k)
    } else {
        Vec::new()
    };
    let mut gl = if needed[1] {
        uninit(n * k * k)
    } else {
        Vec::new()
    };
    let chunk = task_rows(n, k);
    let tasks = n.div_ceil(chunk);
    parts(&mut gw, chunk * k, tasks)
        .into_par_iter()
        .zip(parts(&mut gl, chunk * k * k, tasks))
        .enumerate()
        .for_each(|(t, (gw, gl))| {
            let first = t * chunk;
            let rows = chunk.min(n - first);
            log_prob_grad_simd(p, x, g, first, rows, gw, gl);
        });
    // SAFETY: each buffer is empty or covered by the tasks' parts, and each task writes every
    // value of its rows into the parts it was given.
    let (gw, gl) = unsafe { (assume_init(gw), assume_init(gl)) };
    let dx = needed[2].then(|| gw.iter().map(|v| -v).collect());
    let dloc = needed[0].then(|| per_parameter(gw, p.m * k));
    let dl = needed[1].then(|| per_parameter(gl, p.m * k * k));
    [dloc, dl, dx]
}

/// [`affine`] on the rows `first..first + out.len() / k`, one row at a time (the matrices read
/// in order).
#[inline(always)]
fn affine_run(p: Params<'_>, eps: &[f32], first: usize, out: &mut [MaybeUninit<f32>]) {
    let k = p.k;
    let mut b = first % p.m;
    for (r, out) in (first..).zip(out.chunks_exact_mut(k)) {
        let (l, loc) = (&p.l[b * k * k..(b + 1) * k * k], &p.loc[b * k..(b + 1) * k]);
        let e = &eps[r * k..(r + 1) * k];
        for (i, ((o, li), mi)) in out.iter_mut().zip(l.chunks_exact(k)).zip(loc).enumerate() {
            let mut acc = *mi;
            for (lij, ej) in li[..=i].iter().zip(e) {
                acc += lij * ej;
            }
            o.write(acc);
        }
        b += 1;
        if b == p.m {
            b = 0;
        }
    }
}

multiversion!(
    fn affine_simd[](p: Params<'_>, eps: &[f32], first: usize, out: &mut [MaybeUninit<f32>])
        => affine_run
);

/// `μ_b + L_b ε_r` for each of the `eps.len() / k` rows `r` of `eps`, `b = r mod m` with
/// `m = loc.len() / k` (`l` holds `m` matrices; `k > 0`, `m > 0`).
pub(crate) fn affine(loc: &[f32], l: &[f32], eps: &[f32], k: usize) -> Vec<f32> {
    let p = Params {
        loc,
        l,
        k,
        m: loc.len() / k,
    };
    let n = eps.len() / k;
    let mut out = uninit(n * k);
    let chunk = task_rows(n, k);
    out.par_chunks_mut(chunk * k)
        .enumerate()
        .for_each(|(t, out)| affine_simd(p, eps, t * chunk, out));
    // SAFETY: the chunks cover `out`, and each task writes the `k` values of every row of its
    // chunk.
    unsafe { assume_init(out) }
}

/// [`affine_grad`] on the rows `first..`: `gl` gets `tril(g εᵀ)` per row (`k²` values) and `ge`
/// `Lᵀ g` per row (`k` values), each when present.
#[inline(always)]
fn affine_grad_run(
    p: Params<'_>,
    eps: &[f32],
    g: &[f32],
    first: usize,
    rows: usize,
    mut gl: Option<&mut [MaybeUninit<f32>]>,
    mut ge: Option<&mut [MaybeUninit<f32>]>,
) {
    let k = p.k;
    let mut acc = vec![0.0f32; k];
    for r in first..first + rows {
        let local = r - first;
        let (gr, er) = (&g[r * k..(r + 1) * k], &eps[r * k..(r + 1) * k]);
        if let Some(gl) = gl.as_deref_mut() {
            let row = &mut gl[local * k * k..(local + 1) * k * k];
            for (i, out) in row.chunks_exact_mut(k).enumerate() {
                for (j, o) in out.iter_mut().enumerate() {
                    o.write(if j <= i { gr[i] * er[j] } else { 0.0 });
                }
            }
        }
        if let Some(ge) = ge.as_deref_mut() {
            let b = r % p.m;
            let lb = &p.l[b * k * k..(b + 1) * k * k];
            acc.fill(0.0);
            for (i, li) in lb.chunks_exact(k).enumerate() {
                for (a, lij) in acc[..=i].iter_mut().zip(li) {
                    *a += lij * gr[i];
                }
            }
            for (o, a) in ge[local * k..(local + 1) * k].iter_mut().zip(&acc) {
                o.write(*a);
            }
        }
    }
}

multiversion!(
    fn affine_grad_simd[](
        p: Params<'_>,
        eps: &[f32],
        g: &[f32],
        first: usize,
        rows: usize,
        gl: Option<&mut [MaybeUninit<f32>]>,
        ge: Option<&mut [MaybeUninit<f32>]>
    ) => affine_grad_run
);

/// The gradients of [`affine`] for the output gradient `g` (`k` values per row), for the
/// inputs with `needed` (`[loc, l, eps]`): `[∂/∂μ, ∂/∂L, ∂/∂ε]`, the first two summed over the
/// repeats of the parameters.
pub(crate) fn affine_grad(
    loc: &[f32],
    l: &[f32],
    eps: &[f32],
    k: usize,
    g: &[f32],
    needed: [bool; 3],
) -> [Option<Vec<f32>>; 3] {
    let p = Params {
        loc,
        l,
        k,
        m: loc.len() / k,
    };
    let n = g.len() / k;
    let mut gl = if needed[1] {
        uninit(n * k * k)
    } else {
        Vec::new()
    };
    let mut ge = if needed[2] { uninit(n * k) } else { Vec::new() };
    if needed[1] || needed[2] {
        let chunk = task_rows(n, k);
        let tasks = n.div_ceil(chunk);
        parts(&mut gl, chunk * k * k, tasks)
            .into_par_iter()
            .zip(parts(&mut ge, chunk * k, tasks))
            .enumerate()
            .for_each(|(t, (gl, ge))| {
                let first = t * chunk;
                let rows = chunk.min(n - first);
                affine_grad_simd(p, eps, g, first, rows, gl, ge);
            });
    }
    // SAFETY: each buffer is empty or covered by the tasks' parts, and each task writes every
    // value of its rows into the parts it was given.
    let (gl, ge) = unsafe { (assume_init(gl), assume_init(ge)) };
    let dloc = needed[0].then(|| per_parameter(g.to_vec(), p.m * k));
    let dl = needed[1].then(|| per_parameter(gl, p.m * k * k));
    let de = needed[2].then_some(ge);
    [dloc, dl, de]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with no pattern that a wrong index could reproduce, in `[lo, hi]`.
    fn values(n: usize, lo: f32, hi: f32, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| lo + (hi - lo) * (((i + 1) * 7919 + seed * 104_729) % 1013) as f32 / 1012.0)
            .collect()
    }

    /// `m` lower-triangular `k × k` matrices with a diagonal in `[0.5, 1.5]`, entries in
    /// `[−0.5, 0.5]` below it, and garbage above it (which must not be read).
    fn matrices(m: usize, k: usize) -> Vec<f32> {
        let below = values(m * k * k, -0.5, 0.5, 3);
        let diag = values(m * k * k, 0.5, 1.5, 4);
        (0..m * k * k)
            .map(|n| {
                let (i, j) = ((n % (k * k)) / k, n % k);
                if j < i {
                    below[n]
                } else if j == i {
                    diag[n]
                } else {
                    1e3
                }
            })
            .collect()
    }

    /// The float64 reference: `(z, w, log_prob)` of one row.
    fn reference(l: &[f32], mu: &[f32], x: &[f32], k: usize) -> (Vec<f64>, Vec<f64>, f64) {
        let lf = |i: usize, j: usize| l[i * k + j] as f64;
        let mut z = vec![0.0f64; k];
        for i in 0..k {
            let s: f64 = (0..i).map(|j| lf(i, j) * z[j]).sum();
            z[i] = (x[i] as f64 - mu[i] as f64 - s) / lf(i, i);
        }
        let mut w = vec![0.0f64; k];
        for i in (0..k).rev() {
            let s: f64 = (i + 1..k).map(|j| lf(j, i) * w[j]).sum();
            w[i] = (z[i] - s) / lf(i, i);
        }
        let lp = -0.5 * z.iter().map(|v| v * v).sum::<f64>()
            - (0..k).map(|i| lf(i, i).ln()).sum::<f64>();
        (z, w, lp)
    }

    fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= tol * (1.0 + w.abs()),
                "{what}[{i}]: got {g}, want {w}"
            );
        }
    }

    /// [`assert_close`] for sums over repeats: within `tol` of the sum of the terms' magnitudes
    /// `size` (float32 sums of many terms round by that much).
    fn assert_close_sums(what: &str, got: &[f32], want: &[f64], size: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, ((&g, &w), s)) in got.iter().zip(want).zip(size).enumerate() {
            assert!(
                (g as f64 - w).abs() <= tol * (1.0 + s),
                "{what}[{i}]: got {g}, want {w} (terms of magnitude {s} in all)"
            );
        }
    }

    /// `(k, m, n)`: one coordinate, a tail block, repeated parameters, and enough rows for
    /// several threads.
    const SHAPES: [(usize, usize, usize); 6] = [
        (1, 1, 1),
        (3, 5, 5),
        (8, 13, 13),
        (5, 3, 12),
        (8, 4000, 8000),
        (2, 1, 70_001),
    ];

    #[test]
    fn log_prob_and_its_gradients_against_float64() {
        for (k, m, n) in SHAPES {
            let (l, mu) = (matrices(m, k), values(m * k, -1.0, 1.0, 5));
            let x = values(n * k, -2.0, 2.0, 6);
            let g = values(n, -1.0, 1.0, 7);
            let got = log_prob(&mu, &l, &x, k);
            let [dmu, dl, dx] = log_prob_grad(&mu, &l, &x, k, &g, [true; 3]);
            let (dmu, dl, dx) = (dmu.unwrap(), dl.unwrap(), dx.unwrap());
            let mut want = vec![0.0f64; n];
            let mut want_dmu = vec![0.0f64; m * k];
            let mut want_dl = vec![0.0f64; m * k * k];
            let mut want_dx = vec![0.0f64; n * k];
            let (mut size_dmu, mut size_dl) = (vec![0.0f64; m * k], vec![0.0f64; m * k * k]);
            for r in 0..n {
                let b = r % m;
                let lb = &l[b * k * k..(b + 1) * k * k];
                let (z, w, lp) = reference(lb, &mu[b * k..(b + 1) * k], &x[r * k..(r + 1) * k], k);
                want[r] = lp;
                let gr = g[r] as f64;
                for i in 0..k {
                    want_dmu[b * k + i] += gr * w[i];
                    size_dmu[b * k + i] += (gr * w[i]).abs();
                    want_dx[r * k + i] = -gr * w[i];
                    for j in 0..=i {
                        let diag = if i == j {
                            1.0 / lb[i * k + i] as f64
                        } else {
                            0.0
                        };
                        want_dl[b * k * k + i * k + j] += gr * (w[i] * z[j] - diag);
                        size_dl[b * k * k + i * k + j] += (gr * (w[i] * z[j] - diag)).abs();
                    }
                }
            }
            let what = format!("k = {k}, m = {m}, n = {n}");
            assert_close(&format!("{what} log_prob"), &got, &want, 1e-5);
            assert_close_sums(&format!("{what} d/dμ"), &dmu, &want_dmu, &size_dmu, 1e-4);
            assert_close_sums(&format!("{what} d/dL"), &dl, &want_dl, &size_dl, 1e-4);
            assert_close(&format!("{what} d/dx"), &dx, &want_dx, 1e-5);
        }
    }

    #[test]
    fn affine_and_its_gradients_against_float64() {
        for (k, m, n) in SHAPES {
            let (l, mu) = (matrices(m, k), values(m * k, -1.0, 1.0, 5));
            let eps = values(n * k, -2.0, 2.0, 6);
            let g = values(n * k, -1.0, 1.0, 7);
            let got = affine(&mu, &l, &eps, k);
            let [dmu, dl, de] = affine_grad(&mu, &l, &eps, k, &g, [true; 3]);
            let (dmu, dl, de) = (dmu.unwrap(), dl.unwrap(), de.unwrap());
            let mut want = vec![0.0f64; n * k];
            let mut want_dmu = vec![0.0f64; m * k];
            let mut want_dl = vec![0.0f64; m * k * k];
            let mut want_de = vec![0.0f64; n * k];
            let (mut size_dmu, mut size_dl) = (vec![0.0f64; m * k], vec![0.0f64; m * k * k]);
            for r in 0..n {
                let b = r % m;
                let lf = |i: usize, j: usize| l[b * k * k + i * k + j] as f64;
                for i in 0..k {
                    let gi = g[r * k + i] as f64;
                    want[r * k + i] = mu[b * k + i] as f64
                        + (0..=i)
                            .map(|j| lf(i, j) * eps[r * k + j] as f64)
                            .sum::<f64>();
                    want_dmu[b * k + i] += gi;
                    size_dmu[b * k + i] += gi.abs();
                    for j in 0..=i {
                        want_dl[b * k * k + i * k + j] += gi * eps[r * k + j] as f64;
                        size_dl[b * k * k + i * k + j] += (gi * eps[r * k + j] as f64).abs();
                        want_de[r * k + j] += lf(i, j) * gi;
                    }
                }
            }
            let what = format!("k = {k}, m = {m}, n = {n}");
            assert_close(&format!("{what} affine"), &got, &want, 1e-5);
            assert_close_sums(&format!("{what} d/dμ"), &dmu, &want_dmu, &size_dmu, 1e-4);
            assert_close_sums(&format!("{what} d/dL"), &dl, &want_dl, &size_dl, 1e-4);
            assert_close(&format!("{what} d/dε"), &de, &want_de, 1e-5);
        }
    }

    #[test]
    fn only_the_needed_gradients_are_computed() {
        let (k, m, n) = (3, 2, 4);
        let (l, mu) = (matrices(m, k), values(m * k, -1.0, 1.0, 5));
        let x = values(n * k, -2.0, 2.0, 6);
        let all = log_prob_grad(&mu, &l, &x, k, &values(n, -1.0, 1.0, 7), [true; 3]);
        for needed in [
            [true, false, false],
            [false, true, false],
            [false, false, true],
        ] {
            let some = log_prob_grad(&mu, &l, &x, k, &values(n, -1.0, 1.0, 7), needed);
            for i in 0..3 {
                assert_eq!(some[i].is_some(), needed[i]);
                if let Some(v) = &some[i] {
                    assert_eq!(v, all[i].as_ref().unwrap());
                }
            }
        }
        let g = values(n * k, -1.0, 1.0, 7);
        let all = affine_grad(&mu, &l, &x, k, &g, [true; 3]);
        let some = affine_grad(&mu, &l, &x, k, &g, [false, false, true]);
        assert!(some[0].is_none() && some[1].is_none());
        assert_eq!(some[2], all[2]);
    }
}
