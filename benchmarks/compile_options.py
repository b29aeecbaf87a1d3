"""XLA compile time and run time of one small backward program under several compiler options.

    python benchmarks/compile_options.py [--rounds 5]

The program is the value and gradient of a 64-128-10 MLP's cross-entropy, lowered once per
round for a batch size not seen before (so nothing is cached) and compiled with each option set
in turn, alternating, so that load on the machine moves them alike. Reported: the median compile
time and the median time of a call. This is how tapegrad's quick tier (`QUICK_OPTIONS` in
`_core/compile.py`) was chosen.
"""
from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

QUICK = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
OPTIONS = {
    "default (full tier)": {},
    "level 0": {"xla_backend_optimization_level": 0},
    "level 0, no expensive LLVM passes": QUICK,
    "  + no fusion emitters (quick tier)": dict(QUICK, xla_cpu_use_fusion_emitters=False),
    "  + one codegen split": dict(QUICK, xla_cpu_parallel_codegen_split_count=1),
    "  + no XNNPACK": dict(QUICK, xla_cpu_use_xnnpack=False),
    "level 0, no fusion emitters": {"xla_backend_optimization_level": 0,
                                    "xla_cpu_use_fusion_emitters": False},
    "default, no fusion emitters": {"xla_cpu_use_fusion_emitters": False},
}


def loss(p, x, y):
    h = jax.nn.relu(x @ p[0].T + p[1]) @ p[2].T + p[3]
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(h), y[:, None], 1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    step = jax.jit(jax.value_and_grad(loss))
    params = [jnp.ones((128, 64)), jnp.ones(128), jnp.ones((10, 128)), jnp.ones(10)]
    got = {k: [] for k in OPTIONS}
    batch = 1
    for _ in range(args.rounds):
        for name, options in OPTIONS.items():
            batch += 1
            x, y = jnp.ones((batch, 64)), jnp.zeros(batch, jnp.int32)
            lowered = step.lower(params, x, y)
            t0 = time.perf_counter()
            compiled = lowered.compile(compiler_options=options)
            compile_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(20):
                compiled(params, x, y)[0].block_until_ready()
            got[name].append((compile_s, (time.perf_counter() - t0) / 20))
    print("| options | compile (median) | call (median) |\n|---|---|---|")
    for name, runs in got.items():
        print(f"| {name} | {statistics.median(c for c, _ in runs) * 1e3:.0f} ms | "
              f"{statistics.median(r for _, r in runs) * 1e3:.2f} ms |")


if __name__ == "__main__":
    main()
