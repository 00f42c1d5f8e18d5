//! The evidence lower bound.

use burn::tensor::Tensor;

use super::{
    Bound, GradientEstimator, Likelihood, LogQ, Posterior, Prior, check_noise, check_prior,
    check_samples, draw_latents, flatten_samples, latent_terms, log_likelihood, sample_mean,
};
use crate::distribution::{BatchTensor, OneMore, Rank};
use crate::error::{Error, Result};
use crate::kl::KlDivergence;

/// The evidence lower bound `E_q[ln p(x | z)] − β KL(q(z | x) ‖ p(z))`, estimated with `k`
/// reparameterized samples per example (see the [module docs](super) for shapes).
///
/// * [`Elbo::analytic_kl`] uses the closed-form KL (the pair must implement
///   [`KlDivergence`]): lower variance, and what the TFP tutorials' `analytic_kl=True` does.
/// * [`Elbo::monte_carlo_kl`] estimates the KL as `ln q(z) − ln p(z)`: works for any prior,
///   and supports [`GradientEstimator::Stl`]. By default the KL term reuses the samples `z`
///   the likelihood scores; [`Elbo::separate_kl_sample`] draws a second, independent sample
///   for it, as the TFP tutorial's loss does. Both are unbiased.
///
/// The builder steps only record their arguments; the settings and the shapes are checked
/// once, when the bound is computed (`try_*` methods return the [`Error`]).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::objectives::{Elbo, GradientEstimator};
/// use burn_probability::{Bernoulli, Independent, MultivariateNormalDiag};
///
/// let device = Device::flex();
/// let x = Tensor::<2>::ones([4, 6], &device);
/// let q = MultivariateNormalDiag::<2>::new(Tensor::zeros([4, 2], &device), 1.0);
/// let prior = MultivariateNormalDiag::<1>::standard([2], &device);   // batch shape []
/// let decoder = |z: Tensor<2>| {
///     let logits = z.sum_dim(1).repeat_dim(1, 6);                // a stand-in for a network
///     Independent::<_, 1>::new(Bernoulli::new(logits), 1)
/// };
/// let elbo = Elbo::new().num_samples(2).beta(0.5).estimator(GradientEstimator::Stl);
/// let bound = elbo.monte_carlo_kl(&q, &prior, decoder, x);
/// assert_eq!(bound.value.dims(), [4]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Elbo {
    num_samples: usize,
    beta: f64,
    estimator: GradientEstimator,
    separate_kl_sample: bool,
}

impl Default for Elbo {
    fn default() -> Self {
        Self::new()
    }
}

impl Elbo {
    /// One sample per example, β = 1, the plain reparameterized gradient, the KL term on the
    /// likelihood's samples.
    pub fn new() -> Self {
        Self {
            num_samples: 1,
            beta: 1.0,
            estimator: GradientEstimator::Reparameterized,
            separate_kl_sample: false,
        }
    }

    /// The number `k ≥ 1` of samples per example (checked when the bound is computed).
    pub fn num_samples(mut self, k: usize) -> Self {
        self.num_samples = k;
        self
    }

    /// The KL weight β ≥ 0 (β-VAE, KL annealing schedules); 1 gives the ELBO. Checked when the
    /// bound is computed: it must be finite and non-negative.
    pub fn beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// The gradient estimator: [`GradientEstimator::Reparameterized`] or
    /// [`GradientEstimator::Stl`] (which only changes [`Elbo::monte_carlo_kl`]: with a closed-form
    /// KL there is no score term to drop). [`GradientEstimator::Dreg`] is an estimator of the
    /// IWAE bound: computing an ELBO with it is an error (use [`Iwae`](super::Iwae)).
    pub fn estimator(mut self, estimator: GradientEstimator) -> Self {
        self.estimator = estimator;
        self
    }

    /// For [`Elbo::monte_carlo_kl`]: `true` draws a second, independent sample `z' ~ q` for the
    /// KL term `ln q(z') − ln p(z')`, as the TFP tutorial's Monte Carlo loss does (one more
    /// reparameterized draw, no more decoder passes); `false` (the default) reuses the `z` the
    /// likelihood scores. Both estimators are unbiased.
    pub fn separate_kl_sample(mut self, separate: bool) -> Self {
        self.separate_kl_sample = separate;
        self
    }

    fn check(&self) -> Result<()> {
        check_samples("Elbo", self.num_samples)?;
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(Error::InvalidArgument {
                context: "Elbo",
                argument: "beta",
                expected: "finite and >= 0".into(),
                actual: self.beta.to_string(),
            });
        }
        if self.estimator == GradientEstimator::Dreg {
            return Err(Error::InvalidArgument {
                context: "Elbo",
                argument: "estimator",
                expected:
                    "Reparameterized or Stl (DReG is an estimator of the IWAE bound: use Iwae)"
                        .into(),
                actual: "Dreg".into(),
            });
        }
        Ok(())
    }

    /// The ELBO with the closed-form `KL(q ‖ p)`.
    ///
    /// # Panics
    /// On an invalid setting or shapes that do not fit; the message is
    /// [`Self::try_analytic_kl`]'s error.
    #[track_caller]
    pub fn analytic_kl<
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
    ) -> Bound
    where
        Q: Posterior<DZ> + KlDivergence<P, DZ>,
        Rank<DZ>: OneMore<DZ, Tensor = Tensor<DS>>,
        P: Prior<DP>,
        F: Fn(Tensor<DZ>) -> X,
        X: Likelihood<DX>,
    {
        self.try_analytic_kl(q, prior, likelihood, x)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::analytic_kl`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an invalid setting; an [`Error::EventShapeMismatch`],
    /// [`Error::ShapeMismatch`] or [`Error::RankMismatch`] naming both shapes when the prior
    /// does not fit the posterior or `x` does not fit the likelihood.
    pub fn try_analytic_kl<
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
        Q: Posterior<DZ> + KlDivergence<P, DZ>,
        Rank<DZ>: OneMore<DZ, Tensor = Tensor<DS>>,
        P: Prior<DP>,
        F: Fn(Tensor<DZ>) -> X,
        X: Likelihood<DX>,
    {
        self.check()?;
        check_prior("Elbo", q, prior)?;
        let kl = <Tensor<1> as BatchTensor<DZ>>::from_keepdim(q.kl_divergence_keepdim(prior));
        self.bound_with_kl(q, kl, likelihood, x)
    }

    /// `mean_k ln p(x | z) − β kl` with `k` fresh samples of `q`; the settings and `kl`'s shape
    /// have been checked.
    fn bound_with_kl<Q, X, F, const DZ: usize, const DS: usize, const DX: usize>(
        &self,
        q: &Q,
        kl: Tensor<1>,
        likelihood: F,
        x: Tensor<DX>,
    ) -> Result<Bound>
    where
        Q: Posterior<DZ>,
        Rank<DZ>: OneMore<DZ, Tensor = Tensor<DS>>,
        F: Fn(Tensor<DZ>) -> X,
        X: Likelihood<DX>,
    {
        let z: Tensor<DS> = q.rsample_with_shape(&[self.num_samples]);
        let [k, b] = [z.dims()[0], z.dims()[1]];
        let log_lik = log_likelihood(&likelihood, &x, flatten_samples::<DS, DZ>(z), k, b)?;
        let log_likelihood = sample_mean(log_lik);
        let value = log_likelihood.clone() - kl.clone() * self.beta;
        let loss = -value.clone().mean();
        Ok(Bound {
            value,
            log_likelihood,
            kl,
            loss,
        })
    }

    /// `E_q[ln p(x | z)] − β kl` with a KL term `kl` (`[B]`) that the caller computed: the
    /// objective of Jang, Gu and Poole's (2017) Gumbel-softmax VAE, whose decoder reads
    /// relaxed samples of `q` while the KL is the closed form between the *discrete*
    /// categoricals (`kl_divergence(&OneHotCategorical::new(logits), &prior)`). As the paper
    /// says, this is not a bound on `ln p(x)` while the samples are not discrete; with a
    /// posterior whose samples are (such as
    /// [`OneHotCategoricalStraightThrough`](crate::OneHotCategoricalStraightThrough)) use
    /// [`Self::analytic_kl`], which is.
    ///
    /// # Panics
    /// On an invalid setting or shapes that do not fit; the message is
    /// [`Self::try_given_kl`]'s error.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::objectives::Elbo;
    /// use burn_probability::{kl_divergence, Bernoulli, Independent, OneHotCategorical};
    /// use burn_probability::RelaxedOneHotCategorical;
    ///
    /// let device = Device::flex();
    /// let (b, n, k) = (4, 30, 10);
    /// let logits = Tensor::<3>::zeros([b, n, k], &device);       // the encoder's output
    /// let q = Independent::all_but_first(RelaxedOneHotCategorical::new(0.5, logits.clone()));
    /// let prior = Independent::all_batch_dims(OneHotCategorical::new(Tensor::<2>::zeros([n, k], &device)));
    /// let kl = kl_divergence(&Independent::all_but_first(OneHotCategorical::new(logits)), &prior);
    /// let w = Tensor::<2>::zeros([n * k, 784], &device);
    /// let decoder = |z: Tensor<3>| {
    ///     let rows = z.dims()[0];
    ///     Independent::all_but_first(Bernoulli::new(z.reshape([rows, n * k]).matmul(w.clone())))
    /// };
    /// let x = Tensor::<2>::zeros([b, 784], &device);
    /// let bound = Elbo::new().given_kl(&q, kl, decoder, x);
    /// assert_eq!(bound.value.dims(), [b]);
    /// ```
    #[track_caller]
    pub fn given_kl<Q, X, F, const DZ: usize, const DS: usize, const DX: usize>(
        &self,
        q: &Q,
        kl: Tensor<1>,
        likelihood: F,
        x: Tensor<DX>,
    ) -> Bound
    where
        Q: Posterior<DZ>,
        Rank<DZ>: OneMore<DZ, Tensor = Tensor<DS>>,
        F: Fn(Tensor<DZ>) -> X,
        X: Likelihood<DX>,
    {
        self.try_given_kl(q, kl, likelihood, x)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::given_kl`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// As [`Self::try_analytic_kl`], and an [`Error::ShapeMismatch`] unless `kl` has the
    /// posterior's batch shape `[B]`.
    pub fn try_given_kl<Q, X, F, const DZ: usize, const DS: usize, const DX: usize>(
        &self,
        q: &Q,
        kl: Tensor<1>,
        likelihood: F,
        x: Tensor<DX>,
    ) -> Result<Bound>
    where
        Q: Posterior<DZ>,
        Rank<DZ>: OneMore<DZ, Tensor = Tensor<DS>>,
        F: Fn(Tensor<DZ>) -> X,
        X: Likelihood<DX>,
    {
        self.check()?;
        let batch = q.batch_shape().to_vec();
        if kl.dims().as_slice() != batch.as_slice() {
            return Err(Error::ShapeMismatch {
                context: "Elbo::given_kl",
                left_name: "kl",
                left: kl.dims().to_vec(),
                right_name: "the posterior's batch shape",
                right: batch,
            });
        }
        self.bound_with_kl(q, kl, likelihood, x)
    }

    /// The ELBO with the Monte Carlo KL `ln q(z) − ln p(z)`:
    /// `mean_k(ln p(x|z) − β(ln q(z') − ln p(z')))`, where `z' = z` (the likelihood's samples,
    /// the default) or an independent draw ([`Self::separate_kl_sample`]).
    ///
    /// # Panics
    /// On an invalid setting or shapes that do not fit; the message is
    /// [`Self::try_monte_carlo_kl`]'s error.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::objectives::Elbo;
    /// use burn_probability::{Bernoulli, Independent, MultivariateNormalDiag};
    ///
    /// let device = Device::flex();
    /// let x = Tensor::<2>::ones([8, 5], &device);
    /// let q = MultivariateNormalDiag::<2>::new(Tensor::zeros([8, 2], &device), 1.0);
    /// let prior = MultivariateNormalDiag::<2>::standard([1, 2], &device);
    /// let w = Tensor::<2>::ones([2, 5], &device);
    /// let decoder = |z: Tensor<2>| Independent::<_, 1>::new(Bernoulli::new(z.matmul(w.clone())), 1);
    /// let bound = Elbo::new().num_samples(4).monte_carlo_kl(&q, &prior, decoder, x.clone());
    /// assert_eq!(bound.value.dims(), [8]);
    /// // The TFP tutorial's estimator: the KL term on a second sample of q.
    /// let bound = Elbo::new().separate_kl_sample(true).monte_carlo_kl(&q, &prior, decoder, x);
    /// # let _ = bound;
    /// ```
    #[track_caller]
    pub fn monte_carlo_kl<
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
    ) -> Bound
    where
        Q: Posterior<DZ>,
        Rank<DZ>: OneMore<DZ, Tensor = Tensor<DS>>,
        P: Prior<DP>,
        F: Fn(Tensor<DZ>) -> X,
        X: Likelihood<DX>,
    {
        self.try_monte_carlo_kl(q, prior, likelihood, x)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::monte_carlo_kl`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// As [`Self::try_analytic_kl`].
    pub fn try_monte_carlo_kl<
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
        self.check()?;
        let noise = q.noise::<DS>(&[self.num_samples]);
        self.try_monte_carlo_kl_with_noise(q, prior, likelihood, x, noise)
    }

    /// [`Elbo::monte_carlo_kl`] with given posterior noise `[k, B, L]` (see
    /// [`Rsample::noise`](crate::Rsample::noise)) instead of a fresh draw: deterministic, for
    /// tests and for comparing estimators on the same samples. With
    /// [`Self::separate_kl_sample`] the KL term's sample is still drawn fresh.
    ///
    /// # Panics
    /// As [`Self::monte_carlo_kl`], and if `noise` is not `[k, B, L]`.
    #[track_caller]
    pub fn monte_carlo_kl_with_noise<
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
        self.try_monte_carlo_kl_with_noise(q, prior, likelihood, x, noise)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::monte_carlo_kl_with_noise`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// As [`Self::try_analytic_kl`], and a [`Error::ShapeMismatch`] if `noise` is not
    /// `[k, B, L]`.
    pub fn try_monte_carlo_kl_with_noise<
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
        self.check()?;
        check_prior("Elbo", q, prior)?;
        check_noise("Elbo", q, self.num_samples, &noise)?;
        let stl = self.estimator == GradientEstimator::Stl;
        let (z, z_kl, log_q) = if self.separate_kl_sample {
            let z = q.rsample_with_noise(noise);
            let z_kl = q.rsample_with_shape(&[self.num_samples]);
            let log_q = if stl {
                LogQ::EvaluateDetached
            } else {
                LogQ::Evaluate
            };
            (z, z_kl, log_q)
        } else {
            let (z, log_q) = draw_latents(q, noise, stl);
            (z.clone(), z, log_q)
        };
        let [k, b] = [z.dims()[0], z.dims()[1]];
        let t = latent_terms(q, prior, z_kl, log_q).with_likelihood(log_likelihood(
            &likelihood,
            &x,
            flatten_samples::<DS, DZ>(z),
            k,
            b,
        )?);
        let (log_likelihood, kl) = t.summaries();
        let value = sample_mean(t.log_lik - (t.log_q - t.log_prior) * self.beta);
        let loss = -value.clone().mean();
        Ok(Bound {
            value,
            log_likelihood,
            kl,
            loss,
        })
    }
}
