"""`save` / `load`: tensors, state_dicts and nested containers in a format that never runs code.

A file is a zip archive holding `tapegrad.json` (a manifest describing the saved object as
tagged JSON) and one `.npy` file per tensor or numpy array (read back with
`allow_pickle=False`). Loading parses JSON and numpy headers only: nothing is unpickled, so an
untrusted file cannot execute code. The format is described in `docs/serialization.md`.
"""
from __future__ import annotations

import collections
import io
import json
import math
import os
import zipfile
from typing import IO, Any, Callable

import jax
import ml_dtypes
import numpy as np

from ._core import device as _device, dtype as _dtype
from ._tensor.tensor import Size, Tensor
from .nn.parameter import Parameter


MANIFEST = "tapegrad.json"
FORMAT = "tapegrad"
VERSION = 1

FileLike = str | os.PathLike | IO[bytes]

# dtypes numpy's .npy format cannot describe: stored as unsigned integers of the same width
_BIT_STORED = {np.dtype(ml_dtypes.bfloat16): np.uint16}
for _name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"):
    if hasattr(ml_dtypes, _name):
        _BIT_STORED[np.dtype(getattr(ml_dtypes, _name))] = np.uint8
_BY_NAME = {str(d): d for d in _BIT_STORED}


class _Writer:
    """Encodes an object as tagged JSON, writing arrays into the archive as it goes."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.memo: dict = {}  # id(tensor) -> its entry, so shared tensors load shared
        self.keep: list = []  # keeps memoised objects alive while ids are in use
        self.count = 0

    def array(self, arr: np.ndarray) -> dict:
        name = f"data/{self.count}.npy"
        self.count += 1
        dtype = arr.dtype
        stored = arr.view(_BIT_STORED[dtype]) if dtype in _BIT_STORED else arr
        with self.zf.open(name, "w", force_zip64=True) as fh:
            np.lib.format.write_array(fh, np.asarray(stored, order="C"), allow_pickle=False)
        return {"file": name, "dtype": str(dtype), "shape": list(arr.shape)}

    def encode(self, obj: Any) -> Any:
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return obj
        if isinstance(obj, float):
            if math.isfinite(obj):
                return obj
            return {"$": "float", "value": repr(obj)}
        if isinstance(obj, Tensor):
            return self.tensor(obj)
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject or obj.dtype.kind in "SUV" and obj.dtype not in _BIT_STORED:
                raise TypeError(f"tapegrad.save stores numeric numpy arrays only, got dtype "
                                f"{obj.dtype}")
            return {"$": "ndarray", **self.array(obj)}
        if isinstance(obj, np.generic):
            return {"$": "npscalar", **self.array(np.asarray(obj))}
        if isinstance(obj, complex):
            return {"$": "complex", "real": self.encode(obj.real), "imag": self.encode(obj.imag)}
        if isinstance(obj, bytes):
            return {"$": "bytes", "hex": obj.hex()}
        if isinstance(obj, _dtype.dtype):
            return {"$": "dtype", "name": obj.name}
        if isinstance(obj, _device.device):
            return {"$": "device", "value": str(obj)}
        if isinstance(obj, Size):
            return {"$": "size", "items": list(obj)}
        if isinstance(obj, collections.OrderedDict):
            return {"$": "OrderedDict", "items": self.items(obj)}
        if isinstance(obj, dict):
            return {"$": "dict", "items": self.items(obj)}
        if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
            return {"$": "tuple", "items": [self.encode(x) for x in obj]}
        if isinstance(obj, list):
            return [self.encode(x) for x in obj]
        raise TypeError(
            f"tapegrad.save cannot store an object of type {type(obj).__module__}."
            f"{type(obj).__qualname__}: it stores tensors, numpy arrays, numbers, strings, bytes, "
            "None and dicts/lists/tuples of them (no pickled Python objects, so loading can never "
            "run code). Save a state_dict() instead of a module or optimizer.")

    def items(self, d: dict) -> list:
        return [[self.encode(k), self.encode(v)] for k, v in d.items()]

    def tensor(self, t: Tensor) -> dict:
        entry = self.memo.get(id(t))
        if entry is not None:
            return {"$": "ref", "id": entry}
        value = np.asarray(t._value())
        out = {"$": "parameter" if isinstance(t, Parameter) else "tensor", **self.array(value),
               "requires_grad": bool(t.requires_grad), "device": str(t.device),
               "id": len(self.memo)}
        self.memo[id(t)] = out["id"]
        self.keep.append(t)
        return out


def save(obj: Any, f: FileLike, pickle_module: Any = None, pickle_protocol: int = 2,
         _use_new_zipfile_serialization: bool = True) -> None:
    """Save tensors, state_dicts and nested containers of them to a file (or binary file object).

    >>> tapegrad.save({"model": model.state_dict(), "opt": opt.state_dict()}, "ckpt.pt")
    """
    if pickle_module is not None:
        raise ValueError("tapegrad.save does not use pickle; pickle_module is not supported")
    buffer = f if hasattr(f, "write") else None
    target = buffer if buffer is not None else open(os.fspath(f), "wb")
    try:
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as zf:
            writer = _Writer(zf)
            root = writer.encode(obj)
            manifest = {"format": FORMAT, "version": VERSION, "root": root}
            zf.writestr(MANIFEST, json.dumps(manifest, allow_nan=False))
    finally:
        if buffer is None:
            target.close()


# -- loading ------------------------------------------------------------------------------------

class _Reader:
    def __init__(self, zf: zipfile.ZipFile, place: Callable[[Tensor, str], Tensor]) -> None:
        self.zf = zf
        self.place = place
        self.names = set(zf.namelist())
        self.tensors: dict = {}

    def array(self, entry: dict) -> np.ndarray:
        name = entry["file"]
        if not isinstance(name, str) or name not in self.names or not name.endswith(".npy"):
            raise RuntimeError(f"tapegrad.load: the manifest names a missing array {name!r}")
        with self.zf.open(name) as fh:
            try:
                arr = np.load(io.BytesIO(fh.read()), allow_pickle=False)
            except ValueError as e:  # e.g. an object array, which only unpickling could read
                raise RuntimeError(f"tapegrad.load: refused to read array {name}: {e}. "
                                   + _PICKLE_HINT) from None
        dtype = entry["dtype"]
        if dtype in _BY_NAME:
            arr = arr.view(_BY_NAME[dtype])
        elif str(arr.dtype) != dtype:
            raise RuntimeError(f"tapegrad.load: array {name} has dtype {arr.dtype}, the manifest "
                               f"says {dtype}")
        if list(arr.shape) != list(entry["shape"]):
            raise RuntimeError(f"tapegrad.load: array {name} has shape {list(arr.shape)}, the "
                               f"manifest says {entry['shape']}")
        return arr

    def decode(self, node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(x) for x in node]
        if not isinstance(node, dict) or "$" not in node:
            raise RuntimeError(f"tapegrad.load: malformed manifest entry {node!r:.80}")
        tag = node["$"]
        if tag == "tuple":
            return tuple(self.decode(x) for x in node["items"])
        if tag == "dict":
            return {self.decode(k): self.decode(v) for k, v in node["items"]}
        if tag == "OrderedDict":
            return collections.OrderedDict((self.decode(k), self.decode(v))
                                           for k, v in node["items"])
        if tag in ("tensor", "parameter"):
            return self.tensor(node)
        if tag == "ref":
            if node["id"] not in self.tensors:
                raise RuntimeError("tapegrad.load: malformed manifest (a reference to an unknown "
                                   "tensor)")
            return self.tensors[node["id"]]
        if tag == "ndarray":
            return self.array(node)
        if tag == "npscalar":
            return self.array(node)[()]
        if tag == "float":
            if node["value"] not in ("inf", "-inf", "nan"):
                raise RuntimeError(f"tapegrad.load: bad float {node['value']!r}")
            return float(node["value"])
        if tag == "complex":
            return complex(self.decode(node["real"]), self.decode(node["imag"]))
        if tag == "bytes":
            return bytes.fromhex(node["hex"])
        if tag == "dtype":
            return _dtype.as_dtype(node["name"])
        if tag == "device":
            return _device.device(node["value"])
        if tag == "size":
            return Size(int(x) for x in node["items"])
        raise RuntimeError(f"tapegrad.load: unsupported manifest entry {tag!r} (a newer format?)")

    def tensor(self, node: dict) -> Tensor:
        arr = self.array(node)
        with jax.enable_x64(True):
            value = jax.numpy.asarray(arr)
        t = self.place(Tensor._from_array(value), node.get("device", "cpu"))
        if node["$"] == "parameter":
                t = Parameter(t, requires_grad=bool(node.get("requires_grad", True)))
        elif node.get("requires_grad"):
            t.requires_grad_(True)
        self.tensors[node["id"]] = t
        return t


def _placer(map_location) -> Callable[[Tensor, str], Tensor]:
    if map_location is None:
        return lambda t, saved: t  # JAX's default device
    if callable(map_location) and not isinstance(map_location, (str, _device.device)):
        return lambda t, saved: map_location(t, saved)
    if isinstance(map_location, dict):
        return lambda t, saved: t.to(map_location.get(saved, saved)) if saved in map_location else t
    dev = _device.device(map_location)
    return lambda t, saved: t.to(dev)


_PICKLE_HINT = (
    "tapegrad never unpickles, because loading a pickle can execute arbitrary code. Re-save the "
    "data with tapegrad.save, or convert a PyTorch checkpoint you trust: "
    "sd = torch.load(path, weights_only=True); "
    "tapegrad.save({k: v.numpy() for k, v in sd.items()}, new_path).")


def load(f: FileLike, map_location=None, pickle_module: Any = None, *, weights_only: bool = True,
         mmap: bool | None = None, **pickle_load_args: Any) -> Any:
    """Load an object saved by `tapegrad.save`; never executes code from the file.

    `map_location`: None (JAX's default device), a device or string, a dict from saved device
    strings to devices, or a function `(tensor, saved_device) -> tensor`. `weights_only` is
    accepted for compatibility: tapegrad files hold data only, whatever its value.
    """
    if pickle_module is not None:
        raise ValueError("tapegrad.load does not use pickle; pickle_module is not supported")
    name = getattr(f, "name", f) if hasattr(f, "read") else os.fspath(f)
    if hasattr(f, "read"):
        data = f.read()
    else:
        with open(os.fspath(f), "rb") as fh:
            data = fh.read()
    if not zipfile.is_zipfile(io.BytesIO(data)):
        kind = "a pickle file" if data[:1] == b"\x80" else "not a zip archive"
        raise RuntimeError(f"tapegrad.load: {name!s} is not a tapegrad file ({kind}). "
                           + _PICKLE_HINT)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        if MANIFEST not in names:
            pickled = [n for n in names if n.endswith(".pkl")]
            what = (f"a PyTorch checkpoint whose objects are pickled ({pickled[0]})" if pickled
                    else f"a zip archive without {MANIFEST}")
            raise RuntimeError(f"tapegrad.load: {name!s} is not a tapegrad file ({what}). "
                               + _PICKLE_HINT)
        try:
            manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise RuntimeError(f"tapegrad.load: {name!s} has a corrupt manifest: {e}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise RuntimeError(f"tapegrad.load: {name!s} is not a tapegrad file (unknown manifest)")
        if manifest.get("version", 0) > VERSION:
            raise RuntimeError(f"tapegrad.load: {name!s} uses format version "
                               f"{manifest['version']}; this tapegrad reads up to {VERSION}. "
                               "Upgrade tapegrad.")
        return _Reader(zf, _placer(map_location)).decode(manifest["root"])
