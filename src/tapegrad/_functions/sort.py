"""Sorting and selection: `sort`, `argsort`, `topk`, `unique`, `searchsorted`."""
from __future__ import annotations

import builtins

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._core import dtype as _dtype
from .._core.dims import normalize_dim, numpy_names, one_dim
from .._core.graph import Op
from .._tensor.apply import apply
from .._tensor.construct import tensor
from .._tensor.methods import method
from .._tensor.tensor import Tensor
from .reduce import return_types


def _sort(x, *, dim, descending):
    order = jnp.argsort(x, axis=dim, stable=True, descending=descending)
    return jnp.take_along_axis(x, order, axis=dim), order.astype(jnp.int64)


sort_op = Op("sort", _sort, n_out=2)


@method("sort")
@numpy_names
def sort(input: Tensor, dim: builtins.int = -1, descending: builtins.bool = False, *,
         stable: builtins.bool = False):
    """`(values, indices)` sorted along `dim`. Always stable (equal elements keep their order),
    which is one of the orders `stable=False` allows, so `stable` changes nothing."""
    d = one_dim(dim, input.ndim)  # checked for a 0-d tensor too
    if input.ndim == 0:
        return return_types.sort(input.clone(), input.new_zeros((), dtype=_dtype.int64))
    return return_types.sort(*apply(sort_op, input, dim=d, descending=descending))


argsort_op = Op("argsort", lambda x, *, dim, descending: jnp.argsort(
    x, axis=dim, stable=True, descending=descending).astype(jnp.int64), differentiable=False)


@method("argsort")
@numpy_names
def argsort(input: Tensor, dim: builtins.int = -1, descending: builtins.bool = False, *,
            stable: builtins.bool = False) -> Tensor:
    """The indices that sort `input` along `dim` (stable)."""
    d = one_dim(dim, input.ndim)  # checked for a 0-d tensor too
    if input.ndim == 0:
        return input.new_zeros((), dtype=_dtype.int64)
    return apply(argsort_op, input, dim=d, descending=descending)


@method("msort")
def msort(input: Tensor) -> Tensor:
    return sort(input, 0).values


def _topk(x, *, k, dim, largest):
    order = jnp.argsort(x, axis=dim, stable=True, descending=largest)
    idx = lax.slice_in_dim(order, 0, k, axis=dim)
    return jnp.take_along_axis(x, idx, axis=dim), idx.astype(jnp.int64)


topk_op = Op("topk", _topk, n_out=2)


@method("topk")
@numpy_names
def topk(input: Tensor, k: builtins.int, dim: builtins.int = -1, largest: builtins.bool = True,
         sorted: builtins.bool = True):  # noqa: A002
    """The `k` largest (or smallest) elements along `dim`, as `(values, indices)`, sorted."""
    size = input.shape[one_dim(dim, input.ndim)] if input.ndim else 1
    if not 0 <= k <= size:
        raise RuntimeError("selected index k out of range")
    if input.ndim == 0:
        return return_types.topk(input.clone(), input.new_zeros((), dtype=_dtype.int64))
    return return_types.topk(*apply(topk_op, input, k=builtins.int(k), dim=one_dim(dim, input.ndim),
                                    largest=largest))


@method("unique")
@numpy_names
def unique(input: Tensor, sorted: builtins.bool = True, return_inverse: builtins.bool = False,  # noqa: A002
           return_counts: builtins.bool = False, dim: builtins.int | None = None):
    """The distinct elements, sorted; each NaN is distinct, as in PyTorch (no gradient: the
    result's size depends on the values)."""
    arr = np.asarray(input._value())
    axis = None if dim is None else normalize_dim(dim, input.ndim)
    values, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True, axis=axis,
                                        equal_nan=False)  # each NaN apart, as PyTorch
    out = [tensor(values.astype(arr.dtype), dtype=input.dtype)]
    if return_inverse:
        shape = arr.shape if axis is None else (arr.shape[axis],)
        out.append(tensor(inverse.reshape(shape).astype(np.int64)))
    if return_counts:
        out.append(tensor(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else builtins.tuple(out)


@method("unique_consecutive")
@numpy_names
def unique_consecutive(input: Tensor, return_inverse: builtins.bool = False,
                       return_counts: builtins.bool = False, dim=None):
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


def _searchsorted(seq, values, *, right):
    side = "right" if right else "left"
    if seq.ndim == 1:
        return jnp.searchsorted(seq, values, side=side).astype(jnp.int64)
    lead = seq.shape[:-1]
    f = lambda s, v: jnp.searchsorted(s, v, side=side)  # noqa: E731
    out = jax.vmap(f)(seq.reshape(-1, seq.shape[-1]), values.reshape(-1, values.shape[-1]))
    return out.reshape(lead + values.shape[-1:]).astype(jnp.int64)


searchsorted_op = Op("searchsorted", _searchsorted, differentiable=False)


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
        input = tensor(input, dtype=sorted_sequence.dtype)
    if sorted_sequence.ndim > 1 and (input.ndim != sorted_sequence.ndim or
                                     input.shape[:-1] != sorted_sequence.shape[:-1]):
        raise RuntimeError(f"torch.searchsorted(): boundaries tensor should be 1 dimension or the "
                           f"first N-1 dimensions of boundaries tensor and input value tensor must "
                           f"match, but we got boundaries tensor {list(sorted_sequence.shape)} and "
                           f"input value tensor {list(input.shape)}")
    out = apply(searchsorted_op, sorted_sequence, input, right=builtins.bool(right))
    return out.to(_dtype.int32) if out_int32 else out


def bucketize(input, boundaries: Tensor, *, out_int32: builtins.bool = False,
              right: builtins.bool = False) -> Tensor:
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)
