//! The geometric distribution over the failures before the first success.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::broadcast_pair;
use crate::distribution::{
    Cdf, Distribution, Entropy, Mode, Moments, check_param, check_values, lift, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::math::{expm1, log_sigmoid, log1p, logit, sigmoid, softplus};
use crate::noise;
use crate::poisson::on_counts;

/// A batch of geometric distributions: the number of failures `k = 0, 1, 2, …` before the
/// first success of independent trials that succeed with probability `p = σ(ℓ)`,
/// parameterized by logits `ℓ` (torch's convention, `torch.distributions.Geometric`;
/// `tfd.Geometric` likewise).
///
/// # Mass function
/// ```text
/// ln p(k) = k ln σ(−ℓ) + ln σ(ℓ)
/// ```
/// cdf `P(X ≤ k) = 1 − (1 − p)^{k+1} = −expm1((k + 1) ln σ(−ℓ))`; quantile
/// `⌈ln1p(−u)/ln σ(−ℓ)⌉ − 1` (at least 0); mean `(1 − p)/p = e^{−ℓ}`; variance
/// `(1 − p)/p² = e^{−ℓ}(1 + e^{−ℓ})`; mode 0; entropy
/// `−(p ln p + (1 − p) ln(1 − p))/p = softplus(−ℓ) + e^{−ℓ} softplus(ℓ)` (its last term by its
/// series `1 − e^ℓ/2 + e^{2ℓ}/3` below `ℓ = −15`, where `e^{−ℓ}` would overflow). Every form
/// stays finite at logits ±100.
///
/// Counts are whole-number floats; a value that is not a whole number ≥ 0 has mass 0
/// (`ln p = −∞`). [`Distribution::sample`] is `⌊ln u / ln σ(−ℓ)⌋` (inversion).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Distribution, Geometric, Moments};
///
/// let device = Device::flex();
/// let g = Geometric::new(Tensor::<1>::zeros([1], &device));        // p = ½
/// let lp: Vec<f32> = g.log_prob(Tensor::<1>::from_floats([2.0], &device))
///     .into_data().iter::<f32>().collect();
/// assert!((lp[0] - 0.125f32.ln()).abs() < 1e-6);
/// let mean: f32 = g.mean().into_scalar();
/// assert!((mean - 1.0).abs() < 1e-6);
/// ```
#[derive(Clone, Debug)]
pub struct Geometric<const D: usize> {
    logits: Tensor<D>,
}

impl<const D: usize> Geometric<D> {
    /// From logits `ℓ` of the success probability.
    pub fn new(logits: Tensor<D>) -> Self {
        Self { logits }
    }

    /// From success probabilities `p ∈ (0, 1]`, converted to logits after clamping to
    /// `[ε, 1 − ε]`, `ε = 2⁻²³`.
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

    /// The success probabilities `σ(ℓ)`.
    pub fn probs(&self) -> Tensor<D> {
        sigmoid(self.logits.clone())
    }
}

impl<const D: usize> Distribution<D> for Geometric<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "Geometric";

    fn shape(&self) -> Shape {
        self.logits.shape()
    }

    fn device(&self) -> Device {
        self.logits.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let logits = lift::<D, DV>(&self.logits);
        let [value, logits] = match fused::geometric_log_prob([value, logits]) {
            Ok(lp) => return lp,
            Err(inputs) => inputs,
        };
        let [value, logits] = broadcast_pair(value, logits);
        on_counts(value, |k| {
            k * log_sigmoid(-logits.clone()) + log_sigmoid(logits)
        })
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("Geometric::sample", sample_shape, &self.shape());
        let u = noise::uniform_open::<DO>(dims, &self.device());
        let ln_q = log_sigmoid(-lift::<D, DO>(&self.logits.clone().detach()));
        (u.log() / ln_q).floor()
    }

    fn detach(&self) -> Self {
        Self::new(self.logits.clone().detach())
    }

    fn validate(&self) -> Result<()> {
        check_param("Geometric", "logits", "not NaN", &self.logits, |l| {
            !l.is_nan()
        })
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("Geometric", "the counts 0, 1, 2, …", value, |v| {
            v >= 0.0 && v.fract() == 0.0
        })
    }
}

impl<const D: usize> Cdf<D> for Geometric<D> {
    fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let ln_q = log_sigmoid(-lift::<D, DV>(&self.logits));
        let k = value.floor();
        let below = k.clone().lower_elem(0.0);
        (-expm1((k.clamp_min(0.0) + 1.0) * ln_q)).mask_fill(below, 0.0)
    }

    fn icdf<const DV: usize>(&self, q: Tensor<DV>) -> Tensor<DV> {
        let ln_q = log_sigmoid(-lift::<D, DV>(&self.logits));
        (log1p(-q) / ln_q).ceil().sub_scalar(1.0).clamp_min(0.0)
    }
}

impl<const D: usize> Moments<D> for Geometric<D> {
    fn mean(&self) -> Tensor<D> {
        (-self.logits.clone()).exp()
    }
    fn variance(&self) -> Tensor<D> {
        let odds = (-self.logits.clone()).exp();
        odds.clone() * (odds + 1.0)
    }
}

impl<const D: usize> Mode<D> for Geometric<D> {
    fn mode(&self) -> Tensor<D> {
        self.logits.zeros_like()
    }
}

impl<const D: usize> Entropy<D> for Geometric<D> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        const FAR: f32 = -15.0;
        let l = self.logits.clone();
        let far = l.clone().lower_elem(FAR);
        let near = l.clone().clamp_min(FAR);
        let direct = (-near.clone()).exp() * softplus(near);
        let e = l.clone().clamp_max(FAR).exp();
        let series = (e.clone() * (e / 3.0 - 0.5)).add_scalar(1.0);
        softplus(-l) + direct.mask_where(far, series)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    #[test]
    fn entropy_and_moments_match_float64_across_logits() {
        let device = Device::flex();
        let ls = [-40.0f32, -16.0, -14.0, -1.0, 0.5, 30.0];
        let g = Geometric::new(Tensor::<1>::from_floats(ls, &device));
        let h = vals(g.entropy());
        let mean = vals(g.mean());
        for (i, &l) in ls.iter().enumerate() {
            let l = l as f64;
            let sp = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
            let want = sp(-l) + (-l).exp() * sp(l);
            assert!(
                (h[i] - want).abs() < 2e-6 * (1.0 + want),
                "{l}: {} vs {want}",
                h[i]
            );
            assert!(
                (mean[i] - (-l).exp()).abs() < 1e-6 * (-l).exp().max(1.0),
                "{l}"
            );
        }
    }

    #[test]
    fn icdf_is_the_smallest_count_whose_cdf_reaches_q_and_samples_have_the_mean() {
        let device = Device::flex();
        let g = Geometric::new(Tensor::<1>::full([1], -1.3, &device));
        let qs = [0.05f32, 0.3, 0.5, 0.9, 0.999];
        let k = vals(g.icdf(Tensor::<1>::from_floats(qs, &device)));
        for (i, q) in qs.iter().enumerate() {
            let at = vals(g.cdf(Tensor::<1>::from_floats([k[i] as f32], &device)))[0];
            let before = vals(g.cdf(Tensor::<1>::from_floats([k[i] as f32 - 1.0], &device)))[0];
            assert!(
                at >= *q as f64 - 1e-6 && before < *q as f64,
                "q {q}: k {}",
                k[i]
            );
        }
        device.seed(3);
        let n = 50_000;
        let x = vals(g.sample_with_shape::<2>(&[n]));
        let mean = x.iter().sum::<f64>() / n as f64;
        let (mu, var) = (1.3f64.exp(), 1.3f64.exp() * (1.0 + 1.3f64.exp()));
        assert!(
            (mean - mu).abs() < 4.0 * (var / n as f64).sqrt(),
            "{mean} vs {mu}"
        );
    }
}
