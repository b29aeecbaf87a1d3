"""`Tensor`: a value on the tape, with PyTorch's autograd attributes.

A tensor reads its value through a storage `Cell` (shared with `detach()` and `.data` aliases);
the value is a `jax.Array`, computed lazily from the recorded nodes. Autograd state lives on the
tensor: `requires_grad`, `grad`, and `_grad_node`, the node that produced it (None for a leaf).
"""
from __future__ import annotations

import weakref
from typing import Callable

import jax
import numpy as np

from .._core import device as _device, dtype as _dtype, stepmode as _stepmode
from .._core.compile import materialize
from .._core.dims import normalize_dim
from .._core.graph import AccumulateGrad, Cell, Const, grad_edge
from .._core.ops import rebase_op
from .._core.record import note_write, record
from .format import tensor_repr
from .hooks import HookDict, RemovableHandle


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


class Tensor:
    """A multi-dimensional array that records the operations applied to it for autograd.

    `tapegrad.Tensor(data)` is PyTorch's legacy constructor (float32); prefer `tapegrad.tensor`.
    """

    __slots__ = ("_cell", "_grad_node", "_requires_grad", "__weakref__", "__dict__")
    # Rarely set, so class-level defaults rather than per-instance slots (recording stays cheap).
    _grad = None
    _retains_grad = False
    _hooks = None
    _post_accumulate_hooks = None
    _acc = None
    _met_in_backward = False  # set by the engine: a pending value of this leaf is then an update

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
        if _stepmode.state.active is not None:
            _stepmode.state.active.read(self._cell)
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
        if not getattr(value, "is_fully_addressable", True) and not value.is_fully_replicated:
            raise RuntimeError(
                f"the tensor's value is split over several processes ({value.sharding}) and "
                "this process holds only its shards, so Python cannot see the whole here: read "
                "a DTensor (a parameter of fully_shard or parallelize_module) with "
                ".full_tensor(), or its shard with .to_local()")
        return np.asarray(value)

    def _set_node(self, node) -> None:
        """Point this tensor's storage at a new value (an in-place update: bumps the version)."""
        cell = self._cell
        if _stepmode.state.active is not None:
            _stepmode.state.active.write(cell)
        chained = cell.node.value is None
        cell.assign(node)
        if node.value is None and not _stepmode.tracing():
            note_write(cell, chained)

    def jax(self) -> jax.Array:
        """The value as a `jax.Array` (no copy). Pending work is computed first."""
        return self._value()

    def _autograd_node(self):
        """The node a consumer's gradient flows into: grad_fn, or the leaf's AccumulateGrad."""
        node = self._cell.node
        if self._grad_node is not None:
            if self._grad_node is not node:  # storage changed through a detached alias
                node = record(rebase_op, (node, self._grad_node), (), True)
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
            try:  # the first of its devices when it spans several
                return _device.device(min(value.devices(), key=lambda d: d.id))
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

    # -- storage: how the layers above read it (the `_cell` slot stays inside `_tensor/`) --------
    @property
    def _node(self):
        """The node this tensor's storage shows now: a known value, or the pending op making it."""
        return self._cell.node

    @property
    def _storage(self) -> Cell:
        """The storage cell, shared with this tensor's aliases (its identity says who shares)."""
        return self._cell

    @property
    def _version(self) -> int:
        """PyTorch's version counter of the storage, raised by each in-place update."""
        return self._cell.version

    @classmethod
    def _from_storage(cls, cell: Cell, grad_node=None) -> "Tensor":
        """A tensor of class `cls` over `cell`; with `grad_node`, a non-leaf that node produced."""
        t = object.__new__(cls)
        t._cell = cell
        t._grad_node = grad_node
        t._requires_grad = grad_node is not None
        return t

    def _become(self, other: "Tensor") -> None:
        """Take over `other`'s storage and autograd identity (the legacy constructor's `self`)."""
        self._cell, self._grad_node, self._requires_grad = (
            other._cell, other._grad_node, other._requires_grad)

    # -- aliasing ---------------------------------------------------------------------------------
    @classmethod
    def _sharing(cls, other: "Tensor") -> "Tensor":
        """A new leaf of class `cls` over `other`'s storage, not requiring grad."""
        return cls._from_storage(other._cell)

    def detach(self) -> "Tensor":
        """A tensor sharing this one's storage, cut from the graph (never requires grad)."""
        return Tensor._sharing(self)

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
        return tensor_repr(self)

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        if self.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def __reduce_ex__(self, protocol):
        raise TypeError("tapegrad tensors are not pickled; use tapegrad.save / tapegrad.load")
