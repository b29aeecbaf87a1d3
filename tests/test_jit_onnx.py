"""`tapegrad.jit` (TorchScript's markers, `script`/`trace` running eagerly) and `tapegrad.onnx`
(importable, `export` raises): model code carrying them runs and gives PyTorch's numbers.

No `from __future__ import annotations` here: TorchScript must see the model's annotations."""

from typing import Optional

import numpy as np
import pytest

import tapegrad as tg


def _model_class(m):
    """A module in the style of timm/torchvision code: Final constants, ignored and unused
    helpers, an exported method and an `is_scripting()` branch. Built over torch or tapegrad."""
    class Block(m.nn.Module):
        scale: m.jit.Final[float]

        def __init__(self):
            super().__init__()
            self.scale = 0.5
            self.fc = m.nn.Linear(3, 4)
            self.grad_checkpointing = False

        @m.jit.ignore
        def group_matcher(self, coarse: bool = False):
            return {"stem": r"^fc"}

        @m.jit.ignore
        def debug_name(self) -> str:
            return "block"

        @m.jit.unused
        def slow_path(self, x):
            return x * 3

        @m.jit.export
        def features(self, x):
            return m.tanh(self.fc(x)) * self.scale

        def forward(self, x, bias: Optional[float] = None):
            if not m.jit.is_scripting() and not m.jit.is_tracing():
                x = x + 1.0
            y = self.features(x)
            return y if bias is None else y + bias
    return Block


def _pair(seed=0):
    import torch
    torch.manual_seed(seed)
    ref = _model_class(torch)()
    got = _model_class(tg)()
    got.load_state_dict({k: tg.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})
    return ref, got


def test_markers_answer_as_in_eager_pytorch():
    assert tg.jit.is_scripting() is False and tg.jit.is_tracing() is False
    assert tg.jit.Final[int] is not None and tg.jit.annotate(list, [1]) == [1]
    assert tg.jit.Attribute(3, int) == (3, int) and tg.jit.Attribute(3, int).value == 3
    fut = tg.jit.fork(lambda a, b=1: a + b, 2, b=5)
    assert tg.jit.wait(fut) == 7 and fut.wait() == 7
    assert issubclass(tg.jit.ScriptModule, tg.nn.Module)

    class Overloaded(tg.nn.Module):  # torchvision's declarations, then the definition
        @tg.jit._overload_method
        def forward(self, x: list) -> int:
            pass

        def forward(self, x):  # noqa: F811
            return len(x)
    assert Overloaded()([1, 2]) == 2 and tg.jit._overload(len) is len
    with pytest.warns(FutureWarning, match="ignore\\(True\\) has been deprecated"):
        assert tg.jit.ignore(True)(len) is len
    with pytest.raises(RuntimeError, match="must be a bool or a function but got 3"):
        tg.jit.ignore(3)

    class Old(tg.jit.ScriptModule):  # old-style TorchScript modules subclass ScriptModule
        def __init__(self):
            super().__init__()
            self.w = tg.nn.Parameter(tg.ones(2))

        @tg.jit.script_method
        def forward(self, x):
            return x * self.w
    assert Old()(tg.tensor([2.0, 3.0])).tolist() == [2.0, 3.0]
    assert [n for n, _ in Old().named_parameters()] == ["w"]


@pytest.mark.parametrize("wrap", ["plain", "script", "trace"])
def test_scripted_and_traced_modules_match_eager_pytorch(wrap):
    """`script`/`trace` return a callable running the module eagerly: values and gradients equal
    eager PyTorch's on the same weights (PyTorch's scripted or traced module would take the
    other side of `is_scripting()`/`is_tracing()`; tapegrad's answer is False, as it runs the
    Python code), and the module's methods and parameters are still there."""
    torch = pytest.importorskip("torch")
    ref, got = _pair()
    x0 = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    if wrap == "script":
        got_fn = tg.jit.script(got)
    elif wrap == "trace":
        got_fn = tg.jit.trace(got, tg.tensor(x0))
    else:
        got_fn = got
    assert got_fn is got
    expected = ref(torch.tensor(x0))
    out = got_fn(tg.tensor(x0))
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-6)
    expected.sum().backward()
    out.sum().backward()
    np.testing.assert_allclose(got.fc.weight.grad.numpy(), ref.fc.weight.grad.numpy(), rtol=1e-6)
    assert got_fn.features(tg.tensor(x0)).shape == (2, 4)
    assert got_fn.group_matcher() == {"stem": r"^fc"} and got_fn.debug_name() == "block"


def test_script_decorates_functions():
    @tg.jit.script
    def gelu_ish(x):
        return x * tg.sigmoid(1.702 * x)
    x = tg.tensor([0.5, -1.0], requires_grad=True)
    gelu_ish(x).sum().backward()
    s = 1 / (1 + np.exp(-1.702 * np.array([0.5, -1.0])))
    np.testing.assert_allclose(x.grad.numpy(), s + 1.702 * np.array([0.5, -1.0]) * s * (1 - s),
                               rtol=1e-6)
    assert tg.jit.script_if_tracing(gelu_ish) is gelu_ish


def test_freeze_and_errors_match_pytorch():
    torch = pytest.importorskip("torch")
    lin = tg.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="only implemented for modules in eval mode"):
        tg.jit.freeze(lin)
    with pytest.raises(RuntimeError, match="only implemented for modules in eval mode"):
        torch.jit.freeze(torch.jit.script(torch.nn.Linear(2, 2)))
    assert tg.jit.freeze(lin.eval()) is lin and tg.jit.optimize_for_inference(lin) is lin
    with pytest.raises(TypeError, match="'NoneType' object is not iterable"):
        torch.jit.trace(lambda x: x)
    with pytest.raises(TypeError, match="'NoneType' object is not iterable"):
        tg.jit.trace(lambda x: x)


def test_unsupported_serialization_raises_clearly(tmp_path):
    for call in (lambda: tg.jit.save(tg.nn.Linear(2, 2), tmp_path / "m.pt"),
                 lambda: tg.jit.load(tmp_path / "m.pt")):
        with pytest.raises(NotImplementedError, match="no TorchScript format.*tapegrad.save"):
            call()
    assert not (tmp_path / "m.pt").exists()


def test_onnx_is_importable_and_export_raises(tmp_path):
    import tapegrad.onnx as onnx
    assert onnx.is_in_onnx_export() is False
    with pytest.raises(NotImplementedError, match="tapegrad.onnx.export is not supported"):
        onnx.export(tg.nn.Linear(2, 2), (tg.zeros(1, 2),), str(tmp_path / "m.onnx"),
                    input_names=["x"], opset_version=17)
    assert not (tmp_path / "m.onnx").exists()
