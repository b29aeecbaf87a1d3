"""`tapegrad.distributed`, `DistributedDataParallel` and `DistributedSampler`.

The multi-process tests launch `tests/distributed_worker.py` on 2 and 4 local processes with
`python -m tapegrad.distributed.run` (jax.distributed over 127.0.0.1, gloo's CPU collectives)
and compare what each rank saw with references computed here: numpy for the collectives,
PyTorch single-process training on the global batch for DDP.
"""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
import tapegrad.distributed as dist
from tapegrad import nn

import distributed_worker as worker
import spmd_worker
import launches
from helpers import DDP_EXAMPLE, assert_trained_state_close, example_launch, example_output

HERE = Path(__file__).parent
SRC = str(HERE.parent / "src")


def _launch(nproc: int, *scenarios: str, users: tuple) -> Path:
    """Declares the run of `scenarios` on `nproc` processes (tests/launches.py); its output
    directory."""
    out = launches.scratch(f"nproc{nproc}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
    launches.add(f"nproc{nproc}", [sys.executable, "-m", "tapegrad.distributed.run",
                                   "--nproc-per-node", nproc, HERE / "distributed_worker.py", out,
                                   *scenarios], env=env, users=users)
    return out


def _ranks(nproc: int, out: Path) -> list:
    proc = launches.result(f"nproc{nproc}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(nproc)]


_TWO = _launch(2, "collectives", "ddp", "ddp_compiled", "no_sync", "no_sync_compiled",
               "gpt_compiled", "unused", "dtensor", "mismatch", "fsdp", "tp", users=("two",))
_FOUR = _launch(4, "collectives", "ddp", "ddp_compiled", "dtensor", users=("four",))


@pytest.fixture(scope="module")
def two():
    return _ranks(2, _TWO)


@pytest.fixture(scope="module")
def four():
    return _ranks(4, _FOUR)


# -- collectives ------------------------------------------------------------------------------------

def _expected_collectives(world: int) -> dict:
    base = np.array([1.0, -2.0, 3.0])
    each = [base * (r + 1) for r in range(world)]
    xor = np.zeros(2, np.int64)
    for r in range(world):
        xor ^= np.array([5, 6]) * (r + 1)
    return {
        "sum": sum(each), "AVG": sum(each) / world, "MAX": np.max(each, 0),
        "MIN": np.min(each, 0), "PRODUCT": np.prod(each, 0), "bxor": xor,
        "sum64": sum(np.array([0.5, 1.5]) + r for r in range(world)),
        "broadcast": np.arange(4.0) + 10 * (world - 1),
        "all_gather": [[r, -r] for r in range(world)],
        "all_gather_into_tensor": np.array([[r, -r] for r in range(world)]).ravel(),
        "all_gather_stacked": [[r, -r] for r in range(world)],
        "view": [[0, 0, 0], [world] * 3],
    }


@pytest.mark.parametrize("n", [2, 4])
def test_collectives_match_numpy(n, request):
    ranks = request.getfixturevalue({2: "two", 4: "four"}[n])
    expected = _expected_collectives(n)
    total = sum(np.arange(2.0 * n) * (r + 1) for r in range(n))
    for r, res in enumerate(ranks):
        got = res["collectives"]
        for key, want in expected.items():
            np.testing.assert_allclose(np.asarray(got[key], float), np.asarray(want, float),
                                       rtol=1e-6, err_msg=f"{key} on rank {r}")
        assert got["dtype64"] == "tapegrad.float64"
        for key in ("reduce_scatter_tensor", "reduce_scatter_stacked"):
            np.testing.assert_allclose(got[key], total[2 * r:2 * r + 2], err_msg=key)
        np.testing.assert_allclose(got["scatter"], [r * r] * 3)
        assert got["reduce"] == ([sum(range(n))] if r == 0 else [r])  # dst=0; others keep theirs
        assert got["gather"] == ([r_ + 0.5 for r_ in range(n)] if r == 1 else None)


def test_mismatched_collectives_raise_instead_of_hanging(two):
    for r, res in enumerate(two):
        other = 1 - r
        msg = res["mismatch"]
        assert msg["shape"].startswith("Detected mismatch between collectives on ranks.")
        assert f"TensorShape=[[{3 + r}]]" in msg["shape"]
        assert f"but Rank {other} is running collective" in msg["shape"]
        assert f"TensorShape=[[{3 + other}]]" in msg["shape"]
        assert "OpType=ALLREDUCE" in msg["kind"] and "OpType=BROADCAST" in msg["kind"]
    timeout = two[0]["mismatch"]["timeout"]
    assert "timed out after 0:00:04 waiting for rank 1" in timeout
    assert "timeout" not in two[1]["mismatch"]


# -- DistributedDataParallel --------------------------------------------------------------------------

def _torch_mlp(torch, state: dict):
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    model.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    return model


@pytest.mark.parametrize("scenario", ["ddp", "ddp_compiled"])
@pytest.mark.parametrize("n", [2, 4])
def test_ddp_training_equals_single_process_on_the_global_batch(n, scenario, request):
    torch = pytest.importorskip("torch")
    ranks = [res[scenario] for res in request.getfixturevalue({2: "two", 4: "four"}[n])]
    start = ranks[0]["start"]
    for res in ranks[1:]:  # each rank began from its own seed; DDP broadcast rank 0's weights
        assert res["start"] == start
    model = _torch_mlp(torch, start)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    x, y = worker.global_batch(n)
    x, y = torch.tensor(x), torch.tensor(y)
    local_losses = []
    for _ in range(len(ranks[0]["local_losses"])):
        with torch.no_grad():
            out = model(x)
            local_losses.append([torch.nn.functional.cross_entropy(
                out[r * worker.LOCAL_BATCH:(r + 1) * worker.LOCAL_BATCH],
                y[r * worker.LOCAL_BATCH:(r + 1) * worker.LOCAL_BATCH]).item() for r in range(n)])
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
    for r, res in enumerate(ranks):
        assert res["keys"] == ["module." + k for k in start]
        for k, v in model.state_dict().items():
            np.testing.assert_allclose(res["final"][k], v.numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{k} on rank {r}")
        # each process's loss is its own batch's, as in PyTorch
        np.testing.assert_allclose(res["local_losses"], [s[r] for s in local_losses],
                                   rtol=1e-5)


@pytest.mark.parametrize("n", [2, 4])
def test_compiled_ddp_step_is_one_program_with_an_all_reduce(n, request):
    for res in request.getfixturevalue({2: "two", 4: "four"}[n]):
        got = res["ddp_compiled"]
        assert len(got["local_losses"]) == worker.COMPILED_STEPS and got["traces"] == 1
        assert got["hlo_all_reduce"] >= 1  # the gradients' average, between the processes


def test_compiled_ddp_gpt_equals_single_process_on_the_global_batch(two):
    # on 2 processes only: the MLP runs on 4 too, and the GPT's compile there costs minutes
    torch = pytest.importorskip("torch")
    got = [res["gpt_compiled"] for res in two]
    model = spmd_worker.gpt(torch)
    model.load_state_dict({k: torch.tensor(v) for k, v in got[0]["start"].items()})
    batches = spmd_worker.batches("gpt")
    spmd_worker.train(torch, model, batches)
    for r, res in enumerate(got):
        assert res["traces"] == 1
        assert_trained_state_close(res["final"], model.state_dict(), len(batches))
        part = len(batches[0][0]) // len(got)  # each process's loss is its own rows'
        with torch.no_grad():
            first = spmd_worker.gpt(torch)
            first.load_state_dict({k: torch.tensor(v) for k, v in got[0]["start"].items()})
            x, y = (torch.tensor(a[r * part:(r + 1) * part]) for a in batches[0])
            loss = torch.nn.functional.cross_entropy(first(x).reshape(-1, 10), y.reshape(-1))
        np.testing.assert_allclose(res["local_losses"][0], loss.item(), rtol=1e-5)


@pytest.mark.parametrize("scenario", ["no_sync", "no_sync_compiled"])
def test_no_sync_accumulation_equals_one_big_batch(two, scenario):
    torch = pytest.importorskip("torch")
    model = _torch_mlp(torch, two[0][scenario]["start"])
    x, y = worker.global_batch(2, seed=1)
    x, y = torch.tensor(x), torch.tensor(y)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    big = [p.grad.numpy() for p in model.parameters()]
    half = worker.LOCAL_BATCH // 2
    for r, res in enumerate(two):
        if scenario == "no_sync_compiled":
            assert res[scenario]["traces"] == 1  # the synchronised step ran compiled
        for got, want in zip(res[scenario]["grads"], big):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
        model.zero_grad()
        rows = slice(r * worker.LOCAL_BATCH, r * worker.LOCAL_BATCH + half)
        (torch.nn.functional.cross_entropy(model(x[rows]), y[rows]) / 2).backward()
        for got, p in zip(res[scenario]["local_after_no_sync"], model.parameters()):
            np.testing.assert_allclose(got, p.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_ddp_unused_parameters(two):
    for r, res in enumerate(two):
        u = res["unused"]
        # rank r's input is ones * (r + 1) over 2 rows: d(sum)/d(weight) = 2 (r + 1) per entry
        np.testing.assert_allclose(u["a"], [[np.mean([2 * (q + 1) for q in range(2)])] * 3])
        np.testing.assert_allclose(u["b"], [[2.0 / 2] * 3])  # used by rank 0 only
        assert u["c_is_none"]  # used by no rank
        assert u["strict_error"].startswith("Expected to have finished reduction in the prior "
                                            "iteration")
        assert "find_unused_parameters=True" in u["strict_error"]
        assert f"did not receive grad for rank {r}: [2, 3]" in u["strict_error"]


# -- DTensor over processes --------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 4])
def test_dtensor_from_local_shards_over_processes(n, request):
    locals_ = [np.arange(6.0).reshape(2, 3) + 10 * r for r in range(n)]
    for r, res in enumerate(request.getfixturevalue({2: "two", 4: "four"}[n])):
        got = res["dtensor"]
        for key, axis in (("rows", 0), ("cols", 1)):  # Shard(d): the shards concatenated
            shape, local, full = got[key]
            whole = np.concatenate(locals_, axis)
            assert shape == list(whole.shape)
            np.testing.assert_array_equal(local, locals_[r])
            np.testing.assert_array_equal(full, whole)
        assert got["scaled_sum"] == pytest.approx(float((np.concatenate(locals_) *
                                                         [1.0, 2.0, 3.0]).sum()))
        assert got["coordinate"] == [r]
        mine, rows, cols = locals_[r], np.concatenate(locals_, 0), np.concatenate(locals_, 1)
        # d/dx of sum((sum of the global tensor along the shard dim) ** 2): twice the sums
        np.testing.assert_allclose(got["grad_rows"], np.broadcast_to(2 * rows.sum(0), (2, 3)))
        np.testing.assert_allclose(got["grad_cols"],
                                   np.broadcast_to(2 * cols.sum(1, keepdims=True), (2, 3)))
        scale = np.array([1.0, -2.0, 0.5])
        np.testing.assert_allclose(got["grad_scaled"][0], 2 * mine * scale ** 2)
        np.testing.assert_allclose(got["grad_scaled"][1], 2 * scale * (rows ** 2).sum(0))
        np.testing.assert_allclose(got["to_local_grad"], 3 * mine ** 2)
        weights = np.arange(6.0 * n).reshape(2 * n, 3)
        np.testing.assert_allclose(got["round_trip_grad"], weights[2 * r:2 * r + 2])


# -- fully_shard and tensor parallel over processes -----------------------------------------------

def _torch_sharded_reference(torch, start: dict, x, y, local_rows: list):
    """PyTorch on one process: the worker's AdamW + clip_grad_norm_ steps on the whole batch;
    the final state, per step the loss over each rank's `local_rows`, and the gradient norms."""
    model = _torch_mlp(torch, start)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    x, y = torch.tensor(x), torch.tensor(y)
    losses, norms = [], []
    for _ in range(worker.STEPS):
        with torch.no_grad():
            out = model(x)
            losses.append([torch.nn.functional.cross_entropy(out[r], y[r]).item()
                           for r in local_rows])
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5).item())
        opt.step()
    return model.state_dict(), losses, norms


@pytest.mark.parametrize("scenario", ["fsdp", "tp"])
def test_sharded_training_over_processes_equals_single_process(two, scenario):
    torch = pytest.importorskip("torch")
    ranks = [res[scenario] for res in two]
    x, y = worker.global_batch(2, seed={"fsdp": 2, "tp": 3}[scenario])
    n = worker.LOCAL_BATCH
    # FSDP: each rank's loss is over its own rows; TP: every rank sees the whole batch
    rows = [slice(r * n, (r + 1) * n) for r in range(2)] if scenario == "fsdp" \
        else [slice(None)] * 2
    final, losses, norms = _torch_sharded_reference(torch, ranks[0]["start"], x, y, rows)
    for r, res in enumerate(ranks):
        assert res["start"] == ranks[0]["start"]  # full_tensor(): the same whole on every rank
        np.testing.assert_allclose(res["local_losses"], [step[r] for step in losses],
                                   rtol=1e-5)
        # the gradients before clipping: the global batch's (AdamW and clipping would hide a
        # scale in the final state)
        np.testing.assert_allclose(res["grad_norms"], norms, rtol=1e-5)
        for k, v in final.items():
            np.testing.assert_allclose(res["final"][k], v.numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{k} on rank {r}")
        assert res["out_local"]  # the model's output is this process's tensor, as PyTorch's
        assert res["out_shape"] == ([n, 3] if scenario == "fsdp" else [2 * n, 3])


@pytest.mark.parametrize("scenario", ["fsdp", "tp"])
def test_sharded_training_over_processes_leaves_each_process_its_shards(two, scenario):
    halves = {"0.weight": [[4, 6]], "0.bias": [[4]], "2.weight": [[3, 4]], "2.bias": [[3]]}
    placements = {"0.weight": "(Shard(dim=0),)", "0.bias": "(Shard(dim=0),)",
                  "2.weight": "(Shard(dim=1),)", "2.bias": "(Replicate(),)"}
    for res in two:  # (FSDP: 2.weight's dim 0 of 3 does not split, so dim 1 is sharded)
        got = res[scenario]
        assert got["placements"] == placements
        assert got["param_shards"] == halves  # one device per process: its half
        assert got["grad_shards"] == halves  # gradients laid out as their parameters
        assert got["exp_avg_shards"] == halves  # and so is AdamW's state


def test_fully_shard_over_processes_takes_each_rank_its_shard_of_its_own_copy(two):
    # as FSDP2: rank r's devices keep rows 4r..4r+3 of rank r's weight, which nothing checks
    own = [np.asarray(res["fsdp"]["own_weight"]) for res in two]
    assert not np.allclose(own[0], own[1])
    for res in two:
        np.testing.assert_array_equal(res["fsdp"]["sharded_weight"],
                                      np.concatenate([own[0][:4], own[1][4:]]))


@pytest.mark.parametrize("scenario", ["fsdp", "tp"])
def test_sharded_over_processes_refuses_compiled_steps_and_numpy(two, scenario):
    for res in two:
        got = res[scenario]
        assert got["compiled_error"].startswith("fully_shard and parallelize_module over a mesh "
                                                "spanning several processes run in uncompiled "
                                                "steps only")
        assert "this process holds only its shards" in got["numpy_error"]
        assert ".full_tensor()" in got["numpy_error"]


# -- in this process ---------------------------------------------------------------------------------

@pytest.fixture
def world_of_one():
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:1", rank=0, world_size=1,
                            timeout=datetime.timedelta(seconds=5))
    yield
    dist.destroy_process_group()


def test_before_init_process_group():
    assert dist.is_available() and not dist.is_initialized()
    for fn in (dist.get_rank, dist.get_world_size, dist.barrier):
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            fn()
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        dist.all_reduce(tg.ones(2))
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))


def test_init_process_group_arguments(monkeypatch):
    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="using env:// rendezvous: environment variable RANK "
                                         "expected, but not set"):
        dist.init_process_group("gloo")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="environment variable WORLD_SIZE expected"):
        dist.init_process_group()
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(ValueError, match="environment variable MASTER_ADDR expected"):
        dist.init_process_group()
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "1")
    with pytest.raises(ValueError, match="Invalid backend: 'mpi'"):
        dist.init_process_group("mpi")
    monkeypatch.setenv("WORLD_SIZE", "2")  # JAX has started its devices in this process
    with pytest.raises(RuntimeError, match="must run before any tensor is computed"):
        dist.init_process_group()
    monkeypatch.delenv("RANK")
    with pytest.raises(ValueError, match="rank parameter missing"):
        dist.init_process_group(init_method="tcp://127.0.0.1:1", world_size=2)
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        dist.init_process_group(init_method="tcp://127.0.0.1:1", world_size=2, rank=2)
    with pytest.raises(ValueError, match="not supported"):
        dist.init_process_group(init_method="file:///tmp/x", world_size=1, rank=0)
    assert not dist.is_initialized()


@pytest.mark.parametrize("backend, name", [
    (None, "undefined"), ("GLOO", "gloo"), ("nccl", "nccl"),
    ("cpu:gloo,cuda:nccl", "cpu:gloo,cuda:nccl")])
def test_every_backend_runs_jaxs_collectives(backend, name):
    dist.init_process_group(backend, init_method="tcp://127.0.0.1:1", rank=0, world_size=1)
    try:
        assert dist.get_backend() == name  # PyTorch's name for the same arguments
        t = tg.tensor([1.0, 2.0])
        dist.all_reduce(t)
        assert t.tolist() == [1.0, 2.0]
    finally:
        dist.destroy_process_group()


def test_backend_names_are_pytorchs():
    pytest.importorskip("torch")
    import torch.distributed as torch_dist
    for backend in (None, "GLOO", "gloo"):  # (a CPU-only PyTorch refuses "nccl")
        torch_dist.init_process_group(backend, init_method="tcp://127.0.0.1:29617", rank=0,
                                      world_size=1)
        theirs = torch_dist.get_backend()
        torch_dist.destroy_process_group()
        dist.init_process_group(backend, init_method="tcp://127.0.0.1:1", rank=0, world_size=1)
        assert dist.get_backend() == theirs, backend
        dist.destroy_process_group()


def test_world_of_one(world_of_one):
    assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
    assert dist.get_backend() == "gloo" and dist.group.WORLD is not None
    with pytest.raises(ValueError, match="twice"):
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:1", rank=0, world_size=1)
    t = tg.tensor([1.0, 2.0])
    alias = t.view(2)
    version = t._cell.version
    assert dist.all_reduce(t, op=dist.ReduceOp.AVG) is None
    assert t.tolist() == [1.0, 2.0] and alias.tolist() == [1.0, 2.0]
    assert t._cell.version == version + 1  # written in place, as c10d does
    work = dist.all_reduce(t, async_op=True)
    assert work.wait() and work.is_completed()
    out = [tg.zeros(2)]
    dist.all_gather(out, t)
    assert out[0].tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="must be a list of world_size=1 tensors, got 2"):
        dist.all_gather([tg.zeros(2), tg.zeros(2)], t)
    with pytest.raises(RuntimeError, match="AVG needs floating point"):
        dist.all_reduce(tg.tensor([1, 2]), op=dist.ReduceOp.AVG)
    with pytest.raises(ValueError, match="output tensor size must be equal to world_size"):
        dist.all_gather_into_tensor(tg.zeros(3), t)
    dist.barrier()


def test_ddp_in_a_world_of_one_equals_plain_training(world_of_one):
    tg.manual_seed(0)
    plain = nn.Linear(3, 2)
    tg.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(nn.Linear(3, 2))
    assert isinstance(model.module, nn.Linear)
    x = tg.randn(4, 3)
    for m in (plain, model):
        m(x).pow(2).sum().backward()
    assert np.array_equal(plain.weight.grad.numpy(), model.module.weight.grad.numpy())
    with pytest.raises(ValueError, match="device_ids and output_device arguments only work"):
        nn.parallel.DistributedDataParallel(nn.Linear(3, 2), device_ids=[0])
    frozen = nn.Linear(3, 2).requires_grad_(False)
    with pytest.raises(RuntimeError, match="DistributedDataParallel is not needed"):
        nn.parallel.DistributedDataParallel(frozen)


def test_compiled_ddp_in_a_world_of_one_equals_plain_training(world_of_one):
    def trained(wrap, compiled):
        tg.manual_seed(0)
        inner = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
        model = wrap(inner)  # (DDP broadcasts the BatchNorm's buffers inside the program)
        opt = tg.optim.SGD(model.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad()
            loss = model(x).pow(2).sum()
            loss.backward()
            opt.step()
            return loss

        step = tg.compile(step) if compiled else step
        losses = [step(tg.arange(12.0).reshape(4, 3) / 10).item() for _ in range(4)]
        return losses, [v.numpy() for v in inner.state_dict().values()], step

    losses, state, step = trained(nn.parallel.DistributedDataParallel, compiled=True)
    plain_losses, plain_state, _ = trained(lambda m: m, compiled=False)
    assert step.traces == 1
    np.testing.assert_allclose(losses, plain_losses, rtol=1e-6)
    for ours, theirs in zip(state, plain_state):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_compiled_step_with_no_sync_inside_compiles_once(world_of_one):
    model = nn.parallel.DistributedDataParallel(nn.Linear(3, 1))

    @tg.compile
    def accumulate(x):  # no_sync entered in the step: the step begins synchronised each call
        with model.no_sync():
            model(x).sum().backward()

    x = tg.ones(2, 3)
    for _ in range(6):  # (a step learned again would trace at the 3rd and the 6th call)
        accumulate(x)
    assert accumulate.traces == 1 and model.require_backward_grad_sync
    np.testing.assert_allclose(model.module.bias.grad.numpy(), [12.0])  # 6 backward passes of 2


def test_ddp_refuses_other_traces_and_unused_parameters_when_compiled(world_of_one):
    model = nn.parallel.DistributedDataParallel(nn.Linear(3, 1))
    with pytest.raises(RuntimeError, match="not inside another JAX trace"):
        jax.jit(lambda x: model(tg.tensor(x)).sum().backward())(jnp.ones((2, 3)))

    class Branches(nn.Module):  # (the worker's) b unused on this rank
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(3, 1), nn.Linear(3, 1)

        def forward(self, x):
            return self.a(x)

    ddp = nn.parallel.DistributedDataParallel(Branches(), find_unused_parameters=True)

    @tg.compile
    def step(x):
        loss = ddp(x).sum()
        loss.backward()
        return loss

    x = tg.ones(2, 3)
    step(x)
    step(x)  # eager: allowed with find_unused_parameters=True
    with pytest.raises(RuntimeError, match=r"parameters \[2, 3\] received no gradient on rank 0"):
        step(x)


# -- DistributedSampler --------------------------------------------------------------------------------

@pytest.mark.parametrize("n, replicas, shuffle, drop_last, seed", [
    (10, 3, True, False, 0), (10, 3, True, True, 5), (7, 4, False, False, 0),
    (1797, 4, True, False, 42), (5, 8, True, False, 1), (3, 2, True, False, -1)])
def test_distributed_sampler_is_pytorchs_partition(n, replicas, shuffle, drop_last, seed):
    torch = pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler as TorchSampler
    for rank in range(replicas):
        ours = tg.utils.data.DistributedSampler(range(n), replicas, rank, shuffle, seed,
                                                drop_last)
        theirs = TorchSampler(range(n), replicas, rank, shuffle, seed, drop_last)
        assert len(ours) == len(theirs)
        for epoch in (0, 1, 7):
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs)


def test_distributed_sampler_errors_and_defaults(world_of_one):
    with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 1\]"):
        tg.utils.data.DistributedSampler(range(4), num_replicas=2, rank=3)
    sampler = tg.utils.data.DistributedSampler(range(5), shuffle=False)  # from the group
    assert (sampler.num_replicas, sampler.rank, list(sampler)) == (1, 0, [0, 1, 2, 3, 4])


# -- the launcher ---------------------------------------------------------------------------------------

def test_launcher_sets_torchrun_variables_and_stops_on_failure(tmp_path):
    script = tmp_path / "show.py"
    script.write_text(
        "import json, os, sys, time\n"
        "keys = ['RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR']\n"
        "open(sys.argv[1] + os.environ['RANK'], 'w').write(json.dumps(\n"
        "    {k: os.environ[k] for k in keys} | {'port': os.environ['MASTER_PORT']}))\n"
        "if sys.argv[2] == 'fail':\n"
        "    sys.exit(3) if os.environ['RANK'] == '1' else time.sleep(60)\n")
    env = dict(os.environ, PYTHONPATH=SRC)
    run = [sys.executable, "-m", "tapegrad.distributed.run", "--nproc-per-node", "3",
           str(script), str(tmp_path / "env")]
    assert subprocess.run(run + ["ok"], env=env, timeout=60).returncode == 0
    seen = [json.loads((tmp_path / f"env{r}").read_text()) for r in range(3)]
    assert [s["RANK"] for s in seen] == ["0", "1", "2"] == [s["LOCAL_RANK"] for s in seen]
    assert {s["WORLD_SIZE"] for s in seen} == {"3"} == {s["LOCAL_WORLD_SIZE"] for s in seen}
    assert len({s["port"] for s in seen}) == 1 and seen[0]["MASTER_ADDR"] == "127.0.0.1"
    failed = subprocess.run(run + ["fail"], env=env, timeout=60, capture_output=True, text=True)
    assert failed.returncode == 3
    assert "local rank 1" in failed.stderr and "exited with code 3" in failed.stderr


def _accuracy(line: str) -> float:
    return float(line.split(": ")[1].split("%")[0])


# (compiled steps draw other dropout masks than eager ones: after 5 epochs that run ends under
# the example's own 95% bar, after 8 above it)
for _flags in ([], ["--compile"]):
    launches.add(f"ddp_example{''.join(_flags)}", **example_launch(
        "-m", "tapegrad.distributed.run", "--nproc-per-node", "2", "ddp.py",
        "--epochs", "8" if _flags else "5", *_flags), users=(DDP_EXAMPLE,))


@pytest.mark.parametrize("flags, epochs", [("", "5"), ("--compile", "8")])
def test_ddp_example_launched_as_the_readme_shows(flags, epochs):
    pytest.importorskip("sklearn")
    _, single = example_output(launches.result(f"digits_{epochs}_epochs"))
    out, ddp = example_output(launches.result(f"ddp_example{flags}"))
    assert "(mean of 2 ranks)" in out and "(2 processes)" in out
    # each rank draws its own sample order and dropout masks: close to one device, not equal
    assert abs(_accuracy(ddp) - _accuracy(single)) <= 2.0
