//! Variational autoencoders on MNIST: the TFP/Keras tutorials' models, trained with
//! burn-probability.
//!
//! ```sh
//! cargo run --release --example mnist_vae                       # the convolutional VAE, 20 epochs
//! cargo run --release --example mnist_vae -- --model mlp --epochs 10
//! cargo run --release --example mnist_vae -- --model iwae --objective iwae -k 50
//! cargo run --release --example mnist_vae -- --model binary --temperature 0.5
//! cargo run --release --example mnist_vae -- --model categorical --epochs 50
//! cargo run --release --example mnist_vae -- --model categorical --straight-through
//! cargo run --release --example mnist_vae -- --model mlp --likelihood continuous-bernoulli
//! cargo run --release --example mnist_vae -- --model iwae --posterior iaf --flow-steps 2
//! cargo run --release --example mnist_vae -- --model iwae --posterior iaf --prior mixture --components 10
//! cargo run --release --example mnist_vae -- --devices 2            # data-parallel, two flex devices
//! cargo run --release --example mnist_vae -- --devices flex,ndarray
//! cargo run --release --example mnist_vae -- --help
//! ```
//!
//! Data: `--data-dir DIR`, else `$MNIST_DIR`, else the cache folder
//! (`$XDG_CACHE_HOME/burn-probability/mnist`, by default `~/.cache/burn-probability/mnist`), each
//! holding the four original IDX files (`.gz` or not); else MNIST is downloaded into the cache
//! folder (over HTTP(S) by the program itself, no `curl` needed), and each file is kept only if
//! its md5 sum is the original's.
//!
//! Output (`--out`, default `runs/mnist_vae/<model>`): `metrics.jsonl` (one line per epoch,
//! then the test log-likelihood), `training_curve.png` (redrawn after every epoch),
//! `latent.png`, `manifold.png` (2-D latents), `reconstructions.png`, `samples.png`, and
//! `checkpoint/` (after every epoch; `--resume` continues from it).
//! Beside the trained weights the run keeps their moving average (`--ema-decay`, default 0.999):
//! both are evaluated every epoch, and the average is the model of the final log-likelihood, the
//! pictures and `checkpoint/ema.bpk`.
//!
//! `--devices N` (or a list, `--devices flex,ndarray`) trains data-parallel through burn-train
//! (`multi_device.rs`, docs/scaling.md): the same global batches, objective, reports and
//! checkpoint (a checkpoint resumes with or without `--devices`, on any number of devices).

mod checkpoint;
mod data_dir;
mod multi_device;
mod report;
mod train;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use burn_probability_examples::alloc;
use burn_probability_examples::device::{DeviceChoice, DeviceList};
use burn_probability_examples::mnist::{Binarization, Mnist};
use burn_probability_examples::vae::ema::Ema;
use burn_probability_examples::vae::model::{
    self, BinaryVae, CategoricalVae, ConvVae, LikelihoodKind, MlpVae, ModelKind, ObjectiveKind,
    StepThreads, Vae,
};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

/// The data set; serialized in lower case (`"fashionmnist"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum DatasetKind {
    Mnist,
    FashionMnist,
}

impl DatasetKind {
    /// The name in lower case, as the run's settings spell it.
    fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashionmnist",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BinarizationKind {
    /// pixel > 127.5, fixed once.
    Static,
    /// A fresh Bernoulli(pixel / 255) draw for every batch.
    Dynamic,
    /// One Bernoulli(pixel / 255) draw per pixel made once, the same in every run
    /// (Salakhutdinov and Murray's fixed binarization, which Jang et al. use).
    Fixed,
    /// None: the grey levels pixel / 255 in [0, 1].
    None,
}

impl BinarizationKind {
    /// The name as the command line spells it.
    fn name(self) -> &'static str {
        match self {
            BinarizationKind::Static => "static",
            BinarizationKind::Dynamic => "dynamic",
            BinarizationKind::Fixed => "fixed",
            BinarizationKind::None => "none",
        }
    }
}

/// The posterior of the mlp and iwae models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PosteriorKind {
    /// A diagonal Gaussian.
    Diagonal,
    /// The diagonal Gaussian followed by --flow-steps inverse autoregressive flows conditioned
    /// on an encoder context (Kingma et al. 2016).
    Iaf,
}

/// The prior of the mlp and iwae models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PriorKind {
    /// N(0, I).
    Standard,
    /// A mixture of --components diagonal Gaussians, learned with the model.
    Mixture,
}

/// Train a variational autoencoder on MNIST (or Fashion-MNIST).
#[derive(Parser, Debug, Clone)]
#[command(version)]
struct Args {
    /// The architecture (each has the tutorial's defaults for the flags below).
    #[arg(long, value_enum, default_value_t = ModelKind::Conv)]
    model: ModelKind,
    /// The training objective. Default: elbo-analytic for conv (the Keras tutorial's closed-form
    /// KL) and categorical (Jang et al.'s categorical KL against the uniform prior), elbo for
    /// the others (iwae for --model iwae is not implied: choose it).
    #[arg(long, value_enum)]
    objective: Option<ObjectiveKind>,
    /// Samples per example for the objective.
    #[arg(short = 'k', long = "samples", default_value_t = 1)]
    k: usize,
    /// Epochs (passes over the training set).
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Batch size. Default: 100 for conv, 64 for mlp, 20 for iwae, 100 for binary and
    /// categorical.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Learning rate (RMSprop for conv, Adam otherwise).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Learning-rate warm-up: the rate rises linearly from lr/N to lr over the first N
    /// optimizer steps (0 turns it off). Default: 600 for conv (one epoch at batch 100; the
    /// tutorial has none, but without it RMSprop's first full-size steps kill most of the
    /// encoder's 32 ReLUs and some seeds collapse in epoch 1: see docs/mnist-vae.md), 0 for the others.
    #[arg(long)]
    warmup_steps: Option<usize>,
    /// Latent dimension. Default: 2 (conv, mlp), 50 (iwae), 20 (binary); for categorical the
    /// number of categorical variables N, default 30.
    #[arg(long)]
    latent: Option<usize>,
    /// The posterior (mlp and iwae models).
    #[arg(long, value_enum, default_value_t = PosteriorKind::Diagonal)]
    posterior: PosteriorKind,
    /// IAF steps after the diagonal Gaussian (--posterior iaf), alternating the order.
    #[arg(long, default_value_t = 2)]
    flow_steps: usize,
    /// The prior (mlp and iwae models).
    #[arg(long, value_enum, default_value_t = PriorKind::Standard)]
    prior: PriorKind,
    /// Components of the mixture prior (--prior mixture).
    #[arg(long, default_value_t = 10)]
    components: usize,
    /// Classes K of each categorical variable (categorical model).
    #[arg(long, default_value_t = 10)]
    classes: usize,
    /// The relaxation's temperature: BinConcrete's (binary model, default 0.5), or the initial
    /// Gumbel-softmax temperature τ₀ (categorical model, default 1.0).
    #[arg(long)]
    temperature: Option<f64>,
    /// Temperature annealing (categorical model): τ = max(--min-temperature, τ₀·exp(−r·t)) at
    /// optimizer step t, updated every 1000 steps, as Jang et al.'s code (r = 3e-5 there, the
    /// default; 0 keeps τ₀).
    #[arg(long, default_value_t = 3e-5)]
    anneal_rate: f64,
    /// The temperature's floor under annealing (categorical model).
    #[arg(long, default_value_t = 0.5)]
    min_temperature: f64,
    /// Train the categorical model with the straight-through Gumbel-softmax estimator (one-hot
    /// latents carrying the relaxed gradient) instead of the relaxed samples.
    #[arg(long)]
    straight_through: bool,
    /// Binarization. Default: static for conv and mlp, dynamic for iwae and binary, fixed for
    /// categorical; none (grey levels) with --likelihood continuous-bernoulli.
    #[arg(long, value_enum)]
    binarization: Option<BinarizationKind>,
    /// The pixel likelihood of the decoder's logits: bernoulli (on grey levels, with
    /// --binarization none, the usual cross-entropy, which is not a normalized density), or
    /// continuous-bernoulli (a density on grey levels; needs --binarization none, its default).
    #[arg(long, value_enum, default_value_t = LikelihoodKind::Bernoulli)]
    likelihood: LikelihoodKind,
    /// The data set.
    #[arg(long, value_enum, default_value_t = DatasetKind::Mnist)]
    dataset: DatasetKind,
    /// Folder with the four IDX files (else $MNIST_DIR, then the cache folder).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Use only the first N training images (quick runs and tests).
    #[arg(long)]
    train_n: Option<usize>,
    /// Use only the first N test images for the per-epoch test ELBO.
    #[arg(long)]
    test_n: Option<usize>,
    /// Importance samples for the final test log-likelihood (0 skips it).
    #[arg(long, default_value_t = 5000)]
    eval_k: usize,
    /// Test images for the final log-likelihood. Default: 10000, or 1000 for conv.
    #[arg(long)]
    eval_n: Option<usize>,
    /// Output folder. Default: runs/mnist_vae/<model>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue from the checkpoint in the output folder.
    #[arg(long)]
    resume: bool,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Decay of the moving average of the weights that is evaluated, drawn and saved beside the
    /// trained ones (0 turns it off). Training is unchanged; `metrics.jsonl` reports the test
    /// ELBO of both (`test_elbo`, `test_elbo_ema`).
    #[arg(long, default_value_t = 0.999)]
    ema_decay: f64,
    /// The device: flex (default), ndarray, wgpu, wgpu:N (the N-th discrete GPU), cuda or
    /// cuda:N; the GPU ones need the examples' cargo feature of that name. A checkpoint
    /// written on one device resumes on another.
    #[arg(long, default_value = "flex")]
    device: DeviceChoice,
    /// Data-parallel training through burn-train on several devices: N (N devices of
    /// --device's backend) or a comma-separated list of devices as --device names them
    /// (`flex,ndarray`; the first is the main device, which steps the optimizer, evaluates and
    /// draws). Each optimizer step splits the --batch-size global batch over the devices; the
    /// objective, the reports, the outputs and the checkpoint are the single-device run's (a
    /// checkpoint resumes with or without --devices). See docs/scaling.md.
    #[arg(long)]
    devices: Option<DeviceList>,
    /// Run every formula and layer as plain burn operations instead of burn-flex-kernels'
    /// fused CPU kernels (the conv model's convolutions and dense layers included: same results
    /// up to float rounding, about 3.5× slower training; for comparing the two).
    #[arg(long)]
    no_fused: bool,
}

/// The resolved settings of a run. `state.json` keeps them, and `--resume` requires the same.
#[derive(Clone, serde::Serialize, serde::Deserialize, PartialEq)]
struct Settings {
    model: ModelKind,
    objective: ObjectiveKind,
    k: usize,
    batch_size: usize,
    lr: f64,
    #[serde(default)]
    warmup_steps: usize,
    latent: usize,
    temperature: f64,
    #[serde(default)]
    classes: usize,
    #[serde(default)]
    anneal_rate: f64,
    #[serde(default)]
    min_temperature: f64,
    #[serde(default)]
    straight_through: bool,
    /// IAF steps of the posterior (0: diagonal).
    #[serde(default)]
    flow_steps: usize,
    /// Components of the learned mixture prior (0: N(0, I)).
    #[serde(default)]
    components: usize,
    dynamic: bool,
    #[serde(default)]
    fixed: bool,
    /// No binarization: the grey levels in [0, 1].
    #[serde(default)]
    grey: bool,
    /// The pixel likelihood (Bernoulli in checkpoints made before the choice existed).
    #[serde(default)]
    likelihood: LikelihoodKind,
    dataset: DatasetKind,
    train_n: usize,
    seed: u64,
    #[serde(default)]
    ema_decay: f64,
}

impl Settings {
    /// The temperature at optimizer step `step`: `max(min, τ₀ exp(−r·t))` with `t` the step
    /// rounded down to a multiple of 1000 (categorical model), else the fixed temperature.
    fn temperature_at(&self, step: usize) -> f64 {
        if self.model != ModelKind::Categorical || self.anneal_rate == 0.0 {
            return self.temperature;
        }
        let t = (step / 1000 * 1000) as f64;
        (self.temperature * (-self.anneal_rate * t).exp()).max(self.min_temperature)
    }

    /// How the training and test images are binarized.
    fn binarization(&self) -> Binarization {
        if self.grey {
            Binarization::None
        } else if self.dynamic {
            Binarization::Dynamic
        } else if self.fixed {
            Binarization::Fixed
        } else {
            Binarization::Static
        }
    }
}

/// The choices by name, as `state.json` spells them (`model: "conv"`).
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("model", &self.model.name())
            .field("objective", &self.objective.name())
            .field("k", &self.k)
            .field("batch_size", &self.batch_size)
            .field("lr", &self.lr)
            .field("warmup_steps", &self.warmup_steps)
            .field("latent", &self.latent)
            .field("temperature", &self.temperature)
            .field("classes", &self.classes)
            .field("anneal_rate", &self.anneal_rate)
            .field("min_temperature", &self.min_temperature)
            .field("straight_through", &self.straight_through)
            .field("flow_steps", &self.flow_steps)
            .field("components", &self.components)
            .field("dynamic", &self.dynamic)
            .field("fixed", &self.fixed)
            .field("grey", &self.grey)
            .field("likelihood", &self.likelihood.name())
            .field("dataset", &self.dataset.name())
            .field("train_n", &self.train_n)
            .field("seed", &self.seed)
            .field("ema_decay", &self.ema_decay)
            .finish()
    }
}

/// What training changes: the model, the moving average of its weights and the optimizer.
struct State {
    vae: Vae,
    /// The weight average, from the first optimizer step on.
    ema: Option<Ema<Vae>>,
    optim: ModuleOptimizer,
}

impl State {
    /// A new model and its optimizer, without a weight average: the average starts at the
    /// first optimizer step, because touching the parameters here would draw them out of the
    /// order of the per-epoch seeds.
    fn new(s: &Settings, ad: &Device) -> Self {
        Self {
            vae: build(s, ad),
            ema: None,
            optim: model::optimizer(s.model),
        }
    }
}

/// What stays fixed over a run's epochs.
struct Run<'a> {
    args: &'a Args,
    s: &'a Settings,
    data: &'a Mnist,
    /// The plain device (evaluation and the weight average).
    device: Device,
    /// The same device with autodiff (training).
    ad: Device,
    threads: StepThreads,
    /// Test images of the per-epoch test ELBO.
    test_n: usize,
    /// Batches per epoch.
    batches: usize,
    /// The checkpoint folder.
    ckpt: PathBuf,
    /// `metrics.jsonl`.
    metrics: PathBuf,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2);
}

/// The objective flag, or the model's default.
fn objective_of(args: &Args) -> ObjectiveKind {
    args.objective.unwrap_or(match args.model {
        ModelKind::Conv | ModelKind::Categorical => ObjectiveKind::ElboAnalytic,
        _ => ObjectiveKind::Elbo,
    })
}

fn settings(args: &Args, train_len: usize) -> Settings {
    let (batch, latent, dynamic, warmup) = match args.model {
        ModelKind::Conv => (100, 2, false, 600),
        ModelKind::Mlp => (64, 2, false, 0),
        ModelKind::Iwae => (20, 50, true, 0),
        ModelKind::Binary => (100, 20, true, 0),
        ModelKind::Categorical => (100, 30, false, 0),
    };
    let categorical = args.model == ModelKind::Categorical;
    let continuous = args.likelihood == LikelihoodKind::ContinuousBernoulli;
    let binarization = match args.binarization {
        Some(b) => b,
        None if continuous => BinarizationKind::None,
        None if categorical => BinarizationKind::Fixed,
        None if dynamic => BinarizationKind::Dynamic,
        None => BinarizationKind::Static,
    };
    if continuous && binarization != BinarizationKind::None {
        fail(format!(
            "--likelihood continuous-bernoulli is a density on grey levels in [0, 1]: it needs --binarization none (its default), not --binarization {}",
            binarization.name()
        ));
    }
    let s = Settings {
        model: args.model,
        objective: objective_of(args),
        k: args.k,
        batch_size: args.batch_size.unwrap_or(batch),
        lr: args.lr,
        warmup_steps: args.warmup_steps.unwrap_or(warmup),
        latent: args.latent.unwrap_or(latent),
        temperature: args
            .temperature
            .unwrap_or(if categorical { 1.0 } else { 0.5 }),
        classes: if categorical { args.classes } else { 0 },
        anneal_rate: if categorical { args.anneal_rate } else { 0.0 },
        min_temperature: if categorical {
            args.min_temperature
        } else {
            0.0
        },
        straight_through: args.straight_through,
        flow_steps: match args.posterior {
            PosteriorKind::Iaf => args.flow_steps,
            PosteriorKind::Diagonal => 0,
        },
        components: match args.prior {
            PriorKind::Mixture => args.components,
            PriorKind::Standard => 0,
        },
        dynamic: binarization == BinarizationKind::Dynamic,
        fixed: binarization == BinarizationKind::Fixed,
        grey: binarization == BinarizationKind::None,
        likelihood: args.likelihood,
        dataset: args.dataset,
        train_n: args.train_n.unwrap_or(train_len).min(train_len),
        seed: args.seed,
        ema_decay: args.ema_decay,
    };
    if s.k == 0 || s.batch_size == 0 || s.latent == 0 || s.train_n == 0 {
        fail("-k, --batch-size, --latent and --train-n must be at least 1");
    }
    if !(s.lr.is_finite() && s.lr > 0.0) {
        fail(format!("--lr must be finite and > 0, got {}", s.lr));
    }
    if !(0.0..1.0).contains(&s.ema_decay) {
        fail(format!(
            "--ema-decay must be in [0, 1) (0 turns the average off), got {}",
            s.ema_decay
        ));
    }
    if !(s.temperature.is_finite() && s.temperature > 0.0) {
        fail(format!(
            "--temperature must be finite and > 0, got {}",
            s.temperature
        ));
    }
    if categorical {
        if s.classes < 2 {
            fail(format!("--classes must be at least 2, got {}", s.classes));
        }
        if !(s.anneal_rate.is_finite() && s.anneal_rate >= 0.0) {
            fail(format!(
                "--anneal-rate must be finite and >= 0, got {}",
                s.anneal_rate
            ));
        }
        if !(s.min_temperature.is_finite() && s.min_temperature > 0.0) {
            fail(format!(
                "--min-temperature must be finite and > 0, got {}",
                s.min_temperature
            ));
        }
    } else if args.straight_through {
        fail(
            "--straight-through is an estimator of the categorical model: add --model categorical",
        );
    }
    let richer = args.posterior != PosteriorKind::Diagonal || args.prior != PriorKind::Standard;
    if richer {
        if !matches!(args.model, ModelKind::Mlp | ModelKind::Iwae) {
            fail(format!(
                "--posterior iaf and --prior mixture are options of the mlp and iwae models, not --model {}",
                args.model.name()
            ));
        }
        if s.objective == ObjectiveKind::ElboAnalytic {
            fail(
                "--objective elbo-analytic needs a closed-form KL: an IAF posterior or a mixture prior has none (use elbo, which estimates it, or iwae)",
            );
        }
        if args.posterior == PosteriorKind::Iaf && args.flow_steps == 0 {
            fail("--flow-steps must be at least 1 with --posterior iaf");
        }
        if args.prior == PriorKind::Mixture && args.components == 0 {
            fail("--components must be at least 1 with --prior mixture");
        }
    }
    if args.model == ModelKind::Binary && args.objective == Some(ObjectiveKind::ElboAnalytic) {
        fail(
            "--objective elbo-analytic needs Gaussian latents: BinConcrete pairs have no closed-form KL (use elbo, which estimates it in logit space)",
        );
    }
    s
}

fn build(s: &Settings, device: &Device) -> Vae {
    match s.model {
        ModelKind::Conv => Vae::Conv(ConvVae::new(s.latent, device)),
        ModelKind::Mlp | ModelKind::Iwae => Vae::Mlp(MlpVae::with_options(
            s.latent,
            s.model == ModelKind::Iwae,
            s.flow_steps,
            s.components,
            device,
        )),
        ModelKind::Binary => Vae::Binary(BinaryVae::new(s.latent, s.temperature, device)),
        ModelKind::Categorical => Vae::Categorical(CategoricalVae::new(
            s.latent,
            s.classes,
            s.temperature,
            s.straight_through,
            device,
        )),
    }
}

/// The output folder (`--out`, else `runs/mnist_vae/<model>`), created and checked writable.
fn output_dir(args: &Args, s: &Settings) -> PathBuf {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/mnist_vae").join(s.model.name()));
    std::fs::create_dir_all(&out)
        .unwrap_or_else(|e| fail(format!("cannot create --out {}: {e}", out.display())));
    let probe = out.join(".write-test");
    std::fs::write(&probe, b"")
        .unwrap_or_else(|e| fail(format!("--out {} is not writable: {e}", out.display())));
    std::fs::remove_file(&probe).ok();
    out
}

/// The binarization's name as the command line spells it.
fn binarization_name(s: &Settings) -> &'static str {
    match s.binarization() {
        Binarization::Dynamic => "dynamic",
        Binarization::Fixed => "fixed",
        Binarization::None => "none",
        Binarization::Static => "static",
    }
}

/// The run's first line: the model, the data and the training settings (`one_thread`: the
/// training steps run on one thread).
fn print_header(s: &Settings, dir: &Path, one_thread: bool) {
    println!(
        "{} VAE on {} ({} training images from {}), objective {} k={}, batch {}, latent {}, {}, {} likelihood{}{}",
        s.model.name(),
        s.dataset.name(),
        s.train_n,
        dir.display(),
        s.objective.name(),
        s.k,
        s.batch_size,
        if s.model == ModelKind::Categorical {
            format!(
                "{} × {} classes, {} estimator, temperature {} annealed at rate {} to {}",
                s.latent,
                s.classes,
                if s.straight_through {
                    "straight-through"
                } else {
                    "relaxed"
                },
                s.temperature,
                s.anneal_rate,
                s.min_temperature
            )
        } else {
            s.latent.to_string()
        },
        match s.binarization() {
            Binarization::Dynamic => "dynamic binarization",
            Binarization::Fixed => "fixed binarization",
            Binarization::None => "grey levels (no binarization)",
            Binarization::Static => "static binarization",
        },
        s.likelihood.name(),
        match (s.flow_steps, s.components) {
            (0, 0) => String::new(),
            (f, 0) => format!(", IAF posterior ({f} steps)"),
            (0, m) => format!(", mixture prior ({m} components)"),
            (f, m) => format!(", IAF posterior ({f} steps), mixture prior ({m} components)"),
        },
        if one_thread {
            ", training steps on one thread"
        } else {
            ""
        }
    );
}

fn main() {
    alloc::keep_freed_memory();
    // Subnormal floats (small gradients, decaying RMSprop moments) cost x86 CPUs microcode
    // assists; flushing them to zero, as TensorFlow does by default, avoids those (see
    // `set_flush_denormal`).
    burn_flex_kernels::set_flush_denormal(true);
    let matches = Args::command().get_matches();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if args.no_fused {
        burn_flex_kernels::set_fused_kernels(false);
    }
    let device_given = matches.value_source("device") == Some(ValueSource::CommandLine);
    let choices = args.devices.as_ref().map(|list| {
        if device_given && matches!(list, DeviceList::List(_)) {
            fail(
                "--device and a --devices list both name devices: give the list alone (its first device is the main one), or --devices N with --device",
            );
        }
        list.choices(args.device)
    });
    let main_choice = choices.as_ref().map_or(args.device, |c| c[0]);
    let device = main_choice.device().unwrap_or_else(|e| fail(e));
    let workers: Option<Vec<Device>> = choices.as_ref().map(|c| {
        c.iter()
            .map(|d| d.device().unwrap_or_else(|e| fail(e)))
            .collect()
    });
    let dir = data_dir::locate_data(&args);
    let data = Arc::new(Mnist::load(&dir).unwrap_or_else(|e| fail(e)));
    let s = settings(&args, data.train.len());
    if let Some(workers) = &workers {
        check_devices(&s, workers.len());
    }
    let out = output_dir(&args, &s);

    println!("device: {main_choice}");
    if let Some(choices) = &choices {
        let names: Vec<String> = choices.iter().map(|c| c.to_string()).collect();
        println!(
            "devices: {} (data-parallel through burn-train, global batch {} split over them)",
            names.join(", "),
            s.batch_size
        );
    }
    let ad = device.clone().autodiff();
    // burn initializes parameters lazily, at their first use, from the device's generator:
    // seed it first, so that the initial weights follow --seed whenever they are drawn.
    device.seed(s.seed);
    ad.seed(s.seed);
    let mut state = State::new(&s, &ad);
    let ckpt = out.join("checkpoint");
    let metrics = out.join("metrics.jsonl");
    let mut first_epoch = 0;
    if args.resume {
        (state, first_epoch) = checkpoint::resume(state, &s, &ckpt, &device);
    } else if metrics.exists() {
        std::fs::remove_file(&metrics)
            .unwrap_or_else(|e| fail(format!("cannot replace {}: {e}", metrics.display())));
    }
    let threads = StepThreads::for_step(s.model, s.batch_size, s.k);
    print_header(&s, &dir, threads.single() && workers.is_none());
    let run = Run {
        args: &args,
        s: &s,
        data: &data,
        device,
        ad,
        threads,
        test_n: args.test_n.unwrap_or(data.test.len()).min(data.test.len()),
        batches: s.train_n.div_ceil(s.batch_size),
        ckpt,
        metrics,
    };
    let (vae, ema, last_elbo) = match workers {
        Some(workers) => multi_device::train(&run, state, first_epoch, workers, data.clone(), &out),
        None => {
            let mut last_elbo = f64::NAN;
            for epoch in first_epoch..args.epochs {
                let (trained, loss_sum, seconds) = train::train_epoch(&run, state, epoch);
                state = trained;
                last_elbo = train::end_epoch(&run, &state, epoch, loss_sum, seconds);
            }
            (state.vae, state.ema, last_elbo)
        }
    };
    finish(&run, &vae, ema.as_ref(), last_elbo, &out);
}

/// The checks of `--devices` with `n` devices: enough images for every device.
fn check_devices(s: &Settings, n: usize) {
    if s.batch_size < n {
        fail(format!(
            "--batch-size {} is smaller than the {n} devices of --devices: every device needs at least one image of each batch",
            s.batch_size
        ));
    }
    if s.train_n < n {
        fail(format!(
            "--train-n {} is smaller than the {n} devices of --devices",
            s.train_n
        ));
    }
}

/// The final model (the weight average `ema` when there is one, else the trained `vae`): its
/// test log-likelihood, then its pictures. `last_elbo` is its test ELBO after the last epoch.
fn finish(run: &Run, vae: &Vae, ema: Option<&Ema<Vae>>, last_elbo: f64, out: &Path) {
    let (args, s, data) = (run.args, run.s, run.data);
    let default_eval_n = if s.model == ModelKind::Conv {
        1000
    } else {
        10_000
    };
    let eval_n = args.eval_n.unwrap_or(default_eval_n).min(data.test.len());
    let (final_vae, weights) = match ema {
        Some(e) => (&e.model, "averaged"),
        None => (vae, "trained"),
    };
    if args.eval_k > 0 && eval_n > 0 {
        let t0 = Instant::now();
        let ll = report::log_likelihood(final_vae, data, eval_n, args.eval_k, s, &run.device);
        println!(
            "test log-likelihood of the {weights} weights (IWAE bound, k = {}, {eval_n} images): {ll:.3} nats ({:.1} s)",
            args.eval_k,
            t0.elapsed().as_secs_f64()
        );
        let line = serde_json::json!({
            "test_log_likelihood": ll,
            "eval_k": args.eval_k,
            "eval_n": eval_n,
            "test_elbo": last_elbo,
            "weights": weights,
            "likelihood": s.likelihood.name(),
            "binarization": binarization_name(s),
        });
        report::append_line(&run.metrics, &line).unwrap_or_else(|e| fail(e));
    }
    report::pictures(final_vae, data, s, out, &run.device).unwrap_or_else(|e| fail(e));
    println!("wrote {}", out.display());
}
