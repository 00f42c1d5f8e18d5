//! The importance-weighted bound of Burda, Grosse and Salakhutdinov (2016).

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use super::{
    Bound, GradientEstimator, Likelihood, Posterior, Prior, check_noise, check_prior,
    check_samples, draw_latents, flatten_samples, log_mean_exp, terms,
};
use crate::distribution::{OneMore, Rank, drop_trailing};
use crate::error::Result;

/// The importance-weighted bound with `k` samples per example:
/// `IWAE_k = ln (1/k) Σᵢ p(x, zᵢ) / q(zᵢ | x)`, computed with log-sum-exp (see the
/// [module docs](super) for shapes and the gradient estimators).
///
/// `k = 1` gives the Monte Carlo ELBO exactly (same noise, same value); the bound increases
/// with `k` towards `ln p(x)`, and with a large `k` (5000 in the papers) it is the standard
/// estimate of a VAE's test log-likelihood.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::objectives::{GradientEstimator, Iwae};
/// use burn_probability::{Independent, MultivariateNormalDiag, Normal};
///
/// let device = Device::flex();
/// let x = Tensor::<2>::zeros([3, 2], &device);
/// let q = MultivariateNormalDiag::<2>::new(x.clone(), 1.0);
/// let prior = MultivariateNormalDiag::<1>::standard([2], &device);
/// let lik = |z: Tensor<2>| Independent::<_, 1>::new(Normal::new(z, 1.0), 1);
/// let bound = Iwae::new(50).estimator(GradientEstimator::Dreg).compute(&q, &prior, lik, x);
/// assert_eq!(bound.value.dims(), [3]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Iwae {
    num_samples: usize,
    estimator: GradientEstimator,
}

impl Iwae {
    /// The bound with `k ≥ 1` samples per example and the plain reparameterized gradient. `k`
    /// is checked when the bound is computed, like every setting of the objectives.
    pub fn new(k: usize) -> Self {
        Self {
            num_samples: k,
            estimator: GradientEstimator::Reparameterized,
        }
    }

    /// The gradient estimator of [`Bound::loss`].
    pub fn estimator(mut self, estimator: GradientEstimator) -> Self {
        self.estimator = estimator;
        self
    }

    /// The number of samples `k`.
    pub fn num_samples(&self) -> usize {
        self.num_samples
    }

    /// Evaluates the bound with fresh posterior noise.
    ///
    /// # Panics
    /// For `k = 0` or shapes that do not fit; the message is [`Self::try_compute`]'s error.
    #[track_caller]
    pub fn compute<Q, P, X, F, const DZ: usize, const DS: usize, const DP: usize, const DX: usize>(
        &self,
        q: &Q,
        prior: &P,
        likelihood: F,
        x: Tensor<DX>,
    ) -> Bound
    where
        Q: Posterior<DZ>,
        Rank<DZ>: OneMore<DZ, Tensor = Tensor<DS>>,
        P: Prior<DP>,
        F: Fn(Tensor<DZ>) -> X,
        X: Likelihood<DX>,
    {
        self.try_compute(q, prior, likelihood, x)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::compute`] returning an [`Error`](crate::Error) instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for `k = 0`; an
    /// [`Error::EventShapeMismatch`](crate::Error::EventShapeMismatch),
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) or
    /// [`Error::RankMismatch`](crate::Error::RankMismatch) naming both shapes when the prior
    /// does not fit the posterior or `x` does not fit the likelihood.
    pub fn try_compute<
        Q,
        P,
        X,
        F,
        const DZ: usize,
        const DS: usize,
        const DP: usize,
        const DX: usize,
    >(
        &self,
        q: &Q,
        prior: &P,
        likelihood: F,
        x: Tensor<DX>,
    ) -> Result<Bound>
    where
        Q: Posterior<DZ>,
        Rank<DZ>: OneMore<DZ, Tensor = Tensor<DS>>,
        P: Prior<DP>,
        F: Fn(Tensor<DZ>) -> X,
        X: Likelihood<DX>,
    {
        check_samples("Iwae", self.num_samples)?;
        let noise = q.noise::<DS>(&[self.num_samples]);
        self.try_compute_with_noise(q, prior, likelihood, x, noise)
    }

    /// Evaluates the bound with given posterior noise `[k, B, L]` (see
    /// [`Rsample::noise`](crate::Rsample::noise)).
    ///
    /// # Panics
    /// As [`Self::compute`], and if `noise` is not `[k, B, L]`.
    #[track_caller]
    pub fn compute_with_noise<
        Q,
        P,
        X,
        F,
        const DZ: usize,
        const DS: usize,
        const DP: usize,
        const DX: usize,
    >(
        &self,
        q: &Q,
        prior: &P,
        likelihood: F,
        x: Tensor<DX>,
        noise: Tensor<DS>,
    ) -> Bound
    where
        Q: Posterior<DZ>,
        Rank<DZ>: OneMore<DZ, Tensor = Tensor<DS>>,
        P: Prior<DP>,
        F: Fn(Tensor<DZ>) -> X,
        X: Likelihood<DX>,
    {
        self.try_compute_with_noise(q, prior, likelihood, x, noise)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::compute_with_noise`] returning an [`Error`](crate::Error) instead of panicking.
    ///
    /// # Errors
    /// As [`Self::try_compute`].
    pub fn try_compute_with_noise<
        Q,
        P,
        X,
        F,
        const DZ: usize,
        const DS: usize,
        const DP: usize,
        const DX: usize,
    >(
        &self,
        q: &Q,
        prior: &P,
        likelihood: F,
        x: Tensor<DX>,
        noise: Tensor<DS>,
    ) -> Result<Bound>
    where
        Q: Posterior<DZ>,
        Rank<DZ>: OneMore<DZ, Tensor = Tensor<DS>>,
        P: Prior<DP>,
        F: Fn(Tensor<DZ>) -> X,
        X: Likelihood<DX>,
    {
        check_samples("Iwae", self.num_samples)?;
        check_prior("Iwae", q, prior)?;
        check_noise("Iwae", q, self.num_samples, &noise)?;
        let detach_q = self.estimator != GradientEstimator::Reparameterized;
        let (z, log_q) = draw_latents(q, noise, detach_q);
        let [k, b] = [z.dims()[0], z.dims()[1]];
        let t = terms(q, prior, &likelihood, &x, z.clone(), log_q)?;
        let (log_likelihood, kl) = t.summaries();
        let log_w = t.log_lik + t.log_prior - t.log_q;
        let value = log_mean_exp(log_w.clone());
        let loss = match self.estimator {
            GradientEstimator::Reparameterized | GradientEstimator::Stl => -value.clone().mean(),
            GradientEstimator::Dreg => {
                // Normalized weights w̃, as constants.
                let w = softmax(log_w.clone().detach(), 0);
                let w2 = w.clone().square();
                // The same log-weights with the latents detached: their gradient reaches only
                // the model (likelihood and prior) parameters.
                let z_bar = z.detach();
                let q_bar = q.detach();
                let log_w_bar = super::log_likelihood(
                    &likelihood,
                    &x,
                    flatten_samples::<DS, DZ>(z_bar.clone()),
                    k,
                    b,
                )? + drop_trailing::<DS, 2>(prior.log_prob_keepdim(z_bar.clone()))
                    - drop_trailing::<DS, 2>(q_bar.log_prob_keepdim(z_bar));
                // φ: Σ w̃² ∂ln w/∂z ∂z/∂φ.  θ: Σ w̃² ∇θ ln w + Σ (w̃ − w̃²) ∇θ ln w = Σ w̃ ∇θ ln w.
                let surrogate = (w2.clone() * log_w + (w - w2) * log_w_bar)
                    .sum_dim(0)
                    .squeeze_dim::<1>(0);
                let surrogate = surrogate.clone() - surrogate.detach() + value.clone().detach();
                -surrogate.mean()
            }
        };
        Ok(Bound {
            value,
            log_likelihood,
            kl,
            loss,
        })
    }
}
