"""`vmap`: torch.func's vectorizing map over `jax.vmap`.

The user's function runs once, on tensors over JAX's batch tracers, so per-sample gradients
(`vmap(grad(loss))`) and ensembles (`vmap(functional_call)` over `stack_module_state`) are one
JAX program. Random draws follow `randomness`: "error" refuses them, "same" and "different" draw
from a key taken from the default generator, unbatched or split per sample.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from .._core.dtype import from_numpy_dtype
from .._core.graph import Const
from .._tensor import random as _random
from .._tensor.tensor import Tensor
from ._pytree import is_leaf, to_arrays, to_tensors, x64
from ._tape import needs_tape, on_tape

__all__ = ["vmap"]

RANDOM_IN_ERROR_MODE = (
    "vmap: called random operation while in randomness error mode. Please either use the 'same' "
    "or 'different' randomness flags on vmap or perform the randomness operation out of vmap")


def check_randomness(randomness: str) -> None:
    if randomness not in ("error", "different", "same"):
        raise RuntimeError("Only allowed values for randomness are 'error', 'different', or "
                           f"'same'. Got {randomness}")


def vmap(func: Callable, in_dims: Any = 0, out_dims: Any = 0, randomness: str = "error", *,
         chunk_size: int | None = None) -> Callable:
    """`func` mapped over a dimension of its inputs: `in_dims` (an int, None, or a pytree
    prefix of the arguments) says which dimension of each input is the batch, `out_dims` where
    the batch goes in each output. `chunk_size` maps that many samples at a time (a
    `jax.lax.map` of vmaps), for memory; the values are the same."""
    check_randomness(randomness)
    if chunk_size is not None and chunk_size <= 0:
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")
    name = getattr(func, "__name__", repr(func))

    @functools.wraps(func)
    @x64
    def wrapper(*args, **kwargs):
        leaves, spec = jax.tree.flatten(args, is_leaf=is_leaf)
        key = _key(randomness, _batch_size(leaves, _flat_dims(name, in_dims, args, spec, leaves)))
        if needs_tape(args):  # the key is drawn once, outside: every trace of the op sees it
            key = None if key is None else Tensor._from_array(key)
            return on_tape("vmap", lambda k, *a: mapped(k, a, kwargs), (key,) + args)
        return mapped(key, args, kwargs)

    def mapped(key, args: tuple, kwargs: dict):
        key = key.jax() if isinstance(key, Tensor) else key
        leaves, spec = jax.tree.flatten(args, is_leaf=is_leaf)
        dims = _flat_dims(name, in_dims, args, spec, leaves)
        arrays = [x.jax() if isinstance(x, Tensor) else x for x in leaves]
        batched = [i for i, d in enumerate(dims) if d is not None]
        xs = [jnp.moveaxis(arrays[i], dims[i], 0) for i in batched]

        def pure(key, *bs):
            flat = list(arrays)
            for i, b in zip(batched, bs):
                flat[i] = b
            call_args = to_tensors(jax.tree.unflatten(spec, flat))
            with _draws(randomness, key):
                out = func(*call_args, **kwargs)
            _check_outputs(name, out, out_dims)
            return to_arrays(out)

        key_axis = 0 if randomness == "different" else None
        if chunk_size is None:
            out = jax.vmap(pure, in_axes=(key_axis,) + (0,) * len(xs), out_axes=out_dims)(key, *xs)
        else:
            out = _chunked(pure, key, key_axis, xs, out_dims, chunk_size)
        return to_tensors(out)
    return wrapper


def _flat_dims(name: str, in_dims, args: tuple, spec, leaves: list) -> list:
    """The batch dimension of each leaf of `args` (None: not batched), checked as PyTorch does."""
    where = f"vmap({name}, in_dims={in_dims}, ...)(<inputs>)"
    if not isinstance(in_dims, (int, tuple)) or isinstance(in_dims, bool):
        raise ValueError(f"{where}: expected `in_dims` to be int or a (potentially nested) tuple "
                         f"matching the structure of inputs, got: {type(in_dims)}.")
    if not args:
        raise ValueError(f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add inputs, "
                         "or you are trying to vmap over a function with no inputs. The latter "
                         "is unsupported.")
    dims = _broadcast(in_dims, args)
    if dims is None:
        raise ValueError(
            f"{where}: in_dims is not compatible with the structure of `inputs`. in_dims has "
            f"structure {jax.tree.structure(in_dims)} but inputs has structure {spec}.")
    for k, (x, d) in enumerate(zip(leaves, dims)):
        if d is not None and (not isinstance(d, int) or isinstance(d, bool)):
            raise ValueError(f"{where}: Got in_dim={d} for an input but in_dim must be either an "
                             "integer dimension or None.")
        if d is not None and not isinstance(x, Tensor):
            raise ValueError(f"{where}: Got in_dim={d} for an input but the input is of type "
                             f"{type(x)}. We cannot vmap over non-Tensor arguments, please use "
                             "None as the respective in_dim")
        if d is not None and not -x.dim() <= d < x.dim():
            raise ValueError(f"{where}: Got in_dim={d} for some input, but that input is a Tensor "
                             f"of dimensionality {x.dim()} so expected in_dim to satisfy "
                             f"-{x.dim()} <= in_dim < {x.dim()}.")
        if d is not None:
            dims[k] = d % x.dim()
    return dims


def _check_outputs(name: str, out, out_dims) -> None:
    """Every output mapped to a dimension is a tensor, as PyTorch requires."""
    dims = _broadcast(out_dims, out)
    if dims is None:
        raise ValueError(
            f"vmap({name}, ...): out_dims is not compatible with the structure of `outputs`. "
            f"out_dims has structure {jax.tree.structure(out_dims)} but outputs has structure "
            f"{jax.tree.structure(out, is_leaf=is_leaf)}.")
    for x, d in zip(jax.tree.leaves(out, is_leaf=is_leaf), dims):
        if d is not None and not isinstance(x, Tensor):
            raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type "
                             f"{type(x)}. Did you mean to set out_dims= to None for output?")


def _broadcast(dims, tree) -> list | None:
    """`dims` (a prefix of `tree`) spread over the leaves of `tree`, in flattening order."""
    if dims is None or isinstance(dims, int):
        return [dims] * len(jax.tree.leaves(tree, is_leaf=is_leaf))
    if isinstance(tree, (tuple, list)) and isinstance(dims, (tuple, list)) \
            and len(dims) == len(tree) and not is_leaf(tree):
        parts = [_broadcast(d, t) for d, t in zip(dims, tree)]
    elif isinstance(tree, dict) and isinstance(dims, dict) and dims.keys() == tree.keys():
        parts = [_broadcast(dims[k], tree[k]) for k in sorted(tree)]
    else:
        return None
    if any(p is None for p in parts):
        return None
    return [d for p in parts for d in p]


def _batch_size(leaves: list, dims: list) -> int:
    sizes = [x.shape[d] for x, d in zip(leaves, dims) if d is not None]
    if not sizes:
        raise ValueError("vmap: at least one input must be batched: in_dims is None for every "
                         "Tensor input")
    if len(set(sizes)) > 1:
        raise ValueError("vmap: Expected all tensors to have the same size in the mapped "
                         f"dimension, got sizes {sizes} for the mapped dimension")
    return sizes[0]


def _key(randomness: str, size: int):
    """The key the mapped draws come from: one per sample for "different"."""
    if randomness == "error":
        return None
    gen = _random.default_generator
    key, counter = gen.stream
    gen.stream = (key, counter + 1)
    k = jax.random.fold_in(key.value, counter)
    return jax.random.split(k, size) if randomness == "different" else k


_drawing = [0]  # how many vmaps with randomness "same" or "different" are running


def drawing() -> bool:
    """True inside a vmap that chose its randomness ("same" or "different")."""
    return _drawing[0] > 0


class _draws:
    """Draws inside the mapped function: refused, or from the (traced) key given."""

    def __init__(self, randomness: str, key) -> None:
        self.randomness, self.key = randomness, key

    def __enter__(self) -> None:
        gen = _random.default_generator
        self.saved = (_random.frozen_draws, gen.stream)
        if self.randomness == "error":
            _random.frozen_draws = RANDOM_IN_ERROR_MODE
        else:
            _random.frozen_draws = None
            _drawing[0] += 1
            gen.stream = (Const(self.key, from_numpy_dtype(self.key.dtype)), 0)

    def __exit__(self, *exc) -> None:
        _random.frozen_draws, _random.default_generator.stream = self.saved
        if self.randomness != "error":
            _drawing[0] -= 1


def _chunked(pure, key, key_axis, xs: list, out_dims, chunk_size: int):
    """`chunk_size` samples at a time: `jax.lax.map` over chunks of a vmap, batch moved to
    `out_dims` afterwards (an unbatched output, out_dim None, is every sample's equal value)."""
    mapped = (key, *xs) if key_axis == 0 else tuple(xs)

    def one(sample):
        return pure(*sample) if key_axis == 0 else pure(key, *sample)

    out = jax.lax.map(one, mapped, batch_size=chunk_size)
    dims = _broadcast(out_dims, out)
    if dims is None:
        raise ValueError(f"vmap: out_dims={out_dims} is not compatible with the structure of the "
                         "outputs")
    leaves, spec = jax.tree.flatten(out)
    moved = [o[0] if d is None else jnp.moveaxis(o, 0, d) for o, d in zip(leaves, dims)]
    return jax.tree.unflatten(spec, moved)
