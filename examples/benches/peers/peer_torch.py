"""PyTorch (eager, CPU, float32) peer of burn-probability's benchmark workloads.

    python peer_torch.py --list
        prints the workload names, one per line.
    python peer_torch.py --workload NAME [--reps N] [--warmup W] [--threads T]
        builds the inputs, runs W untimed and N timed iterations, and prints one line of JSON
        to stdout: lib, version, workload, median_ms, min_ms, times_ms, items_per_iter,
        peak_rss_mb. Everything else goes to stderr.

The workloads mirror examples/src/workloads.rs (same names, shapes and dtypes): the
torch.distributions operations forward (`_fwd`) and forward + backward (`_fwdbwd`: the output
is summed and differentiated with respect to the distribution parameters), the IWAE bound
with its gradient, and one optimizer step of three VAEs.

Argument validation of torch.distributions is switched off, as in TFP (validate_args=False)
and burn-probability (validation is opt-in): it would otherwise check every parameter and
value on each call.
"""

import math
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ARGS = common.parse_args(__doc__.splitlines()[0])
common.limit_threads(ARGS.threads)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.distributions import (  # noqa: E402
    AffineTransform,
    Bernoulli,
    Beta,
    Binomial,
    Categorical,
    Cauchy,
    ContinuousBernoulli,
    Dirichlet,
    Distribution,
    MixtureSameFamily,
    MultivariateNormal,
    Exponential,
    Gamma,
    Geometric,
    Gumbel,
    HalfNormal,
    Independent,
    Laplace,
    LogNormal,
    Normal,
    Poisson,
    RelaxedBernoulli,
    RelaxedOneHotCategorical,
    SigmoidTransform,
    StudentT,
    TransformedDistribution,
    Uniform,
    kl_divergence,
)
from torch.distributions.relaxed_categorical import ExpRelaxedCategorical  # noqa: E402

torch.set_num_threads(ARGS.threads)
torch.set_num_interop_threads(1)
torch.manual_seed(0)
Distribution.set_default_validate_args(False)

E = (1000, 1000)
SIMPLEX = (250000, 4)
TRIL = (125000, 8)
MIXTURE = (200000, 5)
CONCRETE = (10000, 200)
PIXELS = (10000, 784)
CATEGORIES = (100000, 10)
TEMPERATURE = torch.tensor(0.5)


# ---------------------------------------------------------------------------------------------
# Inputs


def standard_normal(shape):
    return torch.randn(shape)


def scale_like(shape):
    """Uniform(0.5, 1.5)."""
    return torch.empty(shape).uniform_(0.5, 1.5)


def binary(shape):
    """Bernoulli(0.5) draws as 0/1 floats."""
    return torch.bernoulli(torch.full(shape, 0.5))


def between(shape, low, high):
    """Uniform(low, high)."""
    return torch.empty(shape).uniform_(low, high)


def counts(shape, n):
    """Whole numbers drawn uniformly from 0..n, as floats (the discrete families' values)."""
    return between(shape, 0, n).floor().clamp(0, n - 1)


# ---------------------------------------------------------------------------------------------
# Distribution workloads


def logistic(loc, scale):
    """torch.distributions has no Logistic: the canonical transformed uniform."""
    base = Uniform(torch.zeros(1), torch.ones(1))
    return TransformedDistribution(base, [SigmoidTransform().inv, AffineTransform(loc, scale)])


def check_logistic(loc, scale, x):
    with torch.no_grad():
        z = (x - loc) / scale
        closed_form = -z - 2 * F.softplus(-z) - scale.log()
        err = (logistic(loc, scale).log_prob(x) - closed_form).abs().max().item()
    if not err <= 1e-4:
        print(f"logistic log_prob check FAILED: max |error| = {err:.3g}", file=sys.stderr)


def normal_inputs():
    return [standard_normal(E), scale_like(E)], [standard_normal(E)]


def kl_inputs():
    return [standard_normal(E), scale_like(E), standard_normal(E), scale_like(E)], []


def logistic_inputs():
    params, inputs = normal_inputs()
    check_logistic(*params, *inputs)
    return params, inputs


def concrete_sample_inputs():
    return [standard_normal(CONCRETE)], []


def concrete_log_prob_inputs():
    logits = standard_normal(CONCRETE)
    y = RelaxedBernoulli(TEMPERATURE, logits=logits).sample().clamp(1e-6, 1 - 1e-6)
    return [logits], [y]


def bernoulli_inputs():
    return [standard_normal(PIXELS)], [binary(PIXELS)]


def categorical_inputs():
    """Logits and class indices (int64) drawn uniformly from the classes."""
    batch, classes = CATEGORIES
    return [standard_normal(CATEGORIES)], [torch.randint(0, classes, (batch,))]


def relaxed_sample_inputs():
    return [standard_normal(CATEGORIES)], []


def relaxed_log_prob_inputs():
    logits = standard_normal(CATEGORIES)
    return [logits], [RelaxedOneHotCategorical(TEMPERATURE, logits=logits).sample()]


def exprelaxed_log_prob_inputs():
    logits = standard_normal(CATEGORIES)
    return [logits], [ExpRelaxedCategorical(TEMPERATURE, logits=logits).sample()]


def positive_value_inputs():
    """Loc ~ N(0, 1), scale ~ U(0.5, 1.5), and a value ~ U(0.5, 1.5) (LogNormal)."""
    return [standard_normal(E), scale_like(E)], [scale_like(E)]


def student_t_inputs():
    """df ~ U(2, 10), loc, scale, and a value ~ N(0, 1), all three parameters differentiated."""
    return [between(E, 2, 10), standard_normal(E), scale_like(E)], [standard_normal(E)]


def student_t_sample_inputs():
    """Loc and scale (differentiated), df ~ U(2, 10) a constant."""
    return [standard_normal(E), scale_like(E)], [between(E, 2, 10)]


def positive_inputs():
    """One positive parameter ~ U(0.5, 1.5) and a value ~ U(0.5, 1.5) (Exponential, HalfNormal)."""
    return [scale_like(E)], [scale_like(E)]


def uniform_inputs():
    """low ~ U(-1.5, -0.5), high ~ U(0.5, 1.5) and a value ~ U(-0.5, 0.5), inside [low, high)."""
    return [between(E, -1.5, -0.5), scale_like(E)], [between(E, -0.5, 0.5)]


def cb_inputs():
    return [standard_normal(E)], [between(E, 0, 1)]


def poisson_inputs():
    """Rate ~ U(5, 15) and counts in 0..20."""
    return [between(E, 5, 15)], [counts(E, 20)]


def binomial_inputs():
    """Logits and counts in 0..=20 (total_count 20)."""
    return [standard_normal(E)], [counts(E, 21)]


def geometric_inputs():
    return [standard_normal(E)], [counts(E, 10)]


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
    return [concentration(SIMPLEX)], [u / u.sum(-1, keepdim=True)]


def tril_inputs():
    """loc ~ N(0, 1) [125000, 8]; scale_tril: U(-0.3, 0.3) below the diagonal, U(0.5, 1.5) on it;
    x ~ N(0, 1)."""
    n, k = TRIL
    lower = torch.tril(torch.ones(k, k), diagonal=-1)
    eye = torch.eye(k)
    scale = between((n, k, k), -0.3, 0.3) * lower + scale_like((n, k, k)) * eye
    return [standard_normal(TRIL), scale], [standard_normal(TRIL)]


def mixture_inputs():
    """200000 mixtures of 5 Normals: logits, loc ~ N(0, 1), scale ~ U(0.5, 1.5); x ~ N(0, 1)."""
    return ([standard_normal(MIXTURE), standard_normal(MIXTURE), scale_like(MIXTURE)],
            [standard_normal((MIXTURE[0],))])


# name: (inputs, computation, items). `inputs()` returns (parameters, other inputs); the
# computation takes the parameters, then the other inputs.
DISTRIBUTIONS = {
    "normal_log_prob": (normal_inputs, lambda loc, scale, x: Normal(loc, scale).log_prob(x), 10**6),
    "normal_rsample": (normal_inputs, lambda loc, scale, _x: Normal(loc, scale).rsample(), 10**6),
    "normal_entropy": (normal_inputs, lambda loc, scale, _x: Normal(loc, scale).entropy(), 10**6),
    "normal_kl": (
        kl_inputs,
        lambda l1, s1, l2, s2: kl_divergence(Normal(l1, s1), Normal(l2, s2)),
        10**6,
    ),
    "logistic_log_prob": (
        logistic_inputs,
        lambda loc, scale, x: logistic(loc, scale).log_prob(x),
        10**6,
    ),
    "binconcrete_rsample": (
        concrete_sample_inputs,
        lambda logits: RelaxedBernoulli(TEMPERATURE, logits=logits).rsample(),
        2 * 10**6,
    ),
    "binconcrete_log_prob": (
        concrete_log_prob_inputs,
        lambda logits, y: RelaxedBernoulli(TEMPERATURE, logits=logits).log_prob(y),
        2 * 10**6,
    ),
    "bernoulli_log_prob": (
        bernoulli_inputs,
        lambda logits, x: Bernoulli(logits=logits).log_prob(x),
        7_840_000,
    ),
    "categorical_log_prob": (
        categorical_inputs,
        lambda logits, k: Categorical(logits=logits).log_prob(k),
        10**6,
    ),
    "relaxed_rsample": (
        relaxed_sample_inputs,
        lambda logits: RelaxedOneHotCategorical(TEMPERATURE, logits=logits).rsample(),
        10**6,
    ),
    "relaxed_log_prob": (
        relaxed_log_prob_inputs,
        lambda logits, y: RelaxedOneHotCategorical(TEMPERATURE, logits=logits).log_prob(y),
        10**6,
    ),
    "exprelaxed_log_prob": (
        exprelaxed_log_prob_inputs,
        lambda logits, x: ExpRelaxedCategorical(TEMPERATURE, logits=logits).log_prob(x),
        10**6,
    ),
    "gumbel_log_prob": (normal_inputs, lambda loc, scale, x: Gumbel(loc, scale).log_prob(x), 10**6),
    "gumbel_rsample": (normal_inputs, lambda loc, scale, _x: Gumbel(loc, scale).rsample(), 10**6),
    "laplace_log_prob": (
        normal_inputs,
        lambda loc, scale, x: Laplace(loc, scale).log_prob(x),
        10**6,
    ),
    "laplace_rsample": (
        normal_inputs,
        lambda loc, scale, _x: Laplace(loc, scale).rsample(),
        10**6,
    ),
    "lognormal_log_prob": (
        positive_value_inputs,
        lambda loc, scale, x: LogNormal(loc, scale).log_prob(x),
        10**6,
    ),
    "lognormal_rsample": (
        positive_value_inputs,
        lambda loc, scale, _x: LogNormal(loc, scale).rsample(),
        10**6,
    ),
    "studentt_log_prob": (
        student_t_inputs,
        lambda df, loc, scale, x: StudentT(df, loc, scale).log_prob(x),
        10**6,
    ),
    "studentt_rsample": (
        student_t_sample_inputs,
        lambda loc, scale, df: StudentT(df, loc, scale).rsample(),
        10**6,
    ),
    "cauchy_log_prob": (
        normal_inputs,
        lambda loc, scale, x: Cauchy(loc, scale).log_prob(x),
        10**6,
    ),
    "cauchy_rsample": (
        normal_inputs,
        lambda loc, scale, _x: Cauchy(loc, scale).rsample(),
        10**6,
    ),
    "exponential_log_prob": (
        positive_inputs,
        lambda rate, x: Exponential(rate).log_prob(x),
        10**6,
    ),
    "exponential_rsample": (
        positive_inputs,
        lambda rate, _x: Exponential(rate).rsample(),
        10**6,
    ),
    "uniform_log_prob": (
        uniform_inputs,
        lambda low, high, x: Uniform(low, high).log_prob(x),
        10**6,
    ),
    "uniform_rsample": (
        uniform_inputs,
        lambda low, high, _x: Uniform(low, high).rsample(),
        10**6,
    ),
    "halfnormal_log_prob": (
        positive_inputs,
        lambda scale, x: HalfNormal(scale).log_prob(x),
        10**6,
    ),
    "halfnormal_rsample": (
        positive_inputs,
        lambda scale, _x: HalfNormal(scale).rsample(),
        10**6,
    ),
    "cb_log_prob": (
        cb_inputs,
        lambda logits, x: ContinuousBernoulli(logits=logits).log_prob(x),
        10**6,
    ),
    "cb_rsample": (
        cb_inputs,
        lambda logits, _x: ContinuousBernoulli(logits=logits).rsample(),
        10**6,
    ),
    "poisson_log_prob": (
        poisson_inputs,
        lambda rate, k: Poisson(rate).log_prob(k),
        10**6,
    ),
    "binomial_log_prob": (
        binomial_inputs,
        lambda logits, k: Binomial(20, logits=logits).log_prob(k),
        10**6,
    ),
    "geometric_log_prob": (
        geometric_inputs,
        lambda logits, k: Geometric(logits=logits).log_prob(k),
        10**6,
    ),
    "gamma_log_prob": (
        gamma_inputs,
        lambda alpha, rate, x: Gamma(alpha, rate).log_prob(x),
        10**6,
    ),
    "gamma_rsample": (
        gamma_inputs,
        lambda alpha, rate, _x: Gamma(alpha, rate).rsample(),
        10**6,
    ),
    "beta_log_prob": (
        beta_inputs,
        lambda a, b, x: Beta(a, b).log_prob(x),
        10**6,
    ),
    "beta_rsample": (
        beta_inputs,
        lambda a, b, _x: Beta(a, b).rsample(),
        10**6,
    ),
    "dirichlet_log_prob": (
        dirichlet_inputs,
        lambda alpha, x: Dirichlet(alpha).log_prob(x)[:, None],
        10**6,
    ),
    "dirichlet_rsample": (
        dirichlet_inputs,
        lambda alpha, _x: Dirichlet(alpha).rsample(),
        10**6,
    ),
    "mvn_tril_log_prob": (
        tril_inputs,
        lambda loc, scale, x: MultivariateNormal(loc, scale_tril=scale).log_prob(x)[:, None],
        10**6,
    ),
    "mvn_tril_rsample": (
        tril_inputs,
        lambda loc, scale, _x: MultivariateNormal(loc, scale_tril=scale).rsample(),
        10**6,
    ),
    "mixture_normal_log_prob": (
        mixture_inputs,
        lambda logits, loc, scale, x: MixtureSameFamily(
            Categorical(logits=logits), Normal(loc, scale)).log_prob(x)[:, None],
        10**6,
    ),
}


def forward(make_inputs, compute, items):
    params, inputs = make_inputs()
    return (lambda: compute(*params, *inputs)), items


def forward_backward(make_inputs, compute, items):
    params, inputs = make_inputs()
    params = [p.requires_grad_() for p in params]

    def step():
        for p in params:
            p.grad = None
        compute(*params, *inputs).sum().backward()

    return step, items


# ---------------------------------------------------------------------------------------------
# Models


def mlp(sizes, activation):
    """Linear layers with `activation` between them (none after the last)."""
    layers = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(d_in, d_out), activation()]
    return nn.Sequential(*layers[:-1])


def standard_normal_prior(latent):
    return Independent(Normal(torch.zeros(latent), torch.ones(latent)), 1)


class MlpVae(nn.Module):
    """784-200-200-2L encoder (loc, softplus scale), L-200-200-784 decoder (Bernoulli logits)."""

    def __init__(self, latent, activation):
        super().__init__()
        self.latent = latent
        self.encoder = mlp([784, 200, 200, 2 * latent], activation)
        self.decoder = mlp([latent, 200, 200, 784], activation)
        self.prior = standard_normal_prior(latent)

    def posterior(self, x):
        loc, raw = self.encoder(x).chunk(2, dim=-1)
        return Independent(Normal(loc, F.softplus(raw) + 1e-3), 1)

    def likelihood(self, z):
        """p(x | z) for latents z of shape [..., L]."""
        logits = self.decoder(z.reshape(-1, self.latent)).reshape(*z.shape[:-1], 784)
        return Independent(Bernoulli(logits=logits), 1)

    def elbo(self, x):
        """Monte Carlo ELBO with one reparameterized sample, averaged over the batch."""
        q = self.posterior(x)
        z = q.rsample()
        return (self.likelihood(z).log_prob(x) - (q.log_prob(z) - self.prior.log_prob(z))).mean()

    def iwae_bound(self, x, k):
        """Burda et al.'s bound: mean over the batch of logsumexp_k(log w) - log k."""
        q = self.posterior(x)
        z = q.rsample((k,))  # [k, B, L]
        log_w = self.likelihood(z).log_prob(x) + self.prior.log_prob(z) - q.log_prob(z)
        return (torch.logsumexp(log_w, dim=0) - math.log(k)).mean()


class ConvVae(nn.Module):
    """The Keras tutorial's convolutional VAE (latent 2, log-variance head), NCHW."""

    def __init__(self, latent=2):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(14 * 14 * 64, 32), nn.ReLU(),
        )  # fmt: skip
        self.mean = nn.Linear(32, latent)
        self.log_var = nn.Linear(32, latent)
        self.decoder = nn.Sequential(
            nn.Linear(latent, 14 * 14 * 64), nn.ReLU(),
            nn.Unflatten(1, (64, 14, 14)),
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.Conv2d(32, 1, 3, padding=1),
        )  # fmt: skip
        self.prior = standard_normal_prior(latent)

    def loss(self, x):
        """-ELBO with the closed-form KL, averaged over the batch."""
        h = self.encoder(x)
        mean, log_var = self.mean(h), self.log_var(h)
        q = Independent(Normal(mean, torch.exp(0.5 * log_var)), 1)
        z = q.rsample()
        likelihood = Independent(Bernoulli(logits=self.decoder(z)), 3)
        return (kl_divergence(q, self.prior) - likelihood.log_prob(x)).mean()


def iwae_bound_k50():
    model = MlpVae(latent=50, activation=nn.Tanh)
    x = binary((64, 784))

    def step():
        model.zero_grad(set_to_none=True)
        (-model.iwae_bound(x, k=50)).backward()

    return step, 64


def training(model, loss, optimizer, x):
    def step():
        optimizer.zero_grad(set_to_none=True)
        loss(x).backward()
        optimizer.step()

    return step, x.shape[0]


def train_conv():
    model = ConvVae()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    return training(model, model.loss, optimizer, binary((100, 1, 28, 28)))


def train_mlp():
    model = MlpVae(latent=2, activation=nn.ELU)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)
    return training(model, lambda x: -model.elbo(x), optimizer, binary((64, 784)))


def train_iwae():
    model = MlpVae(latent=50, activation=nn.Tanh)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)
    return training(model, lambda x: -model.iwae_bound(x, k=50), optimizer, binary((20, 784)))


# ---------------------------------------------------------------------------------------------

WORKLOADS = common.workloads(
    DISTRIBUTIONS, forward, forward_backward,
    iwae_bound_k50=iwae_bound_k50, train_conv=train_conv, train_mlp=train_mlp, train_iwae=train_iwae,
)

if __name__ == "__main__":
    common.run(ARGS, "torch", f"torch {torch.__version__}", WORKLOADS)
