//! The MAP and mean-field drivers on models whose answer is known in closed form.

use std::sync::Mutex;

use burn::tensor::{Device, Distribution as Init, Tensor};
use burn_probability::inference::{
    AdamConfig, Fixed, LogJoint, MeanFieldNormal, Model, Params, fit_map, fit_mean_field,
    try_fit_map, try_fit_mean_field,
};
use burn_probability::{Distribution, Normal};

static RNG: Mutex<()> = Mutex::new(());

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// mu ~ N(0, τ²) (2-vector), x_i ~ N(mu, s²): posterior N(Σx / (n + s²/τ²), s² / (n + s²/τ²)).
fn conjugate(device: &Device) -> (impl Model, [f64; 2], f64) {
    let (tau, s) = (2.0f64, 1.5f64);
    let data = [[0.5, -1.0], [1.5, -0.5], [2.5, 0.0], [1.0, -2.0]];
    let n = data.len() as f64;
    let flat: Vec<f32> = data.iter().flatten().map(|&v| v as f32).collect();
    let x = Tensor::<1>::from_floats(flat.as_slice(), device).reshape([4, 2]);
    let prec = n + s * s / (tau * tau);
    let post_mean = [
        data.iter().map(|r| r[0]).sum::<f64>() / prec,
        data.iter().map(|r| r[1]).sum::<f64>() / prec,
    ];
    let post_sd = (s * s / prec).sqrt();
    let model = LogJoint::new(vec![("mu", vec![1, 2])], move |p: &Params| {
        let mu: Tensor<2> = p.get("mu");
        let prior = Normal::new(mu.zeros_like(), mu.ones_like() * tau)
            .log_prob(mu.clone())
            .sum();
        let lik = Normal::new(mu.clone(), mu.ones_like() * s)
            .log_prob_with_shape::<2, 2>(x.clone())
            .sum();
        prior + lik
    });
    (model, post_mean, post_sd)
}

#[test]
fn mean_field_recovers_the_exact_gaussian_posterior() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex().autodiff();
    device.seed(10);
    let (model, want_mean, want_sd) = conjugate(&device);
    let q0 = MeanFieldNormal::new(&model, 3.0, -4.0, &device);
    // A large step to get there, then a small one so the stochastic iterate settles.
    let (q, trace) = fit_mean_field(&model, q0, AdamConfig::new(0.05), 1000, 8);
    let (q, _) = fit_mean_field(&model, q, AdamConfig::new(0.005), 1000, 8);
    let mean = vals(q.mean().get::<2>("mu"));
    let sd = vals(q.stddev().get::<2>("mu"));
    for i in 0..2 {
        assert!(
            (mean[i] - want_mean[i]).abs() < 0.03,
            "mean[{i}] = {}, exact {}",
            mean[i],
            want_mean[i]
        );
        assert!(
            (sd[i] / want_sd - 1.0).abs() < 0.1,
            "sd[{i}] = {}, exact {want_sd}",
            sd[i]
        );
    }
    // The ELBO rose.
    let early = trace[..50].iter().sum::<f64>() / 50.0;
    let late = trace[trace.len() - 50..].iter().sum::<f64>() / 50.0;
    assert!(late > early + 1.0, "ELBO {early} -> {late}");
}

#[test]
fn map_recovers_the_posterior_mode() {
    let device = Device::flex().autodiff();
    let (model, want_mean, _) = conjugate(&device);
    let init = Params::new().with("mu", Tensor::<2>::zeros([1, 2], &device) - 5.0);
    let (map, trace) = fit_map(&model, &init, AdamConfig::new(0.05), 1000);
    let mu = vals(map.get::<2>("mu"));
    for i in 0..2 {
        assert!(
            (mu[i] - want_mean[i]).abs() < 1e-3,
            "mode[{i}] = {}, exact {}",
            mu[i],
            want_mean[i]
        );
    }
    assert!(trace.last().unwrap() < &trace[0]);
}

#[test]
fn fixing_a_latent_leaves_a_model_over_the_others() {
    // a ~ N(0, 1), b ~ N(a, 1): with a fixed at 2, the MAP of b is 2.
    let device = Device::flex().autodiff();
    let model = LogJoint::new(vec![("a", vec![1]), ("b", vec![1])], |p: &Params| {
        let a: Tensor<1> = p.get("a");
        let b: Tensor<1> = p.get("b");
        Normal::new(a.zeros_like(), a.ones_like()).log_prob(a.clone())
            + Normal::new(a.clone(), a.ones_like()).log_prob(b)
    });
    let fixed = Fixed::new(
        &model,
        Params::new().with("a", Tensor::<1>::from_floats([2.0], &device)),
    );
    assert_eq!(fixed.latents(), vec![("b".to_string(), vec![1])]);
    let (map, _) = fit_map(
        &fixed,
        &Params::new().with("b", Tensor::<1>::zeros([1], &device)),
        AdamConfig::new(0.1),
        500,
    );
    assert!((vals(map.get::<1>("b"))[0] - 2.0).abs() < 1e-3);
}

#[test]
#[should_panic(
    expected = "Fixed: `fixed` must be values for latents among [\"a\"], got a value for `c`"
)]
fn fixing_an_unknown_latent_is_a_clear_error() {
    let model = LogJoint::new(vec![("a", vec![1])], |p: &Params| p.get::<1>("a"));
    let _ = Fixed::new(
        &model,
        Params::new().with("c", Tensor::<1>::zeros([1], &Device::flex())),
    );
}

#[test]
fn inference_errors_name_the_argument_and_what_was_expected() {
    let device = Device::flex().autodiff();
    let model = LogJoint::new(vec![("a", vec![2])], |p: &Params| p.get::<1>("a").sum());
    let p = Params::new().with("a", Tensor::<1>::zeros([2], &device));
    let msg = |e: burn_probability::Error| e.to_string();
    let missing = msg(p.try_get::<1>("b").unwrap_err());
    assert!(
        missing.contains("one of [\"a\"]") && missing.contains("`b`"),
        "{missing}"
    );
    let rank = msg(p.try_get::<2>("a").unwrap_err());
    assert!(
        rank.contains("shape [2]") && rank.contains("got 2"),
        "{rank}"
    );
    let no_init = msg(try_fit_map(&model, &Params::new(), AdamConfig::new(0.1), 1).unwrap_err());
    assert!(
        no_init.contains("fit_map: `init`") && no_init.contains("`a`"),
        "{no_init}"
    );
    let q = MeanFieldNormal::new(&model, 0.0, 0.0, &device);
    let zero = msg(try_fit_mean_field(&model, q, AdamConfig::new(0.1), 1, 0).unwrap_err());
    assert!(
        zero.contains("samples_per_step") && zero.contains("at least 1"),
        "{zero}"
    );
    let empty = LogJoint::new(vec![], |_: &Params| {
        Tensor::<1>::zeros([1], &Device::flex())
    });
    let q = MeanFieldNormal::new(&empty, 0.0, 0.0, &device);
    let none = msg(try_fit_mean_field(&empty, q, AdamConfig::new(0.1), 1, 1).unwrap_err());
    assert!(none.contains("no latents"), "{none}");
}

#[test]
fn small_ppca_recovers_the_principal_axis() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    device.seed(11);
    let n = 400;
    let w_true = Tensor::<2>::from_floats([[-0.7], [2.5]], &device);
    let z_true = Tensor::<2>::random([1, n], Init::Normal(0.0, 1.0), &device);
    let x = (w_true.clone().matmul(z_true)
        + Tensor::<2>::random([2, n], Init::Normal(0.0, 0.5), &device))
    .autodiff();
    let model = LogJoint::new(
        vec![("w", vec![2, 1]), ("z", vec![1, n])],
        move |p: &Params| {
            let (w, z): (Tensor<2>, Tensor<2>) = (p.get("w"), p.get("z"));
            let lw = Normal::new(w.zeros_like(), w.ones_like() * 2.0)
                .log_prob(w.clone())
                .sum();
            let lz = Normal::new(z.zeros_like(), z.ones_like())
                .log_prob(z.clone())
                .sum();
            let loc = w.matmul(z);
            lw + lz
                + Normal::new(loc.clone(), loc.ones_like() * 0.5)
                    .log_prob(x.clone())
                    .sum()
        },
    );
    let ad = device.autodiff();
    let init = Params::new()
        .with("w", Tensor::<2>::ones([2, 1], &ad))
        .with("z", Tensor::<2>::ones([1, n], &ad));
    let (map, _) = fit_map(&model, &init, AdamConfig::new(0.05), 300);
    let (q, _) = fit_mean_field(
        &model,
        MeanFieldNormal::new(&model, 1.0, -4.0, &ad),
        AdamConfig::new(0.05),
        800,
        1,
    );
    let angle = |w: Vec<f64>| {
        let t = [-0.7, 2.5];
        let c = (w[0] * t[0] + w[1] * t[1]).abs()
            / ((w[0] * w[0] + w[1] * w[1]).sqrt() * (t[0] * t[0] + t[1] * t[1]).sqrt());
        c.min(1.0).acos().to_degrees()
    };
    let (a_map, a_vi) = (
        angle(vals(map.get::<2>("w"))),
        angle(vals(q.mean().get::<2>("w"))),
    );
    assert!(
        a_map < 3.0 && a_vi < 3.0,
        "axis angles: MAP {a_map}°, VI {a_vi}°"
    );
    let sd = vals(q.stddev().get::<2>("w"));
    assert!(
        sd.iter().all(|&s| s > 0.0 && s < 0.2),
        "posterior sd of w: {sd:?}"
    );
}
