//! The folder of the four IDX files: `--data-dir`, the environment variable, the cache folder,
//! else (MNIST) a download into the cache folder.

use std::path::{Path, PathBuf};

use burn_probability_examples::mnist::{FILES, MNIST_GZ_MD5, md5_hex, missing_files};

use crate::{Args, DatasetKind, fail};

fn cache_dir(dataset: DatasetKind) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let name = match dataset {
        DatasetKind::Mnist => "mnist",
        DatasetKind::FashionMnist => "fashion-mnist",
    };
    Some(base.join("burn-probability").join(name))
}

/// Finds the data folder: --data-dir, then $MNIST_DIR, then the cache folder (and, for
/// Fashion-MNIST, the Debian package's folder); else downloads MNIST into the cache folder.
pub(crate) fn locate_data(args: &Args) -> PathBuf {
    if let Some(dir) = &args.data_dir {
        let missing = missing_files(dir);
        if !missing.is_empty() {
            fail(format!(
                "--data-dir {} lacks {}",
                dir.display(),
                missing.join(", ")
            ));
        }
        return dir.clone();
    }
    let env_var = match args.dataset {
        DatasetKind::Mnist => "MNIST_DIR",
        DatasetKind::FashionMnist => "FASHION_MNIST_DIR",
    };
    let mut candidates: Vec<PathBuf> = std::env::var_os(env_var)
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.extend(cache_dir(args.dataset));
    if args.dataset == DatasetKind::FashionMnist {
        candidates.push(PathBuf::from("/usr/share/datasets/fashion-mnist"));
    }
    let mut tried = Vec::new();
    for dir in &candidates {
        let missing = missing_files(dir);
        if missing.is_empty() {
            return dir.clone();
        }
        tried.push(format!(
            "  {} (missing {})",
            dir.display(),
            missing.join(", ")
        ));
    }
    download_or_fail(args.dataset, env_var, &tried)
}

/// With no data in the folders `tried` (one line each): downloads MNIST into the cache folder,
/// or fails with where it looked and how to provide the files.
fn download_or_fail(dataset: DatasetKind, env_var: &str, tried: &[String]) -> PathBuf {
    let how = format!(
        "Provide the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
         t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) with --data-dir DIR or the {env_var} \
         environment variable, or put them in the cache folder above."
    );
    let looked = if tried.is_empty() {
        "  (nowhere: no HOME for a cache folder)".to_string()
    } else {
        tried.join("\n")
    };
    match (dataset, cache_dir(dataset)) {
        (DatasetKind::Mnist, Some(cache)) => match download_mnist(&cache) {
            Ok(()) => cache,
            Err(e) => fail(format!(
                "no MNIST data found. Looked in:\n{looked}\nThe download failed: {e}\n{how}"
            )),
        },
        (DatasetKind::FashionMnist, _) => fail(format!(
            "no Fashion-MNIST data found. Looked in:\n{looked}\n{how} On Debian and Ubuntu, `apt-get install dataset-fashion-mnist` \
             installs them in /usr/share/datasets/fashion-mnist."
        )),
        (_, None) => fail(format!("no MNIST data found. Looked in:\n{looked}\n{how}")),
    }
}

/// Public mirrors of the original MNIST files (the md5 sums are checked whatever the source).
const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// Downloads the four MNIST files into `cache` with the system's `curl` (progress bar on the
/// terminal), each to a `.part` file that is renamed only after its md5 sum matches the original.
/// `BURN_PROBABILITY_MNIST_MIRROR` replaces the mirror list with one base URL.
fn download_mnist(cache: &Path) -> Result<(), String> {
    let mirrors: Vec<String> = match std::env::var("BURN_PROBABILITY_MNIST_MIRROR") {
        Ok(m) => vec![if m.ends_with('/') { m } else { format!("{m}/") }],
        Err(_) => MNIST_MIRRORS.iter().map(|m| m.to_string()).collect(),
    };
    std::fs::create_dir_all(cache)
        .map_err(|e| format!("cannot create the cache folder {}: {e}", cache.display()))?;
    eprintln!(
        "MNIST not found locally: downloading it into {}",
        cache.display()
    );
    for (name, md5) in FILES.iter().zip(MNIST_GZ_MD5) {
        download_file(&mirrors, cache, name, md5)?;
    }
    Ok(())
}

/// Puts `<name>.gz` with the md5 sum `md5` into `cache`, unless it is there already: from the
/// first of `mirrors` that serves it with that sum, through `<name>.gz.part`.
fn download_file(mirrors: &[String], cache: &Path, name: &str, md5: &str) -> Result<(), String> {
    let target = cache.join(format!("{name}.gz"));
    if target.is_file() && md5_hex(&target).map_err(|e| e.to_string())? == md5 {
        return Ok(());
    }
    let part = cache.join(format!("{name}.gz.part"));
    let mut errors = Vec::new();
    for mirror in mirrors {
        let url = format!("{mirror}{name}.gz");
        eprintln!("{url}");
        match curl(&url, &part) {
            Err(e) => {
                errors.push(format!(
                    "cannot run curl ({e}): install curl, or provide the files yourself"
                ));
                break;
            }
            Ok(s) if !s.success() => errors.push(format!("{url}: curl exited with {s}")),
            Ok(_) => {
                let got = md5_hex(&part).map_err(|e| e.to_string())?;
                if got == md5 {
                    std::fs::rename(&part, &target)
                        .map_err(|e| format!("cannot move {} into place: {e}", part.display()))?;
                    break;
                }
                errors.push(format!(
                    "{url}: md5 {got} does not match the original {md5}"
                ));
            }
        }
        std::fs::remove_file(&part).ok();
    }
    if !target.is_file() {
        std::fs::remove_file(&part).ok();
        return Err(errors.join("; "));
    }
    Ok(())
}

/// Fetches `url` into `part` with `curl` (two retries, a progress bar on the terminal).
fn curl(url: &str, part: &Path) -> std::io::Result<std::process::ExitStatus> {
    std::process::Command::new("curl")
        .args([
            "--fail",
            "--location",
            "--retry",
            "2",
            "--connect-timeout",
            "20",
            "--progress-bar",
            "--output",
        ])
        .arg(part)
        .arg(url)
        .status()
}
