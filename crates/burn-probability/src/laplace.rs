//! The Laplace (double exponential) distribution.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Cdf, Distribution, Entropy, Mode, Moments, Param, Rsample, broadcast_params, check_param,
    check_values, lift, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::kl::KlDivergence;
use crate::math::{SQRT_2, expm1, ln_plus, log1p};
use crate::noise;
use crate::normal::Normal;

/// The largest float32 below 1, `1 − 2⁻²⁴`: the bound of the noise `u` on (−1, 1).
const U_MAX: f32 = 1.0 - f32::EPSILON / 2.0;

/// `√(2/π)`, the mean of `|Z|` for a standard normal `Z`.
const SQRT_2_OVER_PI: f64 = core::f64::consts::FRAC_2_SQRT_PI / core::f64::consts::SQRT_2;

/// `(1 + ln(π/2)) / 2`, the constant of `KL(Normal ‖ Laplace)`.
const NORMAL_LAPLACE_KL_CONST: f64 = 0.725_791_352_644_727_4;

/// A batch of Laplace distributions with location `μ` and scale `b > 0` (scipy's `laplace`,
/// `torch.distributions.Laplace`, `tfd.Laplace`).
///
/// # Density function
/// ```text
/// ln p(x) = −|x − μ| / b − ln(2b)
/// ```
/// cdf `½ e^{(x − μ)/b}` for `x < μ`, `1 − ½ e^{−(x − μ)/b}` for `x ≥ μ`; quantile
/// `μ + b ln(2q)` for `q < ½`, `μ − b ln(2(1 − q))` for `q ≥ ½` (the two halves keep
/// `q = 10⁻⁷` and `q = 1 − 2⁻²⁴` accurate in float32); mean, median and mode `μ`; variance
/// `2b²`; entropy `1 + ln(2b)`.
///
/// Reparameterized sampling: `x = μ − b sign(u) ln(1 − |u|)` with `u` uniform on (−1, 1),
/// built as `2v − 1` from `v` uniform on (0, 1) ([`noise::uniform_open`]) and clamped to
/// `|u| ≤ 1 − 2⁻²⁴`, so that every draw is finite.
///
/// # KL divergence
/// ```text
/// KL(p ‖ q) = ln(b_q/b_p) + |μ_p − μ_q|/b_q + (b_p/b_q) exp(−|μ_p − μ_q|/b_p) − 1
/// ```
/// computed as `d/b_q + expm1(δ − d/b_p) − δ` with `d = |μ_p − μ_q|`, `δ = ln b_p − ln b_q`,
/// which has no cancellation when `p` and `q` are close. From a [`Normal`](crate::Normal)
/// `N(μ, σ²)`:
/// ```text
/// KL(N ‖ Laplace(m, b)) = ln(b/σ) + E|X − m| / b − (1 + ln(π/2)) / 2
/// E|X − m| = σ √(2/π) exp(−d²/(2σ²)) + d erf(d/(σ√2)),          d = μ − m
/// ```
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Cdf, Distribution, Laplace, Moments};
///
/// let device = Device::flex();
/// let d = Laplace::new(Tensor::<1>::from_floats([0.0, 1.0], &device), 2.0);
/// let var: Vec<f32> = d.variance().into_data().iter::<f32>().collect();
/// assert_eq!(var, vec![8.0, 8.0]);
/// let q = Tensor::<1>::from_floats([0.25, 0.5], &device);
/// let x: Vec<f32> = d.icdf(q).into_data().iter::<f32>().collect();
/// assert!((x[0] - 2.0 * 0.5f32.ln()).abs() < 1e-6 && (x[1] - 1.0).abs() < 1e-6);
/// ```
#[derive(Clone, Debug)]
pub struct Laplace<const D: usize> {
    loc: Tensor<D>,
    scale: Tensor<D>,
}

impl<const D: usize> Laplace<D> {
    /// `Laplace(loc, scale)` from tensors whose shapes broadcast, or scalars (at least one
    /// tensor; see [`Param`]).
    ///
    /// # Panics
    /// If the shapes do not broadcast, or both are scalars; the message is [`Self::try_new`]'s
    /// error.
    #[track_caller]
    pub fn new(loc: impl Into<Param<D>>, scale: impl Into<Param<D>>) -> Self {
        Self::try_new(loc, scale).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`](crate::Error) instead of panicking.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) naming both shapes;
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if both are scalars.
    pub fn try_new(loc: impl Into<Param<D>>, scale: impl Into<Param<D>>) -> Result<Self> {
        let [loc, scale] =
            broadcast_params("Laplace", [("loc", loc.into()), ("scale", scale.into())])?;
        Ok(Self { loc, scale })
    }

    /// The standard Laplace (`μ = 0`, `b = 1`) with the given shape.
    pub fn standard(shape: [usize; D], device: &Device) -> Self {
        Self {
            loc: Tensor::zeros(shape, device),
            scale: Tensor::ones(shape, device),
        }
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The location `μ`.
    pub fn loc(&self) -> &Tensor<D> {
        &self.loc
    }

    /// The scale `b`.
    pub fn scale(&self) -> &Tensor<D> {
        &self.scale
    }
}

/// The standard Laplace quantile: `ln(2q)` for `q < ½`, `−ln(2(1 − q))` for `q ≥ ½`.
///
/// Each half is evaluated on `q` clamped to its own side of `½`, where it is finite, so the
/// half that `mask_where` discards contributes neither `NaN` nor an infinite gradient. For
/// `q ≥ ½`, `1 − q` is exact in floating point.
fn standard_quantile<const D: usize>(q: Tensor<D>) -> Tensor<D> {
    let lower = (q.clone().clamp_max(0.5) * 2.0).log();
    let upper = -((-q.clone().clamp_min(0.5) + 1.0) * 2.0).log();
    upper.mask_where(q.lower_elem(0.5), lower)
}

impl<const D: usize> Distribution<D> for Laplace<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "Laplace";

    fn shape(&self) -> Shape {
        self.loc.shape()
    }

    fn device(&self) -> Device {
        self.loc.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let (loc, scale) = (lift::<D, DV>(&self.loc), lift::<D, DV>(&self.scale));
        let [value, loc, scale] = match fused::laplace_log_prob([value, loc, scale]) {
            Ok(lp) => return lp,
            Err(inputs) => inputs,
        };
        -(value - loc).abs() / scale.clone() - (scale * 2.0).log()
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().rsample_with_shape(sample_shape)
    }

    fn detach(&self) -> Self {
        Self {
            loc: self.loc.clone().detach(),
            scale: self.scale.clone().detach(),
        }
    }

    fn validate(&self) -> Result<()> {
        check_param("Laplace", "loc", "finite", &self.loc, f64::is_finite)?;
        check_param("Laplace", "scale", "finite and > 0", &self.scale, |s| {
            s.is_finite() && s > 0.0
        })
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("Laplace", "the real line (not NaN)", value, |v| !v.is_nan())
    }
}

impl<const D: usize> Rsample<D> for Laplace<D> {
    /// Uniform noise `u = 2v − 1` on (−1, 1), `v` from [`noise::uniform_open`], clamped to
    /// `[−(1 − 2⁻²⁴), 1 − 2⁻²⁴]` (in float32, `2v − 1` rounds to exactly −1 for the smallest
    /// `v`).
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("Laplace::noise", sample_shape, &self.shape());
        (noise::uniform_open(dims, &self.device()) * 2.0 - 1.0).clamp(-U_MAX, U_MAX)
    }

    /// `μ − b sign(u) ln(1 − |u|)`, with `ln(1 − |u|)` as `ln1p(−|u|)`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        let (loc, scale) = (lift::<D, DO>(&self.loc), lift::<D, DO>(&self.scale));
        let [loc, scale, noise] = match fused::laplace_rsample([loc, scale, noise]) {
            Ok(x) => return x,
            Err(inputs) => inputs,
        };
        let standard = noise.clone().sign() * log1p(-noise.abs());
        loc - scale * standard
    }
}

impl<const D: usize> Entropy<D> for Laplace<D> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        ln_plus(self.scale.clone(), 1.0 + core::f64::consts::LN_2)
    }
}

impl<const D: usize> Moments<D> for Laplace<D> {
    fn mean(&self) -> Tensor<D> {
        self.loc.clone()
    }
    fn variance(&self) -> Tensor<D> {
        self.scale.clone().square() * 2.0
    }
    fn stddev(&self) -> Tensor<D> {
        self.scale.clone() * SQRT_2
    }
}

impl<const D: usize> Mode<D> for Laplace<D> {
    fn mode(&self) -> Tensor<D> {
        self.loc.clone()
    }
}

impl<const D: usize> Cdf<D> for Laplace<D> {
    /// `½ e^z` for `z < 0`, `1 − ½ e^{−z}` for `z ≥ 0` (`z = (x − μ)/b`), each side evaluated
    /// on `z` clamped to its own half-line so that neither exponential overflows.
    fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let z = (value - lift::<D, DV>(&self.loc)) / lift::<D, DV>(&self.scale);
        let lower = z.clone().clamp_max(0.0).exp() * 0.5;
        let upper = (-z.clone().clamp_min(0.0)).exp() * (-0.5) + 1.0;
        upper.mask_where(z.lower_elem(0.0), lower)
    }

    fn icdf<const DV: usize>(&self, q: Tensor<DV>) -> Tensor<DV> {
        lift::<D, DV>(&self.loc) + lift::<D, DV>(&self.scale) * standard_quantile(q)
    }
}

/// The closed form of the type's documentation, as `d/b_q + expm1(δ − d/b_p) − δ`.
impl<const D: usize, const DQ: usize> KlDivergence<Laplace<DQ>, D> for Laplace<D> {
    fn kl_divergence_keepdim(&self, q: &Laplace<DQ>) -> Tensor<D> {
        let (mp, bp) = (self.loc.clone(), self.scale.clone());
        let (mq, bq) = (lift::<DQ, D>(&q.loc), lift::<DQ, D>(&q.scale));
        let d = (mp - mq).abs();
        let delta = bp.clone().log() - bq.clone().log();
        d.clone() / bq + expm1(delta.clone() - d / bp) - delta
    }
}

/// `KL(N(μ, σ²) ‖ Laplace(m, b)) = ln(b/σ) + E|X − m|/b − (1 + ln(π/2))/2`, with the mean of
/// the folded normal `E|X − m| = σ √(2/π) exp(−d²/(2σ²)) + d erf(d/(σ√2))`, `d = μ − m`.
impl<const D: usize, const DQ: usize> KlDivergence<Laplace<DQ>, D> for Normal<D> {
    fn kl_divergence_keepdim(&self, q: &Laplace<DQ>) -> Tensor<D> {
        let (mu, sigma) = (self.loc().clone(), self.scale().clone());
        let (m, b) = (lift::<DQ, D>(&q.loc), lift::<DQ, D>(&q.scale));
        let d = mu - m;
        let r = d.clone() / sigma.clone();
        let mean_abs = sigma.clone() * (r.clone().square() * (-0.5)).exp() * SQRT_2_OVER_PI
            + d * (r / SQRT_2).erf();
        b.clone().log() - sigma.log() + mean_abs / b - NORMAL_LAPLACE_KL_CONST
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kl::kl_divergence;

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    /// Trapezoid rule for `f` on `[a, b]` with `n` points, in float64.
    fn trapezoid(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
        let h = (b - a) / (n - 1) as f64;
        let ys: Vec<f64> = (0..n).map(|i| f(a + h * i as f64)).collect();
        ys.windows(2).map(|w| 0.5 * h * (w[0] + w[1])).sum()
    }

    fn ln_laplace(x: f64, m: f64, b: f64) -> f64 {
        -(x - m).abs() / b - (2.0 * b).ln()
    }

    #[test]
    fn icdf_inverts_cdf_and_keeps_both_tails() {
        let device = Device::flex();
        let (mu, b) = (0.3f64, 2.5f64);
        let d = Laplace::new(Tensor::<1>::full([5], mu, &device), b);
        let qs: [f32; 5] = [1e-7, 0.01, 0.5, 0.99, U_MAX];
        let x = d.icdf(Tensor::<1>::from_floats(qs, &device));
        let xs = vals(x.clone());
        for (&q, &got) in qs.iter().zip(&xs) {
            let q = q as f64;
            let want = if q < 0.5 {
                mu + b * (2.0 * q).ln()
            } else {
                mu - b * (2.0 * (1.0 - q)).ln()
            };
            assert!(
                (got - want).abs() <= 1e-3 * want.abs().max(1.0),
                "icdf({q}) = {got}, want {want}"
            );
        }
        let back = vals(d.cdf(x));
        for (&q, &p) in qs.iter().zip(&back) {
            let q = q as f64;
            assert!((p - q).abs() <= 1e-6 + 1e-3 * q, "cdf(icdf({q})) = {p}");
        }
    }

    #[test]
    fn values_and_gradients_stay_finite_at_the_ends() {
        let device = Device::flex().autodiff();
        let loc = Tensor::<1>::from_floats([0.3; 5], &device).require_grad();
        let scale = Tensor::<1>::from_floats([2.5; 5], &device).require_grad();
        let d = Laplace::new(loc.clone(), scale.clone());
        let u = Tensor::<1>::from_floats([-U_MAX, -0.5, 0.0, 0.5, U_MAX], &device);
        let q = Tensor::<1>::from_floats([1e-7, 0.3, 0.5, 0.9, U_MAX], &device);
        let x = Tensor::<1>::from_floats([-1e3, -1.0, 0.3, 1.0, 1e3], &device);
        let outputs = [d.rsample_with_noise(u), d.icdf(q), d.cdf(x)];
        let mut total = Tensor::<1>::zeros([1], &device);
        for out in outputs {
            assert!(vals(out.clone()).iter().all(|v| v.is_finite()));
            total = total + out.sum();
        }
        let grads = total.backward();
        for g in [loc.grad(&grads).unwrap(), scale.grad(&grads).unwrap()] {
            assert!(vals(g).iter().all(|v| v.is_finite()));
        }
        let draws: Tensor<2> =
            Laplace::new(Tensor::<1>::zeros([1], &Device::flex()), 1.0).rsample_n(100_000);
        assert!(vals(draws).iter().all(|v| v.is_finite()));
    }

    #[test]
    fn kl_is_zero_against_itself_and_matches_quadrature() {
        let device = Device::flex();
        let (mp, bp, mq, bq) = ([0.3f32, 2.0], [0.7f32, 1.5], [-1.0f32, 2.5], [2.0f32, 0.5]);
        let p = Laplace::new(
            Tensor::<1>::from_floats(mp, &device),
            Tensor::<1>::from_floats(bp, &device),
        );
        let q = Laplace::new(
            Tensor::<1>::from_floats(mq, &device),
            Tensor::<1>::from_floats(bq, &device),
        );
        assert!(vals(kl_divergence(&p, &p)).iter().all(|k| k.abs() < 1e-6));
        let got = vals(kl_divergence(&p, &q));
        let n = Normal::new(
            Tensor::<1>::from_floats(mp, &device),
            Tensor::<1>::from_floats(bp, &device),
        );
        let got_normal = vals(kl_divergence(&n, &q));
        for (i, (&g, &g_normal)) in got.iter().zip(&got_normal).enumerate() {
            let (mp, bp, mq, bq) = (mp[i] as f64, bp[i] as f64, mq[i] as f64, bq[i] as f64);
            let (a, z) = (mp - 40.0 * bp, mp + 40.0 * bp);
            let want = trapezoid(
                |x| {
                    let lp = ln_laplace(x, mp, bp);
                    lp.exp() * (lp - ln_laplace(x, mq, bq))
                },
                a,
                z,
                400_001,
            );
            assert!((g - want).abs() < 1e-5 * (1.0 + want), "{g} vs {want}");
            // The same Normal's density in float64: ln N(x) = −½((x − μ)/σ)² − ln σ − ½ ln 2π.
            let (a, z) = (mp - 12.0 * bp, mp + 12.0 * bp);
            let want = trapezoid(
                |x| {
                    let ln_n = -0.5 * ((x - mp) / bp).powi(2)
                        - bp.ln()
                        - 0.5 * (2.0 * core::f64::consts::PI).ln();
                    ln_n.exp() * (ln_n - ln_laplace(x, mq, bq))
                },
                a,
                z,
                400_001,
            );
            assert!(
                (g_normal - want).abs() < 1e-5 * (1.0 + want),
                "{g_normal} vs {want}"
            );
        }
    }

    #[test]
    fn log_prob_integrates_to_one() {
        // Trapezoid rule over [μ − 30b, μ + 30b] (μ on the grid) from the float32 densities.
        let device = Device::flex();
        let (mu, b) = (1.5f64, 0.8f64);
        let n = 6001;
        let xs: Vec<f32> = (0..n)
            .map(|i| (mu + b * (-30.0 + 60.0 * i as f64 / (n - 1) as f64)) as f32)
            .collect();
        let d = Laplace::new(Tensor::<1>::full([1], mu, &device), b);
        let lp =
            vals(d.log_prob_with_shape::<1, 1>(Tensor::<1>::from_floats(xs.as_slice(), &device)));
        let h = b * 60.0 / (n - 1) as f64;
        let total: f64 = lp
            .windows(2)
            .map(|w| 0.5 * h * (w[0].exp() + w[1].exp()))
            .sum();
        assert!((total - 1.0).abs() < 1e-4, "∫p = {total}");
    }
}
