"""Two threads training two models at once: the same numbers as training them one after the other.

Recording and compile state is thread-local (as grad mode is), so a compiled step in one thread
neither nests with, nor logs, nor takes over the state of what another thread runs. A barrier
makes the two threads alternate step by step, so each one's steps run between the other's.
"""
import threading

import numpy as np
import pytest

import tapegrad as tg

_STEPS = 6


def _model(seed):
    g = tg.Generator().manual_seed(seed)
    w1 = (tg.randn(5, 8, generator=g) * 0.5).requires_grad_(True)
    w2 = (tg.randn(8, 3, generator=g) * 0.5).requires_grad_(True)
    return w1, w2, tg.optim.Adam([w1, w2], lr=0.05)


def _batches(seed):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(16, 5)).astype(np.float32),
             rng.normal(size=(16, 3)).astype(np.float32)) for _ in range(_STEPS)]


def _step_fn(w1, w2, opt):
    def step(x, y):
        opt.zero_grad()
        loss = (((x @ w1).tanh() @ w2 - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss
    return step


def _train(seed, compiled, barrier=None):
    """Trains one model; with a barrier, waits for the other thread before each step."""
    w1, w2, opt = _model(seed)
    step = _step_fn(w1, w2, opt)
    if compiled:
        step = tg.compile(step)
    losses = []
    for x, y in _batches(seed):
        if barrier is not None:
            barrier.wait()
        losses.append(step(tg.tensor(x), tg.tensor(y)).item())
    return losses, w1.detach().numpy(), w2.detach().numpy()


def _in_threads(kinds):
    barrier = threading.Barrier(len(kinds))
    results, errors = [None] * len(kinds), []

    def run(i, compiled):
        try:
            results[i] = _train(i + 1, compiled, barrier)
        except BaseException as e:  # reported by the main thread
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i, k)) for i, k in enumerate(kinds)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("kinds", [(False, False), (True, False), (True, True)],
                         ids=["eager+eager", "compiled+eager", "compiled+compiled"])
def test_two_threads_train_two_models_as_if_one_after_the_other(kinds):
    alone = [_train(i + 1, k) for i, k in enumerate(kinds)]
    together = _in_threads(kinds)
    for (loss_a, w1_a, w2_a), (loss_t, w1_t, w2_t) in zip(alone, together):
        assert loss_t == loss_a
        np.testing.assert_array_equal(w1_t, w1_a)
        np.testing.assert_array_equal(w2_t, w2_a)


def test_a_compiled_step_in_one_thread_does_not_log_another_threads_eager_work():
    w1, w2, opt = _model(1)
    train = _step_fn(w1, w2, opt)
    inside, done = threading.Semaphore(0), threading.Semaphore(0)
    other = tg.ones(3, requires_grad=True)
    grads, errors = [], []

    def eager_work():  # one eager backward inside each run of the step's Python: 2 eager, 1 trace
        try:
            for _ in range(3):
                inside.acquire(timeout=60)
                other.grad = None
                (other * 2.0).sum().backward()
                grads.append(other.grad.numpy())
                done.release()
        except BaseException as e:  # reported by the main thread
            errors.append(e)
            done.release()

    def step(x, y):
        inside.release()
        done.acquire(timeout=60)
        return train(x, y)

    t = threading.Thread(target=eager_work)
    t.start()
    compiled = tg.compile(step)
    for x, y in _batches(1):
        compiled(tg.tensor(x), tg.tensor(y))
    t.join(timeout=60)
    assert not errors, errors
    assert compiled.traces == 1
    assert len(grads) == 3
    for g in grads:
        np.testing.assert_array_equal(g, [2.0, 2.0, 2.0])
