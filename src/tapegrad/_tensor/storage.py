"""Where a tensor's elements live, in PyTorch's terms: a storage, an offset and strides.

tapegrad keeps one dense JAX array per storage cell. A view (`x[1:]`, `x.t()`) has a cell of its
own, computed from its base's array (`views.py`); `place(t)` finds where its elements sit in the
base's array, as PyTorch would describe them: `(base, storage_offset, stride)`. That gives
third-party code PyTorch's answers to "which storage, how big, at what address"
(`untyped_storage()`, `data_ptr()`), and lets `tapegrad.save` write the views of one storage
once, as `torch.save` does.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from .._core import device as _device, layout as _layout
from .methods import attribute, bind
from .tensor import Tensor


def contiguous_strides(shape) -> tuple:
    """Row-major strides (in elements) of a dense array of this shape."""
    strides, step = [], 1
    for s in reversed(tuple(shape)):
        strides.append(step)
        step *= max(s, 1)
    return tuple(reversed(strides))


@functools.lru_cache(maxsize=256)
def _probe(base_shape: tuple, steps: tuple):
    """A compiled program: the view's steps run on the flat positions of the base, fitted to
    `offset + sum(index * stride)`; returns (offset, strides, whether the fit is exact)."""
    def fit(*operands):
        pos = jnp.arange(math.prod(base_shape), dtype=jnp.int64).reshape(base_shape)
        i = 0
        for op, n, static in steps:
            pos = op.fn(pos, *operands[i:i + n], **dict(static))
            i += n
        origin = (0,) * pos.ndim
        offset = pos[origin]
        strides = [pos[origin[:d] + (1,) + origin[d + 1:]] - offset if pos.shape[d] > 1
                   else jnp.int64(0) for d in range(pos.ndim)]
        expected = offset
        for d, st in enumerate(strides):
            expected = expected + jax.lax.broadcasted_iota(jnp.int64, pos.shape, d) * st
        return offset, jnp.stack(strides) if strides else jnp.zeros(0, jnp.int64), \
            jnp.all(pos == expected)
    return jax.jit(fit)


def place(t: Tensor):
    """`(base, storage_offset, stride)`: where `t`'s elements sit in the array of `base`.

    `base` is `t` itself (offset 0, row-major strides) unless `t` is a view whose elements are
    a strided selection of its base's; a view that is not (a reshape of a transposed view,
    which PyTorch would have copied) or that has no elements has storage of its own.
    """
    v = t._cell.view
    if v is not None and t.numel() > 0:
        if v.layout is None:
            with jax.enable_x64(True):
                offset, strides, exact = _probe(tuple(v.base.shape), v.steps)(*v.operands)
                v.layout = (int(offset), tuple(int(s) for s in np.asarray(strides))) \
                    if bool(exact) else False
        if v.layout:
            offset, strides = v.layout
            # size-1 dimensions: any stride addresses the same element; PyTorch's is row-major
            dense = contiguous_strides(t.shape)
            strides = tuple(st if s > 1 else d for st, s, d in zip(strides, t.shape, dense))
            return v.base, offset, strides
    return t, 0, contiguous_strides(t.shape)


def _address(t: Tensor) -> int:
    """The address of `t`'s array on its device (0 when it has no elements)."""
    if t.numel() == 0:
        return 0
    value = t._value()
    if isinstance(value, jax.core.Tracer):
        raise RuntimeError("data_ptr() needs a tensor's memory, but the value is being traced "
                           "(by tapegrad.compile or a JAX transformation); call it outside")
    try:
        return value.unsafe_buffer_pointer()
    except (RuntimeError, ValueError) as e:  # e.g. an array sharded over several devices
        raise RuntimeError(f"data_ptr(): this tensor's array has no single buffer ({e})") from None


class UntypedStorage:
    """The bytes under a tensor (`Tensor.untyped_storage()`): its base's whole array.

    Read-only introspection (size, address, device), as libraries that inspect tensors use it;
    tapegrad's arrays are immutable JAX arrays, so there are no storage-level writes.
    """

    __slots__ = ("_base",)

    def __init__(self, base: Tensor) -> None:
        self._base = base

    def nbytes(self) -> int:
        return self._base.numel() * self._base.dtype.itemsize

    size = nbytes

    def __len__(self) -> int:
        return self.nbytes()

    def element_size(self) -> int:
        return 1

    def data_ptr(self) -> int:
        return _address(self._base)

    @property
    def device(self) -> _device.device:
        return self._base.device

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def __repr__(self) -> str:
        return f"tapegrad.UntypedStorage(nbytes={self.nbytes()}, device={self.device})"


def _untyped_storage(self: Tensor) -> UntypedStorage:
    """The storage this tensor's elements live in (a view's is its base's, as in PyTorch)."""
    return UntypedStorage(place(self)[0])


def _data_ptr(self: Tensor) -> int:
    """The address of the first element: the storage's address plus the offset, as PyTorch.

    tapegrad gives a storage a new array at each in-place update (JAX arrays are immutable),
    so the address changes with it, where PyTorch's stays put.
    """
    base, offset, _ = place(self)
    if self.numel() == 0:
        return 0
    return _address(base) + offset * self.dtype.itemsize


bind("untyped_storage", _untyped_storage)
bind("data_ptr", _data_ptr)


@attribute("layout")
def _layout_of(self: Tensor) -> _layout.layout:
    return _layout.strided


@attribute("nbytes")
def _nbytes(self: Tensor) -> int:
    return self.numel() * self.dtype.itemsize


@attribute("itemsize")
def _itemsize(self: Tensor) -> int:
    return self.dtype.itemsize


def _false(self: Tensor) -> bool:
    return False


for _name in ("is_sparse", "is_sparse_csr", "is_quantized", "is_meta", "is_mkldnn", "is_nested"):
    bind(_name, property(_false), __name__)
