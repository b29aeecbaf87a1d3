"""`tapegrad.distributed.tensor.parallel`: tensor parallel `parallelize_module` with
`ColwiseParallel` and `RowwiseParallel`, as layouts of the parameters over a mesh.

`ColwiseParallel` shards a `Linear`'s output features (weight `Shard(0)`, bias `Shard(0)`; an
`Embedding`'s weight `Shard(1)`), `RowwiseParallel` its input features (weight `Shard(1)`, bias
replicated; an `Embedding`'s weight `Shard(0)`). The module's inputs and outputs are laid out as
`input_layouts`/`output_layouts` say, and XLA's partitioner inserts the all-reduce or
all-gather between them. One difference from PyTorch: inside the parallelized module the outputs
are global tensors (there is no per-rank local tensor in one SPMD program), so
`use_local_output` changes nothing, and code that reshapes by a local head count must use the
global one. Over a mesh spanning several processes (torchrun), the module passed to
`parallelize_module` takes each process's tensors as its inputs and returns each process's part
of its outputs (`_sharding.from_processes`/`to_process`), so the code around it sees local
tensors, as PyTorch's.
"""
from __future__ import annotations

import fnmatch

from jax.sharding import PartitionSpec

from ..._tensor.tensor import Tensor
from ...nn.modules.module import Module
from .. import _sharding
from ..device_mesh import DeviceMesh
from ._api import Replicate, Shard, _mesh, replace_parameters, spec_of

__all__ = ["ColwiseParallel", "ParallelStyle", "RowwiseParallel", "parallelize_module"]


class ParallelStyle:
    """How one module is split over a 1-D mesh."""

    weight_dims: dict = {}
    default_input = Replicate()
    default_output = Replicate()

    def __init__(self, *, input_layouts=None, output_layouts=None,
                 use_local_output: bool = True) -> None:
        self.input_layouts = input_layouts or self.default_input
        self.output_layouts = output_layouts or self.default_output
        self.use_local_output = use_local_output

    def _params(self, module: Module) -> dict:
        kind = type(module).__name__
        plan = self.weight_dims.get(kind)
        if plan is None:
            raise NotImplementedError(f"{type(self).__name__} currently only support nn.Linear "
                                      f"and nn.Embedding, got {kind}")
        return plan

    def _apply(self, module: Module, mesh: DeviceMesh) -> None:
        plan = self._params(module)
        replace_parameters(module, lambda name, p: (mesh, (plan.get(name, Replicate()),))
                           if "." not in name else None)

        def layout(x, placement):
            if not isinstance(x, Tensor):
                return x
            if _sharding.spans_processes(mesh.jax_mesh) and _sharding.is_local(x):
                # a process's tensor, laid out as PyTorch's local tensor of that placement
                return _sharding.from_processes(
                    x, mesh.jax_mesh, mesh._dims if isinstance(placement, Shard) else (),
                    placement.dim if isinstance(placement, Shard) else 0)
            return _sharding.shard(x, mesh._sharding(spec_of(mesh, (placement,), tuple(x.shape))))

        inputs = self.input_layouts
        outputs = self.output_layouts
        module.register_forward_pre_hook(lambda m, args: tuple(
            layout(a, inputs) for a in args))
        module.register_forward_hook(lambda m, args, out: layout(out, outputs))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(input_layouts={self.input_layouts}, "
                f"output_layouts={self.output_layouts})")


class ColwiseParallel(ParallelStyle):
    """Split the output features: input replicated, output `Shard(-1)` by default."""

    weight_dims = {"Linear": {"weight": Shard(0), "bias": Shard(0)},
                   "Embedding": {"weight": Shard(1)}}
    default_output = Shard(-1)


class RowwiseParallel(ParallelStyle):
    """Split the input features: input `Shard(-1)`, output replicated by default."""

    weight_dims = {"Linear": {"weight": Shard(1), "bias": Replicate()},
                   "Embedding": {"weight": Shard(0)}}
    default_input = Shard(-1)


def parallelize_module(module: Module, device_mesh: DeviceMesh | None = None,
                       parallelize_plan=None, *, src_data_rank: int | None = 0) -> Module:
    """Apply `parallelize_plan` (a style, or `{submodule name pattern: style}`) over the 1-D
    `device_mesh`; the module's other parameters and buffers are replicated over the mesh and
    its tensor inputs placed on it. Over a mesh spanning several processes, each process's
    inputs are its tensors (the same ones on every process where the layout is `Replicate()`)
    and `module` returns each process's part of its outputs, as PyTorch's local tensors.
    Returns `module`."""
    mesh = _mesh(device_mesh)
    if mesh.ndim != 1:
        raise ValueError(f"parallelize_module expects a 1D DeviceMesh (use mesh['tp']), got "
                         f"{mesh.ndim}D")
    _parallelize(module, mesh, parallelize_plan)
    if _sharding.spans_processes(mesh.jax_mesh):
        module.register_forward_hook(lambda m, args, out: None if hasattr(m, "_fsdp_mesh")
                                     else _sharding.to_process(out))
    return module


def _parallelize(module: Module, mesh: DeviceMesh, parallelize_plan) -> None:
    if isinstance(parallelize_plan, ParallelStyle):
        parallelize_plan._apply(module, mesh)
    elif isinstance(parallelize_plan, dict):
        names = dict(module.named_modules())
        for pattern, style in parallelize_plan.items():
            hits = [m for n, m in names.items() if n and fnmatch.fnmatchcase(n, pattern)]
            if not hits:
                raise ValueError(f"parallelize_plan key {pattern!r} matches no submodule")
            for m in hits:
                _parallelize(m, mesh, style)
    elif parallelize_plan is not None:
        raise TypeError(f"Expect Union[ParallelStyle, Dict] for parallelize_plan, "
                        f"{type(parallelize_plan)} found!")
    replicated = mesh._sharding(PartitionSpec())
    replace_parameters(module, lambda name, p: None if hasattr(p, "_spec")
                       else (mesh, (Replicate(),)))
    for b in module.buffers():
        _sharding.place(b, replicated)
    enter = _sharding.from_processes if _sharding.spans_processes(mesh.jax_mesh) \
        else _sharding.scatter
    module.register_forward_pre_hook(lambda m, args: enter(
        args, mesh.jax_mesh, ()) if not hasattr(m, "_fsdp_mesh") else None)
