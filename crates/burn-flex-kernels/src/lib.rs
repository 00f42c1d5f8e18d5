//! # burn-flex-kernels
//!
//! Fused, vectorized CPU kernels for burn's `flex` backend, for any burn user who wants faster
//! CPU training:
//!
//! * [`nn`]: convolutions (Winograd F(2×2, 3×3), direct kernels for one-channel layers,
//!   implicit products for strided layers on AVX-512) and dense layers with the bias and
//!   activation fused; [`nn::FastConv`] and [`nn::FastLinear`] run burn's own `Conv2d`,
//!   `ConvTranspose2d` and `Linear` modules through them.
//! * [`optim::FusedAdam`]: burn's Adam as one in-place pass per parameter, a drop-in burn
//!   `Optimizer`.
//! * [`formulas`]: element-wise formulas (softplus, sigmoid, log-densities, the Normal KL)
//!   and their gradients in one SIMD pass, row sums, noise generators, and the batched
//!   triangular solve and product of full-covariance Gaussians, for libraries such as
//!   `burn-probability` that compute these formulas.
//! * [`set_flush_denormal`]: subnormal floats flushed to zero, as `torch.set_flush_denormal`.
//!
//! Every kernel is a burn *backend extension* (`#[backend_extension]`) for `Flex`, with and
//! without autodiff. Each public function takes ordinary `Tensor`s: on a float32 `flex`
//! tensor it runs the kernel, and on every other backend or dtype it runs burn's own
//! operations (the layers) or hands the inputs back to the caller (the formulas), so results
//! do not depend on the backend beyond float rounding. [`set_fused_kernels`]`(false)` turns
//! every kernel off, for comparisons.
//!
//! ## What belongs here, and what does not
//! This crate holds all of the workspace's `unsafe` code: SIMD intrinsics behind run-time CPU
//! feature checks, uninitialized output buffers filled by the kernels, and the MXCSR access of
//! the subnormal flush. Each kernel comes with its tests against burn's own operations. It
//! knows nothing of probability distributions beyond the formulas named in [`formulas`]: no
//! distribution types, no objectives, no models and no data loading. The
//! modules depend on each other in one direction: the public `nn`, `optim` and `formulas`
//! call the backend extension (`ext`), which calls the kernels (`conv` with its Winograd,
//! direct and implicit algorithms, `dense`, `cpu` with the formulas of `ops`, `reduce`,
//! `tril`, `adam`), which share the leaf modules (`buffer`, `vmath`, `layer`, `device`).
//!
//! Build it with optimizations: unoptimized, the kernels run several times slower than burn's
//! own operations. A workspace or path dependency that builds it in the dev profile should set
//! `[profile.dev.package.burn-flex-kernels] opt-level = 3`.
#![warn(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]
// The `Err` of the functions that may run a kernel hands the caller its inputs back for
// burn's own operations; it is not an error value, and boxing it would cost an allocation
// per call.
#![allow(clippy::result_large_err)]

/// `[attributes] [visibility] fn $name[generics](args) [-> type] => $run` defines `$name`, which
/// calls `$run(args)` compiled for AVX-512, for AVX2 + FMA, or for the baseline target,
/// whichever the CPU has (checked at run time; the check is a cached load). `$run` must be
/// `#[inline(always)]` so that each copy is vectorized for its instruction set.
macro_rules! multiversion {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident [$($gen:tt)*] ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)?
            => $run:ident
    ) => {
        $(#[$attr])*
        $vis fn $name<$($gen)*>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
                fn avx512<$($gen)*>($($arg: $ty),*) $(-> $ret)? {
                    $run($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2<$($gen)*>($($arg: $ty),*) $(-> $ret)? {
                    $run($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                {
                    // SAFETY: the CPU has the features this function was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $run($($arg),*)
        }
    };
}

mod adam;
mod buffer;
mod conv;
mod cpu;
mod denormal;
mod dense;
mod device;
mod ext;
pub mod formulas;
mod gamma_sampler;
mod implicit;
mod layer;
pub mod nn;
mod ops;
pub mod optim;
mod reduce;
mod rng;
mod softmax;
mod special;
#[cfg(test)]
mod tests;
mod tril;
mod vmath;

pub use denormal::set_flush_denormal;
pub use device::{fused_kernels_enabled, set_fused_kernels};
pub use formulas::{Binary, Quaternary, Ternary, Tiled, Unary};

/// The README's code blocks, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
