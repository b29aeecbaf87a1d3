"""Binding functions as `Tensor` methods and operators, declared next to each function.

`@method("add", "__add__", "__radd__", inplace=("add_", "__iadd__"))` above `def add` makes
`t.add(u)`, `t + u`, `2 + t`, `t.add_(u)` and `t += u`. A name bound twice is an error, so two
functions can never silently compete for one method.
"""
from __future__ import annotations

import functools
from typing import Callable

from .inplace import check_inplace, inplace, settle
from .tensor import Tensor

_bound: dict = {}  # method name -> the module that bound it


def bind(name: str, value, owner: str | None = None) -> None:
    """Set `Tensor.<name>` (a function or a property); binding a name twice raises."""
    owner = owner or getattr(value, "__module__", None) or getattr(value.fget, "__module__", "?")
    if name in _bound or name in Tensor.__dict__:
        where = _bound.get(name, "the Tensor class")
        raise ValueError(f"Tensor.{name} is bound twice: by {where} and by {owner}")
    _bound[name] = owner
    setattr(Tensor, name, value)


def _inplace_method(fn: Callable, name: str) -> Callable:
    @functools.wraps(fn)
    def method(self, *args, **kwargs):
        check_inplace(self)
        settle(self)
        return inplace(self, fn(self, *args, **kwargs))
    method.__name__ = method.__qualname__ = name
    return method


def _reflected(fn: Callable, name: str) -> Callable:
    def method(self, other):
        return fn(other, self)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = fn.__doc__
    return method


def method(*names: str, inplace: tuple = (), reflected: tuple = ()) -> Callable:
    """Bind the decorated function (its first argument is the tensor) as the methods `names`,
    as in-place methods `inplace` (the result written into the tensor, PyTorch's `add_`), and as
    reflected operators `reflected` (`__rsub__`: the operands swapped)."""
    def decorate(fn: Callable) -> Callable:
        owner = fn.__module__
        for name in names:
            bind(name, fn, owner)
        for name in inplace:
            bind(name, _inplace_method(fn, name), owner)
        for name in reflected:
            bind(name, _reflected(fn, name), owner)
        return fn
    return decorate


def attribute(name: str) -> Callable:
    """Bind the decorated function as the read-only property `name` (`t.T`, `t.mT`)."""
    def decorate(fn: Callable) -> Callable:
        bind(name, property(fn), fn.__module__)
        return fn
    return decorate
