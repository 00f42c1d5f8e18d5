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
