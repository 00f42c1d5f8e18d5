//! A distribution the crate does not have, written by a user with nothing but the public API:
//! Laplace(loc, scale), with scalar or broadcast parameters (`broadcast_params`), the crate's
//! error style (`new` panics with the message `try_new` returns), opt-in
//! validation, `Rsample` by noise and transform, a closed-form KL against the built-in
//! `Normal`. The tests show that it then works in `Independent`, `kl_divergence`,
//! `kl_monte_carlo` and the objectives like a built-in family.

use std::sync::Mutex;

use burn::tensor::{Device, Shape, Tensor};
use burn_probability::distribution::{
    Param, broadcast_params, check_param, check_values, lift, sample_dims,
};
use burn_probability::math::LN_SQRT_2PI;
use burn_probability::objectives::{Elbo, Iwae};
use burn_probability::prelude::*;
use burn_probability::{Error, Result, noise};

/// `p(x) = exp(−|x − μ| / b) / (2b)`.
#[derive(Clone, Debug)]
struct Laplace<const D: usize> {
    loc: Tensor<D>,
    scale: Tensor<D>,
}

impl<const D: usize> Laplace<D> {
    /// Tensors whose shapes broadcast against each other, or scalars; the batch shape is their
    /// broadcast. Panics with [`Self::try_new`]'s message.
    #[track_caller]
    fn new(loc: impl Into<Param<D>>, scale: impl Into<Param<D>>) -> Self {
        Self::try_new(loc, scale).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_new(loc: impl Into<Param<D>>, scale: impl Into<Param<D>>) -> Result<Self> {
        let [loc, scale] =
            broadcast_params("Laplace", [("loc", loc.into()), ("scale", scale.into())])?;
        Ok(Self { loc, scale })
    }
}

impl<const D: usize> Distribution<D> for Laplace<D> {
    type Batch = Tensor<D>;
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "Laplace";

    fn shape(&self) -> Shape {
        self.loc.shape()
    }

    fn device(&self) -> Device {
        self.loc.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let (loc, scale) = (lift::<D, DV>(&self.loc), lift::<D, DV>(&self.scale));
        -(value - loc).abs() / scale.clone() - (scale * 2.0).log()
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().rsample_with_shape(sample_shape)
    }

    fn detach(&self) -> Self {
        Self {
            loc: self.loc.clone().detach(),
            scale: self.scale.clone().detach(),
        }
    }

    fn validate(&self) -> Result<()> {
        check_param("Laplace", "loc", "finite", &self.loc, f64::is_finite)?;
        check_param("Laplace", "scale", "finite and > 0", &self.scale, |s| {
            s.is_finite() && s > 0.0
        })
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("Laplace", "the real line", value, |v| !v.is_nan())
    }
}

impl<const D: usize> Rsample<D> for Laplace<D> {
    /// `u − 1/2` with `u` uniform on (0, 1).
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("Laplace::noise", sample_shape, &self.shape());
        noise::uniform_open(dims, &self.device()) - 0.5
    }

    /// `μ − b · sign(ε) · ln(1 − 2|ε|)`.
    fn rsample_with_noise<const DO: usize>(&self, eps: Tensor<DO>) -> Tensor<DO> {
        let (loc, scale) = (lift::<D, DO>(&self.loc), lift::<D, DO>(&self.scale));
        let tail = (eps.clone().abs() * -2.0).log1p();
        loc - scale * eps.sign() * tail
    }
}

impl<const D: usize> Entropy<D> for Laplace<D> {
    /// `1 + ln 2b`.
    fn entropy_keepdim(&self) -> Tensor<D> {
        (self.scale.clone() * 2.0).log() + 1.0
    }
}

impl<const D: usize> Moments<D> for Laplace<D> {
    fn mean(&self) -> Tensor<D> {
        self.loc.clone()
    }
    fn variance(&self) -> Tensor<D> {
        self.scale.clone().square() * 2.0
    }
}

/// `KL(Laplace(μ₁, b) ‖ N(μ₂, σ)) = −(1 + ln 2b) + ln σ + ln √2π + (2b² + (μ₁ − μ₂)²) / 2σ²`.
impl<const D: usize> KlDivergence<Normal<D>, D> for Laplace<D> {
    fn kl_divergence_keepdim(&self, q: &Normal<D>) -> Tensor<D> {
        let second_moment = self.variance() + (self.loc.clone() - q.loc().clone()).square();
        -self.entropy_keepdim()
            + q.scale().clone().log()
            + LN_SQRT_2PI
            + second_moment / (q.scale().clone().square() * 2.0)
    }
}

static RNG: Mutex<()> = Mutex::new(());

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

fn t1(xs: &[f32]) -> Tensor<1> {
    Tensor::from_floats(xs, &Device::flex())
}

#[test]
fn log_prob_matches_the_formula_and_broadcasts() {
    // A scalar scale broadcast against three locations: batch shape [3].
    let d = Laplace::new(t1(&[0.0, 1.0, -2.0]), 2.0);
    assert_eq!(d.batch_shape().to_vec(), vec![3]);
    let got = floats(d.log_prob(t1(&[0.0, 3.0, -2.5])));
    // ln p = −|x − μ| / b − ln 2b with b = 2: −ln 4, −1 − ln 4, −0.25 − ln 4.
    let ln4 = 4f64.ln();
    for (g, want) in got.iter().zip([-ln4, -1.0 - ln4, -0.25 - ln4]) {
        assert!((g - want).abs() < 1e-6, "{got:?}");
    }
    // Parameters that do not broadcast are an error naming both shapes.
    let err = Laplace::try_new(t1(&[0.0, 1.0, 2.0]), t1(&[1.0, 2.0])).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("[3]") && err.to_string().contains("[2]"));
    // Opt-in validation names the parameter and the offending element.
    let bad = Laplace::new(t1(&[0.0, 1.0]), t1(&[1.0, -1.0]));
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("scale") && err.contains("element 1"), "{err}");
    // A value whose shape does not fit is an error, not a broadcast.
    assert!(d.try_log_prob(t1(&[0.0, 1.0])).is_err());
}

#[test]
fn rsample_has_the_laplace_moments_and_gradients() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex().autodiff();
    device.seed(7);
    let loc = Tensor::<1>::from_floats([1.5, -3.0], &device).require_grad();
    let scale = Tensor::<1>::from_floats([0.5, 2.0], &device).require_grad();
    let laplace = || Laplace::new(loc.clone(), scale.clone());
    let n = 100_000;
    let eps: Tensor<2> = laplace().noise(&[n]);
    let x = laplace().rsample_with_noise(eps.clone());
    assert_eq!(x.dims(), [n, 2]);
    let mean = floats(x.clone().mean_dim(0).reshape([2]));
    let var = floats(x.clone().var(0).reshape([2]));
    for (i, (b, mu)) in [(0.5f64, 1.5f64), (2.0, -3.0)].into_iter().enumerate() {
        // Var = 2b², so the standard error of the mean is b·√(2/n); of the variance,
        // √((μ₄ − σ⁴)/n) with μ₄ = 24b⁴, σ⁴ = 4b⁴.
        let se_mean = b * (2.0 / n as f64).sqrt();
        let se_var = (20.0 * b.powi(4) / n as f64).sqrt();
        assert!((mean[i] - mu).abs() < 4.0 * se_mean, "mean {mean:?}");
        assert!(
            (var[i] - 2.0 * b * b).abs() < 4.0 * se_var,
            "variance {var:?}"
        );
    }
    // Pathwise gradients. ∂x/∂μ = 1 for every sample, so ∂mean(x)/∂μ = 1 (up to the float32
    // sum of n terms of 1/n).
    let g_loc = floats(loc.grad(&x.mean_dim(0).sum().backward()).unwrap());
    assert!(g_loc.iter().all(|g| (g - 1.0).abs() < 5e-3), "{g_loc:?}");
    // ∂|x − μ|/∂b = |x − μ|/b, an Exp(1) variable: its mean over the same noise is 1 within
    // 4 standard errors, 4/√n.
    let x = laplace().rsample_with_noise(eps);
    let spread = (x - loc.clone().unsqueeze::<2>()).abs().mean_dim(0).sum();
    let g_scale = floats(scale.grad(&spread.backward()).unwrap());
    let tolerance = 4.0 / (n as f64).sqrt();
    assert!(
        g_scale.iter().all(|g| (g - 1.0).abs() < tolerance),
        "{g_scale:?}"
    );
}

#[test]
fn works_in_independent_and_both_kls() {
    let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
    Device::flex().seed(3);
    let device = Device::flex();
    let loc = Tensor::<2>::from_floats([[0.0, 1.0, 2.0], [-1.0, 0.5, 0.0]], &device);
    let p = Laplace::new(loc.clone(), Tensor::<2>::from_floats([[0.7]], &device));
    let each = floats(p.log_prob(loc.clone() + 0.3));

    // Independent sums the reinterpreted dimension: [2, 3] -> batch [2], event [3].
    let ip: Independent<Laplace<2>, 1> = Independent::new(p.clone(), 1);
    assert_eq!(ip.event_shape().to_vec(), vec![3]);
    let summed = floats(ip.log_prob(loc.clone() + 0.3));
    for (row, s) in summed.iter().enumerate() {
        let want: f64 = each[3 * row..3 * row + 3].iter().sum();
        assert!((s - want).abs() < 1e-5, "{summed:?} vs {each:?}");
    }
    // A value whose event does not fit is an error, not a broadcast.
    assert!(
        ip.try_log_prob(Tensor::<2>::zeros([2, 1], &device))
            .is_err()
    );

    // The closed-form KL against the built-in Normal agrees with the Monte Carlo estimate.
    let q = Normal::new(
        Tensor::zeros([2, 3], &device),
        Tensor::ones([2, 3], &device) * 1.5,
    );
    let mc = kl_monte_carlo(&p, &q, 200_000);
    let (kl, est, se) = (
        floats(kl_divergence(&p, &q)),
        floats(mc.estimate),
        floats(mc.std_error),
    );
    for i in 0..kl.len() {
        assert!(
            (kl[i] - est[i]).abs() <= 4.0 * se[i],
            "{kl:?} vs {est:?} ± {se:?}"
        );
    }
    // ... and Independent's KL sums it, as for a built-in pair.
    let iq: Independent<Normal<2>, 1> = Independent::new(q, 1);
    let ikl = floats(kl_divergence(&ip, &iq));
    assert!(
        (ikl[0] - kl[..3].iter().sum::<f64>()).abs() < 1e-4,
        "{ikl:?}"
    );
}

#[test]
fn works_as_posterior_prior_and_likelihood_in_the_objectives() {
    let device = Device::flex();
    let (k, b, l) = (4, 3, 2);
    let x = Tensor::<2>::from_floats(
        [[0.1, -0.4, 1.0], [0.0, 0.3, -0.2], [2.0, 1.0, 0.5]],
        &device,
    );
    let q: Independent<Laplace<2>, 1> = Independent::new(
        Laplace::new(
            Tensor::from_floats([[0.2, -0.1], [0.0, 0.4], [1.0, 0.3]], &device),
            Tensor::from_floats([[0.5, 0.8]], &device),
        ),
        1,
    );
    let prior: Independent<Laplace<2>, 1> = Independent::new(
        Laplace::new(
            Tensor::zeros([1, l], &device),
            Tensor::ones([1, l], &device),
        ),
        1,
    );
    // p(x | z) = Laplace(z W, 0.6) over three observed values.
    let w = Tensor::<2>::from_floats([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0]], &device);
    let likelihood = |z: Tensor<2>| {
        let loc = z.matmul(w.clone());
        let scale = Tensor::<2>::from_floats([[0.6]], &device);
        Independent::<_, 1>::new(Laplace::new(loc, scale), 1)
    };
    let noise: Tensor<3> = q.noise(&[k]);

    // By hand: z = q(noise), ln w = ln p(x | z) + ln p(z) − ln q(z), over the k samples.
    let z = q.rsample_with_noise(noise.clone());
    let log_q: Tensor<2> = q.log_prob_n(z.clone());
    let log_prior: Tensor<2> = prior.log_prob_n(z.clone());
    let log_lik = likelihood(z.reshape([k * b, l]))
        .log_prob(x.clone().repeat_dim(0, k))
        .reshape([k, b]);
    let log_w = floats(log_lik + log_prior - log_q);
    let elbo_by_hand: Vec<f64> = (0..b)
        .map(|j| (0..k).map(|i| log_w[i * b + j]).sum::<f64>() / k as f64)
        .collect();
    let iwae_by_hand: Vec<f64> = (0..b)
        .map(|j| {
            let m = (0..k).map(|i| log_w[i * b + j]).fold(f64::MIN, f64::max);
            m + ((0..k).map(|i| (log_w[i * b + j] - m).exp()).sum::<f64>() / k as f64).ln()
        })
        .collect();

    let elbo = Elbo::new().num_samples(k).monte_carlo_kl_with_noise(
        &q,
        &prior,
        likelihood,
        x.clone(),
        noise.clone(),
    );
    let iwae = Iwae::new(k).compute_with_noise(&q, &prior, likelihood, x.clone(), noise);
    for (name, got, want) in [
        ("ELBO", floats(elbo.value), elbo_by_hand),
        ("IWAE", floats(iwae.value), iwae_by_hand),
    ] {
        for j in 0..b {
            assert!(
                (got[j] - want[j]).abs() < 1e-4 * (1.0 + want[j].abs()),
                "{name}: {got:?} vs {want:?}"
            );
        }
    }
}
