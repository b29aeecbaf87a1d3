"""Where a step's time goes: tapegrad's compiled program called on its own against the whole step.

    python benchmarks/breakdown.py

For the case 1 MLP and the tiny 8-8-2 one, median µs of: the compiled step with its loss read
back (`.item()`) or only waited for; its XLA program called directly with ready arguments; the
eager step and its backward and `optimizer.step()` phases (each synchronised); jax.jit + optax,
waited for and read back; and the number of kernels (fusions, dots, copies) in each program.
On a GPU the difference between "program alone" and the whole step is host work.
"""
import re
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
import run  # noqa: E402

import tapegrad as tg  # noqa: E402


def median_us(fn, n=300, warmup=30) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def kernels(hlo: str) -> int:
    entry = hlo[hlo.index("ENTRY"):]
    return len(re.findall(r" fusion\(|custom-call\(| dot\(| copy\(| reduce\(", entry))


def breakdown(sizes) -> dict:
    rng = np.random.default_rng(0)
    xn = rng.normal(size=(64, sizes[0])).astype(np.float32)
    yn = rng.integers(0, sizes[-1], 64)
    x, y = tg.tensor(xn), tg.tensor(yn)
    tg.manual_seed(0)
    model = models.mlp(tg, sizes)
    opt = tg.optim.Adam(model.parameters(), lr=1e-3)
    step = models.classifier_step(tg, model, opt)
    compiled = tg.compile(step)
    r = {"compiled, .item()": median_us(lambda: compiled(x, y).item()),
         "compiled, waited": median_us(lambda: compiled(x, y).jax().block_until_ready())}

    plan = next(iter(compiled._plans.values()))  # the traced step: call its program directly
    args = plan.arguments([x, y])
    with jax.enable_x64(True):
        r["program alone"] = median_us(lambda: jax.block_until_ready(plan._jitted(*args)))
        tg_hlo = plan._jitted.lower(*args).compile().as_text()

    r["eager, .item()"] = median_us(lambda: step(x, y).item(), n=200)

    def eager_phases():
        opt.zero_grad()
        loss = tg.nn.functional.cross_entropy(model(x), y)
        t0 = time.perf_counter()
        loss.backward()
        jax.block_until_ready([p.grad.jax() for p in model.parameters()])
        t1 = time.perf_counter()
        opt.step()
        jax.block_until_ready([p.jax() for p in model.parameters()])
        return t1 - t0, time.perf_counter() - t1
    phases = [eager_phases() for _ in range(230)][30:]
    r["eager backward"] = statistics.median(p[0] for p in phases) * 1e6
    r["eager optimizer.step()"] = statistics.median(p[1] for p in phases) * 1e6

    params = run.mlp_params(model)
    tx = optax.adam(1e-3)
    jstep = jb.make_step(jb.mlp_loss, tx)
    box = [params, tx.init(params)]
    jx, jy = jnp.asarray(xn), jnp.asarray(yn)

    def jax_step():
        box[0], box[1], loss = jstep(box[0], box[1], jx, jy)
        return loss
    r["jax.jit, waited"] = median_us(lambda: jax_step().block_until_ready())
    r["jax.jit, float(loss)"] = median_us(lambda: float(jax_step()))
    r["kernels: tapegrad compiled"] = kernels(tg_hlo)
    r["kernels: jax.jit"] = kernels(jstep.lower(box[0], box[1], jx, jy).compile().as_text())
    return r


def main() -> None:
    print(f"# {jax.devices()[0].device_kind}, JAX {jax.__version__}: median µs (kernel counts)")
    results = {tuple(s): breakdown(s) for s in ([784, 256, 10], [8, 8, 2])}
    print("| | MLP 784-256-10 | MLP 8-8-2 |\n|---|---|---|")
    for k in next(iter(results.values())):
        print(f"| {k} | " + " | ".join(f"{r[k]:.0f}" for r in results.values()) + " |")


if __name__ == "__main__":
    main()
