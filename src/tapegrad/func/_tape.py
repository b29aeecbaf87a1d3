"""A transform's call as one node of the tape, so that `backward()` reaches its arguments.

In PyTorch, `torch.func` composes with ordinary autograd: `vmap(model_fn)(params, x).sum()
.backward()` gives `params` their gradients. Here a transform called with an argument that
requires grad (grad mode on) is recorded as ONE op whose function is the transform over arrays;
the engine's `jax.vjp` of that function differentiates through the transform (JAX's transforms
compose), so the gradients equal `jax.grad` of the same program.

Tensors read by the function from outside its arguments (a module's parameters in a closure)
are constants to the transform: they get no gradient through it. Pass them as arguments
(`functional_call`), as PyTorch's documentation recommends for `torch.func`.
"""
from __future__ import annotations

from typing import Any, Callable

import jax

from .._core import grad_mode as _grad_mode
from .._core.compile import store
from .._core.graph import Op
from .._tensor.apply import apply
from .._tensor.tensor import Tensor
from ._pytree import is_leaf, to_arrays, x64


def needs_tape(args: Any) -> bool:
    """True when the transform's result must be on the tape: grad mode is on and a tensor among
    `args` requires grad."""
    return _grad_mode.is_grad_enabled() and any(
        isinstance(x, Tensor) and x.requires_grad for x in jax.tree.leaves(args, is_leaf=is_leaf))


@x64
def on_tape(name: str, run: Callable[..., Any], args: tuple) -> Any:
    """`run(*args)` (a function of tensors returning a pytree of tensors), recorded as one op
    over the tensors among `args`: its outputs require grad and its vjp differentiates `run`.

    `run` first runs at once, as it would off the tape: its values become the outputs' (the
    forward is not computed twice), its errors are raised here, and pending values it reads
    from outside its arguments (a weight updated in place) are computed outside any trace, so
    that the op's traces read them as constants. The op is new per call (the function may read
    other Python state next time), so its backward compiles per call."""
    leaves, spec = jax.tree.flatten(args, is_leaf=is_leaf)
    where = [i for i, x in enumerate(leaves) if isinstance(x, Tensor)]
    with _grad_mode.no_grad():
        values, out_spec = jax.tree.flatten(to_arrays(run(*args)))
    if not values:
        return jax.tree.unflatten(out_spec, [])

    def fn(*arrays):
        flat = list(leaves)
        for i, a in zip(where, arrays):
            flat[i] = Tensor._from_array(a)
        with _grad_mode.no_grad():
            outs = jax.tree.leaves(to_arrays(run(*jax.tree.unflatten(spec, flat))))
        return tuple(outs) if len(values) > 1 else outs[0]

    op = Op(name, fn, n_out=len(values), register=False)
    outs = apply(op, *[leaves[i] for i in where])
    outs = outs if isinstance(outs, tuple) else (outs,)
    store([t._node for t in outs], values)
    return jax.tree.unflatten(out_spec, list(outs))


def taped(name: str, plain: Callable[..., Any]) -> Callable[..., Any]:
    """`plain(*args, **kwargs)`, on the tape when an argument requires grad."""
    def call(*args, **kwargs):
        if needs_tape(args):
            return on_tape(name, lambda *a: plain(*a, **kwargs), args)
        return plain(*args, **kwargs)
    return call
