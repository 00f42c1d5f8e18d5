//! The fused element-wise formulas: each one's value and its partial derivatives, per element.
//!
//! A formula reads its `N` inputs at one position and returns the output there; its backward
//! returns `g · ∂out/∂input` for each input. They use [`vmath`](super::vmath) so that the loops
//! in [`cpu`](super::cpu) vectorize. Each formula is the same mathematics as the composite
//! burn-op version in its distribution's file, and the tests of [`super`] check that the two
//! agree, values and gradients.

use super::vmath::{exp, expm1, ln, ln1p, sigmoid, softplus, tanh};

/// Fused formulas of one input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    /// `ln a + c`: the entropies of location-scale families (`ln σ + const`) in one pass
    LogPlus(f32),
    /// `ln(1 + eᵃ)`
    Softplus,
    /// `1 / (1 + e⁻ᵃ)`
    Sigmoid,
    /// `ln a − ln(1 − a)`
    Logit,
    /// `tanh a`
    Tanh,
    /// ELU with the given `α`: `a` for `a > 0`, else `α(eᵃ − 1)`
    Elu(f32),
}

/// Fused formulas of two inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Binary {
    /// `(logits, value) ↦ value·logits − softplus(logits)`
    BernoulliLogProb,
    /// `(value, logits) ↦` BinConcrete log-density at temperature `t`
    BinConcreteLogProb(f32),
    /// `(logits, noise) ↦ σ((logits + noise)/t)`
    BinConcreteRsample(f32),
    /// `(logits, value) ↦ value·logits − A(logits)`, the continuous Bernoulli log-density
    ContinuousBernoulliLogProb,
}

/// Fused formulas of three inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ternary {
    /// `(value, loc, scale) ↦` Normal log-density
    NormalLogProb,
    /// `(value, loc, scale) ↦` Logistic log-density
    LogisticLogProb,
    /// `(value, loc, scale) ↦` Gumbel log-density
    GumbelLogProb,
}

/// Fused formulas of four inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Quaternary {
    /// `(loc₁, scale₁, loc₂, scale₂) ↦ KL(N(loc₁, scale₁) ‖ N(loc₂, scale₂))`
    NormalKl,
}

/// `ln(2π) / 2`.
const LN_SQRT_2PI: f32 = 0.918_938_5;

/// One fused element-wise formula with `N` inputs.
pub(crate) trait Formula<const N: usize>:
    Copy + Send + Sync + core::fmt::Debug + 'static
{
    /// The output at one position.
    fn forward(&self, x: [f32; N]) -> f32;
    /// `g · ∂out/∂xᵢ` for each input `i`.
    fn backward(&self, x: [f32; N], g: f32) -> [f32; N];
}

/// `ln a + c`; derivative `1 / a`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogPlus {
    pub c: f32,
}

impl Formula<1> for LogPlus {
    #[inline(always)]
    fn forward(&self, [a]: [f32; 1]) -> f32 {
        ln(a) + self.c
    }
    #[inline(always)]
    fn backward(&self, [a]: [f32; 1], g: f32) -> [f32; 1] {
        [g / a]
    }
}

/// `softplus(a) = ln(1 + eᵃ)`; derivative `σ(a)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Softplus;

impl Formula<1> for Softplus {
    #[inline(always)]
    fn forward(&self, [a]: [f32; 1]) -> f32 {
        softplus(a)
    }
    #[inline(always)]
    fn backward(&self, [a]: [f32; 1], g: f32) -> [f32; 1] {
        [g * sigmoid(a)]
    }
}

/// `σ(a)`; derivative `σ(a)(1 − σ(a))`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sigmoid;

impl Formula<1> for Sigmoid {
    #[inline(always)]
    fn forward(&self, [a]: [f32; 1]) -> f32 {
        sigmoid(a)
    }
    #[inline(always)]
    fn backward(&self, [a]: [f32; 1], g: f32) -> [f32; 1] {
        let s = sigmoid(a);
        [g * s * (1.0 - s)]
    }
}

/// `tanh a`; derivative `1 − tanh² a`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tanh;

impl Formula<1> for Tanh {
    #[inline(always)]
    fn forward(&self, [a]: [f32; 1]) -> f32 {
        tanh(a)
    }
    #[inline(always)]
    fn backward(&self, [a]: [f32; 1], g: f32) -> [f32; 1] {
        let y = tanh(a);
        [g * (1.0 - y * y)]
    }
}

/// ELU: `a` for `a > 0`, else `α(eᵃ − 1)`; derivative `1`, else `α eᵃ`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Elu {
    pub alpha: f32,
}

impl Formula<1> for Elu {
    #[inline(always)]
    fn forward(&self, [a]: [f32; 1]) -> f32 {
        let neg = self.alpha * expm1(a);
        if a > 0.0 { a } else { neg }
    }
    #[inline(always)]
    fn backward(&self, [a]: [f32; 1], g: f32) -> [f32; 1] {
        let neg = g * self.alpha * exp(a);
        [if a > 0.0 { g } else { neg }]
    }
}

/// Bernoulli log-mass from logits: `x·ℓ − softplus(ℓ)`; inputs `(ℓ, x)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BernoulliLogProb;

impl Formula<2> for BernoulliLogProb {
    #[inline(always)]
    fn forward(&self, [l, x]: [f32; 2]) -> f32 {
        x * l - softplus(l)
    }
    #[inline(always)]
    fn backward(&self, [l, x]: [f32; 2], g: f32) -> [f32; 2] {
        [g * (x - sigmoid(l)), g * l]
    }
}

/// Below this `|ℓ|` the continuous Bernoulli's log-normalizer and mean use their Taylor series
/// (the same threshold as the composite version).
const CB_TAYLOR: f32 = 0.1;

/// Continuous Bernoulli log-density from logits: `x·ℓ − A(ℓ)`, `A(ℓ) = ln((e^ℓ − 1)/ℓ)`
/// (`max(ℓ, 0) + ln(−expm1(−|ℓ|)) − ln|ℓ|`, or `ℓ/2 + ℓ²/24 − ℓ⁴/2880` for `|ℓ| < 0.1`);
/// `∂/∂ℓ = x − mean(ℓ)` with `mean(ℓ) = −1/expm1(−ℓ) − 1/ℓ` (or
/// `½ + ℓ/12 − ℓ³/720 + ℓ⁵/30240`); inputs `(ℓ, x)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ContinuousBernoulliLogProb;

impl Formula<2> for ContinuousBernoulliLogProb {
    #[inline(always)]
    fn forward(&self, [l, x]: [f32; 2]) -> f32 {
        let a = l.abs();
        let l2 = l * l;
        let taylor = l * 0.5 + l2 * (1.0 / 24.0 - l2 / 2880.0);
        let direct = l.max(0.0) + ln(-expm1(-a)) - ln(a);
        x * l - if a < CB_TAYLOR { taylor } else { direct }
    }
    #[inline(always)]
    fn backward(&self, [l, x]: [f32; 2], g: f32) -> [f32; 2] {
        let l2 = l * l;
        let taylor = 0.5 + l * (1.0 / 12.0 + l2 * (l2 / 30240.0 - 1.0 / 720.0));
        let direct = -1.0 / expm1(-l) - 1.0 / l;
        let mean = if l.abs() < CB_TAYLOR { taylor } else { direct };
        [g * (x - mean), g * l]
    }
}

/// Normal log-density `−z²/2 − ln σ − ln√(2π)`, `z = (x − μ)/σ`; inputs `(x, μ, σ)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NormalLogProb;

impl Formula<3> for NormalLogProb {
    #[inline(always)]
    fn forward(&self, [x, mu, s]: [f32; 3]) -> f32 {
        let z = (x - mu) / s;
        -0.5 * z * z - ln(s) - LN_SQRT_2PI
    }
    #[inline(always)]
    fn backward(&self, [x, mu, s]: [f32; 3], g: f32) -> [f32; 3] {
        let z = (x - mu) / s;
        let gz = g * z / s;
        [-gz, gz, g * (z * z - 1.0) / s]
    }
}

/// Logistic log-density `−z − 2·softplus(−z) − ln s`, `z = (x − μ)/s`; inputs `(x, μ, s)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogisticLogProb;

impl Formula<3> for LogisticLogProb {
    #[inline(always)]
    fn forward(&self, [x, mu, s]: [f32; 3]) -> f32 {
        let z = (x - mu) / s;
        -z - 2.0 * softplus(-z) - ln(s)
    }
    #[inline(always)]
    fn backward(&self, [x, mu, s]: [f32; 3], g: f32) -> [f32; 3] {
        let z = (x - mu) / s;
        // d/dz (−z − 2 softplus(−z)) = 1 − 2σ(z)
        let dz = g * (1.0 - 2.0 * sigmoid(z)) / s;
        [dz, -dz, -dz * z - g / s]
    }
}

/// Gumbel (maximum) log-density `−(z + e^{−z}) − ln s`, `z = (x − μ)/s`; inputs `(x, μ, s)`.
/// Where `e^{−z}` overflows (`z < −88`) the value is `−∞`, its correctly rounded float32 value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GumbelLogProb;

impl Formula<3> for GumbelLogProb {
    #[inline(always)]
    fn forward(&self, [x, mu, s]: [f32; 3]) -> f32 {
        let z = (x - mu) / s;
        -(z + exp(-z)) - ln(s)
    }
    #[inline(always)]
    fn backward(&self, [x, mu, s]: [f32; 3], g: f32) -> [f32; 3] {
        let z = (x - mu) / s;
        // d/dz (−z − e^{−z}) = e^{−z} − 1
        let dz = g * (exp(-z) - 1.0) / s;
        [dz, -dz, -dz * z - g / s]
    }
}

/// BinConcrete (relaxed Bernoulli) log-density at `y ∈ (0, 1)` with logits `ℓ`, temperature `t`:
/// `ℓ + ln t − (t+1) ln y + (t−1) ln(1−y) − 2 softplus(ℓ − t·logit y)`; inputs `(y, ℓ)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BinConcreteLogProb {
    pub temperature: f32,
}

impl Formula<2> for BinConcreteLogProb {
    #[inline(always)]
    fn forward(&self, [y, l]: [f32; 2]) -> f32 {
        let t = self.temperature;
        let log_y = ln(y);
        let log_1my = ln1p(-y);
        l + ln(t) - (t + 1.0) * log_y + (t - 1.0) * log_1my
            - 2.0 * softplus(l - t * (log_y - log_1my))
    }
    #[inline(always)]
    fn backward(&self, [y, l]: [f32; 2], g: f32) -> [f32; 2] {
        let t = self.temperature;
        let log_y = ln(y);
        let log_1my = ln1p(-y);
        let s = sigmoid(l - t * (log_y - log_1my));
        let one_m_y = 1.0 - y;
        let dy = -(t + 1.0) / y - (t - 1.0) / one_m_y + 2.0 * t * s / (y * one_m_y);
        [g * dy, g * (1.0 - 2.0 * s)]
    }
}

/// BinConcrete reparameterized sample `σ((ℓ + n)/t)` from logistic noise `n`; inputs `(ℓ, n)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BinConcreteRsample {
    pub temperature: f32,
}

impl Formula<2> for BinConcreteRsample {
    #[inline(always)]
    fn forward(&self, [l, n]: [f32; 2]) -> f32 {
        sigmoid((l + n) / self.temperature)
    }
    #[inline(always)]
    fn backward(&self, [l, n]: [f32; 2], g: f32) -> [f32; 2] {
        let y = sigmoid((l + n) / self.temperature);
        let d = g * y * (1.0 - y) / self.temperature;
        [d, d]
    }
}

/// `KL(N(μ₁, σ₁) ‖ N(μ₂, σ₂)) = z²/2 + (r² − 1)/2 − ln r` with `z = (μ₁ − μ₂)/σ₂`,
/// `r = σ₁/σ₂`; inputs `(μ₁, σ₁, μ₂, σ₂)`. `ln r` is `ln σ₁ − ln σ₂`, so that it stays finite
/// when `r` itself under- or overflows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NormalKl;

impl Formula<4> for NormalKl {
    #[inline(always)]
    fn forward(&self, [m1, s1, m2, s2]: [f32; 4]) -> f32 {
        let z = (m1 - m2) / s2;
        let r = s1 / s2;
        0.5 * z * z + 0.5 * (r - 1.0) * (r + 1.0) - (ln(s1) - ln(s2))
    }
    #[inline(always)]
    fn backward(&self, [m1, s1, m2, s2]: [f32; 4], g: f32) -> [f32; 4] {
        let z = (m1 - m2) / s2;
        let r = s1 / s2;
        let dm = g * z / s2;
        [
            dm,
            g * (r / s2 - 1.0 / s1),
            -dm,
            g * (1.0 - r * r - z * z) / s2,
        ]
    }
}

/// Logistic noise `ln u − ln(1 − u)` from `u ~ U(0, 1)`; not differentiated (noise).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Logit;

impl Formula<1> for Logit {
    #[inline(always)]
    fn forward(&self, [u]: [f32; 1]) -> f32 {
        ln(u) - ln1p(-u)
    }
    #[inline(always)]
    fn backward(&self, [u]: [f32; 1], g: f32) -> [f32; 1] {
        [g / (u * (1.0 - u))]
    }
}
