"""Shared test helpers: references computed with plain JAX, and tolerances per dtype."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import launches
import tapegrad

DTYPES = [tapegrad.float32, tapegrad.float64]


def tol(dtype) -> dict:
    return {"rtol": 1e-5, "atol": 1e-6} if dtype in (tapegrad.float32, np.float32) else \
        {"rtol": 1e-10, "atol": 1e-12}


def assert_close(actual, expected, dtype=tapegrad.float64) -> None:
    """Compare a tensor (or array) with an expected array, shapes and values."""
    a = actual.detach().numpy() if isinstance(actual, tapegrad.Tensor) else np.asarray(actual)
    e = np.asarray(expected)
    assert a.shape == e.shape, f"shape {a.shape} != expected {e.shape}"
    np.testing.assert_allclose(a, e, **tol(dtype))


def jax_value_and_grads(fn, *arrays, cotangent=None):
    """`fn`'s value and its gradients with respect to every argument, by `jax.vjp` in x64 mode."""
    with jax.enable_x64(True):
        arrays = [jnp.asarray(a) for a in arrays]
        out, vjp_fn = jax.vjp(fn, *arrays)
        ct = jnp.ones_like(out) if cotangent is None else jnp.asarray(cotangent, out.dtype)
        return np.asarray(out), [np.asarray(g) for g in vjp_fn(ct)]


def leaf(array, dtype) -> tapegrad.Tensor:
    return tapegrad.tensor(np.asarray(array), dtype=dtype, requires_grad=True)


def torch_or_skip():
    """PyTorch for parity tests, or a clean skip where it is not installed."""
    return pytest.importorskip("torch")


def recorded_rows(outs) -> set:
    """Registry row names in the autograd graph behind the tensors `outs` (each `grad_fn` node's
    `op.name`), to check which rows a public call records."""
    names, seen = set(), set()
    stack = [o.grad_fn for o in outs if o.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        name = getattr(getattr(node, "op", None), "name", None)
        if name is not None:
            names.add(name)
        stack.extend(f for f, _ in getattr(node, "next_functions", ()))
    return names


def assert_trained_state_close(ours: dict, theirs: dict, steps: int) -> None:
    """Parameters after `steps` AdamW steps (ours: lists, theirs: PyTorch's state_dict) equal.
    A GPT's key bias is compared loosely: softmax ignores a bias added to every key, so its
    gradient is rounding noise, which AdamW scales up to steps of lr."""
    for k, v in theirs.items():
        got, want = np.asarray(ours[k]), v.numpy()
        if k.endswith("qkv.bias"):
            keys = slice(want.size // 3, 2 * want.size // 3)
            np.testing.assert_allclose(got[keys], want[keys], atol=0.01 * steps)
            got, want = np.delete(got, keys), np.delete(want, keys)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-6, err_msg=k)


EXAMPLES = Path(__file__).parent.parent / "examples"


def example_launch(*args: str, devices: int = 1) -> dict:
    """`python *args` in examples/ (a script, or `-m tapegrad.distributed.run ...`) with this
    checkout's tapegrad and `devices` XLA host devices: `launches.add`'s arguments."""
    flags = os.environ.get("XLA_FLAGS", "")
    if devices > 1:
        flags += f" --xla_force_host_platform_device_count={devices}"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), PYTHONPATH=os.pathsep.join(
        [str(EXAMPLES.parent / "src"), os.environ.get("PYTHONPATH", "")]))
    return {"argv": [sys.executable, *args], "env": env, "cwd": EXAMPLES}


def example_output(proc: subprocess.CompletedProcess) -> tuple[str, str]:
    """An example run's stdout and held-out accuracy line. The examples exit 1 under 95%
    accuracy, so a zero exit status is asserted here too."""
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    line = re.search(r"held-out accuracy: [0-9.]+% on \d+ digits", proc.stdout)
    assert line, proc.stdout[-2000:]
    return proc.stdout, line.group(0)


# The single-device runs the data-parallel and DDP examples are compared with (5 epochs; the
# compiled DDP run needs 8 to pass the examples' 95%), started early by tests/launches.py.
DATA_PARALLEL_EXAMPLE = "test_data_parallel_example_prints_the_single_device_numbers"
DDP_EXAMPLE = "test_ddp_example_launched_as_the_readme_shows"
for _epochs, _users in ((5, (DATA_PARALLEL_EXAMPLE, DDP_EXAMPLE)), (8, (DDP_EXAMPLE,))):
    launches.add(f"digits_{_epochs}_epochs", **example_launch(
        "train_digits.py", "--epochs", str(_epochs), "--plot",
        launches.scratch(f"digits{_epochs}") / "loss.png"), users=_users)
