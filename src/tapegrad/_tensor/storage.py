"""Where a tensor's elements live, in PyTorch's terms: a storage, an offset and strides.

tapegrad keeps one dense JAX array per storage cell. A view (`x[1:]`, `x.t()`) has a cell of its
own, computed from its base's array (`views.py`); `place(t)` says where its elements sit in the
base's array, as PyTorch describes them: `(base, storage_offset, stride)` (`strides.py`). That gives
third-party code PyTorch's answers to "which storage, how big, at what address"
(`untyped_storage()`, `data_ptr()`), and lets `tapegrad.save` write the views of one storage
once, as `torch.save` does.
"""
from __future__ import annotations

import jax

from .._core import device as _device, layout as _layout
from .._core.dims import normalize_dim
from . import strides as _strides
from .methods import attribute, bind, method
from .strides import contiguous_strides
from .tensor import Tensor
from .views import layout as _view_layout


def place(t: Tensor):
    """`(base, storage_offset, stride)`: where `t`'s elements sit in the array of `base`.

    `base` is `t` itself (offset 0, row-major strides) unless `t` is a view with elements, whose
    layout in its base was folded step by step as PyTorch computes it (`strides.py`).
    """
    v = t._cell.view
    if v is not None and t.numel() > 0:
        offset, strides = v.layout
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


@method("stride")
def stride(self: Tensor, dim: int | None = None):
    """The step (in elements) between neighbours along each dimension, as PyTorch's strides:
    row-major for a tensor of its own, its base's steps for a view (`x.t().stride()`)."""
    strides = _view_layout(self)[1]
    return strides if dim is None else strides[normalize_dim(dim, self.ndim)]


@method("storage_offset")
def storage_offset(self: Tensor) -> int:
    """Where the first element sits in the storage (in elements): 0 unless a view."""
    return _view_layout(self)[0]


@method("is_contiguous")
def is_contiguous(self: Tensor, memory_format=None) -> bool:
    """Whether the elements are dense and row-major in their storage (or in the order of
    `memory_format`), by PyTorch's rule: a transposed or stepped view is not."""
    if memory_format is None and self._cell.view is None:
        return True  # a tensor of its own storage is dense and row-major
    return _strides.is_contiguous(self.shape, self.stride(), _strides.format_name(memory_format))


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
