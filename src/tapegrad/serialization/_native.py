"""tapegrad's first file format, read-only: `tapegrad.json` (tagged JSON) and `.npy` arrays.

Files that earlier tapegrad versions wrote stay loadable; `tapegrad.save` now writes PyTorch's
format. Nothing here unpickles. Every size is checked before memory is allocated: the manifest
against `MAX_MANIFEST_BYTES`, each array's `.npy` header against the manifest and against the
bytes the archive holds; an array named by several entries is read once and shared.
"""
from __future__ import annotations

import collections
import json
import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from .._core import device as _device, dtype as _dtype
from .._tensor.tensor import Size, Tensor
from ..nn.parameter import Parameter
from ._archive import Archive
from ._zipformat import placer

MANIFEST = "tapegrad.json"
FORMAT = "tapegrad"
VERSION = 1
MAX_MANIFEST_BYTES = 1 << 26
_MAX_NPY_HEADER = 1 << 16

# dtypes numpy's .npy cannot describe were stored as unsigned integers of the same width
_BIT_STORED = {"bfloat16": np.dtype(ml_dtypes.bfloat16)}
for _name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"):
    if hasattr(ml_dtypes, _name):
        _BIT_STORED[_name] = np.dtype(getattr(ml_dtypes, _name))


class _Reader:
    def __init__(self, archive: Archive, map_location) -> None:
        self.archive = archive
        self.place = placer(map_location)
        self.arrays: dict = {}   # file -> numpy array (read once)
        self.values: dict = {}   # file -> jax array (made once)
        self.tensors: dict = {}  # id -> tensor

    def error(self, problem: str):
        return self.archive.error(problem)

    def field(self, node: dict, key: str, kind):
        value = node.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise self.error(f"malformed manifest entry: {key!r} of {node.get('$')!r} is "
                             f"{value!r:.60}")
        return value

    def array(self, node: dict) -> np.ndarray:
        name = self.field(node, "file", str)
        dtype_name = self.field(node, "dtype", str)
        shape = self.field(node, "shape", list)
        if not all(type(s) is int and s >= 0 for s in shape):
            raise self.error(f"array {name!r} has a malformed shape {shape!r:.60}")
        cached = self.arrays.get(name)
        if cached is None:
            if not name.endswith(".npy") or name not in self.archive.entries:
                raise self.error(f"the manifest names a missing array {name!r}")
            cached = self.arrays[name] = self._npy(name)
        arr = cached
        if dtype_name in _BIT_STORED:
            wanted = _BIT_STORED[dtype_name]
            if arr.dtype.kind != "u" or arr.dtype.itemsize != wanted.itemsize:
                raise self.error(f"array {name} has dtype {arr.dtype}, which cannot hold "
                                 f"{dtype_name}")
            arr = arr.view(wanted)
        elif str(arr.dtype) != dtype_name:
            raise self.error(f"array {name} has dtype {arr.dtype}, the manifest says "
                             f"{dtype_name}")
        if list(arr.shape) != shape:
            raise self.error(f"array {name} has shape {list(arr.shape)}, the manifest says "
                             f"{shape}")
        return arr

    def _npy(self, name: str) -> np.ndarray:
        """An .npy entry: header parsed and checked against the entry's size, then the data
        read into an array of exactly that size."""
        size = self.archive.size(name)
        head = self.archive.read_prefix(name, min(size, _MAX_NPY_HEADER))
        try:
            stream = _Bytes(head)
            version = np.lib.format.read_magic(stream)
            reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = reader(stream, max_header_size=_MAX_NPY_HEADER)
        except (ValueError, TypeError, SyntaxError, OverflowError, EOFError) as e:
            raise self.error(f"array {name} has a malformed .npy header ({e})") from None
        if dtype.hasobject or dtype.kind not in "biufc":
            raise self.error(f"refused to read array {name}: dtype {dtype} needs unpickling. "
                             "tapegrad never unpickles arrays")
        nbytes = math.prod(shape) * dtype.itemsize
        if stream.pos + nbytes != size:
            raise self.error(f"array {name} declares {nbytes} bytes of data, the archive holds "
                             f"{size - stream.pos}")
        raw = self.archive.array(name, size)[stream.pos:]
        arr = raw.view(dtype).reshape(shape[::-1] if fortran else shape)
        return arr.T if fortran else arr

    def decode(self, node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(x) for x in node]
        if not isinstance(node, dict) or not isinstance(node.get("$"), str):
            raise self.error(f"malformed manifest entry {node!r:.80}")
        tag = node["$"]
        if tag in ("tuple", "dict", "OrderedDict"):
            items = self.field(node, "items", list)
            if tag == "tuple":
                return tuple(self.decode(x) for x in items)
            if not all(isinstance(kv, list) and len(kv) == 2 for kv in items):
                raise self.error(f"malformed {tag} entry in the manifest")
            pairs = ((self.decode(k), self.decode(v)) for k, v in items)
            try:
                return dict(pairs) if tag == "dict" else collections.OrderedDict(pairs)
            except TypeError as e:  # an unhashable key
                raise self.error(f"malformed {tag} entry in the manifest ({e})") from None
        if tag in ("tensor", "parameter"):
            return self.tensor(node)
        if tag == "ref":
            ident = node.get("id")
            if type(ident) is not int or ident not in self.tensors:
                raise self.error("malformed manifest (a reference to an unknown tensor)")
            return self.tensors[ident]
        if tag == "ndarray":
            return self.array(node)
        if tag == "npscalar":
            arr = self.array(node)
            if arr.shape != ():
                raise self.error("malformed manifest (a numpy scalar that is not 0-d)")
            return arr[()]
        if tag == "float":
            value = node.get("value")
            if value not in ("inf", "-inf", "nan"):
                raise self.error(f"bad float {value!r:.40}")
            return float(value)
        if tag == "complex":
            real, imag = self.decode(node.get("real")), self.decode(node.get("imag"))
            if not all(isinstance(x, (int, float)) for x in (real, imag)):
                raise self.error("malformed complex entry in the manifest")
            return complex(real, imag)
        if tag == "bytes":
            try:
                return bytes.fromhex(self.field(node, "hex", str))
            except ValueError:
                raise self.error("malformed bytes entry in the manifest") from None
        if tag == "dtype":
            name = self.field(node, "name", str)
            if not any(d.name == name for d in _dtype.ALL):
                raise self.error(f"unknown dtype {name!r:.40}")
            return _dtype.as_dtype(getattr(_dtype, name))
        if tag == "device":
            try:
                return _device.device(self.field(node, "value", str))
            except (RuntimeError, ValueError):
                raise self.error(f"unknown device {node.get('value')!r:.40}") from None
        if tag == "size":
            items = self.field(node, "items", list)
            if not all(type(x) is int for x in items):
                raise self.error("malformed size entry in the manifest")
            return Size(items)
        raise self.error(f"unsupported manifest entry {tag!r:.40} (a newer format?)")

    def tensor(self, node: dict) -> Tensor:
        ident = self.field(node, "id", int)
        arr = self.array(node)
        name = node["file"]
        value = self.values.get(name)
        if value is None:
            with jax.enable_x64(True):
                value = self.values[name] = jnp.asarray(arr)
        saved = node.get("device", "cpu")
        t = self.place(Tensor._from_array(value), saved if isinstance(saved, str) else "cpu")
        requires_grad = bool(node.get("requires_grad", node["$"] == "parameter"))
        if requires_grad and not (t.dtype.is_floating_point or t.dtype.is_complex):
            raise self.error(f"a {t.dtype.name} tensor requires grad")
        if node["$"] == "parameter":
            t = Parameter(t, requires_grad=requires_grad)
        elif requires_grad:
            t.requires_grad_(True)
        self.tensors[ident] = t
        return t


class _Bytes:
    """Just enough of a file for numpy's header readers, over bytes already read."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.pos + n
        out = self.data[self.pos:end]
        self.pos += len(out)
        return out


def read(archive: Archive, map_location) -> Any:
    """Load a file in tapegrad's first format (a zip with `tapegrad.json`)."""
    text = archive.read(MANIFEST, MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise archive.error(f"corrupt manifest: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or "root" not in manifest:
        raise archive.error("not a tapegrad file (unknown manifest)")
    version = manifest.get("version", 0)
    if type(version) is not int or version > VERSION:
        raise archive.error(f"uses format version {version!r:.20}; this tapegrad reads up to "
                            f"{VERSION}. Upgrade tapegrad.")
    try:
        return _Reader(archive, map_location).decode(manifest["root"])
    except RecursionError:
        raise archive.error("the manifest nests too deeply") from None
