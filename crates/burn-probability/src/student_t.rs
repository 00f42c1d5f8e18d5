//! The Student-t distribution.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Cdf, Distribution, Entropy, Mode, Moments, Param, Rsample, broadcast_pair, broadcast_params,
    check_param, check_values, lift, sample_dims,
};
use crate::error::Result;
use crate::fused;
use crate::math::{betainc_pair, digamma_difference, lbeta, log1p, ndtri};
use crate::noise;
use crate::sampling;

/// A batch of Student-t distributions with `ν > 0` degrees of freedom (`df`), location `μ` and
/// scale `σ > 0` (`torch.distributions.StudentT`, `tfd.StudentT`).
///
/// # Density function
/// ```text
/// ln p(x) = −ln B(ν/2, ½) − ½ ln ν − ln σ − (ν + 1)/2 · ln1p(z²/ν),      z = (x − μ)/σ
/// ```
/// with `ln B` the log-beta function ([`lbeta`](crate::math::lbeta)), which keeps its digits
/// for large `ν` where `ln Γ((ν+1)/2) − ln Γ(ν/2)` would cancel (`ν = 3·10⁴`). cdf
/// `½ I_{ν/(ν+z²)}(ν/2, ½)` for `z < 0` and one minus that for `z ≥ 0` (the regularized
/// incomplete beta function); quantile by Newton's method on `ln F` from the better of a
/// Cornish–Fisher and a tail-asymptotic start (ten steps); mean `μ` (`ν > 1`, else `NaN`);
/// variance `σ²ν/(ν − 2)` (`ν > 2`; `∞` for `1 < ν ≤ 2`, else `NaN`); mode `μ`; entropy
/// `(ν+1)/2 · (ψ((ν+1)/2) − ψ(ν/2)) + ½ ln ν + ln B(ν/2, ½) + ln σ`, the digamma difference
/// taken from its asymptotic series for large `ν`.
///
/// # Reparameterized sampling
/// `x = μ + σ t` with `t = ε √(ν/(2g))`, `ε` standard normal and `g ~ Gamma(ν/2, 1)` (the
/// normal–Gamma mixture; [`sampling::standard_gamma`]). The gradients with respect to `μ` and
/// `σ` are exact. The gradient with respect to `ν` is the implicit reparameterization gradient
/// (Figurnov et al. 2018) of `t` through its own cdf, `∂t/∂ν = −(∂F(t; ν)/∂ν)/p(t; ν)`, added
/// when `df` is tracked by autodiff (it costs one cdf evaluation).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Cdf, Distribution, StudentT};
///
/// let device = Device::flex();
/// let t = StudentT::new(Tensor::<1>::full([1], 3.0, &device), 0.0, 1.0);
/// let lp: f32 = t.log_prob(Tensor::<1>::zeros([1], &device)).into_scalar();
/// assert!((lp - (2.0 / (3f32.sqrt() * core::f32::consts::PI)).ln()).abs() < 1e-6);
/// let q: f32 = t.icdf(Tensor::<1>::full([1], 0.975, &device)).into_scalar();
/// assert!((q - 3.182_446).abs() < 1e-4);
/// ```
#[derive(Clone, Debug)]
pub struct StudentT<const D: usize> {
    df: Tensor<D>,
    loc: Tensor<D>,
    scale: Tensor<D>,
}

impl<const D: usize> StudentT<D> {
    /// `StudentT(df, loc, scale)` from tensors whose shapes broadcast, or scalars (at least one
    /// tensor; see [`Param`]).
    ///
    /// # Panics
    /// If the shapes do not broadcast, or all are scalars; the message is [`Self::try_new`]'s
    /// error.
    #[track_caller]
    pub fn new(
        df: impl Into<Param<D>>,
        loc: impl Into<Param<D>>,
        scale: impl Into<Param<D>>,
    ) -> Self {
        Self::try_new(df, loc, scale).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`](crate::Error) instead of panicking.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) naming the shapes;
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if all are scalars.
    pub fn try_new(
        df: impl Into<Param<D>>,
        loc: impl Into<Param<D>>,
        scale: impl Into<Param<D>>,
    ) -> Result<Self> {
        let [df, loc, scale] = broadcast_params(
            "StudentT",
            [
                ("df", df.into()),
                ("loc", loc.into()),
                ("scale", scale.into()),
            ],
        )?;
        Ok(Self { df, loc, scale })
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The degrees of freedom `ν`.
    pub fn df(&self) -> &Tensor<D> {
        &self.df
    }

    /// The location `μ`.
    pub fn loc(&self) -> &Tensor<D> {
        &self.loc
    }

    /// The scale `σ`.
    pub fn scale(&self) -> &Tensor<D> {
        &self.scale
    }
}

/// The log-density of the standard Student-t (`μ = 0`, `σ = 1`) at `t`.
fn standard_log_prob<const D: usize>(t: Tensor<D>, df: Tensor<D>) -> Tensor<D> {
    -lbeta(df.clone() * 0.5, df.ones_like() * 0.5)
        - df.clone().log() * 0.5
        - (df.clone() + 1.0) * 0.5 * log1p(t.square() / df)
}

/// The cdf of the standard Student-t at `t`, from `x = 1/(1 + r)` and `1 − x = 1/(1 + 1/r)`,
/// `r = t²/ν`, so that neither loses digits (nor overflows for huge `|t|`).
fn standard_cdf<const D: usize>(t: Tensor<D>, df: Tensor<D>) -> Tensor<D> {
    let r = t.clone().square() / df.clone();
    let x = (r.clone() + 1.0).recip();
    let y = (r.recip() + 1.0).recip();
    let half_i = betainc_pair(df.clone() * 0.5, df.ones_like() * 0.5, x, y) * 0.5;
    let negative = t.lower_elem(0.0);
    (-half_i.clone())
        .add_scalar(1.0)
        .mask_where(negative, half_i)
}

/// The quantile of the standard Student-t at `q`: Newton's method on `ln F(t) = ln p` for
/// `p = min(q, 1 − q)` and `t ≤ 0`, reflected for `q > ½`.
fn standard_icdf<const D: usize>(q: Tensor<D>, df: Tensor<D>) -> Tensor<D> {
    let upper = q.clone().greater_elem(0.5);
    let p = q.clone().mask_where(upper.clone(), (-q).add_scalar(1.0));
    let ln_p = p.clone().log();
    // Cornish–Fisher expansion around the normal quantile.
    let z = ndtri(p.clone());
    let z3 = z.clone().powi_scalar(3);
    let central = z.clone()
        + (z3.clone() + z.clone()) / (df.clone() * 4.0)
        + (z.clone().powi_scalar(5) * 5.0 + z3 * 16.0 + z * 3.0) / (df.clone().square() * 96.0);
    // The tail: F(t) ≈ ν^{(ν−2)/2} |t|^{−ν} / B(ν/2, ½).
    let ln_b = lbeta(df.clone() * 0.5, df.ones_like() * 0.5);
    let tail =
        -(((df.clone() - 2.0) * 0.5 * df.clone().log() - ln_b - ln_p.clone()) / df.clone()).exp();
    let miss = |t: Tensor<D>| (standard_cdf(t, df.clone()).log() - ln_p.clone()).abs();
    let use_tail = miss(tail.clone()).lower(miss(central.clone()));
    let mut t = central.mask_where(use_tail, tail).clamp_max(0.0);
    for _ in 0..10 {
        let ln_f = standard_cdf(t.clone(), df.clone()).log();
        let ln_density = standard_log_prob(t.clone(), df.clone());
        let step = (ln_f.clone() - ln_p.clone()) * (ln_f - ln_density).exp();
        let next = t.clone() - step;
        // At most halve or double the distance to 0 per step, and never cross it.
        let next = next.clone().clamp_max(0.0);
        let lo = t.clone() * 2.0;
        let hi = t.clone() * 0.5;
        let next = next.clone().mask_where(next.clone().lower(lo.clone()), lo);
        t = next.clone().mask_where(next.greater(hi.clone()), hi);
    }
    let at_half = p.equal_elem(0.5);
    let t = t.mask_fill(at_half, 0.0);
    t.clone().mask_where(upper, -t)
}

impl<const D: usize> Distribution<D> for StudentT<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "StudentT";

    fn shape(&self) -> Shape {
        self.loc.shape()
    }

    fn device(&self) -> Device {
        self.loc.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let inputs = [
            value,
            lift::<D, DV>(&self.df),
            lift::<D, DV>(&self.loc),
            lift::<D, DV>(&self.scale),
        ];
        match fused::student_t_log_prob(inputs) {
            Ok(lp) => lp,
            Err([value, df, loc, scale]) => {
                let z = (value - loc) / scale.clone();
                let [z, df] = broadcast_pair(z, df);
                standard_log_prob(z, df) - scale.log()
            }
        }
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().rsample_with_shape(sample_shape)
    }

    fn detach(&self) -> Self {
        Self {
            df: self.df.clone().detach(),
            loc: self.loc.clone().detach(),
            scale: self.scale.clone().detach(),
        }
    }

    fn validate(&self) -> Result<()> {
        check_param("StudentT", "df", "finite and > 0", &self.df, |v| {
            v.is_finite() && v > 0.0
        })?;
        check_param("StudentT", "loc", "finite", &self.loc, f64::is_finite)?;
        check_param("StudentT", "scale", "finite and > 0", &self.scale, |s| {
            s.is_finite() && s > 0.0
        })
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("StudentT", "the real line (not NaN)", value, |v| {
            !v.is_nan()
        })
    }
}

impl<const D: usize> Rsample<D> for StudentT<D> {
    /// A standard Student-t draw `ε √(ν/(2g))` with `g ~ Gamma(ν/2, 1)`: the noise depends on
    /// `ν` (detached), and [`Self::rsample_with_noise`] adds the implicit gradient in `ν`.
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("StudentT::noise", sample_shape, &self.shape());
        let df = lift::<D, DO>(&self.df.clone().detach()).expand(dims);
        let g = sampling::standard_gamma(df.clone() * 0.5);
        noise::standard_normal(dims, &self.device()) * (df / (g * 2.0)).sqrt()
    }

    /// `μ + σ t`; where `df` is tracked by autodiff, `t` carries the implicit one,
    /// `t − (F(t; ν) − F(t; ν)|detached)/p(t; ν)|detached`, whose value is `t`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        let t = if self.df.is_tracked() {
            let t = noise.detach();
            let [t, df] = broadcast_pair(t, lift::<D, DO>(&self.df));
            let f = standard_cdf(t.clone(), df.clone());
            let density = standard_log_prob(t.clone(), df.detach()).exp();
            t + (f.clone().detach() - f) / density
        } else {
            noise
        };
        lift::<D, DO>(&self.loc) + lift::<D, DO>(&self.scale) * t
    }
}

impl<const D: usize> Entropy<D> for StudentT<D> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        let df = self.df.clone();
        let half = df.clone() * 0.5;
        (df.clone() + 1.0) * 0.5 * digamma_difference(half.clone(), df.ones_like() * 0.5)
            + df.clone().log() * 0.5
            + lbeta(half, df.ones_like() * 0.5)
            + self.scale.clone().log()
    }
}

impl<const D: usize> Moments<D> for StudentT<D> {
    /// `μ` for `ν > 1`, `NaN` otherwise (the mean does not exist).
    fn mean(&self) -> Tensor<D> {
        let undefined = self.df.clone().lower_equal_elem(1.0);
        self.loc.clone().mask_fill(undefined, f32::NAN)
    }

    /// `σ²ν/(ν − 2)` for `ν > 2`, `∞` for `1 < ν ≤ 2`, `NaN` for `ν ≤ 1`.
    fn variance(&self) -> Tensor<D> {
        let df = self.df.clone();
        let v = self.scale.clone().square() * df.clone() / (df.clone() - 2.0);
        v.mask_fill(df.clone().lower_equal_elem(2.0), f32::INFINITY)
            .mask_fill(df.lower_equal_elem(1.0), f32::NAN)
    }
}

impl<const D: usize> Mode<D> for StudentT<D> {
    fn mode(&self) -> Tensor<D> {
        self.loc.clone()
    }
}

impl<const D: usize> Cdf<D> for StudentT<D> {
    fn cdf<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let z = (value - lift::<D, DV>(&self.loc)) / lift::<D, DV>(&self.scale);
        let [z, df] = broadcast_pair(z, lift::<D, DV>(&self.df));
        standard_cdf(z, df)
    }

    fn icdf<const DV: usize>(&self, q: Tensor<DV>) -> Tensor<DV> {
        let [q, df] = broadcast_pair(q, lift::<D, DV>(&self.df));
        lift::<D, DV>(&self.loc) + lift::<D, DV>(&self.scale) * standard_icdf(q, df)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    #[test]
    fn icdf_inverts_cdf_from_the_far_tail_to_the_center() {
        let device = Device::flex();
        for df in [0.7f32, 2.885, 8.7, 300.0] {
            let t = StudentT::new(Tensor::<1>::full([1], df, &device), 0.5, 2.0);
            let qs = [1e-6f32, 1e-3, 0.2, 0.5, 0.7, 0.999, 0.9999];
            let x = t.icdf(Tensor::<1>::from_floats(qs, &device));
            let back = vals(t.cdf(x));
            for (b, q) in back.iter().zip(qs) {
                let q = q as f64;
                assert!(
                    (b - q).abs() < 2e-4 * q.min(1.0 - q) + 1e-7,
                    "df {df}: {back:?}"
                );
            }
        }
    }

    #[test]
    fn cdf_of_the_cauchy_case_is_exact() {
        // ν = 1 is the Cauchy distribution: F(t) = ½ + atan(t)/π.
        let device = Device::flex();
        let t = StudentT::new(Tensor::<1>::full([1], 1.0, &device), 0.0, 1.0);
        let xs = [-300.0f32, -2.0, 0.3, 5.0];
        let got = vals(t.cdf(Tensor::<1>::from_floats(xs, &device)));
        for (g, x) in got.iter().zip(xs) {
            let want = 0.5 + (x as f64).atan() / core::f64::consts::PI;
            assert!(
                (g - want).abs() < 1e-5 * want.max(1e-3),
                "{x}: {g} vs {want}"
            );
        }
    }

    /// The implicit gradient in `ν`: the pathwise estimate of `d/dν E[f(t)]` for the bounded
    /// `f(t) = t²/(1 + t²)` against a central finite difference of `E[f]` computed by
    /// quadrature in float64, within 4 standard errors of the pathwise mean.
    #[test]
    fn df_gradient_of_rsample_matches_finite_differences_of_the_expectation() {
        let df0 = 3.5f64;
        let expectation = |nu: f64| {
            let (mut num, mut den) = (0.0, 0.0);
            let n = 400_000;
            for i in 0..n {
                // t = tan(θ) over θ ∈ (−π/2, π/2), dt = sec²θ dθ.
                let th = -core::f64::consts::FRAC_PI_2
                    + core::f64::consts::PI * (i as f64 + 0.5) / n as f64;
                let t = th.tan();
                let w = (1.0 + t * t / nu).powf(-(nu + 1.0) / 2.0) * (1.0 + t * t);
                num += w * t * t / (1.0 + t * t);
                den += w;
            }
            num / den
        };
        let h = 1e-3;
        let want = (expectation(df0 + h) - expectation(df0 - h)) / (2.0 * h);

        let device = Device::flex().autodiff();
        device.seed(17);
        let df = Tensor::<1>::full([1], df0, &device).require_grad();
        let dist = StudentT::new(df.clone(), 0.0, 1.0);
        let n = 200_000;
        let t: Tensor<2> = dist.rsample_with_shape(&[n]);
        let f = t.clone().square() / (t.square() + 1.0);
        // Per-sample gradients through a sum, and their spread for the standard error.
        let grads = f.clone().sum().backward();
        let total = vals(df.grad(&grads).unwrap())[0];
        let estimate = total / n as f64;
        // Standard error from per-sample gradients: recompute them elementwise.
        let dfs = Tensor::<2>::full([n, 1], df0, &device).require_grad();
        let dist = StudentT::new(dfs.clone(), 0.0, 1.0);
        let t: Tensor<2> = dist.rsample();
        let f = t.clone().square() / (t.square() + 1.0);
        let grads = f.sum().backward();
        let per = vals(dfs.grad(&grads).unwrap());
        let mean = per.iter().sum::<f64>() / n as f64;
        let sd = (per.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        let se = sd / (n as f64).sqrt();
        assert!(
            (estimate - want).abs() < 4.0 * se,
            "pathwise {estimate} ± {se}, finite differences {want}"
        );
        assert!(
            (mean - want).abs() < 4.0 * se,
            "pathwise {mean} ± {se}, finite differences {want}"
        );
    }
}
