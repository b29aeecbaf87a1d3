"""`tapegrad.cuda`: answers for whatever GPUs JAX sees (JAX's "gpu" platform).

Device `i` is this process's `i`-th GPU (`jax.local_devices("gpu")`), so `set_device(LOCAL_RANK)`
picks one per process as in PyTorch. The current device is JAX's default device
(`jax.config.jax_default_device`): programs whose inputs are not placed elsewhere run there.
Without a GPU these raise as a CPU-only PyTorch build does ("Torch not compiled with CUDA
enabled"); `is_available()` and `device_count()` answer False and 0.
"""
from __future__ import annotations

import jax

from ._core import device as _device
from ._tensor import random as _random


def _gpus() -> list:
    gpus = _device.local_devices("cuda")
    if not gpus:
        raise _device.no_devices_error("cuda")
    return gpus


def _index(device, optional: bool = True) -> int:
    """PyTorch's `_get_device_index`: an int, `"cuda:1"`, a `device`; `None`/`"cuda"` is the
    current device."""
    if device is None or isinstance(device, (str, _device.device)):
        d = _device.device("cuda" if device is None else device)
        if d.type != "cuda":
            raise ValueError(f"Expected a cuda device, but got: {d}")
        return current_device() if d.index is None else d.index
    if isinstance(device, int):
        return device
    raise ValueError(f"Expected a torch.device with a specified index or an integer, but got:"
                     f"{device}")


def is_available() -> bool:
    """True when JAX has at least one GPU."""
    return bool(_device.local_devices("cuda"))


def device_count() -> int:
    """This process's GPUs."""
    return len(_device.local_devices("cuda"))


def current_device() -> int:
    """The index of the current GPU (set by `set_device`; 0 otherwise)."""
    _gpus()
    return _device.current_index("cuda")


def set_device(device) -> None:
    """Make GPU `device` the current one: tensors made without a device, and programs whose
    inputs are not placed elsewhere, go there. A negative index does nothing (PyTorch)."""
    index = _index(device)
    if index >= 0:
        jax.config.update("jax_default_device", _device.pick(_gpus(), index, "cuda"))


class device:
    """`with tapegrad.cuda.device(i):` makes GPU `i` current inside the block."""

    def __init__(self, device) -> None:
        self.idx = _index(device)
        self._saved: list = []  # the default device before the block, when it changed it

    def __enter__(self) -> None:
        if self.idx < 0:
            return
        if not is_available():
            raise RuntimeError("PyTorch was compiled without CUDA support: JAX sees no GPU")
        self._saved.append(jax.config.jax_default_device)
        set_device(self.idx)

    def __exit__(self, *exc) -> None:
        if self._saved:
            jax.config.update("jax_default_device", self._saved.pop())


def get_device_name(device=None) -> str:
    return _device.pick(_gpus(), _index(device), "cuda").device_kind


def manual_seed(seed: int) -> None:
    """Seed the generator (tapegrad has one generator for every device)."""
    _random.manual_seed(seed)


manual_seed_all = manual_seed


def synchronize(device=None) -> None:
    """Wait for all pending work on the GPU (JAX dispatches asynchronously)."""
    target = _device.pick(_gpus(), _index(device), "cuda")
    (jax.device_put(0, target) + 0).block_until_ready()


def is_initialized() -> bool:
    return is_available()
