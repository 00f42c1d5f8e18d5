//! The evidence lower bound.

use burn::tensor::Tensor;

use super::{
    Bound, GradientEstimator, Likelihood, Posterior, Prior, check_samples, sample_mean, terms,
};
use crate::error::{Error, Result};
use crate::kl::{KlDivergence, kl_divergence};

/// The evidence lower bound `E_q[ln p(x | z)] − β KL(q(z | x) ‖ p(z))`, estimated with `k`
/// reparameterized samples per example (see the [module docs](super) for shapes).
///
/// * [`Elbo::analytic_kl`] uses the closed-form KL (the pair must implement
///   [`KlDivergence`]): lower variance, and what the TFP tutorials' `analytic_kl=True` does.
/// * [`Elbo::monte_carlo_kl`] estimates the KL from the same samples as `ln q(z) − ln p(z)`:
///   works for any prior, and supports [`GradientEstimator::Stl`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::objectives::{Elbo, GradientEstimator};
/// use burn_probability::{Bernoulli, Independent, MultivariateNormalDiag};
///
/// let device = Device::flex();
/// let x = Tensor::<2>::ones([4, 6], &device);
/// let q = MultivariateNormalDiag::<2, 1>::new(Tensor::zeros([4, 2], &device), Tensor::ones([4, 2], &device))?;
/// let prior = MultivariateNormalDiag::<2, 1>::standard([1, 2], &device);
/// let decoder = |z: Tensor<2>| {
///     let logits = z.sum_dim(1).repeat_dim(1, 6);                // a stand-in for a network
///     Independent::<_, 1>::new(Bernoulli::new(logits), 1).unwrap()
/// };
/// let elbo = Elbo::new().num_samples(2)?.beta(0.5)?.estimator(GradientEstimator::Stl)?;
/// let bound = elbo.monte_carlo_kl(&q, &prior, decoder, x);
/// assert_eq!(bound.value.dims(), [4]);
/// # Ok::<(), burn_probability::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Elbo {
    num_samples: usize,
    beta: f64,
    estimator: GradientEstimator,
}

impl Default for Elbo {
    fn default() -> Self {
        Self::new()
    }
}

impl Elbo {
    /// One sample per example, β = 1, the plain reparameterized gradient.
    pub fn new() -> Self {
        Self {
            num_samples: 1,
            beta: 1.0,
            estimator: GradientEstimator::Reparameterized,
        }
    }

    /// The number `k ≥ 1` of samples per example.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `k = 0`.
    pub fn num_samples(mut self, k: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::InvalidArgument {
                context: "Elbo",
                argument: "num_samples",
                expected: "at least 1".into(),
                actual: "0".into(),
            });
        }
        self.num_samples = k;
        Ok(self)
    }

    /// The KL weight β ≥ 0 (β-VAE, KL annealing schedules); 1 gives the ELBO.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless β is finite and non-negative.
    pub fn beta(mut self, beta: f64) -> Result<Self> {
        if !(beta.is_finite() && beta >= 0.0) {
            return Err(Error::InvalidArgument {
                context: "Elbo",
                argument: "beta",
                expected: "finite and >= 0".into(),
                actual: beta.to_string(),
            });
        }
        self.beta = beta;
        Ok(self)
    }

    /// The gradient estimator: [`GradientEstimator::Reparameterized`] or
    /// [`GradientEstimator::Stl`] (which only changes [`Elbo::monte_carlo_kl`]: with a closed-form
    /// KL there is no score term to drop).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for [`GradientEstimator::Dreg`], which is an estimator of the
    /// IWAE bound: use [`Iwae`](super::Iwae).
    pub fn estimator(mut self, estimator: GradientEstimator) -> Result<Self> {
        if estimator == GradientEstimator::Dreg {
            return Err(Error::InvalidArgument {
                context: "Elbo",
                argument: "estimator",
                expected:
                    "Reparameterized or Stl (DReG is an estimator of the IWAE bound: use Iwae)"
                        .into(),
                actual: "Dreg".into(),
            });
        }
        self.estimator = estimator;
        Ok(self)
    }

    /// The ELBO with the closed-form `KL(q ‖ p)`.
    pub fn analytic_kl<Q, P, X, F, const DX: usize>(
        &self,
        q: &Q,
        prior: &P,
        likelihood: F,
        x: Tensor<DX>,
    ) -> Bound
    where
        Q: Posterior + KlDivergence<P, 2>,
        P: Prior,
        F: Fn(Tensor<2>) -> X,
        X: Likelihood<DX>,
    {
        check_samples("Elbo", self.num_samples);
        let z: Tensor<3> = q.rsample_n(self.num_samples);
        let [k, b, l] = z.dims();
        let log_lik = super::log_likelihood(&likelihood, &x, z.reshape([k * b, l]), k, b);
        let log_likelihood = sample_mean(log_lik);
        let kl = kl_divergence(q, prior);
        let value = log_likelihood.clone() - kl.clone() * self.beta;
        let loss = -value.clone().mean();
        Bound {
            value,
            log_likelihood,
            kl,
            loss,
        }
    }

    /// The ELBO with the Monte Carlo KL `ln q(z) − ln p(z)` from the same reparameterized
    /// samples `z ~ q` that the likelihood scores: `mean_k(ln p(x|z) − β(ln q(z) − ln p(z)))`.
    /// The TFP tutorial draws a second, independent sample for the KL term; both estimators
    /// are unbiased (`docs/porting-from-tfp.md` shows the tutorial's variant).
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::objectives::Elbo;
    /// use burn_probability::{Bernoulli, Independent, MultivariateNormalDiag};
    ///
    /// let device = Device::flex();
    /// let x = Tensor::<2>::ones([8, 5], &device);
    /// let q = MultivariateNormalDiag::<2, 1>::new(
    ///     Tensor::zeros([8, 2], &device),
    ///     Tensor::ones([8, 2], &device),
    /// )?;
    /// let prior = MultivariateNormalDiag::<2, 1>::standard([1, 2], &device);
    /// let w = Tensor::<2>::ones([2, 5], &device);
    /// let decoder = |z: Tensor<2>| Independent::<_, 1>::new(Bernoulli::new(z.matmul(w.clone())), 1).unwrap();
    /// let bound = Elbo::new().num_samples(4)?.monte_carlo_kl(&q, &prior, decoder, x);
    /// assert_eq!(bound.value.dims(), [8]);
    /// # Ok::<(), burn_probability::Error>(())
    /// ```
    pub fn monte_carlo_kl<Q, P, X, F, const DX: usize>(
        &self,
        q: &Q,
        prior: &P,
        likelihood: F,
        x: Tensor<DX>,
    ) -> Bound
    where
        Q: Posterior,
        P: Prior,
        F: Fn(Tensor<2>) -> X,
        X: Likelihood<DX>,
    {
        check_samples("Elbo", self.num_samples);
        let noise = q.noise::<3>(&[self.num_samples]);
        self.monte_carlo_kl_with_noise(q, prior, likelihood, x, noise)
    }

    /// [`Elbo::monte_carlo_kl`] with given posterior noise `[k, B, L]` (see
    /// [`Rsample::noise`](crate::Rsample::noise)) instead of a fresh draw: deterministic, for tests and for comparing
    /// estimators on the same samples.
    pub fn monte_carlo_kl_with_noise<Q, P, X, F, const DX: usize>(
        &self,
        q: &Q,
        prior: &P,
        likelihood: F,
        x: Tensor<DX>,
        noise: Tensor<3>,
    ) -> Bound
    where
        Q: Posterior,
        P: Prior,
        F: Fn(Tensor<2>) -> X,
        X: Likelihood<DX>,
    {
        let z = q.rsample_with_noise(noise);
        let stl = self.estimator == GradientEstimator::Stl;
        let t = terms(q, prior, &likelihood, &x, z, stl);
        let (log_likelihood, kl) = t.summaries();
        let value = sample_mean(t.log_lik - (t.log_q - t.log_prior) * self.beta);
        let loss = -value.clone().mean();
        Bound {
            value,
            log_likelihood,
            kl,
            loss,
        }
    }
}
