"""Linear algebra: products (`mm`, `bmm`, `einsum`, ...), triangles and diagonals, and the
`tapegrad.linalg` functions (`inv`, `det`, `solve`, `cholesky`, `qr`, `svd`, norms).
"""
from __future__ import annotations

import builtins
import collections

from . import _ops, _views
from ._functions import matmul, mul, add
from ._functions_reduce import vector_norm  # noqa: F401  (re-exported by tapegrad.linalg)
from ._record import apply
from ._tensor import Tensor, normalize_dim


def _need(t: Tensor, ndim: builtins.int, what: str) -> None:
    if t.ndim != ndim:
        raise RuntimeError(f"{what} must be a matrix" if ndim == 2 else
                           f"{what} must be a {ndim}D tensor")


_C_NAMES = {"float32": "float", "float64": "double", "int64": "long", "int32": "int"}


def _same_dtype(name: str, a: Tensor, b: Tensor) -> None:
    if a.dtype is not b.dtype:
        from ._methods import _type_name
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: "
                           f"{_C_NAMES.get(a.dtype.name, a.dtype.name)} != "
                           f"{_C_NAMES.get(b.dtype.name, b.dtype.name)}" if name != "dot" else
                           f"dot : expected both vectors to have same dtype, but found "
                           f"{_type_name(a.dtype)} and {_type_name(b.dtype)}")


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Product of two matrices (no broadcasting)."""
    _need(input, 2, "self")
    _need(mat2, 2, "mat2")
    _same_dtype("mm", input, mat2)
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched matrix product of `(b, n, m)` and `(b, m, p)` tensors."""
    _need(input, 3, "batch1")
    _need(mat2, 3, "batch2")
    if input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{input.shape[0]}, {input.shape[2]}] but got: "
                           f"[{mat2.shape[0]}, {mat2.shape[1]}].")
    _same_dtype("bmm", input, mat2)
    return matmul(input, mat2)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix-vector product."""
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {input.ndim}, {vec.ndim}")
    return matmul(input, vec)


def dot(input: Tensor, tensor: Tensor) -> Tensor:
    """Inner product of two 1-d tensors of the same size and dtype."""
    if input.ndim != 1 or tensor.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {tensor.ndim}D tensors")
    if input.shape != tensor.shape:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{input.shape[0]}] and src "
                           f"[{tensor.shape[0]}] to have the same number of elements, but got "
                           f"{input.shape[0]} and {tensor.shape[0]} elements respectively")
    _same_dtype("dot", input, tensor)
    return matmul(input, tensor)


inner = dot


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """`input[i] * vec2[j]`: the outer product of two 1-d tensors."""
    if input.ndim != 1 or vec2.ndim != 1:
        bad, name = (input, "self") if input.ndim != 1 else (vec2, "vec2")
        raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {bad.ndim}-D")
    return apply(_ops.outer, input, vec2)


ger = outer


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation: `einsum("ij,jk->ik", a, b)` (operands may also come as one list)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = operands[0]
    return apply(_ops.einsum, *operands, equation=equation.replace(" ", ""))


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Contract the last `dims` dimensions of `a` with the first of `b` (or given dim lists)."""
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, builtins.int):
        axes = dims
    else:
        da, db = dims
        da = (da,) if isinstance(da, builtins.int) else da
        db = (db,) if isinstance(db, builtins.int) else db
        axes = (builtins.tuple(normalize_dim(d, a.ndim) for d in da),
                builtins.tuple(normalize_dim(d, b.ndim) for d in db))
    return apply(_ops.tensordot, a, b, axes=axes)


def tril(input: Tensor, diagonal: builtins.int = 0) -> Tensor:
    """The lower triangle (on and below `diagonal`) of the last two dimensions; zeros elsewhere."""
    if input.ndim < 2:
        raise RuntimeError("tril: input tensor must have at least 2 dimensions")
    return apply(_ops.tril, input, diagonal=builtins.int(diagonal))


def triu(input: Tensor, diagonal: builtins.int = 0) -> Tensor:
    """The upper triangle (on and above `diagonal`) of the last two dimensions."""
    if input.ndim < 2:
        raise RuntimeError("triu: input tensor must have at least 2 dimensions")
    return apply(_ops.triu, input, diagonal=builtins.int(diagonal))


def diag(input: Tensor, diagonal: builtins.int = 0) -> Tensor:
    """A 1-d tensor becomes a diagonal matrix; a matrix gives its `diagonal`-th diagonal."""
    if input.ndim not in (1, 2):
        raise RuntimeError("diag(): Supports 1D or 2D tensors. Got " + f"{input.ndim}D")
    return apply(_ops.diag, input, diagonal=builtins.int(diagonal))


def diag_embed(input: Tensor, offset: builtins.int = 0, dim1: builtins.int = -2,
               dim2: builtins.int = -1) -> Tensor:
    from ._factory import eye
    n = input.shape[-1] + builtins.abs(offset)
    if (offset, dim1, dim2) != (0, -2, -1):
        raise NotImplementedError("diag_embed supports offset=0, dim1=-2, dim2=-1")
    return mul(input.unsqueeze(-1), eye(n, dtype=input.dtype))


def diagonal(input: Tensor, offset: builtins.int = 0, dim1: builtins.int = 0,
             dim2: builtins.int = 1) -> Tensor:
    """The diagonal of dimensions `dim1`, `dim2`, moved to the end (a view)."""
    d1, d2 = normalize_dim(dim1, input.ndim), normalize_dim(dim2, input.ndim)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    static = dict(offset=builtins.int(offset), dim1=d1, dim2=d2)
    return _views.track(apply(_ops.diagonal, input, **static), input, _ops.diagonal, **static)


def trace(input: Tensor) -> Tensor:
    """Sum of the main diagonal of a matrix."""
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    return apply(_ops.trace, input)


def _scaled(x, c):
    return x if c == 1 else mul(x, c)


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """`beta * input + alpha * (mat1 @ mat2)` (`input` broadcasts; beta=0 ignores it)."""
    prod = _scaled(mm(mat1, mat2), alpha)
    return prod if beta == 0 else add(_scaled(input, beta), prod)


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:
    prod = _scaled(mv(mat, vec), alpha)
    return prod if beta == 0 else add(_scaled(input, beta), prod)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """`beta * input + alpha * (batch1 @ batch2)`, batched."""
    prod = _scaled(bmm(batch1, batch2), alpha)
    return prod if beta == 0 else add(_scaled(input, beta), prod)


def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    from ._functions import sum as sum_
    prod = _scaled(sum_(bmm(batch1, batch2), 0), alpha)
    return prod if beta == 0 else add(_scaled(input, beta), prod)


# -- tapegrad.linalg ------------------------------------------------------------------------------
def _square(name: str, A: Tensor) -> None:
    if A.ndim < 2:
        raise RuntimeError(f"linalg.{name}: The input tensor A must have at least 2 dimensions.")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.{name}: A must be batches of square matrices, but they are "
                           f"{A.shape[-2]} by {A.shape[-1]} matrices")
    if not (A.dtype.is_floating_point or A.dtype.is_complex):
        raise RuntimeError(f"linalg.{name}: Expected a floating point or complex tensor as input. "
                           f"Got {A.dtype.name.capitalize()}")


def inv(A: Tensor) -> Tensor:
    """The inverse of a (batch of) square matrices (a singular matrix gives inf/nan, not an error:
    XLA cannot raise from inside a computation)."""
    _square("inv", A)
    return apply(_ops.inv, A)


inverse = inv


def det(A: Tensor) -> Tensor:
    """The determinant of a (batch of) square matrices."""
    _square("det", A)
    return apply(_ops.det, A)


SlogdetResult = collections.namedtuple("slogdet", ["sign", "logabsdet"])


def slogdet(A: Tensor):
    """`(sign, log|det|)`, stable for large or small determinants."""
    _square("slogdet", A)
    return SlogdetResult(*apply(_ops.slogdet, A))


def solve(A: Tensor, B: Tensor, *, left: builtins.bool = True) -> Tensor:
    """`X` with `A @ X = B` (or `X @ A = B` for `left=False`)."""
    _square("solve", A)
    if B.ndim == A.ndim - 1 and left:
        return apply(_ops.solve, A, B.unsqueeze(-1), left=True).squeeze(-1)
    return apply(_ops.solve, A, B, left=left)


def cholesky(A: Tensor, *, upper: builtins.bool = False) -> Tensor:
    """`L` with `A = L @ L.mH` for a Hermitian positive-definite `A` (NaNs if it is not)."""
    _square("cholesky", A)
    return apply(_ops.cholesky, A, upper=upper)


QRResult = collections.namedtuple("qr", ["Q", "R"])
SVDResult = collections.namedtuple("svd", ["U", "S", "Vh"])


def qr(A: Tensor, mode: str = "reduced"):
    """`(Q, R)` with `A = Q @ R`; `mode` is "reduced", "complete" or "r"."""
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of "
                           f"'reduced' (default), 'r', or 'complete'")
    if mode == "r":
        from ._factory import zeros
        return QRResult(zeros(0, dtype=A.dtype), apply(_ops.qr, A, mode="reduced")[1])
    return QRResult(*apply(_ops.qr, A, mode=mode))


def svd(A: Tensor, full_matrices: builtins.bool = True, *, driver=None):
    """`(U, S, Vh)` with `A = U @ diag(S) @ Vh`."""
    return SVDResult(*apply(_ops.svd, A, full_matrices=full_matrices))


def svdvals(A: Tensor) -> Tensor:
    return svd(A, full_matrices=False)[1]


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: builtins.bool = False, *,
                dtype=None) -> Tensor:
    """A matrix norm: "fro", "nuc", inf, -inf, 1, -1, 2 or -2, over the two dimensions `dim`."""
    if dtype is not None:
        A = A.to(dtype)
    dim = builtins.tuple(normalize_dim(d, A.ndim) for d in dim)
    if ord == "fro":
        return vector_norm(A, 2, dim, keepdim)
    ord = ord if isinstance(ord, str) else builtins.float(ord)  # noqa: A001
    if ord not in ("nuc", 1.0, -1.0, 2.0, -2.0, float("inf"), -float("inf")):
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    return apply(_ops.matrix_norm, A, ord=ord, dim=dim, keepdim=keepdim)


def norm(A: Tensor, ord=None, dim=None, keepdim: builtins.bool = False, *, dtype=None) -> Tensor:
    """`linalg.norm`: a vector norm (1-d input or int `dim`) or a matrix norm (2-d / 2-tuple)."""
    if isinstance(dim, builtins.int):
        dim = (dim,)
    if ord is None:
        return vector_norm(A, 2, dim, keepdim, dtype=dtype)
    if dim is None:
        dim = builtins.tuple(range(A.ndim)) if A.ndim in (1, 2) else None
        if dim is None:
            raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must "
                               f"be 1D or 2D. Got {A.ndim}D.")
    if len(dim) == 2:
        return matrix_norm(A, ord, dim, keepdim, dtype=dtype)
    return vector_norm(A, ord, dim, keepdim, dtype=dtype)


METHODS = {
    "mm": mm, "bmm": bmm, "mv": mv, "dot": dot, "inner": dot, "outer": outer, "ger": outer,
    "tril": tril, "triu": triu, "diag": diag, "diag_embed": diag_embed, "diagonal": diagonal,
    "trace": trace, "addmm": addmm, "addmv": addmv, "baddbmm": baddbmm, "addbmm": addbmm,
    "inverse": inv, "det": det, "slogdet": slogdet, "cholesky": cholesky,
}

INPLACE = {"tril_": tril, "triu_": triu, "addmm_": addmm, "baddbmm_": baddbmm, "addmv_": addmv}
