"""`Rprop`: PyTorch's resilient backpropagation (sign-based steps with per-element sizes)."""
from __future__ import annotations

import optax

from . import _transforms as T
from .optimizer import Optimizer, ParamsT


class Rprop(Optimizer):
    """Each element moves by its own step size against the gradient's sign; the size grows by
    `etas[1]` while the sign holds and shrinks by `etas[0]` when it flips, within `step_sizes`."""

    _hyperparams = ("lr", "etas", "step_sizes")
    _flags = ("maximize",)

    def __init__(self, params: ParamsT, lr: float = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, accumulation_steps: int = 1) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes), foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults, accumulation_steps=accumulation_steps)

    @classmethod
    def _transform(cls, hp: dict, flags: dict) -> optax.GradientTransformation:
        return optax.chain(*T.maybe_negate(flags["maximize"]),
                           T.rprop(hp["lr"], hp["etas"], hp["step_sizes"]))
