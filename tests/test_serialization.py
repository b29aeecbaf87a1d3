"""tapegrad.save / tapegrad.load without PyTorch: round trips, the format written, files in
tapegrad's first format, state_dict loading, and the Tensor storage attributes."""
from __future__ import annotations

import collections
import ctypes
import io
import pathlib
import pickle
import pickletools
import zipfile

import numpy as np
import pytest

import tapegrad
import tapegrad.optim as optim

NATIVE_FIXTURE = pathlib.Path(__file__).parent / "data" / "native_v1.pt"


def _round_trip(obj, tmp_path=None, **load_args):
    if tmp_path is None:
        buf = io.BytesIO()
        tapegrad.save(obj, buf)
        buf.seek(0)
        return tapegrad.load(buf, **load_args)
    path = tmp_path / "obj.pt"
    tapegrad.save(obj, path)
    return tapegrad.load(str(path), **load_args)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int64", "int32",
                                   "int16", "int8", "uint8", "uint16", "uint32", "uint64", "bool",
                                   "complex64", "complex128"])
def test_tensor_round_trip_keeps_dtype_shape_values(dtype, tmp_path):
    rng = np.random.default_rng(0)
    x = tapegrad.tensor(np.abs(rng.standard_normal((3, 4))) * 10).to(getattr(tapegrad, dtype))
    y = _round_trip(x, tmp_path)
    assert isinstance(y, tapegrad.Tensor) and y.dtype is x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(np.asarray(y._value()), np.asarray(x._value()))


def test_scalar_and_empty_tensors_and_requires_grad():
    out = _round_trip([tapegrad.tensor(3.5), tapegrad.zeros(0, 2),
                       tapegrad.ones(2, requires_grad=True), tapegrad.nn.Parameter(tapegrad.ones(1))])
    assert out[0].shape == () and out[0].item() == 3.5
    assert out[1].shape == (0, 2)
    assert out[2].requires_grad and out[2].is_leaf
    assert isinstance(out[3], tapegrad.nn.Parameter) and out[3].requires_grad


def test_nested_containers():
    obj = {"a": [1, 2.5, None, True, "s", b"\x00\xff", 2 ** 80, -3], 3: (float("inf"), -0.0),
           "od": collections.OrderedDict([("z", 1), ("a", 2)]), (1, "k"): {"deep": [[{}]]},
           "dtype": tapegrad.float16, "size": tapegrad.Size([2, 3]), "c": 1 + 2j,
           "set": {1, 2}, "frozen": frozenset({"x"}), "ba": bytearray(b"ab"),
           "device": tapegrad.device("cpu"), "layout": tapegrad.strided, "long": list(range(2500))}
    out = _round_trip(obj)
    assert out == {k: v for k, v in obj.items()}  # every value compares equal
    assert isinstance(out["od"], collections.OrderedDict) and list(out["od"]) == ["z", "a"]
    assert out["dtype"] is tapegrad.float16 and out["layout"] is tapegrad.strided
    assert isinstance(out["size"], tapegrad.Size) and isinstance(out[3], tuple)
    nan = _round_trip(float("nan"))
    assert nan != nan


def test_shared_tensors_and_recursive_containers():
    t = tapegrad.ones(3)
    out = _round_trip({"a": t, "b": [t], "alias": t.detach()})
    assert out["a"] is out["b"][0]
    out["a"].add_(1)  # the alias shares the storage: it sees the write
    np.testing.assert_array_equal(out["alias"].numpy(), [2, 2, 2])
    loop: list = [1]
    loop.append(loop)
    back = _round_trip({"loop": loop, "t": (loop,)})
    assert back["loop"][1] is back["loop"] and back["t"][0] is back["loop"]


def test_views_round_trip_as_views_of_one_storage():
    x = tapegrad.arange(12.0).reshape(3, 4)
    out = _round_trip({"x": x, "v": x[1:].t(), "row": x[2]})
    np.testing.assert_array_equal(out["v"].numpy(), x[1:].t().numpy())
    out["x"][2, 1] = -5.0
    assert out["v"][1, 1].item() == -5.0 and out["row"][1].item() == -5.0


def test_what_save_writes_is_pytorchs_format():
    buf = io.BytesIO()
    tapegrad.save({"w": tapegrad.ones(2)}, buf)
    with zipfile.ZipFile(buf) as zf:
        names = zf.namelist()
        assert names[0] == "archive/data.pkl" and "archive/data/0" in names
        assert zf.read("archive/version") == b"3\n" and zf.read("archive/byteorder") == b"little"
        info = zf.getinfo("archive/data/0")
        assert info.compress_type == zipfile.ZIP_STORED
        ops = [op.name for op, _, _ in pickletools.genops(zf.read("archive/data.pkl"))]
        globals_ = [arg for op, arg, _ in pickletools.genops(zf.read("archive/data.pkl"))
                    if op.name == "GLOBAL"]
    assert ops[0] == "PROTO" and "BINPERSID" in ops
    assert globals_ == ["torch._utils _rebuild_tensor_v2", "torch FloatStorage",
                        "collections OrderedDict"]
    raw = buf.getvalue()
    extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    data_start = info.header_offset + 30 + len(info.filename) + extra_len
    assert data_start % 64 == 0  # storages aligned, so they can be mmapped
    assert raw[data_start:data_start + 8] == np.ones(2, np.float32).tobytes()


def test_save_refuses_what_it_cannot_write():
    with pytest.raises(pickle.PicklingError, match="lambda"):
        tapegrad.save({"f": lambda x: x}, io.BytesIO())
    with pytest.raises(ValueError, match="legacy format"):
        tapegrad.save({}, io.BytesIO(), _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="pickle_module"):
        tapegrad.save({}, io.BytesIO(), pickle_module=object())


class _Net(tapegrad.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = tapegrad.nn.Linear(3, 2)
        self.register_buffer("count", tapegrad.zeros(1))

    def forward(self, x):
        return self.fc(x)


def test_whole_module_round_trip_with_weights_only_false(tmp_path):
    net = _Net()
    path = tmp_path / "net.pt"
    tapegrad.save(net, path)
    with pytest.raises(tapegrad.serialization.LoadError,
                       match=f"Unsupported global: GLOBAL {__name__}._Net"):
        tapegrad.load(path)
    back = tapegrad.load(path, weights_only=False)
    assert type(back) is _Net and list(back.state_dict()) == ["count", "fc.weight", "fc.bias"]
    x = tapegrad.ones(4, 3)
    np.testing.assert_array_equal(back(x).detach().numpy(), net(x).detach().numpy())
    with tapegrad.serialization.safe_globals([_Net, tapegrad.nn.Linear]):
        assert type(tapegrad.load(path)) is _Net  # allowlisted classes load weights-only


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


def test_load_state_dict_strict_and_assign_with_loaded_dicts():
    src = tapegrad.nn.Linear(3, 2)
    sd = _round_trip(src.state_dict())
    model = tapegrad.nn.Linear(3, 2)
    del sd["bias"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "bias"'):
        model.load_state_dict(sd)
    sd["extra"] = tapegrad.ones(1)
    result = model.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(model.weight.detach().numpy(), src.weight.detach().numpy())
    full = _round_trip(src.state_dict())
    model.load_state_dict(full, assign=True)
    full["weight"].add_(1.0)  # assign: the parameter is the loaded tensor's storage
    np.testing.assert_array_equal(model.weight.detach().numpy(),
                                  src.weight.detach().numpy() + 1)


def test_map_location():
    out = _round_trip(tapegrad.ones(2), map_location="cpu")
    assert out.device.type == "cpu"
    calls = []
    _round_trip(tapegrad.ones(2), map_location=lambda t, loc: calls.append(loc) or t)
    assert calls == ["cpu"]


def test_mmap_reads_the_same(tmp_path):
    x = tapegrad.arange(10.0)
    path = tmp_path / "m.pt"
    tapegrad.save({"x": x, "v": x[2:5]}, path)
    out = tapegrad.load(path, mmap=True)
    np.testing.assert_array_equal(out["x"].numpy(), np.arange(10.0))
    np.testing.assert_array_equal(out["v"].numpy(), [2, 3, 4])


def test_files_in_tapegrad_first_format_still_load():
    """tests/data/native_v1.pt was written by the tapegrad.save before this format change."""
    out = tapegrad.load(NATIVE_FIXTURE)
    assert set(out) == {"model", "opt", "shared", "bf", "i8", "np", "npscalar", "misc", "p", "rg"}
    assert list(out["model"]) == ["weight", "bias"] and out["model"]["weight"].shape == (2, 3)
    state = out["opt"]["state"][0]
    assert float(state["step"]) == 2.0 and state["exp_avg"].shape == (2, 3)
    assert out["shared"][0] is out["shared"][1]
    np.testing.assert_array_equal(out["shared"][0].numpy(), np.arange(6.0).reshape(2, 3))
    assert out["bf"].dtype is tapegrad.bfloat16 and out["bf"].tolist() == [1.5, 1.5]
    assert out["i8"].tolist() == [-1, 2] and out["np"].dtype == np.int16
    assert out["npscalar"] == np.float32(2.5)
    assert out["misc"][1:] == (1 + 2j, b"\x00\xff", None, "text", tapegrad.float16,
                               tapegrad.device("cpu"), tapegrad.Size([2, 3]))
    assert isinstance(out["p"], tapegrad.nn.Parameter) and out["rg"].requires_grad
    model = tapegrad.nn.Linear(3, 2)
    model.load_state_dict(out["model"])


def test_tensor_storage_attributes():
    x = tapegrad.arange(12.0).reshape(3, 4)
    assert x.layout is tapegrad.strided and not x.is_sparse and not x.is_quantized
    assert x.nbytes == 48 and x.itemsize == 4
    assert x.untyped_storage().nbytes() == 48 == len(x.untyped_storage())
    v = x[1:, 1]
    assert v.untyped_storage().data_ptr() == x.data_ptr()
    assert v.data_ptr() == x.data_ptr() + 5 * 4  # element (1, 1): offset 5
    assert x.detach().data_ptr() == x.data_ptr() and tapegrad.zeros(0).data_ptr() == 0
    # the bytes at data_ptr are the tensor's, row-major
    raw = (ctypes.c_float * 12).from_address(x.data_ptr())
    np.testing.assert_array_equal(np.frombuffer(raw, np.float32), np.arange(12.0))
