"""Autograd semantics: requires_grad, grad_fn, detach, grad modes, backward/grad, accumulation,
hooks, higher order, custom Functions, in-place ops, and PyTorch's errors."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
from helpers import assert_close, jax_value_and_grads


# -- requires_grad and grad_fn -------------------------------------------------------------------
def test_requires_grad_propagates_only_in_grad_mode():
    w = tg.ones(2, requires_grad=True)
    x = tg.ones(2)
    assert (w * x).requires_grad and not (x * 2).requires_grad
    with tg.no_grad():
        assert not (w * x).requires_grad
    assert w.is_leaf and not (w * x).is_leaf and x.is_leaf


def test_requires_grad_setter_and_errors():
    x = tg.ones(2)
    x.requires_grad = True
    assert x.requires_grad and x.requires_grad_(False) is x and not x.requires_grad
    with pytest.raises(RuntimeError, match="only Tensors of floating point and complex dtype"):
        tg.tensor([1, 2]).requires_grad_()
    y = tg.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf"):
        y.requires_grad = False
    assert not (tg.ones(2, requires_grad=True) > 0).requires_grad  # bool results never do


def test_grad_fn_names_and_next_functions():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = tg.tensor([3.0, 4.0], requires_grad=True)
    z = (x * y + x).sum()
    assert z.grad_fn.name() == "SumBackward0" and type(z.grad_fn).__name__ == "SumBackward0"
    add = z.grad_fn.next_functions[0][0]
    assert add.name() == "AddBackward0"
    mul, acc_x = add.next_functions[0][0], add.next_functions[1][0]
    assert mul.name() == "MulBackward0" and acc_x.name() == "AccumulateGrad"
    assert acc_x.variable is x
    assert mul.next_functions[1][0].variable is y
    assert (x * 2).grad_fn.next_functions[1] == (None, 0)
    assert "grad_fn=<MulBackward0>" in repr(x * 2)
    for expr, name in [(lambda: x - y, "SubBackward0"), (lambda: x / y, "DivBackward0"),
                       (lambda: x.exp(), "ExpBackward0"), (lambda: x @ y, "DotBackward0"),
                       (lambda: x.mean(), "MeanBackward0"), (lambda: x.view(2, 1), "ViewBackward0"),
                       (lambda: x[0], "SelectBackward0"), (lambda: -x, "NegBackward0")]:
        assert expr().grad_fn.name() == name


# PyTorch's grad_fn names where one tapegrad op stands for several of PyTorch's.
_NAMED = [("x[0]", "SelectBackward0"), ("x[1:3]", "SliceBackward0"), ("x[:, 1]", "SelectBackward0"),
          ("x[0, 1:3]", "SliceBackward0"), ("x[1:3, 0]", "SelectBackward0"),
          ("x[:]", "SliceBackward0"), ("x[...]", "AliasBackward0"), ("x[None]", "UnsqueezeBackward0"),
          ("x[..., 0]", "SelectBackward0"), ("x[idx]", "IndexBackward0"),
          ("x[:, :]", "AliasBackward0"), ("x[0:3, :]", "AliasBackward0"),
          ("x[1, 0:4]", "SelectBackward0"), ("x[::1]", "SliceBackward0"),
          ("x[0, ..., 1:2]", "SliceBackward0"), ("x[None, 0]", "SelectBackward0"),
          ("x[True]", "IndexBackward0"), ("x[[0, 1]]", "IndexBackward0"),
          ("x[0, idx]", "IndexBackward0"), ("x[x > 0]", "IndexBackward0"),
          ("x.narrow(0, 0, 2)", "SliceBackward0"), ("x.select(0, 1)", "SelectBackward0"),
          ("x.sum()", "SumBackward0"), ("x.sum(0)", "SumBackward1"), ("x.mean()", "MeanBackward0"),
          ("x.mean((0, 1), keepdim=True)", "MeanBackward1"), ("x.prod()", "ProdBackward0"),
          ("x.prod(1)", "ProdBackward1"), ("x.max()", "MaxBackward1"), ("x.min()", "MinBackward1"),
          ("x.amax()", "AmaxBackward0"), ("x.max(0)[0]", "MaxBackward0"),
          ("F.linear(x[0], w, b)", "AddmmBackward0"), ("F.linear(x[0], w)", "MmBackward0"),
          ("F.linear(x, w, b)", "ViewBackward0"), ("F.linear(x, w)", "UnsafeViewBackward0"),
          ("F.linear(x[0, 0], w)", "SqueezeBackward4"), ("x.split(2)[1]", "SplitBackward0"),
          ("x.split([1, 2])[0]", "SplitWithSizesBackward0"), ("x.chunk(2, 1)[0]", "SplitBackward0"),
          ("x.tensor_split(2)[1]", "SliceBackward0"), ("x.unbind(2)[4]", "UnbindBackward0"),
          ("x.split(2)[1][0]", "SelectBackward0"),
          ("x[0, 0] @ x[0, 0]", "DotBackward0"), ("x[0] @ x[0, 0]", "MvBackward0"),
          ("x[0, 0, :4] @ x[0]", "SqueezeBackward4"), ("x[0] @ x[0].t()", "MmBackward0"),
          ("x @ w.t()", "UnsafeViewBackward0"), ("T.bmm(x, x.mT)", "BmmBackward0"),
          ("T.addmm(b, x[0, :2], w.t())", "AddmmBackward0"),
          ("T.addmv(x[0, 0, :4], x[0], x[0, 0])", "AddmvBackward0"),
          ("T.baddbmm(x[:, :, :4], x, x.mT, beta=0.5)", "BaddbmmBackward0"),
          ("1 - x", "RsubBackward1"), ("x - 1", "SubBackward0"), ("x ** 2", "PowBackward0"),
          ("x ** x", "PowBackward1"), ("2 ** x", "PowBackward2"), ("x.clamp(0, 1)", "ClampBackward1"),
          ("x.clamp(x, x)", "ClampBackward0"), ("x[0].t()", "TBackward0"),
          ("x[0, 0].t()", "TBackward0"), ("T.outer(x[0, 0], x[0, 0])", "MulBackward0"),
          ("T.diag(x[0, 0])", "DiagEmbedBackward0")]


@pytest.mark.parametrize("expr,name", _NAMED)
def test_grad_fn_names_follow_pytorch(expr, name):
    x = tg.ones(3, 4, 5, requires_grad=True)
    scope = {"x": x, "idx": tg.tensor([0, 1]), "w": tg.ones(2, 5), "b": tg.ones(2),
             "F": tg.nn.functional, "T": tg}
    assert type(eval(expr, scope).grad_fn).__name__ == name


def test_grad_fn_names_match_installed_pytorch():
    torch = pytest.importorskip("torch")
    for expr, _ in _NAMED:
        names = []
        for T in (torch, tg):
            scope = {"x": T.ones(3, 4, 5, requires_grad=True), "idx": T.tensor([0, 1]),
                     "w": T.ones(2, 5, requires_grad=True), "b": T.ones(2, requires_grad=True),
                     "F": T.nn.functional, "T": T}
            names.append(type(eval(expr, scope).grad_fn).__name__)
        assert names[0] == names[1], expr


def test_pieces_of_split_and_unbind_share_one_node_and_refuse_in_place_updates():
    x = tg.ones(4, 3, requires_grad=True)
    h = x * 2
    pieces = h.split(2)
    assert pieces[0].grad_fn is pieces[1].grad_fn
    assert pieces[1].grad_fn.next_functions == ((h.grad_fn, 0),)
    for make, name in [(lambda h: h.split(2), "Split"), (lambda h: h.split([3, 1]), "SplitWithSizes"),
                       (lambda h: h.unbind(0), "Unbind")]:
        views = make(x * 2)
        with pytest.raises(RuntimeError, match=f"Output 1 of {name} is a view and is being "
                                               "modified inplace.*returns multiple views"):
            views[1].mul_(2)
    with pytest.raises(RuntimeError, match="Output 0 of Select is a view.*multiple views"):
        (x * 2).split(2)[0][1].add_(1)  # a view of such a view, as PyTorch
    with tg.no_grad():  # without a gradient to keep they are ordinary views
        h = x * 2
        h.split(2)[1].mul_(3)
        h.unbind(1)[0].zero_()
    np.testing.assert_array_equal(h.numpy(), [[0, 2, 2], [0, 2, 2], [0, 6, 6], [0, 6, 6]])


# -- detach and .data share storage ---------------------------------------------------------------
def test_detach_shares_storage_both_ways():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None
    d.add_(10)
    np.testing.assert_array_equal(x.detach().numpy(), [11, 12])
    with tg.no_grad():
        x.mul_(2)
    np.testing.assert_array_equal(d.numpy(), [22, 24])


def test_data_get_and_set():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    w.data.fill_(0)  # the classic init idiom
    np.testing.assert_array_equal(w.detach().numpy(), [0, 0])
    assert w.requires_grad and w.is_leaf
    w.data = tg.tensor([5.0, 6.0])
    np.testing.assert_array_equal(w.detach().numpy(), [5, 6])
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [10, 12])


def test_detach_of_intermediate_blocks_gradient():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    (h.detach() * h).sum().backward()  # only the second factor carries gradient
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.array([3.0, 6.0]))


def test_detach_inplace():
    x = tg.tensor([1.0], requires_grad=True)
    y = x * 2
    y.detach_()
    assert y.is_leaf and not y.requires_grad and y.grad_fn is None


# -- grad modes -----------------------------------------------------------------------------------
def test_grad_modes_as_context_managers_and_decorators():
    w = tg.ones(1, requires_grad=True)

    @tg.no_grad()
    def f():
        return w * 2

    @tg.no_grad
    def g():
        return w * 2

    @tg.enable_grad()
    def h():
        return w * 2

    assert not f().requires_grad and not g().requires_grad
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        assert h().requires_grad
        with tg.enable_grad():
            assert (w * 2).requires_grad
    with tg.set_grad_enabled(False):
        assert not (w * 2).requires_grad
    assert tg.is_grad_enabled()
    tg.set_grad_enabled(False)
    assert not tg.is_grad_enabled()
    tg.set_grad_enabled(True)
    with tg.inference_mode():
        assert not (w * 2).requires_grad and tg.is_inference_mode_enabled()
    assert not tg.is_inference_mode_enabled()


def test_no_grad_decorates_generators():
    w = tg.ones(1, requires_grad=True)

    @tg.no_grad()
    def gen():
        yield (w * 2).requires_grad
        yield (w * 3).requires_grad

    assert list(gen()) == [False, False] and tg.is_grad_enabled()


# -- backward, grad, accumulation -----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [tg.float32, tg.float64])
def test_backward_matches_jax_grad(dtype):
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 4)), rng.normal(size=(4,)), rng.normal(size=())

    def program(a, b, c):
        h = jnp.tanh(a @ jnp.diag(b) + c) * jax.nn.sigmoid(a)
        return jnp.sum(jnp.exp(-h ** 2) / (1.0 + jnp.abs(b)) - 0.5 * h, axis=0).mean()

    value, grads = jax_value_and_grads(program, a, b, c)
    ta, tb, tc = (tg.tensor(v, dtype=dtype, requires_grad=True) for v in (a, b, c))
    h = (ta @ (tg.eye(4, dtype=dtype) * tb) + tc).tanh() * ta.sigmoid()
    out = ((-(h ** 2)).exp() / (1.0 + tb.abs()) - 0.5 * h).sum(0).mean()
    out.backward()
    assert_close(out, value, dtype)
    for t, g in zip((ta, tb, tc), grads):
        assert t.grad.dtype is dtype
        assert_close(t.grad, g, dtype)


def test_gradients_accumulate_until_cleared():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(3):
        (w * w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 3 * 2 * np.array([1.0, 2.0]))
    g = w.grad
    (w * w).sum().backward()
    assert w.grad is g  # accumulated in place, as PyTorch does
    w.grad = None
    (3 * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3, 3])
    w.grad.zero_()
    np.testing.assert_array_equal(w.grad.numpy(), [0, 0])


def test_fan_out_sums():
    x = tg.tensor([2.0], requires_grad=True)
    y = x * 3
    z = y * y + y + tg.sin(y)
    z.sum().backward()
    y0 = 6.0
    np.testing.assert_allclose(x.grad.numpy(), [3 * (2 * y0 + 1 + np.cos(y0))], rtol=1e-6)


def test_backward_with_gradient_argument():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    y.backward(tg.tensor([1.0, 0.5, 0.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, 0.0])
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(tg.ones(2))


def test_backward_inputs_restricts_accumulation():
    a = tg.tensor([1.0], requires_grad=True)
    b = tg.tensor([2.0], requires_grad=True)
    (a * b).sum().backward(inputs=[a])
    assert a.grad.tolist() == [2.0] and b.grad is None
    h = a * 3
    (h * b).sum().backward(inputs=[h])
    assert h._grad.tolist() == [2.0] and a.grad.tolist() == [2.0]


def test_autograd_backward_function_with_several_roots():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    tg.autograd.backward([(x * 2).sum(), (x * x).sum()])
    np.testing.assert_allclose(x.grad.numpy(), [2 + 2, 2 + 4])


def test_autograd_grad_returns_tuple_and_leaves_grad_alone():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = tg.tensor([3.0], requires_grad=True)
    out = (x * y).sum()
    gx, gy = tg.autograd.grad(out, [x, y])
    np.testing.assert_allclose(gx.numpy(), [3, 3])
    np.testing.assert_allclose(gy.numpy(), [3])
    assert x.grad is None and y.grad is None and gx.grad_fn is None
    h = x * 2
    (gh,) = tg.autograd.grad((h ** 2).sum(), h)
    np.testing.assert_allclose(gh.numpy(), [4, 8])
    (gw,) = tg.autograd.grad((x * 2).sum(), x, grad_outputs=tg.tensor(0.5))
    np.testing.assert_allclose(gw.numpy(), [1, 1])


def test_autograd_grad_unused_inputs():
    x = tg.ones(1, requires_grad=True)
    z = tg.ones(1, requires_grad=True)
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph. Set "
                                           "allow_unused=True"):
        tg.autograd.grad((x * 2).sum(), [x, z])
    gx, gz = tg.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)
    assert gz is None and gx.tolist() == [2]
    _, gz = tg.autograd.grad((x * 2).sum(), [x, z], materialize_grads=True)
    assert gz.tolist() == [0.0]
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.autograd.grad((x * 2).sum(), tg.ones(1))
    with pytest.raises(NotImplementedError, match="is_grads_batched=True is not supported"):
        tg.autograd.grad((x * 2).sum(), x, is_grads_batched=True)


# -- the dynamic graph and its freeing --------------------------------------------------------------
def test_graph_is_dynamic():
    x = tg.tensor([3.0], requires_grad=True)
    for flip in (False, True):
        x.grad = None
        y = x * x if flip else x * 5
        y.sum().backward()
        assert x.grad.item() == (6.0 if flip else 5.0)


def test_second_backward_through_freed_graph_raises():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time.*"
                                           "Specify retain_graph=True"):
        loss.backward()


SECOND_BACKWARD = {  # name -> program; ops saving their output (exp, tanh, ...) once passed
    "exp": lambda t, x: x.exp(), "tanh": lambda t, x: x.tanh(),
    "sigmoid": lambda t, x: x.sigmoid(), "sqrt": lambda t, x: x.sqrt(),
    "relu": lambda t, x: x.relu(), "softmax": lambda t, x: t.softmax(x, 0),
    "mul": lambda t, x: x * x, "log": lambda t, x: x.log(), "neg": lambda t, x: -x,
    "add": lambda t, x: x + 1, "reused output": lambda t, x: x.exp() * 2,
}


@pytest.mark.parametrize("name", sorted(SECOND_BACKWARD))
def test_second_backward_matches_pytorch(name):
    """Raise where PyTorch raises (a node saved values), accumulate where it accumulates."""
    torch = pytest.importorskip("torch")

    def run(lib, x):
        loss = SECOND_BACKWARD[name](lib, x).sum()
        loss.backward()
        try:
            loss.backward()
        except RuntimeError as e:
            assert "backward through the graph a second time" in str(e)
            return "raised", x.grad.numpy().copy()
        return "accumulated", x.grad.numpy().copy()

    values = [0.5, 2.0]
    got = run(tg, tg.tensor(values, requires_grad=True))
    want = run(torch, torch.tensor(values, requires_grad=True))
    assert got[0] == want[0]
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6, atol=1e-7)


def test_reused_output_of_a_freed_graph_raises():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    y.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        (y * 2).sum().backward()


def test_retain_graph_allows_second_backward():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4, 8])
    assert loss.item() == 5.0  # the value survives freeing


def test_ops_that_save_nothing_can_backward_twice():
    x = tg.tensor([1.0], requires_grad=True)
    y = (x + 1).sum()  # as in PyTorch: add and sum save no tensors
    y.backward()
    y.backward()
    assert x.grad.item() == 2.0


# -- retain_grad and hooks ------------------------------------------------------------------------
def test_non_leaf_grad_warns_and_retain_grad_keeps_it():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    with pytest.warns(UserWarning, match="is not a leaf Tensor is being accessed"):
        assert h.grad is None
    h.retain_grad()
    assert h.retains_grad and not x.retains_grad
    (h * h).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(h.grad.numpy(), [6, 12])
    np.testing.assert_allclose(x.grad.numpy(), [18, 36])


def test_hooks_on_intermediates_and_leaves():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(("x", g.tolist())))
    h = x * 2
    handle = h.register_hook(lambda g: g * 10)
    h.register_hook(lambda g: seen.append(("h", g.tolist())))
    (h * h).sum().backward()
    # h's gradient is 2h = [4, 8], times 10 by the first hook; x's is twice that
    assert seen == [("h", [40.0, 80.0]), ("x", [80.0, 160.0])]
    np.testing.assert_allclose(x.grad.numpy(), [80, 160])
    handle.remove()
    x.grad = None
    h2 = x * 2
    (h2 * h2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [8, 16])  # hooks were on the old h only


def test_leaf_hook_replacing_gradient():
    w = tg.tensor([1.0, -1.0], requires_grad=True)
    h = w.register_hook(lambda g: g.clamp(min=0))
    (w * tg.tensor([3.0, -2.0])).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [3, 0])
    h.remove()
    w.grad = None
    (w * tg.tensor([3.0, -2.0])).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [3, -2])
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        tg.ones(1).register_hook(print)


def test_post_accumulate_grad_hooks_and_final_callbacks_as_pytorch():
    torch = pytest.importorskip("torch")
    from tapegrad._autograd.engine import queue_callback

    def run(lib, queue):
        w = lib.tensor([1.0, -2.0], requires_grad=True)
        b = lib.tensor([0.5], requires_grad=True)
        events = []

        def after(t):  # sees the accumulated sum, and may queue an end-of-backward callback
            events.append(("post", t.grad.tolist()))
            if len(events) == 1:
                queue(lambda: events.append(("final", w.grad.tolist(), b.grad.tolist())))
        handle = w.register_post_accumulate_grad_hook(after)
        for _ in range(2):  # the second backward accumulates onto the first
            ((w * w).sum() * 3 + b.sum()).backward()
        events.append(("autograd.grad", [g.tolist() for g in lib.autograd.grad((w * w).sum(), w)]))
        handle.remove()
        (w * 2).sum().backward()
        return events

    ours = run(tg, queue_callback)
    theirs = run(torch, torch.autograd.Variable._execution_engine.queue_callback)
    assert ours == theirs
    with pytest.raises(RuntimeError, match="non-leaf tensors"):
        (tg.ones(1, requires_grad=True) * 2).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError, match="Final callbacks can only be installed during "
                                           "backward pass"):
        queue_callback(print)


# -- higher order -----------------------------------------------------------------------------------
def _f(x):
    return jnp.sum(jnp.sin(x) * x ** 3)


@pytest.mark.parametrize("dtype", [tg.float32, tg.float64])
def test_higher_order_gradients_match_nested_jax_grad(dtype):
    x0 = np.array([0.3, -1.2, 2.0])
    with jax.enable_x64(True):
        x0j = jnp.asarray(x0)
        g1 = jax.grad(_f)(x0j)
        g2 = jax.grad(lambda x: jnp.sum(jax.grad(_f)(x)))(x0j)
        g3 = jax.grad(lambda x: jnp.sum(jax.grad(lambda y: jnp.sum(jax.grad(_f)(y)))(x)))(x0j)
    x = tg.tensor(x0, dtype=dtype, requires_grad=True)
    y = ((x.sin()) * x ** 3).sum()
    (d1,) = tg.autograd.grad(y, x, create_graph=True)
    assert d1.requires_grad and d1.grad_fn is not None
    (d2,) = tg.autograd.grad(d1.sum(), x, create_graph=True)
    (d3,) = tg.autograd.grad(d2.sum(), x)
    assert_close(d1, g1, dtype)
    assert_close(d2, g2, dtype)
    assert_close(d3, g3, dtype)


def test_hessian_vector_product_and_gradient_penalty():
    rng = np.random.default_rng(1)
    w0, v0 = rng.normal(size=3), rng.normal(size=3)

    def loss(w):
        return jnp.sum(jnp.tanh(w) ** 2 * w)

    with jax.enable_x64(True):
        hvp = jax.jvp(jax.grad(loss), (jnp.asarray(w0),), (jnp.asarray(v0),))[1]
        penalty_grad = jax.grad(lambda w: jnp.sum(jax.grad(loss)(w) ** 2))(jnp.asarray(w0))
    w = tg.tensor(w0, dtype=tg.float64, requires_grad=True)
    (g,) = tg.autograd.grad((w.tanh() ** 2 * w).sum(), w, create_graph=True)
    (hv,) = tg.autograd.grad((g * tg.tensor(v0)).sum(), w)
    assert_close(hv, hvp)
    w2 = tg.tensor(w0, dtype=tg.float64, requires_grad=True)
    (g2,) = tg.autograd.grad((w2.tanh() ** 2 * w2).sum(), w2, create_graph=True)
    (g2 ** 2).sum().backward()
    assert_close(w2.grad, penalty_grad)


def test_create_graph_backward_accumulates_differentiable_grad():
    x = tg.tensor([2.0], dtype=tg.float64, requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.grad_fn is not None
    assert_close(x.grad, [12.0])
    (gg,) = tg.autograd.grad(x.grad.sum(), x)
    assert_close(gg, [12.0])


# -- custom autograd.Function ---------------------------------------------------------------------
class ScaledSquare(tg.autograd.Function):
    needs: list = []

    @staticmethod
    def forward(ctx, x, scale, offset):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x * x * scale + offset

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        ScaledSquare.needs.append(ctx.needs_input_grad)
        return grad * 2 * x * ctx.scale, None, grad


class ClippedIdentity(tg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(-1, 1)


def test_custom_function():
    x = tg.tensor([1.0, -2.0], requires_grad=True)
    b = tg.tensor([0.5, 0.5], requires_grad=True)
    y = ScaledSquare.apply(x, 3.0, b)
    assert y.grad_fn.name() == "ScaledSquareBackward"
    np.testing.assert_allclose(y.detach().numpy(), [3.5, 12.5])
    ScaledSquare.needs.clear()
    (y * tg.tensor([1.0, 2.0])).sum().backward()
    assert ScaledSquare.needs == [(True, False, True)]
    np.testing.assert_allclose(x.grad.numpy(), [6.0, -24.0])
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 2.0])


def test_custom_function_backward_is_user_code_in_the_middle_of_the_graph():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = ClippedIdentity.apply(x * 3) * 5
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])  # 5 clipped to 1, times 3


def test_custom_function_without_grad_and_errors():
    out = ScaledSquare.apply(tg.ones(2), 2.0, 0.0)
    assert out.grad_fn is None

    class Wrong(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, grad):
            return grad

    a = tg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="returned an incorrect number of gradients"):
        Wrong.apply(a, a).sum().backward()


def test_custom_function_under_create_graph():
    x = tg.tensor([1.5], dtype=tg.float64, requires_grad=True)
    y = ScaledSquare.apply(x, 2.0, tg.zeros(1, dtype=tg.float64))  # 2x^2
    (g,) = tg.autograd.grad(y.sum(), x, create_graph=True)
    (gg,) = tg.autograd.grad(g.sum(), x)
    assert_close(g, [6.0])
    assert_close(gg, [4.0])


def test_saved_tensor_modified_in_place_in_custom_function():
    x = tg.tensor([1.0], requires_grad=True)
    h = x * 1
    y = ScaledSquare.apply(h, 1.0, 0.0)
    with tg.no_grad():
        h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# -- in-place operations ----------------------------------------------------------------------------
def test_inplace_on_leaf_that_requires_grad_raises_outside_no_grad():
    w = tg.ones(2, requires_grad=True)
    for op in (lambda: w.add_(1), lambda: w.mul_(2), lambda: w.zero_(), lambda: w.fill_(1),
               lambda: w.__setitem__(0, 5.0), lambda: w.relu_()):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used "
                                               "in an in-place operation"):
            op()


def test_manual_sgd_update_under_no_grad():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(2):
        (w * w).sum().backward()
        with tg.no_grad():
            w -= 0.25 * w.grad
        w.grad.zero_()
    np.testing.assert_allclose(w.detach().numpy(), [0.25, 0.5])
    assert w.is_leaf and w.requires_grad


@pytest.mark.parametrize("name, args, reference", [
    ("add_", (2.0,), lambda v: v + 2), ("sub_", (1.0,), lambda v: v - 1),
    ("mul_", (3.0,), lambda v: v * 3), ("div_", (2.0,), lambda v: v / 2),
    ("clamp_", (0.0, 1.5), lambda v: np.clip(v, 0, 1.5)), ("relu_", (), lambda v: np.maximum(v, 0)),
    ("zero_", (), np.zeros_like), ("fill_", (7.0,), lambda v: np.full_like(v, 7)),
])
def test_inplace_ops_values_and_gradients(name, args, reference):
    v = np.array([-1.0, 0.5, 2.0])
    x = tg.tensor(v, dtype=tg.float64, requires_grad=True)
    h = x * 1.0
    out = getattr(h, name)(*args)
    assert out is h and h._cell.version == 1
    np.testing.assert_allclose(h.detach().numpy(), reference(v))
    (h * h).sum().backward()

    def program(x):
        y = {"add_": lambda: x + 2, "sub_": lambda: x - 1, "mul_": lambda: x * 3,
             "div_": lambda: x / 2, "clamp_": lambda: jnp.where(x < 0, 0.0, jnp.where(x > 1.5, 1.5, x)),
             "relu_": lambda: jnp.where(x > 0, x, 0.0), "zero_": lambda: x * 0.0,
             "fill_": lambda: x * 0.0 + 7}[name]()
        return jnp.sum(y * y)

    _, (g,) = jax_value_and_grads(program, v)
    assert_close(x.grad, g)


def test_augmented_assignment_and_setitem():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 2
    h += 1
    h *= x
    h[1] = 0.0
    h.sum().backward()
    # h = (2x + 1) * x with entry 1 replaced: d/dx = 4x + 1 except at 1
    np.testing.assert_allclose(x.grad.numpy(), [5, 0, 13])
    y = tg.zeros(3)
    y[0:2] = tg.tensor([4.0, 5.0])
    y[-1] += 1
    assert y.tolist() == [4.0, 5.0, 1.0]


def test_setitem_gradient_flows_to_value():
    x = tg.zeros(4, dtype=tg.float64)
    v = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    x[1:3] = v * v
    (x * tg.arange(4, dtype=tg.float64)).sum().backward()
    assert_close(v.grad, [2 * 1 * 1, 2 * 2 * 2])


def test_modified_saved_value_raises():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1
    y = h * h  # mul saves h
    h.add_(1)
    with pytest.raises(RuntimeError, match=r"one of the variables needed for gradient computation "
                                           r"has been modified by an inplace operation: "
                                           r"\[tapegrad.FloatTensor \[2\]\].*is at version 1; "
                                           r"expected version 0"):
        y.sum().backward()


def test_inplace_on_value_not_saved_is_fine():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    y = h + 1  # add saves nothing
    h.mul_(3)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 2])


def test_inplace_through_detached_alias_keeps_autograd_path():
    # As in PyTorch: the consumer sees the new value; gradients still reach x through h's grad_fn
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    h.detach().add_(10)
    z = (h * 3).sum()
    assert z.item() == 3 * (2 + 10) + 3 * (4 + 10)
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), [6, 6])


def test_inplace_dtype_and_shape_errors():
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output "
                                           "type Long"):
        tg.tensor([1, 2]).add_(1.5)
    with pytest.raises(RuntimeError, match=r"output with shape \[2\] doesn't match the broadcast "
                                           r"shape \[3, 2\]"):
        tg.ones(2).add_(tg.ones(3, 2))


# -- errors ---------------------------------------------------------------------------------------
def test_backward_errors():
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (tg.ones(3, requires_grad=True) * 2).backward()
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad and does "
                                           "not have a grad_fn"):
        tg.ones(1).sum().backward()


def test_shape_mismatch_errors_name_both_shapes():
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of "
                                           r"tensor b \(4\) at non-singleton dimension 1"):
        tg.ones(2, 3) + tg.ones(2, 4)
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x3 and "
                                           r"4x5\)"):
        tg.ones(2, 3) @ tg.ones(4, 5)
    with pytest.raises(RuntimeError, match=r"shape '\[5\]' is invalid for input of size 6"):
        tg.ones(2, 3).view(5)


def test_grad_setter_checks():
    w = tg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="assigned grad has data of a different size"):
        w.grad = tg.ones(3)
    with pytest.raises(RuntimeError, match="assigned grad has data of a different type"):
        w.grad = tg.ones(2, dtype=tg.float64)
    w.grad = tg.ones(2)
    (w * 2).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3, 3])
