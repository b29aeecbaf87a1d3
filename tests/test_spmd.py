"""Many devices in one process: `nn.DataParallel` (and the sharded tensors built on the same
machinery), against PyTorch training on one device.

The suite runs on one device; these run `tests/spmd_worker.py` in a subprocess with 8 XLA host
devices and compare what it saw with PyTorch on the whole batch, here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import spmd_worker as worker

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    out = tmp_path_factory.mktemp("spmd") / "out.json"
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), PYTHONPATH=os.pathsep.join(
        [str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(HERE / "spmd_worker.py"), str(out), "dp"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


def _torch_reference(torch, kind: str, start: dict, ragged: bool):
    model = (worker.mlp if kind == "mlp" else worker.gpt)(torch)
    model.load_state_dict({k: torch.tensor(v) for k, v in start.items()})
    losses, _, _ = worker.train(torch, model, worker.batches(kind, ragged))
    return losses, model.state_dict()


@pytest.mark.parametrize("name", ["mlp_eager", "mlp_compiled", "gpt_eager", "gpt_compiled"])
def test_data_parallel_equals_one_device_on_the_whole_batch(seen, name):
    torch = pytest.importorskip("torch")
    got = seen["dp"][name]
    kind, mode = name.split("_")
    losses, final = _torch_reference(torch, kind, got["start"], ragged=mode == "eager")
    np.testing.assert_allclose(got["losses"], losses, rtol=2e-5)
    for k, v in final.items():
        ours, theirs = np.asarray(got["final"][k]), v.numpy()
        if k.endswith("qkv.bias"):
            # softmax ignores a bias added to every key, so the keys' bias has a zero gradient
            # made of rounding noise, which AdamW scales up to steps of lr: compared loosely
            keys = slice(theirs.size // 3, 2 * theirs.size // 3)
            np.testing.assert_allclose(ours[keys], theirs[keys], atol=0.01 * len(losses))
            ours, theirs = np.delete(ours, keys), np.delete(theirs, keys)
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=2e-6, err_msg=k)
    assert got["keys"][0].startswith("module.")  # state_dict as PyTorch's DataParallel
    assert got["param_sharding"] == "P()"  # parameters replicated


@pytest.mark.parametrize("name", ["mlp_eager", "mlp_compiled", "gpt_eager", "gpt_compiled"])
def test_data_parallel_splits_the_batch(seen, name):
    got = seen["dp"][name]
    rows = 32 if name.startswith("mlp") else 16
    width = [10] if name.startswith("mlp") else [8]
    assert got["input_shards"] == [[rows // 8] + width] * 8  # each device holds its shard only
    if name.endswith("eager"):  # 28 rows do not split over 8 devices: replicated
        assert got["ragged_shards"] == [[rows * 7 // 8] + width] * 8


@pytest.mark.parametrize("name", ["mlp_compiled", "gpt_compiled"])
def test_compiled_data_parallel_step_has_xla_collectives(seen, name):
    assert seen["dp"][name]["hlo_all_reduce"] >= 1
