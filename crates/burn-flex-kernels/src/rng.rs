//! Vectorized noise for the CPU backend: uniform and standard normal float32 values from a
//! counter-based generator.
//!
//! Value `i` of a draw is a function of the draw's 64-bit key and `i` alone: the SplitMix64
//! output `mix(key + (i + 1)·γ)` (Steele, Lea and Flood 2014; the generator of Java's
//! `SplittableRandom`, which passes BigCrush). The key comes from burn's own seeded generator,
//! one draw per call, so `device.seed(s)` makes every run reproducible. A normal
//! value is Box–Muller's `√(−2 ln u₁) cos(2π u₂)` from two 23-bit uniforms of the same 64-bit
//! output. No state is shared between positions, so the loop vectorizes and splits over
//! threads without changing the result.

use super::vmath::ln;
use crate::buffer::{assume_init, uninit};
use core::mem::MaybeUninit;
use rayon::prelude::*;

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
pub(crate) const TO_UNIT: f32 = 1.0 / 8_388_608.0; // 2⁻²³

#[inline(always)]
pub(crate) fn mix(key: u64, i: u64) -> u64 {
    let mut z = key.wrapping_add(i.wrapping_add(1).wrapping_mul(GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform value in the open interval (0, 1): `(k + ½)·2⁻²³` for a 23-bit `k`.
#[inline(always)]
pub(crate) fn open_unit(bits: u64) -> f32 {
    ((bits & 0x7f_ffff) as f32 + 0.5) * TO_UNIT
}

/// `cos(2π u)` for `u ∈ [0, 1)`: quarter turns plus Taylor polynomials on `[−π/4, π/4]`
/// (truncation below 3e-8).
#[inline(always)]
pub(crate) fn cos_turns(u: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0;
    let w = 4.0 * u;
    let t = w + SHIFT;
    let q = t.to_bits() & 3; // the nearest quarter turn, modulo 4
    let p = (w - (t - SHIFT)) * core::f32::consts::FRAC_PI_2;
    let p2 = p * p;
    let mut s = 1.0f32 / 362_880.0;
    s = s.mul_add(p2, -1.0 / 5_040.0);
    s = s.mul_add(p2, 1.0 / 120.0);
    s = s.mul_add(p2, -1.0 / 6.0);
    let s = (s * p2 + 1.0) * p;
    let mut c = 1.0f32 / 40_320.0;
    c = c.mul_add(p2, -1.0 / 720.0);
    c = c.mul_add(p2, 1.0 / 24.0);
    let c = (c * p2 - 0.5) * p2 + 1.0;
    let v = if q & 1 == 0 { c } else { s };
    if q == 1 || q == 2 { -v } else { v }
}

#[inline(always)]
fn normal_run(out: &mut [MaybeUninit<f32>], key: u64, start: u64) {
    for (j, o) in out.iter_mut().enumerate() {
        let h = mix(key, start + j as u64);
        let u1 = open_unit(h >> 41);
        let u2 = ((h >> 9) & 0x7f_ffff) as f32 * TO_UNIT;
        o.write((-2.0 * ln(u1)).sqrt() * cos_turns(u2));
    }
}

#[inline(always)]
fn uniform_run(out: &mut [MaybeUninit<f32>], key: u64, start: u64) {
    for (j, o) in out.iter_mut().enumerate() {
        o.write(open_unit(mix(key, start + j as u64) >> 41));
    }
}

/// Standard logistic values `ln u − ln(1 − u)`. Both `u = (k + ½)·2⁻²³` and
/// `1 − u = (2²³ − k − ½)·2⁻²³` are exact in float32, so the tails are as accurate as the
/// logarithm and the draw is symmetric: `k` and `2²³ − 1 − k` give opposite values.
#[inline(always)]
fn logistic_run(out: &mut [MaybeUninit<f32>], key: u64, start: u64) {
    for (j, o) in out.iter_mut().enumerate() {
        let bits = mix(key, start + j as u64) >> 41;
        let u = open_unit(bits);
        let v = (8_388_607.5 - (bits & 0x7f_ffff) as f32) * TO_UNIT;
        o.write(ln(u) - ln(v));
    }
}

multiversion!(fn normal_simd[](out: &mut [MaybeUninit<f32>], key: u64, start: u64) => normal_run);
multiversion!(fn uniform_simd[](out: &mut [MaybeUninit<f32>], key: u64, start: u64) => uniform_run);
multiversion!(fn logistic_simd[](out: &mut [MaybeUninit<f32>], key: u64, start: u64) => logistic_run);

const CHUNK: usize = 1 << 15;

fn fill(n: usize, key: u64, run: fn(&mut [MaybeUninit<f32>], u64, u64)) -> Vec<f32> {
    let mut out = uninit(n);
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, chunk)| run(chunk, key, (c * CHUNK) as u64));
    // SAFETY: the chunks cover `out` and every run writes all of its chunk.
    unsafe { assume_init(out) }
}

/// `n` standard normal values for the draw `key`.
pub(crate) fn normal(n: usize, key: u64) -> Vec<f32> {
    fill(n, key, normal_simd)
}

/// `n` uniform values in (0, 1) for the draw `key`.
pub(crate) fn uniform(n: usize, key: u64) -> Vec<f32> {
    fill(n, key, uniform_simd)
}

/// `n` standard logistic values for the draw `key`.
pub(crate) fn logistic(n: usize, key: u64) -> Vec<f32> {
    fill(n, key, logistic_simd)
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: usize = 1_000_000;

    fn moments(x: &[f32]) -> (f64, f64, f64) {
        let n = x.len() as f64;
        let m = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let c2 = x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n;
        let c4 = x.iter().map(|&v| (v as f64 - m).powi(4)).sum::<f64>() / n;
        (m, c2, c4 / (c2 * c2))
    }

    #[test]
    fn cos_turns_is_accurate() {
        for i in 0..100_000 {
            let u = i as f32 / 100_000.0;
            let want = (2.0 * core::f64::consts::PI * u as f64).cos();
            assert!((cos_turns(u) as f64 - want).abs() < 3e-7, "cos(2π·{u})");
        }
    }

    /// Moments within 5 standard errors, the CDF at ±1, ±2, 0 and 3 within 5 standard errors
    /// of the binomial proportion, and no correlation between neighbours.
    #[test]
    fn normal_values_follow_the_standard_normal() {
        let x = normal(N, 0x1234_5678_9abc_def0);
        let n = N as f64;
        let (m, v, kurt) = moments(&x);
        assert!(m.abs() < 5.0 / n.sqrt(), "mean {m}");
        assert!((v - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "variance {v}");
        assert!(
            (kurt - 3.0).abs() < 5.0 * (24.0 / n).sqrt(),
            "kurtosis {kurt}"
        );
        for (at, p) in [
            (-2.0f32, 0.022_750_13),
            (-1.0, 0.158_655_25),
            (0.0, 0.5),
            (1.0, 0.841_344_75),
            (2.0, 0.977_249_87),
            (3.0, 0.998_650_1),
        ] {
            let frac = x.iter().filter(|&&v| v <= at).count() as f64 / n;
            let se = (p * (1.0 - p) / n).sqrt();
            assert!(
                (frac - p).abs() < 5.0 * se,
                "P(X ≤ {at}) = {frac}, want {p}"
            );
        }
        let lag1 = x.windows(2).map(|w| w[0] as f64 * w[1] as f64).sum::<f64>() / n;
        assert!(lag1.abs() < 5.0 / n.sqrt(), "lag-1 correlation {lag1}");
        assert!(x.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn uniform_values_are_in_the_open_unit_interval_and_uniform() {
        let u = uniform(N, 42);
        assert!(u.iter().all(|&v| v > 0.0 && v < 1.0));
        let n = N as f64;
        let (m, v, _) = moments(&u);
        assert!((m - 0.5).abs() < 5.0 * (1.0 / 12.0 / n).sqrt(), "mean {m}");
        assert!(
            (v - 1.0 / 12.0).abs() < 5.0 * (1.0 / 180.0 / n).sqrt(),
            "variance {v}"
        );
        for q in [0.1, 0.25, 0.5, 0.9] {
            let frac = u.iter().filter(|&&v| (v as f64) < q).count() as f64 / n;
            assert!(
                (frac - q).abs() < 5.0 * (q * (1.0 - q) / n).sqrt(),
                "P(U < {q}) = {frac}"
            );
        }
    }

    /// Standard logistic: mean 0, variance π²/3, excess kurtosis 6/5 (kurtosis 4.2), the CDF
    /// σ(x) at six points, each within 5 standard errors; the same positions as the uniform
    /// draw of the same key, transformed by the logit.
    #[test]
    fn logistic_values_follow_the_standard_logistic() {
        let x = logistic(N, 99);
        let n = N as f64;
        let var = core::f64::consts::PI.powi(2) / 3.0;
        let (m, v, kurt) = moments(&x);
        assert!(m.abs() < 5.0 * (var / n).sqrt(), "mean {m}");
        // Var of the sample variance: (μ₄ − σ⁴)/n with μ₄ = 4.2σ⁴.
        assert!(
            (v - var).abs() < 5.0 * (3.2 * var * var / n).sqrt(),
            "variance {v}"
        );
        // The sample kurtosis' standard error needs the 8th moment; 0.1 is over 10 of them here.
        assert!((kurt - 4.2).abs() < 0.1, "kurtosis {kurt}");
        for at in [-4.0f32, -1.5, 0.0, 0.5, 2.0, 6.0] {
            let p = 1.0 / (1.0 + (-(at as f64)).exp());
            let frac = x.iter().filter(|&&v| v <= at).count() as f64 / n;
            assert!(
                (frac - p).abs() < 5.0 * (p * (1.0 - p) / n).sqrt(),
                "P(X ≤ {at}) = {frac}, want {p}"
            );
        }
        let u = uniform(1000, 99);
        for (l, u) in x.iter().zip(&u) {
            let want = (*u as f64 / (1.0 - *u as f64)).ln();
            assert!(
                (*l as f64 - want).abs() < 1e-6 * (1.0 + want.abs()),
                "{l} vs {want}"
            );
        }
        assert!(x.iter().all(|v| v.is_finite()));
        let max = x.iter().fold(0.0f32, |a, &b| a.max(b.abs()));
        assert!(max < 17.0, "|x| ≤ ln(2²⁴) ≈ 16.6, got {max}");
    }

    #[test]
    fn draws_depend_on_key_and_position_only() {
        let a = normal(100_000, 7);
        assert_eq!(a, normal(100_000, 7), "same key, same values");
        assert_ne!(a[..10], normal(10, 8)[..], "another key, other values");
        assert_eq!(
            a[..10],
            normal(10, 7)[..],
            "a prefix does not depend on the length"
        );
    }
}
