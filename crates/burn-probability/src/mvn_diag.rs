//! The multivariate Normal with diagonal covariance.

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{Distribution, Entropy, Mode, Moments, Rsample};
use crate::error::Result;
use crate::independent::Independent;
use crate::kl::KlDivergence;
use crate::normal::Normal;

/// A batch of multivariate Normals `N(μ, diag(σ²))` over `ℝᴷ`, the last dimension of the
/// parameters being the event (`K`): parameters of rank `D`, batch rank `DB = D − 1`.
///
/// # Density function
/// ```text
/// ln p(x) = Σₖ [ −½ ((xₖ − μₖ) / σₖ)² − ln σₖ ] − (K/2) ln 2π
/// ```
/// Entropy `K (½ + ½ ln 2π) + Σₖ ln σₖ`. Mean and mode `μ`, variance `σ²` (the diagonal of the
/// covariance). Reparameterized sampling `x = μ + σ ⊙ ε`, `ε ~ N(0, I)`.
///
/// Equivalent to `Independent(Normal(μ, σ), 1)`, which it wraps (see [`Self::as_independent`]);
/// TFP's `MultivariateNormalDiag(loc, scale_diag)`.
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
/// let q: MultivariateNormalDiag<2, 1> = MultivariateNormalDiag::new(loc, scale_diag)?;
/// let prior = MultivariateNormalDiag::standard([1, 2], &device);
/// let z = q.rsample();                        // [32, 2]
/// let kl = kl_divergence(&q, &prior);         // [32]
/// assert_eq!(kl.dims(), [32]);
/// # let _ = z;
/// # Ok::<(), burn_probability::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct MultivariateNormalDiag<const D: usize, const DB: usize> {
    inner: Independent<Normal<D>, DB>,
}

impl<const D: usize, const DB: usize> MultivariateNormalDiag<D, DB> {
    /// `N(loc, diag(scale_diag²))`; `loc` and `scale_diag` broadcast; their last dimension is
    /// the event.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) naming both shapes, or
    /// [`Error::RankMismatch`](crate::Error::RankMismatch) if `DB ≠ D − 1`.
    pub fn new(loc: Tensor<D>, scale_diag: Tensor<D>) -> Result<Self> {
        let normal =
            Normal::new(loc, scale_diag).map_err(|e| rename(e, "MultivariateNormalDiag"))?;
        Ok(Self {
            inner: Independent::new_in("MultivariateNormalDiag", normal, 1)?,
        })
    }

    /// The standard multivariate normal `N(0, I)` with the given shape (`batch ++ [K]`).
    ///
    /// # Panics
    /// If `DB ≠ D − 1`.
    pub fn standard(shape: [usize; D], device: &Device) -> Self {
        let normal = Normal::standard(shape, device);
        Self {
            inner: Independent::new_in("MultivariateNormalDiag", normal, 1)
                .unwrap_or_else(|e| panic!("{e}")),
        }
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The mean `μ`.
    pub fn loc(&self) -> &Tensor<D> {
        self.inner.base().loc()
    }

    /// The per-coordinate standard deviations `σ`.
    pub fn scale_diag(&self) -> &Tensor<D> {
        self.inner.base().scale()
    }

    /// The same distribution as `Independent(Normal(μ, σ), 1)`.
    pub fn as_independent(&self) -> &Independent<Normal<D>, DB> {
        &self.inner
    }
}

fn rename(e: crate::Error, name: &'static str) -> crate::Error {
    match e {
        crate::Error::ShapeMismatch {
            left_name,
            left,
            right,
            ..
        } => crate::Error::ShapeMismatch {
            context: name,
            left_name,
            left,
            right_name: "scale_diag",
            right,
        },
        other => other,
    }
}

impl<const D: usize, const DB: usize> Distribution<D> for MultivariateNormalDiag<D, DB> {
    type Batch = Tensor<DB>;
    const EVENT_RANK: usize = 1;
    const NAME: &'static str = "MultivariateNormalDiag";

    fn shape(&self) -> Shape {
        self.inner.shape()
    }
    fn device(&self) -> Device {
        self.inner.device()
    }
    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        self.inner.log_prob_keepdim(value)
    }
    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.inner.sample_with_shape(sample_shape)
    }
    fn detach(&self) -> Self {
        Self {
            inner: self.inner.detach(),
        }
    }
    fn validate(&self) -> Result<()> {
        self.inner.base().validate().map_err(|e| match e {
            crate::Error::InvalidParameter {
                parameter: "scale",
                expected,
                value,
                index,
                ..
            } => crate::Error::InvalidParameter {
                distribution: "MultivariateNormalDiag",
                parameter: "scale_diag",
                expected,
                value,
                index,
            },
            crate::Error::InvalidParameter {
                parameter,
                expected,
                value,
                index,
                ..
            } => crate::Error::InvalidParameter {
                distribution: "MultivariateNormalDiag",
                parameter,
                expected,
                value,
                index,
            },
            other => other,
        })
    }
    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        self.inner.check_support(value)
    }
}

impl<const D: usize, const DB: usize> Rsample<D> for MultivariateNormalDiag<D, DB> {
    /// Standard normal noise `ε ~ N(0, I)`.
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.inner.noise(sample_shape)
    }
    /// `μ + σ ⊙ ε`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        self.inner.rsample_with_noise(noise)
    }
}

impl<const D: usize, const DB: usize> Entropy<D> for MultivariateNormalDiag<D, DB> {
    fn entropy_keepdim(&self) -> Tensor<D> {
        self.inner.entropy_keepdim()
    }
}

impl<const D: usize, const DB: usize> Moments<D> for MultivariateNormalDiag<D, DB> {
    fn mean(&self) -> Tensor<D> {
        self.inner.mean()
    }
    fn variance(&self) -> Tensor<D> {
        self.inner.variance()
    }
    fn stddev(&self) -> Tensor<D> {
        self.inner.stddev()
    }
}

impl<const D: usize, const DB: usize> Mode<D> for MultivariateNormalDiag<D, DB> {
    fn mode(&self) -> Tensor<D> {
        self.inner.mode()
    }
}

/// `KL(p ‖ q) = Σₖ KL(N(μₚₖ, σₚₖ²) ‖ N(μ_qk, σ_qk²))`: the sum of the univariate closed forms.
impl<const D: usize, const DB: usize> KlDivergence<MultivariateNormalDiag<D, DB>, D>
    for MultivariateNormalDiag<D, DB>
{
    fn kl_divergence_keepdim(&self, q: &MultivariateNormalDiag<D, DB>) -> Tensor<D> {
        self.inner.kl_divergence_keepdim(&q.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_this_distribution_and_its_parameters() {
        let device = Device::flex();
        let e = MultivariateNormalDiag::<2, 1>::new(
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
        let e = MultivariateNormalDiag::<2, 0>::new(
            Tensor::zeros([2, 3], &device),
            Tensor::ones([2, 3], &device),
        )
        .unwrap_err();
        assert!(e.to_string().contains("MultivariateNormalDiag"), "{e}");
        let bad = MultivariateNormalDiag::<1, 0>::new(
            Tensor::zeros([2], &device),
            Tensor::from_floats([1.0, 0.0], &device),
        )
        .unwrap();
        let msg = bad.validate().unwrap_err().to_string();
        assert!(
            msg.contains("scale_diag") && msg.contains("element 1"),
            "{msg}"
        );
    }

    #[test]
    fn log_prob_matches_sum_of_univariate() {
        let device = Device::flex();
        let d = MultivariateNormalDiag::<1, 0>::new(
            Tensor::from_floats([0.0, 1.0, -1.0], &device),
            Tensor::from_floats([1.0, 2.0, 0.5], &device),
        )
        .unwrap();
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
