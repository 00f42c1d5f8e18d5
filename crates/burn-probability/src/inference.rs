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

use burn::tensor::{Device, Distribution as Init, Tensor};

use crate::error::{Error, Result};
use crate::math::softplus;

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
