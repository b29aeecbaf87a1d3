"""Samplers: which dataset indices to load, and in which order (`tapegrad.utils.data.sampler`).

Shuffling draws from tapegrad's seeded generators (`tapegrad.manual_seed` or a `generator=`),
so the order repeats under the same seed (the numbers are JAX's, not PyTorch's). Draws with
replacement are made lazily, a chunk at a time as PyTorch does, so the work done is proportional
to the indices consumed, not to `num_samples` (`num_samples=10**10` is a common way to say
"forever").
"""
from __future__ import annotations

from typing import Generic, Iterable, Iterator, Sized, TypeVar

import numpy as np

from ..._functions.creation import randint, randperm
from ..._tensor import random as _random


T_co = TypeVar("T_co", covariant=True)

_CHUNK = 32  # indices drawn per call when sampling with replacement (PyTorch's chunk)

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler"]


class Sampler(Generic[T_co]):
    """Base class: an iterable over dataset indices (or batches of them)."""

    def __init__(self, data_source: Sized | None = None) -> None:
        pass

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError


class SequentialSampler(Sampler[int]):
    """`0, 1, ..., len(data_source) - 1`."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


def _epoch_generator(generator) -> _random.Generator:
    """The given generator, or a fresh one seeded from the global generator (as PyTorch)."""
    if generator is not None:
        return generator
    seed = int(randint(0, 2**62, (1,)).item())
    return _random.Generator().manual_seed(seed)


class RandomSampler(Sampler[int]):
    """A random permutation of the indices, or `num_samples` draws with replacement."""

    def __init__(self, data_source: Sized, replacement: bool = False,
                 num_samples: int | None = None, generator=None) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got "
                            f"replacement={self.replacement}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        gen = _epoch_generator(self.generator)
        if self.replacement:
            for start in range(0, self.num_samples, _CHUNK):
                size = min(_CHUNK, self.num_samples - start)
                yield from randint(0, n, (size,), generator=gen).tolist()
            return
        for _ in range(self.num_samples // n):
            yield from randperm(n, generator=gen).tolist()
        rest = self.num_samples % n
        if rest:
            yield from randperm(n, generator=gen).tolist()[:rest]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given indices in a random order."""

    def __init__(self, indices: list[int], generator=None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        perm = randperm(len(self.indices), generator=_epoch_generator(self.generator)).tolist()
        for i in perm:
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """`num_samples` indices drawn with probabilities proportional to `weights`.

    The draw uses numpy's generator seeded from tapegrad's (so `manual_seed` repeats it); with
    replacement it is made lazily, `_CHUNK` indices at a time.
    """

    def __init__(self, weights, num_samples: int, replacement: bool = True,
                 generator=None) -> None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got "
                             f"replacement={replacement}")
        w = np.asarray(weights._value() if hasattr(weights, "_value") else weights, np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape "
                             f"{tuple(w.shape)}")
        self.weights = w
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        w = self.weights
        bad = np.flatnonzero(~(w >= 0) | np.isinf(w))  # PyTorch reports the first bad entry
        if bad.size:
            what = "= infinity or NaN" if np.isinf(w[bad[0]]) else "< 0"  # NaN reads as < 0
            raise RuntimeError(f"invalid multinomial distribution (encountering probability "
                               f"entry {what})")
        if w.sum() <= 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        if not self.replacement and self.num_samples > len(w):
            raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without "
                               "replacement")
        seed = int(randint(0, 2**62, (1,), generator=_epoch_generator(self.generator)).item())
        rng = np.random.default_rng(seed)
        if not self.replacement:
            yield from rng.choice(len(w), self.num_samples, replace=False, p=w / w.sum()).tolist()
            return
        cdf = np.cumsum(w)
        cdf /= cdf[-1]
        for start in range(0, self.num_samples, _CHUNK):
            u = rng.random(min(_CHUNK, self.num_samples - start))
            yield from np.searchsorted(cdf, u, side="right").tolist()  # u < 1 = cdf[-1]

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list[int]]):
    """Group another sampler's indices into lists of `batch_size` (the last may be short)."""

    def __init__(self, sampler: Sampler[int] | Iterable[int], batch_size: int,
                 drop_last: bool) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size
