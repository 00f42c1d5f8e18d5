//! Learnable normalizing flows: the masked autoencoder [`Made`] (Germain et al. 2015) and the
//! affine autoregressive bijectors built on it, [`InverseAutoregressiveFlow`] (Kingma et al.
//! 2016: one-pass sampling, the posterior of a VAE) and [`MaskedAutoregressiveFlow`]
//! (Papamakarios et al. 2017: one-pass density). Both are burn [`Module`]s, trained with any
//! burn optimizer, and [`Bijector`]s of event rank 1, used in a
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

/// The configuration of a [`Made`]: the event size `K` and the widths of the hidden layers.
///
/// # Formula
/// Degrees: input `i` has degree `i + 1` (`1..=K`); hidden unit `j` of every hidden layer has
/// degree `(j mod max(K − 1, 1)) + 1`, in `[1, K − 1]` (a fixed, deterministic assignment);
/// output `k` of each head has degree `k + 1`. A hidden weight from degree `a` to degree `b` is
/// kept when `b ≥ a`, an output weight when `b > a`, so that output `k` depends only on the
/// inputs `< k`.
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
        let mut degrees: Vec<f32> = (1..=k).map(|d| d as f32).collect();
        let mut layers = Vec::new();
        let mut masks = Vec::new();
        for &width in &self.hidden {
            let out: Vec<f32> = (0..width).map(hidden_degree).collect();
            masks.push(mask(&degrees, &out, false, device));
            layers.push(LinearConfig::new(degrees.len(), width).init(device));
            degrees = out;
        }
        let out: Vec<f32> = (0..2 * k).map(|o| (o % k + 1) as f32).collect();
        masks.push(mask(&degrees, &out, true, device));
        layers.push(
            LinearConfig::new(degrees.len(), 2 * k)
                .with_initializer(Initializer::Zeros)
                .init(device),
        );
        Made {
            layers,
            masks,
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
        let k = self.event_size;
        let shape = x.shape();
        assert!(
            D >= 1 && shape[D - 1] == k,
            "Made: the last dimension of the input must be the event size {k}, got shape {:?}",
            shape.as_slice()
        );
        let n = shape.num_elements() / k;
        let mut h: Tensor<2> = x.reshape([n, k]);
        let last = self.layers.len() - 1;
        for (i, (layer, m)) in self.layers.iter().zip(&self.masks).enumerate() {
            let w = layer.weight.val() * m.clone();
            h = linear(h, w, layer.bias.as_ref().map(|b| b.val()));
            if i < last {
                h = relu(h);
            }
        }
        let shift = h.clone().slice([0..n, 0..k]).reshape(shape.clone());
        let log_scale = h.slice([0..n, k..2 * k]).reshape(shape);
        (shift, log_scale)
    }

    /// The shift and the soft-clamped log-scale `L tanh(s / L)`.
    fn shift_log_scale<const D: usize>(&self, z: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
        let (shift, raw) = self.forward(z);
        (shift, (raw / LOG_SCALE_BOUND).tanh() * LOG_SCALE_BOUND)
    }

    /// The same network with its parameters detached from the autodiff graph.
    fn detached(&self) -> Self {
        struct Detach;
        impl ModuleMapper for Detach {
            fn map_float<const D: usize>(
                &mut self,
                param: ModuleParam<Tensor<D>>,
            ) -> ModuleParam<Tensor<D>> {
                ModuleParam::initialized(param.id, param.val().detach())
            }
        }
        self.clone().map(&mut Detach)
    }

    fn check_shape(&self, name: &'static str, context: &'static str, shape: &Shape) -> Result<()> {
        let d = shape.num_dims();
        if d >= 1 && shape[d - 1] == self.event_size {
            Ok(())
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
}

impl Bijector for InverseAutoregressiveFlow {
    const EVENT_RANK: usize = 1;
    const NAME: &'static str = "InverseAutoregressiveFlow";

    /// `x ⊙ σ(x) + μ(x)`: one pass.
    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let (shift, log_scale) = self.made.shift_log_scale(x.clone());
        x * log_scale.exp() + shift
    }

    /// `K` sequential passes (see the type's formula).
    fn inverse<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        iaf_inverse(&self.made, y).0
    }

    /// `Σₖ ln σₖ(x)`, keepdim: one pass.
    fn forward_log_det_jacobian<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.made.shift_log_scale(x).1.sum_dim(D - 1)
    }

    /// `−Σₖ ln σₖ(f⁻¹(y))`, from the last of the inverse's `K` passes.
    fn inverse_log_det_jacobian<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        -iaf_inverse(&self.made, y).1.sum_dim(D - 1)
    }

    fn detach(&self) -> Self {
        Self {
            made: self.made.detached(),
        }
    }

    fn check_image<const D: usize>(&self, y: &Tensor<D>) -> Result<()> {
        check_values(Self::NAME, "ℝᴷ (finite)", y, f64::is_finite)
    }

    /// The last dimension must be the event size `K`.
    fn check_shape(&self, context: &'static str, shape: &Shape) -> Result<()> {
        self.made
            .check_shape("InverseAutoregressiveFlow event size", context, shape)
    }
}

/// `(x, ln σ(x))` with `x = f⁻¹(y)` of the IAF, by `K` passes.
fn iaf_inverse<const D: usize>(made: &Made, y: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
    let mut x = y.zeros_like();
    let mut log_scale = y.zeros_like();
    for _ in 0..made.event_size() {
        let (shift, ls) = made.shift_log_scale(x);
        x = (y.clone() - shift) * (-ls.clone()).exp();
        log_scale = ls;
    }
    (x, log_scale)
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
}

impl Bijector for MaskedAutoregressiveFlow {
    const EVENT_RANK: usize = 1;
    const NAME: &'static str = "MaskedAutoregressiveFlow";

    /// `K` sequential passes (see the type's formula).
    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        maf_forward(&self.made, x).0
    }

    /// `(y − μ(y)) ⊙ σ(y)⁻¹`: one pass.
    fn inverse<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        let (shift, log_scale) = self.made.shift_log_scale(y.clone());
        (y - shift) * (-log_scale).exp()
    }

    /// `Σₖ ln σₖ(f(x))`, from the last of the forward's `K` passes.
    fn forward_log_det_jacobian<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        maf_forward(&self.made, x).1.sum_dim(D - 1)
    }

    /// `−Σₖ ln σₖ(y)`: one pass.
    fn inverse_log_det_jacobian<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        -self.made.shift_log_scale(y).1.sum_dim(D - 1)
    }

    fn detach(&self) -> Self {
        Self {
            made: self.made.detached(),
        }
    }

    fn check_image<const D: usize>(&self, y: &Tensor<D>) -> Result<()> {
        check_values(Self::NAME, "ℝᴷ (finite)", y, f64::is_finite)
    }

    /// The last dimension must be the event size `K`.
    fn check_shape(&self, context: &'static str, shape: &Shape) -> Result<()> {
        self.made
            .check_shape("MaskedAutoregressiveFlow event size", context, shape)
    }
}

/// `(y, ln σ(y))` with `y = f(x)` of the MAF, by `K` passes.
fn maf_forward<const D: usize>(made: &Made, x: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
    let mut y = x.zeros_like();
    let mut log_scale = x.zeros_like();
    for _ in 0..made.event_size() {
        let (shift, ls) = made.shift_log_scale(y);
        y = x.clone() * ls.clone().exp() + shift;
        log_scale = ls;
    }
    (y, log_scale)
}
