"""The engine: compiled replays cached by structure, arrays always arguments, graph release."""
import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
from tapegrad._core import compile as _compile


def _mlp_step(w1, w2, x, y, lr=0.1):
    h = (x @ w1).tanh()
    loss = ((h @ w2 - y) ** 2).mean()
    loss.backward()
    with tg.no_grad():
        w1 -= lr * w1.grad
        w2 -= lr * w2.grad
    w1.grad = None
    w2.grad = None
    return loss


def _reference_losses(w1, w2, batches, lr=0.1):
    def loss_fn(w1, w2, x, y):
        return jnp.mean((jnp.tanh(x @ w1) @ w2 - y) ** 2)
    losses = []
    for x, y in batches:
        loss, (g1, g2) = jax.value_and_grad(loss_fn, argnums=(0, 1))(w1, w2, x, y)
        w1, w2 = w1 - lr * g1, w2 - lr * g2
        losses.append(float(loss))
    return np.array(losses)


def test_a_repeating_loop_compiles_once_and_never_goes_stale():
    rng = np.random.default_rng(0)
    w1_0 = rng.normal(size=(5, 8)).astype(np.float32) * 0.5
    w2_0 = rng.normal(size=(8, 2)).astype(np.float32) * 0.5
    batches = [(rng.normal(size=(16, 5)).astype(np.float32),
                rng.normal(size=(16, 2)).astype(np.float32)) for _ in range(102)]
    w1 = tg.tensor(w1_0, requires_grad=True)
    w2 = tg.tensor(w2_0, requires_grad=True)
    losses = [_mlp_step(w1, w2, tg.tensor(x), tg.tensor(y)).item() for x, y in batches[:2]]
    warm = tg.autograd.cache_info()
    for x, y in batches[2:]:  # new data every step: arguments, never baked-in constants
        losses.append(_mlp_step(w1, w2, tg.tensor(x), tg.tensor(y)).item())
    after = tg.autograd.cache_info()
    assert after.traces == warm.traces, "the loop retraced"
    assert after.hits >= warm.hits + 100
    np.testing.assert_allclose(losses, _reference_losses(w1_0, w2_0, batches), rtol=2e-4)


def test_new_shape_recompiles_once():
    w = tg.ones(3, 2, requires_grad=True)
    def step(n):
        w.grad = None
        (tg.ones(n, 3) @ w).sum().backward()
    step(4)
    t0 = tg.autograd.cache_info().traces
    step(4)
    assert tg.autograd.cache_info().traces == t0
    step(7)
    t1 = tg.autograd.cache_info().traces
    assert t1 == t0 + 1
    step(7)
    step(4)
    assert tg.autograd.cache_info().traces == t1


def test_python_scalars_are_arguments_not_constants():
    w = tg.ones(2, requires_grad=True)
    (w * 0.5).sum().backward()
    t0 = tg.autograd.cache_info().traces
    for scale in (1.5, 2.5, 3.5):
        w.grad = None
        (w * scale).sum().backward()
        assert w.grad.tolist() == [scale, scale]
    assert tg.autograd.cache_info().traces == t0


def test_cache_is_bounded_and_reports_statistics():
    old = tg.autograd.cache_info().maxsize
    try:
        tg.autograd.set_cache_limit(2)
        for n in range(1, 6):  # five distinct structures
            x = tg.ones(2, requires_grad=True)
            y = x
            for _ in range(n):
                y = y * 2
            y.sum().backward()
        info = tg.autograd.cache_info()
        assert info.currsize <= 2 and info.maxsize == 2
        assert info.misses >= 5
        with pytest.raises(ValueError, match="at least 1"):
            tg.autograd.set_cache_limit(0)
    finally:
        tg.autograd.set_cache_limit(old)
    tg.autograd.clear_cache()
    assert tg.autograd.cache_info() == (0, 0, 0, 0, old)


def test_the_graph_is_released_after_backward():
    w = tg.ones(4, requires_grad=True)
    h = w * 2
    out = (h.tanh() * 3).sum()
    ref = weakref.ref(h._grad_node)
    del h
    out.backward()
    gc.collect()
    assert ref() is None, "the freed graph is still alive while its root is"
    assert out.item() == pytest.approx(12 * np.tanh(2.0), rel=1e-6)


def test_values_of_live_tensors_are_kept_by_backward():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    loss = (h * 2).sum()
    loss.backward()
    t0 = tg.autograd.cache_info().traces
    np.testing.assert_allclose(h.detach().numpy(), np.exp([1.0, 2.0]), rtol=1e-6)
    assert loss.item() == pytest.approx(2 * np.exp([1.0, 2.0]).sum(), rel=1e-6)
    assert tg.autograd.cache_info().traces == t0  # no extra program: backward computed them


def test_lazy_values_are_computed_when_python_needs_them():
    x = tg.tensor([1.0, -2.0])
    y = (x * 3).relu()
    assert y._cell.node.value is None  # recorded, not yet run
    assert y.tolist() == [3.0, 0.0]
    assert y._cell.node.value is not None


def test_long_pending_chains_are_cut(monkeypatch):
    monkeypatch.setattr(tg._core.record, "MAX_PENDING_DEPTH", 40)
    x = tg.zeros(1)
    for _ in range(130):
        x.add_(1)
        assert x._cell.node.depth <= 41
    assert x.item() == 130


def test_structure_keys_hold_no_arrays():
    x = tg.ones(3, requires_grad=True)
    (x * 2).sum().backward()
    for key in _compile.cache.programs:
        flat = jax.tree_util.tree_leaves(key)
        assert not any(isinstance(v, (jax.Array, np.ndarray)) for v in flat)


def test_indexing_at_new_positions_reuses_the_program():
    data = np.arange(60.0).reshape(6, 10)
    x = tg.tensor(data)

    def read(i):  # a per-sample Dataset's x[i], and a manual batching loop's x[i:i + 2]
        np.testing.assert_array_equal(x[i].numpy(), data[i])
        np.testing.assert_array_equal(x[i:i + 2].sum(0).numpy(), data[i:i + 2].sum(0))

    read(1)
    t0 = tg.autograd.cache_info().traces
    for i in range(2, 5):
        read(i)
    assert tg.autograd.cache_info().traces == t0


def test_pending_buffer_updates_are_computed_by_the_next_backward():
    bn = tg.nn.BatchNorm1d(3)
    w = tg.ones(3, requires_grad=True)
    x = tg.tensor(np.arange(12.0, dtype=np.float32).reshape(4, 3))
    (bn(x) * w).sum().backward()
    assert bn.running_mean._cell.node.value is not None  # no pending chain keeps x alive
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * np.arange(12.0).reshape(4, 3).mean(0),
                               rtol=1e-6)


def test_unshared_tells_whether_anything_else_can_read_a_storage_value():
    from tapegrad._core.compile import unshared
    t = tg.tensor(np.arange(3.0))
    cells = [t._cell]
    assert unshared(cells)
    held = t.jax()
    assert not unshared(cells)
    del held
    assert unshared(cells)
    pending = t.clone()  # recorded, not computed: it will read t's current value
    assert not unshared(cells)
    pending.numpy()  # computed: it no longer needs t's value
    assert unshared(cells)
    other = tg.as_tensor(t.jax())  # another storage over the same array
    assert not unshared(cells)
    del other
    alias = t.detach()  # the same storage: it shows whatever is written there
    assert unshared(cells) and alias._cell is t._cell


def test_lazily_made_leaves_compile_the_backward_once():
    """Leaves whose values are still pending at the first backward (factories and in-place init
    are recorded, not run) are computed apart, so the first step's program is every step's."""
    w = tg.zeros(3, 2, requires_grad=True)
    b = tg.randn(2, requires_grad=True)
    v = tg.empty(2, 2).uniform_(-1, 1).requires_grad_()
    x = tg.ones(4, 3)

    def step():
        for t in (w, b, v):
            t.grad = None
        ((x @ w + b) @ v).sum().backward()
    step()
    traces = tg.autograd.cache_info().traces
    for _ in range(3):
        step()
    assert tg.autograd.cache_info().traces == traces
    np.testing.assert_allclose(b.grad.numpy(), 4 * v.detach().numpy().sum(1), rtol=1e-6)


def test_manual_updates_in_place_run_with_the_next_backward():
    """A leaf updated in place between backwards (the tutorials' `w -= lr * w.grad` under
    no_grad) is computed by the next backward's program: one program a step, the same from the
    second step on, and the numbers of the same steps in jnp."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=(8, 1)).astype(np.float32)
    w = tg.zeros(3, 1, requires_grad=True)
    b = tg.tensor([0.5], requires_grad=True)

    def loss_of(w, b):
        return ((x @ w + b - y) ** 2).mean()
    want = [jnp.zeros((3, 1)), jnp.asarray([0.5])]
    info = tg.autograd.cache_info
    for i in range(5):
        before = info()
        loss = ((tg.tensor(x) @ w + b - tg.tensor(y)) ** 2).mean()
        loss.backward()
        after = info()
        value, grads = jax.value_and_grad(loss_of, argnums=(0, 1))(*want)
        np.testing.assert_allclose(loss.item(), value, rtol=1e-6)
        np.testing.assert_allclose(w.grad.numpy(), grads[0], rtol=1e-5, atol=1e-7)
        if i >= 2:  # steady: one program call, no trace
            assert (after.hits + after.misses - before.hits - before.misses,
                    after.traces - before.traces) == (1, 0)
        with tg.no_grad():
            w -= 0.1 * w.grad
            b -= 0.1 * b.grad
        w.grad = b.grad = None
        want = [p - 0.1 * g for p, g in zip(want, grads)]
    assert w._cell.node.value is None  # the last update is still pending
    np.testing.assert_allclose(w.detach().numpy(), want[0], rtol=1e-5, atol=1e-7)


def test_constants_are_recomputed_and_in_place_counts_kept_without_recompiling():
    """A constant made from Python numbers (a mask, `tg.zeros`) is recomputed by each program
    that uses it, so programs keep one structure; an in-place update of such a tensor is
    computed with the next backward and kept, so its chain does not grow."""
    w = tg.ones(3, requires_grad=True)
    mask = tg.tril(tg.ones(3, 3)) == 0
    counter = tg.zeros(())
    for i in range(5):
        w.grad = None
        counter += 1
        (w * 2).masked_fill(mask[0], 0.0).sum().backward()
        if i == 0:
            traces = tg.autograd.cache_info().traces
    assert tg.autograd.cache_info().traces == traces
    assert counter._cell.node.value is not None and counter.item() == 5
    assert w.grad.tolist() == [2, 0, 0]


def test_resets_left_pending_compile_the_backward_once():
    """A `fill_`/`zero_` of state that needs no gradient is a constant: a BatchNorm's reset
    running statistics are computed apart at their first update, and an unrelated tensor reset
    in place is left pending rather than computed by the next backward. So step 0's backward is
    every step's."""
    rng = np.random.default_rng(0)
    model = tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.BatchNorm1d(8), tg.nn.ReLU(),
                             tg.nn.Linear(8, 2))
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    x = tg.tensor(rng.normal(size=(16, 4)).astype(np.float32))
    y = tg.tensor(rng.integers(0, 2, 16))
    unrelated = tg.tensor([1.0, 2.0])
    unrelated.zero_()
    assert unrelated._cell.node.constant
    for i in range(4):
        opt.zero_grad()
        tg.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if i == 0:
            traces = tg.autograd.cache_info().traces
    assert tg.autograd.cache_info().traces == traces
    assert unrelated._cell.node.value is None and unrelated.tolist() == [0.0, 0.0]
    bn = model[1]
    assert bn.num_batches_tracked.item() == 4
    assert not np.allclose(bn.running_mean.numpy(), 0)  # updated from the reset's zeros
