//! Variational inference of rates with Gamma and Beta factors, checked against the exact
//! conjugate posteriors: `burn_probability::inference::{MeanField, fit_surrogate}` on two
//! classic small data sets.
//!
//! ```sh
//! cargo run --release --example rates_vi          # writes target/rates_vi/posteriors.png
//! cargo run --release --example rates_vi -- --help
//! ```
//!
//! The data are published tables, written out below (no package on this machine ships them
//! as files):
//!
//! * **Pump failures** (Gaver and O'Muircheartaigh, *Technometrics* 29, 1987; the BUGS
//!   "Pumps" example): failures `xᵢ` of 10 power-plant pumps in `tᵢ` thousand hours of
//!   operation. Model: failure rate `λᵢ ~ Gamma(1, 1)` per thousand hours,
//!   `xᵢ ~ Poisson(λᵢ tᵢ)`; exact posterior `Gamma(1 + xᵢ, 1 + tᵢ)`.
//! * **Batting averages** (Efron and Morris, *JASA* 70, 1975): hits `rⱼ` of 18 major-league
//!   players in their first 45 at-bats of 1970. Model: batting average
//!   `θⱼ ~ Beta(52, 148)` (a prior of mean .260 and sd .031, the spread of regular players'
//!   averages, not fitted to these data), `rⱼ ~ Binomial(45, θⱼ)`; exact posterior
//!   `Beta(52 + rⱼ, 148 + 45 − rⱼ)`. The players' averages over the rest of the season are
//!   printed beside the posterior means, as in Efron and Morris.
//!
//! One log-joint holds both models; the surrogate gives the 10 rates a Gamma factor (or,
//! with `--rate-factor lognormal`, a LogNormal one) and the 18 averages a Beta factor, and
//! [`fit_surrogate`] maximizes the ELBO with reparameterized draws (the Gamma and Beta
//! factors through their implicit reparameterization gradients) in three phases of falling
//! learning rate. The program prints, per group, the fitted mean ± sd beside the exact one,
//! and draws each group's fitted density (orange) over the exact one (blue): the 10 pumps on
//! the top rows, the 18 players below, each panel over the exact mean ± 4.5 sd.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::AdamConfig;
use burn::tensor::{Device, Tensor};
use burn_probability::inference::{
    Factor, FactorDistribution, LogJoint, MeanField, Params, fit_surrogate,
};
use burn_probability::{Beta, Binomial, Distribution, Gamma, LogNormal, Poisson};
use burn_probability_examples::device::DeviceChoice;
use burn_probability_examples::plot::{self, Mark};
use clap::{Parser, ValueEnum};
use plotters::prelude::{ChartBuilder, Color, LineSeries};

/// Failures of the 10 pumps (Gaver and O'Muircheartaigh, 1987).
const PUMP_FAILURES: [f64; 10] = [5.0, 1.0, 5.0, 14.0, 3.0, 19.0, 1.0, 1.0, 4.0, 22.0];
/// Their operating times, in thousands of hours.
const PUMP_HOURS: [f64; 10] = [94.3, 15.7, 62.9, 126.0, 5.24, 31.4, 1.05, 1.05, 2.1, 10.5];
/// The rate prior `Gamma(concentration, rate)`.
const RATE_PRIOR: (f64, f64) = (1.0, 1.0);

/// The 18 players of Efron and Morris (1975): name, hits in the first 45 at-bats, and the
/// batting average over the rest of the 1970 season.
const PLAYERS: [(&str, f64, f64); 18] = [
    ("Clemente", 18.0, 0.346),
    ("F. Robinson", 17.0, 0.298),
    ("F. Howard", 16.0, 0.276),
    ("Johnstone", 15.0, 0.222),
    ("Berry", 14.0, 0.273),
    ("Spencer", 14.0, 0.270),
    ("Kessinger", 13.0, 0.263),
    ("L. Alvarado", 12.0, 0.210),
    ("Santo", 11.0, 0.269),
    ("Swoboda", 11.0, 0.230),
    ("Unser", 10.0, 0.264),
    ("Williams", 10.0, 0.256),
    ("Scott", 10.0, 0.303),
    ("Petrocelli", 10.0, 0.264),
    ("E. Rodriguez", 10.0, 0.226),
    ("Campaneris", 9.0, 0.285),
    ("Munson", 8.0, 0.316),
    ("Alvis", 7.0, 0.200),
];
/// At-bats behind each player's hits.
const AT_BATS: f64 = 45.0;
/// The batting-average prior `Beta(concentration1, concentration0)`.
const AVERAGE_PRIOR: (f64, f64) = (52.0, 148.0);

/// The surrogate family of the pump failure rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum RateFactor {
    /// The conjugate family: the fit can be exact.
    Gamma,
    /// Not the posterior's family: the fit is the closest LogNormal in KL(q ‖ p).
    Lognormal,
}

/// VI with Gamma and Beta factors on pump failure rates and batting averages, against the
/// exact conjugate posteriors.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The device: flex (default), ndarray, wgpu, wgpu:N, cuda or cuda:N (the GPU ones need
    /// the examples' cargo feature of that name).
    #[arg(long, default_value = "flex")]
    device: DeviceChoice,
    /// Random seed (the reparameterized draws).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Adam steps in each of the three phases (learning rates lr, lr/5, lr/25).
    #[arg(long, default_value_t = 400)]
    steps: usize,
    /// Reparameterized draws per step.
    #[arg(long, default_value_t = 8)]
    samples: usize,
    /// The first phase's Adam learning rate.
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// The surrogate family of the failure rates.
    #[arg(long, value_enum, default_value_t = RateFactor::Gamma)]
    rate_factor: RateFactor,
    /// Where to write the picture of the fitted and exact posterior densities (PNG).
    #[arg(long, default_value = "target/rates_vi/posteriors.png")]
    out: PathBuf,
}

/// Checks the numeric arguments and that the folder of `--out` can be created.
fn check_args(args: &Args) -> Result<(), String> {
    if args.steps == 0 {
        return Err("--steps must be at least 1, got 0".into());
    }
    if args.samples == 0 {
        return Err("--samples must be at least 1, got 0".into());
    }
    if !(args.lr.is_finite() && args.lr > 0.0) {
        return Err(format!("--lr must be positive, got {}", args.lr));
    }
    if args.out.is_dir() {
        return Err(format!(
            "--out {} is a folder: give the path of the PNG file to write",
            args.out.display()
        ));
    }
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the folder of --out {}: {e}",
                args.out.display()
            )
        })?;
    }
    Ok(())
}

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

fn tensor(values: &[f64], device: &Device) -> Tensor<1> {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    Tensor::<1>::from_floats(v.as_slice(), device)
}

/// The exact posterior of one group: the family's two parameters.
#[derive(Clone, Copy)]
enum Exact {
    Gamma(f64, f64),
    Beta(f64, f64),
}

impl Exact {
    fn mean(self) -> f64 {
        match self {
            Exact::Gamma(a, b) => a / b,
            Exact::Beta(a, b) => a / (a + b),
        }
    }
    fn sd(self) -> f64 {
        match self {
            Exact::Gamma(a, b) => a.sqrt() / b,
            Exact::Beta(a, b) => (a * b / ((a + b).powi(2) * (a + b + 1.0))).sqrt(),
        }
    }
    /// The support's bounds.
    fn support(self) -> (f64, f64) {
        match self {
            Exact::Gamma(..) => (0.0, f64::INFINITY),
            Exact::Beta(..) => (0.0, 1.0),
        }
    }
    fn log_density(self, x: Tensor<1>) -> Tensor<1> {
        let ones = x.ones_like();
        match self {
            Exact::Gamma(a, b) => Gamma::new(ones * a, b).log_prob(x),
            Exact::Beta(a, b) => Beta::new(ones * a, b).log_prob(x),
        }
    }
}

/// The log-density of element `i` of a fitted factor at the points `x`.
fn factor_log_density(d: &FactorDistribution, i: usize, x: Tensor<1>) -> Tensor<1> {
    let [n] = x.dims();
    let pick = |t: &Tensor<1>| t.clone().narrow(0, i, 1).expand([n]);
    match d {
        FactorDistribution::Gamma(g) => {
            Gamma::new(pick(g.concentration()), pick(g.rate())).log_prob(x)
        }
        FactorDistribution::Beta(b) => {
            Beta::new(pick(b.concentration1()), pick(b.concentration0())).log_prob(x)
        }
        FactorDistribution::LogNormal(l) => {
            LogNormal::new(pick(l.loc()), pick(l.scale())).log_prob(x)
        }
        FactorDistribution::Normal(_) => unreachable!("the example uses no Normal factor"),
    }
}

/// One group's summary.
struct Group {
    label: String,
    exact: Exact,
    vi_mean: f64,
    vi_sd: f64,
}

/// The log-joint of both models, the fitted surrogate and the ELBO trace.
fn fit(args: &Args, device: &Device) -> (MeanField, Vec<f64>) {
    let failures = tensor(&PUMP_FAILURES, device);
    let hours = tensor(&PUMP_HOURS, device);
    let hits: Vec<f64> = PLAYERS.iter().map(|p| p.1).collect();
    let hits = tensor(&hits, device);
    let model = LogJoint::new(
        vec![
            ("failure_rate", vec![PUMP_FAILURES.len()]),
            ("batting_average", vec![PLAYERS.len()]),
        ],
        move |p: &Params| {
            let rate: Tensor<1> = p.get("failure_rate");
            let avg: Tensor<1> = p.get("batting_average");
            let rate_prior = Gamma::new(rate.ones_like() * RATE_PRIOR.0, RATE_PRIOR.1)
                .log_prob(rate.clone())
                .sum();
            let failures = Poisson::new(rate * hours.clone())
                .log_prob(failures.clone())
                .sum();
            let avg_prior = Beta::new(avg.ones_like() * AVERAGE_PRIOR.0, AVERAGE_PRIOR.1)
                .log_prob(avg.clone())
                .sum();
            let hits = Binomial::from_probs(AT_BATS, avg)
                .log_prob(hits.clone())
                .sum();
            rate_prior + failures + avg_prior + hits
        },
    );
    let rate_factor = match args.rate_factor {
        RateFactor::Gamma => Factor::Gamma,
        RateFactor::Lognormal => Factor::LogNormal,
    };
    let mut q = MeanField::new(&model, device)
        .with_factor("failure_rate", rate_factor)
        .with_factor("batting_average", Factor::Beta);
    let mut trace = Vec::new();
    for lr in [args.lr, args.lr / 5.0, args.lr / 25.0] {
        // burn's Adam with PyTorch's epsilon, fresh for each phase.
        let mut adam = AdamConfig::new().with_epsilon(1e-8).init();
        let (fitted, t) = fit_surrogate(&model, q, &mut adam, lr, args.steps, args.samples);
        q = fitted;
        trace.extend(t);
    }
    (q.valid(), trace)
}

/// Each group's exact posterior and fitted moments.
fn summarize(q: &MeanField) -> Vec<Group> {
    let (mean, sd) = (q.mean(), q.stddev());
    let rate_mean = vals(mean.get::<1>("failure_rate"));
    let rate_sd = vals(sd.get::<1>("failure_rate"));
    let avg_mean = vals(mean.get::<1>("batting_average"));
    let avg_sd = vals(sd.get::<1>("batting_average"));
    let mut groups = Vec::new();
    for i in 0..PUMP_FAILURES.len() {
        groups.push(Group {
            label: format!(
                "pump {:>2} ({:>2} in {:>5} kh)",
                i + 1,
                PUMP_FAILURES[i],
                PUMP_HOURS[i]
            ),
            exact: Exact::Gamma(
                RATE_PRIOR.0 + PUMP_FAILURES[i],
                RATE_PRIOR.1 + PUMP_HOURS[i],
            ),
            vi_mean: rate_mean[i],
            vi_sd: rate_sd[i],
        });
    }
    for (j, (name, hits, _)) in PLAYERS.iter().enumerate() {
        groups.push(Group {
            label: format!("{name:<12} ({hits:>2}/45)"),
            exact: Exact::Beta(AVERAGE_PRIOR.0 + hits, AVERAGE_PRIOR.1 + AT_BATS - hits),
            vi_mean: avg_mean[j],
            vi_sd: avg_sd[j],
        });
    }
    groups
}

/// Small multiples, written to `path`: each group's fitted (orange) and exact (blue) densities
/// over the exact mean ± 4.5 sd, the pumps on the first rows, the players from a fresh row on,
/// and the legend in the first free panel after the pumps.
fn draw(q: &MeanField, groups: &[Group], device: &Device, path: &Path) -> Result<(), String> {
    const COLS: usize = 7;
    const POINTS: usize = 200;
    let pumps = PUMP_FAILURES.len();
    let rows = pumps.div_ceil(COLS) + (groups.len() - pumps).div_ceil(COLS);
    let factors = [
        q.distribution("failure_rate"),
        q.distribution("batting_average"),
    ];
    // Per group: its panel, caption, family, x range, and exact and fitted densities.
    let mut curves = Vec::new();
    for (k, g) in groups.iter().enumerate() {
        let slot = if k < pumps {
            k
        } else {
            pumps.div_ceil(COLS) * COLS + k - pumps
        };
        let (lo, hi) = g.exact.support();
        let (m, s) = (g.exact.mean(), g.exact.sd());
        let (x0, x1) = ((m - 4.5 * s).max(lo), (m + 4.5 * s).min(hi));
        let xs: Vec<f64> = (0..POINTS)
            .map(|i| x0 + (x1 - x0) * i as f64 / (POINTS - 1) as f64)
            .collect();
        let grid = tensor(&xs, device);
        // A density at the edge of the support may be 0, ∞ or NaN (0·ln 0): drawn as 0.
        let density = |log_p: Tensor<1>| -> Vec<(f64, f64)> {
            xs.iter()
                .zip(vals(log_p))
                .map(|(&x, l)| (x, if l.is_finite() { l.exp() } else { 0.0 }))
                .collect()
        };
        let exact = density(g.exact.log_density(grid.clone()));
        let (factor, i) = if k < pumps {
            (&factors[0], k)
        } else {
            (&factors[1], k - pumps)
        };
        let fitted = density(factor_log_density(factor, i, grid));
        let caption = if k < pumps {
            let failures = PUMP_FAILURES[k];
            let noun = if failures == 1.0 {
                "failure"
            } else {
                "failures"
            };
            format!("pump {}: {failures} {noun} in {} kh", k + 1, PUMP_HOURS[k])
        } else {
            let (name, hits, _) = PLAYERS[k - pumps];
            format!("{name}: {hits}/{AT_BATS} hits")
        };
        curves.push((slot, caption, g.exact, (x0, x1), exact, fitted));
    }
    plot::save_chart(path, (COLS as u32 * 250, rows as u32 * 210 + 50), |root| {
        let root = root.titled(
            "Posterior densities: exact (conjugate) and mean-field VI",
            (plot::FONT, 26),
        )?;
        let panels = root.split_evenly((rows, COLS));
        for (slot, caption, family, (x0, x1), exact, fitted) in &curves {
            let top = exact.iter().chain(fitted).map(|p| p.1).fold(0.0, f64::max) * 1.08;
            let col = slot % COLS;
            let mut chart = ChartBuilder::on(&panels[*slot])
                .caption(caption, (plot::FONT, 15))
                .margin(6)
                .x_label_area_size(38)
                .y_label_area_size(if col == 0 { 52 } else { 36 })
                .build_cartesian_2d(*x0..*x1, 0.0..top)?;
            let x_desc = match family {
                Exact::Gamma(..) => "failures per 1000 h",
                Exact::Beta(..) => "batting average",
            };
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(4)
                .y_labels(3)
                .x_label_formatter(&plot::tick)
                .y_label_formatter(&plot::tick)
                .x_desc(x_desc)
                .y_desc(if col == 0 { "density" } else { "" })
                .label_style((plot::FONT, 12))
                .axis_desc_style((plot::FONT, 13))
                .draw()?;
            for (points, colour) in [(exact, plot::BLUE), (fitted, plot::ORANGE)] {
                chart.draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))?;
            }
        }
        plot::legend(
            &panels[pumps].margin(30, 0, 20, 0),
            "posterior density",
            &[
                ("exact (conjugate)", plot::BLUE),
                ("mean-field VI", plot::ORANGE),
            ],
            Mark::Line,
        )
    })
}

fn run(args: &Args) -> Result<(), String> {
    check_args(args)?;
    let plain = args.device.device()?;
    println!("device: {}", args.device);
    let device = plain.clone().autodiff();
    device.seed(args.seed);
    let start = Instant::now();
    let (q, trace) = fit(args, &device);
    let fit_seconds = start.elapsed().as_secs_f64();
    let groups = summarize(&q);

    let rate_family = match args.rate_factor {
        RateFactor::Gamma => "Gamma",
        RateFactor::Lognormal => "LogNormal",
    };
    println!(
        "rates_vi: mean-field VI ({rate_family} factors for the 10 pump failure rates, Beta \
         factors for the 18 batting averages), {} steps x 3 phases, {} draws per step, seed {}",
        args.steps, args.samples, args.seed
    );
    let window = trace.len().min(100);
    let elbo_end = trace[trace.len() - window..].iter().sum::<f64>() / window as f64;
    println!(
        "ELBO {:.2} (first step) -> {elbo_end:.2} (mean of the last {window}); fit {fit_seconds:.2} s",
        trace[0]
    );
    let mut worst = [(0.0f64, 0.0f64); 2];
    for (k, g) in groups.iter().enumerate() {
        if k == 0 {
            println!(
                "\nfailures per thousand hours, prior Gamma{RATE_PRIOR:?}      VI mean ± sd          exact mean ± sd     rel. err mean / sd"
            );
        } else if k == PUMP_FAILURES.len() {
            println!(
                "\nbatting average, prior Beta{AVERAGE_PRIOR:?}     VI mean ± sd          exact mean ± sd     rel. err mean / sd   rest of season"
            );
        }
        let (em, es) = (g.exact.mean(), g.exact.sd());
        let (rm, rs) = (g.vi_mean / em - 1.0, g.vi_sd / es - 1.0);
        let w = &mut worst[usize::from(k >= PUMP_FAILURES.len())];
        *w = (w.0.max(rm.abs()), w.1.max(rs.abs()));
        let rest = if k >= PUMP_FAILURES.len() {
            format!("   {:.3}", PLAYERS[k - PUMP_FAILURES.len()].2)
        } else {
            String::new()
        };
        println!(
            "  {:<36} {:>8.4} ± {:<8.4}   {:>8.4} ± {:<8.4}   {:>+6.2}% / {:>+6.2}%{rest}",
            g.label,
            g.vi_mean,
            g.vi_sd,
            em,
            es,
            100.0 * rm,
            100.0 * rs
        );
    }
    // Efron and Morris's comparison: squared error against the rest of the season.
    let raw: f64 = PLAYERS
        .iter()
        .map(|(_, h, rest)| (h / AT_BATS - rest).powi(2))
        .sum();
    let shrunk: f64 = groups[PUMP_FAILURES.len()..]
        .iter()
        .zip(&PLAYERS)
        .map(|(g, (_, _, rest))| (g.vi_mean - rest).powi(2))
        .sum();
    println!(
        "\nlargest relative error, mean / sd: rates {:.2}% / {:.2}%, averages {:.2}% / {:.2}%",
        100.0 * worst[0].0,
        100.0 * worst[0].1,
        100.0 * worst[1].0,
        100.0 * worst[1].1
    );
    println!(
        "rest-of-season squared error summed over the players: first-45 averages {raw:.4}, VI posterior means {shrunk:.4}"
    );
    draw(&q, &groups, &plain, &args.out)?;
    println!(
        "wrote {} (blue: exact posterior density, orange: VI; pumps on top, players below)",
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
