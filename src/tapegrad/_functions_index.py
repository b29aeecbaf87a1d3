"""Index-based ops: `gather`, `scatter`, `index_select`, `masked_fill`, `nonzero`, ...

Index tensors are checked against the indexed size when their values are already known (never
forcing a computation for it); an index computed lazily and out of range follows XLA's rules
(gathers clamp, scatters drop), as on a GPU where PyTorch cannot check either.
"""
from __future__ import annotations

import builtins

import numpy as np

from . import _dtype, _ops
from ._functions import _as_index_tensor, getitem
from ._record import apply
from ._tensor import Tensor, normalize_dim


def _index(name: str, index) -> Tensor:
    index = index if isinstance(index, Tensor) else _as_index_tensor(index)
    if index.dtype not in (_dtype.int64, _dtype.int32):
        raise RuntimeError(f"{name}(): Expected dtype int32/int64 for index")
    return index


def _check_known(index: Tensor, size: builtins.int, dim: builtins.int, error=IndexError,
                 message: str | None = None) -> None:
    value = index._cell.node.value
    if value is None or index.numel() == 0:
        return
    arr = np.asarray(value)
    bad = arr[(arr < -size) | (arr >= size)]
    if bad.size:
        raise error(message or f"index {bad.flat[0]} is out of bounds for dimension {dim} with "
                               f"size {size}")


def _same_rank(name: str, input: Tensor, index: Tensor) -> None:
    if index.ndim != input.ndim and not (index.ndim <= 1 and input.ndim <= 1):
        raise RuntimeError(f"Index tensor must have the same number of dimensions as "
                           f"{'input' if name == 'gather' else 'self'} tensor")


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
    _check_known(index, input.shape[d] if input.ndim else 1, d, RuntimeError)
    if input.ndim == 0:
        return input.reshape(index.shape) if index.numel() else input.reshape(0)
    if index.shape[:d] + index.shape[d + 1:] != input.shape[:d] + input.shape[d + 1:]:
        input = getitem(input, builtins.tuple(slice(0, s) if a != d else slice(None)
                                              for a, s in enumerate(index.shape)))
    return apply(_ops.gather, input, index, dim=d)


def _scatter(op, name, input: Tensor, dim, index, src) -> Tensor:
    index = _index(name, index)
    _same_rank(name, input, index)
    d = normalize_dim(dim, input.ndim)
    _check_known(index, input.shape[d] if input.ndim else 1, d, RuntimeError)
    if isinstance(src, Tensor):
        if src.dtype is not input.dtype:
            raise RuntimeError(f"{name}(): Expected self.dtype to be equal to src.dtype")
        for a in range(index.ndim):
            if index.shape[a] > src.shape[a]:
                raise RuntimeError(f"Expected index {list(index.shape)} to be smaller than self "
                                   f"{list(input.shape)} apart from dimension {d} and to be "
                                   f"smaller size than src {list(src.shape)}")
    return apply(op, input, index, src, dim=d)


def scatter(input: Tensor, dim: builtins.int, index: Tensor, src=None, *, value=None,
            reduce: str | None = None) -> Tensor:
    """`input` with `src` (or a scalar `value`) written at `index` along `dim` (out of place)."""
    if src is None:
        src = value
    if reduce == "add":
        return scatter_add(input, dim, index, src if isinstance(src, Tensor) else
                           input.new_full(index.shape, src))
    if reduce is not None:
        raise NotImplementedError(f"scatter(reduce={reduce!r}) is not supported; use "
                                  "scatter_add or reduce='add'")
    return _scatter(_ops.scatter, "scatter", input, dim, index, src)


def scatter_add(input: Tensor, dim: builtins.int, index: Tensor, src: Tensor) -> Tensor:
    """`input` with `src` added at `index` along `dim` (repeated indices accumulate)."""
    return _scatter(_ops.scatter_add, "scatter_add", input, dim, index, src)


def index_select(input: Tensor, dim: builtins.int, index: Tensor) -> Tensor:
    """The slices of `input` along `dim` at the positions in the 1-d `index`."""
    index = _index("index_select", index)
    if index.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    d = normalize_dim(dim, input.ndim)
    _check_known(index, input.shape[d] if input.ndim else 1, d, IndexError,
                 "index out of range in self")
    if input.ndim == 0:
        return input.clone()
    return apply(_ops.index_select, input, index.reshape(-1), dim=d)


def index_add(input: Tensor, dim: builtins.int, index: Tensor, source: Tensor, *,
              alpha=1) -> Tensor:
    """`input` with `alpha * source` slices added at `index` along `dim` (out of place)."""
    index = _index("index_add", index)
    if source.dtype is not input.dtype:
        from ._methods import _type_name
        raise RuntimeError(f"index_add_(): self ({_type_name(input.dtype)}) and source "
                           f"({_type_name(source.dtype)}) must have the same scalar type")
    d = normalize_dim(dim, input.ndim)
    _check_known(index, input.shape[d], d, IndexError, "index out of range in self")
    return apply(_ops.index_add, input, index.reshape(-1), source, dim=d, alpha=alpha)


def _mask(name: str, mask) -> Tensor:
    mask = mask if isinstance(mask, Tensor) else _as_index_tensor(mask)
    if mask.dtype is not _dtype.bool:
        raise RuntimeError(f"{name} only supports boolean masks, but got mask with dtype "
                           f"{mask.dtype.name}")
    return mask


def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    """`input` with `value` where `mask` (broadcast to `input`) is true."""
    mask = _mask("masked_fill_", mask)
    if isinstance(value, Tensor) and value.ndim:
        raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got "
                           f"tensor with {value.ndim} dimension(s).")
    out = apply(_ops.masked_fill, input, mask, value)
    if out.shape != input.shape:
        raise RuntimeError(f"output with shape {list(input.shape)} doesn't match the broadcast "
                           f"shape {list(out.shape)}")
    return out


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    """The elements where `mask` is true, as a 1-d tensor (its length depends on the mask)."""
    mask = _mask("masked_select", mask)
    shape = np.broadcast_shapes(input.shape, mask.shape)
    return getitem(input.expand(shape), mask.expand(shape))


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


def take(input: Tensor, index: Tensor) -> Tensor:
    """Elements of the flattened `input` at `index` (the result has `index`'s shape)."""
    index = _index("take", index)
    _check_known(index, input.numel(), 0, IndexError,
                 f"out of range: tried to access index {{}} on a tensor of {input.numel()} "
                 f"elements.")
    return apply(_ops.index_select, input.reshape(-1), index.reshape(-1), dim=0).reshape(index.shape)


def repeat_interleave(input: Tensor, repeats, dim: builtins.int | None = None, *,
                      output_size: builtins.int | None = None) -> Tensor:
    """Repeat each element (each slice along `dim`) `repeats` times, consecutively."""
    from ._factory import tensor
    if dim is None:
        input, dim = input.reshape(-1), 0
    d = normalize_dim(dim, input.ndim)
    counts = np.asarray(repeats._value() if isinstance(repeats, Tensor) else repeats)
    if counts.ndim and counts.shape[0] != input.shape[d]:
        raise RuntimeError("repeats must have the same size as input along dim")
    index = np.repeat(np.arange(input.shape[d]), counts)
    return apply(_ops.index_select, input, tensor(index), dim=d)


def nonzero(input: Tensor, *, as_tuple: builtins.bool = False):
    """The indices of the nonzero elements: an `(n, ndim)` int64 tensor, or one tensor per dim."""
    from ._factory import tensor
    coords = np.nonzero(np.asarray(input._value()).reshape(input.shape or (1,)))
    if as_tuple:
        return builtins.tuple(tensor(c.astype(np.int64)) for c in coords)
    if input.ndim == 0:
        return tensor(np.zeros((len(coords[0]), 0), np.int64))
    return tensor(np.stack(coords, axis=1).astype(np.int64).reshape(-1, input.ndim))


def argwhere(input: Tensor) -> Tensor:
    return nonzero(input)


METHODS = {
    "gather": gather, "scatter": scatter, "scatter_add": scatter_add,
    "index_select": index_select, "index_add": index_add, "masked_fill": masked_fill,
    "masked_select": masked_select, "take_along_dim": take_along_dim, "take": take,
    "nonzero": nonzero, "argwhere": argwhere, "repeat_interleave": repeat_interleave,
}

INPLACE = {"scatter_": scatter, "scatter_add_": scatter_add, "index_add_": index_add,
           "masked_fill_": masked_fill}
