"""Registry rows for recurrent layers: one row per layer (both directions), a `lax.scan` inside.

A whole sequence is one node, so recording an RNN costs the same as recording a Linear layer,
and XLA compiles the time loop once. Inputs are time-major `(T, B, I)`; initial states are
`(D, B, H)` with D = 2 for bidirectional layers. Weights come in PyTorch's layout and gate order
(LSTM: i, f, g, o; GRU: r, z, n).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ._graph import Op


def _cell(mode, x_proj, h, c, w_hh, b_hh):
    """One time step; `x_proj` is the input projection (with its bias) computed up front."""
    gh = h @ w_hh.T + b_hh
    if mode == "LSTM":
        i, f, g, o = jnp.split(x_proj + gh, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        return jax.nn.sigmoid(o) * jnp.tanh(c), c
    if mode == "GRU":
        xr, xz, xn = jnp.split(x_proj, 3, axis=-1)
        hr, hz, hn = jnp.split(gh, 3, axis=-1)
        r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        return (1 - z) * n + z * h, c
    pre = x_proj + gh
    return (jnp.tanh(pre) if mode == "RNN_TANH" else jnp.where(pre > 0, pre, 0 * pre)), c


def _direction(mode, x, h0, c0, params, has_bias, reverse):
    w_ih, w_hh = params[0], params[1]
    b_ih, b_hh = (params[2], params[3]) if has_bias else (0.0, 0.0)
    x_proj = x @ w_ih.T + b_ih

    def step(carry, xp):
        h, c = _cell(mode, xp, carry[0], carry[1], w_hh, b_hh)
        return (h, c), h

    (h, c), ys = lax.scan(step, (h0, c0), x_proj, reverse=reverse)
    return ys, h, c


def _rnn_layer(x, h0, *rest, mode, bidirectional, has_bias):
    lstm = mode == "LSTM"
    c0 = rest[0] if lstm else jnp.zeros_like(h0)
    params = rest[1:] if lstm else rest
    per_dir = 4 if has_bias else 2
    outs, hs, cs = [], [], []
    for d in range(2 if bidirectional else 1):
        ys, h, c = _direction(mode, x, h0[d], c0[d], params[d * per_dir:(d + 1) * per_dir],
                              has_bias, reverse=d == 1)
        outs.append(ys)
        hs.append(h)
        cs.append(c)
    out = jnp.concatenate(outs, axis=-1)
    if lstm:
        return out, jnp.stack(hs), jnp.stack(cs)
    return out, jnp.stack(hs)


rnn_layer = Op("rnn_layer", _rnn_layer, n_out=2, grad_name="RnnBackward0")
lstm_layer = Op("lstm_layer", _rnn_layer, n_out=3, grad_name="LstmBackward0")


def _rnn_cell(x, h, *rest, mode, has_bias):
    """One step of an RNN/GRU cell (`LSTM`: `rest` starts with the cell state; returns (h, c))."""
    lstm = mode == "LSTM"
    c = rest[0] if lstm else h
    params = rest[1:] if lstm else rest
    w_ih, w_hh = params[0], params[1]
    b_ih, b_hh = (params[2], params[3]) if has_bias else (0.0, 0.0)
    h, c = _cell(mode, x @ w_ih.T + b_ih, h, c, w_hh, b_hh)
    return (h, c) if lstm else h


rnn_cell = Op("rnn_cell", _rnn_cell, grad_name="RnnCellBackward0")
lstm_cell = Op("lstm_cell", _rnn_cell, n_out=2, grad_name="LstmCellBackward0")
