//! Property tests of the eleven families of the families issue (Laplace, LogNormal, StudentT,
//! Cauchy, Exponential, Uniform, HalfNormal, ContinuousBernoulli, Poisson, Binomial,
//! Geometric): sample moments, normalization and cdf by quadrature, quantile round trips,
//! entropy by Monte Carlo, pathwise gradients against finite differences, finite values and
//! gradients at difficult points, and agreement between flex and ndarray.
//!
//! Statistical checks use fixed seeds and allow 5 standard errors estimated from the same
//! sample. burn's generator is process-global, so tests that draw hold `RNG`.

use burn::tensor::{Device, Tensor};
use burn_probability::prelude::*;

mod common;
use common::*;

#[test]
fn sample_moments_match_analytic_moments() {
    let d = flex();
    let laplace = Laplace::new(t1(&[0.0, -3.0, 10.0], &d), t1(&[1.0, 0.01, 25.0], &d));
    check_sample_moments("Laplace", &laplace, 1);
    let log_normal = LogNormal::new(t1(&[0.0, -1.0, 2.0], &d), t1(&[0.3, 0.1, 0.5], &d));
    check_sample_moments("LogNormal", &log_normal, 2);
    // df > 4, so that the squared deviations have a variance.
    let student = StudentT::new(
        t1(&[9.0, 30.0], &d),
        t1(&[0.0, -2.0], &d),
        t1(&[1.0, 0.5], &d),
    );
    check_sample_moments("StudentT", &student, 3);
    check_sample_moments(
        "Exponential",
        &Exponential::new(t1(&[0.5, 1.0, 40.0], &d)),
        4,
    );
    check_sample_moments(
        "Uniform",
        &Uniform::new(t1(&[-1.0, 3.0], &d), t1(&[2.0, 3.5], &d)),
        5,
    );
    check_sample_moments("HalfNormal", &HalfNormal::new(t1(&[0.1, 1.0, 7.0], &d)), 6);
    let cb = ContinuousBernoulli::new(t1(&[-30.0, -2.0, 0.0, 0.05, 3.0], &d));
    check_sample_moments("ContinuousBernoulli", &cb, 7);
    check_sample_moments(
        "Poisson",
        &Poisson::new(t1(&[0.5, 6.0, 12.0, 900.0], &d)),
        8,
    );
    let binomial = Binomial::new(
        t1(&[1.0, 12.0, 60.0, 3000.0], &d),
        t1(&[0.3, -1.0, 2.0, -0.2], &d),
    );
    check_sample_moments("Binomial", &binomial, 9);
    check_sample_moments("Geometric", &Geometric::new(t1(&[-2.0, 0.0, 3.0], &d)), 10);
}

#[test]
fn cauchy_samples_have_its_quartiles() {
    // No moments: the fractions of a sample below the quartiles are 1/4, 1/2, 3/4.
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let d = flex();
    d.seed(11);
    let c = Cauchy::new(t1(&[1.5], &d), t1(&[0.3], &d));
    let n = 100_000;
    let x: Tensor<2> = c.sample_n(n);
    let x = vals(x);
    for (q, quantile) in [(0.25, 1.2), (0.5, 1.5), (0.75, 1.8)] {
        let frac = x.iter().filter(|&&v| v < quantile).count() as f64 / n as f64;
        let se = (q * (1.0 - q) / n as f64).sqrt();
        assert_within_se(&format!("Cauchy fraction below {quantile}"), frac, se, q);
    }
}

#[test]
fn entropy_is_minus_expected_log_prob() {
    let d = flex();
    check_entropy(
        "Laplace",
        &Laplace::new(t1(&[0.0, 1.0], &d), t1(&[1e-3, 30.0], &d)),
        21,
    );
    check_entropy(
        "LogNormal",
        &LogNormal::new(t1(&[0.0, 3.0], &d), t1(&[0.1, 2.0], &d)),
        22,
    );
    let student = StudentT::new(
        t1(&[1.5, 4.0, 300.0], &d),
        t1(&[0.0; 3], &d),
        t1(&[1.0, 0.2, 3.0], &d),
    );
    check_entropy("StudentT", &student, 23);
    check_entropy("Cauchy", &Cauchy::new(t1(&[0.0], &d), t1(&[2.0], &d)), 24);
    check_entropy("Exponential", &Exponential::new(t1(&[0.01, 3.0], &d)), 25);
    check_entropy(
        "Uniform",
        &Uniform::new(t1(&[-4.0], &d), t1(&[-3.9], &d)),
        26,
    );
    check_entropy("HalfNormal", &HalfNormal::new(t1(&[1e-3, 5.0], &d)), 27);
    let cb = ContinuousBernoulli::new(t1(&[-50.0, -1.0, 0.01, 4.0], &d));
    check_entropy("ContinuousBernoulli", &cb, 28);
    let binomial = Binomial::new(t1(&[5.0, 40.0], &d), t1(&[-1.0, 0.7], &d));
    check_entropy("Binomial", &binomial, 29);
    check_entropy("Geometric", &Geometric::new(t1(&[-3.0, 0.0, 2.0], &d)), 30);
}

/// `∫ₐᵇ p = F(b) − F(a)` by Simpson's rule, for a single distribution (batch `[1]`); and
/// `∫ p = 1` where `[a, b]` holds all but a negligible mass (`total`).
fn check_density<Dist: Cdf<1, Batch = Tensor<1>>>(
    name: &str,
    d: &Dist,
    a: f64,
    b: f64,
    total: bool,
) {
    let lp = |x: Tensor<1>| {
        d.log_prob_with_shape::<2, 2>(x.unsqueeze_dim(1))
            .squeeze_dim(1)
    };
    let integral = simpson(lp, &d.device(), a, b, 20_000);
    let cdf = vals(d.cdf(t1(&[a, b], &d.device())));
    assert!(
        (integral - (cdf[1] - cdf[0])).abs() < 2e-4,
        "{name}: ∫ p over [{a}, {b}] = {integral}, cdf difference {}",
        cdf[1] - cdf[0]
    );
    if total {
        assert!((integral - 1.0).abs() < 2e-4, "{name}: ∫ p = {integral}");
    }
}

#[test]
fn densities_integrate_to_one_and_to_their_cdf() {
    let d = flex();
    check_density(
        "Laplace",
        &Laplace::new(t1(&[0.7], &d), t1(&[0.4], &d)),
        -8.0,
        10.0,
        true,
    );
    check_density(
        "LogNormal",
        &LogNormal::new(t1(&[0.2], &d), t1(&[0.5], &d)),
        1e-6,
        30.0,
        true,
    );
    check_density(
        "StudentT",
        &StudentT::new(t1(&[3.5], &d), t1(&[1.0], &d), t1(&[2.0], &d)),
        -6.0,
        4.0,
        false,
    );
    check_density(
        "StudentT, ν = 0.7",
        &StudentT::new(t1(&[0.7], &d), t1(&[0.0], &d), t1(&[1.0], &d)),
        -3.0,
        5.0,
        false,
    );
    check_density(
        "Cauchy",
        &Cauchy::new(t1(&[-1.0], &d), t1(&[0.5], &d)),
        -4.0,
        2.0,
        false,
    );
    check_density(
        "Exponential",
        &Exponential::new(t1(&[2.5], &d)),
        0.0,
        12.0,
        true,
    );
    check_density(
        "Uniform",
        &Uniform::new(t1(&[-1.0], &d), t1(&[2.0], &d)),
        -1.0,
        1.5,
        false,
    );
    check_density(
        "HalfNormal",
        &HalfNormal::new(t1(&[1.7], &d)),
        0.0,
        15.0,
        true,
    );
    for eta in [-40.0, -3.0, -0.05, 0.0, 1e-4, 0.7, 25.0] {
        let cb = ContinuousBernoulli::new(t1(&[eta], &d));
        check_density(
            &format!("ContinuousBernoulli({eta})"),
            &cb,
            0.0,
            1.0,
            eta.abs() < 30.0,
        );
        check_density(
            &format!("ContinuousBernoulli({eta}) on [0.2, 0.6]"),
            &cb,
            0.2,
            0.6,
            false,
        );
    }
}

#[test]
fn discrete_masses_sum_to_one_and_to_their_cdf() {
    let d = flex();
    let ks: Vec<f64> = (0..400).map(|k| k as f64).collect();
    let check = |name: &str, lp: Vec<f64>, cdf: Vec<f64>| {
        let mut running = 0.0;
        for (k, l) in lp.iter().enumerate() {
            running += l.exp();
            assert!(
                (cdf[k] - running).abs() < 3e-5,
                "{name}: cdf({k}) = {} vs Σ = {running}",
                cdf[k]
            );
        }
        assert!((running - 1.0).abs() < 3e-5, "{name}: Σ p = {running}");
    };
    let p = Poisson::new(t1(&[37.5], &d));
    check(
        "Poisson",
        vals(p.log_prob_with_shape::<1, 1>(t1(&ks, &d))),
        vals(p.cdf(t1(&ks, &d))),
    );
    let b = Binomial::new(t1(&[150.0], &d), t1(&[-0.8], &d));
    check(
        "Binomial",
        vals(b.log_prob_with_shape::<1, 1>(t1(&ks, &d))),
        vals(b.cdf(t1(&ks, &d))),
    );
    let g = Geometric::new(t1(&[-1.5], &d));
    check(
        "Geometric",
        vals(g.log_prob_with_shape::<1, 1>(t1(&ks, &d))),
        vals(g.cdf(t1(&ks, &d))),
    );
}

#[test]
fn cdf_inverts_icdf() {
    let d = flex();
    let qs = [1e-6, 1e-3, 0.1, 0.5, 0.77, 0.999, 0.999_999];
    fn round_trip<Dist: Cdf<1, Batch = Tensor<1>>>(
        name: &str,
        dist: &Dist,
        qs: &[f64],
        slack: f64,
    ) {
        let device = dist.device();
        let back = vals(dist.cdf(dist.icdf(t1(qs, &device))));
        for (b, q) in back.iter().zip(qs) {
            let tol = 2e-6 + slack * q.min(1.0 - q);
            assert!((b - q).abs() < tol, "{name}: cdf(icdf({q})) = {b}");
        }
    }
    round_trip(
        "Laplace",
        &Laplace::new(t1(&[2.0; 7], &d), t1(&[0.01; 7], &d)),
        &qs,
        1e-3,
    );
    round_trip(
        "LogNormal",
        &LogNormal::new(t1(&[-1.0; 7], &d), t1(&[1.9; 7], &d)),
        &qs,
        1e-3,
    );
    round_trip(
        "StudentT",
        &StudentT::new(t1(&[2.9; 7], &d), t1(&[0.0; 7], &d), t1(&[1.05; 7], &d)),
        &qs,
        1e-3,
    );
    round_trip(
        "Cauchy",
        &Cauchy::new(t1(&[1.0; 7], &d), t1(&[0.5; 7], &d)),
        &qs,
        1e-3,
    );
    round_trip(
        "Exponential",
        &Exponential::new(t1(&[1e-5; 7], &d)),
        &qs,
        1e-3,
    );
    round_trip(
        "Uniform",
        &Uniform::new(t1(&[-3.0; 7], &d), t1(&[5.0; 7], &d)),
        &qs,
        1e-3,
    );
    round_trip("HalfNormal", &HalfNormal::new(t1(&[3.0; 7], &d)), &qs, 1e-3);
    for eta in [-60.0, -1.0, 1e-7, 4e-4, 2.0, 95.0] {
        round_trip(
            &format!("ContinuousBernoulli({eta})"),
            &ContinuousBernoulli::new(t1(&[eta; 7], &d)),
            &qs,
            1e-3,
        );
    }
}

/// `d/dθ mean(atan(x))` for one fixed noise sample: the pathwise gradient (autodiff through
/// `rsample_with_noise`) against the central finite difference of the same function (`atan`
/// keeps `x·f′(x)` bounded, so that heavy tails do not swamp the finite difference).
fn check_pathwise<Dist: Rsample<1>>(name: &str, make: impl Fn(Tensor<1>) -> Dist, theta: f64) {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = flex().autodiff();
    device.seed(99);
    let n = 20_000;
    let th = t1(&[theta], &device).require_grad();
    let dist = make(th.clone());
    let noise: Tensor<2> = dist.noise(&[n]);
    let noise_data = noise.clone().into_data();
    let loss = dist.rsample_with_noise(noise).atan().mean();
    let g = vals(th.grad(&loss.backward()).unwrap())[0];
    let at = |t: f64| {
        let plain = flex();
        let noise = Tensor::<2>::from_data(noise_data.clone(), &plain);
        let x = vals(make(t1(&[t], &plain)).rsample_with_noise(noise).atan());
        x.iter().sum::<f64>() / x.len() as f64
    };
    let h = 1e-3 * theta.abs().max(1.0);
    let fd = (at(theta + h) - at(theta - h)) / (2.0 * h);
    assert!(
        (g - fd).abs() < 5e-3 * fd.abs().max(0.05),
        "{name}: pathwise {g} vs finite difference {fd}"
    );
}

#[test]
fn pathwise_gradients_match_finite_differences() {
    check_pathwise("Laplace loc", |t| Laplace::new(t, 0.7), 0.3);
    check_pathwise(
        "Laplace scale",
        |t| Laplace::new(Tensor::<1>::zeros([1], &t.device()) + 0.3, t),
        0.7,
    );
    check_pathwise("LogNormal loc", |t| LogNormal::new(t, 0.4), -0.2);
    check_pathwise(
        "LogNormal scale",
        |t| LogNormal::new(Tensor::<1>::zeros([1], &t.device()), t),
        0.4,
    );
    check_pathwise(
        "StudentT loc",
        |t| StudentT::new(Tensor::<1>::full([1], 5.0, &t.device()), t, 1.3),
        0.5,
    );
    check_pathwise(
        "StudentT scale",
        |t| StudentT::new(Tensor::<1>::full([1], 5.0, &t.device()), 0.5, t),
        1.3,
    );
    check_pathwise(
        "Cauchy scale",
        |t| Cauchy::new(Tensor::<1>::zeros([1], &t.device()), t),
        0.8,
    );
    check_pathwise("Exponential rate", Exponential::new, 1.7);
    check_pathwise(
        "Uniform high",
        |t| Uniform::new(Tensor::<1>::zeros([1], &t.device()) - 1.0, t),
        2.0,
    );
    check_pathwise("HalfNormal scale", HalfNormal::new, 1.2);
    check_pathwise("ContinuousBernoulli logits", ContinuousBernoulli::new, 2.5);
    check_pathwise(
        "ContinuousBernoulli logits near 0",
        ContinuousBernoulli::new,
        0.02,
    );
    check_pathwise(
        "ContinuousBernoulli logits far",
        ContinuousBernoulli::new,
        -40.0,
    );
}

fn assert_finite(what: &str, xs: Vec<f64>) {
    assert!(
        xs.iter().all(|x| x.is_finite()),
        "{what} not finite: {xs:?}"
    );
}

/// Values and gradients stay finite at |x| = 100, scales 1e-3 and 1e4 and logits ±100.
#[test]
fn finite_values_and_gradients_at_difficult_points() {
    let device = flex().autodiff();
    let xs = [-100.0, -20.0, -1.0, 0.5, 5.0, 20.0, 100.0];
    let pos = [1e-3, 0.1, 0.5, 1.0, 5.0, 20.0, 100.0];
    for scale in [1e-3, 1.0, 1e4] {
        let loc = t1(&[0.5; 7], &device).require_grad();
        let sc = t1(&[scale; 7], &device).require_grad();
        let x = t1(&xs, &device).require_grad();
        let y = t1(&pos, &device).require_grad();
        let laplace = Laplace::new(loc.clone(), sc.clone());
        let cauchy = Cauchy::new(loc.clone(), sc.clone());
        let student = StudentT::new(sc.clone() * 3.0, loc.clone(), sc.clone());
        let log_normal = LogNormal::new(loc.clone(), sc.clone());
        let half = HalfNormal::new(sc.clone());
        let expo = Exponential::new(sc.clone());
        let total = laplace.log_prob(x.clone()).sum()
            + laplace.cdf(x.clone()).sum()
            + cauchy.log_prob(x.clone()).sum()
            + cauchy.cdf(x.clone()).sum()
            + student.log_prob(x.clone()).sum()
            + student.entropy().sum()
            + log_normal.log_prob(y.clone()).sum()
            + log_normal.cdf(y.clone()).sum()
            + half.log_prob(y.clone()).sum()
            + expo.log_prob(y.clone()).sum()
            + expo.cdf(y.clone()).sum();
        assert_finite(
            &format!("log-densities (scale {scale})"),
            vals(total.clone()),
        );
        let grads = total.backward();
        for (name, t) in [("loc", &loc), ("scale", &sc), ("x", &x), ("y", &y)] {
            assert_finite(
                &format!("d/d{name} (scale {scale})"),
                vals(t.grad(&grads).unwrap()),
            );
        }
    }
    let logits = t1(&[-100.0, -20.0, -1e-6, 0.0, 1e-6, 20.0, 100.0], &device).require_grad();
    let grey = t1(&[0.0, 0.1, 0.5, 0.5, 0.5, 0.9, 1.0], &device);
    let cb = ContinuousBernoulli::new(logits.clone());
    let binomial = Binomial::new(t1(&[10.0; 7], &device), logits.clone());
    let geometric = Geometric::new(logits.clone());
    let counts = t1(&[0.0, 3.0, 5.0, 5.0, 5.0, 7.0, 10.0], &device);
    let total = cb.log_prob(grey.clone()).sum()
        + cb.entropy().sum()
        + cb.mean().sum()
        + cb.variance().sum()
        + cb.cdf(grey.clone()).sum()
        + cb.rsample().sum()
        + kl_divergence(
            &cb,
            &ContinuousBernoulli::new(logits.clone().detach().flip([0])),
        )
        .sum()
        + binomial.log_prob(counts.clone()).sum()
        + geometric.log_prob(counts).sum()
        + geometric.entropy().sum();
    assert_finite("logit families", vals(total.clone()));
    assert_finite(
        "logit families' gradient",
        vals(logits.grad(&total.backward()).unwrap()),
    );
    let rate = t1(&[1e-3, 1.0, 1e4, 5e4], &device).require_grad();
    let poisson = Poisson::new(rate.clone());
    let lp = poisson.log_prob(t1(&[0.0, 3.0, 10_000.0, 58_582.0], &device));
    assert_finite("Poisson log_prob", vals(lp.clone()));
    assert_finite(
        "Poisson gradient",
        vals(rate.grad(&lp.sum().backward()).unwrap()),
    );
}

/// The same computations give the same numbers on flex and on ndarray.
#[test]
#[allow(deprecated)] // burn-ndarray is deprecated upstream but still a supported backend of ours
fn flex_and_ndarray_agree() {
    fn run(device: &Device) -> Vec<f64> {
        let loc = Tensor::<1>::from_floats([0.0, 1.5, -2.0, 0.3], device);
        let scale = Tensor::<1>::from_floats([1.0, 0.2, 3.0, 1e-3], device);
        let x = Tensor::<1>::from_floats([0.5, -1.0, 2.0, 0.3], device);
        let y = Tensor::<1>::from_floats([0.5, 1.0, 20.0, 1e-3], device);
        let q = Tensor::<1>::from_floats([0.01, 0.5, 0.999, 1e-6], device);
        let mut out = Vec::new();
        let laplace = Laplace::new(loc.clone(), scale.clone());
        out.extend(vals(laplace.log_prob(x.clone())));
        out.extend(vals(laplace.icdf(q.clone())));
        let ln = LogNormal::new(loc.clone(), scale.clone());
        out.extend(vals(ln.log_prob(y.clone())));
        out.extend(vals(ln.icdf(q.clone())));
        let st = StudentT::new(scale.clone() * 10.0 + 0.5, loc.clone(), scale.clone());
        out.extend(vals(st.log_prob(x.clone())));
        out.extend(vals(st.cdf(x.clone())));
        out.extend(vals(st.icdf(q.clone())));
        out.extend(vals(st.entropy()));
        let cauchy = Cauchy::new(loc.clone(), scale.clone());
        out.extend(vals(cauchy.log_prob(x.clone())));
        out.extend(vals(cauchy.icdf(q.clone())));
        out.extend(vals(Exponential::new(scale.clone()).log_prob(y.clone())));
        out.extend(vals(
            Uniform::new(loc.clone(), loc.clone() + 2.0).log_prob(x.clone()),
        ));
        out.extend(vals(HalfNormal::new(scale.clone()).icdf(q.clone())));
        let cb = ContinuousBernoulli::new(loc.clone() * 30.0);
        out.extend(vals(cb.log_prob(q.clone())));
        out.extend(vals(cb.icdf(q.clone())));
        out.extend(vals(cb.variance()));
        let counts = Tensor::<1>::from_floats([0.0, 3.0, 7.0, 2.0], device);
        out.extend(vals(Poisson::new(y.clone()).log_prob(counts.clone())));
        out.extend(vals(Poisson::new(y.clone()).cdf(counts.clone())));
        let binomial = Binomial::new(Tensor::<1>::full([4], 9.0, device), loc.clone());
        out.extend(vals(binomial.log_prob(counts.clone())));
        out.extend(vals(binomial.cdf(counts.clone())));
        out.extend(vals(Geometric::new(loc.clone()).log_prob(counts)));
        out
    }
    let a = run(&Device::flex());
    let b = run(&Device::ndarray());
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            x == y || (x - y).abs() <= 1e-5 * x.abs().max(1.0),
            "value {i}: flex {x} vs ndarray {y}"
        );
    }
}

/// The log-densities of the families with fused kernels, and their gradients to every
/// parameter and to the value, on flex (the kernels) and on ndarray (the composite formulas),
/// at ordinary and at extreme points (|x| = 100, scales 10⁻³ and 10⁴, logits ±100): finite
/// gradients on flex, and agreement with ndarray.
#[test]
#[allow(deprecated)] // burn-ndarray is deprecated upstream but still a supported backend of ours
fn fused_log_densities_and_gradients_agree_with_the_composites() {
    type Grads = Vec<Vec<f64>>;
    fn run(device: &Device) -> Vec<(&'static str, Vec<f64>, Grads)> {
        let device = device.clone().autodiff();
        let t = |xs: &[f64]| t1(xs, &device).require_grad();
        let with_grads = |name, lp: Tensor<1>, inputs: &[Tensor<1>]| {
            let grads = lp.clone().sum().backward();
            let g = inputs
                .iter()
                .map(|x| x.grad(&grads).map(vals).unwrap_or_default())
                .collect();
            (name, vals(lp), g)
        };
        let x = t(&[0.5, -100.0, 100.0, 0.3, 2.0, -7.0]);
        let loc = t(&[0.0, 1.5, -2.0, 0.3, 1.0, 0.0]);
        let scale = t(&[1.0, 1e-3, 1e4, 1e-3, 0.2, 3.0]);
        let df = t(&[1.0, 0.5, 3.0, 1e3, 30.0, 7.5]);
        let mut out = Vec::new();
        let st = StudentT::new(df.clone(), loc.clone(), scale.clone());
        let inputs = [x.clone(), df.clone(), loc.clone(), scale.clone()];
        out.push(with_grads("StudentT", st.log_prob(x.clone()), &inputs));
        let cauchy = Cauchy::new(loc.clone(), scale.clone());
        let inputs = [x.clone(), loc.clone(), scale.clone()];
        out.push(with_grads("Cauchy", cauchy.log_prob(x.clone()), &inputs));
        let y = t(&[0.5, 100.0, -1.0, 0.0, 1e-3, 20.0]);
        let inputs = [y.clone(), scale.clone()];
        let exp = Exponential::new(scale.clone());
        out.push(with_grads("Exponential", exp.log_prob(y.clone()), &inputs));
        let counts = t(&[0.0, 3.0, 7.0, 2.0, 100.0, 9.0]);
        let rate = t(&[0.5, 1e-3, 20.0, 1e4, 100.0, 3.0]);
        let inputs = [counts.clone(), rate.clone()];
        let poisson = Poisson::new(rate.clone());
        out.push(with_grads(
            "Poisson",
            poisson.log_prob(counts.clone()),
            &inputs,
        ));
        let total = t(&[9.0, 9.0, 9.0, 2.0, 1000.0, 9.0]);
        let logits = t(&[0.0, 100.0, -100.0, 0.3, 1.0, -2.0]);
        let inputs = [counts.clone(), total.clone(), logits.clone()];
        let binomial = Binomial::new(total.clone(), logits.clone());
        out.push(with_grads(
            "Binomial",
            binomial.log_prob(counts.clone()),
            &inputs,
        ));
        let laplace = Laplace::new(loc.clone(), scale.clone());
        let inputs = [x.clone(), loc.clone(), scale.clone()];
        out.push(with_grads("Laplace", laplace.log_prob(x.clone()), &inputs));
        let u = t(&[0.5, -0.999, 0.999, 0.0, -0.3, 1e-3]);
        let inputs = [loc.clone(), scale.clone(), u.clone()];
        let laplace = Laplace::new(loc.clone(), scale.clone());
        let sample = laplace.rsample_with_noise(u);
        out.push(with_grads("Laplace rsample", sample, &inputs));
        let log_normal = LogNormal::new(loc.clone(), scale.clone());
        let inputs = [y.clone(), loc.clone(), scale.clone()];
        let lp = log_normal.log_prob(y.clone());
        out.push(with_grads("LogNormal", lp, &inputs));
        let eps = t(&[0.5, -100.0, 1e-3, 0.0, 3.0, -2.0]);
        let small = t(&[1.0, 1e-3, 1e-3, 0.5, 0.2, 3.0]);
        let inputs = [loc.clone(), small.clone(), eps.clone()];
        let sample = LogNormal::new(loc.clone(), small).rsample_with_noise(eps);
        out.push(with_grads("LogNormal rsample", sample, &inputs));
        let low = t(&[0.0, -101.0, -1e4, 0.3, -1.0, -7.0]);
        let high = t(&[1.0, 100.0, 1e4, 0.301, 2.0, -6.999]);
        let inputs = [low.clone(), high.clone()];
        let uniform = Uniform::new(low.clone(), high.clone());
        out.push(with_grads("Uniform", uniform.log_prob(x.clone()), &inputs));
        let inputs = [y.clone(), scale.clone()];
        let half_normal = HalfNormal::new(scale.clone());
        out.push(with_grads("HalfNormal", half_normal.log_prob(y), &inputs));
        let q = t(&[0.5, 1e-3, 0.999, 0.3, 0.7, 1e-6]);
        let inputs = [loc.clone(), scale.clone(), q.clone()];
        let cauchy = Cauchy::new(loc.clone(), scale.clone());
        out.push(with_grads("Cauchy icdf", cauchy.icdf(q), &inputs));
        let k = t(&[0.0, 3.0, 7.5, -1.0, 100.0, 9.0]);
        let inputs = [k.clone(), logits.clone()];
        let geometric = Geometric::new(logits.clone());
        out.push(with_grads("Geometric", geometric.log_prob(k), &inputs));
        // Gamma and Beta: concentrations 0.05 to 200, both branches of the Gamma form, the
        // limits at 0 and 1, values outside the support.
        let conc = t(&[0.05, 1.0, 200.0, 0.7, 3.0, 2.0]);
        let rate = t(&[1e-3, 2.0, 1.0, 1e4, 0.5, 1.0]);
        let z = t(&[3.0, 0.0, 190.0, 1e-5, 2.5, -1.0]);
        let inputs = [z.clone(), conc.clone(), rate.clone()];
        let gamma = Gamma::new(conc.clone(), rate.clone());
        out.push(with_grads("Gamma", gamma.log_prob(z), &inputs));
        let other = t(&[0.05, 3.0, 150.0, 0.5, 1.0, 2.0]);
        let p = t(&[1e-6, 0.0, 0.58, 0.999_999, 1.0, 1.5]);
        let inputs = [p.clone(), conc.clone(), other.clone()];
        let beta = Beta::new(conc.clone(), other.clone());
        out.push(with_grads("Beta", beta.log_prob(p), &inputs));
        out
    }
    let close = |a: f64, b: f64| a == b || (a - b).abs() <= 2e-5 * a.abs().max(b.abs()).max(1.0);
    for ((name, va, ga), (_, vb, gb)) in run(&Device::flex())
        .into_iter()
        .zip(run(&Device::ndarray()))
    {
        for (i, (a, b)) in va.iter().zip(&vb).enumerate() {
            assert!(close(*a, *b), "{name} value {i}: flex {a} vs ndarray {b}");
        }
        for (k, (a, b)) in ga.iter().zip(&gb).enumerate() {
            assert_eq!(a.len(), b.len(), "{name}: gradient {k} on one backend only");
            for (i, (a, b)) in a.iter().zip(b).enumerate() {
                assert!(a.is_finite(), "{name} gradient {k}[{i}] on flex: {a}");
                assert!(
                    close(*a, *b),
                    "{name} gradient {k}[{i}]: flex {a} vs ndarray {b}"
                );
            }
        }
    }
}
