//! Float32 special functions for the count and Student-t formulas: `ln Γ`, digamma, the
//! remainder of Stirling's formula, Loader's deviance, the Poisson log-mass and `ln B`.
//!
//! Each is the same algorithm as its composite counterpart in burn-probability's `math` module
//! (same series, same coefficients, same thresholds and clamps), written for one element with
//! selects instead of early returns, on [`vmath`](super::vmath), so that element loops over
//! them still vectorize. Every branch is computed on an argument clamped to its own range, so
//! the unused one stays finite.

use super::vmath::{ln, ln1p};

/// `ln(2π) / 2`.
const LN_SQRT_2PI: f32 = 0.918_938_5;

/// Below this argument `ln Γ`, digamma and the Stirling remainder use their recurrences.
const SHIFT: f32 = 8.0;

/// `round(x)` (ties to even) for `|x| < 2²²`, with the `1.5·2²³` trick rather than a library
/// call, so that it vectorizes.
#[inline(always)]
fn round_small(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

/// `1/(12z) − 1/(360z³) + 1/(1260z⁵)`, the Stirling series to the `z⁻⁵` term.
#[inline(always)]
fn stirling_series(z: f32) -> f32 {
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    inv / 12.0 * (inv2 * (inv2 / 105.0 - 1.0 / 30.0) + 1.0)
}

/// `ln Γ(x)` for `x ∈ (0, 8]` (arguments are clamped to that range): the Taylor series of
/// `ln Γ(2 + ε)` around the integer `n` nearest to `x`, `ε = x − n`, moved to `x` by the
/// recurrence (see [`lgamma`]).
#[inline(always)]
fn lgamma_below_shift(x: f32) -> f32 {
    // (−1)ᵏ (ζ(k) − 1)/k for k = 18 down to 2, then 1 − γ.
    const TAYLOR: [f64; 18] = [
        2.120_718_480_555_466_6e-7,
        -4.492_469_198_764_566e-7,
        9.551_412_130_407_42e-7,
        -2.039_215_753_801_366e-6,
        4.374_866_789_907_488e-6,
        -9.439_488_275_268_396e-6,
        2.050_721_277_567_069e-5,
        -4.492_623_673_813_314e-5,
        9.945_751_278_180_853e-5,
        -2.231_547_584_535_793_8e-4,
        5.096_695_247_430_424e-4,
        -1.192_753_911_703_261e-3,
        2.890_510_330_741_523_3e-3,
        -7.385_551_028_673_985e-3,
        2.058_080_842_778_454_8e-2,
        -6.735_230_105_319_81e-2,
        3.224_670_334_241_132e-1,
        4.227_843_350_984_671_4e-1,
    ];
    let xs = x.clamp(f32::MIN_POSITIVE, SHIFT);
    let n = round_small(xs);
    let eps = xs - n;
    let mut p = TAYLOR[0] as f32;
    for &c in &TAYLOR[1..] {
        p = p.mul_add(eps, c as f32);
    }
    let near_two = p * eps;
    // Σᵢ₌₂ⁿ⁻¹ ln(i + ε) as the logarithm of one product (each factor 1 where i ≥ n).
    let mut prod = 1.0f32;
    for i in 2..8 {
        let fi = i as f32;
        prod *= if n <= fi { 1.0 } else { eps + fi };
    }
    let up = ln(prod);
    let down_one = -ln1p(eps);
    let down_two = down_one - ln(xs);
    let shifted = if n == 1.0 { down_one } else { up };
    let shifted = if n == 0.0 { down_two } else { shifted };
    near_two + shifted
}

/// `ln Γ(x)` for `x > 0`: Stirling's series to the `x⁻⁵` term at and above 8; below 8 the
/// Taylor series of `ln Γ(2 + ε) = (1 − γ)ε + Σₖ₌₂¹⁸ (−1)ᵏ (ζ(k) − 1) εᵏ / k` around the
/// nearest integer `n` (`ε = x − n`), moved to `x` by `ln Γ(x) = ln Γ(2 + ε) + Σᵢ₌₂ⁿ⁻¹ ln(i + ε)`
/// (`n ≥ 2`), `− ln1p(ε)` (`n = 1`) or `− ln ε − ln1p(ε)` (`n = 0`). NaN gives NaN.
#[inline(always)]
pub(crate) fn lgamma(x: f32) -> f32 {
    let z = if x > SHIFT { x } else { SHIFT };
    let stirling = (z - 0.5) * ln(z) - z + LN_SQRT_2PI + stirling_series(z);
    let r = if x < SHIFT {
        lgamma_below_shift(x)
    } else {
        stirling
    };
    if x.is_nan() { x } else { r }
}

/// The digamma function `ψ(x)` for `x > 0`: the asymptotic series
/// `ln x − 1/(2x) − 1/(12x²) + 1/(120x⁴) − 1/(252x⁶) + 1/(240x⁸)` at and above 8; below 8 the
/// recurrence `ψ(x) = ψ(x + 8) − Σᵢ₌₀⁷ 1/(x + i)`.
#[inline(always)]
pub(crate) fn digamma(x: f32) -> f32 {
    let small = x < SHIFT;
    let xs = if x < SHIFT { x } else { SHIFT };
    let mut recip_sum = 1.0 / xs;
    for i in 1..8 {
        recip_sum += 1.0 / (xs + i as f32);
    }
    let z = if small { xs + SHIFT } else { x };
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    let series = inv2 * (inv2 * (inv2 * (inv2 / 240.0 - 1.0 / 252.0) + 1.0 / 120.0) - 1.0 / 12.0);
    let asymptotic = ln(z) - inv * 0.5 + series;
    asymptotic - if small { recip_sum } else { 0.0 }
}

/// `ψ(x + b) − ψ(x)` for `x, b > 0`, without the cancellation of that difference for large
/// `x`: at and above 8 the asymptotic series of both terms subtracted term by term,
/// `ln1p(b/x) + b/(2x(x+b)) + b(2x+b)/(12x²(x+b)²) + …`; below 8 the two digammas.
#[inline(always)]
pub(crate) fn digamma_difference(x: f32, b: f32) -> f32 {
    let xl = if x > SHIFT { x } else { SHIFT };
    let yl = xl + b;
    let quartic = |z: f32| {
        let inv2 = 1.0 / (z * z);
        inv2 * inv2 * (inv2 * (inv2 / 240.0 - 1.0 / 252.0) + 1.0 / 120.0)
    };
    let series = ln1p(b / xl)
        + b / (xl * yl * 2.0)
        + b * (xl * 2.0 + b) / (xl * xl * (yl * yl) * 12.0)
        + quartic(yl)
        - quartic(xl);
    let xs = if x < SHIFT { x } else { SHIFT };
    let direct = digamma(xs + b) - digamma(xs);
    if x >= SHIFT { series } else { direct }
}

/// The remainder of Stirling's formula, `δ(x) = ln Γ(x) − (x − ½) ln x + x − ½ ln 2π`, for
/// `x > 0`: the series `1/(12x) − 1/(360x³) + 1/(1260x⁵)` at and above 8, the difference
/// itself below.
#[inline(always)]
pub(crate) fn stirling_remainder(x: f32) -> f32 {
    let xl = if x > SHIFT { x } else { SHIFT };
    let series = stirling_series(xl);
    let xs = x.clamp(f32::MIN_POSITIVE, SHIFT);
    let direct = lgamma_below_shift(xs) - (xs - 0.5) * ln(xs) + xs - LN_SQRT_2PI;
    if x >= SHIFT { series } else { direct }
}

/// The deviance term `bd0(k, m) = k ln(k/m) + m − k` for `k, m > 0` given `ln m` (Loader
/// 2000): with `v = (k − m)/(k + m)`, the series `(k − m)v + 2k Σⱼ v^{2j+1}/(2j+1)` where
/// `|v| < 0.1`, else the direct form.
#[inline(always)]
pub(crate) fn deviance_with_log(k: f32, m: f32, ln_m: f32) -> f32 {
    const NEAR: f32 = 0.1;
    let diff = k - m;
    let v = diff / (k + m);
    let near = v.abs() < NEAR;
    let vs = v.clamp(-NEAR, NEAR);
    let v2 = vs * vs;
    let odd =
        vs * v2 * ((((v2 / 13.0 + 1.0 / 11.0) * v2 + 1.0 / 9.0) * v2 + 1.0 / 7.0) * v2 + 0.2) * v2;
    let odd = odd + vs * v2 / 3.0;
    let series = diff * vs + k * odd * 2.0;
    let direct = k * (ln(k) - ln_m) - diff;
    if near { series } else { direct }
}

/// `ln P(X = k)` for `X ~ Poisson(rate)`, real `k ≥ 0`: Loader's saddle-point form
/// `−bd0(k, λ) − ½ ln(2πk) − δ(k)` for `k > 0`, `−λ` at `k = 0`.
#[inline(always)]
pub(crate) fn log_poisson_mass(k: f32, rate: f32) -> f32 {
    let ks = if k > f32::MIN_POSITIVE {
        k
    } else {
        f32::MIN_POSITIVE
    };
    let saddle = -deviance_with_log(ks, rate, ln(rate))
        - ln(ks * core::f32::consts::TAU) * 0.5
        - stirling_remainder(ks);
    if k > 0.0 { saddle } else { -rate }
}

/// `ln B(a, b)` for `a, b > 0`, as
/// `½ ln 2π − ½ ln(a + b) − (a − ½) ln1p(b/a) − (b − ½) ln1p(a/b) + δ(a) + δ(b) − δ(a + b)`.
#[inline(always)]
pub(crate) fn lbeta(a: f32, b: f32) -> f32 {
    let sum = a + b;
    let ta = (a - 0.5) * ln1p(b / a);
    let tb = (b - 0.5) * ln1p(a / b);
    -(ln(sum) * 0.5) - ta - tb + LN_SQRT_2PI + stirling_remainder(a) + stirling_remainder(b)
        - stirling_remainder(sum)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `ln Γ(x)` in float64 (Lanczos, g = 7, 9 terms; relative error near 1e-15), with the
    /// reflection-free range `x > 0`.
    pub(crate) fn lgamma64(x: f64) -> f64 {
        const G: [f64; 9] = [
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
            // ln Γ(x) = ln Γ(x + 1) − ln x
            return lgamma64(x + 1.0) - x.ln();
        }
        let x = x - 1.0;
        let mut a = G[0];
        let t = x + 7.5;
        for (i, &g) in G.iter().enumerate().skip(1) {
            a += g / (x + i as f64);
        }
        0.5 * (2.0 * core::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
    }

    /// `ψ(x)` in float64: the recurrence up to 20, then the asymptotic series.
    pub(crate) fn digamma64(mut x: f64) -> f64 {
        let mut acc = 0.0;
        while x < 20.0 {
            acc -= 1.0 / x;
            x += 1.0;
        }
        let i2 = 1.0 / (x * x);
        acc + x.ln()
            - 0.5 / x
            - i2 * (1.0 / 12.0 - i2 * (1.0 / 120.0 - i2 * (1.0 / 252.0 - i2 * (1.0 / 240.0))))
    }

    /// The error of `got` against `want` in units of float32 rounding of `max(|want|, 1)`
    /// (absolute near the zeros, relative elsewhere).
    fn err(got: f32, want: f64) -> f64 {
        (got as f64 - want).abs() / (want.abs().max(1.0) * f32::EPSILON as f64)
    }

    fn grid() -> Vec<f32> {
        let mut xs: Vec<f32> = (1..4000)
            .map(|i| 10f64.powf(-3.0 + 7.0 * i as f64 / 4000.0) as f32)
            .collect();
        xs.extend((1..=160).map(|i| i as f32 * 0.05));
        xs.extend([0.5, 1.0, 2.0, 7.999_999, 8.0, 8.000_001, 1e-3]);
        xs
    }

    #[test]
    fn lgamma_and_digamma_against_float64() {
        let (mut worst_l, mut worst_d) = ((0.0, 0.0f32), (0.0, 0.0f32));
        for x in grid() {
            let e = err(lgamma(x), lgamma64(x as f64));
            if e > worst_l.0 {
                worst_l = (e, x);
            }
            let e = err(digamma(x), digamma64(x as f64));
            if e > worst_d.0 {
                worst_d = (e, x);
            }
        }
        // ln Γ keeps relative accuracy near its zeros at 1 and 2 as well.
        assert!(worst_l.0 <= 4.0, "lgamma: {worst_l:?}");
        assert!(worst_d.0 <= 8.0, "digamma: {worst_d:?}");
        for x in [1.0f32 + 1e-4, 2.0 - 1e-4, 1.0 - 1e-4] {
            let want = lgamma64(x as f64);
            let e = (lgamma(x) as f64 - want).abs() / want.abs();
            assert!(e < 1e-6, "lgamma({x}) relative error {e}");
        }
        assert!(lgamma(f32::NAN).is_nan() && digamma(f32::NAN).is_nan());
        assert!(lgamma(1e30).is_finite() && digamma(1e30).is_finite());
    }

    #[test]
    fn derived_functions_against_float64() {
        let lbeta64 = |a: f64, b: f64| lgamma64(a) + lgamma64(b) - lgamma64(a + b);
        for (a, b) in [
            (0.5, 0.5),
            (3.0, 4.0),
            (0.25, 10.0),
            (7.5, 0.5),
            (100.0, 0.5),
        ] {
            let e = (lbeta(a as f32, b as f32) as f64 - lbeta64(a, b)).abs();
            assert!(e < 4e-7 * lbeta64(a, b).abs().max(1.0), "lbeta({a}, {b})");
        }
        // ln B(15556, ½), which the three ln Γ near 1.3·10⁵ would lose in float32.
        assert!((lbeta(15556.0, 0.5) + 4.253_728).abs() < 1e-5);
        for (x, b) in [
            (0.3, 0.5),
            (5.0, 0.5),
            (8.0, 0.5),
            (1e3, 0.5),
            (2.0, 40.0),
            (50.0, 3.0),
        ] {
            let want = digamma64(x + b) - digamma64(x);
            let got = digamma_difference(x as f32, b as f32) as f64;
            assert!(
                (got - want).abs() < 1e-6 * want.abs().max(1.0),
                "ψ({x}+{b}) − ψ({x})"
            );
        }
        for (k, rate) in [
            (1.0, 0.5),
            (3.0, 2.5),
            (7.0, 20.0),
            (1e4, 1e4 + 37.0),
            (50.0, 1e-3),
        ] {
            let want = k * f64::ln(rate) - rate - lgamma64(k + 1.0);
            let got = log_poisson_mass(k as f32, rate as f32) as f64;
            assert!(
                (got - want).abs() < 2e-6 * want.abs().max(1.0),
                "Poisson({k}; {rate})"
            );
        }
        assert_eq!(log_poisson_mass(0.0, 2.5), -2.5);
        for x in [0.01f32, 0.7, 3.0, 7.9, 8.0, 30.0, 1e5] {
            let x64 = x as f64;
            let want = lgamma64(x64) - (x64 - 0.5) * x64.ln() + x64 - 0.918_938_533_204_672_8;
            assert!((stirling_remainder(x) as f64 - want).abs() < 1e-6, "δ({x})");
        }
    }
}
