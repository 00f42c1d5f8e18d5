//! KL divergences: every closed form against its Monte Carlo estimate (within 4 standard
//! errors, fixed seeds), `KL(p ‖ p) = 0`, and `KL ≥ 0` over random parameters.

use std::sync::Mutex;

use burn::tensor::{Device, Tensor};
use burn_probability::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

static RNG: Mutex<()> = Mutex::new(());

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

fn t1(xs: &[f64]) -> Tensor<1> {
    let v: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
    Tensor::from_floats(v.as_slice(), &Device::flex())
}

fn t2(xs: &[f64], cols: usize) -> Tensor<2> {
    t1(xs).reshape([xs.len() / cols, cols])
}

fn assert_mc_agrees(name: &str, analytic: Vec<f64>, estimate: Vec<f64>, se: Vec<f64>) {
    for i in 0..analytic.len() {
        assert!(
            (analytic[i] - estimate[i]).abs() <= 4.0 * se[i],
            "{name}[{i}]: closed form {} vs Monte Carlo {} ± {}",
            analytic[i],
            estimate[i],
            se[i]
        );
    }
}

#[test]
fn closed_forms_agree_with_monte_carlo() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    Device::flex().seed(42);
    let n = 200_000;

    let p = Normal::new(t1(&[0.0, 1.0, -2.0, 0.3]), t1(&[1.0, 0.1, 3.0, 0.7]));
    let q = Normal::new(t1(&[0.5, 1.2, 0.0, 0.3]), t1(&[2.0, 0.2, 1.0, 0.5]));
    let mc = kl_monte_carlo(&p, &q, n);
    assert_mc_agrees(
        "Normal",
        vals(kl_divergence(&p, &q)),
        vals(mc.estimate),
        vals(mc.std_error),
    );

    let p = MultivariateNormalDiag::<2>::new(
        t2(&[0.0, 1.0, -1.0, 0.5, 0.2, 0.0], 3),
        t2(&[1.0, 0.5, 2.0, 0.3, 1.0, 4.0], 3),
    );
    let q = MultivariateNormalDiag::<2>::standard([1, 3], &Device::flex());
    let mc = kl_monte_carlo(&p, &q, n);
    assert_mc_agrees(
        "MultivariateNormalDiag",
        vals(kl_divergence(&p, &q)),
        vals(mc.estimate),
        vals(mc.std_error),
    );

    let base_p = Normal::new(t2(&[0.0, 1.0, 2.0, 3.0], 2), t2(&[1.0, 1.0, 0.5, 0.5], 2));
    let base_q = Normal::new(t2(&[0.1, 0.9, 1.0, 3.0], 2), t2(&[1.5, 1.0, 0.5, 2.0], 2));
    let (p, q) = (
        Independent::<_, 1>::new(base_p, 1),
        Independent::<_, 1>::new(base_q, 1),
    );
    let mc = kl_monte_carlo(&p, &q, n);
    assert_mc_agrees(
        "Independent(Normal)",
        vals(kl_divergence(&p, &q)),
        vals(mc.estimate),
        vals(mc.std_error),
    );

    // Bernoulli cannot rsample: the Monte Carlo estimate uses plain samples.
    let p = Bernoulli::new(t1(&[-2.0, 0.0, 1.5, 4.0]));
    let q = Bernoulli::new(t1(&[1.0, 0.5, -1.0, 4.0]));
    let x: Tensor<2> = p.sample_n(n);
    let diff: Tensor<2> = p.log_prob_with_shape::<2, 2>(x.clone()) - q.log_prob_n(x);
    let (var, mean) = diff.var_mean(0);
    let se: Vec<f64> = vals(var)
        .iter()
        .map(|v| (v / n as f64).sqrt().max(1e-7))
        .collect();
    assert_mc_agrees("Bernoulli", vals(kl_divergence(&p, &q)), vals(mean), se);
}

#[test]
fn kl_of_a_distribution_with_itself_is_zero() {
    let d = Device::flex();
    let n = Normal::new(t1(&[0.0, 5.0, -3.0]), t1(&[1e-3, 1.0, 1e4]));
    let m = MultivariateNormalDiag::<2>::new(
        t2(&[0.0, 1.0, 2.0, 3.0], 2),
        t2(&[0.5, 1.0, 2.0, 1e-2], 2),
    );
    let b = Bernoulli::new(t1(&[-100.0, -3.0, 0.0, 7.0, 100.0]));
    let i = Independent::<_, 1>::new(Normal::standard([2, 4], &d), 1);
    for kl in [
        vals(kl_divergence(&n, &n)),
        vals(kl_divergence(&m, &m)),
        vals(kl_divergence(&b, &b)),
        vals(kl_divergence(&i, &i)),
    ] {
        assert!(kl.iter().all(|k| k.abs() < 1e-6), "{kl:?}");
    }
}

proptest! {
    #![proptest_config(Config { cases: 64, rng_seed: RngSeed::Fixed(7), failure_persistence: None, ..Config::default() })]

    #[test]
    fn kl_is_non_negative(
        mp in -10.0f64..10.0, mq in -10.0f64..10.0,
        sp in -6.0f64..6.0, sq in -6.0f64..6.0,
        lp in -30.0f64..30.0, lq in -30.0f64..30.0,
    ) {
        let n = vals(kl_divergence(
            &Normal::new(t1(&[mp]), t1(&[sp.exp()])),
            &Normal::new(t1(&[mq]), t1(&[sq.exp()])),
        ))[0];
        prop_assert!(n >= -1e-6 && n.is_finite(), "Normal KL {}", n);
        let b = vals(kl_divergence(&Bernoulli::new(t1(&[lp])), &Bernoulli::new(t1(&[lq]))))[0];
        prop_assert!(b >= -1e-6 && b.is_finite(), "Bernoulli KL {}", b);
        // The closed form against float64.
        let (vp, vq) = ((2.0 * sp).exp(), (2.0 * sq).exp());
        let want = 0.5 * (vp / vq + (mp - mq).powi(2) / vq - 1.0) + sq - sp;
        prop_assert!((n - want).abs() <= 1e-4 * want.abs().max(1.0), "Normal KL {} vs {}", n, want);
    }
}
