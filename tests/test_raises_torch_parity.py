"""Calls where PyTorch raises and tapegrad used to return a value: the same error type and
message (each program runs unchanged on `torch` and on `tapegrad`)."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")


def _pad(m, shape, pad, mode):
    return m.nn.functional.pad(m.zeros(shape), pad, mode=mode)


RAISES = {
    "reflect_left": lambda m: _pad(m, (1, 1, 3), (3, 0), "reflect"),
    "reflect_right": lambda m: _pad(m, (1, 1, 3), (0, 3), "reflect"),
    "reflect_2d_height": lambda m: _pad(m, (1, 1, 3, 4), (0, 0, 3, 0), "reflect"),
    "reflect_2d_width": lambda m: _pad(m, (1, 4, 5), (5, 1, 0, 0), "reflect"),
    "reflect_3d_depth": lambda m: _pad(m, (1, 2, 3, 3, 3), (0, 0, 0, 0, 0, 3), "reflect"),
    "reflect_empty": lambda m: _pad(m, (1, 1, 0), (0, 0), "reflect"),
    "replicate_empty_2d": lambda m: _pad(m, (2, 0, 3), (1, 1, 1, 1), "replicate"),
    "reflect_1d_input": lambda m: _pad(m, (3,), (1, 1), "reflect"),
    "replicate_too_many": lambda m: _pad(m, (2, 3), (1, 1, 1, 1), "replicate"),
    "circular_twice": lambda m: _pad(m, (1, 1, 3), (4, 0), "circular"),
    "circular_twice_2d": lambda m: _pad(m, (1, 1, 3, 3), (0, 0, 0, 4), "circular"),
    "squeeze_0d": lambda m: m.tensor(1.0).squeeze(10),
    "squeeze_0d_negative": lambda m: m.tensor(1.0).squeeze(-2),
    "squeeze_0d_dims": lambda m: m.tensor(1.0).squeeze((0, 1)),
    "cumsum_0d": lambda m: m.tensor(1.0).cumsum(dim=1),
    "cumprod_0d": lambda m: m.tensor(1.0).cumprod(dim=-2),
    "sort_0d": lambda m: m.tensor(1.0).sort(1),
    "argsort_0d": lambda m: m.tensor(1.0).argsort(dim=1),
    "argmax_0d": lambda m: m.tensor(1.0).argmax(1),
    "linspace_bool": lambda m: m.linspace(0, 1, 5, dtype=m.bool),
    "div_rounding_mode": lambda m: m.div(m.ones(2), 2, rounding_mode="typo"),
    "div_rounding_mode_inplace": lambda m: m.ones(2).div_(2, rounding_mode="typo"),
    # bad arguments that reached XLA or tapegrad's own arithmetic (issue 14 §2)
    "conv_padding_string": lambda m: m.nn.functional.conv1d(
        m.ones(1, 1, 3), m.ones(1, 1, 2), padding="bogus"),
    "conv_bias_size": lambda m: m.nn.functional.conv2d(
        m.ones(1, 1, 3, 3), m.ones(1, 1, 2, 2), bias=m.ones(3)),
    "conv_bias_2d": lambda m: m.nn.functional.conv2d(
        m.ones(1, 1, 3, 3), m.ones(1, 1, 2, 2), bias=m.ones(1, 1)),
    "conv_groups_zero": lambda m: m.nn.functional.conv2d(
        m.ones(1, 1, 3, 3), m.ones(1, 1, 2, 2), groups=0),
    "conv_transpose_groups_zero": lambda m: m.nn.functional.conv_transpose2d(
        m.ones(1, 1, 3, 3), m.ones(1, 1, 2, 2), groups=0),
    "conv_transpose_groups_negative": lambda m: m.nn.functional.conv_transpose2d(
        m.ones(1, 1, 3, 3), m.ones(1, 1, 2, 2), groups=-1),
    "conv_transpose_bias_size": lambda m: m.nn.functional.conv_transpose2d(
        m.ones(1, 1, 3, 3), m.ones(1, 1, 2, 2), bias=m.ones(3)),
    "adaptive_avg_pool1d_empty": lambda m: m.nn.functional.adaptive_avg_pool1d(
        m.ones(1, 1, 0), 2),
    "adaptive_avg_pool2d_empty": lambda m: m.nn.functional.adaptive_avg_pool2d(
        m.ones(1, 1, 0, 3), 2),
    "adaptive_avg_pool2d_empty_channels": lambda m: m.nn.functional.adaptive_avg_pool2d(
        m.ones(1, 0, 3), 2),
    "matmul_dtypes_2d": lambda m: m.ones(2, 3) @ m.ones(3, 2, dtype=m.float64),
    "matmul_dtypes_int_float": lambda m: m.ones(2, 3, dtype=m.int64) @ m.ones(3, 2),
    "matmul_dtypes_half": lambda m: m.ones(2, 3, dtype=m.float16) @ m.ones(3, 2),
    "matmul_dtypes_vec_mat": lambda m: m.ones(3) @ m.ones(3, 2, dtype=m.float64),
    "matmul_dtypes_mat_vec": lambda m: m.ones(2, 3) @ m.ones(3, dtype=m.float64),
    "matmul_dtypes_dot": lambda m: m.ones(3) @ m.ones(3, dtype=m.float64),
    "matmul_dtypes_batched": lambda m: m.ones(2, 2, 3) @ m.ones(2, 3, 2, dtype=m.int64),
    "matmul_dtypes_batched_mat": lambda m: m.ones(2, 2, 3) @ m.ones(3, 2, dtype=m.float64),
    "split_negative": lambda m: m.ones(2, 3).split(-1),
    "cat_empty": lambda m: m.cat([]),
    "stack_empty": lambda m: m.stack([]),
    "random_from_to": lambda m: m.zeros(2).random_(3, 3),
    "random_to_zero": lambda m: m.zeros(2).random_(0),
    "label_smoothing": lambda m: m.nn.functional.cross_entropy(
        m.ones(2, 3), m.zeros(2, dtype=m.int64), label_smoothing=1.5),
    "svd_int": lambda m: m.linalg.svd(m.ones(2, 2, dtype=m.int64)),
    "qr_int": lambda m: m.linalg.qr(m.ones(2, 2, dtype=m.int64)),
    "inv_int": lambda m: m.linalg.inv(m.ones(2, 2, dtype=m.int64)),
    "softmax_int": lambda m: m.nn.functional.softmax(m.ones(3, dtype=m.int64), 0),
    "softmax_int_dim0": lambda m: m.softmax(m.ones(2, 3, dtype=m.int64), 0),
    "log_softmax_int32": lambda m: m.log_softmax(m.ones(3, dtype=m.int32), 0),
    "softmax_bool": lambda m: m.softmax(m.ones(3, dtype=m.bool), 0),
    "rand_int": lambda m: m.rand(2, dtype=m.int32),
    "randn_bool": lambda m: m.randn(2, dtype=m.bool),
    "sdpa_dropout_above_one": lambda m: m.nn.functional.scaled_dot_product_attention(
        m.ones(1, 2, 3), m.ones(1, 2, 3), m.ones(1, 2, 3), dropout_p=2.0),
    # a second sweep: an MLIR lowering error, JAX's and Python's errors, silent results
    "conv1d_empty_kernel": lambda m: m.nn.functional.conv1d(m.ones(1, 1, 3), m.ones(1, 1, 0)),
    "conv2d_empty_kernel": lambda m: m.nn.functional.conv2d(
        m.ones(1, 1, 3, 3), m.ones(1, 1, 0, 2)),
    "conv3d_empty_kernel": lambda m: m.nn.functional.conv3d(
        m.ones(1, 1, 3, 3, 3), m.ones(1, 1, 2, 0, 2)),
    "conv2d_no_out_channels": lambda m: m.nn.functional.conv2d(
        m.ones(1, 1, 3, 3), m.ones(0, 1, 2, 2)),
    "conv_transpose_negative_output_padding": lambda m: m.nn.functional.conv_transpose1d(
        m.ones(1, 1, 3), m.ones(1, 1, 2), stride=2, output_padding=-1),
    "sum_dim_twice": lambda m: m.ones(2).sum(dim=(0, 0)),
    "mean_dim_twice_negative": lambda m: m.ones(2, 2).mean(dim=(0, -2)),
    "full_int8_overflow": lambda m: m.full((2,), 1000, dtype=m.int8),
    "full_int32_overflow": lambda m: m.full((2,), 2 ** 40, dtype=m.int32),
    "fill_int8_overflow": lambda m: m.zeros(2, dtype=m.int8).fill_(1000),
    "exponential_negative": lambda m: m.ones(2).exponential_(-1.0),
    "exponential_zero": lambda m: m.ones(2).exponential_(0.0),
    "arange_inf": lambda m: m.arange(0, float("inf")),
    "arange_nan": lambda m: m.arange(0, float("nan")),
    "tensordot_negative_dims": lambda m: m.tensordot(m.ones(2, 3), m.ones(3, 2), dims=-1),
    "lerp_end_dtype": lambda m: m.lerp(m.ones(2), m.ones(2, dtype=m.float64), 0.5),
    "lerp_weight_dtype": lambda m: m.lerp(m.ones(2), m.ones(2), m.ones(2, dtype=m.float64)),
    "amax_empty_dim": lambda m: m.ones(0).amax(0),
    "amin_empty_dim": lambda m: m.ones(0, 3).amin(0),
    "argmax_empty_dim": lambda m: m.ones(0, 3).argmax(0),
    "max_empty_dim": lambda m: m.ones(0, 3).max(0),
    "max_pool2d_2d_input": lambda m: m.nn.functional.max_pool2d(m.ones(4, 4), 2),
    "max_pool2d_5d_input": lambda m: m.nn.functional.max_pool2d(m.ones(1, 1, 1, 4, 4), 2),
    "max_pool2d_no_channels": lambda m: m.nn.functional.max_pool2d(m.ones(1, 0, 4, 4), 2),
    "max_pool1d_1d_input": lambda m: m.nn.functional.max_pool1d(m.ones(4), 2),
    "max_pool3d_3d_input": lambda m: m.nn.functional.max_pool3d(m.ones(4, 4, 4), 2),
    "adaptive_avg_pool2d_output_size": lambda m: m.nn.functional.adaptive_avg_pool2d(
        m.ones(1, 1, 4, 4), (2,)),
    "adaptive_avg_pool1d_output_size": lambda m: m.nn.functional.adaptive_avg_pool1d(
        m.ones(1, 1, 4), (2, 2)),
    "adaptive_avg_pool2d_1d_input": lambda m: m.nn.functional.adaptive_avg_pool2d(m.ones(4), 2),
    "adaptive_avg_pool1d_1d_input": lambda m: m.nn.functional.adaptive_avg_pool1d(m.ones(4), 2),
    "interpolate_size_length": lambda m: m.nn.functional.interpolate(m.ones(1, 1, 4, 4),
                                                                     size=(2,)),
    "interpolate_scale_length": lambda m: m.nn.functional.interpolate(m.ones(1, 1, 4, 4),
                                                                      scale_factor=(2.0,)),
    "cross_entropy_weight_dtype": lambda m: m.nn.functional.cross_entropy(
        m.ones(2, 3), m.zeros(2, dtype=m.int64), weight=m.ones(3, dtype=m.float64)),
    "nll_loss_weight_dtype": lambda m: m.nn.functional.nll_loss(
        m.ones(2, 3, dtype=m.float64), m.zeros(2, dtype=m.int64), weight=m.ones(3)),
    "leaky_relu_int": lambda m: m.nn.functional.leaky_relu(m.ones(2, dtype=m.int64)),
    "leaky_relu_bool": lambda m: m.nn.functional.leaky_relu(m.ones(2, dtype=m.bool)),
    "elu_int": lambda m: m.nn.functional.elu(m.ones(2, dtype=m.int64)),
    "gelu_int": lambda m: m.nn.functional.gelu(m.ones(2, dtype=m.int64)),
    "silu_int": lambda m: m.nn.functional.silu(m.ones(2, dtype=m.int64)),
    "softplus_int": lambda m: m.nn.functional.softplus(m.ones(2, dtype=m.int64)),
    "mse_loss_int": lambda m: m.nn.functional.mse_loss(m.ones(2, dtype=m.int64),
                                                       m.ones(2, dtype=m.int64)),
    "smooth_l1_loss_int": lambda m: m.nn.functional.smooth_l1_loss(m.ones(2, dtype=m.int64),
                                                                   m.ones(2, dtype=m.int64)),
    "bernoulli_int": lambda m: m.bernoulli(m.ones(2, dtype=m.int64)),
    "randperm_bool": lambda m: m.randperm(3, dtype=m.bool),
    "randperm_int8_overflow": lambda m: m.randperm(300, dtype=m.int8),
    # the last gaps of issue 14's audit
    "tensor_split_float_tensor": lambda m: m.tensor_split(m.arange(6.0), m.tensor([1.0, 2.0])),
    "tensor_split_float_0d": lambda m: m.arange(6.0).tensor_split(m.tensor(2.0)),
    "tensor_split_int32_tensor": lambda m: m.tensor_split(m.arange(6.0),
                                                          m.tensor([1], dtype=m.int32)),
    "tensor_split_bool_tensor": lambda m: m.tensor_split(m.arange(6.0), m.tensor([True])),
    "tensor_split_2d_tensor": lambda m: m.tensor_split(m.arange(6.0), m.tensor([[1]])),
    "isin_complex": lambda m: m.isin(m.tensor([1j]), m.tensor([1j])),
    "isin_complex_test": lambda m: m.isin(m.tensor([1.0]), m.tensor([1j], dtype=m.complex128)),
    "isin_complex_scalar": lambda m: m.isin(m.tensor([1.0]), 1j),
    "isin_complex_elements_scalar_test": lambda m: m.isin(m.tensor([1j]), 1),
    "masked_select_shapes": lambda m: m.masked_select(m.ones(3), m.ones(2, dtype=m.bool)),
    "masked_select_shapes_2d": lambda m: m.masked_select(m.ones(2, 3),
                                                         m.ones(4, 1, dtype=m.bool)),
    "normal_shapes": lambda m: m.normal(m.zeros(3), m.ones(2)),
    "normal_shapes_2d": lambda m: m.normal(m.zeros(2, 3), m.ones(4, 1)),
    "narrow_start_past_end": lambda m: m.arange(6.0).narrow(0, 7, 1),
    "narrow_start_before_begin": lambda m: m.arange(6.0).narrow(0, -7, 1),
    "narrow_start_tensor": lambda m: m.arange(6.0).narrow(0, m.tensor(7), 1),
    "narrow_length_negative": lambda m: m.arange(6.0).narrow(0, 7, -1),
    "narrow_too_long": lambda m: m.arange(6.0).narrow(0, -2, 3),
    "vector_norm_fro": lambda m: m.linalg.vector_norm(m.arange(3.0), ord="fro"),
    "vector_norm_none": lambda m: m.linalg.vector_norm(m.arange(3.0), ord=None),
}

# a string (or number) as `dtype=`: PyTorch's TypeError; tapegrad's message is PyTorch's without
# the function's name ("zeros(): ") or, where PyTorch lists its overloads, its key words
DTYPE_STRINGS = {
    "zeros": lambda m, d: m.zeros(3, dtype=d),
    "ones": lambda m, d: m.ones(3, dtype=d),
    "empty": lambda m, d: m.empty(3, dtype=d),
    "full": lambda m, d: m.full((2,), 1.0, dtype=d),
    "tensor": lambda m, d: m.tensor([1.0], dtype=d),
    "as_tensor": lambda m, d: m.as_tensor([1.0], dtype=d),
    "arange": lambda m, d: m.arange(3, dtype=d),
    "linspace": lambda m, d: m.linspace(0, 1, 3, dtype=d),
    "eye": lambda m, d: m.eye(2, dtype=d),
    "randn": lambda m, d: m.randn(2, dtype=d),
    "rand": lambda m, d: m.rand(2, dtype=d),
    "randint": lambda m, d: m.randint(0, 3, (2,), dtype=d),
    "randperm": lambda m, d: m.randperm(3, dtype=d),
    "zeros_like": lambda m, d: m.zeros_like(m.ones(2), dtype=d),
    "full_like": lambda m, d: m.full_like(m.ones(2), 2.0, dtype=d),
    "randn_like": lambda m, d: m.randn_like(m.ones(2), dtype=d),
    "new_zeros": lambda m, d: m.ones(2).new_zeros(2, dtype=d),
    "new_full": lambda m, d: m.ones(2).new_full((2,), 1.0, dtype=d),
    "sum": lambda m, d: m.ones(2).sum(dtype=d),
    "cumsum": lambda m, d: m.ones(2).cumsum(0, dtype=d),
    "softmax": lambda m, d: m.nn.functional.softmax(m.ones(2), 0, dtype=d),
}

# the same calls at their limits, which PyTorch accepts: the values must agree
ACCEPTS = {
    "reflect_limit": lambda m: _pad(m, (1, 1, 3), (2, 2), "reflect"),
    "circular_limit": lambda m: _pad(m, (1, 1, 3), (3, 3), "circular"),
    "circular_unbatched": lambda m: _pad(m, (1, 3), (1, 1), "circular"),
    "squeeze_0d": lambda m: m.tensor(1.0).squeeze(-1),
    "cumsum_0d": lambda m: m.tensor(2.0).cumsum(dim=0),
    "cumprod_0d": lambda m: m.tensor(2.0).cumprod(dim=-1),
    "sort_0d": lambda m: m.tensor(2.0).sort(0).values,
    "median_empty": lambda m: m.ones(0).median(),
    "median_empty_2d": lambda m: m.ones(0, 3).median(),
    "softmax_int_cast": lambda m: m.nn.functional.softmax(m.ones(3, dtype=m.int64), 0,
                                                          dtype=m.float32),
    "matmul_same_dtype": lambda m: m.ones(2, 3, dtype=m.float64) @ m.ones(3, dtype=m.float64),
    "sdpa_dropout_negative": lambda m: m.nn.functional.scaled_dot_product_attention(
        m.ones(1, 2, 3), m.ones(1, 2, 3), m.ones(1, 2, 3), dropout_p=-0.5),
    "adaptive_avg_pool_empty_batch": lambda m: m.nn.functional.adaptive_avg_pool2d(
        m.ones(0, 1, 4, 4), 2),
    "full_uint8_negative_wraps": lambda m: m.full((2,), -1, dtype=m.uint8),
    "fill_uint8_negative_wraps": lambda m: m.zeros(2, dtype=m.uint8).fill_(-1),
    "full_int8_float_truncates": lambda m: m.full((2,), 1.5, dtype=m.int8),
    "argmax_nonempty_dim": lambda m: m.ones(0, 3).argmax(1),
    "amax_of_all_dims": lambda m: m.ones(2, 3).amax((0, 1)),
    "conv_transpose_output_padding": lambda m: m.nn.functional.conv_transpose1d(
        m.ones(1, 1, 3), m.ones(1, 1, 2), stride=2, output_padding=1),
    "max_pool2d_empty_batch": lambda m: m.nn.functional.max_pool2d(m.ones(0, 1, 4, 4), 2),
    "mse_loss_int_float": lambda m: m.nn.functional.mse_loss(m.ones(2, dtype=m.int64), m.ones(2)),
    "relu_int": lambda m: m.nn.functional.relu(m.ones(2, dtype=m.int64)),
    "interpolate_sizes": lambda m: m.nn.functional.interpolate(m.ones(1, 1, 4, 4), size=(2, 3)),
    "tensor_split_long_tensor": lambda m: m.stack(m.tensor_split(m.arange(6.0), m.tensor(2))),
    "tensor_split_long_indices": lambda m: m.tensor_split(m.arange(6.0), m.tensor([1, 3]))[1],
    "isin_float_int": lambda m: m.isin(m.tensor([1.0, 2.0]), m.tensor([1])),
    "masked_select_broadcasts": lambda m: m.masked_select(m.arange(6.0).reshape(2, 3),
                                                          m.tensor([True, False, True])),
    "normal_broadcasts_shape": lambda m: m.normal(m.zeros(3), m.zeros(3, 1)),
    "narrow_at_end": lambda m: m.arange(6.0).narrow(0, 6, 0),
    "narrow_negative_start": lambda m: m.arange(6.0).narrow(0, -6, 6),
    "dtype_python_float": lambda m: m.zeros(2, dtype=float),
    "batch_norm_empty_batch": lambda m: m.nn.functional.batch_norm(
        m.ones(0, 3), m.zeros(3), m.ones(3), training=True),
    "batch_norm_empty_spatial": lambda m: m.nn.functional.batch_norm(
        m.ones(2, 3, 0), m.zeros(3), m.ones(3), training=True),
}


@pytest.mark.parametrize("name", list(RAISES))
def test_raises_as_pytorch(name):
    with pytest.raises(Exception) as want:
        RAISES[name](torch)
    with pytest.raises(type(want.value), match="^" + re.escape(str(want.value)) + "$"):
        RAISES[name](tg)


@pytest.mark.parametrize("name", list(ACCEPTS))
def test_accepts_as_pytorch(name):
    want, got = ACCEPTS[name](torch), ACCEPTS[name](tg)
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_array_equal(np.asarray(got.tolist()), np.asarray(want.tolist()))  # NaN too


@pytest.mark.parametrize("bad", ["float32", 3], ids=["str", "int"])
@pytest.mark.parametrize("name", list(DTYPE_STRINGS))
def test_dtype_argument_must_be_a_dtype(name, bad):
    with pytest.raises(TypeError) as want:
        DTYPE_STRINGS[name](torch, bad)
    with pytest.raises(TypeError) as got:
        DTYPE_STRINGS[name](tg, bad)
    if "invalid combination" in str(want.value):  # PyTorch lists the overloads instead
        assert f"dtype={type(bad).__name__}" in str(want.value)
        assert str(got.value) == f"argument 'dtype' must be torch.dtype, not {type(bad).__name__}"
    else:
        assert str(want.value) == f"{name}(): {got.value}"


def test_batch_norm_of_an_empty_batch_leaves_its_statistics():
    """PyTorch returns an empty result, zero gradients for weight and bias, and leaves the running
    statistics as they were (a module still counts the batch)."""
    results = []
    for m in (torch, tg):
        x = m.ones(0, 3, 2, requires_grad=True)
        w, b = m.full((3,), 2.0, requires_grad=True), m.ones(3, requires_grad=True)
        rm, rv = m.full((3,), 0.5), m.full((3,), 2.0)
        y = m.nn.functional.batch_norm(x, rm, rv, w, b, training=True)
        y.sum().backward()
        bn = m.nn.BatchNorm1d(3)
        bn.running_mean.fill_(0.25)
        bn(m.ones(0, 3))
        results.append([tuple(y.shape), tuple(x.grad.shape), w.grad.tolist(), b.grad.tolist(),
                        rm.tolist(), rv.tolist(), bn.running_mean.tolist(),
                        bn.running_var.tolist(), int(bn.num_batches_tracked)])
    assert results[0] == results[1]
