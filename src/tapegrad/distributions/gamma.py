"""`Gamma`, `Dirichlet` and `Beta`: densities, entropies and reparameterised samples as rows
over `jax.scipy.special`, the draws by `jax.random.gamma` (whose implicit derivative with
respect to the concentration is what makes `rsample` differentiable, as PyTorch's)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln, xlogy

from .._core import dtype as _dtype
from .._core.graph import Op
from .._functions.shape import stack
from .._tensor import random as _random
from .._tensor.apply import apply
from .._tensor.tensor import Size, Tensor
from . import constraints
from .distribution import Distribution, broadcast_all


def _key(generator=None) -> Tensor:
    """Fresh key data for `jax.random` drawn from tapegrad's generator (recorded, so that
    `manual_seed` repeats it and `tapegrad.compile` lifts it)."""
    gen = generator if generator is not None else _random.default_generator
    return gen.sample("randint", (2,), _dtype.int64, (0, 2**31 - 1))


def _standard_gamma(concentration, key):
    tiny = jnp.finfo(concentration.dtype).tiny
    g = jax.random.gamma(jax.random.wrap_key_data(key.astype(jnp.uint32)), concentration,
                         dtype=concentration.dtype)
    return jnp.maximum(g, tiny)  # PyTorch clamps to the smallest normal number too


gamma_rsample_op = Op("gamma_rsample", _standard_gamma, saves=(0,),
                      grad_name="StandardGammaBackward0")


def _gamma_log_prob(x, concentration, rate):
    return (xlogy(concentration, rate) + xlogy(concentration - 1, x) - rate * x
            - gammaln(concentration))


gamma_log_prob_op = Op("gamma_log_prob", _gamma_log_prob, grad_name="SubBackward0")


def _gamma_entropy(concentration, rate):
    return (concentration - jnp.log(rate) + gammaln(concentration)
            + (1.0 - concentration) * digamma(concentration))


gamma_entropy_op = Op("gamma_entropy", _gamma_entropy, grad_name="AddBackward0")


class Gamma(Distribution):
    """The gamma distribution of shape `concentration` and `rate` (mean `concentration / rate`)."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration, rate, validate_args: bool | None = None) -> None:
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(self.concentration.shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.rate

    @property
    def mode(self) -> Tensor:
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self) -> Tensor:
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape=Size()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        g = apply(gamma_rsample_op, self.concentration.expand(shape), _key())
        return (g / self.rate.expand(shape)).clamp(min=float(jnp.finfo(g.dtype.np).tiny))

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return apply(gamma_log_prob_op, value, self.concentration, self.rate)

    def entropy(self) -> Tensor:
        return apply(gamma_entropy_op, self.concentration, self.rate)

    def cdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError("Gamma.cdf needs the regularised incomplete gamma function's "
                                  "derivative in the concentration, which tapegrad lacks")


def _dirichlet_rsample(concentration, key):
    g = _standard_gamma(concentration, key)
    return g / g.sum(-1, keepdims=True)


dirichlet_rsample_op = Op("dirichlet_rsample", _dirichlet_rsample, saves=(0,),
                          grad_name="DirichletBackward0")


def _dirichlet_log_prob(x, concentration):
    return (xlogy(concentration - 1.0, x).sum(-1) + gammaln(concentration.sum(-1))
            - gammaln(concentration).sum(-1))


dirichlet_log_prob_op = Op("dirichlet_log_prob", _dirichlet_log_prob, grad_name="SubBackward0")


def _dirichlet_entropy(concentration):
    k = concentration.shape[-1]
    a0 = concentration.sum(-1)
    return (gammaln(concentration).sum(-1) - gammaln(a0) - (k - a0) * digamma(a0)
            - ((concentration - 1.0) * digamma(concentration)).sum(-1))


dirichlet_entropy_op = Op("dirichlet_entropy", _dirichlet_entropy, grad_name="SubBackward0")


class Dirichlet(Distribution):
    """The Dirichlet distribution over the simplex, with `concentration` along the last dim."""

    arg_constraints = {"concentration": constraints.independent_positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration: Tensor, validate_args: bool | None = None) -> None:
        if concentration.ndim < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        super().__init__(concentration.shape[:-1], concentration.shape[-1:],
                         validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self) -> Tensor:
        a = (self.concentration - 1).clamp(min=0.0)
        return a / a.sum(-1, keepdim=True)

    @property
    def variance(self) -> Tensor:
        a0 = self.concentration.sum(-1, keepdim=True)
        return self.concentration * (a0 - self.concentration) / (a0.pow(2) * (a0 + 1))

    def rsample(self, sample_shape=Size()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        return apply(dirichlet_rsample_op, self.concentration.expand(shape), _key())

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return apply(dirichlet_log_prob_op, value, self.concentration)

    def entropy(self) -> Tensor:
        return apply(dirichlet_entropy_op, self.concentration)


class Beta(Distribution):
    """The beta distribution on [0, 1]: the first coordinate of a two-category Dirichlet."""

    arg_constraints = {"concentration1": constraints.positive,
                       "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args: bool | None = None) -> None:
        c1, c0 = broadcast_all(concentration1, concentration0)
        self._dirichlet = Dirichlet(stack([c1, c0], -1), validate_args=validate_args)
        super().__init__(self._dirichlet.batch_shape, validate_args=validate_args)

    @property
    def concentration1(self) -> Tensor:
        return self._dirichlet.concentration[..., 0]

    @property
    def concentration0(self) -> Tensor:
        return self._dirichlet.concentration[..., 1]

    @property
    def mean(self) -> Tensor:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self) -> Tensor:
        return self._dirichlet.mode[..., 0]

    @property
    def variance(self) -> Tensor:
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape=Size()) -> Tensor:
        return self._dirichlet.rsample(sample_shape).select(-1, 0)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        heads_tails = stack([value, 1.0 - value], -1)
        return self._dirichlet.log_prob(heads_tails)

    def entropy(self) -> Tensor:
        return self._dirichlet.entropy()
