"""PyTorch dtypes over numpy/JAX dtypes, and PyTorch's type-promotion rules."""
from __future__ import annotations

import builtins

import jax.numpy as jnp
import numpy as np


class dtype:
    """A tensor element type, named as in PyTorch (`tapegrad.float32`, `tapegrad.long`, ...)."""

    __slots__ = ("name", "np", "is_floating_point", "is_complex", "is_signed", "itemsize")

    def __init__(self, name: str, np_dtype) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = self.np.kind == "f" or name == "bfloat16"
        self.is_complex = self.np.kind == "c"
        self.is_signed = self.np.kind in "fic" or name == "bfloat16"
        self.itemsize = self.np.itemsize

    def __repr__(self) -> str:
        return f"tapegrad.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))

    def to_complex(self) -> "dtype":
        return complex128 if self is float64 else complex64

    def to_real(self) -> "dtype":
        return float64 if self is complex128 else float32 if self is complex64 else self


def _by_name(name: str) -> dtype:
    return globals()[name]


float16 = half = dtype("float16", jnp.float16)
bfloat16 = dtype("bfloat16", jnp.bfloat16)
float32 = float = dtype("float32", jnp.float32)
float64 = double = dtype("float64", jnp.float64)
complex64 = cfloat = dtype("complex64", jnp.complex64)
complex128 = cdouble = dtype("complex128", jnp.complex128)
uint8 = dtype("uint8", jnp.uint8)
uint16 = dtype("uint16", jnp.uint16)
uint32 = dtype("uint32", jnp.uint32)
uint64 = dtype("uint64", jnp.uint64)
int8 = dtype("int8", jnp.int8)
int16 = short = dtype("int16", jnp.int16)
int32 = int = dtype("int32", jnp.int32)
int64 = long = dtype("int64", jnp.int64)
bool = dtype("bool", jnp.bool_)  # noqa: A001 - PyTorch's name

# PyTorch's scalar-type names, as its messages spell them ("result type Float can't be cast ...")
_SCALAR_NAMES = {"float16": "Half", "bfloat16": "BFloat16", "float32": "Float", "float64": "Double",
                 "complex64": "ComplexFloat", "complex128": "ComplexDouble", "uint8": "Byte",
                 "int8": "Char", "int16": "Short", "int32": "Int", "int64": "Long", "bool": "Bool"}
_C_NAMES = {"float32": "float", "float64": "double", "int32": "int", "int64": "long",
            "uint8": "unsigned char", "int8": "signed char", "int16": "short int",
            "uint16": "short unsigned int", "uint32": "unsigned int",
            "uint64": "long unsigned int"}


def scalar_name(d: dtype) -> str:
    """PyTorch's scalar-type name of `d` (`Float`, `Long`, ...)."""
    return _SCALAR_NAMES.get(d.name, d.name)


def legacy_name(d: dtype) -> str:
    """PyTorch's legacy tensor-type name of `d` (`tapegrad.FloatTensor`), as `Tensor.type()` says."""
    return "tapegrad." + (_SCALAR_NAMES[d.name] + "Tensor" if d.name in _SCALAR_NAMES else d.name)


def from_legacy_name(name: str) -> tuple[dtype, bool]:
    """The dtype a legacy tensor-type name stands for, and whether it names a CUDA type:
    `"torch.LongTensor"` -> (int64, False), `"torch.cuda.FloatTensor"` -> (float32, True)."""
    parts = name.split(".")
    scalar = parts[-1].removesuffix("Tensor")
    by_scalar = {v: k for k, v in _SCALAR_NAMES.items()}
    if len(parts) < 2 or parts[0] not in ("torch", "tapegrad") or not parts[-1].endswith("Tensor") \
            or scalar not in by_scalar or parts[1:-1] not in ([], ["cuda"]):
        raise ValueError(f"invalid type: '{name}'")
    return globals()[by_scalar[scalar]], parts[1:-1] == ["cuda"]


def c_name(d: dtype) -> str:
    """The C type name of `d` where PyTorch's messages use one (`float != double`)."""
    return _C_NAMES.get(d.name, d.name)


ALL = (float16, bfloat16, float32, float64, complex64, complex128, uint8, uint16, uint32, uint64,
       int8, int16, int32, int64, bool)
_FROM_NP = {d.np: d for d in ALL}

_default_float = float32


def from_numpy_dtype(np_dtype) -> dtype:
    """The tapegrad dtype for a numpy/JAX dtype (raises TypeError for unsupported ones)."""
    found = _FROM_NP.get(np_dtype)  # an array's own dtype: no conversion needed
    if found is not None:
        return found
    try:
        return _FROM_NP[np.dtype(np_dtype)]
    except (KeyError, TypeError):
        raise TypeError(f"can't convert np.ndarray of type {np_dtype}. The only supported types are: "
                        + ", ".join(d.name for d in ALL)) from None


def as_dtype(d) -> dtype:
    """A `dtype=` argument as a tapegrad dtype: a tapegrad dtype, a Python type (`float`, `int`,
    `bool`, `complex`) or, for the JAX bridge, a numpy/JAX dtype. Anything else (a string such as
    `"float32"`, a number) is PyTorch's TypeError."""
    if isinstance(d, dtype):
        return d
    if d is builtins.float:
        return _default_float
    if d is builtins.int:
        return int64
    if d is builtins.bool:
        return bool
    if d is builtins.complex:
        return _default_float.to_complex()
    if not isinstance(d, (str, builtins.int, builtins.float)):  # numpy would parse these
        try:
            return from_numpy_dtype(d)
        except TypeError:
            pass
    kind = builtins.type(d)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    raise TypeError(f"argument 'dtype' must be torch.dtype, not {name}")


def get_default_dtype() -> dtype:
    """The dtype Python floats become (float32 unless changed)."""
    return _default_float


def set_default_dtype(d) -> None:
    """Set the dtype Python floats become; PyTorch allows float32 and float64 (and float16/bfloat16)."""
    global _default_float
    d = as_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default_float = d


def _category(d: dtype) -> int:
    return 3 if d.is_complex else 2 if d.is_floating_point else 0 if d is bool else 1


def _promote_pair(a: dtype, b: dtype) -> dtype:
    if a is b:
        return a
    if a is bool:
        return b
    if b is bool:
        return a
    return from_numpy_dtype(jnp.promote_types(a.np, b.np))


def promote_types(a: dtype, b: dtype) -> dtype:
    """`torch.promote_types`: the smallest dtype both `a` and `b` convert to."""
    return _promote_pair(as_dtype(a), as_dtype(b))


def scalar_dtype(value) -> dtype:
    """The dtype PyTorch gives a Python scalar on its own (float -> default float, int -> int64)."""
    if isinstance(value, builtins.bool):
        return bool
    if isinstance(value, builtins.int):
        return int64
    if isinstance(value, builtins.float):
        return _default_float
    if isinstance(value, builtins.complex):
        return _default_float.to_complex()
    raise TypeError(f"expected a Python number, got {type(value).__name__}")


def result_type(operands) -> dtype:
    """PyTorch's type promotion over tensors, given as `(dtype, ndim)`, and Python scalars.

    Dimensioned tensors outrank zero-dim tensors, which outrank Python scalars; a lower rank
    only changes the result when its category (bool < integer < float < complex) is higher,
    and then a Python scalar contributes its category's default dtype.
    """
    groups: list = [None, None, None]  # dimensioned tensors, zero-dim tensors, Python scalars
    for op in operands:
        if isinstance(op, tuple):
            d, rank = op[0], (0 if op[1] else 1)
        else:
            d, rank = scalar_dtype(op), 2
        groups[rank] = d if groups[rank] is None else _promote_pair(groups[rank], d)
    result = None
    for d in groups:
        if d is None:
            continue
        if result is None:
            result = d
        elif _category(d) > _category(result):
            result = result.to_complex() if d.is_complex and result.is_floating_point else d
    return result
