"""`Tensor`: a value on the tape, with PyTorch's autograd attributes.

A tensor reads its value through a storage `Cell` (shared with `detach()` and `.data` aliases);
the value is a `jax.Array`, computed lazily from the recorded nodes. Autograd state lives on the
tensor: `requires_grad`, `grad`, and `_grad_node`, the node that produced it (None for a leaf).
"""
from __future__ import annotations

import warnings
import weakref
from typing import Any, Callable, Sequence

import jax
import numpy as np

from . import _device, _dtype, _grad_mode, _ops, _stepmode
from ._compile import materialize
from ._graph import AccumulateGrad, Cell, Const, grad_edge


# Storage updated in place with a value still pending (a BatchNorm running mean, a parameter
# after `w -= lr * w.grad`): the next backward computes these in its own program, so such chains
# neither grow nor keep old batches alive. Constants (a `zero_()` reset) are left to their readers.
pending_writes: weakref.WeakSet = weakref.WeakSet()


class Size(tuple):
    """A tensor's shape: a tuple of ints (`torch.Size`)."""

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self) -> str:
        return f"tapegrad.Size({list(self)})"

    def __getitem__(self, i):
        out = super().__getitem__(i)
        return Size(out) if isinstance(i, slice) else out


class RemovableHandle:
    """Returned by `register_hook`; `remove()` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict) -> None:
        self._hooks = weakref.ref(hooks) if hooks is not None else None
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        hooks = self._hooks() if self._hooks is not None else None
        if hooks is not None:
            hooks.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class HookDict(dict):
    """Hooks by handle id (a dict subclass, so a handle can hold a weak reference to it)."""


_NON_LEAF_GRAD_WARNING = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad field "
    "to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If you "
    "access the non-leaf Tensor by mistake, make sure you access the leaf Tensor instead.")


def _record_ops():
    from . import _record
    return _record


class Tensor:
    """A multi-dimensional array that records the operations applied to it for autograd.

    `tapegrad.Tensor(data)` is PyTorch's legacy constructor (float32); prefer `tapegrad.tensor`.
    """

    __slots__ = ("_cell", "_grad_node", "_requires_grad", "__weakref__", "__dict__")
    # Rarely set, so class-level defaults rather than per-instance slots (recording stays cheap).
    _grad = None
    _retains_grad = False
    _hooks = None
    _acc = None

    def __init__(self, *args, device=None) -> None:
        from ._factory import legacy_new
        other = legacy_new(args, device)  # a fresh tensor: this one takes over its storage
        self._cell, self._grad_node, self._requires_grad = (
            other._cell, other._grad_node, other._requires_grad)

    @classmethod
    def _from_node(cls, node, requires_grad: bool = False) -> "Tensor":
        t = object.__new__(cls)
        t._cell = Cell(node)
        t._grad_node = node if node.requires_grad else None
        t._requires_grad = requires_grad or node.requires_grad
        return t

    @classmethod
    def _from_array(cls, value, requires_grad: bool = False) -> "Tensor":
        return cls._from_node(Const(value, _dtype.from_numpy_dtype(value.dtype)), requires_grad)

    # -- value ------------------------------------------------------------------------------------
    def _value(self) -> jax.Array:
        node = self._cell.node
        if _stepmode.active is not None:
            _stepmode.active.read(self._cell)
        if node.value is None:
            materialize([node])
        return node.value

    def _host(self) -> np.ndarray:
        """The value as a numpy array on the host (Python needs it: item(), print, numpy())."""
        value = self._value()
        if isinstance(value, jax.core.Tracer):
            raise RuntimeError(
                "the code needs a tensor's value in Python (item(), bool(), float(), print, "
                "numpy() or a data-dependent branch), but the value is being traced (by "
                "tapegrad.compile or a JAX transformation such as jax.jit), so Python cannot see "
                "it. Return the tensor and read it outside, or run this code untraced.")
        return np.asarray(value)

    def _set_node(self, node) -> None:
        """Point this tensor's storage at a new value (an in-place update: bumps the version)."""
        if _stepmode.active is not None:
            _stepmode.active.write(self._cell)
        self._cell.assign(node)
        if node.value is None and not _stepmode.tracing():
            pending_writes.add(self._cell)

    def _set_value(self, value: jax.Array) -> None:
        """Store a computed array as this tensor's new value, in place (optimizers use this)."""
        cell = self._cell
        if _stepmode.active is not None:
            _stepmode.active.write(cell)
        cell.assign(Const(value, _dtype.from_numpy_dtype(value.dtype)))
        if cell.views is not None:  # views taken earlier show the new value
            from . import _views
            _views.refresh(cell)

    def jax(self) -> jax.Array:
        """The value as a `jax.Array` (no copy). Pending work is computed first."""
        return self._value()

    def _autograd_node(self):
        """The node a consumer's gradient flows into: grad_fn, or the leaf's AccumulateGrad."""
        node = self._cell.node
        if self._grad_node is not None:
            if self._grad_node is not node:  # storage changed through a detached alias
                from ._record import record
                node = record(_ops.rebase, (node, self._grad_node), (), True)
                self._cell.assign(node, bump=False)
                self._grad_node = node
            return self._grad_node
        acc = self._acc() if self._acc is not None else None
        if acc is None or acc.inputs[0] is not node:
            acc = AccumulateGrad(self, node)
            self._acc = weakref.ref(acc)
        return acc

    # -- metadata ---------------------------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._cell.node.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return self.shape
        return self._cell.node.shape[normalize_dim(dim, self.ndim)]

    @property
    def dtype(self) -> _dtype.dtype:
        return self._cell.node.dtype

    @property
    def device(self) -> _device.device:
        value = self._cell.node.value
        if value is not None and hasattr(value, "devices"):
            try:
                return _device.device(next(iter(value.devices())))
            except Exception:  # a tracer inside a compiled step has no device
                pass
        return _device.default_device()

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def ndim(self) -> int:
        return len(self._cell.node.shape)

    def dim(self) -> int:
        return self.ndim

    ndimension = dim

    def numel(self) -> int:
        return self.shape.numel()

    nelement = numel

    def element_size(self) -> int:
        return self.dtype.itemsize

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def is_complex(self) -> bool:
        return self.dtype.is_complex

    def is_contiguous(self, memory_format=None) -> bool:
        return True

    def __len__(self) -> int:
        if not self.ndim:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # -- autograd attributes ----------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if self._grad_node is not None:
            hint = "" if flag else (" If you want to use a computed variable in a subgraph that "
                                    "doesn't require differentiation use var_no_grad = var.detach().")
            raise RuntimeError("you can only change requires_grad flags of leaf variables." + hint)
        if flag and not (self.dtype.is_floating_point or self.dtype.is_complex):
            raise RuntimeError("only Tensors of floating point and complex dtype can require "
                               f"gradients (got {self.dtype})")
        self._requires_grad = bool(flag)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set `requires_grad` in place (leaves only) and return self."""
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (and all that don't require grad)."""
        return self._grad_node is None

    @property
    def grad_fn(self):
        """The node that produced this tensor (`MulBackward0`, ...), or None for a leaf."""
        if self._grad_node is None:
            return None
        return grad_edge(self._grad_node)[0]

    @property
    def output_nr(self) -> int:
        return 0 if self._grad_node is None else grad_edge(self._grad_node)[1]

    @property
    def grad(self) -> "Tensor | None":
        if self._grad_node is not None and not self._retains_grad:
            warnings.warn(_NON_LEAF_GRAD_WARNING, UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value: "Tensor | None") -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of "
                                f"type {type(value).__name__}")
            if value.dtype is not self.dtype:
                raise RuntimeError(f"assigned grad has data of a different type: expected "
                                   f"{self.dtype}, got {value.dtype}")
            if value.shape != self.shape:
                raise RuntimeError(f"assigned grad has data of a different size: expected "
                                   f"{list(self.shape)}, got {list(value.shape)}")
        self._grad = value

    @grad.deleter
    def grad(self) -> None:
        self._grad = None

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def retain_grad(self) -> None:
        """Keep `.grad` for this non-leaf tensor after backward (a no-op on leaves)."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._grad_node is None or self._retains_grad:
            return
        self._retains_grad = True
        ref = weakref.ref(self)
        node = self._grad_node
        if node.hooks is None:
            node.hooks = HookDict()
        node.hooks["retain"] = ref

    def register_hook(self, hook: Callable[["Tensor"], "Tensor | None"]) -> RemovableHandle:
        """Call `hook(grad)` when this tensor's gradient is computed; a returned tensor replaces it."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._grad_node is None:
            if self._hooks is None:
                self._hooks = HookDict()
            hooks = self._hooks
        else:
            node = self._grad_node
            if node.hooks is None:
                node.hooks = HookDict()
            hooks = node.hooks
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def backward(self, gradient: "Tensor | None" = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs: "Sequence[Tensor] | None" = None) -> None:
        """Accumulate the gradient of this tensor into the `.grad` of the leaves that need it."""
        from .autograd import backward
        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    # -- aliasing ---------------------------------------------------------------------------------
    def detach(self) -> "Tensor":
        """A tensor sharing this one's storage, cut from the graph (never requires grad)."""
        t = object.__new__(Tensor)
        t._cell = self._cell
        t._grad_node = None
        t._requires_grad = False
        return t

    def detach_(self) -> "Tensor":
        """Cut this tensor from the graph in place: it becomes a leaf that does not require grad."""
        self._grad_node = None
        self._requires_grad = False
        return self

    @property
    def data(self) -> "Tensor":
        """The same storage, outside autograd (updates through it are not recorded)."""
        return self.detach()

    @data.setter
    def data(self, other: "Tensor") -> None:
        if not isinstance(other, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(other).__name__}")
        self._cell = other._cell
        self._acc = None

    # -- conversion -------------------------------------------------------------------------------
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The value as a numpy array (read-only: JAX arrays are immutable)."""
        if self._requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
        return self._host()

    def __array__(self, dtype=None, copy=None):
        arr = self._host()
        return arr.astype(dtype) if dtype is not None else arr

    def item(self) -> int | float | bool | complex:
        """The value of a one-element tensor as a Python number."""
        if self.numel() != 1:
            raise RuntimeError(f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
        return self._host().reshape(()).item()

    def tolist(self):
        return self._host().tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.is_floating_point or self.dtype.is_complex or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __complex__(self) -> complex:
        return complex(self.item())

    def __hash__(self) -> int:
        return id(self)

    def __iter__(self):
        if not self.ndim:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self) -> str:
        from ._format import tensor_repr
        return tensor_repr(self)

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        if self.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def __reduce_ex__(self, protocol):
        raise TypeError("tapegrad tensors are not pickled; use tapegrad.save / tapegrad.load")

    # -- dtype and device -------------------------------------------------------------------------
    def to(self, *args, **kwargs) -> "Tensor":
        """`to(dtype)`, `to(device)`, `to(device, dtype)` or `to(other)`; returns self if unchanged."""
        from ._factory import parse_to
        dev, dtype, copy = parse_to(self, args, kwargs)
        out = self
        if dtype is not None and dtype is not self.dtype:
            out = _record_ops().apply(_ops.to_dtype, out, dtype=dtype.np)
        if dev is not None and dev != self.device:
            out = _device.move(out, dev)
        if copy and out is self:
            out = self.clone()
        return out

    def type(self, dtype=None):
        if dtype is None:
            return f"tapegrad.{_LEGACY_NAMES.get(self.dtype.name, self.dtype.name)}"
        return self.to(_dtype.as_dtype(dtype))

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.to(other.dtype)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device=None) -> "Tensor":
        return self.to(_device.device("cuda" if device is None else device))

    def float(self) -> "Tensor":
        return self.to(_dtype.float32)

    def double(self) -> "Tensor":
        return self.to(_dtype.float64)

    def half(self) -> "Tensor":
        return self.to(_dtype.float16)

    def bfloat16(self) -> "Tensor":
        return self.to(_dtype.bfloat16)

    def long(self) -> "Tensor":
        return self.to(_dtype.int64)

    def int(self) -> "Tensor":
        return self.to(_dtype.int32)

    def bool(self) -> "Tensor":
        return self.to(_dtype.bool)

    def clone(self, *, memory_format=None) -> "Tensor":
        """A copy with its own storage; gradients flow back to the original."""
        return _record_ops().apply(_ops.clone, self)

    def contiguous(self, memory_format=None) -> "Tensor":
        return self

    def new_tensor(self, data, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        from ._factory import tensor
        return tensor(data, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        from ._factory import zeros
        return zeros(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        from ._factory import ones
        return ones(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None,
                 requires_grad: bool = False) -> "Tensor":
        from ._factory import full
        return full(size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return self.new_zeros(*size, dtype=dtype, requires_grad=requires_grad)


_LEGACY_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
                 "bfloat16": "BFloat16Tensor", "int64": "LongTensor", "int32": "IntTensor",
                 "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor",
                 "bool": "BoolTensor"}


def zero_grads(tensors, set_to_none: bool = True) -> None:
    """Clear `.grad` of each tensor: set it to None, or (`set_to_none=False`) zero it in place,
    outside autograd, as `Module.zero_grad` and `Optimizer.zero_grad` do in PyTorch."""
    for t in tensors:
        g = t._grad
        if g is None:
            continue
        if set_to_none:
            t._grad = None
        else:
            g.detach_()
            with _grad_mode.no_grad():
                g.zero_()


def legacy_type_name(node) -> str:
    """PyTorch's legacy name for a tensor type (`FloatTensor`), for error messages."""
    return "tapegrad." + _LEGACY_NAMES.get(node.dtype.name, node.dtype.name)


def normalize_dim(dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim % n


def as_tensor_arg(x: Any) -> Tensor:
    """Array-likes handed to an op (lists, numpy and JAX arrays) become constant tensors."""
    from ._factory import tensor
    return tensor(x)
