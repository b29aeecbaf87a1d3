"""`tapegrad.autograd.forward_ad` (PyTorch's forward-mode AD): dual tensors.

Inside `dual_level()`, `make_dual(x, t)` is a view of `x` carrying the tangent `t`; every op on a
dual tensor gives its result the tangent `jax.jvp` of the op computes (see
`_core/forward_ad.py`), and `unpack_dual(y)` returns `(primal, tangent)`:

    with forward_ad.dual_level():
        x = forward_ad.make_dual(primal, tangent)
        jvp = forward_ad.unpack_dual(f(x)).tangent   # J(primal) @ tangent

Tangents live only while the level is open: leaving it drops them all.
"""
from __future__ import annotations

import functools
import weakref
from typing import NamedTuple

from .._core import forward_ad as _state
from .._core.grad_mode import no_grad
from .._tensor.tensor import Tensor

__all__ = ["dual_level", "make_dual", "unpack_dual", "enter_dual_level", "exit_dual_level",
           "UnpackedDualTensor"]

_levels = 0  # levels entered so far; a level's number is its position, as in PyTorch


class UnpackedDualTensor(NamedTuple):
    """A dual tensor's primal (a view of it without tangent) and tangent (None if it has none)."""
    primal: Tensor
    tangent: Tensor | None


def enter_dual_level() -> int:
    """Open a dual level (one at a time, as in PyTorch); returns its number."""
    global _levels
    if _state.state.level is not None:
        raise RuntimeError("Nested forward mode AD is not supported at the moment")
    _state.state.level = _levels
    _state.state.tangents = weakref.WeakKeyDictionary()
    _levels += 1
    return _state.state.level


def exit_dual_level(*, level: int | None = None) -> None:
    """Close the dual level `level` (the open one by default); its tangents are dropped."""
    if level is None:
        level = _state.state.level
    if level is None or level != _state.state.level:
        raise RuntimeError("Trying to exit a forward AD level that was not the last one that was "
                           "created. This is not supported.")
    _state.state.level = None
    _state.state.tangents = None


class dual_level:
    """Context manager (and decorator) for one dual level: `with dual_level(): ...`."""

    def __enter__(self) -> int:
        return enter_dual_level()

    def __exit__(self, *exc) -> None:
        exit_dual_level()

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with dual_level():
                return fn(*args, **kwargs)
        return wrapper


def _check_level(level: int | None) -> None:
    if level is not None and level != _state.state.level:
        raise RuntimeError(f"forward AD level {level} is not the open dual level "
                           f"({_state.state.level})")


def make_dual(tensor: Tensor, tangent: Tensor, *, level: int | None = None) -> Tensor:
    """A view of `tensor` whose tangent is `tangent` (same size), for forward-mode AD."""
    if _state.state.level is None:
        raise RuntimeError("Trying to create a dual Tensor for forward AD but no level exists, "
                           "make sure to enter_dual_level() first.")
    _check_level(level)
    if not (tensor.is_floating_point() or tensor.is_complex()):
        raise ValueError(f"Expected primal to be floating point or complex, but got: {tensor.dtype}")
    if not (tangent.is_floating_point() or tangent.is_complex()):
        raise ValueError(f"Expected tangent to be floating point or complex, but got: "
                         f"{tangent.dtype}")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise RuntimeError(
            "Trying to set a forward gradient that has a different size than that of the original "
            f"Tensor, this is not supported. Tensor is of size {list(tensor.shape)} while the given "
            f"forward gradient is of size {list(tangent.shape)}.")
    with no_grad():
        value = tangent.detach().jax()
    dual = tensor.view_as(tensor)
    _state.set_tangent(dual._node, value)
    return dual


def unpack_dual(tensor: Tensor, *, level: int | None = None) -> UnpackedDualTensor:
    """`(primal, tangent)` of `tensor` at the open level; the tangent is None for a tensor that
    does not carry one (or when no level is open)."""
    if _state.state.level is None:
        return UnpackedDualTensor(tensor, None)
    _check_level(level)
    value = _state.tangent_of(tensor._node)
    primal = tensor.view_as(tensor)
    _state.drop_tangent(primal._node)
    return UnpackedDualTensor(primal, None if value is None else Tensor._from_array(value))
