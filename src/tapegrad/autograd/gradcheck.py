"""Gradient checks (`torch.autograd.gradcheck`, `gradgradcheck`): the tape's gradients against
finite differences.

`gradcheck(func, inputs)` compares, for every output and every input that requires grad, the
analytical Jacobian (one backward per output element, through the tape) with central finite
differences of `func` (each input element moved by `eps` both ways, in the input's dtype, so use
float64). A mismatch raises `GradcheckError` with PyTorch's message; `raise_exception=False`
returns False instead. `gradgradcheck` checks the gradients of the gradients the same way.
"""
from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np

from .._autograd.api import grad as _grad
from .._core.grad_mode import enable_grad
from .._functions.creation import randn_like
from .._tensor.construct import tensor as _tensor
from .._tensor.tensor import Tensor

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """Raised by `gradcheck` and `gradgradcheck` when a check fails."""


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(func: Callable, inputs: tuple) -> tuple:
    return tuple(o for o in _as_tuple(func(*inputs)) if isinstance(o, Tensor))


def _differentiable(t: Tensor) -> bool:
    return t.dtype.is_floating_point or t.dtype.is_complex


def _numerical(func, inputs: tuple, wanted: list, eps: float, outputs: tuple) -> list:
    """[input][output] Jacobians `(input numel, output numel)` by central differences."""
    out = []
    for i in wanted:
        x = inputs[i]
        base = x.detach().numpy()
        flat = base.reshape(-1)
        columns = [np.zeros((x.numel(), o.numel()), dtype=o.dtype.np) for o in outputs]
        for j in range(x.numel()):
            values = []
            for step in (eps, -eps):
                moved = flat.copy()
                moved[j] += step
                args = list(inputs)
                # still requiring grad: func may differentiate inside (gradgradcheck's does)
                args[i] = _tensor(moved.reshape(base.shape), dtype=x.dtype, requires_grad=True)
                with enable_grad():
                    values.append([o.detach().numpy() for o in _outputs(func, tuple(args))])
            for k, (plus, minus) in enumerate(zip(*values)):
                columns[k][j] = ((plus - minus) / (2 * eps)).reshape(-1)
        out.append(columns)
    return out


def _analytical(outputs: tuple, inputs: tuple, wanted: list, check_grad_dtypes: bool) -> list:
    """[input][output] Jacobians `(input numel, output numel)`, one backward per output element."""
    diff = [inputs[i] for i in wanted]
    out = [[np.zeros((x.numel(), o.numel()), dtype=o.dtype.np) for o in outputs] for x in diff]
    for k, o in enumerate(outputs):
        if not o.requires_grad:
            continue
        for e in range(o.numel()):
            basis = np.zeros(o.numel(), dtype=o.dtype.np)
            basis[e] = 1
            grads = _grad(o, diff, _tensor(basis.reshape(tuple(o.shape)), dtype=o.dtype),
                          retain_graph=True, allow_unused=True)
            for i, (x, g) in enumerate(zip(diff, grads)):
                if g is None:
                    continue
                if check_grad_dtypes and (g.dtype != x.dtype or tuple(g.shape) != tuple(x.shape)):
                    raise GradcheckError("Gradient has dtype mismatch" if g.dtype != x.dtype
                                         else "Gradient has shape mismatch")
                out[i][k][:, e] = g.detach().numpy().reshape(-1)
    return out


def _fail(raise_exception: bool, message: str) -> bool:
    if raise_exception:
        raise GradcheckError(message)
    return False


def _show(a: np.ndarray) -> str:
    return repr(_tensor(a))


def gradcheck(func: Callable, inputs, *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True, nondet_tol: float = 0.0,
              check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
              check_batched_grad: bool = False, check_batched_forward_grad: bool = False,
              check_forward_ad: bool = False, check_backward_ad: bool = True,
              fast_mode: bool = False, masked: bool | None = None) -> bool:
    """Check the gradients of `func` at `inputs` (a tensor or a tuple) against finite differences.

    Every input that requires grad is differentiated; real float64 inputs are expected (others
    warn, as in PyTorch). `nondet_tol` bounds how much two backward runs may differ. Returns True,
    or raises `GradcheckError` ("Jacobian mismatch for output i with respect to input j") unless
    `raise_exception=False`, which returns False. `check_undefined_grad` is accepted and its
    check not run (tapegrad hands a custom backward zeros, never an undefined gradient); the
    batched, forward-mode and fast-mode checks raise NotImplementedError when asked for.
    """
    unsupported = [name for name, flag in (
        ("check_batched_grad", check_batched_grad),
        ("check_batched_forward_grad", check_batched_forward_grad),
        ("check_forward_ad", check_forward_ad), ("fast_mode", fast_mode), ("masked", masked))
        if flag]
    if unsupported:
        raise NotImplementedError(f"gradcheck: {', '.join(unsupported)} is not supported by "
                                  "tapegrad; call it without")
    inputs = _as_tuple(inputs)
    wanted = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not wanted:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but "
                         "none of them have requires_grad=True.")
    for i in wanted:
        x = inputs[i]
        if x.is_complex():
            raise NotImplementedError(f"gradcheck: input #{i} is complex; tapegrad checks real "
                                      "inputs only")
        if x.dtype.name != "float64":
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating "
                          "point or complex. This check will likely fail if all the inputs are "
                          "not of double precision floating point or complex. ", stacklevel=2)
    with enable_grad():
        outputs = _outputs(func, inputs)
    # Computed now, the forward values are shared by every backward below; left lazy, the first
    # backward would compute them inside its own program and may round differently in the last
    # bit, which the reentrancy check (nondet_tol=0) would report.
    for o in outputs:
        o.detach().numpy()
    numerical = _numerical(func, inputs, wanted, eps, outputs)
    if not check_backward_ad:
        return True
    for k, o in enumerate(outputs):
        if not o.requires_grad or not _differentiable(o):
            for i, n in zip(wanted, numerical):
                if not np.allclose(n[k], 0, rtol=rtol, atol=atol):
                    return _fail(raise_exception, "Numerical gradient for function expected to "
                                                  "be zero")
    with enable_grad():
        analytical = _analytical(outputs, inputs, wanted, check_grad_dtypes)
        again = _analytical(outputs, inputs, wanted, False)
    for pos, (i, n_i, a_i, r_i) in enumerate(zip(wanted, numerical, analytical, again)):
        for k, (n, a, r) in enumerate(zip(n_i, a_i, r_i)):
            if not outputs[k].requires_grad:
                continue
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                return _fail(raise_exception, f"Jacobian mismatch for output {k} with respect to "
                                              f"input {i},\nnumerical:{_show(n)}\n"
                                              f"analytical:{_show(a)}\n")
            if np.abs(a - r).max(initial=0.0) > nondet_tol:
                return _fail(raise_exception, (
                    "Backward is not reentrant, i.e., running backward with same input and "
                    "grad_output multiple times gives different values, although analytical "
                    "gradient matches numerical gradient.The tolerance for nondeterminism was "
                    f"{nondet_tol}."))
    return True


def gradgradcheck(func: Callable, inputs, grad_outputs: Sequence[Tensor] | Tensor | None = None,
                  *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  gen_non_contig_grad_outputs: bool = False, raise_exception: bool = True,
                  nondet_tol: float = 0.0, check_undefined_grad: bool = True,
                  check_grad_dtypes: bool = False, check_batched_grad: bool = False,
                  check_fwd_over_rev: bool = False, check_rev_over_rev: bool = True,
                  fast_mode: bool = False, masked: bool = False) -> bool:
    """Check second derivatives: `gradcheck` of the gradients of `func` (a vector-Jacobian
    product with `grad_outputs`, random float64 tensors when not given) with respect to both the
    inputs and `grad_outputs`."""
    if check_fwd_over_rev:
        raise NotImplementedError("gradgradcheck: check_fwd_over_rev is not supported by "
                                  "tapegrad; call it without")
    inputs = _as_tuple(inputs)
    wanted = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if grad_outputs is None:
        with enable_grad():
            outs = _outputs(func, inputs)
        grad_outputs = tuple(randn_like(o.detach()).requires_grad_(True) for o in outs
                             if o.requires_grad)
    grad_outputs = _as_tuple(grad_outputs)
    n = len(inputs)

    def first_derivatives(*args):
        xs, gs = args[:n], args[n:]
        outs = [o for o in _outputs(func, xs) if o.requires_grad]
        grads = _grad(outs, [xs[i] for i in wanted], list(gs), create_graph=True,
                      allow_unused=True)
        return tuple(g for g in grads if g is not None)

    if not check_rev_over_rev:
        return True
    return gradcheck(first_derivatives, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, nondet_tol=nondet_tol,
                     check_grad_dtypes=check_grad_dtypes, check_batched_grad=check_batched_grad,
                     fast_mode=fast_mode)
