"""The registry rows the engine itself records: aliases, rebases after a write behind autograd's
back, dtype conversions (`Tensor.to`, and the casts autocast inserts), filled values (the
implicit gradient, `zeros`) and writes through views. Every other row lives beside its
function, in `_functions/` and `nn/`.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from .graph import SAVES_NONE, Op

alias_op = Op("alias", lambda x: x, saves=SAVES_NONE, differentiable=False)
# `new`'s value, with gradients routed to `old` (storage changed behind autograd's back).
rebase_op = Op("rebase", lambda new, old: new + (old - lax.stop_gradient(old)), saves=SAVES_NONE,
               grad_name="CopySlices")
to_dtype_op = Op("to_copy", lambda x, *, dtype: x.astype(dtype), saves=SAVES_NONE,
                 grad_name="ToCopyBackward0")
# No array inputs: computed with whatever first needs the value. The fill value is an input (a
# new one reuses the program); the shape and dtype are static.
full_op = Op("full", lambda fill, *, shape, dtype: jnp.full(shape, fill, dtype), saves=SAVES_NONE,
             differentiable=False)


def _view_scatter(base, new_view, *operands, steps):
    """`base` with the elements a view reads replaced by `new_view` (an in-place op on a view).

    The view's steps run on the flat positions of `base`, which tells where each view element
    lives; a reshape-only view is just reshaped back.
    """
    new_view = new_view.astype(base.dtype)
    if all(op.name == "reshape" for op, _, _ in steps):
        return new_view.reshape(base.shape)
    pos = jnp.arange(base.size).reshape(base.shape)
    i = 0
    for op, n, static in steps:
        pos = op.fn(pos, *operands[i:i + n], **dict(static))
        i += n
    flat = base.reshape(-1).at[pos.reshape(-1)].set(new_view.reshape(-1), unique_indices=True)
    return flat.reshape(base.shape)


view_scatter_op = Op("view_scatter", _view_scatter, saves=SAVES_NONE, grad_name="CopySlices")


def _as_strided(base, *, offset, size, stride):
    """The elements of `base`, read as a flat storage, at `offset + sum(index * stride)`
    (`Tensor.as_strided`, and a tensor that a checkpoint stores as a strided view of a storage
    it shares with others); the gradient sums where elements are read more than once."""
    index = jnp.full(size, offset, jnp.int64)
    for d, st in enumerate(stride):
        index = index + lax.broadcasted_iota(jnp.int64, size, d) * st
    return base.reshape(-1)[index]


as_strided_op = Op("as_strided", _as_strided, saves=SAVES_NONE, grad_name="AsStridedBackward0")
