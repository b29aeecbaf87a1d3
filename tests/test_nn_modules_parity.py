"""nn modules against PyTorch: copy PyTorch's weights in through state_dict, then compare outputs
and gradients (float64), running statistics included."""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad
import tapegrad.nn as tnn

torch = pytest.importorskip("torch")
pnn = torch.nn

R = np.random.default_rng(3)


def _to_tapegrad(pmod, tmod):
    tmod.load_state_dict({k: tapegrad.tensor(v.detach().numpy())
                          for k, v in pmod.state_dict().items()})
    return tmod


def _inputs(lib, arrays):
    return [lib.tensor(a, requires_grad=True) if a.dtype.kind == "f" else lib.tensor(a)
            for a in arrays]


def _check(pmod, tmod, arrays, call=lambda m, *xs: m(*xs), pick=lambda out: out, atol=1e-9):
    """Run both modules on the same inputs; compare outputs and the grads of params and inputs."""
    pmod, tmod = pmod.double(), _to_tapegrad(pmod.double(), tmod.double())
    results = []
    for lib, mod in ((torch, pmod), (tapegrad, tmod)):
        xs = _inputs(lib, arrays)
        out = pick(call(mod, *xs))
        ct = lib.tensor(np.random.default_rng(5).uniform(0.5, 1.5, tuple(out.shape)))
        (out * ct).sum().backward()
        grads = {n: p.grad.numpy() for n, p in mod.named_parameters() if p.grad is not None}
        results.append((out.detach().numpy(), grads, [x.grad.numpy() for x in xs if x.requires_grad]))
    (po, pg, px), (to, tg, tx) = results
    np.testing.assert_allclose(to, po, rtol=1e-7, atol=atol)
    assert sorted(tg) == sorted(pg)
    for n in pg:
        np.testing.assert_allclose(tg[n], pg[n], rtol=1e-7, atol=atol, err_msg=n)
    for a, b in zip(tx, px):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=atol)
    return pmod, tmod


def test_linear_and_bilinear():
    _check(pnn.Linear(4, 3), tnn.Linear(4, 3), [R.normal(size=(2, 5, 4))])
    _check(pnn.Bilinear(3, 2, 4), tnn.Bilinear(3, 2, 4), [R.normal(size=(5, 3)), R.normal(size=(5, 2))])


def test_conv_layers():
    _check(pnn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), tnn.Conv2d(4, 6, 3, stride=2,
                                                                           padding=1, groups=2),
           [R.normal(size=(2, 4, 7, 6))])
    _check(pnn.Conv2d(2, 3, (3, 2), padding="same", padding_mode="reflect"),
           tnn.Conv2d(2, 3, (3, 2), padding="same", padding_mode="reflect"),
           [R.normal(size=(1, 2, 5, 5))])
    _check(pnn.Conv1d(3, 4, 3, padding=2, dilation=2, padding_mode="circular"),
           tnn.Conv1d(3, 4, 3, padding=2, dilation=2, padding_mode="circular"),
           [R.normal(size=(2, 3, 8))])
    _check(pnn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
           tnn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
           [R.normal(size=(2, 4, 3, 3))])


def test_pooling_and_shape_layers():
    x = [R.normal(size=(2, 3, 6, 5))]
    for p, t in [(pnn.MaxPool2d(2, ceil_mode=True), tnn.MaxPool2d(2, ceil_mode=True)),
                 (pnn.AvgPool2d(3, 2, 1), tnn.AvgPool2d(3, 2, 1)),
                 (pnn.AdaptiveAvgPool2d((2, 3)), tnn.AdaptiveAvgPool2d((2, 3))),
                 (pnn.Flatten(), tnn.Flatten()), (pnn.Unflatten(1, (3, 1)), tnn.Unflatten(1, (3, 1)))]:
        _check(p, t, x)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm2d_train_then_eval(momentum):
    pmod, tmod = pnn.BatchNorm2d(3, momentum=momentum), tnn.BatchNorm2d(3, momentum=momentum)
    with torch.no_grad():
        pmod.weight.uniform_(0.5, 1.5)
        pmod.bias.uniform_(-0.5, 0.5)
    for _ in range(2):  # training steps update the running statistics
        x = R.normal(2, 3, size=(4, 3, 2, 2))
        pmod, tmod = _check(pmod, tmod, [x]) if _ == 0 else (pmod, tmod)
        if _:
            pmod(torch.tensor(x))
            tmod(tapegrad.tensor(x))
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(tmod, name).numpy(), getattr(pmod, name).numpy(),
                                   rtol=1e-7, atol=1e-12)
    assert tmod.num_batches_tracked.item() == pmod.num_batches_tracked.item() == 2
    pmod.eval()
    tmod.eval()
    x = R.normal(size=(3, 3, 2, 2))
    out_p = pmod(torch.tensor(x)).detach().numpy()
    out_t = tmod(tapegrad.tensor(x)).detach().numpy()
    np.testing.assert_allclose(out_t, out_p, rtol=1e-7, atol=1e-9)


def test_batchnorm1d_and_norm_layers():
    _check(pnn.BatchNorm1d(4, affine=False), tnn.BatchNorm1d(4, affine=False),
           [R.normal(size=(5, 4, 3))])
    _check(pnn.LayerNorm((3, 4)), tnn.LayerNorm((3, 4)), [R.normal(size=(2, 3, 4))])
    p, t = pnn.GroupNorm(2, 4), tnn.GroupNorm(2, 4)
    with torch.no_grad():
        p.weight.uniform_(0.5, 1.5)
    _check(p, t, [R.normal(size=(3, 4, 5))])


def test_embedding_padding_idx():
    p, t = pnn.Embedding(6, 3, padding_idx=1), tnn.Embedding(6, 3, padding_idx=1)
    np.testing.assert_array_equal(t.weight.detach().numpy()[1], 0.0)
    _check(p, t, [np.array([[0, 1, 2], [1, 5, 5]])])


@pytest.mark.parametrize("batch_first", [False, True])
def test_multihead_attention(batch_first):
    p = pnn.MultiheadAttention(8, 2, batch_first=batch_first)
    t = tnn.MultiheadAttention(8, 2, batch_first=batch_first)
    x = R.normal(size=(3, 4, 8) if batch_first else (4, 3, 8))  # batch 3, length 4
    # a bool causal mask with batch_first, a float mask otherwise; padding masks the third key
    mask = np.triu(np.ones((4, 4), bool), 1) if batch_first else R.normal(size=(4, 4))
    kpm = np.array([[False, False, True, False]] * 3)

    def self_attention(m, x):
        lib = torch if isinstance(m, pnn.Module) else tapegrad
        return m(x, x, x, attn_mask=lib.tensor(mask), key_padding_mask=lib.tensor(kpm))
    _check(p, t, [x], call=self_attention, pick=lambda o: o[0])
    _check(p, t, [x], call=self_attention, pick=lambda o: o[1])  # weights averaged over heads
    # cross attention with a different key/value length, per-head weights
    q = R.normal(size=(3, 2, 8) if batch_first else (2, 3, 8))
    kv = R.normal(size=(3, 5, 8) if batch_first else (5, 3, 8))
    _check(p, t, [q, kv], call=lambda m, q, kv: m(q, kv, kv, average_attn_weights=False),
           pick=lambda o: o[0] * 2 + o[1].sum())


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layer(norm_first):
    kw = {"dim_feedforward": 16, "dropout": 0.0, "batch_first": True, "norm_first": norm_first}
    p, t = pnn.TransformerEncoderLayer(8, 2, **kw), tnn.TransformerEncoderLayer(8, 2, **kw)
    assert [n for n, _ in t.named_parameters()] == [n for n, _ in p.named_parameters()]
    mask = np.array([[False, False, False, True], [False, True, False, False]])

    def call(m, x):
        lib = torch if isinstance(m, pnn.Module) else tapegrad
        return m(x, src_key_padding_mask=lib.tensor(mask))
    _check(p.train(), t.train(), [R.normal(size=(2, 4, 8))], call=call)


@pytest.mark.parametrize("cls,kw", [
    ("LSTM", {"num_layers": 2, "bidirectional": True}),
    ("GRU", {"batch_first": True, "num_layers": 2}),
    ("RNN", {"nonlinearity": "relu", "bias": False}),
    ("RNN", {"bidirectional": True}),  # tanh, with biases
    ("GRU", {"bidirectional": True, "bias": False}),
])
def test_recurrent_layers(cls, kw):
    p, t = getattr(pnn, cls)(3, 4, **kw), getattr(tnn, cls)(3, 4, **kw)
    assert [(n, tuple(x.shape)) for n, x in t.named_parameters()] == \
        [(n, tuple(x.shape)) for n, x in p.named_parameters()]
    x = R.normal(size=(2, 5, 3))
    _check(p, t, [x], pick=lambda o: o[0])
    h = (lambda o: o[1][1]) if cls == "LSTM" else (lambda o: o[1])
    _check(p, t, [x], pick=h)


def test_lstm_with_initial_state_unbatched():
    p, t = pnn.LSTM(3, 2), tnn.LSTM(3, 2)
    h0, c0 = R.normal(size=(1, 2)), R.normal(size=(1, 2))
    _check(p, t, [R.normal(size=(4, 3)), h0, c0], call=lambda m, x, h, c: m(x, (h, c)),
           pick=lambda o: o[1][0] + o[0][-1])


def test_training_loop_matches_pytorch():
    """Five steps of forward, loss, backward, clip_grad_norm_, in-place SGD and zero_grad."""
    def model(nn):
        return nn.Sequential(nn.Conv1d(2, 3, 3, padding=1), nn.BatchNorm1d(3), nn.GELU(),
                             nn.Flatten(), nn.Linear(12, 8), nn.LayerNorm(8), nn.SiLU(),
                             nn.Linear(8, 4))
    p, t = model(pnn).double(), model(tnn)
    _to_tapegrad(p, t.double())
    x = R.normal(size=(6, 2, 4))
    y = np.array([0, 3, 1, 2, 2, 1])
    histories = []
    for lib, m in ((torch, p), (tapegrad, t)):
        loss_fn = (pnn if lib is torch else tnn).CrossEntropyLoss(label_smoothing=0.1)
        clip = (pnn if lib is torch else tnn).utils.clip_grad_norm_
        losses = []
        for _ in range(5):
            loss = loss_fn(m(lib.tensor(x)), lib.tensor(y))
            loss.backward()
            clip(m.parameters(), 0.5)
            with lib.no_grad():
                for q in m.parameters():
                    q.sub_(q.grad * 0.3)
            m.zero_grad()
            losses.append(loss.item())
        flat = (pnn if lib is torch else tnn).utils.parameters_to_vector(m.parameters())
        histories.append((losses, flat.detach().numpy(), m[1].running_var.numpy()))
    (pl, pp, pv), (tl, tp, tv) = histories
    np.testing.assert_allclose(tl, pl, rtol=1e-9)
    assert pl[-1] < pl[0]
    np.testing.assert_allclose(tp, pp, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(tv, pv, rtol=1e-9)


@pytest.mark.parametrize("cls", ["LSTMCell", "GRUCell", "RNNCell"])
def test_recurrent_cells(cls):
    p, t = getattr(pnn, cls)(3, 4), getattr(tnn, cls)(3, 4)
    assert [n for n, _ in t.named_parameters()] == [n for n, _ in p.named_parameters()]
    states = [R.normal(size=(2, 4))] * (2 if cls == "LSTMCell" else 1)
    if cls == "LSTMCell":
        _check(p, t, [R.normal(size=(2, 3)), *states], call=lambda m, x, h, c: m(x, (h, c)),
               pick=lambda o: o[0] * 2 + o[1])
    else:
        _check(p, t, [R.normal(size=(2, 3)), *states])


@pytest.mark.parametrize("nonlinearity,bias", [("relu", False), ("tanh", False), ("relu", True)])
def test_rnn_cell_variants(nonlinearity, bias):
    p = pnn.RNNCell(3, 4, bias=bias, nonlinearity=nonlinearity)
    t = tnn.RNNCell(3, 4, bias=bias, nonlinearity=nonlinearity)
    _check(p, t, [R.normal(size=(2, 3)), R.normal(size=(2, 4))])


def test_small_layers():
    x = [R.normal(size=(2, 3, 4, 5))]
    for name, args in [("PReLU", (3,)), ("Upsample", ()), ("ZeroPad2d", ((1, 0, 2, 1),)),
                       ("ReflectionPad2d", (1,)), ("ReplicationPad2d", ((0, 1, 1, 0),)),
                       ("Softmin", (1,)), ("GLU", (-2,)), ("LogSigmoid", ())]:
        kw = {"scale_factor": 2, "mode": "bilinear"} if name == "Upsample" else {}
        _check(getattr(pnn, name)(*args, **kw), getattr(tnn, name)(*args, **kw), x)


def test_transformer_encoder_decoder():
    kw = {"d_model": 8, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 2,
          "dim_feedforward": 16, "dropout": 0.0, "batch_first": True}
    p, t = pnn.Transformer(**kw), tnn.Transformer(**kw)
    assert _shapes_of(t) == _shapes_of(p)
    mask = tnn.Transformer.generate_square_subsequent_mask(3).numpy()
    np.testing.assert_array_equal(mask, pnn.Transformer.generate_square_subsequent_mask(3).numpy())

    def call(m, src, tgt):
        lib = torch if isinstance(m, pnn.Module) else tapegrad
        return m(src, tgt, tgt_mask=lib.tensor(mask), tgt_is_causal=True)
    _check(p, t, [R.normal(size=(2, 4, 8)), R.normal(size=(2, 3, 8))], call=call)


def _shapes_of(m):
    return [(n, tuple(x.shape)) for n, x in m.named_parameters()]


def test_issue13_layers():
    """The layers issue 13 found missing, with PyTorch's weights and initialisation shapes."""
    _check(pnn.Conv3d(4, 6, (2, 3, 2), stride=(1, 2, 1), padding=1, groups=2),
           tnn.Conv3d(4, 6, (2, 3, 2), stride=(1, 2, 1), padding=1, groups=2),
           [R.normal(size=(2, 4, 3, 5, 4))])
    _check(pnn.Conv3d(2, 3, 3, padding="same", padding_mode="replicate"),
           tnn.Conv3d(2, 3, 3, padding="same", padding_mode="replicate"),
           [R.normal(size=(1, 2, 4, 3, 4))])
    _check(pnn.ConvTranspose3d(2, 4, 2, stride=2, output_padding=1),
           tnn.ConvTranspose3d(2, 4, 2, stride=2, output_padding=1), [R.normal(size=(1, 2, 2, 3, 2))])
    _check(pnn.ConvTranspose1d(3, 2, 3, stride=2), tnn.ConvTranspose1d(3, 2, 3, stride=2),
           [R.normal(size=(2, 3, 4))], call=lambda m, x: m(x, output_size=[10]))
    x3 = [R.normal(size=(2, 2, 5, 4, 5))]
    for p, t in [(pnn.MaxPool3d(2, ceil_mode=True), tnn.MaxPool3d(2, ceil_mode=True)),
                 (pnn.AvgPool3d(3, 2, 1), tnn.AvgPool3d(3, 2, 1)),
                 (pnn.AdaptiveMaxPool3d((2, 3, 1)), tnn.AdaptiveMaxPool3d((2, 3, 1))),
                 (pnn.CELU(0.7), tnn.CELU(0.7))]:
        _check(p, t, x3)
    _check(pnn.AdaptiveMaxPool2d((3, None)), tnn.AdaptiveMaxPool2d((3, None)),
           [R.normal(size=(2, 3, 7, 5))])
    _check(pnn.AdaptiveMaxPool1d(3, return_indices=True),
           tnn.AdaptiveMaxPool1d(3, return_indices=True), [R.normal(size=(2, 7))],
           pick=lambda o: o[0])
    p, t = pnn.RMSNorm((3, 4)), tnn.RMSNorm((3, 4))
    with torch.no_grad():
        p.weight.uniform_(0.5, 1.5)
    _check(p, t, [R.normal(size=(2, 3, 4))])
    _check(pnn.RMSNorm(4, eps=1e-2, elementwise_affine=False),
           tnn.RMSNorm(4, eps=1e-2, elementwise_affine=False), [R.normal(size=(5, 4))])
    for m in ("CELU(0.7)", "RMSNorm((3, 4))", "Conv3d(2, 3, 2, stride=2)",
              "ConvTranspose3d(2, 3, 2)", "MaxPool3d(2)", "AvgPool3d(2)", "AdaptiveMaxPool2d(2)",
              "InstanceNorm2d(3, affine=True)"):
        assert repr(eval("tnn." + m)) == repr(eval("pnn." + m))


@pytest.mark.parametrize("cls,shape", [("InstanceNorm1d", (3, 4, 5)), ("InstanceNorm2d", (2, 4, 3, 3)),
                                       ("InstanceNorm3d", (4, 2, 3, 2))])  # the last unbatched
def test_instance_norm_train_then_eval(cls, shape):
    kw = {"affine": True, "track_running_stats": True, "momentum": 0.2}
    pmod, tmod = getattr(pnn, cls)(4, **kw), getattr(tnn, cls)(4, **kw)
    with torch.no_grad():
        pmod.weight.uniform_(0.5, 1.5)
        pmod.bias.uniform_(-0.5, 0.5)
    x = R.normal(1, 2, size=shape)
    pmod, tmod = _check(pmod, tmod, [x])  # training: input statistics, running ones updated
    assert sorted(tmod.state_dict()) == sorted(pmod.state_dict())
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(tmod, name).numpy(), getattr(pmod, name).numpy(),
                                   rtol=1e-7, atol=1e-12)
    _check(pmod.eval(), tmod.eval(), [R.normal(size=shape)])  # eval: the running statistics
    plain_p, plain_t = getattr(pnn, cls)(4), getattr(tnn, cls)(4)
    _check(plain_p.eval(), plain_t.eval(), [x])  # no running statistics: input ones in eval too
    bad = list(shape)
    bad[len(shape) - int(cls[-2]) - 1] = 3  # the channel dimension
    with pytest.raises(ValueError, match="expected input's size at dim"):
        tmod(tapegrad.ones(*bad))



def _rnn_modules(lib, cls):
    nn_ = pnn if lib is torch else tnn
    if cls.endswith("Cell"):
        return (getattr(nn_, cls)(3, 4).double(),)
    return (getattr(nn_, cls)(3, 4, num_layers=2).double(),
            getattr(nn_, cls)(3, 4, batch_first=True).double())


def _call_forms(lib, cls, modules):
    """Every way PyTorch lets a cell or layer be called; the outputs of each."""
    g = np.random.default_rng(8)
    t = lib.tensor
    lstm = cls.startswith("LSTM")
    state = (lambda h: (t(h), t(h * 0.5))) if lstm else t
    if cls.endswith("Cell"):
        (m,) = modules
        x1, x2 = g.normal(size=(3,)), g.normal(size=(2, 3))
        h1, h2 = g.normal(size=(4,)), g.normal(size=(2, 4))
        return [m(t(x2)), m(t(x1)), m(t(x2), state(h2)), m(t(x1), state(h1)),
                m(t(x2), hx=state(h2))]
    m, mb = modules
    seq, seq1 = g.normal(size=(5, 2, 3)), g.normal(size=(5, 3))
    s2, s1 = g.normal(size=(2, 2, 4)), g.normal(size=(2, 4))
    return [m(t(seq)), m(t(seq1)), m(t(seq), state(s2)), m(t(seq1), state(s1)), mb(t(seq)),
            mb(t(seq.transpose(1, 0, 2)), state(s2[:1]))]


def _flat(out):
    if isinstance(out, tuple):
        return [a for o in out for a in _flat(o)]
    return [out.detach().numpy()]


@pytest.mark.parametrize("cls", ["RNNCell", "GRUCell", "LSTMCell", "RNN", "GRU", "LSTM"])
def test_every_rnn_call_form_matches_pytorch(cls):
    """With and without a state, batched and unbatched, `hx=` by keyword, batch_first; a cell's
    output fed back as the next state (`lstm(h, (h, c))`)."""
    pms, tms = _rnn_modules(torch, cls), _rnn_modules(tapegrad, cls)
    for p, t in zip(pms, tms):
        _to_tapegrad(p, t)
    for k, (p, t) in enumerate(zip(_call_forms(torch, cls, pms), _call_forms(tapegrad, cls, tms))):
        fp, ft = _flat(p), _flat(t)
        assert [a.shape for a in ft] == [a.shape for a in fp], k
        for a, b in zip(ft, fp):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=f"call form {k}")


class _Sequence:
    """pytorch/examples' time_sequence_prediction model (two stacked LSTMCells, each fed its
    own previous output as state), written once for both libraries."""

    def __init__(self, lib):
        nn_ = pnn if lib is torch else tnn
        self.lib = lib
        self.lstm1, self.lstm2, self.linear = nn_.LSTMCell(1, 8), nn_.LSTMCell(8, 8), nn_.Linear(8, 1)
        self.modules = [self.lstm1, self.lstm2, self.linear]
        for m in self.modules:
            m.double()

    def parameters(self):
        return [p for m in self.modules for p in m.parameters()]

    def __call__(self, input, future=0):
        lib = self.lib
        zeros = lambda: lib.zeros(input.size(0), 8, dtype=lib.double)  # noqa: E731
        h_t, c_t, h_t2, c_t2 = zeros(), zeros(), zeros(), zeros()
        outputs = []
        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for _ in range(future):
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        return lib.cat(outputs, dim=1)


def test_time_sequence_prediction_trains_as_pytorch():
    """The example's training loop (LBFGS with a closure, then a no_grad forecast), shortened:
    losses step for step and the forecast equal PyTorch's."""
    x = np.arange(12) + np.random.default_rng(2).integers(-8, 8, 4).reshape(4, 1)
    data = np.sin(x / 4.0)
    runs, models = [], {torch: _Sequence(torch), tapegrad: _Sequence(tapegrad)}
    for p, t in zip(models[torch].modules, models[tapegrad].modules):
        _to_tapegrad(p, t)
    for lib, optim in ((torch, torch.optim), (tapegrad, tapegrad.optim)):
        seq = models[lib]
        d = lib.tensor(data)
        inp, target = d[1:, :-1], d[1:, 1:]
        opt = optim.LBFGS(seq.parameters(), lr=0.8, max_iter=4)
        losses = []

        def closure():
            opt.zero_grad()
            loss = ((seq(inp) - target) ** 2).mean()
            losses.append(loss.item())
            loss.backward()
            return loss
        opt.step(closure)
        with lib.no_grad():
            pred = seq(d[:1, :-1], future=5)
        runs.append((losses, pred.numpy()))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-9)
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-8, atol=1e-12)
