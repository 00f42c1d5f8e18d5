//! The Bernoulli distribution, parameterized by logits.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Distribution, Entropy, Mode, Moments, check_param, check_values, lift,
    log_prob_summed_composite, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::kl::KlDivergence;
use crate::math::{logit, sigmoid, softplus};
use crate::noise;

/// A batch of Bernoulli distributions over `{0, 1}`, parameterized by their logits
/// `ℓ = ln(p / (1 − p))`.
///
/// Logits are the canonical parameter: every formula below is written with
/// `softplus(ℓ) = ln(1 + e^ℓ)` so that values and gradients stay finite for any finite `ℓ`
/// (including ±100 in float32, where `p` rounds to exactly 0 or 1).
///
/// # Mass function
/// ```text
/// ln p(x) = x ℓ − softplus(ℓ)            x ∈ {0, 1}   (−BCE-with-logits)
/// ```
/// Mean `σ(ℓ)`; variance `σ(ℓ) σ(−ℓ)`; entropy `softplus(−|ℓ|) + |ℓ| σ(−|ℓ|)`;
/// mode `1[ℓ > 0]`. Not reparameterizable: use [`BinConcrete`](crate::BinConcrete) for a
/// continuous relaxation. `log_prob` also accepts `x ∈ [0, 1]` (the cross-entropy with soft
/// targets, as in the VAE tutorials' grey-level pixels).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Bernoulli, Distribution, Independent};
///
/// let device = Device::flex();
/// let logits = Tensor::<2>::zeros([16, 784], &device);      // a decoder's output
/// let px: Independent<Bernoulli<2>, 1> = Independent::new(Bernoulli::new(logits), 1);
/// let x = Tensor::<2>::ones([16, 784], &device);           // binarized images
/// let log_lik = px.log_prob(x);                            // [16]
/// # let _ = log_lik;
/// ```
#[derive(Clone, Debug)]
pub struct Bernoulli<const D: usize> {
    logits: Tensor<D>,
}

impl<const D: usize> Bernoulli<D> {
    /// From logits `ℓ` (any finite real).
    pub fn new(logits: Tensor<D>) -> Self {
        Self { logits }
    }

    /// Same as [`Self::new`]: from logits.
    pub fn from_logits(logits: Tensor<D>) -> Self {
        Self::new(logits)
    }

    /// From probabilities `p ∈ [0, 1]`, converted to logits after clamping `p` to
    /// `[ε, 1 − ε]` with `ε = 2⁻²³` (float32's epsilon, as PyTorch's `clamp_probs`), so that
    /// `p = 0` or `1` gives large finite logits (about ±15.9) rather than infinities.
    pub fn from_probs(probs: Tensor<D>) -> Self {
        let eps = f32::EPSILON;
        Self::new(logit(probs.clamp(eps, 1.0 - eps)))
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The logits `ℓ`.
    pub fn logits(&self) -> &Tensor<D> {
        &self.logits
    }

    /// The probabilities `σ(ℓ)` of `x = 1`.
    pub fn probs(&self) -> Tensor<D> {
        sigmoid(self.logits.clone())
    }

    /// The log-mass summed over the dimensions `from..` (kept, with size 1), with `value` read as
    /// if stacked `times` times along dimension 0: one fused pass where the kernels apply.
    pub(crate) fn log_prob_summed<const DV: usize>(
        &self,
        value: Tensor<DV>,
        from: usize,
        times: usize,
    ) -> Tensor<DV> {
        let logits = lift::<D, DV>(&self.logits);
        match fused::bernoulli_log_prob_summed([logits, value], from, times) {
            Ok(sums) => sums,
            Err([_, value]) => log_prob_summed_composite(self, value, from, times),
        }
    }
}

impl<const D: usize> Distribution<D> for Bernoulli<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "Bernoulli";

    fn shape(&self) -> Shape {
        self.logits.shape()
    }

    fn device(&self) -> Device {
        self.logits.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let logits = lift::<D, DV>(&self.logits);
        match fused::bernoulli_log_prob([logits, value]) {
            Ok(fused) => fused,
            Err([logits, value]) => value * logits.clone() - softplus(logits),
        }
    }

    /// Draws `1[u < σ(ℓ)]` with `u ~ U[0, 1)`, as float 0/1.
    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("Bernoulli::sample", sample_shape, &self.shape());
        let device = self.device();
        let u = noise::uniform_open::<DO>(dims, &device);
        let p = lift::<D, DO>(&self.probs().detach());
        u.lower(p).float()
    }

    fn detach(&self) -> Self {
        Self::new(self.logits.clone().detach())
    }

    fn validate(&self) -> Result<()> {
        check_param("Bernoulli", "logits", "not NaN", &self.logits, |l| {
            !l.is_nan()
        })
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("Bernoulli", "{0, 1}", value, |v| v == 0.0 || v == 1.0)
    }
}

impl<const D: usize> Entropy<D> for Bernoulli<D> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        let a = self.logits.clone().abs();
        softplus(-a.clone()) + a.clone() * sigmoid(-a)
    }
}

impl<const D: usize> Moments<D> for Bernoulli<D> {
    fn mean(&self) -> Tensor<D> {
        self.probs()
    }
    fn variance(&self) -> Tensor<D> {
        sigmoid(self.logits.clone()) * sigmoid(-self.logits.clone())
    }
}

impl<const D: usize> Mode<D> for Bernoulli<D> {
    /// `1[ℓ > 0]` (0 at `ℓ = 0`, as in TFP).
    fn mode(&self) -> Tensor<D> {
        self.logits.clone().greater_elem(0.0).float()
    }
}

/// `KL(p ‖ q) = p (softplus(−ℓ_q) − softplus(−ℓ_p)) + (1 − p)(softplus(ℓ_q) − softplus(ℓ_p))`
/// with `p = σ(ℓ_p)`: each term is a finite difference times a probability, so a probability
/// of exactly 0 or 1 gives no `0 · ∞`.
impl<const D: usize, const DQ: usize> KlDivergence<Bernoulli<DQ>, D> for Bernoulli<D> {
    fn kl_divergence_keepdim(&self, q: &Bernoulli<DQ>) -> Tensor<D> {
        let (lp, lq) = (self.logits.clone(), lift::<DQ, D>(&q.logits));
        let p1 = sigmoid(lp.clone());
        let p0 = sigmoid(-lp.clone());
        p1 * (softplus(-lq.clone()) - softplus(-lp.clone())) + p0 * (softplus(lq) - softplus(lp))
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
    fn extreme_logits_give_finite_values_and_gradients() {
        let device = Device::flex().autodiff();
        let logits =
            Tensor::<1>::from_floats([-100.0, -20.0, 0.0, 20.0, 100.0], &device).require_grad();
        let b = Bernoulli::new(logits.clone());
        let x = Tensor::<1>::from_floats([1.0, 0.0, 1.0, 1.0, 0.0], &device);
        let total = b.log_prob(x).sum() + b.entropy().sum() + b.variance().sum();
        let lp = vals(b.log_prob(Tensor::<1>::from_floats([1.0, 0.0, 1.0, 1.0, 0.0], &device)));
        assert!(
            (lp[0] + 100.0).abs() < 1e-4 && (lp[4] + 100.0).abs() < 1e-4,
            "{lp:?}"
        );
        let grads = total.backward();
        assert!(
            vals(logits.grad(&grads).unwrap())
                .iter()
                .all(|g| g.is_finite())
        );
    }

    #[test]
    fn from_probs_handles_zero_and_one() {
        let device = Device::flex();
        let b = Bernoulli::from_probs(Tensor::<1>::from_floats([0.0, 0.25, 1.0], &device));
        let l = vals(b.logits().clone());
        assert!(l.iter().all(|v| v.is_finite()));
        assert!((l[1] - (0.25f64 / 0.75).ln()).abs() < 1e-6);
        let lp = vals(b.log_prob(Tensor::<1>::from_floats([0.0, 1.0, 1.0], &device)));
        assert!(lp.iter().all(|v| v.is_finite() && *v <= 0.0));
    }

    #[test]
    fn kl_is_finite_for_saturated_probabilities() {
        let device = Device::flex();
        let p = Bernoulli::new(Tensor::<1>::from_floats([-100.0, 100.0, 0.3], &device));
        let q = Bernoulli::new(Tensor::<1>::from_floats([3.0, -3.0, 0.3], &device));
        let kl = vals(kl_divergence(&p, &q));
        // p = 0: KL = -ln(1 - q) = softplus(3); p = 1: KL = -ln q = softplus(3).
        let sp3 = (3f64.exp()).ln_1p();
        assert!(
            (kl[0] - sp3).abs() < 1e-5 && (kl[1] - sp3).abs() < 1e-5 && kl[2].abs() < 1e-7,
            "{kl:?}"
        );
    }

    #[test]
    fn support_check_rejects_non_binary_values() {
        let device = Device::flex();
        let b = Bernoulli::new(Tensor::<1>::zeros([2], &device));
        let err = b
            .check_support(&Tensor::<1>::from_floats([1.0, 0.5], &device))
            .unwrap_err();
        assert!(err.to_string().contains("0.5") && err.to_string().contains("{0, 1}"));
    }
}
