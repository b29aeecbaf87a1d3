"""`tapegrad.linalg`: PyTorch's `torch.linalg` names over JAX's `jnp.linalg`."""
from __future__ import annotations

from ._functions import matmul
from ._functions_linalg import (
    cholesky, det, inv, matrix_norm, norm, qr, slogdet, solve, svd, svdvals, vector_norm,
)

__all__ = ["cholesky", "det", "inv", "matmul", "matrix_norm", "norm", "qr", "slogdet", "solve",
           "svd", "svdvals", "vector_norm"]
