"""Shapes and views beyond the core (`squeeze`, `flatten`, `cat`, `split`, `movedim`, ...).

View-producing functions register their result with `_views.track`, so in-place ops through a
view reach the base, as in PyTorch.
"""
from __future__ import annotations

import builtins
import math
from typing import Sequence

from . import _ops, _views
from ._functions import _shape_arg, getitem, permute, reshape, transpose
from ._record import apply
from ._tensor import Tensor, normalize_dim


def _dim_list(dims, ndim: int) -> builtins.tuple:
    if isinstance(dims, builtins.int):
        dims = (dims,)
    return builtins.tuple(normalize_dim(d, ndim) for d in dims)


def squeeze(input: Tensor, dim=None) -> Tensor:
    """Drop size-1 dimensions (all, or those in `dim` that have size 1)."""
    dims = range(input.ndim) if dim is None else _dim_list(dim, input.ndim) if input.ndim else ()
    dims = builtins.tuple(d for d in dims if input.shape[d] == 1)
    return _views.track(apply(_ops.squeeze, input, dims=dims), input, _ops.squeeze, dims=dims)


def unsqueeze(input: Tensor, dim: builtins.int) -> Tensor:
    """Insert a size-1 dimension at `dim` (in `[-ndim-1, ndim]`)."""
    d = normalize_dim(dim, input.ndim + 1)
    return _views.track(apply(_ops.unsqueeze, input, dim=d), input, _ops.unsqueeze, dim=d)


def flatten(input: Tensor, start_dim: builtins.int = 0, end_dim: builtins.int = -1) -> Tensor:
    """Merge dimensions `start_dim..end_dim` into one (a 0-d tensor becomes 1-d)."""
    if input.ndim == 0:
        return reshape(input, 1)
    s, e = normalize_dim(start_dim, input.ndim), normalize_dim(end_dim, input.ndim)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = input.shape
    return reshape(input, *shape[:s], math.prod(shape[s:e + 1]), *shape[e + 1:])


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


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return input.expand(other.shape)


def view_as(input: Tensor, other: Tensor) -> Tensor:
    return input.view(other.shape)


def reshape_as(input: Tensor, other: Tensor) -> Tensor:
    return input.reshape(other.shape)


def repeat(input: Tensor, *sizes) -> Tensor:
    """Tile the tensor `sizes` times along each dimension (`sizes` may add leading dimensions)."""
    reps = _shape_arg(sizes)
    if len(reps) < input.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number "
                           "of dimensions of tensor")
    return apply(_ops.repeat, input, reps=reps)


def tile(input: Tensor, dims) -> Tensor:
    """Like `repeat`, but `dims` shorter than the tensor's rank is padded with ones."""
    dims = builtins.tuple(dims)
    return repeat(input, *((1,) * (input.ndim - len(dims)) + dims))


def flip(input: Tensor, *dims) -> Tensor:
    """Reverse the order of elements along `dims` (a copy, as in PyTorch)."""
    if len(dims) == 1 and not isinstance(dims[0], builtins.int):
        dims = dims[0]
    d = _dim_list(dims, input.ndim)
    return apply(_ops.flip, input, dims=d)


def fliplr(input: Tensor) -> Tensor:
    return flip(input, (1,))


def flipud(input: Tensor) -> Tensor:
    return flip(input, (0,))


def roll(input: Tensor, shifts, dims=None) -> Tensor:
    """Rotate elements along `dims` by `shifts` (the flattened tensor when `dims` is None)."""
    if dims is None:
        return roll(input.reshape(-1), shifts, 0).reshape(input.shape)
    shifts = (shifts,) if isinstance(shifts, builtins.int) else builtins.tuple(shifts)
    dims = _dim_list(dims, input.ndim)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:"
                           f"{len(dims)}")
    return apply(_ops.roll, input, shifts=shifts, dims=dims)


def select(input: Tensor, dim: builtins.int, index: builtins.int) -> Tensor:
    """The slice at `index` along `dim` (a view without that dimension)."""
    d = normalize_dim(dim, input.ndim)
    return getitem(input, (slice(None),) * d + (index,))


def narrow(input: Tensor, dim: builtins.int, start: builtins.int, length: builtins.int) -> Tensor:
    """`length` elements from `start` along `dim` (a view)."""
    d = normalize_dim(dim, input.ndim)
    size = input.shape[d]
    start = builtins.int(start)
    if start < 0:
        start += size
    if not 0 <= start <= size or length < 0 or start + length > size:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    return getitem(input, (slice(None),) * d + (slice(start, start + length),))


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
    op = _ops.split if isinstance(split_size_or_sections, builtins.int) else _ops.split_with_sizes
    sections = builtins.tuple(sections)
    pieces = apply(op, tensor, dim=d, sections=sections)
    whole, start = (("s", None, None, None),) * d, 0
    name = "Split" if op is _ops.split else "SplitWithSizes"
    for k, (piece, s) in enumerate(zip(pieces, sections)):
        _views.track(piece, tensor, _ops.getitem, multi=(name, k),
                     spec=whole + (("s", start, start + s, None),))
        start += s
    return pieces


def _slices(input: Tensor, sections: list, d: builtins.int) -> builtins.tuple:
    out, start = [], 0
    for s in sections:
        out.append(getitem(input, (slice(None),) * d + (slice(start, start + s),)))
        start += s
    return builtins.tuple(out)


def tensor_split(input: Tensor, indices_or_sections, dim: builtins.int = 0) -> builtins.tuple:
    d = normalize_dim(dim, input.ndim)
    size = input.shape[d]
    if isinstance(indices_or_sections, builtins.int):
        n = indices_or_sections
        big, rem = divmod(size, n)
        sections = [big + 1] * rem + [big] * (n - rem)
    else:
        bounds = [0] + [builtins.min(builtins.int(i), size) for i in indices_or_sections] + [size]
        sections = [builtins.max(b - a, 0) for a, b in zip(bounds, bounds[1:])]
    return _slices(input, sections, d)  # slices, not a split: PyTorch's grad_fn is SliceBackward0


def chunk(input: Tensor, chunks: builtins.int, dim: builtins.int = 0) -> builtins.tuple:
    """At most `chunks` views of equal size (the last may be smaller) along `dim`."""
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    size = input.shape[normalize_dim(dim, input.ndim)]
    return split(input, builtins.max(-(-size // chunks), 1), dim)


def unbind(input: Tensor, dim: builtins.int = 0) -> builtins.tuple:
    """Views of each slice along `dim`, that dimension removed."""
    d = normalize_dim(dim, input.ndim)
    if input.shape[d] == 0:
        return ()
    pieces = apply(_ops.unbind, input, dim=d)
    whole = (("s", None, None, None),) * d
    for i, piece in enumerate(pieces):
        _views.track(piece, input, _ops.getitem, i, multi=("Unbind", i), spec=whole + (("i", 0),))
    return pieces


def _tensors(name: str, tensors) -> list:
    if isinstance(tensors, Tensor):
        raise TypeError(f"{name}(): argument 'tensors' (position 1) must be tuple of Tensors, "
                        f"not Tensor")
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"{name}(): expected a non-empty list of Tensors")
    return tensors


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
    return apply(_ops.cat, *tensors, dim=d)


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: builtins.int = 0) -> Tensor:
    """Join equally shaped tensors along a new dimension `dim`."""
    tensors = _tensors("stack", tensors)
    ref = tensors[0]
    for k, t in enumerate(tensors):
        if t.shape != ref.shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(ref.shape)} at entry 0 and {list(t.shape)} at entry {k}")
    return apply(_ops.stack, *tensors, dim=normalize_dim(dim, ref.ndim + 1))


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


def _mT(self):  # noqa: N802
    return mT(self)


def _base(self):
    """The tensor this one is a view of (PyTorch's `Tensor._base`), or None."""
    return _views.base_of(self)


METHODS = {
    "_base": property(_base), "squeeze": squeeze, "unsqueeze": unsqueeze, "flatten": flatten, "unflatten": unflatten,
    "movedim": movedim, "moveaxis": movedim, "expand_as": expand_as, "view_as": view_as,
    "reshape_as": reshape_as, "repeat": repeat, "tile": tile, "flip": flip, "fliplr": fliplr,
    "flipud": flipud, "roll": roll, "select": select, "narrow": narrow, "split": split,
    "tensor_split": tensor_split, "chunk": chunk, "unbind": unbind, "mT": property(_mT),
}

INPLACE: dict = {}
