"""`tapegrad.viz`: pictures of the autograd graph `backward()` walks.

`make_dot(loss)` draws the graph as torchviz does for PyTorch (same nodes, colours and labels):
grey boxes are backward nodes (`MulBackward0`, `AccumulateGrad`, ...), blue boxes the leaves
that receive `.grad` (named by `params`, with their shapes), green the output, orange the saved
tensors (with `show_saved=True`). It returns a `graphviz.Digraph` when the `graphviz` package is
installed (the `viz` extra), else a `DotGraph` with the same `source`, `render` and `pipe`;
rendering needs Graphviz's `dot` program. `graph_text(loss)` prints the same graph as a tree.

torchviz itself also works on tapegrad graphs when `torch` names tapegrad (the promise of
`import tapegrad as torch`): `sys.modules["torch"] = tapegrad` before importing torchviz.

Draw the graph before `backward()` (or call `backward(retain_graph=True)`): backward frees the
inputs of nodes whose values are known, and a freed graph cannot be drawn in full.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

from ._core.graph import AccumulateGrad, Node
from ._autograd.nodes import saved_attributes
from ._tensor.tensor import Tensor

__all__ = ["make_dot", "graph_text", "DotGraph"]

SAVED_PREFIX = "_saved_"
_NODE_ATTR = dict(style="filled", shape="box", align="left", fontsize="10", ranksep="0.1",
                  height="0.2", fontname="monospace")
_ID = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*|-?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?))$")


def _quote(s: str) -> str:
    return s if _ID.match(s) else '"' + s.replace('"', '\\"') + '"'


def _attrs(attrs: dict, sort: bool = False) -> str:
    items = sorted(attrs.items()) if sort else attrs.items()
    return " ".join(f"{k}={_quote(str(v))}" for k, v in items)


class DotGraph:
    """A DOT graph (the part of `graphviz.Digraph`'s interface `make_dot` needs), used when the
    `graphviz` package is absent: `source` is the DOT text; `pipe`/`render` run Graphviz's `dot`."""

    def __init__(self, node_attr: dict | None = None, graph_attr: dict | None = None) -> None:
        self.node_attr = dict(node_attr or {})
        self.graph_attr = dict(graph_attr or {})
        self.body: list = []

    def node(self, name: str, label: str | None = None, **attrs) -> None:
        attrs = ({"label": label} if label is not None else {}) | attrs
        self.body.append(f"\t{_quote(name)} [{_attrs(attrs)}]\n" if attrs else f"\t{_quote(name)}\n")

    def edge(self, tail: str, head: str, **attrs) -> None:
        tail_attrs = f" [{_attrs(attrs)}]" if attrs else ""
        self.body.append(f"\t{_quote(tail)} -> {_quote(head)}{tail_attrs}\n")

    @property
    def source(self) -> str:
        lines = ["digraph {\n"]
        if self.graph_attr:
            lines.append(f"\tgraph [{_attrs(self.graph_attr, sort=True)}]\n")
        if self.node_attr:
            lines.append(f"\tnode [{_attrs(self.node_attr, sort=True)}]\n")
        return "".join(lines + self.body + ["}\n"])

    def __str__(self) -> str:
        return self.source

    def pipe(self, format: str = "pdf") -> bytes:  # noqa: A002 - graphviz's name
        """The picture in `format` ("png", "svg", "pdf", ...), as bytes, made by `dot`."""
        dot = shutil.which("dot")
        if dot is None:
            raise RuntimeError("rendering needs Graphviz's `dot` program on PATH (apt-get install "
                               "graphviz, brew install graphviz, conda install graphviz); "
                               "`.source` holds the DOT text without it")
        return subprocess.run([dot, f"-T{format}"], input=self.source.encode(), check=True,
                              capture_output=True).stdout

    def render(self, filename: str = "graph", directory: str | None = None, *,
               format: str = "pdf", cleanup: bool = False) -> str:  # noqa: A002
        """Write the DOT text to `filename` and the picture beside it; returns the picture's path."""
        path = os.path.join(directory, filename) if directory else filename
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        picture = self.pipe(format)
        if not cleanup:
            with open(path, "w") as f:
                f.write(self.source)
        out = f"{path}.{format}"
        with open(out, "wb") as f:
            f.write(picture)
        return out

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:  # pictures in notebooks
        return {"image/svg+xml": self.pipe("svg").decode()} if shutil.which("dot") else \
            {"text/plain": self.source}


def _digraph(**kwargs):
    try:
        from graphviz import Digraph
    except ImportError:
        return DotGraph(**kwargs)
    return Digraph(**kwargs)


def _size(t: Tensor) -> str:
    return "(" + ", ".join(str(int(s)) for s in t.shape) + ")"


def _check_not_freed(fn: Node) -> None:
    if fn.freed and fn.op is not None and fn.op.saves and not fn.inputs:
        raise RuntimeError(
            f"the graph below {type(fn).__name__} was freed by backward(): its inputs are no "
            "longer known. Draw the graph before calling backward(), or call "
            "backward(retain_graph=True).")


def _fn_label(fn, show_attrs: bool, max_attr_chars: int) -> str:
    name = type(fn).__name__
    if not show_attrs:
        return name
    attrs = {}
    for attr in sorted(saved_attributes(fn)) if isinstance(fn, Node) else ():  # dir()'s order
        val = getattr(fn, SAVED_PREFIX + attr)
        if isinstance(val, Tensor):
            attrs[attr] = "[saved tensor]"
        elif isinstance(val, tuple) and any(isinstance(t, Tensor) for t in val):
            attrs[attr] = "[saved tensors]"
        else:
            attrs[attr] = str(val)
    if not attrs:
        return name
    max_attr_chars = max(max_attr_chars, 3)
    w1 = max(len(k) for k in attrs)
    w2 = min(max(len(v) for v in attrs.values()), max_attr_chars)
    sep = "-" * max(w1 + w2 + 2, len(name))

    def cut(s):
        return s[:w2 - 3] + "..." if len(s) > w2 else s
    rows = "\n".join(f"{k:<{w1}}: {cut(v):>{w2}}" for k, v in attrs.items())
    return f"{name}\n{sep}\n{rows}"


def make_dot(var: Tensor | tuple, params: dict | None = None, show_attrs: bool = False,
             show_saved: bool = False, max_attr_chars: int = 50):
    """The autograd graph that produced `var` (a tensor or a tuple of them), as torchviz draws it.

    `params`: `{name: tensor}` (say `dict(model.named_parameters())`) names the leaves.
    `show_attrs`: list each node's saved non-tensor arguments; `show_saved`: draw the tensors
    each node saved for its backward. Returns a `graphviz.Digraph` (or a `DotGraph` without the
    `graphviz` package): `.source` is the DOT text, `.render(...)`/`.pipe(format="png")` draw it.
    """
    if params is not None:
        bad = [k for k, v in params.items() if not isinstance(v, Tensor)]
        if bad:
            raise TypeError(f"make_dot: params must map names to tensors; {bad} do not")
        names = {id(v): k for k, v in params.items()}
    else:
        names = {}
    dot = _digraph(node_attr=_NODE_ATTR, graph_attr=dict(size="12,12"))
    seen: set = set()

    def var_label(t: Tensor, name: str | None = None) -> str:
        return f"{name or names.get(id(t), '')}\n {_size(t)}"

    def add_saved(fn) -> None:
        for attr in sorted(saved_attributes(fn)) if isinstance(fn, Node) else ():
            val = getattr(fn, SAVED_PREFIX + attr)
            if isinstance(val, Tensor):
                seen.add(id(val))
                dot.edge(str(id(fn)), str(id(val)), dir="none")
                dot.node(str(id(val)), var_label(val, attr), fillcolor="orange")

    def add_nodes(fn) -> None:
        if id(fn) in seen:
            return
        seen.add(id(fn))
        _check_not_freed(fn)
        if show_saved:
            add_saved(fn)
        if type(fn) is AccumulateGrad:
            leaf = fn.variable
            seen.add(id(leaf))
            dot.node(str(id(leaf)), var_label(leaf), fillcolor="lightblue")
            dot.edge(str(id(leaf)), str(id(fn)))
        dot.node(str(id(fn)), _fn_label(fn, show_attrs, max_attr_chars))
        for child, _ in fn.next_functions:
            if child is not None:
                dot.edge(str(id(child)), str(id(fn)))
                add_nodes(child)
        ctx = getattr(fn, "ctx", None)  # a custom Function: the tensors it saved
        if ctx is not None:
            for t in ctx.saved_tensors:
                if t is None:
                    continue
                seen.add(id(t))
                dot.edge(str(id(t)), str(id(fn)), dir="none")
                dot.node(str(id(t)), var_label(t), fillcolor="orange")

    def add_output(t: Tensor, color: str = "darkolivegreen1") -> None:
        if id(t) in seen:
            return
        seen.add(id(t))
        dot.node(str(id(t)), var_label(t), fillcolor=color)
        if t.grad_fn is not None:
            add_nodes(t.grad_fn)
            dot.edge(str(id(t.grad_fn)), str(id(t)))
        if t._is_view():
            add_output(t._base, color="darkolivegreen3")
            dot.edge(str(id(t._base)), str(id(t)), style="dotted")

    for t in var if isinstance(var, tuple) else (var,):
        add_output(t)
    size = max(12, len(dot.body) * 0.15)  # torchviz's sizing: grow with the number of rows
    dot.graph_attr.update(size=f"{size},{size}")
    return dot


def graph_text(var: Tensor, params: dict | None = None) -> str:
    """The autograd graph that produced `var` as an indented tree, for terminals::

        AddBackward0
        ├── SumBackward0
        │   └── MulBackward0
        │       └── AccumulateGrad  w (3)
        └── AccumulateGrad  b (1)

    Inputs that need no gradient (PyTorch's `(None, 0)` in `next_functions`) are left out; a
    node reached a second time is marked `(shown above)` instead of being repeated.
    """
    names = {id(v): k for k, v in (params or {}).items()}
    if var.grad_fn is None:
        return f"{names.get(id(var), 'tensor')} {_size(var)} (no grad_fn: "\
               f"{'a leaf' if var.requires_grad else 'does not require grad'})"
    lines: list = []
    seen: set = set()

    def label(fn) -> str:
        if type(fn) is AccumulateGrad:
            leaf = fn.variable
            name = names.get(id(leaf))
            return f"AccumulateGrad  {name + ' ' if name else ''}{_size(leaf)}"
        return type(fn).__name__

    def walk(fn, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└── " if last else "├── ")
        again = id(fn) in seen and any(c is not None for c, _ in fn.next_functions)
        lines.append(prefix + branch + label(fn) + ("  (shown above)" if again else ""))
        if again:
            return
        seen.add(id(fn))
        _check_not_freed(fn)
        children = [c for c, _ in fn.next_functions if c is not None]
        inner = prefix + ("" if top else ("    " if last else "│   "))
        for k, child in enumerate(children):
            walk(child, inner, k == len(children) - 1, False)

    walk(var.grad_fn, "", True, True)
    return "\n".join(lines)
