"""`SGD`: stochastic gradient descent with PyTorch's momentum, dampening and Nesterov rule."""
from __future__ import annotations

import optax

from .._core import dtype as _dtype
from .._tensor.construct import tensor
from . import _transforms as T
from .optimizer import Optimizer, ParamsT


class SGD(Optimizer):
    """PyTorch's SGD: `buf = momentum * buf + (1 - dampening) * g` (the first `buf` is `g`).

    Besides PyTorch's `momentum_buffer`, each parameter's state holds `step` (how many updates
    the buffer has seen), so the first-step rule survives `optax.MultiSteps` and `state_dict()`.
    """

    _hyperparams = ("lr", "momentum", "dampening", "weight_decay")
    _flags = ("nesterov", "maximize")

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None, accumulation_steps: int = 1) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults, accumulation_steps=accumulation_steps)

    def _group_flags(self, group: dict) -> dict:
        flags = super()._group_flags(group)
        flags["use_momentum"] = group["momentum"] != 0
        return flags

    @classmethod
    def _transform(cls, hp: dict, flags: dict) -> optax.GradientTransformation:
        return optax.chain(
            *T.maybe_negate(flags["maximize"]),
            *T.coupled_weight_decay(hp["weight_decay"]),
            T.sgd(hp["lr"], hp["momentum"], hp["dampening"], nesterov=flags["nesterov"],
                  use_momentum=flags["use_momentum"]))

    def _complete_state(self, state: dict) -> dict:
        if "momentum_buffer" in state and "step" not in state:  # saved by PyTorch's SGD
            state["step"] = tensor(1.0, dtype=_dtype.float32)
        return state
