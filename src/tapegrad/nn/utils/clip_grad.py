"""Gradient clipping: `clip_grad_norm_` (one op over all gradients) and `clip_grad_value_`."""
from __future__ import annotations

from typing import Iterable

import jax.numpy as jnp

from ..._core import grad_mode as _grad_mode
from ..._core.graph import Op, SAVES_NONE
from ..._tensor.apply import apply
from ..._tensor.construct import tensor
from ..._tensor.inplace import inplace
from ..._tensor.tensor import Tensor


_TensorOrTensors = Tensor | Iterable[Tensor]


def _total_norm(*grads, norm_type):
    norms = [jnp.linalg.norm(g.reshape(-1).astype(jnp.result_type(*grads)), ord=norm_type)
             for g in grads]
    return jnp.linalg.norm(jnp.stack(norms), ord=norm_type)


total_norm = Op("clip_grad_total_norm", _total_norm, saves=SAVES_NONE, differentiable=False)
scale_by = Op("clip_grad_scale", lambda g, total, *, max_norm:
              g * jnp.minimum(max_norm / (total + 1e-6), 1.0).astype(g.dtype),
              saves=SAVES_NONE, differentiable=False)


def _grads(parameters: _TensorOrTensors) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: _TensorOrTensors, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Scale gradients in place so their joint `norm_type`-norm is at most `max_norm`.

    Returns the total norm before clipping (a tensor). The norm is one op over all gradients
    and each gradient is scaled by `min(max_norm / (total + 1e-6), 1)`, as in PyTorch.
    """
    params = _grads(parameters)
    if not params:
        return tensor(0.0)
    norm_type = float(norm_type)
    with _grad_mode.no_grad():
        total = apply(total_norm, *[p.grad for p in params], norm_type=norm_type)
        if error_if_nonfinite and not bool(jnp.isfinite(total.jax())):
            raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                               "`parameters` is non-finite, so it cannot be clipped. To disable "
                               "this error and scale the gradients by the non-finite norm anyway, "
                               "set `error_if_nonfinite=False`")
        for p in params:
            g = p.grad
            inplace(g, apply(scale_by, g, total, max_norm=float(max_norm)))
    return total


def clip_grad_norm(parameters: _TensorOrTensors, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Deprecated alias of `clip_grad_norm_`."""
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters: _TensorOrTensors, clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient in place to `[-clip_value, clip_value]`."""
    clip_value = float(clip_value)
    with _grad_mode.no_grad():
        for p in _grads(parameters):
            p.grad.clamp_(-clip_value, clip_value)


__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_"]
