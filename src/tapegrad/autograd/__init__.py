"""`tapegrad.autograd`: run the backward pass (`backward`, `grad`) and define custom functions."""
from __future__ import annotations

from typing import Sequence

from .. import _compile
from .._engine import Backward, cotangent_tensor
from .._grad_mode import enable_grad, inference_mode, no_grad, set_grad_enabled
from .._tensor import Tensor
from . import function, functional
from .function import Function, FunctionCtx, once_differentiable

__all__ = ["backward", "grad", "Function", "FunctionCtx", "once_differentiable", "Variable",
           "cache_info", "clear_cache", "set_cache_limit", "no_grad", "enable_grad",
           "set_grad_enabled", "inference_mode", "function", "functional"]

cache_info = _compile.cache_info
clear_cache = _compile.clear_cache
set_cache_limit = _compile.set_cache_limit


def _seq(x) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _roots(outputs: list, grad_outputs: list):
    if grad_outputs and len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad can be implicitly created only for scalar outputs: got "
                           f"{len(grad_outputs)} gradients for {len(outputs)} tensors")
    roots, cts = [], []
    for i, t in enumerate(outputs):
        g = grad_outputs[i] if grad_outputs else None
        if not isinstance(t, Tensor):
            raise TypeError(f"backward expects tensors, got {type(t).__name__} at index {i}")
        if not t.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a "
                               "grad_fn")
        if g is None:
            if t.numel() != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs "
                                   f"(output {i} has shape {list(t.shape)})")
            g = 1.0
        else:
            if not isinstance(g, Tensor):
                from .._factory import tensor
                g = tensor(g, dtype=t.dtype)
            if g.shape != t.shape:
                raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                                   f"{g.shape} and output[{i}] has a shape of {t.shape}.")
        roots.append(t._autograd_node())
        cts.append(g)
    return roots, cts


def _target_key(t: Tensor) -> int:
    return id(t) if t.is_leaf else id(t._grad_node)


def backward(tensors, grad_tensors=None, retain_graph: bool | None = None,
             create_graph: bool = False, grad_variables=None,
             inputs: "Sequence[Tensor] | Tensor | None" = None) -> None:
    """Accumulate the gradients of `tensors` into the `.grad` of the leaves (or of `inputs`)."""
    outputs = _seq(tensors)
    roots, cts = _roots(outputs, _seq(grad_tensors if grad_tensors is not None else grad_variables))
    inputs = _seq(inputs)
    if inputs and not all(t.requires_grad for t in inputs):
        raise RuntimeError("One of the differentiated Tensors does not require grad")
    targets = {_target_key(t) for t in inputs} if inputs else None
    run = Backward(roots, cts, targets=targets, capture=False,
                   retain_graph=create_graph if retain_graph is None else retain_graph,
                   create_graph=create_graph)
    run.run()
    for t in inputs:  # non-leaf inputs accumulate into their own .grad
        if not t.is_leaf and _target_key(t) in run.captured:
            g = cotangent_tensor(run.captured[_target_key(t)], t.shape, t.dtype)
            t._grad = g if t._grad is None else t._grad + g


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         create_graph: bool = False, only_inputs: bool = True, allow_unused: bool | None = None,
         is_grads_batched: bool = False, materialize_grads: bool = False) -> tuple:
    """The gradients of `outputs` with respect to `inputs`, as a tuple (`.grad` is untouched)."""
    if is_grads_batched:
        raise NotImplementedError("is_grads_batched=True is not supported; call grad once per "
                                  "grad_outputs, or use tapegrad.autograd.functional.jacobian")
    inputs = _seq(inputs)
    roots, cts = _roots(_seq(outputs), _seq(grad_outputs))
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    run = Backward(roots, cts, targets={_target_key(t) for t in inputs}, capture=True,
                   retain_graph=create_graph if retain_graph is None else retain_graph,
                   create_graph=create_graph)
    run.run()
    result = []
    for t in inputs:
        g = run.captured.get(_target_key(t))
        if g is None:
            if materialize_grads:
                from .._factory import zeros_like
                g = zeros_like(t)
            elif not allow_unused:
                raise RuntimeError("One of the differentiated Tensors appears to not have been "
                                   "used in the graph. Set allow_unused=True if this is the "
                                   "desired behavior.")
        else:
            g = cotangent_tensor(g, t.shape, t.dtype)
            if not create_graph:
                g = g.detach()
        result.append(g)
    return tuple(result)


def Variable(data: Tensor, requires_grad: bool = False) -> Tensor:  # noqa: N802 - PyTorch's name
    """Deprecated in PyTorch: tensors are variables. Returns `data` (with `requires_grad` set)."""
    if requires_grad:
        data.requires_grad_(True)
    return data
