//! An exponential moving average of a model's parameters (Polyak–Ruppert averaging, as TF's
//! `tf.train.ExponentialMovingAverage` and torch's `swa_utils.AveragedModel`).
//!
//! After update `n` (counting from 0), every averaged parameter is
//! `ema ← d_n·ema + (1 − d_n)·θ` with `d_n = min(decay, (1 + n) / (10 + n))`: TF's warm-up
//! rule, so the first updates are not dominated by the random initial weights.
//!
//! With a constant learning rate (RMSprop 1e-3 in the Keras tutorial) the trained weights keep
//! moving around the optimum; the test ELBO of the last iterate jumps by one or two nats from
//! epoch to epoch. The average over the last ~1/(1 − decay) steps sits closer to the optimum and
//! evaluates better and more steadily. Training itself is unchanged: the optimizer updates the
//! raw weights; the average is only evaluated, drawn and saved.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

/// The averaged copy of a model (on the plain, non-autodiff device) and its update count.
#[derive(Clone, Debug)]
pub struct Ema<M> {
    /// The averaged parameters.
    pub model: M,
    /// The decay `d` (0 < d < 1).
    pub decay: f64,
    /// How many updates have been folded in.
    pub updates: u64,
}

/// Every float parameter of a model, flattened, by id.
struct Collect(HashMap<ParamId, Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let n = value.shape().num_elements();
        self.0.insert(param.id, value.reshape([n]));
    }
}

/// `ema ← (1 − w)·ema + w·current`, parameter by parameter (matched by id).
struct Blend {
    current: HashMap<ParamId, Tensor<1>>,
    weight: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let current = self.current.remove(&param.id).unwrap_or_else(|| {
            panic!(
                "the averaged model has a parameter ({}) that the trained model lacks",
                param.id
            )
        });
        let w = self.weight;
        param.map(|ema| {
            let shape = ema.shape();
            ema.mul_scalar(1.0 - w) + current.reshape(shape).mul_scalar(w)
        })
    }
}

impl<M: Module> Ema<M> {
    /// Starts the average at the model's current parameters (`model` must be the plain copy,
    /// `trained.valid()`).
    pub fn new(model: M, decay: f64) -> Self {
        Self {
            model,
            decay,
            updates: 0,
        }
    }

    /// The decay used by the next update.
    pub fn next_decay(&self) -> f64 {
        let n = self.updates as f64;
        self.decay.min((1.0 + n) / (10.0 + n))
    }

    /// Folds the trained model's current parameters into the average.
    pub fn update(&mut self, trained: &M) {
        let mut collect = Collect(HashMap::new());
        trained.valid().visit(&mut collect);
        let mut blend = Blend {
            current: collect.0,
            weight: 1.0 - self.next_decay(),
        };
        self.model = self.model.clone().map(&mut blend);
        self.updates += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    fn weights(m: &Linear) -> Vec<f32> {
        m.weight.val().into_data().iter::<f32>().collect()
    }

    #[test]
    fn the_average_follows_the_warm_up_rule_then_the_decay() {
        let device = Device::flex();
        let start = LinearConfig::new(2, 3).init(&device);
        let mut ema = Ema::new(start.clone(), 0.2);
        // Update 0 uses d = min(0.2, 1/10) = 0.1, update 1 d = min(0.2, 2/11), update 2
        // d = min(0.2, 3/12) = 0.2.
        let mut expected = weights(&start);
        let mut model = start;
        for (step, d) in [0.1, 2.0 / 11.0, 0.2].into_iter().enumerate() {
            assert!((ema.next_decay() - d).abs() < 1e-12, "step {step}");
            let w = model.weight.val().add_scalar(1.0);
            model.weight = model.weight.map(|_| w);
            ema.update(&model);
            for (e, m) in expected.iter_mut().zip(weights(&model)) {
                *e = (d * *e as f64 + (1.0 - d) * m as f64) as f32;
            }
            for (a, b) in weights(&ema.model).iter().zip(&expected) {
                assert!((a - b).abs() < 1e-5, "step {step}: {a} vs {b}");
            }
        }
        assert_eq!(ema.updates, 3);
    }
}
