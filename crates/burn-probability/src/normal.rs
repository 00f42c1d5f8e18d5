//! The univariate Normal (Gaussian) distribution.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Cdf, Distribution, Entropy, Mode, Moments, Param, Rsample, broadcast_params, check_param,
    check_values, lift, log_prob_summed_composite, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::kl::KlDivergence;
use crate::math::{LN_SQRT_2PI, SQRT_2, expm1, ln_plus, ndtri};
use crate::noise;

/// A batch of Normal distributions `N(loc, scale²)`, one per element of the parameters.
///
/// # Density function
/// ```text
/// ln p(x) = −½ ((x − μ) / σ)² − ln σ − ½ ln 2π          μ = loc, σ = scale > 0
/// ```
/// Entropy `½ + ½ ln 2π + ln σ`; mean and mode `μ`; variance `σ²`;
/// cdf `½ (1 + erf((x − μ) / (σ√2)))`; quantile `μ + σ √2 erfinv(2q − 1)`.
///
/// Reparameterized sampling: `x = μ + σ ε` with standard normal noise `ε`.
///
/// `loc` and `scale` are tensors of rank `D` whose shapes broadcast, or scalars (see
/// [`Param`]); the distribution's shape is their broadcast. Event rank 0: wrap it in [`Independent`](crate::Independent) (or
/// use [`MultivariateNormalDiag`](crate::MultivariateNormalDiag)) to treat trailing dimensions
/// as one event.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{kl_divergence, Cdf, Distribution, Normal, Rsample};
///
/// let device = Device::flex();
/// let p = Normal::new(Tensor::<1>::from_floats([0.0, 1.0], &device),
///                     Tensor::<1>::from_floats([1.0, 2.0], &device));
/// let x = p.rsample();                          // [2], differentiable in loc and scale
/// let lp = p.log_prob(x);                       // [2]
/// let q = Normal::standard([2], &device);
/// let kl = kl_divergence(&p, &q);               // [2], closed form
/// let median = p.icdf(Tensor::<1>::from_floats([0.5, 0.5], &device));
/// let wide = Normal::new(p.loc(), 10.0);       // TFP's `tfd.Normal(loc, 10.)`
/// # let _ = (lp, kl, median, wide);
/// ```
#[derive(Clone, Debug)]
pub struct Normal<const D: usize> {
    loc: Tensor<D>,
    scale: Tensor<D>,
}

impl<const D: usize> Normal<D> {
    /// Builds `N(loc, scale²)` from tensors whose shapes broadcast, or scalars (at least one
    /// tensor). The values are checked only by [`Distribution::validate`].
    ///
    /// # Panics
    /// If the shapes do not broadcast, or both parameters are scalars; the message is
    /// [`Self::try_new`]'s error.
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
            broadcast_params("Normal", [("loc", loc.into()), ("scale", scale.into())])?;
        Ok(Self { loc, scale })
    }

    /// The standard normal `N(0, 1)` with the given shape.
    pub fn standard(shape: [usize; D], device: &Device) -> Self {
        Self {
            loc: Tensor::zeros(shape, device),
            scale: Tensor::ones(shape, device),
        }
    }

    /// Builds the distribution from `loc` and the log of the scale, `scale = exp(log_scale)`.
    ///
    /// # Panics
    /// As [`Self::new`]; `Normal::try_new(loc, log_scale.exp())` returns the error instead.
    #[track_caller]
    pub fn from_log_scale(loc: impl Into<Param<D>>, log_scale: Tensor<D>) -> Self {
        Self::new(loc, log_scale.exp())
    }

    /// [`Distribution::validate`] as a builder step: `Normal::new(loc, scale).validated()?`.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The mean `μ`.
    pub fn loc(&self) -> &Tensor<D> {
        &self.loc
    }

    /// The standard deviation `σ`.
    pub fn scale(&self) -> &Tensor<D> {
        &self.scale
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
        let inputs = [value, lift::<D, DV>(&self.loc), lift::<D, DV>(&self.scale)];
        match fused::normal_log_prob_summed(inputs, from, times) {
            Ok(sums) => sums,
            Err([value, ..]) => log_prob_summed_composite(self, value, from, times),
        }
    }
}

impl<const D: usize> Distribution<D> for Normal<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "Normal";

    fn shape(&self) -> Shape {
        self.loc.shape()
    }

    fn device(&self) -> Device {
        self.loc.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let inputs = [value, lift::<D, DV>(&self.loc), lift::<D, DV>(&self.scale)];
        match fused::normal_log_prob(inputs) {
            Ok(fused) => fused,
            Err([value, loc, scale]) => {
                let z = (value - loc) / scale.clone();
                z.square() * (-0.5) - scale.log() - LN_SQRT_2PI
            }
        }
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
        check_param("Normal", "loc", "finite", &self.loc, f64::is_finite)?;
        check_param("Normal", "scale", "finite and > 0", &self.scale, |s| {
            s.is_finite() && s > 0.0
        })
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("Normal", "the real line (not NaN)", value, |v| !v.is_nan())
    }
}

impl<const D: usize> Rsample<D> for Normal<D> {
    /// Standard normal noise `ε ~ N(0, 1)`.
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("Normal::noise", sample_shape, &self.shape());
        noise::standard_normal(dims, &self.device())
    }

    /// `μ + σ ε`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        lift::<D, DO>(&self.loc) + lift::<D, DO>(&self.scale) * noise
    }
}

impl<const D: usize> Entropy<D> for Normal<D> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        ln_plus(self.scale.clone(), 0.5 + LN_SQRT_2PI)
    }
}

impl<const D: usize> Moments<D> for Normal<D> {
    fn mean(&self) -> Tensor<D> {
        self.loc.clone()
    }
    fn variance(&self) -> Tensor<D> {
        self.scale.clone().square()
    }
    fn stddev(&self) -> Tensor<D> {
        self.scale.clone()
    }
}

impl<const D: usize> Mode<D> for Normal<D> {
    fn mode(&self) -> Tensor<D> {
        self.loc.clone()
    }
}

impl<const D: usize> Cdf<D> for Normal<D> {
    fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let z = (value - lift::<D, DV>(&self.loc)) / (lift::<D, DV>(&self.scale) * SQRT_2);
        (z.erf() + 1.0) * 0.5
    }

    fn icdf<const DV: usize>(&self, q: Tensor<DV>) -> Tensor<DV> {
        lift::<D, DV>(&self.loc) + lift::<D, DV>(&self.scale) * ndtri(q)
    }
}

/// `KL(p ‖ q)` between Normals, in the cancellation-free form
/// `½ ((μₚ − μ_q) / σ_q)² + ½ expm1(2 δ) − δ`, with `δ = ln σₚ − ln σ_q`.
impl<const D: usize, const DQ: usize> KlDivergence<Normal<DQ>, D> for Normal<D> {
    fn kl_divergence_keepdim(&self, q: &Normal<DQ>) -> Tensor<D> {
        let inputs = [
            self.loc.clone(),
            self.scale.clone(),
            lift::<DQ, D>(&q.loc),
            lift::<DQ, D>(&q.scale),
        ];
        match fused::normal_kl(inputs) {
            Ok(fused) => fused,
            Err([loc_p, scale_p, loc_q, scale_q]) => {
                let delta = scale_p.log() - scale_q.clone().log();
                let z = (loc_p - loc_q) / scale_q;
                z.square() * 0.5 + expm1(delta.clone() * 2.0) * 0.5 - delta
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kl::kl_divergence;

    fn dev() -> Device {
        Device::flex()
    }

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    #[test]
    fn shapes_broadcast_and_mismatches_name_both() {
        let d = dev();
        let n = Normal::new(
            Tensor::<2>::zeros([4, 3], &d),
            Tensor::<2>::ones([1, 3], &d),
        );
        assert_eq!(n.shape().to_vec(), vec![4, 3]);
        assert_eq!(n.entropy().dims(), [4, 3]);
        let err = Normal::try_new(
            Tensor::<2>::zeros([4, 3], &d),
            Tensor::<2>::ones([2, 3], &d),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("[4, 3]") && msg.contains("[2, 3]") && msg.contains("scale"),
            "{msg}"
        );
    }

    #[test]
    fn log_prob_with_sample_dims_broadcasts() {
        let d = dev();
        let n = Normal::new(
            Tensor::<2>::zeros([4, 3], &d),
            Tensor::<2>::ones([4, 3], &d),
        );
        let x: Tensor<3> = n.sample_n(5);
        assert_eq!(x.dims(), [5, 4, 3]);
        let lp: Tensor<3> = n.log_prob_n(x);
        assert_eq!(lp.dims(), [5, 4, 3]);
        let bad = n
            .try_log_prob_with_shape::<3, 3>(Tensor::<3>::zeros([5, 2, 3], &d))
            .unwrap_err();
        assert!(bad.to_string().contains("[5, 2, 3]"), "{bad}");
        let bad_rank = n
            .try_log_prob_with_shape::<3, 2>(Tensor::<3>::zeros([5, 4, 3], &d))
            .unwrap_err();
        assert!(
            bad_rank.to_string().contains("log_prob output"),
            "{bad_rank}"
        );
    }

    #[test]
    fn rsample_with_noise_is_the_affine_map() {
        let d = dev();
        let n = Normal::new(
            Tensor::<1>::from_floats([1.0, -2.0], &d),
            Tensor::<1>::from_floats([0.5, 3.0], &d),
        );
        let x = vals(n.rsample_with_noise(Tensor::<1>::from_floats([2.0, -1.0], &d)));
        assert_eq!(x, vec![2.0, -5.0]);
    }

    #[test]
    fn validate_names_the_parameter_and_value() {
        let d = dev();
        let n = Normal::new(
            Tensor::<1>::from_floats([0.0, 0.0], &d),
            Tensor::<1>::from_floats([1.0, -0.5], &d),
        );
        let msg = n.validate().unwrap_err().to_string();
        assert!(
            msg.contains("scale") && msg.contains("-0.5") && msg.contains("element 1"),
            "{msg}"
        );
        let n = Normal::new(
            Tensor::<1>::from_floats([f32::NAN], &d),
            Tensor::<1>::from_floats([1.0], &d),
        );
        assert!(n.validated().unwrap_err().to_string().contains("loc"));
        let ok = Normal::standard([3], &d);
        assert!(
            ok.check_support(&Tensor::<1>::from_floats([f32::NAN], &d))
                .is_err()
        );
    }

    #[test]
    fn kl_of_identical_normals_is_zero_and_matches_formula() {
        let d = dev();
        let p = Normal::new(
            Tensor::<1>::from_floats([0.3, -1.0], &d),
            Tensor::<1>::from_floats([0.7, 2.0], &d),
        );
        assert!(vals(kl_divergence(&p, &p)).iter().all(|&k| k.abs() < 1e-7));
        let q = Normal::standard([2], &d);
        let got = vals(kl_divergence(&p, &q));
        for (i, (m, s)) in [(0.3f64, 0.7f64), (-1.0, 2.0)].iter().enumerate() {
            let want = 0.5 * (s * s + m * m - 1.0) - s.ln();
            assert!((got[i] - want).abs() < 1e-6, "{} vs {want}", got[i]);
        }
    }
}
