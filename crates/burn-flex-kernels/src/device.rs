//! Whether a kernel applies: the process-wide switch, and the checks that a tensor is a
//! float32 tensor on the `flex` backend.

use burn::tensor::{Device, Tensor};
use core::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the fused CPU kernels on (the default) or off for the whole process.
///
/// With them off, every formula runs as a chain of ordinary burn operations on every backend.
/// Results agree to float32 rounding either way; this switch exists for benchmarking
/// (`bench_workloads --no-fused`) and for checking the two against each other.
///
/// # Example
/// ```
/// burn_flex_kernels::set_fused_kernels(false);
/// assert!(!burn_flex_kernels::fused_kernels_enabled());
/// burn_flex_kernels::set_fused_kernels(true);
/// ```
pub fn set_fused_kernels(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether the fused CPU kernels are in use (see [`set_fused_kernels`]).
pub fn fused_kernels_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Whether the kernels take `t`: a float32 tensor on `flex` (with or without autodiff).
pub(crate) fn f32_on_flex<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == burn::tensor::DType::F32 && on_flex(&t.device())
}

/// Whether `device` is a `flex` device (with or without autodiff).
pub(crate) fn on_flex(device: &Device) -> bool {
    matches!(
        device.clone().without_autodiff().as_dispatch(),
        burn::backend::DispatchDevice::Flex(_)
    )
}
