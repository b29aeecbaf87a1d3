"""Recording at the node level: a registry op over input nodes and scalars appends a node.

Nothing is computed here. The result's shape and dtype are inferred once per (op, static
arguments, input shapes and dtypes) and cached, so shape errors still surface at the line that
caused them; values are computed when Python needs them. Inference traces the op with
`jax.eval_shape` (milliseconds: a ragged loop meets every op at each new batch size), except for
rows with a shape rule (`Op.shape`: elementwise ops, linear, cross_entropy). This module
also holds the policy that bounds what stays pending (see `MAX_PENDING_DEPTH`).
"""
from __future__ import annotations

import weakref

import jax

from . import dtype as _dtype, forward_ad as _forward_ad, grad_mode as _grad_mode
from .compile import materialize
from .graph import SAVES_NONE, Cell, GetItem, Node, Op, node_class, signature_of
from .ops import alias_op

# The pending-chain policy. Values are computed when Python needs them and by every backward;
# two limits bound what stays pending in between:
# - a chain of recorded nodes deeper than MAX_PENDING_DEPTH is computed at once, so a loop that
#   never reads its result cannot grow one unbounded program;
# - storage written in place with a pending value (a BatchNorm running mean, `w -= lr * w.grad`)
#   is listed in `pending_writes`, which the next backward computes in its own program; after
#   MAX_PENDING_WRITES such writes to one storage with no computation in between (forward passes
#   with no backward, say), every pending write is computed in one program, so such chains
#   neither grow nor keep old batches alive.
MAX_PENDING_DEPTH = 1000
MAX_PENDING_WRITES = 16
pending_writes: weakref.WeakSet = weakref.WeakSet()

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
        try:
            out = None if op.shape is None else op.shape(signature, **dict(static))
            if out is None:
                out = _traced_shape(op, static, inputs)
        except (TypeError, ValueError) as e:
            shapes = " and ".join(str(list(i.shape)) for i in inputs if isinstance(i, Node))
            raise RuntimeError(f"{op.name}: invalid arguments for tensors of shape {shapes}: {e}") from None
        _inferred[key] = out
    return out


def _traced_shape(op: Op, static: tuple, inputs: tuple):
    abstract = [jax.ShapeDtypeStruct(i.shape, i.dtype.np) if isinstance(i, Node) else i
                for i in inputs]
    with jax.enable_x64(True):
        res = jax.eval_shape(lambda *xs: op.fn(*xs, **dict(static)), *abstract)
    if op.n_out == 1:
        return tuple(res.shape), _dtype.from_numpy_dtype(res.dtype)
    return tuple((tuple(r.shape), _dtype.from_numpy_dtype(r.dtype)) for r in res)


def promote(op: Op, signature: tuple):
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
           sig: tuple | None = None):
    """Append one node for `op` over input nodes and scalars; returns it (or its outputs)."""
    info = _infer(op, static, inputs, signature_of(inputs) if sig is None else sig)
    if (requires_grad and _grad_mode.state.saved_hooks and op.saves != SAVES_NONE
            and not _grad_mode.state.saved_hooks[-1][2]
            and getattr(op, "custom_backward", None) is None):  # a Function packs its own
        raise RuntimeError(
            f"saved_tensors_hooks: tapegrad saves no tensors for built-in ops ({op.name} here, which "
            "PyTorch would pack): "
            "backward() recomputes the forward inside one XLA program, so there is nothing to "
            "pack or unpack. The hooks apply to a custom autograd.Function's save_for_backward; "
            "to save memory, use tapegrad.utils.checkpoint or autograd.graph.save_on_cpu "
            "(accepted: nothing is kept between forward and backward).")
    cls = op.node_cls if op.name_of is None else node_class(op.name_of(dict(static), inputs))
    if op.n_out == 1:
        shape, dtype = info
        node = cls(op, static, inputs, shape, dtype,
                   requires_grad and op.differentiable and _differentiable(dtype))
        if _forward_ad.state.tangents:
            _forward_ad.propagate(op, static, inputs, node)
        if node.depth > MAX_PENDING_DEPTH:
            materialize([node])
        return node
    parent = cls(op, static, inputs, tuple(s for s, _ in info), tuple(d for _, d in info),
                 requires_grad and op.differentiable)
    outs = tuple(GetItem(None, k, (parent,), s, d, parent.requires_grad and _differentiable(d))
                 for k, (s, d) in enumerate(info))
    if _forward_ad.state.tangents:
        _forward_ad.propagate(op, static, inputs, outs)
    if parent.depth > MAX_PENDING_DEPTH:
        materialize(list(outs))
    return outs


def _differentiable(d: _dtype.dtype) -> bool:
    return d.is_floating_point or d.is_complex


def no_grad_input(node: Node) -> Node:
    """A use of `node` that carries no gradient (a detached alias, or a use under no_grad)."""
    if not node.requires_grad:
        return node
    return record(alias_op, (node,))


def note_write(cell: Cell, chained: bool) -> None:
    """Count an in-place write of a pending value to `cell` (`chained`: onto a pending value)."""
    cell.pending = cell.pending + 1 if chained else 1
    pending_writes.add(cell)
    if cell.pending >= MAX_PENDING_WRITES:
        cells = [c for c in list(pending_writes) if c.node.value is None]
        materialize([c.node for c in cells])
        for c in cells:
            c.pending = 0
        pending_writes.clear()


