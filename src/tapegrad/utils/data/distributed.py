"""`DistributedSampler`: each process's share of a dataset's indices, PyTorch's partition.

The shuffled order must be the same on every process and the same as PyTorch's, so that a
script moved from PyTorch sees the same batches: it is PyTorch's CPU `randperm` under
`manual_seed(seed + epoch)`, a Fisher-Yates shuffle driven by MT19937 (seeded with the low 32
bits), computed with numpy's MT19937, not tapegrad's JAX generators.
"""
from __future__ import annotations

import math
from typing import Iterator, Sized

import numpy as np

from ...distributed import _group
from .sampler import Sampler

__all__ = ["DistributedSampler"]


def _torch_randperm(n: int, seed: int) -> list:
    """PyTorch's `torch.randperm(n, generator=torch.Generator().manual_seed(seed))`."""
    if n >= (2**32 - 1) // 20:  # PyTorch switches to 64-bit draws there
        raise ValueError(f"DistributedSampler(shuffle=True) supports datasets of fewer than "
                         f"{(2**32 - 1) // 20} samples, got {n}")
    _, key, pos, _, _ = np.random.RandomState(seed & 0xFFFFFFFF).get_state()  # init_genrand
    bits = np.random.MT19937()
    bits.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": pos}}
    draws = bits.random_raw(max(n - 1, 0))
    out = list(range(n))
    for i in range(n - 1):
        z = i + int(draws[i]) % (n - i)
        out[i], out[z] = out[z], out[i]
    return out


class DistributedSampler(Sampler[int]):
    """Rank `rank`'s indices out of `num_replicas` equal shares (padded by repeating indices,
    or cut with `drop_last`); `set_epoch(e)` reshuffles (`shuffle=True`) as PyTorch's does."""

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None:
            num_replicas = _group.get_world_size()
        if rank is None:
            rank = _group.get_rank()
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, "
                             f"{num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        if drop_last and len(dataset) % num_replicas != 0:
            self.num_samples = math.ceil((len(dataset) - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(len(dataset) / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        indices = _torch_randperm(n, self.seed + self.epoch) if self.shuffle else list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Shuffle differently in the next iteration (each epoch its own order)."""
        self.epoch = epoch
