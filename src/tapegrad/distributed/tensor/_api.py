"""`DTensor`: a tensor whose value is one global `jax.Array` laid out by a `NamedSharding`.

PyTorch's DTensor keeps one local shard per rank and runs its own sharding propagation; here the
value is JAX's global array, sharded over the mesh as the placements say (`Shard(d)` names the
mesh axis in the `PartitionSpec` of dim `d`, `Replicate()` leaves it out). Every program that
reads it (the op itself, the compiled backward, the optimizer's update) runs SPMD, and XLA's
partitioner chooses and inserts the collectives. Results of ops are ordinary tensors whose values
keep XLA's sharding; `redistribute` and `full_tensor` lay them out again (the `shard` row, so
gradients flow through).
"""
from __future__ import annotations

from typing import Sequence

import jax
from jax.sharding import PartitionSpec

from ..._core import device as _device
from ..._tensor.tensor import Tensor
from ...autograd.function import Function
from ...nn.parameter import Parameter
from .. import _sharding
from ..device_mesh import DeviceMesh

__all__ = ["DTensor", "Partial", "Placement", "Replicate", "Shard", "distribute_tensor"]


class Placement:
    """How a tensor is laid out along one mesh dimension."""

    def is_shard(self, dim: int | None = None) -> bool:
        return False

    def is_replicate(self) -> bool:
        return False

    def is_partial(self, reduce_op: str | None = None) -> bool:
        return False


class Shard(Placement):
    """Split along tensor dim `dim` over the mesh dimension (even splits: JAX's rule)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def is_shard(self, dim: int | None = None) -> bool:
        return dim is None or dim == self.dim

    def __eq__(self, other) -> bool:
        return isinstance(other, Shard) and other.dim == self.dim

    def __hash__(self) -> int:
        return hash(("Shard", self.dim))

    def __repr__(self) -> str:
        return f"Shard(dim={self.dim})"


class Replicate(Placement):
    """The whole tensor on every device of the mesh dimension."""

    def is_replicate(self) -> bool:
        return True

    def __eq__(self, other) -> bool:
        return isinstance(other, Replicate)

    def __hash__(self) -> int:
        return hash("Replicate")

    def __repr__(self) -> str:
        return "Replicate()"


class Partial(Placement):
    """PyTorch's pending reduction. XLA never exposes unreduced values (its partitioner reduces
    inside the program), so a DTensor cannot be made with it: using it raises."""

    def __init__(self, reduce_op: str = "sum") -> None:
        self.reduce_op = reduce_op

    def is_partial(self, reduce_op: str | None = None) -> bool:
        return reduce_op is None or reduce_op == self.reduce_op

    def __repr__(self) -> str:
        return f"Partial({self.reduce_op})"


def spec_of(mesh: DeviceMesh, placements: Sequence[Placement], shape: tuple) -> PartitionSpec:
    """The `PartitionSpec` of `placements` (one per mesh dimension) for a tensor of `shape`."""
    placements = tuple(placements)
    if len(placements) != mesh.ndim:
        raise ValueError(f"`placements` must have the same length as `device_mesh.ndim`! Found "
                         f"placements length: {len(placements)}, and device_mesh.ndim: "
                         f"{mesh.ndim}.")
    axes: list = [[] for _ in shape]
    for axis, size, p in zip(mesh._dims, mesh.shape, placements):
        if isinstance(p, Partial):
            raise NotImplementedError(
                "Partial placements are not available: XLA reduces partial results inside its "
                "programs and never exposes them; use Replicate() or Shard(d)")
        if isinstance(p, Shard):
            if not -len(shape) <= p.dim < len(shape):
                raise IndexError(f"Shard(dim={p.dim}) is out of range for a tensor of "
                                 f"{len(shape)} dimensions")
            axes[p.dim % len(shape)].append(axis)
        elif not isinstance(p, Replicate):
            raise TypeError(f"placements must be Shard or Replicate, got {p!r}")
    for d, names in enumerate(axes):
        parts = 1
        for n in names:
            parts *= mesh.jax_mesh.shape[n]
        if shape[d] % parts:
            raise ValueError(f"tensor dim {d} of size {shape[d]} cannot be sharded evenly over "
                             f"{parts} devices: JAX shards evenly only (PyTorch's uneven last "
                             f"shard is not available); pad the tensor or choose another dim")
    return PartitionSpec(*(None if not n else n[0] if len(n) == 1 else tuple(n) for n in axes))


def _normalized(placements, ndim: int) -> tuple:
    return tuple(Shard(p.dim % ndim) if isinstance(p, Shard) and ndim else p for p in placements)


class DTensor(Tensor):
    """A tensor sharded over a `DeviceMesh`: `distribute_tensor(t, mesh, [Shard(0)])`.

    Its shape is the global shape; `.placements` and `.device_mesh` say how it is laid out,
    `to_local()` is the current device's shard, `full_tensor()` the whole value.
    """

    @classmethod
    def _wrap(cls, t: Tensor, mesh: DeviceMesh, placements) -> "DTensor":
        """`t` (its storage and place in the graph) seen as a DTensor."""
        d = object.__new__(cls)
        d._become(t)
        d._spec = (mesh, _normalized(placements, t.ndim))
        return d

    @property
    def device_mesh(self) -> DeviceMesh:
        return self._spec[0]

    @property
    def placements(self) -> tuple:
        return self._spec[1]

    def detach(self) -> "DTensor":
        return DTensor._wrap(Tensor._sharing(self), *self._spec)

    def redistribute(self, device_mesh: DeviceMesh | None = None,
                     placements: Sequence[Placement] | None = None, *, async_op: bool = False,
                     forward_dtype=None, backward_dtype=None) -> "DTensor":
        """The same values laid out as `placements` (XLA moves the data; differentiable)."""
        mesh = self.device_mesh if device_mesh is None else device_mesh
        if mesh != self.device_mesh:
            raise NotImplementedError("Cross device mesh comm not supported yet!")
        if forward_dtype is not None or backward_dtype is not None:
            raise ValueError("redistribute(forward_dtype=..., backward_dtype=...) is not "
                             "supported: cast with .to(dtype) before or after")
        placements = self.placements if placements is None else tuple(placements)
        spec = spec_of(mesh, placements, tuple(self.shape))
        return DTensor._wrap(_sharding.shard(self, mesh._sharding(spec)), mesh, placements)

    def full_tensor(self, *, grad_placements=None) -> Tensor:
        """The whole tensor, replicated on every device of the mesh (an ordinary tensor); over a
        mesh spanning several processes, each process's own copy of it, as PyTorch's."""
        whole = _sharding.shard(self, self.device_mesh._sharding(PartitionSpec()))
        return _sharding.to_process(whole) if _sharding.spans_processes(
            self.device_mesh.jax_mesh) else whole

    def to_local(self, *, grad_placements=None) -> Tensor:
        """The current device's shard (JAX's default device, `tapegrad.cuda.set_device`). With
        one device per process this is PyTorch's local tensor. Without grad it is that device's
        own buffer; with grad it is differentiable: a recorded slice when one process holds
        the mesh, else the process's shard, whose gradient is laid out as that shard."""
        here = _device.default_jax_device()
        value = self._value()
        if isinstance(value, jax.core.Tracer):
            raise RuntimeError("DTensor.to_local() inside tapegrad.compile or a JAX trace: an "
                               "SPMD program has no per-device view; call it outside the step")
        index = value.sharding.devices_indices_map(tuple(self.shape)).get(here)
        if index is None:
            raise RuntimeError(f"the current device {here} is not in this DTensor's mesh "
                               f"{self.device_mesh}; choose one with tapegrad.cuda.set_device "
                               f"or jax.default_device")
        if self.requires_grad and value.is_fully_addressable:  # a recorded slice
            return self[index]
        if self.requires_grad:  # one device per process: PyTorch's local tensor, differentiable
            return _ToLocal.apply(self, here)
        return Tensor._from_array(next(s.data for s in value.addressable_shards
                                       if s.device == here))

    @staticmethod
    def from_local(local_tensor: Tensor, device_mesh: DeviceMesh | None = None,
                   placements: Sequence[Placement] | None = None, *, run_check: bool = False,
                   shape=None, stride=None) -> "DTensor":
        """A DTensor from each process's local tensor: its part of the global tensor.

        Over several processes with one mesh device each (PyTorch's ranks), that is PyTorch's
        local shard: `Shard(d)` makes dim `d` the concatenation of the processes' shards
        (`jax.make_array_from_process_local_data`). One process holding every device of the
        mesh holds the whole tensor: the result has its shape, laid out as `placements` say
        (each device receives its shard). Either way it is differentiable, as PyTorch's: a
        local tensor that requires grad receives its part of the DTensor's gradient."""
        mesh = _mesh(device_mesh)
        placements = _placements(placements, mesh)
        local_shape = tuple(local_tensor.shape)
        if not mesh.jax_mesh.is_multi_process:
            if shape is not None and tuple(shape) != local_shape:
                raise ValueError(f"from_local: shape {tuple(shape)} differs from the local "
                                 f"tensor's {local_shape}, but this process holds every device "
                                 f"of the mesh, so its local tensor is the whole tensor")
            spec = spec_of(mesh, placements, local_shape)
            return DTensor._wrap(_sharding.shard(local_tensor, mesh._sharding(spec)), mesh,
                                 placements)
        here = mesh.jax_mesh.local_devices
        if len(here) != 1:
            raise NotImplementedError(
                f"DTensor.from_local over several processes needs one mesh device per process "
                f"(PyTorch's rank), but this process holds {len(here)}: build the process's "
                f"part with jax.make_array_from_process_local_data and wrap it with "
                f"tapegrad.tensor")
        global_shape = list(local_shape)
        for size, p in zip(mesh.shape, placements):
            if isinstance(p, Shard) and -len(local_shape) <= p.dim < len(local_shape):
                global_shape[p.dim % len(local_shape)] *= size
        global_shape = tuple(global_shape if shape is None else shape)
        sharding = mesh._sharding(spec_of(mesh, placements, global_shape))
        return DTensor._wrap(_FromLocal.apply(local_tensor, sharding, global_shape), mesh,
                             placements)

    def __repr__(self) -> str:
        return (f"DTensor(local_tensor={super().__repr__()}, device_mesh={self.device_mesh}, "
                f"placements={self.placements})")


class _FromLocal(Function):
    """Each process's local tensor as its part of one global array (one mesh device per
    process). Every process runs the same backward programs on the global gradient (JAX's
    multi-controller model), so each process's local gradient is its own shard of it, as the
    gradient of PyTorch's `from_local` is the local part of the DTensor's gradient."""

    @staticmethod
    def forward(ctx, local: Tensor, sharding, global_shape: tuple) -> Tensor:
        ctx.sharding = sharding
        return Tensor._from_array(jax.make_array_from_process_local_data(
            sharding, local._value(), global_shape))

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _own_shard(_sharding.shard(grad, ctx.sharding)), None, None


class _ToLocal(Function):
    """This process's shard of a DTensor spanning several processes (one device each); its
    gradient, the process's local gradient, is that shard of the DTensor's gradient."""

    @staticmethod
    def forward(ctx, d: Tensor, here) -> Tensor:
        value = d._value()
        ctx.sharding, ctx.shape = value.sharding, value.shape
        return Tensor._from_array(next(s.data for s in value.addressable_shards
                                       if s.device == here))

    @staticmethod
    def backward(ctx, grad: Tensor):
        local = jax.device_put(grad.detach()._value(), next(iter(ctx.sharding.addressable_devices)))
        return Tensor._from_array(jax.make_array_from_single_device_arrays(
            ctx.shape, ctx.sharding, [local])), None


def _own_shard(t: Tensor) -> Tensor:
    """The one addressable shard of `t`'s global array (this process's, one device each)."""
    value = t.detach()._value()
    return Tensor._from_array(value.addressable_shards[0].data)


def _mesh(mesh: DeviceMesh | None) -> DeviceMesh:
    if mesh is None:
        raise ValueError("a device_mesh is needed: init_device_mesh(device_type, mesh_shape)")
    if not isinstance(mesh, DeviceMesh):
        raise TypeError(f"device_mesh must be a DeviceMesh, got {type(mesh).__name__}")
    return mesh


def _placements(placements, mesh: DeviceMesh) -> tuple:
    return tuple(Replicate() for _ in range(mesh.ndim)) if placements is None \
        else tuple(placements)


def distribute_tensor(tensor: Tensor, device_mesh: DeviceMesh | None = None,
                      placements: Sequence[Placement] | None = None, *,
                      src_data_rank: int | None = 0) -> DTensor:
    """`tensor` laid out over `device_mesh` as `placements` say (default: replicated): a leaf
    DTensor, requiring grad when `tensor` does. Each device receives only its shard."""
    if isinstance(tensor, DTensor):
        raise ValueError("distribute_tensor expects a torch.Tensor, but got a DTensor; use "
                         "redistribute to change its placements")
    mesh = _mesh(device_mesh)
    placements = _placements(placements, mesh)
    spec = spec_of(mesh, placements, tuple(tensor.shape))
    value = jax.device_put(tensor.detach()._value(), mesh._sharding(spec))
    return DTensor._wrap(Tensor._from_array(value, requires_grad=tensor.requires_grad), mesh,
                         placements)


class _DTensorParameter(Parameter, DTensor):
    """A parameter sharded over a mesh (what `fully_shard` and `parallelize_module` register,
    as PyTorch's DTensor parameters): both an `nn.Parameter` and a `DTensor`."""

    def __repr__(self) -> str:
        return "Parameter containing:\n" + DTensor.__repr__(self)

    __str__ = __repr__


def shard_parameter(p: Parameter, mesh: DeviceMesh, placements: Sequence[Placement]
                    ) -> Parameter:
    """A new parameter over `p`'s storage, laid out in place as `placements` over `mesh`; where
    `p` is already sharded over other dimensions of the same root mesh (tensor parallel, then
    FSDP), the layouts combine, `mesh`'s axes first (major)."""
    placements = tuple(placements)
    if isinstance(p, DTensor) and p.device_mesh.jax_mesh == mesh.jax_mesh:
        old = p.device_mesh
        if set(old._dims) & set(mesh._dims):
            raise ValueError(f"parameter already sharded over mesh dimensions {old._dims}")
        mesh = DeviceMesh._submesh(mesh, mesh._dims + old._dims)
        placements = placements + p.placements
    spec = spec_of(mesh, placements, tuple(p.shape))
    _sharding.place(p, mesh._sharding(spec))
    new = _DTensorParameter._sharing(p)
    new.requires_grad = p.requires_grad
    new._spec = (mesh, _normalized(placements, p.ndim))
    return new


def replace_parameters(module, layout) -> None:
    """Each parameter of `module` (recursively) that `layout(name, p)` gives `(mesh,
    placements)` for, replaced by its sharded parameter; a parameter shared by several modules
    stays one parameter."""
    done: dict = {}
    for mod_name, mod in module.named_modules():
        for name, p in list(mod._parameters.items()):
            if p is None:
                continue
            if id(p) not in done:
                choice = layout(f"{mod_name}.{name}" if mod_name else name, p)
                done[id(p)] = p if choice is None else shard_parameter(p, *choice)
            mod._parameters[name] = done[id(p)]
