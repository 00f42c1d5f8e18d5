//! The Gamma distribution.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Distribution, Entropy, Mode, Moments, Param, Rsample, broadcast_pair, broadcast_params,
    check_param, check_values, lift, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::kl::KlDivergence;
use crate::math::{digamma, gammainc, lgamma, log_poisson_mass, standard_gamma_grad};
use crate::sampling::standard_gamma;

/// A batch of Gamma distributions with shape `α > 0` (`concentration`) and rate `λ > 0`
/// (scipy's `gamma(a=α, scale=1/λ)`, `torch.distributions.Gamma`, `tfd.Gamma`): the prior of
/// positive rates and precisions, conjugate to the Poisson and the Normal precision.
///
/// # Density function
/// ```text
/// ln p(x) = α ln λ + (α − 1) ln x − λx − ln Γ(α)          x > 0
/// ```
/// computed for `α ≥ 1` as `ln λ + ln Poisson(α − 1; λx)` in Loader's saddle-point form, which
/// keeps its digits where the four terms cancel (`α` in the hundreds), and directly below 1;
/// `−∞` for `x < 0`. cdf `P(α, λx)` (the regularized lower incomplete gamma function,
/// [`gammainc`], an inherent method: there is no closed-form quantile); mean `α/λ`; variance
/// `α/λ²`; mode `(α − 1)/λ` for `α ≥ 1`, else 0; entropy
/// `α − ln λ + ln Γ(α) + (1 − α) ψ(α)`.
///
/// # Sampling
/// [`Rsample::noise`] draws `z ~ Gamma(α, 1)` (Marsaglia and Tsang's method,
/// [`standard_gamma`]); the sample is `z/λ`. Its gradient in `λ` is exact; its gradient in `α`
/// is the implicit reparameterization gradient (Figurnov, Mohamed and Mnih, 2018),
/// `dz/dα = −(∂P(α, z)/∂α)/p(z; α)` ([`standard_gamma_grad`]): the derivative of the sample at
/// fixed uniform noise `u = P(α, z)`.
///
/// # KL divergence
/// ```text
/// KL(p ‖ q) = α_q ln(λ_p/λ_q) + ln Γ(α_q) − ln Γ(α_p) + (α_p − α_q) ψ(α_p) + (λ_q − λ_p) α_p/λ_p
/// ```
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Distribution, Gamma, Moments, Rsample};
///
/// let device = Device::flex().autodiff();
/// let alpha = Tensor::<1>::from_floats([2.0, 0.5], &device).require_grad();
/// let d = Gamma::new(alpha.clone(), 3.0);
/// let mean: Vec<f32> = d.mean().into_data().iter::<f32>().collect();
/// assert_eq!(mean, vec![2.0 / 3.0, 0.5 / 3.0]);
/// // Reparameterized draws: the gradient reaches the concentration.
/// let x: Tensor<2> = d.rsample_n(1000);
/// let grads = x.mean_dim(0).sum().backward();    // the mean over the draws, per member
/// let g: Vec<f32> = alpha.grad(&grads).unwrap().into_data().iter::<f32>().collect();
/// // d E[x]/dα = 1/λ = 1/3 in expectation; each is a mean of 1000 draws.
/// assert!(g.iter().all(|g| (g - 1.0 / 3.0).abs() < 0.05), "{g:?}");
/// ```
#[derive(Clone, Debug)]
pub struct Gamma<const D: usize> {
    concentration: Tensor<D>,
    rate: Tensor<D>,
}

impl<const D: usize> Gamma<D> {
    /// `Gamma(concentration, rate)`, the parameters broadcast to a common shape (either may be
    /// a scalar; see [`Param`]).
    ///
    /// # Panics
    /// If the shapes do not broadcast or both are scalars; the message is
    /// [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new(concentration: impl Into<Param<D>>, rate: impl Into<Param<D>>) -> Self {
        Self::try_new(concentration, rate).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`](crate::Error) instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming the parameter whose
    /// shape does not broadcast, or both when both are scalars.
    pub fn try_new(concentration: impl Into<Param<D>>, rate: impl Into<Param<D>>) -> Result<Self> {
        let [concentration, rate] = broadcast_params(
            "Gamma",
            [
                ("concentration", concentration.into()),
                ("rate", rate.into()),
            ],
        )?;
        Ok(Self {
            concentration,
            rate,
        })
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The concentration (shape) `α`.
    pub fn concentration(&self) -> &Tensor<D> {
        &self.concentration
    }

    /// The rate `λ` (the inverse of scipy's `scale`).
    pub fn rate(&self) -> &Tensor<D> {
        &self.rate
    }

    /// The cumulative distribution function `P(α, λx)` (0 below the support), differentiable
    /// in the value and in both parameters.
    pub fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let x = lift::<D, DV>(&self.rate) * value.clamp_min(0.0);
        let [a, x] = broadcast_pair(lift::<D, DV>(&self.concentration), x);
        gammainc(a, x)
    }
}

/// `ln p(x)` for `α, λ` broadcast to the value's shape, `−∞` below 0 and the limits
/// (`ln λ`, `+∞` or `−∞`) at 0.
pub(crate) fn gamma_log_prob<const DV: usize>(
    x: Tensor<DV>,
    alpha: Tensor<DV>,
    rate: Tensor<DV>,
) -> Tensor<DV> {
    let below = x.clone().lower_elem(0.0);
    let at_zero = x.clone().equal_elem(0.0);
    let m = rate.clone() * x.clamp_min(f32::MIN_POSITIVE);
    let large = alpha.clone().greater_equal_elem(1.0);
    let small = alpha.clone().lower_elem(1.0);
    let k = alpha.clone() - 1.0;
    // Each branch sees `m = 1` where the other is taken, so that neither feeds a NaN
    // gradient through the mask.
    let ones = m.ones_like();
    let saddle = log_poisson_mass(
        k.clone().clamp_min(0.0),
        m.clone().mask_where(small.clone(), ones.clone()),
    );
    let a_small = alpha.clone().clamp_max(1.0);
    let md = m.mask_where(large.clone(), ones);
    let direct = k.clone().clamp_max(0.0) * md.clone().log() - md - lgamma(a_small);
    let lp = rate.log() + direct.mask_where(large, saddle);
    let up = at_zero.clone().bool_and(small);
    let down = at_zero.bool_and(alpha.greater_elem(1.0));
    lp.mask_fill(up, f32::INFINITY)
        .mask_fill(down, f32::NEG_INFINITY)
        .mask_fill(below, f32::NEG_INFINITY)
}

/// `z + (α − stop_gradient(α))·dz/dα`: the value `z`, with the implicit gradient in `α` when
/// `α` is tracked.
pub(crate) fn with_implicit_gradient<const DO: usize>(
    z: Tensor<DO>,
    alpha: Tensor<DO>,
) -> Tensor<DO> {
    if !alpha.is_tracked() {
        return z;
    }
    let z = z.detach();
    let [z, alpha] = broadcast_pair(z, alpha);
    let grad = standard_gamma_grad(alpha.clone(), z.clone());
    z + (alpha.clone() - alpha.detach()) * grad
}

impl<const D: usize> Distribution<D> for Gamma<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "Gamma";

    fn shape(&self) -> Shape {
        self.concentration.shape()
    }

    fn device(&self) -> Device {
        self.concentration.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let alpha = lift::<D, DV>(&self.concentration);
        let rate = lift::<D, DV>(&self.rate);
        let [x, alpha] = broadcast_pair(value, alpha);
        let [x, rate] = broadcast_pair(x, rate);
        let alpha = alpha + x.zeros_like();
        match fused::gamma_log_prob([x, alpha, rate]) {
            Ok(lp) => lp,
            Err([x, alpha, rate]) => gamma_log_prob(x, alpha, rate),
        }
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().rsample_with_shape(sample_shape)
    }

    fn detach(&self) -> Self {
        Self {
            concentration: self.concentration.clone().detach(),
            rate: self.rate.clone().detach(),
        }
    }

    fn validate(&self) -> Result<()> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        check_param(
            "Gamma",
            "concentration",
            "finite and > 0",
            &self.concentration,
            positive,
        )?;
        check_param("Gamma", "rate", "finite and > 0", &self.rate, positive)
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("Gamma", "(0, ∞)", value, |v| v > 0.0)
    }
}

impl<const D: usize> Rsample<D> for Gamma<D> {
    /// `z ~ Gamma(α, 1)`, one per element of `sample_shape ++ shape()` ([`standard_gamma`]).
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("Gamma::noise", sample_shape, &self.shape());
        let alpha = lift::<D, DO>(&self.concentration.clone().detach());
        standard_gamma(alpha.expand(dims))
    }

    /// `z/λ`, differentiable in `λ` and, by the implicit gradient, in `α`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        let z = with_implicit_gradient(noise, lift::<D, DO>(&self.concentration));
        z / lift::<D, DO>(&self.rate)
    }
}

impl<const D: usize> Entropy<D> for Gamma<D> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        let a = self.concentration.clone();
        a.clone() - self.rate.clone().log() + lgamma(a.clone()) - (a.clone() - 1.0) * digamma(a)
    }
}

impl<const D: usize> Moments<D> for Gamma<D> {
    fn mean(&self) -> Tensor<D> {
        self.concentration.clone() / self.rate.clone()
    }
    fn variance(&self) -> Tensor<D> {
        self.concentration.clone() / self.rate.clone().square()
    }
}

impl<const D: usize> Mode<D> for Gamma<D> {
    /// `(α − 1)/λ` for `α ≥ 1`, 0 below (where the density is unbounded at 0).
    fn mode(&self) -> Tensor<D> {
        ((self.concentration.clone() - 1.0) / self.rate.clone()).clamp_min(0.0)
    }
}

/// The closed form of the type's documentation.
impl<const D: usize, const DQ: usize> KlDivergence<Gamma<DQ>, D> for Gamma<D> {
    fn kl_divergence_keepdim(&self, q: &Gamma<DQ>) -> Tensor<D> {
        let (ap, bp) = (self.concentration.clone(), self.rate.clone());
        let aq = lift::<DQ, D>(&q.concentration);
        let bq = lift::<DQ, D>(&q.rate);
        aq.clone() * (bp.clone().log() - bq.clone().log()) + lgamma(aq.clone()) - lgamma(ap.clone())
            + (ap.clone() - aq) * digamma(ap.clone())
            + (bq - bp.clone()) * ap / bp
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
    fn log_prob_matches_the_direct_formula_in_f64() {
        let alpha = [0.3f64, 1.0, 2.5, 40.0];
        let rate = [2.0f64, 0.5, 1.0, 3.0];
        let x = [0.7f64, 1.3, 2.0, 12.0];
        let d = Gamma::new(
            Tensor::<1>::from_floats([0.3f32, 1.0, 2.5, 40.0], &dev()),
            Tensor::<1>::from_floats([2.0f32, 0.5, 1.0, 3.0], &dev()),
        );
        let got = vals(d.log_prob(Tensor::from_floats([0.7f32, 1.3, 2.0, 12.0], &dev())));
        // ln Γ from its Stirling series with the recurrence (f64, 1e-12).
        fn ln_gamma(mut z: f64) -> f64 {
            let mut shift = 0.0;
            while z < 10.0 {
                shift -= z.ln();
                z += 1.0;
            }
            shift + (z - 0.5) * z.ln() - z
                + 0.5 * (2.0 * std::f64::consts::PI).ln()
                + 1.0 / (12.0 * z)
                - 1.0 / (360.0 * z.powi(3))
                + 1.0 / (1260.0 * z.powi(5))
        }
        for i in 0..4 {
            let want = alpha[i] * rate[i].ln() + (alpha[i] - 1.0) * x[i].ln()
                - rate[i] * x[i]
                - ln_gamma(alpha[i]);
            assert!(
                (got[i] - want).abs() < 2e-5 * (1.0 + want.abs()),
                "{i}: {} vs {want}",
                got[i]
            );
        }
    }

    #[test]
    fn log_prob_at_and_below_zero_takes_its_limits() {
        let d = Gamma::new(
            Tensor::<1>::from_floats([0.5, 1.0, 2.0, 2.0], &dev()),
            Tensor::<1>::from_floats([1.0, 2.0, 1.0, 1.0], &dev()),
        );
        let got = vals(d.log_prob(Tensor::from_floats([0.0, 0.0, 0.0, -1.0], &dev())));
        assert_eq!(got[0], f64::INFINITY);
        assert!((got[1] - 2f64.ln()).abs() < 1e-6);
        assert_eq!(got[2], f64::NEG_INFINITY);
        assert_eq!(got[3], f64::NEG_INFINITY);
    }

    #[test]
    fn the_rate_gradient_is_exact_and_the_sample_is_the_noise_over_the_rate() {
        let device = dev().autodiff();
        let rate = Tensor::<1>::from_floats([2.0, 0.5], &device).require_grad();
        let d = Gamma::new(Tensor::<1>::from_floats([3.0, 0.2], &device), rate.clone());
        let z = Tensor::<1>::from_floats([1.5, 0.01], &device);
        let x = d.rsample_with_noise(z);
        let v = vals(x.clone());
        assert!(
            (v[0] - 0.75).abs() < 1e-7 && (v[1] - 0.02).abs() < 1e-8,
            "{v:?}"
        );
        let grads = x.sum().backward();
        // d(z/λ)/dλ = −z/λ².
        let g = vals(rate.grad(&grads).unwrap());
        assert!((g[0] + 1.5 / 4.0).abs() < 1e-6 && (g[1] + 0.01 / 0.25).abs() < 1e-6);
    }

    #[test]
    fn kl_is_zero_for_equal_and_positive_otherwise() {
        let p = Gamma::new(
            Tensor::<1>::from_floats([0.5, 3.0], &dev()),
            Tensor::<1>::from_floats([1.0, 2.0], &dev()),
        );
        let q = Gamma::new(
            Tensor::<1>::from_floats([0.5, 4.0], &dev()),
            Tensor::<1>::from_floats([1.0, 2.0], &dev()),
        );
        let kl = vals(crate::kl_divergence(&p, &q));
        assert!(kl[0].abs() < 1e-6 && kl[1] > 0.01, "{kl:?}");
    }
}
