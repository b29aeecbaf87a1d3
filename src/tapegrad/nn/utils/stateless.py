"""`tapegrad.nn.utils.stateless`: PyTorch's deprecated home of `functional_call`."""
from __future__ import annotations

import warnings
from typing import Any

from ...func import functional_call as _functional_call

__all__ = ["functional_call"]


def functional_call(module, parameters_and_buffers: dict, args: Any = None,
                    kwargs: dict | None = None, *, tie_weights: bool = True,
                    strict: bool = False) -> Any:
    """Deprecated alias of `tapegrad.func.functional_call`, as in PyTorch."""
    warnings.warn("tapegrad.nn.utils.stateless.functional_call is deprecated; use "
                  "tapegrad.func.functional_call instead", FutureWarning, stacklevel=2)
    return _functional_call(module, parameters_and_buffers, args, kwargs,
                            tie_weights=tie_weights, strict=strict)
