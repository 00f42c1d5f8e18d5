//! The half-normal distribution.

use core::f64::consts::PI;

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Cdf, Distribution, Entropy, Mode, Moments, Param, Rsample, broadcast_params, check_param,
    check_values, lift, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::kl::KlDivergence;
use crate::math::{SQRT_2, expm1, ln_plus, ndtri};
use crate::noise;

/// `½ ln(2/π)`, the constant of the log-density.
const HALF_LN_2_OVER_PI: f64 = -0.225_791_352_644_727_4;

/// `½ ln(π/2) + ½`, the entropy of the standard half-normal.
const ENTROPY_CONST: f64 = 0.725_791_352_644_727_4;

/// `√(2/π)`, the mean of the standard half-normal.
const SQRT_2_OVER_PI: f64 = core::f64::consts::FRAC_2_SQRT_PI / core::f64::consts::SQRT_2;

/// The quantiles below which [`standard_quantile`] uses the series of `erfinv`.
const SERIES_END: f64 = 0.05;

/// A batch of half-normal distributions with scale `σ > 0`: the distribution of `|X|` for
/// `X ~ N(0, σ²)` (scipy's `halfnorm(scale=σ)`, `torch.distributions.HalfNormal`,
/// `tfd.HalfNormal`).
///
/// # Density function
/// ```text
/// ln p(x) = ½ ln(2/π) − ln σ − x² / (2σ²)          x ≥ 0
/// ```
/// (finite at `x = 0`) and `−∞` for `x < 0`. cdf `erf(x/(σ√2))` (0 for `x < 0`); quantile
/// `σ √2 erfinv(q)`, computed for `q < 0.05` from the series
/// `erfinv(q) = (√π/2)(q + (π/12) q³ + (7π²/480) q⁵ + (127π³/40320) q⁷ + …)` and above as
/// `−σ Φ⁻¹((1 − q)/2)` ([`ndtri`](crate::math::ndtri)), which keeps `q` near 1 accurate
/// (`q = 0.99999976` gives `5.1666σ`); mean `σ √(2/π)`; variance `σ² (1 − 2/π)`; mode 0;
/// entropy `½ ln(πσ²/2) + ½`.
///
/// Reparameterized sampling: `x = σ |ε|` with standard normal noise `ε`
/// ([`noise::standard_normal`]).
///
/// # KL divergence
/// ```text
/// KL(p ‖ q) = ln(σ_q/σ_p) + σ_p² / (2σ_q²) − ½
/// ```
/// computed as `½ expm1(2δ) − δ` with `δ = ln σ_p − ln σ_q`, which has no cancellation when
/// `p` and `q` are close.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Cdf, Distribution, HalfNormal, Moments};
///
/// let device = Device::flex();
/// let d = HalfNormal::new(Tensor::<1>::from_floats([1.0, 2.0], &device));
/// let mean: Vec<f32> = d.mean().into_data().iter::<f32>().collect();
/// assert!((mean[1] - 2.0 * (2.0 / std::f32::consts::PI).sqrt()).abs() < 1e-6);
/// let q = Tensor::<1>::from_floats([0.5, 0.5], &device);
/// let median: Vec<f32> = d.icdf(q).into_data().iter::<f32>().collect();
/// assert!((median[0] - 0.674_489_75).abs() < 1e-5);
/// ```
#[derive(Clone, Debug)]
pub struct HalfNormal<const D: usize> {
    scale: Tensor<D>,
}

impl<const D: usize> HalfNormal<D> {
    /// `HalfNormal(scale)` from a tensor (the scale alone cannot be a scalar: the tensor sets
    /// the device and the batch shape; see [`Param`]).
    ///
    /// # Panics
    /// If `scale` is a scalar; the message is [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new(scale: impl Into<Param<D>>) -> Self {
        Self::try_new(scale).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`](crate::Error) instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if `scale` is a scalar.
    pub fn try_new(scale: impl Into<Param<D>>) -> Result<Self> {
        let [scale] = broadcast_params("HalfNormal", [("scale", scale.into())])?;
        Ok(Self { scale })
    }

    /// The standard half-normal (`σ = 1`) with the given shape.
    pub fn standard(shape: [usize; D], device: &Device) -> Self {
        Self {
            scale: Tensor::ones(shape, device),
        }
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The scale `σ`: the standard deviation of the Normal that is folded.
    pub fn scale(&self) -> &Tensor<D> {
        &self.scale
    }
}

/// The standard half-normal quantile `√2 erfinv(q)`: the series of `erfinv` to the `q⁷` term
/// for `q < 0.05` (truncation error below `10⁻¹¹` relative), `−Φ⁻¹((1 − q)/2)` above.
///
/// Each branch is evaluated on `q` clamped to its own range, where it is finite, so the branch
/// that `mask_where` discards contributes neither `NaN` nor an infinite gradient.
fn standard_quantile<const D: usize>(q: Tensor<D>) -> Tensor<D> {
    const C3: f64 = PI / 12.0;
    const C5: f64 = 7.0 * PI * PI / 480.0;
    const C7: f64 = 127.0 * PI * PI * PI / 40320.0;
    // √2 · √π/2 = √(π/2).
    const SERIES_FACTOR: f64 = 1.253_314_137_315_500_3;
    let s = q.clone().clamp_max(SERIES_END);
    let s2 = s.clone().square();
    let series = s * (((s2.clone() * C7 + C5) * s2.clone() + C3) * s2 + 1.0) * SERIES_FACTOR;
    let tail = -ndtri((-q.clone().clamp_min(SERIES_END) + 1.0) * 0.5);
    tail.mask_where(q.lower_elem(SERIES_END), series)
}

impl<const D: usize> Distribution<D> for HalfNormal<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "HalfNormal";

    fn shape(&self) -> Shape {
        self.scale.shape()
    }

    fn device(&self) -> Device {
        self.scale.device()
    }

    /// The density's formula on `x` clamped to `[0, ∞)`, then `−∞` where `x < 0`, so that a
    /// value of `−∞` gives neither a `NaN` value nor a `NaN` gradient.
    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let scale = lift::<D, DV>(&self.scale);
        let [value, scale] = match fused::half_normal_log_prob([value, scale]) {
            Ok(lp) => return lp,
            Err(inputs) => inputs,
        };
        // The value broadcast to the output's shape, so that the mask fits it.
        let x = value + scale.zeros_like();
        let below = x.clone().lower_elem(0.0);
        let z = x.clamp_min(0.0) / scale.clone();
        let lp = z.square() * (-0.5) - scale.log() + HALF_LN_2_OVER_PI;
        lp.mask_fill(below, f32::NEG_INFINITY)
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().rsample_with_shape(sample_shape)
    }

    fn detach(&self) -> Self {
        Self {
            scale: self.scale.clone().detach(),
        }
    }

    fn validate(&self) -> Result<()> {
        check_param("HalfNormal", "scale", "finite and > 0", &self.scale, |s| {
            s.is_finite() && s > 0.0
        })
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("HalfNormal", "[0, ∞)", value, |v| v >= 0.0)
    }
}

impl<const D: usize> Rsample<D> for HalfNormal<D> {
    /// Standard normal noise `ε ~ N(0, 1)`.
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("HalfNormal::noise", sample_shape, &self.shape());
        noise::standard_normal(dims, &self.device())
    }

    /// `σ |ε|`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        lift::<D, DO>(&self.scale) * noise.abs()
    }
}

impl<const D: usize> Entropy<D> for HalfNormal<D> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        ln_plus(self.scale.clone(), ENTROPY_CONST)
    }
}

impl<const D: usize> Moments<D> for HalfNormal<D> {
    fn mean(&self) -> Tensor<D> {
        self.scale.clone() * SQRT_2_OVER_PI
    }
    fn variance(&self) -> Tensor<D> {
        self.scale.clone().square() * (1.0 - 2.0 / PI)
    }
}

impl<const D: usize> Mode<D> for HalfNormal<D> {
    fn mode(&self) -> Tensor<D> {
        self.scale.zeros_like()
    }
}

impl<const D: usize> Cdf<D> for HalfNormal<D> {
    /// `erf(x/(σ√2))` on `x` clamped to `[0, ∞)`, which is 0 below the support.
    fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        (value.clamp_min(0.0) / (lift::<D, DV>(&self.scale) * SQRT_2)).erf()
    }

    fn icdf<const DV: usize>(&self, q: Tensor<DV>) -> Tensor<DV> {
        lift::<D, DV>(&self.scale) * standard_quantile(q)
    }
}

/// The closed form of the type's documentation, as `½ expm1(2δ) − δ`.
impl<const D: usize, const DQ: usize> KlDivergence<HalfNormal<DQ>, D> for HalfNormal<D> {
    fn kl_divergence_keepdim(&self, q: &HalfNormal<DQ>) -> Tensor<D> {
        let delta = self.scale.clone().log() - lift::<DQ, D>(&q.scale).log();
        expm1(delta.clone() * 2.0) * 0.5 - delta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kl::kl_divergence;

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    #[test]
    fn icdf_inverts_cdf_and_keeps_both_ends() {
        let device = Device::flex();
        let sigma = 1.7f64;
        let d = HalfNormal::new(Tensor::<1>::full([6], sigma, &device));
        let qs: [f32; 6] = [1e-3, 0.04, 0.06, 0.5, 0.99, 0.999_999_76];
        // √2 erfinv(q) = Φ⁻¹(½ + q/2) of the float32 q, from Python's
        // `statistics.NormalDist().inv_cdf` in float64.
        let want = [
            0.001_253_314_524_961_828_5,
            0.050_153_582_342_773_28,
            0.075_269_860_414_236_44,
            0.674_489_750_196_081_7,
            2.575_829_633_317_804,
            5.166_578_119_728_753_5,
        ];
        let x = d.icdf(Tensor::<1>::from_floats(qs, &device));
        for (&got, w) in vals(x.clone()).iter().zip(want) {
            assert!(
                (got - sigma * w).abs() <= 1e-3 * sigma * w,
                "{got} vs {}",
                sigma * w
            );
        }
        let back = vals(d.cdf(x));
        for (&q, &p) in qs.iter().zip(&back) {
            let q = q as f64;
            assert!((p - q).abs() <= 1e-6 + 1e-3 * q, "cdf(icdf({q})) = {p}");
        }
    }

    #[test]
    fn kl_is_zero_against_itself_and_matches_quadrature() {
        let device = Device::flex();
        let (sp, sq) = ([0.5f32, 3.0], [2.0f32, 2.5]);
        let p = HalfNormal::new(Tensor::<1>::from_floats(sp, &device));
        let q = HalfNormal::new(Tensor::<1>::from_floats(sq, &device));
        assert!(vals(kl_divergence(&p, &p)).iter().all(|k| k.abs() < 1e-6));
        let got = vals(kl_divergence(&p, &q));
        let ln_density = |x: f64, s: f64| 0.5 * (2.0 / PI).ln() - s.ln() - x * x / (2.0 * s * s);
        for (i, &g) in got.iter().enumerate() {
            let (a, b) = (sp[i] as f64, sq[i] as f64);
            // ∫₀^{14σ_p} p(x) (ln p(x) − ln q(x)) dx by the trapezoid rule, in float64.
            let n = 200_001;
            let h = 14.0 * a / (n - 1) as f64;
            let f = |x: f64| {
                let ln_p = ln_density(x, a);
                ln_p.exp() * (ln_p - ln_density(x, b))
            };
            let want: f64 = (0..n - 1)
                .map(|k| 0.5 * h * (f(h * k as f64) + f(h * (k + 1) as f64)))
                .sum();
            assert!((g - want).abs() < 1e-5 * (1.0 + want), "{g} vs {want}");
        }
    }

    #[test]
    fn log_prob_integrates_to_one_and_is_minus_infinity_below_zero() {
        let device = Device::flex().autodiff();
        let scale = Tensor::<1>::from_floats([0.8], &device).require_grad();
        let d = HalfNormal::new(scale.clone());
        let edge = Tensor::<1>::from_floats([-1e-3, f32::NEG_INFINITY, 0.0], &device);
        let lp_edge = d.log_prob_with_shape::<1, 1>(edge);
        let got = vals(lp_edge.clone());
        assert_eq!(&got[..2], &[f64::NEG_INFINITY; 2]);
        let at_zero = 0.5 * (2.0 / PI).ln() - (0.8f32 as f64).ln();
        assert!((got[2] - at_zero).abs() < 1e-6, "{got:?}");
        let grads = lp_edge.sum().backward();
        assert!(
            vals(scale.grad(&grads).unwrap())
                .iter()
                .all(|g| g.is_finite())
        );
        // Trapezoid rule over [0, 12σ] from the float32 densities.
        let n = 12_001;
        let top = 12.0 * 0.8;
        let xs: Vec<f32> = (0..n)
            .map(|i| (top * i as f64 / (n - 1) as f64) as f32)
            .collect();
        let lp =
            vals(d.log_prob_with_shape::<1, 1>(Tensor::<1>::from_floats(xs.as_slice(), &device)));
        let h = top / (n - 1) as f64;
        let total: f64 = lp
            .windows(2)
            .map(|w| 0.5 * h * (w[0].exp() + w[1].exp()))
            .sum();
        assert!((total - 1.0).abs() < 1e-4, "∫p = {total}");
    }
}
