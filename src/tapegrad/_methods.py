"""Tensor methods, operators and in-place ops, bound from the module functions."""
from __future__ import annotations

import functools

from . import _dtype, _factory, _functions as F, _grad_mode, _ops, _views
from ._compile import materialize
from ._record import apply
from ._tensor import Tensor

_LEAF_INPLACE = ("a leaf Variable that requires grad is being used in an in-place operation.")


def inplace(target: Tensor, result: Tensor) -> Tensor:
    """Make `result` the new value of `target`'s storage: PyTorch's in-place semantics.

    The op is recorded like any other, so autograd sees it; the storage's version counter goes up,
    so a backward that needs the old value raises instead of using the new one.
    """
    if result.dtype is not target.dtype:
        if (result.dtype.is_floating_point or result.dtype.is_complex) and not (
                target.dtype.is_floating_point or target.dtype.is_complex):
            raise RuntimeError(f"result type {_type_name(result.dtype)} can't be cast to the "
                               f"desired output type {_type_name(target.dtype)}")
        result = result.to(target.dtype)
    if result.shape != target.shape:
        raise RuntimeError(f"output with shape {list(target.shape)} doesn't match the broadcast "
                           f"shape {list(result.shape)}")
    if target._cell.view is not None:  # a view: the base takes the new elements (_views)
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


def _type_name(d: _dtype.dtype) -> str:
    return {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
            "bool": "Bool", "float16": "Half", "bfloat16": "BFloat16"}.get(d.name, d.name)


def check_inplace(target: Tensor) -> None:
    if target._requires_grad and target._grad_node is None and _grad_mode.state.enabled:
        raise RuntimeError(_LEAF_INPLACE)
    if _grad_mode.state.enabled:
        _views.check_leaf_base(target)


def _settle(target: Tensor) -> None:
    """Compute a pending constant (`tg.zeros(...)`) before an in-place update reads it.

    A tensor updated in place is usually state kept across steps (a counter, an accumulator).
    Its first update would otherwise be the only one recorded on top of the constant's own
    computation, and the program that computes it would differ from every later step's.
    """
    node = target._cell.node
    if node.constant and node.value is None:
        materialize([node])


def _inplace_method(fn):
    @functools.wraps(fn)
    def method(self, *args, **kwargs):
        check_inplace(self)
        _settle(self)
        return inplace(self, fn(self, *args, **kwargs))
    method.__name__ = fn.__name__ + "_"
    return method


def _reflected(fn):
    def method(self, other):
        return fn(other, self)
    return method


def fill_(self: Tensor, value) -> Tensor:
    """Fill with `value` (a number or a one-element tensor)."""
    check_inplace(self)
    if type(value) in (int, float, bool) and not self.requires_grad:
        # the old value is not read, so the new one is a constant (`Node.constant`): resetting
        # state (`zero_()`, BatchNorm's running statistics) then adds no input to the next program
        filled = _factory.full(tuple(self.shape), value, dtype=self.dtype, device=self.device)
        return inplace(self, filled)
    return inplace(self, apply(_ops.fill, self, value))


def zero_(self: Tensor) -> Tensor:
    return fill_(self, 0)


def copy_(self: Tensor, src, non_blocking: bool = False) -> Tensor:
    """Copy `src` (broadcast, converted to this dtype) into this tensor; gradients flow to `src`."""
    check_inplace(self)
    if not isinstance(src, Tensor):
        from ._factory import tensor
        src = tensor(src)
    return inplace(self, apply(_ops.copy, self, src, dtype=self.dtype.np))


def __setitem__(self: Tensor, index, value) -> None:
    check_inplace(self)
    _settle(self)
    inplace(self, F.index_put(self, index, value))


_METHODS = {
    "add": F.add, "sub": F.sub, "subtract": F.sub, "mul": F.mul, "multiply": F.mul, "div": F.div,
    "divide": F.div, "true_divide": F.div, "floor_divide": F.floor_divide,
    "remainder": F.remainder, "pow": F.pow, "neg": F.neg, "negative": F.neg, "matmul": F.matmul,
    "maximum": F.maximum, "minimum": F.minimum, "exp": F.exp, "log": F.log, "sqrt": F.sqrt,
    "sin": F.sin, "cos": F.cos, "tanh": F.tanh, "sigmoid": F.sigmoid, "relu": F.relu,
    "abs": F.abs, "absolute": F.abs, "clamp": F.clamp, "clip": F.clamp, "eq": F.eq, "ne": F.ne,
    "lt": F.lt, "le": F.le, "gt": F.gt, "ge": F.ge, "sum": F.sum, "mean": F.mean,
    "reshape": F.reshape, "view": F.view, "transpose": F.transpose, "swapaxes": F.transpose,
    "t": F.t, "permute": F.permute, "expand": F.expand, "__getitem__": F.getitem,
    "__add__": F.add, "__radd__": F.add, "__sub__": F.sub, "__rsub__": _reflected(F.sub),
    "__mul__": F.mul, "__rmul__": F.mul, "__truediv__": F.div, "__rtruediv__": _reflected(F.div),
    "__floordiv__": F.floor_divide, "__rfloordiv__": _reflected(F.floor_divide),
    "__mod__": F.remainder, "__rmod__": _reflected(F.remainder), "__pow__": F.pow,
    "__rpow__": _reflected(F.pow), "__matmul__": F.matmul, "__rmatmul__": _reflected(F.matmul),
    "__neg__": F.neg, "__abs__": F.abs, "__eq__": F.eq, "__ne__": F.ne, "__lt__": F.lt,
    "__le__": F.le, "__gt__": F.gt, "__ge__": F.ge,
    "fill_": fill_, "zero_": zero_, "copy_": copy_, "__setitem__": __setitem__,
}

_INPLACE = {"add_": F.add, "sub_": F.sub, "mul_": F.mul, "div_": F.div, "pow_": F.pow,
            "neg_": F.neg, "exp_": F.exp, "log_": F.log, "sqrt_": F.sqrt, "sin_": F.sin,
            "cos_": F.cos, "tanh_": F.tanh, "sigmoid_": F.sigmoid, "relu_": F.relu, "abs_": F.abs,
            "clamp_": F.clamp, "clip_": F.clamp, "remainder_": F.remainder,
            "__iadd__": F.add, "__isub__": F.sub, "__imul__": F.mul, "__itruediv__": F.div,
            "__ipow__": F.pow, "__imod__": F.remainder, "__ifloordiv__": F.floor_divide}


def _pos(self: Tensor) -> Tensor:
    return self


def _T(self: Tensor) -> Tensor:  # noqa: N802
    return F.permute(self, *reversed(range(self.ndim)))


def bind() -> None:
    for name, fn in _METHODS.items():
        setattr(Tensor, name, fn)
    for name, fn in _INPLACE.items():
        method = _inplace_method(fn)
        method.__name__ = name
        setattr(Tensor, name, method)
    from . import (_functions_index, _functions_linalg, _functions_math, _functions_random,
                   _functions_reduce, _functions_shape, _functions_sort)
    for module in (_functions_math, _functions_reduce, _functions_shape, _functions_index,
                   _functions_linalg, _functions_sort, _functions_random):
        for name, fn in module.METHODS.items():
            setattr(Tensor, name, fn)
        for name, fn in module.INPLACE.items():
            method = _inplace_method(fn)
            method.__name__ = name
            setattr(Tensor, name, method)
    Tensor.__pos__ = _pos
    Tensor.T = property(_T)
    Tensor.__hash__ = lambda self: id(self)
