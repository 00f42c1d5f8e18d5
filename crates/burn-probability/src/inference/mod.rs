//! Fitting models written as a log-joint density: MAP estimation and variational inference,
//! the roles of Edward2's `make_log_joint_fn`, TFP's `tfp.vi.fit_surrogate_posterior` and
//! `tfp.math.minimize`, and Pyro's `AutoNormal`, written with burn's own idioms: everything
//! trainable is a [`Module`] of [`Param`]s, fitted by any `burn::optim`
//! optimizer ([`ModuleOptimizer`]) under any learning-rate scheduler (a
//! [`ModuleLrScheduler`] from a scheduler config's `init()`, or an `f64` for a constant rate).
//!
//! * A model is anything implementing [`Model`]: it names its latent variables (with shapes)
//!   and returns `ln p(latents, data)` for given values, written with this crate's
//!   distributions. A closure works too, through [`LogJoint`]. A model with trainable
//!   parameters of its own (a prior's scale, a decoder) is a `#[derive(Module)]` struct that
//!   implements [`Model`].
//! * [`Fixed`] fixes some latents to given values (what the tutorials' interceptors do): the
//!   result is a model over the remaining latents.
//! * Surrogates are modules implementing [`Surrogate`]: [`PointEstimate`] (a point mass, for
//!   MAP), [`MeanFieldNormal`] (`q(θ) = Πᵢ N(θᵢ; μᵢ, softplus(ρᵢ)²)`) and [`MeanField`], whose
//!   factor is chosen per latent ([`Factor`]: Normal, LogNormal, Gamma or Beta) so that
//!   positive and (0, 1)-valued latents get factors on their own support.
//! * [`fit_map`] maximizes the log-joint over a [`PointEstimate`]; [`fit_surrogate`] maximizes
//!   the [`elbo`] `E_q[ln p(θ, x)] + H[q]` over a [`Surrogate`]; both return the module and the
//!   objective after each step. [`minimize`] is the loop under them, for any module and loss:
//!   with a `(model, surrogate)` pair it fits a model's own parameters and its posterior
//!   together (variational EM, type-II maximum likelihood).
//!
//! Create surrogates (and the model's data) on an autodiff device (`device.autodiff()`); the
//! drivers return the modules in training mode, still on it: [`Module::valid`] gives a copy
//! without gradient tracking.
//!
//! # Example
//! ```
//! use burn::optim::AdamConfig;
//! use burn::tensor::{Device, Tensor};
//! use burn_probability::inference::{fit_surrogate, LogJoint, MeanFieldNormal, Params};
//! use burn_probability::{Distribution, Normal};
//!
//! let device = Device::flex().autodiff();
//! // mu ~ N(0, 1), x_i ~ N(mu, 1): the posterior is N(sum(x) / (n + 1), 1 / (n + 1)).
//! let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0], &device);
//! let model = LogJoint::new(vec![("mu", vec![1])], move |p: &Params| {
//!     let mu: Tensor<1> = p.get("mu");
//!     let prior = Normal::new(mu.zeros_like(), mu.ones_like()).log_prob(mu.clone());
//!     let lik = Normal::new(mu.clone(), mu.ones_like()).log_prob(x.clone());
//!     prior + lik.sum()
//! });
//! let q = MeanFieldNormal::new(&model, 0.0, -1.0, &device);
//! // Any burn optimizer; burn's Adam with PyTorch's epsilon.
//! let mut adam = AdamConfig::new().with_epsilon(1e-8).init();
//! // A large learning rate to get there, a small one to settle (the iterate is stochastic).
//! let (q, trace) = fit_surrogate(&model, q, &mut adam, 0.05, 300, 4);
//! let (q, _) = fit_surrogate(&model, q, &mut adam, 0.005, 300, 4);
//! let mean: Vec<f32> = q.mean().get::<1>("mu").into_data().iter::<f32>().collect();
//! assert!((mean[0] - 1.5).abs() < 0.15, "{mean:?}"); // posterior sd 0.5
//! # let _ = trace;
//! ```

mod mean_field;

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use crate::error::{Error, Result};

pub use mean_field::{Factor, FactorDistribution, MeanField, MeanFieldNormal};

/// Named tensors: the values of a model's latent variables.
///
/// Stored flat with their shapes; [`Params::get`] returns a tensor of the requested rank.
#[derive(Clone, Debug, Default)]
pub struct Params {
    entries: BTreeMap<String, (Tensor<1>, Vec<usize>)>,
}

impl Params {
    /// No entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) `name` with `value`, of any rank.
    pub fn with<const D: usize>(mut self, name: &str, value: Tensor<D>) -> Self {
        self.insert(name, value);
        self
    }

    /// Inserts (or replaces) `name`.
    pub fn insert<const D: usize>(&mut self, name: &str, value: Tensor<D>) {
        let shape = value.dims().to_vec();
        let n: usize = shape.iter().product();
        self.entries
            .insert(name.to_string(), (value.reshape([n]), shape));
    }

    /// The value of `name` with rank `D`.
    ///
    /// # Panics
    /// If there is no such entry, or it does not have rank `D`; the message is
    /// [`Self::try_get`]'s error.
    #[track_caller]
    pub fn get<const D: usize>(&self, name: &str) -> Tensor<D> {
        self.try_get(name).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::get`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the missing latent and the ones present, or the
    /// latent's shape and the requested rank.
    pub fn try_get<const D: usize>(&self, name: &str) -> Result<Tensor<D>> {
        let (flat, shape) = self
            .entries
            .get(name)
            .ok_or_else(|| Error::InvalidArgument {
                context: "Params::get",
                argument: "name",
                expected: format!("one of {:?}", self.names()),
                actual: format!("`{name}`"),
            })?;
        if shape.len() != D {
            return Err(Error::InvalidArgument {
                context: "Params::get",
                argument: "D (the requested rank)",
                expected: format!("{} (`{name}` has shape {shape:?})", shape.len()),
                actual: D.to_string(),
            });
        }
        let mut dims = [0usize; D];
        dims.copy_from_slice(shape);
        Ok(flat.clone().reshape(dims))
    }

    /// The flat value and shape of `name`, if present.
    pub fn get_flat(&self, name: &str) -> Option<(&Tensor<1>, &[usize])> {
        self.entries.get(name).map(|(t, s)| (t, s.as_slice()))
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// Every value detached from the autodiff graph.
    pub fn detach(&self) -> Self {
        Self {
            entries: self
                .entries
                .iter()
                .map(|(k, (t, s))| (k.clone(), (t.clone().detach(), s.clone())))
                .collect(),
        }
    }
}

/// A probabilistic model given by its log-joint density over named latent variables (the data
/// being part of the model).
pub trait Model {
    /// The latent variables: names and shapes.
    fn latents(&self) -> Vec<(String, Vec<usize>)>;
    /// `ln p(latents, data)` as a `[1]` tensor, differentiable in the latents.
    fn log_joint(&self, latents: &Params) -> Tensor<1>;
}

/// A [`Model`] from a list of latents and a closure computing the log-joint.
pub struct LogJoint<F> {
    latents: Vec<(String, Vec<usize>)>,
    f: F,
}

impl<F: Fn(&Params) -> Tensor<1>> LogJoint<F> {
    /// `latents`: names and shapes; `f`: the log-joint.
    pub fn new(latents: Vec<(&str, Vec<usize>)>, f: F) -> Self {
        Self {
            latents: latents
                .into_iter()
                .map(|(n, s)| (n.to_string(), s))
                .collect(),
            f,
        }
    }
}

impl<F: Fn(&Params) -> Tensor<1>> Model for LogJoint<F> {
    fn latents(&self) -> Vec<(String, Vec<usize>)> {
        self.latents.clone()
    }
    fn log_joint(&self, latents: &Params) -> Tensor<1> {
        (self.f)(latents)
    }
}

/// A model with some latents fixed to given values: a model over the others. The role of the
/// tutorials' interceptors (`ed.interception(replace_latents(...))`).
pub struct Fixed<'a, M> {
    model: &'a M,
    fixed: Params,
}

impl<'a, M: Model> Fixed<'a, M> {
    /// Fixes the latents present in `fixed`.
    ///
    /// # Panics
    /// If `fixed` names a latent the model does not have; the message is
    /// [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new(model: &'a M, fixed: Params) -> Self {
        Self::try_new(model, fixed).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the unknown latent and the model's latents.
    pub fn try_new(model: &'a M, fixed: Params) -> Result<Self> {
        let names: Vec<String> = model.latents().into_iter().map(|(n, _)| n).collect();
        if let Some(n) = fixed.names().into_iter().find(|n| !names.contains(n)) {
            return Err(Error::InvalidArgument {
                context: "Fixed",
                argument: "fixed",
                expected: format!("values for latents among {names:?}"),
                actual: format!("a value for `{n}`"),
            });
        }
        Ok(Self { model, fixed })
    }
}

impl<M: Model> Model for Fixed<'_, M> {
    fn latents(&self) -> Vec<(String, Vec<usize>)> {
        let fixed = self.fixed.names();
        self.model
            .latents()
            .into_iter()
            .filter(|(n, _)| !fixed.contains(n))
            .collect()
    }
    fn log_joint(&self, latents: &Params) -> Tensor<1> {
        let mut all = latents.clone();
        for (name, entry) in &self.fixed.entries {
            all.entries.insert(name.clone(), entry.clone());
        }
        self.model.log_joint(&all)
    }
}

/// Named values from flat tensors in the order of `latents`.
fn pack(latents: &[(String, Vec<usize>)], values: &[Tensor<1>]) -> Params {
    let mut p = Params::new();
    for ((name, shape), v) in latents.iter().zip(values) {
        p.entries.insert(name.clone(), (v.clone(), shape.clone()));
    }
    p
}

/// A surrogate posterior `q(θ)` over a model's latents: a [`Module`] whose parameters are the
/// variational parameters, with reparameterized draws and a closed-form entropy, what
/// [`elbo`] and [`fit_surrogate`] need.
///
/// Implemented by [`MeanFieldNormal`], [`MeanField`] and [`PointEstimate`]; implement it for a
/// surrogate of your own (a full-rank Gaussian, a flow) to fit it with the same drivers.
pub trait Surrogate: Module {
    /// The latents `q` is over: names and shapes, in the model's order.
    fn latents(&self) -> Vec<(String, Vec<usize>)>;

    /// `n` reparameterized draws `θ⁽ˢ⁾ ~ q`, each latent with its shape, differentiable in the
    /// surrogate's parameters.
    fn rsample_n(&self, n: usize) -> Vec<Params>;

    /// The entropy `H[qₗᵢ]` of each element of each latent, with the latent's shape, in closed
    /// form; the surrogate's entropy `H[q]` is their sum.
    fn entropy(&self) -> Params;
}

/// A point estimate of every latent: a [`Module`] with one [`Param`] per latent (flattened),
/// the "surrogate" of MAP estimation ([`fit_map`]); as a [`Surrogate`], a point mass (every
/// draw is the point, the entropy 0).
///
/// # Example
/// ```
/// use burn::optim::AdamConfig;
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::inference::{fit_map, LogJoint, Params, PointEstimate};
///
/// let device = Device::flex().autodiff();
/// // ln p(a) = −(a − 3)²: the mode is 3.
/// let model = LogJoint::new(vec![("a", vec![1])], |p: &Params| {
///     -(p.get::<1>("a") - 3.0).square()
/// });
/// let init = PointEstimate::new(&model, &Params::new().with("a", Tensor::<1>::zeros([1], &device)));
/// let mut adam = AdamConfig::new().init();
/// let (map, energy) = fit_map(&model, init, &mut adam, 0.1, 300);
/// let a = map.values().get::<1>("a").into_scalar::<f32>();
/// assert!((a - 3.0).abs() < 1e-2, "{a}");
/// assert!(energy.last().unwrap() < &energy[0]);
/// ```
#[derive(Module, Debug)]
pub struct PointEstimate {
    values: Vec<Param<Tensor<1>>>,
    #[module(skip)]
    latents: Vec<(String, Vec<usize>)>,
}

impl PointEstimate {
    /// A point estimate of `model`'s latents starting at `init` (a value of every latent, with
    /// the latent's shape), on the values' device.
    ///
    /// # Panics
    /// If `init` lacks a latent of the model or gives one the wrong shape; the message is
    /// [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new<M: Model>(model: &M, init: &Params) -> Self {
        Self::try_new(model, init).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the latent `init` has no value for, or whose value has
    /// another shape than the model's.
    pub fn try_new<M: Model>(model: &M, init: &Params) -> Result<Self> {
        let latents = model.latents();
        let mut values = Vec::with_capacity(latents.len());
        for (name, shape) in &latents {
            let (value, got) = init.get_flat(name).ok_or_else(|| Error::InvalidArgument {
                context: "PointEstimate::new",
                argument: "init",
                expected: format!("a value for every latent of the model, {latents:?}"),
                actual: format!("no value for `{name}`"),
            })?;
            if got != shape.as_slice() {
                return Err(Error::InvalidArgument {
                    context: "PointEstimate::new",
                    argument: "init",
                    expected: format!("`{name}` of shape {shape:?}"),
                    actual: format!("shape {got:?}"),
                });
            }
            values.push(Param::from_tensor(value.clone().detach()));
        }
        Ok(Self { values, latents })
    }

    /// The current value of every latent, each with its shape.
    pub fn values(&self) -> Params {
        let values: Vec<Tensor<1>> = self.values.iter().map(Param::val).collect();
        pack(&self.latents, &values)
    }
}

impl Surrogate for PointEstimate {
    fn latents(&self) -> Vec<(String, Vec<usize>)> {
        self.latents.clone()
    }

    fn rsample_n(&self, n: usize) -> Vec<Params> {
        vec![self.values(); n]
    }

    fn entropy(&self) -> Params {
        let zeros: Vec<Tensor<1>> = self.values.iter().map(|v| v.val().zeros_like()).collect();
        pack(&self.latents, &zeros)
    }
}

/// The evidence lower bound of `model` under the surrogate `q`,
///
/// ```text
/// ELBO(q) = E_q[ln p(θ, x)] + H[q] ≈ (1/S) Σₛ ln p(θ⁽ˢ⁾, x) + Σₗ Σᵢ H[qₗᵢ]
/// ```
///
/// with `S = samples` reparameterized draws `θ⁽ˢ⁾ ~ q` and the closed-form entropy of `q`: a
/// `[1]` tensor, differentiable in `q`'s parameters (and in the model's own, if it has any).
/// Its negative is the loss [`fit_surrogate`] minimizes; use it in a loop of your own (burn's
/// optimizers, schedulers, gradient clipping) through [`minimize`] or by hand.
///
/// # Panics
/// If `q` has no latents, is not over `model`'s latents, or `samples` is 0; the message is
/// [`try_elbo`]'s error.
#[track_caller]
pub fn elbo<M: Model, Q: Surrogate>(model: &M, q: &Q, samples: usize) -> Tensor<1> {
    try_elbo(model, q, samples).unwrap_or_else(|e| panic!("{e}"))
}

/// [`elbo`] returning an [`Error`] instead of panicking.
///
/// # Errors
/// [`Error::InvalidArgument`] if `q` has no latents, if its latents (names and shapes) are
/// not `model`'s, or if `samples` is 0.
pub fn try_elbo<M: Model, Q: Surrogate>(model: &M, q: &Q, samples: usize) -> Result<Tensor<1>> {
    check_surrogate("elbo", "q", "samples", model, q, samples)?;
    Ok(elbo_unchecked(model, q, samples))
}

fn elbo_unchecked<M: Model, Q: Surrogate>(model: &M, q: &Q, samples: usize) -> Tensor<1> {
    let entropy = q
        .entropy()
        .entries
        .into_values()
        .map(|(h, _)| h.sum())
        .reduce(|a, b| a + b)
        .expect("checked: at least one latent");
    let energy = q
        .rsample_n(samples)
        .iter()
        .map(|draw| model.log_joint(draw))
        .reduce(|a, b| a + b)
        .expect("checked: at least one sample");
    energy / samples as f64 + entropy
}

fn check_surrogate<M: Model, Q: Surrogate>(
    context: &'static str,
    surrogate: &'static str,
    samples_name: &'static str,
    model: &M,
    q: &Q,
    samples: usize,
) -> Result<()> {
    let latents = q.latents();
    if latents.is_empty() {
        return Err(Error::InvalidArgument {
            context,
            argument: surrogate,
            expected: "a surrogate over at least one latent".into(),
            actual: "no latents".into(),
        });
    }
    if latents != model.latents() {
        return Err(Error::InvalidArgument {
            context,
            argument: surrogate,
            expected: format!("a surrogate over the model's latents {:?}", model.latents()),
            actual: format!("one over {latents:?}"),
        });
    }
    if samples == 0 {
        return Err(Error::InvalidArgument {
            context,
            argument: samples_name,
            expected: "at least 1".into(),
            actual: "0".into(),
        });
    }
    Ok(())
}

/// Minimizes `loss(module)` over the module's parameters: `steps` steps of `optim` (any
/// `burn::optim` optimizer: `AdamConfig::new().init()`, SGD, RMSProp, ...) at the learning
/// rates of `lr` (a scheduler from its config's `init()`, or an `f64` for a constant rate). Returns the module and the
/// loss before each step. The role of TFP's `tfp.math.minimize`.
///
/// `module` is put in training mode first ([`Module::train`]), so that its parameters track
/// gradients; the optimizer's state carries over between calls with the same `optim`.
///
/// # Example
/// A model with a parameter of its own, fitted together with its posterior (type-II maximum
/// likelihood): `θⱼ ~ N(m, 1)`, `xⱼ ~ N(θⱼ, 1)`; the marginal likelihood `xⱼ ~ N(m, 2)` is
/// largest at `m = x̄`, and the mean-field Normal family holds the exact posterior, so the
/// ELBO's maximum is there too.
/// ```
/// use burn::module::{Module, Param};
/// use burn::optim::AdamConfig;
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::inference::{elbo, minimize, MeanFieldNormal, Model, Params};
/// use burn_probability::{Distribution, Normal};
///
/// #[derive(Module, Debug)]
/// struct Hierarchical {
///     m: Param<Tensor<1>>,
///     x: Tensor<1>,
/// }
///
/// impl Model for Hierarchical {
///     fn latents(&self) -> Vec<(String, Vec<usize>)> {
///         vec![("theta".into(), vec![4])]
///     }
///     fn log_joint(&self, p: &Params) -> Tensor<1> {
///         let theta: Tensor<1> = p.get("theta");
///         let prior = Normal::new(self.m.val().expand([4]), 1.0).log_prob(theta.clone());
///         let lik = Normal::new(theta, 1.0).log_prob(self.x.clone());
///         (prior + lik).sum()
///     }
/// }
///
/// let device = Device::flex().autodiff();
/// device.seed(5);
/// let x = Tensor::<1>::from_floats([1.0, 3.0, 2.5, 1.5], &device); // mean 2
/// let model = Hierarchical { m: Param::from_tensor(Tensor::zeros([1], &device)), x };
/// let q = MeanFieldNormal::new(&model, 0.0, 0.0, &device);
/// let mut adam = AdamConfig::new().init();
/// let ((model, _q), _loss) = minimize((model, q), &mut adam, 0.05, 600, |(m, q)| -elbo(m, q, 4));
/// let m = model.m.val().into_scalar::<f32>();
/// assert!((m - 2.0).abs() < 0.15, "{m}");
/// ```
pub fn minimize<T: Module>(
    module: T,
    optim: &mut ModuleOptimizer,
    lr: impl Into<ModuleLrScheduler>,
    steps: usize,
    mut loss: impl FnMut(&T) -> Tensor<1>,
) -> (T, Vec<f64>) {
    let mut lr = lr.into();
    let mut module = module.train();
    let mut trace = Vec::with_capacity(steps);
    for _ in 0..steps {
        let l = loss(&module);
        trace.push(l.clone().into_scalar::<f64>());
        let grads = GradientsParams::from_grads(l.backward(), &module);
        module = optim.step(lr.step(), module, grads);
    }
    (module, trace)
}

/// Maximum a posteriori estimation: maximizes `model.log_joint` over a [`PointEstimate`] from
/// `init`, by [`minimize`] with `optim` at the learning rates of `lr`. Returns the estimate and
/// the energy `−ln p(θ, x)` before each step.
///
/// # Panics
/// If `init` is not over `model`'s latents; the message is [`try_fit_map`]'s error.
#[track_caller]
pub fn fit_map<M: Model>(
    model: &M,
    init: PointEstimate,
    optim: &mut ModuleOptimizer,
    lr: impl Into<ModuleLrScheduler>,
    steps: usize,
) -> (PointEstimate, Vec<f64>) {
    try_fit_map(model, init, optim, lr, steps).unwrap_or_else(|e| panic!("{e}"))
}

/// [`fit_map`] returning an [`Error`] instead of panicking.
///
/// # Errors
/// [`Error::InvalidArgument`] if `init`'s latents (names and shapes) are not `model`'s.
pub fn try_fit_map<M: Model>(
    model: &M,
    init: PointEstimate,
    optim: &mut ModuleOptimizer,
    lr: impl Into<ModuleLrScheduler>,
    steps: usize,
) -> Result<(PointEstimate, Vec<f64>)> {
    if init.latents != model.latents() {
        return Err(Error::InvalidArgument {
            context: "fit_map",
            argument: "init",
            expected: format!(
                "a point estimate of the model's latents {:?}",
                model.latents()
            ),
            actual: format!("one of {:?}", init.latents),
        });
    }
    Ok(minimize(init, optim, lr, steps, |p| {
        -model.log_joint(&p.values())
    }))
}

/// Fits a surrogate posterior `q` to `model` by maximizing the [`elbo`] with
/// `samples_per_step` reparameterized draws per step (the Gamma and Beta factors of a
/// [`MeanField`] train through their implicit reparameterization gradients), by [`minimize`]
/// with `optim` at the learning rates of `lr`. Returns the fitted surrogate and the ELBO
/// estimate before each step (noisy: average a window to read it). The role of TFP's
/// `tfp.vi.fit_surrogate_posterior`.
///
/// # Example
/// ```
/// use burn::optim::AdamConfig;
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::inference::{fit_surrogate, Factor, LogJoint, MeanField, Params};
/// use burn_probability::{Beta, Binomial, Distribution};
///
/// let device = Device::flex().autodiff();
/// device.seed(4);
/// // A coin: θ ~ Beta(1, 1), 7 heads in 10 flips; the posterior is Beta(8, 4) (mean 2/3).
/// let heads = Tensor::<1>::from_floats([7.0], &device);
/// let model = LogJoint::new(vec![("theta", vec![1])], move |p: &Params| {
///     let theta: Tensor<1> = p.get("theta");
///     Beta::new(theta.ones_like(), 1.0).log_prob(theta.clone())
///         + Binomial::from_probs(10.0, theta).log_prob(heads.clone())
/// });
/// let q = MeanField::new(&model, &device).with_factor("theta", Factor::Beta);
/// let mut adam = AdamConfig::new().with_epsilon(1e-8).init();
/// let (q, _) = fit_surrogate(&model, q, &mut adam, 0.05, 300, 4);
/// let (q, _) = fit_surrogate(&model, q, &mut adam, 0.01, 300, 4);
/// let mean = q.mean().get::<1>("theta").into_scalar::<f32>();
/// assert!((mean - 2.0 / 3.0).abs() < 0.03, "{mean}");
/// ```
///
/// # Panics
/// If `q` has no latents, is not over `model`'s latents, or `samples_per_step` is 0; the
/// message is [`try_fit_surrogate`]'s error.
#[track_caller]
pub fn fit_surrogate<M: Model, Q: Surrogate>(
    model: &M,
    q: Q,
    optim: &mut ModuleOptimizer,
    lr: impl Into<ModuleLrScheduler>,
    steps: usize,
    samples_per_step: usize,
) -> (Q, Vec<f64>) {
    try_fit_surrogate(model, q, optim, lr, steps, samples_per_step)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// [`fit_surrogate`] returning an [`Error`] instead of panicking.
///
/// # Errors
/// [`Error::InvalidArgument`] if `q` has no latents, if its latents (names and shapes) are
/// not `model`'s, or if `samples_per_step` is 0.
///
/// # Example
/// ```
/// use burn::optim::AdamConfig;
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::inference::{try_fit_surrogate, LogJoint, MeanField, Params};
///
/// let device = Device::flex().autodiff();
/// let model = LogJoint::new(vec![("x", vec![1])], |p: &Params| -p.get::<1>("x").square());
/// let q = MeanField::new(&model, &device);
/// let mut adam = AdamConfig::new().init();
/// let err = try_fit_surrogate(&model, q, &mut adam, 0.1, 10, 0).unwrap_err();
/// assert_eq!(err.to_string(), "fit_surrogate: `samples_per_step` must be at least 1, got 0");
/// ```
pub fn try_fit_surrogate<M: Model, Q: Surrogate>(
    model: &M,
    q: Q,
    optim: &mut ModuleOptimizer,
    lr: impl Into<ModuleLrScheduler>,
    steps: usize,
    samples_per_step: usize,
) -> Result<(Q, Vec<f64>)> {
    check_surrogate(
        "fit_surrogate",
        "q",
        "samples_per_step",
        model,
        &q,
        samples_per_step,
    )?;
    let (q, trace) = minimize(q, optim, lr, steps, |q| {
        -elbo_unchecked(model, q, samples_per_step)
    });
    Ok((q, trace.into_iter().map(|l| -l).collect()))
}
