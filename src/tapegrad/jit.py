"""`tapegrad.jit`: TorchScript's markers and entry points, so model code that carries them runs.

tapegrad has no TorchScript compiler: `script` and `trace` return the function or module they
are given, which then runs eagerly through tapegrad (its backward is still one compiled XLA
program per graph structure). They do not wrap it in `tapegrad.compile`, because that is not
sound for an arbitrary forward: a compiled call's results are cut from the autograd graph (a
loss computed from them would not reach the parameters), and Python reading a tensor's value
(`if x.sum() > 0:`) cannot run inside it. Compile a whole training step explicitly with
`tapegrad.compile` instead.

What differs from PyTorch, by design: `trace` does not run the function at trace time, and the
returned callable keeps Python's control flow live (PyTorch's tracer freezes the branches the
example inputs took); a method marked `@unused` still runs when called (PyTorch's scripted module
raises instead). `save` and `load` of serialized TorchScript raise: use `tapegrad.save` /
`tapegrad.load` for weights. PyTorch 2.13 deprecates TorchScript with DeprecationWarnings,
hidden by default; tapegrad issues none (its `ignore(True)` FutureWarning it does issue).
"""
from __future__ import annotations

import typing
import warnings
from typing import Any, Callable, NamedTuple, TypeVar

from .nn.modules.module import Module

__all__ = ["Attribute", "Error", "Final", "Future", "ScriptFunction", "ScriptModule",
           "TracerWarning", "annotate", "export", "fork", "freeze", "ignore", "interface",
           "is_scripting", "is_tracing", "load", "optimize_for_inference", "save", "script",
           "script_if_tracing", "script_method", "trace", "trace_module", "unused", "wait"]

F = TypeVar("F", bound=Callable)

Final = typing.Final  # `x: jit.Final[int]` marks a constant attribute, as in PyTorch


class Error(Exception):
    """TorchScript's runtime error type (`torch.jit.Error`)."""


class TracerWarning(Warning):
    """PyTorch's warning for tracing hazards (never issued: tapegrad does not trace)."""


class ScriptModule(Module):
    """The base class of scripted modules; subclassing it makes an ordinary tapegrad Module."""


class ScriptFunction:
    """The type name PyTorch gives scripted functions. `script` returns the function itself, so
    no object is ever of this type; the name exists for code that refers to it."""


class Attribute(NamedTuple):
    """`jit.Attribute(value, type)`: in eager code (and here) a plain `(value, type)` pair."""
    value: Any
    type: Any


def is_scripting() -> bool:
    """False: tapegrad code always runs in Python, never as TorchScript."""
    return False


def is_tracing() -> bool:
    """False: `trace` records nothing, the function runs as written."""
    return False


def script(obj: Any, optimize: None = None, _frames_up: int = 0, _rcb: Callable | None = None,
           example_inputs: list | dict | None = None) -> Any:
    """Return `obj` (a function, a module or a class) unchanged: it runs eagerly through
    tapegrad. See the module docstring for why it is not compiled."""
    return obj


def trace(func: Callable, example_inputs=None, optimize=None, check_trace: bool = True,
          check_inputs=None, check_tolerance: float = 1e-5, strict: bool = True,
          _force_outplace: bool = False, _module_class=None, _compilation_unit=None,
          example_kwarg_inputs: dict | None = None, _store_inputs: bool = True) -> Callable:
    """Return `func` (a function or a module) unchanged, to run eagerly; `example_inputs` are
    not run. Unlike PyTorch's tracer, Python control flow is not frozen by the examples."""
    if example_inputs is None and example_kwarg_inputs is None:
        raise TypeError("trace() needs example_inputs or example_kwarg_inputs, as PyTorch's: "
                        "'NoneType' object is not iterable")
    return func


def script_method(fn: F) -> F:
    """Mark a `ScriptModule` method (old-style TorchScript); it runs as written."""
    return fn


def script_if_tracing(fn: F) -> F:
    return fn


def ignore(drop=False, **kwargs):
    """`@jit.ignore` or `@jit.ignore(drop=True)`: leave the function to Python (it always is)."""
    if callable(drop):
        return drop
    if not isinstance(drop, bool):
        raise RuntimeError(f"Argument to @torch.jit.ignore must be a bool or a function but got "
                           f"{drop}")
    if drop or kwargs.pop("drop_on_export", None):
        warnings.warn(f"ignore({'True' if drop else 'drop_on_export=True'}) has been deprecated. "
                      "TorchScript will now drop the function call on compilation. Use "
                      "torch.jit.unused now. {}", FutureWarning, stacklevel=2)
    return lambda fn: fn


def unused(fn: F) -> F:
    """Mark a method the TorchScript compiler should skip; it still runs when called."""
    return fn


def export(fn: F) -> F:
    """Mark a method to be compiled besides `forward` (a no-op: nothing is compiled)."""
    return fn


def interface(obj: F) -> F:
    return obj


def _overload(fn: F) -> F:
    """A TorchScript overload declaration (torchvision's models carry them); the definition that
    follows it under the same name is the one that runs."""
    return fn


def _overload_method(fn: F) -> F:
    """`_overload` for methods."""
    return fn


def annotate(the_type: Any, the_value: Any) -> Any:
    """`the_value`: a type hint for the TorchScript compiler only."""
    return the_value


class Future:
    """The result of `fork`: the call already ran, `wait()` returns its value."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def wait(self) -> Any:
        return self._value

    def value(self) -> Any:
        return self._value

    def done(self) -> bool:
        return True


def fork(func: Callable, *args, **kwargs) -> Future:
    """Run `func(*args, **kwargs)` now (PyTorch's eager `fork` also runs it synchronously)."""
    return Future(func(*args, **kwargs))


def wait(future: Future) -> Any:
    return future.wait()


def freeze(mod: Module, preserved_attrs: list | None = None,
           optimize_numerics: bool = True) -> Module:
    """`mod` itself, once it is in eval mode (PyTorch's requirement); nothing is inlined."""
    if mod.training:
        raise RuntimeError("Freezing is currently only implemented for modules in eval mode. "
                           "Please call .eval() on your module before freezing.")
    return mod


def optimize_for_inference(mod: Module, other_methods: list | None = None) -> Module:
    """`freeze(mod.eval())`, as PyTorch (which then also fuses ops; XLA does that here)."""
    return freeze(mod.eval())


def _no_torchscript(what: str) -> None:
    raise NotImplementedError(
        f"tapegrad.jit.{what} is not supported: tapegrad has no TorchScript format. Save the "
        f"weights with tapegrad.save(model.state_dict(), path) and load them into the model "
        f"class with model.load_state_dict(tapegrad.load(path)).")


def save(m: Any, f: Any, _extra_files: dict | None = None) -> None:
    _no_torchscript("save")


def load(f: Any, map_location=None, _extra_files: dict | None = None) -> Any:
    _no_torchscript("load")


def trace_module(mod: Module, inputs: dict, *args, **kwargs) -> Module:
    """`mod` unchanged, as `trace` (its methods run eagerly)."""
    return mod
