"""Reading zip archives from untrusted sources, with every size checked before it is used.

Both formats `tapegrad.load` reads are zip archives. `Archive` opens one and refuses, with a
`LoadError` naming the file and the problem, anything a well-formed checkpoint never has:
entry names that are absolute or climb out (`..`), duplicate names, encryption, compression
other than none or deflate, a stored entry whose bytes are not in the file, or a deflated one
that declares more than deflate can produce from its compressed size (a zip bomb). Entries are
then read only into buffers of the size their caller expects, checked before allocating.
Nothing is ever extracted to disk.
"""
from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
import zlib
from typing import IO

import numpy as np

FileLike = str | os.PathLike | IO[bytes]

_MAX_DEFLATE_RATIO = 1032  # deflate's largest possible expansion (258 bytes from 2 bits)
_CHUNK = 1 << 24
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # the 30 bytes before a local entry's name
# what a corrupt archive makes zipfile, zlib and struct raise
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, struct.error, ValueError,
               OverflowError, NotImplementedError, OSError, KeyError)


class LoadError(pickle.UnpicklingError, RuntimeError):
    """`tapegrad.load` refused a file: it is malformed or truncated, or it asks to run code.

    The message names the file and the problem. It is both a `pickle.UnpicklingError` (what
    `torch.load(weights_only=True)` raises for a forbidden global) and a `RuntimeError` (what
    `torch.load` raises for a corrupt archive), so handlers written for either catch it.
    """

    __module__ = "tapegrad.serialization"


def refuse(source: str, problem: str) -> LoadError:
    return LoadError(f"tapegrad.load: {source}: {problem}")


def source_name(f: FileLike) -> str:
    """How messages name a file: its path, or the file object's name or type."""
    if hasattr(f, "read"):
        return str(getattr(f, "name", f"<{type(f).__name__}>"))
    return os.fspath(f)


def _unsafe_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return (name.startswith(("/", "\\")) or "\\" in name or "\x00" in name
            or (len(name) > 1 and name[1] == ":") or ".." in parts)


class Archive:
    """A zip archive opened for reading: every entry's name and declared sizes checked."""

    def __init__(self, fh: IO[bytes], source: str, path: str | None = None) -> None:
        self.source = source
        self.path = path  # set when `fh` is a file on disk (mmap needs one)
        self.fh = fh
        try:
            fh.seek(0, io.SEEK_END)
            self.length = fh.tell()
            fh.seek(0)
            self.zf = zipfile.ZipFile(fh)
            infos = self.zf.infolist()
        except _ZIP_ERRORS as e:
            raise refuse(source, f"not a readable zip archive ({type(e).__name__}: {e})") from None
        self.entries: dict = {}
        for info in infos:
            self._check(info)
            self.entries[info.filename] = info

    def _check(self, info: zipfile.ZipInfo) -> None:
        name = info.filename
        if _unsafe_name(name):
            raise self.error(f"entry name {name!r} is absolute or leaves the archive")
        if name in self.entries:
            raise self.error(f"entry {name!r} appears twice")
        if info.flag_bits & 0x1:
            raise self.error(f"entry {name!r} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size:
                raise self.error(f"stored entry {name!r} declares {info.file_size} bytes but "
                                 f"holds {info.compress_size}")
            if info.header_offset + _LOCAL_HEADER.size + info.compress_size > self.length:
                raise self.error(f"entry {name!r} declares {info.file_size} bytes, more than "
                                 f"the file's {self.length} (truncated?)")
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            if info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 64:
                raise self.error(f"entry {name!r} declares {info.file_size} bytes from "
                                 f"{info.compress_size} compressed bytes, more than deflate can "
                                 "produce (a zip bomb)")
        else:
            raise self.error(f"entry {name!r} uses compression method {info.compress_type}; "
                             "checkpoints are stored or deflated")

    def error(self, problem: str) -> LoadError:
        return refuse(self.source, problem)

    def names(self) -> list:
        return list(self.entries)

    def size(self, name: str) -> int:
        return self.entries[name].file_size

    def read(self, name: str, limit: int) -> bytes:
        """The whole entry, refused when it declares more than `limit` bytes."""
        info = self.entries.get(name)
        if info is None:
            raise self.error(f"the archive has no entry {name!r}")
        if info.file_size > limit:
            raise self.error(f"entry {name!r} declares {info.file_size} bytes, more than the "
                             f"{limit} allowed for it")
        return self._bytes(name, info.file_size).tobytes()

    def read_prefix(self, name: str, n: int) -> bytes:
        """The first `n` bytes of an entry (a header, read before the rest is sized)."""
        try:
            with self.zf.open(self.entries[name]) as stream:
                return stream.read(n)
        except _ZIP_ERRORS as e:
            raise self.error(f"entry {name!r} is corrupt ({type(e).__name__}: {e})") from None

    def _bytes(self, name: str, nbytes: int) -> np.ndarray:
        info = self.entries[name]
        if info.file_size != nbytes:
            raise self.error(f"entry {name!r} holds {info.file_size} bytes where {nbytes} are "
                             "expected")
        out = np.empty(nbytes, np.uint8)
        view = memoryview(out)
        done = 0
        try:
            with self.zf.open(info) as stream:
                while done < nbytes:
                    chunk = stream.read(min(_CHUNK, nbytes - done))
                    if not chunk:
                        break
                    view[done:done + len(chunk)] = chunk
                    done += len(chunk)
                if done == nbytes:
                    stream.read(1)  # reaches the end, where zipfile checks the CRC
        except _ZIP_ERRORS as e:
            raise self.error(f"entry {name!r} is corrupt ({type(e).__name__}: {e})") from None
        if done != nbytes:
            raise self.error(f"entry {name!r} ends after {done} of its {nbytes} bytes")
        return out

    def array(self, name: str, nbytes: int, mmap: bool = False) -> np.ndarray:
        """The entry's bytes as a uint8 array of exactly `nbytes` (checked before allocating);
        with `mmap`, a read-only map of the file where the entry is stored uncompressed."""
        info = self.entries.get(name)
        if info is None:
            raise self.error(f"the archive has no entry {name!r}")
        if not mmap or nbytes == 0:
            return self._bytes(name, nbytes)
        if info.file_size != nbytes:
            raise self.error(f"entry {name!r} holds {info.file_size} bytes where {nbytes} are "
                             "expected")
        if info.compress_type != zipfile.ZIP_STORED:
            raise self.error(f"entry {name!r} is compressed, so it cannot be memory-mapped; "
                             "load with mmap=False")
        start = self._data_offset(info)
        return np.memmap(self.path, np.uint8, mode="r", offset=start, shape=(nbytes,))

    def _data_offset(self, info: zipfile.ZipInfo) -> int:
        """Where a stored entry's bytes start: after its local header, name and extra field."""
        self.fh.seek(info.header_offset)
        raw = self.fh.read(_LOCAL_HEADER.size)
        if len(raw) != _LOCAL_HEADER.size:
            raise self.error(f"entry {info.filename!r}'s header is truncated")
        fields = _LOCAL_HEADER.unpack(raw)
        if fields[0] != b"PK\x03\x04":
            raise self.error(f"entry {info.filename!r}'s header is corrupt")
        start = info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10]
        if start + info.file_size > self.length:
            raise self.error(f"entry {info.filename!r} runs past the end of the file")
        return start


def open_input(f: FileLike):
    """(binary file object, path or None, whether the caller must close it)."""
    if hasattr(f, "read"):
        if not (hasattr(f, "seek") and f.seekable()):
            return io.BytesIO(f.read()), None, True
        return f, None, False
    path = os.fspath(f)
    return open(path, "rb"), path, True
