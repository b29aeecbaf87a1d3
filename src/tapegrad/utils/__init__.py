"""`tapegrad.utils`: data loading (`tapegrad.utils.data`), safetensors files
(`tapegrad.utils.safetensors`)."""
from __future__ import annotations

from . import data, safetensors

__all__ = ["data", "safetensors"]
