"""JAX's default random numbers computed on the host, bit for bit: `jax.random.fold_in` and
`jax.random.uniform` over the threefry2x32 bits of partitionable threefry (JAX's default since
0.5), in which element i of a draw depends on its flat index i alone.

A draw made here compiles nothing. A model's first draws are its parameters' initialisation
(`nn.Linear`'s uniform), each size bucket of which would otherwise be an XLA program compiled
before the first step. Integer arithmetic and a bit cast are exact, so the numbers are JAX's
(tests/test_random.py compares them bit for bit); `applies()` tells where JAX's configuration
makes them so.
"""
from __future__ import annotations

import jax
import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)
_UNIFORM = {np.dtype(np.float32): (np.uint32, 23), np.dtype(np.float64): (np.uint64, 52)}


def applies(dtype) -> bool:
    """Whether a uniform draw of `dtype` here equals JAX's: threefry bits, partitionable, and a
    float32 or float64 result."""
    return (np.dtype(dtype) in _UNIFORM and jax.config.jax_default_prng_impl == "threefry2x32"
            and jax.config.jax_threefry_partitionable)


def _rotate_left(x: np.ndarray, d: int) -> np.ndarray:
    return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def hash2x32(key: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> tuple:
    """Threefry-2x32 (20 rounds) of the counter pairs `(x1, x2)` under `key` (two uint32)."""
    k1, k2 = key[:1], key[1:]
    ks = (k1, k2, k1 ^ k2 ^ _PARITY)
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = _rotate_left(x2, r) ^ x1
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x1, x2


def fold_in(key: np.ndarray, data: int) -> np.ndarray:
    """`jax.random.fold_in(key, data)` of a raw threefry key (uint32[2])."""
    h1, h2 = hash2x32(key, np.zeros(1, np.uint32), np.array([data & 0xFFFFFFFF], np.uint32))
    return np.concatenate([h1, h2])


def uniform(key: np.ndarray, size: int, dtype) -> np.ndarray:
    """`jax.random.uniform(key, (size,), dtype)` in [0, 1): the mantissa filled with random
    bits under the exponent of 1.0, less 1."""
    uint, mantissa = _UNIFORM[np.dtype(dtype)]
    index = np.arange(size, dtype=np.uint64)
    hi, lo = hash2x32(key, (index >> np.uint64(32)).astype(np.uint32),
                      (index & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    if uint is np.uint32:
        bits = hi ^ lo
    else:
        bits = (hi.astype(np.uint64) << np.uint64(32)) | lo.astype(np.uint64)
    one = np.array(1.0, dtype).view(uint)
    floats = ((bits >> uint(8 * bits.itemsize - mantissa)) | one).view(dtype)
    return floats - np.array(1.0, dtype)
