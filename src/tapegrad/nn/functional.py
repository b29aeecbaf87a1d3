"""`tapegrad.nn.functional`: PyTorch's functional interface, each function one registry op."""
from __future__ import annotations

from ._functional_activation import (
    elu, gelu, glu, hardsigmoid, hardswish, hardtanh, leaky_relu, log_softmax, logsigmoid, mish,
    prelu, relu, relu6, selu, sigmoid, silu, softmax, softmin, softplus, softsign, tanh,
)
from ._functional_conv import (
    adaptive_avg_pool1d, adaptive_avg_pool2d, avg_pool1d, avg_pool2d, conv1d, conv2d,
    conv_transpose1d, conv_transpose2d, interpolate, max_pool1d, max_pool2d,
)
from ._functional_conv import max_unpool1d, max_unpool2d, max_unpool3d
from ._functional_layers import (
    batch_norm, bilinear, cosine_similarity, dropout, dropout1d, dropout2d, embedding, group_norm,
    layer_norm, linear, normalize, one_hot, pad, pairwise_distance, scaled_dot_product_attention,
)
from ._functional_loss import (
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div,
    l1_loss, mse_loss, nll_loss, smooth_l1_loss,
)

from ._functional_activation import (
    celu, celu_, elu_, hardtanh_, leaky_relu_, relu_, selu_, threshold, threshold_,
)
from ._functional_conv import (
    adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d, avg_pool3d, conv3d,
    conv_transpose3d, max_pool3d,
)
from ._functional_layers import instance_norm, rms_norm

__all__ = [
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "avg_pool1d", "avg_pool2d", "batch_norm",
    "bilinear", "binary_cross_entropy", "binary_cross_entropy_with_logits", "conv1d", "conv2d",
    "conv_transpose1d", "conv_transpose2d", "cosine_similarity", "cross_entropy", "dropout",
    "dropout1d", "dropout2d", "elu", "embedding", "gelu", "glu", "group_norm", "hardsigmoid",
    "hardswish", "hardtanh", "huber_loss", "interpolate", "kl_div", "l1_loss", "layer_norm",
    "leaky_relu", "linear", "log_softmax", "logsigmoid", "max_pool1d", "max_pool2d", "mish",
    "mse_loss", "nll_loss", "normalize", "one_hot", "pad", "pairwise_distance", "prelu", "relu",
    "relu6", "scaled_dot_product_attention", "selu", "sigmoid", "silu", "smooth_l1_loss",
    "softmax", "softmin", "softplus", "softsign", "tanh",
    "max_unpool1d", "max_unpool2d", "max_unpool3d",
]
__all__ += ["celu_", "elu_", "hardtanh_", "leaky_relu_", "relu_", "selu_", "threshold",
            "threshold_"]
__all__ += ["adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d", "avg_pool3d",
            "celu", "conv3d", "conv_transpose3d", "instance_norm", "max_pool3d", "rms_norm"]
