//! Checks every case of the scipy/mpmath reference files (float64 references, float32 code).
//!
//! The files are copies of the shared golden files in `tests/data/`: `reference_values.json`
//! (the first six families), `categorical.json` (the categorical family and Gumbel),
//! `families.json` (the eleven further families), `gamma.json` (Gamma, Beta, Dirichlet, their
//! implicit gradients, lgamma and digamma) and `transforms.json` (bijectors, transformed
//! Normals, full-covariance and low-rank Gaussians, mixtures). The checker knows the case
//! kinds of all five; `reference_values` checks the file named by `BURN_PROBABILITY_GOLDEN`
//! instead of its copy when that is set, the other four tests always check their copies. Tolerances (see `tests/data/REFERENCE_VALUES.md`): relative 1e-4 or
//! absolute 1e-5 (the file's `tolerance`); relative 1e-3 for `tail`/`boundary` cases; Monte
//! Carlo KL within 4 standard errors of the quadrature value for pairs without a closed form;
//! vector results element by element. A case kind this test does not know fails the test.
//!
//! The cases run on the device named by `BURN_PROBABILITY_TEST_DEVICE` (`flex` by default,
//! `ndarray`, or `wgpu`; see `common::test_device`).

use burn::tensor::{Device, Tensor};
use burn_probability::prelude::*;
use serde_json::Value;

mod common;
use common::any_bijector::build as bijector_list;

/// The device of every case: `BURN_PROBABILITY_TEST_DEVICE` (flex by default).
fn device() -> Device {
    common::test_device()
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("parameter `{key}` missing or not a number in {v}"))
}

fn vec_of(v: &Value, key: &str) -> Vec<f32> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("parameter `{key}` missing or not an array in {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A `[1]` tensor holding one parameter.
fn s(x: f64) -> Tensor<1> {
    Tensor::from_floats([x as f32], &device())
}

/// A `[1, K]` tensor holding an event-shaped parameter.
fn row(xs: &[f32]) -> Tensor<2> {
    Tensor::<1>::from_floats(xs, &device()).reshape([1, xs.len()])
}

fn scalar<const D: usize>(t: Tensor<D>) -> f64 {
    let v: Vec<f64> = t.into_data().iter::<f64>().collect();
    assert_eq!(v.len(), 1, "expected one value, got {v:?}");
    v[0]
}

fn normal(p: &Value) -> Normal<1> {
    Normal::new(s(num(p, "loc")), s(num(p, "scale")))
}
fn logistic(p: &Value) -> Logistic<1> {
    Logistic::new(s(num(p, "loc")), s(num(p, "scale")))
}
fn bernoulli(p: &Value) -> Bernoulli<1> {
    Bernoulli::new(s(num(p, "logits")))
}
fn bin_concrete(p: &Value) -> BinConcrete<1> {
    BinConcrete::new(num(p, "temperature"), s(num(p, "logits")))
}
fn mvn(p: &Value) -> MultivariateNormalDiag<2> {
    MultivariateNormalDiag::new(row(&vec_of(p, "loc")), row(&vec_of(p, "scale_diag")))
}
fn gumbel(p: &Value) -> Gumbel<1> {
    Gumbel::new(s(num(p, "loc")), s(num(p, "scale")))
}
fn categorical(p: &Value) -> Categorical<2> {
    Categorical::new(row(&vec_of(p, "logits")))
}
fn one_hot(p: &Value) -> OneHotCategorical<2> {
    OneHotCategorical::new(row(&vec_of(p, "logits")))
}

fn laplace(p: &Value) -> Laplace<1> {
    Laplace::new(s(num(p, "loc")), s(num(p, "scale")))
}
fn log_normal(p: &Value) -> LogNormal<1> {
    LogNormal::new(s(num(p, "loc")), s(num(p, "scale")))
}
fn student_t(p: &Value) -> StudentT<1> {
    StudentT::new(s(num(p, "df")), s(num(p, "loc")), s(num(p, "scale")))
}
fn cauchy(p: &Value) -> Cauchy<1> {
    Cauchy::new(s(num(p, "loc")), s(num(p, "scale")))
}
fn exponential(p: &Value) -> Exponential<1> {
    Exponential::new(s(num(p, "rate")))
}
fn uniform(p: &Value) -> Uniform<1> {
    Uniform::new(s(num(p, "low")), s(num(p, "high")))
}
fn half_normal(p: &Value) -> HalfNormal<1> {
    HalfNormal::new(s(num(p, "scale")))
}
fn continuous_bernoulli(p: &Value) -> ContinuousBernoulli<1> {
    ContinuousBernoulli::new(s(num(p, "logits")))
}
fn poisson(p: &Value) -> Poisson<1> {
    Poisson::new(s(num(p, "rate")))
}
fn binomial(p: &Value) -> Binomial<1> {
    Binomial::new(s(num(p, "total_count")), s(num(p, "logits")))
}
fn geometric(p: &Value) -> Geometric<1> {
    Geometric::new(s(num(p, "logits")))
}

fn gamma(p: &Value) -> Gamma<1> {
    Gamma::new(s(num(p, "concentration")), s(num(p, "rate")))
}
fn beta(p: &Value) -> Beta<1> {
    Beta::new(s(num(p, "concentration1")), s(num(p, "concentration0")))
}
fn dirichlet(p: &Value) -> Dirichlet<2> {
    Dirichlet::new(row(&vec_of(p, "concentration")))
}

/// The implicit reparameterization gradient at a given sample: the distribution is built from
/// parameters tracked on the autodiff version of the device, the sample `value` goes through
/// `rsample_with_noise` (for Gamma the noise is the `Gamma(α, 1)` variate itself, for Beta the
/// sample), and the gradients of the result with respect to the parameters are read back.
fn rsample_grad(dist: &str, p: &Value, value: f64) -> Option<Vec<f64>> {
    let ad = device().autodiff();
    let tracked = |x: f64| Tensor::<1>::from_floats([x as f32], &ad).require_grad();
    let z = Tensor::<1>::from_floats([value as f32], &ad);
    let grad = |t: &Tensor<1>, g: &burn::tensor::Gradients| scalar(t.grad(g).expect("a gradient"));
    match dist {
        "Gamma" => {
            let alpha = tracked(num(p, "concentration"));
            let d = Gamma::new(alpha.clone(), tracked(num(p, "rate")));
            let g = d.rsample_with_noise(z).backward();
            Some(vec![grad(&alpha, &g)])
        }
        "Beta" => {
            let (a, b) = (
                tracked(num(p, "concentration1")),
                tracked(num(p, "concentration0")),
            );
            let x = Beta::new(a.clone(), b.clone()).rsample_with_noise(z);
            let g = x.backward();
            Some(vec![grad(&a, &g), grad(&b, &g)])
        }
        _ => None,
    }
}

/// A `[1, rows, cols]` tensor from a matrix given as a list of rows.
fn matrix(v: &Value, key: &str) -> Tensor<3> {
    let rows: Vec<Vec<f32>> = v[key]
        .as_array()
        .unwrap_or_else(|| panic!("parameter `{key}` missing or not a matrix in {v}"))
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    let (n, m) = (rows.len(), rows[0].len());
    Tensor::<1>::from_floats(rows.concat().as_slice(), &device()).reshape([1, n, m])
}
fn tril(p: &Value) -> MultivariateNormalTriL<2> {
    MultivariateNormalTriL::new(row(&vec_of(p, "loc")), matrix(p, "scale_tril"))
}
fn low_rank(p: &Value) -> LowRankMultivariateNormal<2> {
    LowRankMultivariateNormal::new(
        row(&vec_of(p, "loc")),
        matrix(p, "cov_factor"),
        row(&vec_of(p, "cov_diag")),
    )
}
/// A batch of one mixture: the weights' logits `[1, M]`.
fn mixture_weights(p: &Value) -> Categorical<2> {
    Categorical::new(row(&vec_of(&p["mixture_distribution"], "logits")))
}

fn vector<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// What a case computes: an exact value, or a Monte Carlo estimate with its standard error.
enum Computed {
    Exact(f64),
    Vector(Vec<f64>),
    /// An implicit reparameterization gradient: relative tolerance only (`rsample_grad_rel`).
    Gradient(Vec<f64>),
    MonteCarlo {
        estimate: f64,
        std_error: f64,
    },
}

/// Evaluates the univariate methods shared by Normal and Logistic.
fn univariate<Dist>(d: &Dist, method: &str, value: &Value) -> Option<f64>
where
    Dist: Distribution<1, Batch = Tensor<1>> + Entropy<1> + Moments<1> + Cdf<1>,
{
    Some(match method {
        "log_prob" => scalar(d.log_prob(s(value.as_f64()?))),
        "cdf" => scalar(d.cdf(s(value.as_f64()?))),
        "icdf" => scalar(d.icdf(s(value.as_f64()?))),
        "entropy" => scalar(d.entropy()),
        "mean" => scalar(d.mean()),
        "variance" => scalar(d.variance()),
        _ => return None,
    })
}

/// Evaluates the methods of the families whose `cdf` is an inherent method (Poisson, Binomial,
/// Gamma, Beta) or the trait's (Geometric), and whose entropy may be absent (Poisson).
fn counts<Dist>(
    d: &Dist,
    cdf: impl Fn(Tensor<1>) -> Tensor<1>,
    entropy: impl Fn() -> Option<f64>,
    method: &str,
    value: &Value,
) -> Option<f64>
where
    Dist: Distribution<1, Batch = Tensor<1>> + Moments<1>,
{
    Some(match method {
        "log_prob" => scalar(d.log_prob(s(value.as_f64()?))),
        "cdf" => scalar(cdf(s(value.as_f64()?))),
        "mean" => scalar(d.mean()),
        "variance" => scalar(d.variance()),
        "entropy" => entropy()?,
        _ => return None,
    })
}

const MC_SAMPLES: usize = 400_000;

fn mc<P, Q>(p: &P, q: &Q) -> Computed
where
    P: Rsample<1, Batch = Tensor<1>> + MonteCarloKl<Q, 1, 1>,
    Q: Distribution<1>,
{
    let kl = kl_monte_carlo(p, q, MC_SAMPLES);
    Computed::MonteCarlo {
        estimate: scalar(kl.estimate),
        std_error: scalar(kl.std_error),
    }
}

fn compute(case: &Value) -> Result<Computed, String> {
    let dist = case["dist"].as_str().ok_or("case without `dist`")?;
    let method = case["method"].as_str().ok_or("case without `method`")?;
    let p = &case["params"];
    let value = &case["value"];
    let unknown = || format!("unknown case kind: dist `{dist}`, method `{method}`");
    let exact = |v: Option<f64>| v.map(Computed::Exact).ok_or_else(unknown);
    match dist {
        "Normal" => exact(univariate(&normal(p), method, value)),
        "Logistic" => exact(univariate(&logistic(p), method, value)),
        "Bernoulli" => {
            let d = bernoulli(p);
            exact(match method {
                "log_prob" => value.as_f64().map(|x| scalar(d.log_prob(s(x)))),
                "entropy" => Some(scalar(d.entropy())),
                "mean" => Some(scalar(d.mean())),
                "variance" => Some(scalar(d.variance())),
                _ => None,
            })
        }
        "BinConcrete" => {
            let d = bin_concrete(p);
            exact(match method {
                "log_prob" => value.as_f64().map(|x| scalar(d.log_prob(s(x)))),
                _ => None,
            })
        }
        "MultivariateNormalDiag" => {
            let d = mvn(p);
            exact(match method {
                "log_prob" => value
                    .as_array()
                    .map(|_| scalar(d.log_prob(row(&vec_of(case, "value"))))),
                "entropy" => Some(scalar(d.entropy())),
                _ => None,
            })
        }
        "Gumbel" => exact(univariate(&gumbel(p), method, value)),
        "Laplace" => exact(univariate(&laplace(p), method, value)),
        "LogNormal" => exact(univariate(&log_normal(p), method, value)),
        "StudentT" => exact(univariate(&student_t(p), method, value)),
        "Exponential" => exact(univariate(&exponential(p), method, value)),
        "Uniform" => exact(univariate(&uniform(p), method, value)),
        "HalfNormal" => exact(univariate(&half_normal(p), method, value)),
        "ContinuousBernoulli" => exact(univariate(&continuous_bernoulli(p), method, value)),
        "Cauchy" => {
            let d = cauchy(p);
            exact(match method {
                "log_prob" => value.as_f64().map(|x| scalar(d.log_prob(s(x)))),
                "cdf" => value.as_f64().map(|x| scalar(d.cdf(s(x)))),
                "icdf" => value.as_f64().map(|x| scalar(d.icdf(s(x)))),
                "entropy" => Some(scalar(d.entropy())),
                _ => None,
            })
        }
        "Poisson" => {
            let d = poisson(p);
            exact(counts(&d, |x| d.cdf(x), || None, method, value))
        }
        "Binomial" => {
            let d = binomial(p);
            exact(counts(
                &d,
                |x| d.cdf(x),
                || Some(scalar(d.entropy())),
                method,
                value,
            ))
        }
        "Geometric" => {
            let d = geometric(p);
            exact(counts(
                &d,
                |x| d.cdf(x),
                || Some(scalar(d.entropy())),
                method,
                value,
            ))
        }
        "Categorical" => {
            let d = categorical(p);
            exact(match method {
                "log_prob" => value.as_f64().map(|k| scalar(d.log_prob(s(k)))),
                "entropy" => Some(scalar(d.entropy())),
                _ => None,
            })
        }
        "OneHotCategorical" => {
            let d = one_hot(p);
            match method {
                "log_prob" => Ok(Computed::Exact(scalar(
                    d.log_prob(row(&vec_of(case, "value"))),
                ))),
                "entropy" => Ok(Computed::Exact(scalar(d.entropy()))),
                "mean" => Ok(Computed::Vector(vector(d.mean()))),
                "variance" => Ok(Computed::Vector(vector(d.variance()))),
                _ => Err(unknown()),
            }
        }
        "RelaxedOneHotCategorical" => {
            let d = RelaxedOneHotCategorical::new(num(p, "temperature"), row(&vec_of(p, "logits")));
            exact(match method {
                "log_prob" => Some(scalar(d.log_prob(row(&vec_of(case, "value"))))),
                _ => None,
            })
        }
        "ExpRelaxedOneHotCategorical" => {
            let d =
                ExpRelaxedOneHotCategorical::new(num(p, "temperature"), row(&vec_of(p, "logits")));
            exact(match method {
                "log_prob" => Some(scalar(d.log_prob(row(&vec_of(case, "value"))))),
                _ => None,
            })
        }
        "Independent(Normal,1)" => {
            let base = Normal::new(row(&vec_of(p, "loc")), row(&vec_of(p, "scale")));
            let d: Independent<Normal<2>, 1> = Independent::new(base, 1);
            exact(match method {
                "log_prob" => Some(scalar(d.log_prob(row(&vec_of(case, "value"))))),
                "entropy" => Some(scalar(d.entropy())),
                _ => None,
            })
        }
        "Independent(Bernoulli,1)" => {
            let d: Independent<Bernoulli<2>, 1> =
                Independent::new(Bernoulli::new(row(&vec_of(p, "logits"))), 1);
            exact(match method {
                "log_prob" => Some(scalar(d.log_prob(row(&vec_of(case, "value"))))),
                "entropy" => Some(scalar(d.entropy())),
                _ => None,
            })
        }
        "math" => {
            let x = value.as_f64().ok_or("math case without a numeric value")?;
            exact(match method {
                "lgamma" => Some(scalar(burn_probability::math::lgamma(s(x)))),
                "digamma" => Some(scalar(burn_probability::math::digamma(s(x)))),
                _ => None,
            })
        }
        "Gamma" | "Beta" if method == "rsample_grad" => {
            let z = value.as_f64().ok_or("rsample_grad case without a sample")?;
            rsample_grad(dist, p, z)
                .map(Computed::Gradient)
                .ok_or_else(unknown)
        }
        "Gamma" => {
            let d = gamma(p);
            exact(counts(
                &d,
                |x| d.cdf(x),
                || Some(scalar(d.entropy())),
                method,
                value,
            ))
        }
        "Beta" => {
            let d = beta(p);
            exact(counts(
                &d,
                |x| d.cdf(x),
                || Some(scalar(d.entropy())),
                method,
                value,
            ))
        }
        "Dirichlet" => {
            let d = dirichlet(p);
            match method {
                "log_prob" => Ok(Computed::Exact(scalar(
                    d.log_prob(row(&vec_of(case, "value"))),
                ))),
                "entropy" => Ok(Computed::Exact(scalar(d.entropy()))),
                "mean" => Ok(Computed::Vector(vector(d.mean()))),
                "variance" => Ok(Computed::Vector(vector(d.variance()))),
                _ => Err(unknown()),
            }
        }
        "TransformedDistribution(Normal)" => {
            let base = Normal::new(s(num(&p["base"], "loc")), s(num(&p["base"], "scale")));
            let d = TransformedDistribution::new(base, bijector_list(&p["transforms"], &device()));
            exact(match method {
                "log_prob" => value.as_f64().map(|x| scalar(d.log_prob(s(x)))),
                _ => None,
            })
        }
        "bijector" => {
            let b = bijector_list(&p["transforms"], &device());
            exact(match method {
                "forward_log_det_jacobian" => value
                    .as_f64()
                    .map(|x| scalar(b.forward_log_det_jacobian(s(x)))),
                _ => None,
            })
        }
        "MultivariateNormalTriL" => {
            let d = tril(p);
            exact(match method {
                "log_prob" => Some(scalar(d.log_prob(row(&vec_of(case, "value"))))),
                "entropy" => Some(scalar(d.entropy())),
                _ => None,
            })
        }
        "LowRankMultivariateNormal" => {
            let d = low_rank(p);
            exact(match method {
                "log_prob" => Some(scalar(d.log_prob(row(&vec_of(case, "value"))))),
                "entropy" => Some(scalar(d.entropy())),
                _ => None,
            })
        }
        "MixtureSameFamily(Normal)" => {
            let c = &p["component_distribution"];
            let components = Normal::new(row(&vec_of(c, "loc")), row(&vec_of(c, "scale")));
            let d = MixtureSameFamily::<_, 1>::new(mixture_weights(p), components);
            exact(match method {
                "log_prob" => value.as_f64().map(|x| scalar(d.log_prob(s(x)))),
                "cdf" => value.as_f64().map(|x| scalar(d.cdf(s(x)))),
                "mean" => Some(scalar(d.mean())),
                "variance" => Some(scalar(d.variance())),
                _ => None,
            })
        }
        "MixtureSameFamily(MultivariateNormalDiag)" => {
            let c = &p["component_distribution"];
            let components = MultivariateNormalDiag::new(matrix(c, "loc"), matrix(c, "scale_diag"));
            let d = MixtureSameFamily::<_, 2>::new(mixture_weights(p), components);
            exact(match method {
                "log_prob" => Some(scalar(d.log_prob(row(&vec_of(case, "value"))))),
                _ => None,
            })
        }
        _ if method == "kl" => {
            let (pp, qp) = (&p["p"], &p["q"]);
            // The closed-form KL of the pair built from the case's `p` and `q` parameters.
            macro_rules! closed {
                ($p:ident, $q:ident) => {
                    Ok(Computed::Exact(scalar(kl_divergence(&$p(pp), &$q(qp)))))
                };
            }
            match dist {
                "KL(Normal||Normal)" => closed!(normal, normal),
                "KL(MultivariateNormalDiag||MultivariateNormalDiag)" => closed!(mvn, mvn),
                "KL(Bernoulli||Bernoulli)" => closed!(bernoulli, bernoulli),
                "KL(Gumbel||Gumbel)" => closed!(gumbel, gumbel),
                "KL(Categorical||Categorical)" => closed!(categorical, categorical),
                "KL(OneHotCategorical||OneHotCategorical)" => closed!(one_hot, one_hot),
                "KL(Laplace||Laplace)" => closed!(laplace, laplace),
                "KL(LogNormal||LogNormal)" => closed!(log_normal, log_normal),
                "KL(Exponential||Exponential)" => closed!(exponential, exponential),
                "KL(Uniform||Uniform)" => closed!(uniform, uniform),
                "KL(HalfNormal||HalfNormal)" => closed!(half_normal, half_normal),
                "KL(Poisson||Poisson)" => closed!(poisson, poisson),
                "KL(ContinuousBernoulli||ContinuousBernoulli)" => {
                    closed!(continuous_bernoulli, continuous_bernoulli)
                }
                "KL(Normal||Laplace)" => closed!(normal, laplace),
                "KL(Gamma||Gamma)" => closed!(gamma, gamma),
                "KL(Beta||Beta)" => closed!(beta, beta),
                "KL(Dirichlet||Dirichlet)" => closed!(dirichlet, dirichlet),
                "KL(MultivariateNormalTriL||MultivariateNormalTriL)" => closed!(tril, tril),
                "KL(Logistic||Logistic)" => Ok(mc(&logistic(pp), &logistic(qp))),
                "KL(BinConcrete||BinConcrete)" => Ok(mc(
                    &bin_concrete(pp).logit_space(),
                    &bin_concrete(qp).logit_space(),
                )),
                _ => Err(unknown()),
            }
        }
        _ => Err(unknown()),
    }
}

/// Checks every case of the file at `path`; returns the number of cases or the failures.
/// burn's random generator is process-global: the two tests of this file take turns.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn check_file(path: &str) -> Result<usize, Vec<String>> {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let file: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"));
    let cases = file["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{path} has no `cases` array"));
    let rel = file["tolerance"]["rel"].as_f64().unwrap_or(1e-4);
    let abs = file["tolerance"]["abs"].as_f64().unwrap_or(1e-5);
    let grad_rel = file["tolerance"]["rsample_grad_rel"]
        .as_f64()
        .unwrap_or(1e-3);
    device().seed(20261121);

    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let expected: Vec<f64> = match &case["expected"] {
            Value::Number(n) => vec![n.as_f64().unwrap_or(f64::NAN)],
            Value::Array(xs) => xs.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect(),
            _ => {
                failures.push(format!("case {i} has no numeric `expected`"));
                continue;
            }
        };
        let note = case["note"].as_str().unwrap_or("");
        let describe = || {
            format!(
                "case {i} {} {} {} (value {}, note '{note}')",
                case["dist"], case["method"], case["params"], case["value"]
            )
        };
        match compute(case) {
            Err(e) => failures.push(format!("{}: {e}", describe())),
            Ok(Computed::Exact(got)) => {
                compare(&[got], &expected, note, rel, abs, &describe, &mut failures)
            }
            Ok(Computed::Vector(got)) => {
                compare(&got, &expected, note, rel, abs, &describe, &mut failures)
            }
            Ok(Computed::Gradient(got)) => {
                compare(&got, &expected, "", grad_rel, 0.0, &describe, &mut failures)
            }
            Ok(Computed::MonteCarlo {
                estimate,
                std_error,
            }) => {
                let expected = expected[0];
                let within = (estimate - expected).abs() <= 4.0 * std_error;
                if !within || !std_error.is_finite() {
                    failures.push(format!(
                        "{}: Monte Carlo {estimate} ± {std_error} (n = {MC_SAMPLES}) is more than 4 \
                         standard errors from {expected}",
                        describe()
                    ));
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(cases.len())
    } else {
        Err(failures)
    }
}

/// Compares a computed value or vector with the expected one, element by element.
fn compare(
    got: &[f64],
    expected: &[f64],
    note: &str,
    rel: f64,
    abs: f64,
    describe: &dyn Fn() -> String,
    failures: &mut Vec<String>,
) {
    let rel = if note.starts_with("tail") || note == "boundary" {
        1e-3
    } else {
        rel
    };
    let within = got.len() == expected.len()
        && got.iter().zip(expected).all(|(g, e)| {
            let err = (g - e).abs();
            err <= abs || err <= rel * e.abs()
        });
    if !within {
        let show = |v: &[f64]| match v {
            [x] => format!("{x}"),
            _ => format!("{v:?}"),
        };
        failures.push(format!(
            "{}: got {}, expected {} (rel {rel}, abs {abs})",
            describe(),
            show(got),
            show(expected)
        ));
    }
}

#[test]
fn reference_values() {
    let path = std::env::var("BURN_PROBABILITY_GOLDEN").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/reference_values.json"
        )
        .into()
    });
    match check_file(&path) {
        Ok(n) => say(format!("checked {n} cases")),
        Err(failures) => panic!(
            "{} cases of {path} failed:\n{}",
            failures.len(),
            failures.join("\n")
        ),
    }
}

#[test]
fn families_reference_values() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/families.json");
    match check_file(path) {
        Ok(n) => say(format!("checked {n} cases (families.json)")),
        Err(failures) => panic!(
            "{} cases of {path} failed:\n{}",
            failures.len(),
            failures.join("\n")
        ),
    }
}

#[test]
fn gamma_reference_values() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/gamma.json");
    match check_file(path) {
        Ok(n) => say(format!("checked {n} cases (gamma.json)")),
        Err(failures) => panic!(
            "{} cases of {path} failed:\n{}",
            failures.len(),
            failures.join("\n")
        ),
    }
}

#[test]
fn transforms_reference_values() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/transforms.json");
    match check_file(path) {
        Ok(n) => say(format!("checked {n} cases (transforms.json)")),
        Err(failures) => panic!(
            "{} cases of {path} failed:\n{}",
            failures.len(),
            failures.join("\n")
        ),
    }
}

#[test]
fn categorical_reference_values() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/categorical.json");
    match check_file(path) {
        Ok(n) => say(format!("checked {n} cases (categorical.json)")),
        Err(failures) => panic!(
            "{} cases of {path} failed:\n{}",
            failures.len(),
            failures.join("\n")
        ),
    }
}

/// The checker itself must be able to fail: a perturbed expected value, a case kind it does not
/// know, a Monte Carlo case far from its reference and an implicit gradient slightly off are
/// each reported.
#[test]
fn checker_reports_wrong_values_and_unknown_kinds() {
    let dir = std::env::temp_dir().join(format!("bp-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, case: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(r#"{{"tolerance": {{"rel": 1e-4, "abs": 1e-5}}, "cases": [{case}]}}"#),
        )
        .unwrap();
        path.to_string_lossy().into_owned()
    };
    let good = write(
        "good.json",
        r#"{"dist": "Normal", "params": {"loc": 0.0, "scale": 1.0}, "method": "log_prob", "value": 0.0, "expected": -0.9189385332046727}"#,
    );
    assert_eq!(check_file(&good), Ok(1));
    let wrong = write(
        "wrong.json",
        r#"{"dist": "Normal", "params": {"loc": 0.0, "scale": 1.0}, "method": "log_prob", "value": 0.0, "expected": -0.9200}"#,
    );
    assert!(check_file(&wrong).unwrap_err()[0].contains("expected -0.92"));
    let unknown = write(
        "unknown.json",
        r#"{"dist": "Wishart", "params": {"df": 3.0}, "method": "log_prob", "value": 1.0, "expected": -1.0}"#,
    );
    assert!(check_file(&unknown).unwrap_err()[0].contains("unknown case kind"));
    let mc = write(
        "mc.json",
        r#"{"dist": "KL(Logistic||Logistic)", "params": {"p": {"loc": 0.0, "scale": 1.0}, "q": {"loc": 1.0, "scale": 1.0}}, "method": "kl", "value": null, "expected": 0.5, "note": "no closed form; quadrature"}"#,
    );
    assert!(check_file(&mc).unwrap_err()[0].contains("standard errors"));
    // An implicit gradient 0.5% off, far below the absolute floor of the other cases, fails
    // (relative tolerance only); the exact one passes.
    let grad = |expected: f64| {
        format!(
            r#"{{"dist": "Gamma", "params": {{"concentration": 0.04649629071354866, "rate": 1.0}}, "method": "rsample_grad", "value": 8.312752396155698e-12, "expected": {expected:e}}}"#
        )
    };
    let exact = write("grad.json", &grad(4.4713667016212444e-09));
    assert_eq!(check_file(&exact), Ok(1));
    let off = write("grad_off.json", &grad(4.4713667016212444e-09 * 1.005));
    assert!(check_file(&off).unwrap_err()[0].contains("rsample_grad"));
    std::fs::remove_dir_all(&dir).ok();
}

/// Writes a line to the terminal past the test harness's output capture, so that the count of
/// checked cases shows in CI logs.
fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    writeln!(std::io::stdout(), "{line}").ok();
}
