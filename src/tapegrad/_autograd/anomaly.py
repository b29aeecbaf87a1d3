"""What the backward pass does under anomaly mode (`autograd.detect_anomaly`).

The engine then runs node by node: every forward value of the graph is computed first, then each
node's vjp is its own small program (cached by op and shapes, so repeated layers compile once).
After each node, its gradients are checked for NaN (PyTorch's "Function 'LogBackward0' returned
nan values in its 0th output."), and any error raised while a node runs is preceded by a
warning that shows the forward traceback of the op that recorded it.
"""
from __future__ import annotations

import contextlib
import warnings

import jax
import jax.numpy as jnp

from .._core import anomaly as _anomaly
from .._core.compile import node_fn
from .._core.graph import AccumulateGrad, GetItem, Node
from .._tensor.tensor import Tensor


def enabled() -> bool:
    return _anomaly.state.enabled


def steps_alone(node: Node) -> bool:
    """Whether `node` is a segment of its own under anomaly mode. An output of a multi-output op
    (`GetItem`) and that op itself run with their consumer: a segment's top has one output."""
    return type(node) not in (GetItem, AccumulateGrad) and node.op is not None \
        and node.op.n_out == 1


def warn_forward(node: Node) -> None:
    """PyTorch's warning: the forward traceback of the op whose backward failed."""
    name = type(node).__name__
    frames = node.metadata.get("traceback_")
    if frames is None:
        warnings.warn(f"Error detected in {name}. No forward pass information available. Enable "
                      "detect anomaly during forward pass for more information.", stacklevel=2)
    else:
        warnings.warn(f"Error detected in {name}. Traceback of forward call that caused the "
                      "error:\n" + "".join(frames), stacklevel=2)


@contextlib.contextmanager
def running(node: Node):
    """Around one node's backward: any error it raises is preceded by its forward traceback."""
    try:
        yield
    except Exception:
        warn_forward(node)
        raise


def _has_nan(g) -> bool:
    value = g._value() if isinstance(g, Tensor) else g
    return bool(jnp.issubdtype(value.dtype, jnp.inexact) and jnp.isnan(value).any())


def check_nan(node: Node, grads, ct=None) -> None:
    """Raise PyTorch's error when a gradient `node` returned has NaN. `grads`: pairs of (input
    position, or the input node, gradient); `ct`: the cotangent `node` received."""
    if not _anomaly.state.check_nan:
        return
    bad = [where if isinstance(where, int) else _nan_position(node, where, ct)
           for where, g in grads if _has_nan(g)]
    if bad:  # PyTorch checks its outputs in order
        raise RuntimeError(f"Function '{type(node).__name__}' returned nan values in its "
                           f"{min(bad)}th output.")


def _value_of(x):
    return x.inputs[0].value if type(x) is AccumulateGrad else x.value


def _nan_position(node: Node, stop: Node, ct) -> int:
    """Which input of `node` (PyTorch's output index of its backward) has the NaN gradient. An
    input used at several positions (`b / b`) got their sum; each is then computed apart."""
    positions = [k for k, x in enumerate(node.inputs) if x is stop]
    if len(positions) < 2 or ct is None or type(node) is GetItem:
        return positions[0] if positions else 0
    inputs = list(node.inputs)
    grad_at = [k for k, x in enumerate(inputs) if isinstance(x, Node)]

    def f(*xs):
        args = list(inputs)
        for k, x in zip(grad_at, xs):
            args[k] = x
        return node_fn(node)(*args)
    with jax.enable_x64(True):
        out, vjp_fn = jax.vjp(f, *[_value_of(inputs[k]) for k in grad_at])
        cts = vjp_fn(jnp.broadcast_to(jnp.asarray(ct, out.dtype), out.shape))
    for k, g in zip(grad_at, cts):
        if k in positions and _has_nan(g):
            return k
    return positions[0]
