//! Probabilistic PCA by MAP and by mean-field variational inference: the Edward2 / TFP
//! tutorial, with `burn_probability::inference`.
//!
//! ```sh
//! cargo run --release --example ppca_vi                 # writes runs/ppca_vi/
//! cargo run --release --example ppca_vi -- --help
//! ```
//!
//! The model: `w ~ N(0, 2²)` per entry (`[data_dim, latent_dim]`), `z ~ N(0, 1)`
//! (`[latent_dim, N]`), `x ~ N(w z, σ²)` with `σ = 0.5`. Data are drawn from the model with a
//! seed; `w` and `z` are then inferred by MAP (Adam, 200 steps) and by a mean-field Normal
//! surrogate (softplus scales initialised at −4, Adam, one reparameterized sample per step).
//! Criticism, as in the tutorial: data generated with the latents replaced by the MAP values
//! and by the posterior means, plotted against the data.

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::optim::AdamConfig;
use burn::tensor::{Device, Distribution as Init, Tensor};
use burn_probability::inference::{
    LogJoint, MeanFieldNormal, Model, Params, PointEstimate, fit_map, fit_surrogate,
};
use burn_probability::{Distribution, Normal};
use burn_probability_examples::device::DeviceChoice;
use burn_probability_examples::plot;
use clap::Parser;
use plotters::prelude::{
    BLACK, BindKeyPoints, ChartBuilder, Circle, Color, IntoLogRange, LineSeries, PathElement,
    SeriesLabelPosition, TRANSPARENT, WHITE,
};

/// Probabilistic PCA by MAP and mean-field VI (the Edward2/TFP tutorial).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The device: flex (default), ndarray, wgpu, wgpu:N, cuda or cuda:N (the GPU ones need
    /// the examples' cargo feature of that name).
    #[arg(long, default_value = "flex")]
    device: DeviceChoice,
    /// Random seed (data generation, noise of VI and of the criticism samples). The default
    /// draws w = (−2.09, −1.15), of the tutorial's magnitude; seeds that draw |w| < σ give
    /// data whose principal axis is poorly determined by any method.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Number of data points N.
    #[arg(long, default_value_t = 5000)]
    num_points: usize,
    /// Data dimension.
    #[arg(long, default_value_t = 2)]
    data_dim: usize,
    /// Latent dimension.
    #[arg(long, default_value_t = 1)]
    latent_dim: usize,
    /// Observation standard deviation σ (known).
    #[arg(long, default_value_t = 0.5)]
    stddev: f64,
    /// Adam learning rate (both fits).
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// MAP steps.
    #[arg(long, default_value_t = 200)]
    map_steps: usize,
    /// VI steps.
    #[arg(long, default_value_t = 1000)]
    vi_steps: usize,
    /// Reparameterized samples per VI step.
    #[arg(long, default_value_t = 1)]
    vi_samples: usize,
    /// Record the ELBO every this many VI steps (and the energy every this many MAP steps).
    #[arg(long, default_value_t = 5)]
    record_every: usize,
    /// Output folder for metrics.json and the pictures.
    #[arg(long, default_value = "runs/ppca_vi")]
    out: PathBuf,
}

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// Angle in degrees between the directions of `a` and `b`, up to sign.
fn angle_deg(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    (dot.abs() / (na * nb)).min(1.0).acos().to_degrees()
}

/// `w wᵀ + σ² I` for a `[2, 1]` axis, as `[c11, c12, c22]`.
fn implied_cov(w: &[f64], s2: f64) -> [f64; 3] {
    [w[0] * w[0] + s2, w[0] * w[1], w[1] * w[1] + s2]
}

/// Relative Frobenius distance between two symmetric 2x2 matrices `[c11, c12, c22]`.
fn rel_dist(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let d = (a[0] - b[0]).powi(2) + 2.0 * (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2);
    let n = b[0].powi(2) + 2.0 * b[1].powi(2) + b[2].powi(2);
    (d / n).sqrt()
}

/// The result of the MAP fit.
struct MapFit {
    w: Tensor<2>,
    z: Tensor<2>,
    /// The energy `−ln p(w, z, x)` after each step.
    energy: Vec<f64>,
    /// Wall time of the fit.
    seconds: f64,
}

/// The result of the mean-field VI fit.
struct ViFit {
    /// Posterior mean of `w`.
    w: Tensor<2>,
    /// Posterior mean of `z`.
    z: Tensor<2>,
    /// Posterior standard deviations of `w`, flattened.
    w_sd: Vec<f64>,
    /// The ELBO after each step.
    elbo: Vec<f64>,
    /// Wall time of the fit, the surrogate's initialisation included.
    seconds: f64,
}

/// The principal axes compared, flattened, with `σ²` for the implied covariances.
struct Axes {
    truth: Vec<f64>,
    /// The closed-form maximum-likelihood axis.
    ml: [f64; 2],
    map: Vec<f64>,
    /// The posterior mean of the VI fit.
    vi: Vec<f64>,
    s2: f64,
}

impl Axes {
    /// The covariance implied by the axis `w`.
    fn cov(&self, w: &[f64]) -> [f64; 3] {
        implied_cov(w, self.s2)
    }

    /// Relative Frobenius distance of the covariance implied by `w` to the ML one.
    fn rel_to_ml(&self, w: &[f64]) -> f64 {
        rel_dist(&self.cov(w), &self.cov(&self.ml))
    }
}

/// Checks the arguments and that `--out` can be created and written to.
fn check_args(args: &Args) -> Result<(), String> {
    if args.data_dim != 2 || args.latent_dim != 1 {
        return Err(format!(
            "--data-dim {} --latent-dim {}: the axis comparison and the pictures are written for the tutorial's data_dim 2, latent_dim 1",
            args.data_dim, args.latent_dim
        ));
    }
    if args.num_points == 0 || args.stddev <= 0.0 || args.lr <= 0.0 || args.record_every == 0 {
        return Err("--num-points, --stddev, --lr and --record-every must be positive".into());
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create --out {}: {e}", args.out.display()))?;
    let probe = args.out.join(".write-test");
    std::fs::write(&probe, b"")
        .map_err(|e| format!("--out {} is not writable: {e}", args.out.display()))?;
    std::fs::remove_file(&probe).ok();
    Ok(())
}

/// Draws data from the model: returns the true axis `w` (`[data_dim, latent_dim]`) and the
/// observations `x = w z + ε` (`[data_dim, N]`).
fn draw_data(args: &Args, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let (d, k, n, sigma) = (args.data_dim, args.latent_dim, args.num_points, args.stddev);
    let w_true = Tensor::<2>::random([d, k], Init::Normal(0.0, 2.0), device);
    let z_true = Tensor::<2>::random([k, n], Init::Normal(0.0, 1.0), device);
    let x = w_true.clone().matmul(z_true.clone())
        + Tensor::<2>::random([d, n], Init::Normal(0.0, sigma), device);
    (w_true, x)
}

/// The model's log joint `ln p(w) + ln p(z) + ln p(x | w, z)` over the latents `w` and `z`.
fn ppca_model(x: &Tensor<2>, args: &Args) -> LogJoint<impl Fn(&Params) -> Tensor<1>> {
    let (d, k, n, sigma) = (args.data_dim, args.latent_dim, args.num_points, args.stddev);
    let x_ad = x.clone().autodiff();
    LogJoint::new(
        vec![("w", vec![d, k]), ("z", vec![k, n])],
        move |p: &Params| {
            let w: Tensor<2> = p.get("w");
            let z: Tensor<2> = p.get("z");
            let lw = Normal::new(w.zeros_like(), w.ones_like() * 2.0)
                .log_prob(w.clone())
                .sum();
            let lz = Normal::new(z.zeros_like(), z.ones_like())
                .log_prob(z.clone())
                .sum();
            let loc = w.matmul(z);
            let lx = Normal::new(loc.clone(), loc.ones_like() * sigma)
                .log_prob(x_ad.clone())
                .sum();
            lw + lz + lx
        },
    )
}

/// burn's Adam with TensorFlow's epsilon, as the tutorial's `tf.optimizers.Adam`.
fn adam() -> burn::optim::ModuleOptimizer {
    AdamConfig::new().with_epsilon(1e-8).init()
}

/// MAP, from w = z = 1 as in the tutorial; `ad` is the autodiff device.
fn fit_map_estimate(model: &impl Model, args: &Args, ad: &Device) -> MapFit {
    let (d, k, n) = (args.data_dim, args.latent_dim, args.num_points);
    let init = Params::new()
        .with("w", Tensor::<2>::ones([d, k], ad))
        .with("z", Tensor::<2>::ones([k, n], ad));
    let t0 = Instant::now();
    let init = PointEstimate::new(model, &init);
    let (map, energy) = fit_map(model, init, &mut adam(), args.lr, args.map_steps);
    let seconds = t0.elapsed().as_secs_f64();
    let map = map.valid().values();
    MapFit {
        w: map.get("w"),
        z: map.get("z"),
        energy,
        seconds,
    }
}

/// Mean-field VI: every mean initialised at 1 and every raw scale at −4, as in the tutorial;
/// `ad` is the autodiff device.
fn fit_vi(model: &impl Model, args: &Args, ad: &Device) -> ViFit {
    let t0 = Instant::now();
    let q0 = MeanFieldNormal::new(model, 1.0, -4.0, ad);
    let (q, elbo) = fit_surrogate(
        model,
        q0,
        &mut adam(),
        args.lr,
        args.vi_steps,
        args.vi_samples,
    );
    let seconds = t0.elapsed().as_secs_f64();
    let q = q.valid();
    ViFit {
        w: q.mean().get("w"),
        z: q.mean().get("z"),
        w_sd: vals(q.stddev().get::<2>("w")),
        elbo,
        seconds,
    }
}

/// Closed-form maximum-likelihood PPCA (Tipping & Bishop 1999) with σ known:
/// `W_ML = u₁ √(λ₁ − σ²)` from the sample covariance's leading eigenpair.
fn ml_axis(x: &Tensor<2>, n: usize, sigma: f64) -> [f64; 2] {
    let xv = vals(x.clone());
    let (xs, ys) = (&xv[..n], &xv[n..]);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let (mx, my) = (mean(xs), mean(ys));
    let c11 = xs.iter().map(|a| (a - mx).powi(2)).sum::<f64>() / n as f64;
    let c22 = ys.iter().map(|b| (b - my).powi(2)).sum::<f64>() / n as f64;
    let c12 = xs
        .iter()
        .zip(ys)
        .map(|(a, b)| (a - mx) * (b - my))
        .sum::<f64>()
        / n as f64;
    let tr = c11 + c22;
    let det = c11 * c22 - c12 * c12;
    let l1 = tr / 2.0 + (tr * tr / 4.0 - det).sqrt();
    let u1 = if c12.abs() > 1e-12 {
        [l1 - c22, c12]
    } else if c11 >= c22 {
        [1.0, 0.0]
    } else {
        [0.0, 1.0]
    };
    let nu = (u1[0] * u1[0] + u1[1] * u1[1]).sqrt();
    [
        u1[0] / nu * (l1 - sigma * sigma).max(0.0).sqrt(),
        u1[1] / nu * (l1 - sigma * sigma).max(0.0).sqrt(),
    ]
}

/// Criticism: data generated with the latents replaced by the fitted `w` and `z`, with fresh
/// observation noise drawn on `device`.
fn generate(w: &Tensor<2>, z: &Tensor<2>, args: &Args, device: &Device) -> Tensor<2> {
    let shape = [args.data_dim, args.num_points];
    w.clone()
        .without_autodiff()
        .matmul(z.clone().without_autodiff())
        + Tensor::<2>::random(shape, Init::Normal(0.0, args.stddev), device)
}

/// Writes `metrics.json` in `--out` (through a temporary file, renamed).
fn write_metrics(args: &Args, axes: &Axes, map: &MapFit, vi: &ViFit) -> Result<(), String> {
    let report = serde_json::json!({
        "seed": args.seed,
        "num_points": args.num_points,
        "stddev": args.stddev,
        "true_axis": axes.truth,
        "ml_axis": axes.ml,
        "map_axis": axes.map,
        "vi_axis_mean": axes.vi,
        "vi_axis_stddev": vi.w_sd,
        "angle_deg": {
            "map_vs_true": angle_deg(&axes.map, &axes.truth),
            "vi_vs_true": angle_deg(&axes.vi, &axes.truth),
            "ml_vs_true": angle_deg(&axes.ml, &axes.truth),
        },
        "implied_covariance": {
            "ml": axes.cov(&axes.ml),
            "true": axes.cov(&axes.truth),
            "map": axes.cov(&axes.map),
            "vi": axes.cov(&axes.vi),
            "rel_frobenius_vs_ml": {
                "true": axes.rel_to_ml(&axes.truth),
                "map": axes.rel_to_ml(&axes.map),
                "vi": axes.rel_to_ml(&axes.vi),
            },
        },
        "map": { "steps": args.map_steps, "final_energy": map.energy.last(), "seconds": map.seconds,
                 "energy_trace": map.energy.iter().step_by(args.record_every).collect::<Vec<_>>() },
        "vi": { "steps": args.vi_steps, "samples_per_step": args.vi_samples, "final_elbo": vi.elbo.last(), "seconds": vi.seconds,
                "elbo_trace": vi.elbo.iter().step_by(args.record_every).collect::<Vec<_>>() },
    });
    let metrics = args.out.join("metrics.json");
    let tmp = metrics.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(&report).expect("serializable"),
    )
    .and_then(|_| std::fs::rename(&tmp, &metrics))
    .map_err(|e| format!("cannot write {}: {e}", metrics.display()))
}

/// The columns of a `[2, n]` tensor as points.
fn points(t: &Tensor<2>, n: usize) -> Vec<(f64, f64)> {
    let v = vals(t.clone());
    (0..n).map(|i| (v[i], v[n + i])).collect()
}

/// `criticism.png`: the data (blue) against the data generated from the MAP fit (red, left)
/// and from the VI fit (green, right), on shared limits.
fn plot_criticism(
    x: &Tensor<2>,
    x_map: &Tensor<2>,
    x_vi: &Tensor<2>,
    args: &Args,
) -> Result<(), String> {
    let n = args.num_points;
    let (p_data, p_map, p_vi) = (points(x, n), points(x_map, n), points(x_vi, n));
    let all = p_data.iter().chain(&p_map).chain(&p_vi);
    let xlim = plot::limits(all.clone().map(|p| p.0));
    let ylim = plot::limits(all.map(|p| p.1));
    let panels = [
        ("MAP", "generated with the MAP w and z", &p_map, plot::RED),
        (
            "VI",
            "generated with the posterior means",
            &p_vi,
            plot::GREEN,
        ),
    ];
    plot::save_chart(&args.out.join("criticism.png"), (1500, 640), |root| {
        for (area, (fit, label, generated, colour)) in root.split_evenly((1, 2)).iter().zip(panels)
        {
            let caption = format!("Criticism of the {fit} fit: data and data it generates");
            let mut chart = plot::scatter_frame(area, (&caption, 22), (xlim, ylim), ("x₁", "x₂"))?;
            for (points, colour, label) in
                [(&p_data, plot::BLUE, "data"), (generated, colour, label)]
            {
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 1, colour.filled())))?
                    .label(label)
                    .legend(move |p| Circle::new(p, 5, colour.filled()));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .border_style(BLACK)
                .background_style(WHITE)
                .label_font((plot::FONT, 16))
                .draw()?;
        }
        Ok(())
    })
}

/// `traces.png`: the MAP energy (red) and the VI −ELBO (orange) per step, on a log scale (they
/// fall by orders of magnitude); values ≤ 0, which a log scale cannot show, are left out.
fn plot_traces(map: &MapFit, vi: &ViFit, args: &Args) -> Result<(), String> {
    let positive = |values: &mut dyn Iterator<Item = f64>| -> Vec<(f64, f64)> {
        values
            .enumerate()
            .map(|(i, v)| ((i + 1) as f64, v))
            .filter(|p| p.1 > 0.0 && p.1.is_finite())
            .collect()
    };
    let traces = [
        (
            "MAP: energy −ln p(x, w, z)",
            plot::RED,
            positive(&mut map.energy.iter().copied()),
        ),
        (
            "VI: −ELBO",
            plot::ORANGE,
            positive(&mut vi.elbo.iter().map(|v| -v)),
        ),
    ];
    let values = || traces.iter().flat_map(|t| t.2.iter().map(|p| p.1));
    let lo = values().fold(f64::INFINITY, f64::min);
    let hi = values().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo <= hi {
        (lo / 1.2, hi * 1.2)
    } else {
        (1.0, 10.0)
    };
    let steps = args.map_steps.max(args.vi_steps).max(1) as f64;
    plot::save_chart(&args.out.join("traces.png"), (1000, 600), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("PPCA: the objectives during the fits", (plot::FONT, 24))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(
                0.0..steps,
                (lo..hi)
                    .log_scale()
                    .with_key_points(plot::log_ticks(lo, hi, 12)),
            )?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("step")
            .y_desc("nats (log scale)")
            .x_label_formatter(&plot::tick)
            .y_label_formatter(&plot::tick)
            .label_style((plot::FONT, 16))
            .axis_desc_style((plot::FONT, 18))
            .draw()?;
        for (label, colour, points) in &traces {
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
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE)
            .label_font((plot::FONT, 16))
            .draw()?;
        Ok(())
    })
}

/// Prints the axes, their angles to the true axis, the fits' steps and times, and the implied
/// covariances' distances to the ML one.
fn print_comparison(args: &Args, axes: &Axes, map: &MapFit, vi: &ViFit) {
    let signed = |v: &[f64]| v.iter().map(|v| format!("{v:+.4}")).collect::<Vec<_>>();
    println!("true principal axis:        {:?}", signed(&axes.truth));
    println!("ML axis (closed form):      {:?}", signed(&axes.ml));
    println!(
        "MAP axis:                   {:?}   angle to true {:.3}°   ({} steps, {:.2} s)",
        signed(&axes.map),
        angle_deg(&axes.map, &axes.truth),
        args.map_steps,
        map.seconds
    );
    println!(
        "VI axis (mean ± sd):        {:?}   angle to true {:.3}°   ({} steps, {:.2} s)",
        axes.vi
            .iter()
            .zip(&vi.w_sd)
            .map(|(m, s)| format!("{m:+.4} ± {s:.4}"))
            .collect::<Vec<_>>(),
        angle_deg(&axes.vi, &axes.truth),
        args.vi_steps,
        vi.seconds
    );
    println!(
        "implied covariance w wᵀ + σ² I vs ML: relative distance MAP {:.3}, VI {:.3} (true w: {:.3})",
        axes.rel_to_ml(&axes.map),
        axes.rel_to_ml(&axes.vi),
        axes.rel_to_ml(&axes.truth)
    );
}

fn run(args: &Args) -> Result<(), String> {
    check_args(args)?;
    let device = args.device.device()?;
    println!("device: {}", args.device);
    device.seed(args.seed);
    let (w_true, x) = draw_data(args, &device);
    let model = ppca_model(&x, args);
    let ad = device.clone().autodiff();
    let map = fit_map_estimate(&model, args, &ad);
    let vi = fit_vi(&model, args, &ad);
    let axes = Axes {
        truth: vals(w_true),
        ml: ml_axis(&x, args.num_points, args.stddev),
        map: vals(map.w.clone()),
        vi: vals(vi.w.clone()),
        s2: args.stddev * args.stddev,
    };
    let x_map = generate(&map.w, &map.z, args, &device);
    let x_vi = generate(&vi.w, &vi.z, args, &device);

    write_metrics(args, &axes, &map, &vi)?;
    plot_criticism(&x, &x_map, &x_vi, args)?;
    plot_traces(&map, &vi, args)?;
    print_comparison(args, &axes, &map, &vi);
    println!(
        "wrote {}/metrics.json, criticism.png (blue: data; red: MAP; green: VI), traces.png (MAP energy, VI −ELBO)",
        args.out.display()
    );
    Ok(())
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}
