"""The tape's vocabulary: storage cells, recorded nodes and the op registry's row type.

A tensor reads its value from a `Cell`; the cell points at the `Node` that computes it. A node is
either a known array (`Const`) or one op applied to input nodes and Python scalars; its value is
computed lazily, in one compiled XLA call with everything else pending (see `compile`). The same
nodes, seen from the other side, are the autograd graph: `grad_fn`, `next_functions` and
`AccumulateGrad` nodes follow PyTorch.
"""
from __future__ import annotations

import weakref
from typing import Callable

from . import dtype as _dtype, stepmode


class Cell:
    """Storage shared by a tensor and its aliases (`detach()`, `.data`): a node and a version.

    `view` and `views` link a view's storage to its base's (see `_tensor.views`): `view` says how
    this storage derives from a base (None if it does not), `views` holds weak references to the
    storages of this one's views (None if it never had any). `pending` counts in-place writes of
    pending values since the value was last computed (see `record.MAX_PENDING_WRITES`).
    """

    __slots__ = ("node", "version", "serial", "view", "views", "ref", "pending", "__weakref__")

    def __init__(self, node: "Node") -> None:
        self.node = node
        self.version = 0
        self.serial = stepmode.next_serial()
        self.view = None
        self.views = None
        self.pending = 0
        self.ref = weakref.ref(self)  # what a node's `owner` holds
        node.owner = self.ref

    def assign(self, node: "Node", bump: bool = True) -> None:
        """Show `node` from now on; an in-place update (`bump`) raises the version counter."""
        self.node = node
        node.owner = self.ref
        if bump:
            self.version += 1


class Node:
    """A recorded value. `inputs` holds nodes and Python scalars; `value` is None until computed.

    `constant`: pending and computed from Python numbers alone (`zeros`, `arange`, `tril` of
    `ones`), so any program can compute it again instead of taking it as an input.
    """

    __slots__ = ("op", "static", "inputs", "shape", "dtype", "value", "requires_grad", "saved",
                 "freed", "owner", "depth", "hooks", "serial", "constant", "meta", "__weakref__")

    def __init__(self, op, static, inputs, shape, dtype, requires_grad, value=None):
        self.op = op
        self.static = static
        self.inputs = inputs
        self.shape = shape
        self.dtype = dtype
        self.value = value
        self.requires_grad = requires_grad
        self.saved = ()
        self.freed = False
        self.owner = None
        self.hooks = None  # tensor hooks registered on this node's output (see Tensor.register_hook)
        self.serial = stepmode.next_serial()  # creation order (tapegrad.compile tells steps apart)
        depth = 0
        constant = value is None and not requires_grad
        if value is None:
            for i in inputs:
                if isinstance(i, Node):
                    if i.depth > depth:
                        depth = i.depth
                    if not (i.constant and i.value is None):
                        constant = False
            depth += 1
        self.depth = depth
        self.constant = constant

    # -- PyTorch's grad_fn interface ------------------------------------------------------------
    def name(self) -> str:
        return type(self).__name__

    @property
    def next_functions(self) -> tuple:
        """The grad_fn of each input, as `(node, output_nr)`; `(None, 0)` where none is needed."""
        return tuple(grad_edge(i) for i in self.inputs)

    @property
    def metadata(self) -> dict:
        """A dict kept with the node for your own data (anomaly mode keeps the forward traceback
        under "traceback_", as PyTorch does). The slot is left unset until first asked for, so
        recording never pays for it."""
        try:
            return self.meta
        except AttributeError:
            self.meta = {}
            return self.meta

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"

    def __call__(self, *grads):
        raise RuntimeError(f"{self.name()} is a recorded graph node; call backward() on a tensor "
                           "or tapegrad.autograd.grad(...) to run the backward pass")


def grad_edge(x) -> tuple:
    """The `(grad_fn, output_nr)` pair a consumer sees for input `x`."""
    if not isinstance(x, Node) or not x.requires_grad:
        return (None, 0)
    if type(x) is GetItem:
        return (x.inputs[0], x.static)
    return (x, 0)


class Const(Node):
    """A known array: data handed in by the user or a value already computed."""

    __slots__ = ()

    def __init__(self, value, dtype: _dtype.dtype) -> None:  # Node's, unrolled: made per result
        self.op = self.static = self.owner = self.hooks = None
        self.inputs = self.saved = ()
        self.shape = tuple(value.shape)
        self.dtype = dtype
        self.value = value
        self.requires_grad = self.freed = self.constant = False
        self.serial = stepmode.next_serial()
        self.depth = 0


def signature_of(inputs) -> tuple:
    """What a row's result depends on besides its op: its inputs' shapes and dtypes (and the
    types of its Python scalars)."""
    return tuple((i.shape, i.dtype) if isinstance(i, Node) else type(i) for i in inputs)


class GetItem(Node):
    """Output `static` of a multi-output node (hidden: consumers see the parent as grad_fn)."""

    __slots__ = ()


class AccumulateGrad(Node):
    """Where gradients reach a leaf tensor; `variable` is the leaf. Its value is the leaf's value."""

    __slots__ = ("variable",)

    def __init__(self, variable, value_node: Node) -> None:
        super().__init__(None, None, (value_node,), value_node.shape, value_node.dtype, True)
        self.variable = variable
        self.depth = value_node.depth
        self.constant = False


REGISTRY: dict = {}  # name -> Op, every row of the op registry (walked by the tests)
_NODE_CLASSES: dict = {}


def node_class(name: str) -> type:
    """The node class a grad_fn of this name has (one class per name)."""
    cls = _NODE_CLASSES.get(name)
    if cls is None:
        cls = _NODE_CLASSES[name] = type(name, (Node,), {"__slots__": ()})
    return cls

SAVES_ALL = "all"
SAVES_OUTPUT = "output"
SAVES_NONE = ()


class Op:
    """One registry row: a name, a pure jnp function and how its result dtype is found.

    `promote`: None (the function decides), "common" (PyTorch's type promotion, inputs cast to
    the result), "float" (like "common", then integers become the default float) or "compare"
    (inputs promoted, the result is bool). `saves`: which inputs the backward needs, for PyTorch's
    in-place modification check: "all", "output", or a tuple of input positions.
    `n_out` other than 1 makes a multi-output op (its function returns a tuple; None: as long as
    its static arguments make it). `shape`: an optional rule `(signature, **static) -> (shape,
    dtype) or None` giving a single-output op's result without tracing it (recording a new
    shape then costs no `jax.eval_shape`); None from it leaves the decision, and the errors, to
    tracing. Rows are collected in
    `REGISTRY`; ops built at run time (a backward segment's vjp, a custom Function) pass
    `register=False`.
    """

    __slots__ = ("name", "fn", "promote", "saves", "n_out", "node_cls", "name_of",
                 "differentiable", "check", "shape")

    def __init__(self, name: str, fn, *, promote=None, saves=SAVES_ALL, n_out: int | None = 1,
                 differentiable: bool = True, check=None, shape=None,
                 grad_name: str | Callable[[dict, tuple], str] | None = None,
                 register: bool = True) -> None:
        self.name = name
        self.fn = fn
        self.promote = promote
        self.saves = saves
        self.n_out = n_out
        self.differentiable = differentiable
        self.check = check
        self.shape = shape
        # grad_fn's class name: PyTorch's for this op, or a function of (static args, inputs)
        # where PyTorch's name depends on them (x[0] is SelectBackward0, x[1:] SliceBackward0).
        self.name_of = grad_name if callable(grad_name) else None
        default = "".join(p.capitalize() for p in name.split("_")) + "Backward0"
        self.node_cls = node_class(grad_name if isinstance(grad_name, str) else default)

        if register:
            if name in REGISTRY:
                raise ValueError(f"op {name!r} is registered twice")
            REGISTRY[name] = self

    def __repr__(self) -> str:
        return f"Op({self.name})"
