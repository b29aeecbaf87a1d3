"""Where gradients land: `write_grad` is the one function that sets a tensor's `.grad`, whether
a backward folded the sum into its program, accumulates a gradient, a compiled step writes its
results back, or the user assigns `t.grad = g`. The `.grad` property is bound here too.
"""
from __future__ import annotations

import warnings

import jax

from .._core import grad_mode as _grad_mode, stepmode as _stepmode
from .._tensor.inplace import restore, set_value
from .._tensor.methods import bind
from .._tensor.tensor import Tensor

_NON_LEAF_GRAD_WARNING = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad field "
    "to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If you "
    "access the non-leaf Tensor by mistake, make sure you access the leaf Tensor instead.")


def write_grad(t: Tensor, grad, *, accumulate: bool = False, in_place: bool = True,
               create_graph: bool = False) -> None:
    """Set `t.grad` from `grad`: a tensor, a computed array, or None (clears it).

    Without `accumulate`, `grad` replaces `.grad`; an array (the sum a backward folded into its
    program, a compiled step's result) is written into an existing `.grad` in place, so a tensor
    taken from `.grad` earlier sees it, as PyTorch's accumulation does. With `accumulate`, this is
    PyTorch's `t.grad += grad`: the first gradient is stored as is (detached unless
    `create_graph`); later ones are added in place outside autograd, or out of place when
    `create_graph` (recorded) or `in_place=False` (a retained non-leaf gradient).
    """
    _stepmode.grad_owner(t)
    old = t._grad
    if grad is None or not isinstance(grad, Tensor) and not accumulate:
        grad = _laid_out_like(t, grad)
        if grad is None or old is None:
            t._grad = None if grad is None else Tensor._from_array(grad)
        else:
            set_value(old, grad)
    elif not accumulate:
        t._grad = grad
    elif old is None:
        t._grad = grad if create_graph else grad.detach()
    elif create_graph:
        t._grad = old + grad
    elif not in_place:
        t._grad = (old + grad).detach()
    else:
        with _grad_mode.no_grad():
            old._set_node((old + grad)._node)


class GradLog:
    """The `.grad` of each tensor a backward writes, as it was before its first write, so that a
    backward that fails (a hook raising, a KeyboardInterrupt) changes no gradient: `roll_back`
    puts each `.grad` back, its object and its value (a tensor taken from `.grad` earlier shows
    the old value again)."""

    def __init__(self) -> None:
        self._before: dict = {}  # id(tensor) -> (tensor, its .grad, that grad's value node)

    def write(self, t: Tensor, grad, **kwargs) -> None:
        """`write_grad(t, grad, **kwargs)`, remembering `t.grad` as it was first."""
        if id(t) not in self._before:
            old = t._grad
            self._before[id(t)] = (t, old, None if old is None else old._node)
        write_grad(t, grad, **kwargs)

    def roll_back(self) -> None:
        for t, old, node in self._before.values():
            write_grad(t, old)
            if old is not None and old._node is not node:
                restore(old, node)
        self._before.clear()


def _laid_out_like(t: Tensor, grad):
    """A computed gradient laid out as its tensor is when that spans several devices (a
    DTensor, a sharded parameter): XLA's partitioner may choose another layout for it."""
    value = t._node.value
    if grad is None or value is None or isinstance(value, jax.core.Tracer) or \
            isinstance(grad, jax.core.Tracer) or len(value.sharding.device_set) < 2 or \
            grad.sharding.is_equivalent_to(value.sharding, grad.ndim):
        return grad
    return jax.device_put(grad, value.sharding)


def zero_grads(tensors, set_to_none: bool = True) -> None:
    """Clear `.grad` of each tensor: set it to None, or (`set_to_none=False`) zero it in place,
    outside autograd, as `Module.zero_grad` and `Optimizer.zero_grad` do in PyTorch."""
    for t in tensors:
        g = t._grad
        if g is None:
            continue
        if set_to_none:
            write_grad(t, None)
        else:
            g.detach_()
            with _grad_mode.no_grad():
                g.zero_()


def _get(self: Tensor) -> "Tensor | None":
    if self._grad_node is not None and not self._retains_grad:
        warnings.warn(_NON_LEAF_GRAD_WARNING, UserWarning, stacklevel=2)
    return self._grad


def _set(self: Tensor, value: "Tensor | None") -> None:
    if value is not None:
        if not isinstance(value, Tensor):
            raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of "
                            f"type {type(value).__name__}")
        if value.dtype is not self.dtype:
            raise RuntimeError(f"assigned grad has data of a different type: expected "
                               f"{self.dtype}, got {value.dtype}")
        if value.shape != self.shape:
            raise RuntimeError(f"assigned grad has data of a different size: expected "
                               f"{list(self.shape)}, got {list(value.shape)}")
    write_grad(self, value)


def _delete(self: Tensor) -> None:
    write_grad(self, None)


bind("grad", property(_get, _set, _delete, doc="The gradient accumulated by backward (or None)."))
