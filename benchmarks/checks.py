"""The steady-state cost of PyTorch's index checks (`_core/checks.py`).

A small language-model step (embedding 1000x64, linear to 1000 classes, cross_entropy, Adam) is
timed three ways in one process, in interleaved blocks: with the indices known at the call
(checked on the host), with them pending (`tokens * 1`: checked inside the backward's program,
whose failure flags the host reads after the call), and with the checks switched off (the
`checked` helper replaced by the identity, for this measurement only). The figure is the median
step time over the timed steps, the loss read back every step.

    python benchmarks/checks.py [--steps 200]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import tapegrad as tg
import tapegrad.nn.functional as F
from tapegrad.nn import _functional_layers, _functional_loss


def _model():
    tg.manual_seed(0)
    emb, head = tg.nn.Embedding(1000, 64), tg.nn.Linear(64, 1000)
    opt = tg.optim.Adam(list(emb.parameters()) + list(head.parameters()), lr=1e-3)
    return emb, head, opt


def _step(emb, head, opt, tokens, targets, pending: bool):
    if pending:
        tokens, targets = tokens * 1, targets * 1
    opt.zero_grad()
    loss = F.cross_entropy(head(emb(tokens)), targets)
    loss.backward()
    opt.step()
    return loss.item()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    batches = [(tg.tensor(rng.integers(0, 1000, 256)), tg.tensor(rng.integers(0, 1000, 256)))
               for _ in range(8)]
    checked = (_functional_layers.checked, _functional_loss.checked)
    times: dict = {"known (host check)": [], "pending (in-program check)": [],
                   "pending, checks off": []}
    models = {k: _model() for k in times}
    for block in range(max(1, args.steps // 50)):
        for name, (emb, head, opt) in models.items():
            off = name.endswith("off")
            if off:
                _functional_layers.checked = _functional_loss.checked = lambda t, *a, **k: t
            try:
                for i in range(55):
                    tokens, targets = batches[i % len(batches)]
                    start = time.perf_counter()
                    _step(emb, head, opt, tokens, targets, pending=not name.startswith("known"))
                    if i >= 5:
                        times[name].append(time.perf_counter() - start)
            finally:
                _functional_layers.checked, _functional_loss.checked = checked
    base = statistics.median(times["pending, checks off"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:28s} {med * 1e3:7.3f} ms/step  {med / base:5.3f}x of checks off")


if __name__ == "__main__":
    main()
