//! Gradient variance and signal-to-noise ratio of the standard, STL and DReG estimators,
//! on a conjugate Gaussian model (exact posterior known) and on a small MNIST VAE.
//!
//! ```sh
//! cargo run --release --example gradient_variance                  # conjugate model only
//! MNIST_DIR=../shared/data/mnist cargo run --release --example gradient_variance
//! cargo run --release --example gradient_variance -- --device ndarray
//! ```
//!
//! The SNR of a gradient coordinate is `|E[g]| / sd(g)` over independent noise draws (Rainforth
//! et al. 2018, Tucker et al. 2019); higher is better.

use std::path::PathBuf;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use burn_flex_kernels::optim::FusedAdam;
use burn_probability::math::softplus;
use burn_probability::objectives::{Bound, Elbo, GradientEstimator, Iwae};
use burn_probability::{Bernoulli, Independent, MultivariateNormalDiag, Normal};
use burn_probability_examples::device::DeviceChoice;
use burn_probability_examples::mnist::{Binarization, Mnist, Split};
use clap::Parser;

const S: f64 = 0.5;

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// Mean, variance and SNR of a set of draws.
fn stats(xs: &[f64]) -> (f64, f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, v, m.abs() / v.sqrt())
}

#[derive(Clone, Copy)]
enum Objective {
    Elbo(GradientEstimator),
    Iwae(usize, GradientEstimator),
}

impl Objective {
    fn name(&self) -> String {
        match self {
            Objective::Elbo(e) => format!("ELBO k=1, {e:?}"),
            Objective::Iwae(k, e) => format!("IWAE k={k}, {e:?}"),
        }
    }
    fn bound<Q, P, X, F>(&self, q: &Q, p: &P, lik: F, x: Tensor<2>) -> Bound
    where
        Q: burn_probability::Rsample<2, Batch = Tensor<1>>,
        P: burn_probability::Distribution<2, Batch = Tensor<1>>,
        X: burn_probability::Distribution<2, Batch = Tensor<1>>,
        F: Fn(Tensor<2>) -> X,
    {
        match *self {
            Objective::Elbo(e) => Elbo::new().estimator(e).monte_carlo_kl(q, p, lik, x),
            Objective::Iwae(k, e) => Iwae::new(k).estimator(e).compute(q, p, lik, x),
        }
    }
}

const OBJECTIVES: [Objective; 5] = [
    Objective::Elbo(GradientEstimator::Reparameterized),
    Objective::Elbo(GradientEstimator::Stl),
    Objective::Iwae(8, GradientEstimator::Reparameterized),
    Objective::Iwae(8, GradientEstimator::Stl),
    Objective::Iwae(8, GradientEstimator::Dreg),
];

/// z ~ N(0, 1), x | z ~ N(z, s²), x = 1.2: per-replicate gradients w.r.t. q's loc and log-scale.
fn conjugate(device: &Device) {
    let b = 20_000;
    let post_loc = 1.2 / (1.0 + S * S);
    let post_scale = S / (1.0 + S * S).sqrt();
    println!(
        "## Conjugate model: z ~ N(0, 1), x | z ~ N(z, 0.5²), x = 1.2, {b} independent draws\n"
    );
    for (label, loc_v, scale_v) in [
        (
            "poor q (loc − 0.5, scale × 1.6)",
            post_loc - 0.5,
            post_scale * 1.6,
        ),
        (
            "near the optimum (loc + 0.05, scale × 1.05)",
            post_loc + 0.05,
            post_scale * 1.05,
        ),
    ] {
        println!("### {label}\n");
        println!("| objective | d/dloc mean | var | SNR | d/dlog-scale mean | var | SNR |");
        println!("|---|---|---|---|---|---|---|");
        for objective in OBJECTIVES {
            let x = Tensor::<2>::ones([b, 1], device) * 1.2;
            let loc = (x.zeros_like() + loc_v)
                .without_autodiff()
                .autodiff()
                .require_grad();
            let log_scale = (x.zeros_like() + scale_v.ln())
                .without_autodiff()
                .autodiff()
                .require_grad();
            let q = MultivariateNormalDiag::<2>::new(loc.clone(), log_scale.clone().exp());
            let prior = MultivariateNormalDiag::<2>::standard([1, 1], device);
            let lik = |z: Tensor<2>| {
                Independent::<_, 1>::new(Normal::new(z.clone(), z.ones_like() * S), 1)
            };
            let bound = objective.bound(&q, &prior, lik, x);
            let grads = (bound.loss * b as f64).backward();
            let (ml, vl, sl) = stats(&vals(loc.grad(&grads).unwrap()));
            let (ms, vs, ss) = stats(&vals(log_scale.grad(&grads).unwrap()));
            println!(
                "| {} | {ml:+.4} | {vl:.3e} | {sl:.2} | {ms:+.4} | {vs:.3e} | {ss:.2} |",
                objective.name()
            );
        }
        println!();
    }
}

/// A small MLP VAE: 784-200-(2×10) encoder, 10-200-784 decoder, tanh.
#[derive(Module, Debug)]
struct Vae {
    enc1: Linear,
    enc2: Linear,
    dec1: Linear,
    dec2: Linear,
}

const LATENT: usize = 10;

impl Vae {
    fn new(device: &Device) -> Self {
        Self {
            enc1: LinearConfig::new(784, 200).init(device),
            enc2: LinearConfig::new(200, 2 * LATENT).init(device),
            dec1: LinearConfig::new(LATENT, 200).init(device),
            dec2: LinearConfig::new(200, 784).init(device),
        }
    }
    fn posterior(&self, x: Tensor<2>) -> MultivariateNormalDiag<2> {
        let h = self.enc2.forward(self.enc1.forward(x).tanh());
        let [b, _] = h.dims();
        let loc = h.clone().slice([0..b, 0..LATENT]);
        let scale = softplus(h.slice([0..b, LATENT..2 * LATENT])) + 1e-3;
        MultivariateNormalDiag::new(loc, scale)
    }
    fn likelihood(&self, z: Tensor<2>) -> Independent<Bernoulli<2>, 1> {
        let logits = self.dec2.forward(self.dec1.forward(z).tanh());
        Independent::new(Bernoulli::new(logits), 1)
    }
    fn encoder_grads(&self, grads: &burn::tensor::Gradients) -> Vec<f64> {
        let mut out = vals(self.enc1.weight.val().grad(grads).unwrap());
        out.extend(vals(self.enc2.weight.val().grad(grads).unwrap()));
        out
    }
}

fn vae(device: &Device, dir: PathBuf) {
    let mnist = match Mnist::load(&dir) {
        Ok(m) => m,
        Err(e) => {
            println!("## Small VAE: skipped ({e})");
            return;
        }
    };
    let prior = MultivariateNormalDiag::<2>::standard([1, LATENT], device);
    let mut model = Vae::new(device);
    let mut optim = FusedAdam::new().init();
    let steps = 2000;
    let batch = 100;
    for step in 0..steps {
        let start = (step * batch) % 20_000;
        let x = mnist.images_tensor(
            Split::Train,
            start..start + batch,
            Binarization::Static,
            device,
        );
        let q = model.posterior(x.clone());
        let bound = Elbo::new().monte_carlo_kl(&q, &prior, |z| model.likelihood(z), x);
        if step % 500 == 0 || step == steps - 1 {
            println!(
                "training step {step}: ELBO {:.2}",
                -vals(bound.loss.clone())[0]
            );
        }
        let grads = GradientsParams::from_grads(bound.loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
    }
    let x = mnist.images_tensor(Split::Test, 0..batch, Binarization::Static, device);
    let repeats = 40;
    println!(
        "\n## Small VAE on MNIST (784-200-10 MLP, {steps} Adam steps), encoder weight gradients\n"
    );
    println!(
        "Over {repeats} noise draws on one test batch of {batch}: mean SNR over the encoder's weights, and total variance.\n"
    );
    println!("| objective | mean SNR | total variance | variance vs standard |");
    println!("|---|---|---|---|");
    let mut baseline = [0.0f64; 2];
    for objective in OBJECTIVES {
        let draws: Vec<Vec<f64>> = (0..repeats)
            .map(|_| {
                let q = model.posterior(x.clone());
                let bound = objective.bound(&q, &prior, |z| model.likelihood(z), x.clone());
                let grads = bound.loss.backward();
                model.encoder_grads(&grads)
            })
            .collect();
        let p = draws[0].len();
        let (mut snr, mut total_var) = (0.0, 0.0);
        for j in 0..p {
            let col: Vec<f64> = draws.iter().map(|d| d[j]).collect();
            let (_, v, s) = stats(&col);
            if s.is_finite() {
                snr += s;
            }
            total_var += v;
        }
        let idx = matches!(objective, Objective::Iwae(..)) as usize;
        if matches!(
            objective,
            Objective::Elbo(GradientEstimator::Reparameterized)
                | Objective::Iwae(_, GradientEstimator::Reparameterized)
        ) {
            baseline[idx] = total_var;
        }
        println!(
            "| {} | {:.3} | {total_var:.4e} | {:.3} |",
            objective.name(),
            snr / p as f64,
            total_var / baseline[idx]
        );
    }
}

/// Gradient variance and SNR of the ELBO and IWAE estimators (the MNIST part reads $MNIST_DIR).
#[derive(Parser, Debug)]
struct Args {
    /// The device: flex (default), ndarray, wgpu, wgpu:N, cuda or cuda:N (the GPU ones need
    /// the examples' cargo feature of that name).
    #[arg(long, default_value = "flex")]
    device: DeviceChoice,
}

fn main() {
    let args = Args::parse();
    let device = args
        .device
        .device()
        .unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2);
        })
        .autodiff();
    println!("device: {}", args.device);
    device.seed(2026);
    conjugate(&device);
    match std::env::var("MNIST_DIR") {
        Ok(dir) => vae(&device, PathBuf::from(dir)),
        Err(_) => {
            println!("## Small VAE: skipped (set MNIST_DIR to the folder with the MNIST IDX files)")
        }
    }
}
