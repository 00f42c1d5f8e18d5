//! `Gamma(α, 1)` variates in one pass per element: Marsaglia and Tsang's method (2000) on the
//! counter-based generator of [`rng`](crate::rng).
//!
//! With `d = α' − ⅓`, `c = 1/√(9d)` (`α' = α + 1` when `α < 1`, else `α`), an attempt draws a
//! standard normal `z` and a uniform `u`, and proposes `d·v` with `v = (1 + x)³`, `x = c z`; it
//! is accepted when `x > −1` and `ln u < z²/2 + d(1 − v + ln v)`. The bracket is written
//! `3 ln1p(x) − x(3 + x(3 + x))`, which keeps its value (of order `x²`) to float32 precision
//! for large `α`, where `d − d v + d ln v` would cancel. For `α < 1` the draw is
//! `exp(ln(d v) + ln(u_b)/α)` (`Gamma(α + 1)·u_b^{1/α}` in log space, `u_b` a uniform with 62
//! bits), so a factor `u_b^{1/α}` below the float range does not turn a representable draw
//! into 0. Draws are at least `f32::MIN_POSITIVE`, as the composite sampler's.
//!
//! Element `i` of a draw depends on the draw's key and `i` alone: its words are the SplitMix64
//! outputs `mix(mix(key, i), w)`, word 0 for the boost's uniform, words `2t + 1` (the normal,
//! by Box–Muller) and `2t + 2` (the uniform) for attempt `t`. The first attempt runs for every
//! element in a vectorized loop; the elements it rejects (about 2–5%) then loop on their own
//! until accepted, with the same arithmetic. So the result does not depend on the chunking or
//! the threads, and `device.seed(s)` makes it reproducible.

use crate::buffer::{assume_init, uninit};
use crate::rng::{TO_UNIT, cos_turns, mix, open_unit};
use crate::vmath::{exp, ln, ln1p};
use core::mem::MaybeUninit;
use rayon::prelude::*;

/// Attempts per element before the last candidate is kept: with acceptance above 0.95 per
/// attempt for every valid `α`, only reached by invalid ones (NaN, `α ≤ 0`, `+∞`).
const MAX_ATTEMPTS: u64 = 64;

/// The constants of one element: `(α, d, c)`.
#[inline(always)]
fn constants(alpha: f32) -> (f32, f32, f32) {
    let shape = if alpha < 1.0 { alpha + 1.0 } else { alpha };
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    (alpha, d, c)
}

/// Attempt `t` of the element with the stream `seed`: the candidate `d v` and whether it is
/// accepted.
#[inline(always)]
fn attempt(d: f32, c: f32, seed: u64, t: u64) -> (f32, bool) {
    let h = mix(seed, 2 * t + 1);
    let u1 = open_unit(h >> 41);
    let u2 = ((h >> 9) & 0x7f_ffff) as f32 * TO_UNIT;
    let z = (-2.0 * ln(u1)).sqrt() * cos_turns(u2);
    let u = open_unit(mix(seed, 2 * t + 2) >> 41);
    let x = c * z;
    let ln_v = 3.0 * ln1p(x);
    let one_plus = 1.0 + x;
    let v = one_plus * one_plus * one_plus;
    let bound = 0.5 * z * z + d * (ln_v - x * (3.0 + x * (3.0 + x)));
    // `x ≤ −1` makes `ln_v` NaN or −∞ and fails here too; NaN constants fail every attempt.
    let accepted = x > -1.0 && ln(u) < bound;
    (d * v, accepted)
}

/// `ln u` for a uniform `u ∈ (2⁻⁶³, 1]` from 62 bits of `bits`: `(a + (b + ½)·2⁻³¹)·2⁻³¹` with
/// 31-bit halves `a`, `b`, so that small values keep their relative precision.
#[inline(always)]
fn ln_unit_wide(bits: u64) -> f32 {
    const TWO_M31: f32 = 1.0 / 2_147_483_648.0;
    let a = (bits >> 33) as f32;
    let b = ((bits >> 2) & 0x7fff_ffff) as f32;
    ln((a + (b + 0.5) * TWO_M31) * TWO_M31)
}

/// The draw from an accepted candidate `g`: boosted when `α < 1`, and at least the smallest
/// positive normal float32 (NaN stays NaN).
#[inline(always)]
fn finish(alpha: f32, g: f32, seed: u64) -> f32 {
    let boosted = exp(ln(g) + ln_unit_wide(mix(seed, 0)) / alpha);
    let v = if alpha < 1.0 { boosted } else { g };
    if v < f32::MIN_POSITIVE {
        f32::MIN_POSITIVE
    } else {
        v
    }
}

/// The elements `start..start + alpha.len()` of the draw `key`.
#[inline(always)]
fn gamma_run(alpha: &[f32], out: &mut [MaybeUninit<f32>], key: u64, start: u64) {
    // The first attempt for every element, branch-free; rejections are marked NaN.
    for (j, (o, &a)) in out.iter_mut().zip(alpha).enumerate() {
        let (a, d, c) = constants(a);
        let seed = mix(key, start + j as u64);
        let (g, accepted) = attempt(d, c, seed, 0);
        let v = finish(a, g, seed);
        o.write(if accepted { v } else { f32::NAN });
    }
    // SAFETY: the loop above wrote every element of `out` (`alpha` and `out` have one length),
    // and `MaybeUninit<f32>` has the layout of `f32`.
    let out = unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) };
    for (j, (o, &a)) in out.iter_mut().zip(alpha).enumerate() {
        if !o.is_nan() {
            continue;
        }
        let (a, d, c) = constants(a);
        let seed = mix(key, start + j as u64);
        let mut g = f32::NAN;
        for t in 1..MAX_ATTEMPTS {
            let (candidate, accepted) = attempt(d, c, seed, t);
            g = candidate;
            if accepted {
                break;
            }
        }
        *o = finish(a, g, seed);
    }
}

multiversion!(fn gamma_simd[](alpha: &[f32], out: &mut [MaybeUninit<f32>], key: u64, start: u64) => gamma_run);

const CHUNK: usize = 1 << 13;

/// One `Gamma(α, 1)` draw per element of `alpha`, for the draw `key`.
pub(crate) fn standard_gamma(alpha: &[f32], key: u64) -> Vec<f32> {
    let mut out = uninit(alpha.len());
    out.par_chunks_mut(CHUNK)
        .zip(alpha.par_chunks(CHUNK))
        .enumerate()
        .for_each(|(k, (o, a))| gamma_simd(a, o, key, (k * CHUNK) as u64));
    // SAFETY: the chunks cover `out` and every run writes all of its chunk.
    unsafe { assume_init(out) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ln Γ(x)` for `x > 0`, float64: Lanczos (g = 7, 9 terms), 1e-15 relative.
    fn lgamma(x: f64) -> f64 {
        const C: [f64; 9] = [
            0.999_999_999_999_809_9,
            676.520_368_121_885_1,
            -1_259.139_216_722_402_8,
            771.323_428_777_653_1,
            -176.615_029_162_140_6,
            12.507_343_278_686_905,
            -0.138_571_095_265_720_12,
            9.984_369_578_019_572e-6,
            1.505_632_735_149_311_6e-7,
        ];
        if x < 0.5 {
            let pi = core::f64::consts::PI;
            return (pi / (pi * x).sin()).ln() - lgamma(1.0 - x);
        }
        let x = x - 1.0;
        let mut s = C[0];
        for (k, &c) in C.iter().enumerate().skip(1) {
            s += c / (x + k as f64);
        }
        let t = x + 7.5;
        0.5 * (2.0 * core::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + s.ln()
    }

    /// The regularized lower incomplete gamma function `P(a, x)`, float64: the series below
    /// `x = a + 1`, Lentz's continued fraction of `Q` above.
    fn gammainc(a: f64, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        let front = (-x + a * x.ln() - lgamma(a)).exp();
        if x < a + 1.0 {
            let (mut ap, mut del) = (a, 1.0 / a);
            let mut sum = del;
            for _ in 0..100_000 {
                ap += 1.0;
                del *= x / ap;
                sum += del;
                if del.abs() < sum.abs() * 1e-16 {
                    break;
                }
            }
            sum * front
        } else {
            let tiny = 1e-300;
            let mut b = x + 1.0 - a;
            let mut c = 1.0 / tiny;
            let mut d = 1.0 / b;
            let mut h = d;
            for i in 1..100_000 {
                let an = -(i as f64) * (i as f64 - a);
                b += 2.0;
                d = an * d + b;
                if d.abs() < tiny {
                    d = tiny;
                }
                c = b + an / c;
                if c.abs() < tiny {
                    c = tiny;
                }
                d = 1.0 / d;
                let del = d * c;
                h *= del;
                if (del - 1.0).abs() < 1e-16 {
                    break;
                }
            }
            1.0 - front * h
        }
    }

    #[test]
    fn incomplete_gamma_reference_is_right() {
        // P(1, x) = 1 − e⁻ˣ; P(½, x) = erf(√x); P(a, a) → ½ slowly from above.
        for x in [1e-3f64, 0.5, 1.0, 2.0, 7.5, 30.0] {
            assert!((gammainc(1.0, x) - (1.0 - (-x).exp())).abs() < 1e-13);
        }
        assert!((gammainc(0.5, 1.0) - 0.842_700_792_949_714_9).abs() < 1e-13);
        assert!((gammainc(200.0, 200.0) - 0.509_403_418_007_236_5).abs() < 1e-12);
    }

    const N: usize = 1_000_000;
    const ALPHAS: [f32; 5] = [0.05, 0.3, 1.0, 4.5, 200.0];

    /// Mean `α` and variance `α` within 5 standard errors (that of the sample variance from
    /// the fourth central moment `3α² + 6α`), for each `α` with a fixed key.
    #[test]
    fn moments_match_gamma() {
        for (k, &alpha) in ALPHAS.iter().chain(&[1e4]).enumerate() {
            let x = standard_gamma(&vec![alpha; N], 0xfeed_0000 + k as u64);
            assert!(
                x.iter().all(|v| v.is_finite() && *v >= f32::MIN_POSITIVE),
                "α = {alpha}: a draw outside [MIN_POSITIVE, ∞)"
            );
            let (n, a) = (N as f64, alpha as f64);
            let m = x.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n;
            assert!(
                (m - a).abs() < 5.0 * (a / n).sqrt(),
                "α = {alpha}: mean {m}"
            );
            let se_var = ((2.0 * a * a + 6.0 * a) / n).sqrt();
            assert!(
                (var - a).abs() < 5.0 * se_var,
                "α = {alpha}: variance {var}"
            );
        }
    }

    /// Kolmogorov–Smirnov against `P(α, x)` at 2,000 order statistics, with the draws clamped
    /// to `MIN_POSITIVE` counted as the atom `P(α, MIN_POSITIVE)` there: the largest gap between
    /// the fraction of draws `≤ x` and `P(α, x)` below the 0.1% critical value `1.95/√N`.
    #[test]
    fn draws_follow_the_gamma_cdf() {
        for (k, &alpha) in ALPHAS.iter().enumerate() {
            let mut x = standard_gamma(&vec![alpha; N], 77 + k as u64);
            x.sort_by(f32::total_cmp);
            let n = N as f64;
            let mut worst = 0.0f64;
            for s in 0..2_000 {
                let at = x[s * N / 2_000];
                let below = x.partition_point(|&v| v <= at) as f64 / n;
                let strictly = x.partition_point(|&v| v < at) as f64 / n;
                let p = gammainc(alpha as f64, at as f64);
                worst = worst.max((below - p).abs());
                if at > f32::MIN_POSITIVE {
                    worst = worst.max((p - strictly).abs());
                }
            }
            assert!(worst < 1.95 / n.sqrt(), "α = {alpha}: KS distance {worst}");
            // The clamped atom has the mass of the tail below MIN_POSITIVE (1.3% at α = 0.05).
            let atom = x.partition_point(|&v| v <= f32::MIN_POSITIVE) as f64 / n;
            let p = gammainc(alpha as f64, f32::MIN_POSITIVE as f64);
            assert!(
                (atom - p).abs() < 5.0 * (p * (1.0 - p) / n).sqrt() + 1.0 / n,
                "α = {alpha}: {atom} at MIN_POSITIVE, want {p}"
            );
        }
    }

    /// Mixed shapes in one draw agree with draws of each shape alone, position by position,
    /// and the values depend on the key and the position only.
    #[test]
    fn draws_depend_on_key_and_position_only() {
        let alpha: Vec<f32> = (0..100_000).map(|i| ALPHAS[i % 5]).collect();
        let a = standard_gamma(&alpha, 5);
        assert_eq!(a, standard_gamma(&alpha, 5), "same key, same values");
        assert_ne!(a[..10], standard_gamma(&alpha[..10], 6)[..]);
        assert_eq!(a[..10], standard_gamma(&alpha[..10], 5)[..], "a prefix");
        assert!(a.iter().all(|v| v.is_finite() && *v > 0.0));
    }

    #[test]
    fn invalid_shapes_give_nan_and_terminate() {
        let x = standard_gamma(&[f32::NAN, -1.0, 2.0], 3);
        assert!(x[0].is_nan() && x[1].is_nan() && x[2] > 0.0, "{x:?}");
    }

    /// The tensor function: `device.seed(s)` reproduces the draw.
    #[test]
    fn tensor_draws_follow_the_device_seed() {
        use burn::tensor::{Device, Tensor};
        let device = Device::flex();
        let alpha = Tensor::<2>::full([300, 7], 0.7, &device);
        device.seed(11);
        let a = crate::formulas::standard_gamma(alpha.clone()).expect("fused");
        device.seed(11);
        let b = crate::formulas::standard_gamma(alpha.clone()).expect("fused");
        assert_eq!(a.dims(), [300, 7]);
        a.into_data().assert_eq(&b.into_data(), true);
        let mean: f32 = crate::formulas::standard_gamma(alpha)
            .unwrap()
            .mean()
            .into_scalar();
        assert!(
            (mean - 0.7).abs() < 5.0 * (0.7f32 / 2100.0).sqrt(),
            "mean {mean}"
        );
    }
}
