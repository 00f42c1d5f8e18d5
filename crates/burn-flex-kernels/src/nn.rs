//! Faster convolutions and dense layers for the CPU: drop-in replacements for burn's `conv2d`,
//! `conv_transpose2d` and `linear`, the same followed by an activation as one operation
//! ([`conv2d_relu`], [`conv_transpose2d_relu`], [`linear_then`]), and [`FastConv`] and
//! [`FastLinear`] to run burn's own `Conv2d` / `ConvTranspose2d` / `Linear` modules through
//! them. The dense layers are described at [`linear_then`]; the rest of this page is about the
//! convolutions.
//!
//! On the `flex` backend (float32, groups 1, dilation 1) the forward pass and both gradients
//! run as one matrix product per image (an im2col patch matrix times the weight), split over
//! threads by image; 3 × 3, stride-1 layers use Winograd's F(2×2, 3×3) (16 products over many
//! images, 2.25 times fewer multiplications; on AVX-512 CPUs its transforms run in registers
//! for images up to 14 wide) when both sides have 16 channels or more, and a direct kernel when
//! one side has at most 4. On CPUs with AVX-512 the other layers (the strided ones) run as
//! implicit matrix products that read the padded image in place instead of a patch matrix,
//! the input gradient one stride phase at a time. The fused ReLU is applied as each image's output is written, and its
//! gradient mask in the pass that sums the bias gradient. burn-flex 0.22 computes the weight
//! gradient as a convolution whose kernel is the whole output gradient, a badly shaped product
//! that made the convolutional VAE's training step several times slower than its forward
//! pass. Everywhere
//! else (other backends, other dtypes, grouped or dilated convolutions, or with
//! [`crate::set_fused_kernels`]`(false)`) these functions call burn's, so results agree on
//! every backend to float32 rounding.
//!
//! The formulas, for one image with the weight `W` seen as an `o × (c·kh·kw)` matrix and
//! `col(x)` the matrix of input patches (one column per output pixel, zeros in the padding):
//!
//! - forward: `y = W·col(x) + b`
//! - gradients: `∂x = col⁻¹(Wᵀ·∂y)` (each patch entry added back where it was read),
//!   `∂W = Σ ∂y·col(x)ᵀ`, `∂b = Σ ∂y` (sums over images and pixels)
//!
//! and the transposed convolution is the adjoint of the convolution with the same weight:
//! `y = col⁻¹(Wᵀ·x) + b`.
//!
//! # Example
//! ```
//! use burn::nn::conv::Conv2dConfig;
//! use burn::nn::PaddingConfig2d;
//! use burn::tensor::{Device, Distribution, Tensor};
//! use burn_flex_kernels::nn::FastConv;
//!
//! let device = Device::flex();
//! let conv = Conv2dConfig::new([1, 8], [3, 3])
//!     .with_padding(PaddingConfig2d::Same)
//!     .init(&device);
//! let x = Tensor::<4>::random([2, 1, 28, 28], Distribution::Default, &device);
//! let fast = conv.forward_fast(x.clone());
//! let reference = conv.forward(x);
//! assert_eq!(fast.dims(), [2, 8, 28, 28]);
//! let gap: f32 = (fast - reference).abs().max().into_scalar();
//! assert!(gap < 1e-5);
//! ```

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::Tensor;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{activation, module};

use crate::device::{f32_on_flex, fused_kernels_enabled};
use crate::ext::ConvKind;
use crate::layer::ConvGeometry;

mod linear;
pub use crate::layer::Activation;
pub use linear::{FastLinear, linear, linear_then};

/// The output size of a convolution along one axis, if the padded input holds the kernel.
fn conv_out(
    size: usize,
    kernel: usize,
    stride: usize,
    (begin, end): (usize, usize),
) -> Option<usize> {
    (size + begin + end)
        .checked_sub(kernel)
        .map(|s| s / stride + 1)
}

/// A 2-D convolution, as [`burn::tensor::module::conv2d`]: `x` is
/// `[batch, channels_in, height, width]`, `weight` `[channels_out, channels_in, kh, kw]`, `bias`
/// `[channels_out]`; the result is `[batch, channels_out, height_out, width_out]`.
///
/// Runs the crate's kernels on `flex` (see the [module documentation](self)); anything they do
/// not cover, including shapes that do not fit, goes to burn's `conv2d` unchanged.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    conv2d_then(x, weight, bias, options, false)
}

/// `relu(conv2d(x, weight, bias, options))` as one operation: on `flex` the ReLU is applied
/// to the convolution's output as it is written, and its backward pass (the output gradient
/// set to 0 where the output is 0) runs inside the convolution's. Everywhere else it is burn's
/// `conv2d` followed by burn's `relu`.
///
/// ```
/// use burn::tensor::activation::relu;
/// use burn::tensor::ops::ConvOptions;
/// use burn::tensor::{Device, Distribution, Tensor};
/// use burn_flex_kernels::nn::{conv2d, conv2d_relu};
///
/// let device = Device::flex();
/// let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Default, &device);
/// let w = Tensor::<4>::random([4, 3, 3, 3], Distribution::Default, &device);
/// let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
/// let fused = conv2d_relu(x.clone(), w.clone(), None, options.clone());
/// let separate = relu(conv2d(x, w, None, options));
/// let gap: f32 = (fused - separate).abs().max().into_scalar();
/// assert!(gap == 0.0);
/// ```
pub fn conv2d_relu(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    conv2d_then(x, weight, bias, options, true)
}

/// [`conv2d`], followed by a ReLU when `relu`.
fn conv2d_then(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
    relu: bool,
) -> Tensor<4> {
    let [batch, c, h, w] = x.dims();
    let [o, c_w, kh, kw] = weight.dims();
    let shapes_fit = c == c_w && bias.as_ref().is_none_or(|b| b.dims() == [o]);
    let geometry = match (
        conv_out(h, kh, options.stride[0], options.padding[0]),
        conv_out(w, kw, options.stride[1], options.padding[1]),
    ) {
        (Some(oh), Some(ow)) if shapes_fit && options.groups == 1 && options.dilation == [1, 1] => {
            Some(ConvGeometry {
                batch,
                c,
                h,
                w,
                o,
                oh,
                ow,
                kh,
                kw,
                sh: options.stride[0],
                sw: options.stride[1],
                ph: options.padding[0].0,
                pw: options.padding[1].0,
            })
        }
        _ => None,
    };
    run_kernels((false, relu), geometry, (x, weight, bias), |x, w, b| {
        module::conv2d(x, w, b, options)
    })
}

/// Runs the crate's kernels for `geometry` (a missing bias as zeros) when there is one, it is
/// not empty and the tensors are on flex; otherwise `burn_op`, burn's own operation. A ReLU
/// follows when `relu`.
fn run_kernels(
    (transposed, relu): (bool, bool),
    geometry: Option<ConvGeometry>,
    (x, weight, bias): (Tensor<4>, Tensor<4>, Option<Tensor<1>>),
    burn_op: impl FnOnce(Tensor<4>, Tensor<4>, Option<Tensor<1>>) -> Tensor<4>,
) -> Tensor<4> {
    let burn_then = |x, weight, bias| {
        let y = burn_op(x, weight, bias);
        if relu { activation::relu(y) } else { y }
    };
    let Some(g) = geometry.filter(|g| !g.is_empty()) else {
        return burn_then(x, weight, bias);
    };
    let channels = if transposed { g.c } else { g.o };
    let bias = bias.unwrap_or_else(|| Tensor::zeros([channels], &x.device()));
    match convolution((transposed, relu), (x, weight, bias), g) {
        Ok(y) => y,
        Err((x, weight, bias)) => burn_then(x, weight, Some(bias)),
    }
}

/// A 2-D transposed convolution, as [`burn::tensor::module::conv_transpose2d`]: `x` is
/// `[batch, channels_in, height, width]`, `weight` `[channels_in, channels_out, kh, kw]`,
/// `bias` `[channels_out]`; the result is `[batch, channels_out, height_out, width_out]` with
/// `height_out = (height − 1)·stride − 2·padding + kh + padding_out`.
///
/// Runs the crate's kernels on `flex` (see the [module documentation](self)); anything they do
/// not cover goes to burn's `conv_transpose2d` unchanged.
pub fn conv_transpose2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvTransposeOptions<2>,
) -> Tensor<4> {
    conv_transpose2d_then(x, weight, bias, options, false)
}

/// `relu(conv_transpose2d(x, weight, bias, options))` as one operation, as [`conv2d_relu`]
/// is for [`conv2d`].
pub fn conv_transpose2d_relu(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvTransposeOptions<2>,
) -> Tensor<4> {
    conv_transpose2d_then(x, weight, bias, options, true)
}

/// [`conv_transpose2d`], followed by a ReLU when `relu`.
fn conv_transpose2d_then(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvTransposeOptions<2>,
    relu: bool,
) -> Tensor<4> {
    let [batch, o, oh, ow] = x.dims();
    let [o_w, c, kh, kw] = weight.dims();
    let [sh, sw] = options.stride;
    let [ph, pw] = options.padding;
    let [qh, qw] = options.padding_out;
    let out = |size: usize, stride: usize, kernel: usize, pad: usize, pad_out: usize| {
        ((size.max(1) - 1) * stride + kernel + pad_out).checked_sub(2 * pad)
    };
    let fits = o == o_w
        && bias.as_ref().is_none_or(|b| b.dims() == [c])
        && options.groups == 1
        && options.dilation == [1, 1]
        && qh < sh
        && qw < sw;
    let geometry = match (out(oh, sh, kh, ph, qh), out(ow, sw, kw, pw, qw)) {
        (Some(h), Some(w)) if fits => Some(ConvGeometry {
            batch,
            c,
            h,
            w,
            o,
            oh,
            ow,
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
        }),
        _ => None,
    };
    run_kernels((true, relu), geometry, (x, weight, bias), |x, w, b| {
        module::conv_transpose2d(x, w, b, options)
    })
}

/// Runs burn's convolution modules through [`conv2d`] and [`conv_transpose2d`]: the same
/// parameters, padding rules and results as their `forward`, faster on `flex`.
pub trait FastConv {
    /// The module's forward pass through this crate's convolution kernels.
    fn forward_fast(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_fast_then(x, false)
    }

    /// `relu(forward(x))` through [`conv2d_relu`] or [`conv_transpose2d_relu`]: the ReLU and
    /// its gradient run inside the convolution.
    fn forward_fast_relu(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_fast_then(x, true)
    }

    /// The forward pass through this crate's kernels, followed by a ReLU when `relu`.
    fn forward_fast_then(&self, x: Tensor<4>, relu: bool) -> Tensor<4>;
}

/// burn's padding for `PaddingConfig2d::Same` (TF's rule: the output is `ceil(size / stride)`,
/// the extra row or column of padding goes after).
fn same_padding(kernel: usize, stride: usize, size: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = if out > 0 {
        ((out - 1) * stride + kernel).saturating_sub(size)
    } else {
        0
    };
    (total / 2, total - total / 2)
}

impl FastConv for Conv2d {
    fn forward_fast_then(&self, x: Tensor<4>, relu: bool) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let padding = match &self.padding {
            PaddingConfig2d::Valid => [(0, 0), (0, 0)],
            PaddingConfig2d::Same => [
                same_padding(self.kernel_size[0], self.stride[0], h),
                same_padding(self.kernel_size[1], self.stride[1], w),
            ],
            PaddingConfig2d::Explicit(top, left, bottom, right) => {
                [(*top, *bottom), (*left, *right)]
            }
        };
        let options =
            ConvOptions::new_with_padding(self.stride, padding, self.dilation, self.groups);
        conv2d_then(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            options,
            relu,
        )
    }
}

impl FastConv for ConvTranspose2d {
    fn forward_fast_then(&self, x: Tensor<4>, relu: bool) -> Tensor<4> {
        let options = ConvTransposeOptions::new(
            self.stride,
            self.padding,
            self.padding_out,
            self.dilation,
            self.groups,
        );
        conv_transpose2d_then(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            options,
            relu,
        )
    }
}

/// Whether the layer kernels (convolutions and dense layers) take these inputs: fused kernels on
/// and all three float32 tensors on `flex`.
fn layer_applies<const DX: usize, const DW: usize>(
    x: &Tensor<DX>,
    w: &Tensor<DW>,
    b: &Tensor<1>,
) -> bool {
    fused_kernels_enabled() && f32_on_flex(x) && f32_on_flex(w) && f32_on_flex(b)
}

/// Runs the convolution kernels (the transposed convolution when `transposed`,
/// followed by a ReLU when `relu`), or returns the inputs when they are not all float32
/// tensors on `flex` (or the fused kernels are off). The caller has checked the shapes against
/// `geometry`.
#[allow(clippy::type_complexity)]
fn convolution(
    (transposed, relu): (bool, bool),
    inputs: (Tensor<4>, Tensor<4>, Tensor<1>),
    geometry: ConvGeometry,
) -> Result<Tensor<4>, (Tensor<4>, Tensor<4>, Tensor<1>)> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
    let (x, w, b) = inputs;
    if !layer_applies(&x, &w, &b) {
        return Err((x, w, b));
    }
    let (x, w, b) = (x.into_dispatch(), w.into_dispatch(), b.into_dispatch());
    let kind = ConvKind { transposed, relu };
    Ok(Tensor::from_dispatch(
        <Dispatch as FusedKernels>::fused_conv(x, w, b, geometry, kind),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
    use burn::tensor::{Device, TensorData};

    /// Deterministic values in `[-1, 1]` (no RNG state involved).
    pub(super) fn spread(n: usize, seed: u32) -> Vec<f32> {
        crate::tests::spread(n, -1.0, 1.0, seed)
    }

    pub(super) fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    /// Ours against burn's, within 2e-5 of the largest magnitude of burn's (at least 1).
    pub(super) fn assert_close(what: &str, got: &[f32], want: &[f32]) {
        crate::tests::assert_close_scaled(what, got, want, 2e-5, ("ours", "burn's"));
    }

    /// The output and the gradients of `Σ r·out` (fixed weights `r`) with respect to the
    /// input, the weight and the bias.
    type Run = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

    fn run(
        device: &Device,
        shapes: ([usize; 4], [usize; 4], usize),
        op: &dyn Fn(Tensor<4>, Tensor<4>, Tensor<1>) -> Tensor<4>,
    ) -> Run {
        let (xs, ws, bs) = shapes;
        let make = |shape: [usize; 4], seed| {
            let n = shape.iter().product();
            Tensor::<4>::from_data(TensorData::new(spread(n, seed), shape), device).require_grad()
        };
        let x = make(xs, 1);
        let w = make(ws, 2);
        let b = Tensor::<1>::from_data(TensorData::new(spread(bs, 3), [bs]), device).require_grad();
        let y = op(x.clone(), w.clone(), b.clone());
        let r = Tensor::<4>::from_data(
            TensorData::new(spread(y.shape().num_elements(), 4), y.dims()),
            device,
        );
        let grads = (y.clone() * r).sum().backward();
        (
            values(y),
            values(x.grad(&grads).expect("x grad")),
            values(w.grad(&grads).expect("w grad")),
            values(b.grad(&grads).expect("b grad")),
        )
    }

    /// Ours on flex against burn's own operation on ndarray: values and all three gradients.
    fn compare(
        name: &str,
        shapes: ([usize; 4], [usize; 4], usize),
        ours: &dyn Fn(Tensor<4>, Tensor<4>, Tensor<1>) -> Tensor<4>,
        burns: &dyn Fn(Tensor<4>, Tensor<4>, Tensor<1>) -> Tensor<4>,
    ) {
        let got = run(&Device::flex().autodiff(), shapes, ours);
        // burn-ndarray is deprecated upstream but an independent implementation of burn's ops.
        #[allow(deprecated)]
        let want = run(&Device::ndarray().autodiff(), shapes, burns);
        assert_close(&format!("{name}: output"), &got.0, &want.0);
        assert_close(&format!("{name}: input gradient"), &got.1, &want.1);
        assert_close(&format!("{name}: weight gradient"), &got.2, &want.2);
        assert_close(&format!("{name}: bias gradient"), &got.3, &want.3);
    }

    #[test]
    fn conv2d_equals_burns_values_and_gradients() {
        // (batch, c, h, w, o, kernel, stride, padding (top, bottom), (left, right))
        let cases = [
            (3, 3, 7, 6, 5, [3, 3], [1, 1], [(1, 1), (1, 1)]),
            // Keras' "same" at stride 2: the extra padding row and column go after.
            (9, 4, 8, 8, 6, [3, 3], [2, 2], [(0, 1), (0, 1)]),
            (2, 2, 9, 7, 3, [2, 3], [2, 1], [(0, 2), (1, 0)]),
            (5, 1, 6, 6, 4, [3, 3], [1, 1], [(0, 0), (0, 0)]),
            (4, 6, 5, 5, 1, [1, 1], [1, 1], [(0, 0), (0, 0)]),
            // Padding wider than the kernel reach: whole rows of zeros.
            (2, 2, 4, 5, 3, [3, 2], [3, 2], [(3, 2), (2, 3)]),
            // Rows longer than one 16-value block.
            (2, 2, 3, 37, 3, [3, 3], [1, 1], [(1, 1), (1, 1)]),
            // Winograd's F(2×2, 3×3) (3 × 3, stride 1, 16 channels or more): odd output sizes,
            // no padding, asymmetric padding.
            (2, 16, 9, 11, 24, [3, 3], [1, 1], [(0, 0), (0, 0)]),
            (3, 17, 6, 7, 16, [3, 3], [1, 1], [(0, 2), (1, 0)]),
            // The conv VAE's encoder layers.
            (3, 1, 28, 28, 32, [3, 3], [1, 1], [(1, 1), (1, 1)]),
            (3, 32, 28, 28, 64, [3, 3], [2, 2], [(0, 1), (0, 1)]),
            (3, 64, 14, 14, 64, [3, 3], [1, 1], [(1, 1), (1, 1)]),
            (3, 32, 28, 28, 1, [3, 3], [1, 1], [(1, 1), (1, 1)]),
        ];
        for (batch, c, h, w, o, k, stride, padding) in cases {
            let options = ConvOptions::new_with_padding(stride, padding, [1, 1], 1);
            let name = format!(
                "conv2d {batch}x{c}x{h}x{w} → {o}, kernel {k:?}, stride {stride:?}, padding {padding:?}"
            );
            let ours = |x, w, b| conv2d(x, w, Some(b), options.clone());
            let burns = |x, w, b| module::conv2d(x, w, Some(b), options.clone());
            let shapes = ([batch, c, h, w], [o, c, k[0], k[1]], o);
            compare(&name, shapes, &ours, &burns);
            let ours = |x, w, b| conv2d_relu(x, w, Some(b), options.clone());
            let burns = |x, w, b| activation::relu(module::conv2d(x, w, Some(b), options.clone()));
            compare(&format!("{name}, ReLU"), shapes, &ours, &burns);
        }
    }

    #[test]
    fn conv_transpose2d_equals_burns_values_and_gradients() {
        // (batch, c_in, h, w, c_out, kernel, stride, padding, padding_out)
        let cases = [
            // The conv VAE's decoder layer, small: stride 2, padding 1, padding_out 1.
            (3, 4, 5, 5, 3, [3, 3], [2, 2], [1, 1], [1, 1]),
            (3, 64, 14, 14, 32, [3, 3], [2, 2], [1, 1], [1, 1]),
            (9, 3, 4, 6, 2, [3, 3], [1, 1], [1, 1], [0, 0]),
            // Stride 1 with 16 channels or more: Winograd's F(2×2, 3×3).
            (3, 16, 6, 5, 20, [3, 3], [1, 1], [1, 1], [0, 0]),
            (2, 2, 3, 4, 5, [2, 2], [2, 2], [0, 0], [0, 0]),
            (2, 5, 4, 3, 1, [3, 2], [2, 3], [0, 1], [1, 2]),
            (1, 1, 1, 1, 2, [3, 3], [1, 1], [0, 0], [0, 0]),
        ];
        for (batch, c_in, h, w, c_out, k, stride, padding, padding_out) in cases {
            let options = ConvTransposeOptions::new(stride, padding, padding_out, [1, 1], 1);
            let name = format!(
                "conv_transpose2d {batch}x{c_in}x{h}x{w} → {c_out}, kernel {k:?}, stride {stride:?}, padding {padding:?}, out {padding_out:?}"
            );
            let ours = |x, w, b| conv_transpose2d(x, w, Some(b), options.clone());
            let burns = |x, w, b| module::conv_transpose2d(x, w, Some(b), options.clone());
            let shapes = ([batch, c_in, h, w], [c_in, c_out, k[0], k[1]], c_out);
            compare(&name, shapes, &ours, &burns);
            let ours = |x, w, b| conv_transpose2d_relu(x, w, Some(b), options.clone());
            let burns = |x, w, b| {
                activation::relu(module::conv_transpose2d(x, w, Some(b), options.clone()))
            };
            compare(&format!("{name}, ReLU"), shapes, &ours, &burns);
        }
    }

    #[test]
    #[allow(deprecated)] // burn-ndarray: the backend without the kernels
    fn the_kernels_run_on_flex_and_hand_back_elsewhere() {
        let g = ConvGeometry {
            batch: 2,
            c: 3,
            h: 5,
            w: 5,
            o: 4,
            oh: 5,
            ow: 5,
            kh: 3,
            kw: 3,
            sh: 1,
            sw: 1,
            ph: 1,
            pw: 1,
        };
        let inputs = |device: &Device| {
            (
                Tensor::<4>::zeros([2, 3, 5, 5], device),
                Tensor::<4>::zeros([4, 3, 3, 3], device),
                Tensor::<1>::zeros([4], device),
            )
        };
        for device in [Device::flex(), Device::flex().autodiff()] {
            let y = convolution((false, false), inputs(&device), g);
            assert!(y.is_ok(), "flex: the kernels run");
        }
        let y = convolution((false, false), inputs(&Device::ndarray()), g);
        assert!(
            y.is_err(),
            "ndarray: the inputs come back for burn's conv2d"
        );
    }

    #[test]
    fn the_modules_fast_forward_equals_their_forward() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(
            TensorData::new(spread(2 * 3 * 28 * 28, 5), [2, 3, 28, 28]),
            &device,
        );
        for padding in [
            PaddingConfig2d::Same,
            PaddingConfig2d::Valid,
            PaddingConfig2d::Explicit(2, 0, 1, 3),
        ] {
            for stride in [[1, 1], [2, 2], [3, 1]] {
                let conv = Conv2dConfig::new([3, 4], [3, 3])
                    .with_stride(stride)
                    .with_padding(padding.clone())
                    .init(&device);
                let what = format!("Conv2d padding {padding:?} stride {stride:?}");
                assert_close(
                    &what,
                    &values(conv.forward_fast(x.clone())),
                    &values(conv.forward(x.clone())),
                );
                assert_close(
                    &format!("{what}, ReLU"),
                    &values(conv.forward_fast_relu(x.clone())),
                    &values(activation::relu(conv.forward(x.clone()))),
                );
            }
        }
        let up = ConvTranspose2dConfig::new([3, 2], [3, 3])
            .with_stride([2, 2])
            .with_padding([1, 1])
            .with_padding_out([1, 1])
            .init(&device);
        let got = up.forward_fast(x.clone());
        assert_eq!(got.dims(), [2, 2, 56, 56]);
        assert_close(
            "ConvTranspose2d",
            &values(got),
            &values(up.forward(x.clone())),
        );
        assert_close(
            "ConvTranspose2d, ReLU",
            &values(up.forward_fast_relu(x.clone())),
            &values(activation::relu(up.forward(x))),
        );
        // Not covered by the kernels (dilation 2): burn's own path, same result.
        let dilated = Conv2dConfig::new([3, 4], [3, 3])
            .with_dilation([2, 2])
            .init(&device);
        let x = Tensor::<4>::from_data(
            TensorData::new(spread(2 * 3 * 9 * 9, 6), [2, 3, 9, 9]),
            &device,
        );
        assert_close(
            "dilated Conv2d",
            &values(dilated.forward_fast(x.clone())),
            &values(dilated.forward(x.clone())),
        );
        assert_close(
            "dilated Conv2d, ReLU",
            &values(dilated.forward_fast_relu(x.clone())),
            &values(activation::relu(dilated.forward(x))),
        );
    }
}
