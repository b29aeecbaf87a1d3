"""`kl_divergence(p, q)`: closed forms per pair of distribution types (`register_kl`)."""
from __future__ import annotations

import math

import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import digamma, gammaln

from .._core.graph import Op
from .._functions.pointwise import where
from .._tensor.apply import apply
from .._tensor.tensor import Tensor
from ..nn import functional as F
from .categorical import Bernoulli, Categorical, OneHotCategorical
from .distribution import Distribution
from .gamma import Beta, Dirichlet, Gamma
from .multivariate_normal import MultivariateNormal
from .normal import Normal, Uniform

_KL: dict = {}


def register_kl(type_p: type, type_q: type):
    """Decorator: `@register_kl(P, Q) def kl(p, q): ...` registers KL(p || q) for P and Q."""
    def decorate(fn):
        _KL[type_p, type_q] = fn
        return fn
    return decorate


def kl_divergence(p: Distribution, q: Distribution) -> Tensor:
    """`KL(p || q)`, batched over the distributions' batch shape."""
    for tp in type(p).__mro__:
        for tq in type(q).__mro__:
            if (tp, tq) in _KL:
                return _KL[tp, tq](p, q)
    raise NotImplementedError(f"No KL(p || q) is implemented for p type {type(p).__name__} "
                              f"and q type {type(q).__name__}")


_INF = float("inf")


@register_kl(Normal, Normal)
def _kl_normal_normal(p: Normal, q: Normal) -> Tensor:
    var_ratio = (p.scale / q.scale).pow(2)
    t1 = ((p.loc - q.loc) / q.scale).pow(2)
    return 0.5 * (var_ratio + t1 - 1 - var_ratio.log())


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p: Bernoulli, q: Bernoulli) -> Tensor:
    t1 = p.probs * (F.softplus(-q.logits) - F.softplus(-p.logits))
    t1 = where(p.probs == 0, 0.0, where(q.probs == 0, _INF, t1))
    t2 = (1 - p.probs) * (F.softplus(q.logits) - F.softplus(p.logits))
    t2 = where(p.probs == 1, 0.0, where(q.probs == 1, _INF, t2))
    return t1 + t2


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p: Categorical, q: Categorical) -> Tensor:
    t = p.probs * (p.logits - q.logits)
    shape = tuple(t.shape)
    t = where((q.probs == 0).expand(shape), _INF, t)
    t = where((p.probs == 0).expand(shape), 0.0, t)
    return t.sum(-1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehot_onehot(p: OneHotCategorical, q: OneHotCategorical) -> Tensor:
    return _kl_categorical_categorical(p._categorical, q._categorical)


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p: Uniform, q: Uniform) -> Tensor:
    result = ((q.high - q.low) / (p.high - p.low)).log()
    return where((q.low > p.low) | (q.high < p.high), _INF, result)


def _kl_gamma(p_conc, p_rate, q_conc, q_rate):
    return (q_conc * jnp.log(p_rate / q_rate) + gammaln(q_conc) - gammaln(p_conc)
            + (p_conc - q_conc) * digamma(p_conc) + (q_rate - p_rate) * (p_conc / p_rate))


kl_gamma_gamma_op = Op("kl_gamma_gamma", _kl_gamma, grad_name="AddBackward0")


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p: Gamma, q: Gamma) -> Tensor:
    return apply(kl_gamma_gamma_op, p.concentration, p.rate, q.concentration, q.rate)


def _kl_dirichlet(p, q):
    sum_p, sum_q = p.sum(-1), q.sum(-1)
    t4 = digamma(p) - digamma(sum_p)[..., None]
    return (gammaln(sum_p) - gammaln(sum_q) - (gammaln(p) - gammaln(q)).sum(-1)
            + ((p - q) * t4).sum(-1))


kl_dirichlet_dirichlet_op = Op("kl_dirichlet_dirichlet", _kl_dirichlet, grad_name="AddBackward0")


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p: Dirichlet, q: Dirichlet) -> Tensor:
    return apply(kl_dirichlet_dirichlet_op, p.concentration, q.concentration)


@register_kl(Beta, Beta)
def _kl_beta_beta(p: Beta, q: Beta) -> Tensor:
    return _kl_dirichlet_dirichlet(p._dirichlet, q._dirichlet)


def _kl_mvn(p_loc, p_tril, q_loc, q_tril):
    n = p_loc.shape[-1]
    shape = jnp.broadcast_shapes(p_tril.shape[:-2], q_tril.shape[:-2], p_loc.shape[:-1],
                                 q_loc.shape[:-1])
    qL = jnp.broadcast_to(q_tril, shape + (n, n))
    pL = jnp.broadcast_to(p_tril, shape + (n, n))
    log_diag = lambda L: jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)).sum(-1)  # noqa: E731
    term2 = (solve_triangular(qL, pL, lower=True) ** 2).sum((-2, -1))
    diff = jnp.broadcast_to(q_loc - p_loc, shape + (n,))[..., None]
    term3 = (solve_triangular(qL, diff, lower=True) ** 2).sum((-2, -1))
    return log_diag(q_tril) - log_diag(p_tril) + 0.5 * (term2 + term3 - n)


kl_mvn_mvn_op = Op("kl_mvn_mvn", _kl_mvn, grad_name="AddBackward0")


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p: MultivariateNormal, q: MultivariateNormal) -> Tensor:
    if p.event_shape != q.event_shape:
        raise ValueError("KL-divergence between two Multivariate Normals with different event "
                         "shapes cannot be computed")
    return apply(kl_mvn_mvn_op, p.loc, p._unbroadcasted_scale_tril, q.loc,
                 q._unbroadcasted_scale_tril)


# -- pairs of different families: PyTorch's closed forms (infinite where p's support is wider) ---
def _x_log_x(t: Tensor) -> Tensor:
    return t * t.log()


def _infinite_like(t: Tensor) -> Tensor:
    return t.detach() * 0 + _INF


@register_kl(Normal, Uniform)
@register_kl(Normal, Gamma)
@register_kl(Normal, Beta)
def _kl_normal_infinity(p: Normal, q: Distribution) -> Tensor:
    return _infinite_like(p.loc)


@register_kl(Gamma, Uniform)
@register_kl(Gamma, Beta)
def _kl_gamma_infinity(p: Gamma, q: Distribution) -> Tensor:
    return _infinite_like(p.concentration)


@register_kl(Beta, Gamma)
def _kl_beta_gamma(p: Beta, q: Gamma) -> Tensor:
    c1, c0 = p.concentration1, p.concentration0
    t2 = q.concentration.lgamma() - q.concentration * q.rate.log()
    t3 = (q.concentration - 1) * (c1.digamma() - (c1 + c0).digamma())
    return -p.entropy() + t2 - t3 + q.rate * c1 / (c1 + c0)


@register_kl(Beta, Normal)
def _kl_beta_normal(p: Beta, q: Normal) -> Tensor:
    c1, c0 = p.concentration1, p.concentration0
    mean = c1 / (c1 + c0)
    var_q = q.scale ** 2
    t3 = (mean * (1 - mean) / (c1 + c0 + 1) + mean ** 2) * 0.5
    return (-p.entropy() + 0.5 * (var_q * 2 * math.pi).log()
            + (t3 - q.loc * mean + q.loc ** 2 * 0.5) / var_q)


@register_kl(Beta, Uniform)
def _kl_beta_uniform(p: Beta, q: Uniform) -> Tensor:
    result = -p.entropy() + (q.high - q.low).log()
    return where((q.low > 0) | (q.high < 1), _INF, result)


@register_kl(Gamma, Normal)
def _kl_gamma_normal(p: Gamma, q: Normal) -> Tensor:
    conc, var_q, rate_sq = p.concentration, q.scale ** 2, p.rate ** 2
    t1 = 0.5 * (rate_sq * var_q * 2 * math.pi).log() - conc - conc.lgamma()
    t2 = 0.5 * (conc ** 2 + conc) / rate_sq
    return t1 + (conc - 1) * conc.digamma() + (t2 - q.loc * conc / p.rate
                                              + 0.5 * q.loc ** 2) / var_q


@register_kl(Uniform, Beta)
def _kl_uniform_beta(p: Uniform, q: Beta) -> Tensor:
    width = p.high - p.low
    c1, c0 = q.concentration1, q.concentration0
    t2 = (c1 - 1) * (_x_log_x(p.high) - _x_log_x(p.low) - width) / width
    t3 = (c0 - 1) * (_x_log_x(1 - p.high) - _x_log_x(1 - p.low) + width) / width
    t4 = c1.lgamma() + c0.lgamma() - (c1 + c0).lgamma()
    return where((p.high > 1) | (p.low < 0), _INF, t3 + t4 - width.log() - t2)


@register_kl(Uniform, Gamma)
def _kl_uniform_gamma(p: Uniform, q: Gamma) -> Tensor:
    width = p.high - p.low
    t2 = q.concentration.lgamma() - q.concentration * q.rate.log()
    t3 = (1 - q.concentration) * (_x_log_x(p.high) - _x_log_x(p.low) - width) / width
    result = -width.log() + t2 + t3 + q.rate * (p.high + p.low) / 2
    return where(p.low < 0, _INF, result)


@register_kl(Uniform, Normal)
def _kl_uniform_normal(p: Uniform, q: Normal) -> Tensor:
    width = p.high - p.low
    t1 = (math.sqrt(math.pi * 2) * q.scale / width).log()
    return t1 + 0.5 * (width ** 2 / 12 + ((p.high + p.low - 2 * q.loc) / 2) ** 2) / q.scale ** 2
