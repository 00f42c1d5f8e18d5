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

impl FusedKernels for Flex {
    fn fused_unary(op: Unary, a: FlexTensor) -> FlexTensor {
        match op {
            Unary::Log => forward(&ops::Log, [a]),
            Unary::Softplus => forward(&ops::Softplus, [a]),
            Unary::Sigmoid => forward(&ops::Sigmoid, [a]),
            Unary::Logit => forward(&ops::Logit, [a]),
            Unary::Tanh => forward(&ops::Tanh, [a]),
            Unary::Elu(alpha) => forward(&ops::Elu { alpha }, [a]),
        }
    }

    fn fused_binary(op: Binary, a: FlexTensor, b: FlexTensor) -> FlexTensor {
        match op {
            Binary::BernoulliLogProb => forward(&ops::BernoulliLogProb, [a, b]),
            Binary::BinConcreteLogProb(temperature) => {
                forward(&ops::BinConcreteLogProb { temperature }, [a, b])
            }
            Binary::BinConcreteRsample(temperature) => {
                forward(&ops::BinConcreteRsample { temperature }, [a, b])
            }
        }
    }

    fn fused_ternary(op: Ternary, a: FlexTensor, b: FlexTensor, c: FlexTensor) -> FlexTensor {
        match op {
            Ternary::NormalLogProb => forward(&ops::NormalLogProb, [a, b, c]),
            Ternary::LogisticLogProb => forward(&ops::LogisticLogProb, [a, b, c]),
        }
    }

    fn fused_quaternary(
        op: Quaternary,
        a: FlexTensor,
        b: FlexTensor,
        c: FlexTensor,
        d: FlexTensor,
    ) -> FlexTensor {
        match op {
            Quaternary::NormalKl => forward(&ops::NormalKl, [a, b, c, d]),
        }
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
        match op {
            Unary::Log => forward_ad::<_, C, _>(ops::Log, [a]),
            Unary::Softplus => forward_ad::<_, C, _>(ops::Softplus, [a]),
            Unary::Sigmoid => forward_ad::<_, C, _>(ops::Sigmoid, [a]),
            Unary::Logit => forward_ad::<_, C, _>(ops::Logit, [a]),
            Unary::Tanh => forward_ad::<_, C, _>(ops::Tanh, [a]),
            Unary::Elu(alpha) => forward_ad::<_, C, _>(ops::Elu { alpha }, [a]),
        }
    }

    fn fused_binary(op: Binary, a: AdTensor<C>, b: AdTensor<C>) -> AdTensor<C> {
        match op {
            Binary::BernoulliLogProb => forward_ad::<_, C, _>(ops::BernoulliLogProb, [a, b]),
            Binary::BinConcreteLogProb(temperature) => {
                forward_ad::<_, C, _>(ops::BinConcreteLogProb { temperature }, [a, b])
            }
            Binary::BinConcreteRsample(temperature) => {
                forward_ad::<_, C, _>(ops::BinConcreteRsample { temperature }, [a, b])
            }
        }
    }

    fn fused_ternary(op: Ternary, a: AdTensor<C>, b: AdTensor<C>, c: AdTensor<C>) -> AdTensor<C> {
        match op {
            Ternary::NormalLogProb => forward_ad::<_, C, _>(ops::NormalLogProb, [a, b, c]),
            Ternary::LogisticLogProb => forward_ad::<_, C, _>(ops::LogisticLogProb, [a, b, c]),
        }
    }

    fn fused_quaternary(
        op: Quaternary,
        a: AdTensor<C>,
        b: AdTensor<C>,
        c: AdTensor<C>,
        d: AdTensor<C>,
    ) -> AdTensor<C> {
        match op {
            Quaternary::NormalKl => forward_ad::<_, C, _>(ops::NormalKl, [a, b, c, d]),
        }
    }
}
