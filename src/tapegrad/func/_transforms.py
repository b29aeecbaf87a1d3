"""torch.func's derivative transforms over JAX's: `grad`, `grad_and_value`, `vjp`, `jvp`,
`jacrev`, `jacfwd`, `hessian`.

Each hands JAX (`jax.vjp`, `jax.jvp`, `jax.jacrev`, `jax.jacfwd`) a pure function of arrays that
wraps them as tensors and runs the user's tapegrad code, so the transforms compose with each
other, with `vmap` and with `jax.jit`: `vmap(grad(loss))` is one JAX program. Results are new
tensors with no autograd history (differentiate them again with these transforms).
"""
from __future__ import annotations

import functools
from typing import Callable

import jax

from .._tensor import random as _random
from .._tensor.tensor import Tensor
from ._pytree import argnums_tuple, check_tensors, split_args, to_arrays, to_tensors, x64
from ._tape import needs_tape, on_tape, taped
from ._vmap import RANDOM_IN_ERROR_MODE, check_randomness

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "linearize", "jacrev", "jacfwd", "hessian",
           "functionalize"]


def _aux_split(api: str, out, has_aux: bool):
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise RuntimeError(f"{api}: output of function f should be a tuple: (output, aux) "
                           "if has_aux is True")
    return out


def grad_and_value(func: Callable, argnums: int | tuple = 0, has_aux: bool = False) -> Callable:
    """`func`'s gradient with respect to the arguments at `argnums`, and its value: the wrapper
    returns `(grad, value)`, or `(grad, (value, aux))` with `has_aux`. `func` must return a
    scalar (0-dim) tensor."""
    api = "grad_and_value(f)(*args)"

    @x64
    def plain(*args, **kwargs):
        nums = argnums_tuple(argnums, len(args))
        diff, rebuild = split_args(to_arrays(args), nums)

        def pure(*xs):
            out, aux = _aux_split(api, func(*to_tensors(rebuild(xs)), **kwargs), has_aux)
            if not isinstance(out, Tensor):
                raise RuntimeError(f"{api}: Expected f(*args) to return a Tensor, got {type(out)}")
            if out.dim() != 0:
                raise RuntimeError(
                    f"{api}: Expected f(*args) to return a scalar Tensor, got tensor with "
                    f"{out.dim()} dims. Maybe you wanted to use the vjp or jacrev APIs instead?")
            return out.jax(), to_arrays(aux)

        value, vjp_fn, aux = jax.vjp(pure, *diff, has_aux=True)
        grads = to_tensors(vjp_fn(jax.numpy.ones_like(value)))
        grads = grads[0] if isinstance(argnums, int) else grads
        value = Tensor._from_array(value)
        return (grads, (value, to_tensors(aux))) if has_aux else (grads, value)
    return functools.wraps(func)(taped("grad_and_value", plain))


def grad(func: Callable, argnums: int | tuple = 0, has_aux: bool = False) -> Callable:
    """`func`'s gradient with respect to the arguments at `argnums` (`(grad, aux)` with
    `has_aux`), as `torch.func.grad`."""
    both = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        grads, value = both(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads
    return wrapper


def vjp(func: Callable, *primals, has_aux: bool = False):
    """`(func(*primals), vjp_fn)` (and `aux` with `has_aux`): `vjp_fn(cotangents)` returns a
    tuple with the vector-Jacobian product for each primal. With primals that require grad,
    the outputs and `vjp_fn`'s results are on the tape (`vjp_fn` then recomputes the forward
    inside its own op)."""
    if not needs_tape(primals):
        out, vjp_fn, aux = _vjp(func, primals, has_aux)
        return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)
    out, aux = on_tape("vjp", lambda *p: _vjp(func, p, has_aux)[::2], primals)

    def vjp_fn(cotangents):
        return on_tape("vjp", lambda p, c: _vjp(func, p, has_aux)[1](c), (primals, cotangents))
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


@x64
def _vjp(func: Callable, primals: tuple, has_aux: bool) -> tuple:
    """`(out, vjp_fn, aux)` (aux None without `has_aux`), off the tape."""
    api = "vjp(f, *primals)"

    def pure(*xs):
        out, aux = _aux_split(api, func(*to_tensors(xs)), has_aux)
        check_tensors(api, out)
        return to_arrays(out), to_arrays(aux)

    out, pullback, aux = jax.vjp(pure, *to_arrays(primals), has_aux=True)
    out_struct = jax.tree.structure(out)

    @x64
    def vjp_fn(cotangents):
        cts = to_arrays(cotangents)
        if jax.tree.structure(cts) != out_struct:
            raise RuntimeError(
                "Expected pytree structure of cotangents to be the same as pytree structure of "
                f"outputs to the function. cotangents: {jax.tree.structure(cts)}, "
                f"primal output: {out_struct}")
        return to_tensors(tuple(pullback(cts)))

    return to_tensors(out), vjp_fn, to_tensors(aux) if has_aux else None


def jvp(func: Callable, primals: tuple, tangents: tuple, *, strict: bool = False,
        has_aux: bool = False):
    """`(func(*primals), J @ tangents)` (and `aux` with `has_aux`), by forward mode; on the
    tape when a primal or tangent requires grad."""
    if not isinstance(primals, tuple):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals to be a tuple. E.g. it "
                           "should be valid to call f(*primals).")
    if needs_tape((primals, tangents)):
        return on_tape("jvp", lambda p, t: _jvp(func, p, t, has_aux), (primals, tangents))
    return _jvp(func, primals, tangents, has_aux)


@x64
def _jvp(func: Callable, primals: tuple, tangents, has_aux: bool) -> tuple:
    api = "jvp(f, primals, tangents)"
    ps, ts = to_arrays(primals), to_arrays(tangents)
    if jax.tree.structure(ps) != jax.tree.structure(ts):
        raise RuntimeError(
            f"{api}: Expected primals and tangents to have the same python structure. For "
            "example, if primals is a tuple of 3 tensors, tangents also must be. Got primals "
            f"with structure {jax.tree.structure(ps)} and tangents with structure "
            f"{jax.tree.structure(ts)}")
    for p, t in zip(jax.tree.leaves(ps), jax.tree.leaves(ts)):
        if p.shape != t.shape:
            raise RuntimeError(f"{api}: Expected the tangent to have the shape of its primal, "
                               f"got {list(t.shape)} for a primal of shape {list(p.shape)}")

    def pure(*xs):
        out, aux = _aux_split(api, func(*to_tensors(xs)), has_aux)
        check_tensors(api, out, "f(*args)")
        return to_arrays(out), to_arrays(aux)

    ts = tuple(jax.numpy.asarray(t, p.dtype) for p, t in zip(ps, ts))
    out, tangent_out, aux = jax.jvp(pure, ps, ts, has_aux=True)
    result = (to_tensors(out), to_tensors(tangent_out))
    return result + (to_tensors(aux),) if has_aux else result


def linearize(func: Callable, *primals) -> tuple:
    """`(func(*primals), jvp_fn)`: `jvp_fn(*tangents)` is the Jacobian-vector product at
    `primals` (`jax.linearize`: the forward is linearized once, each call is linear work). With
    primals that require grad, both are on the tape (`jvp_fn` then runs `jvp` in its own op)."""
    if needs_tape(primals):
        out = on_tape("linearize", lambda *p: _jvp(func, p, p, False)[0], primals)

        def taped_jvp_fn(*tangents):
            _check_tangents(primals, tangents)
            return on_tape("linearize", lambda p, t: _jvp(func, p, t, False)[1],
                           (primals, tangents))
        return out, taped_jvp_fn
    return _linearize(func, primals)


@x64
def _linearize(func: Callable, primals: tuple) -> tuple:
    def pure(*xs):
        out = func(*to_tensors(xs))
        check_tensors("linearize(func, *primals)", out, "func(*primals)")
        return to_arrays(out)

    ps = to_arrays(primals)
    out, linear = jax.linearize(pure, *ps)

    @x64
    def jvp_fn(*tangents):
        _check_tangents(primals, tangents)
        return to_tensors(linear(*[jax.numpy.asarray(t, p.dtype)
                                   for p, t in zip(ps, to_arrays(tangents))]))
    return to_tensors(out), jvp_fn


def _check_tangents(primals: tuple, tangents: tuple) -> None:
    """PyTorch's check of `linearize`'s `jvp_fn` arguments."""
    if len(tangents) != len(primals):
        raise RuntimeError(f"Expected {len(primals)} tangents (one per primal), got "
                           f"{len(tangents)}")
    for k, (p, t) in enumerate(zip(primals, tangents)):
        if tuple(t.shape) != tuple(p.shape):
            raise RuntimeError(f"tangent:{k} with shape {t.shape} in flattened pytree doesn't "
                               f"match the shape {p.shape} of the corresponding primal.")


def functionalize(func: Callable, *, remove: str = "mutations") -> Callable:
    """`func` with its in-place and view operations replaced by out-of-place ones, as
    `torch.func.functionalize`: tapegrad already records every in-place update as a new
    immutable value (its programs are functional), so the function is `func` itself, with
    PyTorch's check of `remove` (the same function: `functionalize(f)(x)` is `f(x)`)."""
    if remove not in ("mutations", "mutations_and_views"):
        raise RuntimeError(
            f"functionalize(f, remove='mutations'): received invalid argument for remove={remove}."
            " Valid options are:\n     remove='mutations': all inplace and out= operators will be "
            "removed from the program, and replaced with their out-of-place equivalents.\n     "
            "remove='mutations_and_views': In addition to the above, all aliasing operators "
            "{view} will be replaced with their non-aliasing counterparts, {view}_copy.\n")
    return func


def _jacobian(jax_transform, api: str, func: Callable, argnums, has_aux: bool) -> Callable:
    @x64
    def plain(*args):
        nums = argnums_tuple(argnums, len(args))
        diff, rebuild = split_args(to_arrays(args), nums)

        def pure(*xs):
            out, aux = _aux_split(api, func(*to_tensors(rebuild(xs))), has_aux)
            check_tensors(api, out)
            return to_arrays(out), to_arrays(aux)

        jac, aux = jax_transform(pure, argnums=tuple(range(len(nums))), has_aux=True)(*diff)
        if isinstance(argnums, int):  # one Jacobian per output, not a tuple of one
            jac = jax.tree.map(lambda j: j[0], jac, is_leaf=lambda j: isinstance(j, tuple))
        jac = to_tensors(jac)
        return (jac, to_tensors(aux)) if has_aux else jac
    return functools.wraps(func)(taped(api.split("(")[0], plain))


def jacrev(func: Callable, argnums: int | tuple = 0, *, has_aux: bool = False,
           chunk_size: int | None = None) -> Callable:
    """The Jacobian of `func` with respect to the arguments at `argnums`, by reverse mode (one
    vmapped vjp): per output, `out.shape + arg.shape`. `chunk_size` is checked; the rows are
    computed in one vmap whatever its value (the same numbers)."""
    if chunk_size is not None and chunk_size <= 0:
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")
    return _jacobian(jax.jacrev, "jacrev(f, ...)(*args)", func, argnums, has_aux)


def jacfwd(func: Callable, argnums: int | tuple = 0, has_aux: bool = False, *,
           randomness: str = "error") -> Callable:
    """The Jacobian of `func` with respect to the arguments at `argnums`, by forward mode (one
    vmapped jvp). `randomness="error"` forbids random draws in `func`; "same" draws once for
    every column. "different" (a draw per column) is refused: JAX's jacfwd has one draw."""
    check_randomness(randomness)
    if randomness == "different":
        raise ValueError("jacfwd(randomness='different') is not supported by tapegrad: the "
                         "columns are one vmapped jvp that shares its random draws; use "
                         "randomness='same', or jacrev")
    inner = _jacobian(jax.jacfwd, "jacfwd(f, ...)(*args)", func, argnums, has_aux)
    if randomness == "same":
        return inner

    @functools.wraps(func)
    def wrapper(*args):
        frozen = _random.frozen_draws
        _random.frozen_draws = RANDOM_IN_ERROR_MODE
        try:
            return inner(*args)
        finally:
            _random.frozen_draws = frozen
    return wrapper


def hessian(func: Callable, argnums: int | tuple = 0) -> Callable:
    """The Hessian of a scalar `func`: `jacfwd(jacrev(func, argnums), argnums)`, as PyTorch
    computes it."""
    return jacfwd(jacrev(func, argnums), argnums)

