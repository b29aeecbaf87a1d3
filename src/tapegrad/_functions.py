"""The core tensor functions (`tapegrad.add`, `Tensor.sum`, ...): argument handling in PyTorch's
names and conventions, then one registry op each.
"""
from __future__ import annotations

import builtins

import numpy as np

from . import _dtype, _ops, _views
from ._record import apply
from ._tensor import Tensor, normalize_dim

Number = builtins.int | builtins.float | builtins.bool


def _scaled(other, alpha):
    if alpha == 1:
        return other
    return apply(_ops.mul, other, alpha)


# -- arithmetic -----------------------------------------------------------------------------------
def add(input, other, *, alpha: Number = 1) -> Tensor:
    """`input + alpha * other`, broadcasting, with PyTorch's type promotion."""
    return apply(_ops.add, input, _scaled(other, alpha))


def sub(input, other, *, alpha: Number = 1) -> Tensor:
    """`input - alpha * other`."""
    return apply(_ops.sub, input, _scaled(other, alpha))


subtract = sub


def mul(input, other) -> Tensor:
    return apply(_ops.mul, input, other)


multiply = mul


def div(input, other, *, rounding_mode: str | None = None) -> Tensor:
    """True division (integers give floats); `rounding_mode="floor"` or `"trunc"` rounds."""
    if rounding_mode is None:
        return apply(_ops.div, input, other)
    if rounding_mode == "floor":
        return apply(_ops.floor_divide, input, other)
    if rounding_mode == "trunc":
        q = apply(_ops.div, input, other)
        return apply(_ops.trunc, q).to(_dtype.result_type([_typed(input), _typed(other)]))
    raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                     f"'{rounding_mode}'")


divide = true_divide = div


def _typed(x):
    return (x.dtype, x.ndim) if isinstance(x, Tensor) else x


def floor_divide(input, other) -> Tensor:
    return apply(_ops.floor_divide, input, other)


def remainder(input, other) -> Tensor:
    return apply(_ops.remainder, input, other)


def pow(input, exponent) -> Tensor:  # noqa: A001
    return apply(_ops.pow, input, exponent)


def neg(input) -> Tensor:
    return apply(_ops.neg, input)


negative = neg


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with NumPy's broadcasting rules (`@`)."""
    return apply(_ops.matmul, input, other)


def maximum(input, other) -> Tensor:
    return apply(_ops.maximum, input, other)


def minimum(input, other) -> Tensor:
    return apply(_ops.minimum, input, other)


# -- elementwise math -----------------------------------------------------------------------------
def exp(input) -> Tensor:
    return apply(_ops.exp, input)


def log(input) -> Tensor:
    return apply(_ops.log, input)


def sqrt(input) -> Tensor:
    return apply(_ops.sqrt, input)


def sin(input) -> Tensor:
    return apply(_ops.sin, input)


def cos(input) -> Tensor:
    return apply(_ops.cos, input)


def tanh(input) -> Tensor:
    return apply(_ops.tanh, input)


def sigmoid(input) -> Tensor:
    return apply(_ops.sigmoid, input)


def relu(input) -> Tensor:
    return apply(_ops.relu, input)


def abs(input) -> Tensor:  # noqa: A001
    return apply(_ops.abs, input)


absolute = abs


def clamp(input, min=None, max=None) -> Tensor:  # noqa: A002
    """Limit values to `[min, max]`; the gradient passes where `min <= input <= max`."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    which = "both" if min is not None and max is not None else "min" if min is not None else "max"
    bounds = [b for b in (min, max) if b is not None]
    return apply(_ops.clamp, input, *bounds, which=which)


clip = clamp


# -- comparisons ----------------------------------------------------------------------------------
def eq(input, other) -> Tensor:
    return apply(_ops.eq, input, other)


def ne(input, other) -> Tensor:
    return apply(_ops.ne, input, other)


def lt(input, other) -> Tensor:
    return apply(_ops.lt, input, other)


def le(input, other) -> Tensor:
    return apply(_ops.le, input, other)


def gt(input, other) -> Tensor:
    return apply(_ops.gt, input, other)


def ge(input, other) -> Tensor:
    return apply(_ops.ge, input, other)


# -- reductions -----------------------------------------------------------------------------------
def _dims(dim, ndim: int):
    if dim is None:
        return None
    if isinstance(dim, (builtins.list, builtins.tuple)):
        if not dim:  # PyTorch reduces over every dimension for an empty dim list
            return None
        return builtins.tuple(sorted({normalize_dim(d, ndim) for d in dim}))
    return (normalize_dim(dim, ndim),)


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A001
    """Sum over `dim` (an int, a tuple, or None for all); integers and bools sum as int64."""
    if dtype is None and not (input.dtype.is_floating_point or input.dtype.is_complex):
        dtype = _dtype.int64
    return apply(_ops.sum, input, dim=_dims(dim, input.ndim), keepdim=keepdim,
                 dtype=None if dtype is None else _dtype.as_dtype(dtype).np)


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean over `dim`; floating point and complex only, as in PyTorch."""
    if dtype is not None:
        input = input.to(_dtype.as_dtype(dtype))
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a "
                           f"floating point or complex dtype. Got: {input.dtype.name}")
    return apply(_ops.mean, input, dim=_dims(dim, input.ndim), keepdim=keepdim)


# -- shape ----------------------------------------------------------------------------------------
def _shape_arg(shape) -> builtins.tuple:
    if len(shape) == 1 and isinstance(shape[0], (builtins.tuple, builtins.list)):
        shape = shape[0]
    return builtins.tuple(builtins.int(s) for s in shape)


def _infer_shape(shape, numel: int) -> builtins.tuple:
    if builtins.sum(1 for s in shape if s == -1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"invalid shape dimension {s}")
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = builtins.tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def reshape(input: Tensor, *shape) -> Tensor:
    """The same elements in a new shape (one dimension may be -1)."""
    shape = _infer_shape(_shape_arg(shape), input.numel())
    return _views.track(apply(_ops.reshape, input, shape=shape), input, _ops.reshape, shape=shape)


def view(input: Tensor, *shape) -> Tensor:
    """Like `reshape` (tapegrad's values are always contiguous)."""
    if len(shape) == 1 and isinstance(shape[0], _dtype.dtype):
        raise NotImplementedError("view(dtype) reinterprets bytes, which XLA arrays cannot do; "
                                  "use .to(dtype) to convert values")
    return reshape(input, *shape)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions."""
    n = input.ndim
    d0, d1 = normalize_dim(dim0, n), normalize_dim(dim1, n)
    return _views.track(apply(_ops.transpose, input, dim0=d0, dim1=d1), input, _ops.transpose,
                        dim0=d0, dim1=d1)


swapaxes = swapdims = transpose


def t(input: Tensor) -> Tensor:
    """Transpose a tensor of at most 2 dimensions."""
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    if input.ndim < 2:
        return permute(input, *range(input.ndim))
    return transpose(input, 0, 1)


def permute(input: Tensor, *dims) -> Tensor:
    """Reorder the dimensions."""
    dims = _shape_arg(dims)
    if len(dims) != input.ndim:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not "
                           f"match the length of the desired ordering of dimensions i.e. input.dim() "
                           f"= {input.ndim} is not equal to len(dims) = {len(dims)}")
    norm = builtins.tuple(normalize_dim(d, input.ndim) for d in dims)
    if len(set(norm)) != len(norm):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return _views.track(apply(_ops.permute, input, dims=norm), input, _ops.permute, dims=norm)


def expand(input: Tensor, *sizes) -> Tensor:
    """Broadcast to a larger shape (-1 keeps a dimension)."""
    sizes = _shape_arg(sizes)
    if len(sizes) < input.ndim:
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or "
                           f"equal to the number of dimensions in the tensor ({input.ndim})")
    lead = len(sizes) - input.ndim
    shape = []
    for i, s in enumerate(sizes):
        old = input.shape[i - lead] if i >= lead else None
        if s == -1:
            if old is None:
                raise RuntimeError("expand: -1 is not allowed in a leading, non-existing dimension")
            s = old
        elif old is not None and old != 1 and old != s:
            raise RuntimeError(f"The expanded size of the tensor ({s}) must match the existing size "
                               f"({old}) at non-singleton dimension {i}.  Target sizes: {list(sizes)}."
                               f"  Tensor sizes: {list(input.shape)}")
        shape.append(s)
    shape = builtins.tuple(shape)
    return _views.track(apply(_ops.expand, input, shape=shape), input, _ops.expand, writable=False,
                        shape=shape)


# -- indexing -------------------------------------------------------------------------------------
def _is_int(i) -> bool:
    return isinstance(i, (builtins.int, np.integer)) and not isinstance(i, builtins.bool)


_WHOLE = (None, None, None)  # the bounds of `:`


def _index_spec(x: Tensor, index, dynamic_slices: bool = True):
    """Split an index into a static spec and its operands; check bounds like PyTorch.

    Integers (and, with `dynamic_slices`, the starts of slices) are operands, not part of the
    spec, so indexing at a new position reuses the compiled program; next to index tensors they
    stay static (they index as plain integers there, not as advanced indices).
    """
    if not isinstance(index, builtins.tuple):
        index = (index,)
    consumed = builtins.sum(
        (i.ndim if isinstance(i, Tensor) and i.dtype is _dtype.bool else
         0 if i is None or i is Ellipsis or isinstance(i, builtins.bool) else 1) for i in index)
    if consumed > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim}")
    basic = not builtins.any(isinstance(i, Tensor) or not (i is None or i is Ellipsis or _is_int(i)
                                                             or isinstance(i, slice))
                             for i in index)
    spec, tensors, dim = [], [], 0
    for i in index:
        if i is Ellipsis:
            spec.append("...")
            dim += x.ndim - consumed
        elif i is None:
            spec.append(None)
        elif isinstance(i, builtins.bool):  # a new axis of length 1 (True) or 0 (False)
            spec.append(i)
        elif isinstance(i, slice):
            if i.step is not None and _int(i.step) <= 0:
                raise ValueError("step must be greater than zero")
            bounds = (_WHOLE if i.start is None and i.stop is None and i.step is None else
                      builtins.tuple(None if v is None else _int(v)
                                     for v in (i.start, i.stop, i.step)))
            span = (range(*slice(*bounds).indices(x.shape[dim]))
                    if basic and dynamic_slices and bounds[0] else ())
            if span:
                step = span.step
                spec.append(("d", len(tensors), dim, (len(span) - 1) * step + 1, step))
                tensors.append(span.start)
            else:
                spec.append(("s", *bounds))
            dim += 1
        elif _is_int(i):
            size = x.shape[dim]
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of bounds for dimension {dim} with size {size}")
            if basic:
                spec.append(("i", len(tensors)))
                tensors.append(builtins.int(i) % size)
            else:
                spec.append(builtins.int(i))
            dim += 1
        else:
            t = i if isinstance(i, Tensor) else _as_index_tensor(i)
            if t.dtype is _dtype.bool:
                _check_mask(t, x, dim)
                for coord in np.nonzero(np.asarray(t._value())):
                    spec.append(("t", len(tensors)))
                    tensors.append(Tensor._from_array(_jnp_array(coord)))
                dim += t.ndim
            elif t.dtype.is_floating_point or t.dtype.is_complex:
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            else:
                _check_index_values(t, x.shape[dim], dim)
                spec.append(("t", len(tensors)))
                tensors.append(t)
                dim += 1
    return builtins.tuple(spec), tensors


def _int(v) -> builtins.int:
    return builtins.int(v.item()) if isinstance(v, Tensor) else builtins.int(v)


def _jnp_array(a):
    import jax
    import jax.numpy as jnp
    with jax.enable_x64(True):
        return jnp.asarray(a, dtype=jnp.int64)


def _as_index_tensor(i) -> Tensor:
    from ._factory import tensor
    out = tensor(i)
    if out.dtype.is_floating_point:
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    return out


def _check_mask(mask: Tensor, x: Tensor, dim: builtins.int) -> None:
    for k, s in enumerate(mask.shape):
        if x.shape[dim + k] != s:
            raise IndexError(f"The shape of the mask {list(mask.shape)} at index {k} does not match "
                             f"the shape of the indexed tensor {list(x.shape)} at index {dim + k}")


def _check_index_values(t: Tensor, size: builtins.int, dim: builtins.int) -> None:
    """IndexError for out-of-range values, checked when they are known: an index still pending
    is not computed for it (that would cost a device round trip per indexing, and cannot happen
    inside a compiled step); XLA then clamps it, as PyTorch on a GPU cannot check either."""
    if t.numel() == 0 or t._cell.node.value is None:
        return
    values = np.asarray(t._cell.node.value)
    bad = values[(values < -size) | (values >= size)]
    if bad.size:
        raise IndexError(f"index {bad.flat[0]} is out of bounds for dimension {dim} with size {size}")


def getitem(x: Tensor, index) -> Tensor:
    spec, operands = _index_spec(x, index)
    if builtins.any(isinstance(o, Tensor) for o in operands):  # advanced indexing copies
        return apply(_ops.getitem, x, *operands, spec=spec)
    return _views.track(apply(_ops.getitem, x, *operands, spec=spec), x, _ops.getitem, *operands,
                        spec=spec)


def index_put(x: Tensor, index, value) -> Tensor:
    """`x` with `x[index] = value` applied, out of place."""
    spec, tensors = _index_spec(x, index, dynamic_slices=False)
    if not isinstance(value, Tensor):
        from ._factory import tensor
        value = tensor(value, dtype=x.dtype)
    return apply(_ops.setitem, x, value, *tensors, spec=spec)
