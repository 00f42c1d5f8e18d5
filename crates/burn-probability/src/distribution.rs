//! The traits every distribution implements, and the shape conventions they share.
//!
//! # Shapes
//!
//! Shapes follow TensorFlow Probability and `torch.distributions`:
//!
//! * a distribution's **parameters** have shape `batch_shape ++ event_shape`, of rank `D`
//!   (the const parameter of [`Distribution<D>`]);
//! * one draw has that same shape, rank `D`; drawing with a *sample shape* puts it in front:
//!   `sample_shape ++ batch_shape ++ event_shape`;
//! * `log_prob` takes a value of shape `[sample_shape ++] batch_shape ++ event_shape` (any
//!   dimension may be 1 and broadcast) and returns `[sample_shape ++] batch_shape`: the event
//!   dimensions are summed out.
//!
//! Stable Rust cannot write `Tensor<{D - 1}>`, so ranks that change are handled the way burn
//! handles them (`sum_dims_squeeze::<D2, _>`): the output rank is a const parameter, checked
//! at run time. For the common case, one draw in and one log-density per batch member out,
//! [`Distribution::log_prob`] needs no annotation: its output type is the associated
//! [`Distribution::Batch`] (`Tensor<D - EVENT_RANK>`).
//!
//! Implementations work internally on *keepdim* tensors, whose event dimensions have been
//! reduced to size 1 but not removed, so that composite distributions such as
//! [`Independent`](crate::Independent) never need rank arithmetic.
//!
//! # Writing a distribution
//!
//! A new family implements [`Distribution`] (and [`Rsample`], [`Entropy`], ... where it can)
//! with burn operations; it then works in [`Independent`](crate::Independent),
//! [`kl_monte_carlo`](crate::kl_monte_carlo) and the [objectives](crate::objectives) like the
//! built-in ones, and a [`KlDivergence`](crate::KlDivergence) impl gives it a closed-form KL.
//! The functions below are the helpers the built-in families use: parameter shapes
//! ([`broadcast_shapes`]), value shapes ([`check_value_shape`], [`lift`]), sample shapes
//! ([`sample_dims`]), the opt-in value checks ([`check_param`], [`check_values`]), and the
//! keepdim reductions ([`sum_keep`], [`drop_trailing`]); [`crate::noise`] has the noise of
//! reparameterized samplers. `crates/burn-probability/tests/custom_distribution.rs` writes a
//! Laplace distribution this way, with nothing but the public API (a stand-in for a family of
//! yours: the crate's own is [`Laplace`](crate::Laplace)).

use burn::tensor::{Device, Shape, Tensor};

use crate::error::{Error, Result};
use crate::fused;

/// A tensor type that holds per-batch-member quantities (`log_prob` of one draw, `entropy`,
/// KL divergences) of a distribution of rank `D`.
///
/// Implemented for every `Tensor<DB>`: [`Self::from_keepdim`] drops the trailing `D - DB`
/// dimensions (all of size 1) of a keepdim tensor.
pub trait BatchTensor<const D: usize>: Sized {
    /// Removes the trailing size-1 event dimensions of a keepdim tensor.
    fn from_keepdim(keepdim: Tensor<D>) -> Self;
}

impl<const D: usize, const DB: usize> BatchTensor<D> for Tensor<DB> {
    fn from_keepdim(keepdim: Tensor<D>) -> Self {
        drop_trailing::<D, DB>(keepdim)
    }
}

/// A rank `D` as a type, for the type-level arithmetic of [`OneLess`].
#[derive(Clone, Copy, Debug)]
pub struct Rank<const D: usize>;

/// `D − 1` at the type level: `<Rank<D> as OneLess<D>>::Batch` is `Tensor<D − 1>`, for
/// `D = 1..=8`. It gives a family whose event is the last dimension (such as
/// [`MultivariateNormalDiag`](crate::MultivariateNormalDiag)) one rank parameter instead of two;
/// stable Rust cannot write `Tensor<{D - 1}>`. You never need to name it.
#[diagnostic::on_unimplemented(
    message = "a distribution over vectors needs parameters of rank 1 to 8, not {D}",
    label = "`Tensor<{D} - 1>` is its batch type"
)]
pub trait OneLess<const D: usize> {
    /// `Tensor<D − 1>`.
    type Batch: BatchTensor<D>;
}

macro_rules! impl_one_less {
    ($($d:literal => $b:literal),*) => {$(
        impl OneLess<$d> for Rank<$d> {
            type Batch = Tensor<$b>;
        }
    )*};
}
impl_one_less!(1 => 0, 2 => 1, 3 => 2, 4 => 3, 5 => 4, 6 => 5, 7 => 6, 8 => 7);

/// `D + 1` at the type level: `<Rank<D> as OneMore<D>>::Tensor` is `Tensor<D + 1>`, for
/// `D = 0..=8`: the type of `n` draws of a distribution of rank `D`, which lets
/// [`Distribution::sample_n`], [`Rsample::rsample_n`] and [`Distribution::log_prob_n`] infer
/// their ranks. You never need to name it.
#[diagnostic::on_unimplemented(
    message = "`sample_n`, `rsample_n` and `log_prob_n` support distributions of rank 0 to 8, not {D}",
    note = "use `sample_with_shape::<DO>(&[n])` or `log_prob_with_shape::<DV, DO>(value)` instead"
)]
pub trait OneMore<const D: usize> {
    /// `Tensor<D + 1>`.
    type Tensor;
    /// `dist.sample_with_shape(&[n])`.
    fn sample_n<T: Distribution<D>>(dist: &T, n: usize) -> Self::Tensor;
    /// `dist.rsample_with_shape(&[n])`.
    fn rsample_n<T: Rsample<D>>(dist: &T, n: usize) -> Self::Tensor;
    /// `dist.try_log_prob_with_shape(value)` with the output rank of [`SampleStack`].
    fn try_log_prob_n<T: Distribution<D>>(
        dist: &T,
        value: Self::Tensor,
    ) -> Result<<T::Batch as SampleStack>::Stacked>
    where
        T::Batch: SampleStack;
}

/// A batch type with one more leading (sample) dimension: `Tensor<DB>` → `Tensor<DB + 1>`, for
/// `DB = 0..=8`, the output type of [`Distribution::log_prob_n`].
pub trait SampleStack {
    /// `Tensor<DB + 1>`.
    type Stacked;
    /// Removes the trailing size-1 event dimensions of a keepdim tensor of rank `DS`.
    fn stacked_from_keepdim<const DS: usize>(keepdim: Tensor<DS>) -> Self::Stacked;
}

macro_rules! impl_one_more {
    ($($d:literal => $u:literal),*) => {$(
        impl OneMore<$d> for Rank<$d> {
            type Tensor = Tensor<$u>;
            fn sample_n<T: Distribution<$d>>(dist: &T, n: usize) -> Tensor<$u> {
                dist.sample_with_shape::<$u>(&[n])
            }
            fn rsample_n<T: Rsample<$d>>(dist: &T, n: usize) -> Tensor<$u> {
                dist.rsample_with_shape::<$u>(&[n])
            }
            fn try_log_prob_n<T: Distribution<$d>>(
                dist: &T,
                value: Tensor<$u>,
            ) -> Result<<T::Batch as SampleStack>::Stacked>
            where
                T::Batch: SampleStack,
            {
                check_value_shape(T::NAME, &dist.shape(), T::EVENT_RANK, &value.shape())?;
                Ok(<T::Batch as SampleStack>::stacked_from_keepdim(dist.log_prob_keepdim(value)))
            }
        }
        impl SampleStack for Tensor<$d> {
            type Stacked = Tensor<$u>;
            fn stacked_from_keepdim<const DS: usize>(keepdim: Tensor<DS>) -> Tensor<$u> {
                drop_trailing::<DS, $u>(keepdim)
            }
        }
    )*};
}
impl_one_more!(0 => 1, 1 => 2, 2 => 3, 3 => 4, 4 => 5, 5 => 6, 6 => 7, 7 => 8, 8 => 9);

/// Reshapes a tensor whose trailing `DV - DO` dimensions have size 1 to rank `DO`: a keepdim
/// result to the rank of the batch.
///
/// # Panics
/// If `DO > DV`.
pub fn drop_trailing<const DV: usize, const DO: usize>(t: Tensor<DV>) -> Tensor<DO> {
    assert!(
        DO <= DV,
        "cannot drop dimensions from rank {DV} to reach rank {DO}"
    );
    let dims = t.dims();
    debug_assert!(
        dims[DO..].iter().all(|&d| d == 1),
        "dropped dims must be 1: {dims:?}"
    );
    let mut out = [0usize; DO];
    out.copy_from_slice(&dims[..DO]);
    t.reshape(out)
}

/// A batch of probability distributions whose parameters (and single draws) have rank `D`.
///
/// See the [module documentation](self) for the shape conventions. Reparameterizable
/// distributions also implement [`Rsample`]; closed-form quantities live in [`Entropy`],
/// [`Moments`], [`Mode`] and [`Cdf`], so that asking for one that does not exist is a compile
/// error rather than a run-time `NotImplementedError`. A distribution owns its parameters
/// (`'static`): it holds tensors, not borrows.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Distribution, Independent, Normal};
///
/// let device = Device::flex();
/// // A batch of 4 diagonal Gaussians over R^3.
/// let loc = Tensor::<2>::zeros([4, 3], &device);
/// let scale = Tensor::<2>::ones([4, 3], &device);
/// let q: Independent<Normal<2>, 1> = Independent::new(Normal::new(loc, scale), 1);
///
/// let z = q.sample();                              // [4, 3]
/// let lp = q.log_prob(z);                          // [4]: the event dim is summed out
/// assert_eq!(lp.dims(), [4]);
///
/// let zs: Tensor<3> = q.sample_n(10);              // [10, 4, 3]
/// let lps: Tensor<2> = q.log_prob_n(zs);           // [10, 4]
/// assert_eq!(lps.dims(), [10, 4]);
/// ```
pub trait Distribution<const D: usize>: Clone + core::fmt::Debug + 'static {
    /// `Tensor<D - EVENT_RANK>`: the type of `log_prob` of one draw and of `entropy`.
    type Batch: BatchTensor<D>;

    /// Number of trailing dimensions that form one event (0 for univariate distributions).
    const EVENT_RANK: usize;

    /// The distribution's name, used in error messages.
    const NAME: &'static str;

    /// `batch_shape ++ event_shape`: the shape of one draw.
    fn shape(&self) -> Shape;

    /// The device the parameters live on.
    fn device(&self) -> Device;

    /// Log-density (or log-mass) of `value`, with the event dimensions reduced to size 1 but
    /// kept, so the output has the value's rank (and the broadcast shape of value and
    /// parameters).
    ///
    /// This is the building block the checked methods ([`Self::log_prob`],
    /// [`Self::log_prob_n`]) and composite distributions use; it does not check shapes:
    /// `DV >= D` and the trailing `D` dimensions must broadcast against [`Self::shape`].
    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV>;

    /// Draws samples of shape `sample_shape ++ shape()` (rank `DO = sample_shape.len() + D`,
    /// checked). No gradient flows to the parameters; see [`Rsample`] for that.
    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO>;

    /// The same distribution with its parameters detached from the autodiff graph
    /// (`stop_gradient`), as the STL and DReG estimators need.
    fn detach(&self) -> Self;

    /// Checks the parameter values (finite, positive scales, probabilities in `[0, 1]`, ...).
    ///
    /// Reads the parameters back to the host, so it is opt-in: constructors only check
    /// structure. Returns the first offending value with the parameter's name.
    fn validate(&self) -> Result<()>;

    /// Checks that every element of `value` lies in the support (reads `value` to the host).
    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()>;

    /// `batch_shape`: the leading `D - EVENT_RANK` dimensions of [`Self::shape`].
    fn batch_shape(&self) -> Shape {
        let shape = self.shape();
        Shape::from(shape.as_slice()[..D - Self::EVENT_RANK].to_vec())
    }

    /// `event_shape`: the trailing `EVENT_RANK` dimensions of [`Self::shape`].
    fn event_shape(&self) -> Shape {
        let shape = self.shape();
        Shape::from(shape.as_slice()[D - Self::EVENT_RANK..].to_vec())
    }

    /// Log-density of one value per batch member: `value` has shape `batch ++ event` (size-1
    /// dimensions broadcast), the result `batch`.
    ///
    /// # Panics
    /// If the shapes do not broadcast; the message names both shapes. Use
    /// [`Self::try_log_prob`] to get the [`Error`] instead.
    fn log_prob(&self, value: Tensor<D>) -> Self::Batch {
        self.try_log_prob(value).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::log_prob`] returning an [`Error::ShapeMismatch`] instead of panicking.
    fn try_log_prob(&self, value: Tensor<D>) -> Result<Self::Batch> {
        check_value_shape(Self::NAME, &self.shape(), Self::EVENT_RANK, &value.shape())?;
        Ok(Self::Batch::from_keepdim(self.log_prob_keepdim(value)))
    }

    /// Log-density of values with one leading sample dimension, as [`Self::sample_n`] and
    /// [`Rsample::rsample_n`] draw them: `value` of shape `[n] ++ batch ++ event` (rank
    /// `D + 1`), the result `[n] ++ batch`. Both ranks follow from the distribution's type, so
    /// no annotation is needed; for more sample dimensions use [`Self::log_prob_with_shape`].
    ///
    /// # Panics
    /// If the shapes do not fit; use [`Self::try_log_prob_n`] for an [`Error`].
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::{Distribution, MultivariateNormalDiag, Rsample};
    ///
    /// let device = Device::flex();
    /// let q = MultivariateNormalDiag::new(Tensor::<2>::zeros([32, 2], &device), 1.0);
    /// let z = q.rsample_n(5);                 // [5, 32, 2]
    /// let log_q = q.log_prob_n(z);            // [5, 32]
    /// assert_eq!(log_q.dims(), [5, 32]);
    /// ```
    #[track_caller]
    fn log_prob_n(
        &self,
        value: <Rank<D> as OneMore<D>>::Tensor,
    ) -> <Self::Batch as SampleStack>::Stacked
    where
        Rank<D>: OneMore<D>,
        Self::Batch: SampleStack,
    {
        self.try_log_prob_n(value).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::log_prob_n`] returning an [`Error`] instead of panicking.
    fn try_log_prob_n(
        &self,
        value: <Rank<D> as OneMore<D>>::Tensor,
    ) -> Result<<Self::Batch as SampleStack>::Stacked>
    where
        Rank<D>: OneMore<D>,
        Self::Batch: SampleStack,
    {
        <Rank<D> as OneMore<D>>::try_log_prob_n(self, value)
    }

    /// Log-density of values with any number of leading sample dimensions: `value` of rank
    /// `DV >= D` and shape `sample_shape ++ batch ++ event`, result of rank
    /// `DO = DV - EVENT_RANK` and shape `sample_shape ++ batch`. `DV` comes from the value;
    /// `DO` is written (`log_prob_with_shape::<4, 3>`) or inferred from where the result goes.
    ///
    /// # Panics
    /// If the ranks or shapes do not fit; use [`Self::try_log_prob_with_shape`] for an
    /// [`Error`].
    #[track_caller]
    fn log_prob_with_shape<const DV: usize, const DO: usize>(
        &self,
        value: Tensor<DV>,
    ) -> Tensor<DO> {
        self.try_log_prob_with_shape(value)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::log_prob_with_shape`] returning an [`Error`] instead of panicking.
    fn try_log_prob_with_shape<const DV: usize, const DO: usize>(
        &self,
        value: Tensor<DV>,
    ) -> Result<Tensor<DO>> {
        if DV < D {
            return Err(Error::RankMismatch {
                context: Self::NAME,
                argument: "value",
                expected: format!("at least {D} (the parameters' rank)"),
                actual: DV,
            });
        }
        if DO + Self::EVENT_RANK != DV {
            return Err(Error::RankMismatch {
                context: Self::NAME,
                argument: "log_prob output",
                expected: format!(
                    "{} (value rank {DV} - event rank {})",
                    DV - Self::EVENT_RANK,
                    Self::EVENT_RANK
                ),
                actual: DO,
            });
        }
        check_value_shape(Self::NAME, &self.shape(), Self::EVENT_RANK, &value.shape())?;
        Ok(drop_trailing::<DV, DO>(self.log_prob_keepdim(value)))
    }

    /// One draw, of shape [`Self::shape`], **without gradient**, as `torch.distributions`'
    /// `sample()`. TFP's `sample()` is reparameterized where the family allows it: a port of
    /// TFP code wants [`Rsample::rsample`] wherever gradients must reach the parameters (a
    /// VAE's latent `z`, a Monte Carlo KL).
    fn sample(&self) -> Tensor<D> {
        self.sample_with_shape::<D>(&[])
    }

    /// `n` draws stacked along a new leading dimension: shape `[n] ++ shape()`, rank `D + 1`
    /// (from the type: no annotation needed). No gradient; see [`Rsample::rsample_n`].
    fn sample_n(&self, n: usize) -> <Rank<D> as OneMore<D>>::Tensor
    where
        Rank<D>: OneMore<D>,
    {
        <Rank<D> as OneMore<D>>::sample_n(self, n)
    }
}

/// Distributions with a reparameterized sampler: `x = g(θ, ε)` with parameter-free noise `ε`,
/// so gradients of `E[f(x)]` flow to the parameters θ (the pathwise estimator).
pub trait Rsample<const D: usize>: Distribution<D> {
    /// Draws the parameter-free noise `ε` for `sample_shape ++ shape()` (rank `DO`, checked).
    /// What `ε` is (standard normal, standard logistic, ...) is documented per distribution.
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO>;

    /// Deterministically maps noise `ε` of shape `sample_shape ++ shape()` (as drawn by
    /// [`Self::noise`]) to a sample, differentiably in the parameters. Tests and variance
    /// reduction schemes use it to reuse noise.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO>;

    /// One reparameterized draw of shape [`Distribution::shape`].
    fn rsample(&self) -> Tensor<D> {
        self.rsample_with_noise(self.noise::<D>(&[]))
    }

    /// `n` reparameterized draws along a new leading dimension: shape `[n] ++ shape()`, rank
    /// `D + 1` (from the type: no annotation needed).
    fn rsample_n(&self, n: usize) -> <Rank<D> as OneMore<D>>::Tensor
    where
        Rank<D>: OneMore<D>,
    {
        <Rank<D> as OneMore<D>>::rsample_n(self, n)
    }

    /// Reparameterized draws of shape `sample_shape ++ shape()`.
    fn rsample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.rsample_with_noise(self.noise::<DO>(sample_shape))
    }

    /// [`Self::rsample_with_noise`] and the log-density of the draws,
    /// `(x, log_prob_keepdim(x))`, both differentiable (distrax's `sample_and_log_prob`, TFP's
    /// `experimental_sample_and_log_prob`). The default evaluates the density of the draws; a
    /// [`TransformedDistribution`](crate::TransformedDistribution) overrides it to take the
    /// log-determinant along the sampling path instead of inverting its bijector, which is what
    /// makes an inverse autoregressive flow's posterior cheap to score at its own samples. The
    /// variational objectives use it.
    fn rsample_and_log_prob_with_noise<const DO: usize>(
        &self,
        noise: Tensor<DO>,
    ) -> (Tensor<DO>, Tensor<DO>) {
        let x = self.rsample_with_noise(noise);
        let log_prob = self.log_prob_keepdim(x.clone());
        (x, log_prob)
    }
}

/// Distributions with a closed-form (Shannon, differential) entropy `H = −E[ln p(X)]`.
pub trait Entropy<const D: usize>: Distribution<D> {
    /// Entropy with the event dimensions reduced to size 1 but kept (rank `D`).
    fn entropy_keepdim(&self) -> Tensor<D>;

    /// Entropy per batch member, shape `batch_shape`.
    fn entropy(&self) -> Self::Batch {
        Self::Batch::from_keepdim(self.entropy_keepdim())
    }
}

/// Distributions with closed-form mean and variance (element-wise, shape `batch ++ event`).
pub trait Moments<const D: usize>: Distribution<D> {
    /// `E[X]`.
    fn mean(&self) -> Tensor<D>;
    /// `Var[X]` (element-wise: the diagonal of the covariance for multivariate distributions).
    fn variance(&self) -> Tensor<D>;
    /// `√Var[X]`.
    fn stddev(&self) -> Tensor<D> {
        self.variance().sqrt()
    }
}

/// Distributions with a closed-form mode.
pub trait Mode<const D: usize>: Distribution<D> {
    /// The most probable value (element-wise).
    fn mode(&self) -> Tensor<D>;
}

/// Univariate distributions with a closed-form cumulative distribution function and inverse.
pub trait Cdf<const D: usize>: Distribution<D> {
    /// `P(X ≤ x)`; `value` broadcasts like in `log_prob` (rank `DV >= D`).
    fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV>;
    /// The quantile function: the `x` with `P(X ≤ x) = q`, for `q ∈ [0, 1]`.
    fn icdf<const DV: usize>(&self, q: Tensor<DV>) -> Tensor<DV>;
}

/// `dist.log_prob_keepdim` of `value` stacked `times` times along dimension 0, summed over the
/// dimensions `from..` (kept, with size 1): the log-density of independent components, by its
/// definition. The families with a fused kernel for it compute the same in one pass.
pub(crate) fn log_prob_summed_composite<T: Distribution<D>, const D: usize, const DV: usize>(
    dist: &T,
    value: Tensor<DV>,
    from: usize,
    times: usize,
) -> Tensor<DV> {
    sum_keep(dist.log_prob_keepdim(repeat_rows(value, times)), from, DV)
}

/// `t` stacked `times` times along dimension 0 (`repeat_dim(0, times)`): one copy split over
/// the threads on `flex`, burn's `repeat_dim` elsewhere.
pub(crate) fn repeat_rows<const D: usize>(t: Tensor<D>, times: usize) -> Tensor<D> {
    if times == 1 {
        return t;
    }
    fused::repeat_leading(t, times).unwrap_or_else(|t| t.repeat_dim(0, times))
}

/// Sums `t` over its dimensions `from..to`, keeping them with size 1: what
/// [`Independent`](crate::Independent) does to its base's log-densities and entropies.
pub fn sum_keep<const DV: usize>(mut t: Tensor<DV>, from: usize, to: usize) -> Tensor<DV> {
    if from < to && t.dims()[to..].iter().all(|&d| d == 1) {
        match fused::sum_trailing(t, from) {
            Ok(sums) => return sums,
            Err(back) => t = back,
        }
    }
    for dim in from..to {
        t = t.sum_dim(dim);
    }
    t
}

/// The broadcast of two shapes, aligned at their last dimension as in NumPy and PyTorch (each
/// dimension equal, or 1 on one side; the shorter shape is read with leading 1s), or an
/// [`Error::ShapeMismatch`] naming both: a constructor's check that its parameters fit
/// together, and a KL divergence's check that two batch shapes do.
///
/// # Example
/// ```
/// use burn::tensor::Shape;
/// use burn_probability::distribution::broadcast_shapes;
///
/// let s = broadcast_shapes("Laplace", "loc", &Shape::new([4, 1]), "scale", &Shape::new([1, 3]))?;
/// assert_eq!(s, Shape::new([4, 3]));
/// let s = broadcast_shapes("kl_divergence", "p", &Shape::new([8, 2]), "q", &Shape::new([2]))?;
/// assert_eq!(s, Shape::new([8, 2]));
/// assert!(broadcast_shapes("Laplace", "loc", &Shape::new([4]), "scale", &Shape::new([3])).is_err());
/// # Ok::<(), burn_probability::Error>(())
/// ```
pub fn broadcast_shapes(
    context: &'static str,
    left_name: &'static str,
    left: &Shape,
    right_name: &'static str,
    right: &Shape,
) -> Result<Shape> {
    let (l, r) = (left.as_slice(), right.as_slice());
    let rank = l.len().max(r.len());
    let dim = |s: &[usize], i: usize| {
        let pad = rank - s.len();
        if i < pad { 1 } else { s[i - pad] }
    };
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        out.push(match (dim(l, i), dim(r, i)) {
            (a, b) if a == b => a,
            (1, b) => b,
            (a, 1) => a,
            _ => {
                return Err(Error::ShapeMismatch {
                    context,
                    left_name,
                    left: l.to_vec(),
                    right_name,
                    right: r.to_vec(),
                });
            }
        });
    }
    Ok(Shape::from(out))
}

/// A distribution parameter as a constructor takes it: a tensor, or a scalar that broadcasts
/// against the other parameters (TFP's `tfd.Normal(0., 2.)`, torch's `broadcast_all`).
///
/// Built by `From`: a `Tensor<D>` (also by reference), an `f64` or an `f32`. A scalar becomes a
/// tensor of shape `[1; D]` on the device of the parameters given as tensors, so at least one
/// parameter of a call must be a tensor: it sets the device and the batch shape. Tensors have
/// the distribution's rank `D` (which the compiler infers from them); lift one of lower rank
/// with `t.unsqueeze::<D>()`, which adds leading size-1 dimensions as broadcasting reads it.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Distribution, Normal};
///
/// let device = Device::flex();
/// let loc = Tensor::<2>::zeros([4, 3], &device);
/// let p = Normal::new(loc.clone(), 2.0);                // scale 2 everywhere
/// let q = Normal::new(0.0, loc.ones_like() * 0.5);      // loc 0 everywhere
/// assert_eq!(p.batch_shape().as_slice(), [4, 3]);
/// # let _ = q;
/// ```
// A `Param` lives only for the length of a constructor call: boxing the tensor to shrink it
// would cost an allocation per parameter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Param<const D: usize> {
    /// A tensor of the distribution's rank, broadcast against the other parameters.
    Tensor(Tensor<D>),
    /// One value for every batch member.
    Scalar(f64),
}

impl<const D: usize> From<Tensor<D>> for Param<D> {
    fn from(t: Tensor<D>) -> Self {
        Param::Tensor(t)
    }
}

impl<const D: usize> From<&Tensor<D>> for Param<D> {
    fn from(t: &Tensor<D>) -> Self {
        Param::Tensor(t.clone())
    }
}

impl<const D: usize> From<f64> for Param<D> {
    fn from(v: f64) -> Self {
        Param::Scalar(v)
    }
}

impl<const D: usize> From<f32> for Param<D> {
    fn from(v: f32) -> Self {
        Param::Scalar(v as f64)
    }
}

/// Broadcasts a constructor's parameters against each other (torch's `broadcast_all`): the
/// tensors' shapes must broadcast, the scalars fill the broadcast shape, and every result has
/// that shape, on the tensors' device. A scalar costs one element: it is expanded, not copied.
///
/// # Errors
/// [`Error::ShapeMismatch`] naming the first parameter and the one that does not fit;
/// [`Error::InvalidArgument`] when every parameter is a scalar (there is then no device and no
/// batch shape: give one as a tensor, for example `Tensor::full([1; D], v, &device)`).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::distribution::broadcast_params;
///
/// let device = Device::flex();
/// let [loc, scale] = broadcast_params(
///     "Laplace",
///     [("loc", Tensor::<2>::zeros([4, 1], &device).into()), ("scale", 2.0.into())],
/// )?;
/// assert_eq!((loc.dims(), scale.dims()), ([4, 1], [4, 1]));
/// # Ok::<(), burn_probability::Error>(())
/// ```
pub fn broadcast_params<const D: usize, const N: usize>(
    context: &'static str,
    params: [(&'static str, Param<D>); N],
) -> Result<[Tensor<D>; N]> {
    let mut first: Option<(&'static str, Shape, Device)> = None;
    for (name, param) in &params {
        if let Param::Tensor(t) = param {
            first = Some(match first {
                None => (*name, t.shape(), t.device()),
                Some((first_name, shape, device)) => {
                    let shape = broadcast_shapes(context, first_name, &shape, name, &t.shape())?;
                    (first_name, shape, device)
                }
            });
        }
    }
    let Some((_, shape, device)) = first else {
        return Err(Error::InvalidArgument {
            context,
            argument: params.first().map_or("parameters", |(name, _)| *name),
            expected: "at least one parameter given as a tensor (it sets the device and the \
                       batch shape)"
                .into(),
            actual: "only scalars".into(),
        });
    };
    Ok(params.map(|(_, param)| match param {
        Param::Tensor(t) => t.expand(shape.clone()),
        Param::Scalar(v) => Tensor::<D>::full([1; D], v, &device).expand(shape.clone()),
    }))
}

/// Checks a value's shape against a distribution's shape (`batch_shape ++ event_shape`, the
/// last `event_rank` dimensions forming one event), as `log_prob` needs it: the value's last
/// `event_rank` dimensions must equal the event shape exactly, and the batch dimensions before
/// them broadcast (equal, or 1 on either side); any further leading dimensions are sample
/// dimensions. A wrong event shape is an [`Error::EventShapeMismatch`], never a broadcast; a
/// batch mismatch is an [`Error::ShapeMismatch`]. Both name the two shapes.
///
/// # Example
/// ```
/// use burn::tensor::Shape;
/// use burn_probability::distribution::check_value_shape;
///
/// // 32 images of 28 × 28 × 1 pixels (batch [32], event [28, 28, 1]).
/// let shape = Shape::new([32, 28, 28, 1]);
/// assert!(check_value_shape("Independent", &shape, 3, &Shape::new([5, 32, 28, 28, 1])).is_ok());
/// assert!(check_value_shape("Independent", &shape, 3, &Shape::new([1, 28, 28, 1])).is_ok());
/// // The same images in the NCHW layout: an error, not 28 × 28 × 28 broadcast terms.
/// assert!(check_value_shape("Independent", &shape, 3, &Shape::new([32, 1, 28, 28])).is_err());
/// ```
pub fn check_value_shape(
    context: &'static str,
    params: &Shape,
    event_rank: usize,
    value: &Shape,
) -> Result<()> {
    let (p, v) = (params.as_slice(), value.as_slice());
    let event = p.len().saturating_sub(event_rank);
    if v.len() < event_rank || v[v.len() - event_rank..] != p[event..] {
        return Err(Error::EventShapeMismatch {
            context,
            argument: "value",
            shape: v.to_vec(),
            event_shape: p[event..].to_vec(),
        });
    }
    let batch_fits = v.len() >= p.len()
        && p[..event]
            .iter()
            .zip(&v[v.len() - p.len()..v.len() - event_rank])
            .all(|(&a, &b)| a == b || a == 1 || b == 1);
    if batch_fits {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            context,
            left_name: "value",
            left: v.to_vec(),
            right_name: "batch_shape ++ event_shape",
            right: p.to_vec(),
        })
    }
}

/// Checks that two distributions compared by a KL divergence (`p` and `q`) or by an objective
/// (`posterior` and `prior`) fit: the same event rank and event shape, batch shapes that
/// broadcast, and the second of at most the first's rank, so that the result has the first's
/// batch rank (a prior of batch shape `[]` against a posterior of batch shape `[B]`). The error
/// names both arguments and shapes.
pub(crate) fn check_pair_shapes(
    context: &'static str,
    (p_name, p, p_event_rank): (&'static str, &Shape, usize),
    (q_name, q, q_event_rank): (&'static str, &Shape, usize),
) -> Result<()> {
    let event = |s: &Shape, rank: usize| s.as_slice()[s.num_dims().saturating_sub(rank)..].to_vec();
    if p_event_rank != q_event_rank || event(p, p_event_rank) != event(q, q_event_rank) {
        return Err(Error::EventShapeMismatch {
            context,
            argument: q_name,
            shape: q.to_vec(),
            event_shape: event(p, p_event_rank),
        });
    }
    if q.num_dims() > p.num_dims() {
        return Err(Error::RankMismatch {
            context,
            argument: q_name,
            expected: format!(
                "at most {p_name}'s rank {} ({p_name}'s batch shape {:?} is the result's)",
                p.num_dims(),
                &p.as_slice()[..p.num_dims() - p_event_rank]
            ),
            actual: q.num_dims(),
        });
    }
    broadcast_shapes(context, p_name, p, q_name, q).map(|_| ())
}

/// Checks a host temperature (a relaxation's, given as an `f64`): finite and positive, else an
/// [`Error::InvalidArgument`] naming `context` and the value.
pub(crate) fn check_temperature(context: &'static str, temperature: f64) -> Result<()> {
    if temperature.is_finite() && temperature > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            context,
            argument: "temperature",
            expected: "finite and > 0".into(),
            actual: temperature.to_string(),
        })
    }
}

/// The shape `sample_shape ++ shape` of a draw, as an array of rank `DO`.
///
/// # Panics
/// If `DO` is not `sample_shape.len() + shape.num_dims()`; the message names both.
pub fn sample_dims<const DO: usize>(
    context: &'static str,
    sample_shape: &[usize],
    shape: &Shape,
) -> [usize; DO] {
    let rank = sample_shape.len() + shape.num_dims();
    assert!(
        rank == DO,
        "{context}: the requested sample rank DO = {DO} must equal sample_shape.len() ({}) + \
         the distribution's rank ({})",
        sample_shape.len(),
        shape.num_dims()
    );
    let mut out = [0usize; DO];
    out[..sample_shape.len()].copy_from_slice(sample_shape);
    out[sample_shape.len()..].copy_from_slice(shape.as_slice());
    out
}

/// Adds leading size-1 dimensions to a parameter so that it broadcasts against a value of rank
/// `DV >= D` (a value with sample dimensions in front).
pub fn lift<const D: usize, const DV: usize>(t: &Tensor<D>) -> Tensor<DV> {
    t.clone().unsqueeze::<DV>()
}

/// Two tensors broadcast to their common shape (by `expand`, no copy): for element-wise
/// formulas that mix masks of the value's shape with parameters of the batch shape.
pub(crate) fn broadcast_pair<const DV: usize>(a: Tensor<DV>, b: Tensor<DV>) -> [Tensor<DV>; 2] {
    let (da, db) = (a.dims(), b.dims());
    let mut dims = [0usize; DV];
    for i in 0..DV {
        dims[i] = da[i].max(db[i]);
    }
    [a.expand(dims), b.expand(dims)]
}

/// Host-side scan for the first element failing `ok`: `(flat index, value)`.
fn first_failing<const D: usize>(t: &Tensor<D>, ok: impl Fn(f64) -> bool) -> Option<(usize, f64)> {
    t.clone()
        .into_data()
        .iter::<f64>()
        .enumerate()
        .find(|&(_, v)| !ok(v))
}

/// For [`Distribution::validate`]: an [`Error::InvalidParameter`] naming the distribution, the
/// parameter, the domain in words and the first element of `t` that fails `ok` (reads `t` to
/// the host).
pub fn check_param<const D: usize>(
    distribution: &'static str,
    parameter: &'static str,
    expected: &'static str,
    t: &Tensor<D>,
    ok: impl Fn(f64) -> bool,
) -> Result<()> {
    match first_failing(t, ok) {
        None => Ok(()),
        Some((index, value)) => Err(Error::InvalidParameter {
            distribution,
            parameter,
            expected,
            value,
            index,
        }),
    }
}

/// For [`Distribution::check_support`]: an [`Error::OutsideSupport`] naming the distribution,
/// the support in words and the first element of `value` that fails `ok` (reads `value` to
/// the host).
pub fn check_values<const D: usize>(
    distribution: &'static str,
    support: &'static str,
    value: &Tensor<D>,
    ok: impl Fn(f64) -> bool,
) -> Result<()> {
    match first_failing(value, ok) {
        None => Ok(()),
        Some((index, value)) => Err(Error::OutsideSupport {
            distribution,
            support,
            value,
            index,
        }),
    }
}
