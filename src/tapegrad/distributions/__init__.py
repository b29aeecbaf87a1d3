"""`tapegrad.distributions`: PyTorch's probability distributions over tapegrad tensors.

Parameters are tensors, so `log_prob`, `entropy`, `mean`, `variance`, `kl_divergence` and
`rsample` are recorded and differentiable; draws come from tapegrad's `Generator`, so
`manual_seed` repeats them (JAX's bit generator: not PyTorch's numbers).
"""
from . import constraints
from .categorical import Bernoulli, Categorical, OneHotCategorical
from .distribution import Distribution
from .gamma import Beta, Dirichlet, Gamma
from .kl import kl_divergence, register_kl
from .multivariate_normal import MultivariateNormal
from .normal import Normal, Uniform

__all__ = ["Bernoulli", "Beta", "Categorical", "Dirichlet", "Distribution", "Gamma",
           "MultivariateNormal", "Normal", "OneHotCategorical", "Uniform", "constraints",
           "kl_divergence", "register_kl"]
