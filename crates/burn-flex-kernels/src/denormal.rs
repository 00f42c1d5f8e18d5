//! Flushing subnormal floats to zero on the CPU, as `torch.set_flush_denormal` does (and as
//! TensorFlow does by default on its CPU threads).
//!
//! Float32 values below `1.18·10⁻³⁸` are subnormal. x86 CPUs handle an arithmetic operation
//! with a subnormal input or result in microcode, about a hundred times slower than a normal
//! one. Training produces them: small gradients, optimizer moments that decay geometrically
//! once a ReLU unit stops receiving gradient, and products of such values (docs/performance.md
//! has the effect on the MNIST conv VAE).
//!
//! On x86-64 this sets the MXCSR bits flush-to-zero (subnormal results become 0) and
//! denormals-are-zero (subnormal inputs read as 0), on the calling thread and on every thread of
//! rayon's global pool, which runs the `flex` backend's and this crate's parallel kernels.
//! Threads started afterwards by the calling thread inherit the setting (POSIX threads inherit
//! the floating-point environment).

/// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6).
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = 0x8040;

/// Sets or clears flush-to-zero and denormals-are-zero on this thread.
#[cfg(target_arch = "x86_64")]
fn set_this_thread(flush: bool) {
    let mut csr: u32 = 0;
    // SAFETY: `stmxcsr` stores this thread's SSE control/status register into `csr` and
    // `ldmxcsr` loads it back with only the two flush bits changed; neither touches other
    // memory or the stack, and every x86-64 CPU has both instructions.
    unsafe {
        core::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
        csr = if flush { csr | FTZ_DAZ } else { csr & !FTZ_DAZ };
        core::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly, preserves_flags));
    }
}

/// Turns flushing of subnormal (denormal) float32 and float64 values to zero on or off for the
/// CPU threads that run burn's CPU backends: the calling thread, rayon's global pool and the
/// threads started afterwards by the calling thread. Returns whether this CPU supports it
/// (`true` on x86-64; elsewhere nothing changes and it returns `false`), like
/// `torch.set_flush_denormal`.
///
/// Flushing changes results only where a value would be below `1.18·10⁻³⁸` (float32): it
/// becomes 0. Training programs gain speed from it (see the module notes); numerical code that
/// relies on gradual underflow should leave it off, which is the default. Call it at the start
/// of `main`, before other threads start.
///
/// # Example
/// ```
/// use std::hint::black_box;
/// if burn_flex_kernels::set_flush_denormal(true) {
///     // 1e-30 · 1e-10 = 1e-40 is subnormal in float32: flushed to zero.
///     assert_eq!(black_box(1e-30f32) * black_box(1e-10f32), 0.0);
/// }
/// burn_flex_kernels::set_flush_denormal(false);
/// assert!(black_box(1e-30f32) * black_box(1e-10f32) > 0.0);
/// ```
pub fn set_flush_denormal(flush: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        set_this_thread(flush);
        rayon::broadcast(|_| set_this_thread(flush));
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = flush;
        false
    }
}
