//! The binomial distribution, parameterized by logits.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::broadcast_pair;
use crate::distribution::{
    Distribution, Entropy, Mode, Moments, broadcast_params, check_param, check_values, lift,
    sample_dims,
};
use crate::error::{Error, Result};
use crate::fused;
use crate::math::{betainc, deviance_with_log, log_sigmoid, logit, sigmoid, stirling_remainder};
use crate::poisson::on_counts;
use crate::sampling;

/// A batch of binomial distributions: the number of successes in `n` independent trials
/// (`total_count`, a whole number) each succeeding with probability `p = σ(ℓ)`, parameterized
/// by logits `ℓ` (`torch.distributions.Binomial`, `tfd.Binomial`).
///
/// # Mass function
/// ```text
/// ln p(k) = ln C(n, k) + k ln σ(ℓ) + (n − k) ln σ(−ℓ)                          k ∈ {0, …, n}
///         = δ(n) − δ(k) − δ(n−k) − bd0(k, np) − bd0(n−k, nq) + ½ ln(n / (2π k (n−k)))
/// ```
/// computed in the second, saddle-point form (Loader 2000) for `0 < k < n`, with
/// `bd0(k, m) = k ln(k/m) + m − k` (its logarithm taken as `ln n + ln σ(ℓ)`, so that logits of
/// ±100 stay exact) and `δ` the remainder of Stirling's formula; `n ln σ(∓ℓ)` at `k = 0, n`.
/// Mean `np`, variance `npq`, mode `min(⌊(n + 1)p⌋, n)`; entropy the exact sum
/// `−Σₖ p(k) ln p(k)` over `0..=n`; cdf `P(X ≤ k) = I_q(n − k, k + 1)` (the regularized
/// incomplete beta function, [`betainc`]).
///
/// Counts and `total_count` are whole-number floats; a value that is not a whole number in
/// `0..=n` has mass 0 (`ln p = −∞`), and [`Distribution::check_support`] names it. Not
/// reparameterizable: [`Distribution::sample`] draws by inversion (`np < 10`) or Hörmann's
/// BTRS ([`sampling::binomial`]).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Binomial, Distribution, Moments};
///
/// let device = Device::flex();
/// let b = Binomial::new(10.0, Tensor::<1>::zeros([2], &device));   // n = 10, p = ½
/// let lp: Vec<f32> = b.log_prob(Tensor::<1>::from_floats([5.0, 0.0], &device))
///     .into_data().iter::<f32>().collect();
/// assert!((lp[0] - (252.0f32 / 1024.0).ln()).abs() < 1e-5);
/// assert!((lp[1] + 10.0 * 2f32.ln()).abs() < 1e-5);
/// ```
#[derive(Clone, Debug)]
pub struct Binomial<const D: usize> {
    total_count: Tensor<D>,
    logits: Tensor<D>,
}

impl<const D: usize> Binomial<D> {
    /// `Binomial(total_count, logits)` from tensors whose shapes broadcast, or scalars (at
    /// least one tensor; see [`Param`](crate::Param)).
    ///
    /// # Panics
    /// If the shapes do not broadcast, or both are scalars; the message is [`Self::try_new`]'s
    /// error.
    #[track_caller]
    pub fn new(
        total_count: impl Into<crate::Param<D>>,
        logits: impl Into<crate::Param<D>>,
    ) -> Self {
        Self::try_new(total_count, logits).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] naming both shapes; [`Error::InvalidArgument`] if both are
    /// scalars.
    pub fn try_new(
        total_count: impl Into<crate::Param<D>>,
        logits: impl Into<crate::Param<D>>,
    ) -> Result<Self> {
        let [total_count, logits] = broadcast_params(
            "Binomial",
            [
                ("total_count", total_count.into()),
                ("logits", logits.into()),
            ],
        )?;
        Ok(Self {
            total_count,
            logits,
        })
    }

    /// From probabilities `p ∈ [0, 1]`, converted to logits after clamping to `[ε, 1 − ε]`,
    /// `ε = 2⁻²³`.
    #[track_caller]
    pub fn from_probs(total_count: impl Into<crate::Param<D>>, probs: Tensor<D>) -> Self {
        let eps = f32::EPSILON;
        Self::new(total_count, logit(probs.clamp(eps, 1.0 - eps)))
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The number of trials `n`.
    pub fn total_count(&self) -> &Tensor<D> {
        &self.total_count
    }

    /// The logits `ℓ`.
    pub fn logits(&self) -> &Tensor<D> {
        &self.logits
    }

    /// The success probabilities `σ(ℓ)`.
    pub fn probs(&self) -> Tensor<D> {
        sigmoid(self.logits.clone())
    }

    /// `P(X ≤ k) = I_{1−p}(n − ⌊k⌋, ⌊k⌋ + 1)` (0 below 0, 1 from `n` on). The binomial has no
    /// closed-form quantile, so this is an inherent method rather than the
    /// [`Cdf`](crate::Cdf) trait.
    pub fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let n = lift::<D, DV>(&self.total_count);
        let logits = lift::<D, DV>(&self.logits);
        let [k, n] = broadcast_pair(value.floor(), n);
        let [k, logits] = broadcast_pair(k, logits);
        let [n, _] = broadcast_pair(n, k.clone());
        let below = k.clone().lower_elem(0.0);
        let full = k.clone().greater_equal(n.clone());
        let ks = k.clamp_min(0.0).mask_where(full.clone(), n.clone() - 1.0);
        let cdf = betainc(n - ks.clone(), ks + 1.0, sigmoid(-logits));
        cdf.mask_fill(below, 0.0).mask_fill(full, 1.0)
    }
}

/// `ln P(X = k)` of `Binomial(n, p)` given `ln p` and `ln q = ln(1 − p)`, in Loader's
/// saddle-point form for `0 < k < n` and `n ln q`, `n ln p` at the ends.
pub(crate) fn log_binomial_mass<const D: usize>(
    k: Tensor<D>,
    n: Tensor<D>,
    ln_p: Tensor<D>,
    ln_q: Tensor<D>,
) -> Tensor<D> {
    let zero = k.clone().lower_equal_elem(0.0);
    let all = k.clone().greater_equal(n.clone());
    let interior = zero.clone().bool_or(all.clone()).bool_not();
    // Safe arguments for the interior form: 1 ≤ k ≤ n − 1 with n ≥ 2.
    let ns = n
        .clone()
        .mask_where(interior.clone().bool_not(), n.ones_like() * 2.0);
    let ks = k.clone().mask_where(interior.bool_not(), n.ones_like());
    let rest = ns.clone() - ks.clone();
    let ln_n = ns.clone().log();
    let np = (ln_n.clone() + ln_p.clone()).exp();
    let nq = (ln_n.clone() + ln_q.clone()).exp();
    let interior_mass = stirling_remainder(ns.clone())
        - stirling_remainder(ks.clone())
        - stirling_remainder(rest.clone())
        - deviance_with_log(ks.clone(), np, ln_n.clone() + ln_p.clone())
        - deviance_with_log(rest.clone(), nq, ln_n.clone() + ln_q.clone())
        + (ln_n - (ks * rest * core::f64::consts::TAU).log()) * 0.5;
    interior_mass
        .mask_where(zero, n.clone() * ln_q)
        .mask_where(all, n * ln_p)
}

impl<const D: usize> Distribution<D> for Binomial<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "Binomial";

    fn shape(&self) -> Shape {
        self.logits.shape()
    }

    fn device(&self) -> Device {
        self.logits.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let n = lift::<D, DV>(&self.total_count);
        let logits = lift::<D, DV>(&self.logits);
        let [value, n, logits] = match fused::binomial_log_prob([value, n, logits]) {
            Ok(lp) => return lp,
            Err(inputs) => inputs,
        };
        let [value, n] = broadcast_pair(value, n);
        let [value, logits] = broadcast_pair(value, logits);
        let [n, _] = broadcast_pair(n, value.clone());
        let above = value.clone().greater(n.clone());
        let lp = on_counts(value, |k| {
            let ln_p = log_sigmoid(logits.clone());
            let ln_q = log_sigmoid(-logits);
            log_binomial_mass(k.clone().mask_fill(above.clone(), 0.0), n, ln_p, ln_q)
        });
        lp.mask_fill(above, f32::NEG_INFINITY)
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("Binomial::sample", sample_shape, &self.shape());
        let n = lift::<D, DO>(&self.total_count.clone().detach()).expand(dims);
        let p = lift::<D, DO>(&self.probs().detach()).expand(dims);
        sampling::binomial(n, p)
    }

    fn detach(&self) -> Self {
        Self {
            total_count: self.total_count.clone().detach(),
            logits: self.logits.clone().detach(),
        }
    }

    fn validate(&self) -> Result<()> {
        check_param(
            "Binomial",
            "total_count",
            "a whole number ≥ 0",
            &self.total_count,
            |n| n >= 0.0 && n.fract() == 0.0,
        )?;
        check_param("Binomial", "logits", "not NaN", &self.logits, |l| {
            !l.is_nan()
        })
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("Binomial", "the counts 0, 1, 2, …", value, |v| {
            v >= 0.0 && v.fract() == 0.0
        })?;
        let n = lift::<D, DV>(&self.total_count);
        let [v, n] = broadcast_pair(value.clone(), n);
        let vs: Vec<f64> = v.into_data().iter::<f64>().collect();
        let ns: Vec<f64> = n.into_data().iter::<f64>().collect();
        if let Some(index) = vs.iter().zip(&ns).position(|(v, n)| v > n) {
            return Err(Error::OutsideSupport {
                distribution: "Binomial",
                support: "the counts 0..=total_count",
                value: vs[index],
                index,
            });
        }
        Ok(())
    }
}

impl<const D: usize> Moments<D> for Binomial<D> {
    fn mean(&self) -> Tensor<D> {
        self.total_count.clone() * self.probs()
    }
    fn variance(&self) -> Tensor<D> {
        self.total_count.clone() * self.probs() * sigmoid(-self.logits.clone())
    }
}

impl<const D: usize> Mode<D> for Binomial<D> {
    fn mode(&self) -> Tensor<D> {
        let m = ((self.total_count.clone() + 1.0) * self.probs()).floor();
        let n = self.total_count.clone();
        m.clone().mask_where(m.greater(n.clone()), n)
    }
}

impl<const D: usize> Entropy<D> for Binomial<D> {
    /// `−Σₖ p(k) ln p(k)` over `k = 0..=max n` (terms past each member's own `n` are 0).
    fn entropy_keepdim(&self) -> Tensor<D> {
        let max_n = self.total_count.clone().max().into_scalar::<f64>().max(0.0) as usize;
        let mut h = self.logits.zeros_like();
        for k in 0..=max_n {
            let lp = self.log_prob_keepdim::<D>(self.logits.zeros_like() + k as f64);
            let finite = lp.clone().is_finite();
            let term = (lp.clone().exp() * lp).mask_fill(finite.bool_not(), 0.0);
            h = h - term;
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    /// `ln C(n, k) + k ln p + (n − k) ln q` in float64.
    fn reference(n: u64, k: u64, p: f64) -> f64 {
        let ln_choose: f64 = (1..=k).map(|i| ((n - k + i) as f64 / i as f64).ln()).sum();
        ln_choose + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln()
    }

    #[test]
    fn log_mass_matches_float64_at_the_ends_inside_and_for_large_counts() {
        let device = Device::flex();
        let logit = 0.3f32;
        let p = 1.0 / (1.0 + (-(logit as f64)).exp());
        let b = Binomial::new(
            Tensor::<1>::from_floats([20.0, 20.0, 20.0, 5000.0], &device),
            logit as f64,
        );
        let lp = vals(b.log_prob(Tensor::<1>::from_floats([0.0, 7.0, 20.0, 2870.0], &device)));
        for (got, (n, k)) in lp.iter().zip([(20, 0), (20, 7), (20, 20), (5000, 2870)]) {
            let want = reference(n, k, p);
            assert!(
                (got - want).abs() < 2e-5 * (1.0 + want.abs()),
                "{n}, {k}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn masses_sum_to_one_cdf_is_their_running_sum_and_values_outside_have_no_mass() {
        let device = Device::flex();
        let b = Binomial::new(Tensor::<1>::full([1], 12.0, &device), -0.4);
        let ks = Tensor::<1>::from_floats(
            (0..=12).map(|k| k as f32).collect::<Vec<_>>().as_slice(),
            &device,
        );
        let mass: Vec<f64> = vals(b.log_prob_with_shape::<1, 1>(ks.clone()))
            .iter()
            .map(|l| l.exp())
            .collect();
        assert!((mass.iter().sum::<f64>() - 1.0).abs() < 1e-5);
        let cdf = vals(b.cdf(ks));
        let mut running = 0.0;
        for (k, m) in mass.iter().enumerate() {
            running += m;
            assert!(
                (cdf[k] - running).abs() < 2e-5,
                "k = {k}: {} vs {running}",
                cdf[k]
            );
        }
        let lp = vals(b.log_prob(Tensor::<1>::from_floats([13.0], &device)));
        assert_eq!(lp[0], f64::NEG_INFINITY);
        let err = b
            .check_support(&Tensor::<1>::from_floats([13.0], &device))
            .unwrap_err();
        assert!(err.to_string().contains("total_count"), "{err}");
    }

    #[test]
    fn samples_have_the_binomial_mean_and_variance() {
        let device = Device::flex();
        device.seed(5);
        for (n, logit) in [(7.0, -0.5f64), (30.0, 1.2), (400.0, 0.3), (10_000.0, -2.0)] {
            let b = Binomial::new(Tensor::<1>::full([1], n, &device), logit);
            let p = 1.0 / (1.0 + (-logit).exp());
            let m = 40_000;
            let x = vals(b.sample_with_shape::<2>(&[m]));
            assert!(x.iter().all(|v| v.fract() == 0.0 && *v >= 0.0 && *v <= n));
            let mean = x.iter().sum::<f64>() / m as f64;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1) as f64;
            let (mu, sigma2) = (n * p, n * p * (1.0 - p));
            assert!(
                (mean - mu).abs() < 4.0 * (sigma2 / m as f64).sqrt(),
                "{n}, {p}: mean {mean}"
            );
            assert!(
                (var - sigma2).abs() < 5.0 * sigma2 * (2.0 / m as f64).sqrt() + 0.01,
                "{n}, {p}: var {var} vs {sigma2}"
            );
        }
    }
}
