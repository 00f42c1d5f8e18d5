//! The `rates_vi` example as a user runs it: a short fit that prints every group and writes
//! the picture, and clear errors for bad flags.
//!
//! `cargo test` builds the examples before it runs the tests; this file runs the built binary
//! (see `mnist_vae_cli.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `rates_vi` binary: `target/<profile>/examples/rates_vi`, this test running from
/// `target/<profile>/deps/`.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary runs from target/<profile>/deps");
    let path = profile_dir.join("examples").join("rates_vi");
    assert!(
        path.exists(),
        "{} is missing: run `cargo test` (which builds the examples) rather than a single test target",
        path.display()
    );
    path
}

fn run(args: &[&str]) -> (Output, String) {
    let o = Command::new(binary())
        .args(args)
        .output()
        .expect("the example binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o, text)
}

#[test]
fn a_short_fit_prints_every_group_and_writes_the_picture() {
    let dir = std::env::temp_dir().join(format!("bp-rates-vi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.join("nested/posteriors.png");
    // 3 x 100 steps: short of the default's 3 x 400, enough for the means.
    let (o, text) = run(&[
        "--steps",
        "100",
        "--samples",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{text}");
    for w in ["pump 10", "Clemente", "Alvis", "rest of season"] {
        assert!(text.contains(w), "should mention {w:?}:\n{text}");
    }
    // The summary line: `rates <mean>% / <sd>%, averages <mean>% / <sd>%`.
    let line = text
        .lines()
        .find(|l| l.starts_with("largest relative error"))
        .unwrap_or_else(|| panic!("no summary line:\n{text}"));
    let pct: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.trim_end_matches(',').strip_suffix('%')?.parse().ok())
        .collect();
    assert_eq!(pct.len(), 4, "{line}");
    assert!(
        pct[0] < 10.0 && pct[2] < 10.0,
        "posterior means within 10% of the exact ones after 300 steps: {line}"
    );
    assert!(pct.iter().all(|p| p.is_finite()), "{line}");
    let decoder = png::Decoder::new(std::fs::File::open(&out).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert!(info.width > 500 && info.height > 300, "{info:?}");
    // Both curves are drawn: orange (255, 127, 14) and blue (31, 119, 180) pixels.
    let has = |c: [u8; 3]| buf.chunks(3).any(|p| p == c);
    assert!(has([255, 127, 14]) && has([31, 119, 180]));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_flags_are_clear_errors() {
    for (args, words) in [
        (vec!["--steps", "0"], vec!["--steps", "at least 1"]),
        (vec!["--samples", "0"], vec!["--samples", "at least 1"]),
        (vec!["--lr=-1"], vec!["--lr", "positive", "-1"]),
        (
            vec!["--rate-factor", "weibull"],
            vec!["invalid value", "weibull", "gamma", "lognormal"],
        ),
        (
            vec!["--out", "/proc/version/posteriors.png"],
            vec!["--out", "/proc/version/posteriors.png"],
        ),
        (vec!["--out", "/tmp"], vec!["--out", "folder"]),
    ] {
        let (o, text) = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {text}");
        for w in words {
            assert!(text.contains(w), "{args:?}: should mention {w:?}:\n{text}");
        }
    }
}
