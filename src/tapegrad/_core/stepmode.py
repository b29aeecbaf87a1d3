"""What a compiled step touches: the hooks `tapegrad.compile` listens on.

While a step function runs under `tapegrad.compile`, `state.active` holds a `StepLog`; the engine
reports to it the storage it reads and writes, the leaves whose `.grad` it sets, and the Python
numbers it feeds to programs. Outside a compiled step `state.active` is None and the hooks cost
two lookups. The state is thread-local (as grad mode is): a step compiled or run in one thread
neither sees nor logs what another thread's code does.
"""
from __future__ import annotations

import itertools
import threading
import weakref

_NUMBERS = (int, float, bool, complex)


class _State(threading.local):
    active = None  # the StepLog of the step this thread is running or tracing, if any


state = _State()
optimizers: weakref.WeakSet = weakref.WeakSet()  # live optimizers (their hyperparameters are lifted)
# A number per storage cell and node, in creation order: cells older than a step are its state.
next_serial = itertools.count().__next__


class StepLog:
    """Storage read and written by one run of a step function, and what else it depends on."""

    def __init__(self, tracing: bool) -> None:
        self.tracing = tracing
        self.start = next_serial()
        self.reads: dict = {}  # id(cell) -> cell, storage older than the step read as a value
        self.writes: dict = {}  # id(cell) -> cell, storage older than the step written
        self.grad_owners: dict = {}  # id(tensor) -> tensor, leaves whose .grad the step sets
        self.generators: dict = {}  # id(generator) -> generator, the generators the step draws from
        self.scalars: list = []  # Python numbers fed to programs, in order
        self.hyperparams: list = []  # (optimizer, group index) whose hyperparameters are lifted
        self.lifted: dict = {}  # while tracing: (id(optimizer), group index) -> traced values
        # a 1-D mesh of one device per process when the step runs in every process on its own
        # values with collectives between them (DistributedDataParallel sets it)
        self.per_process = None
        # (read, value): Python state the step's code branched on (DDP's no_sync), read again
        # before each compiled call; a change makes the step be learned again
        self.conditions: list = []

    def read(self, cell) -> None:
        if cell.serial < self.start and id(cell) not in self.reads:
            if self.tracing:
                raise UntrackedState("reads")
            self.reads[id(cell)] = cell

    def write(self, cell) -> None:
        if cell.serial < self.start and id(cell) not in self.writes:
            if self.tracing:
                raise UntrackedState("writes")
            self.writes[id(cell)] = cell

    def scalars_of(self, node) -> None:
        """Log the Python numbers a node made by this step feeds to a program."""
        if node.serial >= self.start:
            self.scalars.extend(x for x in node.inputs if type(x) in _NUMBERS)

    def grad_owner(self, tensor) -> None:
        if id(tensor) not in self.grad_owners:
            if self.tracing:
                raise UntrackedState("sets the .grad of")
            self.grad_owners[id(tensor)] = tensor

    def generator(self, gen) -> None:
        if id(gen) not in self.generators:
            if self.tracing:
                raise UntrackedState("draws random numbers from")
            self.generators[id(gen)] = gen


class UntrackedState(RuntimeError):
    """A traced step touched storage its eager runs did not: it must be rediscovered."""


def tracing() -> bool:
    """True while a compiled step is being traced (values are tracers)."""
    log = state.active
    return log is not None and log.tracing


def write(cell) -> None:
    log = state.active
    if log is not None:
        log.write(cell)


def grad_owner(tensor) -> None:
    log = state.active
    if log is not None:
        log.grad_owner(tensor)


def generator(gen) -> None:
    log = state.active
    if log is not None:
        log.generator(gen)


def hyperparams(optimizer, group_index: int, values: dict) -> dict:
    """Optimizer hyperparameters as the step should use them: traced inputs under compile, so a
    scheduler's new learning rate takes effect without recompiling."""
    log = state.active
    if log is None:
        return values
    key = (id(optimizer), group_index)
    if log.tracing:
        return log.lifted[key]
    if not any(o is optimizer and g == group_index for o, g in log.hyperparams):
        log.hyperparams.append((optimizer, group_index))
    return values
