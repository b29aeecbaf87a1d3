"""`tapegrad.amp.GradScaler` (`torch.amp.GradScaler`): loss scaling for float16 training.

The scale multiplies the loss, `unscale_` divides the gradients by it in one op over all of an
optimizer's gradients (and notes whether any is inf or NaN), `step` skips the optimizer's step
when one was, and `update` backs the scale off after such a step or grows it after
`growth_interval` clean ones, as PyTorch's `_amp_update_scale_` does.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import jax.numpy as jnp
import numpy as np

from .. import cuda as _cuda
from .._core import dtype as _dtype, grad_mode as _grad_mode
from .._core.graph import SAVES_NONE, Op
from .._tensor.apply import apply
from .._tensor.construct import tensor
from .._tensor.inplace import inplace
from .._tensor.tensor import Tensor

_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"
_FIX = "This may indicate your script did not use scaler.scale(loss or outputs) earlier in the iteration."


def _non_finite(*grads):
    return jnp.float32(jnp.any(jnp.stack([~jnp.all(jnp.isfinite(g)) for g in grads])))


found_inf_op = Op("amp_found_inf", _non_finite, saves=SAVES_NONE, differentiable=False)
# In float32 (PyTorch's opmath for float16/bfloat16 gradients), then back to the grad's dtype.
unscale_op = Op("amp_unscale", lambda g, inv_scale: (g.astype(jnp.promote_types(g.dtype, jnp.float32))
                                                    * inv_scale).astype(g.dtype),
                saves=SAVES_NONE, differentiable=False)


class GradScaler:
    """Scale the loss so float16 gradients do not underflow, and unscale them before the step."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0**16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        self._device = device
        if enabled and device == "cuda" and not _cuda.is_available():
            warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  "
                          "Disabling.")
            enabled = False
        self._enabled = enabled
        if growth_factor <= 1.0:
            raise ValueError(f"The growth factor must be > 1.0 (got {growth_factor}).")
        if backoff_factor >= 1.0:
            raise ValueError(f"The backoff factor must be < 1.0 (got {backoff_factor}).")
        self._init_scale = init_scale
        self._scale: Tensor | None = None
        self._growth_factor = growth_factor
        self._backoff_factor = backoff_factor
        self._growth_interval = growth_interval
        self._growth_tracker = 0
        self._states: dict[int, dict[str, Any]] = {}

    def _state(self, optimizer) -> dict[str, Any]:
        return self._states.setdefault(id(optimizer), {"stage": _READY, "found_inf": None})

    def _check_scale(self, funcname: str) -> Tensor:
        if self._scale is None:
            raise RuntimeError(f"Attempted {funcname} but _scale is None.  " + _FIX)
        return self._scale

    def scale(self, outputs):
        """`outputs` (a tensor or nested lists/tuples of them) times the current scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            if self._scale is None:
                self._scale = tensor(np.float32(self._init_scale))
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            scaled = [self.scale(o) for o in outputs]
            return type(outputs)(scaled) if isinstance(outputs, list) else tuple(scaled)
        raise ValueError("outputs must be a Tensor or an iterable of Tensors")

    def unscale_(self, optimizer) -> None:
        """Divide the optimizer's gradients by the scale in place, noting inf/NaN ones."""
        if not self._enabled:
            return
        scale = self._check_scale("unscale_")
        state = self._state(optimizer)
        if state["stage"] == _UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the "
                               "last update().")
        if state["stage"] == _STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]
                 if p.grad is not None]
        if any(g.dtype is _dtype.float16 for g in grads):
            raise ValueError("Attempting to unscale FP16 gradients.")
        inv_scale = tensor(np.float32(1.0 / np.float64(scale.item())))
        with _grad_mode.no_grad():
            state["found_inf"] = (apply(found_inf_op, *grads) if grads else
                                  tensor(np.float32(0.0)))
            for g in grads:
                inplace(g, apply(unscale_op, g, inv_scale))
        state["stage"] = _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """`optimizer.step()` unless the unscaled gradients hold an inf or NaN (then skipped)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_scale("step")
        state = self._state(optimizer)
        if state["stage"] == _STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] == _READY:
            self.unscale_(optimizer)
        result = None
        if not state["found_inf"].item():
            result = optimizer.step(*args, **kwargs)
        state["stage"] = _STEPPED
        return result

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Back the scale off if any step this iteration saw inf/NaN, else count toward growth."""
        if not self._enabled:
            return
        scale = float(self._check_scale("update").item())
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                if new_scale.numel() != 1 or new_scale.requires_grad:
                    raise ValueError("new_scale should be a float or a 1-element tensor with "
                                     "requires_grad=False.")
                new_scale = new_scale.item()
            scale = float(new_scale)
        else:
            found = [s["found_inf"] for s in self._states.values() if s["found_inf"] is not None]
            if not found:
                raise RuntimeError("No inf checks were recorded prior to update.")
            if sum(f.item() for f in found):
                scale = float(np.float32(scale * self._backoff_factor))
                self._growth_tracker = 0
            elif self._growth_tracker + 1 == self._growth_interval:
                grown = float(np.float32(scale * self._growth_factor))
                scale = grown if math.isfinite(grown) else scale
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
        self._scale = tensor(np.float32(scale))
        self._states = {}

    def get_scale(self) -> float:
        """The current scale (the initial one before the first `scale`); 1.0 when disabled."""
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else float(self._scale.item())

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = new_interval

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's keys: scale, growth_factor, backoff_factor, growth_interval, _growth_tracker."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._init_scale = float(state_dict["scale"])
        if self._scale is not None:
            self._scale = tensor(np.float32(self._init_scale))
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
