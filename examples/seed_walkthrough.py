"""A walk through PyTorch's autograd model, run by tapegrad on JAX.

    python examples/seed_walkthrough.py
    python examples/seed_walkthrough.py --graph docs/walkthrough_graph.svg   # also draw the graph

Each section prints what it shows; the code is plain PyTorch with `import tapegrad as torch`.
`--graph FILE.svg|.png` writes the picture of section 2's graph, drawn by
`tapegrad.viz.make_dot` (it needs Graphviz's `dot` program).
"""
import argparse

import tapegrad as torch
from tapegrad import viz

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--graph", help="write the picture of the graph of section 2 to this file")
args = parser.parse_args()


def section(title: str) -> None:
    print(f"\n== {title} ==")


section("1. requires_grad marks the leaves we want gradients for")
w = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
x = torch.tensor([0.5, 0.5, 0.5])  # data: no gradient wanted
print("w:", w)
print("x:", x, "| x.requires_grad =", x.requires_grad)
b = torch.zeros(1)
b.requires_grad_()  # the in-place way to say the same thing
print("b.requires_grad after requires_grad_():", b.requires_grad)

section("2. every op records a grad_fn: the graph is built as the code runs")
y = w * x
z = y.sum() + b
print("y =", y)
print("z =", z)
print("z.grad_fn:", z.grad_fn.name(), "-> next:", [f[0].name() if f[0] else None
                                                  for f in z.grad_fn.next_functions])
print("leaves: w.is_leaf =", w.is_leaf, "| y.is_leaf =", y.is_leaf)
acc = y.grad_fn.next_functions[0][0]
print("y's grad_fn reaches", acc.name(), "whose variable is w:", acc.variable is w)
print("the graph backward() will walk, from z down to the leaves:")
print(viz.graph_text(z, params={"w": w, "b": b}))
if args.graph:  # the same graph as a picture (torchviz's drawing)
    name, _, fmt = args.graph.rpartition(".")
    path = viz.make_dot(z, params={"w": w, "b": b}).render(name, format=fmt, cleanup=True)
    print("picture written to", path)

section("3. backward() fills .grad of the leaves")
z.backward()
print("dz/dw =", w.grad, "(= x)")
print("dz/db =", b.grad)

section("4. the graph is freed after backward")
try:
    z.backward()
except RuntimeError as e:
    print("second backward ->", str(e).split(".")[0] + ".")
z2 = (w * w).sum()
z2.backward(retain_graph=True)
z2.backward()
print("with retain_graph=True a second backward works; w.grad accumulated:", w.grad)

section("5. gradients accumulate until you clear them")
w.grad = None
for step in range(3):
    (w * 2).sum().backward()
    print(f"after backward #{step + 1}: w.grad =", w.grad)
w.grad.zero_()
print("after w.grad.zero_():", w.grad)

section("6. detach() and no_grad() step outside the graph")
h = w * 3
d = h.detach()
print("h.requires_grad =", h.requires_grad, "| h.detach().requires_grad =", d.requires_grad)
with torch.no_grad():
    n = w * 3
print("inside no_grad: (w * 3).requires_grad =", n.requires_grad)
d.add_(100)  # detach shares storage: the change shows in h too
print("after d.add_(100), h =", h)

section("7. the graph is dynamic: Python control flow decides it each time")
v = torch.tensor(2.0, requires_grad=True)
for use_square in (True, False):
    v.grad = None
    out = v ** 2 if use_square else v * 10
    out.backward()
    print(f"use_square={use_square}: out.grad_fn = {out.grad_fn.name()}, dv = {v.grad.item()}")

section("8. accumulate-then-step: the classic manual training loop")
torch.manual_seed(0)
true_w = torch.tensor([2.0, -3.0])
data = torch.randn(64, 2)
target = data @ true_w
w = torch.zeros(2, requires_grad=True)
lr, accumulation_steps = 0.1, 4
for step in range(40):
    for i in range(accumulation_steps):
        xb, yb = data[i * 16:(i + 1) * 16], target[i * 16:(i + 1) * 16]
        loss = ((xb @ w - yb) ** 2).mean() / accumulation_steps
        loss.backward()  # gradients of the micro-batches add up in w.grad
    with torch.no_grad():
        w -= lr * w.grad  # the update itself is not recorded
    w.grad = None
    if step % 10 == 9:
        print(f"step {step + 1}: w = {w.detach().tolist()}")
print("learned", [round(v, 3) for v in w.tolist()], "true", true_w.tolist())

section("9. under the hood")
info = torch.autograd.cache_info()
print(f"compiled programs: {info.currsize}, cache hits: {info.hits}, XLA traces: {info.traces}")
print("a repeating loop reuses one compiled backward; w.jax() is the jax.Array itself:",
      type(w.detach().jax()).__name__)
