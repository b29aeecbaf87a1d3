"""Cold start: a fresh process to the first `loss.backward()` result, the digits example's model.

    python benchmarks/cold_start.py              # 5 rounds
    python benchmarks/cold_start.py --rounds 3

Each run is a new Python process that imports the library, builds the digits example's MLP
(64-256-256-10, ReLU, dropout), computes the cross-entropy of one batch of 64, calls
`loss.backward()` and reads the loss and a gradient. The time is from just before the process is
started to the moment those values are on the host. Contenders, alternated within each round:
PyTorch; tapegrad with the persistent compilation cache off (`TAPEGRAD_CACHE_DIR=""`); tapegrad
with an empty cache (the first run of a script: it compiles and writes the cache); tapegrad
with that cache filled (the same script run again). Medians and ranges over the rounds.
"""
from __future__ import annotations

import argparse
import ast
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys, time
import numpy as np
lib = sys.argv[1]
if lib == "torch":
    import torch
else:
    import tapegrad as torch
nn, F = torch.nn, torch.nn.functional

{model}

rng = np.random.default_rng(0)
x = torch.tensor(rng.uniform(0, 16, (64, 64)).astype(np.float32))
y = torch.tensor(rng.integers(0, 10, 64))
torch.manual_seed(0)
model = MLP()
loss = F.cross_entropy(model(x), y)
loss.backward()
value, grad = loss.item(), float(model.fc1.weight.grad.sum())
print(time.time(), value, grad)
"""


def digits_model() -> str:
    """The source of examples/train_digits.py's `MLP` class (that script imports scikit-learn)."""
    path = Path(__file__).parents[1] / "examples" / "train_digits.py"
    source = path.read_text()
    mlp = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "MLP")
    return ast.get_source_segment(source, mlp)


def run(lib: str, env: dict) -> float:
    start = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD.replace("{model}", digits_model()), lib], env=env, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.split()[0]) - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if k != "TAPEGRAD_CACHE_DIR"}
    names = ["torch", "tapegrad, cache off", "tapegrad, empty cache", "tapegrad, cache filled"]
    times: dict = {n: [] for n in names}
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            envs = {"torch": base, "tapegrad, cache off": {**base, "TAPEGRAD_CACHE_DIR": ""},
                    "tapegrad, empty cache": {**base, "TAPEGRAD_CACHE_DIR": tmp},
                    "tapegrad, cache filled": {**base, "TAPEGRAD_CACHE_DIR": tmp}}
            order = names if r % 2 == 0 else [names[1], names[0], names[2], names[3]]
            for n in order:  # the filled cache runs after the empty one, in the same directory
                times[n].append(run("torch" if n == "torch" else "tapegrad", envs[n]))
    ref = statistics.median(times["torch"])
    print(f"{'':24}{'median s':>10}{'min':>8}{'max':>8}{'x PyTorch':>11}")
    for n in names:
        t = times[n]
        print(f"{n:24}{statistics.median(t):10.2f}{min(t):8.2f}{max(t):8.2f}"
              f"{statistics.median(t) / ref:11.2f}")


if __name__ == "__main__":
    main()
