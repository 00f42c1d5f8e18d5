//! The backend extension: the fused operations on `Flex`, and on `Autodiff<Flex>` with their
//! backward pass.

use super::cpu;
use super::ops::{self, Formula};
use super::{Binary, Quaternary, Ternary, Unary};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::{Shape, TensorData};
use core::marker::PhantomData;

/// Fused element-wise operations, implemented for `Flex` and `Autodiff<Flex>`.
#[backend_extension(Flex, Autodiff)]
pub(crate) trait FusedKernels: Backend {
    /// A fused one-input formula.
    fn fused_unary(op: Unary, a: FloatTensor<Self>) -> FloatTensor<Self>;
    /// A fused two-input formula.
    fn fused_binary(op: Binary, a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;
    /// A fused three-input formula.
    fn fused_ternary(
        op: Ternary,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// A fused four-input formula.
    fn fused_quaternary(
        op: Quaternary,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        d: FloatTensor<Self>,
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

/// The forward pass on plain `Flex` tensors.
fn forward<F: Formula<N>, const N: usize>(f: &F, inputs: [FlexTensor; N]) -> FlexTensor {
    let inputs = inputs.map(contiguous);
    let shape = out_shape(&inputs);
    let n = shape.num_elements();
    let values = cpu::forward(f, core::array::from_fn(|k| slice(&inputs[k])), n);
    tensor(values, shape)
}

/// Runs a formula on a set of inputs: plain `Flex` tensors, or `Autodiff<Flex>` tensors with
/// the backward step recorded. The tables below map each operation to its formula once, for
/// both.
trait Apply<const N: usize> {
    type Out;
    fn apply<F: Formula<N>>(self, f: F) -> Self::Out;
}

struct Plain<const N: usize>([FlexTensor; N]);

impl<const N: usize> Apply<N> for Plain<N> {
    type Out = FlexTensor;
    fn apply<F: Formula<N>>(self, f: F) -> FlexTensor {
        forward(&f, self.0)
    }
}

/// `C` is the checkpoint strategy, which the tensor type itself does not name.
struct Tracked<C: CheckpointStrategy, const N: usize>([AdTensor<C>; N], PhantomData<C>);

impl<C: CheckpointStrategy, const N: usize> Apply<N> for Tracked<C, N> {
    type Out = AdTensor<C>;
    fn apply<F: Formula<N>>(self, f: F) -> AdTensor<C> {
        forward_ad::<F, C, N>(f, self.0)
    }
}

fn apply_unary<A: Apply<1>>(op: Unary, a: A) -> A::Out {
    match op {
        Unary::Log => a.apply(ops::Log),
        Unary::Softplus => a.apply(ops::Softplus),
        Unary::Sigmoid => a.apply(ops::Sigmoid),
        Unary::Logit => a.apply(ops::Logit),
        Unary::Tanh => a.apply(ops::Tanh),
        Unary::Elu(alpha) => a.apply(ops::Elu { alpha }),
    }
}

fn apply_binary<A: Apply<2>>(op: Binary, a: A) -> A::Out {
    match op {
        Binary::BernoulliLogProb => a.apply(ops::BernoulliLogProb),
        Binary::BinConcreteLogProb(temperature) => a.apply(ops::BinConcreteLogProb { temperature }),
        Binary::BinConcreteRsample(temperature) => a.apply(ops::BinConcreteRsample { temperature }),
    }
}

fn apply_ternary<A: Apply<3>>(op: Ternary, a: A) -> A::Out {
    match op {
        Ternary::NormalLogProb => a.apply(ops::NormalLogProb),
        Ternary::LogisticLogProb => a.apply(ops::LogisticLogProb),
    }
}

fn apply_quaternary<A: Apply<4>>(op: Quaternary, a: A) -> A::Out {
    match op {
        Quaternary::NormalKl => a.apply(ops::NormalKl),
    }
}

impl FusedKernels for Flex {
    fn fused_unary(op: Unary, a: FlexTensor) -> FlexTensor {
        apply_unary(op, Plain([a]))
    }

    fn fused_binary(op: Binary, a: FlexTensor, b: FlexTensor) -> FlexTensor {
        apply_binary(op, Plain([a, b]))
    }

    fn fused_ternary(op: Ternary, a: FlexTensor, b: FlexTensor, c: FlexTensor) -> FlexTensor {
        apply_ternary(op, Plain([a, b, c]))
    }

    fn fused_quaternary(
        op: Quaternary,
        a: FlexTensor,
        b: FlexTensor,
        c: FlexTensor,
        d: FlexTensor,
    ) -> FlexTensor {
        apply_quaternary(op, Plain([a, b, c, d]))
    }
}

/// The backward step of a fused formula: its inputs are its state.
#[derive(Debug)]
struct FusedBackward<F>(F);

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
        let out = cpu::backward(
            &self.0,
            core::array::from_fn(|k| slice(&inputs[k])),
            slice(&grad),
            needed,
        );
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
) -> AdTensor<C> {
    let guards = inputs.each_ref().map(|t| t.node());
    let prims = inputs.map(|t| contiguous(t.into_primitive()));
    let output = forward(&f, prims.clone());
    match FusedBackward(f)
        .prepare::<C>(guards)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(prims, output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

impl<C: CheckpointStrategy> FusedKernels for Autodiff<Flex, C> {
    fn fused_unary(op: Unary, a: AdTensor<C>) -> AdTensor<C> {
        apply_unary(op, Tracked::<C, _>([a], PhantomData))
    }

    fn fused_binary(op: Binary, a: AdTensor<C>, b: AdTensor<C>) -> AdTensor<C> {
        apply_binary(op, Tracked::<C, _>([a, b], PhantomData))
    }

    fn fused_ternary(op: Ternary, a: AdTensor<C>, b: AdTensor<C>, c: AdTensor<C>) -> AdTensor<C> {
        apply_ternary(op, Tracked::<C, _>([a, b, c], PhantomData))
    }

    fn fused_quaternary(
        op: Quaternary,
        a: AdTensor<C>,
        b: AdTensor<C>,
        c: AdTensor<C>,
        d: AdTensor<C>,
    ) -> AdTensor<C> {
        apply_quaternary(op, Tracked::<C, _>([a, b, c, d], PhantomData))
    }
}
