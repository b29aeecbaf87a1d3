"""The places tapegrad reaches into JAX's private API (three of them).

A Python number reaches a compiled program inside an array (see `compile.arguments`); unpacked,
it must promote as the Python number would, which only a *weakly typed* scalar does. JAX makes
weak types from Python scalars but offers no public way to mark a traced array weak, so this uses
`jax._src.lax.lax._convert_element_type(..., weak_type=True)`.

`tapegrad.distributed` checks that every process runs the same collective before XLA runs it
(XLA's collectives would hang on a missing process, or reduce mismatched buffers silently), over
the key-value store of JAX's coordination service, whose reads take timeouts. JAX keeps that
client in `jax._src.distributed.global_state.client`.

A numpy array becomes a device array at every `tensor(numpy_array)` of a data loop, and a
ragged batch is padded on the host; `jax.device_put` spends about 30 us per array on its
placement rules and pytree handling, where the transfer itself takes 3-4 us. `put` calls the
transfer JAX's own `device_put` ends in, `jax._src.interpreters.pxla.batched_device_put`.

`tests/test_jax_compat.py` fails loudly if a JAX release moves or changes any of them.
"""
from __future__ import annotations

import functools

import jax
import numpy as np
from jax._src import core as _core, distributed as _distributed
from jax._src.interpreters import pxla as _pxla
from jax._src.lax.lax import _convert_element_type


def weak_scalar(x, dtype):
    """`x` converted to `dtype` and marked weakly typed (it promotes like a Python scalar)."""
    return _convert_element_type(x, dtype, weak_type=True)


def distributed_client():
    """This process's client of JAX's coordination service, None before
    `jax.distributed.initialize`: `key_value_set`, `blocking_key_value_get(key, timeout_in_ms)`,
    `key_value_delete`, `wait_at_barrier(name, timeout_in_ms)`."""
    return _distributed.global_state.client


@functools.lru_cache(maxsize=None)
def _on(device) -> jax.sharding.SingleDeviceSharding:
    return jax.sharding.SingleDeviceSharding(device)


def put(host: np.ndarray, device=None, committed: bool | None = None) -> jax.Array:
    """`jax.device_put(host, device)` for a numpy array, its dtype kept (float64 and int64
    included). Committed to `device` when given (unless `committed` says otherwise); else on the
    default device, uncommitted, as `jax.device_put(host)` leaves it. (jax.jit compiles a
    program again for arguments committed where they were not before.)"""
    if committed is None:
        committed = device is not None
    if device is None:
        device = _pxla.get_default_device()
    aval = _core.ShapedArray(host.shape, host.dtype)
    return _pxla.batched_device_put(aval, _on(device), [host], [device], committed,
                                    enable_x64=True)
