"""Padding layers: constant (zero), reflection, replication and circular, 1-D and 2-D."""
from __future__ import annotations

from ..._tensor.tensor import Tensor
from .. import functional as F
from .module import Module


def _pairs(padding, nd: int) -> tuple:
    if isinstance(padding, int):
        return (padding,) * (2 * nd)
    return tuple(padding)


class _PadNd(Module):
    _mode = "constant"
    _nd = 1

    def __init__(self, padding, value: float = 0.0) -> None:
        super().__init__()
        self.padding = _pairs(padding, self._nd)
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        if self._mode == "constant":
            return F.pad(input, self.padding, "constant", self.value)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        if self._mode == "constant" and type(self).__name__.startswith("Constant"):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


class ConstantPad1d(_PadNd):
    def __init__(self, padding, value: float) -> None:
        super().__init__(padding, value)


class ConstantPad2d(ConstantPad1d):
    _nd = 2


class ZeroPad1d(_PadNd):
    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)


class ZeroPad2d(ZeroPad1d):
    _nd = 2


class ReflectionPad1d(_PadNd):
    _mode = "reflect"


class ReflectionPad2d(ReflectionPad1d):
    _nd = 2


class ReplicationPad1d(_PadNd):
    _mode = "replicate"


class ReplicationPad2d(ReplicationPad1d):
    _nd = 2


class CircularPad1d(_PadNd):
    _mode = "circular"


class CircularPad2d(CircularPad1d):
    _nd = 2
