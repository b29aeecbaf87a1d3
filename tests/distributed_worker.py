"""One rank of the multi-process tests (tests/test_distributed.py launches it with
`python -m tapegrad.distributed.run`). It runs a scenario and writes what it saw to
`OUT/rank<r>.json`; the test compares that with references computed in its own process.

    python -m tapegrad.distributed.run --nproc-per-node 2 distributed_worker.py OUT ddp no_sync
"""
from __future__ import annotations

import datetime
import json
import sys

import numpy as np

import spmd_worker  # (its GPT, batches and training step)
import tapegrad as torch
import tapegrad.distributed as dist
from tapegrad import nn
from tapegrad.nn.parallel import DistributedDataParallel as DDP

LOCAL_BATCH, STEPS, COMPILED_STEPS = 4, 3, 5


def global_batch(world: int, seed: int = 0):
    """The same global batch on every rank and in the test (rank r takes its rows)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((world * LOCAL_BATCH, 6)).astype(np.float32)
    y = rng.integers(0, 3, world * LOCAL_BATCH)
    return x, y


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def params_of(model) -> dict:
    return {k: v.detach().numpy().tolist() for k, v in model.state_dict().items()}


def collectives(rank: int, world: int) -> dict:
    out = {}
    t = torch.tensor([1.0, -2.0, 3.0]) * (rank + 1)
    dist.all_reduce(t)
    out["sum"] = t.tolist()
    for op in ("AVG", "MAX", "MIN", "PRODUCT"):
        t = torch.tensor([1.0, -2.0, 3.0]) * (rank + 1)
        dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
        out[op] = t.tolist()
    t = torch.tensor([5, 6], dtype=torch.int64) * (rank + 1)
    dist.all_reduce(t, op=dist.ReduceOp.BXOR)
    out["bxor"] = t.tolist()
    t = torch.tensor([0.5, 1.5], dtype=torch.float64) + rank
    dist.all_reduce(t)
    out["sum64"], out["dtype64"] = t.tolist(), str(t.dtype)
    t = torch.arange(4.0) + 10 * rank
    dist.broadcast(t, src=world - 1)
    out["broadcast"] = t.tolist()
    parts = [torch.zeros(2) for _ in range(world)]
    dist.all_gather(parts, torch.tensor([rank, -rank], dtype=torch.float32))
    out["all_gather"] = [p.tolist() for p in parts]
    flat = torch.zeros(2 * world)
    dist.all_gather_into_tensor(flat, torch.tensor([rank, -rank], dtype=torch.float32))
    out["all_gather_into_tensor"] = flat.tolist()
    chunk = torch.zeros(2)
    dist.reduce_scatter_tensor(chunk, torch.arange(2.0 * world) * (rank + 1))
    out["reduce_scatter_tensor"] = chunk.tolist()
    stacked = torch.zeros(world, 2)  # the stacked forms: (world, *shape)
    dist.all_gather_into_tensor(stacked, torch.tensor([rank, -rank], dtype=torch.float32))
    out["all_gather_stacked"] = stacked.tolist()
    dist.reduce_scatter_tensor(chunk, (torch.arange(2.0 * world) * (rank + 1)).reshape(world, 2))
    out["reduce_scatter_stacked"] = chunk.tolist()
    mine = torch.zeros(3)
    dist.scatter(mine, [torch.full((3,), float(i * i)) for i in range(world)]
                 if rank == 0 else None, src=0)
    out["scatter"] = mine.tolist()
    gathered = [torch.zeros(()) for _ in range(world)] if rank == 1 else None
    dist.gather(torch.tensor(float(rank) + 0.5), gathered, dst=1)
    out["gather"] = [g.item() for g in gathered] if gathered else None
    t = torch.tensor([float(rank)])
    dist.reduce(t, dst=0)
    out["reduce"] = t.tolist()
    base = torch.zeros(2, 3)  # a view is written through its base
    dist.all_reduce(base[1].fill_(1.0))
    out["view"] = base.tolist()
    dist.barrier()
    return out


def ddp_training(rank: int, world: int, compiled: bool = False) -> dict:
    """DDP + AdamW + clip_grad_norm_: ranks start from different weights (DDP broadcasts rank
    0's), each trains on its rows of the global batch; `compiled`: under tapegrad.compile (two
    eager steps, then compiled ones)."""
    torch.manual_seed(rank)
    model = DDP(mlp())
    start = params_of(model.module)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    x, y = global_batch(world)
    rows = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
    xs, ys = torch.tensor(x[rows]), torch.tensor(y[rows])

    def step(xs, ys):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xs), ys)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        return loss

    if compiled:
        step = torch.compile(step)
    losses = [step(xs, ys).item() for _ in range(COMPILED_STEPS if compiled else STEPS)]
    out = {"start": start, "final": params_of(model.module), "local_losses": losses,
           "keys": list(model.state_dict())}
    if compiled:
        out["traces"] = step.traces  # (before lowering, which traces again)
        plan = next(iter(step._plans.values()))
        hlo = plan._jitted.lower(*plan.arguments([xs, ys])).compile().as_text()
        out["hlo_all_reduce"] = hlo.count("all-reduce(")
    return out


def ddp_gpt_compiled(rank: int, world: int) -> dict:
    """The GPT of benchmarks/models.py under DDP in compiled steps (spmd_worker's AdamW +
    clip_grad_norm_ step): rank r trains on its rows of spmd_worker's batches."""
    torch.manual_seed(0)
    inner = spmd_worker.gpt(torch)
    start = params_of(inner)
    data = [(x[rows], y[rows]) for x, y in spmd_worker.batches("gpt")
            for rows in [np.array_split(np.arange(len(x)), world)[rank]]]
    losses, step, _ = spmd_worker.train(torch, DDP(inner), data, compiled=True)
    return {"start": start, "final": params_of(inner), "local_losses": losses,
            "traces": step.traces}


def ddp_no_sync(rank: int, world: int) -> dict:
    """Two micro-batches: one under no_sync, one synchronised; the gradient is the big batch's."""
    torch.manual_seed(0)
    model = DDP(mlp())
    x, y = global_batch(world, seed=1)
    half = LOCAL_BATCH // 2
    rows = np.arange(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
    with model.no_sync():
        first = rows[:half]
        (nn.functional.cross_entropy(model(torch.tensor(x[first])), torch.tensor(y[first]))
         / 2).backward()
    local_after_no_sync = [p.grad.tolist() for p in model.parameters()]
    second = rows[half:]
    (nn.functional.cross_entropy(model(torch.tensor(x[second])), torch.tensor(y[second]))
     / 2).backward()
    return {"start": params_of(model.module), "local_after_no_sync": local_after_no_sync,
            "grads": [p.grad.tolist() for p in model.parameters()]}


def ddp_no_sync_compiled(rank: int, world: int) -> dict:
    """ddp_no_sync with one compiled step: compiled synchronised first, then called under
    no_sync (learned again: the micro-batch's gradient stays local), then synchronised."""
    torch.manual_seed(0)
    model = DDP(mlp())
    x, y = global_batch(world, seed=1)
    half = LOCAL_BATCH // 2
    rows = np.arange(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
    first, second = [(torch.tensor(x[r]), torch.tensor(y[r])) for r in (rows[:half], rows[half:])]

    @torch.compile
    def step(xs, ys):
        (nn.functional.cross_entropy(model(xs), ys) / 2).backward()

    for _ in range(3):  # two eager runs, then the compiled synchronised step
        model.zero_grad()
        step(*second)
    traces = step.traces
    model.zero_grad()
    with model.no_sync():
        step(*first)
    local_after_no_sync = [p.grad.tolist() for p in model.parameters()]
    step(*second)
    return {"start": params_of(model.module), "local_after_no_sync": local_after_no_sync,
            "grads": [p.grad.tolist() for p in model.parameters()], "traces": traces}


class Branches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 1)
        self.b = nn.Linear(3, 1)

    def forward(self, x, use_b: bool):
        return self.a(x) + (self.b(x) if use_b else 0.0)


def ddp_unused(rank: int, world: int) -> dict:
    """Rank 0 uses branch b, the others do not; a third layer nobody uses keeps grad None."""
    torch.manual_seed(0)
    model = Branches()
    model.c = nn.Linear(2, 2)
    ddp = DDP(model, find_unused_parameters=True)
    x = torch.ones(2, 3) * (rank + 1)
    ddp(x, rank == 0).sum().backward()
    out = {"a": model.a.weight.grad.tolist(), "b": model.b.weight.grad.tolist(),
           "c_is_none": model.c.weight.grad is None, "start": params_of(model)}
    strict = DDP(Branches())  # find_unused_parameters=False: the next forward raises
    strict(x, False).sum().backward()
    try:
        strict(x, False)
    except RuntimeError as e:
        out["strict_error"] = str(e)
    return out


def mismatches(rank: int, world: int) -> dict:
    out = {}
    try:
        dist.all_reduce(torch.ones(3 + rank))
    except RuntimeError as e:
        out["shape"] = str(e)
    try:
        if rank == 0:
            dist.all_reduce(torch.ones(2))
        else:
            dist.broadcast(torch.ones(2), src=0)
    except RuntimeError as e:
        out["kind"] = str(e)
    if rank == 0:  # the others skip it: rank 0 times out
        try:
            dist.all_reduce(torch.ones(1))
        except dist.DistBackendError as e:
            out["timeout"] = str(e)
    dist.barrier(timeout=datetime.timedelta(seconds=60))  # the others wait for it here
    return out


def dtensor_gradients(torch, DTensor, Replicate, Shard, mesh, rank: int, world: int) -> dict:
    """Gradients through `from_local`/`to_local` over the processes, with `torch` either
    tapegrad or PyTorch (`dtensor_torch_worker.py` runs it under PyTorch's DTensor)."""
    local = torch.arange(6.0).reshape(2, 3) + 10 * rank
    out = {}
    # gradients through from_local: each process's local leaf gets its shard of the gradient
    # (sums across the processes' shards, squared: every process's gradient reads them all)
    for key, placement in (("grad_rows", Shard(0)), ("grad_cols", Shard(1))):
        x = local.clone().requires_grad_()
        d = DTensor.from_local(x, mesh, [placement])
        (d.sum(dim=placement.dim) ** 2).sum().backward()
        out[key] = x.grad.tolist()
    # rows (Shard(0)) times a replicated vector, squared and summed: the vector's gradient
    # reduces over the global rows, the same on every process
    x = local.clone().requires_grad_()
    v = torch.tensor([1.0, -2.0, 0.5]).requires_grad_()
    rows_g = DTensor.from_local(x, mesh, [Shard(0)])
    scale_g = DTensor.from_local(v, mesh, [Replicate()])
    ((rows_g * scale_g) ** 2).sum().backward()
    out["grad_scaled"] = [x.grad.tolist(), v.grad.tolist()]
    # to_local of a DTensor leaf: its gradient's shard here is the local gradient
    leaf = DTensor.from_local(local.detach(), mesh, [Shard(0)]).requires_grad_()
    (leaf.to_local() ** 3).sum().backward()
    g = leaf.grad  # PyTorch's is a DTensor; tapegrad's an ordinary tensor laid out as the leaf
    out["to_local_grad"] = (g.to_local() if isinstance(g, DTensor) else
                            np.asarray(g._value().addressable_shards[0].data)).tolist()
    # both ways: local leaf -> Shard(0) -> all-gathered (Replicate) -> local (the whole tensor
    # on every process) -> a loss; each process's gradient is its rows of the weights
    x = local.clone().requires_grad_()
    whole = DTensor.from_local(x, mesh, [Shard(0)]).redistribute(mesh, [Replicate()])
    (whole.to_local() * torch.arange(6.0 * world).reshape(2 * world, 3)).sum().backward()
    out["round_trip_grad"] = x.grad.tolist()
    return out


def dtensor(rank: int, world: int) -> dict:
    """DTensor over the processes (one device each): from_local's shards, to_local,
    full_tensor, an op, and gradients back to each process's local tensor."""
    from tapegrad.distributed.device_mesh import init_device_mesh
    from tapegrad.distributed.tensor import DTensor, Replicate, Shard
    mesh = init_device_mesh("cpu", (world,), mesh_dim_names=("dp",))
    local = torch.arange(6.0).reshape(2, 3) + 10 * rank
    rows = DTensor.from_local(local, mesh, [Shard(0)])
    cols = DTensor.from_local(local, mesh, [Shard(1)])
    scale = DTensor.from_local(torch.tensor([1.0, 2.0, 3.0]), mesh, [Replicate()])
    out = {"rows": [list(rows.shape), rows.to_local().tolist(), rows.full_tensor().tolist()],
           "cols": [list(cols.shape), cols.to_local().tolist(), cols.full_tensor().tolist()],
           "scaled_sum": (rows * scale).sum().item(),
           "coordinate": mesh.get_coordinate()}
    out.update(dtensor_gradients(torch, DTensor, Replicate, Shard, mesh, rank, world))
    return out


def _local_shapes(t) -> list:
    return [list(s.data.shape) for s in t.jax().addressable_shards]


def _sharded_training(model, xs, ys) -> dict:
    """AdamW + clip_grad_norm_ steps of a sharded `model` on this process's (xs, ys): what the
    test compares with PyTorch on the global batch, and how the state is laid out."""
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    params = dict(model.named_parameters())
    start = {k: p.full_tensor().tolist() for k, p in params.items()}

    def step(xs, ys):
        opt.zero_grad()
        out = model(xs)
        loss = nn.functional.cross_entropy(out, ys)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        return loss, out, norm

    losses, norms = [], []
    for _ in range(STEPS):
        loss, out, norm = step(xs, ys)
        losses.append(loss.item())
        norms.append(norm.item())
    result = {
        "start": start, "final": {k: p.full_tensor().tolist() for k, p in params.items()},
        "local_losses": losses, "grad_norms": norms, "out_shape": list(out.shape),
        "out_local": out.jax().is_fully_addressable,
        "placements": {k: repr(p.placements) for k, p in params.items()},
        "param_shards": {k: _local_shapes(p) for k, p in params.items()},
        "grad_shards": {k: _local_shapes(p.grad) for k, p in params.items()},
        "exp_avg_shards": {k: _local_shapes(opt.state[p]["exp_avg"]) for k, p in params.items()},
    }
    try:
        params["0.weight"].detach().numpy()
    except RuntimeError as e:
        result["numpy_error"] = str(e)
    compiled = torch.compile(step)
    try:
        for _ in range(3):  # two eager calls, then the traced one
            compiled(xs, ys)
    except RuntimeError as e:
        result["compiled_error"] = str(e)
    return result


def fsdp_training(rank: int, world: int) -> dict:
    """fully_shard over a 1-D mesh of the processes (one device each): each rank feeds its rows
    of the global batch; parameters, gradients and optimizer state are sharded."""
    from tapegrad.distributed.device_mesh import init_device_mesh
    from tapegrad.distributed.fsdp import fully_shard
    torch.manual_seed(0)  # the same weights on every rank (FSDP2 takes each rank's shard)
    model = mlp()
    mesh = init_device_mesh("cpu", (world,), mesh_dim_names=("dp",))
    for layer in (model[0], model[2]):
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    x, y = global_batch(world, seed=2)
    rows = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
    out = _sharded_training(model, torch.tensor(x[rows]), torch.tensor(y[rows]))
    torch.manual_seed(rank)  # each rank its own weights: each contributes its own shard
    layer = nn.Linear(6, 8)
    own = layer.weight.tolist()
    fully_shard(layer, mesh=mesh)
    out["own_weight"], out["sharded_weight"] = own, layer.weight.full_tensor().tolist()
    return out


def tp_training(rank: int, world: int) -> dict:
    """ColwiseParallel then RowwiseParallel Linear over a 1-D mesh of the processes, the same
    global batch on every rank."""
    from tapegrad.distributed.device_mesh import init_device_mesh
    from tapegrad.distributed.tensor.parallel import (ColwiseParallel, RowwiseParallel,
                                                      parallelize_module)
    torch.manual_seed(0)
    model = mlp()
    mesh = init_device_mesh("cpu", (world,), mesh_dim_names=("tp",))
    parallelize_module(model, mesh, {"0": ColwiseParallel(), "2": RowwiseParallel()})
    x, y = global_batch(world, seed=3)
    return _sharded_training(model, torch.tensor(x), torch.tensor(y))


SCENARIOS = {"dtensor": dtensor, "collectives": collectives, "ddp": ddp_training,
             "ddp_compiled": lambda rank, world: ddp_training(rank, world, compiled=True),
             "no_sync_compiled": ddp_no_sync_compiled, "gpt_compiled": ddp_gpt_compiled, "no_sync": ddp_no_sync,
             "unused": ddp_unused, "mismatch": mismatches, "fsdp": fsdp_training,
             "tp": tp_training}


def main() -> None:
    outdir, names = sys.argv[1], sys.argv[2:]
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=4))
    rank, world = dist.get_rank(), dist.get_world_size()
    result = {"rank": rank, "world": world}
    for name in names:
        result[name] = SCENARIOS[name](rank, world)
    dist.destroy_process_group()
    with open(f"{outdir}/rank{rank}.json", "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
