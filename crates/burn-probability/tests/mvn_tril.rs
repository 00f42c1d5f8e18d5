//! `MultivariateNormalTriL` (its cases of `transforms.json` are checked by
//! `reference_values.rs`): sample moments against the covariance, the pathwise gradient against finite
//! differences, and finite values at extreme scales.

use burn::tensor::Tensor;
use burn_probability::prelude::*;

mod common;
use common::*;

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

/// The backends of the tests below: flex (the fused kernels, unless the `fused` feature is off)
/// and ndarray (burn operations).
#[allow(deprecated)] // burn-ndarray is deprecated upstream but still a supported backend of ours
fn backends() -> [burn::tensor::Device; 2] {
    [flex(), burn::tensor::Device::ndarray()]
}

/// Two 3 × 3 factors (a batch of 2), flattened row-major, with `upper` above the diagonal.
fn factors(upper: f32) -> Vec<f32> {
    let u = upper;
    vec![
        1.0, u, u, 0.8, 0.6, u, -0.5, 0.3, 2.0, //
        0.7, u, u, -0.2, 1.3, u, 0.4, 0.9, 0.5,
    ]
}

/// `(z, w, log p)` of one row in float64: `L z = x − μ`, `Lᵀ w = z`.
fn reference(l: &[f32], mu: &[f32], x: &[f32]) -> ([f64; 3], [f64; 3], f64) {
    let lf = |i: usize, j: usize| l[i * 3 + j] as f64;
    let mut z = [0.0f64; 3];
    for i in 0..3 {
        let s: f64 = (0..i).map(|j| lf(i, j) * z[j]).sum();
        z[i] = (x[i] as f64 - mu[i] as f64 - s) / lf(i, i);
    }
    let mut w = [0.0f64; 3];
    for i in (0..3).rev() {
        let s: f64 = (i + 1..3).map(|j| lf(j, i) * w[j]).sum();
        w[i] = (z[i] - s) / lf(i, i);
    }
    let log_det: f64 = (0..3).map(|i| lf(i, i).ln()).sum();
    let lp = -0.5 * z.iter().map(|v| v * v).sum::<f64>()
        - log_det
        - 1.5 * (2.0 * std::f64::consts::PI).ln();
    (z, w, lp)
}

/// The log-density of 4 values (2 samples of a batch of 2) and its gradients against float64:
/// `∂/∂x = −L⁻ᵀz`, `∂/∂μ = L⁻ᵀz` and `∂/∂L = tril(w zᵀ) − diag(1/Lₖₖ)` summed over the samples,
/// 0 above the diagonal; on both backends (the kernels on flex, burn operations on ndarray).
#[test]
fn log_prob_and_its_gradients_are_exact() {
    let l = factors(0.0);
    let mu = [0.5f32, -1.0, 0.2, 1.0, 0.0, -0.3];
    let x = [
        0.1f32, 0.4, -1.0, 2.0, -0.5, 0.3, //
        -1.2, 0.9, 1.5, 0.0, 0.7, -2.0,
    ];
    let (mut want, mut dx, mut dmu, mut dl) = (vec![], vec![0.0; 12], vec![0.0; 6], vec![0.0; 18]);
    for r in 0..4 {
        let b = r % 2;
        let lb = &l[b * 9..b * 9 + 9];
        let (z, w, lp) = reference(lb, &mu[b * 3..b * 3 + 3], &x[r * 3..r * 3 + 3]);
        want.push(lp);
        for i in 0..3 {
            dx[r * 3 + i] = -w[i];
            dmu[b * 3 + i] += w[i];
            for j in 0..=i {
                let diag = if i == j {
                    1.0 / lb[i * 3 + i] as f64
                } else {
                    0.0
                };
                dl[b * 9 + i * 3 + j] += w[i] * z[j] - diag;
            }
        }
    }
    for device in backends() {
        let device = device.autodiff();
        let lt =
            Tensor::<3>::from_data(burn::tensor::TensorData::new(l.clone(), [2, 3, 3]), &device)
                .require_grad();
        let mt =
            Tensor::<2>::from_data(burn::tensor::TensorData::new(mu.to_vec(), [2, 3]), &device)
                .require_grad();
        let xt = Tensor::<3>::from_data(
            burn::tensor::TensorData::new(x.to_vec(), [2, 2, 3]),
            &device,
        )
        .require_grad();
        let lp = MultivariateNormalTriL::new(mt.clone(), lt.clone()).log_prob_keepdim(xt.clone());
        assert_eq!(lp.dims(), [2, 2, 1]);
        let grads = lp.clone().sum().backward();
        for (what, got, want) in [
            ("log_prob", vals(lp), &want),
            ("d/dx", vals(xt.grad(&grads).unwrap()), &dx),
            ("d/dloc", vals(mt.grad(&grads).unwrap()), &dmu),
            ("d/dscale_tril", vals(lt.grad(&grads).unwrap()), &dl),
        ] {
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (g - w).abs() < 1e-5 * (1.0 + w.abs()),
                    "{device:?} {what}[{i}]: {g} vs {w}"
                );
            }
        }
    }
}

/// Values (and noise) whose batch dimension broadcasts against the distribution's (`[2, 1, K]`
/// against a batch of 2, with `loc` broadcasting against `scale_tril` too) take burn operations,
/// and agree with the same values expanded to the batch, which take the fused path on flex.
#[test]
fn values_that_broadcast_agree_with_the_expanded_values() {
    for device in backends() {
        let device = device.autodiff();
        let l = Tensor::<3>::from_data(
            burn::tensor::TensorData::new(factors(0.0), [2, 3, 3]),
            &device,
        );
        let loc = Tensor::<2>::from_floats([[0.5, -1.0, 0.2]], &device);
        let d = MultivariateNormalTriL::new(loc, l);
        let x = Tensor::<3>::from_floats([[[0.1, 0.4, -1.0]], [[-1.2, 0.9, 1.5]]], &device);
        let broadcast = vals(d.log_prob_keepdim(x.clone()));
        let expanded = vals(d.log_prob_keepdim(x.clone().expand([2, 2, 3])));
        assert_eq!(broadcast.len(), 4);
        for (a, b) in broadcast.iter().zip(&expanded) {
            assert!(
                (a - b).abs() < 1e-5 * (1.0 + b.abs()),
                "{device:?}: {a} vs {b}"
            );
        }
        let broadcast = vals(d.rsample_with_noise(x.clone()));
        let expanded = vals(d.rsample_with_noise(x.expand([2, 2, 3])));
        assert_eq!(broadcast.len(), 12);
        for (a, b) in broadcast.iter().zip(&expanded) {
            assert!(
                (a - b).abs() < 1e-5 * (1.0 + b.abs()),
                "{device:?}: {a} vs {b}"
            );
        }
    }
}

/// Entries above the diagonal of `scale_tril` (here NaN) are never read: every method gives what
/// the lower-triangular matrix gives, and they get no gradient.
#[test]
fn the_upper_triangle_is_never_read() {
    for device in backends() {
        let device = device.autodiff();
        let make = |upper: f32| {
            let l = Tensor::<3>::from_data(
                burn::tensor::TensorData::new(factors(upper), [2, 3, 3]),
                &device,
            )
            .require_grad();
            let loc = Tensor::<2>::from_floats([[0.5, -1.0, 0.2], [1.0, 0.0, -0.3]], &device);
            (MultivariateNormalTriL::new(loc, l.clone()), l)
        };
        let (clean, _) = make(0.0);
        let (dirty, l) = make(f32::NAN);
        let x = Tensor::<3>::from_floats(
            [
                [[0.1, 0.4, -1.0], [2.0, -0.5, 0.3]],
                [[-1.2, 0.9, 1.5], [0.0, 0.7, -2.0]],
            ],
            &device,
        );
        let pairs = [
            (
                "log_prob",
                vals(dirty.log_prob_keepdim(x.clone())),
                vals(clean.log_prob_keepdim(x.clone())),
            ),
            (
                "log_prob of broadcast values",
                vals(dirty.log_prob_keepdim(x.clone().narrow(1, 0, 1))),
                vals(clean.log_prob_keepdim(x.clone().narrow(1, 0, 1))),
            ),
            (
                "rsample",
                vals(dirty.rsample_with_noise(x.clone())),
                vals(clean.rsample_with_noise(x.clone())),
            ),
            ("entropy", vals(dirty.entropy()), vals(clean.entropy())),
            ("variance", vals(dirty.variance()), vals(clean.variance())),
            (
                "scale_tril",
                vals(dirty.scale_tril::<3>()),
                vals(clean.scale_tril::<3>()),
            ),
            (
                "covariance",
                vals(dirty.covariance::<3>()),
                vals(clean.covariance::<3>()),
            ),
            (
                "KL(dirty ‖ clean)",
                vals(kl_divergence(&dirty, &clean)),
                vals(kl_divergence(&clean, &clean)),
            ),
            (
                "KL(clean ‖ dirty)",
                vals(kl_divergence(&clean, &dirty)),
                vals(kl_divergence(&clean, &clean)),
            ),
        ];
        for (what, got, want) in pairs {
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-5 * (1.0 + w.abs()),
                    "{device:?} {what}: {g} vs {w}"
                );
            }
        }
        let total = dirty.log_prob_keepdim(x.clone()).sum() + dirty.rsample_with_noise(x).sum();
        let g = vals(l.grad(&total.backward()).unwrap());
        for (n, v) in g.iter().enumerate() {
            let (i, j) = ((n % 9) / 3, n % 3);
            assert!(
                if j > i { *v == 0.0 } else { v.is_finite() },
                "{device:?}: d/dscale_tril[{n}] = {v}"
            );
        }
    }
}
