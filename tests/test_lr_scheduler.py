"""Learning-rate schedulers: lr sequences against PyTorch's, and PyTorch's chained semantics."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tapegrad
import tapegrad.optim as optim
from tapegrad.optim import lr_scheduler


def _make(lib, opt_name="SGD", **kwargs):
    a = lib.zeros(2, requires_grad=True)
    b = lib.zeros(3, requires_grad=True)
    opt = getattr(lib.optim, opt_name)([{"params": [a]}, {"params": [b], "lr": 0.5}],
                                       lr=kwargs.pop("lr", 0.1), **kwargs)
    return opt


def _lambda_half(epoch):
    return 0.5 ** epoch


SCHEDULES = [
    ("StepLR", dict(step_size=3, gamma=0.5), {}),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3), {}),
    ("ExponentialLR", dict(gamma=0.9), {}),
    ("CosineAnnealingLR", dict(T_max=6, eta_min=0.01), {}),
    ("LambdaLR", dict(lr_lambda=_lambda_half), {}),
    ("LinearLR", dict(start_factor=0.25, end_factor=1.0, total_iters=4), {}),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.1, total_iters=6), {}),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=20), dict(momentum=0.9)),
    ("OneCycleLR", dict(max_lr=[1.0, 2.0], total_steps=20, three_phase=True,
                        anneal_strategy="linear", pct_start=0.25), {"opt_name": "Adam"}),
    ("ConstantLR", dict(factor=0.25, total_iters=4), {}),
    ("PolynomialLR", dict(total_iters=7, power=2.0), {}),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=3), dict(momentum=0.9)),
    ("CyclicLR", dict(base_lr=[0.01, 0.02], max_lr=[0.1, 0.3], step_size_up=2, step_size_down=5,
                      mode="triangular2"), dict(momentum=0.9)),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=4, mode="exp_range", gamma=0.9,
                      base_momentum=0.7, max_momentum=0.95), {"opt_name": "Adam"}),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=3, scale_fn=_lambda_half,
                      scale_mode="iterations", cycle_momentum=False), {}),
    ("CosineAnnealingWarmRestarts", dict(T_0=4), {}),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2, eta_min=0.01), {}),
    ("MultiplicativeLR", dict(lr_lambda=lambda epoch: 0.9 - 0.01 * epoch), {}),
    ("MultiplicativeLR", dict(lr_lambda=[_lambda_half, lambda epoch: 0.95]), {}),
]


def _sequence(lib, name, kwargs, opt_kwargs, steps=18):
    opt = _make(lib, **dict(opt_kwargs))
    sched = getattr(lib.optim.lr_scheduler, name)(opt, **kwargs)
    out = [list(sched.get_last_lr())]
    extra = []
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(list(sched.get_last_lr()))
        g = opt.param_groups[0]
        extra.append(g.get("momentum", g.get("betas", (None,))[0]))
    return np.array(out), extra


@pytest.mark.parametrize("name,kwargs,opt_kwargs", SCHEDULES,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(SCHEDULES)])
def test_matches_pytorch(name, kwargs, opt_kwargs):
    torch = pytest.importorskip("torch")
    ours, ours_m = _sequence(tapegrad, name, kwargs, opt_kwargs)
    ref, ref_m = _sequence(torch, name, kwargs, opt_kwargs)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.array(ours_m, float), np.array(ref_m, float), rtol=1e-12)


@pytest.mark.parametrize("kwargs", [dict(T_0=4), dict(T_0=3, T_mult=2, eta_min=0.01)])
def test_warm_restarts_with_fractional_epochs_match_pytorch(kwargs):
    """`CosineAnnealingWarmRestarts.step(epoch)` with an epoch per batch (timm's and the
    PyTorch docs' usage): the restart period containing `epoch`."""
    torch = pytest.importorskip("torch")
    lrs = []
    for lib in (torch, tapegrad):
        opt = _make(lib)
        sched = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, **kwargs)
        seq = []
        for epoch in np.arange(0, 15, 0.4):
            opt.step()
            sched.step(float(epoch))
            seq.append(list(sched.get_last_lr()) + [sched.last_epoch, sched.T_i])
        lrs.append(np.array(seq))
    np.testing.assert_allclose(lrs[1], lrs[0], rtol=1e-12)
    for lib in (torch, tapegrad):
        with pytest.raises(ValueError, match="Expected positive integer T_0, but got 0"):
            lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(_make(lib), 0)
        with pytest.raises(ValueError, match="Expected integer T_mult >= 1, but got 0"):
            lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(_make(lib), 2, T_mult=0)
        with pytest.raises(ValueError, match="Expected non-negative epoch, but got -1"):
            lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(_make(lib), 2).step(-1)


def test_sequential_lr_matches_pytorch():
    torch = pytest.importorskip("torch")

    def run(lib):
        opt = _make(lib)
        warm = lib.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=3)
        decay = lib.optim.lr_scheduler.ExponentialLR(opt, gamma=0.8)
        cos = lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
        sched = lib.optim.lr_scheduler.SequentialLR(opt, [warm, decay, cos], milestones=[3, 7])
        out = [sched.get_last_lr()]
        for _ in range(14):
            opt.step()
            sched.step()
            out.append(sched.get_last_lr())
        return np.array(out)
    np.testing.assert_allclose(run(tapegrad), run(torch), rtol=1e-12)


def test_reduce_on_plateau_matches_pytorch():
    torch = pytest.importorskip("torch")
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.94, 0.96, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]

    def run(lib, **kw):
        opt = _make(lib)
        sched = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
        out = []
        for m in metrics:
            opt.step()
            sched.step(m)
            out.append(sched.get_last_lr())
        return np.array(out)
    for kw in (dict(patience=1, factor=0.5), dict(mode="max", patience=2, cooldown=1, min_lr=0.02),
               dict(threshold_mode="abs", threshold=0.05, patience=0)):
        np.testing.assert_allclose(run(tapegrad, **kw), run(torch, **kw), rtol=1e-12)


def test_chained_schedulers_compose():
    """Two schedulers stepping the same optimizer multiply (PyTorch's chainable form)."""
    opt = _make(tapegrad)
    s1 = lr_scheduler.ExponentialLR(opt, gamma=0.9)
    s2 = lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    for epoch in range(1, 5):
        opt.step()
        s1.step()
        s2.step()
        expected = 0.1 * 0.9 ** epoch * 0.1 ** (epoch // 2)
        assert math.isclose(opt.param_groups[0]["lr"], expected, rel_tol=1e-12)


def test_closed_form_with_epoch_and_resume():
    opt = _make(tapegrad)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    opt.step()
    with pytest.warns(UserWarning, match="epoch parameter"):
        sched.step(5)
    assert math.isclose(opt.param_groups[0]["lr"], 0.1 * 0.25)
    # resuming needs initial_lr in the groups, as PyTorch
    fresh = _make(tapegrad)
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(fresh, step_size=2, last_epoch=3)
    sd = sched.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 5
    other = lr_scheduler.StepLR(_make(tapegrad), step_size=7)
    other.load_state_dict(sd)
    assert other.step_size == 2 and other.last_epoch == 5


def test_scheduler_before_optimizer_warns():
    opt = _make(tapegrad)
    sched = lr_scheduler.StepLR(opt, step_size=1)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    opt2 = _make(tapegrad)
    sched2 = lr_scheduler.StepLR(opt2, step_size=1)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched2.step()


def test_schedule_drives_training_without_recompiling():
    x = tapegrad.tensor([1.0, -1.0], requires_grad=True)
    opt = optim.Adam([x], lr=0.1)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    lrs = []
    for i in range(6):
        opt.zero_grad()
        (x * x).sum().backward()
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        if i == 0:
            traces = tapegrad.autograd.cache_info().traces
    assert tapegrad.autograd.cache_info().traces == traces
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.1


def test_custom_optimizer_subclass_works_with_schedulers():
    """A PyTorch-style optimizer that overrides step() in Python (no warning, lr is scheduled)."""
    class PlainSGD(optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

        @tapegrad.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self.state[p]["steps"] = self.state[p].get("steps", 0) + 1
                        p.add_(p.grad, alpha=-group["lr"])

    w = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    opt = PlainSGD([w])
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            opt.zero_grad()
            (w * w).sum().backward()
            opt.step()
            sched.step()
    np.testing.assert_allclose(w.detach().numpy(), [1.0 * 0.8 * 0.9, 2.0 * 0.8 * 0.9])
    assert opt.param_groups[0]["lr"] == 0.025
    assert opt.state_dict()["state"] == {0: {"steps": 2}}


def test_chained_scheduler_matches_pytorch():
    torch = pytest.importorskip("torch")

    def build(lib):
        opt = _make(lib)
        ls = lib.optim.lr_scheduler
        return opt, ls.ChainedScheduler([ls.ConstantLR(opt, factor=0.5, total_iters=3),
                                         ls.ExponentialLR(opt, gamma=0.9),
                                         ls.PolynomialLR(opt, total_iters=8)], optimizer=opt)

    def run(lib):
        opt, sched = build(lib)
        out = [sched.get_last_lr()]
        for _ in range(10):
            opt.step()
            sched.step()
            out.append(sched.get_last_lr())
        return np.array(out), sched
    ours, sched = run(tapegrad)
    ref, _ = run(torch)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    # a fresh chain loaded from the state continues where the first left off
    _, fresh = build(tapegrad)
    fresh.load_state_dict(sched.state_dict())
    assert [s.last_epoch for s in fresh._schedulers] == [10, 10, 10]
    assert fresh.get_last_lr() == sched.get_last_lr()


def test_closed_forms_of_the_new_schedulers_match_pytorch():
    torch = pytest.importorskip("torch")

    def run(lib, name, kwargs):
        opt = _make(lib)
        sched = getattr(lib.optim.lr_scheduler, name)(opt, **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = []
            for epoch in (3, 0, 6, 9, 2):
                opt.step()
                sched.step(epoch)
                out.append(sched.get_last_lr())
        return np.array(out)
    for name, kwargs in [("ConstantLR", dict(factor=0.5, total_iters=4)),
                         ("PolynomialLR", dict(total_iters=6, power=0.5))]:
        np.testing.assert_allclose(run(tapegrad, name, kwargs), run(torch, name, kwargs),
                                   rtol=1e-12)


def test_new_scheduler_errors_match_pytorch():
    torch = pytest.importorskip("torch")
    for lib in (torch, tapegrad):
        opt, ls = _make(lib), lib.optim.lr_scheduler
        with pytest.raises(ValueError, match="Constant multiplicative factor expected"):
            ls.ConstantLR(opt, factor=2.0)
        with pytest.raises(ValueError, match="mode is invalid and scale_fn is None"):
            ls.CyclicLR(opt, 0.01, 0.1, mode="sawtooth")
        with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
            ls.CyclicLR(lib.optim.Adagrad([lib.zeros(1, requires_grad=True)]), 0.01, 0.1)
        with pytest.raises(ValueError, match="expects at least one scheduler to be chained"):
            ls.ChainedScheduler([])
        other = ls.StepLR(_make(lib), 2)
        with pytest.raises(ValueError, match="expects all schedulers to belong to the same"):
            ls.ChainedScheduler([ls.StepLR(opt, 2), other])
