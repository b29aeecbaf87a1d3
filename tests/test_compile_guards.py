"""tapegrad.compile guards what its trace took from Python: a change the eager loop would follow
(a rebound variable, a flag, a new parameter or optimizer, a Python side effect) is followed by
the compiled step too, step for step; what cannot be compiled falls back to eager or raises.

Each scenario runs the same script twice, once with the step compiled; the parameters must be
equal after every step. A few also run in PyTorch for the expected numbers.
"""
import dataclasses
import types
import warnings

import numpy as np
import pytest

import tapegrad as tg

_STEPS = 7
_CHANGE_AT = 4  # after the two eager runs and the trace: the change meets a compiled plan


def _data():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3)).astype(np.float32)
    xs = [rng.normal(size=(5, 4)).astype(np.float32) for _ in range(_STEPS)]
    return w, xs


@dataclasses.dataclass
class _LossConfig:
    scale: float


class _SlotConfig:
    """A config without `__dict__`: its attributes are slots."""
    __slots__ = ("scale",)

    def __init__(self, scale: float) -> None:
        self.scale = scale


def _scenario(name, compiled, T=tg):
    """Runs scenario `name` for _STEPS steps; the parameters after each step."""
    w0, xs = _data()
    model = T.nn.Linear(4, 3)
    with T.no_grad():
        model.weight.copy_(T.tensor(w0.T.copy()))
        model.bias.zero_()

    def step(x):
        opt.zero_grad()
        out = model(x)
        if name == "clamp":
            out = out.clamp(min=lo)
        if name == "shift":
            out = out + shift
        if name in ("dropout", "dropout_p"):
            out = drop(out)
        if name == "config":
            out = out.clamp(min=cfg.lo)
        if name == "nested_config":
            out = out * cfg.loss.scale
        if name == "slots_config":
            out = out * slot_cfg.scale
        if name == "config_3_levels":
            out = out * cfg.train.loss.scale
        if name == "long_list":
            out = out * scales[11] + scales[30]
        if name == "long_dict":
            out = out * table["k7"]
        if name == "item_attribute":
            out = out * runs[1].scale
        if name == "dict_item_attribute":
            out = out * heads["main"].loss.scale
        loss = (out ** 2).mean()
        loss.backward()
        if name == "clip":
            T.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        if name == "counter":
            nonlocal count
            count += 1
            if count % 2 == 0:
                opt.step()
        elif name in ("python_lr", "config_lr"):
            step_lr = lr if name == "python_lr" else cfg.lr
            with T.no_grad():
                for p in model.parameters():
                    if p.grad is not None:
                        p -= step_lr * p.grad
        else:
            opt.step()
        if name == "side_effect":
            history.append(1)
        if name == "raises" and stop:
            raise ValueError("stop")
        return loss

    opt = T.optim.SGD(model.parameters(), lr=0.1)
    lr, lo, max_norm, count, history, stop = 0.1, -0.5, 10.0, 0, [], False
    shift = T.zeros(3)
    drop = T.nn.Dropout(1.0)  # train mode zeroes all: deterministic, unlike eval
    cfg = types.SimpleNamespace(lr=0.1, lo=-0.5, loss=_LossConfig(1.0),  # plain objects
                                train=types.SimpleNamespace(loss=_LossConfig(1.0)))
    slot_cfg = _SlotConfig(1.0)
    scales = [1.0] * 40  # longer than a few flags
    table = {f"k{i}": 1.0 for i in range(40)}
    runs = [_LossConfig(1.0), _LossConfig(1.0)]  # objects reached through a container's items
    heads = {"main": types.SimpleNamespace(loss=_LossConfig(1.0)), "aux": T.zeros(1)}
    if compiled:
        step = tg.compile(step)
    T.manual_seed(0)
    params = []
    for i, x in enumerate(xs):
        if i == _CHANGE_AT:
            if name == "python_lr":
                lr = 0.5
            elif name == "clamp":
                lo = 0.2
            elif name == "clip":
                max_norm = 0.01
            elif name == "new_optimizer":
                opt = T.optim.SGD(model.parameters(), lr=0.3, momentum=0.5)
            elif name == "new_parameter":
                model.bias = T.nn.Parameter(T.ones(3))
                opt.param_groups[0]["params"][1] = model.bias
            elif name == "requires_grad":
                model.bias.requires_grad_(False)
            elif name == "dropout":
                drop.eval()
            elif name == "dropout_p":
                drop.p = 0.0
            elif name == "config_lr":
                cfg.lr = 0.5
            elif name == "config":
                cfg.lo = 0.2
            elif name == "nested_config":
                cfg.loss.scale = 3.0
            elif name == "slots_config":
                slot_cfg.scale = 3.0
            elif name == "config_3_levels":
                cfg.train.loss.scale = 3.0
            elif name == "long_list":
                scales[11], scales[30] = 3.0, 0.5
            elif name == "long_dict":
                table["k7"] = 3.0
            elif name == "item_attribute":
                runs[1].scale = 3.0
            elif name == "dict_item_attribute":
                heads["main"].loss.scale = 3.0
            elif name == "shift":
                shift = T.ones(3)
            elif name == "raises":
                stop = True
        try:
            step(T.tensor(x))
        except ValueError:
            params.append("raised")
            continue
        params.append([p.detach().numpy().copy() for p in model.parameters()])
        if name == "dropout" and i == _CHANGE_AT + 1:
            drop.train()
    return params, history


_SCENARIOS = ["counter", "python_lr", "clamp", "clip", "new_optimizer", "new_parameter",
              "requires_grad", "dropout", "shift", "side_effect", "raises", "dropout_p",
              "config_lr", "config", "nested_config", "long_list", "long_dict",
              "slots_config", "config_3_levels", "item_attribute", "dict_item_attribute"]


def _assert_same(a, b):
    assert len(a) == len(b)
    for i, (pa, pb) in enumerate(zip(a, b)):
        if isinstance(pa, str) or isinstance(pb, str):
            assert pa == pb, f"step {i}"
            continue
        for x, y in zip(pa, pb):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6, err_msg=f"step {i}")


@pytest.mark.parametrize("name", _SCENARIOS)
def test_compiled_step_follows_python_changes_as_eager_does(name):
    eager, eager_history = _scenario(name, compiled=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the side-effect scenarios fall back
        compiled, compiled_history = _scenario(name, compiled=True)
    _assert_same(compiled, eager)
    assert compiled_history == eager_history


@pytest.mark.parametrize("name", ["slots_config", "config_3_levels", "item_attribute",
                                  "dict_item_attribute"])
def test_slots_and_three_levels_of_attributes_are_guarded_and_compiled(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # compiled: no fallback warning
        _scenario(name, compiled=True)


def _deep_config_run(compiled, through_item):
    """A step reading an attribute four levels deep (`cfg.a.b.c.scale`, or `cfg.a.b[0].scale`
    through a list's item), changed at step 4."""
    w = tg.ones(3, requires_grad=True)
    opt = tg.optim.SGD([w], lr=0.1)
    leaf = [_LossConfig(1.0)] if through_item else types.SimpleNamespace(c=_LossConfig(1.0))
    cfg = types.SimpleNamespace(a=types.SimpleNamespace(b=leaf))

    def scale():
        return cfg.a.b[0].scale if through_item else cfg.a.b.c.scale

    def step(x):
        opt.zero_grad()
        loss = (w * x * scale()).sum()
        loss.backward()
        opt.step()
        return loss

    if compiled:
        step = tg.compile(step)
    out = []
    for i in range(_STEPS):
        if i == _CHANGE_AT:
            (cfg.a.b[0] if through_item else cfg.a.b.c).scale = 3.0
        out.append([step(tg.ones(3)).item(), *w.detach().tolist()])
    return out, step


@pytest.mark.parametrize("through_item, path", [(False, "'cfg.a.b.c.scale'"),
                                                (True, "'cfg.a.b[0].scale'")])
def test_an_attribute_too_deep_to_guard_runs_uncompiled_with_one_warning(through_item, path):
    """No guard reads `cfg.a.b.c.scale`: rather than keep the trace's value, the step runs
    uncompiled, saying why once, and follows the change as eager does."""
    eager, _ = _deep_config_run(False, through_item)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled, step = _deep_config_run(True, through_item)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1
    assert path in messages[0] and "more than 3 levels deep" in messages[0]
    assert "runs uncompiled" in messages[0]
    assert step.traces == 0
    assert compiled == eager


@pytest.mark.parametrize("name", ["counter", "side_effect"])
def test_a_step_with_python_side_effects_runs_uncompiled_with_a_warning(name):
    with pytest.warns(RuntimeWarning, match="runs uncompiled"):
        _scenario(name, compiled=True)


def test_a_guard_that_fails_relearns_the_step_and_traces_again():
    w = tg.ones(3, requires_grad=True)
    opt = tg.optim.SGD([w], lr=0.1)
    k = 1.0

    def step(x):
        opt.zero_grad()
        loss = (w * x * k).sum()
        loss.backward()
        opt.step()
        return loss

    compiled = tg.compile(step)
    for _ in range(3):
        compiled(tg.ones(3))
    assert compiled.traces == 1
    k = 2.0
    for _ in range(3):
        compiled(tg.ones(3))
    assert compiled.traces == 2
    np.testing.assert_allclose(w.detach().numpy(), 1 - 0.1 * 3 - 0.2 * 3, rtol=1e-6)


def _writes_argument(T, compiled):
    """A step writing its tensor argument in place (a running sum), as PyTorch runs it."""
    w = T.ones(2, requires_grad=True)
    opt = T.optim.SGD([w], lr=0.1)

    def step(x, total):
        opt.zero_grad()
        loss = (w * x).sum()
        loss.backward()
        opt.step()
        with T.no_grad():
            total.add_(loss.detach())
            x.mul_(2.0)
        return loss

    if compiled:
        step = tg.compile(step)
    total = T.zeros(())
    out = []
    for i in range(6):
        x = T.tensor([1.0, float(i)])
        loss = step(x, total)
        out.append([float(loss.detach()), *x.tolist(), float(total), *w.detach().tolist()])
    return out, step


def test_an_argument_written_in_place_is_written_as_in_eager():
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # compiled, no fallback warning
        compiled, step = _writes_argument(tg, compiled=True)
    assert step.traces == 1
    eager, _ = _writes_argument(tg, compiled=False)
    expected, _ = _writes_argument(torch, compiled=False)
    np.testing.assert_allclose(compiled, expected, rtol=1e-6)
    assert compiled == eager


def test_an_argument_written_in_place_that_shares_storage_runs_eagerly():
    """A view, or state the step also reads, cannot be written back whole: such a call runs
    uncompiled (no warning), still as in eager."""
    def step(a, b):
        b.add_(a)
        return (a * b).sum()

    compiled = tg.compile(step)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            compiled(tg.ones(2), tg.zeros(2))
        assert compiled.traces == 1
        base = tg.zeros(2, 2)
        out = compiled(tg.ones(2), base[1])  # a view of base
        assert base.tolist() == [[0.0, 0.0], [1.0, 1.0]] and out.item() == 2.0
        a = tg.ones(2)
        compiled(a, a)  # the same storage twice
        assert a.tolist() == [2.0, 2.0]
    assert compiled.traces == 1


def test_a_compiled_forward_returning_a_graph_tensor_is_refused():
    model = tg.nn.Linear(2, 2)
    forward = tg.compile(lambda x: model(x))
    assert model(tg.ones(1, 2)).requires_grad  # as PyTorch's compiled forward keeps it
    with pytest.raises(RuntimeError, match="requires grad but calls no backward"):
        forward(tg.ones(1, 2))


@pytest.mark.parametrize("name", ["python_lr", "clamp", "new_parameter", "requires_grad",
                                  "counter", "config_lr", "nested_config", "long_list",
                                  "dropout_p", "slots_config", "config_3_levels"])
def test_compiled_step_matches_pytorch_eager(name):
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        compiled, _ = _scenario(name, compiled=True)
    expected, _ = _scenario(name, compiled=False, T=torch)
    _assert_same(compiled, expected)


def test_a_method_step_guards_its_object():
    """A bound method compiled: the attributes of `self` it reads are guarded too."""

    class Trainer:
        def __init__(self):
            self.w = tg.ones(3, requires_grad=True)
            self.opt = tg.optim.SGD([self.w], lr=0.1)
            self.scale = 1.0

        def step(self, x):
            self.opt.zero_grad()
            loss = (self.w * x * self.scale).sum()
            loss.backward()
            self.opt.step()
            return loss

    trainer = Trainer()
    step = tg.compile(trainer.step)
    for i in range(6):
        if i == 3:
            trainer.scale = 2.0
        step(tg.ones(3))
    assert step.traces == 2
    np.testing.assert_allclose(trainer.w.detach().numpy(), 1 - 0.1 * 3 - 0.2 * 3, rtol=1e-6)


def test_a_step_reaching_tapegrads_own_caches_compiles():
    """What tapegrad's functions read is the library's state (its shape caches hold dtype objects
    several levels deep), not the user's: a step calling them compiles, with no warning."""
    from tapegrad.utils.checkpoint import checkpoint

    tg.sort(tg.ones(3))  # a multi-output op's entry in the shape cache
    w = tg.ones(3, requires_grad=True)
    opt = tg.optim.SGD([w], lr=0.1)

    def step(x):
        opt.zero_grad()
        loss = checkpoint(lambda v: tg.nn.functional.mse_loss(w * v, tg.zeros(3)), x,
                          use_reentrant=False) + tg.sort(w)[0].sum()
        loss.backward()
        opt.step()
        return loss

    compiled = tg.compile(step)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses = [compiled(tg.full((3,), 2.0)).item() for _ in range(4)]
    assert compiled.traces == 1
    # eager, from the same start: (2w)^2 mean + sum(w), w -= 0.1 * (8w/3 + 1)
    v, expected = np.ones(3), []
    for _ in range(4):
        expected.append(float(np.mean((2 * v) ** 2) + v.sum()))
        v = v - 0.1 * (8 * v / 3 + 1)
    np.testing.assert_allclose(losses, expected, rtol=1e-6)


def test_a_compiled_step_follows_the_default_dtype_and_autocast():
    """The library state a trace depends on is part of a compiled step's key, as
    torch.compile guards them: the default dtype and the autocast casts in force."""
    a = tg.ones(2, 2)

    def step():
        return tg.zeros(2) + 1.0, a @ a

    compiled = tg.compile(step)
    assert compiled()[0].dtype is tg.float32
    try:
        tg.set_default_dtype(tg.float64)
        assert compiled()[0].dtype is tg.float64 and step()[0].dtype is tg.float64
    finally:
        tg.set_default_dtype(tg.float32)
    assert compiled()[0].dtype is tg.float32
    with tg.autocast("cpu", dtype=tg.bfloat16):
        assert compiled()[1].dtype is tg.bfloat16 and step()[1].dtype is tg.bfloat16
    assert compiled()[1].dtype is tg.float32
