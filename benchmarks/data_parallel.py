"""Step time of the data-parallel MLP on 1, 2, 4 and 8 devices (`nn.DataParallel`).

    python benchmarks/data_parallel.py            # 8 XLA host devices on a CPU
    python benchmarks/data_parallel.py --quick

The process gets 8 host devices (`--xla_force_host_platform_device_count=8`, set here before
JAX starts; on a GPU machine its GPUs are used instead) and trains the same MLP with
`nn.DataParallel(model, device_ids=range(k))`, eager and under `tapegrad.compile`, plus the plain
model on one device. Host devices share the machine's cores, so on a CPU there is no speed-up to
expect: the figures show what splitting costs (the SPMD program's collectives and per-device
dispatch). Each figure is the median of timed steps (the loss read back), after warm-up.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import host_devices  # noqa: E402,F401  (8 host devices, before JAX starts)

import jax  # noqa: E402

import models  # noqa: E402

import tapegrad as tg  # noqa: E402


def step_time(k: int | None, compiled: bool, batch: int, steps: int) -> float:
    """Median µs per training step; `k` devices under DataParallel, None: the plain model."""
    wrap = (lambda m: m) if k is None else (
        lambda m: tg.nn.DataParallel(m, device_ids=list(range(k))))
    step, x, y, _, _ = models.mlp_training(tg, wrap, compiled, batch)
    for _ in range(5):
        step(x, y).item()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step(x, y).item()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    steps = 10 if args.quick else args.steps
    devices = jax.local_devices()
    print(f"{len(devices)} devices ({devices[0].platform}, {devices[0].device_kind}), "
          f"{os.cpu_count()} cores; MLP 784-1024-1024-10, batch {args.batch}, Adam\n")
    print("| devices | eager | compile | eager / 1 device | compile / 1 device |")
    print("|---|---|---|---|---|")
    base = {c: step_time(None, c, args.batch, steps) for c in (False, True)}
    print(f"| 1, plain model | {base[False]:.0f} µs | {base[True]:.0f} µs | 1.00× | 1.00× |")
    for k in (1, 2, 4, 8):
        if k > len(devices):
            break
        eager, comp = (step_time(k, c, args.batch, steps) for c in (False, True))
        print(f"| {k}, DataParallel | {eager:.0f} µs | {comp:.0f} µs | "
              f"{eager / base[False]:.2f}× | {comp / base[True]:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
