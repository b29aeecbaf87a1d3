"""Every nn registry row against references that do not come from the row itself (no PyTorch).

`tests/test_nn_functional.py` checks each row against `jax.vjp` of the row's own function: that
proves recording and replay, not the formula. Here each row of `op_cases_nn.CASES` is reached
through the public API (`tapegrad.nn.functional`, `tapegrad.nn` modules) and checked, in float64:

- gradient: tapegrad's `backward()` of `sum(f(x) * w)` (w a fixed random cotangent) against
  central finite differences of tapegrad's own forward, for every element of every float input
  (inputs kept away from kinks; ties are PyTorch's business, see `test_nn_torch_parity.py`);
- value: the forward against an independent numpy formula, where one is simple;
- recording: the public call records the row it stands for (read from the `grad_fn` graph);
- coverage: every row name of `op_cases_nn.CASES` is in `TABLE` or, with a reason, in
  `EXCLUDED` -- a new nn row without an independent reference fails the suite.

PyTorch's numbers for the same rows are in `test_nn_torch_parity.py` and
`test_nn_modules_parity.py`.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np
import pytest

import tapegrad
import tapegrad.nn as nn
import tapegrad.nn.functional as F
from tapegrad.func import functional_call

from helpers import recorded_rows
from op_cases_nn import CASES as ROW_CASES

EPS = 1e-6  # central differences in float64: truncation ~EPS**2, rounding ~1e-16 / EPS
RTOL, ATOL = 1e-5, 1e-7

_R = np.random.default_rng(20240611)


class Fixed:
    """A float input passed as a tensor that does not require grad (no finite differences)."""

    def __init__(self, array) -> None:
        self.array = np.asarray(array, dtype=np.float64)


class Check(NamedTuple):
    fn: Callable  # tapegrad tensors -> a tensor or a tuple of tensors (the public call)
    args: list  # float arrays: differentiated; Fixed: no grad; integer / bool arrays: as they are
    ref: Callable | None = None  # numpy arrays -> the expected value(s), an independent formula
    # (input position, finite differences) -> the expected gradient, where PyTorch's gradient is
    # by definition not the derivative (embedding's padding row); None: the derivative itself
    expect: Callable | None = None


def rand(*shape, lo=-2.0, hi=2.0, away=(), gap=0.05):
    """Uniform floats, moved at least `gap` away from each of the kinks in `away`."""
    x = _R.uniform(lo, hi, shape)
    for k in away:
        near = np.abs(x - k) < gap
        x = np.where(near, k + np.where(x >= k, 1.0, -1.0) * (gap + np.abs(x - k)), x)
    return x


def pos(*shape, lo=0.5, hi=1.5):
    return _R.uniform(lo, hi, shape)


# -- numpy references -----------------------------------------------------------------------------
_erf = np.vectorize(math.erf)
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _channel(v, ndim):
    return v.reshape((-1,) + (1,) * (ndim - 2))


def _np_prelu(x, w):
    w = _channel(w, x.ndim) if w.size > 1 else w
    return np.where(x > 0, x, w * x)


def _np_glu(x, dim):
    a, b = np.split(x, 2, axis=dim)
    return a * _sigmoid(b)


def _np_norm(x, axes, eps):
    m = x.mean(axis=axes, keepdims=True)
    v = ((x - m) ** 2).mean(axis=axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps)


def _np_layer_norm(x, k, w=None, b=None, eps=1e-5):
    y = _np_norm(x, tuple(range(x.ndim - k, x.ndim)), eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


def _np_group_norm(x, groups, w=None, b=None, eps=1e-5):
    y = _np_norm(x.reshape(x.shape[0], groups, -1), (2,), eps).reshape(x.shape)
    return y * (1 if w is None else _channel(w, x.ndim)) + (0 if b is None else _channel(b, x.ndim))


def _np_batch_norm(x, w=None, b=None, eps=1e-5):
    y = _np_norm(x, (0,) + tuple(range(2, x.ndim)), eps)
    return y * (1 if w is None else _channel(w, x.ndim)) + (0 if b is None else _channel(b, x.ndim))


def _np_batch_norm_eval(x, rm, rv, w=None, b=None, eps=1e-5):
    y = (x - _channel(rm, x.ndim)) / np.sqrt(_channel(rv, x.ndim) + eps)
    return y * (1 if w is None else _channel(w, x.ndim)) + (0 if b is None else _channel(b, x.ndim))


def _pnorm(x, p, axis, keepdims=False):
    return (np.abs(x) ** p).sum(axis=axis, keepdims=keepdims) ** (1.0 / p)


def _np_attention(q, k, v=None, mask=None, scale=None, is_causal=False):
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    if is_causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    p = _softmax(s, -1)
    return p if v is None else p @ v


def _np_conv(x, w, b=None, stride=None, padding=None, dilation=None, groups=1):
    """Cross-correlation as PyTorch defines it:
    out[n, o, i] = sum_{c, k} x_padded[n, c, s*i + d*k] * w[o, c, k], per group."""
    nd = w.ndim - 2
    stride, padding, dilation = stride or (1,) * nd, padding or (0,) * nd, dilation or (1,) * nd
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    sizes = [(xp.shape[2 + i] - dilation[i] * (w.shape[2 + i] - 1) - 1) // stride[i] + 1
             for i in range(nd)]
    cg, og = x.shape[1] // groups, w.shape[0] // groups
    out = np.zeros((x.shape[0], w.shape[0], *sizes))
    for k in np.ndindex(*w.shape[2:]):
        start = [k[i] * dilation[i] for i in range(nd)]
        window = xp[(slice(None), slice(None)) + tuple(
            slice(start[i], start[i] + (sizes[i] - 1) * stride[i] + 1, stride[i])
            for i in range(nd))]
        for g in range(groups):
            out[:, g * og:(g + 1) * og] += np.einsum(
                "nc...,oc->no...", window[:, g * cg:(g + 1) * cg],
                w[(slice(g * og, (g + 1) * og), slice(None)) + k])
    return out if b is None else out + _channel(b, out.ndim)


def _np_conv_transpose(x, w, b=None, stride=None, padding=None, output_padding=None,
                       dilation=None, groups=1):
    """Each input element scatters `x * w[c_in, :, k]` to position `s*i + d*k - p` (PyTorch's
    definition), cropped to `(L - 1) s - 2p + d (K - 1) + output_padding + 1`."""
    nd = w.ndim - 2
    stride, padding = stride or (1,) * nd, padding or (0,) * nd
    output_padding, dilation = output_padding or (0,) * nd, dilation or (1,) * nd
    L, K = x.shape[2:], w.shape[2:]
    full = [(L[i] - 1) * stride[i] + dilation[i] * (K[i] - 1) + 1 + output_padding[i]
            for i in range(nd)]
    cg, og = x.shape[1] // groups, w.shape[1]
    out = np.zeros((x.shape[0], og * groups, *full))
    for k in np.ndindex(*K):
        target = tuple(slice(k[i] * dilation[i], k[i] * dilation[i] + (L[i] - 1) * stride[i] + 1,
                             stride[i]) for i in range(nd))
        for g in range(groups):
            out[(slice(None), slice(g * og, (g + 1) * og)) + target] += np.einsum(
                "nc...,co->no...", x[:, g * cg:(g + 1) * cg],
                w[(slice(g * cg, (g + 1) * cg), slice(None)) + k])
    crop = tuple(slice(padding[i], full[i] - padding[i]) for i in range(nd))
    out = out[(slice(None), slice(None)) + crop]
    return out if b is None else out + _channel(b, out.ndim)


def _pool_size(n, k, s, p, d, ceil_mode):
    out = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _np_unpool(x, flat_indices, size):
    out = np.zeros(int(np.prod(size)))
    out[flat_indices] = x.reshape(-1)
    return out.reshape(x.shape[:-len(size)] + size)


def _np_max_pool(x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    nd = len(kernel)
    stride = stride or kernel
    pad = (padding,) * nd if isinstance(padding, int) else padding
    dil = (dilation,) * nd if isinstance(dilation, int) else dilation
    sp = x.shape[-nd:]
    sizes = [_pool_size(sp[i], kernel[i], stride[i], pad[i], dil[i], ceil_mode) for i in range(nd)]
    out = np.empty(x.shape[:-nd] + tuple(sizes))
    for o in np.ndindex(*sizes):
        idx = [[o[i] * stride[i] - pad[i] + j * dil[i] for j in range(kernel[i])]
               for i in range(nd)]
        idx = [[j for j in ix if 0 <= j < sp[i]] for i, ix in enumerate(idx)]  # -inf padding
        out[(Ellipsis,) + o] = x[(Ellipsis,) + np.ix_(*idx)].reshape(x.shape[:-nd] + (-1,)).max(-1)
    return out


def _np_avg_pool(x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
    """PyTorch's avg_pool: a window clipped to the padded input counts its padding cells when
    `count_include_pad`; windows that start in the padding past the end are dropped."""
    nd = len(kernel)
    stride = stride or kernel
    pad = (padding,) * nd if isinstance(padding, int) else padding
    sp = x.shape[-nd:]
    sizes = [_pool_size(sp[i], kernel[i], stride[i], pad[i], 1, ceil_mode) for i in range(nd)]
    out = np.empty(x.shape[:-nd] + tuple(sizes))
    for o in np.ndindex(*sizes):
        lo = [o[i] * stride[i] - pad[i] for i in range(nd)]
        hi = [min(lo[i] + kernel[i], sp[i] + pad[i]) for i in range(nd)]
        padded_count = np.prod([h - l for l, h in zip(lo, hi)])
        lo, hi = [max(v, 0) for v in lo], [min(h, sp[i]) for i, h in enumerate(hi)]
        window = x[(Ellipsis,) + tuple(slice(a, b) for a, b in zip(lo, hi))]
        total = window.reshape(x.shape[:-nd] + (-1,)).sum(-1)
        count = divisor_override or (padded_count if count_include_pad else
                                     np.prod([h - l for l, h in zip(lo, hi)]))
        out[(Ellipsis,) + o] = total / count
    return out


def _np_adaptive_avg_pool(x, sizes):
    nd = len(sizes)
    sp = x.shape[-nd:]
    out = np.empty(x.shape[:-nd] + tuple(sizes))
    for o in np.ndindex(*sizes):
        window = tuple(slice(math.floor(o[i] * sp[i] / sizes[i]),
                             math.ceil((o[i] + 1) * sp[i] / sizes[i])) for i in range(nd))
        out[(Ellipsis,) + o] = x[(Ellipsis,) + window].mean(axis=tuple(range(-nd, 0)))
    return out


def _np_pad(x, pad, mode="constant", value=0.0):
    pairs = [(0, 0)] * (x.ndim - len(pad) // 2) + [(pad[2 * i], pad[2 * i + 1])
                                                   for i in reversed(range(len(pad) // 2))]
    grow = [(max(a, 0), max(b, 0)) for a, b in pairs]
    kw = {"constant_values": value} if mode == "constant" else {}
    y = np.pad(x, grow, mode={"constant": "constant", "reflect": "reflect", "replicate": "edge",
                              "circular": "wrap"}[mode], **kw)
    return y[tuple(slice(-min(a, 0), y.shape[i] + min(b, 0)) for i, (a, b) in enumerate(pairs))]


def _np_resample_axis(x, axis, out, mode, align_corners=False):
    """PyTorch's nearest (src = floor(dst * in / out)) and linear (half-pixel centres, or corners)
    sampling along one axis."""
    n = x.shape[axis]
    dst = np.arange(out, dtype=np.float64)
    if mode == "nearest":
        src = np.minimum(np.floor(dst * n / out).astype(int), n - 1)
        return np.take(x, src, axis=axis)
    if align_corners:
        src = dst * ((n - 1) / (out - 1) if out > 1 else 0.0)
    else:
        src = np.maximum((dst + 0.5) * n / out - 0.5, 0.0)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    lam = (src - i0).reshape((-1,) + (1,) * (x.ndim - axis - 1))
    return np.take(x, i0, axis=axis) * (1 - lam) + np.take(x, i1, axis=axis) * lam


def _np_interpolate(x, size, mode, align_corners=False):
    for d, s in enumerate(size):
        x = _np_resample_axis(x, x.ndim - len(size) + d, s, mode, align_corners)
    return x


def _reduce(loss, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](loss)


def _np_nll(logp, target, weight=None, reduction="mean", ignore_index=-100):
    cdim = 1 if logp.ndim > 1 else 0
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    picked = np.take_along_axis(logp, np.expand_dims(safe, cdim), cdim).squeeze(cdim)
    w = (np.ones(logp.shape[cdim]) if weight is None else weight)[safe] * valid
    loss = -picked * w
    return loss.sum() / w.sum() if reduction == "mean" else _reduce(loss, reduction)


def _np_cross_entropy(x, target, weight=None, reduction="mean", ignore_index=-100,
                      label_smoothing=0.0):
    """PyTorch's definition: (1 - ls) * nll + ls / C * sum_c (-w_c log p_c), the smoothing term
    of a 'mean' divided by the same sum of target weights as the nll term."""
    c = x.shape[1]
    logp = _log_softmax(x, 1)
    wc = np.ones(c) if weight is None else weight
    wl = logp * _channel(wc, x.ndim)
    if target.dtype.kind == "f":
        t = target * (1 - label_smoothing) + label_smoothing / c
        loss = -(wl * t).sum(1)
        return loss.sum() / (x.size / c) if reduction == "mean" else _reduce(loss, reduction)
    nll = _np_nll(logp, target, weight, reduction, ignore_index)
    valid = target != ignore_index
    smooth = -wl.sum(1) * valid
    if reduction == "mean":
        smooth = smooth.sum() / (wc[np.where(valid, target, 0)] * valid).sum()
    else:
        smooth = _reduce(smooth, reduction)
    return (1 - label_smoothing) * nll + label_smoothing / c * smooth


def _np_bce_logits(x, t, weight=None, pos_weight=None, reduction="mean"):
    pw = 1.0 if pos_weight is None else pos_weight
    loss = -(pw * t * np.log(_sigmoid(x)) + (1 - t) * np.log(1 - _sigmoid(x)))
    return _reduce(loss * (1.0 if weight is None else weight), reduction)


def _np_kl_div(x, t, reduction, log_target=False):
    loss = np.exp(t) * (t - x) if log_target else t * (np.log(t) - x)
    return loss.sum() / x.shape[0] if reduction == "batchmean" else _reduce(loss, reduction)


def _np_cell(mode, x, h, c, w_ih, w_hh, b_ih=0.0, b_hh=0.0):
    """One step of PyTorch's RNN / GRU / LSTM equations; returns (h', c')."""
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    if mode == "LSTM":
        i, f, g, o = np.split(gi + gh, 4, axis=-1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c), c
    if mode == "GRU":
        (ir, iz, in_), (hr, hz, hn) = np.split(gi, 3, axis=-1), np.split(gh, 3, axis=-1)
        r, z = _sigmoid(ir + hr), _sigmoid(iz + hz)
        n = np.tanh(in_ + r * hn)
        return (1 - z) * n + z * h, c
    pre = gi + gh
    return (np.tanh(pre) if mode == "RNN_TANH" else np.maximum(pre, 0.0)), c


def _np_rnn(mode, x, h0, c0, params, bidirectional, has_bias):
    """One time-major layer, both directions; returns (output, h_n, c_n)."""
    per = 4 if has_bias else 2
    outs, hs, cs = [], [], []
    for d in range(2 if bidirectional else 1):
        p = params[d * per:(d + 1) * per]
        h, c, ys = h0[d], c0[d], [None] * x.shape[0]
        steps = range(x.shape[0] - 1, -1, -1) if d == 1 else range(x.shape[0])
        for t in steps:
            h, c = _np_cell(mode, x[t], h, c, *p)
            ys[t] = h
        outs.append(np.stack(ys))
        hs.append(h)
        cs.append(c)
    return np.concatenate(outs, -1), np.stack(hs), np.stack(cs)


# -- modules as functions of their parameters -----------------------------------------------------
def module_check(module, inputs, call=lambda m, *xs: m(*xs), pick=lambda out: out, ref=None):
    """A Check differentiating `module`'s inputs and all its parameters (through functional_call,
    with values drawn here, not by the module's initialisation); `ref` gets the input arrays, then
    the parameter arrays in `named_parameters` order."""
    module = module.double()
    names = [n for n, _ in module.named_parameters()]
    values = [rand(*p.shape, lo=-0.7, hi=0.7) for _, p in module.named_parameters()]
    n_in = len(inputs)
    wrapper = _Calling(module, call)  # so that `call` passes states the way the module takes them

    def fn(*tensors):
        params = {"inner." + n: t for n, t in zip(names, tensors[n_in:])}
        return pick(functional_call(wrapper, params, tuple(tensors[:n_in])))
    return Check(fn, list(inputs) + values, ref)


class _Calling(nn.Module):
    def __init__(self, inner, call) -> None:
        super().__init__()
        self.inner = inner
        self._call = call

    def forward(self, *xs):
        return self._call(self.inner, *xs)


def _seeded(fn, seed=7):
    """Draw the same random mask on every evaluation (dropout), so finite differences apply."""
    def run(*tensors):
        tapegrad.manual_seed(seed)
        return fn(*tensors)
    return run


# -- the table: row name -> public calls that record it, with their inputs -----------------------
_X = rand(2, 3, 2)
_LOGITS = rand(4, 5)
_IDX_IGNORE = np.array([1, -100, 4, 2])
_IDX_3D = np.array([[0, 1, 2, 1], [2, 2, 0, 1]])
_P = pos(4, 3, lo=0.05, hi=0.95)
_T = pos(4, 3, lo=0.0, hi=1.0)


def _mha_ref(x, mask, w_in, b_in, *_):
    """MultiheadAttention's weights averaged over its 2 heads, time-major (L, N, E) input."""
    L, N, E = x.shape
    q = (x @ w_in[:E].T + b_in[:E]).reshape(L, N, 2, E // 2).transpose(1, 2, 0, 3)
    k = (x @ w_in[E:2 * E].T + b_in[E:2 * E]).reshape(L, N, 2, E // 2).transpose(1, 2, 0, 3)
    return _np_attention(q, k, mask=mask).mean(axis=1)


_MHA_MASK = rand(3, 3)

TABLE: dict[str, list[Check]] = {
    # -- activations
    "relu6": [Check(F.relu6, [rand(3, 4, lo=-2, hi=8, away=(0, 6))], lambda x: np.clip(x, 0, 6))],
    "hardsigmoid": [Check(F.hardsigmoid, [rand(3, 4, lo=-5, hi=5, away=(-3, 3))],
                          lambda x: np.clip(x / 6 + 0.5, 0, 1))],
    "hardswish": [Check(F.hardswish, [rand(3, 4, lo=-5, hi=5, away=(-3, 3))],
                        lambda x: x * np.clip(x + 3, 0, 6) / 6)],
    "selu": [Check(F.selu, [rand(3, 4, away=(0,))],
                   lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(x)))],
    "silu": [Check(F.silu, [rand(3, 4) * 3], lambda x: x * _sigmoid(x))],
    "mish": [Check(F.mish, [rand(3, 4) * 3], lambda x: x * np.tanh(np.log1p(np.exp(x))))],
    "softsign": [Check(F.softsign, [rand(3, 4, away=(0,))], lambda x: x / (1 + np.abs(x)))],
    "hardtanh": [Check(F.hardtanh, [rand(3, 4, away=(-1, 1))], lambda x: np.clip(x, -1, 1)),
                 Check(lambda x: F.hardtanh(x, 0.0, 0.5), [rand(3, 2, away=(0, 0.5))],
                       lambda x: np.clip(x, 0, 0.5))],
    "leaky_relu": [Check(lambda x: F.leaky_relu(x, 0.3), [rand(3, 4, away=(0,))],
                         lambda x: np.where(x > 0, x, 0.3 * x)),
                   Check(F.leaky_relu, [rand(2, 3, away=(0,))],
                         lambda x: np.where(x > 0, x, 0.01 * x))],
    "elu": [Check(lambda x: F.elu(x, 0.7), [rand(3, 4, lo=-4, hi=2, away=(0,))],
                  lambda x: np.where(x > 0, x, 0.7 * np.expm1(x)))],
    "gelu": [Check(F.gelu, [rand(3, 4) * 2], lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
             Check(lambda x: F.gelu(x, approximate="tanh"), [rand(3, 4) * 2],
                   lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi)
                                                    * (x + 0.044715 * x**3))))],
    "softplus": [Check(F.softplus, [rand(3, 4) * 4], lambda x: np.log1p(np.exp(x))),
                 Check(lambda x: F.softplus(x, beta=2.0, threshold=5.0),
                       [rand(3, 4, lo=-4, hi=4, away=(2.5,))],
                       lambda x: np.where(2 * x > 5, x, np.log1p(np.exp(2 * x)) / 2))],
    "log_sigmoid": [Check(F.logsigmoid, [rand(3, 4) * 5], lambda x: -np.log1p(np.exp(-x)))],
    "prelu": [Check(F.prelu, [rand(2, 3, 2, away=(0,)), rand(3)], _np_prelu),
              Check(F.prelu, [rand(3, 4, away=(0,)), np.array([0.25])], _np_prelu)],
    "glu": [Check(F.glu, [rand(3, 4)], lambda x: _np_glu(x, -1)),
            Check(lambda x: F.glu(x, 0), [_X], lambda x: _np_glu(x, 0))],
    "softmax": [Check(lambda x: F.softmax(x, 1), [rand(3, 4)], lambda x: _softmax(x, 1)),
                Check(lambda x: F.softmin(x, 0), [_X], lambda x: _softmax(-x, 0))],
    "log_softmax": [Check(lambda x: F.log_softmax(x, 1), [rand(3, 4)],
                          lambda x: _log_softmax(x, 1)),
                    Check(lambda x: F.log_softmax(x, 0), [rand(5)], lambda x: _log_softmax(x, 0))],
    # -- dropout (a fixed seed draws the same mask each evaluation), linear maps, embedding
    "dropout": [Check(_seeded(lambda x: F.dropout(x, 0.4)), [rand(4, 5)]),
                Check(_seeded(lambda x: F.dropout2d(x, 0.5)), [rand(3, 4, 2, 2)])],
    "linear": [Check(F.linear, [rand(3, 4), rand(5, 4), rand(5)], lambda x, w, b: x @ w.T + b),
               Check(F.linear, [rand(2, 3, 4), rand(2, 4)], lambda x, w: x @ w.T)],
    "bilinear": [Check(F.bilinear, [rand(3, 4), rand(3, 2), rand(5, 4, 2), rand(5)],
                       lambda a, b, w, c: np.einsum("ni,oij,nj->no", a, w, b) + c),
                 Check(F.bilinear, [rand(4), rand(2), rand(3, 4, 2)],
                       lambda a, b, w: np.einsum("i,oij,j->o", a, w, b))],
    "embedding": [Check(lambda i, w: F.embedding(i, w, padding_idx=2),
                        [np.array([[0, 2], [2, 3], [3, 3]]), rand(4, 3)], lambda i, w: w[i],
                        expect=lambda k, fd: np.where(np.arange(4)[:, None] == 2, 0.0, fd)),
                  Check(F.embedding, [np.array([1, 1, 0]), rand(3, 2)], lambda i, w: w[i])],
    # -- normalization
    "layer_norm": [Check(lambda x, w, b: F.layer_norm(x, (4, 5), w, b),
                         [rand(3, 4, 5), rand(4, 5), rand(4, 5)],
                         lambda x, w, b: _np_layer_norm(x, 2, w, b)),
                   Check(lambda x: F.layer_norm(x, (6,), eps=1e-3), [rand(2, 6)],
                         lambda x: _np_layer_norm(x, 1, eps=1e-3))],
    "group_norm": [Check(lambda x, w, b: F.group_norm(x, 3, w, b),
                         [rand(2, 6, 3), rand(6), rand(6)],
                         lambda x, w, b: _np_group_norm(x, 3, w, b)),
                   Check(lambda x: F.group_norm(x, 2), [rand(2, 4, 2, 2)],
                         lambda x: _np_group_norm(x, 2))],
    "batch_norm": [Check(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                         [rand(4, 3, 2), rand(3), rand(3)], _np_batch_norm),
                   Check(lambda x: F.batch_norm(x, None, None, training=True, eps=1e-3),
                         [rand(5, 2)], lambda x: _np_batch_norm(x, eps=1e-3))],
    "batch_norm_eval": [Check(lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b),
                              [rand(4, 3), rand(3), pos(3), rand(3), rand(3)], _np_batch_norm_eval),
                        Check(lambda x, m, v: F.batch_norm(x, m, v),
                              [rand(2, 3, 2), Fixed(rand(3)), Fixed(pos(3))], _np_batch_norm_eval)],
    "normalize": [Check(F.normalize, [rand(3, 4)],
                        lambda x: x / np.maximum(_pnorm(x, 2, 1, True), 1e-12)),
                  Check(lambda x: F.normalize(x, p=1.0, dim=0), [rand(3, 4, away=(0,))],
                        lambda x: x / _pnorm(x, 1, 0, True)),
                  Check(lambda x: F.normalize(x, p=3.0, dim=0), [rand(2, 3, 2)],
                        lambda x: x / _pnorm(x, 3, 0, True))],
    # -- distances and attention
    "cosine_similarity": [
        Check(F.cosine_similarity, [rand(3, 4), rand(3, 4)],
              lambda a, b: (a * b).sum(1) / (_pnorm(a, 2, 1) * _pnorm(b, 2, 1))),
        Check(lambda a, b: F.cosine_similarity(a, b, dim=-1), [rand(3, 4), rand(1, 4)],
              lambda a, b: (a * b).sum(-1) / (_pnorm(a, 2, -1) * _pnorm(b, 2, -1)))],
    "pairwise_distance": [
        Check(F.pairwise_distance, [rand(3, 4), rand(3, 4)],
              lambda a, b: _pnorm(a - b + 1e-6, 2, -1)),
        Check(lambda a, b: F.pairwise_distance(a, b, p=1.0, keepdim=True),
              [rand(3, 4, lo=-2, hi=0), rand(3, 4, lo=0.1, hi=2)],
              lambda a, b: _pnorm(a - b + 1e-6, 1, -1, True))],
    "attention_probs": [module_check(
        nn.MultiheadAttention(4, 2), [rand(3, 2, 4), Fixed(_MHA_MASK)],
        call=lambda m, x, mask: m(x, x, x, attn_mask=mask), pick=lambda out: out[1],
        ref=_mha_ref)],
    "scaled_dot_product_attention": [
        Check(F.scaled_dot_product_attention, [rand(2, 3, 4), rand(2, 5, 4), rand(2, 5, 2)],
              _np_attention),
        Check(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m, scale=0.5),
              [rand(1, 2, 3, 4), rand(1, 2, 3, 4), rand(1, 2, 3, 2),
               np.array([[True, False, True], [False, True, True], [True, True, False]])],
              lambda q, k, v, m: _np_attention(q, k, v, m, 0.5)),
        Check(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m),
              [rand(2, 3, 4), rand(2, 4, 4), rand(2, 4, 2), Fixed(rand(3, 4))], _np_attention),
        Check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
              [rand(1, 2, 4, 4), rand(1, 2, 4, 4), rand(1, 2, 4, 3)],
              lambda q, k, v: _np_attention(q, k, v, is_causal=True)),
        Check(_seeded(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, dropout_p=0.3)),
              [rand(2, 3, 4), rand(2, 3, 4), rand(2, 3, 2)])],
    # -- convolution, pooling, resampling
    "conv": [Check(lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, groups=2),
                   [rand(2, 4, 7), rand(6, 2, 3), rand(6)],
                   lambda x, w, b: _np_conv(x, w, b, (2,), (1,), (1,), 2)),
             Check(lambda x, w: F.conv2d(x, w, padding=(1, 0), dilation=(2, 1)),
                   [rand(1, 3, 5, 4), rand(2, 3, 2, 2)],
                   lambda x, w: _np_conv(x, w, None, (1, 1), (1, 0), (2, 1)))],
    "conv_transpose": [
        Check(lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1,
                                                 groups=2),
              [rand(2, 4, 3, 4), rand(4, 3, 3, 2), rand(6)],
              lambda x, w, b: _np_conv_transpose(x, w, b, (2, 2), (1, 1), (1, 1), None, 2)),
        Check(lambda x, w: F.conv_transpose1d(x, w, dilation=2), [rand(1, 2, 5), rand(2, 3, 2)],
              lambda x, w: _np_conv_transpose(x, w, dilation=(2,)))],
    "max_pool_with_indices": [
        Check(lambda x: F.max_pool2d(x, 2, ceil_mode=True, return_indices=True)[0],
              [rand(1, 2, 5, 5)], lambda x: _np_max_pool(x, (2, 2), ceil_mode=True)),
        Check(lambda x: F.max_pool1d(x, 2, stride=1, dilation=2, return_indices=True)[0],
              [rand(2, 6)], lambda x: _np_max_pool(x, (2,), (1,), dilation=2))],
    "max_unpool": [Check(lambda x: F.max_unpool2d(x, tapegrad.tensor([[[[0, 3], [9, 14]]]]), 2),
                         [rand(1, 1, 2, 2)], lambda x: _np_unpool(x, [0, 3, 9, 14], (4, 4)))],
    "max_pool": [Check(lambda x: F.max_pool2d(x, 2, ceil_mode=True), [rand(1, 2, 5, 5)],
                       lambda x: _np_max_pool(x, (2, 2), ceil_mode=True)),
                 Check(lambda x: F.max_pool2d(x, 2, stride=1, padding=1), [rand(2, 1, 3, 4)],
                       lambda x: _np_max_pool(x, (2, 2), (1, 1), 1)),
                 Check(lambda x: F.max_pool1d(x, 2, stride=1, dilation=2), [rand(2, 6)],
                       lambda x: _np_max_pool(x, (2,), (1,), dilation=2))],
    "avg_pool": [Check(lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
                       [rand(1, 2, 5, 5)],
                       lambda x: _np_avg_pool(x, (3, 3), (2, 2), 1, True, False)),
                 Check(lambda x: F.avg_pool2d(x, 3, 2, 1), [rand(1, 1, 5, 4)],
                       lambda x: _np_avg_pool(x, (3, 3), (2, 2), 1)),
                 Check(lambda x: F.avg_pool1d(x, 2, ceil_mode=True), [rand(2, 3, 7)],
                       lambda x: _np_avg_pool(x, (2,), ceil_mode=True)),
                 Check(lambda x: F.avg_pool2d(x, 2, divisor_override=3), [rand(1, 2, 4, 4)],
                       lambda x: _np_avg_pool(x, (2, 2), divisor_override=3))],
    "adaptive_avg_pool": [Check(lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [rand(2, 3, 7, 5)],
                                lambda x: _np_adaptive_avg_pool(x, (3, 2))),
                          Check(lambda x: F.adaptive_avg_pool1d(x, 3), [rand(2, 5)],
                                lambda x: _np_adaptive_avg_pool(x, (3,)))],
    "constant_pad_nd": [
        Check(lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), [rand(2, 3, 4)],
              lambda x: _np_pad(x, (1, 2, 0, 1), value=0.5)),
        Check(lambda x: F.pad(x, (1, -1)), [rand(2, 3, 4)], lambda x: _np_pad(x, (1, -1))),
        Check(lambda x: F.pad(x, (2, 1), mode="reflect"), [rand(1, 2, 4)],
              lambda x: _np_pad(x, (2, 1), "reflect")),
        Check(lambda x: F.pad(x, (1, 1, 2, 0), mode="replicate"), [rand(1, 2, 3, 4)],
              lambda x: _np_pad(x, (1, 1, 2, 0), "replicate")),
        Check(lambda x: F.pad(x, (1, 2), mode="circular"), [rand(1, 2, 4)],
              lambda x: _np_pad(x, (1, 2), "circular"))],
    "interpolate": [
        Check(lambda x: F.interpolate(x, size=(5, 7), mode="bicubic"), [rand(1, 2, 3, 4)]),
        Check(lambda x: F.interpolate(x, size=(2, 3, 5), mode="trilinear"), [rand(1, 1, 3, 2, 4)]),
        Check(lambda x: F.interpolate(x, size=(2, 3), mode="area"), [rand(1, 2, 5, 4)]),
        Check(lambda x: F.interpolate(x, scale_factor=1.7, mode="nearest-exact"), [rand(1, 2, 5)]),
        Check(lambda x: F.interpolate(x, size=(5, 7), mode="bilinear"), [rand(1, 2, 3, 4)],
              lambda x: _np_interpolate(x, (5, 7), "linear")),
        Check(lambda x: F.interpolate(x, size=7), [rand(1, 2, 3)],
              lambda x: _np_interpolate(x, (7,), "nearest")),
        Check(lambda x: F.interpolate(x, size=(2, 6)), [rand(1, 2, 5, 4)],
              lambda x: _np_interpolate(x, (2, 6), "nearest")),
        Check(lambda x: F.interpolate(x, size=7, mode="linear", align_corners=True),
              [rand(1, 2, 4)],
              lambda x: _np_interpolate(x, (7,), "linear", align_corners=True))],
    # -- losses
    "mse_loss": [Check(F.mse_loss, [rand(3, 4), rand(3, 4)], lambda x, t: np.mean((x - t) ** 2)),
                 Check(lambda x, t, w: F.mse_loss(x, t, weight=w),
                       [rand(3, 4), rand(3, 4), pos(3, 4)])],
    "l1_loss": [Check(F.l1_loss, [rand(3, 4, away=(0,)), np.zeros((3, 4))],
                      lambda x, t: np.mean(np.abs(x - t))),
                Check(lambda x, t: F.l1_loss(x, t, reduction="none"), [rand(3, 4, away=(0,)),
                                                                       np.zeros((3, 4))],
                      lambda x, t: np.abs(x - t))],
    "smooth_l1_loss": [
        Check(F.smooth_l1_loss, [rand(3, 4, lo=-3, hi=3, away=(-1, 0, 1)), np.zeros((3, 4))],
              lambda x, t: np.mean(np.where(np.abs(x - t) < 1, 0.5 * (x - t) ** 2,
                                            np.abs(x - t) - 0.5))),
        Check(lambda x, t: F.smooth_l1_loss(x, t, reduction="sum", beta=0.0),
              [rand(3, 4, away=(0,)), np.zeros((3, 4))], lambda x, t: np.abs(x - t).sum())],
    "huber_loss": [
        Check(lambda x, t: F.huber_loss(x, t, delta=0.5),
              [rand(3, 4, lo=-2, hi=2, away=(-0.5, 0, 0.5)), np.zeros((3, 4))],
              lambda x, t: np.mean(np.where(np.abs(x - t) <= 0.5, 0.5 * (x - t) ** 2,
                                            0.5 * (np.abs(x - t) - 0.25)))),
        Check(lambda x, t, w: F.huber_loss(x, t, delta=1.0, weight=w),
              [rand(3, 4, lo=-3, hi=3, away=(-1, 0, 1)), np.zeros((3, 4)), pos(3, 4)])],
    "nll_loss": [Check(lambda x, t, w: F.nll_loss(x, t, w), [_LOGITS, _IDX_IGNORE, Fixed(pos(5))],
                       _np_nll),
                 Check(lambda x, t: F.nll_loss(x, t, reduction="none"), [rand(2, 3, 4), _IDX_3D],
                       lambda x, t: _np_nll(x, t, reduction="none"))],
    "cross_entropy": [
        Check(F.cross_entropy, [_LOGITS, np.array([1, 0, 4, 2])], _np_cross_entropy),
        Check(lambda x, t, w: F.cross_entropy(x, t, w, label_smoothing=0.1),
              [_LOGITS, _IDX_IGNORE, Fixed(pos(5))],
              lambda x, t, w: _np_cross_entropy(x, t, w, label_smoothing=0.1)),
        Check(lambda x, t: F.cross_entropy(x, t, reduction="sum", label_smoothing=0.2),
              [_LOGITS, _R.dirichlet(np.ones(5), 4)],
              lambda x, t: _np_cross_entropy(x, t, reduction="sum", label_smoothing=0.2)),
        Check(lambda x, t: F.cross_entropy(x, t, reduction="none", label_smoothing=0.3),
              [rand(2, 3, 4), _IDX_3D],
              lambda x, t: _np_cross_entropy(x, t, reduction="none", label_smoothing=0.3))],
    "binary_cross_entropy": [
        Check(F.binary_cross_entropy, [_P, _T],
              lambda x, t: np.mean(-(t * np.log(x) + (1 - t) * np.log(1 - x)))),
        Check(lambda x, t, w: F.binary_cross_entropy(x, t, w, reduction="sum"),
              [pos(5, lo=0.05, hi=0.95), pos(5, lo=0, hi=1), pos(5)],
              lambda x, t, w: np.sum(-w * (t * np.log(x) + (1 - t) * np.log(1 - x))))],
    "binary_cross_entropy_with_logits": [
        Check(F.binary_cross_entropy_with_logits, [rand(4, 3) * 4, _T], _np_bce_logits),
        Check(lambda x, t, w, pw: F.binary_cross_entropy_with_logits(
            x, t, w, reduction="none", pos_weight=pw), [rand(4, 3) * 4, _T, pos(4, 3), pos(3)],
            lambda x, t, w, pw: _np_bce_logits(x, t, w, pw, "none"))],
    "kl_div": [Check(lambda x, t: F.kl_div(x, t, reduction="batchmean"), [np.log(_P), _T + 0.05],
                     lambda x, t: _np_kl_div(x, t, "batchmean")),
               Check(lambda x, t: F.kl_div(x, t, reduction="sum", log_target=True),
                     [np.log(_P), np.log(pos(4, 3, lo=0.1, hi=1))],
                     lambda x, t: _np_kl_div(x, t, "sum", True))],
    # -- recurrent layers and cells (modules; their parameters are differentiated too)
    "rnn_layer": [
        module_check(nn.RNN(3, 4), [rand(4, 2, 3), rand(1, 2, 4)], pick=lambda o: o[0] * 2 + o[1],
                     ref=lambda x, h, *p: (lambda r: r[0] * 2 + r[1])(
                         _np_rnn("RNN_TANH", x, h, h, p, False, True))),
        module_check(nn.GRU(2, 3, bidirectional=True, bias=False), [rand(3, 2, 2), rand(2, 2, 3)],
                     pick=lambda o: o[0],
                     ref=lambda x, h, *p: _np_rnn("GRU", x, h, h, p, True, False)[0]),
        module_check(nn.RNN(2, 3, nonlinearity="relu"), [rand(3, 2, 2), rand(1, 2, 3)],
                     pick=lambda o: o[1],
                     ref=lambda x, h, *p: _np_rnn("RNN_RELU", x, h, h, p, False, True)[1])],
    "lstm_layer": [module_check(
        nn.LSTM(2, 3, bidirectional=True), [rand(3, 2, 2), rand(2, 2, 3), rand(2, 2, 3)],
        call=lambda m, x, h, c: m(x, (h, c)), pick=lambda o: (o[0], o[1][0], o[1][1]),
        ref=lambda x, h, c, *p: _np_rnn("LSTM", x, h, c, p, True, True))],
    "rnn_cell": [
        module_check(nn.GRUCell(3, 4), [rand(2, 3), rand(2, 4)],
                     ref=lambda x, h, *p: _np_cell("GRU", x, h, h, *p)[0]),
        module_check(nn.RNNCell(3, 4, bias=False, nonlinearity="relu"), [rand(2, 3), rand(2, 4)],
                     ref=lambda x, h, *p: _np_cell("RNN_RELU", x, h, h, *p)[0]),
        module_check(nn.RNNCell(3, 2), [rand(2, 3), rand(2, 2)],
                     ref=lambda x, h, *p: _np_cell("RNN_TANH", x, h, h, *p)[0])],
    "lstm_cell": [module_check(
        nn.LSTMCell(3, 4), [rand(2, 3), rand(2, 4), rand(2, 4)],
        call=lambda m, x, h, c: m(x, (h, c)),
        ref=lambda x, h, c, *p: _np_cell("LSTM", x, h, c, *p))],
}


def _np_rms_norm(x, k, w=None, eps=1e-6):
    axes = tuple(range(x.ndim - k, x.ndim))
    return x / np.sqrt((x ** 2).mean(axis=axes, keepdims=True) + eps) * (1 if w is None else w)


def _np_adaptive_max_pool(x, sizes):
    nd = len(sizes)
    sp = x.shape[-nd:]
    out = np.empty(x.shape[:-nd] + tuple(sizes))
    for o in np.ndindex(*sizes):
        window = tuple(slice(math.floor(o[i] * sp[i] / sizes[i]),
                             math.ceil((o[i] + 1) * sp[i] / sizes[i])) for i in range(nd))
        out[(Ellipsis,) + o] = x[(Ellipsis,) + window].max(axis=tuple(range(-nd, 0)))
    return out


TABLE.update({
    "celu": [Check(lambda x: F.celu(x, 0.5), [rand(3, 4, lo=-3, hi=2, away=(0,))],
                   lambda x: np.where(x > 0, x, 0.5 * np.expm1(x / 0.5)))],
    "instance_norm": [
        Check(lambda x, w, b: F.instance_norm(x, weight=w, bias=b), [rand(2, 3, 4), rand(3),
                                                                     rand(3)],
              lambda x, w, b: _np_norm(x, (2,), 1e-5) * _channel(w, 3) + _channel(b, 3)),
        Check(lambda x: nn.InstanceNorm2d(2)(x), [rand(2, 2, 3, 2)],
              lambda x: _np_norm(x, (2, 3), 1e-5))],
    "rms_norm": [Check(lambda x, w: F.rms_norm(x, (4, 5), w, eps=1e-6),
                       [rand(3, 4, 5), rand(4, 5)], lambda x, w: _np_rms_norm(x, 2, w)),
                 Check(lambda x: F.rms_norm(x, (6,), eps=1e-3), [rand(2, 6)],
                       lambda x: _np_rms_norm(x, 1, eps=1e-3))],
    # distinct values (random), so every window has one maximum
    "adaptive_max_pool": [Check(lambda x: F.adaptive_max_pool2d(x, (2, 3)), [rand(2, 3, 5, 7)],
                                lambda x: _np_adaptive_max_pool(x, (2, 3))),
                          Check(lambda x: nn.AdaptiveMaxPool1d(3)(x), [rand(2, 7)],
                                lambda x: _np_adaptive_max_pool(x, (3,))),
                          Check(lambda x: F.adaptive_max_pool3d(x, 2), [rand(1, 3, 4, 3)],
                                lambda x: _np_adaptive_max_pool(x, (2, 2, 2)))],
    # 3-d variants of existing rows
    "conv": TABLE["conv"] + [Check(lambda x, w: F.conv3d(x, w, stride=(1, 2, 1), padding=1),
                                   [rand(1, 2, 3, 4, 3), rand(2, 2, 2, 2, 2)],
                                   lambda x, w: _np_conv(x, w, None, (1, 2, 1), (1, 1, 1)))],
    "conv_transpose": TABLE["conv_transpose"] + [
        Check(lambda x, w: F.conv_transpose3d(x, w, stride=2, padding=(0, 1, 0)),
              [rand(1, 2, 2, 2, 2), rand(2, 2, 2, 3, 2)],
              lambda x, w: _np_conv_transpose(x, w, None, (2, 2, 2), (0, 1, 0)))],
    "max_pool": TABLE["max_pool"] + [
        Check(lambda x: F.max_pool3d(x, 2, stride=1, padding=(0, 1, 0)), [rand(1, 3, 3, 4)],
              lambda x: _np_max_pool(x, (2, 2, 2), (1, 1, 1), (0, 1, 0)))],
    "avg_pool": TABLE["avg_pool"] + [
        Check(lambda x: F.avg_pool3d(x, 3, 2, 1, count_include_pad=False), [rand(1, 2, 4, 5, 3)],
              lambda x: _np_avg_pool(x, (3, 3, 3), (2, 2, 2), 1, False, False))],
})

# Rows without a finite-difference check, and why. Each still has an independent value check
# below (and against PyTorch in test_nn_torch_parity.py).
EXCLUDED = {
    "one_hot": "integer output, not differentiable",
    "running_update": "BatchNorm's running statistics, updated in place under no_grad "
                      "(the row is not differentiable)",
    "clip_grad_total_norm": "reads .grad under no_grad (the row is not differentiable)",
    "clip_grad_scale": "scales .grad in place under no_grad (the row is not differentiable)",
}


# -- running the checks ---------------------------------------------------------------------------
def _tensors(args, grad: bool) -> list:
    out = []
    for a in args:
        if isinstance(a, Fixed):
            out.append(tapegrad.tensor(a.array, dtype=tapegrad.float64))
        elif a.dtype.kind == "f":
            out.append(tapegrad.tensor(a, dtype=tapegrad.float64, requires_grad=grad))
        else:
            out.append(tapegrad.tensor(a))
    return out


def _as_tuple(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def _raw(args) -> list:
    return [a.array if isinstance(a, Fixed) else a for a in args]


def _ids(table):
    return [pytest.param(row, i, id=f"{row}-{i}") for row, checks in table.items()
            for i in range(len(checks))]


def _finite_differences(check, cts) -> list:
    """Central differences of `sum(f(x) * ct)` by tapegrad's float64 forward, per float input
    (None for inputs that are not differentiated)."""
    def objective(args):
        with tapegrad.no_grad():
            values = _as_tuple(check.fn(*_tensors(args, grad=False)))
        return sum(float(np.sum(v.numpy() * c)) for v, c in zip(values, cts))

    out = []
    for k, a in enumerate(check.args):
        if isinstance(a, Fixed) or a.dtype.kind != "f":
            out.append(None)
            continue
        fd = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            args = list(check.args)
            up, down = a.copy(), a.copy()
            up[idx] += EPS
            down[idx] -= EPS
            args[k] = up
            f_up = objective(args)
            args[k] = down
            fd[idx] = (f_up - objective(args)) / (2 * EPS)
        out.append(fd if check.expect is None else check.expect(k, fd))
    return out


def _assert_gradients_match(checks, row=None) -> None:
    """All `checks` on one tape, one backward (compiles dominate the cost); then each float
    input's gradient against finite differences."""
    rng = np.random.default_rng(11)
    runs = []  # (check, leaves, cotangents)
    total = None
    for i, check in enumerate(checks):
        leaves = _tensors(check.args, grad=True)
        outs = _as_tuple(check.fn(*leaves))
        if row is not None:
            assert row in recorded_rows(outs), f"check {i}: the call does not record {row!r}"
        cts = [rng.uniform(-1.5, 1.5, tuple(o.shape)) for o in outs]
        part = sum((o * tapegrad.tensor(c)).sum() for o, c in zip(outs, cts))
        total = part if total is None else total + part
        runs.append((check, leaves, cts))
    total.backward()
    for i, (check, leaves, cts) in enumerate(runs):
        fds = _finite_differences(check, cts)
        assert any(fd is not None for fd in fds)
        for k, (fd, leaf) in enumerate(zip(fds, leaves)):
            if fd is None:
                continue
            got = np.zeros_like(fd) if leaf.grad is None else leaf.grad.numpy()
            assert got.shape == fd.shape
            np.testing.assert_allclose(got, fd, rtol=RTOL, atol=ATOL,
                                       err_msg=f"{row} check {i}, input {k}")


@pytest.mark.parametrize("row", list(TABLE))
def test_gradient_matches_finite_differences(row):
    _assert_gradients_match(TABLE[row], row)


class _Cube(tapegrad.autograd.Function):
    """x ** 3 with a backward that is off by `factor` (1: the true derivative)."""

    factor = 1.0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x * _Cube.factor


@pytest.mark.parametrize("factor", [1.0 + 1e-4, 1.0 - 1e-4])
def test_a_wrong_derivative_fails(factor, monkeypatch):
    """The harness itself: a backward off by 0.01% fails, the true one passes."""
    check = Check(lambda x: F.softsign(_Cube.apply(x)), [rand(3, 2, lo=0.5, hi=1.5)])
    _assert_gradients_match([check])
    monkeypatch.setattr(_Cube, "factor", factor)
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        _assert_gradients_match([check])


@pytest.mark.parametrize("row,i", [p for p in _ids(TABLE) if TABLE[p.values[0]][p.values[1]].ref])
def test_value_matches_numpy(row, i):
    check = TABLE[row][i]
    outs = _as_tuple(check.fn(*_tensors(check.args, grad=False)))
    expected = _as_tuple(check.ref(*_raw(check.args)))
    assert len(outs) == len(expected)
    for o, e in zip(outs, expected):
        assert tuple(o.shape) == np.shape(e)
        assert o.dtype == tapegrad.float64
        np.testing.assert_allclose(o.numpy(), e, rtol=1e-10, atol=1e-12)


def test_every_nn_row_has_an_independent_reference():
    rows = set(ROW_CASES)
    assert len(rows) > 40
    missing = sorted(rows - set(TABLE) - set(EXCLUDED))
    assert not missing, \
        f"nn rows without a finite-difference check (or a reason in EXCLUDED): {missing}"
    assert not sorted((set(TABLE) | set(EXCLUDED)) - rows), "entries for rows that do not exist"
    assert not set(TABLE) & set(EXCLUDED)
    assert all(TABLE[row] for row in TABLE) and all(reason for reason in EXCLUDED.values())


def test_dropout_keeps_and_scales():
    """Dropout's value: each element is 0 or x / (1 - p); a channel mask is constant per channel."""
    x = rand(200, lo=0.5, hi=1.5)
    out = F.dropout(tapegrad.tensor(x), 0.25).numpy()
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / 0.75, rtol=1e-12)
    assert 100 < kept.sum() < 200
    x2 = rand(4, 6, 3, 2, lo=0.5, hi=1.5)
    out2 = F.dropout2d(tapegrad.tensor(x2), 0.5).numpy()
    kept2 = out2 != 0
    assert (kept2 == kept2[..., :1, :1]).all() and 0 < kept2.sum() < kept2.size
    np.testing.assert_allclose(out2[kept2], x2[kept2] * 2, rtol=1e-12)


# -- the excluded rows: values against numpy ------------------------------------------------------
def test_one_hot_values():
    idx = np.array([[0, 2], [3, 1]])
    got = F.one_hot(tapegrad.tensor(idx), 5)
    assert got.dtype == tapegrad.int64
    np.testing.assert_array_equal(got.numpy(), np.eye(5, dtype=np.int64)[idx])
    np.testing.assert_array_equal(F.one_hot(tapegrad.tensor(idx)).numpy(), np.eye(4)[idx])


def test_running_update_values():
    x = rand(6, 3, 2)
    rm, rv = rand(3), pos(3)
    mean_t, var_t = tapegrad.tensor(rm), tapegrad.tensor(rv)
    F.batch_norm(tapegrad.tensor(x), mean_t, var_t, training=True, momentum=0.3)
    n = x.size // 3
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2)) * n / (n - 1)
    np.testing.assert_allclose(mean_t.numpy(), 0.7 * rm + 0.3 * mean, rtol=1e-12)
    np.testing.assert_allclose(var_t.numpy(), 0.7 * rv + 0.3 * var, rtol=1e-12)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
def test_clip_grad_norm_values(norm_type):
    grads = [rand(3, 4), rand(5), rand(2, 2)]
    flat = np.concatenate([g.ravel() for g in grads])
    total = np.abs(flat).max() if norm_type == math.inf else (np.abs(flat) ** norm_type).sum() ** (
        1 / norm_type)
    for max_norm in (0.5 * total, 2 * total):
        params = [tapegrad.zeros(g.shape, dtype=tapegrad.float64, requires_grad=True)
                  for g in grads]
        for p, g in zip(params, grads):
            p.grad = tapegrad.tensor(g)
        got = nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
        assert float(got) == pytest.approx(total, rel=1e-12)
        scale = min(max_norm / (total + 1e-6), 1.0)
        for p, g in zip(params, grads):
            np.testing.assert_allclose(p.grad.numpy(), g * scale, rtol=1e-12)
