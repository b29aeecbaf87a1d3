"""PyTorch's checkpoint format (`torch.save` since 1.6), read and written without torch.

A checkpoint is a zip archive whose entries sit under one folder (`archive/` here):

    data.pkl        the saved object, pickled (protocol 2); tensors reference storages
    data/<key>      one storage each: the raw bytes, in the byte order of `byteorder`
    byteorder       "little" or "big"
    version         the archive's format version ("3")

A tensor is pickled as a call to `torch._utils._rebuild_tensor_v2(storage, storage_offset, size,
stride, requires_grad, backward_hooks)` (`_v3` adds the dtype, for dtypes without a legacy
storage class), whose storage is a persistent id `("storage", torch.FloatStorage, key, location,
numel)`; a `Parameter` wraps that in `torch._utils._rebuild_parameter`. Tensors over the same
storage share it: tapegrad loads them as views of one base, and writes the views of one base as
offsets and strides into one storage, as `torch.save` does.

Reading goes through `WeightsUnpickler` with `torch_globals()` as its allowlist (each torch name
mapped to tapegrad's implementation), or, with `weights_only=False`, through Python's unpickler.
"""
from __future__ import annotations

import collections
import io
import math
import pickle
import struct
import sys
import zipfile
from typing import Any, Callable, IO

import jax
import jax.numpy as jnp
import numpy as np

from .._core import device as _device, dtype as _dtype, layout as _layout
from .._core.ops import as_strided_op
from .._tensor import views as _views
from .._tensor.storage import place
from .._tensor.strides import contiguous_strides
from .._tensor.tensor import Size, Tensor
from ..nn.parameter import Parameter
from ._archive import Archive, LoadError
from ._pickler import Pickler
from ._unpickler import BUILTIN_GLOBALS, TypeOnly, Unavailable, WeightsUnpickler

MAX_PICKLE_BYTES = 1 << 28  # data.pkl holds metadata only; real ones are kilobytes to megabytes
# Tensors that overlap in their storage (zero strides: expand) are materialised in full, as JAX
# has no strided memory; all that materialising is capped at twice the storages plus this.
EXTRA_MATERIALIZED_BYTES = 1 << 26
FORMAT_VERSION = 3
ALIGNMENT = 64  # storages start at multiples of this in the file (so they can be mmapped)

# PyTorch's legacy storage classes, by the dtype of their elements
_LEGACY_STORAGES = {
    "FloatStorage": _dtype.float32, "DoubleStorage": _dtype.float64,
    "HalfStorage": _dtype.float16, "BFloat16Storage": _dtype.bfloat16,
    "LongStorage": _dtype.int64, "IntStorage": _dtype.int32, "ShortStorage": _dtype.int16,
    "CharStorage": _dtype.int8, "ByteStorage": _dtype.uint8, "BoolStorage": _dtype.bool,
    "ComplexFloatStorage": _dtype.complex64, "ComplexDoubleStorage": _dtype.complex128,
}
_STORAGE_OF = {d.name: name for name, d in _LEGACY_STORAGES.items()}
_QUANTIZED_STORAGES = ("QInt8Storage", "QUInt8Storage", "QInt32Storage", "QUInt4x2Storage",
                       "QUInt2x4Storage", "ComplexHalfStorage")
# torch's dtype names (aliases included) for tapegrad's dtypes, and those tapegrad lacks
_TORCH_DTYPES = {
    **{d.name: d for d in _dtype.ALL},
    "float": _dtype.float32, "double": _dtype.float64, "half": _dtype.float16,
    "cfloat": _dtype.complex64, "cdouble": _dtype.complex128, "short": _dtype.int16,
    "int": _dtype.int32, "long": _dtype.int64,
}
_MISSING_DTYPES = ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
                   "float8_e8m0fnu", "float4_e2m1fn_x2", "complex32", "chalf", "quint8", "qint8",
                   "qint32", "quint4x2", "quint2x4", "bits1x8", "bits2x4", "bits4x2", "bits8",
                   "bits16", *(f"uint{i}" for i in range(1, 8)),
                   *(f"int{i}" for i in range(1, 8)))


class StorageType:
    """What a storage class global names: the dtype of the elements (None: untyped bytes)."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype) -> None:
        self.name = name
        self.dtype = dtype


class _Storage:
    """A storage a checkpoint's pickle refers to (its bytes are read when a tensor needs them)."""

    __slots__ = ("key", "dtype", "nbytes", "location")

    def __init__(self, key: str, dtype, nbytes: int, location: str) -> None:
        self.key, self.dtype, self.nbytes, self.location = key, dtype, nbytes, location


def placer(map_location) -> Callable[[Tensor, str], Tensor]:
    """`(tensor, saved location) -> tensor`, as `map_location` asks (see `tapegrad.load`)."""
    if map_location is None:
        return lambda t, saved: t  # JAX's default device
    if callable(map_location) and not isinstance(map_location, (str, _device.device)):
        def call(t, saved):
            out = map_location(t, saved)
            return t if out is None else out
        return call
    if isinstance(map_location, dict):
        return lambda t, saved: t.to(map_location[saved]) if saved in map_location else t
    dev = _device.device(map_location)
    return lambda t, saved: t.to(dev)


def _ints(value, what: str, source: str) -> tuple:
    if not isinstance(value, (tuple, list, Size)) or not all(
            type(v) is int and v >= 0 for v in value):
        raise LoadError(f"tapegrad.load: {source}: a tensor's {what} {value!r:.80} is not a tuple "
                        "of non-negative integers")
    return tuple(value)


def _torch_size(items=()) -> Size:
    if not isinstance(items, (tuple, list)) or not all(type(v) is int for v in items):
        raise TypeError(f"torch.Size takes a tuple of ints, got {items!r:.80}")
    return Size(items)


def _torch_device(type_, index=None) -> _device.device:
    if not isinstance(type_, str) or not (index is None or type(index) is int):
        raise TypeError(f"torch.device takes a string and an index, got {type_!r:.40}")
    return _device.device(type_, index)


def _layout_by_name(name) -> _layout.layout:
    if not isinstance(name, str) or name.removeprefix("torch.") not in _layout.ALL:
        raise TypeError(f"unknown layout {name!r:.40}")
    return _layout.by_name(name)


def _static_globals() -> dict:
    g = {
        "torch.serialization._get_layout": _layout_by_name,
        "torch.Size": _torch_size,
        "torch.device": _torch_device,
        "torch.Tensor": TypeOnly(Tensor),
        "torch.nn.parameter.Parameter": TypeOnly(Parameter),
        "torch.storage.UntypedStorage": StorageType("UntypedStorage", None),
    }
    for name, d in _LEGACY_STORAGES.items():
        g[f"torch.{name}"] = StorageType(name, d)
    for name in _QUANTIZED_STORAGES:
        g[f"torch.{name}"] = Unavailable(f"the checkpoint holds a torch.{name}: tapegrad has "
                                         "no quantized or complex32 tensors")
    for name, d in _TORCH_DTYPES.items():
        g[f"torch.{name}"] = d
    for name in _MISSING_DTYPES:
        g[f"torch.{name}"] = Unavailable(f"the checkpoint uses dtype torch.{name}, which "
                                         "tapegrad does not have")
    for name, lay in _layout.ALL.items():
        g[f"torch.{name}"] = lay
    return g


_STATIC_GLOBALS = _static_globals()
_REBUILDERS = {  # name -> the Reader method that rebuilds it
    "torch._utils._rebuild_tensor": "rebuild_tensor",
    "torch._utils._rebuild_tensor_v2": "rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3": "rebuild_tensor_v3",
    "torch._utils._rebuild_parameter": "rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state": "rebuild_parameter_with_state",
    "torch._tensor._rebuild_from_type_v2": "rebuild_from_type_v2",
}


def default_global_names() -> list:
    """Every "module.name" a weights-only load allows without `add_safe_globals`."""
    return [*BUILTIN_GLOBALS, *_REBUILDERS, *_STATIC_GLOBALS]


class Reader:
    """Rebuilds the tensors of one checkpoint: storages read once, shared ones kept shared."""

    def __init__(self, archive: Archive, prefix: str, map_location, mmap: bool) -> None:
        self.archive = archive
        self.source = archive.source
        self.prefix = prefix
        self.place = placer(map_location)
        self.mmap = mmap
        order = archive.read(prefix + "byteorder", 16).decode("ascii", "replace") \
            if prefix + "byteorder" in archive.entries else "little"
        if order not in ("little", "big"):
            raise archive.error(f"byteorder record says {order!r}")
        self.swap = order != sys.byteorder
        self.storages: dict = {}   # key -> _Storage
        self.buffers: dict = {}    # key -> the storage's bytes, while still needed
        self.whole: dict = {}      # key -> a tensor holding the whole storage (its bytes)
        self.layouts: dict = {}    # (key, dtype, offset, size, stride) -> the first tensor
        self.groups: dict = collections.defaultdict(list)  # (key, dtype) -> distinct tensors
        stored = sum(i.file_size for n, i in archive.entries.items()
                     if n.startswith(prefix + "data/"))
        self.budget = 2 * stored + EXTRA_MATERIALIZED_BYTES

    def error(self, problem: str) -> LoadError:
        return self.archive.error(problem)

    def torch_globals(self) -> dict:
        """The allowlist: PyTorch's names, each mapped to tapegrad's implementation."""
        return {**{path: getattr(self, attr) for path, attr in _REBUILDERS.items()},
                **_STATIC_GLOBALS}

    # -- storages -----------------------------------------------------------------------------
    def persistent_load(self, pid) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise self.error(f"unknown persistent id {pid!r:.80} (only storages are expected)")
        _, kind, key, location, numel = pid
        if not isinstance(kind, StorageType):
            raise self.error(f"a storage of type {kind!r:.60} (not a storage class)")
        if not (isinstance(key, str) and key.isalnum() and isinstance(location, str)
                and type(numel) is int and numel >= 0):
            raise self.error(f"malformed storage reference {pid!r:.80}")
        nbytes = numel * (kind.dtype.itemsize if kind.dtype is not None else 1)
        found = self.storages.get(key)
        if found is not None:
            if found.nbytes != nbytes:
                raise self.error(f"storage {key} is referenced with sizes {found.nbytes} and "
                                 f"{nbytes} bytes")
            return found
        name = f"{self.prefix}data/{key}"
        if name not in self.archive.entries:
            raise self.error(f"the pickle refers to storage {key}, which the archive lacks")
        held = self.archive.size(name)
        if held != nbytes:  # checked before anything is allocated
            raise self.error(f"storage {key} declares {nbytes} bytes, the archive holds {held}")
        storage = self.storages[key] = _Storage(key, kind.dtype, nbytes, location)
        return storage

    def _bytes(self, storage: _Storage) -> np.ndarray:
        buf = self.buffers.get(storage.key)
        if buf is None:
            whole = self.whole.get(storage.key)
            if whole is not None:  # the bytes went into a tensor already: take them back
                buf = np.ascontiguousarray(np.asarray(whole._value())).reshape(-1).view(np.uint8)
            else:
                buf = self.archive.array(f"{self.prefix}data/{storage.key}", storage.nbytes,
                                         self.mmap)
            self.buffers[storage.key] = buf
        return buf

    def _elements(self, storage: _Storage, dtype: _dtype.dtype) -> np.ndarray:
        buf = self._bytes(storage)
        arr = buf.view(np.uint8).view(dtype.np if dtype is not _dtype.bool else np.uint8)
        if self.swap and storage.key not in self.whole:
            arr = arr.byteswap()
        return arr != 0 if dtype is _dtype.bool else arr  # a flipped bool byte stays a bool

    # -- tensors ------------------------------------------------------------------------------
    def _tensor(self, storage, offset, size, stride, requires_grad, dtype=None) -> Tensor:
        if not isinstance(storage, _Storage):
            raise self.error(f"a tensor rebuilt from {type(storage).__name__}, not a storage")
        dtype = storage.dtype if dtype is None else dtype
        if not isinstance(dtype, _dtype.dtype):
            raise self.error(f"a tensor of dtype {dtype!r:.40}")
        if type(offset) is not int or offset < 0:
            raise self.error(f"a tensor's storage offset {offset!r:.40} is not a non-negative int")
        size = _ints(size, "size", self.source)
        stride = _ints(stride, "stride", self.source)
        if len(size) != len(stride):
            raise self.error(f"a tensor's size {size} and stride {stride} differ in length")
        if not isinstance(requires_grad, bool):
            raise self.error(f"a tensor's requires_grad is {requires_grad!r:.40}")
        if storage.nbytes % dtype.itemsize:
            raise self.error(f"storage {storage.key} of {storage.nbytes} bytes does not hold "
                             f"whole {dtype.name} elements")
        elements = storage.nbytes // dtype.itemsize
        numel = math.prod(size)
        last = offset + sum((s - 1) * st for s, st in zip(size, stride)) if numel else offset - 1
        if last >= elements or offset > elements:
            raise self.error(f"a tensor of size {list(size)}, stride {list(stride)} and offset "
                             f"{offset} reaches element {last} of storage {storage.key}, which "
                             f"has {elements}")
        key = (storage.key, dtype.name, offset, size, stride)
        first = self.layouts.get(key)
        if first is not None:
            t = Tensor._sharing(first)
        else:
            t = self._new_tensor(storage, dtype, offset, size, stride, numel, elements)
            self.layouts[key] = t
            self.groups[(storage.key, dtype.name)].append((t, offset, size, stride))
        if requires_grad:
            if not (dtype.is_floating_point or dtype.is_complex):
                raise self.error(f"a {dtype.name} tensor requires grad")
            t.requires_grad_(True)
        return t

    def _new_tensor(self, storage, dtype, offset, size, stride, numel, elements) -> Tensor:
        whole = offset == 0 and numel == elements and stride == contiguous_strides(size)
        if not whole:
            self.budget -= numel * dtype.itemsize
            if self.budget < 0:
                raise self.error(f"its tensors overlap in their storages more than the "
                                 f"{EXTRA_MATERIALIZED_BYTES} spare bytes allowed (a tensor of "
                                 f"size {list(size)} over {elements} elements); refused to keep "
                                 "memory bounded")
        if numel == 0:
            value = np.zeros(size, dtype.np)
        else:
            arr = self._elements(storage, dtype)
            value = np.lib.stride_tricks.as_strided(
                arr[offset:], shape=size, strides=tuple(s * arr.itemsize for s in stride))
            value = value.copy()  # dense, and off the file's buffer (0-d stays 0-d)
        with jax.enable_x64(True):
            t = self.place(Tensor._from_array(jnp.asarray(value)), storage.location)
        if whole and not self.swap and storage.key not in self.whole:
            self.whole[storage.key] = t
            self.buffers.pop(storage.key, None)  # the tensor holds the bytes now
        return t

    def rebuild_tensor(self, storage, storage_offset, size, stride):
        return self._tensor(storage, storage_offset, size, stride, False)

    def rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad,
                          backward_hooks, metadata=None):
        self._check_extras(backward_hooks, metadata)
        return self._tensor(storage, storage_offset, size, stride, requires_grad)

    def rebuild_tensor_v3(self, storage, storage_offset, size, stride, requires_grad,
                          backward_hooks, dtype, metadata=None):
        self._check_extras(backward_hooks, metadata)
        return self._tensor(storage, storage_offset, size, stride, requires_grad, dtype)

    def _check_extras(self, backward_hooks, metadata) -> None:
        if not isinstance(backward_hooks, dict) or backward_hooks:
            raise self.error("a tensor saved with backward hooks (they are code, never loaded)")
        if metadata is not None and not isinstance(metadata, dict):
            raise self.error(f"a tensor's metadata is {type(metadata).__name__}")

    def rebuild_parameter(self, data, requires_grad, backward_hooks):
        if not isinstance(data, Tensor) or not isinstance(requires_grad, bool):
            raise self.error("malformed parameter (its data is not a tensor)")
        self._check_extras(backward_hooks, None)
        return Parameter(data, requires_grad)

    def rebuild_parameter_with_state(self, data, requires_grad, backward_hooks, state):
        p = self.rebuild_parameter(data, requires_grad, backward_hooks)
        self._set_state(p, state)
        return p

    def rebuild_from_type_v2(self, func, new_type, args, state):
        rebuilders = (self.rebuild_tensor, self.rebuild_tensor_v2, self.rebuild_tensor_v3,
                      self.rebuild_parameter, self.rebuild_parameter_with_state)
        if func not in rebuilders or not isinstance(args, tuple):
            raise self.error("_rebuild_from_type_v2 with a function that does not rebuild a "
                             "tensor")
        cls = new_type.cls if isinstance(new_type, TypeOnly) else new_type
        if cls not in (Tensor, Parameter):
            raise self.error(f"a tensor of class {cls!r:.60} (only Tensor and Parameter)")
        t = func(*args)
        if cls is Parameter and not isinstance(t, Parameter):
            t = Parameter(t, t.requires_grad)
        self._set_state(t, state)
        return t

    def _set_state(self, t: Tensor, state) -> None:
        """Python attributes saved on a tensor (`t.foo = 1` in PyTorch): plain names only."""
        if isinstance(state, tuple) and len(state) == 2:
            state = {**(state[0] or {}), **(state[1] or {})}
        if not state:
            return
        if not isinstance(state, dict):
            raise self.error(f"a tensor's saved state is {type(state).__name__}")
        for k, v in state.items():
            if not isinstance(k, str) or k.startswith("_"):
                raise self.error(f"a tensor's saved attribute {k!r:.40} (private names are "
                                 "never set)")
            t.__dict__[k] = v

    def finish(self) -> None:
        """Make tensors that share a storage views of one base (the one holding the whole
        storage when there is one), so writes through one are seen by the others."""
        for (key, dtype_name), members in self.groups.items():
            if len(members) < 2:
                continue
            dtype = _TORCH_DTYPES[dtype_name]
            storage = self.storages[key]
            base = self.whole.get(key)
            if base is None or base.dtype is not dtype:
                with jax.enable_x64(True):
                    value = jnp.asarray(self._elements(storage, dtype))
                base = self.place(Tensor._from_array(value), storage.location)
            for t, offset, size, stride in members:
                if t is not base:
                    _views.track(t, base, as_strided_op, offset=offset, size=size,
                                 stride=stride)
        self.buffers.clear()


class _TrustedUnpickler(pickle.Unpickler):
    """`weights_only=False`: Python's own unpickler, which runs what the file says (opt-in)."""

    def __init__(self, fh: IO[bytes], reader: Reader, encoding: str) -> None:
        super().__init__(fh, encoding=encoding)
        self.reader = reader
        self.table = reader.torch_globals()

    def find_class(self, module: str, name: str):
        found = self.table.get(f"{module}.{name}")
        if isinstance(found, Unavailable):
            raise self.reader.error(found.reason)
        if found is not None:
            return found.cls if isinstance(found, TypeOnly) else found
        if module == "torch" or module.startswith("torch."):
            return _tapegrad_counterpart(module, name, self.reader)
        return super().find_class(module, name)

    def persistent_load(self, pid):
        return self.reader.persistent_load(pid)


def _tapegrad_counterpart(module: str, name: str, reader: Reader):
    """`torch.nn.modules.linear.Linear` -> `tapegrad.nn.modules.linear.Linear` (whole PyTorch
    objects in a trusted file become tapegrad's, where tapegrad has them)."""
    target = "tapegrad" + module[len("torch"):]
    try:
        found = __import__(target, fromlist=[name])
        for part in name.split("."):
            found = getattr(found, part)
        return found
    except (ImportError, AttributeError):
        raise reader.error(f"the checkpoint holds a {module}.{name}, which tapegrad does not "
                           "have") from None


def read(archive: Archive, prefix: str, map_location, weights_only: bool, mmap: bool,
         encoding: str = "utf-8") -> Any:
    """Load the object of a PyTorch checkpoint whose entries sit under `prefix`."""
    version_entry = prefix + "version"
    if version_entry in archive.entries:
        raw = archive.read(version_entry, 16).strip()
        if not raw.isdigit() or not 1 <= int(raw) <= FORMAT_VERSION:
            raise archive.error(f"archive format version {raw!r}; tapegrad reads 1 to "
                                f"{FORMAT_VERSION}")
    reader = Reader(archive, prefix, map_location, mmap)
    data = archive.read(prefix + "data.pkl", MAX_PICKLE_BYTES)
    if weights_only:
        obj = WeightsUnpickler(data, archive.source, reader.torch_globals(),
                               reader.persistent_load).load()
    else:
        obj = _TrustedUnpickler(io.BytesIO(data), reader, encoding).load()
    reader.finish()
    return obj


# -- writing ------------------------------------------------------------------------------------

class _TorchPickler(Pickler):
    """Writes tensors, dtypes, devices and sizes as PyTorch's pickles name them."""

    def __init__(self) -> None:
        super().__init__()
        self.storages: dict = {}  # id(base cell) -> (key, base tensor)

    def save_special(self, obj) -> bool:
        if isinstance(obj, Tensor):
            self._tensor(obj)
        elif isinstance(obj, _dtype.dtype):
            self.global_("torch", obj.name)
        elif isinstance(obj, _device.device):
            self.call("torch", "device", str(obj))
            self.put(obj)
        elif isinstance(obj, Size):
            self.call("torch", "Size", tuple(obj))
            self.put(obj)
        elif isinstance(obj, _layout.layout):
            self.call("torch.serialization", "_get_layout", f"torch.{obj.name}")
            self.put(obj)
        else:
            return False
        return True

    def _tensor(self, t: Tensor) -> None:
        base, offset, stride = place(t)
        key, base = self.storages.setdefault(id(base._storage), (str(len(self.storages)), base))
        legacy = _STORAGE_OF.get(t.dtype.name)
        param = isinstance(t, Parameter)
        if param:
            self.global_("torch._utils", "_rebuild_parameter")
            self.write(b"(")
        self.global_("torch._utils", "_rebuild_tensor_v2" if legacy else "_rebuild_tensor_v3")
        self.write(b"((")  # the argument tuple, then the storage's persistent id
        self.save("storage")
        if legacy:
            self.global_("torch", legacy)
        else:
            self.global_("torch.storage", "UntypedStorage")
        self.save(key)
        self.save(str(t.device))
        self.save_int(base.numel() * (1 if legacy else t.dtype.itemsize))
        self.write(b"tQ")
        self.save_int(offset)
        self.save_tuple(tuple(t.shape))
        self.save_tuple(tuple(stride))
        self.save(bool(t.requires_grad) and not param)
        self.call("collections", "OrderedDict")
        if not legacy:
            self.global_("torch", t.dtype.name)
        self.write(b"tR")
        if param:
            self.save(bool(t.requires_grad))
            self.call("collections", "OrderedDict")
            self.write(b"tR")
        self.put(t)


def _record(zf: zipfile.ZipFile, name: str, data, aligned: bool = False) -> None:
    """One stored entry; `aligned`: padded (an extra field, as torch.save pads) so that the
    bytes start at a multiple of ALIGNMENT in the file."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    size = len(data)
    zip64 = size >= zipfile.ZIP64_LIMIT
    if aligned:
        header = 30 + len(name.encode("utf-8")) + (20 if zip64 else 0) + 4
        pad = -(zf.fp.tell() + header) % ALIGNMENT
        info.extra = struct.pack("<HH", 0x4246, pad) + b"\0" * pad  # 'FB', as PyTorch's
    with zf.open(info, "w", force_zip64=zip64) as out:
        out.write(data)


def pickled(obj: Any) -> _TorchPickler:
    """`obj` pickled as PyTorch pickles it (its storages still to be written)."""
    pickler = _TorchPickler()
    pickler.data = pickler.dumps(obj)
    return pickler


def write(pickler: _TorchPickler, fh: IO[bytes]) -> None:
    """Write a pickled object and its storages in PyTorch's zip format to the seekable `fh`."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
        _record(zf, "archive/data.pkl", pickler.data)
        _record(zf, "archive/.format_version", b"1")
        _record(zf, "archive/.storage_alignment", str(ALIGNMENT).encode())
        _record(zf, "archive/byteorder", sys.byteorder.encode())
        for key, base in pickler.storages.values():
            value = np.ascontiguousarray(np.asarray(base._value())).reshape(-1)
            _record(zf, f"archive/data/{key}", memoryview(value.view(np.uint8)), aligned=True)
        _record(zf, "archive/version", f"{FORMAT_VERSION}\n".encode())
