"""From recorded nodes to compiled XLA programs.

`trace` walks the nodes that compute some targets and produces a *structure*: the ops, their static
arguments and the wiring between them, with every array left as an argument (the frontier).
Programs are cached by structure and the shapes and dtypes of its inputs, so a loop whose graph
repeats reuses one compiled function, and the cache's bound (`set_cache_limit`) counts compiled
executables. Nothing in a key refers to a node or an array, so the cache holds no user data.

Execution is tiered by a hit counter per key (`_Tiered`): a new structure whose rows were all met
before runs op by op, on executables per row shared by every program (`evaluate_op_by_op`, and
the backward's sweep in `_autograd/op_by_op.py`); other programs are compiled cheaply (XLA's
optimisation level 0: a new expression answers sooner), and compiled again at full optimisation
at a later sighting. The sightings of each switch are estimated from the program's size when it
is first met, or set by `set_compile_threshold`.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import math
import operator
import sys
from typing import NamedTuple

import jax
import numpy as np

from . import checks as _checks, dtype as _dtype, stepmode as _stepmode
from .graph import AccumulateGrad, Cell, Const, GetItem, Node, signature_of
from .jax_compat import weak_scalar

# A reference to a value in a program: index * 3 + kind (0 frontier, 1 stop, 2 computed).
FRONTIER, STOP, COMPUTED = 0, 1, 2


def _ident(x):
    return x


def node_key(node: Node):
    """A node's part of a structure key: its op and static arguments."""
    cls = type(node)
    if cls is GetItem:
        return ("getitem", node.static)
    if cls is AccumulateGrad:
        return "acc"
    return (node.op, node.static) if node.static else node.op


def node_fn(node: Node):
    """The pure function a node applies to its input values."""
    cls = type(node)
    if cls is GetItem:
        return operator.itemgetter(node.static)
    if cls is AccumulateGrad:
        return _ident
    if node.static:
        return functools.partial(node.op.fn, **dict(node.static))
    return node.op.fn


class Walk(NamedTuple):
    """The nodes a program computes, in order, and where its inputs and outputs are."""
    nodes: list
    in_refs: list
    top_refs: tuple
    stops: list

    def entries(self) -> tuple:
        """(function, input refs) per computed node; built only when a program is compiled."""
        return tuple((node_fn(n), refs) for n, refs in zip(self.nodes, self.in_refs))


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
                self.key.append((x.shape, x.dtype))
                if _stepmode.state.active is not None and x.owner is not None:
                    cell = x.owner()
                    if cell is not None and cell.node is x:
                        _stepmode.state.active.read(cell)
            return ref
        self.frontier.append(x)  # a Python scalar: passed by value, so no retrace when it changes
        self.key.append(type(x))
        return (len(self.frontier) - 1) * 3 + FRONTIER

    def walk(self, tops, stop=None, expand=None) -> Walk:
        """Order the nodes computing `tops`.

        A node for which `stop(node)` is true is an input of the program (a "stop", numbered in
        the order met), not computed. A node with a known value is a frontier input unless
        `expand(node)` asks to recompute it from its inputs.
        """
        refs: dict = {}
        nodes: list = []
        in_refs_list: list = []
        stops: list = []
        key = self.key
        stack = list(reversed(tops))
        while stack:
            n = stack[-1]
            if id(n) in refs:
                stack.pop()
                continue
            if stop is not None and stop(n):
                refs[id(n)] = len(stops) * 3 + STOP
                stops.append(n)
                key.append("stop")
                stack.pop()
                continue
            if n.value is not None and not (expand is not None and n.inputs and expand(n)):
                refs[id(n)] = self._frontier(n)
                stack.pop()
                continue
            waiting = False
            for c in n.inputs:
                if isinstance(c, Node) and id(c) not in refs:
                    stack.append(c)
                    waiting = True
            if waiting:
                continue
            stack.pop()
            in_refs = tuple(refs[id(c)] if isinstance(c, Node) else self._frontier(c)
                            for c in n.inputs)
            if _stepmode.state.active is not None:
                _stepmode.state.active.scalars_of(n)
            refs[id(n)] = len(nodes) * 3 + COMPUTED
            nodes.append(n)
            in_refs_list.append(in_refs)
            key.append((node_key(n), in_refs))
        top_refs = tuple(refs[id(t)] for t in tops)
        key.append(("tops",) + top_refs)
        return Walk(nodes, in_refs_list, top_refs, stops)


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


def _reference_counts(cell: Cell) -> tuple:
    return sys.getrefcount(cell.node), sys.getrefcount(cell.node.value)


_UNSHARED = _reference_counts(Cell(Const(np.zeros(()), _dtype.float32)))


def unshared(cells) -> bool:
    """True when only these storage cells reach their arrays, so a program may take them over.

    Donating an array to XLA (its buffer reused for a result) deletes it, which is safe only if
    nothing else can still read it: no other node refers to the cell's node (a pending `clone()`,
    a recorded graph, a view) and no Python code holds the array (say, from `.jax()`). Reference
    counts tell, compared with those of a cell no one else refers to.
    """
    return all(_reference_counts(c) == _UNSHARED for c in cells)


# -- the program cache ---------------------------------------------------------------------------

class CacheInfo(NamedTuple):
    hits: int
    misses: int
    traces: int
    currsize: int
    maxsize: int


# XLA options of a program's first, cheap compile: optimisation level 0 without the expensive
# LLVM passes and without the CPU backend's fusion emitters compiles a small program 2-3x faster
# on the 2-core CPU (benchmarks/README.md); hot programs are compiled with the process's own
# options
QUICK_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True,
                 "xla_cpu_use_fusion_emitters": False}


# Estimates that order the tiers, fitted to compiles and runs of the benchmarks' programs on the
# 2-core CPU (benchmarks/README.md, "Tiers by estimated cost"), each within about 2x. They are
# computed from the programs, never from timings, so a run repeats bit for bit (the tiers differ
# in the last bits).
QUICK_COMPILE_S = (0.02, 0.0025)  # a quick whole program: seconds fixed and per node
FULL_COMPILE_S = (0.03, 0.0002)  # a full compile: fixed and per line of the quick program's HLO
FULL_SAVES_S = (0.15e-9, 6e-9)  # a full program's run saves: per byte accessed, per transcendental
OP_BY_OP_S = 30e-6  # per node, what the op-by-op tier costs beyond a whole program
ANALYSE_AT = 3  # the sighting at which a quick program's executable is analysed
REGULAR = 2  # met this many times more at the same period as before: a loop, compiled whole
PAY_BACK = 0.1  # compile in full once the time lost in the quick tier is this share of it


class Cost(NamedTuple):
    """What a program's op-by-op tier is planned from: its nodes and the keys of its rows (op,
    static arguments, input shapes and dtypes)."""
    nodes: int
    rows: frozenset


def row_key(node: Node) -> tuple:
    return (node_key(node), signature_of(node.inputs))


def cost_of(nodes) -> Cost:
    rows = [row_key(n) for n in nodes if type(n) is not GetItem and type(n) is not AccumulateGrad]
    return Cost(len(rows), frozenset(rows))


def _full_at(quick, args) -> int:
    """The sighting from which compiling `quick`'s program in full will likely have paid: XLA's
    cost analysis of the quick executable (bytes accessed and transcendentals, which level 0
    computes slowly) estimates what each run would save, its HLO's length the compile time."""
    with jax.enable_x64(True):
        compiled = quick.lower(*args).compile()  # cached: the executable just run
    costs = compiled.cost_analysis()
    costs = costs[0] if isinstance(costs, (list, tuple)) else costs or {}
    saves = (FULL_SAVES_S[0] * costs.get("bytes accessed", 0.0)
             + FULL_SAVES_S[1] * costs.get("transcendentals", 0.0))
    compile_s = FULL_COMPILE_S[0] + FULL_COMPILE_S[1] * compiled.as_text().count("\n")
    return max(ANALYSE_AT + 1, math.ceil(PAY_BACK * compile_s / max(saves, 1e-12)))


def quick_compile_s(nodes: int) -> float:
    """The estimated seconds of a quick compile of a whole program of `nodes` nodes."""
    return QUICK_COMPILE_S[0] + QUICK_COMPILE_S[1] * nodes


def _whole_at(cost: Cost) -> int:
    """The sighting from which a whole program has likely paid for itself against the op-by-op
    tier's dispatch."""
    return max(2, math.ceil(quick_compile_s(cost.nodes) / (OP_BY_OP_S * max(cost.nodes, 1))))


class _Tiered:
    """A program in three tiers. Below its `whole_at`-th sighting its caller runs it op by op
    (each row on an executable of its own, shared by every program using the row at the same
    shapes: `_Cache.row`); below its `full_at`-th it is compiled with `QUICK_OPTIONS`; then it is
    compiled in full (which then replaces it in the cache). `full_at` is None until estimated."""

    __slots__ = ("fn", "kwargs", "cost", "quick", "sightings", "whole_at", "full_at", "last",
                 "period", "regular")

    def __init__(self, fn, kwargs: dict, cost: Cost | None) -> None:
        self.fn, self.kwargs, self.cost, self.quick, self.sightings = fn, kwargs, cost, None, 0
        self.whole_at, self.full_at = 1, None
        # when it was last met (`_Cache.clock`), the gap before that, and how many gaps in a row
        # were the same
        self.last, self.period, self.regular = 0, 0, 0


class _Cache:
    def __init__(self, maxsize: int = 512) -> None:
        self.programs: collections.OrderedDict = collections.OrderedDict()
        self.maxsize = maxsize
        self.threshold: int | None = None  # see set_compile_threshold
        self.op_by_op: int | None = None
        self.met: set = set()  # the row keys of the structures met
        self.clock = 0  # sightings of tiered programs, all together
        self.hits = self.misses = self.traces = 0

    def get(self, key, build, op_by_op: bool = False):
        """The program cached under `key`, or `build()`'s, cached. A `tiered` program is
        returned in the tier its count of sightings gives; None where that tier is op by op
        and the caller can run it so (`op_by_op`)."""
        prog = self.programs.get(key)
        if prog is not None:
            self.hits += 1
            self.programs.move_to_end(key)
        else:
            self.misses += 1
            prog = self.programs[key] = build()
            if type(prog) is _Tiered:
                self._plan(prog)
            while len(self.programs) > self.maxsize:
                self.programs.popitem(last=False)
        if type(prog) is not _Tiered:
            return prog
        prog.sightings += 1
        self.clock += 1
        gap = self.clock - prog.last if prog.sightings > 1 else -1
        prog.regular = prog.regular + 1 if gap == prog.period else 0
        prog.last, prog.period = self.clock, gap
        if prog.sightings < prog.whole_at:
            if prog.regular >= REGULAR and self.op_by_op is None:
                prog.whole_at = prog.sightings  # met at a steady period: a loop's step
            elif op_by_op:
                return None
        if prog.full_at is None or prog.sightings < prog.full_at:
            if prog.quick is None:
                prog.quick = self._cheap(prog)
            return prog.quick
        full = self.programs[key] = self.jit(prog.fn, **prog.kwargs)
        return full

    def _plan(self, prog: _Tiered) -> None:
        """A new program's tiers: set by `set_compile_threshold`, else estimated. A structure runs
        op by op when every row in it was met before in another structure (then its rows'
        executables are likely shared, where a whole program would be used by it alone), until
        its sightings pay for a whole compile, or sooner if they come at a steady period (a loop
        whose step settled into this structure, unlike a graph drawn anew each step)."""
        prog.full_at = self.threshold  # None: estimated at the quick program's ANALYSE_AT-th run
        cost = prog.cost
        if cost is None:
            return
        met = self.met
        if self.op_by_op is not None:
            prog.whole_at = self.op_by_op + 1
        elif cost.rows and cost.rows <= met:
            prog.whole_at = _whole_at(cost)
        if len(met) > 64 * self.maxsize:  # bounded like the programs: forget and learn again
            met.clear()
        met.update(cost.rows)

    def _cheap(self, prog: _Tiered):
        """The first tier's program. Called inside someone's JAX trace (`tapegrad.compile`,
        `functional_call` under `jax.jit`) it is inlined into that trace, where JAX refuses
        compiler options: there the program without them is traced instead."""
        quick = self.jit(prog.fn, compiler_options=QUICK_OPTIONS, **prog.kwargs)
        nested = self.jit(prog.fn, **prog.kwargs)

        def call(*args):
            if not concrete(args):
                return nested(*args)
            out = quick(*args)
            if prog.full_at is None and prog.sightings >= ANALYSE_AT:
                prog.full_at = _full_at(quick, args)
            return out
        return call

    def jit(self, fn, **kwargs):
        """`jax.jit(fn)`, counting each trace (a trace is a compile for XLA); the program's
        guards are checked after each call (see `checks.jit`)."""
        @functools.wraps(fn)
        def counted(*args):
            self.traces += 1
            return fn(*args)
        return _checks.jit(counted, **kwargs)

    def tiered(self, fn, cost: Cost | None = None, **kwargs) -> _Tiered:
        """`fn` to be compiled by `get` in the tier its key's sightings give (see `_Tiered`);
        `cost` (of the nodes it computes) lets its tiers be estimated and it run op by op."""
        return _Tiered(fn, kwargs, cost)

    # -- the op-by-op tier's executables: one per row at given input shapes and dtypes --------
    def row(self, node: Node):
        """The executable computing `node` from its input values."""
        return self.get(("row",) + row_key(node),
                        lambda: self.jit(node_fn(node), compiler_options=QUICK_OPTIONS))

    def row_vjp(self, node: Node, wrt: tuple, given: tuple | None):
        """The executable `(input values, output cotangents) -> the cotangents of the inputs at
        positions `wrt``; `given`: which outputs of a multi-output row have cotangents (the
        others are zero), None for a row of one output. The forward is recomputed inside, where
        XLA keeps only what the vjp uses."""
        return self.get(("row-vjp",) + row_key(node) + (wrt, given),
                        lambda: self.jit(_row_vjp(node_fn(node), wrt, given),
                                         compiler_options=QUICK_OPTIONS))


def vjp_at(fn, args, positions, has_aux: bool = False):
    """`jax.vjp` of `fn(*args)` with respect to the arguments at `positions`, the others held."""
    def f(*primals):
        xs = list(args)
        for i, p in zip(positions, primals):
            xs[i] = p
        return fn(*xs)
    return jax.vjp(f, *[args[i] for i in positions], has_aux=has_aux)


def _row_vjp(fn, wrt: tuple, given: tuple | None):
    def run(args, cts):
        out, back = vjp_at(fn, args, wrt)
        if given is not None:
            cts = [cts[given.index(k)] if k in given else _zero_cotangent(o)
                   for k, o in enumerate(out)]
            cts = type(out)(*cts) if hasattr(out, "_fields") else type(out)(cts)  # a NamedTuple
        return back(cts)
    return run


def _zero_cotangent(x):
    if jax.numpy.issubdtype(x.dtype, jax.numpy.inexact):
        return jax.numpy.zeros_like(x)
    return np.zeros(x.shape, jax.dtypes.float0)


def concrete(args) -> bool:
    """True when no argument is a tracer (the call is not inside someone's JAX trace)."""
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(args))


cache = _Cache()


def cache_info() -> CacheInfo:
    """Statistics of tapegrad's compiled-program cache: hits/misses (of a structure at given input
    shapes and dtypes, or of one op's executable), XLA traces, and the cached programs against
    the limit."""
    return CacheInfo(cache.hits, cache.misses, cache.traces, len(cache.programs), cache.maxsize)


# what else forgets what it learnt of programs when the cache is cleared (shape buckets' sizes)
on_clear: list = []


def clear_cache() -> None:
    """Drop every compiled program and reset the statistics."""
    cache.programs.clear()
    cache.met.clear()
    cache.hits = cache.misses = cache.traces = 0
    for forget in on_clear:
        forget()


def set_cache_limit(maxsize: int) -> None:
    """Keep at most `maxsize` compiled programs, each a graph structure (or one op's executable)
    at one set of input shapes and dtypes (the least recently used is dropped first, its
    executable freed), so that a loop over ragged shapes keeps its memory bounded. Like
    `torch._dynamo.config.cache_size_limit`, a shape met again after being dropped compiles
    again."""
    if maxsize < 1:
        raise ValueError(f"cache limit must be at least 1, got {maxsize}")
    cache.maxsize = maxsize
    while len(cache.programs) > maxsize:
        cache.programs.popitem(last=False)


def set_compile_threshold(threshold: int | None = None, *, op_by_op: int | None = None) -> None:
    """When a program (a graph structure at given input shapes) changes tier.

    A structure met for the first time whose ops were all met before in other graphs runs op by
    op, on one small executable per op shared by every graph (no compile when they are cached);
    other programs are compiled cheaply, at XLA's optimisation level 0, so that a new expression
    answers sooner; a program met often is compiled in full. By default (None) each switch comes
    at the sighting from which it is estimated to have paid for its compile, from the program's
    size. `threshold`: the sighting of the full compile (1: in full at once); `op_by_op`: how many
    sightings a new structure runs op by op, whatever its ops (0: never)."""
    if threshold is not None and threshold < 1:
        raise ValueError(f"compile threshold must be at least 1, got {threshold}")
    if op_by_op is not None and op_by_op < 0:
        raise ValueError(f"op-by-op sightings must be at least 0, got {op_by_op}")
    cache.threshold, cache.op_by_op = threshold, op_by_op


# Python numbers reach a program packed into one array per kind (a jit argument per number would
# cost a host-to-device transfer each), and are unpacked as weakly typed scalars, so they promote
# exactly as the Python numbers would.
_PACK_KINDS = {float: 0, int: 1, bool: 2, complex: 3}
_PACK_DTYPES = (np.dtype(np.float64), np.dtype(np.int64), np.dtype(np.bool_),
                np.dtype(np.complex128))


def _pack_kind(x) -> int:
    kind = _PACK_KINDS.get(type(x))
    if kind is None:
        kind = 2 if isinstance(x, (bool, np.bool_)) else 1 if isinstance(x, (int, np.integer)) \
            else 0 if isinstance(x, (float, np.floating)) else 3
    return kind


def arguments(frontier: list):
    """A frontier as program arguments: the arrays, and the Python numbers packed by kind."""
    arrays, packs = [], ([], [], [], [])
    for x in frontier:
        if isinstance(x, Node):
            arrays.append(x.value)
        else:
            packs[_pack_kind(x)].append(x)
    return arrays, tuple(np.array(p, dtype=d) if p else None for p, d in zip(packs, _PACK_DTYPES))


def layout(frontier: list) -> tuple:
    """Where each frontier entry sits in `arguments(frontier)`: (kind, index), kind -1 for arrays."""
    counts, n_arrays, out = [0, 0, 0, 0], 0, []
    for x in frontier:
        if isinstance(x, Node):
            out.append((-1, n_arrays))
            n_arrays += 1
        else:
            kind = _pack_kind(x)
            out.append((kind, counts[kind]))
            counts[kind] += 1
    return tuple(out)


def unpack(layout_, args) -> list:
    """Inside a program: the frontier values, numbers as weakly typed scalars."""
    arrays, packs = args
    return [arrays[i] if kind < 0 else
            packs[kind][i] if kind == 2 else
            weak_scalar(packs[kind][i], _PACK_DTYPES[kind])
            for kind, i in layout_]


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
    walk = tr.walk(targets)
    nodes = walk.nodes
    wanted = {id(t) for t in targets}
    # constants met on the way are not kept: any program recomputes them, and one computed here
    # inside someone's JAX trace would be a tracer
    keep = tuple(i for i, n in enumerate(nodes)
                 if id(n) in wanted or (owned(n) and not n.constant))
    if not keep:
        return

    def build():
        entries, places = walk.entries(), layout(tr.frontier)

        def run(args):
            computed = evaluate(entries, unpack(places, args))
            return tuple(computed[i] for i in keep)
        return cache.tiered(run, cost_of(nodes))

    args = arguments(tr.frontier)
    # values made from numbers alone are concrete even inside someone's JAX trace
    constants = all(t.constant for t in targets) and not _stepmode.tracing()
    program = cache.get(("eval", tuple(tr.key), keep), build,
                        op_by_op=not constants and not _stepmode.tracing() and concrete(args[0]))
    with jax.enable_x64(True), (jax.ensure_compile_time_eval() if constants else
                                contextlib.nullcontext()):
        if program is None:
            computed = evaluate_op_by_op(walk, frontier_values(tr.frontier))
            values = [computed[i] for i in keep]
        else:
            values = program(args)
    store([nodes[i] for i in keep], values)


# -- the op-by-op tier ----------------------------------------------------------------------------
_SCALAR_TYPES = (float, int, np.bool_, complex)


def frontier_values(frontier: list) -> list:
    """A frontier's values for the op-by-op tier: arrays, and Python numbers of the type each has
    inside a whole program (`unpack`), so that they promote the same."""
    return [x.value if isinstance(x, Node) else _SCALAR_TYPES[_pack_kind(x)](x) for x in frontier]


def evaluate_op_by_op(walk: Walk, frontier: list, stops=()) -> list:
    """`evaluate` of a walk, each node on its row's executable (`_Cache.row`)."""
    computed: list = []
    sources = (frontier, stops, computed)
    for n, in_refs in zip(walk.nodes, walk.in_refs):
        args = [sources[r % 3][r // 3] for r in in_refs]
        cls = type(n)
        if cls is GetItem:
            computed.append(args[0][n.static])
        elif cls is AccumulateGrad:
            computed.append(args[0])
        else:
            computed.append(cache.row(n)(*args))
    return computed
