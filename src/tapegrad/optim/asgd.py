"""`ASGD`: PyTorch's averaged stochastic gradient descent."""
from __future__ import annotations

import optax

from . import _transforms as T
from .optimizer import Optimizer, ParamsT


class ASGD(Optimizer):
    """SGD with a decaying step `eta` and the running average `ax` of the parameters, kept from
    step `t0` on (the state's `ax`, as in PyTorch)."""

    _hyperparams = ("lr", "lambd", "alpha", "t0", "weight_decay")
    _flags = ("maximize",)

    def __init__(self, params: ParamsT, lr: float = 1e-2, lambd: float = 1e-4,
                 alpha: float = 0.75, t0: float = 1e6, weight_decay: float = 0,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False, *,
                 accumulation_steps: int = 1) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults, accumulation_steps=accumulation_steps)

    @classmethod
    def _transform(cls, hp: dict, flags: dict) -> optax.GradientTransformation:
        return optax.chain(
            *T.maybe_negate(flags["maximize"]),
            *T.coupled_weight_decay(hp["weight_decay"]),
            T.asgd(hp["lr"], hp["lambd"], hp["alpha"], hp["t0"]))
