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
//! single-device run does (`metrics.jsonl`, `training_curve.png`, the epoch's line) and writes
//! its checkpoint.
//!
//! The checkpoint is the single-device run's (`checkpoint.rs`: `model.bpk`, `ema.bpk`,
//! `optim.bpk`, `state.json`), so a run checkpointed on one device resumes on several and the
//! other way round. burn-train returns the trained model but not the optimizer, so the
//! optimizer's state comes from burn-train's checkpointers: after every epoch burn-train hands
//! them the model, the optimizer and the scheduler ([`Records`]); this module keeps the
//! optimizer's record, and the epoch's report waits for it before it writes the checkpoint.
//! A resumed run starts burn-train at the next epoch (`SupervisedTraining::checkpoint`), whose
//! checkpointers give it back the state `checkpoint::resume` read; the per-epoch order, the
//! seeds and the reports count the epochs from the first run's start, and the step count of
//! the warm-up, the weight average and the temperature goes on from the checkpoint's
//! `epoch × batches`.
//!
//! What it does not do: run small steps on a one-thread pool. The flex backend draws every
//! device's noise from one process-wide generator, in whatever order the workers ask, so a
//! run is not reproducible from `--seed` bit for bit (docs/scaling.md).

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::OptimizerRecord;
use burn::store::ModuleRecord;
use burn::tensor::{Device, Tensor};
use burn::train::checkpoint::{
    Checkpointer, CheckpointerError, CheckpointingAction, CheckpointingStrategy,
};
use burn::train::logger::InMemoryMetricLogger;
use burn::train::metric::store::EventStoreClient;
use burn::train::{ExecutionStrategy, Learner, MultiDeviceOptim, SupervisedTraining};
use burn_probability_examples::data_parallel::{
    BatchLoss, EpochBar, EpochPause, LossMeter, Replica, ShardLoader,
};
use burn_probability_examples::mnist::{Mnist, Split};
use burn_probability_examples::vae::ema::Ema;
use burn_probability_examples::vae::model::Vae;
use burn_probability_examples::vae::schedule::WarmupLr;

use crate::checkpoint::save_checkpoint;
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

#[derive(Debug)]
struct Shared {
    /// Optimizer steps taken, counted from the first run's start (a resumed run starts at the
    /// steps of the epochs before it).
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
        let steps = shared.steps;
        if s.ema_decay > 0.0 {
            let ema = shared
                .ema
                .get_or_insert_with(|| Ema::new(self.vae.valid(), s.ema_decay));
            ema.update(&self.vae);
            // The average folds in every step from the first run's start on: its count (in a
            // resumed run, from the checkpoint's `state.json`) is the step count.
            debug_assert_eq!(ema.updates, steps as u64, "the weight average's updates");
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

/// burn-train's checkpointers, as this run uses them. After every epoch, burn-train hands them
/// the trained model, the optimizer's state and the learning-rate schedule, each on a thread of
/// its own (`AsyncCheckpointer`), right before it pauses for the epoch's report: the optimizer's
/// record is kept here until the report takes it ([`Records::take_optim`]) to write the
/// checkpoint; the model is written from the step hook's copy and the schedule follows from
/// the epoch, so their records are dropped. A resumed run's state is handed back to burn-train
/// when it restores the checkpoint it is told to start after ([`Records::resume`]).
#[derive(Clone, Default)]
struct Records(Arc<RecordsInner>);

#[derive(Default)]
struct RecordsInner {
    /// The optimizer's record of the last epoch burn-train saved, with that epoch (counted
    /// from 1), until the report takes it.
    optim: Mutex<Option<(usize, OptimizerRecord)>>,
    /// Signalled when `optim` is set.
    saved: Condvar,
    /// What burn-train restores when a resumed run starts, until it does.
    resumed: Mutex<Resumed>,
}

/// The learner's state at the start of a resumed run.
#[derive(Default)]
struct Resumed {
    model: Option<ModuleRecord>,
    optim: Option<OptimizerRecord>,
    scheduler: Option<LrSchedulerRecord>,
}

impl Records {
    /// Keeps `resumed` for burn-train to restore.
    fn resume(&self, resumed: Resumed) {
        *self.0.resumed.lock().expect("the resumed state") = resumed;
    }

    /// Waits until burn-train has handed over the optimizer's record of epoch `epoch`
    /// (counted from 1), and takes it.
    fn take_optim(&self, epoch: usize) -> OptimizerRecord {
        let slot = self.0.optim.lock().expect("the optimizer record");
        let mut slot = self
            .0
            .saved
            .wait_while(slot, |s| !matches!(s, Some((e, _)) if *e == epoch))
            .expect("the optimizer record");
        slot.take().expect("the epoch's record").1
    }
}

/// A resumed run's record, restored once.
fn restored<R>(record: &mut Option<R>, what: &str) -> Result<R, CheckpointerError> {
    record
        .take()
        .ok_or_else(|| CheckpointerError::Unknown(format!("no {what} to resume from")))
}

impl Checkpointer<OptimizerRecord> for Records {
    fn save(&self, epoch: usize, record: OptimizerRecord) -> Result<(), CheckpointerError> {
        *self.0.optim.lock().expect("the optimizer record") = Some((epoch, record));
        self.0.saved.notify_all();
        Ok(())
    }

    fn delete(&self, _epoch: usize) -> Result<(), CheckpointerError> {
        Ok(())
    }

    fn restore(&self, _epoch: usize) -> Result<OptimizerRecord, CheckpointerError> {
        let mut resumed = self.0.resumed.lock().expect("the resumed state");
        restored(&mut resumed.optim, "optimizer state")
    }
}

impl Checkpointer<ModuleRecord> for Records {
    fn save(&self, _epoch: usize, _record: ModuleRecord) -> Result<(), CheckpointerError> {
        Ok(())
    }

    fn delete(&self, _epoch: usize) -> Result<(), CheckpointerError> {
        Ok(())
    }

    fn restore(&self, _epoch: usize) -> Result<ModuleRecord, CheckpointerError> {
        let mut resumed = self.0.resumed.lock().expect("the resumed state");
        restored(&mut resumed.model, "model")
    }
}

impl Checkpointer<LrSchedulerRecord> for Records {
    fn save(&self, _epoch: usize, _record: LrSchedulerRecord) -> Result<(), CheckpointerError> {
        Ok(())
    }

    fn delete(&self, _epoch: usize) -> Result<(), CheckpointerError> {
        Ok(())
    }

    fn restore(&self, _epoch: usize) -> Result<LrSchedulerRecord, CheckpointerError> {
        let mut resumed = self.0.resumed.lock().expect("the resumed state");
        restored(&mut resumed.scheduler, "learning-rate schedule")
    }
}

/// burn-train's checkpointing strategy: save after every epoch, delete nothing (the
/// checkpointers keep no file of their own).
struct EveryEpoch;

impl CheckpointingStrategy for EveryEpoch {
    fn checkpointing(
        &mut self,
        _epoch: usize,
        _store: &EventStoreClient,
    ) -> Vec<CheckpointingAction> {
        vec![CheckpointingAction::Save]
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

/// Trains `state`, which has been trained for `first_epoch` epochs (0, or those of the
/// checkpoint it was resumed from), up to the run's epochs on `devices` (the first is the main
/// device, `run`'s), reporting and checkpointing every epoch. Returns the trained weights,
/// their average and the final model's last test ELBO.
pub(crate) fn train(
    run: &Run,
    state: State,
    first_epoch: usize,
    devices: Vec<Device>,
    data: Arc<Mnist>,
    out: &Path,
) -> (Vae, Option<Ema<Vae>>, f64) {
    let s = run.s;
    let epoch_seed = |epoch: usize| s.seed.wrapping_mul(1000).wrapping_add(epoch as u64);
    reseed(&devices, epoch_seed(first_epoch));
    state.vae.visit(&mut Materialize);
    // The optimizer steps of the epochs done: the warm-up, the weight average's step count
    // and the temperature go on from there.
    let done = first_epoch * run.batches;
    let mut vae = state.vae;
    vae.set_temperature(s.temperature_at(done));
    let steps = Arc::new(Steps {
        s: s.clone(),
        batches: run.batches,
        shared: Mutex::new(Shared {
            steps: done,
            ema: state.ema,
            latest: None,
        }),
    });
    let losses = LossMeter::default();
    let model = Replica {
        model: Trainee {
            vae,
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
        first_epoch,
        order,
        gather.clone(),
        &run.ad,
    );
    let (pause, ends) = EpochPause::new();
    let records = Records::default();
    let mut training = SupervisedTraining::new(
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
    .with_custom_checkpointers(records.clone(), records.clone(), records.clone())
    .with_checkpointing_strategy(EveryEpoch)
    .early_stopping(pause);
    // The learner starts from the state the run resumes from (for a new run, the new model,
    // the new optimizer and the schedule's start).
    let schedule = WarmupLr::after(s.lr, s.warmup_steps, done);
    if first_epoch > 0 {
        // burn-train then starts at epoch `first_epoch + 1`, and first restores the learner
        // from the checkpointers: they hand it the same state, the weights and the optimizer
        // that `checkpoint::resume` loaded and the warm-up after the steps done.
        records.resume(Resumed {
            model: Some(model.clone().into_record()),
            optim: Some(state.optim.to_record()),
            scheduler: Some(schedule.to_record()),
        });
        training = training.checkpoint(first_epoch);
    }
    let learner = Learner::new(model, state.optim, schedule);
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
                // burn-train handed the epoch's optimizer state to its checkpointer thread
                // before it paused: with it, the epoch's checkpoint.
                let optim = records.take_optim(end.epoch);
                save_checkpoint(&run.ckpt, latest, shared.ema.as_ref(), optim, end.epoch, s)
                    .unwrap_or_else(|e| fail(e));
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
