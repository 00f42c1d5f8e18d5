//! The exponential distribution.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Cdf, Distribution, Entropy, Mode, Moments, Param, Rsample, broadcast_params, check_param,
    check_values, lift, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::kl::KlDivergence;
use crate::math::{expm1, log1p};
use crate::noise;

/// A batch of exponential distributions with rate `λ > 0` (scipy's `expon(scale=1/λ)`,
/// `torch.distributions.Exponential`, `tfd.Exponential`): the waiting time of a Poisson
/// process.
///
/// # Density function
/// ```text
/// ln p(x) = ln λ − λx          x ≥ 0
/// ```
/// and `−∞` for `x < 0`. cdf `−expm1(−λx)` (0 for `x < 0`); quantile `−ln1p(−q)/λ`, accurate
/// for small `q` where `−ln(1 − q)` would round `1 − q`; mean `1/λ`; variance `1/λ²`; mode 0;
/// entropy `1 − ln λ`.
///
/// Reparameterized sampling: `x = ε/λ` with standard exponential noise `ε = −ln u`, `u`
/// uniform on (0, 1) ([`noise::uniform_open`]).
///
/// # KL divergence
/// ```text
/// KL(p ‖ q) = ln(λ_p/λ_q) + λ_q/λ_p − 1
/// ```
/// computed as `expm1(δ) − δ` with `δ = ln λ_q − ln λ_p`, which has no cancellation when `p`
/// and `q` are close.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Cdf, Distribution, Exponential, Moments};
///
/// let device = Device::flex();
/// let d = Exponential::new(Tensor::<1>::from_floats([0.5, 2.0], &device));
/// let mean: Vec<f32> = d.mean().into_data().iter::<f32>().collect();
/// assert_eq!(mean, vec![2.0, 0.5]);
/// let median: Vec<f32> = d.icdf(Tensor::<1>::full([2], 0.5, &device)).into_data().iter::<f32>().collect();
/// assert!((median[1] - 2f32.ln() / 2.0).abs() < 1e-6);
/// ```
#[derive(Clone, Debug)]
pub struct Exponential<const D: usize> {
    rate: Tensor<D>,
}

impl<const D: usize> Exponential<D> {
    /// `Exponential(rate)` from a tensor (the rate alone cannot be a scalar: the tensor sets
    /// the device and the batch shape; see [`Param`]).
    ///
    /// # Panics
    /// If `rate` is a scalar; the message is [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new(rate: impl Into<Param<D>>) -> Self {
        Self::try_new(rate).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`](crate::Error) instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if `rate` is a scalar.
    pub fn try_new(rate: impl Into<Param<D>>) -> Result<Self> {
        let [rate] = broadcast_params("Exponential", [("rate", rate.into())])?;
        Ok(Self { rate })
    }

    /// The standard exponential (`λ = 1`) with the given shape.
    pub fn standard(shape: [usize; D], device: &Device) -> Self {
        Self {
            rate: Tensor::ones(shape, device),
        }
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
}

impl<const D: usize> Distribution<D> for Exponential<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "Exponential";

    fn shape(&self) -> Shape {
        self.rate.shape()
    }

    fn device(&self) -> Device {
        self.rate.device()
    }

    /// `ln λ − λx` on `x` clamped to `[0, ∞)`, then `−∞` where `x < 0`, so that a value of
    /// `−∞` gives neither a `NaN` value nor a `NaN` gradient.
    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let rate = lift::<D, DV>(&self.rate);
        let [value, rate] = match fused::exponential_log_prob([value, rate]) {
            Ok(lp) => return lp,
            Err(inputs) => inputs,
        };
        // The value broadcast to the output's shape, so that the mask fits it.
        let x = value + rate.zeros_like();
        let below = x.clone().lower_elem(0.0);
        let lp = rate.clone().log() - rate * x.clamp_min(0.0);
        lp.mask_fill(below, f32::NEG_INFINITY)
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().rsample_with_shape(sample_shape)
    }

    fn detach(&self) -> Self {
        Self {
            rate: self.rate.clone().detach(),
        }
    }

    fn validate(&self) -> Result<()> {
        check_param("Exponential", "rate", "finite and > 0", &self.rate, |r| {
            r.is_finite() && r > 0.0
        })
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("Exponential", "[0, ∞)", value, |v| v >= 0.0)
    }
}

impl<const D: usize> Rsample<D> for Exponential<D> {
    /// Standard exponential noise `ε = −ln u`, `u` from [`noise::uniform_open`].
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("Exponential::noise", sample_shape, &self.shape());
        -noise::uniform_open(dims, &self.device()).log()
    }

    /// `ε / λ`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        noise / lift::<D, DO>(&self.rate)
    }
}

impl<const D: usize> Entropy<D> for Exponential<D> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        -self.rate.clone().log() + 1.0
    }
}

impl<const D: usize> Moments<D> for Exponential<D> {
    fn mean(&self) -> Tensor<D> {
        self.rate.clone().recip()
    }
    fn variance(&self) -> Tensor<D> {
        self.rate.clone().square().recip()
    }
    fn stddev(&self) -> Tensor<D> {
        self.rate.clone().recip()
    }
}

impl<const D: usize> Mode<D> for Exponential<D> {
    fn mode(&self) -> Tensor<D> {
        self.rate.zeros_like()
    }
}

impl<const D: usize> Cdf<D> for Exponential<D> {
    /// `−expm1(−λx)` on `x` clamped to `[0, ∞)`, which is 0 below the support.
    fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        -expm1(-(lift::<D, DV>(&self.rate) * value.clamp_min(0.0)))
    }

    fn icdf<const DV: usize>(&self, q: Tensor<DV>) -> Tensor<DV> {
        -log1p(-q) / lift::<D, DV>(&self.rate)
    }
}

/// The closed form of the type's documentation, as `expm1(δ) − δ`.
impl<const D: usize, const DQ: usize> KlDivergence<Exponential<DQ>, D> for Exponential<D> {
    fn kl_divergence_keepdim(&self, q: &Exponential<DQ>) -> Tensor<D> {
        let delta = lift::<DQ, D>(&q.rate).log() - self.rate.clone().log();
        expm1(delta.clone()) - delta
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
    fn icdf_inverts_cdf_and_keeps_small_quantiles() {
        let device = Device::flex();
        let rate = 0.7f64;
        let d = Exponential::new(Tensor::<1>::full([4], rate, &device));
        let qs: [f32; 4] = [1e-7, 0.01, 0.5, 0.99];
        let x = d.icdf(Tensor::<1>::from_floats(qs, &device));
        let xs = vals(x.clone());
        for (&q, &got) in qs.iter().zip(&xs) {
            let want = -(-(q as f64)).ln_1p() / rate;
            assert!(
                (got - want).abs() <= 1e-3 * want,
                "icdf({q}) = {got}, want {want}"
            );
        }
        let back = vals(d.cdf(x));
        for (&q, &p) in qs.iter().zip(&back) {
            let q = q as f64;
            assert!(
                (p - q).abs() <= 1e-3 * q.min(1.0 - q) + 1e-9,
                "cdf(icdf({q})) = {p}"
            );
        }
    }

    #[test]
    fn kl_is_zero_against_itself_and_matches_quadrature() {
        let device = Device::flex();
        let (lp, lq) = ([0.5f32, 3.0], [2.0f32, 2.5]);
        let p = Exponential::new(Tensor::<1>::from_floats(lp, &device));
        let q = Exponential::new(Tensor::<1>::from_floats(lq, &device));
        assert!(vals(kl_divergence(&p, &p)).iter().all(|k| k.abs() < 1e-6));
        let got = vals(kl_divergence(&p, &q));
        for (i, &g) in got.iter().enumerate() {
            let (a, b) = (lp[i] as f64, lq[i] as f64);
            // ∫₀^{60/λ_p} p(x) (ln p(x) − ln q(x)) dx by the trapezoid rule, in float64.
            let n = 400_001;
            let h = 60.0 / a / (n - 1) as f64;
            let f = |x: f64| {
                let ln_p = a.ln() - a * x;
                ln_p.exp() * (ln_p - (b.ln() - b * x))
            };
            let want: f64 = (0..n - 1)
                .map(|k| 0.5 * h * (f(h * k as f64) + f(h * (k + 1) as f64)))
                .sum();
            assert!((g - want).abs() < 1e-5 * (1.0 + want), "{g} vs {want}");
        }
    }

    #[test]
    fn log_prob_integrates_to_one_and_is_minus_infinity_below_zero() {
        let device = Device::flex().autodiff();
        let rate = Tensor::<1>::from_floats([1.3], &device).require_grad();
        let d = Exponential::new(rate.clone());
        let below = Tensor::<1>::from_floats([-1.0, f32::NEG_INFINITY], &device);
        let lp_below = d.log_prob_with_shape::<1, 1>(below);
        assert_eq!(vals(lp_below.clone()), vec![f64::NEG_INFINITY; 2]);
        let grads = lp_below.sum().backward();
        assert!(
            vals(rate.grad(&grads).unwrap())
                .iter()
                .all(|g| g.is_finite())
        );
        // Trapezoid rule over [0, 30/λ] from the float32 densities.
        let n = 30_001;
        let top = 30.0 / 1.3;
        let xs: Vec<f32> = (0..n)
            .map(|i| (top * i as f64 / (n - 1) as f64) as f32)
            .collect();
        let lp =
            vals(d.log_prob_with_shape::<1, 1>(Tensor::<1>::from_floats(xs.as_slice(), &device)));
        let h = top / (n - 1) as f64;
        let total: f64 = lp
            .windows(2)
            .map(|w| 0.5 * h * (w[0].exp() + w[1].exp()))
            .sum();
        assert!((total - 1.0).abs() < 1e-4, "∫p = {total}");
    }
}
