//! The loops that run a [`Formula`] over float32 slices: suffix broadcasting, runs of at most
//! [`RUN`] elements, one task per rayon thread, and SIMD code chosen at run time (AVX-512,
//! AVX2 + FMA, or the baseline the crate is compiled for).

use super::ops::Formula;
use crate::buffer::{PARALLEL_MIN, assume_init, uninit};
use core::mem::MaybeUninit;
use rayon::prelude::*;

/// Elements per inner loop: long enough to vectorize well, short enough to stay in L1.
const RUN: usize = 4096;

/// An input of a fused operation: its contiguous values. Its length divides the output length,
/// and the input repeats every `len` elements of the output (its shape is a suffix of the output
/// shape after leading ones, the only broadcast this layer supports).
pub(crate) type Input<'a> = &'a [f32];

/// The length of the longest run starting at output position `i` (before `end`) that stays
/// contiguous in every input: it must not cross a multiple of the shortest input's length.
#[inline(always)]
fn run_len<const N: usize>(inputs: &[Input<'_>; N], i: usize, end: usize) -> usize {
    let period = inputs.iter().map(|x| x.len()).min().unwrap_or(end);
    let to_wrap = period - i % period;
    RUN.min(end - i).min(to_wrap)
}

#[inline(always)]
fn forward_run<F: Formula<N>, const N: usize>(
    f: &F,
    ins: [&[f32]; N],
    out: &mut [MaybeUninit<f32>],
) {
    let len = out.len();
    let ins = ins.map(|s| &s[..len]);
    for (i, o) in out.iter_mut().enumerate() {
        o.write(f.forward(core::array::from_fn(|k| ins[k][i])));
    }
}

#[inline(always)]
fn backward_run<F: Formula<N>, const N: usize>(
    f: &F,
    ins: [&[f32]; N],
    grad: &[f32],
    outs: [&mut [MaybeUninit<f32>]; N],
) {
    let len = grad.len();
    let ins = ins.map(|s| &s[..len]);
    let outs = outs.map(|s| &mut s[..len]);
    for i in 0..len {
        let d = f.backward(core::array::from_fn(|k| ins[k][i]), grad[i]);
        for k in 0..N {
            outs[k][i].write(d[k]);
        }
    }
}

multiversion!(
    fn forward_simd[F: Formula<N>, const N: usize](
        f: &F,
        ins: [&[f32]; N],
        out: &mut [MaybeUninit<f32>]
    )
        => forward_run
);
multiversion!(
    fn backward_simd[F: Formula<N>, const N: usize](
        f: &F,
        ins: [&[f32]; N],
        grad: &[f32],
        outs: [&mut [MaybeUninit<f32>]; N]
    ) => backward_run
);

/// Inputs sliced for the run `[i, i + len)` of the output.
#[inline(always)]
fn slices<'a, const N: usize>(inputs: &[Input<'a>; N], i: usize, len: usize) -> [&'a [f32]; N] {
    inputs.map(|x| {
        let start = i % x.len();
        &x[start..start + len]
    })
}

/// The length of each task's share of `n` elements: all of them below [`PARALLEL_MIN`], else
/// one share per rayon thread, rounded up to a multiple of [`RUN`].
fn task_len(n: usize) -> usize {
    if n < PARALLEL_MIN {
        return n.max(1);
    }
    let threads = rayon::current_num_threads().max(1);
    n.div_ceil(threads).div_ceil(RUN) * RUN
}

/// `out[i] = f(inputs at i)` for the `n` output positions.
pub(crate) fn forward<F: Formula<N>, const N: usize>(
    f: &F,
    inputs: [Input<'_>; N],
    n: usize,
) -> Vec<f32> {
    let mut out = uninit(n);
    let chunk = task_len(n);
    out.par_chunks_mut(chunk).enumerate().for_each(|(c, out)| {
        let base = c * chunk;
        let end = base + out.len();
        let mut i = base;
        while i < end {
            let len = run_len(&inputs, i, end);
            forward_simd(
                f,
                slices(&inputs, i, len),
                &mut out[i - base..i - base + len],
            );
            i += len;
        }
    });
    // SAFETY: the tasks' chunks cover `out`, and each task's runs cover its chunk.
    unsafe { assume_init(out) }
}

/// `out[r] = Σ_c f(inputs at r·cols + c)` for the `n / cols` rows (`cols > 0`): the formula's
/// values summed per row without writing them out. Each run goes through a buffer that stays
/// in L1, so the values cost no memory traffic. With fewer rows than threads, the values are
/// written and summed in two passes instead, which split over the threads by elements.
pub(crate) fn forward_row_sums<F: Formula<N>, const N: usize>(
    f: &F,
    inputs: [Input<'_>; N],
    n: usize,
    cols: usize,
) -> Vec<f32> {
    let rows = n / cols;
    if n >= PARALLEL_MIN && rows < 2 * rayon::current_num_threads() {
        return super::reduce::row_sums(&forward(f, inputs, n), cols);
    }
    let chunk = super::reduce::per_task(rows, cols);
    let mut out = uninit(rows);
    out.par_chunks_mut(chunk).enumerate().for_each(|(c, out)| {
        let mut buf = uninit(RUN.min(cols));
        for (j, o) in out.iter_mut().enumerate() {
            let (start, end) = ((c * chunk + j) * cols, (c * chunk + j + 1) * cols);
            let mut sum = 0.0f32;
            let mut i = start;
            while i < end {
                let len = run_len(&inputs, i, end);
                forward_simd(f, slices(&inputs, i, len), &mut buf[..len]);
                // SAFETY: `forward_simd` wrote the first `len` slots.
                let values =
                    unsafe { core::slice::from_raw_parts(buf.as_ptr().cast::<f32>(), len) };
                sum += super::reduce::sum(values);
                i += len;
            }
            o.write(sum);
        }
    });
    // SAFETY: the tasks' chunks cover `out`, and each task writes one sum per row of its chunk.
    unsafe { assume_init(out) }
}

/// The gradient that reaches a fused operation's output.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Grad<'a> {
    /// One value per output position.
    Elements(&'a [f32]),
    /// One value per row of `cols` positions: the output was summed per row
    /// ([`forward_row_sums`]).
    Rows(&'a [f32], usize),
}

impl Grad<'_> {
    /// Output positions.
    fn len(&self) -> usize {
        match *self {
            Grad::Elements(g) => g.len(),
            Grad::Rows(g, cols) => g.len() * cols,
        }
    }
}

/// `g · ∂f/∂inputₖ` at every output position, for the inputs with `needed[k]`, each reduced to
/// its input's length by summing over the repeats (the adjoint of the broadcast).
pub(crate) fn backward<F: Formula<N>, const N: usize>(
    f: &F,
    inputs: [Input<'_>; N],
    grad: Grad<'_>,
    needed: [bool; N],
) -> [Option<Vec<f32>>; N] {
    let n = grad.len();
    let mut full: [Vec<MaybeUninit<f32>>; N] =
        core::array::from_fn(|k| if needed[k] { uninit(n) } else { Vec::new() });
    let chunk = task_len(n);
    // Per task, the output chunk of each needed gradient (or nothing for the others).
    let mut per_task: Vec<[Option<&mut [MaybeUninit<f32>]>; N]> = (0..n.div_ceil(chunk))
        .map(|_| core::array::from_fn(|_| None))
        .collect();
    for (k, g) in full.iter_mut().enumerate() {
        for (t, part) in g.chunks_mut(chunk).enumerate() {
            per_task[t][k] = Some(part);
        }
    }
    per_task
        .into_par_iter()
        .enumerate()
        .for_each(|(c, mut outs)| {
            let base = c * chunk;
            let end = (base + chunk).min(n);
            let mut scratch: [Vec<MaybeUninit<f32>>; N] = core::array::from_fn(|k| {
                if outs[k].is_some() {
                    Vec::new()
                } else {
                    uninit(RUN)
                }
            });
            let mut row_grad = match grad {
                Grad::Elements(_) => Vec::new(),
                Grad::Rows(..) => vec![0.0f32; RUN],
            };
            let mut i = base;
            while i < end {
                let len = run_len(&inputs, i, end);
                // A run of the same row: its gradient is one value, copied to a buffer in L1.
                let (len, run_grad) = match grad {
                    Grad::Elements(g) => (len, &g[i..i + len]),
                    Grad::Rows(g, cols) => {
                        let len = len.min(cols - i % cols);
                        row_grad[..len].fill(g[i / cols]);
                        (len, &row_grad[..len])
                    }
                };
                // This run's window of each needed gradient, or scratch for the others.
                let mut windows = outs
                    .iter_mut()
                    .zip(scratch.iter_mut())
                    .map(|(o, s)| match o {
                        Some(o) => &mut o[i - base..i - base + len],
                        None => &mut s[..len],
                    });
                let run_outs: [&mut [MaybeUninit<f32>]; N] =
                    core::array::from_fn(|_| windows.next().expect("one window per input"));
                backward_simd(f, slices(&inputs, i, len), run_grad, run_outs);
                i += len;
            }
        });
    let mut k = 0;
    full.map(|g| {
        let len = inputs[k].len();
        let needed_k = needed[k];
        k += 1;
        if !needed_k {
            return None;
        }
        // SAFETY: the tasks' chunks cover each needed gradient, and each task's runs cover
        // its chunk.
        let g = unsafe { assume_init(g) };
        if len == n {
            Some(g)
        } else {
            Some(super::reduce::sum_tiles(&g, len))
        }
    })
}
