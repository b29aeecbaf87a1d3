"""`parameters_to_vector` and `vector_to_parameters`."""
from __future__ import annotations

from typing import Iterable

from ..._core import grad_mode as _grad_mode
from ..._functions.shape import cat
from ..._tensor.tensor import Tensor


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor (differentiable)."""
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D `vec` into the parameters, in place."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    pointer = 0
    with _grad_mode.no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(vec[pointer:pointer + n].reshape(tuple(p.shape)))
            pointer += n


__all__ = ["parameters_to_vector", "vector_to_parameters"]
