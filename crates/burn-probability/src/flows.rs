//! Learnable normalizing flows: the masked autoencoder [`Made`] (Germain et al. 2015) and the
//! affine autoregressive bijectors built on it, [`InverseAutoregressiveFlow`] (Kingma et al.
//! 2016: one-pass sampling, the posterior of a VAE) and [`MaskedAutoregressiveFlow`]
//! (Papamakarios et al. 2017: one-pass density), and the RealNVP coupling layer
//! [`AffineCoupling`] (Dinh et al. 2017: one pass both ways). All are burn [`Module`]s,
//! trained with any burn optimizer, and [`Bijector`]s of event rank 1; the autoregressive ones
//! can read a context (Kingma et al.'s encoder output `h`: [`MadeConfig::context_size`],
//! [`InverseAutoregressiveFlow::conditioned`]), and a stack of layers is a `Vec` of them. They
//! are used in a
//! [`TransformedDistribution`](crate::TransformedDistribution) over a base of event rank 1
//! ([`MultivariateNormalDiag`](crate::MultivariateNormalDiag), or
//! [`Independent`](crate::Independent) of scalars).
//!
//! # The affine autoregressive map
//! With `μ(z)` and `ln σ(z)` the outputs of a [`Made`] on `z` (output `k` depends only on
//! `z_<k`):
//! ```text
//! IAF   y = x ⊙ σ(x) + μ(x)              (forward: one pass; inverse: K passes)
//! MAF   y = x ⊙ σ(y) + μ(y)              (inverse: one pass; forward: K passes)
//! ln |det ∂y/∂x| = Σₖ ln σₖ              (triangular Jacobian, diagonal σ)
//! ```
//! The log-scale is soft-clamped, `ln σ = L tanh(s / L)` with `s` the network's raw output and
//! `L = ` [`LOG_SCALE_BOUND`] `= 5`: σ stays in `(e⁻⁵, e⁵)` whatever the weights (no overflow
//! of `exp` in float32), the map is smooth, and at `s = 0` it is the identity with slope 1, so
//! a network whose last layer is zero (as [`MadeConfig::init`] builds it) makes the flow the
//! identity. (Kingma's gate form `σ = sigmoid(s + 2)` is not used: it cannot start at the
//! identity.)
//!
//! # Shapes
//! The bijectors accept `x` of any rank `D ≥ 1` whose last dimension is the event size `K`:
//! the leading dimensions are flattened to one batch dimension, the network applied, and the
//! shape restored. The log-determinants are keepdim: shape `[.., 1]`.
//!
//! # Example
//! ```
//! use burn::tensor::{Device, Tensor};
//! use burn_probability::flows::{InverseAutoregressiveFlow, MadeConfig};
//! use burn_probability::prelude::*;
//!
//! let device = Device::flex();
//! let iaf = InverseAutoregressiveFlow::new(MadeConfig::new(2, vec![16, 16]).init(&device));
//! let base = MultivariateNormalDiag::new(Tensor::<2>::zeros([4, 2], &device), 1.0);
//! let q = TransformedDistribution::new(base, iaf);
//! let z = q.rsample_n(8);                          // [8, 4, 2], differentiable in the flow
//! assert_eq!(q.log_prob_n(z).dims(), [8, 4]);
//! ```

use burn::config::Config;
use burn::module::{Module, ModuleMapper, Param as ModuleParam};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::module::linear;
use burn::tensor::{Device, Shape, Tensor};

use crate::bijector::Bijector;
use crate::distribution::check_values;
use crate::error::{Error, Result};

mod coupling;
pub use coupling::{AffineCoupling, AffineCouplingConfig};

/// The bound `L` of the soft clamp `ln σ = L tanh(s / L)` of the flows' log-scales (see the
/// [module documentation](self)).
///
/// # Example
/// ```
/// assert_eq!(burn_probability::flows::LOG_SCALE_BOUND, 5.0);
/// ```
pub const LOG_SCALE_BOUND: f64 = 5.0;

/// The configuration of a [`Made`]: the event size `K`, the widths of the hidden layers, the
/// size of an optional context (Kingma et al.'s `h`: an input every output may depend on) and
/// the order of the autoregression.
///
/// # Formula
/// Degrees: input `i` has degree `i + 1` (`1..=K`; `K − i` when `reversed`, TFP's
/// `input_order='right-to-left'`); hidden unit `j` of every hidden layer has degree
/// `(j mod max(K − 1, 1)) + 1`, in `[1, K − 1]` (a fixed, deterministic assignment); output `k`
/// of each head has input `k`'s degree. A hidden weight from degree `a` to degree `b` is kept
/// when `b ≥ a`, an output weight when `b > a`, so that output `k` depends only on the inputs
/// of lower degree (those before `k`, or after it when `reversed`). The context enters the
/// first layer unmasked: `h₁ = relu((W₁ ⊙ M₁)ᵀ x + Vᵀ c + b₁)`. Stacked flows alternate
/// `reversed` so that every coordinate depends on every other one.
///
/// # Example
/// ```
/// use burn::tensor::Device;
/// use burn_probability::flows::MadeConfig;
///
/// let made = MadeConfig::new(3, vec![8]).init(&Device::flex());
/// assert_eq!(made.event_size(), 3);
/// ```
#[derive(Config, Debug)]
pub struct MadeConfig {
    /// The event size `K`: inputs and each output head have `K` units.
    pub event_size: usize,
    /// The widths of the hidden layers (none: one masked linear layer).
    pub hidden: Vec<usize>,
    /// The size `C` of the context (0: none). A network with a context is called with one,
    /// through [`InverseAutoregressiveFlow::conditioned`] or
    /// [`MaskedAutoregressiveFlow::conditioned`].
    #[config(default = 0)]
    pub context_size: usize,
    /// Autoregress from the last coordinate to the first.
    #[config(default = false)]
    pub reversed: bool,
}

impl MadeConfig {
    /// The network on `device`: hidden layers with burn's default initialization, and the last
    /// layer at zero, so that both heads output 0 (a flow built on it starts as the identity).
    ///
    /// # Panics
    /// If `event_size` or a hidden width is 0.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::flows::MadeConfig;
    ///
    /// let device = Device::flex();
    /// let made = MadeConfig::new(2, vec![4]).init(&device);
    /// let (shift, log_scale) = made.forward(Tensor::<2>::ones([3, 2], &device));
    /// assert_eq!(shift.into_data().iter::<f32>().collect::<Vec<_>>(), [0.0; 6]);
    /// assert_eq!(log_scale.dims(), [3, 2]);
    /// ```
    pub fn init(&self, device: &Device) -> Made {
        let k = self.event_size;
        assert!(k > 0, "MadeConfig: event_size must be > 0");
        assert!(
            self.hidden.iter().all(|&h| h > 0),
            "MadeConfig: hidden widths must be > 0, got {:?}",
            self.hidden
        );
        let hidden_degree = |j: usize| (j % (k - 1).max(1) + 1) as f32;
        let input_degree = |i: usize| {
            if self.reversed {
                (k - i) as f32
            } else {
                (i + 1) as f32
            }
        };
        let mut degrees: Vec<f32> = (0..k).map(input_degree).collect();
        let first_width = self.hidden.first().copied().unwrap_or(2 * k);
        let context = (self.context_size > 0).then(|| {
            let config = LinearConfig::new(self.context_size, first_width).with_bias(false);
            // Into the zero last layer when there is no hidden one (the identity at init).
            if self.hidden.is_empty() {
                config.with_initializer(Initializer::Zeros).init(device)
            } else {
                config.init(device)
            }
        });
        let mut layers = Vec::new();
        let mut masks = Vec::new();
        for &width in &self.hidden {
            let out: Vec<f32> = (0..width).map(hidden_degree).collect();
            masks.push(mask(&degrees, &out, false, device));
            layers.push(LinearConfig::new(degrees.len(), width).init(device));
            degrees = out;
        }
        let out: Vec<f32> = (0..2 * k).map(|o| input_degree(o % k)).collect();
        masks.push(mask(&degrees, &out, true, device));
        layers.push(
            LinearConfig::new(degrees.len(), 2 * k)
                .with_initializer(Initializer::Zeros)
                .init(device),
        );
        Made {
            layers,
            masks,
            context,
            event_size: k,
        }
    }
}

/// The `[d_in, d_out]` mask (burn's weight layout): 1 where the output's degree is `≥` (hidden)
/// or `>` (output layer) the input's.
fn mask(inputs: &[f32], outputs: &[f32], strict: bool, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = inputs
        .iter()
        .flat_map(|&a| {
            outputs.iter().map(move |&b| {
                if b > a || (!strict && b == a) {
                    1.0
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::<1>::from_floats(values.as_slice(), device).reshape([inputs.len(), outputs.len()])
}

/// A masked autoencoder for distribution estimation (Germain et al. 2015; TFP's
/// `tfb.AutoregressiveNetwork(params=2)`): a ReLU MLP `[.., K] → ([.., K], [.., K])` whose
/// outputs `k` depend only on the inputs `< k`. Built by [`MadeConfig::init`].
///
/// The weights are burn [`Linear`] layers (trainable); the masks are constant tensors
/// multiplied into the weights at each call, not parameters.
///
/// # Formula
/// ```text
/// h₀ = x,  hₗ = relu((Wₗ ⊙ Mₗ)ᵀ hₗ₋₁ + bₗ),  [shift, log_scale] = (W ⊙ M)ᵀ h + b
/// ```
/// with the masks `M` of [`MadeConfig`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::flows::MadeConfig;
///
/// let device = Device::flex();
/// let made = MadeConfig::new(4, vec![16]).init(&device);
/// let (shift, log_scale) = made.forward(Tensor::<3>::zeros([2, 5, 4], &device));
/// assert_eq!((shift.dims(), log_scale.dims()), ([2, 5, 4], [2, 5, 4]));
/// ```
#[derive(Module, Debug)]
pub struct Made {
    layers: Vec<Linear>,
    masks: Vec<Tensor<2>>,
    /// The context's weights into the first layer.
    context: Option<Linear>,
    event_size: usize,
}

impl Made {
    /// The event size `K`.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::Device;
    /// use burn_probability::flows::MadeConfig;
    ///
    /// assert_eq!(MadeConfig::new(5, vec![]).init(&Device::flex()).event_size(), 5);
    /// ```
    pub fn event_size(&self) -> usize {
        self.event_size
    }

    /// The context size `C` (0: the network takes none).
    ///
    /// # Example
    /// ```
    /// use burn::tensor::Device;
    /// use burn_probability::flows::MadeConfig;
    ///
    /// let made = MadeConfig::new(5, vec![8]).with_context_size(3).init(&Device::flex());
    /// assert_eq!(made.context_size(), 3);
    /// ```
    pub fn context_size(&self) -> usize {
        self.context
            .as_ref()
            .map_or(0, |c| c.weight.val().dims()[0])
    }

    /// The two heads, `(shift, log_scale)` (raw: not clamped), each shaped like `x`.
    ///
    /// # Shapes
    /// - `x`: `[.., K]`, any rank `D ≥ 1`.
    ///
    /// # Panics
    /// If the last dimension of `x` is not `K`.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::flows::MadeConfig;
    ///
    /// let device = Device::flex();
    /// let made = MadeConfig::new(3, vec![8]).init(&device);
    /// let (shift, _) = made.forward(Tensor::<1>::ones([3], &device));
    /// assert_eq!(shift.dims(), [3]);
    /// ```
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
        self.forward_with_context(x, None)
    }

    /// The two heads of a network with a context: `context` is `[B, C]`, one row per
    /// example, and `x` is `[B, K]` or `[.., B, K]` (samples of the `B` examples along leading
    /// dimensions: row `b` of the context conditions every `x[.., b, :]`).
    ///
    /// # Panics
    /// If the last dimension of `x` is not `K`, if a context is given to a network without
    /// one or missing for a network with one, or if the shapes do not fit as above (the
    /// messages name the shapes; [`Bijector::check_shape`] returns them as errors).
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::flows::MadeConfig;
    ///
    /// let device = Device::flex();
    /// let made = MadeConfig::new(3, vec![8]).with_context_size(4).init(&device);
    /// let context = Tensor::<2>::ones([5, 4], &device);            // 5 examples
    /// let x = Tensor::<3>::zeros([2, 5, 3], &device);              // 2 samples of each
    /// let (shift, _) = made.forward_with_context(x, Some(&context));
    /// assert_eq!(shift.dims(), [2, 5, 3]);
    /// ```
    pub fn forward_with_context<const D: usize>(
        &self,
        x: Tensor<D>,
        context: Option<&Tensor<2>>,
    ) -> (Tensor<D>, Tensor<D>) {
        let k = self.event_size;
        let shape = x.shape();
        if let Err(e) = self.check_input("Made", &shape, context.map(|c| c.dims())) {
            panic!("{e}");
        }
        let n = shape.num_elements() / k;
        let mut h: Tensor<2> = x.reshape([n, k]);
        let last = self.layers.len() - 1;
        for (i, (layer, m)) in self.layers.iter().zip(&self.masks).enumerate() {
            let w = layer.weight.val() * m.clone();
            h = linear(h, w, layer.bias.as_ref().map(|b| b.val()));
            if i == 0
                && let (Some(v), Some(c)) = (&self.context, context)
            {
                let proj = v.forward(c.clone());
                let [rows, width] = proj.dims();
                h = if rows == n {
                    h + proj
                } else {
                    (h.reshape([n / rows, rows, width]) + proj.unsqueeze_dim::<3>(0))
                        .reshape([n, width])
                };
            }
            if i < last {
                h = relu(h);
            }
        }
        let shift = h.clone().slice([0..n, 0..k]).reshape(shape.clone());
        let log_scale = h.slice([0..n, k..2 * k]).reshape(shape);
        (shift, log_scale)
    }

    /// The shift and the soft-clamped log-scale `L tanh(s / L)`.
    fn shift_log_scale<const D: usize>(
        &self,
        z: Tensor<D>,
        context: Option<&Tensor<2>>,
    ) -> (Tensor<D>, Tensor<D>) {
        let (shift, raw) = self.forward_with_context(z, context);
        (shift, (raw / LOG_SCALE_BOUND).tanh() * LOG_SCALE_BOUND)
    }

    /// Checks an input of shape `shape` with a context of shape `context` (see
    /// [`Self::forward_with_context`]).
    fn check_input(
        &self,
        name: &'static str,
        shape: &Shape,
        context: Option<[usize; 2]>,
    ) -> Result<()> {
        let d = shape.num_dims();
        let k = self.event_size;
        if d == 0 || shape[d - 1] != k {
            return Err(Error::ShapeMismatch {
                context: name,
                left_name: "input shape",
                left: shape.to_vec(),
                right_name: "event size",
                right: vec![k],
            });
        }
        let c = self.context_size();
        match (c, context) {
            (0, None) => Ok(()),
            (0, Some(dims)) => Err(Error::InvalidArgument {
                context: name,
                argument: "context",
                expected: "none: this network was built with context_size 0".into(),
                actual: format!("a context of shape {dims:?}"),
            }),
            (c, None) => Err(Error::InvalidArgument {
                context: name,
                argument: "context",
                expected: format!(
                    "a [B, {c}] context (the network was built with context_size {c}): call the flow's `conditioned(context)`"
                ),
                actual: "none".into(),
            }),
            (c, Some([rows, width])) => {
                let n = shape.num_elements() / k;
                let fits =
                    width == c && rows > 0 && (n == rows || (d >= 2 && shape[d - 2] == rows));
                if fits {
                    Ok(())
                } else {
                    Err(Error::ShapeMismatch {
                        context: name,
                        left_name: "input shape [.., B, K]",
                        left: shape.to_vec(),
                        right_name: "context shape [B, C]",
                        right: vec![rows, width],
                    })
                }
            }
        }
    }

    /// The same network with its parameters detached from the autodiff graph.
    fn detached(&self) -> Self {
        detached(self)
    }

    /// The base shape's last dimension is `K`, and the context (if any) fits it.
    fn check_shape(
        &self,
        name: &'static str,
        context: &'static str,
        shape: &Shape,
        condition: Option<[usize; 2]>,
    ) -> Result<()> {
        let d = shape.num_dims();
        if d >= 1 && shape[d - 1] == self.event_size {
            self.check_input(context, shape, condition)
        } else {
            Err(Error::ShapeMismatch {
                context,
                left_name: "base shape",
                left: shape.to_vec(),
                right_name: name,
                right: vec![self.event_size],
            })
        }
    }
}

/// `module` with every parameter detached from the autodiff graph (the flows' `detach`).
pub(crate) fn detached<M: Module>(module: &M) -> M {
    struct Detach;
    impl ModuleMapper for Detach {
        fn map_float<const D: usize>(
            &mut self,
            param: ModuleParam<Tensor<D>>,
        ) -> ModuleParam<Tensor<D>> {
            ModuleParam::initialized(param.id, param.val().detach())
        }
    }
    module.clone().map(&mut Detach)
}

/// The inverse autoregressive flow (Kingma et al. 2016; TFP's
/// `tfb.Invert(tfb.MaskedAutoregressiveFlow(..))`): `x` is the base sample, and the shift and
/// scale are computed from it, so sampling and `ln |det|` at a sample take **one** pass of the
/// [`Made`]; the density of an arbitrary `y` needs the inverse, **K sequential passes** (slow:
/// use it for posteriors scored at their own samples, as in a VAE, where
/// [`TransformedDistribution`](crate::TransformedDistribution)'s `log_prob` of an `rsample`
/// pays the inverse once per call).
///
/// # Formula
/// ```text
/// f(x) = x ⊙ σ(x) + μ(x)              ln σ(x) = L tanh(s(x) / L)
/// f⁻¹(y): x⁽⁰⁾ = 0,  x⁽ⁱ⁾ = (y − μ(x⁽ⁱ⁻¹⁾)) ⊙ σ(x⁽ⁱ⁻¹⁾)⁻¹,  x = x⁽ᴷ⁾
/// ln |det ∂f(x)/∂x| = Σₖ ln σₖ(x)
/// ```
/// (after `i` passes the first `i` coordinates are exact).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::bijector::Bijector;
/// use burn_probability::flows::{InverseAutoregressiveFlow, MadeConfig};
///
/// let device = Device::flex();
/// let iaf = InverseAutoregressiveFlow::new(MadeConfig::new(3, vec![8]).init(&device));
/// let x = Tensor::<2>::from_floats([[0.5, -1.0, 2.0]], &device);
/// // Zero-initialized last layer: the identity, with log-determinant 0.
/// let y: Vec<f32> = iaf.forward(x.clone()).into_data().iter::<f32>().collect();
/// assert_eq!(y, [0.5, -1.0, 2.0]);
/// assert_eq!(iaf.forward_log_det_jacobian(x).dims(), [1, 1]);
/// ```
#[derive(Module, Debug)]
pub struct InverseAutoregressiveFlow {
    made: Made,
}

impl InverseAutoregressiveFlow {
    /// The flow with shift and log-scale from `made`.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::Device;
    /// use burn_probability::flows::{InverseAutoregressiveFlow, MadeConfig};
    ///
    /// let iaf = InverseAutoregressiveFlow::new(MadeConfig::new(2, vec![4]).init(&Device::flex()));
    /// assert_eq!(iaf.made().event_size(), 2);
    /// ```
    pub fn new(made: Made) -> Self {
        Self { made }
    }

    /// The network.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::Device;
    /// use burn_probability::flows::{InverseAutoregressiveFlow, MadeConfig};
    ///
    /// let iaf = InverseAutoregressiveFlow::new(MadeConfig::new(2, vec![]).init(&Device::flex()));
    /// assert_eq!(iaf.made().event_size(), 2);
    /// ```
    pub fn made(&self) -> &Made {
        &self.made
    }
    /// The flow conditioned on `context` (`[B, C]`, one row per example): Kingma et al.'s
    /// IAF posterior, whose network reads the encoder's context `h` beside `z`. The network
    /// must have been built with [`MadeConfig::context_size`] `C`.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::flows::{InverseAutoregressiveFlow, MadeConfig};
    /// use burn_probability::prelude::*;
    ///
    /// let device = Device::flex();
    /// let made = MadeConfig::new(2, vec![16]).with_context_size(8).init(&device);
    /// let iaf = InverseAutoregressiveFlow::new(made);
    /// let h = Tensor::<2>::ones([4, 8], &device);                    // the encoder's context
    /// let base = MultivariateNormalDiag::new(Tensor::<2>::zeros([4, 2], &device), 1.0);
    /// let q = TransformedDistribution::new(base, iaf.conditioned(h));
    /// assert_eq!(q.rsample_n(3).dims(), [3, 4, 2]);
    /// ```
    pub fn conditioned(&self, context: Tensor<2>) -> Conditioned<Self> {
        Conditioned {
            flow: self.clone(),
            context,
        }
    }
}

impl Bijector for InverseAutoregressiveFlow {
    const EVENT_RANK: usize = 1;
    const NAME: &'static str = "InverseAutoregressiveFlow";

    /// `x ⊙ σ(x) + μ(x)`: one pass.
    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        iaf_forward(&self.made, None, x).0
    }

    /// `K` sequential passes (see the type's formula).
    fn inverse<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        iaf_inverse(&self.made, None, y).0
    }

    /// `Σₖ ln σₖ(x)`, keepdim: one pass.
    fn forward_log_det_jacobian<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        iaf_forward(&self.made, None, x).1
    }

    /// `−Σₖ ln σₖ(f⁻¹(y))`, from the last of the inverse's `K` passes.
    fn inverse_log_det_jacobian<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        iaf_inverse(&self.made, None, y).1
    }

    /// The map and `Σₖ ln σₖ(x)` from one pass.
    fn forward_and_log_det<const D: usize>(&self, x: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
        iaf_forward(&self.made, None, x)
    }

    fn detach(&self) -> Self {
        Self {
            made: self.made.detached(),
        }
    }

    fn check_image<const D: usize>(&self, y: &Tensor<D>) -> Result<()> {
        check_values(Self::NAME, "ℝᴷ (finite)", y, f64::is_finite)
    }

    /// The last dimension must be the event size `K` (and the network must take no context).
    fn check_shape(&self, context: &'static str, shape: &Shape) -> Result<()> {
        self.made
            .check_shape("InverseAutoregressiveFlow event size", context, shape, None)
    }
}

/// `(f(x), Σₖ ln σₖ(x))` of the IAF (keepdim), one pass.
fn iaf_forward<const D: usize>(
    made: &Made,
    context: Option<&Tensor<2>>,
    x: Tensor<D>,
) -> (Tensor<D>, Tensor<D>) {
    let (shift, log_scale) = made.shift_log_scale(x.clone(), context);
    (
        x * log_scale.clone().exp() + shift,
        log_scale.sum_dim(D - 1),
    )
}

/// `(f⁻¹(y), −Σₖ ln σₖ(f⁻¹(y)))` of the IAF (keepdim), by `K` passes.
fn iaf_inverse<const D: usize>(
    made: &Made,
    context: Option<&Tensor<2>>,
    y: Tensor<D>,
) -> (Tensor<D>, Tensor<D>) {
    let mut x = y.zeros_like();
    let mut log_scale = y.zeros_like();
    for _ in 0..made.event_size() {
        let (shift, ls) = made.shift_log_scale(x, context);
        x = (y.clone() - shift) * (-ls.clone()).exp();
        log_scale = ls;
    }
    (x, -log_scale.sum_dim(D - 1))
}

/// The masked autoregressive flow (Papamakarios et al. 2017; TFP's
/// `tfb.MaskedAutoregressiveFlow`): the shift and scale are computed from the output `y`, so
/// the density of any `y` (the inverse and its log-determinant) takes **one** pass of the
/// [`Made`], and sampling (the forward map) **K sequential passes** (slow). Use it for density
/// estimation; for a VAE posterior use [`InverseAutoregressiveFlow`].
///
/// # Formula
/// ```text
/// f⁻¹(y) = (y − μ(y)) ⊙ σ(y)⁻¹           ln σ(y) = L tanh(s(y) / L)
/// f(x): y⁽⁰⁾ = 0,  y⁽ⁱ⁾ = x ⊙ σ(y⁽ⁱ⁻¹⁾) + μ(y⁽ⁱ⁻¹⁾),  y = y⁽ᴷ⁾
/// ln |det ∂f(x)/∂x| = Σₖ ln σₖ(f(x))       ln |det ∂f⁻¹(y)/∂y| = −Σₖ ln σₖ(y)
/// ```
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::bijector::Bijector;
/// use burn_probability::flows::{MadeConfig, MaskedAutoregressiveFlow};
/// use burn_probability::prelude::*;
///
/// let device = Device::flex();
/// let maf = MaskedAutoregressiveFlow::new(MadeConfig::new(2, vec![8]).init(&device));
/// let p = TransformedDistribution::new(MultivariateNormalDiag::<1>::standard([2], &device), maf);
/// let y = Tensor::<1>::from_floats([0.0, 0.0], &device);
/// let lp: Vec<f32> = p.log_prob(y).into_data().iter::<f32>().collect();
/// assert!((lp[0] + (2.0 * std::f32::consts::PI).ln()).abs() < 1e-5); // the identity at init
/// ```
#[derive(Module, Debug)]
pub struct MaskedAutoregressiveFlow {
    made: Made,
}

impl MaskedAutoregressiveFlow {
    /// The flow with shift and log-scale from `made`.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::Device;
    /// use burn_probability::flows::{MadeConfig, MaskedAutoregressiveFlow};
    ///
    /// let maf = MaskedAutoregressiveFlow::new(MadeConfig::new(3, vec![4]).init(&Device::flex()));
    /// assert_eq!(maf.made().event_size(), 3);
    /// ```
    pub fn new(made: Made) -> Self {
        Self { made }
    }

    /// The network.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::Device;
    /// use burn_probability::flows::{MadeConfig, MaskedAutoregressiveFlow};
    ///
    /// let maf = MaskedAutoregressiveFlow::new(MadeConfig::new(1, vec![]).init(&Device::flex()));
    /// assert_eq!(maf.made().event_size(), 1);
    /// ```
    pub fn made(&self) -> &Made {
        &self.made
    }
    /// The flow conditioned on `context` (`[B, C]`, one row per example): a conditional
    /// density `p(y | c)`. The network must have been built with
    /// [`MadeConfig::context_size`] `C`.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::flows::{MadeConfig, MaskedAutoregressiveFlow};
    /// use burn_probability::prelude::*;
    ///
    /// let device = Device::flex();
    /// let made = MadeConfig::new(2, vec![16]).with_context_size(1).init(&device);
    /// let maf = MaskedAutoregressiveFlow::new(made);
    /// let c = Tensor::<2>::from_floats([[0.0], [1.0]], &device);
    /// let base = MultivariateNormalDiag::new(Tensor::<2>::zeros([2, 2], &device), 1.0);
    /// let p = TransformedDistribution::new(base, maf.conditioned(c));
    /// assert_eq!(p.log_prob(Tensor::<2>::zeros([2, 2], &device)).dims(), [2]);
    /// ```
    pub fn conditioned(&self, context: Tensor<2>) -> Conditioned<Self> {
        Conditioned {
            flow: self.clone(),
            context,
        }
    }
}

impl Bijector for MaskedAutoregressiveFlow {
    const EVENT_RANK: usize = 1;
    const NAME: &'static str = "MaskedAutoregressiveFlow";

    /// `K` sequential passes (see the type's formula).
    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        maf_forward(&self.made, None, x).0
    }

    /// `(y − μ(y)) ⊙ σ(y)⁻¹`: one pass.
    fn inverse<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        maf_inverse(&self.made, None, y).0
    }

    /// `Σₖ ln σₖ(f(x))`, from the last of the forward's `K` passes.
    fn forward_log_det_jacobian<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        maf_forward(&self.made, None, x).1
    }

    /// `−Σₖ ln σₖ(y)`: one pass.
    fn inverse_log_det_jacobian<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        maf_inverse(&self.made, None, y).1
    }

    /// The map and its log-determinant from the forward's `K` passes.
    fn forward_and_log_det<const D: usize>(&self, x: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
        maf_forward(&self.made, None, x)
    }

    fn detach(&self) -> Self {
        Self {
            made: self.made.detached(),
        }
    }

    fn check_image<const D: usize>(&self, y: &Tensor<D>) -> Result<()> {
        check_values(Self::NAME, "ℝᴷ (finite)", y, f64::is_finite)
    }

    /// The last dimension must be the event size `K` (and the network must take no context).
    fn check_shape(&self, context: &'static str, shape: &Shape) -> Result<()> {
        self.made
            .check_shape("MaskedAutoregressiveFlow event size", context, shape, None)
    }
}

/// `(f(x), Σₖ ln σₖ(f(x)))` of the MAF (keepdim), by `K` passes.
fn maf_forward<const D: usize>(
    made: &Made,
    context: Option<&Tensor<2>>,
    x: Tensor<D>,
) -> (Tensor<D>, Tensor<D>) {
    let mut y = x.zeros_like();
    let mut log_scale = x.zeros_like();
    for _ in 0..made.event_size() {
        let (shift, ls) = made.shift_log_scale(y, context);
        y = x.clone() * ls.clone().exp() + shift;
        log_scale = ls;
    }
    (y, log_scale.sum_dim(D - 1))
}

/// `(f⁻¹(y), −Σₖ ln σₖ(y))` of the MAF (keepdim), one pass.
fn maf_inverse<const D: usize>(
    made: &Made,
    context: Option<&Tensor<2>>,
    y: Tensor<D>,
) -> (Tensor<D>, Tensor<D>) {
    let (shift, log_scale) = made.shift_log_scale(y.clone(), context);
    (
        (y - shift) * (-log_scale.clone()).exp(),
        -log_scale.sum_dim(D - 1),
    )
}

/// An autoregressive flow bound to a context `[B, C]` (one row per example), built by
/// [`InverseAutoregressiveFlow::conditioned`] or [`MaskedAutoregressiveFlow::conditioned`]: the
/// same maps, with the network reading the context (see [`Made::forward_with_context`]). A
/// stack of conditioned flows is a `Vec` of them.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::bijector::Bijector;
/// use burn_probability::flows::{InverseAutoregressiveFlow, MadeConfig};
///
/// let device = Device::flex();
/// let flows: Vec<_> = [false, true]
///     .map(|reversed| {
///         let made = MadeConfig::new(3, vec![8]).with_context_size(2).with_reversed(reversed);
///         InverseAutoregressiveFlow::new(made.init(&device))
///     })
///     .into_iter()
///     .collect();
/// let h = Tensor::<2>::ones([5, 2], &device);
/// let stack: Vec<_> = flows.iter().map(|f| f.conditioned(h.clone())).collect();
/// let (z, log_det) = stack.forward_and_log_det(Tensor::<2>::zeros([5, 3], &device));
/// assert_eq!((z.dims(), log_det.dims()), ([5, 3], [5, 1]));
/// ```
#[derive(Clone, Debug)]
pub struct Conditioned<F> {
    flow: F,
    context: Tensor<2>,
}

impl<F> Conditioned<F> {
    /// The flow.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::flows::{InverseAutoregressiveFlow, MadeConfig};
    ///
    /// let device = Device::flex();
    /// let iaf = InverseAutoregressiveFlow::new(MadeConfig::new(2, vec![4]).with_context_size(1).init(&device));
    /// let c = iaf.conditioned(Tensor::<2>::zeros([3, 1], &device));
    /// assert_eq!(c.flow().made().event_size(), 2);
    /// ```
    pub fn flow(&self) -> &F {
        &self.flow
    }

    /// The context, `[B, C]`.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::flows::{InverseAutoregressiveFlow, MadeConfig};
    ///
    /// let device = Device::flex();
    /// let iaf = InverseAutoregressiveFlow::new(MadeConfig::new(2, vec![4]).with_context_size(1).init(&device));
    /// let c = iaf.conditioned(Tensor::<2>::zeros([3, 1], &device));
    /// assert_eq!(c.context().dims(), [3, 1]);
    /// ```
    pub fn context(&self) -> &Tensor<2> {
        &self.context
    }
}

/// The [`Bijector`] of a conditioned flow: the flow's maps (`$forward` gives the map and its
/// log-determinant, `$inverse` the inverse and its log-determinant) with the context.
macro_rules! conditioned_bijector {
    ($(#[$doc:meta])* $flow:ty, $name:literal, $forward:ident, $inverse:ident) => {
        $(#[$doc])*
        impl Bijector for Conditioned<$flow> {
            const EVENT_RANK: usize = 1;
            const NAME: &'static str = $name;

            fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
                $forward(&self.flow.made, Some(&self.context), x).0
            }
            fn inverse<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
                $inverse(&self.flow.made, Some(&self.context), y).0
            }
            fn forward_log_det_jacobian<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
                $forward(&self.flow.made, Some(&self.context), x).1
            }
            fn inverse_log_det_jacobian<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
                $inverse(&self.flow.made, Some(&self.context), y).1
            }
            fn forward_and_log_det<const D: usize>(
                &self,
                x: Tensor<D>,
            ) -> (Tensor<D>, Tensor<D>) {
                $forward(&self.flow.made, Some(&self.context), x)
            }
            /// The network's parameters and the context, detached.
            fn detach(&self) -> Self {
                Self {
                    flow: self.flow.detach(),
                    context: self.context.clone().detach(),
                }
            }
            fn check_image<const D: usize>(&self, y: &Tensor<D>) -> Result<()> {
                check_values(Self::NAME, "ℝᴷ (finite)", y, f64::is_finite)
            }
            /// The last dimension must be `K`, and the context `[B, C]` with `B` the dimension
            /// before.
            fn check_shape(&self, context: &'static str, shape: &Shape) -> Result<()> {
                self.flow.made.check_shape(
                    concat!($name, " event size"),
                    context,
                    shape,
                    Some(self.context.dims()),
                )
            }
        }
    };
}

conditioned_bijector!(
    /// The conditioned IAF: [`InverseAutoregressiveFlow`]'s maps with the context.
    InverseAutoregressiveFlow,
    "InverseAutoregressiveFlow",
    iaf_forward,
    iaf_inverse
);
conditioned_bijector!(
    /// The conditioned MAF: [`MaskedAutoregressiveFlow`]'s maps with the context.
    MaskedAutoregressiveFlow,
    "MaskedAutoregressiveFlow",
    maf_forward,
    maf_inverse
);
