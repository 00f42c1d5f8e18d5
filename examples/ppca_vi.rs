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

#[path = "common/plot.rs"]
mod plot;

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::{Device, Distribution as Init, Tensor};
use burn_probability::inference::{
    AdamConfig, LogJoint, MeanFieldNormal, Params, fit_map, fit_mean_field,
};
use burn_probability::{Distribution, Normal};
use clap::Parser;
use plot::{BLUE, GREEN, Image, ORANGE, Panel, RED};

/// Probabilistic PCA by MAP and mean-field VI (the Edward2/TFP tutorial).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
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

fn run(args: &Args) -> Result<(), String> {
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

    let device = Device::flex();
    device.seed(args.seed);
    let (d, k, n, sigma) = (args.data_dim, args.latent_dim, args.num_points, args.stddev);

    // Data from the model.
    let w_true = Tensor::<2>::random([d, k], Init::Normal(0.0, 2.0), &device);
    let z_true = Tensor::<2>::random([k, n], Init::Normal(0.0, 1.0), &device);
    let x = w_true.clone().matmul(z_true.clone())
        + Tensor::<2>::random([d, n], Init::Normal(0.0, sigma), &device);

    // The model's log joint.
    let x_ad = x.clone().autodiff();
    let model = LogJoint::new(
        vec![("w", vec![d, k]), ("z", vec![k, n])],
        move |p: &Params| {
            let w: Tensor<2> = p.get("w");
            let z: Tensor<2> = p.get("z");
            let lw = Normal::new(w.zeros_like(), w.ones_like() * 2.0)
                .unwrap()
                .log_prob(w.clone())
                .sum();
            let lz = Normal::new(z.zeros_like(), z.ones_like())
                .unwrap()
                .log_prob(z.clone())
                .sum();
            let loc = w.matmul(z);
            let lx = Normal::new(loc.clone(), loc.ones_like() * sigma)
                .unwrap()
                .log_prob(x_ad.clone())
                .sum();
            lw + lz + lx
        },
    );

    // MAP, from w = z = 1 as in the tutorial.
    let ad = device.clone().autodiff();
    let init = Params::new()
        .with("w", Tensor::<2>::ones([d, k], &ad))
        .with("z", Tensor::<2>::ones([k, n], &ad));
    let t0 = Instant::now();
    let (map, energy) = fit_map(&model, &init, AdamConfig::new(args.lr), args.map_steps);
    let map_seconds = t0.elapsed().as_secs_f64();

    // Mean-field VI.
    let t0 = Instant::now();
    let q0 = MeanFieldNormal::new(&model, 1.0, -4.0, &ad);
    let (q, elbo) = fit_mean_field(
        &model,
        q0,
        AdamConfig::new(args.lr),
        args.vi_steps,
        args.vi_samples,
    );
    let vi_seconds = t0.elapsed().as_secs_f64();

    let w_true_v = vals(w_true.clone());
    let w_map: Tensor<2> = map.get("w");
    let z_map: Tensor<2> = map.get("z");
    let w_vi: Tensor<2> = q.mean().get("w");
    let z_vi: Tensor<2> = q.mean().get("z");
    let w_vi_sd = vals(q.stddev().get::<2>("w"));
    let (w_map_v, w_vi_v) = (vals(w_map.clone()), vals(w_vi.clone()));

    // Closed-form maximum-likelihood PPCA (Tipping & Bishop 1999) with σ known:
    // W_ML = u₁ √(λ₁ − σ²) from the sample covariance's leading eigenpair.
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
    let w_ml = [
        u1[0] / nu * (l1 - sigma * sigma).max(0.0).sqrt(),
        u1[1] / nu * (l1 - sigma * sigma).max(0.0).sqrt(),
    ];
    let s2 = sigma * sigma;
    let cov_ml = implied_cov(&w_ml, s2);

    // Criticism: data generated with the latents replaced by the MAP values and posterior means.
    let noise = |dev: &Device| Tensor::<2>::random([d, n], Init::Normal(0.0, sigma), dev);
    let x_map = w_map
        .clone()
        .without_autodiff()
        .matmul(z_map.without_autodiff())
        + noise(&device);
    let x_vi = w_vi
        .clone()
        .without_autodiff()
        .matmul(z_vi.without_autodiff())
        + noise(&device);

    let report = serde_json::json!({
        "seed": args.seed,
        "num_points": n,
        "stddev": sigma,
        "true_axis": w_true_v,
        "ml_axis": w_ml,
        "map_axis": w_map_v,
        "vi_axis_mean": w_vi_v,
        "vi_axis_stddev": w_vi_sd,
        "angle_deg": {
            "map_vs_true": angle_deg(&w_map_v, &w_true_v),
            "vi_vs_true": angle_deg(&w_vi_v, &w_true_v),
            "ml_vs_true": angle_deg(&w_ml, &w_true_v),
        },
        "implied_covariance": {
            "ml": cov_ml,
            "true": implied_cov(&w_true_v, s2),
            "map": implied_cov(&w_map_v, s2),
            "vi": implied_cov(&w_vi_v, s2),
            "rel_frobenius_vs_ml": {
                "true": rel_dist(&implied_cov(&w_true_v, s2), &cov_ml),
                "map": rel_dist(&implied_cov(&w_map_v, s2), &cov_ml),
                "vi": rel_dist(&implied_cov(&w_vi_v, s2), &cov_ml),
            },
        },
        "map": { "steps": args.map_steps, "final_energy": energy.last(), "seconds": map_seconds,
                 "energy_trace": energy.iter().step_by(args.record_every).collect::<Vec<_>>() },
        "vi": { "steps": args.vi_steps, "samples_per_step": args.vi_samples, "final_elbo": elbo.last(), "seconds": vi_seconds,
                "elbo_trace": elbo.iter().step_by(args.record_every).collect::<Vec<_>>() },
    });
    let metrics = args.out.join("metrics.json");
    let tmp = metrics.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(&report).expect("serializable"),
    )
    .and_then(|_| std::fs::rename(&tmp, &metrics))
    .map_err(|e| format!("cannot write {}: {e}", metrics.display()))?;

    // Pictures: data vs generated data, and the training traces.
    let pts = |t: &Tensor<2>| {
        let v = vals(t.clone());
        (0..n).map(|i| (v[i], v[n + i])).collect::<Vec<_>>()
    };
    let (p_data, p_map, p_vi) = (pts(&x), pts(&x_map), pts(&x_vi));
    let all = p_data.iter().chain(&p_map).chain(&p_vi);
    let xlim = Panel::limits(all.clone().map(|p| p.0));
    let ylim = Panel::limits(all.map(|p| p.1));
    let mut img = Image::new(1500, 540);
    for (i, (pts_gen, color)) in [(&p_map, RED), (&p_vi, GREEN)].iter().enumerate() {
        let panel = Panel::new(80 + i * 740, 30, 640, 460, xlim, ylim);
        panel.axes(&mut img);
        panel.scatter(&mut img, &p_data, BLUE, 1);
        panel.scatter(&mut img, pts_gen, *color, 1);
    }
    img.save(&args.out.join("criticism.png"))?;

    let mut img = Image::new(1500, 540);
    let e: Vec<(f64, f64)> = energy
        .iter()
        .enumerate()
        .map(|(i, v)| (i as f64, *v))
        .collect();
    let l: Vec<(f64, f64)> = elbo
        .iter()
        .enumerate()
        .map(|(i, v)| (i as f64, -*v))
        .collect();
    for (i, series) in [&e, &l].iter().enumerate() {
        // Log scale for the loss: it falls by orders of magnitude.
        let logged: Vec<(f64, f64)> = series
            .iter()
            .map(|(x, y)| (*x, y.max(1e-9).log10()))
            .collect();
        let panel = Panel::new(
            80 + i * 740,
            30,
            640,
            460,
            Panel::limits(logged.iter().map(|p| p.0)),
            Panel::limits(logged.iter().map(|p| p.1)),
        );
        panel.axes(&mut img);
        panel.line(&mut img, &logged, if i == 0 { RED } else { ORANGE });
    }
    img.save(&args.out.join("traces.png"))?;

    println!(
        "true principal axis:        {:?}",
        w_true_v
            .iter()
            .map(|v| format!("{v:+.4}"))
            .collect::<Vec<_>>()
    );
    println!(
        "ML axis (closed form):      {:?}",
        w_ml.iter().map(|v| format!("{v:+.4}")).collect::<Vec<_>>()
    );
    println!(
        "MAP axis:                   {:?}   angle to true {:.3}°   ({} steps, {:.2} s)",
        w_map_v
            .iter()
            .map(|v| format!("{v:+.4}"))
            .collect::<Vec<_>>(),
        angle_deg(&w_map_v, &w_true_v),
        args.map_steps,
        map_seconds
    );
    println!(
        "VI axis (mean ± sd):        {:?}   angle to true {:.3}°   ({} steps, {:.2} s)",
        w_vi_v
            .iter()
            .zip(&w_vi_sd)
            .map(|(m, s)| format!("{m:+.4} ± {s:.4}"))
            .collect::<Vec<_>>(),
        angle_deg(&w_vi_v, &w_true_v),
        args.vi_steps,
        vi_seconds
    );
    println!(
        "implied covariance w wᵀ + σ² I vs ML: relative distance MAP {:.3}, VI {:.3} (true w: {:.3})",
        rel_dist(&implied_cov(&w_map_v, s2), &cov_ml),
        rel_dist(&implied_cov(&w_vi_v, s2), &cov_ml),
        rel_dist(&implied_cov(&w_true_v, s2), &cov_ml)
    );
    println!(
        "wrote {}/metrics.json, criticism.png (blue: data; red: MAP; green: VI), traces.png (log10 energy, log10 −ELBO)",
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
