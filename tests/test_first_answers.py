"""First answers: JAX's persistent compilation cache (`_core/diskcache.py`), run in subprocesses
with their own directories (the suite itself runs with it off, see conftest.py)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
