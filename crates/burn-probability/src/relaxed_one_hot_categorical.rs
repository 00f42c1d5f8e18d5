//! The relaxed one-hot categorical (Concrete, Gumbel-softmax) distribution on the simplex.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Distribution, OneLess, Rank, Rsample, check_param, check_temperature, check_values, sample_dims,
};
use crate::error::Result;
use crate::exp_relaxed_one_hot_categorical::ExpRelaxedOneHotCategorical;
use crate::noise;
use crate::one_hot_categorical::{check_logits, gumbel_softmax};

/// The Concrete distribution of Maddison, Mnih and Teh (2017), Jang, Gu and Poole's (2017)
/// Gumbel-softmax: a continuous relaxation on the simplex of
/// [`OneHotCategorical`](crate::OneHotCategorical)`(ℓ)`, with temperature `t > 0` (as `t → 0`
/// its draws approach one-hot vectors) and logits `ℓ` of shape `batch ++ [K]` (event shape
/// `[K]`). TFP's `RelaxedOneHotCategorical`, torch's `RelaxedOneHotCategorical`.
///
/// Reparameterized sampling: `y = softmax((ℓ + g) / t)` with standard Gumbel noise `g`;
/// coordinates that underflow are raised to float32's smallest normal number, so that every
/// draw has a finite log-density.
///
/// # Density function on the simplex
/// ```text
/// ln p(y) = ln Γ(K) + (K − 1) ln t + Σₖ (ℓₖ − (t + 1) ln yₖ) − K logsumexp_k(ℓₖ − t ln yₖ)
/// ```
/// the [`ExpRelaxedOneHotCategorical`] density at `ln y` minus `Σₖ ln yₖ`. It is computed
/// from `ln y` only, never from a power of `y` (at `t = 2` and `yₖ = 10⁻³⁰`, `yₖ^{−t}` overflows
/// float32). Coordinates below float32's smallest normal number are read as it.
///
/// Densities of points near a vertex are huge and their gradients ill-conditioned: train with
/// [`Self::exp_relaxed`] (the same draws in log space, with the same noise) where the model
/// allows, as TFP's and Maddison et al.'s examples do. There is no closed-form KL divergence:
/// estimate it with [`kl_monte_carlo`](crate::kl_monte_carlo), preferably between the
/// `exp_relaxed()` pair (the KL is the same, the estimate better conditioned).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Distribution, RelaxedOneHotCategorical, Rsample};
///
/// let device = Device::flex();
/// let q = RelaxedOneHotCategorical::new(0.5, Tensor::<2>::zeros([8, 10], &device));
/// let y = q.rsample();                     // [8, 10], rows on the simplex
/// let sums: Vec<f32> = y.clone().sum_dim(1).into_data().iter::<f32>().collect();
/// assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5));
/// assert_eq!(q.log_prob(y).dims(), [8]);
/// ```
#[derive(Clone, Debug)]
pub struct RelaxedOneHotCategorical<const D: usize> {
    exp: ExpRelaxedOneHotCategorical<D>,
}

impl<const D: usize> RelaxedOneHotCategorical<D> {
    /// `RelaxedOneHotCategorical(temperature, logits)`, logits of shape `batch ++ [K]`.
    ///
    /// # Panics
    /// As [`Self::try_new`].
    #[track_caller]
    pub fn new(temperature: f64, logits: Tensor<D>) -> Self {
        Self::try_new(temperature, logits).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`](crate::Error) instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) unless `temperature` is
    /// finite and `> 0`, or if the logits have no class.
    pub fn try_new(temperature: f64, logits: Tensor<D>) -> Result<Self> {
        check_temperature("RelaxedOneHotCategorical", temperature)?;
        check_logits("RelaxedOneHotCategorical", &logits)?;
        Ok(Self {
            exp: ExpRelaxedOneHotCategorical::new(temperature, logits),
        })
    }

    /// The temperature `t`.
    pub fn temperature(&self) -> f64 {
        self.exp.temperature()
    }

    /// The logits `ℓ`.
    pub fn logits(&self) -> &Tensor<D> {
        self.exp.logits()
    }

    /// The distribution of `ln y`: its draws for the same noise are the logarithms of this
    /// distribution's, and KL divergences between two relaxed distributions equal those
    /// between their `exp_relaxed()` counterparts.
    pub fn exp_relaxed(&self) -> ExpRelaxedOneHotCategorical<D> {
        self.exp.clone()
    }
}

impl<const D: usize> Distribution<D> for RelaxedOneHotCategorical<D>
where
    Rank<D>: OneLess<D>,
{
    type Batch = <Rank<D> as OneLess<D>>::Batch;
    const EVENT_RANK: usize = 1;
    const NAME: &'static str = "RelaxedOneHotCategorical";

    fn shape(&self) -> Shape {
        self.exp.shape()
    }

    fn device(&self) -> Device {
        self.exp.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let log_y = value.clamp_min(f32::MIN_POSITIVE).log();
        self.exp.log_density(log_y.clone()) - log_y.sum_dim(DV - 1)
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().rsample_with_shape(sample_shape)
    }

    fn detach(&self) -> Self {
        Self {
            exp: self.exp.detach(),
        }
    }

    fn validate(&self) -> Result<()> {
        check_param(
            "RelaxedOneHotCategorical",
            "logits",
            "not NaN and below +∞",
            self.exp.logits(),
            |l| !l.is_nan() && l < f64::INFINITY,
        )
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values(
            "RelaxedOneHotCategorical",
            "the open simplex (coordinates in (0, 1])",
            value,
            |v| v > 0.0 && v <= 1.0,
        )
    }
}

impl<const D: usize> Rsample<D> for RelaxedOneHotCategorical<D>
where
    Rank<D>: OneLess<D>,
{
    /// Standard Gumbel noise ([`noise::standard_gumbel`]).
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>(
            "RelaxedOneHotCategorical::noise",
            sample_shape,
            &self.shape(),
        );
        noise::standard_gumbel(dims, &self.device())
    }

    /// `softmax((ℓ + g) / t)`, raised to at least float32's smallest normal number.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        gumbel_softmax(self.exp.logits(), noise, self.temperature()).clamp_min(f32::MIN_POSITIVE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    #[test]
    fn log_prob_is_the_exp_relaxed_density_minus_the_log_jacobian() {
        let device = Device::flex();
        let logits = Tensor::<1>::from_floats([0.3, -0.8, 1.1, 0.0], &device);
        let d = RelaxedOneHotCategorical::new(0.8, logits);
        let y = [0.1f32, 0.2, 0.6, 0.1];
        let got = vals(d.log_prob(Tensor::<1>::from_floats(y, &device)))[0];
        let x = Tensor::<1>::from_floats(y.map(|v| v.ln()), &device);
        let base = vals(d.exp_relaxed().log_prob(x))[0];
        let jac: f64 = y.iter().map(|v| (*v as f64).ln()).sum();
        assert!((got - (base - jac)).abs() < 1e-4, "{got} vs {}", base - jac);
    }

    #[test]
    fn relaxed_samples_approach_one_hot_as_the_temperature_falls() {
        let device = Device::flex();
        device.seed(5);
        let logits = Tensor::<2>::from_floats([[0.5, 0.0, -0.5, 1.0]], &device);
        let mut previous = 0.0;
        for t in [5.0, 1.0, 0.2, 0.05] {
            let y = RelaxedOneHotCategorical::new(t, logits.clone()).sample_n(4000);
            let max_mean = vals(y.max_dim(2).mean())[0];
            assert!(
                max_mean > previous,
                "t = {t}: E[max y] = {max_mean} ≤ {previous}"
            );
            previous = max_mean;
        }
        assert!(previous > 0.97, "E[max y] at t = 0.05: {previous}");
    }
}
