//! The categorical family and Gumbel as a user meets them: properties by sampling (with
//! fixed seeds and tolerances from the standard error), finiteness at extreme logits and
//! temperatures, KL divergences against independent routes, and the objectives with latents of
//! shape `[B, N, K]` on a model whose evidence is computed exactly by enumeration.
//!
//! burn's random generator is process-global: every test that draws holds `RNG`.

use std::sync::Mutex;

use burn::tensor::{Device, Tensor};
use burn_probability::objectives::{Elbo, Iwae};
use burn_probability::prelude::*;

static RNG: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// Mean and standard error of a sample, in float64.
fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

fn assert_within(what: &str, got: f64, se: f64, want: f64) {
    assert!(
        (got - want).abs() <= 5.0 * se + 1e-6,
        "{what}: {got} ± {se} (5 standard errors) does not reach {want}"
    );
}

#[test]
fn entropy_is_minus_the_expected_log_prob() {
    let _g = lock();
    let device = Device::flex();
    device.seed(101);
    let n = 100_000;
    let logits = Tensor::<2>::from_floats([[1.0, -0.5, 0.2, 2.0, -3.0]], &device);
    let c = Categorical::new(logits.clone());
    let (m, se) = mean_se(&vals(c.log_prob_n(c.sample_n(n))));
    assert_within("Categorical entropy", -m, se, vals(c.entropy())[0]);
    let oh = OneHotCategorical::new(logits);
    let (m, se) = mean_se(&vals(oh.log_prob_n(oh.sample_n(n))));
    assert_within("OneHotCategorical entropy", -m, se, vals(oh.entropy())[0]);
    let g = Gumbel::new(Tensor::<1>::from_floats([0.7], &device), 2.5);
    let (m, se) = mean_se(&vals(g.log_prob_n(g.sample_n(n))));
    assert_within("Gumbel entropy", -m, se, vals(g.entropy())[0]);
}

#[test]
fn gumbel_moments_by_sampling() {
    let _g = lock();
    let device = Device::flex();
    device.seed(102);
    let g = Gumbel::new(Tensor::<1>::from_floats([-1.5], &device), 0.8);
    let x = vals(g.rsample_n(200_000));
    let (m, se) = mean_se(&x);
    assert_within("Gumbel mean", m, se, vals(g.mean())[0]);
    let sq: Vec<f64> = x.iter().map(|v| (v - m).powi(2)).collect();
    let (v, se) = mean_se(&sq);
    assert_within("Gumbel variance", v, se, vals(g.variance())[0]);
}

#[test]
fn the_argmax_of_a_relaxed_sample_is_categorical_at_any_temperature() {
    // Chi-square with 3 degrees of freedom over 40,000 draws: the 0.999 quantile is 16.27.
    let _g = lock();
    let device = Device::flex();
    device.seed(103);
    let logits = [0.4f32, -1.2, 1.0, 0.0];
    let probs = vals(OneHotCategorical::new(Tensor::<1>::from_floats(logits, &device)).probs());
    for t in [0.1, 1.0, 10.0] {
        let q = RelaxedOneHotCategorical::new(t, Tensor::<1>::from_floats(logits, &device));
        let y: Tensor<2> = q.sample_n(40_000);
        let idx = vals(y.argmax(1).float());
        let mut counts = [0f64; 4];
        for i in idx {
            counts[i as usize] += 1.0;
        }
        let n = 40_000.0;
        let chi2: f64 = counts
            .iter()
            .zip(&probs)
            .map(|(c, p)| (c - n * p).powi(2) / (n * p))
            .sum();
        assert!(chi2 < 16.27, "t = {t}: chi2 {chi2}, counts {counts:?}");
    }
}

#[test]
fn the_mean_of_a_relaxed_sample_at_high_temperature() {
    // y = softmax((ℓ + g)/t): to second order in 1/t, E[yₖ] = 1/K + (ℓₖ − ℓ̄)/(K t) +
    // ((ℓₖ − ℓ̄)² − mean_j (ℓⱼ − ℓ̄)²)/(2 K t²) (the noise terms cancel by symmetry); the
    // third-order remainder is below 1e-6 at t = 100.
    let _g = lock();
    let device = Device::flex();
    device.seed(104);
    let (t, logits) = (100.0, [1.0f64, -1.0, 0.5, -0.5]);
    let k = logits.len() as f64;
    let mean_l = logits.iter().sum::<f64>() / k;
    let spread = logits.iter().map(|l| (l - mean_l).powi(2)).sum::<f64>() / k;
    let q = RelaxedOneHotCategorical::new(
        t,
        Tensor::<1>::from_floats(logits.map(|l| l as f32), &device),
    );
    let n = 200_000;
    let y = vals(q.sample_n(n));
    for (j, l) in logits.iter().enumerate() {
        let col: Vec<f64> = (0..n).map(|i| y[i * 4 + j]).collect();
        let (m, se) = mean_se(&col);
        let d = l - mean_l;
        let want = 1.0 / k + d / (k * t) + (d * d - spread) / (2.0 * k * t * t);
        assert!(
            (m - want).abs() <= 5.0 * se + 2e-6,
            "E[y{j}] = {m} ± {se}, want {want}"
        );
    }
}

#[test]
fn extreme_logits_and_temperatures_stay_finite() {
    let _g = lock();
    let device = Device::flex().autodiff();
    device.seed(105);
    for t in [0.1, 0.5, 2.0, 10.0] {
        let logits =
            Tensor::<3>::from_floats([[[100.0, -100.0, 0.0], [-100.0, 100.0, -100.0]]], &device)
                .require_grad();
        let relaxed = RelaxedOneHotCategorical::new(t, logits.clone());
        let y = relaxed.rsample_n(16);
        let exp = relaxed.exp_relaxed();
        let x = exp.rsample_n(16);
        let st = OneHotCategoricalStraightThrough::new(t, logits.clone());
        let h = st.rsample_n(16);
        let prior = OneHotCategorical::new(Tensor::<1>::zeros([3], &device));
        let total = relaxed.log_prob_n(y.clone()).sum()
            + exp.log_prob_n(x).sum()
            + st.log_prob_n(h.clone()).sum()
            + kl_divergence(&st, &prior).sum()
            + (y * 2.0 + h).sum();
        let v = vals(total.clone())[0];
        assert!(v.is_finite(), "t = {t}: {v}");
        let grads = total.backward();
        let g = vals(logits.grad(&grads).unwrap());
        assert!(g.iter().all(|g| g.is_finite()), "t = {t}: {g:?}");
    }
}

#[test]
fn kl_is_nonnegative_zero_at_equality_and_matches_monte_carlo() {
    let _g = lock();
    let device = Device::flex();
    device.seed(106);
    let pl = Tensor::<2>::random(
        [64, 6],
        burn::tensor::Distribution::Normal(0.0, 3.0),
        &device,
    );
    let ql = Tensor::<2>::random(
        [64, 6],
        burn::tensor::Distribution::Normal(0.0, 3.0),
        &device,
    );
    let (p, q) = (
        OneHotCategorical::new(pl.clone()),
        OneHotCategorical::new(ql.clone()),
    );
    assert!(vals(kl_divergence(&p, &q)).iter().all(|k| *k >= -1e-6));
    assert!(vals(kl_divergence(&p, &p)).iter().all(|k| k.abs() < 1e-5));
    let (cp, cq) = (Categorical::new(pl), Categorical::new(ql));
    let (a, b) = (vals(kl_divergence(&p, &q)), vals(kl_divergence(&cp, &cq)));
    assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-5));
    // Gumbel: the closed form against a Monte Carlo estimate.
    let gp = Gumbel::new(
        Tensor::<1>::from_floats([0.5, -1.0, 3.0], &device),
        Tensor::<1>::from_floats([1.0, 0.3, 2.0], &device),
    );
    let gq = Gumbel::new(
        Tensor::<1>::from_floats([0.0, 0.0, 1.0], &device),
        Tensor::<1>::from_floats([2.0, 0.5, 1.5], &device),
    );
    let closed = vals(kl_divergence(&gp, &gq));
    let mc = kl_monte_carlo(&gp, &gq, 200_000);
    for ((c, e), s) in closed.iter().zip(vals(mc.estimate)).zip(vals(mc.std_error)) {
        assert!(*c >= 0.0);
        assert_within("KL(Gumbel‖Gumbel)", e, s, *c);
    }
}

/// A model whose evidence is a finite sum: `N = 2` categorical latents of `K = 3` classes with
/// a uniform prior, and `xₙ ~ Normal(μ[zₙ], 1)` given `zₙ`. The posterior factorizes:
/// `q(zₙ = k) ∝ exp(−(xₙ − μₖ)²/2)`.
struct Enumerable {
    mu: [f64; 3],
    x: Vec<[f64; 2]>,
}

impl Enumerable {
    fn log_normal(x: f64, m: f64) -> f64 {
        -0.5 * (x - m).powi(2) - 0.5 * (2.0 * std::f64::consts::PI).ln()
    }
    /// `ln p(x)` per example.
    fn evidence(&self) -> Vec<f64> {
        self.x
            .iter()
            .map(|x| {
                x.iter()
                    .map(|&xn| {
                        let s: f64 = self
                            .mu
                            .iter()
                            .map(|&m| Self::log_normal(xn, m).exp() / 3.0)
                            .sum();
                        s.ln()
                    })
                    .sum()
            })
            .collect()
    }
    /// The exact posterior's logits, `[B, N, K]`.
    fn posterior_logits(&self, device: &Device) -> Tensor<3> {
        let v: Vec<f32> = self
            .x
            .iter()
            .flat_map(|x| {
                x.iter()
                    .flat_map(|&xn| self.mu.map(|m| Self::log_normal(xn, m) as f32))
            })
            .collect();
        Tensor::<1>::from_floats(v.as_slice(), device).reshape([self.x.len(), 2, 3])
    }
    fn data(&self, device: &Device) -> Tensor<2> {
        let v: Vec<f32> = self.x.iter().flat_map(|x| x.map(|v| v as f32)).collect();
        Tensor::<1>::from_floats(v.as_slice(), device).reshape([self.x.len(), 2])
    }
    fn likelihood(&self, device: &Device) -> impl Fn(Tensor<3>) -> Independent<Normal<2>, 1> {
        let mu = Tensor::<1>::from_floats(self.mu.map(|m| m as f32), device).reshape([1, 1, 3]);
        move |z: Tensor<3>| {
            let [rows, n, _] = z.dims();
            let loc = (z * mu.clone()).sum_dim(2).reshape([rows, n]);
            Independent::all_but_first(Normal::new(loc, 1.0))
        }
    }
}

fn enumerable() -> Enumerable {
    Enumerable {
        mu: [-2.0, 0.5, 3.0],
        x: vec![[0.1, -1.7], [2.2, 0.9], [-0.4, 3.5]],
    }
}

#[test]
fn at_the_exact_posterior_the_categorical_bounds_equal_the_evidence() {
    let _g = lock();
    let device = Device::flex();
    device.seed(107);
    let m = enumerable();
    let want = m.evidence();
    let q = Independent::all_but_first(OneHotCategoricalStraightThrough::new(
        0.5,
        m.posterior_logits(&device),
    ));
    let prior =
        Independent::all_batch_dims(OneHotCategorical::new(Tensor::<2>::zeros([2, 3], &device)));
    // ln p(x|z) + ln p(z) − ln q(z) is ln p(x) for every one-hot sample z.
    let elbo = Elbo::new().num_samples(8).monte_carlo_kl(
        &q,
        &prior,
        m.likelihood(&device),
        m.data(&device),
    );
    let iwae = Iwae::new(8).compute(&q, &prior, m.likelihood(&device), m.data(&device));
    for (name, got) in [
        ("Monte Carlo ELBO", vals(elbo.value)),
        ("IWAE", vals(iwae.value)),
    ] {
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4, "{name}: {got:?} vs {want:?}");
        }
    }
    // The analytic KL: E_q[ln p(x|z)] − KL(q ‖ p) = ln p(x), with the expectation estimated
    // from k samples; the standard error comes from the exact variance of ln p(x|z) under q.
    let k = 20_000;
    let elbo =
        Elbo::new()
            .num_samples(k)
            .analytic_kl(&q, &prior, m.likelihood(&device), m.data(&device));
    for (i, (g, w)) in vals(elbo.value).iter().zip(&want).enumerate() {
        let x = m.x[i];
        let mut var = 0.0;
        for &xn in &x {
            let w: Vec<f64> =
                m.mu.iter()
                    .map(|&mu| Enumerable::log_normal(xn, mu))
                    .collect();
            let z: f64 = w.iter().map(|v| v.exp()).sum();
            let (mut e, mut e2) = (0.0, 0.0);
            for v in &w {
                let p = v.exp() / z;
                e += p * v;
                e2 += p * v * v;
            }
            var += e2 - e * e;
        }
        assert_within("analytic-KL ELBO", *g, (var / k as f64).sqrt(), *w);
    }
}

#[test]
fn relaxed_latents_of_rank_three_train_through_every_objective() {
    let _g = lock();
    let device = Device::flex().autodiff();
    device.seed(108);
    let m = enumerable();
    let logits = Tensor::<3>::zeros([3, 2, 3], &device).require_grad();
    let x = m.data(&device);
    let q = Independent::all_but_first(ExpRelaxedOneHotCategorical::new(0.5, logits.clone()));
    let prior = Independent::all_batch_dims(ExpRelaxedOneHotCategorical::new(
        0.5,
        Tensor::<2>::zeros([2, 3], &device),
    ));
    let lik = m.likelihood(&device);
    let decode = |z: Tensor<3>| lik(z.exp());
    // IWAE with one sample is the Monte Carlo ELBO on the same noise.
    let noise: Tensor<4> = q.noise(&[1]);
    let a = Iwae::new(1).compute_with_noise(&q, &prior, decode, x.clone(), noise.clone());
    let b = Elbo::new().monte_carlo_kl_with_noise(&q, &prior, decode, x.clone(), noise);
    for (a, b) in vals(a.value).iter().zip(vals(b.value)) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    let bound = Iwae::new(4).compute(&q, &prior, decode, x.clone());
    let grads = bound.loss.backward();
    assert!(
        vals(logits.grad(&grads).unwrap())
            .iter()
            .all(|g| g.is_finite() && *g != 0.0)
    );
    // Jang et al.'s objective: relaxed samples, the categorical KL.
    let relaxed = Independent::all_but_first(RelaxedOneHotCategorical::new(0.5, logits.clone()));
    let cat_prior =
        Independent::all_batch_dims(OneHotCategorical::new(Tensor::<2>::zeros([2, 3], &device)));
    let kl = kl_divergence(
        &Independent::all_but_first(OneHotCategorical::new(logits.clone())),
        &cat_prior,
    );
    let bound = Elbo::new().given_kl(&relaxed, kl.clone(), &lik, x.clone());
    assert!(
        vals(bound.kl).iter().all(|k| k.abs() < 1e-6),
        "uniform q against the uniform prior"
    );
    let err = Elbo::new()
        .try_given_kl(&relaxed, kl.narrow(0, 0, 2), &lik, x)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("kl") && err.contains("[2]") && err.contains("[3]"),
        "{err}"
    );
}

#[test]
fn invalid_arguments_are_named() {
    let device = Device::flex();
    let logits = Tensor::<2>::zeros([2, 3], &device);
    for (t, name) in [
        (0.0, "RelaxedOneHotCategorical"),
        (f64::NAN, "RelaxedOneHotCategorical"),
    ] {
        let err = RelaxedOneHotCategorical::try_new(t, logits.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains(name) && err.contains("temperature"), "{err}");
    }
    let err = ExpRelaxedOneHotCategorical::try_new(-1.0, logits.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("temperature") && err.contains("-1"), "{err}");
    let err = OneHotCategoricalStraightThrough::try_new(f64::INFINITY, logits.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("temperature"), "{err}");
    let err = OneHotCategorical::try_new(Tensor::<2>::zeros([2, 0], &device))
        .unwrap_err()
        .to_string();
    assert!(err.contains("logits") && err.contains("[2, 0]"), "{err}");
    // A wrong event shape is an error, never a broadcast.
    let q = OneHotCategorical::new(logits.clone());
    let err = q
        .try_log_prob(Tensor::<2>::zeros([2, 4], &device))
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 4]") && err.contains("[3]"), "{err}");
    // Values outside the support, under validation.
    let bad = Tensor::<2>::from_floats([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], &device);
    assert!(
        q.check_support(&bad)
            .unwrap_err()
            .to_string()
            .contains("one-hot")
    );
    let r = RelaxedOneHotCategorical::new(0.5, logits.clone());
    let err = r
        .check_support(&Tensor::<2>::from_floats(
            [[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]],
            &device,
        ))
        .unwrap_err();
    assert!(err.to_string().contains("simplex"), "{err}");
    let g = Gumbel::new(Tensor::<1>::zeros([2], &device), -1.0);
    assert!(g.validate().unwrap_err().to_string().contains("scale"));
    let err = Gumbel::try_new(
        Tensor::<1>::zeros([2], &device),
        Tensor::<1>::ones([3], &device),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("[2]") && err.to_string().contains("[3]"),
        "{err}"
    );
}
