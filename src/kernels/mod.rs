//! Fused, vectorized element-wise kernels for the CPU (`flex`) backend.
//!
//! burn's CPU backend runs a distribution formula as a chain of separate operations, each a
//! full pass over memory with a new buffer, and evaluates `exp`/`ln` one element at a time.
//! For the formulas that dominate this crate's workloads (log-densities, softplus, the Normal
//! KL, BinConcrete sampling) this module runs the whole formula, and its gradient, in one SIMD
//! pass. It is a burn *backend extension* (`#[backend_extension]`): the kernels exist for the
//! `Flex` backend, with and without autodiff, and every other backend keeps the composite
//! burn-op formula, so results do not depend on the backend beyond float rounding.
//!
//! Callers use [`unary`], [`binary`], [`ternary`] and [`quaternary`]: they return the fused
//! result when every input is a float32 tensor on `flex` (and fused kernels are on, see
//! [`set_fused_kernels`]), and otherwise hand the inputs back for the composite formula.
//! Broadcasting follows burn's rules: an input whose shape is a suffix of the output's runs
//! in place; any other broadcast input is expanded first.

// The `Err` of `unary` … `quaternary` hands the caller its inputs back for the composite
// formula; it is not an error value, and boxing it would cost an allocation per call.
#![allow(clippy::result_large_err)]

use burn::tensor::{Device, Distribution as Init, Tensor};
use core::sync::atomic::{AtomicBool, Ordering};

/// `[attributes] [visibility] fn $name[generics](args) [-> type] => $run` defines `$name`, which
/// calls `$run(args)` compiled for AVX-512, for AVX2 + FMA, or for the baseline target,
/// whichever the CPU has (checked at run time; the check is a cached load). `$run` must be
/// `#[inline(always)]` so that each copy is vectorized for its instruction set.
#[cfg(feature = "flex")]
macro_rules! multiversion {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident [$($gen:tt)*] ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)?
            => $run:ident
    ) => {
        $(#[$attr])*
        $vis fn $name<$($gen)*>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
                fn avx512<$($gen)*>($($arg: $ty),*) $(-> $ret)? {
                    $run($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2<$($gen)*>($($arg: $ty),*) $(-> $ret)? {
                    $run($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                {
                    // SAFETY: the CPU has the features this function was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $run($($arg),*)
        }
    };
}

#[cfg(feature = "flex")]
pub(crate) mod conv;
#[cfg(feature = "flex")]
mod cpu;
mod denormal;
#[cfg(feature = "flex")]
pub(crate) mod dense;
#[cfg(feature = "flex")]
mod direct;
#[cfg(all(feature = "flex", target_arch = "x86_64"))]
mod implicit;
#[cfg(feature = "flex")]
pub(crate) mod ops;
#[cfg(all(feature = "flex", feature = "optim"))]
pub(crate) mod optim;
#[cfg(feature = "flex")]
mod reduce;
#[cfg(feature = "flex")]
mod rng;
#[cfg(feature = "flex")]
mod vmath;
#[cfg(feature = "flex")]
mod winograd;

pub use denormal::set_flush_denormal;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the fused CPU kernels on (the default) or off for the whole process.
///
/// With them off, every formula runs as a chain of ordinary burn operations on every backend.
/// Results agree to float32 rounding either way; this switch exists for benchmarking
/// (`bench_workloads --no-fused`) and for checking the two against each other.
///
/// # Example
/// ```
/// burn_probability::set_fused_kernels(false);
/// assert!(!burn_probability::fused_kernels_enabled());
/// burn_probability::set_fused_kernels(true);
/// ```
pub fn set_fused_kernels(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether the fused CPU kernels are in use (see [`set_fused_kernels`]). Always `false` in a
/// build without the `flex` feature.
pub fn fused_kernels_enabled() -> bool {
    cfg!(feature = "flex") && ENABLED.load(Ordering::Relaxed)
}

/// Fused formulas of one input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Unary {
    /// `ln a + c`: the entropies of location-scale families (`ln σ + const`) in one pass
    LogPlus(f32),
    /// `ln(1 + eᵃ)`
    Softplus,
    /// `1 / (1 + e⁻ᵃ)`
    Sigmoid,
    /// `ln a − ln(1 − a)`
    Logit,
    /// `tanh a`
    Tanh,
    /// ELU with the given `α`: `a` for `a > 0`, else `α(eᵃ − 1)`
    Elu(f32),
}

/// Fused formulas of two inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Binary {
    /// `(logits, value) ↦ value·logits − softplus(logits)`
    BernoulliLogProb,
    /// `(value, logits) ↦` BinConcrete log-density at temperature `t`
    BinConcreteLogProb(f32),
    /// `(logits, noise) ↦ σ((logits + noise)/t)`
    BinConcreteRsample(f32),
}

/// Fused formulas of three inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Ternary {
    /// `(value, loc, scale) ↦` Normal log-density
    NormalLogProb,
    /// `(value, loc, scale) ↦` Logistic log-density
    LogisticLogProb,
}

/// Fused formulas of four inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Quaternary {
    /// `(loc₁, scale₁, loc₂, scale₂) ↦ KL(N(loc₁, scale₁) ‖ N(loc₂, scale₂))`
    NormalKl,
}

/// An input of a summed formula read as if stacked `times` times along dimension 0
/// (`repeat_dim(0, times)`) but not copied: the kernels' inputs may repeat within the output
/// anyway (see `cpu::Input`), so the stacked input is read cyclically in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tiled {
    /// Which input.
    pub input: usize,
    /// How many copies; 1 for none.
    pub times: usize,
}

impl Tiled {
    /// No input is stacked.
    #[cfg_attr(not(feature = "flex"), allow(dead_code))]
    pub const NONE: Tiled = Tiled { input: 0, times: 1 };
}

/// Runs a fused one-input formula, or returns the input for the composite path.
pub(crate) fn unary<const D: usize>(op: Unary, a: Tensor<D>) -> Result<Tensor<D>, Tensor<D>> {
    #[cfg(feature = "flex")]
    {
        use burn::backend::Dispatch;
        use ext::FusedKernels;
        let [a] = prepare([a]).map_err(|[a]| a)?;
        Ok(Tensor::from_dispatch(
            <Dispatch as FusedKernels>::fused_unary(op, a),
        ))
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = op;
        Err(a)
    }
}

/// Runs a fused two-input formula, or returns the inputs for the composite path.
pub(crate) fn binary<const D: usize>(
    op: Binary,
    inputs: [Tensor<D>; 2],
) -> Result<Tensor<D>, [Tensor<D>; 2]> {
    #[cfg(feature = "flex")]
    {
        use burn::backend::Dispatch;
        use ext::FusedKernels;
        let [a, b] = prepare(inputs)?;
        Ok(Tensor::from_dispatch(
            <Dispatch as FusedKernels>::fused_binary(op, a, b),
        ))
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = op;
        Err(inputs)
    }
}

/// Runs a fused two-input formula and sums its values over the dimensions `from..` (kept, with
/// size 1) without writing them out, with the input `tiled` names stacked along dimension 0;
/// or returns the inputs (that one unstacked) for the composite path. `from == D`: no sum.
pub(crate) fn binary_summed<const D: usize>(
    op: Binary,
    inputs: [Tensor<D>; 2],
    from: usize,
    tiled: Tiled,
) -> Result<Tensor<D>, [Tensor<D>; 2]> {
    #[cfg(feature = "flex")]
    {
        use burn::backend::Dispatch;
        use ext::FusedKernels;
        let ([a, b], out) = prepare_tiled(inputs, tiled)?;
        match summed_shape(out, from) {
            Some(_) if from >= D => Ok(Tensor::from_dispatch(
                <Dispatch as FusedKernels>::fused_binary(op, a, b),
            )),
            Some(rows) => Ok(Tensor::from_dispatch(
                <Dispatch as FusedKernels>::fused_binary_summed(op, a, b, rows),
            )),
            None => Err([a, b].map(Tensor::from_dispatch)),
        }
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = (op, from, tiled);
        Err(inputs)
    }
}

/// Runs a fused three-input formula, or returns the inputs for the composite path.
pub(crate) fn ternary<const D: usize>(
    op: Ternary,
    inputs: [Tensor<D>; 3],
) -> Result<Tensor<D>, [Tensor<D>; 3]> {
    #[cfg(feature = "flex")]
    {
        use burn::backend::Dispatch;
        use ext::FusedKernels;
        let [a, b, c] = prepare(inputs)?;
        Ok(Tensor::from_dispatch(
            <Dispatch as FusedKernels>::fused_ternary(op, a, b, c),
        ))
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = op;
        Err(inputs)
    }
}

/// Runs a fused three-input formula summed over the dimensions `from..` with one input
/// stacked (see [`binary_summed`]), or returns the inputs for the composite path.
pub(crate) fn ternary_summed<const D: usize>(
    op: Ternary,
    inputs: [Tensor<D>; 3],
    from: usize,
    tiled: Tiled,
) -> Result<Tensor<D>, [Tensor<D>; 3]> {
    #[cfg(feature = "flex")]
    {
        use burn::backend::Dispatch;
        use ext::FusedKernels;
        let ([a, b, c], out) = prepare_tiled(inputs, tiled)?;
        match summed_shape(out, from) {
            Some(_) if from >= D => Ok(Tensor::from_dispatch(
                <Dispatch as FusedKernels>::fused_ternary(op, a, b, c),
            )),
            Some(rows) => Ok(Tensor::from_dispatch(
                <Dispatch as FusedKernels>::fused_ternary_summed(op, a, b, c, rows),
            )),
            None => Err([a, b, c].map(Tensor::from_dispatch)),
        }
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = (op, from, tiled);
        Err(inputs)
    }
}

/// Runs a fused four-input formula, or returns the inputs for the composite path.
pub(crate) fn quaternary<const D: usize>(
    op: Quaternary,
    inputs: [Tensor<D>; 4],
) -> Result<Tensor<D>, [Tensor<D>; 4]> {
    #[cfg(feature = "flex")]
    {
        use burn::backend::Dispatch;
        use ext::FusedKernels;
        let [a, b, c, d] = prepare(inputs)?;
        Ok(Tensor::from_dispatch(
            <Dispatch as FusedKernels>::fused_quaternary(op, a, b, c, d),
        ))
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = op;
        Err(inputs)
    }
}

/// `t` summed over its dimensions `from..` (kept, with size 1) in one pass of [`reduce`], with
/// a backward pass that writes each row's gradient over its row; or `t` back for burn's
/// `sum_dim` when it is not a non-empty float32 tensor on `flex` (or the kernels are off).
pub(crate) fn sum_trailing<const D: usize>(
    t: Tensor<D>,
    from: usize,
) -> Result<Tensor<D>, Tensor<D>> {
    #[cfg(feature = "flex")]
    {
        use burn::backend::Dispatch;
        use ext::FusedKernels;
        let rows = match summed_shape(t.dims(), from) {
            Some(rows) if fused_kernels_enabled() && f32_on_flex(&t) => rows,
            _ => return Err(t),
        };
        Ok(Tensor::from_dispatch(
            <Dispatch as FusedKernels>::fused_row_sums(t.into_dispatch(), rows),
        ))
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = from;
        Err(t)
    }
}

/// `t` repeated `times` times along dimension 0 (`repeat_dim(0, times)`) in one copy split over
/// the threads of [`reduce`]; or `t` back for burn's `repeat_dim` when it is not a non-empty
/// float32 tensor on `flex` (or the kernels are off).
pub(crate) fn repeat_leading<const D: usize>(
    t: Tensor<D>,
    times: usize,
) -> Result<Tensor<D>, Tensor<D>> {
    #[cfg(feature = "flex")]
    {
        use burn::backend::Dispatch;
        use ext::FusedKernels;
        if !fused_kernels_enabled()
            || !f32_on_flex(&t)
            || t.shape().num_elements() == 0
            || times == 0
        {
            return Err(t);
        }
        Ok(Tensor::from_dispatch(
            <Dispatch as FusedKernels>::fused_tile(t.into_dispatch(), times),
        ))
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = times;
        Err(t)
    }
}

/// Standard normal noise of shape `dims`: the vectorized generator on `flex`, burn's
/// `Tensor::random` elsewhere. Either way the values follow `device.seed(..)`.
pub(crate) fn standard_normal<const D: usize>(dims: [usize; D], device: &Device) -> Tensor<D> {
    noise(Noise::StandardNormal, dims, device)
}

/// Uniform noise in the open interval (0, 1) of shape `dims` (23-bit resolution on `flex`,
/// burn's `Tensor::random` on `[f32::MIN_POSITIVE, 1)` elsewhere).
pub(crate) fn uniform_open<const D: usize>(dims: [usize; D], device: &Device) -> Tensor<D> {
    noise(Noise::UniformOpen, dims, device)
}

/// Standard logistic noise `ln u − ln(1 − u)` of shape `dims`: one vectorized pass on `flex`;
/// elsewhere burn's uniform, kept inside `(0, 1)`, through [`crate::math::logit`].
pub(crate) fn standard_logistic<const D: usize>(dims: [usize; D], device: &Device) -> Tensor<D> {
    noise(Noise::StandardLogistic, dims, device)
}

#[derive(Clone, Copy)]
enum Noise {
    StandardNormal,
    UniformOpen,
    StandardLogistic,
}

/// The vectorized generator on `flex`, keyed by one two-value draw from burn's seeded
/// generator (read back: a small copy on the CPU); `Tensor::random` elsewhere.
fn noise<const D: usize>(kind: Noise, dims: [usize; D], device: &Device) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if fused_kernels_enabled() && on_flex(device) {
        let draw = Tensor::<1>::random([2], Init::Uniform(0.0, 1.0), device).into_data();
        let bits: Vec<u64> = draw
            .iter::<f32>()
            .map(|u| (u * 8_388_608.0) as u64)
            .collect();
        let key = (bits[0] << 23) ^ bits[1];
        let n = dims.iter().product();
        let values = match kind {
            Noise::StandardNormal => rng::normal(n, key),
            Noise::UniformOpen => rng::uniform(n, key),
            Noise::StandardLogistic => rng::logistic(n, key),
        };
        return Tensor::from_data(burn::tensor::TensorData::new(values, dims), device);
    }
    let uniform = Init::Uniform(f32::MIN_POSITIVE as f64, 1.0);
    match kind {
        Noise::StandardNormal => Tensor::random(dims, Init::Normal(0.0, 1.0), device),
        Noise::UniformOpen => Tensor::random(dims, uniform, device),
        // A backend whose uniform could return exactly 1.0 would give +inf: keep u below 1.
        Noise::StandardLogistic => crate::math::logit(
            Tensor::random(dims, uniform, device)
                .clamp(f32::MIN_POSITIVE, 1.0 - f32::EPSILON / 2.0),
        ),
    }
}

/// Checks that the fused path applies (kernels on, float32, all on `flex`, broadcastable) and
/// expands every input whose shape is not a suffix of the output shape.
#[cfg(feature = "flex")]
fn prepare<const D: usize, const N: usize>(
    inputs: [Tensor<D>; N],
) -> Result<[burn::backend::DispatchTensor; N], [Tensor<D>; N]> {
    prepare_tiled(inputs, Tiled::NONE).map(|(t, _)| t)
}

/// [`prepare`] with one input stacked along dimension 0 (see [`Tiled`]), also returning the
/// output shape. The stacked input must then span the output (it is read in place,
/// repeating), and so must one of the others.
#[cfg(feature = "flex")]
#[allow(clippy::type_complexity)]
fn prepare_tiled<const D: usize, const N: usize>(
    inputs: [Tensor<D>; N],
    tiled: Tiled,
) -> Result<([burn::backend::DispatchTensor; N], [usize; D]), [Tensor<D>; N]> {
    if !fused_kernels_enabled() || !inputs.iter().all(f32_on_flex) {
        return Err(inputs);
    }
    let mut dims: [[usize; D]; N] = core::array::from_fn(|k| inputs[k].dims());
    let stacked = tiled.times != 1;
    if stacked {
        dims[tiled.input][0] *= tiled.times;
    }
    let mut out = [1usize; D];
    for d in &dims {
        for (o, &x) in out.iter_mut().zip(d) {
            if *o == 1 {
                *o = x;
            } else if x != 1 && x != *o {
                // Not broadcastable: the composite path reports the error.
                return Err(inputs);
            }
        }
    }
    // The kernels take the output shape from the largest input: another input must span it.
    if stacked && (dims[tiled.input] != out || !(0..N).any(|k| k != tiled.input && dims[k] == out))
    {
        return Err(inputs);
    }
    let mut k = 0;
    let prepared = inputs.map(|t| {
        let t = if is_suffix(&dims[k], &out) {
            t
        } else {
            t.expand(out)
        };
        k += 1;
        t.into_dispatch()
    });
    Ok((prepared, out))
}

/// For the sums: the output shape with dimensions `from..` set to 1, or `None` when the output
/// is empty (burn's operations handle it).
#[cfg(feature = "flex")]
fn summed_shape<const D: usize>(out: [usize; D], from: usize) -> Option<burn::tensor::Shape> {
    if out.contains(&0) {
        return None;
    }
    let mut rows = out;
    rows[from..].fill(1);
    Some(burn::tensor::Shape::from(rows))
}

/// Whether `dims` is all ones followed by the trailing dims of `out`.
#[cfg(feature = "flex")]
fn is_suffix(dims: &[usize], out: &[usize]) -> bool {
    let f = dims.iter().position(|&d| d != 1).unwrap_or(dims.len());
    dims[f..] == out[f..]
}

/// Whether the kernels take `t`: a float32 tensor on `flex` (with or without autodiff).
#[cfg(feature = "flex")]
fn f32_on_flex<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == burn::tensor::DType::F32 && on_flex(&t.device())
}

/// Whether `device` is a `flex` device (with or without autodiff).
#[cfg(feature = "flex")]
fn on_flex(device: &Device) -> bool {
    matches!(
        device.clone().without_autodiff().as_dispatch(),
        burn::backend::DispatchDevice::Flex(_)
    )
}

#[cfg(feature = "flex")]
mod ext;

/// Whether the layer kernels ([`convolution`], [`linear`]) take these inputs: fused kernels on
/// and all three float32 tensors on `flex`.
#[cfg(feature = "flex")]
fn layer_applies<const DX: usize, const DW: usize>(
    x: &Tensor<DX>,
    w: &Tensor<DW>,
    b: &Tensor<1>,
) -> bool {
    fused_kernels_enabled() && f32_on_flex(x) && f32_on_flex(w) && f32_on_flex(b)
}

#[cfg(all(test, feature = "flex"))]
pub(crate) mod tests;

/// One fused Adam update of `param` and its moments, or the inputs back when they are not
/// all float32 tensors of one shape on `flex` without autodiff (or the fused kernels are off).
#[cfg(feature = "optim")]
#[allow(clippy::type_complexity)]
pub(crate) fn adam<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moments: (Tensor<D>, Tensor<D>),
    step: AdamStep,
) -> Result<(Tensor<D>, Tensor<D>, Tensor<D>), (Tensor<D>, Tensor<D>, (Tensor<D>, Tensor<D>))> {
    #[cfg(feature = "flex")]
    {
        use burn::backend::Dispatch;
        use ext::FusedOptim;
        let (m, v) = moments;
        let all = [&param, &grad, &m, &v];
        let dims = param.dims();
        let usable = fused_kernels_enabled()
            && all
                .iter()
                .all(|t| f32_on_flex(t) && t.dims() == dims && !t.is_autodiff());
        if !usable {
            return Err((param, grad, (m, v)));
        }
        let (p, m, v) = <Dispatch as FusedOptim>::fused_adam(
            param.into_dispatch(),
            grad.into_dispatch(),
            m.into_dispatch(),
            v.into_dispatch(),
            step,
        );
        Ok((
            Tensor::from_dispatch(p),
            Tensor::from_dispatch(m),
            Tensor::from_dispatch(v),
        ))
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = step;
        Err((param, grad, moments))
    }
}

#[cfg(feature = "optim")]
/// The per-step constants of an Adam update, computed as burn's `Adam` computes them (in
/// float32), so that the fused update reproduces burn's to the last bit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AdamStep {
    /// `β₁`.
    pub beta_1: f32,
    /// `β₂`.
    pub beta_2: f32,
    /// `√(1 − β₂ᵗ) / (1 − β₁ᵗ)`: both bias corrections.
    pub combined: f32,
    /// `ε · √(1 − β₂ᵗ)`.
    pub epsilon: f32,
    /// The learning rate.
    pub lr: f32,
}

#[cfg(feature = "optim")]
impl AdamStep {
    /// The constants of step `time` (1 for the first update).
    pub(crate) fn new(beta_1: f32, beta_2: f32, epsilon: f32, lr: f64, time: usize) -> Self {
        let t = time.min(i32::MAX as usize) as i32;
        let correction_2 = (1.0 - beta_2.powi(t)).sqrt();
        Self {
            beta_1,
            beta_2,
            combined: correction_2 / (1.0 - beta_1.powi(t)),
            epsilon: epsilon * correction_2,
            lr: lr as f32,
        }
    }
}

/// Runs the convolution kernels of [`conv`] (the transposed convolution when `transposed`,
/// followed by a ReLU when `relu`), or returns the inputs when they are not all float32
/// tensors on `flex` (or the fused kernels are off). The caller has checked the shapes against
/// `geometry`.
#[allow(clippy::type_complexity)]
pub(crate) fn convolution(
    (transposed, relu): (bool, bool),
    inputs: (Tensor<4>, Tensor<4>, Tensor<1>),
    geometry: crate::nn::ConvGeometry,
) -> Result<Tensor<4>, (Tensor<4>, Tensor<4>, Tensor<1>)> {
    #[cfg(feature = "flex")]
    {
        use burn::backend::Dispatch;
        use ext::FusedKernels;
        let (x, w, b) = inputs;
        if !layer_applies(&x, &w, &b) {
            return Err((x, w, b));
        }
        let (x, w, b) = (x.into_dispatch(), w.into_dispatch(), b.into_dispatch());
        let kind = ext::ConvKind { transposed, relu };
        Ok(Tensor::from_dispatch(
            <Dispatch as FusedKernels>::fused_conv(x, w, b, geometry, kind),
        ))
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = (transposed, relu, geometry);
        Err(inputs)
    }
}

/// Runs the dense-layer kernels of [`dense`] (`activation(x·weight + bias)`, `x` of
/// `[n, d_in]`), or returns the inputs when they are not all float32 tensors on `flex` (or the
/// fused kernels are off). The caller has checked the shapes.
#[allow(clippy::type_complexity)]
pub(crate) fn linear(
    activation: crate::nn::Activation,
    inputs: (Tensor<2>, Tensor<2>, Tensor<1>),
) -> Result<Tensor<2>, (Tensor<2>, Tensor<2>, Tensor<1>)> {
    #[cfg(feature = "flex")]
    {
        use burn::backend::Dispatch;
        use ext::FusedKernels;
        let (x, w, b) = inputs;
        if !layer_applies(&x, &w, &b) {
            return Err((x, w, b));
        }
        let (x, w, b) = (x.into_dispatch(), w.into_dispatch(), b.into_dispatch());
        Ok(Tensor::from_dispatch(
            <Dispatch as FusedKernels>::fused_linear(x, w, b, activation),
        ))
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = activation;
        Err(inputs)
    }
}
