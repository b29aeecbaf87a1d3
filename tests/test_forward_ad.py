"""autograd.forward_ad: dual tensors against jax.jvp of independent jnp programs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
import tapegrad.autograd.forward_ad as fwAD


@pytest.fixture(autouse=True)
def _x64():  # the jnp references compute float64 in float64
    with jax.enable_x64(True):
        yield


def _close(t, want, dtype):
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert t.numpy().dtype == np.asarray(want).dtype
    np.testing.assert_allclose(t.numpy(), np.asarray(want), rtol=tol, atol=tol)


def f_tg(x, w, s):  # broadcasting, a reduction with ties, a 0-d input, views, an in-place op
    h = (x * w).tanh() + x.exp() * s
    y = h.clone()
    y[:, 1:].mul_(2.0)
    return y.t().max(0).values + (x[::2] ** 2).sum()


def f_jnp(x, w, s):
    h = jnp.tanh(x * w) + jnp.exp(x) * s
    y = h.at[:, 1:].multiply(2.0)
    return y.T.max(0) + (x[::2] ** 2).sum()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tangents_match_jax_jvp(dtype):
    rng = np.random.default_rng(0)
    x, tx = rng.normal(size=(4, 3)).astype(dtype), rng.normal(size=(4, 3)).astype(dtype)
    w, tw = rng.normal(size=(3,)).astype(dtype), rng.normal(size=(3,)).astype(dtype)
    s, ts = np.asarray(0.7, dtype), np.asarray(-0.3, dtype)
    want, want_t = jax.jvp(f_jnp, (x, w, s), (tx, tw, ts))
    with fwAD.dual_level():
        duals = [fwAD.make_dual(tg.tensor(p), tg.tensor(t)) for p, t in ((x, tx), (w, tw), (s, ts))]
        primal, tangent = fwAD.unpack_dual(f_tg(*duals))
    _close(primal, want, dtype)
    _close(tangent, want_t, dtype)


def test_ties_and_a_non_contiguous_dual():
    x = np.array([[1.0, 3.0], [3.0, 2.0]])
    t = np.array([[0.1, 0.2], [0.3, 0.4]])
    with fwAD.dual_level():
        d = fwAD.make_dual(tg.tensor(x).t(), tg.tensor(t).t())
        out = fwAD.unpack_dual(d.amax() + d.relu().sum())
    want = jax.jvp(lambda a: a.max() + jax.nn.relu(a).sum(), (x.T,), (t.T,))
    _close(out.primal, want[0], np.float64)
    _close(out.tangent, want[1], np.float64)


def test_non_duals_and_exiting_the_level():
    x = tg.tensor([1.0, 2.0])
    assert fwAD.unpack_dual(x).tangent is None  # no level
    with fwAD.dual_level() as level:
        assert isinstance(level, int)
        d = fwAD.make_dual(x, tg.ones(2))
        y = d * 3
        assert fwAD.unpack_dual(tg.ones(2) * 2).tangent is None
        assert fwAD.unpack_dual(d.argmax()).tangent is None  # integer result
        primal = fwAD.unpack_dual(y).primal
        assert fwAD.unpack_dual(primal).tangent is None  # the primal is a plain view
        np.testing.assert_array_equal(fwAD.unpack_dual(y).tangent.numpy(), [3.0, 3.0])
    assert fwAD.unpack_dual(y).tangent is None
    np.testing.assert_array_equal(y.numpy(), [3.0, 6.0])


def test_a_dual_keeps_its_autograd_history():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with fwAD.dual_level():
        y = fwAD.make_dual(x, tg.tensor([1.0, -1.0])).sin()
        np.testing.assert_allclose(fwAD.unpack_dual(y).tangent.numpy(),
                                   np.cos([1.0, 2.0]) * [1.0, -1.0], rtol=1e-6)
        y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cos([1.0, 2.0]), rtol=1e-6)


def test_enter_and_exit_by_hand_and_errors():
    with pytest.raises(RuntimeError, match="no level exists, make sure to enter_dual_level"):
        fwAD.make_dual(tg.ones(2), tg.ones(2))
    level = fwAD.enter_dual_level()
    try:
        with pytest.raises(RuntimeError, match="Nested forward mode AD is not supported"):
            fwAD.enter_dual_level()
        with pytest.raises(RuntimeError, match=r"different size .* Tensor is of size \[3\] while "
                           r"the given forward gradient is of size \[2\]"):
            fwAD.make_dual(tg.ones(3), tg.ones(2))
        with pytest.raises(ValueError, match="Expected primal to be floating point or complex"):
            fwAD.make_dual(tg.ones(2, dtype=tg.int64), tg.ones(2))
    finally:
        fwAD.exit_dual_level(level=level)
    with pytest.raises(RuntimeError, match="not the last one"):
        fwAD.exit_dual_level(level=level)
