"""Crossing between tensors and arrays at the edge of a JAX transformation.

A transformation in `tapegrad.func` hands JAX a pure function of arrays: on the way in, the
arrays (tracers included) are wrapped as tensors and the user's tapegrad code runs on them; on
the way out, the result tensors are computed as arrays. Pytrees of tuples, lists and dicts keep
their structure; other leaves (Python numbers, modules) pass through unchanged.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import jax

from .._tensor.tensor import Tensor


def x64(fn: Callable) -> Callable:
    """`fn` run with JAX's 64-bit types on, as every tapegrad JAX call is: a float64 tensor's
    tracers stay float64 (JAX would otherwise canonicalise them to float32)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)
    return wrapper


def is_leaf(x) -> bool:
    return x is None or isinstance(x, Tensor)


def to_arrays(tree: Any) -> Any:
    """Tensors -> their values (pending work is computed, inside the caller's trace)."""
    return jax.tree.map(lambda x: x.jax() if isinstance(x, Tensor) else x, tree, is_leaf=is_leaf)


def to_tensors(tree: Any) -> Any:
    """Arrays (tracers included) -> tensors over them."""
    return jax.tree.map(lambda x: Tensor._from_array(x) if isinstance(x, jax.Array) else x, tree,
                        is_leaf=is_leaf)


def check_tensors(api: str, tree: Any, what: str = "f(*primals)") -> None:
    for x in jax.tree.leaves(tree, is_leaf=is_leaf):
        if not isinstance(x, Tensor):
            raise RuntimeError(f"{api}: expected {what} to return only tensors, got unsupported "
                               f"type {type(x).__name__}")


def argnums_tuple(argnums, n_args: int) -> tuple:
    """`argnums` as a tuple of non-negative positions, checked as PyTorch checks it."""
    if isinstance(argnums, int):
        nums = (argnums,)
    elif isinstance(argnums, tuple) and all(isinstance(a, int) for a in argnums):
        nums = argnums
        if not nums:
            raise RuntimeError("argnums must be non-empty")
        if len(set(nums)) != len(nums):
            raise RuntimeError(f"argnums elements must be unique, got {argnums}")
    else:
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    for a in nums:
        if not -n_args <= a < n_args:
            raise RuntimeError(f"Got argnum={a}, but only {n_args} positional inputs")
    return tuple(a % n_args for a in nums)


def split_args(args: tuple, nums: tuple) -> tuple:
    """(the differentiated args, a function putting new values for them back into args)."""
    diff = tuple(args[a] for a in nums)

    def rebuild(new: tuple) -> tuple:
        out = list(args)
        for a, v in zip(nums, new):
            out[a] = v
        return tuple(out)
    return diff, rebuild
