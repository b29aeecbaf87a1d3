"""Test cases for the nn registry rows (`nn/_functional_*.py`, `nn/modules/rnn.py`, nn.utils).

These are plumbing tests: `tests/test_nn_functional.py::test_row_matches_jax_vjp` checks that each
row records and replays correctly against the row's OWN function (`jax.vjp` of `op.fn`), so a
wrong formula in a row passes them (`tests/test_ops_registry.py` only counts them for coverage).
The independent references for every row live elsewhere:

- `tests/test_nn_torch_parity.py` and `tests/test_nn_modules_parity.py`: PyTorch's values and
  gradients (float64) for the public functions and modules that record these rows, ties included;
- `tests/test_nn_finite_difference.py`: central finite differences of tapegrad's own float64
  forward against its `backward()`, plus numpy formulas for the values, without PyTorch. Its
  coverage test fails for a row of `CASES` that has neither a finite-difference check nor a
  stated reason (rows without a gradient) in its `EXCLUDED`.

`CASES = {op_name: [Case(args, static), ...]}`, keyed by the row's registry name:

- `args`: the row's positional inputs, as numpy arrays. Floating arrays are the inputs to
  differentiate (a test casts them to the dtype under test, float32 or float64); integer and bool
  arrays (class indices, masks) are passed unchanged and get no gradient.
- `static`: the row's keyword arguments, exactly as the row function takes them.

A test applies the row to tapegrad tensors (`_tensor.apply.apply(op, *tensors, **static)`), and compares
values and gradients with `jax.vjp` of `op.fn(*arrays, **static)`. Rows with several outputs
return tuples. Inputs include ties where PyTorch's subgradient matters.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Case(NamedTuple):
    args: list
    static: dict


_R = np.random.default_rng(1234)


def _r(*shape, lo=-2.0, hi=2.0):
    return _R.uniform(lo, hi, shape)


TIES = np.array([[-3.0, -1.0, 0.0, 1.0], [3.0, 6.0, 0.5, -0.5]])
_UNARY = [Case([TIES], {}), Case([_r(2, 3, 2)], {})]
_LOGITS = _r(4, 5)
_IDX = np.array([1, 0, 4, 2])
_IDX_IGNORE = np.array([1, -100, 4, 2])
_POOL = np.tile(np.array([[1.0, 1.0, 0.0, 2.0, 2.0], [1.0, 0.5, 2.0, 2.0, -1.0]]), (1, 1, 3, 1))


def _rnn_params(gates, i, h, dirs, bias=True):
    out = []
    for _ in range(dirs):
        out += [_r(gates * h, i, lo=-0.5, hi=0.5), _r(gates * h, h, lo=-0.5, hi=0.5)]
        if bias:
            out += [_r(gates * h, lo=-0.5, hi=0.5), _r(gates * h, lo=-0.5, hi=0.5)]
    return out


CASES = {
    # -- activations
    "relu6": _UNARY, "hardsigmoid": _UNARY, "hardswish": _UNARY, "selu": _UNARY, "silu": _UNARY,
    "mish": _UNARY, "softsign": _UNARY,
    "hardtanh": [Case([TIES], {"min_val": -1.0, "max_val": 1.0}),
                 Case([_r(3, 2)], {"min_val": 0.0, "max_val": 0.5})],
    "leaky_relu": [Case([TIES], {"negative_slope": 0.01}),
                   Case([_r(3, 2)], {"negative_slope": 0.3})],
    "elu": [Case([TIES], {"alpha": 1.0, "scale": 1.0, "input_scale": 1.0}),
            Case([_r(3, 2) * 50], {"alpha": 0.5, "scale": 1.0, "input_scale": 1.0})],
    "gelu": [Case([TIES], {"approximate": "none"}), Case([_r(3, 2)], {"approximate": "tanh"})],
    "softplus": [Case([TIES * 4], {"beta": 1.0, "threshold": 20.0}),
                 Case([_r(3, 4) * 10], {"beta": 2.0, "threshold": 5.0})],
    "log_sigmoid": _UNARY,
    "prelu": [Case([TIES, np.array([0.25])], {}), Case([_r(2, 3, 2), _r(3)], {})],
    "glu": [Case([_r(3, 4)], {"dim": 1}), Case([_r(2, 3, 2)], {"dim": 0})],
    "softmax": [Case([_r(3, 4)], {"dim": 1}), Case([_r(2, 3, 2)], {"dim": 0})],
    "log_softmax": [Case([_r(3, 4)], {"dim": 1}), Case([_r(5)], {"dim": 0})],
    # -- dropout, linear maps, embedding
    "dropout": [Case([_r(3, 4), _r(3, 4, lo=0.0, hi=1.0)], {"p": 0.5}),
                Case([_r(2, 2, 3), _r(2, 2, 3, lo=0.0, hi=1.0)], {"p": 0.2})],
    "linear": [Case([_r(3, 4), _r(5, 4), _r(5)], {}), Case([_r(2, 3, 4), _r(2, 4)], {})],
    "bilinear": [Case([_r(3, 4), _r(3, 2), _r(5, 4, 2), _r(5)], {}),
                 Case([_r(4), _r(2), _r(3, 4, 2)], {})],
    "embedding": [Case([np.array([[0, 2], [2, 3]]), _r(4, 3)], {"padding_idx": 2}),
                  Case([np.array([1, 1, 0]), _r(3, 2)], {"padding_idx": None})],
    "one_hot": [Case([np.array([0, 2, 1])], {"num_classes": 4})],
    # -- normalization
    "layer_norm": [Case([_r(3, 4, 5), _r(4, 5), _r(4, 5)], {"n_dims": 2, "eps": 1e-5,
                                                             "has_weight": True}),
                   Case([_r(2, 6)], {"n_dims": 1, "eps": 1e-3, "has_weight": False})],
    "group_norm": [Case([_r(2, 6, 3), _r(6), _r(6)], {"num_groups": 3, "eps": 1e-5,
                                                      "has_weight": True}),
                   Case([_r(2, 4, 2, 2)], {"num_groups": 2, "eps": 1e-5, "has_weight": False})],
    "batch_norm": [Case([_r(4, 3, 2), _r(3), _r(3)], {"eps": 1e-5, "has_weight": True}),
                   Case([_r(5, 2)], {"eps": 1e-3, "has_weight": False})],
    "batch_norm_eval": [Case([_r(4, 3), _r(3), _r(3, lo=0.5, hi=2.0), _r(3), _r(3)],
                             {"eps": 1e-5, "has_weight": True}),
                        Case([_r(2, 3, 2), _r(3), _r(3, lo=0.5, hi=2.0)],
                             {"eps": 1e-5, "has_weight": False})],
    "running_update": [Case([_r(3), _r(3)], {"momentum": 0.1})],
    "normalize": [Case([_r(3, 4)], {"p": 2.0, "dim": 1, "eps": 1e-12}),
                  Case([np.zeros((2, 3))], {"p": 2.0, "dim": 1, "eps": 1e-12}),
                  Case([_r(3, 4)], {"p": 1.0, "dim": 0, "eps": 1e-12}),
                  Case([np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])],
                       {"p": 0.0, "dim": 1, "eps": 1e-12})],
    # -- distances and attention
    "cosine_similarity": [Case([_r(3, 4), _r(3, 4)], {"dim": 1, "eps": 1e-8}),
                          Case([_r(3, 4), _r(1, 4)], {"dim": 1, "eps": 1e-8})],
    "pairwise_distance": [Case([_r(3, 4), _r(3, 4)], {"p": 2.0, "eps": 1e-6, "keepdim": False}),
                          Case([_r(3, 4), _r(3, 4)], {"p": 1.0, "eps": 1e-6, "keepdim": True})],
    "attention_probs": [Case([_r(2, 3, 4), _r(2, 5, 4)],
                             {"scale": 0.5, "mask_kinds": (), "is_causal": False}),
                        Case([_r(1, 2, 3, 4), _r(1, 2, 3, 4), _R.uniform(size=(1, 1, 1, 3)) > 0.5,
                              _r(3, 3)], {"scale": 0.5, "mask_kinds": ("block", "float"),
                                          "is_causal": True})],
    "scaled_dot_product_attention": [
        Case([_r(2, 3, 4), _r(2, 5, 4), _r(2, 5, 2)],
             {"scale": 0.5, "mask_kinds": (), "is_causal": False, "dropout_p": 0.0}),
        Case([_r(1, 2, 3, 4), _r(1, 2, 3, 4), _r(1, 2, 3, 2), _R.uniform(size=(3, 3)) > 0.3,
              _r(1, 2, 3, 3, lo=0.0, hi=1.0)],
             {"scale": 0.5, "mask_kinds": ("allow",), "is_causal": False, "dropout_p": 0.25})],
    # -- convolution, pooling, resampling
    "conv": [Case([_r(2, 4, 7), _r(6, 2, 3), _r(6)], {"stride": (2,), "padding": ((1, 1),),
                                                      "dilation": (1,), "groups": 2}),
             Case([_r(1, 3, 5, 4), _r(2, 3, 2, 2)], {"stride": (1, 1), "padding": ((1, 0), (0, 1)),
                                                     "dilation": (2, 1), "groups": 1})],
    "conv_transpose": [Case([_r(2, 4, 3, 4), _r(4, 3, 3, 2), _r(6)],
                            {"stride": (2, 2), "padding": (1, 1), "output_padding": (1, 1),
                             "dilation": (1, 1), "groups": 2}),
                       Case([_r(1, 2, 5), _r(2, 3, 2)],
                            {"stride": (1,), "padding": (0,), "output_padding": (0,),
                             "dilation": (2,), "groups": 1})],
    "max_pool": [Case([_POOL], {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0),
                                "dilation": (1, 1), "extra": (0, 1)}),
                 Case([_POOL], {"kernel": (2, 2), "stride": (1, 1), "padding": (1, 1),
                                "dilation": (2, 1), "extra": (0, 0)})],
    "max_pool_with_indices": [Case([_POOL], {"kernel": (2, 2), "stride": (2, 2),
                                             "padding": (0, 0), "dilation": (1, 1),
                                             "extra": (0, 1)}),
                              Case([_r(2, 7)], {"kernel": (3,), "stride": (2,), "padding": (1,),
                                                "dilation": (2,), "extra": (0,)})],
    "max_unpool": [Case([_r(1, 2, 2, 2), np.array([[[[0, 3], [9, 14]], [[5, 2], [8, 15]]]])],
                        {"size": (4, 4)})],
    "avg_pool": [Case([_r(1, 2, 5, 5)], {"kernel": (3, 3), "stride": (2, 2), "padding": (1, 1),
                                         "extra": (0, 0), "count_include_pad": False,
                                         "divisor_override": None}),
                 Case([_r(2, 3, 7)], {"kernel": (2,), "stride": (2,), "padding": (0,),
                                      "extra": (1,), "count_include_pad": True,
                                      "divisor_override": None})],
    "adaptive_avg_pool": [Case([_r(2, 3, 7, 5)], {"output_size": (3, 2)}),
                          Case([_r(2, 5)], {"output_size": (3,)})],
    "constant_pad_nd": [Case([_r(2, 3, 4)], {"pad": (1, 2, 0, 1), "mode": "constant",
                                             "value": 0.5}),
                        Case([_r(1, 2, 4)], {"pad": (2, 1), "mode": "reflect", "value": 0.0})],
    "interpolate": [Case([_r(1, 2, 3, 4)], {"size": (5, 7), "mode": "bilinear",
                                            "scales": (None, None), "align_corners": False}),
                    Case([_r(1, 2, 3)], {"size": (7,), "mode": "nearest", "scales": (None,),
                                         "align_corners": False})],
    # -- losses
    "mse_loss": [Case([_r(3, 4), _r(3, 4)], {"reduction": "mean"}),
                 Case([_r(3, 4), _r(3, 4), _r(3, 4, lo=0.0)], {"reduction": "mean"})],
    "l1_loss": [Case([TIES, np.round(TIES)], {"reduction": "mean"}),
                Case([_r(3, 4), _r(3, 4)], {"reduction": "none"})],
    "smooth_l1_loss": [Case([TIES, TIES + np.array([[1.0], [-0.5]])],
                            {"reduction": "mean", "beta": 1.0}),
                       Case([_r(3, 4), _r(3, 4)], {"reduction": "sum", "beta": 0.0})],
    "huber_loss": [Case([TIES, TIES + np.array([[1.0], [-0.5]])],
                        {"reduction": "mean", "delta": 1.0}),
                   Case([_r(3, 4), _r(3, 4), _r(3, 4, lo=0.0)], {"reduction": "mean", "delta": 0.5})],
    "nll_loss": [Case([_LOGITS, _IDX_IGNORE, _r(5, lo=0.5)],
                      {"reduction": "mean", "ignore_index": -100}),
                 Case([_r(2, 3, 4), np.array([[0, 1, 2, 1], [2, 2, 0, 1]])],
                      {"reduction": "none", "ignore_index": -100})],
    "cross_entropy": [
        Case([_LOGITS, _IDX], {"reduction": "mean", "ignore_index": -100, "label_smoothing": 0.0,
                               "probs": False}),
        Case([_LOGITS, _IDX_IGNORE, _r(5, lo=0.5)],
             {"reduction": "mean", "ignore_index": -100, "label_smoothing": 0.1, "probs": False}),
        Case([_LOGITS, _R.dirichlet(np.ones(5), 4)],
             {"reduction": "sum", "ignore_index": -100, "label_smoothing": 0.2, "probs": True})],
    "binary_cross_entropy": [Case([_r(4, 3, lo=0.05, hi=0.95), _r(4, 3, lo=0.0, hi=1.0)],
                                  {"reduction": "mean"}),
                             Case([_r(5, lo=0.05, hi=0.95), _r(5, lo=0.0, hi=1.0), _r(5, lo=0.0)],
                                  {"reduction": "sum"})],
    "binary_cross_entropy_with_logits": [
        Case([_r(4, 3) * 4, _r(4, 3, lo=0.0, hi=1.0)], {"reduction": "mean", "has_weight": False}),
        Case([_r(4, 3) * 4, _r(4, 3, lo=0.0, hi=1.0), _r(4, 3, lo=0.0), _r(3, lo=0.5)],
             {"reduction": "none", "has_weight": True})],
    "kl_div": [Case([np.log(_r(4, 3, lo=0.1, hi=1.0)), _r(4, 3, lo=0.1, hi=1.0)],
                    {"reduction": "batchmean", "log_target": False}),
               Case([np.log(_r(4, 3, lo=0.1, hi=1.0)), np.log(_r(4, 3, lo=0.1, hi=1.0))],
                    {"reduction": "sum", "log_target": True})],
    # -- recurrent layers (time-major input, states (D, B, H))
    "rnn_layer": [Case([_r(4, 2, 3), _r(1, 2, 5), *_rnn_params(1, 3, 5, 1)],
                       {"mode": "RNN_TANH", "bidirectional": False, "has_bias": True}),
                  Case([_r(3, 2, 3), _r(2, 2, 4), *_rnn_params(3, 3, 4, 2, bias=False)],
                       {"mode": "GRU", "bidirectional": True, "has_bias": False})],
    "lstm_layer": [Case([_r(4, 2, 3), _r(1, 2, 5), _r(1, 2, 5), *_rnn_params(4, 3, 5, 1)],
                        {"mode": "LSTM", "bidirectional": False, "has_bias": True}),
                   Case([_r(3, 2, 3), _r(2, 2, 4), _r(2, 2, 4), *_rnn_params(4, 3, 4, 2)],
                        {"mode": "LSTM", "bidirectional": True, "has_bias": True})],
    "rnn_cell": [Case([_r(2, 3), _r(2, 4), *_rnn_params(3, 3, 4, 1)],
                      {"mode": "GRU", "has_bias": True}),
                 Case([_r(2, 3), _r(2, 4), *_rnn_params(1, 3, 4, 1, bias=False)],
                      {"mode": "RNN_RELU", "has_bias": False})],
    "lstm_cell": [Case([_r(2, 3), _r(2, 4), _r(2, 4), *_rnn_params(4, 3, 4, 1)],
                       {"mode": "LSTM", "has_bias": True})],
    # -- nn.utils
    "clip_grad_total_norm": [Case([_r(3, 4), _r(5)], {"norm_type": 2.0}),
                             Case([_r(3), _r(2, 2)], {"norm_type": float("inf")})],
    "clip_grad_scale": [Case([_r(3, 4), np.array(5.0)], {"max_norm": 1.0})],
}

# Rows added with issue 13's missing names (CELU, InstanceNorm, RMSNorm, adaptive max pooling).
CASES.update({
    "celu": [Case([TIES], {"alpha": 1.0}), Case([_r(3, 2) * 3], {"alpha": 0.5})],
    "instance_norm": [Case([_r(2, 3, 4), _r(3), _r(3)], {"eps": 1e-5, "has_weight": True}),
                      Case([_r(2, 2, 3, 2)], {"eps": 1e-3, "has_weight": False})],
    "rms_norm": [Case([_r(3, 4, 5), _r(4, 5)], {"n_dims": 2, "eps": 1e-6}),
                 Case([_r(2, 6)], {"n_dims": 1, "eps": 1e-3})],
    # ties: equal entries inside a window send the gradient to the first one
    "adaptive_max_pool": [Case([_POOL], {"output_size": (2, 3)}),
                          Case([_r(2, 7)], {"output_size": (3,)}),
                          Case([_r(1, 3, 4, 5)], {"output_size": (2, 2, 3)})],
})
