"""Elementwise math and logic (`tapegrad.exp`, `Tensor.logical_and`, `&`, ...): one row each."""
from __future__ import annotations

import builtins

import numpy as np

from . import _dtype, _ops
from ._record import apply
from ._tensor import Tensor


def _unary(op, doc: str):
    def fn(input: Tensor) -> Tensor:
        return apply(op, input)
    fn.__name__ = fn.__qualname__ = op.name
    fn.__doc__ = doc
    return fn


expm1 = _unary(_ops.expm1, "`exp(x) - 1`, accurate near 0.")
log1p = _unary(_ops.log1p, "`log(1 + x)`, accurate near 0.")
log2 = _unary(_ops.log2, "Base-2 logarithm.")
log10 = _unary(_ops.log10, "Base-10 logarithm.")
rsqrt = _unary(_ops.rsqrt, "`1 / sqrt(x)`.")
tan = _unary(_ops.tan, "Tangent.")
asin = arcsin = _unary(_ops.asin, "Inverse sine.")
acos = arccos = _unary(_ops.acos, "Inverse cosine.")
atan = arctan = _unary(_ops.atan, "Inverse tangent.")
sinh = _unary(_ops.sinh, "Hyperbolic sine.")
cosh = _unary(_ops.cosh, "Hyperbolic cosine.")
erf = _unary(_ops.erf, "The error function.")
erfinv = _unary(_ops.erfinv, "The inverse error function.")
reciprocal = _unary(_ops.reciprocal, "`1 / x` (integers give floats).")
square = _unary(_ops.square, "`x * x`.")
sign = _unary(_ops.sign, "-1, 0 or 1 by the sign of each element (gradient 0).")
floor = _unary(_ops.floor, "Round down (gradient 0).")
ceil = _unary(_ops.ceil, "Round up (gradient 0).")
trunc = fix = _unary(_ops.trunc, "Round toward zero (gradient 0).")
frac = _unary(_ops.frac, "`x - trunc(x)`.")
isnan = _unary(_ops.isnan, "True where the element is NaN.")
isinf = _unary(_ops.isinf, "True where the element is +-inf.")
isfinite = _unary(_ops.isfinite, "True where the element is neither NaN nor infinite.")
logical_not = _unary(_ops.logical_not, "Elementwise `not` (bool result).")


def round(input: Tensor, *, decimals: builtins.int = 0) -> Tensor:  # noqa: A001
    """Round half to even; `decimals` rounds to that many decimal places."""
    if decimals == 0:
        return apply(_ops.round, input)
    scale = 10.0 ** decimals
    return apply(_ops.div, apply(_ops.round, apply(_ops.mul, input, scale)), scale).to(input.dtype)


def atan2(input: Tensor, other: Tensor) -> Tensor:
    """The angle of `(other, input)` in radians, quadrant-aware."""
    return apply(_ops.atan2, input, other)


arctan2 = atan2


def fmod(input: Tensor, other) -> Tensor:
    """C's remainder: the result has the sign of `input` (compare `remainder`)."""
    return apply(_ops.fmod, input, other)


def logaddexp(input: Tensor, other: Tensor) -> Tensor:
    """`log(exp(input) + exp(other))` without overflow."""
    return apply(_ops.logaddexp, input, other)


def lerp(input: Tensor, end: Tensor, weight) -> Tensor:
    """`input + weight * (end - input)`."""
    return apply(_ops.lerp, input, end, weight)


def where(condition: Tensor, input=None, other=None) -> Tensor:
    """`input` where `condition` is true, else `other`; `where(condition)` is `nonzero(as_tuple)`."""
    if input is None and other is None:
        from ._functions_index import nonzero
        return nonzero(condition, as_tuple=True)
    if not isinstance(condition, Tensor) or condition.dtype is not _dtype.bool:
        got = condition.dtype if isinstance(condition, Tensor) else type(condition).__name__
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor "
                           f"with dtype {got}")
    return apply(_ops.where, condition, input, other)


def nan_to_num(input: Tensor, nan: builtins.float = 0.0, posinf: builtins.float | None = None,
               neginf: builtins.float | None = None) -> Tensor:
    """Replace NaN with `nan` and infinities with `posinf`/`neginf` (default: the dtype's extremes)."""
    if not input.dtype.is_floating_point:
        return input.clone()
    info = np.finfo(input.dtype.np) if input.dtype.name != "bfloat16" else None
    hi = builtins.float(info.max) if info is not None else 3.3895313892515355e38
    return apply(_ops.nan_to_num, input, nan=builtins.float(nan),
                 posinf=hi if posinf is None else builtins.float(posinf),
                 neginf=-hi if neginf is None else builtins.float(neginf))


def clamp_min(input: Tensor, min) -> Tensor:  # noqa: A002
    from ._functions import clamp
    return clamp(input, min=min)


def clamp_max(input: Tensor, max) -> Tensor:  # noqa: A002
    from ._functions import clamp
    return clamp(input, max=max)


# -- logic ----------------------------------------------------------------------------------------
def logical_and(input: Tensor, other: Tensor) -> Tensor:
    return apply(_ops.logical_and, input, other)


def logical_or(input: Tensor, other: Tensor) -> Tensor:
    return apply(_ops.logical_or, input, other)


def logical_xor(input: Tensor, other: Tensor) -> Tensor:
    return apply(_ops.logical_xor, input, other)


def _integral(name: str, *xs) -> None:
    for x in xs:
        d = x.dtype if isinstance(x, Tensor) else _dtype.scalar_dtype(x)
        if d.is_floating_point or d.is_complex:
            from ._methods import _type_name
            raise RuntimeError(f'"{name}_cpu" not implemented for \'{_type_name(d)}\'')


def bitwise_and(input, other) -> Tensor:
    """Bitwise (integers) or logical (bools) `and`: the `&` operator."""
    _integral("bitwise_and", input, other)
    return apply(_ops.bitwise_and, input, other)


def bitwise_or(input, other) -> Tensor:
    _integral("bitwise_or", input, other)
    return apply(_ops.bitwise_or, input, other)


def bitwise_xor(input, other) -> Tensor:
    _integral("bitwise_xor", input, other)
    return apply(_ops.bitwise_xor, input, other)


def bitwise_not(input: Tensor) -> Tensor:
    """Bitwise (integers) or logical (bools) `not`: the `~` operator."""
    if input.dtype.is_floating_point or input.dtype.is_complex:
        raise TypeError("~ (operator.invert) is only implemented on integer and Boolean-type "
                        "tensors")
    return apply(_ops.bitwise_not, input)


def _reflected(fn):
    def method(self, other):
        return fn(other, self)
    return method


METHODS = {
    "expm1": expm1, "log1p": log1p, "log2": log2, "log10": log10, "rsqrt": rsqrt, "tan": tan,
    "asin": asin, "arcsin": asin, "acos": acos, "arccos": acos, "atan": atan, "arctan": atan,
    "atan2": atan2, "arctan2": atan2, "sinh": sinh, "cosh": cosh, "erf": erf, "erfinv": erfinv,
    "reciprocal": reciprocal, "square": square, "sign": sign, "floor": floor, "ceil": ceil,
    "round": round, "trunc": trunc, "fix": trunc, "frac": frac, "fmod": fmod,
    "logaddexp": logaddexp, "lerp": lerp, "nan_to_num": nan_to_num, "isnan": isnan,
    "isinf": isinf, "isfinite": isfinite, "logical_and": logical_and, "logical_or": logical_or,
    "logical_xor": logical_xor, "logical_not": logical_not, "bitwise_and": bitwise_and,
    "bitwise_or": bitwise_or, "bitwise_xor": bitwise_xor, "bitwise_not": bitwise_not,
    "where": lambda self, condition, other: where(condition, self, other),
    "__and__": bitwise_and, "__rand__": _reflected(bitwise_and), "__or__": bitwise_or,
    "__ror__": _reflected(bitwise_or), "__xor__": bitwise_xor, "__rxor__": _reflected(bitwise_xor),
    "__invert__": bitwise_not, "clamp_min": clamp_min, "clamp_max": clamp_max,
}

INPLACE = {
    "expm1_": expm1, "log1p_": log1p, "log2_": log2, "log10_": log10, "rsqrt_": rsqrt,
    "tan_": tan, "asin_": asin, "acos_": acos, "atan_": atan, "atan2_": atan2, "sinh_": sinh,
    "cosh_": cosh, "erf_": erf, "erfinv_": erfinv, "reciprocal_": reciprocal, "square_": square,
    "sign_": sign, "floor_": floor, "ceil_": ceil, "round_": round, "trunc_": trunc, "frac_": frac,
    "fmod_": fmod, "lerp_": lerp, "nan_to_num_": nan_to_num, "logical_and_": logical_and,
    "logical_or_": logical_or, "logical_not_": logical_not, "bitwise_and_": bitwise_and,
    "bitwise_or_": bitwise_or, "bitwise_xor_": bitwise_xor, "bitwise_not_": bitwise_not,
    "clamp_min_": clamp_min, "clamp_max_": clamp_max, "__iand__": bitwise_and, "__ior__": bitwise_or, "__ixor__": bitwise_xor,
}
