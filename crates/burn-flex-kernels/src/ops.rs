//! The fused element-wise formulas: each one's value and its partial derivatives, per element.
//!
//! A formula reads its `N` inputs at one position and returns the output there; its backward
//! returns `g · ∂out/∂input` for each input. They use [`vmath`](super::vmath) so that the loops
//! in [`cpu`](super::cpu) vectorize. Each formula is the same mathematics as the composite
//! burn-op version in its distribution's file, and the tests of [`super`] check that the two
//! agree, values and gradients.

use super::special::{
    deviance_with_log, digamma, digamma_difference, lbeta, lgamma, log_poisson_mass,
    stirling_remainder,
};
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
    /// `ln Γ(a)` for `a > 0`
    Lgamma,
    /// `tan(π(a − ½))`, the standard Cauchy quantile at `a ∈ [0, 1]` (`∓∞` at 0 and 1)
    CauchyQuantile,
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
    /// `(value, rate) ↦` the Poisson log-mass (`−∞` off the counts 0, 1, 2, …)
    PoissonLogProb,
    /// `(value, rate) ↦ ln rate − rate·value`, the Exponential log-density (`−∞` below 0)
    ExponentialLogProb,
    /// `(logits, u) ↦` the continuous Bernoulli quantile at `u`
    ContinuousBernoulliIcdf,
    /// `(value, scale) ↦` the HalfNormal log-density (`−∞` below 0)
    HalfNormalLogProb,
    /// `(value, logits) ↦` the Geometric log-mass (`−∞` off the counts 0, 1, 2, …)
    GeometricLogProb,
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
    /// `(value, loc, scale) ↦` Cauchy log-density
    CauchyLogProb,
    /// `(value, total_count, logits) ↦` the binomial log-mass (`−∞` off the counts
    /// 0, 1, …, total_count)
    BinomialLogProb,
    /// `(value, loc, scale) ↦` Laplace log-density
    LaplaceLogProb,
    /// `(loc, scale, u) ↦ loc − scale·sign(u)·ln(1 − |u|)`, the Laplace sample from `u ∈ (−1, 1)`
    LaplaceRsample,
    /// `(value, loc, scale) ↦` LogNormal log-density (`−∞` at and below 0)
    LogNormalLogProb,
    /// `(loc, scale, ε) ↦ exp(loc + scale·ε)`, the LogNormal sample from normal noise `ε`
    LogNormalRsample,
    /// `(value, low, high) ↦ −ln(high − low)` on `[low, high)`, `−∞` elsewhere
    UniformLogProb,
    /// `(value, concentration, rate) ↦` Gamma log-density (`−∞` below 0, its limits at 0)
    GammaLogProb,
    /// `(value, concentration1, concentration0) ↦` Beta log-density (`−∞` outside `[0, 1]`,
    /// its limits at 0 and 1)
    BetaLogProb,
}

/// Fused formulas of four inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Quaternary {
    /// `(loc₁, scale₁, loc₂, scale₂) ↦ KL(N(loc₁, scale₁) ‖ N(loc₂, scale₂))`
    NormalKl,
    /// `(value, df, loc, scale) ↦` Student-t log-density
    StudentTLogProb,
}

/// `ln(2π) / 2`.
const LN_SQRT_2PI: f32 = 0.918_938_5;

/// `ln π`.
const LN_PI: f32 = 1.144_729_9;

/// `ln(2/π) / 2`.
const HALF_LN_2_OVER_PI: f32 = -0.225_791_35;

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

/// `ln Γ(a)` (see [`lgamma`]); derivative `ψ(a)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lgamma;

impl Formula<1> for Lgamma {
    #[inline(always)]
    fn forward(&self, [a]: [f32; 1]) -> f32 {
        lgamma(a)
    }
    #[inline(always)]
    fn backward(&self, [a]: [f32; 1], g: f32) -> [f32; 1] {
        [g * digamma(a)]
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

/// Below this `|η|` the continuous Bernoulli's quantile uses its Taylor series (the same
/// threshold as the composite version).
const CB_TAYLOR_CDF: f32 = 1e-6;

/// Continuous Bernoulli quantile from logits `η` at `u`: `ln1p(u·expm1(η))/η` for `η < 0`,
/// `1 + ln1p((1 − u)·expm1(−η))/η` for `η > 0` (neither overflows), `u + η u(1 − u)/2` for
/// `|η| < 10⁻⁶`; inputs `(η, u)`. With `y(e, v) = ln1p(v·expm1(e))/e`, the quantile is
/// `y(η, u)` for `η < 0` and `1 − y(−η, 1 − u)` for `η > 0`, and in both cases
/// `∂/∂u = ∂y/∂v = expm1(e)/(e (1 + v·expm1(e)))`, `∂/∂η = ∂y/∂e = (v eᵉ/(1 + v·expm1(e)) − y)/e`;
/// the Taylor series' derivatives are `1 + η(1 − 2u)/2` and `u(1 − u)/2`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ContinuousBernoulliIcdf;

impl ContinuousBernoulliIcdf {
    /// `(η' , v, sign)`: the branch's logits (`η` clamped away from 0 on its side), its
    /// probability (`u`, or `1 − u` for `η > 0`) and `−1` for `η > 0`, else `1`: the quantile is
    /// `ln1p(v·expm1(η'))/η'` reflected as `1 − …` for `η > 0`.
    #[inline(always)]
    fn branch(eta: f32, u: f32) -> (f32, f32, f32) {
        let positive = eta > 0.0;
        let neg = if eta < -CB_TAYLOR_CDF {
            eta
        } else {
            -CB_TAYLOR_CDF
        };
        let pos = if eta > CB_TAYLOR_CDF {
            eta
        } else {
            CB_TAYLOR_CDF
        };
        if positive {
            (-pos, 1.0 - u, -1.0)
        } else {
            (neg, u, 1.0)
        }
    }
}

impl Formula<2> for ContinuousBernoulliIcdf {
    #[inline(always)]
    fn forward(&self, [eta, u]: [f32; 2]) -> f32 {
        let (e, v, sign) = Self::branch(eta, u);
        // For η > 0: 1 + ln1p((1 − u)·expm1(−η))/η = 1 − ln1p(v·expm1(e))/e with e = −η.
        let y = ln1p(v * expm1(e)) / e;
        let direct = if sign > 0.0 { y } else { 1.0 - y };
        let taylor = u + eta * u * (1.0 - u) * 0.5;
        if eta.abs() < CB_TAYLOR_CDF {
            taylor
        } else {
            direct
        }
    }
    #[inline(always)]
    fn backward(&self, [eta, u]: [f32; 2], g: f32) -> [f32; 2] {
        let (e, v, _) = Self::branch(eta, u);
        let em1 = expm1(e);
        let denom = 1.0 + v * em1;
        let y = ln1p(v * em1) / e;
        // y(e, v) = ln1p(v·expm1(e))/e; the quantile is y (η < 0) or 1 − y(−η, 1 − u).
        let dy_dv = em1 / (e * denom);
        let dy_de = (v * exp(e) / denom - y) / e;
        // For η > 0 the quantile is 1 − y(−η, 1 − u): the two sign flips cancel, so that
        // ∂/∂u = ∂y/∂v and ∂/∂η = ∂y/∂e on both sides.
        let t_du = 1.0 + eta * (1.0 - 2.0 * u) * 0.5;
        let t_deta = u * (1.0 - u) * 0.5;
        let small = eta.abs() < CB_TAYLOR_CDF;
        [
            g * if small { t_deta } else { dy_de },
            g * if small { t_du } else { dy_dv },
        ]
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

/// Student-t log-density
/// `−ln B(ν/2, ½) − ½ ln ν − (ν + 1)/2 · ln1p(z²/ν) − ln σ`, `z = (x − μ)/σ`; inputs
/// `(x, ν, μ, σ)`. Its derivatives: `∂/∂z = −(ν + 1)/(z + ν/z)` (written so that it neither
/// overflows for huge `|z|` nor divides by 0 at `z = 0`) and
/// `∂/∂ν = ½ (ψ(ν/2 + ½) − ψ(ν/2)) − 1/(2ν) − ½ ln1p(z²/ν) + (ν + 1)/(2ν (1 + ν/z²))`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StudentTLogProb;

impl Formula<4> for StudentTLogProb {
    #[inline(always)]
    fn forward(&self, [x, df, mu, s]: [f32; 4]) -> f32 {
        let z = (x - mu) / s;
        -lbeta(df * 0.5, 0.5) - ln(df) * 0.5 - (df + 1.0) * 0.5 * ln1p(z * z / df) - ln(s)
    }
    #[inline(always)]
    fn backward(&self, [x, df, mu, s]: [f32; 4], g: f32) -> [f32; 4] {
        let z = (x - mu) / s;
        let dz = -(df + 1.0) / (z + df / z);
        let gx = g * dz / s;
        let ddf = 0.5 * digamma_difference(df * 0.5, 0.5) - 0.5 / df - 0.5 * ln1p(z * z / df)
            + (df + 1.0) / (2.0 * df * (1.0 + df / (z * z)));
        [gx, g * ddf, -gx, -gx * z - g / s]
    }
}

/// Cauchy log-density `−ln(1 + z²) − ln s − ln π`, `z = (x − μ)/s`, with `ln(1 + z²)` as
/// `ln1p(z²)` up to `|z| = 1` and `2 ln|z| + ln1p(z⁻²)` beyond (so that `z²` never overflows);
/// `∂/∂z = −2/(z + 1/z)`; inputs `(x, μ, s)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CauchyLogProb;

impl Formula<3> for CauchyLogProb {
    #[inline(always)]
    fn forward(&self, [x, mu, s]: [f32; 3]) -> f32 {
        let a = ((x - mu) / s).abs();
        let an = if a < 1.0 { a } else { 1.0 };
        let near = ln1p(an * an);
        let af = if a > 1.0 { a } else { 1.0 };
        let far = ln(af) * 2.0 + ln1p(1.0 / (af * af));
        let log1p_z2 = if a <= 1.0 { near } else { far };
        -log1p_z2 - ln(s) - LN_PI
    }
    #[inline(always)]
    fn backward(&self, [x, mu, s]: [f32; 3], g: f32) -> [f32; 3] {
        let z = (x - mu) / s;
        let gx = g * (-2.0 / (z + 1.0 / z)) / s;
        [gx, -gx, -gx * z - g / s]
    }
}

/// Whether `k` is one of the counts 0, 1, 2, … (`floor` vectorizes, unlike `fract`).
#[inline(always)]
fn is_count(k: f32) -> bool {
    k >= 0.0 && k.floor() == k
}

/// Poisson log-mass at the count `k` with rate `λ`, in Loader's saddle-point form
/// (`log_poisson_mass`), `−∞` where `k` is not a count; inputs `(k, λ)`. Derivatives:
/// `∂/∂λ = k/λ − 1`; `∂/∂k = ln λ − ψ(k + 1)` for `k ≥ 1` and 0 at `k = 0`, the derivative of
/// the composite's saddle-point form (which is continuous in real `k`); both 0 off the counts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoissonLogProb;

impl Formula<2> for PoissonLogProb {
    #[inline(always)]
    fn forward(&self, [k, rate]: [f32; 2]) -> f32 {
        let inside = is_count(k);
        let ks = if inside { k } else { 0.0 };
        let lp = log_poisson_mass(ks, rate);
        if inside { lp } else { f32::NEG_INFINITY }
    }
    #[inline(always)]
    fn backward(&self, [k, rate]: [f32; 2], g: f32) -> [f32; 2] {
        let inside = is_count(k);
        let positive = inside && k > 0.0;
        let ks = if positive { k } else { 1.0 };
        let dk = ln(rate) - digamma(ks + 1.0);
        let drate = k / rate - 1.0;
        [
            if positive { g * dk } else { 0.0 },
            if inside { g * drate } else { 0.0 },
        ]
    }
}

/// Exponential log-density `ln λ − λx` for `x ≥ 0`, `−∞` below; inputs `(x, λ)`. Derivatives
/// `−λ` and `1/λ − x` for `x ≥ 0`, 0 below (where the composite masks the value).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExponentialLogProb;

impl Formula<2> for ExponentialLogProb {
    #[inline(always)]
    fn forward(&self, [x, rate]: [f32; 2]) -> f32 {
        let lp = ln(rate) - rate * if x > 0.0 { x } else { 0.0 };
        if x < 0.0 { f32::NEG_INFINITY } else { lp }
    }
    #[inline(always)]
    fn backward(&self, [x, rate]: [f32; 2], g: f32) -> [f32; 2] {
        let below = x < 0.0;
        [
            if below { 0.0 } else { -g * rate },
            if below { 0.0 } else { g * (1.0 / rate - x) },
        ]
    }
}

/// Binomial log-mass at the count `k` of `n` trials with logits `ℓ` (`ln p = −softplus(−ℓ)`,
/// `ln q = −softplus(ℓ)`): Loader's saddle-point form
/// `δ(n) − δ(k) − δ(n−k) − bd0(k, np) − bd0(n−k, nq) + ½ ln(n / (2π k (n−k)))` for `0 < k < n`,
/// `n ln q` at `k = 0`, `n ln p` at `k = n`, and `−∞` where `k` is not a count or exceeds `n`;
/// inputs `(k, n, ℓ)`. Derivatives, those of the composite form (0 where the value is `−∞`):
/// `∂/∂ℓ = k q − (n − k) p`; `∂/∂n = ψ(n + 1) − ψ(n − k + 1) + ln q` for `k < n` and `ln p` at
/// `k = n`; `∂/∂k = ψ(n − k + 1) − ψ(k + 1) + ℓ` for `0 < k < n`, 0 at the ends.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BinomialLogProb;

impl BinomialLogProb {
    /// `(inside, ln p, ln q)`: whether the mass is finite, and the two log-probabilities.
    #[inline(always)]
    fn common(k: f32, n: f32, l: f32) -> (bool, f32, f32) {
        let inside = is_count(k) && k <= n;
        (inside, -softplus(-l), -softplus(l))
    }
}

impl Formula<3> for BinomialLogProb {
    #[inline(always)]
    fn forward(&self, [k, n, l]: [f32; 3]) -> f32 {
        let (inside, ln_p, ln_q) = Self::common(k, n, l);
        let zero = k <= 0.0;
        let all = k >= n;
        let interior = inside && !zero && !all;
        let ns = if interior { n } else { 2.0 };
        let ks = if interior { k } else { 1.0 };
        let rest = ns - ks;
        let ln_n = ln(ns);
        let ln_np = ln_n + ln_p;
        let ln_nq = ln_n + ln_q;
        let mass = stirling_remainder(ns)
            - stirling_remainder(ks)
            - stirling_remainder(rest)
            - deviance_with_log(ks, exp(ln_np), ln_np)
            - deviance_with_log(rest, exp(ln_nq), ln_nq)
            + (ln_n - ln(ks * rest * core::f32::consts::TAU)) * 0.5;
        let mass = if zero { n * ln_q } else { mass };
        let mass = if all { n * ln_p } else { mass };
        if inside { mass } else { f32::NEG_INFINITY }
    }
    #[inline(always)]
    fn backward(&self, [k, n, l]: [f32; 3], g: f32) -> [f32; 3] {
        let (inside, ln_p, ln_q) = Self::common(k, n, l);
        let all = k >= n;
        let interior = inside && k > 0.0 && !all;
        let ks = if inside { k } else { 0.0 };
        let ns = if inside { n } else { 1.0 };
        let dl = ks * sigmoid(-l) - (ns - ks) * sigmoid(l);
        let dn = digamma_difference(ns - ks + 1.0, ks) + ln_q;
        let dn = if all { ln_p } else { dn };
        let dk = digamma(ns - ks + 1.0) - digamma(ks + 1.0) + l;
        [
            if interior { g * dk } else { 0.0 },
            if inside { g * dn } else { 0.0 },
            if inside { g * dl } else { 0.0 },
        ]
    }
}

/// `−1`, `0` or `1` as `a` is negative, zero or positive (the derivative of `|a|` that burn's
/// `abs` uses, 0 at 0).
#[inline(always)]
fn sign(a: f32) -> f32 {
    let pos = if a > 0.0 { 1.0 } else { 0.0 };
    let neg = if a < 0.0 { 1.0 } else { 0.0 };
    pos - neg
}

/// Laplace log-density `−|x − μ|/b − ln(2b)`; inputs `(x, μ, b)`. Derivatives (with
/// `∂|d|/∂d = sign d`, 0 at 0): `∓ sign(x − μ)/b` and `|x − μ|/b² − 1/b`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LaplaceLogProb;

impl Formula<3> for LaplaceLogProb {
    #[inline(always)]
    fn forward(&self, [x, mu, b]: [f32; 3]) -> f32 {
        -(x - mu).abs() / b - ln(b * 2.0)
    }
    #[inline(always)]
    fn backward(&self, [x, mu, b]: [f32; 3], g: f32) -> [f32; 3] {
        let d = x - mu;
        let gx = -g * sign(d) / b;
        [gx, -gx, g * (d.abs() / b - 1.0) / b]
    }
}

/// Laplace sample `μ − b·sign(u)·ln(1 − |u|)` from `u ∈ (−1, 1)`; inputs `(μ, b, u)`.
/// Derivatives `1`, `−sign(u)·ln(1 − |u|)` and `b·sign(u)²/(1 − |u|)` (0 at `u = 0`, as in the
/// composite, whose `sign` and `abs` have derivative 0 there).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LaplaceRsample;

impl Formula<3> for LaplaceRsample {
    #[inline(always)]
    fn forward(&self, [mu, b, u]: [f32; 3]) -> f32 {
        mu - b * (sign(u) * ln1p(-u.abs()))
    }
    #[inline(always)]
    fn backward(&self, [_, b, u]: [f32; 3], g: f32) -> [f32; 3] {
        let s = sign(u);
        [
            g,
            -g * s * ln1p(-u.abs()),
            g * b * (s * s) / (1.0 - u.abs()),
        ]
    }
}

/// LogNormal log-density `−z²/2 − ln σ − ln x − ln√(2π)`, `z = (ln x − μ)/σ`, for `x > 0`, `−∞`
/// at and below 0; inputs `(x, μ, σ)`. Derivatives `−(z/σ + 1)/x`, `z/σ` and `(z² − 1)/σ` for
/// `x > 0`, 0 elsewhere (where the composite masks the value).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogNormalLogProb;

impl Formula<3> for LogNormalLogProb {
    #[inline(always)]
    fn forward(&self, [x, mu, s]: [f32; 3]) -> f32 {
        let outside = x <= 0.0;
        let log_x = ln(if outside { 1.0 } else { x });
        let z = (log_x - mu) / s;
        let lp = -0.5 * z * z - ln(s) - log_x - LN_SQRT_2PI;
        if outside { f32::NEG_INFINITY } else { lp }
    }
    #[inline(always)]
    fn backward(&self, [x, mu, s]: [f32; 3], g: f32) -> [f32; 3] {
        let outside = x <= 0.0;
        let xs = if outside { 1.0 } else { x };
        let z = (ln(xs) - mu) / s;
        let gz = g * z / s;
        [
            if outside { 0.0 } else { -(gz + g) / xs },
            if outside { 0.0 } else { gz },
            if outside { 0.0 } else { g * (z * z - 1.0) / s },
        ]
    }
}

/// LogNormal sample `exp(μ + σε)` from normal noise `ε`; inputs `(μ, σ, ε)`. Derivatives `y`,
/// `yε` and `yσ`, `y` the sample.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogNormalRsample;

impl Formula<3> for LogNormalRsample {
    #[inline(always)]
    fn forward(&self, [mu, s, e]: [f32; 3]) -> f32 {
        exp(mu + s * e)
    }
    #[inline(always)]
    fn backward(&self, [mu, s, e]: [f32; 3], g: f32) -> [f32; 3] {
        let gy = g * exp(mu + s * e);
        [gy, gy * e, gy * s]
    }
}

/// Uniform log-density `−ln(h − l)` on `[l, h)` (`x − l ≥ 0` and `x − h < 0`, as the composite
/// tests them), `−∞` elsewhere; inputs `(x, l, h)`. Derivatives 0 (the value), and `±1/(h − l)`
/// inside, 0 outside.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UniformLogProb;

impl Formula<3> for UniformLogProb {
    #[inline(always)]
    fn forward(&self, [x, lo, hi]: [f32; 3]) -> f32 {
        let inside = x - lo >= 0.0 && x - hi < 0.0;
        let lp = -ln(hi - lo);
        if inside { lp } else { f32::NEG_INFINITY }
    }
    #[inline(always)]
    fn backward(&self, [x, lo, hi]: [f32; 3], g: f32) -> [f32; 3] {
        let inside = x - lo >= 0.0 && x - hi < 0.0;
        let d = g / (hi - lo);
        [
            0.0,
            if inside { d } else { 0.0 },
            if inside { -d } else { 0.0 },
        ]
    }
}

/// Gamma log-density at `x` with concentration `α` and rate `λ`, `m = λ·max(x, 2⁻¹²⁶)`:
/// `ln λ + ln Poisson(α − 1; m)` in Loader's saddle-point form for `α ≥ 1`,
/// `(α − 1) ln m − m − ln Γ(α) + ln λ` below; `−∞` for `x < 0`, and at `x = 0` the limits
/// `+∞` (`α < 1`), `ln λ` (`α = 1`), `−∞` (`α > 1`); inputs `(x, α, λ)`. Derivatives
/// `(α − 1)/x − λ` (for `x ≥ 2⁻¹²⁶`, where the composite's clamp passes it), `ln m − ψ(α)`
/// and `α/λ − x` for `x > 0`; at `x ≤ 0` 0, except `∂/∂λ = 1/λ` at `x = 0`, `α = 1` (those
/// of the composite).
#[derive(Clone, Copy, Debug)]
pub(crate) struct GammaLogProb;

impl Formula<3> for GammaLogProb {
    #[inline(always)]
    fn forward(&self, [x, alpha, rate]: [f32; 3]) -> f32 {
        let m = rate
            * if x > f32::MIN_POSITIVE {
                x
            } else {
                f32::MIN_POSITIVE
            };
        let large = alpha >= 1.0;
        let k = alpha - 1.0;
        let saddle = log_poisson_mass(if large { k } else { 0.0 }, if large { m } else { 1.0 });
        let md = if large { 1.0 } else { m };
        let a_small = if large { 1.0 } else { alpha };
        let direct = (if large { 0.0 } else { k }) * ln(md) - md - lgamma(a_small);
        let lp = ln(rate) + if large { saddle } else { direct };
        let at_zero = x == 0.0;
        let lp = if at_zero && alpha < 1.0 {
            f32::INFINITY
        } else {
            lp
        };
        let lp = if at_zero && alpha > 1.0 {
            f32::NEG_INFINITY
        } else {
            lp
        };
        if x < 0.0 { f32::NEG_INFINITY } else { lp }
    }
    #[inline(always)]
    fn backward(&self, [x, alpha, rate]: [f32; 3], g: f32) -> [f32; 3] {
        let positive = x > 0.0;
        let xs = if x > f32::MIN_POSITIVE {
            x
        } else {
            f32::MIN_POSITIVE
        };
        let m = rate * xs;
        let dx = (alpha - 1.0) / xs - rate;
        let da = ln(m) - digamma(alpha);
        let dr = alpha / rate - xs;
        let exponential_at_zero = x == 0.0 && alpha == 1.0;
        [
            if x >= f32::MIN_POSITIVE { g * dx } else { 0.0 },
            if positive { g * da } else { 0.0 },
            if positive || exponential_at_zero {
                g * dr
            } else {
                0.0
            },
        ]
    }
}

/// Beta log-density `(a − 1) ln x + (b − 1) ln1p(−x) − ln B(a, b)` on `x` clamped into
/// `[2⁻¹²⁶, 1 − 2⁻²⁴]`, then the limits at 0 and 1 (`+∞` for a concentration below 1, `−∞`
/// above) and `−∞` outside `[0, 1]`; inputs `(x, a, b)`. Derivatives (at the clamped `x`)
/// `(a − 1)/x − (b − 1)/(1 − x)`, `ln x + ψ(a + b) − ψ(a)`, `ln(1 − x) + ψ(a + b) − ψ(b)`
/// (the digamma differences without cancellation), 0 where the value is `±∞`, and no
/// derivative in `x` where the clamp is active (as in the composite).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BetaLogProb;

impl BetaLogProb {
    /// The clamped value and whether the result is the formula (not a limit or outside).
    #[inline(always)]
    fn common(x: f32, a: f32, b: f32) -> (f32, bool, f32) {
        const TOP: f32 = 1.0 - f32::EPSILON / 2.0;
        let xs = if x > f32::MIN_POSITIVE {
            x
        } else {
            f32::MIN_POSITIVE
        };
        let xs = if xs < TOP { xs } else { TOP };
        let limit0 = x == 0.0 && a != 1.0;
        let limit1 = x == 1.0 && b != 1.0;
        let inside = (0.0..=1.0).contains(&x) && !limit0 && !limit1;
        (xs, inside, if x == 0.0 { a } else { b })
    }
}

impl Formula<3> for BetaLogProb {
    #[inline(always)]
    fn forward(&self, [x, a, b]: [f32; 3]) -> f32 {
        let (xs, inside, c) = Self::common(x, a, b);
        let lp = (a - 1.0) * ln(xs) + (b - 1.0) * ln1p(-xs) - lbeta(a, b);
        let limit = if c < 1.0 {
            f32::INFINITY
        } else {
            f32::NEG_INFINITY
        };
        let outside = !(0.0..=1.0).contains(&x);
        if outside {
            f32::NEG_INFINITY
        } else if inside {
            lp
        } else {
            limit
        }
    }
    #[inline(always)]
    fn backward(&self, [x, a, b]: [f32; 3], g: f32) -> [f32; 3] {
        let (xs, inside, _) = Self::common(x, a, b);
        let dx = (a - 1.0) / xs - (b - 1.0) / (1.0 - xs);
        let da = ln(xs) + digamma_difference(a, b);
        let db = ln1p(-xs) + digamma_difference(b, a);
        // The composite clamps the value: no derivative in x where the clamp is active.
        let clamped = xs != x;
        if inside {
            [if clamped { 0.0 } else { g * dx }, g * da, g * db]
        } else {
            [0.0, 0.0, 0.0]
        }
    }
}

/// HalfNormal log-density `−z²/2 − ln σ + ½ ln(2/π)`, `z = x/σ`, for `x ≥ 0` (finite at 0),
/// `−∞` below; inputs `(x, σ)`. Derivatives `−z/σ` and `(z² − 1)/σ` for `x ≥ 0`, 0 below.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HalfNormalLogProb;

impl Formula<2> for HalfNormalLogProb {
    #[inline(always)]
    fn forward(&self, [x, s]: [f32; 2]) -> f32 {
        let z = (if x > 0.0 { x } else { 0.0 }) / s;
        let lp = -0.5 * z * z - ln(s) + HALF_LN_2_OVER_PI;
        if x < 0.0 { f32::NEG_INFINITY } else { lp }
    }
    #[inline(always)]
    fn backward(&self, [x, s]: [f32; 2], g: f32) -> [f32; 2] {
        let below = x < 0.0;
        let z = (if x > 0.0 { x } else { 0.0 }) / s;
        [
            if below { 0.0 } else { -g * z / s },
            if below { 0.0 } else { g * (z * z - 1.0) / s },
        ]
    }
}

/// Geometric log-mass `k·ln(1 − p) + ln p` at the count `k` with logits `ℓ`
/// (`ln p = −softplus(−ℓ)`, `ln(1 − p) = −softplus(ℓ)`), `−∞` where `k` is not a count; inputs
/// `(k, ℓ)`. Derivatives `−softplus(ℓ)` and `σ(−ℓ) − k σ(ℓ)` on the counts, 0 elsewhere.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GeometricLogProb;

impl Formula<2> for GeometricLogProb {
    #[inline(always)]
    fn forward(&self, [k, l]: [f32; 2]) -> f32 {
        let inside = is_count(k);
        let ks = if inside { k } else { 0.0 };
        let lp = -ks * softplus(l) - softplus(-l);
        if inside { lp } else { f32::NEG_INFINITY }
    }
    #[inline(always)]
    fn backward(&self, [k, l]: [f32; 2], g: f32) -> [f32; 2] {
        let inside = is_count(k);
        let ks = if inside { k } else { 0.0 };
        [
            if inside { -g * softplus(l) } else { 0.0 },
            if inside {
                g * (sigmoid(-l) - ks * sigmoid(l))
            } else {
                0.0
            },
        ]
    }
}

/// `sin(π m)` for `m ∈ [0, ½]`: the Taylor polynomial through `t¹¹` in `t = π m` (error below
/// `6·10⁻⁸` on `[0, π/2]`), odd so that it keeps its relative accuracy near 0.
#[inline(always)]
fn sin_pi_half(m: f32) -> f32 {
    let t = m * core::f32::consts::PI;
    let t2 = t * t;
    let p = -1.0 / 39_916_800.0;
    let p = p * t2 + 1.0 / 362_880.0;
    let p = p * t2 - 1.0 / 5040.0;
    let p = p * t2 + 1.0 / 120.0;
    let p = p * t2 - 1.0 / 6.0;
    t * (p * t2 + 1.0)
}

/// Standard Cauchy quantile `tan(π(q − ½))`, written with `m = min(q, 1 − q)` as
/// `∓ sin(π(½ − m)) / sin(π m)` (`−` below ½), each sine of an argument in `[0, π/2]`, so that
/// both tails keep their relative accuracy and `q = 0`, `q = 1` give `∓∞`; derivative
/// `π / sin²(π m)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CauchyQuantile;

impl Formula<1> for CauchyQuantile {
    #[inline(always)]
    fn forward(&self, [q]: [f32; 1]) -> f32 {
        let r = 1.0 - q;
        let m = if q < 0.5 { q } else { r };
        let x = sin_pi_half(0.5 - m) / sin_pi_half(m);
        if q < 0.5 { -x } else { x }
    }
    #[inline(always)]
    fn backward(&self, [q]: [f32; 1], g: f32) -> [f32; 1] {
        let r = 1.0 - q;
        let m = if q < 0.5 { q } else { r };
        let s = sin_pi_half(m);
        [g * core::f32::consts::PI / (s * s)]
    }
}
