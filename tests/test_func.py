"""tapegrad.func.functional_call: a module as a pure function, checked against jax.grad."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tapegrad as tg

F = tg.nn.functional


def _mlp():
    tg.manual_seed(0)
    return tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.ReLU(), tg.nn.Linear(8, 3))


def _data(n=5):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 3, n)


def _params(model):
    return {k: v.detach().jax() for k, v in model.named_parameters()}


def _loss_fn(model):
    def loss(params, x, y):
        logits = tg.func.functional_call(model, params, (tg.as_tensor(x),))
        return F.cross_entropy(logits, tg.as_tensor(y)).jax()
    return loss


def _jnp_loss(p, x, y):  # the same program written in jnp
    h = jax.nn.relu(x @ p["0.weight"].T + p["0.bias"])
    logits = h @ p["2.weight"].T + p["2.bias"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def test_jax_grad_of_a_module_equals_jax_grad_of_the_jnp_program():
    model, (x, y) = _mlp(), _data()
    own = _params(model)
    params = {k: v * 1.5 for k, v in own.items()}  # not the module's own values
    loss = _loss_fn(model)
    got_value, got = jax.jit(jax.value_and_grad(loss))(params, jnp.asarray(x), jnp.asarray(y))
    want_value, want = jax.value_and_grad(_jnp_loss)(params, jnp.asarray(x), jnp.asarray(y))
    np.testing.assert_allclose(got_value, want_value, rtol=1e-6)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)
    for k, p in model.named_parameters():  # the module keeps its own parameters
        np.testing.assert_array_equal(p.detach().jax(), own[k])


def test_vmap_over_an_ensemble_of_parameters():
    model, (x, y) = _mlp(), _data()
    base = _params(model)
    stacked = {k: jnp.stack([v, 0.5 * v, -v]) for k, v in base.items()}
    got = jax.vmap(_loss_fn(model), in_axes=(0, None, None))(stacked, x, y)
    want = [_jnp_loss({k: v[i] for k, v in stacked.items()}, x, y) for i in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_tensor_values_receive_the_gradients_and_the_module_is_restored():
    model, (x, y) = _mlp(), _data()
    own = dict(model.named_parameters())
    given = {k: v.detach().clone().requires_grad_() for k, v in own.items()}
    F.cross_entropy(tg.func.functional_call(model, given, tg.tensor(x)), tg.tensor(y)).backward()
    want = jax.grad(_jnp_loss)(_params(model), jnp.asarray(x), jnp.asarray(y))
    for k, t in given.items():
        np.testing.assert_allclose(t.grad.jax(), want[k], rtol=1e-5, atol=1e-6)
        assert own[k].grad is None
    assert dict(model.named_parameters()) == own


def test_the_module_is_restored_when_forward_raises():
    model = _mlp()
    own = dict(model.named_parameters())
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        tg.func.functional_call(model, {"0.weight": tg.zeros(8, 4)}, (tg.ones(2, 5),))
    assert dict(model.named_parameters()) == own


def test_buffer_updates_land_in_the_given_tensors():
    bn = tg.nn.BatchNorm1d(3)
    mean = tg.zeros(3)
    x = tg.tensor([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])
    tg.func.functional_call(bn, {"running_mean": mean}, (x,))
    np.testing.assert_allclose(mean.numpy(), [0.2, 0.3, 0.4], rtol=1e-6)  # 0.1 * batch mean
    np.testing.assert_array_equal(bn.running_mean.numpy(), [0.0, 0.0, 0.0])


def test_traced_updates_of_the_modules_own_buffers_are_refused():
    bn = tg.nn.BatchNorm1d(3)
    params = _params(bn)

    def f(params, x):
        return tg.func.functional_call(bn, params, (tg.as_tensor(x),)).sum().jax()
    with pytest.raises(RuntimeError, match=r"updated the module's own \['running_mean', "
                                           r"'running_var', 'num_batches_tracked'\] in place"):
        jax.jit(f)(params, jnp.ones((2, 3)))
    np.testing.assert_array_equal(bn.running_mean.numpy(), [0.0, 0.0, 0.0])  # untouched
    bn.eval()
    assert float(jax.jit(f)(params, jnp.ones((2, 3)))) == pytest.approx(6.0, rel=1e-4)


def test_state_left_pending_by_eager_calls_stays_concrete_under_jit():
    model = tg.nn.Sequential(tg.nn.Linear(3, 3), tg.nn.BatchNorm1d(3))
    x = tg.randn(4, 3)
    model(x)  # training mode: running statistics updated lazily, still pending
    want = ((model[0](x)).mean(0) * 0.1).detach().numpy()
    model.eval()
    params = _params(model)
    jax.jit(lambda p, v: tg.func.functional_call(model, p, (tg.as_tensor(v),)).sum().jax())(
        params, jnp.ones((2, 3)))
    value = model[1].running_mean._cell.node.value
    assert not isinstance(value, jax.core.Tracer)
    np.testing.assert_allclose(np.asarray(value), want, rtol=1e-5, atol=1e-7)


def test_traced_state_is_restored_when_forward_raises():
    model = tg.nn.Sequential(tg.nn.BatchNorm1d(3), tg.nn.Linear(5, 2))

    def f(params, v):
        return tg.func.functional_call(model, params, (tg.as_tensor(v),)).sum().jax()
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        jax.jit(f)(_params(model), jnp.ones((2, 3)))
    assert model[0].running_mean.tolist() == [0.0, 0.0, 0.0]


def test_random_draws_under_a_transformation_are_refused():
    model = tg.nn.Sequential(tg.nn.Linear(4, 4), tg.nn.Dropout(0.5))

    def f(params, x):
        return tg.func.functional_call(model, params, (tg.as_tensor(x),)).sum().jax()
    with pytest.raises(RuntimeError, match="drew random numbers"):
        jax.jit(f)(_params(model), jnp.ones((2, 4)))
    tg.func.functional_call(model, _params(model), (tg.ones(2, 4),))  # eager: draws are fine

    def pending(params, x):  # inputs built from tracers, still pending when the call starts
        p = {k: tg.as_tensor(v) * 1.0 for k, v in params.items()}
        return tg.func.functional_call(model, p, (tg.as_tensor(x) * 1.0,)).sum().jax()
    with pytest.raises(RuntimeError, match="drew random numbers"):
        jax.jit(pending)(_params(model), jnp.ones((2, 4)))
    model.eval()
    jax.jit(f)(_params(model), jnp.ones((2, 4)))


def test_inside_tapegrad_compile_draws_and_buffer_updates_work():
    tg.manual_seed(0)
    model = tg.nn.Sequential(tg.nn.Linear(4, 4), tg.nn.BatchNorm1d(4), tg.nn.Dropout(0.5))
    given = {k: v.detach().clone() for k, v in model.named_parameters()}
    step = tg.compile(lambda x: tg.func.functional_call(model, given, (x,)).sum())
    x = tg.randn(3, 4)
    outs = [step(x).item() for _ in range(5)]
    assert step.traces == 1
    assert len(set(outs)) == 5  # fresh dropout masks on every call
    assert model[1].num_batches_tracked.item() == 5  # the module's own buffers were updated


class _Tied(tg.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = tg.nn.Linear(2, 2)
        self.tied = self.lin.weight

    def forward(self, x):
        return self.lin(x) + x @ self.tied.T


def test_tied_weights():
    m, x = _Tied(), tg.ones(1, 2)
    bias = m.lin.bias.detach().numpy()
    out = tg.func.functional_call(m, {"tied": tg.zeros(2, 2)}, (x,))
    np.testing.assert_allclose(out.detach().numpy(), bias[None], rtol=1e-6)
    untied = tg.func.functional_call(m, {"tied": tg.zeros(2, 2)}, (x,), tie_weights=False)
    own = m.lin(x).detach().numpy()
    np.testing.assert_allclose(untied.detach().numpy(), own, rtol=1e-6)
    with pytest.raises(ValueError, match=r"multiple values for keys \['lin.weight', 'tied'\], "
                                         "which are tied"):
        tg.func.functional_call(m, {"lin.weight": tg.zeros(2, 2), "tied": tg.ones(2, 2)}, (x,))


def test_one_array_under_tied_names_and_none_values():
    m, x = _Tied(), tg.ones(1, 2)
    w = jnp.zeros((2, 2))
    out = tg.func.functional_call(m, {"lin.weight": w, "tied": w}, (x,))
    np.testing.assert_allclose(out.detach().numpy(), m.lin.bias.detach().numpy()[None], rtol=1e-6)
    lin = tg.nn.Linear(2, 3)
    out = tg.func.functional_call(lin, {"bias": None}, (x,))
    np.testing.assert_allclose(out.detach().numpy(), (x @ lin.weight.T).detach().numpy())


def test_reassigned_values_are_written_back_and_plain_attributes_refused():
    class Counter(tg.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("count", tg.zeros(()))
            self.scale = 2.0

        def forward(self, x):
            self.count = self.count + 1
            return x * self.scale
    m = Counter()
    given = {"count": tg.tensor(5.0)}
    tg.func.functional_call(m, given, (tg.ones(1),))
    assert given["count"].item() == 6.0 and m.count.item() == 0.0
    with pytest.raises(TypeError, match="'scale' names an attribute of the module that is not a "
                                        "parameter or buffer"):
        tg.func.functional_call(m, {"scale": tg.tensor(3.0)}, (tg.ones(1),))


def test_strict_and_repeated_keys():
    m = _mlp()
    with pytest.raises(RuntimeError, match=r"Error\(s\) in reparametrizing for Sequential:\n\t"
                                           r"Unexpected key\(s\): 'zzz'.\n\tMissing key\(s\): "
                                           r"'0.bias', '2.bias', '2.weight'."):
        tg.func.functional_call(m, {"0.weight": tg.zeros(8, 4), "zzz": tg.ones(1)},
                                (tg.ones(1, 4),), strict=True)
    with pytest.raises(ValueError, match=r"\['0.bias'\] appeared in multiple dictionaries"):
        tg.func.functional_call(m, ({"0.bias": tg.zeros(8)}, {"0.bias": tg.ones(8)}),
                                (tg.ones(1, 4),))
    out = tg.func.functional_call(m, ({"0.bias": tg.zeros(8)}, {"2.bias": tg.ones(3)}),
                                  (tg.ones(1, 4),))
    assert out.shape == (1, 3)


def test_unknown_names_are_attributes_for_the_call_only():
    class Scaled(tg.nn.Module):
        def forward(self, x):
            return x * getattr(self, "scale", 1.0)
    m = Scaled()
    assert tg.func.functional_call(m, {"scale": tg.tensor(3.0)}, (tg.ones(2),)).tolist() == [3, 3]
    assert not hasattr(m, "scale")


def test_stateless_alias_warns():
    m = _mlp()
    with pytest.warns(FutureWarning, match="use tapegrad.func.functional_call"):
        out = tg.nn.utils.stateless.functional_call(m, {}, (tg.ones(1, 4),))
    np.testing.assert_array_equal(out.detach().numpy(), m(tg.ones(1, 4)).detach().numpy())


def test_matches_pytorch_functional_call():
    torch = pytest.importorskip("torch")
    model, (x, _) = _mlp(), _data()
    params = {k: np.asarray(v) * 0.5 for k, v in _params(model).items()}
    tmodel = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    want = torch.func.functional_call(tmodel, {k: torch.tensor(v) for k, v in params.items()},
                                      (torch.tensor(x),))
    got = tg.func.functional_call(model, {k: tg.tensor(v) for k, v in params.items()},
                                  (tg.tensor(x),))
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_a_constant_first_computed_inside_a_jax_trace_stays_concrete():
    """A tensor made by a factory is recorded; computing it for the first time inside a JAX
    transformation must not leave a tracer in it."""
    scale = tg.arange(3.0)

    @jax.jit
    def f(x):
        return (tg.as_tensor(x) * scale).sum().jax()
    assert float(f(jnp.ones(3))) == 3.0
    np.testing.assert_array_equal((scale + 1).numpy(), [1.0, 2.0, 3.0])
    zeros = tg.zeros(2)
    assert float(jax.jit(lambda x: zeros.jax().sum() + x)(1.0)) == 1.0
    np.testing.assert_array_equal(zeros.numpy(), [0.0, 0.0])


def _loss_of_tensors(model):
    def loss(params, x, y):  # one sample: x (4,), y ()
        logits = tg.func.functional_call(model, params, (x.unsqueeze(0),))
        return F.cross_entropy(logits, y.unsqueeze(0))
    return loss


def test_per_sample_gradients_of_an_mlp():
    model, (x, y) = _mlp(), _data(6)
    params = {k: v.detach() for k, v in model.named_parameters()}
    got = tg.func.vmap(tg.func.grad(_loss_of_tensors(model)), in_dims=(None, 0, 0))(
        params, tg.tensor(x), tg.tensor(y))
    one = lambda p, xi, yi: _jnp_loss(p, xi[None], yi[None])  # noqa: E731
    want = jax.vmap(jax.grad(one), in_axes=(None, 0, 0))(_params(model), x, y)
    for i in range(len(x)):  # a Python loop of tapegrad backward calls
        model.zero_grad()
        F.cross_entropy(model(tg.tensor(x[i:i + 1])), tg.tensor(y[i:i + 1])).backward()
        for k, p in model.named_parameters():
            np.testing.assert_allclose(got[k][i].numpy(), p.grad.numpy(), rtol=1e-5, atol=1e-6)
    for k in want:
        np.testing.assert_allclose(got[k].numpy(), want[k], rtol=1e-5, atol=1e-6)
    jitted = jax.jit(lambda p, xs, ys: {k: v.jax() for k, v in tg.func.vmap(
        tg.func.grad(_loss_of_tensors(model)), in_dims=(None, 0, 0))(
            {k: tg.as_tensor(v) for k, v in p.items()}, tg.as_tensor(xs), tg.as_tensor(ys)).items()})
    for k, v in jitted(_params(model), x, y).items():
        np.testing.assert_allclose(v, want[k], rtol=1e-5, atol=1e-6)


def test_ensembling_with_stack_module_state():
    tg.manual_seed(1)
    models = [tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.BatchNorm1d(8), tg.nn.ReLU(),
                               tg.nn.Linear(8, 3)).eval() for _ in range(3)]
    for i, m in enumerate(models):  # distinct running statistics too
        m[1].running_mean.fill_(0.1 * i)
    params, buffers = tg.func.stack_module_state(models)
    assert params["0.weight"].shape == (3, 8, 4) and params["0.weight"].requires_grad
    assert params["0.weight"].is_leaf and not buffers["1.running_mean"].requires_grad
    x = tg.tensor(_data(5)[0])

    def run(p, b, xs):
        return tg.func.functional_call(models[0], (p, b), (xs,))

    got = tg.func.vmap(run, in_dims=(0, 0, None))(params, buffers, x)
    for i, m in enumerate(models):
        np.testing.assert_allclose(got[i].detach().numpy(), m(x).detach().numpy(), rtol=1e-5,
                                   atol=1e-6)
    with pytest.raises(RuntimeError, match="same training/eval mode"):
        tg.func.stack_module_state([models[0], models[1].train()])
    with pytest.raises(RuntimeError, match="Expected at least one model, got 0"):
        tg.func.stack_module_state([])


def test_dropout_under_vmap_follows_its_randomness():
    model = tg.nn.Dropout(0.5)  # training mode
    x = tg.ones(4, 200)
    run = lambda xs: tg.func.functional_call(model, {}, (xs,))  # noqa: E731
    with pytest.raises(RuntimeError, match="randomness error mode"):
        tg.func.vmap(run)(x)
    for randomness, equal_rows in (("same", True), ("different", False)):
        out = tg.func.vmap(run, randomness=randomness)(x).numpy()
        assert set(np.unique(out)) == {0.0, 2.0}
        assert all(np.array_equal(out[0], r) for r in out[1:]) == equal_rows
