"""Failures leave state whole (issue 14 section 3, and section 2's leftovers).

Each program runs in PyTorch and in tapegrad: the same error type and key words, and the state
after the error. Where PyTorch leaves state half-updated (a hook raising after some leaves were
accumulated), tapegrad leaves every `.grad` as it was before the failed backward, and frees the
graph where PyTorch frees it (a retry raises exactly when PyTorch's does); gradients after a
retry are checked against `jax.grad`. Multi-output `autograd.Function` gradients are checked
against `jax.grad` of the same jnp program.
"""
from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as tgF

torch = pytest.importorskip("torch")
import torch.nn.functional as tF  # noqa: E402

NAN = float("nan")


def _np(t):
    return None if t is None else np.asarray(t.detach().numpy())


def _raises(m, fn):
    """The exception `fn()` raises in library `m` (None if it returns)."""
    try:
        fn()
    except BaseException as e:  # noqa: BLE001 - KeyboardInterrupt is one of the cases
        return e
    return None


class Boom(Exception):
    pass


def _boom(g):
    raise Boom("hook failed")


def _interrupt(g):
    raise KeyboardInterrupt


# -- a hook raising during backward --------------------------------------------------------------
X0, W0, XG0 = np.array([0.5, -1.0]), np.array([0.3, 0.7]), np.array([10.0, 20.0])


def _loss_jax(x, w):
    a = jnp.exp(x * w)
    return jnp.sum(a * a) + jnp.sum(x)


def _graph(m):
    """x, w leaves (x.grad set), the tensors a hook can sit on, and the loss."""
    x = m.tensor(X0, requires_grad=True)
    w = m.tensor(W0, requires_grad=True)
    x.grad = m.tensor(XG0)
    a = (x * w).exp()
    b = a * a
    return x, w, {"a": a, "b": b, "x": x, "w": w}, b.sum() + x.sum()


@pytest.mark.parametrize("retain", [False, True])
@pytest.mark.parametrize("where", ["a", "b", "x", "w"])
@pytest.mark.parametrize("hook", [_boom, _interrupt], ids=["exception", "KeyboardInterrupt"])
def test_hook_raising_leaves_grads_whole(where, retain, hook):
    freed = {}
    for m in (torch, tg):
        x, w, ts, loss = _graph(m)
        held = x.grad  # a tensor taken from .grad earlier sees the rollback too
        handle = ts[where].register_hook(hook)
        err = _raises(m, lambda: loss.backward(retain_graph=retain))
        assert isinstance(err, Boom if hook is _boom else KeyboardInterrupt)
        handle.remove()
        if m is tg:  # every .grad as before the failed backward
            np.testing.assert_array_equal(_np(x.grad), XG0)
            np.testing.assert_array_equal(_np(held), XG0)
            assert w.grad is None
        retry = _raises(m, loss.backward)
        freed[m] = isinstance(retry, RuntimeError) and "second time" in str(retry)
        if m is tg and not freed[m]:  # counted once, as jax.grad says
            gx, gw = jax.grad(_loss_jax, argnums=(0, 1))(X0, W0)
            np.testing.assert_allclose(_np(x.grad), XG0 + gx, rtol=1e-5)
            np.testing.assert_allclose(_np(w.grad), gw, rtol=1e-5)
    assert freed[tg] == freed[torch]  # the graph freed where PyTorch frees it


def test_post_accumulate_hook_raising_rolls_back():
    for m in (torch, tg):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        w = m.tensor([3.0, 4.0], requires_grad=True)
        x.grad = m.tensor([1.0, 1.0])
        w.register_post_accumulate_grad_hook(_boom)
        with pytest.raises(Boom):
            (x * w).sum().backward()
    np.testing.assert_array_equal(_np(x.grad), [1.0, 1.0])  # PyTorch leaves [4, 5] here
    assert w.grad is None


def test_retained_grad_rolled_back():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    x.register_hook(_boom)
    with pytest.raises(Boom):
        (y * y).sum().backward()
    assert y.grad is None and x.grad is None


# -- what a hook returns is checked --------------------------------------------------------------
HOOK_RESULTS = [
    ("size", lambda m: m.ones(3), RuntimeError, "hook '<lambda>' has changed the size of value"),
    ("size 2-d", lambda m: m.ones(1, 2), RuntimeError, "has changed the size of value"),
    ("dtype", lambda m: m.ones(2, dtype=m.float64), RuntimeError,
     "hook '<lambda>' has changed the type of value"),
    ("int dtype", lambda m: m.ones(2, dtype=m.int64), RuntimeError, "has changed the type of value"),
    ("not a tensor", lambda m: 3.0, TypeError, "expected Variable, but hook returned 'float'"),
]


@pytest.mark.parametrize("leaf", [False, True], ids=["non-leaf", "leaf"])
@pytest.mark.parametrize("name,result,error,words", HOOK_RESULTS, ids=[c[0] for c in HOOK_RESULTS])
def test_hook_result_checked(name, result, error, words, leaf):
    for m in (torch, tg):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        out = result(m)
        (x if leaf else y).register_hook(lambda g: out)
        with pytest.raises(error, match=words.replace("(", r"\(")):
            (y * 3).sum().backward()
        assert x.grad is None


# -- custom Function: what backward returns ------------------------------------------------------
def _mul_function(m, backward):
    class Mul(m.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return backward(m, g)
    return Mul


BACKWARD_RESULTS = [
    ("too few", lambda m, g: g, RuntimeError,
     "function MulBackward returned an incorrect number of gradients (expected 2, got 1)"),
    ("too many", lambda m, g: (g, g, g), RuntimeError,
     "function MulBackward returned an incorrect number of gradients (expected 2, got 3)"),
    ("shape", lambda m, g: (m.ones(3), g), RuntimeError,
     "Function MulBackward returned an invalid gradient at index 0 - got [3] but expected shape "
     "compatible with [2]"),
    ("shape [1]", lambda m, g: (m.ones(1), g), RuntimeError,
     "returned an invalid gradient at index 0 - got [1]"),
    ("not a tensor", lambda m, g: (1.0, g), RuntimeError, "expected Variable or None (got float)"),
]


@pytest.mark.parametrize("name,backward,error,words", BACKWARD_RESULTS,
                         ids=[c[0] for c in BACKWARD_RESULTS])
def test_function_backward_checked(name, backward, error, words):
    for m in (torch, tg):
        a = m.tensor([1.0, 2.0], requires_grad=True)
        b = m.tensor([3.0, 4.0], requires_grad=True)
        with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace("]", r"\]")):
            _mul_function(m, backward).apply(a, b).sum().backward()
        assert a.grad is None and b.grad is None


@pytest.mark.parametrize("name,backward", [
    ("float64", lambda m, g: (g.double(), g)),
    ("int64", lambda m, g: (g.long(), g)),
    ("broadcast", lambda m, g: (m.ones(3, 2), g)),
    ("None beyond", lambda m, g: (g, g, None)),
])
def test_function_gradient_cast_and_reduced(name, backward):
    """A gradient of another dtype is cast to the input's, one of a broadcast shape summed."""
    grads = {}
    for m in (torch, tg):
        a = m.tensor([1.0, 2.0], requires_grad=True)
        b = m.tensor([3.0, 4.0], requires_grad=True)
        _mul_function(m, backward).apply(a, b).sum().backward()
        assert a.grad.dtype == m.float32
        grads[m] = (_np(a.grad), _np(b.grad))
    for t, g in zip(grads[torch], grads[tg]):
        np.testing.assert_array_equal(g, t)


# -- custom Function with several outputs --------------------------------------------------------
def _sincos(m):
    class SinCos(m.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x.sin() * y, x.cos() * y

        @staticmethod
        def backward(ctx, gs, gc):
            x, y = ctx.saved_tensors
            ctx.seen = (ctx.needs_input_grad, _np(gs), _np(gc))
            gx = gs * x.cos() * y - gc * x.sin() * y
            gy = gs * x.sin() + gc * x.cos()
            return gx, gy
    return SinCos


X1, Y1 = np.array([0.3, -1.2, 2.0]), np.array([1.5, 0.5, -2.0])


def _sincos_jax(x, y):
    s, c = jnp.sin(x) * y, jnp.cos(x) * y
    return jnp.sum(s * c) + jnp.sum(s)


def test_function_two_outputs_against_jax():
    x = tg.tensor(X1, requires_grad=True)
    y = tg.tensor(Y1, requires_grad=True)
    s, c = _sincos(tg).apply(x, y)
    assert type(s.grad_fn).__name__ == "SinCosBackward" and s.grad_fn is c.grad_fn
    ((s * c).sum() + s.sum()).backward()
    with jax.enable_x64(True):
        gx, gy = jax.grad(_sincos_jax, argnums=(0, 1))(X1, Y1)
    np.testing.assert_allclose(_np(x.grad), gx, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_np(y.grad), gy, rtol=1e-6, atol=1e-7)


def test_function_two_outputs_second_order_against_jax():
    x = tg.tensor(X1, requires_grad=True)
    y = tg.tensor(Y1)
    s, c = _sincos(tg).apply(x, y)
    (g,) = tg.autograd.grad((s * c).sum() + s.sum(), x, create_graph=True)
    (gg,) = tg.autograd.grad(g.sum(), x)
    with jax.enable_x64(True):
        expected = jax.grad(lambda x: jnp.sum(jax.grad(_sincos_jax)(x, Y1)))(X1)
    np.testing.assert_allclose(_np(gg), expected, rtol=1e-6, atol=1e-7)


def test_function_unused_output_gets_zeros_and_needs_input_grad():
    seen = {}
    for m in (torch, tg):
        x = m.tensor(X1, requires_grad=True)
        s, c = _sincos(m).apply(x, m.tensor(Y1))
        (s * 2).sum().backward()
        needs, gs, gc = s.grad_fn.seen
        assert needs == (True, False)
        seen[m] = (gs, gc, _np(x.grad))
    for t, g in zip(seen[torch], seen[tg]):
        np.testing.assert_allclose(g, t, rtol=1e-6)
    np.testing.assert_array_equal(seen[tg][1], np.zeros(3))


def _outputs_function(m, materialize):
    class Outs(m.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(materialize)
            index = m.tensor([1, 0])
            ctx.mark_non_differentiable(index)
            return x * 2, 7, index, x.exp()

        @staticmethod
        def backward(ctx, ga, g_int, g_index, gb):
            ctx.seen = [None if g is None else _np(g) for g in (ga, g_int, g_index, gb)]
            return ga * 2 if ga is not None else None
    return Outs


@pytest.mark.parametrize("materialize", [True, False])
def test_function_outputs_non_tensor_non_differentiable_and_materialize(materialize):
    seen = {}
    for m in (torch, tg):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        a, n, index, b = _outputs_function(m, materialize).apply(x)
        assert n == 7 and not index.requires_grad and b.requires_grad
        a.sum().backward()
        seen[m] = (a.grad_fn.seen, _np(x.grad))
    (t_grads, t_x), (g_grads, g_x) = seen[torch], seen[tg]
    np.testing.assert_array_equal(g_x, t_x)
    for t, g in zip(t_grads, g_grads):
        assert (t is None) == (g is None)
        if t is not None:
            np.testing.assert_array_equal(g, t)


def test_function_one_tuple_output():
    for m in (torch, tg):
        class One(m.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return (x * 3,)

            @staticmethod
            def backward(ctx, g):
                return g * 3
        x = m.tensor([1.0, 2.0], requires_grad=True)
        out = One.apply(x)
        assert isinstance(out, tuple) and len(out) == 1
        out[0].sum().backward()
        np.testing.assert_array_equal(_np(x.grad), [3.0, 3.0])


# -- tapegrad.compile: a call that raises applies nothing ---------------------------------------
def _training(m, fail_at, compiled):
    """Five calls of an Adam step with dropout; the calls in `fail_at` raise after opt.step()."""
    m.manual_seed(0)
    model = m.nn.Linear(3, 2)
    with m.no_grad():
        model.weight.copy_(m.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]]))
        model.bias.copy_(m.tensor([0.05, -0.05]))
    opt = m.optim.Adam(model.parameters(), lr=0.1)
    x = m.ones(4, 3)
    calls = [0]

    def step(x):
        opt.zero_grad(set_to_none=False)
        loss = m.nn.functional.dropout(model(x), 0.5).sum()
        loss.backward()
        opt.step()
        calls[0] += 1
        if calls[0] - 1 in fail_at:
            raise Boom("step failed")
        return loss

    run = tg.compile(step) if compiled else step
    states = []
    for i in range(6):
        before = _state(model, opt)
        err = _raises(m, lambda: run(x))
        if i in fail_at:
            assert isinstance(err, Boom)
            _assert_same_state(before, _state(model, opt))
            calls[0] = i + 1  # the eager reference below skips failed calls
        else:
            assert err is None
        states.append(_state(model, opt))
    return states


def _state(model, opt):
    return ([_np(p) for p in model.parameters()], [_np(p.grad) for p in model.parameters()],
            [{k: _np(v) if hasattr(v, "numpy") else v for k, v in st.items()}
             for st in opt.state.values()])


def _assert_same_state(a, b):
    for x, y in zip(a[0] + a[1], b[0] + b[1]):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(x, y)
    assert len(a[2]) == len(b[2])
    for sa, sb in zip(a[2], b[2]):
        assert sa.keys() == sb.keys()
        for k in sa:
            np.testing.assert_array_equal(np.asarray(sa[k], dtype=float), np.asarray(sb[k], dtype=float))


def test_compiled_step_that_raises_applies_nothing():
    """Failed calls (eager discovery runs and the traced call) leave parameters, .grad,
    optimizer state and the generator as they were: the successful calls then match a
    compiled run without failures, call for call."""
    fail_at = {0, 2, 4}
    failing = _training(tg, fail_at, compiled=True)
    clean = _training(tg, set(), compiled=True)
    kept = [s for i, s in enumerate(failing) if i not in fail_at]
    # a failed call draws no random numbers: call k of the clean run is the k-th success
    for a, b in zip(kept, clean[:len(kept)]):
        _assert_same_state(a, b)


def test_compiled_step_refused_applies_nothing():
    model = tg.nn.Linear(2, 1)
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    sched = tg.optim.lr_scheduler.StepLR(opt, 1)

    @tg.compile
    def step(x):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
        sched.step()  # refused: hyperparameters change inside the step

    before = _state(model, opt)
    with pytest.raises(RuntimeError, match="changed an optimizer's hyperparameters"):
        step(tg.ones(3, 2))
    _assert_same_state(before, _state(model, opt))


def _embedding_training(kind):
    """An embedding trained with Adam under tapegrad.compile, with a dropout drawing noise; the
    fourth call meets a failure (`kind`) in the compiled program or its retrace."""
    tg.manual_seed(0)
    emb = tg.nn.Embedding(4, 3)
    drop = tg.nn.Dropout(0.5)
    opt = tg.optim.Adam(emb.parameters(), lr=0.1)
    cfg = types.SimpleNamespace(read=False)  # guarded: a change relearns the step

    @tg.compile
    def step(idx):
        opt.zero_grad(set_to_none=False)
        loss = drop(emb(idx * 1)).sum()
        loss.backward()
        opt.step()
        if cfg.read:
            loss.item()  # refused while tracing
        return loss

    return emb, opt, cfg, step


def _full_state(emb, opt):
    state = _state(emb, opt)
    return state, tg.get_rng_state().numpy().copy()


@pytest.mark.parametrize("kind", ["index", "refused"])
def test_a_compiled_program_that_raises_applies_nothing(kind):
    """A call that really runs compiled (after two eager runs and the trace) and fails, by a
    value check inside the program or a refusal met while retracing, leaves the weights, .grad,
    Adam's moments and step counts and the generator as they were; the next call goes on."""
    emb, opt, cfg, step = _embedding_training(kind)
    good = tg.tensor([0, 2])
    for _ in range(4):  # three eager runs (the first has no .grad to zero), then the trace
        step(good)
    assert step.traces == 1
    before, rng = _full_state(emb, opt)
    if kind == "index":
        with pytest.raises(IndexError, match="index out of range in self"):
            step(tg.tensor([1, 7]))
    else:
        cfg.read = True
        with pytest.raises(RuntimeError, match="item"):
            for _ in range(4):  # the guard fails: relearned eagerly (those run), the trace refuses
                before, rng = _full_state(emb, opt)
                step(good)
        cfg.read = False
    after, rng_after = _full_state(emb, opt)
    _assert_same_state(before, after)
    np.testing.assert_array_equal(rng, rng_after)
    # the run goes on as one that never failed
    ref_emb, ref_opt, _, ref_step = _embedding_training(kind)
    for _ in range(4):
        ref_step(good)
    with tg.no_grad():
        for p, q in zip(ref_emb.parameters(), emb.parameters()):
            p.copy_(q)
    for (_, a), (_, b) in zip(ref_opt.state.items(), opt.state.items()):
        for k in a:
            a[k] = b[k].clone() if hasattr(b[k], "clone") else b[k]
    tg.set_rng_state(tg.tensor(rng))
    ref_loss = ref_step(good).item()
    tg.set_rng_state(tg.tensor(rng))
    loss = step(good).item()
    assert loss == ref_loss


# -- a bad pending in-place write does not break the next backward ------------------------------
def test_bad_pending_write_leaves_next_backward_alone():
    results = {}
    for m, F in ((torch, tF), (tg, tgF)):
        buf = m.zeros(())
        w = m.ones(3, requires_grad=True)
        with m.no_grad():
            with pytest.raises(RuntimeError, match="non-positive stride is not supported"):
                buf.add_(F.conv2d(m.ones(1, 1, 4, 4), m.ones(1, 1, 2, 2), stride=0).sum())
            err = _raises(m, lambda: buf.add_(F.embedding(m.tensor([0, 5]) * 1, m.ones(3, 2)).sum()))
        if m is torch:
            assert isinstance(err, IndexError)
        (w * 2).sum().backward()  # unrelated: must not fail
        (w * 2).sum().backward()
        results[m] = _np(w.grad)
        if m is tg:  # the failed write stays pending with its error, raised where it is read
            with pytest.raises(IndexError, match="index out of range in self"):
                buf.item()
    np.testing.assert_array_equal(results[tg], results[torch])


# -- unique keeps NaNs apart ---------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{}, {"return_inverse": True, "return_counts": True},
                                    {"sorted": False, "return_counts": True}])
def test_unique_nan(kwargs):
    outs = {}
    for m in (torch, tg):
        out = m.unique(m.tensor([NAN, 1.0, NAN, 1.0, 2.0]), **kwargs)
        outs[m] = [_np(o) for o in (out if isinstance(out, tuple) else (out,))]
    for t, g in zip(outs[torch], outs[tg]):
        np.testing.assert_array_equal(g, t)


# -- argument checks found by probing bad calls against PyTorch ---------------------------------
PROBED = [
    ("max_pool2d dilation 0", lambda m, F: F.max_pool2d(m.ones(1, 1, 4, 4), 2, dilation=0),
     RuntimeError, "dilation should be greater than zero"),
    ("avg_pool2d divisor_override 0",
     lambda m, F: F.avg_pool2d(m.ones(1, 1, 4, 4), 2, divisor_override=0),
     RuntimeError, "divisor must be not zero"),
    ("conv_transpose2d stride 0",
     lambda m, F: F.conv_transpose2d(m.ones(1, 1, 4, 4), m.ones(1, 1, 2, 2), stride=0),
     RuntimeError, "non-positive stride is not supported"),
    ("conv_transpose2d negative padding",
     lambda m, F: F.conv_transpose2d(m.ones(1, 1, 4, 4), m.ones(1, 1, 2, 2), padding=-1),
     RuntimeError, "negative padding is not supported"),
    ("conv_transpose2d output too small",
     lambda m, F: F.conv_transpose2d(m.ones(1, 1, 4, 4), m.ones(1, 1, 2, 2), padding=3),
     RuntimeError, "Output size is too small"),
    ("conv_transpose2d output_padding",
     lambda m, F: F.conv_transpose2d(m.ones(1, 1, 4, 4), m.ones(1, 1, 2, 2), stride=2,
                                     output_padding=2),
     RuntimeError, "output padding must be smaller than either stride or dilation"),
    ("conv2d same strided",
     lambda m, F: F.conv2d(m.ones(1, 1, 4, 4), m.ones(1, 1, 2, 2), padding="same", stride=2),
     RuntimeError, "padding='same' is not supported for strided convolutions"),
    ("interpolate size 0", lambda m, F: F.interpolate(m.ones(1, 1, 4), size=0),
     RuntimeError, "Input and output sizes should be greater than 0"),
    ("interpolate scale 0.1", lambda m, F: F.interpolate(m.ones(1, 1, 4), scale_factor=0.1),
     RuntimeError, "Input and output sizes should be greater than 0"),
    ("embedding 1-d weight", lambda m, F: F.embedding(m.tensor([0, 1]), m.ones(3)),
     RuntimeError, "'weight' must be 2-D"),
    ("nll_loss weight size",
     lambda m, F: F.nll_loss(m.ones(2, 3), m.tensor([0, 1]), weight=m.ones(2)),
     RuntimeError, "weight tensor should be defined either for all 3 classes or no classes"),
    ("cross_entropy weight size",
     lambda m, F: F.cross_entropy(m.ones(2, 3), m.tensor([0, 1]), weight=m.ones(2)),
     RuntimeError, "weight tensor should be defined either for all 3 classes or no classes"),
    ("arange sign", lambda m, F: m.arange(5, 0, 1),
     RuntimeError, "upper bound and lower bound inconsistent with step sign"),
    ("linspace negative", lambda m, F: m.linspace(0, 1, -1),
     RuntimeError, "number of steps must be non-negative"),
    ("tile negative", lambda m, F: m.ones(2, 3).tile(-1),
     RuntimeError, "Trying to create tensor with negative dimension -3"),
    ("argmax empty", lambda m, F: m.ones(0).argmax(),
     IndexError, "argmax\\(\\): Expected reduction dim to be specified for input.numel\\(\\) == 0"),
    ("in-place bool from int", lambda m, F: m.tensor([True, False]).mul_(2),
     RuntimeError, "result type Long can't be cast to the desired output type Bool"),
    ("in-place float from complex", lambda m, F: m.ones(2).add_(m.ones(2, dtype=m.complex64)),
     RuntimeError, "result type ComplexFloat can't be cast to the desired output type Float"),
    ("normal_ on int64", lambda m, F: m.ones(2, dtype=m.int64).normal_(),
     NotImplementedError, "\"normal_kernel_cpu\" not implemented for 'Long'"),
    ("uniform_ on int64", lambda m, F: m.ones(2, dtype=m.int64).uniform_(),
     NotImplementedError, "\"check_uniform_bounds\" not implemented for 'Long'"),
    ("exponential_ on int64", lambda m, F: m.ones(2, dtype=m.int64).exponential_(),
     RuntimeError, "Exponential distribution is a continuous probability distribution"),
]


@pytest.mark.parametrize("name,program,error,words", PROBED, ids=[c[0] for c in PROBED])
def test_probed_argument_checks(name, program, error, words):
    for m, F in ((torch, tF), (tg, tgF)):
        with pytest.raises(error, match=words):
            out = program(m, F)
            _np(out)  # computed: an error raised where computed counts too


def test_accepted_calls_as_pytorch():
    """Calls next to the refused ones that PyTorch accepts: the same values and dtypes."""
    outs = {}
    for m, F in ((torch, tF), (tg, tgF)):
        img = m.arange(16.0).reshape(1, 1, 4, 4)
        w = m.arange(4.0).reshape(1, 1, 2, 2)
        ints = m.tensor([[[-1, -2, 4, 7, 3, 8]]])
        bools = m.tensor([True, False])
        bools.mul_(True)
        outs[m] = [m.ones(2, 3).tile(2),
                   F.conv_transpose2d(img, w, stride=2, output_padding=1),
                   F.conv_transpose2d(img, w, stride=1, dilation=2, output_padding=1),
                   F.avg_pool1d(ints, 2), F.avg_pool2d(ints[None], (1, 3), divisor_override=2),
                   m.ones(2, dtype=m.int32).add_(m.ones(2, dtype=m.int64)), bools,
                   m.ones(2, dtype=m.uint8).add_(m.ones(2, dtype=m.bool))]
    for t, g in zip(outs[torch], outs[tg]):
        assert str(g.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        np.testing.assert_array_equal(_np(g), _np(t))


def test_randint_float_dtype():
    g = tg.randint(2, 5, (200,), dtype=tg.float32)
    assert g.dtype == tg.float32
    values = _np(g)
    np.testing.assert_array_equal(values, np.floor(values))
    assert set(values.tolist()) == {2.0, 3.0, 4.0}
