"""Property test: random chains of ops over random broadcastable shapes; the tape's gradients
must equal `jax.grad` of the same program written in jnp."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

# (tapegrad op, jnp op): unary ops are applied to the running value; binary ones combine it with
# one of the inputs (broadcasting both ways); reductions keep a dimension so chains continue.
UNARY = [
    (lambda x: x.tanh(), jnp.tanh), (lambda x: x.sin(), jnp.sin),
    (lambda x: x.sigmoid(), jax.nn.sigmoid), (lambda x: (x * x + 1).log(), lambda x: jnp.log(x * x + 1)),
    (lambda x: x.exp().clamp(max=5.0), lambda x: jnp.minimum(jnp.exp(x), 5.0)),
    (lambda x: x.abs().sqrt() + 1, lambda x: jnp.sqrt(jnp.abs(x)) + 1),
    (lambda x: tg.erf(x), jax.scipy.special.erf), (lambda x: x.square(), jnp.square),
    (lambda x: x.cumsum(-1), lambda x: jnp.cumsum(x, -1)),
    (lambda x: x.flip(-1), lambda x: jnp.flip(x, -1)),
    (lambda x: x - x.logsumexp(-1, keepdim=True), lambda x: x - jax.nn.logsumexp(x, -1, keepdims=True)),
    (lambda x: x.amax(-1, keepdim=True) * x, lambda x: x.max(-1, keepdims=True) * x),
    (lambda x: x.mean(0, keepdim=True) - x, lambda x: x.mean(0, keepdims=True) - x),
    (lambda x: x.transpose(-1, -2).contiguous().transpose(-1, -2),
     lambda x: x),
]
BINARY = [
    (lambda a, b: a + b, jnp.add), (lambda a, b: a * b, jnp.multiply),
    (lambda a, b: a - 2 * b, lambda a, b: a - 2 * b),
    (lambda a, b: a / (b * b + 1), lambda a, b: a / (b * b + 1)),
    (tg.maximum, jnp.maximum), (lambda a, b: tg.where(a > b, a, b * 0.5),
                                lambda a, b: jnp.where(a > b, a, b * 0.5)),
    (lambda a, b: tg.atan2(a, b * b + 1), lambda a, b: jnp.arctan2(a, b * b + 1)),
]


@st.composite
def programs(draw):
    base = draw(st.lists(st.integers(2, 3), min_size=2, max_size=3))
    # each input drops some dimensions to 1 (or leading ones entirely): broadcastable shapes
    shapes = []
    for _ in range(draw(st.integers(1, 3))):
        shape = [d if draw(st.booleans()) else 1 for d in base]
        shapes.append(tuple(shape[draw(st.integers(0, len(shape) - 1)):]) if draw(st.booleans())
                      else tuple(shape))
    steps = draw(st.lists(st.tuples(st.booleans(), st.integers(0, 100), st.integers(0, 100)),
                          min_size=1, max_size=5))
    seed = draw(st.integers(0, 2**31))
    return shapes, steps, seed


def _run(shapes, steps, inputs, unary_ops, binary_ops, k):
    x = inputs[0]
    for is_binary, op, arg in steps:
        if is_binary:
            x = binary_ops[op % len(binary_ops)](x, inputs[arg % len(inputs)])
        else:
            x = unary_ops[op % len(unary_ops)](x)
    return x


@settings(max_examples=20, deadline=None, derandomize=True)
@given(programs())
def test_random_chains_match_jax_grad(program):
    shapes, steps, seed = program
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-1.5, 1.5, s) for s in shapes]
    leaves = [tg.tensor(a, requires_grad=True) for a in arrays]
    out = _run(shapes, steps, leaves, [u[0] for u in UNARY], [b[0] for b in BINARY], 0)
    loss = (out * out).sum() + sum(t.sum() for t in leaves) * 0.5  # every input is used
    loss.backward()

    def ref(*xs):
        y = _run(shapes, steps, xs, [u[1] for u in UNARY], [b[1] for b in BINARY], 1)
        return (y * y).sum() + sum(x.sum() for x in xs) * 0.5

    with jax.enable_x64(True):
        value, grads = jax.value_and_grad(ref, argnums=tuple(range(len(arrays))))(
            *[jnp.asarray(a) for a in arrays])
    np.testing.assert_allclose(loss.item(), float(value), rtol=1e-9)
    for t, g in zip(leaves, grads):
        assert t.grad is not None and t.grad.shape == t.shape
        np.testing.assert_allclose(t.grad.numpy(), np.asarray(g), rtol=1e-8, atol=1e-10)
