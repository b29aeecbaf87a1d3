"""Reductions (`sum`-like, `max`/`min`, norms, scans): PyTorch's `dim`/`keepdim` conventions.

`dim` is an int, a tuple of ints or None (all dimensions). `max(dim)`-style functions return a
`(values, indices)` named tuple, as `torch.return_types`.
"""
from __future__ import annotations

import builtins
import collections

from . import _dtype, _ops
from ._functions import _dims
from ._record import apply
from ._tensor import Tensor, normalize_dim


def _return_type(name: str):
    cls = collections.namedtuple(name, ["values", "indices"])
    cls.__module__ = "tapegrad.return_types"
    return cls


class return_types:  # noqa: N801 - PyTorch's name
    """The named tuples returned by `max(dim)`, `sort`, `topk`, ..."""
    max = _return_type("max")
    min = _return_type("min")
    median = _return_type("median")
    kthvalue = _return_type("kthvalue")
    sort = _return_type("sort")
    topk = _return_type("topk")


def _int_to_long(input: Tensor, dtype):
    if dtype is not None:
        return _dtype.as_dtype(dtype).np
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        return _dtype.int64.np
    return input.dtype.np


def _float_only(name: str, input: Tensor) -> None:
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        raise RuntimeError(f"{name}(): input dtype should be either floating point or complex "
                           f"dtypes. Got {input.dtype.name.capitalize()} instead.")


def _one_dim(dim, ndim: int) -> builtins.int:
    return normalize_dim(dim, ndim) if ndim else 0


def prod(input: Tensor, dim: builtins.int | None = None, keepdim: builtins.bool = False, *,
         dtype=None) -> Tensor:
    """Product over all elements, or along one `dim`; integers multiply as int64."""
    dims = None if dim is None else (_one_dim(dim, input.ndim),) if input.ndim else None
    return apply(_ops.prod, input, dim=dims, keepdim=keepdim and dims is not None,
                 dtype=_int_to_long(input, dtype))


def _correction(unbiased, correction) -> builtins.int | builtins.float:
    if correction is not None:
        return correction
    return 1 if unbiased in (None, True) else 0


def _var_args(dim, unbiased, keepdim, correction, input):
    if isinstance(dim, builtins.bool):  # var(input, unbiased)
        dim, unbiased = None, dim
    return _dims(dim, input.ndim), _correction(unbiased, correction), keepdim


def var(input: Tensor, dim=None, unbiased: builtins.bool | None = None,
        keepdim: builtins.bool = False, *, correction=None) -> Tensor:
    """Variance over `dim`, with Bessel's correction unless `unbiased=False` / `correction=0`."""
    _float_only("std and var", input)
    dim, c, keepdim = _var_args(dim, unbiased, keepdim, correction, input)
    return apply(_ops.var, input, dim=dim, correction=c, keepdim=keepdim)


def std(input: Tensor, dim=None, unbiased: builtins.bool | None = None,
        keepdim: builtins.bool = False, *, correction=None) -> Tensor:
    """Standard deviation over `dim` (see `var` for the correction)."""
    _float_only("std and var", input)
    dim, c, keepdim = _var_args(dim, unbiased, keepdim, correction, input)
    return apply(_ops.std, input, dim=dim, correction=c, keepdim=keepdim)


def var_mean(input: Tensor, dim=None, unbiased=None, keepdim: builtins.bool = False, *,
             correction=None) -> tuple:
    from ._functions import mean
    return (var(input, dim, unbiased, keepdim, correction=correction),
            mean(input, _dims(dim, input.ndim) if not isinstance(dim, builtins.bool) else None,
                 keepdim))


def std_mean(input: Tensor, dim=None, unbiased=None, keepdim: builtins.bool = False, *,
             correction=None) -> tuple:
    from ._functions import mean
    return (std(input, dim, unbiased, keepdim, correction=correction),
            mean(input, _dims(dim, input.ndim) if not isinstance(dim, builtins.bool) else None,
                 keepdim))


def _nonempty(name: str, input: Tensor, dim=None) -> None:
    if input.numel() == 0 and dim is None:
        raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() "
                           f"== 0. Specify the reduction dim with the 'dim' argument.")


def _select(op, cls, input: Tensor, dim, keepdim: builtins.bool, **static):
    if input.ndim == 0:
        normalize_dim(dim, 0)
        return cls(input.clone(), _zeros_long(()))
    d = normalize_dim(dim, input.ndim)
    if input.shape[d] == 0:
        raise IndexError(f"{cls.__name__}(): Expected reduction dim {d} to have non-zero size.")
    values, indices = apply(op, input, dim=d, keepdim=keepdim, **static)
    return cls(values, indices)


def _zeros_long(shape):
    from ._factory import zeros
    return zeros(shape, dtype=_dtype.int64)


def max(input: Tensor, dim=None, keepdim: builtins.bool = False):  # noqa: A001
    """`max()`: the largest element (ties share the gradient); `max(dim)`: `(values, indices)`
    with the gradient sent to the returned index; `max(other)`: `maximum`."""
    if isinstance(dim, Tensor):
        from ._functions import maximum
        return maximum(input, dim)
    if dim is None:
        _nonempty("max", input)
        return apply(_ops.max_all, input)
    return _select(_ops.max_dim, return_types.max, input, dim, keepdim)


def min(input: Tensor, dim=None, keepdim: builtins.bool = False):  # noqa: A001
    """Like `max`, for the smallest elements."""
    if isinstance(dim, Tensor):
        from ._functions import minimum
        return minimum(input, dim)
    if dim is None:
        _nonempty("min", input)
        return apply(_ops.min_all, input)
    return _select(_ops.min_dim, return_types.min, input, dim, keepdim)


def _amdims(dim, ndim):
    return None if dim is None or dim == () or dim == [] else _dims(dim, ndim)


def amax(input: Tensor, dim=(), keepdim: builtins.bool = False) -> Tensor:
    """Largest values over `dim` (all by default); equal maxima share the gradient evenly."""
    return apply(_ops.amax, input, dim=_amdims(dim, input.ndim), keepdim=keepdim)


def amin(input: Tensor, dim=(), keepdim: builtins.bool = False) -> Tensor:
    """Smallest values over `dim` (all by default); equal minima share the gradient evenly."""
    return apply(_ops.amin, input, dim=_amdims(dim, input.ndim), keepdim=keepdim)


def aminmax(input: Tensor, *, dim=None, keepdim: builtins.bool = False):
    return amin(input, dim if dim is not None else (), keepdim), \
        amax(input, dim if dim is not None else (), keepdim)


def _arg(op, input: Tensor, dim, keepdim):
    if dim is None:
        _nonempty(op.name, input)
        out = apply(op, input.reshape(-1), dim=0, keepdim=False)
        return out.reshape([1] * input.ndim) if keepdim else out
    return apply(op, input, dim=_one_dim(dim, input.ndim), keepdim=keepdim and input.ndim > 0)


def argmax(input: Tensor, dim: builtins.int | None = None, keepdim: builtins.bool = False) -> Tensor:
    """Index of the (first) largest element, over the flattened tensor or along `dim`."""
    return _arg(_ops.argmax, input, dim, keepdim)


def argmin(input: Tensor, dim: builtins.int | None = None, keepdim: builtins.bool = False) -> Tensor:
    """Index of the (first) smallest element, over the flattened tensor or along `dim`."""
    return _arg(_ops.argmin, input, dim, keepdim)


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: builtins.bool = False, *,
                dtype=None) -> Tensor:
    """`linalg.vector_norm`: the `ord`-norm of the elements over `dim` (all by default)."""
    _float_only("linalg.vector_norm", x)
    ord = builtins.float(ord)  # noqa: A001
    target = _dtype.as_dtype(dtype).np if dtype is not None else x.dtype.np
    return apply(_ops.vector_norm, x, ord=ord, dim=_dims(dim, x.ndim), keepdim=keepdim,
                 dtype=target)


def norm(input: Tensor, p="fro", dim=None, keepdim: builtins.bool = False, dtype=None) -> Tensor:
    """`torch.norm`: the Frobenius / 2-norm by default, a vector `p`-norm, or `p="nuc"`."""
    if p == "nuc":
        from ._functions_linalg import matrix_norm
        return matrix_norm(input, "nuc", dim if dim is not None else (-2, -1), keepdim)
    if p == "fro" or p is None:
        p = 2
    return vector_norm(input, p, dim, keepdim, dtype=dtype)


def logsumexp(input: Tensor, dim, keepdim: builtins.bool = False) -> Tensor:
    """`log(sum(exp(input), dim))`, computed stably."""
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        input = input.to(_dtype.get_default_dtype())
    return apply(_ops.logsumexp, input, dim=_dims(dim, input.ndim), keepdim=keepdim)


def _scan(op, input: Tensor, dim, dtype):
    return apply(op, input, dim=_one_dim(dim, input.ndim), dtype=_int_to_long(input, dtype)) \
        if input.ndim else input.to(_dtype.as_dtype(_int_to_long(input, dtype)))


def cumsum(input: Tensor, dim: builtins.int, *, dtype=None) -> Tensor:
    """Running sums along `dim` (integers sum as int64)."""
    return _scan(_ops.cumsum, input, dim, dtype)


def cumprod(input: Tensor, dim: builtins.int, *, dtype=None) -> Tensor:
    """Running products along `dim` (integers multiply as int64)."""
    return _scan(_ops.cumprod, input, dim, dtype)


def all(input: Tensor, dim=None, keepdim: builtins.bool = False) -> Tensor:  # noqa: A001
    """True where every element (over `dim`) is nonzero."""
    return apply(_ops.all, input, dim=_dims(dim, input.ndim), keepdim=keepdim)


def any(input: Tensor, dim=None, keepdim: builtins.bool = False) -> Tensor:  # noqa: A001
    """True where some element (over `dim`) is nonzero."""
    return apply(_ops.any, input, dim=_dims(dim, input.ndim), keepdim=keepdim)


def count_nonzero(input: Tensor, dim=None) -> Tensor:
    """The number of nonzero elements over `dim` (int64)."""
    return apply(_ops.count_nonzero, input, dim=_dims(dim, input.ndim))


def median(input: Tensor, dim: builtins.int | None = None, keepdim: builtins.bool = False):
    """The lower median (not the mean of the middle two); with `dim`, `(values, indices)`."""
    if dim is None:
        _nonempty("median", input)
        flat = input.reshape(-1)
        k = (flat.shape[0] - 1) // 2 + 1
        return apply(_ops.kthvalue, flat, k=k, dim=0, keepdim=False)[0]
    if input.ndim == 0:
        return _select(_ops.kthvalue, return_types.median, input, dim, keepdim, k=1)
    k = (input.shape[normalize_dim(dim, input.ndim)] - 1) // 2 + 1
    return _select(_ops.kthvalue, return_types.median, input, dim, keepdim, k=k)


def kthvalue(input: Tensor, k: builtins.int, dim: builtins.int = -1,
             keepdim: builtins.bool = False):
    """The `k`-th smallest element along `dim` (1-based), as `(values, indices)`."""
    size = input.shape[normalize_dim(dim, input.ndim)] if input.ndim else 1
    if not 1 <= k <= size:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {dim}")
    if input.ndim == 0:
        return return_types.kthvalue(input.clone(), _zeros_long(()))
    return _select(_ops.kthvalue, return_types.kthvalue, input, dim, keepdim, k=k)


def nanmean(input: Tensor, dim=None, keepdim: builtins.bool = False) -> Tensor:
    from . import _functions as F
    from ._functions_math import isnan, where
    keep = apply(_ops.logical_not, isnan(input))
    total = F.sum(where(keep, input, 0.0), dim, keepdim)
    return F.div(total, F.sum(keep, dim, keepdim))


METHODS = {
    "prod": prod, "var": var, "std": std, "max": max, "min": min, "amax": amax, "amin": amin,
    "aminmax": aminmax, "argmax": argmax, "argmin": argmin, "norm": norm,
    "logsumexp": logsumexp, "cumsum": cumsum, "cumprod": cumprod, "all": all, "any": any,
    "count_nonzero": count_nonzero, "median": median, "kthvalue": kthvalue, "nanmean": nanmean,
}

INPLACE = {"cumsum_": cumsum, "cumprod_": cumprod}
