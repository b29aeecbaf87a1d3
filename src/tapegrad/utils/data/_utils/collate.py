"""Collation: turn a list of samples into a batch (`default_collate`) as PyTorch does.

Tensors are stacked on the host with numpy from their values and become ONE new tensor (data
comes from the host anyway, and this is one transfer instead of one op per sample); samples that
require grad are stacked with `tapegrad.stack` so gradients flow. Python floats become float64
tensors, ints int64 and bools bool, as in PyTorch.
"""
from __future__ import annotations

import collections.abc
import re
from typing import Any, Callable

import numpy as np

from ...._core.compile import materialize
from ...._functions.shape import stack
from ...._tensor.construct import tensor
from ...._tensor.tensor import Tensor


_np_str_obj_array_pattern = re.compile(r"[SaUO]")

default_collate_err_msg_format = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}")

default_convert_err_msg_format = (
    "default_convert: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}")


def _tensor(array: np.ndarray) -> Tensor:
    return tensor(array)


def stack_tensors(batch: list) -> Tensor:
    """Stack same-shaped tensors along a new first dimension."""
    shape = batch[0].shape
    for t in batch:
        if t.shape != shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(shape)} at entry 0 and {list(t.shape)} at another entry")
    if any(t.requires_grad for t in batch):
        return stack(batch)
    pending = [t._node for t in batch if t._node.value is None]
    if pending:
        materialize(pending)  # one compiled call for every pending sample
    return _tensor(np.stack([np.asarray(t._value()) for t in batch]))


def default_convert(data: Any) -> Any:
    """Numpy arrays (not of strings/objects) become tensors, recursively; the rest is kept."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        if _np_str_obj_array_pattern.search(data.dtype.str) is not None:
            return data
        return _tensor(data)
    if isinstance(data, np.generic) and not isinstance(data, (np.str_, np.bytes_)):
        return _tensor(np.asarray(data))
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, collections.abc.Mapping):
        try:
            return type(data)({k: default_convert(v) for k, v in data.items()})
        except TypeError:
            return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data


def default_collate(batch: list) -> Any:
    """Stack a list of samples into a batch, recursing into dicts, tuples and lists.

    >>> default_collate([(tensor([1.0]), 0), (tensor([2.0]), 1)])
    [tensor([[1.], [2.]]), tensor([0, 1])]
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack_tensors(batch)
    if isinstance(elem, np.ndarray) or (isinstance(elem, np.generic)
                                        and not isinstance(elem, (np.str_, np.bytes_))):
        if _np_str_obj_array_pattern.search(elem.dtype.str) is not None:
            raise TypeError(default_collate_err_msg_format.format(elem.dtype))
        arrays = [np.asarray(b) for b in batch]
        if any(a.shape != arrays[0].shape for a in arrays):
            raise RuntimeError("stack expects each tensor to be equal size, but got "
                               f"{list(arrays[0].shape)} at entry 0 and a different size at "
                               "another")
        return _tensor(np.stack(arrays))
    if isinstance(elem, bool):
        return _tensor(np.array(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return _tensor(np.array(batch, dtype=np.int64))
    if isinstance(elem, float):
        return _tensor(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        try:
            return type(elem)({k: default_collate([d[k] for d in batch]) for k in elem})
        except TypeError:
            return {k: default_collate([d[k] for d in batch]) for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if not all(len(e) == size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = [list(s) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return [default_collate(s) for s in transposed]  # a list, as PyTorch
        try:
            return type(elem)([default_collate(s) for s in transposed])
        except TypeError:
            return [default_collate(s) for s in transposed]
    raise TypeError(default_collate_err_msg_format.format(type(elem)))


CollateFn = Callable[[list], Any]
