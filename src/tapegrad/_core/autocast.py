"""Autocast's state (thread-local, per device type, as in PyTorch) and its op lists.

While autocast is on for a device type, `_tensor.apply` looks up each op's row name here and
casts the op's floating inputs of that device type (float64 excepted) before recording it:
`LOWER` rows run in the autocast dtype, `FP32` rows in float32; every other row runs in the
dtype its inputs have. The casts are ordinary `to_copy` nodes, so gradients flow back through
them to float32 parameters in float32. The lists are PyTorch's (`aten/src/ATen/autocast_mode.cpp`)
mapped onto tapegrad's rows; a composite PyTorch op that decomposes into a listed one (einsum and
tensordot into bmm/mm) is listed under the tapegrad row that computes it.
"""
from __future__ import annotations

import threading

from . import dtype as _dtype

LOWER = "lower_precision_fp"
FP32 = "fp32"

_CPU = {
    **dict.fromkeys(("conv", "conv_transpose", "bmm", "matmul", "baddbmm", "addmm", "linear",
                     "prelu", "scaled_dot_product_attention", "einsum", "tensordot",
                     "lstm_layer", "rnn_layer"), LOWER),
    **dict.fromkeys(("binary_cross_entropy", "prod", "trace", "linalg_cholesky", "linalg_inv",
                     "linalg_solve", "linalg_qr", "linalg_svd", "linalg_det", "linalg_slogdet",
                     "linalg_matrix_norm", "max_unpool", "mse_loss", "nll_loss",
                     "smooth_l1_loss", "cross_entropy", "l1_loss", "huber_loss", "kl_div",
                     "binary_cross_entropy_with_logits"), FP32),
}
_CUDA = {
    **dict.fromkeys(("conv", "conv_transpose", "prelu", "addmm", "addmv", "matmul", "einsum",
                     "bmm", "baddbmm", "linear", "tensordot", "lstm_cell", "rnn_cell",
                     "lstm_layer", "rnn_layer", "scaled_dot_product_attention"), LOWER),
    **dict.fromkeys(("acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2",
                     "log1p", "reciprocal", "rsqrt", "sinh", "tan", "pow", "softplus",
                     "layer_norm", "group_norm", "linalg_matrix_norm", "vector_norm",
                     "cosine_similarity", "nll_loss", "kl_div", "l1_loss", "smooth_l1_loss",
                     "huber_loss", "mse_loss", "binary_cross_entropy_with_logits",
                     "cross_entropy", "pairwise_distance", "logsumexp", "softmax",
                     "log_softmax", "sum", "prod", "cumsum", "cumprod", "interpolate"), FP32),
}
POLICIES = {"cpu": _CPU, "cuda": _CUDA}
DEFAULT_DTYPES = {"cpu": _dtype.bfloat16, "cuda": _dtype.float16}
SUPPORTED_DTYPES = {"cpu": (_dtype.bfloat16, _dtype.float16),
                    "cuda": (_dtype.float16, _dtype.bfloat16)}


class _State(threading.local):
    def __init__(self) -> None:
        self.enabled = {"cpu": False, "cuda": False}
        self.dtype = dict(DEFAULT_DTYPES)
        self.active = False  # enabled for some device type: the one test `apply` pays when off


state = _State()


def set_enabled(device_type: str, enabled: bool) -> None:
    state.enabled[device_type] = enabled
    state.active = any(state.enabled.values())


def key() -> tuple:
    """The casts in force, as a compiled step's key: the device types on, with their dtypes."""
    if not state.active:
        return ()
    return tuple((d, state.dtype[d]) for d, on in sorted(state.enabled.items()) if on)


def casts(op_name: str) -> list[tuple[str, _dtype.dtype]]:
    """(device type, target dtype) for each device type whose autocast casts this row's inputs."""
    out = []
    for device_type, on in state.enabled.items():
        policy = on and POLICIES[device_type].get(op_name)
        if policy:
            out.append((device_type, state.dtype[device_type] if policy == LOWER else
                        _dtype.float32))
    return out


def eligible(dtype: _dtype.dtype) -> bool:
    """PyTorch casts floating tensors other than float64."""
    return dtype.is_floating_point and dtype is not _dtype.float64
