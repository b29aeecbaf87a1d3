"""Custom differentiable operations: `autograd.Function` with a user-written backward.

The forward runs on tensors with recording off; its outputs become one node of the graph whose
backward is the user's `backward(ctx, *grads)`, called between the compiled segments of the
backward pass (see `_autograd.engine`). Under `create_graph=True` the user's backward is itself recorded,
so custom functions take part in higher-order gradients.
"""
from __future__ import annotations

import functools
from typing import Any

from .._autograd.engine import FREED_MESSAGE, cotangent_tensor
from .._core import anomaly as _anomaly, grad_mode as _grad_mode
from .._core.graph import SAVES_ALL, Node, Op
from .._core.ops import full_op
from .._core.record import no_grad_input, record
from .._tensor.apply import apply
from .._tensor.tensor import Tensor


class _Packed:
    """A tensor saved under saved_tensors_hooks: what `pack` returned and the `unpack` to call."""

    __slots__ = ("packed", "unpack_hook")

    def __init__(self, packed: Any, unpack_hook) -> None:
        self.packed, self.unpack_hook = packed, unpack_hook

    def unpack(self) -> Tensor:
        t = self.unpack_hook(self.packed)
        if not isinstance(t, Tensor):
            raise TypeError(f"Output of saved tensor unpack_hook expected to be a Tensor but got "
                            f"result of type {type(t).__name__}")
        return t


class FunctionCtx:
    """The `ctx` handed to `forward`/`backward`: saved tensors and any attributes you set."""

    def __init__(self) -> None:
        self._saved = ()
        self._versions = ()
        self._freed = False
        self.needs_input_grad: tuple = ()
        self.materialize_grads = True
        self._non_differentiable: set = set()  # ids of the outputs marked, while forward runs
        self._non_differentiable_pos: set = set()  # their positions among the outputs
        self._n_outputs = 1
        self._tensor_pos: list = [0]

    def save_for_backward(self, *tensors) -> None:
        """Keep tensors for `backward` (checked there for in-place changes, as in PyTorch)."""
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument is of "
                                f"type {type(t).__name__}")
        hooks = _grad_mode.state.saved_hooks
        if hooks:
            # PyTorch's saved-tensor hooks: packed now, unpacked at each use, and (as PyTorch)
            # no version check: what unpack returns is what backward gets
            pack, unpack, _ = hooks[-1]
            self._saved = tuple(None if t is None else _Packed(pack(t), unpack) for t in tensors)
            self._versions = (None,) * len(tensors)
        else:
            self._saved = tensors
            self._versions = tuple(None if t is None else t._version for t in tensors)

    save_for_forward = save_for_backward

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(FREED_MESSAGE)
        saved = tuple(t.unpack() if type(t) is _Packed else t for t in self._saved)
        for t, version in zip(saved, self._versions):
            if version is not None and t._version != version:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an "
                    f"inplace operation: [{t.type()} {list(t.shape)}] is at version "
                    f"{t._version}; expected version {version} instead.")
        return saved

    def mark_non_differentiable(self, *outputs) -> None:
        self._non_differentiable.update(id(o) for o in outputs)

    def mark_dirty(self, *tensors) -> None:
        """Accepted for compatibility: tapegrad's forward results are always new values."""

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)


def _ctx_attribute(node: Node, name: str):
    """In PyTorch a custom Function's grad_fn is its ctx: `grad_fn.saved_tensors` and whatever
    `forward` set on ctx are read through the node."""
    try:
        ctx = object.__getattribute__(node, "ctx")
    except AttributeError:
        raise AttributeError(f"'{type(node).__name__}' object has no attribute '{name}'") from None
    return getattr(ctx, name)


def _one_output(*xs, n_out):
    """The node's value is the forward's output (its first input)."""
    return xs[0]


def _outputs(*xs, n_out):
    """The node's value is the tuple of the forward's tensor outputs (its first `n_out` inputs)."""
    return tuple(xs[:n_out])


class _FunctionOp(Op):
    """The registry row of one `Function` subclass; its backward is the user's code.

    A forward returning one tensor makes a one-output node; one returning a tuple makes a
    multi-output node (`n_out=None`) whose outputs are its tensors, in order.
    """

    __slots__ = ("cls",)

    def __init__(self, cls, node_cls, multi: bool) -> None:
        super().__init__(cls.__name__, _outputs if multi else _one_output, saves=SAVES_ALL,
                         n_out=None if multi else 1, grad_name=f"{cls.__name__}Backward",
                         register=False)
        self.cls = cls
        self.node_cls = node_cls

    def custom_backward(self, node: Node, ct, create_graph: bool):
        """Call the user's backward; yields (input node, gradient tensor, argument position).

        `ct`: the output's gradient, or for a tuple-returning forward {output position among
        the tensors: gradient} for the outputs a gradient reached. `backward` gets one gradient
        per output of `forward`, as in PyTorch: None for a non-tensor output; for a tensor
        output that no gradient reached (unused, or marked non-differentiable), zeros, or None
        after `ctx.set_materialize_grads(False)`.
        """
        ctx = node.ctx
        n_out = dict(node.static)["n_out"]
        cts = {0: ct} if self.n_out == 1 else ct
        shapes = (node.shape,) if self.n_out == 1 else node.shape
        dtypes = (node.dtype,) if self.n_out == 1 else node.dtype
        grads_in = [None] * ctx._n_outputs
        for k, pos in enumerate(ctx._tensor_pos):
            if k in cts and pos not in ctx._non_differentiable_pos:
                grads_in[pos] = cotangent_tensor(cts[k], shapes[k], dtypes[k])
            elif ctx.materialize_grads:
                grads_in[pos] = apply(full_op, 0, shape=tuple(shapes[k]), dtype=dtypes[k].np)
        name = self.node_cls.__name__
        with _grad_mode.set_grad_enabled(create_graph):
            grads = self.cls.backward(ctx, *grads_in)
        grads = grads if isinstance(grads, tuple) else (grads,)
        n_args = len(ctx.needs_input_grad)
        if len(grads) < n_args or any(g is not None for g in grads[n_args:]):
            raise RuntimeError(f"function {name} returned an incorrect number of "
                               f"gradients (expected {n_args}, got {len(grads)})")
        for pos, input_node in zip(node.arg_index, node.inputs[n_out:]):
            g = grads[pos]
            if g is None:
                continue
            if not isinstance(g, Tensor):
                raise RuntimeError(f"function {name} returned a gradient at index {pos} that is "
                                   f"not a tensor: expected Variable or None (got "
                                   f"{type(g).__name__})")
            g = _sum_to(g, input_node.shape, name, pos)
            if g.dtype is not input_node.dtype:  # PyTorch casts to the input's dtype
                g = g.to(input_node.dtype)
            yield input_node, g, pos

    def free(self, node: Node) -> None:
        node.ctx._freed = True
        node.ctx._saved = ()


def _sum_to(g: Tensor, shape: tuple, name: str, pos: int) -> Tensor:
    """Reduce a broadcast gradient to `shape`, or raise PyTorch's error when it cannot be."""
    if tuple(g.shape) == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    ok = lead >= 0 and all(s == 1 or s == gs for s, gs in zip(shape, g.shape[lead:]))
    if not ok:
        raise RuntimeError(f"Function {name} returned an invalid gradient at index {pos} - got "
                           f"{list(g.shape)} but expected shape compatible with {list(shape)}")
    dims = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape)
                                      if s == 1 and g.shape[lead + i] != 1)
    return g.sum(dim=dims, keepdim=True).reshape(shape) if dims else g.reshape(shape)


class Function:
    """Subclass with static `forward(ctx, *args)` and `backward(ctx, *grads)`; call `.apply`.

    Example::

        class Square(tapegrad.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            def backward(ctx, grad):
                (x,) = ctx.saved_tensors
                return 2 * x * grad
    """

    @staticmethod
    def forward(ctx, *args, **kwargs) -> Any:
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        raise NotImplementedError("setup_context is not overridden")

    @staticmethod
    def backward(ctx, *grad_outputs) -> Any:
        raise NotImplementedError("You must implement either the backward or vjp method for your "
                                  "custom autograd.Function to use it with backward mode AD.")

    @classmethod
    def _op(cls, multi: bool) -> _FunctionOp:
        """The row for a forward returning a tuple (`multi`) or one tensor; one node class."""
        ops = cls.__dict__.get("_function_ops")
        if ops is None:
            node_cls = type(f"{cls.__name__}Backward", (Node,),
                            {"__slots__": ("ctx", "arg_index"), "__getattr__": _ctx_attribute})
            ops = cls._function_ops = (_FunctionOp(cls, node_cls, False),
                                       _FunctionOp(cls, node_cls, True))
        return ops[multi]

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = FunctionCtx()
        grad_on = _grad_mode.is_grad_enabled()
        ctx.needs_input_grad = tuple(grad_on and isinstance(a, Tensor) and a.requires_grad
                                     for a in args)
        with _grad_mode.no_grad():
            if cls.setup_context is not Function.setup_context:
                out = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, out)
            else:
                out = cls.forward(ctx, *args, **kwargs)
        if not any(ctx.needs_input_grad):
            return out
        multi = isinstance(out, tuple)
        outs = out if multi else (out,)
        tensor_pos = [i for i, o in enumerate(outs) if isinstance(o, Tensor)]
        if not tensor_pos:
            return out
        ctx._n_outputs, ctx._tensor_pos = len(outs), tensor_pos
        ctx._non_differentiable_pos = {i for i in tensor_pos
                                       if id(outs[i]) in ctx._non_differentiable}
        values = tuple(no_grad_input(outs[i]._node) for i in tensor_pos)
        arg_index = [i for i, needs in enumerate(ctx.needs_input_grad) if needs]
        arg_nodes = tuple(args[i]._autograd_node() for i in arg_index)
        nodes = record(cls._op(multi), values + arg_nodes, (("n_out", len(values)),), True)
        parent = nodes if not isinstance(nodes, tuple) else nodes[0].inputs[0]
        parent.ctx = ctx
        parent.arg_index = arg_index
        if _anomaly.state.enabled:
            _anomaly.remember_forward(parent)
        nodes = nodes if isinstance(nodes, tuple) else (nodes,)
        result = list(outs)
        for i, node in zip(tensor_pos, nodes):
            t = Tensor._from_node(node)
            if i in ctx._non_differentiable_pos:
                t.detach_()
            result[i] = t
        return tuple(result) if isinstance(out, tuple) else result[0]


def once_differentiable(fn):
    """Mark a backward as not differentiable twice (accepted; tapegrad records it anyway)."""
    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with _grad_mode.no_grad():
            return fn(ctx, *args)
    return wrapper
