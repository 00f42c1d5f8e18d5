//! `MixtureSameFamily` (its cases of `transforms.json` are checked by `reference_values.rs`):
//! sample moments against the closed forms, and the implicit reparameterization gradient.

use burn::tensor::Tensor;
use burn_probability::prelude::*;

mod common;
use common::*;

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

/// A mixture-of-Gaussians prior with batch shape `[]` (logits `[M]`, components `[M, L]`),
/// scored at latents `[S, B, L]` as the objectives do: each value's log-density is the
/// log-sum-exp over the components of the diagonal Gaussians' log-densities, in float64.
#[test]
fn a_prior_with_an_empty_batch_scores_sample_and_batch_dimensions() {
    let device = flex();
    let (m, l, s, b) = (3, 4, 2, 5);
    let logits = [0.2f64, -1.0, 0.7];
    let locs: Vec<f64> = (0..m * l).map(|i| (i as f64 * 0.37).sin() * 2.0).collect();
    let scales: Vec<f64> = (0..m * l)
        .map(|i| 0.5 + (i as f64 * 0.71).cos().abs())
        .collect();
    let prior = MixtureSameFamily::<_, 1>::new(
        Categorical::new(t1(&logits, &device)),
        MultivariateNormalDiag::new(
            t1(&locs, &device).reshape([m, l]),
            t1(&scales, &device).reshape([m, l]),
        ),
    );
    assert_eq!(prior.batch_shape().as_slice(), &[] as &[usize]);
    let z: Vec<f64> = (0..s * b * l)
        .map(|i| (i as f64 * 0.53).cos() * 1.5)
        .collect();
    let got = vals(prior.log_prob_with_shape::<3, 2>(t1(&z, &device).reshape([s, b, l])));
    let norm = logits.iter().map(|v| v.exp()).sum::<f64>().ln();
    for row in 0..s * b {
        let terms: Vec<f64> = (0..m)
            .map(|c| {
                let mut lp = logits[c] - norm;
                for j in 0..l {
                    let (mu, sd) = (locs[c * l + j], scales[c * l + j]);
                    let u = (z[row * l + j] - mu) / sd;
                    lp += -0.5 * u * u - sd.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln();
                }
                lp
            })
            .collect();
        let mx = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let want = mx + terms.iter().map(|t| (t - mx).exp()).sum::<f64>().ln();
        assert!(
            (got[row] - want).abs() < 1e-4 * want.abs().max(1.0),
            "row {row}: {} vs {want}",
            got[row]
        );
    }
    // Its draws have the event shape.
    assert_eq!(prior.sample_n(7).dims(), [7, l]);
}

/// The implicit reparameterization gradient of a mixture of two-dimensional diagonal
/// Gaussians (the distributional transform, coordinate by coordinate): the pathwise gradient of
/// `E[sin x₁ cos x₂]` with respect to every logit, location and scale, per sample (parameters
/// repeated), within 5 standard errors of the closed form
/// `E = Σ_m w_m sin μ_m1 e^(−σ_m1²/2) cos μ_m2 e^(−σ_m2²/2)`. The second coordinate's gradient
/// reaches the first component's parameters only through the conditional weights, so a
/// surrogate that ignored the earlier coordinates would fail the logit and location checks.
#[test]
fn multivariate_rsample_gradient_matches_the_closed_form_expectation() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = flex().autodiff();
    device.seed(83);
    let logits = [0.3f64, -0.4];
    let locs = [[0.5f64, -1.0], [1.5, 0.8]];
    let scales = [[0.7f64, 1.2], [0.4, 0.9]];
    let n = 60_000;
    let flat = |v: &[f64]| {
        let row: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        Tensor::<1>::from_floats(row.as_slice(), &device)
    };
    let l = flat(&logits)
        .reshape([1, 2])
        .repeat_dim(0, n)
        .require_grad();
    let m = flat(&locs.concat())
        .reshape([1, 2, 2])
        .repeat_dim(0, n)
        .require_grad();
    let s = flat(&scales.concat())
        .reshape([1, 2, 2])
        .repeat_dim(0, n)
        .require_grad();
    let d = MixtureSameFamily::<_, 2>::new(
        Categorical::new(l.clone()),
        MultivariateNormalDiag::new(m.clone(), s.clone()),
    );
    let x = d.rsample(); // [n, 2]
    let f = x.clone().narrow(1, 0, 1).sin() * x.narrow(1, 1, 1).cos();
    let grads = f.sum().backward();
    // The closed form and its gradient.
    let z: f64 = logits.iter().map(|v| v.exp()).sum();
    let w: Vec<f64> = logits.iter().map(|v| v.exp() / z).collect();
    let damp = |c: usize, j: usize| (-0.5 * scales[c][j] * scales[c][j]).exp();
    let g: Vec<f64> = (0..2)
        .map(|c| locs[c][0].sin() * damp(c, 0) * locs[c][1].cos() * damp(c, 1))
        .collect();
    let e: f64 = (0..2).map(|c| w[c] * g[c]).sum();
    let mut checks: Vec<(String, Vec<f64>, f64)> = Vec::new();
    let lg = vals(l.grad(&grads).unwrap());
    let mg = vals(m.grad(&grads).unwrap());
    let sg = vals(s.grad(&grads).unwrap());
    for c in 0..2 {
        checks.push((
            format!("logit {c}"),
            (0..n).map(|i| lg[i * 2 + c]).collect(),
            w[c] * (g[c] - e),
        ));
        let (s1, c1) = (locs[c][0].sin(), locs[c][0].cos());
        let (s2, c2) = (locs[c][1].sin(), locs[c][1].cos());
        let dd = damp(c, 0) * damp(c, 1);
        let exact_loc = [w[c] * c1 * c2 * dd, -w[c] * s1 * s2 * dd];
        for j in 0..2 {
            let at = |t: &[f64], i: usize| t[i * 4 + c * 2 + j];
            checks.push((
                format!("loc[{c}][{j}]"),
                (0..n).map(|i| at(&mg, i)).collect(),
                exact_loc[j],
            ));
            checks.push((
                format!("scale[{c}][{j}]"),
                (0..n).map(|i| at(&sg, i)).collect(),
                -scales[c][j] * w[c] * g[c],
            ));
        }
    }
    for (name, per_sample, exact) in checks {
        assert!(
            per_sample.iter().all(|v| v.is_finite()),
            "{name}: a gradient is not finite"
        );
        let mean = per_sample.iter().sum::<f64>() / n as f64;
        let se = (per_sample.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
            / (n as f64 - 1.0)
            / n as f64)
            .sqrt();
        assert_within_se(&format!("d E[sin x1 cos x2]/d {name}"), mean, se, exact);
    }
}
