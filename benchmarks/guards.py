"""What `tapegrad.compile`'s guards cost per call: `_Guards.hold()` for steps that name a model
and optimizer, a config object, and containers of numbers, tensors and config objects.

    python benchmarks/guards.py            # medians and spread of 5 rounds, 1000 calls each
"""
import statistics
import time
import types

import tapegrad as tg
from tapegrad._step_compile import _Guards


def _cases() -> dict:
    model = tg.nn.Sequential(*[m for _ in range(8) for m in (tg.nn.Linear(32, 32), tg.nn.ReLU())],
                             tg.nn.Linear(32, 1))
    opt = tg.optim.Adam(model.parameters())
    cfg = types.SimpleNamespace(lr=0.1, train=types.SimpleNamespace(scale=1.0))
    numbers = [1.0] * 1000
    tensors = [tg.ones(2) for _ in range(1000)]
    configs = [types.SimpleNamespace(scale=1.0) for _ in range(100)]

    def mlp_step(x):
        opt.zero_grad()
        return model(x).sum() * cfg.train.scale

    return {
        "MLP + Adam + config": mlp_step,
        "1000 numbers": lambda i: numbers[i],
        "1000 tensors": lambda i: tensors[i],
        "100 config objects (cfgs[i].scale)": lambda i: configs[i].scale,
    }


def main(rounds: int = 5, calls: int = 1000) -> None:
    print(f"{'step names':38s} {'hold() µs, median':>18s}  spread")
    for name, fn in _cases().items():
        guards = _Guards(fn)
        assert guards.hold()
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(calls):
                guards.hold()
            times.append((time.perf_counter() - t0) / calls * 1e6)
        print(f"{name:38s} {statistics.median(times):18.1f}  {min(times):.1f}-{max(times):.1f}")


if __name__ == "__main__":
    main()
