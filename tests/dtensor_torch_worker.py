"""PyTorch's side of the DTensor gradient check: `distributed_worker.dtensor_gradients` under
PyTorch's own DTensor, on processes started by PyTorch's launcher (`torch.distributed.run`)."""
import json
import sys

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import DTensor, Replicate, Shard

from distributed_worker import dtensor_gradients


def main() -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    mesh = init_device_mesh("cpu", (world,), mesh_dim_names=("dp",))
    result = dtensor_gradients(torch, DTensor, Replicate, Shard, mesh, rank, world)
    dist.destroy_process_group()
    with open(f"{sys.argv[1]}/torch{rank}.json", "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
