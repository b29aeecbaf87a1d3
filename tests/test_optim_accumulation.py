"""Accumulate-then-step: `accumulation_steps=k` (optax MultiSteps) = manual loop = one big batch."""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad
import tapegrad.optim as optim

K = 4  # micro-batches per optimizer step
MICRO = 3  # samples per micro-batch


def _data(rounds: int):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rounds, K * MICRO, 5))
    y = rng.standard_normal((rounds, K * MICRO, 2))
    return x, y


def _params():
    rng = np.random.default_rng(1)
    return [tapegrad.tensor(rng.standard_normal((5, 2)), requires_grad=True),
            tapegrad.tensor(rng.standard_normal(2), requires_grad=True)]


def _loss(params, x, y):
    w, b = params
    pred = tapegrad.tensor(x) @ w + b
    return ((pred - tapegrad.tensor(y)) ** 2).mean()


def _values(params):
    return [p.detach().numpy().copy() for p in params]


OPTS = [("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1)), ("Adam", dict(lr=0.05)),
        ("AdamW", dict(lr=0.05, weight_decay=0.1, amsgrad=True))]


@pytest.mark.parametrize("name,kwargs", OPTS, ids=[n for n, _ in OPTS])
def test_accumulation_steps_equals_manual_loop_and_big_batch(name, kwargs):
    rounds = 3
    xs, ys = _data(rounds)

    # 1. optax MultiSteps: step() and zero_grad() every micro-batch
    p_multi = _params()
    opt = getattr(optim, name)(p_multi, accumulation_steps=K, **kwargs)
    multi = []
    for r in range(rounds):
        for m in range(K):
            sl = slice(m * MICRO, (m + 1) * MICRO)
            before = _values(p_multi)
            _loss(p_multi, xs[r, sl], ys[r, sl]).backward()
            opt.step()
            opt.zero_grad()
            if m < K - 1:  # parameters only move on every K-th call
                for a, b in zip(before, _values(p_multi)):
                    np.testing.assert_array_equal(a, b)
        multi.append(_values(p_multi))

    # 2. the manual loop: loss / K, backward, step + zero_grad every K micro-batches
    p_manual = _params()
    opt = getattr(optim, name)(p_manual, **kwargs)
    manual, manual_grads = [], []
    for r in range(rounds):
        for m in range(K):
            sl = slice(m * MICRO, (m + 1) * MICRO)
            (_loss(p_manual, xs[r, sl], ys[r, sl]) / K).backward()
        manual_grads.append([p.grad.numpy().copy() for p in p_manual])
        opt.step()
        opt.zero_grad()
        manual.append(_values(p_manual))

    # 3. one big batch
    p_big = _params()
    opt = getattr(optim, name)(p_big, **kwargs)
    big, big_grads = [], []
    for r in range(rounds):
        _loss(p_big, xs[r], ys[r]).backward()
        big_grads.append([p.grad.numpy().copy() for p in p_big])
        opt.step()
        opt.zero_grad()
        big.append(_values(p_big))

    for r in range(rounds):
        for a, b in zip(manual_grads[r], big_grads[r]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        for a, b, c in zip(multi[r], manual[r], big[r]):
            np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(b, c, rtol=1e-10, atol=1e-12)


def test_accumulation_matches_pytorch_manual_loop():
    torch = pytest.importorskip("torch")
    xs, ys = _data(2)
    p = _params()
    opt = optim.Adam(p, lr=0.05, accumulation_steps=K)
    tp = [torch.tensor(q.detach().numpy(), requires_grad=True) for q in _params()]
    topt = torch.optim.Adam(tp, lr=0.05)
    for r in range(2):
        for m in range(K):
            sl = slice(m * MICRO, (m + 1) * MICRO)
            _loss(p, xs[r, sl], ys[r, sl]).backward()
            opt.step()
            opt.zero_grad()
            pred = torch.tensor(xs[r, sl]) @ tp[0] + tp[1]
            (((pred - torch.tensor(ys[r, sl])) ** 2).mean() / K).backward()
        topt.step()
        topt.zero_grad()
    for a, b in zip(p, tp):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10)


def test_accumulation_steps_validated():
    with pytest.raises(ValueError, match="accumulation_steps"):
        optim.SGD([tapegrad.zeros(1, requires_grad=True)], lr=0.1, accumulation_steps=0)


def test_state_dict_moves_between_plain_and_accumulating_optimizers():
    w = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    plain = optim.Adam([w], lr=0.1)
    w.grad = tapegrad.tensor([1.0, 1.0])
    plain.step()
    acc = optim.Adam([w], lr=0.1, accumulation_steps=2)
    acc.load_state_dict(plain.state_dict())
    for _ in range(2):
        w.grad = tapegrad.tensor([1.0, 1.0])
        acc.step()
    assert acc.state[w]["step"].item() == 2  # Adam's count carried on; the accumulator started fresh
    back = optim.Adam([w], lr=0.1)
    back.load_state_dict(acc.state_dict())
    w.grad = tapegrad.tensor([1.0, 1.0])
    back.step()
    assert back.state[w]["step"].item() == 3
