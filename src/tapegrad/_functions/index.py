"""Indexing: `x[index]` and `x[index] = v`, and the index-based ops (`gather`, `scatter`,
`index_select`, `masked_fill`, `nonzero`, ...).

Index tensors are checked against the indexed size as PyTorch checks them: at the call when
their values are known, else inside the program that computes them (`_tensor.checked`), never
forcing a computation for it. Negative indices wrap where PyTorch wraps them (`x[idx]`, `take`)
and are out of bounds where it refuses them (`gather`, `index_select`, `scatter`, ...).
"""
from __future__ import annotations

import builtins
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._core import checks as _checks, dtype as _dtype
from .._core.dims import normalize_dim
from .._core.graph import Op, SAVES_NONE
from .._core.rows import broadcast_check
from .._tensor import views as _views
from .._tensor.apply import apply
from .._tensor.checked import checked
from .._tensor.construct import tensor
from .._tensor.inplace import check_inplace, inplace, settle
from .._tensor.methods import method
from .._tensor.tensor import Tensor


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
            if t.dtype is _dtype.uint8:  # a byte tensor is a mask, as in PyTorch
                t = t != 0
            if t.dtype is _dtype.bool:
                _check_mask(t, x, dim)
                for coord in np.nonzero(np.asarray(t._value())):
                    spec.append(("t", len(tensors)))
                    tensors.append(Tensor._from_array(_jnp_array(coord)))
                dim += t.ndim
            elif t.dtype.is_floating_point or t.dtype.is_complex:
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            else:  # a 0-d index tensor selects like an integer in PyTorch: marked ("t", k, 0)
                spec.append(("t", len(tensors)) + ((0,) if t.ndim == 0 else ()))
                tensors.append(bounded(t, x.shape[dim], dim, "index", IndexError))
                dim += 1
    _check_broadcast([tensors[e[1]].shape for e in spec
                      if isinstance(e, builtins.tuple) and e[0] == "t"])
    return builtins.tuple(spec), tensors


def _check_broadcast(shapes) -> None:
    """PyTorch's IndexError for index tensors whose shapes do not broadcast together."""
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise IndexError("shape mismatch: indexing tensors could not be broadcast together with "
                         "shapes " + ", ".join(str(list(s)) for s in shapes)) from None


def _int(v) -> builtins.int:
    return builtins.int(v.item()) if isinstance(v, Tensor) else builtins.int(v)


def _jnp_array(a):
    with jax.enable_x64(True):
        return jnp.asarray(a, dtype=jnp.int64)


def _as_index_tensor(i) -> Tensor:
    out = tensor(i)
    if out.dtype.is_floating_point:
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    return out


def _check_mask(mask: Tensor, x: Tensor, dim: builtins.int) -> None:
    for k, s in enumerate(mask.shape):
        if x.shape[dim + k] != s:
            raise IndexError(f"The shape of the mask {list(mask.shape)} at index {k} does not match "
                             f"the shape of the indexed tensor {list(x.shape)} at index {dim + k}")


def build_index(spec, *operands):
    """Rebuild an index from its static `spec`: ("t", k) is the k-th operand, an index tensor,
    ("i", k) the k-th operand, an integer, ("s", start, stop, step) a slice, and
    ("d", k, axis, span, step) a slice whose start is the k-th operand (see `dynamic_slices`)."""
    out = []
    for s in spec:
        if isinstance(s, tuple) and s[0] in ("t", "i"):
            out.append(operands[s[1]])
        elif isinstance(s, tuple) and s[0] == "s":
            out.append(slice(*s[1:]))
        elif isinstance(s, tuple) and s[0] == "d":
            out.append(slice(None, None, s[4]))
        elif s == "...":
            out.append(Ellipsis)
        else:
            out.append(s)
    return tuple(out)


def dynamic_slices(x, spec, operands):
    """Cut the slices whose start is an operand: one compiled program serves every start."""
    for s in spec:
        if isinstance(s, tuple) and s[0] == "d":
            _, k, axis, span, _ = s
            x = lax.dynamic_slice_in_dim(x, operands[k], span, axis)
    return x


def _block_positions(spec, ndim: builtins.int):
    """Where the dimensions of the broadcast index tensors go in the result: (numpy's position,
    PyTorch's position), or None when the two agree.

    Both put them in place of the advanced indices when those are adjacent, and first otherwise;
    numpy counts integers (and 0-d index tensors) beside index tensors as advanced indices,
    PyTorch selects with them first (`x[1, :, idx]` keeps `idx`'s dimensions in place in
    PyTorch, first in numpy).
    """
    ints = [_is_int(s) or isinstance(s, tuple) and s[0] == "t" and len(s) == 3 for s in spec]
    if not builtins.any(ints) or builtins.all(i or not (isinstance(s, tuple) and s[0] == "t")
                                              for s, i in zip(spec, ints)):
        return None  # no integers, or no index tensor of a dimension to move
    consumed = builtins.sum(1 for s in spec if isinstance(s, tuple) or _is_int(s))

    def position(entries):
        advanced = [k for k, s in enumerate(entries)
                    if isinstance(s, tuple) and s[0] == "t" or _is_int(s)]
        if advanced[-1] - advanced[0] != len(advanced) - 1:
            return 0
        return builtins.sum(ndim - consumed if isinstance(s, str) else 1
                            for s in entries[:advanced[0]])

    numpy = position(spec)
    torch = position([s for s, i in zip(spec, ints) if not i])
    return None if numpy == torch else (numpy, torch)


def _block_dims(operands) -> builtins.int:
    return builtins.max(jnp.ndim(o) for o in operands)


def _getitem(x, *operands, spec):
    out = dynamic_slices(x, spec, operands)[build_index(spec, *operands)]
    moved = _block_positions(spec, x.ndim)
    if moved is None:
        return out
    (numpy, torch), n = moved, _block_dims(operands)
    return jnp.moveaxis(out, builtins.tuple(range(numpy, numpy + n)),
                        builtins.tuple(range(torch, torch + n)))


def _index_grad_name(static, inputs) -> str:
    """PyTorch's grad_fn for an index: Index when tensors (or bools) index, else its last basic
    step (Select, Slice, Unsqueeze); slices covering a whole dimension are skipped, as PyTorch
    does inside an index tuple."""
    spec, shape = static["spec"], inputs[0].shape
    if len(spec) == 1 and isinstance(spec[0], tuple) and spec[0][0] in ("s", "d"):
        return "SliceBackward0"  # x[a:b] slices even when it covers everything
    kinds = [e[0] if isinstance(e, tuple) else e for e in spec]
    if "t" in kinds or [k for k in kinds if isinstance(k, int)]:
        return "IndexBackward0"  # index tensors, the ints beside them, and bools
    name, dim = "AliasBackward0", 0
    for s in spec:
        if s == "...":
            dim += len(shape) - len([e for e in spec if e != "..." and e is not None])
        elif s is None:
            name = "UnsqueezeBackward0"
        else:
            if s[0] == "i":
                name = "SelectBackward0"
            elif s[0] == "d" or (s[1:] != (None, None, None) and
                                 range(*slice(*s[1:]).indices(shape[dim])) != range(shape[dim])):
                name = "SliceBackward0"
            dim += 1
    return name


getitem_op = Op("index", _getitem, saves=SAVES_NONE, grad_name=_index_grad_name)


def _is_bool_scalar(i) -> bool:
    return isinstance(i, (builtins.bool, np.bool_)) or (
        isinstance(i, Tensor) and i.dtype is _dtype.bool and i.ndim == 0)


def _bool_scalars(x: Tensor, index):
    """`(x, index)` with each bool scalar of `index` made a new axis of `x` indexed by an index
    tensor of length 1 (True) or 0 (False): PyTorch's reading of a bool as a 0-d mask, an
    advanced index (`x[1, :, True]` keeps the new axis in place, `x[None, False]` is empty)."""
    entries = index if isinstance(index, builtins.tuple) else (index,)
    if not builtins.any(_is_bool_scalar(i) for i in entries):
        return x, index
    consumed = builtins.sum(
        (i.ndim if isinstance(i, Tensor) and i.dtype is _dtype.bool else
         0 if i is None or i is Ellipsis or _is_bool_scalar(i) else 1) for i in entries)
    out, dim, ndim = [], 0, x.ndim
    for i in entries:
        if _is_bool_scalar(i):
            x = x.unsqueeze(dim)
            out.append(tensor([0] if builtins.bool(i) else [], dtype=_dtype.int64))
            dim += 1
        else:
            out.append(i)
            dim += (ndim - consumed if i is Ellipsis else 0 if i is None else
                    i.ndim if isinstance(i, Tensor) and i.dtype is _dtype.bool else 1)
    return x, builtins.tuple(out)


@method("__getitem__")
def getitem(x: Tensor, index) -> Tensor:
    x, index = _bool_scalars(x, index)
    spec, operands = _index_spec(x, index)
    if builtins.any(isinstance(o, Tensor) for o in operands) or \
            builtins.any(isinstance(s, builtins.bool) for s in spec):  # advanced: a copy
        return apply(getitem_op, x, *operands, spec=spec)  # (a bool is an index tensor, as PyTorch)
    return _views.track(apply(getitem_op, x, *operands, spec=spec), x, getitem_op, *operands,
                        spec=spec)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def put(index_of, x, v, *arrays):
    """`x.at[index_of(*arrays)].set(v)` with PyTorch's derivative for `v`: `grad[index]` at every
    (even repeated) index. jax's own derivative reaches only the element written last."""
    return x.at[index_of(*arrays)].set(v)


@put.defjvp
def _put_jvp(index_of, primals, tangents):
    x, v, *arrays = primals
    dx, dv = tangents[0], tangents[1]
    index = index_of(*arrays)
    written = jnp.zeros(x.shape, bool).at[index].set(True)
    return put(index_of, x, v, *arrays), jnp.where(written, jnp.zeros_like(dx).at[index].add(dv),
                                                   dx)


def _index_put(x, v, *ts, spec, accumulate=False):
    v = v.astype(x.dtype)
    moved = _block_positions(spec, x.ndim)
    if moved is not None:  # `v` broadcasts against PyTorch's order of the indexed dimensions
        (numpy, torch), n = moved, _block_dims(ts)
        shape = jax.eval_shape(lambda a, *i: a[build_index(spec, *i)], x, *ts).shape
        rest = shape[:numpy] + shape[numpy + n:]
        v = jnp.broadcast_to(v, rest[:torch] + shape[numpy:numpy + n] + rest[torch:])
        v = jnp.moveaxis(v, builtins.tuple(range(torch, torch + n)),
                         builtins.tuple(range(numpy, numpy + n)))
    if accumulate:  # repeated indices add up (jax's scatter-add and its derivative)
        return x.at[build_index(spec, *ts)].add(v)
    return put(functools.partial(build_index, spec), x, v, *ts)


setitem_op = Op("index_put", _index_put,
                saves=SAVES_NONE, grad_name="IndexPutBackward0")


def index_put(x: Tensor, index, value, accumulate: builtins.bool = False) -> Tensor:
    """`x` with `x[index] = value` applied (`x[index] += value` with `accumulate`, repeated
    indices adding up), out of place."""
    shape = x.shape
    x, index = _bool_scalars(x, index)
    spec, tensors = _index_spec(x, index, dynamic_slices=False)
    if not isinstance(value, Tensor):
        value = tensor(value, dtype=x.dtype)
    static = {"accumulate": True} if accumulate else {}
    out = apply(setitem_op, x, value, *tensors, spec=spec, **static)
    return out if out.shape == shape else out.reshape(shape)


@method("index_put", inplace=("index_put_",))
def index_put_tensors(input: Tensor, indices, values: Tensor, accumulate: builtins.bool = False
                      ) -> Tensor:
    """`input` with `input[indices] = values` (a tuple of index tensors), out of place;
    `accumulate` adds instead, repeated indices adding up."""
    if not isinstance(values, Tensor):
        raise TypeError(f"index_put(): argument 'values' (position 2) must be Tensor, not "
                        f"{type(values).__name__}")
    if values.dtype is not input.dtype:
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{_dtype.scalar_name(input.dtype)} for the destination and "
                           f"{_dtype.scalar_name(values.dtype)} for the source.")
    return index_put(input, builtins.tuple(indices), values, builtins.bool(accumulate))


@method("index_copy", inplace=("index_copy_",))
def index_copy(input: Tensor, dim: builtins.int, index: Tensor, source: Tensor) -> Tensor:
    """`input` with the slices of `source` copied to positions `index` along `dim`."""
    index = _index("index_copy", index)
    d = normalize_dim(dim, input.ndim)
    index = bounded(index, input.shape[d], d, "index_copy", IndexError,
                    f"index_copy_(): index {{value}} is out of bounds for dimension {d} with "
                    f"size {input.shape[d]}", wraps=False)
    return index_put(input, (slice(None),) * d + (index.reshape(-1),), source)


@method("__setitem__")
def __setitem__(self: Tensor, index, value) -> None:
    check_inplace(self)
    settle(self)
    inplace(self, index_put(self, index, value))


def _index(name: str, index) -> Tensor:
    index = index if isinstance(index, Tensor) else _as_index_tensor(index)
    if index.dtype not in (_dtype.int64, _dtype.int32):
        raise RuntimeError(f"{name}(): Expected dtype int32/int64 for index")
    return index


def bounded(index: Tensor, size: builtins.int, dim: builtins.int, op: str, error: type,
            message: str | None = None, wraps: builtins.bool = True) -> Tensor:
    """`index` checked against `[-size, size)` (`[0, size)` unless negative indices `wraps`);
    PyTorch's message by default, `{value}` the first index out of range."""
    if message is None:
        message = f"index {{value}} is out of bounds for dimension {dim} with size {size}"
    return checked(index, op, _checks.outside, (-size if wraps else 0, size), error, message)


def _same_rank(name: str, input: Tensor, index: Tensor) -> None:
    if index.ndim != input.ndim and not (index.ndim <= 1 and input.ndim <= 1):
        raise RuntimeError(f"Index tensor must have the same number of dimensions as "
                           f"{'input' if name == 'gather' else 'self'} tensor")


gather_op = Op("gather", lambda x, index, *, dim: jnp.take_along_axis(x, index, axis=dim),
               saves=(1,))


@method("gather")
def gather(input: Tensor, dim: builtins.int, index: Tensor, *, sparse_grad: builtins.bool = False
           ) -> Tensor:
    """`out[i][j] = input[index[i][j]][j]` (for dim=0): values picked along `dim` by `index`."""
    index = _index("gather", index)
    _same_rank("gather", input, index)
    d = normalize_dim(dim, input.ndim)
    for a in range(input.ndim):
        if a != d and index.shape[a] > input.shape[a]:
            raise RuntimeError(f"Size does not match at dimension {a} expected index "
                               f"{list(index.shape)} to be smaller than self {list(input.shape)} "
                               f"apart from dimension {d}")
    index = bounded(index, input.shape[d] if input.ndim else 1, d, "gather", RuntimeError,
                    wraps=False)
    if input.ndim == 0:
        return input.reshape(index.shape) if index.numel() else input.reshape(0)
    if index.shape[:d] + index.shape[d + 1:] != input.shape[:d] + input.shape[d + 1:]:
        input = getitem(input, builtins.tuple(slice(0, s) if a != d else slice(None)
                                              for a, s in enumerate(index.shape)))
    return apply(gather_op, input, index, dim=d)


def _scatter(op, name, input: Tensor, dim, index, src) -> Tensor:
    index = _index(name, index)
    _same_rank(name, input, index)
    d = normalize_dim(dim, input.ndim)
    index = bounded(index, input.shape[d] if input.ndim else 1, d, name, RuntimeError,
                    wraps=False)
    if isinstance(src, Tensor):
        if src.dtype is not input.dtype:
            raise RuntimeError(f"{name}(): Expected self.dtype to be equal to src.dtype")
    for a in range(index.ndim):
        if (isinstance(src, Tensor) and src.ndim and index.shape[a] > src.shape[a]) or \
                (a != d and index.shape[a] > input.shape[a]):
            raise RuntimeError(f"Expected index {list(index.shape)} to be no larger than self "
                               f"{list(input.shape)} apart from dimension {d}" +
                               (f" and to be no larger size than src {list(src.shape)}"
                                if isinstance(src, Tensor) else ""))
    return apply(op, input, index, src, dim=d)


def _full_index(index, dim):
    """Index arrays addressing `index`'s positions with `index` itself along `dim` (for scatter)."""
    grids = list(jnp.indices(index.shape, sparse=True))
    grids[dim] = index
    return tuple(grids)


def _scatter_values(x, index, src, *, dim, mode):
    src = jnp.broadcast_to(jnp.asarray(src, x.dtype), index.shape) if jnp.ndim(src) == 0 else \
        src[tuple(slice(0, s) for s in index.shape)].astype(x.dtype)
    if mode == "add":
        return x.at[_full_index(index, dim)].add(src)
    return put(functools.partial(_full_index, dim=dim), x, src, index)


scatter_op = Op("scatter", functools.partial(_scatter_values, mode="set"), saves=(1,))


@method("scatter", inplace=("scatter_",))
def scatter(input: Tensor, dim: builtins.int, index: Tensor, src=None, *, value=None,
            reduce: str | None = None) -> Tensor:
    """`input` with `src` (or a scalar `value`) written at `index` along `dim` (out of place)."""
    if src is None:
        src = value
    if reduce in ("add", "multiply"):  # PyTorch's older spelling of scatter_reduce (sum, prod)
        full = src if isinstance(src, Tensor) else input.new_full(index.shape, src)
        return scatter_reduce(input, dim, index, full, "sum" if reduce == "add" else "prod")
    if reduce is not None:
        raise RuntimeError("reduce argument must be either add or multiply.")
    return _scatter(scatter_op, "scatter", input, dim, index, src)


def _scattered_product(shape, index, src, dim):
    """The product of the `src` elements `index` sends to each position (1 where none goes),
    by a dense one-hot product: JAX's scatter-multiply has no gradient for repeated indices."""
    n = shape[dim]
    hits = jnp.moveaxis(index, dim, -1)[..., None] == jnp.arange(n)
    terms = jnp.where(hits, jnp.moveaxis(src, dim, -1)[..., None], jnp.ones((), src.dtype))
    product = jnp.moveaxis(jnp.prod(terms, axis=-2), -1, dim)
    return jnp.pad(product, [(0, s - p) for s, p in zip(shape, product.shape)],
                   constant_values=1)


def _scattered_extreme(x, base, where, src, touched, reduce, include_self):
    """amax/amin with PyTorch's gradient: shared evenly among the elements equal to the result,
    where the count includes the old value even when `include_self=False` excludes it."""
    sg = lax.stop_gradient
    result = sg(base.at[where].max(src) if reduce == "amax" else base.at[where].min(src))
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        return result
    self_hit = (sg(x) == result).astype(x.dtype)
    src_hit = (sg(src) == result[where]).astype(x.dtype)
    count = self_hit + jnp.zeros_like(x).at[where].add(src_hit)
    self_w = jnp.where(touched & (not include_self), jnp.zeros_like(x), self_hit / count)
    src_w = src_hit / count[where]
    return result + self_w * (x - sg(x)) + jnp.zeros_like(x).at[where].add(src_w * (src - sg(src)))


def _scatter_reduce(x, index, src, *, dim, reduce, include_self):
    """`x` with `src` reduced into the positions `index` addresses along `dim`; with
    `include_self=False` the old value of an addressed position takes no part."""
    where = _full_index(index, dim)
    src = src[tuple(slice(0, s) for s in index.shape)].astype(x.dtype)
    touched = jnp.zeros(x.shape, bool).at[where].set(True)
    if reduce in ("sum", "mean"):
        neutral = 0
    elif reduce == "prod":
        neutral = 1
    else:
        info = jnp.finfo(x.dtype) if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.iinfo(x.dtype)
        neutral = -jnp.inf if reduce == "amax" else jnp.inf
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            neutral = info.min if reduce == "amax" else info.max
    base = x if include_self else jnp.where(touched, jnp.asarray(neutral, x.dtype), x)
    at = base.at[where]
    if reduce in ("sum", "mean"):
        out = at.add(src)
    elif reduce == "prod":
        out = base * _scattered_product(x.shape, index, src, dim)
    else:
        out = _scattered_extreme(x, base, where, src, touched, reduce, include_self)
    if reduce != "mean":
        return out
    count = jnp.zeros(x.shape, x.dtype).at[where].add(1) + (1 if include_self else 0)
    count = jnp.where(touched, count, jnp.ones_like(count))
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return out / count
    return jnp.floor_divide(out, count)


scatter_reduce_op = Op("scatter_reduce", _scatter_reduce, saves="all")


@method("scatter_reduce", inplace=("scatter_reduce_",))
def scatter_reduce(input: Tensor, dim: builtins.int, index: Tensor, src: Tensor, reduce: str, *,
                   include_self: builtins.bool = True) -> Tensor:
    """`input` with `src` reduced (`sum`, `prod`, `mean`, `amax`, `amin`) into the positions
    `index` addresses along `dim`; `include_self=False` leaves the old values of those positions
    out of the reduction."""
    reduce = {"max": "amax", "min": "amin"}.get(reduce, reduce)  # PyTorch accepts both
    if reduce not in ("sum", "prod", "mean", "amax", "amin"):
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got "
                           f"{reduce}")
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_reduce(): argument 'src' must be Tensor, not "
                        f"{type(src).__name__}")
    index = _index("scatter_reduce", index)
    _same_rank("scatter_reduce", input, index)
    d = normalize_dim(dim, input.ndim)
    index = bounded(index, input.shape[d] if input.ndim else 1, d, "scatter_reduce", RuntimeError,
                    wraps=False)
    if src.dtype is not input.dtype:
        raise RuntimeError("scatter_reduce(): Expected self.dtype to be equal to src.dtype")
    return apply(scatter_reduce_op, input, index, src, dim=d, reduce=reduce,
                 include_self=builtins.bool(include_self))


scatter_add_op = Op("scatter_add", functools.partial(_scatter_values, mode="add"), saves=(1,))


@method("scatter_add", inplace=("scatter_add_",))
def scatter_add(input: Tensor, dim: builtins.int, index: Tensor, src: Tensor) -> Tensor:
    """`input` with `src` added at `index` along `dim` (repeated indices accumulate)."""
    return _scatter(scatter_add_op, "scatter_add", input, dim, index, src)


index_select_op = Op("index_select", lambda x, index, *, dim: jnp.take(x, index, axis=dim),
                     saves=(1,))


@method("index_select")
def index_select(input: Tensor, dim: builtins.int, index: Tensor) -> Tensor:
    """The slices of `input` along `dim` at the positions in the 1-d `index`."""
    index = _index("index_select", index)
    if index.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    d = normalize_dim(dim, input.ndim)
    index = bounded(index, input.shape[d] if input.ndim else 1, d, "index_select", IndexError,
                    "index out of range in self", wraps=False)
    if input.ndim == 0:
        return input.clone()
    return apply(index_select_op, input, index.reshape(-1), dim=d)


def _index_add(x, index, source, *, dim, alpha):
    source = source.astype(x.dtype)
    return x.at[(slice(None),) * dim + (index,)].add(source * alpha if alpha != 1 else source)


index_add_op = Op("index_add", _index_add, saves=(1,))


@method("index_add", inplace=("index_add_",))
def index_add(input: Tensor, dim: builtins.int, index: Tensor, source: Tensor, *,
              alpha=1) -> Tensor:
    """`input` with `alpha * source` slices added at `index` along `dim` (out of place)."""
    index = _index("index_add", index)
    if source.dtype is not input.dtype:
        raise RuntimeError(f"index_add_(): self ({_dtype.scalar_name(input.dtype)}) and source "
                           f"({_dtype.scalar_name(source.dtype)}) must have the same scalar type")
    d = normalize_dim(dim, input.ndim)
    index = bounded(index, input.shape[d], d, "index_add", IndexError,
                    "index out of range in self", wraps=False)
    return apply(index_add_op, input, index.reshape(-1), source, dim=d, alpha=alpha)


def _mask(name: str, mask) -> Tensor:
    mask = mask if isinstance(mask, Tensor) else _as_index_tensor(mask)
    if mask.dtype is not _dtype.bool:
        raise RuntimeError(f"{name} only supports boolean masks, but got mask with dtype "
                           f"{mask.dtype.name}")
    return mask


masked_fill_op = Op("masked_fill", lambda x, mask, value: jnp.where(
    mask, jnp.asarray(value, x.dtype), x), saves=(1,))


@method("masked_fill", inplace=("masked_fill_",))
def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    """`input` with `value` where `mask` (broadcast to `input`) is true."""
    mask = _mask("masked_fill_", mask)
    if isinstance(value, Tensor) and value.ndim:
        raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got "
                           f"tensor with {value.ndim} dimension(s).")
    out = apply(masked_fill_op, input, mask, value)
    if out.shape != input.shape:
        raise RuntimeError(f"output with shape {list(input.shape)} doesn't match the broadcast "
                           f"shape {list(out.shape)}")
    return out


@method("masked_select")
def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    """The elements where `mask` is true, as a 1-d tensor (its length depends on the mask)."""
    mask = _mask("masked_select", mask)
    broadcast_check(mask, input)  # PyTorch's order: the mask is tensor a
    shape = np.broadcast_shapes(input.shape, mask.shape)
    return getitem(input.expand(shape), mask.expand(shape))


@method("take_along_dim")
def take_along_dim(input: Tensor, indices: Tensor, dim: builtins.int | None = None) -> Tensor:
    """Values at `indices` along `dim` (the flattened tensor when `dim` is None)."""
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    d = normalize_dim(dim, input.ndim)
    shape_in = list(np.broadcast_shapes(input.shape[:d] + (1,) + input.shape[d + 1:],
                                        indices.shape[:d] + (1,) + indices.shape[d + 1:]))
    shape_idx = list(shape_in)
    shape_in[d], shape_idx[d] = input.shape[d], indices.shape[d]
    return gather(input.expand(shape_in), d, indices.expand(shape_idx))


@method("take")
def take(input: Tensor, index: Tensor) -> Tensor:
    """Elements of the flattened `input` at `index` (the result has `index`'s shape)."""
    index = _index("take", index)
    index = bounded(index, input.numel(), 0, "take", IndexError,
                    f"out of range: tried to access index {{value}} on a tensor of "
                    f"{input.numel()} elements.")
    return apply(index_select_op, input.reshape(-1), index.reshape(-1), dim=0).reshape(index.shape)


@method("repeat_interleave")
def repeat_interleave(input: Tensor, repeats, dim: builtins.int | None = None, *,
                      output_size: builtins.int | None = None) -> Tensor:
    """Repeat each element (each slice along `dim`) `repeats` times, consecutively."""
    if dim is None:
        input, dim = input.reshape(-1), 0
    d = normalize_dim(dim, input.ndim)
    counts = np.asarray(repeats._value() if isinstance(repeats, Tensor) else repeats)
    if counts.ndim and counts.shape[0] != input.shape[d]:
        raise RuntimeError(f"repeats must have the same size as input along dim, but got "
                           f"repeats.size(0) = {counts.shape[0]} and input.size(0) = "
                           f"{input.shape[d]}")
    if (counts < 0).any():
        raise RuntimeError("repeats can not be negative")
    index = np.repeat(np.arange(input.shape[d]), counts)
    return apply(index_select_op, input, tensor(index), dim=d)


@method("bincount")
def bincount(input: Tensor, weights: Tensor | None = None, minlength: builtins.int = 0) -> Tensor:
    """How often each value of the non-negative 1-d integer `input` occurs (weighted by
    `weights`); the length, `max(input) + 1` at least, needs the values."""
    if input.dtype.is_floating_point or input.dtype.is_complex:
        raise NotImplementedError(f'"bincount_cpu" not implemented for '
                                  f"'{_dtype.scalar_name(input.dtype)}'")
    values = np.asarray(input._value())
    if input.ndim != 1 or (values < 0).any():
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    size = builtins.max(builtins.int(values.max()) + 1 if values.size else 0, minlength)
    if weights is None:
        return tensor(np.bincount(values, minlength=size).astype(np.int64))
    if weights.shape != input.shape:
        raise RuntimeError("weights should be 1-d and have the same length as input")
    return index_add(weights.new_zeros(size), 0, input, weights)


@method("nonzero")
def nonzero(input: Tensor, *, as_tuple: builtins.bool = False):
    """The indices of the nonzero elements: an `(n, ndim)` int64 tensor, or one tensor per dim."""
    coords = np.nonzero(np.asarray(input._value()).reshape(input.shape or (1,)))
    if as_tuple:
        return builtins.tuple(tensor(c.astype(np.int64)) for c in coords)
    if input.ndim == 0:
        return tensor(np.zeros((len(coords[0]), 0), np.int64))
    return tensor(np.stack(coords, axis=1).astype(np.int64).reshape(-1, input.ndim))


@method("argwhere")
def argwhere(input: Tensor) -> Tensor:
    return nonzero(input)
