//! Property tests of Gamma, Beta and Dirichlet and of their implicit reparameterization
//! gradients: sample moments, the pathwise gradient of `E[f(z)]` against the score-function
//! estimate and against central finite differences of the same expectation computed by
//! quadrature in float64, cdfs against quadrature of the densities, Dirichlet marginals
//! against Beta, and finite values and gradients at concentrations 0.05 and 200.
//!
//! Statistical checks use fixed seeds and allow 5 standard errors estimated from the same
//! sample. burn's generator is process-global, so tests that draw hold `RNG`.

use burn::tensor::{Device, Tensor};
use burn_probability::prelude::*;

mod common;
use common::*;

/// `ln Γ(x)` in float64 for `x > 0` (Lanczos, g = 7, nine terms: relative error near 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const P: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = P[0];
    for (i, p) in P.iter().enumerate().skip(1) {
        a += p / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Composite Simpson's rule in float64 of `g` on `[a, b]` with `n` (even) intervals.
fn simpson64(g: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let h = (b - a) / n as f64;
    let mut s = g(a) + g(b);
    for i in 1..n {
        s += g(a + h * i as f64) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0
}

/// `E[f(Z)]` for `Z ~ Gamma(α, λ)` by quadrature over `t = ln z` (smooth at 0 for any `α`).
fn gamma_expectation(f: impl Fn(f64) -> f64, alpha: f64, rate: f64) -> f64 {
    let log_c = alpha * rate.ln() - ln_gamma(alpha);
    let hi = ((alpha + 12.0 * alpha.sqrt() + 40.0) / rate).ln();
    let lo = hi - 45.0 / alpha.min(1.0) - 10.0;
    simpson64(
        |t| {
            let z = t.exp();
            f(z) * (log_c + alpha * t - rate * z).exp()
        },
        lo,
        hi,
        40_000,
    )
}

/// `E[f(X)]` for `X ~ Beta(a, b)` by quadrature over `t = logit x`.
fn beta_expectation(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    let log_b = ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b);
    let lo = -45.0 / a.min(1.0) - 10.0;
    let hi = 45.0 / b.min(1.0) + 10.0;
    simpson64(
        |t| {
            // ln x and ln(1 − x) without cancellation.
            let (ln_x, ln_y) = (-(-t).exp().ln_1p(), -t.exp().ln_1p());
            f(ln_x.exp()) * (a * ln_x + b * ln_y - log_b).exp()
        },
        lo,
        hi,
        40_000,
    )
}

/// Central finite difference of a float64 function.
fn derivative(g: impl Fn(f64) -> f64, x: f64) -> f64 {
    let h = 1e-4 * x.max(1e-2);
    (g(x + h) - g(x - h)) / (2.0 * h)
}

/// Mean and standard error of a sample in float64.
fn stats(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Checks one gradient of `E[f(x)]` three ways: the per-sample pathwise gradients (autodiff
/// through `rsample`, parameters repeated `n` times so that each draw has its own gradient)
/// and the per-sample score-function gradients `f(x) ∂ ln p(x)/∂θ` must both lie within 5
/// standard errors of `reference` (finite differences of the quadrature); the pathwise
/// estimate must also have the smaller standard error.
fn check_three_ways(name: &str, pathwise: Vec<f64>, score: Vec<f64>, reference: f64) {
    let (pm, pse) = stats(&pathwise);
    let (sm, sse) = stats(&score);
    assert!(
        pathwise.iter().chain(&score).all(|g| g.is_finite()),
        "{name}: a per-sample gradient is not finite"
    );
    assert_within_se(&format!("{name} pathwise"), pm, pse, reference);
    assert_within_se(&format!("{name} score function"), sm, sse, reference);
    assert!(
        pse < sse,
        "{name}: pathwise standard error {pse} is not below the score function's {sse}"
    );
}

const N: usize = 100_000;

#[test]
fn gamma_pathwise_gradients_match_score_function_and_quadrature() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = flex().autodiff();
    let f = |z: f64| (1.0 + z).ln();
    for (seed, alpha, rate) in [(1, 0.3, 1.5), (2, 2.5, 1.5), (3, 40.0, 0.5)] {
        device.seed(seed);
        let a = Tensor::<1>::full([N], alpha, &device).require_grad();
        let r = Tensor::<1>::full([N], rate, &device).require_grad();
        let d = Gamma::new(a.clone(), r.clone());
        let x = d.rsample();
        let grads = x.clone().add_scalar(1.0).log().sum().backward();
        let path_a = vals(a.grad(&grads).unwrap());
        let path_r = vals(r.grad(&grads).unwrap());

        // The score function on a fresh graph (burn's tape is consumed by a backward pass).
        let x = x.detach();
        let a = Tensor::<1>::full([N], alpha, &device).require_grad();
        let r = Tensor::<1>::full([N], rate, &device).require_grad();
        let d = Gamma::new(a.clone(), r.clone());
        let fx = x.clone().add_scalar(1.0).log();
        let grads = (fx * d.log_prob(x)).sum().backward();
        let score_a = vals(a.grad(&grads).unwrap());
        let score_r = vals(r.grad(&grads).unwrap());

        let by_alpha = derivative(|al| gamma_expectation(f, al, rate), alpha);
        let by_rate = derivative(|ra| gamma_expectation(f, alpha, ra), rate);
        let name = format!("Gamma({alpha}, {rate})");
        check_three_ways(&format!("{name} d/dα"), path_a, score_a, by_alpha);
        check_three_ways(&format!("{name} d/dλ"), path_r, score_r, by_rate);
    }
}

#[test]
fn beta_pathwise_gradients_match_score_function_and_quadrature() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = flex().autodiff();
    let f = |x: f64| (3.0 * x).sin();
    for (seed, a0, b0) in [(4, 0.4, 2.0), (5, 3.0, 5.0), (6, 60.0, 0.8)] {
        device.seed(seed);
        let a = Tensor::<1>::full([N], a0, &device).require_grad();
        let b = Tensor::<1>::full([N], b0, &device).require_grad();
        let d = Beta::new(a.clone(), b.clone());
        let x = d.rsample();
        let grads = (x.clone() * 3.0).sin().sum().backward();
        let path_a = vals(a.grad(&grads).unwrap());
        let path_b = vals(b.grad(&grads).unwrap());

        let x = x.detach();
        let a = Tensor::<1>::full([N], a0, &device).require_grad();
        let b = Tensor::<1>::full([N], b0, &device).require_grad();
        let d = Beta::new(a.clone(), b.clone());
        let grads = ((x.clone() * 3.0).sin() * d.log_prob(x)).sum().backward();
        let score_a = vals(a.grad(&grads).unwrap());
        let score_b = vals(b.grad(&grads).unwrap());

        let by_a = derivative(|p| beta_expectation(f, p, b0), a0);
        let by_b = derivative(|q| beta_expectation(f, a0, q), b0);
        let name = format!("Beta({a0}, {b0})");
        check_three_ways(&format!("{name} d/da"), path_a, score_a, by_a);
        check_three_ways(&format!("{name} d/db"), path_b, score_b, by_b);
    }
}

/// A Dirichlet coordinate is Beta(α_k, α₀ − α_k), so the gradient of `E[f(x₀)]` with respect
/// to `α₀` is the Beta gradient in `a`, and with respect to `α₁` (or `α₂`) the one in `b`.
#[test]
fn dirichlet_pathwise_gradients_match_the_beta_marginal() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = flex().autodiff();
    device.seed(7);
    let alpha = [1.5, 0.7, 2.0];
    let n = 60_000;
    let conc = Tensor::<2>::from_floats([[1.5f32, 0.7, 2.0]], &device)
        .repeat_dim(0, n)
        .require_grad();
    let d = Dirichlet::new(conc.clone());
    let x = d.rsample();
    let x0 = x.clone().slice([0..n, 0..1]).reshape([n]);
    let grads = (x0.clone() * 3.0).sin().sum().backward();
    let g = vals(conc.grad(&grads).unwrap());
    let f = |x: f64| (3.0 * x).sin();
    let (a, b) = (alpha[0], alpha[1] + alpha[2]);
    let by_a = derivative(|p| beta_expectation(f, p, b), a);
    let by_b = derivative(|q| beta_expectation(f, a, q), b);
    for (k, want) in [(0, by_a), (1, by_b), (2, by_b)] {
        let per_sample: Vec<f64> = (0..n).map(|i| g[i * 3 + k]).collect();
        let (m, se) = stats(&per_sample);
        assert_within_se(&format!("Dirichlet d E[sin 3x₀]/dα{k}"), m, se, want);
    }
}

#[test]
fn sample_moments_match_analytic_moments() {
    let d = flex();
    let gamma = Gamma::new(
        t1(&[0.05, 0.5, 3.0, 200.0], &d),
        t1(&[1.0, 2.0, 0.1, 50.0], &d),
    );
    check_sample_moments("Gamma", &gamma, 31);
    let beta = Beta::new(
        t1(&[0.05, 0.5, 3.0, 200.0, 1.0], &d),
        t1(&[0.05, 2.0, 3.0, 100.0, 1.0], &d),
    );
    check_sample_moments("Beta", &beta, 32);
}

#[test]
fn dirichlet_samples_have_beta_marginals() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = flex();
    device.seed(33);
    let alpha = [0.3f32, 2.0, 5.0, 0.05];
    let d = Dirichlet::new(Tensor::<1>::from_floats(alpha, &device));
    let n = 100_000;
    let x = vals(d.sample_n(n));
    let total: f64 = alpha.iter().map(|&a| a as f64).sum();
    for (k, &ak) in alpha.iter().enumerate() {
        let ak = ak as f64;
        let beta = Beta::new(t1(&[ak], &device), t1(&[total - ak], &device));
        // The mean and variance of the coordinate are Beta's, in closed form...
        let dm = vals(d.mean())[k];
        let dv = vals(d.variance())[k];
        let (bm, bv) = (vals(beta.mean())[0], vals(beta.variance())[0]);
        assert!((dm - bm).abs() < 1e-6 && (dv - bv).abs() < 1e-6 * bv.max(1e-3));
        // ... and the fraction of samples below Beta's quartiles is 1/4, 1/2, 3/4. The
        // quartiles are found by bisection on Beta's cdf.
        let cdf = |q: f64| vals(beta.cdf(t1(&[q], &device)))[0];
        for p in [0.25, 0.5, 0.75] {
            let (mut lo, mut hi) = (0.0f64, 1.0f64);
            for _ in 0..60 {
                let mid = 0.5 * (lo + hi);
                if cdf(mid) < p {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let q = 0.5 * (lo + hi);
            let frac = (0..n).filter(|&i| x[i * 4 + k] < q).count() as f64 / n as f64;
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert_within_se(&format!("Dirichlet coordinate {k} below {q}"), frac, se, p);
        }
    }
}

#[test]
fn cdfs_match_quadrature_of_the_densities() {
    let d = flex();
    for (alpha, rate, x) in [(0.5, 2.0, 0.3), (3.0, 1.0, 2.0), (200.0, 1.0, 190.0)] {
        let g = Gamma::new(t1(&[alpha], &d), t1(&[rate], &d));
        let got = vals(g.cdf(t1(&[x], &d)))[0];
        let log_c = alpha * f64::ln(rate) - ln_gamma(alpha);
        let lo = f64::ln(x) - 45.0 / alpha.min(1.0) - 10.0;
        let want = simpson64(
            |t| (log_c + alpha * t - rate * t.exp()).exp(),
            lo,
            f64::ln(x),
            20_000,
        );
        assert!(
            (got - want).abs() < 2e-5 * want.max(1e-3),
            "Gamma({alpha}, {rate}) cdf at {x}: {got} vs quadrature {want}"
        );
    }
    for (a, b, x) in [(0.5, 0.5, 0.2), (2.0, 5.0, 0.3), (150.0, 80.0, 0.6)] {
        let beta = Beta::new(t1(&[a], &d), t1(&[b], &d));
        let got = vals(beta.cdf(t1(&[x], &d)))[0];
        let log_b = ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b);
        let want = simpson64(
            |t| {
                let (ln_x, ln_y) = (-(-t).exp().ln_1p(), -t.exp().ln_1p());
                (a * ln_x + b * ln_y - log_b).exp()
            },
            -45.0 / a.min(1.0) - 10.0,
            (x / (1.0 - x)).ln(),
            20_000,
        );
        assert!(
            (got - want).abs() < 1e-4 * want.max(1e-3),
            "Beta({a}, {b}) cdf at {x}: {got} vs quadrature {want}"
        );
    }
}

#[test]
fn entropies_are_minus_expected_log_probs() {
    let d = flex();
    check_entropy(
        "Gamma",
        &Gamma::new(t1(&[0.3, 4.0, 150.0], &d), t1(&[1.0, 0.2, 30.0], &d)),
        41,
    );
    check_entropy(
        "Beta",
        &Beta::new(t1(&[0.3, 4.0, 150.0], &d), t1(&[0.8, 2.0, 90.0], &d)),
        42,
    );
    // Dirichlet: through its log_prob of its own samples.
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    d.seed(43);
    let dir = Dirichlet::new(Tensor::<1>::from_floats([0.5, 3.0, 7.0], &d));
    let x: Tensor<2> = dir.sample_n(100_000);
    let neg_lp = -dir.log_prob_n(x);
    let (h, se) = stats(&vals(neg_lp));
    assert_within_se("Dirichlet entropy", h, se, vals(dir.entropy())[0]);
}

fn assert_finite(what: &str, xs: Vec<f64>) {
    assert!(
        xs.iter().all(|x| x.is_finite()),
        "{what} not finite: {xs:?}"
    );
}

/// Values, samples and gradients stay finite at concentrations 0.05 and 200 (and rates 1e-3
/// and 1e4): log-densities of the family's own samples, entropies, KLs, and the gradients of
/// all of them and of the reparameterized samples.
#[test]
fn finite_values_and_gradients_at_concentrations_005_and_200() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = flex().autodiff();
    device.seed(51);
    let n = 2000;
    let grid = |xs: &[f64]| t1(xs, &device).require_grad();
    let conc = [0.05, 0.05, 200.0, 200.0, 0.05, 200.0];
    let other = [0.05, 200.0, 0.05, 200.0, 1.0, 1.0];
    let rates = [1e-3, 1.0, 1e4, 1e-3, 1e4, 1.0];

    let (a, r) = (grid(&conc), grid(&rates));
    let g = Gamma::new(a.clone(), r.clone());
    let x: Tensor<2> = g.rsample_n(n);
    assert_finite("Gamma samples", vals(x.clone()));
    assert!(
        vals(x.clone()).iter().all(|&v| v > 0.0),
        "Gamma sample at 0"
    );
    let q = Gamma::new(t1(&other, &device), t1(&[1.0; 6], &device));
    let loss = x.clone().sum()
        + g.log_prob_n(x.detach()).sum()
        + g.entropy().sum()
        + kl_divergence(&g, &q).sum();
    assert_finite("Gamma values", vals(loss.clone()));
    let grads = loss.backward();
    assert_finite(
        "Gamma concentration gradient",
        vals(a.grad(&grads).unwrap()),
    );
    assert_finite("Gamma rate gradient", vals(r.grad(&grads).unwrap()));

    let (a, b) = (grid(&conc), grid(&other));
    let beta = Beta::new(a.clone(), b.clone());
    let x: Tensor<2> = beta.rsample_n(n);
    let xv = vals(x.clone());
    assert!(
        xv.iter().all(|&v| v > 0.0 && v < 1.0),
        "Beta sample outside (0, 1)"
    );
    let q = Beta::new(t1(&other, &device), t1(&conc, &device));
    let loss = x.clone().sum()
        + beta.log_prob_n(x.detach()).sum()
        + beta.entropy().sum()
        + kl_divergence(&beta, &q).sum();
    assert_finite("Beta values", vals(loss.clone()));
    let grads = loss.backward();
    assert_finite(
        "Beta concentration1 gradient",
        vals(a.grad(&grads).unwrap()),
    );
    assert_finite(
        "Beta concentration0 gradient",
        vals(b.grad(&grads).unwrap()),
    );

    let c = Tensor::<2>::from_floats([[0.05f32, 0.05, 0.05], [200.0, 0.05, 200.0]], &device)
        .require_grad();
    let dir = Dirichlet::new(c.clone());
    let x: Tensor<3> = dir.rsample_n(n);
    let sums = vals(x.clone().sum_dim(2));
    assert!(
        sums.iter().all(|s| (s - 1.0).abs() < 1e-5),
        "off the simplex"
    );
    let q = Dirichlet::new(Tensor::<2>::ones([2, 3], &device));
    let loss = (x.clone() * x.clone()).sum()
        + dir.log_prob_n(x.detach()).sum()
        + dir.entropy().sum()
        + kl_divergence(&dir, &q).sum();
    assert_finite("Dirichlet values", vals(loss.clone()));
    assert_finite(
        "Dirichlet concentration gradient",
        vals(c.grad(&loss.backward()).unwrap()),
    );
}

/// The implicit gradient of a Gamma sample, checked against the derivative of the quantile:
/// with `u = P(α, z)` fixed, `z(α)` is found by bisection on the cdf at `α ± h`.
#[test]
fn gamma_implicit_gradient_is_the_derivative_of_the_quantile_at_fixed_u() {
    let d = flex();
    for (alpha, z) in [
        (0.3f64, 0.05f64),
        (1.0, 1.2),
        (7.0, 3.0),
        (7.0, 14.0),
        (120.0, 140.0),
    ] {
        let cdf = |al: f64, x: f64| {
            let g = Gamma::new(t1(&[al], &d), 1.0);
            vals(g.cdf(t1(&[x], &d)))[0]
        };
        let u = cdf(alpha, z);
        let quantile = |al: f64| {
            let (mut lo, mut hi) = (0.0f64, z * 4.0 + 10.0);
            for _ in 0..50 {
                let mid = 0.5 * (lo + hi);
                if cdf(al, mid) < u {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            0.5 * (lo + hi)
        };
        let h = 0.02 * alpha;
        let fd = (quantile(alpha + h) - quantile(alpha - h)) / (2.0 * h);
        let got = vals(burn_probability::math::standard_gamma_grad(
            t1(&[alpha], &d),
            t1(&[z], &d),
        ))[0];
        assert!(
            (got - fd).abs() < 2e-2 * fd.abs() + 1e-4,
            "Gamma({alpha}) at {z}: implicit {got} vs quantile difference {fd}"
        );
    }
}

#[test]
fn wrong_parameters_and_values_are_reported() {
    let d: Device = flex();
    let e = Gamma::new(t1(&[1.0, -2.0], &d), 1.0)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Gamma") && e.contains("concentration") && e.contains("-2"),
        "{e}"
    );
    let e = Beta::new(t1(&[1.0], &d), t1(&[0.0], &d))
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("Beta") && e.contains("concentration0"), "{e}");
    let e = Beta::new(t1(&[1.0], &d), 2.0)
        .check_support(&t1(&[1.5], &d))
        .unwrap_err()
        .to_string();
    assert!(e.contains("Beta") && e.contains("1.5"), "{e}");
    let dir = Dirichlet::new(Tensor::<1>::from_floats([1.0, 2.0], &d));
    let e = dir
        .check_support(&Tensor::<1>::from_floats([0.5, 0.6], &d))
        .unwrap_err()
        .to_string();
    assert!(e.contains("Dirichlet") && e.contains("simplex"), "{e}");
    let e = Gamma::<1>::try_new(t1(&[1.0, 2.0], &d), t1(&[1.0, 2.0, 3.0], &d))
        .unwrap_err()
        .to_string();
    assert!(e.contains("rate") && e.contains("[3]"), "{e}");
}
