"""The backward pass: replays of the recorded graph under `jax.vjp`, compiled and cached.

The graph reachable from the roots is cut at *boundaries*: the leaves (`AccumulateGrad`), tensors
with hooks or `retain_grad()`, custom `autograd.Function` nodes and the inputs asked for by
`autograd.grad`. Each segment between boundaries is one compiled program that recomputes its
forward from the frontier and runs `jax.vjp`, adding leaf gradients into `.grad` in the same
call. With no hooks, the whole backward is one segment: one XLA call. A new segment made of
rows met before runs op by op instead (`op_by_op`), until compiling it pays.

With `create_graph=True` each segment is recorded as a node instead of run, so the gradients are
themselves differentiable to any order.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._core import dtype as _dtype, stepmode as _stepmode
from .._core.compile import (Trace, arguments, cache, concrete, cost_of, evaluate, layout, lookup,
                             materialize, owned, store, unpack, vjp_at)
from .._core.graph import SAVES_NONE, AccumulateGrad, GetItem, Node, Op, grad_edge
from .._core.ops import full_op
from .._core.record import pending_writes, record
from .._tensor.apply import apply
from .._tensor.tensor import Tensor
from . import anomaly as _anomaly, buckets as _buckets, op_by_op as _op_by_op
from .grads import GradLog

FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you "
    "call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward "
    "through the graph a second time or if you need to access saved tensors after calling "
    "backward.")

# checkpoint(use_reentrant=True) is a region PyTorch differentiates with a nested backward(),
# which autograd.grad and backward(inputs=...) cannot reach; tapegrad refuses them as PyTorch does
REENTRANT_CHECKPOINT_MESSAGE = (
    "When use_reentrant=True, torch.utils.checkpoint is incompatible with .grad() or passing an "
    "`inputs` parameter to .backward(). To resolve this error, you can either set "
    "use_reentrant=False, or call .backward() without passing the `inputs` argument.")


def _saves(node: Node) -> bool:
    if type(node) is GetItem:
        node = node.inputs[0]
    return node.op is not None and node.op.saves != SAVES_NONE


def check_versions(node: Node) -> None:
    """PyTorch's error when a value the backward needs was modified in place since recording."""
    for cell, version, saved in node.saved:
        if cell.version != version:
            producer = grad_edge(saved)[0]
            of = f", which is output 0 of {producer.name()}," if producer is not None else ""
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{_dtype.legacy_name(saved.dtype)} {list(saved.shape)}]{of} is at "
                f"version {cell.version}; expected version {version} instead. Hint: the operation "
                "that modified it came after the forward use; clone() the tensor before modifying "
                "it, or modify it out of place.")


def discover(roots) -> list:
    """The nodes that need gradients, producers before consumers; checks freed and versions."""
    order, seen = [], set()
    stack = [(r, False) for r in roots]
    while stack:
        n, done = stack.pop()
        if done:
            order.append(n)
            continue
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.freed and _saves(n):
            raise RuntimeError(FREED_MESSAGE)
        if n.saved:
            check_versions(n)
        stack.append((n, True))
        if type(n) is not AccumulateGrad:
            stack.extend((c, False) for c in n.inputs
                         if isinstance(c, Node) and c.requires_grad and id(c) not in seen)
    return order


def _is_custom(node: Node) -> bool:
    return node.op is not None and getattr(node.op, "custom_backward", None) is not None


class Backward:
    """One run of the backward pass (for `backward()` or `autograd.grad`)."""

    def __init__(self, roots, cts, *, targets, capture: bool, retain_graph: bool,
                 create_graph: bool) -> None:
        self.roots = roots
        self.create_graph = create_graph
        self.retain_graph = retain_graph
        self.capture = capture
        # targets: id(variable) for leaves, id(node) for non-leaf tensors; None means every leaf.
        self.targets = targets
        self.order: list = []  # the nodes that took part, for freeing
        self.ran: list = []  # lists of the nodes whose backward has run, freed if the run fails
        self.grads = GradLog()  # every .grad write, undone if the run fails
        self.boundary = {id(r) for r in roots}
        self.needed: set = set()
        self.unfoldable: set = set()
        self.pending: dict = {}
        self.captured: dict = {}
        self.leaves: dict = {}  # id(variable) -> (variable, ct): leaf gradients not folded
        self.accumulated: list = []  # the leaves whose .grad this run accumulated into
        self.anomaly = _anomaly.enabled()  # node by node, each node's gradients checked
        for r, ct in zip(roots, cts):
            self._add_pending(r, ct)

    def run(self) -> None:
        if self.anomaly and _stepmode.tracing():
            raise RuntimeError("anomaly mode checks gradient values, which a traced step "
                               "(tapegrad.compile, jax.jit) does not have: run the step "
                               "uncompiled to debug it")
        _callbacks.append([])
        try:
            if self.anomaly or not self._single_segment():
                self._sweep()
            self._finish_leaves()
            if not self.retain_graph:
                self._free(self.order)
            for var in self.accumulated:
                for hook in list((var._post_accumulate_hooks or {}).values()):
                    hook(var)
        except BaseException:
            # A failed backward (a hook raising, a KeyboardInterrupt) leaves every .grad as it
            # was, so a retry does not count twice; the graph is freed where its backward ran,
            # as PyTorch frees each node as it runs.
            self.grads.roll_back()
            if not self.retain_graph:
                self._free(n for nodes in self.ran for n in nodes if n.requires_grad)
            raise
        finally:
            callbacks = _callbacks.pop()
        for callback in callbacks:
            callback()

    # -- the common case: one program ------------------------------------------------------------
    def _single_segment(self) -> bool:
        """One root and no hooks or custom functions below it: the whole backward is one call."""
        if self.targets is not None or len(self.roots) != 1:
            return False
        root = self.roots[0]
        if type(root) is AccumulateGrad or root.hooks or _is_custom(root):
            return False

        def is_stop(n):
            return n is not root and (not n.requires_grad or type(n) is AccumulateGrad
                                      or bool(n.hooks) or _is_custom(n))

        tr, walk = _walk(root, is_stop)
        if any(s.requires_grad and type(s) is not AccumulateGrad for s in walk.stops):
            return False
        self.order = [n for n in walk.nodes if n.requires_grad]
        for n in self.order:
            _check(n)
        for n in tr.frontier:  # a node of a freed graph keeps its value but not its inputs
            if isinstance(n, Node) and n.requires_grad:
                _check(n)
        variables = [id(s.variable) for s in walk.stops if type(s) is AccumulateGrad]
        if len(set(variables)) != len(variables):
            self.unfoldable = {v for v in variables if variables.count(v) > 1}
        self._run_segment(root, self.pending.pop(id(root)), tr, walk)
        for s in walk.stops:  # leaves whose gradients could not be folded into the program
            ct = self.pending.pop(id(s), None)
            if ct is not None:
                self._to_leaf(s, ct)
        return True

    # -- the general case: a sweep over boundaries -----------------------------------------------
    def _sweep(self) -> None:
        self.order = discover(self.roots)
        targets = self.targets
        if targets is not None and any(getattr(n.op, "reentrant", False) for n in self.order):
            raise RuntimeError(REENTRANT_CHECKPOINT_MESSAGE)
        anomaly = self.anomaly
        for n in self.order:
            if (type(n) is AccumulateGrad or n.hooks or _is_custom(n)
                    or (targets is not None and id(n) in targets)
                    or (anomaly and _anomaly.steps_alone(n))):
                self.boundary.add(id(n))
            if _is_custom(n):
                self.boundary.update(id(c) for c in n.inputs if isinstance(c, Node) and c.requires_grad)
            elif type(n) is GetItem and _is_custom(n.inputs[0]):  # one output of a custom Function
                self.boundary.add(id(n))
        self.needed = self._needed()
        # A leaf whose value changed between two uses has two AccumulateGrad nodes; its
        # gradients are then summed before accumulating instead of folded per node.
        variables = [id(n.variable) for n in self.order if type(n) is AccumulateGrad]
        self.unfoldable = {v for v in variables if variables.count(v) > 1}
        if anomaly:  # every forward value at once, so that each node's program is that node alone
            pending = [n for n in self.order if n.value is None and type(n) is not AccumulateGrad
                       and (n.op is None or n.op.n_out == 1)]
            if pending:
                materialize(pending)
        for b in reversed(self.order):  # consumers first
            if id(b) not in self.boundary:
                continue
            ct = self.pending.pop(id(b), None)
            if ct is None:
                continue
            if type(b) is AccumulateGrad:
                self._to_leaf(b, ct)
                continue
            if anomaly:
                with _anomaly.running(b):
                    self._backward_of(b, ct)
            else:
                self._backward_of(b, ct)

    def _backward_of(self, b: Node, ct) -> None:
        """Run the boundary `b`'s hooks and backward, adding the gradients of what it consumed."""
        targets = self.targets
        ct = _run_hooks(b, ct, self.grads)
        if targets is not None and id(b) in targets:
            self.captured[id(b)] = ct
        if not any(id(c) in self.needed for c in b.inputs if isinstance(c, Node)):
            return
        if type(b) is GetItem and _is_custom(b.inputs[0]):
            # the Function's backward gets its outputs' gradients together, by position
            parts = self.pending.setdefault(id(b.inputs[0]), {})
            parts[b.static] = ct if b.static not in parts else _add_ct(parts[b.static], ct)
            return
        if _is_custom(b):
            grads = list(b.op.custom_backward(b, ct, self.create_graph))
            self.ran.append((b,))
            if self.anomaly:
                _anomaly.check_nan(b, [(pos, g) for _, g, pos in grads])
            for node, g, _ in grads:
                self._add_pending(node, g)
        else:
            boundary = self.boundary

            def is_stop(n, top=b):
                return n is not top and (not n.requires_grad or type(n) is AccumulateGrad
                                         or id(n) in boundary)
            self._run_segment(b, ct, *_walk(b, is_stop))

    # -- bookkeeping ------------------------------------------------------------------------------
    def _is_target_leaf(self, acc: AccumulateGrad) -> bool:
        return self.targets is None or id(acc.variable) in self.targets

    def _needed(self) -> set:
        needed = set()
        for n in self.order:  # producers first
            if type(n) is AccumulateGrad:
                if self._is_target_leaf(n):
                    needed.add(id(n))
            elif (self.targets is not None and id(n) in self.targets) or any(
                    id(c) in needed for c in n.inputs if isinstance(c, Node)):
                needed.add(id(n))
        return needed

    def _to_leaf(self, acc: AccumulateGrad, ct) -> None:
        var = acc.variable
        old = self.leaves.get(id(var))
        self.leaves[id(var)] = (var, ct if old is None else _add_ct(old[1], ct))

    def _add_pending(self, node: Node, ct) -> None:
        old = self.pending.get(id(node))
        self.pending[id(node)] = ct if old is None else _add_ct(old, ct)

    def _kind(self, n: Node) -> str:
        """How a segment treats a stop: "fold" (add into .grad in the program), "ct" or "const"."""
        if type(n) is AccumulateGrad:
            if not self._is_target_leaf(n):
                return "const"
            if (self.capture or self.create_graph or self.anomaly or n.variable._hooks
                    or id(n.variable) in self.unfoldable):
                return "ct"
            return "fold"
        if n.requires_grad and id(n) in self.boundary and id(n) in self.needed:
            return "ct"
        return "const"

    def _finish_leaves(self) -> None:
        for var, ct in self.leaves.values():
            ct = cotangent_tensor(ct, var.shape, var.dtype)
            for hook in list((var._hooks or {}).values()):
                ct = call_hook(hook, ct)
            if self.capture:
                self.captured[id(var)] = ct
            else:
                self.grads.write(var, ct, accumulate=True, create_graph=self.create_graph)
                self.accumulated.append(var)

    def _free(self, nodes) -> None:
        for n in nodes:
            if type(n) is AccumulateGrad:
                continue
            n.freed = True
            n.saved = ()
            if n.value is not None and _saves(n) and type(n) is not GetItem:
                n.inputs = ()
            if _is_custom(n):
                n.op.free(n)

    # -- one segment ------------------------------------------------------------------------------
    def _run_segment(self, top: Node, ct, tr: Trace, walk_f) -> None:
        stops = walk_f.stops
        kinds = tuple(self._kind(s) for s in stops)
        if all(k == "const" for k in kinds):
            return
        if self.create_graph:
            self._record_segment(tr, walk_f, kinds, ct, top)
            return
        # storage written in place with a value still pending is computed here too, and kept,
        # unless it is a constant (a reset): then whoever reads it first computes it, and this
        # step's program stays the same as the next one's
        writes = []
        if not _stepmode.tracing():  # a traced step's values must stay inside its trace
            writes = sorted((c.node for c in list(pending_writes) if c.node.value is None
                             and not c.node.requires_grad and not c.node.constant),
                            key=lambda n: n.serial)  # the order they were made: a set has none
            pending_writes.clear()
        folds = [s.variable for s, k in zip(stops, kinds) if k == "fold"]
        try:
            cts, grads, ct_in = self._call_segment(top, ct, tr, walk_f, kinds, folds, writes)
        except Exception:
            if not writes:
                raise
            # a pending write whose computation fails (a value check) must not fail this
            # backward: it is left out, pending, and raises its error where its storage is read
            cts, grads, ct_in = self._call_segment(top, ct, tr, walk_f, kinds, folds, [])
        ct_stops = [s for s, k in zip(stops, kinds) if k == "ct"]
        if self.anomaly:
            _anomaly.check_nan(top, list(zip(ct_stops, cts)), ct_in)
        for s, c in zip(ct_stops, cts):
            self._add_pending(s, c)
        for var, g in zip(folds, grads):
            self.grads.write(var, g)
        self.accumulated.extend(folds)
        self.ran.append(walk_f.nodes)

    def _call_segment(self, top: Node, ct, tr: Trace, walk_f, kinds, folds, writes) -> tuple:
        """Run one segment's program (computing `writes` too); stores the values it keeps and
        returns the stops' cotangents, the gradients folded into `folds`' .grad and the
        cotangent it started from."""
        stops = walk_f.stops
        walk_p = tr.walk([s.inputs[0] if type(s) is AccumulateGrad else s for s in stops] + writes)
        # values worth keeping: those a tensor shows (the pending writes among them, else their
        # chains would grow from step to step), except constants (made from Python numbers
        # alone), which each program recomputes, so the program is the same at every step
        live_p = tuple(i for i, n in enumerate(walk_p.nodes) if owned(n) and not n.constant)
        live_f = tuple(i for i, n in enumerate(walk_f.nodes)
                       if n.value is None and owned(n) and not n.constant)
        # an implicit gradient (1.0 for a scalar loss) is a constant of the program
        implicit = ct if isinstance(ct, float) else None
        old_grads = tuple(None if v.grad is None else v.grad._value() for v in folds)
        key = ("segment", tuple(tr.key), kinds, live_p, live_f, implicit,
               tuple(g is None for g in old_grads))  # one executable per key (set_cache_limit)
        ct_value = None if implicit is not None else \
            cotangent_tensor(ct, top.shape, top.dtype)._value()
        stop_refs = walk_p.top_refs[:len(stops)]
        plan = None if self.anomaly or _stepmode.tracing() else \
            _buckets.plan(key, tr, walk_p, walk_f, kinds)
        if plan is not None:
            # a ragged batch: the program of its size's bucket (see `buckets`); None when an
            # output is not finite, which the exact-shape program below then computes
            size = _buckets.size_for(plan, len(walk_p.nodes) + len(walk_f.nodes))
            bkey = ("segment", size, plan.structure) + key[3:]
            program = cache.get(bkey, lambda: cache.tiered(_segment_program(
                plan.entries_p, plan.entries_f, stop_refs, walk_f.top_refs, layout(tr.frontier),
                kinds, live_p, live_f, implicit, plan.rows), cost_of(walk_p.nodes + walk_f.nodes)))
            arrays, packs = arguments(tr.frontier)
            places = layout(tr.frontier)
            for i in plan.padded:
                arrays[places[i][1]] = _buckets.pad(arrays[places[i][1]], size)
            with jax.enable_x64(True):
                p_values, f_values, cts, grads, finite = program(
                    (arrays, packs), ct_value, old_grads, np.int32(plan.n))
            if bool(finite):
                store([walk_p.nodes[i] for i in live_p],
                      [_buckets.unpad(v, plan.n) if plan.rows_p[i] else v
                       for i, v in zip(live_p, p_values)])
                store([walk_f.nodes[i] for i in live_f],
                      [_buckets.unpad(v, plan.n) if plan.rows_f[i] else v
                       for i, v in zip(live_f, f_values)])
                return cts, grads, ct_value if implicit is None else implicit
        args = arguments(tr.frontier)
        program = cache.get(key, lambda: cache.tiered(_segment_program(
            walk_p.entries(), walk_f.entries(), stop_refs, walk_f.top_refs, layout(tr.frontier),
            kinds, live_p, live_f, implicit), cost_of(walk_p.nodes + walk_f.nodes)),
            op_by_op=not _stepmode.tracing() and concrete(args[0]))
        with jax.enable_x64(True):
            if program is None:
                p_values, f_values, cts, grads = _op_by_op.segment(
                    walk_p, walk_f, tr.frontier, stop_refs, kinds, live_p, live_f,
                    ct_value if implicit is None else implicit, old_grads)
            else:
                p_values, f_values, cts, grads = program(args, ct_value, old_grads)
        store([walk_p.nodes[i] for i in live_p], p_values)
        store([walk_f.nodes[i] for i in live_f], f_values)
        return cts, grads, ct_value if implicit is None else implicit

    def _record_segment(self, tr: Trace, walk_f, kinds, ct, top) -> None:
        """create_graph: the segment's vjp becomes a recorded node, differentiable in turn."""
        stops = walk_f.stops
        key = ("vjp-op", tuple(tr.key), kinds)
        op = cache.get(key, lambda: _vjp_op(walk_f, kinds))
        ct_t = cotangent_tensor(ct, top.shape, top.dtype)
        ct_node = ct_t._autograd_node() if ct_t.requires_grad else ct_t._node
        inputs = tuple(stops) + tuple(tr.frontier) + (ct_node,)
        requires = any(isinstance(i, Node) and i.requires_grad for i in inputs)
        outs = record(op, inputs, (), requires)
        outs = (outs,) if op.n_out == 1 else outs
        ct_stops = [s for s, k in zip(stops, kinds) if k != "const"]
        grads = [Tensor._from_node(node) for node in outs]
        self.ran.append(walk_f.nodes)
        if self.anomaly:
            _anomaly.check_nan(top, list(zip(ct_stops, grads)))
        for s, g in zip(ct_stops, grads):
            self._add_pending(s, g)


# One list per running backward (a hook may run another backward): the callbacks queued while it
# runs, called in order once it has finished.
_callbacks: list = []


def queue_callback(callback) -> None:
    """Call `callback()` when the running backward has finished, after every gradient has been
    accumulated and every post-accumulate-grad hook has run (PyTorch's
    `Variable._execution_engine.queue_callback`; DistributedDataParallel averages gradients so)."""
    if not _callbacks:
        raise RuntimeError("Final callbacks can only be installed during backward pass.")
    _callbacks[-1].append(callback)


def _requires_grad(node: Node) -> bool:
    return node.requires_grad


def _walk(top: Node, is_stop) -> tuple:
    """The backward walk from `top`, after computing leaves made lazily.

    A leaf's pending value is computed by the backward's own program when the leaf took part in
    an earlier backward: an update in place (`p -= lr * p.grad` under `no_grad`, the manual
    step of tutorials) is then one program with the next backward, the same at every step. A
    leaf in its first backward (made lazily: `tg.zeros(..., requires_grad=True)`,
    `init.normal_`) is computed apart, once: inside that backward's program its making would be
    a part no later step has, a second compile.
    """
    log = _stepmode.state.active
    logged = len(log.scalars) if log is not None else 0
    tr = Trace()
    walk = tr.walk([top], stop=is_stop, expand=_requires_grad)
    fresh = []
    for s in walk.stops:
        if type(s) is AccumulateGrad:
            if s.inputs[0].value is None and not s.variable._met_in_backward:
                fresh.append(s.inputs[0])
            s.variable._met_in_backward = True
    if not fresh:
        return tr, walk
    materialize(fresh)
    if log is not None:  # the walk is repeated: a compiled step must see its numbers once
        del log.scalars[logged:]
    tr = Trace()
    return tr, tr.walk([top], stop=is_stop, expand=_requires_grad)


def _check(node: Node) -> None:
    if node.freed and _saves(node):
        raise RuntimeError(FREED_MESSAGE)
    if node.saved:
        check_versions(node)


def _segment_program(entries_p, entries_f, stop_refs, top_refs, places, kinds, live_p, live_f,
                     implicit, rows: "_buckets.Rows | None" = None):
    """The segment's program: `(args, ct, old_grads) -> (kept pending values, kept forward
    values, stop cotangents, folded gradients)`. Bucketed (`rows` given), it takes the count of
    valid rows too and also returns whether every output is finite."""
    primal_pos = [i for i, k in enumerate(kinds) if k != "const"]

    def program(args, ct, old_grads, count=None):
        if rows is not None:
            rows.count = count
        if implicit is not None:
            ct = implicit
        frontier = unpack(places, args)
        computed_p = evaluate(entries_p, frontier)
        stop_values = lookup(stop_refs, frontier, (), computed_p)
        top, vjp_fn, live = _vjp(entries_f, top_refs, frontier, stop_values, primal_pos, live_f)
        cts = vjp_fn(jnp.broadcast_to(jnp.asarray(ct, top.dtype), jnp.shape(top)))
        outs, grads, folds = [], [], iter(old_grads)
        for i, c in zip(primal_pos, cts):
            if kinds[i] == "fold":
                g = next(folds)
                grads.append(c if g is None else g + c)
            else:
                outs.append(c)
        result = tuple(computed_p[i] for i in live_p), live, tuple(outs), tuple(grads)
        if rows is None:
            return result
        finite = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(result)
                  if jnp.issubdtype(x.dtype, jnp.inexact)]
        return result + (jnp.all(jnp.stack(finite)) if finite else jnp.asarray(True),)
    return program


def _vjp(entries_f, top_refs, frontier, stop_values, primal_pos, live_f=()):
    def f(*values):
        computed = evaluate(entries_f, frontier, values)
        top = lookup(top_refs, frontier, values, computed)[0]
        return top, tuple(computed[i] for i in live_f)
    return vjp_at(f, stop_values, primal_pos, has_aux=True)


def _vjp_op(walk_f, kinds) -> Op:
    entries_f, top_refs, n_stops = walk_f.entries(), walk_f.top_refs, len(walk_f.stops)
    primal_pos = [i for i, k in enumerate(kinds) if k != "const"]

    def vjp(*args):
        stop_values, frontier, ct = args[:n_stops], args[n_stops:-1], args[-1]
        top, vjp_fn, _ = _vjp(entries_f, top_refs, frontier, stop_values, primal_pos)
        cts = vjp_fn(jnp.broadcast_to(jnp.asarray(ct, top.dtype), jnp.shape(top)))
        return cts[0] if len(cts) == 1 else tuple(cts)
    return Op("vjp", vjp, n_out=len(primal_pos), grad_name="VjpBackward0", register=False)


# -- gradients as tensors ---------------------------------------------------------------------------
def cotangent_tensor(ct, shape, dtype) -> Tensor:
    """A cotangent as a Tensor: a float stands for a tensor filled with it (implicit gradient)."""
    if isinstance(ct, Tensor):
        return ct
    if isinstance(ct, float):
        return apply(full_op, ct, shape=tuple(shape), dtype=dtype.np)
    return Tensor._from_array(ct)


def _add_ct(a, b):
    if isinstance(a, tuple):
        return tuple(_add_ct(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a + b
    if isinstance(a, Tensor) or isinstance(b, Tensor) or isinstance(a, float) or isinstance(b, float):
        return _tensorish(a) + _tensorish(b)
    return a + b  # two arrays


def _tensorish(x):
    return Tensor._from_array(x) if isinstance(x, jax.Array) else x


def _run_hooks(node: Node, ct, grads: GradLog):
    """Tensor hooks on `node`'s output: each may replace the gradient; retain_grad runs last."""
    hooks = node.hooks
    if not hooks:
        return ct
    ct = cotangent_tensor(ct, node.shape, node.dtype)
    retain = None
    for key, hook in list(hooks.items()):
        if key == "retain":
            retain = hook
            continue
        ct = call_hook(hook, ct)
    t = retain() if retain is not None else None
    if t is not None:
        grads.write(t, ct, accumulate=True, in_place=False)
    return ct


def call_hook(hook, grad: Tensor) -> Tensor:
    """`hook(grad)`, or what it returns instead, checked as PyTorch checks it: a tensor of the
    gradient's shape and dtype."""
    out = hook(grad)
    if out is None:
        return grad
    name = getattr(hook, "__name__", "<unknown>")
    if not isinstance(out, Tensor):
        raise TypeError(f"expected Variable, but hook returned '{type(out).__name__}'")
    if out.shape != grad.shape:
        raise RuntimeError(f"hook '{name}' has changed the size of value (was "
                           f"{list(grad.shape)} got {list(out.shape)})")
    if out.dtype is not grad.dtype:
        raise RuntimeError(f"hook '{name}' has changed the type of value (was "
                           f"{_dtype.legacy_name(grad.dtype)} got {_dtype.legacy_name(out.dtype)})")
    return out
