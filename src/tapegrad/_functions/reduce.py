"""Reductions (`sum`-like, `max`/`min`, norms, scans): PyTorch's `dim`/`keepdim` conventions.

`dim` is an int, a tuple of ints or None (all dimensions). `max(dim)`-style functions return a
`(values, indices)` named tuple, as `torch.return_types`.
"""
from __future__ import annotations

import builtins
import collections
import functools
import math
import numbers

import jax
import jax.numpy as jnp
from jax import lax

from .._core import dtype as _dtype
from .._core.dims import normalize_dim, numpy_names, reduce_dims
from .._core.graph import Op, SAVES_NONE
from .._core.rows import abs_
from .._tensor.apply import apply
from .._tensor.methods import method
from .._tensor.tensor import Tensor
from .creation import full, zeros
from .pointwise import div, isnan, logical_not_op, logical_xor_op, maximum, minimum, where
from .shape import cat


def _dim_grad_name(base: str):
    """PyTorch's overloads: `Backward0` for the full reduction, `Backward1` for `dim=`."""
    return lambda static, inputs: base + ("Backward0" if static["dim"] is None else "Backward1")


sum_op = Op("sum", lambda x, *, dim, keepdim, dtype=None: jnp.sum(x, axis=dim, keepdims=keepdim,
                                                           dtype=dtype), saves=SAVES_NONE,
            grad_name=_dim_grad_name("Sum"))


@method("sum")
@numpy_names
def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A001
    """Sum over `dim` (an int, a tuple, or None for all); integers and bools sum as int64."""
    if dtype is None and not (input.dtype.is_floating_point or input.dtype.is_complex):
        dtype = _dtype.int64
    return apply(sum_op, input, dim=reduce_dims(dim, input.ndim), keepdim=keepdim,
                 dtype=None if dtype is None else _dtype.as_dtype(dtype).np)


mean_op = Op("mean", lambda x, *, dim, keepdim: jnp.mean(x, axis=dim, keepdims=keepdim),
             saves=SAVES_NONE, grad_name=_dim_grad_name("Mean"))


@method("mean")
@numpy_names
def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean over `dim`; floating point and complex only, as in PyTorch."""
    if dtype is not None:
        input = input.to(_dtype.as_dtype(dtype))
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a "
                           f"floating point or complex dtype. Got: {input.dtype.name}")
    return apply(mean_op, input, dim=reduce_dims(dim, input.ndim), keepdim=keepdim)


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
    cummax = _return_type("cummax")
    cummin = _return_type("cummin")
    mode = _return_type("mode")
    nanmedian = _return_type("nanmedian")
    aminmax = collections.namedtuple("aminmax", ["min", "max"])
    aminmax.__module__ = "tapegrad.return_types"


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


def one_dim(dim, ndim: int) -> builtins.int:
    return normalize_dim(dim, ndim)  # a 0-d tensor takes 0 and -1 (others raise, as PyTorch)


prod_op = Op("prod", lambda x, *, dim, keepdim, dtype: jnp.prod(x.astype(dtype), axis=dim,
                                                             keepdims=keepdim),
             grad_name=_dim_grad_name("Prod"))


@method("prod")
@numpy_names
def prod(input: Tensor, dim: builtins.int | None = None, keepdim: builtins.bool = False, *,
         dtype=None) -> Tensor:
    """Product over all elements, or along one `dim`; integers multiply as int64."""
    dims = None if dim is None else (one_dim(dim, input.ndim),)
    if not input.ndim:
        dims = None  # a 0-d tensor's own dim (0 or -1, checked above) is all of it
    return apply(prod_op, input, dim=dims, keepdim=keepdim and dims is not None,
                 dtype=_int_to_long(input, dtype))


def _correction(unbiased, correction) -> builtins.int | builtins.float:
    if correction is not None:
        return correction
    return 1 if unbiased in (None, True) else 0


def _var_args(dim, unbiased, keepdim, correction, input):
    if isinstance(dim, builtins.bool):  # var(input, unbiased)
        dim, unbiased = None, dim
    return reduce_dims(dim, input.ndim), _correction(unbiased, correction), keepdim


var_op = Op("var", lambda x, *, dim, correction, keepdim: jnp.var(
    x, axis=dim, ddof=correction, keepdims=keepdim))


@method("var")
@numpy_names
def var(input: Tensor, dim=None, unbiased: builtins.bool | None = None,
        keepdim: builtins.bool = False, *, correction=None) -> Tensor:
    """Variance over `dim`, with Bessel's correction unless `unbiased=False` / `correction=0`."""
    _float_only("std and var", input)
    dim, c, keepdim = _var_args(dim, unbiased, keepdim, correction, input)
    return apply(var_op, input, dim=dim, correction=c, keepdim=keepdim)


# sqrt with derivative 0 where the variance is 0 (all elements equal), as PyTorch's std backward
std_op = Op("std", lambda x, *, dim, correction, keepdim: _safe_norm(jnp.var(
    x, axis=dim, ddof=correction, keepdims=keepdim)), saves=("all"))


@method("std")
@numpy_names
def std(input: Tensor, dim=None, unbiased: builtins.bool | None = None,
        keepdim: builtins.bool = False, *, correction=None) -> Tensor:
    """Standard deviation over `dim` (see `var` for the correction)."""
    _float_only("std and var", input)
    dim, c, keepdim = _var_args(dim, unbiased, keepdim, correction, input)
    return apply(std_op, input, dim=dim, correction=c, keepdim=keepdim)


@numpy_names
def var_mean(input: Tensor, dim=None, unbiased=None, keepdim: builtins.bool = False, *,
             correction=None) -> tuple:
    return (var(input, dim, unbiased, keepdim, correction=correction),
            mean(input, reduce_dims(dim, input.ndim) if not isinstance(dim, builtins.bool) else None,
                 keepdim))


@numpy_names
def std_mean(input: Tensor, dim=None, unbiased=None, keepdim: builtins.bool = False, *,
             correction=None) -> tuple:
    return (std(input, dim, unbiased, keepdim, correction=correction),
            mean(input, reduce_dims(dim, input.ndim) if not isinstance(dim, builtins.bool) else None,
                 keepdim))


def _nonempty(name: str, input: Tensor, dim=None, error: type = RuntimeError) -> None:
    if input.numel() == 0 and dim is None:
        raise error(f"{name}(): Expected reduction dim to be specified for input.numel() "
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
    return zeros(shape, dtype=_dtype.int64)


max_all_op = Op("max", jnp.max, grad_name="MaxBackward1")  # max() of every element


def _reduce_dim_select(x, *, dim, keepdim, which):
    """(values, indices) of max/min/median/kthvalue along `dim`; the gradient goes to the index."""
    if which == "max":
        idx = jnp.argmax(x, axis=dim, keepdims=True)
    elif which == "min":
        idx = jnp.argmin(x, axis=dim, keepdims=True)
    else:  # ("kth", k): the k-th smallest (1-based); NaNs sort last as in PyTorch
        order = jnp.argsort(x, axis=dim, stable=True)
        idx = lax.slice_in_dim(order, which[1] - 1, which[1], axis=dim)
        if which[0] == "median":  # the median of a slice holding NaN is its first NaN
            nan = jnp.isnan(x)
            idx = jnp.where(jnp.any(nan, axis=dim, keepdims=True),
                            jnp.argmax(nan, axis=dim, keepdims=True), idx)
    values = jnp.take_along_axis(x, idx, axis=dim)
    if not keepdim:
        values, idx = jnp.squeeze(values, dim), jnp.squeeze(idx, dim)
    return values, idx.astype(jnp.int64)


max_dim_op = Op("max_dim", functools.partial(_reduce_dim_select, which="max"), n_out=2,
                grad_name="MaxBackward0")


@method("max")
@numpy_names
def max(input: Tensor, dim=None, keepdim: builtins.bool = False):  # noqa: A001
    """`max()`: the largest element (ties share the gradient); `max(dim)`: `(values, indices)`
    with the gradient sent to the returned index; `max(other)`: `maximum`."""
    if isinstance(dim, Tensor):
        return maximum(input, dim)
    if dim is None:
        _nonempty("max", input)
        return apply(max_all_op, input)
    if input.ndim:
        _nonempty_dims("max", input, normalize_dim(dim, input.ndim))
    return _select(max_dim_op, return_types.max, input, dim, keepdim)


min_all_op = Op("min", jnp.min, grad_name="MinBackward1")
min_dim_op = Op("min_dim", functools.partial(_reduce_dim_select, which="min"), n_out=2,
                grad_name="MinBackward0")


@method("min")
@numpy_names
def min(input: Tensor, dim=None, keepdim: builtins.bool = False):  # noqa: A001
    """Like `max`, for the smallest elements."""
    if isinstance(dim, Tensor):
        return minimum(input, dim)
    if dim is None:
        _nonempty("min", input)
        return apply(min_all_op, input)
    if input.ndim:
        _nonempty_dims("min", input, normalize_dim(dim, input.ndim))
    return _select(min_dim_op, return_types.min, input, dim, keepdim)


def _amdims(dim, ndim):
    return None if dim is None or dim == () or dim == [] else reduce_dims(dim, ndim)


# jnp.max/min share the gradient evenly among equal extremes, as PyTorch's amax/amin and max().
amax_op = Op("amax", lambda x, *, dim, keepdim: jnp.max(x, axis=dim, keepdims=keepdim))


@method("amax")
@numpy_names
def amax(input: Tensor, dim=(), keepdim: builtins.bool = False) -> Tensor:
    """Largest values over `dim` (all by default); equal maxima share the gradient evenly."""
    dims = _amdims(dim, input.ndim)
    if dims is not None:
        _nonempty_dims("amax", input, dims)
    return apply(amax_op, input, dim=dims, keepdim=keepdim)


amin_op = Op("amin", lambda x, *, dim, keepdim: jnp.min(x, axis=dim, keepdims=keepdim))


@method("amin")
@numpy_names
def amin(input: Tensor, dim=(), keepdim: builtins.bool = False) -> Tensor:
    """Smallest values over `dim` (all by default); equal minima share the gradient evenly."""
    dims = _amdims(dim, input.ndim)
    if dims is not None:
        _nonempty_dims("amin", input, dims)
    return apply(amin_op, input, dim=dims, keepdim=keepdim)


@method("aminmax")
@numpy_names
def aminmax(input: Tensor, *, dim=None, keepdim: builtins.bool = False):
    """`(min, max)` over `dim` (all by default), a named tuple as PyTorch's."""
    return return_types.aminmax(amin(input, dim if dim is not None else (), keepdim),
                                amax(input, dim if dim is not None else (), keepdim))


def _arg(op, input: Tensor, dim, keepdim):
    if dim is None:
        _nonempty(op.name, input, error=IndexError)  # PyTorch's type for argmax/argmin
        out = apply(op, input.reshape(-1), dim=0, keepdim=False)
        return out.reshape([1] * input.ndim) if keepdim else out
    d = one_dim(dim, input.ndim)
    _nonempty_dims(op.name, input, d)
    if input.ndim == 0:  # dim 0 or -1 of a 0-d tensor: its only element
        return apply(op, input.reshape(1), dim=0, keepdim=False)
    return apply(op, input, dim=d, keepdim=keepdim)


def _nonempty_dims(name: str, input: Tensor, dims) -> None:
    """PyTorch's refusal to take an extreme over an empty dimension (XLA would fail, or give
    -inf)."""
    for d in ((dims,) if isinstance(dims, builtins.int) else dims or range(input.ndim)):
        if input.ndim and input.shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")


argmax_op = Op("argmax", lambda x, *, dim, keepdim: jnp.argmax(
    x, axis=dim, keepdims=keepdim).astype(jnp.int64), differentiable=False)


@method("argmax")
@numpy_names
def argmax(input: Tensor, dim: builtins.int | None = None, keepdim: builtins.bool = False) -> Tensor:
    """Index of the (first) largest element, over the flattened tensor or along `dim`."""
    return _arg(argmax_op, input, dim, keepdim)


argmin_op = Op("argmin", lambda x, *, dim, keepdim: jnp.argmin(
    x, axis=dim, keepdims=keepdim).astype(jnp.int64), differentiable=False)


@method("argmin")
@numpy_names
def argmin(input: Tensor, dim: builtins.int | None = None, keepdim: builtins.bool = False) -> Tensor:
    """Index of the (first) smallest element, over the flattened tensor or along `dim`."""
    return _arg(argmin_op, input, dim, keepdim)


def _safe_norm(sq):
    """sqrt with derivative 0 (not inf) where `sq` is 0: PyTorch's norm backward masks zero norms."""
    zero = sq == 0
    return jnp.where(zero, jnp.zeros_like(sq), jnp.sqrt(jnp.where(zero, jnp.ones_like(sq), sq)))


def _vector_norm(x, *, ord, dim, keepdim, dtype):  # noqa: A002
    x = x.astype(dtype)
    a = abs_(x)
    if ord == 2:
        return _safe_norm(jnp.sum(x * x, axis=dim, keepdims=keepdim))
    if ord == float("inf"):
        return jnp.max(a, axis=dim, keepdims=keepdim)  # ties share the gradient, as PyTorch
    if ord == -float("inf"):
        return jnp.min(a, axis=dim, keepdims=keepdim)
    if ord == 0:
        return jnp.sum((x != 0).astype(dtype), axis=dim, keepdims=keepdim)
    if ord == 1:
        return jnp.sum(a, axis=dim, keepdims=keepdim)
    s = jnp.sum(jnp.where(a == 0, jnp.zeros_like(a), jnp.where(a == 0, 1, a) ** ord),
                axis=dim, keepdims=keepdim)
    zero = s == 0
    return jnp.where(zero, jnp.zeros_like(s), jnp.where(zero, 1, s) ** (1.0 / ord))


vector_norm_op = Op("vector_norm", _vector_norm, grad_name="LinalgVectorNormBackward0")


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: builtins.bool = False, *,
                dtype=None) -> Tensor:
    """`linalg.vector_norm`: the `ord`-norm of the elements over `dim` (all by default)."""
    _float_only("linalg.vector_norm", x)
    if not isinstance(ord, numbers.Real):  # "fro"/"nuc" are matrix norms: linalg.matrix_norm
        raise TypeError("linalg_vector_norm(): argument 'ord' must be Number, not "
                        f"{builtins.type(ord).__name__}")
    ord = builtins.float(ord)  # noqa: A001
    target = _dtype.as_dtype(dtype).np if dtype is not None else x.dtype.np
    return apply(vector_norm_op, x, ord=ord, dim=reduce_dims(dim, x.ndim), keepdim=keepdim,
                 dtype=target)


logsumexp_op = Op("logsumexp", lambda x, *, dim, keepdim: jax.nn.logsumexp(x, axis=dim,
                                                                        keepdims=keepdim))


@method("logsumexp")
@numpy_names
def logsumexp(input: Tensor, dim, keepdim: builtins.bool = False) -> Tensor:
    """`log(sum(exp(input), dim))`, computed stably."""
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        input = input.to(_dtype.get_default_dtype())
    return apply(logsumexp_op, input, dim=reduce_dims(dim, input.ndim), keepdim=keepdim)


def _scan(op, input: Tensor, dim, dtype):
    d = one_dim(dim, input.ndim)  # checked for a 0-d tensor too
    return apply(op, input, dim=d, dtype=_int_to_long(input, dtype)) \
        if input.ndim else input.to(_dtype.as_dtype(_int_to_long(input, dtype)))


cumsum_op = Op("cumsum", lambda x, *, dim, dtype: jnp.cumsum(x.astype(dtype), axis=dim),
               saves=SAVES_NONE)


@method("cumsum", inplace=("cumsum_",))
@numpy_names
def cumsum(input: Tensor, dim: builtins.int, *, dtype=None) -> Tensor:
    """Running sums along `dim` (integers sum as int64)."""
    return _scan(cumsum_op, input, dim, dtype)


cumprod_op = Op("cumprod", lambda x, *, dim, dtype: jnp.cumprod(x.astype(dtype), axis=dim))


@method("cumprod", inplace=("cumprod_",))
@numpy_names
def cumprod(input: Tensor, dim: builtins.int, *, dtype=None) -> Tensor:
    """Running products along `dim` (integers multiply as int64)."""
    return _scan(cumprod_op, input, dim, dtype)


def _cumulative_select(x, *, dim, which):
    """(values, indices) of the running max/min along `dim`: a later equal element takes over
    and a NaN sticks, as PyTorch; the gradient goes to the selected element."""
    better = jnp.greater_equal if which == "max" else jnp.less_equal
    probe = lax.stop_gradient(x)

    def combine(a, b):
        (va, ia), (vb, ib) = a, b
        take = jnp.isnan(vb) | (~jnp.isnan(va) & better(vb, va))
        return jnp.where(take, vb, va), jnp.where(take, ib, ia)

    iota = lax.broadcasted_iota(jnp.int64, x.shape, dim)
    _, idx = lax.associative_scan(combine, (probe, iota), axis=dim)
    return jnp.take_along_axis(x, idx, axis=dim), idx


cummax_op = Op("cummax", functools.partial(_cumulative_select, which="max"), n_out=2,
               saves=(0,))
cummin_op = Op("cummin", functools.partial(_cumulative_select, which="min"), n_out=2,
               saves=(0,))


def _cumulative(op, cls, input: Tensor, dim):
    if input.ndim == 0:
        if dim not in (0, -1):
            raise IndexError(f"{op.name}(): Expected reduction dim -1 or 0 for scalar but got "
                             f"{dim}")
        return cls(input.clone(), _zeros_long(()))
    values, indices = apply(op, input, dim=normalize_dim(dim, input.ndim))
    return cls(values, indices)


@method("cummax")
@numpy_names
def cummax(input: Tensor, dim: builtins.int):
    """Running maxima along `dim` and the index of each (the latest among equal values)."""
    return _cumulative(cummax_op, return_types.cummax, input, dim)


@method("cummin")
@numpy_names
def cummin(input: Tensor, dim: builtins.int):
    """Running minima along `dim` and the index of each (the latest among equal values)."""
    return _cumulative(cummin_op, return_types.cummin, input, dim)


logcumsumexp_op = Op("logcumsumexp", lambda x, *, dim: lax.cumlogsumexp(x, axis=dim))


@method("logcumsumexp")
@numpy_names
def logcumsumexp(input: Tensor, dim: builtins.int) -> Tensor:
    """`log(cumsum(exp(input), dim))`, computed stably; floating point only, as PyTorch."""
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        raise NotImplementedError(f'"logcumsumexp_out_cpu" not implemented for '
                                  f"'{_dtype.scalar_name(input.dtype)}'")
    if input.ndim == 0:
        normalize_dim(dim, 0)
        return input.clone()
    return apply(logcumsumexp_op, input, dim=normalize_dim(dim, input.ndim))


def _logical_result(x, out):
    """PyTorch's result dtype of `all`/`any`: uint8 for uint8 input, else bool."""
    return out.astype(jnp.uint8) if x.dtype == jnp.uint8 else out


all_op = Op("all", lambda x, *, dim, keepdim: _logical_result(
    x, jnp.all(x, axis=dim, keepdims=keepdim)), differentiable=False)


@method("all")
@numpy_names
def all(input: Tensor, dim=None, keepdim: builtins.bool = False) -> Tensor:  # noqa: A001
    """True where every element (over `dim`) is nonzero (uint8 in, uint8 out, as PyTorch)."""
    return apply(all_op, input, dim=reduce_dims(dim, input.ndim), keepdim=keepdim)


any_op = Op("any", lambda x, *, dim, keepdim: _logical_result(
    x, jnp.any(x, axis=dim, keepdims=keepdim)), differentiable=False)


@method("any")
@numpy_names
def any(input: Tensor, dim=None, keepdim: builtins.bool = False) -> Tensor:  # noqa: A001
    """True where some element (over `dim`) is nonzero (uint8 in, uint8 out, as PyTorch)."""
    return apply(any_op, input, dim=reduce_dims(dim, input.ndim), keepdim=keepdim)


count_nonzero_op = Op("count_nonzero", lambda x, *, dim: jnp.count_nonzero(x, axis=dim).astype(
    jnp.int64), differentiable=False)


@method("count_nonzero")
@numpy_names
def count_nonzero(input: Tensor, dim=None) -> Tensor:
    """The number of nonzero elements over `dim` (int64)."""
    return apply(count_nonzero_op, input, dim=reduce_dims(dim, input.ndim))


def _shared_evenly(x, value):
    """`value`, an element of `x`, with PyTorch's gradient for a median of all elements: shared
    evenly among the elements equal to it (the NaNs where it is NaN)."""
    equal = jnp.where(jnp.isnan(value), jnp.isnan(x), x == value)
    share = jnp.where(equal, x - lax.stop_gradient(x), 0).sum() / equal.sum()
    return lax.stop_gradient(value) + share.astype(x.dtype)


median_op = Op("median", lambda x, *, k: _shared_evenly(x, _reduce_dim_select(
    x.reshape(-1), dim=0, keepdim=False, which=("median", k))[0]))
kthvalue_op = Op("kthvalue", lambda x, *, k, dim, keepdim, median=False: _reduce_dim_select(
    x, dim=dim, keepdim=keepdim, which=("median" if median else "kth", k)), n_out=2)


@method("median")
@numpy_names
def median(input: Tensor, dim: builtins.int | None = None, keepdim: builtins.bool = False):
    """The lower median (not the mean of the middle two); with `dim`, `(values, indices)`, the
    gradient sent to the index, else shared among the elements equal to the median."""
    if dim is None:
        if input.numel() == 0 and input.dtype.is_floating_point:  # as PyTorch: NaN
            return full((), math.nan, dtype=input.dtype)
        _nonempty("median", input)
        return apply(median_op, input, k=(input.numel() - 1) // 2 + 1)
    if input.ndim == 0:
        return _select(kthvalue_op, return_types.median, input, dim, keepdim, k=1, median=True)
    k = (input.shape[normalize_dim(dim, input.ndim)] - 1) // 2 + 1
    return _select(kthvalue_op, return_types.median, input, dim, keepdim, k=k, median=True)


@method("kthvalue")
@numpy_names
def kthvalue(input: Tensor, k: builtins.int, dim: builtins.int = -1,
             keepdim: builtins.bool = False):
    """The `k`-th smallest element along `dim` (1-based), as `(values, indices)`."""
    size = input.shape[normalize_dim(dim, input.ndim)] if input.ndim else 1
    if not 1 <= k <= size:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {dim}")
    if input.ndim == 0:
        return return_types.kthvalue(input.clone(), _zeros_long(()))
    return _select(kthvalue_op, return_types.kthvalue, input, dim, keepdim, k=k)


@method("nansum")
@numpy_names
def nansum(input: Tensor, dim=None, keepdim: builtins.bool = False, *, dtype=None) -> Tensor:
    """`sum` with NaN counted as 0 (their gradient is 0)."""
    nan = isnan(input)
    return sum(where(nan, 0, input), dim, keepdim, dtype=dtype)


@method("nanmean")
@numpy_names
def nanmean(input: Tensor, dim=None, keepdim: builtins.bool = False) -> Tensor:
    keep = apply(logical_not_op, isnan(input))
    total = sum(where(keep, input, 0.0), dim, keepdim)
    return div(total, sum(keep, dim, keepdim))


def _nanmedian(x, *, dim, keepdim):
    """The lower median of the elements that are not NaN (NaN where all are); NaN sorts last, so
    the median is the `(count - 1) // 2`-th sorted element. Along `dim` the gradient goes to the
    returned index; over all elements (`dim=None`) it is shared evenly among the elements equal
    to the median (the NaNs where it is NaN), as PyTorch."""
    if dim is None:
        if x.size == 0:  # NaN, and a (zero) gradient for the empty input, as PyTorch
            return jnp.full((), jnp.nan, x.dtype) + 0 * x.sum(), jnp.zeros((), jnp.int64)
        value = _nanmedian(x.reshape(-1), dim=0, keepdim=False)[0]
        return _shared_evenly(x, value), jnp.zeros((), jnp.int64)
    order = jnp.argsort(x, axis=dim, stable=True)
    count = jnp.sum(~jnp.isnan(x), axis=dim, keepdims=True)
    idx = jnp.take_along_axis(order, jnp.maximum(count - 1, 0) // 2, axis=dim)
    values = jnp.take_along_axis(x, idx, axis=dim)
    if not keepdim:
        values, idx = jnp.squeeze(values, dim), jnp.squeeze(idx, dim)
    return values, idx.astype(jnp.int64)


nanmedian_op = Op("nanmedian", _nanmedian, n_out=2)


@method("nanmedian")
@numpy_names
def nanmedian(input: Tensor, dim: builtins.int | None = None, keepdim: builtins.bool = False):
    """`median` ignoring NaN: the lower median of the other elements; with `dim`,
    `(values, indices)`."""
    if dim is None:
        return apply(nanmedian_op, input, dim=None, keepdim=False)[0]
    return _select(nanmedian_op, return_types.nanmedian, input, dim, keepdim)


@method("diff")
def diff(input: Tensor, n: builtins.int = 1, dim: builtins.int = -1,
         prepend: Tensor | None = None, append: Tensor | None = None) -> Tensor:
    """The `n`-th forward difference along `dim` (`prepend`/`append` joined first); bools give
    `!=` of neighbours, as PyTorch."""
    if input.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    d = normalize_dim(dim, input.ndim)
    for name, extra in (("prepend", prepend), ("append", append)):
        if extra is None:
            continue
        if not isinstance(extra, Tensor):
            raise TypeError(f"diff(): argument '{name}' must be Tensor, not "
                            f"{type(extra).__name__}")
        if extra.ndim != input.ndim:
            raise RuntimeError("diff expects prepend or append to be the same dimension as input")
        for a in range(input.ndim):
            if a != d and extra.shape[a] != input.shape[a]:
                raise RuntimeError(
                    f"diff expects the shape of tensor to prepend or append to match that of "
                    f"input except along the differencing dimension; input.size({a}) = "
                    f"{input.shape[a]}, but got tensor.size({a}) = {extra.shape[a]}")
    if prepend is not None or append is not None:
        input = cat([t for t in (prepend, input, append) if t is not None], d)
    out = input.clone() if n == 0 else input
    for _ in range(n):
        size = out.shape[d]
        if size == 0:
            break
        hi, lo = out.narrow(d, 1, size - 1), out.narrow(d, 0, size - 1)
        out = apply(logical_xor_op, hi, lo) if out.dtype is _dtype.bool else hi - lo
    return out
