"""`nn.utils.parametrize`, `nn.utils.parametrizations` (weight_norm, spectral_norm) and the older
hooks API (`nn.utils.weight_norm`, `nn.utils.spectral_norm`) against PyTorch: values and
gradients through SGD steps (float64, PyTorch's weights and power-iteration buffers copied in),
state_dict keys and loads both ways, removal, errors; a compiled weight-normed step against eager."""
import copy
import io
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.utils.parametrize as P
from helpers import assert_close

torch = pytest.importorskip("torch")
TP = torch.nn.utils.parametrize

LAYERS = {
    "linear": (lambda lib: lib.nn.Linear(4, 3), (5, 4)),
    "conv2d": (lambda lib: lib.nn.Conv2d(2, 3, 3), (2, 2, 5, 5)),
}


def to_tg(state):
    return {k: tg.tensor(v.detach().numpy()) for k, v in state.items()}


def to_torch(state):
    return {k: torch.tensor(v.detach().numpy()) for k, v in state.items()}


def pair(layer: str):
    """The same float64 layer in both libraries (PyTorch's initial weights copied)."""
    make, shape = LAYERS[layer]
    torch.manual_seed(0)
    tm = make(torch).double()
    m = make(tg).double()
    m.load_state_dict(to_tg(tm.state_dict()))
    x = np.random.default_rng(0).normal(size=shape)
    return m, tm, x


def assert_same_params(m, tm):
    named = dict(tm.named_parameters())
    assert [n for n, _ in m.named_parameters()] == list(named)
    for name, p in m.named_parameters():
        assert_close(p, named[name].detach().numpy())


def sgd_steps(m, tm, x, steps=3):
    """SGD with momentum in both libraries; outputs, losses and every gradient compared."""
    opt = tg.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    named = dict(tm.named_parameters())
    for _ in range(steps):
        out, tout = m(tg.tensor(x)), tm(torch.tensor(x))
        assert_close(out, tout.detach().numpy())
        loss, tloss = (out ** 2).sum(), (tout ** 2).sum()
        opt.zero_grad()
        topt.zero_grad()
        loss.backward()
        tloss.backward()
        for name, p in m.named_parameters():
            assert_close(p.grad, named[name].grad.numpy())
        opt.step()
        topt.step()
    assert_same_params(m, tm)


@pytest.mark.parametrize("layer", sorted(LAYERS))
@pytest.mark.parametrize("dim", [0, 1, None])
def test_parametrized_weight_norm_sgd_matches_pytorch(layer, dim):
    m, tm, x = pair(layer)
    tg.nn.utils.parametrizations.weight_norm(m, dim=dim)
    torch.nn.utils.parametrizations.weight_norm(tm, dim=dim)
    assert type(m).__name__ == type(tm).__name__ == f"Parametrized{type(tm).__bases__[0].__name__}"
    assert_same_params(m, tm)
    assert_close(m.weight, tm.weight.detach().numpy())
    sgd_steps(m, tm, x)
    assert_close(m.weight, tm.weight.detach().numpy())


@pytest.mark.parametrize("layer", sorted(LAYERS))
@pytest.mark.parametrize("dim", [0, None])
def test_hooks_weight_norm_sgd_matches_pytorch(layer, dim):
    m, tm, x = pair(layer)
    message = "`torch.nn.utils.weight_norm` is deprecated in favor of"
    with pytest.warns(FutureWarning, match=message):
        tg.nn.utils.weight_norm(m, dim=dim)
    with pytest.warns(FutureWarning, match=message):
        torch.nn.utils.weight_norm(tm, dim=dim)
    assert list(m.state_dict()) == list(tm.state_dict())
    sgd_steps(m, tm, x)
    tg.nn.utils.remove_weight_norm(m)
    torch.nn.utils.remove_weight_norm(tm)
    assert_same_params(m, tm)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found in"):
        tg.nn.utils.remove_weight_norm(m)


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2])
def test_weight_norm_function_matches_pytorch_and_jax(dim):
    rng = np.random.default_rng(1)
    v = rng.normal(size=(3, 4, 2))
    tv = torch.tensor(v, requires_grad=True)
    g_t = torch.norm_except_dim(tv, 2, dim).detach() * 1.5
    tg_g = torch.tensor(g_t.numpy(), requires_grad=True)
    tout = torch._weight_norm(tv, tg_g, dim)
    tout.backward(torch.ones_like(tout))
    x, g = tg.tensor(v, requires_grad=True), tg.tensor(g_t.numpy(), requires_grad=True)
    assert_close(tg.norm_except_dim(x, 2, dim), torch.norm_except_dim(tv, 2, dim).detach().numpy())
    out = tg._weight_norm(x, g, dim)
    out.sum().backward()
    assert_close(out, tout.detach().numpy())
    assert_close(x.grad, tv.grad.numpy())
    assert_close(g.grad, tg_g.grad.numpy())

    def reference(v, g):  # an independent jnp program: PyTorch's dim -1 is every dimension
        axes = None if dim == -1 else tuple(a for a in range(3) if a != dim % 3)
        return v * g / jnp.sqrt(jnp.sum(v * v, axis=axes, keepdims=dim != -1))
    with jax.enable_x64(True):
        ref, (dv, dg) = jax.value_and_grad(lambda v, g: reference(v, g).sum(), (0, 1))(v, g_t.numpy())
    np.testing.assert_allclose(out.detach().numpy().sum(), ref, rtol=1e-12)
    assert_close(x.grad, dv)
    assert_close(g.grad, dg)


def copy_spectral_buffers(m, tm):
    """PyTorch draws its power iteration's start from its own generator: take its buffers."""
    m.load_state_dict(to_tg(tm.state_dict()))


def spectral_state(m):
    return {k: v.detach().numpy() for k, v in m.state_dict().items()}


def assert_same_state(m, tm):
    state = spectral_state(m)
    assert list(state) == list(tm.state_dict())
    for k, v in tm.state_dict().items():
        assert_close(state[k], v.numpy())


@pytest.mark.parametrize("layer", sorted(LAYERS))
@pytest.mark.parametrize("api", ["parametrizations", "hooks"])
def test_spectral_norm_training_and_eval_match_pytorch(layer, api):
    m, tm, x = pair(layer)
    if api == "parametrizations":
        tg.nn.utils.parametrizations.spectral_norm(m, n_power_iterations=2)
        torch.nn.utils.parametrizations.spectral_norm(tm, n_power_iterations=2)
    else:
        tg.nn.utils.spectral_norm(m, n_power_iterations=2)
        torch.nn.utils.spectral_norm(tm, n_power_iterations=2)
    copy_spectral_buffers(m, tm)
    sgd_steps(m, tm, x)  # training mode: u and v move at every forward
    twice, ttwice = m(tg.tensor(x)).sum() + m(tg.tensor(x)).sum(), \
        tm(torch.tensor(x)).sum() + tm(torch.tensor(x)).sum()
    twice.backward()  # the first forward's graph survives the second's update of u and v
    ttwice.backward()
    named = dict(tm.named_parameters())
    for name, p in m.named_parameters():
        assert_close(p.grad, named[name].grad.numpy())
    assert_same_state(m, tm)
    m.eval()
    tm.eval()
    before = spectral_state(m)
    for _ in range(2):
        assert_close(m(tg.tensor(x)), tm(torch.tensor(x)).detach().numpy())
    for k, v in spectral_state(m).items():  # eval mode: no update
        np.testing.assert_array_equal(v, before[k])
    assert_same_state(m, tm)
    assert_close(m.weight, tm.weight.detach().numpy())
    if api == "parametrizations":
        u = m.parametrizations.weight[0]._u
        assert not u.requires_grad and u.grad is None
        P.remove_parametrizations(m, "weight")
        TP.remove_parametrizations(tm, "weight")
    else:
        assert not m.weight_u.requires_grad and m.weight_u.grad is None
        tg.nn.utils.remove_spectral_norm(m)
        torch.nn.utils.remove_spectral_norm(tm)
        assert not m._state_dict_hooks and not m._load_state_dict_pre_hooks
    assert type(m) is type(m).__mro__[0] and type(m).__name__ == type(tm).__name__
    assert_same_params(m, tm)
    assert list(m.state_dict()) == list(tm.state_dict())


def test_spectral_norm_of_a_transposed_convolution_normalizes_dim_1():
    torch.manual_seed(0)
    tm = torch.nn.ConvTranspose2d(2, 3, 3).double()
    m = tg.nn.ConvTranspose2d(2, 3, 3).double()
    m.load_state_dict(to_tg(tm.state_dict()))
    tg.nn.utils.parametrizations.spectral_norm(m)
    torch.nn.utils.parametrizations.spectral_norm(tm)
    assert m.parametrizations.weight[0].dim == tm.parametrizations.weight[0].dim == 1
    assert m.parametrizations.weight[0]._u.shape == tm.parametrizations.weight[0]._u.shape
    copy_spectral_buffers(m, tm)
    x = np.random.default_rng(2).normal(size=(1, 2, 4, 4))
    assert_close(m(tg.tensor(x)), tm(torch.tensor(x)).detach().numpy())


@pytest.mark.parametrize("kind", ["weight_norm", "spectral_norm", "old_weight_norm", "old_spectral_norm"])
def test_state_dicts_load_both_ways(kind):
    def apply(lib, module):
        utils = lib.nn.utils
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            {"weight_norm": utils.parametrizations.weight_norm,
             "spectral_norm": utils.parametrizations.spectral_norm,
             "old_weight_norm": utils.weight_norm,
             "old_spectral_norm": utils.spectral_norm}[kind](module)
        return module

    torch.manual_seed(1)
    tm = apply(torch, torch.nn.Linear(4, 3).double())
    m = apply(tg, tg.nn.Linear(4, 3).double())
    assert list(m.state_dict()) == list(tm.state_dict())
    assert repr(m) == repr(tm)
    m.load_state_dict(to_tg(tm.state_dict()))  # PyTorch -> tapegrad
    x = np.random.default_rng(3).normal(size=(2, 4))
    m.eval()
    tm.eval()
    assert_close(m(tg.tensor(x)), tm(torch.tensor(x)).detach().numpy())
    torch.manual_seed(2)
    tm2 = apply(torch, torch.nn.Linear(4, 3).double()).eval()
    tm2.load_state_dict(to_torch(m.state_dict()))  # tapegrad -> PyTorch
    np.testing.assert_allclose(tm2(torch.tensor(x)).detach().numpy(),
                               tm(torch.tensor(x)).detach().numpy(), rtol=1e-12)


def test_parametrized_weight_norm_loads_the_hooks_api_state_dict():
    torch.manual_seed(3)
    old = torch.nn.Linear(4, 3).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.nn.utils.weight_norm(old)
    state = old.state_dict()
    assert "weight_g" in state
    m = tg.nn.utils.parametrizations.weight_norm(tg.nn.Linear(4, 3).double())
    tm = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(4, 3).double())
    given = to_tg(state)
    m.load_state_dict(given)
    tm.load_state_dict(state)
    assert "weight_g" in given  # the hook rewrote a copy, not the caller's dict
    assert_close(m.weight, tm.weight.detach().numpy())
    assert_close(m.parametrizations.weight.original0, state["weight_g"].numpy())


class Symmetric(tg.nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).mT

    def right_inverse(self, A):
        return A.triu()


class TSymmetric(torch.nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).mT

    def right_inverse(self, A):
        return A.triu()


class Halves(tg.nn.Module):  # a parametrization of two tensors (original0, original1)
    def forward(self, a, b):
        return a * 2 + b

    def right_inverse(self, X):
        return X / 4, X / 2


class THalves(torch.nn.Module):
    def forward(self, a, b):
        return a * 2 + b

    def right_inverse(self, X):
        return X / 4, X / 2


class Scale(tg.nn.Module):  # no right_inverse
    def forward(self, X):
        return X * 3


class TScale(torch.nn.Module):
    def forward(self, X):
        return X * 3


def square_pair():
    torch.manual_seed(4)
    tm = torch.nn.Linear(3, 3).double()
    m = tg.nn.Linear(3, 3).double()
    m.load_state_dict(to_tg(tm.state_dict()))
    return m, tm


def test_custom_parametrizations_right_inverse_assignment_and_removal():
    m, tm = square_pair()
    weight = m.weight
    P.register_parametrization(m, "weight", Symmetric())
    TP.register_parametrization(tm, "weight", TSymmetric())
    assert m.parametrizations.weight.original is weight  # kept: an optimizer holding it works
    assert P.is_parametrized(m) and P.is_parametrized(m, "weight") and not P.is_parametrized(m, "bias")
    assert P.type_before_parametrizations(m) is tg.nn.Linear
    assert_close(m.weight, tm.weight.detach().numpy())
    A = np.random.default_rng(5).normal(size=(3, 3))
    m.weight = tg.tensor(A + A.T)
    tm.weight = torch.tensor(A + A.T)
    assert_close(m.parametrizations.weight.original, tm.parametrizations.weight.original.detach().numpy())
    P.register_parametrization(m, "weight", Scale())  # chained after Symmetric
    TP.register_parametrization(tm, "weight", TScale())
    assert_close(m.weight, tm.weight.detach().numpy())
    sgd_steps(m, tm, np.random.default_rng(6).normal(size=(2, 3)), steps=2)
    with pytest.raises(RuntimeError, match="parametrization Scale does not implement right_inverse"):
        m.weight = tg.tensor(A)
    with pytest.raises(RuntimeError, match="parametrization TScale does not implement right_inverse"):
        tm.weight = torch.tensor(A)
    P.remove_parametrizations(m, "weight", leave_parametrized=False)
    TP.remove_parametrizations(tm, "weight", leave_parametrized=False)
    assert type(m) is tg.nn.Linear and not hasattr(m, "parametrizations")
    assert m.weight is weight
    assert_same_params(m, tm)


def test_parametrization_of_several_tensors():
    m, tm = square_pair()
    P.register_parametrization(m, "weight", Halves())
    TP.register_parametrization(tm, "weight", THalves())
    assert list(m.state_dict()) == list(tm.state_dict()) == [
        "bias", "parametrizations.weight.original0", "parametrizations.weight.original1"]
    assert_close(m.weight, tm.weight.detach().numpy())
    sgd_steps(m, tm, np.random.default_rng(7).normal(size=(2, 3)), steps=2)
    for lib, mod in ((P, m), (TP, tm)):
        with pytest.raises(ValueError, match="Cannot leave unparametrized"):
            lib.remove_parametrizations(mod, "weight", leave_parametrized=False)
    P.remove_parametrizations(m, "weight")
    TP.remove_parametrizations(tm, "weight")
    assert isinstance(m.weight, tg.nn.Parameter)
    assert_same_params(m, tm)


def test_cached_computes_once_and_uncached_recomputes():
    m, _ = square_pair()
    P.register_parametrization(m, "weight", Scale())
    assert m.weight is not m.weight
    with P.cached():
        w = m.weight
        with P.cached():
            assert m.weight is w
        assert m.weight is w
    assert m.weight is not w
    assert_close(w, m.weight.detach().numpy())


def test_a_buffer_can_be_parametrized_and_deepcopied():
    tm = torch.nn.BatchNorm1d(3).double()
    m = tg.nn.BatchNorm1d(3).double()
    P.register_parametrization(m, "running_var", Scale())
    TP.register_parametrization(tm, "running_var", TScale())
    assert list(m.state_dict()) == list(tm.state_dict())
    assert_close(m.running_var, tm.running_var.numpy())
    c = copy.deepcopy(m)
    assert_close(c.running_var, m.running_var.detach().numpy())
    assert c.parametrizations.running_var.original is not m.parametrizations.running_var.original


def raise_both(call, tcall):
    """Both libraries raise the same error type; returns the two messages."""
    with pytest.raises(Exception) as theirs:
        tcall()
    with pytest.raises(theirs.type) as ours:
        call()
    return str(ours.value), str(theirs.value)


def test_errors_match_pytorch():
    class Bad(tg.nn.Module):
        def forward(self, X):
            return X[:2]

    class TBad(torch.nn.Module):
        def forward(self, X):
            return X[:2]

    class Cast(tg.nn.Module):
        def forward(self, X):
            return X.float()

    class TCast(torch.nn.Module):
        def forward(self, X):
            return X.float()

    m, tm = square_pair()
    ours, theirs = raise_both(lambda: P.register_parametrization(m, "weight", Bad()),
                              lambda: TP.register_parametrization(tm, "weight", TBad()))
    assert "may not change the shape of the tensor, unless `unsafe` flag is enabled" in ours
    assert ours.split("\n")[0] == theirs.split("\n")[0]
    assert "parametrized shape: tapegrad.Size([2, 3])" in ours
    ours, theirs = raise_both(lambda: P.register_parametrization(m, "weight", Cast()),
                              lambda: TP.register_parametrization(tm, "weight", TCast()))
    assert ours.split("\n")[0] == theirs.split("\n")[0] and "may not change the dtype" in ours
    assert type(m) is tg.nn.Linear  # a failed registration leaves the module alone
    P.register_parametrization(m, "weight", Bad(), unsafe=True)
    TP.register_parametrization(tm, "weight", TBad(), unsafe=True)
    assert m.weight.shape == tm.weight.shape == (2, 3)
    ours, theirs = raise_both(lambda: P.register_parametrization(m, "bias", Cast()),
                              lambda: TP.register_parametrization(tm, "bias", TCast()))
    ours, theirs = raise_both(lambda: P.remove_parametrizations(m, "bias"),
                              lambda: TP.remove_parametrizations(tm, "bias"))
    assert ours.endswith("does not have a parametrization on bias")
    ours, theirs = raise_both(lambda: P.register_parametrization(m, "nope", Scale()),
                              lambda: TP.register_parametrization(tm, "nope", TScale()))
    assert ours.endswith("does not have a parameter, a buffer, or a parametrized element with "
                         "name 'nope'")
    m2, tm2 = square_pair()
    P.register_parametrization(m2, "weight", Scale())
    TP.register_parametrization(tm2, "weight", TScale())
    ours, theirs = raise_both(lambda: P.register_parametrization(m2, "weight", Bad()),
                              lambda: TP.register_parametrization(tm2, "weight", TBad()))
    assert ours.split("\n")[0] == theirs.split("\n")[0]
    ours, theirs = raise_both(lambda: tg.save(m2, io.BytesIO()), lambda: torch.save(tm2, io.BytesIO()))
    assert ours == theirs and ours.startswith("Serialization of parametrized modules")


def test_norm_errors_match_pytorch():
    def both(call):
        return raise_both(lambda: call(tg, tg.nn.Linear(4, 3)), lambda: call(torch, torch.nn.Linear(4, 3)))

    for call in (lambda lib, m: lib.nn.utils.parametrizations.spectral_norm(m, n_power_iterations=0),
                 lambda lib, m: lib.nn.utils.spectral_norm(m, n_power_iterations=0),
                 lambda lib, m: lib.nn.utils.parametrizations.spectral_norm(m, dim=2),
                 lambda lib, m: lib.nn.utils.spectral_norm(lib.nn.utils.spectral_norm(m)),
                 lambda lib, m: lib.nn.utils.remove_spectral_norm(m)):
        ours, theirs = both(call)
        assert ours.split(" in ")[0] == theirs.split(" in ")[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ours, theirs = both(lambda lib, m: lib.nn.utils.weight_norm(lib.nn.utils.weight_norm(m)))
    assert ours == theirs == "Cannot register two weight_norm hooks on the same parameter weight"
    ours, theirs = both(lambda lib, m: lib.nn.utils.parametrizations.spectral_norm(m, "nope"))
    assert ours.endswith("has no parameter or buffer with name 'nope'")
    with pytest.raises(NotImplementedError, match="orthogonal is not supported"):
        tg.nn.utils.parametrizations.orthogonal(tg.nn.Linear(3, 3))


@pytest.mark.parametrize("api", ["parametrizations", "hooks"])
def test_compiled_weight_normed_step_equals_eager(api):
    rng = np.random.default_rng(8)
    batches = [(rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(8, 2)).astype(np.float32))
               for _ in range(4)]
    utils = tg.nn.utils.parametrizations if api == "parametrizations" else tg.nn.utils

    def make():
        tg.manual_seed(0)
        model = tg.nn.Sequential(tg.nn.Linear(4, 6), tg.nn.Tanh(), tg.nn.Linear(6, 2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            utils.weight_norm(model[0])
        utils.spectral_norm(model[2])
        return model, tg.optim.Adam(model.parameters(), lr=0.05)

    def step(model, opt, x, y):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    em, eopt = make()
    cm, copt = make()
    compiled = tg.compile(lambda x, y: step(cm, copt, x, y))
    for x, y in batches:
        eager = step(em, eopt, tg.tensor(x), tg.tensor(y)).item()
        assert compiled(tg.tensor(x), tg.tensor(y)).item() == pytest.approx(eager, rel=1e-5)
    for (name, a), b in zip(em.state_dict().items(), cm.state_dict().values()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    assert compiled.traces == 1
    x = tg.tensor(batches[0][0])
    np.testing.assert_allclose(cm(x).detach().numpy(), em(x).detach().numpy(), rtol=1e-5, atol=1e-6)
