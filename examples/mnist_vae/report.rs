//! The evaluations (the test ELBO of every epoch, the final test log-likelihood), the lines of
//! `metrics.jsonl`, and the pictures of the final model.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use burn_probability::math::{logit, logsumexp, ndtri};
use burn_probability_examples::mnist::{Binarization, Mnist, Split};
use burn_probability_examples::plot::{self, Image, Mark};
use burn_probability_examples::vae::model::{LikelihoodKind, ModelKind, ObjectiveKind, Vae};
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;

use crate::{DatasetKind, Settings};

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
        latent_scatter(&eval, data, bin, s.dataset, out, device)?;
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

/// The legend's title and class names of a data set's ten labels.
fn class_names(dataset: DatasetKind) -> (&'static str, [&'static str; 10]) {
    match dataset {
        DatasetKind::Mnist => ("digit", ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]),
        DatasetKind::FashionMnist => (
            "class",
            [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        ),
    }
}

/// The posterior means of the first 5000 test images, coloured by class, with a legend naming
/// the classes (`latent.png`).
fn latent_scatter(
    eval: &Vae,
    data: &Mnist,
    bin: Binarization,
    dataset: DatasetKind,
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
    let (xlim, ylim) = (
        plot::limits(pts.iter().map(|p| p.0)),
        plot::limits(pts.iter().map(|p| p.1)),
    );
    let (legend_title, names) = class_names(dataset);
    let width = if dataset == DatasetKind::Mnist {
        120
    } else {
        200
    };
    plot::save_chart(&out.join("latent.png"), (800 + width, 800), |root| {
        let (area, side) = root.split_horizontally(800);
        let caption = format!("Latent space: posterior means of {n} test images");
        let mut chart = plot::scatter_frame(
            &area,
            (&caption, 24),
            (xlim, ylim),
            ("z₁ (posterior mean)", "z₂ (posterior mean)"),
        )?;
        chart.draw_series(
            pts.iter()
                .zip(&test.labels)
                .map(|(&p, &label)| Circle::new(p, 2, plot::TAB10[label as usize].filled())),
        )?;
        let entries: Vec<(&str, RGBColor)> = names.into_iter().zip(plot::TAB10).collect();
        plot::legend(&side.margin(60, 0, 0, 0), legend_title, &entries, Mark::Dot)
    })
}

/// One epoch's line of `metrics.jsonl`: the train loss and the test ELBO of the trained and
/// of the averaged weights.
struct EpochLine {
    train_loss: f64,
    test_elbo: f64,
    test_elbo_ema: Option<f64>,
}

/// The epochs' lines of `metrics.jsonl` by epoch. Other lines (the final log-likelihood, a line
/// cut short by an interrupted write) are skipped; of an epoch written twice (a run stopped
/// between its line and its checkpoint, then resumed) the later line counts.
fn epoch_lines(metrics: &Path) -> Result<BTreeMap<u64, EpochLine>, String> {
    let text = std::fs::read_to_string(metrics)
        .map_err(|e| format!("cannot read {}: {e}", metrics.display()))?;
    let mut epochs = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(epoch), Some(train_loss), Some(test_elbo)) = (
            v["epoch"].as_u64(),
            v["train_loss"].as_f64(),
            v["test_elbo"].as_f64(),
        ) else {
            continue;
        };
        let test_elbo_ema = v["test_elbo_ema"].as_f64();
        epochs.insert(
            epoch,
            EpochLine {
                train_loss,
                test_elbo,
                test_elbo_ema,
            },
        );
    }
    Ok(epochs)
}

/// The training curve from the epochs' lines of `metrics` (those of earlier runs of a resumed
/// run included): the train loss and the test −ELBO of the trained and of the averaged weights
/// per epoch, in nats per image (`training_curve.png`, beside `metrics`).
pub(crate) fn training_curve(metrics: &Path) -> Result<(), String> {
    let epochs = epoch_lines(metrics)?;
    let series = |value: &dyn Fn(&EpochLine) -> Option<f64>| -> Vec<(u64, f64)> {
        epochs
            .iter()
            .filter_map(|(&e, line)| Some((e, value(line)?)))
            .filter(|p| p.1.is_finite())
            .collect()
    };
    let curves = [
        (
            "train loss (mean over the epoch's batches)",
            plot::BLUE,
            series(&|l| Some(l.train_loss)),
        ),
        (
            "test −ELBO, trained weights",
            plot::ORANGE,
            series(&|l| Some(-l.test_elbo)),
        ),
        (
            "test −ELBO, averaged weights",
            plot::GREEN,
            series(&|l| l.test_elbo_ema.map(|v| -v)),
        ),
    ];
    let last = epochs.keys().last().copied().unwrap_or(1);
    // At most 10 ticks, on whole epochs.
    let every = last.div_ceil(10);
    let epoch_ticks: Vec<u64> = (every..=last).step_by(every as usize).collect();
    let ylim = plot::limits(curves.iter().flat_map(|c| c.2.iter().map(|p| p.1)));
    plot::save_chart(
        &metrics.with_file_name("training_curve.png"),
        (900, 560),
        |root| {
            let mut chart = ChartBuilder::on(root)
                .caption("Training curve", (plot::FONT, 24))
                .margin(12)
                .x_label_area_size(50)
                .y_label_area_size(70)
                .build_cartesian_2d((0..last + 1).with_key_points(epoch_ticks), ylim.0..ylim.1)?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .x_desc("epoch")
                .y_desc("nats per image (lower is better)")
                .y_label_formatter(&plot::tick)
                .label_style((plot::FONT, 16))
                .axis_desc_style((plot::FONT, 18))
                .draw()?;
            for (label, colour, points) in curves.iter().filter(|c| !c.2.is_empty()) {
                let colour = *colour;
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        colour.stroke_width(2),
                    ))?
                    .label(*label)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
                    });
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .border_style(BLACK)
                .background_style(WHITE)
                .label_font((plot::FONT, 16))
                .draw()?;
            Ok(())
        },
    )
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
