"""Dimension and shape arguments in PyTorch's conventions (negative dims, `dim=None`, sizes given
as `f(2, 3)` or `f((2, 3))`), checked with PyTorch's messages."""
from __future__ import annotations

import functools


def normalize_dim(dim: int, ndim: int) -> int:
    """`dim` as a non-negative axis of an `ndim`-dimensional tensor (a 0-d tensor has dims 0, -1)."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim % n


def one_dim(dim: int, ndim: int) -> int:
    """The axis one-dimension ops (`cumsum`, `sort`, `argmax(dim)`) work on: 0 for a 0-d tensor,
    which takes `dim` 0 or -1 (others raise, as PyTorch)."""
    return normalize_dim(dim, ndim)


def reduce_dims(dim, ndim: int) -> tuple | None:
    """A reduction's `dim` (an int, a sequence, or None for every dimension) as sorted axes; a
    0-d tensor accepts dim 0 and -1 and has no axis to reduce."""
    if dim is None:
        return None
    if isinstance(dim, (list, tuple)):
        if not dim:  # PyTorch reduces over every dimension for an empty dim list
            return None
        listed = [normalize_dim(d, ndim) for d in dim]
        axes = set(listed)
        if len(axes) < len(listed):
            twice = next(d for i, d in enumerate(listed) if d in listed[:i])
            raise RuntimeError(f"dim {twice} appears multiple times in the list of dims")
    else:
        axes = {normalize_dim(dim, ndim)}
    return tuple(sorted(axes)) if ndim else ()


_NUMPY_NAMES = (("axis", "dim"), ("keepdims", "keepdim"))


def numpy_names(fn):
    """Accept numpy's `axis=` and `keepdims=` for `dim=` and `keepdim=`, as PyTorch's argument
    parser does for every function with those arguments."""
    @functools.wraps(fn)
    def accepting(*args, **kwargs):
        if kwargs:
            for alias, name in _NUMPY_NAMES:
                if alias in kwargs:
                    if name in kwargs:
                        raise TypeError(f"{fn.__name__}() got multiple values for argument "
                                        f"'{name}' (given as '{alias}' too)")
                    kwargs[name] = kwargs.pop(alias)
        return fn(*args, **kwargs)
    return accepting


def shape_arg(size: tuple) -> tuple:
    """Sizes given as varargs or as one sequence (`zeros(2, 3)`, `zeros((2, 3))`) as a tuple."""
    if len(size) == 1 and isinstance(size[0], (list, tuple)):
        size = size[0]
    return tuple(int(s) for s in size)


def new_shape(size: tuple) -> tuple:
    """`shape_arg` for a tensor about to be made: a negative size raises PyTorch's error."""
    return check_new_shape(shape_arg(size))


def check_new_shape(shape: tuple) -> tuple:
    for s in shape:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(shape)}")
    return shape
