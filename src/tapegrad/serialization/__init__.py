"""`tapegrad.save` / `tapegrad.load`: PyTorch's checkpoint format, read without running code.

`save` writes PyTorch's zip format (what `torch.save` writes), so `torch.load(f)` reads it, and
`load` reads what `torch.save` wrote, with a weights-only unpickler by default: no global
outside an explicit allowlist is ever resolved, nothing from the file runs. `weights_only=False`
is the explicit opt-in, for files you trust, that unpickles whole objects (a saved `nn.Module`).
Files in tapegrad's first format (`tapegrad.json` + `.npy`) stay loadable, and a path ending in
`.safetensors` is read by `tapegrad.utils.safetensors`, as `torch.load` does. Any file `load`
refuses raises `LoadError`, naming the file and the problem. See `docs/serialization.md`.
"""
from __future__ import annotations

import io
import os
import pickle
import pickletools
import struct
import warnings
from typing import IO, Any

from ..utils import safetensors as _safetensors
from . import _native, _zipformat
from ._archive import Archive, FileLike, LoadError, open_input, refuse, source_name
from ._unpickler import (
    add_safe_globals, clear_safe_globals, get_safe_globals, globals_in, safe_globals,
    _user_globals,
)

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickled value of a pre-1.6 torch.save file


def save(obj: Any, f: FileLike, pickle_module: Any = None, pickle_protocol: int = 2,
         _use_new_zipfile_serialization: bool = True,
         _disable_byteorder_record: bool = False) -> None:
    """Save `obj` in PyTorch's checkpoint format (`torch.save`'s zip archive).

    Tensors, state_dicts, optimizer state and containers of Python data load anywhere with
    `torch.load(f)` / `tapegrad.load(f)` (weights-only); other objects (a whole module) are
    pickled by reference to their classes and need `weights_only=False` to load.

    >>> tapegrad.save({"model": model.state_dict(), "opt": opt.state_dict()}, "ckpt.pt")
    """
    if pickle_module not in (None, pickle):
        raise ValueError("tapegrad.save writes its own pickles; pickle_module must be None or "
                         "the pickle module")
    if type(pickle_protocol) is not int or not 2 <= pickle_protocol <= pickle.HIGHEST_PROTOCOL:
        raise ValueError(f"pickle_protocol must be 2 to {pickle.HIGHEST_PROTOCOL} (tapegrad "
                         f"writes protocol 2, as torch.save does), got {pickle_protocol!r}")
    if not _use_new_zipfile_serialization:
        raise ValueError("tapegrad.save writes PyTorch's zip format only; the legacy format "
                         "(_use_new_zipfile_serialization=False) is not supported")
    data = _zipformat.pickled(obj)  # fails before the file is touched
    if hasattr(f, "write"):
        if hasattr(f, "seek") and f.seekable():
            _zipformat.write(data, f)
        else:
            buffer = io.BytesIO()
            _zipformat.write(data, buffer)
            f.write(buffer.getvalue())
        return
    with open(os.fspath(f), "wb") as fh:
        _zipformat.write(data, fh)


def load(f: FileLike, map_location=None, pickle_module: Any = None, *,
         weights_only: bool | None = None, mmap: bool | None = None,
         **pickle_load_args: Any) -> Any:
    """Load what `tapegrad.save` or `torch.save` wrote (or a tapegrad-format or safetensors file).

    `weights_only` (default True): only tensors, PyTorch's containers and Python data are
    rebuilt, through an allowlist of globals (`add_safe_globals` extends it); False unpickles
    anything, which can run arbitrary code: only for files from a trusted source.
    `map_location`: None (JAX's default device), a device or string, a dict from saved
    location to device, or a function `(tensor, saved_location) -> tensor`.
    `mmap=True` maps the file's storages instead of reading them (f must be a path).
    Refused files raise `LoadError`.
    """
    weights_only = True if weights_only is None else weights_only
    if weights_only and pickle_module is not None:
        raise RuntimeError("Can not safely load weights when explicit pickle_module is specified")
    if pickle_module not in (None, pickle):
        raise ValueError("tapegrad.load unpickles with its own readers; pickle_module must be "
                         "None or the pickle module")
    if pickle_load_args:
        if weights_only:
            warnings.warn("pickle_load_args only works if `weights_only=False`.", stacklevel=2)
        elif set(pickle_load_args) - {"encoding"}:
            raise TypeError(f"unsupported pickle_load_args {sorted(pickle_load_args)}")
    source = source_name(f)
    if mmap and hasattr(f, "read"):
        raise ValueError("f must be a file path in order to use the mmap argument")
    if not hasattr(f, "read") and source.endswith(".safetensors"):
        return _load_safetensors(source, map_location)
    fh, path, close = open_input(f)
    try:
        head = fh.read(4)
        fh.seek(0)
        if head[:4] != b"PK\x03\x04":
            raise _not_a_zip(source, fh)
        archive = Archive(fh, source, path)
        if _native.MANIFEST in archive.entries:
            return _native.read(archive, map_location)
        return _zipformat.read(archive, _prefix(archive), map_location, weights_only,
                               bool(mmap), pickle_load_args.get("encoding", "utf-8"))
    finally:
        if close:
            fh.close()


def _load_safetensors(path: str, map_location):
    if map_location is not None and not isinstance(map_location, str) \
            and type(map_location).__name__ != "device":
        raise RuntimeError("Loading safetensors file with dict or callable map_location is not "
                           "supported. Use a device string or tapegrad.device instead.")
    return _safetensors.load_file(path, device=str(map_location or "cpu"))


def _prefix(archive: Archive) -> str:
    """The folder a checkpoint's entries sit in (`archive/`, or the file's stem for older
    PyTorch); TorchScript archives and archives without a pickle are refused."""
    names = archive.names()
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        raise archive.error("a TorchScript archive (torch.jit.save): tapegrad cannot run "
                            "TorchScript. In PyTorch, load it with torch.jit.load and "
                            "torch.save its state_dict()")
    found = [n[:-len("data.pkl")] for n in names if n.endswith("data.pkl") and n.count("/") == 1]
    if len(found) != 1:
        what = "no" if not found else "several"
        raise archive.error(f"a zip archive with {what} <folder>/data.pkl: not a checkpoint "
                            "written by torch.save or tapegrad.save")
    return found[0]


def _not_a_zip(source: str, fh: IO[bytes]) -> LoadError:
    head = fh.read(1 << 20)
    if head[:1] == b"\x80" and head[2:3] == b"\x8a":  # PROTO, then a LONG1: the magic number
        n = head[3]
        if int.from_bytes(head[4:4 + n], "little", signed=True) == _LEGACY_MAGIC:
            return refuse(source, "PyTorch's legacy format (torch.save before 1.6, or with "
                                  "_use_new_zipfile_serialization=False), which tapegrad does "
                                  "not read. In PyTorch, torch.load it and torch.save it again")
    fh.seek(257)
    if fh.read(5) == b"ustar":
        return refuse(source, "PyTorch's oldest (tar) format, which tapegrad does not read")
    if _is_pickle(head, complete=not fh.read(1)):
        return refuse(source, "a plain pickle, not a checkpoint: tapegrad never unpickles a bare "
                              "pickle, as it could run arbitrary code")
    return refuse(source, "not a checkpoint (not a zip archive)")


def _is_pickle(head: bytes, complete: bool) -> bool:
    """Whether the file is a pickle: read statically (nothing is built), its opcodes parse to
    a STOP; for a file longer than `head`, one that starts with a protocol 2+ pickle's PROTO."""
    if not complete:
        return head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
    try:
        for _ in pickletools.genops(head):
            pass
    except (ValueError, IndexError, struct.error):
        return False
    return True


def get_unsafe_globals_in_checkpoint(f: FileLike) -> list:
    """The globals a checkpoint names that `weights_only` loading would refuse (read
    statically: nothing is unpickled)."""
    fh, path, close = open_input(f)
    try:
        archive = Archive(fh, source_name(f), path)
        prefix = _prefix(archive)
        names = globals_in(archive.read(prefix + "data.pkl", _zipformat.MAX_PICKLE_BYTES))
    finally:
        if close:
            fh.close()
    allowed = set(_zipformat.default_global_names()) | set(_user_globals())
    return [n for n in names if n not in allowed]


__all__ = ["LoadError", "add_safe_globals", "clear_safe_globals", "get_safe_globals",
           "get_unsafe_globals_in_checkpoint", "load", "safe_globals", "save"]
