"""The `_saved_*` attributes of grad_fn nodes, which PyTorch code (torchviz, debuggers) reads.

PyTorch's nodes expose what their backward keeps: `_saved_self`, `_saved_other` (inputs),
`_saved_result` (the output) and the non-tensor arguments (`_saved_dim`, `_saved_keepdim`, ...).
A tapegrad node keeps its static arguments and, for the in-place check, the storages of the
inputs its backward needs (`Node.saved`): these are shown under the same names. A saved tensor
is read as a tensor over that storage; reading it after backward freed the graph, or after an
in-place change, raises PyTorch's errors.
"""
from __future__ import annotations

import weakref

from .._core.graph import SAVES_ALL, SAVES_OUTPUT, AccumulateGrad, Node
from .._tensor.tensor import Tensor
from .engine import FREED_MESSAGE, check_versions

_PREFIX = "_saved_"
_INPUT_NAMES = ("self", "other")
_wrappers: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # id(node) -> tensor


def _input_name(k: int) -> str:
    return _INPUT_NAMES[k] if k < len(_INPUT_NAMES) else f"input{k}"


def _saved_names(node: Node) -> list:
    """(PyTorch-style name, input position or None) of each tensor `node.saved` holds."""
    op = node.op
    if op is None or not node.saved:
        return []
    n = len(node.saved)
    if op.saves == SAVES_OUTPUT:
        return [("result", None)] if n == 1 else [(f"result{k}", None) for k in range(n)]
    positions = [k for k, x in enumerate(node.inputs)
                 if isinstance(x, Node) and (op.saves == SAVES_ALL or k in op.saves)]
    out = [(_input_name(k), k) for k in positions[:n]]
    return out + [(f"input{k}", None) for k in range(len(out), n)]


def saved_attributes(node: Node) -> list:
    """The `_saved_*` attribute names of `node` (without the prefix)."""
    if node.op is None or getattr(node.op, "custom_backward", None) is not None:
        return []
    static = [k for k, _ in (node.static or ()) if not (k == "dtype" and node.op.promote)]
    return static + [name for name, _ in _saved_names(node)]


def _saved_tensor(node: Node, k: int, position) -> Tensor:
    check_versions(node)
    cell, _, value = node.saved[k]
    src = node.inputs[position] if position is not None else None
    if type(src) is AccumulateGrad and src.inputs[0] is value:
        return src.variable  # a leaf is saved as itself, as in PyTorch
    t = _wrappers.get(id(value))
    if t is None or t._storage is not cell:  # one tensor per saved value, so pictures join uses
        # shares the storage, as `detach()` does, keeping grad_fn
        t = Tensor._from_storage(cell, value if value.requires_grad else None)
        _wrappers[id(value)] = t
    return t


def _getattr(node: Node, name: str):
    """`node._saved_<name>`: a static argument, or a saved tensor."""
    if name.startswith(_PREFIX) and node.op is not None:
        key = name[len(_PREFIX):]
        for k, v in (node.static or ()):
            if k == key and not (k == "dtype" and node.op.promote):
                return v
        if node.freed and node.op.saves and key.startswith(("self", "other", "result", "input")):
            raise RuntimeError(FREED_MESSAGE)
        for k, (saved_name, position) in enumerate(_saved_names(node)):
            if saved_name == key:
                return _saved_tensor(node, k, position)
    raise AttributeError(f"'{type(node).__name__}' object has no attribute '{name}'")


def _dir(node: Node) -> list:
    return sorted(set(object.__dir__(node)) | {_PREFIX + a for a in saved_attributes(node)})


# Only looked up when ordinary attribute lookup fails, so recording and the engine never pay.
Node.__getattr__ = _getattr
Node.__dir__ = _dir
