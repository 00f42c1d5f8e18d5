//! The multivariate Normal with diagonal covariance.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{
    Distribution, Entropy, Mode, Moments, OneLess, Param, Rank, Rsample, broadcast_params, sum_keep,
};
use crate::error::{Error, Result};
use crate::kl::KlDivergence;
use crate::normal::Normal;

/// A batch of multivariate Normals `N(μ, diag(σ²))` over `ℝᴷ`, the last dimension of the
/// parameters being the event (`K`): parameters of rank `D`, batch rank `D − 1` (derived:
/// `MultivariateNormalDiag<2>` is a batch of vectors, `MultivariateNormalDiag<1>` one vector
/// with batch shape `[]`).
///
/// # Density function
/// ```text
/// ln p(x) = Σₖ [ −½ ((xₖ − μₖ) / σₖ)² − ln σₖ ] − (K/2) ln 2π
/// ```
/// Entropy `K (½ + ½ ln 2π) + Σₖ ln σₖ`. Mean and mode `μ`, variance `σ²` (the diagonal of the
/// covariance). Reparameterized sampling `x = μ + σ ⊙ ε`, `ε ~ N(0, I)`.
///
/// Equivalent to `Independent(Normal(μ, σ), 1)` (see [`Self::as_independent`]); TFP's
/// `MultivariateNormalDiag(loc, scale_diag)`.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{kl_divergence, Distribution, MultivariateNormalDiag, Rsample};
///
/// let device = Device::flex();
/// // The VAE posterior q(z | x) for a batch of 32 with a 2-D latent:
/// let loc = Tensor::<2>::zeros([32, 2], &device);
/// let scale_diag = Tensor::<2>::ones([32, 2], &device);
/// let q = MultivariateNormalDiag::new(loc, scale_diag);
/// // The prior with batch shape [], as TFP's `MultivariateNormalDiag(loc=tf.zeros(2))`:
/// let prior = MultivariateNormalDiag::standard([2], &device);
/// let z = q.rsample();                        // [32, 2]
/// let kl = kl_divergence(&q, &prior);         // [32]
/// assert_eq!(kl.dims(), [32]);
/// assert_eq!(prior.batch_shape().num_dims(), 0);
/// # let _ = z;
/// ```
#[derive(Clone, Debug)]
pub struct MultivariateNormalDiag<const D: usize> {
    normal: Normal<D>,
}

impl<const D: usize> MultivariateNormalDiag<D> {
    /// `N(loc, diag(scale_diag²))` from tensors whose shapes broadcast, or scalars (at least
    /// one tensor; see [`Param`]): `MultivariateNormalDiag::new(loc, 1.0)`. The last dimension
    /// of the broadcast shape is the event.
    ///
    /// # Panics
    /// If the shapes do not broadcast or both are scalars; the message is
    /// [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new(loc: impl Into<Param<D>>, scale_diag: impl Into<Param<D>>) -> Self {
        Self::try_new(loc, scale_diag).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] naming both shapes, or [`Error::InvalidArgument`] if both are
    /// scalars.
    pub fn try_new(loc: impl Into<Param<D>>, scale_diag: impl Into<Param<D>>) -> Result<Self> {
        let [loc, scale_diag] = broadcast_params(
            "MultivariateNormalDiag",
            [("loc", loc.into()), ("scale_diag", scale_diag.into())],
        )?;
        Ok(Self {
            normal: Normal::new(loc, scale_diag),
        })
    }

    /// The standard multivariate normal `N(0, I)` with the given shape (`batch ++ [K]`):
    /// `standard([K], ..)` has batch shape `[]`, `standard([1, K], ..)` batch shape `[1]`.
    pub fn standard(shape: [usize; D], device: &Device) -> Self {
        Self {
            normal: Normal::standard(shape, device),
        }
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self>
    where
        Rank<D>: OneLess<D>,
    {
        self.validate()?;
        Ok(self)
    }

    /// The mean `μ`.
    pub fn loc(&self) -> &Tensor<D> {
        self.normal.loc()
    }

    /// The per-coordinate standard deviations `σ`.
    pub fn scale_diag(&self) -> &Tensor<D> {
        self.normal.scale()
    }

    /// The same distribution as `Independent(Normal(μ, σ), 1)`, with its batch rank `DB`
    /// (`D − 1`, checked) named.
    ///
    /// # Panics
    /// If `DB ≠ D − 1`.
    #[track_caller]
    pub fn as_independent<const DB: usize>(&self) -> crate::Independent<Normal<D>, DB> {
        crate::Independent::new(self.normal.clone(), 1)
    }

    /// The univariate Normals of the coordinates.
    pub(crate) fn normal(&self) -> &Normal<D> {
        &self.normal
    }
}

impl<const D: usize> Distribution<D> for MultivariateNormalDiag<D>
where
    Rank<D>: OneLess<D>,
{
    type Batch = <Rank<D> as OneLess<D>>::Batch;
    const EVENT_RANK: usize = 1;
    const NAME: &'static str = "MultivariateNormalDiag";

    fn shape(&self) -> Shape {
        self.normal.shape()
    }
    fn device(&self) -> Device {
        self.normal.device()
    }
    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        self.normal.log_prob_summed(value, DV - 1, 1)
    }
    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.normal.sample_with_shape(sample_shape)
    }
    fn detach(&self) -> Self {
        Self {
            normal: self.normal.detach(),
        }
    }
    fn validate(&self) -> Result<()> {
        self.normal.validate().map_err(|e| match e {
            Error::InvalidParameter {
                parameter,
                expected,
                value,
                index,
                ..
            } => Error::InvalidParameter {
                distribution: "MultivariateNormalDiag",
                parameter: if parameter == "scale" {
                    "scale_diag"
                } else {
                    parameter
                },
                expected,
                value,
                index,
            },
            other => other,
        })
    }
    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        self.normal.check_support(value)
    }
}

impl<const D: usize> Rsample<D> for MultivariateNormalDiag<D>
where
    Rank<D>: OneLess<D>,
{
    /// Standard normal noise `ε ~ N(0, I)`.
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.normal.noise(sample_shape)
    }
    /// `μ + σ ⊙ ε`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        self.normal.rsample_with_noise(noise)
    }
}

impl<const D: usize> Entropy<D> for MultivariateNormalDiag<D>
where
    Rank<D>: OneLess<D>,
{
    fn entropy_keepdim(&self) -> Tensor<D> {
        sum_keep(self.normal.entropy_keepdim(), D - 1, D)
    }
}

impl<const D: usize> Moments<D> for MultivariateNormalDiag<D>
where
    Rank<D>: OneLess<D>,
{
    fn mean(&self) -> Tensor<D> {
        self.normal.mean()
    }
    fn variance(&self) -> Tensor<D> {
        self.normal.variance()
    }
    fn stddev(&self) -> Tensor<D> {
        self.normal.stddev()
    }
}

impl<const D: usize> Mode<D> for MultivariateNormalDiag<D>
where
    Rank<D>: OneLess<D>,
{
    fn mode(&self) -> Tensor<D> {
        self.normal.mode()
    }
}

/// `KL(p ‖ q) = Σₖ KL(N(μₚₖ, σₚₖ²) ‖ N(μ_qk, σ_qk²))`: the sum of the univariate closed forms.
/// `q` may have a lower rank (a prior of batch shape `[]`).
impl<const D: usize, const DQ: usize> KlDivergence<MultivariateNormalDiag<DQ>, D>
    for MultivariateNormalDiag<D>
where
    Rank<D>: OneLess<D>,
{
    fn kl_divergence_keepdim(&self, q: &MultivariateNormalDiag<DQ>) -> Tensor<D> {
        sum_keep(self.normal.kl_divergence_keepdim(&q.normal), D - 1, D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_this_distribution_and_its_parameters() {
        let device = Device::flex();
        let e = MultivariateNormalDiag::<2>::try_new(
            Tensor::zeros([2, 3], &device),
            Tensor::ones([2, 4], &device),
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("MultivariateNormalDiag")
                && msg.contains("scale_diag")
                && msg.contains("[2, 4]"),
            "{msg}"
        );
        let bad = MultivariateNormalDiag::<1>::new(
            Tensor::zeros([2], &device),
            Tensor::from_floats([1.0, 0.0], &device),
        );
        let msg = bad.validate().unwrap_err().to_string();
        assert!(
            msg.contains("scale_diag") && msg.contains("element 1"),
            "{msg}"
        );
    }

    #[test]
    fn log_prob_matches_sum_of_univariate() {
        let device = Device::flex();
        let d = MultivariateNormalDiag::<1>::new(
            Tensor::from_floats([0.0, 1.0, -1.0], &device),
            Tensor::from_floats([1.0, 2.0, 0.5], &device),
        );
        let lp: Vec<f64> = d
            .log_prob(Tensor::from_floats([0.1, 0.2, 0.3], &device))
            .into_data()
            .iter::<f64>()
            .collect();
        let want: f64 = [(0.1f64, 0.0f64, 1.0f64), (0.2, 1.0, 2.0), (0.3, -1.0, 0.5)]
            .iter()
            .map(|(x, m, s)| {
                -0.5 * ((x - m) / s).powi(2) - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
            })
            .sum();
        assert_eq!(lp.len(), 1);
        assert!((lp[0] - want).abs() < 1e-5, "{} vs {want}", lp[0]);
    }
}
