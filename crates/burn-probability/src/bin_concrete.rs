//! The binary Concrete (relaxed Bernoulli) distribution, computed in logit space.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Distribution, Rsample, check_param, check_temperature, check_values, lift, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::logistic::Logistic;
use crate::math::{log1p, sigmoid, softplus};
use crate::noise;

/// The binary Concrete distribution `BinConcrete(t, ℓ)` of Maddison, Mnih and Teh (2017), also
/// called the relaxed Bernoulli: a continuous relaxation on `(0, 1)` of `Bernoulli(ℓ)`, with
/// temperature `t > 0` (as `t → 0` its samples approach the Bernoulli's 0/1 values).
///
/// # Definition (in logit space)
/// ```text
/// z ~ Logistic(ℓ / t, 1 / t)        y = σ(z) ~ BinConcrete(t, ℓ)
/// ```
/// Reparameterized sampling draws standard logistic noise `ε` and returns
/// `y = σ((ℓ + ε) / t)`. [`Self::logit_space`] returns the distribution of `z`, which is where
/// a VAE with these latents should work: evaluate densities and the KL on `z` (the
/// discrete-latent tutorial does), because in float32 `σ(z)` rounds to exactly 0 or 1 once
/// `|z| > 17`, and the density on `(0, 1)` is then infinite.
///
/// # Density function on (0, 1)
/// ```text
/// ln p(y) = ln t + ℓ − (t + 1) ln y + (t − 1) ln(1 − y) − 2 softplus(ℓ − t (ln y − ln(1 − y)))
/// ```
/// a closed form (as TFP's `RelaxedBernoulli`) that stays accurate near 0 and 1, where the
/// transformed-distribution formula cancels catastrophically. `ln(1 − y)` is computed with
/// `log1p`.
///
/// No closed-form entropy, moments or KL divergence exist: estimate them by Monte Carlo (the
/// KL in logit space, see [`kl`](crate::kl)).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{kl_monte_carlo, BinConcrete, Distribution, Rsample};
///
/// let device = Device::flex();
/// let t = 0.5;
/// let posterior = BinConcrete::new(t, Tensor::<2>::zeros([4, 10], &device));
/// let prior = BinConcrete::new(t, Tensor::<2>::zeros([1, 10], &device));
/// let y = posterior.rsample();                                  // [4, 10] in (0, 1)
/// // KL between the logit-space Logistics (the tutorial's `kl_local`):
/// let kl = kl_monte_carlo(&posterior.logit_space(), &prior.logit_space(), 16);
/// # let _ = (y, kl);
/// ```
#[derive(Clone, Debug)]
pub struct BinConcrete<const D: usize> {
    temperature: f64,
    logits: Tensor<D>,
}

impl<const D: usize> BinConcrete<D> {
    /// `BinConcrete(temperature, logits)`.
    ///
    /// # Panics
    /// Unless `temperature` is finite and `> 0`; the message is [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new(temperature: f64, logits: Tensor<D>) -> Self {
        Self::try_new(temperature, logits).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`](crate::Error) instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) unless `temperature` is finite and `> 0` (checked here: it
    /// is a host scalar, so the check costs nothing).
    pub fn try_new(temperature: f64, logits: Tensor<D>) -> Result<Self> {
        check_temperature("BinConcrete", temperature)?;
        Ok(Self {
            temperature,
            logits,
        })
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The temperature `t`.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// The logits `ℓ` of the Bernoulli being relaxed.
    pub fn logits(&self) -> &Tensor<D> {
        &self.logits
    }

    /// The distribution of the pre-sigmoid variable: `Logistic(ℓ / t, 1 / t)`.
    ///
    /// Its samples for the same noise are the logits of this distribution's samples, and
    /// `KL(BinConcrete(t, a) ‖ BinConcrete(t, b)) = KL(logit_space(a) ‖ logit_space(b))`.
    pub fn logit_space(&self) -> Logistic<D> {
        let t = self.temperature;
        Logistic::new(self.logits.clone() / t, 1.0 / t)
    }
}

impl<const D: usize> Distribution<D> for BinConcrete<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "BinConcrete";

    fn shape(&self) -> Shape {
        self.logits.shape()
    }

    fn device(&self) -> Device {
        self.logits.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let t = self.temperature;
        let logits = lift::<D, DV>(&self.logits);
        let (value, logits) = match fused::bin_concrete_log_prob([value, logits], t) {
            Ok(fused) => return fused,
            Err([value, logits]) => (value, logits),
        };
        let log_y = value.clone().log();
        let log_1my = log1p(-value);
        let z = log_y.clone() - log_1my.clone();
        logits.clone() + t.ln() - log_y * (t + 1.0) + log_1my * (t - 1.0)
            - softplus(logits - z * t) * 2.0
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
        check_param("BinConcrete", "logits", "not NaN", &self.logits, |l| {
            !l.is_nan()
        })
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("BinConcrete", "the open interval (0, 1)", value, |v| {
            v > 0.0 && v < 1.0
        })
    }
}

impl<const D: usize> Rsample<D> for BinConcrete<D> {
    /// Standard logistic noise `ε = ln u − ln(1 − u)`, `u` uniform on (0, 1).
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("BinConcrete::noise", sample_shape, &self.shape());
        noise::standard_logistic(dims, &self.device())
    }

    /// `σ((ℓ + ε) / t)`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        fused::bin_concrete_rsample([lift::<D, DO>(&self.logits), noise], self.temperature)
            .unwrap_or_else(|[logits, noise]| sigmoid((logits + noise) / self.temperature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_is_checked() {
        let device = Device::flex();
        for t in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = BinConcrete::try_new(t, Tensor::<1>::zeros([2], &device)).unwrap_err();
            assert!(err.to_string().contains("temperature"), "{err}");
        }
    }

    #[test]
    fn log_prob_equals_logit_space_density_plus_jacobian() {
        // ln p(y) = ln f(z) − ln y − ln(1 − y), z = logit(y): an independent derivation.
        let device = Device::flex();
        let (t, l) = (0.7f64, 1.3f64);
        let d = BinConcrete::new(t, Tensor::<1>::from_floats([l as f32; 3], &device));
        let ys = [0.1f64, 0.5, 0.93];
        let got: Vec<f64> = d
            .log_prob(Tensor::<1>::from_floats([0.1f32, 0.5, 0.93], &device))
            .into_data()
            .iter::<f64>()
            .collect();
        for (y, g) in ys.iter().zip(got) {
            let z = (y / (1.0 - y)).ln();
            let (loc, s) = (l / t, 1.0 / t);
            let u = (z - loc) / s;
            let log_f = -u - 2.0 * (-u).exp().ln_1p() - s.ln();
            let want = log_f - y.ln() - (1.0 - y).ln();
            assert!(
                (g - want).abs() < 1e-4 * want.abs().max(1.0),
                "y={y}: {g} vs {want}"
            );
        }
    }

    #[test]
    fn rsample_is_sigmoid_of_logit_space_rsample() {
        let device = Device::flex();
        let d = BinConcrete::new(0.5, Tensor::<1>::from_floats([0.3, -2.0], &device));
        let eps = Tensor::<1>::from_floats([0.7, -1.1], &device);
        let y: Vec<f64> = d
            .rsample_with_noise(eps.clone())
            .into_data()
            .iter::<f64>()
            .collect();
        let z: Vec<f64> = d
            .logit_space()
            .rsample_with_noise(eps)
            .into_data()
            .iter::<f64>()
            .collect();
        for (y, z) in y.iter().zip(z) {
            assert!((y - 1.0 / (1.0 + (-z).exp())).abs() < 1e-6);
        }
    }
}
