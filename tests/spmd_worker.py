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
                plan = next(iter(step._plans.values()))
                hlo = plan._jitted.lower(*plan.arguments(list(tensors[0]))).compile().as_text()
                out[name]["hlo_all_reduce"] = hlo.count("all-reduce(")
    return out


SCENARIOS = {"dp": data_parallel}


def main() -> None:
    import tapegrad as T
    assert len(jax.devices()) == 8, jax.devices()
    path, names = sys.argv[1], sys.argv[2:]
    Path(path).write_text(json.dumps({name: SCENARIOS[name](T) for name in names}))


if __name__ == "__main__":
    main()
