//! The folder of the four IDX files: `--data-dir`, the environment variable, the cache folder,
//! else (MNIST) a download into the cache folder (HTTP(S) in the process, no external program).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

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

/// How long resolving a mirror's name, and then connecting to it (with the TLS handshake), may
/// take; how long the answer to a request, and then each read of the file, may keep us waiting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How many times a download that failed for a passing reason (a timeout, a broken connection,
/// HTTP 408, 429 or 5xx) is tried again, after 1 s, then 2 s.
const RETRIES: u32 = 2;

/// Downloads the four MNIST files into `cache` over HTTP(S) in this process (a progress bar on
/// the terminal), each to a `.part` file that is renamed only after its md5 sum matches the
/// original. `BURN_PROBABILITY_MNIST_MIRROR` replaces the mirror list with one base URL.
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
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_resolve(Some(CONNECT_TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(READ_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        // A status other than 2xx is a `Response` to report, not an `Error`.
        .http_status_as_error(false)
        .build()
        .into();
    for (name, md5) in FILES.iter().zip(MNIST_GZ_MD5) {
        download_file(&agent, &mirrors, cache, name, md5)?;
    }
    Ok(())
}

/// Puts `<name>.gz` with the md5 sum `md5` into `cache`, unless it is there already: from the
/// first of `mirrors` that serves it with that sum, through `<name>.gz.part`.
fn download_file(
    agent: &ureq::Agent,
    mirrors: &[String],
    cache: &Path,
    name: &str,
    md5: &str,
) -> Result<(), String> {
    let target = cache.join(format!("{name}.gz"));
    if target.is_file() && md5_hex(&target).map_err(|e| e.to_string())? == md5 {
        return Ok(());
    }
    let part = cache.join(format!("{name}.gz.part"));
    let mut errors = Vec::new();
    for mirror in mirrors {
        let url = format!("{mirror}{name}.gz");
        eprintln!("{url}");
        match fetch_with_retries(agent, &url, &part) {
            Err(Failure::Local(e)) => {
                std::fs::remove_file(&part).ok();
                errors.push(e);
                break;
            }
            Err(Failure::Remote { what, .. }) => errors.push(format!("{url}: {what}")),
            Ok(()) => {
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

/// Why a download failed.
enum Failure {
    /// On the side of the mirror or the network: `what` went wrong; `passing` if trying again
    /// may help.
    Remote { what: String, passing: bool },
    /// On this machine (the `.part` file cannot be written): no mirror can help.
    Local(String),
}

impl From<ureq::Error> for Failure {
    fn from(e: ureq::Error) -> Self {
        use ureq::Error as E;
        use ureq::Timeout as T;
        let (what, passing) = match e {
            E::Timeout(T::Resolve | T::Connect) => (
                format!(
                    "timed out: no connection within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ),
                true,
            ),
            E::Timeout(T::RecvResponse) => (
                format!("timed out: no response within {} s", READ_TIMEOUT.as_secs()),
                true,
            ),
            E::Timeout(T::PerRead | T::RecvBody) => (
                format!("timed out: no data for {} s", READ_TIMEOUT.as_secs()),
                true,
            ),
            E::Timeout(t) => (format!("timed out ({t})"), true),
            E::HostNotFound => ("host not found".to_string(), false),
            E::ConnectionFailed => ("connection failed".to_string(), false),
            // Rustls reports a failed handshake (an unknown certificate, say) as invalid data.
            E::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
                let text = io.to_string();
                let hint = if text.contains("certificate") {
                    " (certificates are checked against the Mozilla root certificates built \
                     into the program, not the system's)"
                } else {
                    ""
                };
                (format!("TLS or protocol error: {text}{hint}"), false)
            }
            E::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => (
                "the connection closed before the end of the file".to_string(),
                true,
            ),
            E::Io(io) => (
                format!("connection error: {io}"),
                io.kind() != std::io::ErrorKind::ConnectionRefused,
            ),
            E::Rustls(tls) => (format!("TLS error: {tls}"), false),
            E::Tls(tls) => (format!("TLS error: {tls}"), false),
            other => (other.to_string(), false),
        };
        Failure::Remote { what, passing }
    }
}

/// Fetches `url` into `part`, trying again after a passing failure ([`RETRIES`] times).
fn fetch_with_retries(agent: &ureq::Agent, url: &str, part: &Path) -> Result<(), Failure> {
    let mut attempt = 0;
    loop {
        match fetch(agent, url, part) {
            Err(Failure::Remote {
                what,
                passing: true,
            }) if attempt < RETRIES => {
                attempt += 1;
                let wait = Duration::from_secs(1 << (attempt - 1));
                eprintln!(
                    "{what}; trying again in {} s ({attempt}/{RETRIES})",
                    wait.as_secs()
                );
                std::thread::sleep(wait);
            }
            Err(Failure::Remote { what, passing }) if attempt > 0 => {
                return Err(Failure::Remote {
                    what: format!("{what} (after {} attempts)", attempt + 1),
                    passing,
                });
            }
            result => return result,
        }
    }
}

/// Fetches `url` into `part` (created or emptied), with a progress bar on the terminal: bytes
/// of the total when the mirror sends the length, else bytes so far.
fn fetch(agent: &ureq::Agent, url: &str, part: &Path) -> Result<(), Failure> {
    let response = agent.get(url).call()?;
    let status = response.status();
    if !status.is_success() {
        let passing = status.is_server_error()
            || status == ureq::http::StatusCode::REQUEST_TIMEOUT
            || status == ureq::http::StatusCode::TOO_MANY_REQUESTS;
        return Err(Failure::Remote {
            what: format!("HTTP status {status}"),
            passing,
        });
    }
    let local = |e: std::io::Error| Failure::Local(format!("cannot write {}: {e}", part.display()));
    let mut file = std::io::BufWriter::new(std::fs::File::create(part).map_err(local)?);
    let bar = byte_bar(response.body().content_length());
    let mut body = response.into_body().into_reader();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.finish_and_clear();
                // Unwraps the `ureq::Error` (a timeout, say) that the reader carries.
                return Err(ureq::Error::from(e).into());
            }
        };
        file.write_all(&buf[..n]).map_err(local)?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    file.into_inner()
        .map_err(|e| local(e.into_error()))?
        .sync_all()
        .map_err(local)
}

/// A progress bar in bytes on standard error (drawn only on a terminal): of `len` bytes when it
/// is known, else a spinner with the bytes so far.
fn byte_bar(len: Option<u64>) -> ProgressBar {
    let (bar, template) = match len {
        Some(len) => (
            ProgressBar::new(len),
            "[{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} [{elapsed}<{eta}]",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} {bytes} {bytes_per_sec} [{elapsed}]",
        ),
    };
    let bar = bar.with_style(ProgressStyle::with_template(template).expect("template"));
    if len.is_none() {
        bar.enable_steady_tick(Duration::from_millis(100));
    }
    bar
}
