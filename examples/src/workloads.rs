//! The benchmark workloads, shared by the criterion benches (`benches/distributions.rs`,
//! `benches/training.rs`) and by the binary that the side-by-side driver runs
//! (`bench_workloads.rs`). `benches/peers/peer_torch.py` and `peer_tf.py` implement the same
//! workloads, with the same names, shapes and dtypes, in PyTorch and TensorFlow + TFP.

use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution as Init, Tensor};
use burn_probability::prelude::*;

use crate::vae::model::{ConvVae, MlpVae, ModelKind, ObjectiveKind, StepThreads, Vae, optimizer};

/// One benchmark workload: `run` performs one iteration and waits for its result.
pub struct Workload {
    /// The name shared with the peers' scripts.
    pub name: &'static str,
    /// Elements (distribution operations) or images (models) per iteration.
    pub items: usize,
    /// One iteration.
    pub run: Box<dyn FnMut()>,
}

/// The distribution workloads, forward (`_fwd`) and forward + backward (`_fwdbwd`).
pub const DISTRIBUTION_WORKLOADS: [&str; 84] = [
    "normal_log_prob_fwd",
    "normal_log_prob_fwdbwd",
    "normal_rsample_fwd",
    "normal_rsample_fwdbwd",
    "normal_entropy_fwd",
    "normal_entropy_fwdbwd",
    "normal_kl_fwd",
    "normal_kl_fwdbwd",
    "logistic_log_prob_fwd",
    "logistic_log_prob_fwdbwd",
    "binconcrete_rsample_fwd",
    "binconcrete_rsample_fwdbwd",
    "binconcrete_log_prob_fwd",
    "binconcrete_log_prob_fwdbwd",
    "bernoulli_log_prob_fwd",
    "bernoulli_log_prob_fwdbwd",
    "categorical_log_prob_fwd",
    "categorical_log_prob_fwdbwd",
    "relaxed_rsample_fwd",
    "relaxed_rsample_fwdbwd",
    "relaxed_log_prob_fwd",
    "relaxed_log_prob_fwdbwd",
    "exprelaxed_log_prob_fwd",
    "exprelaxed_log_prob_fwdbwd",
    "gumbel_log_prob_fwd",
    "gumbel_log_prob_fwdbwd",
    "gumbel_rsample_fwd",
    "gumbel_rsample_fwdbwd",
    "laplace_log_prob_fwd",
    "laplace_log_prob_fwdbwd",
    "laplace_rsample_fwd",
    "laplace_rsample_fwdbwd",
    "lognormal_log_prob_fwd",
    "lognormal_log_prob_fwdbwd",
    "lognormal_rsample_fwd",
    "lognormal_rsample_fwdbwd",
    "studentt_log_prob_fwd",
    "studentt_log_prob_fwdbwd",
    "studentt_rsample_fwd",
    "studentt_rsample_fwdbwd",
    "cauchy_log_prob_fwd",
    "cauchy_log_prob_fwdbwd",
    "cauchy_rsample_fwd",
    "cauchy_rsample_fwdbwd",
    "exponential_log_prob_fwd",
    "exponential_log_prob_fwdbwd",
    "exponential_rsample_fwd",
    "exponential_rsample_fwdbwd",
    "uniform_log_prob_fwd",
    "uniform_log_prob_fwdbwd",
    "uniform_rsample_fwd",
    "uniform_rsample_fwdbwd",
    "halfnormal_log_prob_fwd",
    "halfnormal_log_prob_fwdbwd",
    "halfnormal_rsample_fwd",
    "halfnormal_rsample_fwdbwd",
    "cb_log_prob_fwd",
    "cb_log_prob_fwdbwd",
    "cb_rsample_fwd",
    "cb_rsample_fwdbwd",
    "poisson_log_prob_fwd",
    "poisson_log_prob_fwdbwd",
    "binomial_log_prob_fwd",
    "binomial_log_prob_fwdbwd",
    "geometric_log_prob_fwd",
    "geometric_log_prob_fwdbwd",
    "gamma_log_prob_fwd",
    "gamma_log_prob_fwdbwd",
    "gamma_rsample_fwd",
    "gamma_rsample_fwdbwd",
    "beta_log_prob_fwd",
    "beta_log_prob_fwdbwd",
    "beta_rsample_fwd",
    "beta_rsample_fwdbwd",
    "dirichlet_log_prob_fwd",
    "dirichlet_log_prob_fwdbwd",
    "dirichlet_rsample_fwd",
    "dirichlet_rsample_fwdbwd",
    "mvn_tril_log_prob_fwd",
    "mvn_tril_log_prob_fwdbwd",
    "mvn_tril_rsample_fwd",
    "mvn_tril_rsample_fwdbwd",
    "mixture_normal_log_prob_fwd",
    "mixture_normal_log_prob_fwdbwd",
];

/// The model workloads: the IWAE bound with its gradient, and one training step per example.
pub const MODEL_WORKLOADS: [&str; 4] = ["iwae_bound_k50", "train_conv", "train_mlp", "train_iwae"];

/// Every workload name, distributions first.
pub fn all_names() -> Vec<&'static str> {
    DISTRIBUTION_WORKLOADS
        .iter()
        .chain(MODEL_WORKLOADS.iter())
        .copied()
        .collect()
}

const E: [usize; 2] = [1000, 1000];
const CONCRETE: [usize; 2] = [10000, 200];
const PIXELS: [usize; 2] = [10000, 784];
/// 100,000 categorical variables of 10 classes: 1,000,000 logits.
const CLASSES: [usize; 2] = [100_000, 10];
/// 250,000 Dirichlet variables of 4 coordinates: 1,000,000 concentrations.
const SIMPLEX: [usize; 2] = [250_000, 4];
/// 125,000 Gaussian vectors of 8 coordinates: 1,000,000 values, 8,000,000 scale entries.
const TRIL: [usize; 2] = [125_000, 8];
/// 200,000 mixtures of 5 Normals: 1,000,000 component densities.
const MIXTURE: [usize; 2] = [200_000, 5];
/// Elements per iteration of the workloads on `E`, `CONCRETE` and `PIXELS`.
const E_ITEMS: usize = E[0] * E[1];
const CONCRETE_ITEMS: usize = CONCRETE[0] * CONCRETE[1];
const PIXELS_ITEMS: usize = PIXELS[0] * PIXELS[1];
const CLASSES_ITEMS: usize = CLASSES[0] * CLASSES[1];

fn normal(shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::random(shape, Init::Normal(0.0, 1.0), device)
}

fn uniform(shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::random(shape, Init::Uniform(0.5, 1.5), device)
}

fn binary(shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::<2>::random(shape, Init::Uniform(0.0, 1.0), device)
        .greater_elem(0.5)
        .float()
}

/// Uniform on `[low, high)`.
fn between(shape: [usize; 2], low: f64, high: f64, device: &Device) -> Tensor<2> {
    Tensor::random(shape, Init::Uniform(low, high), device)
}

/// Whole numbers drawn uniformly from `0..n`, as floats (the counts of the discrete families).
fn counts(shape: [usize; 2], n: f64, device: &Device) -> Tensor<2> {
    between(shape, 0.0, n, device).floor().clamp(0.0, n - 1.0)
}

fn sync(device: &Device) {
    device.sync().expect("the device finishes its work");
}

/// A forward workload: `f` maps the inputs to the output tensor.
fn forward(
    name: &'static str,
    items: usize,
    device: &Device,
    f: impl Fn() -> Tensor<2> + 'static,
) -> Workload {
    let device = device.clone();
    Workload {
        name,
        items,
        run: Box::new(move || {
            let out = f();
            sync(&device);
            drop(out);
        }),
    }
}

/// A forward + backward workload: the output of `f(params)` is summed and differentiated with
/// respect to every parameter.
fn backward<const N: usize>(
    name: &'static str,
    items: usize,
    device: &Device,
    params: [Tensor<2>; N],
    f: impl Fn(&[Tensor<2>; N]) -> Tensor<2> + 'static,
) -> Workload {
    let device = device.clone();
    let params = params.map(|p| p.require_grad());
    Workload {
        name,
        items,
        run: Box::new(move || {
            let grads = f(&params).sum().backward();
            let g: Vec<_> = params.iter().map(|p| p.grad(&grads)).collect();
            sync(&device);
            drop(g);
        }),
    }
}

/// Builds the workload `name` on `device` (a device without autodiff; the backward workloads
/// turn it on themselves). `None` for an unknown name.
pub fn build(name: &str, device: &Device) -> Option<Workload> {
    let ad = device.clone().autodiff();
    normal_workload(name, device, &ad)
        .or_else(|| normal_kl_workload(name, device, &ad))
        .or_else(|| logistic_workload(name, device, &ad))
        .or_else(|| binconcrete_workload(name, device, &ad))
        .or_else(|| bernoulli_workload(name, device, &ad))
        .or_else(|| categorical_workload(name, device, &ad))
        .or_else(|| gumbel_workload(name, device, &ad))
        .or_else(|| families_log_prob_workload(name, device, &ad))
        .or_else(|| families_rsample_workload(name, device, &ad))
        .or_else(|| gamma_family_workload(name, device, &ad))
        .or_else(|| covariance_workload(name, device, &ad))
        .or_else(|| model_workload(name, &ad))
}

/// The Normal log-density, reparameterized sample and entropy workloads; `d` is the device
/// without autodiff, `ad` the same device with it. `None` for another name.
fn normal_workload(name: &str, d: &Device, ad: &Device) -> Option<Workload> {
    Some(match name {
        "normal_log_prob_fwd" => {
            return location_scale_log_prob("normal_log_prob_fwd", |l, s| Normal::new(l, s), d, ad);
        }
        "normal_log_prob_fwdbwd" => {
            return location_scale_log_prob(
                "normal_log_prob_fwdbwd",
                |l, s| Normal::new(l, s),
                d,
                ad,
            );
        }
        "normal_rsample_fwd" => {
            let p = Normal::new(normal(E, d), uniform(E, d));
            forward("normal_rsample_fwd", E_ITEMS, d, move || p.rsample())
        }
        "normal_rsample_fwdbwd" => backward(
            "normal_rsample_fwdbwd",
            E_ITEMS,
            ad,
            [normal(E, ad), uniform(E, ad)],
            |[loc, scale]| Normal::new(loc.clone(), scale.clone()).rsample(),
        ),
        "normal_entropy_fwd" => {
            let p = Normal::new(normal(E, d), uniform(E, d));
            forward("normal_entropy_fwd", E_ITEMS, d, move || p.entropy())
        }
        "normal_entropy_fwdbwd" => backward(
            "normal_entropy_fwdbwd",
            E_ITEMS,
            ad,
            [normal(E, ad), uniform(E, ad)],
            |[loc, scale]| Normal::new(loc.clone(), scale.clone()).entropy(),
        ),
        _ => return None,
    })
}

/// The KL divergence between two Normals. `None` for another name.
fn normal_kl_workload(name: &str, d: &Device, ad: &Device) -> Option<Workload> {
    Some(match name {
        "normal_kl_fwd" => {
            let p = Normal::new(normal(E, d), uniform(E, d));
            let q = Normal::new(normal(E, d), uniform(E, d));
            forward("normal_kl_fwd", E_ITEMS, d, move || kl_divergence(&p, &q))
        }
        "normal_kl_fwdbwd" => backward(
            "normal_kl_fwdbwd",
            E_ITEMS,
            ad,
            [normal(E, ad), uniform(E, ad), normal(E, ad), uniform(E, ad)],
            |[l1, s1, l2, s2]| {
                let p = Normal::new(l1.clone(), s1.clone());
                let q = Normal::new(l2.clone(), s2.clone());
                kl_divergence(&p, &q)
            },
        ),
        _ => return None,
    })
}

/// The Logistic log-density. `None` for another name.
fn logistic_workload(name: &str, d: &Device, ad: &Device) -> Option<Workload> {
    match name {
        "logistic_log_prob_fwd" => {
            location_scale_log_prob("logistic_log_prob_fwd", |l, s| Logistic::new(l, s), d, ad)
        }
        "logistic_log_prob_fwdbwd" => location_scale_log_prob(
            "logistic_log_prob_fwdbwd",
            |l, s| Logistic::new(l, s),
            d,
            ad,
        ),
        _ => None,
    }
}

/// The log-density of the location-scale family `make(loc, scale)` on `E` elements: forward on
/// `d`, or, for a name ending in `_fwdbwd`, forward and backward to both parameters on `ad`.
fn location_scale_log_prob<T: Distribution<2, Batch = Tensor<2>>>(
    name: &'static str,
    make: fn(Tensor<2>, Tensor<2>) -> T,
    d: &Device,
    ad: &Device,
) -> Option<Workload> {
    if name.ends_with("_fwdbwd") {
        let x = normal(E, ad);
        let params = [normal(E, ad), uniform(E, ad)];
        Some(backward(name, E_ITEMS, ad, params, move |[loc, scale]| {
            make(loc.clone(), scale.clone()).log_prob(x.clone())
        }))
    } else {
        let (loc, scale, x) = (normal(E, d), uniform(E, d), normal(E, d));
        let p = make(loc, scale);
        Some(forward(name, E_ITEMS, d, move || p.log_prob(x.clone())))
    }
}

/// The binary Concrete (temperature 0.5) reparameterized sample and log-density, the latter
/// at a sample clamped into the open unit interval. `None` for another name.
fn binconcrete_workload(name: &str, d: &Device, ad: &Device) -> Option<Workload> {
    Some(match name {
        "binconcrete_rsample_fwd" => {
            let p = BinConcrete::new(0.5, normal(CONCRETE, d));
            forward("binconcrete_rsample_fwd", CONCRETE_ITEMS, d, move || {
                p.rsample()
            })
        }
        "binconcrete_rsample_fwdbwd" => backward(
            "binconcrete_rsample_fwdbwd",
            CONCRETE_ITEMS,
            ad,
            [normal(CONCRETE, ad)],
            |[logits]| BinConcrete::new(0.5, logits.clone()).rsample(),
        ),
        "binconcrete_log_prob_fwd" => {
            let p = BinConcrete::new(0.5, normal(CONCRETE, d));
            let y = p.sample().clamp(1e-6, 1.0 - 1e-6);
            forward("binconcrete_log_prob_fwd", CONCRETE_ITEMS, d, move || {
                p.log_prob(y.clone())
            })
        }
        "binconcrete_log_prob_fwdbwd" => {
            let y = BinConcrete::new(0.5, normal(CONCRETE, ad))
                .sample()
                .clamp(1e-6, 1.0 - 1e-6);
            backward(
                "binconcrete_log_prob_fwdbwd",
                CONCRETE_ITEMS,
                ad,
                [normal(CONCRETE, ad)],
                move |[logits]| BinConcrete::new(0.5, logits.clone()).log_prob(y.clone()),
            )
        }
        _ => return None,
    })
}

/// The Bernoulli log-density of binary pixels. `None` for another name.
fn bernoulli_workload(name: &str, d: &Device, ad: &Device) -> Option<Workload> {
    Some(match name {
        "bernoulli_log_prob_fwd" => {
            let p = Bernoulli::new(normal(PIXELS, d));
            let x = binary(PIXELS, d);
            forward("bernoulli_log_prob_fwd", PIXELS_ITEMS, d, move || {
                p.log_prob(x.clone())
            })
        }
        "bernoulli_log_prob_fwdbwd" => {
            let x = binary(PIXELS, ad);
            backward(
                "bernoulli_log_prob_fwdbwd",
                PIXELS_ITEMS,
                ad,
                [normal(PIXELS, ad)],
                move |[logits]| Bernoulli::new(logits.clone()).log_prob(x.clone()),
            )
        }
        _ => return None,
    })
}

/// Class indices drawn uniformly from `0..10`, as float whole numbers, one per row of
/// `CLASSES`.
fn classes(device: &Device) -> Tensor<1> {
    Tensor::<1>::random([CLASSES[0]], Init::Uniform(0.0, 10.0), device)
        .floor()
        .clamp(0.0, 9.0)
}

/// The categorical family on `CLASSES` logits (temperature 0.5 for the relaxed ones): the
/// log-mass of class indices, the relaxed one-hot's reparameterized sample and log-density, and
/// the log-space relaxation's log-density, the last two at a fixed sample. `None` for another
/// name.
fn categorical_workload(name: &str, d: &Device, ad: &Device) -> Option<Workload> {
    let rows = CLASSES[0];
    let column = move |t: Tensor<1>| t.reshape([rows, 1]);
    Some(match name {
        "categorical_log_prob_fwd" => {
            let (p, k) = (Categorical::new(normal(CLASSES, d)), classes(d));
            forward("categorical_log_prob_fwd", CLASSES_ITEMS, d, move || {
                column(p.log_prob(k.clone()))
            })
        }
        "categorical_log_prob_fwdbwd" => {
            let k = classes(ad);
            backward(
                "categorical_log_prob_fwdbwd",
                CLASSES_ITEMS,
                ad,
                [normal(CLASSES, ad)],
                move |[logits]| column(Categorical::new(logits.clone()).log_prob(k.clone())),
            )
        }
        "relaxed_rsample_fwd" => {
            let p = RelaxedOneHotCategorical::new(0.5, normal(CLASSES, d));
            forward("relaxed_rsample_fwd", CLASSES_ITEMS, d, move || p.rsample())
        }
        "relaxed_rsample_fwdbwd" => backward(
            "relaxed_rsample_fwdbwd",
            CLASSES_ITEMS,
            ad,
            [normal(CLASSES, ad)],
            |[logits]| RelaxedOneHotCategorical::new(0.5, logits.clone()).rsample(),
        ),
        "relaxed_log_prob_fwd" => {
            let p = RelaxedOneHotCategorical::new(0.5, normal(CLASSES, d));
            let y = p.sample();
            forward("relaxed_log_prob_fwd", CLASSES_ITEMS, d, move || {
                column(p.log_prob(y.clone()))
            })
        }
        "relaxed_log_prob_fwdbwd" => {
            let y = RelaxedOneHotCategorical::new(0.5, normal(CLASSES, ad)).sample();
            backward(
                "relaxed_log_prob_fwdbwd",
                CLASSES_ITEMS,
                ad,
                [normal(CLASSES, ad)],
                move |[logits]| {
                    column(RelaxedOneHotCategorical::new(0.5, logits.clone()).log_prob(y.clone()))
                },
            )
        }
        "exprelaxed_log_prob_fwd" => {
            let p = ExpRelaxedOneHotCategorical::new(0.5, normal(CLASSES, d));
            let x = p.sample();
            forward("exprelaxed_log_prob_fwd", CLASSES_ITEMS, d, move || {
                column(p.log_prob(x.clone()))
            })
        }
        "exprelaxed_log_prob_fwdbwd" => {
            let x = ExpRelaxedOneHotCategorical::new(0.5, normal(CLASSES, ad)).sample();
            backward(
                "exprelaxed_log_prob_fwdbwd",
                CLASSES_ITEMS,
                ad,
                [normal(CLASSES, ad)],
                move |[logits]| {
                    column(
                        ExpRelaxedOneHotCategorical::new(0.5, logits.clone()).log_prob(x.clone()),
                    )
                },
            )
        }
        _ => return None,
    })
}

/// The Gumbel log-density and reparameterized sample on `E`. `None` for another name.
fn gumbel_workload(name: &str, d: &Device, ad: &Device) -> Option<Workload> {
    Some(match name {
        "gumbel_log_prob_fwd" | "gumbel_log_prob_fwdbwd" => {
            let name = if name.ends_with("_fwdbwd") {
                "gumbel_log_prob_fwdbwd"
            } else {
                "gumbel_log_prob_fwd"
            };
            return location_scale_log_prob(name, |l, s| Gumbel::new(l, s), d, ad);
        }
        "gumbel_rsample_fwd" => {
            let p = Gumbel::new(normal(E, d), uniform(E, d));
            forward("gumbel_rsample_fwd", E_ITEMS, d, move || p.rsample())
        }
        "gumbel_rsample_fwdbwd" => backward(
            "gumbel_rsample_fwdbwd",
            E_ITEMS,
            ad,
            [normal(E, ad), uniform(E, ad)],
            |[loc, scale]| Gumbel::new(loc.clone(), scale.clone()).rsample(),
        ),
        _ => return None,
    })
}

/// The listed name equal to `name` (so a `'static` one), its stem without the `_fwd` or
/// `_fwdbwd` suffix, and the device its inputs go on: `ad` for `_fwdbwd`, `d` for `_fwd`.
/// `None` for a name not in [`DISTRIBUTION_WORKLOADS`].
fn variant<'a>(
    name: &str,
    d: &'a Device,
    ad: &'a Device,
) -> Option<(&'static str, &'static str, &'a Device)> {
    let name = DISTRIBUTION_WORKLOADS
        .iter()
        .copied()
        .find(|n| *n == name)?;
    Some(match name.strip_suffix("_fwdbwd") {
        Some(stem) => (name, stem, ad),
        None => (name, name.strip_suffix("_fwd")?, d),
    })
}

/// The log-density (or log-mass) at `x` of `make(params)` on `E` elements, on `device`:
/// forward, or, for a name ending in `_fwdbwd`, forward and backward to every parameter in
/// `params` (`device` is then the autodiff device).
fn family_log_prob<const N: usize, T: Distribution<2, Batch = Tensor<2>>>(
    name: &'static str,
    device: &Device,
    params: [Tensor<2>; N],
    x: Tensor<2>,
    make: impl Fn(&[Tensor<2>; N]) -> T + 'static,
) -> Workload {
    if name.ends_with("_fwdbwd") {
        backward(name, E_ITEMS, device, params, move |p| {
            make(p).log_prob(x.clone())
        })
    } else {
        let p = make(&params);
        forward(name, E_ITEMS, device, move || p.log_prob(x.clone()))
    }
}

/// The reparameterized sample of `make(params)` on `E` elements, on `device`: forward, or, for
/// a name ending in `_fwdbwd`, forward and backward to every parameter in `params` (`device`
/// is then the autodiff device).
fn family_rsample<const N: usize, T: Rsample<2>>(
    name: &'static str,
    device: &Device,
    params: [Tensor<2>; N],
    make: impl Fn(&[Tensor<2>; N]) -> T + 'static,
) -> Workload {
    if name.ends_with("_fwdbwd") {
        backward(name, E_ITEMS, device, params, move |p| make(p).rsample())
    } else {
        let p = make(&params);
        forward(name, E_ITEMS, device, move || p.rsample())
    }
}

/// The log-densities and log-masses of the eleven further families on `E`, at values in their
/// support, the backward pass to every parameter (never to a count or `total_count`):
/// - Laplace, Cauchy (loc ~ N(0, 1), scale ~ U(0.5, 1.5)) at x ~ N(0, 1);
/// - LogNormal (loc, scale as above) at x ~ U(0.5, 1.5);
/// - StudentT (df ~ U(2, 10), loc, scale as above) at x ~ N(0, 1);
/// - Exponential (rate ~ U(0.5, 1.5)) and HalfNormal (scale ~ U(0.5, 1.5)) at x ~ U(0.5, 1.5);
/// - Uniform (low ~ U(−1.5, −0.5), high ~ U(0.5, 1.5)) at x ~ U(−0.5, 0.5), inside `[low, high)`;
/// - ContinuousBernoulli (logits ~ N(0, 1)) at x ~ U(0, 1);
/// - Poisson (rate ~ U(5, 15)) at counts in `0..20`;
/// - Binomial (total_count 20, logits ~ N(0, 1)) at counts in `0..=20`;
/// - Geometric (logits ~ N(0, 1)) at counts in `0..10`.
///
/// `None` for another name.
fn families_log_prob_workload(name: &str, d: &Device, ad: &Device) -> Option<Workload> {
    let (name, stem, dev) = variant(name, d, ad)?;
    let loc_scale = || [normal(E, dev), uniform(E, dev)];
    Some(match stem {
        "laplace_log_prob" => {
            family_log_prob(name, dev, loc_scale(), normal(E, dev), |[loc, scale]| {
                Laplace::new(loc.clone(), scale.clone())
            })
        }
        "lognormal_log_prob" => {
            family_log_prob(name, dev, loc_scale(), uniform(E, dev), |[loc, scale]| {
                LogNormal::new(loc.clone(), scale.clone())
            })
        }
        "studentt_log_prob" => family_log_prob(
            name,
            dev,
            [between(E, 2.0, 10.0, dev), normal(E, dev), uniform(E, dev)],
            normal(E, dev),
            |[df, loc, scale]| StudentT::new(df.clone(), loc.clone(), scale.clone()),
        ),
        "cauchy_log_prob" => {
            family_log_prob(name, dev, loc_scale(), normal(E, dev), |[loc, scale]| {
                Cauchy::new(loc.clone(), scale.clone())
            })
        }
        "exponential_log_prob" => {
            family_log_prob(name, dev, [uniform(E, dev)], uniform(E, dev), |[rate]| {
                Exponential::new(rate.clone())
            })
        }
        "uniform_log_prob" => family_log_prob(
            name,
            dev,
            [between(E, -1.5, -0.5, dev), uniform(E, dev)],
            between(E, -0.5, 0.5, dev),
            |[low, high]| Uniform::new(low.clone(), high.clone()),
        ),
        "halfnormal_log_prob" => {
            family_log_prob(name, dev, [uniform(E, dev)], uniform(E, dev), |[scale]| {
                HalfNormal::new(scale.clone())
            })
        }
        "cb_log_prob" => family_log_prob(
            name,
            dev,
            [normal(E, dev)],
            between(E, 0.0, 1.0, dev),
            |[logits]| ContinuousBernoulli::new(logits.clone()),
        ),
        "poisson_log_prob" => family_log_prob(
            name,
            dev,
            [between(E, 5.0, 15.0, dev)],
            counts(E, 20.0, dev),
            |[rate]| Poisson::new(rate.clone()),
        ),
        "binomial_log_prob" => family_log_prob(
            name,
            dev,
            [normal(E, dev)],
            counts(E, 21.0, dev),
            |[logits]| Binomial::new(20.0, logits.clone()),
        ),
        "geometric_log_prob" => family_log_prob(
            name,
            dev,
            [normal(E, dev)],
            counts(E, 10.0, dev),
            |[logits]| Geometric::new(logits.clone()),
        ),
        _ => return None,
    })
}

/// The reparameterized samples of the eight further families that have one, on `E`, with the
/// parameters of [`families_log_prob_workload`]; StudentT's backward pass goes to loc and
/// scale only (df is a constant). `None` for another name.
fn families_rsample_workload(name: &str, d: &Device, ad: &Device) -> Option<Workload> {
    let (name, stem, dev) = variant(name, d, ad)?;
    let loc_scale = || [normal(E, dev), uniform(E, dev)];
    Some(match stem {
        "laplace_rsample" => family_rsample(name, dev, loc_scale(), |[loc, scale]| {
            Laplace::new(loc.clone(), scale.clone())
        }),
        "lognormal_rsample" => family_rsample(name, dev, loc_scale(), |[loc, scale]| {
            LogNormal::new(loc.clone(), scale.clone())
        }),
        "studentt_rsample" => {
            let df = between(E, 2.0, 10.0, dev);
            family_rsample(name, dev, loc_scale(), move |[loc, scale]| {
                StudentT::new(df.clone(), loc.clone(), scale.clone())
            })
        }
        "cauchy_rsample" => family_rsample(name, dev, loc_scale(), |[loc, scale]| {
            Cauchy::new(loc.clone(), scale.clone())
        }),
        "exponential_rsample" => family_rsample(name, dev, [uniform(E, dev)], |[rate]| {
            Exponential::new(rate.clone())
        }),
        "uniform_rsample" => family_rsample(
            name,
            dev,
            [between(E, -1.5, -0.5, dev), uniform(E, dev)],
            |[low, high]| Uniform::new(low.clone(), high.clone()),
        ),
        "halfnormal_rsample" => family_rsample(name, dev, [uniform(E, dev)], |[scale]| {
            HalfNormal::new(scale.clone())
        }),
        "cb_rsample" => family_rsample(name, dev, [normal(E, dev)], |[logits]| {
            ContinuousBernoulli::new(logits.clone())
        }),
        _ => return None,
    })
}

/// Concentrations as in variational inference: uniform on `[0.5, 5)`.
fn concentration(shape: [usize; 2], device: &Device) -> Tensor<2> {
    between(shape, 0.5, 5.0, device)
}

/// The Gamma-based families of issue 25, each log-density and reparameterized sample forward
/// and forward + backward (to every concentration and the rate), on 1,000,000 elements:
/// - Gamma (concentration ~ U(0.5, 5), rate ~ U(0.5, 1.5)) on `E`, log-density at x ~ U(0.5, 1.5);
/// - Beta (both concentrations ~ U(0.5, 5)) on `E`, log-density at x ~ U(0.05, 0.95);
/// - Dirichlet (concentrations ~ U(0.5, 5)) on `SIMPLEX` (`[250000, 4]`), log-density at
///   rows of U(0.5, 1.5) values divided by their sums (the result as a `[250000, 1]` column).
///
/// `None` for another name.
fn gamma_family_workload(name: &str, d: &Device, ad: &Device) -> Option<Workload> {
    let (name, stem, dev) = variant(name, d, ad)?;
    Some(match stem {
        "gamma_log_prob" => family_log_prob(
            name,
            dev,
            [concentration(E, dev), uniform(E, dev)],
            uniform(E, dev),
            |[alpha, rate]| Gamma::new(alpha.clone(), rate.clone()),
        ),
        "gamma_rsample" => family_rsample(
            name,
            dev,
            [concentration(E, dev), uniform(E, dev)],
            |[alpha, rate]| Gamma::new(alpha.clone(), rate.clone()),
        ),
        "beta_log_prob" => family_log_prob(
            name,
            dev,
            [concentration(E, dev), concentration(E, dev)],
            between(E, 0.05, 0.95, dev),
            |[a, b]| Beta::new(a.clone(), b.clone()),
        ),
        "beta_rsample" => family_rsample(
            name,
            dev,
            [concentration(E, dev), concentration(E, dev)],
            |[a, b]| Beta::new(a.clone(), b.clone()),
        ),
        "dirichlet_log_prob" => {
            let rows = SIMPLEX[0];
            let u = uniform(SIMPLEX, dev);
            let x = u.clone() / u.sum_dim(1);
            let column = move |t: Tensor<1>| t.reshape([rows, 1]);
            let params = [concentration(SIMPLEX, dev)];
            if name.ends_with("_fwdbwd") {
                backward(name, E_ITEMS, dev, params, move |[alpha]| {
                    column(Dirichlet::new(alpha.clone()).log_prob(x.clone()))
                })
            } else {
                let [alpha] = params;
                let p = Dirichlet::new(alpha);
                forward(name, E_ITEMS, dev, move || column(p.log_prob(x.clone())))
            }
        }
        "dirichlet_rsample" => {
            family_rsample(name, dev, [concentration(SIMPLEX, dev)], |[alpha]| {
                Dirichlet::new(alpha.clone())
            })
        }
        _ => return None,
    })
}

/// The full-covariance Gaussian and the mixture of issue 26, forward and forward + backward:
/// - MultivariateNormalTriL on `TRIL` (`[125000, 8]`): loc ~ N(0, 1), `scale_tril` with
///   entries ~ U(−0.3, 0.3) below the diagonal and U(0.5, 1.5) on it (given as `[125000, 64]`,
///   reshaped), the log-density at x ~ N(0, 1) (a `[125000, 1]` column) and the
///   reparameterized sample, backward to loc and `scale_tril`;
/// - MixtureSameFamily of 5 Normals on `MIXTURE` (`[200000, 5]` components: logits ~ N(0, 1),
///   loc ~ N(0, 1), scale ~ U(0.5, 1.5)), the log-density at x ~ N(0, 1) (`[200000, 1]`),
///   backward to the three.
///
/// `None` for another name.
fn covariance_workload(name: &str, d: &Device, ad: &Device) -> Option<Workload> {
    let (name, stem, dev) = variant(name, d, ad)?;
    let [rows, k] = TRIL;
    let tril_params = |dev: &Device| {
        let lower: Vec<f32> = (0..k * k)
            .map(|n| if n % k < n / k { 1.0 } else { 0.0 })
            .collect();
        let diag: Vec<f32> = (0..k * k)
            .map(|n| if n % k == n / k { 1.0 } else { 0.0 })
            .collect();
        let lower = Tensor::<1>::from_floats(lower.as_slice(), dev).reshape([1, k * k]);
        let diag = Tensor::<1>::from_floats(diag.as_slice(), dev).reshape([1, k * k]);
        let l = between([rows, k * k], -0.3, 0.3, dev) * lower + uniform([rows, k * k], dev) * diag;
        [normal(TRIL, dev), l]
    };
    let make = move |[loc, l]: &[Tensor<2>; 2]| {
        MultivariateNormalTriL::new(loc.clone(), l.clone().reshape([rows, k, k]))
    };
    let column = |t: Tensor<1>, n: usize| t.reshape([n, 1]);
    Some(match stem {
        "mvn_tril_log_prob" => {
            let x = normal(TRIL, dev);
            if name.ends_with("_fwdbwd") {
                backward(name, E_ITEMS, dev, tril_params(dev), move |p| {
                    column(make(p).log_prob(x.clone()), rows)
                })
            } else {
                let p = make(&tril_params(dev));
                forward(name, E_ITEMS, dev, move || {
                    column(p.log_prob(x.clone()), rows)
                })
            }
        }
        "mvn_tril_rsample" => {
            if name.ends_with("_fwdbwd") {
                backward(name, E_ITEMS, dev, tril_params(dev), move |p| {
                    make(p).rsample()
                })
            } else {
                let p = make(&tril_params(dev));
                forward(name, E_ITEMS, dev, move || p.rsample())
            }
        }
        "mixture_normal_log_prob" => {
            let [n, _] = MIXTURE;
            let x = Tensor::<1>::random([n], Init::Normal(0.0, 1.0), dev);
            let params = [
                normal(MIXTURE, dev),
                normal(MIXTURE, dev),
                uniform(MIXTURE, dev),
            ];
            let make = |[logits, loc, scale]: &[Tensor<2>; 3]| {
                MixtureSameFamily::<_, 1>::new(
                    Categorical::new(logits.clone()),
                    Normal::new(loc.clone(), scale.clone()),
                )
            };
            if name.ends_with("_fwdbwd") {
                backward(name, E_ITEMS, dev, params, move |p| {
                    column(make(p).log_prob(x.clone()), n)
                })
            } else {
                let p = make(&params);
                forward(name, E_ITEMS, dev, move || column(p.log_prob(x.clone()), n))
            }
        }
        _ => return None,
    })
}

/// The model workloads, on the autodiff device `ad`. `None` for another name.
fn model_workload(name: &str, ad: &Device) -> Option<Workload> {
    Some(match name {
        "iwae_bound_k50" => iwae_bound(ad),
        "train_conv" => train("train_conv", Vae::Conv(ConvVae::new(2, ad)), 100, ad),
        "train_mlp" => train("train_mlp", Vae::Mlp(MlpVae::new(2, false, ad)), 64, ad),
        "train_iwae" => train("train_iwae", Vae::Mlp(MlpVae::new(50, true, ad)), 20, ad),
        _ => return None,
    })
}

/// The IWAE bound (k = 50) of the IWAE example's model on a fixed binary batch of 64, with its
/// gradient with respect to the model's parameters.
fn iwae_bound(ad: &Device) -> Workload {
    let vae = Vae::Mlp(MlpVae::new(50, true, ad));
    let x = binary([64, 784], ad);
    let ad = ad.clone();
    Workload {
        name: "iwae_bound_k50",
        items: 64,
        run: Box::new(move || {
            let bound = vae.bound(x.clone(), ObjectiveKind::Iwae, 50);
            let grads = GradientsParams::from_grads(bound.loss.backward(), &vae);
            sync(&ad);
            drop(grads);
        }),
    }
}

/// One optimizer step of an example model on a fixed binary batch, with the example's
/// optimizer, learning rate 1e-3 and default objective (closed-form-KL ELBO for conv,
/// Monte Carlo ELBO for mlp, IWAE k = 50 for iwae).
fn train(name: &'static str, vae: Vae, batch: usize, ad: &Device) -> Workload {
    let (model, objective, k) = match name {
        "train_conv" => (ModelKind::Conv, ObjectiveKind::ElboAnalytic, 1),
        "train_mlp" => (ModelKind::Mlp, ObjectiveKind::Elbo, 1),
        _ => (ModelKind::Iwae, ObjectiveKind::Iwae, 50),
    };
    let mut optim = optimizer(model);
    let x = binary([batch, 784], ad);
    let ad = ad.clone();
    // The example's threads for this step (one thread for the small MLP steps).
    let threads = StepThreads::for_step(model, batch, k);
    let mut state = Some(vae);
    Workload {
        name,
        items: batch,
        run: Box::new(move || {
            let vae = state.take().expect("the model is put back after each step");
            let vae = threads.run(|| {
                let bound = vae.bound(x.clone(), objective, k);
                let grads = GradientsParams::from_grads(bound.loss.backward(), &vae);
                let vae = optim.step(1e-3, vae, grads);
                sync(&ad);
                vae
            });
            state = Some(vae);
        }),
    }
}
