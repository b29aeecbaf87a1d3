"""`Upsample`: `F.interpolate` as a layer."""
from __future__ import annotations

from ..._tensor.tensor import Tensor
from .. import functional as F
from .module import Module


class Upsample(Module):
    """Resize by `size` or `scale_factor` (`nearest`, `linear`, `bilinear`)."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: bool | None = None, recompute_scale_factor: bool | None = None) -> None:
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, (int, float)) else \
            (tuple(float(f) for f in scale_factor) if scale_factor else None)
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        info = f"size={self.size!r}" if self.scale_factor is None else \
            f"scale_factor={self.scale_factor!r}"
        return info + f", mode={self.mode!r}"
