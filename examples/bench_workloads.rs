//! Runs one benchmark workload and prints its timings as one JSON line: the program that the
//! side-by-side driver (`examples/benches/peers/driver.py`) runs for burn-probability, alternating with
//! the PyTorch and TensorFlow Probability peers. See `docs/performance.md`.
//!
//! ```sh
//! cargo build --release --example bench_workloads
//! ./target/release/examples/bench_workloads --list
//! ./target/release/examples/bench_workloads --workload train_conv --reps 20 --warmup 3
//! ```

use burn_probability_examples::{alloc, workloads};

use std::time::Instant;

use burn::tensor::Device;
use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// burn's default CPU backend.
    Flex,
    /// burn's ndarray backend (deprecated upstream).
    Ndarray,
}

/// Time one workload (median over `--reps` iterations after `--warmup` untimed ones).
#[derive(Parser, Debug)]
struct Args {
    /// Print the workload names and exit.
    #[arg(long)]
    list: bool,
    /// The workload to run (see --list).
    #[arg(long, required_unless_present = "list")]
    workload: Option<String>,
    /// Timed iterations.
    #[arg(long, default_value_t = 20)]
    reps: usize,
    /// Untimed iterations before timing.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// The backend.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    backend: Backend,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run every formula as a chain of plain burn operations instead of the crate's fused
    /// CPU kernels (for comparing the two).
    #[arg(long)]
    no_fused: bool,
}

/// The process's peak resident memory in MiB (Linux), or NaN elsewhere.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    // The same allocator settings as the examples (see src/alloc.rs).
    alloc::keep_freed_memory();
    // And, as the examples (and TensorFlow by default), subnormal floats flushed to zero.
    burn_flex_kernels::set_flush_denormal(true);
    let args = Args::parse();
    if args.list {
        for name in workloads::all_names() {
            println!("{name}");
        }
        return;
    }
    let name = args
        .workload
        .expect("clap requires --workload without --list");
    if args.reps == 0 {
        eprintln!("error: --reps must be at least 1");
        std::process::exit(2);
    }
    let device = match args.backend {
        Backend::Flex => Device::flex(),
        #[allow(deprecated)]
        Backend::Ndarray => Device::ndarray(),
    };
    device.seed(args.seed);
    burn_flex_kernels::set_fused_kernels(!args.no_fused);
    let Some(mut w) = workloads::build(&name, &device) else {
        eprintln!(
            "error: unknown --workload {name:?}; expected one of: {}",
            workloads::all_names().join(", ")
        );
        std::process::exit(2);
    };
    for _ in 0..args.warmup {
        (w.run)();
    }
    let mut times: Vec<f64> = (0..args.reps)
        .map(|_| {
            let t = Instant::now();
            (w.run)();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let json_times = times
        .iter()
        .map(|t| format!("{t:.4}"))
        .collect::<Vec<_>>()
        .join(", ");
    times.sort_by(|a, b| a.total_cmp(b));
    let median = if times.len() % 2 == 1 {
        times[times.len() / 2]
    } else {
        0.5 * (times[times.len() / 2 - 1] + times[times.len() / 2])
    };
    println!(
        "{{\"lib\": \"burn-probability\", \"version\": \"burn 0.22.1 {:?}{}\", \"workload\": \"{}\", \"median_ms\": {median:.4}, \"min_ms\": {:.4}, \"times_ms\": [{json_times}], \"items_per_iter\": {}, \"peak_rss_mb\": {:.1}}}",
        args.backend,
        if burn_flex_kernels::fused_kernels_enabled() {
            " fused"
        } else {
            ""
        },
        w.name,
        times[0],
        w.items,
        peak_rss_mb()
    );
}
