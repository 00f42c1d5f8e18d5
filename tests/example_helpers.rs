//! Unit tests of the helper modules the example programs share, compiled here because
//! `cargo test` builds examples as plain binaries (so that `tests/mnist_vae_cli.rs` can run
//! them) and therefore does not run tests written inside them.

// Every item the examples use is not used by these tests.
#![allow(dead_code)]

#[path = "../examples/common/alloc.rs"]
mod alloc;

#[cfg(feature = "datasets")]
#[path = "../examples/mnist_vae/ema.rs"]
mod ema;

#[path = "../examples/mnist_vae/schedule.rs"]
mod schedule;
