//! Mixtures of distributions of one family.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Shape, Tensor};

use crate::categorical::Categorical;
use crate::distribution::{
    BatchTensor, Cdf, Distribution, Moments, OneLess, OneMore, Rank, Rsample, sample_dims,
};
use crate::error::{Error, Result};
use crate::math::{log_softmax, logsumexp};
use crate::mvn_diag::MultivariateNormalDiag;
use crate::noise;
use crate::normal::Normal;

/// The rank at which a mixture evaluates its components: the value's rank plus the component
/// axis, padded with leading size-1 dimensions (burn's ranks are types; this one holds every
/// value rank up to 7).
const WORK: usize = 8;

/// A batch of finite mixtures `p(x) = Σ_m w_m p_m(x)` of `M` components of one family
/// (`tfd.MixtureSameFamily`, `torch.distributions.MixtureSameFamily`): the weights
/// `w = softmax(logits)` of a [`Categorical`] over `M`, and the components a distribution
/// whose batch shape ends in `M` (`[..., M]`, with any event shape after it), for example a
/// `Normal<2>` of shape `[B, M]` (univariate mixtures), or a `MultivariateNormalDiag<3>` of
/// shape `[B, M, K]` (a mixture-of-Gaussians prior over `K` latents).
///
/// # Formulas
/// ```text
/// ln p(x) = logsumexp_m (ln w_m + ln p_m(x))
/// mean    = Σ_m w_m μ_m
/// var     = Σ_m w_m (σ_m² + (μ_m − mean)²)           (element-wise, the law of total variance)
/// cdf(x)  = Σ_m w_m F_m(x)                           (univariate components)
/// ```
/// The variance is summed around the mixture's mean, not as `E[x²] − mean²`, which cancels
/// when the components sit far from 0. Sampling draws a component index from the weights and
/// a sample of every component, and keeps the chosen one. Mixtures of univariate components
/// (with a cdf) and of diagonal Gaussians also [`Rsample`]: by implicit reparameterization
/// through the mixture's cdf, or through its conditional cdfs coordinate by coordinate. The type's `D` is the mixture's
/// rank, one less than the components' (name it: `MixtureSameFamily::<_, 1>::new(..)` for
/// components of rank 2).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Categorical, Distribution, MixtureSameFamily, Moments, Normal};
///
/// let device = Device::flex();
/// // A batch of one mixture of two Normals: ½ N(−1, 1) + ½ N(1, 1).
/// let mixture = Categorical::new(Tensor::<2>::zeros([1, 2], &device));
/// let components = Normal::new(Tensor::<2>::from_floats([[-1.0, 1.0]], &device), 1.0);
/// let d = MixtureSameFamily::<_, 1>::new(mixture, components);  // rank 1: batch [1]
/// let mean: f32 = d.mean().into_scalar();
/// let var: f32 = d.variance().into_scalar();
/// assert!(mean.abs() < 1e-6 && (var - 2.0).abs() < 1e-6);      // 1 + E[μ²]
/// let lp: f32 = d.log_prob(Tensor::<1>::zeros([1], &device)).into_scalar();
/// assert!((lp - (-0.5f32 - 0.918_938_5)).abs() < 1e-5);         // N(0; ±1, 1)
/// ```
#[derive(Clone, Debug)]
pub struct MixtureSameFamily<C, const D: usize> {
    /// `ln w`, normalized, at the working rank: `[1, …, batch…, M, 1, …]` (size-1 event
    /// dimensions).
    log_weights: Tensor<WORK>,
    components: C,
}

impl<C, const D: usize> MixtureSameFamily<C, D> {
    /// The mixture of `components` (batch shape `[..., M]`) with weights
    /// `softmax(mixture.logits())` (shape `[..., M]`, the same batch).
    ///
    /// # Panics
    /// If the shapes do not fit; the message is [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new<const DL: usize, const DC: usize>(mixture: Categorical<DL>, components: C) -> Self
    where
        C: Distribution<DC>,
    {
        Self::try_new(mixture, components).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] naming `mixture_distribution` and `component_distribution`
    /// when the logits' shape is not the components' batch shape; [`Error::RankMismatch`]
    /// when the components' rank exceeds 7.
    pub fn try_new<const DL: usize, const DC: usize>(
        mixture: Categorical<DL>,
        components: C,
    ) -> Result<Self>
    where
        C: Distribution<DC>,
    {
        let shape = components.shape();
        let dims = shape.as_slice();
        let event = C::EVENT_RANK;
        if DC >= WORK || D + 1 != DC {
            return Err(Error::RankMismatch {
                context: "MixtureSameFamily",
                argument: "component_distribution",
                expected: format!("{} (the mixture's rank {D} + 1), below {WORK}", D + 1),
                actual: DC,
            });
        }
        let logits = mixture.logits().clone();
        let batch = &dims[..DC - event];
        if DC < event + 1 || logits.dims().as_slice() != batch {
            return Err(Error::ShapeMismatch {
                context: "MixtureSameFamily",
                left_name: "mixture_distribution (its logits)",
                left: logits.dims().to_vec(),
                right_name: "component_distribution (its batch shape, ending in M)",
                right: batch.to_vec(),
            });
        }
        let log_weights = log_softmax(logits, DL - 1);
        let mut work = [1usize; WORK];
        work[WORK - DC..WORK - event].copy_from_slice(batch);
        Ok(Self {
            log_weights: log_weights.reshape(work),
            components,
        })
    }

    /// The components.
    pub fn components(&self) -> &C {
        &self.components
    }

    /// The normalized log-weights `ln w`, shape `[..., M]` followed by size-1 event
    /// dimensions (the components' rank `DC = D + 1`).
    pub fn log_weights<const DC: usize>(&self) -> Tensor<DC> {
        let dims = self.log_weights.dims();
        let mut out = [0usize; DC];
        out.copy_from_slice(&dims[WORK - DC..]);
        self.log_weights.clone().reshape(out)
    }

    /// Sums `t` (the components' rank) over the component axis with the weights, and drops
    /// that axis: rank `D = DC − 1`.
    fn weighted_sum<const DC: usize>(&self, t: Tensor<DC>, event: usize) -> Tensor<D> {
        let axis = DC - 1 - event;
        let summed = (t * self.log_weights::<DC>().exp()).sum_dim(axis);
        let dims = summed.dims();
        let mut out = [0usize; D];
        let mut j = 0;
        for (i, d) in dims.iter().enumerate() {
            if i != axis {
                out[j] = *d;
                j += 1;
            }
        }
        summed.reshape(out)
    }

    /// `value` (rank `DV`) at the working rank with a size-1 component axis inserted before
    /// its event dimensions, and the dimensions of the result without that axis.
    fn with_component_axis<const DV: usize>(value: Tensor<DV>, event: usize) -> Tensor<WORK> {
        assert!(
            DV < WORK,
            "MixtureSameFamily supports values of rank below {WORK}"
        );
        let dims = value.dims();
        let pad = WORK - (DV + 1);
        let mut work = [1usize; WORK];
        work[pad..pad + DV - event].copy_from_slice(&dims[..DV - event]);
        work[WORK - event..].copy_from_slice(&dims[DV - event..]);
        value.reshape(work)
    }

    /// The log-weights at the working rank.
    fn log_weights_work(&self) -> Tensor<WORK> {
        self.log_weights.clone()
    }

    /// A tensor of the working rank with a size-1 component axis, back at rank `DV`.
    fn drop_component_axis<const DV: usize>(t: Tensor<WORK>, axis: usize) -> Tensor<DV> {
        let dims = t.dims();
        let mut out = [0usize; DV];
        let kept: Vec<usize> = (WORK - DV - 1..WORK)
            .filter(|&i| i != axis)
            .map(|i| dims[i])
            .collect();
        out.copy_from_slice(&kept);
        t.reshape(out)
    }
}

impl<C, const D: usize, const DC: usize, const DB: usize> Distribution<D>
    for MixtureSameFamily<C, D>
where
    C: Distribution<DC, Batch = Tensor<DB>>,
    Rank<D>: OneMore<D, Tensor = Tensor<DC>>,
    Rank<DB>: OneLess<DB>,
    <Rank<DB> as OneLess<DB>>::Batch: BatchTensor<D>,
{
    /// The components' batch type without the component axis.
    type Batch = <Rank<DB> as OneLess<DB>>::Batch;
    const EVENT_RANK: usize = C::EVENT_RANK;
    const NAME: &'static str = "MixtureSameFamily";

    fn shape(&self) -> Shape {
        let dims = self.components.shape();
        let axis = DC - 1 - C::EVENT_RANK;
        Shape::from(
            dims.as_slice()
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != axis)
                .map(|(_, d)| *d)
                .collect::<Vec<_>>(),
        )
    }

    fn device(&self) -> Device {
        self.components.device()
    }

    /// `logsumexp_m (ln w_m + ln p_m(x))`, the components evaluated at the value with a
    /// component axis inserted.
    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let v = Self::with_component_axis(value, C::EVENT_RANK);
        let lp = self.components.log_prob_keepdim::<WORK>(v) + self.log_weights_work();
        let axis = WORK - 1 - C::EVENT_RANK;
        Self::drop_component_axis(logsumexp(lp, axis), axis)
    }

    /// A component index `m ~ Categorical(w)` per draw (Gumbel-max), and the `m`-th
    /// component's sample.
    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let event = C::EVENT_RANK;
        // Checks the requested rank against the sample shape.
        let _: [usize; DO] = sample_dims::<DO>(
            "MixtureSameFamily::sample",
            sample_shape,
            &Distribution::<D>::shape(self),
        );
        // Every component's draw, at the working rank: [1.., sample.., batch.., M, event..].
        let pad = WORK - (DO + 1);
        let mut padded = vec![1usize; pad];
        padded.extend_from_slice(sample_shape);
        let all: Tensor<WORK> = self.components.sample_with_shape::<WORK>(&padded);
        // One-hot choice from the weights, by Gumbel-max along the component axis.
        let axis = WORK - 1 - event;
        let mut choice_dims = all.dims();
        for d in choice_dims.iter_mut().skip(WORK - event) {
            *d = 1;
        }
        let gumbel = noise::standard_gumbel(choice_dims, &self.device());
        let scores = self.log_weights_work().detach() + gumbel;
        let best = scores.clone().max_dim(axis);
        let one_hot = scores.greater_equal(best).float();
        let chosen = (all * one_hot).sum_dim(axis);
        Self::drop_component_axis(chosen, axis)
    }

    fn detach(&self) -> Self {
        Self {
            log_weights: self.log_weights.clone().detach(),
            components: self.components.detach(),
        }
    }

    fn validate(&self) -> Result<()> {
        self.components.validate()
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        self.components.check_support(value)
    }
}

impl<C, const D: usize, const DC: usize, const DB: usize> Moments<D> for MixtureSameFamily<C, D>
where
    C: Moments<DC> + Distribution<DC, Batch = Tensor<DB>>,
    Rank<D>: OneMore<D, Tensor = Tensor<DC>>,
    Rank<DB>: OneLess<DB>,
    <Rank<DB> as OneLess<DB>>::Batch: BatchTensor<D>,
{
    fn mean(&self) -> Tensor<D> {
        self.weighted_sum(self.components.mean(), C::EVENT_RANK)
    }

    fn variance(&self) -> Tensor<D> {
        let means = self.components.mean();
        let axis = DC - 1 - C::EVENT_RANK;
        let mean = (means.clone() * self.log_weights::<DC>().exp()).sum_dim(axis);
        self.weighted_sum(
            self.components.variance() + (means - mean).square(),
            C::EVENT_RANK,
        )
    }
}

impl<C, const D: usize> MixtureSameFamily<C, D> {
    /// The cumulative distribution function `Σ_m w_m F_m(x)` of a mixture of univariate
    /// components.
    pub fn cdf<const DV: usize, const DC: usize>(&self, value: Tensor<DV>) -> Tensor<DV>
    where
        C: Cdf<DC>,
    {
        let v = Self::with_component_axis(value, C::EVENT_RANK);
        let axis = WORK - 1 - C::EVENT_RANK;
        let f = (self.components.cdf::<WORK>(v) * self.log_weights_work().exp()).sum_dim(axis);
        Self::drop_component_axis(f, axis)
    }
}

/// Reparameterized sampling of univariate mixtures by implicit reparameterization (TFP's
/// `MixtureSameFamily(reparameterize=True)`; torch has none): the noise is a sample `x` itself
/// (no gradient), and the sample's gradient is that of the quantile at fixed `u = F(x)`,
/// `dx/dθ = −(∂F(x; θ)/∂θ)/p(x; θ)` for the weights and every component parameter, taken by
/// automatic differentiation of the mixture's cdf through the surrogate
/// `x + (F(x) − stop_gradient(F(x)))·(−1/p(x))`.
impl<C, const D: usize, const DC: usize, const DB: usize> Rsample<D> for MixtureSameFamily<C, D>
where
    C: Cdf<DC> + Distribution<DC, Batch = Tensor<DB>>,
    Rank<D>: OneMore<D, Tensor = Tensor<DC>>,
    Rank<DB>: OneLess<DB>,
    <Rank<DB> as OneLess<DB>>::Batch: BatchTensor<D>,
{
    /// A sample of the mixture (no gradient).
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().sample_with_shape(sample_shape)
    }

    /// `x`, with the implicit gradient of the quantile at fixed `F(x)`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        let x = noise.detach();
        let f = self.cdf::<DO, DC>(x.clone());
        let density = self.log_prob_keepdim(x.clone()).exp().detach();
        x + (f.clone().detach() - f) / density
    }
}

/// Reparameterized sampling of mixtures of diagonal Gaussians by implicit reparameterization
/// through the distributional transform (TFP's `MixtureSameFamily(reparameterize=True)` for
/// factorized components): coordinate `k` of a sample is the quantile of its conditional cdf
/// given the coordinates before it,
/// ```text
/// F_k(x_k | x_<k) = Σ_m w_mk Φ((x_k − μ_mk)/σ_mk),   w_mk ∝ w_m Π_{j<k} N(x_j; μ_mj, σ_mj)
/// dx_k/dθ = −(∂F_k/∂θ + Σ_{j<k} ∂F_k/∂x_j dx_j/dθ) / p_k(x_k | x_<k)
/// ```
/// taken by automatic differentiation of the surrogate
/// `x_k + (stop_gradient(F_k) − F_k)/p_k`, coordinate after coordinate, with `F_k` evaluated at
/// the surrogates of the earlier coordinates (so that their gradients reach it). The noise is
/// a sample of the mixture (no gradient); `K` sequential steps.
impl<const D: usize, const DC: usize> Rsample<D>
    for MixtureSameFamily<MultivariateNormalDiag<DC>, D>
where
    Rank<DC>: OneLess<DC>,
    MultivariateNormalDiag<DC>: Distribution<DC>,
    Rank<D>: OneMore<D, Tensor = Tensor<DC>>,
    Self: Distribution<D>,
{
    /// A sample of the mixture (no gradient).
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().sample_with_shape(sample_shape)
    }

    /// `x`, with the implicit gradient of the distributional transform's inverse.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        let x = Self::with_component_axis(noise.detach(), 1);
        let k = x.dims()[WORK - 1];
        let axis = WORK - 2;
        let lift = |t: &Tensor<DC>| {
            let mut work = [1usize; WORK];
            work[WORK - DC..].copy_from_slice(&t.dims());
            t.clone().reshape(work)
        };
        let loc = lift(self.components.loc());
        let scale = lift(self.components.scale_diag());
        // ln w_m + Σ_{j<k} ln N(x_j; μ_mj, σ_mj), unnormalized over the components.
        let mut log_weights = self.log_weights_work();
        let mut coordinates = Vec::with_capacity(k);
        for i in 0..k {
            let normal = Normal::new(
                loc.clone().narrow(WORK - 1, i, 1),
                scale.clone().narrow(WORK - 1, i, 1),
            );
            let xi = x.clone().narrow(WORK - 1, i, 1);
            let w = softmax(log_weights.clone(), axis);
            let f = (normal.cdf::<WORK>(xi.clone()) * w.clone()).sum_dim(axis);
            let density = (normal.log_prob_keepdim(xi.clone()).exp() * w)
                .sum_dim(axis)
                .detach();
            let xi = xi + (f.clone().detach() - f) / density;
            log_weights = log_weights + normal.log_prob_keepdim(xi.clone());
            coordinates.push(xi);
        }
        Self::drop_component_axis(Tensor::cat(coordinates, WORK - 1), axis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MultivariateNormalDiag, Normal};

    fn dev() -> Device {
        Device::flex()
    }

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    #[test]
    fn a_batch_of_univariate_mixtures_matches_the_sum_of_weighted_densities() {
        // Two mixtures (batch 2) of three Normals each.
        let logits = Tensor::<2>::from_floats([[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]], &dev());
        let loc = Tensor::<2>::from_floats([[-2.0, 0.0, 3.0], [1.0, 1.5, -4.0]], &dev());
        let scale = Tensor::<2>::from_floats([[1.0, 0.5, 2.0], [0.3, 1.0, 1.0]], &dev());
        let d = MixtureSameFamily::<_, 1>::new(Categorical::new(logits), Normal::new(loc, scale));
        assert_eq!(d.shape().dims::<1>(), [2]);
        let x = Tensor::<2>::from_floats([[0.3, -1.0], [2.0, 1.2]], &dev()); // [sample 2, batch 2]
        let got = vals(d.log_prob_with_shape::<2, 2>(x));
        let l = [[0.0f64, 1.0, -1.0], [2.0, 0.0, 0.0]];
        let m = [[-2.0f64, 0.0, 3.0], [1.0, 1.5, -4.0]];
        let s = [[1.0f64, 0.5, 2.0], [0.3, 1.0, 1.0]];
        let xs = [[0.3f64, -1.0], [2.0, 1.2]];
        for n in 0..2 {
            for b in 0..2 {
                let z: f64 = l[b].iter().map(|v| v.exp()).sum();
                let p: f64 = (0..3)
                    .map(|k| {
                        let u = (xs[n][b] - m[b][k]) / s[b][k];
                        l[b][k].exp() / z * (-0.5 * u * u).exp()
                            / (s[b][k] * (2.0 * std::f64::consts::PI).sqrt())
                    })
                    .sum();
                assert!(
                    (got[n * 2 + b] - p.ln()).abs() < 1e-5,
                    "{n} {b}: {} vs {}",
                    got[n * 2 + b],
                    p.ln()
                );
            }
        }
    }

    #[test]
    fn a_mixture_of_diagonal_gaussians_has_one_density_per_vector() {
        let logits = Tensor::<1>::from_floats([0.0, 0.5], &dev());
        let loc = Tensor::<2>::from_floats([[0.0, 0.0], [3.0, -1.0]], &dev());
        let comps = MultivariateNormalDiag::new(loc, 1.0);
        let d = MixtureSameFamily::<_, 1>::new(Categorical::new(logits), comps);
        let x = Tensor::<1>::from_floats([1.0, 0.5], &dev());
        let lp = vals(d.log_prob(x))[0];
        let w1 = 1.0 / (1.0 + 0.5f64.exp());
        let n = |a: f64, b: f64| (-0.5 * (a * a + b * b)).exp() / (2.0 * std::f64::consts::PI);
        let want = (w1 * n(1.0, 0.5) + (1.0 - w1) * n(-2.0, 1.5)).ln();
        assert!((lp - want).abs() < 1e-5, "{lp} vs {want}");
    }

    #[test]
    fn mismatched_logits_are_an_error() {
        let e = MixtureSameFamily::<_, 0>::try_new(
            Categorical::new(Tensor::<1>::zeros([3], &dev())),
            Normal::new(Tensor::<1>::zeros([2], &dev()), 1.0),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("mixture_distribution") && e.contains("[3]") && e.contains("[2]"),
            "{e}"
        );
    }
}
