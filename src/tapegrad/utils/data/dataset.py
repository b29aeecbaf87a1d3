"""Datasets: map-style (`Dataset`), stream-style (`IterableDataset`) and their combinators."""
from __future__ import annotations

import bisect
import math
import warnings
from itertools import accumulate
from typing import Generic, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from ..._functions.creation import randperm
from ..._tensor import random as _random
from ..._tensor.construct import tensor
from ..._tensor.tensor import Tensor


T_co = TypeVar("T_co", covariant=True)

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset",
           "ChainDataset", "random_split"]


class Dataset(Generic[T_co]):
    """A map-style dataset: `__getitem__(index)` and usually `__len__`."""

    def __getitem__(self, index) -> T_co:
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other: "Dataset[T_co]") -> "ConcatDataset[T_co]":
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co], Iterable[T_co]):
    """A stream of samples: `__iter__` yields them (DataLoader batches them in order)."""

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")

    def __add__(self, other):
        return ChainDataset([self, other])


class TensorDataset(Dataset[tuple]):
    """Samples are rows of the given tensors (all of the same first dimension).

    A batch is gathered with one indexing per tensor rather than one per sample (see `DataLoader`).
    """

    def __init__(self, *tensors: Tensor) -> None:
        if not all(tensors[0].size(0) == t.size(0) for t in tensors):
            raise ValueError("Size mismatch between tensors")
        self.tensors = tensors
        self._host = None

    def __getitem__(self, index):
        if any(t.requires_grad for t in self.tensors):
            return tuple(t[index] for t in self.tensors)
        return tuple(tensor(a[index]) for a in self._host_arrays())

    def __len__(self) -> int:
        return self.tensors[0].size(0)

    def _host_arrays(self) -> list:
        """The tensors' values as numpy arrays (cached; refreshed after in-place updates)."""
        key = tuple((id(t._storage), t._version, id(t._node)) for t in self.tensors)
        if self._host is None or self._host[0] != key:
            self._host = (key, [np.asarray(t._value()) for t in self.tensors])
        return self._host[1]

    def _gather(self, indices: list) -> list:
        """The collated batch `[t[indices] for t in tensors]`: one host gather per tensor.

        Indexing sample by sample would record (and compile) one op per index; data comes from
        the host anyway, so the batch is gathered there and becomes one new tensor each.
        """
        if any(t.requires_grad for t in self.tensors):
            idx = tensor(indices)
            return [t[idx] for t in self.tensors]
        idx = np.asarray(indices, dtype=np.int64)
        return [tensor(a[idx]) for a in self._host_arrays()]


class Subset(Dataset[T_co]):
    """The samples of `dataset` at `indices`."""

    def __init__(self, dataset: Dataset[T_co], indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def _gather(self, indices: list[int]):
        gather = getattr(self.dataset, "_gather", None)
        if gather is None:
            return None
        return gather([self.indices[i] for i in indices])

    def __getitems__(self, indices: list[int]) -> list:
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset[T_co]):
    """Several map-style datasets one after another."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = list(datasets)
        if len(self.datasets) == 0:
            raise AssertionError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise AssertionError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int):
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        offset = idx if which == 0 else idx - self.cumulative_sizes[which - 1]
        return self.datasets[which][offset]


class ChainDataset(IterableDataset):
    """Several iterable datasets one after another."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


def random_split(dataset: Dataset[T_co], lengths: Sequence[int | float],
                 generator: _random.Generator | None = None) -> list[Subset[T_co]]:
    """Split into non-overlapping random subsets of given lengths (or fractions summing to 1)."""
    generator = generator or _random.default_generator
    n = len(dataset)  # type: ignore[arg-type]
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        subset_lengths = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            subset_lengths.append(int(math.floor(n * frac)))
        remainder = n - sum(subset_lengths)
        for i in range(remainder):
            subset_lengths[i % len(subset_lengths)] += 1
        lengths = subset_lengths
        for i, length in enumerate(lengths):
            if length == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty "
                              "dataset.", UserWarning, stacklevel=2)
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    indices = randperm(sum(lengths), generator=generator).tolist()
    return [Subset(dataset, indices[offset - length:offset])
            for offset, length in zip(accumulate(lengths), lengths)]
