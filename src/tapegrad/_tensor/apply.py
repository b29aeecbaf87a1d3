"""Applying a registry op to tensors: the inputs' nodes are recorded into a new node (see
`_core.record`), and the result is a tensor over it.
"""
from __future__ import annotations

from typing import Any

from .._core import anomaly as _anomaly, autocast as _autocast, grad_mode as _grad_mode
from .._core import stepmode as _stepmode
from .._core.graph import SAVES_ALL, SAVES_OUTPUT, Node, Op
from .._core.ops import to_dtype_op
from .._core.record import no_grad_input, promote, record
from .construct import tensor
from .tensor import Tensor

_SCALAR_TYPES = frozenset((int, float, bool, complex))


def apply(op: Op, *args, **static):
    """Apply a registry op to tensors and Python scalars; returns a tensor (or a tuple)."""
    if _autocast.state.active:
        args = autocast_args(op, *args)
    grad = _grad_mode.state.enabled
    requires_grad = False
    inputs = []
    signature = []
    for a in args:
        if isinstance(a, Tensor):
            if _stepmode.state.active is not None:  # a compiled step reads this storage's value here,
                _stepmode.state.active.read(a._cell)  # even if the step overwrites it before it runs
            if grad and a._requires_grad:
                requires_grad = True
                node = a._autograd_node()
            else:
                node = a._cell.node
                if node.requires_grad:
                    node = no_grad_input(node)
            inputs.append(node)
            signature.append((node.shape, node.dtype))
        elif type(a) in _SCALAR_TYPES:
            inputs.append(a)
            signature.append(type(a))
        else:
            node = as_tensor_arg(a)._cell.node
            inputs.append(node)
            signature.append((node.shape, node.dtype))
    signature = tuple(signature)
    if op.promote is not None:
        static["dtype"] = promote(op, signature)
    static_key = (tuple(sorted(static.items())) if len(static) > 1 else
                  tuple(static.items()) if static else ())
    out = record(op, tuple(inputs), static_key, requires_grad, signature)
    if op.n_out == 1:
        result = Tensor._from_node(out)
        if out.requires_grad:
            _save_versions(op, out, args, (result,))
            if _anomaly.state.enabled:
                _anomaly.remember_forward(out)
        return result
    results = tuple(Tensor._from_node(o) for o in out)
    parent = out[0].inputs[0]
    if parent.requires_grad:
        _save_versions(op, parent, args, results)
        if _anomaly.state.enabled:
            _anomaly.remember_forward(parent)
    return results


def autocast_args(op: Op, *args) -> tuple:
    """The op's tensor inputs cast as autocast's list says for their device type (functions
    that check their inputs' dtypes call it first, as PyTorch casts before its checks)."""
    casts = _autocast.casts(op.name)
    if not casts:
        return args
    out = []
    for a in args:
        if isinstance(a, Tensor) and _autocast.eligible(a.dtype):
            for device_type, target in casts:
                if a.dtype is not target and a.device.type == device_type:
                    a = apply(to_dtype_op, a, dtype=target.np)
        out.append(a)
    return tuple(out)


def _save_versions(op: Op, node: Node, args, results) -> None:
    """Remember the versions of what the backward needs, for PyTorch's in-place check."""
    if op.saves == SAVES_ALL:
        saved = [a for a in args if isinstance(a, Tensor)]
    elif op.saves == SAVES_OUTPUT:
        saved = list(results)
    else:
        saved = [args[i] for i in op.saves if isinstance(args[i], Tensor)]
    node.saved = tuple([(t._cell, t._cell.version, t._cell.node) for t in saved])


def as_tensor_arg(x: Any) -> Tensor:
    """Array-likes handed to an op (lists, numpy and JAX arrays) become constant tensors."""
    return tensor(x)
