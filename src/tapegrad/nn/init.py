"""`tapegrad.nn.init`: fill tensors in place (under no_grad) with PyTorch's initialisation schemes.

Draws come from tapegrad's generator (`manual_seed` makes them repeat). Compiling a random draw
is slow (the bit generator unrolls for each shape), so an initial value is drawn at once as a
flat block whose size is rounded up to a power of two, by a program cached per block size;
cutting it to shape and scaling stay pending, cheap parts of whatever program reads them. A
model's first step then compiles no draws, and layers of similar sizes share compiled draws.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .._core import grad_mode as _grad_mode
from .._functions.creation import eye, full
from .._tensor import random as _random
from .._tensor.inplace import check_inplace, inplace
from .._tensor.tensor import Tensor


__all__ = [
    "calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_",
    "eye_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
    "orthogonal_",
]


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (`"relu"` -> sqrt(2), `"tanh"` -> 5/3, ...)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d")
    if nonlinearity in linear or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 "
                         "dimensions")
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _draw(tensor: Tensor, kind: str, generator, extra=None, shape=None) -> Tensor:
    """A `kind` draw of the tensor's shape (or `shape`) and dtype, cut from a computed block."""
    gen = generator or _random.default_generator
    shape = tuple(tensor.shape) if shape is None else shape
    n = math.prod(shape)
    block = max(256, 1 << max(n - 1, 0).bit_length())
    flat = gen.sample(kind, (block,), tensor.dtype, extra)
    flat.jax()  # compute now (see the module docstring)
    return flat[:n].reshape(shape)


def _write(tensor: Tensor, value: Tensor) -> Tensor:
    """Make `value` the tensor's new contents, in place. Unlike `copy_`, the new value does not
    depend on the old one, so an overwritten initialisation is never computed."""
    with _grad_mode.no_grad():
        check_inplace(tensor)
        return inplace(tensor, value)


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill with draws from U(a, b)."""
    return _write(tensor, _draw(tensor, "uniform", generator) * (b - a) + a)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill with draws from N(mean, std^2)."""
    return _write(tensor, _draw(tensor, "normal", generator) * std + mean)


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator=None) -> Tensor:
    """Fill with draws from N(mean, std^2) restricted to [a, b]."""
    lo, hi = (a - mean) / std, (b - mean) / std
    return _write(tensor, _draw(tensor, "truncated_normal", generator, (lo, hi)) * std + mean)


def constant_(tensor: Tensor, val: float) -> Tensor:
    return _write(tensor, full(tuple(tensor.shape), val, dtype=tensor.dtype))


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity."""
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _write(tensor, eye(*tensor.shape, dtype=tensor.dtype))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """U(-bound, bound) with bound = gain * sqrt(3 / fan) (He et al.)."""
    if 0 in tensor.shape:
        return tensor
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(_calculate_correct_fan(tensor, mode))
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan)."""
    if 0 in tensor.shape:
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """A (semi-)orthogonal matrix (rows x prod(rest)), from the QR decomposition of a normal draw."""
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = _draw(tensor, "normal", generator, shape=(rows, cols)).jax()
    with jax.enable_x64(True):
        a = flat.T if rows < cols else flat
        q, r = jnp.linalg.qr(a)
        q = q * jnp.sign(jnp.diagonal(r))  # makes the decomposition unique, as PyTorch
        q = (q.T if rows < cols else q).reshape(tuple(tensor.shape)) * gain
    return _write(tensor, Tensor._from_array(q.astype(flat.dtype)))


# PyTorch's deprecated aliases without the trailing underscore
uniform, normal, constant = uniform_, normal_, constant_
xavier_uniform, xavier_normal = xavier_uniform_, xavier_normal_
kaiming_uniform, kaiming_normal, orthogonal = kaiming_uniform_, kaiming_normal_, orthogonal_
