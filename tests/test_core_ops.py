"""The core ops (issue 2's scope) against jax.grad of the same jnp program: float32 and float64,
broadcasting, 0-d tensors, Python scalars on either side, and ties."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
from helpers import DTYPES, assert_close, jax_value_and_grads

# (name, tapegrad program, jnp program, input shapes); inputs are drawn away from singularities
CASES = [
    ("add", lambda a, b: a + b, lambda a, b: a + b, [(2, 3), (3,)]),
    ("add_0d", lambda a, b: a + b, lambda a, b: a + b, [(), (2, 1)]),
    ("sub", lambda a, b: a - b, lambda a, b: a - b, [(2, 1), (1, 3)]),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, [(4,), ()]),
    ("div", lambda a, b: a / b, lambda a, b: a / b, [(2, 3), (2, 1)]),
    ("pow", lambda a, b: a ** b, lambda a, b: a ** b, [(3,), (3,)]),
    ("matmul", lambda a, b: a @ b, lambda a, b: a @ b, [(2, 3), (3, 4)]),
    ("matmul_batched", lambda a, b: a @ b, lambda a, b: a @ b, [(2, 2, 3), (3,)]),
    ("scalar_left", lambda a: 2.0 - a / 3 + 1 / a, lambda a: 2.0 - a / 3 + 1 / a, [(3,)]),
    ("scalar_pow", lambda a: 2 ** a + a ** 2 + a ** 0.5, lambda a: 2 ** a + a ** 2 + a ** 0.5,
     [(2, 2)]),
    ("neg", lambda a: -a, lambda a: -a, [(3,)]),
    ("exp", tg.exp, jnp.exp, [(2, 3)]),
    ("log", tg.log, jnp.log, [(3,)]),
    ("sqrt", tg.sqrt, jnp.sqrt, [()]),
    ("sin", tg.sin, jnp.sin, [(3,)]),
    ("cos", tg.cos, jnp.cos, [(3,)]),
    ("tanh", tg.tanh, jnp.tanh, [(2, 2)]),
    ("sigmoid", tg.sigmoid, jax.nn.sigmoid, [(3,)]),
    ("relu", tg.relu, lambda a: jnp.where(a > 0, a, 0.0), [(2, 3)]),
    ("abs", tg.abs, jnp.abs, [(3,)]),
    ("clamp", lambda a: a.clamp(0.8, 1.2), lambda a: jnp.where(a < 0.8, 0.8, jnp.where(a > 1.2, 1.2, a)),
     [(2, 3)]),
    ("clamp_min", lambda a: a.clamp(min=1.0), lambda a: jnp.where(a < 1.0, 1.0, a), [(4,)]),
    ("sum_all", lambda a: a.sum(), jnp.sum, [(2, 3)]),
    ("sum_dim", lambda a: a.sum(1), lambda a: a.sum(1), [(2, 3)]),
    ("sum_dims_keepdim", lambda a: a.sum((0, 2), keepdim=True),
     lambda a: a.sum((0, 2), keepdims=True), [(2, 3, 2)]),
    ("mean", lambda a: a.mean(-1, keepdim=True), lambda a: a.mean(-1, keepdims=True), [(2, 3)]),
    ("reshape", lambda a: a.reshape(3, -1), lambda a: a.reshape(3, -1), [(2, 3)]),
    ("view", lambda a: a.view(6), lambda a: a.reshape(6), [(2, 3)]),
    ("transpose", lambda a: a.transpose(0, 2), lambda a: jnp.swapaxes(a, 0, 2), [(2, 3, 1)]),
    ("t", lambda a: a.t(), lambda a: a.T, [(2, 3)]),
    ("permute", lambda a: a.permute(2, 0, 1), lambda a: jnp.transpose(a, (2, 0, 1)), [(2, 3, 4)]),
    ("slice", lambda a: a[1:, ::2], lambda a: a[1:, ::2], [(3, 4)]),
    ("index_neg", lambda a: a[-1, None, ..., 0], lambda a: a[-1, None, ..., 0], [(2, 3, 2)]),
    ("transposed_input", lambda a: (a.t() * 2).sum(0), lambda a: (a.T * 2).sum(0), [(3, 2)]),
]


def _inputs(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.5, 1.5, size=s) for s in shapes]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name, tg_fn, jnp_fn, shapes", CASES, ids=[c[0] for c in CASES])
def test_core_op_matches_jax_grad(name, tg_fn, jnp_fn, shapes, dtype):
    arrays = _inputs(shapes)
    expected, grads = jax_value_and_grads(lambda *xs: jnp_fn(*xs), *[a.astype(dtype.np) for a in arrays])
    inputs = [tg.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    out = tg_fn(*inputs)
    assert out.dtype is dtype and out.shape == expected.shape
    out.backward(tg.ones_like(out))
    assert_close(out, expected, dtype)
    for t, g in zip(inputs, grads):
        assert t.grad.shape == t.shape
        assert_close(t.grad, g, dtype)


@pytest.mark.parametrize("fn, x, expected_grad", [
    (tg.relu, [-1.0, 0.0, 2.0], [0.0, 0.0, 1.0]),           # relu'(0) = 0, as PyTorch
    (tg.abs, [-1.0, 0.0, 2.0], [-1.0, 0.0, 1.0]),           # abs'(0) = 0
    (lambda a: a.clamp(0.0, 1.0), [0.0, 1.0, 2.0], [1.0, 1.0, 0.0]),  # bounds pass the gradient
    (lambda a: tg.maximum(a, tg.zeros(3)), [-1.0, 0.0, 1.0], [0.0, 0.5, 1.0]),  # ties split
])
def test_ties_follow_pytorch(fn, x, expected_grad):
    t = tg.tensor(x, requires_grad=True)
    fn(t).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), expected_grad)


def test_type_promotion():
    i = tg.tensor([1, 2])
    f = tg.tensor([1.0, 2.0])
    assert (i + 1).dtype is tg.int64 and (i + 1.5).dtype is tg.float32
    assert (i / 2).dtype is tg.float32 and (i / i).dtype is tg.float32
    assert (f + tg.tensor([1.0], dtype=tg.float64)).dtype is tg.float64
    assert (f + tg.tensor(1.0, dtype=tg.float64)).dtype is tg.float32  # 0-d ranks lower
    assert (i + tg.tensor(1.0, dtype=tg.float64)).dtype is tg.float64
    assert (tg.tensor([True]) + tg.tensor([True])).dtype is tg.bool
    assert (i.to(tg.int32) + 1).dtype is tg.int32
    assert tg.promote_types(tg.int32, tg.float16) is tg.float16
    assert (i // 2).tolist() == [0, 1] and (i % 2).tolist() == [1, 0]


def test_torch_parity_of_core_ops():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(4,))
    ta = torch.tensor(a, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    ref = ((ta * tb).relu().sum(1) + (ta @ tb).tanh() - ta.abs().mean(1) ** 2).clamp(-1, 2).sum()
    ref.backward()
    ga = tg.tensor(a, requires_grad=True)
    gb = tg.tensor(b, requires_grad=True)
    out = ((ga * gb).relu().sum(1) + (ga @ gb).tanh() - ga.abs().mean(1) ** 2).clamp(-1, 2).sum()
    out.backward()
    np.testing.assert_allclose(out.item(), ref.item(), rtol=1e-12)
    np.testing.assert_allclose(ga.grad.numpy(), ta.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb.grad.numpy(), tb.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_softmax_as_function_and_method():
    x = tg.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    np.testing.assert_allclose(x.softmax(-1).detach().numpy(),
                               np.asarray(jax.nn.softmax(jnp.array([[1.0, 2.0, 3.0]]))), rtol=1e-6)
    np.testing.assert_allclose(tg.log_softmax(x, dim=1).detach().numpy(),
                               np.asarray(jax.nn.log_softmax(jnp.array([[1.0, 2.0, 3.0]]))),
                               rtol=1e-6)
