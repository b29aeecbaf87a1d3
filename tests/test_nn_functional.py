"""Every nn registry row against `jax.vjp` of the same jnp program: values and gradients,
float32 and float64, on the cases of `op_cases_nn.CASES` (ties included)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad
import tapegrad.nn.utils.clip_grad  # noqa: F401  (registers its rows)
from tapegrad import _graph
from tapegrad._record import apply

from helpers import DTYPES, tol
from op_cases_nn import CASES

_NN_MODULES = ("tapegrad._ops_nn", "tapegrad._ops_conv", "tapegrad._ops_rnn",
               "tapegrad.nn.utils.clip_grad")


def _params():
    out = []
    for name, cases in CASES.items():
        for i, case in enumerate(cases):
            for dtype in DTYPES:
                out.append(pytest.param(name, case, dtype, id=f"{name}-{i}-{dtype.name}"))
    return out


def _is_float(a) -> bool:
    return np.asarray(a).dtype.kind == "f"


def _reference(op, args, static, dtype, cotangents):
    """Outputs and input gradients by jax.vjp of the row's own function (x64 mode, as tapegrad),
    compiled as one program."""
    with jax.enable_x64(True):
        arrays = [jnp.asarray(a, dtype.np) if _is_float(a) else jnp.asarray(a) for a in args]
        where = [i for i, a in enumerate(args) if _is_float(a)]

        def fn(*floats):
            full = list(arrays)
            for i, f in zip(where, floats):
                full[i] = f
            out = op.fn(*full, **static)
            return out if isinstance(out, tuple) else (out,)

        @jax.jit
        def value_and_vjp(floats, cts):
            outs, vjp_fn = jax.vjp(fn, *floats)
            if not op.differentiable:
                return outs, None
            return outs, vjp_fn(tuple(c.astype(o.dtype) for c, o in zip(cts, outs)))
        outs, grads = value_and_vjp([arrays[i] for i in where], tuple(cotangents))
        return [np.asarray(o) for o in outs], None if grads is None else [np.asarray(g) for g in grads]


@pytest.mark.parametrize("name,case,dtype", _params())
def test_row_matches_jax_vjp(name, case, dtype):
    op = _graph.REGISTRY[name]
    args, static = case
    inputs = [tapegrad.tensor(np.asarray(a), dtype=dtype, requires_grad=op.differentiable)
              if _is_float(a) else tapegrad.tensor(np.asarray(a)) for a in args]
    out = apply(op, *inputs, **static)
    outs = out if isinstance(out, tuple) else (out,)
    rng = np.random.default_rng(7)
    cts = [rng.uniform(0.5, 1.5, tuple(o.shape)) for o in outs]
    ref_outs, ref_grads = _reference(op, args, static, dtype, cts)
    if ref_grads is not None:  # backward first: it computes the forward values too
        total = sum((o * tapegrad.tensor(c, dtype=o.dtype)).sum() for o, c in zip(outs, cts))
        total.backward()
        leaves = [t for t in inputs if t.requires_grad]
        for leaf, g in zip(leaves, ref_grads):
            assert leaf.grad is not None
            np.testing.assert_allclose(leaf.grad.numpy(), g, **tol(dtype))
    for o, r in zip(outs, ref_outs):
        assert o.dtype.np == r.dtype
        np.testing.assert_allclose(o.detach().numpy(), r, **tol(dtype))


def test_every_nn_row_has_a_case():
    rows = [name for name, op in _graph.REGISTRY.items()
            if getattr(op.fn, "__module__", None) in _NN_MODULES]
    assert len(rows) > 40
    assert sorted(set(rows) - set(CASES)) == []


@pytest.mark.parametrize("x,slope", [(0.0, 0.01), (-1.0, 0.2)])
def test_relu_family_ties(x, slope):
    """PyTorch's subgradients at the kinks, written out."""
    import tapegrad.nn.functional as F
    cases = {
        F.relu: 0.0 if x == 0 else 0.0,
        F.relu6: 0.0,
        lambda t: F.leaky_relu(t, slope): slope,
        F.hardtanh: 0.0 if x == -1.0 else 1.0,
    }
    for fn, expected in cases.items():
        t = tapegrad.tensor(x, requires_grad=True)
        fn(t).backward()
        assert t.grad.item() == pytest.approx(expected)
