"""`backward()` and `autograd.grad`: check the roots and their gradients as PyTorch does, then
run one `Backward` over them.
"""
from __future__ import annotations

from typing import Sequence

from .._core.ops import full_op
from .._tensor.apply import apply
from .._tensor.construct import tensor
from .._tensor.hooks import HookDict, RemovableHandle
from .._tensor.methods import method
from .._tensor.tensor import Tensor
from .engine import Backward, cotangent_tensor
from .grads import write_grad


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
            write_grad(t, g, accumulate=True, in_place=False, create_graph=True)


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
                g = apply(full_op, 0, shape=tuple(t.shape), dtype=t.dtype.np)
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


@method("backward")
def tensor_backward(self: Tensor, gradient: "Tensor | None" = None,
                    retain_graph: bool | None = None, create_graph: bool = False,
                    inputs: "Sequence[Tensor] | None" = None) -> None:
    """Accumulate the gradient of this tensor into the `.grad` of the leaves that need it."""
    backward(self, gradient, retain_graph, create_graph, inputs=inputs)


@method("register_post_accumulate_grad_hook")
def register_post_accumulate_grad_hook(self: Tensor, hook) -> RemovableHandle:
    """Call `hook(tensor)` after a backward has accumulated a gradient into this leaf's `.grad`."""
    if self._grad_node is not None:
        raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
    if not self._requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if self._post_accumulate_hooks is None:
        self._post_accumulate_hooks = HookDict()
    handle = RemovableHandle(self._post_accumulate_hooks)
    self._post_accumulate_hooks[handle.id] = hook
    return handle
