"""First answers: the tiers of `_core/compile.py` (a structure compiled cheaply until its key is
met `set_compile_threshold` times, then in full), and JAX's persistent compilation cache
(`_core/diskcache.py`), run in subprocesses with their own directories (the suite itself runs
with it off, see conftest.py). Every registry row runs in the cheap tier in test_ops_registry.py."""
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
from tapegrad._core import compile as _compile

SRC = str(Path(__file__).parents[1] / "src")

# a backward in a fresh process: the cache directory JAX was given, JAX's persistent-cache hits,
# the compile-time threshold and the gradient
PROBE = """
import json
import jax
hits = []
jax.monitoring.register_event_listener(
    lambda name, **kw: hits.append(name) if name == "/jax/compilation_cache/cache_hits" else None)
import tapegrad as torch
a = torch.tensor([[1.0, -2.0, 3.0]], requires_grad=True)
(a * a.exp()).sum().backward()
print(json.dumps({"dir": jax.config.jax_compilation_cache_dir, "hits": len(hits),
                  "min_time": jax.config.jax_persistent_cache_min_compile_time_secs,
                  "grad": a.grad.tolist()}))
"""
X = np.array([[1.0, -2.0, 3.0]], np.float32)


def probe(tmp_path: Path, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("TAPEGRAD_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR")}
    environ.update(PYTHONPATH=SRC, XDG_CACHE_HOME=str(tmp_path / "xdg"), **env)
    out = subprocess.run([sys.executable, "-c", PROBE], env=environ, capture_output=True,
                         text=True, timeout=300, check=True)
    result = json.loads(out.stdout.splitlines()[-1])
    reference = jax.grad(lambda x: jnp.sum(x * jnp.exp(x)))(X)
    np.testing.assert_allclose(result["grad"], reference, rtol=1e-6)
    return result


def test_on_by_default_in_the_user_cache_dir_and_a_second_run_starts_warm(tmp_path):
    first = probe(tmp_path)
    path = tmp_path / "xdg" / "tapegrad" / "jax"
    assert first["dir"] == str(path) and first["min_time"] == 0.0
    assert first["hits"] == 0 and any(path.iterdir())
    second = probe(tmp_path)
    assert second["hits"] >= 1  # the backward's program came from the cache, not XLA


def test_tapegrad_cache_dir_names_the_directory(tmp_path):
    result = probe(tmp_path, TAPEGRAD_CACHE_DIR=str(tmp_path / "mine"))
    assert result["dir"] == str(tmp_path / "mine") and any((tmp_path / "mine").iterdir())
    assert not (tmp_path / "xdg").exists()


def test_empty_tapegrad_cache_dir_switches_it_off(tmp_path):
    result = probe(tmp_path, TAPEGRAD_CACHE_DIR="")
    assert result["dir"] is None and result["hits"] == 0
    assert not (tmp_path / "xdg").exists()


@pytest.mark.parametrize("user_dir", ["jaxcache", ""])
def test_the_users_own_jax_cache_configuration_is_left_alone(tmp_path, user_dir):
    path = str(tmp_path / user_dir) if user_dir else ""
    result = probe(tmp_path, JAX_COMPILATION_CACHE_DIR=path)
    assert (result["dir"] or "") == path
    # JAX's own threshold, as in this process (where the cache is off)
    assert result["min_time"] == jax.config.jax_persistent_cache_min_compile_time_secs
    assert not (tmp_path / "xdg").exists()


@pytest.fixture
def threshold():
    """Set the compile threshold for one test (the suite's own is 1) and the cache cleared."""
    def set_to(n):
        tg.autograd.clear_cache()
        tg.autograd.set_compile_threshold(n, op_by_op=0)
    yield set_to
    tg.autograd.set_compile_threshold(1, op_by_op=0)


def step(values: np.ndarray) -> list:
    """One expression of a fixed structure: its backward's gradient, and XLA traces it caused."""
    before = tg.autograd.cache_info().traces
    a = tg.tensor(values, requires_grad=True)
    (a.sin() * a).sum().backward()
    grad = a.grad.numpy()
    reference = jax.grad(lambda x: jnp.sum(jnp.sin(x) * x))(values)
    np.testing.assert_allclose(grad, reference, rtol=1e-6, atol=1e-6)
    return tg.autograd.cache_info().traces - before


def programs() -> list:
    """The cached backward programs: 'cheap' while in the first tier, else 'full'."""
    return ["cheap" if type(p) is _compile._Tiered else "full"
            for k, p in _compile.cache.programs.items() if k[0] == "segment"]


def test_a_structure_compiles_in_full_at_its_threshold_not_before(threshold):
    threshold(3)
    rng = np.random.default_rng(0)
    x = lambda: rng.standard_normal((4, 3)).astype(np.float32)  # noqa: E731
    assert step(x()) == 1 and programs() == ["cheap"]  # compiled at once, cheaply
    assert step(x()) == 0 and programs() == ["cheap"]  # met twice: the cheap program again
    assert step(x()) == 1 and programs() == ["full"]  # the third time: compiled in full
    assert step(x()) == 0 and step(x()) == 0 and programs() == ["full"]
    # other input shapes are another key, counted from the start
    assert step(rng.standard_normal((5, 3)).astype(np.float32)) == 1
    assert sorted(programs()) == ["cheap", "full"]


def test_threshold_one_compiles_in_full_at_once(threshold):
    threshold(1)
    assert step(np.ones((2, 2), np.float32)) == 1 and programs() == ["full"]
    assert step(np.ones((2, 2), np.float32)) == 0


def test_the_cache_bound_counts_programs_of_both_tiers(threshold):
    threshold(2)
    limit = tg.autograd.cache_info().maxsize
    tg.autograd.set_cache_limit(2)
    try:
        for n in range(1, 5):  # four shapes: four keys, at most two kept
            step(np.ones((n, 2), np.float32))
            step(np.ones((n, 2), np.float32))  # each key met twice: in full
            assert tg.autograd.cache_info().currsize <= 2
        assert programs() == ["full"] * programs().count("full") and len(programs()) <= 2
        assert step(np.ones((1, 2), np.float32)) == 1  # dropped: counted from the start again
        assert "cheap" in programs()
    finally:
        tg.autograd.set_cache_limit(limit)


def test_compile_threshold_refuses_zero():
    with pytest.raises(ValueError, match="compile threshold must be at least 1, got 0"):
        tg.autograd.set_compile_threshold(0)


def test_a_cheap_program_inside_a_compiled_step_is_traced_without_its_options(threshold):
    """JAX refuses compiler options on a jit nested in a trace: `tapegrad.compile` traces the
    engine's programs while their keys are still in the cheap tier."""
    threshold(2**30)
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((3, 2)).astype(np.float32)
    xs = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(4)]
    w = tg.tensor(w0, requires_grad=True)

    def sgd(x):
        loss = ((x @ w).tanh() ** 2).mean()
        loss.backward()
        with tg.no_grad():
            w.sub_(0.1 * w.grad)
        w.grad = None
        return loss

    step = tg.compile(sgd)
    losses = [step(tg.tensor(x)).item() for x in xs]
    loss_fn = lambda v, x: jnp.mean(jnp.tanh(x @ v) ** 2)  # noqa: E731
    v, expected = jnp.asarray(w0), []
    for x in xs:
        expected.append(float(loss_fn(v, x)))
        v = v - 0.1 * jax.grad(loss_fn)(v, x)
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    np.testing.assert_allclose(w.detach().numpy(), v, rtol=1e-5, atol=1e-6)
    assert "cheap" in programs()
