"""In-place updates with PyTorch's semantics on immutable JAX arrays: the op is recorded like any
other, and the target's storage is pointed at its result, bumping the version counter.
"""
from __future__ import annotations

import jax

from .._core import dtype as _dtype, grad_mode as _grad_mode, stepmode as _stepmode
from .._core.compile import materialize
from .._core.graph import Const
from . import views as _views
from .tensor import Tensor

_LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation."


def inplace(target: Tensor, result: Tensor) -> Tensor:
    """Make `result` the new value of `target`'s storage: PyTorch's in-place semantics.

    The op is recorded like any other, so autograd sees it; the storage's version counter goes up,
    so a backward that needs the old value raises instead of using the new one.
    """
    if result.dtype is not target.dtype:
        if _category(result.dtype) > _category(target.dtype):  # PyTorch's can_cast
            raise RuntimeError(f"result type {_dtype.scalar_name(result.dtype)} can't be cast to "
                               f"the desired output type {_dtype.scalar_name(target.dtype)}")
        result = result.to(target.dtype)
    if result.shape != target.shape:
        raise RuntimeError(f"output with shape {list(target.shape)} doesn't match the broadcast "
                           f"shape {list(result.shape)}")
    if target._cell.view is not None:  # a view: the base takes the new elements (views.write)
        _views.write(target, result, inplace)
        return target
    node = result._cell.node
    target._set_node(node)
    # The op's own use of `target` is of the value before it (kept by the graph, as PyTorch keeps
    # `original_self`); an op saving its output saves `target` as it is now.
    node.saved = tuple((target._cell, target._cell.version, saved) if cell is result._cell
                       else (cell, version, saved)
                       for cell, version, saved in node.saved if cell is not target._cell)
    if node.requires_grad:
        target._grad_node = node
        target._requires_grad = True
    if target._cell.views is not None:
        _views.refresh(target._cell)
    return target


def _category(d: _dtype.dtype) -> int:
    """bool < integer < floating < complex: an in-place result may not go up a category."""
    return 3 if d.is_complex else 2 if d.is_floating_point else 0 if d is _dtype.bool else 1


def check_inplace(target: Tensor) -> None:
    """PyTorch's errors for an in-place op on a leaf that requires grad (or a view of one)."""
    if target._requires_grad and target._grad_node is None and _grad_mode.state.enabled:
        raise RuntimeError(_LEAF_INPLACE)
    if _grad_mode.state.enabled:
        _views.check_leaf_base(target)


def settle(target: Tensor) -> None:
    """Compute a pending constant (`tg.zeros(...)`) before an in-place update reads it.

    A tensor updated in place is usually state kept across steps (a counter, an accumulator).
    Its first update would otherwise be the only one recorded on top of the constant's own
    computation, and the program that computes it would differ from every later step's.
    """
    node = target._cell.node
    if node.constant and node.value is None:
        materialize([node])


def set_value(target: Tensor, value: jax.Array) -> None:
    """Store a computed array as `target`'s new value, in place, outside autograd (optimizers,
    gradients folded by a backward, the results of a compiled step)."""
    cell = target._cell
    if _stepmode.state.active is not None:
        _stepmode.state.active.write(cell)
    cell.assign(Const(value, _dtype.from_numpy_dtype(value.dtype)))
    if cell.views is not None:  # views taken earlier show the new value
        _views.refresh(cell)


def restore(target: Tensor, node) -> None:
    """Show `node` in `target`'s storage again, as if later writes had not happened (no version
    bump): how `func.functional_call` undoes a traced call's writes to a module's own state."""
    target._cell.assign(node, bump=False)
