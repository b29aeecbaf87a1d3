"""Linear algebra: products (`matmul`, `mm`, `bmm`, `einsum`, ...), triangles and diagonals, and
the `tapegrad.linalg` functions (`inv`, `det`, `solve`, `cholesky`, `qr`, `svd`, `norm`).
"""
from __future__ import annotations

import builtins
import collections
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from .._core import checks as _checks, dtype as _dtype
from .._core.dims import normalize_dim
from .._core.graph import Op, SAVES_NONE, SAVES_OUTPUT
from .._core.rows import variadic
from .._tensor import views as _views
from .._tensor.apply import apply, autocast_args
from .._tensor.checked import checked
from .._tensor.methods import method
from .._tensor.tensor import Tensor
from .creation import eye, zeros
from .pointwise import add, mul, scaled
from .reduce import sum as sum_, vector_norm


def _matmul_check(a, b, **static) -> None:
    sa, sb = a.shape, b.shape
    if not sa or not sb:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are "
                           f"{len(sa)}D and {len(sb)}D")
    k_a = sa[-1]
    k_b = sb[0] if len(sb) == 1 else sb[-2]
    if k_a != k_b:
        if len(sa) == 2 and len(sb) == 2:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied "
                               f"({sa[0]}x{sa[1]} and {sb[0]}x{sb[1]})")
        raise RuntimeError(f"size mismatch, got input ({'x'.join(map(str, sa))}) and "
                           f"other ({'x'.join(map(str, sb))}): inner dimensions {k_a} and {k_b} differ")


def _matmul(a, b, *, dtype):
    return jnp.matmul(a.astype(dtype), b.astype(dtype))


_MATMUL_NAMES = {(1, 1): "DotBackward0", (2, 1): "MvBackward0", (1, 2): "SqueezeBackward4",
                 (2, 2): "MmBackward0"}


def _matmul_grad_name(static, inputs) -> str:
    """PyTorch's matmul dispatches by rank: dot, mv, mm, or a batched product seen through a view."""
    return _MATMUL_NAMES.get((len(inputs[0].shape), len(inputs[1].shape)), "UnsafeViewBackward0")


matmul_op = Op("matmul", _matmul, promote="common", check=_matmul_check,
               grad_name=_matmul_grad_name)
bmm_op = Op("bmm", _matmul, promote="common", grad_name="BmmBackward0")


@method("matmul", "__matmul__", reflected=("__rmatmul__",))
def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with NumPy's broadcasting rules (`@`); both of one dtype, as PyTorch."""
    if isinstance(input, Tensor) and isinstance(other, Tensor):
        a, b = autocast_args(matmul_op, input, other)
        if a.dtype is not b.dtype and a.ndim and b.ndim:
            _matmul_dtypes(a, b)
    return apply(matmul_op, input, other)


def _matmul_dtypes(a: Tensor, b: Tensor) -> None:
    """PyTorch's words for a product of two dtypes, which depend on the kernel the ranks pick."""
    if a.ndim == 1 and b.ndim == 1:
        _same_dtype("dot", a, b)
    if b.ndim == 1:
        raise RuntimeError(f"addmv input tensors must have the same dtype, but got "
                           f"{_dtype.scalar_name(b.dtype)}, {_dtype.scalar_name(a.dtype)}, and "
                           f"{_dtype.scalar_name(b.dtype)}")
    if a.ndim > 2 and b.ndim > 2:
        raise RuntimeError(f"expected scalar type {_dtype.scalar_name(a.dtype)} but found "
                           f"{_dtype.scalar_name(b.dtype)}")
    _same_dtype("mm", a, b)


@method("norm")
def norm(input: Tensor, p="fro", dim=None, keepdim: builtins.bool = False, dtype=None) -> Tensor:
    """`torch.norm`: the Frobenius / 2-norm by default, a vector `p`-norm, or `p="nuc"`."""
    if p == "nuc":
        return matrix_norm(input, "nuc", dim if dim is not None else (-2, -1), keepdim)
    if p == "fro" or p is None:
        p = 2
    return vector_norm(input, p, dim, keepdim, dtype=dtype)


def _need(t: Tensor, ndim: builtins.int, what: str) -> None:
    if t.ndim != ndim:
        raise RuntimeError(f"{what} must be a matrix" if ndim == 2 else
                           f"{what} must be a {ndim}D tensor")


# the C++ type names PyTorch's mm prints where they differ from `dtype.c_name`
_MM_NAMES = {"int64": "long int", "float16": "c10::Half", "bfloat16": "c10::BFloat16",
             "complex64": "c10::complex<float>", "complex128": "c10::complex<double>"}


def _mm_name(d) -> str:
    return _MM_NAMES.get(d.name) or _dtype.c_name(d)


def _same_dtype(name: str, a: Tensor, b: Tensor) -> None:
    if a.dtype is not b.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: "
                           f"{_mm_name(a.dtype)} != {_mm_name(b.dtype)}" if name != "dot" else
                           f"dot : expected both vectors to have same dtype, but found "
                           f"{_dtype.scalar_name(a.dtype)} and {_dtype.scalar_name(b.dtype)}")


def _mm_check(input: Tensor, mat2: Tensor) -> None:
    _need(input, 2, "self")
    _need(mat2, 2, "mat2")
    _same_dtype("mm", input, mat2)


@method("mm")
def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Product of two matrices (no broadcasting)."""
    input, mat2 = autocast_args(matmul_op, input, mat2)
    _mm_check(input, mat2)
    return matmul(input, mat2)


def _bmm_check(input: Tensor, mat2: Tensor) -> None:
    _need(input, 3, "batch1")
    _need(mat2, 3, "batch2")
    if input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{input.shape[0]}, {input.shape[2]}] but got: "
                           f"[{mat2.shape[0]}, {mat2.shape[1]}].")
    _same_dtype("bmm", input, mat2)


@method("bmm")
def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched matrix product of `(b, n, m)` and `(b, m, p)` tensors."""
    input, mat2 = autocast_args(bmm_op, input, mat2)
    _bmm_check(input, mat2)
    return apply(bmm_op, input, mat2)


def _mv_check(input: Tensor, vec: Tensor) -> None:
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {input.ndim}, {vec.ndim}")


@method("mv")
def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix-vector product."""
    _mv_check(input, vec)
    return matmul(input, vec)


@method("dot", "inner")
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


def _float_pair(fn):
    def cast_then(*xs, dtype, **static):
        return fn(*(jnp.asarray(x, dtype) for x in xs), **static)
    return cast_then


outer_op = Op("outer", _float_pair(jnp.outer), promote="common", grad_name="MulBackward0")


@method("outer", "ger")
def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """`input[i] * vec2[j]`: the outer product of two 1-d tensors."""
    if input.ndim != 1 or vec2.ndim != 1:
        bad, name = (input, "self") if input.ndim != 1 else (vec2, "vec2")
        raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {bad.ndim}-D")
    return apply(outer_op, input, vec2)


ger = outer
einsum_op = Op("einsum", variadic(lambda xs, *, equation: jnp.einsum(equation, *xs)),
               promote="common")


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation: `einsum("ij,jk->ik", a, b)` (operands may also come as one list)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = operands[0]
    return apply(einsum_op, *operands, equation=equation.replace(" ", ""))


tensordot_op = Op("tensordot", _float_pair(lambda a, b, *, axes: jnp.tensordot(a, b, axes)),
                  promote="common")


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Contract the last `dims` dimensions of `a` with the first of `b` (or given dim lists)."""
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, builtins.int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        axes = dims
    else:
        da, db = dims
        da = (da,) if isinstance(da, builtins.int) else da
        db = (db,) if isinstance(db, builtins.int) else db
        axes = (builtins.tuple(normalize_dim(d, a.ndim) for d in da),
                builtins.tuple(normalize_dim(d, b.ndim) for d in db))
    return apply(tensordot_op, a, b, axes=axes)


tril_op = Op("tril", lambda x, *, diagonal: jnp.tril(x, diagonal), saves=SAVES_NONE)


@method("tril", inplace=("tril_",))
def tril(input: Tensor, diagonal: builtins.int = 0) -> Tensor:
    """The lower triangle (on and below `diagonal`) of the last two dimensions; zeros elsewhere."""
    if input.ndim < 2:
        raise RuntimeError("tril: input tensor must have at least 2 dimensions")
    return apply(tril_op, input, diagonal=builtins.int(diagonal))


triu_op = Op("triu", lambda x, *, diagonal: jnp.triu(x, diagonal), saves=SAVES_NONE)


@method("triu", inplace=("triu_",))
def triu(input: Tensor, diagonal: builtins.int = 0) -> Tensor:
    """The upper triangle (on and above `diagonal`) of the last two dimensions."""
    if input.ndim < 2:
        raise RuntimeError("triu: input tensor must have at least 2 dimensions")
    return apply(triu_op, input, diagonal=builtins.int(diagonal))


def _diag(x, *, diagonal):
    return jnp.diag(x, k=diagonal)


diag_op = Op("diag", _diag, saves=SAVES_NONE, grad_name=lambda static, inputs: (
    "DiagEmbedBackward0" if len(inputs[0].shape) == 1 else "DiagonalBackward0"))


@method("diag")
def diag(input: Tensor, diagonal: builtins.int = 0) -> Tensor:
    """A 1-d tensor becomes a diagonal matrix; a matrix gives its `diagonal`-th diagonal."""
    if input.ndim not in (1, 2):
        raise RuntimeError("diag(): Supports 1D or 2D tensors. Got " + f"{input.ndim}D")
    return apply(diag_op, input, diagonal=builtins.int(diagonal))


@method("diag_embed")
def diag_embed(input: Tensor, offset: builtins.int = 0, dim1: builtins.int = -2,
               dim2: builtins.int = -1) -> Tensor:
    n = input.shape[-1] + builtins.abs(offset)
    if (offset, dim1, dim2) != (0, -2, -1):
        raise NotImplementedError("diag_embed supports offset=0, dim1=-2, dim2=-1")
    return mul(input.unsqueeze(-1), eye(n, dtype=input.dtype))


diagonal_op = Op("diagonal", lambda x, *, offset, dim1, dim2: jnp.diagonal(x, offset, dim1, dim2),
                 saves=SAVES_NONE)


@method("diagonal")
def diagonal(input: Tensor, offset: builtins.int = 0, dim1: builtins.int = 0,
             dim2: builtins.int = 1) -> Tensor:
    """The diagonal of dimensions `dim1`, `dim2`, moved to the end (a view)."""
    d1, d2 = normalize_dim(dim1, input.ndim), normalize_dim(dim2, input.ndim)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    static = dict(offset=builtins.int(offset), dim1=d1, dim2=d2)
    return _views.track(apply(diagonal_op, input, **static), input, diagonal_op, **static)


trace_op = Op("trace", jnp.trace, saves=SAVES_NONE)


@method("trace")
def trace(input: Tensor) -> Tensor:
    """Sum of the main diagonal of a matrix."""
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    return apply(trace_op, input)


def _scaled_product(c, a, b, *, dtype, beta, alpha):
    """`beta * c + alpha * (a @ b)`; beta=0 ignores `c` (its NaNs too), as PyTorch does."""
    prod = jnp.matmul(a.astype(dtype), b.astype(dtype))
    prod = prod if alpha == 1 else alpha * prod
    if beta == 0:
        return jnp.broadcast_to(prod, jnp.broadcast_shapes(c.shape, prod.shape))
    return (c.astype(dtype) if beta == 1 else beta * c.astype(dtype)) + prod


addmm_op = Op("addmm", _scaled_product, promote="common", grad_name="AddmmBackward0")
addmv_op = Op("addmv", _scaled_product, promote="common", grad_name="AddmvBackward0")
baddbmm_op = Op("baddbmm", _scaled_product, promote="common", grad_name="BaddbmmBackward0")


@method("addmm", inplace=("addmm_",))
def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """`beta * input + alpha * (mat1 @ mat2)` (`input` broadcasts; beta=0 ignores it)."""
    input, mat1, mat2 = autocast_args(addmm_op, input, mat1, mat2)
    _mm_check(mat1, mat2)
    _matmul_check(mat1, mat2)
    return apply(addmm_op, input, mat1, mat2, beta=beta, alpha=alpha)


@method("addmv", inplace=("addmv_",))
def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:
    """`beta * input + alpha * (mat @ vec)`."""
    _mv_check(mat, vec)
    _matmul_check(mat, vec)
    return apply(addmv_op, input, mat, vec, beta=beta, alpha=alpha)


@method("baddbmm", inplace=("baddbmm_",))
def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """`beta * input + alpha * (batch1 @ batch2)`, batched."""
    input, batch1, batch2 = autocast_args(baddbmm_op, input, batch1, batch2)
    _bmm_check(batch1, batch2)
    _matmul_check(batch1, batch2)
    return apply(baddbmm_op, input, batch1, batch2, beta=beta, alpha=alpha)


@method("addbmm")
def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    prod = scaled(sum_(bmm(batch1, batch2), 0), alpha)
    return prod if beta == 0 else add(scaled(input, beta), prod)


# -- tapegrad.linalg ------------------------------------------------------------------------------
def _square(name: str, A: Tensor) -> None:
    if A.ndim < 2:
        raise RuntimeError(f"linalg.{name}: The input tensor A must have at least 2 dimensions.")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.{name}: A must be batches of square matrices, but they are "
                           f"{A.shape[-2]} by {A.shape[-1]} matrices")
    _floating(name, A)


def _floating(name: str, A: Tensor) -> None:
    if not (A.dtype.is_floating_point or A.dtype.is_complex):
        raise RuntimeError(f"linalg.{name}: Expected a floating point or complex tensor as input. "
                           f"Got {_dtype.scalar_name(A.dtype)}")


class LinAlgError(RuntimeError):
    """A factorization or inversion failed (a singular or non positive-definite input), as
    `torch.linalg.LinAlgError`. Checked on the computed result: where it is not finite."""


def _factored(out: Tensor, name: str, message: str) -> Tensor:
    return checked(out, name, _checks.not_finite, (), LinAlgError, f"{name}: {message}")


inv_op = Op("linalg_inv", jnp.linalg.inv, saves=SAVES_OUTPUT)


@method("inverse")
def inv(A: Tensor) -> Tensor:
    """The inverse of a (batch of) square matrices; a singular one raises `LinAlgError` where the
    inverse is computed (a non-finite result)."""
    _square("inv", A)
    return _factored(apply(inv_op, A), "linalg.inv", "The inversion could not be completed "
                     "because the input matrix is singular.")


inverse = inv
det_op = Op("linalg_det", jnp.linalg.det)


@method("det")
def det(A: Tensor) -> Tensor:
    """The determinant of a (batch of) square matrices."""
    _square("det", A)
    return apply(det_op, A)


SlogdetResult = collections.namedtuple("slogdet", ["sign", "logabsdet"])
slogdet_op = Op("linalg_slogdet", jnp.linalg.slogdet, n_out=2)


@method("slogdet")
def slogdet(A: Tensor):
    """`(sign, log|det|)`, stable for large or small determinants."""
    _square("slogdet", A)
    return SlogdetResult(*apply(slogdet_op, A))


solve_op = Op("linalg_solve", _float_pair(lambda a, b, *, left: jnp.linalg.solve(a, b) if left else
                                       jnp.linalg.solve(jnp.swapaxes(a, -1, -2),
                                                        jnp.swapaxes(b, -1, -2)).swapaxes(-1, -2)),
              promote="common")


def solve(A: Tensor, B: Tensor, *, left: builtins.bool = True) -> Tensor:
    """`X` with `A @ X = B` (or `X @ A = B` for `left=False`)."""
    _square("solve", A)
    if B.ndim == A.ndim - 1 and left:
        out = apply(solve_op, A, B.unsqueeze(-1), left=True).squeeze(-1)
    else:
        out = apply(solve_op, A, B, left=left)
    return _factored(out, "torch.linalg.solve", "The solver failed because the input matrix is "
                     "singular.")


cholesky_op = Op("linalg_cholesky", lambda x, *, upper: (
    jnp.swapaxes(jnp.linalg.cholesky(x), -1, -2).conj() if upper else jnp.linalg.cholesky(x)),
    saves=SAVES_OUTPUT)


@method("cholesky")
def cholesky(A: Tensor, *, upper: builtins.bool = False) -> Tensor:
    """`L` with `A = L @ L.mH` for a Hermitian positive-definite `A` (`LinAlgError` if it is not,
    where computed)."""
    _square("cholesky", A)
    return _factored(apply(cholesky_op, A, upper=upper), "linalg.cholesky", "The factorization "
                     "could not be completed because the input is not positive-definite.")


QRResult = collections.namedtuple("qr", ["Q", "R"])
SVDResult = collections.namedtuple("svd", ["U", "S", "Vh"])
qr_op = Op("linalg_qr", lambda x, *, mode: jnp.linalg.qr(x, mode=mode), n_out=2)


def qr(A: Tensor, mode: str = "reduced"):
    """`(Q, R)` with `A = Q @ R`; `mode` is "reduced", "complete" or "r"."""
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of "
                           f"'reduced' (default), 'r', or 'complete'")
    _floating("qr", A)
    if mode == "r":
        return QRResult(zeros(0, dtype=A.dtype), apply(qr_op, A, mode="reduced")[1])
    return QRResult(*apply(qr_op, A, mode=mode))


svd_op = Op("linalg_svd", lambda x, *, full_matrices: jnp.linalg.svd(x, full_matrices=full_matrices),
            n_out=3)


def svd(A: Tensor, full_matrices: builtins.bool = True, *, driver=None):
    """`(U, S, Vh)` with `A = U @ diag(S) @ Vh`."""
    _floating("svd", A)
    return SVDResult(*apply(svd_op, A, full_matrices=full_matrices))


def svdvals(A: Tensor) -> Tensor:
    return svd(A, full_matrices=False)[1]


matrix_norm_op = Op("linalg_matrix_norm", lambda x, *, ord, dim, keepdim: jnp.linalg.norm(  # noqa: A002
    x, ord=ord, axis=dim, keepdims=keepdim))


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
    return apply(matrix_norm_op, A, ord=ord, dim=dim, keepdim=keepdim)


def linalg_norm(A: Tensor, ord=None, dim=None, keepdim: builtins.bool = False, *, dtype=None) -> Tensor:
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


# -- cross products and pairwise distances ---------------------------------------------------------
def _cross(a, b, *, dim, dtype):
    a, b = jnp.broadcast_arrays(jnp.asarray(a, dtype), jnp.asarray(b, dtype))
    return jnp.cross(a, b, axis=dim)


cross_op = Op("cross", _cross, promote="common", grad_name="LinalgCrossBackward0")


def linalg_cross(input: Tensor, other: Tensor, *, dim: builtins.int = -1) -> Tensor:
    """The cross product of 3-vectors along `dim`, broadcasting the other dimensions."""
    ndim = builtins.max(input.ndim, other.ndim)
    d = normalize_dim(dim, ndim)
    sizes = [t.shape[d - ndim + t.ndim] if d - ndim + t.ndim >= 0 else 1 for t in (input, other)]
    if sizes != [3, 3]:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got "
                           f"{sizes[0]} and {sizes[1]}")
    return apply(cross_op, input, other, dim=d)


@method("cross")
def cross(input: Tensor, other: Tensor, dim: builtins.int | None = None) -> Tensor:
    """`linalg.cross` along `dim`; without `dim`, along the first dimension of size 3 (PyTorch's
    deprecated default, with its warning)."""
    if dim is None:
        warnings.warn("Using torch.cross without specifying the dim arg is deprecated.\nPlease "
                      "either pass the dim explicitly or simply use torch.linalg.cross.\nThe "
                      "default value of dim will change to agree with that of linalg.cross in a "
                      "future release.", UserWarning, stacklevel=2)
        shape = jnp.broadcast_shapes(input.shape, other.shape)
        if 3 not in shape:
            raise RuntimeError("no dimension of size 3 in input")
        dim = shape.index(3)
    return linalg_cross(input, other, dim=dim)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _pairwise(x1, x2, p):
    diff = jnp.abs(x1[..., :, None, :] - x2[..., None, :, :])
    if p == 0:
        return jnp.sum(diff != 0, axis=-1).astype(x1.dtype)
    if p == 1:
        return jnp.sum(diff, axis=-1)
    if p == np.inf:
        return jnp.max(diff, axis=-1)
    return jnp.sum(diff ** p, axis=-1) ** (1 / p)


@_pairwise.defjvp
def _pairwise_jvp(p, primals, tangents):
    # PyTorch's cdist backward: 0 where the distance is 0 (and, for p < 1, where a coordinate
    # difference is 0); for p = inf the whole gradient to every coordinate at the maximum
    (x1, x2), (dx1, dx2) = primals, tangents
    dist = _pairwise(x1, x2, p)
    diff = x1[..., :, None, :] - x2[..., None, :, :]
    ddiff = dx1[..., :, None, :] - dx2[..., None, :, :]
    d = dist[..., None]
    sign, size = jnp.sign(diff), jnp.abs(diff)
    zero = jnp.zeros_like(diff)
    if p == 0:
        coef = zero
    elif p == 1:
        coef = sign
    elif p == np.inf:
        coef = sign * (size == d)
    elif p == 2:
        coef = jnp.where(d == 0, zero, diff / jnp.where(d == 0, 1, d))
    else:
        safe_d, safe_size = jnp.where(d == 0, 1, d), jnp.where(size == 0, 1, size)
        coef = jnp.where((d == 0) | (size == 0), zero,
                         sign * safe_size ** (p - 1) / safe_d ** (p - 1))
    return dist, jnp.sum(coef * ddiff, axis=-1)


def _cdist(x1, x2, *, p, dtype):
    x1, x2 = jnp.asarray(x1, dtype), jnp.asarray(x2, dtype)
    batch = jnp.broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
    x1 = jnp.broadcast_to(x1, batch + x1.shape[-2:])
    x2 = jnp.broadcast_to(x2, batch + x2.shape[-2:])
    return _pairwise(x1, x2, p)


cdist_op = Op("cdist", _cdist, promote="common")


def cdist(x1: Tensor, x2: Tensor, p: builtins.float = 2.0,
          compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """The `p`-norm distance between each row of `x1` (`... x P x M`) and each row of `x2`
    (`... x R x M`): `... x P x R`, the batch dimensions broadcast. Computed directly for every
    `compute_mode` (PyTorch's matrix-product route for p = 2 differs in rounding only)."""
    for name, t in (("X1", x1), ("X2", x2)):
        if t.ndim < 2:
            raise RuntimeError(f"cdist only supports at least 2D tensors, {name} got: {t.ndim}D")
        if not t.dtype.is_floating_point:
            raise RuntimeError(f"cdist only supports floating-point dtypes, {name} got: "
                               f"{_dtype.scalar_name(t.dtype)}")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} "
                           f"X2: {x2.shape[-1]}")
    if p < 0:
        raise RuntimeError("cdist only supports non-negative p values")
    return apply(cdist_op, x1, x2, p=builtins.float(p))
