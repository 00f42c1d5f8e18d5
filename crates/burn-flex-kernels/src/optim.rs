//! Optimizers whose update runs as one fused pass per parameter on the CPU.
//!
//! burn's own [`Adam`] updates a parameter with about a dozen tensor
//! operations, each a full pass over the parameter with a new buffer. For small models that is
//! a large share of a training step (a fifth of the MLP VAE's). [`FusedAdam`] is the same
//! algorithm, with the same state type and checkpoint format: on `flex` with float32 it updates
//! the parameter and both moments in one pass, in place, rounding every intermediate value as
//! burn does (the results are equal bit for bit); on every other backend, or with
//! [`set_fused_kernels(false)`](crate::set_fused_kernels), it runs burn's `Adam` itself.

use burn::optim::LearningRate;
use burn::optim::{Adam, AdamConfig, AdamState, AdaptiveMomentumState, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};

use crate::adam::AdamStep;
use crate::device::{f32_on_flex, fused_kernels_enabled};

/// Adam (Kingma and Ba, 2015) with a fused update: for each parameter `θ` with gradient `g`
/// at step `t`,
///
/// ```text
/// m ← β₁ m + (1 − β₁) g
/// v ← β₂ v + (1 − β₂) g²
/// θ ← θ − lr · m̂ / (√v̂ + ε)      with  m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)
/// ```
///
/// computed, as burn's `Adam` computes it, as `lr · (m · √(1 − β₂ᵗ)/(1 − β₁ᵗ)) / (√v + ε√(1 − β₂ᵗ))`.
/// The defaults are PyTorch's and TensorFlow's (`β₁ = 0.9`, `β₂ = 0.999`, `ε = 1e-8`; burn's
/// `AdamConfig` defaults to `ε = 1e-5`). No weight decay, AMSGrad or gradient clipping: use
/// burn's `AdamConfig` for those.
///
/// # Example
/// ```
/// use burn::module::Module;
/// use burn::nn::LinearConfig;
/// use burn::optim::GradientsParams;
/// use burn::tensor::{Device, Tensor};
/// use burn_flex_kernels::optim::FusedAdam;
///
/// let device = Device::flex().autodiff();
/// let mut model = LinearConfig::new(3, 1).init(&device);
/// let mut optim = FusedAdam::new().init();
/// let x = Tensor::<2>::ones([4, 3], &device);
/// for _ in 0..3 {
///     let loss = model.forward(x.clone()).powf_scalar(2.0).mean();
///     let grads = GradientsParams::from_grads(loss.backward(), &model);
///     model = optim.step(1e-2, model, grads);
/// }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
}

impl Default for FusedAdam {
    fn default() -> Self {
        Self::new()
    }
}

impl FusedAdam {
    /// Adam with `β₁ = 0.9`, `β₂ = 0.999`, `ε = 1e-8`.
    pub fn new() -> Self {
        Self {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
        }
    }

    /// The moments' decay rates `β₁` and `β₂`, each in `[0, 1)`.
    ///
    /// # Panics
    /// When either is outside `[0, 1)`, with the value in the message.
    pub fn with_betas(mut self, beta_1: f32, beta_2: f32) -> Self {
        for (name, b) in [("beta_1", beta_1), ("beta_2", beta_2)] {
            assert!(
                (0.0..1.0).contains(&b),
                "FusedAdam: {name} must be in [0, 1), got {b}"
            );
        }
        self.beta_1 = beta_1;
        self.beta_2 = beta_2;
        self
    }

    /// The `ε` added to `√v̂`, finite and `> 0`.
    ///
    /// # Panics
    /// When `epsilon` is not finite and positive, with the value in the message.
    pub fn with_epsilon(mut self, epsilon: f32) -> Self {
        assert!(
            epsilon.is_finite() && epsilon > 0.0,
            "FusedAdam: epsilon must be finite and > 0, got {epsilon}"
        );
        self.epsilon = epsilon;
        self
    }

    /// The optimizer for a whole module (learning rate given at each step).
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }

    /// burn's `Adam` with the same settings: the path for tensors the kernel does not take.
    fn reference(&self) -> Adam {
        AdamConfig::new()
            .with_beta_1(self.beta_1)
            .with_beta_2(self.beta_2)
            .with_epsilon(self.epsilon)
            .build()
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (time, moments) = match state {
            // AMSGrad states (from burn's Adam) keep burn's update.
            Some(s) if s.momentum.max_moment_2.is_some() => {
                return self.reference().step(lr, tensor, grad, Some(s));
            }
            Some(s) => (
                s.momentum.time + 1,
                (s.momentum.moment_1, s.momentum.moment_2),
            ),
            // Zero moments make the first update burn's first update exactly.
            None => (1, (tensor.zeros_like(), tensor.zeros_like())),
        };
        let step = AdamStep::new(self.beta_1, self.beta_2, self.epsilon, lr, time);
        match fused_update(tensor, grad, moments, step) {
            Ok((tensor, m, v)) => {
                let momentum = AdaptiveMomentumState::new(time, m, v);
                (tensor, Some(AdamState::new(momentum)))
            }
            Err((tensor, grad, (m, v))) => {
                let state =
                    (time > 1).then(|| AdamState::new(AdaptiveMomentumState::new(time - 1, m, v)));
                self.reference().step(lr, tensor, grad, state)
            }
        }
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <Adam as Optimizer>::to_device(state, device)
    }
}

/// One fused Adam update of `param` and its moments, or the inputs back when they are not
/// all float32 tensors of one shape on `flex` without autodiff (or the fused kernels are off).
#[allow(clippy::type_complexity)]
pub(crate) fn fused_update<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moments: (Tensor<D>, Tensor<D>),
    step: AdamStep,
) -> Result<(Tensor<D>, Tensor<D>, Tensor<D>), (Tensor<D>, Tensor<D>, (Tensor<D>, Tensor<D>))> {
    use crate::ext::FusedOptim;
    use burn::backend::Dispatch;
    let (m, v) = moments;
    let all = [&param, &grad, &m, &v];
    let dims = param.dims();
    let usable = fused_kernels_enabled()
        && all
            .iter()
            .all(|t| f32_on_flex(t) && t.dims() == dims && !t.is_autodiff());
    if !usable {
        return Err((param, grad, (m, v)));
    }
    let (p, m, v) = <Dispatch as FusedOptim>::fused_adam(
        param.into_dispatch(),
        grad.into_dispatch(),
        m.into_dispatch(),
        v.into_dispatch(),
        step,
    );
    Ok((
        Tensor::from_dispatch(p),
        Tensor::from_dispatch(m),
        Tensor::from_dispatch(v),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::{Distribution as Init, TensorData};

    /// A regression problem: a model and its data. Drawn once per comparison and shared by
    /// the runs it compares, so that tests drawing from the process-global RNG at the same
    /// time cannot give the runs different starting points.
    fn problem(device: &Device) -> (Linear, Tensor<2>, Tensor<2>) {
        device.seed(7);
        let model: Linear = LinearConfig::new(300, 70).init(device);
        let x = Tensor::<2>::random([16, 300], Init::Normal(0.0, 1.0), device);
        let y = Tensor::<2>::random([16, 70], Init::Normal(0.0, 1.0), device);
        (model, x, y)
    }

    /// The parameters of the problem's model after `steps` steps of `optim`.
    fn train(
        (mut model, x, y): (Linear, Tensor<2>, Tensor<2>),
        mut optim: ModuleOptimizer,
        steps: usize,
    ) -> Vec<Vec<u32>> {
        for _ in 0..steps {
            let loss = (model.forward(x.clone()) - y.clone())
                .powf_scalar(2.0)
                .mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(3e-3, model, grads);
        }
        let bits = |t: Tensor<2>| t.into_data().iter::<f32>().map(f32::to_bits).collect();
        let bias = model.bias.expect("a bias").val().unsqueeze::<2>();
        vec![bits(model.weight.val()), bits(bias)]
    }

    fn burn_adam() -> ModuleOptimizer {
        AdamConfig::new().with_epsilon(1e-8).init()
    }

    #[test]
    #[allow(deprecated)] // Device::ndarray: the independent backend of these tests
    fn equals_burns_adam_bit_for_bit_on_every_path() {
        // flex runs the fused kernel (its 21,000-value weight is split over threads); ndarray
        // runs burn's Adam through the fallback.
        for device in [Device::flex().autodiff(), Device::ndarray().autodiff()] {
            let problem = problem(&device);
            let fused = train(problem.clone(), FusedAdam::new().init(), 6);
            let reference = train(problem.clone(), burn_adam(), 6);
            assert_eq!(fused, reference, "{device:?}");
            // and the training moved the parameters
            assert_ne!(fused, train(problem, burn_adam(), 0), "{device:?}");
        }
    }

    #[test]
    fn a_parameter_shared_elsewhere_is_not_changed() {
        let device = Device::flex();
        let values: Vec<f32> = (0..1000).map(|i| i as f32 / 100.0).collect();
        let param = Tensor::<1>::from_data(TensorData::new(values.clone(), [1000]), &device);
        let kept = param.clone();
        let grad = param.clone().ones_like();
        let (updated, _) = FusedAdam::new().step(0.1, param, grad, None);
        let kept: Vec<f32> = kept.into_data().iter::<f32>().collect();
        assert_eq!(kept, values);
        let updated: Vec<f32> = updated.into_data().iter::<f32>().collect();
        // The first Adam step moves every value by lr (g / √g² = 1), here 0.1.
        for (u, v) in updated.iter().zip(&values) {
            assert!((u - (v - 0.1)).abs() < 1e-5, "{u} vs {}", v - 0.1);
        }
    }

    #[test]
    #[should_panic(expected = "beta_2 must be in [0, 1), got 1")]
    fn invalid_betas_are_named() {
        let _ = FusedAdam::new().with_betas(0.9, 1.0);
    }

    #[test]
    #[should_panic(expected = "epsilon must be finite and > 0, got -1")]
    fn invalid_epsilon_is_named() {
        let _ = FusedAdam::new().with_epsilon(-1.0);
    }
}
