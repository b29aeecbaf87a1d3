"""The tensor vocabulary against PyTorch (where installed): the same program runs in both
libraries on the same data; values, dtypes and gradients must agree. Ties, type promotion, views
written in place and error types are included."""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")

_R = np.random.default_rng(7)


def r(*shape, lo=-2.0, hi=2.0):
    return _R.uniform(lo, hi, shape)


def pos(*shape):
    return r(*shape, lo=0.5, hi=2.0)


TIES = np.array([[1.0, 3.0, 3.0, -1.0], [2.0, 2.0, 0.0, 0.0], [0.0, -1.0, 0.0, 5.0]])
IDX = np.array([[0, 2, 2], [1, 0, 1]])

# (name, program over a module `m` (torch or tapegrad) and tensors, inputs). Float inputs are
# float64 leaves that require grad; int64 / bool arrays are constants.
PROGRAMS = [
    # elementwise
    ("unary_chain", lambda m, x: m.expm1(x).tanh() + m.log1p(x.abs()) + m.rsqrt(x * x + 1)
     + m.erf(x) + m.sinh(x) * m.cosh(x) + m.atan(x) + m.log2(x.abs() + 1) + m.log10(x * x + 1),
     [r(3, 4)]),
    ("trig", lambda m, x: m.tan(x) + m.asin(x) + m.acos(x) + m.erfinv(x) + m.sigmoid(x),
     [r(3, 4, lo=-0.9, hi=0.9)]),
    ("rounding", lambda m, x: m.floor(x) + m.ceil(x) + m.round(x) + m.trunc(x) + m.frac(x) * x
     + m.sign(x) * x, [r(3, 4)]),
    ("round_half_even", lambda m, x: m.round(x), [np.array([0.5, 1.5, 2.5, -0.5, -1.5])]),
    ("round_decimals", lambda m, x: m.round(x, decimals=1), [np.array([0.123, 1.26, -2.35])]),
    ("binary", lambda m, a, b: m.atan2(a, b) + m.logaddexp(a, b) + m.fmod(a, b) * 2
     + m.remainder(a, b) + m.maximum(a, b) - m.minimum(a, b) + m.lerp(a, b, 0.3),
     [r(3, 4), pos(4)]),
    ("fmod_remainder_signs", lambda m, a, b: m.fmod(a, b) + 10 * m.remainder(a, b),
     [np.array([-7.0, 7.0, -7.5, 7.5]), np.array([2.0, -2.0, 2.0, -3.0])]),
    ("square_reciprocal", lambda m, x: m.square(x) + m.reciprocal(x) + x.pow(3) + 2 ** x,
     [pos(2, 3)]),
    ("where_clamp", lambda m, x, y: m.where(x > 0, x, y) + x.clamp(min=-0.5) + m.clip(y, -1, 1)
     + m.clamp(x, min=y), [r(3, 4), r(4)]),
    ("nan_to_num", lambda m, x: m.nan_to_num(x * 2, nan=1.0, neginf=-5.0) + m.nan_to_num(x),
     [np.array([1.0, np.nan, np.inf, -np.inf])]),
    ("predicates", lambda m, x: m.stack([m.isnan(x), m.isinf(x), m.isfinite(x)]),
     [np.array([1.0, np.nan, np.inf, -np.inf])]),
    ("logic", lambda m, x, y: m.stack([(x > 0) & (y > 0), (x > 0) | (y < 0), (x > 0) ^ (y > 0),
                                       ~(x > 0), m.logical_and(x, y), m.logical_or(x > 0, y),
                                       m.logical_xor(x, y > 0), m.logical_not(x)]),
     [np.array([1.0, 0.0, -2.0, 3.0]), np.array([0.0, 0.0, 1.0, -1.0])]),
    ("compare", lambda m, x, y: m.stack([x == y, x != y, x < y, x <= y, x > y, x >= y,
                                         m.eq(x, 1.0), m.ge(x, y), m.lt(y, 0)]),
     [np.array([1.0, 2.0, -1.0]), np.array([1.0, 0.0, 3.0])]),
    ("bitwise_int", lambda m, a, b: m.stack([a & b, a | b, a ^ b, ~a, m.bitwise_and(a, 6)]),
     [np.array([12, 5, -3]), np.array([10, 4, 7])]),
    # ties
    ("relu_abs_at_zero", lambda m, x: m.relu(x) + m.abs(x) * 2 + x.clamp(0.0, 1.0) * 3,
     [np.array([-1.0, 0.0, 0.5, 1.0, 2.0])]),
    ("max_full_ties", lambda m, x: x.max() + x.min() * 2, [TIES]),
    ("max_dim_ties", lambda m, x: x.max(1).values + x.min(dim=1)[0] * 2, [TIES]),
    ("max_dim_indices", lambda m, x: m.stack([x.max(1).indices, x.min(0, keepdim=True)[1][0, :3],
                                              x.argmax(1), x.argmin(1)]), [TIES]),
    ("argmax_flat", lambda m, x: m.stack([x.argmax(), x.argmin()]), [TIES]),
    ("amax_ties", lambda m, x: m.amax(x, 1) + m.amin(x, (0, 1)) + x.amax(), [TIES]),
    ("maximum_ties", lambda m, x, y: m.maximum(x, y) + m.minimum(x, y) * 2,
     [np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])]),
    # median/kthvalue pick an unspecified index among equal values in PyTorch: distinct values
    ("median", lambda m, x: x.median() + x.median(1).values.sum(), [r(3, 4)]),
    ("median_indices", lambda m, x: x.median(1).indices, [np.array([[1.0, 3.0, 2.0, 0.0]])]),
    ("sort_ties", lambda m, x: x.sort(1).values * m.arange(4.0) + x.sort(0, True)[0],
     [TIES]),
    ("norm_zero", lambda m, x: x.norm() + m.linalg.vector_norm(x, 3) + x.norm(p=1),
     [np.zeros(3)]),
    ("norm_inf_ties", lambda m, x: m.linalg.vector_norm(x, float("inf")),
     [np.array([1.0, -3.0, 3.0])]),
    ("prod_zero", lambda m, x: x.prod() + x.prod(0).sum() + x.cumprod(0).sum(),
     [np.array([[2.0, 0.0], [3.0, 4.0], [0.5, 0.0]])]),
    # reductions
    ("reductions", lambda m, x: x.sum((0, 2)).sum() + x.mean(1, keepdim=True).sum()
     + x.var() + x.std(1).sum() + x.var(0, unbiased=False).sum() + m.var(x, 2, correction=0).sum()
     + x.prod(1).sum() + m.logsumexp(x, (1, 2)).sum() + x.cumsum(2).sum() + x.norm(dim=1).sum()
     + x.norm(2, (0, 1)).sum(), [r(2, 3, 4)]),
    ("kthvalue", lambda m, x: x.kthvalue(2, 0).values + x.kthvalue(3, 0, True)[0], [r(4, 3)]),
    ("bool_reductions", lambda m, x: m.stack([(x > 0).all(), (x > 0).any(), (x > 0).all(1).sum(),
                                              m.count_nonzero(x > 0)]), [r(3, 4)]),
    ("sum_int", lambda m, a: m.stack([a.sum(), a.prod(), a.cumsum(0)[-1]]), [np.array([1, 2, 3])]),
    # shape and views
    ("shapes", lambda m, x: x.view(2, 6).t().reshape(-1, 3).flatten().unflatten(0, (4, 3))
     .permute(1, 0).unsqueeze(0).squeeze().transpose(0, 1).movedim(0, 1).mT.contiguous()
     .flip(0).roll(1, 1).repeat(2, 1).tile((1, 2)), [r(3, 4)]),
    ("split_chunk", lambda m, x: m.cat([m.stack(x.split(2, 1), 0).sum(0),
                                        m.stack(x.chunk(2, 1)).sum(0)], 1)
     + m.stack(x.unbind(1), 1) * 0 + x.narrow(1, 1, 3).sum(), [r(3, 4)]),
    ("cat_stack", lambda m, a, b: m.cat([a, b.t()], 0).sum(0) + m.stack([a, a], -1).sum(-1).sum(0)
     + m.hstack([a, a]).sum(1).sum() + m.vstack([a, b.t()]).sum(), [r(2, 3), r(3, 1)]),
    ("expand", lambda m, x: x.expand(2, 3, 4) + x.expand_as(m.ones(3, 4)).sum(), [r(3, 1)]),
    ("indexing", lambda m, x, i, k: x[1:, ::2].sum() + x[-1, None, ..., 0].sum() + x[i].sum()
     + x[:, i[0]].sum() + x[x > 0].sum() + x[k].sum() + x.masked_select(x < 0).sum()
     + x[[0, 2]].sum(), [r(3, 4), np.array([[0, 2], [2, 2]]), np.array([True, False, True])]),
    ("gather_scatter", lambda m, x, i, s: x.gather(1, i).sum() + x.scatter(1, i, s).sum(1)
     + x.scatter_add(1, i, s * 2).sum(0).sum() + x.scatter(0, i % 2, 0.5).sum(),
     [r(2, 4), IDX, r(2, 3)]),
    ("index_ops", lambda m, x, i, s: x.index_select(1, i).sum(0) + x.index_add(1, i, s).sum(0)[:3]
     + m.take_along_dim(x, i[None], 1).sum(0) + x.masked_fill(x > 0, -1.0).sum(0)[:3]
     + x.take(i).sum(), [r(2, 4), np.array([3, 0, 3]), r(2, 3)]),
    ("repeat_interleave", lambda m, x: x.repeat_interleave(2, 1).sum(0)[:3]
     + m.repeat_interleave(x, m.tensor([1, 0, 2]), dim=0).sum(1)
     + x.repeat_interleave(2)[:3] + x.clamp_min(0.1).sum(0) + x.clamp_max(0.2).sum(0), [r(3, 3)]),
    ("put_infinite_values", lambda m, x, v: _put_inf(m, x, v), [r(3), np.array([1.0, 2.0])]),
    ("masked_fill_tensor", lambda m, x, v: x.masked_fill(x > 0, v), [r(2, 3), np.array(0.5)]),
    ("setitem", lambda m, x, v: _setitem(x, v), [r(3, 4), r(4)]),
    # linear algebra
    ("products", lambda m, a, b, v: (a @ b).sum() + m.mm(a, b).sum() + m.mv(a, v).sum()
     + m.dot(v, v) + m.outer(v, v).sum() + m.einsum("ij,jk->ik", a, b).sum()
     + m.tensordot(a, b, 1).sum() + m.addmm(b[0], a, b, beta=0.5, alpha=2).sum(),
     [r(2, 3), r(3, 4), r(3)]),
    ("batched", lambda m, a, b, c: m.bmm(a, b).sum() + m.baddbmm(c, a, b, alpha=0.5).sum()
     + m.matmul(a, b[0]).sum(), [r(2, 2, 3), r(2, 3, 2), r(2, 1, 2)]),
    ("triangles", lambda m, x: x.tril().sum() + x.triu(1).sum(0).sum() + x.diag().sum()
     + m.diag(x[0]).sum(1).sum() + x.diagonal(1).sum() + x.trace(), [r(4, 4)]),
    ("linalg", lambda m, x, b: m.linalg.inv(x).sum() + m.linalg.det(x) + m.linalg.solve(x, b).sum()
     + m.linalg.slogdet(x)[1] + m.linalg.cholesky(x @ x.mT + m.eye(3, dtype=x.dtype)).sum()
     + m.linalg.norm(x) + m.linalg.matrix_norm(x, "nuc") + m.linalg.norm(x, 2)
     + m.linalg.svd(x).S.sum() + m.linalg.qr(x).R.diagonal().abs().sum(),
     [np.eye(3) * 2 + r(3, 3, lo=-0.3, hi=0.3), r(3, 2)]),
    # sorting and selection
    ("sort_topk", lambda m, x: x.sort(0).values.sum(1) + x.topk(2).values.sum()
     + x.topk(2, 0, largest=False)[0].sum(), [r(3, 4)]),
    ("sort_indices", lambda m, x: m.stack([x.argsort(1), x.sort(1, descending=True).indices,
                                           m.cat([x.topk(2).indices, x.topk(2).indices], 1)]),
     [np.array([[3.0, 1.0, 2.0, 0.0], [0.0, 5.0, -1.0, 4.0]])]),
    ("searchsorted", lambda m, s, v: m.stack([m.searchsorted(s, v), m.searchsorted(s, v, right=True),
                                              m.bucketize(v, s)]),
     [np.array([0.0, 1.0, 1.0, 3.0]), np.array([1.0, 2.0, -1.0, 9.0])]),
    # type promotion
    ("promotion", lambda m, i, f: m.stack([(i + f).to(m.float64), i / i, (i * 2.5), i + True]),
     [np.array([1, 2, 3]), np.array([0.5, 1.0, 2.0], np.float32)]),
]


def _put_inf(m, x, v):
    w = m.cat([v[:1], v[1:] * float("-inf")])  # -inf written by index_put and scatter
    y = x * 1
    y[m.tensor([0, 0])] = w[1]
    y[m.tensor([1, 2])] = w
    z = x.scatter(0, m.tensor([2, 2]), w)
    return y.exp() + z.exp()


def _setitem(x, v):
    y = x * 1
    y[0] = v
    y[1:, 2] = 7.0
    y[y < -1.5] = 0.0
    y[[0, 0, 2]] = v[:3].unsqueeze(1) * 2  # repeated index: every repeat gets the gradient
    return y


def _run(m, fn, arrays):
    xs = []
    for a in arrays:
        a = np.asarray(a)
        if a.dtype.kind == "f":
            xs.append(m.tensor(a, requires_grad=True))
        else:
            xs.append(m.tensor(a))
    out = fn(m, *xs)
    grads = []
    if out.requires_grad:
        ct = np.random.default_rng(0).standard_normal(tuple(out.shape))
        out.backward(m.tensor(ct, dtype=out.dtype))
        grads = [x.grad for x in xs if x.requires_grad]
    return out, grads


def _np(t):
    if t is None:
        return None
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t.detach().numpy()


@pytest.mark.parametrize("name, fn, arrays", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_matches_pytorch(name, fn, arrays):
    expected, expected_grads = _run(torch, fn, arrays)
    got, grads = _run(tg, fn, arrays)
    assert tuple(got.shape) == tuple(expected.shape)
    assert got.dtype.name == str(expected.dtype).replace("torch.", "")
    np.testing.assert_allclose(_np(got), _np(expected), rtol=1e-6, atol=1e-8)
    assert len(grads) == len(expected_grads)
    for g, e in zip(grads, expected_grads):
        if e is None:
            assert g is None or not np.any(_np(g))
            continue
        np.testing.assert_allclose(_np(g), _np(e), rtol=1e-6, atol=1e-8)


# -- mixed advanced indexing: where the index tensors' dimensions go ---------------------------
# PyTorch selects with the integers first, then places the index tensors' dimensions where the
# (remaining) advanced indices are, or first when those are not adjacent; numpy differs.
ADVANCED = ["1,:,3:11:2,D,0:2", ":,1,:,D", ":,D,:,1", "D,:,1", "1,D", "D,1,D", "D,:,D",
            "1,:,D,E", "None,1,:,D", "1,None,D", "D,None,D", "...,1,D", "1,...,D", "D,...,1",
            ":,D,1,E", "1,2,D", "D,2,:,E,1", ":,D,E", "M,1", "1,:,M2",
            ":,Z,:,D", "Z,:,E", "1,:,Z,E", "Z,D,:,Z"]  # Z: a 0-d index tensor, read as an int


@pytest.mark.parametrize("pattern", ADVANCED)
def test_mixed_advanced_indexing_matches_pytorch(pattern):
    x0, v0 = r(3, 5, 12, 6, 3, 4), None
    results = []
    for m in (torch, tg):
        names = {"D": m.tensor([[0], [2]]), "E": m.tensor([1, 0]),  # no repeated position
                 "M": m.tensor([True, False, True]), "M2": m.tensor(np.arange(12) % 3 == 0),
                 "Z": m.tensor(1)}
        x = m.tensor(x0, requires_grad=True)
        out = eval(f"x[{pattern}]", {"x": x, **names})
        out.backward(m.tensor(np.arange(out.numel(), dtype=np.float64).reshape(out.shape)))
        v0 = r(*out.shape) if v0 is None else v0
        v = m.tensor(v0, requires_grad=True)
        y = x.detach() * 1
        exec(f"y[{pattern}] = v * 2", {"y": y, "v": v, **names})
        (y * y).sum().backward()
        results.append((tuple(out.shape), _np(out), _np(x.grad), _np(y), _np(v.grad)))
    (shape_t, *arrays_t), (shape_g, *arrays_g) = results
    assert shape_g == shape_t
    for got, want in zip(arrays_g, arrays_t):
        np.testing.assert_allclose(got, want, rtol=1e-12)


# -- views written in place: PyTorch's aliasing ---------------------------------------------------
def _views_program(m, w):
    x = w * 1
    x[0].mul_(3)
    x[:, 1].add_(1)
    x.view(-1)[::5].zero_()
    x.t()[2].sub_(x.t()[0].detach())
    x.diagonal().mul_(2)
    v = x[1]
    x.mul_(2)  # the view sees it
    return x.sum() + (v * v).sum()


def _views_program_data(m, w):
    p = w * 1
    p.data[1].fill_(0.0)
    p.data.view(-1)[0] = 5.0
    q = p.detach()[2:]
    q.add_(1.0)
    return p


def _views_program_augmented(m, w):
    x = w * 1
    x[0] += 1
    x[[0, 1]] += 2
    x[:, 0] *= 5
    x[1:, 1:] -= w[0, 1:] * 2
    x.view(16)[3] = 9.0
    x[x > 2] = -1.0
    return x


@pytest.mark.parametrize("program", [_views_program, _views_program_data,
                                     _views_program_augmented])
def test_views_match_pytorch(program):
    w0 = r(4, 4)
    results = []
    for m in (torch, tg):
        w = m.tensor(w0, requires_grad=True)
        out = program(m, w)
        out.sum().backward()
        results.append((_np(out), _np(w.grad)))
    (v_t, g_t), (v_g, g_g) = results
    np.testing.assert_allclose(v_g, v_t, rtol=1e-6)
    np.testing.assert_allclose(g_g, g_t, rtol=1e-6)


# -- errors: PyTorch's types and key words --------------------------------------------------------
ERRORS = [
    ("view_size", lambda m: m.zeros(6).view(5), "is invalid for input of size"),
    ("index_out_of_range", lambda m: m.zeros(3)[3], "out of bounds"),
    ("tensor_index_out_of_range", lambda m: m.zeros(3)[m.tensor([0, 5])], "out of bounds"),
    ("index_select_out_of_range", lambda m: m.zeros(3).index_select(0, m.tensor([4])),
     "out of range"),
    ("too_many_indices", lambda m: m.zeros(3)[0, 0], "too many indices"),
    ("dim_out_of_range", lambda m: m.zeros(2, 3).sum(2), "Dimension out of range"),
    ("cat_sizes", lambda m: m.cat([m.zeros(2, 3), m.zeros(3, 4)]), "Sizes of tensors must match"),
    ("stack_sizes", lambda m: m.stack([m.zeros(2), m.zeros(3)]), "stack expects each tensor"),
    ("mm_shapes", lambda m: m.mm(m.zeros(2, 3), m.zeros(2, 3)), "cannot be multiplied"),
    ("mm_rank", lambda m: m.mm(m.ones(3), m.ones(3, 3)), "self must be a matrix"),
    ("bmm_rank", lambda m: m.bmm(m.ones(3, 3), m.ones(3, 3, 3)), "batch1 must be a 3D tensor"),
    ("mv_rank", lambda m: m.mv(m.ones(3, 3), m.ones(3, 3)), "vector \\+ matrix @ vector"),
    ("mm_dtype", lambda m: m.mm(m.ones(2, 2), m.ones(2, 2, dtype=m.float64)),
     "expected m1 and m2 to have the same dtype, but got: float != double"),
    ("dot_dtype", lambda m: m.dot(m.ones(2), m.ones(2, dtype=m.float64)),
     "expected both vectors to have same dtype, but found Float and Double"),
    ("outer_rank", lambda m: m.outer(m.ones(2, 2), m.ones(2)), "Expected 1-D argument self"),
    ("leaf_view_inplace", lambda m: m.zeros(3, requires_grad=True)[0].mul_(2), "view of a leaf"),
    ("expand_inplace", lambda m: m.zeros(3, 1).expand(3, 4).add_(1), "single memory location"),
    ("mean_int", lambda m: m.tensor([1, 2]).mean(), "mean\\(\\): could not infer output dtype"),
    ("where_cond", lambda m: m.where(m.ones(2), m.ones(2), m.zeros(2)), "where expected condition"),
    ("gather_dtype", lambda m: m.ones(2).gather(0, m.tensor([0.0])), "Expected dtype int32/int64"),
    ("scatter_dtype", lambda m: m.ones(3).scatter(0, m.tensor([0]), m.ones(1, dtype=m.float64)),
     "Expected self.dtype to be equal to src.dtype"),
    ("index_add_dtype", lambda m: m.ones(3).index_add(0, m.tensor([0]),
                                                      m.ones(1, dtype=m.float64)),
     "must have the same scalar type"),
    ("topk_k", lambda m: m.ones(3).topk(4), "selected index k out of range"),
    ("unflatten", lambda m: m.ones(6).unflatten(0, (4, 2)), "unflatten"),
    ("multinomial_no_replacement", lambda m: m.multinomial(m.ones(2), 3),
     "cannot sample n_sample > prob_dist.size\\(-1\\) samples without replacement"),
]


@pytest.mark.parametrize("name, fn, match", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_match_pytorch(name, fn, match):
    with pytest.raises(Exception, match=match) as expected:
        fn(torch)
    with pytest.raises(type(expected.value), match=match):
        fn(tg)
