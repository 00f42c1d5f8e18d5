//! The fused kernels against the same formulas written as ordinary burn operations: values and
//! gradients, with and without broadcasting, and the fallbacks.

use crate::adam::AdamStep;
use crate::formulas::*;
use crate::optim::fused_update as adam;
use crate::{conv, set_fused_kernels};
use burn::tensor::{Device, Tensor, TensorData};
use std::sync::{Mutex, MutexGuard};

/// Serializes the tests of this module: one of them turns the kernels off for a moment.
fn lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Deterministic values spread over `[lo, hi]` (a Weyl sequence; no RNG state involved).
pub(crate) fn spread(n: usize, lo: f32, hi: f32, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let u = ((i as f64 + 1.0) * 0.618_033_988_75 + seed as f64 * 0.414_213_56).fract();
            lo + (hi - lo) * u as f32
        })
        .collect()
}

/// Asserts that every value of `got` is within `tol` times the largest magnitude of `want` (at
/// least 1) of `want`; `names` are what the message calls the two.
pub(crate) fn assert_close_scaled(
    what: &str,
    got: &[f32],
    want: &[f32],
    tol: f32,
    (ours, theirs): (&str, &str),
) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1.0f32, |m, w| m.max(w.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * scale,
            "{what}[{i}]: {ours} {g}, {theirs} {w} (largest magnitude {scale})"
        );
    }
}

/// A 3 × 3, stride-1 convolution of `batch` images of `c × h × w` to `o` channels, padded by
/// `(top, left)` before and `(bottom, right)` after.
pub(crate) fn conv3x3(
    batch: usize,
    c: usize,
    (h, w): (usize, usize),
    o: usize,
    (top, left): (usize, usize),
    (bottom, right): (usize, usize),
) -> conv::Geometry {
    conv::Geometry {
        batch,
        c,
        h,
        w,
        o,
        oh: h + top + bottom - 2,
        ow: w + left + right - 2,
        kh: 3,
        kw: 3,
        sh: 1,
        sw: 1,
        ph: top,
        pw: left,
    }
}

/// A convolution's forward pass: geometry, input, weight, bias and activation.
pub(crate) type ConvForward = fn(&conv::Geometry, &[f32], &[f32], conv::Epilogue<'_>) -> Vec<f32>;
/// A convolution's weight gradient: geometry, input, output gradient.
pub(crate) type ConvWeightGrad = fn(&conv::Geometry, &[f32], &[f32]) -> Vec<f32>;

/// `forward` and `weight_grad` (called `kernels` in messages) against the patch-matrix kernels,
/// which `nn`'s tests check against burn's convolutions, on deterministic values: within 10⁻⁵
/// of the largest value.
pub(crate) fn check_against_patch_matrix(
    kernels: &str,
    g: &conv::Geometry,
    (forward, weight_grad): (ConvForward, ConvWeightGrad),
) {
    let name = format!(
        "{}x{}x{}x{} → {}, padding {},{}",
        g.batch, g.c, g.h, g.w, g.o, g.ph, g.pw
    );
    let x = spread(g.batch * g.image(), -1.0, 1.0, 1);
    let weight = spread(g.o * g.k(), -1.0, 1.0, 2);
    let bias = spread(g.o, -1.0, 1.0, 3);
    let dy = spread(g.batch * g.feature(), -1.0, 1.0, 4);
    let names = (kernels, "patch matrix");
    for relu in [false, true] {
        let out = conv::Epilogue {
            bias: Some(&bias),
            relu,
        };
        assert_close_scaled(
            &format!("{name}: output (ReLU: {relu})"),
            &forward(g, &x, &weight, out),
            &conv::patch_forward(g, &x, &weight, out),
            1e-5,
            names,
        );
    }
    assert_close_scaled(
        &format!("{name}: weight gradient"),
        &weight_grad(g, &x, &dy),
        &conv::patch_weight_grad(g, &x, &dy),
        1e-5,
        names,
    );
}

fn input(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(values, shape), device).require_grad()
}

fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w || (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: fused {g}, composite {w} (tolerance {tol} relative)"
        );
    }
}

/// Runs `fused` and `reference` on the same inputs, on flex with autodiff, and compares the
/// values and the gradients of `Σ w·out` (random weights `w`) with respect to every input.
fn check<const N: usize>(
    name: &str,
    inputs: [(Vec<f32>, [usize; 2]); N],
    fused: impl Fn([Tensor<2>; N]) -> Result<Tensor<2>, [Tensor<2>; N]>,
    reference: impl Fn([Tensor<2>; N]) -> Tensor<2>,
    tol: f32,
) {
    let device = Device::flex().autodiff();
    let make = || inputs.clone().map(|(v, s)| input(v, s, &device));
    let run = |ts: [Tensor<2>; N], out: Tensor<2>| {
        let w = Tensor::<2>::from_data(
            TensorData::new(spread(out.shape().num_elements(), -1.0, 1.0, 7), out.dims()),
            &device,
        );
        let value = to_vec(out.clone());
        let grads = (out * w).sum().backward();
        let g: Vec<Vec<f32>> = ts
            .iter()
            .map(|t| {
                t.grad(&grads)
                    .map(|g| g.into_data().iter::<f32>().collect())
                    .unwrap()
            })
            .collect();
        (value, g)
    };
    let ts = make();
    let out = fused(ts.clone()).unwrap_or_else(|_| panic!("{name}: the fused path was not taken"));
    let (v_fused, g_fused) = run(ts, out);
    let ts = make();
    let (v_ref, g_ref) = run(ts.clone(), reference(ts));
    assert_close(&format!("{name} value"), &v_fused, &v_ref, tol);
    for (k, (a, b)) in g_fused.iter().zip(&g_ref).enumerate() {
        assert_close(&format!("{name} d/dinput{k}"), a, b, tol);
    }
}

fn softplus_ref(x: Tensor<2>) -> Tensor<2> {
    let m = x.clone().clamp_min(0.0);
    m.clone() + (x - m * 2.0).exp().log1p()
}

fn sigmoid_ref(x: Tensor<2>) -> Tensor<2> {
    burn::tensor::activation::sigmoid(x)
}

const R: usize = 37;
const C: usize = 300; // R·C > one run of 4096, so runs and tasks are split

#[test]
fn unary_formulas_match_burn_ops() {
    let _g = lock();
    let s = [R, C];
    let n = R * C;
    check(
        "log",
        [(spread(n, 1e-3, 50.0, 1), s)],
        |[a]| unary(Unary::LogPlus(0.0), a).map_err(|a| [a]),
        |[a]| a.log(),
        2e-6,
    );
    check(
        "log plus a constant",
        [(spread(n, 1e-3, 50.0, 1), s)],
        |[a]| unary(Unary::LogPlus(1.418_938_5), a).map_err(|a| [a]),
        |[a]| a.log() + 1.418_938_5,
        2e-6,
    );
    check(
        "softplus",
        [(spread(n, -40.0, 40.0, 2), s)],
        |[a]| unary(Unary::Softplus, a).map_err(|a| [a]),
        |[a]| softplus_ref(a),
        2e-6,
    );
    check(
        "sigmoid",
        [(spread(n, -40.0, 40.0, 3), s)],
        |[a]| unary(Unary::Sigmoid, a).map_err(|a| [a]),
        |[a]| sigmoid_ref(a),
        2e-6,
    );
    check(
        "tanh",
        [(spread(n, -12.0, 12.0, 19), s)],
        |[a]| unary(Unary::Tanh, a).map_err(|a| [a]),
        |[a]| a.tanh(),
        2e-6,
    );
    check(
        "elu",
        [(spread(n, -15.0, 5.0, 20), s)],
        |[a]| unary(Unary::Elu(1.5), a).map_err(|a| [a]),
        |[a]| burn::tensor::activation::elu(a, 1.5),
        2e-6,
    );
    check(
        "logit",
        [(spread(n, 1e-4, 1.0 - 1e-4, 4), s)],
        |[a]| unary(Unary::Logit, a).map_err(|a| [a]),
        |[a]| a.clone().log() - (-a).log1p(),
        2e-5,
    );
}

#[test]
fn bernoulli_continuous_bernoulli_and_bin_concrete_match_burn_ops() {
    let _g = lock();
    let n = R * C;
    let bits: Vec<f32> = spread(n, 0.0, 1.0, 5).iter().map(|u| u.round()).collect();
    // logits full size, value broadcast along rows (a suffix), as in the IWAE bound
    check(
        "bernoulli",
        [
            (spread(n, -30.0, 30.0, 6), [R, C]),
            (bits[..C].to_vec(), [1, C]),
        ],
        |t| binary(Binary::BernoulliLogProb, t),
        |[l, x]| x * l.clone() - softplus_ref(l),
        2e-6,
    );
    // The continuous Bernoulli's composite form, as in burn-probability (log1mexp written out).
    let cb_normalizer = |l: Tensor<2>| {
        let small = l.clone().abs().lower_elem(0.1);
        let a = l.clone().abs().clamp_min(0.1);
        let direct = l.clone().clamp_min(0.0) + (-(-a.clone()).exp()).log1p() - a.log();
        let e = l.clamp(-0.1, 0.1);
        let e2 = e.clone().square();
        direct.mask_where(small, e * 0.5 + e2.clone() * (e2 / -2880.0 + 1.0 / 24.0))
    };
    let grey = spread(n, 0.0, 1.0, 7);
    check(
        "continuous_bernoulli",
        [
            (spread(n, -30.0, 30.0, 6), [R, C]),
            (grey[..C].to_vec(), [1, C]),
        ],
        |t| binary(Binary::ContinuousBernoulliLogProb, t),
        |[l, x]| x * l.clone() - cb_normalizer(l),
        2e-6,
    );
    // Just above the Taylor threshold both gradients, `x − mean(ℓ)` in the kernel and the
    // derivative of `ln(1 − e^{−|ℓ|}) − ln|ℓ|` in the composite, cancel terms near 1/|ℓ| = 10
    // to about 0.5: a few ulps of 10 each.
    check(
        "continuous_bernoulli near 0",
        [
            (spread(n, -0.3, 0.3, 6), [R, C]),
            (grey[..C].to_vec(), [1, C]),
        ],
        |t| binary(Binary::ContinuousBernoulliLogProb, t),
        |[l, x]| x * l.clone() - cb_normalizer(l),
        3e-5,
    );
    let t = 0.5f32;
    check(
        "bin_concrete_log_prob",
        [
            (spread(n, 0.02, 0.98, 8), [R, C]),
            (spread(n, -4.0, 4.0, 9), [R, C]),
        ],
        |ts| binary(Binary::BinConcreteLogProb(t), ts),
        |[y, l]| {
            let log_y = y.clone().log();
            let log_1my = (-y).log1p();
            let z = log_y.clone() - log_1my.clone();
            l.clone() + t.ln() - log_y * (t + 1.0) + log_1my * (t - 1.0)
                - softplus_ref(l - z * t) * 2.0
        },
        2e-5,
    );
    check(
        "bin_concrete_rsample",
        [
            (spread(n, -4.0, 4.0, 10), [R, C]),
            (spread(n, -6.0, 6.0, 11), [R, C]),
        ],
        |ts| binary(Binary::BinConcreteRsample(0.1), ts),
        |[l, e]| sigmoid_ref((l + e) / 0.1),
        2e-6,
    );
}

#[test]
fn location_scale_log_densities_match_burn_ops() {
    let _g = lock();
    let n = R * C;
    // loc broadcast as a suffix [1, C], scale as a column [R, 1] (expanded first)
    let inputs = [
        (spread(n, -5.0, 5.0, 12), [R, C]),
        (spread(C, -2.0, 2.0, 13), [1, C]),
        (spread(R, 0.1, 3.0, 14), [R, 1]),
    ];
    check(
        "normal_log_prob",
        inputs.clone(),
        |t| ternary(Ternary::NormalLogProb, t),
        |[x, m, s]| {
            let z = (x - m) / s.clone();
            z.square() * (-0.5) - s.log() - 0.918_938_5
        },
        2e-6,
    );
    // Gumbel's e^{−z} grows fast below the location: values within 4 scales of it keep the
    // gradients' column sums free of terms that cancel to a few ulps of 10⁶.
    let gumbel_inputs = [
        (spread(n, -3.0, 3.0, 12), [R, C]),
        (spread(C, -1.0, 1.0, 13), [1, C]),
        (spread(R, 1.0, 3.0, 14), [R, 1]),
    ];
    check(
        "gumbel_log_prob",
        gumbel_inputs,
        |t| ternary(Ternary::GumbelLogProb, t),
        |[x, m, s]| {
            let z = (x - m) / s.clone();
            -(z.clone() + (-z).exp()) - s.log()
        },
        1e-5, // the polynomial exp (relative error about 1e-7) in every term of the row sums
    );
    check(
        "logistic_log_prob",
        inputs,
        |t| ternary(Ternary::LogisticLogProb, t),
        |[x, m, s]| {
            let z = (x - m) / s.clone();
            -z.clone() - softplus_ref(-z) * 2.0 - s.log()
        },
        2e-6,
    );
}

#[test]
fn normal_kl_matches_burn_ops() {
    let _g = lock();
    let n = R * C;
    check(
        "normal_kl",
        [
            (spread(n, -3.0, 3.0, 15), [R, C]),
            (spread(n, 0.05, 4.0, 16), [R, C]),
            (spread(C, -1.0, 1.0, 17), [1, C]),
            (spread(C, 0.5, 2.0, 18), [1, C]),
        ],
        |t| quaternary(Quaternary::NormalKl, t),
        |[m1, s1, m2, s2]| {
            let z = (m1 - m2) / s2.clone();
            let r = s1 / s2;
            z.square() * 0.5 + (r.clone().square() - 1.0) * 0.5 - r.log()
        },
        1e-5,
    );
}

#[test]
fn extreme_inputs_stay_finite_with_finite_gradients() {
    let _g = lock();
    let device = Device::flex().autodiff();
    let l = Tensor::<1>::from_floats([-1e30, -100.0, -20.0, 0.0, 20.0, 100.0, 1e30], &device)
        .require_grad();
    let x = Tensor::<1>::from_floats([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0], &device);
    let lp = binary(Binary::BernoulliLogProb, [l.clone(), x]).unwrap_or_else(|_| panic!());
    let v: Vec<f32> = lp.clone().into_data().iter::<f32>().collect();
    // x·l − softplus(l): exact values −1e30, −3.7e-44, −2e-9, −ln 2, −2e-9, −100, −0
    assert!(
        (v[0] + 1e30).abs() <= 1e24 && v[5] == -100.0 && v[6] == 0.0,
        "{v:?}"
    );
    assert!((v[3] + core::f32::consts::LN_2).abs() < 1e-7, "{v:?}");
    let g: Vec<f32> = l
        .grad(&lp.sum().backward())
        .unwrap()
        .into_data()
        .iter::<f32>()
        .collect();
    assert!(g.iter().all(|g| g.is_finite()), "{g:?}");
    assert_eq!(g[0], 1.0); // x − σ(l) at l = −1e30, x = 1
    assert_eq!(g[6], 0.0);
}

#[test]
fn other_backends_and_the_switch_fall_back() {
    let _g = lock();
    #[allow(deprecated)]
    let nd = Device::ndarray();
    let a = Tensor::<2>::ones([2, 3], &nd);
    assert!(
        unary(Unary::LogPlus(0.0), a).is_err(),
        "ndarray takes the composite path"
    );
    let f = Tensor::<2>::ones([2, 3], &Device::flex());
    assert!(unary(Unary::LogPlus(0.0), f.clone()).is_ok());
    set_fused_kernels(false);
    let off = unary(Unary::LogPlus(0.0), f.clone()).is_err();
    set_fused_kernels(true);
    assert!(off, "switched off, the composite path is taken");
    let bad = binary(
        Binary::BernoulliLogProb,
        [f, Tensor::<2>::ones([4, 5], &Device::flex())],
    );
    assert!(
        bad.is_err(),
        "shapes that do not broadcast are left to the composite path"
    );
}

#[test]
#[allow(deprecated)] // Device::ndarray
fn adam_runs_fused_on_flex_only() {
    let _g = lock();
    let step = AdamStep::new(0.9, 0.999, 1e-8, 1e-3, 1);
    let tensors = |device: &Device| {
        let t =
            || Tensor::<1>::from_data(TensorData::new(spread(100, -1.0, 1.0, 3), [100]), device);
        (t(), t(), (t().zeros_like(), t().zeros_like()))
    };
    let (p, g, m) = tensors(&Device::flex());
    assert!(adam(p, g, m, step).is_ok());
    let (p, g, m) = tensors(&Device::ndarray());
    assert!(adam(p, g, m, step).is_err());
    // Autodiff tensors (a parameter still tracked) take burn's path too.
    let (p, g, m) = tensors(&Device::flex().autodiff());
    assert!(adam(p, g, m, step).is_err());
    set_fused_kernels(false);
    let (p, g, m) = tensors(&Device::flex());
    let off = adam(p, g, m, step).is_err();
    set_fused_kernels(true);
    assert!(off);
}

#[test]
fn the_fused_relu_keeps_nan_and_masks_its_gradient() {
    use super::conv::{Epilogue, at_least, channel_sums};
    // Forward: the floor of the ReLU, and −∞ (no activation), both leave NaN as NaN.
    let relu = Epilogue {
        bias: None,
        relu: true,
    };
    assert!(at_least(f32::NAN, relu.floor()).is_nan());
    assert!(at_least(f32::NAN, Epilogue::default().floor()).is_nan());
    assert_eq!(at_least(-2.0, relu.floor()), 0.0);
    assert_eq!(at_least(-2.0, Epilogue::default().floor()), -2.0);
    let mut t = [-1.0, 3.0, 0.5, f32::NAN];
    relu.activate_all(&mut t);
    assert_eq!(t[..3], [0.0, 3.0, 0.5]);
    assert!(t[3].is_nan());
    // Backward: 2 images × 2 channels × 2 pixels; the gradient survives where the output is
    // positive (or NaN, as burn's mask keeps it), and the bias gradient sums what survives.
    let y = [0.0, 1.0, 2.0, -0.0, f32::NAN, 0.0, 3.0, 4.0];
    let mut dy = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
    let sums = channel_sums(&mut dy, Some(&y), 2, 2);
    assert_eq!(dy, [0.0, 2.0, 3.0, 0.0, 5.0, 0.0, 7.0, 8.0]);
    assert_eq!(sums, [2.0 + 5.0, 3.0 + 7.0 + 8.0]);
}

#[test]
fn row_sums_and_repetition_match_burn_ops() {
    let _g = lock();
    let s = [R, C];
    let n = R * C;
    check(
        "sum over the trailing dimension",
        [(spread(n, -3.0, 3.0, 21), s)],
        |[a]| sum_trailing(a, 1).map_err(|a| [a]),
        |[a]| a.sum_dim(1),
        // 300 float32 terms of size ≤ 3, summed in different orders
        2e-5,
    );
    check(
        "sum over every dimension",
        [(spread(n, -3.0, 3.0, 22), s)],
        |[a]| sum_trailing(a, 0).map_err(|a| [a]),
        |[a]| a.sum_dim(0).sum_dim(1),
        // 11,100 terms
        1e-4,
    );
    check(
        "repetition along dimension 0",
        [(spread(n, -3.0, 3.0, 23), s)],
        |[a]| repeat_leading(a, 3).map_err(|a| [a]),
        |[a]| a.repeat_dim(0, 3),
        2e-6,
    );
    // Above the threading threshold, rank 4 (a batch of images summed over c, h, w).
    let device = Device::flex().autodiff();
    let dims = [64, 1, 28, 28];
    let x = Tensor::<4>::from_data(
        TensorData::new(spread(64 * 784, -1.0, 1.0, 24), dims),
        &device,
    )
    .require_grad();
    let fused = sum_trailing(x.clone(), 1).expect("flex takes the kernels");
    let reference = x.clone().sum_dim(1).sum_dim(2).sum_dim(3);
    assert_eq!(fused.dims(), [64, 1, 1, 1]);
    let v = |t: Tensor<4>| t.into_data().iter::<f32>().collect::<Vec<_>>();
    assert_close("rank-4 sums", &v(fused.clone()), &v(reference), 1e-5);
    let w = Tensor::<4>::from_data(
        TensorData::new(spread(64, -1.0, 1.0, 25), [64, 1, 1, 1]),
        &device,
    );
    let g = v(x
        .grad(&(fused * w.clone()).sum().backward())
        .expect("a gradient"));
    let w = v(w);
    let want: Vec<f32> = (0..64 * 784).map(|i| w[i / 784]).collect();
    assert_close("rank-4 sums' gradient", &g, &want, 0.0);
}

#[test]
#[allow(deprecated)] // Device::ndarray
fn row_sums_and_repetition_fall_back_off_flex_and_on_empty_tensors() {
    let _g = lock();
    let nd = Tensor::<2>::ones([2, 3], &Device::ndarray());
    assert!(sum_trailing(nd.clone(), 1).is_err());
    assert!(repeat_leading(nd, 2).is_err());
    let empty = Tensor::<2>::zeros([0, 3], &Device::flex());
    assert!(sum_trailing(empty.clone(), 1).is_err());
    assert!(repeat_leading(empty, 2).is_err());
    let f = Tensor::<2>::ones([2, 3], &Device::flex());
    assert!(sum_trailing(f.clone(), 1).is_ok());
    assert!(repeat_leading(f, 2).is_ok());
}

#[test]
fn summed_formulas_match_burn_ops_then_sum() {
    let _g = lock();
    let bernoulli = |[l, x]: [Tensor<2>; 2]| x * l.clone() - softplus_ref(l);
    let normal = |[x, m, s]: [Tensor<2>; 3]| {
        let z = (x - m) / s.clone();
        z.square() * (-0.5) - s.log() - 0.918_938_5
    };
    // Rows split over tasks; one row (one task); two long rows (fewer rows than threads: two
    // passes). The value repeats along the rows, as in the IWAE bound.
    for (rows, cols, from) in [(R, C, 1), (R, C, 0), (2, 40_000, 1)] {
        let n = rows * cols;
        let bits: Vec<f32> = spread(cols, 0.0, 1.0, 26)
            .iter()
            .map(|u| u.round())
            .collect();
        check(
            &format!("bernoulli summed over dims {from}.. of [{rows}, {cols}]"),
            [
                (spread(n, -30.0, 30.0, 27), [rows, cols]),
                (bits, [1, cols]),
            ],
            |t| binary_summed(Binary::BernoulliLogProb, t, from, Tiled::NONE),
            |t| sum_from(bernoulli(t), from),
            // up to 80,000 float32 terms of size ≤ 30, summed in different orders
            1e-4,
        );
        check(
            &format!("normal summed over dims {from}.. of [{rows}, {cols}]"),
            [
                (spread(n, -5.0, 5.0, 28), [rows, cols]),
                (spread(cols, -2.0, 2.0, 29), [1, cols]),
                (spread(rows, 0.1, 3.0, 30), [rows, 1]),
            ],
            |t| ternary_summed(Ternary::NormalLogProb, t, from, Tiled::NONE),
            |t| sum_from(normal(t), from),
            1e-4,
        );
    }
}

/// `t` summed over dimensions `from..` with burn's `sum_dim`.
fn sum_from(mut t: Tensor<2>, from: usize) -> Tensor<2> {
    for dim in from..2 {
        t = t.sum_dim(dim);
    }
    t
}

#[test]
fn stacked_inputs_are_read_in_place_and_match_repeat_dim() {
    let _g = lock();
    let bernoulli = |[l, x]: [Tensor<2>; 2]| x * l.clone() - softplus_ref(l);
    let normal = |[x, m, s]: [Tensor<2>; 3]| {
        let z = (x - m) / s.clone();
        z.square() * (-0.5) - s.log() - 0.918_938_5
    };
    // The data, `rows` rows, stacked `k` times against `k·rows` rows of parameters: summed
    // per row (from 1), over everything (from 0), and not summed (from 2). The gradient of
    // the stacked input is summed over its copies.
    for (k, rows, cols, from) in [(3, R, C, 1), (3, R, C, 0), (4, 5, 70, 2), (50, 2, 784, 1)] {
        let n = k * rows * cols;
        let bits: Vec<f32> = spread(rows * cols, 0.0, 1.0, 31)
            .iter()
            .map(|u| u.round())
            .collect();
        check(
            &format!("bernoulli, data [{rows}, {cols}] stacked {k} times, summed from {from}"),
            [
                (spread(n, -30.0, 30.0, 32), [k * rows, cols]),
                (bits, [rows, cols]),
            ],
            |t| {
                binary_summed(
                    Binary::BernoulliLogProb,
                    t,
                    from,
                    Tiled { input: 1, times: k },
                )
            },
            |[l, x]| sum_from(bernoulli([l, x.repeat_dim(0, k)]), from),
            1e-4,
        );
        check(
            &format!("normal, data [{rows}, {cols}] stacked {k} times, summed from {from}"),
            [
                (spread(rows * cols, -5.0, 5.0, 33), [rows, cols]),
                (spread(n, -2.0, 2.0, 34), [k * rows, cols]),
                (spread(k * rows, 0.1, 3.0, 35), [k * rows, 1]),
            ],
            |t| {
                ternary_summed(
                    Ternary::NormalLogProb,
                    t,
                    from,
                    Tiled { input: 0, times: k },
                )
            },
            |[x, m, s]| sum_from(normal([x.repeat_dim(0, k), m, s]), from),
            1e-4,
        );
    }
}

#[test]
#[allow(deprecated)] // Device::ndarray: the backend without the kernels
fn stacked_inputs_that_would_not_span_the_output_go_back_to_the_composite_path() {
    let _g = lock();
    let device = Device::flex();
    let t = |dims: [usize; 2]| Tensor::<2>::ones(dims, &device);
    let stack = |times| Tiled { input: 0, times };
    // No other input spans the stacked output (the kernels would size the output wrongly).
    let narrow = [t([2, 3]), t([1, 3]), t([1, 3])];
    assert!(ternary_summed(Ternary::NormalLogProb, narrow, 1, stack(4)).is_err());
    // The stacked input would itself be broadcast (along the columns).
    let short = [t([2, 1]), t([8, 3]), t([8, 3])];
    assert!(ternary_summed(Ternary::NormalLogProb, short, 1, stack(4)).is_err());
    // Stacked rows that do not match the parameters' rows.
    let off = [t([3, 3]), t([8, 3]), t([8, 3])];
    assert!(ternary_summed(Ternary::NormalLogProb, off, 1, stack(4)).is_err());
    // Off flex.
    let nd = Device::ndarray();
    let on_nd = [2, 8, 8].map(|r| Tensor::<2>::ones([r, 3], &nd));
    assert!(ternary_summed(Ternary::NormalLogProb, on_nd, 1, stack(4)).is_err());
    let fits = [t([2, 3]), t([8, 3]), t([8, 3])];
    assert!(ternary_summed(Ternary::NormalLogProb, fits, 1, stack(4)).is_ok());
}

#[test]
fn log_softmax_gather_matches_burn_ops() {
    let _g = lock();
    let device = Device::flex().autodiff();
    let (rows, k) = (3000, 7);
    // Logits up to ±100 (probabilities that underflow), classes 0..k, and three non-classes.
    let mut logits = spread(rows * k, -100.0, 100.0, 31);
    logits[..k].copy_from_slice(&[100.0, -100.0, 0.0, 3.0, -3.0, 50.0, -50.0]);
    let mut index: Vec<f32> = (0..rows).map(|r| ((r * 5 + 3) % k) as f32).collect();
    index[1] = -1.0;
    index[2] = k as f32;
    index[3] = 2.5;
    let weights = spread(rows, -1.0, 1.0, 32);
    let run = |fused: bool| {
        let l = Tensor::<2>::from_data(TensorData::new(logits.clone(), [rows, k]), &device)
            .require_grad();
        let i = Tensor::<1>::from_data(TensorData::new(index.clone(), [rows]), &device);
        let out = if fused {
            log_softmax_gather(l.clone(), i).unwrap_or_else(|_| panic!("the kernel applies"))
        } else {
            let log_p = burn::tensor::activation::log_softmax(l.clone(), 1);
            let valid = i
                .clone()
                .greater_equal_elem(0.0)
                .bool_and(i.clone().lower_elem(k as f64))
                .bool_and(i.clone().equal(i.clone().floor()));
            let idx = i.clamp(0.0, (k - 1) as f64).int().reshape([rows, 1]);
            log_p
                .gather(1, idx)
                .reshape([rows])
                .mask_fill(valid.bool_not(), f32::NEG_INFINITY)
        };
        let w = Tensor::<1>::from_data(TensorData::new(weights.clone(), [rows]), &device);
        let finite = out.clone().is_finite();
        let total = (out.clone().mask_fill(finite.bool_not(), 0.0) * w).sum();
        let grads = total.backward();
        let g: Vec<f32> = l.grad(&grads).unwrap().into_data().iter::<f32>().collect();
        let v: Vec<f32> = out.into_data().iter::<f32>().collect();
        (v, g)
    };
    let (v, g) = run(true);
    let (v_ref, g_ref) = run(false);
    assert!(
        v[1..4].iter().all(|x| *x == f32::NEG_INFINITY),
        "{:?}",
        &v[..4]
    );
    assert!(
        g[k..4 * k].iter().all(|x| *x == 0.0),
        "no gradient for non-classes"
    );
    for (i, (a, b)) in v.iter().zip(&v_ref).enumerate() {
        assert!(
            a == b || (a - b).abs() <= 2e-5 * (1.0 + b.abs()),
            "value {i}: fused {a}, composite {b}"
        );
    }
    assert_close("log_softmax_gather gradient", &g, &g_ref, 2e-6);
}

/// Runs `fused` on flex with autodiff on inputs of one shape `[R, C]` and compares its values
/// and the gradients of `Σ w·out` (weights `w` as in [`check`]) with float64 references
/// computed on the host, element by element: `value` and `grads` (the partial derivatives).
fn check_host<const N: usize>(
    name: &str,
    inputs: [Vec<f32>; N],
    fused: impl Fn([Tensor<2>; N]) -> Result<Tensor<2>, [Tensor<2>; N]>,
    value: impl Fn([f64; N]) -> f64,
    grads: impl Fn([f64; N]) -> [f64; N],
    tol: f64,
) {
    let device = Device::flex().autodiff();
    let n = inputs[0].len();
    let ts = inputs.clone().map(|v| input(v, [n / C, C], &device));
    let out = fused(ts.clone()).unwrap_or_else(|_| panic!("{name}: the fused path was not taken"));
    let w = spread(n, -1.0, 1.0, 7);
    let got = to_vec(out.clone());
    let weights = Tensor::<2>::from_data(TensorData::new(w.clone(), [n / C, C]), &device);
    let g = (out * weights).sum().backward();
    let got_grads: Vec<Vec<f32>> = ts.iter().map(|t| to_vec(t.grad(&g).unwrap())).collect();
    let close = |a: f32, b: f64| (a as f64 - b).abs() <= tol * (1.0 + b.abs());
    for i in 0..n {
        let x: [f64; N] = core::array::from_fn(|k| inputs[k][i] as f64);
        let want = value(x);
        assert!(
            close(got[i], want) || (got[i] == f32::NEG_INFINITY && want == f64::NEG_INFINITY),
            "{name} value at {x:?}: fused {}, float64 {want}",
            got[i]
        );
        let dw = grads(x);
        for k in 0..N {
            let want = dw[k] * w[i] as f64;
            assert!(
                close(got_grads[k][i], want),
                "{name} d/dinput{k} at {x:?}: fused {}, float64 {want}",
                got_grads[k][i]
            );
        }
    }
}

/// Central finite differences of `f` at `x` in float64, step `1e-6·max(|xₖ|, 1)`.
fn finite_differences<const N: usize>(f: impl Fn([f64; N]) -> f64, x: [f64; N]) -> [f64; N] {
    core::array::from_fn(|k| {
        let h = 1e-6 * x[k].abs().max(1.0);
        let (mut up, mut down) = (x, x);
        up[k] += h;
        down[k] -= h;
        (f(up) - f(down)) / (2.0 * h)
    })
}

#[test]
fn cauchy_and_exponential_match_burn_ops() {
    let _g = lock();
    let n = R * C;
    check(
        "cauchy_log_prob",
        [
            (spread(n, -50.0, 50.0, 21), [R, C]),
            (spread(C, -2.0, 2.0, 22), [1, C]),
            (spread(R, 0.01, 30.0, 23), [R, 1]),
        ],
        |t| ternary(Ternary::CauchyLogProb, t),
        |[x, m, s]| {
            let z = (x - m) / s.clone();
            -z.square().log1p() - s.log() - core::f32::consts::PI.ln()
        },
        2e-6,
    );
    // Values from −1 to 10: a tenth below the support, where the value is −∞ and the
    // gradients 0, as in the composite's masked form.
    check(
        "exponential_log_prob",
        [
            (spread(n, -1.0, 10.0, 24), [R, C]),
            (spread(C, 0.05, 20.0, 25), [1, C]),
        ],
        |t| binary(Binary::ExponentialLogProb, t),
        |[x, rate]| {
            let below = x.clone().lower_elem(0.0);
            let lp = rate.clone().log() - rate * x.clamp_min(0.0);
            lp.mask_fill(below, f32::NEG_INFINITY)
        },
        2e-6,
    );
}

#[test]
fn continuous_bernoulli_icdf_matches_burn_ops() {
    let _g = lock();
    let n = R * C;
    // The composite quantile, with expm1 as exp − 1: where |η| ≥ 0.5, whose gradients that
    // keeps to float32 accuracy; float64 below.
    let icdf = |[eta, u]: [Tensor<2>; 2]| {
        let positive = eta.clone().greater_elem(0.0);
        let pos = eta.clone().clamp_min(1e-6);
        let neg = eta.clamp_max(-1e-6);
        let from_pos =
            ((-u.clone()).add_scalar(1.0) * ((-pos.clone()).exp() - 1.0)).log1p() / pos + 1.0;
        let from_neg = (u * (neg.clone().exp() - 1.0)).log1p() / neg;
        from_neg.mask_where(positive, from_pos)
    };
    let logits: Vec<f32> = spread(n, -30.0, 30.0, 51)
        .into_iter()
        .map(|l| if l.abs() < 0.5 { 0.5 } else { l })
        .collect();
    check(
        "continuous_bernoulli_icdf",
        [(logits, [R, C]), (spread(C, 0.001, 0.999, 52), [1, C])],
        |t| binary(Binary::ContinuousBernoulliIcdf, t),
        icdf,
        2e-5,
    );
    let quantile = |[eta, u]: [f64; 2]| match eta > 0.0 {
        true => 1.0 + ((1.0 - u) * (-eta).exp_m1()).ln_1p() / eta,
        false => (u * eta.exp_m1()).ln_1p() / eta,
    };
    // Near 0, with the Taylor series below 10⁻⁶ (whose error there is far below float32's).
    let small: Vec<f32> = spread(4 * C, -0.5, 0.5, 53)
        .into_iter()
        .enumerate()
        .map(|(i, l)| if i % 7 == 0 { l * 1e-6 } else { l })
        .collect();
    check_host(
        "continuous_bernoulli_icdf near 0",
        [small, spread(4 * C, 0.001, 0.999, 54)],
        |t| binary(Binary::ContinuousBernoulliIcdf, t),
        |[eta, u]| match eta.abs() < 1e-6 {
            true => u + eta * u * (1.0 - u) * 0.5,
            false => quantile([eta, u]),
        },
        |[eta, u]| match eta.abs() < 1e-6 {
            true => [u * (1.0 - u) * 0.5, 1.0 + eta * (1.0 - 2.0 * u) * 0.5],
            false => finite_differences(quantile, [eta, u]),
        },
        1e-4,
    );
}

#[test]
fn student_t_matches_float64() {
    use crate::special::tests::lgamma64;
    let _g = lock();
    let n = 4 * C;
    let value = |[x, df, m, s]: [f64; 4]| {
        let z = (x - m) / s;
        lgamma64((df + 1.0) / 2.0)
            - lgamma64(df / 2.0)
            - 0.5 * (df * core::f64::consts::PI).ln()
            - (df + 1.0) / 2.0 * (z * z / df).ln_1p()
            - s.ln()
    };
    check_host(
        "student_t_log_prob",
        [
            spread(n, -30.0, 30.0, 31),
            spread(n, 0.3, 200.0, 32),
            spread(n, -2.0, 2.0, 33),
            spread(n, 0.05, 5.0, 34),
        ],
        |t| quaternary(Quaternary::StudentTLogProb, t),
        value,
        |x| finite_differences(value, x),
        2e-5,
    );
}

#[test]
fn poisson_and_binomial_match_float64() {
    use crate::special::tests::{digamma64, lgamma64};
    let _g = lock();
    let n = 4 * C;
    // Counts from 0 to 60 with one in ten not a whole number (−∞, gradients 0), and one
    // negative.
    let counts: Vec<f32> = spread(n, 0.0, 60.0, 41)
        .iter()
        .enumerate()
        .map(|(i, k)| match i % 10 {
            3 => k + 0.5,
            7 => -1.0,
            _ => k.floor(),
        })
        .collect();
    let is_count = |k: f64| k >= 0.0 && k.fract() == 0.0;
    check_host(
        "poisson_log_prob",
        [counts.clone(), spread(n, 0.01, 80.0, 42)],
        |t| binary(Binary::PoissonLogProb, t),
        |[k, rate]| match is_count(k) {
            true => k * rate.ln() - rate - lgamma64(k + 1.0),
            false => f64::NEG_INFINITY,
        },
        |[k, rate]| match (is_count(k), k > 0.0) {
            (false, _) => [0.0, 0.0],
            (true, false) => [0.0, -1.0],
            (true, true) => [rate.ln() - digamma64(k + 1.0), k / rate - 1.0],
        },
        1e-5,
    );
    // Totals from 0 to 60, so that some counts exceed them (−∞, gradients 0); logits ±12.
    let totals: Vec<f32> = spread(n, 0.0, 60.0, 43).iter().map(|t| t.floor()).collect();
    let sigmoid64 = |l: f64| 1.0 / (1.0 + (-l).exp());
    check_host(
        "binomial_log_prob",
        [counts, totals, spread(n, -12.0, 12.0, 44)],
        |t| ternary(Ternary::BinomialLogProb, t),
        |[k, total, l]| {
            if !is_count(k) || k > total {
                return f64::NEG_INFINITY;
            }
            let (ln_p, ln_q) = (sigmoid64(l).ln(), sigmoid64(-l).ln());
            lgamma64(total + 1.0) - lgamma64(k + 1.0) - lgamma64(total - k + 1.0)
                + k * ln_p
                + (total - k) * ln_q
        },
        |[k, total, l]| {
            if !is_count(k) || k > total {
                return [0.0; 3];
            }
            let (p, q) = (sigmoid64(l), sigmoid64(-l));
            let dl = k * q - (total - k) * p;
            let dn = match k == total {
                true => p.ln(),
                false => digamma64(total + 1.0) - digamma64(total - k + 1.0) + q.ln(),
            };
            let dk = match k > 0.0 && k < total {
                true => digamma64(total - k + 1.0) - digamma64(k + 1.0) + l,
                false => 0.0,
            };
            [dk, dn, dl]
        },
        1e-5,
    );
}

#[test]
fn laplace_and_log_normal_match_burn_ops() {
    let _g = lock();
    let n = R * C;
    let loc_scale = |seed| {
        [
            (spread(C, -2.0, 2.0, seed), [1, C]),
            (spread(R, 0.01, 30.0, seed + 1), [R, 1]),
        ]
    };
    let [loc, scale] = loc_scale(61);
    check(
        "laplace_log_prob",
        [(spread(n, -50.0, 50.0, 60), [R, C]), loc, scale],
        |t| ternary(Ternary::LaplaceLogProb, t),
        |[x, m, b]| -(x - m).abs() / b.clone() - (b * 2.0).log(),
        2e-6,
    );
    let [loc, scale] = loc_scale(63);
    check(
        "laplace_rsample",
        [loc, scale, (spread(n, -0.999, 0.999, 65), [R, C])],
        |t| ternary(Ternary::LaplaceRsample, t),
        |[m, b, u]| m - b * (u.clone().sign() * (-u.abs()).log1p()),
        2e-6,
    );
    // Values from −1 to 20: some at and below 0, where the value is −∞ and the gradients 0.
    let [loc, scale] = loc_scale(66);
    check(
        "log_normal_log_prob",
        [(spread(n, -1.0, 20.0, 68), [R, C]), loc, scale],
        |t| ternary(Ternary::LogNormalLogProb, t),
        |[x, m, s]| {
            let outside = x.clone().lower_equal_elem(0.0);
            let log_x = x.mask_fill(outside.clone(), 1.0).log();
            let z = (log_x.clone() - m) / s.clone();
            let lp = z.square() * (-0.5) - s.log() - log_x - 0.918_938_5;
            lp.mask_fill(outside, f32::NEG_INFINITY)
        },
        2e-6,
    );
    check(
        "log_normal_rsample",
        [
            (spread(C, -2.0, 2.0, 69), [1, C]),
            (spread(R, 0.01, 3.0, 70), [R, 1]),
            (spread(n, -4.0, 4.0, 71), [R, C]),
        ],
        |t| ternary(Ternary::LogNormalRsample, t),
        |[m, s, e]| (m + s * e).exp(),
        1e-5,
    );
}

#[test]
fn uniform_half_normal_and_geometric_match_burn_ops() {
    let _g = lock();
    let n = R * C;
    // Values from −3 to 3 against [low, high) within [−2, 2]: about half outside.
    check(
        "uniform_log_prob",
        [
            (spread(n, -3.0, 3.0, 72), [R, C]),
            (spread(C, -2.0, -0.01, 73), [1, C]),
            (spread(R, 0.01, 2.0, 74), [R, 1]),
        ],
        |t| ternary(Ternary::UniformLogProb, t),
        |[x, lo, hi]| {
            let inside = (x.clone() - lo.clone())
                .greater_equal_elem(0.0)
                .bool_and((x.clone() - hi.clone()).lower_elem(0.0));
            // `x · 0` gives the value its gradient of 0.
            let lp = x * 0.0 - (hi - lo).log();
            lp.mask_fill(inside.bool_not(), f32::NEG_INFINITY)
        },
        2e-6,
    );
    // Values from −1 to 30, a few exactly 0 (finite there): some below 0, −∞ with gradients 0.
    let values: Vec<f32> = spread(n, -1.0, 30.0, 75)
        .into_iter()
        .enumerate()
        .map(|(i, x)| if i % 11 == 0 { 0.0 } else { x })
        .collect();
    check(
        "half_normal_log_prob",
        [(values, [R, C]), (spread(C, 0.01, 30.0, 76), [1, C])],
        |t| binary(Binary::HalfNormalLogProb, t),
        |[x, s]| {
            let below = x.clone().lower_elem(0.0);
            let z = x.clamp_min(0.0) / s.clone();
            let lp = z.square() * (-0.5) - s.log() - 0.225_791_35;
            lp.mask_fill(below, f32::NEG_INFINITY)
        },
        2e-6,
    );
    // Counts from 0 to 30, one in ten not whole and one in ten negative; logits ±30.
    let counts: Vec<f32> = spread(n, 0.0, 30.0, 77)
        .iter()
        .enumerate()
        .map(|(i, k)| match i % 10 {
            3 => k.floor() + 0.5,
            7 => -1.0,
            _ => k.floor(),
        })
        .collect();
    check(
        "geometric_log_prob",
        [(counts, [R, C]), (spread(C, -30.0, 30.0, 78), [1, C])],
        |t| binary(Binary::GeometricLogProb, t),
        |[k, l]| {
            let outside = k
                .clone()
                .lower_elem(0.0)
                .bool_or(k.clone().floor().not_equal(k.clone()));
            let k = k.mask_fill(outside.clone(), 0.0);
            let lp = -(k * softplus_ref(l.clone()) + softplus_ref(-l));
            lp.mask_fill(outside, f32::NEG_INFINITY)
        },
        2e-6,
    );
}

#[test]
fn cauchy_quantile_matches_burn_ops() {
    let _g = lock();
    // The composite quantile, −cot(πq) below ½ and cot(π(1 − q)) from ½.
    let quantile = |[q]: [Tensor<2>; 1]| {
        let a = q.clone().clamp_max(0.5) * core::f32::consts::PI;
        let lower = -(a.clone().cos() / a.sin());
        let b = (-q.clone() + 1.0).clamp_max(0.5) * core::f32::consts::PI;
        let upper = b.clone().cos() / b.sin();
        upper.mask_where(q.lower_elem(0.5), lower)
    };
    // Away from ½, where the composite's cos(π/2) ≠ 0 in float32 leaves an absolute error.
    let q: Vec<f32> = spread(R * C, 1e-4, 0.9999, 81)
        .into_iter()
        .map(|q| if (q - 0.5).abs() < 0.05 { 0.3 } else { q })
        .collect();
    check(
        "cauchy_quantile",
        [(q, [R, C])],
        |[t]| unary(Unary::CauchyQuantile, t).map_err(|t| [t]),
        quantile,
        2e-6,
    );
    let tan = |[q]: [f64; 1]| (core::f64::consts::PI * (q - 0.5)).tan();
    check_host(
        "cauchy_quantile in float64",
        [spread(4 * C, 1e-6, 1.0 - 1e-6, 82)],
        |[t]| unary(Unary::CauchyQuantile, t).map_err(|t| [t]),
        tan,
        |x| [core::f64::consts::PI * (1.0 + tan(x).powi(2))],
        1e-5,
    );
}

#[test]
fn gamma_and_beta_log_densities_match_float64() {
    use crate::special::tests::{digamma64, lgamma64};
    let _g = lock();
    let n = 4 * C;
    // Concentrations from 0.05 to 200 (both branches of the Gamma form), values in the bulk
    // and the tails, one in ten negative (−∞, gradients 0).
    let values: Vec<f32> = spread(n, 1e-3, 60.0, 51)
        .iter()
        .enumerate()
        .map(|(i, x)| if i % 10 == 3 { -x } else { *x })
        .collect();
    check_host(
        "gamma_log_prob",
        [
            values,
            spread(n, 0.05, 200.0, 52),
            spread(n, 0.05, 20.0, 53),
        ],
        |t| ternary(Ternary::GammaLogProb, t),
        |[x, a, r]| match x < 0.0 {
            true => f64::NEG_INFINITY,
            false => a * r.ln() + (a - 1.0) * x.ln() - r * x - lgamma64(a),
        },
        |[x, a, r]| match x < 0.0 {
            true => [0.0; 3],
            false => [(a - 1.0) / x - r, (r * x).ln() - digamma64(a), a / r - x],
        },
        2e-5,
    );
    let values: Vec<f32> = spread(n, 1e-4, 1.0 - 1e-4, 54)
        .iter()
        .enumerate()
        .map(|(i, x)| if i % 10 == 3 { x + 1.0 } else { *x })
        .collect();
    check_host(
        "beta_log_prob",
        [
            values,
            spread(n, 0.05, 200.0, 55),
            spread(n, 0.05, 200.0, 56),
        ],
        |t| ternary(Ternary::BetaLogProb, t),
        |[x, a, b]| match x > 1.0 {
            true => f64::NEG_INFINITY,
            false => {
                (a - 1.0) * x.ln() + (b - 1.0) * (-x).ln_1p() - lgamma64(a) - lgamma64(b)
                    + lgamma64(a + b)
            }
        },
        |[x, a, b]| match x > 1.0 {
            true => [0.0; 3],
            false => {
                let s = digamma64(a + b);
                [
                    (a - 1.0) / x - (b - 1.0) / (1.0 - x),
                    x.ln() - digamma64(a) + s,
                    (-x).ln_1p() - digamma64(b) + s,
                ]
            }
        },
        2e-5,
    );
}

#[test]
fn gamma_and_beta_log_densities_take_their_limits() {
    let _g = lock();
    let device = Device::flex();
    let t = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [1, 4]), &device);
    let gamma = ternary(
        Ternary::GammaLogProb,
        [
            t(vec![0.0, 0.0, 0.0, -1.0]),
            t(vec![0.5, 1.0, 2.0, 2.0]),
            t(vec![1.0, 2.0, 1.0, 1.0]),
        ],
    )
    .unwrap_or_else(|_| panic!("the fused path was not taken"));
    let g = to_vec(gamma);
    assert_eq!(g[0], f32::INFINITY);
    assert!((g[1] - 2f32.ln()).abs() < 1e-6);
    assert_eq!([g[2], g[3]], [f32::NEG_INFINITY; 2]);
    let beta = ternary(
        Ternary::BetaLogProb,
        [
            t(vec![0.0, 0.0, 1.0, 1.5]),
            t(vec![0.5, 1.0, 2.0, 2.0]),
            t(vec![2.0, 3.0, 0.5, 2.0]),
        ],
    )
    .unwrap_or_else(|_| panic!("the fused path was not taken"));
    let b = to_vec(beta);
    assert_eq!(b[0], f32::INFINITY);
    assert!((b[1] - 3f32.ln()).abs() < 1e-6);
    assert_eq!(b[2], f32::INFINITY);
    assert_eq!(b[3], f32::NEG_INFINITY);
}

/// `[B, K, K]` lower-triangular matrices with a diagonal in `[0.5, 1.5]` and entries in
/// `[−0.5, 0.5]` below it, and NaN above it, which the kernels must not read.
fn triangular(b: usize, k: usize) -> Vec<f32> {
    let below = spread(b * k * k, -0.5, 0.5, 41);
    let diag = spread(b * k * k, 0.5, 1.5, 42);
    (0..b * k * k)
        .map(|n| match ((n % (k * k)) / k, n % k) {
            (i, j) if j < i => below[n],
            (i, j) if j == i => diag[n],
            _ => f32::NAN,
        })
        .collect()
}

/// The composite of [`tril_log_prob`]: forward substitution with burn operations, one entry
/// of `z` at a time, on the lower triangle of `scale_tril`.
fn tril_log_prob_ref(loc: Tensor<2>, scale_tril: Tensor<3>, x: Tensor<3>) -> Tensor<2> {
    let [s, b, k] = x.dims();
    let l = scale_tril.tril(0);
    let entry = |i: usize, j: usize| l.clone().narrow(1, i, 1).narrow(2, j, 1).reshape([1, b, 1]);
    let d = x - loc.unsqueeze::<3>();
    let mut z: Vec<Tensor<3>> = Vec::new();
    let mut log_det = Tensor::<3>::zeros([1, b, 1], &d.device());
    for i in 0..k {
        let mut r = d.clone().narrow(2, i, 1);
        for (j, zj) in z.iter().enumerate() {
            r = r - entry(i, j) * zj.clone();
        }
        z.push(r / entry(i, i));
        log_det = log_det + entry(i, i).log();
    }
    let squares = Tensor::cat(z, 2).square().sum_dim(2);
    (squares * -0.5 - log_det).reshape([s, b])
}

/// The composite of [`tril_affine`]: `μ + Σⱼ L[.., j] εⱼ` by a broadcast product and a sum, on
/// the lower triangle of `scale_tril`.
fn tril_affine_ref(loc: Tensor<2>, scale_tril: Tensor<3>, noise: Tensor<3>) -> Tensor<3> {
    let [s, b, k] = noise.dims();
    let product = scale_tril.tril(0).unsqueeze::<4>() * noise.unsqueeze_dim::<4>(2);
    loc.unsqueeze::<3>() + product.sum_dim(3).reshape([s, b, k])
}

/// The triangular kernels (flex with autodiff) against their composites: the values and the
/// gradients of `Σ w·out` with respect to `loc`, `scale_tril` (0 above the diagonal, which
/// holds NaN) and the values, with and without sample rows repeating the batch.
#[test]
fn triangular_kernels_match_burn_ops() {
    let _g = lock();
    let device = Device::flex().autodiff();
    for (s, b, k) in [(1, 300, 8), (3, 50, 5), (4, 1, 3), (2, 70, 1)] {
        let make = || {
            let t3 = |v: Vec<f32>, shape: [usize; 3]| {
                Tensor::<3>::from_data(TensorData::new(v, shape), &device).require_grad()
            };
            let loc = Tensor::<2>::from_data(
                TensorData::new(spread(b * k, -1.0, 1.0, 43), [b, k]),
                &device,
            )
            .require_grad();
            let l = t3(triangular(b, k), [b, k, k]);
            let x = t3(spread(s * b * k, -2.0, 2.0, 44), [s, b, k]);
            (loc, l, x)
        };
        let grads = |(loc, l, x): &(Tensor<2>, Tensor<3>, Tensor<3>), out: Tensor<3>| {
            let w = Tensor::<3>::from_data(
                TensorData::new(
                    spread(out.shape().num_elements(), -1.0, 1.0, 45),
                    out.dims(),
                ),
                &device,
            );
            let value: Vec<f32> = out.clone().into_data().iter::<f32>().collect();
            let g = (out * w).sum().backward();
            let flat = |t: Option<Tensor<3>>| t.unwrap().into_data().iter::<f32>().collect();
            let dloc: Vec<f32> = loc.grad(&g).unwrap().into_data().iter::<f32>().collect();
            (value, [dloc, flat(l.grad(&g)), flat(x.grad(&g))])
        };
        let what = format!("[{s}, {b}, {k}]");
        for log_prob in [true, false] {
            let ins = make();
            let (loc, l, x) = ins.clone();
            let fused = if log_prob {
                tril_log_prob(loc, l, x).map(|t| t.reshape([s, b, 1]))
            } else {
                tril_affine(loc, l, x)
            };
            let fused = fused.unwrap_or_else(|_| panic!("{what}: the fused path was not taken"));
            let (v_fused, g_fused) = grads(&ins, fused);
            let ins = make();
            let (loc, l, x) = ins.clone();
            let reference = if log_prob {
                tril_log_prob_ref(loc, l, x).reshape([s, b, 1])
            } else {
                tril_affine_ref(loc, l, x)
            };
            let (v_ref, g_ref) = grads(&ins, reference);
            let name = if log_prob { "log_prob" } else { "affine" };
            assert_close(&format!("{what} {name} value"), &v_fused, &v_ref, 2e-5);
            for (input, (a, b)) in ["loc", "scale_tril", "x"]
                .iter()
                .zip(g_fused.iter().zip(&g_ref))
            {
                assert_close(&format!("{what} {name} d/d{input}"), a, b, 5e-5);
            }
            let dl = &g_fused[1];
            assert!(
                (0..dl.len()).all(|n| n % k <= (n % (k * k)) / k || dl[n] == 0.0),
                "{what} {name}: no gradient above the diagonal"
            );
        }
    }
}

#[test]
fn triangular_kernels_fall_back_off_flex_on_other_shapes_and_switched_off() {
    let _g = lock();
    let args = |device: &Device, b: usize| {
        (
            Tensor::<2>::zeros([2, 3], device),
            Tensor::<3>::ones([b, 3, 3], device),
            Tensor::<3>::zeros([4, 2, 3], device),
        )
    };
    let flex = Device::flex();
    let (loc, l, x) = args(&flex, 2);
    assert!(tril_log_prob(loc.clone(), l.clone(), x.clone()).is_ok());
    assert!(tril_affine(loc.clone(), l.clone(), x.clone()).is_ok());
    set_fused_kernels(false);
    let off = tril_log_prob(loc, l, x).is_err();
    set_fused_kernels(true);
    assert!(off, "switched off, the composite path is taken");
    let (loc, l, x) = args(&flex, 1);
    assert!(
        tril_affine(loc, l, x).is_err(),
        "a batch of matrices that does not match loc's is left to the composite path"
    );
    let (loc, l, _) = args(&flex, 2);
    let empty = Tensor::<3>::zeros([0, 2, 3], &flex);
    assert!(tril_log_prob(loc, l, empty).is_err(), "no rows");
    #[allow(deprecated)]
    let (loc, l, x) = args(&Device::ndarray(), 2);
    assert!(
        tril_log_prob(loc, l, x).is_err(),
        "ndarray takes the composite path"
    );
}
