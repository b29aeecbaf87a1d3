"""Checks on values a compiled program computes (an index, a probability, a factorization).

PyTorch checks index bounds and argument ranges where it computes. tapegrad checks a value that
is known when recorded at the call (on the host); a value still pending gets a *guard* node in
front of its consumer instead. A guard passes its first input through unchanged and, inside the
program, computes whether its check failed and the first offending value. Every program built
with `jit` returns these findings next to its results, and its caller raises PyTorch's error
(the op's name, the values, the user's line that recorded the op) after the call, before
anything is stored: the failed values are never seen.

A guard runs where its program is traced: a materialize, a backward (whose non-differentiable
part, where the checked values live, is computed outside `jax.vjp`), a step of
`tapegrad.compile`. A nested program (one traced while another is) hands its findings to the
enclosing one. Inside a trace tapegrad does not own (a user's `jax.jit` around
`func.functional_call`), findings cannot leave it and are dropped: such a value follows XLA's
rules (gathers clamp, scatters drop).
"""
from __future__ import annotations

import os
import sys
import threading
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from . import spmd
from .graph import SAVES_NONE, AccumulateGrad, GetItem, Node, Op
from .ops import alias_op


class Check(NamedTuple):
    """What a guard tests and what it raises (static: part of its program's structure key).

    `test(*values, *args)` returns (failed, value): a boolean scalar and the value shown in the
    message, formatted into `message` as `{value}`. `where` is the user's line, "file:line".
    """
    op: str
    test: Callable
    args: tuple
    error: type
    message: str
    where: str


class _Findings:
    """What a program's guards found: per check, a failure flag (stacked) and the value shown."""

    def __init__(self, checks: tuple, failed, values: tuple) -> None:
        self.checks, self.failed, self.values = checks, failed, values

    def tree_flatten(self):
        return (self.failed, self.values), self.checks

    @classmethod
    def tree_unflatten(cls, checks, children):
        return cls(checks, *children)


jax.tree_util.register_pytree_node(_Findings, _Findings.tree_flatten, _Findings.tree_unflatten)

_state = threading.local()  # .stack: the lists collecting findings of the programs being traced


def _stack() -> list:
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    return stack


def _guard(x, *checked, check: Check):
    failed, value = check.test(jnp, *(checked or (x,)), *check.args)
    stack = _stack()
    if stack:
        stack[-1].append((check, failed, value))
    return x


guard_op = Op("check", _guard, saves=SAVES_NONE, differentiable=False)


guards_made = 0  # how many guards were recorded (a compiled step with guards does not donate)


def guard(node: Node, check: Check, *checked: Node) -> Node:
    """A node showing `node`'s value that fails `check` where it is computed (on `checked`, else
    on `node` itself). Its shape and dtype are `node`'s: no shape inference is needed.

    A differentiable `node` passes through under its own grad_fn class, and is checked through
    a no-grad alias, so the check is computed outside `jax.vjp`."""
    global guards_made
    guards_made += 1
    cls = guard_op.node_cls
    if node.requires_grad:
        if not isinstance(node, (AccumulateGrad, GetItem)):  # a recorded op's own node
            cls = type(node)
        checked = checked or (alias_op.node_cls(alias_op, (), (node,), node.shape, node.dtype,
                                                False),)
    return cls(guard_op, (("check", check),), (node,) + checked, node.shape, node.dtype,
               node.requires_grad)


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_line() -> str:
    """"file:line" of the innermost caller outside tapegrad (the line that recorded the op)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
    return "<unknown>" if frame is None else f"{frame.f_code.co_filename}:{frame.f_lineno}"


def failure(check: Check, value) -> Exception:
    """PyTorch's error for a failed check, naming where the op was recorded."""
    value = value.item() if hasattr(value, "item") else value
    return check.error(check.message.format(value=value) +
                       f" (checked where computed: {check.op} recorded at {check.where})")


def _raise(findings: _Findings) -> None:
    failed = np.asarray(findings.failed)  # one small transfer; the values only on failure
    if failed.any():
        k = int(np.argmax(failed))
        raise failure(findings.checks[k], np.asarray(findings.values[k]))


def jit(fn, per_process: Mesh | None = None, **kwargs):
    """`jax.jit(fn)` whose guards are checked: a failed one raises after the call.

    Called while another program is traced, the findings go to that program instead. With
    `per_process` (a 1-D mesh of one device per process), each process runs `fn` on its own
    arguments (`spmd.per_process`) and checks its own findings.
    """
    def collecting(*args):
        stack = _stack()
        stack.append([])
        try:
            out = fn(*args)
        finally:
            found = stack.pop()
        if not found:
            return out, None
        checks, failed, values = zip(*found)
        return out, _Findings(checks, jnp.stack([jnp.asarray(f, bool) for f in failed]), values)

    jitted = (jax.jit(collecting, **kwargs) if per_process is None
              else spmd.per_process(collecting, per_process))

    def call(*args):
        out, findings = jitted(*args)
        if findings is not None:
            stack = _stack()
            if stack:  # traced inside another program: its caller checks
                stack[-1].extend(zip(findings.checks, findings.failed, findings.values))
            elif not isinstance(findings.failed, jax.core.Tracer):
                _raise(findings)
        return out
    call.__wrapped__ = fn
    call._cache_size = jitted._cache_size  # how many traces jax.jit holds (tests read it)
    call.lower = jitted.lower  # the program's HLO, the guards' findings among its outputs
    return call


# -- the tests guards run: module-level functions of (array namespace, values, *args), so a Check
# is hashable and the same test runs on the host (numpy) and in a program (jax.numpy) -------------

def first(xp, bad, x):
    """(any element bad, the first bad element of x)."""
    flat_bad, flat = bad.reshape(-1), x.reshape(-1)
    if flat.size == 0:
        return xp.any(flat_bad), xp.zeros((), x.dtype)
    # min over positions, not argmax: a sharded argmax lowers with mismatched index types (x64)
    positions = xp.arange(flat.size, dtype=xp.int32)
    return xp.any(flat_bad), flat[xp.min(xp.where(flat_bad, positions, flat.size - 1))]


def outside(xp, x, low: int, high: int, ignore: int | None = None):
    """Elements outside [low, high) (except `ignore`): an index out of bounds."""
    bad = (x < low) | (x >= high)
    return first(xp, bad if ignore is None else bad & (x != ignore), x)


def below(xp, x, low):
    """Elements below `low`."""
    return first(xp, x < low, x)


def at_least(xp, x, high):
    """Elements not below `high`."""
    return first(xp, x >= high, x)


def not_between(xp, x, low: float, high: float):
    """Elements not in [low, high] (NaN included): a probability out of range."""
    return first(xp, ~((x >= low) & (x <= high)), x)


def bad_probabilities(xp, x):
    """Elements that are negative, inf or NaN (multinomial's weights)."""
    return first(xp, ~(xp.isfinite(x) & (x >= 0)), x)


def no_mass(xp, x):
    """Rows whose weights sum to zero or less (multinomial's weights)."""
    return first(xp, x.sum(-1) <= 0, x.sum(-1))


def equal(xp, x, value):
    """Elements equal to `value` (an integer divisor of zero)."""
    return first(xp, x == value, x)


def not_finite(xp, x):
    """Elements that are inf or NaN: a factorization that failed."""
    return first(xp, ~xp.isfinite(x), x)


# The tests above that judge each element alone (not `no_mass`, which sums rows): one that
# passes on an array passes on any view of it, whose elements are some of the array's.
ELEMENTWISE = frozenset({outside, below, at_least, not_between, bad_probabilities, equal,
                         not_finite})
