"""The ops of issue 13 against PyTorch (where installed): `sgn`, `fmax`/`fmin`, `hypot`,
`logit`, `heaviside`, `gcd`/`lcm`, `diff`, `isin`, `histc`, `cross`, `cdist`, `quantile`,
`nanquantile`, `nanmedian`, `mode`, `index_put(accumulate=True)`, and the silent differences
fixed with them: `sign` of NaN and -0.0, `any`/`all` of uint8, bool scalars in an index, a
reduction's `dim` out of range on a 0-d tensor. Values, dtypes, gradients (ties and singular
points included) and errors must agree. The runner is `test_ops_torch_parity.py`'s."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tapegrad as tg
import test_ops_torch_parity as base

torch = pytest.importorskip("torch")

r, pos = base.r, base.pos
NAN = np.nan
SIGNS = np.array([NAN, 0.0, -0.0, 2.0, -3.0, np.inf])
PAIRS = (np.array([1.0, 2.0, NAN, 3.0, 3.0, 0.0, -1.0]),
         np.array([1.0, NAN, 4.0, 2.0, 3.0, 0.0, 5.0]))
ROWS = np.array([[3.0, 1.0, 2.0, 2.0, 0.5], [0.0, 5.0, NAN, 1.0, 1.0], [2.0, 1.0, 2.0, 1.0, 7.0]])
Q = np.array([0.0, 0.3, 0.5, 0.75, 1.0])
INTERPOLATIONS = ["linear", "lower", "higher", "midpoint", "nearest"]


def _quantiles(how):
    return lambda m, x: m.cat([
        m.quantile(x, m.tensor(Q, dtype=x.dtype), dim=1, keepdim=True,
                   interpolation=how).flatten(),
        m.nanquantile(x, m.tensor(Q, dtype=x.dtype), dim=1, interpolation=how).flatten(),
        x.quantile(0.4, dim=0, interpolation=how), x.nanquantile(0.4, interpolation=how)[None],
        m.quantile(x[2], m.tensor([0.4, 0.9], dtype=x.dtype), keepdim=True, interpolation=how).flatten()])


# (name, program over a module `m` (torch or tapegrad) and tensors, inputs): float inputs are
# float64 leaves that require grad, integer and bool arrays constants.
PROGRAMS = [
    ("sign_sgn", lambda m, x: m.stack([m.sign(x), x.sgn(), m.sgn(x), x.sign() * x]), [SIGNS]),
    ("sign_int_bool", lambda m, i, b: m.cat([m.sign(i), m.sgn(i), m.sign(b).long()]),
     [np.array([-3, 0, 4]), np.array([True, False, True])]),
    ("fmax_fmin", lambda m, a, b: m.stack([m.fmax(a, b), a.fmin(b), m.fmax(b, a), m.fmin(b, a)]),
     list(PAIRS)),
    ("fmax_broadcast_int", lambda m, a, i: m.fmax(a, i) + m.fmin(i, a[:1]), [r(3, 4), np.arange(4)]),
    ("fmax_ints", lambda m, i, j: m.stack([m.fmax(i, j), m.fmin(i, j)]),
     [np.array([1, 5, -2]), np.array([3, 2, -2])]),
    ("hypot", lambda m, a, b: m.hypot(a, b) + (a * 1).hypot_(b[0]), [r(3, 4), r(4)]),
    ("hypot_at_zero", lambda m, a, b: m.hypot(a, b), [np.array([0.0, 3.0, -0.0]),
                                                       np.array([0.0, 4.0, 2.0])]),
    ("logit", lambda m, p: m.stack([m.logit(p), p.logit(eps=0.1), m.logit(p, 1e-6),
                                    (p * 1).logit_(0.2), m.logit_(p * 1, 0.3)]),
     [np.array([0.0, 0.5, 1.0, 0.05, 0.95, 1.2, -0.1, 0.1, 0.9, 0.2])]),
    ("logit_int", lambda m, i: m.logit(i), [np.array([0, 1])]),
    ("heaviside", lambda m, x, v: m.stack([m.heaviside(x.detach(), v.detach()),
                                           x.detach().heaviside(m.tensor([7.0], dtype=x.dtype))]),
     [np.array([-1.0, 0.0, 2.0, -0.0, NAN]), np.array([0.5])]),
    ("heaviside_int", lambda m, i: m.heaviside(i, m.tensor([9])), [np.array([-2, 0, 3])]),
    ("gcd_lcm", lambda m, a, b: m.stack([m.gcd(a, b), a.lcm(b), (a * 1).gcd_(b), m.lcm(b, a),
                                         m.gcd_(a * 1, b), m.lcm_(b * 1, a)]),
     [np.array([12, -18, 0, 0, 4, 7]), np.array([8, 12, 5, 0, -6, -7])]),
    ("diff", lambda m, x: m.cat([m.diff(x).flatten(), x.diff(n=2, dim=0).flatten(),
                                 m.diff(x, n=0).flatten(), m.diff(x, n=9).flatten(),
                                 m.diff(x, dim=0, prepend=x[:1] * 2, append=x[:2]).flatten()]),
     [r(3, 4)]),
    ("diff_bool_int", lambda m, b, i: m.cat([m.diff(b).long(), m.diff(i, n=2)]),
     [np.array([True, False, False, True]), np.array([1, 5, 2, 2])]),
    ("isin", lambda m, a, b: m.stack([m.isin(a, b), m.isin(a, b, invert=True),
                                      m.isin(a, b, assume_unique=True), m.isin(a, 2)]),
     [np.array([[1, 2], [3, 4]]), np.array([2, 4, 4])]),
    ("isin_promotes", lambda m, x, i: m.cat([m.isin(i, x.detach()), m.isin(3, i)[None],
                                             m.isin(x.detach(), 2.5)]),
     [np.array([2.0, 2.5, 4.0]), np.array([1, 2, 3])]),
    ("histc", lambda m, x: m.cat([m.histc(x.detach(), bins=4, min=-1, max=1),
                                  x.detach().histc(7), m.histc(x.detach(), 3, 0, 0),
                                  m.histc(x.detach()[:1] * 0 + 1, bins=3)]), [r(50)]),
    ("histc_edges", lambda m, x: m.cat([m.histc(x.detach(), bins=3, min=1, max=3),
                                        m.histc(x.detach(), bins=2, min=0, max=2)]),
     [np.array([1.0, 2.0, 3.0, np.inf, -np.inf, NAN, 0.0, 1.5])]),
    ("cross", lambda m, a, b: m.cat([m.cross(a, b, dim=1), m.linalg.cross(a, b[:1]),
                                     a.cross(b, dim=-1), m.linalg.cross(a.t(), b.t(), dim=0).t()]),
     [r(4, 3), r(4, 3)]),
    ("cross_int", lambda m, i, j: m.linalg.cross(i, j), [np.array([1, 2, 3]), np.array([4, 5, 7])]),
    ("quantile_linear", _quantiles("linear"), [ROWS]),
    ("quantile_lower", _quantiles("lower"), [ROWS]),
    ("quantile_higher", _quantiles("higher"), [ROWS]),
    ("quantile_midpoint", _quantiles("midpoint"), [ROWS]),
    ("quantile_nearest", _quantiles("nearest"), [ROWS]),
    ("quantile_all_nan", lambda m, x: m.stack([m.nanquantile(x, 0.5), m.quantile(x, 0.5),
                                               x.nanmedian(), m.nanmedian(x[:0])]),
     [np.array([NAN, NAN])]),
    ("quantile_0d", lambda m, x: m.stack([m.quantile(x, 0.3), x.nanquantile(0.7, dim=0)]),
     [np.array(2.5)]),
    ("nanmedian", lambda m, x: m.cat([m.nanmedian(x)[None], x.nanmedian(1).values,
                                      m.nanmedian(x, 0, keepdim=True)[0].flatten(),
                                      x.nanmedian(1).indices.to(x.dtype),
                                      m.nanmedian(x, 0).indices.to(x.dtype)]), [ROWS]),
    ("median_ties", lambda m, x: m.stack([x.median(), m.median(x[:4]), x[:2].median()]),
     [np.array([2.0, 2.0, 1.0, 2.0, 3.0])]),
    ("nanmedian_ties", lambda m, x: m.cat([x.nanmedian(0).values[None], x.nanmedian()[None],
                                           x.nanmedian(0).indices[None].to(x.dtype)]),
     [np.array([2.0, 2.0, 1.0, 2.0, NAN])]),
    ("mode", lambda m, x: m.cat([m.mode(x).values, x.mode(0).values, m.mode(x, 1, True)[0][:, 0],
                                 m.mode(x).indices.to(x.dtype), x.mode(0).indices.to(x.dtype)]),
     [np.array([[3.0, 1.0, 3.0, 1.0, 2.0], [1.0, 2.0, 1.0, 2.0, 1.0], [4.0, 7.0, 7.0, 9.0, 9.0],
                [5.0, 4.0, 3.0, 2.0, 1.0]])]),
    ("mode_int", lambda m, i: m.cat([m.mode(i, 1).values, i.mode(1).indices, m.mode(i[0])[0][None]]),
     [np.array([[1, 2, 2, 5], [4, 4, 1, 1]])]),
    ("index_put_accumulate", lambda m, x, v: m.cat([
        x.index_put((m.tensor([0, 0, 2]),), v, accumulate=True).flatten(),
        x.index_put((m.tensor([1, 1]), m.tensor([0, 0])), v[0, :2], accumulate=True).flatten(),
        x.index_put((m.tensor([True, False, True]),), v[0], accumulate=True).flatten(),
        (x * 1).index_put_((m.tensor([2, 2]),), v[:2], accumulate=True).flatten()]),
     [r(3, 2), r(3, 2)]),
    # silent differences, now PyTorch's
    ("any_all_uint8", lambda m, u: m.stack([u.any(), u.all(), m.any(u), m.all(u)]),
     [np.array([[1, 0, 3], [0, 0, 2]], dtype=np.uint8)]),
    ("any_all_uint8_dims", lambda m, u: m.cat([u.any(1), m.all(u, 0), u.any(0, keepdim=True)[0],
                                               m.all(u, dim=1, keepdim=True)[:, 0]]),
     [np.array([[1, 0, 3], [0, 0, 2]], dtype=np.uint8)]),
    ("any_all_other_dtypes", lambda m, i, x: m.stack([i.any(), i.all(), x.any(), x.all(),
                                                      (i > 1).any()]),
     [np.array([1, 0, 3]), np.array([0.5, NAN])]),
    ("prod_0d_dims", lambda m, x: m.stack([x.prod(0), x.prod(-1, keepdim=True), m.prod(x, 0)]),
     [np.array(1.5)]),
]
SGN = np.array([3.0 + 4.0j, 0.0j, -1.0j, 2.0 + 0.0j])


@pytest.mark.parametrize("name, fn, arrays", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_matches_pytorch(name, fn, arrays):
    expected, expected_grads = base._run(torch, fn, arrays)
    got, grads = base._run(tg, fn, arrays)
    assert tuple(got.shape) == tuple(expected.shape)
    assert got.dtype.name == str(expected.dtype).replace("torch.", "")
    np.testing.assert_allclose(base._np(got), base._np(expected), rtol=1e-6, atol=1e-8)
    assert len(grads) == len(expected_grads)
    for g, e in zip(grads, expected_grads):
        if e is None:
            assert g is None or not np.any(base._np(g))
            continue
        np.testing.assert_allclose(base._np(g), base._np(e), rtol=1e-6, atol=1e-8)


def test_sgn_of_complex_matches_pytorch():
    np.testing.assert_allclose(tg.sgn(tg.tensor(SGN)).numpy(), torch.sgn(torch.tensor(SGN)).numpy(),
                               rtol=1e-12)


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0, 2.0, 3.0, np.inf])
def test_cdist_matches_pytorch(p):
    """Values and gradients, with distances of 0 (PyTorch's gradient is 0 there), batches that
    broadcast and ties of the largest coordinate (p = inf: each tied coordinate gets it all)."""
    x1 = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [2.0, -1.0, 0.5]])
    x2 = np.array([[0.0, 0.0, 1.0], [1.0, 2.0, 0.0], [1.0, 1.0, 1.0], [3.0, 0.0, 1.5]])
    batch = r(2, 3, 3)
    results = []
    for m in (torch, tg):
        a, b, c = (m.tensor(v, requires_grad=True) for v in (x1, x2, batch))
        out = m.cat([m.cdist(a, b, p=p).flatten(), m.cdist(c, b, p=p).flatten()])
        out.backward(m.tensor(np.arange(1.0, 1.0 + out.shape[0]), dtype=out.dtype))
        results.append([base._np(t) for t in (out, a.grad, b.grad, c.grad)])
    for got, expected in zip(results[1], results[0]):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


def test_quantile_gradient_at_ties_matches_pytorch():
    """Stable sorting decides which of equal elements gets the gradient, as in PyTorch."""
    data = np.array([2.0, 1.0, 2.0, 1.0, 2.0, 1.0])
    for how in INTERPOLATIONS:
        grads = []
        for m in (torch, tg):
            x = m.tensor(data, requires_grad=True)
            m.quantile(x, m.tensor([0.1, 0.45, 0.9], dtype=x.dtype), interpolation=how).sum(
                ).backward()
            grads.append(base._np(x.grad))
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, err_msg=how)


def test_heaviside_backward_raises_as_pytorch():
    for m in (torch, tg):
        x = m.tensor([-1.0, 0.0, 2.0], requires_grad=True)
        y = m.heaviside(x, m.tensor([0.5]))
        assert y.requires_grad and type(y.grad_fn).__name__ == "NotImplemented"
        with pytest.raises(RuntimeError, match="derivative for aten::heaviside is not implemented"):
            (y * 2).sum().backward()


def test_cross_without_dim_warns_as_pytorch():
    """The first dimension of size 3, with PyTorch's deprecation warning (PyTorch warns once per
    process, so only tapegrad's warning is asserted)."""
    a, b = r(3, 3), r(3, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = torch.cross(torch.tensor(a), torch.tensor(b))
        with pytest.raises(RuntimeError, match="no dimension of size 3 in input"):
            torch.cross(torch.ones(4, 2), torch.ones(4, 2))
    match = "Using torch.cross without specifying the dim arg is deprecated"
    with pytest.warns(UserWarning, match=match):
        got = tg.cross(tg.tensor(a), tg.tensor(b))
    np.testing.assert_allclose(base._np(got), base._np(expected), rtol=1e-12)
    with pytest.warns(UserWarning, match=match), \
            pytest.raises(RuntimeError, match="no dimension of size 3 in input"):
        tg.cross(tg.ones(4, 2), tg.ones(4, 2))


BOOL_INDEX = [(1, False), (True,), (None, False), (False,), (True, 1), (0, True, 1), (1, True),
              (True, slice(None), 1), (1, slice(None), True), (True, "i"), ("i", True),
              (Ellipsis, True), (True, True), (1, None, True), (Ellipsis, False, 0),
              (True, Ellipsis, 1), (slice(0, 2), True, "i"), ("b", 1), (0, "b", slice(1, 3), True)]


@pytest.mark.parametrize("index", BOOL_INDEX, ids=[str(i) for i in BOOL_INDEX])
def test_bool_scalars_index_as_pytorch(index):
    """A bool scalar is a 0-d mask: a new dimension of size 1 (True) or 0 (False), and an
    advanced index (so it moves beside, or ahead of, the other advanced indices)."""
    data, results = r(2, 3, 4), []
    for m in (torch, tg):
        x = m.tensor(data, requires_grad=True)
        index_m = tuple(m.tensor([0, 1]) if i == "i" else m.tensor(True) if i == "b" else i
                        for i in index)
        out = x[index_m]
        ct = np.arange(1.0, 1.0 + out.numel()).reshape(tuple(out.shape))
        (out * m.tensor(ct)).sum().backward()
        y = m.zeros(2, 3, 4, dtype=m.float64)
        y[index_m] = 5.0
        results.append((tuple(out.shape), base._np(out), base._np(x.grad), base._np(y)))
    assert results[1][0] == results[0][0]
    for got, expected in zip(results[1][1:], results[0][1:]):
        np.testing.assert_array_equal(got, expected)


REDUCTIONS = ["prod", "sum", "mean", "amax", "amin", "max", "min", "argmax", "std", "var", "all",
              "any", "logsumexp", "median", "nanmedian", "cumsum", "mode"]


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_dim_out_of_range_on_0d_raises_as_pytorch(name):
    match = r"Dimension out of range \(expected to be in range of \[-1, 0\], but got 1\)"
    for m in (torch, tg):
        with pytest.raises(IndexError, match=match):
            getattr(m.tensor(2.0), name)(1)


ERRORS = [
    ("sign_complex", lambda m: m.sign(m.tensor([1j])), "Please use torch.sgn instead"),
    ("fmax_number", lambda m: m.fmax(m.ones(2), 2.0), "must be Tensor, not float"),
    ("hypot_int", lambda m: m.hypot(m.tensor([1]), m.tensor([2])),
     "\"hypot_cpu\" not implemented for 'Long'"),
    ("heaviside_dtypes", lambda m: m.heaviside(m.ones(2), m.tensor([1])),
     "heaviside is not yet implemented for tensors with different dtypes"),
    ("heaviside_number", lambda m: m.heaviside(m.ones(2), 0.5), "must be Tensor, not float"),
    ("gcd_float", lambda m: m.gcd(m.ones(1), m.ones(1)), "\"gcd_cpu\" not implemented for 'Float'"),
    ("lcm_float", lambda m: m.lcm(m.tensor([2]), m.ones(1)), "\"lcm_cpu\" not implemented"),
    ("diff_0d", lambda m: m.diff(m.tensor(1.0)), "diff expects input to be at least one-dimensional"),
    ("diff_negative", lambda m: m.diff(m.ones(3), n=-1), "order must be non-negative but got -1"),
    ("diff_prepend_rank", lambda m: m.diff(m.ones(3, 4), prepend=m.ones(3)),
     "diff expects prepend or append to be the same dimension as input"),
    ("diff_prepend_shape", lambda m: m.diff(m.ones(3, 4), prepend=m.ones(2, 1)),
     "input.size\\(0\\) = 3, but got tensor.size\\(0\\) = 2"),
    ("diff_prepend_number", lambda m: m.diff(m.ones(3), prepend=1.0), "must be Tensor, not float"),
    ("histc_int", lambda m: m.histc(m.tensor([1, 2])), "\"histogram_cpu\" not implemented for 'Long'"),
    ("histc_bins", lambda m: m.histc(m.ones(2), bins=-1), "bins must be > 0, but got -1"),
    ("histc_range", lambda m: m.histc(m.ones(2), min=3, max=1), "max must be larger than min"),
    ("histc_not_finite", lambda m: m.histc(m.tensor([1.0, np.nan])), "is not finite"),
    ("linalg_cross_length", lambda m: m.linalg.cross(m.ones(4, 2), m.ones(4, 2)),
     "linalg.cross: inputs dimension -1 must have length 3. Got 2 and 2"),
    ("cross_dim_length", lambda m: m.cross(m.ones(4, 3), m.ones(4, 3), dim=0),
     "linalg.cross: inputs dimension 0 must have length 3. Got 4 and 4"),
    ("cdist_columns", lambda m: m.cdist(m.ones(5, 3), m.ones(4, 2)),
     "X1 and X2 must have the same number of columns. X1: 3 X2: 2"),
    ("cdist_p", lambda m: m.cdist(m.ones(5, 3), m.ones(4, 3), p=-1),
     "cdist only supports non-negative p values"),
    ("cdist_rank", lambda m: m.cdist(m.ones(3), m.ones(3)), "cdist only supports at least 2D"),
    ("cdist_int", lambda m: m.cdist(m.ones(2, 3).long(), m.ones(2, 3).long()),
     "cdist only supports floating-point dtypes, X1 got: Long"),
    ("quantile_q", lambda m: m.quantile(m.ones(2), 1.5), "q must be in the range \\[0, 1\\] but got 1.5"),
    ("quantile_q_tensor", lambda m: m.quantile(m.ones(2), m.tensor([0.5, -0.5])),
     "q values must be in the range \\[0, 1\\]"),
    ("quantile_q_rank", lambda m: m.quantile(m.ones(2), m.ones(1, 1)), "q must be a scalar or 1D"),
    ("quantile_q_dtype", lambda m: m.quantile(m.ones(2), m.tensor([0.5], dtype=m.float64)),
     "q tensor must be same dtype as the input tensor"),
    ("quantile_int", lambda m: m.quantile(m.tensor([1, 2]), 0.5), "must be either float or double"),
    ("quantile_empty", lambda m: m.quantile(m.ones(0), 0.5), "input tensor must be non-empty"),
    ("quantile_interpolation", lambda m: m.quantile(m.ones(2), 0.5, interpolation="cubic"),
     "interpolation must be one of linear, lower, higher, midpoint or nearest, but got cubic"),
    ("nanquantile_q", lambda m: m.nanquantile(m.ones(2), -0.1), "q must be in the range"),
    ("mode_empty", lambda m: m.mode(m.ones(0)), "Expected reduction dim 0 to have non-zero size"),
    ("nanmedian_empty_dim", lambda m: m.nanmedian(m.ones(0), 0),
     "Expected reduction dim 0 to have non-zero size"),
    ("index_put_dtype", lambda m: m.zeros(5).index_put_((m.tensor([0]),), m.ones(1, dtype=m.float64),
                                                        accumulate=True),
     "Index put requires the source and destination dtypes match, got Float for the destination "
     "and Double for the source"),
    ("index_put_number", lambda m: m.zeros(5).index_put((m.tensor([0]),), 1.0),
     "argument 'values' \\(position 2\\) must be Tensor, not float"),
    ("index_broadcast", lambda m: m.zeros(2, 3, 4)[m.tensor([0, 1]), False, 1],
     "shape mismatch: indexing tensors could not be broadcast together with shapes \\[2\\], \\[0\\]"),
]


@pytest.mark.parametrize("name, fn, match", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_match_pytorch(name, fn, match):
    with pytest.raises(Exception, match=match) as expected:
        fn(torch)
    with pytest.raises(type(expected.value), match=match):
        fn(tg)
