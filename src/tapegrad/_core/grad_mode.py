"""Grad mode: whether new operations are recorded on the tape (thread-local, as in PyTorch)."""
from __future__ import annotations

import functools
import inspect
import threading


class _State(threading.local):
    enabled = True
    inference = False
    # autograd.graph.saved_tensors_hooks in effect, innermost last: (pack, unpack, recomputes),
    # `recomputes` True for hooks whose purpose recomputing already serves (save_on_cpu)
    saved_hooks: tuple = ()
    hooks_disabled: str | None = None  # disable_saved_tensors_hooks's message


state = _State()


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad are recorded."""
    return state.enabled


def is_inference_mode_enabled() -> bool:
    return state.inference


class _Mode:
    """Base of the grad-mode context managers; each also works as a decorator."""

    _enabled: bool
    _inference = None  # None: leave inference mode as it is

    def __enter__(self) -> None:
        self._prev = (state.enabled, state.inference)
        state.enabled = self._enabled
        if self._inference is not None:
            state.inference = self._inference

    def __exit__(self, *exc) -> None:
        state.enabled, state.inference = self._prev

    def clone(self) -> "_Mode":
        return type(self)()

    def __call__(self, fn):
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen_wrapper(*args, **kwargs):
                gen = fn(*args, **kwargs)
                try:
                    with self.clone():
                        response = gen.send(None)
                    while True:
                        try:
                            request = yield response
                        except GeneratorExit:
                            with self.clone():
                                gen.close()
                            raise
                        except BaseException as exc:
                            with self.clone():
                                response = gen.throw(exc)
                        else:
                            with self.clone():
                                response = gen.send(request)
                except StopIteration as stop:
                    return stop.value
            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.clone():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_Mode):
    """Context manager and decorator that disables recording: results never require grad."""

    _enabled = False

    def __new__(cls, orig_func=None):
        if callable(orig_func):  # used as a bare decorator: @no_grad
            return super().__new__(cls)(orig_func)
        return super().__new__(cls)


class enable_grad(no_grad):
    """Context manager and decorator that enables recording (inside `no_grad`, say)."""

    _enabled = True


class set_grad_enabled(_Mode):
    """Set grad mode to `mode`; takes effect at once, and also works as a context manager."""

    def __init__(self, mode: bool) -> None:
        self._enabled = bool(mode)
        self._prev = (state.enabled, state.inference)
        state.enabled = self._enabled

    def __enter__(self) -> None:
        pass

    def clone(self) -> "set_grad_enabled":
        return _FixedMode(self._enabled)


class _FixedMode(_Mode):
    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled


class inference_mode(_Mode):
    """Like `no_grad` (the tensors made inside never require grad), as in PyTorch."""

    def __init__(self, mode: bool = True) -> None:
        self._mode = bool(mode)
        self._enabled = not self._mode if self._mode else state.enabled
        self._inference = self._mode

    def __enter__(self) -> None:
        self._enabled = False if self._mode else state.enabled
        super().__enter__()

    def clone(self) -> "inference_mode":
        return inference_mode(self._mode)
