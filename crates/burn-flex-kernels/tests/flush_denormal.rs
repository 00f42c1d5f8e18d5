//! `set_flush_denormal` changes the floating-point environment of the whole process's CPU
//! threads, so it is tested in its own test binary (its own process), one test function.

use rayon::prelude::*;
use std::hint::black_box;

/// 1e-30 · 1e-10 = 1e-40, a subnormal float32, on this thread and on rayon's workers (where
/// the kernels and the flex backend run).
fn products() -> Vec<f32> {
    let mut all = vec![black_box(1e-30f32) * black_box(1e-10f32)];
    all.extend(
        (0..64)
            .into_par_iter()
            .map(|_| black_box(1e-30f32) * black_box(1e-10f32))
            .collect::<Vec<_>>(),
    );
    all
}

#[test]
fn flushing_turns_subnormal_results_and_inputs_to_zero_on_every_thread_and_back() {
    let subnormal = f32::from_bits(1); // 1.4e-45, the smallest positive float32
    assert!(products().iter().all(|&p| p > 0.0 && p < f32::MIN_POSITIVE));
    assert!(black_box(subnormal) + black_box(0.0f32) > 0.0);

    let supported = burn_flex_kernels::set_flush_denormal(true);
    assert_eq!(supported, cfg!(target_arch = "x86_64"));
    if supported {
        assert!(products().iter().all(|&p| p == 0.0), "{:?}", products());
        // Denormals-are-zero: a subnormal input reads as 0.
        assert_eq!(black_box(subnormal) + black_box(0.0f32), 0.0);
        // Threads started by this one inherit the setting.
        let spawned = std::thread::spawn(|| black_box(1e-30f32) * black_box(1e-10f32));
        assert_eq!(spawned.join().unwrap(), 0.0);
        // Normal values are untouched.
        assert_eq!(
            black_box(1e-20f32) * black_box(1e-10f32),
            1e-20f32 * 1e-10f32
        );
    }

    burn_flex_kernels::set_flush_denormal(false);
    assert!(products().iter().all(|&p| p > 0.0 && p < f32::MIN_POSITIVE));
    assert!(black_box(subnormal) + black_box(0.0f32) > 0.0);
}
