//! Data-parallel training through burn-train: the pieces `mnist_vae --devices` hands to
//! `SupervisedTraining` with `ExecutionStrategy::MultiDevice(devices, OptimMainDevice)`.
//!
//! burn-train's multi-device strategy gives every device its own data loader (from
//! [`DataLoader::slice`]), sends each device's worker thread a copy of the model and the next
//! batch of that loader, and **sums** the workers' gradients into one optimizer step on the
//! first device. The pieces here make that step the one a single device takes on the whole
//! batch:
//!
//! * [`ShardLoader`]: one per-epoch order of the examples, cut into global batches of the
//!   run's batch size; device `k` of `N` gets slice [`shard_range`]`(len, N, k)` of every
//!   global batch (the interleaved split), so that the `N` devices of one step together see
//!   exactly the global batch one device would see. (burn's own split hands each device a
//!   fixed contiguous part of the data set instead.)
//! * [`Replica`]: the `TrainStep` of any [`BatchLoss`] model. A device's loss, the mean over
//!   its `n_k` rows, is weighted by `n_k / n` (`n` the global batch): summed over the devices,
//!   the gradient is that of the mean over the global batch (`1/N` per device when the shards
//!   are equal). Without the weight, `N` devices would take a step `N` times too large.
//! * [`EpochPause`]: a hook that pauses training after every epoch (before the next one
//!   starts, no worker running) until the caller is done with it: the evaluation and the
//!   line of the epoch.
//! * [`EpochBar`]: a quiet renderer (a progress bar on a terminal, nothing otherwise; burn's
//!   default text renderer prints every item).
//! * [`LossMeter`]: the mean training loss per example of an epoch, added up by the workers.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::module::{Module, ModuleDisplay};
use burn::optim::{GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::tensor::{Device, Tensor};
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::MetricDefinition;
use burn::train::metric::store::EventStoreClient;
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use burn::train::{EarlyStoppingStrategy, InferenceStep, TrainOutput, TrainStep};
use indicatif::{ProgressBar, ProgressStyle};

/// Rows `[⌊k·len/N⌋, ⌊(k+1)·len/N⌋)` of a global batch of `len` rows: the part of shard `k`
/// of `shards`. The shards cover the batch in order, without overlap; their sizes differ by at
/// most one, and a shard is empty only if `len < shards`.
///
/// # Panics
/// If `k >= shards`.
pub fn shard_range(len: usize, shards: usize, k: usize) -> Range<usize> {
    assert!(k < shards, "shard {k} of {shards}");
    k * len / shards..(k + 1) * len / shards
}

/// One device's batch: its rows of a global batch, and that global batch's size.
#[derive(Clone, Debug)]
pub struct ShardBatch {
    /// The rows, `[n_k, d]`, on the device.
    pub x: Tensor<2>,
    /// The number of rows of the global batch this batch is a part of.
    pub global: usize,
}

/// The order of the examples in an epoch (a permutation of `0..n`), by epoch.
pub type Order = Arc<dyn Fn(usize) -> Vec<usize> + Send + Sync>;

/// The rows `[indices.len(), d]` of the examples at `indices`, built on a device.
pub type Gather = Arc<dyn Fn(&[usize], &Device) -> Tensor<2> + Send + Sync>;

/// The training data of a data-parallel run, as burn-train's data loader: every epoch one
/// order of the `n` examples, cut into global batches of `batch`; the whole loader yields the
/// global batches (as one device trains), and the slices that burn-train's multi-device
/// strategy cuts from it yield each device's [`shard_range`] of them.
///
/// burn's `split_dataloader` calls [`DataLoader::slice`] with the `k`-th of `devices`
/// contiguous ranges of `0..n` (the last one taking the remainder); this loader reads `k`
/// from the start of the range and ignores the rest. Each loader counts its epochs itself:
/// its `i`-th [`DataLoader::iter`] is epoch `first_epoch + i`.
pub struct ShardLoader {
    n: usize,
    batch: usize,
    devices: usize,
    /// The shard (`None`: the whole global batches).
    shard: Option<usize>,
    order: Order,
    gather: Gather,
    device: Device,
    epoch: AtomicUsize,
}

impl ShardLoader {
    /// The loader of `n` examples in global batches of `batch`, to be split over `devices`
    /// devices; `order(epoch)` is the order of epoch `epoch` (counted from `first_epoch`),
    /// `gather` builds the rows.
    ///
    /// # Panics
    /// If `batch` or `devices` is 0, or `n` is smaller than `devices` (the slices would be
    /// empty and could not be told apart).
    pub fn new(
        n: usize,
        batch: usize,
        devices: usize,
        first_epoch: usize,
        order: Order,
        gather: Gather,
        device: &Device,
    ) -> Self {
        assert!(batch > 0 && devices > 0, "batch {batch}, devices {devices}");
        assert!(n >= devices, "{n} examples for {devices} devices");
        Self {
            n,
            batch,
            devices,
            shard: None,
            order,
            gather,
            device: device.clone(),
            epoch: AtomicUsize::new(first_epoch),
        }
    }

    /// A loader without examples (burn-train's validation loader, for runs that evaluate
    /// elsewhere).
    pub fn empty(gather: Gather, device: &Device) -> Self {
        Self {
            n: 0,
            batch: 1,
            devices: 1,
            shard: None,
            order: Arc::new(|_| Vec::new()),
            gather,
            device: device.clone(),
            epoch: AtomicUsize::new(0),
        }
    }

    /// A copy with another shard or device, at the same epoch.
    fn with(&self, shard: Option<usize>, device: &Device) -> Self {
        Self {
            shard,
            order: self.order.clone(),
            gather: self.gather.clone(),
            device: device.clone(),
            epoch: AtomicUsize::new(self.epoch.load(Ordering::SeqCst)),
            ..*self
        }
    }

    /// The indices of this loader's batches in epoch `epoch`, each with the size of its global
    /// batch. A shard has one batch per global batch, except that an empty part (of a last
    /// global batch smaller than the number of devices) is left out.
    pub fn batches(&self, epoch: usize) -> Vec<(Vec<usize>, usize)> {
        let order = (self.order)(epoch);
        assert_eq!(order.len(), self.n, "the order of epoch {epoch}");
        order
            .chunks(self.batch)
            .map(|global| {
                let part = match self.shard {
                    None => global,
                    Some(k) => &global[shard_range(global.len(), self.devices, k)],
                };
                (part.to_vec(), global.len())
            })
            .filter(|(part, _)| !part.is_empty())
            .collect()
    }
}

impl DataLoader<ShardBatch> for ShardLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ShardBatch> + 'a> {
        let batches = self.batches(self.epoch.fetch_add(1, Ordering::SeqCst));
        let total = batches.iter().map(|(part, _)| part.len()).sum();
        Box::new(ShardIter {
            loader: self,
            batches: batches.into_iter(),
            done: 0,
            total,
        })
    }

    /// The examples of an epoch (burn-train cuts its slices from this number).
    fn num_items(&self) -> usize {
        self.n
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<ShardBatch>> {
        Arc::new(self.with(self.shard, device))
    }

    fn slice(&self, start: usize, _end: usize) -> Arc<dyn DataLoader<ShardBatch>> {
        // `split_dataloader`'s k-th range starts at k·⌊n/devices⌋ (n ≥ devices: not 0).
        let k = start / (self.n / self.devices);
        assert!(
            self.shard.is_none() && k < self.devices,
            "slice {start}.. of a loader for {} devices",
            self.devices
        );
        Arc::new(self.with(Some(k), &self.device))
    }
}

/// The batches of one epoch of a [`ShardLoader`].
struct ShardIter<'a> {
    loader: &'a ShardLoader,
    batches: std::vec::IntoIter<(Vec<usize>, usize)>,
    done: usize,
    total: usize,
}

impl Iterator for ShardIter<'_> {
    type Item = Result<ShardBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (part, global) = self.batches.next()?;
        self.done += part.len();
        let x = (self.loader.gather)(&part, &self.loader.device);
        Some(Ok(ShardBatch { x, global }))
    }
}

impl DataLoaderIterator<ShardBatch> for ShardIter<'_> {
    fn progress(&self) -> Progress {
        Progress::new(self.done, self.total, Some("items".to_string()))
    }
}

/// A model that [`Replica`] trains: a loss on a batch of rows, and what to do after each
/// optimizer step.
pub trait BatchLoss: Module + ModuleDisplay + Send + 'static {
    /// The loss to minimize on the rows `x` (`[n, d]`): the mean over the rows, `[1]`.
    fn loss(&self, x: Tensor<2>) -> Tensor<1>;

    /// Called with the updated model after every optimizer step, on the training thread
    /// (the workers are idle): for a weight average, a schedule, a snapshot. The default does
    /// nothing.
    fn after_step(self) -> Self {
        self
    }
}

/// The sum of the training losses of the examples since the last [`LossMeter::take`], added
/// by the workers of every device.
#[derive(Clone, Debug, Default)]
pub struct LossMeter(Arc<Mutex<(f64, usize)>>);

impl LossMeter {
    /// Adds a batch of `rows` examples with mean loss `mean`.
    pub fn add(&self, mean: f64, rows: usize) {
        let mut sum = self.0.lock().expect("the loss meter");
        sum.0 += mean * rows as f64;
        sum.1 += rows;
    }

    /// The mean loss per example since the last call (NaN if none), and starts again.
    pub fn take(&self) -> f64 {
        let (sum, rows) = std::mem::take(&mut *self.0.lock().expect("the loss meter"));
        sum / rows as f64
    }
}

/// burn-train's model for data-parallel training of `model`: the [`TrainStep`] whose
/// gradients, summed over the devices, are those of the global batch's mean loss.
#[derive(Module, Debug)]
pub struct Replica<M: BatchLoss> {
    /// The model being trained.
    pub model: M,
    /// Where the workers add their losses.
    #[module(skip)]
    pub losses: LossMeter,
}

impl<M: BatchLoss> TrainStep for Replica<M> {
    type Input = ShardBatch;
    type Output = ();

    /// The gradient of this device's share of the global batch's mean loss.
    ///
    /// # Panics
    /// If the loss is not finite. burn-train's multi-device strategy catches the panic and
    /// ends the training with its message as the error.
    fn step(&self, batch: ShardBatch) -> TrainOutput<()> {
        let rows = batch.x.dims()[0];
        let loss = self.model.loss(batch.x);
        let value = loss.clone().into_scalar::<f64>();
        assert!(value.is_finite(), "the loss became {value}");
        self.losses.add(value, rows);
        // burn-train adds the devices' gradients up: weighting each device's mean by its share
        // of the global batch makes the sum the gradient of the global batch's mean.
        let share = loss.mul_scalar(rows as f64 / batch.global as f64);
        TrainOutput::new(self, share.backward(), ())
    }

    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: GradientsParams,
    ) -> Self {
        let Replica { model, losses } = optim.step(lr, self, grads);
        Replica {
            model: model.after_step(),
            losses,
        }
    }

    fn optimize_multi(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: MultiGradientsParams,
    ) -> Self {
        let Replica { model, losses } = optim.step_multi(lr, self, grads);
        Replica {
            model: model.after_step(),
            losses,
        }
    }
}

/// burn-train requires a validation step; the runs that use [`Replica`] evaluate in their
/// [`EpochPause`] instead and give burn-train an empty validation loader, so this computes
/// nothing.
impl<M: BatchLoss> InferenceStep for Replica<M> {
    type Input = ShardBatch;
    type Output = ();

    fn step(&self, _batch: ShardBatch) {}
}

/// The end of an epoch, while the training waits: it goes on when this is dropped.
pub struct EpochEnd {
    /// The epoch that ended, counted from 1.
    pub epoch: usize,
    /// Dropping it wakes the waiting training.
    _resume: mpsc::SyncSender<()>,
}

/// burn-train's per-epoch hook as a pause: after every epoch (its validation done, the next
/// not started, no worker running) it sends an [`EpochEnd`] and waits until the receiver drops
/// it. Given to `SupervisedTraining::early_stopping`, whose strategy burn-train calls on the
/// training thread at that point; it never stops the training.
#[derive(Clone)]
pub struct EpochPause(mpsc::Sender<EpochEnd>);

impl EpochPause {
    /// The hook and the receiving end of its pauses. The receiver sees the end of the
    /// training when burn-train drops the hook (when `launch` returns).
    pub fn new() -> (Self, mpsc::Receiver<EpochEnd>) {
        let (send, receive) = mpsc::channel();
        (Self(send), receive)
    }
}

impl EarlyStoppingStrategy for EpochPause {
    fn should_stop(&mut self, epoch: usize, _store: &EventStoreClient) -> bool {
        let (resume, wait) = mpsc::sync_channel(0);
        if self
            .0
            .send(EpochEnd {
                epoch,
                _resume: resume,
            })
            .is_ok()
        {
            // Returns when the receiver drops the `EpochEnd` (an error: nothing is sent).
            let _ = wait.recv();
        }
        false
    }
}

/// A renderer for burn-train that shows the training epoch's progress as a bar (on a
/// terminal; indicatif draws nothing otherwise) and prints nothing else: the caller prints the
/// line of each epoch.
#[derive(Default)]
pub struct EpochBar {
    bar: Option<ProgressBar>,
    /// The epoch in progress, counted from 1.
    epoch: usize,
    epochs: usize,
}

impl TrainingProgressLogger for EpochBar {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _total_items: Option<usize>,
        _label: Option<&str>,
    ) {
        // burn-train counts the epochs from 1: `starting_epoch` is the first one this run
        // trains (after the checkpoint it resumed from, if any).
        self.epochs = total_epochs;
        self.epoch = starting_epoch;
    }

    fn update_epoch(&mut self, epoch: usize) {
        self.epoch = epoch + 1;
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        if split != "train" {
            return;
        }
        let bar = ProgressBar::new(total_items as u64).with_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} images, {per_sec} [{elapsed}<{eta}]",
            )
            .expect("template"),
        );
        bar.set_prefix(format!("{}/{}", self.epoch, self.epochs));
        self.bar = Some(bar);
    }

    fn update_split(&mut self, items_processed: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(items_processed as u64);
        }
    }

    fn end_split(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn end(&mut self) {
        self.end_split();
    }

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for EpochBar {
    fn start_global_progress(&mut self, _total: usize) {}
    fn start_test(&mut self, _name: &str, _total: usize) {}
    fn update_test_progress(&mut self, _items_processed: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRendererTraining for EpochBar {
    fn update_train(&mut self, _state: MetricState) {}
    fn update_valid(&mut self, _state: MetricState) {}
}

impl MetricsRendererEvaluation for EpochBar {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl MetricsRenderer for EpochBar {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _definition: MetricDefinition) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::data::dataloader::split::split_dataloader;
    use burn::module::Param;
    use burn::optim::SgdConfig;
    use burn::tensor::TensorData;
    use burn::train::logger::InMemoryMetricLogger;
    use burn::train::{ExecutionStrategy, Learner, MultiDeviceOptim, SupervisedTraining};

    /// Example `i` as the row `[i, 1 − i/2, 0.1·i²]`.
    fn gather() -> Gather {
        Arc::new(|idx: &[usize], device: &Device| {
            let rows: Vec<f32> = idx
                .iter()
                .flat_map(|&i| {
                    let i = i as f32;
                    [i, 1.0 - i / 2.0, 0.1 * i * i]
                })
                .collect();
            Tensor::from_data(TensorData::new(rows, [idx.len(), 3]), device)
        })
    }

    /// A different order every epoch: `0..n` rotated by `3·epoch + 1`, then reversed.
    fn order(n: usize) -> Order {
        Arc::new(move |epoch: usize| {
            (0..n)
                .map(|i| (i + 3 * epoch + 1) % n)
                .rev()
                .collect::<Vec<_>>()
        })
    }

    /// The example indices of the batches of a loader's next epoch, read from the rows.
    fn indices(loader: &dyn DataLoader<ShardBatch>) -> Vec<(Vec<usize>, usize)> {
        loader
            .iter()
            .map(|b| {
                let b = b.unwrap();
                let rows: Vec<f32> = b.x.into_data().iter::<f32>().collect();
                let idx = rows.chunks(3).map(|r| r[0] as usize).collect();
                (idx, b.global)
            })
            .collect()
    }

    #[test]
    fn shards_cover_each_global_batch_in_order_and_split_the_remainder() {
        // Equal shards: 12 rows over 4 devices.
        let parts: Vec<_> = (0..4).map(|k| shard_range(12, 4, k)).collect();
        assert_eq!(parts, [0..3, 3..6, 6..9, 9..12]);
        // The remainder: 5 rows over 2 devices give 2 and 3; 7 over 3 give 2, 2, 3; a batch
        // smaller than the number of devices leaves the first shards empty.
        assert_eq!([shard_range(5, 2, 0), shard_range(5, 2, 1)], [0..2, 2..5]);
        let parts: Vec<_> = (0..3).map(|k| shard_range(7, 3, k)).collect();
        assert_eq!(parts, [0..2, 2..4, 4..7]);
        assert_eq!([shard_range(1, 2, 0), shard_range(1, 2, 1)], [0..0, 0..1]);
        for len in 0..20 {
            for shards in 1..6 {
                let parts: Vec<_> = (0..shards).map(|k| shard_range(len, shards, k)).collect();
                assert_eq!(parts[0].start, 0);
                assert_eq!(parts[shards - 1].end, len);
                for w in parts.windows(2) {
                    assert_eq!(w[0].end, w[1].start, "len {len}, {shards} shards");
                }
                let sizes: Vec<_> = parts.iter().map(|p| p.len()).collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "len {len}, {shards} shards: {sizes:?}");
            }
        }
    }

    #[test]
    fn the_slices_of_burn_trains_split_see_the_global_batches_of_one_device() {
        let device = Device::flex();
        // 23 examples in global batches of 5 (the last one 3), over 1 to 4 devices.
        for devices in 1..=4 {
            let make = || ShardLoader::new(23, 5, devices, 0, order(23), gather(), &device);
            // (With one device the split is the loader itself: split a loader of its own.)
            let loader = make();
            let shards = split_dataloader(Arc::new(make()), &vec![device.clone(); devices]);
            assert_eq!(shards.len(), devices);
            for epoch in 0..2 {
                let whole = order(23)(epoch);
                let global: Vec<&[usize]> = whole.chunks(5).collect();
                // The whole loader yields the global batches.
                let batches = indices(&loader);
                assert_eq!(batches.len(), 5);
                for (b, g) in batches.iter().zip(&global) {
                    assert_eq!((&b.0[..], b.1), (*g, g.len()), "epoch {epoch}");
                }
                // Step t of the shards, concatenated in device order, is global batch t.
                let per_shard: Vec<_> = shards.iter().map(|s| indices(s.as_ref())).collect();
                for (t, g) in global.iter().enumerate() {
                    let mut joined = Vec::new();
                    for (k, batches) in per_shard.iter().enumerate() {
                        let part = &whole[t * 5..][shard_range(g.len(), devices, k)];
                        if part.is_empty() {
                            assert!(batches.len() <= t, "an empty part is left out");
                            continue;
                        }
                        assert_eq!(batches[t].0, part, "epoch {epoch}, step {t}, shard {k}");
                        assert_eq!(batches[t].1, g.len());
                        joined.extend_from_slice(&batches[t].0);
                    }
                    assert_eq!(
                        &joined[..],
                        *g,
                        "{devices} devices, epoch {epoch}, step {t}"
                    );
                }
            }
        }
    }

    /// A model whose loss is deterministic: the mean over the rows of
    /// `ln(1 + ‖x − w‖²)` (nonlinear in the rows, so that a device's mean weighted wrongly
    /// changes the step), which counts its optimizer steps.
    #[derive(Module, Debug)]
    struct Toy {
        w: Param<Tensor<2>>,
        #[module(skip)]
        steps: Arc<AtomicUsize>,
    }

    impl BatchLoss for Toy {
        fn loss(&self, x: Tensor<2>) -> Tensor<1> {
            let n = x.dims()[0];
            let d2 = (x - self.w.val()).powi_scalar(2).sum_dim(1).reshape([n]);
            d2.add_scalar(1.0).log().mean()
        }

        fn after_step(self) -> Self {
            self.steps.fetch_add(1, Ordering::SeqCst);
            self
        }
    }

    fn toy(device: &Device) -> Toy {
        let w = TensorData::new(vec![0.5f32, -0.25, 1.0], [1, 3]);
        Toy {
            w: Param::from_tensor(Tensor::from_data(w, device)),
            steps: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn weights(toy: &Toy) -> Vec<f32> {
        toy.w.val().into_data().iter::<f32>().collect()
    }

    /// One epoch of plain single-device SGD steps over the global batches.
    fn reference(n: usize, batch: usize, lr: f64) -> Vec<f32> {
        let ad = Device::flex().autodiff();
        let mut model = toy(&ad);
        let mut optim = SgdConfig::new().init();
        for idx in order(n)(0).chunks(batch) {
            let loss = model.loss(gather()(idx, &ad));
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
        }
        weights(&model)
    }

    /// One epoch through burn-train's multi-device strategy on `devices`.
    fn through_burn_train(n: usize, batch: usize, lr: f64, devices: Vec<Device>) -> Vec<f32> {
        let main = devices[0].clone();
        let train = ShardLoader::new(n, batch, devices.len(), 0, order(n), gather(), &main);
        let valid = ShardLoader::empty(gather(), &main);
        let dir = std::env::temp_dir().join(format!(
            "bp-data-parallel-{}-{n}-{batch}-{}",
            std::process::id(),
            devices.len()
        ));
        let (pause, ends) = EpochPause::new();
        let epochs = std::thread::spawn(move || ends.iter().map(|e| e.epoch).collect::<Vec<_>>());
        let model = toy(&main.clone().autodiff());
        let steps = model.steps.clone();
        let result = SupervisedTraining::new(&dir, Arc::new(train), Arc::new(valid))
            .with_training_strategy(
                ExecutionStrategy::MultiDevice(devices, MultiDeviceOptim::OptimMainDevice).into(),
            )
            .num_epochs(1)
            .renderer(Box::new(EpochBar::default()))
            .with_application_logger(None)
            .with_metric_logger(InMemoryMetricLogger::new())
            .early_stopping(pause)
            .launch(Learner::new(
                Replica {
                    model,
                    losses: LossMeter::default(),
                },
                SgdConfig::new().init(),
                lr,
            ));
        assert!(result.error.is_none(), "{:?}", result.error);
        assert_eq!(epochs.join().unwrap(), [1], "one pause, after epoch 1");
        assert_eq!(
            steps.load(Ordering::SeqCst),
            n.div_ceil(batch),
            "one step per batch"
        );
        std::fs::remove_dir_all(&dir).ok();
        weights(&result.model.model)
    }

    #[allow(deprecated)] // burn 0.22 deprecates ndarray in favour of flex; it still runs
    fn ndarray() -> Device {
        Device::ndarray()
    }

    #[test]
    fn two_devices_take_the_step_of_one_device_on_the_global_batch() {
        let lr = 0.5;
        // Global batches of 4 (2 + 2 rows per device), and of 5 then 1 (2 + 3 rows, then one
        // device alone): each step must be the single-device step on the global batch.
        for (n, batch) in [(8, 4), (6, 5)] {
            let want = reference(n, batch, lr);
            for devices in [
                vec![Device::flex(), Device::flex()],
                vec![Device::flex(), ndarray()],
            ] {
                let got = through_burn_train(n, batch, lr, devices.clone());
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                        "n {n}, batch {batch}, {devices:?}: {got:?} against one device's {want:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_loss_meter_averages_over_examples() {
        let meter = LossMeter::default();
        meter.add(1.0, 2);
        meter.add(4.0, 1);
        assert_eq!(meter.take(), 2.0);
        assert!(meter.take().is_nan(), "empty after take");
    }
}
