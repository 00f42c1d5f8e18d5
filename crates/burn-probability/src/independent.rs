//! `Independent`: reinterprets batch dimensions of a distribution as event dimensions.

use core::any::Any;

use burn::tensor::{Device, Shape, Tensor};

use crate::bernoulli::Bernoulli;
use crate::continuous_bernoulli::ContinuousBernoulli;
use crate::distribution::{
    Distribution, Entropy, Mode, Moments, Rsample, log_prob_summed_composite, sum_keep,
};
use crate::error::{Error, Result};
use crate::kl::KlDivergence;
use crate::normal::Normal;

/// Reinterprets the rightmost `n` batch dimensions of a base distribution as event
/// dimensions: their log-densities are summed, as if the elements were one multivariate
/// event with independent components. `Independent(Normal, 1)` over `[B, L]` is a batch of `B`
/// diagonal Gaussians on `ℝᴸ`; `Independent(Bernoulli, 1)` over `[B, 784]` is the pixel
/// likelihood of a VAE.
///
/// # Formula
/// ```text
/// ln p(x) = Σ_{reinterpreted dims} ln p_base(x)        H = Σ H_base
/// ```
/// Moments and mode are the base's; `rsample` is the base's.
///
/// `DB` is the resulting batch rank (stable Rust cannot compute it from the base's type):
/// [`Independent::new`] checks that `DB = base batch rank − n`, so the two always agree.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Distribution, Independent, Normal};
///
/// let device = Device::flex();
/// let base = Normal::new(Tensor::<3>::zeros([5, 4, 3], &device), 1.0);
/// let d: Independent<Normal<3>, 1> = Independent::new(base, 2); // batch [5], event [4, 3]
/// assert_eq!(d.batch_shape().to_vec(), vec![5]);
/// assert_eq!(d.event_shape().to_vec(), vec![4, 3]);
/// assert!(Independent::<Normal<3>, 2>::try_new(d.base().clone(), 2).is_err()); // DB must be 1
/// ```
#[derive(Clone, Debug)]
pub struct Independent<Base, const DB: usize> {
    base: Base,
    reinterpreted: usize,
}

impl<Base> Independent<Base, 0> {
    /// Every batch dimension of `base` becomes an event dimension: one distribution with batch
    /// shape `[]`, as TFP's `Independent(base, reinterpreted_batch_ndims=len(batch_shape))`.
    /// The tutorials' priors are written this way: `Independent::all_batch_dims(Logistic::new(
    /// Tensor::<1>::zeros([latent], &device), 1.0 / t))`.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::{Distribution, Independent, Logistic};
    ///
    /// let device = Device::flex();
    /// let prior = Independent::all_batch_dims(Logistic::new(Tensor::<1>::zeros([20], &device), 2.0));
    /// assert_eq!(prior.batch_shape().num_dims(), 0);
    /// assert_eq!(prior.event_shape().to_vec(), vec![20]);
    /// ```
    pub fn all_batch_dims<const D: usize>(base: Base) -> Self
    where
        Base: Distribution<D>,
    {
        let reinterpreted = D - Base::EVENT_RANK;
        Self {
            base,
            reinterpreted,
        }
    }
}

impl<Base> Independent<Base, 1> {
    /// TFP's `tfd.Independent(base)` with the default `reinterpreted_batch_ndims=None`: every
    /// batch dimension of `base` but the first becomes an event dimension, so the result has
    /// batch shape `[B]`, and no rank needs writing. A decoder's
    /// `Independent::all_but_first(Bernoulli::new(logits))` over `[B, 28, 28, 1]` logits is an
    /// `Independent<Bernoulli<4>, 1>` with event shape `[28, 28, 1]`.
    ///
    /// # Panics
    /// If `base` has no batch dimension; the message is [`Self::try_all_but_first`]'s error.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::{Bernoulli, Distribution, Independent};
    ///
    /// let device = Device::flex();
    /// let px = Independent::all_but_first(Bernoulli::new(Tensor::<4>::zeros([8, 28, 28, 1], &device)));
    /// assert_eq!(px.event_shape().to_vec(), vec![28, 28, 1]);
    /// assert_eq!(px.log_prob(Tensor::<4>::ones([8, 28, 28, 1], &device)).dims(), [8]);
    /// ```
    #[track_caller]
    pub fn all_but_first<const D: usize>(base: Base) -> Self
    where
        Base: Distribution<D>,
    {
        Self::try_all_but_first(base).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::all_but_first`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::RankMismatch`] if `base` has no batch dimension.
    pub fn try_all_but_first<const D: usize>(base: Base) -> Result<Self>
    where
        Base: Distribution<D>,
    {
        let base_batch = D - Base::EVENT_RANK;
        if base_batch == 0 {
            return Err(Error::RankMismatch {
                context: "Independent::all_but_first",
                argument: "base batch rank",
                expected: "at least 1 (the batch dimension to keep)".into(),
                actual: 0,
            });
        }
        Self::new_in("Independent", base, base_batch - 1)
    }
}

impl<Base, const DB: usize> Independent<Base, DB> {
    /// Reinterprets the rightmost `reinterpreted_batch_ndims` batch dimensions of `base`.
    ///
    /// # Panics
    /// If `reinterpreted_batch_ndims` exceeds the base's batch rank, or if `DB` is not the
    /// base's batch rank minus `reinterpreted_batch_ndims`; the message is
    /// [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new<const D: usize>(base: Base, reinterpreted_batch_ndims: usize) -> Self
    where
        Base: Distribution<D>,
    {
        Self::try_new(base, reinterpreted_batch_ndims).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::RankMismatch`] if `reinterpreted_batch_ndims` exceeds the base's batch rank, or
    /// if `DB` is not the base's batch rank minus `reinterpreted_batch_ndims`.
    pub fn try_new<const D: usize>(base: Base, reinterpreted_batch_ndims: usize) -> Result<Self>
    where
        Base: Distribution<D>,
    {
        Self::new_in("Independent", base, reinterpreted_batch_ndims)
    }

    pub(crate) fn new_in<const D: usize>(
        context: &'static str,
        base: Base,
        reinterpreted: usize,
    ) -> Result<Self>
    where
        Base: Distribution<D>,
    {
        let base_batch = D - Base::EVENT_RANK;
        if reinterpreted > base_batch {
            return Err(Error::RankMismatch {
                context,
                argument: "reinterpreted_batch_ndims",
                expected: format!("at most the base's batch rank {base_batch}"),
                actual: reinterpreted,
            });
        }
        if DB != base_batch - reinterpreted {
            return Err(Error::RankMismatch {
                context,
                argument: "batch rank DB (the type's const parameter)",
                expected: format!(
                    "{} (base batch rank {base_batch} - {reinterpreted} reinterpreted)",
                    base_batch - reinterpreted
                ),
                actual: DB,
            });
        }
        Ok(Self {
            base,
            reinterpreted,
        })
    }

    /// The base distribution.
    pub fn base(&self) -> &Base {
        &self.base
    }

    /// Consumes `self`, returning the base distribution.
    pub fn into_base(self) -> Base {
        self.base
    }

    /// How many batch dimensions of the base were reinterpreted as event dimensions.
    pub fn reinterpreted_batch_ndims(&self) -> usize {
        self.reinterpreted
    }

    /// [`Distribution::log_prob_keepdim`] of `value` stacked `times` times along dimension 0
    /// (one batch of data scored against `times` sets of parameters stacked along the batch),
    /// without the copy where the base's kernel reads the stack in place.
    pub(crate) fn log_prob_stacked<const D: usize, const DV: usize>(
        &self,
        value: Tensor<DV>,
        times: usize,
    ) -> Tensor<DV>
    where
        Base: Distribution<D>,
    {
        // The base's event dimensions after the reinterpreted ones have size 1 already.
        log_prob_summed(&self.base, value, DV - (D - DB), times)
    }
}

/// `base.log_prob_keepdim` of `value` stacked `times` times along dimension 0, summed over the
/// dimensions `from..` (kept, with size 1). The families whose fused kernels compute this sum
/// in one pass (Bernoulli, Normal, ContinuousBernoulli) are recognized by their type; any other base is summed by
/// the definition.
fn log_prob_summed<Base: Distribution<D>, const D: usize, const DV: usize>(
    base: &Base,
    value: Tensor<DV>,
    from: usize,
    times: usize,
) -> Tensor<DV> {
    let any: &dyn Any = base;
    if let Some(bernoulli) = any.downcast_ref::<Bernoulli<D>>() {
        return bernoulli.log_prob_summed(value, from, times);
    }
    if let Some(normal) = any.downcast_ref::<Normal<D>>() {
        return normal.log_prob_summed(value, from, times);
    }
    if let Some(cb) = any.downcast_ref::<ContinuousBernoulli<D>>() {
        return cb.log_prob_summed(value, from, times);
    }
    log_prob_summed_composite(base, value, from, times)
}

impl<Base: Distribution<D>, const D: usize, const DB: usize> Distribution<D>
    for Independent<Base, DB>
{
    type Batch = Tensor<DB>;
    const EVENT_RANK: usize = D - DB;
    const NAME: &'static str = "Independent";

    fn shape(&self) -> Shape {
        self.base.shape()
    }

    fn device(&self) -> Device {
        self.base.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        self.log_prob_stacked(value, 1)
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.base.sample_with_shape(sample_shape)
    }

    fn detach(&self) -> Self {
        Self {
            base: self.base.detach(),
            reinterpreted: self.reinterpreted,
        }
    }

    fn validate(&self) -> Result<()> {
        self.base.validate()
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        self.base.check_support(value)
    }
}

impl<Base: Rsample<D>, const D: usize, const DB: usize> Rsample<D> for Independent<Base, DB> {
    /// The base distribution's noise.
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.base.noise(sample_shape)
    }

    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        self.base.rsample_with_noise(noise)
    }

    /// The base's draws and log-densities, the latter summed over the reinterpreted dimensions.
    fn rsample_and_log_prob_with_noise<const DO: usize>(
        &self,
        noise: Tensor<DO>,
    ) -> (Tensor<DO>, Tensor<DO>) {
        let (x, log_prob) = self.base.rsample_and_log_prob_with_noise(noise);
        (x, sum_keep(log_prob, DO - (D - DB), DO))
    }
}

impl<Base: Entropy<D>, const D: usize, const DB: usize> Entropy<D> for Independent<Base, DB> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        sum_keep(self.base.entropy_keepdim(), DB, D - Base::EVENT_RANK)
    }
}

impl<Base: Moments<D>, const D: usize, const DB: usize> Moments<D> for Independent<Base, DB> {
    fn mean(&self) -> Tensor<D> {
        self.base.mean()
    }
    fn variance(&self) -> Tensor<D> {
        self.base.variance()
    }
    fn stddev(&self) -> Tensor<D> {
        self.base.stddev()
    }
}

impl<Base: Mode<D>, const D: usize, const DB: usize> Mode<D> for Independent<Base, DB> {
    fn mode(&self) -> Tensor<D> {
        self.base.mode()
    }
}

/// `KL(Independent(p) ‖ Independent(q)) = Σ_{reinterpreted dims} KL(p ‖ q)`, for every base pair
/// with a closed form. `q` may have a lower batch rank (a prior of batch shape `[]`); the
/// event ranks are equal (checked by [`kl_divergence`](crate::kl_divergence)).
impl<P, Q, const D: usize, const DB: usize, const DBQ: usize> KlDivergence<Independent<Q, DBQ>, D>
    for Independent<P, DB>
where
    P: KlDivergence<Q, D>,
{
    fn kl_divergence_keepdim(&self, q: &Independent<Q, DBQ>) -> Tensor<D> {
        sum_keep(
            self.base.kl_divergence_keepdim(&q.base),
            DB,
            D - P::EVENT_RANK,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bernoulli, Normal, kl_divergence};

    #[test]
    fn log_prob_sums_the_reinterpreted_dims() {
        let device = Device::flex();
        let base = Normal::new(
            Tensor::<2>::from_floats([[0.0, 1.0], [2.0, 3.0]], &device),
            Tensor::<2>::from_floats([[1.0, 2.0], [0.5, 1.0]], &device),
        );
        let x = Tensor::<2>::from_floats([[0.5, 0.5], [2.5, 2.5]], &device);
        let each: Vec<f64> = base.log_prob(x.clone()).into_data().iter::<f64>().collect();
        let ind: Independent<Normal<2>, 1> = Independent::new(base, 1);
        let got: Vec<f64> = ind.log_prob(x).into_data().iter::<f64>().collect();
        assert!((got[0] - (each[0] + each[1])).abs() < 1e-5);
        assert!((got[1] - (each[2] + each[3])).abs() < 1e-5);
    }

    #[test]
    fn rank_errors_are_typed() {
        let device = Device::flex();
        let base = Bernoulli::new(Tensor::<2>::zeros([3, 4], &device));
        let too_many = Independent::<Bernoulli<2>, 0>::try_new(base.clone(), 3).unwrap_err();
        assert!(
            too_many.to_string().contains("reinterpreted_batch_ndims"),
            "{too_many}"
        );
        let wrong_db = Independent::<Bernoulli<2>, 0>::try_new(base, 1).unwrap_err();
        assert!(wrong_db.to_string().contains("expected 1"), "{wrong_db}");
    }

    #[test]
    fn kl_sums_base_kl() {
        let device = Device::flex();
        let p = Normal::new(
            Tensor::<2>::ones([2, 3], &device),
            Tensor::<2>::ones([2, 3], &device),
        );
        let q = Normal::standard([2, 3], &device);
        let each: Vec<f64> = kl_divergence(&p, &q).into_data().iter::<f64>().collect();
        let (ip, iq) = (
            Independent::<_, 1>::new(p, 1),
            Independent::<_, 1>::new(q, 1),
        );
        let got: Vec<f64> = kl_divergence(&ip, &iq).into_data().iter::<f64>().collect();
        assert_eq!(got.len(), 2);
        assert!((got[0] - each[..3].iter().sum::<f64>()).abs() < 1e-5);
    }
}
