//! The Gumbel (maximum extreme value) distribution.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Cdf, Distribution, Entropy, Mode, Moments, Param, Rsample, broadcast_params, check_param,
    check_values, lift, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::kl::KlDivergence;
use crate::math::{EULER_GAMMA, lgamma, ln_unit};
use crate::noise;

/// A batch of Gumbel distributions with location `μ` and scale `β > 0`: the distribution of
/// the maximum of many draws, and the noise of the Gumbel-max trick (scipy's `gumbel_r`,
/// `torch.distributions.Gumbel`, `tfd.Gumbel`).
///
/// # Density function
/// ```text
/// ln p(x) = −(z + e^{−z}) − ln β,          z = (x − μ) / β
/// ```
/// cdf `exp(−e^{−z})`; quantile `μ − β ln(−ln q)`; mean `μ + γβ` (γ the Euler–Mascheroni
/// constant); mode `μ`; variance `π²β²/6`; entropy `ln β + γ + 1`.
///
/// Reparameterized sampling: `x = μ + β g` with standard Gumbel noise `g = −ln(−ln u)`,
/// `u` uniform on (0, 1) ([`noise::standard_gumbel`]).
///
/// Far below the location, where `e^{−z}` exceeds float32's range (`z < −88`), the
/// log-density is `−∞`, as its true value (below `−10³⁸`) is not representable.
///
/// # KL divergence
/// ```text
/// KL(p ‖ q) = ln(β_q/β_p) + γ (β_p/β_q − 1) + (μ_p − μ_q)/β_q
///             + exp((μ_q − μ_p)/β_q + ln Γ(1 + β_p/β_q)) − 1
/// ```
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Cdf, Distribution, Gumbel, Moments};
///
/// let device = Device::flex();
/// let g = Gumbel::new(Tensor::<1>::zeros([3], &device), 1.0);
/// let mean: Vec<f32> = g.mean().into_data().iter::<f32>().collect();
/// assert!((mean[0] - 0.577_215_7).abs() < 1e-6);
/// let median: Vec<f32> = g.icdf(Tensor::<1>::full([3], 0.5, &device)).into_data().iter::<f32>().collect();
/// assert!((median[0] + 0.5f32.ln().neg().ln()).abs() < 1e-6);
/// # use core::ops::Neg;
/// ```
#[derive(Clone, Debug)]
pub struct Gumbel<const D: usize> {
    loc: Tensor<D>,
    scale: Tensor<D>,
}

impl<const D: usize> Gumbel<D> {
    /// `Gumbel(loc, scale)` from tensors whose shapes broadcast, or scalars (at least one
    /// tensor; see [`Param`]).
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
            broadcast_params("Gumbel", [("loc", loc.into()), ("scale", scale.into())])?;
        Ok(Self { loc, scale })
    }

    /// The standard Gumbel (`μ = 0`, `β = 1`) with the given shape.
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

    /// The location `μ`.
    pub fn loc(&self) -> &Tensor<D> {
        &self.loc
    }

    /// The scale `β`.
    pub fn scale(&self) -> &Tensor<D> {
        &self.scale
    }
}

impl<const D: usize> Distribution<D> for Gumbel<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "Gumbel";

    fn shape(&self) -> Shape {
        self.loc.shape()
    }

    fn device(&self) -> Device {
        self.loc.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let inputs = [value, lift::<D, DV>(&self.loc), lift::<D, DV>(&self.scale)];
        match fused::gumbel_log_prob(inputs) {
            Ok(fused) => fused,
            Err([value, loc, scale]) => {
                let z = (value - loc) / scale.clone();
                -(z.clone() + (-z).exp()) - scale.log()
            }
        }
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
        check_param("Gumbel", "loc", "finite", &self.loc, f64::is_finite)?;
        check_param("Gumbel", "scale", "finite and > 0", &self.scale, |s| {
            s.is_finite() && s > 0.0
        })
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("Gumbel", "the real line (not NaN)", value, |v| !v.is_nan())
    }
}

impl<const D: usize> Rsample<D> for Gumbel<D> {
    /// Standard Gumbel noise `g = −ln(−ln u)` ([`noise::standard_gumbel`]).
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("Gumbel::noise", sample_shape, &self.shape());
        noise::standard_gumbel(dims, &self.device())
    }

    /// `μ + β g`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        lift::<D, DO>(&self.loc) + lift::<D, DO>(&self.scale) * noise
    }
}

impl<const D: usize> Entropy<D> for Gumbel<D> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        self.scale.clone().log() + (EULER_GAMMA + 1.0)
    }
}

impl<const D: usize> Moments<D> for Gumbel<D> {
    fn mean(&self) -> Tensor<D> {
        self.loc.clone() + self.scale.clone() * EULER_GAMMA
    }
    fn variance(&self) -> Tensor<D> {
        self.scale.clone().square() * (core::f64::consts::PI * core::f64::consts::PI / 6.0)
    }
}

impl<const D: usize> Mode<D> for Gumbel<D> {
    fn mode(&self) -> Tensor<D> {
        self.loc.clone()
    }
}

impl<const D: usize> Cdf<D> for Gumbel<D> {
    fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let z = (value - lift::<D, DV>(&self.loc)) / lift::<D, DV>(&self.scale);
        (-(-z).exp()).exp()
    }

    fn icdf<const DV: usize>(&self, q: Tensor<DV>) -> Tensor<DV> {
        lift::<D, DV>(&self.loc) - lift::<D, DV>(&self.scale) * (-ln_unit(q)).log()
    }
}

/// The closed form of the type's documentation; `exp` takes the sum of the location term and
/// `ln Γ`, so that neither overflows on its own.
impl<const D: usize, const DQ: usize> KlDivergence<Gumbel<DQ>, D> for Gumbel<D> {
    fn kl_divergence_keepdim(&self, q: &Gumbel<DQ>) -> Tensor<D> {
        let (mp, bp) = (self.loc.clone(), self.scale.clone());
        let (mq, bq) = (lift::<DQ, D>(&q.loc), lift::<DQ, D>(&q.scale));
        let r = bp / bq.clone();
        let shift = (mp - mq) / bq;
        (-r.clone().log())
            + (r.clone() - 1.0) * EULER_GAMMA
            + shift.clone()
            + (lgamma(r + 1.0) - shift).exp()
            - 1.0
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
    fn icdf_inverts_cdf() {
        let device = Device::flex();
        let g = Gumbel::new(Tensor::<1>::from_floats([0.3, -2.0, 5.0], &device), 2.5);
        let q = Tensor::<1>::from_floats([0.01, 0.5, 0.99], &device);
        let back = vals(g.cdf(g.icdf(q)));
        for (b, want) in back.iter().zip([0.01, 0.5, 0.99]) {
            assert!((b - want).abs() < 1e-5, "{back:?}");
        }
    }

    #[test]
    fn kl_of_a_distribution_with_itself_is_zero() {
        let device = Device::flex();
        let p = Gumbel::new(Tensor::<1>::from_floats([0.3, -2.0, 5.0], &device), 0.7);
        assert!(vals(kl_divergence(&p, &p)).iter().all(|k| k.abs() < 1e-5));
    }

    #[test]
    fn log_prob_integrates_to_one() {
        // Trapezoid rule over [μ − 4β, μ + 20β] in float64 from the float32 densities.
        let device = Device::flex();
        let (mu, beta) = (1.5f64, 0.8f64);
        let n = 4001;
        let xs: Vec<f32> = (0..n)
            .map(|i| (mu + beta * (-4.0 + 24.0 * i as f64 / (n - 1) as f64)) as f32)
            .collect();
        let g = Gumbel::new(Tensor::<1>::full([1], mu, &device), beta);
        let lp =
            vals(g.log_prob_with_shape::<1, 1>(Tensor::<1>::from_floats(xs.as_slice(), &device)));
        let h = beta * 24.0 / (n - 1) as f64;
        let total: f64 = lp
            .windows(2)
            .map(|w| 0.5 * h * (w[0].exp() + w[1].exp()))
            .sum();
        assert!((total - 1.0).abs() < 1e-4, "∫p = {total}");
    }
}
