"""Conversions: `Tensor.to` (dtype and device), `clone`, `copy_`, and the dtype shorthands
(`float()`, `long()`, ...).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .._core import device as _device, dtype as _dtype, grad_mode as _grad_mode
from .._core.graph import Op, SAVES_NONE
from .._core.ops import to_dtype_op
from .._tensor.apply import apply
from .._tensor.construct import parse_to, tensor
from .._tensor.inplace import check_inplace, inplace
from .._tensor.methods import method
from .._tensor.strides import format_name
from .._tensor.tensor import Tensor


clone_op = Op("clone", lambda x: x, saves=SAVES_NONE)
to_device_op = Op("to_device", lambda x, *, device: jax.device_put(x, device), saves=SAVES_NONE,
                  grad_name="ToCopyBackward0")
copy_op = Op("copy", lambda x, src, *, dtype: jnp.broadcast_to(src.astype(dtype), x.shape),
             saves=SAVES_NONE, grad_name="CopyBackwards")


@method("copy_")
def copy_(self: Tensor, src, non_blocking: bool = False) -> Tensor:
    """Copy `src` (broadcast, converted to this dtype) into this tensor; gradients flow to `src`."""
    check_inplace(self)
    if not isinstance(src, Tensor):
        src = tensor(src)
    return inplace(self, apply(copy_op, self, src, dtype=self.dtype.np))


@method("to")
def to(self: Tensor, *args, **kwargs) -> Tensor:
    """`to(dtype)`, `to(device)`, `to(device, dtype)` or `to(other)`; returns self if unchanged."""
    dev, dtype, copy = parse_to(self, args, kwargs)
    out = self
    if dtype is not None and dtype is not self.dtype:
        out = apply(to_dtype_op, out, dtype=dtype.np)
    if dev is not None and dev != self.device:
        out = move(out, dev)
    if copy and out is self:
        out = clone(self)
    return out


def move(t: Tensor, dev: _device.device) -> Tensor:
    """`t` placed on `dev`.

    A compiled program runs where its inputs are, so a move recorded as one of its ops moves
    nothing: a value no gradient flows through is computed and placed on `dev` now. A move that
    gradients flow back through is recorded (`ToCopyBackward0`) and its value stays on the
    source device: backward programs do not span devices yet.
    """
    if t.requires_grad and _grad_mode.is_grad_enabled():
        return apply(to_device_op, t, device=dev.jax_device())
    return Tensor._from_array(jax.device_put(t._value(), dev.jax_device()))


@method("clone")
def clone(self: Tensor, *, memory_format=None) -> Tensor:
    """A copy with its own storage; gradients flow back to the original."""
    return apply(clone_op, self)


@method("contiguous")
def contiguous(self: Tensor, memory_format=None) -> Tensor:
    """`self` when already contiguous (in `memory_format`), else a row-major copy of its own
    (`CloneBackward0`): writes to it no longer reach `self`'s storage."""
    if self.is_contiguous(memory_format):
        return self
    if format_name(memory_format) == "preserve_format":
        raise RuntimeError("preserve memory format is unsupported by the contiguous operator")
    return apply(clone_op, self)


@method("type")
def type_(self: Tensor, dtype=None, non_blocking: bool = False):
    """`type()`: the legacy type name (`tapegrad.FloatTensor`); `type(dtype)`: `to(dtype)`, where
    `dtype` may also be a legacy type (`tapegrad.LongTensor`) or its name (`"torch.LongTensor"`,
    `"torch.cuda.FloatTensor"`, which also moves the tensor to the GPU)."""
    if dtype is None:
        return _dtype.legacy_name(self.dtype)
    if isinstance(dtype, str):
        d, cuda = _dtype.from_legacy_name(dtype)
        return self.to(_device.device("cuda") if cuda else self.device, d)
    return self.to(_dtype.as_dtype(getattr(dtype, "dtype", dtype)))


@method("type_as")
def type_as(self: Tensor, other: Tensor) -> Tensor:
    return self.to(other.dtype)


@method("cpu")
def cpu(self: Tensor) -> Tensor:
    return self.to("cpu")


@method("cuda")
def cuda(self: Tensor, device=None) -> Tensor:
    return self.to(_device.device("cuda" if device is None else device))


@method("float")
def to_float(self: Tensor) -> Tensor:
    return self.to(_dtype.float32)


@method("double")
def to_double(self: Tensor) -> Tensor:
    return self.to(_dtype.float64)


@method("half")
def to_half(self: Tensor) -> Tensor:
    return self.to(_dtype.float16)


@method("bfloat16")
def to_bfloat16(self: Tensor) -> Tensor:
    return self.to(_dtype.bfloat16)


@method("long")
def to_long(self: Tensor) -> Tensor:
    return self.to(_dtype.int64)


@method("int")
def to_int(self: Tensor) -> Tensor:
    return self.to(_dtype.int32)


@method("bool")
def to_bool(self: Tensor) -> Tensor:
    return self.to(_dtype.bool)
