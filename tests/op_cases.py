"""Test cases for the op registry: each registry row name maps to programs that record it.

`test_ops_registry.py` runs every case in float32 and float64, compares the forward value and the
gradient (for a random cotangent) with `jax.vjp` of the jnp reference program, checks that the
program really records the row, and fails if a differentiable row has no case. Other modules may
add cases for their own rows in `tests/op_cases_<topic>.py` with a `CASES` dict of the same form.

Inputs: `F(shape)` a float leaf (differentiated), optionally seen through a non-contiguous view
(`view="t"`: a transposed leaf, `view="s"`: every other row of a taller leaf); `A(values)` a float
leaf with fixed values (for ties); `I(values)` / `B(values)` integer / bool constants.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import tapegrad as tg
from tapegrad._functions.conversion import to_device_op
from tapegrad.distributed._sharding import shard_op
from tapegrad._tensor.apply import apply


class F(NamedTuple):
    shape: tuple
    lo: float = -2.0
    hi: float = 2.0
    view: str | None = None


class A(NamedTuple):
    values: object


class I(NamedTuple):  # noqa: E742
    values: object


class B(NamedTuple):
    values: object


class Case(NamedTuple):
    fn: Callable          # tapegrad program over tensors
    ref: Callable         # jnp program over arrays (the reference)
    inputs: tuple
    name: str = ""
    grad: bool = True     # differentiate (False for rows without a derivative)
    tol: float = 1.0      # tolerance multiplier (linear algebra in float32)


CASES: dict = {}


def case(op: str, fn, ref, *inputs, **kw) -> None:
    CASES.setdefault(op, []).append(Case(fn, ref, inputs, **kw))


# -- elementwise ----------------------------------------------------------------------------------
UNARY = [  # (row, tapegrad fn, jnp reference, domain)
    ("exp", tg.exp, jnp.exp, (-2, 2)), ("log", tg.log, jnp.log, (0.5, 2)),
    ("sqrt", tg.sqrt, jnp.sqrt, (0.5, 2)), ("sin", tg.sin, jnp.sin, (-2, 2)),
    ("cos", tg.cos, jnp.cos, (-2, 2)), ("tanh", tg.tanh, jnp.tanh, (-2, 2)),
    ("sigmoid", tg.sigmoid, lambda x: 1 / (1 + jnp.exp(-x)), (-2, 2)),
    ("expm1", tg.expm1, jnp.expm1, (-2, 2)), ("log1p", tg.log1p, jnp.log1p, (-0.5, 2)),
    ("log2", tg.log2, jnp.log2, (0.5, 2)), ("log10", tg.log10, jnp.log10, (0.5, 2)),
    ("rsqrt", tg.rsqrt, lambda x: 1 / jnp.sqrt(x), (0.5, 2)), ("tan", tg.tan, jnp.tan, (-1, 1)),
    ("asin", tg.asin, jnp.arcsin, (-0.9, 0.9)), ("acos", tg.acos, jnp.arccos, (-0.9, 0.9)),
    ("atan", tg.atan, jnp.arctan, (-2, 2)), ("sinh", tg.sinh, jnp.sinh, (-2, 2)),
    ("cosh", tg.cosh, jnp.cosh, (-2, 2)), ("erf", tg.erf, jax.scipy.special.erf, (-2, 2)),
    ("erfinv", tg.erfinv, jax.scipy.special.erfinv, (-0.9, 0.9)),
    ("reciprocal", tg.reciprocal, lambda x: 1 / x, (0.5, 2)),
    ("square", tg.square, lambda x: x * x, (-2, 2)), ("neg", tg.neg, lambda x: -x, (-2, 2)),
    ("abs", tg.abs, jnp.abs, (-2, 2)), ("relu", tg.relu, jax.nn.relu, (-2, 2)),
    ("sign", tg.sign, jnp.sign, (-2, 2)), ("floor", tg.floor, jnp.floor, (-2, 2)),
    ("ceil", tg.ceil, jnp.ceil, (-2, 2)), ("round", tg.round, jnp.round, (-2, 2)),
    ("trunc", tg.trunc, jnp.trunc, (-2, 2)), ("frac", tg.frac, lambda x: jnp.sign(x) * (jnp.abs(x) - jnp.floor(jnp.abs(x))), (-2, 2)),
]


def _pair(fn):
    """`fn` on a 0-d input plus `fn` on a transposed view with a size-1 dim: one program, so one
    compile covers both shapes (the 0-d result broadcasts, so its gradient is also summed)."""
    return lambda a, b: fn(a) + fn(b)


for _name, _fn, _ref, (_lo, _hi) in UNARY:
    case(_name, _pair(_fn), _pair(_ref), F((), _lo, _hi), F((2, 1, 3), _lo, _hi, view="t"))


def _quad(fn):
    """`fn` broadcasting `(3, 4)` with `(4,)`, plus `fn` of a 0-d and a strided view."""
    return lambda a, b, c, d: fn(a, b) + fn(c, d)


BINARY = [
    ("add", lambda a, b: a + b, jnp.add, None), ("sub", lambda a, b: a - b, jnp.subtract, None),
    ("mul", lambda a, b: a * b, jnp.multiply, None),
    ("div", lambda a, b: a / b, jnp.divide, (0.5, 2)),
    ("pow", lambda a, b: a ** b, jnp.power, (0.5, 2)),
    ("maximum", tg.maximum, jnp.maximum, None), ("minimum", tg.minimum, jnp.minimum, None),
    ("atan2", tg.atan2, jnp.arctan2, None), ("logaddexp", tg.logaddexp, jnp.logaddexp, None),
    ("fmod", tg.fmod, lambda a, b: a - b * jnp.trunc(a / b), (0.5, 2)),
    ("remainder", tg.remainder, lambda a, b: a - b * jnp.floor(a / b), (0.5, 2)),
]
for _name, _fn, _ref, _dom in BINARY:
    _lo, _hi = _dom or (-2.0, 2.0)
    case(_name, _quad(_fn), _quad(_ref), F((3, 4), _lo, _hi), F((4,), _lo, _hi), F((), _lo, _hi),
         F((3, 4), _lo, _hi, view="s"))
case("add", lambda a: 2.5 + a - 1, lambda a: 2.5 + a - 1, F((3,)), name="python_scalars")
case("mul", lambda a, b: a * b, jnp.multiply, F((2, 1, 3)), F((1, 4, 1)), name="outer_broadcast")
case("lerp", tg.lerp, lambda a, b, w: a + w * (b - a), F((3, 4)), F((4,)), F((3, 1), 0, 1))
case("lerp", lambda a, b: tg.lerp(a, b, 0.25), lambda a, b: a + 0.25 * (b - a), F(()), F((3,)))
case("where", lambda c, a, b: tg.where(c, a, b), jnp.where,
     B([[True, False, True, False]] * 3), F((3, 4)), F((4,)))
case("where", lambda c, a: tg.where(c, a, 0.0), lambda c, a: jnp.where(c, a, 0.0),
     B([True, False, True]), F((2, 3), view="s"))
case("clamp", lambda a: a.clamp(-0.5, 0.5), lambda a: jnp.clip(a, -0.5, 0.5), F((3, 4)))
case("clamp", lambda a, lo, hi: tg.clamp(a, lo, hi), lambda a, lo, hi: jnp.minimum(
    jnp.maximum(a, lo), hi), F((3, 4)), F((4,), -2, -0.5), F((3, 1), 0.5, 2))
case("nan_to_num", lambda a: tg.nan_to_num(a * 1, nan=0.5, posinf=9.0),
     lambda a: jnp.nan_to_num(a, nan=0.5, posinf=9.0, neginf=float(jnp.finfo(a.dtype).min)),
     A([1.0, np.nan, np.inf, -np.inf, -2.0]))
for _name, _fn, _ref in [("eq", tg.eq, jnp.equal), ("ne", tg.ne, jnp.not_equal),
                         ("lt", tg.lt, jnp.less), ("le", tg.le, jnp.less_equal),
                         ("gt", tg.gt, jnp.greater), ("ge", tg.ge, jnp.greater_equal),
                         ("floor_divide", tg.floor_divide, jnp.floor_divide)]:
    case(_name, _fn, _ref, A([[1.0, 2.0, -3.0], [2.0, 2.0, 2.5]]), A([2.0, 2.0, -1.0]), grad=False)
_bools = (B([[True, False], [False, False]]), B([True, True]))
for _name, _fn, _ref in [("logical_and", tg.logical_and, jnp.logical_and),
                         ("logical_or", tg.logical_or, jnp.logical_or),
                         ("logical_xor", tg.logical_xor, jnp.logical_xor),
                         ("bitwise_and", lambda a, b: a & b, jnp.logical_and),
                         ("bitwise_or", lambda a, b: a | b, jnp.logical_or),
                         ("bitwise_xor", lambda a, b: a ^ b, jnp.logical_xor)]:
    case(_name, _fn, _ref, *_bools, grad=False)
case("bitwise_and", lambda a, b: a & b, jnp.bitwise_and, I([12, 5, -3]), I([10, 4, 7]),
     grad=False, name="int")
case("logical_not", tg.logical_not, jnp.logical_not, B([True, False]), grad=False)
case("bitwise_not", lambda a: ~a, jnp.invert, I([0, 5, -3]), grad=False)
_special = A([1.0, np.nan, np.inf, -np.inf, 0.0])
case("isnan", tg.isnan, jnp.isnan, _special, grad=False)
case("isinf", tg.isinf, jnp.isinf, _special, grad=False)
case("isfinite", tg.isfinite, jnp.isfinite, _special, grad=False)

# ties: PyTorch's subgradients, spelled out in the reference
case("relu", tg.relu, lambda x: jnp.where(x > 0, x, 0.0), A([-1.0, 0.0, 2.0]), name="tie_at_0")
case("abs", tg.abs, lambda x: jnp.where(x > 0, x, jnp.where(x < 0, -x, 0.0 * x)),
     A([-1.0, 0.0, 2.0]), name="tie_at_0")
case("clamp", lambda x: x.clamp(0.5, 1.5), lambda x: jnp.where((x >= 0.5) & (x <= 1.5), x,
                                                               jnp.clip(x, 0.5, 1.5)),
     A([0.0, 0.5, 1.0, 1.5, 2.0]), name="at_bounds")
case("maximum", tg.maximum, lambda a, b: jnp.where(a > b, a, jnp.where(a < b, b, (a + b) / 2)),
     A([1.0, 2.0, 3.0]), A([1.0, 0.0, 3.0]), name="ties_split")

# -- reductions -----------------------------------------------------------------------------------
case("sum", lambda a: a.sum((0, 2), keepdim=True), lambda a: a.sum((0, 2), keepdims=True),
     F((2, 3, 2), view="t"))
case("sum", lambda a: a.sum(), jnp.sum, F(()))
case("mean", lambda a: a.mean(-1), lambda a: a.mean(-1), F((3, 4), view="s"))
case("prod", lambda a: a.prod(1), lambda a: jnp.prod(a, 1), F((3, 4), view="t"))
case("prod", tg.prod, jnp.prod, A([2.0, 0.0, 3.0]), name="with_zero")
case("var", lambda a: a.var(1), lambda a: jnp.var(a, 1, ddof=1), F((3, 4)))
case("var", lambda a: tg.var(a, (0, 1), correction=0, keepdim=True),
     lambda a: jnp.var(a, (0, 1), keepdims=True), F((3, 4), view="t"))
case("std", lambda a: a.std(), lambda a: jnp.std(a, ddof=1), F((3, 4)))
case("std", lambda a: a.std(0, unbiased=False), lambda a: jnp.std(a, 0), F((3, 2)))
case("amax", lambda a: a.amax(1), lambda a: a.max(1), F((3, 4), view="t"))
case("amax", lambda a: a.amax(), jnp.max, A([1.0, 3.0, 3.0, -1.0]), name="ties_share")
case("max", lambda a: a.max(), jnp.max, A([[1.0, 3.0], [3.0, -1.0]]), name="ties_share")
case("max", lambda a: a.max(), jnp.max, F((2, 3), view="t"))
case("max", lambda a: a.max(), jnp.max, F(()), name="0-d")
case("amax", lambda a: a.amax((0, 1), keepdim=True), lambda a: a.max((0, 1), keepdims=True),
     A([[2.0, 1.0], [2.0, 0.0]]), name="ties_dims")
case("amin", lambda a: a.amin(0), lambda a: a.min(0), A([[1.0, 0.0], [1.0, 2.0]]))
case("amin", lambda a: a.amin(), jnp.min, F((2, 3)))
case("min", lambda a: a.min(), jnp.min, A([-1.0, 2.0, -1.0]), name="ties_share")
case("min", lambda a: a.min(), jnp.min, F((3,)))
case("min", lambda a: a.min(), jnp.min, F(()), name="0-d")


def _first_index_select(x, idx, axis):
    """Values at `idx` along `axis` by a one-hot mask: the gradient reaches only that index."""
    hot = jax.nn.one_hot(idx, x.shape[axis], axis=axis, dtype=x.dtype)
    return jnp.sum(x * hot, axis=axis)


case("max_dim", lambda a: a.max(1).values, lambda a: _first_index_select(a, a.argmax(1), 1),
     A([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]), name="ties_to_first")
case("max_dim", lambda a: tg.max(a, 0, keepdim=True)[0],
     lambda a: a.max(0, keepdims=True), F((3, 4), view="t"))
case("min_dim", lambda a: a.min(-1).values, lambda a: _first_index_select(a, a.argmin(-1), 1),
     A([[1.0, 0.0, 0.0], [2.0, 2.0, 5.0]]), name="ties_to_first")
case("kthvalue", lambda a: a.kthvalue(2, 1).values, lambda a: jnp.sort(a, 1)[:, 1], F((3, 4)))
case("median", lambda a: a.median(), lambda a: jnp.sort(a.ravel())[(a.size - 1) // 2],
     F((2, 3)), name="median_lower")
# the median of all elements shares its gradient among the elements equal to it, as PyTorch
case("median", tg.median, lambda a: jnp.mean(a[jnp.array([0, 1, 3])]),
     A([2.0, 2.0, 1.0, 2.0, 3.0]), name="ties_share")
case("kthvalue", lambda a: a.median(0).values, lambda a: jnp.sort(a, 0)[1], F((4, 3), view="s"))
case("argmax", lambda a: a.argmax(), jnp.argmax, A([[1.0, 5.0], [5.0, 0.0]]), grad=False)
case("argmax", lambda a: a.argmax(1, keepdim=True), lambda a: a.argmax(1, keepdims=True),
     F((3, 4)), grad=False)
case("argmin", lambda a: a.argmin(0), lambda a: a.argmin(0), F((3, 4)), grad=False)
case("vector_norm", lambda a: a.norm(), jnp.linalg.norm, F((3, 4), view="t"))
case("vector_norm", lambda a: tg.linalg.vector_norm(a, 1, dim=1),
     lambda a: jnp.abs(a).sum(1), F((3, 4)))
case("vector_norm", lambda a: tg.norm(a, 3, dim=0, keepdim=True),
     lambda a: (jnp.abs(a) ** 3).sum(0, keepdims=True) ** (1 / 3), F((3, 4)))
case("vector_norm", lambda a: tg.linalg.vector_norm(a, float("inf")),
     lambda a: jnp.abs(a).max(), A([1.0, -3.0, 3.0]), name="inf_ties")
case("vector_norm", lambda a: a.norm(), lambda a: jnp.where(jnp.all(a == 0), 0.0, jnp.linalg.norm(
    jnp.where(jnp.all(a == 0), 1.0, a))), A([0.0, 0.0, 0.0]), name="at_zero")
case("logsumexp", lambda a: a.logsumexp(1), lambda a: jnp.log(jnp.exp(a).sum(1)),
     F((3, 4), view="s"))
case("cumsum", lambda a: a.cumsum(0), lambda a: jnp.cumsum(a, 0), F((3, 4), view="t"))
case("cumprod", lambda a: a.cumprod(-1), lambda a: jnp.cumprod(a, -1), F((3, 4)))
case("cumprod", lambda a: a.cumprod(0), lambda a: jnp.cumprod(a, 0), A([2.0, 0.0, 3.0, 0.5]),
     name="with_zero")
case("all", lambda a: (a > 0).all(1), lambda a: (a > 0).all(1), F((3, 4)), grad=False)
case("any", lambda a: (a > 0).any(), lambda a: (a > 0).any(), F((3, 4)), grad=False)
case("count_nonzero", lambda a: tg.count_nonzero(a, 0), lambda a: jnp.count_nonzero(a, 0),
     A([[0.0, 1.0], [2.0, 0.0], [3.0, 0.0]]), grad=False)

# -- shape ----------------------------------------------------------------------------------------
case("reshape", lambda a: a.reshape(2, 1, 6), lambda a: a.reshape(2, 1, 6), F((2, 6), view="t"))
case("unsafe_view", lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1), F((2, 6), view="t"))
case("as_strided", lambda a: a.as_strided((3, 3), (2, 1), 1),  # overlapping: gradients sum
     lambda a: jnp.stack([a.reshape(-1)[1 + 2 * i:4 + 2 * i] for i in range(3)]), F((2, 4)))
case("reshape", lambda a: a.flatten(1), lambda a: a.reshape(2, -1), F((2, 3, 2)))
case("reshape", lambda a: a.unflatten(1, (2, 3)), lambda a: a.reshape(2, 2, 3), F((2, 6)))
case("transpose", lambda a: a.transpose(0, 2), lambda a: jnp.swapaxes(a, 0, 2), F((2, 3, 1)))
case("transpose", lambda a: a.mT, lambda a: jnp.swapaxes(a, -1, -2), F((2, 3, 4), view="s"))
case("t", lambda a: a.t(), jnp.transpose, F((2, 3), view="s"))
case("t", tg.t, lambda a: a, F((3,)))
case("permute", lambda a: a.permute(2, 0, 1), lambda a: jnp.transpose(a, (2, 0, 1)), F((2, 3, 4)))
case("permute", lambda a: a.movedim(0, -1), lambda a: jnp.moveaxis(a, 0, -1), F((2, 3, 4)))
case("permute", lambda a: a.T, lambda a: a.T, F((2, 3)))
case("expand", lambda a: a.expand(2, 3, 4), lambda a: jnp.broadcast_to(a, (2, 3, 4)), F((3, 1)))
case("expand", lambda a, b: a.expand_as(b) + 0 * b, lambda a, b: jnp.broadcast_to(a, b.shape) + 0 * b,
     F(()), F((2, 2)))
case("squeeze", lambda a: a.squeeze(), jnp.squeeze, F((2, 1, 3, 1)))
case("squeeze", lambda a: a.squeeze((1, 2)), lambda a: a[:, 0], F((2, 1, 3)))
case("unsqueeze", lambda a: a.unsqueeze(-1), lambda a: a[..., None], F((2, 3), view="t"))
case("flip", lambda a: a.flip(0, 1), lambda a: a[::-1, ::-1],
     F((3, 4)))
case("roll", lambda a: a.roll(1, 1), lambda a: jnp.roll(a, 1, 1), F((3, 4), view="s"))
case("flip", lambda a: tg.flip(a, [-1]), lambda a: a[..., ::-1], F((2, 3), view="t"))
case("roll", lambda a: a.roll(-2), lambda a: jnp.roll(a.ravel(), -2).reshape(a.shape), F((3, 2)))
case("repeat", lambda a: a.repeat(2, 1, 3), lambda a: jnp.tile(a, (2, 1, 3)), F((2, 2)))
case("repeat", lambda a: a.tile((2,)), lambda a: jnp.tile(a, (1, 2)), F((2, 2), view="t"))
case("cat", lambda a, b: tg.cat([a, b], 1), lambda a, b: jnp.concatenate([a, b], 1),
     F((2, 3)), F((2, 1), view="t"))
case("cat", lambda a, b: tg.vstack([a, b]), lambda a, b: jnp.vstack([a, b]), F((3,)), F((2, 3)))
case("cat", lambda a, b: tg.hstack([a, b]), lambda a, b: jnp.hstack([a, b]), F((3,)), F((2,)))
case("stack", lambda a, b: tg.stack([a, b], -1), lambda a, b: jnp.stack([a, b], -1),
     F((2, 3)), F((2, 3), view="s"))
case("index", lambda a: a[1:, ::2], lambda a: a[1:, ::2], F((3, 4)))
case("index", lambda a: a[-1, None, ..., 0], lambda a: a[-1, None, ..., 0], F((2, 3, 2)))
case("index", lambda a: a[True, 1:], lambda a: a[True, 1:], F((3, 4)), name="bool_scalar")
case("index", lambda a: tg.stack(a.split([1, 2], 1)[1].unbind(1)) + a.narrow(0, 1, 1).sum()
     + tg.cat(a.chunk(2, 0)).sum(),
     lambda a: jnp.stack([a[:, 1], a[:, 2]]) + a[1:2].sum() + a.sum(), F((3, 3)))
case("split", lambda a: (lambda p: p[0] * 2 + p[1] * 3)(a.split(2, 1)),
     lambda a: a[:, :2] * 2 + a[:, 2:] * 3, F((3, 4), view="t"))
case("split", lambda a: a.chunk(2)[1], lambda a: a[2:], F((3, 2)), name="uneven_unused")
case("split_with_sizes", lambda a: (lambda p: p[1] * p[0])(a.split([1, 2], 1)),
     lambda a: a[:, 1:] * a[:, :1], F((3, 3)))
case("unbind", lambda a: (lambda p: p[0] * 2 + p[2])(a.unbind(1)),
     lambda a: a[:, 0] * 2 + a[:, 2], F((3, 3), view="t"))
case("unbind", lambda a: (lambda p: p[1] * p[2])(a.unbind()), lambda a: a[1] * a[2], F((3,)),
     name="to_0d")
case("index", lambda a, i: a[i], lambda a, i: a[i], F((4, 3)), I([[0, 3], [3, 3]]),
     name="int_tensor")
case("index", lambda a, i: a[:, i, 1], lambda a, i: a[:, i, 1], F((2, 4, 3)), I([2, -1]),
     name="int_tensor_mid")
case("index", lambda a, i: a[1, :, i], lambda a, i: a[1][:, i], F((2, 4, 3)), I([[2, 0]]),
     name="int_then_tensor")  # PyTorch selects with the int first: i's dims stay in place
case("index", lambda a, m: a[m], lambda a, m: a[np.asarray(m)], F((2, 3)),
     B([[True, False, True], [False, False, True]]), name="bool_mask")
case("index", lambda a, m: a.masked_select(m), lambda a, m: a[np.broadcast_to(np.asarray(m),
                                                                               a.shape)],
     F((2, 3)), B([True, False, True]), name="masked_select")


def _set_row(a, v):
    out = a.clone()
    out[0, 1:] = v
    return out


case("index_put", _set_row, lambda a, v: a.at[0, 1:].set(v), F((2, 3)), F((2,)))
case("clone", lambda a: a.clone(), lambda a: a, F((2, 3)))
case("to_copy", lambda a: a.float().double(), lambda a: a.astype(jnp.float32).astype(jnp.float64),
     F((2, 3)))
case("to_device", lambda a: apply(to_device_op, a, device=jax.devices()[0]), lambda a: a,
     F((3,)))
case("fill", lambda a: (a * 1).fill_(2.0), lambda a: jnp.full_like(a, 2.0), F((2, 3)))
case("copy", lambda a, b: (a * 1).copy_(b), lambda a, b: jnp.broadcast_to(b, a.shape) + 0 * a,
     F((2, 3)), F((3,)))


def _modify_through_alias(a):
    z = a * 1
    z.detach().add_(1.0)  # storage changed behind autograd's back: gradients go to the old value
    return z * 2


case("rebase", _modify_through_alias,
     lambda a: 2 * (a + jax.lax.stop_gradient(a * 1 + 1.0 - a)), F((2, 3)))


def _mul_view_row(a, b):
    z = a * 1
    z[:, 1].mul_(b)
    z.view(-1)[:2].add_(1.0)
    return z


case("view_scatter", _mul_view_row,
     lambda a, b: a.at[:, 1].multiply(b).reshape(-1).at[:2].add(1.0).reshape(a.shape),
     F((3, 3)), F((3,)))

# -- indexing -------------------------------------------------------------------------------------
_IDX = I([[0, 2, 2], [1, 0, 1]])
case("gather", lambda a, i: a.gather(1, i), lambda a, i: jnp.take_along_axis(a, i, 1),
     F((2, 4), view="t"), _IDX)
case("gather", lambda a, i: tg.take_along_dim(a, i, 0), lambda a, i: jnp.take_along_axis(a, i, 0),
     F((3, 3)), _IDX)
case("scatter", lambda a, i, s: a.scatter(1, i, s), lambda a, i, s: a.at[
    jnp.arange(2)[:, None], i].set(s[:, :3]), F((2, 4)), I([[0, 3, 2], [1, 0, 3]]), F((2, 4)))
case("scatter", lambda a, i: a.scatter(0, i, 1.5), lambda a, i: a.at[i, jnp.arange(3)].set(1.5),
     F((3, 3)), I([[2, 0, 1]]))
case("scatter_add", lambda a, i, s: a.scatter_add(1, i, s), lambda a, i, s: a.at[
    jnp.arange(2)[:, None], i].add(s), F((2, 4)), _IDX, F((2, 3)))
case("index_select", lambda a, i: a.index_select(1, i), lambda a, i: a[:, i],
     F((2, 4), view="s"), I([3, 0, 3]))
case("index_select", lambda a, i: a.take(i), lambda a, i: a.ravel()[i], F((2, 3)), I([[5, 0]]))
case("index_add", lambda a, i, s: a.index_add(0, i, s, alpha=2.0),
     lambda a, i, s: a.at[i].add(2.0 * s), F((3, 2)), I([2, 0, 2]), F((3, 2)))
case("masked_fill", lambda a, m: a.masked_fill(m, -1.0), lambda a, m: jnp.where(m, -1.0, a),
     F((2, 3)), B([True, False, True]))
case("masked_fill", lambda a, m, v: a.masked_fill(m, v), lambda a, m, v: jnp.where(m, v, a),
     F((2, 3), view="t"), B([[True], [False]]), F(()))

# -- linear algebra -------------------------------------------------------------------------------
case("matmul", lambda a, b: a @ b, jnp.matmul, F((2, 3)), F((3, 4), view="t"))
case("matmul", lambda a, b: a @ b, jnp.matmul, F((2, 2, 3)), F((3, 2)), name="batched")
case("bmm", tg.bmm, jnp.matmul, F((2, 2, 3)), F((2, 3, 2)))
case("matmul", tg.mv, jnp.matmul, F((2, 3)), F((3,)))
case("matmul", tg.dot, jnp.dot, F((3,)), F((3,)))
case("addmm", lambda c, a, b: tg.addmm(c, a, b, beta=0.5, alpha=2.0),
     lambda c, a, b: 0.5 * c + 2.0 * a @ b, F((4,)), F((2, 3)), F((3, 4)))
case("addmm", tg.addmm, lambda c, a, b: c + a @ b, F((2, 4)), F((2, 3)), F((3, 4)))
case("addmm", lambda c, a, b: tg.addmm(c, a, b, beta=0),
     lambda c, a, b: a @ b, A([float("nan")] * 4), F((2, 3)), F((3, 4)), name="beta0_ignores_nan")
case("addmv", lambda c, a, b: tg.addmv(c, a, b, alpha=3.0), lambda c, a, b: c + 3.0 * a @ b,
     F((2,)), F((2, 3)), F((3,)))
case("baddbmm", lambda c, a, b: tg.baddbmm(c, a, b, alpha=-1.0),
     lambda c, a, b: c - a @ b, F((2, 1, 2)), F((2, 2, 3)), F((2, 3, 2)))
case("outer", tg.outer, jnp.outer, F((3,)), F((2,)))
case("einsum", lambda a, b: tg.einsum("bij,jk->bik", a, b), lambda a, b: jnp.einsum(
    "bij,jk->bik", a, b), F((2, 2, 3)), F((3, 4)))
case("einsum", lambda a: tg.einsum("ii", a), jnp.trace, F((3, 3)))
case("tensordot", lambda a, b: tg.tensordot(a, b, ([1, 0], [0, 1])),
     lambda a, b: jnp.tensordot(a, b, ([1, 0], [0, 1])), F((2, 3, 4)), F((3, 2)))
case("tensordot", lambda a, b: tg.tensordot(a, b, 1), lambda a, b: jnp.tensordot(a, b, 1),
     F((2, 3)), F((3, 2)))
case("tril", lambda a: a.tril(-1), lambda a: jnp.tril(a, -1), F((3, 4)))
case("triu", lambda a: tg.triu(a, 1), lambda a: jnp.triu(a, 1), F((2, 3, 3), view="t"))
case("diag", tg.diag, jnp.diag, F((3,)))
case("diag", lambda a: tg.diag(a, 1), lambda a: jnp.diag(a, 1), F((3, 4)))
case("diagonal", lambda a: a.diagonal(0, -2, -1), lambda a: jnp.diagonal(a, 0, -2, -1),
     F((2, 3, 3)))
case("diagonal", lambda a: tg.diagonal(a, -1), lambda a: jnp.diagonal(a, -1), F((3, 4)))
case("trace", tg.trace, jnp.trace, F((3, 4)))
_WELL = F((3, 3), -0.3, 0.3)  # I * 2 + small: well conditioned


def _well(a, eye):
    return a + 2 * eye(3, dtype=a.dtype)


case("linalg_inv", lambda a: tg.linalg.inv(_well(a, tg.eye)),
     lambda a: jnp.linalg.inv(a + 2 * jnp.eye(3, dtype=a.dtype)), _WELL, tol=10)
case("linalg_det", lambda a: tg.linalg.det(_well(a, tg.eye)),
     lambda a: jnp.linalg.det(a + 2 * jnp.eye(3, dtype=a.dtype)), _WELL, tol=10)
case("linalg_slogdet", lambda a: tg.linalg.slogdet(_well(a, tg.eye)).logabsdet,
     lambda a: jnp.log(jnp.abs(jnp.linalg.det(a + 2 * jnp.eye(3, dtype=a.dtype)))), _WELL, tol=10)
case("linalg_solve", lambda a, b: tg.linalg.solve(_well(a, tg.eye), b),
     lambda a, b: jnp.linalg.solve(a + 2 * jnp.eye(3, dtype=a.dtype), b), _WELL, F((3, 2)), tol=10)
case("linalg_solve", lambda a, b: tg.linalg.solve(_well(a, tg.eye), b),
     lambda a, b: jnp.linalg.solve(a + 2 * jnp.eye(3, dtype=a.dtype), b[:, None])[:, 0],
     _WELL, F((3,)), tol=10, name="vector_rhs")
case("linalg_cholesky", lambda a: tg.linalg.cholesky(a @ a.mT + tg.eye(3, dtype=a.dtype)),
     lambda a: jnp.linalg.cholesky(a @ a.T + jnp.eye(3, dtype=a.dtype)), F((3, 3)), tol=10)
case("linalg_qr", lambda a: sum(tg.linalg.qr(_well(a, tg.eye))),
     lambda a: sum(jnp.linalg.qr(a + 2 * jnp.eye(3, dtype=a.dtype))), _WELL, tol=10)
case("linalg_svd", lambda a: tg.linalg.svd(a, full_matrices=False).S,
     lambda a: jnp.linalg.svd(a, compute_uv=False), F((3, 2)), tol=10)
case("linalg_matrix_norm", lambda a: tg.linalg.matrix_norm(a, "nuc"),
     lambda a: jnp.linalg.svd(a, compute_uv=False).sum(), F((3, 2)), tol=10)
case("linalg_matrix_norm", lambda a: tg.linalg.norm(a, 1), lambda a: jnp.abs(a).sum(0).max(),
     F((3, 2)))

# -- sorting and selection ------------------------------------------------------------------------
case("sort", lambda a: a.sort(1, descending=True).values, lambda a: -jnp.sort(-a, 1),
     F((3, 4), view="t"))
case("sort", lambda a: tg.sort(a).values, jnp.sort, A([2.0, 1.0, 2.0, 0.0]), name="ties")
case("argsort", lambda a: a.argsort(0), lambda a: jnp.argsort(a, 0), F((3, 4)), grad=False)
case("topk", lambda a: a.topk(2).values, lambda a: -jnp.sort(-a, -1)[..., :2], F((3, 4)))
case("topk", lambda a: a.topk(2, 0, largest=False).values, lambda a: jnp.sort(a, 0)[:2],
     F((3, 4), view="s"))
case("searchsorted", lambda s, v: tg.searchsorted(s, v), lambda s, v: jnp.searchsorted(s, v),
     A([0.0, 1.0, 2.0, 3.0]), A([[1.0, 2.5], [-1.0, 9.0]]), grad=False)
case("searchsorted", lambda s, v: tg.searchsorted(s, v, right=True),
     lambda s, v: jnp.stack([jnp.searchsorted(s[i], v[i], side="right") for i in range(2)]),
     A([[0.0, 1.0, 2.0], [1.0, 1.0, 5.0]]), A([[1.0, 2.5], [1.0, 9.0]]), grad=False)

# -- special functions, running extremes, windows -------------------------------------------------
_sp = jax.scipy.special
for _name, _fn, _ref, (_lo, _hi) in [
        ("exp2", tg.exp2, lambda x: jnp.exp(x * jnp.log(2.0).astype(x.dtype)), (-2, 2)),
        ("asinh", tg.asinh, lambda x: jnp.log(x + jnp.sqrt(x * x + 1)), (-2, 2)),
        ("acosh", tg.acosh, lambda x: jnp.log(x + jnp.sqrt(x * x - 1)), (1.2, 3)),
        ("atanh", tg.atanh, lambda x: 0.5 * jnp.log((1 + x) / (1 - x)), (-0.9, 0.9)),
        ("lgamma", tg.lgamma, lambda x: jnp.log(jnp.abs(jnp.exp(_sp.gammaln(x)))), (0.5, 3)),
        ("digamma", tg.digamma, jnp.vectorize(jax.grad(_sp.gammaln)), (0.5, 3))]:
    case(_name, _pair(_fn), _pair(_ref), F((), _lo, _hi), F((2, 1, 3), _lo, _hi, view="t"))
case("polygamma", lambda a: tg.polygamma(1, a) + a.polygamma(2),
     lambda a: jnp.vectorize(jax.grad(jax.grad(_sp.gammaln)))(a)
     + jnp.vectorize(jax.grad(jax.grad(jax.grad(_sp.gammaln))))(a), F((2, 3), 0.5, 3))
case("copysign", tg.copysign, lambda a, b: jnp.abs(a) * jnp.where(b < 0, -1.0, 1.0),
     F((3, 4), 0.1, 2), F((4,)))
case("copysign", lambda a: tg.copysign(a, -1.0), lambda a: -jnp.abs(a), F((3,)), name="number")
case("xlogy", tg.xlogy, lambda a, b: a * jnp.log(b), F((3, 4)), F((4,), 0.5, 2))
case("xlogy", lambda a: tg.xlogy(2.0, a) + tg.xlogy(a, 3.0), lambda a: 2 * jnp.log(a)
     + a * jnp.log(3.0), F((3,), 0.5, 2), name="numbers")
# at x == 0 (y > 0) PyTorch's d/dx is still log(y), as for x * log(y)
case("xlogy", tg.xlogy, lambda a, b: a * jnp.log(b), A([0.0, 0.0, 1.5]), A([0.5, 2.0, 3.0]),
     name="zero_x")
case("addcmul", lambda x, a, b: tg.addcmul(x, a, b, value=0.5), lambda x, a, b: x + 0.5 * a * b,
     F((3, 4)), F((4,)), F((3, 1)))
case("addcdiv", lambda x, a, b: x.addcdiv(a, b, value=-2), lambda x, a, b: x - 2 * a / b,
     F((3, 4)), F((4,)), F((3, 1), 0.5, 2))
case("isclose", lambda a, b: tg.isclose(a, b, rtol=0.1), lambda a, b: (a == b) | (
    jnp.abs(a - b) <= 1e-8 + 0.1 * jnp.abs(b)), A([1.0, 2.0, np.inf, 3.0]), A([1.05, 2.5, np.inf, -3.0]), grad=False)
case("bitwise_left_shift", lambda a, b: a << b, lambda a, b: a * 2 ** b, I([1, -3, 5]),
     I([1, 2, 3]), grad=False)
case("bitwise_right_shift", lambda a, b: a >> b, lambda a, b: jnp.floor_divide(a, 2 ** b),
     I([8, -3, 5]), I([1, 1, 2]), grad=False)


def _running(a, better):
    """The running extreme along the last axis by a Python loop (the reference for cummax)."""
    cols = [a[..., 0]]
    for k in range(1, a.shape[-1]):
        cols.append(jnp.where(better(a[..., k], cols[-1]), a[..., k], cols[-1]))
    return jnp.stack(cols, -1)


case("cummax", lambda a: a.cummax(-1).values, lambda a: _running(a, jnp.greater_equal),
     F((3, 4), view="t"))
case("cummax", lambda a: tg.cummax(a, 0).values, lambda a: _running(a.T, jnp.greater_equal).T,
     A([[1.0, 2.0], [1.0, 0.0], [3.0, 2.0]]), name="ties")
case("cummin", lambda a: tg.cummin(a, dim=1)[0], lambda a: _running(a, jnp.less_equal),
     F((3, 4), view="s"))
case("logcumsumexp", lambda a: a.logcumsumexp(1), lambda a: jnp.log(jnp.cumsum(jnp.exp(a), 1)),
     F((3, 4), view="t"))
case("unfold", lambda a: a.unfold(1, 2, 1), lambda a: jnp.stack([a[:, 0:2], a[:, 1:3],
                                                                  a[:, 2:4]], 1), F((3, 4)))
case("unfold", lambda a: a.unfold(0, 2, 2).sum(0), lambda a: a[0:4].reshape(2, 2, 3).transpose(
    0, 2, 1).sum(0), F((5, 3)), name="step")

_SR_INDEX = I([[0, 1, 2, 0], [0, 2, 2, 1]])
_SR_REF = {"sum": lambda a, w, s: a.at[w].add(s), "amax": lambda a, w, s: a.at[w].max(s),
           "amin": lambda a, w, s: a.at[w].min(s)}
for _red in ("sum", "amax", "amin"):
    case("scatter_reduce", lambda a, i, s, _red=_red: a.scatter_reduce(0, i, s, _red),
         lambda a, i, s, _red=_red: _SR_REF[_red](a, (i, jnp.arange(4)[None, :]), s),
         F((3, 4)), _SR_INDEX, F((2, 4)), name=_red)
case("scatter_reduce", lambda a, i, s: a.scatter_reduce(0, i, s, "prod", include_self=False),
     lambda a, i, s: jnp.stack([a[:, 0].at[0].set(s[0, 0] * s[1, 0]),
                                a[:, 1].at[1].set(s[0, 1]).at[2].set(s[1, 1]),
                                a[:, 2].at[2].set(s[0, 2] * s[1, 2]),
                                a[:, 3].at[0].set(s[0, 3]).at[1].set(s[1, 3])], 1),
     F((3, 4)), _SR_INDEX, F((2, 4), 0.5, 2), name="prod")
case("scatter_reduce", lambda a, i, s: a.scatter_reduce(0, i, s, "mean"),
     lambda a, i, s: a.at[(i, jnp.arange(4)[None, :])].add(s)
     / jnp.array([[3, 1, 1, 2], [1, 2, 1, 2], [1, 2, 3, 1]], a.dtype),
     F((3, 4)), _SR_INDEX, F((2, 4)), name="mean")

# -- NaN-ignoring extremes, steps, distances, quantiles, modes ----------------------------------
case("sgn", _pair(tg.sgn), _pair(jnp.sign), F(()), F((2, 1, 3), view="t"))
case("sgn", tg.sgn, lambda x: jnp.nan_to_num(jnp.sign(x)) + 0.0, A([np.nan, -0.0, 0.0, -2.0]),
     name="nan_and_zeros")
case("sign", tg.sign, lambda x: jnp.nan_to_num(jnp.sign(x)) + 0.0, A([np.nan, -0.0, 3.0]),
     name="nan_and_zeros")
case("fmax", _quad(tg.fmax), _quad(jnp.maximum), F((3, 4)), F((4,)), F(()), F((3, 4), view="s"))
case("fmin", _quad(tg.fmin), _quad(jnp.minimum), F((3, 4)), F((4,)), F(()), F((3, 4), view="s"))


def _nan_ignoring(pick):
    """`pick(a, b)` choosing `a` at ties, and the number where the other is NaN."""
    return lambda a, b: jnp.where(jnp.isnan(a), b, jnp.where(jnp.isnan(b), a, pick(a, b)))


# ties go to `input`, as PyTorch; NaN to the other operand
case("fmax", tg.fmax, _nan_ignoring(lambda a, b: jnp.where(b > a, b, a)),
     A([1.0, np.nan, 2.0, 3.0]), A([1.0, 2.0, np.nan, 0.0]), name="ties_and_nan")
case("fmin", tg.fmin, _nan_ignoring(lambda a, b: jnp.where(b < a, b, a)),
     A([1.0, np.nan, 2.0, 3.0]), A([1.0, 2.0, np.nan, 0.0]), name="ties_and_nan")
case("hypot", _quad(tg.hypot), _quad(lambda a, b: jnp.sqrt(a * a + b * b)), F((3, 4)), F((4,)),
     F(()), F((3, 4), view="s"))
case("logit", _pair(tg.logit), _pair(lambda p: jnp.log(p) - jnp.log1p(-p)), F((), 0.1, 0.9),
     F((2, 1, 3), 0.1, 0.9, view="t"))
case("logit", lambda p: tg.logit(p, eps=0.1), lambda p: jnp.log(jnp.clip(p, 0.1, 0.9))
     - jnp.log1p(-jnp.clip(p, 0.1, 0.9)), A([0.05, 0.3, 0.5, 0.97]), name="eps_clamps")
case("heaviside", tg.heaviside, lambda x, v: jnp.where(x > 0, 1.0, jnp.where(x < 0, 0.0, v)),
     A([-1.5, 0.0, 2.0, 0.0]), A([0.25]), grad=False)


def _cross_ref(a, b, axis):
    a, b = jnp.moveaxis(a, axis, 0), jnp.moveaxis(b, axis, 0)
    out = jnp.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                     a[0] * b[1] - a[1] * b[0]])
    return jnp.moveaxis(out, 0, axis)


case("cross", lambda a, b: tg.linalg.cross(a, b), lambda a, b: _cross_ref(a, b, -1),
     F((4, 3)), F((1, 3)))
case("cross", lambda a, b: tg.cross(a, b, dim=0), lambda a, b: _cross_ref(a, b, 0),
     F((3, 4), view="t"), F((3, 4)), name="dim0")


def _distances(p):
    def ref(x1, x2):
        diff = jnp.abs(x1[..., :, None, :] - x2[..., None, :, :])
        if p == np.inf:
            return diff.max(-1)
        return (diff ** p).sum(-1) ** (1 / p)
    return ref


for _p in (1.0, 2.0, 3.0, np.inf):
    case("cdist", lambda a, b, _p=_p: tg.cdist(a, b, p=_p), _distances(_p), F((2, 5, 3)),
         F((4, 3)), name=f"p={_p}")
case("cdist", lambda a, b: tg.cdist(a, b, p=0), lambda a, b: (
    a[:, None, :] != b[None, :, :]).sum(-1).astype(a.dtype) + 0 * a.sum(), F((3, 2)), F((4, 2)),
     name="p=0")


def _safe_distance(x1, x2):
    """The Euclidean distance with PyTorch's gradient 0 (not NaN) where it is 0."""
    sq = ((x1[:, None, :] - x2[None, :, :]) ** 2).sum(-1)
    return jnp.where(sq == 0, 0.0, jnp.sqrt(jnp.where(sq == 0, 1.0, sq)))


case("cdist", tg.cdist, _safe_distance, A([[0.0, 0.0], [1.0, 1.0]]),
     A([[0.0, 0.0], [1.0, 2.0], [1.0, 1.0]]), name="zero_distance")
for _how in ("linear", "lower", "higher", "midpoint", "nearest"):
    case("quantile", lambda a, _how=_how: tg.quantile(a, 0.3, dim=1, interpolation=_how),
         lambda a, _how=_how: jnp.quantile(a, 0.3, axis=1, method=_how), F((3, 5)), name=_how)
case("quantile", lambda a: a.quantile(a.new_tensor([0.1, 0.75]), keepdim=True),
     lambda a: jnp.quantile(a, jnp.array([0.1, 0.75], a.dtype), keepdims=True),
     F((3, 4), view="t"), name="all_dims")
case("quantile", lambda a: tg.nanquantile(a, 0.5, dim=0),
     lambda a: jnp.nanquantile(a, 0.5, axis=0), A([[1.0, np.nan], [np.nan, 2.0], [3.0, 5.0]]),
     name="nan")
# ties: stable sorting, so rank 1.2 of [2, 1, 2, 1] lies between elements 3 and 0
case("quantile", lambda a: tg.quantile(a, 0.4), lambda a: 0.8 * a[3] + 0.2 * a[0],
     A([2.0, 1.0, 2.0, 1.0]), name="ties")
# the smallest of the most frequent values, at its last position
case("mode", lambda a: a.mode(1).values, lambda a: jnp.stack([a[0, 3], a[1, 4]]),
     A([[3.0, 1.0, 3.0, 1.0, 2.0], [2.0, 2.0, 5.0, 5.0, 5.0]]))
case("mode", lambda a: tg.mode(a, 0, keepdim=True)[0], lambda a: a.min(0, keepdims=True),
     F((4, 3), view="s"), name="all_distinct")
case("nanmedian", lambda a: a.nanmedian(1).values, lambda a: jnp.stack([a[0, 3], a[1, 3]]),
     A([[1.0, np.nan, 3.0, 2.0], [np.nan, np.nan, np.nan, 4.0]]))
case("nanmedian", lambda a: tg.nanmedian(a), lambda a: jnp.sort(a.ravel())[(a.size - 1) // 2],
     F((2, 3), view="t"), name="all")
case("index_put", lambda a, v: a.index_put((tg.tensor([0, 2, 0]),), v, accumulate=True),
     lambda a, v: a.at[jnp.array([0, 2, 0])].add(v), F((3, 2)), F((3, 2)), name="accumulate")

# Rows without a case here, and why (each is covered by another test):
_ONE_DEVICE = jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(jax.devices()[:1]), ("d",)),
                                         jax.sharding.PartitionSpec("d"))
case("shard", lambda a: apply(shard_op, a * 2, sharding=_ONE_DEVICE).exp(),
     lambda a: jnp.exp(a * 2), F((4, 3)))  # a layout constraint: the identity on values


SKIP = {
    "alias": "internal, no derivative: a no-grad use of a tensor that requires grad",
    "random": "no derivative; the draws are tested in test_ops_random.py",
    "normal": "a sample (zero gradient, as PyTorch); tested in test_ops_random.py",
}
