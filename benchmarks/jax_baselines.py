"""Hand-written `jax.jit(jax.value_and_grad(loss))` + optax: the limit tapegrad is measured against.

Parameters are taken from the tapegrad model (same shapes, same values), so each baseline does
exactly the work of the tapegrad step.
"""
import math

import jax
import jax.numpy as jnp
import optax


def _linear(p, x):
    return x @ p["weight"].T + p["bias"]


def _cross_entropy(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def mlp_loss(params, x, y):
    h = x
    for i, p in enumerate(params):
        h = _linear(p, h)
        if i < len(params) - 1:
            h = jax.nn.relu(h)
    return _cross_entropy(h, y)


def _layer_norm(p, x, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps) * p["weight"] + p["bias"]


def gpt_loss(params, idx, y, heads=3):
    B, L = idx.shape
    x = params["tok"][idx] + params["pos"][jnp.arange(L)]
    mask = jnp.tril(jnp.ones((L, L), bool))
    for blk in params["blocks"]:
        C = x.shape[-1]
        q, k, v = jnp.split(_linear(blk["qkv"], _layer_norm(blk["ln1"], x)), 3, axis=2)
        q, k, v = (t.reshape(B, L, heads, C // heads).transpose(0, 2, 1, 3) for t in (q, k, v))
        att = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(C // heads))
        att = jax.nn.softmax(jnp.where(mask, att, -jnp.inf), axis=-1)
        yv = (att @ v).transpose(0, 2, 1, 3).reshape(B, L, C)
        x = x + _linear(blk["proj"], yv)
        x = x + _linear(blk["fc2"], jax.nn.gelu(_linear(blk["fc1"], _layer_norm(blk["ln2"], x)),
                                                approximate=False))
    logits = _linear(params["head"], _layer_norm(params["ln"], x))
    return _cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def chain_grad(x, n=50):
    def f(x):
        y = x
        for _ in range(n // 2):
            y = jnp.tanh(y * 1.01)
        return y.sum()
    return jax.grad(f)(x)


def make_step(loss_fn, tx):
    @jax.jit
    def step(params, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss
    return step
