"""Memory under ragged shapes: resident memory over a long loop whose batch size keeps changing.

An MLP trains for `--steps` steps, each with a batch size drawn from `--shapes` distinct sizes,
under `tapegrad.autograd.set_cache_limit(--limit)`. Every compiled XLA executable costs memory,
so a cache that counted graph structures rather than executables would grow with each new
shape; a bound on executables keeps the resident set flat. Prints the resident set size every
`--every` steps, the cache's statistics, and the growth over the second half of the run.

    python benchmarks/ragged_memory.py --steps 3000 --shapes 192 --limit 32
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import tapegrad as torch


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--shapes", type=int, default=192)
    ap.add_argument("--limit", type=int, default=32)
    ap.add_argument("--every", type=int, default=250)
    args = ap.parse_args()

    torch.autograd.set_cache_limit(args.limit)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, args.shapes + 1, size=args.steps)  # batch sizes 1..shapes
    marks, start = [], time.perf_counter()
    for step, n in enumerate(sizes, 1):
        x = torch.tensor(rng.normal(size=(n, 16)).astype(np.float32))
        y = torch.tensor(rng.integers(0, 4, size=n))
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if step % args.every == 0:
            loss.item()
            marks.append((step, rss_mib()))
            info = torch.autograd.cache_info()
            print(f"step {step:5d}  rss {marks[-1][1]:7.1f} MiB  programs {info.currsize:4d}"
                  f"  misses {info.misses:5d}  {time.perf_counter() - start:6.1f} s", flush=True)
    half = [m for m in marks if m[0] > args.steps // 2]
    growth = (half[-1][1] - half[0][1]) / max(1, half[-1][0] - half[0][0]) * 1000
    print(f"distinct batch sizes seen: {len(set(sizes.tolist()))}; limit {args.limit}; "
          f"second half growth {growth:+.2f} MiB per 1000 steps; "
          f"rss {marks[0][1]:.1f} -> {marks[-1][1]:.1f} MiB")


if __name__ == "__main__":
    main()
