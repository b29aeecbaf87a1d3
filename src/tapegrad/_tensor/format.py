"""PyTorch-style `repr` of tensors: `tensor([1., 2.], requires_grad=True)`."""
from __future__ import annotations

import numpy as np

from .._core import dtype as _dtype


def _float_formatter(arr: np.ndarray):
    """PyTorch's choice: integral values as `1.`, else 4 decimals, scientific for wide ranges."""
    finite = np.abs(arr[np.isfinite(arr)])
    nonzero = finite[finite != 0]
    if finite.size and np.all(finite == np.round(finite)) and finite.max() < 1e8:
        fmt = "{:.0f}."
    elif nonzero.size and (nonzero.max() >= 1e8 or nonzero.min() < 1e-4
                           or nonzero.max() / nonzero.min() > 1e3 and nonzero.min() < 1e-2):
        fmt = "{:.4e}"
    else:
        fmt = "{:.4f}"

    def one(v) -> str:
        return fmt.format(v) if np.isfinite(v) else ("nan" if np.isnan(v) else ("inf" if v > 0 else "-inf"))
    width = max((len(one(v)) for v in arr.flat), default=0)
    return lambda v: one(v).rjust(width)


def _format_array(arr: np.ndarray, prefix: str) -> str:
    options = {"separator": ", ", "prefix": prefix, "threshold": 1000, "edgeitems": 3,
               "max_line_width": 80}
    if arr.dtype.kind in "fV" or str(arr.dtype) == "bfloat16":
        arr = arr.astype(np.float64)
        return np.array2string(arr, formatter={"float_kind": _float_formatter(arr)}, **options)
    if arr.dtype == np.bool_:
        return np.array2string(arr, formatter={"bool": lambda v: "True" if v else "False"}, **options)
    return np.array2string(arr, **options)


def tensor_repr(t) -> str:
    prefix = "tensor("
    arr = t._host()
    body = _format_array(arr, prefix)
    extras = []
    if arr.size == 0 and arr.ndim != 1:
        extras.append(f"size={tuple(arr.shape)}")
    default = {_dtype.get_default_dtype(), _dtype.int64, _dtype.bool}
    if t.dtype not in default:
        extras.append(f"dtype={t.dtype!r}")
    dev = t.device
    if dev.type != "cpu":
        extras.append(f"device='{dev}'")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return prefix + ", ".join([body] + extras) + ")"
