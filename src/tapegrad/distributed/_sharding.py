"""Tensors over several devices of one process: their values carry a `jax.sharding.Sharding`.

A known value is placed with `jax.device_put` (each device receives only its shard); a pending
or traced one (inside a backward's program, or `tapegrad.compile`) records the `shard` row,
`jax.lax.with_sharding_constraint`, so XLA's SPMD partitioner splits the program there. Either
way, every program that reads the tensor runs SPMD over the mesh and XLA inserts the
collectives; gradients flow through `shard` unchanged.
"""
from __future__ import annotations

import jax
from typing import Any

from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .._core.graph import Op, SAVES_NONE
from .._tensor.apply import apply
from .._tensor.inplace import set_value
from .._tensor.tensor import Tensor

shard_op = Op("shard", lambda x, *, sharding: jax.lax.with_sharding_constraint(x, sharding),
              saves=SAVES_NONE, grad_name="ToCopyBackward0")


def _known(t: Tensor):
    """`t`'s array when it is known and concrete (not pending, not traced), else None."""
    value = t._node.value
    return None if value is None or isinstance(value, jax.core.Tracer) else value


def shard(t: Tensor, sharding: NamedSharding) -> Tensor:
    """`t` laid out as `sharding` says (a new tensor; gradients flow back to `t`)."""
    value = _known(t)
    if value is not None and value.sharding == sharding:
        return t
    if value is not None and not t.requires_grad:
        return Tensor._from_array(jax.device_put(value, sharding))
    return apply(shard_op, t, sharding=sharding)


def place(t: Tensor, sharding: NamedSharding) -> None:
    """Lay `t`'s own storage out as `sharding` says (parameters and buffers, in place)."""
    value = t._value()
    if not isinstance(value, jax.core.Tracer) and value.sharding != sharding:
        set_value(t, jax.device_put(value, sharding))



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
