"""Program cases for the `tapegrad.distributions` rows, against independent jnp programs:
`jax.scipy.stats` densities, closed-form entropies and KL divergences written out here, and
the implicit reparameterisation gradient of a gamma draw (`-dF/da / f` from the regularised
incomplete gamma function), not `jax.random.gamma`'s own derivative."""
from __future__ import annotations


import jax
import jax.numpy as jnp
from jax.scipy import stats
from jax.scipy.special import digamma, gammainc, gammaln

import tapegrad
import tapegrad.distributions as D
from tapegrad._tensor.apply import apply
from tapegrad.distributions import gamma as _gamma_rows

from op_cases import Case, F, I

CASES: dict = {}

KEY = [12345, 678]  # key data for the draws (two 31-bit integers, as `gamma._key` draws them)


def case(op, fn, ref, *inputs, **kw):
    CASES.setdefault(op, []).append(Case(fn, ref, inputs, **kw))


def _implicit_gamma(a, key):
    """A standard gamma draw whose derivative in `a` is the implicit one, `-dF(x; a)/da / f(x; a)`
    with F the gamma CDF (`gammainc`) and f its density."""
    x = jax.lax.stop_gradient(jax.random.gamma(jax.random.wrap_key_data(key.astype(jnp.uint32)),
                                               a, dtype=a.dtype))
    x = jnp.maximum(x, jnp.finfo(a.dtype).tiny)

    def grad_one(ai, xi):
        dF = jax.grad(lambda s: gammainc(s, xi))(ai)
        return -dF / jnp.exp(stats.gamma.logpdf(xi, ai))
    a0 = jax.lax.stop_gradient(a)  # no tangent reaches the CDF's derivative
    dx = jax.vmap(grad_one)(a0.reshape(-1), x.reshape(-1)).reshape(a.shape)
    return x + (a - a0) * dx


case("normal_log_prob", lambda x, m, s: D.Normal(m, s).log_prob(x),
     lambda x, m, s: stats.norm.logpdf(x, m, s), F((2, 3)), F((3,)), F((2, 3), 0.5, 2.0))
case("gamma_log_prob", lambda x, a, r: D.Gamma(a, r).log_prob(x),
     lambda x, a, r: stats.gamma.logpdf(x, a, scale=1 / r), F((2, 3), 0.2, 3.0),
     F((2, 3), 0.5, 3.0), F((3,), 0.5, 2.0))
case("gamma_entropy", lambda a, r: D.Gamma(a, r).entropy(),
     lambda a, r: a - jnp.log(r) + gammaln(a) + (1 - a) * digamma(a), F((4,), 0.5, 3.0),
     F((4,), 0.5, 2.0))
case("gamma_rsample", lambda a, k: apply(_gamma_rows.gamma_rsample_op, a, k), _implicit_gamma,
     F((5,), 0.5, 3.0), I(KEY), tol=100.0)
case("dirichlet_rsample", lambda a, k: apply(_gamma_rows.dirichlet_rsample_op, a, k),
     lambda a, k: (lambda g: g / g.sum(-1, keepdims=True))(_implicit_gamma(a, k)),
     F((2, 3), 0.5, 3.0), I(KEY), tol=100.0)
case("dirichlet_log_prob", lambda x, a: D.Dirichlet(a).log_prob(x / x.sum(-1, keepdim=True)),
     lambda x, a: jax.vmap(stats.dirichlet.logpdf)(x / x.sum(-1, keepdims=True), a),
     F((2, 3), 0.2, 1.0), F((2, 3), 0.5, 3.0))
case("dirichlet_entropy", lambda a: D.Dirichlet(a).entropy(),
     lambda a: (gammaln(a).sum(-1) - gammaln(a.sum(-1)) + (a.sum(-1) - a.shape[-1])
                * digamma(a.sum(-1)) - ((a - 1) * digamma(a)).sum(-1)), F((2, 4), 0.5, 3.0))


def _spd(m):
    """A positive definite matrix from any square one (tapegrad tensors and jnp arrays)."""
    if isinstance(m, jnp.ndarray):
        return m @ jnp.swapaxes(m, -1, -2) + 3 * jnp.eye(m.shape[-1], dtype=m.dtype)
    return m @ m.mT + 3 * tapegrad.eye(m.shape[-1], dtype=m.dtype)


case("mvn_log_prob", lambda x, m, c: D.MultivariateNormal(m, covariance_matrix=_spd(c)).log_prob(x),
     lambda x, m, c: jax.vmap(stats.multivariate_normal.logpdf, (0, None, None))(x, m, _spd(c)),
     F((4, 3)), F((3,)), F((3, 3)))
case("kl_gamma_gamma", lambda a, r, b, s: D.kl_divergence(D.Gamma(a, r), D.Gamma(b, s)),
     lambda a, r, b, s: ((a - b) * digamma(a) - gammaln(a) + gammaln(b) + b * (jnp.log(r) - jnp.log(s))
                         + a * (s - r) / r),
     F((3,), 0.5, 3.0), F((3,), 0.5, 2.0), F((3,), 0.5, 3.0), F((3,), 0.5, 2.0))
case("kl_dirichlet_dirichlet",
     lambda a, b: D.kl_divergence(D.Dirichlet(a), D.Dirichlet(b)),
     lambda a, b: (gammaln(a.sum(-1)) - gammaln(b.sum(-1)) - (gammaln(a) - gammaln(b)).sum(-1)
                   + ((a - b) * (digamma(a) - digamma(a.sum(-1, keepdims=True)))).sum(-1)),
     F((2, 3), 0.5, 3.0), F((2, 3), 0.5, 3.0))


def _kl_mvn_ref(m1, c1, m2, c2):
    s1, s2 = _spd(c1), _spd(c2)
    inv2 = jnp.linalg.inv(s2)
    d = m2 - m1
    return 0.5 * (jnp.trace(inv2 @ s1) + d @ inv2 @ d - m1.shape[-1]
                  + jnp.linalg.slogdet(s2)[1] - jnp.linalg.slogdet(s1)[1])


case("kl_mvn_mvn", lambda m1, c1, m2, c2: D.kl_divergence(
        D.MultivariateNormal(m1, _spd(c1)), D.MultivariateNormal(m2, scale_tril=_spd(c2).cholesky())),
     _kl_mvn_ref, F((3,)), F((3, 3)), F((3,)), F((3, 3)), tol=10.0)

