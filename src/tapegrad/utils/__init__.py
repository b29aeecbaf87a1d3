"""`tapegrad.utils`: data loading (`tapegrad.utils.data`), safetensors files
(`tapegrad.utils.safetensors`), activation checkpointing (`tapegrad.utils.checkpoint`)."""
from __future__ import annotations

from . import checkpoint, data, safetensors

__all__ = ["checkpoint", "data", "safetensors"]
