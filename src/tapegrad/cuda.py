"""`tapegrad.cuda`: answers for whatever GPUs JAX sees (JAX's "gpu" platform)."""
from __future__ import annotations

import jax

from ._tensor import random as _random


def _gpus() -> list:
    try:
        return jax.devices("gpu")
    except RuntimeError:
        return []


def is_available() -> bool:
    """True when JAX has at least one GPU."""
    return bool(_gpus())


def device_count() -> int:
    return len(_gpus())


def current_device() -> int:
    if not is_available():
        raise RuntimeError("Found no NVIDIA driver on your system: JAX sees no GPU")
    return 0


def get_device_name(device=None) -> str:
    gpus = _gpus()
    if not gpus:
        raise RuntimeError("Found no NVIDIA driver on your system: JAX sees no GPU")
    return gpus[0 if device is None else int(getattr(device, "index", device) or 0)].device_kind


def manual_seed(seed: int) -> None:
    """Seed the generator (tapegrad has one generator for every device)."""
    _random.manual_seed(seed)


manual_seed_all = manual_seed


def synchronize(device=None) -> None:
    """Wait for all pending device work (JAX dispatches asynchronously)."""
    (jax.device_put(0) + 0).block_until_ready()


def is_initialized() -> bool:
    return is_available()
