//! The implicit reparameterization gradients of Gamma and Beta samples (Figurnov, Mohamed and
//! Mnih, 2018), per element in float64:
//!
//! * `(α, z) ↦ dz/dα = −(∂P(α, z)/∂α) / p(z; α)` for a `Gamma(α, 1)` sample `z`;
//! * `(a, b, z) ↦ [dz/da, dz/db] = −∇_{a,b} I_z(a, b) / p(z; a, b)` for a `Beta(a, b)` sample.
//!
//! The same mathematics as the composites of burn-probability's `math` module
//! (`standard_gamma_grad`, `beta_sample_grad`): the series of `P(α, z)` below `z = α + 1` and
//! the continued fraction of `Q(α, z)` above it, the continued fraction of `I_z(a, b)` on the
//! side of `(a + 1)/(a + b + 2)` where it converges, each differentiated in forward mode
//! through its recurrence (modified Lentz for the fractions). Where the composite runs a fixed
//! `30 + 5√max(shape)` terms in float32 on every element, these run in float64 until every
//! sum and its tangent have stopped moving (relative change below [`TOL`]), so each element
//! pays for the terms it needs.
//!
//! The loops run on blocks of [`LANES`] elements held in arrays, so that each step of the
//! recurrence is one vector instruction per operation; a block stops when all of its lanes
//! have converged. The Gamma gradient first sorts the elements of a run by branch (series or
//! fraction), so that a block runs one recurrence only. The logarithm and digamma function
//! are written with selects and evaluated stage by stage over a block for the same reason
//! ([`ln_lanes`], [`digamma_lanes`]; `ln64` and `digamma64` in the tests are the same
//! functions for one element).

use crate::buffer::PARALLEL_MIN;
use rayon::prelude::*;

/// Lanes per block: one AVX-512 register of float64.
const LANES: usize = 8;

/// Relative change below which a sum (and its tangent) has converged: far below float32's
/// rounding, so the float32 result is the converged one.
const TOL: f64 = 1e-11;

/// The most terms any element runs (never reached for shapes below about 10⁶).
const MAX_TERMS: usize = 20_000;

/// Elements sorted per run of the Gamma gradient.
const RUN: usize = 1024;

/// The guard of the modified Lentz algorithm (as the composite's `away_from_zero`).
const TINY: f64 = 1e-30;

type Lanes = [f64; LANES];

#[inline(always)]
fn away_from_zero(x: f64) -> f64 {
    if x.abs() < TINY { TINY } else { x }
}

/// `ln x` for finite `x > 0` (normal float64), one element (the tests' reference for
/// [`ln_lanes`]): `x = 2ᵉ m` with `m ∈ [√½, √2)`, and
/// `ln m = 2 atanh s`, `s = (m − 1)/(m + 1)`, by its odd series to `s²³` (`|s| < 0.172`,
/// truncation below 1e-17). Branch-free, so that it vectorizes.
#[cfg(test)]
fn ln64(x: f64) -> f64 {
    const LN_2: f64 = core::f64::consts::LN_2;
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let big = m > core::f64::consts::SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let e = (if big { e + 1 } else { e }) as f64;
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut p = 1.0 / 23.0;
    for k in (1..=10).rev() {
        p = p * s2 + 1.0 / (2 * k + 1) as f64;
    }
    let p = p * s2 + 1.0;
    e * LN_2 + 2.0 * s * p
}

/// Below this argument [`digamma64`] uses its recurrence.
const SHIFT: f64 = 8.0;

/// `ψ(x)` for `x > 0`, one element (the tests' reference for [`digamma_lanes`]): the asymptotic series to the `x⁻¹²` term at and above 8 (truncation
/// below 2e-14), and below 8 the recurrence `ψ(x) = ψ(x + 8) − Σᵢ₌₀⁷ 1/(x + i)`, the sum taken as
/// one fraction (one division).
#[cfg(test)]
fn digamma64(x: f64) -> f64 {
    let small = x < SHIFT;
    let xs = if small { x } else { SHIFT };
    let (mut num, mut den) = (0.0f64, 1.0f64);
    for i in 0..8 {
        let t = xs + i as f64;
        num = num * t + den;
        den *= t;
    }
    let z = if small { xs + SHIFT } else { x };
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    let series = inv2
        * (-1.0 / 12.0
            + inv2
                * (1.0 / 120.0
                    + inv2
                        * (-1.0 / 252.0
                            + inv2
                                * (1.0 / 240.0 + inv2 * (-1.0 / 132.0 + inv2 * 691.0 / 32760.0)))));
    let asymptotic = ln64(z) - 0.5 * inv + series;
    asymptotic - if small { num / den } else { 0.0 }
}

/// [`ln64`] on every lane, stage by stage, so that each stage is one vector operation (the
/// per-element function's polynomial loop would otherwise run lane by lane).
#[inline(always)]
fn ln_lanes(x: &Lanes) -> Lanes {
    const LN_2: f64 = core::f64::consts::LN_2;
    let mut e = [0.0; LANES];
    let mut s = [0.0; LANES];
    for l in 0..LANES {
        let bits = x[l].to_bits();
        let k = ((bits >> 52) & 0x7ff) as i64 - 1023;
        let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
        let big = m > core::f64::consts::SQRT_2;
        let m = if big { m * 0.5 } else { m };
        e[l] = (if big { k + 1 } else { k }) as f64;
        s[l] = (m - 1.0) / (m + 1.0);
    }
    let mut p = [1.0 / 23.0; LANES];
    for k in (1..=10).rev() {
        let c = 1.0 / (2 * k + 1) as f64;
        for l in 0..LANES {
            p[l] = p[l] * (s[l] * s[l]) + c;
        }
    }
    let mut out = [0.0; LANES];
    for l in 0..LANES {
        out[l] = e[l] * LN_2 + 2.0 * s[l] * (p[l] * (s[l] * s[l]) + 1.0);
    }
    out
}

/// [`digamma64`] on every lane, stage by stage (see [`ln_lanes`]).
#[inline(always)]
fn digamma_lanes(x: &Lanes) -> Lanes {
    let mut num = [0.0; LANES];
    let mut den = [1.0; LANES];
    let mut xs = [0.0; LANES];
    let mut z = [0.0; LANES];
    for l in 0..LANES {
        xs[l] = if x[l] < SHIFT { x[l] } else { SHIFT };
        z[l] = if x[l] < SHIFT { xs[l] + SHIFT } else { x[l] };
    }
    for i in 0..8 {
        for l in 0..LANES {
            let t = xs[l] + i as f64;
            num[l] = num[l] * t + den[l];
            den[l] *= t;
        }
    }
    let ln_z = ln_lanes(&z);
    let mut out = [0.0; LANES];
    for l in 0..LANES {
        let inv = 1.0 / z[l];
        let inv2 = inv * inv;
        let series = inv2
            * (-1.0 / 12.0
                + inv2
                    * (1.0 / 120.0
                        + inv2
                            * (-1.0 / 252.0
                                + inv2
                                    * (1.0 / 240.0
                                        + inv2 * (-1.0 / 132.0 + inv2 * 691.0 / 32760.0)))));
        let recurrence = if x[l] < SHIFT { num[l] / den[l] } else { 0.0 };
        out[l] = ln_z[l] - 0.5 * inv + series - recurrence;
    }
    out
}

/// Whether every lane is done.
#[inline(always)]
fn all(done: &[bool; LANES]) -> bool {
    let mut all = true;
    for &d in done {
        all &= d;
    }
    all
}

/// `dz/dα` from the series, for lanes with `0 < z < α + 1`: with
/// `P = z^α e^{−z}/Γ(α+1) · S`, `S = Σₙ zⁿ/((α+1)⋯(α+n))`,
/// `dz/dα = −(z/α)·((ln z − ψ(α+1))·S + ∂S/∂α)`.
#[inline(always)]
fn gamma_series(a: &Lanes, z: &Lanes) -> Lanes {
    let mut term = [1.0f64; LANES];
    let mut dterm = [0.0f64; LANES];
    let mut sum = [1.0f64; LANES];
    let mut dsum = [0.0f64; LANES];
    for i in 1..=MAX_TERMS {
        let mut done = [false; LANES];
        for l in 0..LANES {
            let inv = 1.0 / (a[l] + i as f64);
            let r = z[l] * inv;
            dterm[l] = (dterm[l] - term[l] * inv) * r;
            term[l] *= r;
            sum[l] += term[l];
            dsum[l] += dterm[l];
            // Written as "not moved" so that a NaN lane counts as done.
            done[l] =
                !((term[l] > TOL * sum[l]) | (dterm[l].abs() > TOL * (dsum[l].abs() + sum[l])));
        }
        // Checked every fourth term: the check is a horizontal reduction.
        if i % 4 == 0 && all(&done) {
            break;
        }
    }
    let mut a1 = [0.0; LANES];
    for l in 0..LANES {
        a1[l] = a[l] + 1.0;
    }
    let psi = digamma_lanes(&a1);
    let ln_z = ln_lanes(z);
    let mut out = [0.0; LANES];
    for l in 0..LANES {
        out[l] = -(z[l] / a[l]) * ((ln_z[l] - psi[l]) * sum[l] + dsum[l]);
    }
    out
}

/// `dz/dα` from the continued fraction, for lanes with `z ≥ α + 1`: with
/// `Q = z^α e^{−z}/Γ(α) · h`, `dz/dα = z·((ln z − ψ(α))·h + ∂h/∂α)`, `h` and `∂h/∂α` by the
/// modified Lentz recurrence in forward mode.
#[inline(always)]
fn gamma_fraction(a: &Lanes, z: &Lanes) -> Lanes {
    let mut b = [0.0f64; LANES];
    let mut c = [1e30f64; LANES];
    let mut dc = [0.0f64; LANES];
    let mut d = [0.0f64; LANES];
    let mut dd = [0.0f64; LANES];
    for l in 0..LANES {
        b[l] = z[l] + 1.0 - a[l];
        d[l] = 1.0 / away_from_zero(b[l]);
        dd[l] = d[l] * d[l];
    }
    let mut h = d;
    let mut dh = dd;
    for i in 1..=MAX_TERMS {
        let fi = i as f64;
        let mut done = [false; LANES];
        for l in 0..LANES {
            let an = (a[l] - fi) * fi;
            b[l] += 2.0;
            let denominator = an * d[l] + b[l];
            let d_denominator = d[l] * fi + an * dd[l] - 1.0;
            // 1/denominator and 1/c from one division.
            let denominator = away_from_zero(denominator);
            let inv = 1.0 / (denominator * c[l]);
            let inv_c = inv * denominator;
            d[l] = inv * c[l];
            dd[l] = -(d[l] * d[l] * d_denominator);
            let c_new = away_from_zero(b[l] + an * inv_c);
            dc[l] = (fi * inv_c - an * dc[l] * inv_c * inv_c) - 1.0;
            c[l] = c_new;
            let delta = d[l] * c[l];
            let step = h[l] * (dd[l] * c[l] + d[l] * dc[l]);
            dh[l] = dh[l] * delta + step;
            h[l] *= delta;
            done[l] =
                !(((delta - 1.0).abs() > TOL) | (step.abs() > TOL * (dh[l].abs() + h[l].abs())));
        }
        // Checked every fourth term: the check is a horizontal reduction.
        if i % 4 == 0 && all(&done) {
            break;
        }
    }
    let psi = digamma_lanes(a);
    let ln_z = ln_lanes(z);
    let mut out = [0.0; LANES];
    for l in 0..LANES {
        out[l] = z[l] * ((ln_z[l] - psi[l]) * h[l] + dh[l]);
    }
    out
}

/// The lanes `idx` of `x` as float64 (a short block padded with its first element).
#[inline(always)]
fn gather(idx: &[u32], x: &[f32]) -> Lanes {
    let mut out = [0.0; LANES];
    for (l, o) in out.iter_mut().enumerate() {
        *o = x[idx[l.min(idx.len() - 1)] as usize] as f64;
    }
    out
}

/// Writes the lanes of `g` to the positions `idx` of `out`.
#[inline(always)]
fn scatter(idx: &[u32], g: &Lanes, out: &mut [f32]) {
    for (l, &i) in idx.iter().enumerate() {
        out[i as usize] = g[l] as f32;
    }
}

/// [`standard_gamma_grad`] on one run of at most [`RUN`] elements.
#[inline(always)]
fn gamma_run(alpha: &[f32], z: &[f32], out: &mut [f32]) {
    let mut series = [0u32; RUN];
    let mut fraction = [0u32; RUN];
    let (mut ns, mut nf) = (0, 0);
    for i in 0..out.len() {
        let (a, x) = (alpha[i], z[i]);
        if x > 0.0 && (x as f64) < a as f64 + 1.0 {
            series[ns] = i as u32;
            ns += 1;
        } else if x > 0.0 {
            fraction[nf] = i as u32;
            nf += 1;
        } else {
            // z = 0 (and anything below, or NaN): the sample does not move.
            out[i] = if x.is_nan() || a.is_nan() {
                f32::NAN
            } else {
                0.0
            };
        }
    }
    // Plain loops and functions rather than closures, so that everything is inlined into the
    // copy compiled for the CPU's instruction set.
    for idx in series[..ns].chunks(LANES) {
        let g = gamma_series(&gather(idx, alpha), &gather(idx, z));
        scatter(idx, &g, out);
    }
    for idx in fraction[..nf].chunks(LANES) {
        let g = gamma_fraction(&gather(idx, alpha), &gather(idx, z));
        scatter(idx, &g, out);
    }
}

multiversion!(
    fn gamma_simd[](alpha: &[f32], z: &[f32], out: &mut [f32]) => gamma_run
);

/// `dz/dα` of a `Gamma(α, 1)` sample `z` for each element of `alpha` and `z` (equal lengths),
/// `α > 0`, `z ≥ 0`: 0 at `z = 0`, split over the threads.
pub(crate) fn standard_gamma_grad(alpha: &[f32], z: &[f32]) -> Vec<f32> {
    assert_eq!(alpha.len(), z.len(), "standard_gamma_grad: lengths");
    let mut out = vec![0.0f32; z.len()];
    let chunk = task_len(z.len());
    out.par_chunks_mut(chunk).enumerate().for_each(|(c, out)| {
        let base = c * chunk;
        for (r, out) in out.chunks_mut(RUN).enumerate() {
            let start = base + r * RUN;
            let end = start + out.len();
            gamma_simd(&alpha[start..end], &z[start..end], out);
        }
    });
    out
}

/// One task's share of `n` elements: all of them below [`PARALLEL_MIN`], else about a
/// sixteenth per thread (the cost per element varies with its shape and place, so smaller
/// shares balance the threads), rounded up to a multiple of [`RUN`].
fn task_len(n: usize) -> usize {
    if n < PARALLEL_MIN {
        return n.max(1);
    }
    let tasks = 16 * rayon::current_num_threads().max(1);
    n.div_ceil(tasks).div_ceil(RUN) * RUN
}

/// The state of the Lentz recurrence of the incomplete beta fraction with its two tangents
/// (with respect to the fraction's `a` and `b`).
struct BetaState {
    c: Lanes,
    d: Lanes,
    h: Lanes,
    /// `(∂c, ∂d, ∂h)` per tangent.
    dc: [Lanes; 2],
    dd: [Lanes; 2],
    dh: [Lanes; 2],
}

impl BetaState {
    /// One Lentz step with coefficient `e` and its tangents `de`: `d ← 1/(1 + e d)`,
    /// `c ← 1 + e/c`, `h ← h d c`. Returns whether every lane has converged.
    #[inline(always)]
    fn step(&mut self, e: &Lanes, de: [&Lanes; 2]) -> bool {
        let mut done = [false; LANES];
        for l in 0..LANES {
            let d_old = self.d[l];
            // 1/(1 + e d) and 1/c from one division.
            let denominator = away_from_zero(e[l] * d_old + 1.0);
            let inv = 1.0 / (denominator * self.c[l]);
            let inv_c = inv * denominator;
            let d = inv * self.c[l];
            let c = away_from_zero(e[l] * inv_c + 1.0);
            let delta = d * c;
            let mut moved = (delta - 1.0).abs() > TOL;
            for t in 0..2 {
                let de = de[t][l];
                let dd = -(d * d * (de * d_old + e[l] * self.dd[t][l]));
                let dc = de * inv_c - e[l] * self.dc[t][l] * inv_c * inv_c;
                let step = self.h[l] * (dd * c + d * dc);
                let dh = self.dh[t][l] * delta + step;
                moved |= step.abs() > TOL * (dh.abs() + self.h[l].abs());
                self.dd[t][l] = dd;
                self.dc[t][l] = dc;
                self.dh[t][l] = dh;
            }
            self.h[l] *= delta;
            self.d[l] = d;
            self.c[l] = c;
            done[l] = !moved;
        }
        all(&done)
    }
}

/// The continued fraction `h(a, b, x)` of the incomplete beta function and its derivatives
/// with respect to `a` and `b`: `(h, ∂h/∂a, ∂h/∂b)`, each lane run until it has converged.
#[inline(always)]
fn beta_fraction(a: &Lanes, b: &Lanes, x: &Lanes) -> (Lanes, Lanes, Lanes) {
    // d₀ = 1/(1 − (a+b) x/(a+1)); ∂/∂a of the denominator is −x(1−b)/(a+1)², ∂/∂b is −x/(a+1).
    let mut s = BetaState {
        c: [1.0; LANES],
        d: [0.0; LANES],
        h: [0.0; LANES],
        dc: [[0.0; LANES]; 2],
        dd: [[0.0; LANES]; 2],
        dh: [[0.0; LANES]; 2],
    };
    for l in 0..LANES {
        let a1 = a[l] + 1.0;
        let d0 = 1.0 / away_from_zero(1.0 - (a[l] + b[l]) * x[l] / a1);
        let dd_a = d0 * d0 * x[l] * (1.0 - b[l]) / (a1 * a1);
        let dd_b = d0 * d0 * x[l] / a1;
        s.d[l] = d0;
        s.h[l] = d0;
        s.dd[0][l] = dd_a;
        s.dh[0][l] = dd_a;
        s.dd[1][l] = dd_b;
        s.dh[1][l] = dd_b;
    }
    let mut e = [0.0; LANES];
    let mut de_a = [0.0; LANES];
    let mut de_b = [0.0; LANES];
    for m in 1..=MAX_TERMS {
        let m = m as f64;
        let mut odd = [0.0; LANES];
        let mut dodd_a = [0.0; LANES];
        let mut dodd_b = [0.0; LANES];
        for l in 0..LANES {
            // The reciprocals of p = a + 2m − 1, q = a + 2m, r = a + 2m + 1, a + m and
            // a + b + m from one division (their product stays below 10¹⁸ for shapes below 10⁶).
            let (p, q, r) = (
                a[l] + (2.0 * m - 1.0),
                a[l] + 2.0 * m,
                a[l] + (2.0 * m + 1.0),
            );
            let (am, qm) = (a[l] + m, a[l] + b[l] + m);
            let (pq, rs) = (p * q, r * am);
            let inv = 1.0 / (pq * rs * qm);
            let inv_pq = inv * rs * qm;
            let inv_rs = inv * pq * qm;
            let inv_qm = inv * pq * rs;
            let (inv_p, inv_q) = (inv_pq * q, inv_pq * p);
            let (inv_r, inv_am) = (inv_rs * am, inv_rs * r);
            let even_b = x[l] * m * inv_pq;
            e[l] = (b[l] - m) * even_b;
            de_a[l] = -(e[l] * (inv_p + inv_q));
            de_b[l] = even_b;
            odd[l] = -(am * qm * x[l]) * inv_q * inv_r;
            dodd_a[l] = odd[l] * (inv_am + inv_qm - inv_q - inv_r);
            dodd_b[l] = odd[l] * inv_qm;
        }
        let even_done = s.step(&e, [&de_a, &de_b]);
        let odd_done = s.step(&odd, [&dodd_a, &dodd_b]);
        if even_done && odd_done {
            break;
        }
    }
    (s.h, s.dh[0], s.dh[1])
}

/// `[dz/da, dz/db]` for one block of `Beta(a, b)` samples `z ∈ (0, 1)`: the fraction of
/// `I_z(a, b)` where `z < (a+1)/(a+b+2)`, else that of `1 − I_{1−z}(b, a)`.
#[inline(always)]
fn beta_block(a: &Lanes, b: &Lanes, z: &Lanes) -> (Lanes, Lanes) {
    let mut direct = [false; LANES];
    let mut p = [0.0; LANES];
    let mut q = [0.0; LANES];
    let mut x = [0.0; LANES];
    for l in 0..LANES {
        direct[l] = z[l] < (a[l] + 1.0) / (a[l] + b[l] + 2.0);
        p[l] = if direct[l] { a[l] } else { b[l] };
        q[l] = if direct[l] { b[l] } else { a[l] };
        // 1 − z is exact in float64 for a float32 z.
        x[l] = if direct[l] { z[l] } else { 1.0 - z[l] };
    }
    let (h, hp, hq) = beta_fraction(&p, &q, &x);
    let mut ab = [0.0; LANES];
    let mut one_minus_z = [0.0; LANES];
    for l in 0..LANES {
        ab[l] = a[l] + b[l];
        one_minus_z[l] = 1.0 - z[l];
    }
    let (ln_zs, ln_1mzs) = (ln_lanes(z), ln_lanes(&one_minus_z));
    let (psi_abs, psi_as, psi_bs) = (digamma_lanes(&ab), digamma_lanes(a), digamma_lanes(b));
    let mut da = [0.0; LANES];
    let mut db = [0.0; LANES];
    for l in 0..LANES {
        let (a, b, z) = (a[l], b[l], z[l]);
        let (ln_z, ln_1mz) = (ln_zs[l], ln_1mzs[l]);
        let psi_ab_a = psi_abs[l] - psi_as[l];
        let psi_ab_b = psi_abs[l] - psi_bs[l];
        let front = z * (1.0 - z);
        // Direct: I = z^a (1−z)^b/(a B) · h(a, b, z).
        let lower_a = -(front / a) * (h[l] * (ln_z - 1.0 / a + psi_ab_a) + hp[l]);
        let lower_b = -(front / a) * (h[l] * (ln_1mz + psi_ab_b) + hq[l]);
        // Exchanged: I = 1 − (1−z)^b z^a/(b B) · h(b, a, 1 − z).
        let upper_a = (front / b) * (h[l] * (ln_z + psi_ab_a) + hq[l]);
        let upper_b = (front / b) * (h[l] * (ln_1mz - 1.0 / b + psi_ab_b) + hp[l]);
        da[l] = if direct[l] { lower_a } else { upper_a };
        db[l] = if direct[l] { lower_b } else { upper_b };
    }
    (da, db)
}

/// [`beta_block`] on the lanes `idx`, written to `out_a` and `out_b`.
#[inline(always)]
fn beta_lanes(idx: &[u32], inputs: [&[f32]; 3], out_a: &mut [f32], out_b: &mut [f32]) {
    let [a, b, z] = inputs;
    let (da, db) = beta_block(&gather(idx, a), &gather(idx, b), &gather(idx, z));
    scatter(idx, &da, out_a);
    scatter(idx, &db, out_b);
}

/// [`beta_sample_grad`] on one run of elements.
#[inline(always)]
fn beta_run(a: &[f32], b: &[f32], z: &[f32], out_a: &mut [f32], out_b: &mut [f32]) {
    let n = out_a.len();
    let mut idx = [0u32; LANES];
    let mut k = 0;
    for i in 0..n {
        if z[i] > 0.0 && z[i] < 1.0 {
            idx[k] = i as u32;
            k += 1;
            if k == LANES {
                beta_lanes(&idx, [a, b, z], out_a, out_b);
                k = 0;
            }
        } else {
            // At the ends of the support (and for NaN) the sample does not move.
            let nan = z[i].is_nan() || a[i].is_nan() || b[i].is_nan();
            let v = if nan { f32::NAN } else { 0.0 };
            out_a[i] = v;
            out_b[i] = v;
        }
    }
    if k > 0 {
        beta_lanes(&idx[..k], [a, b, z], out_a, out_b);
    }
}

multiversion!(
    fn beta_simd[](
        a: &[f32],
        b: &[f32],
        z: &[f32],
        out_a: &mut [f32],
        out_b: &mut [f32]
    ) => beta_run
);

/// `[dz/da, dz/db]` of a `Beta(a, b)` sample `z` for each element of `a`, `b` and `z` (equal
/// lengths), `a, b > 0`: 0 at `z = 0` and `z = 1`, split over the threads.
pub(crate) fn beta_sample_grad(a: &[f32], b: &[f32], z: &[f32]) -> (Vec<f32>, Vec<f32>) {
    assert!(
        a.len() == z.len() && b.len() == z.len(),
        "beta_sample_grad: lengths"
    );
    let n = z.len();
    let mut out_a = vec![0.0f32; n];
    let mut out_b = vec![0.0f32; n];
    let chunk = task_len(n);
    out_a
        .par_chunks_mut(chunk)
        .zip(out_b.par_chunks_mut(chunk))
        .enumerate()
        .for_each(|(c, (out_a, out_b))| {
            let (start, end) = (c * chunk, c * chunk + out_a.len());
            beta_simd(&a[start..end], &b[start..end], &z[start..end], out_a, out_b);
        });
    (out_a, out_b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::special::tests::lgamma64;

    /// `ln P(a, x)` (lower = true) or `ln Q(a, x)`, in float64: the series of `P` below
    /// `x = a + 1`, the continued fraction of `Q` above (Numerical Recipes' `gser`/`gcf`), run
    /// to float64 rounding, the other one as `ln(1 − ·)`.
    fn ln_gamma_inc(a: f64, x: f64, lower: bool) -> f64 {
        let front = a * x.ln() - x - lgamma64(a);
        let (ln_p, ln_q) = if x < a + 1.0 {
            let (mut term, mut sum, mut n) = (1.0 / a, 1.0 / a, a);
            for _ in 0..100_000 {
                n += 1.0;
                term *= x / n;
                sum += term;
                if term.abs() < sum.abs() * 1e-17 {
                    break;
                }
            }
            let ln_p = front + sum.ln();
            (ln_p, (-ln_p.exp()).ln_1p())
        } else {
            let mut b = x + 1.0 - a;
            let mut c = 1e300;
            let mut d = 1.0 / b;
            let mut h = d;
            for i in 1..100_000 {
                let an = -(i as f64) * (i as f64 - a);
                b += 2.0;
                d = an * d + b;
                d = 1.0 / if d.abs() < 1e-300 { 1e-300 } else { d };
                c = b + an / c;
                c = if c.abs() < 1e-300 { 1e-300 } else { c };
                h *= d * c;
                if (d * c - 1.0).abs() < 1e-17 {
                    break;
                }
            }
            let ln_q = front + h.ln();
            ((-ln_q.exp()).ln_1p(), ln_q)
        };
        if lower { ln_p } else { ln_q }
    }

    /// `dz/dα` by central differences (step `10⁻⁵·max(α, 1)`) of `ln P` (of `ln Q` above the
    /// median), divided by the density: an independent float64 reference.
    fn gamma_grad_reference(a: f64, z: f64) -> f64 {
        let lower = z < a;
        let h = 1e-5 * a.max(1.0).min(a * 10.0);
        let slope = (ln_gamma_inc(a + h, z, lower) - ln_gamma_inc(a - h, z, lower)) / (2.0 * h);
        let ln_density = (a - 1.0) * z.ln() - z - lgamma64(a);
        let ln_cdf = ln_gamma_inc(a, z, lower);
        let sign = if lower { -1.0 } else { 1.0 };
        sign * (ln_cdf - ln_density).exp() * slope
    }

    /// Values of `Gamma(α)` samples over the bulk and both tails, for each `α`.
    fn gamma_grid() -> Vec<(f32, f32)> {
        let mut cases = Vec::new();
        for a in [0.05f32, 0.5, 1.0, 5.0, 50.0, 200.0] {
            let sd = a.sqrt();
            let mut zs = vec![
                1e-30,
                1e-12,
                1e-6,
                1e-3,
                0.1,
                1.0,
                3.0,
                20.0,
                60.0,
                a,
                a + 1.0,
                a + 0.999,
                a + 1.001,
            ];
            for k in [
                -4.0f32, -3.0, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0,
            ] {
                zs.push(a + k * sd);
            }
            for z in zs {
                if z > 0.0 && z < a + 12.0 * sd + 40.0 {
                    cases.push((a, z));
                }
            }
        }
        cases
    }

    #[test]
    fn ln64_and_digamma64_against_std() {
        for i in 0..2000 {
            let x = 10f64.powf(-300.0 + 600.0 * i as f64 / 2000.0) * 1.37;
            let e = (ln64(x) - x.ln()).abs();
            assert!(e <= 4e-16 * x.ln().abs().max(1.0), "ln64({x}): {e}");
        }
        for x in [0.05, 0.5, 1.0, 2.5, 7.999, 8.0, 30.0, 1e4] {
            let want = super::super::special::tests::digamma64(x);
            assert!(
                (digamma64(x) - want).abs() < 1e-12 * want.abs().max(1.0),
                "ψ({x})"
            );
        }
        // The block versions are the same functions.
        let xs: Lanes = [0.05, 0.5, 1.0, 2.5, 7.999, 8.0, 30.0, 1e4];
        let (l, d) = (ln_lanes(&xs), digamma_lanes(&xs));
        for i in 0..LANES {
            assert_eq!(l[i], ln64(xs[i]));
            assert!((d[i] - digamma64(xs[i])).abs() <= 1e-15 * d[i].abs().max(1.0));
        }
    }

    #[test]
    fn standard_gamma_grad_against_float64_finite_differences() {
        let cases = gamma_grid();
        let alpha: Vec<f32> = cases.iter().map(|c| c.0).collect();
        let z: Vec<f32> = cases.iter().map(|c| c.1).collect();
        let got = standard_gamma_grad(&alpha, &z);
        let mut worst = (0.0f64, 0.0, 0.0);
        for ((a, z), g) in cases.iter().zip(&got) {
            let want = gamma_grad_reference(*a as f64, *z as f64);
            let e = (*g as f64 - want).abs() / want.abs().max(1e-30);
            if e > worst.0 {
                worst = (e, *a as f64, *z as f64);
            }
            assert!(e < 2e-6, "dz/dα at α = {a}, z = {z}: {g} vs {want}");
        }
        eprintln!("worst relative error {worst:?}");
        assert_eq!(standard_gamma_grad(&[2.0], &[0.0]), vec![0.0]);
        assert!(standard_gamma_grad(&[f32::NAN], &[1.0])[0].is_nan());
    }

    /// `ln I_x(a, b)` in float64 by its continued fraction (Numerical Recipes' `betacf`), run to
    /// float64 rounding; valid (fast) for `x < (a+1)/(a+b+2)`.
    fn ln_beta_inc(a: f64, b: f64, x: f64) -> f64 {
        let tiny = 1e-300;
        let guard = |v: f64| if v.abs() < tiny { tiny } else { v };
        let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
        let mut c = 1.0;
        let mut d = 1.0 / guard(1.0 - qab * x / qap);
        let mut h = d;
        for m in 1..100_000 {
            let m = m as f64;
            let m2 = 2.0 * m;
            let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
            d = 1.0 / guard(1.0 + aa * d);
            c = guard(1.0 + aa / c);
            h *= d * c;
            let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
            d = 1.0 / guard(1.0 + aa * d);
            c = guard(1.0 + aa / c);
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-17 {
                break;
            }
        }
        let lbeta = lgamma64(a) + lgamma64(b) - lgamma64(a + b);
        a * x.ln() + b * (1.0 - x).ln() - lbeta - a.ln() + h.ln()
    }

    /// `[dz/da, dz/db]` by central differences of `ln I_z(a, b)` (or of
    /// `ln(1 − I_z(a, b)) = ln I_{1−z}(b, a)` above the threshold), divided by the density.
    fn beta_grad_reference(a: f64, b: f64, z: f64) -> [f64; 2] {
        let direct = z < (a + 1.0) / (a + b + 2.0);
        let f = |a: f64, b: f64| {
            if direct {
                ln_beta_inc(a, b, z)
            } else {
                ln_beta_inc(b, a, 1.0 - z)
            }
        };
        let lbeta = lgamma64(a) + lgamma64(b) - lgamma64(a + b);
        let ln_density = (a - 1.0) * z.ln() + (b - 1.0) * (1.0 - z).ln() - lbeta;
        let ratio = (f(a, b) - ln_density).exp();
        let sign = if direct { -1.0 } else { 1.0 };
        let (ha, hb) = (1e-5 * a.min(1.0), 1e-5 * b.min(1.0));
        let da = (f(a + ha, b) - f(a - ha, b)) / (2.0 * ha);
        let db = (f(a, b + hb) - f(a, b - hb)) / (2.0 * hb);
        [sign * ratio * da, sign * ratio * db]
    }

    #[test]
    fn beta_sample_grad_against_float64_finite_differences() {
        let shapes = [0.05f32, 0.5, 1.0, 5.0, 50.0, 200.0];
        let mut cases = Vec::new();
        for &a in &shapes {
            for &b in &shapes {
                let mean = a / (a + b);
                let sd = (a * b / ((a + b) * (a + b) * (a + b + 1.0))).sqrt();
                let mut zs = vec![1e-6f32, 1e-3, 0.1, 0.5, 0.9, 0.999, 1.0 - 1e-6, mean];
                for k in [-3.0f32, -1.0, 1.0, 3.0] {
                    zs.push(mean + k * sd);
                }
                zs.extend(zs.clone().iter().map(|z| z * 0.999_9));
                for z in zs {
                    if z > 0.0 && z < 1.0 {
                        cases.push((a, b, z));
                    }
                }
            }
        }
        let col = |k: usize| -> Vec<f32> { cases.iter().map(|c| [c.0, c.1, c.2][k]).collect() };
        let (da, db) = beta_sample_grad(&col(0), &col(1), &col(2));
        let mut worst = (0.0f64, 0.0, 0.0, 0.0);
        for (i, (a, b, z)) in cases.iter().enumerate() {
            let want = beta_grad_reference(*a as f64, *b as f64, *z as f64);
            // Relative, with a floor at float32 rounding of the larger of the two gradients.
            let scale = want[0].abs().max(want[1].abs()) * 1e-6;
            for (got, want) in [(da[i], want[0]), (db[i], want[1])] {
                let e = (got as f64 - want).abs() / want.abs().max(scale).max(1e-30);
                if e > worst.0 {
                    worst = (e, *a as f64, *b as f64, *z as f64);
                }
                assert!(e < 2e-5, "Beta({a}, {b}) at {z}: {got} vs {want}");
            }
        }
        eprintln!("worst relative error {worst:?}");
        let (da, db) = beta_sample_grad(&[2.0, 2.0], &[3.0, 3.0], &[0.0, 1.0]);
        assert_eq!((da, db), (vec![0.0, 0.0], vec![0.0, 0.0]));
    }
}
