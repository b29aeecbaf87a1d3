"""`tapegrad.nn.parallel`: data parallel training over processes (`DistributedDataParallel`)
and over the devices of one process (`DataParallel`)."""
from .data_parallel import DataParallel
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel"]
