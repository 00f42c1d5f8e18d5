//! Every kind of invalid input produces its typed error, and the message names the
//! distribution, the argument, and the offending value or shapes.

use burn::tensor::{Device, Tensor};
use burn_probability::objectives::{Elbo, Iwae};
use burn_probability::prelude::*;
use burn_probability::{Error, try_kl_divergence, try_kl_monte_carlo};

fn t1(xs: &[f32]) -> Tensor<1> {
    Tensor::from_floats(xs, &Device::flex())
}

fn assert_mentions(err: Error, words: &[&str]) {
    let msg = err.to_string();
    for w in words {
        assert!(
            msg.contains(w),
            "error message {msg:?} should mention {w:?}"
        );
    }
}

#[test]
fn invalid_parameter_values_are_named_by_validate() {
    let cases: Vec<(Error, Vec<&str>)> = vec![
        (
            Normal::new(t1(&[0.0, 1.0]), t1(&[1.0, 0.0]))
                .validated()
                .unwrap_err(),
            vec!["Normal", "scale", "> 0", "element 1", "0"],
        ),
        (
            Normal::new(t1(&[f32::INFINITY]), t1(&[1.0]))
                .validated()
                .unwrap_err(),
            vec!["Normal", "loc", "finite", "inf"],
        ),
        (
            Normal::new(t1(&[0.0]), t1(&[f32::NAN]))
                .validated()
                .unwrap_err(),
            vec!["Normal", "scale", "NaN"],
        ),
        (
            Logistic::new(t1(&[0.0]), t1(&[-2.0]))
                .validated()
                .unwrap_err(),
            vec!["Logistic", "scale", "-2"],
        ),
        (
            Logistic::new(t1(&[f32::NAN]), t1(&[1.0]))
                .validated()
                .unwrap_err(),
            vec!["Logistic", "loc", "NaN"],
        ),
        (
            Bernoulli::new(t1(&[0.0, f32::NAN]))
                .validated()
                .unwrap_err(),
            vec!["Bernoulli", "logits", "element 1", "NaN"],
        ),
        (
            BinConcrete::new(0.5, t1(&[f32::NAN]))
                .validated()
                .unwrap_err(),
            vec!["BinConcrete", "logits", "NaN"],
        ),
        (
            BinConcrete::try_new(0.0, t1(&[0.0])).unwrap_err(),
            vec!["BinConcrete", "temperature", "> 0", "0"],
        ),
        (
            BinConcrete::try_new(-1.5, t1(&[0.0])).unwrap_err(),
            vec!["temperature", "-1.5"],
        ),
        (
            MultivariateNormalDiag::<1>::new(t1(&[0.0, 0.0]), t1(&[1.0, -1.0]))
                .validated()
                .unwrap_err(),
            vec!["MultivariateNormalDiag", "scale_diag", "-1"],
        ),
        (
            MultivariateNormalDiag::<1>::new(t1(&[f32::NAN]), t1(&[1.0]))
                .validated()
                .unwrap_err(),
            vec!["MultivariateNormalDiag", "loc", "NaN"],
        ),
        (
            Independent::<Normal<1>, 0>::new(Normal::new(t1(&[0.0]), t1(&[-3.0])), 1)
                .validate()
                .unwrap_err(),
            vec!["Normal", "scale", "-3"],
        ),
    ];
    for (err, words) in cases {
        assert_mentions(err, &words);
    }
    // Valid parameters pass.
    assert!(Normal::new(t1(&[0.0]), t1(&[1e-30])).validated().is_ok());
    assert!(Bernoulli::from_probs(t1(&[0.0, 1.0])).validated().is_ok());
}

#[test]
fn values_outside_the_support_are_reported() {
    let b = Bernoulli::new(t1(&[0.0, 0.0]));
    assert_mentions(
        b.check_support(&t1(&[0.0, 2.0])).unwrap_err(),
        &["Bernoulli", "{0, 1}", "element 1", "2"],
    );
    assert!(b.check_support(&t1(&[0.0, 1.0])).is_ok());
    let bc = BinConcrete::new(0.5, t1(&[0.0]));
    assert_mentions(
        bc.check_support(&t1(&[1.0])).unwrap_err(),
        &["BinConcrete", "(0, 1)", "1"],
    );
    assert_mentions(
        bc.check_support(&t1(&[0.0])).unwrap_err(),
        &["BinConcrete", "0"],
    );
    let n = Normal::new(t1(&[0.0]), t1(&[1.0]));
    assert_mentions(
        n.check_support(&t1(&[f32::NAN])).unwrap_err(),
        &["Normal", "NaN"],
    );
    let l = Logistic::new(t1(&[0.0]), t1(&[1.0]));
    assert_mentions(
        l.check_support(&t1(&[f32::NAN])).unwrap_err(),
        &["Logistic", "NaN"],
    );
}

#[test]
fn shape_mismatches_name_both_shapes() {
    let d = Device::flex();
    let z = |s: [usize; 2]| Tensor::<2>::zeros(s, &d);
    assert_mentions(
        Normal::try_new(z([3, 2]), z([2, 2])).unwrap_err(),
        &["Normal", "loc", "[3, 2]", "scale", "[2, 2]"],
    );
    assert_mentions(
        Logistic::try_new(z([3, 2]), z([3, 4])).unwrap_err(),
        &["Logistic", "[3, 2]", "[3, 4]"],
    );
    let mvn = MultivariateNormalDiag::<2>::try_new(z([3, 2]), z([3, 5]));
    assert_mentions(
        mvn.unwrap_err(),
        &["MultivariateNormalDiag", "loc", "scale_diag", "[3, 5]"],
    );
    // log_prob on a value of the wrong shape.
    let n = Normal::new(z([3, 2]), z([3, 2]) + 1.0);
    assert_mentions(
        n.try_log_prob(z([4, 2])).unwrap_err(),
        &["Normal", "value", "[4, 2]", "[3, 2]"],
    );
    let ind: Independent<Normal<2>, 1> = Independent::new(n.clone(), 1);
    assert_mentions(
        ind.try_log_prob(z([3, 7])).unwrap_err(),
        &["Independent", "[3, 7]", "event_shape [2]"],
    );
    // log_prob_n with a value of too small a rank, or a wrong output rank.
    assert_mentions(
        ind.try_log_prob_with_shape::<2, 2>(z([3, 2])).unwrap_err(),
        &["log_prob output", "expected 1"],
    );
    // KL between distributions of incompatible shapes.
    let other = Normal::new(z([5, 2]), z([5, 2]) + 1.0);
    assert_mentions(
        try_kl_divergence(&n, &other).unwrap_err(),
        &["kl_divergence", "[3, 2]", "[5, 2]"],
    );
    assert_mentions(
        try_kl_monte_carlo(&n, &other, 10).unwrap_err(),
        &["kl_monte_carlo", "[5, 2]"],
    );
    assert_mentions(
        try_kl_monte_carlo(&n, &n, 1).unwrap_err(),
        &["num_samples", "at least 2", "1"],
    );
}

#[test]
fn rank_mismatches_are_typed() {
    let d = Device::flex();
    let base = Normal::new(
        Tensor::<3>::zeros([2, 3, 4], &d),
        Tensor::<3>::ones([2, 3, 4], &d),
    );
    assert_mentions(
        Independent::<Normal<3>, 0>::try_new(base.clone(), 4).unwrap_err(),
        &[
            "Independent",
            "reinterpreted_batch_ndims",
            "at most",
            "3",
            "4",
        ],
    );
    assert_mentions(
        Independent::<Normal<3>, 2>::try_new(base, 2).unwrap_err(),
        &["batch rank", "expected 1", "got 2"],
    );
}

#[test]
#[should_panic(expected = "Normal: shapes do not broadcast: `value` has shape [4, 2]")]
fn log_prob_panics_with_the_same_clear_message() {
    let d = Device::flex();
    let n = Normal::new(
        Tensor::<2>::zeros([3, 2], &d),
        Tensor::<2>::ones([3, 2], &d),
    );
    let _ = n.log_prob(Tensor::<2>::zeros([4, 2], &d));
}

/// MNIST images in Keras' layout, `[B, 28, 28, 1]`, against a likelihood whose event is
/// `[1, 28, 28]` (NCHW): the event dimensions must not broadcast into 28 × 28 × 28 terms.
fn nchw_likelihood(rows: usize, device: &Device) -> Independent<Bernoulli<4>, 1> {
    let logits = Tensor::<4>::zeros([rows, 1, 28, 28], device);
    Independent::new(Bernoulli::new(logits), 3)
}

#[test]
fn a_wrong_event_shape_is_an_error_not_a_broadcast() {
    let d = Device::flex();
    let px = nchw_likelihood(2, &d);
    assert_eq!(px.event_shape().to_vec(), vec![1, 28, 28]);
    let nhwc = Tensor::<4>::zeros([2, 28, 28, 1], &d);
    let err = px.try_log_prob(nhwc).unwrap_err();
    assert!(matches!(err, Error::EventShapeMismatch { .. }), "{err}");
    assert_mentions(
        err,
        &["Independent", "[2, 28, 28, 1]", "[1, 28, 28]", "event"],
    );
    // With sample dimensions in front, too.
    let samples = Tensor::<5>::zeros([3, 2, 28, 28, 1], &d);
    assert_mentions(
        px.try_log_prob_with_shape::<5, 2>(samples).unwrap_err(),
        &["[3, 2, 28, 28, 1]", "[1, 28, 28]"],
    );
    // The right layout works, and batch and sample dimensions still broadcast.
    let ok = px
        .try_log_prob(Tensor::<4>::zeros([1, 1, 28, 28], &d))
        .unwrap();
    assert_eq!(ok.dims(), [2]);
    let ok: Tensor<2> = px
        .try_log_prob_n(Tensor::<5>::zeros([3, 1, 1, 28, 28], &d))
        .unwrap();
    assert_eq!(ok.dims(), [3, 2]);
    // A vector event of size 1 does not broadcast either.
    let mvn = MultivariateNormalDiag::<2>::new(Tensor::zeros([4, 3], &d), Tensor::ones([4, 3], &d));
    assert_mentions(
        mvn.try_log_prob(Tensor::zeros([4, 1], &d)).unwrap_err(),
        &["MultivariateNormalDiag", "[4, 1]", "event_shape [3]"],
    );
    // KL divergences between distributions of different event shapes.
    let one = MultivariateNormalDiag::<2>::standard([1, 1], &d);
    assert_mentions(
        try_kl_divergence(&mvn, &one).unwrap_err(),
        &["kl_divergence", "`q`", "[1, 1]", "event_shape [3]"],
    );
    assert_mentions(
        try_kl_monte_carlo(&mvn, &one, 10).unwrap_err(),
        &["kl_monte_carlo", "`q`", "[1, 1]", "event_shape [3]"],
    );
    // A prior with a batch of 1 still broadcasts against the posterior's batch.
    let prior = MultivariateNormalDiag::<2>::standard([1, 3], &d);
    assert_eq!(kl_divergence(&mvn, &prior).dims(), [4]);
}

/// A posterior and prior over 2-D latents for `rows` images, and a decoder to NCHW logits.
#[allow(clippy::type_complexity)]
fn image_model(
    rows: usize,
    d: &Device,
) -> (
    MultivariateNormalDiag<2>,
    MultivariateNormalDiag<2>,
    impl Fn(Tensor<2>) -> Independent<Bernoulli<4>, 1>,
) {
    let q =
        MultivariateNormalDiag::<2>::new(Tensor::zeros([rows, 2], d), Tensor::ones([rows, 2], d));
    let prior = MultivariateNormalDiag::<2>::standard([1, 2], d);
    let device = d.clone();
    let decoder = move |z: Tensor<2>| nchw_likelihood(z.dims()[0], &device);
    (q, prior, decoder)
}

#[test]
#[should_panic(expected = "`value` has shape [2, 28, 28, 1], whose last 3 dimensions")]
fn the_elbo_refuses_data_of_another_event_shape() {
    let d = Device::flex();
    let (q, prior, decoder) = image_model(2, &d);
    let nhwc = Tensor::<4>::zeros([2, 28, 28, 1], &d);
    let _ = Elbo::new().analytic_kl(&q, &prior, decoder, nhwc);
}

#[test]
#[should_panic(expected = "`value` has shape [6, 28, 28, 1], whose last 3 dimensions")]
fn the_iwae_bound_refuses_data_of_another_event_shape() {
    let d = Device::flex();
    let (q, prior, decoder) = image_model(2, &d);
    let nhwc = Tensor::<4>::zeros([2, 28, 28, 1], &d);
    let _ = Iwae::new(3).compute(&q, &prior, decoder, nhwc);
}

/// The families of the families issue: a named error for a bad parameter or an impossible
/// value, with the value in the message.
#[test]
fn the_eleven_families_name_bad_parameters_and_values() {
    let cases: Vec<(Error, Vec<&str>)> = vec![
        (
            Poisson::new(t1(&[2.0]))
                .check_support(&t1(&[2.5]))
                .unwrap_err(),
            vec!["Poisson", "counts", "2.5"],
        ),
        (
            Poisson::new(t1(&[1.0, -0.5])).validated().unwrap_err(),
            vec!["Poisson", "rate", "≥ 0", "-0.5"],
        ),
        (
            Exponential::new(t1(&[-1.0])).validated().unwrap_err(),
            vec!["Exponential", "rate", "-1"],
        ),
        (
            Uniform::new(t1(&[0.0]), t1(&[1.0]))
                .check_support(&t1(&[1.0]))
                .unwrap_err(),
            vec!["Uniform", "[low, high)", "1"],
        ),
        (
            Uniform::new(t1(&[0.0]), t1(&[1.0]))
                .check_support(&t1(&[-0.25]))
                .unwrap_err(),
            vec!["Uniform", "-0.25"],
        ),
        (
            Uniform::new(t1(&[2.0]), t1(&[1.0]))
                .validated()
                .unwrap_err(),
            vec!["Uniform", "high", "low"],
        ),
        (
            Binomial::new(t1(&[4.5]), 0.0).validated().unwrap_err(),
            vec!["Binomial", "total_count", "whole number", "4.5"],
        ),
        (
            Binomial::new(t1(&[4.0]), 0.0)
                .check_support(&t1(&[5.0]))
                .unwrap_err(),
            vec!["Binomial", "total_count", "5"],
        ),
        (
            Geometric::new(t1(&[0.0]))
                .check_support(&t1(&[-1.0]))
                .unwrap_err(),
            vec!["Geometric", "counts", "-1"],
        ),
        (
            StudentT::new(t1(&[0.0]), 0.0, 1.0).validated().unwrap_err(),
            vec!["StudentT", "df", "> 0"],
        ),
        (
            HalfNormal::new(t1(&[1.0]))
                .check_support(&t1(&[-0.1]))
                .unwrap_err(),
            vec!["HalfNormal", "-0.1"],
        ),
        (
            LogNormal::new(t1(&[0.0]), t1(&[1.0]))
                .check_support(&t1(&[0.0]))
                .unwrap_err(),
            vec!["LogNormal", "0"],
        ),
        (
            ContinuousBernoulli::new(t1(&[0.3]))
                .check_support(&t1(&[1.5]))
                .unwrap_err(),
            vec!["ContinuousBernoulli", "[0, 1]", "1.5"],
        ),
        (
            Laplace::new(t1(&[0.0]), t1(&[0.0]))
                .validated()
                .unwrap_err(),
            vec!["Laplace", "scale", "> 0"],
        ),
        (
            Cauchy::new(t1(&[0.0]), t1(&[-2.0]))
                .validated()
                .unwrap_err(),
            vec!["Cauchy", "scale", "-2"],
        ),
    ];
    for (err, words) in cases {
        assert_mentions(err, &words);
    }
}
