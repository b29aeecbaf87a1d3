"""tapegrad.save / tapegrad.load: round trips, and untrusted files never execute code."""
from __future__ import annotations

import collections
import io
import json
import pickle
import zipfile

import numpy as np
import pytest

import tapegrad
import tapegrad.optim as optim


def _round_trip(obj, tmp_path=None):
    if tmp_path is None:
        buf = io.BytesIO()
        tapegrad.save(obj, buf)
        buf.seek(0)
        return tapegrad.load(buf)
    path = tmp_path / "obj.pt"
    tapegrad.save(obj, path)
    return tapegrad.load(str(path))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int64", "int32",
                                   "uint8", "bool", "complex64"])
def test_tensor_round_trip_keeps_dtype_shape_values(dtype, tmp_path):
    rng = np.random.default_rng(0)
    x = tapegrad.tensor(rng.standard_normal((3, 4)) * 10).to(getattr(tapegrad, dtype))
    y = _round_trip(x, tmp_path)
    assert isinstance(y, tapegrad.Tensor) and y.dtype is x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(np.asarray(y._value()), np.asarray(x._value()))


def test_scalar_and_empty_tensors_and_requires_grad():
    out = _round_trip([tapegrad.tensor(3.5), tapegrad.zeros(0, 2),
                       tapegrad.ones(2, requires_grad=True)])
    assert out[0].shape == () and out[0].item() == 3.5
    assert out[1].shape == (0, 2)
    assert out[2].requires_grad and out[2].is_leaf


def test_nested_containers():
    obj = {"a": [1, 2.5, None, True, "s", b"\x00\xff"], 3: (float("inf"), float("nan"), -0.0),
           "od": collections.OrderedDict([("z", 1), ("a", 2)]), (1, "k"): {"deep": [[{}]]},
           "np": np.arange(6, dtype=np.int16).reshape(2, 3), "npscalar": np.float32(1.5),
           "dtype": tapegrad.float16, "size": tapegrad.Size([2, 3]), "c": 1 + 2j}
    out = _round_trip(obj)
    assert set(out) == set(obj)
    assert out["a"] == obj["a"] and isinstance(out[3], tuple)
    assert out[3][0] == float("inf") and np.isnan(out[3][1])
    assert isinstance(out["od"], collections.OrderedDict) and list(out["od"]) == ["z", "a"]
    assert out[(1, "k")] == {"deep": [[{}]]}
    np.testing.assert_array_equal(out["np"], obj["np"])
    assert out["np"].dtype == np.int16
    assert out["npscalar"] == np.float32(1.5) and out["npscalar"].dtype == np.float32
    assert out["dtype"] is tapegrad.float16 and out["size"] == (2, 3) and out["c"] == 1 + 2j


def test_shared_tensors_stay_shared():
    t = tapegrad.ones(3)
    out = _round_trip({"a": t, "b": [t]})
    assert out["a"] is out["b"][0]


def test_unsupported_objects_are_refused_on_save():
    with pytest.raises(TypeError, match="cannot store an object of type"):
        tapegrad.save({"f": lambda x: x}, io.BytesIO())


def test_optimizer_state_dict_round_trip_resumes_identically(tmp_path):
    def make():
        w = tapegrad.tensor(np.linspace(-1, 1, 5), requires_grad=True)
        return w, optim.Adam([w], lr=0.1, amsgrad=True)

    def train(w, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            ((w - 0.3) ** 4).sum().backward()
            opt.step()
    w, opt = make()
    train(w, opt, 3)
    tapegrad.save({"w": w.detach(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    train(w, opt, 3)

    ckpt = tapegrad.load(tmp_path / "ckpt.pt")
    w2, opt2 = make()
    with tapegrad.no_grad():
        w2.copy_(ckpt["w"])
    opt2.load_state_dict(ckpt["opt"])
    assert isinstance(ckpt["opt"]["state"][0]["step"], tapegrad.Tensor)
    assert ckpt["opt"]["param_groups"][0]["betas"] == (0.9, 0.999)
    train(w2, opt2, 3)
    np.testing.assert_array_equal(w2.detach().numpy(), w.detach().numpy())


def test_map_location():
    out = tapegrad.load(_saved(tapegrad.ones(2)), map_location="cpu")
    assert out.device.type == "cpu"
    calls = []
    tapegrad.load(_saved(tapegrad.ones(2)), map_location=lambda t, loc: calls.append(loc) or t)
    assert calls == ["cpu"]


def _saved(obj) -> io.BytesIO:
    buf = io.BytesIO()
    tapegrad.save(obj, buf)
    buf.seek(0)
    return buf


# -- untrusted files ---------------------------------------------------------------------------

class _Payload:
    """Unpickling this would create `path` (a stand-in for arbitrary code execution)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"weight": _Payload(marker)}, protocol=2))
    with pytest.raises(RuntimeError, match="not a tapegrad file.*pickle.*never unpickles"):
        tapegrad.load(evil)
    assert not marker.exists()
    # and a naive pickle.load really would have run it (the test's payload is real)
    pickle.loads(evil.read_bytes())
    assert marker.exists()


def test_pytorch_style_zip_with_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil_zip.pt"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(_Payload(marker), protocol=2))
        zf.writestr("archive/version", "3\n")
    with pytest.raises(RuntimeError, match="PyTorch checkpoint whose objects are pickled"):
        tapegrad.load(evil)
    assert not marker.exists()


def test_object_array_inside_a_tapegrad_archive_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil_npy.pt"
    arr = np.empty(1, dtype=object)
    arr[0] = _Payload(marker)
    npy = io.BytesIO()
    np.save(npy, arr, allow_pickle=True)
    manifest = {"format": "tapegrad", "version": 1,
                "root": {"$": "tensor", "file": "data/0.npy", "dtype": "object", "shape": [1],
                         "id": 0}}
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("tapegrad.json", json.dumps(manifest))
        zf.writestr("data/0.npy", npy.getvalue())
    with pytest.raises(RuntimeError, match="refused to read array"):
        tapegrad.load(evil)
    assert not marker.exists()


def test_corrupt_manifests_raise_clearly(tmp_path):
    def archive(manifest_text, extra=()):
        path = tmp_path / "bad.pt"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("tapegrad.json", manifest_text)
            for name, data in extra:
                zf.writestr(name, data)
        return path
    with pytest.raises(RuntimeError, match="corrupt manifest"):
        tapegrad.load(archive("{not json"))
    with pytest.raises(RuntimeError, match="unsupported manifest entry 'eval'"):
        tapegrad.load(archive(json.dumps({"format": "tapegrad", "version": 1,
                                          "root": {"$": "eval", "code": "1"}})))
    with pytest.raises(RuntimeError, match="missing array"):
        tapegrad.load(archive(json.dumps({"format": "tapegrad", "version": 1, "root": {
            "$": "tensor", "file": "../etc/passwd", "dtype": "float32", "shape": [], "id": 0}})))
    with pytest.raises(RuntimeError, match="format version 99"):
        tapegrad.load(archive(json.dumps({"format": "tapegrad", "version": 99, "root": None})))


def test_real_pytorch_checkpoint_is_refused_with_a_conversion_hint(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "torch.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match="torch.load\\(path, weights_only=True\\)"):
        tapegrad.load(path)
