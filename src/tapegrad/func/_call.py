"""A module as a pure function of its parameters (`functional_call`), and an ensemble's state
stacked for `vmap` (`stack_module_state`).

`functional_call(model, params, args)` runs `model` with some of its parameters and buffers
replaced. The replacements may be tensors, or `jax.Array`s -- including the tracers of `jax.jit`,
`jax.grad` and `jax.vmap` -- so a model written as PyTorch code is a pure JAX function:

    def loss_fn(params, x, y):
        logits = tapegrad.func.functional_call(model, params, (tapegrad.as_tensor(x),))
        return F.cross_entropy(logits, tapegrad.as_tensor(y)).jax()

    params = {k: v.detach().jax() for k, v in model.named_parameters()}
    grads = jax.jit(jax.grad(loss_fn))(params, x, y)

`tapegrad.func.grad`/`vmap` apply the same JAX transformations to functions of tensors.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax

from .._core import stepmode as _stepmode
from .._core.compile import materialize
from .._tensor import random as _random
from .._tensor.inplace import restore
from .._tensor.tensor import Tensor
from . import _vmap


__all__ = ["functional_call", "stack_module_state"]


def functional_call(module, parameter_and_buffer_dicts: dict | Sequence[dict], args: Any = None,
                    kwargs: dict | None = None, *, tie_weights: bool = True,
                    strict: bool = False) -> Any:
    """Call `module` with the named parameters and buffers in `parameter_and_buffer_dicts`
    standing in for its own, as PyTorch's `torch.func.functional_call` does.

    Values may be tensors (gradients then flow to them, and in-place updates such as BatchNorm's
    running statistics land in them), arrays (`jax.Array`, tracers included; in-place updates of
    those are dropped) or None. A value the module reassigns (`self.b = self.b + 1`) is written
    back into the dict it came from. Names the module does not have are set as plain attributes
    for the call, unless `strict=True`, which also requires every parameter and buffer to be
    given. With `tie_weights=True`, a value given for one of several names sharing a tensor is
    used for all of them.
    """
    given = _merged(parameter_and_buffer_dicts)
    wrapped: dict = {}  # id(array) -> its tensor, so one array given twice stays one tensor
    values = {name: _as_value(v, wrapped) for name, (v, _) in given.items()}
    members = _members(module)
    if tie_weights:
        values = _tied(members, values)
    if strict:
        _check_strict(module, members, values)
    args = () if args is None else args if isinstance(args, tuple) else (args,)
    # tapegrad.compile lifts state and generators itself; a JAX transformation does not
    traced = not _stepmode.tracing() and (
        _staged() or _traced(list(values.values()) + jax.tree.leaves((args, kwargs))))
    kept = {name: t for name, t in members.items() if name not in values and t is not None}
    if traced:
        _settle(kept)
    before = {name: t._node for name, t in kept.items()}
    frozen = _random.frozen_draws
    # inside vmap(randomness="same"|"different") draws come from the key vmap chose
    if traced and frozen is None and not _vmap.drawing():
        _random.frozen_draws = _FROZEN_DRAWS
    swapped, changed = [], []
    try:
        for name, value in values.items():
            swapped.append((name,) + _swap(module, name, value))
        out = module(*args, **(kwargs or {}))
        for name, _, table, attr, _ in swapped:  # PyTorch hands reassigned values back
            if table is not None and name in given and table[attr] is not values[name]:
                given[name][1][name] = table[attr]
    finally:
        _random.frozen_draws = frozen
        for _, owner, table, attr, old in reversed(swapped):
            if table is None:
                object.__delattr__(owner, attr)
            else:
                table[attr] = old
        if traced:
            changed = _restore(kept, before)
    if changed:
        raise RuntimeError(
            f"functional_call under a JAX transformation updated the module's own {changed} in "
            "place (BatchNorm running statistics?); traced values cannot be kept in the module. "
            "Pass them in parameter_and_buffer_dicts as tensors (tapegrad.as_tensor(array)) to "
            "receive the updates there, or call model.eval().")
    return out


_FROZEN_DRAWS = (
    "functional_call under a JAX transformation drew random numbers (dropout in training mode?): "
    "tapegrad's generator key would be frozen into the trace, repeating one draw on every call. "
    "Call model.eval(), or run the model outside jax.jit/grad/vmap.")


def stack_module_state(models) -> tuple[dict, dict]:
    """The parameters and buffers of same-class `models`, each stacked along a new leading
    dimension, as `(params, buffers)` dicts: the ensemble's state for
    `vmap(functional_call, in_dims=(0, 0, None))`. Stacked parameters are new leaves that
    require grad when the models' parameters do, as in PyTorch."""
    models = list(models)
    if len(models) == 0:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or all(not m.training for m in models)):
        raise RuntimeError(
            "stack_module_state: Expected all models to have the same training/eval mode.")
    if not all(type(m) is type(models[0]) for m in models):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")
    all_params = [dict(m.named_parameters()) for m in models]
    all_buffers = [dict(m.named_buffers()) for m in models]
    params = {k: _stacked_leaf([p[k] for p in all_params], k) for k in all_params[0]}
    buffers = {k: _stacked_leaf([b[k] for b in all_buffers], k) for k in all_buffers[0]}
    return params, buffers


def _stacked_leaf(tensors: list, name: str) -> Tensor:
    grads = {t.requires_grad for t in tensors}
    if len(grads) > 1:
        raise RuntimeError(f"Expected {name} from each model to have the same .requires_grad")
    stacked = jax.numpy.stack([t.detach().jax() for t in tensors])
    return Tensor._from_array(stacked, requires_grad=grads.pop())


def _as_value(v, wrapped: dict):
    if v is None or isinstance(v, Tensor):
        return v
    t = wrapped.get(id(v))
    if t is None:
        t = wrapped[id(v)] = Tensor._from_array(jax.numpy.asarray(v))
    return t


def _staged() -> bool:
    """True inside `jax.jit` (or another staging transformation): even new arrays are tracers."""
    return isinstance(jax.numpy.zeros(()), jax.core.Tracer)


def _traced(leaves) -> bool:
    for x in leaves:
        value = x._node.value if isinstance(x, Tensor) else x
        if isinstance(value, jax.core.Tracer):
            return True
    return False


def _settle(kept: dict) -> None:
    """Compute the module's pending state (say, running statistics of an earlier training-mode
    call) as concrete values, so computing it inside the trace cannot put tracers in it."""
    pending = [t._node for t in kept.values() if t._node.value is None]
    if pending:
        with jax.ensure_compile_time_eval():
            materialize(pending)


def _restore(kept: dict, before: dict) -> list:
    """Put back the module's own state a traced call changed; returns the names changed."""
    changed = [name for name, t in kept.items() if t._node is not before[name]]
    for name in changed:
        restore(kept[name], before[name])
    return changed


def _merged(dicts) -> dict:
    """name -> (value, the dict it came from)."""
    dicts = [dicts] if isinstance(dicts, dict) else list(dicts)
    merged: dict = {}
    repeated = []
    for d in dicts:
        for name, value in d.items():
            if name in merged:
                repeated.append(name)
            merged[name] = (value, d)
    if repeated:
        raise ValueError(f"{sorted(set(repeated))} appeared in multiple dictionaries; behavior of "
                         "functional call is ambiguous")
    return merged


def _members(module) -> dict:
    """Every name of a parameter or buffer (tied ones under each of their names) -> the tensor."""
    named = dict(module.named_parameters(remove_duplicate=False))
    named.update(module.named_buffers(remove_duplicate=False))
    return named


def _tied(members: dict, values: dict) -> dict:
    """Give every name of a tied tensor the value given for one of them."""
    groups: dict = {}
    for name, t in members.items():
        groups.setdefault(id(t), []).append(name)
    out = dict(values)
    for names in groups.values():
        given = [n for n in names if n in values]
        if len(names) < 2 or not given:
            continue
        if len({id(values[n]) for n in given}) > 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(given)}, which "
                             "are tied. Consider using tie_weights=False")
        for n in names:
            out[n] = values[given[0]]
    return out


def _check_strict(module, members: dict, values: dict) -> None:
    unexpected = sorted(n for n in values if n not in members)
    missing = sorted(n for n in members if n not in values)
    if unexpected or missing:
        lines = [f"Error(s) in reparametrizing for {type(module).__name__}:"]
        if unexpected:
            lines.append("\tUnexpected key(s): " + ", ".join(f"'{n}'" for n in unexpected) + ".")
        if missing:
            lines.append("\tMissing key(s): " + ", ".join(f"'{n}'" for n in missing) + ".")
        raise RuntimeError("\n".join(lines))


def _swap(module, name: str, value: Tensor | None) -> tuple:
    """Put `value` where `name` lives; returns what restores it."""
    prefix, _, attr = name.rpartition(".")
    owner = module.get_submodule(prefix) if prefix else module
    for table in (owner._parameters, owner._buffers):
        if attr in table:
            old = table[attr]
            table[attr] = value
            return owner, table, attr, old
    if hasattr(owner, attr):
        raise TypeError(f"functional_call: {name!r} names an attribute of the module that is not a "
                        "parameter or buffer, so it cannot be replaced")
    object.__setattr__(owner, attr, value)
    return owner, None, attr, None
