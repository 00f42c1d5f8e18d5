//! The optimizer update kernels: one pass over a parameter, its gradient and its moments.

use rayon::prelude::*;

/// `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`, `θ ← θ − lr · (m·c) / (√v + ε')`, each
/// rounded in the order burn's `Adam` rounds it.
#[inline(always)]
fn adam_run(s: &AdamStep, param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32]) {
    let n = param.len();
    let (grad, m, v) = (&grad[..n], &mut m[..n], &mut v[..n]);
    let (f1, f2) = (1.0 - s.beta_1, 1.0 - s.beta_2);
    for i in 0..n {
        let g = grad[i];
        let mi = m[i] * s.beta_1 + g * f1;
        let vi = v[i] * s.beta_2 + (g * g) * f2;
        m[i] = mi;
        v[i] = vi;
        param[i] -= ((mi * s.combined) / (vi.sqrt() + s.epsilon)) * s.lr;
    }
}

multiversion!(
    fn adam_simd[](s: &AdamStep, param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32])
        => adam_run
);

/// Elements per task: the update is a few operations per element, so small tensors stay on
/// one thread.
const TASK: usize = 1 << 16;

/// One Adam update of `param` and its moments `m`, `v` in place (all the length of `grad`).
pub(crate) fn adam(s: &AdamStep, param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32]) {
    if param.len() <= TASK {
        adam_simd(s, param, grad, m, v);
        return;
    }
    param
        .par_chunks_mut(TASK)
        .zip(grad.par_chunks(TASK))
        .zip(m.par_chunks_mut(TASK))
        .zip(v.par_chunks_mut(TASK))
        .for_each(|(((p, g), m), v)| adam_simd(s, p, g, m, v));
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// burn's Adam, one operation (one rounding) at a time, as its tensor ops run it.
    fn reference(s: &AdamStep, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        for i in 0..p.len() {
            let a = m[i] * s.beta_1;
            let b = g[i] * (1.0 - s.beta_1);
            m[i] = a + b;
            let sq = g[i] * g[i];
            let c = v[i] * s.beta_2;
            let d = sq * (1.0 - s.beta_2);
            v[i] = c + d;
            let num = m[i] * s.combined;
            let den = v[i].sqrt() + s.epsilon;
            let delta = (num / den) * s.lr;
            p[i] -= delta;
        }
    }

    #[test]
    fn fused_adam_equals_the_step_by_step_update_bit_for_bit() {
        // Long enough for the parallel split and a ragged last chunk.
        let n = 3 * TASK + 17;
        let value = |i: usize, k: u32| {
            ((i as f32 * 0.618 + k as f32).sin()) * 10f32.powi((i % 7) as i32 - 3)
        };
        let mut p: Vec<f32> = (0..n).map(|i| value(i, 1)).collect();
        let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
        let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
        for t in 1..=5 {
            let g: Vec<f32> = (0..n).map(|i| value(i, 10 + t as u32)).collect();
            let s = AdamStep::new(0.9, 0.999, 1e-8, 1e-3, t);
            adam(&s, &mut p, &g, &mut m, &mut v);
            reference(&s, &mut p2, &g, &mut m2, &mut v2);
        }
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&p), bits(&p2));
        assert_eq!(bits(&m), bits(&m2));
        assert_eq!(bits(&v), bits(&v2));
    }

    #[test]
    fn adam_step_constants() {
        let s = AdamStep::new(0.9, 0.999, 1e-8, 1e-3, 1);
        // After one step: √(1 − 0.999) / (1 − 0.9) = 0.316… (to float32's rounding of
        // 1 − 0.999, a relative 5e-5).
        let want = 0.001f64.sqrt() / 0.1;
        assert!(
            (s.combined as f64 / want - 1.0).abs() < 1e-4,
            "{}",
            s.combined
        );
        assert!((s.epsilon as f64 / (1e-8 * 0.001f64.sqrt()) - 1.0).abs() < 1e-4);
        assert_eq!(s.lr, 1e-3);
    }
}
