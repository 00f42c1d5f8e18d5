//! The continuous Bernoulli distribution on `[0, 1]`, parameterized by logits.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Cdf, Distribution, Entropy, Moments, Rsample, check_param, check_values, lift,
    log_prob_summed_composite, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::kl::KlDivergence;
use crate::math::{expm1, log1mexp, log1p, logit, sigmoid};
use crate::noise;

/// Below this `|η|` the log-normalizer, mean and entropy use their Taylor series.
const TAYLOR: f32 = 0.1;
/// Below this `|η|` the variance uses its Taylor series (its closed form cancels further out).
const TAYLOR_VARIANCE: f32 = 1.0;
/// Below this `|η|` the cdf and quantile are those of `U(0, 1)` to first order in `η`.
const TAYLOR_CDF: f32 = 1e-6;

/// A batch of continuous Bernoulli distributions on `[0, 1]` (Loaiza-Ganem and Cunningham,
/// NeurIPS 2019; `torch.distributions.ContinuousBernoulli`, `tfd.ContinuousBernoulli`),
/// parameterized by logits `η = ln(λ/(1 − λ))`: the normalized form of the Bernoulli
/// log-likelihood `x ln λ + (1 − x) ln(1 − λ)` that VAEs apply to grey-level pixels.
///
/// # Density function
/// ```text
/// ln p(x) = η x − A(η),    A(η) = ln((e^η − 1)/η)        x ∈ [0, 1]
/// ```
/// cdf `(e^{ηx} − 1)/(e^η − 1)`; quantile `ln1p(u (e^η − 1))/η`; mean `1/(1 − e^{−η}) − 1/η`;
/// variance `1/η² − 1/(4 sinh²(η/2))`; entropy `A(η) − η·mean`. At `η = 0` it is `U(0, 1)`.
///
/// Every quantity is computed without overflow for any finite `η` (±100 included), and near
/// `η = 0`, where the closed forms are `0/0` and cancel, from Taylor series: `A ≈ η/2 + η²/24 −
/// η⁴/2880` and the mean, entropy (`|η| < 0.1`) and variance (`|η| < 1`) likewise.
///
/// Reparameterized sampling by the quantile function: `x = F⁻¹(u)` with `u` uniform on (0, 1).
///
/// # KL divergence
/// ```text
/// KL(p ‖ q) = (η_p − η_q)·mean_p + A(η_q) − A(η_p)
/// ```
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{ContinuousBernoulli, Distribution, Independent, Moments};
///
/// let device = Device::flex();
/// let logits = Tensor::<2>::zeros([16, 784], &device);      // a decoder's output
/// let px: Independent<ContinuousBernoulli<2>, 1> =
///     Independent::new(ContinuousBernoulli::new(logits), 1);
/// let x = Tensor::<2>::full([16, 784], 0.25, &device);    // grey levels in [0, 1]
/// let log_lik: Vec<f32> = px.log_prob(x).into_data().iter::<f32>().collect();
/// assert!(log_lik[0].abs() < 1e-4);                       // η = 0: the uniform density
/// let mean: Vec<f32> = px.base().mean().into_data().iter::<f32>().collect();
/// assert!((mean[0] - 0.5).abs() < 1e-6);
/// ```
#[derive(Clone, Debug)]
pub struct ContinuousBernoulli<const D: usize> {
    logits: Tensor<D>,
}

impl<const D: usize> ContinuousBernoulli<D> {
    /// From logits `η` (any finite real).
    pub fn new(logits: Tensor<D>) -> Self {
        Self { logits }
    }

    /// From the shape parameter `λ ∈ (0, 1)` (torch's `probs`), converted to logits after
    /// clamping to `[ε, 1 − ε]`, `ε = 2⁻²³`.
    pub fn from_probs(probs: Tensor<D>) -> Self {
        let eps = f32::EPSILON;
        Self::new(logit(probs.clamp(eps, 1.0 - eps)))
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The logits `η`.
    pub fn logits(&self) -> &Tensor<D> {
        &self.logits
    }

    /// The shape parameter `λ = σ(η)` (torch's `probs`; not the mean).
    pub fn probs(&self) -> Tensor<D> {
        sigmoid(self.logits.clone())
    }

    /// The log-density summed over the dimensions `from..` (kept, with size 1), with `value`
    /// read as if stacked `times` times along dimension 0: one fused pass where the kernels
    /// apply.
    pub(crate) fn log_prob_summed<const DV: usize>(
        &self,
        value: Tensor<DV>,
        from: usize,
        times: usize,
    ) -> Tensor<DV> {
        let logits = lift::<D, DV>(&self.logits);
        match fused::continuous_bernoulli_log_prob_summed([logits, value], from, times) {
            Ok(sums) => sums,
            Err([_, value]) => log_prob_summed_composite(self, value, from, times),
        }
    }

    /// The log-normalizer `A(η) = ln((e^η − 1)/η)`.
    pub fn log_normalizer(&self) -> Tensor<D> {
        log_normalizer(self.logits.clone())
    }
}

/// `A(η) = ln((e^η − 1)/η) = max(η, 0) + ln(1 − e^{−|η|}) − ln|η|`, and its Taylor series
/// `η/2 + η²/24 − η⁴/2880` for `|η| < 0.1`.
fn log_normalizer<const D: usize>(eta: Tensor<D>) -> Tensor<D> {
    let small = eta.clone().abs().lower_elem(TAYLOR);
    let a = eta.clone().abs().clamp_min(TAYLOR);
    let direct = eta.clone().clamp_min(0.0) + log1mexp(-a.clone()) - a.log();
    let e = eta.clamp(-TAYLOR, TAYLOR);
    let e2 = e.clone().square();
    let taylor = e * 0.5 + e2.clone() * (e2 / -2880.0 + 1.0 / 24.0);
    direct.mask_where(small, taylor)
}

/// The mean `1/(1 − e^{−η}) − 1/η`, written as `−1/expm1(−η)` for `η > 0` and
/// `e^η/expm1(η)` for `η < 0` so that neither side overflows; `½ + η/12 − η³/720 + η⁵/30240`
/// for `|η| < 0.1`.
fn mean_of<const D: usize>(eta: Tensor<D>) -> Tensor<D> {
    let small = eta.clone().abs().lower_elem(TAYLOR);
    let positive = eta.clone().greater_elem(0.0);
    let pos = eta.clone().clamp_min(TAYLOR);
    let neg = eta.clone().clamp_max(-TAYLOR);
    let first_pos = -expm1(-pos.clone()).recip();
    let first_neg = neg.clone().exp() / expm1(neg.clone());
    let direct = first_neg.mask_where(positive.clone(), first_pos)
        - neg.recip().mask_where(positive, pos.recip());
    let e = eta.clamp(-TAYLOR, TAYLOR);
    let e2 = e.clone().square();
    let taylor = e * (e2.clone() * (e2 / 30240.0 - 1.0 / 720.0) + 1.0 / 12.0) + 0.5;
    direct.mask_where(small, taylor)
}

impl<const D: usize> Distribution<D> for ContinuousBernoulli<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "ContinuousBernoulli";

    fn shape(&self) -> Shape {
        self.logits.shape()
    }

    fn device(&self) -> Device {
        self.logits.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let eta = lift::<D, DV>(&self.logits);
        match fused::continuous_bernoulli_log_prob([eta, value]) {
            Ok(fused) => fused,
            Err([eta, value]) => value * eta.clone() - log_normalizer(eta),
        }
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().rsample_with_shape(sample_shape)
    }

    fn detach(&self) -> Self {
        Self::new(self.logits.clone().detach())
    }

    fn validate(&self) -> Result<()> {
        check_param(
            "ContinuousBernoulli",
            "logits",
            "finite",
            &self.logits,
            |l| l.is_finite(),
        )
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("ContinuousBernoulli", "[0, 1]", value, |v| {
            (0.0..=1.0).contains(&v)
        })
    }
}

impl<const D: usize> Rsample<D> for ContinuousBernoulli<D> {
    /// Uniform noise on (0, 1).
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("ContinuousBernoulli::noise", sample_shape, &self.shape());
        noise::uniform_open(dims, &self.device())
    }

    /// The quantile function at the noise, [`Cdf::icdf`].
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        self.icdf(noise)
    }
}

impl<const D: usize> Moments<D> for ContinuousBernoulli<D> {
    fn mean(&self) -> Tensor<D> {
        mean_of(self.logits.clone())
    }

    /// `1/η² − e^{−|η|}/expm1(−|η|)²` (that is `1/η² − 1/(4 sinh²(η/2))` without overflow);
    /// for `|η| < 1` its series `Σₖ B₂ₖ (2k − 1)/(2k)! η^{2k−2}` to `η¹⁰`.
    fn variance(&self) -> Tensor<D> {
        const SERIES: [f64; 6] = [
            -5.812_609_152_556_243e-9,
            1.878_908_128_908_128_8e-7,
            -5.787_037_037_037_037e-6,
            1.653_439_153_439_153_4e-4,
            -4.166_666_666_666_667e-3,
            8.333_333_333_333_333e-2,
        ];
        let eta = self.logits.clone();
        let small = eta.clone().abs().lower_elem(TAYLOR_VARIANCE);
        let a = eta.clone().abs().clamp_min(TAYLOR_VARIANCE);
        let direct = a.clone().square().recip() - (-a.clone()).exp() / expm1(-a).square();
        let e2 = eta.clamp(-TAYLOR_VARIANCE, TAYLOR_VARIANCE).square();
        let mut taylor = e2.zeros_like() + SERIES[0];
        for c in &SERIES[1..] {
            taylor = taylor * e2.clone() + *c;
        }
        direct.mask_where(small, taylor)
    }
}

impl<const D: usize> Entropy<D> for ContinuousBernoulli<D> {
    /// `A(η) − η·mean`; `−η²/24 + η⁴/960` for `|η| < 0.1`.
    fn entropy_keepdim(&self) -> Tensor<D> {
        let eta = self.logits.clone();
        let small = eta.clone().abs().lower_elem(TAYLOR);
        let direct = log_normalizer(eta.clone()) - eta.clone() * mean_of(eta.clone());
        let e2 = eta.clamp(-TAYLOR, TAYLOR).square();
        let taylor = e2.clone() * (e2 / 960.0 - 1.0 / 24.0);
        direct.mask_where(small, taylor)
    }
}

impl<const D: usize> Cdf<D> for ContinuousBernoulli<D> {
    /// `expm1(ηx)/expm1(η)` for `η < 0`, `e^{η(x−1)}·expm1(−ηx)/expm1(−η)` for `η > 0`
    /// (no overflow), `x + η x(x − 1)/2` for `|η| < 10⁻⁶`; clamped to `[0, 1]` outside the
    /// support.
    fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let eta = lift::<D, DV>(&self.logits);
        let x = value.clamp(0.0, 1.0);
        let small = eta.clone().abs().lower_elem(TAYLOR_CDF);
        let positive = eta.clone().greater_elem(0.0);
        let pos = eta.clone().clamp_min(TAYLOR_CDF);
        let neg = eta.clone().clamp_max(-TAYLOR_CDF);
        let from_pos = (pos.clone() * (x.clone() - 1.0)).exp() * expm1(-(pos.clone() * x.clone()))
            / expm1(-pos);
        let from_neg = expm1(neg.clone() * x.clone()) / expm1(neg);
        let taylor = x.clone() + eta * x.clone() * (x - 1.0) * 0.5;
        from_neg
            .mask_where(positive, from_pos)
            .mask_where(small, taylor)
    }

    /// `ln1p(u·expm1(η))/η` for `η < 0`, `1 + ln1p((1 − u)·expm1(−η))/η` for `η > 0` (no
    /// overflow), `u + η u(1 − u)/2` for `|η| < 10⁻⁶`.
    fn icdf<const DV: usize>(&self, q: Tensor<DV>) -> Tensor<DV> {
        let eta = lift::<D, DV>(&self.logits);
        let [eta, q] = match fused::continuous_bernoulli_icdf([eta, q]) {
            Ok(x) => return x,
            Err(inputs) => inputs,
        };
        let small = eta.clone().abs().lower_elem(TAYLOR_CDF);
        let positive = eta.clone().greater_elem(0.0);
        let pos = eta.clone().clamp_min(TAYLOR_CDF);
        let neg = eta.clone().clamp_max(-TAYLOR_CDF);
        let from_pos = log1p((-q.clone()).add_scalar(1.0) * expm1(-pos.clone())) / pos + 1.0;
        let from_neg = log1p(q.clone() * expm1(neg.clone())) / neg;
        let taylor = q.clone() + eta * q.clone() * (-q).add_scalar(1.0) * 0.5;
        from_neg
            .mask_where(positive, from_pos)
            .mask_where(small, taylor)
    }
}

impl<const D: usize, const DQ: usize> KlDivergence<ContinuousBernoulli<DQ>, D>
    for ContinuousBernoulli<D>
{
    fn kl_divergence_keepdim(&self, q: &ContinuousBernoulli<DQ>) -> Tensor<D> {
        let (ep, eq) = (self.logits.clone(), lift::<DQ, D>(&q.logits));
        (ep.clone() - eq.clone()) * mean_of(ep.clone()) + log_normalizer(eq) - log_normalizer(ep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kl::kl_divergence;

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    /// The float64 closed forms, for logits away from 0.
    fn reference(eta: f64, x: f64) -> (f64, f64, f64) {
        let a = ((eta.exp() - 1.0) / eta).ln();
        let cdf = ((eta * x).exp() - 1.0) / (eta.exp() - 1.0);
        let mean = 1.0 / (1.0 - (-eta).exp()) - 1.0 / eta;
        (eta * x - a, cdf, mean)
    }

    #[test]
    fn matches_the_float64_closed_forms_on_both_sides_of_the_taylor_thresholds() {
        let device = Device::flex();
        let etas = [
            -30.0, -2.0, -0.2, -0.05, 0.01, 0.09, 0.11, 0.9, 1.1, 5.0, 40.0,
        ];
        let cb = ContinuousBernoulli::new(Tensor::<1>::from_floats(etas, &device));
        let x = Tensor::<1>::full([etas.len()], 0.3, &device);
        let lp = vals(cb.log_prob(x.clone()));
        let cdf = vals(cb.cdf(x));
        let mean = vals(cb.mean());
        let var = vals(cb.variance());
        let normalizer = vals(cb.log_normalizer());
        for (i, &eta) in etas.iter().enumerate() {
            let eta = eta as f32 as f64;
            let (want_lp, want_cdf, want_mean) = reference(eta, 0.3f32 as f64);
            let want_a = ((eta.exp() - 1.0) / eta).ln();
            assert!(
                (normalizer[i] - want_a).abs() < 2e-6 * (1.0 + want_a.abs()),
                "{eta}: A = {normalizer:?}"
            );
            let want_var = 1.0 / (eta * eta) - 1.0 / (4.0 * (eta / 2.0).sinh().powi(2));
            assert!(
                (lp[i] - want_lp).abs() < 2e-6 * (1.0 + want_lp.abs()),
                "{eta}: {lp:?}"
            );
            assert!(
                (cdf[i] - want_cdf).abs() < 1e-5 * want_cdf,
                "{eta}: {cdf:?}"
            );
            assert!((mean[i] - want_mean).abs() < 1e-6, "{eta}: {mean:?}");
            assert!(
                (var[i] - want_var).abs() < 1e-5 * want_var,
                "{eta}: {var:?} vs {want_var}"
            );
        }
    }

    #[test]
    fn icdf_inverts_cdf_and_gradients_stay_finite_at_extreme_logits() {
        let device = Device::flex().autodiff();
        let eta =
            Tensor::<1>::from_floats([-100.0, -1e-7, 0.0, 3e-4, 100.0], &device).require_grad();
        let cb = ContinuousBernoulli::new(eta.clone());
        let q = Tensor::<1>::full([5], 0.3, &device);
        let x = cb.icdf(q);
        let back = vals(cb.cdf(x.clone()));
        assert!(back.iter().all(|b| (b - 0.3).abs() < 1e-5), "{back:?}");
        let loss =
            cb.log_prob(x).sum() + cb.entropy().sum() + cb.variance().sum() + cb.mean().sum();
        let grads = loss.backward();
        let g = vals(eta.grad(&grads).unwrap());
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
    }

    #[test]
    fn kl_is_zero_with_itself_and_matches_quadrature() {
        let device = Device::flex();
        let p = ContinuousBernoulli::new(Tensor::<1>::from_floats([1.5], &device));
        let q = ContinuousBernoulli::new(Tensor::<1>::from_floats([-0.7], &device));
        assert!(vals(kl_divergence(&p, &p))[0].abs() < 1e-6);
        // ∫ p (ln p − ln q) dx by the midpoint rule in float64.
        let n = 20000;
        let (lp, lq) = (|x: f64| reference(1.5, x).0, |x: f64| reference(-0.7, x).0);
        let kl: f64 = (0..n)
            .map(|i| {
                let x = (i as f64 + 0.5) / n as f64;
                lp(x).exp() * (lp(x) - lq(x)) / n as f64
            })
            .sum();
        let got = vals(kl_divergence(&p, &q))[0];
        assert!((got - kl).abs() < 1e-5, "{got} vs {kl}");
    }
}
