"""`Adamax`: Adam with an infinity-norm second moment, as PyTorch computes it."""
from __future__ import annotations

import optax

from . import _transforms as T
from .adam import _check
from .optimizer import Optimizer, ParamsT


class Adamax(Optimizer):
    """`u = max(beta2 u, |g| + eps)`, `p -= lr / (1 - beta1^t) * m / u`."""

    _hyperparams = ("lr", "betas", "eps", "weight_decay")
    _flags = ("maximize",)

    def __init__(self, params: ParamsT, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False, capturable: bool = False,
                 accumulation_steps: int = 1) -> None:
        _check(lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults, accumulation_steps=accumulation_steps)

    @classmethod
    def _transform(cls, hp: dict, flags: dict) -> optax.GradientTransformation:
        return optax.chain(*T.maybe_negate(flags["maximize"]),
                           *T.coupled_weight_decay(hp["weight_decay"]),
                           T.adamax(hp["lr"], hp["betas"], hp["eps"]))
