//! The multivariate Normal with a full covariance, given by its lower Cholesky factor.

use burn::tensor::{Device, Shape, Slice, Tensor};

use crate::distribution::{
    Distribution, Entropy, Mode, Moments, OneLess, Rank, Rsample, check_values, lift, sample_dims,
};
use crate::error::{Error, Result};
use crate::fused;
use crate::kl::KlDivergence;
use crate::math::{LN_2PI, try_cholesky};
use crate::noise;

/// A batch of multivariate Normal distributions `N(μ, L Lᵀ)` over `K` coordinates (event
/// shape `[K]`), with `L` lower triangular with a positive diagonal (`scale_tril`;
/// `torch.distributions.MultivariateNormal(loc, scale_tril=L)`,
/// `tfd.MultivariateNormalTriL`): correlated Gaussian posteriors and priors.
///
/// # Density function
/// ```text
/// ln p(x) = −½‖z‖² − Σ_k ln L_kk − (K/2) ln 2π,      L z = x − μ
/// ```
/// `z` by forward substitution (never forming `Σ⁻¹`). Mean `μ`, covariance `L Lᵀ` (variance
/// its diagonal `Σ_j L_kj²`), mode `μ`, entropy `(K/2)(1 + ln 2π) + Σ_k ln L_kk`.
///
/// A value of shape `sample dims ++ batch shape ++ [K]` (and noise of that shape) is scored
/// (and transformed) one row per batch element: on float32 `flex` tensors by the fused
/// kernels of `burn-flex-kernels` (one pass per matrix, forward and backward), otherwise by
/// burn operations (the substitution one column of `L` at a time; the sample as one batched
/// `matmul`). Values whose batch dimensions broadcast against the distribution's take the burn
/// operations.
///
/// Only the lower triangle of `scale_tril` is read (the entries above the diagonal get no
/// gradient). The parameters are stored as given, with the matrix flattened row-major into the
/// last dimension (`[..., K·K]`), so that every computation stays at the distribution's rank;
/// [`Self::scale_tril`] gives the lower-triangular matrix back.
///
/// Reparameterized sampling: `x = μ + L ε`, `ε` standard normal.
///
/// # KL divergence
/// ```text
/// KL(p ‖ q) = Σ_k ln Lq_kk − Σ_k ln Lp_kk + ½(‖Lq⁻¹ Lp‖²_F + ‖Lq⁻¹(μq − μp)‖² − K)
/// ```
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Distribution, MultivariateNormalTriL};
///
/// let device = Device::flex();
/// let loc = Tensor::<1>::from_floats([1.0, -1.0], &device);
/// // Σ = [[4, 2], [2, 5]] = L Lᵀ with L = [[2, 0], [1, 2]].
/// let cov = Tensor::<2>::from_floats([[4.0, 2.0], [2.0, 5.0]], &device);
/// let d = MultivariateNormalTriL::from_covariance(loc, cov);
/// let lp: f32 = d.log_prob(Tensor::<1>::from_floats([1.0, -1.0], &device)).into_scalar();
/// // At the mean: −ln(2π) − ½ ln det Σ, det Σ = 16.
/// assert!((lp - (-(2.0 * std::f32::consts::PI).ln() - 0.5 * 16f32.ln())).abs() < 1e-5);
/// ```
#[derive(Clone, Debug)]
pub struct MultivariateNormalTriL<const D: usize> {
    loc: Tensor<D>,
    /// `[..., K·K]`: the rows of `L` as given; the entries above the diagonal are never read.
    tril: Tensor<D>,
    k: usize,
}

impl<const D: usize> MultivariateNormalTriL<D> {
    /// `N(loc, L Lᵀ)` from `loc` (`[..., K]`) and `scale_tril` (`[..., K, K]`, rank `D + 1`);
    /// the batch dimensions broadcast. The upper triangle of `scale_tril` is ignored.
    ///
    /// # Panics
    /// If the ranks or shapes do not fit; the message is [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new<const DS: usize>(loc: Tensor<D>, scale_tril: Tensor<DS>) -> Self {
        Self::try_new(loc, scale_tril).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::RankMismatch`] if `scale_tril`'s rank is not `D + 1`; [`Error::ShapeMismatch`]
    /// if it is not `[..., K, K]` for `loc`'s `K` or the batch dimensions do not broadcast.
    pub fn try_new<const DS: usize>(loc: Tensor<D>, scale_tril: Tensor<DS>) -> Result<Self> {
        const CONTEXT: &str = "MultivariateNormalTriL";
        if DS != D + 1 || D == 0 {
            return Err(Error::RankMismatch {
                context: CONTEXT,
                argument: "scale_tril",
                expected: format!("{} (loc's rank {D} + 1)", D + 1),
                actual: DS,
            });
        }
        let ld = loc.dims();
        let sd = scale_tril.dims();
        let k = ld[D - 1];
        let mismatch = || Error::ShapeMismatch {
            context: CONTEXT,
            left_name: "loc",
            left: ld.to_vec(),
            right_name: "scale_tril",
            right: sd.to_vec(),
        };
        if sd[DS - 1] != k || sd[DS - 2] != k {
            return Err(mismatch());
        }
        let mut batch = [0usize; D];
        for i in 0..D - 1 {
            let (a, b) = (ld[i], sd[i]);
            batch[i] = match (a, b) {
                _ if a == b => a,
                (1, b) => b,
                (a, 1) => a,
                _ => return Err(mismatch()),
            };
        }
        batch[D - 1] = k;
        let mut flat = batch;
        flat[D - 1] = k * k;
        let tril = scale_tril.reshape(with_last::<D>(&sd, k * k));
        Ok(Self {
            loc: loc.expand(batch),
            tril: tril.expand(flat),
            k,
        })
    }

    /// `N(loc, Σ)` from the covariance (`[..., K, K]`, symmetric positive definite): its
    /// Cholesky factor is the scale ([`crate::math::cholesky`]).
    ///
    /// # Panics
    /// If the shapes do not fit or a covariance is not positive definite; the message is
    /// [`Self::try_from_covariance`]'s error.
    #[track_caller]
    pub fn from_covariance<const DS: usize>(loc: Tensor<D>, covariance: Tensor<DS>) -> Self {
        Self::try_from_covariance(loc, covariance).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::from_covariance`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Self::try_new`]'s, and [`Error::InvalidArgument`] naming `covariance` and the first
    /// matrix that is not positive definite.
    pub fn try_from_covariance<const DS: usize>(
        loc: Tensor<D>,
        covariance: Tensor<DS>,
    ) -> Result<Self> {
        Self::try_new(loc, try_cholesky(covariance, "covariance")?)
    }

    /// [`Distribution::validate`] as a builder step.
    pub fn validated(self) -> Result<Self>
    where
        Rank<D>: OneLess<D>,
    {
        self.validate()?;
        Ok(self)
    }

    /// The mean `μ`, `[..., K]`.
    pub fn loc(&self) -> &Tensor<D> {
        &self.loc
    }

    /// The lower Cholesky factor `L`, `[..., K, K]` (rank `D + 1`), zero above the diagonal.
    ///
    /// # Panics
    /// If `DS` is not `D + 1`.
    pub fn scale_tril<const DS: usize>(&self) -> Tensor<DS> {
        assert_eq!(DS, D + 1, "scale_tril has rank D + 1 = {}", D + 1);
        let mut dims = [0usize; DS];
        dims[..D - 1].copy_from_slice(&self.tril.dims()[..D - 1]);
        dims[DS - 2] = self.k;
        dims[DS - 1] = self.k;
        self.tril.clone().reshape(dims).tril(0)
    }

    /// The covariance `L Lᵀ`, `[..., K, K]` (rank `D + 1`).
    ///
    /// # Panics
    /// If `DS` is not `D + 1`.
    pub fn covariance<const DS: usize>(&self) -> Tensor<DS> {
        let l = self.scale_tril::<DS>();
        l.clone().matmul(l.swap_dims(DS - 1, DS - 2))
    }

    /// Row `i` of `L` up to and including the diagonal, `[..., i + 1]`, lifted to rank `DV`.
    fn row<const DV: usize>(&self, i: usize) -> Tensor<DV> {
        lift::<D, DV>(&self.tril.clone().narrow(D - 1, i * self.k, i + 1))
    }

    /// Column `j` of `L` from the diagonal down, `[..., K − j]`: the entries `L_jj, L_(j+1)j,
    /// …` (a strided view of the rows).
    fn column_below(&self, j: usize) -> Tensor<D> {
        let k = self.k;
        let start = (j * k + j) as isize;
        self.tril
            .clone()
            .slice_dim(D - 1, Slice::new(start, None, k as isize))
    }

    /// The diagonal of `L`, `[..., K]` (a strided view of the rows).
    fn diagonal(&self) -> Tensor<D> {
        let step = (self.k + 1) as isize;
        self.tril
            .clone()
            .slice_dim(D - 1, Slice::new(0, None, step))
    }

    /// `L⁻¹ d` for `d` of shape `[..., K]` (rank `DV`), by forward substitution one column of
    /// `L` at a time: `z_j = r_j / L_jj`, then the rows below lose `L_ij z_j`, so that each step
    /// works on the `K − j` rows still unsolved.
    fn solve<const DV: usize>(&self, d: Tensor<DV>) -> Tensor<DV> {
        let k = self.k;
        let mut rest = d;
        let mut z: Vec<Tensor<DV>> = Vec::with_capacity(k);
        for j in 0..k {
            let column = lift::<D, DV>(&self.column_below(j));
            let zj = rest.clone().narrow(DV - 1, 0, 1) / column.clone().narrow(DV - 1, 0, 1);
            if j + 1 < k {
                let below = k - j - 1;
                rest = rest.narrow(DV - 1, 1, below) - column.narrow(DV - 1, 1, below) * zj.clone();
            }
            z.push(zj);
        }
        Tensor::cat(z, DV - 1)
    }

    /// `(S, B)` when `dims` (of rank `DV`) is sample dimensions followed by exactly this
    /// distribution's shape (batch and `K`): `S` the product of the sample dimensions, `B` that
    /// of the batch dimensions, the rows and matrices of the batched kernels.
    fn rows<const DV: usize>(&self, dims: &[usize; DV]) -> Option<(usize, usize)> {
        let own = self.loc.dims();
        if DV < D || dims[DV - D..] != own[..] {
            return None;
        }
        Some((
            dims[..DV - D].iter().product(),
            own[..D - 1].iter().product(),
        ))
    }

    /// The same distributions with the `B` batch elements in one dimension: `loc` `[B, K]`,
    /// `tril` `[B, K·K]`.
    fn flattened(&self, b: usize) -> MultivariateNormalTriL<2> {
        let k = self.k;
        MultivariateNormalTriL {
            loc: self.loc.clone().reshape([b, k]),
            tril: self.tril.clone().reshape([b, k * k]),
            k,
        }
    }

    /// The log-density by burn operations, for any value that broadcasts against the batch.
    fn log_prob_composite<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let z = self.solve(value - lift::<D, DV>(&self.loc));
        let log_det = lift::<D, DV>(&self.diagonal().log().sum_dim(D - 1));
        z.square().sum_dim(DV - 1) * -0.5 - log_det - 0.5 * self.k as f64 * LN_2PI
    }
}

/// The dimensions of a `[..., K, K]` tensor of rank `D + 1` with the last two merged into
/// `last`.
fn with_last<const D: usize>(dims: &[usize], last: usize) -> [usize; D] {
    let mut out = [0usize; D];
    out[..D - 1].copy_from_slice(&dims[..D - 1]);
    out[D - 1] = last;
    out
}

impl<const D: usize> Distribution<D> for MultivariateNormalTriL<D>
where
    Rank<D>: OneLess<D>,
{
    type Batch = <Rank<D> as OneLess<D>>::Batch;
    const EVENT_RANK: usize = 1;
    const NAME: &'static str = "MultivariateNormalTriL";

    fn shape(&self) -> Shape {
        self.loc.shape()
    }

    fn device(&self) -> Device {
        self.loc.device()
    }

    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        let k = self.k;
        let dims = value.dims();
        let Some((s, b)) = self.rows(&dims) else {
            return self.log_prob_composite(value);
        };
        let flat = self.flattened(b);
        let tril = flat.tril.clone().reshape([b, k, k]);
        let lp = match fused::tril_log_prob(flat.loc.clone(), tril, value.reshape([s, b, k])) {
            Ok(lp) => lp.unsqueeze_dim::<3>(2) - 0.5 * k as f64 * LN_2PI,
            Err((_, _, x)) => flat.log_prob_composite(x),
        };
        let mut out = dims;
        out[DV - 1] = 1;
        lp.reshape(out)
    }

    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.detach().rsample_with_shape(sample_shape)
    }

    fn detach(&self) -> Self {
        Self {
            loc: self.loc.clone().detach(),
            tril: self.tril.clone().detach(),
            k: self.k,
        }
    }

    fn validate(&self) -> Result<()> {
        crate::distribution::check_param(
            "MultivariateNormalTriL",
            "loc",
            "finite",
            &self.loc,
            f64::is_finite,
        )?;
        crate::distribution::check_param(
            "MultivariateNormalTriL",
            "scale_tril (its diagonal)",
            "finite and > 0",
            &self.diagonal(),
            |v| v.is_finite() && v > 0.0,
        )
    }

    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        check_values(
            "MultivariateNormalTriL",
            "finite vectors",
            value,
            f64::is_finite,
        )
    }
}

impl<const D: usize> Rsample<D> for MultivariateNormalTriL<D>
where
    Rank<D>: OneLess<D>,
{
    /// Standard normal `ε`, shape `sample_shape ++ shape()`.
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        let dims = sample_dims::<DO>("MultivariateNormalTriL::noise", sample_shape, &self.shape());
        noise::standard_normal(dims, &self.device())
    }

    /// `μ + L ε`.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        let k = self.k;
        let dims = noise.dims();
        if let Some((s, b)) = self.rows(&dims) {
            let flat = self.flattened(b);
            let tril = flat.tril.reshape([b, k, k]);
            let x = match fused::tril_affine(flat.loc, tril, noise.reshape([s, b, k])) {
                Ok(x) => x,
                // (L ε)ᵀ = εᵀ Lᵀ for all S draws of each matrix: one batched product,
                // [B, S, K] × [B, K, K].
                Err((loc, tril, eps)) => {
                    let product = eps.swap_dims(0, 1).matmul(tril.tril(0).swap_dims(1, 2));
                    loc.unsqueeze::<3>() + product.swap_dims(0, 1)
                }
            };
            return x.reshape(dims);
        }
        let parts = (0..self.k)
            .map(|i| (self.row::<DO>(i) * noise.clone().narrow(DO - 1, 0, i + 1)).sum_dim(DO - 1))
            .collect();
        lift::<D, DO>(&self.loc) + Tensor::cat(parts, DO - 1)
    }
}

impl<const D: usize> Entropy<D> for MultivariateNormalTriL<D>
where
    Rank<D>: OneLess<D>,
{
    fn entropy_keepdim(&self) -> Tensor<D> {
        self.diagonal().log().sum_dim(D - 1) + 0.5 * self.k as f64 * (1.0 + LN_2PI)
    }
}

impl<const D: usize> Moments<D> for MultivariateNormalTriL<D>
where
    Rank<D>: OneLess<D>,
{
    fn mean(&self) -> Tensor<D> {
        self.loc.clone()
    }

    /// The diagonal of `L Lᵀ`: `Σ_j L_kj²`.
    fn variance(&self) -> Tensor<D> {
        let parts = (0..self.k)
            .map(|i| self.row::<D>(i).square().sum_dim(D - 1))
            .collect();
        Tensor::cat(parts, D - 1)
    }
}

impl<const D: usize> Mode<D> for MultivariateNormalTriL<D>
where
    Rank<D>: OneLess<D>,
{
    fn mode(&self) -> Tensor<D> {
        self.loc.clone()
    }
}

/// The closed form of the type's documentation; `Lq⁻¹ Lp` one column of `Lp` at a time.
impl<const D: usize, const DQ: usize> KlDivergence<MultivariateNormalTriL<DQ>, D>
    for MultivariateNormalTriL<D>
where
    Rank<D>: OneLess<D>,
{
    fn kl_divergence_keepdim(&self, q: &MultivariateNormalTriL<DQ>) -> Tensor<D> {
        let k = self.k;
        // q's rows and diagonal lifted to p's rank.
        let q_lifted = MultivariateNormalTriL::<D> {
            loc: lift::<DQ, D>(&q.loc),
            tril: lift::<DQ, D>(&q.tril),
            k,
        };
        let mut frobenius: Option<Tensor<D>> = None;
        for c in 0..k {
            // Column c of Lp: entries (i, c) for i ≥ c, zero above.
            let below = self.column_below(c);
            let column = if c == 0 {
                below
            } else {
                let mut dims = below.dims();
                dims[D - 1] = c;
                Tensor::cat(vec![Tensor::zeros(dims, &below.device()), below], D - 1)
            };
            let solved = q_lifted.solve(column);
            let s = solved.square().sum_dim(D - 1);
            frobenius = Some(match frobenius {
                None => s,
                Some(f) => f + s,
            });
        }
        let mahalanobis = q_lifted
            .solve(q_lifted.loc.clone() - self.loc.clone())
            .square()
            .sum_dim(D - 1);
        let log_det_q = q_lifted.diagonal().log().sum_dim(D - 1);
        let log_det_p = self.diagonal().log().sum_dim(D - 1);
        log_det_q - log_det_p + (frobenius.expect("K ≥ 1") + mahalanobis - k as f64) * 0.5
    }
}

/// A batch of multivariate Normal distributions with a low-rank-plus-diagonal covariance,
/// `N(μ, W Wᵀ + diag(d))` over `K` coordinates, `W` the `K × R` `cov_factor` and `d > 0` the
/// `cov_diag` (torch's `LowRankMultivariateNormal` parameterization; TFP's
/// `MultivariateNormalDiagPlusLowRankCovariance`): a correlated Gaussian with `K·(R + 1)`
/// parameters.
///
/// The covariance is formed and factored once ([`crate::math::cholesky`]) at construction;
/// every method is then [`MultivariateNormalTriL`]'s (log-density, entropy, moments,
/// reparameterized sampling `μ + L ε`, which has the same distribution as torch's
/// `μ + W ε₁ + √d ε₂`). Meant for the small `K` of latent spaces: the factorization costs
/// `O(K³)` operations of burn.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::{Distribution, LowRankMultivariateNormal, Moments};
///
/// let device = Device::flex();
/// let loc = Tensor::<1>::zeros([2], &device);
/// let w = Tensor::<2>::from_floats([[1.0], [2.0]], &device);          // K = 2, R = 1
/// let d = LowRankMultivariateNormal::new(loc, w, Tensor::<1>::ones([2], &device));
/// let var: Vec<f32> = d.variance().into_data().iter::<f32>().collect();
/// assert!((var[0] - 2.0).abs() < 1e-6 && (var[1] - 5.0).abs() < 1e-5); // diag(W Wᵀ) + 1
/// ```
#[derive(Clone, Debug)]
pub struct LowRankMultivariateNormal<const D: usize> {
    full: MultivariateNormalTriL<D>,
    /// `[..., K·R]`, the rows of `W`.
    cov_factor: Tensor<D>,
    cov_diag: Tensor<D>,
    rank: usize,
}

impl<const D: usize> LowRankMultivariateNormal<D> {
    /// `N(loc, W Wᵀ + diag(cov_diag))` from `loc` (`[..., K]`), `cov_factor` (`[..., K, R]`,
    /// rank `D + 1`) and `cov_diag` (`[..., K]`, positive).
    ///
    /// # Panics
    /// If the shapes do not fit or the covariance is not positive definite (a `cov_diag`
    /// entry not positive); the message is [`Self::try_new`]'s error.
    #[track_caller]
    pub fn new<const DS: usize>(
        loc: Tensor<D>,
        cov_factor: Tensor<DS>,
        cov_diag: Tensor<D>,
    ) -> Self {
        Self::try_new(loc, cov_factor, cov_diag).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::RankMismatch`] or [`Error::ShapeMismatch`] naming `cov_factor` or `cov_diag`;
    /// [`Error::InvalidArgument`] naming the covariance when it is not positive definite.
    pub fn try_new<const DS: usize>(
        loc: Tensor<D>,
        cov_factor: Tensor<DS>,
        cov_diag: Tensor<D>,
    ) -> Result<Self> {
        const CONTEXT: &str = "LowRankMultivariateNormal";
        if DS != D + 1 || D == 0 {
            return Err(Error::RankMismatch {
                context: CONTEXT,
                argument: "cov_factor",
                expected: format!("{} (loc's rank {D} + 1)", D + 1),
                actual: DS,
            });
        }
        let (ld, wd, dd) = (loc.dims(), cov_factor.dims(), cov_diag.dims());
        let k = ld[D - 1];
        if wd[DS - 2] != k {
            return Err(Error::ShapeMismatch {
                context: CONTEXT,
                left_name: "loc",
                left: ld.to_vec(),
                right_name: "cov_factor",
                right: wd.to_vec(),
            });
        }
        if dd[D - 1] != k {
            return Err(Error::ShapeMismatch {
                context: CONTEXT,
                left_name: "loc",
                left: ld.to_vec(),
                right_name: "cov_diag",
                right: dd.to_vec(),
            });
        }
        let rank = wd[DS - 1];
        let device = loc.device();
        let mut eye_dims = [1usize; DS];
        eye_dims[DS - 2] = k;
        eye_dims[DS - 1] = k;
        let eye = Tensor::<2>::eye(k, &device).reshape(eye_dims);
        let covariance = cov_factor
            .clone()
            .matmul(cov_factor.clone().swap_dims(DS - 1, DS - 2))
            + cov_diag.clone().unsqueeze_dim::<DS>(D) * eye;
        let full = MultivariateNormalTriL::try_new(
            loc,
            crate::math::try_cholesky(
                covariance,
                "covariance (cov_factor·cov_factorᵀ + diag(cov_diag))",
            )?,
        )?;
        Ok(Self {
            full,
            cov_factor: cov_factor.reshape(with_last::<D>(&wd, k * rank)),
            cov_diag,
            rank,
        })
    }

    /// The mean `μ`.
    pub fn loc(&self) -> &Tensor<D> {
        self.full.loc()
    }

    /// The factor `W`, `[..., K, R]` (rank `D + 1`).
    ///
    /// # Panics
    /// If `DS` is not `D + 1`.
    pub fn cov_factor<const DS: usize>(&self) -> Tensor<DS> {
        assert_eq!(DS, D + 1, "cov_factor has rank D + 1 = {}", D + 1);
        let dims = self.cov_factor.dims();
        let mut out = [0usize; DS];
        out[..D - 1].copy_from_slice(&dims[..D - 1]);
        out[DS - 2] = self.full.k;
        out[DS - 1] = self.rank;
        self.cov_factor.clone().reshape(out)
    }

    /// The diagonal `d`, `[..., K]`.
    pub fn cov_diag(&self) -> &Tensor<D> {
        &self.cov_diag
    }

    /// The same distribution as a [`MultivariateNormalTriL`] (its Cholesky factor).
    pub fn as_tril(&self) -> &MultivariateNormalTriL<D> {
        &self.full
    }
}

impl<const D: usize> Distribution<D> for LowRankMultivariateNormal<D>
where
    Rank<D>: OneLess<D>,
{
    type Batch = <Rank<D> as OneLess<D>>::Batch;
    const EVENT_RANK: usize = 1;
    const NAME: &'static str = "LowRankMultivariateNormal";

    fn shape(&self) -> Shape {
        self.full.shape()
    }
    fn device(&self) -> Device {
        self.full.device()
    }
    fn log_prob_keepdim<const DV: usize>(&self, value: Tensor<DV>) -> Tensor<DV> {
        self.full.log_prob_keepdim(value)
    }
    fn sample_with_shape<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.full.sample_with_shape(sample_shape)
    }
    fn detach(&self) -> Self {
        Self {
            full: self.full.detach(),
            cov_factor: self.cov_factor.clone().detach(),
            cov_diag: self.cov_diag.clone().detach(),
            rank: self.rank,
        }
    }
    fn validate(&self) -> Result<()> {
        crate::distribution::check_param(
            "LowRankMultivariateNormal",
            "cov_diag",
            "finite and > 0",
            &self.cov_diag,
            |v| v.is_finite() && v > 0.0,
        )?;
        self.full.validate()
    }
    fn check_support<const DV: usize>(&self, value: &Tensor<DV>) -> Result<()> {
        self.full.check_support(value)
    }
}

impl<const D: usize> Rsample<D> for LowRankMultivariateNormal<D>
where
    Rank<D>: OneLess<D>,
{
    /// Standard normal `ε`, shape `sample_shape ++ shape()`.
    fn noise<const DO: usize>(&self, sample_shape: &[usize]) -> Tensor<DO> {
        self.full.noise(sample_shape)
    }
    /// `μ + L ε`, `L` the Cholesky factor of the covariance.
    fn rsample_with_noise<const DO: usize>(&self, noise: Tensor<DO>) -> Tensor<DO> {
        self.full.rsample_with_noise(noise)
    }
}

impl<const D: usize> Entropy<D> for LowRankMultivariateNormal<D>
where
    Rank<D>: OneLess<D>,
{
    fn entropy_keepdim(&self) -> Tensor<D> {
        self.full.entropy_keepdim()
    }
}

impl<const D: usize> Moments<D> for LowRankMultivariateNormal<D>
where
    Rank<D>: OneLess<D>,
{
    fn mean(&self) -> Tensor<D> {
        self.full.mean()
    }
    /// `Σ_r W_kr² + d_k`.
    fn variance(&self) -> Tensor<D> {
        let k = self.full.k;
        let parts = (0..k)
            .map(|i| {
                self.cov_factor
                    .clone()
                    .narrow(D - 1, i * self.rank, self.rank)
                    .square()
                    .sum_dim(D - 1)
            })
            .collect();
        Tensor::cat(parts, D - 1) + self.cov_diag.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MultivariateNormalDiag;

    fn dev() -> Device {
        Device::flex()
    }

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    #[test]
    fn a_diagonal_factor_is_the_diagonal_normal() {
        let loc = Tensor::<2>::from_floats([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]], &dev());
        let scale = Tensor::<2>::from_floats([[1.0, 0.3, 2.0], [0.1, 5.0, 1.0]], &dev());
        let tril =
            scale.clone().unsqueeze_dim::<3>(2) * Tensor::<2>::eye(3, &dev()).unsqueeze::<3>();
        let full = MultivariateNormalTriL::new(loc.clone(), tril);
        let diag = MultivariateNormalDiag::new(loc, scale);
        let x = Tensor::<2>::from_floats([[0.0, 1.0, -1.0], [0.3, -2.0, 0.5]], &dev());
        for (a, b) in vals(full.log_prob(x.clone()))
            .iter()
            .zip(vals(diag.log_prob(x)))
        {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        for (a, b) in vals(full.entropy()).iter().zip(vals(diag.entropy())) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let kl = vals(crate::kl_divergence(&full, &full));
        assert!(kl.iter().all(|v| v.abs() < 1e-5), "{kl:?}");
    }

    #[test]
    fn shape_and_rank_errors_name_the_arguments() {
        let loc = Tensor::<1>::zeros([3], &dev());
        let e =
            MultivariateNormalTriL::<1>::try_new(loc.clone(), Tensor::<2>::zeros([3, 2], &dev()))
                .unwrap_err()
                .to_string();
        assert!(e.contains("scale_tril") && e.contains("[3, 2]"), "{e}");
        let e = MultivariateNormalTriL::<1>::try_new(
            loc.clone(),
            Tensor::<3>::zeros([1, 3, 3], &dev()),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("scale_tril") && e.contains('2'), "{e}");
        let not_pd =
            Tensor::<2>::from_floats([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]], &dev());
        let e = MultivariateNormalTriL::try_from_covariance(loc, not_pd)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("covariance") && e.contains("positive definite"),
            "{e}"
        );
    }
}
