"""The command line, timing loop and JSON result shared by peer_torch.py and peer_tf.py.

Nothing here imports torch or TensorFlow: the thread counts have to be in the environment
before either library is imported, so the peer scripts parse their arguments first.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

# The result line is the only thing written to the real stdout; everything else printed
# (library banners, warnings, diagnostics) is sent to stderr.
_RESULT = sys.stdout


def parse_args(description):
    """Parses the common CLI and sends any further `print` output to stderr."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--list", action="store_true", help="print the workload names and exit")
    parser.add_argument("--workload", help="the workload to run")
    parser.add_argument("--reps", type=int, default=20, help="timed iterations (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    args = parser.parse_args()
    if not args.list and args.workload is None:
        parser.error("one of --list or --workload NAME is required")
    if args.reps < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--reps and --threads must be >= 1, --warmup >= 0")
    sys.stdout = sys.stderr
    return args


def limit_threads(threads):
    """Caps the native thread pools; call before importing the numerical library."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)


def workloads(distributions, forward, forward_backward, **models):
    """The workload table: `<name>_fwd` and `<name>_fwdbwd` for each distribution spec, then the
    model workloads, in the order of `examples/src/workloads.rs`."""
    table = {}
    for name, spec in distributions.items():
        table[name + "_fwd"] = lambda spec=spec: forward(*spec)
        table[name + "_fwdbwd"] = lambda spec=spec: forward_backward(*spec)
    table.update(models)
    return table


def run(args, lib, version, workloads):
    """`workloads` maps each name to a builder returning `(step, items_per_iter)`.

    `step()` performs one complete iteration (its result fully computed when it returns).
    Prints the names for --list, else runs the workload and prints one line of JSON.
    """
    if args.list:
        _RESULT.write("".join(name + "\n" for name in workloads))
        _RESULT.flush()
        return
    if args.workload not in workloads:
        sys.exit(f"unknown workload {args.workload!r}; --list shows the names")

    step, items = workloads[args.workload]()
    for _ in range(args.warmup):
        step()
    times_ms = []
    for _ in range(args.reps):
        start = time.perf_counter()
        step()
        times_ms.append((time.perf_counter() - start) * 1e3)

    result = {
        "lib": lib,
        "version": version,
        "workload": args.workload,
        "median_ms": statistics.median(times_ms),
        "min_ms": min(times_ms),
        "times_ms": times_ms,
        "items_per_iter": int(items),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    _RESULT.write(json.dumps(result) + "\n")
    _RESULT.flush()
