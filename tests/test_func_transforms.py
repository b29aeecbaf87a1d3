"""tapegrad.func's transforms against the same JAX transform of an independent jnp program."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
from tapegrad import func as tf

DTYPES = [np.float32, np.float64]


@pytest.fixture(autouse=True)
def _x64():  # the jnp references compute float64 in float64
    with jax.enable_x64(True):
        yield


def _close(got, want, dtype=np.float64):
    tol = 1e-5 if dtype == np.float32 else 1e-12
    got_leaves = jax.tree.leaves(got, is_leaf=lambda x: isinstance(x, tg.Tensor))
    want_leaves = jax.tree.leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        assert isinstance(g, tg.Tensor)
        assert tuple(g.shape) == tuple(np.shape(w))
        assert g.numpy().dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g.numpy(), np.asarray(w), rtol=tol, atol=tol)


def _inputs(dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4)).astype(dtype)
    w = rng.normal(size=(4,)).astype(dtype)  # broadcast against x's rows
    s = np.asarray(rng.normal(), dtype=dtype)  # a 0-d input
    return x, w, s


def f_tg(x, w, s):
    return ((x * w).tanh() * s + x.exp() * 0.1).sum()


def f_jnp(x, w, s):
    return (jnp.tanh(x * w) * s + jnp.exp(x) * 0.1).sum()


def g_tg(x, w):  # a vector-valued function (pytree output)
    return {"a": (x * w).sin(), "b": (x ** 2).sum(1)}


def g_jnp(x, w):
    return {"a": jnp.sin(x * w), "b": (x ** 2).sum(1)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("argnums", [0, 1, 2, (0, 2), (1, 0)])
def test_grad_and_grad_and_value(dtype, argnums):
    arrays = _inputs(dtype)
    ts = [tg.tensor(a) for a in arrays]
    _close(tf.grad(f_tg, argnums=argnums)(*ts), jax.grad(f_jnp, argnums)(*arrays), dtype)
    (g, v) = tf.grad_and_value(f_tg, argnums=argnums)(*ts)
    wv, wg = jax.value_and_grad(f_jnp, argnums)(*arrays)
    _close((g, v), (wg, wv), dtype)


def test_grad_of_a_non_contiguous_view_and_aux():
    x = np.random.default_rng(1).normal(size=(4, 3))
    t = tg.tensor(x).t()  # non-contiguous
    got, aux = tf.grad(lambda a: ((a.sin() ** 2).sum(), {"m": a.mean()}), has_aux=True)(t)
    want, waux = jax.grad(lambda a: ((jnp.sin(a) ** 2).sum(), {"m": a.mean()}),
                          has_aux=True)(x.T)
    _close((got, aux), (want, waux))


def test_grad_of_grad_and_jit():
    x = np.linspace(-1, 1, 5)

    def inner(a):
        return tf.grad(lambda b: (b.sin() * b).sum())(a).sum()

    want = jax.grad(lambda a: jax.grad(lambda b: (jnp.sin(b) * b).sum())(a).sum())(x)
    _close(tf.grad(inner)(tg.tensor(x)), want)
    jitted = jax.jit(lambda a: tf.grad(inner)(tg.as_tensor(a)).jax())
    np.testing.assert_allclose(jitted(x), want, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vjp_and_jvp(dtype):
    x, w, _ = _inputs(dtype)
    out, vjp_fn = tf.vjp(g_tg, tg.tensor(x), tg.tensor(w))
    wout, wvjp = jax.vjp(g_jnp, x, w)
    ct = {"a": np.ones((3, 4), dtype) * 0.5, "b": np.arange(3, dtype=dtype)}
    _close(out, wout, dtype)
    _close(vjp_fn({k: tg.tensor(v) for k, v in ct.items()}), wvjp(ct), dtype)
    tx, tw = np.full_like(x, 0.3), np.linspace(-1, 1, 4).astype(dtype)
    got = tf.jvp(g_tg, (tg.tensor(x), tg.tensor(w)), (tg.tensor(tx), tg.tensor(tw)))
    _close(got, jax.jvp(g_jnp, (x, w), (tx, tw)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("argnums", [0, (0, 1)])
def test_jacrev_jacfwd(dtype, argnums):
    x, w, _ = _inputs(dtype)
    for ours, theirs in ((tf.jacrev, jax.jacrev), (tf.jacfwd, jax.jacfwd)):
        _close(ours(g_tg, argnums=argnums)(tg.tensor(x), tg.tensor(w)),
               theirs(g_jnp, argnums=argnums)(x, w), dtype)


def test_hessian_and_jacrev_of_jacfwd():
    x, w, s = _inputs(np.float64)
    want = jax.hessian(f_jnp, argnums=(0, 1))(x, w, s)
    _close(tf.hessian(f_tg, argnums=(0, 1))(tg.tensor(x), tg.tensor(w), tg.tensor(s)), want)
    got = tf.jacrev(tf.jacfwd(f_tg))(tg.tensor(x), tg.tensor(w), tg.tensor(s))
    _close(got, jax.jacrev(jax.jacfwd(f_jnp))(x, w, s))


@pytest.mark.parametrize("dtype", DTYPES)
def test_vmap_dims_and_chunks(dtype):
    x, _, s = _inputs(dtype)
    w = x[:, 0] * 2  # one value per row of a column x[:, j]
    ts = tg.tensor(x), tg.tensor(w), tg.tensor(s)

    def h_tg(a, b, c):
        return (a * b).cos() * c, a.sum()

    def h_jnp(a, b, c):
        return jnp.cos(a * b) * c, a.sum()

    for kwargs in ({}, {"chunk_size": 2}):
        got = tf.vmap(h_tg, in_dims=(1, None, None), out_dims=(1, 0), **kwargs)(*ts)
        _close(got, jax.vmap(h_jnp, in_axes=(1, None, None), out_axes=(1, 0))(x, w, s), dtype)
    nested = tf.vmap(tf.vmap(lambda a, b: a * b, in_dims=(0, None)), in_dims=(0, None))
    _close(nested(ts[0], ts[2]), x * s, dtype)


def test_per_sample_gradients_vmap_of_grad():
    x, w, _ = _inputs(np.float64)
    y = np.arange(3.0)

    def loss_tg(w_, x_, y_):
        return ((x_ * w_).sum() - y_) ** 2

    def loss_jnp(w_, x_, y_):
        return ((x_ * w_).sum() - y_) ** 2

    got = tf.vmap(tf.grad(loss_tg), in_dims=(None, 0, 0))(tg.tensor(w), tg.tensor(x), tg.tensor(y))
    _close(got, jax.vmap(jax.grad(loss_jnp), in_axes=(None, 0, 0))(w, x, y))


def test_vmap_randomness():
    x = tg.zeros(4, 3)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        tf.vmap(lambda a: a + tg.rand(3))(x)
    with pytest.raises(RuntimeError, match="Only allowed values for randomness"):
        tf.vmap(lambda a: a, randomness="other")
    same = tf.vmap(lambda a: a + tg.rand(3), randomness="same")(x).numpy()
    different = tf.vmap(lambda a: a + tg.rand(3), randomness="different")(x).numpy()
    assert (same == same[0]).all() and len({tuple(r) for r in different}) == 4
    assert ((0 <= different) & (different < 1)).all()
    tg.manual_seed(3)
    first = tf.vmap(lambda a: a + tg.randn(3), randomness="different")(x).numpy()
    tg.manual_seed(3)
    np.testing.assert_array_equal(
        tf.vmap(lambda a: a + tg.randn(3), randomness="different")(x).numpy(), first)
    assert not np.array_equal(
        tf.vmap(lambda a: a + tg.randn(3), randomness="different")(x).numpy(), first)


def test_errors():
    x = tg.ones(3)
    with pytest.raises(RuntimeError, match=r"grad_and_value\(f\)\(\*args\): Expected f\(\*args\) "
                       r"to return a scalar Tensor, got tensor with 1 dims. Maybe you wanted to "
                       r"use the vjp or jacrev APIs instead\?"):
        tf.grad(lambda a: a * 2)(x)
    with pytest.raises(RuntimeError, match="output of function f should be a tuple"):
        tf.grad(lambda a: a.sum(), has_aux=True)(x)
    with pytest.raises(RuntimeError, match="Got argnum=2, but only 1 positional inputs"):
        tf.grad(lambda a: a.sum(), argnums=2)(x)
    with pytest.raises(ValueError, match="in_dims is not compatible with the structure"):
        tf.vmap(lambda a, b: a + b, in_dims=(0,))(x, x)
    with pytest.raises(ValueError, match=r"same size in the mapped dimension, got sizes \[3, 2\]"):
        tf.vmap(lambda a, b: a + b)(x, tg.ones(2))
    with pytest.raises(ValueError, match="We cannot vmap over non-Tensor arguments"):
        tf.vmap(lambda a, b: a + b)(x, 1.0)
    with pytest.raises(ValueError, match="expected in_dim to satisfy -1 <= in_dim < 1"):
        tf.vmap(lambda a: a, in_dims=1)(x)
    with pytest.raises(RuntimeError, match="Expected primals to be a tuple"):
        tf.jvp(lambda a: a, x, x)
    with pytest.raises(ValueError, match="chunk_size"):
        tf.jacrev(lambda a: a, chunk_size=0)
