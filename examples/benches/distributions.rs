//! Criterion benchmarks of the distribution operations on 1,000,000 float32 elements
//! ([10000, 200] for BinConcrete, [10000, 784] for Bernoulli, [100000, 10] logits for the
//! categorical family, [250000, 4] for Dirichlet), forward and forward + backward,
//! on the flex CPU backend. Throughput is reported in elements per second.
//!
//! ```sh
//! cargo bench --bench distributions
//! ```
//!
//! The side-by-side comparison with PyTorch and TensorFlow Probability runs the same workloads
//! through `examples/benches/peers/driver.py` (see `docs/performance.md`).

use burn::tensor::Device;
use burn_probability_examples::alloc;
use burn_probability_examples::workloads::{DISTRIBUTION_WORKLOADS, build};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn distributions(c: &mut Criterion) {
    // The same allocator settings as the examples (see src/alloc.rs).
    alloc::keep_freed_memory();
    let device = Device::flex();
    device.seed(1);
    let mut group = c.benchmark_group("distributions");
    group.sample_size(20);
    for name in DISTRIBUTION_WORKLOADS {
        let mut w = build(name, &device).expect("a known workload");
        group.throughput(Throughput::Elements(w.items as u64));
        group.bench_function(name, |b| b.iter(|| (w.run)()));
    }
    group.finish();
}

criterion_group!(benches, distributions);
criterion_main!(benches);
