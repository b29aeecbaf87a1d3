"""Random ops: shapes, dtypes, ranges, reproducibility from the generator, rough statistics, and
zero gradients as in PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg


def test_reproducible_with_seed_and_generator():
    tg.manual_seed(3)
    a = tg.randn(4, 3)
    tg.manual_seed(3)
    b = tg.randn(4, 3)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    g1, g2 = tg.Generator().manual_seed(5), tg.Generator().manual_seed(5)
    x = tg.normal(0.0, 1.0, (5,), generator=g1)
    y = tg.normal(0.0, 1.0, (5,), generator=g2)
    np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert not np.array_equal(tg.normal(0.0, 1.0, (5,), generator=g1).numpy(), x.numpy())


def test_factories():
    g = tg.Generator().manual_seed(0)
    u = tg.rand(2000, generator=g)
    assert u.dtype is tg.float32 and 0 <= u.min().item() and u.max().item() < 1
    assert abs(u.mean().item() - 0.5) < 0.05
    n = tg.randn(2000, dtype=tg.float64, generator=g)
    assert n.dtype is tg.float64 and abs(n.std().item() - 1) < 0.1
    i = tg.randint(3, 7, (500,), generator=g)
    assert i.dtype is tg.int64 and set(np.unique(i.numpy())) == {3, 4, 5, 6}
    p = tg.randperm(10, generator=g)
    assert sorted(p.tolist()) == list(range(10))


def test_normal_forms_and_zero_gradient():
    mean = tg.zeros(3, 1000, requires_grad=True)
    std = tg.full((1000,), 2.0, requires_grad=True)
    s = tg.normal(mean + 1, std)
    assert s.shape == (3, 1000)
    assert abs(s.mean().item() - 1) < 0.2 and abs(s.std().item() - 2) < 0.2
    s.sum().backward()  # PyTorch: a sample's derivative with respect to mean and std is zero
    assert not mean.grad.numpy().any() and not std.grad.numpy().any()
    assert tg.normal(tg.zeros(4)).shape == (4,)
    assert tg.normal(2.0, tg.ones(2, 2)).shape == (2, 2)
    with pytest.raises(RuntimeError, match="normal expects std >= 0.0"):
        tg.normal(0.0, -1.0, (2,))


def test_bernoulli_and_multinomial():
    g = tg.Generator().manual_seed(1)
    p = tg.tensor([0.0, 1.0, 0.3]).expand(4000, 3)
    b = tg.bernoulli(p, generator=g)
    assert b.dtype is tg.float32
    freq = b.mean(0).numpy()
    assert freq[0] == 0 and freq[1] == 1 and abs(freq[2] - 0.3) < 0.05
    w = tg.tensor([0.0, 1.0, 3.0])
    m = tg.multinomial(w, 4000, replacement=True, generator=g)
    counts = np.bincount(m.numpy(), minlength=3) / 4000
    assert m.dtype is tg.int64 and counts[0] == 0 and abs(counts[2] - 0.75) < 0.05
    rows = tg.multinomial(tg.tensor([[1.0, 1.0, 0.0, 1.0]] * 50), 3, generator=g)
    assert rows.shape == (50, 3)
    for row in rows.tolist():  # without replacement: distinct, never the zero-weight category
        assert len(set(row)) == 3 and 2 not in row


def test_inplace_fills():
    g = tg.Generator().manual_seed(2)
    x = tg.empty(3000, dtype=tg.float64)
    assert x.normal_(1.0, 0.5, generator=g) is x
    assert x.dtype is tg.float64 and abs(x.mean().item() - 1) < 0.05
    x.uniform_(-2, 3, generator=g)
    assert -2 <= x.min().item() and x.max().item() < 3 and abs(x.mean().item() - 0.5) < 0.1
    x.bernoulli_(0.25, generator=g)
    assert set(np.unique(x.numpy())) == {0.0, 1.0} and abs(x.mean().item() - 0.25) < 0.05
    x.exponential_(2.0, generator=g)
    assert x.min().item() >= 0 and abs(x.mean().item() - 0.5) < 0.05
    w = tg.zeros(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.normal_()
    with tg.no_grad():
        w.normal_()
        w[0].uniform_()  # a view: writes the row of w
    assert w.is_leaf and w.requires_grad and (w[0] >= 0).all().item()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", "uint8", "int8",
                                   "int16", "int32", "int64", "bool"])
def test_random_without_bounds_covers_the_dtype_as_pytorch(dtype):
    """`random_()`: integers on PyTorch's range for the dtype, `[0, 2**digits]` for floats and
    `[0, max]` for integers (it used to fill zeros)."""
    torch = pytest.importorskip("torch")
    n = 4000
    want = torch.zeros(n, dtype=getattr(torch, dtype)).random_().double()
    got = tg.zeros(n, dtype=getattr(tg, dtype)).random_()
    assert got.dtype is getattr(tg, dtype)
    got = np.asarray(got.double().tolist())
    high = want.max().item()
    assert got.min() >= 0 and np.all(got == np.round(got))
    assert got.max() <= {"float16": 2.0 ** 11, "bfloat16": 2.0 ** 8, "float32": 2.0 ** 24,
                         "float64": 2.0 ** 53}.get(dtype, high * 1.001 + 1)
    assert got.max() > high / 2 and len(np.unique(got)) > min(n // 4, high / 2)
    np.testing.assert_array_less(tg.zeros(50).random_(to=3).numpy(), 3)


@pytest.mark.parametrize("seed", [0, 1, 67280421310721, 2**32 - 1, 2**32, 2**63 - 1])
def test_a_generators_key_is_jaxs_key_of_its_seed(seed):
    """The key is made on the host (no compile at a process's first draw): JAX's own
    `PRNGKey(seed)`, so the draws are jax.random's for that key."""
    import jax

    gen = tg.Generator().manual_seed(seed)
    key, _ = gen.stream
    with jax.enable_x64(True):
        expected = jax.random.PRNGKey(seed)
    np.testing.assert_array_equal(np.asarray(key.value), np.asarray(expected))
    assert key.value.dtype == expected.dtype
    drawn = tg.randn(5, generator=gen).numpy()
    reference = jax.random.normal(jax.random.fold_in(expected, 0), (5,), np.float32)
    np.testing.assert_allclose(drawn, reference, rtol=1e-6)


def test_seeds_up_to_two_to_the_64_draw_as_pytorch_accepts_them():
    gen = tg.Generator().manual_seed(2**64 - 1)
    assert gen.initial_seed() == 2**64 - 1
    a, b = tg.randn(3, generator=gen).numpy(), tg.randn(3, generator=gen).numpy()
    assert np.isfinite(a).all() and not np.array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_host_uniform_is_jaxs_bit_for_bit(dtype):
    """`_core/threefry.py` against jax.random itself: fold_in, then uniform, over seeds whose
    key words are 0, small and near 2**32, counters past 2**31, odd and even sizes."""
    import jax

    from tapegrad._core import threefry

    with jax.enable_x64(True):
        for seed in [0, 67280421310721, 2**63 - 5, 2**32 - 1]:
            key = np.asarray(jax.random.PRNGKey(seed))
            for counter in [0, 1, 2**31 + 3]:
                expected_key = jax.random.fold_in(key, np.int64(counter))
                folded = threefry.fold_in(key, counter)
                np.testing.assert_array_equal(folded, np.asarray(expected_key))
                for size in [1, 3, 1000, 4097]:
                    expected = np.asarray(jax.random.uniform(expected_key, (size,), dtype))
                    got = threefry.uniform(folded, size, dtype)
                    assert got.dtype == expected.dtype
                    np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))


def test_uniform_draws_compile_nothing_and_are_jaxs_numbers():
    """`rand` (as `nn.Linear`'s initialisation) draws on the host, compiling no XLA program, the
    numbers `jax.random.uniform` draws for the generator's key and counter; so do the draws of
    the shape recorded into programs after `EAGER_DRAWS`."""
    import jax

    from tapegrad._tensor.random import EAGER_DRAWS

    with jax.enable_x64(True):
        key = jax.random.PRNGKey(11)
        expected = [np.asarray(jax.random.uniform(jax.random.fold_in(key, np.int64(i)), (5, 3),
                                                  np.float32))
                    for i in range(EAGER_DRAWS + 3)]
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, d, **k: compiles.append(event)
        if event == "/jax/core/compile/backend_compile_duration" else None)
    gen = tg.Generator().manual_seed(11)
    first = [tg.rand(5, 3, generator=gen).numpy() for _ in range(EAGER_DRAWS)]
    assert compiles == []
    later = [tg.rand(5, 3, generator=gen).numpy() for _ in range(3)]
    for got, want in zip(first + later, expected):
        np.testing.assert_array_equal(got, want)
