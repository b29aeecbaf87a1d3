"""A view's place in its base's storage, `(storage_offset, strides)`, as PyTorch computes it.

tapegrad's arrays are dense, so strides are bookkeeping: each view step folds the layout of its
input into the layout of its output, with PyTorch's own rule for that step (`RULES`, by op name),
in plain Python on static numbers. That is what `Tensor.stride()`, `storage_offset()` and
`is_contiguous()` report, what decides where `view` must raise and `reshape` must copy, and
where `data_ptr()` and `tapegrad.save` find a view's elements.
"""
from __future__ import annotations

import math


def contiguous_strides(shape) -> tuple:
    """Row-major strides (in elements) of a dense array of this shape."""
    strides, step = [], 1
    for s in reversed(tuple(shape)):
        strides.append(step)
        step *= max(s, 1)
    return tuple(reversed(strides))


def format_name(memory_format) -> str:
    """`"contiguous_format"`, `"channels_last"`, ... for a memory format given as an object
    (tapegrad's or PyTorch's) or None (PyTorch's default, contiguous)."""
    return "contiguous_format" if memory_format is None else str(memory_format).rsplit(".", 1)[-1]


def is_contiguous(shape, strides, memory_format: str = "contiguous_format") -> bool:
    """PyTorch's contiguity test for `memory_format` (`channels_last` for 4-d, `channels_last_3d`
    for 5-d, row-major for `contiguous_format` and `preserve_format`): size-1 dimensions may have
    any stride."""
    if memory_format in ("contiguous_format", "preserve_format"):
        if math.prod(shape) == 0:
            return True
        order = range(len(shape) - 1, -1, -1)
    elif memory_format in ("channels_last", "channels_last_3d"):
        rank = 4 if memory_format == "channels_last" else 5
        if len(shape) != rank:
            return False
        order = (1, 3, 2, 0) if rank == 4 else (1, 4, 3, 2, 0)
    else:
        raise TypeError(f"is_contiguous(): argument 'memory_format' must be torch.memory_format, "
                        f"not {memory_format}")
    expected = 1
    for d in order:
        if shape[d] != 1:
            if strides[d] != expected:
                return False
            expected *= shape[d]
    return True


def may_overlap(shape, strides) -> bool:
    """Whether two indices might reach one element: unless each dimension's stride (smallest
    first) steps over all the elements the smaller ones span, as PyTorch's in-place check."""
    span = 0
    for size, stride in sorted(((s, st) for s, st in zip(shape, strides) if s > 1),
                               key=lambda p: p[1]):
        if stride <= span:
            return True
        span += (size - 1) * stride
    return False


def view_strides(old_shape, old_strides, new_shape):
    """The strides of `new_shape` viewing elements laid out as (`old_shape`, `old_strides`), or
    None where no strides can (a dimension would span two non-adjacent chunks): PyTorch's
    `computeStride`, which decides whether `view` works and `reshape` copies."""
    old_shape, new_shape = tuple(old_shape), tuple(new_shape)
    if not old_shape:
        return (1,) * len(new_shape)
    numel = math.prod(old_shape)
    if numel == 0:
        if old_shape == new_shape:
            return tuple(old_strides)
        return contiguous_strides(new_shape)
    new = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_stride = old_strides[-1]
    tensor_numel = view_numel = 1
    for d in range(len(old_shape) - 1, -1, -1):
        tensor_numel *= old_shape[d]
        # the end of a chunk of dimensions that are contiguous among themselves
        if d == 0 or (old_shape[d - 1] != 1 and old_strides[d - 1] != tensor_numel * chunk_stride):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new[view_d] = view_numel * chunk_stride
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                chunk_stride = old_strides[d - 1]
                tensor_numel = view_numel = 1
    return tuple(new) if view_d == -1 else None


# -- one rule per view op: (shape, strides, offset) of the input -> (strides, offset) of the view --
def _reshape(shape, strides, offset, out_shape, operands, *, shape_, alias=False):
    return view_strides(shape, strides, out_shape), offset


def _transpose(shape, strides, offset, out_shape, operands, *, dim0, dim1):
    s = list(strides)
    s[dim0], s[dim1] = s[dim1], s[dim0]
    return tuple(s), offset


def _t(shape, strides, offset, out_shape, operands):
    return tuple(reversed(strides)), offset


def _permute(shape, strides, offset, out_shape, operands, *, dims):
    return tuple(strides[d] for d in dims), offset


def _expand(shape, strides, offset, out_shape, operands, *, shape_):
    """PyTorch's `inferExpandGeometry`: a broadcast dimension has stride 0; a new leading one of
    size 1 gets the stride it would have if it were dense over the dimensions after it (0 after
    a broadcast one, and everywhere for a 0-d input)."""
    lead = len(out_shape) - len(shape)
    out = [0] * len(out_shape)
    for i in range(len(out_shape) - 1, -1, -1):
        d = i - lead
        size = shape[d] if d >= 0 else 1
        stride = strides[d] if d >= 0 else (
            out_shape[i + 1] * out[i + 1] if i + 1 < len(out_shape) else 0)
        out[i] = 0 if size != out_shape[i] else stride
    return tuple(out), offset


def _squeeze(shape, strides, offset, out_shape, operands, *, dims):
    return tuple(s for d, s in enumerate(strides) if d not in dims), offset


def _unsqueeze_at(shape, strides, dim):
    new = strides[dim] * shape[dim] if dim < len(shape) else 1
    return tuple(shape[:dim]) + (1,) + tuple(shape[dim:]), \
        tuple(strides[:dim]) + (new,) + tuple(strides[dim:])


def _unsqueeze(shape, strides, offset, out_shape, operands, *, dim):
    return _unsqueeze_at(shape, strides, dim)[1], offset


def _slice_at(shape, strides, offset, dim, start, length, step):
    shape, strides = list(shape), list(strides)
    offset += start * strides[dim]
    shape[dim], strides[dim] = length, strides[dim] * step
    return tuple(shape), tuple(strides), offset


def _index(shape, strides, offset, out_shape, operands, *, spec):
    """Basic indexing as PyTorch applies it: one step per entry (`select` for an int, `slice`,
    `unsqueeze` for None), left to right on the result so far (a bool copies, as a tensor)."""
    ellipsis = len(shape) - sum(1 for s in spec if isinstance(s, tuple))  # dims `...` spans
    dim = 0
    for s in spec:
        if s == "...":
            dim += ellipsis
        elif s is None:
            shape, strides = _unsqueeze_at(shape, strides, dim)
            dim += 1
        elif s[0] == "i":
            offset += operands[s[1]] * strides[dim]
            shape, strides = shape[:dim] + shape[dim + 1:], strides[:dim] + strides[dim + 1:]
        elif s[0] == "d":
            _, k, _, span, step = s
            shape, strides, offset = _slice_at(shape, strides, offset, dim, operands[k],
                                               (span - 1) // step + 1, step)
            dim += 1
        else:
            span = range(*slice(*s[1:]).indices(shape[dim]))  # start clamped as PyTorch's
            shape, strides, offset = _slice_at(shape, strides, offset, dim, span.start,
                                               len(span), span.step)
            dim += 1
    return strides, offset


def _diagonal(shape, strides, offset, out_shape, operands, *, offset_, dim1, dim2):
    if out_shape[-1] > 0:
        offset += offset_ * strides[dim2] if offset_ >= 0 else -offset_ * strides[dim1]
    rest = tuple(s for d, s in enumerate(strides) if d not in (dim1, dim2))
    return rest + (strides[dim1] + strides[dim2],), offset


def _unfold(shape, strides, offset, out_shape, operands, *, dim, size, step):
    """`Tensor.unfold`: windows every `step` along `dim`, their elements a new last dimension."""
    s = list(strides)
    s[dim] = strides[dim] * step
    return tuple(s) + (strides[dim],), offset


def _as_strided(shape, strides, offset, out_shape, operands, *, offset_, size, stride):
    return tuple(stride), offset_


RULES = {"reshape": _reshape, "transpose": _transpose, "t": _t, "permute": _permute,
         "expand": _expand, "squeeze": _squeeze, "unsqueeze": _unsqueeze, "index": _index,
         "diagonal": _diagonal, "as_strided": _as_strided, "unfold": _unfold}
_RENAMED = {"shape": "shape_", "offset": "offset_"}  # static names that clash with the rules'


def fold(op_name: str, shape, strides, offset, out_shape, operands, static) -> tuple:
    """The (offset, strides) of a view made by `op_name` from a tensor laid out as
    (`shape`, `strides`, `offset`); strides None where PyTorch could not view (see `reshape`)."""
    kwargs = {_RENAMED.get(k, k): v for k, v in static}
    strides, offset = RULES[op_name](tuple(shape), tuple(strides), offset, tuple(out_shape),
                                     operands, **kwargs)
    return offset, strides
