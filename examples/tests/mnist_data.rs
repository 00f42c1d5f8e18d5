//! The real MNIST files, when `MNIST_DIR` points at them (`.ci/run` sets it to
//! `../shared/data/mnist`): checksums, shapes, label counts and mean pixel values. On a fresh
//! clone without the data the test prints that it was skipped and why, and passes.

use std::path::PathBuf;

use burn::tensor::Device;
use burn_probability_examples::mnist::{
    Binarization, FILES, MNIST_GZ_MD5, Mnist, Split, md5_hex, missing_files,
};

fn mnist_dir() -> Option<PathBuf> {
    let Ok(dir) = std::env::var("MNIST_DIR") else {
        say(
            "SKIPPED: MNIST_DIR is not set; set it to a folder with the four MNIST IDX files to run this test",
        );
        return None;
    };
    let dir = PathBuf::from(dir);
    let missing = missing_files(&dir);
    if !missing.is_empty() {
        say(format!(
            "SKIPPED: MNIST_DIR={} lacks {}",
            dir.display(),
            missing.join(", ")
        ));
        return None;
    }
    Some(dir)
}

#[test]
fn real_mnist_loads_with_the_right_shapes_and_checksums() {
    let Some(dir) = mnist_dir() else { return };
    for (name, md5) in FILES.iter().zip(MNIST_GZ_MD5) {
        let path = dir.join(format!("{name}.gz"));
        if path.exists() {
            assert_eq!(
                md5_hex(&path).unwrap(),
                md5,
                "checksum of {}",
                path.display()
            );
        }
    }
    let m = Mnist::load(&dir).unwrap();
    assert_eq!(
        (m.train.len(), m.train.rows, m.train.cols),
        (60_000, 28, 28)
    );
    assert_eq!((m.test.len(), m.test.rows, m.test.cols), (10_000, 28, 28));
    let counts = |labels: &[u8]| {
        let mut c = [0usize; 10];
        labels.iter().for_each(|&l| c[l as usize] += 1);
        c
    };
    assert_eq!(
        counts(&m.train.labels),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        counts(&m.test.labels),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    let mean = |p: &[u8]| p.iter().map(|&v| v as f64).sum::<f64>() / p.len() as f64;
    assert!(
        (mean(&m.train.pixels) - 33.318).abs() < 1e-3
            && (mean(&m.test.pixels) - 33.791).abs() < 1e-3
    );
    let x = m.images_tensor(Split::Test, 0..100, Binarization::Static, &Device::flex());
    assert_eq!(x.dims(), [100, 784]);
    let ones = x.sum().into_scalar::<f32>();
    assert!(
        ones > 100.0 * 50.0 && ones < 100.0 * 250.0,
        "{ones} pixels on in 100 digits"
    );
    say(format!("checked real MNIST in {}", dir.display()));
}

/// Writes a line to the terminal past the test harness's output capture, so that CI logs show
/// what was checked or skipped.
fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    writeln!(std::io::stderr(), "{line}").ok();
}
