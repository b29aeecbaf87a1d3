"""A PyTorch-style script runs unchanged on tapegrad, and gives PyTorch's numbers."""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parent / "pytorch_style_script.py"
EXAMPLE = Path(__file__).parent.parent / "examples" / "train_digits.py"


def _load(source: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = str(SCRIPT)
    exec(compile(source, str(SCRIPT), "exec"), module.__dict__)
    return module


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5).astype(np.int64)
    init = {"fc1.weight": rng.standard_normal((16, 6)).astype(np.float32) * 0.4,
            "fc1.bias": rng.standard_normal(16).astype(np.float32) * 0.1,
            "fc2.weight": rng.standard_normal((3, 16)).astype(np.float32) * 0.4,
            "fc2.bias": np.zeros(3, np.float32)}
    return x, y, init


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_script_runs_unchanged_and_learns(opt_name):
    source = SCRIPT.read_text()
    assert "import tapegrad as torch" in source
    out = _load(source, "script_tapegrad").run(*_data(), opt_name=opt_name)
    per_epoch = np.reshape(out["losses"], (5, -1)).mean(axis=1)
    assert per_epoch[-1] < 0.8 * per_epoch[0]
    y = _data()[1]
    assert out["accuracy"] > np.bincount(y).max() / len(y) + 0.1  # beats the majority class
    # the checkpoint round trip resumes exactly
    resumed = out["restored_losses"]
    np.testing.assert_array_equal(resumed, out["losses"][-len(resumed):])
    for k, v in out["weights"].items():
        np.testing.assert_array_equal(out["restored_weights"][k], v)


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_script_matches_pytorch(opt_name):
    pytest.importorskip("torch")
    source = SCRIPT.read_text()
    ours = _load(source, "script_tapegrad").run(*_data(), opt_name=opt_name)
    torch_script = _load(source.replace("tapegrad", "torch"), "script_torch")
    ref = torch_script.run(*_data(), opt_name=opt_name)
    np.testing.assert_allclose(ours["losses"], ref["losses"], rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(ours["norms"], ref["norms"], rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(ours["lr"], ref["lr"], rtol=1e-12)
    assert abs(ours["accuracy"] - ref["accuracy"]) < 1e-6
    for k in ref["weights"]:
        np.testing.assert_allclose(ours["weights"][k], ref["weights"][k], rtol=1e-4, atol=1e-5)


def test_digits_example_reaches_95_percent(tmp_path):
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("train_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_digits"] = module
    try:
        spec.loader.exec_module(module)
        accuracy = module.main(["--plot", str(tmp_path / "loss.png")])
    finally:
        sys.modules.pop("train_digits", None)
    assert accuracy >= 0.95
