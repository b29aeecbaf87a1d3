"""Weight normalization (https://arxiv.org/abs/1602.07868): `w = g * v / ||v||`.

`_weight_norm` and `norm_except_dim` are PyTorch's `torch._weight_norm` / `torch.norm_except_dim`,
composed of recorded ops (norm, division, product), so their gradient is `jax.vjp`'s. Below them,
the older hooks API `weight_norm` / `remove_weight_norm` (parameters `<name>_g`, `<name>_v` and a
forward pre-hook), deprecated by PyTorch in favour of `parametrizations.weight_norm`.
"""
from __future__ import annotations

import warnings
from typing import Any, TypeVar

from ..._core.dims import normalize_dim
from ..._functions.reduce import vector_norm
from ..._tensor.tensor import Tensor
from ..modules.module import Module
from ..parameter import Parameter

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm"]


def norm_except_dim(v: Tensor, pow: float = 2, dim: int = 0) -> Tensor:  # noqa: A002
    """The `pow`-norm of `v` over every dimension but `dim`, kept as size-1 dimensions; over all
    of `v` (a 0-d result) when `dim == -1`, as PyTorch (so -1 never means the last dimension)."""
    if dim == -1:
        return vector_norm(v, pow)
    d = normalize_dim(dim, v.ndim)
    rows = v.transpose(0, d).reshape(v.shape[d], -1)
    shape = [1] * v.ndim
    shape[d] = v.shape[d]
    return vector_norm(rows, pow, 1).reshape(shape)


def _weight_norm(v: Tensor, g: Tensor, dim: int = 0) -> Tensor:
    """`v * (g / norm_except_dim(v, 2, dim))`: the weight of a weight-normed layer."""
    return v * (g / norm_except_dim(v, 2, dim))


def find_hook(hooks: dict, kind: type, name: str):
    """The key of the `kind` hook (or the state-dict hook of one) of parameter `name` in a
    module's hook table, or None."""
    for key, hook in hooks.items():
        if isinstance(hook, kind) and getattr(hook, "fn", hook).name == name:
            return key
    return None


def remove_pre_hook(module: Module, kind: type, name: str, what: str) -> None:
    """Undo the `kind` forward pre-hook of parameter `name` (ValueError, as PyTorch, if none)."""
    key = find_hook(module._forward_pre_hooks, kind, name)
    if key is None:
        raise ValueError(f"{what} of '{name}' not found in {module}")
    module._forward_pre_hooks[key].remove(module)
    del module._forward_pre_hooks[key]


_DEPRECATED = ("`torch.nn.utils.weight_norm` is deprecated in favor of "
               "`torch.nn.utils.parametrizations.weight_norm`.")


class WeightNorm:
    """The forward pre-hook that recomputes `module.<name>` from `<name>_g` and `<name>_v`."""

    name: str
    dim: int

    def __init__(self, name: str, dim: int | None) -> None:
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module: Module) -> Tensor:
        return _weight_norm(getattr(module, self.name + "_v"), getattr(module, self.name + "_g"),
                            self.dim)

    @staticmethod
    def apply(module: Module, name: str, dim: int | None) -> "WeightNorm":
        warnings.warn(_DEPRECATED, FutureWarning, stacklevel=3)
        if find_hook(module._forward_pre_hooks, WeightNorm, name) is not None:
            raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
        fn = WeightNorm(name, dim)
        weight = getattr(module, name)
        del module._parameters[name]
        module.register_parameter(name + "_g", Parameter(norm_except_dim(weight, 2, fn.dim).data))
        module.register_parameter(name + "_v", Parameter(weight.data))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.data))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module))


T_module = TypeVar("T_module", bound=Module)


def weight_norm(module: T_module, name: str = "weight", dim: int | None = 0) -> T_module:
    """Replace parameter `name` by `<name>_g` (its norm over all dims but `dim`; over everything
    when `dim` is None) and `<name>_v` (its direction), recombined before every forward.

    Deprecated (FutureWarning, as PyTorch): use `nn.utils.parametrizations.weight_norm`.
    """
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: T_module, name: str = "weight") -> T_module:
    """Undo `weight_norm`: `name` becomes a parameter holding the current weight again."""
    remove_pre_hook(module, WeightNorm, name, "weight_norm")
    return module
