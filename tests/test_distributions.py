"""`tapegrad.distributions` against PyTorch (log_prob, entropy, mean, variance, KL, their
gradients, shapes, validation errors), `rsample` gradients against `jax.grad` of the
reparameterised jnp program, and sample statistics with fixed seeds.

The densities' rows are also checked against `jax.scipy.stats` in `op_cases_distributions.py`
(through `test_ops_registry.py`), the gamma draws' implicit gradient included.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad
import tapegrad.distributions as TD

torch = pytest.importorskip("torch")
import torch.distributions as PD  # noqa: E402

R = np.random.default_rng(0)


def _spd(n, batch=()):
    m = R.normal(size=batch + (n, n))
    return m @ np.swapaxes(m, -1, -2) + n * np.eye(n)


# (distribution name, parameters (float arrays are differentiated), values for log_prob)
SETUPS = [
    ("Normal", {"loc": R.normal(size=(2, 3)), "scale": R.uniform(0.5, 2, 3)}, R.normal(size=(4, 2, 3))),
    ("Normal", {"loc": 0.5, "scale": 2.0}, R.normal(size=5)),
    ("Uniform", {"low": R.uniform(-2, -1, 3), "high": R.uniform(1, 2, 3)}, R.uniform(-1, 1, (2, 3))),
    ("Bernoulli", {"probs": R.uniform(0.1, 0.9, (2, 3))}, R.integers(0, 2, (2, 3)).astype(float)),
    ("Bernoulli", {"logits": R.normal(size=4) * 3}, R.integers(0, 2, (3, 4)).astype(float)),
    ("Categorical", {"probs": R.uniform(0.1, 1, (2, 4))}, R.integers(0, 4, (3, 2))),
    ("Categorical", {"logits": R.normal(size=(3, 5))}, R.integers(0, 5, 3)),
    ("OneHotCategorical", {"probs": R.uniform(0.1, 1, (2, 4))},
     np.eye(4)[R.integers(0, 4, (3, 2))]),
    ("OneHotCategorical", {"logits": R.normal(size=(3,))}, np.eye(3)[[0, 2]]),
    ("MultivariateNormal", {"loc": R.normal(size=(2, 3)), "covariance_matrix": _spd(3)},
     R.normal(size=(4, 2, 3))),
    ("MultivariateNormal", {"loc": R.normal(size=3), "scale_tril": np.linalg.cholesky(_spd(3, (2,)))},
     R.normal(size=(2, 3))),
    ("MultivariateNormal", {"loc": R.normal(size=3), "precision_matrix": _spd(3)},
     R.normal(size=(5, 3))),
    ("Gamma", {"concentration": R.uniform(0.5, 3, (2, 3)), "rate": R.uniform(0.5, 2, 3)},
     R.uniform(0.1, 4, (2, 3))),
    ("Beta", {"concentration1": R.uniform(0.5, 3, 3), "concentration0": R.uniform(0.5, 3, 3)},
     R.uniform(0.05, 0.95, (2, 3))),
    ("Dirichlet", {"concentration": R.uniform(0.5, 3, (2, 4))}, R.dirichlet(np.ones(4), (3, 2))),
]
MEAN_VARIANCE_UNDEFINED = {"Categorical"}  # NaN-filled in both libraries


def _build(lib, D, name, params):
    tensors = {k: (lib.tensor(v, dtype=lib.float64, requires_grad=True)
                   if isinstance(v, np.ndarray) else v) for k, v in params.items()}
    return getattr(D, name)(**tensors), [t for t in tensors.values() if isinstance(t, lib.Tensor)]


def _value(lib, v):
    return lib.tensor(v, dtype=lib.float64) if v.dtype.kind == "f" else lib.tensor(v)


def _run(lib, D, name, params, value):
    """Every quantity's value and the gradients of their weighted sum w.r.t. the parameters."""
    dist, leaves = _build(lib, D, name, params)
    quantities = {"log_prob": dist.log_prob(_value(lib, value)), "entropy": dist.entropy()}
    if name not in MEAN_VARIANCE_UNDEFINED:
        quantities.update(mean=dist.mean, variance=dist.variance, stddev=dist.stddev)
    else:
        quantities.update(mean=dist.mean, variance=dist.variance)
    rng = np.random.default_rng(1)
    total = 0
    for k, q in quantities.items():
        if q.requires_grad:
            total = total + (q * lib.tensor(rng.uniform(0.5, 1.5, tuple(q.shape)))).sum()
    if leaves and not isinstance(total, int):
        total.backward()
    shapes = (tuple(dist.batch_shape), tuple(dist.event_shape))
    return ({k: q.detach().numpy() for k, q in quantities.items()},
            [None if t.grad is None else t.grad.numpy() for t in leaves], shapes, repr(dist))


@pytest.mark.parametrize("name,params,value", SETUPS,
                         ids=[f"{s[0]}-{i}" for i, s in enumerate(SETUPS)])
def test_matches_pytorch(name, params, value):
    (pq, pg, ps, prepr), (tq, tg, ts, trepr) = (_run(torch, PD, name, params, value),
                                                _run(tapegrad, TD, name, params, value))
    assert ts == ps
    assert trepr == prepr.replace("torch.", "tapegrad.")
    assert sorted(tq) == sorted(pq)
    for k in pq:
        assert tq[k].shape == pq[k].shape, k
        np.testing.assert_allclose(tq[k], pq[k], rtol=1e-10, atol=1e-12, err_msg=k)
    for a, b in zip(tg, pg):  # digamma's last digits differ between the libraries
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


KL_PAIRS = [
    ("Normal", {"loc": R.normal(size=3), "scale": R.uniform(0.5, 2, 3)},
     {"loc": R.normal(size=(2, 3)), "scale": R.uniform(0.5, 2, (2, 3))}),
    ("Bernoulli", {"probs": np.array([0.0, 0.3, 1.0, 0.6])},
     {"probs": np.array([0.2, 0.0, 0.5, 1.0])}),  # the infinite and zero branches
    ("Categorical", {"probs": np.array([[0.2, 0.0, 0.8], [0.3, 0.3, 0.4]])},
     {"logits": R.normal(size=(2, 3))}),
    ("Categorical", {"probs": np.array([0.5, 0.5, 0.0])}, {"probs": np.array([0.5, 0.0, 0.5])}),
    ("OneHotCategorical", {"logits": R.normal(size=(2, 3))}, {"logits": R.normal(size=3)}),
    ("Uniform", {"low": np.array([0.0, -1.0]), "high": np.array([1.0, 1.0])},
     {"low": np.array([-1.0, 0.0]), "high": np.array([2.0, 2.0])}),
    ("Gamma", {"concentration": R.uniform(0.5, 3, 3), "rate": R.uniform(0.5, 2, 3)},
     {"concentration": R.uniform(0.5, 3, 3), "rate": R.uniform(0.5, 2, 3)}),
    ("Beta", {"concentration1": R.uniform(0.5, 3, 2), "concentration0": R.uniform(0.5, 3, 2)},
     {"concentration1": R.uniform(0.5, 3, 2), "concentration0": R.uniform(0.5, 3, 2)}),
    ("Dirichlet", {"concentration": R.uniform(0.5, 3, (2, 4))},
     {"concentration": R.uniform(0.5, 3, 4)}),
    ("MultivariateNormal", {"loc": R.normal(size=3), "covariance_matrix": _spd(3)},
     {"loc": R.normal(size=(2, 3)), "scale_tril": np.linalg.cholesky(_spd(3, (2,)))}),
]


@pytest.mark.parametrize("name,p,q", KL_PAIRS, ids=[f"{k[0]}-{i}" for i, k in enumerate(KL_PAIRS)])
def test_kl_divergence_matches_pytorch(name, p, q):
    results = []
    for lib, D in ((torch, PD), (tapegrad, TD)):
        dp, lp = _build(lib, D, name, p)
        dq, lq = _build(lib, D, name, q)
        kl = D.kl_divergence(dp, dq)
        weights = lib.tensor(np.random.default_rng(2).uniform(0.5, 1.5, tuple(kl.shape)))
        finite = lib.where(lib.isinf(kl), lib.zeros_like(kl), kl)
        (finite * weights).sum().backward()
        results.append((kl.detach().numpy(), [None if t.grad is None else t.grad.numpy()
                                              for t in lp + lq]))
    (pk, pg), (tk, tg) = results
    np.testing.assert_allclose(tk, pk, rtol=1e-10, atol=1e-12)
    for a, b in zip(tg, pg):
        if b is None:
            assert a is None or not np.any(a)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


_CROSS = {
    "Normal": {"loc": np.array([0.3, -1.0, 0.5]), "scale": np.array([1.0, 2.0, 0.7])},
    "Uniform": {"low": np.array([0.1, -1.0, 0.2]), "high": np.array([0.9, 2.0, 0.3])},
    "Beta": {"concentration1": np.array([0.5, 2.0, 1.5]),
             "concentration0": np.array([1.5, 3.0, 0.8])},
    "Gamma": {"concentration": np.array([0.5, 2.0, 3.0]), "rate": np.array([1.5, 3.0, 0.5])},
}
CROSS_PAIRS = [(a, b) for a in _CROSS for b in _CROSS if a != b]


@pytest.mark.parametrize("p_name,q_name", CROSS_PAIRS, ids=[f"{a}-{b}" for a, b in CROSS_PAIRS])
def test_kl_between_families_matches_pytorch(p_name, q_name):
    """PyTorch's closed forms for p and q of different families (inf where p's support reaches
    outside q's), values and gradients."""
    results = []
    for lib, D in ((torch, PD), (tapegrad, TD)):
        dp, lp = _build(lib, D, p_name, _CROSS[p_name])
        dq, lq = _build(lib, D, q_name, _CROSS[q_name])
        kl = D.kl_divergence(dp, dq)
        if kl.requires_grad:  # not where the divergence is infinite everywhere
            lib.where(lib.isinf(kl), lib.zeros_like(kl), kl).sum().backward()
        results.append((kl.detach().numpy(), [None if t.grad is None else t.grad.numpy()
                                              for t in lp + lq], kl.requires_grad))
    (pk, pg, pr), (tk, tg, tr) = results
    assert tr == pr
    np.testing.assert_allclose(tk, pk, rtol=1e-10, atol=1e-12)
    for a, b in zip(tg, pg):  # digamma's last digits differ between the libraries
        if b is None or a is None:
            assert not np.any(a) and not np.any(b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-12)


def test_kl_without_a_closed_form_raises():
    with pytest.raises(NotImplementedError):
        PD.kl_divergence(PD.Categorical(torch.ones(2)), PD.Normal(0.0, 1.0))
    with pytest.raises(NotImplementedError, match="No KL"):
        TD.kl_divergence(TD.Categorical(tapegrad.ones(2)), TD.Normal(0.0, 1.0))


# -- validation, as PyTorch: the same errors and messages -------------------------------------------
def _errors():
    nan = float("nan")
    return [
        lambda lib, D: D.Normal(lib.tensor([0.0, 1.0]), lib.tensor([1.0, -1.0])),
        lambda lib, D: D.Normal(0.0, 1.0).log_prob(lib.tensor([nan])),
        lambda lib, D: D.Normal(lib.zeros(3), 1.0).log_prob(lib.zeros(2)),
        lambda lib, D: D.Bernoulli(probs=lib.tensor([0.5]), logits=lib.tensor([0.0])),
        lambda lib, D: D.Bernoulli(probs=lib.tensor([1.5])),
        lambda lib, D: D.Bernoulli(probs=lib.tensor([0.5])).log_prob(lib.tensor([0.5])),
        lambda lib, D: D.Categorical(probs=lib.tensor(1.0)),
        lambda lib, D: D.Categorical(probs=lib.tensor([0.5, -0.5, 1.0])),
        lambda lib, D: D.Categorical(logits=lib.zeros(3)).log_prob(lib.tensor([3])),
        lambda lib, D: D.Uniform(lib.tensor([1.0]), lib.tensor([0.0])),
        lambda lib, D: D.Uniform(0.0, 1.0).log_prob(lib.tensor([1.5])),
        lambda lib, D: D.Gamma(lib.tensor([0.0]), lib.tensor([1.0])),
        lambda lib, D: D.Gamma(lib.tensor([1.0]), lib.tensor([1.0])).log_prob(lib.tensor([-1.0])),
        lambda lib, D: D.Dirichlet(lib.tensor([1.0, -1.0])),
        lambda lib, D: D.Dirichlet(lib.tensor([1.0, 1.0])).log_prob(lib.tensor([0.5, 0.6])),
        lambda lib, D: D.MultivariateNormal(lib.zeros(2)),
        lambda lib, D: D.MultivariateNormal(lib.zeros(2), scale_tril=lib.tensor([[1.0, 1.0],
                                                                                  [0.0, 1.0]])),
        lambda lib, D: D.MultivariateNormal(lib.zeros(2), lib.tensor([[1.0, 2.0], [2.0, 1.0]])),
        lambda lib, D: D.OneHotCategorical(logits=lib.zeros(3)).log_prob(lib.tensor([1.0, 1.0, 0.0])),
    ]


@pytest.mark.parametrize("k", range(len(_errors())))
def test_validation_errors_match_pytorch(k):
    call = _errors()[k]
    with pytest.raises(Exception) as want:
        call(torch, PD)
    with pytest.raises(type(want.value)) as got:
        call(tapegrad, TD)
    expected = str(want.value).replace("torch.", "tapegrad.")
    # the invalid values are printed by each library's tensor repr: compare the text before them
    assert str(got.value).split("\n")[0] == expected.split("\n")[0]


def test_validate_args_false_skips_the_checks():
    d = TD.Normal(tapegrad.tensor([0.0]), tapegrad.tensor([-1.0]), validate_args=False)
    assert np.isnan(d.log_prob(tapegrad.tensor([0.0])).item())
    TD.Distribution.set_default_validate_args(False)
    try:
        TD.Gamma(tapegrad.tensor([-1.0]), tapegrad.tensor([1.0]))
    finally:
        TD.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        TD.Gamma(tapegrad.tensor([-1.0]), tapegrad.tensor([1.0]))


# -- rsample: gradients through the tape, against jax.grad of the reparameterised program ---------
def _reparam_case(name):
    loc, scale = R.normal(size=(2, 3)), R.uniform(0.5, 2, 3)
    if name == "Normal":
        return ({"loc": loc, "scale": scale},
                lambda d, x: (x - d.loc) / d.scale,
                lambda p, eps: p["loc"] + p["scale"] * eps)
    if name == "Uniform":
        return ({"low": loc - 3, "high": loc + scale},
                lambda d, x: (x - d.low) / (d.high - d.low),
                lambda p, u: p["low"] + u * (p["high"] - p["low"]))
    chol = np.linalg.cholesky(_spd(3))
    return ({"loc": loc, "scale_tril": chol},
            lambda d, x: tapegrad.tensor(np.linalg.solve(chol, (x - d.loc).detach().numpy()[..., None])[..., 0]),
            lambda p, eps: p["loc"] + (p["scale_tril"] @ eps[..., None])[..., 0])


@pytest.mark.parametrize("name", ["Normal", "Uniform", "MultivariateNormal"])
def test_rsample_gradients_match_jax(name):
    params, noise_of, program = _reparam_case(name)
    tapegrad.manual_seed(3)
    dist, leaves = _build(tapegrad, TD, name, params)
    x = dist.rsample((4,))
    assert tuple(x.shape) == (4,) + tuple(dist.batch_shape) + tuple(dist.event_shape)
    assert x.requires_grad
    w = np.random.default_rng(4).uniform(0.5, 1.5, tuple(x.shape))
    (x * tapegrad.tensor(w)).sum().backward()
    with tapegrad.no_grad():
        noise = np.asarray(noise_of(dist, x).detach().numpy())
    with jax.enable_x64(True):
        ref = jax.grad(lambda p: (program(p, jnp.asarray(noise)) * w).sum())(
            {k: jnp.asarray(v) for k, v in params.items()})
    for k, leaf in zip(params, leaves):
        np.testing.assert_allclose(leaf.grad.numpy(), np.asarray(ref[k]), rtol=1e-10, atol=1e-12,
                                   err_msg=k)
    np.testing.assert_allclose(x.detach().numpy(), np.asarray(program(params, noise)), rtol=1e-12)


def test_gamma_family_rsample_gradients():
    """Gamma, Beta and Dirichlet samples are differentiable in their parameters; the rate enters
    a gamma sample as `x = g / rate` (the concentration's implicit gradient is checked against
    the gamma CDF in op_cases_distributions.py)."""
    tapegrad.manual_seed(5)
    conc = tapegrad.tensor([0.7, 2.5], dtype=tapegrad.float64, requires_grad=True)
    rate = tapegrad.tensor([1.5, 0.5], dtype=tapegrad.float64, requires_grad=True)
    x = TD.Gamma(conc, rate).rsample((3,))
    x.sum().backward()
    np.testing.assert_allclose(rate.grad.numpy(), -(x.detach().numpy() / rate.detach().numpy()).sum(0),
                               rtol=1e-12)
    assert np.all(conc.grad.numpy() > 0)  # a larger shape moves every draw up
    for dist in (TD.Beta(conc, rate), TD.Dirichlet(conc.unsqueeze(0).expand(2, 2))):
        conc.grad = None
        dist.rsample((2,)).pow(2).sum().backward()
        assert conc.grad is not None and np.all(np.isfinite(conc.grad.numpy()))
    assert TD.Dirichlet(conc).sample((5,)).sum(-1).numpy() == pytest.approx(np.ones(5))
    assert not TD.Gamma(conc, rate).sample().requires_grad


# -- sample statistics, fixed seeds ----------------------------------------------------------------
N = 20000

STATISTICS = [
    lambda: TD.Normal(tapegrad.tensor([0.0, 3.0]), tapegrad.tensor([1.0, 0.5])),
    lambda: TD.Uniform(tapegrad.tensor([-1.0]), tapegrad.tensor([3.0])),
    lambda: TD.Bernoulli(probs=tapegrad.tensor([0.1, 0.7])),
    lambda: TD.Bernoulli(logits=tapegrad.tensor([2.0])),
    lambda: TD.OneHotCategorical(probs=tapegrad.tensor([0.2, 0.5, 0.3])),
    lambda: TD.MultivariateNormal(tapegrad.tensor([1.0, -1.0]),
                                  tapegrad.tensor([[2.0, 0.6], [0.6, 1.0]])),
    lambda: TD.Gamma(tapegrad.tensor([0.5, 4.0]), tapegrad.tensor([1.0, 2.0])),
    lambda: TD.Beta(tapegrad.tensor([0.5, 2.0]), tapegrad.tensor([2.0, 3.0])),
    lambda: TD.Dirichlet(tapegrad.tensor([0.5, 1.0, 3.0])),
]


@pytest.mark.parametrize("k", range(len(STATISTICS)))
def test_sample_statistics(k):
    tapegrad.manual_seed(11)
    dist = STATISTICS[k]()
    draws = dist.sample((N,)).numpy()
    assert draws.shape == (N,) + tuple(dist.batch_shape) + tuple(dist.event_shape)
    mean, var = dist.mean.numpy(), dist.variance.numpy()
    # the sample mean is within 5 standard errors; the sample variance within 10% (+ a little)
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean), 5 * np.sqrt(var / N) + 1e-9)
    np.testing.assert_allclose(draws.var(0), var, rtol=0.1, atol=1e-3)
    assert np.isfinite(draws).all()
    tapegrad.manual_seed(11)
    np.testing.assert_array_equal(STATISTICS[k]().sample((N,)).numpy(), draws)  # repeatable


def test_categorical_frequencies_and_support():
    tapegrad.manual_seed(12)
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.25, 0.25]])
    draws = TD.Categorical(probs=tapegrad.tensor(probs)).sample((N,)).numpy()
    assert draws.shape == (N, 2) and draws.dtype == np.int64
    freq = np.stack([(draws == c).mean(0) for c in range(3)], -1)
    np.testing.assert_array_less(np.abs(freq - probs), 5 * np.sqrt(probs * (1 - probs) / N))
    assert set(np.unique(draws)) <= {0, 1, 2}
