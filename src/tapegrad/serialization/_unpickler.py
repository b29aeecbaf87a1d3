"""A weights-only unpickler: reads pickled data without ever resolving a global it was not given.

`WeightsUnpickler` is an interpreter of the pickle opcodes written for untrusted input (not
Python's `pickle.Unpickler` with a filter): a GLOBAL is looked up in an explicit allowlist and
nowhere else, so nothing is imported; only callables that came from the allowlist are called
(REDUCE, NEWOBJ); state is set (BUILD) only on allowlisted types; items are appended or set only
on lists, dicts, sets and allowlisted types. Opcodes that exist to run code or reach outside the
stream (INST, OBJ, the copyreg extension registry, out-of-band buffers) are refused. Every
failure raises `LoadError` naming the file and the problem; the number of objects built is
capped, so a small pickle cannot make a huge one.

The allowlist is what `tapegrad.load` provides (the globals PyTorch's checkpoints use) plus what
the user marks safe with `add_safe_globals` / `safe_globals`, as in PyTorch.
"""
from __future__ import annotations

import _compat_pickle
import codecs
import collections
import pickletools
import struct
import threading
from typing import Any, Callable, Iterable

from ._archive import LoadError, refuse

MAX_OBJECTS = 1 << 24  # objects one pickle may build (each at least a few dozen bytes)

_user = threading.local()  # the user's allowlist: "module.name" -> object, and the items given


def _user_globals() -> dict:
    if not hasattr(_user, "globals"):
        _user.globals, _user.items = {}, []
    return _user.globals


def _path_of(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def add_safe_globals(safe_globals: list) -> None:
    """Mark globals as safe for `weights_only` loading (`torch.serialization.add_safe_globals`).

    Each item is a function or class, or `(obj, "module.name")` when the checkpoint names it
    differently from `obj.__module__ + "." + obj.__qualname__`. An allowlisted function may be
    called while loading, and an allowlisted class instantiated and given its saved state.
    """
    table = _user_globals()
    for item in safe_globals:
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[1], str):
                raise ValueError(f"expected (obj, 'module.name'), got {item!r}")
            obj, path = item
        else:
            obj, path = item, _path_of(item)
        table[path] = obj
        _user.items.append(item)


def get_safe_globals() -> list:
    """The user-added globals that are safe for `weights_only` loading, as they were given."""
    _user_globals()
    return list(_user.items)


def clear_safe_globals() -> None:
    """Forget every global added with `add_safe_globals`."""
    _user_globals().clear()
    _user.items.clear()


class safe_globals:  # noqa: N801 - PyTorch's name
    """Context manager: `with safe_globals([MyClass]): tapegrad.load(f)` allows them inside."""

    def __init__(self, safe_globals: list) -> None:
        self.safe_globals = safe_globals

    def __enter__(self) -> None:
        self.saved = (dict(_user_globals()), list(_user.items))
        add_safe_globals(self.safe_globals)

    def __exit__(self, *exc) -> None:
        table = _user_globals()
        table.clear()
        table.update(self.saved[0])
        _user.items[:] = self.saved[1]


def unsupported_global(path: str) -> str:
    return (f"Weights only load failed. Unsupported global: GLOBAL {path} was not an allowed "
            f"global by default. Please use `tapegrad.serialization.add_safe_globals([{path}])` or "
            f"the `tapegrad.serialization.safe_globals([{path}])` context manager to allowlist "
            "this global if you trust this class/function. Re-running `tapegrad.load` with "
            "`weights_only` set to `False` will likely succeed, but it can result in arbitrary "
            "code execution. Do it only if you got the file from a trusted source.")


class TypeOnly:
    """An allowlisted class that may be named (as an argument) but never called or built."""

    __slots__ = ("cls",)

    def __init__(self, cls: type) -> None:
        self.cls = cls


class Unavailable:
    """A global PyTorch's checkpoints may name that tapegrad has no counterpart for (a float8
    dtype, a quantized storage): naming it refuses the file with `reason`."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def safe_codecs_encode(obj, encoding: str = "utf-8") -> bytes:
    """`_codecs.encode` as protocol-2 pickles use it for bytes: a str in latin-1, nothing else."""
    if not isinstance(obj, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise TypeError("_codecs.encode is allowed only as pickle uses it: (str, 'latin1')")
    return obj.encode("latin1")


def _of_items(kind: type) -> Callable:
    def build(items: Iterable = ()):
        if not isinstance(items, (list, tuple, bytes)):
            raise TypeError(f"builtins.{kind.__name__} takes a list here, got "
                            f"{type(items).__name__}")
        return kind(items)
    build.__name__ = kind.__name__
    return build


def _complex(real=0.0, imag=0.0) -> complex:
    if not all(isinstance(x, (int, float)) for x in (real, imag)):
        raise TypeError("builtins.complex takes two numbers here")
    return complex(real, imag)


BUILTIN_GLOBALS = {
    "collections.OrderedDict": collections.OrderedDict,
    "collections.Counter": collections.Counter,
    "_codecs.encode": safe_codecs_encode,
    "builtins.bytearray": _of_items(bytearray),
    "builtins.set": _of_items(set),
    "builtins.frozenset": _of_items(frozenset),
    "builtins.complex": _complex,
}
_SETITEM_TYPES = (dict, collections.OrderedDict, collections.Counter)
_ATTR_STATE_TYPES = (collections.OrderedDict, collections.Counter)  # `_metadata` of a state_dict


class WeightsUnpickler:
    """Interprets one pickle from `data`. `allowed` maps "module.name" to what a GLOBAL gives
    (a callable, a class, a value, or a `TypeOnly`); `persistent_load(pid)` answers BINPERSID."""

    def __init__(self, data: bytes, source: str, allowed: dict,
                 persistent_load: Callable[[Any], Any]) -> None:
        self.data = data
        self.source = source
        self.allowed = {**BUILTIN_GLOBALS, **allowed, **_user_globals()}
        self.user_types = tuple(v for v in _user_globals().values() if isinstance(v, type))
        self.callables = {id(v) for v in self.allowed.values()
                          if callable(v) and not isinstance(v, TypeOnly)}
        self.persistent_load = persistent_load
        self.pos = 0
        self.built = 0
        self.protocol = 0

    # -- reading the stream -------------------------------------------------------------------
    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise self._error(f"the pickle is truncated (needs {n} bytes at byte {self.pos})")
        out = self.data[self.pos:end]
        self.pos = end
        return out

    def _line(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise self._error("the pickle is truncated (an unterminated line)")
        out = self.data[self.pos:end]
        self.pos = end + 1
        return out

    def _unpack(self, fmt: str):
        s = struct.Struct(fmt)
        return s.unpack(self._take(s.size))[0]

    def _error(self, problem: str) -> LoadError:
        return refuse(self.source, problem)

    def _count(self, n: int = 1) -> None:
        self.built += n
        if self.built > MAX_OBJECTS:
            raise self._error(f"the pickle builds more than {MAX_OBJECTS} objects; refused to "
                              "keep memory bounded")

    # -- the interpreter ----------------------------------------------------------------------
    def load(self) -> Any:
        try:
            return self._run()
        except LoadError:
            raise
        except (IndexError, KeyError, TypeError, ValueError, AttributeError, struct.error,
                UnicodeDecodeError, OverflowError, RecursionError, MemoryError) as e:
            raise self._error(f"malformed pickle near byte {self.pos} "
                              f"({type(e).__name__}: {e})") from None

    def _run(self) -> Any:
        stack: list = []
        marks: list = []
        memo: dict = {}

        def pop_mark() -> list:
            if not marks:
                raise self._error("malformed pickle: no MARK for a MARK-using opcode")
            start = marks.pop()
            if start > len(stack):
                raise self._error("malformed pickle: a MARK below the stack")
            items = stack[start:]
            del stack[start:]
            return items

        def push(obj, n: int = 1) -> None:
            self._count(n)
            stack.append(obj)

        while True:
            op = self._take(1)
            if op == b".":  # STOP
                if len(stack) != 1 or marks:
                    raise self._error("malformed pickle: the stack does not end with one object")
                return stack[0]
            if op == b"\x80":  # PROTO
                self.protocol = self._take(1)[0]
                if self.protocol > 5:
                    raise self._error("the pickle uses a protocol newer than 5")
            elif op == b"\x95":  # FRAME: a length hint only
                self._take(8)
            elif op == b"(":
                marks.append(len(stack))
            elif op == b"0":
                stack.pop()
            elif op == b"1":
                pop_mark()
            elif op == b"2":
                stack.append(stack[-1])
            elif op == b"N":
                stack.append(None)
            elif op == b"\x88":
                stack.append(True)
            elif op == b"\x89":
                stack.append(False)
            elif op == b"I":
                line = self._line()
                stack.append(True if line == b"01" else False if line == b"00" else int(line))
            elif op == b"J":
                stack.append(self._unpack("<i"))
            elif op == b"K":
                stack.append(self._take(1)[0])
            elif op == b"M":
                stack.append(self._unpack("<H"))
            elif op == b"L":
                stack.append(int(self._line().rstrip(b"L")))
            elif op == b"\x8a":
                stack.append(int.from_bytes(self._take(self._take(1)[0]), "little", signed=True))
            elif op == b"\x8b":
                stack.append(int.from_bytes(self._take(self._unpack("<i")), "little",
                                            signed=True))
            elif op == b"F":
                stack.append(float(self._line()))
            elif op == b"G":
                stack.append(self._unpack(">d"))
            elif op == b"X":
                push(self._take(self._unpack("<I")).decode("utf-8", "surrogatepass"))
            elif op == b"\x8c":
                push(self._take(self._take(1)[0]).decode("utf-8", "surrogatepass"))
            elif op == b"\x8d":
                push(self._take(self._unpack("<Q")).decode("utf-8", "surrogatepass"))
            elif op == b"V":
                push(self._line().decode("raw-unicode-escape"))
            elif op in (b"T", b"U"):  # Python 2 strings, read as torch.load does (utf-8)
                n = self._unpack("<i") if op == b"T" else self._take(1)[0]
                push(self._take(n).decode("utf-8"))
            elif op == b"B":
                push(self._take(self._unpack("<I")))
            elif op == b"C":
                push(self._take(self._take(1)[0]))
            elif op == b"\x8e":
                push(self._take(self._unpack("<Q")))
            elif op == b"\x96":
                push(bytearray(self._take(self._unpack("<Q"))))
            elif op == b"]":
                push([])
            elif op == b"l":
                items = pop_mark()
                push(items, 1 + len(items))
            elif op == b")":
                stack.append(())
            elif op == b"t":
                items = pop_mark()
                push(tuple(items), 1 + len(items))
            elif op in (b"\x85", b"\x86", b"\x87"):
                n = op[0] - 0x84
                if len(stack) < n:
                    raise self._error("malformed pickle: TUPLE of an empty stack")
                items = tuple(stack[len(stack) - n:])
                del stack[len(stack) - n:]
                push(items)
            elif op == b"}":
                push({})
            elif op == b"d":
                items = pop_mark()
                push(self._pairs({}, items), 1 + len(items))
            elif op == b"\x8f":
                push(set())
            elif op == b"\x91":
                items = pop_mark()
                push(frozenset(items), 1 + len(items))
            elif op == b"a":
                value = stack.pop()
                self._extend(stack[-1], [value])
            elif op == b"e":
                items = pop_mark()
                self._extend(stack[-1], items)
            elif op == b"s":
                value = stack.pop()
                key = stack.pop()
                self._pairs(stack[-1], [key, value])
            elif op == b"u":
                items = pop_mark()
                self._pairs(stack[-1], items)
            elif op == b"\x90":
                items = pop_mark()
                target = stack[-1]
                if type(target) is not set:
                    raise self._error(f"ADDITEMS on a {type(target).__name__}")
                self._count(len(items))
                target.update(items)
            elif op == b"c":
                module = self._line().decode("utf-8")
                name = self._line().decode("utf-8")
                stack.append(self._global(module, name))
            elif op == b"\x93":
                name = stack.pop()
                module = stack.pop()
                if not (isinstance(module, str) and isinstance(name, str)):
                    raise self._error("malformed pickle: STACK_GLOBAL of non-strings")
                stack.append(self._global(module, name))
            elif op == b"R":
                args = stack.pop()
                func = stack.pop()
                push(self._call(func, args))
            elif op == b"\x81":  # NEWOBJ
                args = stack.pop()
                cls = stack.pop()
                push(self._new(cls, args, {}))
            elif op == b"\x92":  # NEWOBJ_EX
                kwargs = stack.pop()
                args = stack.pop()
                cls = stack.pop()
                push(self._new(cls, args, kwargs))
            elif op == b"b":
                state = stack.pop()
                self._build(stack[-1], state)
            elif op == b"Q":
                stack.append(self.persistent_load(stack.pop()))
            elif op == b"P":
                stack.append(self.persistent_load(self._line().decode("ascii")))
            elif op in (b"h", b"j", b"g"):
                index = (self._take(1)[0] if op == b"h" else self._unpack("<I") if op == b"j"
                         else int(self._line()))
                if index not in memo:
                    raise self._error(f"malformed pickle: memo entry {index} was never stored")
                stack.append(memo[index])
            elif op in (b"q", b"r", b"p"):
                index = (self._take(1)[0] if op == b"q" else self._unpack("<I") if op == b"r"
                         else int(self._line()))
                memo[index] = stack[-1]
            elif op == b"\x94":  # MEMOIZE
                memo[len(memo)] = stack[-1]
            elif op in _REFUSED:
                raise self._error(f"the pickle uses {_REFUSED[op]}, which a weights-only load "
                                  "never runs")
            else:
                raise self._error(f"malformed pickle: unknown opcode {op!r} at byte "
                                  f"{self.pos - 1}")

    # -- what the opcodes may do --------------------------------------------------------------
    def _global(self, module: str, name: str):
        if self.protocol < 3:  # Python 2 names, mapped as Python's unpickler maps them
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        path = f"{module}.{name}"
        if path not in self.allowed:
            raise self._error(unsupported_global(path))
        found = self.allowed[path]
        if isinstance(found, Unavailable):
            raise self._error(found.reason)
        return found

    def _call(self, func, args):
        if id(func) not in self.callables or isinstance(func, TypeOnly):
            raise self._error(f"the pickle calls {_describe(func)}, which is not an allowed "
                              "callable")
        if not isinstance(args, tuple):
            raise self._error("malformed pickle: REDUCE arguments are not a tuple")
        return func(*args)

    def _new(self, cls, args, kwargs):
        if not (isinstance(cls, type) and id(cls) in self.callables):
            raise self._error(f"the pickle builds {_describe(cls)} with NEWOBJ, which is not an "
                              "allowed class")
        if not isinstance(args, tuple) or not isinstance(kwargs, dict):
            raise self._error("malformed pickle: NEWOBJ arguments")
        return cls.__new__(cls, *args, **kwargs)

    def _build(self, target, state) -> None:
        if isinstance(target, self.user_types):
            setstate = getattr(type(target), "__setstate__", None)
            if setstate is not None:
                setstate(target, state)
                return
            slots = None
            if isinstance(state, tuple) and len(state) == 2:
                state, slots = state
            if state:
                target.__dict__.update(state)
            for k, v in (slots or {}).items():
                setattr(target, k, v)
            return
        if isinstance(target, _ATTR_STATE_TYPES) and isinstance(state, dict):
            for k, v in state.items():
                if not isinstance(k, str) or k.startswith("__"):
                    raise self._error(f"the pickle sets attribute {k!r} of an OrderedDict")
                setattr(target, k, v)
            return
        raise self._error(f"the pickle sets the state of a {type(target).__name__} (BUILD), "
                          "which a weights-only load allows only for allowlisted classes")

    def _extend(self, target, items: list) -> None:
        self._count(len(items))
        if type(target) is list:
            target.extend(items)
        elif isinstance(target, self.user_types):
            extend = getattr(target, "extend", None)
            if extend is not None:
                extend(items)
            else:
                for item in items:
                    target.append(item)
        else:
            raise self._error(f"the pickle appends to a {type(target).__name__}")

    def _pairs(self, target, items: list):
        if len(items) % 2:
            raise self._error("malformed pickle: an odd number of dict items")
        if not (type(target) in _SETITEM_TYPES or isinstance(target, self.user_types)):
            raise self._error(f"the pickle sets items of a {type(target).__name__}")
        self._count(len(items) // 2)
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]
        return target


def _describe(obj) -> str:
    if isinstance(obj, TypeOnly):
        return f"class {_path_of(obj.cls)}"
    if hasattr(obj, "__qualname__"):
        return f"{getattr(obj, '__module__', '?')}.{obj.__qualname__}"
    return f"an object of type {type(obj).__name__}"


_REFUSED = {b"i": "INST", b"o": "OBJ", b"\x82": "EXT1 (the copyreg extension registry)",
            b"\x83": "EXT2 (the copyreg extension registry)",
            b"\x84": "EXT4 (the copyreg extension registry)",
            b"\x97": "NEXT_BUFFER (out-of-band data)", b"\x98": "READONLY_BUFFER",
            b"S": "STRING (Python 2 text strings)"}


def globals_in(data: bytes) -> list:
    """Every "module.name" that GLOBAL/STACK_GLOBAL opcodes of a pickle name, read statically
    (for `get_unsafe_globals_in_checkpoint`); nothing is built."""
    found, strings = [], []
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name == "GLOBAL":
                found.append(arg.replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            if isinstance(arg, str):
                strings.append(arg)
    except ValueError as e:
        raise LoadError(f"malformed pickle ({e})") from None
    return list(dict.fromkeys(found))
