"""tapegrad.func and tapegrad.autograd.functional against torch.func and
torch.autograd.functional: the same programs (written once over the library), the same inputs,
the same numbers, and PyTorch's error types where PyTorch raises."""
import jax
import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")

DTYPES = [np.float32, np.float64]


def _tol(dtype):
    return 1e-5 if dtype == np.float32 else 1e-10


def _to(lib, a):
    """An array (or a pytree of them) as `lib`'s tensors."""
    if isinstance(a, dict):
        return {k: _to(lib, v) for k, v in a.items()}
    if isinstance(a, (tuple, list)):
        return type(a)(_to(lib, v) for v in a)
    if isinstance(a, np.ndarray):
        return lib.tensor(a)
    return a


def _close(got, want, dtype, grads=True):
    """`got` (tapegrad's result) equals `want` (torch's): same structure, shapes, dtypes, values."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys()
        for k in want:
            _close(got[k], want[k], dtype, grads)
        return
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want), (got, want)
        for g, w in zip(got, want):
            _close(g, w, dtype, grads)
        return
    if not isinstance(want, torch.Tensor):
        assert got == want
        return
    assert isinstance(got, tg.Tensor), type(got)
    w = want.detach().numpy()
    assert tuple(got.shape) == w.shape
    assert got.detach().numpy().dtype == w.dtype
    assert got.requires_grad == want.requires_grad or not grads
    np.testing.assert_allclose(got.detach().numpy(), w, rtol=_tol(dtype), atol=_tol(dtype))


def _inputs(dtype, *shapes, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(np.asarray(rng.normal(size=s)).astype(dtype) for s in shapes)


def _both(run, arrays, dtype, grads=True):
    """`run(lib, *tensors)` with tapegrad and with torch, compared (`grads`: `requires_grad`
    too)."""
    _close(run(tg, *_to(tg, arrays)), run(torch, *_to(torch, arrays)), dtype, grads)


# the programs: written once, over either library
def f(x, w, s):  # scalar
    return ((x * w).tanh() * s + x.exp() * 0.1).sum()


def g(x, w):  # a pytree of non-scalar outputs
    return {"a": (x * w).sin(), "b": (x ** 2).sum(1)}


def h(x, w):  # vector -> vector
    return (x * w).sin() + x.cos() * w


# -- grad, grad_and_value ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("argnums", [0, 2, (0, 2), (1, 0), (-1,)])
def test_grad_and_grad_and_value(dtype, argnums):
    arrays = _inputs(dtype, (3, 4), (4,), ())
    _both(lambda lib, *a: lib.func.grad(f, argnums=argnums)(*a), arrays, dtype)
    _both(lambda lib, *a: lib.func.grad_and_value(f, argnums=argnums)(*a), arrays, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_has_aux(dtype):
    def with_aux(x, w):
        y = x * w
        return y.sum(), {"y": y, "n": y.abs().max()}
    arrays = _inputs(dtype, (3, 4), (4,))
    _both(lambda lib, *a: lib.func.grad(with_aux, has_aux=True)(*a), arrays, dtype)
    _both(lambda lib, *a: lib.func.grad_and_value(with_aux, argnums=(0, 1), has_aux=True)(*a),
          arrays, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_of_grad_and_keyword_arguments(dtype):
    def scaled(x, *, k):
        return (x.sin() * k).sum()
    (x,) = _inputs(dtype, (5,))
    _both(lambda lib, a: lib.func.grad(lambda b: lib.func.grad(scaled)(b, k=2.0).sum())(a),
          (x,), dtype)


# -- vjp, jvp ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_vjp(dtype):
    x, w, ca, cb = _inputs(dtype, (3, 4), (4,), (3, 4), (3,))

    def run(lib, x, w, ca, cb):
        out, vjp_fn = lib.func.vjp(g, x, w)
        return out, vjp_fn({"a": ca, "b": cb})
    _both(run, (x, w, ca, cb), dtype)

    def run_aux(lib, x, c):
        out, vjp_fn, aux = lib.func.vjp(lambda a: (a.exp(), a.sum()), x, has_aux=True)
        return out, vjp_fn(c), aux
    _both(run_aux, (x, ca), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_jvp(dtype):
    x, w, tx, tw = _inputs(dtype, (3, 4), (4,), (3, 4), (4,))
    _both(lambda lib, *a: lib.func.jvp(g, a[:2], a[2:]), (x, w, tx, tw), dtype)
    _both(lambda lib, *a: lib.func.jvp(lambda p: (p.exp(), p.sum()), a[:1], a[1:], has_aux=True),
          (x, tx), dtype)


# -- jacrev, jacfwd, hessian ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
@pytest.mark.parametrize("how", ["jacrev", "jacfwd"])
def test_jacobians(dtype, argnums, how):
    arrays = _inputs(dtype, (3,), (3,))
    _both(lambda lib, *a: getattr(lib.func, how)(h, argnums=argnums)(*a), arrays, dtype)
    arrays = _inputs(dtype, (2, 3), (3,))
    _both(lambda lib, *a: getattr(lib.func, how)(g, argnums=argnums)(*a), arrays, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", ["jacrev", "jacfwd"])
def test_jacobian_has_aux(dtype, how):
    (x,) = _inputs(dtype, (4,))
    _both(lambda lib, a: getattr(lib.func, how)(lambda b: (b.sin(), b.cos()), has_aux=True)(a),
          (x,), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("argnums", [0, (0, 1)])
def test_hessian_and_mixed_jacobians(dtype, argnums):
    def scalar(x, w):
        return ((x * w).tanh() ** 2).sum() + (x ** 3).sum()
    arrays = _inputs(dtype, (3,), (3,))
    _both(lambda lib, *a: lib.func.hessian(scalar, argnums=argnums)(*a), arrays, dtype)
    _both(lambda lib, *a: lib.func.jacrev(lib.func.jacfwd(scalar))(*a), arrays, dtype)
    _both(lambda lib, *a: lib.func.jacfwd(lib.func.jacrev(h))(*a), arrays, dtype)


# -- vmap ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_vmap_in_dims_and_out_dims(dtype):
    x, w, y = _inputs(dtype, (5, 3), (3,), (3, 5))
    _both(lambda lib, x, w: lib.func.vmap(h, in_dims=(0, None))(x, w), (x, w), dtype)
    _both(lambda lib, y, w: lib.func.vmap(h, in_dims=(1, None), out_dims=1)(y, w), (y, w), dtype)
    _both(lambda lib, x, y: lib.func.vmap(h, in_dims=(0, -1))(x, y), (x, y), dtype)
    def pair(a, b):
        return {"a": (a[:, None] * b).sin(), "b": (a * b).sum()}
    _both(lambda lib, x, w: lib.func.vmap(pair, in_dims=(0, None), out_dims={"a": 1, "b": 0})(
        x, w), (x, w), dtype)
    # nested structure of inputs, in_dims a prefix of it
    _both(lambda lib, x, w: lib.func.vmap(lambda p: p["x"] * p["w"][0],
                                          in_dims=({"x": 0, "w": None},))({"x": x, "w": (w,)}),
          (x, w), dtype)
    _both(lambda lib, x, w: lib.func.vmap(lambda a, b: (a * b, b), out_dims=(0, None),
                                          in_dims=(0, None))(x, w), (x, w), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nested_vmap(dtype):
    x, y = _inputs(dtype, (4, 3), (5, 3))
    # all pairs: outer over x, inner over y
    _both(lambda lib, x, y: lib.func.vmap(lambda a: lib.func.vmap(lambda b: (a * b).sum())(y))(x),
          (x, y), dtype)
    _both(lambda lib, x, y: lib.func.vmap(lib.func.vmap(h, in_dims=(0, None)),
                                          in_dims=(None, 0))(x, y[:, :3]), (x, y), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vmap_chunk_size(dtype):
    x, w = _inputs(dtype, (6, 3), (3,))
    _both(lambda lib, x, w: lib.func.vmap(h, in_dims=(0, None), chunk_size=4)(x, w), (x, w),
          dtype)
    # PyTorch's chunked vmap fails on an unbatched output (out_dims None): against unchunked
    tg.manual_seed(0)  # and the generator's key is first made inside the chunks' trace
    got = tg.func.vmap(lambda a, b: (a * b, b), in_dims=(0, None), out_dims=(1, None),
                       chunk_size=4)(*_to(tg, (x, w)))
    want = torch.func.vmap(lambda a, b: (a * b, b), in_dims=(0, None), out_dims=(1, None))(
        *_to(torch, (x, w)))
    _close(got, want, dtype)
    noise = tg.func.vmap(lambda a: a * 0 + tg.randn(3), randomness="same")(tg.tensor(x))
    assert (noise == noise[0]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_linearize_and_functionalize(dtype):
    x, t1, t2 = _inputs(dtype, (3, 4), (3, 4), (3, 4))

    def run(lib, x, t1, t2):
        out, jvp_fn = lib.func.linearize(lambda a: (a.sin() * a, a.exp().sum()), x)
        return out, jvp_fn(t1), jvp_fn(t2)
    _both(run, (x, t1, t2), dtype)
    _both(lambda lib, x, t1, t2: run(lib, x.requires_grad_(), t1, t2), (x, t1, t2), dtype)

    def mutating(a):
        b = a.clone()
        b.mul_(2).add_(1)
        b[0] = 0.5
        return b.view(-1)
    _both(lambda lib, x: lib.func.functionalize(mutating)(x), (x,), dtype)
    _both(lambda lib, x: lib.func.vmap(lib.func.functionalize(mutating, remove=
                                                              "mutations_and_views"))(x),
          (x,), dtype)


def test_vmap_randomness_same_and_different_as_pytorch():
    """Draws differ from PyTorch's (another generator), but their structure is PyTorch's: "same"
    gives every sample one draw, "different" one per sample, "error" refuses."""
    for lib in (tg, torch):
        x = lib.zeros(4, 3)
        same = lib.func.vmap(lambda a: a + lib.randn(3), randomness="same")(x)
        assert (same == same[0]).all()
        different = lib.func.vmap(lambda a: a + lib.randn(3), randomness="different")(x)
        assert not (different == different[0]).all()
        with pytest.raises(RuntimeError, match="called random operation while in randomness "
                                               "error mode"):
            lib.func.vmap(lambda a: a + lib.randn(3))(x)
        with pytest.raises(RuntimeError, match="Only allowed values for randomness"):
            lib.func.vmap(lambda a: a, randomness="sometimes")(x)


# -- per-sample gradients and ensembles ----------------------------------------------------------

def _model(lib, seed):
    lib.manual_seed(seed)
    return lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.Tanh(), lib.nn.Linear(8, 3))


def _same_weights(m_tg, m_torch, dtype):
    with torch.no_grad():
        for (_, p), (_, q) in zip(m_tg.named_parameters(), m_torch.named_parameters()):
            q.copy_(torch.tensor(p.detach().numpy()))
    return m_tg.to(tg.float64) if dtype == np.float64 else m_tg, \
        m_torch.double() if dtype == np.float64 else m_torch


@pytest.mark.parametrize("dtype", DTYPES)
def test_per_sample_gradients(dtype):
    m_tg, m_torch = _same_weights(_model(tg, 0), _model(torch, 0), dtype)
    x, = _inputs(dtype, (6, 4))
    y = np.array([0, 2, 1, 1, 0, 2])

    def run(lib, model, x, y):
        params = {k: v.detach() for k, v in model.named_parameters()}
        buffers = {k: v.detach() for k, v in model.named_buffers()}

        def loss(p, xi, yi):
            out = lib.func.functional_call(model, (p, buffers), (xi.unsqueeze(0),))
            return lib.nn.functional.cross_entropy(out, yi.unsqueeze(0))
        return lib.func.vmap(lib.func.grad(loss), in_dims=(None, 0, 0))(params, x, y)
    _close(run(tg, m_tg, tg.tensor(x), tg.tensor(y)),
           run(torch, m_torch, torch.tensor(x), torch.tensor(y)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_model_ensembling(dtype):
    pairs = [_same_weights(_model(tg, s), _model(torch, s), dtype) for s in range(3)]
    x, = _inputs(dtype, (5, 4))

    def run(lib, models, x):
        params, buffers = lib.func.stack_module_state(models)
        base = models[0]

        def one(p, b, xs):
            return lib.func.functional_call(base, (p, b), (xs,))
        same_batch = lib.func.vmap(one, in_dims=(0, 0, None))(params, buffers, x)
        minibatches = x.unsqueeze(0).expand(len(models), *x.shape) * 0.5
        own_batch = lib.func.vmap(one)(params, buffers, minibatches)
        return params, same_batch, own_batch
    _close(run(tg, [a for a, _ in pairs], tg.tensor(x)),
           run(torch, [b for _, b in pairs], torch.tensor(x)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ensemble_training_step_backward_through_vmap(dtype):
    """As in PyTorch, a transform of tensors that require grad is on the tape: `backward()` of
    an ensemble's loss reaches the stacked parameters."""
    pairs = [_same_weights(_model(tg, s), _model(torch, s), dtype) for s in range(2)]
    x, = _inputs(dtype, (5, 4))

    def run(lib, models, x):
        params, buffers = lib.func.stack_module_state(models)

        def one(p, b, xs):
            return lib.func.functional_call(models[0], (p, b), (xs,))
        out = lib.func.vmap(one, in_dims=(0, 0, None))(params, buffers, x)
        (out.tanh() ** 2).sum().backward()
        return out, {k: v.grad for k, v in params.items()}
    _close(run(tg, [a for a, _ in pairs], tg.tensor(x)),
           run(torch, [b for _, b in pairs], torch.tensor(x)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", ["grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd",
                                 "hessian", "vmap"])
def test_transforms_of_tensors_requiring_grad_are_on_the_tape(dtype, how):
    def scalar(x, w):
        return ((x * w).sin() * x).sum()
    x, w, v = _inputs(dtype, (3,), (3,), (3,))

    def run(lib, x, w, v):
        x, w = x.requires_grad_(), w.requires_grad_()
        F = lib.func
        if how in ("grad", "jacrev", "jacfwd", "hessian"):
            r = getattr(F, how)(scalar if how != "jacrev" else h, argnums=(0, 1))(x, w)
        elif how == "grad_and_value":
            r = F.grad_and_value(scalar)(x, w)
        elif how == "vjp":
            out, vjp_fn = F.vjp(h, x, w)
            r = (out, vjp_fn(v))
        elif how == "jvp":
            r = F.jvp(h, (x, w), (v, v))
        else:
            r = F.vmap(h, in_dims=(0, None))(x[:, None] * w, w)
        leaves = [t for t in jax.tree.leaves(r, is_leaf=lambda t: hasattr(t, "requires_grad"))]
        total = sum((t.cos() * (k + 1)).sum() for k, t in enumerate(leaves))
        return r, lib.autograd.grad(total, (x, w))
    _both(run, (x, w, v), dtype)


def test_a_closure_over_weights_updated_in_place_between_calls_as_pytorch():
    """The function reads a module's weights from its closure (constants to the transform) and
    they change in place between calls: each call sees the current ones, as in PyTorch."""
    m_tg, m_torch = _same_weights(_model(tg, 0), _model(torch, 0), np.float32)
    x_np, = _inputs(np.float32, (5, 4))
    results = {}
    for lib, model in ((tg, m_tg), (torch, m_torch)):
        x = lib.tensor(x_np, requires_grad=True)
        steps = []
        for _ in range(3):
            with lib.no_grad():
                model[0].weight.mul_(1.5)
            out = lib.func.vmap(model)(x)
            (out ** 2).sum().backward()
            steps.append((out, x.grad.clone()))
            x.grad = None
        results[lib] = steps
    _close(results[tg], results[torch], np.float32)


# -- errors --------------------------------------------------------------------------------------

def _raises_like_torch(run):
    """`run(lib)` raises the same exception type with tapegrad as with torch."""
    with pytest.raises(Exception) as want:
        run(torch)
    with pytest.raises(want.type):
        run(tg)


ERRORS = {
    "grad of a non-scalar output": lambda lib: lib.func.grad(lambda a: a * 2)(lib.ones(3)),
    "grad of a non-tensor output": lambda lib: lib.func.grad(lambda a: 1.0)(lib.ones(3)),
    "has_aux without a pair": lambda lib: lib.func.grad(lambda a: a.sum(), has_aux=True)(
        lib.ones(3)),
    "argnums out of range": lambda lib: lib.func.grad(lambda a: a.sum(), argnums=2)(lib.ones(3)),
    "argnums repeated": lambda lib: lib.func.grad(lambda a, b: a.sum(), argnums=(0, 0))(
        lib.ones(3), lib.ones(3)),
    "argnums empty": lambda lib: lib.func.grad(lambda a: a.sum(), argnums=())(lib.ones(3)),
    "argnums a list": lambda lib: lib.func.grad(lambda a: a.sum(), argnums=[0])(lib.ones(3)),
    "vmap sizes differ": lambda lib: lib.func.vmap(lambda a, b: a + b)(lib.ones(3),
                                                                      lib.ones(2)),
    "vmap in_dims structure": lambda lib: lib.func.vmap(lambda a, b: a + b, in_dims=(0,))(
        lib.ones(3), lib.ones(3)),
    "vmap in_dim out of range": lambda lib: lib.func.vmap(lambda a: a, in_dims=1)(lib.ones(3)),
    "vmap in_dims a list": lambda lib: lib.func.vmap(lambda a: a, in_dims=[0])(lib.ones(3)),
    "vmap in_dim a float": lambda lib: lib.func.vmap(lambda a: a, in_dims=0.5)(lib.ones(3)),
    "vmap over a number": lambda lib: lib.func.vmap(lambda a, b: a + b)(lib.ones(3), 1.0),
    "vmap no inputs": lambda lib: lib.func.vmap(lambda: lib.ones(1))(),
    "vmap no batched input": lambda lib: lib.func.vmap(lambda a: a, in_dims=None)(lib.ones(3)),
    "vmap out_dims structure": lambda lib: lib.func.vmap(lambda a: (a, a), out_dims=(0, 0, 0))(
        lib.ones(3)),
    "vmap returns a number": lambda lib: lib.func.vmap(lambda a: 1.0)(lib.ones(3)),
    "vmap chunk_size 0": lambda lib: lib.func.vmap(lambda a: a, chunk_size=0)(lib.ones(3)),
    "vjp cotangent structure": lambda lib: lib.func.vjp(lambda a: (a, a), lib.ones(3))[1](
        lib.ones(3)),
    "jvp primals not a tuple": lambda lib: lib.func.jvp(lambda a: a, lib.ones(3), lib.ones(3)),
    "jvp structures differ": lambda lib: lib.func.jvp(lambda a, b: a, (lib.ones(3), lib.ones(3)),
                                                      (lib.ones(3),)),
    "jvp tangent shape": lambda lib: lib.func.jvp(lambda a: a, (lib.ones(3),), (lib.ones(2),)),
    "jacrev chunk_size 0": lambda lib: lib.func.jacrev(lambda a: a, chunk_size=0)(lib.ones(3)),
    "jacfwd randomness bad": lambda lib: lib.func.jacfwd(lambda a: a, randomness="x")(
        lib.ones(3)),
    "linearize tangent shape": lambda lib: lib.func.linearize(lambda a: a * 2, lib.ones(3))[1](
        lib.ones(2)),
    "functionalize remove": lambda lib: lib.func.functionalize(lambda a: a, remove="views"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_as_pytorch(case):
    _raises_like_torch(ERRORS[case])


# -- autograd.functional -------------------------------------------------------------------------

AF_FUNCS = {
    "one_in_one_out": (lambda x: (x.sin() * x).cumsum(0), [(4,)]),
    "two_in_two_out": (lambda x, w: ((x * w).tanh(), (x ** 2).sum() * w), [(3,), (3,)]),
    "matrix": (lambda x: x @ x.t(), [(2, 3)]),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(AF_FUNCS))
@pytest.mark.parametrize("vectorize", [False, True])
@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
def test_jacobian(dtype, name, vectorize, strategy):
    fn, shapes = AF_FUNCS[name]
    arrays = _inputs(dtype, *shapes)
    if strategy == "forward-mode" and not vectorize:
        _raises_like_torch(lambda lib: lib.autograd.functional.jacobian(
            fn, _to(lib, arrays), vectorize=False, strategy=strategy))
        return
    for as_tuple in ([True, False] if len(arrays) == 1 else [True]):
        def run(lib, *a):
            inputs = a if as_tuple else a[0]
            return lib.autograd.functional.jacobian(fn, inputs, vectorize=vectorize,
                                                    strategy=strategy)
        _both(run, arrays, dtype)


SCALAR_FUNCS = {
    "one_in": (lambda x: (x.sin() * x ** 2).sum(), [(4,)]),
    "two_in": (lambda x, w: ((x * w).tanh() ** 2).sum() + (x ** 3 * w).sum(), [(3,), (3,)]),
    "matrix": (lambda x: (x @ x.t()).exp().sum(), [(2, 3)]),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(SCALAR_FUNCS))
@pytest.mark.parametrize("vectorize", [False, True])
@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
def test_hessian(dtype, name, vectorize, strategy):
    fn, shapes = SCALAR_FUNCS[name]
    arrays = _inputs(dtype, *shapes)
    if strategy == "forward-mode" and not vectorize:
        _raises_like_torch(lambda lib: lib.autograd.functional.hessian(
            fn, _to(lib, arrays), vectorize=False, outer_jacobian_strategy=strategy))
        return
    for as_tuple in ([True, False] if len(arrays) == 1 else [True]):
        def run(lib, *a):
            inputs = a if as_tuple else a[0]
            return lib.autograd.functional.hessian(fn, inputs, vectorize=vectorize,
                                                   outer_jacobian_strategy=strategy)
        # PyTorch's forward-over-reverse Hessian comes back attached to a graph (requires_grad)
        # without create_graph; tapegrad's is detached, as its documentation says results are
        _both(run, arrays, dtype, grads=strategy == "reverse-mode")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", ["vjp", "jvp"])
def test_vjp_jvp(dtype, how):
    x, w = _inputs(dtype, (3,), (3,))
    fn = AF_FUNCS["two_in_two_out"][0]
    if how == "vjp":
        vs = _inputs(dtype, (3,), (3,), seed=1)
    else:
        vs = _inputs(dtype, (3,), (3,), seed=1)
    _both(lambda lib, x, w, a, b: getattr(lib.autograd.functional, how)(fn, (x, w), (a, b)),
          (x, w) + vs, dtype)
    one = AF_FUNCS["one_in_one_out"][0]
    (v,) = _inputs(dtype, (4,), seed=2)
    (x4,) = _inputs(dtype, (4,), seed=3)
    _both(lambda lib, x, v: getattr(lib.autograd.functional, how)(one, x, v), (x4, v), dtype)
    scalar = SCALAR_FUNCS["one_in"][0]
    if how == "vjp":  # v may be left out for a one-element output
        _both(lambda lib, x: lib.autograd.functional.vjp(scalar, x), (x4,), dtype)
    else:  # v may be left out for a one-element input
        _both(lambda lib, x: lib.autograd.functional.jvp(lambda a: a.exp() * 2, x),
              _inputs(dtype, (1,)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", ["hvp", "vhp"])
def test_hvp_vhp(dtype, how):
    fn = SCALAR_FUNCS["two_in"][0]
    arrays = _inputs(dtype, (3,), (3,)) + _inputs(dtype, (3,), (3,), seed=1)
    _both(lambda lib, x, w, a, b: getattr(lib.autograd.functional, how)(fn, (x, w), (a, b)),
          arrays, dtype)
    one = SCALAR_FUNCS["one_in"][0]
    arrays = _inputs(dtype, (4,), (4,), seed=4)
    _both(lambda lib, x, v: getattr(lib.autograd.functional, how)(one, x, v), arrays, dtype)


@pytest.mark.parametrize("how", ["jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"])
def test_create_graph_results_are_differentiable_as_pytorch(how):
    dtype = np.float64
    x, v = _inputs(dtype, (3,), (3,))
    vector_fn = AF_FUNCS["one_in_one_out"][0]
    scalar_fn = SCALAR_FUNCS["one_in"][0]

    def run(lib, x, v):
        x = x.requires_grad_()
        F = lib.autograd.functional
        if how == "jacobian":
            r = F.jacobian(vector_fn, x, create_graph=True)
        elif how == "hessian":
            r = F.hessian(scalar_fn, x, create_graph=True)
        elif how in ("hvp", "vhp"):
            r = getattr(F, how)(scalar_fn, x, v, create_graph=True)[1]
        else:
            r = getattr(F, how)(vector_fn, x, v, create_graph=True)[1]
        assert r.requires_grad
        (d,) = lib.autograd.grad(r.sin().sum(), x)
        return r, d
    _both(run, (x, v), dtype)


def test_no_create_graph_results_are_detached_as_pytorch():
    x = tg.ones(3, requires_grad=True)
    for r in (tg.autograd.functional.jacobian(lambda a: a * 2, x),
              tg.autograd.functional.hessian(lambda a: (a ** 3).sum(), x),
              tg.autograd.functional.vjp(lambda a: a * 2, x, tg.ones(3))[1],
              tg.autograd.functional.jvp(lambda a: a * 2, x, tg.ones(3))[1],
              tg.autograd.functional.hvp(lambda a: (a ** 3).sum(), x, tg.ones(3))[1]):
        assert not r.requires_grad


AF_ERRORS = {
    "vjp v None for many elements": lambda lib: lib.autograd.functional.vjp(
        lambda a: a * 2, lib.ones(3)),
    "jvp v None for many elements": lambda lib: lib.autograd.functional.jvp(
        lambda a: a * 2, lib.ones(3)),
    "hessian of a vector": lambda lib: lib.autograd.functional.hessian(
        lambda a: a * 2, lib.ones(3)),
    "jacobian strategy unknown": lambda lib: lib.autograd.functional.jacobian(
        lambda a: a, lib.ones(3), strategy="sideways"),
    "jacobian strict and vectorize": lambda lib: lib.autograd.functional.jacobian(
        lambda a: a, lib.ones(3), strict=True, vectorize=True),
    "jacobian forward-mode and create_graph": lambda lib: lib.autograd.functional.jacobian(
        lambda a: a, lib.ones(3), create_graph=True, vectorize=True, strategy="forward-mode"),
    "inputs not tensors": lambda lib: lib.autograd.functional.jacobian(lambda a: a, [1.0]),
    "vjp v shape": lambda lib: lib.autograd.functional.vjp(lambda a: a * 2, lib.ones(3),
                                                           lib.ones(2)),
    "hvp v shape": lambda lib: lib.autograd.functional.hvp(lambda a: (a ** 2).sum(), lib.ones(3),
                                                           lib.ones(2)),
}


@pytest.mark.parametrize("case", list(AF_ERRORS))
def test_autograd_functional_errors_as_pytorch(case):
    _raises_like_torch(AF_ERRORS[case])
