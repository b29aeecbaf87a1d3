"""Anomaly mode (`autograd.detect_anomaly`, `set_detect_anomaly`): the op whose backward made a
NaN and the line that recorded it, against PyTorch's messages; gradients unchanged otherwise
(against `jax.grad`); nothing kept when off."""
from __future__ import annotations

import inspect
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
from helpers import assert_close

# (expression, inputs): each backward makes a NaN in one op; PyTorch names that op and output
NAN_CASES = [
    ("(a * 1).log() * 0", {"a": [0.0, 2.0]}),
    ("T.where(a > 0, a.log(), a) * 0", {"a": [0.0, 1.0]}),
    ("(b * a.sqrt()) * 0", {"a": [0.0, 1.0], "b": [1.0, 1.0]}),
    ("a * (b / b)", {"a": [1.0, 1.0], "b": [0.0, 1.0]}),
    ("(a * b) * 0", {"a": [float("inf"), 1.0], "b": [0.0, 1.0]}),  # MulBackward0's 1th output
    ("b / b", {"b": [0.0, 1.0]}),  # one input at two positions: the 1th output has the NaN
    ("T.cat([a, b.sqrt()]) * 0", {"a": [1.0, 1.0], "b": [0.0, 1.0]}),
    ("T.nn.functional.mse_loss(a.log(), b) * 0", {"a": [0.0, 1.0], "b": [0.0, 1.0]}),
    ("a.max(0)[0].log() * 0", {"a": [0.0, 0.0]}),
]


def _nan_error(T, expr, inputs) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with T.autograd.detect_anomaly():
            scope = {k: T.tensor(v, requires_grad=True) for k, v in inputs.items()}
            scope["T"] = T
            with pytest.raises(RuntimeError) as info:
                eval(expr, scope).sum().backward()
    return str(info.value)


@pytest.mark.parametrize("expr,inputs", NAN_CASES, ids=[c[0] for c in NAN_CASES])
def test_nan_names_the_op_as_pytorch_does(expr, inputs):
    torch = pytest.importorskip("torch")
    assert _nan_error(tg, expr, inputs) == _nan_error(torch, expr, inputs)


def test_nan_error_and_the_forward_traceback_of_the_op():
    x = tg.tensor([0.0, 2.0], requires_grad=True)
    with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
        anomaly = tg.autograd.detect_anomaly()
    with anomaly:
        y = (x * 1).log(); line = inspect.currentframe().f_lineno  # noqa: E702
        loss = (y * 0).sum()
        with pytest.warns(UserWarning) as record, \
                pytest.raises(RuntimeError, match=r"^Function 'LogBackward0' returned nan values "
                                                  r"in its 0th output\.$"):
            loss.backward()
    message = str(next(w.message for w in record if "Error detected" in str(w.message)))
    assert message.startswith("Error detected in LogBackward0. Traceback of forward call that "
                              "caused the error:\n")
    assert f'File "{__file__}", line {line}, in test_nan_error_and' in message
    assert "y = (x * 1).log()" in message
    assert "tapegrad" not in message.split("\n")[-2]  # the last frame is the user's line
    frames = y.grad_fn.metadata["traceback_"]
    assert isinstance(frames, list) and "y = (x * 1).log()" in frames[-1]


def test_graph_recorded_outside_anomaly_mode_says_so():
    x = tg.tensor([0.0, 2.0], requires_grad=True)
    loss = ((x * 1).log() * 0).sum()
    assert "traceback_" not in loss.grad_fn.metadata  # nothing kept when off
    with pytest.warns(UserWarning):
        anomaly = tg.autograd.detect_anomaly()
    with anomaly, pytest.warns(UserWarning, match="No forward pass information available"), \
            pytest.raises(RuntimeError, match="'LogBackward0' returned nan"):
        loss.backward()


def test_check_nan_false_keeps_the_nan_gradient():
    x = tg.tensor([0.0, 2.0], requires_grad=True)
    with pytest.warns(UserWarning):
        anomaly = tg.autograd.detect_anomaly(check_nan=False)
    with anomaly:
        assert tg.is_anomaly_enabled() and not tg.is_anomaly_check_nan_enabled()
        (x.log() * 0).sum().backward()
    g = x.grad.tolist()
    assert np.isnan(g[0]) and g[1] == 0.0
    assert not tg.is_anomaly_enabled() and tg.is_anomaly_check_nan_enabled()


def test_gradients_op_by_op_equal_jax_grad():
    rng = np.random.default_rng(0)
    w1, w2, x = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(5, 3))
    with jax.enable_x64(True):
        g1, g2 = jax.grad(_jnp_loss, argnums=(0, 1))(jnp.asarray(w1), jnp.asarray(w2),
                                                     jnp.asarray(x))
    t1 = tg.tensor(w1, requires_grad=True)
    t2 = tg.tensor(w2, requires_grad=True)
    h_grads = []
    with tg.autograd.set_detect_anomaly(True):
        h = (tg.tensor(x) @ t1).tanh()
        h.register_hook(lambda g: h_grads.append(g))
        out = h @ t2
        loss = (out.softmax(-1) * out.sigmoid()).sum() + out.max(-1)[0].sum()
        loss.backward()
    assert not tg.is_anomaly_enabled()
    assert_close(t1.grad, g1)
    assert_close(t2.grad, g2)
    assert len(h_grads) == 1


def _jnp_loss(w1, w2, x):
    out = jnp.tanh(x @ w1) @ w2
    return (jax.nn.softmax(out, -1) * jax.nn.sigmoid(out)).sum() + out.max(-1).sum()


def test_second_order_gradients_under_anomaly_mode():
    x = tg.tensor([0.5, 1.5], dtype=tg.float64, requires_grad=True)
    with tg.autograd.set_detect_anomaly(True):
        (g,) = tg.autograd.grad((x ** 3).sum(), x, create_graph=True)
        g.sum().backward()
    assert_close(x.grad, 6 * np.array([0.5, 1.5]))


class _NanBackward(tg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g * float("nan")


class _Broken(tg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        raise ValueError("my backward is broken")


def test_custom_function_nan_and_errors_show_their_forward():
    x = tg.ones(2, requires_grad=True)
    with tg.autograd.set_detect_anomaly(True):
        y = _NanBackward.apply(x).sum()
        with pytest.warns(UserWarning, match="Error detected in _NanBackwardBackward"), \
                pytest.raises(RuntimeError, match="Function '_NanBackwardBackward' returned nan "
                                                  "values in its 0th output."):
            y.backward()
        z = _Broken.apply(x).sum()
        with pytest.warns(UserWarning, match=r"(?s)Error detected in _BrokenBackward.*"
                                             r"z = _Broken\.apply\(x\)"), \
                pytest.raises(ValueError, match="my backward is broken"):
            z.backward()


def test_custom_function_nan_message_matches_pytorch():
    torch = pytest.importorskip("torch")
    messages = []
    for T in (torch, tg):
        class NanBackward(T.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x * 2

            @staticmethod
            def backward(ctx, g):
                return g * float("nan")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with T.autograd.detect_anomaly(), pytest.raises(RuntimeError) as info:
                NanBackward.apply(T.ones(2, requires_grad=True)).sum().backward()
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_decorator_and_set_detect_anomaly():
    with pytest.warns(UserWarning):
        @tg.autograd.detect_anomaly()
        def inside():
            return tg.is_anomaly_enabled()
    assert inside() and not tg.is_anomaly_enabled()
    tg.autograd.set_detect_anomaly(True)
    try:
        assert tg.autograd.is_anomaly_enabled()
        with tg.autograd.set_detect_anomaly(False):
            assert not tg.is_anomaly_enabled()
        assert tg.is_anomaly_enabled()
    finally:
        tg.autograd.set_detect_anomaly(False)
    assert not tg.is_anomaly_enabled()


def test_compiled_step_under_anomaly_mode_is_refused():
    w = tg.ones(2, requires_grad=True)

    @tg.compile
    def step(x):
        loss = (w * x).sum()
        loss.backward()
        return loss

    with tg.autograd.set_detect_anomaly(True), \
            pytest.raises(RuntimeError, match="anomaly mode checks gradient values"):
        for _ in range(3):
            step(tg.ones(2))
