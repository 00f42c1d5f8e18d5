//! Helpers shared by the integration tests: the device of the backend-independent suites
//! (`test_device`), float64 sample statistics, the standard-error check, the moment and
//! entropy checks, and Simpson's rule.
#![allow(dead_code)] // each test binary uses its own subset

pub mod any_bijector;

use std::sync::Mutex;

use burn::tensor::{Device, Tensor};
use burn_probability::prelude::*;

/// burn's generator is process-global: tests that seed and draw hold this lock.
pub static RNG: Mutex<()> = Mutex::new(());

pub fn flex() -> Device {
    Device::flex()
}

/// The environment variable that chooses the device of `test_device`.
pub const TEST_DEVICE_VAR: &str = "BURN_PROBABILITY_TEST_DEVICE";

/// The device that the reference-value, property and objective tests run on, named by
/// `BURN_PROBABILITY_TEST_DEVICE`: `flex` (the default, also when the variable is unset or
/// empty), `ndarray`, or `wgpu` (the default adapter: a GPU's Vulkan, Metal or DirectX driver, or
/// Mesa's software Vulkan driver, lavapipe). Any other value panics with a message saying
/// what is accepted.
pub fn test_device() -> Device {
    match std::env::var(TEST_DEVICE_VAR).as_deref().unwrap_or("") {
        "" | "flex" => Device::flex(),
        #[allow(deprecated)]
        // burn-ndarray is deprecated upstream but still a supported backend of ours
        "ndarray" => Device::ndarray(),
        "wgpu" => wgpu(),
        other => panic!(
            "{TEST_DEVICE_VAR}={other:?}: expected `flex` (the default), `ndarray` or `wgpu`"
        ),
    }
}

/// Whether `test_device` is `wgpu`.
pub fn testing_on_wgpu() -> bool {
    std::env::var(TEST_DEVICE_VAR).as_deref() == Ok("wgpu")
}

/// Whether a check is to be skipped because `test_device` is `wgpu`, where a burn bug
/// described in `docs/wgpu-notes.md` gives it wrong numbers: then prints
/// `SKIPPED on wgpu: <why> (docs/wgpu-notes.md)` past the output capture.
pub fn skip_on_wgpu(why: &str) -> bool {
    let skip = testing_on_wgpu();
    if skip {
        use std::io::Write;
        writeln!(
            std::io::stdout(),
            "SKIPPED on wgpu: {why} (docs/wgpu-notes.md)"
        )
        .ok();
    }
    skip
}

/// wgpu's default adapter (the tests' dev-dependency on burn enables the backend).
fn wgpu() -> Device {
    Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)
}

pub fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

pub fn t1(xs: &[f64], device: &Device) -> Tensor<1> {
    let v: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
    Tensor::from_floats(v.as_slice(), device)
}

/// Mean and standard error of each column of a `[n, k]` sample, in float64.
pub fn column_stats(x: Tensor<2>) -> Vec<(f64, f64)> {
    let [n, k] = x.dims();
    let data = vals(x);
    (0..k)
        .map(|j| {
            let col = || (0..n).map(|i| data[i * k + j]);
            let mean = col().sum::<f64>() / n as f64;
            let var = col().map(|v| (v - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
            (mean, (var / n as f64).sqrt())
        })
        .collect()
}

pub fn assert_within_se(what: &str, got: f64, se: f64, want: f64) {
    assert!(
        (got - want).abs() <= 5.0 * se + 1e-6 * want.abs(),
        "{what}: sample value {got} is more than 5 standard errors ({se}) from {want}"
    );
}

/// Sample mean and variance of each batch member against the analytic moments.
pub fn check_sample_moments<Dist: Moments<1>>(name: &str, d: &Dist, seed: u64) {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    d.device().seed(seed);
    let x: Tensor<2> = d.sample_n(200_000);
    let (mean, var) = (vals(d.mean()), vals(d.variance()));
    let centered = x.clone() - d.mean().unsqueeze::<2>();
    for (i, (m, se)) in column_stats(x).into_iter().enumerate() {
        assert_within_se(&format!("{name}[{i}] mean"), m, se, mean[i]);
    }
    for (i, (v, se)) in column_stats(centered.square()).into_iter().enumerate() {
        assert_within_se(&format!("{name}[{i}] variance"), v, se, var[i]);
    }
}

/// `−E[ln p(X)]` by Monte Carlo against the closed-form entropy.
pub fn check_entropy<Dist: Entropy<1, Batch = Tensor<1>>>(name: &str, d: &Dist, seed: u64) {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    d.device().seed(seed);
    let x: Tensor<2> = d.sample_n(100_000);
    let neg_lp: Tensor<2> = -d.log_prob_n(x);
    let want = vals(d.entropy());
    for (i, (h, se)) in column_stats(neg_lp).into_iter().enumerate() {
        assert_within_se(&format!("{name}[{i}] entropy"), h, se, want[i]);
    }
}

/// Composite Simpson's rule of `exp(ln p)` on `[a, b]` with `n` (even) intervals, the points
/// evaluated as one tensor on `device`.
pub fn simpson(
    log_density: impl Fn(Tensor<1>) -> Tensor<1>,
    device: &Device,
    a: f64,
    b: f64,
    n: usize,
) -> f64 {
    let h = (b - a) / n as f64;
    let xs: Vec<f64> = (0..=n).map(|i| a + h * i as f64).collect();
    let ys = vals(log_density(t1(&xs, device)).exp());
    let mut s = ys[0] + ys[n];
    for (i, y) in ys.iter().enumerate().take(n).skip(1) {
        s += if i % 2 == 1 { 4.0 * y } else { 2.0 * y };
    }
    s * h / 3.0
}
