"""`RNN`, `LSTM` and `GRU`: each layer is one recorded op (a `lax.scan` over time)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..._core import autocast as _autocast
from ..._core.graph import Op
from ..._functions.creation import empty, zeros
from ..._functions.shape import cat
from ..._tensor.apply import apply
from ..._tensor.construct import tensor
from ..._tensor.tensor import Tensor
from .. import functional as F, init
from ..parameter import Parameter
from ..utils import rnn as rnn_utils
from ..utils.rnn import PackedSequence
from .module import Module


def _cell(mode, x_proj, h, c, w_hh, b_hh, w_hr=None):
    """One time step; `x_proj` is the input projection (with its bias) computed up front;
    `w_hr` (LSTM with `proj_size`) projects the hidden state."""
    gh = h @ w_hh.T + b_hh
    if mode == "LSTM":
        i, f, g, o = jnp.split(x_proj + gh, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h if w_hr is None else h @ w_hr.T), c
    if mode == "GRU":
        xr, xz, xn = jnp.split(x_proj, 3, axis=-1)
        hr, hz, hn = jnp.split(gh, 3, axis=-1)
        r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        return (1 - z) * n + z * h, c
    pre = x_proj + gh
    return (jnp.tanh(pre) if mode == "RNN_TANH" else jnp.where(pre > 0, pre, 0 * pre)), c


def _direction(mode, x, h0, c0, params, has_bias, reverse, valid, proj=False):
    """One direction over time. `valid` (T, B, 1) bool or None: past a sequence's length the
    state is carried unchanged and the output is zero, so a reverse scan starts each sequence
    at its own last element. `proj`: the last of `params` is LSTM's `weight_hr`."""
    w_ih, w_hh = params[0], params[1]
    b_ih, b_hh = (params[2], params[3]) if has_bias else (0.0, 0.0)
    w_hr = params[-1] if proj else None
    x_proj = x @ w_ih.T + b_ih

    def step(carry, xs):
        xp, m = xs
        h, c = _cell(mode, xp, carry[0], carry[1], w_hh, b_hh, w_hr)
        if m is None:
            return (h, c), h
        return (jnp.where(m, h, carry[0]), jnp.where(m, c, carry[1])), jnp.where(m, h, 0 * h)

    (h, c), ys = lax.scan(step, (h0, c0), (x_proj, valid), reverse=reverse)
    return ys, h, c


def _rnn_layer(x, h0, *rest, mode, bidirectional, has_bias, masked=False, proj=False):
    """A whole layer, both directions; `masked`: `rest` starts with the (B,) sequence lengths;
    `proj`: each direction's parameters end with LSTM's `weight_hr`."""
    lengths, rest = (rest[0], rest[1:]) if masked else (None, rest)
    valid = None if lengths is None else \
        (jnp.arange(x.shape[0])[:, None] < lengths[None, :])[..., None]
    lstm = mode == "LSTM"
    c0 = rest[0] if lstm else jnp.zeros_like(h0)
    params = rest[1:] if lstm else rest
    per_dir = (4 if has_bias else 2) + (1 if proj else 0)
    outs, hs, cs = [], [], []
    for d in range(2 if bidirectional else 1):
        ys, h, c = _direction(mode, x, h0[d], c0[d], params[d * per_dir:(d + 1) * per_dir],
                              has_bias, d == 1, valid, proj)
        outs.append(ys)
        hs.append(h)
        cs.append(c)
    out = jnp.concatenate(outs, axis=-1)
    if lstm:
        return out, jnp.stack(hs), jnp.stack(cs)
    return out, jnp.stack(hs)


rnn_layer_op = Op("rnn_layer", _rnn_layer, n_out=2, grad_name="RnnBackward0")
lstm_layer_op = Op("lstm_layer", _rnn_layer, n_out=3, grad_name="LstmBackward0")


def _rnn_cell(x, h, *rest, mode, has_bias):
    """One step of an RNN/GRU cell (`LSTM`: `rest` starts with the cell state; returns (h, c))."""
    lstm = mode == "LSTM"
    c = rest[0] if lstm else h
    params = rest[1:] if lstm else rest
    w_ih, w_hh = params[0], params[1]
    b_ih, b_hh = (params[2], params[3]) if has_bias else (0.0, 0.0)
    h, c = _cell(mode, x @ w_ih.T + b_ih, h, c, w_hh, b_hh)
    return (h, c) if lstm else h


rnn_cell_op = Op("rnn_cell", _rnn_cell, grad_name="RnnCellBackward0")
lstm_cell_op = Op("lstm_cell", _rnn_cell, n_out=2, grad_name="LstmCellBackward0")

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _insert_batch(t: Tensor) -> Tensor:
    shape = tuple(t.shape)
    return t.reshape(shape[:1] + (1,) + shape[1:])


def _drop_batch(t: Tensor) -> Tensor:
    shape = tuple(t.shape)
    return t.reshape(shape[:1] + shape[2:])


class RNNBase(Module):
    """Shared by RNN/LSTM/GRU: PyTorch's parameter names (`weight_ih_l0`, `bias_hh_l1_reverse`,
    ...), order and U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) initialisation."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             "projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, proj_size
        dirs = 2 if bidirectional else 1
        gate = _GATES[mode] * hidden_size
        real_hidden = proj_size or hidden_size  # the size of h (and of each layer's output)
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else real_hidden * dirs
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
                shapes = [("weight_ih" + sfx, (gate, layer_in)),
                          ("weight_hh" + sfx, (gate, real_hidden))]
                if bias:
                    shapes += [("bias_ih" + sfx, (gate,)), ("bias_hh" + sfx, (gate,))]
                if proj_size:
                    shapes.append(("weight_hr" + sfx, (proj_size, hidden_size)))
                for name, shape in shapes:
                    setattr(self, name, Parameter(empty(*shape, dtype=dtype, device=device)))
                    self._flat_weights_names.append(name)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """A no-op: PyTorch compacts cuDNN weights here; XLA needs no particular layout."""

    def _per_direction(self) -> int:
        return (4 if self.bias else 2) + (1 if self.proj_size else 0)

    @property
    def all_weights(self) -> list:
        per = self._per_direction()
        return [[getattr(self, n) for n in self._flat_weights_names[i:i + per]]
                for i in range(0, len(self._flat_weights_names), per)]

    def _layer_params(self, layer: int) -> list:
        per = self._per_direction() * (2 if self.bidirectional else 1)
        return [getattr(self, n) for n in self._flat_weights_names[layer * per:(layer + 1) * per]]

    def _state_sizes(self) -> list:
        """The last size of each state: `(h,)`, or LSTM's `(h, c)` (h has `proj_size`)."""
        if self.mode != "LSTM":
            return [self.hidden_size]
        return [self.proj_size or self.hidden_size, self.hidden_size]

    def _zeros_states(self, batch: int, dtype) -> list:
        dirs = 2 if self.bidirectional else 1
        return [zeros(self.num_layers * dirs, batch, size, dtype=dtype)
                for size in self._state_sizes()]

    def _run(self, input: Tensor, states: list, lengths: Tensor | None = None):
        """Time-major multi-layer run; returns the output and the final states, stacked.
        `lengths`: each sequence's length (a masked run, see `_direction`)."""
        dirs = 2 if self.bidirectional else 1
        lstm = self.mode == "LSTM"
        masked = () if lengths is None else (lengths,)
        x, finals = input, [[] for _ in states]
        for layer in range(self.num_layers):
            h0, *c0 = [s[layer * dirs:(layer + 1) * dirs] for s in states]
            outs = apply(lstm_layer_op if lstm else rnn_layer_op, x, h0, *masked, *c0,
                         *self._layer_params(layer), mode=self.mode,
                         bidirectional=self.bidirectional, has_bias=self.bias,
                         masked=lengths is not None, proj=bool(self.proj_size))
            x = outs[0]
            for f, s in zip(finals, outs[1:]):
                f.append(s)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, [f[0] if len(f) == 1 else cat(f, 0) for f in finals]

    def _check_input(self, input: Tensor, packed: bool) -> None:
        weight_dtype = getattr(self, self._flat_weights_names[0]).dtype
        if input.dtype is not weight_dtype and not _autocast.state.active:
            raise ValueError(f"RNN input dtype ({input.dtype}) does not match weight dtype "
                             f"({weight_dtype}). Convert input: input.to({weight_dtype}), or "
                             f"convert model: model.to({input.dtype})")
        expected = 2 if packed else 3
        if input.ndim != expected:
            raise RuntimeError(f"input must have {expected} dimensions, got {input.ndim}")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {input.shape[-1]}")

    def _check_states(self, states: list, batch: int) -> None:
        layers = (2 if self.bidirectional else 1) * self.num_layers
        names = ["hidden[0] ", "hidden[1] "] if len(states) == 2 else ["hidden "]
        for name, s, size in zip(names, states, self._state_sizes()):
            expected = (layers, batch, size)
            if tuple(s.shape) != expected:
                raise RuntimeError(f"Expected {name}size {expected}, got {list(s.shape)}")

    @staticmethod
    def _states(hx, lstm: bool) -> list:
        return [hx[0], hx[1]] if lstm else [hx]

    def _forward_packed(self, input: PackedSequence, hx):
        data, batch_sizes, sorted_indices, unsorted_indices = input
        lstm = self.mode == "LSTM"
        sizes = np.asarray(batch_sizes.tolist(), np.int64)
        batch = int(sizes[0])
        if hx is None:
            states = self._zeros_states(batch, data.dtype)
        else:
            states = self._states(hx, lstm)
            if sorted_indices is not None:  # each state row belongs to a sequence: sort them
                states = [s.index_select(1, sorted_indices) for s in states]
        self._check_input(data, packed=True)
        self._check_states(states, batch)
        lengths = tensor((sizes[None, :] > np.arange(batch)[:, None]).sum(1))
        out, finals = self._run(rnn_utils.pad_time_major(data, sizes), states, lengths)
        out = rnn_utils.pack_time_major(out, sizes)
        if unsorted_indices is not None:
            finals = [f.index_select(1, unsorted_indices) for f in finals]
        out = rnn_utils.PackedSequence(out, batch_sizes, sorted_indices, unsorted_indices)
        return (out, tuple(finals)) if lstm else (out, finals[0])

    def forward(self, input: Tensor | PackedSequence, hx=None):
        if isinstance(input, rnn_utils.PackedSequence):
            return self._forward_packed(input, hx)
        name = "LSTM" if self.mode == "LSTM" else "GRU" if self.mode == "GRU" else "RNN"
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.ndim}D"
                             f"{' tensor' if name == 'RNN' else ''} instead")
        unbatched = input.ndim == 2
        lstm = self.mode == "LSTM"
        states = None if hx is None else self._states(hx, lstm)
        if states is not None and any(s.ndim != input.ndim for s in states):
            kind = "unbatched 2-D" if unbatched else "batched 3-D"
            if lstm:
                raise RuntimeError(f"For {kind} input, hx and cx should also be {input.ndim}-D "
                                   f"but got ({states[0].ndim}-D, {states[1].ndim}-D) tensors")
            raise RuntimeError(f"For {kind} input, hx should also be {input.ndim}-D but got "
                               f"{states[0].ndim}-D tensor")
        if unbatched:
            input = _insert_batch(input)
            states = None if states is None else [_insert_batch(s) for s in states]
        elif self.batch_first:
            input = input.transpose(0, 1)
        if states is None:
            states = self._zeros_states(input.shape[1], input.dtype)
        self._check_input(input, packed=False)
        self._check_states(states, input.shape[1])
        out, finals = self._run(input, states)
        if unbatched:
            out = _drop_batch(out)
            finals = [_drop_batch(f) for f in finals]
        elif self.batch_first:
            out = out.transpose(0, 1)
        return (out, tuple(finals)) if lstm else (out, finals[0])

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN: `h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)` (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)


class LSTM(RNNBase):
    """Long short-term memory; `forward` returns `(output, (h_n, c_n))`."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit; `forward` returns `(output, h_n)`."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)


class RNNCellBase(Module):
    """Shared by the cells: `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, PyTorch's init."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.mode, self.input_size, self.hidden_size, self.bias = mode, input_size, hidden_size, bias
        gate = _GATES[mode] * hidden_size
        kw = {"dtype": dtype, "device": device}
        self.weight_ih = Parameter(empty(gate, input_size, **kw))
        self.weight_hh = Parameter(empty(gate, hidden_size, **kw))
        if bias:
            self.bias_ih = Parameter(empty(gate, **kw))
            self.bias_hh = Parameter(empty(gate, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def _step(self, input: Tensor, states: list | None):
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        for k, s in enumerate(states or ()):
            if s.ndim not in (1, 2):
                which = f"hx[{k}]" if self.mode == "LSTM" else "hidden"
                raise ValueError(f"{name}: Expected {which} to be 1D or 2D, got {s.ndim}D instead")
        unbatched = input.ndim == 1
        if unbatched:
            input = input.reshape(1, -1)
        if states is None:
            zero = zeros(input.shape[0], self.hidden_size, dtype=input.dtype)
            states = [zero] * (2 if self.mode == "LSTM" else 1)
        elif unbatched:
            states = [s.unsqueeze(0) for s in states]
        if input.shape[1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.shape[1]} "
                               f"expected {self.input_size}")
        for k, s in enumerate(states):
            if input.shape[0] != s.shape[0]:
                raise RuntimeError(f"Input batch size {input.shape[0]} doesn't match hidden{k} "
                                   f"batch size {s.shape[0]}")
            if s.shape[1] != self.hidden_size:
                raise RuntimeError(f"hidden{k} has inconsistent hidden_size: got {s.shape[1]}, "
                                   f"expected {self.hidden_size}")
        params = [self.weight_ih, self.weight_hh] + ([self.bias_ih, self.bias_hh] if self.bias else [])
        op = lstm_cell_op if self.mode == "LSTM" else rnn_cell_op
        out = apply(op, input, *states, *params, mode=self.mode, has_bias=self.bias)
        outs = out if isinstance(out, tuple) else (out,)
        if unbatched:
            outs = tuple(o.reshape(-1) for o in outs)
        return outs

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    """One Elman RNN step: `h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)` (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        self.__dict__["nonlinearity"] = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, bias, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, None if hx is None else [hx])[0]


class LSTMCell(RNNCellBase):
    """One LSTM step; returns `(h', c')`."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, bias, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx=None):
        if isinstance(hx, Tensor):
            raise TypeError("lstm_cell(): argument 'hx' (position 2) must be tuple of Tensors, "
                            "not Tensor")
        return self._step(input, None if hx is None else list(hx))


class GRUCell(RNNCellBase):
    """One GRU step; returns `h'`."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, bias, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, None if hx is None else [hx])[0]
