"""`tapegrad.autograd.functional`: derivatives of a function of tensors (PyTorch's API).

Each is built from `autograd.grad` on the tape, so the results equal `jax.vjp`/`jax.jacrev` of
the same program, and with `create_graph=True` they are differentiable again. `jacobian` and
`hessian` with `vectorize=True` (and no `create_graph`) are `tapegrad.func`'s `jacrev`/`jacfwd`
instead: one vmapped JAX program rather than one backward per output element.
"""
from __future__ import annotations

from typing import Callable

from .._autograd.api import grad
from .._core.grad_mode import enable_grad
from .._functions.creation import ones_like, zeros, zeros_like
from .._functions.shape import stack
from .._tensor.tensor import Tensor
from ..func import jacfwd, jacrev


def _tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _prepare(inputs, create_graph: bool) -> tuple:
    """Fresh leaves for the inputs (kept on the caller's graph under `create_graph`)."""
    out = []
    for x in _tuple(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"The inputs given to the function must be Tensors, got {type(x).__name__}")
        out.append(x.view_as(x) if create_graph and x.requires_grad else
                   x.detach().requires_grad_(True))
    return tuple(out)


def _grads(outputs, inputs, grad_outputs, create_graph: bool) -> tuple:
    wanted = [o for o in outputs if o.requires_grad]
    if not wanted:
        return tuple(zeros_like(x) for x in inputs)
    weights = [g for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    gs = grad(wanted, inputs, weights, retain_graph=True, create_graph=create_graph,
              allow_unused=True)
    return tuple(zeros_like(x) if g is None else g for x, g in zip(inputs, gs))


def _detach(ts, create_graph: bool):
    return ts if create_graph else tuple(t.detach() for t in ts)


def _like_input(result: tuple, inputs):
    return result if isinstance(inputs, (tuple, list)) else result[0]


def vjp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """`(func(inputs), v^T J)`: the vector-Jacobian product at `inputs`."""
    with enable_grad():
        xs = _prepare(inputs, create_graph)
        outs = _tuple(func(*xs))
        vs = _tuple(v) if v is not None else tuple(None for _ in outs)
        if v is None and any(o.numel() != 1 for o in outs):
            raise RuntimeError("The vector v can only be None if the user-provided function "
                               "returns a single Tensor with a single element.")
        gs = _grads(outs, xs, vs, create_graph)
    out = _detach(outs, create_graph)
    return (out if len(out) > 1 else out[0]), _like_input(_detach(gs, create_graph), inputs)


def jvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """`(func(inputs), J v)`: the Jacobian-vector product, by the double-vjp trick."""
    with enable_grad():
        xs = _prepare(inputs, True)
        outs = _tuple(func(*xs))
        if v is None and (len(xs) != 1 or xs[0].numel() != 1):
            raise RuntimeError("The vector v can only be None if the input to the user-provided "
                               "function is a single Tensor with a single element.")
        vs = _tuple(v) if v is not None else (ones_like(xs[0]),)
        us = tuple(zeros_like(o).requires_grad_(True) for o in outs)
        gs = _grads(outs, xs, us, True)  # u^T J, linear in u
        jv = _grads(gs, us, vs, create_graph)
    out = _detach(outs, create_graph)
    return (out if len(out) > 1 else out[0]), (_detach(jv, create_graph) if len(jv) > 1
                                               else _detach(jv, create_graph)[0])


def jacobian(func: Callable, inputs, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode"):
    """The Jacobian of `func` at `inputs`: for each output and input, `out.shape + in.shape`."""
    _check_strategy(strategy, 'Expected strategy to be either "forward-mode" or "reverse-mode". '
                    'Hint: If your function has more outputs than inputs, "forward-mode" tends '
                    'to be more performant. Otherwise, prefer to use "reverse-mode".')
    if strategy == "forward-mode" and create_graph:
        raise NotImplementedError(
            "torch.autograd.functional.jacobian: `create_graph=True` and "
            '`strategy="forward-mode"` are not supported together (yet). Please either set '
            '`create_graph=False` or `strategy="reverse-mode"`.')
    if strategy == "forward-mode" and not vectorize:
        raise NotImplementedError("Computing Jacobian using forward-AD or forward-over-reverse "
                                  "Hessian is only implemented for `vectorize=True`.")
    if vectorize and strict:
        raise RuntimeError(
            "torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not "
            "supported together. Please either set `strict=False` or `vectorize=False`.")
    if vectorize and not create_graph:
        return _vectorized(func, inputs, strategy)
    with enable_grad():
        xs = _prepare(inputs, create_graph)
        raw = func(*xs)
        outs = _tuple(raw)
        rows = []
        for o in outs:
            per_input = [[] for _ in xs]
            for k in range(o.numel()):
                basis = zeros(o.numel(), dtype=o.dtype)
                basis[k] = 1.0
                gs = _grads((o,), xs, (basis.reshape(o.shape),), create_graph)
                for acc, g in zip(per_input, gs):
                    acc.append(g)
            rows.append(tuple(
                (stack(acc) if acc else zeros(0, *x.shape, dtype=o.dtype)).reshape(
                    tuple(o.shape) + tuple(x.shape))
                for acc, x in zip(per_input, xs)))
    rows = [_detach(r, create_graph) for r in rows]
    rows = [r if isinstance(inputs, (tuple, list)) else r[0] for r in rows]
    return tuple(rows) if isinstance(raw, (tuple, list)) else rows[0]


def hessian(func: Callable, inputs, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode"):
    """The Hessian of a scalar `func` at `inputs`."""
    _check_strategy(outer_jacobian_strategy,
                    'Expected strategy to be either "forward-mode" or "reverse-mode".')
    if outer_jacobian_strategy == "forward-mode" and not vectorize:
        raise NotImplementedError("Computing Jacobian using forward-AD or forward-over-reverse "
                                  "Hessian is only implemented for `vectorize=True`.")
    single = not isinstance(inputs, (tuple, list))
    if vectorize and not create_graph:
        def gradient_fn(*xs):
            return _grads_of_scalar(func, xs)
        result = _vectorized(gradient_fn, inputs, outer_jacobian_strategy)
        return result[0] if single else result

    def gradient(*xs):
        out = func(*xs)
        if out.numel() != 1:
            raise RuntimeError("The function given to hessian should return a single Tensor "
                               "with a single element")
        return _grads((out,), xs, (None,), True)

    result = jacobian(gradient, inputs, create_graph=create_graph)
    return result[0] if single else result


def _check_strategy(strategy: str, message: str) -> None:
    if strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError(message)


def _vectorized(func: Callable, inputs, strategy: str):
    """`jacobian` as one `func.jacrev` (or `func.jacfwd`) over every input."""
    xs = tuple(x.detach() for x in _prepare(inputs, False))
    outputs_tuple = []

    def flat(*args):
        out = func(*args)
        outputs_tuple.append(isinstance(out, (tuple, list)))
        return tuple(out) if isinstance(out, (tuple, list)) else out

    transform = jacfwd if strategy == "forward-mode" else jacrev
    jac = transform(flat, argnums=tuple(range(len(xs))))(*xs)
    rows = jac if outputs_tuple[0] else (jac,)
    rows = [r if isinstance(inputs, (tuple, list)) else r[0] for r in rows]
    return tuple(rows) if outputs_tuple[0] else rows[0]


def _grads_of_scalar(func: Callable, xs: tuple) -> tuple:
    """The gradient of a one-element `func` at `xs`, by `func.jacrev` (so it nests in another)."""
    def scalar(*args):
        out = func(*args)
        if isinstance(out, (tuple, list)) or not isinstance(out, Tensor):
            raise RuntimeError("The function given to hessian should return a single Tensor")
        if out.numel() != 1:
            raise RuntimeError("The Tensor returned by the function given to hessian should "
                               "contain a single element")
        return out.reshape(())
    return jacrev(scalar, argnums=tuple(range(len(xs))))(*xs)


def hvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """`(func(inputs), H v)`: the Hessian-vector product of a scalar function."""
    with enable_grad():
        xs = _prepare(inputs, True)
        out = func(*xs)
        gs = _grads((out,), xs, (None,), True)
        vs = _tuple(v)
        dot = sum((g * w).sum() for g, w in zip(gs, vs))
        hv = _grads((dot,), xs, (None,), create_graph)
    return (out if create_graph else out.detach()), _like_input(_detach(hv, create_graph), inputs)


vhp = hvp  # equal for the (symmetric) Hessian of a twice-differentiable function
