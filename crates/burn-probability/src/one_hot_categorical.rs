//! The one-hot categorical distribution, and its straight-through Gumbel-softmax sampler.

use burn::tensor::{Device, Int, Shape, Tensor};

use crate::distribution::{
    Distribution, Entropy, Mode, Moments, OneLess, Rank, Rsample, check_param, check_temperature,
    check_values, lift, sample_dims, sum_keep,
};
use crate::error::{Error, Result};
use crate::kl::KlDivergence;
use crate::math::log_softmax;
use crate::noise;

/// A batch of categorical distributions over `K` classes whose draws are one-hot vectors:
/// logits of shape `batch ++ [K]` (rank `D`), event shape `[K]`, batch rank `D − 1`
/// (`torch.distributions.OneHotCategorical`, `tfd.OneHotCategorical`).
///
/// Logits need not be normalized: the probabilities are `softmax(ℓ)`, and every formula is
/// written with `ln softmax(ℓ) = ℓ − logsumexp(ℓ)`, finite for finite logits, so that a
/// probability that underflows to 0 (logits of ±100) gives finite values and gradients.
///
/// # Mass function
/// ```text
/// ln p(x) = Σₖ xₖ ln softmax(ℓ)ₖ          x a one-hot vector
/// ```
/// Mean `softmax(ℓ)`; variance `pₖ (1 − pₖ)` (the diagonal of the covariance); entropy
/// `−Σₖ pₖ ln pₖ`; mode the one-hot vector of the largest logit. Samples by the Gumbel-max
/// trick, `onehot(argmax(ℓ + g))`, `g` standard Gumbel noise.
///
/// Not reparameterizable: [`OneHotCategoricalStraightThrough`] is the same distribution with a
/// (biased) straight-through gradient, and
/// [`RelaxedOneHotCategorical`](crate::RelaxedOneHotCategorical) its continuous relaxation.
///
/// # KL divergence
/// `KL(p ‖ q) = Σₖ pₖ (ln pₖ − ln qₖ)` from the logits, finite when a probability underflows.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{kl_divergence, Distribution, OneHotCategorical};
///
/// let device = Device::flex();
/// // 4 examples, each with 30 categorical variables of 10 classes.
/// let q = OneHotCategorical::new(Tensor::<3>::zeros([4, 30, 10], &device));
/// let x = q.sample();                                  // [4, 30, 10], one-hot
/// assert_eq!(q.log_prob(x).dims(), [4, 30]);
/// // A uniform prior with batch shape []:
/// let prior = OneHotCategorical::new(Tensor::<1>::zeros([10], &device));
/// assert_eq!(kl_divergence(&q, &prior).dims(), [4, 30]);
/// ```
#[derive(Clone, Debug)]
pub struct OneHotCategorical<const D: usize> {
    logits: Tensor<D>,
}

/// Checks that logits have at least one class (the last dimension).
pub(crate) fn check_logits<const D: usize>(
    context: &'static str,
    logits: &Tensor<D>,
) -> Result<()> {
    if D == 0 || logits.dims()[D - 1] == 0 {
        return Err(Error::InvalidArgument {
            context,
            argument: "logits",
            expected: "a last dimension of at least one class".into(),
            actual: format!("shape {:?}", logits.dims()),
        });
    }
    Ok(())
}

/// The one-hot vectors of the largest entry along the last dimension of `t`.
pub(crate) fn one_hot_argmax<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    let dims = t.dims();
    let k = dims[D - 1];
    let index = t.argmax(D - 1).expand(dims);
    let mut classes = [1usize; D];
    classes[D - 1] = k;
    let classes = Tensor::<1, Int>::arange(0..k as i64, &index.device())
        .reshape(classes)
        .expand(dims);
    index.equal(classes).float()
}

/// `−Σₖ pₖ ln pₖ` over the last dimension from `ln p`, keepdim: the categorical entropy, `0`
/// where a probability underflows (its logarithm stays finite).
pub(crate) fn entropy_from_log_probs<const D: usize>(log_p: Tensor<D>) -> Tensor<D> {
    -(log_p.clone().exp() * log_p).sum_dim(D - 1)
}

/// The Gumbel-softmax `softmax((ℓ + g) / t)` over the last dimension, for noise `g` of rank
/// `DO ≥ D` (sample dimensions in front).
pub(crate) fn gumbel_softmax<const D: usize, const DO: usize>(
    logits: &Tensor<D>,
    noise: Tensor<DO>,
    temperature: f64,
) -> Tensor<DO> {
    let scores = (lift::<D, DO>(logits) + noise) / temperature;
    burn::tensor::activation::softmax(scores, DO - 1)
}

impl<const D: usize> OneHotCategorical<D> {
    /// From logits of shape `batch ++ [K]` (any finite reals; normalized by softmax).
    ///
    /// # Panics
    /// If the logits have no class dimension of size at least 1; the message is
    /// [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new(logits: Tensor<D>) -> Self {
        Self::try_new(logits).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the last dimension has size 0.
    pub fn try_new(logits: Tensor<D>) -> Result<Self> {
        check_logits("OneHotCategorical", &logits)?;
        Ok(Self { logits })
    }

    /// From probabilities of shape `batch ++ [K]` (nonnegative, normalized along the last
    /// dimension): the logits are their logarithms, clamped below at float32's smallest normal
    /// number so that a probability of 0 gives a large finite negative logit.
    #[track_caller]
    pub fn from_probs(probs: Tensor<D>) -> Self {
        Self::new(probs.clamp_min(f32::MIN_POSITIVE).log())
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self>
    where
        Rank<D>: OneLess<D>,
    {
        self.validate()?;
        Ok(self)
    }

    /// The logits `ℓ`, as given.
    pub fn logits(&self) -> &Tensor<D> {
        &self.logits
    }

    /// The number of classes `K`.
    pub fn num_classes(&self) -> usize {
        self.logits.dims()[D - 1]
    }

    /// `softmax(ℓ)` along the last dimension.
    pub fn probs(&self) -> Tensor<D> {
        burn::tensor::activation::softmax(self.logits.clone(), D - 1)
    }

    /// `ln softmax(ℓ)` along the last dimension (finite for finite logits).
    pub fn log_probs(&self) -> Tensor<D> {
        log_softmax(self.logits.clone(), D - 1)
    }
}

impl<const D: usize> Distribution<D> for OneHotCategorical<D>
where
    Rank<D>: OneLess<D>,
{
    type Batch = <Rank<D> as OneLess<D>>::Batch;
    const EVENT_RANK: usize = 1;
    const NAME: &'static str = "OneHotCategorical";

    fn shape(&self) -> Shape {
        self.logits.shape()
    }

    fn device(&self) -> Device {
        self.logits.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        (value * lift::<D, DV>(&self.log_probs())).sum_dim(DV - 1)
    }

    /// `onehot(argmax(ℓ + g))` (the Gumbel-max trick), as float 0/1.
    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("OneHotCategorical::sample", sample_shape, &self.shape());
        let g = noise::standard_gumbel(dims, &self.device());
        one_hot_argmax(lift::<D, DO>(&self.logits.clone().detach()) + g)
    }

    fn detach(&self) -> Self {
        Self {
            logits: self.logits.clone().detach(),
        }
    }

    fn validate(&self) -> Result<()> {
        check_param(
            "OneHotCategorical",
            "logits",
            "not NaN and below +∞",
            &self.logits,
            |l| !l.is_nan() && l < f64::INFINITY,
        )
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values(
            "OneHotCategorical",
            "one-hot vectors (entries 0 or 1)",
            value,
            |v| v == 0.0 || v == 1.0,
        )?;
        let sums = value.clone().sum_dim(DV - 1);
        check_values(
            "OneHotCategorical",
            "one-hot vectors (one entry 1 per vector)",
            &sums,
            |s| s == 1.0,
        )
    }
}

impl<const D: usize> Entropy<D> for OneHotCategorical<D>
where
    Rank<D>: OneLess<D>,
{
    fn entropy_keepdim(&self) -> Tensor<D> {
        entropy_from_log_probs(self.log_probs())
    }
}

impl<const D: usize> Moments<D> for OneHotCategorical<D>
where
    Rank<D>: OneLess<D>,
{
    fn mean(&self) -> Tensor<D> {
        self.probs()
    }
    fn variance(&self) -> Tensor<D> {
        let p = self.probs();
        p.clone() * (-p + 1.0)
    }
}

impl<const D: usize> Mode<D> for OneHotCategorical<D>
where
    Rank<D>: OneLess<D>,
{
    /// The one-hot vector of the largest logit (the first one on a tie).
    fn mode(&self) -> Tensor<D> {
        one_hot_argmax(self.logits.clone().detach())
    }
}

/// `Σₖ pₖ (ln pₖ − ln qₖ)` with `ln p`, `ln q` from [`log_softmax`], keepdim.
pub(crate) fn categorical_kl_keepdim<const D: usize, const DQ: usize>(
    p_logits: &Tensor<D>,
    q_logits: &Tensor<DQ>,
) -> Tensor<D> {
    let log_p = log_softmax(p_logits.clone(), D - 1);
    let log_q = lift::<DQ, D>(&log_softmax(q_logits.clone(), DQ - 1));
    sum_keep(log_p.clone().exp() * (log_p - log_q), D - 1, D)
}

impl<const D: usize, const DQ: usize> KlDivergence<OneHotCategorical<DQ>, D>
    for OneHotCategorical<D>
where
    Rank<D>: OneLess<D>,
{
    fn kl_divergence_keepdim(&self, q: &OneHotCategorical<DQ>) -> Tensor<D> {
        categorical_kl_keepdim(&self.logits, &q.logits)
    }
}

/// [`OneHotCategorical`] with the straight-through Gumbel-softmax sampler of Jang, Gu and Poole
/// (2017): `rsample` returns exact one-hot vectors `h = onehot(argmax(y))` whose gradient is
/// that of the relaxed sample `y = softmax((ℓ + g) / t)` (computed as `h + y − stop_gradient(y)`).
///
/// The distribution *is* the one-hot categorical: `log_prob`, entropy, moments, mode and the
/// closed-form KL (against [`OneHotCategorical`] or another straight-through one) are the
/// categorical's, so it is a posterior for the [objectives](crate::objectives) whose ELBO
/// is the discrete model's, with a biased, low-variance gradient. The temperature `t > 0`
/// only shapes that gradient.
///
/// torch's `OneHotCategoricalStraightThrough` has no temperature: its gradient is that of the
/// probabilities (`h + p − stop_gradient(p)`); this type follows the paper.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Distribution, OneHotCategoricalStraightThrough, Rsample};
///
/// let device = Device::flex().autodiff();
/// let logits = Tensor::<2>::zeros([8, 10], &device).require_grad();
/// let q = OneHotCategoricalStraightThrough::new(0.5, logits.clone());
/// let h = q.rsample();                                     // [8, 10], exactly one-hot
/// let loss = (h * Tensor::<2>::ones([8, 10], &device)).sum();
/// let grads = loss.backward();
/// assert!(logits.grad(&grads).is_some());
/// ```
#[derive(Clone, Debug)]
pub struct OneHotCategoricalStraightThrough<const D: usize> {
    temperature: f64,
    categorical: OneHotCategorical<D>,
}

impl<const D: usize> OneHotCategoricalStraightThrough<D> {
    /// From the temperature of the relaxation whose gradient the samples carry and the logits.
    ///
    /// # Panics
    /// As [`Self::try_new`].
    #[track_caller]
    pub fn new(temperature: f64, logits: Tensor<D>) -> Self {
        Self::try_new(temperature, logits).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `temperature` is finite and `> 0`, or if the logits
    /// have no class.
    pub fn try_new(temperature: f64, logits: Tensor<D>) -> Result<Self> {
        check_temperature("OneHotCategoricalStraightThrough", temperature)?;
        check_logits("OneHotCategoricalStraightThrough", &logits)?;
        Ok(Self {
            temperature,
            categorical: OneHotCategorical { logits },
        })
    }

    /// The temperature `t`.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// The logits `ℓ`.
    pub fn logits(&self) -> &Tensor<D> {
        &self.categorical.logits
    }

    /// The one-hot categorical this samples from.
    pub fn categorical(&self) -> &OneHotCategorical<D> {
        &self.categorical
    }
}

impl<const D: usize> Distribution<D> for OneHotCategoricalStraightThrough<D>
where
    Rank<D>: OneLess<D>,
{
    type Batch = <Rank<D> as OneLess<D>>::Batch;
    const EVENT_RANK: usize = 1;
    const NAME: &'static str = "OneHotCategoricalStraightThrough";

    fn shape(&self) -> Shape {
        self.categorical.shape()
    }
    fn device(&self) -> Device {
        self.categorical.device()
    }
    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        self.categorical.log_prob_keepdim(value)
    }
    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.categorical.sample_with_shape(sample_shape)
    }
    fn detach(&self) -> Self {
        Self {
            temperature: self.temperature,
            categorical: self.categorical.detach(),
        }
    }
    fn validate(&self) -> Result<()> {
        self.categorical.validate()
    }
    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        self.categorical.check_support(value)
    }
}

impl<const D: usize> Rsample<D> for OneHotCategoricalStraightThrough<D>
where
    Rank<D>: OneLess<D>,
{
    /// Standard Gumbel noise ([`noise::standard_gumbel`]).
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>(
            "OneHotCategoricalStraightThrough::noise",
            sample_shape,
            &self.shape(),
        );
        noise::standard_gumbel(dims, &self.device())
    }

    /// `h + y − stop_gradient(y)`, `y = softmax((ℓ + g) / t)`, `h = onehot(argmax(y))`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        let y = gumbel_softmax(&self.categorical.logits, noise, self.temperature);
        let hard = one_hot_argmax(y.clone().detach());
        hard + y.clone() - y.detach()
    }
}

impl<const D: usize> Entropy<D> for OneHotCategoricalStraightThrough<D>
where
    Rank<D>: OneLess<D>,
{
    fn entropy_keepdim(&self) -> Tensor<D> {
        self.categorical.entropy_keepdim()
    }
}

impl<const D: usize> Moments<D> for OneHotCategoricalStraightThrough<D>
where
    Rank<D>: OneLess<D>,
{
    fn mean(&self) -> Tensor<D> {
        self.categorical.mean()
    }
    fn variance(&self) -> Tensor<D> {
        self.categorical.variance()
    }
}

impl<const D: usize> Mode<D> for OneHotCategoricalStraightThrough<D>
where
    Rank<D>: OneLess<D>,
{
    fn mode(&self) -> Tensor<D> {
        self.categorical.mode()
    }
}

impl<const D: usize, const DQ: usize> KlDivergence<OneHotCategorical<DQ>, D>
    for OneHotCategoricalStraightThrough<D>
where
    Rank<D>: OneLess<D>,
{
    fn kl_divergence_keepdim(&self, q: &OneHotCategorical<DQ>) -> Tensor<D> {
        categorical_kl_keepdim(&self.categorical.logits, &q.logits)
    }
}

impl<const D: usize, const DQ: usize> KlDivergence<OneHotCategoricalStraightThrough<DQ>, D>
    for OneHotCategoricalStraightThrough<D>
where
    Rank<D>: OneLess<D>,
{
    fn kl_divergence_keepdim(&self, q: &OneHotCategoricalStraightThrough<DQ>) -> Tensor<D> {
        categorical_kl_keepdim(&self.categorical.logits, &q.categorical.logits)
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
    fn extreme_logits_give_finite_values_kl_and_gradients() {
        let device = Device::flex().autodiff();
        let logits =
            Tensor::<2>::from_floats([[100.0, -100.0, 0.0], [-100.0, -100.0, 100.0]], &device)
                .require_grad();
        let p = OneHotCategorical::new(logits.clone());
        let q = OneHotCategorical::new(Tensor::<1>::from_floats([0.0, 0.0, 0.0], &device));
        let x = Tensor::<2>::from_floats([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], &device);
        let lp = p.log_prob(x);
        let kl = kl_divergence(&p, &q);
        let h = p.entropy();
        let l = vals(lp.clone());
        assert!(
            (l[0] + 200.0).abs() < 1e-3 && (l[1] + 200.0).abs() < 1e-3,
            "{l:?}"
        );
        // p is (almost exactly) a vertex: KL = ln 3, entropy 0.
        assert!(
            vals(kl.clone())
                .iter()
                .all(|k| (k - 3f64.ln()).abs() < 1e-5)
        );
        assert!(vals(h.clone()).iter().all(|e| e.abs() < 1e-5));
        let grads = (lp.sum() + kl.sum() + h.sum()).backward();
        assert!(
            vals(logits.grad(&grads).unwrap())
                .iter()
                .all(|g| g.is_finite())
        );
    }

    #[test]
    fn straight_through_samples_are_one_hot_and_carry_the_relaxed_gradient() {
        let device = Device::flex().autodiff();
        let logits = Tensor::<2>::from_floats([[0.5, -0.3, 1.2, 0.0]], &device).require_grad();
        let t = 0.7;
        let st = OneHotCategoricalStraightThrough::new(t, logits.clone());
        let g = Tensor::<2>::from_floats([[0.1, 2.0, -0.4, 0.3]], &device);
        let w = Tensor::<2>::from_floats([[1.0, -2.0, 0.5, 3.0]], &device);
        let h = st.rsample_with_noise(g.clone());
        assert_eq!(vals(h.clone()), vec![0.0, 1.0, 0.0, 0.0]);
        let grads = (h * w.clone()).sum().backward();
        let got = vals(logits.grad(&grads).unwrap());
        // d/dℓ Σ w softmax((ℓ+g)/t) = y ⊙ (w − Σ w y) / t, computed here in f64.
        let s: Vec<f64> = [0.5, -0.3, 1.2, 0.0]
            .iter()
            .zip([0.1, 2.0, -0.4, 0.3])
            .map(|(l, g)| (l + g) / t)
            .collect();
        let m = s.iter().cloned().fold(f64::MIN, f64::max);
        let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
        let y: Vec<f64> = s.iter().map(|v| (v - m).exp() / z).collect();
        let wv = [1.0, -2.0, 0.5, 3.0];
        let wy: f64 = y.iter().zip(wv).map(|(y, w)| y * w).sum();
        for k in 0..4 {
            let want = y[k] * (wv[k] - wy) / t;
            assert!((got[k] - want).abs() < 1e-5, "{got:?} vs {want}");
        }
    }

    #[test]
    fn sample_frequencies_follow_the_probabilities() {
        // Chi-square with 3 degrees of freedom over 40,000 draws: the 0.999 quantile is 16.27.
        let device = Device::flex();
        device.seed(7);
        let logits = [0.3f32, -1.0, 1.5, 0.0];
        let p = OneHotCategorical::new(Tensor::<1>::from_floats(logits, &device));
        let n = 40_000usize;
        let counts = vals(p.sample_n(n).sum_dim(0));
        let probs = vals(p.probs());
        let chi2: f64 = counts
            .iter()
            .zip(&probs)
            .map(|(c, p)| (c - n as f64 * p).powi(2) / (n as f64 * p))
            .sum();
        assert!(chi2 < 16.27, "chi2 = {chi2}, counts {counts:?}");
        assert_eq!(counts.iter().sum::<f64>(), n as f64);
    }
}
