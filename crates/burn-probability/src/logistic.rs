//! The Logistic distribution.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Cdf, Distribution, Entropy, Mode, Moments, Param, Rsample, broadcast_params, check_param,
    check_values, lift, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::math::{ln_plus, logit, sigmoid, softplus};
use crate::noise;

/// A batch of Logistic distributions with location `μ` and scale `s > 0`.
///
/// # Density function
/// ```text
/// ln p(x) = −z − 2 softplus(−z) − ln s,          z = (x − μ) / s
/// ```
/// cdf `σ(z)`; quantile `μ + s (ln q − ln(1 − q))`; mean and mode `μ`; variance `s² π² / 3`;
/// entropy `ln s + 2`.
///
/// Reparameterized sampling: `x = μ + s ε`, with standard logistic noise
/// `ε = ln u − ln(1 − u)`, `u ~ U[tiny, 1)` (float32's smallest normal number as the lower
/// end, as TFP and distrax do, so that `ln u` is finite).
///
/// There is no closed-form KL divergence between two Logistics: use
/// [`kl_monte_carlo`](crate::kl_monte_carlo).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Cdf, Distribution, Logistic};
///
/// let device = Device::flex();
/// let d = Logistic::new(Tensor::<1>::from_floats([0.0], &device), 1.0);
/// let p: Vec<f32> = d.cdf(Tensor::<1>::from_floats([0.0], &device)).into_data().iter::<f32>().collect();
/// assert_eq!(p, vec![0.5]);
/// ```
#[derive(Clone, Debug)]
pub struct Logistic<const D: usize> {
    loc: Tensor<D>,
    scale: Tensor<D>,
}

impl<const D: usize> Logistic<D> {
    /// Builds a Logistic from `loc` and `scale`: tensors whose shapes broadcast, or scalars (at
    /// least one tensor; see [`Param`]).
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
            broadcast_params("Logistic", [("loc", loc.into()), ("scale", scale.into())])?;
        Ok(Self { loc, scale })
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

    /// The scale `s`.
    pub fn scale(&self) -> &Tensor<D> {
        &self.scale
    }
}

impl<const D: usize> Distribution<D> for Logistic<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "Logistic";

    fn shape(&self) -> Shape {
        self.loc.shape()
    }

    fn device(&self) -> Device {
        self.loc.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let inputs = [value, lift::<D, DV>(&self.loc), lift::<D, DV>(&self.scale)];
        match fused::logistic_log_prob(inputs) {
            Ok(fused) => fused,
            Err([value, loc, scale]) => {
                let z = (value - loc) / scale.clone();
                -z.clone() - softplus(-z) * 2.0 - scale.log()
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
        check_param("Logistic", "loc", "finite", &self.loc, f64::is_finite)?;
        check_param("Logistic", "scale", "finite and > 0", &self.scale, |s| {
            s.is_finite() && s > 0.0
        })
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("Logistic", "the real line (not NaN)", value, |v| {
            !v.is_nan()
        })
    }
}

impl<const D: usize> Rsample<D> for Logistic<D> {
    /// Standard logistic noise `ε = ln u − ln(1 − u)`, `u ~ U[tiny, 1)`.
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("Logistic::noise", sample_shape, &self.shape());
        noise::standard_logistic(dims, &self.device())
    }

    /// `μ + s ε`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        lift::<D, DO>(&self.loc) + lift::<D, DO>(&self.scale) * noise
    }
}

impl<const D: usize> Entropy<D> for Logistic<D> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        ln_plus(self.scale.clone(), 2.0)
    }
}

impl<const D: usize> Moments<D> for Logistic<D> {
    fn mean(&self) -> Tensor<D> {
        self.loc.clone()
    }
    fn variance(&self) -> Tensor<D> {
        self.scale.clone().square() * (core::f64::consts::PI * core::f64::consts::PI / 3.0)
    }
}

impl<const D: usize> Mode<D> for Logistic<D> {
    fn mode(&self) -> Tensor<D> {
        self.loc.clone()
    }
}

impl<const D: usize> Cdf<D> for Logistic<D> {
    fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        sigmoid((value - lift::<D, DV>(&self.loc)) / lift::<D, DV>(&self.scale))
    }

    fn icdf<const DV: usize>(&self, q: Tensor<DV>) -> Tensor<DV> {
        lift::<D, DV>(&self.loc) + lift::<D, DV>(&self.scale) * logit(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_tail_log_prob_is_exact() {
        let device = Device::flex();
        let d = Logistic::new(
            Tensor::<1>::from_floats([0.0, 0.0], &device),
            Tensor::<1>::from_floats([1.0, 1.0], &device),
        );
        let lp: Vec<f64> = d
            .log_prob(Tensor::<1>::from_floats([60.0, -90.0], &device))
            .into_data()
            .iter::<f64>()
            .collect();
        assert!(
            (lp[0] + 60.0).abs() < 1e-4 && (lp[1] + 90.0).abs() < 1e-4,
            "{lp:?}"
        );
    }

    #[test]
    fn noise_is_finite() {
        let device = Device::flex();
        let d = Logistic::new(
            Tensor::<1>::zeros([1], &device),
            Tensor::<1>::ones([1], &device),
        );
        let x: Tensor<2> = d.rsample_n(100_000);
        assert!(x.into_data().iter::<f64>().all(f64::is_finite));
    }
}
