"""`tapegrad.utils.safetensors`: read and write `.safetensors` files (`safetensors.torch`'s API).

Built on the `safetensors` package (the `safetensors` extra: `pip install tapegrad[safetensors]`):
writing hands it each tensor's bytes (`serialize`), reading goes through its JAX reader
(`safe_open(framework="flax")`, which knows bfloat16), so files are interchangeable with
`safetensors.torch.save_file` / `load_file`. The format holds only a JSON header and raw bytes:
loading one never runs code.

>>> save_file(model.state_dict(), "model.safetensors")
>>> model.load_state_dict(load_file("model.safetensors"))
"""
from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from .._core import device as _device, dtype as _dtype
from .._tensor.storage import place
from .._tensor.tensor import Tensor

# the header's dtype codes (for `load` of raw bytes, and for messages)
_CODES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
          "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U64": "uint64",
          "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool", "C64": "complex64",
          "C128": "complex128"}


def _lib():
    try:
        import safetensors
    except ImportError:
        raise ImportError("tapegrad.utils.safetensors needs the safetensors package: "
                          "pip install 'tapegrad[safetensors]'") from None
    return safetensors


def _device_of(device) -> _device.device:
    return _device.device("cuda", device) if isinstance(device, int) else _device.device(device)


def _specs(tensors: dict, keep: list) -> dict:
    """safetensors' `TensorSpec` of each tensor (its bytes kept alive in `keep`)."""
    lib = _lib()
    if not isinstance(tensors, dict):
        raise ValueError(f"Expected a dict of [str, Tensor] but received {type(tensors)}")
    shared: dict = {}
    for k, v in tensors.items():
        if not isinstance(v, Tensor):
            raise ValueError(f"Key `{k}` is invalid, expected tapegrad.Tensor but received "
                             f"{type(v)}")
        shared.setdefault(id(place(v)[0]._storage), []).append(k)
    failing = [names for names in shared.values() if len(names) > 1]
    if failing:
        raise RuntimeError(
            "Some tensors share memory, this will lead to duplicate memory on disk and potential "
            f"differences when loading them again: {failing}. Save each storage once (clone() "
            "the others) or drop the duplicates.")
    specs = {}
    for k, v in tensors.items():
        arr = np.ascontiguousarray(np.asarray(v.detach()._value()))
        keep.append(arr)
        specs[k] = lib.TensorSpec(dtype=v.dtype.name, shape=list(v.shape),
                                  data_ptr=arr.ctypes.data, data_len=arr.nbytes)
    return specs


def save(tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """The bytes of a `.safetensors` file holding `tensors` (dense, none sharing memory)."""
    keep: list = []
    return bytes(_lib().serialize(_specs(tensors, keep), metadata=metadata))


def save_file(tensors: dict[str, Tensor], filename: str | os.PathLike,
              metadata: dict[str, str] | None = None) -> None:
    """Write `tensors` (a dict of name -> tensor) to a `.safetensors` file."""
    keep: list = []
    _lib().serialize_file(_specs(tensors, keep), os.fspath(filename), metadata=metadata)


def _tensor(value, device) -> Tensor:
    t = Tensor._from_array(value)
    return t if device is None else t.to(_device_of(device))


class _Slice:
    """One tensor of an open file, read in part (`f.get_slice(name)[0:2]`)."""

    def __init__(self, handle, device) -> None:
        self.handle, self.device = handle, device

    def get_shape(self) -> list:
        return self.handle.get_shape()

    def get_dtype(self) -> str:
        return self.handle.get_dtype()

    def __getitem__(self, index) -> Tensor:
        with jax.enable_x64(True):  # int64 / float64 stay 64-bit
            return _tensor(self.handle[index], self.device)


class safe_open:  # noqa: N801 - the safetensors name
    """Open a `.safetensors` file and read tensors one at a time (lazily, memory-mapped).

    >>> with safe_open("model.safetensors", framework="pt") as f:
    ...     w = f.get_tensor("fc.weight")
    """

    def __init__(self, filename: str | os.PathLike, framework: str = "pt",
                 device: Any = "cpu") -> None:
        if framework not in ("pt", "torch", "tapegrad"):
            raise ValueError(f"framework {framework!r}: tapegrad's safe_open gives tapegrad "
                             "tensors (framework='pt')")
        self.device = device
        self.inner = _lib().safe_open(os.fspath(filename), framework="flax")

    def __enter__(self) -> "safe_open":
        self.inner.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.inner.__exit__(*exc)

    def keys(self) -> list:
        return list(self.inner.keys())

    def metadata(self) -> dict | None:
        return self.inner.metadata()

    def get_tensor(self, name: str) -> Tensor:
        dtype = self.inner.get_slice(name).get_dtype()
        if dtype not in _CODES:
            raise TypeError(f"tensor {name!r} has dtype {dtype}, which tapegrad does not have")
        with jax.enable_x64(True):
            return _tensor(self.inner.get_tensor(name), self.device)

    def get_slice(self, name: str) -> _Slice:
        return _Slice(self.inner.get_slice(name), self.device)


def load_file(filename: str | os.PathLike, device: Any = "cpu") -> dict[str, Tensor]:
    """Every tensor of a `.safetensors` file, by name, on `device`."""
    with safe_open(filename, device=device) as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def load(data: bytes) -> dict[str, Tensor]:
    """Every tensor of a `.safetensors` file given as bytes."""
    out = {}
    for name, entry in _lib().deserialize(data):
        code = entry["dtype"]
        if code not in _CODES:
            raise TypeError(f"tensor {name!r} has dtype {code}, which tapegrad does not have")
        np_dtype = getattr(_dtype, _CODES[code]).np
        arr = np.frombuffer(entry["data"], np_dtype).reshape(entry["shape"])
        with jax.enable_x64(True):
            out[name] = Tensor._from_array(jax.numpy.asarray(arr))
    return out


__all__ = ["load", "load_file", "safe_open", "save", "save_file"]
