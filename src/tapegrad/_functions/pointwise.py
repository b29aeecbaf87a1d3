"""Elementwise ops: arithmetic (`add`, `mul`, `pow`, ...), math (`exp`, `sin`, `erf`, ...),
comparisons, logic and bitwise ops, with PyTorch's type promotion and its subgradients at ties.
"""
from __future__ import annotations

import builtins
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

from .._core import checks as _checks, dtype as _dtype
from .._core.graph import Node, Op, SAVES_OUTPUT
from .._core.rows import abs_, broadcast_check, elementwise
from .._tensor.apply import apply
from .._tensor.checked import checked
from .._tensor.methods import method
from .._tensor.tensor import Tensor
from .index import nonzero


Number = builtins.int | builtins.float | builtins.bool

mul_op = elementwise("mul", jnp.multiply, saves="all")


def scaled(x, alpha):
    """`alpha * x`, with no op recorded when `alpha` is 1 (`add(alpha=)`, `addmm(beta=)`)."""
    if alpha == 1:
        return x
    return apply(mul_op, x, alpha)


# -- arithmetic -----------------------------------------------------------------------------------
add_op = elementwise("add", jnp.add)


@method("add", "__add__", "__radd__", inplace=("add_", "__iadd__"))
def add(input, other, *, alpha: Number = 1) -> Tensor:
    """`input + alpha * other`, broadcasting, with PyTorch's type promotion."""
    return apply(add_op, input, scaled(other, alpha))


def _is_number(x) -> bool:
    return not isinstance(x, Node)


# `2 - x` is PyTorch's rsub, named RsubBackward1
sub_op = elementwise("sub", jnp.subtract, grad_name=lambda static, inputs: (
    "RsubBackward1" if _is_number(inputs[0]) else "SubBackward0"))


@method("sub", "subtract", "__sub__", inplace=("sub_", "__isub__"), reflected=("__rsub__",))
def sub(input, other, *, alpha: Number = 1) -> Tensor:
    """`input - alpha * other`."""
    return apply(sub_op, input, scaled(other, alpha))


subtract = sub


@method("mul", "multiply", "__mul__", "__rmul__", inplace=("mul_", "__imul__"))
def mul(input, other) -> Tensor:
    return apply(mul_op, input, other)


multiply = mul
div_op = elementwise("div", jnp.true_divide, promote="float", saves="all")
floor_divide_op = elementwise("floor_divide", jnp.floor_divide, differentiable=False)
trunc_op = elementwise("trunc", jnp.trunc)


@method("div", "divide", "true_divide", "__truediv__", inplace=("div_", "__itruediv__"),
        reflected=("__rtruediv__",))
def div(input, other, *, rounding_mode: str | None = None) -> Tensor:
    """True division (integers give floats); `rounding_mode="floor"` or `"trunc"` rounds."""
    if rounding_mode is None:
        return apply(div_op, input, other)
    if rounding_mode == "floor":
        return apply(floor_divide_op, input, _divisor("div", input, other))
    if rounding_mode == "trunc":
        q = apply(div_op, input, _divisor("div", input, other))
        return apply(trunc_op, q).to(_dtype.result_type([_typed(input), _typed(other)]))
    raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but "
                       f"found '{rounding_mode}'")


divide = true_divide = div


def _typed(x):
    return (x.dtype, x.ndim) if isinstance(x, Tensor) else x


def _divisor(name: str, input, other):
    """`other`, refused where it is an integer zero dividing integers (PyTorch's
    "ZeroDivisionError"): at the call for a number or a known tensor, else where computed."""
    if not isinstance(input, Tensor) or not (input.dtype.is_floating_point or input.dtype.is_complex):
        kind = _dtype.result_type([_typed(input), _typed(other)])
        if not (kind.is_floating_point or kind.is_complex):
            if not isinstance(other, Tensor):
                if other == 0:
                    raise RuntimeError("ZeroDivisionError")
            else:
                return checked(other, name, _checks.equal, (0,), RuntimeError, "ZeroDivisionError")
    return other


@method("floor_divide", "__floordiv__", inplace=("__ifloordiv__",), reflected=("__rfloordiv__",))
def floor_divide(input, other) -> Tensor:
    return apply(floor_divide_op, input, _divisor("floor_divide", input, other))


remainder_op = elementwise("remainder", jnp.remainder, saves="all")


@method("remainder", "__mod__", inplace=("remainder_", "__imod__"), reflected=("__rmod__",))
def remainder(input, other) -> Tensor:
    return apply(remainder_op, input, _divisor("remainder", input, other))


@jax.custom_jvp
def _pow(a, b):
    """`a ** b` with PyTorch's derivatives at the singular points: 0 for `a` where `b == 0`
    (`0 ** 0.0`), and for `b` 0 where `a == 0` and `b >= 0`, else `a ** b * log(a)` (so `-inf`
    at `0 ** -1`, where jnp's rule gives nan). Each input's term is formed only when it has a
    tangent, so an infinite coefficient never meets a zero tangent (`inf * 0`)."""
    out = jnp.power(a, b)
    if not jnp.issubdtype(out.dtype, jnp.integer) or \
            jnp.issubdtype(jnp.result_type(b), jnp.unsignedinteger):
        return out
    # an integer to a negative integer power truncates, as in PyTorch: 0 but for a base of +-1
    inverse = jnp.where(a == 1, 1, jnp.where(a == -1, jnp.where(b % 2 == 0, 1, -1), 0))
    return jnp.where(b < 0, inverse.astype(out.dtype), out)


def _pow_jvp(primals, tangents):
    (a, b), (da, db) = primals, tangents
    out = _pow(a, b)
    dout = jnp.zeros_like(out)
    if not isinstance(da, SymbolicZero):
        dout = dout + jnp.where(b == 0, jnp.zeros_like(out), b * _pow(a, b - 1)) * da
    if not isinstance(db, SymbolicZero):
        real_b = jnp.real(b) if jnp.iscomplexobj(b) else b
        nonneg = (real_b >= 0) & (b == real_b)  # real and >= 0, as PyTorch asks of a complex `b`
        dout = dout + jnp.where((a == 0) & nonneg, jnp.zeros_like(out), out * jnp.log(a)) * db
    return out, dout


_pow.defjvp(_pow_jvp, symbolic_zeros=True)


# PyTorch's overloads: tensor ** number, tensor ** tensor, number ** tensor
pow_op = elementwise("pow", _pow, saves="all", grad_name=lambda static, inputs: (
    "PowBackward2" if _is_number(inputs[0]) else
    "PowBackward0" if _is_number(inputs[1]) else "PowBackward1"))


@method("pow", "__pow__", inplace=("pow_", "__ipow__"), reflected=("__rpow__",))
def pow(input, exponent) -> Tensor:  # noqa: A001
    if (isinstance(input, Tensor) and _is_int_number(exponent) and exponent < 0
            and not (input.dtype.is_floating_point or input.dtype.is_complex)):
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    return apply(pow_op, input, exponent)


def _is_int_number(x) -> bool:
    return isinstance(x, (builtins.int, np.integer)) and not isinstance(x, builtins.bool)


neg_op = elementwise("neg", jnp.negative)


@method("neg", "negative", "__neg__", inplace=("neg_",))
def neg(input) -> Tensor:
    return apply(neg_op, input)


negative = neg
maximum_op = elementwise("maximum", jnp.maximum, saves="all")


@method("maximum")
def maximum(input, other) -> Tensor:
    return apply(maximum_op, input, other)


minimum_op = elementwise("minimum", jnp.minimum, saves="all")


@method("minimum")
def minimum(input, other) -> Tensor:
    return apply(minimum_op, input, other)


# -- elementwise math -----------------------------------------------------------------------------
exp_op = elementwise("exp", jnp.exp, promote="float", saves=SAVES_OUTPUT)


@method("exp", inplace=("exp_",))
def exp(input) -> Tensor:
    return apply(exp_op, input)


log_op = elementwise("log", jnp.log, promote="float", saves="all")


@method("log", inplace=("log_",))
def log(input) -> Tensor:
    return apply(log_op, input)


sqrt_op = elementwise("sqrt", jnp.sqrt, promote="float", saves=SAVES_OUTPUT)


@method("sqrt", inplace=("sqrt_",))
def sqrt(input) -> Tensor:
    return apply(sqrt_op, input)


sin_op = elementwise("sin", jnp.sin, promote="float", saves="all")


@method("sin", inplace=("sin_",))
def sin(input) -> Tensor:
    return apply(sin_op, input)


cos_op = elementwise("cos", jnp.cos, promote="float", saves="all")


@method("cos", inplace=("cos_",))
def cos(input) -> Tensor:
    return apply(cos_op, input)


tanh_op = elementwise("tanh", jnp.tanh, promote="float", saves=SAVES_OUTPUT)


@method("tanh", inplace=("tanh_",))
def tanh(input) -> Tensor:
    return apply(tanh_op, input)


sigmoid_op = elementwise("sigmoid", jax.nn.sigmoid, promote="float", saves=SAVES_OUTPUT)


@method("sigmoid", inplace=("sigmoid_",))
def sigmoid(input) -> Tensor:
    return apply(sigmoid_op, input)


def _relu(x):
    return jnp.where(x <= 0, jnp.zeros_like(x), x)  # derivative 0 at 0 and NaN kept, as PyTorch


relu_op = elementwise("relu", _relu, saves=SAVES_OUTPUT)


@method("relu", inplace=("relu_",))
def relu(input) -> Tensor:
    return apply(relu_op, input)


abs_op = elementwise("abs", abs_, saves="all")


@method("abs", "absolute", "__abs__", inplace=("abs_",))
def abs(input) -> Tensor:  # noqa: A001
    return apply(abs_op, input)


absolute = abs


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


# PyTorch's overloads: ClampBackward1 for number bounds, ClampBackward0 for tensor bounds
clamp_op = Op("clamp", _clamp, promote="common", saves=(0,), check=broadcast_check,
              grad_name=lambda static, inputs: (
                  "ClampBackward1" if all(_is_number(b) for b in inputs[1:]) else "ClampBackward0"))


@method("clamp", "clip", inplace=("clamp_", "clip_"))
def clamp(input, min=None, max=None) -> Tensor:  # noqa: A002
    """Limit values to `[min, max]`; the gradient passes where `min <= input <= max`."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    which = "both" if min is not None and max is not None else "min" if min is not None else "max"
    bounds = [b for b in (min, max) if b is not None]
    return apply(clamp_op, input, *bounds, which=which)


clip = clamp


# -- comparisons ----------------------------------------------------------------------------------
eq_op = elementwise("eq", jnp.equal, differentiable=False)


@method("eq", "__eq__")
def eq(input, other) -> Tensor:
    return apply(eq_op, input, other)


ne_op = elementwise("ne", jnp.not_equal, differentiable=False)


@method("ne", "__ne__")
def ne(input, other) -> Tensor:
    return apply(ne_op, input, other)


lt_op = elementwise("lt", jnp.less, differentiable=False)


@method("lt", "__lt__")
def lt(input, other) -> Tensor:
    return apply(lt_op, input, other)


le_op = elementwise("le", jnp.less_equal, differentiable=False)


@method("le", "__le__")
def le(input, other) -> Tensor:
    return apply(le_op, input, other)


gt_op = elementwise("gt", jnp.greater, differentiable=False)


@method("gt", "__gt__")
def gt(input, other) -> Tensor:
    return apply(gt_op, input, other)


ge_op = elementwise("ge", jnp.greater_equal, differentiable=False)


@method("ge", "__ge__")
def ge(input, other) -> Tensor:
    return apply(ge_op, input, other)


def _unary(op, doc: str):
    def fn(input: Tensor) -> Tensor:
        return apply(op, input)
    fn.__name__ = fn.__qualname__ = op.name
    fn.__doc__ = doc
    return fn


expm1_op = elementwise("expm1", jnp.expm1, promote="float", saves=SAVES_OUTPUT)
expm1 = method("expm1", inplace=("expm1_",))(_unary(expm1_op, "`exp(x) - 1`, accurate near 0."))
log1p_op = elementwise("log1p", jnp.log1p, promote="float", saves="all")
log1p = method("log1p", inplace=("log1p_",))(_unary(log1p_op, "`log(1 + x)`, accurate near 0."))
log2_op = elementwise("log2", jnp.log2, promote="float", saves="all")
log2 = method("log2", inplace=("log2_",))(_unary(log2_op, "Base-2 logarithm."))
log10_op = elementwise("log10", jnp.log10, promote="float", saves="all")
log10 = method("log10", inplace=("log10_",))(_unary(log10_op, "Base-10 logarithm."))
rsqrt_op = elementwise("rsqrt", lax.rsqrt, promote="float", saves=SAVES_OUTPUT)
rsqrt = method("rsqrt", inplace=("rsqrt_",))(_unary(rsqrt_op, "`1 / sqrt(x)`."))
tan_op = elementwise("tan", jnp.tan, promote="float", saves=SAVES_OUTPUT)
tan = method("tan", inplace=("tan_",))(_unary(tan_op, "Tangent."))
asin_op = elementwise("asin", jnp.arcsin, promote="float", saves="all")
asin = arcsin = method("asin", "arcsin", inplace=("asin_",))(_unary(asin_op, "Inverse sine."))
acos_op = elementwise("acos", jnp.arccos, promote="float", saves="all")
acos = arccos = method("acos", "arccos", inplace=("acos_",))(_unary(acos_op, "Inverse cosine."))
atan_op = elementwise("atan", jnp.arctan, promote="float", saves="all")
atan = arctan = method("atan", "arctan", inplace=("atan_",))(_unary(atan_op, "Inverse tangent."))
sinh_op = elementwise("sinh", jnp.sinh, promote="float", saves="all")
sinh = method("sinh", inplace=("sinh_",))(_unary(sinh_op, "Hyperbolic sine."))
cosh_op = elementwise("cosh", jnp.cosh, promote="float", saves="all")
cosh = method("cosh", inplace=("cosh_",))(_unary(cosh_op, "Hyperbolic cosine."))
erf_op = elementwise("erf", jax.scipy.special.erf, promote="float", saves="all")
erf = method("erf", inplace=("erf_",))(_unary(erf_op, "The error function."))
erfinv_op = elementwise("erfinv", jax.scipy.special.erfinv, promote="float", saves="all")
erfinv = method("erfinv", inplace=("erfinv_",))(_unary(erfinv_op, "The inverse error function."))
exp2_op = elementwise("exp2", jnp.exp2, promote="float", saves=SAVES_OUTPUT)
exp2 = method("exp2", inplace=("exp2_",))(_unary(exp2_op, "`2 ** x`."))
asinh_op = elementwise("asinh", jnp.arcsinh, promote="float", saves="all")
asinh = arcsinh = method("asinh", "arcsinh", inplace=("asinh_", "arcsinh_"))(
    _unary(asinh_op, "Inverse hyperbolic sine."))
acosh_op = elementwise("acosh", jnp.arccosh, promote="float", saves="all")
acosh = arccosh = method("acosh", "arccosh", inplace=("acosh_", "arccosh_"))(
    _unary(acosh_op, "Inverse hyperbolic cosine (NaN below 1)."))
atanh_op = elementwise("atanh", jnp.arctanh, promote="float", saves="all")
atanh = arctanh = method("atanh", "arctanh", inplace=("atanh_", "arctanh_"))(
    _unary(atanh_op, "Inverse hyperbolic tangent (+-inf at +-1)."))
lgamma_op = elementwise("lgamma", jax.scipy.special.gammaln, promote="float", saves="all")
lgamma = method("lgamma", inplace=("lgamma_",))(_unary(lgamma_op, "`log(|gamma(x)|)`."))


def _digamma(x):
    # PyTorch's value at the pole 0: -inf at +0, +inf at -0 (jax gives NaN)
    return jnp.where(x == 0, jnp.copysign(jnp.inf, -x).astype(x.dtype),
                     jax.scipy.special.digamma(x))


digamma_op = elementwise("digamma", _digamma, promote="float", saves="all")
digamma = psi = method("digamma", inplace=("digamma_",))(
    _unary(digamma_op, "The logarithmic derivative of the gamma function."))


def _polygamma(x, *, n, dtype):
    x = jnp.asarray(x, dtype)
    if n == 0:
        return _digamma(x)
    pole = jnp.asarray(np.inf if n % 2 else -np.inf, dtype)  # PyTorch's sign of the pole at 0
    return jnp.where(x == 0, pole, jax.scipy.special.polygamma(n, x))


polygamma_op = Op("polygamma", _polygamma, promote="float", saves="all")


def polygamma(n: builtins.int, input: Tensor) -> Tensor:
    """The `n`-th derivative of `digamma` (`polygamma(0, x)` is `digamma(x)`)."""
    if n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    return apply(polygamma_op, input, n=builtins.int(n))


@method("polygamma", inplace=("polygamma_",))
def _polygamma_method(self: Tensor, n: builtins.int) -> Tensor:
    """`Tensor.polygamma(n)`: the tensor comes first, unlike `torch.polygamma(n, input)`."""
    return polygamma(n, self)
reciprocal_op = elementwise("reciprocal", jnp.reciprocal, promote="float", saves=SAVES_OUTPUT)
reciprocal = method("reciprocal", inplace=("reciprocal_",))(_unary(reciprocal_op, "`1 / x` (integers give floats)."))
square_op = elementwise("square", jnp.square, saves="all", grad_name="PowBackward0")
square = method("square", inplace=("square_",))(_unary(square_op, "`x * x`."))
def _sign(x):
    if x.dtype == jnp.bool_:
        return x
    # PyTorch's `(0 < x) - (x < 0)`: 0 (not jnp's NaN or -0.0) at NaN and -0.0
    return ((x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)).astype(x.dtype)


sign_op = elementwise("sign", _sign)


@method("sign", inplace=("sign_",))
def sign(input: Tensor) -> Tensor:
    """-1, 0 or 1 by the sign of each element: 0 at NaN and at +-0 (gradient 0)."""
    if input.dtype.is_complex:
        raise NotImplementedError("Unlike NumPy, torch.sign is not intended to support complex numbers. "
                           "Please use torch.sgn instead.")
    return apply(sign_op, input)


def _sgn(x):
    if not jnp.iscomplexobj(x):
        return _sign(x)
    a = jnp.abs(x)
    return jnp.where(a == 0, jnp.zeros_like(x), x / jnp.where(a == 0, 1, a).astype(x.dtype))


sgn_op = elementwise("sgn", _sgn, saves="all")


@method("sgn", inplace=("sgn_",))
def sgn(input: Tensor) -> Tensor:
    """`sign` extended to complex numbers: `x / |x|`, 0 at 0."""
    return apply(sgn_op, input)


floor_op = elementwise("floor", jnp.floor)
floor = method("floor", inplace=("floor_",))(_unary(floor_op, "Round down (gradient 0)."))
ceil_op = elementwise("ceil", jnp.ceil)
ceil = method("ceil", inplace=("ceil_",))(_unary(ceil_op, "Round up (gradient 0)."))
trunc = fix = method("trunc", "fix", inplace=("trunc_",))(_unary(trunc_op, "Round toward zero (gradient 0)."))
frac_op = elementwise("frac", lambda x: x - jnp.trunc(x))
frac = method("frac", inplace=("frac_",))(_unary(frac_op, "`x - trunc(x)`."))
isnan_op = Op("isnan", jnp.isnan, differentiable=False)
isnan = method("isnan")(_unary(isnan_op, "True where the element is NaN."))
isinf_op = Op("isinf", jnp.isinf, differentiable=False)
isinf = method("isinf")(_unary(isinf_op, "True where the element is +-inf."))
isfinite_op = Op("isfinite", jnp.isfinite, differentiable=False)
isfinite = method("isfinite")(_unary(isfinite_op, "True where the element is neither NaN nor infinite."))
logical_not_op = Op("logical_not", jnp.logical_not, differentiable=False)
logical_not = method("logical_not", inplace=("logical_not_",))(_unary(logical_not_op, "Elementwise `not` (bool result)."))
round_op = elementwise("round", jnp.round)  # half to even, as PyTorch


@method("round", inplace=("round_",))
def round(input: Tensor, *, decimals: builtins.int = 0) -> Tensor:  # noqa: A001
    """Round half to even; `decimals` rounds to that many decimal places."""
    if decimals == 0:
        return apply(round_op, input)
    scale = 10.0 ** decimals
    return apply(div_op, apply(round_op, apply(mul_op, input, scale)), scale).to(input.dtype)


@jax.custom_jvp
def _atan2(a, b):
    return jnp.arctan2(a, b)


@_atan2.defjvp
def _atan2_jvp(primals, tangents):
    # PyTorch's derivative `(b da - a db) / (a**2 + b**2)` with the reciprocal 0 where the
    # denominator is 0 (so 0 at (0, 0), where jnp's is NaN)
    (a, b), (da, db) = primals, tangents
    denom = a * a + b * b
    recip = jnp.where(denom == 0, jnp.zeros_like(denom), 1 / jnp.where(denom == 0, 1, denom))
    return _atan2(a, b), (b * da - a * db) * recip


atan2_op = elementwise("atan2", _atan2, promote="float", saves="all")


@method("atan2", "arctan2", inplace=("atan2_",))
def atan2(input: Tensor, other: Tensor) -> Tensor:
    """The angle of `(other, input)` in radians, quadrant-aware."""
    return apply(atan2_op, input, other)


arctan2 = atan2
fmod_op = elementwise("fmod", jnp.fmod, saves="all")


@method("fmod", inplace=("fmod_",))
def fmod(input: Tensor, other) -> Tensor:
    """C's remainder: the result has the sign of `input` (compare `remainder`)."""
    return apply(fmod_op, input, _divisor("fmod", input, other))


logaddexp_op = elementwise("logaddexp", jnp.logaddexp, promote="float", saves="all")


@method("logaddexp")
def logaddexp(input: Tensor, other: Tensor) -> Tensor:
    """`log(exp(input) + exp(other))` without overflow."""
    return apply(logaddexp_op, input, other)


def _copysign(a, b):
    m = abs_(a)  # derivative 0 at 0, as PyTorch's copysign backward
    return jnp.where(jnp.signbit(b), -m, m)


copysign_op = elementwise("copysign", _copysign, promote="float", saves="all")


@method("copysign", inplace=("copysign_",))
def copysign(input: Tensor, other) -> Tensor:
    """`|input|` with the sign of `other` (a signed zero counts: `copysign(1, -0.0)` is -1)."""
    return apply(copysign_op, input, other)


@jax.custom_jvp
def _xlogy(x, y):
    return jnp.where((x == 0) & ~jnp.isnan(y), jnp.zeros_like(x), x * jnp.log(y))


@_xlogy.defjvp
def _xlogy_jvp(primals, tangents):
    # PyTorch's derivatives: d/dx is log(y), but 0 where x == 0 and y <= 0; d/dy is x / y
    (x, y), (dx, dy) = primals, tangents
    dlog = jnp.where((x == 0) & (y <= 0), jnp.zeros_like(y), jnp.log(y))
    return _xlogy(x, y), dx * dlog + dy * (x / y)


xlogy_op = elementwise("xlogy", _xlogy, promote="float", saves="all",
                       grad_name=lambda static, inputs: (
                           "XlogyBackward1" if _is_number(inputs[0]) else
                           "XlogyBackward2" if _is_number(inputs[1]) else "XlogyBackward0"))


@method("xlogy", inplace=("xlogy_",))
def xlogy(input, other) -> Tensor:
    """`input * log(other)`, 0 where `input` is 0 (unless `other` is NaN)."""
    return apply(xlogy_op, input, other)


def _value_in(value, *tensors):
    """`value` in the tensors' common dtype: it takes no part in promotion (an integer result
    truncates a float `value`, as PyTorch)."""
    d = _dtype.result_type([_typed(t) for t in tensors])
    if not (d.is_floating_point or d.is_complex) and isinstance(value, builtins.float):
        return builtins.int(value)
    return value


addcmul_op = elementwise("addcmul", lambda x, a, b, v: x + v * a * b, saves=(1, 2))


@method("addcmul", inplace=("addcmul_",))
def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Number = 1) -> Tensor:
    """`input + value * tensor1 * tensor2`, broadcasting."""
    return apply(addcmul_op, input, tensor1, tensor2, _value_in(value, input, tensor1, tensor2))


addcdiv_op = elementwise("addcdiv", lambda x, a, b, v: x + v * a / b, saves=(1, 2))


@method("addcdiv", inplace=("addcdiv_",))
def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Number = 1) -> Tensor:
    """`input + value * tensor1 / tensor2`, broadcasting; integer `tensor1 / tensor2` raises, as
    in PyTorch."""
    if not (tensor1.dtype.is_floating_point or tensor1.dtype.is_complex
            or tensor2.dtype.is_floating_point or tensor2.dtype.is_complex):
        raise RuntimeError(
            "Integer division with addcdiv is no longer supported, and in a future release "
            "addcdiv will perform a true division of tensor1 and tensor2. The historic addcdiv "
            "behavior can be implemented as (input + value * torch.trunc(tensor1 / tensor2))"
            ".to(input.dtype) for integer inputs and as (input + value * tensor1 / tensor2) for "
            "float inputs. The future addcdiv behavior is just the latter implementation: "
            "(input + value * tensor1 / tensor2), for all dtypes.")
    return apply(addcdiv_op, input, tensor1, tensor2, _value_in(value, input, tensor1, tensor2))


def _isclose(a, b, *, rtol, atol, equal_nan):
    if a.dtype == jnp.bool_:
        return a == b
    return jnp.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)


isclose_op = Op("isclose", _isclose, differentiable=False, check=broadcast_check)


@method("isclose")
def isclose(input: Tensor, other: Tensor, rtol: builtins.float = 1e-05,
            atol: builtins.float = 1e-08, equal_nan: builtins.bool = False) -> Tensor:
    """True where `|input - other| <= atol + rtol * |other|` (equal infinities are close; NaNs
    only with `equal_nan`)."""
    if input.dtype is not other.dtype:
        raise RuntimeError(f"{_dtype.scalar_name(input.dtype)} did not match "
                           f"{_dtype.scalar_name(other.dtype)}")
    for name, v in (("rtol", rtol), ("atol", atol)):
        if v < 0:
            raise RuntimeError(f"{name} must be greater than or equal to zero, but got {v}")
    return apply(isclose_op, input, other, rtol=builtins.float(rtol), atol=builtins.float(atol),
                 equal_nan=builtins.bool(equal_nan))


@method("allclose")
def allclose(input: Tensor, other: Tensor, rtol: builtins.float = 1e-05,
             atol: builtins.float = 1e-08, equal_nan: builtins.bool = False) -> builtins.bool:
    """`isclose(...).all()` as a Python bool."""
    return builtins.bool(isclose(input, other, rtol, atol, equal_nan).all())


lerp_op = elementwise("lerp", lambda a, b, w: a + w * (b - a), saves="all")


@method("lerp", inplace=("lerp_",))
def lerp(input: Tensor, end: Tensor, weight) -> Tensor:
    """`input + weight * (end - input)`; `end` and a tensor `weight` of `input`'s dtype."""
    for name, t in (("end", end), ("weight", weight)):
        if isinstance(t, Tensor) and t.dtype is not input.dtype:
            raise RuntimeError(f"expected dtype {_dtype.c_name(input.dtype)} for `{name}` but got "
                               f"dtype {_dtype.c_name(t.dtype)}")
    return apply(lerp_op, input, end, weight)


def _where(cond, x, y, *, dtype):
    return jnp.where(cond, jnp.asarray(x, dtype), jnp.asarray(y, dtype))


where_op = Op("where", _where, promote="common", saves=(0,), check=broadcast_check)


def where(condition: Tensor, input=None, other=None) -> Tensor:
    """`input` where `condition` is true, else `other`; `where(condition)` is `nonzero(as_tuple)`."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    if not isinstance(condition, Tensor) or condition.dtype is not _dtype.bool:
        got = condition.dtype if isinstance(condition, Tensor) else type(condition).__name__
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor "
                           f"with dtype {got}")
    return apply(where_op, condition, input, other)


@method("where")
def _where_method(self: Tensor, condition: Tensor, other) -> Tensor:
    """`self` where `condition` is true, else `other` (`Tensor.where`)."""
    return where(condition, self, other)


nan_to_num_op = Op("nan_to_num", lambda x, *, nan, posinf, neginf: jnp.nan_to_num(
    x, nan=nan, posinf=posinf, neginf=neginf), saves="all")


@method("nan_to_num", inplace=("nan_to_num_",))
def nan_to_num(input: Tensor, nan: builtins.float = 0.0, posinf: builtins.float | None = None,
               neginf: builtins.float | None = None) -> Tensor:
    """Replace NaN with `nan` and infinities with `posinf`/`neginf` (default: the dtype's extremes)."""
    if not input.dtype.is_floating_point:
        return input.clone()
    info = np.finfo(input.dtype.np) if input.dtype.name != "bfloat16" else None
    hi = builtins.float(info.max) if info is not None else 3.3895313892515355e38
    return apply(nan_to_num_op, input, nan=builtins.float(nan),
                 posinf=hi if posinf is None else builtins.float(posinf),
                 neginf=-hi if neginf is None else builtins.float(neginf))


@method("clamp_min", inplace=("clamp_min_",))
def clamp_min(input: Tensor, min) -> Tensor:  # noqa: A002
    return clamp(input, min=min)


@method("clamp_max", inplace=("clamp_max_",))
def clamp_max(input: Tensor, max) -> Tensor:  # noqa: A002
    return clamp(input, max=max)


# -- logic ----------------------------------------------------------------------------------------
logical_and_op = Op("logical_and", jnp.logical_and, differentiable=False, check=broadcast_check)


@method("logical_and", inplace=("logical_and_",))
def logical_and(input: Tensor, other: Tensor) -> Tensor:
    return apply(logical_and_op, input, other)


logical_or_op = Op("logical_or", jnp.logical_or, differentiable=False, check=broadcast_check)


@method("logical_or", inplace=("logical_or_",))
def logical_or(input: Tensor, other: Tensor) -> Tensor:
    return apply(logical_or_op, input, other)


logical_xor_op = Op("logical_xor", jnp.logical_xor, differentiable=False, check=broadcast_check)


@method("logical_xor")
def logical_xor(input: Tensor, other: Tensor) -> Tensor:
    return apply(logical_xor_op, input, other)


def _integral(name: str, *xs) -> None:
    for x in xs:
        d = x.dtype if isinstance(x, Tensor) else _dtype.scalar_dtype(x)
        if d.is_floating_point or d.is_complex:
            raise NotImplementedError(f'"{name}_cpu" not implemented for '
                                      f"'{_dtype.scalar_name(d)}'")


bitwise_and_op = elementwise("bitwise_and", jnp.bitwise_and, differentiable=False)


@method("bitwise_and", "__and__", inplace=("bitwise_and_", "__iand__"), reflected=("__rand__",))
def bitwise_and(input, other) -> Tensor:
    """Bitwise (integers) or logical (bools) `and`: the `&` operator."""
    _integral("bitwise_and", input, other)
    return apply(bitwise_and_op, input, other)


bitwise_or_op = elementwise("bitwise_or", jnp.bitwise_or, differentiable=False)


@method("bitwise_or", "__or__", inplace=("bitwise_or_", "__ior__"), reflected=("__ror__",))
def bitwise_or(input, other) -> Tensor:
    _integral("bitwise_or", input, other)
    return apply(bitwise_or_op, input, other)


bitwise_xor_op = elementwise("bitwise_xor", jnp.bitwise_xor, differentiable=False)


@method("bitwise_xor", "__xor__", inplace=("bitwise_xor_", "__ixor__"), reflected=("__rxor__",))
def bitwise_xor(input, other) -> Tensor:
    _integral("bitwise_xor", input, other)
    return apply(bitwise_xor_op, input, other)


bitwise_left_shift_op = elementwise("bitwise_left_shift", jnp.left_shift, differentiable=False)


@method("bitwise_left_shift", "__lshift__", inplace=("bitwise_left_shift_", "__ilshift__"),
        reflected=("__rlshift__",))
def bitwise_left_shift(input, other) -> Tensor:
    """`input << other` on integers (shifts past the width give 0)."""
    _integral("lshift", input, other)
    return apply(bitwise_left_shift_op, input, other)


bitwise_right_shift_op = elementwise("bitwise_right_shift", jnp.right_shift,
                                     differentiable=False)


@method("bitwise_right_shift", "__rshift__", inplace=("bitwise_right_shift_", "__irshift__"),
        reflected=("__rrshift__",))
def bitwise_right_shift(input, other) -> Tensor:
    """`input >> other` on integers, arithmetic (sign-filling) for signed types."""
    _integral("rshift", input, other)
    return apply(bitwise_right_shift_op, input, other)


bitwise_not_op = Op("bitwise_not", jnp.invert, differentiable=False)


@method("bitwise_not", "__invert__", inplace=("bitwise_not_",))
def bitwise_not(input: Tensor) -> Tensor:
    """Bitwise (integers) or logical (bools) `not`: the `~` operator."""
    if input.dtype.is_floating_point or input.dtype.is_complex:
        raise TypeError("~ (operator.invert) is only implemented on integer and Boolean-type "
                        "tensors")
    return apply(bitwise_not_op, input)


# -- NaN-ignoring extremes, hypot, logit, heaviside, gcd/lcm ---------------------------------------
def _tensors_only(name: str, **args) -> None:
    for arg, value in args.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"{name}(): argument '{arg}' must be Tensor, not "
                            f"{type(value).__name__}")


def _fmax(a, b):
    # the gradient goes where the result comes from: `input` at ties and where `other` is NaN
    return jnp.where((a >= b) | jnp.isnan(b), a, b)


fmax_op = elementwise("fmax", _fmax, saves="all")


@method("fmax")
def fmax(input: Tensor, other: Tensor) -> Tensor:
    """`maximum` that ignores NaN: the other element where one is NaN (NaN only where both are)."""
    _tensors_only("fmax", other=other)
    return apply(fmax_op, input, other)


def _fmin(a, b):
    return jnp.where((a <= b) | jnp.isnan(b), a, b)


fmin_op = elementwise("fmin", _fmin, saves="all")


@method("fmin")
def fmin(input: Tensor, other: Tensor) -> Tensor:
    """`minimum` that ignores NaN: the other element where one is NaN (NaN only where both are)."""
    _tensors_only("fmin", other=other)
    return apply(fmin_op, input, other)


@jax.custom_jvp
def _hypot(a, b):
    return jnp.hypot(a, b)


@_hypot.defjvp
def _hypot_jvp(primals, tangents):
    # PyTorch's derivative `(a da + b db) / hypot`: NaN at (0, 0), where jnp's is 0
    (a, b), (da, db) = primals, tangents
    out = _hypot(a, b)
    return out, (a * da + b * db) / out


hypot_op = elementwise("hypot", _hypot, saves="all")


@method("hypot", inplace=("hypot_",))
def hypot(input: Tensor, other: Tensor) -> Tensor:
    """`sqrt(input**2 + other**2)` without overflow; floating point only, as PyTorch."""
    _tensors_only("hypot", other=other)
    d = _dtype.result_type([_typed(input), _typed(other)])
    if not (d.is_floating_point or d.is_complex):
        raise NotImplementedError(f"\"hypot_cpu\" not implemented for '{_dtype.scalar_name(d)}'")
    return apply(hypot_op, input, other)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _logit_at(x, eps):
    p = x if eps is None else jnp.clip(x, eps, 1 - eps)
    return jnp.log(p / (1 - p))


@_logit_at.defjvp
def _logit_jvp(eps, primals, tangents):
    # PyTorch's derivative `1 / (x (1 - x))`: NaN outside [0, 1] without `eps`, and 0 outside
    # [eps, 1 - eps] with it (the clamped region)
    (x,), (dx,) = primals, tangents
    scale = 1 / (x * (1 - x))
    if eps is None:
        scale = jnp.where((x < 0) | (x > 1), jnp.nan, scale)
    else:
        scale = jnp.where((x < eps) | (x > 1 - eps), 0, scale)
    return _logit_at(x, eps), scale.astype(x.dtype) * dx


logit_op = Op("logit", lambda x, *, eps, dtype: _logit_at(jnp.asarray(x, dtype), eps),
              promote="float", saves="all")


@method("logit", inplace=("logit_",))
def logit(input: Tensor, eps: builtins.float | None = None) -> Tensor:
    """`log(p / (1 - p))`, the inverse of `sigmoid`; `eps` first clamps `p` to `[eps, 1 - eps]`."""
    return apply(logit_op, input, eps=None if eps is None else builtins.float(eps))


@jax.custom_vjp
def _heaviside(x, values):
    return jnp.where(x == 0, values, (x > 0).astype(x.dtype)).astype(x.dtype)


def _heaviside_fwd(x, values):
    return _heaviside(x, values), None


def _heaviside_bwd(residuals, cotangent):
    raise RuntimeError("derivative for aten::heaviside is not implemented")


_heaviside.defvjp(_heaviside_fwd, _heaviside_bwd)
heaviside_op = elementwise("heaviside", _heaviside, grad_name="NotImplemented")


@method("heaviside", inplace=("heaviside_",))
def heaviside(input: Tensor, values: Tensor) -> Tensor:
    """The step function: 0 below zero, 1 above, `values` at zero. PyTorch has no derivative for
    it: a backward through it raises."""
    _tensors_only("heaviside", values=values)
    if input.dtype is not values.dtype:
        raise RuntimeError("heaviside is not yet implemented for tensors with different dtypes.")
    return apply(heaviside_op, input, values)


gcd_op = elementwise("gcd", jnp.gcd, differentiable=False)


@method("gcd", inplace=("gcd_",))
def gcd(input: Tensor, other: Tensor) -> Tensor:
    """The greatest common divisor, elementwise, of integers (`gcd(0, 0)` is 0)."""
    _integral("gcd", input, other)
    return apply(gcd_op, input, other)


lcm_op = elementwise("lcm", jnp.lcm, differentiable=False)


@method("lcm", inplace=("lcm_",))
def lcm(input: Tensor, other: Tensor) -> Tensor:
    """The least common multiple, elementwise, of integers (non-negative; 0 if either is 0)."""
    _integral("lcm", input, other)
    return apply(lcm_op, input, other)
