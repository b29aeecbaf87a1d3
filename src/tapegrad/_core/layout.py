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
