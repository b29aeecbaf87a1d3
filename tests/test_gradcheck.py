"""autograd.gradcheck / gradgradcheck: pass on correct ops, fail on deliberately wrong custom
Functions with PyTorch's messages (the same checks run in PyTorch as the reference)."""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.autograd.gradcheck import GradcheckError

F = tg.nn.functional


def _leaf(values, T=tg):
    return T.tensor(np.asarray(values, dtype=np.float64), dtype=T.float64, requires_grad=True)


X = [[0.3, -1.2, 0.5], [2.0, 0.1, -0.7]]
W = [[1.5, 0.2], [-0.4, 0.6], [-1.1, 0.9]]

CORRECT = {
    "pointwise": (lambda x: (x.sin() * x.exp() + x.tanh() ** 2) / (1 + x * x), (X,)),
    "matmul_softmax": (lambda x, w: F.softmax(x @ w, dim=-1), (X, W)),
    "reductions": (lambda x: (x.logsumexp(1), x.norm(), x.max(0)[0], x.mean()), (X,)),
    "linear_loss": (lambda x, w: F.cross_entropy(x @ w, tg.tensor([0, 1])), (X, W)),
    "conv": (lambda x, w: F.conv1d(x.t()[None], w.t()[..., None]).relu(), (X, W)),
    "views": (lambda x: x.t()[1:].reshape(-1).flip(0).cumsum(0), (X,)),
}


@pytest.mark.parametrize("name", CORRECT)
def test_gradcheck_passes_on_correct_ops(name):
    fn, inputs = CORRECT[name]
    assert tg.autograd.gradcheck(fn, tuple(_leaf(v) for v in inputs))


@pytest.mark.parametrize("name", ["pointwise", "matmul_softmax", "reductions"])
def test_gradgradcheck_passes_on_correct_ops(name):
    fn, inputs = CORRECT[name]
    assert tg.autograd.gradgradcheck(fn, tuple(_leaf(v) for v in inputs))


def _wrong_function(T):
    class WrongSinMul(T.autograd.Function):
        """x * sin(y), whose backward forgets that d sin = cos."""

        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x * y.sin()

        @staticmethod
        def backward(ctx, g):
            x, y = ctx.saved_tensors
            return g * y.sin(), g * x * y.sin()
    return WrongSinMul


def _detached_cube(T):
    class DetachedCube(T.autograd.Function):
        """x**3 with a right first derivative that is wrong to differentiate (x detached)."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x.detach() ** 2
    return DetachedCube


def test_gradcheck_fails_on_a_wrong_custom_function():
    x, y = _leaf([1.0, 2.0]), _leaf([0.5, 0.3])
    with pytest.raises(GradcheckError, match=r"^Jacobian mismatch for output 0 with respect to "
                                             r"input 1,\nnumerical:tensor\(\[\[0\.8776"):
        tg.autograd.gradcheck(_wrong_function(tg).apply, (x, y))
    assert tg.autograd.gradcheck(_wrong_function(tg).apply, (x, y), raise_exception=False) is False
    assert issubclass(GradcheckError, RuntimeError)


def test_gradgradcheck_fails_where_only_the_second_derivative_is_wrong():
    x = _leaf([0.5, -1.5])
    cube = _detached_cube(tg)
    assert tg.autograd.gradcheck(cube.apply, (x,))
    with pytest.raises(GradcheckError, match="Jacobian mismatch for output 0 with respect to input 0"):
        tg.autograd.gradgradcheck(cube.apply, (x,))


def _message(T, check, fn, inputs, **kw) -> str:
    with pytest.raises(Exception) as info:
        check(fn, inputs, **kw)
    return type(info.value).__name__ + ": " + str(info.value).replace("torch.float64", "tapegrad.float64")


def test_messages_match_pytorch():
    torch = pytest.importorskip("torch")
    cases = [
        ("gradcheck", _wrong_function, lambda T: (_leaf([1.0, 2.0], T), _leaf([0.5, 0.3], T))),
        ("gradgradcheck", _detached_cube, lambda T: (_leaf([0.5, -1.5], T),)),
    ]
    for check, make, inputs in cases:
        ours = _message(tg, getattr(tg.autograd, check), make(tg).apply, inputs(tg))
        theirs = _message(torch, getattr(torch.autograd, check), make(torch).apply, inputs(torch))
        if check == "gradcheck":  # the Jacobians printed, digit for digit
            assert ours == theirs
        else:  # gradgradcheck's random grad_outputs differ between the libraries
            assert ours.split(",")[0] == theirs.split(",")[0]
    for T in (tg, torch):
        with pytest.raises(ValueError, match="gradcheck expects at least one input tensor to "
                                             "require gradient, but none of them have"):
            T.autograd.gradcheck(lambda a: a * 2, (T.ones(2, dtype=T.float64),))


def test_float32_inputs_warn_as_in_pytorch():
    with pytest.warns(UserWarning, match=r"Input #0 requires gradient and is not a double "
                                         r"precision floating point"):
        tg.autograd.gradcheck(lambda a: a * 2, (tg.ones(2, requires_grad=True),),
                              raise_exception=False)


def test_output_that_does_not_depend_on_the_graph_must_have_zero_numerical_gradient():
    x = _leaf([1.0, 2.0])
    with pytest.raises(GradcheckError, match="Numerical gradient for function expected to be zero"):
        tg.autograd.gradcheck(lambda a: a.detach() * 2, (x,))
    assert tg.autograd.gradcheck(lambda a: (a.detach() * 0 + 1, a * 2), (x,))


class _Noisy(tg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g * 2 + float(np.random.default_rng().uniform(1e-9, 2e-9))


def test_nondeterministic_backward():
    x = _leaf([1.0, 2.0])
    with pytest.raises(GradcheckError, match="Backward is not reentrant"):
        tg.autograd.gradcheck(_Noisy.apply, (x,))
    assert tg.autograd.gradcheck(_Noisy.apply, (x,), nondet_tol=1e-6)


def test_unsupported_checks_say_so():
    x = _leaf([1.0])
    with pytest.raises(NotImplementedError, match="fast_mode is not supported"):
        tg.autograd.gradcheck(lambda a: a, (x,), fast_mode=True)
