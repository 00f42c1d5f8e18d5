"""TensorFlow + TensorFlow Probability (CPU, float32) peer of burn-probability's benchmark workloads.

    python peer_tf.py --list
        prints the workload names, one per line.
    python peer_tf.py --workload NAME [--reps N] [--warmup W] [--threads T]
        builds the inputs, runs W untimed and N timed iterations, and prints one line of JSON
        to stdout: lib, version, workload, median_ms, min_ms, times_ms, items_per_iter,
        peak_rss_mb. Everything else goes to stderr.

The workloads mirror examples/src/workloads.rs (same names, shapes and dtypes): the
tfp.distributions operations forward (`_fwd`) and forward + backward (`_fwdbwd`: the output
is summed and differentiated with respect to the distribution parameters, held in
tf.Variables), the IWAE bound with its gradient, and one optimizer step of three VAEs (Keras
layers and optimizers, `tf.keras`, which is Keras 3 here).

Each iteration is one call of a `tf.function` (jit_compile=False), traced during the warm-up;
a call returns computed EagerTensors.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ARGS = common.parse_args(__doc__.splitlines()[0])
common.limit_threads(ARGS.threads)
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_NUM_INTRAOP_THREADS"] = str(ARGS.threads)
os.environ["TF_NUM_INTEROP_THREADS"] = "1"

import tensorflow as tf  # noqa: E402

# Before any op runs (importing TFP may already run some).
tf.config.threading.set_intra_op_parallelism_threads(ARGS.threads)
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.get_logger().setLevel("ERROR")

import tensorflow_probability as tfp  # noqa: E402

tfd = tfp.distributions
keras = tf.keras
layers = keras.layers
keras.utils.set_random_seed(0)

E = (1000, 1000)
SIMPLEX = (250000, 4)
TRIL = (125000, 8)
MIXTURE = (200000, 5)
CONCRETE = (10000, 200)
PIXELS = (10000, 784)
CATEGORIES = (100000, 10)
TEMPERATURE = 0.5


# ---------------------------------------------------------------------------------------------
# Inputs


def standard_normal(shape):
    return tf.random.normal(shape)


def scale_like(shape):
    """Uniform(0.5, 1.5)."""
    return tf.random.uniform(shape, 0.5, 1.5)


def binary(shape):
    """Bernoulli(0.5) draws as 0/1 floats."""
    return tfd.Bernoulli(probs=0.5, dtype=tf.float32).sample(shape)


def between(shape, low, high):
    """Uniform(low, high)."""
    return tf.random.uniform(shape, low, high)


def counts(shape, n):
    """Whole numbers drawn uniformly from 0..n, as floats (the discrete families' values)."""
    return tf.clip_by_value(tf.floor(between(shape, 0.0, n)), 0.0, n - 1.0)


# ---------------------------------------------------------------------------------------------
# Distribution workloads


def normal_inputs():
    return [standard_normal(E), scale_like(E)], [standard_normal(E)]


def kl_inputs():
    return [standard_normal(E), scale_like(E), standard_normal(E), scale_like(E)], []


def concrete_sample_inputs():
    return [standard_normal(CONCRETE)], []


def concrete_log_prob_inputs():
    logits = standard_normal(CONCRETE)
    y = tfd.RelaxedBernoulli(TEMPERATURE, logits=logits).sample()
    return [logits], [tf.clip_by_value(y, 1e-6, 1 - 1e-6)]


def bernoulli_inputs():
    return [standard_normal(PIXELS)], [binary(PIXELS)]


def categorical_inputs():
    """Logits and class indices (int32) drawn uniformly from the classes."""
    batch, classes = CATEGORIES
    return [standard_normal(CATEGORIES)], [tf.random.uniform([batch], 0, classes, dtype=tf.int32)]


def relaxed_sample_inputs():
    return [standard_normal(CATEGORIES)], []


def relaxed_log_prob_inputs():
    logits = standard_normal(CATEGORIES)
    return [logits], [tfd.RelaxedOneHotCategorical(TEMPERATURE, logits=logits).sample()]


def exprelaxed_log_prob_inputs():
    logits = standard_normal(CATEGORIES)
    return [logits], [tfd.ExpRelaxedOneHotCategorical(TEMPERATURE, logits=logits).sample()]


def positive_value_inputs():
    """Loc ~ N(0, 1), scale ~ U(0.5, 1.5), and a value ~ U(0.5, 1.5) (LogNormal)."""
    return [standard_normal(E), scale_like(E)], [scale_like(E)]


def student_t_inputs():
    """df ~ U(2, 10), loc, scale, and a value ~ N(0, 1), all three parameters differentiated."""
    return [between(E, 2.0, 10.0), standard_normal(E), scale_like(E)], [standard_normal(E)]


def student_t_sample_inputs():
    """Loc and scale (differentiated), df ~ U(2, 10) a constant."""
    return [standard_normal(E), scale_like(E)], [between(E, 2.0, 10.0)]


def positive_inputs():
    """One positive parameter ~ U(0.5, 1.5) and a value ~ U(0.5, 1.5) (Exponential, HalfNormal)."""
    return [scale_like(E)], [scale_like(E)]


def uniform_inputs():
    """low ~ U(-1.5, -0.5), high ~ U(0.5, 1.5) and a value ~ U(-0.5, 0.5), inside [low, high)."""
    return [between(E, -1.5, -0.5), scale_like(E)], [between(E, -0.5, 0.5)]


def cb_inputs():
    return [standard_normal(E)], [between(E, 0.0, 1.0)]


def poisson_inputs():
    """Rate ~ U(5, 15) and counts in 0..20."""
    return [between(E, 5.0, 15.0)], [counts(E, 20.0)]


def binomial_inputs():
    """Logits and counts in 0..=20 (total_count 20)."""
    return [standard_normal(E)], [counts(E, 21.0)]


def geometric_inputs():
    return [standard_normal(E)], [counts(E, 10.0)]


def concentration(shape):
    """Concentrations as in variational inference: Uniform(0.5, 5)."""
    return between(shape, 0.5, 5.0)


def gamma_inputs():
    """Concentration ~ U(0.5, 5), rate ~ U(0.5, 1.5), and a value ~ U(0.5, 1.5)."""
    return [concentration(E), scale_like(E)], [scale_like(E)]


def beta_inputs():
    """Both concentrations ~ U(0.5, 5), and a value ~ U(0.05, 0.95)."""
    return [concentration(E), concentration(E)], [between(E, 0.05, 0.95)]


def dirichlet_inputs():
    """[250000, 4] concentrations ~ U(0.5, 5), and rows of U(0.5, 1.5) divided by their sums."""
    u = scale_like(SIMPLEX)
    return [concentration(SIMPLEX)], [u / tf.reduce_sum(u, -1, keepdims=True)]


def entropy_inputs():
    """The entropy depends on the scale only: the scale is the one parameter (a Variable)."""
    return [scale_like(E)], [standard_normal(E)]



def tril_inputs():
    """loc ~ N(0, 1) [125000, 8]; scale_tril: U(-0.3, 0.3) below the diagonal, U(0.5, 1.5) on it;
    x ~ N(0, 1)."""
    n, k = TRIL
    lower = tf.linalg.band_part(tf.ones((k, k)), -1, 0) - tf.eye(k)
    scale = between((n, k, k), -0.3, 0.3) * lower + scale_like((n, k, k)) * tf.eye(k)
    return [standard_normal(TRIL), scale], [standard_normal(TRIL)]


def mixture_inputs():
    """200000 mixtures of 5 Normals: logits, loc ~ N(0, 1), scale ~ U(0.5, 1.5); x ~ N(0, 1)."""
    return ([standard_normal(MIXTURE), standard_normal(MIXTURE), scale_like(MIXTURE)],
            [standard_normal((MIXTURE[0],))])

# name: (inputs, computation, items). `inputs()` returns (parameters, other inputs); the
# computation takes the parameters, then the other inputs.
DISTRIBUTIONS = {
    "normal_log_prob": (
        normal_inputs,
        lambda loc, scale, x: tfd.Normal(loc, scale).log_prob(x),
        10**6,
    ),
    "normal_rsample": (
        normal_inputs,
        lambda loc, scale, _x: tfd.Normal(loc, scale).sample(),
        10**6,
    ),
    "normal_entropy": (
        entropy_inputs,
        lambda scale, loc: tfd.Normal(loc, scale).entropy(),
        10**6,
    ),
    "normal_kl": (
        kl_inputs,
        lambda l1, s1, l2, s2: tfd.kl_divergence(tfd.Normal(l1, s1), tfd.Normal(l2, s2)),
        10**6,
    ),
    "logistic_log_prob": (
        normal_inputs,
        lambda loc, scale, x: tfd.Logistic(loc, scale).log_prob(x),
        10**6,
    ),
    "binconcrete_rsample": (
        concrete_sample_inputs,
        lambda logits: tfd.RelaxedBernoulli(TEMPERATURE, logits=logits).sample(),
        2 * 10**6,
    ),
    "binconcrete_log_prob": (
        concrete_log_prob_inputs,
        lambda logits, y: tfd.RelaxedBernoulli(TEMPERATURE, logits=logits).log_prob(y),
        2 * 10**6,
    ),
    "bernoulli_log_prob": (
        bernoulli_inputs,
        lambda logits, x: tfd.Bernoulli(logits=logits, dtype=tf.float32).log_prob(x),
        7_840_000,
    ),
    "categorical_log_prob": (
        categorical_inputs,
        lambda logits, k: tfd.Categorical(logits=logits).log_prob(k),
        10**6,
    ),
    "relaxed_rsample": (
        relaxed_sample_inputs,
        lambda logits: tfd.RelaxedOneHotCategorical(TEMPERATURE, logits=logits).sample(),
        10**6,
    ),
    "relaxed_log_prob": (
        relaxed_log_prob_inputs,
        lambda logits, y: tfd.RelaxedOneHotCategorical(TEMPERATURE, logits=logits).log_prob(y),
        10**6,
    ),
    "exprelaxed_log_prob": (
        exprelaxed_log_prob_inputs,
        lambda logits, x: tfd.ExpRelaxedOneHotCategorical(TEMPERATURE, logits=logits).log_prob(x),
        10**6,
    ),
    "gumbel_log_prob": (
        normal_inputs,
        lambda loc, scale, x: tfd.Gumbel(loc, scale).log_prob(x),
        10**6,
    ),
    "gumbel_rsample": (
        normal_inputs,
        lambda loc, scale, _x: tfd.Gumbel(loc, scale).sample(),
        10**6,
    ),
    "laplace_log_prob": (
        normal_inputs,
        lambda loc, scale, x: tfd.Laplace(loc, scale).log_prob(x),
        10**6,
    ),
    "laplace_rsample": (
        normal_inputs,
        lambda loc, scale, _x: tfd.Laplace(loc, scale).sample(),
        10**6,
    ),
    "lognormal_log_prob": (
        positive_value_inputs,
        lambda loc, scale, x: tfd.LogNormal(loc, scale).log_prob(x),
        10**6,
    ),
    "lognormal_rsample": (
        positive_value_inputs,
        lambda loc, scale, _x: tfd.LogNormal(loc, scale).sample(),
        10**6,
    ),
    "studentt_log_prob": (
        student_t_inputs,
        lambda df, loc, scale, x: tfd.StudentT(df, loc, scale).log_prob(x),
        10**6,
    ),
    "studentt_rsample": (
        student_t_sample_inputs,
        lambda loc, scale, df: tfd.StudentT(df, loc, scale).sample(),
        10**6,
    ),
    "cauchy_log_prob": (
        normal_inputs,
        lambda loc, scale, x: tfd.Cauchy(loc, scale).log_prob(x),
        10**6,
    ),
    "cauchy_rsample": (
        normal_inputs,
        lambda loc, scale, _x: tfd.Cauchy(loc, scale).sample(),
        10**6,
    ),
    "exponential_log_prob": (
        positive_inputs,
        lambda rate, x: tfd.Exponential(rate).log_prob(x),
        10**6,
    ),
    "exponential_rsample": (
        positive_inputs,
        lambda rate, _x: tfd.Exponential(rate).sample(),
        10**6,
    ),
    "uniform_log_prob": (
        uniform_inputs,
        lambda low, high, x: tfd.Uniform(low, high).log_prob(x),
        10**6,
    ),
    "uniform_rsample": (
        uniform_inputs,
        lambda low, high, _x: tfd.Uniform(low, high).sample(),
        10**6,
    ),
    "halfnormal_log_prob": (
        positive_inputs,
        lambda scale, x: tfd.HalfNormal(scale).log_prob(x),
        10**6,
    ),
    "halfnormal_rsample": (
        positive_inputs,
        lambda scale, _x: tfd.HalfNormal(scale).sample(),
        10**6,
    ),
    "cb_log_prob": (
        cb_inputs,
        lambda logits, x: tfd.ContinuousBernoulli(logits=logits).log_prob(x),
        10**6,
    ),
    "cb_rsample": (
        cb_inputs,
        lambda logits, _x: tfd.ContinuousBernoulli(logits=logits).sample(),
        10**6,
    ),
    "poisson_log_prob": (
        poisson_inputs,
        lambda rate, k: tfd.Poisson(rate=rate).log_prob(k),
        10**6,
    ),
    "binomial_log_prob": (
        binomial_inputs,
        lambda logits, k: tfd.Binomial(20.0, logits=logits).log_prob(k),
        10**6,
    ),
    "geometric_log_prob": (
        geometric_inputs,
        lambda logits, k: tfd.Geometric(logits=logits).log_prob(k),
        10**6,
    ),
    "gamma_log_prob": (
        gamma_inputs,
        lambda alpha, rate, x: tfd.Gamma(alpha, rate).log_prob(x),
        10**6,
    ),
    "gamma_rsample": (
        gamma_inputs,
        lambda alpha, rate, _x: tfd.Gamma(alpha, rate).sample(),
        10**6,
    ),
    "beta_log_prob": (
        beta_inputs,
        lambda a, b, x: tfd.Beta(a, b).log_prob(x),
        10**6,
    ),
    "beta_rsample": (
        beta_inputs,
        lambda a, b, _x: tfd.Beta(a, b).sample(),
        10**6,
    ),
    "dirichlet_log_prob": (
        dirichlet_inputs,
        lambda alpha, x: tfd.Dirichlet(alpha).log_prob(x)[:, None],
        10**6,
    ),
    "dirichlet_rsample": (
        dirichlet_inputs,
        lambda alpha, _x: tfd.Dirichlet(alpha).sample(),
        10**6,
    ),
    "mvn_tril_log_prob": (
        tril_inputs,
        lambda loc, scale, x: tfd.MultivariateNormalTriL(loc, scale_tril=scale).log_prob(x)[:, None],
        10**6,
    ),
    "mvn_tril_rsample": (
        tril_inputs,
        lambda loc, scale, _x: tfd.MultivariateNormalTriL(loc, scale_tril=scale).sample(),
        10**6,
    ),
    "mixture_normal_log_prob": (
        mixture_inputs,
        lambda logits, loc, scale, x: tfd.MixtureSameFamily(
            tfd.Categorical(logits=logits), tfd.Normal(loc, scale)).log_prob(x)[:, None],
        10**6,
    ),
}


def forward(make_inputs, compute, items):
    params, inputs = make_inputs()
    step = tf.function(compute, jit_compile=False)
    return (lambda: step(*params, *inputs)), items


def forward_backward(make_inputs, compute, items):
    params, inputs = make_inputs()
    params = [tf.Variable(p) for p in params]

    @tf.function(jit_compile=False)
    def step():
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(compute(*params, *inputs))
        # Returning the total too keeps graph pruning from skipping the forward pass.
        return total, tape.gradient(total, params)

    return step, items


# ---------------------------------------------------------------------------------------------
# Models


def mlp(sizes, activation):
    """Dense layers with `activation` between them (none after the last)."""
    hidden = [layers.Dense(n, activation=activation) for n in sizes[1:-1]]
    return keras.Sequential([keras.Input((sizes[0],)), *hidden, layers.Dense(sizes[-1])])


def standard_normal_prior(latent):
    return tfd.Independent(tfd.Normal(tf.zeros(latent), 1.0), reinterpreted_batch_ndims=1)


class MlpVae:
    """784-200-200-2L encoder (loc, softplus scale), L-200-200-784 decoder (Bernoulli logits)."""

    def __init__(self, latent, activation):
        self.latent = latent
        self.encoder = mlp([784, 200, 200, 2 * latent], activation)
        self.decoder = mlp([latent, 200, 200, 784], activation)
        self.prior = standard_normal_prior(latent)
        self.trainable_variables = self.encoder.trainable_variables + self.decoder.trainable_variables

    def posterior(self, x):
        loc, raw = tf.split(self.encoder(x), 2, axis=-1)
        return tfd.Independent(tfd.Normal(loc, tf.nn.softplus(raw) + 1e-3), 1)

    def likelihood(self, z):
        """p(x | z) for latents z of shape [..., L]."""
        logits = self.decoder(tf.reshape(z, [-1, self.latent]))
        logits = tf.reshape(logits, tf.concat([tf.shape(z)[:-1], [784]], axis=0))
        return tfd.Independent(tfd.Bernoulli(logits=logits, dtype=tf.float32), 1)

    def elbo(self, x):
        """Monte Carlo ELBO with one reparameterized sample, averaged over the batch."""
        q = self.posterior(x)
        z = q.sample()
        log_ratio = q.log_prob(z) - self.prior.log_prob(z)
        return tf.reduce_mean(self.likelihood(z).log_prob(x) - log_ratio)

    def iwae_bound(self, x, k):
        """Burda et al.'s bound: mean over the batch of logsumexp_k(log w) - log k."""
        q = self.posterior(x)
        z = q.sample(k)  # [k, B, L]
        log_w = self.likelihood(z).log_prob(x) + self.prior.log_prob(z) - q.log_prob(z)
        return tf.reduce_mean(tf.reduce_logsumexp(log_w, axis=0) - tf.math.log(float(k)))


class ConvVae:
    """The Keras tutorial's convolutional VAE (latent 2, log-variance head), NHWC."""

    def __init__(self, latent=2):
        x = keras.Input((28, 28, 1))
        h = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
        h = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(h)
        h = layers.Conv2D(64, 3, padding="same", activation="relu")(h)
        h = layers.Conv2D(64, 3, padding="same", activation="relu")(h)
        h = layers.Dense(32, activation="relu")(layers.Flatten()(h))
        self.encoder = keras.Model(x, [layers.Dense(latent)(h), layers.Dense(latent)(h)])
        self.decoder = keras.Sequential(
            [
                keras.Input((latent,)),
                layers.Dense(14 * 14 * 64, activation="relu"),
                layers.Reshape((14, 14, 64)),
                layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu"),
                layers.Conv2D(1, 3, padding="same"),
            ]
        )
        self.prior = standard_normal_prior(latent)
        self.trainable_variables = self.encoder.trainable_variables + self.decoder.trainable_variables

    def loss(self, x):
        """-ELBO with the closed-form KL, averaged over the batch."""
        mean, log_var = self.encoder(x)
        q = tfd.Independent(tfd.Normal(mean, tf.exp(0.5 * log_var)), 1)
        z = q.sample()
        likelihood = tfd.Independent(tfd.Bernoulli(logits=self.decoder(z), dtype=tf.float32), 3)
        return tf.reduce_mean(tfd.kl_divergence(q, self.prior) - likelihood.log_prob(x))


def iwae_bound_k50():
    model = MlpVae(latent=50, activation="tanh")
    x = binary((64, 784))

    @tf.function(jit_compile=False)
    def step():
        with tf.GradientTape() as tape:
            loss = -model.iwae_bound(x, k=50)
        return loss, tape.gradient(loss, model.trainable_variables)

    return step, 64


def training(loss, variables, optimizer, x):
    optimizer.build(variables)

    @tf.function(jit_compile=False)
    def step():
        with tf.GradientTape() as tape:
            value = loss(x)
        optimizer.apply_gradients(zip(tape.gradient(value, variables), variables))
        return value

    return step, x.shape[0]


def train_conv():
    model = ConvVae()
    optimizer = keras.optimizers.RMSprop(learning_rate=1e-3, rho=0.9, epsilon=1e-7)
    return training(model.loss, model.trainable_variables, optimizer, binary((100, 28, 28, 1)))


def train_mlp():
    model = MlpVae(latent=2, activation="elu")
    optimizer = keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-8)
    loss = lambda x: -model.elbo(x)  # noqa: E731
    return training(loss, model.trainable_variables, optimizer, binary((64, 784)))


def train_iwae():
    model = MlpVae(latent=50, activation="tanh")
    optimizer = keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-8)
    loss = lambda x: -model.iwae_bound(x, k=50)  # noqa: E731
    return training(loss, model.trainable_variables, optimizer, binary((20, 784)))


# ---------------------------------------------------------------------------------------------

WORKLOADS = common.workloads(
    DISTRIBUTIONS, forward, forward_backward,
    iwae_bound_k50=iwae_bound_k50, train_conv=train_conv, train_mlp=train_mlp, train_iwae=train_iwae,
)

if __name__ == "__main__":
    version = f"tf {tf.__version__} + tfp {tfp.__version__} + keras {keras.__version__} (tf.keras)"
    common.run(ARGS, "tf", version, WORKLOADS)
