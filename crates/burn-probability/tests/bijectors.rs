//! Bijectors and `TransformedDistribution` (their golden cases of `tests/data/transforms.json`
//! are checked by `reference_values.rs`): round trips, the
//! log-determinants against autodiff, normalization, finite values and gradients at extreme
//! inputs, `LogNormal` rebuilt as `exp` of a Normal, the composites (`Independent`, a flow
//! posterior in the ELBO, KL) and the errors.

mod common;

use burn::tensor::{Device, Shape, Tensor};
use burn_probability::bijector::{Affine, Bijector, Chain, Exp, Sigmoid, Softplus, Tanh};
use burn_probability::objectives::{Elbo, Iwae};
use burn_probability::prelude::*;
use burn_probability::{Error, Result};
use common::any_bijector::{AnyBijector, any_affine};
use common::{simpson, t1, vals};

fn device() -> Device {
    Device::flex()
}

/// `f′(x)` in float64, for the round trip's tolerance and the autodiff check.
fn derivative(name: &str, x: f64) -> f64 {
    let s = 1.0 / (1.0 + (-x).exp());
    match name {
        "Exp" => x.exp(),
        "Sigmoid" => s * (1.0 - s),
        "Tanh" => 1.0 - x.tanh().powi(2),
        "Softplus" => s,
        "Affine" => -3.7,
        _ => unreachable!(),
    }
}

fn grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..=n)
        .map(|i| lo + (hi - lo) * i as f64 / n as f64)
        .collect()
}

/// `f⁻¹(f(x)) = x` over the range where `f(x)` is finite and not rounded to the end of its
/// image in float32: Exp on [−87, 88] (`eˣ` is a normal float32 there), Sigmoid on [−87, 16]
/// (σ rounds to 1 beyond 16.6), Tanh on [−9, 9] (tanh rounds to ±1 beyond 9.01), Softplus on
/// [−87, 88], Affine(2, −3.7) on [−1e4, 1e4]. The tolerance is the float32 condition of the
/// inverse: 4 ulps of `y` carried back through `1/f′(x)`, plus 1e-5·(1 + |x|).
#[test]
fn inverse_of_forward_is_the_identity() {
    let affine = any_affine((2.0, -3.7, &device()));
    let cases = [
        ("Exp", AnyBijector::Exp, -87.0, 88.0),
        ("Sigmoid", AnyBijector::Sigmoid, -87.0, 16.0),
        ("Tanh", AnyBijector::Tanh, -9.0, 9.0),
        ("Softplus", AnyBijector::Softplus, -87.0, 88.0),
        ("Affine", affine, -1e4, 1e4),
    ];
    for (name, b, lo, hi) in cases {
        let xs = grid(lo, hi, 400);
        let x = t1(&xs, &device());
        let y = vals(b.forward(x.clone()));
        let back = vals(b.inverse(b.forward(x)));
        for ((&x, &y), &got) in xs.iter().zip(&y).zip(&back) {
            let x32 = x as f32 as f64;
            let tol = 4.0 * f32::EPSILON as f64 * y.abs() / derivative(name, x32).abs()
                + 1e-5 * (1.0 + x32.abs());
            assert!(
                got.is_finite() && (got - x32).abs() <= tol,
                "{name}: f⁻¹(f({x32})) = {got} (y = {y}), tolerance {tol}"
            );
        }
    }
}

/// `forward_log_det_jacobian(x) = ln |d f(x)/dx|` with the derivative from burn's autodiff
/// (the backward pass of `Σ f(x)`), on [−4, 4] for each bijector and for `Tanh` then
/// `Affine(0.5, −2)` (`ln 2 + ln(1 − tanh² x)`).
#[test]
fn log_det_jacobian_matches_autodiff() {
    let ad = device().autodiff();
    let chain = AnyBijector::Chain(Box::new(Chain::new(
        AnyBijector::Tanh,
        any_affine((0.5, -2.0, &ad)),
    )));
    let cases = [
        AnyBijector::Exp,
        AnyBijector::Sigmoid,
        AnyBijector::Tanh,
        AnyBijector::Softplus,
        any_affine((2.0, -3.7, &ad)),
        chain,
    ];
    let xs = grid(-4.0, 4.0, 80);
    for b in cases {
        let x = t1(&xs, &ad).require_grad();
        let grads = b.forward(x.clone()).sum().backward();
        let dydx = vals(x.grad(&grads).expect("a gradient"));
        let ld = vals(b.forward_log_det_jacobian(x.detach()));
        for ((x, d), l) in xs.iter().zip(&dydx).zip(&ld) {
            assert!(
                (d.abs().ln() - l).abs() <= 5e-4 * (1.0 + l.abs()),
                "{b:?} at x = {x}: ln|f′| = {} by autodiff, forward_log_det_jacobian = {l}",
                d.abs().ln()
            );
        }
        // The inverse log-determinant is its negative at y = f(x).
        let y = b.forward(t1(&xs, &ad));
        let ild = vals(b.inverse_log_det_jacobian(y));
        for ((x, l), il) in xs.iter().zip(&ld).zip(&ild) {
            assert!(
                (l + il).abs() <= 1e-3 * (1.0 + l.abs()),
                "{b:?} at x = {x}: fldj {l} and ildj {il} are not opposite"
            );
        }
    }
}

/// The density of a transformed Normal integrates to 1 on its image (Simpson's rule).
#[test]
fn transformed_densities_integrate_to_one() {
    let d = device();
    let base = || Normal::new(t1(&[0.3], &d), 0.8);
    let affine = |s: f64, a: f64| Affine::<1>::from_scalars(s, a, &d);
    let e = 1e-6;
    let checks: Vec<(&str, LogDensity<'_>, f64, f64)> = vec![
        (
            "Exp",
            Box::new(|y| TransformedDistribution::new(base(), Exp).log_prob_keepdim(y)),
            e,
            40.0,
        ),
        (
            "Sigmoid",
            Box::new(|y| TransformedDistribution::new(base(), Sigmoid).log_prob_keepdim(y)),
            e,
            1.0 - e,
        ),
        (
            "Tanh",
            Box::new(|y| TransformedDistribution::new(base(), Tanh).log_prob_keepdim(y)),
            -1.0 + e,
            1.0 - e,
        ),
        (
            "Softplus",
            Box::new(|y| TransformedDistribution::new(base(), Softplus).log_prob_keepdim(y)),
            e,
            10.0,
        ),
        (
            "Affine(−1, −0.5)",
            Box::new(|y| {
                TransformedDistribution::new(base(), affine(-1.0, -0.5)).log_prob_keepdim(y)
            }),
            -5.0,
            3.0,
        ),
        (
            "Tanh then Affine(1, 2)",
            Box::new(|y| {
                TransformedDistribution::new(base(), Tanh.then(affine(1.0, 2.0)))
                    .log_prob_keepdim(y)
            }),
            -1.0 + e,
            3.0 - e,
        ),
    ];
    for (name, log_p, a, b) in checks {
        let total = simpson(log_p, &device(), a, b, 40_000);
        assert!(
            (total - 1.0).abs() < 2e-3,
            "{name}: the density integrates to {total}"
        );
    }
}

type LogDensity<'a> = Box<dyn Fn(Tensor<1>) -> Tensor<1> + 'a>;

fn all_finite(what: &str, v: &[f64]) {
    assert!(v.iter().all(|x| x.is_finite()), "{what}: {v:?}");
}

/// Values and gradients stay finite at |x| = 100 (forward and log-determinant; Exp only for
/// the log-determinant and x = −100, since e¹⁰⁰ overflows float32) and at y = 1e-7, 1 − 1e-7
/// (−1 + 1e-7 for Tanh) for the inverses and the transformed log-densities, gradients taken
/// with respect to the value and the base's parameters.
#[test]
fn finite_values_and_gradients_at_extreme_inputs() {
    let ad = device().autodiff();
    let cases: [(AnyBijector, &[f64], &[f64]); 4] = [
        (AnyBijector::Exp, &[-100.0], &[1e-7, 1.0 - 1e-7, 1e7]),
        (AnyBijector::Sigmoid, &[-100.0, 100.0], &[1e-7, 1.0 - 1e-7]),
        (
            AnyBijector::Tanh,
            &[-100.0, 100.0],
            &[-1.0 + 1e-7, 1e-7, 1.0 - 1e-7],
        ),
        (
            AnyBijector::Softplus,
            &[-100.0, 100.0],
            &[1e-7, 1.0 - 1e-7, 100.0],
        ),
    ];
    for (b, xs, ys) in cases {
        let x = t1(xs, &ad).require_grad();
        let fwd = b.forward(x.clone());
        let ld = b.forward_log_det_jacobian(x.clone());
        all_finite(&format!("{b:?} forward"), &vals(fwd.clone()));
        all_finite(&format!("{b:?} fldj"), &vals(ld.clone()));
        let grads = (fwd.sum() + ld.sum()).backward();
        all_finite(&format!("{b:?} d/dx"), &vals(x.grad(&grads).unwrap()));

        let y = t1(ys, &ad).require_grad();
        let loc = t1(&[0.2], &ad).require_grad();
        let scale = t1(&[1.5], &ad).require_grad();
        let d = TransformedDistribution::new(Normal::new(loc.clone(), scale.clone()), b.clone());
        let lp = d.log_prob_keepdim(y.clone());
        let inv = b.inverse(y.clone());
        let ild = b.inverse_log_det_jacobian(y.clone());
        for (what, t) in [("log_prob", &lp), ("inverse", &inv), ("ildj", &ild)] {
            all_finite(&format!("{b:?} {what} at {ys:?}"), &vals(t.clone()));
        }
        let grads = (lp.sum() + inv.sum() + ild.sum()).backward();
        for (what, t) in [("y", &y), ("loc", &loc), ("scale", &scale)] {
            all_finite(
                &format!("{b:?} gradient in {what} at {ys:?}"),
                &vals(t.grad(&grads).unwrap()),
            );
        }
    }
}

/// `TransformedDistribution(Normal(μ, σ), Exp)` is `LogNormal(μ, σ)`: log-densities, samples
/// from the same noise, and the KL.
#[test]
fn exp_of_a_normal_is_the_log_normal() {
    let d = device();
    let (loc, scale) = (
        t1(&[-1.0, 0.0, 0.7, 2.0], &d),
        t1(&[0.3, 1.0, 0.01, 2.5], &d),
    );
    let td = TransformedDistribution::new(Normal::new(loc.clone(), scale.clone()), Exp);
    let ln = LogNormal::new(loc.clone(), scale.clone());
    let ys: Tensor<2> = Tensor::<1>::from_floats([1e-3, 0.5, 1.0, 2.01, 7.5, 300.0], &d)
        .reshape([6, 1])
        .expand([6, 4]);
    let (got, want) = (
        vals(td.log_prob_n(ys.clone())),
        vals(ln.log_prob_n(ys.clone())),
    );
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= 1e-4 * w.abs().max(1.0),
            "transformed {g} against LogNormal {w}"
        );
    }
    let noise = t1(&[-2.0, 0.0, 0.5, 1.5], &d);
    let (a, b) = (
        vals(td.rsample_with_noise(noise.clone())),
        vals(ln.rsample_with_noise(noise)),
    );
    for (a, b) in a.iter().zip(&b) {
        assert!((a - b).abs() <= 1e-6 * b.abs(), "rsample {a} against {b}");
    }
    let q = Normal::new(loc.clone() * 0.5, 1.3);
    let kl_t = vals(kl_divergence(
        &td,
        &TransformedDistribution::new(q.clone(), Exp),
    ));
    let kl_ln = vals(kl_divergence(&ln, &LogNormal::new(loc * 0.5, 1.3)));
    for (a, b) in kl_t.iter().zip(&kl_ln) {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "KL {a} against {b}"
        );
    }
}

/// A bijector of event rank 1 for the tests: `exp` on each coordinate, the log-determinant
/// summed over the last dimension.
#[derive(Clone, Debug)]
struct ExpVector;

impl Bijector for ExpVector {
    const EVENT_RANK: usize = 1;
    const NAME: &'static str = "ExpVector";
    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        x.exp()
    }
    fn inverse<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        y.log()
    }
    fn forward_log_det_jacobian<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        x.sum_dim(D - 1)
    }
    fn detach(&self) -> Self {
        ExpVector
    }
    fn check_image<const D: usize>(&self, _: &Tensor<D>) -> Result<()> {
        Ok(())
    }
}

/// In `Independent`, around `Independent` (with an element-wise and an event-rank-1
/// bijector), and with the KL of `Independent` pairs: every form sums the same terms.
#[test]
fn composes_with_independent() {
    let d = device();
    let loc = Tensor::<2>::from_floats([[0.0, 0.5, -1.0], [1.0, 2.0, 0.3]], &d);
    let scale = Tensor::<2>::from_floats([[1.0, 0.5, 2.0], [0.7, 1.2, 0.9]], &d);
    let y = Tensor::<2>::from_floats([[0.5, 1.5, 0.1], [3.0, 0.9, 1.1]], &d);
    let each = vals(
        TransformedDistribution::new(Normal::new(loc.clone(), scale.clone()), Exp)
            .log_prob(y.clone()),
    );
    let want = [each[..3].iter().sum::<f64>(), each[3..].iter().sum::<f64>()];
    let outside: Independent<_, 1> = Independent::new(
        TransformedDistribution::new(Normal::new(loc.clone(), scale.clone()), Exp),
        1,
    );
    let inside = TransformedDistribution::new(
        Independent::<_, 1>::new(Normal::new(loc.clone(), scale.clone()), 1),
        Exp,
    );
    let vector = TransformedDistribution::new(
        Independent::<_, 1>::new(Normal::new(loc.clone(), scale.clone()), 1),
        ExpVector,
    );
    assert_eq!(vector.event_shape(), Shape::new([3]));
    for (name, got) in [
        (
            "Independent(Transformed)",
            vals(outside.log_prob(y.clone())),
        ),
        ("Transformed(Independent)", vals(inside.log_prob(y.clone()))),
        (
            "Transformed(Independent, ExpVector)",
            vals(vector.log_prob(y.clone())),
        ),
    ] {
        assert_eq!(got.len(), 2, "{name}");
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                "{name}: {g} against {w}"
            );
        }
    }
    let q = Independent::<_, 1>::new(Normal::standard([1, 3], &d), 1);
    let p = Independent::<_, 1>::new(Normal::new(loc, scale), 1);
    let base_kl = vals(kl_divergence(&p, &q));
    let kl = vals(kl_divergence(
        &TransformedDistribution::new(p, Sigmoid),
        &TransformedDistribution::new(q, Sigmoid),
    ));
    assert_eq!(kl, base_kl);
}

/// A flow posterior in the objectives: on the conjugate model `z ~ N(0, I)`,
/// `x | z ~ N(z, s² I)`, the exact posterior `N(x/(1 + s²), s²/(1 + s²))` written as an affine
/// map of a standard Normal makes the ELBO and the IWAE bound equal `ln p(x)` for every sample,
/// and the loss has finite gradients in the bijector's parameters.
#[test]
fn a_transformed_posterior_works_in_the_objectives() {
    const S: f64 = 0.5;
    let ad = device().autodiff();
    let rows = [[0.3, -1.2, 2.0], [1.5, 0.0, -0.4]];
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    let x = Tensor::<1>::from_floats(flat.as_slice(), &ad).reshape([2, 3]);
    let var = S * S / (1.0 + S * S);
    let shift = (x.clone() / (1.0 + S * S)).require_grad();
    let scale = (x.ones_like() * var.sqrt()).require_grad();
    let base = Independent::<_, 1>::new(Normal::standard([2, 3], &ad), 1);
    let q = TransformedDistribution::new(base, Affine::new(shift.clone(), scale.clone()));
    let prior = MultivariateNormalDiag::<2>::standard([1, 3], &ad);
    let likelihood =
        |z: Tensor<2>| Independent::<_, 1>::new(Normal::new(z.clone(), z.ones_like() * S), 1);
    let want: Vec<f64> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| {
                    let v2 = 1.0 + S * S;
                    -0.5 * v * v / v2 - 0.5 * (2.0 * std::f64::consts::PI * v2).ln()
                })
                .sum()
        })
        .collect();
    let elbo = Elbo::new()
        .num_samples(3)
        .monte_carlo_kl(&q, &prior, likelihood, x.clone());
    let iwae = Iwae::new(4).compute(&q, &prior, likelihood, x);
    for bound in [&elbo, &iwae] {
        for (g, w) in vals(bound.value.clone()).iter().zip(&want) {
            assert!(
                (g - w).abs() < 2e-4 * w.abs().max(1.0),
                "bound {g} against ln p(x) {w}"
            );
        }
    }
    let grads = elbo.loss.backward();
    all_finite("d loss/d shift", &vals(shift.grad(&grads).unwrap()));
    all_finite("d loss/d scale", &vals(scale.grad(&grads).unwrap()));
}

#[test]
fn errors_name_the_bijector_and_the_parameter() {
    let d = device();
    // A zero scale is found by validate, on the bijector and on the distribution.
    let zero = Affine::new(0.0, t1(&[1.0, 0.0], &d));
    match zero.validate() {
        Err(Error::InvalidParameter {
            distribution: "Affine",
            parameter: "scale",
            index: 1,
            ..
        }) => {}
        other => panic!("expected an InvalidParameter for Affine scale: {other:?}"),
    }
    let td = TransformedDistribution::new(Normal::standard([2], &d), zero);
    let err = td.validated().unwrap_err();
    assert!(
        err.to_string().contains("Affine") && err.to_string().contains("scale"),
        "{err}"
    );
    assert!(Affine::new(0.0, t1(&[-2.0], &d)).validated().is_ok());
    // Parameters that do not broadcast, or would enlarge the base's shape.
    assert!(matches!(
        Affine::try_new(t1(&[0.0, 1.0], &d), t1(&[1.0, 1.0, 1.0], &d)),
        Err(Error::ShapeMismatch {
            context: "Affine",
            ..
        })
    ));
    assert!(matches!(
        Affine::<1>::try_new(0.0, 1.0),
        Err(Error::InvalidArgument {
            context: "Affine",
            ..
        })
    ));
    let wide = Affine::new(0.0, Tensor::<1>::ones([4], &d));
    assert!(matches!(
        TransformedDistribution::try_new(Normal::standard([3], &d), wide.clone()),
        Err(Error::ShapeMismatch {
            context: "TransformedDistribution",
            ..
        })
    ));
    assert!(matches!(
        TransformedDistribution::try_new(Normal::standard([1], &d), wide),
        Err(Error::ShapeMismatch {
            context: "TransformedDistribution",
            ..
        })
    ));
    // A bijector of event rank 1 on a scalar base.
    match TransformedDistribution::try_new(Normal::standard([3], &d), ExpVector) {
        Err(Error::RankMismatch {
            context: "TransformedDistribution",
            actual: 1,
            ..
        }) => {}
        other => panic!("expected a RankMismatch: {other:?}"),
    }
    // Values outside the image.
    let s = TransformedDistribution::new(Normal::standard([2], &d), Sigmoid);
    assert!(s.check_support(&t1(&[0.5, 0.25], &d)).is_ok());
    match s.check_support(&t1(&[0.5, 1.5], &d)) {
        Err(Error::OutsideSupport {
            distribution: "Sigmoid",
            index: 1,
            ..
        }) => {}
        other => panic!("expected OutsideSupport from Sigmoid: {other:?}"),
    }
    let chain = TransformedDistribution::new(
        Normal::standard([1], &d),
        Tanh.then(Affine::<1>::from_scalars(1.0, 2.0, &d)),
    );
    assert!(chain.check_support(&t1(&[2.9], &d)).is_ok());
    assert!(chain.check_support(&t1(&[3.5], &d)).is_err());
}

/// Sampling goes through the bijector: draws of `Sigmoid(Normal)` lie in (0, 1), carry no
/// gradient from `sample`, and do from `rsample`.
#[test]
fn samples_are_pushed_forward() {
    let ad = device().autodiff();
    let loc = t1(&[0.0, 3.0], &ad).require_grad();
    let d = TransformedDistribution::new(Normal::new(loc.clone(), 1.0), Sigmoid);
    let draws: Tensor<2> = d.sample_n(1000);
    assert_eq!(draws.dims(), [1000, 2]);
    assert!(vals(draws).iter().all(|&v| v > 0.0 && v < 1.0));
    let grads = d.rsample_n(10).sum().backward();
    let g = vals(loc.grad(&grads).expect("rsample carries the gradient"));
    assert!(g.iter().all(|&v| v > 0.0), "{g:?}");
}
