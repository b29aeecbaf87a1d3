"""tapegrad.autograd.functional against JAX's transforms of the same program."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
from tapegrad.autograd import functional as AF
from helpers import assert_close


def f_tg(x, y):
    return (x.sin() * y).sum(0) + x[0] ** 2


def f_jnp(x, y):
    return (jnp.sin(x) * y).sum(0) + x[0] ** 2


def scalar_tg(x):
    return (x.tanh() ** 2 * x).sum()


def scalar_jnp(x):
    return jnp.sum(jnp.tanh(x) ** 2 * x)


X = np.array([[0.3, -1.2, 0.5], [2.0, 0.1, -0.7]])
Y = np.array([[1.5, 0.2, -0.4], [0.6, -1.1, 0.9]])


def _jax(fn, *args):
    with jax.enable_x64(True):
        return fn(*[jnp.asarray(a) for a in args])


def test_jacobian_matches_jacrev():
    jx, jy = _jax(jax.jacrev(f_jnp, argnums=(0, 1)), X, Y)
    gx, gy = AF.jacobian(f_tg, (tg.tensor(X), tg.tensor(Y)))
    assert gx.shape == (3, 2, 3) and gy.shape == (3, 2, 3)
    assert_close(gx, jx)
    assert_close(gy, jy)
    single = AF.jacobian(lambda x: f_tg(x, tg.tensor(Y)), tg.tensor(X))
    assert_close(single, jx)


def test_hessian_matches_jax_hessian():
    v = X[0]
    h = AF.hessian(scalar_tg, tg.tensor(v))
    assert_close(h, _jax(jax.hessian(scalar_jnp), v))


def test_vjp_jvp_hvp():
    v = np.array([1.0, -2.0, 0.5])
    out, g = AF.vjp(lambda x, y: f_tg(x, y), (tg.tensor(X), tg.tensor(Y)), tg.tensor(v))
    expected = _jax(lambda x, y, ct: jax.vjp(f_jnp, x, y)[1](ct), X, Y, v)
    assert_close(out, _jax(f_jnp, X, Y))
    assert_close(g[0], expected[0])
    assert_close(g[1], expected[1])
    tangent = np.ones_like(X)
    _, jv = AF.jvp(lambda x: f_tg(x, tg.tensor(Y)), tg.tensor(X), tg.tensor(tangent))
    assert_close(jv, _jax(lambda x, t: jax.jvp(lambda a: f_jnp(a, jnp.asarray(Y)), (x,), (t,))[1],
                          X, tangent))
    w = np.array([0.2, 0.4, -1.0])
    value, hv = AF.hvp(scalar_tg, tg.tensor(X[0]), tg.tensor(w))
    assert_close(value, _jax(scalar_jnp, X[0]))
    assert_close(hv, _jax(lambda x, t: jax.jvp(jax.grad(scalar_jnp), (x,), (t,))[1], X[0], w))
    with pytest.raises(RuntimeError, match="can only be None"):
        AF.vjp(lambda x: x * 2, tg.ones(3))


def test_create_graph_results_are_differentiable():
    x = tg.tensor(X[0], requires_grad=True)
    _, g = AF.vjp(scalar_tg, x, create_graph=True)
    g.sum().backward()
    assert_close(x.grad, _jax(jax.grad(lambda a: jnp.sum(jax.grad(scalar_jnp)(a))), X[0]))


@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
def test_vectorize_is_one_transform_not_a_backward_per_output_element(monkeypatch, strategy):
    # vectorize=False runs one backward per output element; vectorize=True must not run any
    calls = []
    monkeypatch.setattr(AF, "_grads", lambda *a: calls.append(a) or [])
    jx, jy = _jax(jax.jacrev(f_jnp, argnums=(0, 1)), X, Y)
    gx, gy = AF.jacobian(f_tg, (tg.tensor(X), tg.tensor(Y)), vectorize=True, strategy=strategy)
    assert_close(gx, jx)
    assert_close(gy, jy)
    h = AF.hessian(scalar_tg, tg.tensor(X[0]), vectorize=True,
                   outer_jacobian_strategy=strategy)
    assert_close(h, _jax(jax.hessian(scalar_jnp), X[0]))
    assert calls == []
