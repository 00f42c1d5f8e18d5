//! Bijectors: invertible, differentiable maps `y = f(x)` with a tractable log-determinant of
//! their Jacobian, the building blocks of [`TransformedDistribution`](crate::TransformedDistribution)
//! (TFP's `tfb`, torch's `torch.distributions.transforms`).
//!
//! Every map is written in burn operations, so it runs on every backend and is differentiable,
//! and in the forms that stay finite in float32 (see each bijector). The built-in ones are
//! element-wise (event rank 0): [`Exp`], [`Sigmoid`], [`Tanh`], [`Softplus`] and [`Affine`];
//! [`Chain`] composes two bijectors, and [`Bijector::then`] builds one; a `Vec` of bijectors of
//! one type is their composition too (a flow's stack of layers).
//!
//! # Shapes
//! The methods are generic over the rank `D` of their input, like
//! [`Distribution::log_prob_keepdim`](crate::Distribution::log_prob_keepdim): `x` and `y` have
//! any shape whose trailing dimensions broadcast against the bijector's parameters (if any).
//! The log-determinants are **keepdim** tensors: the last [`Bijector::EVENT_RANK`] dimensions
//! are summed and kept with size 1; for an element-wise bijector (event rank 0) the result has
//! the full broadcast shape of `x` and the parameters, one `ln |f′(xᵢ)|` per element.
//!
//! # Why `Chain<A, B>` and not a list of boxed bijectors
//! The methods are generic over the tensor rank, so [`Bijector`] is not object safe: a
//! `Vec<Box<dyn Bijector>>` cannot exist. A composition is the generic pair [`Chain<A, B>`]
//! instead (`A` applied first, torch's `ComposeTransform([A, B])` order; TFP's `tfb.Chain`
//! lists the same bijectors in reverse), nested for longer chains:
//! `Tanh.then(affine).then(Exp)` is `Chain<Chain<Tanh, Affine<1>>, Exp>`. Every call is then
//! resolved at compile time, and the chain's type says what it computes. A stack of layers of
//! one type, whose length is chosen at run time, is a `Vec<T>`, itself a [`Bijector`].
//!
//! # Example
//! ```
//! use burn::tensor::{Device, Tensor};
//! use burn_probability::bijector::{Affine, Bijector, Tanh};
//!
//! let device = Device::flex();
//! // y = 1 + 2 tanh(x): a squashed value in (−1, 3), as in a SAC policy.
//! let f = Tanh.then(Affine::new(Tensor::<1>::from_floats([1.0], &device), 2.0));
//! let x = Tensor::<2>::from_floats([[-0.5, 0.0, 3.0]], &device);
//! let y = f.forward(x.clone());
//! let back: Vec<f32> = f.inverse(y).into_data().iter::<f32>().collect();
//! assert!((back[2] - 3.0).abs() < 1e-4);
//! let ld: Vec<f32> = f.forward_log_det_jacobian(x).into_data().iter::<f32>().collect();
//! assert!((ld[1] - 2f32.ln()).abs() < 1e-6); // tanh′(0) = 1, times 2
//! ```

use burn::tensor::{Device, Shape, Tensor};

use crate::distribution::{Param, broadcast_params, broadcast_shapes, check_param, check_values};
use crate::distribution::{lift, sum_keep};
use crate::error::{Error, Result};
use crate::math::{expm1, log1p, logit, sigmoid, softplus};

const LN_2: f64 = core::f64::consts::LN_2;

/// An invertible, differentiable map `y = f(x)` with the log-determinant of its Jacobian.
///
/// See the [module documentation](self) for shapes and composition. Implement it with burn
/// operations; [`TransformedDistribution`](crate::TransformedDistribution) then gives the
/// density of `f(X)` for any base distribution of `X`.
///
/// # Formula
/// ```text
/// forward_log_det_jacobian(x) = ln |det ∂f(x)/∂x|          (summed over the event dims)
/// inverse_log_det_jacobian(y) = −forward_log_det_jacobian(f⁻¹(y))
/// ```
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::bijector::{Bijector, Exp};
///
/// let x = Tensor::<1>::from_floats([0.0, 1.0], &Device::flex());
/// let y = Exp.forward(x.clone());                           // [1, e]
/// let ildj: Vec<f32> = Exp.inverse_log_det_jacobian(y).into_data().iter::<f32>().collect();
/// assert!((ildj[1] + 1.0).abs() < 1e-6);                    // −ln e
/// assert_eq!(Exp::NAME, "Exp");
/// ```
pub trait Bijector: Clone + core::fmt::Debug + 'static {
    /// Number of trailing dimensions that form one event (0 for element-wise bijectors): the
    /// log-determinants are summed over them.
    const EVENT_RANK: usize;

    /// The bijector's name, used in error messages.
    const NAME: &'static str;

    /// `y = f(x)`.
    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D>;

    /// `x = f⁻¹(y)`.
    fn inverse<const D: usize>(&self, y: Tensor<D>) -> Tensor<D>;

    /// `ln |det ∂f(x)/∂x|`, with the last [`Self::EVENT_RANK`] dimensions summed and kept
    /// with size 1 (the full broadcast shape for an element-wise bijector).
    fn forward_log_det_jacobian<const D: usize>(&self, x: Tensor<D>) -> Tensor<D>;

    /// `ln |det ∂f⁻¹(y)/∂y| = −forward_log_det_jacobian(f⁻¹(y))`, keepdim like
    /// [`Self::forward_log_det_jacobian`].
    fn inverse_log_det_jacobian<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        -self.forward_log_det_jacobian(self.inverse(y))
    }

    /// `(f(x), ln |det ∂f(x)/∂x|)` together (distrax's `forward_and_log_det`), the
    /// log-determinant keepdim like [`Self::forward_log_det_jacobian`]. Bijectors whose map
    /// and log-determinant share work (a flow's network pass, a chain's intermediate values)
    /// compute both at once; the default calls the two methods.
    fn forward_and_log_det<const D: usize>(&self, x: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
        (self.forward(x.clone()), self.forward_log_det_jacobian(x))
    }

    /// The same bijector with its parameters detached from the autodiff graph.
    fn detach(&self) -> Self;

    /// Checks the parameter values (reads them to the host, so it is opt-in, as
    /// [`Distribution::validate`](crate::Distribution::validate)). Parameter-free bijectors
    /// have nothing to check.
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// Checks that every element of `y` lies in the image of the map (reads `y` to the host):
    /// an [`Error::OutsideSupport`] naming the bijector and its image.
    fn check_image<const D: usize>(&self, y: &Tensor<D>) -> Result<()>;

    /// Checks that the bijector's parameters broadcast against values of shape `shape`
    /// without enlarging it (a transformed distribution keeps its base's shape): an
    /// [`Error::ShapeMismatch`] naming `context` otherwise. Parameter-free bijectors fit any
    /// shape.
    fn check_shape(&self, context: &'static str, shape: &Shape) -> Result<()> {
        let _ = (context, shape);
        Ok(())
    }

    /// The composition `next ∘ self`: `self` applied first, then `next` (torch's
    /// `ComposeTransform([self, next])`, TFP's `tfb.Chain([next, self])`).
    fn then<N: Bijector>(self, next: N) -> Chain<Self, N> {
        Chain::new(self, next)
    }
}

macro_rules! unit_bijector_common {
    () => {
        const EVENT_RANK: usize = 0;
        fn detach(&self) -> Self {
            *self
        }
    };
}

/// `y = eˣ`, from ℝ onto `(0, ∞)`: `TransformedDistribution(Normal, Exp)` is the
/// [`LogNormal`](crate::LogNormal).
///
/// # Formula
/// ```text
/// f(x) = eˣ        f⁻¹(y) = ln y        ln |f′(x)| = x
/// ```
/// In float32 `eˣ` is finite for `x < 88.7` and nonzero for `x > −103`; the inverse is exact
/// to rounding on `(0, ∞)`.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::bijector::{Bijector, Exp};
///
/// let x = Tensor::<1>::from_floats([2.0], &Device::flex());
/// let ld: Vec<f32> = Exp.forward_log_det_jacobian(x).into_data().iter::<f32>().collect();
/// assert_eq!(ld, [2.0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exp;

impl Bijector for Exp {
    unit_bijector_common!();
    const NAME: &'static str = "Exp";

    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        x.exp()
    }
    fn inverse<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        y.log()
    }
    fn forward_log_det_jacobian<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        x
    }
    /// `−ln y`.
    fn inverse_log_det_jacobian<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        -y.log()
    }
    fn check_image<const D: usize>(&self, y: &Tensor<D>) -> Result<()> {
        check_values(Self::NAME, "(0, ∞)", y, |v| v > 0.0)
    }
}

/// The logistic sigmoid `y = 1/(1 + e⁻ˣ)`, from ℝ onto `(0, 1)`: `TransformedDistribution(
/// Logistic(0, 1), Sigmoid)` is the uniform distribution; of a Normal, the logit-normal.
///
/// # Formula
/// ```text
/// f(x) = σ(x)        f⁻¹(y) = logit(y) = ln y − ln1p(−y)
/// ln f′(x) = ln σ(x) + ln σ(−x) = −softplus(−x) − softplus(x)
/// ```
/// The log-determinant is finite for every finite `x` (about `−|x|` for large `|x|`), where
/// `ln(σ(x)(1 − σ(x)))` would give `−∞` as soon as `σ(x)` rounds to 1 (`x > 17` in float32).
/// The inverse is accurate near both ends (`y = 1 − 2⁻²⁴`, `y = 1e-20`).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::bijector::{Bijector, Sigmoid};
///
/// let x = Tensor::<1>::from_floats([0.0, 100.0], &Device::flex());
/// let ld: Vec<f32> = Sigmoid.forward_log_det_jacobian(x).into_data().iter::<f32>().collect();
/// assert!((ld[0] + 4f32.ln()).abs() < 1e-6 && (ld[1] + 100.0).abs() < 1e-4);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sigmoid;

impl Bijector for Sigmoid {
    unit_bijector_common!();
    const NAME: &'static str = "Sigmoid";

    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        sigmoid(x)
    }
    fn inverse<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        logit(y)
    }
    fn forward_log_det_jacobian<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        -softplus(-x.clone()) - softplus(x)
    }
    /// `−ln y − ln1p(−y)`, computed from `y` directly.
    fn inverse_log_det_jacobian<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        -y.clone().log() - log1p(-y)
    }
    fn check_image<const D: usize>(&self, y: &Tensor<D>) -> Result<()> {
        check_values(Self::NAME, "(0, 1)", y, |v| v > 0.0 && v < 1.0)
    }
}

/// The hyperbolic tangent `y = tanh x`, from ℝ onto `(−1, 1)` (the squashing of a SAC policy).
///
/// # Formula
/// ```text
/// f(x) = tanh x        f⁻¹(y) = atanh y = (ln1p(y) − ln1p(−y)) / 2
/// ln f′(x) = ln(1 − tanh² x) = 2 (ln 2 − x − softplus(−2x))
/// ```
/// The log-determinant is finite for every finite `x` (about `2 ln 2 − 2|x|`), where
/// `ln(1 − tanh² x)` is `−∞` once `tanh x` rounds to ±1 (`|x| > 9` in float32).
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::bijector::{Bijector, Tanh};
///
/// let x = Tensor::<1>::from_floats([0.0, 50.0], &Device::flex());
/// let ld: Vec<f32> = Tanh.forward_log_det_jacobian(x).into_data().iter::<f32>().collect();
/// assert!(ld[0].abs() < 1e-6 && (ld[1] - (2.0 * 2f32.ln() - 100.0)).abs() < 1e-4);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tanh;

impl Bijector for Tanh {
    unit_bijector_common!();
    const NAME: &'static str = "Tanh";

    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        x.tanh()
    }
    fn inverse<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        (log1p(y.clone()) - log1p(-y)) * 0.5
    }
    fn forward_log_det_jacobian<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        (-(x.clone() + softplus(x * (-2.0))) + LN_2) * 2.0
    }
    /// `−ln1p(y) − ln1p(−y)` (`−ln(1 − y²)`), computed from `y` directly.
    fn inverse_log_det_jacobian<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        -log1p(y.clone()) - log1p(-y)
    }
    fn check_image<const D: usize>(&self, y: &Tensor<D>) -> Result<()> {
        check_values(Self::NAME, "(-1, 1)", y, |v| v > -1.0 && v < 1.0)
    }
}

/// `y = softplus(x) = ln(1 + eˣ)`, from ℝ onto `(0, ∞)` (TFP's and torch's constraint of a
/// positive scale).
///
/// # Formula
/// ```text
/// f(x) = softplus(x)        f⁻¹(y) = y + ln(−expm1(−y))        ln f′(x) = ln σ(x) = −softplus(−x)
/// ```
/// All three are finite in float32 wherever `y` is positive and finite: the inverse keeps its
/// digits for `y` down to `1e-38` (`ln(eʸ − 1)` would round to `ln 0`) and does not overflow
/// for large `y`.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::bijector::{Bijector, Softplus};
///
/// let y = Tensor::<1>::from_floats([1e-20, 2f32.ln()], &Device::flex());
/// let x: Vec<f32> = Softplus.inverse(y).into_data().iter::<f32>().collect();
/// assert!((x[0] + 46.0517).abs() < 1e-3 && x[1].abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Softplus;

impl Bijector for Softplus {
    unit_bijector_common!();
    const NAME: &'static str = "Softplus";

    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        softplus(x)
    }
    fn inverse<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        y.clone() + (-expm1(-y)).log()
    }
    fn forward_log_det_jacobian<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        -softplus(-x)
    }
    fn check_image<const D: usize>(&self, y: &Tensor<D>) -> Result<()> {
        check_values(Self::NAME, "(0, ∞)", y, |v| v > 0.0)
    }
}

/// The affine map `y = shift + scale · x`, element-wise, with tensor or scalar parameters
/// (TFP's `tfb.Shift(shift)(tfb.Scale(scale))`, torch's `AffineTransform(loc, scale)`). The
/// scale may be negative; it must not be 0 (checked by [`Bijector::validate`]).
///
/// `D` is the rank of the parameters; the maps accept inputs of any rank `≥ D`, the parameters
/// read with leading size-1 dimensions (`sample_shape ++ batch ++ event` against parameters of
/// shape `batch ++ event`).
///
/// # Formula
/// ```text
/// f(x) = shift + scale·x        f⁻¹(y) = (y − shift) / scale        ln |f′(x)| = ln |scale|
/// ```
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::bijector::{Affine, Bijector};
///
/// let device = Device::flex();
/// let f = Affine::new(1.0, Tensor::<1>::from_floats([-2.0, 0.5], &device));
/// let y: Vec<f32> = f.forward(Tensor::<1>::ones([2], &device)).into_data().iter::<f32>().collect();
/// assert_eq!(y, [-1.0, 1.5]);
/// let ld: Vec<f32> = f.forward_log_det_jacobian(Tensor::<1>::zeros([2], &device))
///     .into_data().iter::<f32>().collect();
/// assert!((ld[0] - 2f32.ln()).abs() < 1e-6 && (ld[1] + 2f32.ln()).abs() < 1e-6);
/// assert!(Affine::new(0.0, Tensor::<1>::zeros([2], &device)).validate().is_err());
/// ```
#[derive(Clone, Debug)]
pub struct Affine<const D: usize> {
    shift: Tensor<D>,
    scale: Tensor<D>,
}

impl<const D: usize> Affine<D> {
    /// `Affine(shift, scale)` from tensors whose shapes broadcast, or scalars (at least one
    /// tensor; see [`Param`], or use [`Self::from_scalars`]).
    ///
    /// # Panics
    /// If the shapes do not broadcast, or both are scalars; the message is [`Self::try_new`]'s
    /// error.
    #[track_caller]
    pub fn new(shift: impl Into<Param<D>>, scale: impl Into<Param<D>>) -> Self {
        Self::try_new(shift, scale).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`] returning an [`Error`] instead of panicking.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] naming both shapes; [`Error::InvalidArgument`] if both are
    /// scalars.
    pub fn try_new(shift: impl Into<Param<D>>, scale: impl Into<Param<D>>) -> Result<Self> {
        let [shift, scale] =
            broadcast_params("Affine", [("shift", shift.into()), ("scale", scale.into())])?;
        Ok(Self { shift, scale })
    }

    /// Scalar parameters, as tensors of shape `[1; D]` on `device`.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::bijector::{Affine, Bijector};
    ///
    /// let device = Device::flex();
    /// let f = Affine::<1>::from_scalars(1.0, -3.0, &device);
    /// let x: Vec<f32> = f.inverse(Tensor::<2>::full([2, 2], 4.0, &device)).into_data().iter::<f32>().collect();
    /// assert_eq!(x, [-1.0; 4]);
    /// ```
    pub fn from_scalars(shift: f64, scale: f64, device: &Device) -> Self {
        Self {
            shift: Tensor::full([1; D], shift, device),
            scale: Tensor::full([1; D], scale, device),
        }
    }

    /// [`Bijector::validate`] as a builder step.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The shift.
    pub fn shift(&self) -> &Tensor<D> {
        &self.shift
    }

    /// The scale.
    pub fn scale(&self) -> &Tensor<D> {
        &self.scale
    }
}

impl<const D: usize> Bijector for Affine<D> {
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "Affine";

    fn forward<const DV: usize>(&self, x: Tensor<DV>) -> Tensor<DV> {
        lift::<D, DV>(&self.shift) + lift::<D, DV>(&self.scale) * x
    }
    fn inverse<const DV: usize>(&self, y: Tensor<DV>) -> Tensor<DV> {
        (y - lift::<D, DV>(&self.shift)) / lift::<D, DV>(&self.scale)
    }
    /// `ln |scale|`, broadcast to the shape of `x` (so that summing it over event dimensions
    /// counts every element).
    fn forward_log_det_jacobian<const DV: usize>(&self, x: Tensor<DV>) -> Tensor<DV> {
        lift::<D, DV>(&self.scale).abs().log() + x.zeros_like()
    }
    fn inverse_log_det_jacobian<const DV: usize>(&self, y: Tensor<DV>) -> Tensor<DV> {
        -lift::<D, DV>(&self.scale).abs().log() + y.zeros_like()
    }
    fn detach(&self) -> Self {
        Self {
            shift: self.shift.clone().detach(),
            scale: self.scale.clone().detach(),
        }
    }
    fn validate(&self) -> Result<()> {
        check_param("Affine", "shift", "finite", &self.shift, f64::is_finite)?;
        check_param("Affine", "scale", "finite and ≠ 0", &self.scale, |s| {
            s.is_finite() && s != 0.0
        })
    }
    fn check_image<const DV: usize>(&self, y: &Tensor<DV>) -> Result<()> {
        check_values(Self::NAME, "ℝ (finite)", y, f64::is_finite)
    }
    fn check_shape(&self, context: &'static str, shape: &Shape) -> Result<()> {
        let params = self.scale.shape();
        let fits = broadcast_shapes(context, "value", shape, "Affine parameters", &params)?;
        if fits == *shape {
            Ok(())
        } else {
            Err(Error::ShapeMismatch {
                context,
                left_name: "base shape",
                left: shape.to_vec(),
                right_name: "Affine parameters (must not enlarge it)",
                right: params.to_vec(),
            })
        }
    }
}

/// The composition of two bijectors, `first` applied first: `y = second(first(x))` (torch's
/// `ComposeTransform([first, second])`; TFP's `tfb.Chain([second, first])` lists them in
/// reverse). Longer chains nest: `a.then(b).then(c)`. See the [module documentation](self)
/// for why this is a generic pair rather than a list.
///
/// # Formula
/// ```text
/// f(x) = g(h(x))        f⁻¹(y) = h⁻¹(g⁻¹(y))
/// ln |det f′(x)| = ln |det h′(x)| + ln |det g′(h(x))|
/// ```
/// with `h = first`, `g = second`; the event rank is the larger of the two, and each term is
/// summed over it.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::bijector::{Affine, Bijector, Chain, Exp};
///
/// let device = Device::flex();
/// let f = Chain::new(Affine::<1>::from_scalars(0.0, 2.0, &device), Exp); // y = e^(2x)
/// let x = Tensor::<1>::from_floats([1.0], &device);
/// let ld: Vec<f32> = f.forward_log_det_jacobian(x).into_data().iter::<f32>().collect();
/// assert!((ld[0] - (2f32.ln() + 2.0)).abs() < 1e-6);                    // ln 2 + 2x
/// ```
#[derive(Clone, Debug)]
pub struct Chain<A, B> {
    first: A,
    second: B,
}

impl<A: Bijector, B: Bijector> Chain<A, B> {
    /// `second ∘ first`: `first` applied first.
    pub fn new(first: A, second: B) -> Self {
        Self { first, second }
    }

    /// The bijector applied first.
    pub fn first(&self) -> &A {
        &self.first
    }

    /// The bijector applied second.
    pub fn second(&self) -> &B {
        &self.second
    }
}

impl<A: Bijector, B: Bijector> Bijector for Chain<A, B> {
    const EVENT_RANK: usize = if A::EVENT_RANK > B::EVENT_RANK {
        A::EVENT_RANK
    } else {
        B::EVENT_RANK
    };
    const NAME: &'static str = "Chain";

    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.second.forward(self.first.forward(x))
    }
    fn inverse<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        self.first.inverse(self.second.inverse(y))
    }
    fn forward_log_det_jacobian<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.forward_and_log_det(x).1
    }
    /// Each bijector's map and log-determinant once, in order.
    fn forward_and_log_det<const D: usize>(&self, x: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
        let from = D.saturating_sub(Self::EVENT_RANK);
        let (h, ld1) = self.first.forward_and_log_det(x);
        let (y, ld2) = self.second.forward_and_log_det(h);
        (y, sum_keep(ld1, from, D) + sum_keep(ld2, from, D))
    }
    fn inverse_log_det_jacobian<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        let from = D.saturating_sub(Self::EVENT_RANK);
        let h = self.second.inverse(y.clone());
        sum_keep(self.second.inverse_log_det_jacobian(y), from, D)
            + sum_keep(self.first.inverse_log_det_jacobian(h), from, D)
    }
    fn detach(&self) -> Self {
        Self {
            first: self.first.detach(),
            second: self.second.detach(),
        }
    }
    fn validate(&self) -> Result<()> {
        self.first.validate()?;
        self.second.validate()
    }
    /// `y` in the image of `second`, and `second⁻¹(y)` in the image of `first`.
    fn check_image<const D: usize>(&self, y: &Tensor<D>) -> Result<()> {
        self.second.check_image(y)?;
        self.first.check_image(&self.second.inverse(y.clone()))
    }
    fn check_shape(&self, context: &'static str, shape: &Shape) -> Result<()> {
        self.first.check_shape(context, shape)?;
        self.second.check_shape(context, shape)
    }
}

/// A list of bijectors of one type, the first applied first (torch's
/// `ComposeTransform(list)`; TFP's `tfb.Chain` lists them in reverse): the stack of `N` flow
/// layers of a normalizing flow, `vec![iaf₁, iaf₂, …]`, of a length chosen at run time. The
/// empty list is the identity. Bijectors of different types compose with [`Chain`].
///
/// # Formula
/// ```text
/// f = f_N ∘ … ∘ f_1        ln |det f′(x)| = Σᵢ ln |det f′ᵢ(xᵢ₋₁)|,  x₀ = x, xᵢ = fᵢ(xᵢ₋₁)
/// ```
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::bijector::{Affine, Bijector};
///
/// let device = Device::flex();
/// let f = vec![Affine::<1>::from_scalars(1.0, 2.0, &device); 3]; // y = 8x + 7
/// let x = Tensor::<1>::from_floats([1.0], &device);
/// let (y, ld) = f.forward_and_log_det(x);
/// assert_eq!(y.into_scalar::<f32>(), 15.0);
/// assert!((ld.into_scalar::<f32>() - 8f32.ln()).abs() < 1e-6);
/// ```
impl<T: Bijector> Bijector for Vec<T> {
    const EVENT_RANK: usize = T::EVENT_RANK;
    const NAME: &'static str = "Chain";

    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.iter().fold(x, |x, f| f.forward(x))
    }
    fn inverse<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        self.iter().rev().fold(y, |y, f| f.inverse(y))
    }
    fn forward_log_det_jacobian<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.forward_and_log_det(x).1
    }
    /// Each bijector's map and log-determinant once, in order.
    fn forward_and_log_det<const D: usize>(&self, x: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
        let from = D.saturating_sub(Self::EVENT_RANK);
        let mut log_det = sum_keep(x.zeros_like(), from, D);
        let mut x = x;
        for f in self {
            let (y, ld) = f.forward_and_log_det(x);
            log_det = log_det + sum_keep(ld, from, D);
            x = y;
        }
        (x, log_det)
    }
    fn inverse_log_det_jacobian<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        let from = D.saturating_sub(Self::EVENT_RANK);
        let mut log_det = sum_keep(y.zeros_like(), from, D);
        let mut y = y;
        for f in self.iter().rev() {
            log_det = log_det + sum_keep(f.inverse_log_det_jacobian(y.clone()), from, D);
            y = f.inverse(y);
        }
        log_det
    }
    fn detach(&self) -> Self {
        self.iter().map(Bijector::detach).collect()
    }
    fn validate(&self) -> Result<()> {
        self.iter().try_for_each(Bijector::validate)
    }
    /// `y` in the image of the last bijector, its inverse in the image of the one before, ….
    fn check_image<const D: usize>(&self, y: &Tensor<D>) -> Result<()> {
        let mut y = y.clone();
        for f in self.iter().rev() {
            f.check_image(&y)?;
            y = f.inverse(y);
        }
        Ok(())
    }
    fn check_shape(&self, context: &'static str, shape: &Shape) -> Result<()> {
        self.iter().try_for_each(|f| f.check_shape(context, shape))
    }
}
