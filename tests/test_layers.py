"""The package's layering: lower layers never import higher ones, and no module imports another
that (directly or not) imports it back. Every import counts, inside functions too.

The layers, lowest first (a module may import its own layer and those below):
"""
from __future__ import annotations

import ast
import pathlib

import pytest

LAYERS = ("tapegrad._core", "tapegrad._tensor", "tapegrad._autograd", "tapegrad._functions")
# every other module is the public layer (nn, optim, autograd, utils, func, ...), above all of
# these; `tapegrad` itself (its __init__) is the top, and nothing inside the package imports it.

ROOT = pathlib.Path(__file__).resolve().parents[1] / "src" / "tapegrad"


def _modules() -> dict:
    """Module name -> path, for every module of the package."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ("tapegrad",) + path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: pathlib.Path) -> set:
    """The package modules `name` imports (`from x import y` counts y when it is a module)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod
                       for a in node.names]
        else:
            continue
        found.update(t for t in targets if t == "tapegrad" or t.startswith("tapegrad."))
    return found - {name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _rank(name: str) -> int:
    if name == "tapegrad":
        return len(LAYERS) + 1
    for rank, layer in enumerate(LAYERS):
        if name == layer or name.startswith(layer + "."):
            return rank
    return len(LAYERS)


def test_the_graph_is_read():
    # the walk finds the package and the edges every layer is built on
    assert "tapegrad._core.graph" in MODULES and "tapegrad.nn.modules.module" in MODULES
    assert "tapegrad._core.graph" in GRAPH["tapegrad._core.compile"]
    assert "tapegrad._tensor.tensor" in GRAPH["tapegrad._functions.pointwise"]


def test_no_upward_imports():
    upward = sorted(f"{a} imports {b}" for a, targets in GRAPH.items() for b in targets
                    if _rank(b) > _rank(a))
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_no_import_cycles():
    state, stack, cycles = {}, [], []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(GRAPH.get(n, ())):
            if state.get(m) == "open":
                cycles.append(" -> ".join(stack[stack.index(m):] + [m]))
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = "done"

    for n in sorted(GRAPH):
        if n not in state:
            visit(n)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("bad, expected", [
    ({"tapegrad._core.a": {"tapegrad._tensor.b"}}, "upward"),
    ({"tapegrad._functions.a": {"tapegrad._functions.b"},
      "tapegrad._functions.b": {"tapegrad._functions.a"}}, "cycle"),
])
def test_the_checks_catch_violations(bad, expected, monkeypatch):
    """The two checks above fail on a made-up upward import and a made-up cycle."""
    monkeypatch.setattr(__import__(__name__), "GRAPH", bad)
    check = test_no_upward_imports if expected == "upward" else test_no_import_cycles
    with pytest.raises(AssertionError):
        check()


# Private slots and the only modules that may touch them; everything else reads the named
# accessors (`Tensor._node`, `_storage`, `_version`, `.grad`) and writes through `write_grad`.
PRIVATE_SLOTS = {
    "_cell": ("tapegrad._tensor",),
    "_grad": ("tapegrad._tensor.tensor", "tapegrad._autograd.grads"),
}


def _slot_uses(sources: dict) -> list:
    """`module: line` for each attribute access to a private slot outside its owners."""
    found = []
    for name, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute) and node.attr in PRIVATE_SLOTS:
                owners = PRIVATE_SLOTS[node.attr]
                if not any(name == o or name.startswith(o + ".") for o in owners):
                    found.append(f"{name}:{node.lineno} .{node.attr}")
    return found


def test_private_slots_stay_home():
    uses = _slot_uses({name: path.read_text() for name, path in MODULES.items()})
    assert not uses, "private slots reached from other modules:\n" + "\n".join(uses)


def test_the_slot_check_catches_a_use():
    assert _slot_uses({"tapegrad.optim.x": "p._grad._cell.node"}) == [
        "tapegrad.optim.x:1 ._cell", "tapegrad.optim.x:1 ._grad"]
