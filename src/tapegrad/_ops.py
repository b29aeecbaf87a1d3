"""The op registry: one row per op, a name and a pure jnp function.

`jax.vjp` supplies every derivative, so a row never says how gradients flow; it only says how the
result dtype is found (`promote`) and what the backward needs (`saves`, for PyTorch's in-place
check). Where PyTorch's derivative at a tie differs from the obvious jnp spelling, the row is
written so that `jax.grad` of it gives PyTorch's subgradient (see `relu`, `clamp`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ._graph import SAVES_NONE, SAVES_OUTPUT, Op


def _broadcast_check(*inputs, **static) -> None:
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
    return Op(name, cast_then, promote=promote, saves=saves, check=_broadcast_check, **kw)


def _relu(x):
    return jnp.where(x > 0, x, jnp.zeros_like(x))  # derivative 0 at 0, as PyTorch


def _clamp(x, *bounds, dtype, which):
    # jnp.clip would split the gradient at the bounds; PyTorch passes it through inclusive bounds.
    x, bounds = jnp.asarray(x, dtype), [jnp.asarray(b, dtype) for b in bounds]
    if which in ("min", "both"):
        lo = bounds.pop(0)
        x = jnp.where(x < lo, lo, x)
    if which in ("max", "both"):
        hi = bounds.pop(0)
        x = jnp.where(x > hi, hi, x)
    return x


def _pow(a, b):
    return jnp.power(a, b)


# -- internal -------------------------------------------------------------------------------------
alias = Op("alias", lambda x: x, saves=SAVES_NONE, differentiable=False)
# `new`'s value, with gradients routed to `old` (storage changed behind autograd's back).
rebase = Op("rebase", lambda new, old: new + (old - lax.stop_gradient(old)), saves=SAVES_NONE,
            grad_name="CopySlices")
to_dtype = Op("to_copy", lambda x, *, dtype: x.astype(dtype), saves=SAVES_NONE,
              grad_name="ToCopyBackward0")
clone = Op("clone", lambda x: x, saves=SAVES_NONE)
to_device = Op("to_device", lambda x, *, device: jax.device_put(x, device), saves=SAVES_NONE,
               grad_name="ToCopyBackward0")

fill = Op("fill", lambda x, v: jnp.broadcast_to(jnp.asarray(v, x.dtype), x.shape),
          saves=SAVES_NONE)
copy = Op("copy", lambda x, src, *, dtype: jnp.broadcast_to(src.astype(dtype), x.shape),
          saves=SAVES_NONE, grad_name="CopyBackwards")

# -- arithmetic -----------------------------------------------------------------------------------
add = elementwise("add", jnp.add)
sub = elementwise("sub", jnp.subtract)
mul = elementwise("mul", jnp.multiply, saves="all")
div = elementwise("div", jnp.true_divide, promote="float", saves="all")
floor_divide = elementwise("floor_divide", jnp.floor_divide, differentiable=False)
remainder = elementwise("remainder", jnp.remainder, saves="all")
pow = elementwise("pow", _pow, saves="all")  # noqa: A001
neg = elementwise("neg", jnp.negative)
trunc = elementwise("trunc", jnp.trunc)
maximum = elementwise("maximum", jnp.maximum, saves="all")
minimum = elementwise("minimum", jnp.minimum, saves="all")

# -- elementwise math -----------------------------------------------------------------------------
exp = elementwise("exp", jnp.exp, promote="float", saves=SAVES_OUTPUT)
log = elementwise("log", jnp.log, promote="float", saves="all")
sqrt = elementwise("sqrt", jnp.sqrt, promote="float", saves=SAVES_OUTPUT)
sin = elementwise("sin", jnp.sin, promote="float", saves="all")
cos = elementwise("cos", jnp.cos, promote="float", saves="all")
tanh = elementwise("tanh", jnp.tanh, promote="float", saves=SAVES_OUTPUT)
sigmoid = elementwise("sigmoid", jax.nn.sigmoid, promote="float", saves=SAVES_OUTPUT)
relu = elementwise("relu", _relu, saves=SAVES_OUTPUT)
abs = elementwise("abs", jnp.abs, saves="all")  # noqa: A001
clamp = Op("clamp", _clamp, promote="common", saves=(0,), check=_broadcast_check)

# -- comparisons (no gradient) --------------------------------------------------------------------
eq = elementwise("eq", jnp.equal, differentiable=False)
ne = elementwise("ne", jnp.not_equal, differentiable=False)
lt = elementwise("lt", jnp.less, differentiable=False)
le = elementwise("le", jnp.less_equal, differentiable=False)
gt = elementwise("gt", jnp.greater, differentiable=False)
ge = elementwise("ge", jnp.greater_equal, differentiable=False)

# -- reductions -----------------------------------------------------------------------------------
sum = Op("sum", lambda x, *, dim, keepdim, dtype=None: jnp.sum(x, axis=dim, keepdims=keepdim,  # noqa: A001
                                                           dtype=dtype), saves=SAVES_NONE)
mean = Op("mean", lambda x, *, dim, keepdim: jnp.mean(x, axis=dim, keepdims=keepdim),
          saves=SAVES_NONE)

# -- shape ----------------------------------------------------------------------------------------
reshape = Op("reshape", lambda x, *, shape: jnp.reshape(x, shape), saves=SAVES_NONE,
             grad_name="ViewBackward0")
transpose = Op("transpose", lambda x, *, dim0, dim1: jnp.swapaxes(x, dim0, dim1), saves=SAVES_NONE)
permute = Op("permute", lambda x, *, dims: jnp.transpose(x, dims), saves=SAVES_NONE)
expand = Op("expand", lambda x, *, shape: jnp.broadcast_to(x, shape), saves=SAVES_NONE)

# -- linear algebra -------------------------------------------------------------------------------


def _matmul_check(a, b, **static) -> None:
    sa, sb = a.shape, b.shape
    if not sa or not sb:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are "
                           f"{len(sa)}D and {len(sb)}D")
    k_a = sa[-1]
    k_b = sb[0] if len(sb) == 1 else sb[-2]
    if k_a != k_b:
        if len(sa) == 2 and len(sb) == 2:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied "
                               f"({sa[0]}x{sa[1]} and {sb[0]}x{sb[1]})")
        raise RuntimeError(f"size mismatch, got input ({'x'.join(map(str, sa))}) and "
                           f"other ({'x'.join(map(str, sb))}): inner dimensions {k_a} and {k_b} differ")


matmul = Op("matmul", lambda a, b, *, dtype: jnp.matmul(a.astype(dtype), b.astype(dtype)),
            promote="common", check=_matmul_check, grad_name="MmBackward0")


# -- indexing -------------------------------------------------------------------------------------
def build_index(spec, tensors):
    """Rebuild an index from its static `spec` with ("t", k) marking the k-th tensor index."""
    out = []
    for s in spec:
        if isinstance(s, tuple) and s[0] == "t":
            out.append(tensors[s[1]])
        elif isinstance(s, tuple) and s[0] == "s":
            out.append(slice(*s[1:]))
        elif s == "...":
            out.append(Ellipsis)
        else:
            out.append(s)
    return tuple(out)


getitem = Op("index", lambda x, *ts, spec: x[build_index(spec, ts)], saves=SAVES_NONE)
setitem = Op("index_put", lambda x, v, *ts, spec: x.at[build_index(spec, ts)].set(v.astype(x.dtype)),
             saves=SAVES_NONE, grad_name="IndexPutBackward0")
