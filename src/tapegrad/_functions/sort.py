"""Sorting and selection: `sort`, `argsort`, `topk`, `unique`, `searchsorted`, and what is
found by sorting or counting: `quantile`, `mode`, `histc`, `isin`."""
from __future__ import annotations

import builtins

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._core import checks as _checks, dtype as _dtype
from .._core.dims import normalize_dim, numpy_names, one_dim
from .._core.graph import Op
from .._tensor.apply import apply
from .._tensor.checked import checked
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
    if dim is not None and input.ndim == 0:
        raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
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


# -- membership, histograms, quantiles, modes ------------------------------------------------------
isin_op = Op("isin", lambda e, t, *, dtype, invert: jnp.isin(
    jnp.asarray(e, dtype), jnp.asarray(t, dtype), invert=invert), promote="common",
    differentiable=False)


def isin(elements, test_elements, *, assume_unique: builtins.bool = False,
         invert: builtins.bool = False) -> Tensor:
    """True where an element of `elements` is among `test_elements` (compared in their promoted
    dtype); `invert` negates. `assume_unique` is a speed hint PyTorch takes: it changes nothing."""
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError("isin() received an invalid combination of arguments: at least one of "
                        "elements and test_elements must be a Tensor")
    for x in (elements, test_elements):  # XLA would compare them; PyTorch refuses
        if isinstance(x, Tensor) and x.dtype.is_complex or isinstance(x, builtins.complex):
            kind = x.dtype if isinstance(x, Tensor) else _dtype.complex128
            raise RuntimeError("Unsupported input type encountered for isin(): "
                               f"{_dtype.scalar_name(kind)}")
    return apply(isin_op, elements, test_elements, invert=builtins.bool(invert))


def _histc(x, *, bins, low, high):
    x = x.reshape(-1)
    if low == high:  # the range of the data, widened by 1 each side where it is one point
        low, high = jnp.min(x, initial=jnp.inf), jnp.max(x, initial=-jnp.inf)
        if x.size == 0:
            low, high = jnp.zeros((), x.dtype), jnp.zeros((), x.dtype)
        same = low == high
        low, high = jnp.where(same, low - 1, low), jnp.where(same, high + 1, high)
    low, high = jnp.asarray(low, x.dtype), jnp.asarray(high, x.dtype)
    inside = (x >= low) & (x <= high)
    pos = jnp.floor((x - low) * bins / (high - low))
    pos = jnp.clip(jnp.where(inside, pos, 0), 0, bins - 1).astype(jnp.int32)  # max: the last bin
    return jnp.zeros(bins, x.dtype).at[pos].add(inside.astype(x.dtype))


histc_op = Op("histc", _histc, differentiable=False)


@method("histc")
def histc(input: Tensor, bins: builtins.int = 100, min: builtins.float = 0,  # noqa: A002
          max: builtins.float = 0) -> Tensor:  # noqa: A002
    """Counts in `bins` equal bins over `[min, max]` (elements outside are left out; `max`
    falls in the last bin); `min == max` takes the range of the data."""
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"\"histogram_cpu\" not implemented for "
                                  f"'{_dtype.scalar_name(input.dtype)}'")
    if bins <= 0:
        raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {bins} for dimension 0")
    if min > max:
        raise RuntimeError("torch.histc: max must be larger than min")
    if not (np.isfinite(min) and np.isfinite(max)):
        raise RuntimeError(f"torch.histc: range of [{min}, {max}] is not finite")
    if min == max:
        input = checked(input, "histc", _checks.not_finite, (), RuntimeError,
                        "torch.histc: range of [min, max] is not finite (the data holds "
                        "{value})")
    return apply(histc_op, input, bins=builtins.int(bins), low=builtins.float(min),
                 high=builtins.float(max))


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(x, q, *, dim, keepdim, interpolation, ignore_nan):
    """PyTorch's algorithm: sort (NaN last), a rank per `q`, then the sorted values at the rank's
    neighbours, interpolated; so the gradient reaches the one or two sorted elements used."""
    ndim, scalar = x.ndim, q.ndim == 0
    x = x.reshape(-1) if dim is None else jnp.moveaxis(x, dim, -1)
    s = jnp.sort(x, axis=-1, stable=True)
    n, q = s.shape[-1], jnp.atleast_1d(q)
    nan = jnp.isnan(s)
    if ignore_nan:
        ranks = q * (jnp.sum(~nan, axis=-1, keepdims=True) - 1).astype(s.dtype)
        ranks = jnp.where(ranks < 0, 0, ranks)  # all NaN: the first, NaN
    else:
        ranks = jnp.where(jnp.any(nan, axis=-1, keepdims=True), n - 1,
                          jnp.broadcast_to(q * (n - 1), s.shape[:-1] + q.shape))
    ranks = {"lower": jnp.floor, "higher": jnp.ceil, "nearest": jnp.round}.get(
        interpolation, lambda r: r)(ranks).astype(s.dtype)
    below = ranks.astype(jnp.int32)
    out = jnp.take_along_axis(s, below, axis=-1)
    if interpolation in ("linear", "midpoint"):
        above = jnp.take_along_axis(s, jnp.ceil(ranks).astype(jnp.int32), axis=-1)
        w = jnp.full_like(ranks, 0.5) if interpolation == "midpoint" else ranks - below
        # PyTorch's lerp: from the nearer end
        out = jnp.where(w < 0.5, out + w * (above - out), above - (above - out) * (1 - w))
    out = jnp.moveaxis(out, -1, 0)
    if keepdim:
        out = (out.reshape(out.shape[:1] + (1,) * ndim) if dim is None else
               jnp.expand_dims(out, 1 + dim))
    return out[0] if scalar else out


quantile_op = Op("quantile", _quantile, saves=(0,))


def _quantile_call(name: str, input: Tensor, q, dim, keepdim, interpolation, ignore_nan):
    if not input.dtype.is_floating_point or input.dtype.itemsize < 4:
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    if input.numel() == 0:
        raise RuntimeError(f"{name}() input tensor must be non-empty")
    if interpolation not in _INTERPOLATIONS:
        raise RuntimeError(f"{name}() interpolation must be one of linear, lower, higher, "
                           f"midpoint or nearest, but got {interpolation}")
    if isinstance(q, Tensor):
        if q.ndim > 1:
            raise RuntimeError(f"{name}() q must be a scalar or 1D tensor")
        if q.dtype is not input.dtype:
            raise RuntimeError(f"{name}() q tensor must be same dtype as the input tensor")
        q = checked(q, name, _checks.not_between, (0.0, 1.0), RuntimeError,
                    f"{name}() q values must be in the range [0, 1]")
    else:
        if not 0 <= q <= 1:
            raise RuntimeError(f"{name}() q must be in the range [0, 1] but got {q}")
        q = tensor(q, dtype=input.dtype)
    if dim is not None:
        dim = normalize_dim(dim, input.ndim)
    if input.ndim == 0:
        input = input.reshape(1)
    return apply(quantile_op, input, q, dim=dim, keepdim=builtins.bool(keepdim),
                 interpolation=interpolation, ignore_nan=ignore_nan)


@method("quantile")
def quantile(input: Tensor, q, dim: builtins.int | None = None, keepdim: builtins.bool = False,
             *, interpolation: str = "linear") -> Tensor:
    """The `q`-th quantiles (a number or a 1-D tensor in [0, 1]) over `dim` (None: all
    elements); a slice holding NaN gives NaN. The quantiles' dimension comes first."""
    return _quantile_call("quantile", input, q, dim, keepdim, interpolation, False)


@method("nanquantile")
def nanquantile(input: Tensor, q, dim: builtins.int | None = None,
                keepdim: builtins.bool = False, *, interpolation: str = "linear") -> Tensor:
    """`quantile` of the elements that are not NaN (NaN where a slice holds only NaN)."""
    return _quantile_call("nanquantile", input, q, dim, keepdim, interpolation, True)


def _mode(x, *, dim, keepdim):
    """PyTorch's mode: the smallest of the most frequent values, at its last position. NaN
    equals nothing here, so counts nothing (PyTorch's answer with NaN depends on how its sort
    places them)."""
    x = jnp.moveaxis(x, dim, -1)
    k = x.astype(jnp.int8) if x.dtype == jnp.bool_ else x
    counts = jnp.sum(k[..., :, None] == k[..., None, :], axis=-1)
    best = counts == jnp.max(counts, axis=-1, keepdims=True)
    big = jnp.inf if jnp.issubdtype(k.dtype, jnp.inexact) else jnp.iinfo(k.dtype).max
    value = jnp.min(jnp.where(best, k, big), axis=-1, keepdims=True)
    same = (k == value) | (jnp.isnan(value) & jnp.isnan(k))
    idx = jnp.max(jnp.where(same, jnp.arange(k.shape[-1]), 0), axis=-1, keepdims=True)
    values = jnp.take_along_axis(x, idx, axis=-1)
    values, idx = jnp.moveaxis(values, -1, dim), jnp.moveaxis(idx, -1, dim)
    if not keepdim:
        values, idx = jnp.squeeze(values, dim), jnp.squeeze(idx, dim)
    return values, idx.astype(jnp.int64)


mode_op = Op("mode", _mode, n_out=2)


@method("mode")
def mode(input: Tensor, dim: builtins.int = -1, keepdim: builtins.bool = False):
    """`(values, indices)`: the most frequent value along `dim` (the smallest among equally
    frequent ones) and the last index where it occurs; the gradient goes to that index."""
    d = normalize_dim(dim, input.ndim)
    if input.ndim == 0:
        return return_types.mode(input.clone(), input.new_zeros((), dtype=_dtype.int64))
    if input.shape[d] == 0:
        raise IndexError(f"mode(): Expected reduction dim {d} to have non-zero size.")
    return return_types.mode(*apply(mode_op, input, dim=d, keepdim=builtins.bool(keepdim)))
