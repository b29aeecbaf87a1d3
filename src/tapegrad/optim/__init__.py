"""`tapegrad.optim`: PyTorch's optimizers, each an optax transformation run as one compiled call.

`accumulation_steps=k` on any optimizer steps every k-th `step()` call (optax `MultiSteps`),
averaging the gradients in between: call `step()` and `zero_grad()` every micro-batch.
"""
from __future__ import annotations

from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .asgd import ASGD
from .lbfgs import LBFGS
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam",
           "LBFGS", "Adadelta", "Rprop", "ASGD", "lr_scheduler"]
