"""Autocast and GradScaler (`amp/`, `_core/autocast.py`) against PyTorch's CPU bfloat16 autocast
and `torch.amp.GradScaler("cpu")`, and gradients against `jax.grad` of the same casts."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as TF
from tapegrad._core import autocast as _autocast
from tapegrad._core.graph import REGISTRY

torch = pytest.importorskip("torch")
F = torch.nn.functional

rng = np.random.default_rng(0)


def _pair(*shape):
    a = rng.standard_normal(shape).astype(np.float32)
    return torch.tensor(a), tg.tensor(a)


def _close(t, g, tol=2e-2):
    np.testing.assert_allclose(g.detach().float().numpy(), t.detach().float().numpy(), rtol=tol, atol=tol)


def _dtype_name(d):
    return str(d).split(".")[-1]


x_t, x_g = _pair(4, 8)
m_t, m_g = _pair(8, 8)
img_t, img_g = _pair(2, 3, 6, 6)
cw_t, cw_g = _pair(4, 3, 3, 3)
y_t, y_g = _pair(4, 8)
idx = np.array([0, 3, 5, 7])

# (name, f(lib, F, x, m, img, cw, y, idx)) run under CPU autocast in both libraries.
OPS = [
    ("linear", lambda L, F, x, m, *_: F.linear(x, m, m[0])),
    ("matmul", lambda L, F, x, m, *_: x @ m),
    ("mm", lambda L, F, x, m, *_: L.mm(x, m)),
    ("bmm", lambda L, F, x, m, *_: L.bmm(x[None], m[None])),
    ("addmm", lambda L, F, x, m, *_: L.addmm(x, x, m)),
    ("baddbmm", lambda L, F, x, m, *_: L.baddbmm(x[None], x[None], m[None])),
    ("einsum", lambda L, F, x, m, *_: L.einsum("ij,jk->ik", x, m)),
    ("outer", lambda L, F, x, m, *_: L.outer(x[0], x[1])),
    ("conv2d", lambda L, F, x, m, img, cw, *_: F.conv2d(img, cw)),
    ("conv_transpose2d", lambda L, F, x, m, img, cw, *_: F.conv_transpose2d(img, cw.transpose(0, 1))),
    ("prelu", lambda L, F, x, *_: F.prelu(x, x[0, :1])),
    ("sdpa", lambda L, F, x, *_: F.scaled_dot_product_attention(x[None], x[None], x[None])),
    ("softmax", lambda L, F, x, *_: F.softmax(x, -1)),
    ("layer_norm", lambda L, F, x, m, *_: F.layer_norm(x, (8,), m[0], m[1])),
    ("sum", lambda L, F, x, *_: x.sum()),
    ("exp", lambda L, F, x, *_: x.exp()),
    ("trace", lambda L, F, x, m, *_: m.trace()),
    ("inv", lambda L, F, x, m, *_: L.linalg.inv(m + 8 * L.eye(8))),
    ("cat", lambda L, F, x, m, *_: L.cat([x, m])),
    ("stack", lambda L, F, x, m, *_: L.stack([x, m[:4]])),
    ("cross_entropy", lambda L, F, x, m, img, cw, y, idx: F.cross_entropy(x, idx)),
    ("nll_loss", lambda L, F, x, m, img, cw, y, idx: F.nll_loss(x, idx)),
    ("mse_loss", lambda L, F, x, m, img, cw, y, *_: F.mse_loss(x, y)),
    ("l1_loss", lambda L, F, x, m, img, cw, y, *_: F.l1_loss(x, y)),
    ("smooth_l1_loss", lambda L, F, x, m, img, cw, y, *_: F.smooth_l1_loss(x, y)),
    ("huber_loss", lambda L, F, x, m, img, cw, y, *_: F.huber_loss(x, y)),
    ("kl_div", lambda L, F, x, m, img, cw, y, *_: F.kl_div(x, y, reduction="batchmean")),
    ("bce_with_logits", lambda L, F, x, m, img, cw, y, *_:
     F.binary_cross_entropy_with_logits(x, y.sigmoid())),
    ("bce", lambda L, F, x, m, img, cw, y, *_: F.binary_cross_entropy(x.sigmoid(), y.sigmoid())),
    ("float64", lambda L, F, x, m, *_: F.linear(x.double(), m.double())),
    ("int", lambda L, F, x, m, img, cw, y, idx: L.tensor(idx) @ L.tensor(idx)),
]


@pytest.mark.parametrize("name,f", OPS, ids=[n for n, _ in OPS])
def test_op_dtype_and_value_under_cpu_autocast(name, f):
    """Each op's input casts and output dtype follow PyTorch's CPU lists; the op runs on the
    bfloat16 output of a linear layer too (low-precision input) and on float32 input."""
    with torch.autocast("cpu"):
        want = f(torch, F, x_t, m_t, img_t, cw_t, y_t, torch.tensor(idx))
        want_low = f(torch, F, F.linear(x_t, m_t), m_t, img_t, cw_t, y_t, torch.tensor(idx))
    with tg.autocast("cpu"):
        got = f(tg, TF, x_g, m_g, img_g, cw_g, y_g, tg.tensor(idx))
        got_low = f(tg, TF, TF.linear(x_g, m_g), m_g, img_g, cw_g, y_g, tg.tensor(idx))
    assert _dtype_name(got.dtype) == _dtype_name(want.dtype)
    assert _dtype_name(got_low.dtype) == _dtype_name(want_low.dtype)
    _close(want, got, tol=5e-2 * max(1.0, float(want.detach().float().abs().max())))


def test_every_listed_name_is_a_row():
    import tapegrad.nn.functional  # noqa: F401  (the nn rows)
    for table in _autocast.POLICIES.values():
        assert set(table) <= set(REGISTRY), set(table) - set(REGISTRY)


def _mlp_params(lib, arrays):
    return [lib.tensor(a, requires_grad=True) for a in arrays]


def test_mlp_dtypes_values_and_grads_match_pytorch():
    arrays = [rng.standard_normal(s).astype(np.float32) * 0.3 for s in [(16, 8), (16,), (16,), (16,), (5, 16), (5,)]]
    xb = rng.standard_normal((6, 8)).astype(np.float32)
    yb = np.array([0, 1, 2, 3, 4, 0])

    def run(lib, Fn):
        w1, b1, g, beta, w2, b2 = ps = _mlp_params(lib, arrays)
        with lib.autocast("cpu", dtype=lib.bfloat16):
            h = Fn.linear(lib.tensor(xb), w1, b1)
            a = Fn.relu(h)
            n = Fn.layer_norm(a, (16,), g, beta)
            logits = Fn.linear(n, w2, b2)
            p = Fn.softmax(logits, -1)
            loss = Fn.cross_entropy(logits, lib.tensor(yb))
        loss.backward()
        return [h, a, n, logits, p, loss], ps

    want, wp = run(torch, F)
    got, gp = run(tg, TF)
    assert [_dtype_name(t.dtype) for t in got] == [_dtype_name(t.dtype) for t in want]
    assert _dtype_name(got[-1].dtype) == "float32"
    for w, g in zip(want, got):
        _close(w, g, tol=3e-2)
    for w, g in zip(wp, gp):
        assert g.grad.dtype == tg.float32
        _close(w.grad, g.grad, tol=3e-2)


def test_mlp_grads_equal_jax_grad_of_the_same_casts():
    w_np = rng.standard_normal((4, 8)).astype(np.float32)
    b_np = rng.standard_normal(4).astype(np.float32)
    x_np = rng.standard_normal((3, 8)).astype(np.float32)
    w, b = tg.tensor(w_np, requires_grad=True), tg.tensor(b_np, requires_grad=True)
    with tg.autocast("cpu"):
        loss = TF.mse_loss(TF.linear(tg.tensor(x_np), w, b).tanh(), tg.zeros(3, 4))
    loss.backward()

    def ref(w, b):
        bf = jnp.bfloat16
        h = jnp.tanh(x_np.astype(bf) @ w.astype(bf).T + b.astype(bf))
        return jnp.mean(jnp.square(h.astype(jnp.float32)))

    gw, gb = jax.grad(ref, argnums=(0, 1))(jnp.asarray(w_np), jnp.asarray(b_np))
    # bfloat16 rounding of intermediates may differ by one ulp where XLA fuses differently
    np.testing.assert_allclose(float(loss.item()), float(ref(w_np, b_np)), rtol=1e-2)
    np.testing.assert_allclose(w.grad.numpy(), np.asarray(gw), rtol=2e-2, atol=1e-3)
    np.testing.assert_allclose(b.grad.numpy(), np.asarray(gb), rtol=2e-2, atol=1e-3)


def test_conv_net_dtypes_and_values_match_pytorch():
    arrays = [rng.standard_normal(s).astype(np.float32) * 0.3 for s in [(4, 3, 3, 3), (4,), (3, 36)]]
    xb = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)

    def run(lib, Fn):
        cw, cb, fw = _mlp_params(lib, arrays)
        mean, var = lib.zeros(4), lib.ones(4)
        with lib.autocast("cpu"):
            c = Fn.conv2d(lib.tensor(xb), cw, cb)
            n = Fn.batch_norm(c, mean, var, lib.ones(4), lib.zeros(4), training=True)
            a = Fn.relu(n)
            p = Fn.max_pool2d(a, 2)
            f = p.flatten(1)
            logits = f @ fw.t()
            loss = Fn.cross_entropy(logits, lib.tensor([1, 2]))
        loss.backward()
        return [c, n, a, p, f, logits, loss, mean, var], cw.grad

    want, wg = run(torch, F)
    got, gg = run(tg, TF)
    assert [_dtype_name(t.dtype) for t in got] == [_dtype_name(t.dtype) for t in want]
    for w, g in zip(want, got):
        _close(w, g, tol=5e-2)
    assert gg.dtype == tg.float32
    _close(wg, gg, tol=5e-2)


def test_attention_and_nested_disabled_region():
    q_t, q_g = _pair(2, 2, 5, 8)
    outs = []
    for lib, Fn, q in ((torch, F, q_t), (tg, TF, q_g)):
        with lib.autocast("cpu"):
            a = Fn.scaled_dot_product_attention(q, q, q, is_causal=True)
            s = Fn.softmax(q @ q.transpose(-1, -2), -1)
            with lib.autocast("cpu", enabled=False):
                inner = q @ q.transpose(-1, -2)  # float32 again
                low = a.sum()  # the bfloat16 tensor from outside stays bfloat16
                assert not lib.is_autocast_enabled("cpu")
            after = q @ q.transpose(-1, -2)
            assert lib.is_autocast_enabled("cpu")
        outs.append([a, s, inner, low, after])
    assert [_dtype_name(t.dtype) for t in outs[1]] == [_dtype_name(t.dtype) for t in outs[0]]
    for w, g in zip(*outs):
        _close(w, g, tol=5e-2)
    assert not tg.is_autocast_enabled("cpu")


def test_decorator_state_and_warnings():
    @tg.autocast("cpu", dtype=tg.float16)
    def f(x):
        assert tg.get_autocast_dtype("cpu") == tg.float16
        return x @ x
    assert f(m_g).dtype == tg.float16
    assert tg.get_autocast_dtype("cpu") == tg.bfloat16 == torch_dtype_name_check()
    assert tg.get_autocast_dtype("cuda") == tg.float16
    assert tg.amp.autocast is tg.autocast and tg.amp.is_autocast_available("cpu")
    with pytest.warns(UserWarning, match="CPU Autocast only supports dtype of"):
        ctx = tg.autocast("cpu", dtype=tg.float64)
    with ctx:
        assert (m_g @ m_g).dtype == tg.float32
    with pytest.raises(RuntimeError, match="unsupported autocast device_type 'tpu'"):
        tg.autocast("tpu")
    with pytest.raises(ValueError, match="Expected `device_type` of type `str`"):
        tg.autocast(tg.device("cpu"))


def torch_dtype_name_check():
    assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    return tg.bfloat16


def _scaler_run(lib, scaler, steps, inject):
    w0 = np.arange(6, dtype=np.float32).reshape(2, 3) / 10
    w = lib.tensor(w0, requires_grad=True)
    opt = lib.optim.SGD([w], lr=0.1)
    scales, values = [], []
    for i in range(steps):
        loss = (w * lib.tensor(np.float32(i + 1))).square().sum()
        scaler.scale(loss).backward()
        if i in inject:
            with lib.no_grad():
                w.grad[0, 0] = float("inf") if i % 2 else float("nan")
        if i == 2:
            scaler.unscale_(opt)
            with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called on "
                               "this optimizer since the last update\\(\\)"):
                scaler.unscale_(opt)
        scaler.step(opt)
        with pytest.raises(RuntimeError, match="step\\(\\) has already been called since the last update\\(\\)"):
            scaler.step(opt)
        scaler.update()
        opt.zero_grad()
        scales.append(scaler.get_scale())
        values.append(w.detach().numpy().copy())
    return scales, values, scaler.state_dict()


def test_grad_scaler_matches_pytorch_with_injected_inf():
    kw = dict(init_scale=2.0**10, growth_factor=2.0, backoff_factor=0.25, growth_interval=2)
    want = _scaler_run(torch, torch.amp.GradScaler("cpu", **kw), 7, inject={1, 4})
    got = _scaler_run(tg, tg.amp.GradScaler("cpu", **kw), 7, inject={1, 4})
    assert got[0] == want[0]
    assert len(set(got[0])) > 2  # grew and backed off
    for w, g in zip(want[1], got[1]):
        np.testing.assert_allclose(g, w, rtol=1e-6)
    assert got[2] == want[2]


def test_grad_scaler_state_dict_errors_and_disabled():
    s = tg.amp.GradScaler("cpu", init_scale=8.0)
    with pytest.raises(RuntimeError, match="Attempted update but _scale is None"):
        s.update()
    s2 = tg.amp.GradScaler("cpu")
    s2.load_state_dict({"scale": 4.0, "growth_factor": 3.0, "backoff_factor": 0.5,
                        "growth_interval": 5, "_growth_tracker": 1})
    assert s2.get_scale() == 4.0 and s2.state_dict()["_growth_tracker"] == 1
    off = tg.amp.GradScaler("cpu", enabled=False)
    loss = tg.tensor(2.0)
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}
    with pytest.raises(RuntimeError, match="The source state dict is empty"):
        s.load_state_dict({})
    t = torch.amp.GradScaler("cpu", init_scale=8.0)
    assert s.scale(tg.tensor(3.0)).item() == t.scale(torch.tensor(3.0)).item()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.amp.GradScaler("cpu")
