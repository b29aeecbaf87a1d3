"""FSDP on 8 host devices: step time and per-device memory of `fully_shard` against the
unsharded model (one device) and `nn.DataParallel` (parameters replicated on 8).

    python benchmarks/fsdp.py            # 8 XLA host devices on a CPU
    python benchmarks/fsdp.py --quick

The MLP 784-1024-1024-10 (batch 512, AdamW) under `tapegrad.compile` and eager. Memory is what
device 0 holds of the parameters and of AdamW's state (its addressable shards: exact bytes, not
an allocator's figure). The contenders take turns, a few steps each, so that the machine's
drift falls on all of them alike; each figure is the median over all its timed steps (the loss
read back), after warm-up, with the spread of the rounds' medians.
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
from tapegrad.distributed.fsdp import fully_shard  # noqa: E402

WRAPS = {"unsharded, 1 device": lambda m: m,
         "DataParallel, 8 devices": lambda m: tg.nn.DataParallel(m),
         "fully_shard, 8 devices": lambda m: fully_shard(m)}


def contender(wrap, compiled: bool, batch: int):
    """(step, x, y, optimizer, parameters) of the MLP under `wrap`, warmed up."""
    step, x, y, opt, model = models.mlp_training(tg, wrap, compiled, batch, "AdamW")
    for _ in range(4):
        step(x, y).item()
    return step, x, y, opt, list(model.parameters())


def bytes_on(device, tensors) -> int:
    return sum(s.data.nbytes for t in tensors for s in t.jax().addressable_shards
               if s.device == device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    devices = jax.local_devices()
    print(f"{len(devices)} devices ({devices[0].platform}), {os.cpu_count()} cores; MLP "
          f"784-1024-1024-10, batch {args.batch}, AdamW\n")
    print("| model | mode | step (median) | spread of round medians | params on device 0 | "
          "AdamW state on device 0 |")
    print("|---|---|---|---|---|---|")
    for compiled in (True, False):
        runs = {name: contender(wrap, compiled, args.batch) for name, wrap in WRAPS.items()}
        times: dict = {name: [] for name in runs}
        for _ in range(rounds):
            for name, (step, x, y, _, _) in runs.items():
                for _ in range(args.steps):
                    t0 = time.perf_counter()
                    step(x, y).item()
                    times[name].append(time.perf_counter() - t0)
        for name, (_, _, _, opt, params) in runs.items():
            ts = times[name]
            medians = [statistics.median(ts[i:i + args.steps]) * 1e3
                       for i in range(0, len(ts), args.steps)]
            state = [v for p in params for v in opt.state[p].values()
                     if isinstance(v, tg.Tensor) and v.ndim > 0]
            print(f"| {name} | {'compile' if compiled else 'eager'} | "
                  f"{statistics.median(ts) * 1e3:.1f} ms | {min(medians):.1f}-{max(medians):.1f} ms"
                  f" | {bytes_on(devices[0], params) / 2**20:.2f} MiB | "
                  f"{bytes_on(devices[0], state) / 2**20:.2f} MiB |", flush=True)


if __name__ == "__main__":
    main()
