"""Latency of a first answer: small tutorial expressions with shapes not seen before.

    python benchmarks/first_answer.py            # 20 expressions, then the same with new values
    python benchmarks/first_answer.py --n 10

Each expression is the seed tutorial's style, `a = randn(n, m, requires_grad=True);
b = randn(n, m); c = f(a, b); c.backward(); c.item(), a.grad`, with an (n, m) no earlier
expression used. tapegrad and PyTorch eager run it in turn in one process (who goes first
alternates). Reported per expression: wall time in each, and the XLA compiles tapegrad caused
(JAX's backend-compile events). A second round runs the same expressions with new values: the
per-shape caches are then warm.
"""
from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

import tapegrad as tg

try:
    import torch
except ImportError:  # PyTorch is an optional reference
    torch = None

_compiles = [0]


def _on_event(event: str, duration: float, **_) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _compiles[0] += 1


jax.monitoring.register_event_duration_secs_listener(_on_event)

# f(lib, a, b) -> a scalar: the kinds of lines a tutorial writes
EXPRESSIONS = [
    lambda T, a, b: (a * b).sum(),
    lambda T, a, b: (a + b).mean(),
    lambda T, a, b: (a.exp() * b).sum(),
    lambda T, a, b: (a ** 2).sum(),
    lambda T, a, b: (a.sin() + b.cos()).sum(),
    lambda T, a, b: T.tanh(a * b).mean(),
    lambda T, a, b: (a - b).abs().sum(),
    lambda T, a, b: (a.relu() * 3.0).sum(),
    lambda T, a, b: (a @ b.t()).sum(),
    lambda T, a, b: ((a * b) ** 2 + 1.0).log().mean(),
    lambda T, a, b: a.sigmoid().sum(),
    lambda T, a, b: (a / (b.abs() + 1.0)).sum(),
    lambda T, a, b: T.softmax(a, dim=1).max(),
    lambda T, a, b: (a.sum(0) * b.sum(0)).sum(),
    lambda T, a, b: (a * a * a).mean(),
    lambda T, a, b: (a.exp() - 1.0).sum(),
    lambda T, a, b: (a.t() * b.t()).sum(),
    lambda T, a, b: a.norm(),
    lambda T, a, b: (a.clamp(-0.5, 0.5) * b).sum(),
    lambda T, a, b: a.mean(dim=0).sum() + b.sum(),
]


def run_one(T, f, shape, to_numpy) -> float:
    start = time.perf_counter()
    a = T.randn(*shape, requires_grad=True)
    b = T.randn(*shape)
    c = f(T, a, b)
    c.backward()
    c.item()
    to_numpy(a.grad)
    return time.perf_counter() - start


def rounds(n: int, offset: int) -> list:
    """[(tapegrad s, torch s, compiles)] per expression; shape (5 + offset + i, 3 + i % 4)."""
    out = []
    for i in range(n):
        f = EXPRESSIONS[i % len(EXPRESSIONS)]
        shape = (5 + offset + i, 3 + i % 4)
        before = _compiles[0]
        order = ["tg", "torch"] if i % 2 == 0 else ["torch", "tg"]
        times = {}
        for who in order:
            if who == "tg":
                times["tg"] = run_one(tg, f, shape, lambda g: g.numpy())
                compiles = _compiles[0] - before
            elif torch is not None:
                times["torch"] = run_one(torch, f, shape, lambda g: g.numpy())
        out.append((times["tg"], times.get("torch", float("nan")), compiles))
    return out


def summary(label: str, rows: list) -> None:
    tg_t = [r[0] * 1e3 for r in rows]
    pt_t = [r[1] * 1e3 for r in rows]
    comp = [r[2] for r in rows]
    print(f"| {label} | {statistics.median(tg_t):.1f} ms | {max(tg_t):.1f} ms | "
          f"{statistics.median(pt_t):.2f} ms | {max(pt_t):.2f} ms | "
          f"{sum(tg_t) / sum(pt_t):.0f}x | {statistics.median(comp):g} ({min(comp)}-{max(comp)}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="expressions per round")
    parser.add_argument("--offset", type=int, default=int(time.time()) % 1000,
                        help="shape offset (new shapes each run: a persistent cache cannot help)")
    args = parser.parse_args()
    if torch is not None:  # PyTorch's first-call setup is not part of a tutorial's expression
        run_one(torch, EXPRESSIONS[0], (2, 2), lambda g: g.numpy())
    cold = rounds(args.n, args.offset)
    warm = rounds(args.n, args.offset)
    print("| round | tapegrad median | tapegrad max | PyTorch median | PyTorch max "
          "| total tapegrad / PyTorch | XLA compiles per expression, median (range) |")
    print("|---|---|---|---|---|---|---|")
    summary(f"{args.n} new expressions", cold)
    summary("same again, new values", warm)
    print("per expression (ms, tapegrad/PyTorch/compiles):",
          " ".join(f"{a * 1e3:.0f}/{b * 1e3:.1f}/{c}" for a, b, c in cold))


if __name__ == "__main__":
    main()
