"""Memory layouts (`torch.layout`): tapegrad tensors are always dense, `strided`."""
from __future__ import annotations


class layout:  # noqa: N801 - PyTorch's name
    """A tensor's memory layout; `Tensor.layout` is always `tapegrad.strided`."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"tapegrad.{self.name}"

    def __reduce__(self):
        return (by_name, (self.name,))


strided = layout("strided")
sparse_coo = layout("sparse_coo")
sparse_csr = layout("sparse_csr")
_mkldnn = layout("_mkldnn")
ALL = {d.name: d for d in (strided, sparse_coo, sparse_csr, _mkldnn)}


def by_name(name: str) -> layout:
    """The layout called `name` (`"strided"`, or PyTorch's `"torch.strided"`)."""
    return ALL[name.removeprefix("torch.")]


class memory_format:  # noqa: N801 - PyTorch's name
    """A memory-format request (`channels_last`, ...), accepted wherever PyTorch takes one.
    tapegrad's arrays have no physical strides of their own (XLA chooses the layout), so every
    format gives the same values."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"tapegrad.{self.name}"

    def __reduce__(self):
        return (_memory_format_by_name, (self.name,))


preserve_format = memory_format("preserve_format")
contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
_MEMORY_FORMATS = {m.name: m for m in (preserve_format, contiguous_format, channels_last,
                                       channels_last_3d)}


def _memory_format_by_name(name: str) -> memory_format:
    return _MEMORY_FORMATS[name]
