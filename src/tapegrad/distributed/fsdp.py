"""`tapegrad.distributed.fsdp` (`torch.distributed.fsdp`): FSDP2's `fully_shard`.

`fully_shard(model)` lays every parameter out sharded over the mesh's data axis (a DTensor
parameter, `Shard(0)` where dim 0 splits evenly) and its buffers replicated, and the outermost
sharded module splits its tensor inputs along dim 0 over the same axis. Then the forward, the
backward and the optimizer's update are the usual programs over sharded values: XLA's SPMD
partitioner all-gathers the weights where they are used and reduce-scatters their gradients,
which keep their parameter's sharding, and so does the optimizer state made from them. So
each device holds only its shard of the parameters, gradients, optimizer state and batch, and
the numbers are those of one device on the whole batch.

Over a mesh spanning several processes (torchrun, `jax.distributed`), each process feeds its own
batch: the outermost sharded module takes it as the process's block of the global batch and
returns the process's rows of the output, whose gradients are averaged over the processes as
FSDP's reduce-scatter averages over ranks (see docs/distributed.md). Such steps run uncompiled.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import jax

from .._core import device as _device
from ..nn.modules.module import Module
from . import _sharding
from .device_mesh import DeviceMesh, init_device_mesh
from .tensor._api import DTensor, Replicate, Shard, replace_parameters

__all__ = ["FSDPModule", "MixedPrecisionPolicy", "OffloadPolicy", "fully_shard"]

_depth = threading.local()  # how many sharded modules' forwards are running


class MixedPrecisionPolicy:
    """Accepted with its defaults only (parameters and gradients stay in their own dtype)."""

    def __init__(self, param_dtype=None, reduce_dtype=None, output_dtype=None,
                 cast_forward_inputs: bool = True) -> None:
        if param_dtype is not None or reduce_dtype is not None or output_dtype is not None:
            raise NotImplementedError("fully_shard(mp_policy=...) with dtypes is not supported: "
                                      "cast the model (model.to(dtype)) instead")


class OffloadPolicy:
    """No offloading (PyTorch's default)."""


class FSDPModule:
    """The class `fully_shard` mixes into a module (`FSDPLinear` for a `Linear`, as PyTorch)."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        depth = getattr(_depth, "n", 0)
        mesh = self._fsdp_mesh
        processes = depth == 0 and _sharding.spans_processes(mesh.jax_mesh)
        if processes:  # each process's batch is its block of the global batch
            args, kwargs = _sharding.from_processes((args, kwargs), mesh.jax_mesh, mesh._dims)
        elif depth == 0:  # the outermost sharded module splits the batch
            args, kwargs = _sharding.scatter((args, kwargs), mesh.jax_mesh, mesh._dims)
        _depth.n = depth + 1
        try:
            out = super().forward(*args, **kwargs)
        finally:
            _depth.n = depth
        if processes:  # each process's rows of the output, as each rank's under torchrun
            out = _sharding.to_process(_sharding.scatter(out, mesh.jax_mesh, mesh._dims),
                                       batch=True)
        return out

    def reshard(self) -> None:
        """Nothing to free: XLA gathers each weight inside the program that uses it."""

    def unshard(self, async_op: bool = False) -> None:
        """Nothing to gather ahead: XLA gathers each weight inside the program that uses it."""

    def set_requires_gradient_sync(self, requires_gradient_sync: bool, *,
                                   recurse: bool = True) -> None:
        if not requires_gradient_sync:
            raise NotImplementedError(
                "set_requires_gradient_sync(False) is not available: gradients are reduced "
                "inside the compiled backward; accumulate over micro-batches instead "
                "(backward() several times, then optimizer.step())")


def _default_mesh() -> DeviceMesh:
    return init_device_mesh(_device.default_device().type, (len(jax.devices(
        _device.default_jax_device().platform)),))


def _placement(p, mesh: DeviceMesh, fn: Callable | None):
    chosen = fn(p) if fn is not None else None
    if chosen is not None:
        return chosen
    parts = mesh.size()
    taken = p.placements if isinstance(p, DTensor) and p.device_mesh.jax_mesh == mesh.jax_mesh \
        else ()
    for d, n in enumerate(p.shape):
        already = 1
        for s, size in zip(taken, p.device_mesh.shape if taken else ()):
            if isinstance(s, Shard) and s.dim == d:
                already *= size
        if n % (parts * already) == 0:
            return Shard(d)
    return Replicate()


def fully_shard(module, *, mesh: DeviceMesh | None = None, reshard_after_forward=None,
                shard_placement_fn: Callable | None = None, mp_policy=None,
                offload_policy=None, ignored_params: set | None = None):
    """Shard `module`'s parameters over `mesh` (default: a 1-D mesh of every device), in place;
    returns `module`, now also an `FSDPModule`. Call it on submodules first, then on the root;
    build the optimizer afterwards (the parameters are new `DTensor` parameters, as in
    PyTorch). A 2-D mesh (HSDP) replicates over its first dimension and shards over the
    second; the batch splits over both. A parameter whose dim 0 does not split evenly is sharded along its first dim that
    does (JAX shards evenly only), else replicated."""
    if isinstance(module, (list, tuple)):
        return [fully_shard(m, mesh=mesh, reshard_after_forward=reshard_after_forward,
                            shard_placement_fn=shard_placement_fn, mp_policy=mp_policy,
                            offload_policy=offload_policy, ignored_params=ignored_params)
                for m in module]
    if not isinstance(module, Module):
        raise ValueError(f"fully_shard does not support containers that do not implement "
                         f"forward: {type(module).__name__}")
    if mp_policy is not None and not isinstance(mp_policy, MixedPrecisionPolicy):
        raise TypeError("mp_policy must be a MixedPrecisionPolicy")
    if offload_policy is not None and type(offload_policy) is not OffloadPolicy:
        raise NotImplementedError("fully_shard(offload_policy=CPUOffloadPolicy()) is not "
                                  "supported: parameters stay on their devices")
    mesh = _default_mesh() if mesh is None else mesh
    if mesh.ndim not in (1, 2):
        raise ValueError(f"fully_shard expects a 1D or 2D DeviceMesh but got {mesh}")
    shard_mesh = mesh if mesh.ndim == 1 else DeviceMesh._submesh(mesh, mesh._dims[1:])
    ignored = {id(p) for p in ignored_params or ()}
    inner = {id(p) for m in module.modules() if m is not module and isinstance(m, FSDPModule)
             for p in m.parameters()}

    def layout(name, p):
        if id(p) in ignored or id(p) in inner:
            return None
        return shard_mesh, (_placement(p, shard_mesh, shard_placement_fn),)

    replace_parameters(module, layout)
    replicated = mesh._sharding(jax.sharding.PartitionSpec())
    for b in module.buffers():
        _sharding.place(b, replicated)
    if not isinstance(module, FSDPModule):
        cls = type(module)
        module.__class__ = type(f"FSDP{cls.__name__}", (FSDPModule, cls), {})
    module._fsdp_mesh = mesh  # the batch splits over all of its dimensions
    return module
