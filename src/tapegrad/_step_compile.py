"""`tapegrad.compile`: a whole training step as one `jax.jit` program.

The first calls run the step as usual while `_core.stepmode` logs what it touches: the storage it
reads and writes (parameters, gradients, optimizer state, buffers), the leaves whose `.grad` it
sets, the optimizers whose hyperparameters it uses and the Python numbers it feeds to programs.
Then the step is traced once under `jax.jit` with that state lifted to inputs and outputs; each
later call passes the current state in and writes the results back, so a step is one XLA call.

What would silently freeze into the trace is refused instead: reading a tensor's value in Python
(`item()`, `bool()`, printing), a Python number that changed between calls, and state the eager
runs did not touch (the step is then rediscovered). Optimizer hyperparameters are inputs, so a
learning-rate scheduler stepping outside the compiled step works without recompiling.

As TorchDynamo does, a plan holds guards on what its trace took from Python, checked before each
call (`_Guards`): the values of the globals and closure variables the step's code (and the
functions it reaches through them) names, and a method's `self` (numbers by value, containers by
their items, plain objects and `__slots__` objects by the attributes the code names, three
levels deep, everything else by identity), and
for modules and optimizers among them the parameters they hold, their `requires_grad` and the
modules' numbers and `training` flags; the `requires_grad` of the leaves the step sets `.grad` of, and grad
mode. A failed guard makes the step be learned again (at most `_MAX_PLANS` plans per step). A
step that rebinds such a variable itself (a counter) has effects no trace repeats: it runs
uncompiled, with a warning, as does a step whose code names an attribute deeper than the guards
read (`cfg.a.b.c.scale`). A tensor argument the step writes in place is an output too, written
back after the call (a call where that argument is a view, has views, or shares its storage
with another argument or the step's state runs uncompiled, silently). A step that returns a tensor still
requiring grad without calling `backward()` (a compiled forward) is refused.
"""
from __future__ import annotations

import functools
import operator
import types
import warnings
import weakref
from typing import Any, Callable

import jax

from ._autograd.grads import write_grad
from ._core import autocast as _autocast, checks as _checks, dtype as _dtype
from ._core import grad_mode as _grad_mode, stepmode as _stepmode
from ._core.compile import materialize, unshared
from ._core.graph import Const
from ._tensor import random as _random
from ._tensor.tensor import Tensor


# The first run creates lazily made state (optimizer moments, `.grad`s); the second logs the step
# as every later call runs it. A step whose first run did less (`zero_grad(set_to_none=False)`
# has no `.grad` to zero yet) runs eagerly once more, and the last two runs are compared.
_EAGER_RUNS, _MAX_EAGER_RUNS = 2, 3
_MAX_PLANS = 8


_MODES = (None, "default", "lite", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")


def compile(model: Callable | None = None, *, fullgraph: bool = False,  # noqa: A001
            dynamic: bool | None = None, backend: str | Callable = "inductor",
            mode: str | None = None, options: dict | None = None, disable: bool = False,
            donate: bool | None = None):
    """Compile a training step (forward, `backward()`, `optimizer.step()`, `zero_grad()`) whole.

    Use as `step = tapegrad.compile(step)` or `@tapegrad.compile`. The step's tensor arguments
    are inputs; everything else it reads or writes is found by running it, and written back after
    each call. Return the tensors you need (say, the loss) and read them outside the step.
    `donate` (default on) lets XLA reuse the buffers of the state the step updates (parameters,
    optimizer state, buffers) for its results; a call donates only when nothing else refers to
    them (no pending `clone()`, no array taken with `.jax()`).

    `torch.compile`'s arguments are accepted so that PyTorch code runs: XLA compiles the step
    whatever `backend`, `mode` and `options` name; `dynamic` chooses nothing (each new input shape
    is traced again); `fullgraph` does not turn the warning of a step that runs uncompiled into an
    error; `disable=True` returns `model` itself.
    """
    if mode not in _MODES:
        raise RuntimeError(f"Unrecognized mode={mode}, should be one of: "
                           + ", ".join(m for m in _MODES if m is not None))
    if mode is not None and options is not None:
        raise RuntimeError("Either mode or options can be specified, but both can't be specified "
                           "at the same time.")
    if model is None:
        return functools.partial(compile, fullgraph=fullgraph, dynamic=dynamic, backend=backend,
                                 mode=mode, options=options, disable=disable, donate=donate)
    if disable:
        return model
    return CompiledStep(model, donate)


def _is_tensor(x) -> bool:
    return isinstance(x, Tensor)


class CompiledStep:
    """A step function compiled whole; call it like the function."""

    def __init__(self, fn: Callable, donate: bool | None) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.donate = True if donate is None else donate
        self._eager_logs: dict = {}  # argument spec -> logs of the eager runs so far
        self._plans: dict = {}  # argument spec -> _Plan
        self.traces = 0  # how many times the step was traced (compiled)
        self._eager_only: str | None = None  # why the step cannot be compiled, once found
        self._relearned = 0  # plans dropped because a guard failed

    def __call__(self, *args, **kwargs) -> Any:
        leaves, treedef = jax.tree.flatten((args, kwargs))  # a Tensor is a leaf
        if self._eager_only is not None:  # logged all the same: a call that raises applies nothing
            log = self._run_eagerly(args, kwargs, leaves)
            log.keep()
            return log.result
        spec = (treedef, _grad_mode.state.enabled,
                tuple((x._node.shape, x._node.dtype, x._requires_grad)
                      if isinstance(x, Tensor) else x for x in leaves),
                _dtype.get_default_dtype(), _autocast.key())  # library state a trace reads
        plan = self._plans.get(spec)
        if plan is not None:
            if plan.guards.hold():
                if not _separate_arguments(leaves, plan.arg_writes, plan.cells):
                    log = self._run_eagerly(args, kwargs, leaves)  # this call only
                    log.keep()
                    return log.result
                try:
                    return plan(leaves)
                except _stepmode.UntrackedState:
                    pass
            else:
                self._relearned += 1
            del self._plans[spec]  # a guard failed or the step touched new state: learn it again
            self._eager_logs.pop(spec, None)
        guards = _Guards(self.fn)
        log = self._run_eagerly(args, kwargs, leaves)
        try:
            _refuse_graph_outputs(log)
        except BaseException:
            log.undo()
            raise
        effect = guards.changed_by_run(log)
        if effect is None and self._relearned > _MAX_PLANS:
            effect = (f"found the Python state it reads changed more than {_MAX_PLANS} times "
                      "(pass values that change as tensor arguments); a compiled step would not "
                      "repeat that")
        if effect is not None:
            self._eager_only = effect
            self._eager_logs.clear()
            self._plans.clear()
            warnings.warn(f"tapegrad.compile: {self.__name__} {effect}, so it runs uncompiled.",
                          RuntimeWarning, stacklevel=2)
            log.keep()
            return log.result
        if not _separate_arguments(leaves, log.arg_writes, log.reads.values()):
            log.keep()  # an argument written in place shares its storage: no plan from this run
            return log.result
        logs = self._eager_logs.setdefault(spec, [])
        logs.append(log)
        if len(logs) >= _EAGER_RUNS and (len(logs) == _MAX_EAGER_RUNS or
                                         len(logs[-2].scalars) == len(logs[-1].scalars)):
            del self._eager_logs[spec]
            try:
                self._plans[spec] = _Plan(self, spec, logs[-2], logs[-1], guards)
            except BaseException:  # a refused step applies nothing
                log.undo()
                raise
        log.keep()
        for cache in (self._eager_logs, self._plans):
            if len(cache) > _MAX_PLANS:
                cache.pop(next(iter(cache)))
                warnings.warn(f"tapegrad.compile: {self.__name__} was called with more than "
                              f"{_MAX_PLANS} different argument shapes or Python values; each "
                              "needs its own compiled program, so it mostly runs uncompiled. "
                              "Pass numbers that change from call to call as tensors.",
                              RuntimeWarning, stacklevel=2)
        return log.result

    def _run_eagerly(self, args, kwargs, leaves) -> _UndoLog:
        log = _UndoLog()
        guards = _checks.guards_made
        arg_cells = {id(x._storage) for x in leaves if _is_tensor(x)}
        try:
            with _StepContext(log, _generators_in_use()) as ctx:
                ctx.seed_generators_eagerly()
                hp_before = _hyperparams_now()
                result = self.fn(*args, **kwargs)
                _flush(log, result)
                if any(hp_before.get((id(o), gi)) != o._hp(o.param_groups[gi])
                       for o, gi in log.hyperparams):
                    raise RuntimeError(
                        "tapegrad.compile: the step changed an optimizer's hyperparameters (a "
                        "learning-rate scheduler's step() inside the step?). Call "
                        "scheduler.step() outside the compiled step; hyperparameters are passed "
                        "in on every call.")
        except BaseException:  # a step that raises applies nothing
            log.undo()
            raise
        log.arg_writes = tuple(i for i, x in enumerate(leaves)
                               if _is_tensor(x) and id(x._storage) in log.writes)
        for cells in (log.reads, log.writes):
            for key in arg_cells & cells.keys():
                del cells[key]
        log.result = result
        log.checked = _checks.guards_made != guards
        return log


class _UndoLog(_stepmode.StepLog):
    """The log of an eager run that can undo it: a compiled step that raises (the user's error,
    a refusal) leaves parameters, optimizer state, `.grad` and generators as they were, as the
    compiled program, which applies its results only after it has run, does."""

    def __init__(self) -> None:
        super().__init__(tracing=False)
        self._cells: dict = {}  # id(cell) -> (cell, the node it showed before the first write)
        self._grads: dict = {}  # id(tensor) -> (tensor, its .grad before the first write)
        self._states = [(o, {p: dict(st) for p, st in o.state.items()})
                        for o in list(_stepmode.optimizers)]
        # holding the state's values keeps the optimizer from donating (deleting) them
        self._pinned = [t._node for _, state in self._states for st in state.values()
                        for t in st.values() if isinstance(t, Tensor)]

    def write(self, cell) -> None:
        self._cells.setdefault(id(cell), (cell, cell.node))
        super().write(cell)

    def grad_owner(self, tensor) -> None:
        self._grads.setdefault(id(tensor), (tensor, tensor.grad))
        super().grad_owner(tensor)

    def undo(self) -> None:
        for cell, node in self._cells.values():
            cell.assign(node, bump=False)
        for t, g in self._grads.values():
            write_grad(t, g)
        for o, state in self._states:  # drops the state a first step made
            o.state.clear()
            o.state.update(state)
        self.keep()

    def keep(self) -> None:
        """The run stands: release the old values (the log itself is kept for planning)."""
        self._cells, self._grads, self._states, self._pinned = {}, {}, [], []


class _StepContext:
    """Makes `log` the active step log and gives each generator a fresh key for this call."""

    def __init__(self, log: _stepmode.StepLog, generators: list, advance: int = 1) -> None:
        self.log = log
        self.generators = generators
        self.advance = advance
        self._saved = []

    def __enter__(self) -> "_StepContext":
        if _stepmode.state.active is not None:
            raise RuntimeError("tapegrad.compile: compiled steps cannot be nested")
        _stepmode.state.active = self.log
        self._saved = [(g, *g.stream) for g in self.generators]
        return self

    def seed_generators_eagerly(self) -> None:
        for g, key, counter in self._saved:
            with jax.enable_x64(True):
                folded = jax.random.fold_in(key.value, counter)
            g.stream = Const(folded, key.dtype), 0

    def seed_generators(self, keys) -> None:
        for (g, key, _), k in zip(self._saved, keys):
            g.stream = Const(k, key.dtype), 0

    def __exit__(self, *exc) -> None:
        _stepmode.state.active = None
        drawn = self.log.generators if exc[0] is None else {}  # a failed call draws nothing
        for g, key, counter in self._saved:  # one fresh key per call, as if drawn once
            g.stream = key, counter + (self.advance if id(g) in drawn else 0)


def _generators_in_use() -> list:
    return [g for g in list(_random.generators) if g is not None]


def _hyperparams_now() -> dict:
    return {(id(o), gi): o._hp(g) for o in list(_stepmode.optimizers)
            for gi, g in enumerate(o.param_groups)}


def _flush(log: _stepmode.StepLog, result, more: list = ()) -> None:
    """Compute every pending value the step leaves behind (and the nodes `more`), in one call."""
    pending = [n for n in more if n.value is None]
    pending += [c.node for c in log.writes.values() if c.node.value is None]
    pending += [t.grad._node for t in log.grad_owners.values()
                if t.grad is not None and t.grad._node.value is None]
    pending += [x._node for x in jax.tree.leaves(result, is_leaf=_is_tensor)
                if _is_tensor(x) and x._node.value is None]
    if pending:
        materialize(pending)


class _Plan:
    """The traced step: lifted state in, new state out, one jitted call."""

    def __init__(self, step: CompiledStep, spec, first: _stepmode.StepLog,
                 last: _stepmode.StepLog, guards: "_Guards") -> None:
        self.step = step
        self.spec = spec
        self.guards = guards
        _check_scalars(first.scalars, last.scalars)
        self.scalars = last.scalars
        self.writes = list(last.writes.values())
        write_ids = set(last.writes)
        self.read_write = [c for c in last.reads.values() if id(c) in write_ids]
        self.read_only = [c for c in last.reads.values() if id(c) not in write_ids]
        self.cells = self.read_write + self.read_only
        self.written = {id(c) for c in self.writes}
        self.grad_owners = list(last.grad_owners.values())
        self.arg_writes = last.arg_writes  # the arguments the step writes in place
        guards.leaves = [(t, t._requires_grad) for t in self.grad_owners]
        self.hyperparams = list(last.hyperparams)
        self.generators = list(last.generators.values())  # those the step draws from
        self._out = None
        # guards met in the step's programs are checked after each call (`checks.jit`); a step
        # with guards does not donate, so that a failed check leaves the state as it was
        self.per_process = last.per_process
        self.conditions = last.conditions
        self._jitted = _checks.jit(self._pure, per_process=self.per_process)
        self._donating = (_checks.jit(self._pure, donate_argnums=(0,))
                          if step.donate and not last.checked and self.per_process is None
                          else None)

    def __call__(self, leaves) -> Any:
        if any(read() != value for read, value in self.conditions):
            raise _stepmode.UntrackedState("branches on changed Python state in")
        pending = [c.node for c in self.cells if c.node.value is None]
        if pending:  # state changed by uncompiled code since the last call
            materialize(pending)
        jitted = self._jitted
        if self._donating is not None and unshared(self.read_write):
            jitted = self._donating
        with jax.enable_x64(True):
            outs, writes, grads, arg_writes = jitted(*self.arguments(leaves))
        for g in self.generators:
            key, counter = g.stream
            g.stream = key, counter + 1
        treedef, kinds, out_dtypes, write_dtypes, grad_dtypes = self._out
        for cell, value, dtype in zip(self.writes, writes, write_dtypes):
            cell.assign(Const(value, dtype))
        for i, value in zip(self.arg_writes, arg_writes):
            leaves[i]._storage.assign(Const(value, leaves[i]._node.dtype))
        written = self.written
        for t, g, dtype in zip(self.grad_owners, grads, grad_dtypes):
            if g is None:
                write_grad(t, None)
            elif t.grad is None or id(t.grad._storage) not in written:  # else written in place
                write_grad(t, Tensor._from_node(Const(g, dtype)))
        it = zip(outs, out_dtypes)
        return jax.tree.unflatten(treedef, [k if k is not None else
                                            Tensor._from_node(Const(*next(it))) for k in kinds])

    def arguments(self, leaves) -> tuple:
        """The program's arguments for a call on these (flattened) step arguments: the state it
        reads and writes, the state it only reads, the arguments, generator keys and
        hyperparameters."""
        return ([c.node.value for c in self.read_write], [c.node.value for c in self.read_only],
                [x._value() if _is_tensor(x) else None for x in leaves],
                [(g.stream[0].value, g.stream[1]) for g in self.generators],
                [o._hp_arrays(gi) for o, gi in self.hyperparams])

    def _pure(self, rw, ro, args, gens, hps):
        self.step.traces += 1
        log = _stepmode.StepLog(tracing=True)
        cells = self.cells
        saved = [c.node for c in cells]
        log.reads = {id(c): c for c in cells}
        log.writes = {id(c): c for c in self.writes}
        log.grad_owners = {id(t): t for t in self.grad_owners}
        log.generators = {id(g): g for g in self.generators}
        log.start = _stepmode.next_serial()  # every older cell is state: touched only if lifted
        log.lifted = {(id(o), gi): hp for (o, gi), hp in zip(self.hyperparams, hps)}
        log.per_process = self.per_process
        saved_grads = [t.grad for t in self.grad_owners]
        try:
            for c, v in zip(cells, list(rw) + list(ro)):
                c.assign(Const(v, c.node.dtype), bump=False)
            arg_leaves = [_arg_tensor(a, k) if a is not None else k
                          for a, k in zip(args, self.spec[2])]
            given = [x._node if a is not None else None for x, a in zip(arg_leaves, args)]
            call_args, call_kwargs = self.spec[0].unflatten(arg_leaves)
            with _StepContext(log, self.generators, advance=0) as ctx:  # the caller advances
                ctx.seed_generators([jax.random.fold_in(k, n) for k, n in gens])
                result = self.step.fn(*call_args, **call_kwargs)
                written = tuple(i for i, node in enumerate(given)
                                if node is not None and arg_leaves[i]._node is not node)
                if written != self.arg_writes:
                    raise _stepmode.UntrackedState("writes other arguments in")
                _flush(log, result, [arg_leaves[i]._node for i in written])
                # the trace computes pending in-place writes at its end, where the eager run
                # computed them with the backward, so the same numbers may come in another order
                _check_scalars(sorted(self.scalars, key=repr), sorted(log.scalars, key=repr))
            out_leaves, out_tree = jax.tree.flatten(result, is_leaf=_is_tensor)
            out_tensors = [x for x in out_leaves if _is_tensor(x)]
            grads = [None if t.grad is None else t.grad._node for t in self.grad_owners]
            self._out = (out_tree, [None if _is_tensor(x) else x for x in out_leaves],
                         [x.dtype for x in out_tensors], [c.node.dtype for c in self.writes],
                         [None if g is None else g.dtype for g in grads])
            # outputs first: the donated buffers then do not line up with the new state and XLA
            # copies some of it, but the state first (in place) made small steps slower on the
            # CPU (see benchmarks/README.md)
            return ([x._value() for x in out_tensors], [c.node.value for c in self.writes],
                    [None if g is None else g.value for g in grads],
                    [arg_leaves[i]._node.value for i in written])
        finally:
            for c, node in zip(cells, saved):
                c.assign(node, bump=False)
            for t, g in zip(self.grad_owners, saved_grads):
                write_grad(t, g)


_MISSING = object()
_BY_VALUE = (int, float, bool, complex, str, bytes, type(None))
_VALUE_TYPES = frozenset(_BY_VALUE)
_MAX_DEPTH = 4  # how deep functions reached through globals and closures are followed
_OBJECT_DEPTH = 3  # how deep attributes of plain objects (`cfg.train.optim.lr`) are guarded
_NOT_PLAIN = (type, types.ModuleType, types.FunctionType, types.MethodType,
              types.BuiltinFunctionType, functools.partial, Tensor)


class _Guards:
    """What a step's trace took from Python, read again before each compiled call.

    The variables the step's code names (globals, closure cells, a bound method's `self`),
    followed into the functions and methods among their values; for the modules and optimizers
    among them, the parameters they hold with their `requires_grad`, and the modules' flags and
    numbers; for plain objects (a dataclass, a `SimpleNamespace`, a `__slots__` class), the
    attributes the code names, `_OBJECT_DEPTH` levels deep; `too_deep` names those the code may
    read below that (the step then runs uncompiled). The values read are held, so that an
    identity compared is never a reused address.
    """

    def __init__(self, fn) -> None:
        self.places: list = []  # (namespace dict or cell, name)
        self.leaves: list = []  # the leaves whose .grad the step sets, set by the plan
        self.attrs: set = set()  # every name the code reads (attribute names among them)
        seen: set = set()
        self._collect(fn, 0, seen)
        self.attrs = frozenset(self.attrs)
        self.held: list = []
        self.too_deep: list = []  # attribute paths below `_OBJECT_DEPTH` the code may read
        self.values = self._read(self.held, self.too_deep)

    def _collect(self, fn, depth: int, seen: set) -> None:
        owner = getattr(fn, "__self__", None)  # a bound method: its object, then its function
        if owner is not None and not isinstance(owner, types.ModuleType) and id(fn) not in seen:
            seen.add(id(fn))
            self.places.append(({"self": owner}, "self"))
        fn = getattr(fn, "__func__", fn)
        code = getattr(fn, "__code__", None)
        if code is None or id(fn) in seen or depth > _MAX_DEPTH or _library(fn):
            return
        seen.add(id(fn))
        names = set(code.co_names)
        for c in code.co_consts:  # nested functions and comprehensions read globals too
            if isinstance(c, types.CodeType):
                names.update(c.co_names)
        self.attrs.update(names)
        ns = fn.__globals__
        for name in sorted(names):
            if name in ns:
                self.places.append((ns, name))
                self._collect(ns[name], depth + 1, seen)
        for var, cell in zip(code.co_freevars, fn.__closure__ or ()):
            self.places.append((cell, var))
            try:
                self._collect(cell.cell_contents, depth + 1, seen)
            except ValueError:  # an empty cell
                pass

    def _read(self, held: list | None = None, too_deep: list | None = None) -> list:
        out = []
        for place, name in self.places:
            if type(place) is types.CellType:
                try:
                    v = place.cell_contents
                except ValueError:
                    v = _MISSING
            else:
                v = place.get(name, _MISSING)
            out.append(_fingerprint(v, self.attrs, _OBJECT_DEPTH, held, too_deep, name))
        return out

    def hold(self) -> bool:
        """True when everything the trace took from Python is as it was."""
        if any(t._requires_grad != rg for t, rg in self.leaves):
            return False
        try:
            return self._read() == self.values
        except Exception:  # noqa: BLE001 (a tensor put where a number was: it changed)
            return False

    def changed_by_run(self, log) -> str | None:
        """Why the eager run just made has effects a trace would not repeat, or reads what no
        guard can check, if it does."""
        now = self._read()
        for (place, name), a, b in zip(self.places, self.values, now):
            if a != b:
                return (f"rebinds or changes the Python variable {name!r} it reads; a compiled "
                        "step would not repeat that")
        if self.too_deep:
            return (f"may read {self.too_deep[0]!r}, an attribute more than {_OBJECT_DEPTH} "
                    "levels deep, which no guard checks; a compiled step would not see it change "
                    "(keep it nearer the surface, or pass it as a tensor argument)")
        return None


def _library(fn) -> bool:
    """A function of tapegrad itself: what it reads is the library's own state (its caches, its
    registry), not the user's; the state a trace depends on is in the plan's key instead."""
    module = getattr(fn, "__module__", None) or ""
    return module == "tapegrad" or module.startswith("tapegrad.")


def _fingerprint(v, attrs: frozenset, depth: int, held: list | None,
                 too_deep: list | None = None, path: str = ""):
    """What a guard compares: numbers and strings by value; a module by its submodules and
    parameters (identity), their flags and the modules' numbers; an optimizer by its
    parameters; a list, tuple or dict by its items (an item is one level: `cfgs[0].lr` is
    compared as `cfg.train.lr` is); a plain object by the attributes in `attrs` (its `__dict__`
    or `__slots__`), `depth` levels deep; others by identity. `held` (when given) keeps what is
    compared by identity alive; `too_deep` (when given) collects the paths of attributes in
    `attrs` below `depth`, which are not compared."""
    t = type(v)
    if t in _VALUE_TYPES:
        return (t, v)
    if held is not None:
        held.append(v)
    if t is list or t is tuple or t is dict:  # flags, counters, schedules, configs
        keys = tuple(v) if t is dict else ()
        items = tuple(v.values()) if t is dict else tuple(v)
        kinds = tuple(map(type, items))
        if _VALUE_TYPES.issuperset(kinds) and _VALUE_TYPES.issuperset(map(type, keys)):
            return (id(v), keys, kinds, items)
        if held is not None:
            held.append((keys, items))
        keys = tuple(k if type(k) in _VALUE_TYPES else id(k) for k in keys)
        bare = all(k in _VALUE_TYPES or issubclass(k, _NOT_PLAIN) for k in set(kinds))
        if bare or depth < 0:  # nothing in it has attributes (a dataset of tensors stays
            if not bare and too_deep is not None:  # cheap), or it is below the guarded levels
                too_deep.append(f"{path}[...]")
            return (id(v), keys, tuple(map(id, items)))
        named = too_deep is not None  # paths only for the warning: not in a call's check
        return (id(v), keys, tuple(  # an item is a level: `cfgs[0].lr` is two
            _fingerprint(x, attrs, depth - 1, held, too_deep, f"{path}[{k!r}]" if named else "")
            for k, x in zip(keys or range(len(items)), items)))
    if t is set or t is frozenset:
        return (id(v), len(v))
    if isinstance(v, _NOT_PLAIN):
        return id(v)
    d = getattr(v, "__dict__", None)
    if type(d) is not dict:
        d = _slot_values(v)
        if d is None:
            return id(v)
    if "_modules" in d and "training" in d:
        out: list = []
        _module_fingerprint(v, out, set(), held)
        return tuple(out)
    if "param_groups" in d and "state" in d:
        groups = d["param_groups"]
        if held is not None:
            held.extend(p for g in groups for p in g["params"])
        return (id(v), tuple(tuple(id(p) for p in g["params"]) for g in groups))
    if depth > 0:
        named = too_deep is not None
        return (id(v), tuple((k, _fingerprint(x, attrs, depth - 1, held, too_deep,
                                              f"{path}.{k}" if named else ""))
                             for k, x in d.items() if k in attrs))
    if too_deep is not None:
        too_deep.extend(f"{path}.{k}" for k in d if k in attrs)
    return id(v)


@functools.cache
def _slot_names(cls: type) -> tuple:
    names: list = []
    for c in cls.__mro__:
        slots = c.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    return tuple(n for n in names if n not in ("__dict__", "__weakref__"))


def _slot_values(v) -> dict | None:
    """The attributes a `__slots__` object holds (None when it has no slots)."""
    names = _slot_names(type(v))
    if not names:
        return None
    return {n: getattr(v, n, _MISSING) for n in names}


def _module_fingerprint(m, out: list, seen: set, held: list | None) -> None:
    """Appends each submodule's identity, its numbers and flags (`training`, `p`, `eps`), each
    parameter's identity and `requires_grad` (a direct walk: `modules()` costs twice as much,
    and this runs every call)."""
    if id(m) in seen:
        return
    seen.add(id(m))
    if held is not None:
        held.append(m)
        held.extend(m._parameters.values())
    out.append(id(m))
    d = m.__dict__
    numbers = _NUMBERS.get(id(m))  # which attributes hold numbers, found once per module
    if numbers is None or held is not None:
        numbers = _NUMBERS[id(m)] = operator.itemgetter(
            "training", *(k for k, x in d.items() if type(x) in _VALUE_TYPES and k != "training"))
        weakref.finalize(m, _NUMBERS.pop, id(m), None)
    out.append(numbers(d))
    for p in m._parameters.values():
        if p is not None:
            out.append(id(p))
            out.append(p._requires_grad)
    for c in m._modules.values():
        if c is not None:
            _module_fingerprint(c, out, seen, held)


_NUMBERS: dict = {}  # id(module) -> reads its `training` and the attributes holding numbers


def _refuse_graph_outputs(log) -> None:
    """A plan returns plain values: a step that hands out a tensor for a later `backward()`
    cannot be compiled."""
    if log.grad_owners:
        return
    for x in jax.tree.leaves(log.result, is_leaf=_is_tensor):
        if _is_tensor(x) and x._requires_grad:
            raise RuntimeError(
                "tapegrad.compile: the step returns a tensor that requires grad but calls no "
                "backward(); a compiled step returns plain values, so the tensor would stop "
                "requiring grad. Compile the whole step (forward, backward(), optimizer.step()), "
                "or return a detached tensor.")


def _separate_arguments(leaves, written, state) -> bool:
    """Whether the arguments a step writes in place can be written back whole: none is a view
    or has views, shares its storage with another argument, or is state the step reads."""
    if not written:
        return True
    cells = [leaves[i]._storage for i in written]
    if any(c.view is not None or any(r() is not None for r in c.views or ()) for c in cells):
        return False
    ids = {id(c) for c in cells}
    if len(ids) < len(cells):
        return False
    others = {id(x._storage) for i, x in enumerate(leaves) if _is_tensor(x) and i not in written}
    return not (ids & others or ids & {id(c) for c in state})


def _arg_tensor(value, spec) -> Tensor:
    t = Tensor._from_array(value)
    if spec[2]:
        t.requires_grad_(True)
    return t


def _check_scalars(before: list, now: list) -> None:
    if len(before) != len(now):
        raise RuntimeError(
            "tapegrad.compile: the step ran differently from one call to the next (it used "
            f"{len(before)} and then {len(now)} Python numbers in its computations); a compiled "
            "step must repeat the same operations. Run it without tapegrad.compile.")
    for a, b in zip(before, now):
        if a != b and not (a != a and b != b):  # nan == nan here
            raise RuntimeError(
                f"tapegrad.compile: the Python number {a!r} used by the step changed to {b!r} "
                "between calls; a compiled step would freeze it. Pass it to the step as a "
                "tensor argument (e.g. tapegrad.tensor(value)), or keep learning rates in an "
                "optimizer's param_groups, which are passed in on every call.")
