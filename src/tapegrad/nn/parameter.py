"""`Parameter`: a tensor that a `Module` registers as one of its parameters."""
from __future__ import annotations

from .._functions.creation import empty
from .._tensor.tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad (by default) and registers itself on a `Module`.

    `Parameter(t)` shares `t`'s storage cell, as in PyTorch: in-place updates through either are
    seen by both.
    """

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> "Parameter":
        if data is None:
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter data must be a Tensor, got {type(data).__name__}")
        p = cls._sharing(data)
        p.requires_grad = requires_grad
        return p

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        pass

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = Parameter(self.detach().clone(), self.requires_grad)
        memo[id(self)] = result
        return result


def is_lazy(param) -> bool:
    """Whether `param` is an uninitialized lazy parameter (tapegrad has none)."""
    return False


__all__ = ["Parameter", "is_lazy"]
