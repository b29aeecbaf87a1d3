"""`NAdam`: Adam with Nesterov momentum and PyTorch's momentum-decay schedule."""
from __future__ import annotations

import optax

from . import _transforms as T
from .adam import _check
from .optimizer import Optimizer, ParamsT


class NAdam(Optimizer):
    """PyTorch's NAdam (`momentum_decay` psi; `decoupled_weight_decay` gives NAdamW)."""

    _hyperparams = ("lr", "betas", "eps", "weight_decay", "momentum_decay")
    _flags = ("maximize", "decoupled_weight_decay")

    def __init__(self, params: ParamsT, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 accumulation_steps: int = 1) -> None:
        _check(lr, eps, betas, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable)
        super().__init__(params, defaults, accumulation_steps=accumulation_steps)

    @classmethod
    def _transform(cls, hp: dict, flags: dict) -> optax.GradientTransformation:
        core = T.nadam(hp["lr"], hp["betas"], hp["eps"], hp["momentum_decay"])
        if flags["decoupled_weight_decay"]:
            return optax.chain(*T.maybe_negate(flags["maximize"]), core,
                               T.decoupled_weight_decay(hp["lr"], hp["weight_decay"]))
        return optax.chain(*T.maybe_negate(flags["maximize"]),
                           *T.coupled_weight_decay(hp["weight_decay"]), core)
