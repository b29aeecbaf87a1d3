"""Tensors over several devices of one process: their values carry a `jax.sharding.Sharding`.

A known value is placed with `jax.device_put` (each device receives only its shard); a pending
or traced one (inside a backward's program, or `tapegrad.compile`) records the `shard` row,
`jax.lax.with_sharding_constraint`, so XLA's SPMD partitioner splits the program there. Either
way, every program that reads the tensor runs SPMD over the mesh and XLA inserts the
collectives; gradients flow through `shard` unchanged.

Over several processes (`jax.distributed`, a mesh spanning them) each process addresses only its
own devices. A parameter is laid out from each process's own copy (`place`, each taking its
shards, as FSDP2 chunks each rank's tensor); the wrappers' boundaries turn a process's tensor into
its part of a global array (`from_processes`) and a global result back into the process's part
(`to_process`), both differentiable, so the code around a sharded model sees local tensors, as
under torchrun.
"""
from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .._core.graph import Op, SAVES_NONE
from .._tensor.apply import apply
from .._tensor.inplace import set_value
from .._tensor.tensor import Tensor
from ..autograd.function import Function

shard_op = Op("shard", lambda x, *, sharding: jax.lax.with_sharding_constraint(x, sharding),
              saves=SAVES_NONE, grad_name="ToCopyBackward0")


def _known(t: Tensor):
    """`t`'s array when it is known and concrete (not pending, not traced), else None."""
    value = t._node.value
    return None if value is None or isinstance(value, jax.core.Tracer) else value


_TRACED = ("fully_shard and parallelize_module over a mesh spanning several processes run in "
           "uncompiled steps only, not in tapegrad.compile or another JAX trace: a traced step "
           "would take each process's tensors for the global ones (JAX's jit reads its "
           "arguments as global arrays), so each process would compute with other numbers. Run "
           "the step uncompiled (DistributedDataParallel's compiled steps do work across "
           "processes).")


def is_local(t: Tensor) -> bool:
    """Whether `t` lives in this process only (not part of an array spanning processes); its
    value is computed if pending, and a traced one raises (see `_TRACED`)."""
    value = t._value()
    if isinstance(value, jax.core.Tracer):
        raise RuntimeError(_TRACED)
    return value.is_fully_addressable


def shard(t: Tensor, sharding: NamedSharding) -> Tensor:
    """`t` laid out as `sharding` says (a new tensor; gradients flow back to `t`)."""
    value = _known(t)
    if value is not None and value.sharding == sharding:
        return t
    if value is not None and not t.requires_grad:
        return Tensor._from_array(jax.device_put(value, sharding))
    return apply(shard_op, t, sharding=sharding)


def place(t: Tensor, sharding: NamedSharding) -> None:
    """Lay `t`'s own storage out as `sharding` says (parameters and buffers, in place). Over
    several processes each process's devices take their shards of its own copy (no check that
    the copies agree: seed the processes alike, as PyTorch's FSDP2 and TP expect)."""
    value = t._value()
    if isinstance(value, jax.core.Tracer) or value.sharding == sharding:
        return
    if sharding.is_fully_addressable:
        set_value(t, jax.device_put(value, sharding))
    elif value.is_fully_addressable:
        set_value(t, jax.make_array_from_callback(value.shape, sharding,
                                                  lambda index: value[index]))
    else:
        set_value(t, jax.jit(lambda v: v, out_shardings=sharding)(value))


def spans_processes(mesh: Mesh) -> bool:
    """Whether `mesh` has devices of other processes (the wrappers then map local tensors)."""
    return mesh.is_multi_process


def _local_part(value: jax.Array) -> jax.Array:
    """This process's block of a global array: its addressable shards put together (one device
    each: that device's buffer, no copy)."""
    shards = value.addressable_shards
    if len(shards) == 1 or value.is_fully_replicated:
        return shards[0].data
    boxes = [[(i.start or 0, value.shape[d] if i.stop is None else i.stop)
              for d, i in enumerate(s.index)] for s in shards]
    low = [min(b[d][0] for b in boxes) for d in range(value.ndim)]
    high = [max(b[d][1] for b in boxes) for d in range(value.ndim)]
    out = np.empty([h - lo for lo, h in zip(low, high)], value.dtype)
    for s, box in zip(shards, boxes):
        out[tuple(slice(a - lo, b - lo) for (a, b), lo in zip(box, low))] = np.asarray(s.data)
    return jax.device_put(out, shards[0].device)


class _FromProcesses(Function):
    """Each process's tensor as its part of one global array laid out by `sharding` (the whole
    of it where `sharding` replicates over the processes); the gradient of each process's tensor
    is its part of the global gradient."""

    @staticmethod
    def forward(ctx, local: Tensor, sharding: NamedSharding, shape: tuple) -> Tensor:
        return Tensor._from_array(jax.make_array_from_process_local_data(
            sharding, np.asarray(local._value()), shape))

    @staticmethod
    def backward(ctx, grad: Tensor):
        return Tensor._from_array(_local_part(grad.detach()._value())), None, None


class _ToProcess(Function):
    """A global array's part in this process; its gradient, each process's local gradient (over
    the processes' batch blocks with `batch`: divided by their number, as data parallel ranks
    average) put together as the global gradient laid out as the array."""

    @staticmethod
    def forward(ctx, t: Tensor, batch: bool) -> Tensor:
        value = t._value()
        local = _local_part(value)
        ctx.sharding, ctx.shape = value.sharding, value.shape
        ctx.scale = local.shape[0] / value.shape[0] if batch and value.ndim else 1
        return Tensor._from_array(local)

    @staticmethod
    def backward(ctx, grad: Tensor):
        local = np.asarray(grad.detach()._value())
        if ctx.scale != 1:
            local = local * np.asarray(ctx.scale, local.dtype)
        return Tensor._from_array(jax.make_array_from_process_local_data(
            ctx.sharding, local, ctx.shape)), None


def _local_parts(mesh: Mesh, axes: tuple) -> int:
    """How many positions along the mesh `axes` this process's devices take."""
    index = [mesh.axis_names.index(a) for a in axes]
    here = np.argwhere(np.vectorize(lambda d: d.process_index == jax.process_index())(
        mesh.devices))
    return len({tuple(c[i] for i in index) for c in here})


def from_processes(x: Any, mesh: Mesh, axes: tuple, dim: int = 0) -> Any:
    """Every tensor in `x` (nested lists, tuples, dicts) that lives in this process taken as its
    part of a global tensor: split along `dim` over the mesh `axes` (each process's tensor is
    its block; the global dim is their concatenation), or, with no `axes` or a 0-d tensor, the
    same whole tensor in every process. A tensor already spanning the processes is laid out
    as `scatter` would."""
    if isinstance(x, Tensor):
        if not is_local(x):
            return scatter(x, mesh, axes, dim)
        shape, spec = list(x.shape), [None] * x.ndim
        if axes and x.ndim:
            mine = _local_parts(mesh, axes)
            if shape[dim] % mine:
                raise ValueError(f"this process's batch of {shape[dim]} rows cannot be split "
                                 f"evenly over its {mine} devices of the mesh's data axes (JAX "
                                 f"shards evenly only)")
            shape[dim] *= math.prod(mesh.shape[a] for a in axes) // mine
            spec[dim % x.ndim] = axes[0] if len(axes) == 1 else tuple(axes)
        return _FromProcesses.apply(x, NamedSharding(mesh, PartitionSpec(*spec)), tuple(shape))
    if isinstance(x, (list, tuple)):
        return type(x)(from_processes(v, mesh, axes, dim) for v in x)
    if isinstance(x, dict):
        return {k: from_processes(v, mesh, axes, dim) for k, v in x.items()}
    return x


def to_process(x: Any, batch: bool = False) -> Any:
    """Every tensor in `x` spanning several processes replaced by this process's part of it,
    differentiable: the local gradients make the global one (with `batch`, dim 0 is split over
    the processes as a data parallel batch, and their gradients are averaged as ranks' are)."""
    if isinstance(x, Tensor):
        return x if is_local(x) else _ToProcess.apply(x, batch)
    if isinstance(x, (list, tuple)):
        return type(x)(to_process(v, batch) for v in x)
    if isinstance(x, dict):
        return {k: to_process(v, batch) for k, v in x.items()}
    return x


def scatter(x: Any, mesh: Mesh, axes: tuple, dim: int = 0) -> Any:
    """Every tensor in `x` (nested lists, tuples, dicts) split along `dim` over the mesh `axes`
    and replicated over the others: a batch for data parallel programs. A tensor that does not
    split evenly (0-d, a ragged last batch) is replicated: the same numbers, without the split."""
    if isinstance(x, Tensor):
        parts = 1
        for a in axes:
            parts *= mesh.shape[a]
        if not axes or x.ndim == 0 or x.shape[dim] % parts:
            return shard(x, NamedSharding(mesh, PartitionSpec()))
        spec = [None] * x.ndim
        spec[dim % x.ndim] = axes[0] if len(axes) == 1 else tuple(axes)
        return shard(x, NamedSharding(mesh, PartitionSpec(*spec)))
    if isinstance(x, (list, tuple)):
        return type(x)(scatter(v, mesh, axes, dim) for v in x)
    if isinstance(x, dict):
        return {k: scatter(v, mesh, axes, dim) for k, v in x.items()}
    return x
