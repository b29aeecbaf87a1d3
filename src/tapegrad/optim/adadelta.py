"""`Adadelta`: PyTorch's Adadelta (running averages of squared gradients and of squared steps)."""
from __future__ import annotations

import optax

from . import _transforms as T
from .optimizer import Optimizer, ParamsT


class Adadelta(Optimizer):
    """`v = rho v + (1 - rho) g^2`, `d = sqrt(u + eps) / sqrt(v + eps) g`,
    `u = rho u + (1 - rho) d^2`, `p -= lr d`."""

    _hyperparams = ("lr", "rho", "eps", "weight_decay")
    _flags = ("maximize",)

    def __init__(self, params: ParamsT, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: bool | None = None, *,
                 capturable: bool = False, maximize: bool = False, differentiable: bool = False,
                 accumulation_steps: int = 1) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults, accumulation_steps=accumulation_steps)

    @classmethod
    def _transform(cls, hp: dict, flags: dict) -> optax.GradientTransformation:
        return optax.chain(
            *T.maybe_negate(flags["maximize"]),
            *T.coupled_weight_decay(hp["weight_decay"]),
            T.adadelta(hp["lr"], hp["rho"], hp["eps"]))
