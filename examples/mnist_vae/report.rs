//! The evaluations (the test ELBO of every epoch, the final test log-likelihood), the lines of
//! `metrics.jsonl`, and the pictures of the final model.

use std::io::Write;
use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use burn_probability::math::{logit, logsumexp, ndtri};
use burn_probability_examples::mnist::{Binarization, Mnist, Split};
use burn_probability_examples::plot::{Image, Panel, TAB10};
use burn_probability_examples::vae::model::{LikelihoodKind, ModelKind, ObjectiveKind, Vae};
use indicatif::{ProgressBar, ProgressStyle};

use crate::Settings;

/// The seed of every evaluation: with dynamic binarization, every model and every epoch is
/// evaluated on the same binarized test images and the same posterior noise.
const EVAL_SEED: u64 = 0x5EED_7E57;

/// The mean bound per image over images `0..n` of a split, without gradients.
pub(crate) fn evaluate(
    vae: &Vae,
    data: &Mnist,
    split: Split,
    n: usize,
    s: &Settings,
    device: &Device,
) -> f64 {
    device.seed(EVAL_SEED);
    let eval = vae.valid().discrete();
    // The test ELBO with one latent draw per image; Gaussian latents use the closed-form KL
    // (as the Keras tutorial's test lower bound), BinConcrete ones a one-sample Monte Carlo KL.
    let eval_objective = if s.model == ModelKind::Binary {
        ObjectiveKind::Elbo
    } else {
        ObjectiveKind::ElboAnalytic
    };
    let batch = 500;
    let mut total = 0.0;
    let mut start = 0;
    while start < n {
        let end = (start + batch).min(n);
        let x = data.images_tensor(split, start..end, s.binarization(), device);
        let b = eval.bound_with(x, eval_objective, 1, s.likelihood);
        total += b.value.sum().into_scalar::<f64>();
        start = end;
    }
    total / n as f64
}

/// ln p(x) by importance sampling with `k` samples (the IWAE_k bound), averaged over test
/// images `0..n`, computed in chunks of samples so that memory stays bounded.
pub(crate) fn log_likelihood(
    vae: &Vae,
    data: &Mnist,
    n: usize,
    k: usize,
    s: &Settings,
    device: &Device,
) -> f64 {
    device.seed(EVAL_SEED);
    let eval = vae.valid().discrete();
    let per_chunk = if s.model == ModelKind::Conv {
        2_000
    } else {
        20_000
    };
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
        let x = data.images_tensor(Split::Test, start..end, s.binarization(), device);
        let mut chunks = Vec::new();
        let mut done = 0;
        while done < k {
            let m = kc.min(k - done);
            let v = eval
                .bound_with(x.clone(), ObjectiveKind::Iwae, m, s.likelihood)
                .value
                + (m as f64).ln();
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

/// Appends `value` as one line to the file at `path`.
pub(crate) fn append_line(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    writeln!(f, "{value}").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The pictures of a model in `out`: with 2-D latents `latent.png` and `manifold.png`, then
/// `reconstructions.png` and `samples.png`. The decoded pictures show the pixel likelihood's
/// mean (the continuous Bernoulli's is not `σ(ℓ)`).
pub(crate) fn pictures(
    vae: &Vae,
    data: &Mnist,
    s: &Settings,
    out: &Path,
    device: &Device,
) -> Result<(), String> {
    let eval = vae.valid();
    let bin = picture_binarization(s);
    if s.latent == 2 && s.model != ModelKind::Categorical {
        latent_scatter(&eval, data, bin, out, device)?;
        manifold(&eval, s.temperature, s.likelihood, out, device)?;
    }
    reconstructions(&eval, data, bin, s.likelihood, out, device)?;
    prior_samples(&eval, s.likelihood, out, device)
}

/// How the pictures' test images are shown and encoded: the grey levels for a model trained on
/// them, else thresholded (one fixed picture whatever the training binarization).
fn picture_binarization(s: &Settings) -> Binarization {
    if s.binarization() == Binarization::None {
        Binarization::None
    } else {
        Binarization::Static
    }
}

/// The posterior means of the first 5000 test images, coloured by digit (`latent.png`).
fn latent_scatter(
    eval: &Vae,
    data: &Mnist,
    bin: Binarization,
    out: &Path,
    device: &Device,
) -> Result<(), String> {
    let test = &data.test;
    let n = test.len().min(5000);
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
    img.save(&out.join("latent.png"))
}

/// The decoded manifold over a 20 × 20 grid of prior quantiles (`manifold.png`); the
/// BinConcrete prior's quantiles are `logit(q) / temperature`.
fn manifold(
    eval: &Vae,
    temperature: f64,
    likelihood: LikelihoodKind,
    out: &Path,
    device: &Device,
) -> Result<(), String> {
    let g = 20;
    let qs: Vec<f32> = (0..g).map(|i| (i as f32 + 0.5) / g as f32).collect();
    let q = Tensor::<1>::from_floats(qs.as_slice(), device);
    let quantiles: Vec<f64> = match eval {
        Vae::Binary(_) => logit(q)
            .div_scalar(temperature)
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
    let imgs: Vec<f32> = eval
        .decode(zg, likelihood)
        .into_data()
        .iter::<f32>()
        .collect();
    save_grid(&imgs, g, &out.join("manifold.png"))
}

/// The first ten test images (top row) and their decoded posterior means (the row below), at
/// twice the size (`reconstructions.png`).
fn reconstructions(
    eval: &Vae,
    data: &Mnist,
    bin: Binarization,
    likelihood: LikelihoodKind,
    out: &Path,
    device: &Device,
) -> Result<(), String> {
    let m = 10;
    let x = data.images_tensor(Split::Test, 0..m, bin, device);
    let orig: Vec<f32> = x.clone().into_data().iter::<f32>().collect();
    let rec: Vec<f32> = eval
        .decode(eval.posterior_mean(x), likelihood)
        .into_data()
        .iter::<f32>()
        .collect();
    let mut img = Image::new(m * 56, 112);
    for i in 0..m {
        img.paste_grey(i * 56, 0, 28, 28, &orig[i * 784..(i + 1) * 784], 2);
        img.paste_grey(i * 56, 56, 28, 28, &rec[i * 784..(i + 1) * 784], 2);
    }
    img.save(&out.join("reconstructions.png"))
}

/// The decoded means (Bernoulli: pixel probabilities) of 100 samples from the prior
/// (`samples.png`).
fn prior_samples(
    eval: &Vae,
    likelihood: LikelihoodKind,
    out: &Path,
    device: &Device,
) -> Result<(), String> {
    let z = eval.sample_prior(100, device);
    let smp: Vec<f32> = eval
        .decode(z, likelihood)
        .into_data()
        .iter::<f32>()
        .collect();
    save_grid(&smp, 10, &out.join("samples.png"))
}

/// Saves `g × g` 28 × 28 grey images (`pixels`, one after the other) as a grid, row by row.
fn save_grid(pixels: &[f32], g: usize, path: &Path) -> Result<(), String> {
    let mut img = Image::new(g * 28, g * 28);
    for i in 0..g * g {
        img.paste_grey(
            (i % g) * 28,
            (i / g) * 28,
            28,
            28,
            &pixels[i * 784..(i + 1) * 784],
            1,
        );
    }
    img.save(path)
}
