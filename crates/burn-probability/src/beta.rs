//! The Beta distribution.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Distribution, Entropy, Mode, Moments, Param, Rsample, broadcast_pair, broadcast_params,
    check_param, check_values, lift, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::kl::KlDivergence;
use crate::math::{beta_sample_grad, betainc, digamma_difference, lbeta, log1p};
use crate::sampling::standard_gamma;

/// A batch of Beta distributions on `[0, 1]` with concentrations `a > 0` (`concentration1`,
/// the weight of 1) and `b > 0` (`concentration0`, the weight of 0) (scipy's `beta(a, b)`,
/// `torch.distributions.Beta`, `tfd.Beta`): the prior and posterior of a probability,
/// conjugate to the Bernoulli and the binomial.
///
/// # Density function
/// ```text
/// ln p(x) = (a − 1) ln x + (b − 1) ln(1 − x) − ln B(a, b)          0 ≤ x ≤ 1
/// ```
/// with `ln(1 − x)` as `ln1p(−x)` and [`lbeta`] free of cancellation for large `a, b`; `−∞`
/// outside `[0, 1]`, and at 0 and 1 the limits (`+∞`, the finite value, or `−∞`). cdf
/// `I_x(a, b)` (the regularized incomplete beta function, [`betainc`], an inherent method);
/// mean `a/(a + b)`; variance `ab/((a + b)²(a + b + 1))`; mode `(a − 1)/(a + b − 2)` for
/// `a, b > 1` (0 or 1 when only one exceeds 1, `NaN` when neither does); entropy
/// `ln B(a, b) − (a − 1)ψ(a) − (b − 1)ψ(b) + (a + b − 2)ψ(a + b)`, computed from the digamma
/// differences `ψ(a + b) − ψ(a)` without their cancellation.
///
/// # Sampling
/// [`Rsample::noise`] draws the sample itself, `x = g₁/(g₁ + g₀)` from two Gamma variates
/// `g₁ ~ Gamma(a, 1)`, `g₀ ~ Gamma(b, 1)` (each at least the smallest positive float32, so
/// that tiny concentrations give no `0/0`), kept in `[2⁻¹²⁶, 1 − 2⁻²⁴]`: the density of a
/// sample stays finite even where it is unbounded at 0 or 1 (concentrations below 1). Its gradient is the implicit reparameterization
/// gradient through Beta's own cdf, `dx/da = −(∂I_x/∂a)/p(x)` and likewise for `b`
/// ([`beta_sample_grad`], Figurnov, Mohamed and Mnih, 2018); the gradient of `g₁/(g₁ + g₀)`
/// through two Gamma samples would differ per sample, agreeing only in expectation.
///
/// # KL divergence
/// ```text
/// KL(p ‖ q) = ln B(a_q, b_q) − ln B(a_p, b_p) + (a_p − a_q) ψ(a_p) + (b_p − b_q) ψ(b_p)
///             + (a_q − a_p + b_q − b_p) ψ(a_p + b_p)
/// ```
/// computed as `ln B(a_q, b_q) − ln B(a_p, b_p) − (a_p − a_q)(ψ(a_p + b_p) − ψ(a_p))
/// − (b_p − b_q)(ψ(a_p + b_p) − ψ(b_p))`.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Beta, Distribution, Moments};
///
/// let device = Device::flex();
/// // A coin with 7 heads in 10 tosses under a uniform prior: Beta(8, 4).
/// let posterior = Beta::new(Tensor::<1>::from_floats([8.0], &device), 4.0);
/// let mean: f32 = posterior.mean().into_scalar();
/// assert!((mean - 2.0 / 3.0).abs() < 1e-6);
/// let below_half: f32 = posterior.cdf(Tensor::<1>::from_floats([0.5], &device)).into_scalar();
/// assert!((below_half - 0.113_281_25).abs() < 1e-5);   // P(Bin(11, ½) ≥ 8) = 232/2048
/// ```
#[derive(Clone, Debug)]
pub struct Beta<const D: usize> {
    concentration1: Tensor<D>,
    concentration0: Tensor<D>,
}

impl<const D: usize> Beta<D> {
    /// `Beta(concentration1, concentration0)`, the parameters broadcast to a common shape
    /// (either may be a scalar; see [`Param`]).
    ///
    /// # Panics
    /// If the shapes do not broadcast or both are scalars; the message is
    /// [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new(concentration1: impl Into<Param<D>>, concentration0: impl Into<Param<D>>) -> Self {
        Self::try_new(concentration1, concentration0).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`](crate::Error) instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming the parameter whose
    /// shape does not broadcast, or both when both are scalars.
    pub fn try_new(
        concentration1: impl Into<Param<D>>,
        concentration0: impl Into<Param<D>>,
    ) -> Result<Self> {
        let [concentration1, concentration0] = broadcast_params(
            "Beta",
            [
                ("concentration1", concentration1.into()),
                ("concentration0", concentration0.into()),
            ],
        )?;
        Ok(Self {
            concentration1,
            concentration0,
        })
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The concentration `a` of 1.
    pub fn concentration1(&self) -> &Tensor<D> {
        &self.concentration1
    }

    /// The concentration `b` of 0.
    pub fn concentration0(&self) -> &Tensor<D> {
        &self.concentration0
    }

    /// The cumulative distribution function `I_x(a, b)` on `x` clamped to `[0, 1]`,
    /// differentiable in the value and in both parameters.
    pub fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let x = value.clamp(0.0, 1.0);
        let a = lift::<D, DV>(&self.concentration1);
        let b = lift::<D, DV>(&self.concentration0);
        let [x, a] = broadcast_pair(x, a);
        let [x, b] = broadcast_pair(x, b);
        let a = a + x.zeros_like();
        betainc(a, b, x)
    }
}

impl<const D: usize> Distribution<D> for Beta<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "Beta";

    fn shape(&self) -> Shape {
        self.concentration1.shape()
    }

    fn device(&self) -> Device {
        self.concentration1.device()
    }

    /// The formula on `x` clamped into `(0, 1)`, then the limits at 0 and 1 and `−∞` outside,
    /// so that no `NaN` reaches the value or the gradient.
    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let a = lift::<D, DV>(&self.concentration1);
        let b = lift::<D, DV>(&self.concentration0);
        let [x, a] = broadcast_pair(value, a);
        let [x, b] = broadcast_pair(x, b);
        let a = a + x.zeros_like();
        let [x, a, b] = match fused::beta_log_prob([x, a, b]) {
            Ok(lp) => return lp,
            Err(inputs) => inputs,
        };
        let outside = x
            .clone()
            .lower_elem(0.0)
            .bool_or(x.clone().greater_elem(1.0));
        let at_0 = x.clone().equal_elem(0.0);
        let at_1 = x.clone().equal_elem(1.0);
        let xs = x.clamp(f32::MIN_POSITIVE, 1.0 - f32::EPSILON / 2.0);
        let lp = (a.clone() - 1.0) * xs.clone().log() + (b.clone() - 1.0) * log1p(-xs)
            - lbeta(a.clone(), b.clone());
        let limit = |lp: Tensor<DV>, at: Tensor<DV, burn::tensor::Bool>, c: Tensor<DV>| {
            let up = at.clone().bool_and(c.clone().lower_elem(1.0));
            let down = at.bool_and(c.greater_elem(1.0));
            lp.mask_fill(up, f32::INFINITY)
                .mask_fill(down, f32::NEG_INFINITY)
        };
        let lp = limit(lp, at_0, a);
        let lp = limit(lp, at_1, b);
        lp.mask_fill(outside, f32::NEG_INFINITY)
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.noise(sample_shape)
    }

    fn detach(&self) -> Self {
        Self {
            concentration1: self.concentration1.clone().detach(),
            concentration0: self.concentration0.clone().detach(),
        }
    }

    fn validate(&self) -> Result<()> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        check_param(
            "Beta",
            "concentration1",
            "finite and > 0",
            &self.concentration1,
            positive,
        )?;
        check_param(
            "Beta",
            "concentration0",
            "finite and > 0",
            &self.concentration0,
            positive,
        )
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("Beta", "[0, 1]", value, |v| (0.0..=1.0).contains(&v))
    }
}

impl<const D: usize> Rsample<D> for Beta<D> {
    /// The sample itself, `g₁/(g₁ + g₀)` from Gamma variates (no gradient): the implicit
    /// gradient is added by [`Self::rsample_with_noise`].
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("Beta::noise", sample_shape, &self.shape());
        let a = lift::<D, DO>(&self.concentration1.clone().detach()).expand(dims);
        let b = lift::<D, DO>(&self.concentration0.clone().detach()).expand(dims);
        let g1 = standard_gamma(a);
        let g0 = standard_gamma(b);
        (g1.clone() / (g1 + g0)).clamp(f32::MIN_POSITIVE, 1.0 - f32::EPSILON / 2.0)
    }

    /// `x`, with the implicit gradients in `a` and `b` when they are tracked.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        let a = lift::<D, DO>(&self.concentration1);
        let b = lift::<D, DO>(&self.concentration0);
        if !a.is_tracked() && !b.is_tracked() {
            return noise;
        }
        let x = noise.detach();
        let [x, a] = broadcast_pair(x, a);
        let [x, b] = broadcast_pair(x, b);
        let a = a + x.zeros_like();
        let [da, db] = beta_sample_grad(a.clone(), b.clone(), x.clone());
        x + (a.clone() - a.detach()) * da + (b.clone() - b.detach()) * db
    }
}

impl<const D: usize> Entropy<D> for Beta<D> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        let (a, b) = (self.concentration1.clone(), self.concentration0.clone());
        lbeta(a.clone(), b.clone())
            + (a.clone() - 1.0) * digamma_difference(a.clone(), b.clone())
            + (b.clone() - 1.0) * digamma_difference(b, a)
    }
}

impl<const D: usize> Moments<D> for Beta<D> {
    fn mean(&self) -> Tensor<D> {
        let (a, b) = (self.concentration1.clone(), self.concentration0.clone());
        a.clone() / (a + b)
    }
    fn variance(&self) -> Tensor<D> {
        let (a, b) = (self.concentration1.clone(), self.concentration0.clone());
        let total = a.clone() + b.clone();
        a * b / (total.clone().square() * (total + 1.0))
    }
}

impl<const D: usize> Mode<D> for Beta<D> {
    /// `(a − 1)/(a + b − 2)` for `a, b > 1`; 0 for `a ≤ 1 < b`, 1 for `b ≤ 1 < a`; `NaN` when
    /// both are at most 1 (no unique mode).
    fn mode(&self) -> Tensor<D> {
        let (a, b) = (self.concentration1.clone(), self.concentration0.clone());
        let interior = (a.clone() - 1.0) / (a.clone() + b.clone() - 2.0);
        let a_low = a.lower_equal_elem(1.0);
        let b_low = b.lower_equal_elem(1.0);
        interior
            .mask_fill(a_low.clone(), 0.0)
            .mask_fill(b_low.clone(), 1.0)
            .mask_fill(a_low.bool_and(b_low), f32::NAN)
    }
}

/// The closed form of the type's documentation.
impl<const D: usize, const DQ: usize> KlDivergence<Beta<DQ>, D> for Beta<D> {
    fn kl_divergence_keepdim(&self, q: &Beta<DQ>) -> Tensor<D> {
        let (ap, bp) = (self.concentration1.clone(), self.concentration0.clone());
        let aq = lift::<DQ, D>(&q.concentration1);
        let bq = lift::<DQ, D>(&q.concentration0);
        lbeta(aq.clone(), bq.clone())
            - lbeta(ap.clone(), bp.clone())
            - (ap.clone() - aq) * digamma_difference(ap.clone(), bp.clone())
            - (bp.clone() - bq) * digamma_difference(bp, ap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Device {
        Device::flex()
    }

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    #[test]
    fn log_prob_matches_closed_forms() {
        // Beta(2, 3): 12 x (1 − x)²; Beta(1, 1): uniform; Beta(½, ½): 1/(π √(x(1 − x))).
        let d = Beta::new(
            Tensor::<1>::from_floats([2.0, 1.0, 0.5], &dev()),
            Tensor::<1>::from_floats([3.0, 1.0, 0.5], &dev()),
        );
        let got = vals(d.log_prob(Tensor::from_floats([0.3, 0.8, 0.25], &dev())));
        let want = [
            (12.0f64 * 0.3 * 0.49).ln(),
            0.0,
            -(std::f64::consts::PI * (0.25f64 * 0.75).sqrt()).ln(),
        ];
        for i in 0..3 {
            assert!(
                (got[i] - want[i]).abs() < 2e-6,
                "{i}: {} vs {}",
                got[i],
                want[i]
            );
        }
    }

    #[test]
    fn log_prob_at_the_ends_takes_its_limits() {
        let d = Beta::new(
            Tensor::<1>::from_floats([0.5, 1.0, 2.0, 2.0], &dev()),
            Tensor::<1>::from_floats([2.0, 3.0, 0.5, 2.0], &dev()),
        );
        let got = vals(d.log_prob(Tensor::from_floats([0.0, 0.0, 1.0, 1.5], &dev())));
        assert_eq!(got[0], f64::INFINITY);
        assert!((got[1] - 3f64.ln()).abs() < 1e-6, "{}", got[1]);
        assert_eq!(got[2], f64::INFINITY);
        assert_eq!(got[3], f64::NEG_INFINITY);
    }

    #[test]
    fn mode_covers_every_case() {
        let d = Beta::new(
            Tensor::<1>::from_floats([3.0, 0.5, 4.0, 0.5], &dev()),
            Tensor::<1>::from_floats([2.0, 3.0, 1.0, 0.5], &dev()),
        );
        let m = vals(d.mode());
        assert!((m[0] - 2.0 / 3.0).abs() < 1e-6 && m[1] == 0.0 && m[2] == 1.0 && m[3].is_nan());
    }

    #[test]
    fn kl_is_zero_for_equal_and_positive_otherwise() {
        let p = Beta::new(
            Tensor::<1>::from_floats([0.5, 3.0], &dev()),
            Tensor::<1>::from_floats([1.0, 2.0], &dev()),
        );
        let q = Beta::new(
            Tensor::<1>::from_floats([0.5, 4.0], &dev()),
            Tensor::<1>::from_floats([1.0, 2.0], &dev()),
        );
        let kl = vals(crate::kl_divergence(&p, &q));
        assert!(kl[0].abs() < 1e-6 && kl[1] > 0.01, "{kl:?}");
    }
}
