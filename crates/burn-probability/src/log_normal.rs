//! The log-normal distribution.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Cdf, Distribution, Entropy, Mode, Moments, Param, Rsample, broadcast_params, check_param,
    check_values, lift, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::kl::KlDivergence;
use crate::math::{LN_SQRT_2PI, SQRT_2, expm1, ln_plus, ndtri};
use crate::noise;

/// A batch of log-normal distributions: the distribution of `eˣ` for `X ~ N(μ, σ²)`, with
/// `loc = μ` and `scale = σ > 0` the parameters of that underlying Normal (scipy's
/// `lognorm(s=σ, scale=e^μ)`, `torch.distributions.LogNormal`, `tfd.LogNormal`).
///
/// # Density function
/// ```text
/// ln p(x) = −(ln x − μ)² / (2σ²) − ln σ − ½ ln 2π − ln x          x > 0
/// ```
/// and `−∞` for `x ≤ 0`. cdf `½ (1 + erf(z/√2))` with `z = (ln x − μ)/σ` (0 for `x ≤ 0`);
/// quantile `exp(μ + σ Φ⁻¹(q))` ([`ndtri`](crate::math::ndtri)); mean `exp(μ + σ²/2)`;
/// variance `expm1(σ²) exp(2μ + σ²)`; mode `exp(μ − σ²)`; median `e^μ`; entropy
/// `μ + ½ + ln σ + ½ ln 2π`.
///
/// Reparameterized sampling: `x = exp(μ + σ ε)` with standard normal noise `ε`
/// ([`noise::standard_normal`]).
///
/// # KL divergence
/// The KL divergence is invariant under the bijection `exp` applied to both distributions, so
/// it is the one of the underlying Normals:
/// ```text
/// KL(p ‖ q) = ln(σ_q/σ_p) + (σ_p² + (μ_p − μ_q)²) / (2σ_q²) − ½
/// ```
/// computed as `½ ((μ_p − μ_q)/σ_q)² + ½ expm1(2δ) − δ` with `δ = ln σ_p − ln σ_q`, which has
/// no cancellation when `p` and `q` are close.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Cdf, Distribution, LogNormal, Moments};
///
/// let device = Device::flex();
/// let d = LogNormal::new(Tensor::<1>::from_floats([0.0, 1.0], &device), 0.5);
/// let median: Vec<f32> = d.icdf(Tensor::<1>::full([2], 0.5, &device)).into_data().iter::<f32>().collect();
/// assert!((median[0] - 1.0).abs() < 1e-6 && (median[1] - 1f32.exp()).abs() < 1e-5);
/// let mean: Vec<f32> = d.mean().into_data().iter::<f32>().collect();
/// assert!((mean[0] - 0.125f32.exp()).abs() < 1e-6);
/// ```
#[derive(Clone, Debug)]
pub struct LogNormal<const D: usize> {
    loc: Tensor<D>,
    scale: Tensor<D>,
}

impl<const D: usize> LogNormal<D> {
    /// `LogNormal(loc, scale)` (the mean and standard deviation of `ln X`) from tensors whose
    /// shapes broadcast, or scalars (at least one tensor; see [`Param`]).
    ///
    /// # Panics
    /// If the shapes do not broadcast, or both are scalars; the message is [`Self::try_new`]'s
    /// error.
    #[track_caller]
    pub fn new(loc: impl Into<Param<D>>, scale: impl Into<Param<D>>) -> Self {
        Self::try_new(loc, scale).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`](crate::Error) instead of panicking.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) naming both shapes;
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if both are scalars.
    pub fn try_new(loc: impl Into<Param<D>>, scale: impl Into<Param<D>>) -> Result<Self> {
        let [loc, scale] =
            broadcast_params("LogNormal", [("loc", loc.into()), ("scale", scale.into())])?;
        Ok(Self { loc, scale })
    }

    /// The standard log-normal (`μ = 0`, `σ = 1`) with the given shape.
    pub fn standard(shape: [usize; D], device: &Device) -> Self {
        Self {
            loc: Tensor::zeros(shape, device),
            scale: Tensor::ones(shape, device),
        }
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The location `μ`: the mean of `ln X`.
    pub fn loc(&self) -> &Tensor<D> {
        &self.loc
    }

    /// The scale `σ`: the standard deviation of `ln X`.
    pub fn scale(&self) -> &Tensor<D> {
        &self.scale
    }
}

impl<const D: usize> Distribution<D> for LogNormal<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "LogNormal";

    fn shape(&self) -> Shape {
        self.loc.shape()
    }

    fn device(&self) -> Device {
        self.loc.device()
    }

    /// The density's formula at `x > 0`; `x ≤ 0` is replaced by 1 before the logarithm and its
    /// result by `−∞`, so that neither the value nor the gradient is `NaN` there.
    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let (loc, scale) = (lift::<D, DV>(&self.loc), lift::<D, DV>(&self.scale));
        let [value, loc, scale] = match fused::log_normal_log_prob([value, loc, scale]) {
            Ok(lp) => return lp,
            Err(inputs) => inputs,
        };
        // The value broadcast to the output's shape, so that the mask fits it.
        let x = value + loc.zeros_like();
        let outside = x.clone().lower_equal_elem(0.0);
        let log_x = x.mask_fill(outside.clone(), 1.0).log();
        let z = (log_x.clone() - loc) / scale.clone();
        let lp = z.square() * (-0.5) - scale.log() - log_x - LN_SQRT_2PI;
        lp.mask_fill(outside, f32::NEG_INFINITY)
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().rsample_with_shape(sample_shape)
    }

    fn detach(&self) -> Self {
        Self {
            loc: self.loc.clone().detach(),
            scale: self.scale.clone().detach(),
        }
    }

    fn validate(&self) -> Result<()> {
        check_param("LogNormal", "loc", "finite", &self.loc, f64::is_finite)?;
        check_param("LogNormal", "scale", "finite and > 0", &self.scale, |s| {
            s.is_finite() && s > 0.0
        })
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("LogNormal", "(0, ∞)", value, |v| v > 0.0)
    }
}

impl<const D: usize> Rsample<D> for LogNormal<D> {
    /// Standard normal noise `ε ~ N(0, 1)`.
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("LogNormal::noise", sample_shape, &self.shape());
        noise::standard_normal(dims, &self.device())
    }

    /// `exp(μ + σ ε)`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        let (loc, scale) = (lift::<D, DO>(&self.loc), lift::<D, DO>(&self.scale));
        match fused::log_normal_rsample([loc, scale, noise]) {
            Ok(x) => x,
            Err([loc, scale, noise]) => (loc + scale * noise).exp(),
        }
    }
}

impl<const D: usize> Entropy<D> for LogNormal<D> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        self.loc.clone() + ln_plus(self.scale.clone(), 0.5 + LN_SQRT_2PI)
    }
}

impl<const D: usize> Moments<D> for LogNormal<D> {
    fn mean(&self) -> Tensor<D> {
        (self.loc.clone() + self.scale.clone().square() * 0.5).exp()
    }
    /// `expm1(σ²) exp(2μ + σ²)`: accurate for small `σ`, where `exp(σ²) − 1` loses its digits.
    fn variance(&self) -> Tensor<D> {
        let s2 = self.scale.clone().square();
        expm1(s2.clone()) * (self.loc.clone() * 2.0 + s2).exp()
    }
}

impl<const D: usize> Mode<D> for LogNormal<D> {
    fn mode(&self) -> Tensor<D> {
        (self.loc.clone() - self.scale.clone().square()).exp()
    }
}

impl<const D: usize> Cdf<D> for LogNormal<D> {
    /// `½ (1 + erf(z/√2))`, `z = (ln x − μ)/σ`, and 0 for `x ≤ 0` (where `x` is replaced by 1
    /// before the logarithm).
    fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let (loc, scale) = (lift::<D, DV>(&self.loc), lift::<D, DV>(&self.scale));
        let x = value + loc.zeros_like();
        let outside = x.clone().lower_equal_elem(0.0);
        let z = (x.mask_fill(outside.clone(), 1.0).log() - loc) / (scale * SQRT_2);
        ((z.erf() + 1.0) * 0.5).mask_fill(outside, 0.0)
    }

    fn icdf<const DV: usize>(&self, q: Tensor<DV>) -> Tensor<DV> {
        (lift::<D, DV>(&self.loc) + lift::<D, DV>(&self.scale) * ndtri(q)).exp()
    }
}

/// The Normal KL of the logarithms, in the form of the type's documentation.
impl<const D: usize, const DQ: usize> KlDivergence<LogNormal<DQ>, D> for LogNormal<D> {
    fn kl_divergence_keepdim(&self, q: &LogNormal<DQ>) -> Tensor<D> {
        let (mp, sp) = (self.loc.clone(), self.scale.clone());
        let (mq, sq) = (lift::<DQ, D>(&q.loc), lift::<DQ, D>(&q.scale));
        let delta = sp.log() - sq.clone().log();
        let z = (mp - mq) / sq;
        z.square() * 0.5 + expm1(delta.clone() * 2.0) * 0.5 - delta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kl::kl_divergence;

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    /// `ln p(x)` of `LogNormal(μ, σ)` in float64.
    fn ln_density(x: f64, mu: f64, sigma: f64) -> f64 {
        let z = (x.ln() - mu) / sigma;
        -0.5 * z * z - sigma.ln() - 0.5 * (2.0 * core::f64::consts::PI).ln() - x.ln()
    }

    #[test]
    fn icdf_inverts_cdf() {
        let device = Device::flex();
        let d = LogNormal::new(Tensor::<1>::from_floats([0.3, -2.0, 1.0], &device), 0.8);
        let qs = [0.01, 0.5, 0.99];
        let x = d.icdf(Tensor::<1>::from_floats(qs, &device));
        let median = vals(x.clone())[1];
        assert!(((-2.0f64).exp() - median).abs() < 1e-6, "{median}");
        let back = vals(d.cdf(x));
        for (b, want) in back.iter().zip(qs) {
            assert!((b - want).abs() < 1e-5, "{back:?}");
        }
    }

    #[test]
    fn kl_is_zero_against_itself_and_matches_quadrature() {
        let device = Device::flex();
        let (mp, sp, mq, sq) = ([0.3f32, -1.0], [0.7f32, 2.0], [-0.5f32, 0.0], [1.2f32, 1.0]);
        let p = LogNormal::new(
            Tensor::<1>::from_floats(mp, &device),
            Tensor::<1>::from_floats(sp, &device),
        );
        let q = LogNormal::new(
            Tensor::<1>::from_floats(mq, &device),
            Tensor::<1>::from_floats(sq, &device),
        );
        assert!(vals(kl_divergence(&p, &p)).iter().all(|k| k.abs() < 1e-6));
        let got = vals(kl_divergence(&p, &q));
        for (i, &g) in got.iter().enumerate() {
            let (mp, sp, mq, sq) = (mp[i] as f64, sp[i] as f64, mq[i] as f64, sq[i] as f64);
            // ∫ p(x) ln(p(x)/q(x)) dx with x = eʸ, dx = eʸ dy, y ∈ μ_p ± 12σ_p.
            let n = 200_001;
            let (a, b) = (mp - 12.0 * sp, mp + 12.0 * sp);
            let h = (b - a) / (n - 1) as f64;
            let f = |y: f64| {
                let x = y.exp();
                let lp = ln_density(x, mp, sp);
                lp.exp() * x * (lp - ln_density(x, mq, sq))
            };
            let want: f64 = (0..n - 1)
                .map(|k| 0.5 * h * (f(a + h * k as f64) + f(a + h * (k + 1) as f64)))
                .sum();
            assert!((g - want).abs() < 1e-5 * (1.0 + want), "{g} vs {want}");
        }
    }

    #[test]
    fn log_prob_integrates_to_one() {
        // Trapezoid rule over [0, e^{μ + 9σ}] from the float32 densities; x = 0 scores −∞.
        let device = Device::flex();
        let (mu, sigma) = (0.2f64, 0.5f64);
        let (n, top) = (40_001, (mu + 9.0 * sigma).exp());
        let xs: Vec<f32> = (0..n)
            .map(|i| (top * i as f64 / (n - 1) as f64) as f32)
            .collect();
        let d = LogNormal::new(Tensor::<1>::full([1], mu, &device), sigma);
        let lp =
            vals(d.log_prob_with_shape::<1, 1>(Tensor::<1>::from_floats(xs.as_slice(), &device)));
        assert_eq!(lp[0], f64::NEG_INFINITY);
        let h = top / (n - 1) as f64;
        let total: f64 = lp
            .windows(2)
            .map(|w| 0.5 * h * (w[0].exp() + w[1].exp()))
            .sum();
        assert!((total - 1.0).abs() < 1e-4, "∫p = {total}");
    }

    #[test]
    fn nonpositive_values_and_small_scales_stay_exact() {
        let device = Device::flex().autodiff();
        let loc = Tensor::<1>::from_floats([0.5; 3], &device).require_grad();
        let scale = Tensor::<1>::from_floats([1e-3; 3], &device).require_grad();
        let d = LogNormal::new(loc.clone(), scale.clone());
        let x = Tensor::<1>::from_floats([-1.0, 0.0, 1.5], &device);
        let lp = d.log_prob(x.clone());
        let cdf = d.cdf(x);
        let got = vals(lp.clone());
        assert_eq!(&got[..2], &[f64::NEG_INFINITY; 2]);
        assert_eq!(&vals(cdf.clone())[..2], &[0.0, 0.0]);
        let grads = (lp.sum() + cdf.sum()).backward();
        for g in [loc.grad(&grads).unwrap(), scale.grad(&grads).unwrap()] {
            assert!(vals(g).iter().all(|v| v.is_finite()));
        }
        // Variance expm1(σ²) e^{2μ + σ²} at σ = 10⁻³, where exp(σ²) − 1 keeps about one digit.
        let s2 = 1e-3f32 as f64 * 1e-3f32 as f64;
        let want = s2.exp_m1() * (1.0 + s2).exp();
        let var = vals(d.variance())[0];
        assert!((var - want).abs() < 1e-3 * want, "{var} vs {want}");
    }
}
