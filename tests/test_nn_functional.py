"""Every nn registry row against `jax.vjp` of the same jnp program: values and gradients,
float32 and float64, on the cases of `op_cases_nn.CASES` (ties included)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad
import tapegrad.nn.utils.clip_grad  # noqa: F401  (registers its rows)
from tapegrad._core import graph as _graph
from tapegrad._tensor.apply import apply

from helpers import DTYPES, tol
from op_cases_nn import CASES

_NN_MODULES = ("tapegrad.nn._functional_activation", "tapegrad.nn._functional_conv",
               "tapegrad.nn._functional_layers", "tapegrad.nn._functional_loss",
               "tapegrad.nn.modules.rnn", "tapegrad.nn.utils.clip_grad")


def _params():
    return [pytest.param(name, dtype, id=f"{name}-{dtype.name}")
            for name in CASES for dtype in DTYPES]


def _is_float(a) -> bool:
    return np.asarray(a).dtype.kind == "f"


def _as_tuple(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def _reference(op, cases, dtype, cotangents):
    """Per case, the outputs and input gradients by jax.vjp of the row's own function (x64 mode,
    as tapegrad); all cases of one row in one compiled program."""
    with jax.enable_x64(True):
        prepared = []
        for args, static in cases:
            arrays = [jnp.asarray(a, dtype.np) if _is_float(a) else jnp.asarray(a) for a in args]
            prepared.append((arrays, [i for i, a in enumerate(args) if _is_float(a)], static))

        @jax.jit
        def run(floats_per_case, cts_per_case):
            results = []
            for (arrays, where, static), floats, cts in zip(prepared, floats_per_case, cts_per_case):
                def fn(*fl, arrays=arrays, where=where, static=static):
                    full = list(arrays)
                    for i, f in zip(where, fl):
                        full[i] = f
                    return _as_tuple(op.fn(*full, **static))
                outs, vjp_fn = jax.vjp(fn, *floats)
                grads = vjp_fn(tuple(c.astype(o.dtype) for c, o in zip(cts, outs))) \
                    if op.differentiable else None
                results.append((outs, grads))
            return results
        floats = [[arrays[i] for i in where] for arrays, where, _ in prepared]
        return jax.tree_util.tree_map(np.asarray, run(floats, cotangents))


@pytest.mark.parametrize("name,dtype", _params())
def test_row_matches_jax_vjp(name, dtype):
    op = _graph.REGISTRY[name]
    cases = CASES[name]
    rng = np.random.default_rng(7)
    inputs, outs, cts = [], [], []
    for args, static in cases:
        xs = [tapegrad.tensor(np.asarray(a), dtype=dtype, requires_grad=op.differentiable)
              if _is_float(a) else tapegrad.tensor(np.asarray(a)) for a in args]
        out = _as_tuple(apply(op, *xs, **static))
        inputs.append(xs)
        outs.append(out)
        cts.append(tuple(rng.uniform(0.5, 1.5, tuple(o.shape)) for o in out))
    reference = _reference(op, cases, dtype, cts)
    if op.differentiable:  # backward first: it computes the forward values too
        total = sum((o * tapegrad.tensor(c, dtype=o.dtype)).sum()
                    for out, ct in zip(outs, cts) for o, c in zip(out, ct))
        total.backward()
        for xs, (_, ref_grads) in zip(inputs, reference):
            leaves = [t for t in xs if t.requires_grad]
            assert len(leaves) == len(ref_grads)
            for leaf, g in zip(leaves, ref_grads):
                assert leaf.grad is not None
                np.testing.assert_allclose(leaf.grad.numpy(), g, **tol(dtype))
    for out, (ref_outs, _) in zip(outs, reference):
        for o, r in zip(out, ref_outs):
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
