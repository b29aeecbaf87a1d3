"""Layer functions of `tapegrad.nn.functional`: dropout, linear maps, embeddings, padding,
normalization, attention and distances."""
from __future__ import annotations

import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._core import checks as _checks, grad_mode as _grad_mode
from .._core.dims import normalize_dim
from .._core.graph import Op, SAVES_NONE
from .._core.rows import abs_
from .._tensor import random as _random
from .._tensor.apply import apply, autocast_args
from .._tensor.checked import checked
from .._tensor.inplace import inplace, settle
from .._tensor.tensor import Tensor
from ._functional_activation import _maybe_inplace


def _dropout(x, noise, *, p):
    # `noise` is uniform on [0, 1): an element is kept with probability 1 - p, and scaled up.
    keep = noise < (1.0 - p)
    return jnp.where(keep, x / (1.0 - p), jnp.zeros_like(x))


dropout_op = Op("dropout", _dropout, saves=(1,), grad_name="NativeDropoutBackward0")


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability `p` and scale the rest by `1 / (1 - p)` (training only).

    The mask is drawn from tapegrad's generator, so `manual_seed` makes it repeat.
    """
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _maybe_inplace(input, input * 0.0, inplace)
    noise = _random.default_generator.sample("uniform", tuple(input.shape), input.dtype)
    return _maybe_inplace(input, apply(dropout_op, input, noise, p=float(p)), inplace)


def _channel_dropout(input: Tensor, p: float, training: bool, inplace: bool, nd: int,
                     name: str) -> Tensor:
    """Zero whole channels: one draw per (batch, channel), broadcast over `nd` spatial dims."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{name}: Expected {nd + 1}D or {nd + 2}D input, but received a "
                           f"{input.ndim}D input")
    shape = tuple(input.shape[:input.ndim - nd]) + (1,) * nd
    noise = _random.default_generator.sample("uniform", shape, input.dtype)
    return _maybe_inplace(input, apply(dropout_op, input, noise, p=float(p)), inplace)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero entire channels of `(N, C, L)` input with probability `p`."""
    return _channel_dropout(input, p, training, inplace, 1, "dropout1d")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero entire channels of `(N, C, H, W)` input with probability `p`."""
    return _channel_dropout(input, p, training, inplace, 2, "dropout2d")


def _linear(x, w, *b):
    out = jnp.matmul(x, w.T)
    return out + b[0] if b else out


def _linear_grad_name(static, inputs) -> str:
    """What PyTorch's linear ends with: addmm / mm on matrices, a view of them otherwise."""
    ndim, bias = len(inputs[0].shape), len(inputs) == 3
    if ndim == 2:
        return "AddmmBackward0" if bias else "MmBackward0"
    if bias:
        return "ViewBackward0"
    return "SqueezeBackward4" if ndim == 1 else "UnsafeViewBackward0"


def _linear_shape(signature):
    """`(..., in) @ (out, in).T (+ (out,))` in one floating dtype; other cases are traced."""
    (x, dx), (w, dw), *bias = signature
    if (dx.is_floating_point and len(w) == 2 and x[-1:] == w[-1:] and dw is dx
            and all(b == (w[0],) and db is dx for b, db in bias)):
        return tuple(x[:-1]) + (w[0],), dx
    return None


linear_op = Op("linear", _linear, grad_name=_linear_grad_name, shape=_linear_shape)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """`input @ weight.T + bias`."""
    if input.ndim == 0 or weight.ndim == 0:
        raise RuntimeError(f"both arguments to linear need to be at least 1D, but they are "
                           f"{input.ndim}D and {weight.ndim}D")
    if input.shape[-1:] != weight.shape[-1:]:
        rows = int(np.prod(input.shape[:-1])) if input.ndim > 1 else 1
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{input.shape[-1]} "
                           f"and {weight.shape[-1]}x{weight.shape[0]})")
    input, weight, bias = autocast_args(linear_op, input, weight, bias)
    same_dtype(input, weight, bias)
    return apply(linear_op, input, weight, *(() if bias is None else (bias,)))


def _bilinear(x1, x2, w, *b):
    out = jnp.einsum("...i,oij,...j->...o", x1, w, x2)
    return out + b[0] if b else out


bilinear_op = Op("bilinear", _bilinear, grad_name="TrilinearBackward0")


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """`y_o = x1^T W_o x2 + b_o`."""
    return apply(bilinear_op, input1, input2, weight, *(() if bias is None else (bias,)))


def _embedding(idx, w, *, padding_idx):
    out = jnp.take(w, idx, axis=0)
    if padding_idx is None:
        return out
    # the padding row gets no gradient, as in PyTorch
    return jnp.where((idx == padding_idx)[..., None], lax.stop_gradient(out), out)


embedding_op = Op("embedding", _embedding, saves=(0,))


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of `weight` picked by the integer tensor `input`; the `padding_idx` row gets no gradient."""
    if weight.ndim != 2:
        raise RuntimeError("'weight' must be 2-D")
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse gradients "
                                  "are not supported by tapegrad; renormalise the weight explicitly "
                                  "and use dense gradients")
    if padding_idx is not None:
        n = weight.shape[0]
        if not -n <= padding_idx < n:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx %= n
    if input.dtype.is_floating_point:
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the following "
                           f"scalar types: Long, Int; but got {input.dtype} instead")
    input = checked(input, "embedding", _checks.outside, (0, weight.shape[0]), IndexError,
                    "index out of range in self")
    return apply(embedding_op, input, weight, padding_idx=padding_idx)


one_hot_op = Op("one_hot", lambda x, *, num_classes: jax.nn.one_hot(x, num_classes, dtype=jnp.int64),
                saves=SAVES_NONE, differentiable=False)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Class indices to one-hot int64 vectors (`num_classes=-1` reads the largest index)."""
    if tensor.dtype.is_floating_point:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if num_classes == -1:
        num_classes = int(np.max(np.asarray(tensor._value()))) + 1 if tensor.numel() else 0
    tensor = checked(tensor, "one_hot", _checks.below, (0,), RuntimeError,
                     "Class values must be non-negative.")
    tensor = checked(tensor, "one_hot", _checks.at_least, (int(num_classes),), RuntimeError,
                     "Class values must be smaller than num_classes.")
    return apply(one_hot_op, tensor, num_classes=int(num_classes))


def _crop(x, pairs):
    return x[tuple(slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(pairs, x.shape))]


def _pad(x, *, pad, mode, value):
    """Negative entries crop. As in PyTorch, a circular pad wraps the cropped input (crop, then
    pad), while reflect and replicate read the whole input (pad, then crop)."""
    nd = len(pad) // 2
    pairs = [(0, 0)] * (x.ndim - nd) + [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(nd))]
    grow = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
    if mode == "constant":
        return lax.pad(x, jnp.asarray(value, x.dtype), [(lo, hi, 0) for lo, hi in pairs])
    if mode == "circular":
        return jnp.pad(_crop(x, pairs), grow, mode="wrap")
    return _crop(jnp.pad(x, grow, mode="reflect" if mode == "reflect" else "edge"), pairs)


pad_op = Op("constant_pad_nd", _pad, saves=SAVES_NONE, grad_name="ConstantPadNdBackward0")


def _check_pad(input: Tensor, pad: tuple, mode: str) -> None:
    """PyTorch's checks of `pad` against the input, with its messages."""
    nd = len(pad) // 2
    shape = list(input.shape)
    sizes = shape[input.ndim - nd:]
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(nd))]
    out = [n + lo + hi for n, (lo, hi) in zip(sizes, pairs)]
    cropped = [n + min(lo, 0) + min(hi, 0) for n, (lo, hi) in zip(sizes, pairs)]
    if mode == "constant":
        if any(n < 0 for n in out + cropped):
            raise RuntimeError("narrow(): length must be non-negative.")
        return
    if input.ndim not in (nd + 1, nd + 2) or nd > 3:
        raise NotImplementedError(
            f"Padding size {len(pad)} is not supported for {input.ndim}D input tensor.\n"
            "Supported combinations for non-constant padding:\n"
            "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
            "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
            "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")
    if mode != "circular" and 0 in shape[1:]:
        raise RuntimeError(f"Expected {nd + 1}D or {nd + 2}D (batch mode) tensor with possibly 0 "
                           f"batch size and other non-zero dimensions for input, but got: {shape}")
    if nd == 1 and mode != "circular" and out[0] < 1:  # PyTorch's 1-d kernels need an element
        raise RuntimeError(f"input (W: {sizes[0]}) is too small. Calculated output W: {out[0]}")
    if any(n < 0 for n in out + cropped):
        full = shape[:input.ndim - nd] + out
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(out)}: {full}")
    for k, (n, c, (lo, hi)) in enumerate(zip(sizes, cropped, pairs)):
        if mode == "reflect" and (lo >= n or hi >= n):
            raise RuntimeError(f"Argument #{2 + 2 * (nd - k)}: Padding size should be less than the "
                               f"corresponding input dimension, but got: padding ({lo}, {hi}) at "
                               f"dimension {input.ndim - nd + k} of input {shape}")
        # the wrap reads the cropped input (PyTorch checks the uncropped size, then fails or
        # reads overlapping memory when a crop leaves less than the wrap needs)
        if mode == "circular" and (lo > c or hi > c):
            raise RuntimeError("Padding value causes wrapping around more than once.")


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant",
        value: float | None = None) -> Tensor:
    """Pad the last `len(pad) // 2` dimensions, `pad` listing (left, right) from the last one;
    negative entries crop, in every mode."""
    for k, p in enumerate(pad):
        if not isinstance(p, (int, np.integer)) and not (
                isinstance(p, Tensor) and p.ndim == 0 and not p.dtype.is_floating_point):
            raise TypeError(f"pad(): argument 'pad' (position 2) must be tuple of ints, but found "
                            f"element of type {type(p).__name__} at pos {k}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError("Padding length should be less than or equal to two times the input "
                           f"dimension but got padding length {len(pad)} and input of dimension "
                           f"{input.ndim}")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if mode != "constant" and value not in (None, 0):
        raise RuntimeError(f"Padding mode \"{mode}\" doesn't take in value argument")
    _check_pad(input, pad, mode)
    return apply(pad_op, input, pad=pad, mode=mode, value=0.0 if value is None else value)


# -- normalization --------------------------------------------------------------------------------
def same_dtype(input: Tensor, *params) -> None:
    """PyTorch refuses to mix floating dtypes between an input and a layer's parameters."""
    names = {"float64": "double", "float32": "float", "float16": "half"}
    for p in params:
        if p is not None and p.dtype is not input.dtype:
            a, b = (names.get(t.dtype.name, t.dtype.name) for t in (input, p))
            raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {a} != {b}")


def _params(*ps):
    return tuple(p for p in ps if p is not None)


def _affine(y, params, has_weight, shape):
    params = list(params)
    if has_weight:
        y = y * params.pop(0).reshape(shape)
    if params:
        y = y + params[0].reshape(shape)
    return y


def _mixed(norm):
    """PyTorch's normalization kernels take float16/bfloat16 input with float32 weights (what
    autocast gives them): they compute in float32 and return the input's dtype."""
    @functools.wraps(norm)
    def row(x, *arrays, **static):
        opmath = jnp.promote_types(x.dtype, jnp.float32)
        out = norm(x.astype(opmath), *[a.astype(opmath) for a in arrays], **static)
        if isinstance(out, tuple):
            return tuple(o.astype(x.dtype) for o in out)
        return out.astype(x.dtype)
    return row


def _normalized(x, axes, eps):
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
    return (x - mean) * lax.rsqrt(var + eps), mean, var


def _layer_norm(x, *params, n_dims, eps, has_weight):
    axes = tuple(range(x.ndim - n_dims, x.ndim))
    y, _, _ = _normalized(x, axes, eps)
    return _affine(y, params, has_weight, x.shape[x.ndim - n_dims:])


layer_norm_op = Op("layer_norm", _mixed(_layer_norm), grad_name="NativeLayerNormBackward0")


def layer_norm(input: Tensor, normalized_shape: Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the last `len(normalized_shape)` dimensions (biased variance)."""
    shape = (int(normalized_shape),) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape or len(shape) > input.ndim:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, shape))}], but got input of size"
                           f"{list(input.shape)}")
    return apply(layer_norm_op, input, *_params(weight, bias), n_dims=len(shape),
                 eps=float(eps), has_weight=weight is not None)


def _group_norm(x, *params, num_groups, eps, has_weight):
    n, c = x.shape[:2]
    g = x.reshape(n, num_groups, -1)
    y, _, _ = _normalized(g, (2,), eps)
    return _affine(y.reshape(x.shape), params, has_weight, (c,) + (1,) * (x.ndim - 2))


group_norm_op = Op("group_norm", _mixed(_group_norm), grad_name="NativeGroupNormBackward0")


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over groups of channels of `(N, C, *)` input."""
    if input.ndim < 2 or input.shape[1] % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, "
                           f"but got input of shape {list(input.shape)} and num_groups={num_groups}")
    return apply(group_norm_op, input, *_params(weight, bias), num_groups=int(num_groups),
                 eps=float(eps), has_weight=weight is not None)


def _instance_norm(x, *params, eps, has_weight):
    return _group_norm(x, *params, num_groups=x.shape[1], eps=eps, has_weight=has_weight)


instance_norm_op = Op("instance_norm", _mixed(_instance_norm), grad_name="ViewBackward0")


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel of each sample of `(N, C, *)` input over its spatial dimensions.

    With `use_input_stats` and running statistics, these are updated in place with the batch
    mean of the per-sample statistics (unbiased variance), as PyTorch; without
    `use_input_stats` the running statistics normalize.
    """
    params = _params(weight, bias)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise RuntimeError("Expected running_mean and running_var to be defined when "
                               "use_input_stats is false")
        return apply(batch_norm_eval_op, input, running_mean, running_var, *params,
                     eps=float(eps), has_weight=weight is not None)
    if input.ndim < 2 or math.prod(input.shape[2:]) <= 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size "
                         f"{input.shape}")
    out = apply(instance_norm_op, input, *params, eps=float(eps), has_weight=weight is not None)
    if running_mean is not None and running_var is not None:
        spatial = tuple(range(2, input.ndim))
        with _grad_mode.no_grad():
            mean = input.mean(spatial).mean(0)
            var = input.var(spatial, correction=1).mean(0)
        _update_running_stats(running_mean, running_var, mean, var, momentum)
    return out


def _rms_norm(x, *weight, n_dims, eps):
    axes = tuple(range(x.ndim - n_dims, x.ndim))
    y = x * lax.rsqrt(jnp.mean(jnp.square(x), axis=axes, keepdims=True) + eps)
    return y * weight[0] if weight else y


rms_norm_op = Op("rms_norm", _rms_norm, grad_name="MulBackward0")


def rms_norm(input: Tensor, normalized_shape: Sequence[int], weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """`x / sqrt(mean(x**2) + eps) * weight` over the last `len(normalized_shape)` dimensions;
    `eps=None` is the machine epsilon of the input's dtype."""
    shape = (int(normalized_shape),) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if len(shape) > input.ndim or tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*{', '.join(map(str, shape))}], but got input of size"
                           f"{list(input.shape)}")
    if eps is None:
        eps = float(jnp.finfo(input.dtype.np).eps)
    return apply(rms_norm_op, input, *_params(weight), n_dims=len(shape), eps=float(eps))


def _channel_shape(x):
    return (x.shape[1],) + (1,) * (x.ndim - 2)


def _batch_norm_eval(x, running_mean, running_var, *params, eps, has_weight):
    shape = _channel_shape(x)
    y = (x - running_mean.reshape(shape)) * lax.rsqrt(running_var.reshape(shape) + eps)
    return _affine(y, params, has_weight, shape)


batch_norm_eval_op = Op("batch_norm_eval", _mixed(_batch_norm_eval), grad_name="NativeBatchNormBackward0")


def _batch_norm_train(x, *params, eps, has_weight):
    """Normalize with the batch's statistics; also returns the mean and the unbiased variance."""
    axes = (0,) + tuple(range(2, x.ndim))
    y, mean, var = _normalized(x, axes, eps)
    n = x.size // x.shape[1]
    out = _affine(y, params, has_weight, _channel_shape(x))
    return out, mean.reshape(-1), var.reshape(-1) * (n / max(n - 1, 1))


batch_norm_op = Op("batch_norm", _mixed(_batch_norm_train), n_out=3, grad_name="NativeBatchNormBackward0")


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel of `(N, C, *)` input.

    Training uses the batch's statistics and, when running stats are given, updates them in place
    (`running = (1 - momentum) * running + momentum * batch`, unbiased variance) under no_grad.
    Evaluation uses the running statistics.
    """
    params = _params(weight, bias)
    if not training:
        if running_mean is None or running_var is None:
            raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
        return apply(batch_norm_eval_op, input, running_mean, running_var, *params,
                     eps=float(eps), has_weight=weight is not None)
    if input.numel() == 0:  # PyTorch: an empty result (zero gradients), running stats untouched
        out = input.clone()
        shape = _channel_shape(input)
        if weight is not None:
            out = out * weight.reshape(shape)
        if bias is not None:
            out = out + bias.reshape(shape)
        return out
    if input.numel() // input.shape[1] == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                         f"{input.shape}")
    out, mean, var = apply(batch_norm_op, input, *params, eps=float(eps),
                           has_weight=weight is not None)
    if running_mean is not None:
        _update_running_stats(running_mean, running_var, mean, var, momentum)
    return out


# BatchNorm's running statistics: `(1 - momentum) * running + momentum * batch`, one node a step
running_update_op = Op("running_update", lambda r, b, *, momentum: r * (1 - momentum) + b * momentum,
                       saves=SAVES_NONE, differentiable=False)


def _update_running_stats(running_mean: Tensor, running_var: Tensor, mean: Tensor, var: Tensor,
                          momentum: float) -> None:
    """`running = (1 - momentum) * running + momentum * batch`, in place, under no_grad.

    The updates stay pending until the next backward computes them; chains of them with no
    backward in between are bounded by the pending-write policy (`_core.record`).
    """
    with _grad_mode.no_grad():
        for running, batch in ((running_mean, mean), (running_var, var)):
            settle(running)  # a reset's constant, computed apart (see `settle`)
            inplace(running, apply(running_update_op, running, batch, momentum=float(momentum)))


def _safe_norm(x, p, axis, keepdims):
    """The p-norm along `axis`, with PyTorch's zero gradient where the norm is 0."""
    if p == math.inf:
        return jnp.max(jnp.abs(x), axis=axis, keepdims=keepdims)
    if p == 0:  # the number of nonzero elements, with gradient 0 (as PyTorch)
        return jnp.sum((x != 0).astype(x.dtype), axis=axis, keepdims=keepdims)
    s = jnp.sum(abs_(x) ** p, axis=axis, keepdims=keepdims)
    nonzero = s > 0
    safe = jnp.where(nonzero, s, jnp.ones_like(s))
    return jnp.where(nonzero, safe ** (1.0 / p), jnp.zeros_like(s))


def _normalize(x, *, p, dim, eps):
    n = _safe_norm(x, p, dim, True)
    return x / jnp.where(n < eps, jnp.asarray(eps, n.dtype), n)  # clamp_min: gradient at eps passes


normalize_op = Op("normalize", _normalize, grad_name="DivBackward0")


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out: Tensor | None = None) -> Tensor:
    """`input / max(||input||_p, eps)` along `dim`."""
    if out is not None:
        raise TypeError("normalize: out= is not supported (tapegrad tensors are immutable values)")
    return apply(normalize_op, input, p=float(p), dim=normalize_dim(dim, input.ndim),
                 eps=float(eps))


# -- attention ------------------------------------------------------------------------------------
def _mask_kind(mask: Tensor, bool_kind: str) -> str:
    return bool_kind if mask.dtype.name == "bool" else "float"


def attention_scores(q, k, masks, *, scale, mask_kinds, is_causal):
    """Masked attention logits `q @ k^T * scale` (shared by the attention rows).

    Each mask is "allow" (bool, True attends), "block" (bool, True is masked out) or "float"
    (added to the logits); all broadcast against `(..., L, S)`.
    """
    s = jnp.matmul(q, jnp.swapaxes(k, -1, -2)) * scale
    neg_inf = jnp.asarray(-jnp.inf, s.dtype)
    for mask, kind in zip(masks, mask_kinds):
        if kind == "allow":
            s = jnp.where(mask, s, neg_inf)
        elif kind == "block":
            s = jnp.where(mask, neg_inf, s)
        else:
            s = s + mask.astype(s.dtype)
    if is_causal:
        L, S = s.shape[-2:]
        s = jnp.where(jnp.tril(jnp.ones((L, S), bool)), s, neg_inf)
    return s


def _attention_probs(q, k, *masks, scale, mask_kinds, is_causal):
    return jax.nn.softmax(attention_scores(q, k, masks, scale=scale, mask_kinds=mask_kinds,
                                           is_causal=is_causal), axis=-1)


def _sdpa(q, k, v, *extra, scale, mask_kinds, is_causal, dropout_p):
    masks, noise = extra[:len(mask_kinds)], extra[len(mask_kinds):]
    p = _attention_probs(q, k, *masks, scale=scale, mask_kinds=mask_kinds, is_causal=is_causal)
    if dropout_p > 0:
        p = _dropout(p, noise[0], p=dropout_p)
    return jnp.matmul(p, v)


scaled_dot_product_attention_op = Op("scaled_dot_product_attention", _sdpa,
                                     grad_name="ScaledDotProductAttentionBackward0")


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """`softmax(q @ k^T * scale + mask) @ v` as one op; a bool mask marks positions to attend."""
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set "
                           "when is_causal=True")
    if enable_gqa and query.shape[-3] != key.shape[-3]:
        rep = query.shape[-3] // key.shape[-3]
        key, value = (_repeat_heads(t, rep) for t in (key, value))
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    extra = [] if attn_mask is None else [attn_mask]
    kinds = () if attn_mask is None else (_mask_kind(attn_mask, "allow"),)
    if dropout_p > 1:
        raise RuntimeError(f"dropout probability has to be between 0 and 1, but got {dropout_p:g}")
    if dropout_p > 0:
        shape = tuple(query.shape[:-1]) + (key.shape[-2],)
        extra.append(_random.default_generator.sample("uniform", shape, query.dtype))
    return apply(scaled_dot_product_attention_op, query, key, value, *extra, scale=scale,
                 mask_kinds=kinds, is_causal=bool(is_causal), dropout_p=float(dropout_p))


def _repeat_heads(t: Tensor, rep: int) -> Tensor:
    shape = tuple(t.shape)
    t = t.reshape(shape[:-2] + (1,) + shape[-2:]).expand(shape[:-3] + (shape[-3], rep) + shape[-2:])
    return t.reshape(shape[:-3] + (shape[-3] * rep,) + shape[-2:])


attention_probs_op = Op("attention_probs", _attention_probs, grad_name="SoftmaxBackward0")


def attention_weights(query: Tensor, key: Tensor, masks: Sequence[Tensor] = (),
                      mask_kinds: tuple = (), is_causal: bool = False,
                      scale: float | None = None) -> Tensor:
    """`softmax(q @ k^T * scale + masks)`, the weights `MultiheadAttention` returns.

    `mask_kinds` says per mask "allow" / "block" (bool) or "float" (additive).
    """
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    return apply(attention_probs_op, query, key, *masks, scale=scale,
                 mask_kinds=tuple(mask_kinds), is_causal=bool(is_causal))


def _cosine_similarity(x1, x2, *, dim, eps):
    x1, x2 = jnp.broadcast_arrays(x1, x2)

    def clamped_norm(x):  # PyTorch clamps the norms in place under no_grad
        n = _safe_norm(x, 2, dim, True)
        return n + lax.stop_gradient(jnp.maximum(n, eps) - n)
    return jnp.sum((x1 / clamped_norm(x1)) * (x2 / clamped_norm(x2)), axis=dim)


# -- distances ------------------------------------------------------------------------------------
cosine_similarity_op = Op("cosine_similarity", _cosine_similarity, grad_name="SumBackward1")


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """`x1 . x2 / (max(||x1||, eps) * max(||x2||, eps))` along `dim`."""
    ndim = max(x1.ndim, x2.ndim)
    return apply(cosine_similarity_op, x1, x2, dim=normalize_dim(dim, ndim), eps=float(eps))


def _pairwise_distance(x1, x2, *, p, eps, keepdim):
    return _safe_norm(x1 - x2 + eps, p, -1, keepdim)


pairwise_distance_op = Op("pairwise_distance", _pairwise_distance, grad_name="NormBackward1")


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """`||x1 - x2 + eps||_p` over the last dimension."""
    return apply(pairwise_distance_op, x1, x2, p=float(p), eps=float(eps),
                 keepdim=bool(keepdim))
