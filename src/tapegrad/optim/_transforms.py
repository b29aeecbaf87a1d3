"""optax transforms that reproduce PyTorch's update rules exactly.

optax's own `scale_by_adam`, `trace`, `scale_by_rms`, ... differ from PyTorch in details that change
the numbers: where `eps` sits, how the first momentum buffer is formed (PyTorch: `buf = grad`),
dampening, AMSGrad's maximum (PyTorch takes it before bias correction), per-parameter step counts
kept as float32. The transforms here follow PyTorch's single-tensor code path operation by
operation, so float32 results agree to rounding.

Conventions: hyperparameters arrive as (possibly traced) scalars, so changing `lr` never
recompiles; Python scalar work PyTorch does in double precision is done in float64 here
(`_f64`) and cast to the parameter's dtype where it meets an array (`_like`). States are
NamedTuples whose field names are PyTorch's state keys (`exp_avg`, `momentum_buffer`, ...), which
is how `Optimizer.state` and `state_dict()` name them. Updates are what `optax.apply_updates` adds
to the parameters.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


def _f64(x):
    return jnp.asarray(x, jnp.float64)


def _like(x, array):
    """A scalar cast to an array's dtype (PyTorch casts a double `alpha`/`value` the same way)."""
    return jnp.asarray(x).astype(array.dtype)


def _step0():
    return jnp.zeros([], jnp.float32)  # PyTorch keeps `step` as a float32 scalar tensor


def _lerp(start, end, weight):
    """`torch.lerp` as PyTorch's CPU kernel computes it (two formulas, chosen by |weight|)."""
    w = _like(weight, start)
    return jnp.where(jnp.abs(w) < 0.5, start + w * (end - start), end - (end - start) * (1 - w))


def _map(fn, *trees):
    return jax.tree.map(fn, *trees)


def _zeros(params):
    return _map(jnp.zeros_like, params)


# -- weight decay --------------------------------------------------------------------------------

def decoupled_weight_decay(lr, weight_decay) -> optax.GradientTransformation:
    """AdamW's decay, `param *= 1 - lr * weight_decay`, as an update (applied with the step)."""
    def update(updates, state, params):
        def one(u, p):
            return u + (p * _like(1 - _f64(lr) * _f64(weight_decay), p) - p)
        return _map(one, updates, params), state
    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


# -- SGD -----------------------------------------------------------------------------------------

class SGDState(NamedTuple):
    momentum_buffer: Any
    step: Any  # 0 until the buffer exists (PyTorch: `buf is None`); not a PyTorch state key


def sgd(lr, momentum, dampening, *, nesterov: bool, use_momentum: bool):
    """PyTorch's SGD after weight decay: the first buffer is the gradient itself."""
    def init(params):
        if not use_momentum:
            return optax.EmptyState()
        return SGDState(_zeros(params), _step0())

    def update(grads, state, params=None):
        if not use_momentum:
            return _map(lambda g: _like(-_f64(lr), g) * g, grads), state
        first = state.step == 0

        def buf_of(g, b):
            later = b * _like(momentum, b) + g * _like(1 - _f64(dampening), g)
            return jnp.where(first, g, later)
        bufs = _map(buf_of, grads, state.momentum_buffer)

        def direction(g, b):
            return g + b * _like(momentum, b) if nesterov else b
        updates = _map(lambda g, b: _like(-_f64(lr), g) * direction(g, b), grads, bufs)
        return updates, SGDState(bufs, state.step + 1)
    return optax.GradientTransformation(init, update)


# -- Adam family ---------------------------------------------------------------------------------

class AdamState(NamedTuple):
    step: Any
    exp_avg: Any
    exp_avg_sq: Any
    max_exp_avg_sq: Any  # None unless amsgrad


def adam(lr, betas, eps, *, amsgrad: bool):
    """PyTorch's Adam: `eps` added to `sqrt(v) / sqrt(1 - beta2**t)`, step `lr / (1 - beta1**t)`."""
    b1, b2 = betas

    def init(params):
        return AdamState(_step0(), _zeros(params), _zeros(params),
                         _zeros(params) if amsgrad else None)

    def update(grads, state, params=None):
        step = state.step + 1
        t = _f64(step)
        step_size = _f64(lr) / (1 - _f64(b1) ** t)
        bc2_sqrt = jnp.sqrt(1 - _f64(b2) ** t)
        m = _map(lambda g, m: _lerp(m, g, 1 - _f64(b1)), grads, state.exp_avg)
        v = _map(lambda g, v: v * _like(b2, v) + _like(1 - _f64(b2), g) * g * g,
                 grads, state.exp_avg_sq)
        vmax = _map(jnp.maximum, state.max_exp_avg_sq, v) if amsgrad else None
        second = vmax if amsgrad else v
        updates = _map(lambda m, s: _like(-step_size, m) * (m / (jnp.sqrt(s) / _like(bc2_sqrt, s)
                                                              + _like(eps, s))), m, second)
        return updates, AdamState(step, m, v, vmax)
    return optax.GradientTransformation(init, update)


class AdamaxState(NamedTuple):
    step: Any
    exp_avg: Any
    exp_inf: Any


def adamax(lr, betas, eps):
    """PyTorch's Adamax: an infinity-norm second moment, `|g| + eps` inside the maximum."""
    b1, b2 = betas

    def init(params):
        return AdamaxState(_step0(), _zeros(params), _zeros(params))

    def update(grads, state, params=None):
        step = state.step + 1
        clr = _f64(lr) / (1 - _f64(b1) ** _f64(step))
        m = _map(lambda g, m: _lerp(m, g, 1 - _f64(b1)), grads, state.exp_avg)
        u = _map(lambda g, u: jnp.maximum(u * _like(b2, u), jnp.abs(g) + _like(eps, g)),
                 grads, state.exp_inf)
        updates = _map(lambda m, u: _like(-clr, m) * (m / u), m, u)
        return updates, AdamaxState(step, m, u)
    return optax.GradientTransformation(init, update)


class NAdamState(NamedTuple):
    step: Any
    mu_product: Any
    exp_avg: Any
    exp_avg_sq: Any


def nadam(lr, betas, eps, momentum_decay):
    """PyTorch's NAdam, with its momentum schedule `mu_t = beta1 (1 - 0.5 * 0.96**(t psi))`."""
    b1, b2 = betas

    def init(params):
        return NAdamState(_step0(), jnp.ones([], jnp.float32), _zeros(params), _zeros(params))

    def update(grads, state, params=None):
        step = state.step + 1
        t = _f64(step)
        bc2 = 1 - _f64(b2) ** t
        mu = _f64(b1) * (1.0 - 0.5 * 0.96 ** (t * _f64(momentum_decay)))
        mu_next = _f64(b1) * (1.0 - 0.5 * 0.96 ** ((t + 1) * _f64(momentum_decay)))
        mu_product = state.mu_product * mu.astype(jnp.float32)
        mp = _f64(mu_product)
        c_grad = -_f64(lr) * (1.0 - mu) / (1.0 - mp)
        c_avg = -_f64(lr) * mu_next / (1.0 - mp * mu_next)
        m = _map(lambda g, m: _lerp(m, g, 1 - _f64(b1)), grads, state.exp_avg)
        v = _map(lambda g, v: v * _like(b2, v) + _like(1 - _f64(b2), g) * g * g,
                 grads, state.exp_avg_sq)

        def one(g, m, v):
            denom = jnp.sqrt(v / _like(bc2, v)) + _like(eps, v)
            return _like(c_grad, g) * (g / denom) + _like(c_avg, m) * (m / denom)
        return _map(one, grads, m, v), NAdamState(step, mu_product, m, v)
    return optax.GradientTransformation(init, update)


class RAdamState(NamedTuple):
    step: Any
    exp_avg: Any
    exp_avg_sq: Any


def radam(lr, betas, eps):
    """PyTorch's RAdam: the rectified adaptive step once `rho_t > 5`, plain momentum before."""
    b1, b2 = betas

    def init(params):
        return RAdamState(_step0(), _zeros(params), _zeros(params))

    def update(grads, state, params=None):
        step = state.step + 1
        t = _f64(step)
        bc1 = 1 - _f64(b1) ** t
        bc2 = 1 - _f64(b2) ** t
        rho_inf = 2 / (1 - _f64(b2)) - 1
        rho_t = rho_inf - 2 * t * (_f64(b2) ** t) / bc2
        rect = jnp.sqrt(jnp.abs((rho_t - 4) * (rho_t - 2) * rho_inf
                                / ((rho_inf - 4) * (rho_inf - 2) * rho_t)))
        m = _map(lambda g, m: _lerp(m, g, 1 - _f64(b1)), grads, state.exp_avg)
        v = _map(lambda g, v: v * _like(b2, v) + _like(1 - _f64(b2), g) * g * g,
                 grads, state.exp_avg_sq)

        def one(m, v):
            corrected = m / _like(bc1, m)
            adaptive = _like(jnp.sqrt(bc2), v) / (jnp.sqrt(v) + _like(eps, v))
            rectified = corrected * _like(lr, m) * adaptive * _like(rect, m)
            return -jnp.where(rho_t > 5.0, rectified, corrected * _like(lr, m))
        return _map(one, m, v), RAdamState(step, m, v)
    return optax.GradientTransformation(init, update)


# -- RMSprop, Adagrad ----------------------------------------------------------------------------

class RMSpropState(NamedTuple):
    step: Any
    square_avg: Any
    momentum_buffer: Any  # None unless momentum > 0
    grad_avg: Any  # None unless centered


def rmsprop(lr, alpha, eps, momentum, *, centered: bool, use_momentum: bool):
    """PyTorch's RMSprop: `eps` added after the square root; optional momentum and centring."""
    def init(params):
        return RMSpropState(_step0(), _zeros(params), _zeros(params) if use_momentum else None,
                            _zeros(params) if centered else None)

    def update(grads, state, params=None):
        sq = _map(lambda g, s: s * _like(alpha, s) + _like(1 - _f64(alpha), g) * g * g,
                  grads, state.square_avg)
        if centered:
            ga = _map(lambda g, a: _lerp(a, g, 1 - _f64(alpha)), grads, state.grad_avg)
            avg = _map(lambda s, a: jnp.sqrt(s - a * a) + _like(eps, s), sq, ga)
        else:
            ga = None
            avg = _map(lambda s: jnp.sqrt(s) + _like(eps, s), sq)
        if use_momentum:
            buf = _map(lambda b, g, a: b * _like(momentum, b) + g / a,
                       state.momentum_buffer, grads, avg)
            updates = _map(lambda b: _like(-_f64(lr), b) * b, buf)
        else:
            buf = None
            updates = _map(lambda g, a: _like(-_f64(lr), g) * (g / a), grads, avg)
        return updates, RMSpropState(state.step + 1, sq, buf, ga)
    return optax.GradientTransformation(init, update)


class AdagradState(NamedTuple):
    step: Any
    sum: Any


def adagrad(lr, lr_decay, eps, initial_accumulator_value):
    """PyTorch's Adagrad: `lr / (1 + (t - 1) lr_decay)`, `eps` added after the square root."""
    def init(params):
        return AdagradState(_step0(), _map(
            lambda p: jnp.full_like(p, initial_accumulator_value), params))

    def update(grads, state, params=None):
        step = state.step + 1
        clr = _f64(lr) / (1 + (_f64(step) - 1) * _f64(lr_decay))
        s = _map(lambda g, s: s + g * g, grads, state.sum)
        updates = _map(lambda g, s: _like(-clr, g) * (g / (jnp.sqrt(s) + _like(eps, s))), grads, s)
        return updates, AdagradState(step, s)
    return optax.GradientTransformation(init, update)


# -- Adadelta, Rprop, ASGD -----------------------------------------------------------------------

class AdadeltaState(NamedTuple):
    step: Any
    square_avg: Any
    acc_delta: Any


def adadelta(lr, rho, eps):
    """PyTorch's Adadelta: `delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g`."""
    def init(params):
        return AdadeltaState(_step0(), _zeros(params), _zeros(params))

    def update(grads, state, params=None):
        sq = _map(lambda g, s: s * _like(rho, s) + _like(1 - _f64(rho), g) * g * g,
                  grads, state.square_avg)
        delta = _map(lambda g, s, a: jnp.sqrt(a + _like(eps, a)) / jnp.sqrt(s + _like(eps, s)) * g,
                     grads, sq, state.acc_delta)
        acc = _map(lambda a, d: a * _like(rho, a) + _like(1 - _f64(rho), d) * d * d,
                   state.acc_delta, delta)
        updates = _map(lambda d: _like(-_f64(lr), d) * d, delta)
        return updates, AdadeltaState(state.step + 1, sq, acc)
    return optax.GradientTransformation(init, update)


class RpropState(NamedTuple):
    step: Any
    prev: Any
    step_size: Any


def rprop(lr, etas, step_sizes):
    """PyTorch's Rprop: per-element step sizes grow by `etas[1]` while the gradient keeps its
    sign and shrink by `etas[0]` when it flips (that element then skips the step). The step
    sizes start at `lr`; a later `lr` has no effect, as in PyTorch."""
    eta_minus, eta_plus = etas
    lo, hi = step_sizes

    def init(params):
        return RpropState(_step0(), _zeros(params), _map(lambda p: jnp.full_like(p, lr), params))

    def update(grads, state, params=None):
        def one(g, prev, size):
            s = jnp.sign(g * prev)
            factor = jnp.where(s > 0, _like(eta_plus, g), jnp.where(s < 0, _like(eta_minus, g),
                                                                     jnp.ones_like(g)))
            size = jnp.clip(size * factor, _like(lo, size), _like(hi, size))
            g = jnp.where(factor == _like(eta_minus, g), jnp.zeros_like(g), g)
            return -(jnp.sign(g) * size), g, size
        out = _map(one, grads, state.prev, state.step_size)
        is_leaf = lambda x: isinstance(x, tuple) and not hasattr(x, "_fields")  # noqa: E731
        pick = lambda k: jax.tree.map(lambda t: t[k], out, is_leaf=is_leaf)  # noqa: E731
        return pick(0), RpropState(state.step + 1, pick(1), pick(2))
    return optax.GradientTransformation(init, update)


class ASGDState(NamedTuple):
    step: Any
    eta: Any
    mu: Any
    ax: Any


def asgd(lr, lambd, alpha, t0):
    """PyTorch's ASGD: `p = p (1 - lambd eta) - eta g`; `ax` averages the parameters once
    `step > t0`; `eta = lr / (1 + lambd lr step)^alpha`, `mu = 1 / max(1, step - t0)`."""
    def init(params):
        return ASGDState(_step0(), jnp.asarray(lr, jnp.float32), jnp.ones([], jnp.float32),
                         _zeros(params))

    def update(grads, state, params):
        step = state.step + 1
        eta, mu = _f64(state.eta), _f64(state.mu)

        def new_param(g, p):
            return p * _like(1 - _f64(lambd) * eta, p) + _like(-eta, g) * g
        moved = _map(new_param, grads, params)
        ax = _map(lambda a, q: jnp.where(mu == 1, q, a + (q - a) * _like(mu, a)), state.ax, moved)
        t = _f64(step)
        new_eta = (_f64(lr) / (1 + _f64(lambd) * _f64(lr) * t) ** _f64(alpha)).astype(jnp.float32)
        new_mu = (1 / jnp.maximum(1.0, t - _f64(t0))).astype(jnp.float32)
        updates = _map(lambda q, p: q - p, moved, params)
        return updates, ASGDState(step, new_eta, new_mu, ax)
    return optax.GradientTransformation(init, update)


def maybe_negate(maximize: bool) -> list:
    """`maximize=True` ascends: PyTorch negates the gradient before anything else."""
    return [optax.scale(-1.0)] if maximize else []


def coupled_weight_decay(weight_decay) -> list:
    """L2 decay as PyTorch adds it to the gradient: `grad + weight_decay * param`."""
    return [optax.add_decayed_weights(weight_decay)]
