"""`torch.distributed._composable.fsdp`: the same `fully_shard` as `tapegrad.distributed.fsdp`."""
from ...fsdp import FSDPModule, MixedPrecisionPolicy, OffloadPolicy, fully_shard

__all__ = ["FSDPModule", "MixedPrecisionPolicy", "OffloadPolicy", "fully_shard"]
