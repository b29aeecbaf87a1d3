"""`RAdam`: Adam with PyTorch's variance rectification (plain momentum while rho_t <= 5)."""
from __future__ import annotations

import optax

from . import _transforms as T
from .adam import _check
from .optimizer import Optimizer, ParamsT


class RAdam(Optimizer):
    """PyTorch's RAdam (`decoupled_weight_decay` gives RAdamW)."""

    _hyperparams = ("lr", "betas", "eps", "weight_decay")
    _flags = ("maximize", "decoupled_weight_decay")

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, decoupled_weight_decay: bool = False,
                 *, foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, accumulation_steps: int = 1) -> None:
        _check(lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        super().__init__(params, defaults, accumulation_steps=accumulation_steps)

    @classmethod
    def _transform(cls, hp: dict, flags: dict) -> optax.GradientTransformation:
        core = T.radam(hp["lr"], hp["betas"], hp["eps"])
        if flags["decoupled_weight_decay"]:
            return optax.chain(*T.maybe_negate(flags["maximize"]), core,
                               T.decoupled_weight_decay(hp["lr"], hp["weight_decay"]))
        return optax.chain(*T.maybe_negate(flags["maximize"]),
                           *T.coupled_weight_decay(hp["weight_decay"]), core)
