//! Kullback–Leibler divergences: closed forms resolved at compile time, and an explicitly named
//! Monte Carlo estimate for every other pair.
//!
//! ```text
//! KL(p ‖ q) = E_p[ln p(X) − ln q(X)]
//! ```
//!
//! * [`kl_divergence`] exists exactly for the pairs that implement [`KlDivergence`]: each
//!   closed form is written beside its distribution (`Normal‖Normal` in `normal.rs`, ...), and
//!   `Independent‖Independent` sums any base pair's closed form. Asking for a pair without one
//!   (say `Logistic‖Logistic`) does not compile, and the compiler's message points here.
//! * [`kl_monte_carlo`] estimates the divergence of any pair where `p` can
//!   [`rsample`](crate::Rsample) and both have `log_prob`, and returns the standard error of the
//!   estimate with it. It is differentiable through the reparameterized samples.
//!
//! ## BinConcrete
//! [`BinConcrete`](crate::BinConcrete)‖[`BinConcrete`](crate::BinConcrete) has no closed form.
//! The KL divergence is invariant under a bijection applied to both distributions, so it equals
//! the KL between the pre-sigmoid [`Logistic`](crate::Logistic) variables
//! ([`BinConcrete::logit_space`](crate::BinConcrete::logit_space)); estimate it there with
//! [`kl_monte_carlo`], as the discrete-latent VAE tutorial's `kl_local` does. Estimating it on
//! `(0, 1)` instead suffers from samples that round to exactly 0 or 1 in float32.
//!
//! ## The categorical family
//! `Categorical‖Categorical`, `OneHotCategorical‖OneHotCategorical` (also with the
//! straight-through [`OneHotCategoricalStraightThrough`](crate::OneHotCategoricalStraightThrough)
//! on either side) and `Gumbel‖Gumbel` have closed forms. Two
//! [`RelaxedOneHotCategorical`](crate::RelaxedOneHotCategorical)s have none: estimate their KL
//! with [`kl_monte_carlo`] between their
//! [`exp_relaxed`](crate::RelaxedOneHotCategorical::exp_relaxed) forms (the same KL, by the
//! same invariance), where densities need no power of a coordinate that may underflow.

use burn::tensor::Tensor;

use crate::distribution::{BatchTensor, Distribution, Rsample, check_pair_shapes};
use crate::error::{Error, Result};
use crate::math::sum_dim_chunked;

/// A closed-form `KL(self ‖ q)`.
///
/// Implemented beside each distribution for the pairs that have one. `D` is the rank of
/// `self`'s parameters; `q`'s may be lower (a prior of batch shape `[]`, read with leading
/// size-1 dimensions) but its event shape is the same.
#[diagnostic::on_unimplemented(
    message = "no closed-form KL divergence between `{Self}` and `{Q}`",
    label = "`kl_divergence` needs a closed form",
    note = "use `burn_probability::kl_monte_carlo(&p, &q, num_samples)` for a Monte Carlo \
            estimate (p must implement `Rsample`); for BinConcrete pairs, estimate it between \
            their `logit_space()` Logistic distributions, for RelaxedOneHotCategorical pairs \
            between their `exp_relaxed()` forms"
)]
pub trait KlDivergence<Q, const D: usize>: Distribution<D> {
    /// `KL(self ‖ q)` with the event dimensions reduced to size 1 but kept (rank `D`, the
    /// broadcast shape of both distributions). Shapes are not checked here.
    fn kl_divergence_keepdim(&self, q: &Q) -> Tensor<D>;
}

/// The closed-form `KL(p ‖ q)` per batch member (shape: the broadcast of both batch shapes).
///
/// `q` may have a lower rank than `p` (TFP's prior with batch shape `[]`): its batch shape is
/// read with leading size-1 dimensions. The event shapes must be equal.
///
/// # Panics
/// If the event shapes differ, the batch shapes do not broadcast, or `q` has a higher rank;
/// the message names both shapes. See [`try_kl_divergence`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{kl_divergence, Independent, MultivariateNormalDiag, Normal};
///
/// let device = Device::flex();
/// let q = Independent::<_, 1>::new(Normal::new(Tensor::<2>::zeros([8, 2], &device), 0.5), 1);
/// let prior = Independent::<_, 1>::new(Normal::standard([1, 2], &device), 1);
/// let kl = kl_divergence(&q, &prior);       // [8]
/// assert_eq!(kl.dims(), [8]);
///
/// // A prior with batch shape [], as TFP's `MultivariateNormalDiag(loc=tf.zeros(2))`:
/// let q = MultivariateNormalDiag::<2>::new(Tensor::<2>::zeros([8, 2], &device), 0.5);
/// let prior = MultivariateNormalDiag::<1>::standard([2], &device);
/// assert_eq!(kl_divergence(&q, &prior).dims(), [8]);
/// ```
#[track_caller]
pub fn kl_divergence<P, Q, const D: usize, const DQ: usize>(p: &P, q: &Q) -> P::Batch
where
    P: KlDivergence<Q, D>,
    Q: Distribution<DQ>,
{
    try_kl_divergence(p, q).unwrap_or_else(|e| panic!("{e}"))
}

/// [`kl_divergence`] returning an [`Error`] instead of panicking.
///
/// # Errors
/// [`Error::EventShapeMismatch`], [`Error::ShapeMismatch`] or [`Error::RankMismatch`], naming
/// both shapes.
pub fn try_kl_divergence<P, Q, const D: usize, const DQ: usize>(p: &P, q: &Q) -> Result<P::Batch>
where
    P: KlDivergence<Q, D>,
    Q: Distribution<DQ>,
{
    check_pair_shapes(
        "kl_divergence",
        ("p", &p.shape(), P::EVENT_RANK),
        ("q", &q.shape(), Q::EVENT_RANK),
    )?;
    Ok(P::Batch::from_keepdim(p.kl_divergence_keepdim(q)))
}

/// A Monte Carlo estimate with its standard error, per batch member.
#[derive(Clone, Debug)]
pub struct MonteCarloEstimate<T> {
    /// The sample mean: an unbiased estimate.
    pub estimate: T,
    /// The standard error of [`Self::estimate`]: the sample standard deviation over `√n`.
    /// Detached from the autodiff graph.
    pub std_error: T,
    /// The number of samples `n`.
    pub num_samples: usize,
}

/// Monte Carlo `KL(p ‖ q) ≈ (1/n) Σᵢ [ln p(xᵢ) − ln q(xᵢ)]`, `xᵢ ~ p` drawn by
/// [`rsample`](crate::Rsample), for any pair with `log_prob` (with or without a closed form).
///
/// Differentiable in both distributions' parameters (pathwise through the samples of `p`).
/// `num_samples` must be at least 2 so that the standard error is defined. The `n` samples are
/// drawn in one batched call, shape `[n] ++ p.shape()`. As in [`kl_divergence`], `q` may have
/// a lower rank than `p`.
///
/// # Panics
/// For `num_samples < 2` or shapes that do not fit; the message is [`try_kl_monte_carlo`]'s
/// error.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{kl_monte_carlo, Logistic};
///
/// let device = Device::flex();
/// let p = Logistic::new(Tensor::<1>::from_floats([0.0], &device), 1.0);
/// let q = Logistic::new(Tensor::<1>::from_floats([0.5], &device), 2.0);
/// let kl = kl_monte_carlo(&p, &q, 10_000);
/// let (est, se): (Vec<f32>, Vec<f32>) = (kl.estimate.into_data().iter::<f32>().collect(),
///                                        kl.std_error.into_data().iter::<f32>().collect());
/// assert!(est[0] > 0.0 && se[0] < 0.05);
/// ```
#[track_caller]
pub fn kl_monte_carlo<P, Q, const D: usize, const DQ: usize>(
    p: &P,
    q: &Q,
    num_samples: usize,
) -> MonteCarloEstimate<P::Batch>
where
    P: Rsample<D> + MonteCarloKl<Q, D, DQ>,
    Q: Distribution<DQ>,
{
    try_kl_monte_carlo(p, q, num_samples).unwrap_or_else(|e| panic!("{e}"))
}

/// [`kl_monte_carlo`] returning an [`Error`] instead of panicking.
///
/// # Errors
/// [`Error::InvalidArgument`] for `num_samples < 2`; [`Error::EventShapeMismatch`],
/// [`Error::ShapeMismatch`] or [`Error::RankMismatch`] when the shapes do not fit.
pub fn try_kl_monte_carlo<P, Q, const D: usize, const DQ: usize>(
    p: &P,
    q: &Q,
    num_samples: usize,
) -> Result<MonteCarloEstimate<P::Batch>>
where
    P: Rsample<D> + MonteCarloKl<Q, D, DQ>,
    Q: Distribution<DQ>,
{
    if num_samples < 2 {
        return Err(Error::InvalidArgument {
            context: "kl_monte_carlo",
            argument: "num_samples",
            expected: "at least 2".into(),
            actual: num_samples.to_string(),
        });
    }
    check_pair_shapes(
        "kl_monte_carlo",
        ("p", &p.shape(), P::EVENT_RANK),
        ("q", &q.shape(), Q::EVENT_RANK),
    )?;
    let (estimate, std_error) = p.mc_kl_keepdim(q, num_samples);
    Ok(MonteCarloEstimate {
        estimate: P::Batch::from_keepdim(estimate),
        std_error: P::Batch::from_keepdim(std_error),
        num_samples,
    })
}

/// Rank plumbing for [`kl_monte_carlo`]: the samples have rank `D + 1`, which stable Rust
/// cannot write for a generic `D`, so this is implemented for every `Rsample<D>` with
/// `D = 1..=6` against every `q` of rank `DQ`. You never need to name it.
pub trait MonteCarloKl<Q, const D: usize, const DQ: usize> {
    /// `(mean, standard error)` of `ln p(x) − ln q(x)` over `n` samples, keepdim (rank `D`).
    fn mc_kl_keepdim(&self, q: &Q, n: usize) -> (Tensor<D>, Tensor<D>);
}

macro_rules! impl_mc_kl {
    ($($d:literal => $ds:literal),*) => {$(
        impl<P: Rsample<$d>, Q: Distribution<DQ>, const DQ: usize> MonteCarloKl<Q, $d, DQ> for P {
            fn mc_kl_keepdim(&self, q: &Q, n: usize) -> (Tensor<$d>, Tensor<$d>) {
                let x: Tensor<$ds> = self.rsample_n(n);
                let diff = self.log_prob_keepdim(x.clone()) - q.log_prob_keepdim(x);
                let mean = sum_dim_chunked(diff.clone(), 0) / n as f64;
                let centred = diff.detach() - mean.clone().detach();
                let var = sum_dim_chunked(centred.square(), 0) / (n - 1) as f64;
                let se = (var / n as f64).sqrt();
                (mean.squeeze_dim::<$d>(0), se.squeeze_dim::<$d>(0))
            }
        }
    )*};
}
impl_mc_kl!(1 => 2, 2 => 3, 3 => 4, 4 => 5, 5 => 6, 6 => 7);
