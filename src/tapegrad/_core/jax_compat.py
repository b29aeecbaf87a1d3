"""The one place tapegrad reaches into JAX's private API.

A Python number reaches a compiled program inside an array (see `compile.arguments`); unpacked,
it must promote as the Python number would, which only a *weakly typed* scalar does. JAX makes
weak types from Python scalars but offers no public way to mark a traced array weak, so this uses
`jax._src.lax.lax._convert_element_type(..., weak_type=True)`. `tests/test_jax_compat.py` fails
loudly if a JAX release moves or changes it.
"""
from __future__ import annotations

from jax._src.lax.lax import _convert_element_type


def weak_scalar(x, dtype):
    """`x` converted to `dtype` and marked weakly typed (it promotes like a Python scalar)."""
    return _convert_element_type(x, dtype, weak_type=True)
