//! Fitting models written as a log-joint density: MAP estimation and mean-field variational
//! inference, the roles of Edward2's `make_log_joint_fn`, TFP's
//! `tfp.vi.fit_surrogate_posterior` and Pyro's `AutoNormal`.
//!
//! * A model is anything implementing [`Model`]: it names its latent variables (with shapes)
//!   and returns `ln p(latents, data)` for given values, written with this crate's
//!   distributions. A closure works too, through [`LogJoint`].
//! * [`Fixed`] fixes some latents to given values (what the tutorials' interceptors do): the
//!   result is a model over the remaining latents.
//! * [`fit_map`] maximizes the log-joint with [`Adam`]; [`fit_mean_field`] fits a
//!   [`MeanFieldNormal`] surrogate `q(θ) = Πᵢ N(θᵢ; μᵢ, softplus(ρᵢ)²)` by maximizing the ELBO
//!   `E_q[ln p(θ, x)] + H[q]` with reparameterized samples. Both return the loss trace.
//! * [`fit_surrogate`] fits a [`MeanField`] surrogate whose factors are chosen per latent
//!   ([`Factor`]: Normal, LogNormal, Gamma or Beta), so that positive and (0, 1)-valued latents
//!   get factors on their own support; the Gamma and Beta factors train through their implicit
//!   reparameterization gradients. [`MeanField::distribution`] gives each fitted factor.
//!
//! # Example
//! ```
//! use burn::tensor::{Device, Tensor};
//! use burn_probability::inference::{fit_mean_field, AdamConfig, LogJoint, MeanFieldNormal, Params};
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
//! // A large learning rate to get there, a small one to settle (the iterate is stochastic).
//! let (q, trace) = fit_mean_field(&model, q, AdamConfig::new(0.05), 300, 4);
//! let (q, _) = fit_mean_field(&model, q, AdamConfig::new(0.005), 300, 4);
//! let mean: Vec<f32> = q.mean().get::<1>("mu").into_data().iter::<f32>().collect();
//! assert!((mean[0] - 1.5).abs() < 0.15, "{mean:?}"); // posterior sd 0.5
//! # let _ = trace;
//! ```

use std::collections::BTreeMap;

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Distribution as Init, Tensor};

use crate::distribution::{Distribution, Entropy, Moments, Rsample};
use crate::error::{Error, Result};
use crate::math::softplus;
use crate::{Beta, Gamma, LogNormal, Normal};

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

/// Adam's hyperparameters. `epsilon` defaults to 1e-8, as in PyTorch and TensorFlow (burn's own
/// Adam uses 1e-5).
#[derive(Clone, Copy, Debug)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta_1: f64,
    /// Second-moment decay.
    pub beta_2: f64,
    /// Added to the denominator.
    pub epsilon: f64,
}

impl AdamConfig {
    /// Adam with learning rate `lr` and the usual defaults (0.9, 0.999, 1e-8).
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
        }
    }
}

/// Adam (Kingma and Ba, 2015) over a list of flat tensors, for the drivers of this module.
#[derive(Clone, Debug)]
pub struct Adam {
    config: AdamConfig,
    m: Vec<Tensor<1>>,
    v: Vec<Tensor<1>>,
    t: i32,
}

impl Adam {
    /// A fresh optimizer for parameters shaped like `params`.
    pub fn new(config: AdamConfig, params: &[Tensor<1>]) -> Self {
        Self {
            config,
            m: params.iter().map(|p| p.zeros_like()).collect(),
            v: params.iter().map(|p| p.zeros_like()).collect(),
            t: 0,
        }
    }

    /// One step of gradient *descent* on `params` (values without autodiff), in place.
    pub fn step(&mut self, params: &mut [Tensor<1>], grads: &[Tensor<1>]) {
        let c = self.config;
        self.t += 1;
        let bc1 = 1.0 - c.beta_1.powi(self.t);
        let bc2 = 1.0 - c.beta_2.powi(self.t);
        for i in 0..params.len() {
            let g = grads[i].clone();
            self.m[i] = self.m[i].clone() * c.beta_1 + g.clone() * (1.0 - c.beta_1);
            self.v[i] = self.v[i].clone() * c.beta_2 + g.square() * (1.0 - c.beta_2);
            let update = (self.m[i].clone() / bc1) / ((self.v[i].clone() / bc2).sqrt() + c.epsilon);
            params[i] = params[i].clone() - update * c.lr;
        }
    }
}

/// Runs `steps` of Adam on `values`, minimizing `loss(values)`; returns the values and the
/// loss after each step. `values` may live on an autodiff device or not; gradients are taken
/// on its autodiff version.
fn minimize<L: Fn(&[Tensor<1>]) -> Tensor<1>>(
    mut values: Vec<Tensor<1>>,
    config: AdamConfig,
    steps: usize,
    loss: L,
) -> (Vec<Tensor<1>>, Vec<f64>) {
    let mut values: Vec<Tensor<1>> = values.drain(..).map(|v| v.without_autodiff()).collect();
    let mut adam = Adam::new(config, &values);
    let mut trace = Vec::with_capacity(steps);
    for _ in 0..steps {
        let tracked: Vec<Tensor<1>> = values
            .iter()
            .map(|v| v.clone().autodiff().require_grad())
            .collect();
        let l = loss(&tracked);
        trace.push(l.clone().into_scalar::<f64>());
        let grads = l.backward();
        let g: Vec<Tensor<1>> = tracked
            .iter()
            .map(|t| {
                t.grad(&grads)
                    .unwrap_or_else(|| t.clone().without_autodiff().zeros_like())
            })
            .collect();
        adam.step(&mut values, &g);
    }
    (values, trace)
}

/// Maximum a posteriori estimation: maximizes `model.log_joint` over its latents from `init`,
/// with Adam. Returns the estimate and the energy `−ln p(θ, x)` after each step.
///
/// # Panics
/// If `init` lacks one of the model's latents; the message is [`try_fit_map`]'s error.
#[track_caller]
pub fn fit_map<M: Model>(
    model: &M,
    init: &Params,
    config: AdamConfig,
    steps: usize,
) -> (Params, Vec<f64>) {
    try_fit_map(model, init, config, steps).unwrap_or_else(|e| panic!("{e}"))
}

/// [`fit_map`] returning an [`Error`] instead of panicking.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the latent `init` has no value for.
pub fn try_fit_map<M: Model>(
    model: &M,
    init: &Params,
    config: AdamConfig,
    steps: usize,
) -> Result<(Params, Vec<f64>)> {
    let latents = model.latents();
    let mut values: Vec<Tensor<1>> = Vec::with_capacity(latents.len());
    for (n, _) in &latents {
        let (value, _) = init.get_flat(n).ok_or_else(|| Error::InvalidArgument {
            context: "fit_map",
            argument: "init",
            expected: format!(
                "a value for every latent of the model, {:?}",
                model.latents()
            ),
            actual: format!("no value for `{n}`"),
        })?;
        values.push(value.clone());
    }
    let pack = |vs: &[Tensor<1>]| {
        let mut p = Params::new();
        for ((name, shape), v) in latents.iter().zip(vs) {
            p.entries.insert(name.clone(), (v.clone(), shape.clone()));
        }
        p
    };
    let (values, trace) = minimize(values, config, steps, |vs| -model.log_joint(&pack(vs)));
    Ok((pack(&values), trace))
}

/// A mean-field Normal surrogate posterior over a model's latents:
/// `q(θ) = Πᵢ N(θᵢ; μᵢ, σᵢ²)` with `σᵢ = softplus(ρᵢ)`, `μ` and `ρ` unconstrained.
#[derive(Clone, Debug)]
pub struct MeanFieldNormal {
    latents: Vec<(String, Vec<usize>)>,
    locs: Vec<Tensor<1>>,
    raw_scales: Vec<Tensor<1>>,
}

impl MeanFieldNormal {
    /// Every `μ` set to `loc`, every `ρ` to `raw_scale` (the tutorial uses 1 and −4:
    /// `σ = softplus(−4) ≈ 0.018`).
    pub fn new<M: Model>(model: &M, loc: f64, raw_scale: f64, device: &Device) -> Self {
        let latents = model.latents();
        let size = |s: &Vec<usize>| s.iter().product::<usize>();
        Self {
            locs: latents
                .iter()
                .map(|(_, s)| Tensor::<1>::ones([size(s)], device) * loc)
                .collect(),
            raw_scales: latents
                .iter()
                .map(|(_, s)| Tensor::<1>::ones([size(s)], device) * raw_scale)
                .collect(),
            latents,
        }
    }

    /// The posterior means `μ`.
    pub fn mean(&self) -> Params {
        self.pack(&self.locs)
    }

    /// The posterior standard deviations `softplus(ρ)`.
    pub fn stddev(&self) -> Params {
        let s: Vec<Tensor<1>> = self
            .raw_scales
            .iter()
            .map(|r| softplus(r.clone()))
            .collect();
        self.pack(&s)
    }

    /// One draw of every latent (no gradient).
    pub fn sample(&self) -> Params {
        let draws: Vec<Tensor<1>> = self
            .locs
            .iter()
            .zip(&self.raw_scales)
            .map(|(m, r)| m.clone() + softplus(r.clone()) * m.random_like(Init::Normal(0.0, 1.0)))
            .collect();
        self.pack(&draws).detach()
    }

    fn pack(&self, vs: &[Tensor<1>]) -> Params {
        let mut p = Params::new();
        for ((name, shape), v) in self.latents.iter().zip(vs) {
            p.entries.insert(name.clone(), (v.clone(), shape.clone()));
        }
        p
    }
}

/// Fits a [`MeanFieldNormal`] surrogate to `model` by maximizing the ELBO
/// `E_q[ln p(θ, x)] + H[q]`, estimated with `samples_per_step` reparameterized samples and the
/// closed-form entropy of `q`. Returns the fitted surrogate and the ELBO after each step.
///
/// # Panics
/// If the model has no latents or `samples_per_step` is 0; the message is
/// [`try_fit_mean_field`]'s error.
#[track_caller]
pub fn fit_mean_field<M: Model>(
    model: &M,
    init: MeanFieldNormal,
    config: AdamConfig,
    steps: usize,
    samples_per_step: usize,
) -> (MeanFieldNormal, Vec<f64>) {
    try_fit_mean_field(model, init, config, steps, samples_per_step)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// [`fit_mean_field`] returning an [`Error`] instead of panicking.
///
/// # Errors
/// [`Error::InvalidArgument`] if the surrogate has no latents or `samples_per_step` is 0.
pub fn try_fit_mean_field<M: Model>(
    model: &M,
    init: MeanFieldNormal,
    config: AdamConfig,
    steps: usize,
    samples_per_step: usize,
) -> Result<(MeanFieldNormal, Vec<f64>)> {
    if init.locs.is_empty() {
        return Err(Error::InvalidArgument {
            context: "fit_mean_field",
            argument: "init",
            expected: "a surrogate over at least one latent".into(),
            actual: "no latents".into(),
        });
    }
    if samples_per_step == 0 {
        return Err(Error::InvalidArgument {
            context: "fit_mean_field",
            argument: "samples_per_step",
            expected: "at least 1".into(),
            actual: "0".into(),
        });
    }
    let samples = samples_per_step;
    let n = init.locs.len();
    let mut values = init.locs.clone();
    values.extend(init.raw_scales.iter().cloned());
    let (values, trace) = minimize(values, config, steps, |vs| {
        let (locs, raws) = vs.split_at(n);
        let scales: Vec<Tensor<1>> = raws.iter().map(|r| softplus(r.clone())).collect();
        // H[q] = Σ (ln σ + ½ ln 2πe).
        let entropy = scales
            .iter()
            .map(|s| (s.clone().log() + 0.5 * (1.0 + crate::math::LN_2PI)).sum())
            .reduce(|a, b| a + b)
            .expect("at least one latent");
        let mut energy = None;
        for _ in 0..samples {
            let draws: Vec<Tensor<1>> = locs
                .iter()
                .zip(&scales)
                .map(|(m, s)| m.clone() + s.clone() * m.random_like(Init::Normal(0.0, 1.0)))
                .collect();
            let lj = model.log_joint(&init.pack(&draws));
            energy = Some(match energy {
                None => lj,
                Some(e) => e + lj,
            });
        }
        let elbo = energy.expect("at least one sample") / samples as f64 + entropy;
        -elbo
    });
    let trace = trace.into_iter().map(|l| -l).collect();
    let (locs, raws) = values.split_at(n);
    Ok((
        MeanFieldNormal {
            latents: init.latents,
            locs: locs.to_vec(),
            raw_scales: raws.to_vec(),
        },
        trace,
    ))
}

/// The family of one latent's factor in a [`MeanField`] surrogate, and how its two
/// unconstrained raw parameters `(r₀, r₁)` map to the family's parameters.
///
/// | factor | support | parameters | initial value |
/// |---|---|---|---|
/// | `Normal` | ℝ | `μ = r₀`, `σ = softplus(r₁)` | `N(0, 0.1²)` |
/// | `LogNormal` | (0, ∞) | `μ = r₀`, `σ = softplus(r₁)` (of `ln θ`) | `LogNormal(0, 0.1²)` |
/// | `Gamma` | (0, ∞) | `α = exp(r₀)`, `λ = α·exp(−r₁)` (mean `exp(r₁)`) | `Gamma(1, 1)` |
/// | `Beta` | (0, 1) | `a = κ·sigmoid(r₀)`, `b = κ·sigmoid(−r₀)`, `κ = exp(r₁)` | `Beta(1, 1)` |
///
/// The Normal and LogNormal initial values are Pyro's `AutoNormal` ones (`init_scale = 0.1`,
/// here around 0 rather than the prior's median), the scale through a softplus as in TFP and
/// [`MeanFieldNormal`]. The Gamma and Beta factors are parameterized by their mean (`ln` of
/// the Gamma mean, the logit of the Beta mean `a/(a + b)`) and the log of their concentration
/// (`α`, `κ = a + b`), rather than by the two concentrations or rates through a softplus:
///
/// * posteriors such as `Gamma(15, 127)` lie orders of magnitude from the initial
///   `Gamma(1, 1)`: through `exp`, Adam's steps of about `lr` in a raw parameter are relative
///   steps, and get there in hundreds of steps rather than thousands;
/// * the ELBO is steep and its gradient noisy in the mean, and nearly flat in the
///   concentration at a fixed mean (the entropy and the expected log-density almost cancel):
///   with one raw parameter for each, Adam's per-coordinate scaling does not let the noise of
///   the first slow down the second (with `(ln α, ln λ)` a `Gamma(50, 10.5)` posterior was
///   still at `α ≈ 18` after 900 steps).
/// # Example
/// ```
/// use burn_probability::inference::Factor;
///
/// assert_eq!(Factor::default(), Factor::Normal);
/// assert_eq!(Factor::Gamma.to_string(), "Gamma");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Factor {
    /// `N(μ, σ²)`, for real latents (the default).
    #[default]
    Normal,
    /// `LogNormal(μ, σ²)`, for positive latents.
    LogNormal,
    /// `Gamma(α, λ)` (concentration, rate), for positive latents.
    Gamma,
    /// `Beta(a, b)` (`concentration1`, `concentration0`), for latents in (0, 1).
    Beta,
}

impl core::fmt::Display for Factor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self {
            Factor::Normal => "Normal",
            Factor::LogNormal => "LogNormal",
            Factor::Gamma => "Gamma",
            Factor::Beta => "Beta",
        };
        f.write_str(name)
    }
}

impl Factor {
    /// The initial raw parameters `(r₀, r₁)` (see the table of [`Factor`]).
    fn initial_raw(self) -> (f64, f64) {
        // softplus⁻¹(0.1) = ln(e^0.1 − 1).
        let raw_scale = 0.1f64.exp_m1().ln();
        match self {
            Factor::Normal | Factor::LogNormal => (0.0, raw_scale),
            Factor::Gamma => (0.0, 0.0),
            Factor::Beta => (0.0, 2f64.ln()),
        }
    }

    /// The factor's distribution from its raw parameters.
    fn build(self, r0: Tensor<1>, r1: Tensor<1>) -> FactorDistribution {
        match self {
            Factor::Normal => FactorDistribution::Normal(Normal::new(r0, softplus(r1))),
            Factor::LogNormal => FactorDistribution::LogNormal(LogNormal::new(r0, softplus(r1))),
            Factor::Gamma => {
                let alpha = r0.clone().exp();
                FactorDistribution::Gamma(Gamma::new(alpha, (r0 - r1).exp()))
            }
            Factor::Beta => {
                let total = r1.exp();
                FactorDistribution::Beta(Beta::new(
                    total.clone() * sigmoid(r0.clone()),
                    total * sigmoid(-r0),
                ))
            }
        }
    }
}

/// One latent's fitted factor in a [`MeanField`] surrogate: the crate's distribution over the
/// latent's elements, flattened to rank 1 (element `i` of the flattened latent, in row-major
/// order). Match on it to read the parameters, e.g. a Gamma factor's `concentration()` and
/// `rate()`, or use its methods.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::inference::{Factor, FactorDistribution, LogJoint, MeanField, Params};
///
/// let device = Device::flex();
/// let model = LogJoint::new(vec![("rate", vec![2])], |p: &Params| p.get::<1>("rate").sum());
/// let q = MeanField::new(&model, &device).with_factor("rate", Factor::Gamma);
/// let FactorDistribution::Gamma(g) = q.distribution("rate") else { unreachable!() };
/// let alpha: Vec<f32> = g.concentration().clone().into_data().iter::<f32>().collect();
/// assert_eq!(alpha, vec![1.0, 1.0]); // the initial Gamma(1, 1)
/// ```
#[derive(Clone, Debug)]
pub enum FactorDistribution {
    /// A [`Factor::Normal`] factor.
    Normal(Normal<1>),
    /// A [`Factor::LogNormal`] factor.
    LogNormal(LogNormal<1>),
    /// A [`Factor::Gamma`] factor.
    Gamma(Gamma<1>),
    /// A [`Factor::Beta`] factor.
    Beta(Beta<1>),
}

impl FactorDistribution {
    /// The family.
    pub fn factor(&self) -> Factor {
        match self {
            Self::Normal(_) => Factor::Normal,
            Self::LogNormal(_) => Factor::LogNormal,
            Self::Gamma(_) => Factor::Gamma,
            Self::Beta(_) => Factor::Beta,
        }
    }

    /// The mean of each element: `μ`, `exp(μ + σ²/2)`, `α/λ` or `a/(a + b)`.
    pub fn mean(&self) -> Tensor<1> {
        match self {
            Self::Normal(d) => d.mean(),
            Self::LogNormal(d) => d.mean(),
            Self::Gamma(d) => d.mean(),
            Self::Beta(d) => d.mean(),
        }
    }

    /// The variance of each element: `σ²`, `(exp(σ²) − 1) exp(2μ + σ²)`, `α/λ²` or
    /// `ab/((a + b)²(a + b + 1))`.
    pub fn variance(&self) -> Tensor<1> {
        match self {
            Self::Normal(d) => d.variance(),
            Self::LogNormal(d) => d.variance(),
            Self::Gamma(d) => d.variance(),
            Self::Beta(d) => d.variance(),
        }
    }

    /// The standard deviation of each element, `√variance`.
    pub fn stddev(&self) -> Tensor<1> {
        self.variance().sqrt()
    }

    /// The entropy of each element, in closed form: `ln σ + ½ ln 2πe`, `μ + ln σ + ½ ln 2πe`,
    /// `α − ln λ + ln Γ(α) + (1 − α) ψ(α)`, or
    /// `ln B(a, b) − (a − 1) ψ(a) − (b − 1) ψ(b) + (a + b − 2) ψ(a + b)`.
    pub fn entropy(&self) -> Tensor<1> {
        match self {
            Self::Normal(d) => d.entropy(),
            Self::LogNormal(d) => d.entropy(),
            Self::Gamma(d) => d.entropy(),
            Self::Beta(d) => d.entropy(),
        }
    }

    /// The log-density of `value` (same shape), element by element.
    pub fn log_prob(&self, value: Tensor<1>) -> Tensor<1> {
        match self {
            Self::Normal(d) => d.log_prob(value),
            Self::LogNormal(d) => d.log_prob(value),
            Self::Gamma(d) => d.log_prob(value),
            Self::Beta(d) => d.log_prob(value),
        }
    }

    /// One reparameterized draw of every element, differentiable in the parameters:
    /// [`Self::rsample_n`] with `n = 1`.
    pub fn rsample(&self) -> Tensor<1> {
        let [n] = self.mean().dims();
        self.rsample_n(1).reshape([n])
    }

    /// `n` reparameterized draws of every element, `[n, elements]`, differentiable in the
    /// parameters: the affine map of Normal noise for the Normal and LogNormal factors, the
    /// implicit reparameterization gradient (Figurnov, Mohamed and Mnih, 2018) for Gamma and
    /// Beta.
    ///
    /// Gamma draws are kept at least `f32::MIN_POSITIVE` and Beta draws within
    /// `[f32::MIN_POSITIVE, 1 − 2⁻²⁴]` (a float32 Gamma variate of a small concentration can
    /// underflow to 0, and a Beta variate round to 1), so that a model's `ln θ` or
    /// `ln(1 − θ)` stays finite.
    pub fn rsample_n(&self, n: usize) -> Tensor<2> {
        match self {
            Self::Normal(d) => d.rsample_n(n),
            Self::LogNormal(d) => d.rsample_n(n),
            Self::Gamma(d) => {
                let noise: Tensor<2> = d.noise(&[n]);
                d.rsample_with_noise(noise.clamp_min(f32::MIN_POSITIVE))
            }
            Self::Beta(d) => {
                let noise: Tensor<2> = d.noise(&[n]);
                let below_one = 1.0 - f32::EPSILON / 2.0;
                d.rsample_with_noise(noise.clamp(f32::MIN_POSITIVE, below_one))
            }
        }
    }
}

/// A mean-field surrogate posterior over a model's latents, one factor per latent from a
/// chosen family (TFP's `build_factored_surrogate_posterior`, Pyro's `AutoNormal` with
/// constrained sites):
///
/// ```text
/// q(θ) = Πₗ Πᵢ qₗ(θₗᵢ; φₗᵢ),   qₗ ∈ {Normal, LogNormal, Gamma, Beta}
/// ```
///
/// every element `i` of latent `l` with its own parameters `φₗᵢ`, held as unconstrained raw
/// values (see [`Factor`] for the maps and the initial values). Every latent starts with a
/// [`Factor::Normal`] factor; [`Self::with_factor`] chooses another, typically a family whose
/// support is the latent's (a Gamma or LogNormal factor for a rate, a Beta factor for a
/// probability), so that no draw leaves the model's support. Fit it with [`fit_surrogate`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::inference::{fit_surrogate, AdamConfig, Factor, LogJoint, MeanField, Params};
/// use burn_probability::{Distribution, Gamma, Poisson};
///
/// let device = Device::flex().autodiff();
/// device.seed(3);
/// // rate ~ Gamma(2, 1), counts ~ Poisson(rate): the posterior is Gamma(2 + Σx, 1 + n).
/// let x = Tensor::<1>::from_floats([3.0, 5.0, 4.0, 6.0], &device);
/// let model = LogJoint::new(vec![("rate", vec![1])], move |p: &Params| {
///     let rate: Tensor<1> = p.get("rate");
///     let prior = Gamma::new(rate.ones_like() * 2.0, 1.0).log_prob(rate.clone());
///     let lik = Poisson::new(rate.expand([4])).log_prob(x.clone()).sum();
///     prior + lik
/// });
/// let q = MeanField::new(&model, &device).with_factor("rate", Factor::Gamma);
/// // A large learning rate to get there, a small one to settle (the iterate is stochastic).
/// let (q, elbo) = fit_surrogate(&model, q, AdamConfig::new(0.1), 200, 4);
/// let (q, _) = fit_surrogate(&model, q, AdamConfig::new(0.01), 300, 4);
/// let mean: Vec<f32> = q.mean().get::<1>("rate").into_data().iter::<f32>().collect();
/// let sd: Vec<f32> = q.stddev().get::<1>("rate").into_data().iter::<f32>().collect();
/// // The exact posterior Gamma(20, 5): mean 4, sd 0.894.
/// assert!((mean[0] - 4.0).abs() < 0.2 && (sd[0] - 0.894).abs() < 0.15, "{mean:?} {sd:?}");
/// assert!(elbo.last().unwrap() > &elbo[0]);
/// ```
#[derive(Clone, Debug)]
pub struct MeanField {
    latents: Vec<(String, Vec<usize>)>,
    factors: Vec<Factor>,
    /// The raw parameters `(r₀, r₁)` of each latent, flattened.
    raws: Vec<(Tensor<1>, Tensor<1>)>,
}

impl MeanField {
    /// A surrogate over `model`'s latents, each with a [`Factor::Normal`] factor at its initial
    /// value (`N(0, 0.1²)` for every element), on `device`.
    pub fn new<M: Model>(model: &M, device: &Device) -> Self {
        let latents = model.latents();
        let factors = vec![Factor::Normal; latents.len()];
        let raws = latents
            .iter()
            .map(|(_, s)| initial_raws(Factor::Normal, s.iter().product(), device))
            .collect();
        Self {
            latents,
            factors,
            raws,
        }
    }

    /// Gives latent `name` a factor of family `factor`, at that family's initial value.
    ///
    /// # Panics
    /// If the surrogate has no latent `name`; the message is [`Self::try_with_factor`]'s error.
    #[track_caller]
    pub fn with_factor(self, name: &str, factor: Factor) -> Self {
        self.try_with_factor(name, factor)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::with_factor`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the unknown latent and the surrogate's latents.
    pub fn try_with_factor(mut self, name: &str, factor: Factor) -> Result<Self> {
        let i = self.index("MeanField::with_factor", name)?;
        let (r0, _) = &self.raws[i];
        self.raws[i] = initial_raws(factor, r0.dims()[0], &r0.device());
        self.factors[i] = factor;
        Ok(self)
    }

    /// The latents (names and shapes), in the model's order.
    pub fn latents(&self) -> &[(String, Vec<usize>)] {
        &self.latents
    }

    /// The family of latent `name`'s factor, if there is such a latent.
    pub fn factor(&self, name: &str) -> Option<Factor> {
        self.latents
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| self.factors[i])
    }

    /// Latent `name`'s factor as a distribution over its flattened elements: its parameters
    /// (the fitted posterior, after [`fit_surrogate`]), moments, density and draws.
    ///
    /// # Panics
    /// If the surrogate has no latent `name`; the message is [`Self::try_distribution`]'s
    /// error.
    #[track_caller]
    pub fn distribution(&self, name: &str) -> FactorDistribution {
        self.try_distribution(name)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::distribution`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the unknown latent and the surrogate's latents.
    pub fn try_distribution(&self, name: &str) -> Result<FactorDistribution> {
        let i = self.index("MeanField::distribution", name)?;
        Ok(self.factor_at(i, &self.raws[i]))
    }

    /// The posterior means `E_q[θ]`, each latent with its shape (see
    /// [`FactorDistribution::mean`] for each family's formula).
    pub fn mean(&self) -> Params {
        self.collect(|d| d.mean())
    }

    /// The posterior standard deviations `√Var_q[θ]`, each latent with its shape.
    pub fn stddev(&self) -> Params {
        self.collect(|d| d.stddev())
    }

    /// The posterior variances `Var_q[θ]`, each latent with its shape.
    pub fn variance(&self) -> Params {
        self.collect(|d| d.variance())
    }

    /// One draw `θ ~ q` of every latent, each with its shape (no gradient).
    pub fn sample(&self) -> Params {
        self.collect(|d| d.rsample()).detach()
    }

    fn collect(&self, f: impl Fn(&FactorDistribution) -> Tensor<1>) -> Params {
        let values: Vec<Tensor<1>> = (0..self.latents.len())
            .map(|i| f(&self.factor_at(i, &self.raws[i])))
            .collect();
        pack(&self.latents, &values)
    }

    fn factor_at(&self, i: usize, (r0, r1): &(Tensor<1>, Tensor<1>)) -> FactorDistribution {
        self.factors[i].build(r0.clone(), r1.clone())
    }

    fn index(&self, context: &'static str, name: &str) -> Result<usize> {
        self.latents
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| Error::InvalidArgument {
                context,
                argument: "name",
                expected: format!("one of the latents {:?}", self.names()),
                actual: format!("`{name}`"),
            })
    }

    fn names(&self) -> Vec<&str> {
        self.latents.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// `n` copies of `factor`'s initial raw parameters.
fn initial_raws(factor: Factor, n: usize, device: &Device) -> (Tensor<1>, Tensor<1>) {
    let (r0, r1) = factor.initial_raw();
    (
        Tensor::<1>::ones([n], device) * r0,
        Tensor::<1>::ones([n], device) * r1,
    )
}

/// Named values from flat tensors in the order of `latents`.
fn pack(latents: &[(String, Vec<usize>)], values: &[Tensor<1>]) -> Params {
    let mut p = Params::new();
    for ((name, shape), v) in latents.iter().zip(values) {
        p.entries.insert(name.clone(), (v.clone(), shape.clone()));
    }
    p
}

/// Fits a [`MeanField`] surrogate to `model` by maximizing the evidence lower bound
///
/// ```text
/// ELBO(φ) = E_q[ln p(θ, x)] + H[q] ≈ (1/S) Σₛ ln p(θ⁽ˢ⁾, x) + Σₗ Σᵢ H[qₗ(·; φₗᵢ)]
/// ```
///
/// with `S = samples_per_step` reparameterized draws `θ⁽ˢ⁾ ~ q` per step
/// ([`FactorDistribution::rsample`]: the Gamma and Beta factors train through their implicit
/// reparameterization gradients) and the closed-form entropies of the factors, by Adam on the
/// raw parameters from those of `init`. Returns the fitted surrogate and the ELBO estimate of
/// each step (noisy: average a window to read it).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::inference::{fit_surrogate, AdamConfig, Factor, LogJoint, MeanField, Params};
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
/// let (q, _) = fit_surrogate(&model, q, AdamConfig::new(0.05), 300, 4);
/// let (q, _) = fit_surrogate(&model, q, AdamConfig::new(0.01), 300, 4);
/// let mean = q.mean().get::<1>("theta").into_scalar::<f32>();
/// assert!((mean - 2.0 / 3.0).abs() < 0.03, "{mean}");
/// ```
///
/// # Panics
/// If `init` has no latents, is not over `model`'s latents, or `samples_per_step` is 0; the
/// message is [`try_fit_surrogate`]'s error.
#[track_caller]
pub fn fit_surrogate<M: Model>(
    model: &M,
    init: MeanField,
    config: AdamConfig,
    steps: usize,
    samples_per_step: usize,
) -> (MeanField, Vec<f64>) {
    try_fit_surrogate(model, init, config, steps, samples_per_step)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// [`fit_surrogate`] returning an [`Error`] instead of panicking.
///
/// # Errors
/// [`Error::InvalidArgument`] if `init` has no latents, if its latents (names and shapes) are
/// not `model`'s, or if `samples_per_step` is 0.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::inference::{try_fit_surrogate, AdamConfig, LogJoint, MeanField, Params};
///
/// let device = Device::flex().autodiff();
/// let model = LogJoint::new(vec![("x", vec![1])], |p: &Params| -p.get::<1>("x").square());
/// let q = MeanField::new(&model, &device);
/// let err = try_fit_surrogate(&model, q, AdamConfig::new(0.1), 10, 0).unwrap_err();
/// assert_eq!(err.to_string(), "fit_surrogate: `samples_per_step` must be at least 1, got 0");
/// ```
pub fn try_fit_surrogate<M: Model>(
    model: &M,
    init: MeanField,
    config: AdamConfig,
    steps: usize,
    samples_per_step: usize,
) -> Result<(MeanField, Vec<f64>)> {
    if init.latents.is_empty() {
        return Err(Error::InvalidArgument {
            context: "fit_surrogate",
            argument: "init",
            expected: "a surrogate over at least one latent".into(),
            actual: "no latents".into(),
        });
    }
    if init.latents != model.latents() {
        return Err(Error::InvalidArgument {
            context: "fit_surrogate",
            argument: "init",
            expected: format!("a surrogate over the model's latents {:?}", model.latents()),
            actual: format!("one over {:?}", init.latents),
        });
    }
    if samples_per_step == 0 {
        return Err(Error::InvalidArgument {
            context: "fit_surrogate",
            argument: "samples_per_step",
            expected: "at least 1".into(),
            actual: "0".into(),
        });
    }
    let values: Vec<Tensor<1>> = init
        .raws
        .iter()
        .flat_map(|(r0, r1)| [r0.clone(), r1.clone()])
        .collect();
    let (values, trace) = minimize(values, config, steps, |vs| {
        let factors: Vec<FactorDistribution> = vs
            .chunks(2)
            .zip(&init.factors)
            .map(|(r, f)| f.build(r[0].clone(), r[1].clone()))
            .collect();
        let entropy = factors
            .iter()
            .map(|d| d.entropy().sum())
            .reduce(|a, b| a + b)
            .expect("at least one latent");
        // All the draws of a latent at once (one pass through the implicit gradients), then
        // the model once per draw.
        let draws: Vec<Tensor<2>> = factors
            .iter()
            .map(|d| d.rsample_n(samples_per_step))
            .collect();
        let mut energy: Option<Tensor<1>> = None;
        for s in 0..samples_per_step {
            let draw: Vec<Tensor<1>> = draws
                .iter()
                .map(|d| {
                    let [_, n] = d.dims();
                    d.clone().narrow(0, s, 1).reshape([n])
                })
                .collect();
            let lj = model.log_joint(&pack(&init.latents, &draw));
            energy = Some(match energy {
                None => lj,
                Some(e) => e + lj,
            });
        }
        let elbo = energy.expect("at least one sample") / samples_per_step as f64 + entropy;
        -elbo
    });
    let trace = trace.into_iter().map(|l| -l).collect();
    let raws = values
        .chunks(2)
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    Ok((
        MeanField {
            latents: init.latents,
            factors: init.factors,
            raws,
        },
        trace,
    ))
}
