"""PyTorch-style `repr` of tensors: `tensor([1., 2.], requires_grad=True)`."""
from __future__ import annotations

import numpy as np

from . import _dtype


def _format_array(arr: np.ndarray, prefix: str) -> str:
    if arr.dtype.kind == "f" or arr.dtype.kind == "V" or str(arr.dtype) == "bfloat16":
        arr = arr.astype(np.float64)
        finite = arr[np.isfinite(arr)]
        if finite.size and np.all(finite == np.round(finite)) and np.abs(finite).max() < 1e8:
            formatter = {"float_kind": lambda v: f"{v:.0f}." if np.isfinite(v) else str(v)}
        elif finite.size and (np.abs(finite).max() >= 1e8 or 0 < np.abs(finite[finite != 0]).min(initial=1) < 1e-4):
            formatter = {"float_kind": lambda v: f"{v:.4e}"}
        else:
            formatter = {"float_kind": lambda v: f"{v:.4f}"}
        return np.array2string(arr, separator=", ", prefix=prefix, formatter=formatter,
                               threshold=1000, edgeitems=3, max_line_width=80)
    if arr.dtype == np.bool_:
        return np.array2string(arr, separator=", ", prefix=prefix,
                               formatter={"bool": lambda v: "True" if v else "False"})
    return np.array2string(arr, separator=", ", prefix=prefix, threshold=1000, edgeitems=3,
                           max_line_width=80)


def tensor_repr(t) -> str:
    prefix = "tensor("
    arr = np.asarray(t._value())
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
