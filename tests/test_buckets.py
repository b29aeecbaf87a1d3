"""Shape buckets for ragged batches (`_autograd/buckets.py`).

A backward met at several batch sizes runs on data padded to a bucket size, one program per
bucket. Each case trains on ragged batch sizes twice -- buckets on and off -- and the two runs
must agree step by step (losses, every gradient, forward values the caller still holds); the
MLP case is also checked against `jax.grad` of the same jnp program and against PyTorch. The
fallback cases (batch statistics, random masks, non-finite values) must not be bucketed, or must
give exactly what the exact-shape run gives.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn
from tapegrad._core.compile import cache
from tapegrad.nn import functional as F

SIZES = [5, 7, 3, 12, 1, 30]


def _bucketed_programs() -> int:
    return sum(1 for k in cache.programs if k[0] == "segment" and isinstance(k[1], int))


@pytest.fixture(autouse=True)
def _fresh():
    tg.autograd.clear_cache()
    yield
    tg.autograd.set_shape_buckets(True)


def _train(make, loss_fn, data, buckets: bool, steps=None):
    """Per step: (loss, gradients, the held forward output); SGD between steps."""
    tg.autograd.set_shape_buckets(buckets)
    tg.manual_seed(0)
    model = make()
    opt = tg.optim.SGD(model.parameters(), lr=0.05)
    out = []
    for x, y in data:
        x, y = tg.tensor(x), tg.tensor(y)
        held = model(x)
        loss = loss_fn(held, y)
        opt.zero_grad()
        loss.backward()
        out.append((loss.item(), [p.grad.numpy().copy() for p in model.parameters()],
                    held.detach().numpy().copy()))
        opt.step()
    return out, model


def _data(features, target, sizes=SIZES, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(n,) + features).astype(np.float32), target(rng, n)) for n in sizes]


def _assert_same(a, b, rtol=1e-5, atol=1e-6):
    assert len(a) == len(b)
    for (la, ga, ha), (lb, gb, hb) in zip(a, b):
        np.testing.assert_allclose(la, lb, rtol=rtol, atol=atol)
        assert ha.shape == hb.shape
        np.testing.assert_allclose(ha, hb, rtol=rtol, atol=atol)
        for x, y in zip(ga, gb):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def _mlp(width_in=16, classes=5):
    return lambda: nn.Sequential(nn.Linear(width_in, 32), nn.ReLU(), nn.Linear(32, classes))


def _labels(classes=5, ignored=False):
    def make(rng, n):
        y = rng.integers(0, classes, n)
        if ignored:
            y[rng.random(n) < 0.3] = -100
        return y
    return make


def _one_hot(rng, n):
    return np.eye(5, dtype=np.float32)[rng.integers(0, 5, n)]


def _probs(rng, n):
    p = rng.random((n, 5)).astype(np.float32)
    return p / p.sum(1, keepdims=True)


class _Tokens(nn.Module):
    """Embedding of token ids, mean over positions, a linear head."""

    def __init__(self):
        super().__init__()
        self.emb, self.head = nn.Embedding(11, 8), nn.Linear(8, 5)

    def forward(self, ids):
        return self.head(self.emb(ids).mean(1))


class _Flat(nn.Module):
    """`x.view(x.size(0), -1)`, a linear layer, layer norm, GELU, softmax over features."""

    def __init__(self):
        super().__init__()
        self.fc, self.norm = nn.Linear(16, 5), nn.LayerNorm(5)

    def forward(self, x):
        h = F.gelu(self.norm(self.fc(x.view(x.size(0), -1))))
        return h.reshape(-1, 1, 5).transpose(1, 2).reshape(x.size(0), 5)


def _class_losses(o, y):
    return (F.cross_entropy(o, y, weight=tg.tensor([1., 2., .5, 1., 3.]), label_smoothing=0.1)
            + F.cross_entropy(o, y, reduction="sum") * 0.1
            + F.nll_loss(F.log_softmax(o, dim=1), y))


def _value_losses(o, y):
    return (F.cross_entropy(o, y) + F.mse_loss(o, y) + F.l1_loss(o, y, reduction="sum")
            + F.smooth_l1_loss(o, y, beta=0.5) + F.huber_loss(o, y, delta=0.3)
            + F.binary_cross_entropy(tg.sigmoid(o), y) + F.binary_cross_entropy_with_logits(o, y)
            + (o ** 2).mean() + o.sum() * 0.01 + (o - y).abs().mean(0).sum()
            + o.mean(dim=(0, 1)))


# model, loss, features of x (None: token ids), targets
CASES = {
    "cross_entropy (ignored targets, class weights, smoothing, sum), nll_loss": (
        _mlp(), _class_losses, (16,), _labels(ignored=True)),
    "losses of values and probabilities, sum and mean": (_mlp(), _value_losses, (16,), _probs),
    "embedding, mean over positions": (_Tokens, F.cross_entropy, None, _labels()),
    "view, layer_norm, gelu, transposes": (_Flat, F.cross_entropy, (2, 8), _labels()),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bucketed_training_equals_exact_shapes(case):
    make, loss_fn, features, target = CASES[case]
    if features is None:  # token ids: (n, 6) integers
        rng = np.random.default_rng(0)
        data = [(rng.integers(0, 11, (n, 6)), target(rng, n)) for n in SIZES]
    else:
        data = _data(features, target)
    bucketed, _ = _train(make, loss_fn, data, buckets=True)
    assert _bucketed_programs() >= 1  # the proof went through: padded programs ran
    tg.autograd.clear_cache()
    exact, _ = _train(make, loss_fn, data, buckets=False)
    assert _bucketed_programs() == 0
    _assert_same(bucketed, exact)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bucketed_gradients_equal_jax_grad_of_the_same_program(dtype):
    data = [(x.astype(dtype) / 3, y) for x, y in  # (/ 3: float64 data a float32 cannot hold)
            _data((16,), _labels(ignored=True), sizes=[5, 7, 3, 12])]
    tg.autograd.set_shape_buckets(True)
    tg.manual_seed(0)
    model = _mlp()().to(getattr(tg, dtype))
    tol = {"float32": 1e-5, "float64": 1e-12}[dtype]
    def ref(p, x, y):
        h = jnp.maximum(x @ p[0].T + p[1], 0) @ p[2].T + p[3]
        logp = jax.nn.log_softmax(h)
        valid = y != -100
        picked = jnp.take_along_axis(logp, jnp.where(valid, y, 0)[:, None], 1)[:, 0]
        return -jnp.sum(jnp.where(valid, picked, 0)) / jnp.sum(valid)

    for x, y in data:
        params = [p.detach().numpy() for p in model.parameters()]
        loss = F.cross_entropy(model(tg.tensor(x)), tg.tensor(y))
        model.zero_grad()
        loss.backward()
        with jax.enable_x64(True):
            value, grads = jax.value_and_grad(ref)([jnp.asarray(p) for p in params],
                                                   jnp.asarray(x), jnp.asarray(y))
        np.testing.assert_allclose(loss.item(), value, rtol=tol)
        for p, g in zip(model.parameters(), grads):
            assert p.grad.dtype == getattr(tg, dtype)
            np.testing.assert_allclose(p.grad.numpy(), g, rtol=tol, atol=tol / 10)
    assert _bucketed_programs() >= 1


def test_manual_updates_in_place_are_bucketed_and_not_padded():
    """`p -= lr * p.grad` under no_grad runs inside the next backward's program, which then
    reads the old parameters and gradients (leading sizes 32 and 5, as batches of SIZES): they
    reach the backward only as parameter values, so the batch is still found and they are not
    padded."""
    data = _data((16,), _labels(), sizes=[5, 7, 32, 12, 5, 30])

    def train(buckets):
        tg.autograd.set_shape_buckets(buckets)
        tg.manual_seed(0)
        model = _mlp()()
        out = []
        for x, y in data:
            loss = F.cross_entropy(model(tg.tensor(x)), tg.tensor(y))
            loss.backward()
            out.append((loss.item(), [p.grad.numpy().copy() for p in model.parameters()],
                        np.zeros(0)))
            with tg.no_grad():
                for p in model.parameters():
                    p -= 0.05 * p.grad
                    p.grad = None
        return out
    bucketed = train(True)
    assert _bucketed_programs() >= 1
    tg.autograd.clear_cache()
    _assert_same(bucketed, train(False))


_compiles = []
jax.monitoring.register_event_duration_secs_listener(
    lambda name, duration, **_: _compiles.append(name)
    if name == "/jax/core/compile/backend_compile_duration" else None)


def test_each_program_of_a_ragged_loop_compiles_once():
    """Padded batches are placed as the arrays they stand for are (uncommitted): a program's
    arguments committed at one step and not at another would compile it again, unseen."""
    data = _data((16,), _labels(), sizes=[5, 7, 3, 12, 1, 30, 6, 13, 2, 9])
    tg.manual_seed(0)
    model = _mlp()()
    opt = tg.optim.Adam(model.parameters(), lr=0.01)
    x0 = tg.tensor(data[0][0])
    model(x0).sum().item()  # parameters computed, the first draws done
    before, traces = len(_compiles), tg.autograd.cache_info().traces
    for x, y in data:
        opt.zero_grad()
        F.cross_entropy(model(tg.tensor(x)), tg.tensor(y)).backward()
        opt.step()
    assert _bucketed_programs() >= 2
    # one XLA compile per program traced, none again for arguments placed differently
    assert len(_compiles) - before == tg.autograd.cache_info().traces - traces


def test_sizes_of_one_bucket_share_one_program():
    data = _data((16,), _labels(), sizes=[5, 7, 3, 8, 2, 6, 4, 1])
    _train(_mlp(), F.cross_entropy, data, buckets=True)
    segments = [k for k in cache.programs if k[0] == "segment"]
    # the first size runs exactly; every later size is padded to 8 in one program
    assert sorted(str(k[1]) for k in segments if isinstance(k[1], int)) == ["8"]
    assert len(segments) == 2


def _bucket_sizes_compiled() -> list:
    return sorted(k[1] for k in cache.programs if k[0] == "segment" and isinstance(k[1], int))


def test_smaller_sizes_run_on_the_largest_bucket_compiled():
    # 40 runs exactly; at 3 the bucket of the largest size met (64) is compiled, and 20, 60 and
    # 9, whose own buckets (32, 64, 16) are smaller or the same, run on it: one bucketed program
    data = _data((16,), _labels(), sizes=[40, 3, 20, 60, 9])
    bucketed, _ = _train(_mlp(), F.cross_entropy, data, buckets=True)
    assert _bucket_sizes_compiled() == [64]
    exact, _ = _train(_mlp(), F.cross_entropy, data, buckets=False)
    _assert_same(bucketed, exact)


def test_a_size_gets_its_own_bucket_once_its_padding_has_cost_a_compile(monkeypatch):
    # a padding row estimated at a second: the first run of 5 on bucket 64 costs more than
    # compiling bucket 8, so the next size of that bucket compiles it
    monkeypatch.setattr(tg._autograd.buckets, "ELEMENT_S", 1.0)
    data = _data((16,), _labels(), sizes=[40, 3, 5, 2, 7])
    bucketed, _ = _train(_mlp(), F.cross_entropy, data, buckets=True)
    assert _bucket_sizes_compiled() == [8, 64]
    exact, _ = _train(_mlp(), F.cross_entropy, data, buckets=False)
    _assert_same(bucketed, exact)


def test_one_batch_size_keeps_its_exact_program():
    data = _data((16,), _labels(), sizes=[12] * 5)
    _train(_mlp(), F.cross_entropy, data, buckets=True)
    assert _bucketed_programs() == 0


@pytest.mark.parametrize("case", ["batch norm", "dropout", "batch statistics"])
def test_batch_dependent_programs_keep_exact_shapes(case):
    def make():
        tg.manual_seed(0)
        inner = {"batch norm": nn.BatchNorm1d(32), "dropout": nn.Dropout(0.5),
                 "batch statistics": nn.Identity()}[case]
        return nn.Sequential(nn.Linear(16, 32), inner, nn.ReLU(), nn.Linear(32, 5))

    def loss_fn(o, y):
        if case == "batch statistics":
            o = o.cumsum(0)  # each row depends on the rows before it
        return F.cross_entropy(o, y)
    data = _data((16,), _labels(), sizes=[5, 7, 3])
    bucketed, model = _train(make, loss_fn, data, buckets=True)
    assert _bucketed_programs() == 0
    if case != "dropout":  # dropout's masks differ between the two runs' draws anyway
        exact, model_exact = _train(make, loss_fn, data, buckets=False)
        _assert_same(bucketed, exact)
        for a, b in zip(model.buffers(), model_exact.buffers()):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_non_finite_results_are_the_exact_runs():
    # log of a prediction that is exactly 0 in one row: the loss and gradients are inf / NaN,
    # and must be the exact-shape run's, not the padding's
    def loss_fn(o, y):
        return -(tg.relu(o) * y).log().mean()
    data = _data((16,), _one_hot, sizes=[5, 7, 3])
    bucketed, _ = _train(_mlp(), loss_fn, data, buckets=True)
    exact, _ = _train(_mlp(), loss_fn, data, buckets=False)
    for (la, ga, _), (lb, gb, _) in zip(bucketed, exact):
        np.testing.assert_array_equal(np.isfinite(la), np.isfinite(lb))
        for x, y in zip(ga, gb):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert any(not np.isfinite(loss) for loss, _, _ in exact)


def test_bucket_sizes():
    from tapegrad._autograd.buckets import bucket_size
    assert [bucket_size(n) for n in (1, 8, 9, 16, 17, 33, 64)] == [8, 8, 16, 16, 32, 64, 64]
    assert [bucket_size(n) for n in (65, 72, 73, 1000, 1024)] == [72, 72, 80, 1024, 1024]
    assert all(n <= bucket_size(n) < n * 1.125 for n in range(65, 5000))


def test_pytorch_trains_the_same_on_ragged_batches():
    torch = pytest.importorskip("torch")
    data = _data((16,), _labels(ignored=True))
    bucketed, _ = _train(_mlp(), F.cross_entropy, data, buckets=True)
    assert _bucketed_programs() >= 1
    tg.manual_seed(0)
    init = [p.detach().numpy() for p in _mlp()().parameters()]
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 5))
    with torch.no_grad():
        for p, v in zip(model.parameters(), init):
            p.copy_(torch.from_numpy(v.copy()))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for (x, y), (loss, grads, held) in zip(data, bucketed):
        out = model(torch.from_numpy(x))
        ref = torch.nn.functional.cross_entropy(out, torch.from_numpy(y))
        opt.zero_grad()
        ref.backward()
        np.testing.assert_allclose(loss, ref.item(), rtol=1e-5)
        np.testing.assert_allclose(held, out.detach().numpy(), rtol=1e-5, atol=1e-6)
        for g, p in zip(grads, model.parameters()):
            np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-4, atol=1e-6)
        opt.step()
