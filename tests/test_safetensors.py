"""tapegrad.utils.safetensors: files interchangeable with `safetensors.torch`'s, both ways."""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.utils.safetensors import load, load_file, safe_open, save, save_file

pytest.importorskip("safetensors")

NAMES = ["float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
         "uint16", "uint32", "uint64", "bool", "complex64"]


def _tensors():
    rng = np.random.default_rng(0)
    base = tg.tensor(np.abs(rng.standard_normal((2, 3))) * 40)
    return {name: base.to(getattr(tg, name)) for name in NAMES}


def _bits(t) -> bytes:
    return np.ascontiguousarray(np.asarray(t._value())).tobytes()


def test_round_trip_every_dtype(tmp_path):
    tensors = _tensors()
    path = tmp_path / "t.safetensors"
    save_file(tensors, path, metadata={"format": "pt"})
    for out in (load_file(path), load(save(tensors)), tg.load(str(path))):
        assert set(out) == set(tensors)
        for k, v in tensors.items():
            assert out[k].dtype is v.dtype and out[k].shape == v.shape
            assert _bits(out[k]) == _bits(v), k
    with safe_open(path, framework="pt") as f:
        assert f.metadata() == {"format": "pt"} and sorted(f.keys()) == sorted(tensors)
        assert f.get_slice("float32").get_shape() == [2, 3]
        np.testing.assert_array_equal(f.get_slice("int64")[1:].numpy(),
                                      tensors["int64"][1:].numpy())


def test_files_interchange_with_safetensors_torch(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    ours = _tensors()
    path = tmp_path / "ours.safetensors"
    save_file(ours, path)
    theirs = st.load_file(path)
    for k, v in ours.items():
        assert str(theirs[k].dtype) == f"torch.{k}"
        np.testing.assert_array_equal(theirs[k].view(-1).view(torch.uint8).numpy(),
                                      np.frombuffer(_bits(v), np.uint8))
    path2 = tmp_path / "theirs.safetensors"
    st.save_file({k: v.clone() for k, v in theirs.items()}, path2)
    back = load_file(path2)
    for k, v in ours.items():
        assert back[k].dtype is v.dtype and _bits(back[k]) == _bits(v)


def test_shared_memory_is_refused_as_safetensors_does():
    x = tg.ones(4)
    with pytest.raises(RuntimeError, match="Some tensors share memory"):
        save({"a": x, "b": x.detach()})
    with pytest.raises(RuntimeError, match="Some tensors share memory"):
        save({"a": x, "b": x[1:]})
    with pytest.raises(ValueError, match="expected tapegrad.Tensor"):
        save({"a": np.ones(2)})
