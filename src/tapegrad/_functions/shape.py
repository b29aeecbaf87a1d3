"""Shapes and views: `reshape`/`view`, `transpose`/`permute`, `expand`, `squeeze`, `split`,
`cat`/`stack`, ... Views share storage with their base (see `_tensor.views`).
"""
from __future__ import annotations

import builtins
import itertools
import math
import numbers
import warnings
from typing import Sequence

import jax.numpy as jnp
from jax import lax

from .._core import dtype as _dtype
from .._core.dims import check_new_shape, normalize_dim, numpy_names, shape_arg
from .._core.graph import Op, SAVES_NONE
from .._core.ops import as_strided_op
from .._core.rows import variadic
from .._tensor import views as _views
from .._tensor.apply import apply
from .._tensor.methods import attribute, method
from .._tensor.strides import may_overlap, view_strides
from .._tensor.tensor import Tensor
from .index import getitem, getitem_op


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


def _reshape_name(static: dict, inputs) -> str:
    return "ReshapeAliasBackward0" if static.get("alias") else "ViewBackward0"


# `alias`: a reshape of a non-contiguous tensor that strides can still view (PyTorch's
# `_reshape_alias`, named apart in grad_fn; the same elements either way)
reshape_op = Op("reshape", lambda x, *, shape, alias=False: jnp.reshape(x, shape),
                saves=SAVES_NONE, grad_name=_reshape_name)
# reshape's copy where no strides can view the elements (PyTorch's `_unsafe_view` of a clone)
unsafe_view_op = Op("unsafe_view", lambda x, *, shape: jnp.reshape(x, shape), saves=SAVES_NONE,
                    grad_name="UnsafeViewBackward0")

_NOT_VIEWABLE = ("view size is not compatible with input tensor's size and stride (at least one "
                 "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")


def _viewable(input: Tensor, shape: builtins.tuple) -> builtins.bool:
    return input.is_contiguous() or view_strides(input.shape, input.stride(), shape) is not None


@method("reshape")
def reshape(input: Tensor, *shape) -> Tensor:
    """The same elements in a new shape (one dimension may be -1): a view where strides can
    express it (as `view`), else a copy, as PyTorch (`x.t().reshape(-1)` does not alias `x`)."""
    shape = _infer_shape(shape_arg(shape), input.numel())
    if input.is_contiguous():
        return _views.track(apply(reshape_op, input, shape=shape), input, reshape_op, shape=shape)
    if not _viewable(input, shape):
        return apply(unsafe_view_op, input, shape=shape)
    return _views.track(apply(reshape_op, input, shape=shape, alias=True), input, reshape_op,
                        shape=shape, alias=True)


@method("view")
def view(input: Tensor, *shape) -> Tensor:
    """The same storage seen in a new shape; raises where the strides cannot express it (a
    dimension would span non-adjacent chunks of a transposed or stepped view)."""
    if len(shape) == 1 and isinstance(shape[0], _dtype.dtype):
        raise NotImplementedError("view(dtype) reinterprets bytes, which XLA arrays cannot do; "
                                  "use .to(dtype) to convert values")
    shape = _infer_shape(shape_arg(shape), input.numel())
    if not _viewable(input, shape):
        raise RuntimeError(_NOT_VIEWABLE)
    return _views.track(apply(reshape_op, input, shape=shape), input, reshape_op, shape=shape)


@method("as_strided")
def as_strided(input: Tensor, size, stride, storage_offset: builtins.int | None = None) -> Tensor:
    """A view of `input`'s storage with the given sizes and strides from `storage_offset`
    (by default `input`'s own); writable unless two of its elements may share one place."""
    size, stride = shape_arg((size,)), shape_arg((stride,))
    if len(size) != len(stride):
        raise RuntimeError("mismatch in length of strides and shape")
    if builtins.any(st < 0 for st in stride):
        raise RuntimeError(f"as_strided: Negative strides are not supported at the moment, got "
                           f"strides: {list(stride)}")
    offset = input.storage_offset() if storage_offset is None else builtins.int(storage_offset)
    base = _views.base_of(input)
    base = input if base is None else base
    need = offset + builtins.sum((s - 1) * st for s, st in zip(size, stride)) + 1 \
        if math.prod(size) else 0
    if need > base.numel():
        raise RuntimeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage "
                           f"offset {offset}, and itemsize {input.dtype.itemsize} requiring a "
                           f"storage size of {need * input.dtype.itemsize} are out of bounds for "
                           f"storage of size {base.numel() * input.dtype.itemsize}")
    static = dict(offset=offset, size=size, stride=stride)
    return _views.track(apply(as_strided_op, base, **static), base, as_strided_op,
                        writable=not may_overlap(size, stride), **static)


transpose_op = Op("transpose", lambda x, *, dim0, dim1: jnp.swapaxes(x, dim0, dim1), saves=SAVES_NONE)


@method("transpose", "swapaxes", "swapdims")
def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions."""
    n = input.ndim
    d0, d1 = normalize_dim(dim0, n), normalize_dim(dim1, n)
    return _views.track(apply(transpose_op, input, dim0=d0, dim1=d1), input, transpose_op,
                        dim0=d0, dim1=d1)


swapaxes = swapdims = transpose


t_op = Op("t", jnp.transpose, saves=SAVES_NONE)


@method("t")
def t(input: Tensor) -> Tensor:
    """Transpose a tensor of at most 2 dimensions."""
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return _views.track(apply(t_op, input), input, t_op)


permute_op = Op("permute", lambda x, *, dims: jnp.transpose(x, dims), saves=SAVES_NONE)


@method("permute")
def permute(input: Tensor, *dims) -> Tensor:
    """Reorder the dimensions."""
    dims = shape_arg(dims)
    if len(dims) != input.ndim:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not "
                           f"match the length of the desired ordering of dimensions i.e. input.dim() "
                           f"= {input.ndim} is not equal to len(dims) = {len(dims)}")
    norm = builtins.tuple(normalize_dim(d, input.ndim) for d in dims)
    if len(set(norm)) != len(norm):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return _views.track(apply(permute_op, input, dims=norm), input, permute_op, dims=norm)


expand_op = Op("expand", lambda x, *, shape: jnp.broadcast_to(x, shape), saves=SAVES_NONE)


@method("expand")
def expand(input: Tensor, *sizes) -> Tensor:
    """Broadcast to a larger shape (-1 keeps a dimension)."""
    sizes = shape_arg(sizes)
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
    return _views.track(apply(expand_op, input, shape=shape), input, expand_op, writable=False,
                        shape=shape)


def _dim_list(dims, ndim: int) -> builtins.tuple:
    if isinstance(dims, builtins.int):
        dims = (dims,)
    return builtins.tuple(normalize_dim(d, ndim) for d in dims)


squeeze_op = Op("squeeze", lambda x, *, dims: jnp.squeeze(x, dims), saves=SAVES_NONE)


@method("squeeze")
@numpy_names
def squeeze(input: Tensor, dim=None) -> Tensor:
    """Drop size-1 dimensions (all, or those in `dim` that have size 1)."""
    dims = range(input.ndim) if dim is None else _dim_list(dim, input.ndim)  # 0-d: 0 or -1
    dims = builtins.tuple(d for d in dims if input.ndim and input.shape[d] == 1)
    return _views.track(apply(squeeze_op, input, dims=dims), input, squeeze_op, dims=dims)


unsqueeze_op = Op("unsqueeze", lambda x, *, dim: jnp.expand_dims(x, dim), saves=SAVES_NONE)


@method("unsqueeze")
@numpy_names
def unsqueeze(input: Tensor, dim: builtins.int) -> Tensor:
    """Insert a size-1 dimension at `dim` (in `[-ndim-1, ndim]`)."""
    d = normalize_dim(dim, input.ndim + 1)
    return _views.track(apply(unsqueeze_op, input, dim=d), input, unsqueeze_op, dim=d)


@method("flatten")
def flatten(input: Tensor, start_dim: builtins.int = 0, end_dim: builtins.int = -1) -> Tensor:
    """Merge dimensions `start_dim..end_dim` into one (a 0-d tensor becomes 1-d)."""
    if input.ndim == 0:
        return reshape(input, 1)
    s, e = normalize_dim(start_dim, input.ndim), normalize_dim(end_dim, input.ndim)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:
        return input  # PyTorch returns the tensor itself
    shape = input.shape
    return reshape(input, *shape[:s], math.prod(shape[s:e + 1]), *shape[e + 1:])


@method("unflatten")
def unflatten(input: Tensor, dim: builtins.int, sizes: Sequence[builtins.int]) -> Tensor:
    """Split dimension `dim` into `sizes` (one may be -1)."""
    d = normalize_dim(dim, input.ndim)
    sizes = builtins.tuple(sizes)
    known = math.prod(s for s in sizes if s != -1)
    size = input.shape[d]
    if -1 in sizes:
        sizes = builtins.tuple(size // known if s == -1 else s for s in sizes)
    if math.prod(sizes) != size:
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size "
                           f"of dim {dim} ({size}) in the input tensor")
    return reshape(input, *input.shape[:d], *sizes, *input.shape[d + 1:])


def mT(input: Tensor) -> Tensor:  # noqa: N802
    """The last two dimensions swapped (a batch of matrices, transposed)."""
    if input.ndim < 2:
        raise RuntimeError(f"tensor.mT is only supported on matrices or batches of matrices. "
                           f"Got {input.ndim}-D tensor.")
    return transpose(input, -2, -1)


@method("movedim", "moveaxis")
def movedim(input: Tensor, source, destination) -> Tensor:
    """Move dimensions `source` to positions `destination`; the others keep their order."""
    src, dst = _dim_list(source, input.ndim), _dim_list(destination, input.ndim)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({list(src)} "
                           f"dims) should contain the same number of dims as destination "
                           f"({list(dst)} dims)")
    rest = [d for d in range(input.ndim) if d not in src]
    order = [None] * input.ndim
    for s, d in zip(src, dst):
        order[d] = s
    it = iter(rest)
    return permute(input, *[o if o is not None else next(it) for o in order])


moveaxis = movedim


@method("expand_as")
def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return input.expand(other.shape)


@method("view_as")
def view_as(input: Tensor, other: Tensor) -> Tensor:
    return input.view(other.shape)


@method("reshape_as")
def reshape_as(input: Tensor, other: Tensor) -> Tensor:
    return input.reshape(other.shape)


repeat_op = Op("repeat", lambda x, *, reps: jnp.tile(x, reps), saves=SAVES_NONE)


@method("repeat")
def repeat(input: Tensor, *sizes) -> Tensor:
    """Tile the tensor `sizes` times along each dimension (`sizes` may add leading dimensions)."""
    reps = shape_arg(sizes)
    if len(reps) < input.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number "
                           "of dimensions of tensor")
    shape = (1,) * (len(reps) - input.ndim) + builtins.tuple(input.shape)
    check_new_shape(builtins.tuple(s * r for s, r in zip(shape, reps)))
    return apply(repeat_op, input, reps=reps)


@method("tile")
def tile(input: Tensor, dims) -> Tensor:
    """Like `repeat`, but `dims` shorter than the tensor's rank is padded with ones."""
    dims = (dims,) if isinstance(dims, numbers.Integral) else builtins.tuple(dims)
    return repeat(input, *((1,) * (input.ndim - len(dims)) + dims))


flip_op = Op("flip", lambda x, *, dims: jnp.flip(x, dims), saves=SAVES_NONE)


@method("flip")
def flip(input: Tensor, *dims) -> Tensor:
    """Reverse the order of elements along `dims` (a copy, as in PyTorch)."""
    if len(dims) == 1 and not isinstance(dims[0], builtins.int):
        dims = dims[0]
    d = _dim_list(dims, input.ndim)
    return apply(flip_op, input, dims=d if input.ndim else ())


@method("fliplr")
def fliplr(input: Tensor) -> Tensor:
    return flip(input, (1,))


@method("flipud")
def flipud(input: Tensor) -> Tensor:
    return flip(input, (0,))


roll_op = Op("roll", lambda x, *, shifts, dims: jnp.roll(x, shifts, dims), saves=SAVES_NONE)


@method("roll")
def roll(input: Tensor, shifts, dims=None) -> Tensor:
    """Rotate elements along `dims` by `shifts` (the flattened tensor when `dims` is None)."""
    if dims is None:
        return roll(input.reshape(-1), shifts, 0).reshape(input.shape)
    shifts = (shifts,) if isinstance(shifts, builtins.int) else builtins.tuple(shifts)
    if input.ndim == 0:
        first = dims if isinstance(dims, builtins.int) else builtins.tuple(dims)[0]
        raise IndexError(f"Dimension specified as {first} but tensor has no dimensions")
    dims = _dim_list(dims, input.ndim)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:"
                           f"{len(dims)}")
    return apply(roll_op, input, shifts=shifts, dims=dims)


@method("select")
@numpy_names
def select(input: Tensor, dim: builtins.int, index: builtins.int) -> Tensor:
    """The slice at `index` along `dim` (a view without that dimension)."""
    d = normalize_dim(dim, input.ndim)
    return getitem(input, (slice(None),) * d + (index,))


@method("narrow")
@numpy_names
def narrow(input: Tensor, dim: builtins.int, start: builtins.int, length: builtins.int) -> Tensor:
    """`length` elements from `start` along `dim` (a view)."""
    if input.ndim == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    d = normalize_dim(dim, input.ndim)
    size = input.shape[d]
    start = builtins.int(start)
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    if not -size <= start <= size:
        raise IndexError(f"start out of range (expected to be in range of [{-size}, {size}], "
                         f"but got {start})")
    if start < 0:
        start += size
    if start + length > size:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    return getitem(input, (slice(None),) * d + (slice(start, start + length),))


def _split(x, *, dim, sections):
    bounds = [0, *itertools.accumulate(sections)]
    return tuple(lax.slice_in_dim(x, a, b, axis=dim) for a, b in zip(bounds, bounds[1:]))


# one node for all pieces, as PyTorch (a piece's grad_fn is the split, with its output_nr)
split_op = Op("split", _split, saves=SAVES_NONE, n_out=None)


split_with_sizes_op = Op("split_with_sizes", _split, saves=SAVES_NONE, n_out=None)


@method("split")
@numpy_names
def split(tensor: Tensor, split_size_or_sections, dim: builtins.int = 0) -> builtins.tuple:
    """Views of consecutive pieces along `dim`: equal `split_size` pieces, or given `sections`."""
    d = normalize_dim(dim, tensor.ndim)
    size = tensor.shape[d]
    if isinstance(split_size_or_sections, builtins.int):
        step = split_size_or_sections
        if step <= 0:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got "
                               f"dimension size of {size}") if step == 0 and size else \
                RuntimeError(f"split expects split_size be non-negative, but got split_size={step}")
        sections = [builtins.min(step, size - s) for s in range(0, size, step)] or [0]
    else:
        sections = [builtins.int(s) for s in split_size_or_sections]
        if builtins.sum(sections) != size:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {size} "
                               f"(input tensor's size at dimension {d}), but got split_sizes="
                               f"{sections}")
    op = split_op if isinstance(split_size_or_sections, builtins.int) else split_with_sizes_op
    sections = builtins.tuple(sections)
    pieces = apply(op, tensor, dim=d, sections=sections)
    whole, start = (("s", None, None, None),) * d, 0
    name = "Split" if op is split_op else "SplitWithSizes"
    for k, (piece, s) in enumerate(zip(pieces, sections)):
        _views.track(piece, tensor, getitem_op, multi=(name, k),
                     spec=whole + (("s", start, start + s, None),))
        start += s
    return pieces


def _slices(input: Tensor, sections: list, d: builtins.int) -> builtins.tuple:
    out, start = [], 0
    for s in sections:
        out.append(getitem(input, (slice(None),) * d + (slice(start, start + s),)))
        start += s
    return builtins.tuple(out)


def _split_tensor_arg(t: Tensor):
    """A tensor `indices_or_sections`, as PyTorch takes it: int64, 0-d (a number of sections) or
    1-d (indices)."""
    if t.dtype is not _dtype.int64:
        raise RuntimeError("tensor_split expected tensor_indices_or_sections to have dtype of "
                           f"long, but got {_dtype.scalar_name(t.dtype)}")
    if t.ndim > 1:
        raise RuntimeError("tensor_split expected tensor_indices_or_sections to be a "
                           "zero-dimensional or one-dimensional tensor, but got a tensor with "
                           f"{t.ndim} dims")
    return builtins.int(t.item()) if t.ndim == 0 else t.tolist()


@method("tensor_split")
def tensor_split(input: Tensor, indices_or_sections, dim: builtins.int = 0) -> builtins.tuple:
    d = normalize_dim(dim, input.ndim)
    size = input.shape[d]
    if isinstance(indices_or_sections, Tensor):
        indices_or_sections = _split_tensor_arg(indices_or_sections)
    elif not isinstance(indices_or_sections, builtins.int) and not builtins.all(
            isinstance(i, numbers.Integral) for i in indices_or_sections):
        raise TypeError("tensor_split() received an invalid combination of arguments: "
                        "indices must be ints, a long tensor, or an int number of sections")
    if isinstance(indices_or_sections, builtins.int):
        n = indices_or_sections
        if n <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {n}")
        big, rem = divmod(size, n)
        sections = [big + 1] * rem + [big] * (n - rem)
    else:
        bounds = [0] + [builtins.min(builtins.int(i), size) for i in indices_or_sections] + [size]
        sections = [builtins.max(b - a, 0) for a, b in zip(bounds, bounds[1:])]
    return _slices(input, sections, d)  # slices, not a split: PyTorch's grad_fn is SliceBackward0


@method("chunk")
@numpy_names
def chunk(input: Tensor, chunks: builtins.int, dim: builtins.int = 0) -> builtins.tuple:
    """At most `chunks` views of equal size (the last may be smaller) along `dim`."""
    if input.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    size = input.shape[normalize_dim(dim, input.ndim)]
    return split(input, builtins.max(-(-size // chunks), 1), dim)


unbind_op = Op("unbind", lambda x, *, dim: tuple(lax.index_in_dim(x, i, dim, keepdims=False)
                                              for i in range(x.shape[dim])),
               saves=SAVES_NONE, n_out=None)


@method("unbind")
@numpy_names
def unbind(input: Tensor, dim: builtins.int = 0) -> builtins.tuple:
    """Views of each slice along `dim`, that dimension removed."""
    d = normalize_dim(dim, input.ndim)
    if input.shape[d] == 0:
        return ()
    pieces = apply(unbind_op, input, dim=d)
    whole = (("s", None, None, None),) * d
    for i, piece in enumerate(pieces):
        _views.track(piece, input, getitem_op, i, multi=("Unbind", i), spec=whole + (("i", 0),))
    return pieces


def _tensors(name: str, tensors) -> list:
    if isinstance(tensors, Tensor):
        raise TypeError(f"{name}(): argument 'tensors' (position 1) must be tuple of Tensors, "
                        f"not Tensor")
    tensors = list(tensors)
    if not tensors:
        if name == "cat":  # PyTorch's Python layer refuses it first
            raise ValueError("torch.cat(): expected a non-empty list of Tensors")
        raise RuntimeError(f"{name} expects a non-empty TensorList")
    return tensors


cat_op = Op("cat", variadic(lambda xs, *, dim: jnp.concatenate(xs, axis=dim)), promote="common",
            saves=SAVES_NONE)


@numpy_names
def cat(tensors: Sequence[Tensor], dim: builtins.int = 0) -> Tensor:
    """Join tensors along an existing dimension `dim`."""
    tensors = _tensors("cat", tensors)
    ref = tensors[0]
    d = normalize_dim(dim, ref.ndim)
    for k, t in enumerate(tensors):
        if t.ndim != ref.ndim:
            raise RuntimeError(f"Tensors must have same number of dimensions: got {ref.ndim} "
                               f"and {t.ndim}")
        for a in range(ref.ndim):
            if a != d and t.shape[a] != ref.shape[a]:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {d}. "
                                   f"Expected size {ref.shape[a]} but got size {t.shape[a]} for "
                                   f"tensor number {k} in the list.")
    if len(tensors) == 1:
        return tensors[0].clone()
    return apply(cat_op, *tensors, dim=d)


concat = concatenate = cat
stack_op = Op("stack", variadic(lambda xs, *, dim: jnp.stack(xs, axis=dim)), promote="common",
              saves=SAVES_NONE)


@numpy_names
def stack(tensors: Sequence[Tensor], dim: builtins.int = 0) -> Tensor:
    """Join equally shaped tensors along a new dimension `dim`."""
    tensors = _tensors("stack", tensors)
    ref = tensors[0]
    for k, t in enumerate(tensors):
        if t.shape != ref.shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(ref.shape)} at entry 0 and {list(t.shape)} at entry {k}")
    return apply(stack_op, *tensors, dim=normalize_dim(dim, ref.ndim + 1))


def _unfold(x, *, dim, size, step):
    n = (x.shape[dim] - size) // step + 1
    index = (jnp.arange(n)[:, None] * step + jnp.arange(size)[None, :]).reshape(-1)
    windows = jnp.take(x, index, axis=dim)
    windows = windows.reshape(x.shape[:dim] + (n, size) + x.shape[dim + 1:])
    return jnp.moveaxis(windows, dim + 1, -1)


unfold_op = Op("unfold", _unfold, saves=SAVES_NONE)


@method("unfold")
def _unfold_method(self: Tensor, dimension: builtins.int, size: builtins.int,
                   step: builtins.int) -> Tensor:
    """`Tensor.unfold`: the windows of `size` elements every `step` along `dimension`, as a new
    last dimension (a view; overlapping windows are read-only, as PyTorch's)."""
    d = normalize_dim(dimension, self.ndim)
    length = self.shape[d] if self.ndim else 1
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if not 0 <= size <= length:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {length} but size is "
                           f"{size}")
    x = self.reshape(1) if self.ndim == 0 else self
    out = apply(unfold_op, x, dim=d, size=builtins.int(size), step=builtins.int(step))
    out = _views.track(out, x, unfold_op, writable=step >= size, dim=d, size=builtins.int(size),
                       step=builtins.int(step))
    return out if self.ndim else reshape(out, size)  # a 0-d tensor gives shape (size,)


def meshgrid(*tensors, indexing: str | None = None) -> builtins.tuple:
    """Coordinate grids from 1-d tensors: `indexing="ij"` gives shape `(len(t0), len(t1), ...)`,
    `"xy"` swaps the first two (numpy's default). The results are expanded views."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = builtins.tuple(tensors[0])
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the "
                      "indexing argument.", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: '
                         f'{indexing}')
    for t in tensors:
        if t.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but "
                               f"got: {t}")
    lengths = [t.numel() for t in tensors]
    order = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        order[0], order[1] = 1, 0
    shape = [lengths[k] for k in order]
    out = []
    for k, t in enumerate(tensors):
        where = order.index(k)
        sizes = [1] * len(tensors)
        sizes[where] = lengths[k]
        out.append(expand(reshape(t, *sizes), *shape))
    return builtins.tuple(out)


def atleast_1d(input: Tensor) -> Tensor:
    return input.reshape(1) if input.ndim == 0 else input


def atleast_2d(input: Tensor) -> Tensor:
    return input.reshape(1, -1) if input.ndim < 2 else input


def hstack(tensors: Sequence[Tensor]) -> Tensor:
    """Concatenate along dimension 1 (0 for 1-d tensors)."""
    ts = [atleast_1d(t) for t in _tensors("hstack", tensors)]
    return cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors: Sequence[Tensor]) -> Tensor:
    """Concatenate along dimension 0, 1-d tensors as rows."""
    return cat([atleast_2d(t) for t in _tensors("vstack", tensors)], 0)


row_stack = vstack


@attribute("mT")
def _mT(self: Tensor) -> Tensor:  # noqa: N802
    return mT(self)


@attribute("T")
def _T(self: Tensor) -> Tensor:  # noqa: N802
    """The dimensions reversed (PyTorch's `Tensor.T`)."""
    return permute(self, *reversed(range(self.ndim)))


@attribute("_base")
def _base(self: Tensor) -> "Tensor | None":
    """The tensor this one is a view of (PyTorch's `Tensor._base`), or None."""
    return _views.base_of(self)


@method("_is_view")
def _is_view(self: Tensor) -> bool:
    """True when this tensor is a view of another (`_base` is not None)."""
    return _views.base_of(self) is not None


@method("__pos__")
def _pos(self: Tensor) -> Tensor:
    return self
