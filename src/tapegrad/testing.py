"""`tapegrad.testing`: PyTorch's `torch.testing` -- `assert_close` and `make_tensor`.

`assert_close` compares tensors (and numpy arrays, Python numbers, and sequences or mappings of
them) with PyTorch's default tolerances per dtype and raises `AssertionError` with PyTorch's
message, so a test written against `torch.testing` passes or fails the same way here.
"""
from __future__ import annotations

import builtins
import collections.abc
import math
import numbers
import warnings
from typing import Any, Callable

import numpy as np

from ._core import dtype as _dtypes
from ._core.typeinfo import finfo, iinfo
from ._functions.creation import empty, randint
from ._tensor.tensor import Size, Tensor


__all__ = ["assert_close", "make_tensor"]

# {dtype: (rtol, atol)}; other dtypes compare exactly
_TOLERANCES = {
    _dtypes.float16: (1e-3, 1e-5),
    _dtypes.bfloat16: (1.6e-2, 1e-5),
    _dtypes.float32: (1.3e-6, 1e-5),
    _dtypes.float64: (1e-7, 1e-7),
    _dtypes.complex64: (1.3e-6, 1e-5),
    _dtypes.complex128: (1e-7, 1e-7),
}
_FLOATING = (_dtypes.float16, _dtypes.bfloat16, _dtypes.float32, _dtypes.float64)
_COMPLEX = (_dtypes.complex64, _dtypes.complex128)
_INTEGRAL = (_dtypes.uint8, _dtypes.int8, _dtypes.int16, _dtypes.int32, _dtypes.int64,
             _dtypes.uint16, _dtypes.uint32, _dtypes.uint64)


class _Mismatch(Exception):
    """A failed comparison: the exception type to raise and PyTorch's message for it."""

    def __init__(self, kind: type, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


def assert_close(actual: Any, expected: Any, *, allow_subclasses: bool = True,
                 rtol: float | None = None, atol: float | None = None, equal_nan: bool = False,
                 check_device: bool = True, check_dtype: bool = True, check_layout: bool = True,
                 check_stride: bool = False, msg: str | Callable[[str], str] | None = None) -> None:
    """Assert that `actual` and `expected` are close, as `torch.testing.assert_close` does.

    Elements match when `|actual - expected| <= atol + rtol * |expected|` (NaNs match only with
    `equal_nan=True`); without `rtol`/`atol` the loosest default of the two dtypes applies
    (float32: 1.3e-6 and 1e-5, float64: 1e-7 and 1e-7, integers and bools: exact). Shapes, and
    unless switched off devices and dtypes, must be equal; `check_stride=True` compares strides.
    `msg` replaces the message, or, if callable, maps the generated one.
    """
    options = dict(allow_subclasses=allow_subclasses, rtol=rtol, atol=atol, equal_nan=equal_nan,
                   check_device=check_device, check_dtype=check_dtype, check_stride=check_stride)
    try:
        _compare(actual, expected, (), options)
    except _Mismatch as failure:
        message = failure.message
        if failure.kind is AssertionError and msg is not None:
            message = msg if isinstance(msg, str) else msg(message)
        raise failure.kind(message) from None


def _compare(actual, expected, path: tuple, options: dict) -> None:
    if actual is None or expected is None:
        if actual is not expected:
            _fail(path, f"None mismatch: {actual} is not {expected}")
    elif _is_sequence(actual) and _is_sequence(expected):
        if len(actual) != len(expected):
            _fail(path, f"The length of the sequences mismatch: {len(actual)} != {len(expected)}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            _compare(a, e, path + (i,), options)
    elif isinstance(actual, collections.abc.Mapping) and isinstance(expected,
                                                                    collections.abc.Mapping):
        missing = sorted(set(expected) - set(actual), key=str)
        extra = sorted(set(actual) - set(expected), key=str)
        if missing or extra:
            _fail(path, "The keys of the mappings do not match:\n"
                        f"Missing keys in the actual mapping: {missing}\n"
                        f"Additional keys in the actual mapping: {extra}")
        for key in actual:
            _compare(actual[key], expected[key], path + (key,), options)
    elif _is_bool(actual) and _is_bool(expected):
        if builtins.bool(actual) is not builtins.bool(expected):
            _fail(path, f"Booleans mismatch: {builtins.bool(actual)} is not "
                        f"{builtins.bool(expected)}")
    elif _is_number(actual) and _is_number(expected):
        _compare_numbers(actual, expected, path, options)
    elif _tensor_pair(actual, expected, options["allow_subclasses"]):
        _compare_tensors(actual, expected, path, options)
    else:
        raise _Mismatch(TypeError, f"No comparison pair was able to handle inputs of type "
                                   f"{_type_name(actual)} and {_type_name(expected)}.")


def _type_name(x) -> str:
    """`type(x)` as printed, with Tensor under its public path as PyTorch prints torch.Tensor."""
    return "<class 'tapegrad.Tensor'>" if type(x) is Tensor else str(type(x))


def _fail(path: tuple, message: str) -> None:
    if path:
        message += "\n\nThe failure occurred for item " + "".join(f"[{k!r}]" for k in path)
    raise _Mismatch(AssertionError, message)


def _is_sequence(x) -> bool:
    return (isinstance(x, collections.abc.Sequence) and not isinstance(x, str)
            and not isinstance(x, Tensor))


def _is_bool(x) -> bool:
    return isinstance(x, (builtins.bool, np.bool_))


def _is_number(x) -> bool:
    return isinstance(x, numbers.Number) and not _is_bool(x)


def _tensor_pair(actual, expected, allow_subclasses: bool) -> bool:
    if isinstance(actual, np.ndarray) and isinstance(expected, np.ndarray):
        return True
    if not (isinstance(actual, Tensor) and isinstance(expected, Tensor)):
        return False
    return allow_subclasses or type(actual) is type(expected)


def _tolerances(dtypes: tuple, options: dict) -> tuple[float, float]:
    rtol, atol = options["rtol"], options["atol"]
    if (rtol is None) != (atol is None):
        raise _Mismatch(ValueError, "Both 'rtol' and 'atol' must be either specified or omitted, "
                                    f"but got no {'rtol' if rtol is None else 'atol'}.")
    if rtol is not None:
        return rtol, atol
    rtols, atols = zip(*(_TOLERANCES.get(d, (0.0, 0.0)) for d in dtypes))
    return max(rtols), max(atols)


def _number_dtype(x) -> Any:
    """The widest dtype of a number's kind (numpy scalars included), as PyTorch's NumberPair."""
    if isinstance(x, numbers.Integral):
        return _dtypes.int64
    return _dtypes.float64 if isinstance(x, numbers.Real) else _dtypes.complex128


def _compare_numbers(actual, expected, path: tuple, options: dict) -> None:
    if options["check_dtype"] and type(actual) is not type(expected):
        _fail(path, f"The (d)types do not match: {type(actual)} != {type(expected)}.")
    rtol, atol = _tolerances((_number_dtype(actual), _number_dtype(expected)), options)
    if _scalars_close(actual, expected, rtol, atol, options["equal_nan"]):
        return
    _fail(path, _scalar_message(actual, expected, rtol, atol))


def _scalars_close(actual, expected, rtol: float, atol: float, equal_nan: bool) -> bool:
    if actual == expected:
        return True
    if equal_nan and _isnan(actual) and _isnan(expected):
        return True
    if not (_isfinite(actual) and _isfinite(expected)):
        return False
    return abs(actual - expected) <= atol + rtol * abs(expected)


def _isnan(x) -> bool:
    return x != x


def _isfinite(x) -> bool:
    return math.isfinite(x.real) and math.isfinite(x.imag) if isinstance(x, complex) \
        else math.isfinite(x)


def _scalar_message(actual, expected, rtol: float, atol: float) -> str:
    abs_diff = abs(actual - expected)
    rel_diff = float("inf") if expected == 0 else abs_diff / abs(expected)
    return _difference_message("Scalars", f"Expected {expected} but got {actual}.",
                               (abs_diff, None), (rel_diff, None), rtol, atol)


def _difference_message(what: str, extra: str, absolute: tuple, relative: tuple,
                        rtol: float, atol: float) -> str:
    """PyTorch's mismatch message: header, extra lines, and the greatest differences."""
    equality = rtol == 0 and atol == 0
    lines = [f"{what} are not {'equal' if equality else 'close'}!", "", extra]
    for kind, (diff, index), tol in (("absolute", absolute, atol), ("relative", relative, rtol)):
        line = (f"{kind.title()} difference: {diff}" if index is None
                else f"Greatest {kind} difference: {diff} at index {index}")
        lines.append(line if equality else f"{line} (up to {tol} allowed)")
    return "\n".join(lines)


def _compare_tensors(actual, expected, path: tuple, options: dict) -> None:
    a_dtype, e_dtype = _tensor_dtype(actual), _tensor_dtype(expected)
    rtol, atol = _tolerances((a_dtype, e_dtype), options)
    a_shape, e_shape = Size(np.shape(actual)), Size(np.shape(expected))
    if a_shape != e_shape:
        _attribute_mismatch(path, "shape", a_shape, e_shape)
    if isinstance(actual, Tensor):
        if options["check_device"] and actual.device != expected.device:
            _attribute_mismatch(path, "device", actual.device, expected.device)
        if options["check_stride"] and actual.numel() > 0 and actual.stride() != expected.stride():
            _attribute_mismatch(path, "stride()", actual.stride(), expected.stride())
    if options["check_dtype"] and a_dtype != e_dtype:
        _attribute_mismatch(path, "dtype", a_dtype, e_dtype)
    dtype = a_dtype if a_dtype == e_dtype else _dtypes.promote_types(a_dtype, e_dtype)
    a, e = _values(actual, dtype), _values(expected, dtype)
    if dtype in _FLOATING or dtype in _COMPLEX:
        matches = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=options["equal_nan"])
    else:
        matches = a == e
    if matches.all():
        return
    if a.ndim == 0:
        _fail(path, _scalar_message(a.item(), e.item(), rtol, atol))
    _fail(path, _tensor_message(a, e, matches, dtype, rtol, atol))


def _attribute_mismatch(path: tuple, name: str, actual, expected) -> None:
    _fail(path, f"The values for attribute '{name}' do not match: {actual} != {expected}.")


def _tensor_dtype(x) -> Any:
    return x.dtype if isinstance(x, Tensor) else _dtypes.from_numpy_dtype(x.dtype)


def _values(x, dtype) -> np.ndarray:
    values = x.detach().numpy() if isinstance(x, Tensor) else x
    return np.asarray(values).astype(dtype.np)


def _tensor_message(a: np.ndarray, e: np.ndarray, matches: np.ndarray, dtype, rtol: float,
                    atol: float) -> str:
    total = matches.size
    mismatched = total - int(matches.sum())
    extra = f"Mismatched elements: {mismatched} / {total} ({mismatched / total:.1%})"
    if dtype not in _FLOATING and dtype not in _COMPLEX:
        # integers and bools: differences as int64, relative ones in the default float dtype
        a, e = a.astype(np.int64), e.astype(np.int64)
        abs_diff = np.abs(a - e)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel_diff = abs_diff.astype(np.float32) / np.abs(e).astype(np.float32)
    else:
        abs_diff = np.abs(a - e)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel_diff = abs_diff / np.abs(e)
    abs_diff, rel_diff = abs_diff.reshape(-1), rel_diff.reshape(-1)
    abs_diff[matches.reshape(-1)] = 0
    rel_diff[matches.reshape(-1)] = 0
    greatest = []
    for diff in (abs_diff, rel_diff):
        nans = np.flatnonzero(np.isnan(diff))
        flat = int(nans[0]) if nans.size else int(np.argmax(diff))
        greatest.append((diff[flat].item(), tuple(int(i) for i in np.unravel_index(flat,
                                                                                   a.shape))))
    return _difference_message("Tensor-likes", extra, greatest[0], greatest[1], rtol, atol)


def make_tensor(*shape: int | Size | list[int] | tuple[int, ...], dtype: Any,
                device: Any = None, low: float | None = None, high: float | None = None,
                requires_grad: bool = False, noncontiguous: bool = False,
                exclude_zero: bool = False, memory_format: Any = None) -> Tensor:
    """A random tensor as `torch.testing.make_tensor` makes it: values uniform in `[low, high)`,
    defaulting to [-9, 9) for floating dtypes and [-9, 10) for integers (clamped to the dtype's
    range), {False, True} for bool; `noncontiguous=True` gives a strided view;
    `exclude_zero=True` replaces zeros by 1 (integers) or the dtype's smallest normal number."""
    if len(shape) == 1 and isinstance(shape[0], collections.abc.Sequence):
        shape = tuple(shape[0])
    shape = tuple(shape)
    if noncontiguous and memory_format is not None:
        raise ValueError("The parameters `noncontiguous` and `memory_format` are mutually "
                         f"exclusive, but got noncontiguous={noncontiguous} and "
                         f"memory_format={memory_format}")
    integral = dtype is _dtypes.bool or dtype in _INTEGRAL
    if requires_grad and integral:
        raise ValueError("`requires_grad=True` is not supported for boolean and integral dtypes, "
                         f"but got dtype={dtype}")
    noncontiguous = noncontiguous and math.prod(shape) > 1
    if noncontiguous:
        # twice the last dimension, so the strided view holds distinct values
        shape = (*shape[:-1], 2 * shape[-1])
    if dtype is _dtypes.bool:
        low, high = _interval(low, high, dtype, 0, 2, 0, 2)
        result = randint(low, high, shape, dtype=dtype, device=device)
    elif dtype in _INTEGRAL:
        info = iinfo(dtype)
        # randint cannot draw int64's maximum (its bound is exclusive and an int64)
        top = info.max + (1 if dtype is not _dtypes.int64 else 0)
        low, high = _interval(low, high, dtype, info.min, top, -9, 10)
        result = randint(low, high, shape, dtype=dtype, device=device)
    elif dtype in _FLOATING or dtype in _COMPLEX:
        info = finfo(dtype)
        low, high = _interval(low, high, dtype, info.min, info.max, -9, 9)
        real = dtype.to_real() if dtype in _COMPLEX else dtype
        parts = [_uniform(shape, real, device, low, high, info.max)
                 for _ in range(2 if dtype in _COMPLEX else 1)]
        result = parts[0] if len(parts) == 1 else (parts[0] + parts[1] * 1j).to(dtype)
    else:
        raise TypeError(f"The requested dtype '{dtype}' is not supported by "
                        "tapegrad.testing.make_tensor().")
    if noncontiguous:
        result = result[..., 1::2]  # offset by one, to catch offset bugs too
    elif memory_format is not None:
        result = result.clone(memory_format=memory_format)
    if exclude_zero:
        result[result == 0] = 1 if integral else finfo(dtype).tiny
    if not integral:
        result.requires_grad_(requires_grad)
    return result


def _uniform(shape: tuple, dtype, device, low: float, high: float, largest: float) -> Tensor:
    result = empty(shape, dtype=dtype, device=device)
    if high - low >= largest:  # uniform_ needs high - low within the dtype's range
        return result.uniform_(low / 2, high / 2).mul_(2)
    return result.uniform_(low, high)


def _interval(low, high, dtype, lowest: float, highest: float, default_low: float,
              default_high: float) -> tuple:
    """PyTorch's checks of `[low, high)`, clamped to what the dtype holds (ceiled for integers)."""
    low = default_low if low is None else low
    high = default_high if high is None else high
    if any(isinstance(v, builtins.float) and math.isnan(v) for v in (low, high)):
        raise ValueError(f"`low` and `high` cannot be NaN, but got low={low} and high={high}")
    floating = dtype in _FLOATING or dtype in _COMPLEX
    if low == high and floating:
        warnings.warn("Passing `low==high` to `tapegrad.testing.make_tensor` for floating or "
                      "complex types is deprecated. Use `tapegrad.full(...)` instead.",
                      FutureWarning, stacklevel=3)
    elif low >= high:
        raise ValueError(f"`low` must be less than `high`, but got {low} >= {high}")
    elif high < lowest or low >= highest:
        raise ValueError(f"The value interval specified by `low` and `high` is [{low}, {high}), "
                         f"but {dtype} only supports [{lowest}, {highest})")
    low, high = min(max(low, lowest), highest), min(max(high, lowest), highest)
    return (math.ceil(low), math.ceil(high)) if not floating else (low, high)
