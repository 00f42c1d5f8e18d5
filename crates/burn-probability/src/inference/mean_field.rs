//! Mean-field surrogate posteriors as burn [`Module`]s: [`MeanFieldNormal`] and [`MeanField`]
//! with its per-latent [`Factor`] families.

use burn::module::{Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Distribution as Init, Tensor};

use super::{Params, Surrogate, pack};
use crate::distribution::{Distribution, Entropy, Moments, Rsample};
use crate::error::{Error, Result};
use crate::math::softplus;
use crate::{Beta, Gamma, LogNormal, Normal};

/// A mean-field Normal surrogate posterior over a model's latents:
/// `q(θ) = Πᵢ N(θᵢ; μᵢ, σᵢ²)` with `σᵢ = softplus(ρᵢ)`, `μ` and `ρ` unconstrained.
///
/// A burn [`Module`]: `μ` and `ρ` are [`Param`]s (one pair of flat tensors per latent, in the
/// model's order), so any `burn::optim` optimizer trains it and burn's records save it. Its
/// entropy is `H[q] = Σᵢ (ln σᵢ + ½ ln 2πe)`. Fit it with [`fit_surrogate`](super::fit_surrogate).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::inference::{LogJoint, MeanFieldNormal, Params, Surrogate};
///
/// let device = Device::flex().autodiff();
/// let model = LogJoint::new(vec![("w", vec![2, 3])], |p: &Params| p.get::<2>("w").sum());
/// let q = MeanFieldNormal::new(&model, 1.0, -4.0, &device);
/// assert_eq!(q.latents(), vec![("w".to_string(), vec![2, 3])]);
/// let mean: Tensor<2> = q.mean().get("w");
/// assert_eq!(mean.dims(), [2, 3]);
/// ```
#[derive(Module, Debug)]
pub struct MeanFieldNormal {
    locs: Vec<Param<Tensor<1>>>,
    raw_scales: Vec<Param<Tensor<1>>>,
    #[module(skip)]
    latents: Vec<(String, Vec<usize>)>,
}

impl MeanFieldNormal {
    /// Every `μ` set to `loc`, every `ρ` to `raw_scale` (the tutorial uses 1 and −4:
    /// `σ = softplus(−4) ≈ 0.018`), on `device` (an autodiff device to train it).
    pub fn new<M: super::Model>(model: &M, loc: f64, raw_scale: f64, device: &Device) -> Self {
        let latents = model.latents();
        let size = |s: &Vec<usize>| s.iter().product::<usize>();
        let filled = |value: f64| {
            latents
                .iter()
                .map(|(_, s)| Param::from_tensor(Tensor::<1>::full([size(s)], value, device)))
                .collect()
        };
        Self {
            locs: filled(loc),
            raw_scales: filled(raw_scale),
            latents,
        }
    }

    /// The posterior means `μ`.
    pub fn mean(&self) -> Params {
        let locs: Vec<Tensor<1>> = self.locs.iter().map(Param::val).collect();
        pack(&self.latents, &locs)
    }

    /// The posterior standard deviations `softplus(ρ)`.
    pub fn stddev(&self) -> Params {
        pack(&self.latents, &self.scales())
    }

    /// One draw of every latent (no gradient).
    pub fn sample(&self) -> Params {
        self.rsample_n(1).remove(0).detach()
    }

    fn scales(&self) -> Vec<Tensor<1>> {
        self.raw_scales.iter().map(|r| softplus(r.val())).collect()
    }
}

impl Surrogate for MeanFieldNormal {
    fn latents(&self) -> Vec<(String, Vec<usize>)> {
        self.latents.clone()
    }

    fn rsample_n(&self, n: usize) -> Vec<Params> {
        let scales = self.scales();
        (0..n)
            .map(|_| {
                let draws: Vec<Tensor<1>> = self
                    .locs
                    .iter()
                    .zip(&scales)
                    .map(|(m, s)| {
                        let m = m.val();
                        let eps = m.random_like(Init::Normal(0.0, 1.0));
                        m + s.clone() * eps
                    })
                    .collect();
                pack(&self.latents, &draws)
            })
            .collect()
    }

    fn entropy(&self) -> Params {
        let h: Vec<Tensor<1>> = self
            .scales()
            .into_iter()
            .map(|s| s.log() + 0.5 * (1.0 + crate::math::LN_2PI))
            .collect();
        pack(&self.latents, &h)
    }
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
/// probability), so that no draw leaves the model's support.
///
/// A burn [`Module`]: the raw parameters are [`Param`]s, so any `burn::optim` optimizer and
/// learning-rate scheduler train it and burn's records save it. Fit it with
/// [`fit_surrogate`](super::fit_surrogate); the Gamma and Beta factors train through their
/// implicit reparameterization gradients.
///
/// # Example
/// ```
/// use burn::optim::AdamConfig;
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::inference::{fit_surrogate, Factor, LogJoint, MeanField, Params};
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
/// let mut adam = AdamConfig::new().with_epsilon(1e-8).init();
/// // A large learning rate to get there, a small one to settle (the iterate is stochastic).
/// let (q, elbo) = fit_surrogate(&model, q, &mut adam, 0.1, 200, 4);
/// let (q, _) = fit_surrogate(&model, q, &mut adam, 0.01, 300, 4);
/// let mean: Vec<f32> = q.mean().get::<1>("rate").into_data().iter::<f32>().collect();
/// let sd: Vec<f32> = q.stddev().get::<1>("rate").into_data().iter::<f32>().collect();
/// // The exact posterior Gamma(20, 5): mean 4, sd 0.894.
/// assert!((mean[0] - 4.0).abs() < 0.2 && (sd[0] - 0.894).abs() < 0.15, "{mean:?} {sd:?}");
/// assert!(elbo.last().unwrap() > &elbo[0]);
/// ```
#[derive(Module, Debug)]
pub struct MeanField {
    /// The raw parameters `r₀` of each latent, flattened.
    raw0: Vec<Param<Tensor<1>>>,
    /// The raw parameters `r₁` of each latent, flattened.
    raw1: Vec<Param<Tensor<1>>>,
    #[module(skip)]
    latents: Vec<(String, Vec<usize>)>,
    #[module(skip)]
    factors: Vec<Factor>,
}

impl MeanField {
    /// A surrogate over `model`'s latents, each with a [`Factor::Normal`] factor at its initial
    /// value (`N(0, 0.1²)` for every element), on `device` (an autodiff device to train it).
    pub fn new<M: super::Model>(model: &M, device: &Device) -> Self {
        let latents = model.latents();
        let factors = vec![Factor::Normal; latents.len()];
        let (raw0, raw1) = latents
            .iter()
            .map(|(_, s)| initial_raws(Factor::Normal, s.iter().product(), device))
            .unzip();
        Self {
            raw0,
            raw1,
            latents,
            factors,
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
        let r0 = self.raw0[i].val();
        let (r0, r1) = initial_raws(factor, r0.dims()[0], &r0.device());
        self.raw0[i] = r0;
        self.raw1[i] = r1;
        self.factors[i] = factor;
        Ok(self)
    }

    /// The family of latent `name`'s factor, if there is such a latent.
    pub fn factor(&self, name: &str) -> Option<Factor> {
        self.latents
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| self.factors[i])
    }

    /// Latent `name`'s factor as a distribution over its flattened elements: its parameters
    /// (the fitted posterior, after [`fit_surrogate`](super::fit_surrogate)), moments, density
    /// and draws.
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
        Ok(self.factor_at(i))
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
            .map(|i| f(&self.factor_at(i)))
            .collect();
        pack(&self.latents, &values)
    }

    fn factor_at(&self, i: usize) -> FactorDistribution {
        self.factors[i].build(self.raw0[i].val(), self.raw1[i].val())
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

impl Surrogate for MeanField {
    fn latents(&self) -> Vec<(String, Vec<usize>)> {
        self.latents.clone()
    }

    /// All the draws of a latent at once (one pass through the implicit gradients of a Gamma
    /// or Beta factor), then split into `n` draws.
    fn rsample_n(&self, n: usize) -> Vec<Params> {
        let draws: Vec<Tensor<2>> = (0..self.latents.len())
            .map(|i| self.factor_at(i).rsample_n(n))
            .collect();
        (0..n)
            .map(|s| {
                let draw: Vec<Tensor<1>> = draws
                    .iter()
                    .map(|d| {
                        let [_, size] = d.dims();
                        d.clone().narrow(0, s, 1).reshape([size])
                    })
                    .collect();
                pack(&self.latents, &draw)
            })
            .collect()
    }

    fn entropy(&self) -> Params {
        self.collect(|d| d.entropy())
    }
}

/// `n` copies of `factor`'s initial raw parameters, as trainable parameters.
fn initial_raws(factor: Factor, n: usize, device: &Device) -> (Param<Tensor<1>>, Param<Tensor<1>>) {
    let (r0, r1) = factor.initial_raw();
    (
        Param::from_tensor(Tensor::<1>::full([n], r0, device)),
        Param::from_tensor(Tensor::<1>::full([n], r1, device)),
    )
}
