"""`RMSprop`: PyTorch's RMSprop (eps after the square root; optional momentum and centring)."""
from __future__ import annotations

import optax

from . import _transforms as T
from .optimizer import Optimizer, ParamsT


class RMSprop(Optimizer):
    """`v = alpha v + (1 - alpha) g^2`, `p -= lr g / (sqrt(v) + eps)` (centred: `v - mean(g)^2`)."""

    _hyperparams = ("lr", "alpha", "eps", "weight_decay", "momentum")
    _flags = ("centered", "maximize")

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, *, accumulation_steps: int = 1) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults, accumulation_steps=accumulation_steps)

    def _group_flags(self, group: dict) -> dict:
        flags = super()._group_flags(group)
        flags["use_momentum"] = group["momentum"] > 0
        return flags

    @classmethod
    def _transform(cls, hp: dict, flags: dict) -> optax.GradientTransformation:
        return optax.chain(
            *T.maybe_negate(flags["maximize"]),
            *T.coupled_weight_decay(hp["weight_decay"]),
            T.rmsprop(hp["lr"], hp["alpha"], hp["eps"], hp["momentum"],
                      centered=flags["centered"], use_momentum=flags["use_momentum"]))
