"""From recorded nodes to compiled XLA programs.

`trace` walks the nodes that compute some targets and produces a *structure*: the ops, their static
arguments and the wiring between them, with every array left as an argument (the frontier).
Programs are cached by structure, so a loop whose graph repeats reuses one compiled function, and
`jax.jit` adds its own cache over shapes and dtypes beneath. Nothing in a structure refers to a
node or an array, so the cache holds no user data.
"""
from __future__ import annotations

import collections
import functools
import operator
from typing import NamedTuple

import jax

from ._graph import AccumulateGrad, GetItem, Node

# A reference to a value in a program: index * 3 + kind (0 frontier, 1 stop, 2 computed).
FRONTIER, STOP, COMPUTED = 0, 1, 2


def _ident(x):
    return x


def node_fn(node: Node):
    """The pure function a node applies to its input values, and its part of the structure key."""
    cls = type(node)
    if cls is GetItem:
        return operator.itemgetter(node.static), ("getitem", node.static)
    if cls is AccumulateGrad:
        return _ident, "acc"
    if node.static:
        return functools.partial(node.op.fn, **dict(node.static)), (node.op, node.static)
    return node.op.fn, node.op


class Trace:
    """Walks nodes in dependency order; several walks may share one frontier."""

    def __init__(self) -> None:
        self.frontier: list = []  # nodes with known values, and Python scalars
        self._frontier_ref: dict = {}
        self.key: list = []

    def _frontier(self, x) -> int:
        if isinstance(x, Node):
            ref = self._frontier_ref.get(id(x))
            if ref is None:
                ref = self._frontier_ref[id(x)] = len(self.frontier) * 3 + FRONTIER
                self.frontier.append(x)
                self.key.append("a")
            return ref
        self.frontier.append(x)  # a Python scalar: passed by value, so no retrace when it changes
        self.key.append(type(x))
        return (len(self.frontier) - 1) * 3 + FRONTIER

    def walk(self, tops, stop=None, expand=None):
        """Order the nodes computing `tops`: returns (entries, computed nodes, top refs, stops).

        A node for which `stop(node)` is true is an input of the program (a "stop", numbered in
        the order met), not computed. A node with a known value is a frontier input unless
        `expand(node)` asks to recompute it from its inputs.
        """
        refs: dict = {}
        entries: list = []
        nodes: list = []
        stops: list = []
        stack = list(reversed(tops))
        while stack:
            n = stack[-1]
            if id(n) in refs:
                stack.pop()
                continue
            if stop is not None and stop(n):
                refs[id(n)] = len(stops) * 3 + STOP
                stops.append(n)
                self.key.append("stop")
                stack.pop()
                continue
            if n.value is not None and not (expand is not None and n.inputs and expand(n)):
                refs[id(n)] = self._frontier(n)
                stack.pop()
                continue
            missing = [c for c in n.inputs if isinstance(c, Node) and id(c) not in refs]
            if missing:
                stack.extend(reversed(missing))
                continue
            stack.pop()
            in_refs = tuple(refs[id(c)] if isinstance(c, Node) else self._frontier(c)
                            for c in n.inputs)
            fn, fn_key = node_fn(n)
            refs[id(n)] = len(entries) * 3 + COMPUTED
            entries.append((fn, in_refs))
            nodes.append(n)
            self.key.append((fn_key, in_refs))
        top_refs = tuple(refs[id(t)] for t in tops)
        self.key.append(("tops",) + top_refs)
        return tuple(entries), nodes, top_refs, stops


def evaluate(entries, frontier, stops=()):
    """Run a walk's entries on concrete (or traced) values; returns the computed values."""
    computed: list = []
    sources = (frontier, stops, computed)
    for fn, in_refs in entries:
        computed.append(fn(*[sources[r % 3][r // 3] for r in in_refs]))
    return computed


def lookup(refs, frontier, stops, computed):
    sources = (frontier, stops, computed)
    return tuple(sources[r % 3][r // 3] for r in refs)


def owned(node: Node) -> bool:
    """True when a live tensor's storage still shows this node (so its value is worth keeping)."""
    cell = node.owner() if node.owner is not None else None
    return cell is not None and cell.node is node


# -- the program cache ---------------------------------------------------------------------------

class CacheInfo(NamedTuple):
    hits: int
    misses: int
    traces: int
    currsize: int
    maxsize: int


class _Cache:
    def __init__(self, maxsize: int = 512) -> None:
        self.programs: collections.OrderedDict = collections.OrderedDict()
        self.maxsize = maxsize
        self.hits = self.misses = self.traces = 0

    def get(self, key, build):
        prog = self.programs.get(key)
        if prog is not None:
            self.hits += 1
            self.programs.move_to_end(key)
            return prog
        self.misses += 1
        prog = self.programs[key] = build()
        if len(self.programs) > self.maxsize:
            self.programs.popitem(last=False)
        return prog

    def jit(self, fn, **kwargs):
        """`jax.jit(fn)`, counting each trace (a trace is a compile for XLA)."""
        @functools.wraps(fn)
        def counted(*args):
            self.traces += 1
            return fn(*args)
        return jax.jit(counted, **kwargs)


cache = _Cache()


def cache_info() -> CacheInfo:
    """Statistics of tapegrad's compiled-program cache: structure hits/misses and XLA traces."""
    return CacheInfo(cache.hits, cache.misses, cache.traces, len(cache.programs), cache.maxsize)


def clear_cache() -> None:
    """Drop every compiled program and reset the statistics."""
    cache.programs.clear()
    cache.hits = cache.misses = cache.traces = 0


def set_cache_limit(maxsize: int) -> None:
    """Bound the number of cached programs (least recently used ones are dropped first)."""
    if maxsize < 1:
        raise ValueError(f"cache limit must be at least 1, got {maxsize}")
    cache.maxsize = maxsize
    while len(cache.programs) > maxsize:
        cache.programs.popitem(last=False)


def frontier_values(frontier: list) -> list:
    return [x.value if isinstance(x, Node) else x for x in frontier]


def store(nodes, values) -> None:
    """Keep computed values; a node outside autograd no longer needs its inputs once known."""
    for n, v in zip(nodes, values):
        n.value = v
        n.depth = 0
        if not n.requires_grad:
            n.inputs = ()


def materialize(targets: list) -> None:
    """Compute the pending `targets` (and any pending value a live tensor shows) in one call."""
    tr = Trace()
    entries, nodes, _, _ = tr.walk(targets)
    wanted = {id(t) for t in targets}
    keep = tuple(i for i, n in enumerate(nodes) if id(n) in wanted or owned(n))
    if not keep:
        return

    def build():
        def run(frontier):
            computed = evaluate(entries, frontier)
            return tuple(computed[i] for i in keep)
        return cache.jit(run)

    program = cache.get(("eval", tuple(tr.key), keep), build)
    with jax.enable_x64(True):
        values = program(frontier_values(tr.frontier))
    store([nodes[i] for i in keep], values)
