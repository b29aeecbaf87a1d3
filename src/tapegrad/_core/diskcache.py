"""JAX's persistent compilation cache, on by default: a script or notebook run again starts warm.

Compiled XLA executables are written to `$TAPEGRAD_CACHE_DIR`, else
`$XDG_CACHE_HOME/tapegrad/jax`, else `~/.cache/tapegrad/jax`; `TAPEGRAD_CACHE_DIR=""` switches
the cache off. tapegrad's programs are small and compile in milliseconds, so the thresholds that
keep JAX from caching small programs are lowered (unless set by their `JAX_...` variables). A
cache the user configured for JAX (`jax_compilation_cache_dir`, by config or
`JAX_COMPILATION_CACHE_DIR`, even empty) is left as it is, its thresholds included. The cache is
unbounded, as JAX's is by default; `JAX_COMPILATION_CACHE_MAX_SIZE` (bytes, needs the `filelock`
package) bounds it. Importing this module only sets configuration (tapegrad's `__init__` imports it
first); JAX reads it at its first compile, so a process that compiled before importing tapegrad
keeps JAX's choice.
"""
from __future__ import annotations

import os

import jax

ENV = "TAPEGRAD_CACHE_DIR"


def default_dir() -> str:
    """`$XDG_CACHE_HOME/tapegrad/jax`, else `~/.cache/tapegrad/jax`."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tapegrad", "jax")


def configure() -> str | None:
    """Point JAX's persistent cache at tapegrad's directory; returns it (None: switched off, or
    the user's own JAX cache configuration kept)."""
    if jax.config.jax_compilation_cache_dir or "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return None
    path = os.environ.get(ENV)
    if path is None:
        path = default_dir()
    if not path:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    if "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES" not in os.environ:
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # no size floor
    return path


configure()
