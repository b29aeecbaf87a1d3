"""Making tensors from sizes and numbers: filled (`zeros`, `full`, `arange`, `eye`, ...),
random (`randn`, `rand`, ...), the `*_like` and `Tensor.new_*` forms, and in-place fills.

Data constructors (`tensor`, `as_tensor`, `from_numpy`) live one layer down, in
`_tensor.construct`: the tensor layer needs them too.
"""
from __future__ import annotations

import builtins
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._core import device as _device, dtype as _dtype
from .._core.dims import new_shape, shape_arg
from .._core.graph import Op, SAVES_NONE
from .._core.ops import full_op
from .._tensor import random as _random
from .._tensor.apply import apply
from .._tensor.construct import finish, tensor
from .._tensor.inplace import check_inplace, inplace
from .._tensor.methods import method
from .._tensor.tensor import Size, Tensor


def _recorded(t: Tensor, device, requires_grad: bool) -> Tensor:
    """A factory's recorded result, marked as asked; computed now and placed when `device` is
    not where programs run by default (a program's result stays on the default device)."""
    if device is not None and _device.device(device).jax_device() != _device.default_jax_device():
        return finish(t._value(), device, requires_grad)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _filled(size, fill, dtype, device, requires_grad) -> Tensor:
    return _recorded(apply(full_op, fill, shape=size, dtype=dtype.np), device, requires_grad)


def _default(dtype, fallback=None) -> _dtype.dtype:
    return _dtype.as_dtype(dtype) if dtype is not None else (fallback or _dtype.get_default_dtype())


def zeros(*size, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    return _filled(new_shape(size), 0, _default(dtype), device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    return _filled(new_shape(size), 1, _default(dtype), device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False, **kwargs) -> Tensor:
    """Like `zeros` (XLA has no uninitialised memory to hand out)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of `size` filled with `fill_value` (its dtype follows the value, as in PyTorch)."""
    if dtype is None:
        dtype = _dtype.scalar_dtype(fill_value.item() if isinstance(fill_value, Tensor) else fill_value)
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    dtype = _dtype.as_dtype(dtype)
    _fits(fill_value, dtype)
    return _filled(new_shape((size,)), fill_value, dtype, device, requires_grad)


_C_INT_NAMES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int",
                "int64": "int64_t"}


def _fits(value, dtype: _dtype.dtype) -> None:
    """PyTorch's overflow error for a fill value an integer dtype cannot hold (a negative value
    still wraps into uint8, as in PyTorch); XLA would wrap it silently."""
    if dtype.is_floating_point or dtype.is_complex or dtype is _dtype.bool or \
            not isinstance(value, numbers.Integral) or isinstance(value, builtins.bool):
        return
    info = np.iinfo(dtype.np)
    low = -2 ** 63 if dtype is _dtype.uint8 else info.min
    if not low <= value <= info.max:
        raise RuntimeError(f"value cannot be converted to type "
                           f"{_C_INT_NAMES.get(dtype.name, dtype.name)} without overflow")


def _like(input: Tensor, dtype):
    return _dtype.as_dtype(dtype) if dtype is not None else input.dtype


def zeros_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False,
               memory_format=None) -> Tensor:
    return zeros(input.shape, dtype=_like(input, dtype), device=device, requires_grad=requires_grad)


def ones_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False,
              memory_format=None) -> Tensor:
    return ones(input.shape, dtype=_like(input, dtype), device=device, requires_grad=requires_grad)


def empty_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False,
               memory_format=None) -> Tensor:
    return zeros_like(input, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(input: Tensor, fill_value, *, dtype=None, device=None,
              requires_grad: bool = False, memory_format=None) -> Tensor:
    return full(input.shape, fill_value, dtype=_like(input, dtype), device=device,
                requires_grad=requires_grad)


def _arange(start, step, *, n, dtype, wide):
    """`start + i * step` computed in `wide` (float64 or int64, as PyTorch), then cast."""
    return (start + step * lax.iota(wide, n)).astype(dtype)


arange_op = Op("arange", _arange, saves=SAVES_NONE, differentiable=False)


def arange(start, end=None, step=1, *, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """Values from `start` to `end` (exclusive) by `step`; int64 unless a bound is a float."""
    if end is None:
        start, end = 0, start
    bounds = [b.item() if isinstance(b, Tensor) else b for b in (start, end, step)]
    if not all(math.isfinite(b) for b in bounds[:2]):
        raise RuntimeError(f"unsupported range: {bounds[0]:g} -> {bounds[1]:g}")
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (bounds[1] - bounds[0]) * bounds[2] < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    if dtype is None:
        dtype = (_dtype.int64 if all(isinstance(b, numbers.Integral) for b in bounds)
                 else _dtype.get_default_dtype())
    dtype = _dtype.as_dtype(dtype)
    if dtype.is_floating_point or dtype.is_complex:
        start, end, step = (builtins.float(b) for b in bounds)
        n, wide = math.ceil((end - start) / step), np.float64
    else:  # bounds truncated to integers first, as PyTorch (which sizes int64 from those)
        start, end, step = (builtins.int(b) for b in bounds)
        if dtype is not _dtype.int64:
            n = math.ceil((bounds[1] - bounds[0]) / bounds[2])
        elif step == 0:
            raise ValueError("step must be nonzero")
        else:
            n = -(-(end - start) // step)
        wide = np.int64
    return _recorded(apply(arange_op, start, step, n=builtins.max(n, 0), dtype=dtype.np,
                           wide=wide), device, requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    dtype = _default(dtype)
    if dtype is _dtype.bool:
        raise NotImplementedError("\"linspace_cpu\" not implemented for 'Bool'")
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    with jax.enable_x64(True):
        value = jnp.asarray(np.linspace(start, end, steps), dtype=dtype.np)
    return finish(value, device, requires_grad)


eye_op = Op("eye", lambda *, n, m, dtype: jnp.eye(n, m, dtype=dtype), saves=SAVES_NONE,
            differentiable=False)


def eye(n: int, m: int | None = None, *, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    dtype = _default(dtype)
    return _recorded(apply(eye_op, n=builtins.int(n), m=None if m is None else builtins.int(m),
                           dtype=dtype.np), device, requires_grad)


# -- random ---------------------------------------------------------------------------------------
_SAMPLER_NAMES = {"normal": "normal_kernel_cpu", "uniform": "check_uniform_bounds"}


def _sample(kind, size, dtype, generator, requires_grad, device, extra=None, fallback=None):
    gen = generator or _random.default_generator
    dtype = _default(dtype, fallback)
    if kind in _SAMPLER_NAMES and not (dtype.is_floating_point or dtype.is_complex):
        raise NotImplementedError(f'"{_SAMPLER_NAMES[kind]}" not implemented for '
                                  f"'{_dtype.scalar_name(dtype)}'")
    return _recorded(gen.sample(kind, new_shape(size), dtype, extra), device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the (seeded) generator."""
    return _sample("normal", size, dtype, generator, requires_grad, device)


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples on [0, 1) from the (seeded) generator."""
    return _sample("uniform", size, dtype, generator, requires_grad, device)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """Integers uniform on [low, high) (int64 unless `dtype` says otherwise)."""
    if size is None:
        low, high, size = 0, low, high
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= "
                           f"to={high}")
    dtype = _default(dtype, _dtype.int64)
    _check_int_bounds(low, high, dtype)
    return _sample("randint", (tuple(size),), dtype, generator, requires_grad, device,
                   extra=(builtins.int(low), builtins.int(high)), fallback=_dtype.int64)


def _check_int_bounds(low, high, dtype) -> None:
    """PyTorch's range check of `[low, high)` for an integer or bool result dtype."""
    if dtype.is_floating_point or dtype.is_complex:
        return
    lowest, highest = (0, 1) if dtype is _dtype.bool else (
        builtins.int(np.iinfo(dtype.np).min), builtins.int(np.iinfo(dtype.np).max))
    if low < lowest:
        raise RuntimeError(f"from is out of bounds for {_dtype.c_name(dtype)}")
    if high - 1 > highest:
        raise RuntimeError(f"to - 1 is out of bounds for {_dtype.c_name(dtype)}")


def randperm(n: int, *, generator=None, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of `0..n-1` (int64)."""
    if dtype is not None and _dtype.as_dtype(dtype) is _dtype.bool:
        raise NotImplementedError("\"randperm\" not implemented for 'Bool'")
    if dtype is not None and n > 0:
        _fits(builtins.int(n) - 1, _dtype.as_dtype(dtype))
    return _sample("permutation", ((builtins.int(n),),), dtype, generator, requires_grad, device,
                   extra=builtins.int(n), fallback=_dtype.int64)


def randn_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False,
               memory_format=None) -> Tensor:
    return randn(input.shape, dtype=_like(input, dtype), device=device, requires_grad=requires_grad)


def rand_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False,
              memory_format=None) -> Tensor:
    return rand(input.shape, dtype=_like(input, dtype), device=device, requires_grad=requires_grad)


# -- Tensor's constructor and new_* methods ---------------------------------------------------------
def _legacy(dtype, args: tuple, device) -> Tensor:
    """PyTorch's legacy constructors: `(data)` copies, `(*sizes)` makes that shape (zeros: the
    memory PyTorch leaves uninitialised), `()` is empty."""
    if not args:
        return zeros(0, dtype=dtype, device=device)
    if len(args) == 1 and not isinstance(args[0], (builtins.int, Size)):
        return tensor(args[0], dtype=dtype, device=device)
    return zeros(*args, dtype=dtype, device=device)


@method("__init__")
def _legacy_init(self: Tensor, *args, device=None) -> None:
    """`Tensor(data)` or `Tensor(*sizes)`: float32, as PyTorch's legacy constructor (prefer
    `tapegrad.tensor`); the new tensor takes over a fresh tensor's storage."""
    other = _legacy(_dtype.float32, args, device)
    self._become(other)


class _LegacyTensorType(type):
    """The type of `FloatTensor`, `LongTensor`, ...: calling one constructs a tensor of its
    dtype, and `isinstance(t, FloatTensor)` asks whether `t` is a float32 tensor, as in PyTorch."""

    def __call__(cls, *args, device=None) -> Tensor:
        return _legacy(cls.dtype, args, device)

    def __instancecheck__(cls, obj) -> builtins.bool:
        return isinstance(obj, Tensor) and obj.dtype is cls.dtype

    def __repr__(cls) -> str:
        return f"<class 'tapegrad.{cls.__name__}'>"


def _legacy_type(name: str, dtype) -> type:
    return _LegacyTensorType(name, (), {"dtype": dtype, "__module__": "tapegrad",
                                        "__doc__": f"Legacy constructor of {dtype} tensors."})


FloatTensor = _legacy_type("FloatTensor", _dtype.float32)
DoubleTensor = _legacy_type("DoubleTensor", _dtype.float64)
HalfTensor = _legacy_type("HalfTensor", _dtype.float16)
BFloat16Tensor = _legacy_type("BFloat16Tensor", _dtype.bfloat16)
LongTensor = _legacy_type("LongTensor", _dtype.int64)
IntTensor = _legacy_type("IntTensor", _dtype.int32)
ShortTensor = _legacy_type("ShortTensor", _dtype.int16)
CharTensor = _legacy_type("CharTensor", _dtype.int8)
ByteTensor = _legacy_type("ByteTensor", _dtype.uint8)
BoolTensor = _legacy_type("BoolTensor", _dtype.bool)


@method("new_tensor")
def new_tensor(self: Tensor, data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return tensor(data, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)


@method("new_zeros", "new_empty")
def new_zeros(self: Tensor, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)


@method("new_ones")
def new_ones(self: Tensor, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return ones(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)


@method("new_full")
def new_full(self: Tensor, size, fill_value, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    return full(size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad)


fill_op = Op("fill", lambda x, v: jnp.broadcast_to(jnp.asarray(v, x.dtype), x.shape),
             saves=SAVES_NONE)


@method("fill_")
def fill_(self: Tensor, value) -> Tensor:
    """Fill with `value` (a number or a one-element tensor)."""
    check_inplace(self)
    _fits(value, self.dtype)
    if type(value) in (int, float, bool) and not self.requires_grad:
        # the old value is not read, so the new one is a constant (`Node.constant`): resetting
        # state (`zero_()`, BatchNorm's running statistics) then adds no input to the next program
        filled = full(tuple(self.shape), value, dtype=self.dtype, device=self.device)
        return inplace(self, filled)
    return inplace(self, apply(fill_op, self, value))


@method("zero_")
def zero_(self: Tensor) -> Tensor:
    return fill_(self, 0)
