"""`Optimizer`: PyTorch's optimizer API over optax transforms.

Each optimizer class says which optax `GradientTransformation` reproduces its update rule
(`_transform`), which group entries are numeric hyperparameters (`_hyperparams`, passed to the
compiled update as arguments, so `param_groups[0]["lr"] = ...` takes effect at once and never
recompiles) and which are structural flags (`_flags`, part of the compile key).

A step applies ONE compiled program per parameter group: every parameter that has a `.grad`
gets its own optax state (PyTorch keeps state per parameter, `step` included), and the update of
all of them is traced into a single `jax.jit` call. The per-parameter state lives in
`self.state[param]` under PyTorch's names (`exp_avg`, `momentum_buffer`, ...) as tensors updated
in place, so `state_dict()` has PyTorch's layout.

`accumulation_steps=k` (any optimizer) wraps the transform in `optax.MultiSteps`: `step()` may be
called every micro-batch; gradients are averaged and parameters move every k-th call.
"""
from __future__ import annotations

import copy
import functools
from collections import defaultdict
from typing import Any, Callable, Iterable

import jax
import optax

from .._autograd.grads import zero_grads
from .._core import compile as _compile, grad_mode as _grad_mode, stepmode as _stepmode
from .._tensor.hooks import HookDict, RemovableHandle
from .._tensor.inplace import set_value
from .._tensor.tensor import Tensor


ParamsT = Iterable[Tensor] | Iterable[dict]


class _RequiredParameter:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _scalar(v):
    if isinstance(v, Tensor):
        return float(v.item())
    if isinstance(v, (tuple, list)):
        return tuple(_scalar(x) for x in v)
    return float(v)


# -- the per-parameter state as a named, flat dict ------------------------------------------------

def _named_leaves(state, out: list) -> list:
    """PyTorch's state key of each leaf of an optax state, in `jax.tree` flattening order."""
    if state is None:
        return out
    fields = getattr(state, "_fields", None)
    if fields is not None:
        for name, sub in zip(fields, state):
            if isinstance(sub, tuple):
                _named_leaves(sub, out)
            elif sub is not None:
                out.append(name)
    elif isinstance(state, (tuple, list)):
        for sub in state:
            _named_leaves(sub, out)
    else:
        raise TypeError(f"unexpected optax state leaf {state!r}")
    return out


class _Program:
    """The compiled update for one optimizer configuration (transform, flags, accumulation)."""

    def __init__(self, build: Callable, skeleton_hp: dict) -> None:
        self.build = build
        abstract = jax.ShapeDtypeStruct((), jax.numpy.float32)
        with jax.enable_x64(True):
            skeleton = jax.eval_shape(lambda p: build(skeleton_hp, p.dtype).init(p), abstract)
        self.treedef = jax.tree.structure(skeleton)
        self.names = tuple(_named_leaves(skeleton, []))
        self.name_set = frozenset(self.names)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"optimizer state keys are not unique: {self.names}")
        # run once per parameter set: compiled quickly (a full compile would cost 3x for nothing)
        self.init = _compile.cache.jit(self._init, compiler_options=_compile.QUICK_OPTIONS)

    def update(self, params: list, grads: list, states: list, hp: dict, donate: bool) -> tuple:
        """`_run` as one program per parameter set (their shapes and dtypes), in the program
        cache's tiers: a new set whose parameters were all met before in other sets is updated
        parameter by parameter, on executables shared by every set. `donate`: reuse the state's
        buffers (donating the parameters' too was measured on CPU and was no faster)."""
        cache = _compile.cache
        jit_kwargs = {"donate_argnums": (2,)} if donate else {}
        keys = [((p.shape, p.dtype, g.shape, g.dtype), tuple((x.shape, x.dtype) for x in s))
                for p, g, s in zip(params, grads, states)]
        rows = [("update", self, donate, k) for k in keys]

        def build():
            cost = _compile.Cost(len(params), frozenset(rows))
            return cache.tiered(self._run, cost, **jit_kwargs)
        program = cache.get(("update", self, donate, tuple(keys)), build,
                            op_by_op=not _stepmode.tracing() and _compile.concrete(params))
        if program is not None:
            return program(params, grads, states, hp)
        new_params, new_states = [], []
        for row, p, g, s in zip(rows, params, grads, states):
            one = cache.get(row, lambda: cache.jit(
                self._run, compiler_options=_compile.QUICK_OPTIONS, **jit_kwargs))
            (p,), (s,) = one([p], [g], [s], hp)
            new_params.append(p)
            new_states.append(s)
        return new_params, new_states

    def _init(self, params, hp):
        out = []
        for p in params:
            pr = _as_real(p)
            leaves = jax.tree.leaves(self.build(hp, pr.dtype).init(pr))
            out.append([_like_param(x, p) for x in leaves])
        return out

    def _run(self, params, grads, states, hp):
        # Parameters first: the donated state buffers then go to the new parameters and XLA copies
        # the state. State first updates it in place, which was faster alone but slower in the
        # pipelined eager loop (see benchmarks/README.md): measure before changing the order.
        new_params, new_states = [], []
        for p, g, leaves in zip(params, grads, states):
            pr, gr = _as_real(p), _as_real(g)  # complex parameters update as (re, im) pairs
            state = jax.tree.unflatten(self.treedef, [_as_real(x) for x in leaves])
            updates, s = self.build(hp, pr.dtype).update(gr, state, pr)
            new_params.append(_like_param(optax.apply_updates(pr, updates), p))
            new_states.append([_like_param(x, p) for x in jax.tree.leaves(s)])
        return new_params, new_states


def _donatable(params: list, states: list) -> bool:
    """Whether the update may reuse the state's buffers: arrays nothing else refers to
    (`_compile.unshared`), and no storage also passed as a parameter or gradient."""
    state_cells = [t._storage for ts in states for t in ts]
    cells = state_cells + [p._storage for p in params] + [p.grad._storage for p in params]
    return len({id(c) for c in cells}) == len(cells) and _compile.unshared(state_cells)


def _as_real(x):
    """PyTorch's `view_as_real` for complex arrays (a trailing axis of 2); others unchanged."""
    if jax.numpy.iscomplexobj(x):
        return jax.numpy.stack([x.real, x.imag], axis=-1)
    return x


def _like_param(x, p):
    """Back to a complex array where `p` is complex and `x` is its real view (state included)."""
    if jax.numpy.iscomplexobj(p) and x.shape == p.shape + (2,):
        return jax.lax.complex(x[..., 0], x[..., 1])
    return x


def _with_step_hooks(step: Callable) -> Callable:
    """Run the optimizer's step pre/post hooks around `step` (once, however deep super() goes)."""
    @functools.wraps(step)
    def hooked(self, *args, **kwargs):
        if getattr(self, "_in_step", False):
            return step(self, *args, **kwargs)
        self._in_step = True
        try:
            for hook in list(getattr(self, "_step_pre_hooks", {}).values()):
                out = hook(self, args, kwargs)
                if out is not None:
                    if not (isinstance(out, tuple) and len(out) == 2):
                        raise RuntimeError("optimizer step pre hook must return None or a tuple "
                                           f"of (new_args, new_kwargs), but got {out!r}")
                    args, kwargs = out
            result = step(self, *args, **kwargs)
            for hook in list(getattr(self, "_step_post_hooks", {}).values()):
                hook(self, args, kwargs)
            return result
        finally:
            self._in_step = False
    hooked._hooked = True
    return hooked


# Compiled updates, shared by every optimizer of the same class and configuration.
_PROGRAMS: dict = {}


class Optimizer:
    """Base class of all optimizers: parameter groups, per-parameter state, `step()`.

    Subclasses set `_hyperparams` (numeric group entries, traced), `_flags` (structural group
    entries, static) and implement `_transform(hp, flags)` returning an optax transformation.
    """

    _hyperparams: tuple = ()
    _flags: tuple = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_hooked", False):
            cls.step = _with_step_hooks(step)

    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """Call `hook(optimizer, args, kwargs)` before each `step()`; it may return new
        `(args, kwargs)`."""
        if "_step_pre_hooks" not in self.__dict__:
            self._step_pre_hooks = HookDict()
        handle = RemovableHandle(self._step_pre_hooks)
        self._step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """Call `hook(optimizer, args, kwargs)` after each `step()`."""
        if "_step_post_hooks" not in self.__dict__:
            self._step_post_hooks = HookDict()
        handle = RemovableHandle(self._step_post_hooks)
        self._step_post_hooks[handle.id] = hook
        return handle

    def __init__(self, params: ParamsT, defaults: dict[str, Any], *,
                 accumulation_steps: int = 1) -> None:
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}")
        if not isinstance(accumulation_steps, int) or accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be a positive int, got "
                             f"{accumulation_steps!r}")
        if defaults.get("differentiable"):
            raise RuntimeError(
                f"{type(self).__name__}(differentiable=True) is not supported: tapegrad runs the "
                "update as one compiled JAX call outside autograd. To differentiate through "
                "optimization steps, write the update with tensor ops in your own loop.")
        self.defaults = defaults
        self.accumulation_steps = accumulation_steps
        self.state: defaultdict = defaultdict(dict)
        self._hp_cache: dict = {}  # group index -> (hyperparameters, as device scalars)
        self.param_groups: list[dict] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)
        # Compute lazily initialised parameters now, so the first step's program is the same as
        # every later step's (one compile for the loop, not two).
        pending = [p._node for g in self.param_groups for p in g["params"]
                   if p._node.value is None]
        if pending:
            _compile.materialize(pending)
        _stepmode.optimizers.add(self)  # tapegrad.compile passes hyperparameters in per call

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {group[k]}" for k in sorted(group) if k != "params")
        return "\n".join(lines) + "\n)"

    # -- parameter groups -------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones from defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but "
                            "the ordering of tensors in sets will change between runs. Please use "
                            "a list instead.")
        else:
            param_group["params"] = list(params)
        for p in param_group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                + type(p).__name__)
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError("parameter group didn't specify a value of required optimization "
                                 f"parameter {name}")
            param_group.setdefault(name, default)
        if len({id(p) for p in param_group["params"]}) != len(param_group["params"]):
            import warnings
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in "
                          "future, this will cause an error", UserWarning, stacklevel=3)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in param_group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # -- gradients --------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters (to None by default, as PyTorch)."""
        zero_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    # -- the update -------------------------------------------------------------------------------
    @classmethod
    def _transform(cls, hp: dict, flags: dict) -> optax.GradientTransformation:
        raise NotImplementedError

    def _group_flags(self, group: dict) -> dict:
        return {name: group[name] for name in self._flags}

    def _program(self, group: dict) -> _Program:
        flags = self._group_flags(group)
        key = (type(self), tuple(flags.items()), self.accumulation_steps)
        prog = _PROGRAMS.get(key)
        if prog is None:
            k = self.accumulation_steps
            transform = self._transform

            def build(hp, dtype):
                tx = transform(hp, flags)
                if k == 1:
                    return tx
                # gradients are averaged in at least float32 (optax's default accumulator)
                acc_dtype = jax.numpy.promote_types(dtype, jax.numpy.float32)
                return optax.MultiSteps(tx, every_k_schedule=k, accumulator_dtype=acc_dtype)
            prog = _PROGRAMS[key] = _Program(build, self._hp(group))
        return prog

    def _hp(self, group: dict) -> dict:
        return {name: _scalar(group[name]) for name in self._hyperparams}

    def _hp_arrays(self, index: int) -> dict:
        """Group `index`'s hyperparameters as device scalars, made again only when one changes.

        A Python float passed to a jitted call is copied to the device on every call; weakly
        typed arrays behave the same inside the program and cost nothing to pass again.
        """
        values = self._hp(self.param_groups[index])
        hit = self._hp_cache.get(index)
        if hit is None or hit[0] != values:
            with jax.enable_x64(True):
                # device_put keeps a Python number weakly typed, as jnp.asarray does, without
                # the program jnp.asarray compiles for its first scalar
                hit = self._hp_cache[index] = (values, jax.tree.map(jax.device_put, values))
        return hit[1]

    @_grad_mode.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a `.grad`; `closure` re-evaluates the loss first."""
        self._opt_called = True  # schedulers check that step() came first
        loss = None
        if closure is not None:
            with _grad_mode.enable_grad():
                loss = closure()
        for group in self.param_groups:
            active = [p for p in group["params"] if p.grad is not None]
            if active:
                self._update_group(group, active)
        return loss

    step = _with_step_hooks(step)

    def _update_group(self, group: dict, active: list) -> None:
        pending = [n for t in active for n in (t._node, t.grad._node) if n.value is None]
        if pending:
            _compile.materialize(pending)  # one call for every pending value, not one each
        prog = self._program(group)
        index = next(i for i, g in enumerate(self.param_groups) if g is group)
        hp = _stepmode.hyperparams(self, index, self._hp_arrays(index))
        # PyTorch creates state lazily, at a parameter's first step; a loaded state may also lack
        # keys this configuration keeps (say, `accumulation_steps` added): those start fresh.
        fresh = [p for p in active if not prog.name_set <= self.state.get(p, {}).keys()]
        with jax.enable_x64(True):
            if fresh and prog.names:
                self._init_state(prog, fresh, hp)
            tensors = [[self.state[p][n] for n in prog.names] for p in active]
            states = [[t._value() for t in ts] for ts in tensors]
            params = [p._value() for p in active]
            grads = [p.grad._value() for p in active]
            new_params, new_states = prog.update(params, grads, states, hp,
                                                 donate=_donatable(active, tensors))
        for p, value, ts, leaves in zip(active, new_params, tensors, new_states):
            set_value(p, value)
            for t, leaf in zip(ts, leaves):
                set_value(t, leaf)

    def _init_state(self, prog: _Program, fresh: list, hp: dict) -> None:
        for p, leaves in zip(fresh, prog.init([p._value() for p in fresh], hp)):
            st = self.state[p]
            for n, v in zip(prog.names, leaves):
                if n not in st:
                    st[n] = Tensor._from_array(v)

    # -- state_dict -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """`{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}` as PyTorch."""
        index: dict = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state.get(p)
                if st and index[id(p)] not in state:
                    state[index[id(p)]] = dict(st)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load the state and hyperparameters `state_dict()` saved (this or a like optimizer)."""
        state_dict = dict(state_dict)
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the "
                             "size of optimizer's group")
        id_map = {old: p for g, s in zip(groups, saved_groups)
                  for old, p in zip(s["params"], g["params"])}
        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            key = int(k) if isinstance(k, str) and k.isdigit() else k
            if key in id_map:
                p = id_map[key]
                state[p] = self._load_param_state(p, v)
            else:
                state[key] = v
        new_groups = []
        for g, s in zip(groups, saved_groups):
            s["params"] = g["params"]
            for name, default in self.defaults.items():
                s.setdefault(name, default)
            new_groups.append(s)
        self.state = state
        self.param_groups = new_groups

    def _load_param_state(self, p: Tensor, saved: dict) -> dict:
        """A saved per-parameter state as this optimizer keeps it: own tensors, param's dtype."""
        out = {}
        for name, v in saved.items():
            if isinstance(v, Tensor):
                value = v._value()
                if name != "step" and name != "mu_product" and value.dtype != p._value().dtype \
                        and jax.numpy.issubdtype(value.dtype, jax.numpy.floating):
                    value = value.astype(p._value().dtype)
                with jax.enable_x64(True):  # own copy: the update may donate state buffers
                    out[name] = Tensor._from_array(jax.numpy.array(value, copy=True))
            elif name == "step" and isinstance(v, (int, float)):  # an old-style number
                out[name] = Tensor._from_array(jax.numpy.asarray(v, jax.numpy.float32))
            else:
                out[name] = v
        return self._complete_state(out)

    def _complete_state(self, state: dict) -> dict:
        """Fill in state keys PyTorch does not save (a hook for subclasses)."""
        return state
