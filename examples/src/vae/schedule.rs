//! The learning-rate schedule: a linear warm-up, then the constant rate.

use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use burn::optim::LearningRate;

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

/// [`warmed_up`] as a burn learning-rate scheduler (for burn-train's `Learner`, which calls
/// it once before every optimizer step). Its record keeps the number of steps taken.
#[derive(Clone, Debug)]
pub struct WarmupLr {
    lr: f64,
    warmup: usize,
    /// Steps taken.
    step: usize,
}

impl WarmupLr {
    /// The schedule of rate `lr` with a warm-up of `warmup` steps, before its first step.
    pub fn new(lr: f64, warmup: usize) -> Self {
        Self::after(lr, warmup, 0)
    }

    /// The same schedule after `steps` steps (a resumed run's): its next rate is
    /// `warmed_up(lr, warmup, steps)`.
    pub fn after(lr: f64, warmup: usize, steps: usize) -> Self {
        Self {
            lr,
            warmup,
            step: steps,
        }
    }
}

impl LrScheduler for WarmupLr {
    fn step(&mut self) -> LearningRate {
        let lr = warmed_up(self.lr, self.warmup, self.step);
        self.step += 1;
        lr
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar("step", self.step)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        self.step = record.scalar("step").unwrap_or(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduler_steps_through_the_warm_up_and_records_its_step() {
        let mut s = WarmupLr::new(1e-3, 4);
        let rates: Vec<f64> = (0..6).map(|_| s.step()).collect();
        let want: Vec<f64> = (0..6).map(|t| warmed_up(1e-3, 4, t)).collect();
        assert_eq!(rates, want);
        let mut resumed = WarmupLr::new(1e-3, 4);
        resumed.load_record(s.to_record());
        assert_eq!(resumed.step(), s.step());
        // `after(…, 2)` continues where two steps left off, in the record too.
        let mut after = WarmupLr::after(1e-3, 4, 2);
        assert_eq!(after.to_record().scalar::<usize>("step"), Some(2));
        assert_eq!(after.step(), warmed_up(1e-3, 4, 2));
        assert_eq!(after.step(), warmed_up(1e-3, 4, 3));
    }

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
