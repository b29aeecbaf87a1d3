"""Loss functions of `tapegrad.nn.functional`: one fused registry row each."""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from .._core import checks as _checks, dtype as _dtype
from .._core.graph import Op
from .._core.rows import abs_
from .._tensor.apply import apply
from .._tensor.checked import checked
from .._tensor.tensor import Tensor


_REDUCTIONS = ("none", "mean", "sum")


def _reduction(size_average, reduce, reduction: str, allowed=_REDUCTIONS) -> str:
    """PyTorch's legacy `size_average` / `reduce` flags folded into `reduction`."""
    if size_average is not None or reduce is not None:
        warnings.warn("size_average and reduce args will be deprecated, please use "
                      "reduction='mean' instead." if size_average is not False or reduce is not False
                      else "size_average and reduce args will be deprecated, please use "
                      "reduction='sum' instead.", UserWarning, stacklevel=3)
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else "mean" if size_average else "sum"
    if reduction not in allowed:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _same_size(input: Tensor, target: Tensor) -> None:
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size "
                      f"({input.shape}). This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", UserWarning,
                      stacklevel=3)


def _weight(weight, input: Tensor) -> tuple:
    if weight is None:
        return ()
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")
    return (weight,)


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


mse_loss_op = Op("mse_loss", _mse)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """Mean squared error."""
    reduction = _reduction(size_average, reduce, reduction)
    _same_size(input, target)
    _float_kernel("mse_cpu", input, target)
    return apply(mse_loss_op, input, target, *_weight(weight, input), reduction=reduction)


def _l1(x, t, *weight, reduction):
    return _pointwise_loss(abs_(x - t), weight, reduction, True)


l1_loss_op = Op("l1_loss", _l1, grad_name="MeanBackward0")


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """Mean absolute error (gradient 0 where input == target)."""
    reduction = _reduction(size_average, reduce, reduction)
    _same_size(input, target)
    return apply(l1_loss_op, input, target, *_weight(weight, input), reduction=reduction)


def _smooth_l1(x, t, *, reduction, beta):
    d = abs_(x - t)
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(jnp.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction)


smooth_l1_loss_op = Op("smooth_l1_loss", _smooth_l1)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Quadratic below `beta`, linear above (divided by `beta`)."""
    reduction = _reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    _float_kernel("smooth_l1_cpu", input, target)
    _same_size(input, target)
    return apply(smooth_l1_loss_op, input, target, reduction=reduction, beta=float(beta))


def _huber(x, t, *weight, reduction, delta):
    d = abs_(x - t)
    loss = jnp.where(d <= delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return _pointwise_loss(loss, weight, reduction, False)


huber_loss_op = Op("huber_loss", _huber)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """Quadratic below `delta`, linear (scaled by `delta`) above."""
    reduction = _reduction(None, None, reduction)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    _same_size(input, target)
    return apply(huber_loss_op, input, target, *_weight(weight, input), reduction=reduction,
                 delta=float(delta))


def _float_kernel(kernel: str, input: Tensor, target: Tensor) -> None:
    """PyTorch has no kernel for this loss of two integer tensors."""
    if not any(t.dtype.is_floating_point or t.dtype.is_complex for t in (input, target)):
        raise NotImplementedError(f'"{kernel}" not implemented for '
                                  f"'{_dtype.scalar_name(input.dtype)}'")


def _checked_targets(name: str, input: Tensor, target: Tensor, ignore_index: int,
                     weight: Tensor | None) -> Tensor:
    """Class indices checked against `[0, C)` (`ignore_index` aside), and the class weights'
    size and dtype, as PyTorch does."""
    _check_targets(input, target)
    if weight is not None and weight.dtype is not input.dtype:
        raise RuntimeError(f"expected scalar type {_dtype.scalar_name(input.dtype)} but found "
                           f"{_dtype.scalar_name(weight.dtype)}")
    classes = input.shape[1 if input.ndim > 1 else 0]
    if weight is not None and weight.numel() != classes:
        raise RuntimeError(f"weight tensor should be defined either for all {classes} classes or "
                           f"no classes but got weight tensor of shape: {list(weight.shape)}")
    return checked(target, name, _checks.outside, (0, classes, ignore_index), IndexError,
                   "Target {value} is out of bounds.")


def _check_targets(input: Tensor, target: Tensor) -> None:
    if input.ndim < 1:
        raise ValueError("Expected input to have at least 1 dimension")
    if input.ndim >= 2 and target.ndim >= 1 and input.shape[0] != target.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target "
                         f"batch_size ({target.shape[0]}).")
    expected = tuple(input.shape[:1]) + tuple(input.shape[2:]) if input.ndim >= 2 else ()
    if tuple(target.shape) != expected:
        raise RuntimeError(f"Expected target size {list(expected)}, got {list(target.shape)}")
    if target.dtype.is_floating_point:
        raise RuntimeError("expected scalar type Long but found " + target.dtype.name)


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


def _nll_loss(logp, target, *weight, reduction, ignore_index):
    return _nll_core(logp, target, weight[0] if weight else None, reduction=reduction,
                     ignore_index=ignore_index)


nll_loss_op = Op("nll_loss", _nll_loss, grad_name="NllLossBackward0")


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices, from log-probabilities `(N, C, ...)`."""
    reduction = _reduction(size_average, reduce, reduction)
    target = _checked_targets("nll_loss", input, target, int(ignore_index), weight)
    return apply(nll_loss_op, input, target, *(() if weight is None else (weight,)),
                 reduction=reduction, ignore_index=int(ignore_index))


def _class_weight(weight, ndim, cdim):
    return weight.reshape((-1,) + (1,) * (ndim - cdim - 1))


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


def _cross_entropy_shape(signature, *, reduction, ignore_index, label_smoothing, probs):
    """A floating input's dtype; a scalar, or for reduction="none" the input's shape without
    its class dimension (the target's, which `cross_entropy` has checked)."""
    (x, dx), *_ = signature
    if not dx.is_floating_point or not x:
        return None
    if reduction != "none":
        return (), dx
    return (tuple(x[:1]) + tuple(x[2:]) if len(x) > 1 else ()), dx


cross_entropy_op = Op("cross_entropy", _cross_entropy, grad_name="NllLossBackward0",
                      shape=_cross_entropy_shape)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """`log_softmax` + `nll_loss` as one op; `target` holds class indices or class probabilities."""
    reduction = _reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    probs = target.dtype.is_floating_point
    if probs:
        if tuple(target.shape) != tuple(input.shape):
            raise RuntimeError(f"Expected target size {list(input.shape)}, got {list(target.shape)}")
    else:
        target = _checked_targets("cross_entropy", input, target, int(ignore_index), weight)
    return apply(cross_entropy_op, input, target, *(() if weight is None else (weight,)),
                 reduction=reduction, ignore_index=int(ignore_index),
                 label_smoothing=float(label_smoothing), probs=probs)


_BCE_EPSILON = float(np.float32(1e-12))


@jax.custom_jvp
def _bce_terms(x, t):
    # PyTorch clamps each log term at -100 so that a saturated prediction gives a finite loss
    log_x = jnp.maximum(jnp.log(x), -100.0)
    log_1mx = jnp.maximum(jnp.log1p(-x), -100.0)
    return -(t * log_x + (1 - t) * log_1mx)


@_bce_terms.defjvp
def _bce_terms_jvp(primals, tangents):
    # PyTorch's derivatives rather than the clamped forward's: finite where the prediction is
    # saturated (x = 0 or 1, or below the clamp), d/dx = (x - t) / max(x (1 - x), 1e-12), and
    # d/dt = log(1 - x) - log(x) unclamped. PyTorch's 1e-12 is a C float, also in float64.
    x, t = primals
    dx, dt = tangents
    d_x = (x - t) / jnp.maximum(x * (1 - x), _BCE_EPSILON)
    d_t = jnp.log1p(-x) - jnp.log(x)
    return _bce_terms(x, t), d_x * dx + d_t * dt


def _binary_cross_entropy(x, t, *weight, reduction):
    return _reduce(_weighted(_bce_terms(x, t), weight), reduction)


binary_cross_entropy_op = Op("binary_cross_entropy", _binary_cross_entropy)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """Binary cross entropy of probabilities (each log term clamped at -100, as PyTorch)."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input "
                         f"size ({input.shape}) is deprecated. Please ensure they have the same size.")
    input = checked(input, "binary_cross_entropy", _checks.not_between, (0, 1), RuntimeError,
                    "all elements of input should be between 0 and 1")
    target = checked(target, "binary_cross_entropy", _checks.not_between, (0, 1), RuntimeError,
                     "all elements of target should be between 0 and 1")
    return apply(binary_cross_entropy_op, input, target,
                 *(() if weight is None else (weight,)), reduction=reduction)


def _bce_with_logits(x, t, *extra, reduction, has_weight):
    extra = list(extra)
    weight = extra.pop(0) if has_weight else None
    pos_weight = extra[0] if extra else None
    log_weight = 1.0 if pos_weight is None else (pos_weight - 1) * t + 1
    loss = (1 - t) * x + log_weight * jax.nn.softplus(-x)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


binary_cross_entropy_with_logits_op = Op("binary_cross_entropy_with_logits", _bce_with_logits)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Sigmoid + binary cross entropy as one stable op; `pos_weight` weighs positive examples."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size "
                         f"({input.shape})")
    extra = tuple(t for t in (weight, pos_weight) if t is not None)
    return apply(binary_cross_entropy_with_logits_op, input, target, *extra,
                 reduction=reduction, has_weight=weight is not None)


def _kl_div(x, t, *, reduction, log_target):
    if log_target:
        loss = jnp.exp(t) * (t - x)
    else:
        loss = jax.scipy.special.xlogy(t, t) - t * x
    if reduction == "batchmean":
        return jnp.sum(loss) / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction)


kl_div_op = Op("kl_div", _kl_div)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL divergence with `input` given as log-probabilities (`log_target`: so is `target`)."""
    reduction = _reduction(size_average, reduce, reduction, _REDUCTIONS + ("batchmean",))
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.'mean' will be changed to behave the same as "
                      "'batchmean' in the next major release.", UserWarning, stacklevel=2)
    return apply(kl_div_op, input, target, reduction=reduction, log_target=bool(log_target))
