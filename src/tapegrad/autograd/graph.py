"""`autograd.graph`: hooks on the tensors autograd saves for backward.

tapegrad keeps no saved tensors for built-in ops: `backward()` recomputes the forward inside
one XLA program from the graph's inputs. So `saved_tensors_hooks` apply where tensors really
are saved, a custom `autograd.Function`'s `save_for_backward` (packed when saved, unpacked at
each `ctx.saved_tensors`, as PyTorch), and recording a built-in differentiable op under them
raises rather than silently skipping the user's pack and unpack. `save_on_cpu` is accepted
everywhere: what it achieves (no activations held on the device between forward and backward)
is already so for built-in ops, and a Function's saved tensors are moved to the CPU and back.
"""
from __future__ import annotations

from typing import Any, Callable

from .._core import grad_mode as _grad_mode
from .._tensor.tensor import Tensor

__all__ = ["saved_tensors_hooks", "save_on_cpu", "disable_saved_tensors_hooks"]


class saved_tensors_hooks:
    """Within this context, `pack_hook(t)` runs on each tensor saved for backward and
    `unpack_hook(packed)` gives it back when backward needs it."""

    _recomputes = False  # whether recomputing built-in ops' inputs serves the hooks' purpose

    def __init__(self, pack_hook: Callable[[Tensor], Any],
                 unpack_hook: Callable[[Any], Tensor]) -> None:
        self.pack_hook, self.unpack_hook = pack_hook, unpack_hook

    def __enter__(self) -> "saved_tensors_hooks":
        if _grad_mode.state.hooks_disabled is not None:
            raise RuntimeError(_grad_mode.state.hooks_disabled)
        state = _grad_mode.state
        state.saved_hooks = state.saved_hooks + ((self.pack_hook, self.unpack_hook,
                                                  self._recomputes),)
        return self

    def __exit__(self, *exc) -> None:
        _grad_mode.state.saved_hooks = _grad_mode.state.saved_hooks[:-1]


class save_on_cpu(saved_tensors_hooks):
    """Keep saved tensors on the CPU until backward, moving them back to their device then.
    `pin_memory` is accepted (JAX manages host buffers)."""

    _recomputes = True

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda") -> None:
        def pack(t: Tensor) -> tuple:
            return t.device, t.to("cpu")

        def unpack(packed: tuple) -> Tensor:
            where, t = packed
            return t.to(where)
        super().__init__(pack, unpack)


class disable_saved_tensors_hooks:
    """Within this context, entering `saved_tensors_hooks` raises `RuntimeError(error_message)`."""

    def __init__(self, error_message: str) -> None:
        self.error_message = error_message

    def __enter__(self) -> None:
        self._before = _grad_mode.state.hooks_disabled
        _grad_mode.state.hooks_disabled = self.error_message

    def __exit__(self, *exc) -> None:
        _grad_mode.state.hooks_disabled = self._before
