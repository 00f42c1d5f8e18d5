//! The log-space Concrete distribution (ExpConcrete), the stable form of the Gumbel-softmax.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Distribution, OneLess, Rank, Rsample, check_param, check_temperature, check_values, lift,
    sample_dims,
};
use crate::error::Result;
use crate::math::{ln_factorial_minus_one, log_softmax, logsumexp_shifted};
use crate::noise;
use crate::one_hot_categorical::check_logits;
use crate::relaxed_one_hot_categorical::RelaxedOneHotCategorical;

/// The ExpConcrete distribution of Maddison, Mnih and Teh (2017): the logarithm `x = ln y` of
/// a [`RelaxedOneHotCategorical`] draw `y`, with temperature `t > 0` and logits `ℓ` of shape
/// `batch ++ [K]` (event shape `[K]`). TFP's `ExpRelaxedOneHotCategorical`, torch's
/// `ExpRelaxedCategorical`.
///
/// This is where a model with relaxed categorical latents should evaluate densities and
/// Monte Carlo KL divergences: at low temperature the coordinates of `y` underflow float32
/// (`e^{−1000}`), while `x` stays finite, and the density below needs no power of `y`.
///
/// # Density function
/// ```text
/// ln p(x) = ln Γ(K) + (K − 1) ln t + Σₖ (ℓₖ − t xₖ) − K logsumexp_k(ℓₖ − t xₖ)
/// ```
/// the density of the `K − 1` log-ratios `xₖ − x_K`: it does not change when a constant is
/// added to `x`. Reparameterized sampling: `x = log_softmax((ℓ + g) / t)` with standard Gumbel
/// noise `g`, so `logsumexp(x) = 0`.
///
/// There is no closed-form KL divergence: `KL(ExpRelaxed(t, a) ‖ ExpRelaxed(t, b))` equals the
/// KL of the relaxed one-hot pair (a bijection maps one to the other) and is estimated here with
/// [`kl_monte_carlo`](crate::kl_monte_carlo).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{kl_monte_carlo, Distribution, ExpRelaxedOneHotCategorical, Rsample};
///
/// let device = Device::flex();
/// let q = ExpRelaxedOneHotCategorical::new(0.5, Tensor::<3>::zeros([4, 30, 10], &device));
/// let prior = ExpRelaxedOneHotCategorical::new(0.5, Tensor::<1>::zeros([10], &device));
/// let x = q.rsample();                                   // [4, 30, 10], log-simplex
/// assert_eq!(q.log_prob(x).dims(), [4, 30]);
/// let kl = kl_monte_carlo(&q, &prior, 16);               // [4, 30]
/// assert_eq!(kl.estimate.dims(), [4, 30]);
/// ```
#[derive(Clone, Debug)]
pub struct ExpRelaxedOneHotCategorical<const D: usize> {
    temperature: f64,
    logits: Tensor<D>,
}

impl<const D: usize> ExpRelaxedOneHotCategorical<D> {
    /// `ExpRelaxedOneHotCategorical(temperature, logits)`, logits of shape `batch ++ [K]`.
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
        check_temperature("ExpRelaxedOneHotCategorical", temperature)?;
        check_logits("ExpRelaxedOneHotCategorical", &logits)?;
        Ok(Self {
            temperature,
            logits,
        })
    }

    /// The temperature `t`.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// The logits `ℓ`.
    pub fn logits(&self) -> &Tensor<D> {
        &self.logits
    }

    /// The number of classes `K`.
    pub fn num_classes(&self) -> usize {
        self.logits.dims()[D - 1]
    }

    /// The distribution of `exp(x)` on the simplex.
    pub fn relaxed(&self) -> RelaxedOneHotCategorical<D> {
        RelaxedOneHotCategorical::new(self.temperature, self.logits.clone())
    }

    /// The keepdim log-density of log-simplex points `x` (rank `DV`).
    pub(crate) fn log_density<const DV: usize>(&self, x: Tensor<DV>) -> Tensor<DV> {
        let t = self.temperature;
        let k = self.num_classes();
        let scores = lift::<D, DV>(&self.logits) - x * t;
        let constant = ln_factorial_minus_one(k) + (k as f64 - 1.0) * t.ln();
        scores.clone().sum_dim(DV - 1) - logsumexp_shifted(scores, DV - 1) * k as f64 + constant
    }
}

impl<const D: usize> Distribution<D> for ExpRelaxedOneHotCategorical<D>
where
    Rank<D>: OneLess<D>,
{
    type Batch = <Rank<D> as OneLess<D>>::Batch;
    const EVENT_RANK: usize = 1;
    const NAME: &'static str = "ExpRelaxedOneHotCategorical";

    fn shape(&self) -> Shape {
        self.logits.shape()
    }

    fn device(&self) -> Device {
        self.logits.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        self.log_density(value)
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().rsample_with_shape(sample_shape)
    }

    fn detach(&self) -> Self {
        Self {
            temperature: self.temperature,
            logits: self.logits.clone().detach(),
        }
    }

    fn validate(&self) -> Result<()> {
        check_param(
            "ExpRelaxedOneHotCategorical",
            "logits",
            "not NaN and below +∞",
            &self.logits,
            |l| !l.is_nan() && l < f64::INFINITY,
        )
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values(
            "ExpRelaxedOneHotCategorical",
            "log-simplex points (coordinates below +∞, not NaN)",
            value,
            |v| !v.is_nan() && v < f64::INFINITY,
        )
    }
}

impl<const D: usize> Rsample<D> for ExpRelaxedOneHotCategorical<D>
where
    Rank<D>: OneLess<D>,
{
    /// Standard Gumbel noise ([`noise::standard_gumbel`]).
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>(
            "ExpRelaxedOneHotCategorical::noise",
            sample_shape,
            &self.shape(),
        );
        noise::standard_gumbel(dims, &self.device())
    }

    /// `log_softmax((ℓ + g) / t)`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        log_softmax(
            (lift::<D, DO>(&self.logits) + noise) / self.temperature,
            DO - 1,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    #[test]
    fn log_prob_is_invariant_to_a_shift_of_the_value() {
        let device = Device::flex();
        let d = ExpRelaxedOneHotCategorical::new(
            0.6,
            Tensor::<1>::from_floats([0.2, -1.0, 0.7], &device),
        );
        let x = Tensor::<1>::from_floats([-0.5, -2.5, -1.2], &device);
        let a = vals(d.log_prob(x.clone()));
        let b = vals(d.log_prob(x + 3.0));
        assert!((a[0] - b[0]).abs() < 1e-4, "{a:?} vs {b:?}");
    }

    #[test]
    fn extreme_logits_and_temperatures_give_finite_values_and_gradients() {
        let device = Device::flex().autodiff();
        device.seed(3);
        for t in [0.1, 1.0, 10.0] {
            let logits =
                Tensor::<2>::from_floats([[100.0, -100.0, 0.0], [-100.0, 0.0, 100.0]], &device)
                    .require_grad();
            let d = ExpRelaxedOneHotCategorical::new(t, logits.clone());
            let x = d.rsample_n(8);
            let lp = d.log_prob_n(x);
            assert!(vals(lp.clone()).iter().all(|v| v.is_finite()), "t = {t}");
            let grads = lp.sum().backward();
            assert!(
                vals(logits.grad(&grads).unwrap())
                    .iter()
                    .all(|g| g.is_finite()),
                "t = {t}"
            );
        }
    }
}
