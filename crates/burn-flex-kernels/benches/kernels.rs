//! Criterion benchmarks of the kernels against burn's own operations on the flex CPU backend,
//! forward and forward + backward: a 3 × 3 convolution of 64 channels (Winograd), a strided
//! 4 × 4 convolution (the implicit products), a dense layer with its activation, and softplus
//! on 1,000,000 elements.
//!
//! ```sh
//! cargo bench -p burn-flex-kernels --bench kernels
//! ```

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::{Device, Distribution, Tensor, activation, module};
use burn_flex_kernels::formulas::{Unary, unary};
use burn_flex_kernels::nn::{Activation, FastConv, linear_then};
use criterion::{Criterion, criterion_group, criterion_main};

/// Benchmarks `ours` and `burn` under `group/name/{ours,burn}`, both as a forward pass and as a
/// forward and backward pass on an autodiff device.
fn pair<const D: usize>(
    c: &mut Criterion,
    name: &str,
    make: &dyn Fn(&Device) -> Tensor<D>,
    ours: &dyn Fn(Tensor<D>) -> Tensor<D>,
    burn: &dyn Fn(Tensor<D>) -> Tensor<D>,
) {
    let mut group = c.benchmark_group(name);
    group.sample_size(20);
    let device = Device::flex();
    let x = make(&device);
    for (label, f) in [("ours", ours), ("burn", burn)] {
        group.bench_function(format!("fwd/{label}"), |b| {
            b.iter(|| f(x.clone()).into_data())
        });
    }
    let device = device.autodiff();
    let x = make(&device).require_grad();
    for (label, f) in [("ours", ours), ("burn", burn)] {
        group.bench_function(format!("fwdbwd/{label}"), |b| {
            b.iter(|| f(x.clone()).sum().backward())
        });
    }
    group.finish();
}

fn kernels(c: &mut Criterion) {
    let flex = Device::flex();
    flex.seed(1);
    let random = |dims: [usize; 4]| {
        move |device: &Device| Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), device)
    };

    let same = Conv2dConfig::new([64, 64], [3, 3])
        .with_padding(PaddingConfig2d::Same)
        .init(&flex);
    pair(
        c,
        "conv3x3_64",
        &random([100, 64, 14, 14]),
        &|x| same.forward_fast(x),
        &|x| same.forward(x),
    );

    let strided = Conv2dConfig::new([32, 64], [4, 4])
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(&flex);
    pair(
        c,
        "conv4x4_stride2",
        &random([100, 32, 28, 28]),
        &|x| strided.forward_fast(x),
        &|x| strided.forward(x),
    );

    let w = Tensor::<2>::random([784, 512], Distribution::Normal(0.0, 0.05), &flex);
    let b = Tensor::<1>::zeros([512], &flex);
    pair(
        c,
        "dense_784_512_tanh",
        &|device: &Device| Tensor::<2>::random([256, 784], Distribution::Default, device),
        &|x| {
            let device = x.device();
            let (w, b) = (w.clone().to_device(&device), b.clone().to_device(&device));
            linear_then(x, w, Some(b), Activation::Tanh)
        },
        &|x| {
            let device = x.device();
            let (w, b) = (w.clone().to_device(&device), b.clone().to_device(&device));
            module::linear(x, w, Some(b)).tanh()
        },
    );

    pair(
        c,
        "softplus_1m",
        &|device: &Device| {
            Tensor::<2>::random([1000, 1000], Distribution::Normal(0.0, 4.0), device)
        },
        &|x| unary(Unary::Softplus, x).unwrap_or_else(|_| unreachable!("float32 on flex")),
        &|x| activation::softplus(x, 1.0),
    );
}

criterion_group!(benches, kernels);
criterion_main!(benches);
