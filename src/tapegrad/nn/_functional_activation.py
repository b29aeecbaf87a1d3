"""Activation functions of `tapegrad.nn.functional` (one registry row each)."""
from __future__ import annotations

import warnings

from .. import _dtype, _methods, _ops, _ops_nn
from .._record import apply
from .._tensor import Tensor


def _maybe_inplace(input: Tensor, out: Tensor, inplace: bool) -> Tensor:
    if not inplace:
        return out
    _methods.check_inplace(input)
    return _methods.inplace(input, out)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """`max(input, 0)`; the gradient at 0 is 0, as in PyTorch."""
    return _maybe_inplace(input, apply(_ops.relu, input), inplace)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """`min(max(input, 0), 6)` (hardtanh between 0 and 6)."""
    return _maybe_inplace(input, apply(_ops_nn.relu6, input), inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, apply(_ops_nn.leaky_relu, input,
                                       negative_slope=float(negative_slope)), inplace)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    out = apply(_ops_nn.elu, input, alpha=float(alpha), scale=1.0, input_scale=1.0)
    return _maybe_inplace(input, out, inplace)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, apply(_ops_nn.selu, input), inplace)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit; `approximate="tanh"` uses the tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return apply(_ops_nn.gelu, input, approximate=approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, apply(_ops_nn.silu, input), inplace)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, apply(_ops_nn.mish, input), inplace)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return apply(_ops_nn.softplus, input, beta=float(beta), threshold=float(threshold))


def softsign(input: Tensor) -> Tensor:
    return apply(_ops_nn.softsign, input)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    out = apply(_ops_nn.hardtanh, input, min_val=float(min_val), max_val=float(max_val))
    return _maybe_inplace(input, out, inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, apply(_ops_nn.hardsigmoid, input), inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, apply(_ops_nn.hardswish, input), inplace)


def sigmoid(input: Tensor) -> Tensor:
    return apply(_ops.sigmoid, input)


def tanh(input: Tensor) -> Tensor:
    return apply(_ops.tanh, input)


def _softmax_dim(name: str, ndim: int, dim) -> int:
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                      "to include dim=X as an argument.", UserWarning, stacklevel=3)
        dim = 0 if ndim in (0, 1, 3) else 1
    from .._tensor import normalize_dim
    return normalize_dim(dim, ndim)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """`exp(x) / exp(x).sum(dim)`, computed stably; `dtype` casts the input first."""
    if dtype is not None:
        input = input.to(_dtype.as_dtype(dtype))
    return apply(_ops_nn.softmax, input, dim=_softmax_dim("softmax", input.ndim, dim))


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    if dtype is not None:
        input = input.to(_dtype.as_dtype(dtype))
    return apply(_ops_nn.log_softmax, input, dim=_softmax_dim("log_softmax", input.ndim, dim))


def logsigmoid(input: Tensor) -> Tensor:
    """`log(sigmoid(x))`, computed stably."""
    return apply(_ops_nn.log_sigmoid, input)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """`softmax(-input)`."""
    if dtype is not None:
        input = input.to(_dtype.as_dtype(dtype))
    return apply(_ops_nn.softmax, -input, dim=_softmax_dim("softmin", input.ndim, dim))


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """`max(0, x) + weight * min(0, x)`, with one weight or one per channel (dimension 1)."""
    if weight.numel() != 1 and (input.ndim < 2 or input.shape[1] != weight.numel()):
        raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter "
                           f"numbers = {weight.numel()} and channel size = "
                           f"{input.shape[1] if input.ndim >= 2 else 1}.")
    return apply(_ops_nn.prelu, input, weight)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: the first half of `dim` times the sigmoid of the second half."""
    from .._tensor import normalize_dim
    d = normalize_dim(dim, input.ndim)
    if input.shape[d] % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size "
                           f"{input.shape[d]}")
    return apply(_ops_nn.glu, input, dim=d)
