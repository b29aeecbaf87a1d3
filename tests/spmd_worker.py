"""The many-device tests' process (tests/test_spmd.py runs it with 8 XLA host devices, which the
rest of the suite does not have): it trains with the SPMD wrappers and writes what it saw to a
JSON file; the test compares that with PyTorch on one device.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python spmd_worker.py OUT.json dp
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import models  # noqa: E402  (the benchmark models, written for torch and tapegrad alike)

STEPS = 4


def mlp(T):
    return models.mlp(T, [10, 32, 4])


def gpt(T):
    return models.gpt(T, vocab=10, context=8, width=16, heads=2, layers=1)


def batches(kind: str, ragged: bool = False) -> list:
    """The same numpy batches here and in the test: MLP rows, or GPT token windows."""
    rng = np.random.default_rng(0)
    sizes = [32] * STEPS + ([28] if ragged else [])  # 28: not split over 8 devices
    if kind == "mlp":
        return [(rng.standard_normal((n, 10)).astype(np.float32), rng.integers(0, 4, n))
                for n in sizes]
    return [(rng.integers(0, 10, (n // 2, 8)), rng.integers(0, 10, (n // 2, 8))) for n in sizes]


def train(T, model, data, compiled: bool = False):
    """AdamW with clip_grad_norm_, one step per batch; the losses and the step."""
    opt = T.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.05)
    step = models.classifier_step(T, model, opt, clip=0.5)
    if compiled:
        step = T.compile(step)
    tensors = [(T.tensor(x), T.tensor(y)) for x, y in data]
    return [step(x, y).item() for x, y in tensors], step, tensors


def state(model) -> dict:
    return {k: v.detach().numpy().tolist() for k, v in model.state_dict().items()}


def data_parallel(T) -> dict:
    out = {}
    for kind, make in (("mlp", mlp), ("gpt", gpt)):
        for compiled in (False, True):
            T.manual_seed(0)
            inner = make(T)
            start = state(inner)
            model = T.nn.DataParallel(inner)
            seen = []
            inner.register_forward_pre_hook(lambda m, args: seen.append(
                [list(s.data.shape) for s in args[0].jax().addressable_shards])
                if not isinstance(args[0].jax(), jax.core.Tracer) else None)
            data = batches(kind, ragged=not compiled)
            losses, step, tensors = train(T, model, data, compiled)
            name = f"{kind}_{'compiled' if compiled else 'eager'}"
            out[name] = {"start": start, "final": state(inner), "losses": losses,
                         "input_shards": seen[0], "ragged_shards": seen[-1],
                         "keys": list(model.state_dict())[:2],
                         "param_sharding": str(inner.state_dict()[list(start)[0]].jax().sharding
                                               .spec)}
            if compiled:
                out[name]["hlo_all_reduce"] = _compiled_hlo(step, tensors).count("all-reduce(")
    return out


def _collectives(hlo: str) -> int:
    return sum(hlo.count(c) for c in ("all-reduce(", "all-gather(", "reduce-scatter(",
                                      "all-to-all("))


def _compiled_hlo(step, tensors) -> str:
    """The compiled step's program text, lowered for the first batch."""
    plan = next(iter(step._plans.values()))
    return plan._jitted.lower(*plan.arguments(list(tensors[0]))).compile().as_text()


def _shards(t) -> list:
    return [list(s.data.shape) for s in t.jax().addressable_shards]


def dtensor(T) -> dict:
    """DTensor on a 2x4 mesh: placements, shards, to_local, redistribute, gradients, HLO."""
    from tapegrad.distributed.device_mesh import init_device_mesh
    from tapegrad.distributed.tensor import Replicate, Shard, distribute_tensor
    mesh = init_device_mesh("cpu", (2, 4), mesh_dim_names=("dp", "tp"))
    x = T.arange(32.0).reshape(8, 4).requires_grad_()
    d = distribute_tensor(x, mesh, [Shard(0), Shard(1)])
    w = distribute_tensor(T.arange(12.0).reshape(4, 3) / 10, mesh, [Replicate(), Shard(0)])
    y = (d @ w / 50).tanh()  # unsaturated: 1 - tanh² is not float32 cancellation noise
    y.sum().backward()
    with jax.default_device(jax.devices()[5]):  # coordinate (1, 1)
        local5 = d.detach().to_local().numpy().tolist()
    r = d.redistribute(mesh, [Replicate(), Shard(0)])
    from tapegrad.distributed.tensor import DTensor
    z = T.arange(32.0).reshape(8, 4).requires_grad_()
    f = DTensor.from_local(z, mesh, [Shard(0), Shard(1)])  # one process: the whole tensor
    (f * f).sum().backward()
    try:
        DTensor.from_local(z, mesh, [Shard(0), Shard(1)], shape=(16, 4))
    except ValueError as e:
        from_local_shape_error = str(e)
    hlo = jax.jit(lambda a, b: jax.numpy.tanh(a @ b)).lower(d.jax(), w.jax()).compile().as_text()
    return {"mesh": [mesh.size(), mesh.ndim, list(mesh.mesh_dim_names), mesh["tp"].size(),
                     mesh["tp"].mesh.tolist(), mesh["dp"].mesh.tolist()],
            "placements": repr(d.placements), "shards": _shards(d), "spec": str(d.jax().sharding.spec),
            "local0": d.detach().to_local().numpy().tolist(), "local5": local5,
            "y": y.detach().numpy().tolist(), "grad": d.grad.numpy().tolist(),
            "grad_spec": str(d.grad.jax().sharding.spec),
            "from_local": [repr(f.placements), _shards(f), str(f.jax().sharding.spec),
                           f.detach().full_tensor().numpy().tolist(), z.grad.numpy().tolist(),
                           from_local_shape_error],
            "redistributed": [repr(r.placements), _shards(r), r.full_tensor().detach().numpy().tolist()],
            "hlo_collectives": _collectives(hlo)}


def _sharded_training(T, parallelize) -> dict:
    out = {}
    for kind, make, compiled in (("mlp", mlp, False), ("gpt", gpt, True)):
        T.manual_seed(0)
        model = make(T)
        start = state(model)
        parallelize(model)
        losses, step, tensors = train(T, model, batches(kind), compiled)
        params = dict(model.named_parameters())
        name = f"{kind}_{'compiled' if compiled else 'eager'}"
        out[name] = {"start": start, "final": state(model), "losses": losses,
                     "param_shards": {k: _shards(p) for k, p in params.items()},
                     "placements": {k: repr(p.placements) for k, p in params.items()},
                     "grad_specs": {k: [str(p.jax().sharding.spec), str(p.grad.jax().sharding.spec)]
                                    for k, p in params.items() if p.grad is not None}}
        if compiled:
            out[name]["hlo_collectives"] = _collectives(_compiled_hlo(step, tensors))
    return out


def fsdp(T) -> dict:
    from tapegrad.distributed.fsdp import FSDPModule, fully_shard
    seen = {}

    def shard(model):
        for m in model.children():
            if list(m.parameters()):
                fully_shard(m)
        fully_shard(model)
        seen[type(model).__name__] = isinstance(model, FSDPModule)
    out = _sharded_training(T, shard)
    out["is_fsdp_module"] = seen
    # the optimizer state: sharded as its parameter
    T.manual_seed(0)
    model = fully_shard(mlp(T))
    opt = T.optim.AdamW(model.parameters(), lr=0.01)
    x, y = batches("mlp")[0]
    T.nn.functional.cross_entropy(model(T.tensor(x)), T.tensor(y)).backward()
    opt.step()
    out["exp_avg_shards"] = [_shards(opt.state[p]["exp_avg"]) for p in model.parameters()]
    return out


def tensor_parallel(T) -> dict:
    from tapegrad.distributed.device_mesh import init_device_mesh
    from tapegrad.distributed.tensor.parallel import (ColwiseParallel, RowwiseParallel,
                                                      parallelize_module)
    mesh = init_device_mesh("cpu", (8,), mesh_dim_names=("tp",))

    def tp(model):
        if isinstance(model, T.nn.Sequential):
            plan = {"0": ColwiseParallel(), "2": RowwiseParallel()}
        else:
            plan = {"blocks.*.fc1": ColwiseParallel(), "blocks.*.fc2": RowwiseParallel()}
        parallelize_module(model, mesh, plan)
    return _sharded_training(T, tp)


def devices(T) -> dict:
    """Device indices over the 8 host devices; `tapegrad.cuda`'s mapping with the host devices
    standing in for GPUs (`jax.local_devices` lists GPUs the same way)."""
    from tapegrad._core import device as D

    def ids(t):
        return sorted(d.id for d in t.jax().devices())

    def error(f):
        try:
            f()
        except RuntimeError as e:
            return str(e)

    out = {"cpu3": ids(T.arange(4.0).to("cpu:3")),
           "cpu8": error(lambda: T.zeros(2).to("cpu:8"))}
    real = D.local_devices
    D.local_devices = lambda type: real("cpu" if type == "cuda" else type)
    try:
        T.cuda.set_device(5)
        out["current"], out["count"] = T.cuda.current_device(), T.cuda.device_count()
        out["made_on"], out["cuda2"] = ids(T.zeros(2)), ids(T.zeros(2, device="cuda:2"))
        out["cuda"] = ids(T.zeros(2).to("cuda"))  # no index: the current device
        out["to_cuda1"] = ids(T.zeros(2).to("cuda:1"))
        with T.cuda.device(1):
            out["inside"] = [T.cuda.current_device(), ids(T.ones(2))]
        out["after"] = T.cuda.current_device()
        out["set8"] = error(lambda: T.cuda.set_device(8))
    finally:
        D.local_devices = real
        jax.config.update("jax_default_device", None)
    return out


SCENARIOS = {"devices": devices, "dp": data_parallel, "dtensor": dtensor, "fsdp": fsdp, "tp": tensor_parallel}


def main() -> None:
    import tapegrad as T
    assert len(jax.devices()) == 8, jax.devices()
    path, names = sys.argv[1], sys.argv[2:]
    Path(path).write_text(json.dumps({name: SCENARIOS[name](T) for name in names}))


if __name__ == "__main__":
    main()
