"""`MultivariateNormal`, parameterised by a covariance, a precision or a lower Cholesky factor
(`scale_tril`, which every other form is turned into)."""
from __future__ import annotations

import math

import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from .._core.graph import Op
from .._functions.linalg import cholesky, inv
from .._tensor import random as _random
from .._tensor.apply import apply
from .._tensor.tensor import Size, Tensor
from . import constraints
from .distribution import Distribution


def _mvn_log_prob(x, loc, scale_tril):
    d = loc.shape[-1]
    diff = x - loc
    shape = jnp.broadcast_shapes(diff.shape[:-1], scale_tril.shape[:-2])
    L = jnp.broadcast_to(scale_tril, shape + scale_tril.shape[-2:])
    z = solve_triangular(L, jnp.broadcast_to(diff, shape + (d,))[..., None], lower=True)[..., 0]
    half_log_det = jnp.log(jnp.diagonal(scale_tril, axis1=-2, axis2=-1)).sum(-1)
    return -0.5 * (d * math.log(2 * math.pi) + (z**2).sum(-1)) - half_log_det


mvn_log_prob_op = Op("mvn_log_prob", _mvn_log_prob, grad_name="SubBackward0")


class MultivariateNormal(Distribution):
    """The normal distribution over vectors of the last dimension of `loc`; give exactly one of
    `covariance_matrix`, `precision_matrix` or `scale_tril`."""

    arg_constraints = {"loc": constraints.real_vector,
                       "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite,
                       "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: Tensor, covariance_matrix: Tensor | None = None,
                 precision_matrix: Tensor | None = None, scale_tril: Tensor | None = None,
                 validate_args: bool | None = None) -> None:
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        given = [m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None]
        if len(given) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril "
                             "may be specified.")
        matrix = given[0]
        name = ("scale_tril" if scale_tril is not None else
                "covariance_matrix" if covariance_matrix is not None else "precision_matrix")
        if matrix.ndim < 2:
            raise ValueError(f"{name} matrix must be at least two-dimensional, with optional "
                             "leading batch dimensions")
        batch = tuple(jnp.broadcast_shapes(tuple(matrix.shape[:-2]), tuple(loc.shape[:-1])))
        event = tuple(loc.shape[-1:])
        setattr(self, name, matrix.expand(batch + (-1, -1)))
        self.loc = loc.expand(batch + (-1,))
        super().__init__(batch, event, validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = cholesky(inv(precision_matrix))

    @property
    def scale_tril(self) -> Tensor:
        if "scale_tril" in self.__dict__:
            return self.__dict__["scale_tril"]
        return self._unbroadcasted_scale_tril.expand(self._batch_shape + self._event_shape * 2)

    @scale_tril.setter
    def scale_tril(self, value: Tensor) -> None:
        self.__dict__["scale_tril"] = value

    @property
    def covariance_matrix(self) -> Tensor:
        if "covariance_matrix" in self.__dict__:
            return self.__dict__["covariance_matrix"]
        L = self._unbroadcasted_scale_tril
        return (L @ L.mT).expand(self._batch_shape + self._event_shape * 2)

    @covariance_matrix.setter
    def covariance_matrix(self, value: Tensor) -> None:
        self.__dict__["covariance_matrix"] = value

    @property
    def precision_matrix(self) -> Tensor:
        if "precision_matrix" in self.__dict__:
            return self.__dict__["precision_matrix"]
        return inv(self.covariance_matrix)

    @precision_matrix.setter
    def precision_matrix(self, value: Tensor) -> None:
        self.__dict__["precision_matrix"] = value

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return self._unbroadcasted_scale_tril.pow(2).sum(-1).expand(
            self._batch_shape + self._event_shape)

    def rsample(self, sample_shape=Size()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        eps = _random.default_generator.sample("normal", shape, self.loc.dtype)
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return apply(mvn_log_prob_op, value, self.loc, self._unbroadcasted_scale_tril)

    def entropy(self) -> Tensor:
        half_log_det = self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        h = 0.5 * self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + half_log_det
        return h if not self._batch_shape else h.expand(self._batch_shape)
