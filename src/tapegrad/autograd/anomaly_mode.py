"""Anomaly detection for the backward pass (`torch.autograd.detect_anomaly`).

    with tapegrad.autograd.detect_anomaly():
        loss = model(x).log().sum()
        loss.backward()   # RuntimeError: Function 'LogBackward0' returned nan values in its 0th output.

While on, each recorded op keeps the traceback of the line that made it; the backward pass runs
op by op (slower: one small program per op), checks every op's gradients for NaN
(`check_nan=True`), and before any error in an op's backward warns with that op's forward
traceback. Off (the default), nothing is kept and backward is one compiled program.
"""
from __future__ import annotations

import contextlib
import warnings

from .._core import anomaly as _anomaly

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled", "set_anomaly_enabled"]


def is_anomaly_enabled() -> bool:
    return _anomaly.state.enabled


def is_anomaly_check_nan_enabled() -> bool:
    return _anomaly.state.check_nan


def set_anomaly_enabled(enabled: bool, check_nan: bool = True) -> None:
    """Turn anomaly mode on or off (`torch.set_anomaly_enabled`)."""
    _anomaly.state.enabled = bool(enabled)
    _anomaly.state.check_nan = bool(check_nan)


class _AnomalyMode(contextlib.ContextDecorator):
    def __init__(self, mode: bool, check_nan: bool) -> None:
        self.mode, self.check_nan = bool(mode), bool(check_nan)

    def __enter__(self) -> None:
        self._prev = (is_anomaly_enabled(), is_anomaly_check_nan_enabled())
        set_anomaly_enabled(self.mode, self.check_nan)

    def __exit__(self, *exc) -> None:
        set_anomaly_enabled(*self._prev)


class detect_anomaly(_AnomalyMode):  # noqa: N801 - PyTorch's name
    """Context manager (and decorator) that turns anomaly mode on for its body."""

    def __init__(self, check_nan: bool = True) -> None:
        super().__init__(True, check_nan)
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime "
                      "and should only be enabled for debugging.", stacklevel=2)


class set_detect_anomaly(_AnomalyMode):  # noqa: N801 - PyTorch's name
    """Set anomaly mode on or off at once (`set_detect_anomaly(True)`); as a `with` block, it is
    set back to what it was before at the block's end, as in PyTorch."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        super().__init__(mode, check_nan)
        self._prev = (is_anomaly_enabled(), is_anomaly_check_nan_enabled())
        set_anomaly_enabled(mode, check_nan)

    def __enter__(self) -> None:  # already set by __init__
        pass
