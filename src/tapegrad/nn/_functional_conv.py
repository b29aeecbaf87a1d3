"""Convolution, pooling and resampling functions of `tapegrad.nn.functional` (channels-first)."""
from __future__ import annotations

import math

from .. import _methods, _ops_conv
from .._record import apply
from .._tensor import Tensor


def _tuple(v, n: int, name: str = "value") -> tuple:
    if isinstance(v, (list, tuple)):
        if len(v) == 1:
            return (int(v[0]),) * n
        if len(v) != n:
            raise RuntimeError(f"expected {name} to be a single integer value or a list of {n} values")
        return tuple(int(x) for x in v)
    return (int(v),) * n


def _batched(input: Tensor, nd: int, name: str):
    """Add a batch dimension to unbatched input; returns (input, whether one was added)."""
    if input.ndim == nd + 1:
        return input.reshape((1,) + tuple(input.shape)), True
    if input.ndim != nd + 2:
        raise RuntimeError(f"{name}: Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input "
                           f"to {name}, but got input of size: {list(input.shape)}")
    return input, False


def _unbatched(out: Tensor, added: bool) -> Tensor:
    return out.reshape(tuple(out.shape)[1:]) if added else out


def _check_dtypes(input: Tensor, weight: Tensor, bias) -> None:
    for p in (weight, bias):
        if p is not None and p.dtype is not input.dtype:
            raise RuntimeError(f"expected scalar type {_methods._type_name(input.dtype)} but found "
                               f"{_methods._type_name(p.dtype)}")


def _conv_nd(nd, input, weight, bias, stride, padding, dilation, groups, name):
    _check_dtypes(input, weight, bias)
    input, added = _batched(input, nd, name)
    stride, dilation = _tuple(stride, nd, "stride"), _tuple(dilation, nd, "dilation")
    if input.shape[1] != weight.shape[1] * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected "
                           f"input{list(input.shape)} to have {weight.shape[1] * groups} channels, "
                           f"but got {input.shape[1]} channels instead")
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0),) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            total = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:])]
            pads = tuple((t // 2, t - t // 2) for t in total)
        else:
            raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
    else:
        pads = tuple((p, p) for p in _tuple(padding, nd, "padding"))
    out = apply(_ops_conv.conv, input, weight, *(() if bias is None else (bias,)), stride=stride,
                padding=pads, dilation=dilation, groups=int(groups))
    return _unbatched(out, added)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """1-D convolution (cross-correlation) of `(N, C_in, L)` input with `(C_out, C_in/groups, k)`."""
    return _conv_nd(1, input, weight, bias, stride, padding, dilation, groups, "conv1d")


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation) of `(N, C_in, H, W)` input, as one XLA convolution."""
    return _conv_nd(2, input, weight, bias, stride, padding, dilation, groups, "conv2d")


def _conv_transpose_nd(nd, input, weight, bias, stride, padding, output_padding, groups,
                       dilation, name):
    _check_dtypes(input, weight, bias)
    input, added = _batched(input, nd, name)
    if input.shape[1] != weight.shape[0]:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected "
                           f"input{list(input.shape)} to have {weight.shape[0]} channels, but got "
                           f"{input.shape[1]} channels instead")
    out = apply(_ops_conv.conv_transpose, input, weight, *(() if bias is None else (bias,)),
                stride=_tuple(stride, nd), padding=_tuple(padding, nd),
                output_padding=_tuple(output_padding, nd), dilation=_tuple(dilation, nd),
                groups=int(groups))
    return _unbatched(out, added)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    return _conv_transpose_nd(1, input, weight, bias, stride, padding, output_padding, groups,
                              dilation, "conv_transpose1d")


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 2-D convolution; `weight` is `(C_in, C_out/groups, kH, kW)`."""
    return _conv_transpose_nd(2, input, weight, bias, stride, padding, output_padding, groups,
                              dilation, "conv_transpose2d")


# -- pooling --------------------------------------------------------------------------------------
def _pool_extra(size, k, s, p, d, ceil_mode) -> int:
    """Extra high-side padding that `ceil_mode` needs (PyTorch's pooling_output_shape)."""
    eff = d * (k - 1) + 1
    out = (size + 2 * p - eff + ((s - 1) if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    if out < 1:
        raise RuntimeError(f"Given input size: {size}. Calculated output size: {out}. "
                           "Output size is too small")
    return max(0, (out - 1) * s + eff - (size + 2 * p))


def _pool_args(nd, input, kernel_size, stride, padding, dilation, ceil_mode):
    kernel = _tuple(kernel_size, nd, "kernel_size")
    stride = kernel if stride is None or stride == [] or stride == () else _tuple(stride, nd)
    padding, dilation = _tuple(padding, nd), _tuple(dilation, nd)
    for p, k, d in zip(padding, kernel, dilation):
        if p > (d * (k - 1) + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                               f"pad={p}, kernel_size={k} and dilation={d}")
    sizes = input.shape[input.ndim - nd:]
    extra = tuple(_pool_extra(n, k, s, p, d, ceil_mode)
                  for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation))
    return kernel, stride, padding, dilation, extra


def _max_pool(nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    if return_indices:
        raise NotImplementedError("max_pool: return_indices=True is not supported by tapegrad")
    kernel, stride, padding, dilation, extra = _pool_args(nd, input, kernel_size, stride,
                                                          padding, dilation, ceil_mode)
    return apply(_ops_conv.max_pool, input, kernel=kernel, stride=stride, padding=padding,
                 dilation=dilation, extra=extra)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor:
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor:
    """Max over windows of the last two dimensions (padding counts as -inf)."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_pool(nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    kernel, stride, padding, _, extra = _pool_args(nd, input, kernel_size, stride, padding, 1,
                                                   ceil_mode)
    return apply(_ops_conv.avg_pool, input, kernel=kernel, stride=stride, padding=padding,
                 extra=extra, count_include_pad=bool(count_include_pad),
                 divisor_override=divisor_override)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over windows of the last two dimensions."""
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _adaptive(nd, input, output_size):
    sizes = tuple(input.shape[input.ndim - nd:])
    out = output_size if isinstance(output_size, (list, tuple)) else (output_size,) * nd
    out = tuple(s if o is None else int(o) for s, o in zip(sizes, out))
    return apply(_ops_conv.adaptive_avg_pool, input, output_size=out)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    return _adaptive(1, input, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Mean over PyTorch's adaptive windows, so the output has `output_size` (None keeps a size)."""
    return _adaptive(2, input, output_size)


# -- resampling -----------------------------------------------------------------------------------
_MODES = {"nearest": None, "linear": 1, "bilinear": 2}


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize the spatial dimensions by `nearest`, `linear` or `bilinear` sampling."""
    if mode not in _MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported by tapegrad "
                                  "(supported: nearest, linear, bilinear)")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported by tapegrad")
    nd = input.ndim - 2
    if _MODES[mode] is not None and _MODES[mode] != nd:
        raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs "
                                  f"{_MODES[mode] + 2}D input")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    sizes = tuple(input.shape[2:])
    if size is not None:
        out = _tuple(size, nd, "size")
        scales = (None,) * nd
    else:
        factors = tuple(scale_factor) if isinstance(scale_factor, (list, tuple)) else (scale_factor,) * nd
        out = tuple(int(math.floor(n * float(f))) for n, f in zip(sizes, factors))
        scales = (None,) * nd if recompute_scale_factor else tuple(float(f) for f in factors)
    return apply(_ops_conv.interpolate, input, size=out, mode=mode, scales=scales,
                 align_corners=bool(align_corners))
