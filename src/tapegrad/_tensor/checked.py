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
    return _concrete(t._cell.node.value)


def _concrete(value) -> bool:
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
    if _passes_on_base(target, test, args):
        return t
    if _stepmode.state.active is not None:
        _stepmode.state.active.read(t._cell)
        if on is not None:
            _stepmode.state.active.read(on._cell)
    check = _checks.Check(op, test, args, error, message, _checks.user_line())
    node = _node(t)
    extra = () if on is None else (no_grad_input(on._cell.node),)
    return Tensor._from_node(_checks.guard(node, check, *extra))


def _passes_on_base(t: Tensor, test: Callable, args: tuple) -> bool:
    """True when `t` is a pending view (`y.view(-1)`, `y[:, 1:]`) of a known array of its dtype
    on which `test`, an elementwise one, passes: every element of the view is one of the
    array's, so the view passes too, with no guard in its program (whose findings its caller
    would wait for). Where the array fails, the view may still pass (the failing elements
    outside it): the guard then decides."""
    view = t._cell.view
    if view is None or test not in _checks.ELEMENTWISE or _stepmode.state.active is not None:
        return False
    node = t._cell.node
    for op, _, _ in reversed(view.steps):  # the view's steps from the array it shows
        if node.op is not op:
            return False  # written through since, or its base rebound (`.data =`)
        node = node.inputs[0]
    if (not _concrete(node.value) or node.dtype is not t.dtype
            or node.value.size > 2 * max(t.numel(), 1)):
        return False
    return not test(np, np.asarray(node.value), *args)[0]


def _node(t: Tensor):
    if _grad_mode.state.enabled and t._requires_grad:
        return t._autograd_node()
    return no_grad_input(t._cell.node)
