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
            name, _, idx = type.partition(":")
            if not idx.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}'")
            type, index = name, int(idx)
        if index is not None and index < 0:
            raise RuntimeError("Device index must not be negative")
        if type not in _PLATFORM:
            raise RuntimeError(f"Expected one of cpu, cuda, gpu, tpu device type at start of device "
                               f"string: {type}")
        self.type = "cuda" if type == "gpu" else type
        self.index = index

    def jax_device(self) -> jax.Device:
        """The JAX device this names: index `i` is this process's `i`-th device of the type
        (`jax.local_devices`), no index the current one (`tapegrad.cuda.set_device`). Raises
        PyTorch's errors when JAX has no such device."""
        devices = local_devices(self.type)
        return pick(devices, current_index(self.type) if self.index is None else self.index,
                    self.type)

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


def local_devices(type: str) -> list:  # noqa: A002 - PyTorch's name
    """This process's JAX devices of a PyTorch device type, in JAX's order (`jax.devices()`
    spans every process of a job); empty when JAX has none."""
    try:
        return jax.local_devices(backend=_PLATFORM[type])
    except RuntimeError:
        return []


def no_devices_error(type: str) -> Exception:  # noqa: A002 - PyTorch's name
    """PyTorch's error for a device type this build cannot use (a CPU-only build raises
    `AssertionError("Torch not compiled with CUDA enabled")`)."""
    seen = sorted({d.platform for d in jax.devices()})
    if type == "cuda":
        return AssertionError(f"Torch not compiled with CUDA enabled: JAX sees no GPU, only "
                              f"{seen}. Install a JAX build for CUDA (pip install "
                              f"'jax[cuda12]') or use device='cpu'.")
    return RuntimeError(f"Found no {type} devices: JAX sees only {seen}. Install a JAX build "
                        f"for {type} or use device='cpu'.")


def pick(devices: list, index: int, type: str) -> jax.Device:  # noqa: A002 - PyTorch's name
    """`devices[index]`, with PyTorch's errors when there are none or the index is out of
    range (CUDA's "invalid device ordinal")."""
    if not devices:
        raise no_devices_error(type)
    if not 0 <= index < len(devices):
        raise RuntimeError(f"{type.upper()} error: invalid device ordinal: device {index} "
                           f"requested, but this process has {len(devices)} {type} device(s)")
    return devices[index]


def current_index(type: str) -> int:  # noqa: A002 - PyTorch's name
    """The index of the current device of `type`: JAX's default device where it is of that
    type (`tapegrad.cuda.set_device` sets it), else 0."""
    here = default_jax_device()
    devices = local_devices(type)
    return devices.index(here) if here in devices else 0


def default_jax_device() -> jax.Device:
    """Where programs run unless their inputs are elsewhere: JAX's default device (which
    `tapegrad.cuda.set_device` sets), else this process's first device."""
    chosen = jax.config.jax_default_device  # a device, a platform name or None
    if isinstance(chosen, jax.Device):
        return chosen
    return jax.local_devices(backend=chosen)[0]


def default_device() -> device:
    return device(default_jax_device())

