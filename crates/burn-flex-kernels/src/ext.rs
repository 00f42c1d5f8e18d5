//! The backend extension: the fused operations on `Flex`, and on `Autodiff<Flex>` with their
//! backward pass.

use super::adam::{self, AdamStep};
use super::conv::{self, Epilogue, Geometry};
use super::cpu;
use super::dense::{self, Activation, Dims};
use super::gamma_sampler;
use super::implicit;
use super::ops::{self, Binary, Formula, Quaternary, Ternary, Unary};
use super::reduce;
use super::softmax;
use super::tril;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Flex, backend_extension};
use burn::tensor::{Shape, TensorData};
use core::marker::PhantomData;

/// Fused element-wise operations, implemented for `Flex` and `Autodiff<Flex>`.
#[backend_extension(Flex, Autodiff)]
pub(crate) trait FusedKernels: Backend {
    /// A fused one-input formula.
    fn fused_unary(op: Unary, a: FloatTensor<Self>) -> FloatTensor<Self>;
    /// A fused two-input formula.
    fn fused_binary(op: Binary, a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;
    /// A fused two-input formula summed over trailing dimensions: `out_shape` is the output
    /// shape with those dimensions set to 1 (the output is not empty).
    fn fused_binary_summed(
        op: Binary,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        out_shape: Shape,
    ) -> FloatTensor<Self>;
    /// A fused three-input formula.
    fn fused_ternary(
        op: Ternary,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// A fused three-input formula summed over trailing dimensions (see
    /// [`fused_binary_summed`](FusedKernels::fused_binary_summed)).
    fn fused_ternary_summed(
        op: Ternary,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        out_shape: Shape,
    ) -> FloatTensor<Self>;
    /// A fused four-input formula.
    fn fused_quaternary(
        op: Quaternary,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        d: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// With `kind.transposed == false`, the 2-D convolution (groups 1, dilation 1) of `x`
    /// (`[batch, c, h, w]`) with `weight` (`[o, c, kh, kw]`) plus `bias` (`[o]`):
    /// `[batch, o, oh, ow]`; with `kind.transposed`, the transposed convolution of the same
    /// geometry: `x` (`[batch, o, oh, ow]`) with `weight` (`[o, c, kh, kw]`) plus `bias` (`[c]`):
    /// `[batch, c, h, w]`. Followed by a ReLU when `kind.relu`.
    fn fused_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: Geometry,
        kind: ConvKind,
    ) -> FloatTensor<Self>;
    /// The dense layer `act(x·W + b)`: `x` is `[n, d_in]`, `weight` `[d_in, d_out]`, `bias`
    /// `[d_out]`; the result is `[n, d_out]`.
    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self>;
    /// `t` summed over its trailing dimensions: `out_shape` is `t`'s shape with those
    /// dimensions set to 1 (`t` is not empty).
    fn fused_row_sums(t: FloatTensor<Self>, out_shape: Shape) -> FloatTensor<Self>;
    /// `t` repeated `times` times along dimension 0 (`t` is not empty, `times > 0`).
    fn fused_tile(t: FloatTensor<Self>, times: usize) -> FloatTensor<Self>;
    /// `ln softmax(logits[r, ·])[index[r]]` per row: `logits` `[rows, k]`, `index` `[rows]`
    /// (classes as float whole numbers; any other value gives `−∞`), the result `[rows]`.
    /// Differentiable in `logits` only.
    fn fused_log_softmax_gather(
        logits: FloatTensor<Self>,
        index: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// `dz/dα` of `Gamma(α, 1)` samples `z` (both of one shape). The result carries no
    /// gradient.
    fn fused_standard_gamma_grad(
        alpha: FloatTensor<Self>,
        z: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// `[dz/da, dz/db]` of `Beta(a, b)` samples `z` (all three of one shape). The results
    /// carry no gradient.
    fn fused_beta_sample_grad(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        z: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
    /// One `Gamma(α, 1)` draw per element of `alpha` for the generator key `key`. The result
    /// carries no gradient.
    fn fused_standard_gamma(alpha: FloatTensor<Self>, key: u64) -> FloatTensor<Self>;
    /// `−½‖L⁻¹(x − μ)‖² − Σₖ ln Lₖₖ` for each row `x[s, b]` with `μ = loc[b]` and
    /// `L = scale_tril[b]`: `loc` `[B, K]`, `scale_tril` `[B, K, K]` (lower triangle read), `x`
    /// `[S, B, K]`, the result `[S, B]`.
    fn fused_tril_log_prob(
        loc: FloatTensor<Self>,
        scale_tril: FloatTensor<Self>,
        x: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// `μ + L ε` for each row `ε = noise[s, b]` with `μ = loc[b]` and `L = scale_tril[b]`:
    /// shapes as [`fused_tril_log_prob`](FusedKernels::fused_tril_log_prob), the result
    /// `[S, B, K]`.
    fn fused_tril_affine(
        loc: FloatTensor<Self>,
        scale_tril: FloatTensor<Self>,
        noise: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("contiguous float32 input")
}

/// The broadcast output shape: the largest extent of each axis.
fn out_shape<const N: usize>(inputs: &[FlexTensor; N]) -> Shape {
    let rank = inputs[0].layout().shape().num_dims();
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            inputs
                .iter()
                .map(|t| t.layout().shape()[i])
                .max()
                .unwrap_or(1)
        })
        .collect();
    Shape::from(dims)
}

fn tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The forward pass on plain `Flex` tensors: the values, or with `summed` (the output shape
/// with the trailing dimensions set to 1) their sums over those dimensions.
fn forward<F: Formula<N>, const N: usize>(
    f: &F,
    inputs: [FlexTensor; N],
    summed: Option<Shape>,
) -> FlexTensor {
    let inputs = inputs.map(contiguous);
    let shape = out_shape(&inputs);
    let n = shape.num_elements();
    let slices = core::array::from_fn(|k| slice(&inputs[k]));
    match summed {
        None => tensor(cpu::forward(f, slices, n), shape),
        Some(rows) => {
            let cols = n / rows.num_elements();
            tensor(cpu::forward_row_sums(f, slices, n, cols), rows)
        }
    }
}

/// Runs a formula on a set of inputs: plain `Flex` tensors, or `Autodiff<Flex>` tensors with
/// the backward step recorded. The tables below map each operation to its formula once, for
/// both.
trait Apply<const N: usize> {
    type Out;
    fn apply<F: Formula<N>>(self, f: F) -> Self::Out;
}

/// The inputs, and the output shape when the values are summed over trailing dimensions.
struct Plain<const N: usize>([FlexTensor; N], Option<Shape>);

impl<const N: usize> Apply<N> for Plain<N> {
    type Out = FlexTensor;
    fn apply<F: Formula<N>>(self, f: F) -> FlexTensor {
        forward(&f, self.0, self.1)
    }
}

/// `C` is the checkpoint strategy, which the tensor type itself does not name.
struct Tracked<C: CheckpointStrategy, const N: usize>(
    [AdTensor<C>; N],
    Option<Shape>,
    PhantomData<C>,
);

impl<C: CheckpointStrategy, const N: usize> Apply<N> for Tracked<C, N> {
    type Out = AdTensor<C>;
    fn apply<F: Formula<N>>(self, f: F) -> AdTensor<C> {
        forward_ad::<F, C, N>(f, self.0, self.1)
    }
}

fn apply_unary<A: Apply<1>>(op: Unary, a: A) -> A::Out {
    match op {
        Unary::LogPlus(c) => a.apply(ops::LogPlus { c }),
        Unary::Softplus => a.apply(ops::Softplus),
        Unary::Sigmoid => a.apply(ops::Sigmoid),
        Unary::Logit => a.apply(ops::Logit),
        Unary::Tanh => a.apply(ops::Tanh),
        Unary::Elu(alpha) => a.apply(ops::Elu { alpha }),
        Unary::Lgamma => a.apply(ops::Lgamma),
        Unary::CauchyQuantile => a.apply(ops::CauchyQuantile),
    }
}

fn apply_binary<A: Apply<2>>(op: Binary, a: A) -> A::Out {
    match op {
        Binary::BernoulliLogProb => a.apply(ops::BernoulliLogProb),
        Binary::BinConcreteLogProb(temperature) => a.apply(ops::BinConcreteLogProb { temperature }),
        Binary::BinConcreteRsample(temperature) => a.apply(ops::BinConcreteRsample { temperature }),
        Binary::ContinuousBernoulliLogProb => a.apply(ops::ContinuousBernoulliLogProb),
        Binary::PoissonLogProb => a.apply(ops::PoissonLogProb),
        Binary::ExponentialLogProb => a.apply(ops::ExponentialLogProb),
        Binary::ContinuousBernoulliIcdf => a.apply(ops::ContinuousBernoulliIcdf),
        Binary::HalfNormalLogProb => a.apply(ops::HalfNormalLogProb),
        Binary::GeometricLogProb => a.apply(ops::GeometricLogProb),
    }
}

fn apply_ternary<A: Apply<3>>(op: Ternary, a: A) -> A::Out {
    match op {
        Ternary::NormalLogProb => a.apply(ops::NormalLogProb),
        Ternary::LogisticLogProb => a.apply(ops::LogisticLogProb),
        Ternary::GumbelLogProb => a.apply(ops::GumbelLogProb),
        Ternary::CauchyLogProb => a.apply(ops::CauchyLogProb),
        Ternary::BinomialLogProb => a.apply(ops::BinomialLogProb),
        Ternary::LaplaceLogProb => a.apply(ops::LaplaceLogProb),
        Ternary::LaplaceRsample => a.apply(ops::LaplaceRsample),
        Ternary::LogNormalLogProb => a.apply(ops::LogNormalLogProb),
        Ternary::LogNormalRsample => a.apply(ops::LogNormalRsample),
        Ternary::UniformLogProb => a.apply(ops::UniformLogProb),
        Ternary::GammaLogProb => a.apply(ops::GammaLogProb),
        Ternary::BetaLogProb => a.apply(ops::BetaLogProb),
    }
}

fn apply_quaternary<A: Apply<4>>(op: Quaternary, a: A) -> A::Out {
    match op {
        Quaternary::NormalKl => a.apply(ops::NormalKl),
        Quaternary::StudentTLogProb => a.apply(ops::StudentTLogProb),
    }
}

impl FusedKernels for Flex {
    fn fused_unary(op: Unary, a: FlexTensor) -> FlexTensor {
        apply_unary(op, Plain([a], None))
    }

    fn fused_binary(op: Binary, a: FlexTensor, b: FlexTensor) -> FlexTensor {
        apply_binary(op, Plain([a, b], None))
    }

    fn fused_ternary(op: Ternary, a: FlexTensor, b: FlexTensor, c: FlexTensor) -> FlexTensor {
        apply_ternary(op, Plain([a, b, c], None))
    }

    fn fused_binary_summed(op: Binary, a: FlexTensor, b: FlexTensor, out: Shape) -> FlexTensor {
        apply_binary(op, Plain([a, b], Some(out)))
    }

    fn fused_ternary_summed(
        op: Ternary,
        a: FlexTensor,
        b: FlexTensor,
        c: FlexTensor,
        out: Shape,
    ) -> FlexTensor {
        apply_ternary(op, Plain([a, b, c], Some(out)))
    }

    fn fused_quaternary(
        op: Quaternary,
        a: FlexTensor,
        b: FlexTensor,
        c: FlexTensor,
        d: FlexTensor,
    ) -> FlexTensor {
        apply_quaternary(op, Plain([a, b, c, d], None))
    }

    fn fused_conv(
        x: FlexTensor,
        w: FlexTensor,
        b: FlexTensor,
        g: Geometry,
        kind: ConvKind,
    ) -> FlexTensor {
        conv_forward(&g, kind, &contiguous(x), &contiguous(w), &contiguous(b))
    }

    fn fused_linear(x: FlexTensor, w: FlexTensor, b: FlexTensor, act: Activation) -> FlexTensor {
        linear_forward(act, &contiguous(x), &contiguous(w), &contiguous(b))
    }

    fn fused_row_sums(t: FlexTensor, out_shape: Shape) -> FlexTensor {
        row_sums_forward(&contiguous(t), out_shape)
    }

    fn fused_tile(t: FlexTensor, times: usize) -> FlexTensor {
        tile_forward(&contiguous(t), times)
    }

    fn fused_log_softmax_gather(logits: FlexTensor, index: FlexTensor) -> FlexTensor {
        log_softmax_gather_forward(&contiguous(logits), &contiguous(index)).0
    }

    fn fused_standard_gamma_grad(alpha: FlexTensor, z: FlexTensor) -> FlexTensor {
        let (alpha, z) = (contiguous(alpha), contiguous(z));
        let shape = z.layout().shape().clone();
        tensor(
            implicit::standard_gamma_grad(slice(&alpha), slice(&z)),
            shape,
        )
    }

    fn fused_beta_sample_grad(
        a: FlexTensor,
        b: FlexTensor,
        z: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        let [a, b, z] = [a, b, z].map(contiguous);
        let shape = z.layout().shape().clone();
        let (da, db) = implicit::beta_sample_grad(slice(&a), slice(&b), slice(&z));
        (tensor(da, shape.clone()), tensor(db, shape))
    }

    fn fused_standard_gamma(alpha: FlexTensor, key: u64) -> FlexTensor {
        let alpha = contiguous(alpha);
        let shape = alpha.layout().shape().clone();
        tensor(gamma_sampler::standard_gamma(slice(&alpha), key), shape)
    }

    fn fused_tril_log_prob(loc: FlexTensor, scale_tril: FlexTensor, x: FlexTensor) -> FlexTensor {
        tril_forward(TrilKind::LogProb, &[loc, scale_tril, x].map(contiguous))
    }

    fn fused_tril_affine(loc: FlexTensor, scale_tril: FlexTensor, noise: FlexTensor) -> FlexTensor {
        tril_forward(TrilKind::Affine, &[loc, scale_tril, noise].map(contiguous))
    }
}

/// Which batched triangular kernel runs (see [`tril`]).
#[derive(Clone, Copy, Debug)]
enum TrilKind {
    /// `−½‖L⁻¹(x − μ)‖² − Σₖ ln Lₖₖ`, one value per row.
    LogProb,
    /// `μ + L ε`, `K` values per row.
    Affine,
}

/// A batched triangular kernel on contiguous `[loc, scale_tril, values]` (`[B, K]`,
/// `[B, K, K]`, `[S, B, K]`).
fn tril_forward(kind: TrilKind, inputs: &[FlexTensor; 3]) -> FlexTensor {
    let [loc, l, v] = inputs;
    let shape = v.layout().shape().clone();
    let k = shape[2];
    match kind {
        TrilKind::LogProb => tensor(
            tril::log_prob(slice(loc), slice(l), slice(v), k),
            Shape::new([shape[0], shape[1]]),
        ),
        TrilKind::Affine => tensor(tril::affine(slice(loc), slice(l), slice(v), k), shape),
    }
}

/// The backward step of a batched triangular kernel: its (contiguous) inputs are its state.
#[derive(Debug)]
struct TrilBackward {
    kind: TrilKind,
}

impl Backward<Flex, 3> for TrilBackward {
    type State = [FlexTensor; 3];

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let inputs = ops.state;
        let needed = ops.parents.each_ref().map(Option::is_some);
        let [loc, l, v] = &inputs;
        let k = loc.layout().shape()[1];
        let gradient = match self.kind {
            TrilKind::LogProb => tril::log_prob_grad,
            TrilKind::Affine => tril::affine_grad,
        };
        let out = gradient(slice(loc), slice(l), slice(v), k, slice(&grad), needed);
        for ((parent, g), input) in ops.parents.into_iter().zip(out).zip(&inputs) {
            if let (Some(node), Some(g)) = (parent, g) {
                grads.register::<Flex>(node.id, tensor(g, input.layout().shape().clone()));
            }
        }
    }
}

/// A batched triangular kernel with autodiff: records [`TrilBackward`] when any input is
/// tracked.
fn tril_ad<C: CheckpointStrategy>(kind: TrilKind, inputs: [AdTensor<C>; 3]) -> AdTensor<C> {
    let guards = inputs.each_ref().map(|t| t.node());
    let prims = inputs.map(|t| contiguous(t.into_primitive()));
    let output = tril_forward(kind, &prims);
    match (TrilBackward { kind })
        .prepare::<C>(guards)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(prims, output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// [`softmax::log_softmax_gather`] on contiguous tensors: `[rows, k]` and `[rows]` → `[rows]`,
/// with the rows' normalizers (`[rows]`).
fn log_softmax_gather_forward(logits: &FlexTensor, index: &FlexTensor) -> (FlexTensor, FlexTensor) {
    let shape = index.layout().shape().clone();
    let k = logits.layout().shape().num_elements() / shape.num_elements();
    let (out, norms) = softmax::log_softmax_gather(slice(logits), k, slice(index));
    (tensor(out, shape.clone()), tensor(norms, shape))
}

/// The backward step of [`log_softmax_gather_forward`]: the logits, classes and normalizers
/// are its state.
#[derive(Debug)]
struct LogSoftmaxGatherBackward;

impl Backward<Flex, 1> for LogSoftmaxGatherBackward {
    type State = (FlexTensor, FlexTensor, FlexTensor);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let [parent] = ops.parents;
        if let Some(node) = parent {
            let (logits, index, norms) = ops.state;
            let shape = logits.layout().shape().clone();
            let k = shape.num_elements() / index.layout().shape().num_elements();
            let g = softmax::log_softmax_gather_grad(
                slice(&logits),
                k,
                slice(&index),
                slice(&norms),
                slice(&grad),
            );
            grads.register::<Flex>(node.id, tensor(g, shape));
        }
    }
}

/// Fused optimizer updates, implemented for `Flex` (optimizers update the parameters' inner,
/// non-autodiff tensors).
#[backend_extension(Flex)]
pub(crate) trait FusedOptim: Backend {
    /// One Adam update: the new parameter, first moment and second moment.
    fn fused_adam(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// `t` as a contiguous tensor that owns its buffer alone, so that it can be updated in place
/// (copied only when it is shared or strided).
fn owned(t: FlexTensor) -> FlexTensor {
    let mut t = contiguous(t);
    let whole = t.layout().contiguous_offsets() == Some((0, t.layout().shape().num_elements()));
    if !(whole && t.try_storage_mut::<f32>().is_some()) {
        t = tensor(slice(&t).to_vec(), t.layout().shape().clone());
    }
    t
}

/// The values of a tensor from [`owned`] (its buffer may be longer than the tensor).
fn values_mut(t: &mut FlexTensor) -> &mut [f32] {
    let n = t.layout().shape().num_elements();
    let values = t
        .try_storage_mut::<f32>()
        .expect("owned() returned a tensor with its own buffer");
    &mut values[..n]
}

impl FusedOptim for Flex {
    fn fused_adam(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        step: AdamStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let grad = contiguous(grad);
        let (mut p, mut m, mut v) = (owned(param), owned(moment_1), owned(moment_2));
        adam::adam(
            &step,
            values_mut(&mut p),
            slice(&grad),
            values_mut(&mut m),
            values_mut(&mut v),
        );
        (p, m, v)
    }
}

/// Which convolution an operation runs, and whether a ReLU follows it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvKind {
    /// `false`: the convolution (image side in, feature side out); `true`: the transposed
    /// convolution (feature side in, image side out).
    pub transposed: bool,
    /// Whether the output is `max(0, ·)` of the convolution's.
    pub relu: bool,
}

/// The convolution or transposed convolution of contiguous tensors (see [`ConvKind`]).
fn conv_forward(
    g: &Geometry,
    kind: ConvKind,
    x: &FlexTensor,
    w: &FlexTensor,
    b: &FlexTensor,
) -> FlexTensor {
    if kind.transposed {
        let mut y = conv::input_grad(g, slice(x), slice(w));
        conv::add_channel_bias(&mut y, slice(b), g.h * g.w, kind.relu);
        tensor(y, Shape::new([g.batch, g.c, g.h, g.w]))
    } else {
        let out = Epilogue {
            bias: Some(slice(b)),
            relu: kind.relu,
        };
        let y = conv::forward(g, slice(x), slice(w), out);
        tensor(y, Shape::new([g.batch, g.o, g.oh, g.ow]))
    }
}

/// The backward step of a convolution or transposed convolution; its state is the (contiguous)
/// input and weight, and the output when a ReLU follows the convolution.
#[derive(Debug)]
struct ConvBackward {
    geometry: Geometry,
    kind: ConvKind,
}

impl Backward<Flex, 3> for ConvBackward {
    type State = (FlexTensor, FlexTensor, Option<FlexTensor>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let g = &self.geometry;
        let (x, w, y) = ops.state;
        let mut dy = owned(grads.consume::<Flex>(&ops.node));
        let [px, pw, pb] = ops.parents;
        let bias_channels = if self.kind.transposed { g.c } else { g.o };
        // Through the ReLU first (no gradient where its output is 0), in the pass that sums
        // the bias gradient.
        let db = (pb.is_some() || y.is_some()).then(|| {
            let relu_output = y.as_ref().map(slice);
            conv::channel_sums(values_mut(&mut dy), relu_output, g.batch, bias_channels)
        });
        let (dy, x, w) = (slice(&dy), slice(&x), slice(&w));
        let image = Shape::new([g.batch, g.c, g.h, g.w]);
        let feature = Shape::new([g.batch, g.o, g.oh, g.ow]);
        // The transposed convolution, y = col2im(Wᵀ·x) + b, is the adjoint: x is on the
        // feature side and dy on the image side, so the roles of the two sides swap.
        let transposed = self.kind.transposed;
        let (image_side, feature_side, input_shape) = if transposed {
            (dy, x, feature)
        } else {
            (x, dy, image)
        };
        if let Some(node) = px {
            let dx = if transposed {
                conv::forward(g, dy, w, Epilogue::default())
            } else {
                conv::input_grad(g, dy, w)
            };
            grads.register::<Flex>(node.id, tensor(dx, input_shape));
        }
        if let Some(node) = pw {
            let dw = conv::weight_grad(g, image_side, feature_side);
            grads.register::<Flex>(node.id, tensor(dw, Shape::new([g.o, g.c, g.kh, g.kw])));
        }
        if let (Some(node), Some(db)) = (pb, db) {
            grads.register::<Flex>(node.id, tensor(db, Shape::new([bias_channels])));
        }
    }
}

/// The convolution with autodiff: records [`ConvBackward`] when any input is tracked.
fn conv_ad<C: CheckpointStrategy>(
    g: Geometry,
    kind: ConvKind,
    inputs: [AdTensor<C>; 3],
) -> AdTensor<C> {
    let guards = inputs.each_ref().map(|t| t.node());
    let [x, w, b] = inputs.map(|t| contiguous(t.into_primitive()));
    let output = conv_forward(&g, kind, &x, &w, &b);
    match (ConvBackward { geometry: g, kind })
        .prepare::<C>(guards)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = kind.relu.then(|| output.clone());
            prep.finish((x, w, y), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// The sizes of a dense layer from its (2-D) input and weight.
fn linear_dims(x: &FlexTensor, w: &FlexTensor) -> Dims {
    let (xs, ws) = (x.layout().shape(), w.layout().shape());
    Dims {
        n: xs[0],
        d_in: xs[1],
        d_out: ws[1],
    }
}

/// The dense layer on contiguous tensors.
fn linear_forward(act: Activation, x: &FlexTensor, w: &FlexTensor, b: &FlexTensor) -> FlexTensor {
    let d = linear_dims(x, w);
    let y = dense::forward(d, slice(x), slice(w), slice(b), act);
    tensor(y, Shape::new([d.n, d.d_out]))
}

/// The backward step of a dense layer; its state is the (contiguous) input and weight, and
/// the output when an activation follows the affine map.
#[derive(Debug)]
struct LinearBackward {
    act: Activation,
}

impl Backward<Flex, 3> for LinearBackward {
    type State = (FlexTensor, FlexTensor, Option<FlexTensor>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let (x, w, y) = ops.state;
        let d = linear_dims(&x, &w);
        let mut dy = owned(grads.consume::<Flex>(&ops.node));
        let [px, pw, pb] = ops.parents;
        let db = dense::through_activation(
            d,
            self.act,
            y.as_ref().map(slice),
            values_mut(&mut dy),
            pb.is_some(),
        );
        let dz = slice(&dy);
        if let Some(node) = px {
            let dx = dense::input_grad(d, dz, slice(&w));
            grads.register::<Flex>(node.id, tensor(dx, Shape::new([d.n, d.d_in])));
        }
        if let Some(node) = pw {
            let dw = dense::weight_grad(d, slice(&x), dz);
            grads.register::<Flex>(node.id, tensor(dw, Shape::new([d.d_in, d.d_out])));
        }
        if let (Some(node), Some(db)) = (pb, db) {
            grads.register::<Flex>(node.id, tensor(db, Shape::new([d.d_out])));
        }
    }
}

/// The dense layer with autodiff: records [`LinearBackward`] when any input is tracked.
fn linear_ad<C: CheckpointStrategy>(act: Activation, inputs: [AdTensor<C>; 3]) -> AdTensor<C> {
    let guards = inputs.each_ref().map(|t| t.node());
    let [x, w, b] = inputs.map(|t| contiguous(t.into_primitive()));
    let output = linear_forward(act, &x, &w, &b);
    match (LinearBackward { act })
        .prepare::<C>(guards)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = (act != Activation::Identity).then(|| output.clone());
            prep.finish((x, w, y), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// The sums of a contiguous tensor's rows, `out_shape` giving the rows.
fn row_sums_forward(t: &FlexTensor, out_shape: Shape) -> FlexTensor {
    let cols = t.layout().shape().num_elements() / out_shape.num_elements();
    tensor(reduce::row_sums(slice(t), cols), out_shape)
}

/// A contiguous tensor repeated `times` times along dimension 0.
fn tile_forward(t: &FlexTensor, times: usize) -> FlexTensor {
    let mut dims = t.layout().shape().to_vec();
    dims[0] *= times;
    tensor(reduce::tile(slice(t), times), Shape::from(dims))
}

/// The backward step of a one-input operation that only moves or adds values
/// ([`row_sums_forward`], [`tile_forward`]): `adjoint` maps the output's gradient to the
/// input's, given the input's shape, which is the state.
#[derive(Debug)]
struct AdjointBackward {
    adjoint: fn(&[f32], &Shape) -> Vec<f32>,
}

impl Backward<Flex, 1> for AdjointBackward {
    type State = Shape;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let [parent] = ops.parents;
        if let Some(node) = parent {
            let shape = ops.state;
            let g = (self.adjoint)(slice(&grad), &shape);
            grads.register::<Flex>(node.id, tensor(g, shape));
        }
    }
}

/// Row sums' adjoint: each row's gradient over its row.
fn row_sums_adjoint(g: &[f32], input: &Shape) -> Vec<f32> {
    reduce::broadcast_rows(g, input.num_elements() / g.len())
}

/// Repetition's adjoint: the sum of the repeats' gradients.
fn tile_adjoint(g: &[f32], input: &Shape) -> Vec<f32> {
    reduce::sum_tiles(g, input.num_elements())
}

/// `forward` of the (contiguous) input with autodiff: records [`AdjointBackward`] with
/// `adjoint` when the input is tracked.
fn adjoint_ad<C: CheckpointStrategy>(
    t: AdTensor<C>,
    forward: impl FnOnce(&FlexTensor) -> FlexTensor,
    adjoint: fn(&[f32], &Shape) -> Vec<f32>,
) -> AdTensor<C> {
    let guard = [t.node()];
    let t = contiguous(t.into_primitive());
    let output = forward(&t);
    match (AdjointBackward { adjoint })
        .prepare::<C>(guard)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(t.layout().shape().clone(), output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// The backward step of a fused formula: its inputs are its state. `summed`: the output was
/// summed over trailing dimensions, so its gradient has one value per row.
#[derive(Debug)]
struct FusedBackward<F> {
    f: F,
    summed: bool,
}

impl<F: Formula<N>, const N: usize> Backward<Flex, N> for FusedBackward<F> {
    type State = [FlexTensor; N];

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let inputs = ops.state;
        let needed = ops.parents.each_ref().map(Option::is_some);
        let slices: [&[f32]; N] = core::array::from_fn(|k| slice(&inputs[k]));
        let g = slice(&grad);
        let g = if self.summed {
            // One input spans the whole output (the others repeat within it).
            let n = slices.iter().map(|x| x.len()).max().unwrap_or(0);
            cpu::Grad::Rows(g, n / g.len())
        } else {
            cpu::Grad::Elements(g)
        };
        let out = cpu::backward(&self.f, slices, g, needed);
        for ((parent, g), input) in ops.parents.into_iter().zip(out).zip(&inputs) {
            if let (Some(node), Some(g)) = (parent, g) {
                let shape = input.layout().shape().clone();
                grads.register::<Flex>(node.id, tensor(g, shape));
            }
        }
    }
}

type AdTensor<C> = FloatTensor<Autodiff<Flex, C>>;

/// The forward pass with autodiff: records the formula's backward step when any input is
/// tracked.
fn forward_ad<F: Formula<N>, C: CheckpointStrategy, const N: usize>(
    f: F,
    inputs: [AdTensor<C>; N],
    summed: Option<Shape>,
) -> AdTensor<C> {
    let guards = inputs.each_ref().map(|t| t.node());
    let prims = inputs.map(|t| contiguous(t.into_primitive()));
    let backward = FusedBackward {
        f,
        summed: summed.is_some(),
    };
    let output = forward(&backward.f, prims.clone(), summed);
    match backward.prepare::<C>(guards).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(prims, output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

impl<C: CheckpointStrategy> FusedKernels for Autodiff<Flex, C> {
    fn fused_unary(op: Unary, a: AdTensor<C>) -> AdTensor<C> {
        apply_unary(op, Tracked::<C, _>([a], None, PhantomData))
    }

    fn fused_binary(op: Binary, a: AdTensor<C>, b: AdTensor<C>) -> AdTensor<C> {
        apply_binary(op, Tracked::<C, _>([a, b], None, PhantomData))
    }

    fn fused_ternary(op: Ternary, a: AdTensor<C>, b: AdTensor<C>, c: AdTensor<C>) -> AdTensor<C> {
        apply_ternary(op, Tracked::<C, _>([a, b, c], None, PhantomData))
    }

    fn fused_binary_summed(op: Binary, a: AdTensor<C>, b: AdTensor<C>, out: Shape) -> AdTensor<C> {
        apply_binary(op, Tracked::<C, _>([a, b], Some(out), PhantomData))
    }

    fn fused_ternary_summed(
        op: Ternary,
        a: AdTensor<C>,
        b: AdTensor<C>,
        c: AdTensor<C>,
        out: Shape,
    ) -> AdTensor<C> {
        apply_ternary(op, Tracked::<C, _>([a, b, c], Some(out), PhantomData))
    }

    fn fused_quaternary(
        op: Quaternary,
        a: AdTensor<C>,
        b: AdTensor<C>,
        c: AdTensor<C>,
        d: AdTensor<C>,
    ) -> AdTensor<C> {
        apply_quaternary(op, Tracked::<C, _>([a, b, c, d], None, PhantomData))
    }

    fn fused_conv(
        x: AdTensor<C>,
        w: AdTensor<C>,
        b: AdTensor<C>,
        g: Geometry,
        kind: ConvKind,
    ) -> AdTensor<C> {
        conv_ad::<C>(g, kind, [x, w, b])
    }

    fn fused_linear(
        x: AdTensor<C>,
        w: AdTensor<C>,
        b: AdTensor<C>,
        act: Activation,
    ) -> AdTensor<C> {
        linear_ad::<C>(act, [x, w, b])
    }

    fn fused_row_sums(t: AdTensor<C>, out_shape: Shape) -> AdTensor<C> {
        adjoint_ad::<C>(t, |t| row_sums_forward(t, out_shape), row_sums_adjoint)
    }

    fn fused_tile(t: AdTensor<C>, times: usize) -> AdTensor<C> {
        adjoint_ad::<C>(t, |t| tile_forward(t, times), tile_adjoint)
    }

    fn fused_log_softmax_gather(logits: AdTensor<C>, index: AdTensor<C>) -> AdTensor<C> {
        let guard = [logits.node()];
        let logits = contiguous(logits.into_primitive());
        let index = contiguous(index.into_primitive());
        let (output, norms) = log_softmax_gather_forward(&logits, &index);
        match LogSoftmaxGatherBackward
            .prepare::<C>(guard)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((logits, index, norms), output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn fused_standard_gamma_grad(alpha: AdTensor<C>, z: AdTensor<C>) -> AdTensor<C> {
        let g = Flex::fused_standard_gamma_grad(alpha.into_primitive(), z.into_primitive());
        <Autodiff<Flex, C> as AutodiffBackend>::from_inner(g)
    }

    fn fused_beta_sample_grad(
        a: AdTensor<C>,
        b: AdTensor<C>,
        z: AdTensor<C>,
    ) -> (AdTensor<C>, AdTensor<C>) {
        let (da, db) = Flex::fused_beta_sample_grad(
            a.into_primitive(),
            b.into_primitive(),
            z.into_primitive(),
        );
        let lift = <Autodiff<Flex, C> as AutodiffBackend>::from_inner;
        (lift(da), lift(db))
    }

    fn fused_standard_gamma(alpha: AdTensor<C>, key: u64) -> AdTensor<C> {
        let g = Flex::fused_standard_gamma(alpha.into_primitive(), key);
        <Autodiff<Flex, C> as AutodiffBackend>::from_inner(g)
    }

    fn fused_tril_log_prob(
        loc: AdTensor<C>,
        scale_tril: AdTensor<C>,
        x: AdTensor<C>,
    ) -> AdTensor<C> {
        tril_ad::<C>(TrilKind::LogProb, [loc, scale_tril, x])
    }

    fn fused_tril_affine(
        loc: AdTensor<C>,
        scale_tril: AdTensor<C>,
        noise: AdTensor<C>,
    ) -> AdTensor<C> {
        tril_ad::<C>(TrilKind::Affine, [loc, scale_tril, noise])
    }
}
