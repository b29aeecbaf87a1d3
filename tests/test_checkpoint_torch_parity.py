"""`utils/checkpoint.py`: activation checkpointing against `jax.grad` of the same jnp program and
against `torch.utils.checkpoint` on the same weights; the compiled backward's memory."""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
from helpers import DTYPES, tol
from tapegrad._core.compile import cache
from tapegrad.utils.checkpoint import checkpoint, checkpoint_sequential

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
W1, W2 = RNG.standard_normal((6, 5)) * 0.5, RNG.standard_normal((5, 6)) * 0.5
B = RNG.standard_normal(5)
X = RNG.standard_normal((6, 4))  # used transposed: a non-contiguous view
S = 1.5  # a 0-d tensor argument


def block(lib, h, w1, b, w2, s, *, power=2):
    """A region with broadcasting (the bias), a 0-d tensor, a Python number and two outputs."""
    a = lib.tanh(h @ w1 + b) * s
    return a @ w2, (a ** power).sum()


def jnp_loss(x, w1, b, w2, s):
    y, r = block(jnp, x.T, w1, b, w2, s, power=3)
    return (y ** 2).sum() + r


def run(lib, dtype, ckpt=None):
    d = {tg: {tg.float32: tg.float32, tg.float64: tg.float64},
         torch: {tg.float32: torch.float32, tg.float64: torch.float64}}[lib][dtype]
    leaves = [lib.tensor(v, dtype=d, requires_grad=True) for v in (X, W1, B, W2, S)]
    x, w1, b, w2, s = leaves
    args = (lambda *a, power: block(lib, *a, power=power), x.t(), w1, b, w2, s)
    if ckpt is None:
        y, r = args[0](*args[1:], power=3)
    else:
        y, r = ckpt(*args, use_reentrant=False, power=3)
    loss = (y ** 2).sum() + r
    loss.backward()
    return loss, [t.grad for t in leaves]


def close(actual, expected, dtype) -> None:
    """Within float rounding of the largest magnitude (float32 sums cancel in places)."""
    a, e = np.asarray(actual), np.asarray(expected)
    t = tol(dtype)
    np.testing.assert_allclose(a, e, rtol=t["rtol"], atol=t["rtol"] * np.abs(e).max() + t["atol"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_equal_jax_grad_and_pytorch(dtype):
    loss, grads = run(tg, dtype, checkpoint)
    with jax.enable_x64(True):
        arrays = [jnp.asarray(v, dtype.np) for v in (X, W1, B, W2, S)]
        value, ref = jax.value_and_grad(jnp_loss, argnums=tuple(range(5)))(*arrays)
    close(loss.item(), value, dtype)
    for g, r in zip(grads, ref):
        assert g.shape == r.shape
        close(g.numpy(), r, dtype)
    t_loss, t_grads = run(torch, dtype, torch.utils.checkpoint.checkpoint)
    close(loss.item(), t_loss.item(), dtype)
    for g, t in zip(grads, t_grads):
        close(g.numpy(), t.numpy(), dtype)
    assert loss.grad_fn.next_functions  # the region is one node of the graph


def make_mlp(lib, n, width, seed=0):
    rng = np.random.default_rng(seed)
    layers = []
    for _ in range(n):
        lin = lib.nn.Linear(width, width).double()
        with lib.no_grad():
            lin.weight.copy_(lib.tensor(rng.standard_normal((width, width)) * 0.4))
            lin.bias.copy_(lib.tensor(rng.standard_normal(width) * 0.1))
        layers += [lin, lib.nn.Tanh()]
    return lib.nn.Sequential(*layers)


def grads_of(model):
    return [p.grad.numpy() for p in model.parameters()]


@pytest.mark.parametrize("reentrant", [False, True])
def test_module_parameters_read_inside_get_gradients_as_pytorch(reentrant):
    """Closure-captured weights: the region finds the leaves it reads, in both variants."""
    x_np = RNG.standard_normal((3, 4))
    out = {}
    for lib in (tg, torch):
        model = make_mlp(lib, 3, 4)
        x = lib.tensor(x_np, requires_grad=True)
        h = lib.utils.checkpoint.checkpoint(model, x, use_reentrant=reentrant)
        (h.sin().sum()).backward()
        out[lib] = grads_of(model) + [x.grad.numpy()]
    for a, b in zip(out[tg], out[torch]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_nested_checkpoints_and_a_kept_intermediate_as_pytorch():
    x_np = RNG.standard_normal((3, 4))
    out = {}
    for lib in (tg, torch):
        ck = lib.utils.checkpoint.checkpoint
        model = make_mlp(lib, 4, 4)
        x = lib.tensor(x_np, requires_grad=True)

        def outer(h):
            h = ck(model[0:4], h, use_reentrant=False)
            return ck(lambda g: model[4:8](g) * 2.0, h, use_reentrant=False)
        y = ck(outer, x, use_reentrant=False)
        (y ** 3).sum().backward()
        out[lib] = grads_of(model) + [x.grad.numpy(), y.detach().numpy()]
    for a, b in zip(out[tg], out[torch]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_dropout_inside_sees_the_same_mask_in_the_recomputation():
    tg.manual_seed(0)
    x = tg.randn(64, 32, requires_grad=True)
    c = tg.randn(64, 32)
    y = checkpoint(lambda h: tg.nn.functional.dropout(h, 0.5) * 1.0, x, use_reentrant=False)
    (y * c).sum().backward()
    kept = (y.detach() != 0).numpy()
    assert 0.3 < kept.mean() < 0.7
    # the gradient is that of the forward's own mask: c / (1 - p) where kept, zero elsewhere
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, c.numpy() * 2.0, 0.0), rtol=1e-6)


def test_dropout_gradients_equal_the_uncheckpointed_run():
    def run_once(ck):
        tg.manual_seed(3)
        model = tg.nn.Sequential(tg.nn.Linear(8, 8), tg.nn.Dropout(0.3), tg.nn.Linear(8, 2))
        x = tg.randn(5, 8)
        y = checkpoint(model, x, use_reentrant=False, preserve_rng_state=False) if ck else model(x)
        y.square().sum().backward()
        return grads_of(model)
    for a, b in zip(run_once(True), run_once(False)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("segments", [1, 2, 3, 5])
def test_checkpoint_sequential_as_pytorch(segments):
    x_np = RNG.standard_normal((3, 4))
    out = {}
    for lib in (tg, torch):
        model = make_mlp(lib, 5, 4)
        x = lib.tensor(x_np, requires_grad=True)
        y = lib.utils.checkpoint.checkpoint_sequential(model, segments, x, use_reentrant=False)
        y.square().sum().backward()
        out[lib] = grads_of(model) + [x.grad.numpy(), y.detach().numpy()]
    for a, b in zip(out[tg], out[torch]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_autograd_grad_and_create_graph_through_a_region():
    out = {}
    for lib in (tg, torch):
        x = lib.tensor(RNG.standard_normal(5) if lib is tg else out[tg][2], requires_grad=True)
        y = lib.utils.checkpoint.checkpoint(lambda h: (h.sin() * h).sum(), x, use_reentrant=False)
        (g,) = lib.autograd.grad(y, x, create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), x)
        out[lib] = (g.detach().numpy(), gg.numpy(), x.detach().numpy())
    for a, b in zip(out[tg][:2], out[torch][:2]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_a_repeated_step_compiles_once():
    model = tg.nn.Sequential(tg.nn.Linear(4, 4), tg.nn.Tanh(), tg.nn.Linear(4, 1))
    traces = []
    for _ in range(4):
        x = tg.randn(3, 4)
        checkpoint(model, x, use_reentrant=False).sum().backward()
        traces.append(tg.autograd.cache_info().traces)
    assert traces[1] == traces[2] == traces[3]


# -- errors and warnings, as PyTorch 2.13 ---------------------------------------------------------

def both(fn):
    """fn(lib) for tapegrad and PyTorch: the (type, message) each raises or warns."""
    results = []
    for lib in (tg, torch):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fn(lib)
                err = None
            except Exception as e:  # the error itself is what is compared
                err = (type(e), str(e))
        results.append((err, [(w.category, str(w.message)) for w in caught]))
    return results


def test_use_reentrant_left_out_warns_and_means_true_as_pytorch():
    def call(lib):
        x = lib.ones(2, requires_grad=True)
        lib.utils.checkpoint.checkpoint(lambda h: h * 2, x).sum().backward()
        lib.utils.checkpoint.checkpoint_sequential([lambda h: h * 2] * 2, 2, x).sum().backward()
    (err_t, warn_t), (err_p, warn_p) = both(call)
    assert err_t is None and err_p is None
    assert warn_t == warn_p and len(warn_t) == 2
    assert "use_reentrant parameter should be passed explicitly" in warn_t[0][1]


@pytest.mark.parametrize("case", ["kwargs", "debug", "context_fn", "determinism", "seq_kwargs"])
def test_refused_arguments_as_pytorch(case):
    def call(lib):
        ck = lib.utils.checkpoint
        x = lib.ones(2, requires_grad=True)
        if case == "kwargs":
            ck.checkpoint(lambda h, scale: h * scale, x, use_reentrant=True, scale=2.0)
        elif case == "debug":
            ck.checkpoint(lambda h: h, x, use_reentrant=True, debug=True)
        elif case == "context_fn":
            ck.checkpoint(lambda h: h, x, use_reentrant=True, context_fn=lambda: (None, None))
        elif case == "determinism":
            ck.checkpoint(lambda h: h * 2, x, use_reentrant=False, determinism_check="all")
        else:
            ck.checkpoint_sequential([lambda h: h], 1, x, use_reentrant=False, scale=2)
    (err_t, _), (err_p, _) = both(call)
    assert err_t == err_p and err_t[0] is ValueError


def test_reentrant_with_no_input_needing_grad_warns_and_gives_no_gradient_as_pytorch():
    def call(lib):
        lin = lib.nn.Linear(2, 2)
        y = lib.utils.checkpoint.checkpoint(lin, lib.ones(1, 2), use_reentrant=True)
        assert not y.requires_grad
    (err_t, warn_t), (err_p, warn_p) = both(call)
    assert err_t is None and err_p is None
    assert warn_t == warn_p == [(UserWarning, "None of the inputs have requires_grad=True. "
                                              "Gradients will be None")]


@pytest.mark.parametrize("how", ["grad", "inputs"])
def test_reentrant_refuses_autograd_grad_as_pytorch(how):
    def call(lib):
        x = lib.ones(2, requires_grad=True)
        y = lib.utils.checkpoint.checkpoint(lambda h: h.exp(), x, use_reentrant=True).sum()
        if how == "grad":
            lib.autograd.grad(y, x)
        else:
            y.backward(inputs=[x])
    (err_t, _), (err_p, _) = both(call)
    assert err_t == err_p and err_t[0] is RuntimeError
    assert "use_reentrant=True, torch.utils.checkpoint is incompatible" in err_t[1]


def test_an_input_modified_in_place_before_backward_raises_as_pytorch():
    def call(lib):
        x = lib.ones(3, requires_grad=True)
        h = x * 2
        y = lib.utils.checkpoint.checkpoint(lambda t: t.exp(), h, use_reentrant=False)
        h.add_(1)
        y.sum().backward()
    (err_t, _), (err_p, _) = both(call)
    assert err_t[0] is err_p[0] is RuntimeError
    key = "one of the variables needed for gradient computation has been modified by an inplace"
    assert key in err_t[1] and key in err_p[1]


# -- outputs, inputs and modes ---------------------------------------------------------------

def test_outputs_of_any_structure_as_pytorch():
    """A dict of a list, a number, an input returned as it is and a tensor needing no grad."""
    x_np = RNG.standard_normal(4)
    out = {}
    for lib in (tg, torch):
        x = lib.tensor(x_np, requires_grad=True)

        def fn(h, k):
            return {"a": [h.exp() * k, k], "same": h, "const": lib.ones(2)}
        o = lib.utils.checkpoint.checkpoint(fn, x, 3, use_reentrant=False)
        assert o["same"] is x and o["a"][1] == 3 and not o["const"].requires_grad
        (o["a"][0].sum() + o["same"].sum()).backward()
        out[lib] = x.grad.numpy()
    np.testing.assert_allclose(out[tg], out[torch], rtol=1e-12)


def region_with(lib, kind: str, calls: list):
    """A region holding Python the replay cannot run: a tensor hook doubling its gradient, a
    retain_grad, or a custom Function whose backward is deliberately not the derivative (3x, not
    2x), so the gradients show that the hook and that backward ran."""
    class Square(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return 3 * g * x

    kept = []

    def fn(x):
        h = x.sin()
        if kind == "hook":
            h.register_hook(lambda g: (calls.append(1), g * 2)[1])
        elif kind == "retain_grad":
            h.retain_grad()
            kept.append(h)
        else:
            h = Square.apply(h)
        return (h * x).exp()
    return fn, kept


@pytest.mark.parametrize("kind", ["hook", "retain_grad", "function"])
def test_a_region_with_hooks_or_a_custom_function_keeps_pytorchs_gradients(kind):
    # non-reentrant: PyTorch keeps the region's graph, so hooks fire once and retain_grad works;
    # tapegrad leaves such a region as recorded (its activations kept): the same gradients
    results = []
    for lib in (tg, torch):
        calls = []
        fn, kept = region_with(lib, kind, calls)
        x = lib.tensor(X[:3], requires_grad=True)
        if lib is tg:
            with pytest.warns(UserWarning, match="this region is not checkpointed: its "
                                                 "gradients are PyTorch's, but its activations"):
                y = checkpoint(fn, x, use_reentrant=False)
        else:
            y = torch.utils.checkpoint.checkpoint(fn, x, use_reentrant=False)
        name = type(y.grad_fn).__name__
        y.sum().backward()
        results.append((name, x.grad, kept[0].grad if kept else None, len(calls)))
    (name_t, grad_t, kept_t, calls_t), (name_p, grad_p, kept_p, calls_p) = results
    assert name_t == name_p == "ExpBackward0"  # the last op: left as recorded, no region node
    assert calls_t == calls_p == (kind == "hook")
    close(grad_t, grad_p.numpy(), tg.float32)
    if kept_t is not None:
        close(kept_t, kept_p.numpy(), tg.float32)


def test_a_reentrant_region_with_a_custom_function_gives_pytorchs_gradients():
    grads = []
    for lib, ckpt in ((tg, checkpoint), (torch, torch.utils.checkpoint.checkpoint)):
        fn, _ = region_with(lib, "function", [])
        x = lib.tensor(X[:3], requires_grad=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ckpt(fn, x, use_reentrant=True).sum().backward()
        assert [str(w.message).startswith("checkpoint: the function holds") for w in caught] == \
            ([True] if lib is tg else [])
        grads.append(x.grad)
    close(grads[0], grads[1].numpy(), tg.float32)


@pytest.mark.parametrize("kind", ["hook", "retain_grad"])
def test_a_hook_inside_a_reentrant_region_raises_as_pytorch(kind):
    # PyTorch runs the reentrant forward under no_grad: the tensors made inside need no grad
    def call(lib):
        fn, _ = region_with(lib, kind, [])
        lib.utils.checkpoint.checkpoint(fn, lib.ones(3, requires_grad=True), use_reentrant=True)
    (err_t, _), (err_p, _) = both(call)
    assert err_t[0] is err_p[0] is RuntimeError
    assert "hook or retains its grad" in err_t[1] and "use_reentrant=False" in err_t[1]


def test_integer_and_bool_inputs_inside_the_region_as_pytorch():
    idx_np, mask_np = np.array([[0, 2], [3, 3]]), np.array([True, False, True, True])
    w_np = RNG.standard_normal((5, 4))
    out = {}
    for lib in (tg, torch):
        emb = lib.nn.Embedding(5, 4).double()
        with lib.no_grad():
            emb.weight.copy_(lib.tensor(w_np))
        idx, mask = lib.tensor(idx_np), lib.tensor(mask_np)
        y = lib.utils.checkpoint.checkpoint(lambda i, m: emb(i).tanh() * m, idx, mask,
                                            use_reentrant=False)
        (y ** 2).sum().backward()
        out[lib] = emb.weight.grad.numpy()
    np.testing.assert_allclose(out[tg], out[torch], rtol=1e-12, atol=1e-14)


def test_a_compiled_step_with_checkpoints_equals_eager():
    def make():
        tg.manual_seed(1)
        model = tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.Tanh(), tg.nn.Linear(8, 8),
                                 tg.nn.Tanh(), tg.nn.Linear(8, 1))
        return model, tg.optim.SGD(model.parameters(), lr=0.1)

    def step(model, opt, x):
        opt.zero_grad()
        h = checkpoint(model[0:2], x, use_reentrant=False)
        loss = checkpoint_sequential(model[2:], 2, h, use_reentrant=False).square().mean()
        loss.backward()
        opt.step()
        return loss

    xs = [tg.tensor(RNG.standard_normal((6, 4)), dtype=tg.float32) for _ in range(5)]
    eager, e_opt = make()
    compiled, c_opt = make()
    cstep = tg.compile(lambda x: step(compiled, c_opt, x))
    for x in xs:
        np.testing.assert_allclose(cstep(x).item(), step(eager, e_opt, x).item(), rtol=1e-6)
    for a, b in zip(compiled.parameters(), eager.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_under_no_grad_the_function_just_runs():
    x = tg.ones(2, requires_grad=True)
    with tg.no_grad():
        y = checkpoint(lambda h: h * 2, x, use_reentrant=False)
    assert not y.requires_grad and y.tolist() == [2.0, 2.0]


# -- memory: the compiled backward program keeps less ---------------------------------------------

def backward_memory(loss):
    """`loss.backward()`, and the memory statistics of the compiled program it ran."""
    calls = []
    get = cache.get

    def spy(key, build, op_by_op=False):  # a whole program, to read its memory
        program = get(key, build)
        if key[0] != "segment":
            return program

        def call(*args):
            calls.append((program, args))
            return program(*args)
        return call
    cache.get = spy
    try:
        loss.backward()
    finally:
        del cache.get
    program, args = calls[-1]
    with jax.enable_x64(True):
        return program.lower(*args).compile().memory_analysis()


def test_checkpointing_lowers_the_backward_programs_temp_memory():
    tg.manual_seed(0)
    model = tg.nn.Sequential(*[m for _ in range(24) for m in (tg.nn.Linear(32, 32), tg.nn.ReLU())])
    x = tg.randn(512, 32)
    plain = backward_memory(model(x).square().mean())
    g_plain = grads_of(model)
    model.zero_grad()
    ckpt = backward_memory(checkpoint_sequential(model, 6, x, use_reentrant=False).square().mean())
    activation = 512 * 32 * 4
    # without checkpointing an activation per layer is kept in the program's working memory;
    # with 6 segments, the segments' inputs and one segment's activations at a time (with
    # jax.checkpoint's barrier, which XLA's CPU compiler drops, it would be more than plain)
    assert plain.temp_size_in_bytes >= 24 * activation
    assert ckpt.temp_size_in_bytes < 0.5 * plain.temp_size_in_bytes
    assert ckpt.temp_size_in_bytes + ckpt.output_size_in_bytes < \
        0.6 * (plain.temp_size_in_bytes + plain.output_size_in_bytes)
    for a, b in zip(grads_of(model), g_plain):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# -- selective activation checkpointing (context_fn) ---------------------------------------------

def sac_fn(lib, x, y):  # PyTorch's documentation's example
    return lib.sigmoid(lib.matmul(lib.matmul(x, y), y)) * y


def sac_context(lib, policy):
    import functools
    return functools.partial(lib.utils.checkpoint.create_selective_checkpoint_contexts, policy)


def aten(lib, *names):
    return [getattr(lib.ops.aten, n).default for n in names]


SAC_POLICIES = {  # name -> policy(lib): a list of ops, or a policy function
    "list of mm": lambda lib: aten(lib, "mm"),
    "list of mm and sigmoid": lambda lib: aten(lib, "mm", "sigmoid"),
    "empty list": lambda lib: [],
    "function": lambda lib: lambda ctx, op, *a, **k: (
        lib.utils.checkpoint.CheckpointPolicy.MUST_SAVE if op in aten(lib, "mm")
        else lib.utils.checkpoint.CheckpointPolicy.PREFER_RECOMPUTE),
    "function saving all": lambda lib: lambda ctx, op, *a, **k:
        lib.utils.checkpoint.CheckpointPolicy.PREFER_SAVE,
    "bool function": lambda lib: lambda ctx, op, *a, **k: op in aten(lib, "sigmoid"),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("policy", list(SAC_POLICIES))
def test_selective_checkpointing_gradients_as_pytorch_and_uncheckpointed(dtype, policy):
    x_np, y_np = RNG.standard_normal((2, 4, 4))
    results = []
    for lib, ckpt in ((tg, True), (tg, False), (torch, True)):
        d = getattr(lib, str(dtype).split(".")[-1])
        x, y = (lib.tensor(a, dtype=d, requires_grad=True) for a in (x_np, y_np))
        if ckpt:
            out = lib.utils.checkpoint.checkpoint(
                lambda a, b: sac_fn(lib, a, b), x, y, use_reentrant=False,
                context_fn=sac_context(lib, SAC_POLICIES[policy](lib)))
        else:
            out = sac_fn(lib, x, y)
        (out.tanh() * out).sum().backward()
        results.append([t.detach().numpy() for t in (out, x.grad, y.grad)])
    for got, plain, want in zip(*results):
        close(got, plain, dtype)
        close(got, want, dtype)


def test_the_policy_is_called_as_pytorch_calls_it():
    """Once per op of the region, in order, with (ctx, op, *inputs, **keyword arguments);
    `ctx.op_output` is the op's output and `ctx.is_recompute` False (PyTorch 2.13 asks during
    the forward only)."""
    x_np, y_np = RNG.standard_normal((2, 3, 3))
    seen = {}
    for lib in (tg, torch):
        calls = seen[lib] = []

        def policy(ctx, op, *args, **kwargs):
            calls.append((op, [tuple(a.shape) for a in args if isinstance(a, lib.Tensor)],
                          tuple(ctx.op_output.shape), ctx.is_recompute))
            return lib.utils.checkpoint.CheckpointPolicy.PREFER_RECOMPUTE
        x, y = (lib.tensor(a, requires_grad=True) for a in (x_np, y_np))
        lib.utils.checkpoint.checkpoint(lambda a, b: sac_fn(lib, a, b), x, y,
                                        use_reentrant=False,
                                        context_fn=sac_context(lib, policy)).sum().backward()
    names = {torch.ops.aten.mm.default: tg.ops.aten.mm.default,
             torch.ops.aten.sigmoid.default: tg.ops.aten.sigmoid.default,
             torch.ops.aten.mul.Tensor: tg.ops.aten.mul.Tensor}
    torch_calls = [(names[op], *rest) for op, *rest in seen[torch]
                   if op in names]  # PyTorch also reports the detach ops autograd adds
    assert seen[tg] == [tuple(c) for c in torch_calls]
    assert [op.name for op, *_ in seen[tg]] == ["matmul", "matmul", "sigmoid", "mul"]


def _count(jaxpr, counts):
    for eqn in jaxpr.eqns:
        counts[eqn.primitive.name] = counts.get(eqn.primitive.name, 0) + 1
        for p in eqn.params.values():
            for sub in p if isinstance(p, (tuple, list)) else [p]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    _count(inner, counts)
    return counts


def backward_primitives(out):
    """How many times each primitive runs in the backward of `out`'s checkpoint node (the
    region's vjp alone: its residuals are what the forward saved)."""
    node = out._autograd_node()
    args = [n if not isinstance(n, tg._core.graph.Node) else
            n.value if n.value is not None else n.inputs[0].value for n in node.inputs]
    with jax.enable_x64(True):
        value, vjp_fn = jax.vjp(node.op.fn, *args)
        return _count(jax.make_jaxpr(vjp_fn)(jnp.ones_like(value)).jaxpr, {})


def test_the_policy_decides_what_the_backward_recomputes():
    x, y = (tg.tensor(a, requires_grad=True) for a in RNG.standard_normal((2, 4, 4)))

    def dots(policy):
        out = checkpoint(lambda a, b: sac_fn(tg, a, b), x, y, use_reentrant=False,
                         context_fn=sac_context(tg, policy))
        return backward_primitives(out)["dot_general"]
    # four products give the gradients of the two matmuls; recomputing them adds two
    assert dots([]) == 6
    assert dots(aten(tg, "mm")) == 4
    assert dots(lambda ctx, op, *a, **k: op is tg.ops.aten.matmul.default and
                a[0] is not None and ctx.op_output.shape == (4, 4) and len(a) == 2) == 4
    assert dots(aten(tg, "sigmoid")) == 6


def test_selective_checkpointing_keeps_what_the_policy_saves_in_memory():
    """A 24-layer MLP checkpointed layer by layer: the compiled backward's working memory keeps
    the outputs the policy saves. Saving nothing is plain checkpointing; saving every Linear's
    output keeps 24 more activations (a Tanh's output is the next region's input, kept anyway)."""
    tg.manual_seed(0)
    layers = [tg.nn.Sequential(tg.nn.Linear(32, 32), tg.nn.Tanh()) for _ in range(24)]
    x = tg.randn(512, 32)

    def memory(**how):
        for layer in layers:
            layer.zero_grad()
        h = x
        for layer in layers:
            h = checkpoint(layer, h, use_reentrant=False, **how)
        stats = backward_memory(h.square().mean())
        return stats.temp_size_in_bytes, [g for layer in layers for g in grads_of(layer)]
    plain, g_plain = memory()
    nothing, g_nothing = memory(context_fn=sac_context(tg, []))
    tanhs, _ = memory(context_fn=sac_context(tg, aten(tg, "tanh")))
    linears, g_linears = memory(context_fn=sac_context(tg, aten(tg, "linear")))
    activation = 512 * 32 * 4
    assert nothing == plain == tanhs
    assert linears >= nothing + 20 * activation
    for grads in (g_nothing, g_linears):
        for a, b in zip(grads, g_plain):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


SAC_ERRORS = {
    "a packet in the list": lambda lib: sac_context(lib, [lib.ops.aten.mm])(),
    "neither list nor function": lambda lib: sac_context(lib, 3)(),
    "offload": lambda lib: lib.utils.checkpoint.checkpoint(
        lambda a: a.sin(), lib.ones(2, requires_grad=True), use_reentrant=False,
        context_fn=sac_context(lib, lambda ctx, op, *a, **k:
                               lib.utils.checkpoint.CheckpointPolicy.MUST_CPU_OFFLOAD)),
}


@pytest.mark.parametrize("case", list(SAC_ERRORS))
def test_selective_checkpointing_errors(case):
    (err_t, _), (err_p, _) = both(SAC_ERRORS[case])
    if case == "offload":  # PyTorch offloads to the CPU; tapegrad says it does not
        assert err_p is None and err_t[0] is NotImplementedError and "MUST_SAVE" in err_t[1]
    else:  # the same type and message, but for the packet's own name
        assert err_t[0] is err_p[0]
        assert err_t[1].split(" of type ")[0].split(".")[-1] == \
            err_p[1].split(" of type ")[0].split(".")[-1]
        assert err_t[1].split(">")[-1] == err_p[1].split(">")[-1]


def test_context_fn_of_other_contexts_is_refused():
    with pytest.raises(NotImplementedError, match="create_selective_checkpoint_contexts"):
        checkpoint(lambda a: a * 2, tg.ones(2, requires_grad=True), use_reentrant=False,
                   context_fn=lambda: (tg.no_grad(), tg.no_grad()))
    with pytest.raises(AttributeError, match="'tapegrad.ops.aten' has no op 'addmm_nonsense'"):
        tg.ops.aten.addmm_nonsense
    assert tg.ops.aten.mm.default is tg.ops.aten.matmul.default


def test_selective_checkpointing_under_create_graph_and_compile():
    """Gradients of gradients through a selective region equal the uncheckpointed ones
    (PyTorch refuses a second backward through one), and a compiled step equals eager."""
    import functools
    x_np, y_np = RNG.standard_normal((2, 4, 4))
    ctx = sac_context(tg, aten(tg, "mm"))
    results = []
    for use in (True, False):
        x, y = (tg.tensor(a, requires_grad=True) for a in (x_np, y_np))
        out = checkpoint(functools.partial(sac_fn, tg), x, y, use_reentrant=False,
                         context_fn=ctx) if use else sac_fn(tg, x, y)
        g, = tg.autograd.grad(out.sum(), x, create_graph=True)
        gg, = tg.autograd.grad((g ** 2).sum(), y)
        results.append((g.detach().numpy(), gg.numpy()))
    for a, b in zip(*results):
        close(a, b, tg.float32)

    losses = []
    for compiled in (False, True):
        tg.manual_seed(0)
        model = tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.Tanh(), tg.nn.Linear(8, 2))
        opt = tg.optim.SGD(model.parameters(), lr=0.1)
        data = tg.randn(5, 4)
        linear_saved = sac_context(tg, aten(tg, "linear"))

        def step(batch):
            opt.zero_grad()
            loss = checkpoint(model, batch, use_reentrant=False,
                              context_fn=linear_saved).square().mean()
            loss.backward()
            opt.step()
            return loss
        run_step = tg.compile(step) if compiled else step
        losses.append([float(run_step(data)) for _ in range(4)])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-6)
