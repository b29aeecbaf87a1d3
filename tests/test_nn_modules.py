"""nn.Module API: registration, traversal names and order (vs PyTorch), state_dict round trips
and errors, hooks, train/eval, dtype moves, containers, repr, initialisation statistics and
nn.utils."""
from __future__ import annotations

import copy
import math
from collections import OrderedDict

import numpy as np
import pytest

import tapegrad
import tapegrad.nn as tnn
import tapegrad.nn.functional as F


def build(nn):
    """One architecture, written against either library's `nn`."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                                          nn.MaxPool2d(2))
            self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.LayerNorm(4)])
            self.heads = nn.ModuleDict({"b": nn.Linear(4, 2), "a": nn.Linear(4, 3, bias=False)})
            self.rnn = nn.LSTM(4, 3, num_layers=2, bidirectional=True)
            self.attn = nn.MultiheadAttention(4, 2)
            self.emb = nn.Embedding(5, 4, padding_idx=0)
            self.scale = nn.Parameter(nn.init.ones_(nn.Linear(1, 1).weight.detach().clone()))
            self.extra = nn.ParameterList([nn.Parameter(tapegrad_or(nn).zeros(2))])
            self.pdict = nn.ParameterDict({"z": nn.Parameter(tapegrad_or(nn).zeros(3))})
            self.shared = self.blocks[0]  # the same module twice: listed once
            self.register_buffer("step", tapegrad_or(nn).zeros(1))
            self.register_buffer("cache", tapegrad_or(nn).zeros(2), persistent=False)

        def forward(self, x):
            return x

    return Net()


def tapegrad_or(nn):
    return tapegrad if nn is tnn else __import__("torch")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _shapes(items):
    return [(n, tuple(t.shape)) for n, t in items]


def test_names_and_order_match_pytorch(torch):
    ours, theirs = build(tnn), build(torch.nn)
    assert _shapes(ours.named_parameters()) == _shapes(theirs.named_parameters())
    assert _shapes(ours.named_buffers()) == _shapes(theirs.named_buffers())
    assert _shapes(ours.state_dict().items()) == _shapes(theirs.state_dict().items())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [n for n, _ in ours.named_parameters(prefix="m", recurse=False)] == \
        [n for n, _ in theirs.named_parameters(prefix="m", recurse=False)]


def test_repr_matches_pytorch(torch):
    def model(nn):
        return nn.Sequential(OrderedDict(
            conv=nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), bn=nn.BatchNorm2d(8),
            act=nn.LeakyReLU(0.2), pool=nn.AdaptiveAvgPool2d((1, 1)), flat=nn.Flatten(),
            drop=nn.Dropout(0.1), fc=nn.Linear(8, 2), rnn=nn.GRU(2, 3, batch_first=True),
            ln=nn.LayerNorm(3), gn=nn.GroupNorm(1, 3, bias=False),
            bn1=nn.BatchNorm1d(3, affine=False), sm=nn.Softmax(dim=1),
            mha=nn.MultiheadAttention(4, 2), enc=nn.TransformerEncoderLayer(4, 2, 8),
            emb=nn.Embedding(3, 2, padding_idx=0), mp=nn.MaxPool2d(2), ap=nn.AvgPool2d(3, 1),
            ct=nn.ConvTranspose2d(2, 3, 2, stride=2), c1=nn.Conv1d(2, 2, 3, padding="same"),
            gelu=nn.GELU(), lsm=nn.LogSoftmax(dim=-1), loss=nn.CrossEntropyLoss(),
            ml=nn.ModuleList([nn.Identity(), nn.SiLU()]), uf=nn.Unflatten(1, (2, 2)),
            pr=nn.PReLU(3), up=nn.Upsample(scale_factor=2, mode="bilinear"), zp=nn.ZeroPad2d(1),
            cp=nn.ConstantPad1d((1, 2), 0.5), rp=nn.ReflectionPad2d(2), d2=nn.Dropout2d(),
            cell=nn.LSTMCell(2, 3), rc=nn.RNNCell(2, 3, nonlinearity="relu"), glu=nn.GLU(),
            lsg=nn.LogSigmoid(), smin=nn.Softmin(dim=0)))
    assert repr(model(tnn)) == repr(model(torch.nn))


def test_state_dict_round_trip_and_storage_sharing():
    a, b = build(tnn), build(tnn)
    sd = a.state_dict()
    assert "cache" not in sd and "step" in sd
    assert all(not t.requires_grad for t in sd.values())
    b.load_state_dict(sd)
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=n)
    with tapegrad.no_grad():  # state_dict values alias the parameters' storage
        a.blocks[0].weight.mul_(2)
    np.testing.assert_array_equal(sd["blocks.0.weight"].numpy(), a.blocks[0].weight.detach().numpy())
    assert a.shared is a.blocks[0]


def test_load_state_dict_errors():
    m = tnn.Linear(3, 2)
    sd = m.state_dict()
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "bias"'):
        m.load_state_dict({"weight": sd["weight"]})
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "extra"'):
        m.load_state_dict({**sd, "extra": tapegrad.zeros(1)})
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: copying a param with shape "
                                           r"tapegrad.Size\(\[2, 4\]\) from checkpoint, the shape "
                                           r"in current model is tapegrad.Size\(\[2, 3\]\)"):
        m.load_state_dict({**sd, "weight": tapegrad.zeros(2, 4)})
    with pytest.raises(RuntimeError, match="Error\\(s\\) in loading state_dict for Linear"):
        m.load_state_dict({})
    result = m.load_state_dict({"weight": tapegrad.ones(2, 3), "x.y": tapegrad.ones(1)},
                               strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["x.y"]
    np.testing.assert_array_equal(m.weight.detach().numpy(), np.ones((2, 3)))
    assert repr(m.load_state_dict(m.state_dict())) == "<All keys matched successfully>"


def test_registration_errors():
    m = tnn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign 'tapegrad.FloatTensor' as parameter 'weight'"):
        m.weight = tapegrad.zeros(2, 2)
    with pytest.raises(KeyError, match="attribute 'in_features' already exists"):
        m.register_parameter("in_features", None)
    with pytest.raises(KeyError, match="buffer name can.+t contain"):
        m.register_buffer("a.b", tapegrad.zeros(1))
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'nope'"):
        m.nope  # noqa: B018

    class Early(tnn.Module):
        def __init__(self):
            self.w = tnn.Parameter(tapegrad.zeros(1))
    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        tnn.Module()(1)


def test_parameter_shares_storage_and_requires_grad():
    t = tapegrad.zeros(3)
    p = tnn.Parameter(t)
    assert p.requires_grad and p.is_leaf and isinstance(p, tapegrad.Tensor)
    with tapegrad.no_grad():
        p.add_(1)
    np.testing.assert_array_equal(t.numpy(), np.ones(3))
    assert not tnn.Parameter(t, requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:\ntensor(")


def test_hooks_train_eval_apply_and_zero_grad():
    m = tnn.Sequential(tnn.Linear(2, 2), tnn.Dropout(0.5))
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    h2 = m.register_forward_hook(lambda mod, args, out: calls.append(out.shape) or out + 1)
    m.eval()
    assert not m.training and not m[1].training
    out = m(tapegrad.ones(3, 2))
    np.testing.assert_allclose(out.detach().numpy(), (m[0].bias.detach().numpy() + 1)[None].repeat(3, 0),
                               rtol=1e-6)
    assert calls == [tapegrad.Size([3, 2])]
    h1.remove()
    h2.remove()
    x = tapegrad.ones(3, 2)
    np.testing.assert_allclose(m(x).detach().numpy(), m[0](x).detach().numpy())
    m.train()
    assert m.training and m[1].training
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "Dropout", "Sequential"]
    m(x).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(not np.any(p.grad.numpy()) for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_dropout_train_and_eval():
    tapegrad.manual_seed(0)
    d = tnn.Dropout(0.25)
    x = tapegrad.ones(200, 50)
    y = d(x).numpy()
    kept = y != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    d.eval()
    assert d(x) is x
    d2 = tnn.Dropout2d(0.5)
    y = d2(tapegrad.ones(40, 30, 2, 3)).numpy()
    per_channel = y.reshape(40, 30, 6)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))  # whole channels
    assert 0.4 < (per_channel[..., 0] == 0).mean() < 0.6
    assert d2.eval()(x) is x


def test_to_dtype_keeps_parameter_identity():
    m = tnn.Sequential(tnn.Linear(2, 3), tnn.BatchNorm1d(3))
    w = m[0].weight
    m(tapegrad.ones(4, 2)).sum().backward()
    m.to(tapegrad.float64)
    assert m[0].weight is w and w.dtype == tapegrad.float64 and w.grad.dtype == tapegrad.float64
    assert m[1].running_mean.dtype == tapegrad.float64
    assert m[1].num_batches_tracked.dtype == tapegrad.int64
    m.float()
    assert w.dtype == tapegrad.float32
    with pytest.raises(TypeError, match="floating point or complex dtypes"):
        m.to(tapegrad.int32)


def test_containers():
    layers = [tnn.Linear(2, 2), tnn.ReLU(), tnn.Linear(2, 1)]
    s = tnn.Sequential(*layers)
    assert len(s) == 3 and s[0] is layers[0] and s[-1] is layers[2]
    assert isinstance(s[1:], tnn.Sequential) and len(s[1:]) == 2 and s[1:][0] is layers[1]
    assert list(s) == layers
    with pytest.raises(IndexError, match="index 3 is out of range"):
        s[3]  # noqa: B018
    s.append(tnn.Tanh())
    assert len(s) == 4 and [n for n, _ in s.named_children()] == ["0", "1", "2", "3"]
    ml = tnn.ModuleList(layers)
    ml.append(tnn.Identity())
    assert len(ml) == 4 and ml[-1].__class__ is tnn.Identity
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    md = tnn.ModuleDict({"x": layers[0]})
    md["y"] = layers[2]
    assert list(md.keys()) == ["x", "y"] and "y" in md and len(md) == 2
    pl = tnn.ParameterList([tapegrad.zeros(1), tnn.Parameter(tapegrad.ones(2))])
    assert len(pl) == 2 and all(isinstance(p, tnn.Parameter) for p in pl)
    pd = tnn.ParameterDict({"a": tapegrad.zeros(1)})
    assert isinstance(pd["a"], tnn.Parameter) and list(pd.keys()) == ["a"]
    c = copy.deepcopy(s)
    assert c[0].weight is not s[0].weight
    np.testing.assert_array_equal(c[0].weight.detach().numpy(), s[0].weight.detach().numpy())


def test_functional_errors():
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"):
        F.linear(tapegrad.zeros(2, 3), tapegrad.zeros(5, 4))
    with pytest.raises(RuntimeError, match="expected m1 and m2 to have the same dtype, but got: "
                                           "double != float"):
        tnn.Linear(3, 2)(tapegrad.zeros(1, 3, dtype=tapegrad.float64))
    with pytest.raises(RuntimeError, match="expected scalar type Double but found Float"):
        tnn.Conv1d(1, 1, 1)(tapegrad.zeros(1, 1, 3, dtype=tapegrad.float64))
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        F.dropout(tapegrad.zeros(2), 1.5)
    with pytest.raises(ValueError, match="nope is not a valid value for reduction"):
        F.mse_loss(tapegrad.zeros(2), tapegrad.zeros(2), reduction="nope")
    with pytest.raises(ValueError, match=r"Expected input batch_size \(3\) to match target batch_size \(2\)"):
        F.cross_entropy(tapegrad.zeros(3, 4), tapegrad.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="expected input\\[1, 3, 5, 5\\] to have 2 channels"):
        F.conv2d(tapegrad.zeros(1, 3, 5, 5), tapegrad.zeros(4, 2, 3, 3))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        tnn.BatchNorm1d(3)(tapegrad.zeros(1, 3))
    with pytest.raises(RuntimeError, match=r"Given normalized_shape=\[4\], expected input with shape"):
        F.layer_norm(tapegrad.zeros(2, 3), (4,))


# -- initialisation -------------------------------------------------------------------------------
def test_default_init_bounds():
    tapegrad.manual_seed(1)
    lin = tnn.Linear(100, 300)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    bound = 1 / math.sqrt(100)  # kaiming_uniform(a=sqrt(5)) gives 1/sqrt(fan_in)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert abs(w.var() - bound ** 2 / 3) < 0.05 * bound ** 2 / 3
    assert np.abs(b).max() <= bound and abs(b.mean()) < 0.1 * bound
    conv = tnn.Conv2d(4, 8, 3)
    cb = 1 / math.sqrt(4 * 9)
    assert np.abs(conv.weight.detach().numpy()).max() <= cb
    emb = tnn.Embedding(1000, 20).weight.detach().numpy()
    assert abs(emb.mean()) < 0.02 and abs(emb.std() - 1) < 0.02
    lstm = tnn.LSTM(3, 25)
    assert all(np.abs(p.detach().numpy()).max() <= 1 / 5 for p in lstm.parameters())
    tapegrad.manual_seed(5)
    first = tnn.Linear(3, 4).weight.detach().numpy()
    tapegrad.manual_seed(5)
    np.testing.assert_array_equal(tnn.Linear(3, 4).weight.detach().numpy(), first)  # seeded
    np.testing.assert_array_equal(tnn.Embedding(4, 2, padding_idx=-1).weight.detach().numpy()[3], 0)
    ln = tnn.LayerNorm(3)
    np.testing.assert_array_equal(ln.weight.detach().numpy(), 1.0)
    np.testing.assert_array_equal(ln.bias.detach().numpy(), 0.0)


def test_init_functions_statistics(torch):
    tapegrad.manual_seed(2)
    init = tnn.init
    t = tapegrad.empty(400, 300)
    assert init.calculate_gain("relu") == torch.nn.init.calculate_gain("relu")
    assert init.calculate_gain("leaky_relu", 0.2) == torch.nn.init.calculate_gain("leaky_relu", 0.2)
    assert init.calculate_gain("tanh") == torch.nn.init.calculate_gain("tanh")
    std = math.sqrt(2 / 700)
    assert abs(init.xavier_normal_(t).numpy().std() - std) < 0.02 * std
    a = math.sqrt(6 / 700)
    x = init.xavier_uniform_(t).numpy()
    assert np.abs(x).max() <= a and np.abs(x).max() > 0.99 * a
    x = init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu").numpy()
    assert abs(x.std() - math.sqrt(2 / 400)) < 0.02 * math.sqrt(2 / 400)
    x = init.kaiming_uniform_(t, nonlinearity="relu").numpy()
    assert np.abs(x).max() <= math.sqrt(6 / 300)
    x = init.trunc_normal_(t, mean=1.0, std=2.0, a=0.0, b=2.0).numpy()
    assert x.min() >= 0.0 and x.max() <= 2.0 and abs(x.mean() - 1.0) < 0.02
    x = init.uniform_(t, -3, -1).numpy()
    assert x.min() >= -3 and x.max() <= -1 and abs(x.mean() + 2) < 0.02
    x = init.normal_(t, 5.0, 0.5).numpy()
    assert abs(x.mean() - 5) < 0.01 and abs(x.std() - 0.5) < 0.01
    q = init.orthogonal_(tapegrad.empty(3, 5), gain=2.0).numpy()
    np.testing.assert_allclose(q @ q.T, 4 * np.eye(3), atol=1e-5)
    np.testing.assert_array_equal(init.constant_(tapegrad.empty(2), 0.5).numpy(), [0.5, 0.5])
    p = tnn.Parameter(tapegrad.empty(2, 2))
    init.eye_(p)
    assert p.requires_grad and p.is_leaf
    np.testing.assert_array_equal(p.detach().numpy(), np.eye(2))
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(tapegrad.empty(3))


# -- nn.utils -------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_pytorch(torch, norm_type):
    grads = [np.random.default_rng(0).normal(size=s) for s in [(3, 4), (5,), (2, 2, 2)]]
    totals, clipped = [], []
    for lib, clip in ((torch, torch.nn.utils.clip_grad_norm_), (tapegrad, tnn.utils.clip_grad_norm_)):
        ps = [lib.zeros(*g.shape, requires_grad=True, dtype=lib.float64) for g in grads]
        for p, g in zip(ps, grads):
            p.grad = lib.tensor(g)
        totals.append(float(clip(ps, max_norm=1.5, norm_type=norm_type)))
        clipped.append([p.grad.numpy() for p in ps])
    assert totals[1] == pytest.approx(totals[0], rel=1e-10)
    for a, b in zip(*clipped):
        np.testing.assert_allclose(b, a, rtol=1e-10)


def test_clip_grad_value_and_vector_conversion():
    m = tnn.Linear(3, 2)
    m(tapegrad.ones(4, 3) * 10).sum().backward()
    tnn.utils.clip_grad_value_(m.parameters(), 0.5)
    assert all(np.abs(p.grad.numpy()).max() <= 0.5 for p in m.parameters())
    vec = tnn.utils.parameters_to_vector(m.parameters())
    assert tuple(vec.shape) == (8,)
    tnn.utils.vector_to_parameters(tapegrad.arange(8.0), m.parameters())
    np.testing.assert_array_equal(m.weight.detach().numpy(), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(m.bias.detach().numpy(), [6.0, 7.0])


def test_import_paths():
    from tapegrad.nn.modules.linear import Linear
    from tapegrad.nn.modules.activation import MultiheadAttention, ReLU  # noqa: F401
    from tapegrad.nn.modules.module import Module
    from tapegrad.nn.parameter import Parameter
    from tapegrad.nn.utils.clip_grad import clip_grad_norm_
    from tapegrad.nn.modules.loss import CrossEntropyLoss  # noqa: F401
    from tapegrad.nn.modules.batchnorm import BatchNorm2d  # noqa: F401
    import tapegrad.nn.init as init  # noqa: F401
    assert Linear is tnn.Linear and Module is tnn.Module and Parameter is tnn.Parameter
    assert clip_grad_norm_ is tnn.utils.clip_grad_norm_
    for name in tnn.modules.__all__:
        assert getattr(tnn, name) is getattr(tnn.modules, name)
