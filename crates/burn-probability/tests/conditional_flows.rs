//! Flows as VAE posteriors: networks with a context and a reversed order, stacks of flows as a
//! `Vec`, and the sample-and-density path (`rsample_and_log_prob_with_noise`) that scores a
//! flow's draws without inverting it, against the inverse's densities and gradients.
//!
//! burn's random number generator is process-global: every test that seeds it holds `RNG`
//! while it seeds and draws, so that each test sees the same draws in every run.

mod common;

use burn::module::{Module, ModuleMapper, Param as MParam};
use burn::tensor::{Device, Distribution as Init, Tensor};
use burn_probability::bijector::Bijector;
use burn_probability::flows::{Conditioned, InverseAutoregressiveFlow, MadeConfig};
use burn_probability::objectives::{Elbo, Iwae};
use burn_probability::prelude::*;
use common::{t1, vals};

static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Replaces every parameter by `N(0, std²)` draws (the zero last layer included), tracked by
/// autodiff when the second field is set.
struct Randomize(f64, bool);

impl ModuleMapper for Randomize {
    fn map_float<const D: usize>(&mut self, p: MParam<Tensor<D>>) -> MParam<Tensor<D>> {
        let v = p.val().random_like(Init::Normal(0.0, self.0));
        MParam::initialized(p.id, if self.1 { v.require_grad() } else { v })
    }
}

/// `steps` IAFs on `k` latents with a context of size `c`, alternating the order, with random
/// weights.
fn random_stack(
    k: usize,
    c: usize,
    steps: usize,
    seed: u64,
    device: &Device,
    grad: bool,
) -> Vec<InverseAutoregressiveFlow> {
    device.seed(seed);
    (0..steps)
        .map(|i| {
            let made = MadeConfig::new(k, vec![16, 16])
                .with_context_size(c)
                .with_reversed(i % 2 == 1)
                .init(device)
                .map(&mut Randomize(0.4, grad));
            InverseAutoregressiveFlow::new(made)
        })
        .collect()
}

fn conditioned(
    stack: &[InverseAutoregressiveFlow],
    h: &Tensor<2>,
) -> Vec<Conditioned<InverseAutoregressiveFlow>> {
    stack.iter().map(|f| f.conditioned(h.clone())).collect()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// A reversed network's output `k` depends only on the inputs after `k`: its Jacobian is
/// strictly upper triangular (and a plain one's strictly lower: both checked).
#[test]
fn reversed_made_autoregresses_from_the_last_coordinate() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let ad = Device::flex().autodiff();
    for reversed in [false, true] {
        ad.seed(3);
        let made = MadeConfig::new(4, vec![12])
            .with_reversed(reversed)
            .init(&ad)
            .map(&mut Randomize(0.7, false));
        for i in 0..4 {
            let x = t1(&[0.3, -0.2, 0.9, 0.5], &ad).require_grad();
            let (shift, log_scale) = made.forward(x.clone());
            let pick = |t: Tensor<1>| t.narrow(0, i, 1).sum();
            let grads = (pick(shift) + pick(log_scale)).backward();
            let g = vals(x.grad(&grads).expect("a gradient"));
            for (j, gj) in g.iter().enumerate() {
                let allowed = if reversed { j > i } else { j < i };
                if !allowed {
                    assert_eq!(*gj, 0.0, "reversed {reversed}: output {i} reads input {j}");
                }
            }
            // Some allowed input is read (the randomized network is not degenerate).
            let reads_any = g
                .iter()
                .enumerate()
                .any(|(j, gj)| (if reversed { j > i } else { j < i }) && gj.abs() > 1e-6);
            let has_allowed = if reversed { i < 3 } else { i > 0 };
            assert_eq!(
                reads_any, has_allowed,
                "reversed {reversed}, output {i}: {g:?}"
            );
        }
    }
}

/// The context changes the map, row by row: each sample row `[s, b, :]` uses context row `b`.
#[test]
fn the_context_conditions_each_example_on_its_own_row() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    let stack = random_stack(3, 2, 1, 5, &device, false);
    let h = Tensor::<2>::from_floats([[0.0, 0.0], [2.0, -1.0]], &device);
    let flow = stack[0].conditioned(h);
    let x = Tensor::<3>::from_floats(
        [
            [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]],
            [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]],
        ],
        &device,
    );
    let y = vals(flow.forward(x));
    // Same input, different contexts: different outputs; same context: the same output.
    assert!(max_abs_diff(&y[0..3], &y[3..6]) > 1e-3, "{y:?}");
    assert_eq!(&y[0..3], &y[6..9]);
    assert_eq!(&y[3..6], &y[9..12]);
    // Each row equals the flow applied with that row's context alone.
    let alone = stack[0].conditioned(Tensor::<2>::from_floats([[2.0, -1.0]], &device));
    let y1 = vals(alone.forward(Tensor::<2>::from_floats([[0.1, 0.2, 0.3]], &device)));
    assert!(max_abs_diff(&y1, &y[3..6]) < 1e-6);
}

/// Missing, unexpected and misshapen contexts are errors naming the context.
#[test]
fn context_mistakes_are_errors() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    let base = MultivariateNormalDiag::new(Tensor::<2>::zeros([4, 3], &device), 1.0);
    let with_context = random_stack(3, 2, 1, 1, &device, false).remove(0);
    let e = TransformedDistribution::try_new(base.clone(), with_context.clone())
        .expect_err("a context is required")
        .to_string();
    assert!(e.contains("context") && e.contains("conditioned"), "{e}");
    let e = TransformedDistribution::try_new(
        base.clone(),
        with_context.conditioned(Tensor::<2>::zeros([5, 2], &device)),
    )
    .expect_err("5 context rows for 4 examples")
    .to_string();
    assert!(e.contains("[5, 2]") && e.contains("[4, 3]"), "{e}");
    let e = TransformedDistribution::try_new(
        base.clone(),
        with_context.conditioned(Tensor::<2>::zeros([4, 7], &device)),
    )
    .expect_err("context width 7, network 2")
    .to_string();
    assert!(e.contains("[4, 7]"), "{e}");
    let without = random_stack(3, 0, 1, 1, &device, false).remove(0);
    let e = TransformedDistribution::try_new(
        base,
        without.conditioned(Tensor::<2>::zeros([4, 2], &device)),
    )
    .expect_err("the network takes no context")
    .to_string();
    assert!(e.contains("context_size 0"), "{e}");
}

/// `rsample_and_log_prob_with_noise` of a flow posterior (three conditioned IAFs over a
/// diagonal Gaussian, `[S, B, K]` draws) equals `rsample_with_noise` and `log_prob_keepdim`
/// (which inverts the flows, `K` passes each): the same draws, the same densities, and the same
/// gradients in every parameter.
#[test]
fn sample_and_log_prob_equals_the_density_of_the_draws() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let ad = Device::flex().autodiff();
    let (k, c, b, s) = (4, 3, 5, 2);
    let stack = random_stack(k, c, 3, 11, &ad, true);
    ad.seed(12);
    let h = Tensor::<2>::random([b, c], Init::Normal(0.0, 1.0), &ad);
    let loc = Tensor::<2>::random([b, k], Init::Normal(0.0, 1.0), &ad).require_grad();
    let scale = Tensor::<2>::random([b, k], Init::Uniform(0.5, 1.5), &ad).require_grad();
    let q = || {
        TransformedDistribution::new(
            MultivariateNormalDiag::new(loc.clone(), scale.clone()),
            conditioned(&stack, &h),
        )
    };
    let noise: Tensor<3> = q().noise(&[s]);
    // Two graphs: burn's tape is consumed by one backward pass.
    let (z, lp) = q().rsample_and_log_prob_with_noise(noise.clone());
    let z_ref = q().rsample_with_noise(noise);
    let lp_ref = q().log_prob_keepdim(z_ref.clone());
    assert_eq!(lp.dims(), [s, b, 1]);
    assert!(max_abs_diff(&vals(z.clone()), &vals(z_ref.clone())) < 1e-6);
    let (lp_v, lp_ref_v) = (vals(lp.clone()), vals(lp_ref.clone()));
    // The reference inverts the flows (K sequential passes each), whose float32 rounding
    // grows with the size of the terms: a relative tolerance, 2e-4 of max(1, |ln q|).
    for (a, r) in lp_v.iter().zip(&lp_ref_v) {
        assert!(
            (a - r).abs() < 2e-4 * r.abs().max(1.0),
            "{lp_v:?} vs {lp_ref_v:?}"
        );
    }
    // A deliberately different density (the base's alone) is far off: the check can fail.
    let base_only = vals(q().base().log_prob_keepdim(z_ref.clone().detach()));
    assert!(max_abs_diff(&lp_v, &base_only) > 0.05);

    // Gradients of a loss through both the draws and the density.
    let loss = |z: Tensor<3>, lp: Tensor<3>| (z.square().sum() + lp.sum()).backward();
    let g = loss(z, lp);
    let g_ref = loss(z_ref, lp_ref);
    // Relative to the largest gradient (the random flows amplify some directions ~10⁵×).
    let close = |a: &[f64], r: &[f64]| {
        let scale = r.iter().map(|v| v.abs()).fold(1.0, f64::max);
        max_abs_diff(a, r) < 1e-4 * scale
    };
    for (name, p) in [("loc", &loc), ("scale", &scale)] {
        let (a, r) = (vals(p.grad(&g).unwrap()), vals(p.grad(&g_ref).unwrap()));
        assert!(close(&a, &r), "{name}: {a:?} vs {r:?}");
    }
    let w = |f: &InverseAutoregressiveFlow, g| {
        let mut out = Vec::new();
        struct Grads<'a>(&'a burn::tensor::Gradients, &'a mut Vec<f64>);
        impl burn::module::ModuleVisitor for Grads<'_> {
            fn visit_float<const D: usize>(&mut self, p: &MParam<Tensor<D>>) {
                if let Some(g) = p.val().grad(self.0) {
                    self.1.extend(vals(g.reshape([-1])));
                }
            }
        }
        f.visit(&mut Grads(g, &mut out));
        out
    };
    for f in &stack {
        let (a, r) = (w(f, &g), w(f, &g_ref));
        assert!(!a.is_empty() && a.len() == r.len());
        assert!(close(&a, &r), "flow weights");
    }
}

/// The objectives score a flow posterior at its own draws: the ELBO and IWAE values from the
/// sample-and-density path equal those computed from the densities of the same draws by hand.
#[test]
fn objectives_use_the_flow_density_of_their_draws() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    let (k, c, b, s) = (3, 2, 4, 6);
    let stack = random_stack(k, c, 2, 21, &device, false);
    device.seed(22);
    let h = Tensor::<2>::random([b, c], Init::Normal(0.0, 1.0), &device);
    let q = TransformedDistribution::new(
        MultivariateNormalDiag::new(Tensor::<2>::zeros([b, k], &device), 0.8),
        conditioned(&stack, &h),
    );
    let prior = MultivariateNormalDiag::<1>::standard([k], &device);
    let x = Tensor::<2>::random([b, k], Init::Normal(0.0, 1.0), &device);
    let lik = |z: Tensor<2>| MultivariateNormalDiag::new(z, 0.5);
    let noise: Tensor<3> = q.noise(&[s]);
    // By hand: ln w = ln p(x | z) + ln p(z) − ln q(z) with ln q from the inverse.
    let z = q.rsample_with_noise(noise.clone());
    let log_q: Tensor<2> = q.log_prob_n(z.clone());
    let log_prior: Tensor<2> = prior.log_prob_with_shape::<3, 2>(z.clone());
    let log_lik = lik(z.reshape([s * b, k]))
        .log_prob(
            x.clone()
                .unsqueeze_dim::<3>(0)
                .expand([s, b, k])
                .reshape([s * b, k]),
        )
        .reshape([s, b]);
    let log_w = vals(log_lik + log_prior - log_q);
    let elbo_ref: Vec<f64> = (0..b)
        .map(|j| (0..s).map(|i| log_w[i * b + j]).sum::<f64>() / s as f64)
        .collect();
    let iwae_ref: Vec<f64> = (0..b)
        .map(|j| {
            let col: Vec<f64> = (0..s).map(|i| log_w[i * b + j]).collect();
            let m = col.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            m + (col.iter().map(|v| (v - m).exp()).sum::<f64>() / s as f64).ln()
        })
        .collect();
    let elbo = Elbo::new().num_samples(s).monte_carlo_kl_with_noise(
        &q,
        &prior,
        lik,
        x.clone(),
        noise.clone(),
    );
    let iwae = Iwae::new(s).compute_with_noise(&q, &prior, lik, x, noise);
    assert!(max_abs_diff(&vals(elbo.value), &elbo_ref) < 2e-4);
    assert!(max_abs_diff(&vals(iwae.value), &iwae_ref) < 2e-4);
}
