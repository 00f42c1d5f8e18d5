//! The MNIST examples as a user runs them: short trainings of every `mnist_vae` model on a
//! small synthetic data set in MNIST's IDX format (and on the real MNIST when `MNIST_DIR` is
//! set), checkpoint and resume, data-parallel training (`--devices`), clear errors for bad flags
//! and bad data, and the `tfp_conv_vae` port with both KL estimators.
//!
//! `cargo test` builds the examples before it runs the tests; this file runs the built binary.
//! (That is why the example has no `test = true`: with it, cargo builds only the test harness
//! and not the binary. The modules it shares with the other programs are the library's, and
//! their unit tests run with it.)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `mnist_vae` binary.
fn binary() -> PathBuf {
    example_binary("mnist_vae")
}

/// An example binary beside this test's: `target/<profile>/examples/<name>`, this test
/// running from `target/<profile>/deps/`.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary runs from target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test` (which builds the examples) rather than a single test target",
        path.display()
    );
    path
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bp-vae-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gz_write(path: &Path, bytes: &[u8]) {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    std::fs::write(path, e.finish().unwrap()).unwrap();
}

/// Four prototype strokes (a bar in each quadrant) with pixel noise, as 28x28 IDX files.
fn synthetic_mnist(dir: &Path, train: usize, test: usize) {
    let mut state = 12345u64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut split = |n: usize, images: &str, labels: &str| {
        let mut img = Vec::new();
        for w in [2051u32, n as u32, 28, 28] {
            img.extend(w.to_be_bytes());
        }
        let mut lab = Vec::new();
        for w in [2049u32, n as u32] {
            lab.extend(w.to_be_bytes());
        }
        for i in 0..n {
            let class = i % 4;
            lab.push(class as u8);
            for r in 0..28 {
                for c in 0..28 {
                    let on = match class {
                        0 => (4..24).contains(&r) && (6..10).contains(&c),
                        1 => (4..24).contains(&r) && (18..22).contains(&c),
                        2 => (6..10).contains(&r) && (4..24).contains(&c),
                        _ => (18..22).contains(&r) && (4..24).contains(&c),
                    };
                    let noise = rand() % 100 < 3;
                    img.push(if on ^ noise { 230 } else { 10 });
                }
            }
        }
        gz_write(&dir.join(format!("{images}.gz")), &img);
        gz_write(&dir.join(format!("{labels}.gz")), &lab);
    };
    split(train, "train-images-idx3-ubyte", "train-labels-idx1-ubyte");
    split(test, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte");
}

fn run(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .env_remove("MNIST_DIR")
        .output()
        .expect("the example binary runs")
}

fn stdout_stderr(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn metrics(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn assert_png(path: &Path) {
    let decoder = png::Decoder::new(
        std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    );
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert!(
        info.width > 50 && info.height > 50,
        "{}: {}x{}",
        path.display(),
        info.width,
        info.height
    );
    assert!(buf.iter().any(|&b| b < 128), "{} is blank", path.display());
}

#[test]
fn every_model_trains_and_improves_on_a_small_data_set() {
    let data = temp_dir("data");
    synthetic_mnist(&data, 400, 100);
    let data_s = data.to_str().unwrap();
    for (model, extra) in [
        // The tutorial's log-variance head can overflow in the first RMSprop steps on these 400
        // synthetic images: with the crate's noise generator seed 1 reached NaN at batch 5,
        // seeds 2-5 trained (and half the rate left the prior samples blank after 3 epochs).
        // Real MNIST trains at the defaults (docs/mnist-vae.md: the 20-epoch runs). The log-variance is
        // clamped, which stops the NaN; seed 2 is kept for the pictures. Without the default
        // warm-up (its schedule is tested in src/vae/schedule.rs): a one-epoch warm-up here
        // (20 steps) left the prior samples blank after 3 epochs on these 400 images.
        (
            "conv",
            vec!["--batch-size", "20", "--seed", "2", "--warmup-steps", "0"],
        ),
        // The same through burn's own layers and formulas.
        (
            "conv",
            vec![
                "--batch-size",
                "20",
                "--seed",
                "2",
                "--warmup-steps",
                "0",
                "--no-fused",
            ],
        ),
        ("mlp", vec!["--lr", "3e-3"]),
        (
            "iwae",
            vec!["--objective", "iwae", "-k", "4", "--lr", "3e-3"],
        ),
        (
            "iwae",
            vec!["--objective", "dreg", "-k", "4", "--lr", "3e-3"],
        ),
        // Kingma et al.'s IAF posterior and a learned mixture prior (issue 26), through the
        // ELBO and the IWAE bound.
        (
            "mlp",
            vec![
                "--posterior",
                "iaf",
                "--flow-steps",
                "2",
                "--prior",
                "mixture",
                "--components",
                "3",
                "--lr",
                "3e-3",
            ],
        ),
        (
            "iwae",
            vec![
                "--posterior",
                "iaf",
                "--objective",
                "iwae",
                "-k",
                "3",
                "--lr",
                "3e-3",
            ],
        ),
        ("binary", vec!["--temperature", "0.1", "--lr", "3e-3"]),
        (
            "binary",
            vec![
                "--temperature",
                "0.5",
                "--objective",
                "iwae",
                "-k",
                "3",
                "--lr",
                "3e-3",
            ],
        ),
        // Jang et al.'s Gumbel-softmax VAE: the relaxed and the straight-through estimators,
        // and the log-space relaxation at temperature 0.1 through the IWAE bound.
        ("categorical", vec!["--lr", "3e-3"]),
        ("categorical", vec!["--straight-through", "--lr", "3e-3"]),
        (
            "categorical",
            vec![
                "--temperature",
                "0.1",
                "--min-temperature",
                "0.1",
                // The thresholded images: with one fixed Bernoulli draw of these 400
                // synthetic images, the trained weights' test ELBO at this temperature swings
                // between epochs by more than three epochs improve it.
                "--binarization",
                "static",
                "--objective",
                "iwae",
                "-k",
                "3",
                "--lr",
                "3e-3",
            ],
        ),
    ] {
        let out = temp_dir(&format!("{model}-{}", extra.join("")));
        let mut args = vec![
            "--model",
            model,
            "--epochs",
            "3",
            "--data-dir",
            data_s,
            "--eval-k",
            "8",
            "--eval-n",
            "10",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(&extra);
        let o = run(&args);
        assert!(
            o.status.success(),
            "{model} {extra:?} failed:\n{}",
            stdout_stderr(&o)
        );
        let m = metrics(&out);
        assert_eq!(
            m.len(),
            4,
            "{model}: three epochs and the final line: {m:?}"
        );
        let elbo = |i: usize| m[i]["test_elbo"].as_f64().unwrap();
        assert!(
            elbo(2) > elbo(0) && elbo(2).is_finite(),
            "{model} {extra:?}: test ELBO did not improve: {m:?}"
        );
        let ll = m[3]["test_log_likelihood"].as_f64().unwrap();
        assert!(
            ll.is_finite() && ll < 0.0,
            "{model}: test log-likelihood {ll}"
        );
        for epoch in &m[..3] {
            assert!(
                epoch["images_per_sec"].as_f64().unwrap() > 0.0
                    && epoch["seconds"].as_f64().unwrap() > 0.0
            );
            // The moving average of the weights (on by default) is evaluated too.
            let ema = epoch["test_elbo_ema"].as_f64();
            assert!(
                ema.is_some_and(f64::is_finite),
                "{model}: test_elbo_ema in {epoch}"
            );
        }
        assert_eq!(m[3]["weights"], "averaged", "{model}: {}", m[3]);
        let mut pictures = vec!["training_curve.png", "reconstructions.png", "samples.png"];
        if model == "categorical" {
            let t = m[0]["temperature"].as_f64();
            assert!(t.is_some_and(|t| t > 0.0), "the temperature in {}", m[0]);
        }
        if model != "iwae" && model != "binary" && model != "categorical" {
            pictures.extend(["latent.png", "manifold.png"]);
        }
        for p in pictures {
            assert_png(&out.join(p));
        }
        std::fs::remove_dir_all(&out).ok();
    }
    std::fs::remove_dir_all(&data).ok();
}

#[test]
fn resume_gives_the_same_result_as_an_uninterrupted_run() {
    for (model, extra) in [
        ("mlp", &[][..]),
        ("categorical", &[][..]),
        // The flows and the mixture prior are part of the checkpoint.
        (
            "iwae",
            &[
                "--posterior",
                "iaf",
                "--prior",
                "mixture",
                "--components",
                "3",
            ][..],
        ),
    ] {
        resume_case(model, extra);
    }
}

fn resume_case(model: &str, extra: &[&str]) {
    let tag = format!("{model}{}", extra.len());
    let data = temp_dir(&format!("resume-data-{tag}"));
    synthetic_mnist(&data, 256, 64);
    let (full, part) = (
        temp_dir(&format!("full-{tag}")),
        temp_dir(&format!("part-{tag}")),
    );
    let mut common = vec![
        "--model",
        model,
        "--data-dir",
        data.to_str().unwrap(),
        "--eval-k",
        "0",
    ];
    common.extend(extra);
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = common.to_vec();
        a.extend(extra);
        let o = run(&a);
        assert!(o.status.success(), "{}", stdout_stderr(&o));
    };
    with(&["--epochs", "3", "--out", full.to_str().unwrap()]);
    with(&["--epochs", "1", "--out", part.to_str().unwrap()]);
    for file in ["state.json", "model.bpk", "ema.bpk", "optim.bpk"] {
        assert!(part.join("checkpoint").join(file).exists(), "{file}");
    }
    assert!(
        !part.join("checkpoint/model.bpk.tmp").exists(),
        "temporary checkpoint files must be renamed"
    );
    with(&["--epochs", "3", "--out", part.to_str().unwrap(), "--resume"]);
    let (a, b) = (metrics(&full), metrics(&part));
    assert_eq!(a.len(), 3);
    assert_eq!(b.len(), 3);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x["train_loss"], y["train_loss"], "{x} vs {y}");
        assert_eq!(x["test_elbo"], y["test_elbo"], "{x} vs {y}");
        assert!(x["test_elbo_ema"].is_f64(), "{x}");
        assert_eq!(x["test_elbo_ema"], y["test_elbo_ema"], "{x} vs {y}");
    }
    // The resumed run's training curve holds the epoch of the run it continues: it is the
    // uninterrupted run's, pixel for pixel.
    let curve = |dir: &Path| {
        let path = dir.join("training_curve.png");
        assert_png(&path);
        std::fs::read(&path).unwrap()
    };
    assert!(
        curve(&full) == curve(&part),
        "{model}: the resumed run's training_curve.png differs from the uninterrupted run's"
    );
    // Resuming with other settings is refused.
    let o = run(&[
        &common[..],
        &[
            "--epochs",
            "4",
            "--out",
            part.to_str().unwrap(),
            "--resume",
            "--lr",
            "0.1",
        ],
    ]
    .concat());
    assert!(
        !o.status.success() && stdout_stderr(&o).contains("other settings"),
        "{}",
        stdout_stderr(&o)
    );
    for d in [data, full, part] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn categorical_flags_are_checked() {
    let data = temp_dir("categorical-flags");
    synthetic_mnist(&data, 64, 16);
    let data_s = data.to_str().unwrap();
    for (args, want) in [
        (
            vec!["--model", "mlp", "--straight-through"],
            "--model categorical",
        ),
        (
            vec!["--model", "categorical", "--classes", "1"],
            "--classes",
        ),
        (
            vec!["--model", "categorical", "--min-temperature", "0"],
            "--min-temperature",
        ),
        (
            vec!["--model", "categorical", "--anneal-rate=-1"],
            "--anneal-rate",
        ),
        (
            vec!["--model", "categorical", "--temperature", "0"],
            "--temperature",
        ),
    ] {
        let mut all = vec!["--data-dir", data_s, "--epochs", "1"];
        all.extend(&args);
        let o = run(&all);
        let text = stdout_stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {text}");
        assert!(text.contains(want), "{args:?}: {text}");
    }
    std::fs::remove_dir_all(&data).ok();
}

#[test]
fn grey_level_likelihoods_train_and_report() {
    let data = temp_dir("grey-data");
    synthetic_mnist(&data, 200, 50);
    let data_s = data.to_str().unwrap();
    // The continuous Bernoulli (grey levels by default), and the Bernoulli cross-entropy on
    // the same grey levels.
    for (likelihood, extra) in [
        ("continuous-bernoulli", vec![]),
        ("bernoulli", vec!["--binarization", "none"]),
    ] {
        let out = temp_dir(&format!("grey-{likelihood}"));
        let mut args = vec![
            "--model",
            "mlp",
            "--likelihood",
            likelihood,
            "--epochs",
            "2",
            "--lr",
            "3e-3",
            "--data-dir",
            data_s,
            "--eval-k",
            "8",
            "--eval-n",
            "10",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(&extra);
        let o = run(&args);
        let text = stdout_stderr(&o);
        assert!(o.status.success(), "{likelihood} {extra:?} failed:\n{text}");
        assert!(
            text.contains(&format!("{likelihood} likelihood")) && text.contains("grey levels"),
            "the start line names the likelihood and the grey levels:\n{text}"
        );
        let m = metrics(&out);
        assert_eq!(
            m.len(),
            3,
            "{likelihood}: two epochs and the final line: {m:?}"
        );
        for epoch in &m[..2] {
            // A density on grey levels can exceed 1: the bound need not be negative.
            let elbo = epoch["test_elbo"].as_f64();
            assert!(
                elbo.is_some_and(f64::is_finite),
                "{likelihood}: test_elbo in {epoch}"
            );
            assert_eq!(epoch["likelihood"], likelihood, "{epoch}");
        }
        let last = &m[2];
        assert!(
            last["test_log_likelihood"]
                .as_f64()
                .is_some_and(f64::is_finite),
            "{likelihood}: {last}"
        );
        assert_eq!(last["likelihood"], likelihood, "{last}");
        assert_eq!(last["binarization"], "none", "{last}");
        for p in ["reconstructions.png", "latent.png"] {
            assert_png(&out.join(p));
        }
        for p in ["samples.png", "manifold.png"] {
            assert!(out.join(p).is_file(), "{likelihood}: {p} is missing");
        }
        let state = std::fs::read_to_string(out.join("checkpoint/state.json")).unwrap();
        assert!(state.contains(likelihood), "{state}");
        std::fs::remove_dir_all(&out).ok();
    }
    std::fs::remove_dir_all(&data).ok();
}

#[test]
fn likelihood_flags_are_checked() {
    let data = temp_dir("likelihood-flags");
    synthetic_mnist(&data, 64, 16);
    let data_s = data.to_str().unwrap();
    for (args, words) in [
        // The continuous Bernoulli is a density on grey levels, not on binarized pixels.
        (
            vec![
                "--likelihood",
                "continuous-bernoulli",
                "--binarization",
                "static",
            ],
            vec!["--likelihood", "--binarization", "none", "static"],
        ),
        (
            vec![
                "--likelihood",
                "continuous-bernoulli",
                "--binarization",
                "dynamic",
            ],
            vec!["--likelihood", "--binarization", "dynamic"],
        ),
        (
            vec!["--likelihood", "gaussian"],
            vec!["invalid value", "gaussian", "continuous-bernoulli"],
        ),
        // The richer posterior and prior: their models, objectives and sizes.
        (
            vec!["--model", "conv", "--posterior", "iaf"],
            vec!["--posterior iaf", "mlp and iwae", "conv"],
        ),
        (
            vec![
                "--model",
                "mlp",
                "--prior",
                "mixture",
                "--objective",
                "elbo-analytic",
            ],
            vec!["elbo-analytic", "closed-form KL", "mixture"],
        ),
        (
            vec!["--model", "iwae", "--posterior", "iaf", "--flow-steps", "0"],
            vec!["--flow-steps", "at least 1"],
        ),
        (
            vec!["--model", "mlp", "--prior", "mixture", "--components", "0"],
            vec!["--components", "at least 1"],
        ),
    ] {
        let mut all = vec!["--data-dir", data_s, "--epochs", "1"];
        all.extend(&args);
        let o = run(&all);
        let text = stdout_stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {text}");
        for w in words {
            assert!(text.contains(w), "{args:?}: should mention {w:?}: {text}");
        }
    }
    std::fs::remove_dir_all(&data).ok();
}

#[test]
fn bad_flags_and_bad_data_are_clear_errors() {
    let data = temp_dir("bad-data");
    synthetic_mnist(&data, 16, 8);
    let d = data.to_str().unwrap();
    let home = temp_dir("home");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--model", "transformer"],
            vec!["invalid value", "transformer", "conv"],
        ),
        (vec!["--data-dir", d, "--lr=-1"], vec!["--lr", "-1"]),
        (vec!["--data-dir", d, "-k", "0"], vec!["-k"]),
        (
            vec!["--data-dir", d, "--ema-decay", "1"],
            vec!["--ema-decay", "[0, 1)", "got 1"],
        ),
        (
            vec!["--data-dir", d, "--temperature", "0"],
            vec!["--temperature"],
        ),
        (
            vec![
                "--data-dir",
                d,
                "--model",
                "binary",
                "--objective",
                "elbo-analytic",
            ],
            vec!["closed-form KL"],
        ),
        (
            vec!["--data-dir", "/nonexistent/mnist"],
            vec!["/nonexistent/mnist", "train-images-idx3-ubyte.gz"],
        ),
        (
            vec!["--data-dir", d, "--out", "/proc/version/out"],
            vec!["--out", "/proc/version/out"],
        ),
        (
            vec!["--data-dir", d, "--resume", "--out", home.to_str().unwrap()],
            vec!["--resume", "state.json"],
        ),
    ];
    for (args, words) in cases {
        let o = Command::new(binary())
            .args(&args)
            .env_remove("MNIST_DIR")
            .env("HOME", &home)
            .env_remove("XDG_CACHE_HOME")
            .output()
            .unwrap();
        let text = stdout_stderr(&o);
        assert!(!o.status.success(), "{args:?} should fail:\n{text}");
        for w in words {
            assert!(
                text.contains(w),
                "{args:?}: error should mention {w:?}:\n{text}"
            );
        }
    }
    // No data anywhere, and the download fails (a closed port on this machine): the message
    // lists what was looked for and how to provide the files.
    let o = Command::new(binary())
        .env_remove("MNIST_DIR")
        .env("HOME", &home)
        .env_remove("XDG_CACHE_HOME")
        .env("BURN_PROBABILITY_MNIST_MIRROR", "http://127.0.0.1:9/")
        .output()
        .unwrap();
    let text = stdout_stderr(&o);
    for w in [
        "download failed",
        "--data-dir",
        "MNIST_DIR",
        ".cache/burn-probability/mnist",
        "train-images-idx3-ubyte.gz",
    ] {
        assert!(
            !o.status.success() && text.contains(w),
            "should mention {w:?}:\n{text}"
        );
    }
    // A corrupt file is named.
    std::fs::write(data.join("t10k-labels-idx1-ubyte.gz"), b"not gzip").unwrap();
    let o = run(&["--data-dir", d]);
    let text = stdout_stderr(&o);
    assert!(
        !o.status.success() && text.contains("t10k-labels-idx1-ubyte.gz"),
        "{text}"
    );
    std::fs::remove_dir_all(&data).ok();
    std::fs::remove_dir_all(&home).ok();
}

/// A short training on the real MNIST (`MNIST_DIR`), skipped with a message when it is absent.
#[test]
fn short_training_on_real_mnist() {
    let Some(dir) = std::env::var_os("MNIST_DIR") else {
        say("SKIPPED: MNIST_DIR is not set (set it to the folder with the MNIST IDX files)");
        return;
    };
    let out = temp_dir("real");
    let o = Command::new(binary())
        .args([
            "--model",
            "mlp",
            "--epochs",
            "2",
            "--train-n",
            "2000",
            "--test-n",
            "1000",
            "--eval-k",
            "20",
            "--eval-n",
            "50",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("MNIST_DIR", &dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stdout_stderr(&o));
    let m = metrics(&out);
    let (e1, e2) = (
        m[0]["test_elbo"].as_f64().unwrap(),
        m[1]["test_elbo"].as_f64().unwrap(),
    );
    assert!(e2 > e1 && e2 > -260.0, "test ELBO {e1} -> {e2}");
    std::fs::remove_dir_all(&out).ok();
}

/// Serves the files of `dir` over HTTP on a loopback port for at most `requests` requests;
/// returns the base URL.
fn serve(dir: PathBuf, requests: usize) -> String {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).ok();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let name = request
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            match std::fs::read(dir.join(&name)) {
                Ok(body) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    stream.write_all(head.as_bytes()).ok();
                    stream.write_all(&body).ok();
                }
                Err(_) => {
                    stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").ok();
                }
            }
        }
    });
    url
}

/// Runs the example with no local data, `home` as its home (so the cache is
/// `home/.cache/burn-probability/mnist`), `url` as its download mirror, and an empty folder as
/// its `PATH`: the download needs no program such as `curl`.
fn run_with_mirror(args: &[&str], home: &Path, url: &str) -> Output {
    let no_programs = temp_dir("empty-path");
    let o = Command::new(binary())
        .args(args)
        .env_remove("MNIST_DIR")
        .env("HOME", home)
        .env_remove("XDG_CACHE_HOME")
        .env("BURN_PROBABILITY_MNIST_MIRROR", url)
        .env("PATH", &no_programs)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&no_programs).ok();
    o
}

#[test]
fn download_verifies_checksums_before_anything_reaches_the_cache() {
    // A mirror serving files that are not the original MNIST: refused, nothing cached.
    let fake = temp_dir("fake-mirror");
    synthetic_mnist(&fake, 8, 4);
    let home = temp_dir("dl-home");
    let o = run_with_mirror(&[], &home, &serve(fake.clone(), 8));
    let text = stdout_stderr(&o);
    assert!(
        !o.status.success() && text.contains("does not match the original"),
        "{text}"
    );
    let cache = home.join(".cache/burn-probability/mnist");
    let left: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "nothing may reach the cache from a bad download: {left:?}"
    );

    // The real files from a loopback mirror: downloaded, verified, used.
    let Some(real) = std::env::var_os("MNIST_DIR") else {
        say("SKIPPED (download of the real files): MNIST_DIR is not set");
        return;
    };
    let url = serve(PathBuf::from(real), 8);
    let out = temp_dir("dl-out");
    let o = run_with_mirror(
        &[
            "--model",
            "mlp",
            "--epochs",
            "1",
            "--train-n",
            "200",
            "--test-n",
            "100",
            "--eval-k",
            "0",
            "--out",
            out.to_str().unwrap(),
        ],
        &home,
        &url,
    );
    assert!(o.status.success(), "{}", stdout_stderr(&o));
    for name in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        assert!(cache.join(name).is_file(), "{name} should be in the cache");
    }
    for d in [fake, home, out] {
        std::fs::remove_dir_all(d).ok();
    }
}

/// Writes a line to the terminal past the test harness's output capture.
fn say(line: impl std::fmt::Display) {
    writeln!(std::io::stderr(), "{line}").ok();
}

#[test]
fn the_tfp_conv_vae_port_trains_with_both_kl_estimators() {
    let data = temp_dir("tfp-data");
    synthetic_mnist(&data, 400, 100);
    let o = Command::new(example_binary("tfp_conv_vae"))
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["--epochs", "2", "--batch-size", "20", "--test-n", "100"])
        .env_remove("MNIST_DIR")
        .output()
        .expect("the example binary runs");
    let text = stdout_stderr(&o);
    assert!(o.status.success(), "{text}");
    // One line per epoch: the epoch, then the two test ELBOs.
    let rows: Vec<Vec<f64>> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| {
            l.split_whitespace()
                .take(3)
                .map(|v| v.parse().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    // Each model beats the model of independent fair-coin pixels, 784 ln 2 = 543.4 nats.
    for (name, elbo) in [("analytic", rows[1][1]), ("Monte Carlo", rows[1][2])] {
        assert!(
            elbo.is_finite() && elbo > -543.4 && elbo < 0.0,
            "{name}-KL test ELBO {elbo}: {text}"
        );
    }
    // Without data, the error says where to put it.
    let o = Command::new(example_binary("tfp_conv_vae"))
        .env_remove("MNIST_DIR")
        .output()
        .expect("the example binary runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout_stderr(&o).contains("--data-dir or $MNIST_DIR"));
}

/// `--device`: the run prints the device, trains on ndarray as on flex, names the cargo feature
/// of a backend the build lacks, and a checkpoint written on flex resumes on ndarray.
#[test]
fn devices_are_chosen_and_checkpoints_move_between_them() {
    let data = temp_dir("devices-data");
    synthetic_mnist(&data, 128, 32);
    let out = temp_dir("devices-out");
    let common = [
        "--model",
        "mlp",
        "--data-dir",
        data.to_str().unwrap(),
        "--eval-k",
        "0",
        "--out",
        out.to_str().unwrap(),
    ];
    let with = |extra: &[&str]| run(&[&common[..], extra].concat());
    let o = with(&["--epochs", "1"]);
    assert!(o.status.success(), "{}", stdout_stderr(&o));
    assert!(
        stdout_stderr(&o).contains("device: flex"),
        "{}",
        stdout_stderr(&o)
    );
    let o = with(&["--epochs", "2", "--resume", "--device", "ndarray"]);
    let text = stdout_stderr(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("device: ndarray"), "{text}");
    let m = metrics(&out);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(
        m[1]["test_elbo"].as_f64().is_some_and(f64::is_finite),
        "epoch 2 on ndarray: {}",
        m[1]
    );
    #[cfg(not(feature = "cuda"))]
    {
        let o = with(&["--epochs", "1", "--device", "cuda"]);
        let text = stdout_stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{text}");
        assert!(text.contains("--features cuda"), "{text}");
    }
    let o = with(&["--epochs", "1", "--device", "tpu"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout_stderr(&o).contains("unknown device"));
    for d in [data, out] {
        std::fs::remove_dir_all(d).ok();
    }
}

/// `--devices`: data-parallel training through burn-train, on two flex devices and on flex and
/// ndarray, writes what a single-device run writes; a bad `--devices` value and the flags it
/// does not support are clear errors.
#[test]
fn devices_train_data_parallel_and_bad_values_are_clear_errors() {
    let data = temp_dir("dp-data");
    synthetic_mnist(&data, 120, 40);
    let out = temp_dir("dp-out");
    let common = [
        "--model",
        "mlp",
        "--data-dir",
        data.to_str().unwrap(),
        "--epochs",
        "2",
        "--test-n",
        "40",
        "--eval-k",
        "4",
        "--eval-n",
        "10",
        "--out",
        out.to_str().unwrap(),
    ];
    let with = |extra: &[&str]| run(&[&common[..], extra].concat());
    for (devices, names) in [("2", "flex, flex"), ("flex,ndarray", "flex, ndarray")] {
        let o = with(&["--devices", devices, "--batch-size", "20"]);
        let text = stdout_stderr(&o);
        assert!(o.status.success(), "--devices {devices}:\n{text}");
        assert!(text.contains(&format!("devices: {names}")), "{text}");
        for line in ["epoch   1/2: train loss", "epoch   2/2: train loss"] {
            assert!(
                text.contains(line),
                "--devices {devices}: no {line:?}:\n{text}"
            );
        }
        let m = metrics(&out);
        assert_eq!(m.len(), 3, "two epochs and the final line: {m:?}");
        for epoch in &m[..2] {
            for key in ["train_loss", "test_elbo", "test_elbo_ema", "seconds"] {
                assert!(
                    epoch[key].as_f64().is_some_and(f64::is_finite),
                    "--devices {devices}: {key} in {epoch}"
                );
            }
        }
        let ll = m[2]["test_log_likelihood"].as_f64().unwrap();
        assert!(ll.is_finite() && ll < 0.0, "test log-likelihood {ll}");
        assert_eq!(m[2]["weights"], "averaged", "{}", m[2]);
        for p in [
            "training_curve.png",
            "reconstructions.png",
            "samples.png",
            "latent.png",
            "manifold.png",
        ] {
            assert_png(&out.join(p));
        }
        // The checkpoint of the last epoch (`devices_checkpoint_and_resume_across_device_counts`
        // resumes such checkpoints).
        for file in ["state.json", "model.bpk", "ema.bpk", "optim.bpk"] {
            assert!(out.join("checkpoint").join(file).exists(), "{file}");
        }
        assert_eq!(checkpoint_state(&out)["epoch"], 2);
    }
    for (extra, words) in [
        (&["--devices", "1"][..], &["--devices", "at least 2"][..]),
        (
            &["--devices", "flex,tpu"],
            &["--devices", "unknown device", "tpu"],
        ),
        (
            &["--devices", "flex,ndarray", "--device", "ndarray"],
            &["--device and a --devices list"],
        ),
        (
            &["--devices", "3", "--batch-size", "2"],
            &["--batch-size 2", "3 devices"],
        ),
    ] {
        let o = with(extra);
        let text = stdout_stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?} should fail:\n{text}");
        for w in words {
            assert!(text.contains(w), "{extra:?}: should mention {w:?}:\n{text}");
        }
    }
    for d in [data, out] {
        std::fs::remove_dir_all(d).ok();
    }
}

/// A checkpoint's `state.json`.
fn checkpoint_state(out: &Path) -> serde_json::Value {
    let path = out.join("checkpoint/state.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The step counts of the optimizer (Adam) in a checkpoint's `optim.bpk`, one per parameter:
/// the scalars `<parameter id>.momentum.time` of the burnpack file's CBOR header (after the
/// magic number `BURN`, a u16 version and the header's u32 length, little-endian).
fn adam_steps(out: &Path) -> Vec<u64> {
    let path = out.join("checkpoint/optim.bpk");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        &bytes[..4],
        b"NRUB",
        "{}: not a burnpack file",
        path.display()
    );
    let len = u32::from_le_bytes(bytes[6..10].try_into().unwrap()) as usize;
    let header: ciborium::Value = ciborium::from_reader(&bytes[10..10 + len]).unwrap();
    let field = |map: &ciborium::Value, key: &str| {
        map.as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some(key)))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{}: no {key:?} in {map:?}", path.display()))
    };
    let scalars = field(&header, "scalars");
    scalars
        .as_map()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.as_text().is_some_and(|k| k.ends_with(".momentum.time")))
        .map(|(_, v)| {
            let n = field(v, "UInt").as_integer().unwrap();
            u64::try_from(n).unwrap()
        })
        .collect()
}

/// `--devices` writes the single-device run's checkpoint after every epoch, and `--resume`
/// continues a checkpoint with or without `--devices`, on any number of devices: 1 epoch on two
/// flex devices, resumed to 2 on two flex devices, to 3 on one device, to 4 on flex and ndarray.
/// (A data-parallel run is not reproducible bit for bit, so this checks the progress, not the
/// numbers: the epochs once each and in order, the optimizer's and the weight average's step
/// counts going on from the checkpoint, and the training loss going on from the trained
/// weights.)
#[test]
fn devices_checkpoint_and_resume_across_device_counts() {
    let data = temp_dir("dp-resume-data");
    synthetic_mnist(&data, 120, 40);
    let out = temp_dir("dp-resume-out");
    // 120 images in global batches of 20: 6 optimizer steps per epoch.
    let steps_per_epoch = 6;
    let common = [
        "--model",
        "mlp",
        "--data-dir",
        data.to_str().unwrap(),
        "--batch-size",
        "20",
        "--test-n",
        "40",
        "--eval-k",
        "0",
        "--out",
        out.to_str().unwrap(),
    ];
    let runs = [
        (1, Some("2")),
        (2, Some("2")),
        (3, None),
        (4, Some("flex,ndarray")),
    ];
    for (epochs, devices) in runs {
        let epochs_flag = epochs.to_string();
        let mut args = common.to_vec();
        args.extend(["--epochs", &epochs_flag]);
        if let Some(d) = devices {
            args.extend(["--devices", d]);
        }
        if epochs > 1 {
            args.push("--resume");
        }
        let o = run(&args);
        let text = stdout_stderr(&o);
        let what = format!("--epochs {epochs}, --devices {devices:?}");
        assert!(o.status.success(), "{what}:\n{text}");
        if epochs > 1 {
            let resumed = format!("resuming after epoch {}", epochs - 1);
            assert!(text.contains(&resumed), "{what}: no {resumed:?}:\n{text}");
        }
        // This run trained one epoch, the last one.
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(": train loss"))
            .collect();
        let want = format!("epoch {epochs:>3}/{epochs}: train loss");
        assert!(
            lines.len() == 1 && lines[0].starts_with(&want),
            "{what}: the epoch lines {lines:?}, not one {want:?}"
        );
        let ckpt = out.join("checkpoint");
        for file in ["state.json", "model.bpk", "ema.bpk", "optim.bpk"] {
            assert!(ckpt.join(file).exists(), "{what}: no {file}");
        }
        let leftovers: Vec<_> = std::fs::read_dir(&ckpt)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
        let state = checkpoint_state(&out);
        let steps = epochs * steps_per_epoch;
        assert_eq!(state["epoch"], epochs, "{what}: {state}");
        // The weight average and the optimizer went on from the checkpoint's step counts (a
        // new average or optimizer would count only this run's 6 steps).
        assert_eq!(state["ema_updates"], steps, "{what}: {state}");
        let adam = adam_steps(&out);
        assert!(!adam.is_empty(), "{what}: no step count in optim.bpk");
        assert!(
            adam.iter().all(|&t| t == steps as u64),
            "{what}: Adam's step counts {adam:?}, not {steps}"
        );
        // metrics.jsonl: the epochs 1..=epochs, once each, in order.
        let m = metrics(&out);
        let numbers: Vec<u64> = m.iter().map(|l| l["epoch"].as_u64().unwrap()).collect();
        assert_eq!(numbers, (1..=epochs as u64).collect::<Vec<_>>(), "{what}");
    }
    // The resumed runs trained on from the checkpoint's weights: every epoch's training loss
    // is below the one before (by about 170, 80 and 25 nats here; a new model would start
    // over near the first epoch's).
    let m = metrics(&out);
    let loss = |i: usize| m[i]["train_loss"].as_f64().unwrap();
    for (i, line) in m.iter().enumerate().skip(1) {
        assert!(
            loss(i) < loss(i - 1),
            "epoch {}: train loss {} against epoch {}'s {}:\n{m:?}",
            i + 1,
            loss(i),
            i,
            loss(i - 1)
        );
        assert!(line["test_elbo_ema"].is_f64(), "{line}");
    }
    for d in [data, out] {
        std::fs::remove_dir_all(d).ok();
    }
}
