"""The places tapegrad reaches into JAX's private API (two of them).

A Python number reaches a compiled program inside an array (see `compile.arguments`); unpacked,
it must promote as the Python number would, which only a *weakly typed* scalar does. JAX makes
weak types from Python scalars but offers no public way to mark a traced array weak, so this uses
`jax._src.lax.lax._convert_element_type(..., weak_type=True)`.

`tapegrad.distributed` checks that every process runs the same collective before XLA runs it
(XLA's collectives would hang on a missing process, or reduce mismatched buffers silently), over
the key-value store of JAX's coordination service, whose reads take timeouts. JAX keeps that
client in `jax._src.distributed.global_state.client`.

`tests/test_jax_compat.py` fails loudly if a JAX release moves or changes either.
"""
from __future__ import annotations

from jax._src import distributed as _distributed
from jax._src.lax.lax import _convert_element_type


def weak_scalar(x, dtype):
    """`x` converted to `dtype` and marked weakly typed (it promotes like a Python scalar)."""
    return _convert_element_type(x, dtype, weak_type=True)


def distributed_client():
    """This process's client of JAX's coordination service, None before
    `jax.distributed.initialize`: `key_value_set`, `blocking_key_value_get(key, timeout_in_ms)`,
    `key_value_delete`, `wait_at_barrier(name, timeout_in_ms)`."""
    return _distributed.global_state.client
