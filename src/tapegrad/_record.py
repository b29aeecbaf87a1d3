"""Recording: applying a registry op to tensors appends a node to the tape.

Nothing is computed here. The result's shape and dtype are inferred once per (op, static
arguments, input shapes and dtypes) with `jax.eval_shape` and cached, so shape errors still
surface at the line that caused them; values are computed when Python needs them.
"""
from __future__ import annotations

import jax

from . import _dtype, _grad_mode, _ops, _stepmode, _tensor
from ._compile import materialize
from ._graph import GetItem, Node, SAVES_ALL, SAVES_OUTPUT, Op, node_class

# Pending chains longer than this are computed at once, so a loop that never reads its result
# (say, many in-place updates) cannot grow one unbounded program.
MAX_PENDING_DEPTH = 1000

_SCALARS = (int, float, bool, complex)
_SCALAR_TYPES = frozenset(_SCALARS)
_SAMPLE = {int: 1, float: 1.0, bool: True, complex: 1j}
_inferred: dict = {}
_promoted: dict = {}


def _infer(op: Op, static: tuple, inputs: tuple, signature: tuple):
    """The result's (shape, dtype), per output, cached by op, static args and input avals."""
    key = (op, static, signature)
    out = _inferred.get(key)
    if out is None:
        if op.check is not None:
            op.check(*inputs, **dict(static))
        abstract = [jax.ShapeDtypeStruct(i.shape, i.dtype.np) if isinstance(i, Node) else i
                    for i in inputs]
        try:
            with jax.enable_x64(True):
                res = jax.eval_shape(lambda *xs: op.fn(*xs, **dict(static)), *abstract)
        except (TypeError, ValueError) as e:
            shapes = " and ".join(str(list(i.shape)) for i in inputs if isinstance(i, Node))
            raise RuntimeError(f"{op.name}: invalid arguments for tensors of shape {shapes}: {e}") from None
        if op.n_out == 1:
            out = (tuple(res.shape), _dtype.from_numpy_dtype(res.dtype))
        else:
            out = tuple((tuple(r.shape), _dtype.from_numpy_dtype(r.dtype)) for r in res)
        _inferred[key] = out
    return out


def _signature(inputs) -> tuple:
    return tuple((i.shape, i.dtype) if isinstance(i, Node) else type(i) for i in inputs)


def _promote(op: Op, signature: tuple):
    """The numpy dtype an elementwise op computes in, by PyTorch's promotion rules (cached)."""
    key = (op.promote, _dtype.get_default_dtype(), signature)
    out = _promoted.get(key)
    if out is None:
        d = _dtype.result_type([(s[1], len(s[0])) if isinstance(s, tuple) else _SAMPLE[s]
                                for s in signature])
        if op.promote == "float" and not (d.is_floating_point or d.is_complex):
            d = _dtype.get_default_dtype()
        out = _promoted[key] = d.np
    return out


def record(op: Op, inputs: tuple, static: tuple = (), requires_grad: bool = False,
           signature: tuple | None = None):
    """Append one node for `op` over input nodes and scalars; returns it (or its outputs)."""
    info = _infer(op, static, inputs, _signature(inputs) if signature is None else signature)
    cls = op.node_cls if op.name_of is None else node_class(op.name_of(dict(static), inputs))
    if op.n_out == 1:
        shape, dtype = info
        node = cls(op, static, inputs, shape, dtype,
                   requires_grad and op.differentiable and _differentiable(dtype))
        if node.depth > MAX_PENDING_DEPTH:
            materialize([node])
        return node
    parent = cls(op, static, inputs, tuple(s for s, _ in info), tuple(d for _, d in info),
                 requires_grad and op.differentiable)
    outs = tuple(GetItem(None, k, (parent,), s, d, parent.requires_grad and _differentiable(d))
                 for k, (s, d) in enumerate(info))
    if parent.depth > MAX_PENDING_DEPTH:
        materialize(list(outs))
    return outs


def _differentiable(d: _dtype.dtype) -> bool:
    return d.is_floating_point or d.is_complex


def apply(op: Op, *args, **static):
    """Apply a registry op to tensors and Python scalars; returns a tensor (or a tuple)."""
    Tensor = _tensor.Tensor
    grad = _grad_mode.state.enabled
    requires_grad = False
    inputs = []
    signature = []
    for a in args:
        if isinstance(a, Tensor):
            if _stepmode.active is not None:  # a compiled step reads this storage's value here,
                _stepmode.active.read(a._cell)  # even if the step overwrites it before it runs
            if grad and a._requires_grad:
                requires_grad = True
                node = a._autograd_node()
            else:
                node = a._cell.node
                if node.requires_grad:
                    node = _no_grad_input(node)
            inputs.append(node)
            signature.append((node.shape, node.dtype))
        elif type(a) in _SCALAR_TYPES:
            inputs.append(a)
            signature.append(type(a))
        else:
            node = _tensor.as_tensor_arg(a)._cell.node
            inputs.append(node)
            signature.append((node.shape, node.dtype))
    signature = tuple(signature)
    if op.promote is not None:
        static["dtype"] = _promote(op, signature)
    static_key = (tuple(sorted(static.items())) if len(static) > 1 else
                  tuple(static.items()) if static else ())
    out = record(op, tuple(inputs), static_key, requires_grad, signature)
    if op.n_out == 1:
        result = Tensor._from_node(out)
        if out.requires_grad:
            _save_versions(op, out, args, (result,))
        return result
    results = tuple(Tensor._from_node(o) for o in out)
    if out[0].inputs[0].requires_grad:
        _save_versions(op, out[0].inputs[0], args, results)
    return results


def _no_grad_input(node: Node) -> Node:
    """A use of `node` that carries no gradient (a detached alias, or a use under no_grad)."""
    if not node.requires_grad:
        return node
    return record(_ops.alias, (node,))


def _save_versions(op: Op, node: Node, args, results) -> None:
    """Remember the versions of what the backward needs, for PyTorch's in-place check."""
    Tensor = _tensor.Tensor
    if op.saves == SAVES_ALL:
        saved = [a for a in args if isinstance(a, Tensor)]
    elif op.saves == SAVES_OUTPUT:
        saved = list(results)
    else:
        saved = [args[i] for i in op.saves if isinstance(args[i], Tensor)]
    node.saved = tuple([(t._cell, t._cell.version, t._cell.node) for t in saved])
