"""Writes crates/burn-probability/tests/data/special_functions.json: mpmath (40 digits)
values of lgamma, digamma and trigamma on a dense float32 grid over (1e-3, 1e4), and of the
regularized incomplete gamma and beta functions at chosen points, and of the implicit
reparameterization gradients of Gamma and Beta samples (dz/dα = −(∂P/∂α)/p, [dz/da, dz/db] =
−(∂I/∂a, ∂I/∂b)/p) at float32 quantiles over the bulk and both tails, for the math module's
tests. The gradients are computed twice, by mpmath's numerical derivative of the incomplete
function and by quadrature of the density's parameter derivative (over the nearer tail, in
log space), and must agree to 1e-12.

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
def bisect(F, u, lo, hi):
    for _ in range(70):
        mid = mp.sqrt(lo * hi)
        if F(mid) < u:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def gamma_grad(a, z):
    """dz/dα two ways: numerical derivative of P, and quadrature of ∂p/∂α over the nearer tail."""
    dens = mp.exp((a - 1) * mp.log(z) - z - mp.loggamma(a))
    by_diff = -mp.diff(lambda al: mp.gammainc(al, 0, z, regularized=True), a) / dens
    f = lambda s: mp.exp((a - 1) * mp.log(s) - s - mp.loggamma(a)) * (mp.log(s) - mp.digamma(a))
    if mp.gammainc(a, 0, z, regularized=True) < 0.5:
        lz = mp.log(z)
        d = mp.quad(lambda t: f(mp.exp(t)) * mp.exp(t), [-mp.inf, lz - 40 / a, lz - 5 / a, lz])
    else:
        d = -mp.quad(f, [z, z + mp.sqrt(a) + 1, mp.inf])
    by_quad = -d / dens
    assert abs(by_diff - by_quad) <= 1e-12 * abs(by_diff), (a, z, by_diff, by_quad)
    return float(by_diff)


def beta_grad(a, b, z):
    """[dz/da, dz/db] two ways, as gamma_grad."""
    lB = mp.log(mp.beta(a, b))
    dens = mp.exp((a - 1) * mp.log(z) + (b - 1) * mp.log(1 - z) - lB)
    ga = -mp.diff(lambda p: mp.betainc(p, b, 0, z, regularized=True), a) / dens
    gb = -mp.diff(lambda q: mp.betainc(a, q, 0, z, regularized=True), b) / dens
    dpa, dpb = mp.digamma(a) - mp.digamma(a + b), mp.digamma(b) - mp.digamma(a + b)
    if mp.betainc(a, b, 0, z, regularized=True) < 0.5:
        # s = e^t
        p = lambda t: mp.exp((a - 1) * t + (b - 1) * mp.log1p(-mp.exp(t)) - lB) * mp.exp(t)
        lz = mp.log(z)
        pts = [-mp.inf, lz - 40 / a, lz - 5 / a, lz]
        da = mp.quad(lambda t: p(t) * (t - dpa), pts)
        db = mp.quad(lambda t: p(t) * (mp.log1p(-mp.exp(t)) - dpb), pts)
    else:
        # s = 1 − e^t
        p = lambda t: mp.exp((a - 1) * mp.log1p(-mp.exp(t)) + (b - 1) * t - lB) * mp.exp(t)
        ly = mp.log(1 - z)
        pts = [-mp.inf, ly - 40 / b, ly - 5 / b, ly]
        da = -mp.quad(lambda t: p(t) * (mp.log1p(-mp.exp(t)) - dpa), pts)
        db = -mp.quad(lambda t: p(t) * (t - dpb), pts)
    for g, q in ((ga, -da / dens), (gb, -db / dens)):
        assert abs(g - q) <= 1e-12 * abs(g), (a, b, z, g, q)
    return float(ga), float(gb)


out["gamma_grad"] = []
for a in [0.05, 0.1, 0.3, 0.7, 1.0, 1.5, 3.0, 8.0, 20.0, 50.0, 120.0, 200.0]:
    a = f32(a)
    for u in [1e-6, 1e-3, 0.05, 0.3, 0.5, 0.7, 0.95, 0.999, 1 - 1e-6]:
        mp.mp.dps = 20
        z = f32(bisect(lambda x: mp.gammainc(a, 0, x, regularized=True), u, mp.mpf("1e-300"), mp.mpf(a) * 10 + 200))
        mp.mp.dps = 40
        if z > 0:
            out["gamma_grad"].append([a, z, gamma_grad(mp.mpf(a), mp.mpf(z))])
out["beta_grad"] = []
for a, b in [(0.05, 0.05), (0.05, 2.0), (0.3, 0.3), (0.5, 8.0), (1.0, 1.0), (1.0, 3.0), (2.0, 0.4), (3.0, 5.0),
             (8.0, 1.5), (20.0, 20.0), (0.7, 200.0), (60.0, 0.8), (150.0, 80.0), (200.0, 200.0)]:
    a, b = f32(a), f32(b)
    for u in [1e-4, 0.05, 0.3, 0.5, 0.7, 0.95, 0.9999]:
        mp.mp.dps = 20
        F = lambda x: mp.betainc(a, b, 0, x, regularized=True)
        if u < 0.5:
            z = bisect(F, u, mp.mpf("1e-300"), mp.mpf(1) - mp.mpf("1e-30"))
        else:
            z = 1 - bisect(lambda y: 1 - F(1 - y), 1 - u, mp.mpf("1e-300"), mp.mpf(1))
        z = f32(z)
        mp.mp.dps = 40
        if 0 < z < 1:
            out["beta_grad"].append([a, b, z, *beta_grad(mp.mpf(a), mp.mpf(b), mp.mpf(z))])
json.dump(out, open("crates/burn-probability/tests/data/special_functions.json", "w"))
print(len(xs), "grid points")
