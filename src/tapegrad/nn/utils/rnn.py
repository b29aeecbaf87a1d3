"""Variable-length sequences: `PackedSequence` and the pad/pack utilities of `torch.nn.utils.rnn`.

Lengths are host values (PyTorch requires them on the CPU too), so every layout change is one
gather (`index_select`) with an index computed in numpy: packing, padding and unpadding are
differentiable and record a single op each, whatever the batch.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np

from ..._core import dtype as _dtype
from ..._functions.creation import arange, empty_like, full
from ..._functions.shape import cat
from ..._functions.sort import sort
from ..._tensor.construct import as_tensor, tensor
from ..._tensor.tensor import Tensor

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence",
           "pad_sequence", "unpad_sequence", "pack_sequence", "unpack_sequence"]


class PackedSequence_(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


def _bind(optional, fn):
    return None if optional is None else fn(optional)


class PackedSequence(PackedSequence_):
    """Sequences of different lengths, time step by time step: `data` holds the `batch_sizes[t]`
    sequences still running at step `t`, longest first (`sorted_indices` gives their original
    order, `unsorted_indices` its inverse). Made by `pack_padded_sequence` / `pack_sequence`;
    the recurrent layers take one and return one."""

    def __new__(cls, data: Tensor, batch_sizes: Tensor | None = None,
                sorted_indices: Tensor | None = None, unsorted_indices: Tensor | None = None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        elif batch_sizes.device.type != "cpu":
            raise ValueError(
                "batch_sizes should always be on CPU. Instances of PackedSequence should never "
                "be created manually. They should be instantiated by functions like "
                "pack_sequence and pack_padded_sequences in nn.utils.rnn. "
                "https://pytorch.org/docs/stable/nn.html#torch.nn.utils.rnn.pack_sequence")
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args: Any, **kwargs: Any) -> PackedSequence:
        """`data.to(...)`; the indices follow `data`'s device. `self` when nothing changes."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        move = lambda t: t.to(data.device)  # noqa: E731
        return type(self)(data, self.batch_sizes, _bind(self.sorted_indices, move),
                          _bind(self.unsorted_indices, move))

    def cuda(self, *args: Any, **kwargs: Any) -> PackedSequence:
        kwargs.setdefault("device", "cuda")
        return self.to(*args, **kwargs)

    def cpu(self, *args: Any, **kwargs: Any) -> PackedSequence:
        return self.to(*args, device="cpu", **kwargs)

    def double(self) -> PackedSequence:
        return self.to(dtype=_dtype.float64)

    def float(self) -> PackedSequence:
        return self.to(dtype=_dtype.float32)

    def half(self) -> PackedSequence:
        return self.to(dtype=_dtype.float16)

    def long(self) -> PackedSequence:
        return self.to(dtype=_dtype.int64)

    def int(self) -> PackedSequence:
        return self.to(dtype=_dtype.int32)

    def short(self) -> PackedSequence:
        return self.to(dtype=_dtype.int16)

    def char(self) -> PackedSequence:
        return self.to(dtype=_dtype.int8)

    def byte(self) -> PackedSequence:
        return self.to(dtype=_dtype.uint8)

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of a 1-d permutation (None for None)."""
    if permutation is None:
        return None
    return empty_like(permutation).scatter_(0, permutation, arange(permutation.numel()))


def _host_lengths(lengths) -> np.ndarray:
    if isinstance(lengths, Tensor):
        return np.asarray(lengths.tolist(), dtype=np.int64).reshape(-1)
    return np.asarray(lengths, dtype=np.int64).reshape(-1)


def _valid(batch_sizes: np.ndarray, total: int) -> np.ndarray:
    """(total, B) bool: whether padded position (t, b) holds an element of the packed data."""
    bs = np.zeros(total, np.int64)
    bs[:len(batch_sizes)] = batch_sizes
    return np.arange(batch_sizes[0])[None, :] < bs[:, None]


def pack_index(batch_sizes: np.ndarray) -> np.ndarray:
    """Rows of the flattened time-major padded batch (T*B, ...) that make up the packed data."""
    return np.flatnonzero(_valid(batch_sizes, len(batch_sizes)))


def pad_index(batch_sizes: np.ndarray, total: int) -> np.ndarray:
    """For each position of the time-major padded batch (total*B), its row of the packed data,
    or `len(data)` (one past the end: the padding row) where the sequence has ended."""
    valid = _valid(batch_sizes, total)
    index = np.full(valid.shape, int(batch_sizes.sum()), np.int64)
    index[valid] = np.arange(int(batch_sizes.sum()))
    return index.reshape(-1)


def pad_time_major(data: Tensor, batch_sizes: np.ndarray, padding_value=0.0,
                   total: int | None = None) -> Tensor:
    """The packed `data` as a time-major padded batch (total, B, *), in the packed (sorted) order."""
    total = len(batch_sizes) if total is None else total
    pad_row = full((1,) + tuple(data.shape[1:]), padding_value, dtype=data.dtype)
    flat = cat([data, pad_row]).index_select(0, tensor(pad_index(batch_sizes, total)))
    return flat.reshape((total, int(batch_sizes[0])) + tuple(data.shape[1:]))


def pack_time_major(padded: Tensor, batch_sizes: np.ndarray) -> Tensor:
    """The packed data of a time-major padded batch (T, B, *) whose sequences are sorted."""
    rows = padded[:len(batch_sizes)]
    rows = rows.reshape((-1,) + tuple(padded.shape[2:]))
    return rows.index_select(0, tensor(pack_index(batch_sizes)))


def pack_padded_sequence(input: Tensor, lengths: Tensor | list[int], batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) or (B, T, *) of sequences of the given `lengths`;
    `enforce_sorted=False` sorts them by decreasing length first (kept in `sorted_indices`)."""
    lengths = as_tensor(lengths, dtype=_dtype.int64) if not isinstance(lengths, Tensor) \
        else lengths.to(dtype=_dtype.int64)
    sorted_indices = None
    if not enforce_sorted:
        lengths, sorted_indices = sort(lengths, descending=True)
        input = input.index_select(0 if batch_first else 1, sorted_indices)
    host = _host_lengths(lengths)
    if input.ndim < 2:
        raise IndexError(f"Dimension out of range (expected to be in range of [-{input.ndim}, "
                         f"{input.ndim - 1}], but got 1)")
    if batch_first:
        input = input.transpose(0, 1)
    if len(host) != input.shape[1]:
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got "
                           f"{len(host)} (batch_size={input.shape[1]})")
    if host[-1] <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an "
                           "element in 'lengths' that is <= 0")
    if (np.diff(host) > 0).any():
        raise RuntimeError(
            "`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. "
            "You can pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to "
            "sidestep this requirement if you do not need ONNX exportability.")
    if host[0] > input.shape[0]:
        # PyTorch reads past the end of the padded input here; a gather cannot.
        raise RuntimeError(f"pack_padded_sequence: a length ({host[0]}) exceeds the padded "
                           f"sequence length ({input.shape[0]})")
    batch_sizes = (host[None, :] > np.arange(host[0])[:, None]).sum(1)
    data = pack_time_major(input, batch_sizes)
    return PackedSequence(data, tensor(batch_sizes), sorted_indices, None)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[Tensor, Tensor]:
    """The inverse of `pack_padded_sequence`: the padded batch, in the original order, and the
    lengths; `total_length` pads to that many steps."""
    batch_sizes = _host_lengths(sequence.batch_sizes)
    max_seq_length = len(batch_sizes)
    if total_length is not None:
        if total_length < max_seq_length:
            raise ValueError("Expected total_length to be at least the length of the longest "
                             f"sequence in input, but got total_length={total_length} and max "
                             f"sequence length being {max_seq_length}")
        max_seq_length = total_length
    padded = pad_time_major(sequence.data, batch_sizes, padding_value, max_seq_length)
    lengths = tensor((batch_sizes[None, :] > np.arange(batch_sizes[0])[:, None]).sum(1))
    if batch_first:
        padded = padded.transpose(0, 1)
    if sequence.unsorted_indices is not None:
        return (padded.index_select(0 if batch_first else 1, sequence.unsorted_indices),
                lengths[sequence.unsorted_indices])
    return padded, lengths


def _slot_check(slot: tuple, shape: tuple) -> None:
    """PyTorch copies each sequence into its slot of the output, broadcasting."""
    for k in range(1, len(shape) + 1):
        a, b = slot[-k] if k <= len(slot) else 1, shape[-k]
        if a != b and b != 1:
            raise RuntimeError(f"The size of tensor a ({a}) must match the size of tensor b "
                               f"({b}) at non-singleton dimension {len(shape) - k}")


def pad_sequence(sequences: Tensor | list[Tensor], batch_first: bool = False,
                 padding_value: float = 0.0, padding_side: str = "right") -> Tensor:
    """Stack sequences (L_i, *) into one padded batch (T, B, *) (or (B, T, *)), padding each
    on `padding_side` with `padding_value`; the result has the first sequence's dtype."""
    if not isinstance(sequences, Iterable):
        raise RuntimeError("pad_sequence: Expected iterable for input sequences, but got arg of "
                           f"type: {type(sequences)}")
    sequences = tuple(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got "
                           f"{padding_side}.")
    if any(s.ndim == 0 for s in sequences):
        raise RuntimeError("pad_sequence: every sequence needs a length (got a 0-d tensor)")
    trailing, dtype = tuple(sequences[0].shape[1:]), sequences[0].dtype
    lengths = np.array([s.shape[0] for s in sequences], np.int64)
    for s, n in zip(sequences, lengths):
        _slot_check((int(n),) + trailing, tuple(s.shape))
    rows = [s.to(dtype).expand((int(n),) + trailing) for s, n in zip(sequences, lengths)]
    rows.append(full((1,) + trailing, padding_value, dtype=dtype))
    total, batch = int(lengths.max()), len(sequences)
    steps = np.arange(total)[:, None]
    start = total - lengths if padding_side == "left" else np.zeros_like(lengths)
    valid = (steps >= start) & (steps < start + lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    index = np.where(valid, offsets + steps - start, int(lengths.sum()))
    if batch_first:
        index = index.T
    out = cat(rows).index_select(0, tensor(index.reshape(-1)))
    return out.reshape(index.shape + trailing)


def unpad_sequence(padded_sequences: Tensor, lengths: Tensor,
                   batch_first: bool = False) -> list[Tensor]:
    """The inverse of `pad_sequence`: the list of sequences, each cut to its length. (PyTorch
    also transposes a time-major `padded_sequences` in place; tapegrad leaves it as it is.)"""
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [seq[:n] for seq, n in zip(padded_sequences, _host_lengths(lengths).tolist())]


def pack_sequence(sequences: list[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """`pack_padded_sequence(pad_sequence(sequences), lengths)`."""
    lengths = as_tensor([v.size(0) for v in sequences])
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The inverse of `pack_sequence`: the list of sequences, in their original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
