"""Forward-mode AD's state: the tangents of the dual level, and their propagation through ops.

While a dual level is open, `tangents` maps each node that carries a tangent (a dual tensor's
node, and every node recorded from one) to its tangent array. `record` calls `propagate` for
each new node while any tangent exists: the op's tangent is `jax.jvp` of its row function at the
inputs' values, computed at once (op by op, as PyTorch's forward AD), while the primal itself
stays lazy. With no level open the check costs one attribute read.
"""
from __future__ import annotations

import functools
import weakref

import jax

from .compile import materialize
from .graph import AccumulateGrad, Node


class _State:
    level: int | None = None  # the open dual level (PyTorch supports one at a time)
    tangents: weakref.WeakKeyDictionary | None = None  # node -> tangent, while a level is open


state = _State()


def tangent_of(node: Node):
    """The tangent `node` carries at the open level, or None."""
    if state.tangents is None:
        return None
    if type(node) is AccumulateGrad:  # a leaf's gradient sink has the leaf's value
        node = node.inputs[0]
    return state.tangents.get(node)


def set_tangent(node: Node, tangent) -> None:
    state.tangents[node] = tangent


def drop_tangent(node: Node) -> None:
    state.tangents.pop(node, None)


def propagate(op, static: tuple, inputs: tuple, out) -> None:
    """Give the node(s) `out` just recorded for `op` over `inputs` their tangents, if any input
    carries one."""
    tans = [tangent_of(i) if isinstance(i, Node) else None for i in inputs]
    duals = [k for k, t in enumerate(tans) if t is not None]
    if not duals:
        return
    if getattr(op, "custom_backward", None) is not None:
        raise NotImplementedError("You must implement the jvp function for custom "
                                  "autograd.Function to use it with forward mode AD.")
    nodes = [i.inputs[0] if type(i) is AccumulateGrad else i for i in inputs]
    pending = [n for n in nodes if isinstance(n, Node) and n.value is None]
    if pending:
        materialize(pending)
    values = [n.value if isinstance(n, Node) else n for n in nodes]
    fn = functools.partial(op.fn, **dict(static)) if static else op.fn

    def at(*dual_values):
        args = list(values)
        for k, v in zip(duals, dual_values):
            args[k] = v
        return fn(*args)

    primals = [values[k] for k in duals]
    with jax.enable_x64(True):
        _, tangent_out = jax.jvp(at, primals, [tans[k].astype(p.dtype)
                                               for k, p in zip(duals, primals)])
    if isinstance(out, tuple):
        for o, t in zip(out, tangent_out):
            _keep(o, t)
    else:
        _keep(out, tangent_out)


def _keep(node: Node, tangent) -> None:
    if tangent.dtype != jax.dtypes.float0:  # integer and boolean results carry no tangent
        state.tangents[node] = tangent

