"""Tensors over several devices of one process: their values carry a `jax.sharding.Sharding`.

A known value is placed with `jax.device_put` (each device receives only its shard); a pending
or traced one (inside a backward's program, or `tapegrad.compile`) records the `shard` row,
`jax.lax.with_sharding_constraint`, so XLA's SPMD partitioner splits the program there. Either
way, every program that reads the tensor runs SPMD over the mesh and XLA inserts the
collectives; gradients flow through `shard` unchanged.
"""
from __future__ import annotations

import jax
from jax.sharding import NamedSharding

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

