"""tapegrad: PyTorch's imperative autograd on JAX.

Operations on tensors are recorded on a tape; `backward()` replays the tape as one pure function
under `jax.vjp`, compiled by XLA. `import tapegrad as torch` runs ordinary PyTorch autograd code.
"""
from __future__ import annotations

from ._core import diskcache as _diskcache  # noqa: F401  (first: JAX's persistent cache)
from . import _autograd  # noqa: F401  (binds .grad and .backward)
from ._autograd import api as _api, grads as _grads, nodes as _nodes  # noqa: F401
from ._core.compile import cache_info
from ._core.device import device
from ._core.layout import layout, sparse_coo, sparse_csr, strided
from ._core.layout import (
    channels_last, channels_last_3d, contiguous_format, memory_format, preserve_format,
)
from ._core.typeinfo import finfo, iinfo
from ._core.dtype import (
    bfloat16, bool, cdouble, cfloat, complex64, complex128, double, dtype, float, float16,
    float32, float64, get_default_dtype, half, int, int8, int16, int32, int64, long,
    promote_types, set_default_dtype, short, uint8, uint16, uint32, uint64,
)
from ._core.grad_mode import (
    enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
    set_grad_enabled,
)
from ._functions import conversion as _conversion  # noqa: F401  (Tensor.to, .clone, .float, ...)
from ._functions.creation import (
    arange, empty, empty_like, eye, full, full_like, linspace, ones, ones_like, rand, rand_like,
    randint, randn, randn_like, randperm, zeros, zeros_like,
)
from ._functions.index import (
    argwhere, gather, index_add, index_select, masked_fill, masked_select, nonzero,
    repeat_interleave, scatter, scatter_add, scatter_reduce, take, take_along_dim,
)
from ._functions.index import bincount, index_copy, index_put_tensors as index_put
from ._functions.linalg import (
    addbmm, addmm, addmv, baddbmm, bmm, det, diag, diag_embed, diagonal, dot, einsum, ger, inner,
    inverse, matmul, mm, mv, norm, outer, slogdet, tensordot, trace, tril, triu,
)
from ._functions.pointwise import (
    abs, absolute, acos, add, arccos, arcsin, arctan, arctan2, asin, atan, atan2, bitwise_and,
    bitwise_not, bitwise_or, bitwise_xor, ceil, clamp, clamp_max, clamp_min, clip, cos, cosh, div,
    divide, eq, erf, erfinv, exp, expm1, fix, floor, floor_divide, fmod, frac, ge, gt, isfinite,
    isinf, isnan, le, lerp, log, log10, log1p, log2, logaddexp, logical_and, logical_not,
    logical_or, logical_xor, lt, maximum, minimum, mul, multiply, nan_to_num, ne, neg, negative,
    pow, reciprocal, relu, remainder, round, rsqrt, sigmoid, sign, sin, sinh, sqrt, square, sub,
    subtract, tan, tanh, true_divide, trunc, where,
)
from ._functions.pointwise import (  # noqa: E402  (special functions, shifts, closeness)
    acosh, addcdiv, addcmul, allclose, arccosh, arcsinh, arctanh, asinh, atanh,
    bitwise_left_shift, bitwise_right_shift, copysign, digamma, exp2, isclose, lgamma, polygamma,
    xlogy,
)
from ._functions.reduce import cummax, cummin, logcumsumexp  # noqa: E402
from ._functions.pointwise import (  # noqa: E402  (NaN-ignoring extremes, number theory, steps)
    fmax, fmin, gcd, heaviside, hypot, lcm, logit, sgn,
)
from ._functions.linalg import cdist, cross  # noqa: E402
from ._functions.reduce import diff, nanmedian  # noqa: E402
from ._functions.sort import histc, isin, mode, nanquantile, quantile  # noqa: E402
from ._functions.shape import meshgrid  # noqa: E402
from ._functions.creation import (  # noqa: E402  (legacy typed constructors)
    BFloat16Tensor, BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor, HalfTensor,
    IntTensor, LongTensor, ShortTensor,
)
from ._functions.random import bernoulli, multinomial, normal, poisson
from ._functions.reduce import (
    all, amax, amin, aminmax, any, argmax, argmin, count_nonzero, cumprod, cumsum, kthvalue,
    logsumexp, max, mean, median, min, nanmean, nansum, prod, return_types, std, std_mean, sum, var,
    var_mean,
)
from ._functions.shape import (
    as_strided,
    atleast_1d, atleast_2d, cat, chunk, concat, concatenate, expand, expand_as, flatten, flip,
    fliplr, flipud, hstack, moveaxis, movedim, narrow, permute, repeat, reshape, reshape_as, roll,
    row_stack, select, split, squeeze, stack, swapaxes, swapdims, t, tensor_split, tile, transpose, unbind,
    unflatten, unsqueeze, view, view_as, vstack,
)
from ._functions.sort import (
    argsort, bucketize, msort, searchsorted, sort, topk, unique, unique_consecutive,
)
from .serialization import load, save
from ._step_compile import compile
from ._tensor.construct import as_tensor, asarray, from_numpy, tensor
from ._tensor.random import (
    Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state,
)
from ._tensor.storage import UntypedStorage  # (binds data_ptr, untyped_storage, layout, ...)
from ._tensor.tensor import Size, Tensor
gcd_, lcm_, logit_ = Tensor.gcd_, Tensor.lcm_, Tensor.logit_  # PyTorch's in-place functions
from . import autograd, cuda, linalg  # noqa: E402  (subpackages use the names above)
from . import distributed, func, nn, optim, serialization, utils  # noqa: E402
from . import jit, onnx  # noqa: E402  (TorchScript's markers; ONNX export raises)
from . import distributions  # noqa: E402  (torch.distributions)
from . import testing  # noqa: E402  (torch.testing)
from . import profiler  # noqa: E402  (torch.profiler, over jax.profiler)
from . import amp  # noqa: E402  (torch.amp)
from . import ops  # noqa: E402  (torch.ops.aten: the registry rows, for checkpoint policies)
from .amp import autocast, get_autocast_dtype, is_autocast_enabled  # noqa: E402
from .nn.functional import log_softmax, softmax  # noqa: E402  (torch.softmax)
from .nn.utils.weight_norm import _weight_norm, norm_except_dim  # noqa: E402
from .autograd.anomaly_mode import (  # noqa: E402
    is_anomaly_check_nan_enabled, is_anomaly_enabled, set_anomaly_enabled,
)

__version__ = "0.1.0"

from math import e, inf, nan, pi  # noqa: E402  (torch.pi, torch.e, torch.inf, torch.nan)


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
