"""Activation functions of `tapegrad.nn.functional` (one registry row each)."""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

from .._core import dtype as _dtype
from .._core.dims import normalize_dim, numpy_names
from .._core.graph import Op, SAVES_OUTPUT
from .._core.rows import abs_
from .._functions.pointwise import relu_op, sigmoid_op, tanh_op, where
from .._tensor.apply import apply
from .._tensor.construct import tensor
from .._tensor.inplace import check_inplace, inplace as write_inplace
from .._tensor.methods import method
from .._tensor.tensor import Tensor


def _maybe_inplace(input: Tensor, out: Tensor, inplace: bool) -> Tensor:
    if not inplace:
        return out
    check_inplace(input)
    return write_inplace(input, out)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """`max(input, 0)`; the gradient at 0 is 0, as in PyTorch."""
    return _maybe_inplace(input, apply(relu_op, input), inplace)


def _hardtanh(x, *, min_val, max_val):
    # PyTorch's derivative is 1 strictly inside (min_val, max_val) and 0 at and beyond the bounds.
    lo, hi = jnp.asarray(min_val, x.dtype), jnp.asarray(max_val, x.dtype)
    return jnp.where(x <= lo, lo, jnp.where(x >= hi, hi, x))


def _unary(name: str, fn, saves=(0,), **kw) -> Op:
    """A one-input row whose static arguments are keywords of `fn`."""
    return Op(name, fn, saves=saves, **kw)


relu6_op = _unary("relu6", lambda x: _hardtanh(x, min_val=0.0, max_val=6.0),
                  grad_name="HardtanhBackward0")


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """`min(max(input, 0), 6)` (hardtanh between 0 and 6)."""
    return _maybe_inplace(input, apply(relu6_op, input), inplace)


def _leaky_relu(x, *, negative_slope):
    return jnp.where(x > 0, x, x * negative_slope)  # derivative at 0 is negative_slope, as PyTorch


leaky_relu_op = _unary("leaky_relu", _leaky_relu)


def _float_kernel(kernel: str, input: Tensor) -> None:
    """PyTorch has no integer kernel for this activation."""
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        raise NotImplementedError(f'"{kernel}" not implemented for '
                                  f"'{_dtype.scalar_name(input.dtype)}'")


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    _float_kernel("leaky_relu_cpu", input)
    return _maybe_inplace(input, apply(leaky_relu_op, input,
                                       negative_slope=float(negative_slope)), inplace)


def _elu(x, *, alpha, scale, input_scale):
    neg = jnp.where(x > 0, jnp.zeros_like(x), x)  # keeps expm1 finite on the unselected branch
    return jnp.where(x > 0, x * scale, alpha * scale * jnp.expm1(neg * input_scale))


elu_op = _unary("elu", _elu)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    _float_kernel("elu_cpu", input)
    out = apply(elu_op, input, alpha=float(alpha), scale=1.0, input_scale=1.0)
    return _maybe_inplace(input, out, inplace)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """`value` where `input <= threshold`, else `input` (gradient 1 above the threshold, else 0)."""
    above = input > threshold
    out = where(above, input, tensor(value, dtype=input.dtype))
    return _maybe_inplace(input, out, inplace)


def _celu(x, *, alpha):
    return _elu(x, alpha=alpha, scale=1.0, input_scale=1.0 / alpha)


celu_op = _unary("celu", _celu)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """`max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`."""
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")
    return _maybe_inplace(input, apply(celu_op, input, alpha=float(alpha)), inplace)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _selu(x):
    return _elu(x, alpha=_SELU_ALPHA, scale=_SELU_SCALE, input_scale=1.0)


selu_op = _unary("selu", _selu, grad_name="EluBackward0")


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, apply(selu_op, input), inplace)


def _gelu(x, *, approximate):
    return jax.nn.gelu(x, approximate=approximate == "tanh")


gelu_op = _unary("gelu", _gelu)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit; `approximate="tanh"` uses the tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    _float_kernel("GeluKernelImpl", input)
    return apply(gelu_op, input, approximate=approximate)


def _silu(x):
    return x * jax.nn.sigmoid(x)


silu_op = _unary("silu", _silu)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    _float_kernel("silu_cpu", input)
    return _maybe_inplace(input, apply(silu_op, input), inplace)


def _mish(x):
    return x * jnp.tanh(jax.nn.softplus(x))


mish_op = _unary("mish", _mish)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, apply(mish_op, input), inplace)


def _softplus(x, *, beta, threshold):
    bx = x * beta
    over = bx > threshold  # PyTorch reverts to the identity above the threshold
    return jnp.where(over, x, jnp.log1p(jnp.exp(jnp.where(over, jnp.zeros_like(bx), bx))) / beta)


softplus_op = _unary("softplus", _softplus)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    _float_kernel("softplus_cpu", input)
    return apply(softplus_op, input, beta=float(beta), threshold=float(threshold))


def _softsign(x):
    return x / (1 + abs_(x))


softsign_op = _unary("softsign", _softsign, grad_name="DivBackward0")


def softsign(input: Tensor) -> Tensor:
    return apply(softsign_op, input)


hardtanh_op = _unary("hardtanh", _hardtanh)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    out = apply(hardtanh_op, input, min_val=float(min_val), max_val=float(max_val))
    return _maybe_inplace(input, out, inplace)


def _hardsigmoid(x):
    # derivative 1/6 strictly inside (-3, 3), 0 elsewhere
    return jnp.where(x <= -3, jnp.zeros_like(x), jnp.where(x >= 3, jnp.ones_like(x), x / 6 + 0.5))


hardsigmoid_op = _unary("hardsigmoid", _hardsigmoid)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, apply(hardsigmoid_op, input), inplace)


def _hardswish(x):
    # derivative x/3 + 1/2 strictly inside (-3, 3); 0 at -3 and 1 at 3, as PyTorch
    return jnp.where(x <= -3, jnp.zeros_like(x), jnp.where(x >= 3, x, x * (x + 3) / 6))


hardswish_op = _unary("hardswish", _hardswish)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, apply(hardswish_op, input), inplace)


def sigmoid(input: Tensor) -> Tensor:
    return apply(sigmoid_op, input)


def tanh(input: Tensor) -> Tensor:
    return apply(tanh_op, input)


def _softmax_dim(name: str, ndim: int, dim) -> int:
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                      "to include dim=X as an argument.", UserWarning, stacklevel=3)
        dim = 0 if ndim in (0, 1, 3) else 1
    d = normalize_dim(dim, ndim)
    return d if ndim else ()  # a 0-d tensor accepts dim 0 and -1 and has no axis


softmax_op = _unary("softmax", lambda x, *, dim: jax.nn.softmax(x, axis=dim), saves=SAVES_OUTPUT)


@method("softmax")
@numpy_names
def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """`exp(x) / exp(x).sum(dim)`, computed stably; `dtype` casts the input first."""
    if dtype is not None:
        input = input.to(_dtype.as_dtype(dtype))
    _floating_softmax("softmax", input, dim)
    return apply(softmax_op, input, dim=_softmax_dim("softmax", input.ndim, dim))


def _floating_softmax(name: str, input: Tensor, dim) -> None:
    """PyTorch has no integer softmax kernels (pass `dtype=` to cast first)."""
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        last = dim is None or input.ndim <= 1 or dim in (-1, input.ndim - 1)
        raise NotImplementedError(f'"{name}_{"lastdim_" if last else ""}kernel_impl" not '
                                  f"implemented for '{_dtype.scalar_name(input.dtype)}'")


log_softmax_op = _unary("log_softmax", lambda x, *, dim: jax.nn.log_softmax(x, axis=dim),
                        saves=SAVES_OUTPUT)


@method("log_softmax")
@numpy_names
def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    if dtype is not None:
        input = input.to(_dtype.as_dtype(dtype))
    _floating_softmax("log_softmax", input, dim)
    return apply(log_softmax_op, input, dim=_softmax_dim("log_softmax", input.ndim, dim))


log_sigmoid_op = _unary("log_sigmoid", jax.nn.log_sigmoid)


def logsigmoid(input: Tensor) -> Tensor:
    """`log(sigmoid(x))`, computed stably."""
    return apply(log_sigmoid_op, input)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """`softmax(-input)`."""
    if dtype is not None:
        input = input.to(_dtype.as_dtype(dtype))
    return apply(softmax_op, -input, dim=_softmax_dim("softmin", input.ndim, dim))


def _prelu(x, w):
    if x.ndim >= 2 and w.size > 1:
        w = w.reshape((-1,) + (1,) * (x.ndim - 2))
    return jnp.where(x > 0, x, w * x)  # derivative at 0 is the weight, as PyTorch


prelu_op = Op("prelu", _prelu, grad_name="PreluKernelBackward0")


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """`max(0, x) + weight * min(0, x)`, with one weight or one per channel (dimension 1)."""
    if weight.numel() != 1 and (input.ndim < 2 or input.shape[1] != weight.numel()):
        raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter "
                           f"numbers = {weight.numel()} and channel size = "
                           f"{input.shape[1] if input.ndim >= 2 else 1}.")
    return apply(prelu_op, input, weight)


def _glu(x, *, dim):
    a, b = jnp.split(x, 2, axis=dim)
    return a * jax.nn.sigmoid(b)


glu_op = _unary("glu", _glu)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: the first half of `dim` times the sigmoid of the second half."""
    d = normalize_dim(dim, input.ndim)
    if input.shape[d] % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size "
                           f"{input.shape[d]}")
    return apply(glu_op, input, dim=d)


# -- in-place spellings (`F.relu_(x)` is `F.relu(x, inplace=True)`) ------------------------------
_threshold = threshold


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    return _threshold(input, threshold, value, inplace=True)


def relu_(input: Tensor) -> Tensor:
    return relu(input, inplace=True)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return elu(input, alpha, inplace=True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, inplace=True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return celu(input, alpha, inplace=True)


def selu_(input: Tensor) -> Tensor:
    return selu(input, inplace=True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, inplace=True)
