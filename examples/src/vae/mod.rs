//! The MNIST VAEs of the `mnist_vae` example: the models and their training steps ([`model`]),
//! the exponential moving average of the weights ([`ema`]) and the learning-rate warm-up
//! ([`schedule`]).

pub mod ema;
pub mod model;
pub mod schedule;
