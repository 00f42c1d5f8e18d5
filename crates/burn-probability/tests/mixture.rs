//! `MixtureSameFamily`: every mixture case of the reference file `transforms.json` (mixtures
//! of Normals: log-density, cdf, mean, variance; mixtures of diagonal Gaussians: log-density),
//! and sample moments against the closed forms.

use burn::tensor::{Device, Tensor};
use burn_probability::prelude::*;
use serde_json::Value;

mod common;
use common::*;

fn vector(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn t1(xs: &[f32], device: &Device) -> Tensor<1> {
    Tensor::from_floats(xs, device)
}

#[test]
fn mixture_reference_cases() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/transforms.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let device = flex();
    let mut checked = 0;
    for case in file["cases"].as_array().unwrap() {
        let dist = case["dist"].as_str().unwrap();
        let method = case["method"].as_str().unwrap();
        let p = &case["params"];
        let logits =
            || Categorical::new(t1(&vector(&p["mixture_distribution"]["logits"]), &device));
        let c = &p["component_distribution"];
        let got: Vec<f64> = match dist {
            "MixtureSameFamily(Normal)" => {
                // A batch of one mixture: components [1, M], values [1].
                let row = |key: &str| {
                    let v = vector(&c[key]);
                    t1(&v, &device).reshape([1, v.len()])
                };
                let w = vector(&p["mixture_distribution"]["logits"]);
                let mixture = Categorical::new(t1(&w, &device).reshape([1, w.len()]));
                let comps = Normal::new(row("loc"), row("scale"));
                let d = MixtureSameFamily::<_, 1>::new(mixture, comps);
                let x = || t1(&[case["value"].as_f64().unwrap() as f32], &device);
                match method {
                    "log_prob" => vals(d.log_prob(x())),
                    "cdf" => vals(d.cdf(x())),
                    "mean" => vals(d.mean()),
                    "variance" => vals(d.variance()),
                    _ => panic!("unknown case kind: {dist} {method}"),
                }
            }
            "MixtureSameFamily(MultivariateNormalDiag)" => {
                let rows = |key: &str| -> Tensor<2> {
                    let r: Vec<Vec<f32>> = c[key].as_array().unwrap().iter().map(vector).collect();
                    let (m, k) = (r.len(), r[0].len());
                    t1(&r.concat(), &device).reshape([m, k])
                };
                let comps = MultivariateNormalDiag::new(rows("loc"), rows("scale_diag"));
                let d = MixtureSameFamily::<_, 1>::new(logits(), comps);
                match method {
                    "log_prob" => vals(d.log_prob(t1(&vector(&case["value"]), &device))),
                    _ => panic!("unknown case kind: {dist} {method}"),
                }
            }
            _ => continue,
        };
        let want = case["expected"].as_f64().unwrap();
        let rel = if case["note"]
            .as_str()
            .is_some_and(|n| n == "tail" || n == "boundary")
        {
            1e-3
        } else {
            1e-4
        };
        let got = got[0];
        assert!(
            (got - want).abs() <= 1e-5 || (got - want).abs() <= rel * want.abs(),
            "{dist} {method} {p}: got {got}, expected {want}"
        );
        checked += 1;
    }
    assert_eq!(checked, 27, "the file's mixture cases");
    println!("checked {checked} MixtureSameFamily cases (transforms.json)");
}

#[test]
fn samples_have_the_mixture_moments() {
    let device = flex();
    // A batch of two mixtures of three Normals.
    let logits = Tensor::<2>::from_floats([[0.0, 1.0, -1.0], [2.0, 0.0, 0.5]], &device);
    let loc = Tensor::<2>::from_floats([[-2.0, 0.0, 3.0], [1000.0, 1001.5, 996.0]], &device);
    let scale = Tensor::<2>::from_floats([[1.0, 0.5, 2.0], [0.3, 1.0, 1.0]], &device);
    let d = MixtureSameFamily::<_, 1>::new(Categorical::new(logits), Normal::new(loc, scale));
    check_sample_moments("MixtureSameFamily(Normal)", &d, 71);
}

/// The implicit reparameterization gradient of a univariate mixture: the pathwise gradient of
/// `E[sin(x)]` with respect to a component location, a component scale and a logit, per
/// sample (parameters repeated), within 5 standard errors of central finite differences of
/// the expectation computed by Simpson's rule in float64.
#[test]
fn rsample_gradient_matches_finite_differences_of_the_expectation() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = flex().autodiff();
    device.seed(81);
    let (logits, locs, scales) = ([0.3f64, -0.5, 0.0], [-1.5f64, 0.5, 2.0], [0.7f64, 1.2, 0.4]);
    let n = 100_000;
    let rep = |v: &[f64; 3]| {
        let row: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        Tensor::<1>::from_floats(row.as_slice(), &device)
            .reshape([1, 3])
            .repeat_dim(0, n)
            .require_grad()
    };
    let (l, m, s) = (rep(&logits), rep(&locs), rep(&scales));
    let d = MixtureSameFamily::<_, 1>::new(
        Categorical::new(l.clone()),
        Normal::new(m.clone(), s.clone()),
    );
    let x = d.rsample();
    let grads = x.sin().sum().backward();
    let per_sample = |t: &Tensor<2>, k: usize| -> Vec<f64> {
        let g = vals(t.grad(&grads).unwrap());
        (0..n).map(|i| g[i * 3 + k]).collect()
    };
    // E[sin x] in float64 by Simpson's rule over [−12, 12].
    let expectation = |l: [f64; 3], m: [f64; 3], s: [f64; 3]| {
        let z: f64 = l.iter().map(|v| v.exp()).sum();
        let pdf = |x: f64| -> f64 {
            (0..3)
                .map(|k| {
                    let u = (x - m[k]) / s[k];
                    l[k].exp() / z * (-0.5 * u * u).exp()
                        / (s[k] * (2.0 * std::f64::consts::PI).sqrt())
                })
                .sum()
        };
        let (a, b, steps) = (-12.0f64, 12.0f64, 20_000);
        let h = (b - a) / steps as f64;
        let mut acc = pdf(a) * a.sin() + pdf(b) * b.sin();
        for i in 1..steps {
            let x = a + h * i as f64;
            acc += pdf(x) * x.sin() * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        acc * h / 3.0
    };
    let h = 1e-4;
    let fd = |which: usize, k: usize| {
        let (mut lp, mut mp, mut sp) = (logits, locs, scales);
        let (mut lm, mut mm, mut sm) = (logits, locs, scales);
        match which {
            0 => {
                lp[k] += h;
                lm[k] -= h;
            }
            1 => {
                mp[k] += h;
                mm[k] -= h;
            }
            _ => {
                sp[k] += h;
                sm[k] -= h;
            }
        }
        (expectation(lp, mp, sp) - expectation(lm, mm, sm)) / (2.0 * h)
    };
    for (name, t, which, k) in [
        ("logit 0", &l, 0, 0),
        ("loc 1", &m, 1, 1),
        ("scale 2", &s, 2, 2),
    ] {
        let g = per_sample(t, k);
        let mean = g.iter().sum::<f64>() / n as f64;
        let se = (g.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0) / n as f64)
            .sqrt();
        assert!(
            g.iter().all(|v| v.is_finite()),
            "{name}: a gradient is not finite"
        );
        assert_within_se(&format!("d E[sin x]/d {name}"), mean, se, fd(which, k));
    }
}
