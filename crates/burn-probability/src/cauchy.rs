//! The Cauchy (Lorentz) distribution.

use core::f64::consts::PI;

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Cdf, Distribution, Entropy, Mode, Param, Rsample, broadcast_params, check_param, check_values,
    lift, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::math::{ln_plus, log1p};
use crate::noise;

/// `ln π`.
const LN_PI: f64 = 1.144_729_885_849_400_2;

/// `ln(4π)`, the entropy of the standard Cauchy.
const LN_4PI: f64 = 2.531_024_246_969_290_7;

/// A batch of Cauchy distributions with location `μ` and scale `γ > 0` (scipy's `cauchy`,
/// `torch.distributions.Cauchy`, `tfd.Cauchy`).
///
/// # Density function
/// ```text
/// ln p(x) = −ln(πγ) − ln(1 + z²),          z = (x − μ) / γ
/// ```
/// with `ln(1 + z²)` computed as `ln1p(z²)` for `|z| ≤ 1` and `2 ln|z| + ln1p(z⁻²)` beyond, so
/// that it stays finite where `z²` overflows. cdf `½ + atan(z)/π`, computed as `atan(−1/z)/π`
/// for `z < −1`, where the sum would cancel; quantile `μ − γ cot(πq)` for `q < ½` and
/// `μ + γ cot(π(1 − q))` for `q ≥ ½`, as `cos/sin`, which stays accurate near 0 and 1 where
/// `tan(π(q − ½))` loses its digits; median and mode `μ`; entropy `ln(4πγ)`.
///
/// The mean and the variance do not exist (the tails decay as `1/x²`), so the type implements
/// no [`Moments`](crate::Moments). There is no closed-form KL divergence here: use
/// [`kl_monte_carlo`](crate::kl_monte_carlo).
///
/// Reparameterized sampling: `x = μ + γ ε` with standard Cauchy noise `ε = F⁻¹(u)`, the
/// standard quantile above applied to `u` uniform on (0, 1) ([`noise::uniform_open`]); its
/// draws are finite.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Cauchy, Cdf, Distribution};
///
/// let device = Device::flex();
/// let d = Cauchy::new(Tensor::<1>::from_floats([0.0, 2.0], &device), 1.0);
/// let p: Vec<f32> = d.cdf(Tensor::<1>::from_floats([1.0, 2.0], &device)).into_data().iter::<f32>().collect();
/// assert!((p[0] - 0.75).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6);
/// let x: Vec<f32> = d.icdf(Tensor::<1>::from_floats([0.75, 0.25], &device)).into_data().iter::<f32>().collect();
/// assert!((x[0] - 1.0).abs() < 1e-5 && (x[1] - 1.0).abs() < 1e-5);
/// ```
#[derive(Clone, Debug)]
pub struct Cauchy<const D: usize> {
    loc: Tensor<D>,
    scale: Tensor<D>,
}

impl<const D: usize> Cauchy<D> {
    /// `Cauchy(loc, scale)` from tensors whose shapes broadcast, or scalars (at least one
    /// tensor; see [`Param`]).
    ///
    /// # Panics
    /// If the shapes do not broadcast, or both are scalars; the message is [`Self::try_new`]'s
    /// error.
    #[track_caller]
    pub fn new(loc: impl Into<Param<D>>, scale: impl Into<Param<D>>) -> Self {
        Self::try_new(loc, scale).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`](crate::Error) instead of panicking.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) naming both shapes;
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if both are scalars.
    pub fn try_new(loc: impl Into<Param<D>>, scale: impl Into<Param<D>>) -> Result<Self> {
        let [loc, scale] =
            broadcast_params("Cauchy", [("loc", loc.into()), ("scale", scale.into())])?;
        Ok(Self { loc, scale })
    }

    /// The standard Cauchy (`μ = 0`, `γ = 1`) with the given shape.
    pub fn standard(shape: [usize; D], device: &Device) -> Self {
        Self {
            loc: Tensor::zeros(shape, device),
            scale: Tensor::ones(shape, device),
        }
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The location `μ`.
    pub fn loc(&self) -> &Tensor<D> {
        &self.loc
    }

    /// The scale `γ`.
    pub fn scale(&self) -> &Tensor<D> {
        &self.scale
    }
}

/// The standard Cauchy quantile: `−cos(πq)/sin(πq)` for `q < ½`, `cos(πp)/sin(πp)` with
/// `p = 1 − q` (exact) for `q ≥ ½`.
///
/// Each side is evaluated on its argument clamped to at most `½`, where it is finite, so the
/// side that `mask_where` discards contributes neither `NaN` nor an infinite gradient;
/// `q = 0` and `q = 1` give `∓∞`.
fn standard_quantile<const D: usize>(q: Tensor<D>) -> Tensor<D> {
    let q = match fused::cauchy_quantile(q) {
        Ok(x) => return x,
        Err(q) => q,
    };
    let a = q.clone().clamp_max(0.5) * PI;
    let lower = -(a.clone().cos() / a.sin());
    let b = (-q.clone() + 1.0).clamp_max(0.5) * PI;
    let upper = b.clone().cos() / b.sin();
    upper.mask_where(q.lower_elem(0.5), lower)
}

impl<const D: usize> Distribution<D> for Cauchy<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "Cauchy";

    fn shape(&self) -> Shape {
        self.loc.shape()
    }

    fn device(&self) -> Device {
        self.loc.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let (loc, scale) = (lift::<D, DV>(&self.loc), lift::<D, DV>(&self.scale));
        let [value, loc, scale] = match fused::cauchy_log_prob([value, loc, scale]) {
            Ok(lp) => return lp,
            Err(inputs) => inputs,
        };
        let a = ((value - loc) / scale.clone()).abs();
        // ln(1 + a²): ln1p(a²) up to 1, 2 ln a + ln1p(a⁻²) beyond, each on its clamped range.
        let near = log1p(a.clone().clamp_max(1.0).square());
        let far_a = a.clone().clamp_min(1.0);
        let far = far_a.clone().log() * 2.0 + log1p(far_a.square().recip());
        let log1p_z2 = far.mask_where(a.lower_equal_elem(1.0), near);
        -log1p_z2 - scale.log() - LN_PI
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().rsample_with_shape(sample_shape)
    }

    fn detach(&self) -> Self {
        Self {
            loc: self.loc.clone().detach(),
            scale: self.scale.clone().detach(),
        }
    }

    fn validate(&self) -> Result<()> {
        check_param("Cauchy", "loc", "finite", &self.loc, f64::is_finite)?;
        check_param("Cauchy", "scale", "finite and > 0", &self.scale, |s| {
            s.is_finite() && s > 0.0
        })
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("Cauchy", "the real line (not NaN)", value, |v| !v.is_nan())
    }
}

impl<const D: usize> Rsample<D> for Cauchy<D> {
    /// Standard Cauchy noise `ε = F⁻¹(u)`, `u` from [`noise::uniform_open`], by the `cos/sin`
    /// quantile of the type's documentation (about `±2.7·10³⁷` at the ends of `u`'s range).
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("Cauchy::noise", sample_shape, &self.shape());
        standard_quantile(noise::uniform_open(dims, &self.device()))
    }

    /// `μ + γ ε`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        lift::<D, DO>(&self.loc) + lift::<D, DO>(&self.scale) * noise
    }
}

impl<const D: usize> Entropy<D> for Cauchy<D> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        ln_plus(self.scale.clone(), LN_4PI)
    }
}

impl<const D: usize> Mode<D> for Cauchy<D> {
    fn mode(&self) -> Tensor<D> {
        self.loc.clone()
    }
}

impl<const D: usize> Cdf<D> for Cauchy<D> {
    /// `½ + atan(z)/π` for `z ≥ −1`; `atan(−1/z)/π` for `z < −1`, the same value without the
    /// cancellation of `½` against `atan(z)/π ≈ −½` in the lower tail. Each side is evaluated
    /// on `z` clamped to its own range.
    fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let z = (value - lift::<D, DV>(&self.loc)) / lift::<D, DV>(&self.scale);
        let tail = (-z.clone().clamp_max(-1.0).recip()).atan() / PI;
        let rest = z.clone().clamp_min(-1.0).atan() / PI + 0.5;
        rest.mask_where(z.lower_elem(-1.0), tail)
    }

    fn icdf<const DV: usize>(&self, q: Tensor<DV>) -> Tensor<DV> {
        lift::<D, DV>(&self.loc) + lift::<D, DV>(&self.scale) * standard_quantile(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    #[test]
    fn icdf_inverts_cdf_and_keeps_both_tails() {
        let device = Device::flex();
        let (mu, gamma) = (0.3f64, 2.5f64);
        let d = Cauchy::new(Tensor::<1>::full([5], mu, &device), gamma);
        let qs: [f32; 5] = [1e-6, 0.1, 0.5, 0.9, 1.0 - 1.0 / 1_048_576.0];
        let x = d.icdf(Tensor::<1>::from_floats(qs, &device));
        let xs = vals(x.clone());
        for (&q, &got) in qs.iter().zip(&xs) {
            // μ + γ tan(π(q − ½)) in float64.
            let want = mu + gamma * (PI * (q as f64 - 0.5)).tan();
            assert!(
                (got - want).abs() <= 1e-3 * want.abs().max(1.0),
                "icdf({q}) = {got}, want {want}"
            );
        }
        assert!((xs[0] - (mu - gamma / (PI * 1e-6))).abs() < 1e-3 * gamma / (PI * 1e-6));
        let back = vals(d.cdf(x));
        for (&q, &p) in qs.iter().zip(&back) {
            let q = q as f64;
            assert!((p - q).abs() <= 1e-6 + 1e-3 * q, "cdf(icdf({q})) = {p}");
        }
    }

    #[test]
    fn log_prob_integrates_to_the_mass_of_the_interval() {
        // Trapezoid rule over [μ − 1000γ, μ + 1000γ] from the float32 densities, against the
        // mass (2/π) atan(1000) of that interval.
        let device = Device::flex();
        let (mu, gamma) = (1.5f64, 0.8f64);
        let n = 200_001;
        let xs: Vec<f32> = (0..n)
            .map(|i| (mu + gamma * (-1000.0 + 2000.0 * i as f64 / (n - 1) as f64)) as f32)
            .collect();
        let d = Cauchy::new(Tensor::<1>::full([1], mu, &device), gamma);
        let lp =
            vals(d.log_prob_with_shape::<1, 1>(Tensor::<1>::from_floats(xs.as_slice(), &device)));
        let h = gamma * 2000.0 / (n - 1) as f64;
        let total: f64 = lp
            .windows(2)
            .map(|w| 0.5 * h * (w[0].exp() + w[1].exp()))
            .sum();
        let want = 2.0 / PI * 1000f64.atan();
        assert!((total - want).abs() < 1e-4, "∫p = {total}, want {want}");
    }

    #[test]
    fn far_tail_log_prob_and_draws_are_finite() {
        let device = Device::flex();
        let gamma = 2.0f64;
        let d = Cauchy::new(Tensor::<1>::zeros([3], &device), gamma);
        let xs = [1e20f32, -1e30, 3.0];
        let lp = vals(d.log_prob(Tensor::<1>::from_floats(xs, &device)));
        for (&x, &got) in xs.iter().zip(&lp) {
            let z = x as f64 / gamma;
            // ln(1 + z²) = 2 ln|z| + ln1p(z⁻²) in float64.
            let want = -(PI * gamma).ln() - 2.0 * z.abs().ln() - (1.0 / (z * z)).ln_1p();
            assert!((got - want).abs() < 1e-3 * want.abs(), "{got} vs {want}");
        }
        let draws: Tensor<2> = d.rsample_n(100_000);
        assert!(vals(draws).iter().all(|v| v.is_finite()));
    }
}
