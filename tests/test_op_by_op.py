"""The op-by-op tier (`_autograd/op_by_op.py`, `_Cache.row` and `row_vjp`) and the tier switches
estimated from a program's size (`_core/compile.py`): values and gradients against `jax.grad`,
when a structure runs op by op and when it compiles, executables shared across graphs, and the
cache bound. Every registry row runs op by op in test_ops_registry.py; the optimizers' update
parameter by parameter in test_optim.py."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
from tapegrad._core import compile as _compile


@pytest.fixture
def tiers():
    """Set the tiers for one test (the suite's: in full at once, never op by op), cache cleared."""
    def set_to(threshold=None, op_by_op=None):
        tg.autograd.clear_cache()
        tg.autograd.set_compile_threshold(threshold, op_by_op=op_by_op)
    yield set_to
    tg.autograd.set_compile_threshold(1, op_by_op=0)


def segments() -> list:
    """The tier of each cached backward: 'op by op' (never compiled), 'cheap' or 'full'."""
    out = []
    for key, p in _compile.cache.programs.items():
        if key[0] == "segment":
            tiered = type(p) is _compile._Tiered
            out.append("full" if not tiered else "cheap" if p.quick is not None else "op by op")
    return out


def traces() -> int:
    return tg.autograd.cache_info().traces


RNG = np.random.default_rng(0)
WIDTH = 6
WS = [RNG.standard_normal((WIDTH, WIDTH)) * 0.5 for _ in range(4)]
BS = [RNG.standard_normal(WIDTH) * 0.1 for _ in range(4)]
HEAD = RNG.standard_normal((1, WIDTH))
X = RNG.standard_normal((5, WIDTH))
Y = RNG.standard_normal((5, 1))


def reference(depth, ws, bs, head):
    h = jnp.asarray(X, ws[0].dtype)
    for w, b in zip(ws[:depth], bs[:depth]):
        h = h + jnp.tanh(h @ w.T + b)
    return jnp.mean((h @ head.T - Y.astype(ws[0].dtype)) ** 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_a_changing_depth_runs_op_by_op_once_its_rows_are_known(tiers, dtype):
    tiers()  # the defaults: estimated
    ws = [tg.tensor(w.astype(dtype), requires_grad=True) for w in WS]
    bs = [tg.tensor(b.astype(dtype), requires_grad=True) for b in BS]
    head = tg.tensor(HEAD.astype(dtype), requires_grad=True)
    x, y = tg.tensor(X.astype(dtype)), tg.tensor(Y.astype(dtype))
    seen = []
    for depth in [2, 3, 1, 4, 3]:
        before = traces()
        h = x
        for w, b in zip(ws[:depth], bs[:depth]):
            h = h + tg.tanh(tg.nn.functional.linear(h, w, b))
        loss = tg.nn.functional.mse_loss(tg.nn.functional.linear(h, head), y)
        for t in ws + bs + [head]:
            t.grad = None
        loss.backward()
        seen.append(traces() - before)
        args = ([w.detach().numpy() for w in ws], [b.detach().numpy() for b in bs],
                head.detach().numpy())
        with jax.enable_x64(dtype == np.float64):
            expected_loss = reference(depth, *args)
            grads = jax.grad(reference, argnums=(1, 2, 3))(depth, *args)
        tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(loss.item(), expected_loss, **tol)
        for t, g in zip(ws + bs + [head], [*grads[0], *grads[1], grads[2]]):
            if t.grad is None:  # a block deeper than this step's graph
                assert not np.any(g)
                continue
            assert t.grad.dtype == t.dtype
            np.testing.assert_allclose(t.grad.numpy(), g, **tol)
    # depth 2 met first: its rows were new, so compiled whole (cheaply); depth 3 of the same
    # rows ran op by op, compiling each row's forward and vjp once; depths 1 and 4 then needed
    # no compile at all, nor depth 3 again
    assert segments() == ["cheap", "op by op", "op by op", "op by op"]
    assert seen[0] == 1 and seen[1] > 0 and seen[2:] == [0, 0, 0]


def test_a_structure_with_a_new_row_compiles_whole(tiers):
    tiers()
    a = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (a * a).sum().backward()
    (a * a + a).sum().backward()  # `add` at these shapes is new: compiled whole
    (a + a * a).sum().backward()  # every row met before: op by op
    assert segments() == ["cheap", "cheap", "op by op"]
    np.testing.assert_allclose(a.grad.numpy(), 3 * (2 * a.detach().numpy()) + 2)


def test_op_by_op_sightings_then_compiled_whole(tiers):
    tiers(threshold=1, op_by_op=2)  # op by op at the first two sightings, then in full
    a = tg.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    expected = jax.grad(lambda x: jnp.sum(jnp.sin(x) * x))(np.ones((2, 2), np.float32))
    tiers_seen, counts = [], []
    for _ in range(4):
        before = traces()
        a.grad = None  # the same structure each time (an existing .grad is part of its key)
        (a.sin() * a).sum().backward()
        counts.append(traces() - before)
        tiers_seen.append(segments())
        np.testing.assert_allclose(a.grad.numpy(), expected, rtol=1e-6)
    assert tiers_seen == [["op by op"], ["op by op"], ["full"], ["full"]]
    assert counts[1] == 0 and counts[2] == 1 and counts[3] == 0


def test_forward_values_run_op_by_op_too(tiers):
    tiers(threshold=1, op_by_op=2**30)
    a = tg.tensor(np.array([[1.0, -2.0, 3.0]], np.float32))
    y = (a.exp() * 2 + 1).sum(1)
    np.testing.assert_allclose(y.numpy(), np.sum(np.exp(a.numpy()) * 2 + 1, 1), rtol=1e-6)
    assert [k[0] for k in _compile.cache.programs if k[0] in ("row", "eval")] == \
        ["eval", "row", "row", "row", "row"]
    assert type(_compile.cache.programs[next(k for k in _compile.cache.programs
                                             if k[0] == "eval")]).__name__ == "_Tiered"


def test_multiple_outputs_fan_out_unreached_inputs_and_accumulation(tiers):
    tiers(threshold=1, op_by_op=2**30)
    x0 = np.array([[0.5, -1.0, 2.0], [3.0, 0.25, -0.5]], np.float32)
    x = tg.tensor(x0, requires_grad=True)
    unused = tg.tensor(np.ones(3, np.float32), requires_grad=True)
    x.grad = tg.tensor(np.full((2, 3), 10.0, np.float32))  # accumulated into
    values, indices = x.max(dim=1)  # a row of two outputs, one of them integer
    mins, _ = x.min(dim=1)
    out = (values * mins).sum() + (x * x).sum() * 0.5 + 0 * unused[0].detach()
    out = out + (unused * 0).sum() * 0  # reached, zero
    out.backward()

    def f(v):
        return jnp.sum(jnp.max(v, 1) * jnp.min(v, 1)) + jnp.sum(v * v) * 0.5

    np.testing.assert_allclose(x.grad.numpy(), 10.0 + jax.grad(f)(x0), rtol=1e-6)
    np.testing.assert_array_equal(unused.grad.numpy(), np.zeros(3, np.float32))
    np.testing.assert_array_equal(indices.numpy(), [2, 0])


@pytest.mark.parametrize("scalar", [2, 2.5, np.float32(2.5), True], ids=["int", "float",
                                                                         "np.float32", "bool"])
def test_python_numbers_promote_as_in_a_whole_program(tiers, scalar):
    results = []
    for op_by_op in (0, 2**30):
        tiers(threshold=1, op_by_op=op_by_op)
        a = tg.tensor(np.array([1.0, 2.0], np.float16), requires_grad=True)
        y = a * scalar + scalar
        y.sum().backward()
        results.append((y.dtype, y.detach().numpy(), a.grad.dtype, a.grad.numpy()))
    (dtype, value, gdtype, grad), other = results
    assert other[0] is dtype and other[2] is gdtype is tg.float16
    np.testing.assert_array_equal(other[1], value)
    np.testing.assert_array_equal(other[3], grad)
    np.testing.assert_array_equal(grad, np.full(2, float(scalar), np.float16))


def test_hooks_cut_the_graph_into_segments_each_op_by_op(tiers):
    tiers(threshold=1, op_by_op=2**30)
    a = tg.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = a.exp()
    b.retain_grad()
    b.register_hook(lambda g: g * 3)
    (b * b).sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), 3 * 2 * np.exp([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(a.grad.numpy(), 3 * 2 * np.exp([1.0, 2.0, 3.0]) ** 2)
    assert segments() == ["op by op", "op by op"]


def test_a_failed_check_raises_and_stores_nothing(tiers):
    tiers(threshold=1, op_by_op=2**30)
    src = tg.arange(3.0, requires_grad=True)
    index = tg.tensor([0, 3]) * 1  # pending: checked where it is computed
    picked = src.gather(0, index)
    with pytest.raises(RuntimeError, match="index 3 is out of bounds for dimension 0 with size 3"):
        picked.sum().backward()
    assert src.grad is None and picked._cell.node.value is None


def test_the_cache_bound_counts_the_ops_executables(tiers):
    tiers(threshold=1, op_by_op=2**30)
    limit = tg.autograd.cache_info().maxsize
    tg.autograd.set_cache_limit(3)
    try:
        x0 = np.array([0.5, 1.5], np.float32)
        for _ in range(3):
            a = tg.tensor(x0, requires_grad=True)
            (a.sin() * a.cos() + a).sum().backward()
            assert tg.autograd.cache_info().currsize <= 3
            np.testing.assert_allclose(
                a.grad.numpy(), jax.grad(lambda v: jnp.sum(jnp.sin(v) * jnp.cos(v) + v))(x0),
                rtol=1e-5, atol=1e-6)
    finally:
        tg.autograd.set_cache_limit(limit)


def test_the_full_compile_comes_sooner_for_a_program_computing_more(tiers):
    """By default a program is compiled in full once the time it is estimated to save exceeds
    its estimated compile time: a small program stays cheap, a large one soon compiles."""
    tiers()

    def run(n: int, times: int) -> list:
        x = np.full((n, n), 0.5, np.float32)
        a = tg.tensor(x, requires_grad=True)
        expected = jax.grad(lambda v: jnp.sum(jnp.tanh(jnp.sin(v) * v) + jnp.exp(v) * 0.1))(x)
        for _ in range(times):
            a.grad = None
            ((a.sin() * a).tanh() + a.exp() * 0.1).sum().backward()
            np.testing.assert_allclose(a.grad.numpy(), expected, rtol=1e-5)
        return segments()

    assert run(4, 20) == ["cheap"]
    tiers()
    assert run(1024, 20) == ["full"]


def test_op_by_op_sightings_refuse_negative():
    with pytest.raises(ValueError, match="op-by-op sightings must be at least 0, got -1"):
        tg.autograd.set_compile_threshold(op_by_op=-1)


def test_a_structure_met_at_a_steady_period_compiles_whole(tiers):
    """A loop whose first step differs from the others (no `.grad` yet): the later steps'
    structure, of known rows, starts op by op and is compiled whole once it has come back three
    times at the same period (a graph drawn anew each step comes back irregularly)."""
    tiers()
    x0 = np.linspace(-1.0, 1.0, 8).astype(np.float32)
    a = tg.tensor(x0, requires_grad=True)
    seen = []
    for _ in range(6):
        (a.sin() * a + a).sum().backward()
        seen.append(segments()[1:])
    expected = jax.grad(lambda v: jnp.sum(jnp.sin(v) * v + v))(x0)
    np.testing.assert_allclose(a.grad.numpy(), 6 * expected, rtol=1e-5)
    # step 1 compiled whole (new rows); steps 2-4 op by op; the fourth sighting of the
    # steps' own structure (three equal gaps) compiled it
    assert seen == [[], ["op by op"], ["op by op"], ["op by op"], ["cheap"], ["cheap"]]
