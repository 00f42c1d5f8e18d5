//! The four VAE architectures of the tutorials.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{ModuleOptimizer, RmsPropConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};
use burn_flex_kernels::nn::{Activation, FastConv, FastLinear};
use burn_flex_kernels::optim::FusedAdam;
use burn_probability::bijector::Bijector;
use burn_probability::flows::{Conditioned, InverseAutoregressiveFlow, MadeConfig};
use burn_probability::math::softplus;
use burn_probability::{
    Bernoulli, Categorical, ContinuousBernoulli, ExpRelaxedOneHotCategorical, Independent,
    Logistic, MixtureSameFamily, MultivariateNormalDiag, OneHotCategorical,
    OneHotCategoricalStraightThrough, RelaxedOneHotCategorical, TransformedDistribution,
    kl_divergence,
};

/// The pixel likelihood `p(x | z)`: independent Bernoullis over the 784 pixels.
pub type PixelLikelihood = Independent<Bernoulli<2>, 1>;

/// The grey-level pixel likelihood: independent continuous Bernoullis over the 784 pixels
/// (Loaiza-Ganem and Cunningham 2019), a normalized density on `[0, 1]^784`.
pub type GreyPixelLikelihood = Independent<ContinuousBernoulli<2>, 1>;

fn pixels(logits: Tensor<2>) -> PixelLikelihood {
    Independent::new(Bernoulli::new(logits), 1)
}

/// The bound on the continuous Bernoulli's logits, `ln((1 − ε)/ε)` with `ε = 2⁻²³`: the
/// logits that torch's `ContinuousBernoulli(probs=σ(ℓ))` reaches after its `clamp_probs`, and
/// about where the paper's float32 `λ = σ(ℓ)` saturates.
///
/// The density of an exact 0 or 1 grows without bound as the logit runs away from it
/// (`ln p(0 | ℓ) ≈ ln|ℓ|` for `ℓ → −∞`), and MNIST's grey levels are mostly exact zeros. With
/// unbounded logits the decoder's logits drift outwards (RMSprop and Adam keep the step size)
/// until a rare bright pixel under a far negative logit costs `|ℓ|` nats and training falls
/// back (docs/mnist-vae.md). Clamping gives those logits no gradient beyond the bound.
pub const CB_LOGIT_BOUND: f32 = 15.942_385;

fn grey_pixels(logits: Tensor<2>) -> GreyPixelLikelihood {
    Independent::new(
        ContinuousBernoulli::<2>::new(logits.clamp(-CB_LOGIT_BOUND, CB_LOGIT_BOUND)),
        1,
    )
}

/// Which distribution the decoder's logits `ℓ` parameterize. Serialized as the command line
/// spells it (`"continuous-bernoulli"`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum LikelihoodKind {
    /// Independent Bernoullis, `x ln σ(ℓ) + (1 − x) ln σ(−ℓ)`: a mass function on binarized
    /// images; on grey levels the usual cross-entropy, which is not a normalized density.
    #[default]
    Bernoulli,
    /// Independent continuous Bernoullis: the same term plus the normalizer
    /// `ln C(ℓ)`, a density on grey levels in `[0, 1]` (needs `--binarization none`).
    ContinuousBernoulli,
}

impl LikelihoodKind {
    /// The name as the command line and the run's settings spell it.
    pub fn name(self) -> &'static str {
        match self {
            LikelihoodKind::Bernoulli => "bernoulli",
            LikelihoodKind::ContinuousBernoulli => "continuous-bernoulli",
        }
    }
}

/// A diagonal Gaussian from an encoder output `[B, 2L]`: loc is the first half, and `scale` maps
/// the second half to the scale.
fn gaussian_head(
    h: Tensor<2>,
    latent: usize,
    scale: impl FnOnce(Tensor<2>) -> Tensor<2>,
) -> MultivariateNormalDiag<2> {
    let b = h.dims()[0];
    let loc = h.clone().slice([0..b, 0..latent]);
    let scale = scale(h.slice([0..b, latent..2 * latent]));
    MultivariateNormalDiag::new(loc, scale)
}

/// `scale = softplus(raw) + 1e-3` (the TFP/Edward tutorial's parameterization).
fn gaussian(h: Tensor<2>, latent: usize) -> MultivariateNormalDiag<2> {
    gaussian_head(h, latent, |raw| softplus(raw) + 1e-3)
}

/// Splits `[B, 2L]` into loc and the log-variance, `scale = exp(log_var / 2)` (the Keras
/// tutorial's parameterization), with the log-variance clamped to `[−30, 20]` (as diffusers'
/// `DiagonalGaussianDistribution`). RMSprop's first steps move every weight by about
/// `3·lr` in the direction of its gradient; through the 12,544-input dense layer that can
/// throw the encoder's outputs into the hundreds for a few batches, where `exp(log_var / 2)`
/// overflows to infinity and the loss to NaN. Clamped, such a run keeps finite losses and
/// trains on; runs that never leave the range are unchanged. The example's learning-rate
/// warm-up (`--warmup-steps`) keeps the first steps small; the clamp covers runs without it.
fn gaussian_log_var(h: Tensor<2>, latent: usize) -> MultivariateNormalDiag<2> {
    gaussian_head(h, latent, |log_var| {
        log_var.clamp(-30.0, 20.0).mul_scalar(0.5).exp()
    })
}

/// Keras' default initialization: Glorot-uniform weights, zero biases.
fn glorot() -> Initializer {
    Initializer::XavierUniform { gain: 1.0 }
}

fn zero_bias(bias: Option<Param<Tensor<1>>>) -> Option<Param<Tensor<1>>> {
    bias.map(|b| Param::from_tensor(b.val().zeros_like()))
}

/// Keras' `Dense(d_out)` on `d_in` inputs: Glorot-uniform weights, zero bias.
pub fn keras_linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    let mut layer = LinearConfig::new(d_in, d_out)
        .with_initializer(glorot())
        .init(device);
    layer.bias = zero_bias(layer.bias);
    layer
}

/// Keras' `Conv2D` initialization for `config`: Glorot-uniform kernel, zero bias.
pub fn keras_conv(config: Conv2dConfig, device: &Device) -> Conv2d {
    let mut layer = config.with_initializer(glorot()).init(device);
    layer.bias = zero_bias(layer.bias);
    layer
}

/// Keras' `Conv2DTranspose` initialization for `config`: Glorot-uniform kernel (bound
/// `√(6 / (k_h k_w (c_in + c_out)))`, given by hand since burn's transposed convolution gives
/// Xavier no fan-out), zero bias.
pub fn keras_conv_transpose(config: ConvTranspose2dConfig, device: &Device) -> ConvTranspose2d {
    let [c_in, c_out] = config.channels;
    let [kh, kw] = config.kernel_size;
    let bound = (6.0 / ((kh * kw * (c_in + c_out)) as f64)).sqrt();
    let mut layer = config
        .with_initializer(Initializer::Uniform {
            min: -bound,
            max: bound,
        })
        .init(device);
    layer.bias = zero_bias(layer.bias);
    layer
}

/// The convolutional VAE of the Keras/TFP tutorial (latent 2 by default), with Keras'
/// initialization and log-variance head.
///
/// The layers are called through `burn_flex_kernels::nn` (`forward_fast_relu`,
/// `forward_fast_then`): on `flex` with the kernels on, one kernel per layer and activation; on
/// any other device, or after `burn_flex_kernels::set_fused_kernels(false)` (the example's
/// `--no-fused`), burn's own layers followed by the activation. The model code does not choose.
#[derive(Module, Debug)]
pub struct ConvVae {
    c1: Conv2d,
    c2: Conv2d,
    c3: Conv2d,
    c4: Conv2d,
    fc: Linear,
    head: Linear,
    d_fc: Linear,
    d_up: ConvTranspose2d,
    d_out: Conv2d,
    latent: usize,
}

impl ConvVae {
    pub fn new(latent: usize, device: &Device) -> Self {
        let same = || PaddingConfig2d::Explicit(1, 1, 1, 1);
        let d_up = keras_conv_transpose(
            ConvTranspose2dConfig::new([64, 32], [3, 3])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .with_padding_out([1, 1]),
            device,
        );
        Self {
            c1: keras_conv(
                Conv2dConfig::new([1, 32], [3, 3]).with_padding(same()),
                device,
            ),
            // TensorFlow's "same" for stride 2 pads only bottom and right.
            c2: keras_conv(
                Conv2dConfig::new([32, 64], [3, 3])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(0, 0, 1, 1)),
                device,
            ),
            c3: keras_conv(
                Conv2dConfig::new([64, 64], [3, 3]).with_padding(same()),
                device,
            ),
            c4: keras_conv(
                Conv2dConfig::new([64, 64], [3, 3]).with_padding(same()),
                device,
            ),
            fc: keras_linear(14 * 14 * 64, 32, device),
            head: keras_linear(32, 2 * latent, device),
            d_fc: keras_linear(latent, 14 * 14 * 64, device),
            d_up,
            d_out: keras_conv(
                Conv2dConfig::new([32, 1], [3, 3]).with_padding(same()),
                device,
            ),
            latent,
        }
    }

    pub fn posterior(&self, x: Tensor<2>) -> MultivariateNormalDiag<2> {
        let b = x.dims()[0];
        let h = x.reshape([b, 1, 28, 28]);
        let h = self.c1.forward_fast_relu(h);
        let h = self.c2.forward_fast_relu(h);
        let h = self.c3.forward_fast_relu(h);
        let h = self.c4.forward_fast_relu(h);
        let h = self
            .fc
            .forward_fast_then(h.reshape([b, 14 * 14 * 64]), Activation::Relu);
        gaussian_log_var(self.head.forward_fast(h), self.latent)
    }

    pub fn logits(&self, z: Tensor<2>) -> Tensor<2> {
        let n = z.dims()[0];
        let h = self.d_fc.forward_fast_then(z, Activation::Relu);
        let h = self.d_up.forward_fast_relu(h.reshape([n, 64, 14, 14]));
        self.d_out.forward_fast(h).reshape([n, 784])
    }
}

/// A multilayer perceptron with a chosen activation: ELU (`tanh` and `relu` false), tanh or
/// ReLU.
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    tanh: bool,
    relu: bool,
}

impl Mlp {
    pub fn new(sizes: &[usize], tanh: bool, device: &Device) -> Self {
        Self {
            layers: sizes
                .windows(2)
                .map(|w| LinearConfig::new(w[0], w[1]).init(device))
                .collect(),
            tanh,
            relu: false,
        }
    }

    /// The same with ReLU hidden activations.
    pub fn relu(sizes: &[usize], device: &Device) -> Self {
        Self {
            relu: true,
            ..Self::new(sizes, false, device)
        }
    }

    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let act = match (i < last, self.tanh, self.relu) {
                (false, _, _) => Activation::Identity,
                (true, _, true) => Activation::Relu,
                (true, true, false) => Activation::Tanh,
                (true, false, false) => Activation::Elu(1.0),
            };
            // The activation runs inside the layer (burn_flex_kernels::nn::linear_then).
            x = layer.forward_fast_then(x, act);
        }
        x
    }
}

/// The size of the context `h` that the encoder of an IAF posterior outputs beside the
/// diagonal Gaussian's parameters, read by every flow step's network (Kingma et al. 2016).
pub const FLOW_CONTEXT: usize = 64;

/// The widths of the two hidden layers of each IAF step's MADE.
pub const FLOW_HIDDEN: usize = 200;

/// A learned mixture-of-Gaussians prior `p(z) = Σₘ wₘ N(z; μₘ, diag σₘ²)` (batch shape `[]`),
/// trained with the VAE: `w = softmax(logits)`, `σ = softplus(raw) + 1e-3`.
#[derive(Module, Debug)]
pub struct MixturePrior {
    logits: Param<Tensor<1>>,
    loc: Param<Tensor<2>>,
    raw_scale: Param<Tensor<2>>,
}

impl MixturePrior {
    /// `components` equally weighted unit Gaussians with means drawn from `N(0, 0.1² I)`:
    /// close to `N(0, I)`, so that the latents the decoder does not use (their posterior
    /// equal to the prior) cost little KL, and distinct enough for the components to separate.
    pub fn new(components: usize, latent: usize, device: &Device) -> Self {
        // softplus(ln(e − 1)) = 1.
        let unit = (std::f64::consts::E - 1.0).ln();
        Self {
            logits: Param::from_tensor(Tensor::zeros([components], device)),
            loc: Param::from_tensor(Tensor::random(
                [components, latent],
                burn::tensor::Distribution::Normal(0.0, 0.1),
                device,
            )),
            raw_scale: Param::from_tensor(Tensor::full([components, latent], unit, device)),
        }
    }

    /// The mixture, over latents `[L]`.
    pub fn distribution(&self) -> MixtureSameFamily<MultivariateNormalDiag<2>, 1> {
        MixtureSameFamily::new(
            Categorical::new(self.logits.val()),
            MultivariateNormalDiag::new(self.loc.val(), softplus(self.raw_scale.val()) + 1e-3),
        )
    }
}

/// Gaussian-latent MLP VAE: the TFP/Edward tutorial's (ELU, 200-200) or Burda et al.'s
/// (tanh, 200-200, latent 50). Optionally the posterior is followed by inverse autoregressive
/// flows conditioned on an encoder context (Kingma et al. 2016), and the standard-normal prior
/// is replaced by a learned mixture of Gaussians.
#[derive(Module, Debug)]
pub struct MlpVae {
    encoder: Mlp,
    decoder: Mlp,
    latent: usize,
    /// The IAF steps after the diagonal Gaussian (none: the diagonal posterior).
    flows: Vec<InverseAutoregressiveFlow>,
    /// The learned prior (none: `N(0, I)`).
    prior: Option<MixturePrior>,
}

impl MlpVae {
    pub fn new(latent: usize, tanh: bool, device: &Device) -> Self {
        Self::with_options(latent, tanh, 0, 0, device)
    }

    /// The VAE with `flow_steps` IAF steps after its diagonal posterior (alternating the
    /// autoregressive order) and, if `components > 0`, a learned mixture prior of that many
    /// components.
    pub fn with_options(
        latent: usize,
        tanh: bool,
        flow_steps: usize,
        components: usize,
        device: &Device,
    ) -> Self {
        let context = if flow_steps > 0 { FLOW_CONTEXT } else { 0 };
        Self {
            encoder: Mlp::new(&[784, 200, 200, 2 * latent + context], tanh, device),
            decoder: Mlp::new(&[latent, 200, 200, 784], tanh, device),
            latent,
            flows: (0..flow_steps)
                .map(|i| {
                    let made = MadeConfig::new(latent, vec![FLOW_HIDDEN, FLOW_HIDDEN])
                        .with_context_size(FLOW_CONTEXT)
                        .with_reversed(i % 2 == 1)
                        .init(device);
                    InverseAutoregressiveFlow::new(made)
                })
                .collect(),
            prior: (components > 0).then(|| MixturePrior::new(components, latent, device)),
        }
    }

    /// The diagonal Gaussian `q₀(z | x)` (the whole posterior without flows).
    pub fn posterior(&self, x: Tensor<2>) -> MultivariateNormalDiag<2> {
        gaussian(self.encoder.forward(x), self.latent)
    }

    /// The diagonal Gaussian and the flows conditioned on the encoder's context.
    fn flow_posterior(
        &self,
        x: Tensor<2>,
    ) -> (
        MultivariateNormalDiag<2>,
        Vec<Conditioned<InverseAutoregressiveFlow>>,
    ) {
        let h = self.encoder.forward(x);
        let [b, width] = h.dims();
        let context = h.clone().slice([0..b, 2 * self.latent..width]);
        let flows = self
            .flows
            .iter()
            .map(|f| f.conditioned(context.clone()))
            .collect();
        (gaussian(h, self.latent), flows)
    }

    pub fn logits(&self, z: Tensor<2>) -> Tensor<2> {
        self.decoder.forward(z)
    }

    /// Whether the model is the plain one (diagonal posterior, standard prior).
    fn plain(&self) -> bool {
        self.flows.is_empty() && self.prior.is_none()
    }

    /// The number of IAF steps.
    pub fn flow_steps(&self) -> usize {
        self.flows.len()
    }

    /// The bound of the model with flows or a mixture prior (Monte Carlo KL only).
    fn bound_in<L: Likelihood<2>>(
        &self,
        x: Tensor<2>,
        objective: ObjectiveKind,
        k: usize,
        lik: impl Fn(Tensor<2>) -> L + Copy,
    ) -> Bound {
        let device = x.device();
        let pixels = |z: Tensor<2>| lik(self.logits(z));
        let standard = MultivariateNormalDiag::<1>::standard([self.latent], &device);
        let mixture = self.prior.as_ref().map(MixturePrior::distribution);
        if self.flows.is_empty() {
            let q = self.posterior(x.clone());
            return match &mixture {
                Some(p) => latent_bound(objective, k, &q, p, pixels, x),
                None => latent_bound(objective, k, &q, &standard, pixels, x),
            };
        }
        let (base, flows) = self.flow_posterior(x.clone());
        let q = TransformedDistribution::new(base, flows);
        match &mixture {
            Some(p) => latent_bound(objective, k, &q, p, pixels, x),
            None => latent_bound(objective, k, &q, &standard, pixels, x),
        }
    }

    /// The posterior's location pushed through the flows (the diagonal Gaussian's mean
    /// without them).
    fn posterior_center(&self, x: Tensor<2>) -> Tensor<2> {
        if self.flows.is_empty() {
            return self.posterior(x).loc().clone();
        }
        let (base, flows) = self.flow_posterior(x);
        flows.forward(base.loc().clone())
    }
}

/// The discrete-latent VAE: BinConcrete latents in logit space, q(z | x) =
/// Logistic(logits / t, 1 / t), decoder on y = sigmoid(z).
#[derive(Module, Debug)]
pub struct BinaryVae {
    encoder: Mlp,
    decoder: Mlp,
    latent: usize,
    temperature: f64,
}

impl BinaryVae {
    pub fn new(latent: usize, temperature: f64, device: &Device) -> Self {
        Self {
            encoder: Mlp::new(&[784, 200, 200, latent], false, device),
            decoder: Mlp::new(&[latent, 200, 200, 784], false, device),
            latent,
            temperature,
        }
    }
    /// `q(z | x) = Independent(Logistic(loc = logits / t, scale = 1 / t), 1)`: the tutorial's
    /// `make_logistic(inference_network)`.
    pub fn posterior(&self, x: Tensor<2>) -> Independent<Logistic<2>, 1> {
        let logits = self.encoder.forward(x);
        let t = self.temperature;
        Independent::new(Logistic::new(logits / t, 1.0 / t), 1)
    }
    pub fn logits(&self, z: Tensor<2>) -> Tensor<2> {
        self.decoder.forward(sigmoid(z))
    }
    /// `p(z) = Independent(Logistic(loc = zeros(latent), scale = 1 / t), 1)`, batch shape `[]`,
    /// as the tutorial's `prior`.
    pub fn prior(&self, device: &Device) -> Independent<Logistic<1>, 0> {
        let loc = Tensor::<1>::zeros([self.latent], device);
        Independent::all_batch_dims(Logistic::new(loc, 1.0 / self.temperature))
    }
}

/// The Gumbel-softmax VAE of Jang, Gu and Poole (2017), as their public code writes it: `N`
/// categorical variables of `K` classes, encoder 784-512-256-(N·K) and decoder
/// (N·K)-256-512-784 with ReLU, a uniform categorical prior. Trained through the relaxed
/// one-hot samples at temperature `temperature` (annealed by the training loop), or with the
/// straight-through estimator (one-hot samples carrying the relaxed gradient).
#[derive(Module, Debug)]
pub struct CategoricalVae {
    encoder: Mlp,
    decoder: Mlp,
    /// `N`.
    pub variables: usize,
    /// `K`.
    pub classes: usize,
    /// The relaxation's temperature, set by the training loop at every step.
    pub temperature: f64,
    /// Train with the straight-through estimator; evaluation always uses it (one-hot latents,
    /// the discrete model's bounds).
    pub straight_through: bool,
}

impl CategoricalVae {
    pub fn new(
        variables: usize,
        classes: usize,
        temperature: f64,
        straight_through: bool,
        device: &Device,
    ) -> Self {
        let latent = variables * classes;
        Self {
            encoder: Mlp::relu(&[784, 512, 256, latent], device),
            decoder: Mlp::relu(&[latent, 256, 512, 784], device),
            variables,
            classes,
            temperature,
            straight_through,
        }
    }

    /// The encoder's logits, `[B, N, K]`.
    pub fn logits_of(&self, x: Tensor<2>) -> Tensor<3> {
        let b = x.dims()[0];
        self.encoder
            .forward(x)
            .reshape([b, self.variables, self.classes])
    }

    /// Decoder logits for latents `[rows, N, K]` (one-hot or relaxed).
    pub fn logits(&self, z: Tensor<3>) -> Tensor<2> {
        let rows = z.dims()[0];
        self.decoder
            .forward(z.reshape([rows, self.variables * self.classes]))
    }

    /// The uniform prior over the one-hot latents, batch shape `[]`, event shape `[N, K]`.
    pub fn prior(&self, device: &Device) -> Independent<OneHotCategorical<2>, 0> {
        let uniform = Tensor::<2>::zeros([self.variables, self.classes], device);
        Independent::all_batch_dims(OneHotCategorical::new(uniform))
    }

    /// The bound on a batch `x` of `[B, 784]` binary images.
    ///
    /// * `ElboAnalytic`: the ELBO with the closed-form categorical KL against the uniform prior
    ///   (Jang et al.'s objective); with the relaxed estimator the decoder reads relaxed samples
    ///   (`Elbo::given_kl`), with the straight-through one the one-hot samples (a true bound).
    /// * `Elbo`, `Iwae`, `Stl`, `Dreg`: relaxed latents in log space (`ExpRelaxedOneHotCategorical`
    ///   posterior and uniform prior at the same temperature, the decoder reading `exp(z)`), or
    ///   straight-through one-hot latents against the uniform categorical prior.
    pub fn bound(&self, x: Tensor<2>, objective: ObjectiveKind, k: usize) -> Bound {
        self.bound_in(x, objective, k, pixels)
    }

    /// [`Self::bound`] with the pixel likelihood `lik` of the decoder's logits (Bernoulli or
    /// continuous Bernoulli).
    pub fn bound_in<L: Likelihood<2>>(
        &self,
        x: Tensor<2>,
        objective: ObjectiveKind,
        k: usize,
        lik: impl Fn(Tensor<2>) -> L + Copy,
    ) -> Bound {
        let device = x.device();
        let logits = self.logits_of(x.clone());
        let t = self.temperature;
        let prior = self.prior(&device);
        let pixels = |z: Tensor<3>| lik(self.logits(z));
        if self.straight_through {
            let q = Independent::all_but_first(OneHotCategoricalStraightThrough::new(t, logits));
            return match objective {
                ObjectiveKind::ElboAnalytic => Elbo::new()
                    .num_samples(k)
                    .analytic_kl(&q, &prior, pixels, x),
                _ => latent_bound(objective, k, &q, &prior, pixels, x),
            };
        }
        if objective == ObjectiveKind::ElboAnalytic {
            let kl = kl_divergence(
                &Independent::all_but_first(OneHotCategorical::new(logits.clone())),
                &prior,
            );
            let q = Independent::all_but_first(RelaxedOneHotCategorical::new(t, logits));
            return Elbo::new().num_samples(k).given_kl(&q, kl, pixels, x);
        }
        let q = Independent::all_but_first(ExpRelaxedOneHotCategorical::new(t, logits));
        let uniform = Tensor::<2>::zeros([self.variables, self.classes], &device);
        let prior = Independent::all_batch_dims(ExpRelaxedOneHotCategorical::new(t, uniform));
        let relaxed = |z: Tensor<3>| lik(self.logits(z.exp()));
        latent_bound(objective, k, &q, &prior, relaxed, x)
    }
}

/// The Bernoulli pixel likelihood of decoder logits `[N, 784]`.
pub fn likelihood(logits: Tensor<2>) -> PixelLikelihood {
    pixels(logits)
}

/// The continuous-Bernoulli pixel likelihood of decoder logits `[N, 784]`.
pub fn grey_likelihood(logits: Tensor<2>) -> GreyPixelLikelihood {
    grey_pixels(logits)
}

/// One of the tutorials' architectures. Serialized in lower case (`"conv"`), the spelling of
/// the command line and of the run's settings.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// The Keras/TFP convolutional VAE (latent 2, RMSprop 1e-3, static binarization).
    Conv,
    /// The TFP/Edward MLP VAE: 784-200-200 ELU, latent 2, Adam 1e-3, batch 64.
    Mlp,
    /// Burda et al.'s one-stochastic-layer model: 784-200-200-50 tanh, dynamic binarization.
    Iwae,
    /// The discrete-latent VAE: BinConcrete latents in logit space, MLP encoder and decoder.
    Binary,
    /// Jang et al.'s Gumbel-softmax VAE: 30 categorical variables of 10 classes, ReLU MLPs.
    Categorical,
}

impl ModelKind {
    /// The name in lower case, as the command line and the run's settings spell it.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Conv => "conv",
            ModelKind::Mlp => "mlp",
            ModelKind::Iwae => "iwae",
            ModelKind::Binary => "binary",
            ModelKind::Categorical => "categorical",
        }
    }
}

/// Which bound to train with. Serialized as the variant's name in lower case
/// (`"elboanalytic"`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ObjectiveKind {
    /// The ELBO with a Monte Carlo KL (`ln q(z) − ln p(z)` from the same samples).
    Elbo,
    /// The ELBO with the closed-form KL (Gaussian latents only).
    ElboAnalytic,
    /// The IWAE bound with `-k` samples.
    Iwae,
    /// The IWAE bound (the ELBO for k = 1) with the STL gradient.
    Stl,
    /// The IWAE bound with the DReG gradient.
    Dreg,
}

impl ObjectiveKind {
    /// The variant's name in lower case (`"elboanalytic"`), as the run's settings spell it.
    pub fn name(self) -> &'static str {
        match self {
            ObjectiveKind::Elbo => "elbo",
            ObjectiveKind::ElboAnalytic => "elboanalytic",
            ObjectiveKind::Iwae => "iwae",
            ObjectiveKind::Stl => "stl",
            ObjectiveKind::Dreg => "dreg",
        }
    }
}

/// One of the tutorials' VAEs. (The size difference is harmless: one model per run.)
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Vae {
    Conv(ConvVae),
    Mlp(MlpVae),
    Binary(BinaryVae),
    Categorical(CategoricalVae),
}

use burn_probability::distribution::OneMore;
use burn_probability::objectives::{
    Bound, Elbo, GradientEstimator, Iwae, Likelihood, Posterior, Prior,
};
use burn_probability::{Distribution, Mode, Moments, Rank};

fn bound_for<Q, P, L, const DP: usize>(
    objective: ObjectiveKind,
    k: usize,
    q: &Q,
    prior: &P,
    logits: impl Fn(Tensor<2>) -> Tensor<2>,
    pixels: impl Fn(Tensor<2>) -> L,
    x: Tensor<2>,
) -> Bound
where
    Q: Posterior<2>,
    P: Prior<DP>,
    L: Likelihood<2>,
{
    latent_bound(objective, k, q, prior, |z: Tensor<2>| pixels(logits(z)), x)
}

/// The Monte Carlo bounds of any posterior over latents of rank `DZ`.
fn latent_bound<Q, P, L, const DZ: usize, const DS: usize, const DP: usize>(
    objective: ObjectiveKind,
    k: usize,
    q: &Q,
    prior: &P,
    lik: impl Fn(Tensor<DZ>) -> L,
    x: Tensor<2>,
) -> Bound
where
    Q: Posterior<DZ>,
    P: Prior<DP>,
    L: Likelihood<2>,
    Rank<DZ>: OneMore<DZ, Tensor = Tensor<DS>>,
{
    let lik = &lik;
    match objective {
        ObjectiveKind::Elbo | ObjectiveKind::ElboAnalytic => {
            Elbo::new().num_samples(k).monte_carlo_kl(q, prior, lik, x)
        }
        ObjectiveKind::Iwae => Iwae::new(k).compute(q, prior, lik, x),
        ObjectiveKind::Stl => Iwae::new(k)
            .estimator(GradientEstimator::Stl)
            .compute(q, prior, lik, x),
        ObjectiveKind::Dreg => Iwae::new(k)
            .estimator(GradientEstimator::Dreg)
            .compute(q, prior, lik, x),
    }
}

impl Vae {
    pub fn latent(&self) -> usize {
        match self {
            Vae::Conv(m) => m.latent,
            Vae::Mlp(m) => m.latent,
            Vae::Binary(m) => m.latent,
            Vae::Categorical(m) => m.variables * m.classes,
        }
    }

    /// `N(0, I)` over the latents, batch shape `[]` (TFP's `MultivariateNormalDiag(loc=tf.zeros(L))`).
    fn gaussian_prior(&self, device: &Device) -> MultivariateNormalDiag<1> {
        MultivariateNormalDiag::standard([self.latent()], device)
    }

    /// The bound on a batch `x` of `[B, 784]` binary images, with Bernoulli pixels.
    pub fn bound(&self, x: Tensor<2>, objective: ObjectiveKind, k: usize) -> Bound {
        self.bound_in(x, objective, k, pixels)
    }

    /// The bound on a batch `x` of `[B, 784]` images with the pixel likelihood `likelihood`:
    /// Bernoulli (binary images, or grey levels under the cross-entropy), or continuous
    /// Bernoulli (grey levels in `[0, 1]`). Each runs its own monomorphized code: the
    /// Bernoulli one is exactly [`Self::bound`].
    pub fn bound_with(
        &self,
        x: Tensor<2>,
        objective: ObjectiveKind,
        k: usize,
        likelihood: LikelihoodKind,
    ) -> Bound {
        match likelihood {
            LikelihoodKind::Bernoulli => self.bound_in(x, objective, k, pixels),
            LikelihoodKind::ContinuousBernoulli => self.bound_in(x, objective, k, grey_pixels),
        }
    }

    /// The bound with the pixel likelihood `lik` of the decoder's logits.
    fn bound_in<L: Likelihood<2>>(
        &self,
        x: Tensor<2>,
        objective: ObjectiveKind,
        k: usize,
        lik: impl Fn(Tensor<2>) -> L + Copy,
    ) -> Bound {
        let device = x.device();
        let gaussian = |q: MultivariateNormalDiag<2>, logits: &dyn Fn(Tensor<2>) -> Tensor<2>| {
            let prior = self.gaussian_prior(&device);
            if objective == ObjectiveKind::ElboAnalytic {
                let pixels = |z: Tensor<2>| lik(logits(z));
                Elbo::new()
                    .num_samples(k)
                    .analytic_kl(&q, &prior, pixels, x.clone())
            } else {
                bound_for(objective, k, &q, &prior, logits, lik, x.clone())
            }
        };
        match self {
            Vae::Conv(m) => gaussian(m.posterior(x.clone()), &|z| m.logits(z)),
            Vae::Mlp(m) if !m.plain() => m.bound_in(x, objective, k, lik),
            Vae::Mlp(m) => gaussian(m.posterior(x.clone()), &|z| m.logits(z)),
            Vae::Binary(m) => bound_for(
                objective,
                k,
                &m.posterior(x.clone()),
                &m.prior(&device),
                |z| m.logits(z),
                lik,
                x,
            ),
            Vae::Categorical(m) => m.bound_in(x, objective, k, lik),
        }
    }

    /// The decoder's logits for latents `z` (`[N, L]`), `[N, 784]`.
    pub fn logits(&self, z: Tensor<2>) -> Tensor<2> {
        match self {
            Vae::Conv(m) => m.logits(z),
            Vae::Mlp(m) => m.logits(z),
            Vae::Binary(m) => m.logits(z),
            Vae::Categorical(m) => {
                let n = z.dims()[0];
                m.logits(z.reshape([n, m.variables, m.classes]))
            }
        }
    }

    /// The mean of the pixel likelihood for latents `z` (`[N, L]`), `[N, 784]`: the
    /// Bernoulli's probabilities `σ(ℓ)`, or the continuous Bernoulli's mean (which is not
    /// `σ(ℓ)`: it is pulled towards 1/2).
    pub fn decode(&self, z: Tensor<2>, likelihood: LikelihoodKind) -> Tensor<2> {
        let logits = self.logits(z);
        match likelihood {
            LikelihoodKind::Bernoulli => sigmoid(logits),
            LikelihoodKind::ContinuousBernoulli => grey_pixels(logits).into_base().mean(),
        }
    }

    /// The posterior mean of the latents (for BinConcrete latents, of the logit-space variable;
    /// with IAF steps, the diagonal Gaussian's mean pushed through the flows).
    pub fn posterior_mean(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Vae::Conv(m) => m.posterior(x).loc().clone(),
            Vae::Mlp(m) => m.posterior_center(x),
            Vae::Binary(m) => m.posterior(x).base().loc().clone(),
            Vae::Categorical(m) => {
                let b = x.dims()[0];
                OneHotCategorical::new(m.logits_of(x))
                    .mode()
                    .reshape([b, m.variables * m.classes])
            }
        }
    }

    /// The model as it is evaluated: for categorical latents, with the straight-through
    /// sampler, whose one-hot samples give the discrete model's ELBO and IWAE bound (Jang et
    /// al. evaluate with one-hot latents); every other model unchanged.
    pub fn discrete(self) -> Self {
        match self {
            Vae::Categorical(m) => Vae::Categorical(CategoricalVae {
                straight_through: true,
                ..m
            }),
            other => other,
        }
    }

    /// Sets the relaxation's temperature (categorical latents; a no-op for the other models,
    /// whose temperature is fixed).
    pub fn set_temperature(&mut self, temperature: f64) {
        if let Vae::Categorical(m) = self {
            m.temperature = temperature;
        }
    }

    /// `n` draws from the prior.
    pub fn sample_prior(&self, n: usize, device: &Device) -> Tensor<2> {
        // The priors have batch shape []: n draws are [n, L].
        match self {
            Vae::Binary(m) => m.prior(device).sample_n(n),
            Vae::Categorical(m) => {
                let z: Tensor<3> = m.prior(device).sample_n(n);
                z.reshape([n, m.variables * m.classes])
            }
            Vae::Mlp(MlpVae {
                prior: Some(prior), ..
            }) => prior.distribution().sample_n(n),
            _ => self.gaussian_prior(device).sample_n(n),
        }
    }
}

/// Where a training step runs: on burn's global thread pool (every core), or on a pool of one
/// thread for steps too small to split.
///
/// The MLP models' steps push `batch × k` rows through 200-wide layers: at batch 64 that is
/// about 2.5 MFLOP per image, a few microseconds of work per operation, so that two threads
/// lose more to waking each other for every operation than they gain (the measurements are in
/// `docs/performance.md`). The results are the same either way: only where the work runs
/// changes.
pub struct StepThreads(Option<rayon::ThreadPool>);

impl StepThreads {
    /// Rows (`batch × k`) up to which an MLP model's step runs on one thread.
    pub const ONE_THREAD_ROWS: usize = 256;

    /// The threads for `model`'s training step with this batch size and number of samples:
    /// one for the 200-wide MLP models (`Mlp`, `Iwae`, `Binary`) up to
    /// [`Self::ONE_THREAD_ROWS`] rows, every core otherwise (always for `Conv` and for
    /// `Categorical`, whose 512-wide layers split well).
    pub fn for_step(model: ModelKind, batch: usize, k: usize) -> Self {
        let wide = matches!(model, ModelKind::Conv | ModelKind::Categorical);
        if wide || batch.saturating_mul(k.max(1)) > Self::ONE_THREAD_ROWS {
            return Self(None);
        }
        // A pool that cannot be built (no threads left) only costs speed.
        Self(rayon::ThreadPoolBuilder::new().num_threads(1).build().ok())
    }

    /// Whether steps run on a single thread.
    pub fn single(&self) -> bool {
        self.0.is_some()
    }

    /// Runs `step` on these threads and returns its result.
    pub fn run<R: Send>(&self, step: impl FnOnce() -> R + Send) -> R {
        match &self.0 {
            Some(pool) => pool.install(step),
            None => step(),
        }
    }
}

/// The tutorials' optimizers: RMSprop for `Conv`, Adam for the others (learning rate given
/// at each step).
pub fn optimizer(model: ModelKind) -> ModuleOptimizer {
    if model == ModelKind::Conv {
        // Keras' RMSprop: rho 0.9, and epsilon 1e-7 *inside* the square root,
        // lr·g / sqrt(v + 1e-7), which damps the updates of weights whose gradients are tiny
        // (in the first steps, most of the encoder's). burn adds epsilon outside,
        // lr·g / (sqrt(v) + ε); ε = sqrt(1e-7) gives the same damping within a factor √2.
        // (With ε = 1e-7 outside, the first update would move every weight by ±lr·√10 whatever
        // its gradient, enough to overflow the log-variance head.)
        RmsPropConfig::new()
            .with_alpha(0.9)
            .with_epsilon(1e-7f32.sqrt())
            .init()
    } else {
        // Adam with PyTorch's and TensorFlow's epsilon, 1e-8 (burn's default is 1e-5), as one
        // fused pass per parameter on flex: the same updates as burn's
        // `AdamConfig::new().with_epsilon(1e-8)`, bit for bit.
        FusedAdam::new().init()
    }
}
