//! Property tests of the distributions: moments of samples, normalization and cdf by
//! quadrature, quantile round trips, entropy by Monte Carlo, reparameterization gradients,
//! finiteness at difficult points, and agreement between backends.
//!
//! Statistical checks draw a fixed-seed sample and allow 5 standard errors, the standard error
//! being estimated from the same sample (so a check fails by chance with probability below
//! 1e-6, and with a fixed seed it either always passes or always fails). burn's random number
//! generator is process-global, so every test that draws from it holds `RNG` while it seeds
//! and samples.
//!
//! They run on the device named by `BURN_PROBABILITY_TEST_DEVICE` (`flex` by default, `ndarray`,
//! or `wgpu`; see `common::test_device`).

use burn::tensor::{Device, Tensor};
use burn_probability::math::softplus;
use burn_probability::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

mod common;
use common::*;

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x5eed),
        failure_persistence: None,
        ..Config::default()
    }
}

#[test]
fn sample_moments_match_analytic_moments() {
    let d = test_device();
    let normal = Normal::new(t1(&[0.0, -3.0, 10.0], &d), t1(&[1.0, 0.01, 25.0], &d));
    check_sample_moments("Normal", &normal, 1);
    let logistic = Logistic::new(t1(&[0.0, 2.0, -7.0], &d), t1(&[1.0, 0.3, 4.0], &d));
    check_sample_moments("Logistic", &logistic, 2);
    let bernoulli = Bernoulli::new(t1(&[-3.0, 0.0, 0.4, 5.0], &d));
    check_sample_moments("Bernoulli", &bernoulli, 3);
    let mvn = MultivariateNormalDiag::<1>::new(t1(&[1.0, -1.0], &d), t1(&[0.5, 2.0], &d));
    check_sample_moments("MultivariateNormalDiag", &mvn, 4);
}

#[test]
fn entropy_is_minus_expected_log_prob() {
    let d = test_device();
    check_entropy(
        "Normal",
        &Normal::new(t1(&[0.0, 1.0], &d), t1(&[1e-3, 30.0], &d)),
        5,
    );
    check_entropy(
        "Logistic",
        &Logistic::new(t1(&[0.0, 1.0], &d), t1(&[0.1, 3.0], &d)),
        6,
    );
    check_entropy(
        "Bernoulli",
        &Bernoulli::new(t1(&[-4.0, -1.0, 0.0, 2.5], &d)),
        7,
    );
}

#[test]
fn multivariate_entropy_is_minus_expected_log_prob() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let d = test_device();
    d.seed(8);
    let loc = Tensor::<2>::from_floats([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]], &d);
    let scale = Tensor::<2>::from_floats([[0.5, 1.0, 2.0], [0.1, 1.0, 3.0]], &d);
    let q = MultivariateNormalDiag::<2>::new(loc, scale);
    let x: Tensor<3> = q.sample_n(100_000);
    let neg_lp: Tensor<2> = -q.log_prob_n(x);
    let want = vals(q.entropy());
    for (i, (h, se)) in column_stats(neg_lp).into_iter().enumerate() {
        assert_within_se(&format!("MVN[{i}] entropy"), h, se, want[i]);
    }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn normal_density_integrates_to_one_and_to_its_cdf(
        loc in -5.0f64..5.0, scale in 0.05f64..20.0, z0 in -3.0f64..3.0,
    ) {
        let d = test_device();
        let n = Normal::new(t1(&[loc], &d), t1(&[scale], &d));
        let lp = |x: Tensor<1>| n.log_prob_with_shape::<2, 2>(x.unsqueeze_dim(1)).squeeze_dim(1);
        let (a, b) = (loc - 12.0 * scale, loc + 12.0 * scale);
        let total = simpson(lp, &d, a, b, 4000);
        prop_assert!((total - 1.0).abs() < 1e-4, "integral {}", total);
        let x0 = loc + z0 * scale;
        let partial = simpson(lp, &d, a, x0, 4000);
        let cdf = vals(n.cdf(t1(&[x0], &d)))[0];
        prop_assert!((partial - cdf).abs() < 1e-4, "∫ = {} vs cdf {}", partial, cdf);
    }

    #[test]
    fn logistic_density_integrates_to_one_and_to_its_cdf(
        loc in -5.0f64..5.0, scale in 0.05f64..20.0, z0 in -5.0f64..5.0,
    ) {
        let d = test_device();
        let l = Logistic::new(t1(&[loc], &d), t1(&[scale], &d));
        let lp = |x: Tensor<1>| l.log_prob_with_shape::<2, 2>(x.unsqueeze_dim(1)).squeeze_dim(1);
        let (a, b) = (loc - 40.0 * scale, loc + 40.0 * scale);
        let total = simpson(lp, &d, a, b, 8000);
        prop_assert!((total - 1.0).abs() < 1e-4, "integral {}", total);
        let x0 = loc + z0 * scale;
        let partial = simpson(lp, &d, a, x0, 8000);
        let cdf = vals(l.cdf(t1(&[x0], &d)))[0];
        prop_assert!((partial - cdf).abs() < 1e-4, "∫ = {} vs cdf {}", partial, cdf);
    }

    #[test]
    fn bin_concrete_density_integrates_to_one(logits in -3.0f64..3.0, temperature in 1.0f64..3.0) {
        // For t >= 1 the density is bounded on (0, 1), so plain Simpson converges.
        let d = test_device();
        let bc = BinConcrete::new(temperature, t1(&[logits], &d));
        let lp = |y: Tensor<1>| bc.log_prob_with_shape::<2, 2>(y.unsqueeze_dim(1)).squeeze_dim(1);
        let total = simpson(lp, &d, 1e-6, 1.0 - 1e-6, 20000);
        prop_assert!((total - 1.0).abs() < 2e-3, "integral {}", total);
    }

    #[test]
    fn cdf_inverts_icdf(loc in -10.0f64..10.0, scale in 1e-3f64..1e3, q in 1e-6f64..0.999_999) {
        let d = test_device();
        let n = Normal::new(t1(&[loc], &d), t1(&[scale], &d));
        let back = vals(n.cdf(n.icdf(t1(&[q], &d))))[0];
        prop_assert!((back - q).abs() < 2e-6 + 1e-3 * q.min(1.0 - q), "Normal: {} -> {}", q, back);
        let l = Logistic::new(t1(&[loc], &d), t1(&[scale], &d));
        let back = vals(l.cdf(l.icdf(t1(&[q], &d))))[0];
        prop_assert!((back - q).abs() < 2e-6 + 1e-3 * q.min(1.0 - q), "Logistic: {} -> {}", q, back);
    }

    #[test]
    fn bin_concrete_log_prob_is_logit_space_density_minus_log_jacobian(
        logits in -8.0f64..8.0, temperature in 0.05f64..5.0, z in -12.0f64..12.0,
    ) {
        let d = test_device();
        let bc = BinConcrete::new(temperature, t1(&[logits], &d));
        let y = 1.0 / (1.0 + (-z).exp());
        let got = vals(bc.log_prob(t1(&[y], &d)))[0];
        let zf = ((y as f32) as f64 / (1.0 - (y as f32) as f64)).ln();
        let logistic = vals(bc.logit_space().log_prob(t1(&[zf], &d)))[0];
        let yf = (y as f32) as f64;
        let want = logistic - yf.ln() - (1.0 - yf).ln();
        prop_assert!((got - want).abs() < 2e-3 * want.abs().max(1.0), "{} vs {}", got, want);
    }
}

/// `d/dθ E[x²]` by the pathwise estimator against its closed form, for one noise sample set.
#[test]
fn reparameterization_gradients_match_analytic_gradients() {
    if skip_on_wgpu(
        "the gradients sum 200,000 rows, and burn's sums over more than 65,532 rows are wrong there",
    ) {
        return;
    }
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = test_device().autodiff();
    device.seed(11);
    let n = 200_000;
    let (mu, sigma) = (0.7f64, 1.3f64);

    // Normal: E[x²] = μ² + σ², gradient (2μ, 2σ).
    let loc = t1(&[mu], &device).require_grad();
    let scale = t1(&[sigma], &device).require_grad();
    let normal = Normal::new(loc.clone(), scale.clone());
    let x: Tensor<2> = normal.rsample_n(n);
    let grads = x.square().mean().backward();
    let (g_loc, g_scale) = (
        vals(loc.grad(&grads).unwrap())[0],
        vals(scale.grad(&grads).unwrap())[0],
    );
    // Standard errors of the per-sample gradients 2x and 2x·ε.
    let se_loc = 2.0 * sigma / (n as f64).sqrt();
    let se_scale = 2.0 * (2.0 * sigma * sigma + mu * mu).sqrt() / (n as f64).sqrt();
    assert_within_se("d/dμ E[x²]", g_loc, se_loc, 2.0 * mu);
    assert_within_se("d/dσ E[x²]", g_scale, se_scale, 2.0 * sigma);

    // Logistic: E[x²] = μ² + s²π²/3, gradient (2μ, 2sπ²/3).
    let loc = t1(&[mu], &device).require_grad();
    let scale = t1(&[sigma], &device).require_grad();
    let logistic = Logistic::new(loc.clone(), scale.clone());
    let x: Tensor<2> = logistic.rsample_n(n);
    let grads = x.square().mean().backward();
    let (g_loc, g_scale) = (
        vals(loc.grad(&grads).unwrap())[0],
        vals(scale.grad(&grads).unwrap())[0],
    );
    let var = sigma * sigma * std::f64::consts::PI.powi(2) / 3.0;
    let se_loc = 2.0 * var.sqrt() / (n as f64).sqrt();
    // Var(2xε) with ε standard logistic: bounded by 2·sqrt(E[x²ε²]); E[ε⁴] = 7π⁴/15.
    let e4 = 7.0 * std::f64::consts::PI.powi(4) / 15.0;
    let se_scale =
        2.0 * (sigma * sigma * e4 + mu * mu * var / (sigma * sigma)).sqrt() / (n as f64).sqrt();
    assert_within_se("d/dμ E[x²] (Logistic)", g_loc, se_loc, 2.0 * mu);
    assert_within_se(
        "d/ds E[x²] (Logistic)",
        g_scale,
        se_scale,
        2.0 * sigma * std::f64::consts::PI.powi(2) / 3.0,
    );
}

/// BinConcrete has no closed-form moments: check the pathwise gradient of E[y] in the logits
/// against central finite differences with common random numbers (the same noise).
#[test]
fn bin_concrete_rsample_gradient_matches_finite_differences() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = test_device().autodiff();
    device.seed(12);
    let (l0, t, h) = (0.4f64, 0.5f64, 1e-2f64);
    let logits = t1(&[l0], &device).require_grad();
    let bc = BinConcrete::new(t, logits.clone());
    let noise: Tensor<2> = bc.noise(&[20_000]);
    let grads = bc.rsample_with_noise(noise.clone()).mean().backward();
    let g = vals(logits.grad(&grads).unwrap())[0];
    let at = |l: f64| {
        let d = BinConcrete::new(t, t1(&[l], &device));
        vals(d.rsample_with_noise(noise.clone()).mean())[0]
    };
    let fd = (at(l0 + h) - at(l0 - h)) / (2.0 * h);
    assert!(
        (g - fd).abs() < 2e-3 * fd.abs().max(1.0),
        "pathwise {g} vs finite difference {fd}"
    );
}

fn assert_finite(what: &str, xs: Vec<f64>) {
    assert!(
        xs.iter().all(|x| x.is_finite()),
        "{what} not finite: {xs:?}"
    );
}

/// Values and gradients stay finite at |x| = 100, scales 1e-3 and 1e4, logits ±100 (float32),
/// as TFP's `testFiniteGradientAtDifficultPoints`.
#[test]
fn finite_values_and_gradients_at_difficult_points() {
    let device = test_device().autodiff();
    let xs = [-100.0, -20.0, -5.0, 0.0, 5.0, 20.0, 100.0];
    for scale in [1e-3, 1.0, 1e4] {
        for dist in ["Normal", "Logistic"] {
            let loc = t1(&[0.5; 7], &device).require_grad();
            let sc = t1(&[scale; 7], &device).require_grad();
            let x = t1(&xs, &device).require_grad();
            let (lp, extra) = if dist == "Normal" {
                let d = Normal::new(loc.clone(), sc.clone());
                (d.log_prob(x.clone()), d.entropy() + d.cdf(x.clone()))
            } else {
                let d = Logistic::new(loc.clone(), sc.clone());
                (d.log_prob(x.clone()), d.entropy() + d.cdf(x.clone()))
            };
            assert_finite(
                &format!("{dist} log_prob (scale {scale})"),
                vals(lp.clone()),
            );
            let grads = (lp.sum() + extra.sum()).backward();
            for (name, t) in [("loc", &loc), ("scale", &sc), ("value", &x)] {
                assert_finite(
                    &format!("{dist} d/d{name} (scale {scale})"),
                    vals(t.grad(&grads).unwrap()),
                );
            }
        }
    }
    // Logits at ±100 and everything in between, for Bernoulli and BinConcrete.
    let logits = t1(&[-100.0, -20.0, 0.0, 20.0, 100.0], &device).require_grad();
    let b = Bernoulli::new(logits.clone());
    let lp = b.log_prob(t1(&[1.0, 0.0, 1.0, 1.0, 0.0], &device));
    let kl = kl_divergence(
        &b,
        &Bernoulli::new(t1(&[100.0, 3.0, 0.0, -3.0, -100.0], &device)),
    );
    assert_finite("Bernoulli log_prob", vals(lp.clone()));
    assert_finite("Bernoulli KL", vals(kl.clone()));
    let grads = (lp.sum() + b.entropy().sum() + kl.sum()).backward();
    assert_finite("Bernoulli gradient", vals(logits.grad(&grads).unwrap()));

    let logits = t1(&[-100.0, -20.0, 0.0, 20.0, 100.0], &device).require_grad();
    let bc = BinConcrete::new(0.1, logits.clone());
    let z = bc.logit_space().rsample();
    let lz = bc.logit_space().log_prob(z.clone());
    let lp = bc.log_prob(t1(&[1e-6, 0.3, 0.5, 0.7, 0.999_999], &device));
    assert_finite("BinConcrete log_prob", vals(lp.clone()));
    assert_finite("BinConcrete logit-space log_prob", vals(lz.clone()));
    let grads = (lp.sum() + lz.sum() + softplus(z).sum()).backward();
    assert_finite("BinConcrete gradient", vals(logits.grad(&grads).unwrap()));
}

/// The same computations give the same numbers on flex and on ndarray, and on wgpu when that
/// is the test device (`BURN_PROBABILITY_TEST_DEVICE=wgpu`).
#[test]
#[allow(deprecated)] // burn-ndarray is deprecated upstream but still a supported backend of ours
fn flex_and_ndarray_agree() {
    fn run(device: &Device) -> Vec<f64> {
        let loc = Tensor::<2>::from_floats([[0.0, 1.5, -2.0], [0.3, 0.0, 4.0]], device);
        let scale = Tensor::<2>::from_floats([[1.0, 0.2, 3.0], [1e-3, 1e4, 0.7]], device);
        let x = Tensor::<2>::from_floats([[0.5, -1.0, 2.0], [0.3, 5.0, -100.0]], device);
        let q = Tensor::<2>::from_floats([[0.01, 0.5, 0.999], [0.2, 0.7, 1e-6]], device);
        let eps = Tensor::<2>::from_floats([[0.1, -0.2, 2.0], [1.0, -3.0, 0.0]], device);
        let normal = Normal::new(loc.clone(), scale.clone());
        let logistic = Logistic::new(loc.clone(), scale.clone());
        let bern = Bernoulli::new(loc.clone() * 30.0);
        let bc = BinConcrete::new(0.5, loc.clone());
        let mvn = MultivariateNormalDiag::<2>::new(loc.clone(), scale.clone());
        let prior = MultivariateNormalDiag::<2>::standard([1, 3], device);
        let mut out = Vec::new();
        out.extend(vals(normal.log_prob(x.clone())));
        out.extend(vals(normal.cdf(x.clone())));
        out.extend(vals(normal.icdf(q.clone())));
        out.extend(vals(logistic.log_prob(x.clone())));
        out.extend(vals(logistic.icdf(q.clone())));
        out.extend(vals(bern.log_prob(x.clone().greater_elem(0.0).float())));
        out.extend(vals(bern.entropy()));
        out.extend(vals(bc.log_prob(q.clone())));
        out.extend(vals(bc.rsample_with_noise(eps.clone())));
        out.extend(vals(mvn.log_prob(x.clone())));
        out.extend(vals(kl_divergence(&mvn, &prior)));
        out.extend(vals(mvn.rsample_with_noise(eps.clone())));
        // The categorical family and Gumbel (rows of x as logits, eps as Gumbel noise).
        let gumbel = Gumbel::new(loc.clone(), scale.clone());
        out.extend(vals(gumbel.log_prob(x.clone().clamp_min(-3.0))));
        out.extend(vals(gumbel.icdf(q.clone())));
        let logits = x.clone().clamp_min(-30.0);
        let cat = Categorical::new(logits.clone());
        out.extend(vals(
            cat.log_prob(Tensor::<1>::from_floats([2.0, 0.0], device)),
        ));
        out.extend(vals(cat.entropy()));
        let one_hot = OneHotCategorical::new(logits.clone());
        let other = OneHotCategorical::new(loc.clone());
        out.extend(vals(kl_divergence(&one_hot, &other)));
        let relaxed = RelaxedOneHotCategorical::new(0.3, logits.clone());
        let y = relaxed.rsample_with_noise(eps.clone());
        out.extend(vals(y.clone()));
        out.extend(vals(relaxed.log_prob(y)));
        let st = OneHotCategoricalStraightThrough::new(0.3, logits.clone());
        out.extend(vals(st.rsample_with_noise(eps.clone())));
        let exp = ExpRelaxedOneHotCategorical::new(2.0, logits);
        let z = exp.rsample_with_noise(eps);
        out.extend(vals(exp.log_prob(z)));
        out
    }
    let a = run(&Device::flex());
    let mut others = vec![("ndarray", Device::ndarray())];
    if testing_on_wgpu() {
        others.push(("wgpu", test_device()));
    }
    for (name, device) in others {
        let b = run(&device);
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * x.abs().max(1.0),
                "value {i}: flex {x} vs {name} {y}"
            );
        }
    }
}
