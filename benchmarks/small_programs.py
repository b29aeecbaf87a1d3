"""Small programs and changing shapes: what learners run, where the fixed cost per step shows.

    python benchmarks/small_programs.py                 # every case, 3 rounds
    python benchmarks/small_programs.py --cases bigram regression --rounds 5

Cases (each written once as PyTorch code, run by `torch` and by `tapegrad` as `T`):

- `regression`: pytorch/examples' `regression/main.py` -- a degree-4 polynomial fitted by one
  `Linear(4, 1)`, batch 32, `smooth_l1_loss`, the manual update `p.data.add_(-0.1 * p.grad)`.
  Per-step median over a steady loop.
- `bigram`: a bigram language model (ng-video-lecture's `bigram.py`): `Embedding(65, 65)`,
  `cross_entropy`, AdamW, batch 32, block 8. Per-step median.
- `ragged`: an MLP 64-128-10 trained 300 steps with the batch size drawn from 1..64. Total time.
- `seqlen`: the GPT of `models.py` (context 64) trained 100 steps with the sequence length drawn
  from 8..64. Total time.
- `changing`: a residual MLP whose depth is drawn from 1..10 every step, 300 steps. Total time.

Each round runs every case in a fresh process for tapegrad, then for PyTorch (or the reverse,
alternating), on the same draws, so that no round finds another's compiled programs (tapegrad's
persistent compilation cache is off: `TAPEGRAD_CACHE_DIR=""`). Reported: the median over rounds
of each, their ratio, the spread of the ratio, and the XLA compilations of tapegrad's run (JAX's
backend-compile events). PyTorch runs on one thread: its OpenMP threads spin between the tiny
ops of these models, which on a shared 2-core machine makes its figures swing by 10x or more.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import models  # noqa: E402

import tapegrad as tg  # noqa: E402

try:
    import torch
except ImportError:  # PyTorch is an optional reference
    torch = None

_compiles = [0]


def _on_event(event: str, duration: float, **_) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _compiles[0] += 1


jax.monitoring.register_event_duration_secs_listener(_on_event)


def _median_step(step, steps: int, warmup: int) -> float:
    """Median seconds per call of `step()` (which reads its loss back) after `warmup` calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def regression(T, steps: int) -> float:
    rng = np.random.default_rng(0)
    w_target, b_target = rng.normal(size=(4, 1)) * 5, rng.normal(size=1) * 5
    fc = T.nn.Linear(4, 1)

    def step():
        x = rng.normal(size=32)
        feats = np.stack([x ** i for i in range(1, 5)], 1).astype(np.float32)
        y = (feats @ w_target + b_target).astype(np.float32)
        batch_x, batch_y = T.tensor(feats), T.tensor(y)
        fc.zero_grad()
        loss = T.nn.functional.smooth_l1_loss(fc(batch_x), batch_y)
        loss.backward()
        for p in fc.parameters():
            p.data.add_(-0.1 * p.grad)
        return loss.item()
    return _median_step(step, steps, warmup=20)


def bigram(T, steps: int) -> float:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 65, size=20000)
    model = T.nn.Embedding(65, 65)
    opt = T.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        ix = rng.integers(0, len(data) - 9, size=32)
        xb = T.tensor(np.stack([data[i:i + 8] for i in ix]))
        yb = T.tensor(np.stack([data[i + 1:i + 9] for i in ix]))
        logits = model(xb)
        loss = T.nn.functional.cross_entropy(logits.view(32 * 8, 65), yb.view(32 * 8))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()
    return _median_step(step, steps, warmup=20)


def ragged(T, steps: int) -> float:
    rng = np.random.default_rng(0)
    model = models.mlp(T, [64, 128, 10])
    opt = T.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for n in rng.integers(1, 65, size=steps):
        x = T.tensor(rng.normal(size=(n, 64)).astype(np.float32))
        y = T.tensor(rng.integers(0, 10, size=n))
        opt.zero_grad()
        loss = T.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    loss.item()
    return time.perf_counter() - start


def seqlen(T, steps: int) -> float:
    rng = np.random.default_rng(0)
    model = models.gpt(T, context=64)
    opt = T.optim.AdamW(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for n in rng.integers(8, 65, size=steps):
        idx = T.tensor(rng.integers(0, 10, size=(8, n)))
        y = T.tensor(rng.integers(0, 10, size=(8, n)))
        opt.zero_grad()
        loss = T.nn.functional.cross_entropy(model(idx).reshape(-1, 10), y.reshape(-1))
        loss.backward()
        opt.step()
    loss.item()
    return time.perf_counter() - start


def changing(T, steps: int) -> float:
    rng = np.random.default_rng(0)
    blocks = T.nn.ModuleList([T.nn.Linear(32, 32) for _ in range(10)])
    head = T.nn.Linear(32, 1)
    opt = T.optim.SGD([*blocks.parameters(), *head.parameters()], lr=1e-2)
    x = T.tensor(rng.normal(size=(16, 32)).astype(np.float32))
    y = T.tensor(rng.normal(size=(16, 1)).astype(np.float32))
    start = time.perf_counter()
    for depth in rng.integers(1, 11, size=steps):
        h = x
        for block in blocks[:depth]:
            h = h + T.tanh(block(h))
        loss = T.nn.functional.mse_loss(head(h), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    loss.item()
    return time.perf_counter() - start


CASES = {  # name: (function, steps, what the figure is)
    "regression": (regression, 300, "ms per step"),
    "bigram": (bigram, 300, "ms per step"),
    "ragged": (ragged, 300, "s total"),
    "seqlen": (seqlen, 100, "s total"),
    "changing": (changing, 300, "s total"),
}


def run_one(lib: str, name: str) -> tuple:
    """(figure, XLA compiles) of one case run in a fresh process by `lib`."""
    env = dict(os.environ, TAPEGRAD_CACHE_DIR="")
    out = subprocess.run([sys.executable, __file__, "--one", name, lib], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[-2]), int(out[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--one", nargs=2, metavar=("CASE", "LIB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        name, lib = args.one
        T = tg if lib == "tapegrad" else torch
        if T is torch:
            torch.set_num_threads(1)
        T.manual_seed(0)
        fn, steps, unit = CASES[name]
        figure = fn(T, steps) * (1e3 if unit.startswith("ms") else 1.0)
        print(figure, _compiles[0])
        return
    libs = ["tapegrad"] + (["torch"] if torch is not None else [])
    print("| case | unit | tapegrad | PyTorch eager | ratio (spread) | XLA compiles |")
    print("|---|---|---|---|---|---|")
    for name in args.cases:
        unit = CASES[name][2]
        got = {k: [] for k in libs}
        compiles = []
        for r in range(args.rounds):
            for lib in (libs if r % 2 == 0 else libs[::-1]):
                figure, n = run_one(lib, name)
                got[lib].append(figure)
                if lib == "tapegrad":
                    compiles.append(n)
        ours = statistics.median(got["tapegrad"])
        if "torch" in got:
            theirs = statistics.median(got["torch"])
            ratios = [a / b for a, b in zip(got["tapegrad"], got["torch"])]
            cmp = f"{theirs:.3g} | {ours / theirs:.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
        else:
            cmp = "- | -"
        print(f"| {name} | {unit} | {ours:.3g} | {cmp} | {max(compiles)} |", flush=True)


if __name__ == "__main__":
    main()
