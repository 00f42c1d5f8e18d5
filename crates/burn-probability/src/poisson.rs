//! The Poisson distribution over counts.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Distribution, Mode, Moments, broadcast_pair, check_param, check_values, lift, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::kl::KlDivergence;
use crate::math::{deviance, gammaincc, log_poisson_mass};
use crate::sampling;

/// A batch of Poisson distributions over the counts `0, 1, 2, …` with rate `λ > 0`
/// (`torch.distributions.Poisson`, `tfd.Poisson`).
///
/// # Mass function
/// ```text
/// ln p(k) = k ln λ − λ − ln Γ(k + 1) = −bd0(k, λ) − ½ ln(2πk) − δ(k)       (k ≥ 1)
/// ```
/// computed in the second, saddle-point form (Loader 2000): `bd0(k, λ) = k ln(k/λ) + λ − k` by
/// a series where `k ≈ λ` and `δ` the remainder of Stirling's formula, so that counts of order
/// 10⁴–10⁵ keep their digits in float32 where the three terms of the first form (each near
/// 6·10⁵ for `k = 58582`) cancel to −6.4. `ln p(0) = −λ`. Mean and variance `λ`; mode `⌊λ⌋`;
/// cdf `P(X ≤ k) = Q(k + 1, λ)` (the regularized upper incomplete gamma function,
/// [`gammaincc`]).
///
/// Counts are carried as whole-number floats; a value that is not a whole number ≥ 0 has mass
/// 0 (`ln p = −∞`), and [`Distribution::check_support`] names it. Not reparameterizable:
/// [`Distribution::sample`] draws by inversion (`λ < 10`) or Hörmann's PTRS
/// ([`sampling::poisson`]).
///
/// # KL divergence
/// ```text
/// KL(p ‖ q) = λ_p ln(λ_p/λ_q) − λ_p + λ_q = bd0(λ_p, λ_q)
/// ```
/// by the same series, so that nearly equal rates give a small KL with its digits.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Distribution, Poisson};
///
/// let device = Device::flex();
/// let p = Poisson::new(Tensor::<1>::from_floats([2.0, 58557.934], &device));
/// let lp: Vec<f32> = p.log_prob(Tensor::<1>::from_floats([0.0, 58582.0], &device))
///     .into_data().iter::<f32>().collect();
/// assert!((lp[0] + 2.0).abs() < 1e-6 && (lp[1] + 6.412_976).abs() < 1e-4);
/// ```
#[derive(Clone, Debug)]
pub struct Poisson<const D: usize> {
    rate: Tensor<D>,
}

impl<const D: usize> Poisson<D> {
    /// From the rate `λ` (the mean).
    pub fn new(rate: Tensor<D>) -> Self {
        Self { rate }
    }

    /// From the log-rate `ln λ` (a network's unconstrained output, as TFP's `log_rate`).
    pub fn from_log_rate(log_rate: Tensor<D>) -> Self {
        Self::new(log_rate.exp())
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The rate `λ`.
    pub fn rate(&self) -> &Tensor<D> {
        &self.rate
    }

    /// `P(X ≤ k) = Q(⌊k⌋ + 1, λ)` (0 below 0). Poisson has no closed-form quantile, so this is
    /// an inherent method rather than the [`Cdf`](crate::Cdf) trait.
    pub fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let rate = lift::<D, DV>(&self.rate);
        let k = value.floor();
        let negative = k.clone().lower_elem(0.0);
        gammaincc(k.clamp_min(0.0) + 1.0, rate).mask_fill(negative, 0.0)
    }
}

/// `−∞` where `value` is not a whole number ≥ 0, else `log_mass` (evaluated on a safe count).
pub(crate) fn on_counts<const DV: usize>(
    value: Tensor<DV>,
    log_mass: impl FnOnce(Tensor<DV>) -> Tensor<DV>,
) -> Tensor<DV> {
    let outside = value
        .clone()
        .lower_elem(0.0)
        .bool_or(value.clone().floor().not_equal(value.clone()));
    let safe = value.clone().mask_fill(outside.clone(), 0.0);
    log_mass(safe).mask_fill(outside, f32::NEG_INFINITY)
}

impl<const D: usize> Distribution<D> for Poisson<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "Poisson";

    fn shape(&self) -> Shape {
        self.rate.shape()
    }

    fn device(&self) -> Device {
        self.rate.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let rate = lift::<D, DV>(&self.rate);
        match fused::poisson_log_prob([value, rate]) {
            Ok(lp) => lp,
            Err([value, rate]) => {
                let [value, rate] = broadcast_pair(value, rate);
                on_counts(value, |k| log_poisson_mass(k, rate))
            }
        }
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("Poisson::sample", sample_shape, &self.shape());
        let rate = lift::<D, DO>(&self.rate.clone().detach()).expand(dims);
        sampling::poisson(rate)
    }

    fn detach(&self) -> Self {
        Self::new(self.rate.clone().detach())
    }

    fn validate(&self) -> Result<()> {
        check_param("Poisson", "rate", "finite and ≥ 0", &self.rate, |r| {
            r.is_finite() && r >= 0.0
        })
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("Poisson", "the counts 0, 1, 2, …", value, |v| {
            v >= 0.0 && v.fract() == 0.0
        })
    }
}

impl<const D: usize> Moments<D> for Poisson<D> {
    fn mean(&self) -> Tensor<D> {
        self.rate.clone()
    }
    fn variance(&self) -> Tensor<D> {
        self.rate.clone()
    }
}

impl<const D: usize> Mode<D> for Poisson<D> {
    fn mode(&self) -> Tensor<D> {
        self.rate.clone().floor()
    }
}

impl<const D: usize, const DQ: usize> KlDivergence<Poisson<DQ>, D> for Poisson<D> {
    fn kl_divergence_keepdim(&self, q: &Poisson<DQ>) -> Tensor<D> {
        let rate_q = lift::<DQ, D>(&q.rate);
        let [rate_p, rate_q] = broadcast_pair(self.rate.clone(), rate_q);
        // bd0(0, λ_q) = λ_q: a zero rate has KL λ_q.
        let zero = rate_p.clone().equal_elem(0.0);
        let safe = rate_p.mask_fill(zero.clone(), 1.0);
        deviance(safe, rate_q.clone()).mask_where(zero, rate_q)
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
    fn masses_sum_to_one_and_cdf_is_their_running_sum() {
        let device = Device::flex();
        let p = Poisson::new(Tensor::<1>::full([1], 7.3, &device));
        let ks = Tensor::<1>::from_floats(
            (0..60).map(|k| k as f32).collect::<Vec<_>>().as_slice(),
            &device,
        );
        let mass: Vec<f64> = vals(p.log_prob_with_shape::<1, 1>(ks.clone()))
            .iter()
            .map(|l| l.exp())
            .collect();
        assert!((mass.iter().sum::<f64>() - 1.0).abs() < 1e-5);
        let cdf = vals(p.cdf(ks));
        let mut running = 0.0;
        for (k, m) in mass.iter().enumerate() {
            running += m;
            assert!(
                (cdf[k] - running).abs() < 2e-5,
                "k = {k}: {} vs {running}",
                cdf[k]
            );
        }
    }

    #[test]
    fn non_counts_have_no_mass_and_fail_the_support_check() {
        let device = Device::flex();
        let p = Poisson::new(Tensor::<1>::full([3], 2.0, &device));
        let x = Tensor::<1>::from_floats([2.5, -1.0, 3.0], &device);
        let lp = vals(p.log_prob(x.clone()));
        assert!(lp[0] == f64::NEG_INFINITY && lp[1] == f64::NEG_INFINITY && lp[2].is_finite());
        let err = p.check_support(&x).unwrap_err().to_string();
        assert!(err.contains("Poisson") && err.contains("2.5"), "{err}");
    }

    #[test]
    fn kl_of_nearly_equal_rates_keeps_its_digits() {
        let device = Device::flex();
        let (a, b) = (980.163_15f32 as f64, 980.575_74f32 as f64);
        let p = Poisson::new(Tensor::<1>::full([1], a, &device));
        let q = Poisson::new(Tensor::<1>::full([1], b, &device));
        let want = a * (a / b).ln() - a + b;
        let got = vals(kl_divergence(&p, &q))[0];
        assert!((got - want).abs() < 1e-4 * want, "{got} vs {want}");
        assert!(vals(kl_divergence(&p, &p))[0].abs() < 1e-9);
    }

    #[test]
    fn samples_have_the_mean_and_variance_of_the_rate() {
        let device = Device::flex();
        device.seed(11);
        for rate in [0.3, 4.0, 25.0, 3000.0] {
            let p = Poisson::new(Tensor::<1>::full([1], rate, &device));
            let n = 40_000;
            let x = vals(p.sample_with_shape::<2>(&[n]));
            assert!(x.iter().all(|v| v.fract() == 0.0 && *v >= 0.0));
            let mean = x.iter().sum::<f64>() / n as f64;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            // Standard errors: √(λ/n) for the mean, about λ √(2/n) for the variance.
            let se_mean = (rate / n as f64).sqrt();
            let se_var = rate * (2.0 / n as f64).sqrt() + (rate / n as f64);
            assert!(
                (mean - rate).abs() < 4.0 * se_mean,
                "rate {rate}: mean {mean}"
            );
            assert!(
                (var - rate).abs() < 5.0 * se_var,
                "rate {rate}: variance {var}"
            );
        }
    }
}
