"""`torch.distributed._composable`: PyTorch's older home of FSDP2 (`.fsdp.fully_shard`)."""
