"""Convolution, pooling and resampling functions of `tapegrad.nn.functional` (channels-first)."""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from .._core import dtype as _dtype
from .._core.graph import Op, SAVES_NONE
from .._tensor.apply import apply
from .._tensor.tensor import Tensor


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
            raise RuntimeError(f"expected scalar type {_dtype.scalar_name(input.dtype)} but found "
                               f"{_dtype.scalar_name(p.dtype)}")


_SPEC = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW"), 3: ("NCDHW", "OIDHW", "NCDHW")}


def _conv(x, w, *b, stride, padding, dilation, groups):
    nd = w.ndim - 2
    dn = lax.conv_dimension_numbers(x.shape, w.shape, _SPEC[nd])
    out = lax.conv_general_dilated(x, w, stride, padding, rhs_dilation=dilation,
                                   feature_group_count=groups, dimension_numbers=dn)
    return out + b[0].reshape((-1,) + (1,) * nd) if b else out


conv_op = Op("conv", _conv, grad_name="ConvolutionBackward0")


def _check_conv(input, weight, stride, pads, dilation, nd) -> None:
    """PyTorch's argument checks for a convolution (XLA would refuse them, or give empty output)."""
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(p < 0 for pair in pads for p in pair):
        raise RuntimeError("negative padding is not supported")
    padded = [n + lo + hi for n, (lo, hi) in zip(input.shape[2:], pads)]
    kernel = [d * (k - 1) + 1 for d, k in zip(dilation, weight.shape[2:])]
    if any(k > n for k, n in zip(kernel, padded)):
        raise RuntimeError(f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
                           f"Kernel size: ({' x '.join(map(str, kernel))}). Kernel size can't be "
                           "greater than actual input size")


def _check_groups_bias(weight, bias, groups, transposed: bool) -> None:
    """PyTorch's checks of `groups` and of the bias's size (XLA would divide by zero, or
    broadcast the bias)."""
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    if not transposed and weight.shape[0] == 0:
        raise RuntimeError(f"Given groups={groups}, expected weight to be at least {groups} at "
                           f"dimension 0, but got weight of size {list(weight.shape)} instead")
    kernel = list(weight.shape[2:])
    if 0 in kernel:  # XLA fails to lower a convolution with an empty window
        raise RuntimeError("kernel size should be greater than zero, but got" + (
            f" kernel_height: {([1] + kernel)[-2]} kernel_width: {kernel[-1]}" if len(kernel) < 3
            else f": {' x '.join(map(str, kernel))} (TxHxW)"))
    c_out = weight.shape[1] * groups if transposed else weight.shape[0]
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != c_out):
        raise RuntimeError(f"Given {'transposed=1, ' if transposed else ''}weight of size "
                           f"{list(weight.shape)}, expected bias to be 1-dimensional with {c_out} "
                           f"elements, but got bias of size {list(bias.shape)} instead")


def _conv_nd(nd, input, weight, bias, stride, padding, dilation, groups, name):
    _check_dtypes(input, weight, bias)
    _check_groups_bias(weight, bias, groups, transposed=False)
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
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            total = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:])]
            pads = tuple((t // 2, t - t // 2) for t in total)
        else:
            raise RuntimeError(f"Invalid padding string: {padding!r}")
    else:
        pads = tuple((p, p) for p in _tuple(padding, nd, "padding"))
    _check_conv(input, weight, stride, pads, dilation, nd)
    out = apply(conv_op, input, weight, *(() if bias is None else (bias,)), stride=stride,
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


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """3-D convolution (cross-correlation) of `(N, C_in, D, H, W)` input."""
    return _conv_nd(3, input, weight, bias, stride, padding, dilation, groups, "conv3d")


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


conv_transpose_op = Op("conv_transpose", _conv_transpose, grad_name="ConvolutionBackward0")


def _check_conv_transpose(input, weight, stride, padding, output_padding, dilation) -> None:
    """PyTorch's argument checks for a transposed convolution (XLA would give another size)."""
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError("dilation should be greater than zero")
    if any(p < 0 for p in padding):
        raise RuntimeError("negative padding is not supported")
    if any(op < 0 for op in output_padding):
        raise RuntimeError("negative output_padding is not supported")
    if any(op >= s and op >= d for op, s, d in zip(output_padding, stride, dilation)):
        raise RuntimeError(f"output padding must be smaller than either stride or dilation, but "
                           f"got output_padding={list(output_padding)}, stride={list(stride)}, "
                           f"dilation={list(dilation)}")
    sizes = input.shape[2:]
    out = [(n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, s, p, d, k, op in
           zip(sizes, stride, padding, dilation, weight.shape[2:], output_padding)]
    if any(o < 1 for o in out):
        raise RuntimeError(f"Given input size per channel: ({' x '.join(map(str, sizes))}). "
                           f"Calculated output size per channel: ({' x '.join(map(str, out))}). "
                           "Output size is too small")


def _conv_transpose_nd(nd, input, weight, bias, stride, padding, output_padding, groups,
                       dilation, name):
    _check_dtypes(input, weight, bias)
    _check_groups_bias(weight, bias, groups, transposed=True)
    input, added = _batched(input, nd, name)
    if input.shape[1] != weight.shape[0]:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected "
                           f"input{list(input.shape)} to have {weight.shape[0]} channels, but got "
                           f"{input.shape[1]} channels instead")
    stride, padding = _tuple(stride, nd, "stride"), _tuple(padding, nd, "padding")
    output_padding, dilation = _tuple(output_padding, nd), _tuple(dilation, nd, "dilation")
    _check_conv_transpose(input, weight, stride, padding, output_padding, dilation)
    out = apply(conv_transpose_op, input, weight, *(() if bias is None else (bias,)),
                stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
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


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 3-D convolution; `weight` is `(C_in, C_out/groups, kD, kH, kW)`."""
    return _conv_transpose_nd(3, input, weight, bias, stride, padding, output_padding, groups,
                              dilation, "conv_transpose3d")


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
    if any(s == 0 for s in stride):
        raise RuntimeError("stride should not be zero")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"dilation should be greater than zero, but got dilation: "
                           f"{list(dilation)}")
    for p in padding:
        if p < 0:
            raise RuntimeError(f"pad must be non-negative, but got pad: {p}")
    for p, k, d in zip(padding, kernel, dilation):
        if p > (d * (k - 1) + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                               f"pad={p}, kernel_size={k} and dilation={d}")
    sizes = input.shape[input.ndim - nd:]
    extra = tuple(_pool_extra(n, k, s, p, d, ceil_mode)
                  for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation))
    return kernel, stride, padding, dilation, extra


def _pool_windows(x, kernel, stride, dilation, pads):
    """Every window's elements along a new last axis (the input padded with -inf), and the
    output's spatial sizes."""
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
    return jnp.stack(windows, axis=-1), outs


def _dilated_max_pool(x, kernel, stride, dilation, pads):
    """Max pooling with dilation (JAX has no VJP for it): the first maximum of each window by
    `argmax`, so ties go where PyTorch sends them."""
    w, _ = _pool_windows(x, kernel, stride, dilation, pads)
    first = jnp.argmax(w, axis=-1)[..., None]
    return jnp.take_along_axis(w, first, axis=-1)[..., 0]


def _max_pool_indices(x, *, kernel, stride, padding, dilation, extra):
    """Max pooling and, for each output, the flat index of its element in the input's spatial
    dimensions (PyTorch's `return_indices=True`): the first maximum of the window, NaN counting
    as the largest."""
    pads = tuple((p, p + e) for p, e in zip(padding, extra))
    w, outs = _pool_windows(x, kernel, stride, dilation, pads)
    first = jnp.argmax(w, axis=-1)
    values = jnp.take_along_axis(w, first[..., None], axis=-1)[..., 0]
    offsets = np.array(list(np.ndindex(*kernel))).reshape(-1, len(kernel))  # window -> offset
    sizes = x.shape[x.ndim - len(kernel):]
    flat = jnp.zeros(first.shape, jnp.int64)
    for d, (n, s, p, dil) in enumerate(zip(outs, stride, padding, dilation)):
        out_pos = lax.broadcasted_iota(jnp.int64, first.shape, first.ndim - len(kernel) + d)
        pos = out_pos * s - p + jnp.asarray(offsets[:, d], jnp.int64)[first] * dil
        flat = flat * sizes[d] + pos
    return values, flat


max_pool_indices_op = Op("max_pool_with_indices", _max_pool_indices, n_out=2,
                         grad_name="MaxPool2DWithIndicesBackward0")


def _window(x, kernel, stride, dilation, pads):
    lead = x.ndim - len(kernel)
    return ((1,) * lead + kernel, (1,) * lead + stride, ((0, 0),) * lead + pads,
            (1,) * lead + dilation)


def _max_pool_window(x, *, kernel, stride, padding, dilation, extra):
    pads = tuple((p, p + e) for p, e in zip(padding, extra))
    if any(d != 1 for d in dilation):
        return _dilated_max_pool(x, kernel, stride, dilation, pads)
    dims, strides, pads, dil = _window(x, kernel, stride, dilation, pads)
    # a Python scalar init keeps lax's max-monoid recognition (and so its derivative rule, which
    # sends the gradient to the first maximum of each window, as PyTorch)
    return lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, pads, window_dilation=dil)


max_pool_op = Op("max_pool", _max_pool_window, grad_name="MaxPool2DWithIndicesBackward0")


def _check_max_pool_input(nd: int, input: Tensor) -> None:
    """PyTorch's rank checks of max pooling (an unbatched rank too low would pool the batch)."""
    shape = list(input.shape)
    if nd == 1 and (input.ndim not in (2, 3) or 0 in shape[-2:]):
        raise RuntimeError(f"max_pool1d: Expected 2D or 3D (batch mode) tensor with optional 0 "
                           f"dim batch size for input, but got:{shape}")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"non-empty {nd + 1}D or {nd + 2}D (batch mode) tensor expected for "
                           f"input")
    if nd == 2 and 0 in shape[-3:]:
        raise RuntimeError(f"Expected 3D or 4D (batch mode) tensor with optional 0 dim batch "
                           f"size for input, but got:{shape}")


def _max_pool(nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    _check_max_pool_input(nd, input)
    kernel, stride, padding, dilation, extra = _pool_args(nd, input, kernel_size, stride,
                                                          padding, dilation, ceil_mode)
    op = max_pool_indices_op if return_indices else max_pool_op
    out = apply(op, input, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                extra=extra)
    return tuple(out) if return_indices else out


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor:
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor:
    """Max over windows of the last two dimensions (padding counts as -inf)."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _max_unpool(x, indices, *, size):
    """Scatter each value to its flat index in a zero tensor of spatial `size`. The scatter is
    declared to have unique indices so that its derivative is PyTorch's, a gather: an index
    repeated by overlapping pooling windows (which holds one value) reads the gradient at every
    repeat."""
    lead = x.shape[:x.ndim - len(size)]
    rows = math.prod(lead)
    flat_x, flat_i = x.reshape(rows, -1), indices.reshape(rows, -1)
    out = jnp.zeros((rows, math.prod(size)), x.dtype)
    out = out.at[jnp.arange(rows)[:, None], flat_i].set(flat_x, mode="drop", unique_indices=True)
    return out.reshape(lead + tuple(size))


max_unpool_op = Op("max_unpool", _max_unpool, saves=(1,), grad_name="MaxUnpool2DBackward0")


def _max_unpool_nd(nd, input, indices, kernel_size, stride, padding, output_size):
    if indices.dtype is not _dtype.int64:
        raise RuntimeError(f"elements in indices should be type int64 but got: "
                           f"{_dtype.scalar_name(indices.dtype)}")
    if tuple(indices.shape) != tuple(input.shape):
        raise RuntimeError(f"Expected shape of indices to be same as that of the input tensor "
                           f"({list(input.shape)}) but got indices tensor with shape: "
                           f"{list(indices.shape)}")
    kernel = _tuple(kernel_size, nd, "kernel_size")
    stride = kernel if stride is None or stride == [] or stride == () else _tuple(stride, nd)
    padding = _tuple(padding, nd)
    sizes = input.shape[input.ndim - nd:]
    default = tuple((n - 1) * s - 2 * p + k for n, s, p, k in zip(sizes, stride, padding, kernel))
    if output_size is None:
        size = default
    else:
        size = tuple(int(o) for o in output_size)[-nd:]
        for d, (o, want, s) in enumerate(zip(size, default, stride)):
            if not want - s < o < want + s:
                raise ValueError(f"invalid output_size \"{output_size}\" (dim {d} must be between "
                                 f"{want - s} and {want + s})")
    if input.numel() and int(indices.max()) >= math.prod(size):
        raise RuntimeError(f"Found an invalid max index: {int(indices.max())} (output volumes are "
                           f"of size {'x'.join(str(n) for n in size)}")
    return apply(max_unpool_op, input, indices, size=size)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """The inverse of `max_pool1d(return_indices=True)`: each value back at its index, zeros
    elsewhere."""
    return _max_unpool_nd(1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """The inverse of `max_pool2d(return_indices=True)`: each value back at its index, zeros
    elsewhere."""
    return _max_unpool_nd(2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    return _max_unpool_nd(3, input, indices, kernel_size, stride, padding, output_size)


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


def _avg_pool_window(x, *, kernel, stride, padding, extra, count_include_pad, divisor_override):
    pads = tuple((p, p + e) for p, e in zip(padding, extra))
    dims, strides, pads_full, dil = _window(x, kernel, stride, (1,) * len(kernel), pads)
    integer = jnp.issubdtype(x.dtype, jnp.integer)
    total = lax.reduce_window(x, jnp.zeros((), x.dtype) if integer else 0.0, lax.add, dims,
                              strides, pads_full, dil)
    if divisor_override:
        divisor = np.asarray(divisor_override)
    else:
        nd = len(kernel)
        divisor = np.ones(())
        for d in range(nd):
            v = _avg_divisor(x.shape[x.ndim - nd + d], kernel[d], stride[d], padding[d],
                             extra[d], count_include_pad)
            divisor = np.multiply.outer(divisor, v)
    if integer:  # PyTorch keeps an integer dtype, dividing toward zero
        return lax.div(total, jnp.broadcast_to(jnp.asarray(divisor, x.dtype), total.shape))
    return total / jnp.asarray(divisor, x.dtype)


avg_pool_op = Op("avg_pool", _avg_pool_window, saves=SAVES_NONE, grad_name="AvgPool2DBackward0")


def _avg_pool(nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    kernel, stride, padding, _, extra = _pool_args(nd, input, kernel_size, stride, padding, 1,
                                                   ceil_mode)
    return apply(avg_pool_op, input, kernel=kernel, stride=stride, padding=padding,
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


adaptive_avg_pool_op = Op("adaptive_avg_pool", _adaptive_avg_pool, saves=SAVES_NONE,
                          grad_name="AdaptiveAvgPool2DBackward0")


def _adaptive(nd, input, output_size):
    out = output_size if isinstance(output_size, (list, tuple)) else (output_size,) * nd
    if len(out) != nd:
        raise RuntimeError(f"adaptive_avg_pool1d() argument 'output_size' should contain one int "
                           f"(got {len(out)})" if nd == 1 else
                           f"adaptive_avg_pool{nd}d: output_size must be {nd}")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"Expected 2 to 3 dimensions, but got {input.ndim}-dimensional tensor "
                           f"for argument #1 'self' (while checking arguments for "
                           f"adaptive_avg_pool1d)" if nd == 1 else
                           f"adaptive_avg_pool{nd}d(): Expected {nd + 1}D or {nd + 2}D tensor, "
                           f"but got {list(input.shape)}")
    sizes = tuple(input.shape[input.ndim - nd:])
    out = tuple(s if o is None else int(o) for s, o in zip(sizes, out))
    shape = list(input.shape)
    if nd == 1:  # PyTorch pools 1-d input as 2-d: its words name the 2-d op and shape
        nd, shape = 2, shape[:-1] + [1] + shape[-1:]
    for d in range(len(shape) - nd - 1 if len(shape) == nd + 2 else 0, len(shape)):
        if shape[d] == 0:
            raise RuntimeError(f"adaptive_avg_pool{nd}d(): Expected input to have non-zero size "
                               f"for non-batch dimensions, but input has sizes {shape} with "
                               f"dimension {d} being empty")
    return apply(adaptive_avg_pool_op, input, output_size=out)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    return _adaptive(1, input, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Mean over PyTorch's adaptive windows, so the output has `output_size` (None keeps a size)."""
    return _adaptive(2, input, output_size)


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over windows of the last three dimensions."""
    return _avg_pool(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor:
    """Max over windows of the last three dimensions (padding counts as -inf)."""
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _adaptive_windows(sizes, output_size):
    """For each output position, the flat (row-major) input indices of its adaptive window,
    padded to the largest window, and which of them are real: `(prod(out), prod(K))` arrays."""
    nd = len(sizes)
    per_dim = []
    for n, o in zip(sizes, output_size):
        starts = (np.arange(o) * n) // o
        ends = -((-(np.arange(o) + 1) * n) // o)
        idx = starts[:, None] + np.arange((ends - starts).max(initial=1))
        per_dim.append((np.minimum(idx, n - 1), idx < ends[:, None]))
    shape = [i.shape[0] for i, _ in per_dim] + [i.shape[1] for i, _ in per_dim]
    flat, valid = np.zeros(shape, np.int64), np.ones(shape, bool)
    for d, (idx, ok) in enumerate(per_dim):
        axes = [1] * (2 * nd)
        axes[d], axes[nd + d] = idx.shape
        flat = flat + (idx * int(np.prod(sizes[d + 1:]))).reshape(axes)
        valid = valid & ok.reshape(axes)
    n_out, n_window = int(np.prod(shape[:nd])), int(np.prod(shape[nd:]))
    return flat.reshape(n_out, n_window), valid.reshape(n_out, n_window)


def _adaptive_max_pool(x, *, output_size):
    nd = len(output_size)
    lead, sizes = x.shape[:x.ndim - nd], x.shape[x.ndim - nd:]
    flat, valid = _adaptive_windows(sizes, output_size)
    xs = x.reshape(lead + (math.prod(sizes),))
    w = jnp.take(xs, jnp.asarray(flat.reshape(-1)), axis=-1).reshape(lead + flat.shape)
    low = -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min
    w = jnp.where(jnp.asarray(valid), w, jnp.asarray(low, x.dtype))
    first = jnp.argmax(w, axis=-1)[..., None]  # the first maximum (or NaN), as PyTorch's kernel
    values = jnp.take_along_axis(w, first, axis=-1)[..., 0]
    where = jnp.take_along_axis(jnp.broadcast_to(jnp.asarray(flat), w.shape), first, axis=-1)
    out = lead + tuple(output_size)
    return values.reshape(out), where[..., 0].reshape(out)


adaptive_max_pool_op = Op("adaptive_max_pool", _adaptive_max_pool, n_out=2, saves=(0,),
                          grad_name="AdaptiveMaxPool2DBackward0")


def _adaptive_max(nd, input, output_size, return_indices, name):
    if isinstance(output_size, (list, tuple)) and nd > 1 and input.ndim <= len(output_size):
        raise ValueError(f"Input dimension should be at least {len(output_size) + 1}")
    if input.ndim not in (nd + 1, nd + 2):
        if nd == 1:
            raise RuntimeError(f"Expected 2 to 3 dimensions, but got {input.ndim}-dimensional "
                               f"tensor for argument #1 'self' (while checking arguments for {name})")
        raise RuntimeError(f"{name}(): Expected {nd + 1}D or {nd + 2}D tensor, but got: "
                           f"{list(input.shape)}")
    out = output_size if isinstance(output_size, (list, tuple)) else (output_size,) * nd
    if len(out) != nd:
        raise RuntimeError(f"{name}(): internal error: output_size.size() must be {nd}")
    sizes = tuple(input.shape[input.ndim - nd:])
    out = tuple(s if o is None else int(o) for s, o in zip(sizes, out))
    for d in range(input.ndim - nd - 1 if input.ndim == nd + 2 else 0, input.ndim):
        if input.shape[d] == 0:
            raise RuntimeError(f"{name}(): Expected input to have non-zero size for non-batch "
                               f"dimensions, but input has sizes {list(input.shape)} with "
                               f"dimension {d} being empty")
    values, indices = apply(adaptive_max_pool_op, input, output_size=out)
    return (values, indices) if return_indices else values


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """Max over PyTorch's adaptive windows of the last dimension; `return_indices` also gives
    each maximum's position in that dimension."""
    return _adaptive_max(1, input, output_size, return_indices, "adaptive_max_pool1d")


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Max over adaptive windows of the last two dimensions (None keeps a size); indices are
    positions in the flattened `H * W` plane."""
    return _adaptive_max(2, input, output_size, return_indices, "adaptive_max_pool2d")


def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False):
    return _adaptive_max(3, input, output_size, return_indices, "adaptive_max_pool3d")


# -- resampling -----------------------------------------------------------------------------------
_MODES = {"nearest": None, "nearest-exact": None, "area": None, "linear": 1, "bilinear": 2,
          "bicubic": 2, "trilinear": 3}
_CUBIC_A = -0.75  # PyTorch's (and OpenCV's) cubic convolution coefficient


def _source_index(out, size, scale, align_corners, dt, cubic=False):
    """PyTorch's `area_pixel_compute_source_index` for linear modes, in the input's precision
    (cubic modes keep negative positions)."""
    dst = np.arange(out).astype(dt)
    if align_corners:
        ratio = dt(size - 1) / dt(out - 1) if out > 1 else dt(0)
        return dst * ratio
    ratio = dt(1) / dt(scale) if scale else dt(size) / dt(out)
    src = (dst + dt(0.5)) * ratio - dt(0.5)
    return src if cubic else np.maximum(src, dt(0))


def _cubic_weights(t, dt):
    """The weights of the 4 neighbours at offsets -1, 0, 1, 2 of a point `t` past the second."""
    a = dt(_CUBIC_A)

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _resample_matrix(size, out, mode, scale, align_corners, dt):
    m = np.zeros((out, size))
    rows = np.arange(out)
    if mode in ("nearest", "nearest-exact"):
        ratio = np.float32(1.0 / scale) if scale else np.float32(size) / np.float32(out)
        dst = np.arange(out, dtype=np.float32) + np.float32(0.5 if mode == "nearest-exact" else 0)
        src = np.minimum(np.floor(dst * ratio).astype(int), size - 1)
        m[rows, src] = 1.0
        return m
    if mode == "area":
        return _adaptive_matrix(size, out)
    if mode == "bicubic":
        src = _source_index(out, size, scale, align_corners, dt, cubic=True)
        lo = np.floor(src).astype(int)
        for k, w in enumerate(_cubic_weights((src - lo.astype(dt)).astype(dt), dt)):
            np.add.at(m, (rows, np.clip(lo - 1 + k, 0, size - 1)), w.astype(np.float64))
        return m
    src = _source_index(out, size, scale, align_corners, dt)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, size - 1)
    frac = (src - lo.astype(dt)).astype(np.float64)
    np.add.at(m, (rows, lo), 1.0 - frac)
    np.add.at(m, (rows, hi), frac)
    return m


def _uint8_linear_matrix(size, out, scale, align_corners):
    """PyTorch's uint8 linear resampling weights, in double, as its CPU kernel computes them."""
    if align_corners:
        ratio = (size - 1) / (out - 1) if out > 1 else 0.0
    else:
        ratio = 1.0 / scale if scale else size / out
    delta = 0.5 if align_corners else 0.0
    m = np.zeros((out, size))
    for i in range(out):
        center = ratio * (i + 0.5 - delta)
        lo = max(int(center - 1.0 + 0.5 + delta), 0)  # C++'s truncation toward zero, then clamp
        n = min(max(min(int(center + 1.0 + 0.5 + delta), size) - lo, 0), 2)
        w = np.maximum(1.0 - np.abs(np.arange(lo, lo + n) - center + 0.5 - delta), 0.0)
        if w.sum():
            m[i, lo:lo + n] = w / w.sum()
    return m


def _int16_weights(m):
    """Weights `m` rounded to int16 at the finest precision (bits) that holds them, as
    PyTorch's uint8 kernel does: (integer weights, precision)."""
    precision = 0
    while precision < 22 and int(0.5 + m.max() * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    scaled = m * (1 << precision)
    return np.where(scaled < 0, (-0.5 + scaled).astype(np.int64), (0.5 + scaled).astype(np.int64)), \
        precision


def _interpolate_uint8(x, *, size, mode, scales, align_corners):
    """Bilinear and bicubic uint8 as PyTorch's CPU kernel: one pass per resized dimension, the
    last first, each in integer arithmetic with int16 weights (bicubic's are the float kernel's
    clamped taps, in double), rounded and saturated back to uint8."""
    nd = len(size)
    for d in reversed(range(nd)):
        axis = x.ndim - nd + d
        if x.shape[axis] == size[d]:
            continue  # PyTorch skips a dimension whose size does not change
        m = (_resample_matrix(x.shape[axis], size[d], "bicubic", scales[d], align_corners,
                              np.float64) if mode == "bicubic" else
             _uint8_linear_matrix(x.shape[axis], size[d], scales[d], align_corners))
        w, precision = _int16_weights(m)
        acc = jnp.tensordot(x.astype(jnp.int32), jnp.asarray(w, jnp.int32), axes=[[axis], [1]])
        acc = (acc + (1 << (precision - 1))) >> precision
        x = jnp.moveaxis(jnp.clip(acc, 0, 255).astype(jnp.uint8), -1, axis)
    return x


def _interpolate(x, *, size, mode, scales, align_corners):
    nd = len(size)
    if x.dtype == jnp.uint8 and mode in ("bilinear", "bicubic"):
        return _interpolate_uint8(x, size=size, mode=mode, scales=scales,
                                  align_corners=align_corners)
    for d in range(nd):
        axis = x.ndim - nd + d
        dt = np.float64 if x.dtype == jnp.float64 else np.float32
        m = _resample_matrix(x.shape[axis], size[d], mode, scales[d], align_corners, dt)
        x = jnp.moveaxis(jnp.tensordot(x, jnp.asarray(m, x.dtype), axes=[[axis], [1]]), -1, axis)
    return x


_UPSAMPLE_NAMES = {"nearest": "Nearest", "nearest-exact": "NearestExact", "linear": "Linear",
                   "bilinear": "Bilinear", "bicubic": "Bicubic", "trilinear": "Trilinear"}


def _interpolate_grad_name(static, inputs) -> str:
    """PyTorch's grad_fn by mode and dimension (`area` is an adaptive average pool)."""
    nd = len(static["size"])
    if static["mode"] == "area":
        return f"AdaptiveAvgPool{nd}DBackward0"
    return f"Upsample{_UPSAMPLE_NAMES[static['mode']]}{nd}DBackward0"


interpolate_op = Op("interpolate", _interpolate, saves=SAVES_NONE,
                    grad_name=_interpolate_grad_name)


def _integer_kernel(mode: str, nd: int) -> str:
    """The PyTorch CPU kernel named when it refuses an integer input in `mode`."""
    if mode in ("nearest", "nearest-exact"):
        return "upsample_nearest2d_channels_last" if nd == 2 else "compute_indices_weights_nearest"
    if mode == "area":
        return "adaptive_avg_pool3d_cpu" if nd == 3 else "adaptive_avg_pool2d"
    return {"bilinear": "upsample_bilinear2d_channels_last",
            "bicubic": "compute_indices_weights_cubic"}.get(mode, "compute_indices_weights_linear")


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize the spatial dimensions: `nearest`, `nearest-exact`, `area` (any dimension),
    `linear` (3-d input), `bilinear`, `bicubic` (4-d), `trilinear` (5-d)."""
    if mode not in _MODES:
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got "
                                  f"{input.ndim}D) for the modes: nearest | linear | bilinear | "
                                  f"bicubic | trilinear | area | nearest-exact (got {mode})")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported by tapegrad")
    nd = input.ndim - 2
    if _MODES[mode] is not None and _MODES[mode] != nd:
        raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs "
                                  f"{_MODES[mode] + 2}D input")
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if not (input.dtype.is_floating_point or input.dtype.is_complex) and \
            (input.dtype is not _dtype.uint8 or mode in ("linear", "trilinear", "area")):
        raise NotImplementedError(f'"{_integer_kernel(mode, nd)}" not implemented for '
                                  f"'{_dtype.scalar_name(input.dtype)}'")
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    sizes = tuple(input.shape[2:])
    given, what, fmt = (size, "output size of", "output size in (o1, o2, ...,oK)") \
        if size is not None else (scale_factor, "scale_factor of shape", "scale_factor in (s1, s2, ...,sK)")
    if isinstance(given, (list, tuple)) and len(given) != nd:
        raise ValueError(f"Input and {'output' if size is not None else 'scale_factor'} must "
                         f"have the same number of spatial dimensions, but got input with "
                         f"spatial dimensions of {list(sizes)} and {what} {tuple(given)}. Please "
                         f"provide input tensor in (N, C, d1, d2, ...,dK) format and {fmt} format.")
    if size is not None:
        out = _tuple(size, nd, "size")
        scales = (None,) * nd
    else:
        factors = tuple(scale_factor) if isinstance(scale_factor, (list, tuple)) else (scale_factor,) * nd
        out = tuple(int(math.floor(n * float(f))) for n, f in zip(sizes, factors))
        scales = (None,) * nd if recompute_scale_factor else tuple(float(f) for f in factors)
    if any(o <= 0 for o in out) or any(n <= 0 for n in sizes):
        raise RuntimeError(f"Input and output sizes should be greater than 0, but got input "
                           f"{tuple(sizes)} and output {tuple(out)}")
    return apply(interpolate_op, input, size=out, mode=mode, scales=scales,
                 align_corners=bool(align_corners))
