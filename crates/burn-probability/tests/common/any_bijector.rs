//! A bijector chosen at run time, for the tests that read lists of transforms from the
//! golden file (`reference_values.rs`) and the bijector tests.

use burn::tensor::{Device, Tensor};
use burn_probability::Result;
use burn_probability::bijector::{Affine, Bijector, Chain, Exp, Sigmoid, Softplus, Tanh};
use serde_json::Value;

/// A bijector chosen at run time from the golden file's list: the trait is generic over the
/// tensor rank (not object safe), so a run-time list is an enum, built here by the test.
#[derive(Clone, Debug)]
pub enum AnyBijector {
    Exp,
    Sigmoid,
    Tanh,
    Softplus,
    Affine(Box<Affine<1>>),
    Chain(Box<Chain<AnyBijector, AnyBijector>>),
}

macro_rules! dispatch {
    ($self:expr, $b:ident => $e:expr) => {
        match $self {
            AnyBijector::Exp => {
                let $b = Exp;
                $e
            }
            AnyBijector::Sigmoid => {
                let $b = Sigmoid;
                $e
            }
            AnyBijector::Tanh => {
                let $b = Tanh;
                $e
            }
            AnyBijector::Softplus => {
                let $b = Softplus;
                $e
            }
            AnyBijector::Affine(a) => {
                let $b = a.as_ref();
                $e
            }
            AnyBijector::Chain(c) => {
                let $b = c.as_ref();
                $e
            }
        }
    };
}

impl Bijector for AnyBijector {
    const EVENT_RANK: usize = 0;
    const NAME: &'static str = "AnyBijector";
    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        dispatch!(self, b => b.forward(x))
    }
    fn inverse<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        dispatch!(self, b => b.inverse(y))
    }
    fn forward_log_det_jacobian<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        dispatch!(self, b => b.forward_log_det_jacobian(x))
    }
    fn inverse_log_det_jacobian<const D: usize>(&self, y: Tensor<D>) -> Tensor<D> {
        dispatch!(self, b => b.inverse_log_det_jacobian(y))
    }
    fn detach(&self) -> Self {
        match self {
            AnyBijector::Affine(a) => AnyBijector::Affine(Box::new(a.detach())),
            AnyBijector::Chain(c) => AnyBijector::Chain(Box::new(c.detach())),
            other => other.clone(),
        }
    }
    fn validate(&self) -> Result<()> {
        dispatch!(self, b => b.validate())
    }
    fn check_image<const D: usize>(&self, y: &Tensor<D>) -> Result<()> {
        dispatch!(self, b => b.check_image(y))
    }
}

pub fn any_affine((shift, scale, device): (f64, f64, &Device)) -> AnyBijector {
    AnyBijector::Affine(Box::new(Affine::from_scalars(shift, scale, device)))
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` missing or not a number in {v}"))
}

/// The golden file's list of transforms, first applied first, with their parameters on
/// `device`; an unknown name panics.
pub fn build(transforms: &Value, device: &Device) -> AnyBijector {
    let list = transforms
        .as_array()
        .unwrap_or_else(|| panic!("`transforms` is not a list: {transforms}"));
    assert!(!list.is_empty(), "empty transform list");
    let one = |t: &Value| match t["bijector"].as_str() {
        Some("Exp") => AnyBijector::Exp,
        Some("Sigmoid") => AnyBijector::Sigmoid,
        Some("Tanh") => AnyBijector::Tanh,
        Some("Softplus") => AnyBijector::Softplus,
        Some("Affine") => any_affine((num(t, "shift"), num(t, "scale"), device)),
        _ => panic!("unknown transform {t}"),
    };
    let mut it = list.iter();
    let mut b = one(it.next().unwrap());
    for t in it {
        b = AnyBijector::Chain(Box::new(Chain::new(b, one(t))));
    }
    b
}
