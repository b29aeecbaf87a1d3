"""tapegrad.viz (make_dot, graph_text) and the grad_fn attributes pictures read (`_saved_*`,
`metadata`, `Variable`, `_is_view`): a known graph by hand; torchviz's pictures of PyTorch's
graph as the reference; torchviz itself run on tapegrad graphs."""
from __future__ import annotations

import importlib
import re
import shutil
import sys

import pytest

import tapegrad as tg
from tapegrad import viz

HAS_DOT = shutil.which("dot") is not None
_NODE = re.compile(r'^\t(\d+) \[label=("(?:[^"\\]|\\.)*"|\S+)(.*)\]$', re.S)
_EDGE = re.compile(r'^\t(\d+) -> (\d+)(?: \[(.*)\])?$')


def parse(source: str):
    """(sorted node (label, attrs), sorted edge (tail label, head label, attrs)): a DOT picture
    with object ids replaced by what each node shows, so two pictures compare."""
    body = source.split("\n", 3)[3].rsplit("}", 1)[0]
    stmts = re.split(r"\n(?=\t)", body.strip("\n"))
    nodes, edges = {}, []
    for st in stmts:
        m = _EDGE.match(st)
        if m:
            edges.append((m[1], m[2], m[3] or ""))
            continue
        m = _NODE.match(st)
        assert m, f"unparsed DOT statement {st!r}"
        nodes[m[1]] = (m[2].strip('"').replace("\\n", "\n"), m[3].strip())
    labelled = sorted((nodes[a], nodes[b], attrs) for a, b, attrs in edges)
    return sorted(nodes.values()), labelled


def walkthrough(T):
    w = T.tensor([1.0, -2.0, 3.0], requires_grad=True)
    x = T.tensor([0.5, 0.5, 0.5])
    b = T.zeros(1, requires_grad=True)
    return (w * x).sum() + b, {"w": w, "b": b}


def mlp(T):
    T.manual_seed(0)
    x, y = T.ones(4, 3), T.zeros(4, 2)
    w1 = T.ones(3, 5, requires_grad=True)
    w2 = T.ones(5, 2, requires_grad=True)
    b = T.zeros(2, requires_grad=True)
    out = ((x @ w1).relu() @ w2 + b).sigmoid()
    return ((out - y) ** 2).mean() + T.nn.functional.mse_loss(out, y), {"w1": w1, "w2": w2, "b": b}


def view_output(T):
    w = T.ones(6, requires_grad=True)
    return (w * 2).view(2, 3), {"w": w}


def shared_input(T):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    h = a.exp()
    return (h * h + h.sin()).sum(), {"a": a}


GRAPHS = [walkthrough, mlp, view_output, shared_input]


# -- a known graph, by hand -----------------------------------------------------------------------
def test_make_dot_of_a_known_graph():
    z, params = walkthrough(tg)
    nodes, edges = parse(viz.make_dot(z, params).source)
    grey = ""
    assert nodes == sorted([
        ("\n (1)", "fillcolor=darkolivegreen1"), ("AddBackward0", grey), ("SumBackward0", grey),
        ("MulBackward0", grey), ("AccumulateGrad", grey), ("AccumulateGrad", grey),
        ("w\n (3)", "fillcolor=lightblue"), ("b\n (1)", "fillcolor=lightblue")])
    blue = "fillcolor=lightblue"
    acc = ("AccumulateGrad", grey)
    assert edges == sorted([
        (("SumBackward0", grey), ("AddBackward0", grey), ""),
        (("MulBackward0", grey), ("SumBackward0", grey), ""),
        (acc, ("MulBackward0", grey), ""), (acc, ("AddBackward0", grey), ""),
        (("w\n (3)", blue), acc, ""), (("b\n (1)", blue), acc, ""),
        (("AddBackward0", grey), ("\n (1)", "fillcolor=darkolivegreen1"), "")])


def test_graph_text_of_a_known_graph():
    z, params = walkthrough(tg)
    assert viz.graph_text(z, params) == "\n".join([
        "AddBackward0",
        "├── SumBackward0",
        "│   └── MulBackward0",
        "│       └── AccumulateGrad  w (3)",
        "└── AccumulateGrad  b (1)"])
    loss, params = shared_input(tg)
    text = viz.graph_text(loss, params)
    assert text.count("ExpBackward0") == 3 and text.count("(shown above)") == 2
    assert text.count("AccumulateGrad  a (2)") == 1
    assert viz.graph_text(tg.ones(2)) == "tensor (2) (no grad_fn: does not require grad)"


def test_show_saved_and_show_attrs():
    z, params = walkthrough(tg)
    nodes, edges = parse(viz.make_dot(z, params, show_saved=True, show_attrs=True).source)
    labels = [n[0] for n in nodes]
    # x (data) is drawn as the saved "other"; the saved "self" is the leaf w itself, as in PyTorch
    assert ("other\n (3)", "fillcolor=orange") in nodes
    mul = next(n for n in nodes if n[0].startswith("MulBackward0\n"))
    assert (mul, ("w\n (3)", "fillcolor=lightblue"), "dir=none") in edges
    assert any(lab.startswith("MulBackward0\n") and "self : [saved tensor]" in lab for lab in labels)
    assert any(lab.startswith("SumBackward0\n") and "keepdim: False" in lab for lab in labels)


# -- PyTorch and torchviz as the reference ---------------------------------------------------------
@pytest.mark.parametrize("build", GRAPHS, ids=lambda f: f.__name__)
def test_make_dot_matches_torchviz_on_pytorch(build):
    torch = pytest.importorskip("torch")
    torchviz = pytest.importorskip("torchviz")
    ours = viz.make_dot(*build(tg)).source
    ref = torchviz.make_dot(*build(torch)).source
    assert parse(ours) == parse(ref)


def saving(T):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    b = T.tensor([3.0, 4.0], requires_grad=True)
    return (a * b).exp().sum(), {"a": a, "b": b}


def test_make_dot_show_saved_matches_torchviz_on_pytorch():
    # PyTorch saves an input only when another input needs its gradient; with every input
    # requiring grad both keep the same tensors: the leaves themselves, and exp's result
    torch = pytest.importorskip("torch")
    torchviz = pytest.importorskip("torchviz")
    nodes, edges = parse(viz.make_dot(*saving(tg), show_saved=True).source)
    assert ("result\n (2)", "fillcolor=orange") in nodes
    assert (nodes, edges) == parse(torchviz.make_dot(*saving(torch), show_saved=True).source)


def _torchviz_on_tapegrad():
    """torchviz's module, imported with `torch` naming tapegrad (`import tapegrad as torch`)."""
    pytest.importorskip("torchviz")
    ours = ("torch", "torch.", "torchviz")
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "torch" or k.startswith(ours[1:])}
    sys.modules["torch"], sys.modules["torch.autograd"] = tg, tg.autograd
    try:
        return importlib.import_module("torchviz.dot")
    finally:
        for k in [k for k in sys.modules if k == "torch" or k.startswith(ours[1:])]:
            del sys.modules[k]
        sys.modules.update(saved)


@pytest.mark.parametrize("build", GRAPHS, ids=lambda f: f.__name__)
def test_torchviz_itself_draws_tapegrad_graphs(build):
    torchviz = _torchviz_on_tapegrad()
    assert torchviz.torch is tg
    out, params = build(tg)
    assert parse(torchviz.make_dot(out, params).source) == parse(viz.make_dot(out, params).source)


def test_torchviz_itself_shows_saved_tensors_and_attrs():
    torchviz = _torchviz_on_tapegrad()
    z, params = walkthrough(tg)
    with pytest.warns(UserWarning, match="PyTorch version >= 1.9"):  # torchviz reads __version__
        theirs = torchviz.make_dot(z, params, show_saved=True, show_attrs=True).source
    assert parse(theirs) == parse(viz.make_dot(z, params, show_saved=True, show_attrs=True).source)


def cube(T):
    class Cube(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            ctx.power = 3
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x ** 2 * g

    x = T.tensor([1.0, 2.0], requires_grad=True)
    return Cube.apply(x * 2).sum(), {"x": x}


def test_custom_function_node_shows_its_saved_tensors():
    y, params = cube(tg)
    fn = y.grad_fn.next_functions[0][0]
    assert type(fn).__name__ == "CubeBackward" and fn.saved_tensors[0] is fn.ctx.saved_tensors[0]
    assert fn.power == 3  # attributes set on ctx are read through the node, as in PyTorch
    ours = parse(viz.make_dot(y, params).source)
    assert ("\n (2)", "fillcolor=orange") in ours[0]  # the saved x * 2
    assert parse(_torchviz_on_tapegrad().make_dot(y, params).source) == ours
    torch = pytest.importorskip("torch")
    torchviz = pytest.importorskip("torchviz")
    assert parse(torchviz.make_dot(*cube(torch)).source) == ours


# -- the attributes pictures read ------------------------------------------------------------------
def test_variable_is_a_class_every_tensor_is_an_instance_of():
    t = tg.ones(2)
    assert isinstance(t, tg.autograd.Variable) and not isinstance([1.0], tg.autograd.Variable)
    v = tg.autograd.Variable(t, requires_grad=True)
    assert v is t and t.requires_grad
    with pytest.raises(TypeError, match="Variable data has to be a tensor"):
        tg.autograd.Variable([1.0])


def test_is_view_and_base():
    w = tg.ones(6, requires_grad=True)
    v = w.view(2, 3)
    assert v._is_view() and v._base is w and not w._is_view() and w._base is None


def test_saved_attributes_follow_pytorch():
    torch = pytest.importorskip("torch")
    for T in (tg, torch):
        x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
        w = T.tensor([0.5, -1.0, 2.0], requires_grad=True)
        mul = x * w
        fn = mul.grad_fn
        saved = sorted(a for a in dir(fn) if a.startswith("_saved_"))
        assert saved == ["_saved_other", "_saved_self"], T
        assert fn._saved_self.tolist() == [1.0, 2.0, 3.0] and fn._saved_other.tolist() == [0.5, -1.0, 2.0]
        e = x.exp()
        assert [a for a in dir(e.grad_fn) if a.startswith("_saved_")] == ["_saved_result"]
        assert e.grad_fn._saved_result.tolist() == pytest.approx([2.718281828, 7.389056, 20.085537])
        assert x.sum(0).grad_fn._saved_dim == (0,)
        mul.sum().backward()
        with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
            fn._saved_self
        with pytest.raises(AttributeError):
            fn._saved_nothing


def test_saved_tensor_modified_in_place_raises_as_in_pytorch():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1
    y = h * h
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.grad_fn._saved_self


def test_metadata_is_a_dict_kept_with_the_node():
    x = tg.ones(2, requires_grad=True)
    fn = (x * 2).grad_fn
    fn.metadata["mine"] = 1
    assert fn.metadata == {"mine": 1}
    assert tg.ones(1).grad_fn is None


def test_drawing_a_freed_graph_raises_with_the_fix():
    x = tg.ones(3, requires_grad=True)
    loss = tg.nn.functional.mse_loss(x.exp(), tg.zeros(3))
    loss.item()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        viz.make_dot(loss)
    loss = tg.nn.functional.mse_loss(x.exp(), tg.zeros(3))
    loss.item()
    loss.backward(retain_graph=True)
    assert "ExpBackward0" in viz.graph_text(loss)


def test_params_must_be_tensors():
    z, _ = walkthrough(tg)
    with pytest.raises(TypeError, match="params must map names to tensors"):
        viz.make_dot(z, {"w": [1.0]})


# -- DOT text without the graphviz package, and rendering -------------------------------------------
def test_dot_text_without_the_graphviz_package(monkeypatch):
    pytest.importorskip("graphviz")
    z, params = walkthrough(tg)
    with_package = viz.make_dot(z, params)
    assert type(with_package).__name__ == "Digraph"
    monkeypatch.setitem(sys.modules, "graphviz", None)  # `import graphviz` fails
    dot = viz.make_dot(z, params)
    assert isinstance(dot, viz.DotGraph) and str(dot) == dot.source
    assert dot.source == with_package.source  # the same text, ids included


def test_dot_graph_writes_dot_as_graphviz_does():
    graphviz = pytest.importorskip("graphviz")
    ours, theirs = (cls(node_attr={"shape": "box", "style": "filled"}, graph_attr={"size": "3,3"})
                    for cls in (viz.DotGraph, graphviz.Digraph))
    for d in (ours, theirs):
        d.node("1", "w\n (3)", fillcolor="lightblue")
        d.node("2", 'say "hi"')
        d.node("3", "MulBackward0")
        d.edge("1", "3")
        d.edge("2", "3", dir="none", style="dotted")
    assert ours.source == theirs.source


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot program is not installed")
@pytest.mark.parametrize("no_package", [False, True])
def test_render_and_pipe(tmp_path, monkeypatch, no_package):
    if no_package:
        monkeypatch.setitem(sys.modules, "graphviz", None)
    else:
        pytest.importorskip("graphviz")
    z, params = walkthrough(tg)
    dot = viz.make_dot(z, params)
    assert dot.pipe(format="png")[:8] == b"\x89PNG\r\n\x1a\n"
    svg = dot.pipe(format="svg").decode()
    assert "<svg" in svg and "MulBackward0" in svg and "AccumulateGrad" in svg
    path = dot.render(str(tmp_path / "graph"), format="svg")
    assert path.endswith(".svg") and "MulBackward0" in open(path).read()


def test_pipe_without_dot_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    z, _ = walkthrough(tg)
    with pytest.raises(RuntimeError, match="Graphviz's `dot` program"):
        viz.make_dot(z).pipe(format="png")
