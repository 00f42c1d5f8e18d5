//! The categorical distribution over class indices.

use burn::tensor::{Device, Int, Shape, Tensor};

use crate::distribution::{Distribution, Entropy, Mode, check_param, check_values, sample_dims};
use crate::error::Result;
use crate::fused;
use crate::kl::KlDivergence;
use crate::math::{log_softmax, logsumexp_shifted};
use crate::noise;
use crate::one_hot_categorical::{categorical_kl_keepdim, check_logits, entropy_from_log_probs};

/// A batch of categorical distributions over the class indices `{0, …, K − 1}`, from logits of
/// shape `batch ++ [K]` (rank `D`): batch rank `D − 1`, event shape `[]`
/// (`torch.distributions.Categorical`, `tfd.Categorical`). `Categorical<2>` with logits
/// `[B, K]` is a [`Distribution<1>`]: its draws and `log_prob` are `[B]`.
///
/// Values are class indices. The [`Distribution`] methods carry them as float tensors holding
/// whole numbers (as [`Bernoulli`](crate::Bernoulli) carries 0/1), so that a categorical
/// composes with everything written for the trait; [`Self::sample_indices`] and
/// [`Self::log_prob_indices`] take and give integer tensors, as torch's `sample()` and
/// `log_prob(value)` do.
///
/// # Mass function
/// ```text
/// ln p(k) = ln softmax(ℓ)_k = ℓ_k − logsumexp(ℓ)
/// ```
/// Entropy `−Σₖ pₖ ln pₖ`; mode the index of the largest logit. A value that is not a class
/// index (negative, `≥ K` or fractional) has log-mass `−∞`; the opt-in
/// [`Distribution::check_support`] names it. Samples by the Gumbel-max trick,
/// `argmax(ℓ + g)`, `g` standard Gumbel noise. There is no reparameterized sampler: use
/// [`RelaxedOneHotCategorical`](crate::RelaxedOneHotCategorical) or
/// [`OneHotCategoricalStraightThrough`](crate::OneHotCategoricalStraightThrough).
///
/// # KL divergence
/// `KL(p ‖ q) = Σₖ pₖ (ln pₖ − ln qₖ)` from the logits, finite when a probability underflows.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use burn_probability::{Categorical, Distribution, Entropy};
///
/// let device = Device::flex();
/// let c = Categorical::new(Tensor::<2>::from_floats([[0.0, 1.0, 2.0], [5.0, 0.0, 0.0]], &device));
/// let k: Tensor<1, Int> = c.sample_indices();                 // [2]
/// let lp = c.log_prob_indices(Tensor::<1, Int>::from_ints([2, 0], &device));
/// assert_eq!(lp.dims(), [2]);
/// assert_eq!(c.entropy().dims(), [2]);
/// # let _ = k;
/// ```
#[derive(Clone, Debug)]
pub struct Categorical<const D: usize> {
    logits: Tensor<D>,
}

impl<const D: usize> Categorical<D> {
    /// From logits of shape `batch ++ [K]` (any finite reals; normalized by softmax).
    ///
    /// # Panics
    /// If the logits have no class dimension of size at least 1; the message is
    /// [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new(logits: Tensor<D>) -> Self {
        Self::try_new(logits).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`](crate::Error) instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if the last dimension has
    /// size 0.
    pub fn try_new(logits: Tensor<D>) -> Result<Self> {
        check_logits("Categorical", &logits)?;
        Ok(Self { logits })
    }

    /// From probabilities of shape `batch ++ [K]` (nonnegative, normalized along the last
    /// dimension): the logits are their logarithms, clamped below at float32's smallest normal
    /// number so that a probability of 0 gives a large finite negative logit.
    #[track_caller]
    pub fn from_probs(probs: Tensor<D>) -> Self {
        Self::new(probs.clamp_min(f32::MIN_POSITIVE).log())
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

    /// The log-mass of the indices `value` (rank `DV ≥ D − 1`, shape
    /// `[sample_shape ++] batch`, float whole numbers), keepdim: rank `DV`.
    fn log_prob_flat<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let k = self.num_classes();
        let batch_rank = D - 1;
        // The broadcast shape of the value and of the batch, right-aligned.
        let vdims = value.dims();
        let ldims = self.logits.dims();
        let mut out = vdims;
        for i in 0..batch_rank {
            let (v, l) = (&mut out[DV - batch_rank + i], ldims[i]);
            if *v == 1 {
                *v = l;
            }
        }
        let mut logits_dims = [0usize; D];
        logits_dims[..batch_rank].copy_from_slice(&out[DV - batch_rank..]);
        logits_dims[batch_rank] = k;
        let batch: usize = out[DV - batch_rank..].iter().product();
        let samples: usize = out[..DV - batch_rank].iter().product();
        let rows = samples * batch;
        let logits = self
            .logits
            .clone()
            .expand(logits_dims)
            .reshape([1, batch, k])
            .expand([samples, batch, k])
            .reshape([rows, k]);
        let value = value.expand(out).reshape([rows]);
        let (logits, value) = match fused::log_softmax_gather(logits, value) {
            Ok(log_p) => return log_p.reshape(out),
            Err(inputs) => inputs,
        };
        // ln p(k) = ℓ_k − logsumexp(ℓ): the normalizer per row, the logit gathered.
        let normalizer = logsumexp_shifted(logits.clone(), 1);
        let value = value.reshape([rows, 1]);
        // Indices outside {0, …, K − 1} or between them read class 0 and get −∞.
        let valid = value
            .clone()
            .greater_equal_elem(0.0)
            .bool_and(value.clone().lower_elem(k as f64))
            .bool_and(value.clone().equal(value.clone().floor()));
        let index = value.clamp(0.0, (k - 1) as f64).int();
        (logits.gather(1, index) - normalizer)
            .mask_fill(valid.bool_not(), f32::NEG_INFINITY)
            .reshape(out)
    }
}

macro_rules! impl_categorical {
    ($($d:literal => $b:literal),*) => {$(
        impl Categorical<$d> {
            /// One draw of class indices, shape `batch_shape`, as an integer tensor (torch's
            /// `sample()`).
            pub fn sample_indices(&self) -> Tensor<$b, Int> {
                self.sample().int()
            }

            /// The log-mass of integer class indices of shape `batch_shape` (size-1
            /// dimensions broadcast), torch's `log_prob(value)`.
            ///
            /// # Panics
            /// If the shapes do not broadcast; the message is [`Distribution::try_log_prob`]'s
            /// error.
            #[track_caller]
            pub fn log_prob_indices(&self, value: Tensor<$b, Int>) -> Tensor<$b> {
                self.log_prob(value.float())
            }
        }

        impl Distribution<$b> for Categorical<$d> {
            type Batch = Tensor<$b>;
            const EVENT_RANK: usize = 0;
            const NAME: &'static str = "Categorical";

            /// `batch_shape`: the logits' shape without the class dimension.
            fn shape(&self) -> Shape {
                let dims = self.logits.dims();
                Shape::from(dims[..$b].to_vec())
            }

            fn device(&self) -> Device {
                self.logits.device()
            }

            fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
                self.log_prob_flat(value)
            }

            /// `argmax(ℓ + g)` (the Gumbel-max trick), as float class indices.
            fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
                let dims: [usize; DO] =
                    sample_dims::<DO>("Categorical::sample", sample_shape, &Distribution::<$b>::shape(self));
                let k = self.num_classes();
                let samples: usize = sample_shape.iter().product();
                let rows: usize = dims.iter().product::<usize>() / samples.max(1);
                let logits = self.logits.clone().detach().reshape([1, rows, k]);
                let g = noise::standard_gumbel([samples, rows, k], &self.device());
                (logits + g).argmax(2).float().reshape(dims)
            }

            fn detach(&self) -> Self {
                Self { logits: self.logits.clone().detach() }
            }

            fn validate(&self) -> Result<()> {
                check_param("Categorical", "logits", "not NaN and below +∞", &self.logits, |l| {
                    !l.is_nan() && l < f64::INFINITY
                })
            }

            fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
                let k = self.num_classes() as f64;
                check_values("Categorical", "the class indices {0, …, K − 1}", value, |v| {
                    v >= 0.0 && v < k && v.fract() == 0.0
                })
            }
        }

        impl Entropy<$b> for Categorical<$d> {
            fn entropy_keepdim(&self) -> Tensor<$b> {
                crate::distribution::drop_trailing::<$d, $b>(entropy_from_log_probs(
                    self.log_probs(),
                ))
            }
        }

        impl Mode<$b> for Categorical<$d> {
            /// The index of the largest logit (the first one on a tie), as a float.
            fn mode(&self) -> Tensor<$b> {
                crate::distribution::drop_trailing::<$d, $b>(
                    self.logits.clone().detach().argmax($d - 1).float(),
                )
            }
        }

        impl<const DQ: usize> KlDivergence<Categorical<DQ>, $b> for Categorical<$d> {
            fn kl_divergence_keepdim(&self, q: &Categorical<DQ>) -> Tensor<$b> {
                crate::distribution::drop_trailing::<$d, $b>(categorical_kl_keepdim(
                    &self.logits,
                    &q.logits,
                ))
            }
        }
    )*};
}
impl_categorical!(1 => 0, 2 => 1, 3 => 2, 4 => 3, 5 => 4, 6 => 5, 7 => 6, 8 => 7);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kl::kl_divergence;

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    #[test]
    fn log_prob_reads_indices_and_rejects_non_indices() {
        let device = Device::flex();
        let logits = [[0.0f32, 1.0, 2.0], [5.0, 0.0, -5.0]];
        let c = Categorical::new(Tensor::<2>::from_floats(logits, &device));
        let lp = vals(c.log_prob(Tensor::<1>::from_floats([2.0, 1.0], &device)));
        let lse = |l: [f32; 3]| l.iter().map(|v| (*v as f64).exp()).sum::<f64>().ln();
        assert!((lp[0] - (2.0 - lse(logits[0]))).abs() < 1e-6, "{lp:?}");
        assert!((lp[1] - (0.0 - lse(logits[1]))).abs() < 1e-5, "{lp:?}");
        // Two sample rows, and values that are not class indices.
        let v = Tensor::<2>::from_floats([[0.0, 3.0], [1.5, -1.0]], &device);
        let lp = vals(c.log_prob_with_shape::<2, 2>(v.clone()));
        assert!(
            lp[0].is_finite() && lp[1..].iter().all(|v| *v == f64::NEG_INFINITY),
            "{lp:?}"
        );
        assert!(c.check_support(&v).unwrap_err().to_string().contains("3"));
    }

    #[test]
    fn gumbel_max_samples_follow_the_probabilities() {
        // Chi-square with 4 degrees of freedom over 50,000 draws: the 0.999 quantile is 18.47.
        let device = Device::flex();
        device.seed(11);
        let logits = [1.0f32, 0.0, -2.0, 0.5, 0.25];
        let c = Categorical::new(Tensor::<1>::from_floats(logits, &device));
        let n = 50_000;
        let draws = vals(c.sample_n(n));
        let probs = vals(c.probs());
        let mut counts = [0f64; 5];
        for d in draws {
            counts[d as usize] += 1.0;
        }
        let chi2: f64 = counts
            .iter()
            .zip(&probs)
            .map(|(c, p)| (c - n as f64 * p).powi(2) / (n as f64 * p))
            .sum();
        assert!(chi2 < 18.47, "chi2 = {chi2}, counts {counts:?}");
    }

    #[test]
    fn kl_is_zero_for_equal_and_positive_for_different_logits() {
        let device = Device::flex();
        let p = Categorical::new(Tensor::<2>::from_floats(
            [[0.0, 1.0], [3.0, -100.0]],
            &device,
        ));
        let q = Categorical::new(Tensor::<1>::from_floats([0.5, 0.5], &device));
        assert!(vals(kl_divergence(&p, &p)).iter().all(|k| k.abs() < 1e-6));
        let kl = vals(kl_divergence(&p, &q));
        assert!(kl.iter().all(|k| k.is_finite() && *k > 0.0), "{kl:?}");
    }
}
