//! # burn-probability
//!
//! Differentiable probability distributions, KL divergences and variational objectives for
//! [burn](https://burn.dev) 0.22: what `tfp.distributions` and `torch.distributions` give
//! Python users, on every burn backend.
//!
//! * Distributions: [`Normal`], [`MultivariateNormalDiag`], [`Bernoulli`] (logits first),
//!   [`Logistic`], [`BinConcrete`] (the relaxed Bernoulli, computed in logit space),
//!   [`Gumbel`], the categorical family ([`Categorical`] over indices, [`OneHotCategorical`],
//!   its straight-through sampler [`OneHotCategoricalStraightThrough`], the Gumbel-softmax
//!   [`RelaxedOneHotCategorical`] and its log-space form [`ExpRelaxedOneHotCategorical`]),
//!   [`Laplace`], [`LogNormal`], [`StudentT`], [`Cauchy`], [`Exponential`], [`Uniform`],
//!   [`HalfNormal`], [`ContinuousBernoulli`] (the normalized likelihood of grey levels), the
//!   counts [`Poisson`], [`Binomial`] and [`Geometric`], the positive and unit-interval
//!   families [`Gamma`], [`Beta`] and [`Dirichlet`] (reparameterized by implicit gradients),
//!   and [`Independent`].
//! * Transformations: [`bijector`] ([`Exp`](bijector::Exp), [`Sigmoid`](bijector::Sigmoid),
//!   [`Tanh`](bijector::Tanh), [`Softplus`](bijector::Softplus), [`Affine`](bijector::Affine),
//!   [`Chain`](bijector::Chain)), the learnable [`flows`] ([`Made`](flows::Made),
//!   [`InverseAutoregressiveFlow`](flows::InverseAutoregressiveFlow),
//!   [`MaskedAutoregressiveFlow`](flows::MaskedAutoregressiveFlow), conditioned on a
//!   context with [`Conditioned`](flows::Conditioned), and the RealNVP
//!   [`AffineCoupling`](flows::AffineCoupling)) and [`TransformedDistribution`] (the change of
//!   variables); a `Vec` of bijectors of one type is their composition.
//! * Traits: [`Distribution`] (`log_prob`, `sample`, shapes, validation), [`Rsample`]
//!   (reparameterized sampling), [`Entropy`], [`Moments`], [`Mode`], [`Cdf`]: a quantity
//!   without a closed form is a missing trait, found at compile time.
//! * KL divergences: [`kl_divergence`] for the pairs with a closed form, [`kl_monte_carlo`] for
//!   the rest.
//! * Numerics: [`math`] holds the stable special functions (softplus, log-sum-exp, expm1, the
//!   normal quantile, lgamma, digamma, trigamma, lbeta, the incomplete gamma and beta
//!   functions and the implicit gradients of Gamma and Beta samples, ...) that burn 0.22 lacks; [`sampling`] the Gamma, Poisson and binomial
//!   samplers.
//!
//! The library never names a backend: it runs on whatever [`Device`](burn::tensor::Device) its
//! tensors live on, with or without `device.autodiff()`.
//!
//! ## What belongs here, and what does not
//! This crate holds the mathematics: distributions (one file each, with their KL divergences
//! and unit tests), the traits and shape helpers of [`distribution`], [`kl`], [`objectives`],
//! [`inference`], [`math`], [`noise`], [`sampling`] and [`error`]. Every formula is written in burn
//! operations and runs on every backend. It contains no `unsafe` code (`forbid(unsafe_code)`),
//! no CPU kernels, no network layers and no data loading: the fused CPU kernels live in the
//! `burn-flex-kernels` crate, reached through one private module and the `fused` cargo feature
//! (on by default; without it nothing of that crate is compiled), and no public trait carries a
//! performance detail. The datasets, plots and models of the examples live in the workspace's
//! `examples` package.
//!
//! ## Shapes
//! `sample_shape ++ batch_shape ++ event_shape`, as in TFP and PyTorch; see
//! [`distribution`] for how ranks are handled with burn's const-generic
//! tensors.
//!
//! ## Quick start
//! ```
//! use burn::tensor::{Device, Tensor};
//! use burn_probability::prelude::*;
//!
//! let device = Device::flex();
//! let p = Normal::new(
//!     Tensor::<1>::from_floats([0.0, 1.0, 2.0], &device),
//!     Tensor::<1>::from_floats([1.0, 0.5, 2.0], &device),
//! );
//! let x = p.sample();                     // [3]
//! let log_p = p.log_prob(x);              // [3]
//! let q = Normal::standard([3], &device);
//! let kl = kl_divergence(&p, &q);         // [3], closed form
//! # let _ = (log_p, kl);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod bijector;
pub mod distribution;
pub mod error;
pub mod flows;
pub mod inference;
pub mod kl;
pub mod math;
pub mod noise;
pub mod objectives;
pub mod sampling;

mod bernoulli;
mod beta;
mod bin_concrete;
mod binomial;
mod categorical;
mod cauchy;
mod continuous_bernoulli;
mod dirichlet;
mod exp_relaxed_one_hot_categorical;
mod exponential;
mod fused;
mod gamma;
mod geometric;
mod gumbel;
mod half_normal;
mod independent;
mod laplace;
mod log_normal;
mod logistic;
mod mixture;
mod mvn_diag;
mod mvn_tril;
mod normal;
mod one_hot_categorical;
mod poisson;
mod relaxed_one_hot_categorical;
mod student_t;
mod transformed;
mod uniform;

pub use bernoulli::Bernoulli;
pub use beta::Beta;
pub use bin_concrete::BinConcrete;
pub use binomial::Binomial;
pub use categorical::Categorical;
pub use cauchy::Cauchy;
pub use continuous_bernoulli::ContinuousBernoulli;
pub use dirichlet::Dirichlet;
pub use distribution::{
    BatchTensor, Cdf, Distribution, Entropy, Mode, Moments, OneLess, Param, Rank, Rsample,
};
pub use error::{Error, Result};
pub use exp_relaxed_one_hot_categorical::ExpRelaxedOneHotCategorical;
pub use exponential::Exponential;
pub use gamma::Gamma;
pub use geometric::Geometric;
pub use gumbel::Gumbel;
pub use half_normal::HalfNormal;
pub use independent::Independent;
pub use kl::{
    KlDivergence, MonteCarloEstimate, MonteCarloKl, kl_divergence, kl_monte_carlo,
    try_kl_divergence, try_kl_monte_carlo,
};
pub use laplace::Laplace;
pub use log_normal::LogNormal;
pub use logistic::Logistic;
pub use mixture::MixtureSameFamily;
pub use mvn_diag::MultivariateNormalDiag;
pub use mvn_tril::{LowRankMultivariateNormal, MultivariateNormalTriL};
pub use normal::Normal;
pub use one_hot_categorical::{OneHotCategorical, OneHotCategoricalStraightThrough};
pub use poisson::Poisson;
pub use relaxed_one_hot_categorical::RelaxedOneHotCategorical;
pub use student_t::StudentT;
pub use transformed::TransformedDistribution;
pub use uniform::Uniform;

/// Everything needed to use the distributions: `use burn_probability::prelude::*;`.
pub mod prelude {
    pub use crate::TransformedDistribution;
    pub use crate::bijector::{Affine, Bijector, Chain, Exp, Sigmoid, Softplus, Tanh};
    pub use crate::{
        Bernoulli, Beta, BinConcrete, Binomial, Categorical, Cauchy, Cdf, ContinuousBernoulli,
        Dirichlet, Distribution, Entropy, ExpRelaxedOneHotCategorical, Exponential, Gamma,
        Geometric, Gumbel, HalfNormal, Independent, KlDivergence, Laplace, LogNormal, Logistic,
        LowRankMultivariateNormal, MixtureSameFamily, Mode, Moments, MonteCarloKl,
        MultivariateNormalDiag, MultivariateNormalTriL, Normal, OneHotCategorical,
        OneHotCategoricalStraightThrough, Poisson, RelaxedOneHotCategorical, Rsample, StudentT,
        Uniform, kl_divergence, kl_monte_carlo,
    };
}

/// The README's code blocks, compiled and run as doctests so that the quick start stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// The porting guide's code blocks, compiled and run as doctests so that its tables hold.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/porting-from-tfp.md")]
pub struct PortingGuideDoctests;
