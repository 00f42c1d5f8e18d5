//! The fused element-wise formulas, row sums, noise, and the batched triangular solve and
//! product of full-covariance Gaussians, on tensors: each function runs its kernel when every
//! input is a float32 tensor on `flex` (and the kernels are on, see
//! [`set_fused_kernels`](crate::set_fused_kernels)), and otherwise hands its inputs back
//! (`Err`) or returns `None`, so that the caller runs its own composite formula.
//!
//! Broadcasting follows burn's rules: an input whose shape is a suffix of the output's runs
//! in place; any other broadcast input is expanded first.

use burn::tensor::{Device, Distribution as Init, Tensor};

use crate::device::{f32_on_flex, fused_kernels_enabled, on_flex};
use crate::rng;

pub use crate::ops::{Binary, Quaternary, Ternary, Unary};

/// An input of a summed formula read as if stacked `times` times along dimension 0
/// (`repeat_dim(0, times)`) but not copied: the kernels' inputs may repeat within the output
/// anyway (see `cpu::Input`), so the stacked input is read cyclically in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiled {
    /// Which input.
    pub input: usize,
    /// How many copies; 1 for none.
    pub times: usize,
}

impl Tiled {
    /// No input is stacked.
    pub const NONE: Tiled = Tiled { input: 0, times: 1 };
}

/// Runs a fused one-input formula, or returns the input for the composite path.
pub fn unary<const D: usize>(op: Unary, a: Tensor<D>) -> Result<Tensor<D>, Tensor<D>> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
    let [a] = prepare([a]).map_err(|[a]| a)?;
    Ok(Tensor::from_dispatch(
        <Dispatch as FusedKernels>::fused_unary(op, a),
    ))
}

/// Runs a fused two-input formula, or returns the inputs for the composite path.
pub fn binary<const D: usize>(
    op: Binary,
    inputs: [Tensor<D>; 2],
) -> Result<Tensor<D>, [Tensor<D>; 2]> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
    let [a, b] = prepare(inputs)?;
    Ok(Tensor::from_dispatch(
        <Dispatch as FusedKernels>::fused_binary(op, a, b),
    ))
}

/// Runs a fused two-input formula and sums its values over the dimensions `from..` (kept, with
/// size 1) without writing them out, with the input `tiled` names stacked along dimension 0;
/// or returns the inputs (that one unstacked) for the composite path. `from == D`: no sum.
pub fn binary_summed<const D: usize>(
    op: Binary,
    inputs: [Tensor<D>; 2],
    from: usize,
    tiled: Tiled,
) -> Result<Tensor<D>, [Tensor<D>; 2]> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
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

/// Runs a fused three-input formula, or returns the inputs for the composite path.
pub fn ternary<const D: usize>(
    op: Ternary,
    inputs: [Tensor<D>; 3],
) -> Result<Tensor<D>, [Tensor<D>; 3]> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
    let [a, b, c] = prepare(inputs)?;
    Ok(Tensor::from_dispatch(
        <Dispatch as FusedKernels>::fused_ternary(op, a, b, c),
    ))
}

/// Runs a fused three-input formula summed over the dimensions `from..` with one input
/// stacked (see [`binary_summed`]), or returns the inputs for the composite path.
pub fn ternary_summed<const D: usize>(
    op: Ternary,
    inputs: [Tensor<D>; 3],
    from: usize,
    tiled: Tiled,
) -> Result<Tensor<D>, [Tensor<D>; 3]> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
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

/// Runs a fused four-input formula, or returns the inputs for the composite path.
pub fn quaternary<const D: usize>(
    op: Quaternary,
    inputs: [Tensor<D>; 4],
) -> Result<Tensor<D>, [Tensor<D>; 4]> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
    let [a, b, c, d] = prepare(inputs)?;
    Ok(Tensor::from_dispatch(
        <Dispatch as FusedKernels>::fused_quaternary(op, a, b, c, d),
    ))
}

/// `t` summed over its dimensions `from..` (kept, with size 1) in one multithreaded pass, with
/// a backward pass that writes each row's gradient over its row; or `t` back for burn's
/// `sum_dim` when it is not a non-empty float32 tensor on `flex` (or the kernels are off).
pub fn sum_trailing<const D: usize>(t: Tensor<D>, from: usize) -> Result<Tensor<D>, Tensor<D>> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
    let rows = match summed_shape(t.dims(), from) {
        Some(rows) if fused_kernels_enabled() && f32_on_flex(&t) => rows,
        _ => return Err(t),
    };
    Ok(Tensor::from_dispatch(
        <Dispatch as FusedKernels>::fused_row_sums(t.into_dispatch(), rows),
    ))
}

/// `t` repeated `times` times along dimension 0 (`repeat_dim(0, times)`) in one copy split over
/// the threads; or `t` back for burn's `repeat_dim` when it is not a non-empty
/// float32 tensor on `flex` (or the kernels are off).
pub fn repeat_leading<const D: usize>(t: Tensor<D>, times: usize) -> Result<Tensor<D>, Tensor<D>> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
    if !fused_kernels_enabled() || !f32_on_flex(&t) || t.shape().num_elements() == 0 || times == 0 {
        return Err(t);
    }
    Ok(Tensor::from_dispatch(
        <Dispatch as FusedKernels>::fused_tile(t.into_dispatch(), times),
    ))
}

/// Standard normal noise of shape `dims` from the vectorized generator, keyed by one draw
/// from burn's seeded generator (so it follows `device.seed(..)`); `None` when `device` is not a
/// `flex` device or the kernels are off.
pub fn standard_normal<const D: usize>(dims: [usize; D], device: &Device) -> Option<Tensor<D>> {
    noise(dims, device, rng::normal)
}

/// Uniform noise in the open interval (0, 1) of shape `dims`, with 23-bit resolution, as
/// [`standard_normal`].
pub fn uniform_open<const D: usize>(dims: [usize; D], device: &Device) -> Option<Tensor<D>> {
    noise(dims, device, rng::uniform)
}

/// Standard logistic noise `ln u − ln(1 − u)` of shape `dims` in one pass, as
/// [`standard_normal`].
pub fn standard_logistic<const D: usize>(dims: [usize; D], device: &Device) -> Option<Tensor<D>> {
    noise(dims, device, rng::logistic)
}

/// `generate(n, key)` with its key taken from one two-value draw of burn's seeded generator
/// (read back: a small copy on the CPU).
fn noise<const D: usize>(
    dims: [usize; D],
    device: &Device,
    generate: fn(usize, u64) -> Vec<f32>,
) -> Option<Tensor<D>> {
    if !fused_kernels_enabled() || !on_flex(device) {
        return None;
    }
    let values = generate(dims.iter().product(), draw_key(device));
    Some(Tensor::from_data(
        burn::tensor::TensorData::new(values, dims),
        device,
    ))
}

/// A generator key from one two-value draw of burn's seeded generator on `device`.
fn draw_key(device: &Device) -> u64 {
    let draw = Tensor::<1>::random([2], Init::Uniform(0.0, 1.0), device).into_data();
    let bits: Vec<u64> = draw
        .iter::<f32>()
        .map(|u| (u * 8_388_608.0) as u64)
        .collect();
    (bits[0] << 23) ^ bits[1]
}

/// One `Gamma(α, 1)` draw per element of `alpha` (float32 on `flex`): Marsaglia and Tsang's
/// method per element, looping until accepted, with `Gamma(α + 1)·u^{1/α}` (in log space) for
/// `α < 1`, on the counter-based generator keyed by one draw from burn's seeded generator (so
/// it follows `device.seed(..)`); draws are at least `f32::MIN_POSITIVE` (NaN for NaN or
/// non-positive `α`). The result carries no gradient. Or the input back for the composite
/// path (not float32 on `flex`, or the kernels off).
pub fn standard_gamma<const D: usize>(alpha: Tensor<D>) -> Result<Tensor<D>, Tensor<D>> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
    if !fused_kernels_enabled() || !f32_on_flex(&alpha) {
        return Err(alpha);
    }
    let key = draw_key(&alpha.device());
    Ok(Tensor::from_dispatch(
        <Dispatch as FusedKernels>::fused_standard_gamma(alpha.into_dispatch(), key),
    ))
}

/// `ln softmax(logits[r, ·])[index[r]]` for each row `r` of `[rows, k]` logits, with the
/// classes `index` (`[rows]`, float whole numbers; any other value gives `−∞` and no
/// gradient) in one pass per row, differentiable in the logits; or the inputs back for the
/// composite path (not float32 on `flex`, kernels off, shapes that do not match, `k = 0`).
/// Every row must hold a finite logit.
#[allow(clippy::type_complexity)]
pub fn log_softmax_gather(
    logits: Tensor<2>,
    index: Tensor<1>,
) -> Result<Tensor<1>, (Tensor<2>, Tensor<1>)> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
    let [rows, k] = logits.dims();
    let fits = index.dims() == [rows] && k > 0 && rows > 0;
    if !fits || !fused_kernels_enabled() || !f32_on_flex(&logits) || !f32_on_flex(&index) {
        return Err((logits, index));
    }
    Ok(Tensor::from_dispatch(
        <Dispatch as FusedKernels>::fused_log_softmax_gather(
            logits.into_dispatch(),
            index.into_dispatch(),
        ),
    ))
}

/// `dz/dα` of `Gamma(α, 1)` samples: `(α, z)`, both float32 on `flex` with one shape, give the
/// implicit reparameterization gradient `−(∂P(α, z)/∂α)/p(z; α)` per element (0 at `z = 0`),
/// computed in float64 from the series or continued fraction of the incomplete gamma function,
/// each run until it converges; or the inputs back for the composite path. The result carries
/// no gradient.
pub fn standard_gamma_grad<const D: usize>(
    inputs: [Tensor<D>; 2],
) -> Result<Tensor<D>, [Tensor<D>; 2]> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
    if !fused_kernels_enabled()
        || !inputs.iter().all(f32_on_flex)
        || inputs[0].dims() != inputs[1].dims()
    {
        return Err(inputs);
    }
    let [alpha, z] = inputs.map(Tensor::into_dispatch);
    Ok(Tensor::from_dispatch(
        <Dispatch as FusedKernels>::fused_standard_gamma_grad(alpha, z),
    ))
}

/// `[dz/da, dz/db]` of `Beta(a, b)` samples: `(a, b, z)`, all float32 on `flex` with one
/// shape, give the implicit reparameterization gradients `−∇_{a,b} I_z(a, b)/p(z; a, b)` per
/// element (0 at `z = 0` and `z = 1`), computed in float64 from the continued fraction of the
/// incomplete beta function, run until it converges, in one pass that writes both; or the
/// inputs back for the composite path. The results carry no gradient.
pub fn beta_sample_grad<const D: usize>(
    inputs: [Tensor<D>; 3],
) -> Result<[Tensor<D>; 2], [Tensor<D>; 3]> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
    let dims = inputs[2].dims();
    if !fused_kernels_enabled()
        || !inputs.iter().all(f32_on_flex)
        || inputs.iter().any(|t| t.dims() != dims)
    {
        return Err(inputs);
    }
    let [a, b, z] = inputs.map(Tensor::into_dispatch);
    let (da, db) = <Dispatch as FusedKernels>::fused_beta_sample_grad(a, b, z);
    Ok([Tensor::from_dispatch(da), Tensor::from_dispatch(db)])
}

/// The log-density of the full-covariance Gaussian `N(μ, L Lᵀ)` less its constant
/// `(K/2) ln 2π`: `−½‖z‖² − Σₖ ln Lₖₖ` with `L z = x − μ`, for each row `x[s, b]` of `x`
/// (`[S, B, K]`) with `μ = loc[b]` (`loc` `[B, K]`) and `L = scale_tril[b]` (`[B, K, K]`, lower
/// triangular: only the lower triangle is read), by forward substitution in one pass over the
/// rows; the result is `[S, B]`. Differentiable in all three (the backward pass solves
/// `Lᵀ w = z`: `∂/∂x = −w`, `∂/∂μ = w` summed over `s`, `∂/∂L = tril(w zᵀ) − diag(1/Lₖₖ)` summed
/// over `s`, 0 above the diagonal). Or the inputs back for the composite path (not float32 on
/// `flex`, kernels off, shapes that do not fit, or an empty tensor).
#[allow(clippy::type_complexity)]
pub fn tril_log_prob(
    loc: Tensor<2>,
    scale_tril: Tensor<3>,
    x: Tensor<3>,
) -> Result<Tensor<2>, (Tensor<2>, Tensor<3>, Tensor<3>)> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
    if !tril_fits(&loc, &scale_tril, &x) {
        return Err((loc, scale_tril, x));
    }
    Ok(Tensor::from_dispatch(
        <Dispatch as FusedKernels>::fused_tril_log_prob(
            loc.into_dispatch(),
            scale_tril.into_dispatch(),
            x.into_dispatch(),
        ),
    ))
}

/// The reparameterized sample of the full-covariance Gaussian: `μ + L ε` for each row `ε` of
/// `noise` (`[S, B, K]`) with `μ` and `L` of its batch index, shapes as [`tril_log_prob`]
/// (only the lower triangle of `scale_tril` read), in one pass; the result is `[S, B, K]`.
/// Differentiable in all three (`∂/∂μ = g` and `∂/∂L = tril(g εᵀ)` summed over `s`,
/// `∂/∂ε = Lᵀ g`). Or the inputs back for the composite path, as [`tril_log_prob`].
#[allow(clippy::type_complexity)]
pub fn tril_affine(
    loc: Tensor<2>,
    scale_tril: Tensor<3>,
    noise: Tensor<3>,
) -> Result<Tensor<3>, (Tensor<2>, Tensor<3>, Tensor<3>)> {
    use crate::ext::FusedKernels;
    use burn::backend::Dispatch;
    if !tril_fits(&loc, &scale_tril, &noise) {
        return Err((loc, scale_tril, noise));
    }
    Ok(Tensor::from_dispatch(
        <Dispatch as FusedKernels>::fused_tril_affine(
            loc.into_dispatch(),
            scale_tril.into_dispatch(),
            noise.into_dispatch(),
        ),
    ))
}

/// Whether the triangular kernels take these inputs: kernels on, all float32 on `flex`, `loc`
/// `[B, K]`, `scale_tril` `[B, K, K]` and the values `[S, B, K]`, none empty.
fn tril_fits(loc: &Tensor<2>, scale_tril: &Tensor<3>, values: &Tensor<3>) -> bool {
    let [b, k] = loc.dims();
    let [s, vb, vk] = values.dims();
    fused_kernels_enabled()
        && f32_on_flex(loc)
        && f32_on_flex(scale_tril)
        && f32_on_flex(values)
        && scale_tril.dims() == [b, k, k]
        && (vb, vk) == (b, k)
        && s * b * k > 0
}

/// Checks that the fused path applies (kernels on, float32, all on `flex`, broadcastable) and
/// expands every input whose shape is not a suffix of the output shape.
fn prepare<const D: usize, const N: usize>(
    inputs: [Tensor<D>; N],
) -> Result<[burn::backend::DispatchTensor; N], [Tensor<D>; N]> {
    prepare_tiled(inputs, Tiled::NONE).map(|(t, _)| t)
}

/// [`prepare`] with one input stacked along dimension 0 (see [`Tiled`]), also returning the
/// output shape. The stacked input must then span the output (it is read in place,
/// repeating), and so must one of the others.
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
fn summed_shape<const D: usize>(out: [usize; D], from: usize) -> Option<burn::tensor::Shape> {
    if out.contains(&0) {
        return None;
    }
    let mut rows = out;
    rows[from..].fill(1);
    Some(burn::tensor::Shape::from(rows))
}

/// Whether `dims` is all ones followed by the trailing dims of `out`.
fn is_suffix(dims: &[usize], out: &[usize]) -> bool {
    let f = dims.iter().position(|&d| d != 1).unwrap_or(dims.len());
    dims[f..] == out[f..]
}
