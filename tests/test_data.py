"""tapegrad.utils.data: batching, shuffling, drop_last, collation, samplers, splits."""
from __future__ import annotations

import collections

import numpy as np
import pytest

import tapegrad
from tapegrad.utils.data import (
    BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler,
    SequentialSampler, Subset, TensorDataset, default_collate, random_split,
)


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": np.full(3, i, np.float32), "y": i * i, "name": f"s{i}"}


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))


def _tensor_dataset(n=10):
    x = tapegrad.tensor(np.arange(n * 2, dtype=np.float32).reshape(n, 2))
    y = tapegrad.tensor(np.arange(n))
    return TensorDataset(x, y)


def test_import_paths():
    from tapegrad.utils.data.dataloader import DataLoader as DL
    from tapegrad.utils.data.dataset import TensorDataset as TD
    from tapegrad.utils.data.sampler import RandomSampler as RS
    from tapegrad.utils.data._utils.collate import default_collate as dc
    assert DL is DataLoader and TD is TensorDataset and RS is RandomSampler
    assert dc is default_collate
    assert tapegrad.utils.data.DataLoader is DataLoader


def test_sequential_batches_and_drop_last():
    ds = _tensor_dataset(10)
    batches = list(DataLoader(ds, batch_size=4))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    assert len(DataLoader(ds, batch_size=4)) == 3
    np.testing.assert_array_equal(batches[1][1].numpy(), [4, 5, 6, 7])
    np.testing.assert_array_equal(batches[1][0].numpy(), np.arange(8, 16).reshape(4, 2))
    assert batches[0][0].dtype is tapegrad.float32 and batches[0][1].dtype is tapegrad.int64
    dropped = list(DataLoader(ds, batch_size=4, drop_last=True))
    assert len(dropped) == 2 and len(DataLoader(ds, batch_size=4, drop_last=True)) == 2


def test_shuffle_is_a_permutation_and_repeats_under_seed():
    ds = _tensor_dataset(17)

    def order(**kw):
        return np.concatenate([y.numpy() for _, y in DataLoader(ds, batch_size=5, **kw)])
    tapegrad.manual_seed(0)
    a, b = order(shuffle=True), order(shuffle=True)
    assert sorted(a.tolist()) == list(range(17))
    assert a.tolist() != list(range(17)) and a.tolist() != b.tolist()  # new order each epoch
    tapegrad.manual_seed(0)
    np.testing.assert_array_equal(order(shuffle=True), a)
    g = tapegrad.Generator().manual_seed(3)
    c = order(shuffle=True, generator=g)
    g.manual_seed(3)
    np.testing.assert_array_equal(order(shuffle=True, generator=g), c)
    # rows stay aligned with labels
    for x, y in DataLoader(ds, batch_size=5, shuffle=True):
        np.testing.assert_array_equal(x.numpy()[:, 0], 2 * y.numpy())


def test_default_collation_of_dicts_numbers_strings_numpy():
    batch = next(iter(DataLoader(Squares(5), batch_size=3)))
    assert set(batch) == {"x", "y", "name"}
    assert batch["x"].shape == (3, 3) and batch["x"].dtype is tapegrad.float32
    np.testing.assert_array_equal(batch["y"].numpy(), [0, 1, 4])
    assert batch["y"].dtype is tapegrad.int64
    assert batch["name"] == ["s0", "s1", "s2"]


def test_default_collate_rules():
    out = default_collate([(1.5, True, np.float32(2)), (2.5, False, np.float32(3))])
    assert isinstance(out, list) and len(out) == 3  # tuples collate to a list, as PyTorch
    assert out[0].dtype is tapegrad.float64 and out[1].dtype is tapegrad.bool
    assert out[2].dtype is tapegrad.float32
    Point = collections.namedtuple("Point", "a b")
    p = default_collate([Point(1, tapegrad.tensor([1.0])), Point(2, tapegrad.tensor([2.0]))])
    assert isinstance(p, Point) and p.b.shape == (2, 1)
    nested = default_collate([[tapegrad.ones(2), {"k": 1}], [tapegrad.zeros(2), {"k": 2}]])
    assert nested[0].shape == (2, 2) and nested[1]["k"].tolist() == [1, 2]
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([[1, 2], [1]])
    with pytest.raises(TypeError, match="batch must contain tensors"):
        default_collate([object(), object()])


def test_collate_keeps_gradients():
    w = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    batch = default_collate([w * 2, w * 3])
    batch.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [5.0, 5.0])


def test_collate_fn_sampler_and_batch_sampler():
    ds = _tensor_dataset(6)
    dl = DataLoader(ds, batch_size=2, collate_fn=lambda samples: len(samples))
    assert list(dl) == [2, 2, 2]
    dl = DataLoader(ds, sampler=[5, 0, 3], batch_size=2)
    assert [y.tolist() for _, y in dl] == [[5, 0], [3]]
    dl = DataLoader(ds, batch_sampler=[[1, 2, 3], [0]])
    assert [y.tolist() for _, y in dl] == [[1, 2, 3], [0]]
    x, y = next(iter(DataLoader(ds, batch_size=None)))
    assert x.shape == (2,) and y.item() == 0
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, sampler=[0], shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_sampler=[[0]], batch_size=2)


def test_num_workers_is_accepted_and_runs_in_process():
    ds = _tensor_dataset(6)
    assert [y.tolist() for _, y in DataLoader(ds, batch_size=3, num_workers=2)] == \
        [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError, match="num_workers option should be non-negative"):
        DataLoader(ds, num_workers=-1)


def test_iterable_dataset():
    dl = DataLoader(Stream(7), batch_size=3)
    assert [b.tolist() for b in dl] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in DataLoader(Stream(7), batch_size=3, drop_last=True)] == \
        [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(Stream(3), shuffle=True)


def test_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    tapegrad.manual_seed(1)
    perm = list(RandomSampler(range(10)))
    assert sorted(perm) == list(range(10))
    more = list(RandomSampler(range(4), num_samples=10))
    assert len(more) == 10 and sorted(more[:4]) == [0, 1, 2, 3]
    draws = list(RandomSampler(range(3), replacement=True, num_samples=50))
    assert len(draws) == 50 and set(draws) <= {0, 1, 2} and len(set(draws)) == 3
    assert list(BatchSampler(range(7), 3, drop_last=False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(BatchSampler(range(7), 3, drop_last=True)) == 2
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(range(3), 0, False)


def test_random_split_subset_concat():
    ds = _tensor_dataset(10)
    a, b = random_split(ds, [7, 3], generator=tapegrad.Generator().manual_seed(0))
    assert len(a) == 7 and len(b) == 3
    assert sorted(a.indices + b.indices) == list(range(10))
    parts = random_split(ds, [0.5, 0.3, 0.2])
    assert [len(p) for p in parts] == [5, 3, 2]
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(ds, [3, 3])
    sub = Subset(ds, [4, 2])
    assert sub[1][1].item() == 2 and len(sub) == 2
    ys = [y.tolist() for _, y in DataLoader(sub, batch_size=2)]
    assert ys == [[4, 2]]
    cat = ConcatDataset([Squares(3), Squares(2)])
    assert len(cat) == 5 and cat[3]["y"] == 0 and cat[-1]["y"] == 1


def test_tensor_dataset_sees_in_place_updates():
    x = tapegrad.zeros(4, 2)
    ds = TensorDataset(x)
    first = next(iter(DataLoader(ds, batch_size=4)))[0]
    x.add_(1.0)
    second = next(iter(DataLoader(ds, batch_size=4)))[0]
    assert first.sum().item() == 0 and second.sum().item() == 8
    with pytest.raises(ValueError, match="Size mismatch between tensors"):
        TensorDataset(tapegrad.zeros(3), tapegrad.zeros(4))


def test_weighted_and_subset_random_samplers():
    from tapegrad.utils.data import SubsetRandomSampler, WeightedRandomSampler
    tapegrad.manual_seed(0)
    draws = list(WeightedRandomSampler([0.0, 1.0, 3.0], num_samples=2000))
    counts = np.bincount(draws, minlength=3)
    assert counts[0] == 0 and 0.2 < counts[1] / 2000 < 0.3
    tapegrad.manual_seed(0)
    assert list(WeightedRandomSampler([0.0, 1.0, 3.0], num_samples=2000)) == draws
    once = list(WeightedRandomSampler([1.0, 1.0, 1.0, 1.0], 4, replacement=False))
    assert sorted(once) == [0, 1, 2, 3]
    assert sorted(SubsetRandomSampler([5, 7, 9])) == [5, 7, 9]


def test_samplers_with_replacement_draw_lazily():
    """`num_samples=10**10` (minGPT's and makemore's "forever"): taking a few indices, or a few
    batches through a DataLoader, must do work for those alone. Run in a subprocess: allocating
    every draw at once aborts the process inside XLA rather than raising."""
    import os
    import subprocess
    import sys
    code = ("import itertools, numpy as np, tapegrad as tg\n"
            "from tapegrad.utils.data import (DataLoader, RandomSampler, TensorDataset,\n"
            "                                 WeightedRandomSampler)\n"
            "N = 10**10\n"
            "s = RandomSampler(range(5), replacement=True, num_samples=N)\n"
            "assert len(s) == N\n"
            "got = list(itertools.islice(s, 100))\n"
            "assert len(got) == 100 and set(got) <= set(range(5)), got\n"
            "ds = TensorDataset(tg.arange(10.0), tg.arange(10))\n"
            "dl = DataLoader(ds, batch_size=4, sampler=RandomSampler(ds, True, N))\n"
            "assert len(dl) == N // 4\n"
            "batches = list(itertools.islice(dl, 3))\n"
            "assert [tuple(b[0].shape) for b in batches] == [(4,)] * 3\n"
            "assert all((b[0] == b[1].float()).all() for b in batches)\n"
            "w = list(itertools.islice(WeightedRandomSampler([0.0, 1.0, 3.0], N), 100))\n"
            "assert len(w) == 100 and set(w) <= {1, 2}, w\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


@pytest.mark.parametrize("make", [
    lambda n, g: RandomSampler(range(7), replacement=True, num_samples=n, generator=g),
    lambda n, g: __import__("tapegrad.utils.data", fromlist=["x"]).WeightedRandomSampler(
        [1.0, 2.0, 0.5], n, generator=g),
], ids=["random", "weighted"])
def test_lazy_draws_do_not_depend_on_num_samples(make):
    """Under one seed, the first indices are the same however many are asked for (the last
    chunk is cut to `num_samples`), so a run's order does not depend on its length."""
    import itertools
    short = list(make(45, tapegrad.Generator().manual_seed(3)))
    long = list(itertools.islice(make(10**6, tapegrad.Generator().manual_seed(3)), 45))
    assert len(short) == 45 and short == long
    assert len(set(short)) > 1


def test_weighted_sampler_invalid_weights_match_pytorch():
    from tapegrad.utils.data import WeightedRandomSampler
    cases = [([1.0, -1.0], "encountering probability entry < 0"),
             ([0.0, 0.0], "sum of probabilities <= 0"),
             ([1.0, float("nan")], "encountering probability entry < 0"),
             ([1.0, float("inf")], "encountering probability entry = infinity or NaN"),
             ([float("inf"), -1.0], "encountering probability entry = infinity or NaN")]
    for weights, match in cases:
        with pytest.raises(RuntimeError, match=match):
            list(WeightedRandomSampler(weights, 3))
    torch = pytest.importorskip("torch")
    for weights, match in cases:
        with pytest.raises(RuntimeError, match=match):
            list(torch.utils.data.WeightedRandomSampler(weights, 3))
