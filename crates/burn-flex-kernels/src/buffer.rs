//! Output buffers that the kernels fill without zeroing them first, and the size below which
//! a kernel runs on one thread.

use core::mem::{ManuallyDrop, MaybeUninit};

/// Below this many elements one thread does all the work.
pub(crate) const PARALLEL_MIN: usize = 1 << 16;

/// `n` output slots that every kernel writes before it returns. Not zeroed: a fresh zeroed
/// buffer would cost a `memset` pass over memory that the kernel then overwrites.
pub(crate) fn uninit(n: usize) -> Vec<MaybeUninit<f32>> {
    let mut v = Vec::with_capacity(n);
    // SAFETY: `MaybeUninit` needs no initialization, and the capacity is `n`.
    unsafe { v.set_len(n) };
    v
}

/// The values of a buffer from [`uninit`] once every slot has been written.
///
/// # Safety
/// Every element of `v` must be initialized.
pub(crate) unsafe fn assume_init(v: Vec<MaybeUninit<f32>>) -> Vec<f32> {
    let mut v = ManuallyDrop::new(v);
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, the allocation is handed over
    // unchanged, and the caller guarantees every element is initialized.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<f32>(), v.len(), v.capacity()) }
}
