//! Variational autoencoders on MNIST: the TFP/Keras tutorials' models, trained with
//! burn-probability.
//!
//! ```sh
//! cargo run --release --example mnist_vae                       # the convolutional VAE, 20 epochs
//! cargo run --release --example mnist_vae -- --model mlp --epochs 10
//! cargo run --release --example mnist_vae -- --model iwae --objective iwae -k 50
//! cargo run --release --example mnist_vae -- --model binary --temperature 0.5
//! cargo run --release --example mnist_vae -- --help
//! ```
//!
//! Data: `--data-dir DIR`, else `$MNIST_DIR`, else the cache folder
//! (`$XDG_CACHE_HOME/burn-probability/mnist`, by default `~/.cache/burn-probability/mnist`), each
//! holding the four original IDX files (`.gz` or not); else MNIST is downloaded into the cache
//! folder with the system's `curl`, and each file is kept only if its md5 sum is the original's.
//!
//! Output (`--out`, default `runs/mnist_vae/<model>`): `metrics.jsonl` (one line per epoch,
//! then the test log-likelihood), `latent.png`, `manifold.png` (2-D latents), `reconstructions.png`,
//! `samples.png`, and `checkpoint/` (after every epoch; `--resume` continues from it).
//! Beside the trained weights the run keeps their moving average (`--ema-decay`, default 0.999):
//! both are evaluated every epoch, and the average is the model of the final log-likelihood, the
//! pictures and `checkpoint/ema.bpk`.

#[path = "../common/alloc.rs"]
mod alloc;
#[path = "../common/plot.rs"]
mod plot;

mod ema;
mod model;
mod schedule;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer, OptimizerRecord};
use burn::tensor::{Device, Tensor};
use burn_probability::datasets::mnist::{Binarization, Mnist, Split, missing_files};
use burn_probability::math::{logsumexp, ndtri};
use clap::{Parser, ValueEnum};
use ema::Ema;
use indicatif::{ProgressBar, ProgressStyle};
use model::{BinaryVae, ConvVae, MlpVae, ObjectiveKind, StepThreads, Vae};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModelKind {
    /// The Keras/TFP convolutional VAE (latent 2, RMSprop 1e-3, static binarization).
    Conv,
    /// The TFP/Edward MLP VAE: 784-200-200 ELU, latent 2, Adam 1e-3, batch 64.
    Mlp,
    /// Burda et al.'s one-stochastic-layer model: 784-200-200-50 tanh, dynamic binarization.
    Iwae,
    /// The discrete-latent VAE: BinConcrete latents in logit space, MLP encoder and decoder.
    Binary,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DatasetKind {
    Mnist,
    FashionMnist,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BinarizationKind {
    /// pixel > 127.5, fixed once.
    Static,
    /// A fresh Bernoulli(pixel / 255) draw for every batch.
    Dynamic,
}

/// Train a variational autoencoder on MNIST (or Fashion-MNIST).
#[derive(Parser, Debug, Clone)]
#[command(version, about, long_about = None)]
struct Args {
    /// The architecture (each has the tutorial's defaults for the flags below).
    #[arg(long, value_enum, default_value_t = ModelKind::Conv)]
    model: ModelKind,
    /// The training objective. Default: elbo-analytic for conv (the Keras tutorial's closed-form
    /// KL), elbo for the others (iwae for --model iwae is not implied: choose it).
    #[arg(long, value_enum)]
    objective: Option<ObjectiveKind>,
    /// Samples per example for the objective.
    #[arg(short = 'k', long = "samples", default_value_t = 1)]
    k: usize,
    /// Epochs (passes over the training set).
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Batch size. Default: 100 for conv, 64 for mlp, 20 for iwae, 100 for binary.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Learning rate (RMSprop for conv, Adam otherwise).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Learning-rate warm-up: the rate rises linearly from lr/N to lr over the first N
    /// optimizer steps (0 turns it off). Default: 600 for conv (one epoch at batch 100; the
    /// tutorial has none, but without it RMSprop's first full-size steps kill most of the
    /// encoder's 32 ReLUs and some seeds collapse in epoch 1: see the README), 0 for the others.
    #[arg(long)]
    warmup_steps: Option<usize>,
    /// Latent dimension. Default: 2 (conv, mlp), 50 (iwae), 20 (binary).
    #[arg(long)]
    latent: Option<usize>,
    /// BinConcrete temperature (binary model).
    #[arg(long, default_value_t = 0.5)]
    temperature: f64,
    /// Binarization. Default: static for conv and mlp, dynamic for iwae and binary.
    #[arg(long, value_enum)]
    binarization: Option<BinarizationKind>,
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
    /// Run every formula as plain burn operations instead of the crate's fused CPU kernels
    /// (same results up to float rounding, slower; for comparing the two).
    #[arg(long)]
    no_fused: bool,
    /// conv model: run the convolutions with burn's own `Conv2d`/`ConvTranspose2d` forward and
    /// backward instead of the crate's kernels (`nn::FastConv`, the default on flex: the same
    /// results up to float rounding, about 3.5× faster training).
    #[arg(long)]
    reference_conv: bool,
}

/// The resolved settings of a run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
struct Settings {
    model: String,
    objective: String,
    k: usize,
    batch_size: usize,
    lr: f64,
    #[serde(default)]
    warmup_steps: usize,
    latent: usize,
    temperature: f64,
    dynamic: bool,
    dataset: String,
    train_n: usize,
    seed: u64,
    #[serde(default)]
    ema_decay: f64,
    #[serde(default)]
    fast_conv: bool,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2);
}

fn cache_dir(dataset: DatasetKind) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let name = match dataset {
        DatasetKind::Mnist => "mnist",
        DatasetKind::FashionMnist => "fashion-mnist",
    };
    Some(base.join("burn-probability").join(name))
}

/// Finds the data folder: --data-dir, then $MNIST_DIR, then the cache folder (and, for
/// Fashion-MNIST, the Debian package's folder).
fn locate_data(args: &Args) -> PathBuf {
    if let Some(dir) = &args.data_dir {
        let missing = missing_files(dir);
        if !missing.is_empty() {
            fail(format!(
                "--data-dir {} lacks {}",
                dir.display(),
                missing.join(", ")
            ));
        }
        return dir.clone();
    }
    let mut tried = Vec::new();
    let env_var = match args.dataset {
        DatasetKind::Mnist => "MNIST_DIR",
        DatasetKind::FashionMnist => "FASHION_MNIST_DIR",
    };
    let mut candidates: Vec<PathBuf> = std::env::var_os(env_var)
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.extend(cache_dir(args.dataset));
    if args.dataset == DatasetKind::FashionMnist {
        candidates.push(PathBuf::from("/usr/share/datasets/fashion-mnist"));
    }
    for dir in &candidates {
        let missing = missing_files(dir);
        if missing.is_empty() {
            return dir.clone();
        }
        tried.push(format!(
            "  {} (missing {})",
            dir.display(),
            missing.join(", ")
        ));
    }
    let how = format!(
        "Provide the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
         t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) with --data-dir DIR or the {env_var} \
         environment variable, or put them in the cache folder above."
    );
    let looked = if tried.is_empty() {
        "  (nowhere: no HOME for a cache folder)".to_string()
    } else {
        tried.join("\n")
    };
    let cache = cache_dir(args.dataset);
    match (args.dataset, cache) {
        (DatasetKind::Mnist, Some(cache)) => match download_mnist(&cache) {
            Ok(()) => cache,
            Err(e) => fail(format!(
                "no MNIST data found. Looked in:\n{looked}\nThe download failed: {e}\n{how}"
            )),
        },
        (DatasetKind::FashionMnist, _) => fail(format!(
            "no Fashion-MNIST data found. Looked in:\n{looked}\n{how} On Debian and Ubuntu, `apt-get install dataset-fashion-mnist` \
             installs them in /usr/share/datasets/fashion-mnist."
        )),
        (_, None) => fail(format!("no MNIST data found. Looked in:\n{looked}\n{how}")),
    }
}

/// Public mirrors of the original MNIST files (the md5 sums are checked whatever the source).
const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// Downloads the four MNIST files into `cache` with the system's `curl` (progress bar on the
/// terminal), each to a `.part` file that is renamed only after its md5 sum matches the original.
/// `BURN_PROBABILITY_MNIST_MIRROR` replaces the mirror list with one base URL.
fn download_mnist(cache: &Path) -> Result<(), String> {
    use burn_probability::datasets::mnist::{FILES, MNIST_GZ_MD5, md5_hex};
    let mirrors: Vec<String> = match std::env::var("BURN_PROBABILITY_MNIST_MIRROR") {
        Ok(m) => vec![if m.ends_with('/') { m } else { format!("{m}/") }],
        Err(_) => MNIST_MIRRORS.iter().map(|m| m.to_string()).collect(),
    };
    std::fs::create_dir_all(cache)
        .map_err(|e| format!("cannot create the cache folder {}: {e}", cache.display()))?;
    eprintln!(
        "MNIST not found locally: downloading it into {}",
        cache.display()
    );
    for (name, md5) in FILES.iter().zip(MNIST_GZ_MD5) {
        let target = cache.join(format!("{name}.gz"));
        if target.is_file() && md5_hex(&target).map_err(|e| e.to_string())? == md5 {
            continue;
        }
        let part = cache.join(format!("{name}.gz.part"));
        let mut errors = Vec::new();
        for mirror in &mirrors {
            let url = format!("{mirror}{name}.gz");
            eprintln!("{url}");
            let status = std::process::Command::new("curl")
                .args([
                    "--fail",
                    "--location",
                    "--retry",
                    "2",
                    "--connect-timeout",
                    "20",
                    "--progress-bar",
                    "--output",
                ])
                .arg(&part)
                .arg(&url)
                .status();
            match status {
                Err(e) => {
                    errors.push(format!(
                        "cannot run curl ({e}): install curl, or provide the files yourself"
                    ));
                    break;
                }
                Ok(s) if !s.success() => errors.push(format!("{url}: curl exited with {s}")),
                Ok(_) => {
                    let got = md5_hex(&part).map_err(|e| e.to_string())?;
                    if got == md5 {
                        std::fs::rename(&part, &target).map_err(|e| {
                            format!("cannot move {} into place: {e}", part.display())
                        })?;
                        break;
                    }
                    errors.push(format!(
                        "{url}: md5 {got} does not match the original {md5}"
                    ));
                }
            }
            std::fs::remove_file(&part).ok();
        }
        if !target.is_file() {
            std::fs::remove_file(&part).ok();
            return Err(errors.join("; "));
        }
    }
    Ok(())
}

/// The objective flag, or the model's default.
fn objective_of(args: &Args) -> ObjectiveKind {
    args.objective.unwrap_or(match args.model {
        ModelKind::Conv => ObjectiveKind::ElboAnalytic,
        _ => ObjectiveKind::Elbo,
    })
}

fn settings(args: &Args, train_len: usize) -> Settings {
    let (batch, latent, dynamic, warmup) = match args.model {
        ModelKind::Conv => (100, 2, false, 600),
        ModelKind::Mlp => (64, 2, false, 0),
        ModelKind::Iwae => (20, 50, true, 0),
        ModelKind::Binary => (100, 20, true, 0),
    };
    let s = Settings {
        model: format!("{:?}", args.model).to_lowercase(),
        objective: format!("{:?}", objective_of(args)).to_lowercase(),
        k: args.k,
        batch_size: args.batch_size.unwrap_or(batch),
        lr: args.lr,
        warmup_steps: args.warmup_steps.unwrap_or(warmup),
        latent: args.latent.unwrap_or(latent),
        temperature: args.temperature,
        dynamic: args
            .binarization
            .map(|b| b == BinarizationKind::Dynamic)
            .unwrap_or(dynamic),
        dataset: format!("{:?}", args.dataset).to_lowercase(),
        train_n: args.train_n.unwrap_or(train_len).min(train_len),
        seed: args.seed,
        ema_decay: args.ema_decay,
        fast_conv: !args.reference_conv,
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
    if args.model == ModelKind::Binary && args.objective == Some(ObjectiveKind::ElboAnalytic) {
        fail(
            "--objective elbo-analytic needs Gaussian latents: BinConcrete pairs have no closed-form KL (use elbo, which estimates it in logit space)",
        );
    }
    s
}

fn build(s: &Settings, device: &Device) -> Vae {
    match s.model.as_str() {
        "conv" => Vae::Conv(ConvVae::new(s.latent, s.fast_conv, device)),
        "mlp" => Vae::Mlp(MlpVae::new(s.latent, false, device)),
        "iwae" => Vae::Mlp(MlpVae::new(s.latent, true, device)),
        _ => Vae::Binary(BinaryVae::new(s.latent, s.temperature, device)),
    }
}

/// A deterministic permutation of `0..n` for an epoch (splitmix64 + Fisher–Yates).
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CheckpointState {
    epoch: usize,
    settings: Settings,
    /// Updates folded into the weight average (`ema.bpk`).
    #[serde(default)]
    ema_updates: u64,
}

/// Saves model, weight average, optimizer and progress; `state.json`, written last, commits
/// the checkpoint.
fn save_checkpoint(
    dir: &Path,
    vae: &Vae,
    ema: Option<&Ema<Vae>>,
    optim: &ModuleOptimizer,
    epoch: usize,
    s: &Settings,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = |name: &str| dir.join(format!("{name}.tmp"));
    let save = |m: &Vae, name: &str| {
        m.clone()
            .save_file(tmp(name))
            .map_err(|e| format!("cannot write {}: {e:?}", tmp(name).display()))
    };
    let mut names = vec!["model.bpk", "optim.bpk"];
    save(vae, "model.bpk")?;
    if let Some(ema) = ema {
        save(&ema.model, "ema.bpk")?;
        names.push("ema.bpk");
    }
    optim
        .to_record()
        .save(tmp("optim.bpk"))
        .map_err(|e| format!("cannot write {}: {e:?}", tmp("optim.bpk").display()))?;
    for name in names {
        std::fs::rename(tmp(name), dir.join(name))
            .map_err(|e| format!("cannot rename {}: {e}", tmp(name).display()))?;
    }
    let state = CheckpointState {
        epoch,
        settings: s.clone(),
        ema_updates: ema.map_or(0, |e| e.updates),
    };
    write_atomic(
        &dir.join("state.json"),
        serde_json::to_string_pretty(&state)
            .expect("serializable")
            .as_bytes(),
    )
}

/// The mean bound per image over images `0..n` of a split, without gradients.
/// The seed of every evaluation: with dynamic binarization, every model and every epoch is
/// evaluated on the same binarized test images and the same posterior noise.
const EVAL_SEED: u64 = 0x5EED_7E57;

fn evaluate(vae: &Vae, data: &Mnist, split: Split, n: usize, s: &Settings, device: &Device) -> f64 {
    device.seed(EVAL_SEED);
    let eval = vae.valid();
    let eval_objective = if s.model == "binary" {
        ObjectiveKind::Elbo
    } else {
        ObjectiveKind::ElboAnalytic
    };
    let batch = 500;
    let mut total = 0.0;
    let mut start = 0;
    while start < n {
        let end = (start + batch).min(n);
        let bin = if s.dynamic {
            Binarization::Dynamic
        } else {
            Binarization::Static
        };
        let x = data.images_tensor(split, start..end, bin, device);
        // The test ELBO with one latent draw per image; Gaussian latents use the closed-form KL
        // (as the Keras tutorial's test lower bound), BinConcrete ones a one-sample Monte Carlo KL.
        let b = eval.bound(x, eval_objective, 1);
        total += b.value.sum().into_scalar::<f64>();
        start = end;
    }
    total / n as f64
}

/// ln p(x) by importance sampling with `k` samples (the IWAE_k bound), averaged over test
/// images `0..n`, computed in chunks of samples so that memory stays bounded.
fn log_likelihood(
    vae: &Vae,
    data: &Mnist,
    n: usize,
    k: usize,
    s: &Settings,
    device: &Device,
) -> f64 {
    device.seed(EVAL_SEED);
    let eval = vae.valid();
    let per_chunk = if s.model == "conv" { 2_000 } else { 20_000 };
    let (b, kc) = if k >= per_chunk {
        (1, per_chunk)
    } else {
        ((per_chunk / k).max(1), k)
    };
    let bar = ProgressBar::new(n as u64).with_style(
        ProgressStyle::with_template(
            "test log-likelihood {bar:30} {pos}/{len} images [{elapsed}<{eta}]",
        )
        .expect("template"),
    );
    let mut total = 0.0;
    let mut start = 0;
    while start < n {
        let end = (start + b).min(n);
        let bin = if s.dynamic {
            Binarization::Dynamic
        } else {
            Binarization::Static
        };
        let x = data.images_tensor(Split::Test, start..end, bin, device);
        let mut chunks = Vec::new();
        let mut done = 0;
        while done < k {
            let m = kc.min(k - done);
            let v = eval.bound(x.clone(), ObjectiveKind::Iwae, m).value + (m as f64).ln();
            chunks.push(v.unsqueeze_dim::<2>(0));
            done += m;
        }
        let lse = logsumexp(Tensor::cat(chunks, 0), 0) - (k as f64).ln();
        total += lse.sum().into_scalar::<f64>();
        bar.inc((end - start) as u64);
        start = end;
    }
    bar.finish_and_clear();
    total / n as f64
}

fn pictures(
    vae: &Vae,
    data: &Mnist,
    s: &Settings,
    out: &Path,
    device: &Device,
) -> Result<(), String> {
    use plot::{Image, Panel, TAB10};
    let eval = vae.valid();
    let bin = Binarization::Static;
    let test = &data.test;
    let n = test.len().min(5000);
    // Latent space, coloured by digit.
    if s.latent == 2 {
        let z: Vec<f64> = eval
            .posterior_mean(data.images_tensor(Split::Test, 0..n, bin, device))
            .into_data()
            .iter::<f64>()
            .collect();
        let pts: Vec<(f64, f64)> = (0..n).map(|i| (z[2 * i], z[2 * i + 1])).collect();
        let mut img = Image::new(800, 760);
        let panel = Panel::new(
            70,
            20,
            700,
            700,
            Panel::limits(pts.iter().map(|p| p.0)),
            Panel::limits(pts.iter().map(|p| p.1)),
        );
        panel.axes(&mut img);
        for (i, p) in pts.iter().enumerate() {
            panel.scatter(
                &mut img,
                std::slice::from_ref(p),
                TAB10[test.labels[i] as usize],
                2,
            );
        }
        img.save(&out.join("latent.png"))?;
        // The decoded manifold over a 20 x 20 grid of prior quantiles.
        let g = 20;
        let qs: Vec<f32> = (0..g).map(|i| (i as f32 + 0.5) / g as f32).collect();
        let q = Tensor::<1>::from_floats(qs.as_slice(), device);
        let quantiles: Vec<f64> = match vae {
            Vae::Binary(_) => burn_probability::math::logit(q)
                .div_scalar(s.temperature)
                .into_data()
                .iter::<f64>()
                .collect(),
            _ => ndtri(q).into_data().iter::<f64>().collect(),
        };
        let mut grid = Vec::with_capacity(2 * g * g);
        for r in 0..g {
            for c in 0..g {
                grid.push(quantiles[c] as f32);
                grid.push(quantiles[g - 1 - r] as f32);
            }
        }
        let zg = Tensor::<1>::from_floats(grid.as_slice(), device).reshape([g * g, 2]);
        let imgs: Vec<f32> = eval.decode(zg).into_data().iter::<f32>().collect();
        let mut img = Image::new(g * 28, g * 28);
        for i in 0..g * g {
            img.paste_grey(
                (i % g) * 28,
                (i / g) * 28,
                28,
                28,
                &imgs[i * 784..(i + 1) * 784],
                1,
            );
        }
        img.save(&out.join("manifold.png"))?;
    }
    // Reconstructions: originals (top rows) and decoded posterior means (rows below).
    let m = 10;
    let x = data.images_tensor(Split::Test, 0..m, bin, device);
    let orig: Vec<f32> = x.clone().into_data().iter::<f32>().collect();
    let rec: Vec<f32> = eval
        .decode(eval.posterior_mean(x))
        .into_data()
        .iter::<f32>()
        .collect();
    let mut img = Image::new(m * 56, 112);
    for i in 0..m {
        img.paste_grey(i * 56, 0, 28, 28, &orig[i * 784..(i + 1) * 784], 2);
        img.paste_grey(i * 56, 56, 28, 28, &rec[i * 784..(i + 1) * 784], 2);
    }
    img.save(&out.join("reconstructions.png"))?;
    // Samples from the prior (pixel probabilities).
    let z = eval.sample_prior(100, device);
    let smp: Vec<f32> = eval.decode(z).into_data().iter::<f32>().collect();
    let mut img = Image::new(10 * 28, 10 * 28);
    for i in 0..100 {
        img.paste_grey(
            (i % 10) * 28,
            (i / 10) * 28,
            28,
            28,
            &smp[i * 784..(i + 1) * 784],
            1,
        );
    }
    img.save(&out.join("samples.png"))
}

fn append_line(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    writeln!(f, "{value}").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn main() {
    alloc::keep_freed_memory();
    // Subnormal floats (small gradients, decaying RMSprop moments) cost x86 CPUs microcode
    // assists: flushing them to zero, as TensorFlow does by default, made the conv VAE's epochs
    // 18% shorter with the same losses (see `set_flush_denormal`).
    burn_probability::set_flush_denormal(true);
    let args = Args::parse();
    if args.no_fused {
        burn_probability::set_fused_kernels(false);
    }
    let dir = locate_data(&args);
    let data = Mnist::load(&dir).unwrap_or_else(|e| fail(e));
    let s = settings(&args, data.train.len());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/mnist_vae").join(&s.model));
    std::fs::create_dir_all(&out)
        .unwrap_or_else(|e| fail(format!("cannot create --out {}: {e}", out.display())));
    let probe = out.join(".write-test");
    std::fs::write(&probe, b"")
        .unwrap_or_else(|e| fail(format!("--out {} is not writable: {e}", out.display())));
    std::fs::remove_file(&probe).ok();

    let device = Device::flex();
    let ad = device.clone().autodiff();
    // burn initializes parameters lazily, at their first use, from the device's generator:
    // seed it first, so that the initial weights follow --seed whenever they are drawn.
    device.seed(s.seed);
    ad.seed(s.seed);
    let mut vae = build(&s, &ad);
    // The weight average starts at the first optimizer step (touching the parameters here
    // would draw them now, out of the order of the per-epoch seeds).
    let mut ema: Option<Ema<Vae>> = None;
    let mut optim = model::optimizer(&s.model);
    let ckpt = out.join("checkpoint");
    let metrics = out.join("metrics.jsonl");
    let mut first_epoch = 0;
    if args.resume {
        let state: CheckpointState = std::fs::read_to_string(ckpt.join("state.json"))
            .map_err(|e| {
                format!(
                    "--resume: cannot read {}: {e}",
                    ckpt.join("state.json").display()
                )
            })
            .and_then(|t| {
                serde_json::from_str(&t).map_err(|e| {
                    format!(
                        "--resume: {} is corrupt: {e}",
                        ckpt.join("state.json").display()
                    )
                })
            })
            .unwrap_or_else(|e| fail(e));
        if state.settings != s {
            fail(format!(
                "--resume: the checkpoint was made with other settings:\n  checkpoint: {:?}\n  now:        {s:?}",
                state.settings
            ));
        }
        vae = vae
            .try_load_file(ckpt.join("model.bpk"))
            .unwrap_or_else(|e| {
                fail(format!(
                    "--resume: cannot load {}: {e:?}",
                    ckpt.join("model.bpk").display()
                ))
            });
        let record = OptimizerRecord::load(ckpt.join("optim.bpk")).unwrap_or_else(|e| {
            fail(format!(
                "--resume: cannot load {}: {e:?}",
                ckpt.join("optim.bpk").display()
            ))
        });
        optim = optim.load_record(record);
        if s.ema_decay > 0.0 {
            let path = ckpt.join("ema.bpk");
            let model = build(&s, &device).try_load_file(&path).unwrap_or_else(|e| {
                fail(format!("--resume: cannot load {}: {e:?}", path.display()))
            });
            ema = Some(Ema {
                model,
                decay: s.ema_decay,
                updates: state.ema_updates,
            });
        }
        first_epoch = state.epoch;
        println!("resuming after epoch {first_epoch} from {}", ckpt.display());
    } else if metrics.exists() {
        std::fs::remove_file(&metrics)
            .unwrap_or_else(|e| fail(format!("cannot replace {}: {e}", metrics.display())));
    }
    let threads = StepThreads::for_step(&s.model, s.batch_size, s.k);
    println!(
        "{} VAE on {} ({} training images from {}), objective {} k={}, batch {}, latent {}, {} binarization{}",
        s.model,
        s.dataset,
        s.train_n,
        dir.display(),
        s.objective,
        s.k,
        s.batch_size,
        s.latent,
        if s.dynamic { "dynamic" } else { "static" },
        if threads.single() {
            ", training steps on one thread"
        } else {
            ""
        }
    );
    let test_n = args.test_n.unwrap_or(data.test.len()).min(data.test.len());
    let bin = if s.dynamic {
        Binarization::Dynamic
    } else {
        Binarization::Static
    };
    let objective: ObjectiveKind = objective_of(&args);
    let batches = s.train_n.div_ceil(s.batch_size);
    let mut last_elbo = f64::NAN;
    for epoch in first_epoch..args.epochs {
        // Reseeding per epoch makes a resumed run draw the same noise as an uninterrupted one.
        device.seed(s.seed.wrapping_mul(1000).wrapping_add(epoch as u64));
        ad.seed(s.seed.wrapping_mul(1000).wrapping_add(epoch as u64));
        let order = permutation(s.train_n, s.seed.wrapping_add(epoch as u64));
        let bar = ProgressBar::new(batches as u64).with_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} {msg} [{elapsed}<{eta}]",
            )
            .expect("template"),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, args.epochs));
        let t0 = Instant::now();
        let mut loss_sum = 0.0;
        for (i, idx) in order.chunks(s.batch_size).enumerate() {
            let x = data.gather_images(Split::Train, idx, bin, &ad);
            let (next, loss) = threads.run(|| {
                let bound = vae.bound(x, objective, s.k);
                let loss = bound.loss.clone().into_scalar::<f64>();
                if !loss.is_finite() {
                    return (vae, loss);
                }
                let grads = GradientsParams::from_grads(bound.loss.backward(), &vae);
                let lr = schedule::warmed_up(s.lr, s.warmup_steps, epoch * batches + i);
                (optim.step(lr, vae, grads), loss)
            });
            vae = next;
            if !loss.is_finite() {
                fail(format!(
                    "the loss became {loss} at epoch {}, batch {i}: try a lower --lr",
                    epoch + 1
                ));
            }
            loss_sum += loss * idx.len() as f64;
            if s.ema_decay > 0.0 {
                ema.get_or_insert_with(|| Ema::new(vae.valid(), s.ema_decay))
                    .update(&vae);
            }
            if i % 10 == 0 {
                let done = (i + 1) * s.batch_size;
                bar.set_message(format!(
                    "loss {loss:.2}, {:.0} images/s",
                    done as f64 / t0.elapsed().as_secs_f64()
                ));
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let seconds = t0.elapsed().as_secs_f64();
        let train_loss = loss_sum / s.train_n as f64;
        let test_elbo = evaluate(&vae, &data, Split::Test, test_n, &s, &device);
        let test_elbo_ema = ema
            .as_ref()
            .map(|e| evaluate(&e.model, &data, Split::Test, test_n, &s, &device));
        last_elbo = test_elbo_ema.unwrap_or(test_elbo);
        let ips = s.train_n as f64 / seconds;
        println!(
            "epoch {:>3}/{}: train loss {train_loss:.3}  test ELBO {test_elbo:.3} nats{}  ({seconds:.1} s, {ips:.0} images/s)",
            epoch + 1,
            args.epochs,
            test_elbo_ema.map_or(String::new(), |v| format!(", averaged weights {v:.3}"))
        );
        let mut line = serde_json::json!({"epoch": epoch + 1, "train_loss": train_loss, "test_elbo": test_elbo, "test_n": test_n,
                                          "seconds": seconds, "images_per_sec": ips});
        if let Some(v) = test_elbo_ema {
            line["test_elbo_ema"] = serde_json::json!(v);
        }
        append_line(&metrics, &line).unwrap_or_else(|e| fail(e));
        save_checkpoint(&ckpt, &vae, ema.as_ref(), &optim, epoch + 1, &s)
            .unwrap_or_else(|e| fail(e));
    }
    let eval_n = args
        .eval_n
        .unwrap_or(if s.model == "conv" { 1000 } else { 10_000 })
        .min(data.test.len());
    // The final model: the weight average when there is one.
    let (final_vae, weights) = match &ema {
        Some(e) => (&e.model, "averaged"),
        None => (&vae, "trained"),
    };
    if args.eval_k > 0 && eval_n > 0 {
        let t0 = Instant::now();
        let ll = log_likelihood(final_vae, &data, eval_n, args.eval_k, &s, &device);
        println!(
            "test log-likelihood of the {weights} weights (IWAE bound, k = {}, {eval_n} images): {ll:.3} nats ({:.1} s)",
            args.eval_k,
            t0.elapsed().as_secs_f64()
        );
        append_line(&metrics, &serde_json::json!({"test_log_likelihood": ll, "eval_k": args.eval_k, "eval_n": eval_n, "test_elbo": last_elbo, "weights": weights}))
            .unwrap_or_else(|e| fail(e));
    }
    pictures(final_vae, &data, &s, &out, &device).unwrap_or_else(|e| fail(e));
    println!("wrote {}", out.display());
}
