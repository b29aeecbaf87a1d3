"""Random sampling beyond the factories: `normal`, `bernoulli`, `multinomial`, and the in-place
fills (`normal_`, `uniform_`, `bernoulli_`, `exponential_`), all drawn from a `Generator`.

Samples carry no gradient (PyTorch's derivative of a sample with respect to its parameters is
zero too); use `mean + std * randn_like(std)` for a reparameterised sample.
"""
from __future__ import annotations

import builtins

import numpy as np
from jax import lax

from .._core import checks as _checks, dtype as _dtype, grad_mode as _grad_mode
from .._core.dims import new_shape, shape_arg
from .._core.graph import Op, SAVES_NONE
from .._core.rows import broadcast_check
from .._tensor import random as _random
from .._tensor.apply import apply
from .._tensor.inplace import check_inplace, inplace
from .._tensor.checked import checked
from .._tensor.methods import method
from .._tensor.tensor import Tensor
from .pointwise import add, log, log1p_op, lt, mul, neg


def _gen(generator) -> _random.Generator:
    return generator if generator is not None else _random.default_generator


def _float(dtype) -> _dtype.dtype:
    return dtype if dtype.is_floating_point else _dtype.get_default_dtype()


normal_op = Op("normal", lambda mean, std, eps: lax.stop_gradient(mean + std * eps), saves=SAVES_NONE)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad: builtins.bool = False) -> Tensor:
    """Normal samples: tensor `mean`/`std` give the shape (broadcast), or floats with `size`."""
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    if tensors:
        broadcast_check(*tensors)
        shape = np.broadcast_shapes(*(t.shape for t in tensors))
        dt = _float(tensors[0].dtype if len(tensors) == 1 else
                    _dtype.promote_types(mean.dtype, std.dtype))
        if isinstance(std, Tensor) and std._node.value is not None \
                and bool(np.any(np.asarray(std._value()) < 0)):
            raise RuntimeError("normal expects all elements of std >= 0.0")
    else:
        if size is None:
            raise TypeError("normal() missing the required argument 'size' when mean and std "
                            "are numbers")
        if std < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        shape, dt = new_shape((size,)), _dtype.as_dtype(dtype) if dtype else _dtype.get_default_dtype()
    eps = _gen(generator).sample("normal", builtins.tuple(shape), dt)
    out = apply(normal_op, mean, std, eps)
    out = out.to(dt) if out.dtype is not dt else out
    if device is not None:
        out = out.to(device)
    return out.requires_grad_(True) if requires_grad else out


@method("bernoulli")
def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:
    """1 with probability `input` (or `p`) per element, else 0; the result has `input`'s dtype."""
    probs = input if p is None else p
    if p is None and not input.dtype.is_floating_point:
        raise NotImplementedError(f'"bernoulli_tensor_cpu_p_" not implemented for '
                                  f"'{_dtype.scalar_name(input.dtype)}'")
    if isinstance(probs, Tensor):
        probs = checked(probs, "bernoulli", _checks.not_between, (0, 1), RuntimeError,
                        "Expected p_in >= 0 && p_in <= 1 to be true, but got false.")
    elif not 0 <= probs <= 1:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={probs}")
    u = _gen(generator).sample("uniform", builtins.tuple(input.shape), _float(input.dtype))
    with _grad_mode.no_grad():
        return lt(u, probs).to(input.dtype)


@method("multinomial")
def multinomial(input: Tensor, num_samples: builtins.int, replacement: builtins.bool = False, *,
                generator=None) -> Tensor:
    """Category indices drawn with probabilities proportional to the rows of `input` (int64)."""
    if input.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    n = input.shape[-1]
    if not replacement and num_samples > n:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without "
                           "replacement")
    if num_samples <= 0:
        raise RuntimeError(f"cannot sample {num_samples} <= 0 samples")
    dt = _float(input.dtype)
    input = checked(input, "multinomial", _checks.bad_probabilities, (), RuntimeError,
                    "probability tensor contains either `inf`, `nan` or element < 0")
    input = checked(input, "multinomial", _checks.no_mass, (), RuntimeError,
                    "invalid multinomial distribution (sum of probabilities <= 0)")
    with _grad_mode.no_grad():
        logits = log(input.to(dt))
        shape = input.shape[:-1] + ((num_samples, n) if replacement else (n,))
        u = _gen(generator).sample("uniform", builtins.tuple(shape), dt)
        gumbel = neg(log(neg(log(u))))  # argmax(logits + Gumbel noise) samples the categorical
        if replacement:
            return add(logits.unsqueeze(-2), gumbel).argmax(-1)
        return add(logits, gumbel).topk(num_samples, -1).indices


def poisson(input: Tensor, generator=None) -> Tensor:
    raise NotImplementedError("poisson sampling is not supported yet")


# -- in-place fills (methods) ---------------------------------------------------------------------
def _continuous(self: Tensor, kernel: str) -> None:
    """PyTorch's refusal to fill an integer or bool tensor from a continuous distribution."""
    if not (self.dtype.is_floating_point or self.dtype.is_complex):
        raise NotImplementedError(f'"{kernel}" not implemented for '
                                  f"'{_dtype.scalar_name(self.dtype)}'")


def _fill(self: Tensor, sample: Tensor) -> Tensor:
    check_inplace(self)
    with _grad_mode.no_grad():
        return inplace(self, sample.to(self.dtype))


@method("normal_")
def normal_(self: Tensor, mean: builtins.float = 0.0, std: builtins.float = 1.0, *,
            generator=None) -> Tensor:
    """Fill with normal samples of `mean` and `std`."""
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    _continuous(self, "normal_kernel_cpu")
    eps = _gen(generator).sample("normal", builtins.tuple(self.shape), _float(self.dtype))
    return _fill(self, add(mul(eps, std), mean))


@method("uniform_")
def uniform_(self: Tensor, from_: builtins.float = 0.0, to: builtins.float = 1.0, *,
             generator=None, **kwargs) -> Tensor:
    """Fill with samples uniform on `[from, to)`."""
    from_ = kwargs.pop("from", from_)
    if from_ > to:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from="
                           f"{from_} > to={to}")
    _continuous(self, "check_uniform_bounds")
    u = _gen(generator).sample("uniform", builtins.tuple(self.shape), _float(self.dtype))
    return _fill(self, add(mul(u, to - from_), from_))


@method("bernoulli_")
def bernoulli_(self: Tensor, p=0.5, *, generator=None) -> Tensor:
    """Fill with 1 (probability `p`) or 0."""
    u = _gen(generator).sample("uniform", builtins.tuple(self.shape), _float(self.dtype))
    return _fill(self, lt(u, p))


@method("exponential_")
def exponential_(self: Tensor, lambd: builtins.float = 1.0, *, generator=None) -> Tensor:
    """Fill with exponential samples of rate `lambd`."""
    if not self.dtype.is_floating_point:
        raise RuntimeError("Exponential distribution is a continuous probability distribution. "
                           f"dtype must be a floating point but you specified "
                           f"{_dtype.scalar_name(self.dtype)}")
    if not lambd > 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd:g}")
    u = _gen(generator).sample("uniform", builtins.tuple(self.shape), _float(self.dtype))
    return _fill(self, mul(neg(apply(log1p_op, neg(u))), 1.0 / lambd))


_MANTISSA_DIGITS = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}


def _unbounded_high(dtype) -> builtins.int:
    """The exclusive upper bound of `random_()` without bounds, as PyTorch: `[0, 2**digits]` for
    floats (every integer there is exact), `[0, max]` for integers (int64: below its max)."""
    if dtype is _dtype.bool:
        return 2
    if dtype.is_floating_point:
        return 2 ** _MANTISSA_DIGITS[dtype.name] + 1
    if dtype.is_complex:
        raise RuntimeError(f"random_ is not implemented for {_dtype.scalar_name(dtype)}")
    return builtins.int(np.iinfo(np.dtype(dtype.name)).max) + (dtype is not _dtype.int64)


@method("random_")
def random_(self: Tensor, from_=None, to=None, *, generator=None) -> Tensor:
    """Fill with integers uniform on `[from, to)` (`random_(to)` means `[0, to)`; `random_()`
    covers the integers the dtype holds exactly, as PyTorch)."""
    if from_ is None and to is None:
        from_, to = 0, _unbounded_high(self.dtype)
    elif to is None:
        from_, to = 0, from_
    elif from_ is None:
        from_ = 0
    if from_ >= to:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={from_} "
                           f">= to={to}")
    r = _gen(generator).sample("randint", builtins.tuple(self.shape), _dtype.int64,
                               (builtins.int(from_), builtins.int(to)))
    return _fill(self, r)
