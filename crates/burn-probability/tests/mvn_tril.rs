//! `MultivariateNormalTriL` and `LowRankMultivariateNormal`: every case of theirs in the
//! reference file `transforms.json` (log-densities, entropies and KLs against mpmath, at the
//! file's tolerances), sample moments against the covariance, the pathwise gradient against finite
//! differences, and finite values at extreme scales.

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

fn tril(p: &Value, device: &Device) -> MultivariateNormalTriL<1> {
    let loc = vector(&p["loc"]);
    let rows: Vec<f32> = p["scale_tril"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(vector)
        .collect();
    let k = loc.len();
    MultivariateNormalTriL::new(
        Tensor::<1>::from_floats(loc.as_slice(), device),
        Tensor::<1>::from_floats(rows.as_slice(), device).reshape([k, k]),
    )
}

#[test]
fn tril_reference_cases() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/transforms.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let device = flex();
    let mut checked = 0;
    for case in file["cases"].as_array().unwrap() {
        let dist = case["dist"].as_str().unwrap();
        let method = case["method"].as_str().unwrap();
        let got = match (dist, method) {
            ("MultivariateNormalTriL", "log_prob") => {
                let x = vector(&case["value"]);
                vals(
                    tril(&case["params"], &device)
                        .log_prob(Tensor::<1>::from_floats(x.as_slice(), &device)),
                )[0]
            }
            ("MultivariateNormalTriL", "entropy") => {
                vals(tril(&case["params"], &device).entropy())[0]
            }
            ("KL(MultivariateNormalTriL||MultivariateNormalTriL)", "kl") => {
                let (p, q) = (
                    tril(&case["params"]["p"], &device),
                    tril(&case["params"]["q"], &device),
                );
                vals(kl_divergence(&p, &q))[0]
            }
            ("LowRankMultivariateNormal", "log_prob" | "entropy") => {
                let p = &case["params"];
                let loc = vector(&p["loc"]);
                let k = loc.len();
                let w: Vec<f32> = p["cov_factor"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(vector)
                    .collect();
                let r = w.len() / k;
                let d = LowRankMultivariateNormal::new(
                    Tensor::<1>::from_floats(loc.as_slice(), &device),
                    Tensor::<1>::from_floats(w.as_slice(), &device).reshape([k, r]),
                    Tensor::<1>::from_floats(vector(&p["cov_diag"]).as_slice(), &device),
                );
                if method == "entropy" {
                    vals(d.entropy())[0]
                } else {
                    let x = vector(&case["value"]);
                    vals(d.log_prob(Tensor::<1>::from_floats(x.as_slice(), &device)))[0]
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
        assert!(
            (got - want).abs() <= 1e-5 || (got - want).abs() <= rel * want.abs(),
            "{dist} {method} {}: got {got}, expected {want}",
            case["params"]
        );
        checked += 1;
    }
    assert_eq!(checked, 25, "the file's TriL and low-rank cases");
    println!(
        "checked {checked} MultivariateNormalTriL and LowRankMultivariateNormal cases (transforms.json)"
    );
}

#[test]
fn samples_have_the_covariance_and_the_pathwise_gradient_is_right() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = flex().autodiff();
    device.seed(61);
    let loc = Tensor::<1>::from_floats([1.0, -2.0, 0.5], &device);
    let l = Tensor::<2>::from_floats(
        [[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.5, 0.3, 2.0]],
        &device,
    )
    .require_grad();
    let d = MultivariateNormalTriL::new(loc, l.clone());
    let n = 200_000;
    let x: Tensor<2> = d.rsample_n(n);
    let cov = vals(d.covariance::<2>());
    // Sample covariance entries against L Lᵀ (5 standard errors of each product's mean).
    let xs = vals(x.clone());
    for i in 0..3 {
        for j in 0..=i {
            let mean = |c: usize| (0..n).map(|s| xs[s * 3 + c]).sum::<f64>() / n as f64;
            let (mi, mj) = (mean(i), mean(j));
            let prods: Vec<f64> = (0..n)
                .map(|s| (xs[s * 3 + i] - mi) * (xs[s * 3 + j] - mj))
                .collect();
            let m = prods.iter().sum::<f64>() / n as f64;
            let se =
                (prods.iter().map(|p| (p - m).powi(2)).sum::<f64>() / (n as f64 - 1.0) / n as f64)
                    .sqrt();
            assert_within_se(&format!("covariance ({i}, {j})"), m, se, cov[i * 3 + j]);
        }
    }
    // d E[Σ x²]/dL = 2 L (E[x xᵀ] = μμᵀ + L Lᵀ, so E[Σ x²] = |μ|² + ‖L‖²_F): the pathwise
    // estimate within 5 standard errors of 2L, entry by entry (lower triangle).
    let g = vals(l.grad(&x.square().sum_dim(1).mean().backward()).unwrap());
    let want = [1.0, 0.0, 0.0, 0.8, 0.6, 0.0, -0.5, 0.3, 2.0].map(|v| 2.0 * v);
    for (i, (g, w)) in g.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() < 0.05 * (1.0 + w.abs()),
            "dE/dL[{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn finite_at_extreme_scales() {
    let device = flex().autodiff();
    let l = Tensor::<2>::from_floats([[1e-3, 0.0], [1e4, 1e-3]], &device).require_grad();
    let d = MultivariateNormalTriL::new(Tensor::<1>::zeros([2], &device), l.clone());
    let x = Tensor::<1>::from_floats([100.0, -100.0], &device);
    let lp = d.log_prob(x);
    assert!(vals(lp.clone())[0].is_finite());
    let g = vals(l.grad(&lp.backward()).unwrap());
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
}
