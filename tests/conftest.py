import os
import sys
from pathlib import Path

import pytest

# XLA's CPU backend optimisations cost most of this suite's time in compiles of small programs;
# every reference is computed in the same process under the same flags.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_backend_optimization_level=0").strip()

# The persistent compilation cache (on by default in ~/.cache/tapegrad/jax) stays off here, so
# that running the tests writes nothing into the user's cache; tests/test_first_answers.py runs
# it in subprocesses with their own directories. A cache directory set by the caller is kept.
os.environ.setdefault("TAPEGRAD_CACHE_DIR", "")

sys.path.insert(0, str(Path(__file__).parent))


def pytest_collection_finish(session):
    import launches
    launches.start(session.items)


def pytest_sessionfinish(session):
    import launches
    launches.stop()


@pytest.fixture(autouse=True, scope="session")
def _compiled_tier_at_once():
    """Programs compile in full at their first sighting, never op by op (the tiers' own tests
    set them): the suite's counts of traces describe the compiled tier."""
    import tapegrad
    tapegrad.autograd.set_compile_threshold(1, op_by_op=0)
    yield


@pytest.fixture(autouse=True)
def _float32_matmuls_in_full():
    """On a GPU, JAX multiplies float32 matrices in TF32 by default (so does tapegrad, like the
    jax.jit it is measured against); the references here are float32 or float64 computed in full,
    and PyTorch's CUDA default is full float32 too. A no-op on the CPU."""
    import jax  # here, so that XLA_FLAGS above is set before anything imports JAX
    with jax.default_matmul_precision("highest"):
        yield
