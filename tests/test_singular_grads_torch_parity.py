"""Gradients at singular points against PyTorch: where PyTorch defines a value (`0 ** 0`,
`0 ** -1`, `x ** 0.0` at 0), tapegrad's must be the same, never jnp's nan."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")

BASES = [0.0, 0.0, 0.0, 0.0, 2.0, -2.0, 0.0, 0.0]
EXPONENTS = [-1.0, 0.0, 0.5, 2.0, 0.0, 3.0, -2.5, 1.0]


def _grads(lib, make):
    a = lib.tensor(BASES, requires_grad=True)
    b = lib.tensor(EXPONENTS, requires_grad=True)
    make(a, b).sum().backward()
    return [np.asarray(g.tolist()) if g is not None else None for g in (a.grad, b.grad)]


@pytest.mark.parametrize("make", [
    lambda a, b: a ** b,
    lambda a, b: a.pow(b.detach()),
    lambda a, b: a.detach() ** b,
    *[(lambda e: lambda a, b: a ** e)(e) for e in (-1.0, 0.0, 0.5, 2.0, -2, 0, 3)],
    *[(lambda s: lambda a, b: s ** b)(s) for s in (0.0, 2.0, 0)],
    lambda a, b: tg.pow(a, b) if isinstance(a, tg.Tensor) else torch.pow(a, b),
])
def test_pow_gradients_match_pytorch(make):
    got, want = _grads(tg, make), _grads(torch, make)
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if w is not None:
            np.testing.assert_allclose(g, w, rtol=1e-6)  # inf, -inf and nan in the same places


def test_pow_second_derivative_is_jaxs_at_regular_points():
    a, b = 1.7, 2.3
    x = tg.tensor(a, requires_grad=True)
    (g,) = tg.autograd.grad(x ** b, x, create_graph=True)
    (h,) = tg.autograd.grad(g, x)
    want = jax.grad(jax.grad(lambda v: jnp.power(v, b)))(a)
    np.testing.assert_allclose(float(h), float(want), rtol=1e-6)
    y = tg.tensor(b, requires_grad=True)
    (g,) = tg.autograd.grad(a ** y, y, create_graph=True)
    (h,) = tg.autograd.grad(g, y)
    np.testing.assert_allclose(float(h), float(jax.grad(jax.grad(lambda v: a ** v))(b)), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_atan2_gradient_at_the_origin_matches_pytorch(dtype):
    """PyTorch's `(b da - a db) / (a**2 + b**2)` is 0 where the denominator is 0 (at (0, 0),
    and where it underflows), NaN only where `inf * 0` meets it."""
    ys, xs = [0.0, 0.0, -0.0, 1e-30, 0.0, 1.5, np.inf], [0.0, -0.0, 0.0, 0.0, 1e-30, -2.0, 1.0]
    results = []
    for m in (torch, tg):
        y = m.tensor(ys, dtype=getattr(m, dtype), requires_grad=True)
        x = m.tensor(xs, dtype=getattr(m, dtype), requires_grad=True)
        (m.atan2(y, x) * m.arange(1, 8)).sum().backward()
        results.append([np.asarray(t.tolist()) for t in (y.grad, x.grad)])
    for g, w in zip(*reversed(results)):
        np.testing.assert_allclose(g, w, rtol=1e-6)
