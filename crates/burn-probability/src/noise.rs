//! Parameter-free noise for reparameterized samplers (`x = g(θ, ε)`): what a distribution's
//! [`Rsample::noise`](crate::Rsample::noise) draws before it transforms the noise.
//!
//! The values follow burn's seeded generator (`device.seed(..)`) on every backend; on `flex`
//! they come from vectorized generators.
//!
//! # Example
//! ```
//! use burn::tensor::Device;
//! use burn_probability::noise;
//!
//! let device = Device::flex();
//! let eps = noise::standard_normal([2, 3], &device);
//! let u = noise::uniform_open([1000], &device);
//! let (lo, hi): (f32, f32) = (u.clone().min().into_scalar(), u.max().into_scalar());
//! assert!(eps.dims() == [2, 3] && lo > 0.0 && hi < 1.0);
//! ```

use burn::tensor::{Device, Distribution as Init, Tensor};

use crate::fused::{self, Noise};
use crate::math::logit;

/// Standard normal noise `N(0, 1)` of shape `dims`.
pub fn standard_normal<const D: usize>(dims: [usize; D], device: &Device) -> Tensor<D> {
    fused::noise(Noise::StandardNormal, dims, device)
        .unwrap_or_else(|| Tensor::random(dims, Init::Normal(0.0, 1.0), device))
}

/// Uniform noise on the open interval (0, 1) of shape `dims`: never exactly 0 or 1, so that
/// `ln u` and `ln(1 − u)` are finite.
pub fn uniform_open<const D: usize>(dims: [usize; D], device: &Device) -> Tensor<D> {
    fused::noise(Noise::UniformOpen, dims, device).unwrap_or_else(|| {
        Tensor::random(dims, Init::Uniform(0.0, 1.0), device)
            .clamp(f32::MIN_POSITIVE, 1.0 - f32::EPSILON / 2.0)
    })
}

/// Standard logistic noise `ln u − ln(1 − u)`, `u` uniform on (0, 1), of shape `dims`.
pub fn standard_logistic<const D: usize>(dims: [usize; D], device: &Device) -> Tensor<D> {
    fused::noise(Noise::StandardLogistic, dims, device)
        .unwrap_or_else(|| logit(uniform_open(dims, device)))
}

/// Standard (max-)Gumbel noise `−ln(−ln u)`, `u` uniform on (0, 1), of shape `dims`: the noise
/// of the Gumbel-max trick and of the Gumbel-softmax. With `u` bounded away from 0 and 1 as in
/// [`uniform_open`], the draws lie in about `[−4.5, 16.6]`.
pub fn standard_gumbel<const D: usize>(dims: [usize; D], device: &Device) -> Tensor<D> {
    -(-uniform_open(dims, device).log()).log()
}
