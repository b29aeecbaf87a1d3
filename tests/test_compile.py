"""tapegrad.compile: a whole step as one jax.jit program, equal to the eager loop step for step."""

import numpy as np
import pytest

import tapegrad as tg


def _data(seed=0, n=6, batch=16):
    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(5, 8)).astype(np.float32) * 0.5
    w2 = rng.normal(size=(8, 3)).astype(np.float32) * 0.5
    batches = [(rng.normal(size=(batch, 5)).astype(np.float32),
                rng.normal(size=(batch, 3)).astype(np.float32)) for _ in range(n)]
    return w1, w2, batches


def _sgd_step(w1, w2, x, y):
    loss = (((x @ w1).tanh() @ w2 - y) ** 2).mean()
    loss.backward()
    with tg.no_grad():
        w1 -= 0.1 * w1.grad
        w2 -= 0.1 * w2.grad
    w1.grad = None
    w2.grad = None
    return loss


def _optimizer_step(w1, w2, opt, x, y):
    opt.zero_grad()
    loss = (((x @ w1).tanh() @ w2 - y) ** 2).mean()
    loss.backward()
    opt.step()
    return loss


def test_compiled_manual_sgd_equals_eager_and_traces_once():
    w1_0, w2_0, batches = _data()
    e1, e2 = tg.tensor(w1_0, requires_grad=True), tg.tensor(w2_0, requires_grad=True)
    c1, c2 = tg.tensor(w1_0, requires_grad=True), tg.tensor(w2_0, requires_grad=True)
    step = tg.compile(lambda x, y: _sgd_step(c1, c2, x, y))
    for x, y in batches:
        eager = _sgd_step(e1, e2, tg.tensor(x), tg.tensor(y)).item()
        compiled = step(tg.tensor(x), tg.tensor(y))
        assert isinstance(compiled, tg.Tensor)
        assert compiled.item() == pytest.approx(eager, rel=1e-6)
    np.testing.assert_allclose(c1.detach().numpy(), e1.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert step.traces == 1
    assert c1.grad is None and c1.requires_grad and c1.is_leaf


def test_compiled_step_with_an_optimizer_equals_eager():
    w1_0, w2_0, batches = _data(1, n=8)

    def make():
        w1, w2 = tg.tensor(w1_0, requires_grad=True), tg.tensor(w2_0, requires_grad=True)
        return w1, w2, tg.optim.Adam([w1, w2], lr=0.05)

    e1, e2, eopt = make()
    c1, c2, copt = make()
    cstep = tg.compile(lambda x, y: _optimizer_step(c1, c2, copt, x, y))
    for x, y in batches:
        eager = _optimizer_step(e1, e2, eopt, tg.tensor(x), tg.tensor(y)).item()
        assert cstep(tg.tensor(x), tg.tensor(y)).item() == pytest.approx(eager, rel=1e-5)
    np.testing.assert_allclose(c2.detach().numpy(), e2.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(copt.state[c2]["exp_avg"].numpy(),
                               eopt.state[e2]["exp_avg"].numpy(), rtol=1e-5, atol=1e-7)
    assert cstep.traces == 1


def test_zeroing_grads_in_place_with_a_batchnorm_compiles_and_equals_eager():
    """`zero_grad(set_to_none=False)` zeroes no `.grad` at the first call (there is none yet), so
    the compiled step learns from later calls; the BatchNorm's in-place buffer updates, computed
    at the end of the traced step and with the backward eagerly, do not count as a change."""
    rng = np.random.default_rng(3)
    batches = [(rng.normal(size=(16, 4)).astype(np.float32), rng.integers(0, 2, 16))
               for _ in range(6)]

    def make():
        tg.manual_seed(0)
        model = tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.BatchNorm1d(8), tg.nn.ReLU(),
                                 tg.nn.Linear(8, 2))
        opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(x, y):
            opt.zero_grad(set_to_none=False)
            loss = tg.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss
        return model, step

    emodel, estep = make()
    cmodel, cstep = make()
    cstep = tg.compile(cstep)
    for x, y in batches:
        eager = estep(tg.tensor(x), tg.tensor(y)).item()
        assert cstep(tg.tensor(x), tg.tensor(y)).item() == pytest.approx(eager, rel=1e-5)
    np.testing.assert_allclose(cmodel[1].running_mean.numpy(), emodel[1].running_mean.numpy(),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(cmodel[0].weight.grad.numpy(), emodel[0].weight.grad.numpy(),
                               rtol=1e-5, atol=1e-7)
    assert cmodel[1].num_batches_tracked.item() == len(batches)
    assert cstep.traces == 1


def test_new_shapes_trace_again_once():
    w1_0, w2_0, batches = _data(2)
    w1, w2 = tg.tensor(w1_0, requires_grad=True), tg.tensor(w2_0, requires_grad=True)
    step = tg.compile(lambda x, y: _sgd_step(w1, w2, x, y))
    small = [(x[:4], y[:4]) for x, y in batches]
    for (x, y), (xs, ys) in zip(batches, small):
        step(tg.tensor(x), tg.tensor(y))
        step(tg.tensor(xs), tg.tensor(ys))
    assert step.traces == 2


def test_random_numbers_differ_per_call_and_repeat_with_the_seed():
    v = tg.ones(4)
    noisy = tg.compile(lambda: v * tg.randn(4))
    tg.manual_seed(7)
    first = [noisy().tolist() for _ in range(5)]
    assert len({tuple(o) for o in first}) == 5  # a fresh draw every call
    assert noisy.traces == 1
    tg.manual_seed(7)
    assert [noisy().tolist() for _ in range(5)] == first


def test_buffers_updated_in_place_keep_updating_step_after_step():
    def make():
        tg.manual_seed(0)
        model = tg.nn.Sequential(tg.nn.Linear(4, 4), tg.nn.BatchNorm1d(4))
        return model, tg.optim.SGD(model.parameters(), lr=0.1)

    def step(model, opt, x):
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss
    (em, eopt), (cm, copt) = make(), make()
    cstep = tg.compile(lambda x: step(cm, copt, x))
    rng = np.random.default_rng(0)
    for _ in range(6):
        x = tg.tensor(rng.normal(size=(5, 4)).astype(np.float32))
        assert cstep(x).item() == pytest.approx(step(em, eopt, x).item(), rel=1e-5)
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(cm[1], name).numpy(), getattr(em[1], name).numpy(),
                                   rtol=1e-5, atol=1e-6)
    assert cm[1].num_batches_tracked.item() == em[1].num_batches_tracked.item() == 6
    assert cstep.traces == 1


def test_a_step_that_draws_nothing_leaves_the_generator_alone():
    w = tg.ones(3)
    step = tg.compile(lambda x: (w * x).sum())
    tg.manual_seed(3)
    expected = tg.randn(4).tolist()
    tg.manual_seed(3)
    for _ in range(4):
        step(tg.ones(3))
    assert tg.randn(4).tolist() == expected  # the stream outside the step is untouched


class _Flags:
    """Flags read through properties: the attributes holding them (`_values`) are not the names
    the code reads, so no guard compares them (docs/jit.md), and a change reaches a trace only
    if the trace itself notices what it meets."""

    def __init__(self, **values) -> None:
        self._values = values

    def set(self, **values) -> None:
        self._values.update(values)

    noise = property(lambda self: self._values["noise"])
    use_b = property(lambda self: self._values["use_b"])


def test_a_generator_first_drawn_from_while_tracing_is_learned_not_frozen():
    v = tg.ones(4)
    flags = _Flags(noise=False)  # a property: no guard sees it change

    def step():
        return v * tg.randn(4) if flags.noise else v * 1.0

    compiled = tg.compile(step)
    compiled()
    compiled()  # two eager runs: no draws seen
    flags.set(noise=True)
    draws = [compiled().tolist() for _ in range(4)]
    assert len({tuple(d) for d in draws}) == 4  # fresh noise every call, not one frozen draw
    assert compiled.traces == 2  # the trace that met the draw was dropped, the step relearned


def test_state_changed_by_uncompiled_code_between_calls_is_used():
    w = tg.ones(3)
    step = tg.compile(lambda x: (w * x).sum())
    for _ in range(3):
        step(tg.ones(3))
    with tg.no_grad():
        w.mul_(2.0)  # recorded, still pending when the compiled step reads it
    assert step(tg.ones(3)).item() == 6.0


def test_reading_a_value_inside_a_traced_step_is_refused():
    w = tg.ones(3)

    @tg.compile
    def step(x):
        loss = (w * x).sum()
        if loss.item() > 0:  # data-dependent Python control flow
            loss = loss * 2
        return loss

    step(tg.ones(3))
    step(tg.ones(3))  # the eager runs work
    with pytest.raises(RuntimeError, match=r"needs a tensor's value in Python \(item\(\).*"
                                           r"being traced \(by tapegrad.compile"):
        step(tg.ones(3))


def test_a_python_number_that_changes_is_refused_not_frozen():
    w = tg.ones(3, requires_grad=True)
    lr = [0.1]

    def step(x):
        loss = (w * x).sum()
        loss.backward()
        with tg.no_grad():
            w.sub_(lr[0] * w.grad)
        w.grad = None
        return loss

    compiled = tg.compile(step)
    compiled(tg.ones(3))
    lr[0] = 0.2
    with pytest.raises(RuntimeError, match="the Python number 0.1 used by the step changed to 0.2"):
        compiled(tg.ones(3))


def test_state_the_eager_runs_did_not_touch_is_rediscovered():
    a = tg.ones(2, requires_grad=True)
    b = tg.ones(2, requires_grad=True)
    flags = _Flags(use_b=False)  # a property: no guard sees it change

    def step():
        w = b if flags.use_b else a
        loss = (w * w).sum()
        loss.backward()
        with tg.no_grad():
            w.sub_(0.25 * w.grad)
        w.grad = None
        return loss

    compiled = tg.compile(step)
    compiled()
    compiled()  # two eager runs learn that the step updates `a`
    flags.set(use_b=True)  # the trace now meets `b`: it must run the step, not freeze `b` in
    compiled()
    np.testing.assert_allclose(b.detach().numpy(), [0.5, 0.5])
    np.testing.assert_allclose(a.detach().numpy(), [0.25, 0.25])
    assert compiled.traces == 1


def test_compiled_gpt_step_equals_eager():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import models  # the benchmark's GPT: embeddings, LayerNorm, causal attention, GELU MLP

    rng = np.random.default_rng(0)
    x = tg.tensor(rng.integers(0, 10, (4, 16)))
    y = tg.tensor(rng.integers(0, 10, (4, 16)))

    def make():
        tg.manual_seed(0)
        model = models.gpt(tg, layers=1, width=24)
        opt = tg.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
        return model, models.classifier_step(tg, model, opt, clip=1.0)

    eager_model, eager_step = make()
    model, step = make()
    compiled = tg.compile(step)
    for _ in range(5):
        assert compiled(x, y).item() == pytest.approx(eager_step(x, y).item(), rel=1e-5)
    assert compiled.traces == 1
    width = 24
    for (name, p), (_, q) in zip(model.named_parameters(), eager_model.named_parameters()):
        a, b = p.detach().numpy(), q.detach().numpy()
        if name.endswith("qkv.bias"):
            # The key bias cancels in softmax: its true gradient is 0, so Adam amplifies float
            # noise there into +-lr steps. Compare the query and value parts.
            a, b = np.delete(a, np.s_[width:2 * width]), np.delete(b, np.s_[width:2 * width])
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=name)


def test_learning_rate_changes_reach_a_compiled_step_without_recompiling():
    w1_0, w2_0, batches = _data(3, n=8)

    def make():
        w1, w2 = tg.tensor(w1_0, requires_grad=True), tg.tensor(w2_0, requires_grad=True)
        opt = tg.optim.SGD([w1, w2], lr=0.1, momentum=0.9)
        return w1, w2, opt, tg.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    e1, e2, eopt, esched = make()
    c1, c2, copt, csched = make()
    compiled = tg.compile(lambda x, y: _optimizer_step(c1, c2, copt, x, y))
    for x, y in batches:
        eager = _optimizer_step(e1, e2, eopt, tg.tensor(x), tg.tensor(y)).item()
        assert compiled(tg.tensor(x), tg.tensor(y)).item() == pytest.approx(eager, rel=1e-6)
        esched.step()
        csched.step()
    np.testing.assert_allclose(c1.detach().numpy(), e1.detach().numpy(), rtol=1e-5, atol=1e-7)
    assert compiled.traces == 1


def test_scheduler_inside_a_compiled_step_is_refused():
    w = tg.ones(2, requires_grad=True)
    opt = tg.optim.SGD([w], lr=0.1)
    sched = tg.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    @tg.compile
    def step():
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
        sched.step()

    with pytest.raises(RuntimeError, match="Call scheduler.step\\(\\) outside the compiled step"):
        step()


def test_donated_state_stays_readable_by_whoever_still_holds_it():
    """A compiled step hands its state's buffers to XLA only when nothing else refers to them;
    an array taken with .jax(), a pending clone() and a pending op on the old value survive."""
    w1_0, w2_0, batches = _data(2, n=5)
    w1, w2 = tg.tensor(w1_0, requires_grad=True), tg.tensor(w2_0, requires_grad=True)
    opt = tg.optim.Adam([w1, w2], lr=0.05)
    step = tg.compile(lambda x, y: _optimizer_step(w1, w2, opt, x, y))
    for x, y in batches[:3]:
        step(tg.tensor(x), tg.tensor(y))
    plan = next(iter(step._plans.values()))
    assert plan._donating._cache_size() == 1 and plan._jitted._cache_size() == 0  # donated

    expected = [w1.detach().numpy().copy(), opt.state[w2]["exp_avg"].numpy().copy()]
    held = w1.jax()
    cloned = opt.state[w2]["exp_avg"].clone()
    doubled = w1.detach() * 2
    for x, y in batches[3:]:
        step(tg.tensor(x), tg.tensor(y))
    assert plan._jitted._cache_size() == 1  # these calls kept the buffers
    np.testing.assert_array_equal(np.asarray(held), expected[0])
    np.testing.assert_array_equal(cloned.numpy(), expected[1])
    np.testing.assert_array_equal(doubled.numpy(), 2 * expected[0])
    assert not np.array_equal(w1.detach().numpy(), expected[0])  # the step did update


def _descend(w, lr: float):
    """One manual gradient-descent step of `((w * x - 1) ** 2).sum()`; returns the loss."""
    w.grad = None
    loss = ((w * tg.tensor([1.0, 2.0, 3.0]) - 1.0) ** 2).sum()
    loss.backward()
    with tg.no_grad():
        w.sub_(lr * w.grad)
    return loss


def test_a_leaf_still_pending_at_the_first_call_compiles():
    """A leaf made lazily (`tg.zeros`) is computed apart at the first backward; the compiled
    step's log of Python numbers must not see that walk twice."""
    w_c, w_e = tg.zeros(3, requires_grad=True), tg.zeros(3, requires_grad=True)
    step = tg.compile(lambda: _descend(w_c, 0.1))
    for _ in range(4):
        assert step().item() == pytest.approx(_descend(w_e, 0.1).item(), rel=1e-6)
    assert step.traces == 1


def test_torch_compile_arguments_are_accepted():
    """`torch.compile`'s keywords: the step still compiles and equals eager; `disable=True`
    is the function itself; a bad `mode` raises as PyTorch does."""
    w_c, w_e = tg.ones(3, requires_grad=True), tg.ones(3, requires_grad=True)

    @tg.compile(mode="reduce-overhead", fullgraph=True, dynamic=True, backend="inductor")
    def step():
        return _descend(w_c, 0.05)
    for _ in range(4):
        assert step().item() == pytest.approx(_descend(w_e, 0.05).item(), rel=1e-6)
    assert step.traces == 1
    assert tg.compile(_descend, disable=True) is _descend


@pytest.mark.parametrize("kwargs", [{"mode": "typo"}, {"mode": "max-autotune", "options": {}}])
def test_torch_compile_bad_arguments_raise_as_pytorch(kwargs):
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError) as ours:
        tg.compile(lambda: None, **kwargs)
    with pytest.raises(RuntimeError) as theirs:
        torch.compile(lambda: None, **kwargs)
    assert str(ours.value) == str(theirs.value)
