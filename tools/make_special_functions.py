"""Writes crates/burn-probability/tests/data/special_functions.json: mpmath (40 digits)
values of lgamma, digamma and trigamma on a dense float32 grid over (1e-3, 1e4), and of the
regularized incomplete gamma and beta functions at chosen points, for the math module's tests.

Run: python3 tools/make_special_functions.py (needs mpmath).
"""
import json
import struct

import mpmath as mp

mp.mp.dps = 40


def f32(x):
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def grid(lo, hi, n):
    r = (hi / lo) ** (1.0 / (n - 1))
    pts = sorted({f32(lo * r**i) for i in range(n)})
    return [x for x in pts if lo <= x <= hi]


xs = grid(1e-3, 1e4, 4000)
# Points near the zeros of lgamma (1 and 2) and of digamma (1.4616...), densely.
xs += [f32(1 + d) for d in (-1e-2, -1e-3, 1e-3, 1e-2)] + [f32(2 + d) for d in (-1e-2, -1e-3, 1e-3, 1e-2)]
xs = sorted(set(xs))
out = {
    "generated_by": "tools/make_special_functions.py, mpmath %s, 40 digits" % mp.__version__,
    "lgamma": [[x, float(mp.loggamma(x))] for x in xs],
    "digamma": [[x, float(mp.digamma(x))] for x in xs],
    "trigamma": [[x, float(mp.polygamma(1, x))] for x in xs[::10]],
    "gammainc": [],
    "betainc": [],
}
for a, x in [(0.05, 0.01), (0.5, 0.2), (1.0, 2.0), (2.5, 1.0), (12.0, 8.2), (30.0, 35.0), (100.0, 90.0),
             (1000.0, 1030.0), (5000.0, 4900.0), (3.0, 20.0), (0.3, 4.0), (200.0, 200.0)]:
    a, x = f32(a), f32(x)
    out["gammainc"].append([a, x, float(mp.gammainc(a, 0, x, regularized=True)),
                            float(mp.gammainc(a, x, mp.inf, regularized=True))])
for a, b, x in [(0.5, 0.5, 0.3), (2.0, 3.0, 0.4), (23.0, 5.0, 0.75), (1.4426, 0.5, 1.846e-4), (13.35, 0.5, 0.9),
                (0.05, 0.05, 0.5), (200.0, 200.0, 0.52), (5.0, 0.5, 0.999), (100.0, 3.0, 0.95), (0.5, 15556.0, 3e-5),
                (15556.0, 0.5, 0.9997)]:
    a, b, x = f32(a), f32(b), f32(x)
    out["betainc"].append([a, b, x, float(mp.betainc(a, b, 0, x, regularized=True))])
json.dump(out, open("crates/burn-probability/tests/data/special_functions.json", "w"))
print(len(xs), "grid points")
