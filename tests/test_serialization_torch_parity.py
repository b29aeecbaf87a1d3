"""Checkpoints both ways with PyTorch: files `torch.save` wrote, loaded by `tapegrad.load`, and
files `tapegrad.save` wrote, loaded by `torch.load(weights_only=True)` -- values, dtypes, shared
storages and views, optimizer state that resumes training identically, the digits example."""
from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")

# (tapegrad dtype, torch dtype): every dtype both libraries have
DTYPES = [(getattr(tg, n), getattr(torch, n)) for n in (
    "float16", "bfloat16", "float32", "float64", "complex64", "complex128", "int8", "int16",
    "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool")]


def _torch_file(obj) -> io.BytesIO:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf


def _tg_file(obj) -> io.BytesIO:
    buf = io.BytesIO()
    tg.save(obj, buf)
    buf.seek(0)
    return buf


def _bits(a) -> np.ndarray:
    """A tensor's bytes (bfloat16 and every other dtype compared exactly)."""
    if isinstance(a, tg.Tensor):
        return np.ascontiguousarray(np.asarray(a.detach()._value())).reshape(-1).view(np.uint8)
    return a.detach().contiguous().view(-1).view(torch.uint8).numpy() if a.numel() else \
        np.zeros(0, np.uint8)


def _values(n: int, torch_dtype):
    rng = np.random.default_rng(n)
    x = torch.from_numpy(rng.standard_normal((3, n)) * 50)
    if torch_dtype.is_complex:
        return (x + 1j * x.flip(0)).to(torch_dtype)
    if torch_dtype == torch.bool:
        return x > 0
    if not torch_dtype.is_floating_point and not torch.iinfo(torch_dtype).min:
        x = x.abs()  # unsigned
    return x.to(torch_dtype)


@pytest.mark.parametrize("tg_dtype, torch_dtype", DTYPES, ids=[d[0].name for d in DTYPES])
def test_every_dtype_both_ways(tg_dtype, torch_dtype):
    ref = _values(4, torch_dtype)
    loaded = tg.load(_torch_file({"x": ref, "empty": ref[:0]}))
    assert loaded["x"].dtype is tg_dtype and tuple(loaded["x"].shape) == (3, 4)
    np.testing.assert_array_equal(_bits(loaded["x"]), _bits(ref))
    assert tuple(loaded["empty"].shape) == (0, 4)

    back = torch.load(_tg_file({"x": loaded["x"], "s": loaded["x"][1, 2]}), weights_only=True)
    assert back["x"].dtype == torch_dtype and back["s"].shape == ()
    np.testing.assert_array_equal(_bits(back["x"]), _bits(ref))
    np.testing.assert_array_equal(_bits(back["s"]), _bits(ref[1, 2]))


def _models():
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3),
                              torch.nn.BatchNorm1d(3))
    ours = tg.nn.Sequential(tg.nn.Linear(5, 8), tg.nn.Tanh(), tg.nn.Linear(8, 3),
                            tg.nn.BatchNorm1d(3))
    return ref, ours


def test_state_dict_from_pytorch_gives_pytorch_outputs():
    ref, ours = _models()
    ref.train()(torch.randn(6, 5))  # BatchNorm buffers move off their initial values
    result = ours.load_state_dict(tg.load(_torch_file(ref.state_dict())))
    assert not result.missing_keys and not result.unexpected_keys
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    ref.eval(), ours.eval()
    np.testing.assert_allclose(ours(tg.tensor(x)).detach().numpy(),
                               ref(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert int(ours[3].num_batches_tracked) == 1


def test_state_dict_to_pytorch_gives_tapegrad_outputs():
    ref, ours = _models()
    sd = torch.load(_tg_file(ours.state_dict()), weights_only=True)
    assert list(sd) == list(ref.state_dict()) and hasattr(sd, "_metadata")
    ref.load_state_dict(sd)
    x = np.random.default_rng(2).standard_normal((4, 5)).astype(np.float32)
    ref.eval(), ours.eval()
    np.testing.assert_allclose(ref(torch.from_numpy(x)).detach().numpy(),
                               ours(tg.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_shared_storages_and_views_from_pytorch():
    x = torch.arange(24.0).reshape(4, 6)
    obj = {"x": x, "again": x, "rows": x[1:3], "t": x[1:].t(), "col": x[:, 2], "diag": x.diagonal(),
           "expanded": x[0, :1].expand(3, 2), "alias": x.detach(), "other": torch.ones(2)}
    out = tg.load(_torch_file(obj))
    for k, v in obj.items():
        np.testing.assert_array_equal(out[k].numpy(), v.numpy())
    assert out["again"] is out["x"]  # the same object twice in the file
    ptr = out["x"].untyped_storage().data_ptr()
    assert all(out[k].untyped_storage().data_ptr() == ptr for k in obj if k != "other")
    # a write through the base shows in every view of its storage, as in PyTorch
    out["x"][1, 2] = -1.0
    x[1, 2] = -1.0
    for k in ("rows", "t", "col", "alias"):
        np.testing.assert_array_equal(out[k].numpy(), obj[k].numpy())
    # and a write through a view reaches the base
    out["t"][0, 1] = -7.0
    obj["t"][0, 1] = -7.0
    np.testing.assert_array_equal(out["x"].numpy(), x.numpy())
    np.testing.assert_array_equal(out["rows"].numpy(), obj["rows"].numpy())


def test_views_saved_by_tapegrad_share_one_storage_in_pytorch():
    x = tg.arange(24.0).reshape(4, 6)
    ours = {"x": x, "rows": x[1:3], "t": x[1:].t(), "col": x[:, 2], "diag": x.diagonal(),
            "alias": x.detach(), "other": tg.ones(2)}
    back = torch.load(_tg_file(ours), weights_only=True)
    ref = torch.arange(24.0).reshape(4, 6)
    expect = {"x": ref, "rows": ref[1:3], "t": ref[1:].t(), "col": ref[:, 2],
              "diag": ref.diagonal(), "alias": ref.detach()}
    for k, v in expect.items():
        np.testing.assert_array_equal(back[k].numpy(), v.numpy())
        assert back[k].stride() == v.stride() and back[k].storage_offset() == v.storage_offset()
        assert back[k].untyped_storage().data_ptr() == back["x"].untyped_storage().data_ptr()
        # tapegrad reports PyTorch's storage and addresses for the same views
        assert ours[k].untyped_storage().nbytes() == v.untyped_storage().nbytes()
        assert ours[k].data_ptr() - x.data_ptr() == v.data_ptr() - ref.data_ptr()
    assert back["other"].untyped_storage().data_ptr() != back["x"].untyped_storage().data_ptr()
    back["x"][2, 3] = 100.0
    assert back["t"][3, 1] == 100.0  # shared in PyTorch too


def _adam_pair(lr=0.05):
    torch.manual_seed(3)
    ref = torch.nn.Linear(4, 3)
    ours = tg.nn.Linear(4, 3)
    with tg.no_grad():
        ours.weight.copy_(tg.tensor(ref.weight.detach().numpy()))
        ours.bias.copy_(tg.tensor(ref.bias.detach().numpy()))
    return (ref, torch.optim.Adam(ref.parameters(), lr=lr, amsgrad=True),
            ours, tg.optim.Adam(ours.parameters(), lr=lr, amsgrad=True))


def _steps(model, opt, lib, batches):
    for x, y in batches:
        opt.zero_grad()
        ((model(lib.tensor(x)) - lib.tensor(y)) ** 2).mean().backward()
        opt.step()


def _batches(seed, n=3):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((5, 4)).astype(np.float32),
             rng.standard_normal((5, 3)).astype(np.float32)) for _ in range(n)]


def _assert_same_params(ours, ref):
    for (name, p), q in zip(ours.named_parameters(), ref.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_adam_state_from_pytorch_resumes_identically():
    ref, ref_opt, ours, opt = _adam_pair()
    _steps(ref, ref_opt, torch, _batches(0))
    ckpt = tg.load(_torch_file({"model": ref.state_dict(), "opt": ref_opt.state_dict()}))
    ours.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["opt"])
    assert float(opt.state[ours.weight]["step"]) == 3.0
    more = _batches(1)
    _steps(ref, ref_opt, torch, more)
    _steps(ours, opt, tg, more)
    _assert_same_params(ours, ref)


def test_adam_state_to_pytorch_resumes_identically():
    ref, ref_opt, ours, opt = _adam_pair()
    _steps(ours, opt, tg, _batches(0))
    ckpt = torch.load(_tg_file({"model": ours.state_dict(), "opt": opt.state_dict()}),
                      weights_only=True)
    ref.load_state_dict(ckpt["model"])
    ref_opt.load_state_dict(ckpt["opt"])
    assert ref_opt.state[ref.weight]["step"].item() == 3.0
    more = _batches(1)
    _steps(ref, ref_opt, torch, more)
    _steps(ours, opt, tg, more)
    _assert_same_params(ours, ref)


def test_digits_example_checkpoint_continues_training_in_pytorch(tmp_path):
    pytest.importorskip("sklearn")
    path = Path(__file__).parent.parent / "examples" / "train_digits.py"
    spec = importlib.util.spec_from_file_location("train_digits_ckpt", path)
    example = importlib.util.module_from_spec(spec)
    sys.modules["train_digits_ckpt"] = example
    try:
        spec.loader.exec_module(example)
    finally:
        sys.modules.pop("train_digits_ckpt", None)
    tg.manual_seed(0)
    model = example.MLP(n_in=8, hidden=16, n_out=4, p_drop=0.0)
    optimizer = tg.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
    scheduler = tg.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=10)
    rng = np.random.default_rng(5)
    data = [(rng.standard_normal((6, 8)).astype(np.float32), rng.integers(0, 4, 6))
            for _ in range(5)]

    def train(model, opt, lib, batches):
        for x, y in batches:
            loss = lib.nn.functional.cross_entropy(model(lib.tensor(x)), lib.tensor(y))
            opt.zero_grad()
            loss.backward()
            opt.step()

    train(model, optimizer, tg, data[:3])
    scheduler.step()
    ckpt_path = tmp_path / "digits.pt"
    tg.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, ckpt_path)

    class TorchMLP(torch.nn.Module):  # the example's model, written for PyTorch
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(8, 16), torch.nn.Linear(16, 16)
            self.head, self.drop = torch.nn.Linear(16, 4), torch.nn.Dropout(0.0)

        def forward(self, x):
            x = self.drop(torch.relu(self.fc1(x)))
            return self.head(self.drop(torch.relu(self.fc2(x))))

    checkpoint = torch.load(ckpt_path, weights_only=True)
    ref = TorchMLP()
    ref.load_state_dict(checkpoint["model"])
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, weight_decay=1e-4)
    ref_opt.load_state_dict(checkpoint["optimizer"])
    assert ref_opt.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    train(ref, ref_opt, torch, data[3:])
    train(model, optimizer, tg, data[3:])
    _assert_same_params(model, ref)


def test_whole_modules_need_weights_only_false():
    torch.manual_seed(4)
    ref = torch.nn.Linear(3, 2)
    f = _torch_file(ref)
    with pytest.raises(tg.serialization.LoadError,
                       match="Unsupported global: GLOBAL torch.nn.modules.linear.Linear"):
        tg.load(f)
    f.seek(0)
    ours = tg.load(f, weights_only=False)  # PyTorch's module becomes tapegrad's
    assert type(ours) is tg.nn.Linear
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(ours(tg.tensor(x)).detach().numpy(),
                               ref(torch.from_numpy(x)).detach().numpy(), rtol=1e-6)
    # tapegrad's whole module: PyTorch's weights-only load refuses its class, as for any class
    with pytest.raises(Exception, match="tapegrad.nn.modules.linear.Linear"):
        torch.load(_tg_file(ours), weights_only=True)


def test_pytorch_lists_the_same_unsafe_globals():
    class Opaque:
        pass
    Opaque.__module__, Opaque.__qualname__ = __name__, "Opaque"
    globals()["Opaque"] = Opaque
    try:
        f = _torch_file({"w": torch.ones(1), "o": Opaque()})
        ours = tg.serialization.get_unsafe_globals_in_checkpoint(f)
        f.seek(0)
        assert ours == torch.serialization.get_unsafe_globals_in_checkpoint(f) == \
            [f"{__name__}.Opaque"]
    finally:
        del globals()["Opaque"]


def test_map_location_and_mmap(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"a": torch.arange(6.0), "b": torch.ones(2, dtype=torch.int64)}, path)
    seen = []
    out = tg.load(path, map_location=lambda t, loc: seen.append(loc) or t)
    assert seen == ["cpu", "cpu"]
    for kwargs in ({"map_location": "cpu"}, {"map_location": {"cpu": "cpu"}}, {"mmap": True}):
        out = tg.load(path, **kwargs)
        assert out["a"].device.type == "cpu"
        np.testing.assert_array_equal(out["a"].numpy(), np.arange(6.0, dtype=np.float32))
        np.testing.assert_array_equal(out["b"].numpy(), [1, 1])
    with pytest.raises(ValueError, match="f must be a file path in order to use the mmap"):
        tg.load(io.BytesIO(path.read_bytes()), mmap=True)


def test_tapegrad_files_are_aligned_for_pytorch_mmap(tmp_path):
    path = tmp_path / "t.pt"
    tg.save({"a": tg.arange(5.0), "b": tg.ones(3, dtype=tg.float64)}, path)
    out = torch.load(path, weights_only=True, mmap=True)
    np.testing.assert_array_equal(out["a"].numpy(), np.arange(5.0))
    np.testing.assert_array_equal(out["b"].numpy(), np.ones(3))
