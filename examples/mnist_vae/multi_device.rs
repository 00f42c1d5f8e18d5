//! `--devices`: the training epochs as data-parallel training through burn-train
//! (`SupervisedTraining` with `ExecutionStrategy::MultiDevice(devices, OptimMainDevice)`).
//!
//! Every optimizer step takes one global batch of `--batch-size` images in the single-device
//! run's order; device `k` of `N` computes the loss of its part of it (the pieces are in
//! `burn_probability_examples::data_parallel`), burn-train sums the devices' gradients on the
//! first device and steps the optimizer there, with the same learning-rate warm-up. After
//! every step the first device's training thread folds the weights into their moving average
//! and sets the categorical model's temperature, as the single-device loop does. After every
//! epoch training pauses while this module evaluates and reports the epoch exactly as the
//! single-device run does (`metrics.jsonl`, `training_curve.png`, the epoch's line).
//!
//! What it does not do: write a checkpoint (burn-train returns the trained model but not the
//! optimizer state, so `--resume` is refused with `--devices`), or run small steps on a
//! one-thread pool. The flex backend draws every device's noise from one process-wide
//! generator, in whatever order the workers ask, so a run is not reproducible from `--seed`
//! bit for bit (docs/scaling.md).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use burn::train::logger::InMemoryMetricLogger;
use burn::train::{ExecutionStrategy, Learner, MultiDeviceOptim, SupervisedTraining};
use burn_probability_examples::data_parallel::{
    BatchLoss, EpochBar, EpochPause, LossMeter, Replica, ShardLoader,
};
use burn_probability_examples::mnist::{Mnist, Split};
use burn_probability_examples::vae::ema::Ema;
use burn_probability_examples::vae::model::Vae;
use burn_probability_examples::vae::schedule::WarmupLr;

use crate::train::{permutation, report_epoch};
use crate::{Run, Settings, State, fail};

/// What the training steps share: the settings, and the weight average and step count that
/// the step hook keeps.
#[derive(Debug)]
struct Steps {
    s: Settings,
    /// Optimizer steps (global batches) per epoch.
    batches: usize,
    shared: Mutex<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Optimizer steps taken.
    steps: usize,
    /// The weight average, from the first optimizer step on.
    ema: Option<Ema<Vae>>,
    /// The trained weights at the end of the last epoch.
    latest: Option<Vae>,
}

/// The VAE as data-parallel training sees it: its loss is the run's objective, and after every
/// optimizer step it updates the weight average and the temperature.
#[derive(Module, Debug)]
struct Trainee {
    vae: Vae,
    #[module(skip)]
    steps: Arc<Steps>,
}

impl BatchLoss for Trainee {
    fn loss(&self, x: Tensor<2>) -> Tensor<1> {
        let s = &self.steps.s;
        self.vae.bound_with(x, s.objective, s.k, s.likelihood).loss
    }

    fn after_step(mut self) -> Self {
        let (s, batches) = (&self.steps.s, self.steps.batches);
        let mut shared = self.steps.shared.lock().expect("the step state");
        shared.steps += 1;
        if s.ema_decay > 0.0 {
            shared
                .ema
                .get_or_insert_with(|| Ema::new(self.vae.valid(), s.ema_decay))
                .update(&self.vae);
        }
        if shared.steps.is_multiple_of(batches) {
            shared.latest = Some(self.vae.clone());
        }
        // The temperature of the next step, as the single-device loop sets it.
        let temperature = s.temperature_at(shared.steps);
        drop(shared);
        self.vae.set_temperature(temperature);
        self
    }
}

/// Touches every parameter, so that lazily initialized weights are drawn here, on this
/// thread, from the generator as `--seed` set it (not by the first worker, while the other
/// draws its noise).
struct Materialize;

impl ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// Seeds every device's generator (plain and autodiff) with `seed`.
fn reseed(devices: &[Device], seed: u64) {
    for device in devices {
        device.seed(seed);
        device.clone().autodiff().seed(seed);
    }
}

/// Trains `state` for the run's epochs on `devices` (the first is the main device, `run`'s),
/// reporting every epoch. Returns the trained weights, their average and the final model's
/// last test ELBO.
pub(crate) fn train(
    run: &Run,
    state: State,
    devices: Vec<Device>,
    data: Arc<Mnist>,
    out: &Path,
) -> (Vae, Option<Ema<Vae>>, f64) {
    let s = run.s;
    let epoch_seed = |epoch: usize| s.seed.wrapping_mul(1000).wrapping_add(epoch as u64);
    reseed(&devices, epoch_seed(0));
    state.vae.visit(&mut Materialize);
    let steps = Arc::new(Steps {
        s: s.clone(),
        batches: run.batches,
        shared: Mutex::default(),
    });
    let losses = LossMeter::default();
    let model = Replica {
        model: Trainee {
            vae: state.vae,
            steps: steps.clone(),
        },
        losses: losses.clone(),
    };
    let (bin, seed, n) = (s.binarization(), s.seed, s.train_n);
    let gather = Arc::new(move |idx: &[usize], device: &Device| {
        data.gather_images(Split::Train, idx, bin, device)
    });
    // The single-device run's order of every epoch.
    let order = Arc::new(move |epoch: usize| permutation(n, seed.wrapping_add(epoch as u64)));
    let train = ShardLoader::new(
        n,
        s.batch_size,
        devices.len(),
        0,
        order,
        gather.clone(),
        &run.ad,
    );
    let (pause, ends) = EpochPause::new();
    let training = SupervisedTraining::new(
        out,
        Arc::new(train),
        Arc::new(ShardLoader::empty(gather, &run.device)),
    )
    .with_training_strategy(
        ExecutionStrategy::MultiDevice(devices.clone(), MultiDeviceOptim::OptimMainDevice).into(),
    )
    .num_epochs(run.args.epochs)
    .renderer(Box::new(EpochBar::default()))
    .with_application_logger(None)
    .with_metric_logger(InMemoryMetricLogger::new())
    .early_stopping(pause);
    let learner = Learner::new(model, state.optim, WarmupLr::new(s.lr, s.warmup_steps));
    std::thread::scope(|scope| {
        // The epochs' reports, while the training waits for each.
        let reporter = scope.spawn(|| {
            let mut last_elbo = f64::NAN;
            let mut t0 = Instant::now();
            for end in ends {
                let seconds = t0.elapsed().as_secs_f64();
                let shared = steps.shared.lock().expect("the step state");
                let latest = shared.latest.as_ref().expect("an epoch's weights");
                last_elbo = report_epoch(
                    run,
                    latest,
                    shared.ema.as_ref(),
                    end.epoch - 1,
                    losses.take(),
                    seconds,
                );
                drop(shared);
                // The evaluation reseeded the generators: the next epoch's seed, as the
                // single-device loop sets it.
                reseed(&devices, epoch_seed(end.epoch));
                t0 = Instant::now();
            }
            last_elbo
        });
        let result = training.launch(learner);
        let last_elbo = reporter.join().expect("the epoch reports");
        if let Some(error) = result.error {
            let error = error.to_string();
            let hint = if error.contains("the loss became") {
                ": try a lower --lr"
            } else {
                ""
            };
            fail(format!("training stopped: {error}{hint}"));
        }
        let ema = steps.shared.lock().expect("the step state").ema.take();
        (result.model.model.vae, ema, last_elbo)
    })
}
