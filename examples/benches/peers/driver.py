"""Side-by-side benchmark driver: burn-probability vs PyTorch vs TensorFlow + TFP.

For every round and every workload it runs ours, then torch, then TF (A B C A B C ...), each in
a fresh process that prints one JSON line (median of --reps timed iterations after --warmup),
so that a slow spell of a noisy machine hits all three alike. The reported time of a workload
is the median over rounds of the per-process medians; the speed ratio is peer time / our time
(>= 1.0 means ours is faster).

    cargo build --release --example bench_workloads
    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install -r examples/benches/peers/requirements.txt
    /tmp/peers/bin/python examples/benches/peers/driver.py --rounds 3 --markdown docs/bench-table.md

See docs/performance.md.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
OURS = os.path.join(ROOT, "target", "release", "examples", "bench_workloads")

# Float32 FLOP per image of one training step (forward + backward), from the count.
MFLOP_PER_IMAGE = {"train_conv": 135.0, "train_mlp": 2.5, "train_iwae": 63.0, "iwae_bound_k50": 63.0}
PEAK_GFLOPS = 345.0  # 2 cores with AVX-512 (2 FMA units x 16 lanes x 2 flops x ~2.7 GHz x 2)


def run(cmd, env):
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    line = [l for l in out.stdout.splitlines() if l.startswith("{")][-1]
    result = json.loads(line)
    result["wall_s"] = time.time() - t0
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workloads", default="", help="comma-separated subset (default: all)")
    ap.add_argument("--peers", default="torch,tf", help="comma-separated subset of torch,tf")
    ap.add_argument("--markdown", default="", help="also write the table to this file")
    ap.add_argument("--json", default="", help="also write every measurement to this file")
    ap.add_argument("--peer-malloc", action="store_true",
                    help="give the peers the glibc malloc settings that ours sets in code "
                         "(examples/src/alloc.rs): no mmap below 32 MiB, no heap trimming")
    args = ap.parse_args()

    if not os.path.exists(OURS):
        raise SystemExit(f"{OURS} not found: run `cargo build --release --example bench_workloads` first")
    env = dict(os.environ)
    env["RAYON_NUM_THREADS"] = str(args.threads)
    peer_env = dict(env)
    if args.peer_malloc:
        peer_env["MALLOC_MMAP_THRESHOLD_"] = str(32 << 20)
        peer_env["MALLOC_TRIM_THRESHOLD_"] = str(2**31 - 1)
    names = subprocess.run([OURS, "--list"], capture_output=True, text=True, check=True).stdout.split()
    if args.workloads:
        wanted = args.workloads.split(",")
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise SystemExit(f"unknown workloads {unknown}; expected some of {names}")
        names = wanted
    peers = [p for p in args.peers.split(",") if p]
    libs = ["ours"] + peers

    def command(lib, name):
        distributions = ("normal", "logistic", "binconcrete", "bernoulli", "categorical", "relaxed",
                         "exprelaxed", "gumbel", "laplace", "lognormal", "studentt", "cauchy",
                         "exponential", "uniform", "halfnormal", "cb", "poisson", "binomial",
                         "geometric", "gamma", "beta", "dirichlet", "mvn_tril", "mixture")
        model = not any(name.startswith(p) for p in distributions)
        reps, warmup = ("10", "3") if model else ("20", "3")
        if lib == "ours":
            return [OURS, "--workload", name, "--reps", reps, "--warmup", warmup]
        script = os.path.join(HERE, f"peer_{lib}.py")
        return [sys.executable, script, "--workload", name, "--reps", reps, "--warmup", warmup,
                "--threads", str(args.threads)]

    results = {(lib, n): [] for lib in libs for n in names}
    for r in range(args.rounds):
        for n in names:
            for lib in libs:
                res = run(command(lib, n), env if lib == "ours" else peer_env)
                results[(lib, n)].append(res)
                print(f"round {r + 1}/{args.rounds} {n:32s} {lib:6s} {res['median_ms']:10.3f} ms",
                      file=sys.stderr, flush=True)

    versions = {lib: results[(lib, names[0])][0]["version"] for lib in libs}
    head = ["workload", "items/iter"] + [f"{lib} ms" for lib in libs]
    head += [f"ours vs {p}" for p in peers] + ["ours vs best", "ours items/s", "ours % of peak", "peak RSS MiB (" + "/".join(libs) + ")"]
    rows = []
    records = []
    for n in names:
        med = {lib: statistics.median(x["median_ms"] for x in results[(lib, n)]) for lib in libs}
        rss = {lib: max(x["peak_rss_mb"] for x in results[(lib, n)]) for lib in libs}
        items = results[("ours", n)][0]["items_per_iter"]
        ratios = [med[p] / med["ours"] for p in peers]
        best = min(ratios) if ratios else float("nan")
        per_s = items / med["ours"] * 1e3
        peak = ""
        if n in MFLOP_PER_IMAGE:
            peak = f"{per_s * MFLOP_PER_IMAGE[n] / 1e3 / PEAK_GFLOPS * 100:.1f}%"
        rows.append([n, str(items)] + [f"{med[lib]:.2f}" for lib in libs] + [f"{x:.2f}" for x in ratios]
                    + [f"**{best:.2f}**", f"{per_s:,.0f}", peak, " / ".join(f"{rss[lib]:.0f}" for lib in libs)])
        records.append({"workload": n, "items": items, "median_ms": med, "peak_rss_mb": rss,
                        "rounds": {lib: [x["median_ms"] for x in results[(lib, n)]] for lib in libs}})

    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, {args.threads} threads per library; "
        f"{args.rounds} rounds, alternating {' / '.join(libs)} per workload"
        + ("; the peers with ours' malloc settings (--peer-malloc)." if args.peer_malloc else "."),
        "Versions: " + "; ".join(f"{lib}: {v}" for lib, v in versions.items()) + ".",
        "Times are medians (ms per iteration); 'ours vs X' = X's time / our time (>= 1 means ours is faster).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ] + ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)


if __name__ == "__main__":
    main()
