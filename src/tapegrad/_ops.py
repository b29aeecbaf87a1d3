"""The op registry: one row per op, a name and a pure jnp function.

`jax.vjp` supplies every derivative, so a row never says how gradients flow; it only says how the
result dtype is found (`promote`) and what the backward needs (`saves`, for PyTorch's in-place
check). Where PyTorch's derivative at a tie differs from the obvious jnp spelling, the row is
written so that `jax.grad` of it gives PyTorch's subgradient (see `relu`, `clamp`).
"""
from __future__ import annotations

import builtins
import functools
import itertools

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


def _abs(x):
    return x * jnp.sign(x)  # derivative sign(x): 0 at 0, as PyTorch (jnp.abs's is 1 there)


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
abs = elementwise("abs", _abs, saves="all")  # noqa: A001
clamp = Op("clamp", _clamp, promote="common", saves=(0,), check=_broadcast_check)

# -- comparisons (no gradient) --------------------------------------------------------------------
eq = elementwise("eq", jnp.equal, differentiable=False)
ne = elementwise("ne", jnp.not_equal, differentiable=False)
lt = elementwise("lt", jnp.less, differentiable=False)
le = elementwise("le", jnp.less_equal, differentiable=False)
gt = elementwise("gt", jnp.greater, differentiable=False)
ge = elementwise("ge", jnp.greater_equal, differentiable=False)

# -- reductions -----------------------------------------------------------------------------------
def _dim_grad_name(base: str):
    """PyTorch's overloads: `Backward0` for the full reduction, `Backward1` for `dim=`."""
    return lambda static, inputs: base + ("Backward0" if static["dim"] is None else "Backward1")


sum = Op("sum", lambda x, *, dim, keepdim, dtype=None: jnp.sum(x, axis=dim, keepdims=keepdim,  # noqa: A001
                                                           dtype=dtype), saves=SAVES_NONE,
         grad_name=_dim_grad_name("Sum"))
mean = Op("mean", lambda x, *, dim, keepdim: jnp.mean(x, axis=dim, keepdims=keepdim),
          saves=SAVES_NONE, grad_name=_dim_grad_name("Mean"))

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
def build_index(spec, *operands):
    """Rebuild an index from its static `spec`: ("t", k) is the k-th operand, an index tensor,
    ("i", k) the k-th operand, an integer, ("s", start, stop, step) a slice, and
    ("d", k, axis, span, step) a slice whose start is the k-th operand (see `dynamic_slices`)."""
    out = []
    for s in spec:
        if isinstance(s, tuple) and s[0] in ("t", "i"):
            out.append(operands[s[1]])
        elif isinstance(s, tuple) and s[0] == "s":
            out.append(slice(*s[1:]))
        elif isinstance(s, tuple) and s[0] == "d":
            out.append(slice(None, None, s[4]))
        elif s == "...":
            out.append(Ellipsis)
        else:
            out.append(s)
    return tuple(out)


def dynamic_slices(x, spec, operands):
    """Cut the slices whose start is an operand: one compiled program serves every start."""
    for s in spec:
        if isinstance(s, tuple) and s[0] == "d":
            _, k, axis, span, _ = s
            x = lax.dynamic_slice_in_dim(x, operands[k], span, axis)
    return x


def _getitem(x, *operands, spec):
    return dynamic_slices(x, spec, operands)[build_index(spec, *operands)]


def _index_grad_name(static, inputs) -> str:
    """PyTorch's grad_fn for an index: Index when tensors (or bools) index, else its last basic
    step (Select, Slice, Unsqueeze); slices covering a whole dimension are skipped, as PyTorch
    does inside an index tuple."""
    spec, shape = static["spec"], inputs[0].shape
    if len(spec) == 1 and isinstance(spec[0], tuple) and spec[0][0] in ("s", "d"):
        return "SliceBackward0"  # x[a:b] slices even when it covers everything
    kinds = [e[0] if isinstance(e, tuple) else e for e in spec]
    if "t" in kinds or [k for k in kinds if isinstance(k, int)]:
        return "IndexBackward0"  # index tensors, the ints beside them, and bools
    name, dim = "AliasBackward0", 0
    for s in spec:
        if s == "...":
            dim += len(shape) - len([e for e in spec if e != "..." and e is not None])
        elif s is None:
            name = "UnsqueezeBackward0"
        else:
            if s[0] == "i":
                name = "SelectBackward0"
            elif s[0] == "d" or (s[1:] != (None, None, None) and
                                 range(*slice(*s[1:]).indices(shape[dim])) != range(shape[dim])):
                name = "SliceBackward0"
            dim += 1
    return name


getitem = Op("index", _getitem, saves=SAVES_NONE, grad_name=_index_grad_name)


def _split(x, *, dim, sections):
    bounds = [0, *itertools.accumulate(sections)]
    return tuple(lax.slice_in_dim(x, a, b, axis=dim) for a, b in zip(bounds, bounds[1:]))


# one node for all pieces, as PyTorch (a piece's grad_fn is the split, with its output_nr)
split = Op("split", _split, saves=SAVES_NONE, n_out=None)
split_with_sizes = Op("split_with_sizes", _split, saves=SAVES_NONE, n_out=None)
unbind = Op("unbind", lambda x, *, dim: tuple(lax.index_in_dim(x, i, dim, keepdims=False)
                                              for i in range(x.shape[dim])),
            saves=SAVES_NONE, n_out=None)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def put(index_of, x, v, *arrays):
    """`x.at[index_of(*arrays)].set(v)` with PyTorch's derivative for `v`: `grad[index]` at every
    (even repeated) index. jax's own derivative reaches only the element written last."""
    return x.at[index_of(*arrays)].set(v)


@put.defjvp
def _put_jvp(index_of, primals, tangents):
    x, v, *arrays = primals
    dx, dv = tangents[0], tangents[1]
    index = index_of(*arrays)
    written = jnp.zeros(x.shape, bool).at[index].set(True)
    return put(index_of, x, v, *arrays), jnp.where(written, jnp.zeros_like(dx).at[index].add(dv),
                                                   dx)


def _index_put(x, v, *ts, spec):
    return put(functools.partial(build_index, spec), x, v.astype(x.dtype), *ts)


setitem = Op("index_put", _index_put,
             saves=SAVES_NONE, grad_name="IndexPutBackward0")


# == the tensor vocabulary (issue 3) ==============================================================
# Derivatives come from `jax.vjp` of each row; comments mark rows written so that jax's derivative
# is PyTorch's at a tie or a singular point.

def _where(cond, x, y, *, dtype):
    return jnp.where(cond, jnp.asarray(x, dtype), jnp.asarray(y, dtype))


def _safe_norm(sq):
    """sqrt with derivative 0 (not inf) where `sq` is 0: PyTorch's norm backward masks zero norms."""
    zero = sq == 0
    return jnp.where(zero, jnp.zeros_like(sq), jnp.sqrt(jnp.where(zero, jnp.ones_like(sq), sq)))


def _vector_norm(x, *, ord, dim, keepdim, dtype):  # noqa: A002
    x = x.astype(dtype)
    a = _abs(x)
    if ord == 2:
        return _safe_norm(jnp.sum(x * x, axis=dim, keepdims=keepdim))
    if ord == float("inf"):
        return jnp.max(a, axis=dim, keepdims=keepdim)  # ties share the gradient, as PyTorch
    if ord == -float("inf"):
        return jnp.min(a, axis=dim, keepdims=keepdim)
    if ord == 0:
        return jnp.sum((x != 0).astype(dtype), axis=dim, keepdims=keepdim)
    if ord == 1:
        return jnp.sum(a, axis=dim, keepdims=keepdim)
    s = jnp.sum(jnp.where(a == 0, jnp.zeros_like(a), jnp.where(a == 0, 1, a) ** ord),
                axis=dim, keepdims=keepdim)
    zero = s == 0
    return jnp.where(zero, jnp.zeros_like(s), jnp.where(zero, 1, s) ** (1.0 / ord))


def _reduce_dim_select(x, *, dim, keepdim, which):
    """(values, indices) of max/min/median/kthvalue along `dim`; the gradient goes to the index."""
    if which == "max":
        idx = jnp.argmax(x, axis=dim, keepdims=True)
    elif which == "min":
        idx = jnp.argmin(x, axis=dim, keepdims=True)
    else:  # ("kth", k): the k-th smallest (1-based); NaNs sort last as in PyTorch
        order = jnp.argsort(x, axis=dim, stable=True)
        idx = lax.slice_in_dim(order, which[1] - 1, which[1], axis=dim)
    values = jnp.take_along_axis(x, idx, axis=dim)
    if not keepdim:
        values, idx = jnp.squeeze(values, dim), jnp.squeeze(idx, dim)
    return values, idx.astype(jnp.int64)


def _sort(x, *, dim, descending, stable):
    order = jnp.argsort(x, axis=dim, stable=True, descending=descending)
    return jnp.take_along_axis(x, order, axis=dim), order.astype(jnp.int64)


def _topk(x, *, k, dim, largest):
    order = jnp.argsort(x, axis=dim, stable=True, descending=largest)
    idx = lax.slice_in_dim(order, 0, k, axis=dim)
    return jnp.take_along_axis(x, idx, axis=dim), idx.astype(jnp.int64)


def _full_index(index, dim):
    """Index arrays addressing `index`'s positions with `index` itself along `dim` (for scatter)."""
    grids = list(jnp.indices(index.shape, sparse=True))
    grids[dim] = index
    return tuple(grids)


def _scatter(x, index, src, *, dim, mode):
    src = jnp.broadcast_to(jnp.asarray(src, x.dtype), index.shape) if jnp.ndim(src) == 0 else \
        src[tuple(slice(0, s) for s in index.shape)].astype(x.dtype)
    if mode == "add":
        return x.at[_full_index(index, dim)].add(src)
    return put(functools.partial(_full_index, dim=dim), x, src, index)


def _index_add(x, index, source, *, dim, alpha):
    source = source.astype(x.dtype)
    return x.at[(slice(None),) * dim + (index,)].add(source * alpha if alpha != 1 else source)


def _diag(x, *, diagonal):
    return jnp.diag(x, k=diagonal)


def _searchsorted(seq, values, *, right):
    side = "right" if right else "left"
    if seq.ndim == 1:
        return jnp.searchsorted(seq, values, side=side).astype(jnp.int64)
    lead = seq.shape[:-1]
    f = lambda s, v: jnp.searchsorted(s, v, side=side)  # noqa: E731
    out = jax.vmap(f)(seq.reshape(-1, seq.shape[-1]), values.reshape(-1, values.shape[-1]))
    return out.reshape(lead + values.shape[-1:]).astype(jnp.int64)


def _variadic(fn):
    """A row over any number of inputs cast to the promoted dtype (cat, stack, einsum)."""
    def cast_then(*xs, dtype, **static):
        return fn([jnp.asarray(x, dtype) for x in xs], **static)
    return cast_then


def _float_pair(fn):
    def cast_then(*xs, dtype, **static):
        return fn(*(jnp.asarray(x, dtype) for x in xs), **static)
    return cast_then


# -- elementwise math -----------------------------------------------------------------------------
expm1 = elementwise("expm1", jnp.expm1, promote="float", saves=SAVES_OUTPUT)
log1p = elementwise("log1p", jnp.log1p, promote="float", saves="all")
log2 = elementwise("log2", jnp.log2, promote="float", saves="all")
log10 = elementwise("log10", jnp.log10, promote="float", saves="all")
rsqrt = elementwise("rsqrt", lax.rsqrt, promote="float", saves=SAVES_OUTPUT)
tan = elementwise("tan", jnp.tan, promote="float", saves=SAVES_OUTPUT)
asin = elementwise("asin", jnp.arcsin, promote="float", saves="all")
acos = elementwise("acos", jnp.arccos, promote="float", saves="all")
atan = elementwise("atan", jnp.arctan, promote="float", saves="all")
atan2 = elementwise("atan2", jnp.arctan2, promote="float", saves="all")
sinh = elementwise("sinh", jnp.sinh, promote="float", saves="all")
cosh = elementwise("cosh", jnp.cosh, promote="float", saves="all")
erf = elementwise("erf", jax.scipy.special.erf, promote="float", saves="all")
erfinv = elementwise("erfinv", jax.scipy.special.erfinv, promote="float", saves="all")
reciprocal = elementwise("reciprocal", jnp.reciprocal, promote="float", saves=SAVES_OUTPUT)
square = elementwise("square", jnp.square, saves="all", grad_name="PowBackward0")
sign = elementwise("sign", jnp.sign)
floor = elementwise("floor", jnp.floor)
ceil = elementwise("ceil", jnp.ceil)
round = elementwise("round", jnp.round)  # noqa: A001  half to even, as PyTorch
frac = elementwise("frac", lambda x: x - jnp.trunc(x))
fmod = elementwise("fmod", jnp.fmod, saves="all")
logaddexp = elementwise("logaddexp", jnp.logaddexp, promote="float", saves="all")
lerp = elementwise("lerp", lambda a, b, w: a + w * (b - a), saves="all")
where = Op("where", _where, promote="common", saves=(0,), check=_broadcast_check)
nan_to_num = Op("nan_to_num", lambda x, *, nan, posinf, neginf: jnp.nan_to_num(
    x, nan=nan, posinf=posinf, neginf=neginf), saves="all")
isnan = Op("isnan", jnp.isnan, differentiable=False)
isinf = Op("isinf", jnp.isinf, differentiable=False)
isfinite = Op("isfinite", jnp.isfinite, differentiable=False)

# -- logic ----------------------------------------------------------------------------------------
logical_and = Op("logical_and", jnp.logical_and, differentiable=False, check=_broadcast_check)
logical_or = Op("logical_or", jnp.logical_or, differentiable=False, check=_broadcast_check)
logical_xor = Op("logical_xor", jnp.logical_xor, differentiable=False, check=_broadcast_check)
logical_not = Op("logical_not", jnp.logical_not, differentiable=False)
bitwise_and = elementwise("bitwise_and", jnp.bitwise_and, differentiable=False)
bitwise_or = elementwise("bitwise_or", jnp.bitwise_or, differentiable=False)
bitwise_xor = elementwise("bitwise_xor", jnp.bitwise_xor, differentiable=False)
bitwise_not = Op("bitwise_not", jnp.invert, differentiable=False)

# -- reductions -----------------------------------------------------------------------------------
prod = Op("prod", lambda x, *, dim, keepdim, dtype: jnp.prod(x.astype(dtype), axis=dim,
                                                             keepdims=keepdim),
          grad_name=_dim_grad_name("Prod"))
var = Op("var", lambda x, *, dim, correction, keepdim: jnp.var(
    x, axis=dim, ddof=correction, keepdims=keepdim))
std = Op("std", lambda x, *, dim, correction, keepdim: jnp.std(
    x, axis=dim, ddof=correction, keepdims=keepdim), saves=("all"))
# jnp.max/min share the gradient evenly among equal extremes, as PyTorch's amax/amin and max().
amax = Op("amax", lambda x, *, dim, keepdim: jnp.max(x, axis=dim, keepdims=keepdim))
amin = Op("amin", lambda x, *, dim, keepdim: jnp.min(x, axis=dim, keepdims=keepdim))
max_all = Op("max", jnp.max, grad_name="MaxBackward1")  # max() of every element
min_all = Op("min", jnp.min, grad_name="MinBackward1")
max_dim = Op("max_dim", functools.partial(_reduce_dim_select, which="max"), n_out=2,
             grad_name="MaxBackward0")
min_dim = Op("min_dim", functools.partial(_reduce_dim_select, which="min"), n_out=2,
             grad_name="MinBackward0")
kthvalue = Op("kthvalue", lambda x, *, k, dim, keepdim: _reduce_dim_select(
    x, dim=dim, keepdim=keepdim, which=("kth", k)), n_out=2)
argmax = Op("argmax", lambda x, *, dim, keepdim: jnp.argmax(
    x, axis=dim, keepdims=keepdim).astype(jnp.int64), differentiable=False)
argmin = Op("argmin", lambda x, *, dim, keepdim: jnp.argmin(
    x, axis=dim, keepdims=keepdim).astype(jnp.int64), differentiable=False)
vector_norm = Op("vector_norm", _vector_norm, grad_name="LinalgVectorNormBackward0")
logsumexp = Op("logsumexp", lambda x, *, dim, keepdim: jax.nn.logsumexp(x, axis=dim,
                                                                        keepdims=keepdim))
cumsum = Op("cumsum", lambda x, *, dim, dtype: jnp.cumsum(x.astype(dtype), axis=dim),
            saves=SAVES_NONE)
cumprod = Op("cumprod", lambda x, *, dim, dtype: jnp.cumprod(x.astype(dtype), axis=dim))
all = Op("all", lambda x, *, dim, keepdim: jnp.all(x, axis=dim, keepdims=keepdim),  # noqa: A001
         differentiable=False)
any = Op("any", lambda x, *, dim, keepdim: jnp.any(x, axis=dim, keepdims=keepdim),  # noqa: A001
         differentiable=False)
count_nonzero = Op("count_nonzero", lambda x, *, dim: jnp.count_nonzero(x, axis=dim).astype(
    jnp.int64), differentiable=False)

# -- shape ----------------------------------------------------------------------------------------
squeeze = Op("squeeze", lambda x, *, dims: jnp.squeeze(x, dims), saves=SAVES_NONE)
unsqueeze = Op("unsqueeze", lambda x, *, dim: jnp.expand_dims(x, dim), saves=SAVES_NONE)
flip = Op("flip", lambda x, *, dims: jnp.flip(x, dims), saves=SAVES_NONE)
roll = Op("roll", lambda x, *, shifts, dims: jnp.roll(x, shifts, dims), saves=SAVES_NONE)
repeat = Op("repeat", lambda x, *, reps: jnp.tile(x, reps), saves=SAVES_NONE)
cat = Op("cat", _variadic(lambda xs, *, dim: jnp.concatenate(xs, axis=dim)), promote="common",
         saves=SAVES_NONE)
stack = Op("stack", _variadic(lambda xs, *, dim: jnp.stack(xs, axis=dim)), promote="common",
           saves=SAVES_NONE)

# -- indexing -------------------------------------------------------------------------------------
gather = Op("gather", lambda x, index, *, dim: jnp.take_along_axis(x, index, axis=dim),
            saves=(1,))
scatter = Op("scatter", functools.partial(_scatter, mode="set"), saves=(1,))
scatter_add = Op("scatter_add", functools.partial(_scatter, mode="add"), saves=(1,))
index_select = Op("index_select", lambda x, index, *, dim: jnp.take(x, index, axis=dim),
                  saves=(1,))
index_add = Op("index_add", _index_add, saves=(1,))
masked_fill = Op("masked_fill", lambda x, mask, value: jnp.where(
    mask, jnp.asarray(value, x.dtype), x), saves=(1,))

# -- linear algebra -------------------------------------------------------------------------------
outer = Op("outer", _float_pair(jnp.outer), promote="common")
einsum = Op("einsum", _variadic(lambda xs, *, equation: jnp.einsum(equation, *xs)),
            promote="common")
tensordot = Op("tensordot", _float_pair(lambda a, b, *, axes: jnp.tensordot(a, b, axes)),
               promote="common")
tril = Op("tril", lambda x, *, diagonal: jnp.tril(x, diagonal), saves=SAVES_NONE)
triu = Op("triu", lambda x, *, diagonal: jnp.triu(x, diagonal), saves=SAVES_NONE)
diag = Op("diag", _diag, saves=SAVES_NONE)
diagonal = Op("diagonal", lambda x, *, offset, dim1, dim2: jnp.diagonal(x, offset, dim1, dim2),
              saves=SAVES_NONE)
trace = Op("trace", jnp.trace, saves=SAVES_NONE)
inv = Op("linalg_inv", jnp.linalg.inv, saves=SAVES_OUTPUT)
det = Op("linalg_det", jnp.linalg.det)
slogdet = Op("linalg_slogdet", jnp.linalg.slogdet, n_out=2)
solve = Op("linalg_solve", _float_pair(lambda a, b, *, left: jnp.linalg.solve(a, b) if left else
                                       jnp.linalg.solve(jnp.swapaxes(a, -1, -2),
                                                        jnp.swapaxes(b, -1, -2)).swapaxes(-1, -2)),
           promote="common")
cholesky = Op("linalg_cholesky", lambda x, *, upper: (
    jnp.swapaxes(jnp.linalg.cholesky(x), -1, -2).conj() if upper else jnp.linalg.cholesky(x)),
    saves=SAVES_OUTPUT)
qr = Op("linalg_qr", lambda x, *, mode: jnp.linalg.qr(x, mode=mode), n_out=2)
svd = Op("linalg_svd", lambda x, *, full_matrices: jnp.linalg.svd(x, full_matrices=full_matrices),
         n_out=3)
matrix_norm = Op("linalg_matrix_norm", lambda x, *, ord, dim, keepdim: jnp.linalg.norm(  # noqa: A002
    x, ord=ord, axis=dim, keepdims=keepdim))

# -- sorting and selection ------------------------------------------------------------------------
sort = Op("sort", _sort, n_out=2)
argsort = Op("argsort", lambda x, *, dim, descending: jnp.argsort(
    x, axis=dim, stable=True, descending=descending).astype(jnp.int64), differentiable=False)
topk = Op("topk", _topk, n_out=2)
searchsorted = Op("searchsorted", _searchsorted, differentiable=False)

# -- creation: no array inputs, so computed with whatever first needs the value -------------------
# The numbers are inputs (a new fill value reuses the program); shapes and dtypes are static.
full = Op("full", lambda fill, *, shape, dtype: jnp.full(shape, fill, dtype), saves=SAVES_NONE,
          differentiable=False)


def _arange(start, step, *, n, dtype, wide):
    """`start + i * step` computed in `wide` (float64 or int64, as PyTorch), then cast."""
    return (start + step * lax.iota(wide, n)).astype(dtype)


arange = Op("arange", _arange, saves=SAVES_NONE, differentiable=False)
eye = Op("eye", lambda *, n, m, dtype: jnp.eye(n, m, dtype=dtype), saves=SAVES_NONE,
         differentiable=False)


# -- random (gradients are zero, as PyTorch's) ----------------------------------------------------
normal = Op("normal", lambda mean, std, eps: lax.stop_gradient(mean + std * eps), saves=SAVES_NONE)


# -- views (see _views.py) ------------------------------------------------------------------------
def _view_scatter(base, new_view, *operands, steps):
    """`base` with the elements a view reads replaced by `new_view` (an in-place op on a view).

    The view's steps run on the flat positions of `base`, which tells where each view element
    lives; a reshape-only view is just reshaped back.
    """
    new_view = new_view.astype(base.dtype)
    if builtins.all(op is reshape for op, _, _ in steps):
        return new_view.reshape(base.shape)
    pos = jnp.arange(base.size).reshape(base.shape)
    i = 0
    for op, n, static in steps:
        pos = op.fn(pos, *operands[i:i + n], **dict(static))
        i += n
    flat = base.reshape(-1).at[pos.reshape(-1)].set(new_view.reshape(-1), unique_indices=True)
    return flat.reshape(base.shape)


view_scatter = Op("view_scatter", _view_scatter, saves=SAVES_NONE, grad_name="CopySlices")
