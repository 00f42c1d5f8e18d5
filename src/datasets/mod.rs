//! Datasets for the examples and for users' own experiments: MNIST and Fashion-MNIST from the
//! original IDX files (gzip-compressed or not), validated as they are read.
//!
//! Behind the `datasets` cargo feature (on by default; pure Rust: `flate2` with `miniz_oxide`,
//! and `md-5` for the checksums).

pub mod mnist;
