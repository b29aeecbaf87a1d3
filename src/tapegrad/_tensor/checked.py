"""Checking a tensor's values as PyTorch does: now when they are known, else where computed.

A known value is checked on the host at the call (an error at the line that caused it). A value
still pending, or traced (inside `tapegrad.compile`), is checked inside the program that computes
it: the tensor handed on is a guard over it (see `_core.checks`), and the program's caller raises
the same error, naming the op and the line that recorded it.
"""
from __future__ import annotations

from typing import Callable

import jax
import numpy as np

from .._core import checks as _checks, grad_mode as _grad_mode, stepmode as _stepmode
from .._core.record import no_grad_input
from .tensor import Tensor


def known(t: Tensor) -> bool:
    """True when `t`'s value is a concrete array (no computation needed to read it)."""
    value = t._cell.node.value
    return value is not None and not isinstance(value, jax.core.Tracer)


def checked(t: Tensor, op: str, test: Callable, args: tuple, error: type, message: str,
            on: Tensor | None = None) -> Tensor:
    """`t`, with `test(xp, values, *args)` (see `checks.outside`) checked on `on`'s values
    (default: `t`'s); `message` is PyTorch's, `{value}` the first failing value."""
    target = t if on is None else on
    if known(target):
        if target.numel():
            failed, value = test(np, np.asarray(target._cell.node.value), *args)
            if failed:
                raise error(message.format(value=value.item()))
        return t
    if _stepmode.state.active is not None:
        _stepmode.state.active.read(t._cell)
        if on is not None:
            _stepmode.state.active.read(on._cell)
    check = _checks.Check(op, test, args, error, message, _checks.user_line())
    node = _node(t)
    extra = () if on is None else (no_grad_input(on._cell.node),)
    return Tensor._from_node(_checks.guard(node, check, *extra))


def _node(t: Tensor):
    if _grad_mode.state.enabled and t._requires_grad:
        return t._autograd_node()
    return no_grad_input(t._cell.node)
