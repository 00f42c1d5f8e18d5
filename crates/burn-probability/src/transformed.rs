//! `TransformedDistribution`: the distribution of `f(X)` for a bijector `f` and a base `X`.

use burn::tensor::{Device, Shape, Tensor};

use crate::bijector::Bijector;
use crate::distribution::{Distribution, Rsample, sum_keep};
use crate::error::{Error, Result};
use crate::kl::KlDivergence;

/// The distribution of `Y = f(X)`, `X ~ base`, `f` a [`Bijector`] (TFP's
/// `tfd.TransformedDistribution(base, bijector)`, torch's
/// `TransformedDistribution(base, [transforms])`; for a list of transforms use a
/// [`Chain`](crate::bijector::Chain)).
///
/// # Density function
/// By the change of variables, with `x = f⁻¹(y)`:
/// ```text
/// ln p(y) = ln p_base(x) − ln |det ∂f(x)/∂x|
/// ```
/// the log-determinant summed over the event dimensions. Sampling is `f(base.sample())`;
/// reparameterized sampling `f(base.rsample())` with the base's noise, differentiable in both
/// the base's and the bijector's parameters.
///
/// # Shapes
/// The shape, device and event rank are the base's. The event rank of a transformed
/// distribution is the larger of the base's and the bijector's; this type requires the
/// bijector's to be at most the base's ([`Self::try_new`] checks it), so that it is the base's
/// and the batch type needs no rank written out. To apply a bijector of event rank 1 to
/// independent scalars, give the base that event rank first:
/// `TransformedDistribution::new(Independent::new(Normal::new(..), 1), flow)` (TFP's pattern
/// for a normalizing flow). The built-in bijectors are element-wise and fit every base. The
/// bijector's parameters must broadcast against the base's shape without enlarging it.
///
/// # KL divergence
/// A KL divergence is invariant under a bijection applied to both distributions, so
/// `kl_divergence(&TransformedDistribution(p, f), &TransformedDistribution(q, f))` is the base
/// pair's closed form `KL(p ‖ q)` whenever that exists. This requires the **same** bijector
/// on both sides: the type system checks that the two are of the same type, but not that
/// their parameters are equal (an `Affine` with another scale is a different map, and the
/// result would be wrong). For different bijectors use
/// [`kl_monte_carlo`](crate::kl_monte_carlo).
///
/// No entropy, moments or cdf are offered: they have no closed form for a general bijector.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::bijector::{Affine, Bijector, Exp, Tanh};
/// use burn_probability::prelude::*;
///
/// let device = Device::flex();
/// let base = Normal::new(Tensor::<1>::from_floats([0.0, 1.0], &device), 0.5);
/// // A log-normal, built by hand.
/// let d = TransformedDistribution::new(base.clone(), Exp);
/// let y = Tensor::<1>::from_floats([1.5, 2.0], &device);
/// let got: Vec<f32> = d.log_prob(y.clone()).into_data().iter::<f32>().collect();
/// let want: Vec<f32> = LogNormal::new(base.loc().clone(), 0.5).log_prob(y).into_data().iter::<f32>().collect();
/// assert!((got[0] - want[0]).abs() < 1e-5 && (got[1] - want[1]).abs() < 1e-5);
///
/// // A squashed Gaussian on (−1, 3), reparameterized.
/// let squashed = TransformedDistribution::new(base, Tanh.then(Affine::<1>::from_scalars(1.0, 2.0, &device)));
/// let a = squashed.rsample_n(4);                  // [4, 2]
/// assert_eq!(squashed.log_prob_n(a).dims(), [4, 2]);
/// ```
#[derive(Clone, Debug)]
pub struct TransformedDistribution<Base, T> {
    base: Base,
    bijector: T,
}

impl<Base, T: Bijector> TransformedDistribution<Base, T> {
    /// The distribution of `bijector(X)`, `X ~ base`.
    ///
    /// # Panics
    /// If the bijector's event rank exceeds the base's, or its parameters do not fit the
    /// base's shape; the message is [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new<const D: usize>(base: Base, bijector: T) -> Self
    where
        Base: Distribution<D>,
    {
        Self::try_new(base, bijector).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::RankMismatch`] if the bijector's event rank exceeds the base's (wrap the base
    /// in [`Independent`](crate::Independent)); [`Error::ShapeMismatch`] if the bijector's
    /// parameters do not broadcast into the base's shape.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::bijector::Affine;
    /// use burn_probability::{Normal, TransformedDistribution};
    ///
    /// let device = Device::flex();
    /// let base = Normal::standard([3], &device);
    /// let wide = Affine::new(0.0, Tensor::<1>::ones([4], &device)); // [4] against [3]
    /// assert!(TransformedDistribution::try_new(base, wide).is_err());
    /// ```
    pub fn try_new<const D: usize>(base: Base, bijector: T) -> Result<Self>
    where
        Base: Distribution<D>,
    {
        const CONTEXT: &str = "TransformedDistribution";
        if T::EVENT_RANK > Base::EVENT_RANK {
            return Err(Error::RankMismatch {
                context: CONTEXT,
                argument: "bijector event rank",
                expected: format!(
                    "at most the base's event rank {} (wrap the base in Independent to give it \
                     the bijector's event rank)",
                    Base::EVENT_RANK
                ),
                actual: T::EVENT_RANK,
            });
        }
        bijector.check_shape(CONTEXT, &base.shape())?;
        Ok(Self { base, bijector })
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated<const D: usize>(self) -> Result<Self>
    where
        Base: Distribution<D>,
    {
        self.validate()?;
        Ok(self)
    }

    /// The base distribution.
    pub fn base(&self) -> &Base {
        &self.base
    }

    /// The bijector.
    pub fn bijector(&self) -> &T {
        &self.bijector
    }

    /// Consumes `self`, returning the base distribution and the bijector.
    pub fn into_parts(self) -> (Base, T) {
        (self.base, self.bijector)
    }
}

impl<Base: Distribution<D>, T: Bijector, const D: usize> Distribution<D>
    for TransformedDistribution<Base, T>
{
    type Batch = Base::Batch;
    const EVENT_RANK: usize = Base::EVENT_RANK;
    const NAME: &'static str = "TransformedDistribution";

    fn shape(&self) -> Shape {
        self.base.shape()
    }

    fn device(&self) -> Device {
        self.base.device()
    }

    /// `base.log_prob(x) − ln |det f′(x)|` at `x = f⁻¹(y)`, the log-determinant summed over
    /// the event dimensions (kept with size 1).
    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let x = self.bijector.inverse(value);
        let log_det = self.bijector.forward_log_det_jacobian(x.clone());
        let log_det = sum_keep(log_det, DV - Self::EVENT_RANK, DV);
        self.base.log_prob_keepdim(x) - log_det
    }

    /// `f(base.sample())`, detached.
    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.bijector
            .detach()
            .forward(self.base.sample_with_shape::<DO>(sample_shape))
            .detach()
    }

    fn detach(&self) -> Self {
        Self {
            base: self.base.detach(),
            bijector: self.bijector.detach(),
        }
    }

    /// The base's and the bijector's parameter checks.
    fn validate(&self) -> Result<()> {
        self.base.validate()?;
        self.bijector.validate()
    }

    /// `value` in the bijector's image, and `f⁻¹(value)` in the base's support.
    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        self.bijector.check_image(value)?;
        self.base
            .check_support(&self.bijector.inverse(value.clone()))
    }
}

impl<Base: Rsample<D>, T: Bijector, const D: usize> Rsample<D>
    for TransformedDistribution<Base, T>
{
    /// The base distribution's noise.
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.base.noise(sample_shape)
    }

    /// `f(base.rsample_with_noise(noise))`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        self.bijector.forward(self.base.rsample_with_noise(noise))
    }

    /// `y = f(x)` and `ln p_base(x) − ln |det f′(x)|` at the base draw `x`, with one
    /// [`Bijector::forward_and_log_det`]: no inverse.
    fn rsample_and_log_prob_with_noise<const DO: usize>(
        &self,
        noise: Tensor<DO>,
    ) -> (Tensor<DO>, Tensor<DO>) {
        let (x, base_log_prob) = self.base.rsample_and_log_prob_with_noise(noise);
        let (y, log_det) = self.bijector.forward_and_log_det(x);
        let log_det = sum_keep(log_det, DO - Self::EVENT_RANK, DO);
        (y, base_log_prob - log_det)
    }
}

/// `KL(f(P) ‖ f(Q)) = KL(P ‖ Q)` for the same bijector `f` on both sides, with the base pair's
/// closed form. The bijectors' parameters are **not** compared: they must be equal (see
/// [`TransformedDistribution`]).
impl<P, Q, T: Bijector, const D: usize> KlDivergence<TransformedDistribution<Q, T>, D>
    for TransformedDistribution<P, T>
where
    P: KlDivergence<Q, D>,
{
    fn kl_divergence_keepdim(&self, q: &TransformedDistribution<Q, T>) -> Tensor<D> {
        self.base.kl_divergence_keepdim(&q.base)
    }
}
