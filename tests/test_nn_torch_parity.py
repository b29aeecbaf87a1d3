"""`tapegrad.nn.functional` against PyTorch: the same call, values and gradients (float64).

Each case calls the function of the same name in both libraries with the same arguments: float
arrays become tensors that require grad, integer and bool arrays become plain tensors, other
values pass through. Inputs include ties (relu6 at 0 and 6, max_pool with equal entries, ...),
so PyTorch's subgradients are checked too. Each case also checks which nn registry row it
records (`ROW_OF`); `test_every_nn_row_has_a_pytorch_reference` fails for a row of
`tests/op_cases_nn.py` that no case records and no other PyTorch test (`ELSEWHERE`) covers.
Rows without a gradient (one_hot, running statistics, gradient clipping) are compared by value.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

import tapegrad
import tapegrad.nn.functional as TF

from helpers import recorded_rows
from op_cases_nn import CASES as ROW_CASES

torch = pytest.importorskip("torch")
import torch.nn.functional as PF  # noqa: E402

R = np.random.default_rng(0)


class Fixed:
    """A float array passed as a tensor that does not require grad."""

    def __init__(self, array) -> None:
        self.array = np.asarray(array, dtype=np.float64)


def rand(*shape, lo=-2.0, hi=2.0):
    return R.uniform(lo, hi, shape)


TIES = np.array([[-3.0, -1.0, 0.0, 1.0], [3.0, 6.0, 0.5, -0.5]])
PROBS = R.uniform(0.05, 0.95, (4, 3))
LOGITS = rand(4, 5)
IDX = np.array([1, 0, 4, 2])
IDX_IGNORE = np.array([1, -100, 4, 2])
POOL = np.tile(np.array([[1.0, 1.0, 0.0, 2.0, 2.0], [1.0, 0.5, 2.0, 2.0, -1.0]]), (1, 1, 3, 1))

CASES = [
    ("relu", [TIES], {}), ("relu6", [TIES], {}), ("leaky_relu", [TIES], {"negative_slope": 0.2}),
    ("elu", [TIES], {"alpha": 0.7}), ("selu", [TIES], {}), ("gelu", [TIES], {}),
    ("gelu", [TIES], {"approximate": "tanh"}), ("silu", [TIES], {}), ("mish", [TIES], {}),
    ("softplus", [rand(3, 4) * 10], {"beta": 2.0, "threshold": 5.0}), ("softsign", [TIES], {}),
    ("hardtanh", [TIES], {}), ("hardsigmoid", [TIES], {}), ("hardswish", [TIES], {}),
    ("sigmoid", [TIES], {}), ("tanh", [TIES], {}), ("logsigmoid", [TIES * 10], {}),
    ("softmin", [rand(3, 4)], {"dim": 0}), ("glu", [rand(3, 4)], {}),
    ("prelu", [TIES[None], rand(2)], {}), ("prelu", [TIES, np.array([0.3])], {}),
    ("softmax", [rand(3, 4)], {"dim": 1}), ("log_softmax", [rand(3, 4, 2)], {"dim": 0}),
    ("linear", [rand(3, 4), rand(5, 4), rand(5)], {}), ("linear", [rand(2, 3, 4), rand(5, 4)], {}),
    ("bilinear", [rand(3, 4), rand(3, 2), rand(5, 4, 2), rand(5)], {}),
    ("embedding", [np.array([[0, 2], [2, 3]]), rand(4, 3)], {"padding_idx": 2}),
    ("pad", [rand(2, 3, 4)], {"pad": (1, 2, 0, 1)}), ("pad", [rand(2, 3, 4)], {"pad": (1, -1)}),
    ("pad", [rand(1, 2, 4)], {"pad": (2, 1), "mode": "reflect"}),
    ("pad", [rand(1, 2, 3, 4)], {"pad": (1, 1, 2, 0), "mode": "replicate"}),
    ("pad", [rand(1, 2, 4)], {"pad": (1, 2), "mode": "circular"}),
    ("layer_norm", [rand(3, 4, 5), (4, 5), rand(4, 5), rand(4, 5)], {}),
    ("group_norm", [rand(2, 6, 3), 3, rand(6), rand(6)], {}),
    ("batch_norm", [rand(4, 3, 2), None, None, rand(3), rand(3)], {"training": True}),
    ("batch_norm", [rand(4, 3), Fixed(R.uniform(-1, 1, 3)), Fixed(R.uniform(0.5, 2, 3)), rand(3),
                    rand(3)], {}),
    ("normalize", [rand(3, 4)], {}), ("normalize", [np.zeros((2, 3))], {"dim": 1}),
    ("normalize", [rand(3, 4)], {"p": 1.0, "dim": 0}),
    ("cosine_similarity", [rand(3, 4), rand(3, 4)], {}),
    ("cosine_similarity", [rand(3, 4), rand(1, 4)], {"dim": -1}),
    ("pairwise_distance", [rand(3, 4), rand(3, 4)], {}),
    ("pairwise_distance", [rand(3, 4), rand(3, 4)], {"p": 1.0, "keepdim": True}),
    ("scaled_dot_product_attention", [rand(2, 3, 4), rand(2, 5, 4), rand(2, 5, 2)], {}),
    ("scaled_dot_product_attention", [rand(1, 2, 4, 4), rand(1, 2, 4, 4), rand(1, 2, 4, 3)],
     {"is_causal": True}),
    ("scaled_dot_product_attention", [rand(2, 3, 4), rand(2, 5, 4), rand(2, 5, 2),
                                      R.uniform(size=(3, 5)) > 0.3], {"scale": 0.3}),
    ("scaled_dot_product_attention", [rand(2, 3, 4), rand(2, 5, 4), rand(2, 5, 2), rand(3, 5)], {}),
    ("conv1d", [rand(2, 4, 7), rand(6, 2, 3), rand(6)], {"stride": 2, "padding": 1, "groups": 2}),
    ("conv2d", [rand(2, 3, 6, 5), rand(4, 3, 3, 2), rand(4)], {"padding": (1, 0), "dilation": 2}),
    ("conv2d", [rand(1, 2, 5, 5), rand(3, 2, 3, 3)], {"padding": "same"}),
    ("conv2d", [rand(2, 5, 5), rand(3, 2, 2, 2)], {"stride": 2}),
    ("conv_transpose2d", [rand(2, 4, 3, 4), rand(4, 3, 3, 2), rand(6)],
     {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}),
    ("conv_transpose2d", [rand(1, 2, 3, 3), rand(2, 3, 2, 2)], {"dilation": 2}),
    ("max_pool2d", [POOL], {"kernel_size": 2}),
    ("max_pool2d", [POOL], {"kernel_size": 2, "stride": 1, "padding": 1}),
    ("max_pool2d", [rand(1, 2, 5, 5)], {"kernel_size": 2, "ceil_mode": True}),
    ("max_pool2d", [rand(1, 1, 7, 6)], {"kernel_size": 2, "dilation": 2}),
    ("max_pool1d", [POOL[0]], {"kernel_size": 2, "stride": 1}),
    ("avg_pool2d", [rand(1, 2, 5, 5)], {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("avg_pool2d", [rand(1, 2, 5, 5)], {"kernel_size": 3, "stride": 2, "padding": 1,
                                        "count_include_pad": False, "ceil_mode": True}),
    ("avg_pool2d", [rand(1, 2, 6, 5)], {"kernel_size": 2, "ceil_mode": True}),
    ("avg_pool2d", [rand(1, 2, 4, 4)], {"kernel_size": 2, "divisor_override": 3}),
    ("avg_pool1d", [rand(2, 3, 7)], {"kernel_size": 3, "stride": 2}),
    ("adaptive_avg_pool2d", [rand(2, 3, 7, 5)], {"output_size": (3, 2)}),
    ("adaptive_avg_pool2d", [rand(2, 3, 4, 5)], {"output_size": (None, 3)}),
    ("interpolate", [rand(1, 2, 3, 4)], {"scale_factor": 2}),
    ("interpolate", [rand(1, 2, 5, 4)], {"size": (3, 7)}),
    ("interpolate", [rand(1, 2, 3, 4)], {"size": (5, 7), "mode": "bilinear"}),
    ("interpolate", [rand(1, 2, 3, 4)], {"scale_factor": 1.5, "mode": "bilinear",
                                         "align_corners": True}),
    ("interpolate", [rand(1, 2, 6)], {"scale_factor": 0.5, "mode": "linear"}),
    ("mse_loss", [rand(3, 4), rand(3, 4)], {}), ("mse_loss", [rand(3, 4), rand(3, 4)],
                                                  {"reduction": "sum"}),
    ("mse_loss", [rand(3, 4), rand(3, 4)], {"weight": R.uniform(0, 1, (3, 4))}),
    ("l1_loss", [TIES, np.round(TIES)], {}), ("l1_loss", [rand(3, 4), rand(3, 4)],
                                                  {"reduction": "none"}),
    ("smooth_l1_loss", [TIES, TIES + np.array([[1.0], [-0.5]])], {}),
    ("smooth_l1_loss", [rand(3, 4), rand(3, 4)], {"beta": 0.5}),
    ("huber_loss", [TIES, TIES + np.array([[1.0], [-0.5]])], {"delta": 1.0}),
    ("huber_loss", [rand(3, 4), rand(3, 4)], {"delta": 0.5, "weight": R.uniform(0, 1, (3, 4))}),
    ("cross_entropy", [LOGITS, IDX], {}),
    ("cross_entropy", [LOGITS, IDX_IGNORE], {"weight": Fixed(R.uniform(0.5, 2, 5))}),
    ("cross_entropy", [LOGITS, IDX_IGNORE], {"label_smoothing": 0.2, "reduction": "sum"}),
    ("cross_entropy", [LOGITS, IDX_IGNORE], {"label_smoothing": 0.1,
                                             "weight": Fixed(R.uniform(0.5, 2, 5))}),
    ("cross_entropy", [LOGITS, IDX], {"reduction": "none", "label_smoothing": 0.3}),
    ("cross_entropy", [rand(2, 3, 4), np.array([[0, 1, 2, 1], [2, 2, 0, 1]])], {}),
    ("cross_entropy", [LOGITS, R.dirichlet(np.ones(5), 4)], {"label_smoothing": 0.2}),
    ("cross_entropy", [LOGITS, R.dirichlet(np.ones(5), 4)], {"weight": Fixed(R.uniform(0.5, 2, 5))}),
    ("cross_entropy", [rand(5), np.array(3)], {}),
    ("nll_loss", [LOGITS, IDX_IGNORE], {"weight": Fixed(R.uniform(0.5, 2, 5))}),
    ("nll_loss", [LOGITS, IDX], {"reduction": "none"}),
    ("binary_cross_entropy", [PROBS, R.uniform(0, 1, (4, 3))], {}),
    ("binary_cross_entropy", [PROBS, R.uniform(0, 1, (4, 3))], {"weight": Fixed(R.uniform(0, 1, (4, 3)))}),
    ("binary_cross_entropy_with_logits", [rand(4, 3) * 4, R.uniform(0, 1, (4, 3))], {}),
    ("binary_cross_entropy_with_logits", [rand(4, 3) * 4, R.uniform(0, 1, (4, 3))],
     {"pos_weight": Fixed(R.uniform(0.5, 3, 3)), "weight": Fixed(R.uniform(0, 1, (4, 3)))}),
    ("kl_div", [np.log(PROBS), R.uniform(0, 1, (4, 3))], {"reduction": "batchmean"}),
    ("kl_div", [np.log(PROBS), np.log(R.uniform(0.1, 1, (4, 3)))], {"reduction": "sum",
                                                                     "log_target": True}),
]

# Variants of the nn registry rows (tests/op_cases_nn.py) that the cases above leave out, so that
# each row's PyTorch reference covers its static arguments too (bounds, dims, no weight or bias,
# modes, ties).
CASES += [
    ("hardtanh", [TIES * 0.5], {"min_val": 0.0, "max_val": 0.5}),  # ties at both bounds
    ("leaky_relu", [TIES], {}), ("elu", [TIES], {}),
    ("elu", [rand(3, 2) * 50], {"alpha": 0.5}),
    ("softplus", [TIES * 4], {}),  # 24 is above the default threshold
    ("softplus", [np.array([2.5, 5.0, -1.0, 2.4])], {"beta": 2.0, "threshold": 5.0}),  # at threshold
    ("logsigmoid", [rand(2, 3, 2)], {}), ("selu", [rand(2, 3, 2)], {}),
    ("gelu", [rand(2, 3, 2)], {}), ("mish", [rand(2, 3, 2) * 5], {}),
    ("glu", [rand(2, 3, 2)], {"dim": 0}), ("softmax", [rand(2, 3, 2)], {"dim": 0}),
    ("log_softmax", [rand(5)], {"dim": 0}), ("prelu", [rand(2, 3, 2), rand(3)], {}),
    ("bilinear", [rand(4), rand(2), rand(3, 4, 2)], {}),  # unbatched, no bias
    ("embedding", [np.array([1, 1, 0]), rand(3, 2)], {}),  # a repeated index accumulates
    ("embedding", [np.array([[0, 3], [3, 1]]), rand(4, 3)], {"padding_idx": -1}),
    ("layer_norm", [rand(2, 6), (6,)], {"eps": 1e-3}),  # no weight, no bias
    ("layer_norm", [rand(2, 3, 4), (4,), rand(4)], {}),  # weight only
    ("group_norm", [rand(2, 4, 2, 2), 2], {}),
    ("batch_norm", [rand(5, 2), None, None], {"training": True, "eps": 1e-3}),
    ("batch_norm", [rand(2, 3, 2), Fixed(R.uniform(-1, 1, 3)), Fixed(R.uniform(0.5, 2, 3))], {}),
    ("normalize", [rand(2, 3, 2)], {"p": 3.0, "dim": 0}),
    ("normalize", [np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0], [0.0, 0.0, 0.0]])], {"p": 0}),
    ("cosine_similarity", [rand(2, 3, 4), rand(2, 3, 4)], {"dim": 0, "eps": 1e-6}),
    ("pairwise_distance", [rand(3, 4), rand(3, 4)], {"p": 3.0}),
    ("scaled_dot_product_attention", [rand(1, 2, 3, 4), rand(1, 2, 3, 4), rand(1, 2, 3, 2),
                                      R.uniform(size=(3, 3)) > 0.3], {"scale": 0.5}),
    ("conv1d", [rand(1, 3, 8), rand(2, 3, 3)], {"padding": 2, "dilation": 2}),
    ("conv1d", [rand(3, 6), rand(4, 3, 2), rand(4)], {"padding": "same"}),  # unbatched, even kernel
    ("conv_transpose1d", [rand(1, 2, 5), rand(2, 3, 2)], {"dilation": 2}),
    ("conv_transpose1d", [rand(2, 4, 3), rand(4, 1, 3), rand(2)],
     {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}),
    ("max_pool1d", [rand(2, 3, 7)], {"kernel_size": 3, "stride": 2, "padding": 1,
                                     "ceil_mode": True}),
    ("max_pool1d", [np.array([[1.0, 1.0, 2.0, 2.0, 0.0, 2.0, 2.0]])], {"kernel_size": 3,
                                                                    "dilation": 2}),
    ("max_pool2d", [POOL], {"kernel_size": 2, "stride": 1, "padding": 1, "dilation": (2, 1)}),
    ("avg_pool1d", [rand(2, 3, 7)], {"kernel_size": 2, "ceil_mode": True}),
    ("avg_pool1d", [rand(1, 2, 6)], {"kernel_size": 3, "stride": 2, "padding": 1,
                                     "count_include_pad": False}),
    ("adaptive_avg_pool1d", [rand(2, 5)], {"output_size": 3}),
    ("adaptive_avg_pool1d", [rand(2, 3, 7)], {"output_size": 4}),
    ("pad", [rand(2, 3, 4)], {"pad": (1, 2, 0, 1), "value": 0.5}),
    ("interpolate", [rand(1, 2, 3)], {"size": 7}),
    ("interpolate", [rand(1, 2, 5)], {"scale_factor": 1.7}),
    ("interpolate", [rand(1, 2, 4)], {"size": 7, "mode": "linear", "align_corners": True}),
    ("interpolate", [rand(1, 1, 3, 5)], {"scale_factor": (1.5, 0.6), "mode": "bilinear"}),
    ("interpolate", [rand(1, 2, 4, 5)], {"scale_factor": 2.5, "mode": "bicubic"}),
    ("interpolate", [rand(2, 1, 5, 6)], {"size": (7, 3), "mode": "bicubic",
                                         "align_corners": True}),
    ("interpolate", [rand(1, 2, 2, 3, 4)], {"size": (3, 5, 2), "mode": "trilinear"}),
    ("interpolate", [rand(1, 1, 3, 2, 4)], {"scale_factor": 1.5, "mode": "trilinear",
                                            "align_corners": True}),
    ("interpolate", [rand(1, 2, 5, 7)], {"size": (8, 3), "mode": "area"}),
    ("interpolate", [rand(1, 2, 7)], {"size": 3, "mode": "area"}),
    ("interpolate", [rand(1, 2, 5)], {"scale_factor": 1.7, "mode": "nearest-exact"}),
    ("interpolate", [rand(1, 2, 4, 5)], {"scale_factor": (0.6, 2.0), "mode": "nearest-exact"}),
    ("mse_loss", [rand(3, 4), rand(3, 4)], {"reduction": "none"}),
    ("l1_loss", [rand(3, 4), rand(3, 4)], {"weight": R.uniform(0, 1, (3, 4))}),
    ("smooth_l1_loss", [rand(3, 4), rand(3, 4)], {"beta": 0.0, "reduction": "sum"}),
    ("smooth_l1_loss", [TIES, TIES + np.array([[0.5], [-0.25]])], {"beta": 0.5,
                                                                    "reduction": "none"}),
    ("huber_loss", [rand(3, 4), rand(3, 4)], {"delta": 0.5, "reduction": "sum"}),
    ("nll_loss", [rand(2, 3, 4), np.array([[0, 1, 2, 1], [2, 2, 0, 1]])], {"reduction": "none"}),
    ("nll_loss", [rand(2, 3, 4), np.array([[0, -100, 2, 1], [2, 2, -100, 1]])], {}),
    ("nll_loss", [LOGITS, IDX_IGNORE], {"reduction": "sum"}),
    ("cross_entropy", [LOGITS, R.dirichlet(np.ones(5), 4)], {"label_smoothing": 0.2,
                                                             "reduction": "sum"}),
    ("cross_entropy", [rand(2, 3, 4), np.array([[0, 1, 2, 1], [2, 2, 0, 1]])],
     {"label_smoothing": 0.1, "reduction": "none", "weight": Fixed(R.uniform(0.5, 2, 3))}),
    ("binary_cross_entropy", [R.uniform(0.05, 0.95, 5), R.uniform(0, 1, 5)],
     {"weight": Fixed(R.uniform(0, 1, 5)), "reduction": "sum"}),
    ("binary_cross_entropy", [PROBS, R.uniform(0, 1, (4, 3))], {"reduction": "none"}),
    ("binary_cross_entropy_with_logits", [rand(4, 3) * 4, R.uniform(0, 1, (4, 3))],
     {"reduction": "none", "weight": Fixed(R.uniform(0.5, 1.5, 3))}),
    ("binary_cross_entropy_with_logits", [rand(4, 3) * 4, R.uniform(0, 1, (4, 3))],
     {"reduction": "sum", "pos_weight": Fixed(R.uniform(0.5, 3, 3))}),
    ("kl_div", [np.log(PROBS), R.uniform(0.1, 1, (4, 3))], {"reduction": "none"}),
    ("kl_div", [np.log(PROBS), np.log(R.uniform(0.1, 1, (4, 3)))], {"reduction": "batchmean",
                                                                     "log_target": True}),
]


# The names issue 13 found missing: CELU, instance and RMS normalization, 3-d convolution and
# pooling, adaptive max pooling (ties: equal entries in a window).
CASES += [
    ("celu", [TIES], {}), ("celu", [rand(3, 4) * 3], {"alpha": 0.5}),
    ("instance_norm", [rand(2, 3, 4)], {}),
    ("instance_norm", [rand(2, 3, 4, 3), None, None, rand(3), rand(3)], {"eps": 1e-3}),
    ("instance_norm", [rand(2, 3, 4), Fixed(R.uniform(-1, 1, 3)), Fixed(R.uniform(0.5, 2, 3)),
                       rand(3)], {"use_input_stats": False}),
    ("rms_norm", [rand(2, 3, 4), (4,)], {}),
    ("rms_norm", [rand(2, 3, 4), (3, 4), rand(3, 4)], {"eps": 1e-3}),
    ("conv3d", [rand(2, 4, 4, 5, 3), rand(6, 2, 2, 3, 2), rand(6)],
     {"stride": (1, 2, 1), "padding": 1, "dilation": (1, 1, 2), "groups": 2}),
    ("conv3d", [rand(2, 3, 3, 4), rand(2, 2, 2, 2, 2)], {"padding": "same"}),  # unbatched
    ("conv_transpose3d", [rand(1, 4, 2, 3, 2), rand(4, 3, 2, 3, 2), rand(6)],
     {"stride": 2, "padding": (0, 1, 0), "output_padding": (1, 0, 1), "groups": 2}),
    ("avg_pool3d", [rand(1, 2, 5, 4, 5)], {"kernel_size": 3, "stride": 2, "padding": 1,
                                           "ceil_mode": True, "count_include_pad": False}),
    ("avg_pool3d", [rand(2, 4, 4, 4)], {"kernel_size": 2, "divisor_override": 3}),
    ("max_pool3d", [np.tile(POOL, (1, 1, 2, 1, 1)).reshape(1, 2, 3, 2, 5)],
     {"kernel_size": 2, "stride": 1, "padding": (1, 0, 1)}),
    ("max_pool3d", [rand(1, 2, 5, 5, 4)], {"kernel_size": (2, 3, 2), "stride": 2,
                                           "dilation": (1, 1, 2), "ceil_mode": True}),
    ("adaptive_max_pool1d", [rand(2, 3, 7)], {"output_size": 3}),
    ("adaptive_max_pool1d", [np.array([[1.0, 1.0, 0.0, 2.0, 2.0, 2.0]])], {"output_size": 4}),
    ("adaptive_max_pool2d", [POOL], {"output_size": (2, 3)}),
    ("adaptive_max_pool2d", [rand(3, 7, 5)], {"output_size": (None, 2)}),
    ("adaptive_max_pool3d", [rand(1, 2, 4, 5, 3)], {"output_size": (3, 2, 2)}),
]

# Saturated predictions: PyTorch's gradients, not the clamped forward's. At exactly 0 or 1 the
# input gradient is `ct * (x - t) / max(x * (1 - x), 1e-12)`, finite (the derivative of
# `max(log(x), -100)` would be NaN there); below the clamp (x < e^-100) it is still that formula
# (-3e11 here, not 0.708) and the target gradient uses the unclamped logs (log ratio 115.13, not 100).
CASES += [
    ("binary_cross_entropy", [np.array([0.0, 1.0, 0.5]), Fixed([1.0, 0.0, 0.5])],
     {"reduction": "none"}),
    ("binary_cross_entropy", [np.array([1e-50, 0.5]), np.array([0.3, 0.5])], {"reduction": "sum"}),
]


# The nn registry row (tests/op_cases_nn.py) each function records; None: a core row.
ROW_OF = {
    "relu": None, "sigmoid": None, "tanh": None, "logsigmoid": "log_sigmoid", "softmin": "softmax",
    "conv1d": "conv", "conv2d": "conv", "conv_transpose1d": "conv_transpose",
    "conv_transpose2d": "conv_transpose", "max_pool1d": "max_pool", "max_pool2d": "max_pool",
    "avg_pool1d": "avg_pool", "avg_pool2d": "avg_pool", "adaptive_avg_pool1d": "adaptive_avg_pool",
    "adaptive_avg_pool2d": "adaptive_avg_pool", "pad": "constant_pad_nd",
}

ROW_OF.update({"conv3d": "conv", "conv_transpose3d": "conv_transpose", "max_pool3d": "max_pool",
               "avg_pool3d": "avg_pool", "adaptive_max_pool1d": "adaptive_max_pool",
               "adaptive_max_pool2d": "adaptive_max_pool",
               "adaptive_max_pool3d": "adaptive_max_pool"})


def _row_of(name, kwargs):
    if name == "batch_norm":
        return "batch_norm" if kwargs.get("training") else "batch_norm_eval"
    if name == "instance_norm":
        return "instance_norm" if kwargs.get("use_input_stats", True) else "batch_norm_eval"
    return ROW_OF.get(name, name)


# Rows whose PyTorch reference is another test than the CASES above.
ELSEWHERE = {
    "attention_probs": "test_nn_modules_parity.py::test_multihead_attention",
    "rnn_layer": "test_nn_modules_parity.py::test_recurrent_layers",
    "lstm_layer": "test_nn_modules_parity.py::test_recurrent_layers",
    "rnn_cell": "test_nn_modules_parity.py::test_rnn_cell_variants",
    "lstm_cell": "test_nn_modules_parity.py::test_recurrent_cells",
    "one_hot": "test_nn_torch_parity.py::test_one_hot_matches_pytorch",
    "running_update": "test_nn_torch_parity.py::test_batch_norm_running_update_matches_pytorch",
    "clip_grad_total_norm": "test_nn_torch_parity.py::test_clip_grad_norm_matches_pytorch",
    "clip_grad_scale": "test_nn_torch_parity.py::test_clip_grad_norm_matches_pytorch",
    "max_pool_with_indices": "test_ops_names_parity.py::test_max_pool_indices_match_pytorch",
    "max_unpool": "test_ops_names_parity.py::test_max_pool_indices_match_pytorch",
}
# Rows PyTorch cannot give numbers for, and why (test_nn_finite_difference.py covers them).
WITHOUT_PYTORCH = {
    "dropout": "the mask comes from tapegrad's generator; PyTorch's draws differ",
}


def test_every_nn_row_has_a_pytorch_reference():
    """Each row of op_cases_nn.CASES is recorded by a case above (the test checks what each case
    records), has another PyTorch test, or says why PyTorch cannot be its reference."""
    covered = {_row_of(name, kwargs) for name, _, kwargs in CASES} - {None}
    missing = sorted(set(ROW_CASES) - covered - set(ELSEWHERE) - set(WITHOUT_PYTORCH))
    assert not missing, f"nn rows without a PyTorch reference: {missing}"
    assert not sorted((covered | set(ELSEWHERE) | set(WITHOUT_PYTORCH)) - set(ROW_CASES))
    for where in ELSEWHERE.values():
        module, test = where.split(".py::")
        assert callable(getattr(importlib.import_module(module), test, None)), where


def _convert(lib, x):
    if isinstance(x, Fixed):
        return lib.tensor(x.array)
    if isinstance(x, np.ndarray):
        if x.dtype.kind == "f":
            return lib.tensor(x, dtype=lib.float64, requires_grad=True)
        return lib.tensor(x)
    return x


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name,args,kwargs", CASES)
def test_functional_matches_pytorch(name, args, kwargs):
    outs, grads = [], []
    for lib, F in ((torch, PF), (tapegrad, TF)):
        a = [_convert(lib, x) for x in args]
        kw = {k: _convert(lib, v) for k, v in kwargs.items()}
        out = getattr(F, name)(*a, **kw)
        if lib is tapegrad and _row_of(name, kwargs) is not None:
            assert _row_of(name, kwargs) in recorded_rows([out]), "the call records another row"
        ct = np.random.default_rng(1).uniform(0.5, 1.5, tuple(out.shape))
        (out * lib.tensor(ct, dtype=out.dtype)).sum().backward()
        leaves = [t for t in a + list(kw.values()) if isinstance(t, lib.Tensor) and t.requires_grad]
        outs.append(out.detach().numpy())
        grads.append([t.grad.numpy() if t.grad is not None else None for t in leaves])
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-7, atol=1e-9)
    for gt, gp in zip(grads[1], grads[0]):
        if gp is None:
            assert gt is None or not np.any(gt)
        else:
            np.testing.assert_allclose(gt, gp, rtol=1e-7, atol=1e-9)


# -- rows without a gradient: values against PyTorch -----------------------------------------
def test_one_hot_matches_pytorch():
    for idx, n in ((np.array([0, 2, 1]), 4), (np.array([[3, 0], [1, 1]]), -1)):
        got = TF.one_hot(tapegrad.tensor(idx), n)
        want = PF.one_hot(torch.tensor(idx), n)
        assert got.dtype == tapegrad.int64
        np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("momentum", [0.1, 0.35])
def test_batch_norm_running_update_matches_pytorch(momentum):
    """The `running_update` row: F.batch_norm in training mode updates the running statistics
    in place (unbiased batch variance)."""
    x = rand(5, 3, 2)
    stats = R.uniform(0.5, 1.5, (2, 3))
    results = []
    for lib, F in ((torch, PF), (tapegrad, TF)):
        rm, rv = lib.tensor(stats[0]), lib.tensor(stats[1])
        for _ in range(2):
            F.batch_norm(lib.tensor(x), rm, rv, training=True, momentum=momentum)
        results.append((rm.numpy(), rv.numpy()))
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_pytorch(norm_type, max_norm):
    """The `clip_grad_total_norm` and `clip_grad_scale` rows: the returned total norm and the
    clipped gradients (clipping and non-clipping `max_norm`)."""
    grads = [rand(3, 4), rand(5), rand(2, 2)]
    results = []
    for lib, utils in ((torch, torch.nn.utils), (tapegrad, tapegrad.nn.utils)):
        params = [lib.zeros(g.shape, dtype=lib.float64, requires_grad=True) for g in grads]
        for p, g in zip(params, grads):
            p.grad = lib.tensor(g)
        total = utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
        results.append((float(total), [p.grad.numpy() for p in params]))
    (pt, pg), (tt, tg) = results
    assert tt == pytest.approx(pt, rel=1e-12)
    for a, b in zip(tg, pg):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("nd,shape,size", [(1, (2, 3, 7), 3), (2, (2, 6, 5), (4, 3)),
                                           (2, (1, 2, 6, 5), (4, None)), (3, (1, 4, 5, 3), 2)])
def test_adaptive_max_pool_indices_match_pytorch(nd, shape, size):
    """`return_indices=True`: the position of each maximum in the flattened spatial input (the
    first one of a tie), and the values, as PyTorch."""
    x = np.round(R.uniform(0, 3, shape))  # many ties
    got = getattr(TF, f"adaptive_max_pool{nd}d")(tapegrad.tensor(x), size, return_indices=True)
    want = getattr(PF, f"adaptive_max_pool{nd}d")(torch.tensor(x), size, return_indices=True)
    assert got[1].dtype == tapegrad.int64
    np.testing.assert_array_equal(got[1].numpy(), want[1].numpy())
    np.testing.assert_array_equal(got[0].numpy(), want[0].numpy())


def test_instance_norm_running_stats_match_pytorch():
    """With running statistics and input statistics, F.instance_norm updates them with the
    batch mean of the per-sample mean and unbiased variance."""
    x = rand(3, 2, 5)
    results = []
    for lib, F in ((torch, PF), (tapegrad, TF)):
        rm, rv = lib.zeros(2, dtype=lib.float64), lib.ones(2, dtype=lib.float64)
        for _ in range(2):
            F.instance_norm(lib.tensor(x), rm, rv, momentum=0.3)
        results.append((rm.numpy(), rv.numpy()))
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("call", [
    lambda F, lib: F.celu(lib.ones(2), alpha=0.0),
    lambda F, lib: F.instance_norm(lib.ones(2, 3, 1)),
    lambda F, lib: F.instance_norm(lib.ones(2, 3, 4), use_input_stats=False),
    lambda F, lib: F.rms_norm(lib.ones(2, 3, 4), (4, 3)),
    lambda F, lib: F.conv3d(lib.ones(1, 2, 3, 3), lib.ones(1, 2, 2, 2, 2)),
    lambda F, lib: F.adaptive_max_pool2d(lib.ones(4), (2, 2)),
    lambda F, lib: F.adaptive_max_pool2d(lib.ones(4), 2),
    lambda F, lib: F.adaptive_max_pool1d(lib.ones(4), 2),
    lambda F, lib: F.adaptive_max_pool2d(lib.ones(2, 0, 4, 5), (2, 1)),
    lambda F, lib: F.adaptive_max_pool2d(lib.ones(2, 3, 4, 5), (2, 1, 1)),
], ids=["celu-alpha0", "instance_norm-1-spatial", "instance_norm-no-stats", "rms_norm-shape",
        "conv3d-4d", "adaptive_max_pool2d-1d", "adaptive_max_pool2d-int-1d",
        "adaptive_max_pool1d-1d", "adaptive_max_pool2d-empty", "adaptive_max_pool2d-3-sizes"])
def test_new_functions_raise_as_pytorch(call):
    with pytest.raises(Exception) as want:
        call(PF, torch)
    with pytest.raises(type(want.value)) as got:
        call(TF, tapegrad)
    assert str(got.value) == str(want.value).replace("torch.", "tapegrad.")


INPLACE = [("relu", {}), ("relu6", {}), ("leaky_relu", {"negative_slope": 0.2}),
           ("elu", {"alpha": 0.5}), ("celu", {"alpha": 2.0}), ("selu", {}), ("silu", {}),
           ("mish", {}), ("hardtanh", {"min_val": -0.5, "max_val": 0.5}), ("hardsigmoid", {}),
           ("hardswish", {}), ("threshold", {"threshold": 0.1, "value": -2.0})]
MODULES = {"relu": "ReLU", "relu6": "ReLU6", "leaky_relu": "LeakyReLU", "elu": "ELU",
           "celu": "CELU", "selu": "SELU", "silu": "SiLU", "mish": "Mish", "hardtanh": "Hardtanh",
           "hardsigmoid": "Hardsigmoid", "hardswish": "Hardswish", "threshold": "Threshold"}


@pytest.mark.parametrize("name, kwargs", INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_activations_match_pytorch(name, kwargs):
    """`F.act(x, inplace=True)` and `nn.Act(inplace=True)` write into `x` and return it, with
    the gradient through the write; on a leaf that requires grad both raise."""
    x0 = np.linspace(-2.0, 2.0, 12).reshape(3, 4)
    results = []
    for lib, F in ((torch, PF), (tapegrad, TF)):
        module = getattr(lib.nn, MODULES[name])(*kwargs.values(), inplace=True)
        leaf = lib.tensor(x0, requires_grad=True)
        y = leaf * 1.5
        out = getattr(F, name)(y, **kwargs, inplace=True)
        assert out is y
        z = y * 1
        assert module(z) is z
        (out.sum() + (z * z).sum()).backward()
        results.append((out.detach().numpy(), z.detach().numpy(), leaf.grad.numpy()))
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            getattr(F, name)(lib.tensor(x0, requires_grad=True), **kwargs, inplace=True)
    for got, want in zip(*reversed(results)):  # PyTorch's hardsigmoid: 1/6 in single precision
        np.testing.assert_allclose(got, want, rtol=1e-7)


@pytest.mark.parametrize("name, args", [("relu_", ()), ("elu_", (0.5,)), ("leaky_relu_", (0.2,)),
                                        ("celu_", (2.0,)), ("selu_", ()), ("hardtanh_", (-0.5, 0.5)),
                                        ("threshold_", (0.1, -2.0))])
def test_inplace_spellings_match_pytorch(name, args):
    x0 = np.linspace(-2.0, 2.0, 12).reshape(3, 4)
    results = []
    for lib, F in ((torch, PF), (tapegrad, TF)):
        x = lib.tensor(x0)
        assert getattr(F, name)(x, *args) is x
        results.append(x.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-12)
