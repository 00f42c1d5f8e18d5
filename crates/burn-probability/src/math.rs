//! Numerically careful tensor functions that burn 0.22 lacks or computes unstably.
//!
//! Every function here works on any backend and any rank, is differentiable, and keeps its
//! value *and* its gradient finite wherever the mathematical function is finite. The branch
//! that a `mask_where` discards is always fed an input on which it is finite, so that its
//! gradient (multiplied by zero) never becomes `NaN`.

use crate::fused;
use burn::tensor::Tensor;

/// `ln x + c`: the entropies of location-scale families, `ln σ + const`.
pub(crate) fn ln_plus<const D: usize>(x: Tensor<D>, c: f64) -> Tensor<D> {
    fused::ln_plus(x, c).unwrap_or_else(|x| x.log() + c)
}

/// `ln(2π) / 2`, the normalizing constant of the standard normal log-density.
pub const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// `ln(2π)`.
pub const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// `√2`.
pub const SQRT_2: f64 = core::f64::consts::SQRT_2;

/// Softplus, `ln(1 + eˣ)`, without overflow and accurate in both tails.
///
/// Computed as `m + ln1p(exp(x − 2m))` with `m = max(x, 0)`, which is `max(x, 0) + ln1p(e^{-|x|})`
/// written so that the gradient is exactly `σ(x)` everywhere, including `x = 0` (where an `abs`
/// would give a zero subgradient). The exponent is never positive, so nothing overflows.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::math::softplus;
/// let x = Tensor::<1>::from_floats([-100.0, 0.0, 100.0], &Device::flex());
/// let y: Vec<f32> = softplus(x).into_data().iter::<f32>().collect();
/// assert!((y[0] - 3.7e-44).abs() < 1e-40 && (y[1] - 2f32.ln()).abs() < 1e-6 && y[2] == 100.0);
/// ```
pub fn softplus<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let x = match fused::softplus(x) {
        Ok(fused) => return fused,
        Err(x) => x,
    };
    let m = x.clone().clamp_min(0.0);
    let e = (x - m.clone() * 2.0).exp();
    m + e.log1p()
}

/// `ln σ(x) = −softplus(−x)`, stable for any `x`.
pub fn log_sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    -softplus(-x)
}

/// The logistic sigmoid `σ(x) = 1 / (1 + e⁻ˣ)`.
pub fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    fused::sigmoid(x).unwrap_or_else(burn::tensor::activation::sigmoid)
}

/// The logit `ln p − ln(1 − p)`, the inverse of [`sigmoid`], accurate near 0 and near 1.
pub fn logit<const D: usize>(p: Tensor<D>) -> Tensor<D> {
    fused::logit(p).unwrap_or_else(|p| p.clone().log() - (-p).log1p())
}

/// `eˣ − 1`, accurate for small `|x|` (where `exp(x) − 1` loses all digits).
///
/// For `|x| < 0.1` a degree-6 Taylor polynomial (relative error below 2e-8), else `exp(x) − 1`
/// (relative error below 1.2e-6 there, in float32).
pub fn expm1<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const T: f32 = 0.1;
    let small = x.clone().abs().lower_elem(T);
    // Polynomial on an input clamped to the small range, so the unused branch stays tame.
    let xs = x.clone().clamp(-T, T);
    let poly = xs.clone()
        * (((((xs.clone() * (1.0 / 720.0) + 1.0 / 120.0) * xs.clone() + 1.0 / 24.0) * xs.clone()
            + 1.0 / 6.0)
            * xs.clone()
            + 0.5)
            * xs
            + 1.0);
    let large = x.exp() - 1.0;
    large.mask_where(small, poly)
}

/// The standard normal quantile function `Φ⁻¹(q) = √2 · erfinv(2q − 1)` for `q ∈ [0, 1]`.
///
/// Two approximations, each used where it is accurate in float32:
/// * for `0.02425 ≤ q ≤ 0.97575`, M. Giles' single-precision `erfinv` ("Approximating the
///   erfinv function", GPU Computing Gems, 2011), with `w = −ln((1 − x)(1 + x))` computed
///   from `q` as `−ln(4q) − ln1p(−q)`;
/// * in the tails, P. J. Acklam's rational function of `√(−2 ln q)` (resp. `√(−2 ln(1 − q))`
///   with `ln1p`), relative error below 1.2e-9 down to the smallest normal float32
///   (`Φ⁻¹(2·10⁻³⁸) ≈ −12.91`). Forming `2q − 1` for an `erfinv` there would lose every digit
///   of a small `q`.
///
/// Returns `−∞` at `q = 0`, `+∞` at `q = 1`, `NaN` outside `[0, 1]`. Each branch is evaluated
/// on an input clamped to its own range, so gradients stay finite.
pub fn ndtri<const D: usize>(q: Tensor<D>) -> Tensor<D> {
    const P_LOW: f64 = 0.02425;
    const GILES: [f64; 9] = [
        2.810_226_36e-08,
        3.432_739_39e-07,
        -3.523_387_7e-06,
        -4.391_506_54e-06,
        0.000_218_580_87,
        -0.001_253_725_03,
        -0.004_177_681_64,
        0.246_640_727,
        1.501_409_41,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const DD: [f64; 5] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
        1.0,
    ];
    let (lo, hi) = (P_LOW as f32, (1.0 - P_LOW) as f32);
    let central = {
        let qc = q.clone().clamp(lo, hi);
        let w = -((qc.clone() * 4.0).log() + (-qc.clone()).log1p()) - 2.5;
        horner(w, &GILES) * (qc * 2.0 - 1.0) * SQRT_2
    };
    let tail = |log_p: Tensor<D>| {
        let t = (log_p * -2.0).sqrt();
        horner(t.clone(), &C) / horner(t, &DD)
    };
    // Lower tail on q clamped to [tiny, P_LOW], upper on 1 - q likewise: finite everywhere.
    let lower = tail(q.clone().clamp(f32::MIN_POSITIVE, lo).log());
    let upper = -tail((-q.clone().clamp(hi, 1.0 - f32::EPSILON / 2.0)).log1p());
    let out = central
        .mask_where(q.clone().lower_elem(lo), lower)
        .mask_where(q.clone().greater_elem(hi), upper);
    let out = out.mask_fill(q.clone().equal_elem(0.0), f32::NEG_INFINITY);
    let out = out.mask_fill(q.clone().equal_elem(1.0), f32::INFINITY);
    out.mask_fill(
        q.clone().lower_elem(0.0).bool_or(q.greater_elem(1.0)),
        f32::NAN,
    )
}

/// Evaluates the polynomial with coefficients `coefs` (highest degree first) at `x`.
fn horner<const D: usize>(x: Tensor<D>, coefs: &[f64]) -> Tensor<D> {
    let mut acc = x.zeros_like() + coefs[0];
    for &c in &coefs[1..] {
        acc = acc * x.clone() + c;
    }
    acc
}

/// `ln Σᵢ exp(xᵢ)` along `dim`, keeping that dimension with size 1.
///
/// The maximum is subtracted first (and detached: it cancels exactly in the value, so it needs
/// no gradient), so nothing overflows; an all `−∞` slice gives `−∞`, not `NaN`. Terms more than
/// 80 nats below the maximum (relative weight below `e⁻⁸⁰ ≈ 1.8·10⁻³⁵`) are flushed to zero
/// weight, so that neither the forward nor the backward pass meets subnormal floats, which are
/// many times slower on CPUs (importance weights of IWAE produce them in numbers).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::math::logsumexp;
/// let x = Tensor::<2>::from_floats([[1000.0, 1000.0]], &Device::flex());
/// let y: Vec<f32> = logsumexp(x, 1).into_data().iter::<f32>().collect();
/// assert!((y[0] - (1000.0 + 2f32.ln())).abs() < 1e-3);
/// ```
pub fn logsumexp<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    const FLUSH: f32 = -80.0;
    let max = x.clone().detach().max_dim(dim);
    // Replace a non-finite max (an all -inf slice) by 0 so that x - max stays finite-or--inf.
    let finite = max.clone().is_finite();
    let all_neg_inf = finite.clone().bool_not();
    let max = max.clone().zeros_like().mask_where(finite, max);
    let shifted = x - max.clone();
    // Flush: below FLUSH the weight is exactly zero, and so is its gradient.
    let negligible = shifted.clone().lower_elem(FLUSH);
    let e = shifted.clamp_min(FLUSH).exp().mask_fill(negligible, 0.0);
    let out = e.sum_dim(dim).log() + max;
    out.mask_fill(all_neg_inf, f32::NEG_INFINITY)
}

/// `ln(1 − eˣ)` for `x ≤ 0`, accurate for `x` near 0 and very negative (Mächler 2012).
pub fn log1mexp<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const LN2: f32 = core::f32::consts::LN_2;
    let near_zero = x.clone().greater_elem(-LN2);
    let a = (-expm1(x.clone().clamp_min(-LN2))).log();
    let b = (-(x.clamp_max(-LN2).exp())).log1p();
    b.mask_where(near_zero, a)
}

/// `ln softmax(x)` along `dim`: `x − logsumexp(x, dim)`, finite for any finite `x` (a
/// probability that underflows to 0 keeps its finite logarithm), as the categorical
/// families' normalized logits.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::math::log_softmax;
/// let x = Tensor::<2>::from_floats([[100.0, -100.0]], &Device::flex());
/// let y: Vec<f32> = log_softmax(x, 1).into_data().iter::<f32>().collect();
/// assert!(y[0].abs() < 1e-6 && (y[1] + 200.0).abs() < 1e-4);
/// ```
pub fn log_softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    burn::tensor::activation::log_softmax(x, dim)
}

/// `logsumexp(x, dim)` shifted by the (detached) maximum, without [`logsumexp`]'s handling of
/// all-`−∞` slices and of negligible weights: four passes instead of ten, for the categorical
/// families, whose slices always hold a finite entry.
pub(crate) fn logsumexp_shifted<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    let max = x.clone().detach().max_dim(dim);
    (x - max.clone()).exp().sum_dim(dim).log() + max
}

/// Euler–Mascheroni constant `γ = −Γ′(1)`, the mean of the standard Gumbel distribution.
pub const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// `ln Γ(x)` for `x > 0`, element-wise and differentiable (its gradient is the digamma
/// function, through the operations below).
///
/// For `x ≥ 8` Stirling's series to the `x⁻⁵` term,
/// `(x − ½) ln x − x + ½ ln 2π + 1/(12x) − 1/(360x³) + 1/(1260x⁵)` (truncation error below
/// `1/(1680 x⁷) < 3·10⁻⁹`); below 8 the recurrence `ln Γ(x) = ln Γ(x + 8) − ln(x (x+1) ⋯ (x+7))`
/// moves the argument into that range. In float32 the absolute error is below `2·10⁻⁶` on
/// `(10⁻³, 8)` and the relative error below `10⁻⁶` beyond. `x ≤ 0` gives `NaN` or `±∞`.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::math::lgamma;
/// let x = Tensor::<1>::from_floats([0.5, 1.0, 10.0], &Device::flex());
/// let y: Vec<f32> = lgamma(x).into_data().iter::<f32>().collect();
/// assert!((y[0] - 0.572_364_9).abs() < 1e-5 && y[1].abs() < 1e-5);
/// assert!((y[2] - 12.801_827).abs() < 1e-4);   // ln 9!
/// ```
pub fn lgamma<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const SHIFT: f32 = 8.0;
    let small = x.clone().lower_elem(SHIFT);
    // The recurrence's product, fed only arguments below the shift so that it stays finite.
    let xs = x.clone().clamp_max(SHIFT);
    let mut prod = xs.clone();
    for i in 1..8 {
        prod = prod * (xs.clone() + i as f64);
    }
    let z = x.clone().mask_where(small.clone(), xs + SHIFT as f64);
    let inv = z.clone().recip();
    let inv2 = inv.clone().square();
    // 1/(12z) − 1/(360z³) + 1/(1260z⁵) = (1/(12z)) (1 − 1/(30z²) + 1/(105z⁴)).
    let series = inv / 12.0 * (inv2.clone() * (inv2 / 105.0 - 1.0 / 30.0) + 1.0);
    let stirling = (z.clone() - 0.5) * z.clone().log() - z + LN_SQRT_2PI + series;
    let correction = prod.log().mask_where(small.bool_not(), x.zeros_like());
    stirling - correction
}

/// `ln Γ(n)` of a positive integer on the host: `ln (n − 1)!`.
pub(crate) fn ln_factorial_minus_one(n: usize) -> f64 {
    (2..n).map(|i| (i as f64).ln()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn dev() -> Device {
        Device::flex()
    }

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
        (a - b).abs() <= abs + rel * b.abs()
    }

    #[test]
    fn softplus_matches_f64_everywhere() {
        let xs: Vec<f32> = vec![
            -200.0, -100.0, -30.0, -10.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 10.0, 30.0, 100.0, 200.0,
        ];
        let got = vals(softplus(Tensor::<1>::from_floats(xs.as_slice(), &dev())));
        for (x, g) in xs.iter().zip(got) {
            let x = *x as f64;
            let want = x.max(0.0) + (-x.abs()).exp().ln_1p();
            assert!(
                close(g, want, 1e-6, 1e-42),
                "softplus({x}) = {g}, want {want}"
            );
        }
    }

    #[test]
    fn softplus_gradient_is_sigmoid_and_finite() {
        let device = dev().autodiff();
        let xs = [-1000.0f32, -50.0, 0.0, 3.0, 1000.0];
        let x = Tensor::<1>::from_floats(xs, &device).require_grad();
        let grads = softplus(x.clone()).sum().backward();
        let g = vals(x.grad(&grads).unwrap());
        for (x, g) in xs.iter().zip(g) {
            let want = 1.0 / (1.0 + (-(*x as f64)).exp());
            assert!(
                g.is_finite() && close(g, want, 1e-6, 1e-30),
                "d softplus({x}) = {g}, want {want}"
            );
        }
    }

    #[test]
    fn expm1_is_accurate_near_zero_and_far() {
        let xs: Vec<f32> = vec![
            -20.0, -1.0, -0.1, -0.09, -1e-5, -1e-12, 0.0, 1e-12, 1e-5, 0.05, 0.0999, 0.1, 0.5, 10.0,
        ];
        let got = vals(expm1(Tensor::<1>::from_floats(xs.as_slice(), &dev())));
        for (x, g) in xs.iter().zip(got) {
            let want = (*x as f64).exp_m1();
            assert!(close(g, want, 2e-6, 0.0), "expm1({x}) = {g}, want {want}");
        }
    }

    #[test]
    fn ndtri_matches_reference_quantiles() {
        // Reference values of the standard normal quantile (scipy.special.ndtri, float64).
        let cases = [
            // Reference: mpmath, √2·erfinv(2q − 1) at the float32-rounded q, 30 digits
            // (80 digits and root finding on erfc for the far tail).
            (2e-38, -12.909_090_035_376_204),
            (1e-30, -11.464_024_688_169_063),
            (1e-10, -6.361_340_900_353_645),
            (1e-6, -4.753_424_309_333_123),
            (0.001, -3.090_232_292_061_434),
            (0.025, -1.959_963_978_166_051_6),
            (0.3, -0.524_400_478_422_213_7),
            (0.5, 0.0),
            (0.9, 1.281_551_429_692_278_8),
            (0.999, 3.090_236_129_849_105),
            (1.0 - 1.0 / 1_048_576.0, 4.763_001_034_267_814),
        ];
        let qs: Vec<f32> = cases.iter().map(|c| c.0 as f32).collect();
        let got = vals(ndtri(Tensor::<1>::from_floats(qs.as_slice(), &dev())));
        for ((q, want), g) in cases.iter().zip(got) {
            assert!(close(g, *want, 2e-6, 2e-6), "ndtri({q}) = {g}, want {want}");
        }
    }

    #[test]
    fn ndtri_gradient_is_finite_at_the_center_and_in_the_tails() {
        let device = dev().autodiff();
        let q =
            Tensor::<1>::from_floats([1e-20f32, 0.2, 0.5, 0.8, 0.999_999], &device).require_grad();
        let grads = ndtri(q.clone()).sum().backward();
        for g in vals(q.grad(&grads).unwrap()) {
            assert!(g.is_finite() && g > 0.0, "gradient {g}");
        }
    }

    #[test]
    fn logsumexp_is_stable_and_handles_all_minus_infinity() {
        let x = Tensor::<2>::from_floats(
            [
                [1000.0, 1000.0, -1000.0],
                [-1.0, 0.0, 1.0],
                [f32::NEG_INFINITY; 3],
            ],
            &dev(),
        );
        let got = vals(logsumexp(x, 1));
        assert!(close(got[0], 1000.0 + 2f64.ln(), 1e-6, 0.0));
        let want = ((-1f64).exp() + 1.0 + 1f64.exp()).ln();
        assert!(close(got[1], want, 1e-6, 0.0));
        assert_eq!(got[2], f64::NEG_INFINITY);
    }

    #[test]
    fn logsumexp_gradient_is_softmax_and_flushes_negligible_weights() {
        let device = dev().autodiff();
        let x = Tensor::<2>::from_floats([[0.0, -1.0, -200.0, f32::NEG_INFINITY]], &device)
            .require_grad();
        let grads = logsumexp(x.clone(), 1).sum().backward();
        let g = vals(x.grad(&grads).unwrap());
        let z = 1.0 + (-1f64).exp();
        assert!(
            (g[0] - 1.0 / z).abs() < 1e-6 && (g[1] - (-1f64).exp() / z).abs() < 1e-6,
            "{g:?}"
        );
        assert_eq!(&g[2..], &[0.0, 0.0]);
    }

    #[test]
    fn log1mexp_is_accurate_on_both_sides() {
        let xs: Vec<f32> = vec![-1e-6, -0.1, -0.5, -1.0, -5.0, -50.0];
        let got = vals(log1mexp(Tensor::<1>::from_floats(xs.as_slice(), &dev())));
        for (x, g) in xs.iter().zip(got) {
            let want = (-(*x as f64).exp_m1()).ln();
            let want = if *x < -0.7 {
                (-(*x as f64).exp()).ln_1p()
            } else {
                want
            };
            assert!(
                close(g, want, 2e-6, 1e-30),
                "log1mexp({x}) = {g}, want {want}"
            );
        }
    }

    #[test]
    fn logit_inverts_sigmoid_near_the_boundaries() {
        let ps: Vec<f32> = vec![1e-30, 1e-6, 0.5, 1.0 - 1.0 / 1_048_576.0];
        let got = vals(logit(Tensor::<1>::from_floats(ps.as_slice(), &dev())));
        for (p, g) in ps.iter().zip(got) {
            let p = *p as f64;
            let want = p.ln() - (-p).ln_1p();
            assert!(close(g, want, 1e-6, 1e-6), "logit({p}) = {g}, want {want}");
        }
    }

    #[test]
    fn lgamma_matches_reference_values_and_its_gradient_is_digamma() {
        // ln Γ from CPython's math.lgamma (double precision), digamma from its series values.
        let xs = [
            0.001, 0.05, 0.5, 1.0, 1.5, 2.0, 3.7, 7.99, 8.0, 25.0, 200.0, 1e4,
        ];
        let want = [
            6.907178885383854,
            2.968879201051731,
            0.5723649429247004,
            0.0,
            -0.12078223763524543,
            0.0,
            1.4280723266653883,
            8.505011606088482,
            8.525161361065415,
            54.78472939811232,
            857.9336698258575,
            82099.71749644238,
        ];
        let x = Tensor::<1>::from_floats(xs.map(|v| v as f32), &dev());
        for (i, (g, w)) in vals(lgamma(x)).iter().zip(want).enumerate() {
            assert!(
                close(*g, w, 1e-6, 2e-6),
                "lgamma({}) = {g}, want {w}",
                xs[i]
            );
        }
        let device = dev().autodiff();
        let x = Tensor::<1>::from_floats([0.5, 1.0, 10.0], &device).require_grad();
        let grads = lgamma(x.clone()).sum().backward();
        let psi = [-1.9635100260214235, -0.5772156649015329, 2.251752589066721];
        for (g, w) in vals(x.grad(&grads).unwrap()).iter().zip(psi) {
            assert!(close(*g, w, 1e-5, 1e-5), "digamma: {g} vs {w}");
        }
    }
}
