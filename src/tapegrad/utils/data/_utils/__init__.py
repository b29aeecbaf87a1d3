"""Helpers behind `DataLoader` (PyTorch's `torch.utils.data._utils` layout)."""
from __future__ import annotations

from . import collate

__all__ = ["collate"]
