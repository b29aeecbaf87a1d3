"""The default process group: PyTorch's `init_process_group` over `jax.distributed`.

One process is one rank. `jax.distributed.initialize` connects the processes through JAX's
coordination service (process 0 hosts it at `MASTER_ADDR:MASTER_PORT`), after which every
process sees every device, and a `jax.Array` can span processes. The group keeps a 1-D mesh of
one device per process (axis "rank"): a collective is a jitted program over arrays sharded along
that axis, and XLA runs its all-reduce, all-gather or reduce-scatter over gloo (CPU) or NCCL.

Before each collective the processes compare what they are about to run through the
coordination service's key-value store, whose reads time out: a process that runs another
collective, another shape, or none at all is reported with PyTorch's words instead of XLA
hanging or reducing mismatched buffers.
"""
from __future__ import annotations

import datetime
import enum
import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .._core import device as _device
from .._core.jax_compat import distributed_client

default_pg_timeout = datetime.timedelta(minutes=30)  # PyTorch's default for gloo

_NOT_INITIALIZED = ("Default process group has not been initialized, please make sure to call "
                    "init_process_group.")


class DistBackendError(RuntimeError):
    """A collective failed in the backend (here: a process did not arrive in time)."""


class Backend(str):
    """A backend name: "gloo" or "nccl" (both run JAX's collectives: gloo on CPU, NCCL on GPU)."""

    UNDEFINED = "undefined"
    GLOO = "gloo"
    NCCL = "nccl"
    MPI = "mpi"
    UCC = "ucc"

    def __new__(cls, name: str) -> "Backend":
        if not isinstance(name, str):
            raise ValueError(f"Backend name must be a string, but got: {name}")
        value = name.lower()
        if value == cls.UNDEFINED:  # init_process_group() without a backend, as PyTorch's
            return super().__new__(cls, value)
        for part in value.split(","):  # "cpu:gloo,cuda:nccl"
            backend = part.rpartition(":")[2]
            if backend not in (cls.GLOO, cls.NCCL):
                raise ValueError(
                    f"Invalid backend: '{name}'. tapegrad runs JAX's collectives, reached as "
                    "backend 'gloo' (CPU), 'nccl' (GPU) or None (either); MPI, UCC and custom "
                    "backends are not available.")
        return super().__new__(cls, value)


class ReduceOp(enum.Enum):
    """How `all_reduce`, `reduce` and `reduce_scatter_tensor` combine the processes' tensors.

    AVG works on every backend here (PyTorch's gloo refuses it); BAND/BOR/BXOR take integer or
    bool tensors. PyTorch's PREMUL_SUM (NCCL-only) is not offered.
    """

    SUM = 0
    AVG = 1
    PRODUCT = 2
    MIN = 3
    MAX = 4
    BAND = 5
    BOR = 6
    BXOR = 7

    def __repr__(self) -> str:
        return f"<RedOpType.{self.name}: {self.value}>"


class ProcessGroup:
    """The processes of one training job; `rank()` and `size()` as PyTorch's."""

    def __init__(self, rank: int, size: int, backend: Backend, timeout: datetime.timedelta,
                 devices: list, distributed: bool) -> None:
        self._rank = rank
        self._size = size
        self.backend = backend
        self.timeout = timeout
        self.device = devices[rank]  # where this process's collectives run
        self.mesh = Mesh(np.array(devices, dtype=object), ("rank",))
        self.stacked = NamedSharding(self.mesh, PartitionSpec("rank"))  # one slice per process
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.client = distributed_client() if distributed else None
        self.programs: dict = {}  # the jitted collectives of this group
        self._seq = 0
        self._barriers = 0

    def rank(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._size

    def name(self) -> str:
        return str(self.backend)

    def __repr__(self) -> str:
        return f"ProcessGroup(backend={self.backend!r}, rank={self._rank}, size={self._size})"

    def _timeout_ms(self) -> int:
        return max(1, int(self.timeout.total_seconds() * 1000))

    def agree(self, collective: str) -> None:
        """Check that every process is about to run this same collective (by its description).

        Each process posts its description under the collective's sequence number and reads the
        others'; a different one raises PyTorch's "Detected mismatch between collectives", and
        one not posted within the group's timeout raises DistBackendError naming the rank.
        """
        if self.client is None:
            return
        seq = self._seq
        self._seq += 1
        mine = f"CollectiveFingerPrint(SequenceNumber={seq}, {collective})"
        client, prefix = self.client, f"tapegrad/collective/{seq}/"
        client.key_value_set(prefix + str(self._rank), mine)
        for r in range(self._size):
            if r == self._rank:
                continue
            try:
                theirs = client.blocking_key_value_get(prefix + str(r), self._timeout_ms())
            except Exception as e:  # JAX raises its XlaRuntimeError (DEADLINE_EXCEEDED)
                raise DistBackendError(
                    f"Rank {self._rank} timed out after {self.timeout} waiting for rank {r} to "
                    f"reach collective {mine}: rank {r} runs another collective, none, or has "
                    f"stopped ({type(e).__name__}: {str(e).splitlines()[0]})") from None
            if theirs != mine:
                raise RuntimeError(f"Detected mismatch between collectives on ranks. Rank "
                                   f"{self._rank} is running collective: {mine}, but Rank {r} is "
                                   f"running collective: {theirs}.")
        if seq:  # every process has read the previous entry once it posted this one
            client.key_value_delete(f"tapegrad/collective/{seq - 1}/{self._rank}")

    def barrier(self, timeout: datetime.timedelta | None = None) -> None:
        if self.client is None:
            return
        self._barriers += 1
        timeout = timeout or self.timeout
        try:
            self.client.wait_at_barrier(f"tapegrad/barrier/{self._barriers}",
                                        max(1, int(timeout.total_seconds() * 1000)))
        except Exception as e:
            raise DistBackendError(f"Rank {self._rank} timed out after {timeout} in barrier() "
                                   f"number {self._barriers}: some rank did not reach it "
                                   f"({type(e).__name__}: {str(e).splitlines()[0]})") from None


class _World:
    group: ProcessGroup | None = None
    shut_down = False  # JAX starts its distributed runtime once per process


_world = _World()


class GroupMember:
    """`dist.group.WORLD`: the default process group (None before `init_process_group`)."""

    WORLD = None


group = GroupMember


def is_available() -> bool:
    """True: collectives are JAX's, available wherever JAX runs."""
    return True


def is_initialized() -> bool:
    return _world.group is not None


def is_gloo_available() -> bool:
    return True


def is_nccl_available() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def is_mpi_available() -> bool:
    return False


def is_torchelastic_launched() -> bool:
    """True when launched by torchrun (or `python -m tapegrad.distributed.run`)."""
    return os.environ.get("TORCHELASTIC_RUN_ID") is not None


def default_group(group=None) -> ProcessGroup:
    """The default group (the only one), or PyTorch's error before `init_process_group`."""
    if _world.group is None:
        raise ValueError(_NOT_INITIALIZED)
    if group is not None and group is not _world.group:
        raise ValueError("tapegrad has one process group, the default one (group=None or "
                         "dist.group.WORLD); new_group is not available")
    return _world.group


def _env(name: str, method: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise ValueError(f"Error initializing torch.distributed using {method} rendezvous: "
                         f"environment variable {name} expected, but not set")
    return value


def _rendezvous(init_method: str | None, world_size: int, rank: int) -> tuple:
    """(coordinator address, world size, rank) from `init_method` and torchrun's variables."""
    method = init_method or "env://"
    if method.startswith("env://"):  # PyTorch's order of checks
        if rank == -1:
            rank = int(_env("RANK", "env://"))
        if world_size == -1:
            world_size = int(_env("WORLD_SIZE", "env://"))
        addr = _env("MASTER_ADDR", "env://")
        port = int(_env("MASTER_PORT", "env://"))
        if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
            port += 1  # torchrun's agent holds MASTER_PORT for its own store
        address = f"{addr}:{port}"
    elif method.startswith("tcp://"):
        address = method[len("tcp://"):].split("?")[0]
        if rank == -1 and "RANK" in os.environ:
            rank = int(os.environ["RANK"])
        if world_size == -1 and "WORLD_SIZE" in os.environ:
            world_size = int(os.environ["WORLD_SIZE"])
        if rank == -1:
            raise ValueError("Error initializing torch.distributed using tcp:// rendezvous: "
                             "rank parameter missing")
        if world_size == -1:
            raise ValueError("Error initializing torch.distributed using tcp:// rendezvous: "
                             "world size parameter missing")
    else:
        raise ValueError(f"init_method {init_method!r} is not supported: tapegrad rendezvous "
                         "through JAX's coordination service, reached with 'env://' (MASTER_ADDR,"
                         " MASTER_PORT, RANK, WORLD_SIZE) or 'tcp://host:port'")
    if not 0 <= rank < world_size:
        raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, "
                         f"{world_size - 1}]")
    return address, world_size, rank


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout: datetime.timedelta | None = None, world_size: int = -1,
                       rank: int = -1, store=None, group_name: str = "", pg_options=None,
                       device_id=None) -> None:
    """Join the job's processes: `jax.distributed.initialize` at the coordinator that rank 0 hosts.

    Reads torchrun's `MASTER_ADDR`, `MASTER_PORT`, `RANK` and `WORLD_SIZE` with
    `init_method="env://"` (the default), or takes `"tcp://host:port"` with `rank` and
    `world_size`. The backends "gloo", "nccl" and None all run JAX's collectives (gloo's on CPU).
    JAX starts its distributed runtime before its devices: with more than one process, call this
    before any tensor is computed. `timeout` bounds every collective and barrier.
    """
    if _world.group is not None:
        raise ValueError("trying to initialize the default process group twice!")
    if _world.shut_down:
        raise RuntimeError("init_process_group after destroy_process_group: JAX starts its "
                           "distributed runtime once per process; start a new process instead")
    if store is not None:
        raise ValueError("init_process_group(store=...) is not supported: the processes meet "
                         "through JAX's coordination service; pass init_method or set "
                         "MASTER_ADDR/MASTER_PORT")
    if backend is None:  # PyTorch's name: "nccl" for a CUDA device_id, else "undefined"
        cuda = device_id is not None and _device.device(device_id).type == "cuda"
        backend = Backend.NCCL if cuda else Backend.UNDEFINED
    backend = Backend(backend)
    timeout = timeout or default_pg_timeout
    seconds = max(1, int(timeout.total_seconds()))
    address, world_size, rank = _rendezvous(init_method, world_size, rank)
    distributed = world_size > 1
    if distributed:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        try:
            jax.distributed.initialize(address, world_size, rank, initialization_timeout=seconds,
                                       shutdown_timeout_seconds=min(seconds, 300))
        except RuntimeError as e:
            if "must be called before" not in str(e):
                raise
            raise RuntimeError(
                "init_process_group must run before any tensor is computed: JAX connects the "
                "processes before it starts its devices, and they have started in this process. "
                "Call init_process_group at the top of the script, before building the model "
                "or data.") from None
    local = (_device.device(device_id).jax_device() if device_id is not None
             else _device.default_jax_device())
    devices = _devices_of_ranks(local, rank, world_size, timeout) if distributed else [local]
    _world.group = GroupMember.WORLD = ProcessGroup(rank, world_size, backend, timeout, devices,
                                              distributed)


def _devices_of_ranks(local, rank: int, world_size: int, timeout: datetime.timedelta) -> list:
    """The device each rank runs its collectives on (each process posts its own)."""
    client = distributed_client()
    client.key_value_set(f"tapegrad/device/{rank}", str(local.id))
    by_id = {d.id: d for d in jax.devices()}
    ms = max(1, int(timeout.total_seconds() * 1000))
    return [local if r == rank else by_id[int(client.blocking_key_value_get(
        f"tapegrad/device/{r}", ms))] for r in range(world_size)]


def destroy_process_group(group=None) -> None:
    """Leave the group (`jax.distributed.shutdown`); JAX cannot start it again in this process."""
    pg = default_group(group)
    if pg.client is not None:
        jax.distributed.shutdown()
        _world.shut_down = True
    _world.group = GroupMember.WORLD = None


def get_rank(group=None) -> int:
    return default_group(group).rank()


def get_world_size(group=None) -> int:
    return default_group(group).size()


def get_backend(group=None) -> Backend:
    return default_group(group).backend


def barrier(group=None, async_op: bool = False, device_ids=None,
            timeout: datetime.timedelta | None = None):
    """Wait until every process arrives (DistBackendError after the group's timeout)."""
    default_group(group).barrier(timeout)
    return Work() if async_op else None


class Work:
    """What an `async_op=True` collective returns. JAX dispatches asynchronously already, and a
    tensor read waits for its value, so the work is complete as far as Python can see."""

    def wait(self, timeout=None) -> bool:
        return True

    def is_completed(self) -> bool:
        return True

    def is_success(self) -> bool:
        return True
