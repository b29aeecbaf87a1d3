"""Random numbers: a stateful `Generator` over JAX PRNG keys, as PyTorch's global generator.

Each draw folds a counter into the generator's key. A draw of a shape seen often is recorded:
the random op is computed with everything else pending, inside the program that reads it. The
first `EAGER_DRAWS` draws of each (kind, shape, dtype) are computed at once instead, by a program
per power-of-two size bucket, sliced on the host: a new shape then compiles nothing (a draw
compiled into a new program costs that program most of its compile time). Uniform draws up to
`_HOST_DRAW` elements (`nn.Linear`'s initialisation) are made on the host (`_core/threefry.py`),
which compiles nothing at all. All give the same numbers, since JAX's partitionable threefry
makes element i of a draw depend on i alone. Same seed, same numbers (not PyTorch's numbers:
the bit generator is JAX's).
"""
from __future__ import annotations

import functools
import math
import weakref

import jax
import jax.numpy as jnp
import numpy as np

from .._core import dtype as _dtype, stepmode as _stepmode, threefry
from .._core.compile import QUICK_OPTIONS
from .._core.graph import Const, Op, SAVES_NONE
from .._core.jax_compat import put
from .._core.record import record
from .tensor import Tensor


def _draw(key, counter, *, kind, shape, dtype, extra):
    k = jax.random.fold_in(key, counter)
    if kind == "normal":
        return jax.random.normal(k, shape, dtype)
    if kind == "uniform":
        return jax.random.uniform(k, shape, dtype)
    if kind == "truncated_normal":
        low, high = extra
        return jax.random.truncated_normal(k, low, high, shape, dtype)
    if kind == "randint":
        low, high = extra
        if jnp.issubdtype(dtype, jnp.integer):
            return jax.random.randint(k, shape, low, high, dtype)
        # bool and floating results (as PyTorch allows) are integers drawn in int64, converted
        return jax.random.randint(k, shape, low, high, jnp.int64).astype(dtype)
    if kind == "permutation":
        return jax.random.permutation(k, extra).astype(dtype)
    raise ValueError(kind)


generators: weakref.WeakSet = weakref.WeakSet()  # every live Generator (tapegrad.compile lifts them)
DEFAULT_SEED = 67280421310721  # PyTorch's default seed: runs repeat unless reseeded

draw = Op("random", _draw, saves=SAVES_NONE, differentiable=False)

EAGER_DRAWS = 8  # draws per (kind, shape, dtype, extra) computed at once, before recording
_BUCKETED = ("normal", "uniform", "truncated_normal", "randint")  # elementwise in the bits
_MIN_BUCKET = 1 << 12  # the smallest bucket: a draw of it takes ~0.1 ms, a larger one more
_QUICK_BUCKETS = 1 << 16  # buckets up to this size compile in the quick tier
_HOST_DRAW = 1 << 18  # uniform draws up to this size are made on the host, in up to ~10 ms
_seen: dict = {}  # (kind, shape, dtype, extra) -> draws computed at once so far


@functools.lru_cache(maxsize=64)
def _bucket_program(kind: str, size: int, dtype, extra):
    # a handful of programs in all, the same in every process (so the persistent cache serves
    # them after the first run); the small ones, which a new expression meets first, compiled
    # quickly, the large ones (a model's parameters) in full, where the draw's run time counts
    options = {"compiler_options": QUICK_OPTIONS} if size <= _QUICK_BUCKETS else {}
    return jax.jit(functools.partial(_draw, kind=kind, shape=(size,), dtype=dtype, extra=extra),
                   **options)


def _draw_now(key, counter: int, kind: str, shape: tuple, dtype, extra):
    """The draw `_draw` computes: a uniform one of up to `_HOST_DRAW` elements on the host (JAX's
    numbers, no program), others from the program of their size bucket, sliced on the host."""
    size = math.prod(shape)
    if kind == "uniform" and size <= _HOST_DRAW and threefry.applies(dtype):
        flat = threefry.uniform(threefry.fold_in(np.asarray(key), counter), size, dtype)
        return put(flat.reshape(shape))
    bucket = max(_MIN_BUCKET, 1 << max(size - 1, 0).bit_length())
    with jax.enable_x64(True):
        flat = _bucket_program(kind, bucket, dtype, extra)(key, np.int64(counter))
        return put(np.asarray(flat)[:size].reshape(shape))


def _seed_key(seed: int) -> jax.Array:
    """`jax.random.PRNGKey(seed)`. With JAX's default threefry bits the key is the seed's high
    and low 32 bits, made here on the host: a process's first draw then compiles no seeding."""
    with jax.enable_x64(True), jax.ensure_compile_time_eval():
        if jax.config.jax_default_prng_impl != "threefry2x32":
            return jax.random.PRNGKey(seed)
        return put(np.array([seed >> 32, seed & 0xFFFFFFFF], np.uint32))


# While set (by `func.functional_call` under a JAX transformation), drawing raises this message:
# a generator's key is a concrete array there, so every traced call would repeat one draw.
frozen_draws: str | None = None


class Generator:
    """A source of random numbers: `manual_seed(s)` makes its draws repeat."""

    def __init__(self, device="cpu") -> None:
        self.device = device
        self.manual_seed(DEFAULT_SEED)
        generators.add(self)

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = int(seed)
        self._key = None  # made at the first draw: importing tapegrad must not start JAX's
        self._counter = 0  # backends, or `distributed.init_process_group` could not follow it
        return self

    def seed(self) -> int:
        """Reseed from a nondeterministic source and return the seed."""
        s = np.random.SeedSequence().entropy % (2**63)
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    @property
    def stream(self) -> tuple:
        """`(key, counter)`: the key node and the number of the next draw. `tapegrad.compile`
        lifts it into a compiled step and writes it back after each call."""
        if self._key is None:  # concrete even when first asked inside a JAX trace
            key = _seed_key(self._seed % (2**64))
            self._key = Const(key, _dtype.from_numpy_dtype(key.dtype))
        return self._key, self._counter

    @stream.setter
    def stream(self, value: tuple) -> None:
        self._key, self._counter = value

    def get_state(self):
        state = np.array([self._seed, self._counter], dtype=np.int64)
        return Tensor._from_array(jnp.asarray(state.view(np.uint8)))

    def set_state(self, state) -> "Generator":
        seed, counter = np.asarray(state).astype(np.uint8).view(np.int64)
        self.manual_seed(int(seed))
        self._counter = int(counter)
        return self

    def sample(self, kind: str, shape: tuple, dtype: _dtype.dtype, extra=None):
        """A tensor of `shape` drawn from this generator (recorded, computed lazily)."""
        if frozen_draws is not None:
            raise RuntimeError(frozen_draws)
        _stepmode.generator(self)
        key, counter = self.stream
        self._counter += 1
        signature = (kind, shape, dtype.np, extra)
        # a key traced by a JAX transformation (func.vmap's randomness) is drawn from lazily
        if (kind in _BUCKETED and _stepmode.state.active is None
                and not isinstance(key.value, jax.core.Tracer)):
            seen = _seen.get(signature, 0)
            if seen < EAGER_DRAWS:
                _seen[signature] = seen + 1
                value = _draw_now(key.value, counter, *signature)
                return Tensor._from_node(Const(value, dtype))
        node = record(draw, (key, counter),
                      (("dtype", dtype.np), ("extra", extra), ("kind", kind), ("shape", shape)))
        return Tensor._from_node(node)


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the global generator (all devices share it)."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(state) -> None:
    default_generator.set_state(state)
