"""Many devices in one process: `nn.DataParallel` (and the sharded tensors built on the same
machinery), against PyTorch training on one device.

The suite runs on one device; these run `tests/spmd_worker.py` in a subprocess with 8 XLA host
devices and compare what it saw with PyTorch on the whole batch, here.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import spmd_worker as worker
import launches
from helpers import (DATA_PARALLEL_EXAMPLE, assert_trained_state_close, example_launch,
                     example_output)

HERE = Path(__file__).parent


_OUT = launches.scratch("spmd") / "out.json"
launches.add("spmd", [sys.executable, HERE / "spmd_worker.py", _OUT, "devices", "dp", "dtensor",
                      "fsdp", "tp"], users=("seen",), env=dict(
    os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip(),
    PYTHONPATH=os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])))
launches.add("data_parallel_example", **example_launch("data_parallel.py", "--epochs", "5",
                                                       devices=8), users=(DATA_PARALLEL_EXAMPLE,))


@pytest.fixture(scope="module")
def seen():
    proc = launches.result("spmd")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(_OUT.read_text())


def _torch_reference(torch, kind: str, start: dict, ragged: bool = False):
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
    assert_trained_state_close(got["final"], final, len(losses))
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


def test_device_indices_map_onto_this_process_devices(seen):
    got = seen["devices"]
    assert got["cpu3"] == [3]
    assert "invalid device ordinal: device 8 requested, but this process has 8" in got["cpu8"]
    assert got["current"] == 5 and got["count"] == 8  # set_device(5): the current device
    assert got["made_on"] == [5] and got["cuda"] == [5] and got["cuda2"] == [2]
    assert got["to_cuda1"] == [1]  # Tensor.to("cuda:1")
    assert got["inside"] == [1, [1]] and got["after"] == 5  # tapegrad.cuda.device restores it
    assert "CUDA error: invalid device ordinal: device 8" in got["set8"]


# -- DeviceMesh and DTensor -------------------------------------------------------------------------

def test_device_mesh_and_dtensor_layout(seen):
    got = seen["dtensor"]
    assert got["mesh"] == [8, 2, ["dp", "tp"], 4, [0, 1, 2, 3], [0, 4]]
    assert got["placements"] == "(Shard(dim=0), Shard(dim=1))"
    assert got["spec"] == "P('dp', 'tp')" and got["shards"] == [[4, 1]] * 8
    x = np.arange(32.0).reshape(8, 4)
    assert got["local0"] == x[:4, :1].tolist()  # device 0: coordinate (0, 0)
    assert got["local5"] == x[4:, 1:2].tolist()  # device 5: coordinate (1, 1)
    placements, shards, spec, full, grad, error = got["from_local"]
    assert placements == "(Shard(dim=0), Shard(dim=1))" and shards == [[4, 1]] * 8
    assert spec == "P('dp', 'tp')"
    np.testing.assert_array_equal(full, x)
    np.testing.assert_array_equal(grad, 2 * x)  # gradients flow back to the local tensor
    assert "this process holds every device of the mesh" in error
    placements, shards, full = got["redistributed"]
    assert placements == "(Replicate(), Shard(dim=0))" and shards == [[2, 4]] * 8
    np.testing.assert_array_equal(full, x)


def test_dtensor_ops_and_gradients_equal_one_device(seen):
    torch = pytest.importorskip("torch")
    got = seen["dtensor"]
    x = torch.arange(32.0).reshape(8, 4).requires_grad_()
    y = (x @ (torch.arange(12.0).reshape(4, 3) / 10) / 50).tanh()
    y.sum().backward()
    np.testing.assert_allclose(got["y"], y.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(got["grad"], x.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert got["grad_spec"] == "P('dp', 'tp')"  # the gradient keeps the leaf's sharding
    assert got["hlo_collectives"] >= 1  # the contraction over a sharded dim needs XLA's


# -- fully_shard and tensor parallel ------------------------------------------------------------------

def _spec(s: str) -> str:
    """A PartitionSpec's text without trailing Nones (the same layout)."""
    while s.endswith(", None)") or s.endswith(",)"):
        s = s[:-7] + ")" if s.endswith(", None)") else s[:-2] + ")"
    return "P()" if s == "P(None)" else s


@pytest.mark.parametrize("scenario", ["fsdp", "tp"])
@pytest.mark.parametrize("name", ["mlp_eager", "gpt_compiled"])
def test_sharded_training_equals_one_device(seen, scenario, name):
    torch = pytest.importorskip("torch")
    got = seen[scenario][name]
    losses, final = _torch_reference(torch, name.split("_")[0], got["start"])
    np.testing.assert_allclose(got["losses"], losses, rtol=2e-5)
    assert_trained_state_close(got["final"], final, len(losses))
    for k, (param, grad) in got["grad_specs"].items():  # gradients keep the parameter's layout
        assert _spec(param) == _spec(grad), k


@pytest.mark.parametrize("scenario", ["fsdp", "tp"])
def test_compiled_sharded_step_has_xla_collectives(seen, scenario):
    assert seen[scenario]["gpt_compiled"]["hlo_collectives"] >= 1


@pytest.mark.parametrize("name", ["mlp_eager", "gpt_compiled"])
def test_fully_shard_leaves_each_device_its_shard(seen, name):
    got = seen["fsdp"][name]
    for k, shards in got["param_shards"].items():
        full = np.asarray(got["start"][k]).shape
        assert len(shards) == 8
        if any(n % 8 == 0 for n in full):  # 1/8 each
            assert np.prod(shards[0]) * 8 == np.prod(full), (k, shards, full)
        else:  # nothing splits over 8 devices (JAX shards evenly only): replicated
            assert shards == [list(full)] * 8, (k, shards, full)
    assert seen["fsdp"]["is_fsdp_module"] == {"FSDPSequential": True, "FSDPGPT": True}
    assert seen["fsdp"]["exp_avg_shards"][0] == [[4, 10]] * 8  # optimizer state: sharded too


def test_tensor_parallel_layouts(seen):
    got = seen["tp"]["mlp_eager"]
    assert got["placements"]["0.weight"] == "(Shard(dim=0),)"  # colwise: output features
    assert got["placements"]["2.weight"] == "(Shard(dim=1),)"  # rowwise: input features
    assert got["placements"]["2.bias"] == "(Replicate(),)"
    assert got["param_shards"]["0.weight"] == [[4, 10]] * 8
    assert got["param_shards"]["2.weight"] == [[4, 4]] * 8


def _train_losses(stdout: str) -> list[str]:
    return re.findall(r"epoch +\d+: train loss ([0-9.]+)", stdout)


def test_data_parallel_example_prints_the_single_device_numbers():
    pytest.importorskip("sklearn")
    single, single_accuracy = example_output(launches.result("digits_5_epochs"))
    dp, dp_accuracy = example_output(launches.result("data_parallel_example"))
    assert "data parallel over 8 devices" in dp
    assert dp_accuracy == single_accuracy  # the same held-out accuracy, to the printed digit
    assert _train_losses(dp) == _train_losses(single) and len(_train_losses(dp)) == 5
