"""Making tensors: from data (`tensor`, `from_numpy`), filled (`zeros`, `full`, `arange`, ...)
and random (`randn`, `rand`, ...), with PyTorch's default dtypes.
"""
from __future__ import annotations

import builtins
import math
import numbers
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from . import _device, _dtype, _ops, _random
from ._record import apply
from ._tensor import Size, Tensor


def _finish(value: jax.Array, device, requires_grad: bool) -> Tensor:
    if device is not None:
        value = jax.device_put(value, _device.device(device).jax_device())
    t = Tensor._from_array(value)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer_dtype(data) -> _dtype.dtype:
    """PyTorch's dtype for Python data: bools -> bool, ints -> int64, floats -> default float."""
    kinds = set()

    def scan(x):
        if isinstance(x, Tensor):
            kinds.add(x.dtype)
        elif isinstance(x, (list, tuple)):
            for y in x:
                scan(y)
        elif isinstance(x, (builtins.bool, np.bool_)):
            kinds.add(_dtype.bool)
        elif isinstance(x, numbers.Integral):
            kinds.add(_dtype.int64)
        elif isinstance(x, numbers.Real):
            kinds.add(_dtype.get_default_dtype())
        elif isinstance(x, numbers.Complex):
            kinds.add(_dtype.get_default_dtype().to_complex())
        else:
            raise TypeError(f"Could not infer dtype of {type(x).__name__}")
    scan(data)
    result = None
    for k in kinds:
        result = k if result is None else _dtype.promote_types(result, k)
    return result or _dtype.get_default_dtype()


def _to_numpy(data):
    if isinstance(data, (list, tuple)):
        return np.array([_to_numpy(x) for x in data]) if data else np.zeros((0,))
    if isinstance(data, Tensor):
        return np.asarray(data._value())
    return data


def tensor(data, dtype=None, device=None, requires_grad: bool = False,
           pin_memory: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of `data` (lists, scalars, numpy or JAX arrays)."""
    if isinstance(data, Tensor):
        warnings.warn("To copy construct from a tensor, it is recommended to use "
                      "sourceTensor.clone().detach() or sourceTensor.clone().detach()"
                      ".requires_grad_(True), rather than tapegrad.tensor(sourceTensor).",
                      UserWarning, stacklevel=2)
        value = data._value()
    elif isinstance(data, jax.Array):
        value = data
    elif isinstance(data, np.ndarray):
        value = data
    else:
        wanted = _dtype.as_dtype(dtype) if dtype is not None else _infer_dtype(data)
        value = np.asarray(_to_numpy(data), dtype=wanted.np)
    target = _dtype.as_dtype(dtype) if dtype is not None else _dtype.from_numpy_dtype(value.dtype)
    with jax.enable_x64(True):
        value = jnp.array(value, dtype=target.np)  # a copy, and never weakly typed
    return _finish(value, device, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like `tensor`, but returns `data` itself when it already is a tensor of that dtype."""
    if isinstance(data, Tensor) and (dtype is None or _dtype.as_dtype(dtype) is data.dtype):
        return data if device is None else data.to(device)
    if isinstance(data, Tensor):
        return data.to(_dtype.as_dtype(dtype))
    if isinstance(data, jax.Array) and dtype is None and device is None:
        return Tensor._from_array(data)
    return tensor(data, dtype=dtype, device=device)


asarray = as_tensor


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor with the array's dtype and values (JAX arrays are immutable, so this copies)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    return tensor(ndarray)


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (list, tuple)):
        size = size[0]
    return tuple(builtins.int(s) for s in size)


def _recorded(t: Tensor, device, requires_grad: bool) -> Tensor:
    """A factory's recorded result, marked as asked; computed now and placed when `device` is
    not where programs run by default (a program's result stays on the default device)."""
    if device is not None and _device.device(device).jax_device() != jax.devices()[0]:
        return _finish(t._value(), device, requires_grad)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _filled(size, fill, dtype, device, requires_grad) -> Tensor:
    return _recorded(apply(_ops.full, fill, shape=size, dtype=dtype.np), device, requires_grad)


def _default(dtype, fallback=None) -> _dtype.dtype:
    return _dtype.as_dtype(dtype) if dtype is not None else (fallback or _dtype.get_default_dtype())


def zeros(*size, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    return _filled(_size(size), 0, _default(dtype), device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    return _filled(_size(size), 1, _default(dtype), device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False, **kwargs) -> Tensor:
    """Like `zeros` (XLA has no uninitialised memory to hand out)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of `size` filled with `fill_value` (its dtype follows the value, as in PyTorch)."""
    if dtype is None:
        dtype = _dtype.scalar_dtype(fill_value.item() if isinstance(fill_value, Tensor) else fill_value)
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    return _filled(_size((size,)), fill_value, _dtype.as_dtype(dtype), device, requires_grad)


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


def arange(start, end=None, step=1, *, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """Values from `start` to `end` (exclusive) by `step`; int64 unless a bound is a float."""
    if end is None:
        start, end = 0, start
    bounds = [b.item() if isinstance(b, Tensor) else b for b in (start, end, step)]
    if step == 0:
        raise RuntimeError("step must be nonzero")
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
    return _recorded(apply(_ops.arange, start, step, n=builtins.max(n, 0), dtype=dtype.np,
                           wide=wide), device, requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    dtype = _default(dtype)
    with jax.enable_x64(True):
        value = jnp.asarray(np.linspace(start, end, steps), dtype=dtype.np)
    return _finish(value, device, requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    dtype = _default(dtype)
    return _recorded(apply(_ops.eye, n=builtins.int(n), m=None if m is None else builtins.int(m),
                           dtype=dtype.np), device, requires_grad)


# -- random ---------------------------------------------------------------------------------------
def _sample(kind, size, dtype, generator, requires_grad, device, extra=None, fallback=None):
    gen = generator or _random.default_generator
    dtype = _default(dtype, fallback)
    return _recorded(gen.sample(kind, _size(size), dtype, extra), device, requires_grad)


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
    return _sample("randint", (tuple(size),), dtype, generator, requires_grad, device,
                   extra=(builtins.int(low), builtins.int(high)), fallback=_dtype.int64)


def randperm(n: int, *, generator=None, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of `0..n-1` (int64)."""
    return _sample("permutation", ((builtins.int(n),),), dtype, generator, requires_grad, device,
                   extra=builtins.int(n), fallback=_dtype.int64)


def randn_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return randn(input.shape, dtype=_like(input, dtype), device=device, requires_grad=requires_grad)


def rand_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return rand(input.shape, dtype=_like(input, dtype), device=device, requires_grad=requires_grad)


# -- helpers for Tensor -----------------------------------------------------------------------------
def legacy_new(args, device) -> Tensor:
    """`Tensor(data)` or `Tensor(*sizes)`: float32, as PyTorch's legacy constructor."""
    if not args:
        return zeros(0, dtype=_dtype.float32, device=device)
    if len(args) == 1 and not isinstance(args[0], (builtins.int, Size)):
        return tensor(args[0], dtype=_dtype.float32, device=device)
    return zeros(*args, dtype=_dtype.float32, device=device)


def parse_to(t: Tensor, args, kwargs):
    """The (device, dtype, copy) a `Tensor.to(...)` call asks for."""
    dev = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            dev, dtype = a.device, a.dtype
        elif isinstance(a, _dtype.dtype) or (isinstance(a, type) and a in (builtins.float, builtins.int, builtins.bool)):
            dtype = a
        elif isinstance(a, (str, _device.device, builtins.int, jax.Device)):
            dev = a
        elif isinstance(a, builtins.bool):
            pass  # non_blocking given positionally
        else:
            dtype = a
    return (None if dev is None else _device.device(dev),
            None if dtype is None else _dtype.as_dtype(dtype), copy)
