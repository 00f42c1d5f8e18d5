//! The code the example programs of `burn-probability` share, and the benchmark workloads.
//!
//! * [`mnist`]: the MNIST and Fashion-MNIST IDX reader (validation, md5-checked download).
//! * [`vae`]: the MNIST VAE models, their weight averaging and learning-rate warm-up.
//! * [`plot`]: a small PNG plotter for the examples' pictures.
//! * [`alloc`]: the allocator settings the example and benchmark programs use.
//! * [`workloads`]: the workloads `bench_workloads`, the criterion benches and the peers
//!   driver time.
//!
//! This crate is not published: the library (`crates/burn-probability`) carries none of it.

pub mod alloc;
pub mod mnist;
pub mod plot;
pub mod vae;
pub mod workloads;
