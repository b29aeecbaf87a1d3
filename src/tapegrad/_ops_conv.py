"""Registry rows for convolution, pooling, padding and resampling (channels-first, as PyTorch).

Spatial arguments arrive as static tuples with one entry per spatial dimension; the functional
wrappers in `nn.functional` turn PyTorch's ints, `"same"` and `ceil_mode` into them. Resampling
(`adaptive_avg_pool`, `interpolate`) is written as products with small constant matrices built
from the static sizes, which is exact and differentiates like PyTorch's kernels.
"""
from __future__ import annotations

import numpy as np
import jax.numpy as jnp
from jax import lax

from ._graph import SAVES_NONE, Op

_SPEC = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW"), 3: ("NCDHW", "OIDHW", "NCDHW")}


def _conv(x, w, *b, stride, padding, dilation, groups):
    nd = w.ndim - 2
    dn = lax.conv_dimension_numbers(x.shape, w.shape, _SPEC[nd])
    out = lax.conv_general_dilated(x, w, stride, padding, rhs_dilation=dilation,
                                   feature_group_count=groups, dimension_numbers=dn)
    return out + b[0].reshape((-1,) + (1,) * nd) if b else out


def _conv_transpose(x, w, *b, stride, padding, output_padding, dilation, groups):
    # The gradient of a convolution: dilate the input by `stride`, convolve with the flipped kernel.
    nd = w.ndim - 2
    c_in, c_out_g, k = w.shape[0], w.shape[1], w.shape[2:]
    w = w.reshape((groups, c_in // groups, c_out_g) + k)
    w = jnp.swapaxes(w, 1, 2).reshape((groups * c_out_g, c_in // groups) + k)
    w = jnp.flip(w, axis=tuple(range(2, 2 + nd)))
    pads = [(d * (kk - 1) - p, d * (kk - 1) - p + op)
            for kk, p, op, d in zip(k, padding, output_padding, dilation)]
    dn = lax.conv_dimension_numbers(x.shape, w.shape, _SPEC[nd])
    out = lax.conv_general_dilated(x, w, (1,) * nd, pads, lhs_dilation=stride, rhs_dilation=dilation,
                                   feature_group_count=groups, dimension_numbers=dn)
    return out + b[0].reshape((-1,) + (1,) * nd) if b else out


def _window(x, kernel, stride, dilation, pads):
    lead = x.ndim - len(kernel)
    return ((1,) * lead + kernel, (1,) * lead + stride, ((0, 0),) * lead + pads,
            (1,) * lead + dilation)


def _max_pool(x, *, kernel, stride, padding, dilation, extra):
    pads = tuple((p, p + e) for p, e in zip(padding, extra))
    if any(d != 1 for d in dilation):
        return _dilated_max_pool(x, kernel, stride, dilation, pads)
    dims, strides, pads, dil = _window(x, kernel, stride, dilation, pads)
    # a Python scalar init keeps lax's max-monoid recognition (and so its derivative rule, which
    # sends the gradient to the first maximum of each window, as PyTorch)
    return lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, pads, window_dilation=dil)


def _dilated_max_pool(x, kernel, stride, dilation, pads):
    """Max pooling with dilation (JAX has no VJP for it): gather the window elements along a new
    axis and pick the first maximum with `argmax`, so ties go where PyTorch sends them."""
    nd = len(kernel)
    lead = x.ndim - nd
    x = jnp.pad(x, ((0, 0),) * lead + pads, constant_values=-jnp.inf)
    outs = [(x.shape[lead + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
            for i in range(nd)]
    windows = []
    for offset in np.ndindex(*kernel):
        idx = tuple(slice(o * d, o * d + (n - 1) * s + 1, s)
                    for o, d, n, s in zip(offset, dilation, outs, stride))
        windows.append(x[(Ellipsis,) + idx])
    w = jnp.stack(windows, axis=-1)
    first = jnp.argmax(w, axis=-1)[..., None]
    return jnp.take_along_axis(w, first, axis=-1)[..., 0]


def _avg_divisor(size, k, s, p, e, count_include_pad):
    """How many elements each window of one spatial dimension averages over (PyTorch's rule)."""
    n_out = (size + 2 * p + e - k) // s + 1
    out = np.empty(n_out)
    for i in range(n_out):
        start, end = i * s - p, min(i * s - p + k, size + p)
        if not count_include_pad:
            start, end = max(start, 0), min(end, size)
        out[i] = end - start
    return out


def _avg_pool(x, *, kernel, stride, padding, extra, count_include_pad, divisor_override):
    pads = tuple((p, p + e) for p, e in zip(padding, extra))
    dims, strides, pads_full, dil = _window(x, kernel, stride, (1,) * len(kernel), pads)
    total = lax.reduce_window(x, 0.0, lax.add, dims, strides, pads_full, dil)
    if divisor_override:
        return total / divisor_override
    nd = len(kernel)
    divisor = np.ones(())
    for d in range(nd):
        v = _avg_divisor(x.shape[x.ndim - nd + d], kernel[d], stride[d], padding[d], extra[d],
                         count_include_pad)
        divisor = np.multiply.outer(divisor, v)
    return total / jnp.asarray(divisor, x.dtype)


def _adaptive_matrix(size, out):
    m = np.zeros((out, size))
    for i in range(out):
        start, end = (i * size) // out, -((-(i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def _adaptive_avg_pool(x, *, output_size):
    nd = len(output_size)
    for d, o in enumerate(output_size):
        axis = x.ndim - nd + d
        m = jnp.asarray(_adaptive_matrix(x.shape[axis], o), x.dtype)
        x = jnp.moveaxis(jnp.tensordot(x, m, axes=[[axis], [1]]), -1, axis)
    return x


def _pad(x, *, pad, mode, value):
    nd = len(pad) // 2
    pairs = [(0, 0)] * (x.ndim - nd) + [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(nd))]
    if mode == "constant":
        return lax.pad(x, jnp.asarray(value, x.dtype), [(lo, hi, 0) for lo, hi in pairs])
    return jnp.pad(x, pairs, mode={"reflect": "reflect", "replicate": "edge",
                                   "circular": "wrap"}[mode])


def _source_index(out, size, scale, align_corners, dt):
    """PyTorch's `area_pixel_compute_source_index` for linear modes, in the input's precision."""
    dst = np.arange(out).astype(dt)
    if align_corners:
        ratio = dt(size - 1) / dt(out - 1) if out > 1 else dt(0)
        return dst * ratio
    ratio = dt(1) / dt(scale) if scale else dt(size) / dt(out)
    return np.maximum((dst + dt(0.5)) * ratio - dt(0.5), dt(0))


def _resample_matrix(size, out, mode, scale, align_corners, dt):
    m = np.zeros((out, size))
    if mode == "nearest":
        ratio = np.float32(1.0 / scale) if scale else np.float32(size) / np.float32(out)
        src = np.minimum(np.floor(np.arange(out, dtype=np.float32) * ratio).astype(int), size - 1)
        m[np.arange(out), src] = 1.0
        return m
    src = _source_index(out, size, scale, align_corners, dt)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, size - 1)
    frac = (src - lo.astype(dt)).astype(np.float64)
    np.add.at(m, (np.arange(out), lo), 1.0 - frac)
    np.add.at(m, (np.arange(out), hi), frac)
    return m


def _interpolate(x, *, size, mode, scales, align_corners):
    nd = len(size)
    for d in range(nd):
        axis = x.ndim - nd + d
        dt = np.float64 if x.dtype == jnp.float64 else np.float32
        m = _resample_matrix(x.shape[axis], size[d], mode, scales[d], align_corners, dt)
        x = jnp.moveaxis(jnp.tensordot(x, jnp.asarray(m, x.dtype), axes=[[axis], [1]]), -1, axis)
    return x


conv = Op("conv", _conv, grad_name="ConvolutionBackward0")
conv_transpose = Op("conv_transpose", _conv_transpose, grad_name="ConvolutionBackward0")
max_pool = Op("max_pool", _max_pool, grad_name="MaxPool2DWithIndicesBackward0")
avg_pool = Op("avg_pool", _avg_pool, saves=SAVES_NONE, grad_name="AvgPool2DBackward0")
adaptive_avg_pool = Op("adaptive_avg_pool", _adaptive_avg_pool, saves=SAVES_NONE,
                       grad_name="AdaptiveAvgPool2DBackward0")
pad = Op("constant_pad_nd", _pad, saves=SAVES_NONE, grad_name="ConstantPadNdBackward0")
interpolate = Op("interpolate", _interpolate, saves=SAVES_NONE, grad_name="UpsampleBilinear2DBackward0")
