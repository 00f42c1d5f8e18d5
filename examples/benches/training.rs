//! Criterion benchmarks of the models: the IWAE bound (k = 50, Burda et al.'s model, batch 64)
//! with its gradient, and one training step of each MNIST example model (`conv` batch 100,
//! `mlp` batch 64, `iwae` k = 50 batch 20), on the flex CPU backend. Throughput is reported in
//! images per second.
//!
//! ```sh
//! cargo bench --bench training
//! ```

use std::time::Duration;

use burn::tensor::Device;
use burn_probability_examples::alloc;
use burn_probability_examples::workloads::{MODEL_WORKLOADS, build};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn training(c: &mut Criterion) {
    // The same allocator settings as the examples (see src/alloc.rs).
    alloc::keep_freed_memory();
    let device = Device::flex();
    device.seed(1);
    let mut group = c.benchmark_group("training");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for name in MODEL_WORKLOADS {
        let mut w = build(name, &device).expect("a known workload");
        group.throughput(Throughput::Elements(w.items as u64));
        group.bench_function(name, |b| b.iter(|| (w.run)()));
    }
    group.finish();
}

criterion_group!(benches, training);
criterion_main!(benches);
