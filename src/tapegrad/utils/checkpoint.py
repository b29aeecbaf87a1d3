"""`tapegrad.utils.checkpoint`: activation checkpointing, as `torch.utils.checkpoint`.

The function runs once, recorded as usual; then the nodes it recorded become ONE node of the
graph (`CheckpointFunctionBackward`), whose function replays them and whose vjp saves only the
region's inputs and replays the region again inside the backward program, where its cotangent
arrives. The backward stays one compiled program; the region's intermediate values are not
kept between its forward and its backward within that program (see docs/tools.md and
benchmarks/checkpoint_memory.py for the compiled program's memory).

The replay is the recorded graph, not the Python function: random draws (dropout masks) are
recorded values, so the replay sees the same ones whatever `preserve_rng_state` says.
"""
from __future__ import annotations

import collections
import contextlib
import warnings
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp

from .._core import anomaly as _anomaly, grad_mode as _grad_mode, stepmode as _stepmode
from .._core.compile import Trace, evaluate, lookup
from .._core.graph import AccumulateGrad, Node, Op
from .._core.record import record
from .._tensor.tensor import Tensor
from ..nn.modules.container import Sequential

__all__ = ["checkpoint", "checkpoint_sequential"]

_DETERMINISM_CHECKS = ("default", "none")


def noop_context_fn() -> tuple:
    """The default `context_fn`: no context around the forward or the recomputation."""
    return contextlib.nullcontext(), contextlib.nullcontext()


def checkpoint(function: Callable, *args, use_reentrant: bool | None = None,
               context_fn: Callable[[], tuple] = noop_context_fn,
               determinism_check: str = "default", debug: bool = False, **kwargs) -> Any:
    """Run `function(*args, **kwargs)` without keeping its intermediate values for backward:
    the backward program recomputes them from the region's inputs.

    As in PyTorch 2.13, leaving out `use_reentrant` warns and means True; the reentrant variant
    refuses keyword arguments, `context_fn` and `debug`, and gives no gradients when no tensor
    argument requires one. Parameters read inside `function` (a module's weights) get their
    gradients in both variants. `preserve_rng_state` is accepted: the recomputation replays the
    recorded draws, so it always sees the forward's random numbers.
    """
    if use_reentrant is None:
        warnings.warn(
            "torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly. "
            "Starting in PyTorch 2.9, calling checkpoint without use_reentrant will raise an "
            "exception. use_reentrant=False is recommended, but if you need to preserve the "
            "current default behavior, you can pass use_reentrant=True. Refer to docs for more "
            "details on the differences between the two variants.", stacklevel=2)
        use_reentrant = True
    kwargs.pop("preserve_rng_state", True)
    if kwargs and use_reentrant:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    if use_reentrant:
        if context_fn is not noop_context_fn or debug is not False:
            raise ValueError("Passing `context_fn` or `debug` is only supported when "
                             "use_reentrant=False.")
        tensors = [a for a in args if isinstance(a, Tensor)]
        if not any(t.requires_grad for t in tensors):
            warnings.warn("None of the inputs have requires_grad=True. Gradients will be None",
                          stacklevel=2)
            with _grad_mode.no_grad():
                return function(*args)
    else:
        if debug and context_fn is not noop_context_fn:
            raise ValueError("debug=True is incompatible with non-default context_fn")
        if determinism_check not in _DETERMINISM_CHECKS:
            raise ValueError(f"determinism_check should be one of {list(_DETERMINISM_CHECKS)}, "
                             f"but got {determinism_check}")
        if context_fn is not noop_context_fn:
            raise NotImplementedError(
                "checkpoint(context_fn=...): tapegrad recomputes the region by replaying its "
                "recorded graph inside the backward program, not by calling the function again, "
                "so a recompute context (selective checkpointing's policies) would never run. "
                "Checkpoint a smaller function instead.")
    if not _grad_mode.is_grad_enabled():
        return function(*args, **kwargs)
    start = _stepmode.next_serial()
    out = function(*args, **kwargs)
    return _as_region(out, start, reentrant=use_reentrant)


def checkpoint_sequential(functions, segments: int, input: Tensor,
                          use_reentrant: bool | None = None, **kwargs) -> Tensor:
    """Run `functions` (an `nn.Sequential` or a list of callables) in order on `input`,
    checkpointing all but the last of `segments` chunks (PyTorch's chunking: `len // segments`
    functions each, the last chunk taking the rest)."""
    if use_reentrant is None:
        warnings.warn(
            "torch.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter should be "
            "passed explicitly. In version 2.9 we will raise an exception if use_reentrant is "
            "not passed. use_reentrant=False is recommended, but if you need to preserve the "
            "current default behavior, you can pass use_reentrant=True. Refer to docs for more "
            "details on the differences between the two variants.", stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))

    def run_function(start: int, end: int, functions: list) -> Callable:
        def forward(input):
            for j in range(start, end + 1):
                input = functions[j](input)
            return input
        return forward

    if isinstance(functions, Sequential):
        functions = list(functions.children())
    segment_size = len(functions) // segments
    end = -1
    for start in range(0, segment_size * (segments - 1), segment_size):
        end = start + segment_size - 1
        input = checkpoint(run_function(start, end, functions), input,
                           use_reentrant=use_reentrant, preserve_rng_state=preserve)
    return run_function(end + 1, len(functions) - 1, functions)(input)


# -- the region node ------------------------------------------------------------------------------

class _Rows:
    """The region rows by structure, the least recently used dropped past `maxsize`: a loop
    whose graph repeats records the same row every step, so its programs compile once."""

    def __init__(self, maxsize: int = 256) -> None:
        self.rows: collections.OrderedDict = collections.OrderedDict()
        self.maxsize = maxsize

    def get(self, key, build: Callable[[], "_RegionOp"]) -> "_RegionOp":
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = build()
            if len(self.rows) > self.maxsize:
                self.rows.popitem(last=False)
        self.rows.move_to_end(key)
        return row


class _RegionOp(Op):
    """The row of one checkpointed region's structure: its function replays the region, its
    vjp replays it again from the saved inputs. `reentrant`: the engine refuses
    `autograd.grad` through it, as PyTorch's reentrant variant does."""

    __slots__ = ("reentrant",)


_region_ops = _Rows()


def _flatten(out) -> tuple:
    return jax.tree_util.tree_flatten(out, is_leaf=lambda x: isinstance(x, Tensor))


def _as_region(out, start: int, reentrant: bool):
    """The function's outputs, those needing gradients computed by one region node."""
    def external(n: Node) -> bool:
        return type(n) is AccumulateGrad or n.serial < start

    leaves, treedef = _flatten(out)
    # the outputs computed inside (not an input returned as it is, not one needing no gradient)
    picked = [i for i, x in enumerate(leaves) if isinstance(x, Tensor) and x.requires_grad
              and not external(x._autograd_node())]
    if not picked:
        return out
    tops = [leaves[i]._autograd_node() for i in picked]

    log = _stepmode.state.active
    logged = len(log.scalars) if log is not None else 0
    tr = Trace()
    walk = tr.walk(tops, stop=external, expand=lambda n: n.requires_grad)
    if log is not None:  # the outer programs see these numbers as the region node's inputs
        del log.scalars[logged:]
    if any(n.hooks or getattr(n.op, "custom_backward", None) is not None for n in walk.nodes):
        # a hook or a custom Function's backward is Python the replay cannot run: the region is
        # left as recorded (same gradients, its intermediate values kept)
        return out
    # two opaque ones (program arguments): the replay's inputs are multiplied by one of them,
    # chosen by the cotangent, so XLA can neither merge the replay with the forward nor run it
    # before the cotangent exists
    inputs = tuple(walk.stops) + tuple(tr.frontier) + (1.0, 1.0)
    op = _region_ops.get((tuple(tr.key), len(walk.stops), reentrant),
                         lambda: _region_op(walk, len(walk.stops), len(tops), reentrant))
    requires = any(isinstance(i, Node) and i.requires_grad for i in walk.stops)
    nodes = record(op, inputs, (), requires)
    nodes = nodes if isinstance(nodes, tuple) else (nodes,)
    parent = nodes[0].inputs[0] if len(tops) > 1 else nodes[0]
    parent.saved = tuple(_saved(walk.stops))
    if _anomaly.state.enabled:
        _anomaly.remember_forward(parent)
    for i, node in zip(picked, nodes):
        leaves[i] = Tensor._from_node(node)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _saved(stops: Iterable[Node]):
    """(cell, version, node) of each input a live tensor shows, for the in-place check."""
    for s in stops:
        base = s.inputs[0] if type(s) is AccumulateGrad else s
        cell = base.owner() if base.owner is not None else None
        if cell is not None and cell.node is base:
            yield cell, cell.version, base


def _region_op(walk, n_stops: int, n_out: int, reentrant: bool) -> _RegionOp:
    entries, top_refs = walk.entries(), walk.top_refs

    def replay(*xs):
        stops, frontier = xs[:n_stops], xs[n_stops:]
        computed = evaluate(entries, frontier, stops)
        tops = lookup(top_refs, frontier, stops, computed)
        return tops[0] if n_out == 1 else tuple(tops)

    op = _RegionOp("checkpoint", _rematerialized(replay), n_out=n_out, saves="all",
                   grad_name="CheckpointFunctionBackward", register=False)
    op.reentrant = reentrant
    return op


def _rematerialized(replay: Callable) -> Callable:
    """`replay(*xs)` whose vjp keeps only `xs` and replays it when the cotangent arrives.

    `jax.checkpoint` does the same with an optimisation barrier, which XLA's CPU compiler
    removes before merging the replay with the forward (so nothing is saved there); the
    replay's inputs are instead multiplied by an opaque one selected by the cotangent, exact
    for every value and unknown to XLA.
    """
    @jax.custom_vjp
    def region(one_a, one_b, *xs):
        return replay(*xs)

    def forward(one_a, one_b, *xs):
        return replay(*xs), (one_a, one_b, xs)

    def backward(saved, ct):
        one_a, one_b, xs = saved
        first = jnp.ravel(jax.tree_util.tree_leaves(ct)[0])
        one = jax.lax.select(first[0] != 0, one_a, one_b) if first.size else one_a
        xs = tuple(_times(x, one) for x in xs)
        diff = [i for i, x in enumerate(xs) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]

        def of_diff(*d):
            full = list(xs)
            for i, v in zip(diff, d):
                full[i] = v
            return replay(*full)
        _, vjp_fn = jax.vjp(of_diff, *[xs[i] for i in diff])
        grads = dict(zip(diff, vjp_fn(ct)))
        return (None, None) + tuple(grads.get(i) for i in range(len(xs)))

    region.defvjp(forward, backward)

    def call(*inputs):
        *xs, one_a, one_b = inputs
        return region(one_a, one_b, *xs)
    return call


def _times(x, one):
    """`x` through an opaque one: the same value, a different XLA instruction. Scalars are left
    as they are (a weakly typed Python number must stay weak, and they cost no memory)."""
    if jnp.ndim(x) == 0:
        return x
    dtype = jnp.result_type(x)
    if dtype == jnp.bool_:
        return jnp.logical_and(x, one > 0)
    return x * jnp.asarray(one).astype(dtype)
