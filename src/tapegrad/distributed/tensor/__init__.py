"""`tapegrad.distributed.tensor` (`torch.distributed.tensor`): DTensor over `jax.sharding`."""
from ..device_mesh import DeviceMesh, init_device_mesh
from ._api import DTensor, Partial, Placement, Replicate, Shard, distribute_tensor

__all__ = ["DTensor", "DeviceMesh", "Partial", "Placement", "Replicate", "Shard",
           "distribute_tensor", "init_device_mesh"]
