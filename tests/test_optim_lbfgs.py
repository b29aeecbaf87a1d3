"""LBFGS: PyTorch's closure-driven algorithm, iterate by iterate."""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad
import tapegrad.optim as optim


def _rosenbrock(lib, x):
    return ((1 - x[:-1]) ** 2).sum() + 100 * ((x[1:] - x[:-1] ** 2) ** 2).sum()


def _run(lib, steps, dtype, **kwargs):
    x = lib.tensor(np.array([-1.2, 1.0, -0.5, 0.8]), dtype=dtype, requires_grad=True)
    opt = lib.optim.LBFGS([x], **kwargs)
    losses = []

    def closure():
        opt.zero_grad()
        loss = _rosenbrock(lib, x)
        loss.backward()
        return loss
    for _ in range(steps):
        losses.append(opt.step(closure).item())
    return x.detach().numpy(), losses, opt


@pytest.mark.parametrize("steps,kwargs", [(4, dict(lr=0.1, max_iter=5)),
                                          (1, dict(lr=1, history_size=3, max_iter=12)),
                                          (4, dict(line_search_fn="strong_wolfe"))])
def test_matches_pytorch(steps, kwargs):
    torch = pytest.importorskip("torch")
    ours, ours_losses, opt = _run(tapegrad, steps, tapegrad.float64, **kwargs)
    ref, ref_losses, ref_opt = _run(torch, steps, torch.float64, **kwargs)
    np.testing.assert_allclose(ours, ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours_losses, ref_losses, rtol=1e-7)
    st, ref_st = next(iter(opt.state.values())), next(iter(ref_opt.state.values()))
    assert st["n_iter"] == ref_st["n_iter"] and st["func_evals"] == ref_st["func_evals"]


def test_converges_on_rosenbrock():
    x, losses, _ = _run(tapegrad, 10, tapegrad.float64, line_search_fn="strong_wolfe")
    np.testing.assert_allclose(x, np.ones(4), atol=1e-4)
    assert losses[-1] < 1e-6


def test_requires_closure_and_one_group():
    x = tapegrad.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="closure"):
        optim.LBFGS([x]).step(None)
    with pytest.raises(ValueError, match="per-parameter options"):
        optim.LBFGS([{"params": [x]}, {"params": [tapegrad.zeros(1, requires_grad=True)]}])


def test_state_dict_saves_and_resumes(tmp_path):
    x, _, opt = _run(tapegrad, 2, tapegrad.float64, lr=0.5)
    tapegrad.save(opt.state_dict(), tmp_path / "lbfgs.pt")
    y = tapegrad.tensor(x, requires_grad=True)
    opt2 = optim.LBFGS([y], lr=0.5)
    opt2.load_state_dict(tapegrad.load(tmp_path / "lbfgs.pt"))
    assert opt2.state[y]["n_iter"] == opt.state[opt.param_groups[0]["params"][0]]["n_iter"]
