"""`tapegrad.onnx`: present so that code importing `torch.onnx` runs; exporting is not supported.

tapegrad programs are JAX programs: to serve a model outside Python, export it with JAX's own
tools (`jax.export`) applied to `tapegrad.func.functional_call`.
"""
from __future__ import annotations

from typing import Any

__all__ = ["export", "is_in_onnx_export"]


def export(model: Any, args: tuple = (), f: Any = None, *pos, **kwargs) -> None:
    """Raises NotImplementedError: tapegrad has no ONNX exporter."""
    raise NotImplementedError(
        "tapegrad.onnx.export is not supported: tapegrad has no ONNX exporter. A tapegrad model "
        "is a JAX program: turn it into a pure function of its parameters with "
        "tapegrad.func.functional_call and export that with jax.export.")


def is_in_onnx_export() -> bool:
    """False: no ONNX export ever runs."""
    return False
