"""The one private JAX API tapegrad uses (`_core.jax_compat`): fails loudly when JAX changes it."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tapegrad._core.jax_compat import weak_scalar


def test_weak_scalar_promotes_like_a_python_number():
    # a weakly typed float64 scalar must not widen a float32 array, as `x * 2.0` does not
    with jax.enable_x64(True):
        x = jnp.ones(3, jnp.float32)
        packed = np.array([2.0], np.float64)

        @jax.jit
        def f(x, packed):
            return x * weak_scalar(packed[0], np.dtype(np.float64))

        out = f(x, packed)
        assert out.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(out), [2.0, 2.0, 2.0])
        # the same without the weak type widens: the check above is not vacuous
        assert (x * jnp.asarray(packed[0])).dtype == jnp.float64


def test_weak_scalar_is_weakly_typed():
    with jax.enable_x64(True):
        y = jax.jit(lambda v: weak_scalar(v, np.dtype(np.int64)))(np.int64(3))
        assert y.weak_type and y.dtype == jnp.int64


def test_distributed_client_is_jax_coordination_client():
    # None in a process that never called jax.distributed.initialize; the multi-process tests in
    # test_distributed.py use its key-value store and barriers (key_value_set,
    # blocking_key_value_get, key_value_delete, wait_at_barrier)
    from jax._src.lib import _jax

    from tapegrad._core.jax_compat import distributed_client
    assert distributed_client() is None
    for name in ("key_value_set", "blocking_key_value_get", "key_value_delete",
                 "wait_at_barrier"):
        assert callable(getattr(_jax.DistributedRuntimeClient, name))


def test_put_matches_device_put():
    # the transfer device_put ends in: values, dtype (64-bit kept), placement and commitment
    from tapegrad._core.jax_compat import put
    device = jax.devices()[-1]
    for host in (np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2],  # a strided view
                 np.array(2 ** 40, np.int64), np.zeros((0, 3), np.float32),
                 np.array([True, False])):
        with jax.enable_x64(True):
            want = jax.device_put(host)
        got = put(host)
        assert got.dtype == want.dtype == host.dtype and got.shape == host.shape
        assert not got.committed and got.devices() == want.devices()
        np.testing.assert_array_equal(np.asarray(got), host)
        placed = put(host, device)
        assert placed.committed and placed.devices() == {device}
        np.testing.assert_array_equal(np.asarray(placed), host)
