"""Untrusted files: a catalogue of malicious and malformed checkpoints, each generated here.

Every payload would create a sentinel file if it ran (and the test shows that Python's own
`pickle.loads` does run it); `tapegrad.load` must refuse each with `LoadError`, naming the file
and the problem, with the sentinel never created. Malformed archives and pickles, impossible
shapes and strides, and sizes that would need huge allocations are refused before allocating.
"""
from __future__ import annotations

import functools
import io
import json
import os
import pickle
import struct
import subprocess
import zipfile

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.serialization import LoadError, _native, _unpickler

# -- payloads: each `make(marker)` gives an object whose unpickling creates `marker` ------------


class _Reduce:
    def __init__(self, reduce):
        self.reduce = reduce

    def __reduce__(self):
        return self.reduce


def _touch(marker) -> list:
    return ["touch", str(marker)]


class _SetState:
    """Pickled (protocol 0/1) through copyreg._reconstructor; BUILD runs __setstate__."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __setstate__(self, state):
        open(state["marker"], "w").close()


PAYLOADS = {
    "os.system": lambda m: _Reduce((os.system, (f"touch {m}",))),
    "builtins.eval": lambda m: _Reduce((eval, (f"open({str(m)!r}, 'w').close()",))),
    "builtins.exec": lambda m: _Reduce((exec, (f"open({str(m)!r}, 'w').close()",))),
    "subprocess.Popen": lambda m: _Reduce((subprocess.Popen, (_touch(m),))),
    "functools.partial": lambda m: _Reduce((functools.partial(open, str(m), "w"), ())),
    "builtins.open": lambda m: _Reduce((open, (str(m), "w"))),
    "nested __reduce__": lambda m: {"a": [{"b": (1, _Reduce((os.system, (f"touch {m}",))))}]},
    "copyreg": lambda m: _SetState(m),
}


def _raw_attrgetter(marker) -> bytes:
    """os.system reached without naming it: attrgetter("system")(__import__("os"))(cmd)."""
    cmd = f"touch {marker}".encode()
    return (b"\x80\x02coperator\nattrgetter\nX\x06\x00\x00\x00system\x85R"
            b"cbuiltins\n__import__\nX\x02\x00\x00\x00os\x85R\x85R"
            b"X" + struct.pack("<I", len(cmd)) + cmd + b"\x85R.")


def _raw_inst(marker) -> bytes:
    cmd = f"touch {marker}".encode()
    return b"(X" + struct.pack("<I", len(cmd)) + cmd + b"ios\nsystem\n."


def _pickles(marker) -> dict:
    """name -> pickle bytes, every one of which runs code under `pickle.loads`."""
    out = {}
    for name, make in PAYLOADS.items():
        protocol = 1 if name == "copyreg" else 2
        out[name] = pickle.dumps(make(marker), protocol=protocol)
    out["posix.system (STACK_GLOBAL, protocol 4)"] = pickle.dumps(PAYLOADS["os.system"](marker),
                                                                  protocol=4)
    out["operator.attrgetter"] = _raw_attrgetter(marker)
    out["INST"] = _raw_inst(marker)
    return out


def _checkpoint(pkl: bytes, storages=(), prefix="archive/", extra=()) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(prefix + "data.pkl", pkl)
        zf.writestr(prefix + "byteorder", "little")
        for key, data in storages:
            zf.writestr(f"{prefix}data/{key}", data)
        zf.writestr(prefix + "version", "3\n")
        for name, data in extra:
            zf.writestr(name, data)
    buf.seek(0)
    buf.name = "evil.pt"
    return buf


def _refused(f, match: str) -> LoadError:
    with pytest.raises(LoadError, match=match) as info:
        tg.load(f)
    name = getattr(f, "name", f)
    assert str(name) in str(info.value)  # the message names the file
    return info.value


@pytest.mark.parametrize("name", sorted(_pickles("m")))
def test_malicious_pickles_are_refused_and_never_run(name, tmp_path):
    marker = tmp_path / "pwned"
    pkl = _pickles(marker)[name]
    for f in (_checkpoint(pkl), _checkpoint(pkl, prefix="model/")):
        _refused(f, "tapegrad.load: evil.pt: ")
        assert not marker.exists()
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pkl)
    _refused(plain, "a plain pickle, not a checkpoint")
    assert not marker.exists()
    # the payload is real: Python's unpickler runs it
    result = pickle.loads(pkl)
    if isinstance(result, subprocess.Popen):
        result.wait()
    assert marker.exists()


def test_refusals_name_the_global_and_how_to_allow_it(tmp_path):
    pkl = _pickles(tmp_path / "m")
    err = _refused(_checkpoint(pkl["os.system"]), "Unsupported global: GLOBAL posix.system")
    assert "add_safe_globals([posix.system])" in str(err) and "weights_only" in str(err)
    _refused(_checkpoint(pkl["INST"]), "uses INST, which a weights-only load never runs")
    _refused(_checkpoint(pkl["copyreg"]), "GLOBAL copyreg._reconstructor")
    assert isinstance(err, pickle.UnpicklingError) and isinstance(err, RuntimeError)


def test_torch_saved_files_with_payloads_are_refused(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.ones(2), "x": PAYLOADS["nested __reduce__"](marker)}, path)
    _refused(path, "Unsupported global: GLOBAL posix.system")
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):  # PyTorch refuses it too
        torch.load(path, weights_only=True)
    assert not marker.exists()


def test_weights_only_false_is_the_explicit_opt_in(tmp_path):
    marker = tmp_path / "pwned"
    f = _checkpoint(_pickles(marker)["builtins.open"])
    _refused(f, "GLOBAL io.open")
    f.seek(0)
    tg.load(f, weights_only=False)  # the user trusts the file: it runs
    assert marker.exists()


def test_safe_globals_allow_a_class_and_only_inside(tmp_path):
    f = _checkpoint(pickle.dumps({"r": functools.partial(int, "7")}, protocol=2))
    _refused(f, "GLOBAL functools.partial")
    f.seek(0)
    with tg.serialization.safe_globals([functools.partial, (int, "builtins.int")]):
        assert tg.serialization.get_safe_globals() == [functools.partial, (int, "builtins.int")]
        out = tg.load(f)
    assert out["r"]() == 7
    assert tg.serialization.get_safe_globals() == []
    tg.serialization.add_safe_globals([functools.partial])
    try:
        f.seek(0)
        with pytest.raises(LoadError, match="GLOBAL builtins.int"):
            tg.load(f)
    finally:
        tg.serialization.clear_safe_globals()


# -- hand-written tensor pickles ------------------------------------------------------------


def _rebuild(offset, size, stride, numel, key="0", storage=b"FloatStorage", requires_grad=False):
    """A pickle of `_rebuild_tensor_v2` over storage `key` with the given (unchecked) values."""
    p = tg.serialization._pickler.Pickler()
    p.write(b"\x80\x02")
    p.global_("torch._utils", "_rebuild_tensor_v2")
    p.write(b"((")
    p.save("storage")
    p.global_("torch", storage.decode())
    p.save(key)
    p.save("cpu")
    p.save(numel)
    p.write(b"tQ")
    p.save(offset)
    p.save_tuple(tuple(size))
    p.save_tuple(tuple(stride))
    p.save(requires_grad)
    p.call("collections", "OrderedDict")
    p.write(b"tR.")
    return p.out.getvalue()


def test_the_hand_written_tensor_pickle_is_a_real_tensor():
    f = _checkpoint(_rebuild(1, (2, 2), (1, 2), 6), [("0", np.arange(6, dtype=np.float32))])
    np.testing.assert_array_equal(tg.load(f).numpy(), [[1, 3], [2, 4]])


FOUR_FLOATS = [("0", np.arange(4, dtype=np.float32).tobytes())]
BAD_TENSORS = {
    "negative size": ((0, (-1, 2), (2, 1), 4), "size \\(-1, 2\\) is not a tuple of non-negative"),
    "negative stride": ((3, (2,), (-1,), 4), "stride \\(-1,\\) is not a tuple of non-negative"),
    "negative offset": ((-2, (1,), (1,), 4), "storage offset -2 is not a non-negative int"),
    "overflowing offset": ((2 ** 70, (1,), (1,), 4), "reaches element"),
    "past the storage": ((1, (2, 2), (2, 1), 4), "reaches element 4 of storage 0, which has 4"),
    "overflowing stride": ((0, (2,), (2 ** 63,), 4), "reaches element"),
    "rank mismatch": ((0, (2, 2), (1,), 4), "differ in length"),
    "float size": ((0, (2.0,), (1,), 4), "not a tuple of non-negative integers"),
    "huge declared storage": ((0, (4,), (1,), 2 ** 40), "declares 4398046511104 bytes, the "
                                                        "archive holds 16"),
    "expanded beyond the budget": ((0, (2 ** 31, 2 ** 31), (0, 0), 4),
                                   "overlap in their storages.*memory bounded"),
}


@pytest.mark.parametrize("name", sorted(BAD_TENSORS))
def test_impossible_tensors_are_refused_before_allocating(name):
    args, match = BAD_TENSORS[name]
    _refused(_checkpoint(_rebuild(*args), FOUR_FLOATS), match)


def test_other_malformed_tensor_references():
    _refused(_checkpoint(_rebuild(0, (4,), (1,), 4, key="1"), FOUR_FLOATS),
             "refers to storage 1, which the archive lacks")
    _refused(_checkpoint(_rebuild(0, (4,), (1,), 4, key="../0"), FOUR_FLOATS),
             "malformed storage reference")
    _refused(_checkpoint(_rebuild(0, (4,), (1,), 4, storage=b"QInt8Storage"), FOUR_FLOATS),
             "no quantized")
    _refused(_checkpoint(_rebuild(0, (1,), (1,), 4, storage=b"LongStorage"), FOUR_FLOATS),
             "declares 32 bytes, the archive holds 16")
    pkl = _rebuild(0, (4,), (1,), 4, storage=b"IntStorage", requires_grad=True)
    _refused(_checkpoint(pkl, FOUR_FLOATS), "a int32 tensor requires grad")


def test_malformed_pickles():
    good = _rebuild(0, (4,), (1,), 4)
    cases = {
        "truncated": (good[:len(good) // 2], "truncated"),
        "unknown opcode": (b"\x80\x02\xff.", "unknown opcode"),
        "empty stack": (b"\x80\x02R.", "malformed pickle"),
        "memo never stored": (b"\x80\x02h\x07.", "memo entry 7 was never stored"),
        "two objects left": (b"\x80\x02K\x01K\x02.", "does not end with one object"),
        "calls a non-callable": (b"\x80\x02X\x01\x00\x00\x00a)R.", "calls an object of type str"),
        "EXT1": (b"\x80\x02\x82\x01.", "EXT1"),
        "BUILD on a dict": (b"\x80\x02}}b.", "sets the state of a dict"),
        "APPENDS to a tuple": (b"\x80\x02)(K\x01e.", "appends to a tuple"),
        "OrderedDict dunder attribute": (
            b"\x80\x02ccollections\nOrderedDict\n)R}X\t\x00\x00\x00__class__K\x01sb.",
            "sets attribute '__class__'"),
        "newer protocol": (b"\x80\x09N.", "protocol newer than 5"),
        # PyTorch's weights-only load calls torch.Tensor(n): n uninitialised floats
        "torch.Tensor(n)": (b"\x80\x02ctorch\nTensor\nJ\x00\x00\x00\x40\x85R.",
                            "calls class tapegrad.*Tensor, which is not an allowed callable"),
    }
    for name, (pkl, match) in cases.items():
        _refused(_checkpoint(pkl, FOUR_FLOATS), match)


def test_object_count_is_capped(monkeypatch):
    monkeypatch.setattr(_unpickler, "MAX_OBJECTS", 1000)
    _refused(_checkpoint(pickle.dumps([[]] * 10 + [[] for _ in range(2000)], protocol=2)),
             "builds more than 1000 objects")


# -- archives -------------------------------------------------------------------------------


def _good_file() -> bytes:
    buf = io.BytesIO()
    tg.save({"w": tg.arange(64.0), "b": tg.ones(3, dtype=tg.int64)}, buf)
    return buf.getvalue()


def test_truncated_archives(tmp_path):
    data = _good_file()
    for cut in (10, len(data) // 3, len(data) // 2, len(data) - 30, len(data) - 1):
        path = tmp_path / f"cut{cut}.pt"
        path.write_bytes(data[:cut])
        _refused(path, f"cut{cut}.pt")


def test_bit_flips_are_refused_or_harmless(tmp_path):
    data = _good_file()
    rng = np.random.default_rng(0)
    refused = 0
    for pos in rng.choice(len(data), 80, replace=False):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(8))
        f = io.BytesIO(bytes(flipped))
        try:
            out = tg.load(f)
        except LoadError:
            refused += 1
            continue
        # a flip in a byte nothing reads (padding, timestamps): the contents are intact
        np.testing.assert_array_equal(out["w"].numpy(), np.arange(64.0))
        np.testing.assert_array_equal(out["b"].numpy(), [1, 1, 1])
    assert refused > 40


def _zip(entries) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name), data)
    buf.seek(0)
    buf.name = "crafted.pt"
    return buf


def test_archive_level_refusals():
    pkl = pickle.dumps({"a": 1}, protocol=2)
    _refused(_zip([("../archive/data.pkl", pkl)]), "leaves the archive")
    _refused(_zip([("/abs/data.pkl", pkl)]), "is absolute or leaves the archive")
    _refused(_zip([("archive/data.pkl", pkl), ("archive/x/../../y", b"")]), "leaves the archive")
    with pytest.warns(UserWarning, match="Duplicate name"):
        dup = _zip([("archive/data.pkl", pkl), ("archive/data.pkl", pkl)])
    _refused(dup, "appears twice")
    _refused(_zip([("archive/other", b"")]), "no <folder>/data.pkl")
    _refused(_zip([("archive/data.pkl", pkl), ("archive/version", b"99\n")]),
             "format version b'99'")
    _refused(_zip([("a/data.pkl", pkl), ("b/data.pkl", pkl)]), "several <folder>/data.pkl")
    assert tg.load(_zip([("archive/data.pkl", pkl)])) == {"a": 1}


def test_zip_bomb_declaring_a_huge_size_is_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", pickle.dumps([0] * 10, protocol=2))
    data = bytearray(buf.getvalue())
    central = data.rfind(b"PK\x01\x02")
    data[central + 24:central + 28] = struct.pack("<I", 0xFFFFFFF0)  # uncompressed size
    f = io.BytesIO(bytes(data))
    f.name = "bomb.pt"
    _refused(f, "more than deflate can produce \\(a zip bomb\\)")


def test_pickle_size_is_capped(monkeypatch):
    monkeypatch.setattr(tg.serialization._zipformat, "MAX_PICKLE_BYTES", 1 << 20)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02N" + b"N0" * (1 << 20) + b".")
    buf.seek(0)
    buf.name = "big.pt"
    _refused(buf, "declares 2097156 bytes, more than the 1048576 allowed")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit's own deprecation notice
def test_legacy_and_torchscript_formats_are_refused_clearly(tmp_path):
    torch = pytest.importorskip("torch")
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    _refused(legacy, "PyTorch's legacy format \\(torch.save before 1.6")
    script = tmp_path / "script.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), script)
    _refused(script, "a TorchScript archive \\(torch.jit.save\\)")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    _refused(text, "not a checkpoint \\(not a zip archive\\)")


# -- tapegrad's first format: its memory and format problems --------------------------------


def _native_file(root, arrays=(), raw_manifest=None, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        manifest = raw_manifest if raw_manifest is not None else json.dumps(
            {"format": "tapegrad", "version": 1, "root": root})
        zf.writestr("tapegrad.json", manifest)
        for name, data in arrays:
            zf.writestr(name, data)
    buf.seek(0)
    buf.name = "native.pt"
    return buf


def _npy(arr) -> bytes:
    out = io.BytesIO()
    np.save(out, arr, allow_pickle=arr.dtype.hasobject)
    return out.getvalue()


def _entry(file="data/0.npy", dtype="float32", shape=(4,), tag="tensor", ident=0):
    return {"$": tag, "file": file, "dtype": dtype, "shape": list(shape), "id": ident}


def test_native_repeated_references_share_one_array():
    root = [_entry(ident=i) for i in range(200)]
    out = tg.load(_native_file(root, [("data/0.npy", _npy(np.arange(4, dtype=np.float32)))]))
    assert len({t.data_ptr() for t in out}) == 1  # one array, not 200 copies
    np.testing.assert_array_equal(out[199].numpy(), np.arange(4))


def test_native_huge_declared_array_is_refused_before_allocating():
    header = _npy(np.zeros(4, np.float32)).replace(b"(4,)", b"(1099511627776,)", 1)
    err = _refused(_native_file(_entry(shape=(2 ** 40,)), [("data/0.npy", header)]),
                   "declares 4398046511104 bytes of data, the archive holds 28")
    assert "MemoryError" not in str(err)


def test_native_deflated_array_loads_within_its_size():
    arr = np.zeros(1 << 20, np.float32)  # 4 MiB of zeros, deflated to a few KiB
    f = _native_file(_entry(shape=arr.shape), [("data/0.npy", _npy(arr))],
                     compression=zipfile.ZIP_DEFLATED)
    assert len(f.getvalue()) < 64 << 10
    np.testing.assert_array_equal(tg.load(f).numpy(), arr)


def test_native_manifest_size_is_capped(monkeypatch):
    monkeypatch.setattr(_native, "MAX_MANIFEST_BYTES", 1 << 10)
    _refused(_native_file([0] * 1000), "tapegrad.json.*more than the 1024 allowed")


def test_native_object_arrays_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    arr = np.empty(1, dtype=object)
    arr[0] = PAYLOADS["os.system"](marker)
    _refused(_native_file(_entry(dtype="object", shape=(1,)), [("data/0.npy", _npy(arr))]),
             "refused to read array data/0.npy: dtype object needs unpickling")
    assert not marker.exists()


GOOD = [("data/0.npy", _npy(np.arange(4, dtype=np.float32)))]
NATIVE_MALFORMED = {
    "not json": ("{not json", None, "corrupt manifest"),
    "no root": (json.dumps({"format": "tapegrad", "version": 1}), None, "unknown manifest"),
    "version text": (json.dumps({"format": "tapegrad", "version": "9", "root": None}), None,
                     "format version '9'"),
    "newer version": (json.dumps({"format": "tapegrad", "version": 99, "root": None}), None,
                      "format version 99"),
    "unknown tag": (None, {"$": "eval", "code": "1"}, "unsupported manifest entry 'eval'"),
    "missing array": (None, _entry(file="data/9.npy"), "missing array 'data/9.npy'"),
    "path outside": (None, _entry(file="../etc/passwd"), "missing array '../etc/passwd'"),
    "shape mismatch": (None, _entry(shape=(5,)), "has shape \\[4\\], the manifest says \\[5\\]"),
    "negative shape": (None, _entry(shape=(-4,)), "malformed shape"),
    "dtype mismatch": (None, _entry(dtype="int64"), "has dtype float32, the manifest says int64"),
    "shape not a list": (None, {**_entry(), "shape": 4}, "'shape' of 'tensor' is 4"),
    "file not a string": (None, {**_entry(), "file": 3}, "'file' of 'tensor' is 3"),
    "bad ref": (None, {"$": "ref", "id": 5}, "reference to an unknown tensor"),
    "bad float": (None, {"$": "float", "value": "1e999"}, "bad float"),
    "bad bytes": (None, {"$": "bytes", "hex": "zz"}, "malformed bytes"),
    "bad dtype": (None, {"$": "dtype", "name": "os"}, "unknown dtype 'os'"),
    "bad device": (None, {"$": "device", "value": "quantum"}, "unknown device"),
    "bad size": (None, {"$": "size", "items": ["a"]}, "malformed size"),
    "unhashable key": (None, {"$": "dict", "items": [[[1], 2]]}, "malformed dict entry"),
    "items not pairs": (None, {"$": "dict", "items": [1]}, "malformed dict entry"),
    "no tag": (None, {"x": 1}, "malformed manifest entry"),
    "deep nesting": (json.dumps({"format": "tapegrad", "version": 1,
                                 "root": {"$": "tuple", "items": []}}).replace(
                     '"items": []', '"items": [' + "[" * 100000 + "]" * 100000 + "]"), None,
                     "corrupt manifest|nests too deeply"),
    "int tensor requires grad": (None, {**_entry(file="data/1.npy", dtype="int64"),
                                        "requires_grad": True}, "int64 tensor requires grad"),
    "npz posing as npy": (None, _entry(file="data/2.npy"), "malformed .npy header"),
}


@pytest.mark.parametrize("name", sorted(NATIVE_MALFORMED))
def test_native_malformed_files(name):
    raw, root, match = NATIVE_MALFORMED[name]
    arrays = GOOD + [("data/1.npy", _npy(np.arange(4))), ("data/2.npy", _npz())]
    _refused(_native_file(root, arrays, raw_manifest=raw), match)


def _npz() -> bytes:
    out = io.BytesIO()
    np.savez(out, a=np.arange(3))
    return out.getvalue()


def test_nothing_is_written_outside_the_target(tmp_path):
    """Loading writes no file at all: every refused case above leaves the directory alone."""
    before = sorted(os.listdir(tmp_path))
    for name in sorted(_pickles(tmp_path / "m")):
        with pytest.raises(LoadError):
            tg.load(_checkpoint(_pickles(tmp_path / "m")[name]))
    with pytest.raises(LoadError):
        tg.load(_zip([("../../escaped", b"x")]))
    assert sorted(os.listdir(tmp_path)) == before
    assert not (tmp_path.parent.parent / "escaped").exists()


def test_copyreg_and_operator_are_not_allowlisted():
    # the default allowlist holds data and tensor rebuilding only
    names = tg.serialization._zipformat.default_global_names()
    for dangerous in ("copyreg._reconstructor", "operator.attrgetter", "functools.partial",
                      "builtins.getattr", "builtins.eval", "posix.system", "os.system"):
        assert dangerous not in names
