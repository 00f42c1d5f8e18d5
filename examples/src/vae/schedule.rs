//! The learning-rate schedule: a linear warm-up, then the constant rate.

/// The learning rate of optimizer step `step` (counted from 0) with a warm-up of `warmup`
/// steps: `lr · min(1, (step + 1) / warmup)`, so the rate rises linearly from `lr / warmup`
/// and reaches `lr` at step `warmup − 1`. A warm-up of 0 or 1 is the constant rate.
pub fn warmed_up(lr: f64, warmup: usize, step: usize) -> f64 {
    if step >= warmup {
        lr
    } else {
        lr * (step + 1) as f64 / warmup as f64
    }
}

#[cfg(test)]
mod tests {
    use super::warmed_up;

    #[test]
    fn the_learning_rate_rises_linearly_over_the_warm_up_then_holds() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-15;
        // Warm-up of 4 steps at lr 1e-3: 1/4, 2/4, 3/4 of it, then all of it.
        for (step, want) in [
            (0, 2.5e-4),
            (1, 5e-4),
            (2, 7.5e-4),
            (3, 1e-3),
            (4, 1e-3),
            (99, 1e-3),
        ] {
            assert!(close(warmed_up(1e-3, 4, step), want), "step {step}");
        }
        // No warm-up: the full rate from the first step.
        assert!(close(warmed_up(1e-3, 0, 0), 1e-3));
        assert!(close(warmed_up(1e-3, 1, 0), 1e-3));
    }
}
