//! Throughput of the distribution operations on 1,000,000 float32 elements (and the shapes of
//! the VAE workloads), forward and forward + backward, on the flex CPU backend.
//!
//! ```sh
//! cargo run --release --example throughput
//! ```
//!
//! A quick probe, not the benchmark suite: each line is the median of 15 timed runs after 3
//! warm-ups, and reports millions of elements per second.

use std::time::Instant;

use burn::tensor::{Device, Distribution as Init, Tensor};
use burn_probability::prelude::*;

fn median_ms(mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    times[times.len() / 2]
}

fn report(name: &str, elements: usize, ms: f64) {
    println!("| {name} | {ms:.2} | {:.0} |", elements as f64 / ms / 1e3);
}

fn main() {
    let device = Device::flex();
    let n = 1_000_000;
    let x = Tensor::<1>::random([n], Init::Normal(0.0, 1.0), &device);
    let loc = Tensor::<1>::random([n], Init::Normal(0.0, 1.0), &device);
    let scale = Tensor::<1>::random([n], Init::Uniform(0.5, 2.0), &device);
    println!("| operation (1M float32 unless stated) | median ms | M elements/s |");
    println!("|---|---|---|");

    let normal = Normal::new(loc.clone(), scale.clone()).unwrap();
    let q = Normal::new(loc.clone() * 0.5, scale.clone() * 1.5).unwrap();
    report(
        "Normal log_prob",
        n,
        median_ms(|| {
            let _ = normal.log_prob(x.clone()).into_data();
        }),
    );
    report(
        "Normal rsample",
        n,
        median_ms(|| {
            let _ = normal.rsample().into_data();
        }),
    );
    report(
        "Normal entropy",
        n,
        median_ms(|| {
            let _ = normal.entropy().into_data();
        }),
    );
    report(
        "Normal KL (closed form)",
        n,
        median_ms(|| {
            let _ = kl_divergence(&normal, &q).into_data();
        }),
    );
    let logistic = Logistic::new(loc.clone(), scale.clone()).unwrap();
    report(
        "Logistic log_prob",
        n,
        median_ms(|| {
            let _ = logistic.log_prob(x.clone()).into_data();
        }),
    );

    let logits = Tensor::<2>::random([10_000, 200], Init::Normal(0.0, 2.0), &device);
    let bc = BinConcrete::new(0.5, logits.clone()).unwrap();
    let y = bc.rsample();
    report(
        "BinConcrete rsample [10000, 200]",
        2_000_000,
        median_ms(|| {
            let _ = bc.rsample().into_data();
        }),
    );
    report(
        "BinConcrete log_prob [10000, 200]",
        2_000_000,
        median_ms(|| {
            let _ = bc.log_prob(y.clone()).into_data();
        }),
    );
    let bl = Tensor::<2>::random([10_000, 784], Init::Normal(0.0, 2.0), &device);
    let bx = Tensor::<2>::random([10_000, 784], Init::Default, &device)
        .greater_elem(0.5)
        .float();
    let bern = Independent::<_, 1>::new(Bernoulli::new(bl.clone()), 1).unwrap();
    report(
        "Independent(Bernoulli) log_prob [10000, 784]",
        7_840_000,
        median_ms(|| {
            let _ = bern.log_prob(bx.clone()).into_data();
        }),
    );

    // Forward + backward, gradients w.r.t. the parameters.
    report(
        "Normal log_prob + backward",
        n,
        median_ms(|| {
            let (l, s) = (
                loc.clone().autodiff().require_grad(),
                scale.clone().autodiff().require_grad(),
            );
            let d = Normal::new(l.clone(), s).unwrap();
            let g = d.log_prob(x.clone().autodiff()).sum().backward();
            let _ = l.grad(&g).unwrap().into_data();
        }),
    );
    report(
        "Normal rsample + backward",
        n,
        median_ms(|| {
            let (l, s) = (
                loc.clone().autodiff().require_grad(),
                scale.clone().autodiff().require_grad(),
            );
            let d = Normal::new(l.clone(), s).unwrap();
            let g = d.rsample().sum().backward();
            let _ = l.grad(&g).unwrap().into_data();
        }),
    );
    report(
        "Normal KL + backward",
        n,
        median_ms(|| {
            let (l, s) = (
                loc.clone().autodiff().require_grad(),
                scale.clone().autodiff().require_grad(),
            );
            let d = Normal::new(l.clone(), s).unwrap();
            let g = kl_divergence(
                &d,
                &Normal::new(loc.clone().autodiff(), scale.clone().autodiff()).unwrap(),
            )
            .sum()
            .backward();
            let _ = l.grad(&g).unwrap().into_data();
        }),
    );
    report(
        "Logistic log_prob + backward",
        n,
        median_ms(|| {
            let l = loc.clone().autodiff().require_grad();
            let d = Logistic::new(l.clone(), scale.clone().autodiff()).unwrap();
            let g = d.log_prob(x.clone().autodiff()).sum().backward();
            let _ = l.grad(&g).unwrap().into_data();
        }),
    );
    report(
        "BinConcrete rsample + log_prob + backward [10000, 200]",
        2_000_000,
        median_ms(|| {
            let l = logits.clone().autodiff().require_grad();
            let d = BinConcrete::new(0.5, l.clone()).unwrap();
            let z = d.logit_space().rsample();
            let g = d.logit_space().log_prob(z).sum().backward();
            let _ = l.grad(&g).unwrap().into_data();
        }),
    );
    report(
        "Independent(Bernoulli) log_prob + backward [10000, 784]",
        7_840_000,
        median_ms(|| {
            let l = bl.clone().autodiff().require_grad();
            let d = Independent::<_, 1>::new(Bernoulli::new(l.clone()), 1).unwrap();
            let g = d.log_prob(bx.clone().autodiff()).sum().backward();
            let _ = l.grad(&g).unwrap().into_data();
        }),
    );
}
