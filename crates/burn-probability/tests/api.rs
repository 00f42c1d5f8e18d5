//! The API as a TFP or PyTorch user writes it: scalar and broadcast parameters, priors with an
//! empty batch shape wherever a prior is taken, one error style (`op` panics with the error's
//! message, `try_op` returns it), and the tutorial's Monte Carlo KL on a separate sample.
//!
//! Expected values are computed here by hand, in float64, from the textbook formulas.

use std::sync::Mutex;

use burn::tensor::{Device, Tensor};
use burn_probability::objectives::{Elbo, Iwae};
use burn_probability::prelude::*;
use burn_probability::{Error, try_kl_divergence, try_kl_monte_carlo};

/// Burn's generator is process-global: the tests that draw and compare hold this.
static RNG: Mutex<()> = Mutex::new(());

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

fn t2(rows: &[&[f32]], device: &Device) -> Tensor<2> {
    let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::<1>::from_floats(flat.as_slice(), device).reshape([rows.len(), rows[0].len()])
}

fn ln_normal(x: f64, m: f64, s: f64) -> f64 {
    -0.5 * ((x - m) / s).powi(2) - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
}

fn kl_normal(m1: f64, s1: f64, m2: f64, s2: f64) -> f64 {
    (s2 / s1).ln() + (s1 * s1 + (m1 - m2).powi(2)) / (2.0 * s2 * s2) - 0.5
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

const LOC: [[f32; 3]; 2] = [[0.5, -1.0, 2.0], [0.0, 1.5, -0.5]];
const X: [[f32; 3]; 2] = [[0.1, 0.2, -0.3], [1.0, -2.0, 0.7]];

#[test]
fn scalar_parameters_broadcast_like_tfp() {
    let d = Device::flex();
    let loc = t2(&[&LOC[0], &LOC[1]], &d);
    let x = t2(&[&X[0], &X[1]], &d);
    let want = |m: &dyn Fn(usize, usize) -> f64, s: f64| -> Vec<f64> {
        (0..2)
            .flat_map(|i| (0..3).map(move |j| (i, j)))
            .map(|(i, j)| ln_normal(X[i][j] as f64, m(i, j), s))
            .collect()
    };
    // tfd.Normal(loc, 2.)
    let p = Normal::new(loc.clone(), 2.0);
    assert_eq!(p.batch_shape().to_vec(), vec![2, 3]);
    let got = vals(p.log_prob(x.clone()));
    assert_close(
        &got,
        &want(&|i, j| LOC[i][j] as f64, 2.0),
        1e-5,
        "Normal(loc, 2.)",
    );
    // tfd.Normal(0., scale), with an f32 scalar
    let p = Normal::new(0.0f32, loc.ones_like() * 0.5);
    let got = vals(p.log_prob(x.clone()));
    assert_close(&got, &want(&|_, _| 0.0, 0.5), 1e-5, "Normal(0., scale)");
    // Shapes [2, 1] and [1, 3] broadcast to [2, 3].
    let col = Tensor::<1>::from_floats([0.5, 0.0], &d).reshape([2, 1]);
    let row = Tensor::<1>::from_floats([1.0, 2.0, 4.0], &d).reshape([1, 3]);
    let p = Normal::new(col, row);
    assert_eq!(p.batch_shape().to_vec(), vec![2, 3]);
    let got = vals(p.log_prob(x.clone()));
    let scales = [1.0, 2.0, 4.0];
    let want: Vec<f64> = (0..6)
        .map(|n| ln_normal(X[n / 3][n % 3] as f64, [0.5, 0.0][n / 3], scales[n % 3]))
        .collect();
    assert_close(&got, &want, 1e-5, "Normal([2, 1], [1, 3])");
    // Logistic(loc, 1.) and MultivariateNormalDiag(loc, 1.).
    let l = Logistic::new(loc.clone(), 1.0);
    let got = vals(l.log_prob(x.clone()));
    let want: Vec<f64> = (0..6)
        .map(|n| {
            let z = X[n / 3][n % 3] as f64 - LOC[n / 3][n % 3] as f64;
            -z - 2.0 * (1.0 + (-z).exp()).ln()
        })
        .collect();
    assert_close(&got, &want, 1e-5, "Logistic(loc, 1.)");
    let mvn = MultivariateNormalDiag::<2>::new(loc, 1.0);
    let got = vals(mvn.log_prob(x));
    let want: Vec<f64> = (0..2)
        .map(|i| {
            (0..3)
                .map(|j| ln_normal(X[i][j] as f64, LOC[i][j] as f64, 1.0))
                .sum()
        })
        .collect();
    assert_close(&got, &want, 1e-5, "MultivariateNormalDiag(loc, 1.)");
}

#[test]
fn a_scalar_parameter_leaves_the_gradient_to_the_tensor() {
    let d = Device::flex().autodiff();
    let loc = t2(&[&LOC[0], &LOC[1]], &d).require_grad();
    let x = t2(&[&X[0], &X[1]], &d);
    let grads = Normal::new(loc.clone(), 2.0).log_prob(x).sum().backward();
    // d/dμ ln N(x; μ, σ) = (x − μ) / σ².
    let got = vals(loc.grad(&grads).expect("a gradient for loc"));
    let want: Vec<f64> = (0..6)
        .map(|n| (X[n / 3][n % 3] as f64 - LOC[n / 3][n % 3] as f64) / 4.0)
        .collect();
    assert_close(&got, &want, 1e-5, "d/dloc");
}

#[test]
fn only_scalars_or_shapes_that_do_not_broadcast_are_errors_naming_the_arguments() {
    let d = Device::flex();
    let msg = Normal::<2>::try_new(0.0, 1.0).unwrap_err().to_string();
    assert!(
        msg.contains("Normal") && msg.contains("`loc`") && msg.contains("only scalars"),
        "{msg}"
    );
    let msg = Logistic::try_new(
        Tensor::<2>::zeros([4, 3], &d),
        Tensor::<2>::ones([4, 2], &d),
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("[4, 3]") && msg.contains("[4, 2]"), "{msg}");
}

#[test]
#[should_panic(
    expected = "Normal: shapes do not broadcast: `loc` has shape [4, 3] and `scale` has shape [4, 2]"
)]
fn the_panicking_constructor_says_what_try_new_returns() {
    let d = Device::flex();
    let _ = Normal::new(
        Tensor::<2>::zeros([4, 3], &d),
        Tensor::<2>::ones([4, 2], &d),
    );
}

/// A posterior over `[2, 3]` latents and the same standard-normal prior with batch shapes
/// `[]`, `[1]` and `[2]`.
fn posterior(d: &Device) -> MultivariateNormalDiag<2> {
    MultivariateNormalDiag::new(t2(&[&LOC[0], &LOC[1]], d), 0.5)
}

fn kl_to_standard() -> Vec<f64> {
    (0..2)
        .map(|i| {
            (0..3)
                .map(|j| kl_normal(LOC[i][j] as f64, 0.5, 0.0, 1.0))
                .sum()
        })
        .collect()
}

#[test]
fn a_prior_with_an_empty_batch_shape_works_in_the_kl_divergences() {
    let d = Device::flex();
    let q = posterior(&d);
    let want = kl_to_standard();
    // TFP's MultivariateNormalDiag(loc=tf.zeros(3)): batch shape [].
    let flat = MultivariateNormalDiag::<1>::standard([3], &d);
    assert_eq!(flat.batch_shape().to_vec(), Vec::<usize>::new());
    assert_close(
        &vals(kl_divergence(&q, &flat)),
        &want,
        1e-5,
        "KL to a [] prior",
    );
    let one = MultivariateNormalDiag::<2>::standard([1, 3], &d);
    assert_close(
        &vals(kl_divergence(&q, &one)),
        &want,
        1e-5,
        "KL to a [1] prior",
    );
    // Independent(Normal(zeros(3), 1.), 1) and Independent(Normal) against it.
    let ind_q = Independent::<_, 1>::new(Normal::new(t2(&[&LOC[0], &LOC[1]], &d), 0.5), 1);
    let ind_p = Independent::<_, 0>::new(Normal::standard([3], &d), 1);
    assert_close(
        &vals(kl_divergence(&ind_q, &ind_p)),
        &want,
        1e-5,
        "Independent",
    );
    // Bernoulli against a rank-1 prior: KL(σ(a) ‖ 1/2) per coordinate, summed.
    let logits = t2(&[&LOC[0], &LOC[1]], &d);
    let bq = Independent::<_, 1>::new(Bernoulli::new(logits), 1);
    let bp = Independent::<_, 0>::new(Bernoulli::new(Tensor::<1>::zeros([3], &d)), 1);
    let want_b: Vec<f64> = (0..2)
        .map(|i| {
            (0..3)
                .map(|j| {
                    let p = 1.0 / (1.0 + (-(LOC[i][j] as f64)).exp());
                    p * (2.0 * p).ln() + (1.0 - p) * (2.0 * (1.0 - p)).ln()
                })
                .sum()
        })
        .collect();
    assert_close(&vals(kl_divergence(&bq, &bp)), &want_b, 1e-5, "Bernoulli");
    // The Monte Carlo KL, within 5 standard errors of the closed form.
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    d.seed(3);
    let mc = kl_monte_carlo(&q, &flat, 20_000);
    let (est, se) = (vals(mc.estimate), vals(mc.std_error));
    for i in 0..2 {
        assert!(
            (est[i] - want[i]).abs() < 5.0 * se[i],
            "Monte Carlo KL[{i}] {} ± {} against {}",
            est[i],
            se[i],
            want[i]
        );
    }
}

#[test]
fn a_prior_with_an_empty_batch_shape_works_in_every_objective() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let d = Device::flex();
    let q = posterior(&d);
    let x = t2(&[&X[0], &X[1]], &d);
    let lik = |z: Tensor<2>| Independent::<_, 1>::new(Normal::new(z, 0.7), 1);
    let flat = MultivariateNormalDiag::<1>::standard([3], &d);
    let full = MultivariateNormalDiag::<2>::standard([2, 3], &d);
    let noise: Tensor<3> = q.noise(&[5]);
    let elbo = Elbo::new().num_samples(5);
    // The analytic KL is the hand-computed one.
    let bound = elbo.analytic_kl(&q, &flat, lik, x.clone());
    assert_close(
        &vals(bound.kl),
        &kl_to_standard(),
        1e-5,
        "Elbo::analytic_kl",
    );
    // With the same noise, every bound equals the one with a full-batch prior.
    let pairs = [
        (
            elbo.monte_carlo_kl_with_noise(&q, &flat, lik, x.clone(), noise.clone()),
            elbo.monte_carlo_kl_with_noise(&q, &full, lik, x.clone(), noise.clone()),
        ),
        (
            Iwae::new(5).compute_with_noise(&q, &flat, lik, x.clone(), noise.clone()),
            Iwae::new(5).compute_with_noise(&q, &full, lik, x.clone(), noise.clone()),
        ),
    ];
    for (i, (a, b)) in pairs.into_iter().enumerate() {
        assert_close(&vals(a.value), &vals(b.value), 1e-6, &format!("bound {i}"));
        assert_close(&vals(a.kl), &vals(b.kl), 1e-6, &format!("kl {i}"));
    }
    // A prior with another event shape or a larger rank is an error naming it.
    let wide = MultivariateNormalDiag::<1>::standard([4], &d);
    let err = elbo.try_analytic_kl(&q, &wide, lik, x.clone()).unwrap_err();
    assert!(matches!(err, Error::EventShapeMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("Elbo: `prior` has shape [4]"),
        "{err}"
    );
    let err = Iwae::new(2).try_compute(&q, &wide, lik, x).unwrap_err();
    assert!(err.to_string().contains("Iwae: `prior`"), "{err}");
    let big = MultivariateNormalDiag::<3>::standard([1, 2, 3], &d);
    let err = try_kl_divergence(&q, &big).unwrap_err();
    assert!(matches!(err, Error::RankMismatch { .. }), "{err}");
    let err = try_kl_monte_carlo(&q, &big, 4).unwrap_err();
    assert!(err.to_string().contains("at most p's rank 2"), "{err}");
}

#[test]
fn the_tutorials_monte_carlo_kl_uses_a_second_sample() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let d = Device::flex();
    d.seed(11);
    let q = posterior(&d);
    let prior = MultivariateNormalDiag::<1>::standard([3], &d);
    let x = t2(&[&X[0], &X[1]], &d);
    let lik = |z: Tensor<2>| Independent::<_, 1>::new(Normal::new(z, 0.7), 1);
    let k = 20_000;
    let noise: Tensor<3> = q.noise(&[k]);
    let shared = Elbo::new().num_samples(k);
    let separate = shared.separate_kl_sample(true);
    let a = shared.monte_carlo_kl_with_noise(&q, &prior, lik, x.clone(), noise.clone());
    let b = separate.monte_carlo_kl_with_noise(&q, &prior, lik, x, noise);
    // The likelihood term scores the same samples ...
    assert_close(
        &vals(a.log_likelihood),
        &vals(b.log_likelihood),
        1e-6,
        "log-likelihood",
    );
    // ... the KL term does not: it is another unbiased estimate of the closed form.
    let (ka, kb) = (vals(a.kl), vals(b.kl));
    assert!(ka.iter().zip(&kb).all(|(a, b)| a != b), "{ka:?} {kb:?}");
    // ln q − ln p of one draw has variance Σ_j (var of a quadratic in a normal): estimate it
    // from the Monte Carlo KL's own standard error.
    let se = vals(kl_monte_carlo(&q, &prior, k).std_error);
    for (i, want) in kl_to_standard().into_iter().enumerate() {
        assert!(
            (kb[i] - want).abs() < 5.0 * se[i],
            "separate-sample KL[{i}] {} against {want} (se {})",
            kb[i],
            se[i]
        );
    }
}

#[test]
fn sample_and_log_prob_ranks_follow_from_the_types() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let d = Device::flex();
    let q = posterior(&d);
    // No annotation: [n] ++ batch ++ event in, [n] ++ batch out.
    let z = q.rsample_n(4);
    assert_eq!(z.dims(), [4, 2, 3]);
    let lp = q.log_prob_n(z.clone());
    assert_eq!(lp.dims(), [4, 2]);
    // Each draw scored alone gives the same numbers.
    let got = vals(lp);
    for i in 0..4 {
        let one: Tensor<2> = z.clone().narrow(0, i, 1).squeeze_dim(0);
        let want = vals(q.log_prob(one));
        assert_close(&got[2 * i..2 * i + 2], &want, 1e-6, "log_prob_n row");
    }
    // A prior of batch shape []: n draws are [n, L], scored as [n].
    let prior = MultivariateNormalDiag::standard([3], &d);
    let draws = prior.sample_n(5);
    assert_eq!(draws.dims(), [5, 3]);
    assert_eq!(prior.log_prob_n(draws).dims(), [5]);
}

#[test]
fn independent_all_but_first_and_all_batch_dims() {
    let d = Device::flex();
    let logits = Tensor::<4>::zeros([2, 28, 28, 1], &d);
    let px = Independent::all_but_first(Bernoulli::new(logits));
    assert_eq!(px.batch_shape().to_vec(), vec![2]);
    assert_eq!(px.event_shape().to_vec(), vec![28, 28, 1]);
    // Every pixel at logit 0 has probability 1/2: ln p(x) = −784 ln 2 per image.
    let lp = vals(px.log_prob(Tensor::<4>::ones([2, 28, 28, 1], &d)));
    assert_close(&lp, &[-784.0 * 2f64.ln(); 2], 1e-6, "all_but_first");
    // all_batch_dims: one event over every dimension, batch shape [].
    let prior = Independent::all_batch_dims(Normal::new(Tensor::<1>::zeros([3], &d), 2.0));
    assert_eq!(prior.batch_shape().num_dims(), 0);
    let x = Tensor::<1>::from_floats([0.5, -1.0, 0.0], &d);
    let want: f64 = [0.5, -1.0, 0.0]
        .iter()
        .map(|&v| ln_normal(v, 0.0, 2.0))
        .sum();
    assert_close(&vals(prior.log_prob(x)), &[want], 1e-6, "all_batch_dims");
    // A base with batch shape [] has no batch dimension to keep.
    let err =
        Independent::try_all_but_first(MultivariateNormalDiag::standard([3], &d)).unwrap_err();
    assert!(err.to_string().contains("all_but_first"), "{err}");
}
