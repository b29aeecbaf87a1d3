"""Shapes and views: `reshape`/`view`, `transpose`/`permute`, `expand`, `squeeze`, `split`,
`cat`/`stack`, ... Views share storage with their base (see `_tensor.views`).
"""
from __future__ import annotations

import builtins
import itertools
import math
from typing import Sequence

import jax.numpy as jnp
from jax import lax

from .._core import dtype as _dtype
from .._core.dims import check_new_shape, normalize_dim, shape_arg
from .._core.graph import Op, SAVES_NONE
from .._core.rows import variadic
from .._tensor import views as _views
from .._tensor.apply import apply
from .._tensor.methods import attribute, method
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


reshape_op = Op("reshape", lambda x, *, shape: jnp.reshape(x, shape), saves=SAVES_NONE,
                grad_name="ViewBackward0")


@method("reshape")
def reshape(input: Tensor, *shape) -> Tensor:
    """The same elements in a new shape (one dimension may be -1)."""
    shape = _infer_shape(shape_arg(shape), input.numel())
    return _views.track(apply(reshape_op, input, shape=shape), input, reshape_op, shape=shape)


@method("view")
def view(input: Tensor, *shape) -> Tensor:
    """Like `reshape` (tapegrad's values are always contiguous)."""
    if len(shape) == 1 and isinstance(shape[0], _dtype.dtype):
        raise NotImplementedError("view(dtype) reinterprets bytes, which XLA arrays cannot do; "
                                  "use .to(dtype) to convert values")
    return reshape(input, *shape)


transpose_op = Op("transpose", lambda x, *, dim0, dim1: jnp.swapaxes(x, dim0, dim1), saves=SAVES_NONE)


@method("transpose", "swapaxes")
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
def squeeze(input: Tensor, dim=None) -> Tensor:
    """Drop size-1 dimensions (all, or those in `dim` that have size 1)."""
    dims = range(input.ndim) if dim is None else _dim_list(dim, input.ndim) if input.ndim else ()
    dims = builtins.tuple(d for d in dims if input.shape[d] == 1)
    return _views.track(apply(squeeze_op, input, dims=dims), input, squeeze_op, dims=dims)


unsqueeze_op = Op("unsqueeze", lambda x, *, dim: jnp.expand_dims(x, dim), saves=SAVES_NONE)


@method("unsqueeze")
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
    dims = builtins.tuple(dims)
    return repeat(input, *((1,) * (input.ndim - len(dims)) + dims))


flip_op = Op("flip", lambda x, *, dims: jnp.flip(x, dims), saves=SAVES_NONE)


@method("flip")
def flip(input: Tensor, *dims) -> Tensor:
    """Reverse the order of elements along `dims` (a copy, as in PyTorch)."""
    if len(dims) == 1 and not isinstance(dims[0], builtins.int):
        dims = dims[0]
    d = _dim_list(dims, input.ndim)
    return apply(flip_op, input, dims=d)


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
    dims = _dim_list(dims, input.ndim)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:"
                           f"{len(dims)}")
    return apply(roll_op, input, shifts=shifts, dims=dims)


@method("select")
def select(input: Tensor, dim: builtins.int, index: builtins.int) -> Tensor:
    """The slice at `index` along `dim` (a view without that dimension)."""
    d = normalize_dim(dim, input.ndim)
    return getitem(input, (slice(None),) * d + (index,))


@method("narrow")
def narrow(input: Tensor, dim: builtins.int, start: builtins.int, length: builtins.int) -> Tensor:
    """`length` elements from `start` along `dim` (a view)."""
    if input.ndim == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    d = normalize_dim(dim, input.ndim)
    size = input.shape[d]
    start = builtins.int(start)
    if start < 0:
        start += size
    if not 0 <= start <= size or length < 0 or start + length > size:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    return getitem(input, (slice(None),) * d + (slice(start, start + length),))


def _split(x, *, dim, sections):
    bounds = [0, *itertools.accumulate(sections)]
    return tuple(lax.slice_in_dim(x, a, b, axis=dim) for a, b in zip(bounds, bounds[1:]))


# one node for all pieces, as PyTorch (a piece's grad_fn is the split, with its output_nr)
split_op = Op("split", _split, saves=SAVES_NONE, n_out=None)


split_with_sizes_op = Op("split_with_sizes", _split, saves=SAVES_NONE, n_out=None)


@method("split")
def split(tensor: Tensor, split_size_or_sections, dim: builtins.int = 0) -> builtins.tuple:
    """Views of consecutive pieces along `dim`: equal `split_size` pieces, or given `sections`."""
    d = normalize_dim(dim, tensor.ndim)
    size = tensor.shape[d]
    if isinstance(split_size_or_sections, builtins.int):
        step = split_size_or_sections
        if step <= 0:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got "
                               f"dimension size of {size}") if step == 0 and size else \
                ValueError(f"split expects split_size be non-negative, but got split_size={step}")
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


@method("tensor_split")
def tensor_split(input: Tensor, indices_or_sections, dim: builtins.int = 0) -> builtins.tuple:
    d = normalize_dim(dim, input.ndim)
    size = input.shape[d]
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
        raise RuntimeError(f"{name}(): expected a non-empty list of Tensors")
    return tensors


cat_op = Op("cat", variadic(lambda xs, *, dim: jnp.concatenate(xs, axis=dim)), promote="common",
            saves=SAVES_NONE)


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


def stack(tensors: Sequence[Tensor], dim: builtins.int = 0) -> Tensor:
    """Join equally shaped tensors along a new dimension `dim`."""
    tensors = _tensors("stack", tensors)
    ref = tensors[0]
    for k, t in enumerate(tensors):
        if t.shape != ref.shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(ref.shape)} at entry 0 and {list(t.shape)} at entry {k}")
    return apply(stack_op, *tensors, dim=normalize_dim(dim, ref.ndim + 1))


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
