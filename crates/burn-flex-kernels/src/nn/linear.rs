//! Dense layers: [`linear`] and [`linear_then`] (an activation fused in), and [`FastLinear`]
//! to run burn's `Linear` module through them.

use burn::nn::Linear;
use burn::tensor::{Tensor, activation, module};

use super::layer_applies;
use crate::formulas::{Unary, unary};
use crate::layer::Activation;

impl Activation {
    /// The activation on its own: one fused pass on `flex` (float32), burn's operations
    /// elsewhere.
    pub fn apply<const D: usize>(self, z: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Identity => z,
            Activation::Relu => activation::relu(z),
            Activation::Tanh => unary(Unary::Tanh, z).unwrap_or_else(Tensor::tanh),
            Activation::Elu(alpha) => {
                unary(Unary::Elu(alpha as f32), z).unwrap_or_else(|z| activation::elu(z, alpha))
            }
        }
    }

    /// Whether the kernels can take its derivative from its output: every activation here but
    /// an ELU with `α ≤ 0` (or NaN), whose output is positive on both sides of 0.
    fn derivative_from_output(self) -> bool {
        match self {
            Activation::Elu(alpha) => alpha > 0.0,
            _ => true,
        }
    }
}

/// A dense layer, as [`burn::tensor::module::linear`]: `x` is `[..., d_in]`, `weight`
/// `[d_in, d_out]`, `bias` `[d_out]`; the result is `x·weight + bias`, `[..., d_out]`.
///
/// On `flex` (float32) it runs the crate's kernels (see [`linear_then`]); everywhere else, and
/// for shapes that do not fit, it is burn's `linear`.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Distribution, Tensor, module};
/// use burn_flex_kernels::nn::linear;
///
/// let device = Device::flex();
/// let x = Tensor::<3>::random([4, 5, 8], Distribution::Default, &device);
/// let w = Tensor::<2>::random([8, 3], Distribution::Default, &device);
/// let b = Tensor::<1>::random([3], Distribution::Default, &device);
/// let y = linear(x.clone(), w.clone(), Some(b.clone()));
/// assert_eq!(y.dims(), [4, 5, 3]);
/// let gap: f32 = (y - module::linear(x, w, Some(b))).abs().max().into_scalar();
/// assert!(gap < 1e-5);
/// ```
pub fn linear<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    linear_then(x, weight, bias, Activation::Identity)
}

/// `activation(x·weight + bias)` as one operation: [`linear`] followed by `activation`.
///
/// On `flex` (float32 tensors) the rows are split over threads, and each thread writes the
/// bias, adds the matrix product onto it and applies the activation while its block of rows is
/// in cache, into a buffer that is not copied again. The backward pass takes the activation's
/// derivative from the layer's output (`1 − y²` for tanh, `y + α` for the ELU below 0) and sums
/// the bias gradient in the same pass:
///
/// - `∂z = ∂y ⊙ act′`, `∂x = ∂z·Wᵀ`, `∂W = xᵀ·∂z`, `∂b = Σ_rows ∂z`.
///
/// Everywhere else (other backends or dtypes, the fused kernels off with
/// [`crate::set_fused_kernels`], an ELU with `α ≤ 0`) it is burn's `linear` followed by the
/// activation as burn operations, with the same results to float32 rounding.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Distribution, Tensor, module};
/// use burn_flex_kernels::nn::{Activation, linear_then};
///
/// let device = Device::flex().autodiff();
/// let x = Tensor::<2>::random([6, 4], Distribution::Default, &device).require_grad();
/// let w = Tensor::<2>::random([4, 3], Distribution::Default, &device).require_grad();
/// let y = linear_then(x.clone(), w.clone(), None, Activation::Tanh);
/// let reference = module::linear(x.clone(), w.clone(), None).tanh();
/// let gap: f32 = (y.clone() - reference).abs().max().into_scalar();
/// assert!(gap < 1e-5);
/// let grads = y.sum().backward();
/// assert_eq!(w.grad(&grads).unwrap().dims(), [4, 3]);
/// ```
pub fn linear_then<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
    activation: Activation,
) -> Tensor<D> {
    let dims = x.dims();
    let [d_in, d_out] = weight.dims();
    let fits = D >= 1
        && dims[D - 1] == d_in
        && bias.as_ref().is_none_or(|b| b.dims() == [d_out])
        && !dims.contains(&0)
        && d_out > 0
        && activation.derivative_from_output();
    if !fits {
        return activation.apply(module::linear(x, weight, bias));
    }
    let n = dims[..D - 1].iter().product();
    let device = x.device();
    let bias = bias.unwrap_or_else(|| Tensor::zeros([d_out], &device));
    let mut out = dims;
    out[D - 1] = d_out;
    match dense_kernels(activation, (x.reshape([n, d_in]), weight, bias)) {
        Ok(y) => y.reshape(out),
        Err((x, weight, bias)) => {
            activation.apply(module::linear(x.reshape(dims), weight, Some(bias)))
        }
    }
}

/// Runs burn's [`Linear`] module through [`linear_then`]: the same parameters and results as
/// its `forward`, faster on `flex`, with an activation fused in.
///
/// # Example
/// ```
/// use burn::nn::LinearConfig;
/// use burn::tensor::{Device, Distribution, Tensor};
/// use burn_flex_kernels::nn::{Activation, FastLinear};
///
/// let device = Device::flex();
/// let layer = LinearConfig::new(8, 3).init(&device);
/// let x = Tensor::<2>::random([5, 8], Distribution::Default, &device);
/// let fast = layer.forward_fast_then(x.clone(), Activation::Relu);
/// let reference = burn::tensor::activation::relu(layer.forward(x));
/// let gap: f32 = (fast - reference).abs().max().into_scalar();
/// assert!(gap < 1e-5);
/// ```
pub trait FastLinear {
    /// The module's forward pass through [`linear`].
    fn forward_fast<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.forward_fast_then(x, Activation::Identity)
    }

    /// `activation(forward(x))` through [`linear_then`].
    fn forward_fast_then<const D: usize>(&self, x: Tensor<D>, activation: Activation) -> Tensor<D>;
}

impl FastLinear for Linear {
    fn forward_fast_then<const D: usize>(&self, x: Tensor<D>, activation: Activation) -> Tensor<D> {
        linear_then(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            activation,
        )
    }
}

/// Runs the dense-layer kernels, `activation(x·weight + bias)` for `x` of `[n, d_in]`, or
/// returns the inputs when they are not all float32 tensors on `flex` (or the fused kernels
/// are off). The caller has checked the shapes.
#[allow(clippy::type_complexity)]
fn dense_kernels(
    activation: Activation,
    inputs: (Tensor<2>, Tensor<2>, Tensor<1>),
) -> Result<Tensor<2>, (Tensor<2>, Tensor<2>, Tensor<1>)> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
    let (x, w, b) = inputs;
    if !layer_applies(&x, &w, &b) {
        return Err((x, w, b));
    }
    let (x, w, b) = (x.into_dispatch(), w.into_dispatch(), b.into_dispatch());
    Ok(Tensor::from_dispatch(
        <Dispatch as FusedKernels>::fused_linear(x, w, b, activation),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::tests::{assert_close, spread, values};
    use burn::nn::{LinearConfig, LinearLayout};
    use burn::tensor::{Device, TensorData};

    /// The output and the gradients of `Σ r·out` (fixed weights `r`) with respect to the
    /// input, the weight and the bias (when there is one).
    type Run = (Vec<f32>, Vec<f32>, Vec<f32>, Option<Vec<f32>>);

    fn run(
        device: &Device,
        (xs, d_out, with_bias): ([usize; 3], usize, bool),
        op: &dyn Fn(Tensor<3>, Tensor<2>, Option<Tensor<1>>) -> Tensor<3>,
    ) -> Run {
        let d_in = xs[2];
        let x = Tensor::<3>::from_data(TensorData::new(spread(xs.iter().product(), 1), xs), device)
            .require_grad();
        let w = Tensor::<2>::from_data(
            TensorData::new(spread(d_in * d_out, 2), [d_in, d_out]),
            device,
        )
        .require_grad();
        let b = with_bias.then(|| {
            Tensor::<1>::from_data(TensorData::new(spread(d_out, 3), [d_out]), device)
                .require_grad()
        });
        let y = op(x.clone(), w.clone(), b.clone());
        let r = Tensor::<3>::from_data(
            TensorData::new(spread(y.shape().num_elements(), 4), y.dims()),
            device,
        );
        let grads = (y.clone() * r).sum().backward();
        (
            values(y),
            values(x.grad(&grads).expect("x grad")),
            values(w.grad(&grads).expect("w grad")),
            b.map(|b| values(b.grad(&grads).expect("b grad"))),
        )
    }

    /// Ours on flex against burn's `linear` and activations on ndarray, values and gradients,
    /// for every activation, with and without a bias, for layers below and above the size at
    /// which the kernels split rows over threads.
    #[test]
    fn linear_then_equals_burns_values_and_gradients() {
        let activations = [
            Activation::Identity,
            Activation::Relu,
            Activation::Tanh,
            Activation::Elu(1.0),
            Activation::Elu(0.3),
            // No derivative from the output: burn's path on both sides.
            Activation::Elu(-0.5),
        ];
        for (xs, d_out) in [
            ([2, 3, 5], 4),
            ([1, 1, 1], 1),
            ([3, 333, 50], 200),
            ([1, 64, 784], 20),
        ] {
            for act in activations {
                for with_bias in [true, false] {
                    let name = format!("{xs:?} → {d_out}, {act:?}, bias {with_bias}");
                    let shapes = (xs, d_out, with_bias);
                    let got = run(&Device::flex().autodiff(), shapes, &|x, w, b| {
                        linear_then(x, w, b, act)
                    });
                    // burn-ndarray is deprecated upstream but an independent implementation.
                    #[allow(deprecated)]
                    let want = run(&Device::ndarray().autodiff(), shapes, &|x, w, b| {
                        act.apply(module::linear(x, w, b))
                    });
                    assert_close(&format!("{name}: output"), &got.0, &want.0);
                    assert_close(&format!("{name}: input gradient"), &got.1, &want.1);
                    assert_close(&format!("{name}: weight gradient"), &got.2, &want.2);
                    if let (Some(g), Some(w)) = (&got.3, &want.3) {
                        assert_close(&format!("{name}: bias gradient"), g, w);
                    }
                }
            }
        }
    }

    #[test]
    #[allow(deprecated)] // burn-ndarray: the backend without the kernels
    fn the_kernels_run_on_flex_and_hand_back_elsewhere() {
        let inputs = |device: &Device| {
            (
                Tensor::<2>::zeros([2, 3], device),
                Tensor::<2>::zeros([3, 4], device),
                Tensor::<1>::zeros([4], device),
            )
        };
        for device in [Device::flex(), Device::flex().autodiff()] {
            let y = dense_kernels(Activation::Tanh, inputs(&device));
            assert!(y.is_ok(), "flex: the kernels run");
        }
        let y = dense_kernels(Activation::Tanh, inputs(&Device::ndarray()));
        assert!(
            y.is_err(),
            "ndarray: the inputs come back for burn's linear"
        );
    }

    /// Both weight layouts (the column layout stores the transposed matrix), ranks 1 to 3, and
    /// shapes the kernels do not take (empty) through burn's path.
    #[test]
    fn the_modules_fast_forward_equals_their_forward() {
        let device = Device::flex();
        for layout in [LinearLayout::Row, LinearLayout::Col] {
            for bias in [true, false] {
                let layer = LinearConfig::new(7, 5)
                    .with_layout(layout)
                    .with_bias(bias)
                    .init(&device);
                let what = format!("{layout:?}, bias {bias}");
                let x1 = Tensor::<1>::from_data(TensorData::new(spread(7, 5), [7]), &device);
                assert_close(
                    &format!("{what}, rank 1"),
                    &values(layer.forward_fast(x1.clone())),
                    &values(layer.forward(x1)),
                );
                let x3 = Tensor::<3>::from_data(
                    TensorData::new(spread(2 * 3 * 7, 6), [2, 3, 7]),
                    &device,
                );
                let fast = layer.forward_fast_then(x3.clone(), Activation::Tanh);
                assert_eq!(fast.dims(), [2, 3, 5]);
                assert_close(
                    &format!("{what}, rank 3, tanh"),
                    &values(fast),
                    &values(layer.forward(x3).tanh()),
                );
                let empty = Tensor::<2>::zeros([0, 7], &device);
                assert_eq!(layer.forward_fast(empty).dims(), [0, 5]);
            }
        }
    }
}
