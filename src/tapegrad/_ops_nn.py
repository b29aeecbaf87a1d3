"""Registry rows for `tapegrad.nn.functional`: activations, normalization, attention, losses.

Same rules as `_ops.py`: a row is a pure jnp function of its input arrays, static arguments as
keywords; `jax.vjp` supplies the derivative. Fused ops are one row each (cross_entropy,
layer_norm, batch_norm, ...), so recording a model takes few nodes. Where PyTorch's derivative at
a tie differs from the obvious jnp spelling, the row is written with `jnp.where` so that
`jax.grad` gives PyTorch's subgradient; where one branch of a `where` overflows, its input is made
safe first so the unselected branch cannot turn the gradient into NaN.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from ._graph import SAVES_NONE, SAVES_OUTPUT, Op


def _abs(x):
    """`|x|` with derivative 0 at 0 (PyTorch's sign(0)); jnp.abs gives 1 there."""
    return jnp.where(x == 0, jnp.zeros_like(x), jnp.abs(x))


def _unary(name: str, fn, saves=(0,), **kw) -> Op:
    """A one-input row whose static arguments are keywords of `fn`."""
    return Op(name, fn, saves=saves, **kw)


# -- activations ----------------------------------------------------------------------------------
def _hardtanh(x, *, min_val, max_val):
    # PyTorch's derivative is 1 strictly inside (min_val, max_val) and 0 at and beyond the bounds.
    lo, hi = jnp.asarray(min_val, x.dtype), jnp.asarray(max_val, x.dtype)
    return jnp.where(x <= lo, lo, jnp.where(x >= hi, hi, x))


def _leaky_relu(x, *, negative_slope):
    return jnp.where(x > 0, x, x * negative_slope)  # derivative at 0 is negative_slope, as PyTorch


def _elu(x, *, alpha, scale, input_scale):
    neg = jnp.where(x > 0, jnp.zeros_like(x), x)  # keeps expm1 finite on the unselected branch
    return jnp.where(x > 0, x * scale, alpha * scale * jnp.expm1(neg * input_scale))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _selu(x):
    return _elu(x, alpha=_SELU_ALPHA, scale=_SELU_SCALE, input_scale=1.0)


def _gelu(x, *, approximate):
    return jax.nn.gelu(x, approximate=approximate == "tanh")


def _silu(x):
    return x * jax.nn.sigmoid(x)


def _softplus(x, *, beta, threshold):
    bx = x * beta
    over = bx > threshold  # PyTorch reverts to the identity above the threshold
    return jnp.where(over, x, jnp.log1p(jnp.exp(jnp.where(over, jnp.zeros_like(bx), bx))) / beta)


def _mish(x):
    return x * jnp.tanh(jax.nn.softplus(x))


def _softsign(x):
    return x / (1 + _abs(x))


def _hardsigmoid(x):
    # derivative 1/6 strictly inside (-3, 3), 0 elsewhere
    return jnp.where(x <= -3, jnp.zeros_like(x), jnp.where(x >= 3, jnp.ones_like(x), x / 6 + 0.5))


def _hardswish(x):
    # derivative x/3 + 1/2 strictly inside (-3, 3); 0 at -3 and 1 at 3, as PyTorch
    return jnp.where(x <= -3, jnp.zeros_like(x), jnp.where(x >= 3, x, x * (x + 3) / 6))


relu6 = _unary("relu6", lambda x: _hardtanh(x, min_val=0.0, max_val=6.0),
               grad_name="HardtanhBackward0")
hardtanh = _unary("hardtanh", _hardtanh)
leaky_relu = _unary("leaky_relu", _leaky_relu)
elu = _unary("elu", _elu)
selu = _unary("selu", _selu, grad_name="EluBackward0")
gelu = _unary("gelu", _gelu)
silu = _unary("silu", _silu)
mish = _unary("mish", _mish)
softplus = _unary("softplus", _softplus)
softsign = _unary("softsign", _softsign, grad_name="DivBackward0")
hardsigmoid = _unary("hardsigmoid", _hardsigmoid)
hardswish = _unary("hardswish", _hardswish)
def _prelu(x, w):
    if x.ndim >= 2 and w.size > 1:
        w = w.reshape((-1,) + (1,) * (x.ndim - 2))
    return jnp.where(x > 0, x, w * x)  # derivative at 0 is the weight, as PyTorch


def _glu(x, *, dim):
    a, b = jnp.split(x, 2, axis=dim)
    return a * jax.nn.sigmoid(b)


log_sigmoid = _unary("log_sigmoid", jax.nn.log_sigmoid)
prelu = Op("prelu", _prelu, grad_name="PreluKernelBackward0")
glu = _unary("glu", _glu)
softmax = _unary("softmax", lambda x, *, dim: jax.nn.softmax(x, axis=dim), saves=SAVES_OUTPUT)
log_softmax = _unary("log_softmax", lambda x, *, dim: jax.nn.log_softmax(x, axis=dim),
                     saves=SAVES_OUTPUT)


# -- dropout, linear, embedding -------------------------------------------------------------------
def _dropout(x, noise, *, p):
    # `noise` is uniform on [0, 1): an element is kept with probability 1 - p, and scaled up.
    keep = noise < (1.0 - p)
    return jnp.where(keep, x / (1.0 - p), jnp.zeros_like(x))


def _linear(x, w, *b):
    out = jnp.matmul(x, w.T)
    return out + b[0] if b else out


def _bilinear(x1, x2, w, *b):
    out = jnp.einsum("...i,oij,...j->...o", x1, w, x2)
    return out + b[0] if b else out


def _embedding(idx, w, *, padding_idx):
    out = jnp.take(w, idx, axis=0)
    if padding_idx is None:
        return out
    # the padding row gets no gradient, as in PyTorch
    return jnp.where((idx == padding_idx)[..., None], lax.stop_gradient(out), out)


dropout = Op("dropout", _dropout, saves=(1,), grad_name="NativeDropoutBackward0")
def _linear_grad_name(static, inputs) -> str:
    """What PyTorch's linear ends with: addmm / mm on matrices, a view of them otherwise."""
    ndim, bias = len(inputs[0].shape), len(inputs) == 3
    if ndim == 2:
        return "AddmmBackward0" if bias else "MmBackward0"
    if bias:
        return "ViewBackward0"
    return "SqueezeBackward4" if ndim == 1 else "UnsafeViewBackward0"


linear = Op("linear", _linear, grad_name=_linear_grad_name)
bilinear = Op("bilinear", _bilinear, grad_name="TrilinearBackward0")
embedding = Op("embedding", _embedding, saves=(0,))
one_hot = Op("one_hot", lambda x, *, num_classes: jax.nn.one_hot(x, num_classes, dtype=jnp.int64),
             saves=SAVES_NONE, differentiable=False)


# -- normalization --------------------------------------------------------------------------------
def _normalized(x, axes, eps):
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
    return (x - mean) * lax.rsqrt(var + eps), mean, var


def _affine(y, params, has_weight, shape):
    params = list(params)
    if has_weight:
        y = y * params.pop(0).reshape(shape)
    if params:
        y = y + params[0].reshape(shape)
    return y


def _layer_norm(x, *params, n_dims, eps, has_weight):
    axes = tuple(range(x.ndim - n_dims, x.ndim))
    y, _, _ = _normalized(x, axes, eps)
    return _affine(y, params, has_weight, x.shape[x.ndim - n_dims:])


def _group_norm(x, *params, num_groups, eps, has_weight):
    n, c = x.shape[:2]
    g = x.reshape(n, num_groups, -1)
    y, _, _ = _normalized(g, (2,), eps)
    return _affine(y.reshape(x.shape), params, has_weight, (c,) + (1,) * (x.ndim - 2))


def _channel_shape(x):
    return (x.shape[1],) + (1,) * (x.ndim - 2)


def _batch_norm_train(x, *params, eps, has_weight):
    """Normalize with the batch's statistics; also returns the mean and the unbiased variance."""
    axes = (0,) + tuple(range(2, x.ndim))
    y, mean, var = _normalized(x, axes, eps)
    n = x.size // x.shape[1]
    out = _affine(y, params, has_weight, _channel_shape(x))
    return out, mean.reshape(-1), var.reshape(-1) * (n / max(n - 1, 1))


def _batch_norm_eval(x, running_mean, running_var, *params, eps, has_weight):
    shape = _channel_shape(x)
    y = (x - running_mean.reshape(shape)) * lax.rsqrt(running_var.reshape(shape) + eps)
    return _affine(y, params, has_weight, shape)


def _safe_norm(x, p, axis, keepdims):
    """The p-norm along `axis`, with PyTorch's zero gradient where the norm is 0."""
    if p == math.inf:
        return jnp.max(jnp.abs(x), axis=axis, keepdims=keepdims)
    s = jnp.sum(_abs(x) ** p, axis=axis, keepdims=keepdims)
    nonzero = s > 0
    safe = jnp.where(nonzero, s, jnp.ones_like(s))
    return jnp.where(nonzero, safe ** (1.0 / p), jnp.zeros_like(s))


def _normalize(x, *, p, dim, eps):
    n = _safe_norm(x, p, dim, True)
    return x / jnp.where(n < eps, jnp.asarray(eps, n.dtype), n)  # clamp_min: gradient at eps passes


layer_norm = Op("layer_norm", _layer_norm, grad_name="NativeLayerNormBackward0")
group_norm = Op("group_norm", _group_norm, grad_name="NativeGroupNormBackward0")
batch_norm = Op("batch_norm", _batch_norm_train, n_out=3, grad_name="NativeBatchNormBackward0")
batch_norm_eval = Op("batch_norm_eval", _batch_norm_eval, grad_name="NativeBatchNormBackward0")
normalize = Op("normalize", _normalize, grad_name="DivBackward0")
# BatchNorm's running statistics: `(1 - momentum) * running + momentum * batch`, one node a step
running_update = Op("running_update", lambda r, b, *, momentum: r * (1 - momentum) + b * momentum,
                    saves=SAVES_NONE, differentiable=False)


# -- distances ------------------------------------------------------------------------------------
def _cosine_similarity(x1, x2, *, dim, eps):
    x1, x2 = jnp.broadcast_arrays(x1, x2)

    def clamped_norm(x):  # PyTorch clamps the norms in place under no_grad
        n = _safe_norm(x, 2, dim, True)
        return n + lax.stop_gradient(jnp.maximum(n, eps) - n)
    return jnp.sum((x1 / clamped_norm(x1)) * (x2 / clamped_norm(x2)), axis=dim)


def _pairwise_distance(x1, x2, *, p, eps, keepdim):
    return _safe_norm(x1 - x2 + eps, p, -1, keepdim)


cosine_similarity = Op("cosine_similarity", _cosine_similarity, grad_name="SumBackward1")
pairwise_distance = Op("pairwise_distance", _pairwise_distance, grad_name="NormBackward1")


# -- attention ------------------------------------------------------------------------------------
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


attention_probs = Op("attention_probs", _attention_probs, grad_name="SoftmaxBackward0")
scaled_dot_product_attention = Op("scaled_dot_product_attention", _sdpa,
                                  grad_name="ScaledDotProductAttentionBackward0")


# -- losses ---------------------------------------------------------------------------------------
def _reduce(loss, reduction):
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    return loss


def _weighted(loss, weight):
    return loss * weight[0] if weight else loss


def _pointwise_loss(loss, weight, reduction, weighted_mean):
    """Reduce an elementwise loss; with a weight, PyTorch's "mean" is sum(w * l) / sum(w)."""
    if weight and reduction == "mean" and weighted_mean:
        return jnp.sum(loss * weight[0]) / jnp.sum(weight[0])
    return _reduce(_weighted(loss, weight), reduction)


def _mse(x, t, *weight, reduction):
    return _pointwise_loss(jnp.square(x - t), weight, reduction, True)


def _l1(x, t, *weight, reduction):
    return _pointwise_loss(_abs(x - t), weight, reduction, True)


def _smooth_l1(x, t, *, reduction, beta):
    d = _abs(x - t)
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(jnp.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction)


def _huber(x, t, *weight, reduction, delta):
    d = _abs(x - t)
    loss = jnp.where(d <= delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return _pointwise_loss(loss, weight, reduction, False)


def _nll_core(logp, target, weight, *, reduction, ignore_index):
    """PyTorch's nll_loss on log-probabilities `logp` (N, C, ...) or (C,) and class indices."""
    cdim = 1 if logp.ndim > 1 else 0
    valid = target != ignore_index
    safe = jnp.where(valid, target, jnp.zeros_like(target))
    picked = jnp.squeeze(jnp.take_along_axis(logp, jnp.expand_dims(safe, cdim), axis=cdim), cdim)
    w = jnp.take(weight, safe) if weight is not None else jnp.ones_like(picked)
    w = jnp.where(valid, w, jnp.zeros_like(w))
    loss = -picked * w
    if reduction == "mean":
        return jnp.sum(loss) / jnp.sum(w)
    return _reduce(loss, reduction)


def _class_weight(weight, ndim, cdim):
    return weight.reshape((-1,) + (1,) * (ndim - cdim - 1))


def _nll_loss(logp, target, *weight, reduction, ignore_index):
    return _nll_core(logp, target, weight[0] if weight else None, reduction=reduction,
                     ignore_index=ignore_index)


def _cross_entropy(x, target, *weight, reduction, ignore_index, label_smoothing, probs):
    cdim = 1 if x.ndim > 1 else 0
    n_classes = x.shape[cdim]
    logp = jax.nn.log_softmax(x, axis=cdim)
    weight = weight[0] if weight else None
    wl = logp if weight is None else logp * _class_weight(weight, x.ndim, cdim)
    if probs:
        target = target.astype(x.dtype)
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / n_classes
        loss = -jnp.sum(wl * target, axis=cdim)
        if reduction == "mean":
            return jnp.sum(loss) / (x.size / n_classes)
        return _reduce(loss, reduction)
    nll = _nll_core(logp, target, weight, reduction=reduction, ignore_index=ignore_index)
    if label_smoothing == 0:
        return nll
    valid = target != ignore_index
    smooth = jnp.where(valid, -jnp.sum(wl, axis=cdim), jnp.zeros(target.shape, x.dtype))
    if reduction == "mean":
        if weight is None:
            smooth = jnp.sum(smooth) / jnp.sum(valid)
        else:
            w = jnp.take(weight, jnp.where(valid, target, jnp.zeros_like(target)))
            smooth = jnp.sum(smooth) / jnp.sum(jnp.where(valid, w, jnp.zeros_like(w)))
    else:
        smooth = _reduce(smooth, reduction)
    return (1 - label_smoothing) * nll + smooth * (label_smoothing / n_classes)


def _binary_cross_entropy(x, t, *weight, reduction):
    # PyTorch clamps each log term at -100 so that a saturated prediction gives a finite loss
    log_x = jnp.maximum(jnp.log(x), -100.0)
    log_1mx = jnp.maximum(jnp.log1p(-x), -100.0)
    return _reduce(_weighted(-(t * log_x + (1 - t) * log_1mx), weight), reduction)


def _bce_with_logits(x, t, *extra, reduction, has_weight):
    extra = list(extra)
    weight = extra.pop(0) if has_weight else None
    pos_weight = extra[0] if extra else None
    log_weight = 1.0 if pos_weight is None else (pos_weight - 1) * t + 1
    loss = (1 - t) * x + log_weight * jax.nn.softplus(-x)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _kl_div(x, t, *, reduction, log_target):
    if log_target:
        loss = jnp.exp(t) * (t - x)
    else:
        loss = jax.scipy.special.xlogy(t, t) - t * x
    if reduction == "batchmean":
        return jnp.sum(loss) / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction)


mse_loss = Op("mse_loss", _mse)
l1_loss = Op("l1_loss", _l1, grad_name="MeanBackward0")
smooth_l1_loss = Op("smooth_l1_loss", _smooth_l1)
huber_loss = Op("huber_loss", _huber)
nll_loss = Op("nll_loss", _nll_loss, grad_name="NllLossBackward0")
cross_entropy = Op("cross_entropy", _cross_entropy, grad_name="NllLossBackward0")
binary_cross_entropy = Op("binary_cross_entropy", _binary_cross_entropy)
binary_cross_entropy_with_logits = Op("binary_cross_entropy_with_logits", _bce_with_logits)
kl_div = Op("kl_div", _kl_div)
