"""Tensors from data: `tensor`, `as_tensor`, `from_numpy` (Python numbers and lists, numpy and
JAX arrays), with PyTorch's dtype inference, and the arguments of `Tensor.to`.
"""
from __future__ import annotations

import builtins
import numbers
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from .._core import device as _device, dtype as _dtype
from .._core.jax_compat import put
from .tensor import Tensor


def finish(value: jax.Array, device, requires_grad: bool) -> Tensor:
    """A leaf holding `value`, placed on `device` (if given) and marked as asked."""
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


def _check_range(data, wanted: _dtype.dtype, inferred: builtins.bool) -> None:
    """PyTorch's overflow errors for Python numbers an integer dtype cannot hold (numpy would
    wrap them silently). A negative number still wraps into uint8, as in PyTorch."""
    if wanted.is_floating_point or wanted.is_complex or wanted is _dtype.bool:
        return
    info = np.iinfo(wanted.np)
    low = -2 ** 63 if wanted is _dtype.uint8 else info.min

    def scan(x):
        if isinstance(x, (list, tuple)):
            for y in x:
                scan(y)
        elif isinstance(x, numbers.Real) and not isinstance(x, (builtins.bool, np.bool_)):
            if inferred and not -2 ** 63 <= x < 2 ** 63:
                raise ValueError("Overflow when unpacking long long")
            if not low <= x <= info.max:
                raise RuntimeError(f"value cannot be converted to type {wanted.name} without "
                                   "overflow")
    scan(data)


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
        _check_range(data, wanted, dtype is None)
        value = np.asarray(_to_numpy(data), dtype=wanted.np)
    target = _dtype.as_dtype(dtype) if dtype is not None else _dtype.from_numpy_dtype(value.dtype)
    if isinstance(value, jax.Array):
        with jax.enable_x64(True):  # a copy, and never weakly typed
            value = jnp.array(value, dtype=target.np)
        return finish(value, device, requires_grad)
    # converted on the host (no XLA program per new shape), then placed
    place = None if device is None else _device.device(device).jax_device()
    return finish(put(np.array(value, dtype=target.np), place), None, requires_grad)


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
