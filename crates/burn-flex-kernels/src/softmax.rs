//! The log-probability of one class per row under a softmax, `ℓ[r, c_r] − logsumexp(ℓ[r, ·])`,
//! and its gradient `g_r (1[j = c_r] − softmax(ℓ[r, ·])_j)`: the categorical log-mass of class
//! indices, one pass over the logits each way instead of burn's five (maximum, shift, `exp`,
//! sum, `log`) and a gather.
//!
//! The classes arrive as float whole numbers; any other value (negative, `≥ k`, fractional,
//! NaN) gives `−∞` and a zero gradient. Every row must hold a finite logit.

use crate::buffer::{assume_init, uninit};
use crate::reduce::per_task;
use crate::vmath::{exp, ln};
use core::mem::MaybeUninit;
use rayon::prelude::*;

/// The class `v` as a position in a row of `k`, or `None` if it is not a whole number in
/// `0..k`.
#[inline(always)]
fn class(v: f32, k: usize) -> Option<usize> {
    (v >= 0.0 && v < k as f32 && v.fract() == 0.0).then_some(v as usize)
}

/// `(max, ln Σ exp(ℓ − max))` of one row.
#[inline(always)]
fn shifted_log_sum(row: &[f32]) -> (f32, f32) {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let s: f32 = row.iter().map(|&l| exp(l - m)).sum();
    (m, ln(s))
}

#[inline(always)]
fn gather_run(
    logits: &[f32],
    k: usize,
    index: &[f32],
    out: &mut [MaybeUninit<f32>],
    norms: &mut [MaybeUninit<f32>],
) {
    for (((o, n), row), &v) in out
        .iter_mut()
        .zip(norms.iter_mut())
        .zip(logits.chunks_exact(k))
        .zip(index)
    {
        let (m, log_sum) = shifted_log_sum(row);
        let norm = m + log_sum;
        n.write(norm);
        o.write(match class(v, k) {
            Some(c) => row[c] - norm,
            None => f32::NEG_INFINITY,
        });
    }
}

multiversion!(
    fn gather_simd[](logits: &[f32], k: usize, index: &[f32], out: &mut [MaybeUninit<f32>], norms: &mut [MaybeUninit<f32>]) => gather_run
);

#[inline(always)]
fn grad_run(
    logits: &[f32],
    k: usize,
    index: &[f32],
    norms: &[f32],
    g: &[f32],
    out: &mut [MaybeUninit<f32>],
) {
    for ((((o, row), &v), &norm), &g) in out
        .chunks_exact_mut(k)
        .zip(logits.chunks_exact(k))
        .zip(index)
        .zip(norms)
        .zip(g)
    {
        let Some(c) = class(v, k) else {
            for o in o {
                o.write(0.0);
            }
            continue;
        };
        for (j, (o, &l)) in o.iter_mut().zip(row).enumerate() {
            let hit = if j == c { g } else { 0.0 };
            o.write(hit - g * exp(l - norm));
        }
    }
}

multiversion!(
    fn grad_simd[](logits: &[f32], k: usize, index: &[f32], norms: &[f32], g: &[f32], out: &mut [MaybeUninit<f32>]) => grad_run
);

/// `(out, norms)`: `out[r] = ℓ[r, c_r] − logsumexp(ℓ[r, ·])` for the `index.len()` rows of
/// `k` logits (`k > 0`, `logits.len() == index.len() · k`), and each row's normalizer
/// `norms[r] = logsumexp(ℓ[r, ·])`, which the gradient reuses.
pub(crate) fn log_softmax_gather(logits: &[f32], k: usize, index: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let rows = index.len();
    let (mut out, mut norms) = (uninit(rows), uninit(rows));
    let chunk = per_task(rows, k);
    out.par_chunks_mut(chunk)
        .zip(norms.par_chunks_mut(chunk))
        .zip(logits.par_chunks(chunk * k))
        .zip(index.par_chunks(chunk))
        .for_each(|(((out, norms), logits), index)| gather_simd(logits, k, index, out, norms));
    // SAFETY: the chunks cover `out` and `norms`, and each task writes one value of each per
    // row of its chunk.
    unsafe { (assume_init(out), assume_init(norms)) }
}

/// The gradient of [`log_softmax_gather`] with respect to the logits, given its normalizers
/// and the output's gradient `g` (one value per row).
pub(crate) fn log_softmax_gather_grad(
    logits: &[f32],
    k: usize,
    index: &[f32],
    norms: &[f32],
    g: &[f32],
) -> Vec<f32> {
    let rows = index.len();
    let mut out = uninit(rows * k);
    let chunk = per_task(rows, k);
    out.par_chunks_mut(chunk * k)
        .zip(logits.par_chunks(chunk * k))
        .zip(index.par_chunks(chunk))
        .zip(norms.par_chunks(chunk))
        .zip(g.par_chunks(chunk))
        .for_each(|((((out, logits), index), norms), g)| {
            grad_simd(logits, k, index, norms, g, out)
        });
    // SAFETY: the chunks cover `out`, and each task writes every slot of its rows.
    unsafe { assume_init(out) }
}
