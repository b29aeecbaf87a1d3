"""`DataParallel`: one process, the batch split over its devices, as one SPMD program.

The module's parameters and buffers are replicated over a 1-D mesh of the devices (axis "dp"),
and each tensor argument is sharded along `dim` over it. Nothing else changes: the forward,
the backward (with its gradient all-reduce) and the optimizer's update are the usual compiled
programs, and XLA's SPMD partitioner runs them on every device over its shard of the batch,
inserting the collectives. Gradients are those of single-device training on the whole batch,
and so are batch statistics (BatchNorm normalises over the whole batch, as SyncBatchNorm would).
"""
from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..._core import device as _device
from ...distributed import _sharding
from ..modules.module import Module


def _devices(device_ids) -> list:
    if device_ids is None:
        return list(jax.local_devices(backend=_device.default_jax_device().platform))
    devices = [_device.device(d if not isinstance(d, int) else
                              f"{_device.device(_device.default_jax_device()).type}:{d}")
               .jax_device() for d in device_ids]
    if len(set(devices)) != len(devices):
        raise ValueError(f"device_ids must name distinct devices, got {list(device_ids)}")
    return devices


class DataParallel(Module):
    """Split each batch over the local devices: `model = nn.DataParallel(model)`.

    `device_ids` (default: every local device of the default platform, so on a CPU the host
    devices that `--xla_force_host_platform_device_count` makes) index JAX's devices. The output
    stays spread over the devices, with the whole batch's shape; read it as any tensor. A batch
    whose size the device count does not divide runs replicated on every device (the same
    numbers, without the split).
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0) -> None:
        super().__init__()
        self.module = module
        devices = _devices(device_ids)
        self.device_ids = [d.id for d in devices]
        self.output_device = output_device if output_device is not None else devices[0].id
        self.dim = dim
        self.mesh = Mesh(np.array(devices, dtype=object), ("dp",))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self._replicate()

    def _replicate(self) -> None:
        for t in list(self.module.parameters()) + list(self.module.buffers()):
            _sharding.place(t, self.replicated)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if self.mesh.size == 1:
            return self.module(*inputs, **kwargs)
        self._replicate()  # state replaced since (load_state_dict, a new buffer) is placed again
        inputs, kwargs = _sharding.scatter((inputs, kwargs), self.mesh, ("dp",), self.dim)
        return self.module(*inputs, **kwargs)
