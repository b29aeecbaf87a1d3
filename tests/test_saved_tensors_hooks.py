"""autograd.graph: saved-tensor hooks on a custom Function's saved tensors against PyTorch's
(calls, values, gradients, errors), save_on_cpu, and the refusal for built-in ops (which save
nothing: backward recomputes them)."""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")


def cube(lib):
    class Cube(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x ** 2 * g
    return Cube


def run(lib, pack_scale=1.0, unpack_scale=1.0, leave_before_backward=False):
    """Cube of a leaf under hooks that scale; returns (the grad, pack calls, unpack calls)."""
    calls = {"pack": 0, "unpack": 0}

    def pack(t):
        calls["pack"] += 1
        return t * pack_scale

    def unpack(p):
        calls["unpack"] += 1
        return p * unpack_scale

    x = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    with lib.autograd.graph.saved_tensors_hooks(pack, unpack):
        y = cube(lib).apply(x)
        if not leave_before_backward:
            y.sum().backward()
    if leave_before_backward:  # the hooks in force at save time are the ones used
        y.sum().backward()
    return x.grad.numpy().copy(), calls["pack"], calls["unpack"]


@pytest.mark.parametrize("scales", [(1.0, 1.0), (2.0, 1.0), (1.0, 0.5), (3.0, 2.0)])
@pytest.mark.parametrize("leave", [False, True])
def test_function_saved_tensors_go_through_the_hooks_as_pytorch(scales, leave):
    ours, theirs = run(tg, *scales, leave), run(torch, *scales, leave)
    np.testing.assert_allclose(ours[0], theirs[0])
    assert ours[1:] == theirs[1:] == (1, 1)
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(ours[0], 3 * (x * scales[0] * scales[1]) ** 2)  # by hand


def test_unpack_returning_a_non_tensor_raises_as_pytorch():
    for lib in (torch, tg):
        x = lib.ones(2, requires_grad=True)
        with lib.autograd.graph.saved_tensors_hooks(lambda t: 1, lambda p: "no"):
            y = cube(lib).apply(x)
        with pytest.raises(TypeError, match="unpack_hook expected to be a Tensor but got result "
                                            "of type str"):
            y.sum().backward()


def test_an_inplace_change_after_packing_reaches_backward_as_pytorch():
    grads = []
    for lib in (torch, tg):  # with hooks PyTorch checks no version: backward sees the change
        x = lib.ones(3, requires_grad=True)
        a = x * 1
        with lib.autograd.graph.saved_tensors_hooks(lambda t: t, lambda p: p):
            y = cube(lib).apply(a)
        a.add_(1)
        y.sum().backward()
        grads.append(x.grad.tolist())
    assert grads[0] == grads[1] == [12.0, 12.0, 12.0]
    x = tg.ones(3, requires_grad=True)
    a = x * 1
    y = cube(tg).apply(a)  # without hooks the change is caught
    a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_builtin_ops_under_user_hooks_raise_and_say_why():
    x = tg.ones(3, requires_grad=True)
    with tg.autograd.graph.saved_tensors_hooks(lambda t: t, lambda p: p):
        with pytest.raises(RuntimeError, match="saves no tensors for built-in ops .*mul.*"
                                               "recomputes the forward"):
            x * x
        with tg.no_grad():
            assert (x * x).tolist() == [1.0, 1.0, 1.0]  # nothing to save: allowed
        assert (tg.ones(2) * 2).tolist() == [2.0, 2.0]


def test_save_on_cpu_gives_the_same_gradients():
    rng = np.random.default_rng(0)
    xs, w1, w2 = (rng.normal(size=s) for s in ((4, 3), (3, 5), (5, 1)))
    grads = {}
    for lib, hooks in ((torch, True), (tg, True), (tg, False)):
        p1, p2 = (lib.tensor(w, requires_grad=True) for w in (w1, w2))
        cm = lib.autograd.graph.save_on_cpu() if hooks else None
        if cm is not None:
            cm.__enter__()
        loss = (cube(lib).apply(lib.tensor(xs) @ p1).tanh() @ p2).sum()
        if cm is not None:
            cm.__exit__(None, None, None)
        loss.backward()
        grads[lib.__name__, hooks] = [p1.grad.numpy().copy(), p2.grad.numpy().copy()]
    for a, b, c in zip(grads["tapegrad", True], grads["torch", True], grads["tapegrad", False]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
        np.testing.assert_array_equal(a, c)


def test_disable_saved_tensors_hooks_as_pytorch():
    for lib in (torch, tg):
        with lib.autograd.graph.disable_saved_tensors_hooks("hooks are off here"):
            with pytest.raises(RuntimeError, match="hooks are off here"):
                with lib.autograd.graph.saved_tensors_hooks(lambda t: t, lambda p: p):
                    pass
        with lib.autograd.graph.saved_tensors_hooks(lambda t: t, lambda p: p):
            pass  # allowed again outside
