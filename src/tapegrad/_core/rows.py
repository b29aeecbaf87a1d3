"""Builders and jnp helpers shared by registry rows of several topics."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import dtype as _dtype
from .graph import SAVES_NONE, Op


def broadcast_check(*inputs, **static) -> None:
    """PyTorch's message for shapes that do not broadcast."""
    shapes = [i.shape for i in inputs if hasattr(i, "shape")]
    if len(shapes) < 2:
        return
    ndim = max(len(s) for s in shapes)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    for axis in range(ndim):
        sizes = {p[axis] for p in padded} - {1}
        if len(sizes) > 1:
            a, b = (p[axis] for p in padded[:2]) if len(padded) == 2 else sorted(sizes)[:2]
            raise RuntimeError(f"The size of tensor a ({a}) must match the size of tensor b ({b}) "
                               f"at non-singleton dimension {axis}")


def elementwise(name: str, fn, promote: str = "common", saves=SAVES_NONE, **kw) -> Op:
    """A row whose inputs are first cast to the promoted dtype (PyTorch's promotion rules)."""
    def cast_then(*xs, dtype):
        return fn(*(jnp.asarray(x, dtype) for x in xs))
    cast_then.__name__ = name
    dtypes: dict = {}

    def shape(signature, **static):
        """The inputs' broadcast shape (`broadcast_check` has vetted it); the dtype, which no
        shape changes, found by tracing once on 0-d inputs per input dtypes."""
        kinds = tuple(s[1] if isinstance(s, tuple) else s for s in signature)
        key = (kinds, tuple(static.items()))
        dtype = dtypes.get(key)
        if dtype is None:
            probes = [jax.ShapeDtypeStruct((), s[1].np) if isinstance(s, tuple) else s(1)
                      for s in signature]
            with jax.enable_x64(True):
                res = jax.eval_shape(lambda *xs: cast_then(*xs, **static), *probes)
            dtype = dtypes[key] = _dtype.from_numpy_dtype(res.dtype)
        return np.broadcast_shapes(*(s[0] for s in signature if isinstance(s, tuple))), dtype
    return Op(name, cast_then, promote=promote, saves=saves, check=broadcast_check, shape=shape,
              **kw)


def variadic(fn):
    """A row function over any number of inputs cast to the promoted dtype (cat, stack, einsum)."""
    def cast_then(*xs, dtype, **static):
        return fn([jnp.asarray(x, dtype) for x in xs], **static)
    return cast_then


def abs_(x):
    """`|x|` with derivative 0 at 0, PyTorch's `sign(0)` (`jnp.abs`'s is 1 there); real for
    complex `x`, as PyTorch's `abs`."""
    a = jnp.abs(x)
    return jnp.where(x == 0, jnp.zeros_like(a), a)
