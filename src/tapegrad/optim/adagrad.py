"""`Adagrad`: PyTorch's Adagrad (learning-rate decay per step, eps after the square root)."""
from __future__ import annotations

import optax

from . import _transforms as T
from .optimizer import Optimizer, ParamsT


class Adagrad(Optimizer):
    """`s += g^2`, `p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)`."""

    _hyperparams = ("lr", "lr_decay", "eps", "weight_decay", "initial_accumulator_value")
    _flags = ("maximize",)

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0, eps: float = 1e-10,
                 foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 accumulation_steps: int = 1) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError("Invalid initial_accumulator_value value: "
                             f"{initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults, accumulation_steps=accumulation_steps)

    @classmethod
    def _transform(cls, hp: dict, flags: dict) -> optax.GradientTransformation:
        return optax.chain(
            *T.maybe_negate(flags["maximize"]),
            *T.coupled_weight_decay(hp["weight_decay"]),
            T.adagrad(hp["lr"], hp["lr_decay"], hp["eps"], hp["initial_accumulator_value"]))
