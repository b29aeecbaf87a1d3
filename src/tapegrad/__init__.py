"""tapegrad: PyTorch's imperative autograd on JAX.

Operations on tensors are recorded on a tape; `backward()` replays the tape as one pure function
under `jax.vjp`, compiled by XLA. `import tapegrad as torch` runs ordinary PyTorch autograd code.
"""
from __future__ import annotations

from . import _methods
from ._compile import cache_info
from ._device import device
from ._dtype import (
    bfloat16, bool, cdouble, cfloat, complex64, complex128, double, dtype, float, float16,
    float32, float64, get_default_dtype, half, int, int8, int16, int32, int64, long,
    promote_types, set_default_dtype, short, uint8, uint16, uint32, uint64,
)
from ._factory import (
    arange, as_tensor, asarray, empty, empty_like, eye, from_numpy, full, full_like, linspace,
    ones, ones_like, rand, rand_like, randint, randn, randn_like, randperm, tensor, zeros,
    zeros_like,
)
from ._functions import (
    abs, absolute, add, clamp, clip, cos, div, divide, eq, exp, expand, floor_divide, ge, gt,
    le, log, lt, matmul, maximum, mean, minimum, mul, multiply, ne, neg, negative, permute, pow,
    relu, remainder, reshape, sigmoid, sin, sqrt, sub, subtract, sum, swapaxes, t, tanh,
    transpose, true_divide, view,
)
from ._functions_index import (
    argwhere, gather, index_add, index_select, masked_fill, masked_select, nonzero,
    repeat_interleave, scatter, scatter_add, take, take_along_dim,
)
from ._functions_linalg import (
    addbmm, addmm, addmv, baddbmm, bmm, det, diag, diag_embed, diagonal, dot, einsum, ger, inner,
    inverse, mm, mv, outer, slogdet, tensordot, trace, tril, triu,
)
from ._functions_math import (
    acos, arccos, arcsin, arctan, arctan2, asin, atan, atan2, bitwise_and, bitwise_not, clamp_max,
    clamp_min,
    bitwise_or, bitwise_xor, ceil, cosh, erf, erfinv, expm1, fix, floor, fmod, frac, isfinite,
    isinf, isnan, lerp, log10, log1p, log2, logaddexp, logical_and, logical_not, logical_or,
    logical_xor, nan_to_num, reciprocal, round, rsqrt, sign, sinh, square, tan, trunc, where,
)
from ._functions_random import bernoulli, multinomial, normal, poisson
from ._functions_reduce import (
    all, amax, amin, aminmax, any, argmax, argmin, count_nonzero, cumprod, cumsum, kthvalue,
    logsumexp, max, median, min, nanmean, norm, prod, return_types, std, std_mean, var, var_mean,
)
from ._functions_shape import (
    atleast_1d, atleast_2d, cat, chunk, concat, concatenate, expand_as, flatten, flip, fliplr,
    flipud, hstack, moveaxis, movedim, narrow, repeat, reshape_as, roll, row_stack, select,
    split, squeeze, stack, tensor_split, tile, unbind, unflatten, unsqueeze, view_as, vstack,
)
from ._functions_sort import (
    argsort, bucketize, msort, searchsorted, sort, topk, unique, unique_consecutive,
)
from ._grad_mode import (
    enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
    set_grad_enabled,
)
from ._random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from ._serialization import load, save
from ._step_compile import compile
from ._tensor import Size, Tensor
from . import autograd, cuda, linalg  # noqa: E402  (subpackages use the names above)
from . import func, nn, optim  # noqa: E402
from .nn.functional import log_softmax, softmax  # noqa: E402  (torch.softmax, Tensor.softmax)

Tensor.softmax = softmax
Tensor.log_softmax = log_softmax
from . import utils  # noqa: E402

_methods.bind()

__version__ = "0.1.0"


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return input.numel()


def is_floating_point(input: Tensor) -> bool:
    return input.is_floating_point()


def clone(input: Tensor) -> Tensor:
    return input.clone()


def detach(input: Tensor) -> Tensor:
    return input.detach()
