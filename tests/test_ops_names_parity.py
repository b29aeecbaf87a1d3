"""Names and argument forms real PyTorch code uses, against PyTorch (where installed): the same
program runs in both libraries on the same data; values, dtypes, gradients and errors must agree.
The programs and the runner are `test_ops_torch_parity.py`'s."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tapegrad as tg
import test_ops_torch_parity as base

torch = pytest.importorskip("torch")

r, pos = base.r, base.pos
SPECIAL = np.array([0.5, -1.5, 0.0, -0.0, 2.0, 3.5])
TIES = np.array([[1.0, 3.0, 3.0, 2.0, np.nan, 5.0], [0.0, -1.0, 0.0, -2.0, 4.0, 4.0]])

PROGRAMS = [
    # tensor math
    ("hyperbolic", lambda m, x: m.asinh(x) + x.atanh() * 2 + m.arcsinh(x) + m.arctanh(x * 0.5)
     + (x.abs() + 1.5).acosh() + m.arccosh(x * x + 1.1) + m.exp2(x) + x.exp2(),
     [r(3, 4, lo=-0.9, hi=0.9)]),
    ("exp2_int", lambda m, i: m.exp2(i), [np.array([0, 3, -1])]),
    ("gamma_family", lambda m, x: m.lgamma(x) + x.digamma() + m.polygamma(1, x) + x.polygamma(2)
     + m.polygamma(0, x), [r(2, 3, lo=-2.7, hi=3.0)]),
    ("gamma_poles", lambda m, x: m.stack([m.digamma(x.detach()), m.lgamma(x.detach()),
                                          m.polygamma(1, x.detach()), m.polygamma(2, x.detach())]),
     [np.array([0.0, -0.0, 1.0])]),
    ("std_of_equal_values", lambda m, x: x.std() + x.std(0).sum() + m.std(x, 1, correction=0).sum(),
     [np.ones((3, 2))]),
    ("copysign", lambda m, a, b: m.copysign(a, b) + a.copysign(-1.0) * 2 + m.copysign(a, -0.0),
     [SPECIAL, np.array([-1.0, 2.0, -0.0, 1.0, 0.0, -3.0])]),
    ("copysign_int", lambda m, i: m.copysign(i, -1), [np.array([1, -2, 0])]),
    ("xlogy", lambda m, a, b: m.xlogy(a, b) + m.xlogy(a, 2.0) + m.xlogy(3.0, b),
     [np.array([0.0, 0.0, 0.0, 1.0, 0.0, 2.0]), np.array([0.5, 3.0, 0.0, 1.5, 2.0, 1.0])]),
    ("xlogy_ties", lambda m, a, b: m.xlogy(a, b),
     [np.array([0.0, 0.0, 0.0, 1.0, 0.0, 2.0]), np.array([0.5, np.nan, 0.0, 0.0, -1.0, -1.0])]),
    ("addcmul_addcdiv", lambda m, x, a, b: m.addcmul(x, a, b, value=0.5) + x.addcdiv(a, b, value=-2)
     + m.addcmul(x, a, b) + m.addcdiv(x, a, b.abs() + 1), [r(3, 4), r(4), pos(3, 1)]),
    ("addcmul_int_value", lambda m, x, a, b: m.addcmul(x, a, b, value=1.5),
     [np.array([1, 2]), np.array([1, 3]), np.array([3, 3])]),
    ("addcmul_inplace", lambda m, x, a, b: (x * 1).addcmul_(a, b, value=2).addcdiv_(a, b),
     [r(3, 4), r(4), pos(3, 1)]),
    ("isclose", lambda m, a, b: m.stack([m.isclose(a, b), a.isclose(b, rtol=0.1),
                                         m.isclose(a, b, equal_nan=True),
                                         m.isclose(a, b, atol=0.6, rtol=0)]),
     [np.array([1.0, 2.0, np.inf, np.nan, -np.inf, 3.0]),
      np.array([1.0 + 1e-7, 2.5, np.inf, np.nan, np.inf, -3.0])]),
    ("isclose_int", lambda m, a, b: m.isclose(a, b, atol=1), [np.array([1, 5, 7]),
                                                               np.array([2, 5, 9])]),
    ("shifts", lambda m, a, b: m.stack([a << b, a >> b, a << 2, 1 << b, 64 >> b,
                                        m.bitwise_left_shift(a, b), a.bitwise_right_shift(b),
                                        a << 70, a >> 70]),
     [np.array([1, -3, 5, -8]), np.array([1, 2, 3, 0])]),
    ("cummax_cummin", lambda m, x: m.cat([x.cummax(1).values, m.cummin(x, 0)[0],
                                          m.cummax(x, dim=-1).indices.to(x.dtype),
                                          x.cummin(1).indices.to(x.dtype)]).nan_to_num(),
     [TIES]),
    ("logcumsumexp", lambda m, x: x.logcumsumexp(1) + m.logcumsumexp(x, dim=0), [r(3, 4)]),
    ("meshgrid", lambda m, a, b: m.stack(m.meshgrid(a, b, indexing="ij"), 0).sum(0)
     + m.stack(m.meshgrid(b, a, indexing="xy"), 0).sum(0).T.T, [r(2), r(3)]),
    ("meshgrid_3", lambda m, a, b, c: sum(t.sum() for t in m.meshgrid([a, b, c], indexing="xy"))
     + m.meshgrid(a, b, c, indexing="ij")[2], [r(2), r(3), r(4)]),
    ("unfold", lambda m, x: x.unfold(1, 2, 1).sum(-1) * 2 + x.unfold(1, 3, 2)[..., 1:].sum()
     + x.unfold(0, 3, 1).sum(0).sum(-1)[:4], [r(3, 5)]),
    ("unfold_0d", lambda m, x: x.sum().unfold(0, 1, 1), [r(3)]),
    ("legacy_constructors", lambda m: m.stack([m.FloatTensor([1.5, 2]).double(),
                                               m.LongTensor([1, 2]).double(),
                                               m.DoubleTensor(2).fill_(3.0),
                                               m.IntTensor([7, 8]).double(),
                                               m.ByteTensor([255, 1]).double(),
                                               m.BoolTensor([True, False]).double()]), []),
    ("type_names", lambda m, x: m.stack([x.type("torch.LongTensor").double(),
                                         x.type(m.IntTensor).double(), x.type(m.float64)]),
     [np.array([1.5, -2.7, 3.0])]),
    # scatter reductions (ties at [0, 0] for amax/amin share the gradient, as PyTorch)
    ("scatter_reduce", lambda m, x, s, i: sum(
        x.scatter_reduce(0, i, s, r, include_self=incl) * (k + 1)
        for k, (r, incl) in enumerate([(r, incl) for r in ("sum", "prod", "mean", "amax", "amin")
                                       for incl in (True, False)])),
     [np.array([[3.0, 1.5, 0.5, 1.0], [0.7, 1.2, 1.9, 0.6], [1.1, 0.9, 1.4, 1.6]]),
      np.array([[3.0, 0.8, 1.3, 1.7], [3.0, 0.4, 1.8, 0.9]]),
      np.array([[0, 1, 2, 0], [0, 2, 2, 1]])]),
    ("scatter_reduce_int", lambda m, x, s, i: m.stack([
        x.scatter_reduce(1, i, s, r, include_self=incl)
        for r in ("sum", "prod", "mean", "amax", "amin", "max") for incl in (True, False)]),
     [np.array([[5, 7, 1]]), np.array([[2, 4, -3]]), np.array([[0, 0, 2]])]),
    # PyTorch has no derivative for scatter(reduce=...): values only
    ("scatter_multiply", lambda m, x, s, i: (x.scatter(0, i, s, reduce="multiply")
     + x.scatter(0, i, 2.0, reduce="multiply") + x.scatter(0, i, s, reduce="add")).detach(),
     [r(3, 4), r(2, 4), np.array([[0, 1, 2, 0], [0, 2, 2, 1]])]),
    ("nansum_swapdims_scatter_reduce", lambda m, x, s, i: m.nansum(x) + x.nansum(1).sum() * 2
     + m.nansum(x, axis=0, keepdims=True).sum() * 3 + x.swapdims(0, 1)[1].sum()
     + m.swapdims(x, 0, 1)[0].nan_to_num().sum()
     + m.scatter_reduce(x.nan_to_num(), 0, i, s, reduce="amax").sum(),
     [np.array([[1.0, np.nan, 2.0, 0.5], [3.0, 4.0, np.nan, -1.0], [0.2, 0.3, 0.4, 0.6]]),
      np.array([[3.0, 0.8, 1.3, 1.7]]), np.array([[0, 1, 2, 0]])]),
    ("nansum_int", lambda m, i: m.stack([m.nansum(i), i.nansum(0)]), [np.array([1, 2, 3])]),
    # numpy's names
    ("axis_keepdims", lambda m, x: x.sum(axis=0) + m.sum(x, axis=(0, 1), keepdims=True)[0]
     + x.mean(axis=0, keepdims=True)[0] + x.var(axis=0) + x.std(axis=0) + m.amax(x, axis=0)
     + x.max(axis=0).values + m.min(x, axis=0, keepdims=False)[0] + x.prod(axis=0)
     + m.logsumexp(x, axis=0) + x.cumsum(axis=0)[-1] + x.cumprod(axis=0)[-1]
     + m.std_mean(x, axis=0)[0] + m.var_mean(x, axis=0)[1] + x.median(axis=0).values
     + x.nanmean(axis=0) + m.softmax(x, axis=0)[0] + x.log_softmax(axis=0)[0]
     + x.sort(axis=0).values[0] + x.topk(1, axis=0).values[0] + x.amin(axis=0),
     [r(3, 4)]),
    ("axis_bool_index", lambda m, x: m.stack([(x > 0).any(axis=0), (x > 0).all(axis=0),
                                              x.argmax(axis=0), x.argmin(axis=0, keepdims=False),
                                              m.count_nonzero(x, axis=0)]), [r(3, 4)]),
    ("axis_shapes", lambda m, x: m.cat([x, x], axis=0).sum(0) + m.stack([x, x], axis=1).sum(1)[0]
     + m.concat([x, x], axis=1)[0, :4] + x.unsqueeze(axis=0)[0, 0] + x[:1].squeeze(axis=0)
     + m.chunk(x, 2, axis=1)[0].sum() + x.unbind(axis=0)[1]
     + x.narrow(axis=0, start=0, length=1)[0] + x.select(axis=0, index=2), [r(3, 4)]),
    # dim 0 / -1 on a 0-d tensor
    ("zero_dim_dims", lambda m, x: x.sum(0) + x.mean(-1) + x.var(0, correction=0) + x.amax(0)
     + x.logsumexp(0) + m.logsumexp(x, -1) + x.softmax(0) + m.log_softmax(x, -1) + x.cumsum(0)
     + x.cumsum(-1) + x.prod(0) + x.std(dim=0, correction=0) + x.max(0).values + x.norm(dim=0)
     + x.cummax(0).values + x.logcumsumexp(0) + x.sum(dim=[0]), [np.array(1.5)]),
    ("zero_dim_arg_flip", lambda m, x: m.stack([x.argmax(0).to(x.dtype), m.argmin(x, -1).to(x.dtype),
                                               x.argmax(0, keepdim=True).to(x.dtype), x.flip(0),
                                               m.flip(x, (-1,)), x.aminmax(dim=0).max,
                                               m.aminmax(x, dim=-1).min, x.aminmax().max]),
     [np.array(1.5)]),
    ("zero_dim_keepdim", lambda m, x: m.stack([x.sum(0, keepdim=True), x.mean(-1, keepdim=True),
                                              x.amax(0, keepdim=True), x.max(0, True).values]),
     [np.array(1.5)]),
]


@pytest.mark.parametrize("name, fn, arrays", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_matches_pytorch(name, fn, arrays):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # std of one element, PyTorch's deprecation notes
        expected, expected_grads = base._run(torch, fn, arrays)
        got, grads = base._run(tg, fn, arrays)
    assert tuple(got.shape) == tuple(expected.shape)
    assert got.dtype.name == str(expected.dtype).replace("torch.", "")
    np.testing.assert_allclose(base._np(got), base._np(expected), rtol=1e-6, atol=1e-8)
    assert len(grads) == len(expected_grads)
    for g, e in zip(grads, expected_grads):
        np.testing.assert_allclose(base._np(g), base._np(e), rtol=1e-6, atol=1e-8)


def test_legacy_types_and_constants_match_pytorch():
    for name in ("FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "BoolTensor",
                 "ByteTensor", "HalfTensor", "ShortTensor", "CharTensor", "BFloat16Tensor"):
        t_cls, g_cls = getattr(torch, name), getattr(tg, name)
        assert g_cls.dtype.name == str(t_cls.dtype).replace("torch.", "")
        assert tuple(g_cls(2, 3).shape) == tuple(t_cls(2, 3).shape) == (2, 3)
        assert isinstance(g_cls(1), g_cls) and not isinstance(tg.zeros(1, dtype=tg.complex64),
                                                              g_cls)
        assert isinstance(torch.zeros(1, dtype=t_cls.dtype), t_cls)
    assert isinstance(tg.zeros(2), tg.FloatTensor) and not isinstance(tg.zeros(2), tg.LongTensor)
    for name in ("pi", "e", "inf", "nan"):
        assert repr(getattr(tg, name)) == repr(getattr(torch, name))
    for name in ("preserve_format", "contiguous_format", "channels_last", "channels_last_3d"):
        fmt = getattr(tg, name)
        assert isinstance(fmt, tg.memory_format) and repr(fmt) == f"tapegrad.{name}"
    x = tg.arange(6.0).reshape(1, 1, 2, 3)
    for out in (x.contiguous(memory_format=tg.channels_last), x.clone(memory_format=tg.preserve_format),
                tg.zeros_like(x, memory_format=tg.channels_last), x.to(memory_format=tg.channels_last),
                tg.randn_like(x, memory_format=tg.preserve_format)):
        assert tuple(out.shape) == (1, 1, 2, 3)
    np.testing.assert_array_equal(x.contiguous(memory_format=tg.channels_last).numpy(), x.numpy())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", "complex64"])
def test_finfo_matches_pytorch(dtype):
    t, g = torch.finfo(getattr(torch, dtype)), tg.finfo(getattr(tg, dtype))
    for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(g, attr) == getattr(t, attr), attr
    assert repr(g) == repr(t)
    assert tg.finfo() == tg.finfo(tg.float32) and repr(tg.finfo()) == repr(torch.finfo())


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "int64"])
def test_iinfo_matches_pytorch(dtype):
    t, g = torch.iinfo(getattr(torch, dtype)), tg.iinfo(getattr(tg, dtype))
    for attr in ("bits", "max", "min", "dtype"):
        assert getattr(g, attr) == getattr(t, attr), attr
    assert repr(g) == repr(t)


def test_meshgrid_warns_without_indexing_as_pytorch():
    for m in (torch, tg):
        with pytest.warns(UserWarning, match="it will be required to pass the indexing argument"):
            a, b = m.meshgrid(m.arange(2), m.arange(3))
        assert tuple(a.shape) == (2, 3)


def test_unfold_is_a_view():
    x = tg.arange(6.0)
    x.unfold(0, 2, 2).mul_(10)  # non-overlapping windows write through, as PyTorch
    np.testing.assert_array_equal(x.numpy(), np.arange(6.0) * 10)
    assert x.unfold(0, 3, 1)._base is x
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        x.unfold(0, 3, 1).mul_(2)  # PyTorch writes overlapping windows repeatedly


ERRORS = [
    ("isclose_dtypes", lambda m: m.isclose(m.ones(1), m.ones(1, dtype=m.float64)),
     "Float did not match Double"),
    ("isclose_rtol", lambda m: m.isclose(m.ones(1), m.ones(1), rtol=-1),
     "rtol must be greater than or equal to zero, but got -1"),
    ("isclose_atol", lambda m: m.allclose(m.ones(1), m.ones(1), atol=-0.5),
     "atol must be greater than or equal to zero"),
    ("allclose_shapes", lambda m: m.allclose(m.ones(2), m.ones(3)),
     "The size of tensor a \\(2\\) must match the size of tensor b \\(3\\)"),
    ("addcdiv_int", lambda m: m.addcdiv(m.tensor([1]), m.tensor([1]), m.tensor([1])),
     "Integer division with addcdiv is no longer supported"),
    ("lshift_float", lambda m: m.ones(2) << 1, '"lshift_cpu" not implemented for \'Float\''),
    ("rshift_float", lambda m: m.tensor([4]) >> m.tensor([1.0]),
     '"rshift_cpu" not implemented for \'Float\''),
    ("bitwise_and_float", lambda m: m.ones(2) & 1, "not implemented for 'Float'"),
    ("polygamma_negative", lambda m: m.polygamma(-1, m.ones(2)), "does not support negative n"),
    ("logcumsumexp_int", lambda m: m.tensor([1, 2]).logcumsumexp(0),
     "\"logcumsumexp_out_cpu\" not implemented for 'Long'"),
    ("cummax_dim", lambda m: m.ones(2, 3).cummax(2), "Dimension out of range"),
    ("cummax_0d_dim", lambda m: m.tensor(1.0).cummax(1),
     "cummax\\(\\): Expected reduction dim -1 or 0 for scalar but got 1"),
    ("sum_0d_dim", lambda m: m.tensor(1.0).sum(1), "Dimension out of range"),
    ("softmax_0d_dim", lambda m: m.tensor(1.0).softmax(2), "Dimension out of range"),
    ("roll_0d_dim", lambda m: m.tensor(1.0).roll(1, 0),
     "Dimension specified as 0 but tensor has no dimensions"),
    ("unique_0d_dim", lambda m: m.tensor(1.0).unique(dim=0),
     "Dimension specified as 0 but tensor has no dimensions"),
    ("flip_0d_dim", lambda m: m.tensor(1.0).flip(1), "Dimension out of range"),
    ("axis_and_dim", lambda m: m.ones(2).sum(dim=0, axis=0), "argument"),
    ("unfold_size", lambda m: m.ones(4).unfold(0, 5, 1),
     "maximum size for tensor at dimension 0 is 4 but size is 5"),
    ("unfold_step", lambda m: m.ones(4).unfold(0, 2, 0), "step is 0 but must be > 0"),
    ("meshgrid_indexing", lambda m: m.meshgrid(m.ones(2), indexing="ji"),
     'indexing must be one of "xy" or "ij"'),
    ("meshgrid_2d", lambda m: m.meshgrid(m.ones(2, 2), indexing="ij"), "Expected 0D or 1D tensor"),
    ("type_name", lambda m: m.ones(2).type("torch.FooTensor"), "invalid type: 'torch.FooTensor'"),
    ("scatter_reduce_name", lambda m: m.ones(3).scatter_reduce(0, m.tensor([0]), m.ones(1),
                                                              "foo"),
     "reduce argument must be either sum, prod, mean, amax or amin, got foo"),
    ("scatter_reduce_dtype", lambda m: m.ones(3).scatter_reduce(
        0, m.tensor([0]), m.ones(1, dtype=m.float64), "sum"), "Expected self.dtype to be equal"),
    ("scatter_reduce_old_name", lambda m: m.ones(3).scatter(0, m.tensor([0]), 1.0, reduce="max"),
     "reduce argument must be either add or multiply"),
    ("finfo_int", lambda m: m.finfo(m.int32), "torch.finfo\\(\\) requires a floating point"),
    ("iinfo_float", lambda m: m.iinfo(m.float32), "torch.iinfo\\(\\) requires an integer"),
    ("iinfo_bool", lambda m: m.iinfo(m.bool), "torch.bool is not supported by torch.iinfo"),
]


@pytest.mark.parametrize("name, fn, match", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_match_pytorch(name, fn, match):
    with pytest.raises(Exception, match=match) as expected:
        fn(torch)
    with pytest.raises(type(expected.value), match=match):
        fn(tg)


# -- nn.functional: pad, pooling with indices, unpooling ------------------------------------------
def _values_and_grads(lib, program, arrays):
    xs = [lib.tensor(a, requires_grad=True) for a in arrays]
    outs = program(lib, *xs)
    total = sum((o.nan_to_num() * (k + 1.5)).sum() for k, o in enumerate(outs)
                if o.dtype.is_floating_point)
    total.backward()
    return [base._np(o) for o in outs], [base._np(x.grad) for x in xs]


def _pools(m, x):
    F = m.nn.functional
    out, idx = F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True, return_indices=True)
    o2, i2 = F.max_pool2d(x, 2, return_indices=True)
    o1, i1 = F.max_pool1d(x[0], 3, 2, dilation=2, return_indices=True)
    o4, i4 = m.nn.MaxPool2d(2, 2, return_indices=True)(x)
    o5, i5 = m.nn.MaxPool1d(2, return_indices=True)(x[1, 0])  # unbatched
    o6, i6 = F.max_pool2d(x, 3, 1, return_indices=True)  # overlapping: repeated indices
    o7, i7 = F.max_pool1d(x[0], 2, 1, return_indices=True)
    return [out, idx, o1, i1, i2, F.max_unpool2d(o2, i2, 2, output_size=(7, 6)),
            m.nn.MaxUnpool2d(2)(o4, i4), F.max_unpool1d(o1, i1, 5, 2, output_size=[6]),
            m.nn.MaxUnpool1d(2)(o5, i5), F.max_unpool2d(o6, i6, 3, 1),
            m.nn.MaxUnpool1d(2, 1)(o7, i7)]


def test_max_pool_indices_match_pytorch():
    x0 = base.r(2, 3, 7, 6)
    x0[0, 0, :2, :2] = 1.0  # a tie: the first maximum wins
    x0[1, 1, 3, 3] = np.nan  # NaN counts as the largest
    (vt, gt), (vg, gg) = (_values_and_grads(m, _pools, [x0]) for m in (torch, tg))
    for a, b in zip(vg + gg, vt + gt):
        np.testing.assert_allclose(a, b, rtol=1e-12)


PADS = [(-1, 2), (2, -1), (-1, -1), (1, 1, -1, 0), (0, -2, 2, 1), (-1, -2), (3, 0),
        (0, 0, 0, 0, 0, -1), (-3, 1), (0, 0, -3, 0)]


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_negative_padding_crops_as_pytorch(mode):
    x0 = base.r(2, 3, 4)
    for pad in PADS:
        if mode != "constant" and len(pad) == 6:
            continue
        kw = {"value": 0.5} if mode == "constant" else {}
        (vt, gt), (vg, gg) = (_values_and_grads(m, lambda m, x: [m.nn.functional.pad(
            x, pad, mode=mode, **kw)], [x0]) for m in (torch, tg))
        np.testing.assert_allclose(vg[0], vt[0], rtol=1e-12, err_msg=str(pad))
        np.testing.assert_allclose(gg[0], gt[0], rtol=1e-12, err_msg=str(pad))


NN_ERRORS = [
    ("pad_float", lambda m: m.nn.functional.pad(m.ones(1, 2, 4), (1.5, 1)),
     "argument 'pad' \\(position 2\\) must be tuple of ints, but found element of type float at "
     "pos 0"),
    ("pad_crop_too_far", lambda m: m.nn.functional.pad(m.ones(1, 2, 4), (-5, 1)),
     "narrow\\(\\): length must be non-negative"),
    ("reflect_crop_too_far", lambda m: m.nn.functional.pad(m.ones(1, 2, 4), (-3, -2),
                                                           mode="reflect"),
     "input \\(W: 4\\) is too small. Calculated output W: -1"),
    ("replicate_2d_too_small", lambda m: m.nn.functional.pad(m.ones(1, 3, 4), (0, 0, -4, 0),
                                                             mode="replicate"),
     "Trying to create tensor with negative dimension -1: \\[1, -1, 4\\]"),
    ("reflect_too_wide", lambda m: m.nn.functional.pad(m.ones(1, 2, 4), (4, 0), mode="reflect"),
     "Argument #4: Padding size should be less than the corresponding input dimension, but got: "
     "padding \\(4, 0\\) at dimension 2 of input \\[1, 2, 4\\]"),
    ("reflect_2d_too_wide", lambda m: m.nn.functional.pad(m.ones(1, 3, 4), (0, 0, 3, -1),
                                                          mode="reflect"), "Argument #6"),
    ("circular_wraps_twice", lambda m: m.nn.functional.pad(m.ones(1, 2, 4), (5, 0),
                                                           mode="circular"),
     "Padding value causes wrapping around more than once"),
    ("reflect_pad_size", lambda m: m.nn.functional.pad(m.ones(1, 2, 4), (1,) * 6, mode="reflect"),
     "Padding size 6 is not supported for 3D input tensor"),
    ("unpool_dtype", lambda m: m.nn.functional.max_unpool2d(m.ones(1, 1, 2, 2),
                                                            m.zeros(1, 1, 2, 2).int(), 2),
     "elements in indices should be type int64 but got: Int"),
    ("unpool_shape", lambda m: m.nn.functional.max_unpool2d(
        m.ones(1, 1, 2, 2), m.zeros(1, 1, 1, 2, dtype=m.long), 2),
     "Expected shape of indices to be same as that of the input tensor"),
    ("unpool_output_size", lambda m: m.nn.functional.max_unpool2d(
        m.ones(1, 1, 2, 2), m.zeros(1, 1, 2, 2, dtype=m.long), 2, output_size=(9, 4)),
     'invalid output_size "\\(9, 4\\)" \\(dim 0 must be between 2 and 6\\)'),
    ("unpool_index", lambda m: m.nn.functional.max_unpool2d(
        m.ones(1, 1, 2, 2), m.full((1, 1, 2, 2), 100, dtype=m.long), 2),
     "Found an invalid max index: 100 \\(output volumes are of size 4x4"),
]


@pytest.mark.parametrize("name, fn, match", NN_ERRORS, ids=[e[0] for e in NN_ERRORS])
def test_nn_errors_match_pytorch(name, fn, match):
    test_errors_match_pytorch(name, fn, match)
