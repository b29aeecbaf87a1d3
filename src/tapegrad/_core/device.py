"""Devices: PyTorch's `device` names over JAX devices ("cuda" is JAX's "gpu")."""
from __future__ import annotations

import jax

_PLATFORM = {"cuda": "gpu", "gpu": "gpu", "cpu": "cpu", "tpu": "tpu", "mps": "METAL"}
_TYPE = {"gpu": "cuda", "cuda": "cuda", "rocm": "cuda", "cpu": "cpu", "tpu": "tpu"}


class device:
    """`device("cpu")`, `device("cuda", 0)`, `device("cuda:1")`, or a `jax.Device`."""

    __slots__ = ("type", "index")

    def __init__(self, type, index: int | None = None) -> None:  # noqa: A002 - PyTorch's name
        if isinstance(type, device):
            type, index = type.type, type.index
        elif isinstance(type, jax.Device):
            type, index = _TYPE.get(type.platform, type.platform), type.id
            index = None if type == "cpu" else index
        elif isinstance(type, int):
            type, index = "cuda", type
        elif ":" in type:
            type, _, idx = type.partition(":")
            index = int(idx)
        if type not in _PLATFORM:
            raise RuntimeError(f"Expected one of cpu, cuda, gpu, tpu device type at start of device "
                               f"string: {type}")
        self.type = "cuda" if type == "gpu" else type
        self.index = index

    def jax_device(self) -> jax.Device:
        """The JAX device this names (raises RuntimeError when JAX has none of this type)."""
        try:  # this process's devices (jax.devices() spans every process of a job)
            devices = jax.local_devices(backend=_PLATFORM[self.type])
        except RuntimeError:
            devices = []
        if not devices:
            raise RuntimeError(f"Found no {self.type} devices: JAX sees only "
                               f"{sorted({d.platform for d in jax.devices()})}. Install a JAX build "
                               f"for {self.type} or use device='cpu'.")
        index = self.index or 0
        if index >= len(devices):
            raise RuntimeError(f"Invalid device ordinal {index}: {len(devices)} {self.type} "
                               f"device(s) available")
        return devices[index]

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self) -> int:
        return hash((self.type, self.index or 0))

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


def default_jax_device() -> jax.Device:
    """Where programs run unless their inputs are elsewhere: JAX's default device (which
    `tapegrad.cuda.set_device` sets), else this process's first device."""
    chosen = jax.config.jax_default_device  # a device, a platform name or None
    if isinstance(chosen, jax.Device):
        return chosen
    return jax.local_devices(backend=chosen)[0]


def default_device() -> device:
    return device(default_jax_device())

