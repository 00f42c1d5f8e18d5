//! The one seam between this crate and the fused CPU kernels of `burn-flex-kernels`.
//!
//! Each function names one formula. With the `fused` feature (on by default) it runs that
//! formula's kernel when every input is a float32 tensor on the `flex` backend; otherwise, and
//! always without the feature, it hands the inputs back (`Err`) or returns `None`, and the
//! caller computes the formula with burn operations, on any backend. The kernels and their
//! composite counterparts agree to float32 rounding (checked in the tests of both crates).
//!
//! Nothing outside this module names the kernel crate, and nothing in a public trait knows of
//! it: a family with a kernel calls it from its own private code.

// An `Err` hands the caller its inputs back; it is not an error value.
#![allow(clippy::result_large_err)]

use burn::tensor::{Device, Tensor};

#[cfg(feature = "fused")]
use burn_flex_kernels::formulas::{self as k, Binary, Quaternary, Ternary, Tiled, Unary};

/// The result of a fused formula of `N` inputs: the value, or the inputs back.
pub(crate) type Fused<const D: usize, const N: usize> = Result<Tensor<D>, [Tensor<D>; N]>;

/// Defines a function of one tensor that runs `k::unary` with the given formula.
macro_rules! unary_formula {
    ($(#[$doc:meta])* $name:ident($($param:ident: $ty:ty),*) => $op:expr) => {
        $(#[$doc])*
        pub(crate) fn $name<const D: usize>(
            x: Tensor<D>,
            $($param: $ty),*
        ) -> Result<Tensor<D>, Tensor<D>> {
            #[cfg(feature = "fused")]
            return k::unary($op, x);
            #[cfg(not(feature = "fused"))]
            {
                $(let _ = $param;)*
                Err(x)
            }
        }
    };
}

/// Defines a function of `N` tensors that runs `k::<kernel>` with a formula that takes no
/// parameter.
macro_rules! fixed_formula {
    ($(#[$doc:meta])* $name:ident[$n:literal] => $kernel:ident($op:expr)) => {
        $(#[$doc])*
        pub(crate) fn $name<const D: usize>(inputs: [Tensor<D>; $n]) -> Fused<D, $n> {
            #[cfg(feature = "fused")]
            return k::$kernel($op, inputs);
            #[cfg(not(feature = "fused"))]
            Err(inputs)
        }
    };
}

unary_formula!(
    /// `ln x + c`.
    ln_plus(c: f64) => Unary::LogPlus(c as f32)
);
unary_formula!(
    /// `ln(1 + eˣ)`.
    softplus() => Unary::Softplus
);
unary_formula!(
    /// `1 / (1 + e⁻ˣ)`.
    sigmoid() => Unary::Sigmoid
);
unary_formula!(
    /// `ln x − ln(1 − x)`.
    logit() => Unary::Logit
);
unary_formula!(
    /// `ln Γ(x)`.
    lgamma() => Unary::Lgamma
);
unary_formula!(
    /// `tan(π(x − ½))`, the standard Cauchy quantile.
    cauchy_quantile() => Unary::CauchyQuantile
);

fixed_formula!(
    /// `(logits, value) ↦ value·logits − softplus(logits)`.
    bernoulli_log_prob[2] => binary(Binary::BernoulliLogProb)
);

/// [`bernoulli_log_prob`] summed over the dimensions `from..` (kept, with size 1), with the
/// value (the second input) read as if stacked `times` times along dimension 0.
pub(crate) fn bernoulli_log_prob_summed<const D: usize>(
    inputs: [Tensor<D>; 2],
    from: usize,
    times: usize,
) -> Fused<D, 2> {
    #[cfg(feature = "fused")]
    return k::binary_summed(
        Binary::BernoulliLogProb,
        inputs,
        from,
        Tiled { input: 1, times },
    );
    #[cfg(not(feature = "fused"))]
    {
        let _ = (from, times);
        Err(inputs)
    }
}

fixed_formula!(
    /// `(logits, value) ↦ value·logits − A(logits)`, the continuous Bernoulli log-density.
    continuous_bernoulli_log_prob[2] => binary(Binary::ContinuousBernoulliLogProb)
);

/// [`continuous_bernoulli_log_prob`] summed over the dimensions `from..` (kept, with size 1),
/// with the value read as if stacked `times` times along dimension 0.
pub(crate) fn continuous_bernoulli_log_prob_summed<const D: usize>(
    inputs: [Tensor<D>; 2],
    from: usize,
    times: usize,
) -> Fused<D, 2> {
    #[cfg(feature = "fused")]
    return k::binary_summed(
        Binary::ContinuousBernoulliLogProb,
        inputs,
        from,
        Tiled { input: 1, times },
    );
    #[cfg(not(feature = "fused"))]
    {
        let _ = (from, times);
        Err(inputs)
    }
}

fixed_formula!(
    /// `(logits, u) ↦` the continuous Bernoulli quantile at `u`.
    continuous_bernoulli_icdf[2] => binary(Binary::ContinuousBernoulliIcdf)
);

/// `(value, logits) ↦` the BinConcrete log-density in logit space at `temperature`.
pub(crate) fn bin_concrete_log_prob<const D: usize>(
    inputs: [Tensor<D>; 2],
    temperature: f64,
) -> Fused<D, 2> {
    #[cfg(feature = "fused")]
    return k::binary(Binary::BinConcreteLogProb(temperature as f32), inputs);
    #[cfg(not(feature = "fused"))]
    {
        let _ = temperature;
        Err(inputs)
    }
}

/// `(logits, noise) ↦ σ((logits + noise) / temperature)`.
pub(crate) fn bin_concrete_rsample<const D: usize>(
    inputs: [Tensor<D>; 2],
    temperature: f64,
) -> Fused<D, 2> {
    #[cfg(feature = "fused")]
    return k::binary(Binary::BinConcreteRsample(temperature as f32), inputs);
    #[cfg(not(feature = "fused"))]
    {
        let _ = temperature;
        Err(inputs)
    }
}

fixed_formula!(
    /// `(value, loc, scale) ↦` the Normal log-density.
    normal_log_prob[3] => ternary(Ternary::NormalLogProb)
);

/// [`normal_log_prob`] summed over the dimensions `from..` (kept, with size 1), with the value
/// (the first input) read as if stacked `times` times along dimension 0.
pub(crate) fn normal_log_prob_summed<const D: usize>(
    inputs: [Tensor<D>; 3],
    from: usize,
    times: usize,
) -> Fused<D, 3> {
    #[cfg(feature = "fused")]
    return k::ternary_summed(
        Ternary::NormalLogProb,
        inputs,
        from,
        Tiled { input: 0, times },
    );
    #[cfg(not(feature = "fused"))]
    {
        let _ = (from, times);
        Err(inputs)
    }
}

fixed_formula!(
    /// `(value, loc, scale) ↦` the Cauchy log-density.
    cauchy_log_prob[3] => ternary(Ternary::CauchyLogProb)
);

fixed_formula!(
    /// `(value, df, loc, scale) ↦` the Student-t log-density.
    student_t_log_prob[4] => quaternary(Quaternary::StudentTLogProb)
);

/// `(α, z) ↦ dz/dα`, the implicit gradient of a `Gamma(α, 1)` sample (inputs of one shape;
/// the result carries no gradient).
pub(crate) fn standard_gamma_grad<const D: usize>(inputs: [Tensor<D>; 2]) -> Fused<D, 2> {
    #[cfg(feature = "fused")]
    return k::standard_gamma_grad(inputs);
    #[cfg(not(feature = "fused"))]
    Err(inputs)
}

/// `(a, b, z) ↦ [dz/da, dz/db]`, the implicit gradient of a `Beta(a, b)` sample (inputs of one
/// shape; the results carry no gradient), both from one pass.
pub(crate) fn beta_sample_grad<const D: usize>(
    inputs: [Tensor<D>; 3],
) -> Result<[Tensor<D>; 2], [Tensor<D>; 3]> {
    #[cfg(feature = "fused")]
    return k::beta_sample_grad(inputs);
    #[cfg(not(feature = "fused"))]
    Err(inputs)
}

/// `α ↦` one `Gamma(α, 1)` draw per element (Marsaglia–Tsang per element, the `α < 1` boost in
/// log space, at least `f32::MIN_POSITIVE`), following burn's seeded generator; no gradient.
pub(crate) fn standard_gamma<const D: usize>(alpha: Tensor<D>) -> Result<Tensor<D>, Tensor<D>> {
    #[cfg(feature = "fused")]
    return k::standard_gamma(alpha);
    #[cfg(not(feature = "fused"))]
    Err(alpha)
}

fixed_formula!(
    /// `(value, concentration, rate) ↦` the Gamma log-density.
    gamma_log_prob[3] => ternary(Ternary::GammaLogProb)
);

fixed_formula!(
    /// `(value, concentration1, concentration0) ↦` the Beta log-density.
    beta_log_prob[3] => ternary(Ternary::BetaLogProb)
);

fixed_formula!(
    /// `(value, rate) ↦` the Poisson log-mass, `−∞` off the counts.
    poisson_log_prob[2] => binary(Binary::PoissonLogProb)
);

fixed_formula!(
    /// `(value, total_count, logits) ↦` the binomial log-mass, `−∞` off the counts
    /// `0, 1, …, total_count`.
    binomial_log_prob[3] => ternary(Ternary::BinomialLogProb)
);

fixed_formula!(
    /// `(value, rate) ↦ ln rate − rate·value`, the Exponential log-density, `−∞` below 0.
    exponential_log_prob[2] => binary(Binary::ExponentialLogProb)
);

fixed_formula!(
    /// `(value, loc, scale) ↦` the Laplace log-density.
    laplace_log_prob[3] => ternary(Ternary::LaplaceLogProb)
);

fixed_formula!(
    /// `(loc, scale, u) ↦ loc − scale·sign(u)·ln(1 − |u|)`, the Laplace sample from `u ∈ (−1, 1)`.
    laplace_rsample[3] => ternary(Ternary::LaplaceRsample)
);

fixed_formula!(
    /// `(value, loc, scale) ↦` the LogNormal log-density, `−∞` at and below 0.
    log_normal_log_prob[3] => ternary(Ternary::LogNormalLogProb)
);

fixed_formula!(
    /// `(loc, scale, ε) ↦ exp(loc + scale·ε)`.
    log_normal_rsample[3] => ternary(Ternary::LogNormalRsample)
);

fixed_formula!(
    /// `(value, low, high) ↦ −ln(high − low)` on `[low, high)`, `−∞` elsewhere.
    uniform_log_prob[3] => ternary(Ternary::UniformLogProb)
);

fixed_formula!(
    /// `(value, scale) ↦` the HalfNormal log-density, `−∞` below 0.
    half_normal_log_prob[2] => binary(Binary::HalfNormalLogProb)
);

fixed_formula!(
    /// `(value, logits) ↦` the Geometric log-mass, `−∞` off the counts.
    geometric_log_prob[2] => binary(Binary::GeometricLogProb)
);

/// `ln softmax(logits[r, ·])[index[r]]` per row of `[rows, k]` logits and `[rows]` classes.
#[allow(clippy::type_complexity)]
pub(crate) fn log_softmax_gather(
    logits: Tensor<2>,
    index: Tensor<1>,
) -> Result<Tensor<1>, (Tensor<2>, Tensor<1>)> {
    #[cfg(feature = "fused")]
    return k::log_softmax_gather(logits, index);
    #[cfg(not(feature = "fused"))]
    Err((logits, index))
}

fixed_formula!(
    /// `(value, loc, scale) ↦` the Gumbel log-density.
    gumbel_log_prob[3] => ternary(Ternary::GumbelLogProb)
);

fixed_formula!(
    /// `(value, loc, scale) ↦` the Logistic log-density.
    logistic_log_prob[3] => ternary(Ternary::LogisticLogProb)
);

fixed_formula!(
    /// `(loc₁, scale₁, loc₂, scale₂) ↦ KL(N(loc₁, scale₁) ‖ N(loc₂, scale₂))`.
    normal_kl[4] => quaternary(Quaternary::NormalKl)
);

/// `t` summed over its dimensions `from..`, kept with size 1.
pub(crate) fn sum_trailing<const D: usize>(
    t: Tensor<D>,
    from: usize,
) -> Result<Tensor<D>, Tensor<D>> {
    #[cfg(feature = "fused")]
    return k::sum_trailing(t, from);
    #[cfg(not(feature = "fused"))]
    {
        let _ = from;
        Err(t)
    }
}

/// `t.repeat_dim(0, times)`.
pub(crate) fn repeat_leading<const D: usize>(
    t: Tensor<D>,
    times: usize,
) -> Result<Tensor<D>, Tensor<D>> {
    #[cfg(feature = "fused")]
    return k::repeat_leading(t, times);
    #[cfg(not(feature = "fused"))]
    {
        let _ = times;
        Err(t)
    }
}

/// The inputs of the full-covariance Gaussian's kernels: `loc` `[B, K]`, `scale_tril`
/// `[B, K, K]` (its lower triangle) and the values `[S, B, K]`, row `[s, b]` going with batch
/// element `b`.
pub(crate) type TrilInputs = (Tensor<2>, Tensor<3>, Tensor<3>);

/// `(loc, scale_tril, x) ↦ −½‖L⁻¹(x − μ)‖² − Σₖ ln Lₖₖ` per row (the log-density less
/// `(K/2) ln 2π`), `[S, B]`.
pub(crate) fn tril_log_prob(
    loc: Tensor<2>,
    scale_tril: Tensor<3>,
    x: Tensor<3>,
) -> Result<Tensor<2>, TrilInputs> {
    #[cfg(feature = "fused")]
    return k::tril_log_prob(loc, scale_tril, x);
    #[cfg(not(feature = "fused"))]
    Err((loc, scale_tril, x))
}

/// `(loc, scale_tril, ε) ↦ μ + L ε` per row, `[S, B, K]`.
pub(crate) fn tril_affine(
    loc: Tensor<2>,
    scale_tril: Tensor<3>,
    noise: Tensor<3>,
) -> Result<Tensor<3>, TrilInputs> {
    #[cfg(feature = "fused")]
    return k::tril_affine(loc, scale_tril, noise);
    #[cfg(not(feature = "fused"))]
    Err((loc, scale_tril, noise))
}

/// Which noise [`noise`] draws.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Noise {
    /// `N(0, 1)`.
    StandardNormal,
    /// Uniform on the open interval (0, 1).
    UniformOpen,
    /// `ln u − ln(1 − u)`, `u` uniform.
    StandardLogistic,
}

/// Noise of shape `dims` from the vectorized generators, seeded by burn's generator (so it
/// follows `device.seed(..)`), or `None`.
pub(crate) fn noise<const D: usize>(
    kind: Noise,
    dims: [usize; D],
    device: &Device,
) -> Option<Tensor<D>> {
    #[cfg(feature = "fused")]
    return match kind {
        Noise::StandardNormal => k::standard_normal(dims, device),
        Noise::UniformOpen => k::uniform_open(dims, device),
        Noise::StandardLogistic => k::standard_logistic(dims, device),
    };
    #[cfg(not(feature = "fused"))]
    {
        let _ = (kind, dims, device);
        None
    }
}

#[cfg(all(test, feature = "fused"))]
mod tests {
    use burn::tensor::{Device, Tensor, TensorData};

    use crate::MultivariateNormalTriL;
    use crate::distribution::{Distribution, Rsample};
    use crate::math::{beta_sample_grad, standard_gamma_grad};

    fn vals(t: Tensor<1>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    /// The shapes of the grid: the reference cases' range, both tails of the concentrations.
    const SHAPES: [f32; 6] = [0.05, 0.5, 1.0, 5.0, 50.0, 200.0];

    /// Relative difference, with a floor of `floor` for values near 0.
    fn rel(a: f64, b: f64, floor: f64) -> f64 {
        (a - b).abs() / a.abs().max(b.abs()).max(floor)
    }

    /// The kernels (flex) and the composites (ndarray) of the implicit gradients agree over the
    /// bulk and both tails of `Gamma(α)` and `Beta(a, b)` for shapes from 0.05 to 200, with the
    /// device on autodiff as in `rsample` (the kernels on flex, the composite formulas on
    /// ndarray).
    #[test]
    #[allow(deprecated)] // burn-ndarray is deprecated upstream but still a supported backend of ours
    fn fused_implicit_gradients_agree_with_the_composites() {
        let mut alpha = Vec::new();
        let mut z = Vec::new();
        for a in SHAPES {
            let sd = a.sqrt();
            for x in [
                1e-12f32,
                1e-6,
                1e-3,
                0.1,
                1.0,
                3.0,
                a,
                a + 1.0,
                a + 0.999,
                a + 1.001,
            ] {
                alpha.push(a);
                z.push(x);
            }
            for k in [-3.0f32, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 4.0, 8.0] {
                if a + k * sd > 0.0 {
                    alpha.push(a);
                    z.push(a + k * sd);
                }
            }
        }
        let gamma = |device: &Device| {
            let device = device.clone().autodiff();
            let t = |x: &[f32]| Tensor::<1>::from_floats(x, &device);
            vals(standard_gamma_grad(t(&alpha), t(&z)))
        };
        let (fused, composite) = (gamma(&Device::flex()), gamma(&Device::ndarray()));
        for i in 0..alpha.len() {
            let (f, c) = (fused[i], composite[i]);
            assert!(f.is_finite(), "Gamma({}) at {}: fused {f}", alpha[i], z[i]);
            assert!(
                rel(f, c, 1e-30) < 1e-4,
                "Gamma({}) at {}: fused {f} vs composite {c}",
                alpha[i],
                z[i]
            );
        }

        let (mut a, mut b, mut x) = (Vec::new(), Vec::new(), Vec::new());
        for &p in &SHAPES {
            for &q in &SHAPES {
                let mean = p / (p + q);
                let sd = (p * q / ((p + q) * (p + q) * (p + q + 1.0))).sqrt();
                let mut zs = vec![1e-6f32, 1e-3, 0.1, 0.5, 0.9, 0.999, mean];
                zs.extend([-2.0f32, -1.0, 1.0, 2.0].map(|k| mean + k * sd));
                for v in zs.into_iter().filter(|v| *v > 0.0 && *v < 1.0) {
                    a.push(p);
                    b.push(q);
                    x.push(v);
                }
            }
        }
        let beta = |device: &Device| {
            let device = device.clone().autodiff();
            let t = |v: &[f32]| Tensor::<1>::from_floats(v, &device);
            let [da, db] = beta_sample_grad(t(&a), t(&b), t(&x));
            (vals(da), vals(db))
        };
        let (fused, composite) = (beta(&Device::flex()), beta(&Device::ndarray()));
        for i in 0..a.len() {
            // Relative to the larger of the two gradients at that point: one of them may pass
            // through 0 there.
            let scale = fused.0[i].abs().max(fused.1[i].abs()) * 1e-3;
            for (name, f, c) in [
                ("dz/da", fused.0[i], composite.0[i]),
                ("dz/db", fused.1[i], composite.1[i]),
            ] {
                assert!(
                    f.is_finite(),
                    "Beta({}, {}) at {}: fused {name} {f}",
                    a[i],
                    b[i],
                    x[i]
                );
                assert!(
                    rel(f, c, scale.max(1e-30)) < 1e-4,
                    "Beta({}, {}) at {}: {name} fused {f} vs composite {c}",
                    a[i],
                    b[i],
                    x[i]
                );
            }
        }
    }

    /// Deterministic values spread over `[lo, hi]` (a Weyl sequence).
    fn spread(n: usize, lo: f32, hi: f32, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let u = ((i as f64 + 1.0) * 0.618_033_988_75 + seed as f64 * 0.414_213_56).fract();
                lo + (hi - lo) * u as f32
            })
            .collect()
    }

    /// `MultivariateNormalTriL`'s kernels (flex) and its composites (ndarray) agree on the
    /// log-density and the reparameterized sample, values and gradients with respect to `loc`,
    /// `scale_tril` and the value or noise, for values with two sample dimensions in front of
    /// a batch of two dimensions; `scale_tril` holds NaN above the diagonal, which neither reads.
    #[test]
    #[allow(deprecated)] // burn-ndarray is deprecated upstream but still a supported backend of ours
    fn fused_tril_gaussian_agrees_with_the_composite() {
        let (batch, k) = ([3usize, 4usize], 5usize);
        let b = batch[0] * batch[1];
        let diag = spread(b * k * k, 0.5, 1.5, 1);
        let below = spread(b * k * k, -0.5, 0.5, 2);
        let tril: Vec<f32> = (0..b * k * k)
            .map(|n| match ((n % (k * k)) / k, n % k) {
                (i, j) if j < i => below[n],
                (i, j) if j == i => diag[n],
                _ => f32::NAN,
            })
            .collect();
        let loc = spread(b * k, -1.0, 1.0, 3);
        let values = spread(2 * 3 * b * k, -2.0, 2.0, 4);
        let run = |device: &Device, log_prob: bool| {
            let device = device.clone().autodiff();
            let l = Tensor::<4>::from_data(TensorData::new(tril.clone(), [3, 4, k, k]), &device)
                .require_grad();
            let mu = Tensor::<3>::from_data(TensorData::new(loc.clone(), [3, 4, k]), &device)
                .require_grad();
            let v =
                Tensor::<5>::from_data(TensorData::new(values.clone(), [2, 3, 3, 4, k]), &device)
                    .require_grad();
            let d = MultivariateNormalTriL::new(mu.clone(), l.clone());
            let out = if log_prob {
                d.log_prob_keepdim(v.clone())
            } else {
                d.rsample_with_noise(v.clone())
            };
            let w = Tensor::<5>::from_data(
                TensorData::new(spread(out.shape().num_elements(), -1.0, 1.0, 5), out.dims()),
                &device,
            );
            let grads = (out.clone() * w).sum().backward();
            (
                out.into_data().iter::<f64>().collect::<Vec<_>>(),
                [
                    mu.grad(&grads)
                        .unwrap()
                        .into_data()
                        .iter::<f64>()
                        .collect::<Vec<_>>(),
                    l.grad(&grads).unwrap().into_data().iter::<f64>().collect(),
                    v.grad(&grads).unwrap().into_data().iter::<f64>().collect(),
                ],
            )
        };
        // On flex, these shapes take the kernels.
        let flex = Device::flex();
        let t2 = Tensor::<2>::zeros([b, k], &flex);
        let (t3, x) = (
            Tensor::<3>::ones([b, k, k], &flex),
            Tensor::<3>::zeros([6, b, k], &flex),
        );
        assert!(super::tril_log_prob(t2.clone(), t3.clone(), x.clone()).is_ok());
        assert!(super::tril_affine(t2, t3, x).is_ok());
        for log_prob in [true, false] {
            let name = if log_prob { "log_prob" } else { "rsample" };
            let (fused, composite) = (
                run(&Device::flex(), log_prob),
                run(&Device::ndarray(), log_prob),
            );
            let close = |what: &str, a: &[f64], b: &[f64]| {
                assert_eq!(a.len(), b.len());
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    assert!(
                        x.is_finite() && (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                        "{name} {what}[{i}]: fused {x}, composite {y}"
                    );
                }
            };
            close("value", &fused.0, &composite.0);
            for (what, (a, b)) in ["d/dloc", "d/dscale_tril", "d/dvalue"]
                .iter()
                .zip(fused.1.iter().zip(&composite.1))
            {
                close(what, a, b);
            }
            let dl = &fused.1[1];
            assert!(
                (0..dl.len()).all(|n| n % k <= (n % (k * k)) / k || dl[n] == 0.0),
                "{name}: no gradient above the diagonal"
            );
        }
    }
}
