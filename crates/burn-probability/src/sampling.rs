//! Samplers for the families whose draws are not a fixed transform of parameter-free noise:
//! Gamma variates (Marsaglia and Tsang's squeeze method), Poisson and binomial counts
//! (inversion for small means, Hörmann's transformed rejection, PTRS and BTRS, for large
//! ones).
//!
//! Each sampler is written in burn operations and vectorized: every round proposes a
//! candidate for every element, keeps the first accepted one, and stops when all elements
//! have one (each round accepts most elements, so a handful of rounds is typical). The draws
//! follow burn's seeded generator and carry no gradient.
//!
//! # Example
//! ```
//! use burn::tensor::{Device, Tensor};
//! use burn_probability::sampling;
//!
//! let device = Device::flex();
//! device.seed(7);
//! let g = sampling::standard_gamma(Tensor::<1>::full([10_000], 3.0, &device));
//! let mean: f32 = g.mean().into_scalar();
//! assert!((mean - 3.0).abs() < 0.1);                     // E = α, sd of the mean 0.017
//! ```

use burn::tensor::{Bool, Tensor};

use crate::math::{log_poisson_mass, log1p};
use crate::noise::{standard_normal, uniform_open};

/// Rounds after which a rejection sampler gives up on the remaining elements and keeps its
/// last candidate: with acceptance above 0.9 per round, never reached in practice (the chance
/// that one element needs more is below 10⁻⁶⁰).
const MAX_ROUNDS: usize = 64;

/// Runs `propose` (a candidate and whether it is accepted, for every element) until every
/// element has an accepted candidate.
fn rejection<const D: usize>(
    mut propose: impl FnMut() -> (Tensor<D>, Tensor<D, Bool>),
) -> Tensor<D> {
    let (mut out, mut done) = propose();
    for _ in 0..MAX_ROUNDS {
        if done.clone().all().into_scalar::<bool>() {
            break;
        }
        let (candidate, accepted) = propose();
        let take = accepted.clone().bool_and(done.clone().bool_not());
        out = out.mask_where(take, candidate);
        done = done.bool_or(accepted);
    }
    out
}

/// Draws `Gamma(α, 1)` for each element of `concentration` (`α > 0`).
///
/// Marsaglia and Tsang (2000): with `d = α − ⅓` and `c = 1/√(9d)`, propose `d·v`,
/// `v = (1 + c z)³`, `z` standard normal, and accept when `ln u < z²/2 + d − d v + d ln v`.
/// For `α < 1` the draw is `Gamma(α + 1)·u^{1/α}`. Draws are at least the smallest positive
/// normal float32 (as in PyTorch): for small `α` the variate underflows (below 1e-38 with
/// probability 1.3% at `α = 0.05`), and a zero would put the sample where the density is
/// infinite. Not differentiable: the implicit gradient is the family's business.
///
/// On float32 `flex` tensors (with the `fused` feature) one kernel pass runs the same method
/// per element, looping until accepted, on the counter-based generator of the fused noise.
pub fn standard_gamma<const D: usize>(concentration: Tensor<D>) -> Tensor<D> {
    let alpha = match crate::fused::standard_gamma(concentration.detach()) {
        Ok(draw) => return draw,
        Err(alpha) => alpha,
    };
    let device = alpha.device();
    let dims: [usize; D] = alpha.dims();
    let boost = alpha.clone().lower_elem(1.0);
    let shape = alpha.clone() + boost.clone().float();
    let d = shape - 1.0 / 3.0;
    let c = (d.clone() * 9.0).sqrt().recip();
    let g = rejection(|| {
        let z = standard_normal(dims, &device);
        let u = uniform_open(dims, &device);
        let base = c.clone() * z.clone() + 1.0;
        let positive = base.clone().greater_elem(0.0);
        let v = base.clamp_min(1e-30).powi_scalar(3);
        let bound =
            z.square() * 0.5 + d.clone() - d.clone() * v.clone() + d.clone() * v.clone().log();
        let accepted = positive.bool_and(u.log().lower(bound));
        (d.clone() * v, accepted)
    });
    let u = uniform_open(dims, &device);
    let boosted = (g.clone().log() + u.log() / alpha.clone()).exp();
    g.mask_where(boost, boosted).clamp_min(f32::MIN_POSITIVE)
}

/// Draws `Poisson(λ)` counts (as whole-number floats) for each element of `rate` (`λ ≥ 0`).
///
/// Inversion by sequential search for `λ < 10`; Hörmann's PTRS (transformed rejection with
/// squeeze, 1993) for `λ ≥ 10`, whose acceptance test uses the saddle-point log-mass.
pub fn poisson<const D: usize>(rate: Tensor<D>) -> Tensor<D> {
    const SWITCH: f32 = 10.0;
    let rate = rate.detach();
    let device = rate.device();
    let dims: [usize; D] = rate.dims();
    let small = rate.clone().lower_elem(SWITCH);

    // Inversion, on rates clamped below the switch.
    let lam = rate.clone().clamp_max(SWITCH);
    let u = uniform_open(dims, &device);
    let mut k = lam.zeros_like();
    let mut p = (-lam.clone()).exp();
    let mut cdf = p.clone();
    for i in 1..200 {
        let more = u.clone().greater(cdf.clone());
        if !more.clone().any().into_scalar::<bool>() {
            break;
        }
        k = k + more.float();
        p = p * lam.clone() / i as f64;
        cdf = cdf + p.clone();
    }

    // PTRS, on rates clamped above the switch.
    let lam = rate.clamp_min(SWITCH);
    let b = lam.clone().sqrt() * 2.53 + 0.931;
    let a = b.clone() * 0.02483 - 0.059;
    let inv_alpha = (b.clone() - 3.4).recip() * 1.1328 + 1.1239;
    let vr = (b.clone() - 2.0).recip() * -3.6224 + 0.9277;
    let large = rejection(|| {
        let uu = uniform_open(dims, &device) - 0.5;
        let v = uniform_open(dims, &device);
        let us = -uu.clone().abs() + 0.5;
        let count = ((a.clone() * 2.0 / us.clone() + b.clone()) * uu + lam.clone() + 0.43).floor();
        let fast = us
            .clone()
            .greater_equal_elem(0.07)
            .bool_and(v.clone().lower_equal(vr.clone()));
        let reject = count.clone().lower_elem(0.0).bool_or(
            us.clone()
                .lower_elem(0.013)
                .bool_and(v.clone().greater(us.clone())),
        );
        let lhs = v.log() + inv_alpha.clone().log() - (a.clone() / us.square() + b.clone()).log();
        let rhs = log_poisson_mass(count.clone().clamp_min(0.0), lam.clone());
        let accepted = fast.bool_or(reject.bool_not().bool_and(lhs.lower_equal(rhs)));
        (count.clamp_min(0.0), accepted)
    });
    large.mask_where(small, k)
}

/// Draws `Binomial(n, p)` counts (as whole-number floats) for each element of `total_count`
/// (`n`, whole numbers) and `probs` (`p ∈ [0, 1]`).
///
/// With `p' = min(p, 1 − p)` (and the count reflected, `n − k`, where `p > ½`): inversion by
/// sequential search where `n p' < 10`, Hörmann's BTRS (transformed rejection with squeeze,
/// 1993) elsewhere, whose acceptance ratio `P(k)/P(m)` uses the saddle-point log-mass.
pub fn binomial<const D: usize>(total_count: Tensor<D>, probs: Tensor<D>) -> Tensor<D> {
    const SWITCH: f32 = 10.0;
    let n = total_count.detach();
    let probs = probs.detach();
    let device = n.device();
    let dims: [usize; D] = n.dims();
    let flip = probs.clone().greater_elem(0.5);
    let p = probs
        .clone()
        .mask_where(flip.clone(), (-probs).add_scalar(1.0));
    let mean = n.clone() * p.clone();
    let small = mean.lower_elem(SWITCH);

    // Inversion on p clamped so that n p' stays below the switch.
    let ps = p
        .clone()
        .mask_where(small.clone().bool_not(), p.zeros_like());
    let u = uniform_open(dims, &device);
    let ratio = ps.clone() / (-ps.clone()).add_scalar(1.0);
    let mut k = n.zeros_like();
    let mut mass = (n.clone() * log1p(-ps.clone())).exp();
    let mut cdf = mass.clone();
    let max_n = n.clone().max().into_scalar::<f64>() as usize;
    for i in 0..max_n {
        let more = u
            .clone()
            .greater(cdf.clone())
            .bool_and(k.clone().lower(n.clone()));
        if !more.clone().any().into_scalar::<bool>() {
            break;
        }
        k = k + more.float();
        mass = mass * (n.clone() - i as f64) / (i as f64 + 1.0) * ratio.clone();
        cdf = cdf + mass.clone();
    }

    // BTRS on p clamped so that n p' is at least the switch (n ≥ 20 there).
    let pl = p
        .clone()
        .mask_where(small.clone(), (n.clone().clamp_min(20.0)).recip() * 10.0);
    let nl = n.clone().clamp_min(20.0);
    let q = (-pl.clone()).add_scalar(1.0);
    let spq = (nl.clone() * pl.clone() * q.clone()).sqrt();
    let b = spq.clone() * 2.53 + 1.15;
    let a = b.clone() * 0.0248 + pl.clone() * 0.01 - 0.0873;
    let c = nl.clone() * pl.clone() + 0.5;
    let vr = b.clone().recip() * -4.2 + 0.92;
    let alpha = (b.clone().recip() * 5.1 + 2.83) * spq;
    let m = ((nl.clone() + 1.0) * pl.clone()).floor();
    let log_mass = |k: Tensor<D>| {
        crate::binomial::log_binomial_mass(k, nl.clone(), pl.clone().log(), q.clone().log())
    };
    let log_mass_m = log_mass(m.clone());
    let large = rejection(|| {
        let uu = uniform_open(dims, &device) - 0.5;
        let v = uniform_open(dims, &device);
        let us = -uu.clone().abs() + 0.5;
        let count = ((a.clone() * 2.0 / us.clone() + b.clone()) * uu + c.clone()).floor();
        let outside = count
            .clone()
            .lower_elem(0.0)
            .bool_or(count.clone().greater(nl.clone()));
        let fast = us
            .clone()
            .greater_equal_elem(0.07)
            .bool_and(v.clone().lower_equal(vr.clone()));
        let lhs = (v * alpha.clone() / (a.clone() / us.square() + b.clone())).log();
        let safe = count
            .clone()
            .clamp_min(0.0)
            .mask_where(outside.clone(), m.clone());
        let rhs = log_mass(safe.clone()) - log_mass_m.clone();
        let accepted = outside
            .bool_not()
            .bool_and(fast.bool_or(lhs.lower_equal(rhs)));
        (safe, accepted)
    });
    let draw = large.mask_where(small, k);
    draw.clone().mask_where(flip, n - draw)
}
