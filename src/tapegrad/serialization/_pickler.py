"""A protocol-2 pickle writer that names PyTorch's globals without importing them.

Python's own pickler writes a global only after importing it and checking that the name gives
the same object back, so it cannot write `torch._utils._rebuild_tensor_v2` without torch. This
writer emits the opcodes itself: data (None, bools, numbers, strings, bytes, tuples, lists,
dicts, sets) directly, each object once (later references are memo lookups), what a subclass
handles in `save_special` (tensors, dtypes, devices), and any other object through Python's
reduce protocol (`__reduce_ex__(2)`), as `pickle` does, so whole modules can be written too.
"""
from __future__ import annotations

import copyreg
import io
import struct
import sys
import types
from pickle import PicklingError
from typing import Any

_BATCH = 1000


class Pickler:
    """Writes one object as a protocol-2 pickle into `self.out`."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.memo: dict = {}      # id(obj) -> memo index
        self.globals: dict = {}   # (module, name) -> memo index
        self.keep: list = []      # memoised objects stay alive while their ids are keys

    def dumps(self, obj: Any) -> bytes:
        self.out.write(b"\x80\x02")
        self.save(obj)
        self.out.write(b".")
        return self.out.getvalue()

    # -- opcodes ----------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        self.out.write(data)

    def put(self, obj) -> None:
        index = len(self.memo) + len(self.globals)
        self.memo[id(obj)] = index
        self.keep.append(obj)
        self._put_index(index)

    def _put_index(self, index: int) -> None:
        self.write(b"q" + bytes([index]) if index < 256 else b"r" + struct.pack("<I", index))

    def _get(self, index: int) -> None:
        self.write(b"h" + bytes([index]) if index < 256 else b"j" + struct.pack("<I", index))

    def global_(self, module: str, name: str) -> None:
        """A GLOBAL by name (memoised, so each is written in full once)."""
        key = (module, name)
        if key in self.globals:
            self._get(self.globals[key])
            return
        self.write(b"c" + module.encode("utf-8") + b"\n" + name.encode("utf-8") + b"\n")
        index = len(self.memo) + len(self.globals)
        self.globals[key] = index
        self._put_index(index)

    def call(self, module: str, name: str, *args) -> None:
        """`module.name(*args)`: GLOBAL, the argument tuple, REDUCE."""
        self.global_(module, name)
        self.save_tuple(args)
        self.write(b"R")

    def save_int(self, n: int) -> None:
        if 0 <= n < 256:
            self.write(b"K" + bytes([n]))
        elif 0 <= n < 65536:
            self.write(b"M" + struct.pack("<H", n))
        elif -(1 << 31) <= n < (1 << 31):
            self.write(b"J" + struct.pack("<i", n))
        else:
            raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
            self.write(b"\x8a" + bytes([len(raw)]) + raw if len(raw) < 256
                       else b"\x8b" + struct.pack("<i", len(raw)) + raw)

    def save_tuple(self, items: tuple) -> None:
        if not items:
            self.write(b")")
            return
        if len(items) <= 3:
            for x in items:
                self.save(x)
            self.write(bytes([0x84 + len(items)]))
            return
        self.write(b"(")
        for x in items:
            self.save(x)
        self.write(b"t")

    def _batched(self, items, opcode: bytes, pairs: bool) -> None:
        batch = []
        for item in items:
            batch.append(item)
            if len(batch) == _BATCH:
                self._flush(batch, opcode, pairs)
                batch = []
        if batch:
            self._flush(batch, opcode, pairs)

    def _flush(self, batch: list, opcode: bytes, pairs: bool) -> None:
        self.write(b"(")
        for item in batch:
            if pairs:
                self.save(item[0])
                self.save(item[1])
            else:
                self.save(item)
        self.write(opcode)

    # -- objects ----------------------------------------------------------------------------
    def save_special(self, obj) -> bool:
        """Write `obj` if this writer has its own form for it (overridden); False otherwise."""
        return False

    def save(self, obj: Any) -> None:
        t = type(obj)
        if obj is None:
            self.write(b"N")
        elif t is bool:
            self.write(b"\x88" if obj else b"\x89")
        elif t is int:
            self.save_int(obj)
        elif t is float:
            self.write(b"G" + struct.pack(">d", obj))
        elif id(obj) in self.memo:
            self._get(self.memo[id(obj)])
        elif self.save_special(obj):
            pass
        elif t is str:
            raw = obj.encode("utf-8", "surrogatepass")
            self.write(b"X" + struct.pack("<I", len(raw)) + raw)
            self.put(obj)
        elif t is bytes:
            self.call("_codecs", "encode", obj.decode("latin1"), "latin1")
            self.put(obj)
        elif t is tuple:
            self.save_tuple(obj)
            if id(obj) in self.memo:  # reached again through its own items (a list inside)
                self.write(b"0")
                self._get(self.memo[id(obj)])
            else:
                self.put(obj)
        elif t is list:
            self.write(b"]")
            self.put(obj)
            self._batched(obj, b"e", pairs=False)
        elif t is dict:
            self.write(b"}")
            self.put(obj)
            self._batched(obj.items(), b"u", pairs=True)
        elif t in (set, frozenset):
            self.call("builtins", t.__name__, list(obj))
            self.put(obj)
        elif t is complex:
            self.call("builtins", "complex", obj.real, obj.imag)
            self.put(obj)
        elif t is bytearray:
            self.call("builtins", "bytearray", bytes(obj))
            self.put(obj)
        elif isinstance(obj, type) or t in (types.FunctionType, types.BuiltinFunctionType):
            self.save_global(obj)
        else:
            self.save_reduce(obj)

    def save_global(self, obj) -> None:
        """A class or function by its importable name, checked as `pickle` checks it."""
        module = getattr(obj, "__module__", None)
        name = getattr(obj, "__qualname__", None)
        found = sys.modules.get(module) if module else None
        for part in (name or "").split("."):
            found = getattr(found, part, None)
        if found is not obj or "<locals>" in (name or ""):
            raise PicklingError(f"Can't pickle {obj!r}: it's not found as {module}.{name}")
        self.global_(module, name)

    def save_reduce(self, obj) -> None:
        """Any other object, by the reduce protocol (what `pickle` does for protocol 2)."""
        reducer = copyreg.dispatch_table.get(type(obj))
        rv = reducer(obj) if reducer is not None else obj.__reduce_ex__(2)
        if isinstance(rv, str):
            self.global_(obj.__module__, rv)  # a module-level singleton, by name
            return
        if not isinstance(rv, tuple) or not 2 <= len(rv) <= 6:
            raise PicklingError(f"{type(obj).__name__}.__reduce_ex__ returned {rv!r}")
        func, args, state, listitems, dictitems = (tuple(rv) + (None,) * 3)[:5]
        if func is copyreg.__newobj__:
            self.save(args[0])
            self.save_tuple(tuple(args[1:]))
            self.write(b"\x81")
        else:
            self.save(func)
            self.save_tuple(tuple(args))
            self.write(b"R")
        self.put(obj)
        if listitems is not None:
            self._batched(listitems, b"e", pairs=False)
        if dictitems is not None:
            self._batched(dictitems, b"u", pairs=True)
        if state is not None:
            self.save(state)
            self.write(b"b")
