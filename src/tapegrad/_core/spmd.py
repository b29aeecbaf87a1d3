"""Per-process programs: each process of a job runs one program on its own values, and
collectives inside it (`jax.lax.pmean(x, axis)`) reduce over the processes.

This is the multi-controller form of a compiled DDP step: PyTorch's DDP runs the same step in
every process, each on its own batch and its own copy of the state, and averages gradients in an
all-reduce. Under `jax.shard_map` over a 1-D mesh of one device per process, a process's value
of shape `(n, ...)` is its block of a global `(world * n, ...)` array (no copy), the body sees
the block, and XLA emits the collectives between the processes.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def per_process(fn: Callable, mesh: Mesh) -> Callable:
    """`fn` (this process's arrays in and out, any pytree) as one program every process runs on
    its own arguments; inside it the mesh's one axis names the processes."""
    (axis,) = mesh.axis_names
    spec = PartitionSpec(axis)
    stacked = NamedSharding(mesh, spec)
    here = next(d for d in mesh.devices.flat if d.process_index == jax.process_index())
    outs: dict = {}  # (input structure) -> (output treedef, which outputs are 0-d)

    def to_global(x) -> jax.Array:
        x = jnp.asarray(x)
        if x.ndim == 0:  # a block needs a dim to stack along
            x = x.reshape(1)
        if x.devices() != {here}:
            x = jax.device_put(x, here)
        return jax.make_array_from_single_device_arrays(
            (mesh.size * x.shape[0],) + x.shape[1:], stacked, [x])

    def program(scalars: tuple, treedef, blocks: list) -> list:
        def body(blocks):
            leaves = [b.reshape(()) if s else b for b, s in zip(blocks, scalars)]
            out_leaves, out_tree = jax.tree.flatten(fn(*jax.tree.unflatten(treedef, leaves)))
            outs[(scalars, treedef)] = out_tree, [jnp.ndim(x) == 0 for x in out_leaves]
            return [jnp.reshape(x, (1,)) if jnp.ndim(x) == 0 else x for x in out_leaves]
        return jax.shard_map(body, mesh=mesh, in_specs=(spec,), out_specs=spec,
                             check_vma=False)(blocks)

    jitted = jax.jit(program, static_argnums=(0, 1))

    def arguments(args) -> tuple:
        leaves, treedef = jax.tree.flatten(args)
        return tuple(jnp.ndim(x) == 0 for x in leaves), treedef, [to_global(x) for x in leaves]

    def call(*args):
        scalars, treedef, blocks = arguments(args)
        results = jitted(scalars, treedef, blocks)
        out_tree, out_scalars = outs[(scalars, treedef)]
        local = [r.addressable_data(0) for r in results]
        return jax.tree.unflatten(out_tree, [x.reshape(()) if s else x
                                             for x, s in zip(local, out_scalars)])

    call._cache_size = jitted._cache_size
    call.lower = lambda *args: jitted.lower(*arguments(args))
    return call
