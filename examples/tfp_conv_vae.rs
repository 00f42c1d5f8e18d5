//! The TFP tutorial "Variational autoencoder: analytic vs Monte Carlo KL", ported line by line:
//! the same encoder and decoder, the prior with batch shape `[]`, and the two losses, trained
//! side by side from the same initialization with Keras' Adam, printing both test ELBOs.
//!
//! ```sh
//! cargo run --release --example tfp_conv_vae -- --data-dir ../shared/data/mnist
//! cargo run --release --example tfp_conv_vae -- --epochs 1 --train-n 6000   # a quick look
//! ```
//!
//! The images are `[B, 1, 28, 28]` (burn's channels-first layout) where the tutorial's are
//! `[B, 28, 28, 1]`: the decoder's Bernoulli has event shape `[1, 28, 28]`, and data in the
//! other layout is an error, never a broadcast. Pixels are binarized at 0.5.

use std::path::PathBuf;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Linear, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::tanh;
use burn::tensor::{Device, Tensor};
use burn_flex_kernels::nn::{Activation, FastConv, FastLinear};
use burn_probability::objectives::{Bound, Elbo};
use burn_probability::{Bernoulli, Independent, MultivariateNormalDiag};
use burn_probability_examples::device::DeviceChoice;
use burn_probability_examples::mnist::{Binarization, Mnist, Split};
use burn_probability_examples::vae::model::{keras_conv, keras_conv_transpose, keras_linear};
use clap::Parser;

const LATENT: usize = 2;

// The model: the tutorial's cells [16]–[20].

/// `Conv2D(8, 5, strides=2, tanh)` twice, `Dense(64, tanh)`, `Dense(2·latent)`, and a
/// `MultivariateNormalDiag(loc, scale_diag = exp(·))`.
#[derive(Module, Debug)]
struct Encoder {
    c1: Conv2d,
    c2: Conv2d,
    d1: Linear,
    d2: Linear,
}

impl Encoder {
    fn new(device: &Device) -> Self {
        let conv = |c_in| Conv2dConfig::new([c_in, 8], [5, 5]).with_stride([2, 2]);
        Self {
            c1: keras_conv(conv(1), device),
            c2: keras_conv(conv(8), device),
            d1: keras_linear(8 * 4 * 4, 64, device),
            d2: keras_linear(64, 2 * LATENT, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> MultivariateNormalDiag<2> {
        let h = tanh(self.c1.forward_fast(x));
        let h = tanh(self.c2.forward_fast(h)).flatten::<2>(1, 3);
        let t = self
            .d2
            .forward_fast(self.d1.forward_fast_then(h, Activation::Tanh));
        let [loc, log_scale] = [0, 1].map(|i| t.clone().narrow(1, i * LATENT, LATENT));
        MultivariateNormalDiag::new(loc, log_scale.exp())
    }
}

/// `Dense(64, tanh)`, `Dense(128, tanh)`, `Reshape((4, 4, 8))`, `Conv2DTranspose(8, 5,
/// strides=2, output_padding=1, tanh)` twice, `Conv2D(1, 3, padding="SAME")`, and an
/// `IndependentBernoulli` over the image.
#[derive(Module, Debug)]
struct Decoder {
    d1: Linear,
    d2: Linear,
    t1: ConvTranspose2d,
    t2: ConvTranspose2d,
    c: Conv2d,
}

impl Decoder {
    fn new(device: &Device) -> Self {
        let up = || {
            ConvTranspose2dConfig::new([8, 8], [5, 5])
                .with_stride([2, 2])
                .with_padding_out([1, 1])
        };
        let same = Conv2dConfig::new([8, 1], [3, 3]).with_padding(PaddingConfig2d::Same);
        Self {
            d1: keras_linear(LATENT, 64, device),
            d2: keras_linear(64, 128, device),
            t1: keras_conv_transpose(up(), device),
            t2: keras_conv_transpose(up(), device),
            c: keras_conv(same, device),
        }
    }

    fn forward(&self, z: Tensor<2>) -> Independent<Bernoulli<4>, 1> {
        let n = z.dims()[0];
        let h = self.d1.forward_fast_then(z, Activation::Tanh);
        let h = self
            .d2
            .forward_fast_then(h, Activation::Tanh)
            .reshape([n, 8, 4, 4]);
        let h = tanh(self.t1.forward_fast(h));
        let h = tanh(self.t2.forward_fast(h));
        Independent::all_but_first(Bernoulli::new(self.c.forward_fast(h)))
    }
}

#[derive(Module, Debug)]
struct Vae {
    encoder: Encoder,
    decoder: Decoder,
}

// The losses: the tutorial's cells [22] and [23].

impl Vae {
    /// The ELBO of a batch with the closed-form KL (`tfd.kl_divergence(q, prior)`) or the
    /// Monte Carlo one on a second sample of `q`, as the tutorial's second loss draws it.
    fn elbo(&self, x: Tensor<4>, analytic_kl: bool) -> Bound {
        let q = self.encoder.forward(x.clone());
        let prior = MultivariateNormalDiag::standard([LATENT], &x.device());
        let decoder = |z: Tensor<2>| self.decoder.forward(z);
        if analytic_kl {
            Elbo::new().analytic_kl(&q, &prior, decoder, x)
        } else {
            let elbo = Elbo::new().separate_kl_sample(true);
            elbo.monte_carlo_kl(&q, &prior, decoder, x)
        }
    }
}

/// Trains the tutorial's VAE with the analytic and the Monte Carlo KL side by side.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// The device: flex (default), ndarray, wgpu, wgpu:N, cuda or cuda:N (the GPU ones need
    /// the examples' cargo feature of that name).
    #[arg(long, default_value = "flex")]
    device: DeviceChoice,
    /// The folder of the MNIST IDX files (default: $MNIST_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Passes over the training images (the tutorial: 10).
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Use the first N training images (default: all 60,000).
    #[arg(long)]
    train_n: Option<usize>,
    /// Evaluate on the first N test images (default: all 10,000).
    #[arg(long)]
    test_n: Option<usize>,
    /// Adam's learning rate (Keras' default).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed of the initialization and of the samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2)
}

/// Images `range` of a split as `[n, 1, 28, 28]` binary pixels.
fn images(data: &Mnist, split: Split, range: std::ops::Range<usize>, d: &Device) -> Tensor<4> {
    let n = range.len();
    data.images_tensor(split, range, Binarization::Static, d)
        .reshape([n, 1, 28, 28])
}

/// The mean test ELBO (closed-form KL, one sample) in nats per image.
fn test_elbo(model: &Vae, data: &Mnist, n: usize, device: &Device) -> f64 {
    let mut total = 0.0;
    for start in (0..n).step_by(500) {
        let x = images(data, Split::Test, start..(start + 500).min(n), device);
        let bound = model.elbo(x, true).value.detach().sum();
        total += bound.into_data().iter::<f64>().sum::<f64>();
    }
    total / n as f64
}

fn main() {
    let args = Args::parse();
    let dir = args
        .data_dir
        .clone()
        .or_else(|| std::env::var_os("MNIST_DIR").map(PathBuf::from))
        .unwrap_or_else(|| fail("give the MNIST folder with --data-dir or $MNIST_DIR"));
    let data = Mnist::load(&dir).unwrap_or_else(|e| fail(e));
    let train_n = args
        .train_n
        .unwrap_or(data.train.len())
        .min(data.train.len());
    let test_n = args.test_n.unwrap_or(data.test.len()).min(data.test.len());
    if args.epochs == 0 || args.batch_size == 0 || train_n == 0 || test_n == 0 {
        fail("--epochs, --batch-size, --train-n and --test-n must be at least 1");
    }
    if !(args.lr.is_finite() && args.lr > 0.0) {
        fail(format!("--lr must be finite and > 0, got {}", args.lr));
    }
    let device = args.device.device().unwrap_or_else(|e| fail(e)).autodiff();
    println!("device: {}", args.device);
    // Both models start from the same weights.
    device.seed(args.seed);
    let init = Vae {
        encoder: Encoder::new(&device),
        decoder: Decoder::new(&device),
    };
    let mut models = [
        ("analytic KL", true, init.clone()),
        ("Monte Carlo KL", false, init),
    ];
    // Keras' Adam: β = (0.9, 0.999), ε = 1e-7.
    let mut optims = [(); 2].map(|_| AdamConfig::new().with_epsilon(1e-7).init());
    println!(
        "epoch  {:>22}  {:>22}   (test ELBO, nats per image; {train_n} training and {test_n} test images)",
        models[0].0, models[1].0
    );
    let mut order: Vec<usize> = (0..train_n).collect();
    let mut state = args
        .seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for epoch in 1..=args.epochs {
        // A fresh shuffle each epoch (Fisher–Yates on a 64-bit LCG).
        for i in (1..order.len()).rev() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, (state >> 33) as usize % (i + 1));
        }
        let start = std::time::Instant::now();
        for batch in order.chunks(args.batch_size) {
            let x = data
                .gather_images(Split::Train, batch, Binarization::Static, &device)
                .reshape([batch.len(), 1, 28, 28]);
            for ((_, analytic, model), optim) in models.iter_mut().zip(&mut optims) {
                let loss = model.elbo(x.clone(), *analytic).loss;
                let grads = GradientsParams::from_grads(loss.backward(), &*model);
                *model = optim.step(args.lr, model.clone(), grads);
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        let [a, b] = [0, 1].map(|i| test_elbo(&models[i].2, &data, test_n, &device));
        println!("{epoch:>5}  {a:>22.2}  {b:>22.2}   ({seconds:.1} s of training)");
        if !(a.is_finite() && b.is_finite()) {
            fail("a test ELBO is not finite");
        }
    }
}
