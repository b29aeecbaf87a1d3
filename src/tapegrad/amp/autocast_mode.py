"""`tapegrad.autocast` (`torch.autocast`): ops run in the precision PyTorch's autocast lists give
them (the lists and the casting mechanism are in `_core/autocast.py`)."""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable

from .. import cuda as _cuda
from .._core import autocast as _autocast, dtype as _dtype


class autocast:
    """Run the ops of a region in mixed precision, as `torch.autocast` (context manager and
    decorator). On "cpu" the default dtype is bfloat16, on "cuda" float16; matmuls, convolutions
    and linear layers run in it, losses and other float32-listed ops in float32, the rest in
    the dtype of their inputs. Gradients flow back through the casts, so float32 parameters get
    float32 gradients.
    """

    def __init__(self, device_type: str, dtype: _dtype.dtype | None = None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        if device_type not in _autocast.POLICIES:
            raise RuntimeError(f"User specified an unsupported autocast device_type "
                               f"'{device_type}'")
        self.device = device_type
        self.fast_dtype = _autocast.DEFAULT_DTYPES[device_type] if dtype is None else dtype
        # PyTorch caches the casts of leaf weights within a region; the cast nodes here are
        # part of one recorded graph, so the flag changes no numbers and is only kept.
        self._cache_enabled = True if cache_enabled is None else cache_enabled
        if enabled and device_type == "cuda" and not _cuda.is_available():
            warnings.warn("User provided device_type of 'cuda', but CUDA is not available. "
                          "Disabling")
            enabled = False
        if enabled and self.fast_dtype not in _autocast.SUPPORTED_DTYPES[device_type]:
            name = device_type.upper()
            allowed = ", ".join(f"tapegrad.{d.name}" for d in _autocast.SUPPORTED_DTYPES[device_type])
            warnings.warn(f"In {name} autocast, but the target dtype is not supported. Disabling "
                          f"autocast.\n{name} Autocast only supports dtype of {allowed} currently.")
            enabled = False
        self._enabled = bool(enabled)

    def __enter__(self) -> None:
        self._prev = (_autocast.state.enabled[self.device], _autocast.state.dtype[self.device])
        _autocast.set_enabled(self.device, self._enabled)
        _autocast.state.dtype[self.device] = self.fast_dtype

    def __exit__(self, *exc: Any) -> None:
        enabled, _autocast.state.dtype[self.device] = self._prev
        _autocast.set_enabled(self.device, enabled)

    def __call__(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def decorated(*args, **kwargs):
            with self:
                return func(*args, **kwargs)
        return decorated


def is_autocast_available(device_type: str) -> bool:
    """True for the device types autocast supports ("cpu", "cuda")."""
    return device_type in _autocast.POLICIES


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Whether autocast is on for `device_type` ("cuda" when not given, as in PyTorch)."""
    return _autocast.state.enabled["cuda" if device_type is None else device_type]


def get_autocast_dtype(device_type: str) -> _dtype.dtype:
    """The dtype autocast's lower-precision ops use on `device_type`."""
    return _autocast.state.dtype[device_type]
