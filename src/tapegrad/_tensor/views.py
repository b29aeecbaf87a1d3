"""Views that share storage with their base, on immutable JAX arrays.

A view (`x[0]`, `x.view(-1)`, `x.t()`, ...) gets its own storage cell, and remembers its *base*
(the tensor at the root of the view chain) and the *steps* (registry ops and their static
arguments) that compute it from the base. This gives PyTorch's aliasing both ways, functionally:

- an in-place op on a view writes the new view value into the base: the base's new value is
  `view_scatter(base, new_view)`, recorded like any op (so autograd sees it, as `CopySlices`),
  and the base's storage is updated through the ordinary in-place path;
- an in-place op on a base (or a write through one of its views) re-derives every live view of
  it from the new base value, so views never show stale values.

Views of views record one chain from the root base. `expand` views are read-only, as in PyTorch
(one element is seen at several places).
"""
from __future__ import annotations

import weakref

from .._core import grad_mode as _grad_mode, stepmode as _stepmode
from .._core.graph import Cell
from .._core.ops import view_scatter_op
from .apply import apply
from .strides import contiguous_strides, fold

_UNWRITABLE = ("unsupported operation: more than one element of the written-to tensor refers to a "
               "single memory location. Please clone() the tensor before performing the operation.")
_LEAF_VIEW = ("a view of a leaf Variable that requires grad is being used in an in-place "
              "operation.")


class _View:
    __slots__ = ("base", "steps", "operands", "writable", "tensor", "multi", "layout")

    def __init__(self, base, steps: tuple, operands: tuple, writable: bool, tensor,
                 multi, layout: tuple) -> None:
        self.base = base          # the root tensor (kept alive by its views, as PyTorch's `_base`)
        self.steps = steps        # ((op, number of operands, static items), ...) base -> view
        self.operands = operands  # the steps' Python-number operands, in order (say, an index)
        self.writable = writable
        self.tensor = weakref.ref(tensor)  # the tensor that carries the view's autograd history
        self.multi = multi        # (op name, output number): one of several views made at once
        self.layout = layout      # (storage_offset, strides) in the base's storage


_PRUNE_AT = 32  # a base's list of view storages drops the dead ones when it grows this long


def track(out, input, op, *operands, writable: bool = True, multi=None, **static):
    """Record that `out` (just computed by `op(input, *operands, **static)`) is a view of `input`;
    returns `out`. `multi`: (name, k) when `out` is output k of an op returning several views
    (`split`, `unbind`), which PyTorch forbids modifying in place while it carries a gradient."""
    step = (op, len(operands), tuple(static.items()))
    parent = input._cell.view
    offset, strides = layout(input)
    offset, strides = fold(op.name, input.shape, strides, offset, out.shape, operands, step[2])
    if parent is not None:
        if multi is None and parent.multi is not None:  # a view of such a view: PyTorch names it
            name = type(out._cell.node).__name__  # SqueezeBackward1 -> Squeeze1, as PyTorch
            multi = (name.replace("Backward0", "").replace("Backward", ""), 0)
        base, writable = parent.base, parent.writable and writable
        steps, operands = parent.steps + (step,), parent.operands + operands
    else:
        base, steps = input, (step,)
    cell = out._cell
    cell.view = _View(base, steps, operands, writable, out,
                      multi if out._requires_grad else None, (offset, strides))
    base_cell = base._cell
    kids = base_cell.views
    if kids is None:
        base_cell.views = [weakref.ref(cell)]
    else:
        if len(kids) >= _PRUNE_AT:
            kids[:] = [k for k in kids if k() is not None]
        kids.append(weakref.ref(cell))
    return out


def layout(t) -> tuple:
    """`(storage_offset, strides)` of `t` in its storage: a view's from its steps, as PyTorch
    computes them; any other tensor is its own dense storage (offset 0, row-major)."""
    v = t._cell.view
    return (0, contiguous_strides(t.shape)) if v is None else v.layout


def base_of(t):
    """The base tensor of a view (PyTorch's `Tensor._base`), or None."""
    v = t._cell.view
    return None if v is None else v.base


def check_leaf_base(target) -> None:
    """PyTorch's errors for an in-place op, under grad mode, on a view of a leaf requiring grad
    or on one of several views an op made at once."""
    v = target._cell.view
    if v is not None and v.multi is not None and target._requires_grad:
        name, k = v.multi
        raise RuntimeError(
            f"Output {k} of {name} is a view and is being modified inplace. This view is the "
            "output of a function that returns multiple views. Such functions do not allow the "
            "output views to be modified inplace. You should replace the inplace operation by an "
            "out-of-place one.")
    if v is not None and target._requires_grad and v.base._requires_grad \
            and v.base._grad_node is None:
        raise RuntimeError(_LEAF_VIEW)


def derive(base, steps, operands):
    """The view computed from `base` by `steps` (recorded, so autograd follows it)."""
    t, i = base, 0
    for op, n, static in steps:
        t = apply(op, t, *operands[i:i + n], **dict(static))
        i += n
    return t


def write(target, result, inplace) -> None:
    """An in-place update of the view `target` to `result`: the base gets the new elements."""
    v = target._cell.view
    if not v.writable:
        raise RuntimeError(_UNWRITABLE)
    node = result._cell.node  # its use of the view is of the value before (PyTorch's original_self)
    node.saved = tuple(s for s in node.saved if s[0] is not target._cell)
    base = v.base if result._requires_grad else v.base.detach()
    new_base = apply(view_scatter_op, base, result, *v.operands, steps=v.steps)
    inplace(base, new_base)  # bumps the base's version and re-derives its views (`target` too)


def refresh(cell: Cell) -> None:
    """Re-derive every live view of the base stored in `cell` (after an in-place update)."""
    kids = cell.views
    if not kids:
        return
    cells = [k() for k in kids]
    kids[:] = [k for k, c in zip(kids, cells) if c is not None]
    for view_cell in cells:
        if view_cell is None:
            continue
        v = view_cell.view
        t = v.tensor()
        tracked = t is not None and t._cell is view_cell and t._requires_grad
        with _grad_mode.set_grad_enabled(tracked):
            node = derive(v.base, v.steps, v.operands)._cell.node
        _stepmode.write(view_cell)  # a compiled step must know the storages it changes
        view_cell.assign(node)
        if tracked and node.requires_grad:
            t._grad_node = node
