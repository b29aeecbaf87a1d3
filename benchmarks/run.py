"""tapegrad's speed against hand-written jax.jit + optax (and PyTorch eager, when installed).

    python benchmarks/run.py            # all cases, prints a markdown table
    python benchmarks/run.py --quick    # fewer steps, for a smoke run

On a GPU, PyTorch runs there too (as its default device) when it has CUDA.

Each figure is the median wall time of one training step, synchronised (the loss is read back),
after warm-up, with the variants of a case run in interleaved blocks; ratios are to the jax.jit +
optax step measured in the same process.
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).parent))
import jax_baselines as jb  # noqa: E402
import models  # noqa: E402

import tapegrad as tg  # noqa: E402

try:
    import torch
except ImportError:  # PyTorch is an optional reference
    torch = None


def compare(fns: dict, steps: int) -> dict:
    """Median µs per call of each function: the XLA variants interleaved, PyTorch on its own
    afterwards (its OpenMP threads keep spinning for a while after each op and would slow
    whatever runs next)."""
    xla = {k: f for k, f in fns.items() if k != "torch" and f is not None}
    out = _interleaved(xla, steps)
    if fns.get("torch") is not None:
        out.update(_interleaved({"torch": fns["torch"]}, steps))
    return out


def _interleaved(fns: dict, steps: int, block: int = 50, warmup: int = 10,
                 rewarm: int = 5) -> dict:
    """Median µs per call, measured in round-robin blocks of about `block` calls.

    Round-robin blocks keep every variant exposed to the same machine state, so a change in CPU
    speed during the run (frequent on shared machines) moves all figures alike, not just one.
    Each block starts with `rewarm` untimed calls, so no variant pays for the caches the one
    before it left cold.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict = {k: [] for k in fns}
    rounds = -(-steps // block)  # at least `steps` timed calls per variant
    block = -(-steps // rounds)
    for _ in range(rounds):
        for k, fn in fns.items():
            for _ in range(rewarm):
                fn()
            for _ in range(block):
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1e6 for k, v in times.items()}


def torch_on_jax_platform() -> str:
    """Put PyTorch on JAX's platform (CUDA when JAX runs on a GPU); says which PyTorch runs where."""
    if torch is None:
        return "PyTorch not installed"
    device = "cpu"
    if jax.default_backend() == "gpu" and torch.cuda.is_available():
        device = "cuda"
        torch.set_default_device(device)
    return f"PyTorch {torch.__version__} on {device}"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# -- the cases ------------------------------------------------------------------------------------
def mlp_params(model) -> list:
    """An MLP's parameters as the jax.jit baseline takes them: {weight, bias} per Linear."""
    sd = {k: v.detach().jax() for k, v in model.state_dict().items()}
    return [{"weight": sd[f"{i}.weight"], "bias": sd[f"{i}.bias"]} for i in range(0, len(model), 2)]


def tapegrad_steps(step, x, y) -> dict:
    """The step eager and under tapegrad.compile."""
    tx, ty = tg.tensor(x), tg.tensor(y)
    compiled = tg.compile(step)
    return {"eager": lambda: step(tx, ty).item(), "compiled": lambda: compiled(tx, ty).item()}


def jax_step(loss_fn, tx, params, x, y):
    """The hand-written jax.jit(value_and_grad) + optax step on the same parameters."""
    jstep = jb.make_step(loss_fn, tx)
    box = [params, tx.init(params)]
    jx, jy = jnp.asarray(x), jnp.asarray(y)

    def run():
        box[0], box[1], loss = jstep(box[0], box[1], jx, jy)
        return float(loss)  # read back, as the other variants' `.item()` (costly on a GPU)
    return run


def torch_step(build, x, y):
    """The same PyTorch code, eager, when PyTorch is installed (else None)."""
    if torch is None:
        return None
    torch.manual_seed(0)
    step = build(torch)
    px, py = torch.tensor(x), torch.tensor(y)
    return lambda: step(px, py).item()


def case_mlp(sizes, batch, steps):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)

    def build(T):
        model = models.mlp(T, sizes)
        return model, models.classifier_step(T, model, T.optim.Adam(model.parameters(), lr=1e-3))
    tg.manual_seed(0)
    model, step = build(tg)
    fns = tapegrad_steps(step, x, y)
    fns["jax"] = jax_step(jb.mlp_loss, optax.adam(1e-3), mlp_params(model), x, y)
    fns["torch"] = torch_step(lambda T: build(T)[1], x, y)
    return compare(fns, steps)


def _gpt_params(model, layers=3):
    sd = {k: v.detach().jax() for k, v in model.state_dict().items()}

    def lin(prefix):
        return {"weight": sd[prefix + ".weight"], "bias": sd[prefix + ".bias"]}
    blocks = [{name: lin(f"blocks.{i}.{name}") for name in ("ln1", "qkv", "proj", "ln2", "fc1", "fc2")}
              for i in range(layers)]
    return {"tok": sd["tok.weight"], "pos": sd["pos.weight"], "blocks": blocks,
            "ln": lin("ln"), "head": lin("head")}


def case_gpt(steps, batch=64, context=16, vocab=10):
    rng = np.random.default_rng(0)
    x = rng.integers(0, vocab, (batch, context))
    y = rng.integers(0, vocab, (batch, context))

    def build(T):
        model = models.gpt(T)
        opt = T.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        return model, models.classifier_step(T, model, opt, clip=1.0)
    tg.manual_seed(0)
    model, step = build(tg)
    fns = tapegrad_steps(step, x, y)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3, weight_decay=0.01))
    fns["jax"] = jax_step(jb.gpt_loss, tx, _gpt_params(model), x, y)
    fns["torch"] = torch_step(lambda T: build(T)[1], x, y)
    return compare(fns, steps)


def case_chain(steps, n=50):
    x = tg.randn(100, requires_grad=True)
    step = models.chain_step(tg, x, n)
    compiled = tg.compile(step)
    grad = jax.jit(lambda v: jb.chain_grad(v, n))
    xa = x.detach().jax()
    fns = {"eager": lambda: step().jax().block_until_ready(),
           "compiled": lambda: compiled().jax().block_until_ready(),
           "jax": lambda: grad(xa).block_until_ready(), "torch": None}
    if torch is not None:
        tx_ = torch.randn(100, requires_grad=True)
        torch_chain = models.chain_step(torch, tx_, n)
        sync = torch.cuda.synchronize if tx_.is_cuda else (lambda: None)
        fns["torch"] = lambda: (torch_chain(), sync())
    return compare(fns, steps)


# -- the extra figures ------------------------------------------------------------------------------
def cold_and_compiles(loop_steps=500, rss_steps=2000):
    """First-step latency, compilations over a loop and RSS growth, on case 1 (eager)."""
    tg.autograd.clear_cache()
    jax.clear_caches()
    rng = np.random.default_rng(1)
    x = tg.tensor(rng.normal(size=(64, 784)).astype(np.float32))
    y = tg.tensor(rng.integers(0, 10, 64))
    model = models.mlp(tg, [784, 256, 10])
    opt = tg.optim.Adam(model.parameters(), lr=1e-3)
    step = models.classifier_step(tg, model, opt)
    t = time.perf_counter()
    step(x, y).item()
    first_ms = (time.perf_counter() - t) * 1e3
    before = tg.autograd.cache_info().traces
    for _ in range(loop_steps):
        step(x, y).item()
    compiles = tg.autograd.cache_info().traces - before
    for _ in range(100):
        step(x, y).item()
    gc.collect()
    start = rss_mb()
    for _ in range(rss_steps):
        step(x, y).item()
    gc.collect()
    return {"first_step_ms": first_ms, "compiles_in_loop": compiles,
            "rss_growth_mb": rss_mb() - start, "rss_steps": rss_steps}


def record_overhead_us(n_ops=50, reps=2000):
    """Microseconds to record one elementwise op (no execution)."""
    x = tg.randn(100, requires_grad=True)

    def record():
        y = x
        for _ in range(n_ops):
            y = y * 1.01
        return y
    record()
    t = time.perf_counter()
    for _ in range(reps):
        record()
    return (time.perf_counter() - t) / reps / n_ops * 1e6


def _ratio(runs: list, a: str, b: str) -> str:
    """The median ratio over the repeats, with its range when there are several."""
    if any(r.get(a) is None or r.get(b) is None for r in runs):
        return "n/a"
    values = sorted(r[a] / r[b] for r in runs)
    med = statistics.median(values)
    return f"{med:.2f}×" if len(values) == 1 else f"{med:.2f}× ({values[0]:.2f}-{values[-1]:.2f})"


def _us(runs: list, k: str) -> str:
    if any(r.get(k) is None for r in runs):
        return "n/a"
    return f"{statistics.median(r[k] for r in runs):.0f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (smoke run)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None,
                        help="measure each case this many times (default 3, 1 with --quick)")
    args = parser.parse_args()
    steps = args.steps or (20 if args.quick else 200)
    repeat = args.repeat or (1 if args.quick else 3)
    torch_desc = torch_on_jax_platform()
    print(f"# tapegrad benchmarks: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, JAX {jax.__version__} on {jax.devices()[0].device_kind}, "
          f"{torch_desc}; median of {steps} steps "
          f"({max(steps // 4, 10)} for case 2), "
          f"{repeat} repeat(s): figures are medians over the repeats, ratios show their range\n")
    extra = cold_and_compiles(loop_steps=50 if args.quick else 500,
                              rss_steps=100 if args.quick else 2000)
    cases = [
        ("1. MLP 784-256-10, batch 64, Adam", lambda: case_mlp([784, 256, 10], 64, steps)),
        ("2. MLP 784-1024-1024-10, batch 512, Adam",
         lambda: case_mlp([784, 1024, 1024, 10], 512, max(steps // 4, 10))),
        ("3. GPT 3x48, ctx 16, batch 64, AdamW + clip", lambda: case_gpt(steps)),
        ("4. 50 elementwise ops on 100 floats + backward", lambda: case_chain(steps)),
    ]
    fixed = [case_mlp([8, 8, 2], 64, steps) for _ in range(repeat)]
    gc.collect()
    head = "| case | tapegrad eager | tapegrad compile | jax.jit + optax | PyTorch eager | eager / jax | compile / jax | eager / PyTorch |"
    print(head)
    print("|" + "---|" * 8)
    for name, run in cases:
        runs = []
        for _ in range(repeat):
            runs.append(run())
            gc.collect()
        print(f"| {name} | {_us(runs, 'eager')} | {_us(runs, 'compiled')} | {_us(runs, 'jax')} | "
              f"{_us(runs, 'torch')} | {_ratio(runs, 'eager', 'jax')} | "
              f"{_ratio(runs, 'compiled', 'jax')} | {_ratio(runs, 'eager', 'torch')} |", flush=True)
    print("\nfixed cost of one step (the case 1 step on an MLP 8-8-2, where compute is "
          "negligible): " + ", ".join(f"{name} {_us(fixed, k)}" for k, name in (
              ("eager", "tapegrad eager"), ("compiled", "tapegrad compile"),
              ("jax", "jax.jit + optax"), ("torch", "PyTorch eager"))))
    print(f"first step (cold compile), case 1: {extra['first_step_ms']:.0f} ms")
    print(f"compilations over a {50 if args.quick else 500}-step loop after the first step, case 1: "
          f"{extra['compiles_in_loop']}")
    print(f"RSS growth over {extra['rss_steps']} steps, case 1: {extra['rss_growth_mb']:+.1f} MB")
    print(f"recording overhead: {record_overhead_us():.2f} µs per op")


if __name__ == "__main__":
    main()
