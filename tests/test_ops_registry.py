"""Every registry row against `jax.vjp` of a jnp reference program (cases in `op_cases*.py`).

For each case and dtype (float32, float64): the program must record its row; the forward value
must equal the reference; the gradient for a random cotangent must equal the reference's vjp.
Each row runs in both tiers of `_core/compile.py`: compiled in full, and compiled cheaply (the
tier of a structure seen for the first time).
A differentiable row without a case fails `test_every_registered_op_has_a_case`.
"""
from __future__ import annotations

import importlib
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
from tapegrad._core.compile import materialize
from tapegrad._core.graph import REGISTRY, Node

from op_cases import A, Case, F, I


def _collect():
    """Cases from every `tests/op_cases*.py`. Program cases (`op_cases.Case`) run here; a module
    with row-level cases of its own format (`op_cases_nn.py`) runs them in its own test and only
    counts for coverage."""
    cases, skip = {}, {}
    for path in sorted(pathlib.Path(__file__).parent.glob("op_cases*.py")):
        module = importlib.import_module(path.stem)
        for op, entries in module.CASES.items():
            cases.setdefault(op, []).extend(entries)
        skip.update(getattr(module, "SKIP", {}))
    return cases, skip


CASES, SKIP = _collect()
ROWS = sorted(op for op, entries in CASES.items() if any(isinstance(c, Case) for c in entries))


def test_every_registered_op_has_a_case():
    missing = sorted(name for name, op in REGISTRY.items()
                     if op.differentiable and name not in CASES and name not in SKIP)
    assert not missing, f"registry rows without a test case in tests/op_cases*.py: {missing}"
    unknown = sorted(set(CASES) - set(REGISTRY))
    assert not unknown, f"cases for rows that are not registered: {unknown}"


def _arrays(c, np_dtype, rng):
    """(leaf arrays, how each is seen by the program: a function of the leaf, for both sides)."""
    out = []
    for spec in c.inputs:
        if isinstance(spec, F):
            shape = spec.shape
            if spec.view == "t":
                leaf_shape = shape[:-2] + (shape[-1], shape[-2])
                see = lambda x: x.transpose(-1, -2) if hasattr(x, "grad_fn") else jnp.swapaxes(x, -1, -2)  # noqa: E731
            elif spec.view == "s":
                leaf_shape = (2 * shape[0],) + shape[1:]
                see = lambda x: x[::2]  # noqa: E731
            else:
                leaf_shape, see = shape, (lambda x: x)
            out.append(("f", rng.uniform(spec.lo, spec.hi, leaf_shape).astype(np_dtype), see))
        elif isinstance(spec, A):
            out.append(("f", np.asarray(spec.values, np_dtype), lambda x: x))
        elif isinstance(spec, I):
            out.append(("i", np.asarray(spec.values, np.int64), lambda x: x))
        else:
            out.append(("b", np.asarray(spec.values, bool), lambda x: x))
    return out


def _recorded_ops(tensor) -> set:
    names, stack, seen = set(), [tensor._cell.node], set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.op is not None:
            names.add(n.op.name)
        stack.extend(i for i in n.inputs if isinstance(i, Node))
    return names


@pytest.fixture(params=["compiled", "cheap", "op by op"])
def tier(request):
    """The tier programs run in: compiled in full at once (the suite's threshold), compiled
    cheaply, as a structure met fewer than `set_compile_threshold` times is, or op by op, on
    each row's own forward and vjp executables, as a new structure of known rows is (float32
    only: the tiers differ in XLA's options and in where the chain rule is applied)."""
    if request.param == "cheap":
        tg.autograd.set_compile_threshold(2**30, op_by_op=0)
    elif request.param == "op by op":
        tg.autograd.set_compile_threshold(1, op_by_op=2**30)
    yield request.param
    tg.autograd.set_compile_threshold(1, op_by_op=0)


@pytest.mark.parametrize("op", ROWS)
def test_op_matches_jax(op, tier):
    """All cases of one row, float32 and float64 side by side: one tape and one backward, one
    jitted reference program (compiles dominate the cost, so each row compiles once per side)."""
    cases = [c for c in CASES[op] if isinstance(c, Case)]
    runs = []  # (case, dtype, specs, leaves, out, cotangent)
    dtypes = (np.float32, np.float64) if tier == "compiled" else (np.float32,)
    for k, c in enumerate(cases):
        seed = abs(hash((op, c.name, k))) % 2**32
        for np_dtype in dtypes:
            rng = np.random.default_rng(seed)
            specs = _arrays(c, np_dtype, rng)
            leaves = [tg.tensor(a, requires_grad=(kind == "f" and c.grad)) for kind, a, _ in specs]
            out = c.fn(*[see(t) for t, (_, _, see) in zip(leaves, specs)])
            assert op in _recorded_ops(out), f"case {c.name or k}: the program does not record {op!r}"
            ct = rng.standard_normal(tuple(out.shape)).astype(out.dtype.np) if c.grad else None
            runs.append((c, np_dtype, specs, leaves, out, ct))
    graded = [r for r in runs if r[0].grad]
    root = None
    if graded:  # one scalar root (sum of <out, cotangent>): one compiled backward for all cases,
        # which also computes the forward values
        root = sum(((r[4] * tg.tensor(r[5])).sum() for r in graded), tg.zeros(()))
        root.backward(retain_graph=True)
    materialize([r[4]._cell.node for r in runs if r[4]._cell.node.value is None])
    expected = _expected(op, cases, runs)

    for (c, np_dtype, specs, leaves, out, _), (value, grads) in zip(runs, expected):
        where = f"case {c.name or cases.index(c)}, {np.dtype(np_dtype).name}"
        scale = c.tol * (1e-4 if np_dtype == np.float32 else 1e-9)
        got = out.detach().numpy()
        assert got.shape == value.shape, where
        if value.dtype.kind == "f":
            assert got.dtype == value.dtype, (where, got.dtype, value.dtype)
            np.testing.assert_allclose(got, value, rtol=scale, atol=scale, err_msg=where)
        else:
            np.testing.assert_array_equal(got, value, err_msg=where)
        if not c.grad:
            continue
        float_leaves = [t for t, (kind, _, _) in zip(leaves, specs) if kind == "f"]
        for k, (t, g) in enumerate(zip(float_leaves, grads)):
            assert t.grad is not None, f"{where}: float input {k} got no gradient"
            assert t.grad.dtype == t.dtype, where
            np.testing.assert_allclose(t.grad.numpy(), g, rtol=scale, atol=scale,
                                       err_msg=f"{where}: gradient of input {k}")
    if root is not None:
        _check_second_backwards(root, runs, expected)


def _check_second_backwards(root, runs, expected):
    """A retained graph accumulates a second time; a freed one either raises PyTorch's error
    (it saved values the backward needs) or, when nothing was saved, accumulates once more: never
    a silent no-op."""
    def leaves_and_refs():
        for (c, np_dtype, specs, leaves, _, _), (_, grads) in zip(runs, expected):
            if c.grad:
                scale = c.tol * (1e-4 if np_dtype == np.float32 else 1e-9)
                floats = [t for t, (kind, _, _) in zip(leaves, specs) if kind == "f"]
                yield from ((t, g, scale) for t, g in zip(floats, grads))

    root.backward()  # the graph was retained: this one accumulates, then frees it
    for t, g, scale in leaves_and_refs():
        np.testing.assert_allclose(t.grad.numpy(), 2 * g, rtol=scale, atol=scale,
                                   err_msg="second backward with the graph retained")
    try:
        root.backward()
    except RuntimeError as e:
        assert "backward through the graph a second time" in str(e)
        return
    for t, g, scale in leaves_and_refs():
        np.testing.assert_allclose(t.grad.numpy(), 3 * g, rtol=scale, atol=scale,
                                   err_msg="backward through a freed graph that saved nothing")


def _reference(c, specs):
    """The case's jnp program as a function of its float inputs (constants closed over)."""
    def ref(*float_arrays):
        it = iter(float_arrays)
        args = [see(next(it)) if kind == "f" else see(a) for kind, a, see in specs]
        return c.ref(*args)
    return ref


_EXPECTED: dict = {}  # (row, case index, dtype) -> the reference's value and vjps


def _expected(op, cases, runs) -> list:
    """The references of `runs`: those not computed yet in one jitted call, the others (the
    float32 cases a tier met before, from the same seeded inputs) as computed then."""
    keys = [(op, cases.index(r[0]), np.dtype(r[1]).name) for r in runs]
    todo = [(k, r) for k, r in zip(keys, runs) if k not in _EXPECTED]
    if todo:
        got = _reference_run([_reference(r[0], r[2]) for _, r in todo],
                             [[a for kind, a, _ in r[2] if kind == "f"] for _, r in todo],
                             [r[5] for _, r in todo], [r[0].grad for _, r in todo])
        _EXPECTED.update(zip([k for k, _ in todo], got))
    return [_EXPECTED[k] for k in keys]


def _reference_run(refs, floats, cts, grads):
    """Values (and vjps) of the references, all in one jitted call: eager jnp would compile op by
    op, which is slower."""
    def run(floats, cts):
        out = []
        for ref, arrays, ct, grad in zip(refs, floats, cts, grads):
            if grad:
                value, vjp_fn = jax.vjp(ref, *arrays)
                out.append((value, vjp_fn(ct.astype(value.dtype))))
            else:
                out.append((ref(*arrays), ()))
        return out
    with jax.enable_x64(True):
        res = jax.jit(run)(floats, [0 if ct is None else ct for ct in cts])
    return [(np.asarray(v), [np.asarray(g) for g in gs]) for v, gs in res]
