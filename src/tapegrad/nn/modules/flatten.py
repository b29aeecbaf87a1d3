"""`Flatten` and `Unflatten`."""
from __future__ import annotations

from typing import Sequence

from ..._core.dims import normalize_dim
from ..._tensor.tensor import Tensor
from .module import Module


class Flatten(Module):
    """Merge dimensions `start_dim..end_dim` into one (by default all but the batch dimension)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Tensor) -> Tensor:
        shape = tuple(input.shape)
        if not shape:
            return input.reshape(1)
        s, e = normalize_dim(self.start_dim, len(shape)), normalize_dim(self.end_dim, len(shape))
        if s > e:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        return input.reshape(shape[:s] + (-1,) + shape[e + 1:]) if input.numel() else \
            input.reshape(shape[:s] + (0,) + shape[e + 1:])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension `dim` into `unflattened_size`."""

    def __init__(self, dim: int, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        shape = tuple(input.shape)
        d = normalize_dim(self.dim, len(shape))
        return input.reshape(shape[:d] + self.unflattened_size + shape[d + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
