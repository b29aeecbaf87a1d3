"""`tapegrad.ops.aten`: tapegrad's ops under PyTorch's `torch.ops.aten` spelling.

`tapegrad.ops.aten.<name>` is an op packet and its `.default` is tapegrad's registry row of
that name: the object a selective checkpointing policy receives as `op`, so that a policy
written for PyTorch (`op in [torch.ops.aten.mm.default]`) reads the same here. tapegrad's rows
are coarser than ATen's overloads: `mm`, `matmul` and `@` are all the `matmul` row
(`ops.aten.mm.default is ops.aten.matmul.default`), `nn.Linear` is one `linear` row (ATen's
`addmm` over `t`), and every overload of an op is its one row. A name tapegrad has no row for
raises `AttributeError`.
"""
from __future__ import annotations

from ._core.graph import REGISTRY, Op

__all__ = ["aten", "OpOverloadPacket"]

_ALIASES = {"mm": "matmul"}  # ATen names whose op tapegrad records under another row


class OpOverloadPacket:
    """All overloads of one op: `.default` (and any other overload name) is its row."""

    def __init__(self, name: str, row: Op) -> None:
        self._name, self.default = name, row

    def __getattr__(self, overload: str) -> Op:
        if overload.startswith("_"):
            raise AttributeError(overload)
        return self.default  # tapegrad's row stands for every overload (`Tensor`, `Scalar`, ...)

    def __repr__(self) -> str:
        return f"tapegrad.ops.aten.{self._name}"


class _Aten:
    def __getattr__(self, name: str) -> OpOverloadPacket:
        row = REGISTRY.get(_ALIASES.get(name, name))
        if row is None or name.startswith("_"):
            raise AttributeError(f"'tapegrad.ops.aten' has no op '{name}': tapegrad's ops are the "
                                 "rows of its registry (mm and matmul are `matmul`, nn.Linear is "
                                 "`linear`); see docs/tools.md")
        return OpOverloadPacket(name, row)

    def __repr__(self) -> str:
        return "tapegrad.ops.aten"


aten = _Aten()
