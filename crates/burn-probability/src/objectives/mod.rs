//! Variational objectives: the ELBO (analytic or Monte Carlo KL, with a KL weight β), the
//! importance-weighted bound (IWAE), and the lower-variance gradient estimators STL and DReG.
//!
//! # The model
//! Every objective here takes
//! * a posterior `q(z | x)`: any [`Rsample<DZ>`](crate::Rsample) over latents of shape `[B, L]`
//!   (`DZ = 2`) or `[B, N, K]` (`DZ = 3`, `N` categorical variables of `K` classes) with one
//!   log-density per example (`Batch = Tensor<1>`), for example `MultivariateNormalDiag<2>`,
//!   `Independent<Normal<2>, 1>` or `Independent::all_but_first(RelaxedOneHotCategorical::new(t,
//!   logits))` with logits `[B, N, K]`;
//! * a prior `p(z)` over the same latents, of any batch shape that broadcasts against `[B]`:
//!   batch shape `[B]` or `[1]` (shape `[B, L]`, `[1, L]`), or `[]` (shape `[L]`, TFP's
//!   `MultivariateNormalDiag(loc=tf.zeros(L))`, here `MultivariateNormalDiag::<1>`);
//! * a likelihood: a closure from latents `z` of shape `[k·B, L]` (or `[k·B, N, K]`) to a
//!   distribution over `x`
//!   with one log-density per row (`Batch = Tensor<1>`), typically a decoder followed by
//!   `Independent::new(Bernoulli::new(logits), 1)`;
//! * the data `x` of shape `[B, ...]`.
//!
//! The `k` samples of all `B` examples are drawn and decoded in one batched pass: the latents
//! are `[k, B, L]` (`[k, B, N, K]`), flattened to `[k·B, L]` (`[k·B, N, K]`, sample-major) for
//! the likelihood, and `x` is repeated `k` times along its first dimension to match.
//!
//! # Errors
//! Every objective checks its settings and shapes once per call, on the host: the prior's and
//! the posterior's event shapes must be equal, `x` must have the likelihood's event shape
//! exactly (a `[B, 28, 28, 1]` batch against a `[B, 1, 28, 28]` likelihood is an error, never
//! a broadcast), `k ≥ 1`. The plain methods panic with the error's message; their `try_`
//! twins return the [`Error`](enum@crate::Error).
//!
//! # Bounds
//! With importance weights `ln wᵢ = ln p(x | zᵢ) + ln p(zᵢ) − ln q(zᵢ | x)`, `zᵢ ~ q`:
//! ```text
//! ELBO (Monte Carlo KL)  = (1/k) Σᵢ ln wᵢ                      (with β: ln p(x|z) − β (ln q − ln p))
//! ELBO (analytic KL)     = (1/k) Σᵢ ln p(x | zᵢ) − β KL(q ‖ p)
//! IWAE_k                 = ln (1/k) Σᵢ wᵢ = logsumexp(ln w) − ln k   ≤ ln p(x)
//! ```
//! `IWAE_1` is the Monte Carlo ELBO; `IWAE_k` increases with `k` towards `ln p(x)` (Burda,
//! Grosse and Salakhutdinov, 2016). The log-sum-exp keeps the weights in log space; relative
//! weights below `e⁻⁸⁰` are flushed to zero so that no subnormal float reaches the backward
//! pass.
//!
//! # Gradient estimators
//! The [`GradientEstimator`] changes the gradient of [`Bound::loss`], never its value:
//! * [`GradientEstimator::Reparameterized`]: the plain pathwise gradient of the bound.
//! * [`GradientEstimator::Stl`], "sticking the landing" (Roeder, Wu and Duvenaud, 2017): `ln q`
//!   is evaluated with the posterior's parameters detached, which drops the score-function
//!   term `∇φ ln q(z)` (zero in expectation); at the exact posterior the gradient is then zero
//!   for every sample.
//! * [`GradientEstimator::Dreg`], doubly reparameterized (Tucker, Lawson, Gu and Maddison,
//!   2019), for IWAE: the posterior's parameters get `Σᵢ w̃ᵢ² ∂ln wᵢ/∂zᵢ · ∂zᵢ/∂φ` (with `ln q`
//!   detached as in STL, `w̃` the normalized weights), the model's parameters keep the usual
//!   IWAE gradient `Σᵢ w̃ᵢ ∇θ ln wᵢ`. Computing both in one backward pass costs a second
//!   evaluation of the likelihood, on detached latents.
//!
//! # Example
//! ```
//! use burn::tensor::{Device, Tensor};
//! use burn_probability::objectives::{Elbo, GradientEstimator, Iwae};
//! use burn_probability::{Independent, MultivariateNormalDiag, Normal};
//!
//! let device = Device::flex();
//! let x = Tensor::<2>::ones([8, 3], &device);
//! // q(z | x) from an "encoder", p(z), and a "decoder" p(x | z) = N(z, 0.5²).
//! let q = MultivariateNormalDiag::<2>::new(x.clone() * 0.5, 0.8);
//! let prior = MultivariateNormalDiag::<1>::standard([3], &device);
//! let likelihood = |z: Tensor<2>| Independent::<_, 1>::new(Normal::new(z, 0.5), 1);
//! let elbo = Elbo::new().analytic_kl(&q, &prior, likelihood, x.clone());      // closed-form KL
//! let iwae = Iwae::new(16).estimator(GradientEstimator::Dreg).compute(&q, &prior, likelihood, x);
//! let loss = iwae.loss;             // minimize this; its gradient is the DReG estimator
//! assert_eq!(elbo.value.dims(), [8]);
//! # let _ = loss;
//! ```

mod elbo;
mod iwae;

pub use elbo::Elbo;
pub use iwae::Iwae;

use core::any::Any;

use burn::tensor::{Shape, Tensor};

use crate::bernoulli::Bernoulli;
use crate::distribution::{
    Distribution, Rsample, check_pair_shapes, check_value_shape, drop_trailing, repeat_rows,
};
use crate::error::{Error, Result};
use crate::independent::Independent;
use crate::math::logsumexp;
use crate::mvn_diag::MultivariateNormalDiag;
use crate::normal::Normal;

/// A posterior `q(z | x)` over latents of rank `DZ` (`[B, L]`, or `[B, N, K]` for `N`
/// categorical variables of `K` classes) with one log-density per example: any
/// [`Rsample<DZ>`](crate::Rsample) whose `Batch` is `Tensor<1>` (for example
/// `MultivariateNormalDiag<2>`, `Independent<Normal<2>, 1>`, `Independent<Logistic<2>, 1>`,
/// `Independent<RelaxedOneHotCategorical<3>, 1>`). `DZ` is inferred from the type.
pub trait Posterior<const DZ: usize>: Rsample<DZ, Batch = Tensor<1>> {}
impl<T: Rsample<DZ, Batch = Tensor<1>>, const DZ: usize> Posterior<DZ> for T {}

/// A prior `p(z)` over the posterior's latents: any distribution of rank `DP ≤ DZ` with the
/// posterior's event shape (`[L]`, or `[N, K]`) and a batch shape that broadcasts against
/// `[B]`: `[B]`, `[1]` (`MultivariateNormalDiag::<2>::standard([1, L], ..)`) or `[]`
/// (`MultivariateNormalDiag::<1>::standard([L], ..)`). The rank is inferred from the type.
pub trait Prior<const DP: usize>: Distribution<DP> {}
impl<T: Distribution<DP>, const DP: usize> Prior<DP> for T {}

/// A likelihood `p(x | z)` over data of rank `DX` with one log-density per row: what the
/// likelihood closure returns (typically `Independent<Bernoulli<2>, 1>`).
pub trait Likelihood<const DX: usize>: Distribution<DX, Batch = Tensor<1>> {}
impl<T: Distribution<DX, Batch = Tensor<1>>, const DX: usize> Likelihood<DX> for T {}

/// Which gradient [`Bound::loss`] carries. The value is the same for all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GradientEstimator {
    /// The plain reparameterized (pathwise) gradient of the bound.
    #[default]
    Reparameterized,
    /// "Sticking the landing" (Roeder et al. 2017): no score term through the posterior's
    /// parameters.
    Stl,
    /// Doubly reparameterized IWAE gradient (Tucker et al. 2019); only for [`Iwae`].
    Dreg,
}

/// A variational bound evaluated on a batch of `B` examples.
#[derive(Clone, Debug)]
pub struct Bound {
    /// The bound per example, `[B]`, in nats (higher is better). With β ≠ 1 it is the
    /// β-weighted objective.
    pub value: Tensor<1>,
    /// The Monte Carlo estimate of `E_q[ln p(x | z)]` per example, `[B]`.
    pub log_likelihood: Tensor<1>,
    /// `KL(q ‖ p)` per example, `[B]`: closed form, or the Monte Carlo mean of
    /// `ln q(z) − ln p(z)` over the `k` samples (its gradient follows the estimator, like
    /// `value`'s).
    pub kl: Tensor<1>,
    /// The loss to minimize, a `[1]` tensor: `−mean(value)`, whose gradient is the chosen
    /// [`GradientEstimator`].
    pub loss: Tensor<1>,
}

impl Bound {
    /// The mean of [`Self::value`] over the batch, `[1]`.
    pub fn mean(&self) -> Tensor<1> {
        self.value.clone().mean()
    }
}

/// The terms of the importance weights for `k` samples of `B` examples, all `[k, B]`.
pub(crate) struct Terms {
    /// `ln p(x | z)`.
    pub log_lik: Tensor<2>,
    /// `ln p(z)`.
    pub log_prior: Tensor<2>,
    /// `ln q(z | x)`, with the posterior's parameters detached for STL and DReG.
    pub log_q: Tensor<2>,
}

impl Terms {
    /// The per-example summaries every bound reports: the mean over samples of `ln p(x | z)`
    /// and of `ln q(z) − ln p(z)`, both `[B]`.
    pub fn summaries(&self) -> (Tensor<1>, Tensor<1>) {
        (
            sample_mean(self.log_lik.clone()),
            sample_mean(self.log_q.clone() - self.log_prior.clone()),
        )
    }
}

/// `ln q(z | x)` and `ln p(z)` of latents `[k, B, ...]`, both `[k, B]`.
pub(crate) struct LatentTerms {
    log_q: Tensor<2>,
    log_prior: Tensor<2>,
}

impl LatentTerms {
    /// Completes the terms with `ln p(x | z)`.
    pub fn with_likelihood(self, log_lik: Tensor<2>) -> Terms {
        Terms {
            log_lik,
            log_prior: self.log_prior,
            log_q: self.log_q,
        }
    }
}

/// How the objectives obtain `ln q(z | x)` of their latents. (Short-lived, one per bound: the
/// size of the tensor variant does not matter.)
#[allow(clippy::large_enum_variant)]
pub(crate) enum LogQ<const DS: usize> {
    /// Computed with the draws (`Rsample::rsample_and_log_prob_with_noise`).
    Given(Tensor<DS>),
    /// `log_prob_keepdim` of the latents.
    Evaluate,
    /// `log_prob_keepdim` of the latents with the posterior's parameters detached (STL, DReG).
    EvaluateDetached,
}

/// Reparameterized latents from `noise` and how their `ln q` is obtained: with the draws
/// when the parameters' gradient is wanted (`detach_q` false), else evaluated later with the
/// parameters detached.
pub(crate) fn draw_latents<Q: Posterior<DZ>, const DZ: usize, const DS: usize>(
    q: &Q,
    noise: Tensor<DS>,
    detach_q: bool,
) -> (Tensor<DS>, LogQ<DS>) {
    if detach_q {
        (q.rsample_with_noise(noise), LogQ::EvaluateDetached)
    } else {
        let (z, log_q) = q.rsample_and_log_prob_with_noise(noise);
        (z, LogQ::Given(log_q))
    }
}

/// `ln q(z | x)` (given, evaluated, or evaluated with the posterior's parameters detached) and
/// `ln p(z)` of latents `z`, `[k, B, ...]` (rank `DS = DZ + 1`). The shapes have been checked
/// by [`check_prior`].
pub(crate) fn latent_terms<Q, P, const DZ: usize, const DP: usize, const DS: usize>(
    q: &Q,
    prior: &P,
    z: Tensor<DS>,
    log_q: LogQ<DS>,
) -> LatentTerms
where
    Q: Posterior<DZ>,
    P: Prior<DP>,
{
    // Both keepdim log-densities of a rank-DS value are rank DS, their event dimensions of
    // size 1, whatever the prior's own rank.
    let log_q = match log_q {
        LogQ::Given(log_q) => log_q,
        LogQ::Evaluate => q.log_prob_keepdim(z.clone()),
        LogQ::EvaluateDetached => q.detach().log_prob_keepdim(z.clone()),
    };
    LatentTerms {
        log_q: drop_trailing::<DS, 2>(log_q),
        log_prior: drop_trailing::<DS, 2>(prior.log_prob_keepdim(z)),
    }
}

/// `[k, B, ...]` → `[k·B, ...]`: the sample-major latents the likelihood decodes.
pub(crate) fn flatten_samples<const DS: usize, const DZ: usize>(z: Tensor<DS>) -> Tensor<DZ> {
    let dims = z.dims();
    let mut flat = [0usize; DZ];
    flat[0] = dims[0] * dims[1];
    flat[1..].copy_from_slice(&dims[2..]);
    z.reshape(flat)
}

/// Evaluates the weight terms of latents `z`, `[k, B, ...]`.
pub(crate) fn terms<
    Q,
    P,
    X,
    F,
    const DZ: usize,
    const DS: usize,
    const DP: usize,
    const DX: usize,
>(
    q: &Q,
    prior: &P,
    likelihood: &F,
    x: &Tensor<DX>,
    z: Tensor<DS>,
    log_q: LogQ<DS>,
) -> Result<Terms>
where
    Q: Posterior<DZ>,
    P: Prior<DP>,
    F: Fn(Tensor<DZ>) -> X,
    X: Likelihood<DX>,
{
    let [k, b] = [z.dims()[0], z.dims()[1]];
    let log_lik = log_likelihood(likelihood, x, flatten_samples::<DS, DZ>(z.clone()), k, b)?;
    Ok(latent_terms(q, prior, z, log_q).with_likelihood(log_lik))
}

/// `ln p(x | z)` for `z` of shape `[k·B, ...]`, as `[k, B]`.
///
/// # Errors
/// If `x` does not fit the likelihood's shape (checked against the `k` stacked copies).
pub(crate) fn log_likelihood<X, F, const DZ: usize, const DX: usize>(
    likelihood: &F,
    x: &Tensor<DX>,
    z_flat: Tensor<DZ>,
    k: usize,
    b: usize,
) -> Result<Tensor<2>>
where
    F: Fn(Tensor<DZ>) -> X,
    X: Likelihood<DX>,
{
    let px = likelihood(z_flat);
    // `x` is scored against each of the k samples' parameters, stacked along the batch: the
    // check is `log_prob`'s, on the stacked shape; the likelihood reads `x` without the copy
    // where it can.
    let mut stacked = x.dims();
    stacked[0] *= k;
    check_value_shape(X::NAME, &px.shape(), X::EVENT_RANK, &Shape::from(stacked))?;
    Ok(log_prob_stacked(&px, x.clone(), k).reshape([k, b]))
}

/// Checks that the prior fits the posterior: the same event shape, batch shapes that
/// broadcast, and a rank no higher than the posterior's.
pub(crate) fn check_prior<Q, P, const DZ: usize, const DP: usize>(
    context: &'static str,
    q: &Q,
    prior: &P,
) -> Result<()>
where
    Q: Posterior<DZ>,
    P: Prior<DP>,
{
    check_pair_shapes(
        context,
        ("posterior", &q.shape(), Q::EVENT_RANK),
        ("prior", &prior.shape(), P::EVENT_RANK),
    )
}

/// Checks that given posterior noise has the shape `[k] ++ q.shape()` of `k` draws.
pub(crate) fn check_noise<Q: Posterior<DZ>, const DZ: usize, const DS: usize>(
    context: &'static str,
    q: &Q,
    k: usize,
    noise: &Tensor<DS>,
) -> Result<()> {
    let mut want = vec![k];
    want.extend_from_slice(q.shape().as_slice());
    if noise.dims().as_slice() != want.as_slice() {
        return Err(Error::ShapeMismatch {
            context,
            left_name: "noise",
            left: noise.dims().to_vec(),
            right_name: "[num_samples] ++ posterior shape",
            right: want,
        });
    }
    Ok(())
}

/// `px.log_prob_keepdim` of `x` stacked `times` times along dimension 0. The likelihoods whose
/// base family has a fused kernel that reads the stack in place (an `Independent` Bernoulli or
/// Normal, a `MultivariateNormalDiag`) are recognized by their type and skip the copy; any
/// other likelihood scores the copy.
fn log_prob_stacked<X: Distribution<DX>, const DX: usize>(
    px: &X,
    x: Tensor<DX>,
    times: usize,
) -> Tensor<DX> {
    let any: &dyn Any = px;
    if let Some(d) = any.downcast_ref::<Independent<Bernoulli<DX>, 1>>() {
        return d.log_prob_stacked(x, times);
    }
    if let Some(d) = any.downcast_ref::<Independent<Normal<DX>, 1>>() {
        return d.log_prob_stacked(x, times);
    }
    if let Some(d) = any.downcast_ref::<MultivariateNormalDiag<DX>>() {
        return d.normal().log_prob_summed(x, DX - 1, times);
    }
    px.log_prob_keepdim(repeat_rows(x, times))
}

/// `logsumexp` over the sample dimension minus `ln k`: `[k, B] → [B]`.
pub(crate) fn log_mean_exp(log_w: Tensor<2>) -> Tensor<1> {
    let k = log_w.dims()[0];
    logsumexp(log_w, 0).squeeze_dim::<1>(0) - (k as f64).ln()
}

/// Mean over the sample dimension: `[k, B] → [B]`.
pub(crate) fn sample_mean(t: Tensor<2>) -> Tensor<1> {
    t.mean_dim(0).squeeze_dim::<1>(0)
}

/// Checks the number of samples.
pub(crate) fn check_samples(context: &'static str, k: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::InvalidArgument {
            context,
            argument: "num_samples",
            expected: "at least 1".into(),
            actual: "0".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    /// [`log_prob_stacked`] of the data against `log_prob` of the data stacked with
    /// `repeat_dim`: values, and the gradient of the parameter the distribution is built from.
    fn check_tiled<X: Distribution<2, Batch = Tensor<1>>>(
        what: &str,
        make: impl Fn(Tensor<2>) -> X,
        param: Tensor<2>,
        x: Tensor<2>,
        k: usize,
    ) {
        let rows = param.dims()[0];
        let w: Vec<f32> = (0..rows).map(|i| i as f32 / rows as f32 - 0.5).collect();
        let w = Tensor::<1>::from_floats(w.as_slice(), &param.device());
        let run = |out: Tensor<1>| {
            let grads = (out.clone() * w.clone()).sum().backward();
            let g: Vec<f32> = param
                .grad(&grads)
                .unwrap()
                .into_data()
                .iter::<f32>()
                .collect();
            (out.into_data().iter::<f32>().collect::<Vec<f32>>(), g)
        };
        let dist = make(param.clone());
        let tiled = log_prob_stacked(&dist, x.clone(), k).reshape([rows]);
        let (v_tiled, g_tiled) = run(tiled);
        let (v_ref, g_ref) = run(make(param.clone()).log_prob(x.repeat_dim(0, k)));
        for (name, a, b) in [("value", v_tiled, v_ref), ("gradient", g_tiled, g_ref)] {
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{what}: {name}[{i}] stacked {a}, repeat_dim {b}"
                );
            }
        }
    }

    #[test]
    #[allow(deprecated)] // Device::ndarray: the backend without the kernels
    fn stacked_data_scores_like_repeat_dim() {
        use crate::{Bernoulli, Independent, Logistic, MultivariateNormalDiag, Normal};
        let (k, b, c) = (5, 3, 70);
        // Flex reads the data in place for Bernoulli and Normal; ndarray and Logistic copy it.
        for device in [Device::flex().autodiff(), Device::ndarray().autodiff()] {
            let values = |n: usize, lo: f32, hi: f32, seed: f32| -> Vec<f32> {
                (0..n)
                    .map(|i| lo + (hi - lo) * (i as f32 * 0.618_034 + seed).fract())
                    .collect()
            };
            let param = |seed| {
                let v = values(k * b * c, -4.0, 4.0, seed);
                Tensor::<2>::from_data(burn::tensor::TensorData::new(v, [k * b, c]), &device)
                    .require_grad()
            };
            let real = Tensor::<2>::from_data(
                burn::tensor::TensorData::new(values(b * c, -3.0, 3.0, 0.3), [b, c]),
                &device,
            );
            let bits = real.clone().greater_elem(0.0).float();
            let scale = || Tensor::<2>::ones([k * b, c], &device) * 1.5;
            let name = format!("{device:?}");
            check_tiled(
                &format!("Bernoulli on {name}"),
                |l| Independent::<Bernoulli<2>, 1>::new(Bernoulli::new(l), 1),
                param(0.1),
                bits,
                k,
            );
            check_tiled(
                &format!("Normal on {name}"),
                |m| Independent::<Normal<2>, 1>::new(Normal::new(m, scale()), 1),
                param(0.2),
                real.clone(),
                k,
            );
            check_tiled(
                &format!("MultivariateNormalDiag on {name}"),
                |m| MultivariateNormalDiag::<2>::new(m, scale()),
                param(0.4),
                real.clone(),
                k,
            );
            check_tiled(
                &format!("Logistic on {name}"),
                |m| Independent::<Logistic<2>, 1>::new(Logistic::new(m, scale()), 1),
                param(0.5),
                real,
                k,
            );
        }
    }
}
