"""Loss functions of `tapegrad.nn.functional`: one fused registry row each."""
from __future__ import annotations

import warnings

from .. import _ops_nn
from .._record import apply
from .._tensor import Tensor

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


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """Mean squared error."""
    reduction = _reduction(size_average, reduce, reduction)
    _same_size(input, target)
    return apply(_ops_nn.mse_loss, input, target, *_weight(weight, input), reduction=reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """Mean absolute error (gradient 0 where input == target)."""
    reduction = _reduction(size_average, reduce, reduction)
    _same_size(input, target)
    return apply(_ops_nn.l1_loss, input, target, *_weight(weight, input), reduction=reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Quadratic below `beta`, linear above (divided by `beta`)."""
    reduction = _reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    _same_size(input, target)
    return apply(_ops_nn.smooth_l1_loss, input, target, reduction=reduction, beta=float(beta))


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """Quadratic below `delta`, linear (scaled by `delta`) above."""
    reduction = _reduction(None, None, reduction)
    _same_size(input, target)
    return apply(_ops_nn.huber_loss, input, target, *_weight(weight, input), reduction=reduction,
                 delta=float(delta))


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


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices, from log-probabilities `(N, C, ...)`."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_targets(input, target)
    return apply(_ops_nn.nll_loss, input, target, *(() if weight is None else (weight,)),
                 reduction=reduction, ignore_index=int(ignore_index))


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """`log_softmax` + `nll_loss` as one op; `target` holds class indices or class probabilities."""
    reduction = _reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    probs = target.dtype.is_floating_point
    if probs:
        if tuple(target.shape) != tuple(input.shape):
            raise RuntimeError(f"Expected target size {list(input.shape)}, got {list(target.shape)}")
    else:
        _check_targets(input, target)
    return apply(_ops_nn.cross_entropy, input, target, *(() if weight is None else (weight,)),
                 reduction=reduction, ignore_index=int(ignore_index),
                 label_smoothing=float(label_smoothing), probs=probs)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """Binary cross entropy of probabilities (each log term clamped at -100, as PyTorch)."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input "
                         f"size ({input.shape}) is deprecated. Please ensure they have the same size.")
    return apply(_ops_nn.binary_cross_entropy, input, target,
                 *(() if weight is None else (weight,)), reduction=reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Sigmoid + binary cross entropy as one stable op; `pos_weight` weighs positive examples."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size "
                         f"({input.shape})")
    extra = tuple(t for t in (weight, pos_weight) if t is not None)
    return apply(_ops_nn.binary_cross_entropy_with_logits, input, target, *extra,
                 reduction=reduction, has_weight=weight is not None)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL divergence with `input` given as log-probabilities (`log_target`: so is `target`)."""
    reduction = _reduction(size_average, reduce, reduction, _REDUCTIONS + ("batchmean",))
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.'mean' will be changed to behave the same as "
                      "'batchmean' in the next major release.", UserWarning, stacklevel=2)
    return apply(_ops_nn.kl_div, input, target, reduction=reduction, log_target=bool(log_target))
