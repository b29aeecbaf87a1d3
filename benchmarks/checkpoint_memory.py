"""Activation checkpointing: the compiled backward program's memory with and without it.

A deep MLP (`--layers` blocks of Linear -> ReLU of width `--width`, batch `--batch`) runs its
backward three ways: plain, each block under `checkpoint`, and `checkpoint_sequential` with
`--segments` segments. For each, the backward program that `loss.backward()` compiles (the
forward recomputed, the vjp, the `.grad` accumulation: one XLA program) is lowered again with
the same arguments and its `memory_analysis()` printed: temp_size_in_bytes is the working
memory XLA assigns beyond the arguments and results, which is where the saved activations
live; its results hold the gradients and the values the program keeps for live tensors. Also
the median time of a training step (forward, backward, SGD).

    python benchmarks/checkpoint_memory.py --layers 32 --width 256 --batch 2048 --segments 4
"""
from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

import tapegrad as torch
from tapegrad._core.compile import cache
from tapegrad.utils.checkpoint import checkpoint, checkpoint_sequential


def backward_memory(loss) -> jax.stages.CompiledMemoryStats:
    """`loss.backward()`, and the memory statistics of the program it ran (its last one)."""
    calls = []
    get = cache.get

    def spy(key, build, op_by_op=False):  # a whole program, to read its memory
        program = get(key, build)
        if key[0] != "segment":
            return program

        def call(*args):
            calls.append((program, args))
            return program(*args)
        return call
    cache.get = spy
    try:
        loss.backward()
    finally:
        del cache.get
    program, args = calls[-1]
    with jax.enable_x64(True):
        return program.lower(*args).compile().memory_analysis()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--segments", type=int, default=4)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    torch.autograd.set_compile_threshold(1)  # the compiled tier at once: the one measured

    torch.manual_seed(0)
    blocks = [torch.nn.Sequential(torch.nn.Linear(args.width, args.width), torch.nn.ReLU())
              for _ in range(args.layers)]
    model = torch.nn.Sequential(*blocks)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(args.batch, args.width)

    def plain():
        return model(x)

    def per_layer():
        h = x
        for block in blocks:
            h = checkpoint(block, h, use_reentrant=False)
        return h

    def sequential():
        return checkpoint_sequential(model, args.segments, x, use_reentrant=False)

    print(f"MLP {args.layers} x Linear({args.width}, {args.width}) + ReLU, batch {args.batch}, "
          f"float32, {jax.devices()[0].platform}")
    print(f"{'backward':<28} {'temp MiB':>9} {'args MiB':>9} {'out MiB':>8} {'temp+out':>9} "
          f"{'step ms':>8}")
    modes = (("plain", plain), ("checkpoint per layer", per_layer),
             (f"checkpoint_sequential({args.segments})", sequential))
    grads, stats = {}, {}
    for name, forward in modes:  # the same weights for all three: no step in between
        opt.zero_grad()
        stats[name] = backward_memory(forward().square().mean())
        grads[name] = [p.grad.numpy().copy() for p in model.parameters()]
    mib = 2 ** 20
    for name, forward in modes:
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = forward().square().mean()
            loss.backward()
            opt.step()
            loss.item()
            times.append(time.perf_counter() - t0)
        s = stats[name]
        print(f"{name:<28} {s.temp_size_in_bytes / mib:9.1f} "
              f"{s.argument_size_in_bytes / mib:9.1f} {s.output_size_in_bytes / mib:8.1f} "
              f"{(s.temp_size_in_bytes + s.output_size_in_bytes) / mib:9.1f} "
              f"{1e3 * statistics.median(times[2:]):8.1f}")
    first = grads.pop("plain")
    for name, g in grads.items():
        diff = max(float(np.abs(a - b).max()) for a, b in zip(first, g))
        print(f"{name}: largest gradient difference from plain {diff:.2e}")


if __name__ == "__main__":
    main()
