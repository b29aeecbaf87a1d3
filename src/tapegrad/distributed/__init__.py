"""`tapegrad.distributed` (`torch.distributed`): process groups and collectives over JAX.

A process group is `jax.distributed` (one process per rank, meeting at rank 0's coordination
service); a collective is a jitted SPMD program over a mesh of one device per process, in which
XLA runs the all-reduce, all-gather or reduce-scatter (gloo on CPU, NCCL on GPU). See
`docs/distributed.md` for the mapping and where JAX makes it differ from PyTorch.
"""
from __future__ import annotations

from ._collectives import (
    all_gather, all_gather_into_tensor, all_reduce, broadcast, gather, reduce,
    reduce_scatter_tensor, scatter,
)
from ._group import (
    Backend, DistBackendError, GroupMember, ProcessGroup, ReduceOp, Work, barrier,
    default_pg_timeout, destroy_process_group, get_backend, get_rank, get_world_size, group,
    init_process_group, is_available, is_gloo_available, is_initialized, is_mpi_available,
    is_nccl_available, is_torchelastic_launched,
)

__all__ = ["Backend", "DistBackendError", "GroupMember", "ProcessGroup", "ReduceOp", "Work",
           "all_gather", "all_gather_into_tensor", "all_reduce", "barrier", "broadcast",
           "default_pg_timeout", "destroy_process_group", "gather", "get_backend", "get_rank",
           "get_world_size", "group", "init_process_group", "is_available", "is_gloo_available",
           "is_initialized", "is_mpi_available", "is_nccl_available", "is_torchelastic_launched",
           "reduce", "reduce_scatter_tensor", "scatter"]
