"""`tapegrad.profiler` (torch.profiler) over JAX's profiler.

`profile` records a trace with `jax.profiler`: the host's work (tapegrad's Python, XLA's
compilation passes, program dispatch) and the devices' (XLA's kernels on a GPU or TPU), with
`record_function` ranges as named annotations. The trace is a TensorBoard profile directory (also
viewable in Perfetto); `export_chrome_trace` writes it as Chrome trace JSON and `key_averages`
aggregates its events by name, as PyTorch's table does.
"""
from __future__ import annotations

import contextlib
import enum
import gzip
import json
import os
import shutil
import socket
import tempfile
import time
import warnings
from typing import Any, Callable, Iterable, NamedTuple

import jax

__all__ = ["ProfilerAction", "ProfilerActivity", "profile", "record_function", "schedule",
           "tensorboard_trace_handler"]


class ProfilerActivity(enum.Enum):
    """Accepted for PyTorch's signature: JAX's trace covers the host and every device at once."""

    CPU = 0
    CUDA = 1
    XPU = 2
    MTIA = 3
    HPU = 4
    PrivateUse1 = 5


class ProfilerAction(enum.Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


_RECORDING = (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0,
             skip_first_wait: int = 0) -> Callable[[int], ProfilerAction]:
    """PyTorch's cycle: after `skip_first` steps, `wait` idle steps, `warmup` steps, `active`
    recorded steps (the last one saves), repeated `repeat` times (0: until the end)."""
    if not (wait >= 0 and warmup >= 0 and active > 0 and repeat >= 0 and skip_first >= 0):
        raise AssertionError("Invalid profiler schedule arguments")
    if warmup == 0:
        warnings.warn("Profiler won't be using warmup, this can skew profiler results")
    cycle = wait + warmup + active

    def action(step: int) -> ProfilerAction:
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if skip_first_wait:
            step += wait  # the first cycle starts at its warmup
        if repeat > 0 and step / cycle >= repeat:
            return ProfilerAction.NONE
        phase = step % cycle
        if phase < wait:
            return ProfilerAction.NONE
        if phase < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if phase < cycle - 1 else ProfilerAction.RECORD_AND_SAVE
    return action


def _always_record(step: int) -> ProfilerAction:
    return ProfilerAction.RECORD


def tensorboard_trace_handler(dir_name: str, worker_name: str | None = None,
                              use_gzip: bool = False) -> Callable[["profile"], None]:
    """An `on_trace_ready` that saves each trace under `dir_name`: JAX's profile (read by
    TensorBoard's profile plugin, `tensorboard --logdir dir_name`) and, as PyTorch names it,
    `{worker_name}.{time_ns}.pt.trace.json[.gz]` for Chrome's or Perfetto's trace viewer."""
    def handler(prof: profile) -> None:
        worker = worker_name or f"{socket.gethostname()}_{os.getpid()}"
        os.makedirs(dir_name, exist_ok=True)
        runs = os.path.join(prof.trace_dir, "plugins", "profile")
        for run in os.listdir(runs):
            shutil.copytree(os.path.join(runs, run),
                            os.path.join(dir_name, "plugins", "profile", run), dirs_exist_ok=True)
        name = f"{worker}.{time.time_ns()}.pt.trace.json" + (".gz" if use_gzip else "")
        prof.export_chrome_trace(os.path.join(dir_name, name))
    return handler


class record_function(contextlib.ContextDecorator):
    """A named range in the trace (`jax.profiler.TraceAnnotation`); a context manager or a
    decorator. Free when no profile is recording."""

    def __init__(self, name: str, args: str | None = None) -> None:
        self.name, self.args = name, args
        self._annotations: list = []

    def __enter__(self) -> "record_function":
        annotation = jax.profiler.TraceAnnotation(self.name, **({"args": self.args}
                                                                if self.args else {}))
        annotation.__enter__()
        self._annotations.append(annotation)
        return self

    def __exit__(self, *exc) -> None:
        self._annotations.pop().__exit__(*exc)


class FunctionEventAvg(NamedTuple):
    """The events of one name, summed: times in microseconds, as PyTorch reports them."""

    key: str
    count: int
    cpu_time_total: float
    self_cpu_time_total: float

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / self.count


class EventList(list):
    """`FunctionEventAvg`s, with PyTorch's `table`."""

    def table(self, sort_by: str | None = None, row_limit: int = 100, max_name_column_width: int = 55,
              **_unused: Any) -> str:
        rows = list(self)
        if sort_by is not None:
            if sort_by not in ("cpu_time_total", "self_cpu_time_total", "cpu_time", "count"):
                raise AttributeError(f"'FunctionEventAvg' object has no attribute '{sort_by}'")
            rows.sort(key=lambda e: getattr(e, sort_by), reverse=True)
        rows = rows[:row_limit] if row_limit >= 0 else rows
        total = sum(e.self_cpu_time_total for e in self) or 1.0
        width = min(max_name_column_width, max([len(e.key) for e in rows] + [4]))
        head = (f"{'Name':<{width}}  {'Self CPU %':>10}  {'Self CPU':>10}  {'CPU total %':>11}  "
                f"{'CPU total':>10}  {'CPU time avg':>12}  {'# of Calls':>10}")
        line = "-" * len(head)
        body = [f"{e.key[:width]:<{width}}  {100 * e.self_cpu_time_total / total:>9.2f}%  "
                f"{_us(e.self_cpu_time_total):>10}  {100 * e.cpu_time_total / total:>10.2f}%  "
                f"{_us(e.cpu_time_total):>10}  {_us(e.cpu_time):>12}  {e.count:>10}"
                for e in rows]
        return "\n".join([line, head, line, *body, line,
                          f"Self CPU time total: {_us(sum(e.self_cpu_time_total for e in self))}"])

    def __str__(self) -> str:
        return self.table()


def _us(t: float) -> str:
    return f"{t:.3f}us" if t < 1e3 else f"{t / 1e3:.3f}ms" if t < 1e6 else f"{t / 1e6:.3f}s"


class profile:
    """torch.profiler.profile over `jax.profiler`: use as a context manager (or `start()` and
    `stop()`), call `step()` at the end of each training step when a `schedule` is given.

    Each recorded cycle is a JAX trace in its own directory (`trace_dir`), handed to
    `on_trace_ready` when the cycle ends. `with_stack=True` adds JAX's Python tracer (every
    Python call is an event). `record_shapes`, `profile_memory`, `with_flops` and
    `with_modules` are accepted and add nothing: JAX's trace has no per-op shapes or FLOPs (use
    `jax.profiler.device_memory_profile()` for memory); asking for what they would give
    (`key_averages(group_by_input_shape=True)`) raises.
    """

    def __init__(self, *, activities: Iterable[ProfilerActivity] | None = None,
                 schedule: Callable[[int], ProfilerAction] | None = None,
                 on_trace_ready: Callable[["profile"], Any] | None = None,
                 record_shapes: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, with_flops: bool = False, with_modules: bool = False,
                 **_unused: Any) -> None:
        self.activities = set(activities or (ProfilerActivity.CPU,))
        self.schedule = schedule or _always_record
        self.on_trace_ready = on_trace_ready
        self.with_stack = with_stack
        self.step_num = 0
        self.trace_dir: str | None = None  # the last trace's directory
        self._action = ProfilerAction.NONE
        self._tracing = False

    def __enter__(self) -> "profile":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self._action = self.schedule(self.step_num)
        if self._action in _RECORDING:
            self._start_trace()

    def stop(self) -> None:
        if self._tracing:
            self._finish_trace()

    def step(self) -> None:
        """The end of a step: move along the schedule, saving a cycle that ends."""
        before = self._action
        self.step_num += 1
        self._action = self.schedule(self.step_num)
        if self._tracing and (before is ProfilerAction.RECORD_AND_SAVE
                              or self._action not in _RECORDING):
            self._finish_trace()
        if self._action in _RECORDING and not self._tracing:
            self._start_trace()

    def _start_trace(self) -> None:
        self.trace_dir = tempfile.mkdtemp(prefix="tapegrad-profile-")
        options = jax.profiler.ProfileOptions()
        options.python_tracer_level = 1 if self.with_stack else 0
        jax.profiler.start_trace(self.trace_dir, profiler_options=options)
        self._tracing = True

    def _finish_trace(self) -> None:
        jax.profiler.stop_trace()
        self._tracing = False
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def _trace_file(self) -> str:
        if self.trace_dir is None or self._tracing:
            raise RuntimeError("No trace to read: the profiler has not finished recording one "
                               "(leave the `with profile(...)` block, or call stop()).")
        for root, _, files in os.walk(self.trace_dir):
            for f in files:
                if f.endswith(".trace.json.gz"):
                    return os.path.join(root, f)
        raise RuntimeError(f"JAX wrote no trace into {self.trace_dir}")

    def events(self) -> list[dict]:
        """The trace's complete events (Chrome trace format: name, ts and dur in microseconds,
        pid, tid)."""
        with gzip.open(self._trace_file(), "rt") as f:
            return [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]

    def export_chrome_trace(self, path: str) -> None:
        """The trace as Chrome trace JSON (gzip-compressed when `path` ends in .gz)."""
        with gzip.open(self._trace_file(), "rb") as src, \
                (gzip.open(path, "wb") if path.endswith(".gz") else open(path, "wb")) as dst:
            shutil.copyfileobj(src, dst)

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0,
                     **_unused: Any) -> EventList:
        """The trace's events grouped by name: calls, total time and self time (the time not
        spent in events nested inside, on the same thread)."""
        if group_by_input_shape or group_by_stack_n:
            raise NotImplementedError("tapegrad.profiler: JAX's trace records no input shapes or "
                                      "stacks per event; group by name only.")
        totals: dict = {}
        by_thread: dict = {}
        for e in self.events():
            by_thread.setdefault((e["pid"], e["tid"]), []).append(e)
        for events in by_thread.values():
            events.sort(key=lambda e: (e["ts"], -e["dur"]))
            stack: list = []  # [end, name, time of children]
            for e in events:
                while stack and stack[-1][0] <= e["ts"]:
                    _close(stack.pop(), totals)
                if stack:
                    stack[-1][2] += e["dur"]
                stack.append([e["ts"] + e["dur"], e["name"], 0.0, e["dur"]])
            while stack:
                _close(stack.pop(), totals)
        return EventList(FunctionEventAvg(name, n, total, own)
                         for name, (n, total, own) in totals.items())


def _close(entry: list, totals: dict) -> None:
    _, name, children, dur = entry
    n, total, own = totals.get(name, (0, 0.0, 0.0))
    totals[name] = (n + 1, total + dur, own + dur - children)
