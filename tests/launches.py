"""The suite's long subprocesses — multi-process and many-device runs, the examples — started in
the background when collection ends, one after another, in the order the tests will want them.

The tests in the pytest process are mostly single-threaded compiles, which leave one of CI's two
cores idle; a launch runs there meanwhile, and its test later finds it done. A test module adds
its launches at import (`add`) and waits for one with `result`; a launch no test selected is never
started, and one a test asks for before its turn runs at once, in the asking thread.
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class _Launch:
    argv: list
    env: dict | None
    cwd: str | None
    timeout: float
    users: frozenset  # the tests and fixtures that read its result
    started: bool = False
    proc: subprocess.Popen | None = None
    result: subprocess.CompletedProcess | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


_LAUNCHES: dict[str, _Launch] = {}
_LOCK = threading.Lock()
_SCRATCH = Path(tempfile.mkdtemp(prefix="tapegrad-launches-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)


def scratch(name: str) -> Path:
    """A fresh directory for a launch's output files, removed when the session ends."""
    path = _SCRATCH / name
    path.mkdir()
    return path


def add(name: str, argv: list, *, users: tuple, env: dict | None = None, cwd=None,
        timeout: float = 600) -> None:
    """Declares launch `name`: `python`-style `argv`, run when a test or fixture in `users`
    (their function names) is selected."""
    assert name not in _LAUNCHES, name
    _LAUNCHES[name] = _Launch(list(map(str, argv)), env, None if cwd is None else str(cwd),
                              timeout, frozenset(users))


def result(name: str) -> subprocess.CompletedProcess:
    """Launch `name`'s exit status and output, waiting for it (running it now if not begun)."""
    launch = _LAUNCHES[name]
    if _claim(launch):
        _run(launch)
    launch.done.wait()
    if launch.error is not None:
        raise launch.error
    return launch.result


def _claim(launch: _Launch) -> bool:
    with _LOCK:
        if launch.started:
            return False
        launch.started = True
        return True


def _run(launch: _Launch) -> None:
    try:
        launch.proc = subprocess.Popen(launch.argv, env=launch.env, cwd=launch.cwd, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       start_new_session=True)  # a launcher's ranks with it
        try:
            out, err = launch.proc.communicate(timeout=launch.timeout)
        except subprocess.TimeoutExpired:
            _kill(launch.proc)
            out, err = launch.proc.communicate()
            raise AssertionError(f"{launch.argv} ran over {launch.timeout} s:\n{err[-4000:]}")
        launch.result = subprocess.CompletedProcess(launch.argv, launch.proc.returncode, out, err)
    except BaseException as e:  # noqa: BLE001 (the test that reads it raises it)
        launch.error = e
    finally:
        launch.done.set()


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def start(items: list) -> None:
    """Starts, in a background thread, the launches the selected `items` use, in the order of
    their first user."""
    order = []
    for item in items:
        names = {getattr(item, "originalname", item.name), *getattr(item, "fixturenames", ())}
        for name, launch in _LAUNCHES.items():
            if name not in order and launch.users & names:
                order.append(name)

    def run_all() -> None:
        for name in order:
            launch = _LAUNCHES[name]
            if _claim(launch):
                _run(launch)

    if order:
        threading.Thread(target=run_all, name="launches", daemon=True).start()


def stop() -> None:
    """Kills what still runs (a session cut short by -x or Ctrl-C)."""
    for launch in _LAUNCHES.values():
        if launch.proc is not None and launch.proc.poll() is None:
            _kill(launch.proc)
