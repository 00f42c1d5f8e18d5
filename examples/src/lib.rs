//! The code the example programs of `burn-probability` share, and the benchmark workloads.
//!
//! * [`mnist`]: the MNIST and Fashion-MNIST IDX reader (validation, md5-checked download).
//! * [`vae`]: the MNIST VAE models, their weight averaging and learning-rate warm-up.
//! * [`plot`]: the examples' pictures as PNG files: charts drawn with `plotters` (the font
//!   bundled), grids of images.
//! * [`alloc`]: the allocator settings the example and benchmark programs use.
//! * [`device`]: the programs' `--device` and `--devices` flags (flex, ndarray, wgpu, cuda).
//! * [`data_parallel`]: data-parallel training through burn-train (`mnist_vae --devices`).
//! * [`workloads`]: the workloads `bench_workloads`, the criterion benches and the peers
//!   driver time.
//!
//! This crate is not published: the library (`crates/burn-probability`) carries none of it.
//! It holds what the programs share and nothing the library needs: a formula, a distribution
//! or a kernel belongs in `burn-probability` or `burn-flex-kernels`, not here.

pub mod alloc;
pub mod data_parallel;
pub mod device;
pub mod mnist;
pub mod plot;
pub mod vae;
pub mod workloads;
