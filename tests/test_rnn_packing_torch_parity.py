"""`nn.utils.rnn` (pad/pack utilities, `PackedSequence`) and packed input to `RNN`/`LSTM`/`GRU`
against PyTorch: PyTorch's weights copied in, outputs, final states and the gradients of every
parameter compared in float64; one packed configuration against `jax.grad` of an independent
jnp program that runs each sequence alone over its own length (no mask)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad
import tapegrad.nn as tnn
from tapegrad.nn.utils import rnn as trnn

torch = pytest.importorskip("torch")
pnn = torch.nn
prnn = torch.nn.utils.rnn

R = np.random.default_rng(13)


def _np(t):
    return None if t is None else t.detach().numpy()


def _same_packed(t, p):
    for a, b in zip(t, p):
        if b is None:
            assert a is None
        else:
            np.testing.assert_allclose(_np(a), _np(b), rtol=1e-12, atol=1e-12)
            assert _np(a).dtype == _np(b).dtype


# -- the utilities ---------------------------------------------------------------------------

@pytest.mark.parametrize("lengths,enforce_sorted,batch_first", [
    ([4, 3, 1], True, False), ([4, 4, 2], True, True), ([2, 4, 1], False, False),
    ([3, 1, 3, 2], False, True),  # ties: the sort's order of equal lengths
])
def test_pack_and_pad_match_pytorch(lengths, enforce_sorted, batch_first):
    shape = (len(lengths), 4, 2, 3) if batch_first else (4, len(lengths), 2, 3)
    x = R.normal(size=shape)
    ct_packed = R.normal(size=(sum(lengths), 2, 3))
    results = []
    for lib, rnn in ((torch, prnn), (tapegrad, trnn)):
        xt = lib.tensor(x, requires_grad=True)
        packed = rnn.pack_padded_sequence(xt, lib.tensor(lengths), batch_first=batch_first,
                                          enforce_sorted=enforce_sorted)
        padded, lens = rnn.pad_packed_sequence(packed, batch_first=batch_first,
                                               padding_value=-3.0, total_length=6)
        ((packed.data * lib.tensor(ct_packed)).sum() + (padded ** 2).sum()).backward()
        results.append((packed, padded, lens, xt.grad))
    (tp, tpad, tl, tg), (pp, ppad, pl, pg) = results[1], results[0]
    _same_packed(tp, pp)
    np.testing.assert_array_equal(_np(tpad), _np(ppad))
    np.testing.assert_array_equal(_np(tl), _np(pl))
    assert _np(tl).dtype == np.int64
    np.testing.assert_allclose(_np(tg), _np(pg), rtol=1e-12)


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_pad_sequence_and_unpad(padding_side, batch_first):
    seqs = [R.normal(size=(n, 2)) for n in (3, 5, 1)]
    outs = []
    for lib, rnn in ((torch, prnn), (tapegrad, trnn)):
        xs = [lib.tensor(s, requires_grad=True) for s in seqs]
        padded = rnn.pad_sequence(xs, batch_first, -1.5, padding_side)
        (padded * lib.tensor(np.arange(padded.numel()).reshape(padded.shape))).sum().backward()
        outs.append((padded, [x.grad for x in xs]))
    (tpad, tgs), (ppad, pgs) = outs[1], outs[0]
    np.testing.assert_array_equal(_np(tpad), _np(ppad))
    for a, b in zip(tgs, pgs):
        np.testing.assert_array_equal(_np(a), _np(b))
    if padding_side == "right":
        back = trnn.unpad_sequence(tpad.detach(), tapegrad.tensor([3, 5, 1]), batch_first)
        for a, s in zip(back, seqs):
            np.testing.assert_array_equal(_np(a), s)
    # the first sequence's dtype; an integer result truncates the padding value
    ints = [np.array([1, 2]), np.array([3, 4, 5])]
    t = trnn.pad_sequence([tapegrad.tensor(a) for a in ints], batch_first, 1.5, padding_side)
    p = prnn.pad_sequence([torch.tensor(a) for a in ints], batch_first, 1.5, padding_side)
    np.testing.assert_array_equal(_np(t), _np(p))
    assert t.dtype is tapegrad.int64


def test_pack_sequence_unpack_and_packed_sequence_methods():
    seqs = [np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0]), np.array([6.0])]
    t = trnn.pack_sequence([tapegrad.tensor(s) for s in seqs], enforce_sorted=False)
    p = prnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    _same_packed(t, p)
    for a, s in zip(trnn.unpack_sequence(t), seqs):
        np.testing.assert_array_equal(_np(a), s)
    assert t.to(tapegrad.float64) is t and t.double() is t
    for method in ("float", "long", "int", "half"):
        tm, pm = getattr(t, method)(), getattr(p, method)()
        assert type(tm) is trnn.PackedSequence and tm.batch_sizes is t.batch_sizes
        _same_packed(tm, pm)
    assert not t.is_cuda and t.cpu() is t
    data, batch_sizes, sorted_indices, unsorted_indices = t  # a NamedTuple, as PyTorch's
    assert t._fields == p._fields
    np.testing.assert_array_equal(_np(trnn.invert_permutation(tapegrad.tensor([2, 0, 3, 1]))),
                                  _np(prnn.invert_permutation(torch.tensor([2, 0, 3, 1]))))
    made = trnn.PackedSequence(tapegrad.ones(3), tapegrad.tensor([2, 1]))
    assert made.sorted_indices is None and made.unsorted_indices is None
    _same_packed(trnn.PackedSequence((data, batch_sizes), sorted_indices=sorted_indices), p)


def _raises_like(call, same_message=True):
    """`call(lib, rnn)` raises the same error type (and message) in both libraries."""
    with pytest.raises(Exception) as expected:
        call(torch, prnn)
    with pytest.raises(type(expected.value)) as got:
        call(tapegrad, trnn)
    if same_message:
        assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("call", [
    lambda lib, rnn: rnn.pack_padded_sequence(lib.ones(4, 3, 2), [2, 3, 1]),
    lambda lib, rnn: rnn.pack_padded_sequence(lib.ones(4, 3, 2), [3, 2, 0]),
    lambda lib, rnn: rnn.pack_padded_sequence(lib.ones(4, 3, 2), [3, -2, 1], enforce_sorted=False),
    lambda lib, rnn: rnn.pack_padded_sequence(lib.ones(4, 3, 2), [3, 2]),
    lambda lib, rnn: rnn.pack_padded_sequence(lib.ones(4, 3, 2), [3, 2, 1], batch_first=True),
    lambda lib, rnn: rnn.pad_packed_sequence(rnn.pack_sequence([lib.ones(3), lib.ones(2)]),
                                             total_length=2),
    lambda lib, rnn: rnn.pad_sequence([]),
    lambda lib, rnn: rnn.pad_sequence(5),
    lambda lib, rnn: rnn.pad_sequence([lib.ones(2, 3), lib.ones(3, 2)]),
    lambda lib, rnn: rnn.pad_sequence([lib.ones(2, 3)], padding_side="up"),
    lambda lib, rnn: rnn.PackedSequence(lib.ones(3)),
])
def test_utility_errors_match_pytorch(call):
    _raises_like(call)


# -- packed input to the recurrent layers ----------------------------------------------------

CONFIGS = [  # (class, kwargs, lengths, enforce_sorted, with h0)
    ("LSTM", {"num_layers": 2, "bidirectional": True}, [5, 3, 3, 1], True, True),
    ("LSTM", {"batch_first": True}, [2, 5, 1], False, False),
    ("LSTM", {"num_layers": 2, "batch_first": True, "bidirectional": True}, [3, 5, 2], False, True),
    ("GRU", {"num_layers": 2, "bidirectional": True}, [1, 4, 2], False, False),
    ("GRU", {"batch_first": True, "bias": False}, [4, 2, 2], True, True),
    ("GRU", {"num_layers": 2}, [2, 3, 5], False, True),
    ("RNN", {"bidirectional": True, "batch_first": True}, [4, 1, 3], False, True),
    ("RNN", {"nonlinearity": "relu", "num_layers": 2}, [5, 4, 2], True, False),
    ("RNN", {"nonlinearity": "relu", "bidirectional": True}, [3, 5, 3], False, True),
    ("LSTM", {"proj_size": 2}, [4, 2, 3], False, True),  # weight_hr: h has proj_size
    ("LSTM", {"proj_size": 3, "num_layers": 2, "bidirectional": True}, [5, 3, 1], True, True),
    ("LSTM", {"proj_size": 1, "num_layers": 2, "batch_first": True, "bias": False},
     [2, 4, 4], False, False),
]


def _run_packed(lib, mod, x, lengths, enforce_sorted, h0):
    rnn = prnn if lib is torch else trnn
    xt = lib.tensor(x, requires_grad=True)
    packed = rnn.pack_padded_sequence(xt, lengths, batch_first=mod.batch_first,
                                      enforce_sorted=enforce_sorted)
    states = None if h0 is None else [lib.tensor(h, requires_grad=True) for h in h0]
    hx = None if states is None else (tuple(states) if len(states) == 2 else states[0])
    out, finals = mod(packed, hx)
    finals = finals if isinstance(finals, tuple) else (finals,)
    g = np.random.default_rng(5)
    loss = (out.data * lib.tensor(g.normal(size=tuple(out.data.shape)))).sum()
    for f in finals:
        loss = loss + (f * lib.tensor(g.normal(size=tuple(f.shape)))).sum()
    loss.backward()
    padded, lens = rnn.pad_packed_sequence(out, batch_first=mod.batch_first)
    return {"out": out, "padded": padded, "lens": lens, "finals": finals, "x.grad": xt.grad,
            "h0.grad": [s.grad for s in states or ()],
            "params": {n: p.grad for n, p in mod.named_parameters()}}


@pytest.mark.parametrize("cls,kw,lengths,enforce_sorted,with_h0", CONFIGS)
def test_packed_layers_match_pytorch(cls, kw, lengths, enforce_sorted, with_h0):
    if enforce_sorted:
        lengths = sorted(lengths, reverse=True)
    p = getattr(pnn, cls)(3, 4, **kw).double()
    t = getattr(tnn, cls)(3, 4, **kw).double()
    t.load_state_dict({k: tapegrad.tensor(v.detach().numpy()) for k, v in p.state_dict().items()})
    batch, steps = len(lengths), max(lengths) + 1  # one step of padding past the longest
    x = R.normal(size=(batch, steps, 3) if t.batch_first else (steps, batch, 3))
    dirs = 2 if t.bidirectional else 1
    sizes = [kw.get("proj_size") or 4, 4] if cls == "LSTM" else [4]  # h, c
    h0 = None if not with_h0 else [R.normal(size=(t.num_layers * dirs, batch, n)) for n in sizes]
    pr = _run_packed(torch, p, x, lengths, enforce_sorted, h0)
    tr = _run_packed(tapegrad, t, x, lengths, enforce_sorted, h0)
    assert type(tr["out"]) is trnn.PackedSequence
    _same_packed(tr["out"], pr["out"])
    np.testing.assert_allclose(_np(tr["padded"]), _np(pr["padded"]), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(_np(tr["lens"]), _np(pr["lens"]))
    for a, b in zip(tr["finals"], pr["finals"]):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(tr["x.grad"]), _np(pr["x.grad"]), rtol=1e-9, atol=1e-12)
    for a, b in zip(tr["h0.grad"], pr["h0.grad"]):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-9, atol=1e-12)
    assert sorted(tr["params"]) == sorted(pr["params"])
    for name, g in pr["params"].items():
        np.testing.assert_allclose(_np(tr["params"][name]), _np(g), rtol=1e-9, atol=1e-12,
                                   err_msg=name)


@pytest.mark.parametrize("kw", [{"proj_size": 2}, {"proj_size": 3, "num_layers": 2,
                                                   "bidirectional": True, "batch_first": True}])
def test_lstm_proj_size_matches_pytorch(kw):
    """`proj_size`: PyTorch's parameters (`weight_hr_l{k}`), shapes and repr; padded, unbatched
    and stateless calls give PyTorch's outputs, final states and gradients."""
    p, t = pnn.LSTM(3, 5, **kw).double(), tnn.LSTM(3, 5, **kw).double()
    assert [(k, tuple(v.shape)) for k, v in t.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in p.state_dict().items()]
    assert repr(t) == repr(p)
    t.load_state_dict({k: tapegrad.tensor(v.detach().numpy()) for k, v in p.state_dict().items()})
    layers = t.num_layers * (2 if t.bidirectional else 1)
    x0 = R.normal(size=(2, 4, 3) if t.batch_first else (4, 2, 3))
    h0, c0 = R.normal(size=(layers, 2, kw["proj_size"])), R.normal(size=(layers, 2, 5))
    results = []
    for lib, mod in ((torch, p), (tapegrad, t)):
        x, h, c = (lib.tensor(a, requires_grad=True) for a in (x0, h0, c0))
        out, (hn, cn) = mod(x, (h, c))
        out1, (hn1, cn1) = mod(x[0] if t.batch_first else x[:, 0])  # unbatched, zero state
        (out.sum() + (hn * hn).sum() + cn.sum() + (out1 * out1).sum() + hn1.sum()).backward()
        results.append([_np(a) for a in (out, hn, cn, out1, hn1, cn1, x.grad, h.grad, c.grad)]
                       + [_np(q.grad) for q in mod.parameters()])
    for got, want in zip(*reversed(results)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("call", [
    lambda nn, lib: nn.LSTM(3, 5, proj_size=5),
    lambda nn, lib: nn.LSTM(3, 5, proj_size=-1),
    lambda nn, lib: nn.LSTM(3, 5, proj_size=2)(lib.zeros(4, 2, 3),
                                               (lib.zeros(1, 2, 5), lib.zeros(1, 2, 5))),
    lambda nn, lib: nn.LSTM(3, 5, proj_size=2)(lib.zeros(4, 2, 3),
                                               (lib.zeros(1, 2, 2), lib.zeros(1, 2, 2))),
], ids=["too-large", "negative", "h-size", "c-size"])
def test_lstm_proj_size_errors_match_pytorch(call):
    with pytest.raises(Exception) as want:
        call(pnn, torch)
    with pytest.raises(type(want.value)) as got:
        call(tnn, tapegrad)
    assert str(got.value) == str(want.value)


def test_packed_input_errors_match_pytorch():
    def packed(lib, rnn, width=3):
        return rnn.pack_sequence([lib.ones(3, width), lib.ones(2, width)])

    def layer(lib, cls="LSTM"):
        return getattr(pnn if lib is torch else tnn, cls)(3, 4)
    _raises_like(lambda lib, rnn: layer(lib, "GRU")(packed(lib, rnn, 5)))
    _raises_like(lambda lib, rnn: layer(lib, "RNN")(packed(lib, rnn), lib.zeros(1, 3, 4)))
    # PyTorch's LSTM skips its checks for packed input and fails later, in a matrix product;
    # tapegrad gives the message its RNN and GRU give
    _raises_like(lambda lib, rnn: layer(lib)(packed(lib, rnn, 5)), same_message=False)
    with pytest.raises(RuntimeError, match=r"Expected hidden\[1\] size \(1, 2, 4\), got \[1, 3, 4\]"):
        layer(tapegrad)(packed(tapegrad, trnn), (tapegrad.zeros(1, 2, 4), tapegrad.zeros(1, 3, 4)))
    _raises_like(lambda lib, rnn: layer(lib, "GRU")(packed(lib, rnn), lib.zeros(2, 2, 4)))
    _raises_like(lambda lib, rnn: layer(lib, "RNN")(
        rnn.PackedSequence(lib.ones(5, 1, 3), lib.tensor([2, 2, 1]))))


@pytest.mark.parametrize("call", [
    lambda lib, nn: nn.RNN(3, 4)(lib.ones(5, 2, 5)),
    lambda lib, nn: nn.RNN(3, 4)(lib.ones(5, 2, 3), lib.ones(1, 3, 4)),
    lambda lib, nn: nn.RNN(3, 4)(lib.ones(5, 3), lib.ones(1, 1, 4)),
    lambda lib, nn: nn.RNN(3, 4)(lib.ones(5, 2, 3, 1)),
    lambda lib, nn: nn.GRU(3, 4, batch_first=True)(lib.ones(5, 2, 3), lib.ones(2, 4)),
    lambda lib, nn: nn.GRU(3, 4)(lib.ones(5, 2, 3, 1)),
    lambda lib, nn: nn.LSTM(3, 4)(lib.ones(5, 2, 3), (lib.ones(1, 3, 4), lib.ones(1, 2, 4))),
    lambda lib, nn: nn.LSTM(3, 4)(lib.ones(5, 2, 3), (lib.ones(1, 2, 4), lib.ones(1, 2, 5))),
    lambda lib, nn: nn.LSTM(3, 4)(lib.ones(5, 2, 3), lib.ones(1, 2, 4)),
    lambda lib, nn: nn.LSTM(3, 4)(lib.ones(5, 3), (lib.ones(1, 1, 4), lib.ones(1, 4))),
    lambda lib, nn: nn.LSTM(3, 4, num_layers=2)(lib.ones(5, 2, 3), (lib.ones(1, 2, 4),) * 2),
    lambda lib, nn: nn.LSTMCell(3, 4)(lib.ones(2, 5)),
    lambda lib, nn: nn.LSTMCell(3, 4)(lib.ones(2, 3), (lib.ones(3, 4), lib.ones(2, 4))),
    lambda lib, nn: nn.LSTMCell(3, 4)(lib.ones(2, 3), (lib.ones(2, 4), lib.ones(2, 5))),
    lambda lib, nn: nn.LSTMCell(3, 4)(lib.ones(2, 3), lib.ones(2, 4)),
    lambda lib, nn: nn.LSTMCell(3, 4)(lib.ones(2, 3), (lib.ones(2, 4, 1), lib.ones(2, 4))),
    lambda lib, nn: nn.RNNCell(3, 4)(lib.ones(3), lib.ones(2, 4)),
    lambda lib, nn: nn.RNNCell(3, 4)(lib.ones(2, 3), lib.ones(4)),
    lambda lib, nn: nn.RNNCell(3, 4)(lib.ones(2, 3), lib.ones(2, 4, 1)),
    lambda lib, nn: nn.GRUCell(3, 4)(lib.ones(2, 3, 1)),
    lambda lib, nn: nn.GRUCell(3, 4)(lib.ones(2, 3), lib.ones(2, 5)),
])
def test_shape_errors_match_pytorch(call):
    with pytest.raises(Exception) as expected:
        call(torch, pnn)
    with pytest.raises(type(expected.value)) as got:
        call(tapegrad, tnn)
    assert str(got.value) == str(expected.value)


def test_dtype_error_names_the_fix():
    with pytest.raises(ValueError, match=r"RNN input dtype \(tapegrad.float64\) does not match "
                                         r"weight dtype \(tapegrad.float32\)"):
        tnn.GRU(3, 4)(tapegrad.ones(5, 2, 3, dtype=tapegrad.float64))


# -- an independent reference: each sequence run alone, no mask --------------------------------

def _gru_step(x, h, w_ih, w_hh, b_ih, b_hh):
    xr, xz, xn = jnp.split(w_ih @ x + b_ih, 3)
    hr, hz, hn = jnp.split(w_hh @ h + b_hh, 3)
    r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    return (1 - z) * n + z * h


def _gru_alone(seq, h0, fwd, bwd):
    """A bidirectional GRU over one sequence (L, I), step by step; (L, 2H) and (2, H)."""
    hs_f, h = [], h0[0]
    for x in seq:
        h = _gru_step(x, h, *fwd)
        hs_f.append(h)
    hs_b, hb = [], h0[1]
    for x in seq[::-1]:
        hb = _gru_step(x, hb, *bwd)
        hs_b.append(hb)
    out = jnp.concatenate([jnp.stack(hs_f), jnp.stack(hs_b[::-1])], axis=1)
    return out, jnp.stack([h, hb])


def test_packed_gru_matches_jax_grad_of_sequences_run_alone():
    lengths = [2, 5, 3]
    x, h0 = R.normal(size=(5, 3, 3)), R.normal(size=(2, 3, 4))
    m = tnn.GRU(3, 4, bidirectional=True).double()
    names = [n for n, _ in m.named_parameters()]
    params = [p.detach().numpy() for p in m.parameters()]
    ct_out, ct_h = R.normal(size=(sum(lengths), 8)), R.normal(size=(2, 3, 4))
    order = np.argsort(-np.array(lengths), kind="stable")  # the packed data's batch order

    def reference(x, h0, *params):
        outs, finals = [], []
        for b, n in enumerate(lengths):
            o, f = _gru_alone(x[:n, b], h0[:, b], params[:4], params[4:])
            outs.append(o)
            finals.append(f)
        # the packed layout: step by step, longest sequences first
        data = jnp.stack([outs[b][t] for t in range(max(lengths)) for b in order
                          if t < lengths[b]])
        return (data * ct_out).sum() + (jnp.stack(finals, axis=1) * ct_h).sum()

    with jax.enable_x64(True):
        value, grads = jax.value_and_grad(reference, argnums=tuple(range(2 + len(params))))(
            x, h0, *params)
    xt, ht = tapegrad.tensor(x, requires_grad=True), tapegrad.tensor(h0, requires_grad=True)
    packed = trnn.pack_padded_sequence(xt, lengths, enforce_sorted=False)
    out, h_n = m(packed, ht)
    loss = (out.data * tapegrad.tensor(ct_out)).sum() + (h_n * tapegrad.tensor(ct_h)).sum()
    loss.backward()
    np.testing.assert_allclose(loss.item(), float(value), rtol=1e-12)
    np.testing.assert_allclose(xt.grad.numpy(), np.asarray(grads[0]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ht.grad.numpy(), np.asarray(grads[1]), rtol=1e-10, atol=1e-12)
    for name, p, g in zip(names, m.parameters(), grads[2:]):
        np.testing.assert_allclose(p.grad.numpy(), np.asarray(g), rtol=1e-10, atol=1e-12,
                                   err_msg=name)
