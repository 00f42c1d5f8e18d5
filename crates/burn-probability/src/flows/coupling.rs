//! The affine coupling layer of RealNVP (Dinh et al. 2017; TFP's `tfb.RealNVP` with
//! `real_nvp_default_template`, distrax's `SplitCoupling`): [`AffineCoupling`], built by
//! [`AffineCouplingConfig::init`].

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Shape, Tensor};

use super::LOG_SCALE_BOUND;
use crate::bijector::Bijector;
use crate::distribution::{check_param, check_values};
use crate::error::{Error, Result};

/// The configuration of an [`AffineCoupling`]: the event size `K`, the number `d` of
/// coordinates that pass unchanged, the widths of the network's hidden layers, and which end
/// of the event the `d` coordinates are taken from.
///
/// # Formula
/// The network is a ReLU MLP from the `d` passing coordinates to `2 (K − d)` outputs, the
/// shift `μ` and the raw log-scale `s` of the `K − d` transformed coordinates:
/// ```text
/// h₀ = x_pass,  hₗ = relu(Wₗ hₗ₋₁ + bₗ),  [μ, s] = W h + b
/// ```
///
/// # Example
/// ```
/// use burn::tensor::Device;
/// use burn_probability::flows::AffineCouplingConfig;
///
/// // Coordinates 2 and 3 pass, 0 and 1 are transformed.
/// let config = AffineCouplingConfig::new(4, 2, vec![16, 16]).with_reverse(true);
/// let layer = config.init(&Device::flex());
/// assert_eq!((layer.event_size(), layer.num_masked(), layer.reverse()), (4, 2, true));
/// ```
#[derive(Config, Debug)]
pub struct AffineCouplingConfig {
    /// The event size `K`.
    pub event_size: usize,
    /// The number `d` of coordinates that pass unchanged and condition the others
    /// (`0 < d < K`; TFP's `num_masked`).
    pub num_masked: usize,
    /// The widths of the network's hidden layers (none: one linear layer).
    pub hidden: Vec<usize>,
    /// `false`: the first `d` coordinates pass; `true`: the last `d`. Alternate it in a stack
    /// so that every coordinate is transformed.
    #[config(default = false)]
    pub reverse: bool,
}

impl AffineCouplingConfig {
    /// The layer on `device`: hidden layers with burn's default initialization, and the last
    /// layer at zero, so that `μ = s = 0` and the layer is the identity.
    ///
    /// # Panics
    /// Unless `0 < num_masked < event_size`, or if a hidden width is 0.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_probability::bijector::Bijector;
    /// use burn_probability::flows::AffineCouplingConfig;
    ///
    /// let device = Device::flex();
    /// let layer = AffineCouplingConfig::new(3, 1, vec![8]).init(&device);
    /// let x = Tensor::<2>::from_floats([[0.5, -1.0, 2.0]], &device);
    /// let y: Vec<f32> = layer.forward(x).into_data().iter::<f32>().collect();
    /// assert_eq!(y, [0.5, -1.0, 2.0]); // the identity at init
    /// ```
    pub fn init(&self, device: &Device) -> AffineCoupling {
        let (k, d) = (self.event_size, self.num_masked);
        assert!(
            0 < d && d < k,
            "AffineCouplingConfig: num_masked must satisfy 0 < num_masked < event_size, got \
             num_masked = {d} and event_size = {k}"
        );
        assert!(
            self.hidden.iter().all(|&h| h > 0),
            "AffineCouplingConfig: hidden widths must be > 0, got {:?}",
            self.hidden
        );
        let mut layers = Vec::new();
        let mut width = d;
        for &h in &self.hidden {
            layers.push(LinearConfig::new(width, h).init(device));
            width = h;
        }
        layers.push(
            LinearConfig::new(width, 2 * (k - d))
                .with_initializer(Initializer::Zeros)
                .init(device),
        );
        AffineCoupling {
            layers,
            event_size: k,
            num_masked: d,
            reverse: self.reverse,
        }
    }
}

/// The affine coupling layer of RealNVP (Dinh et al. 2017; TFP's `tfb.RealNVP(num_masked,
/// shift_and_log_scale_fn=real_nvp_default_template(hidden))`, distrax's `SplitCoupling` with
/// an affine inner bijector): `d` coordinates pass unchanged and set the shift and scale of
/// the other `K − d`. The forward map, the inverse and both log-determinants each take **one**
/// pass of the network, so the layer serves for sampling and density alike; stack layers with
/// [`AffineCouplingConfig::reverse`] alternating (with [`Bijector::then`]) so that every
/// coordinate is transformed. A burn [`Module`] (train it with any burn optimizer) and a
/// [`Bijector`] of event rank 1. Built by [`AffineCouplingConfig::init`].
///
/// # Formula
/// With `x_p` the `d` passing coordinates (the first `d`, or the last `d` when `reverse`),
/// `x_a` the others, and `μ`, `s` the network's outputs (see [`AffineCouplingConfig`]):
/// ```text
/// f(x):    y_p = x_p,   y_a = x_a ⊙ σ(x_p) + μ(x_p)          ln σ = L tanh(s / L)
/// f⁻¹(y):  x_p = y_p,   x_a = (y_a − μ(y_p)) ⊙ σ(y_p)⁻¹
/// ln |det ∂f(x)/∂x| = Σ ln σ(x_p)                            (block-triangular Jacobian)
/// ```
/// with `L = ` [`LOG_SCALE_BOUND`] (the soft clamp of the [module documentation](super)):
/// `σ ∈ (e⁻⁵, e⁵)` whatever the weights, and the zero last layer makes the layer the identity.
///
/// # Shapes
/// `x` and `y` have any rank `D ≥ 1` with last dimension `K` (the leading dimensions are
/// flattened for the network); the log-determinants are keepdim, `[.., 1]`.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_probability::bijector::Bijector;
/// use burn_probability::flows::AffineCouplingConfig;
/// use burn_probability::prelude::*;
///
/// let device = Device::flex();
/// let config = AffineCouplingConfig::new(2, 1, vec![16, 16]);
/// let flow = config.init(&device).then(config.clone().with_reverse(true).init(&device));
/// let p = TransformedDistribution::new(MultivariateNormalDiag::<1>::standard([2], &device), flow);
/// let y = Tensor::<2>::zeros([5, 2], &device);
/// let lp: Vec<f32> = p.log_prob_n(y).into_data().iter::<f32>().collect();
/// assert!((lp[0] + (2.0 * std::f32::consts::PI).ln()).abs() < 1e-5); // the identity at init
/// ```
#[derive(Module, Debug)]
pub struct AffineCoupling {
    layers: Vec<Linear>,
    event_size: usize,
    num_masked: usize,
    reverse: bool,
}

impl AffineCoupling {
    /// The event size `K`.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::Device;
    /// use burn_probability::flows::AffineCouplingConfig;
    ///
    /// let layer = AffineCouplingConfig::new(5, 2, vec![]).init(&Device::flex());
    /// assert_eq!(layer.event_size(), 5);
    /// ```
    pub fn event_size(&self) -> usize {
        self.event_size
    }

    /// The number `d` of coordinates that pass unchanged.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::Device;
    /// use burn_probability::flows::AffineCouplingConfig;
    ///
    /// let layer = AffineCouplingConfig::new(5, 2, vec![]).init(&Device::flex());
    /// assert_eq!(layer.num_masked(), 2);
    /// ```
    pub fn num_masked(&self) -> usize {
        self.num_masked
    }

    /// Whether the last `d` coordinates pass (`true`) or the first `d` (`false`).
    ///
    /// # Example
    /// ```
    /// use burn::tensor::Device;
    /// use burn_probability::flows::AffineCouplingConfig;
    ///
    /// let layer = AffineCouplingConfig::new(5, 2, vec![]).init(&Device::flex());
    /// assert!(!layer.reverse());
    /// ```
    pub fn reverse(&self) -> bool {
        self.reverse
    }

    /// `x` as `[n, K]`, with its original dimensions.
    ///
    /// # Panics
    /// If the last dimension of `x` is not `K`.
    fn flatten<const D: usize>(&self, x: Tensor<D>) -> (Tensor<2>, [usize; D]) {
        let k = self.event_size;
        let dims = x.dims();
        assert!(
            D >= 1 && dims[D - 1] == k,
            "AffineCoupling: the last dimension of the input must be the event size {k}, got \
             shape {dims:?}"
        );
        let n = dims.iter().product::<usize>() / k;
        (x.reshape([n, k]), dims)
    }

    /// The passing and the transformed coordinates of `[n, K]` values.
    fn split(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let (k, d) = (self.event_size, self.num_masked);
        if self.reverse {
            (x.clone().narrow(1, k - d, d), x.narrow(1, 0, k - d))
        } else {
            (x.clone().narrow(1, 0, d), x.narrow(1, d, k - d))
        }
    }

    /// The inverse of [`Self::split`].
    fn join(&self, pass: Tensor<2>, transformed: Tensor<2>) -> Tensor<2> {
        if self.reverse {
            Tensor::cat(vec![transformed, pass], 1)
        } else {
            Tensor::cat(vec![pass, transformed], 1)
        }
    }

    /// The shift `μ` and the soft-clamped log-scale `L tanh(s / L)`, `[n, K − d]` each, from
    /// the `[n, d]` passing coordinates.
    fn shift_log_scale(&self, pass: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let a = self.event_size - self.num_masked;
        let last = self.layers.len() - 1;
        let mut h = pass;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = relu(h);
            }
        }
        let shift = h.clone().narrow(1, 0, a);
        let raw = h.narrow(1, a, a);
        (shift, (raw / LOG_SCALE_BOUND).tanh() * LOG_SCALE_BOUND)
    }

    /// `Σ ln σ` of `[n, d]` passing coordinates, reshaped to `dims` with the last set to 1.
    fn log_det<const D: usize>(&self, pass: Tensor<2>, mut dims: [usize; D]) -> Tensor<D> {
        dims[D - 1] = 1;
        self.shift_log_scale(pass).1.sum_dim(1).reshape(dims)
    }
}

impl Bijector for AffineCoupling {
    const EVENT_RANK: usize = 1;
    const NAME: &'static str = "AffineCoupling";

    /// `y_p = x_p`, `y_a = x_a ⊙ σ(x_p) + μ(x_p)`: one pass.
    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let (x, dims) = self.flatten(x);
        let (pass, transformed) = self.split(x);
        let (shift, log_scale) = self.shift_log_scale(pass.clone());
        self.join(pass, transformed * log_scale.exp() + shift)
            .reshape(dims)
    }

    /// `x_p = y_p`, `x_a = (y_a − μ(y_p)) ⊙ σ(y_p)⁻¹`: one pass.
    fn inverse<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        let (y, dims) = self.flatten(y);
        let (pass, transformed) = self.split(y);
        let (shift, log_scale) = self.shift_log_scale(pass.clone());
        self.join(pass, (transformed - shift) * (-log_scale).exp())
            .reshape(dims)
    }

    /// `Σ ln σ(x_p)`, keepdim: one pass.
    fn forward_log_det_jacobian<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let (x, dims) = self.flatten(x);
        self.log_det(self.split(x).0, dims)
    }

    /// The map and `Σ ln σ(x_p)` from one network pass.
    fn forward_and_log_det<const D: usize>(&self, x: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
        let (x, dims) = self.flatten(x);
        let (pass, transformed) = self.split(x);
        let (shift, log_scale) = self.shift_log_scale(pass.clone());
        let mut ld_dims = dims;
        ld_dims[D - 1] = 1;
        let log_det = log_scale.clone().sum_dim(1).reshape(ld_dims);
        let y = self.join(pass, transformed * log_scale.exp() + shift);
        (y.reshape(dims), log_det)
    }

    /// `−Σ ln σ(y_p)` (`y_p = x_p`), keepdim: one pass, without the inverse.
    fn inverse_log_det_jacobian<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        let (y, dims) = self.flatten(y);
        -self.log_det(self.split(y).0, dims)
    }

    fn detach(&self) -> Self {
        super::detached(self)
    }

    /// Every weight and bias must be finite (reads them to the host).
    fn validate(&self) -> Result<()> {
        for layer in &self.layers {
            check_param(
                Self::NAME,
                "weight",
                "finite",
                &layer.weight.val(),
                f64::is_finite,
            )?;
            if let Some(bias) = &layer.bias {
                check_param(Self::NAME, "bias", "finite", &bias.val(), f64::is_finite)?;
            }
        }
        Ok(())
    }

    fn check_image<const D: usize>(&self, y: &Tensor<D>) -> Result<()> {
        check_values(Self::NAME, "ℝᴷ (finite)", y, f64::is_finite)
    }

    /// The last dimension must be the event size `K`: an [`Error::EventShapeMismatch`] naming
    /// the shape, its last dimension and `K` otherwise.
    fn check_shape(&self, context: &'static str, shape: &Shape) -> Result<()> {
        let d = shape.num_dims();
        if d >= 1 && shape[d - 1] == self.event_size {
            Ok(())
        } else {
            Err(Error::EventShapeMismatch {
                context,
                argument: "AffineCoupling input",
                shape: shape.to_vec(),
                event_shape: vec![self.event_size],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{ModuleMapper, Param as ModuleParam};
    use burn::tensor::Distribution as Init;

    fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    /// Every parameter replaced by `N(0, 0.5²)` draws (the zero last layer included).
    struct Randomize;

    impl ModuleMapper for Randomize {
        fn map_float<const D: usize>(
            &mut self,
            p: ModuleParam<Tensor<D>>,
        ) -> ModuleParam<Tensor<D>> {
            let v = p.val().random_like(Init::Normal(0.0, 0.5));
            ModuleParam::initialized(p.id, v)
        }
    }

    #[test]
    #[should_panic(expected = "0 < num_masked < event_size, got num_masked = 0")]
    fn init_rejects_no_masked_coordinate() {
        AffineCouplingConfig::new(3, 0, vec![4]).init(&Device::flex());
    }

    #[test]
    #[should_panic(expected = "got num_masked = 3 and event_size = 3")]
    fn init_rejects_all_masked_coordinates() {
        AffineCouplingConfig::new(3, 3, vec![4]).init(&Device::flex());
    }

    #[test]
    #[should_panic(expected = "hidden widths must be > 0, got [4, 0]")]
    fn init_rejects_a_zero_width() {
        AffineCouplingConfig::new(3, 1, vec![4, 0]).init(&Device::flex());
    }

    #[test]
    #[should_panic(expected = "must be the event size 3, got shape [2, 4]")]
    fn forward_rejects_a_wrong_event_size() {
        let device = Device::flex();
        let layer = AffineCouplingConfig::new(3, 1, vec![4]).init(&device);
        layer.forward(Tensor::<2>::zeros([2, 4], &device));
    }

    /// The network has `d` inputs and `2 (K − d)` outputs, and its last layer is zero.
    #[test]
    fn network_shapes_and_zero_last_layer() {
        let layer = AffineCouplingConfig::new(5, 2, vec![7, 3]).init(&Device::flex());
        let dims: Vec<[usize; 2]> = layer.layers.iter().map(|l| l.weight.dims()).collect();
        assert_eq!(dims, [[2, 7], [7, 3], [3, 6]]);
        let last = layer.layers.last().unwrap();
        assert!(vals(last.weight.val()).iter().all(|&w| w == 0.0));
        assert!(
            vals(last.bias.as_ref().unwrap().val())
                .iter()
                .all(|&b| b == 0.0)
        );
    }

    /// Ranks 1 to 3: the map keeps the shape, the log-determinants are `[.., 1]`, and the
    /// flattened batch gives the same values as the rows one at a time.
    #[test]
    fn any_rank_with_keepdim_log_dets() {
        let device = Device::flex();
        device.seed(5);
        let layer = AffineCouplingConfig::new(3, 1, vec![8])
            .init(&device)
            .map(&mut Randomize);
        let x = Tensor::<3>::random([2, 4, 3], Init::Normal(0.0, 1.0), &device);
        assert_eq!(layer.forward(x.clone()).dims(), [2, 4, 3]);
        assert_eq!(layer.inverse(x.clone()).dims(), [2, 4, 3]);
        assert_eq!(layer.forward_log_det_jacobian(x.clone()).dims(), [2, 4, 1]);
        assert_eq!(layer.inverse_log_det_jacobian(x.clone()).dims(), [2, 4, 1]);
        let y = vals(layer.forward(x.clone()));
        let ld = vals(layer.forward_log_det_jacobian(x.clone()));
        let rows = vals(x);
        for r in 0..8 {
            let row = Tensor::<1>::from_floats(&rows[3 * r..3 * r + 3], &device);
            let (yr, ldr) = (
                vals(layer.forward(row.clone())),
                vals(layer.forward_log_det_jacobian(row)),
            );
            assert_eq!(yr, y[3 * r..3 * r + 3], "row {r}");
            assert_eq!(ldr, [ld[r]], "row {r}");
        }
        assert!(
            ld.iter().any(|&v| v.abs() > 1e-3),
            "trivial log-dets {ld:?}"
        );
    }

    /// One pass gives what `forward` and `forward_log_det_jacobian` give, at rank 3.
    #[test]
    fn forward_and_log_det_is_both_methods() {
        let device = Device::flex();
        device.seed(7);
        for reverse in [false, true] {
            let layer = AffineCouplingConfig::new(5, 2, vec![8])
                .with_reverse(reverse)
                .init(&device)
                .map(&mut Randomize);
            let x = Tensor::<3>::random([2, 3, 5], Init::Normal(0.0, 1.0), &device);
            let (y, ld) = layer.forward_and_log_det(x.clone());
            assert_eq!(ld.dims(), [2, 3, 1]);
            assert_eq!(vals(y), vals(layer.forward(x.clone())));
            assert_eq!(vals(ld), vals(layer.forward_log_det_jacobian(x)));
        }
    }

    /// `ildj(f(x)) = −fldj(x)`, computed from `y` without the inverse.
    #[test]
    fn inverse_log_det_is_minus_forward() {
        let device = Device::flex();
        device.seed(6);
        for reverse in [false, true] {
            let layer = AffineCouplingConfig::new(4, 2, vec![8])
                .with_reverse(reverse)
                .init(&device)
                .map(&mut Randomize);
            let x = Tensor::<2>::random([6, 4], Init::Normal(0.0, 1.0), &device);
            let f = vals(layer.forward_log_det_jacobian(x.clone()));
            let i = vals(layer.inverse_log_det_jacobian(layer.forward(x)));
            for (a, b) in f.iter().zip(&i) {
                assert!((a + b).abs() < 1e-5, "reverse {reverse}: {a} against {b}");
            }
        }
    }

    /// The clamp: huge weights keep `|ln σ| < L` per transformed coordinate.
    #[test]
    fn log_scale_is_bounded() {
        let device = Device::flex();
        device.seed(7);
        let layer = AffineCouplingConfig::new(3, 1, vec![4])
            .init(&device)
            .map(&mut Randomize);
        let big = layer.map(&mut Scale(1e3));
        let x = Tensor::<2>::random([16, 3], Init::Normal(0.0, 3.0), &device);
        let ld = vals(big.forward_log_det_jacobian(x));
        assert!(
            ld.iter()
                .all(|v| v.is_finite() && v.abs() <= 2.0 * LOG_SCALE_BOUND as f32),
            "{ld:?}"
        );
        assert!(
            ld.iter().any(|v| v.abs() > LOG_SCALE_BOUND as f32),
            "{ld:?}"
        );
    }

    struct Scale(f64);

    impl ModuleMapper for Scale {
        fn map_float<const D: usize>(
            &mut self,
            p: ModuleParam<Tensor<D>>,
        ) -> ModuleParam<Tensor<D>> {
            ModuleParam::initialized(p.id, p.val() * self.0)
        }
    }

    /// Gradients reach the parameters through the layer, not through its detached copy.
    #[test]
    fn detach_drops_the_graph() {
        let ad = Device::flex().autodiff();
        let layer = AffineCouplingConfig::new(2, 1, vec![4]).init(&ad);
        let x = Tensor::<2>::from_floats([[0.5, -1.0]], &ad);
        let weight = layer.layers[0].weight.val();
        let grads = layer.forward_log_det_jacobian(x.clone()).sum().backward();
        assert!(weight.grad(&grads).is_some());
        let grads = layer.detach().forward_log_det_jacobian(x).sum().backward();
        assert!(weight.grad(&grads).is_none());
    }

    #[test]
    fn validate_finds_a_non_finite_weight() {
        let device = Device::flex();
        let layer = AffineCouplingConfig::new(2, 1, vec![4]).init(&device);
        assert_eq!(layer.validate(), Ok(()));
        let broken = layer.map(&mut Scale(f64::NAN));
        match broken.validate() {
            Err(Error::InvalidParameter {
                distribution,
                parameter,
                ..
            }) => assert_eq!((distribution, parameter), ("AffineCoupling", "weight")),
            other => panic!("expected an InvalidParameter, got {other:?}"),
        }
    }

    #[test]
    fn check_image_and_check_shape() {
        let device = Device::flex();
        let layer = AffineCouplingConfig::new(3, 2, vec![]).init(&device);
        let ok = Tensor::<2>::from_floats([[0.0, -1.0, 1e30]], &device);
        assert_eq!(layer.check_image(&ok), Ok(()));
        let bad = Tensor::<2>::from_floats([[0.0, f32::INFINITY, 1.0]], &device);
        assert!(matches!(
            layer.check_image(&bad),
            Err(Error::OutsideSupport { index: 1, .. })
        ));
        assert_eq!(layer.check_shape("ctx", &Shape::new([4, 3])), Ok(()));
        let err = layer.check_shape("ctx", &Shape::new([4, 2])).unwrap_err();
        assert_eq!(
            err,
            Error::EventShapeMismatch {
                context: "ctx",
                argument: "AffineCoupling input",
                shape: vec![4, 2],
                event_shape: vec![3],
            }
        );
        let message = err.to_string();
        assert!(
            message.contains("AffineCoupling input") && message.contains("[2]"),
            "{message}"
        );
        assert!(layer.check_shape("ctx", &Shape::new([0usize; 0])).is_err());
    }
}
