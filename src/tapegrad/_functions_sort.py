"""Sorting and selection: `sort`, `argsort`, `topk`, `unique`, `searchsorted`."""
from __future__ import annotations

import builtins

import numpy as np

from . import _dtype, _ops
from ._functions_reduce import return_types
from ._record import apply
from ._tensor import Tensor, normalize_dim


def _dim(input: Tensor, dim) -> builtins.int:
    return normalize_dim(dim, input.ndim) if input.ndim else 0


def sort(input: Tensor, dim: builtins.int = -1, descending: builtins.bool = False, *,
         stable: builtins.bool = False):
    """`(values, indices)` sorted along `dim`; always stable (equal elements keep their order)."""
    if input.ndim == 0:
        return return_types.sort(input.clone(), input.new_zeros((), dtype=_dtype.int64))
    return return_types.sort(*apply(_ops.sort, input, dim=_dim(input, dim), descending=descending,
                                    stable=True))


def argsort(input: Tensor, dim: builtins.int = -1, descending: builtins.bool = False, *,
            stable: builtins.bool = False) -> Tensor:
    """The indices that sort `input` along `dim` (stable)."""
    if input.ndim == 0:
        return input.new_zeros((), dtype=_dtype.int64)
    return apply(_ops.argsort, input, dim=_dim(input, dim), descending=descending)


def msort(input: Tensor) -> Tensor:
    return sort(input, 0).values


def topk(input: Tensor, k: builtins.int, dim: builtins.int = -1, largest: builtins.bool = True,
         sorted: builtins.bool = True):  # noqa: A002
    """The `k` largest (or smallest) elements along `dim`, as `(values, indices)`, sorted."""
    size = input.shape[_dim(input, dim)] if input.ndim else 1
    if not 0 <= k <= size:
        raise RuntimeError("selected index k out of range")
    if input.ndim == 0:
        return return_types.topk(input.clone(), input.new_zeros((), dtype=_dtype.int64))
    return return_types.topk(*apply(_ops.topk, input, k=builtins.int(k), dim=_dim(input, dim),
                                    largest=largest))


def unique(input: Tensor, sorted: builtins.bool = True, return_inverse: builtins.bool = False,  # noqa: A002
           return_counts: builtins.bool = False, dim: builtins.int | None = None):
    """The distinct elements, sorted (no gradient: the result's size depends on the values)."""
    from ._factory import tensor
    arr = np.asarray(input._value())
    axis = None if dim is None else normalize_dim(dim, input.ndim)
    values, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True, axis=axis)
    out = [tensor(values.astype(arr.dtype), dtype=input.dtype)]
    if return_inverse:
        shape = arr.shape if axis is None else (arr.shape[axis],)
        out.append(tensor(inverse.reshape(shape).astype(np.int64)))
    if return_counts:
        out.append(tensor(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else builtins.tuple(out)


def unique_consecutive(input: Tensor, return_inverse: builtins.bool = False,
                       return_counts: builtins.bool = False, dim=None):
    from ._factory import tensor
    if dim is not None:
        raise NotImplementedError("unique_consecutive(dim=...) is not supported")
    arr = np.asarray(input._value()).reshape(-1)
    start = np.concatenate([[True], arr[1:] != arr[:-1]]) if arr.size else np.zeros(0, bool)
    out = [tensor(arr[start], dtype=input.dtype)]
    if return_inverse:
        out.append(tensor((np.cumsum(start) - 1).reshape(input.shape).astype(np.int64)))
    if return_counts:
        out.append(tensor(np.diff(np.append(np.flatnonzero(start), arr.size)).astype(np.int64)))
    return out[0] if len(out) == 1 else builtins.tuple(out)


def searchsorted(sorted_sequence: Tensor, input, *, out_int32: builtins.bool = False,
                 right: builtins.bool = False, side: str | None = None, sorter=None) -> Tensor:
    """Where each `input` value would be inserted into the (innermost-dim sorted) sequence."""
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but "
                               f"got {side}")
        if right and side == "left":
            raise RuntimeError("torch.searchsorted(): side and right can't be set to opposites, "
                               "got side of left while right was True")
        right = side == "right"
    if sorter is not None:
        sorted_sequence = sorted_sequence.gather(-1, sorter)
    scalar = not isinstance(input, Tensor)
    if scalar:
        from ._factory import tensor
        input = tensor(input, dtype=sorted_sequence.dtype)
    if sorted_sequence.ndim > 1 and (input.ndim != sorted_sequence.ndim or
                                     input.shape[:-1] != sorted_sequence.shape[:-1]):
        raise RuntimeError(f"torch.searchsorted(): boundaries tensor should be 1 dimension or the "
                           f"first N-1 dimensions of boundaries tensor and input value tensor must "
                           f"match, but we got boundaries tensor {list(sorted_sequence.shape)} and "
                           f"input value tensor {list(input.shape)}")
    out = apply(_ops.searchsorted, sorted_sequence, input, right=builtins.bool(right))
    return out.to(_dtype.int32) if out_int32 else out


def bucketize(input, boundaries: Tensor, *, out_int32: builtins.bool = False,
              right: builtins.bool = False) -> Tensor:
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


METHODS = {"sort": sort, "argsort": argsort, "msort": msort, "topk": topk, "unique": unique,
           "unique_consecutive": unique_consecutive}

INPLACE: dict = {}
