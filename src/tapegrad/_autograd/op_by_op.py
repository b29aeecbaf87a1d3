"""The op-by-op tier of a backward segment: tapegrad's own reverse sweep over per-row executables.

A segment met for the first time whose rows were met before in other graphs (see
`_core.compile._Cache._plan`) runs without a program of its own: the forward node by node on
each row's executable (`_Cache.row`), then the vjp node by node, consumers first, on each row's
vjp executable (`_Cache.row_vjp`), summing the cotangents that reach a node from several
consumers. Both kinds are cached by row and input shapes, so a graph whose structure changes
every step (a random depth, a tree) compiles a handful of small programs once instead of one
program per structure. The results are those of `engine._segment_program` (the same functions
under `jax.vjp`), so the tiers agree to rounding.
"""
from __future__ import annotations

import jax
import numpy as np

from .._core.compile import (COMPUTED, STOP, cache, evaluate_op_by_op, frontier_values,
                             lookup)
from .._core.graph import GetItem
from .._core.jax_compat import put


def segment(walk_p, walk_f, frontier: list, stop_refs: tuple, kinds: tuple, live_p: tuple,
            live_f: tuple, ct, old_grads: tuple) -> tuple:
    """`engine._segment_program`'s outputs, op by op: (kept pending values, kept forward values,
    the "ct" stops' cotangents, the folded gradients); `ct` is the top's cotangent (a float
    fills its shape)."""
    values = frontier_values(frontier)
    computed_p = evaluate_op_by_op(walk_p, values)
    stops = lookup(stop_refs, values, (), computed_p)
    computed_f = evaluate_op_by_op(walk_f, values, stops)
    sources = (values, stops, computed_f)
    top_ref = walk_f.top_refs[0]
    top = lookup((top_ref,), values, stops, computed_f)[0]

    # the refs a cotangent reaches: differentiated stops and the nodes computed from them
    wanted = [k != "const" for k in kinds]
    reaches: list = []

    def reached(r: int) -> bool:
        kind = r % 3
        return wanted[r // 3] if kind == STOP else kind == COMPUTED and reaches[r // 3]

    for refs in walk_f.in_refs:
        reaches.append(any(reached(r) for r in refs))

    cts: dict = {top_ref: _fill(ct, top)}
    for i in range(len(walk_f.nodes) - 1, -1, -1):
        c = cts.pop(i * 3 + COMPUTED, None)
        if c is None or not reaches[i]:
            continue
        n, refs = walk_f.nodes[i], walk_f.in_refs[i]
        if type(n) is GetItem:  # an output of a multi-output row: its cotangents by position
            parts = cts.setdefault(refs[0], {})
            parts[n.static] = c if n.static not in parts else parts[n.static] + c
            continue
        wrt = tuple(j for j, r in enumerate(refs) if reached(r))
        if isinstance(c, dict):
            given = tuple(sorted(c))
            c = tuple(c[k] for k in given)
        else:
            given = None
        args = [sources[r % 3][r // 3] for r in refs]
        for j, g in zip(wrt, cache.row_vjp(n, wrt, given)(args, c)):
            r = refs[j]
            cts[r] = g if r not in cts else cts[r] + g

    outs, grads, folds = [], [], iter(old_grads)
    for k, kind in enumerate(kinds):
        if kind == "const":
            continue
        c = cts.get(k * 3 + STOP)
        if c is None:  # no path from the top: a zero gradient, as jax.vjp's
            c = put(np.zeros(stops[k].shape, stops[k].dtype))
        if kind == "fold":
            g = next(folds)
            grads.append(c if g is None else g + c)
        else:
            outs.append(c)
    return (tuple(computed_p[i] for i in live_p), tuple(computed_f[i] for i in live_f),
            tuple(outs), tuple(grads))


def _fill(ct, top):
    """The top's cotangent as an array of its shape and dtype (a float fills it)."""
    if isinstance(ct, float):
        return put(np.full(top.shape, ct, top.dtype))
    if ct.shape == top.shape and ct.dtype == top.dtype:
        return ct
    return jax.numpy.broadcast_to(jax.numpy.asarray(ct, top.dtype), top.shape)
