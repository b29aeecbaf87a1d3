"""`tapegrad.linalg`: PyTorch's `torch.linalg` names over JAX's `jnp.linalg`."""
from __future__ import annotations

from ._functions.linalg import (
    LinAlgError, cholesky, det, inv, linalg_norm as norm, matmul, matrix_norm, qr, slogdet, solve, svd, svdvals,
)
from ._functions.linalg import linalg_cross as cross
from ._functions.reduce import vector_norm

__all__ = ["LinAlgError", "cholesky", "cross", "det", "inv", "matmul", "matrix_norm", "norm", "qr", "slogdet", "solve",
           "svd", "svdvals", "vector_norm"]
