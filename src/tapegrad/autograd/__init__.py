"""`tapegrad.autograd`: run the backward pass (`backward`, `grad`) and define custom functions."""
from __future__ import annotations

from .._autograd.api import backward, grad
from .._autograd.buckets import set_shape_buckets
from .._core import compile as _compile
from .._core.grad_mode import enable_grad, inference_mode, no_grad, set_grad_enabled
from .._tensor.tensor import Tensor
from . import anomaly_mode, forward_ad, function, functional, graph
from .anomaly_mode import (detect_anomaly, is_anomaly_check_nan_enabled, is_anomaly_enabled,
                           set_detect_anomaly)
from .function import Function, FunctionCtx, once_differentiable
from .gradcheck import gradcheck, gradgradcheck

__all__ = ["backward", "grad", "Function", "FunctionCtx", "once_differentiable", "Variable",
           "cache_info", "clear_cache", "set_cache_limit", "set_compile_threshold", "set_shape_buckets",
           "no_grad",
           "enable_grad", "set_grad_enabled", "inference_mode", "function", "functional",
           "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled", "gradcheck", "gradgradcheck", "graph", "forward_ad"]

cache_info = _compile.cache_info
clear_cache = _compile.clear_cache
set_cache_limit = _compile.set_cache_limit
set_compile_threshold = _compile.set_compile_threshold


class _VariableMeta(type):
    def __instancecheck__(cls, other) -> bool:
        return isinstance(other, Tensor)


class Variable(metaclass=_VariableMeta):
    """Deprecated in PyTorch: tensors are variables. `Variable(t)` returns `t` (with
    `requires_grad` set), and `isinstance(t, Variable)` holds for every tensor, as in PyTorch."""

    def __new__(cls, data: Tensor, requires_grad: bool = False) -> Tensor:
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        if requires_grad:
            data.requires_grad_(True)
        return data
