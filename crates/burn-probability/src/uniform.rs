//! The continuous uniform distribution.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Cdf, Distribution, Entropy, Moments, Param, Rsample, broadcast_params, check_param,
    check_values, lift, sample_dims,
};
use crate::error::{Error, Result};
use crate::fused;
use crate::kl::KlDivergence;
use crate::noise;

/// A batch of continuous uniform distributions on `[low, high)`, `low < high` (scipy's
/// `uniform(loc=low, scale=high − low)`, `torch.distributions.Uniform`, `tfd.Uniform`).
///
/// # Density function
/// ```text
/// ln p(x) = −ln(high − low)          low ≤ x < high
/// ```
/// and `−∞` elsewhere (also for a `NaN` value). cdf `clamp((x − low)/(high − low), 0, 1)`;
/// quantile `low + q (high − low)`; mean `(low + high)/2`; variance `(high − low)²/12`; entropy
/// `ln(high − low)`. Every point of the support is a mode, so the type implements no
/// [`Mode`](crate::Mode).
///
/// Reparameterized sampling: `x = low + (high − low) u` with `u` uniform on (0, 1)
/// ([`noise::uniform_open`]). In float32 the sum can round up to `high` itself when `u` lies
/// within `2⁻²⁴` of 1 and `|high|` is large against `high − low`; such a draw scores `−∞`.
///
/// # KL divergence
/// ```text
/// KL(p ‖ q) = ln((high_q − low_q) / (high_p − low_p))   if low_q ≤ low_p and high_p ≤ high_q
///           = +∞                                         otherwise
/// ```
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Cdf, Distribution, Moments, Uniform};
///
/// let device = Device::flex();
/// let d = Uniform::new(Tensor::<1>::from_floats([0.0, -1.0], &device), 3.0);
/// let mean: Vec<f32> = d.mean().into_data().iter::<f32>().collect();
/// assert_eq!(mean, vec![1.5, 1.0]);
/// let p: Vec<f32> = d.cdf(Tensor::<1>::from_floats([1.5, 5.0], &device)).into_data().iter::<f32>().collect();
/// assert_eq!(p, vec![0.5, 1.0]);
/// ```
#[derive(Clone, Debug)]
pub struct Uniform<const D: usize> {
    low: Tensor<D>,
    high: Tensor<D>,
}

impl<const D: usize> Uniform<D> {
    /// `Uniform(low, high)` from tensors whose shapes broadcast, or scalars (at least one
    /// tensor; see [`Param`]).
    ///
    /// # Panics
    /// If the shapes do not broadcast, or both are scalars; the message is [`Self::try_new`]'s
    /// error.
    #[track_caller]
    pub fn new(low: impl Into<Param<D>>, high: impl Into<Param<D>>) -> Self {
        Self::try_new(low, high).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`](crate::Error) instead of panicking.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) naming both shapes;
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if both are scalars.
    pub fn try_new(low: impl Into<Param<D>>, high: impl Into<Param<D>>) -> Result<Self> {
        let [low, high] =
            broadcast_params("Uniform", [("low", low.into()), ("high", high.into())])?;
        Ok(Self { low, high })
    }

    /// The standard uniform on `[0, 1)` with the given shape.
    pub fn standard(shape: [usize; D], device: &Device) -> Self {
        Self {
            low: Tensor::zeros(shape, device),
            high: Tensor::ones(shape, device),
        }
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The lower end `low` (in the support).
    pub fn low(&self) -> &Tensor<D> {
        &self.low
    }

    /// The upper end `high` (not in the support).
    pub fn high(&self) -> &Tensor<D> {
        &self.high
    }

    /// The width `high − low`.
    fn width(&self) -> Tensor<D> {
        self.high.clone() - self.low.clone()
    }
}

impl<const D: usize> Distribution<D> for Uniform<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "Uniform";

    fn shape(&self) -> Shape {
        self.low.shape()
    }

    fn device(&self) -> Device {
        self.low.device()
    }

    /// `−ln(high − low)` where `x − low ≥ 0` and `x − high < 0` (exact comparisons in floating
    /// point), `−∞` elsewhere.
    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let (low, high) = (lift::<D, DV>(&self.low), lift::<D, DV>(&self.high));
        let [value, low, high] = match fused::uniform_log_prob([value, low, high]) {
            Ok(lp) => return lp,
            Err(inputs) => inputs,
        };
        let from_low = value.clone() - low.clone();
        let inside = from_low
            .clone()
            .greater_equal_elem(0.0)
            .bool_and((value - high.clone()).lower_elem(0.0));
        let lp = from_low.zeros_like() - (high - low).log();
        lp.mask_fill(inside.bool_not(), f32::NEG_INFINITY)
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().rsample_with_shape(sample_shape)
    }

    fn detach(&self) -> Self {
        Self {
            low: self.low.clone().detach(),
            high: self.high.clone().detach(),
        }
    }

    /// Both ends finite, and `low < high` element by element; the error for the latter names
    /// `high` and reports its value.
    fn validate(&self) -> Result<()> {
        check_param("Uniform", "low", "finite", &self.low, f64::is_finite)?;
        check_param("Uniform", "high", "finite", &self.high, f64::is_finite)?;
        let low: Vec<f64> = self.low.clone().into_data().iter::<f64>().collect();
        let high: Vec<f64> = self.high.clone().into_data().iter::<f64>().collect();
        match low.iter().zip(&high).position(|(l, h)| l >= h) {
            None => Ok(()),
            Some(index) => Err(Error::InvalidParameter {
                distribution: "Uniform",
                parameter: "high",
                expected: "greater than `low` at the same position",
                value: high[index],
                index,
            }),
        }
    }

    /// Rejects `NaN`, then every value outside `[low, high)`; the second check reads the value
    /// broadcast against the parameters, so its `index` is the position in that broadcast
    /// shape.
    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("Uniform", "[low, high)", value, |v| !v.is_nan())?;
        let (low, high) = (lift::<D, DV>(&self.low), lift::<D, DV>(&self.high));
        let x = value.clone() + low.zeros_like();
        let inside = (x.clone() - low)
            .greater_equal_elem(0.0)
            .bool_and((x.clone() - high).lower_elem(0.0));
        // Values inside become NaN, which passes; those outside keep their value and fail.
        check_values(
            "Uniform",
            "[low, high)",
            &x.mask_fill(inside, f32::NAN),
            f64::is_nan,
        )
    }
}

impl<const D: usize> Rsample<D> for Uniform<D> {
    /// Uniform noise `u` on (0, 1) ([`noise::uniform_open`]).
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("Uniform::noise", sample_shape, &self.shape());
        noise::uniform_open(dims, &self.device())
    }

    /// `low + (high − low) u`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        lift::<D, DO>(&self.low) + lift::<D, DO>(&self.width()) * noise
    }
}

impl<const D: usize> Entropy<D> for Uniform<D> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        self.width().log()
    }
}

impl<const D: usize> Moments<D> for Uniform<D> {
    fn mean(&self) -> Tensor<D> {
        (self.low.clone() + self.high.clone()) * 0.5
    }
    fn variance(&self) -> Tensor<D> {
        self.width().square() / 12.0
    }
}

impl<const D: usize> Cdf<D> for Uniform<D> {
    fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let low = lift::<D, DV>(&self.low);
        ((value - low) / lift::<D, DV>(&self.width())).clamp(0.0, 1.0)
    }

    fn icdf<const DV: usize>(&self, q: Tensor<DV>) -> Tensor<DV> {
        lift::<D, DV>(&self.low) + lift::<D, DV>(&self.width()) * q
    }
}

/// `ln(w_q / w_p)` where `q`'s interval covers `p`'s, `+∞` elsewhere (`w` the widths).
impl<const D: usize, const DQ: usize> KlDivergence<Uniform<DQ>, D> for Uniform<D> {
    fn kl_divergence_keepdim(&self, q: &Uniform<DQ>) -> Tensor<D> {
        let (low_q, high_q) = (lift::<DQ, D>(&q.low), lift::<DQ, D>(&q.high));
        let covered = (self.low.clone() - low_q.clone())
            .greater_equal_elem(0.0)
            .bool_and((high_q.clone() - self.high.clone()).greater_equal_elem(0.0));
        let kl = (high_q - low_q).log() - self.width().log();
        kl.mask_fill(covered.bool_not(), f32::INFINITY)
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
    fn icdf_inverts_cdf_and_log_prob_covers_exactly_the_support() {
        let device = Device::flex().autodiff();
        let low = Tensor::<1>::from_floats([-1.0; 6], &device).require_grad();
        let high = Tensor::<1>::from_floats([3.0; 6], &device).require_grad();
        let d = Uniform::new(low.clone(), high.clone());
        let qs = [0.0, 1e-7, 0.25, 0.5, 0.99, 1.0];
        let back = vals(d.cdf(d.icdf(Tensor::<1>::from_floats(qs, &device))));
        for (b, want) in back.iter().zip(qs) {
            assert!((b - want).abs() < 1e-6, "{back:?}");
        }
        let x = Tensor::<1>::from_floats(
            [
                -1.0,
                2.999_999_8,
                3.0,
                -1.000_000_1,
                f32::NEG_INFINITY,
                f32::NAN,
            ],
            &device,
        );
        let lp = d.log_prob(x);
        let got = vals(lp.clone());
        let inside = -(4f64.ln());
        assert!((got[0] - inside).abs() < 1e-6 && (got[1] - inside).abs() < 1e-6);
        assert!(got[2..].iter().all(|&v| v == f64::NEG_INFINITY), "{got:?}");
        let grads = lp.sum().backward();
        for g in [low.grad(&grads).unwrap(), high.grad(&grads).unwrap()] {
            assert!(vals(g).iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn kl_is_zero_against_itself_finite_inside_and_infinite_outside() {
        let device = Device::flex();
        let p = Uniform::new(
            Tensor::<1>::from_floats([0.0, 0.0, -2.0], &device),
            Tensor::<1>::from_floats([1.0, 1.0, 0.5], &device),
        );
        let q = Uniform::new(
            Tensor::<1>::from_floats([-0.5, 0.1, -3.0], &device),
            Tensor::<1>::from_floats([2.0, 2.0, 0.5], &device),
        );
        assert!(vals(kl_divergence(&p, &p)).iter().all(|k| k.abs() < 1e-6));
        let got = vals(kl_divergence(&p, &q));
        assert!((got[0] - 2.5f64.ln()).abs() < 1e-6, "{got:?}");
        assert_eq!(got[1], f64::INFINITY);
        assert!((got[2] - (3.5f64 / 2.5).ln()).abs() < 1e-6, "{got:?}");
    }

    #[test]
    fn validate_names_low_and_high() {
        let device = Device::flex();
        let d = Uniform::new(Tensor::<1>::from_floats([0.0, 2.0], &device), 1.0);
        let msg = d.validate().unwrap_err().to_string();
        assert!(
            msg.contains("high") && msg.contains("low") && msg.contains("element 1"),
            "{msg}"
        );
        let ok = Uniform::standard([2], &device);
        assert!(ok.validate().is_ok());
        assert!(
            ok.check_support(&Tensor::<1>::from_floats([0.0, 1.0], &device))
                .is_err()
        );
    }
}
