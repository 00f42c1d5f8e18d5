//! The Dirichlet distribution.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Distribution, Entropy, Moments, OneLess, Param, Rank, Rsample, broadcast_params, check_param,
    check_values, lift, sample_dims,
};
use crate::error::Result;
use crate::gamma::with_implicit_gradient;
use crate::kl::KlDivergence;
use crate::math::{digamma, digamma_difference, lgamma};
use crate::sampling::standard_gamma;

/// A batch of Dirichlet distributions on the probability simplex of `K` coordinates, with
/// concentrations `α_k > 0` along the last dimension (event shape `[K]`;
/// `torch.distributions.Dirichlet`, `tfd.Dirichlet`, scipy's `dirichlet`): the prior of
/// proportions (topic mixtures, mixture weights), conjugate to the categorical and the
/// multinomial.
///
/// # Density function
/// ```text
/// ln p(x) = Σ_k (α_k − 1) ln x_k + ln Γ(α₀) − Σ_k ln Γ(α_k),      α₀ = Σ_k α_k
/// ```
/// over all `K` coordinates of the value (which the caller keeps on the simplex; validation
/// checks it). Mean `α_k/α₀`; variance `α_k(α₀ − α_k)/(α₀²(α₀ + 1))`; entropy
/// `Σ_k ln Γ(α_k) − ln Γ(α₀) + Σ_k (α_k − 1)(ψ(α₀) − ψ(α_k))`, the digamma differences taken
/// without cancellation.
///
/// # Sampling
/// [`Rsample::noise`] draws independent `g_k ~ Gamma(α_k, 1)` ([`standard_gamma`]); the sample
/// is `g/Σ_k g_k`, each `g_k` at least the smallest positive float32 (so that concentrations
/// like 0.05, whose Gamma variates underflow, still give a point of the simplex). The gradient
/// in `α` is the implicit reparameterization gradient of each Gamma variate
/// ([`crate::math::standard_gamma_grad`]) carried through the normalization (Figurnov, Mohamed
/// and Mnih, 2018; what TFP does).
///
/// # KL divergence
/// ```text
/// KL(p ‖ q) = ln Γ(α₀) − ln Γ(β₀) − Σ_k (ln Γ(α_k) − ln Γ(β_k)) + Σ_k (α_k − β_k)(ψ(α_k) − ψ(α₀))
/// ```
/// for `p = Dir(α)`, `q = Dir(β)`.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Dirichlet, Distribution, Moments};
///
/// let device = Device::flex();
/// let d = Dirichlet::new(Tensor::<1>::from_floats([1.0, 2.0, 7.0], &device));
/// assert_eq!(d.event_shape(), burn::tensor::Shape::new([3]));
/// let mean: Vec<f32> = d.mean().into_data().iter::<f32>().collect();
/// assert_eq!(mean, vec![0.1, 0.2, 0.7]);
/// let x: Tensor<2> = d.sample_n(5);                       // [5, 3], rows on the simplex
/// let sums: Vec<f32> = x.sum_dim(1).into_data().iter::<f32>().collect();
/// assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-6));
/// ```
#[derive(Clone, Debug)]
pub struct Dirichlet<const D: usize> {
    concentration: Tensor<D>,
}

impl<const D: usize> Dirichlet<D> {
    /// `Dirichlet(concentration)`, the last dimension of `concentration` being the event
    /// dimension `K`.
    ///
    /// # Panics
    /// If `concentration` is a scalar; the message is [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new(concentration: impl Into<Param<D>>) -> Self {
        Self::try_new(concentration).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`](crate::Error) instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if `concentration` is a
    /// scalar.
    pub fn try_new(concentration: impl Into<Param<D>>) -> Result<Self> {
        let [concentration] =
            broadcast_params("Dirichlet", [("concentration", concentration.into())])?;
        Ok(Self { concentration })
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self>
    where
        Rank<D>: OneLess<D>,
    {
        self.validate()?;
        Ok(self)
    }

    /// The concentrations `α`, shape `batch ++ [K]`.
    pub fn concentration(&self) -> &Tensor<D> {
        &self.concentration
    }

    /// `α₀ = Σ_k α_k`, kept as a size-1 last dimension.
    fn total(&self) -> Tensor<D> {
        self.concentration.clone().sum_dim(D - 1)
    }
}

impl<const D: usize> Distribution<D> for Dirichlet<D>
where
    Rank<D>: OneLess<D>,
{
    type Batch = <Rank<D> as OneLess<D>>::Batch;
    const EVENT_RANK: usize = 1;
    const NAME: &'static str = "Dirichlet";

    fn shape(&self) -> Shape {
        self.concentration.shape()
    }

    fn device(&self) -> Device {
        self.concentration.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let alpha = self.concentration.clone();
        let norm = lgamma(self.total()) - lgamma(alpha.clone()).sum_dim(D - 1);
        let alpha = lift::<D, DV>(&alpha);
        let x = value.clamp_min(0.0);
        // (α − 1) ln x with 0·ln 0 = 0, so that a vertex has the limit of the density.
        let zero = x.clone().equal_elem(0.0);
        let ones = alpha.clone().equal_elem(1.0);
        let term = (alpha - 1.0) * x.clamp_min(f32::MIN_POSITIVE).log();
        let term = term.mask_fill(zero.bool_and(ones), 0.0);
        term.sum_dim(DV - 1) + lift::<D, DV>(&norm)
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().rsample_with_shape(sample_shape)
    }

    fn detach(&self) -> Self {
        Self {
            concentration: self.concentration.clone().detach(),
        }
    }

    fn validate(&self) -> Result<()> {
        check_param(
            "Dirichlet",
            "concentration",
            "finite and > 0",
            &self.concentration,
            |v| v.is_finite() && v > 0.0,
        )
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values("Dirichlet", "[0, 1] in every coordinate", value, |v| {
            (0.0..=1.0).contains(&v)
        })?;
        let sums = value.clone().sum_dim(DV - 1);
        check_values(
            "Dirichlet",
            "the simplex (coordinates summing to 1 within 1e-5 per coordinate)",
            &sums,
            |s| (s - 1.0).abs() <= 1e-5 * value.dims()[DV - 1] as f64,
        )
    }
}

impl<const D: usize> Rsample<D> for Dirichlet<D>
where
    Rank<D>: OneLess<D>,
{
    /// Independent `g_k ~ Gamma(α_k, 1)`, shape `sample_shape ++ shape()`.
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("Dirichlet::noise", sample_shape, &self.shape());
        let alpha = lift::<D, DO>(&self.concentration.clone().detach());
        standard_gamma(alpha.expand(dims))
    }

    /// `g/Σ_k g_k` (each `g_k` at least the smallest positive float32, and all divided by the
    /// largest first), with the implicit gradient of every `g_k` in `α_k`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        let g = with_implicit_gradient(
            noise.clamp_min(f32::MIN_POSITIVE),
            lift::<D, DO>(&self.concentration),
        );
        // Divided by the (untracked) largest variate first: the ratio does not depend on that
        // factor, and without it a sum of tiny variates would square to 0 in the gradient.
        let g = g.clone() / g.detach().max_dim(DO - 1);
        g.clone() / g.sum_dim(DO - 1)
    }
}

impl<const D: usize> Entropy<D> for Dirichlet<D>
where
    Rank<D>: OneLess<D>,
{
    fn entropy_keepdim(&self) -> Tensor<D> {
        let alpha = self.concentration.clone();
        let total = self.total();
        let rest = total.clone() - alpha.clone();
        let log_b = lgamma(alpha.clone()).sum_dim(D - 1) - lgamma(total);
        log_b + ((alpha.clone() - 1.0) * digamma_difference(alpha, rest)).sum_dim(D - 1)
    }
}

impl<const D: usize> Moments<D> for Dirichlet<D>
where
    Rank<D>: OneLess<D>,
{
    fn mean(&self) -> Tensor<D> {
        self.concentration.clone() / self.total()
    }
    fn variance(&self) -> Tensor<D> {
        let alpha = self.concentration.clone();
        let total = self.total();
        alpha.clone() * (total.clone() - alpha) / (total.clone().square() * (total + 1.0))
    }
}

/// The closed form of the type's documentation.
impl<const D: usize, const DQ: usize> KlDivergence<Dirichlet<DQ>, D> for Dirichlet<D>
where
    Rank<D>: OneLess<D>,
{
    fn kl_divergence_keepdim(&self, q: &Dirichlet<DQ>) -> Tensor<D> {
        let alpha = self.concentration.clone();
        let beta = lift::<DQ, D>(&q.concentration);
        let a0 = self.total();
        let b0 = beta.clone().sum_dim(D - 1);
        let psi_a0 = digamma(a0.clone());
        lgamma(a0) - lgamma(b0)
            + (lgamma(beta.clone()) - lgamma(alpha.clone())
                + (alpha.clone() - beta) * (digamma(alpha) - psi_a0))
                .sum_dim(D - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Device {
        Device::flex()
    }

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    #[test]
    fn two_coordinates_are_a_beta() {
        // Dir(a, b) at (x, 1 − x) is Beta(a, b) at x.
        let d = Dirichlet::new(Tensor::<2>::from_floats([[2.0, 3.0], [0.5, 0.5]], &dev()));
        let x = Tensor::<2>::from_floats([[0.3, 0.7], [0.25, 0.75]], &dev());
        let got = vals(d.log_prob(x));
        let want = [
            (12.0f64 * 0.3 * 0.49).ln(),
            -(std::f64::consts::PI * (0.25f64 * 0.75).sqrt()).ln(),
        ];
        for i in 0..2 {
            assert!(
                (got[i] - want[i]).abs() < 2e-6,
                "{i}: {} vs {}",
                got[i],
                want[i]
            );
        }
    }

    #[test]
    fn a_wrong_event_shape_is_an_error() {
        let d = Dirichlet::new(Tensor::<1>::from_floats([1.0, 2.0, 3.0], &dev()));
        let e = d
            .try_log_prob(Tensor::<1>::from_floats([0.5, 0.5], &dev()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Dirichlet") && e.contains("[3]") && e.contains("[2]"),
            "{e}"
        );
    }

    #[test]
    fn uniform_dirichlet_has_the_log_volume_of_the_simplex() {
        // Dir(1, 1, 1) has density 2 = Γ(3) everywhere on the simplex; entropy −ln 2.
        let d = Dirichlet::new(Tensor::<1>::ones([3], &dev()));
        let lp = vals(d.log_prob(Tensor::<1>::from_floats([0.2, 0.0, 0.8], &dev())))[0];
        assert!((lp - 2f64.ln()).abs() < 1e-6, "{lp}");
        let h = vals(d.entropy())[0];
        assert!((h + 2f64.ln()).abs() < 1e-6, "{h}");
    }

    #[test]
    fn kl_is_zero_for_equal_and_positive_otherwise() {
        let p = Dirichlet::new(Tensor::<1>::from_floats([0.5, 3.0, 1.0], &dev()));
        let q = Dirichlet::new(Tensor::<1>::from_floats([0.5, 4.0, 1.0], &dev()));
        assert!(vals(crate::kl_divergence(&p, &p))[0].abs() < 1e-6);
        assert!(vals(crate::kl_divergence(&p, &q))[0] > 0.01);
    }
}
