//! Branch-free float32 `exp`, `ln`, `ln1p`, softplus and sigmoid that the compiler can vectorize.
//!
//! The CPU backend evaluates `exp` and `ln` one element at a time through the C library. These
//! versions
//! are written without branches or library calls (range reduction with bit operations, then a
//! minimax polynomial, the Cephes coefficients), so that a loop over a slice compiles to SIMD
//! instructions. Special values follow IEEE: `ln(0) = −∞`, `ln(x < 0) = NaN`, `exp(−∞) = 0`,
//! `exp(+∞) = +∞`, and NaN propagates.
//!
//! Accuracy (tested below against float64 over wide ranges): `exp` and `ln` within 2 ulp over
//! their whole domain, `ln1p`, softplus and sigmoid within a few ulp. The polynomials use fused
//! multiply-add, which the AVX2 and AVX-512 code paths chosen at run time have in hardware.

/// `ln(1 + f) + e·ln 2` for `f ∈ (√½ − 1, √2 − 1]`: Cephes' minimax polynomial, with `ln 2` in
/// two parts so that `e·ln 2` adds without rounding away `f`'s low bits. A macro rather than a
/// function, so that `ln` and softplus's `ln1p_unit` each get the expression written in place
/// and optimized with their own surroundings.
macro_rules! ln_reduced {
    ($f:expr, $e:expr) => {{
        let (f, e): (f32, f32) = ($f, $e);
        let z = f * f;
        let mut p = 7.037_683_6e-2f32;
        p = p.mul_add(f, -0.115_146_1);
        p = p.mul_add(f, 0.116_769_98);
        p = p.mul_add(f, -0.124_201_41);
        p = p.mul_add(f, 0.142_493_23);
        p = p.mul_add(f, -0.166_680_57);
        p = p.mul_add(f, 0.200_007_15);
        p = p.mul_add(f, -0.249_999_94);
        p = p.mul_add(f, 0.333_333_3);
        let mut y = p * f * z;
        y += e * -2.121_944_4e-4;
        y += -0.5 * z;
        f + y + e * 0.693_359_4
    }};
}

/// `eˣ`, float32, within 2 ulp; subnormal results are computed, not flushed.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // Clamp so that the exponent arithmetic below stays in range; NaN fails both comparisons
    // and propagates through the polynomial.
    let x = if x > 89.0 { 89.0 } else { x };
    let x = if x < -104.0 { -104.0 } else { x };
    // n = round(x / ln 2) with the 1.5·2²³ trick: the low mantissa bits of `t` hold n.
    const SHIFT: f32 = 12_582_912.0;
    let t = x * core::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_2e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 0.166_666_65);
    p = p.mul_add(r, 0.5);
    let y = p * r * r + r + 1.0;
    // 2ⁿ in two halves, so that n from −150 to 128 never leaves the exponent range.
    let ni = (t.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32);
    let a = ni >> 1;
    let b = ni - a;
    let sa = f32::from_bits(((a + 127) << 23) as u32);
    let sb = f32::from_bits(((b + 127) << 23) as u32);
    y * sa * sb
}

/// `ln x`, float32, within 2 ulp; `ln 0 = −∞`, negative or NaN input gives NaN.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    // Scale subnormals up so the exponent field is meaningful.
    let sub = x < f32::MIN_POSITIVE;
    let xs = if sub { x * 8_388_608.0 } else { x };
    let bits = xs.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    e = if sub { e - 23 } else { e };
    // Mantissa m in [1, 2); fold to (√½, √2] so that f = m − 1 is small.
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > core::f32::consts::SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let e = if big { e + 1 } else { e } as f32;
    let f = m - 1.0;
    let r = ln_reduced!(f, e);
    let r = if x == f32::INFINITY { f32::INFINITY } else { r };
    let r = if x == 0.0 { f32::NEG_INFINITY } else { r };
    // Negative x and NaN fail the comparison.
    if x >= 0.0 { r } else { f32::NAN }
}

/// `ln(1 + u)` for `u > −1`, accurate for small `|u|` (Goldberg's correction of `ln(1 + u)`).
#[inline(always)]
pub fn ln1p(u: f32) -> f32 {
    let w = 1.0 + u;
    let d = w - 1.0;
    // When 1 + u rounds to 1, ln1p(u) = u to working precision; the division is then 0/0.
    let d = if d == 0.0 { 1.0 } else { d };
    let r = ln(w) * (u / d);
    let r = if w == 1.0 { u } else { r };
    if u == f32::INFINITY { u } else { r }
}

/// `eˣ − 1`, accurate near 0: a degree-8 Taylor polynomial for `|x| < ½` (truncation below
/// 1e-8 relative), `exp(x) − 1` elsewhere (where it loses less than one ulp of 1).
#[inline(always)]
pub fn expm1(x: f32) -> f32 {
    let mut p = 1.0f32 / 40_320.0;
    p = p.mul_add(x, 1.0 / 5_040.0);
    p = p.mul_add(x, 1.0 / 720.0);
    p = p.mul_add(x, 1.0 / 120.0);
    p = p.mul_add(x, 1.0 / 24.0);
    p = p.mul_add(x, 1.0 / 6.0);
    p = p.mul_add(x, 0.5);
    let small = p * x * x + x;
    let large = exp(x) - 1.0;
    if x.abs() < 0.5 { small } else { large }
}

/// `tanh x`: an odd minimax polynomial for `|x| < 0.625` (Cephes), `1 − 2/(e^{2|x|} + 1)` with
/// the sign of `x` elsewhere.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let z = x * x;
    let mut p = -5.704_988_7e-3f32;
    p = p.mul_add(z, 2.063_909e-2);
    p = p.mul_add(z, -5.373_971_6e-2);
    p = p.mul_add(z, 0.133_314_42);
    p = p.mul_add(z, -0.333_332_8);
    let small = p * z * x + x;
    let a = x.abs();
    let big = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
    let big = if x < 0.0 { -big } else { big };
    if a < 0.625 { small } else { big }
}

/// `ln(1 + e)` for `e ∈ [0, 1]`, the tail of softplus. `1 + e` lies in `[1, 2]`, so this needs
/// neither `ln`'s exponent extraction nor `ln1p`'s division: the reduced argument of `ln`'s
/// polynomial is `e` itself, exactly, or `(e − 1)/2` (plus `ln 2`) above `√2 − 1`.
#[inline(always)]
fn ln1p_unit(e: f32) -> f32 {
    let big = e > core::f32::consts::SQRT_2 - 1.0;
    let f = if big { (e - 1.0) * 0.5 } else { e };
    let k = if big { 1.0f32 } else { 0.0 };
    ln_reduced!(f, k)
}

/// Softplus `ln(1 + eˣ) = max(x, 0) + ln1p(e^{−|x|})`, finite for every finite `x`.
#[inline(always)]
pub fn softplus(x: f32) -> f32 {
    let m = if x > 0.0 { x } else { 0.0 };
    m + ln1p_unit(exp(-x.abs()))
}

/// The logistic sigmoid `1 / (1 + e⁻ˣ)`, accurate in both tails.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    let e = exp(-x.abs());
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 { r } else { e * r }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between `got` and the float64 reference.
    fn ulps(got: f32, want: f64) -> f64 {
        if got as f64 == want || (got.is_nan() && want.is_nan()) {
            return 0.0;
        }
        let w = want as f32;
        if !w.is_finite() || !got.is_finite() {
            return if got == w { 0.0 } else { f64::INFINITY };
        }
        let ulp = (f32::from_bits(w.abs().to_bits() + 1) - w.abs()).max(f32::from_bits(1)) as f64;
        (got as f64 - want).abs() / ulp
    }

    /// Points spread evenly in the exponent and mantissa over `[lo, hi]`, plus the bounds.
    fn grid(lo: f32, hi: f32, n: usize) -> Vec<f32> {
        (0..=n)
            .map(|i| lo + (hi - lo) * (i as f32 / n as f32))
            .collect()
    }

    fn worst(f: impl Fn(f32) -> f32, g: impl Fn(f64) -> f64, xs: &[f32]) -> (f64, f32) {
        xs.iter()
            .map(|&x| (ulps(f(x), g(x as f64)), x))
            .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a })
    }

    #[test]
    fn exp_within_2_ulp_over_its_range() {
        let xs = grid(-103.0, 88.7, 400_000);
        let (u, at) = worst(exp, f64::exp, &xs);
        assert!(u <= 2.0, "exp off by {u} ulp at {at}");
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NAN).is_nan());
        assert!(
            exp(-88.0) > 0.0 && exp(-88.0) < f32::MIN_POSITIVE,
            "subnormal kept"
        );
    }

    #[test]
    fn ln_within_2_ulp_including_subnormals() {
        let mut xs = grid(1e-3, 10.0, 200_000);
        xs.extend((0..200_000).map(|i| f32::from_bits(1 + i * 10_637)));
        xs.extend([f32::MIN_POSITIVE, 1e-40, f32::MAX, 1.0, 2.0, 0.5]);
        let (u, at) = worst(ln, f64::ln, &xs);
        assert!(u <= 2.0, "ln off by {u} ulp at {at}");
        assert_eq!(ln(0.0), f32::NEG_INFINITY);
        assert_eq!(ln(f32::INFINITY), f32::INFINITY);
        assert!(ln(-1.0).is_nan() && ln(f32::NAN).is_nan());
        assert_eq!(ln(1.0), 0.0);
    }

    #[test]
    fn ln1p_softplus_sigmoid_within_a_few_ulp() {
        let small: Vec<f32> = (-2000..2000).map(|i| i as f32 * 1e-9).collect();
        let (u, at) = worst(ln1p, f64::ln_1p, &small);
        assert!(u <= 3.0, "ln1p off by {u} ulp at {at}");
        let (u, at) = worst(ln1p, f64::ln_1p, &grid(-0.99, 100.0, 100_000));
        assert!(u <= 3.0, "ln1p off by {u} ulp at {at}");

        let xs = grid(-100.0, 100.0, 200_000);
        let sp = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
        let (u, at) = worst(softplus, sp, &xs);
        assert!(u <= 4.0, "softplus off by {u} ulp at {at}");
        // Densely where its tail `ln(1 + e)` switches branch (e = √2 − 1 at |x| ≈ 0.8814),
        // around 0, and where e^{−|x|} turns subnormal.
        for (lo, hi) in [
            (-0.9, -0.86),
            (0.86, 0.9),
            (-1e-3, 1e-3),
            (-3.0, 3.0),
            (-104.0, -86.0),
        ] {
            let (u, at) = worst(softplus, sp, &grid(lo, hi, 200_000));
            assert!(u <= 4.0, "softplus off by {u} ulp at {at}");
        }
        let sg = |x: f64| 1.0 / (1.0 + (-x).exp());
        let (u, at) = worst(sigmoid, sg, &xs);
        assert!(u <= 4.0, "sigmoid off by {u} ulp at {at}");

        assert_eq!(softplus(f32::INFINITY), f32::INFINITY);
        assert_eq!(softplus(f32::NEG_INFINITY), 0.0);
        assert_eq!(softplus(1e30), 1e30);
        assert!(softplus(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan());
        assert_eq!(sigmoid(f32::INFINITY), 1.0);

        let (u, at) = worst(tanh, f64::tanh, &grid(-12.0, 12.0, 200_000));
        assert!(u <= 4.0, "tanh off by {u} ulp at {at}");
        let tiny: Vec<f32> = (-1000..1000).map(|i| i as f32 * 1e-6).collect();
        let (u, at) = worst(tanh, f64::tanh, &tiny);
        assert!(u <= 2.0, "tanh off by {u} ulp at {at}");
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        let (u, at) = worst(expm1, f64::exp_m1, &grid(-20.0, 20.0, 200_000));
        assert!(u <= 4.0, "expm1 off by {u} ulp at {at}");
        let (u, at) = worst(expm1, f64::exp_m1, &tiny);
        assert!(u <= 2.0, "expm1 off by {u} ulp at {at}");
        assert_eq!(sigmoid(f32::NEG_INFINITY), 0.0);
    }
}
