"""`tapegrad.distributed.device_mesh` (`torch.distributed.device_mesh`): a `DeviceMesh` is a
`jax.sharding.Mesh`.

`init_device_mesh("cuda", (2, 4), mesh_dim_names=("dp", "tp"))` lays JAX's devices of that
platform (every process's, in id order, as PyTorch's ranks) out as a mesh whose axes are the
dimension names. A submesh (`mesh["tp"]`) keeps the whole mesh and selects some of its axes: a
tensor placed on it is sharded along those axes and replicated along the others, which is what
PyTorch's submesh of "the ranks sharing my other coordinates" amounts to in one SPMD program.

Where one process holds several devices of the mesh (one process over all its local devices,
the usual JAX set-up), PyTorch's per-rank answers (`get_coordinate`, `get_local_rank`, and
`DTensor.to_local`) are those of the process's current device: JAX's default device, which
`tapegrad.cuda.set_device` and `jax.default_device` choose.
"""
from __future__ import annotations

import math

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .._core import device as _device
from . import _group

__all__ = ["DeviceMesh", "init_device_mesh"]


def _platform_devices(device_type: str) -> list:
    if not device_type or not device_type.isalpha():
        raise RuntimeError(f"Device type with index is not supported but got {device_type}. "
                           "If you maintained a 'torch.device' object, it's recommended to pass "
                           "in 'device.type'.")
    dev = _device.device(device_type)
    dev.jax_device()  # raises PyTorch's error when JAX has no such devices
    return sorted(jax.devices(_device._PLATFORM[dev.type]), key=lambda d: d.id)


def _check_names(names, ndim: int) -> None:
    if names is None:
        return
    if len(set(names)) != len(names):
        raise RuntimeError(f"Each mesh_dim_name must be unique. Found repeated mesh_dim_name in "
                           f"mesh_dim_names {tuple(names)}")
    if len(names) != ndim:
        raise RuntimeError(f"mesh_shape and mesh_dim_names should have same length! Found "
                           f"len(mesh_dim_names): {len(names)} and len(mesh_shape):{ndim}.")


class DeviceMesh:
    """An n-dimensional layout of devices: `DeviceMesh("cpu", [[0, 1], [2, 3]])`.

    `mesh` holds device ids (PyTorch's ranks: JAX's device ids of the platform); `jax_mesh` is
    the `jax.sharding.Mesh` shardings are made on.
    """

    def __init__(self, device_type: str, mesh, *, mesh_dim_names: tuple | None = None,
                 _init_backend: bool = True) -> None:
        ids = np.asarray(mesh.tolist() if hasattr(mesh, "tolist") else mesh, dtype=np.int64)
        names = None if mesh_dim_names is None else tuple(mesh_dim_names)
        _check_names(names, ids.ndim)
        devices = {d.id: d for d in _platform_devices(device_type)}
        missing = sorted(set(ids.ravel().tolist()) - set(devices))
        if missing:
            raise RuntimeError(f"Mesh should not be bigger than default world size "
                               f"{len(devices)}, but found device ids {missing} outside it")
        if len(set(ids.ravel().tolist())) != ids.size:
            raise RuntimeError(f"DeviceMesh cannot have duplicate values, got {ids.tolist()}")
        axes = names if names is not None else tuple(f"dim_{i}" for i in range(ids.ndim))
        self.device_type = device_type
        self.jax_mesh = Mesh(np.vectorize(devices.__getitem__, otypes=[object])(ids), axes)
        self._dims = axes  # the jax_mesh axes this (sub)mesh spans
        self._named = names is not None

    @classmethod
    def _submesh(cls, root: "DeviceMesh", dims: tuple) -> "DeviceMesh":
        sub = object.__new__(cls)
        sub.device_type, sub.jax_mesh, sub._dims, sub._named = (root.device_type, root.jax_mesh,
                                                                 dims, True)
        return sub

    # -- PyTorch's questions -------------------------------------------------------------------
    @property
    def mesh_dim_names(self) -> tuple | None:
        return self._dims if self._named else None

    @property
    def ndim(self) -> int:
        return len(self._dims)

    @property
    def shape(self) -> tuple:
        return tuple(self.jax_mesh.shape[a] for a in self._dims)

    def size(self, mesh_dim: int | None = None) -> int:
        return math.prod(self.shape) if mesh_dim is None else self.shape[mesh_dim]

    @property
    def mesh(self) -> np.ndarray:
        """The device ids of this mesh (a submesh: those sharing the current device's other
        coordinates)."""
        ids = np.vectorize(lambda d: d.id, otypes=[np.int64])(self.jax_mesh.devices)
        here = self._root_coordinate()
        index = tuple(slice(None) if a in self._dims else (0 if here is None else here[i])
                      for i, a in enumerate(self.jax_mesh.axis_names))
        order = [a for a in self.jax_mesh.axis_names if a in self._dims]
        return np.moveaxis(ids[index], [order.index(a) for a in self._dims],
                           range(len(self._dims))) if self._dims else ids[index]

    def _root_coordinate(self) -> tuple | None:
        current = _device.default_jax_device()
        where = np.argwhere(self.jax_mesh.devices == current)
        return None if not len(where) else tuple(int(i) for i in where[0])

    def get_coordinate(self) -> list | None:
        """The current device's coordinate in this mesh (None when it is not in the mesh)."""
        here = self._root_coordinate()
        if here is None:
            return None
        axes = self.jax_mesh.axis_names
        return [here[axes.index(a)] for a in self._dims]

    def get_local_rank(self, mesh_dim: int | str | None = None) -> int:
        if mesh_dim is None:
            if self.ndim > 1:
                raise RuntimeError(f"Found the DeviceMesh have {self.ndim} dimensions. Optional "
                                   f"kwarg `mesh_dim` needs to be specified when "
                                   f"device_mesh.ndim > 1.")
            mesh_dim = 0
        coordinate = self.get_coordinate()
        if coordinate is None:
            raise RuntimeError("the current device is not in this mesh")
        return coordinate[self._dim_index(mesh_dim)]

    def get_rank(self) -> int:
        return _group.get_rank()

    def get_group(self, mesh_dim: int | str | None = None):
        """The process group along `mesh_dim`: the default group when that dimension spans
        every process, one device each (the only group tapegrad has). Devices of one process
        have no process group: their collectives are XLA's, inside the SPMD programs."""
        if mesh_dim is None and self.ndim > 1:
            raise RuntimeError(f"Found the DeviceMesh have {self.ndim} dimensions. Optional kwarg "
                               f"`mesh_dim` needs to be specified when device_mesh.ndim > 1.")
        size = self.shape[self._dim_index(0 if mesh_dim is None else mesh_dim)]
        world = jax.process_count()
        if _group.is_initialized() and world > 1 and size == world == len(
                {d.process_index for d in self.jax_mesh.devices.flat}) == self.jax_mesh.size:
            return _group.default_group(None)
        raise RuntimeError(
            f"this mesh dimension ({size} devices) has no process group: tapegrad has one "
            f"group, the default one over {world} process(es), and devices of one process "
            "communicate through XLA's collectives inside SPMD programs (DTensor, fully_shard)")

    def _dim_index(self, mesh_dim: int | str) -> int:
        if isinstance(mesh_dim, str):
            if not self._named:
                raise KeyError("No `mesh_dim_names` found.")
            if mesh_dim not in self._dims:
                raise KeyError(f"Mesh dimension '{mesh_dim}' does not exist. Available mesh "
                               f"dimensions are: mesh_dim_names={self._dims}")
            return self._dims.index(mesh_dim)
        if not -self.ndim <= mesh_dim < self.ndim:
            raise IndexError(f"mesh_dim {mesh_dim} is out of range for a {self.ndim}-D mesh")
        return mesh_dim % self.ndim

    def __getitem__(self, mesh_dim_names: str | tuple) -> "DeviceMesh":
        names = (mesh_dim_names,) if isinstance(mesh_dim_names, str) else tuple(mesh_dim_names)
        dims = tuple(self._dims[self._dim_index(n)] for n in names)
        if len(set(dims)) != len(dims):
            raise KeyError(f"Invalid mesh_dim_names {names}: repeated dimension")
        return DeviceMesh._submesh(self, dims)

    # -- for shardings ---------------------------------------------------------------------------
    def _sharding(self, spec: PartitionSpec) -> NamedSharding:
        return NamedSharding(self.jax_mesh, spec)

    def __eq__(self, other) -> bool:
        return isinstance(other, DeviceMesh) and self.jax_mesh == other.jax_mesh and \
            self._dims == other._dims

    def __hash__(self) -> int:
        return hash((self.jax_mesh, self._dims))

    def __repr__(self) -> str:
        names = "" if not self._named else f", mesh_dim_names={self._dims}"
        return f"DeviceMesh('{self.device_type}', {self.mesh.tolist()}{names})"


def init_device_mesh(device_type: str, mesh_shape: tuple, *, mesh_dim_names: tuple | None = None,
                     backend_override=None) -> DeviceMesh:
    """A mesh of `prod(mesh_shape)` devices of `device_type` ("cpu", "cuda"), in id order:
    `init_device_mesh("cuda", (2, 4), mesh_dim_names=("dp", "tp"))`."""
    mesh_shape = tuple(int(s) for s in mesh_shape)
    _check_names(None if mesh_dim_names is None else tuple(mesh_dim_names), len(mesh_shape))
    devices = _platform_devices(device_type)
    n = math.prod(mesh_shape)
    if n > len(devices):
        raise RuntimeError(f"Mesh should not be bigger than default world size {len(devices)}, "
                           f"but found {n} ranks!")
    ids = np.array([d.id for d in devices[:n]]).reshape(mesh_shape)
    return DeviceMesh(device_type, ids, mesh_dim_names=mesh_dim_names)
