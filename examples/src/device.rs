//! The `--device` flag of the example programs: which burn backend runs them (and
//! `mnist_vae`'s `--devices`, [`DeviceList`], for data-parallel training).
//!
//! `flex` (the default: burn's pure-Rust CPU backend, with burn-flex-kernels' fused kernels),
//! `ndarray`, `wgpu` (the default adapter) or `wgpu:N` (the `N`-th discrete GPU), `cuda` or
//! `cuda:N`. The GPU backends exist in a build only with the examples' cargo feature of the
//! same name (`cargo run --release --features wgpu --example mnist_vae -- --device wgpu`); a
//! choice that was not compiled in is an error naming the feature. The programs' code is the
//! same on every device: the fused CPU kernels run where their inputs are float32 tensors on
//! `flex`, and burn operations everywhere else.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

/// A device named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// burn's `flex` CPU backend.
    #[default]
    Flex,
    /// burn's `ndarray` CPU backend.
    Ndarray,
    /// `wgpu`: the default adapter (`None`) or the `N`-th discrete GPU.
    Wgpu(Option<usize>),
    /// CUDA: the default device (`None`, index 0) or device `N`.
    Cuda(Option<usize>),
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, index) = match s.split_once(':') {
            Some((name, i)) => {
                let i = i.parse::<usize>().map_err(|_| {
                    format!("the device index in {s:?} must be a non-negative integer")
                })?;
                (name, Some(i))
            }
            None => (s, None),
        };
        match (name, index) {
            ("flex", None) => Ok(Self::Flex),
            ("ndarray", None) => Ok(Self::Ndarray),
            ("wgpu", i) => Ok(Self::Wgpu(i)),
            ("cuda", i) => Ok(Self::Cuda(i)),
            ("flex" | "ndarray", Some(_)) => Err(format!("{name} takes no index, got {s:?}")),
            _ => Err(format!(
                "unknown device {s:?}: expected flex, ndarray, wgpu, wgpu:N, cuda or cuda:N"
            )),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flex => write!(f, "flex"),
            Self::Ndarray => write!(f, "ndarray"),
            Self::Wgpu(None) => write!(f, "wgpu (default adapter)"),
            Self::Wgpu(Some(i)) => write!(f, "wgpu:{i} (discrete GPU {i})"),
            Self::Cuda(None) => write!(f, "cuda:0"),
            Self::Cuda(Some(i)) => write!(f, "cuda:{i}"),
        }
    }
}

impl DeviceChoice {
    /// The device, or an error naming the cargo feature that the build lacks.
    pub fn device(self) -> Result<Device, String> {
        match self {
            Self::Flex => Ok(Device::flex()),
            #[allow(deprecated)] // burn 0.22 deprecates ndarray in favour of flex; it still runs
            Self::Ndarray => Ok(Device::ndarray()),
            Self::Wgpu(index) => wgpu(index),
            Self::Cuda(index) => cuda(index),
        }
    }
}

/// The `--devices` flag of data-parallel training: `N` devices of the `--device` backend, or a
/// comma-separated list of devices as `--device` names them (`flex,ndarray`, `cuda:0,cuda:1`).
/// Either names at least two devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceList {
    /// `N` devices of the `--device` backend: on a GPU backend the `N` devices from
    /// `--device`'s index on (`--device cuda --devices 2` is `cuda:0,cuda:1`, `--device wgpu`
    /// counts discrete GPUs from 0), on a CPU backend its one device `N` times.
    Count(usize),
    /// The devices, in order (the first is the main one).
    List(Vec<DeviceChoice>),
}

impl FromStr for DeviceList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let list = match s.trim().parse::<usize>() {
            Ok(n) => Self::Count(n),
            Err(_) => Self::List(
                s.split(',')
                    .map(|d| d.trim().parse())
                    .collect::<Result<Vec<DeviceChoice>, String>>()?,
            ),
        };
        let n = match &list {
            Self::Count(n) => *n,
            Self::List(devices) => devices.len(),
        };
        if n < 2 {
            return Err(format!(
                "{s:?} names {n} device(s): data-parallel training needs at least 2 (one device is --device)"
            ));
        }
        Ok(list)
    }
}

impl DeviceList {
    /// The devices: for a count, `N` devices of `device`'s backend (see [`DeviceList::Count`]),
    /// else the list.
    pub fn choices(&self, device: DeviceChoice) -> Vec<DeviceChoice> {
        match self {
            Self::Count(n) => (0..*n).map(|k| device.nth_from(k)).collect(),
            Self::List(devices) => devices.clone(),
        }
    }
}

impl DeviceChoice {
    /// The device `k` places after this one on its backend: `cuda:i` gives `cuda:(i + k)`,
    /// `wgpu` or `wgpu:i` the discrete GPU `i + k` (the default adapter counts as 0); the CPU
    /// backends have one device, which this returns for every `k`.
    fn nth_from(self, k: usize) -> Self {
        match self {
            Self::Cuda(i) => Self::Cuda(Some(i.unwrap_or(0) + k)),
            Self::Wgpu(i) => Self::Wgpu(Some(i.unwrap_or(0) + k)),
            cpu => cpu,
        }
    }
}

#[cfg(feature = "wgpu")]
fn wgpu(index: Option<usize>) -> Result<Device, String> {
    use burn::tensor::DeviceKind;
    Ok(Device::wgpu(match index {
        None => DeviceKind::DefaultDevice,
        Some(i) => DeviceKind::DiscreteGpu(i),
    }))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu(_: Option<usize>) -> Result<Device, String> {
    Err(not_compiled("wgpu"))
}

#[cfg(feature = "cuda")]
fn cuda(index: Option<usize>) -> Result<Device, String> {
    Ok(Device::cuda(index.unwrap_or(0)))
}

#[cfg(not(feature = "cuda"))]
fn cuda(_: Option<usize>) -> Result<Device, String> {
    Err(not_compiled("cuda"))
}

#[cfg(any(not(feature = "wgpu"), not(feature = "cuda")))]
fn not_compiled(feature: &str) -> String {
    format!(
        "--device {feature}: this build has no {feature} backend; build with the examples' `{feature}` cargo feature, e.g. `cargo run --release --features {feature} --example <name> -- --device {feature}`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_rejects_the_rest() {
        assert_eq!("flex".parse(), Ok(DeviceChoice::Flex));
        assert_eq!("ndarray".parse(), Ok(DeviceChoice::Ndarray));
        assert_eq!("wgpu".parse(), Ok(DeviceChoice::Wgpu(None)));
        assert_eq!("wgpu:1".parse(), Ok(DeviceChoice::Wgpu(Some(1))));
        assert_eq!("cuda:2".parse(), Ok(DeviceChoice::Cuda(Some(2))));
        for (bad, words) in [
            ("tpu", "unknown device"),
            ("cuda:-1", "non-negative integer"),
            ("flex:0", "takes no index"),
        ] {
            let e = bad.parse::<DeviceChoice>().unwrap_err();
            assert!(e.contains(words) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn device_lists_are_a_count_or_names_of_at_least_two() {
        use DeviceChoice::*;
        assert_eq!("2".parse(), Ok(DeviceList::Count(2)));
        assert_eq!(
            "flex,ndarray".parse(),
            Ok(DeviceList::List(vec![Flex, Ndarray]))
        );
        assert_eq!(
            "cuda:0, cuda:1".parse(),
            Ok(DeviceList::List(vec![Cuda(Some(0)), Cuda(Some(1))]))
        );
        assert_eq!(DeviceList::Count(3).choices(Ndarray), [Ndarray; 3]);
        // A count on a GPU backend names different GPUs, from --device's index on.
        assert_eq!(
            DeviceList::Count(2).choices(Cuda(None)),
            [Cuda(Some(0)), Cuda(Some(1))]
        );
        assert_eq!(
            DeviceList::Count(3).choices(Cuda(Some(2))),
            [Cuda(Some(2)), Cuda(Some(3)), Cuda(Some(4))]
        );
        assert_eq!(
            DeviceList::Count(2).choices(Wgpu(None)),
            [Wgpu(Some(0)), Wgpu(Some(1))]
        );
        assert_eq!(
            DeviceList::List(vec![Flex, Ndarray]).choices(Cuda(None)),
            [Flex, Ndarray]
        );
        for (bad, words) in [
            ("1", "at least 2"),
            ("0", "at least 2"),
            ("flex", "at least 2"),
            ("flex,tpu", "unknown device \"tpu\""),
            ("flex,", "unknown device \"\""),
        ] {
            let e = bad.parse::<DeviceList>().unwrap_err();
            assert!(e.contains(words), "{bad}: {e}");
        }
    }

    #[test]
    fn cpu_devices_run_and_a_missing_backend_names_its_feature() {
        for choice in [DeviceChoice::Flex, DeviceChoice::Ndarray] {
            let device = choice.device().expect("a CPU backend");
            let t = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0], &device);
            assert_eq!(t.sum().into_scalar::<f32>(), 3.0);
        }
        #[cfg(not(feature = "cuda"))]
        {
            let e = DeviceChoice::Cuda(None).device().unwrap_err();
            assert!(e.contains("--features cuda"), "{e}");
        }
    }
}
