"""PyTorch's errors where PyTorch raises (issue 14 sections 1 and 2, issue 13's refusals): each
program runs in PyTorch and in tapegrad; both must raise the same error type with the same key
words. Index programs run twice: with the index known at the call (checked there) and with it
still pending (`index * 1`, checked inside the compiled program that computes it)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as tgF

torch = pytest.importorskip("torch")
import torch.nn.functional as tF  # noqa: E402

NAN = float("nan")


def _libs():
    return [(torch, tF), (tg, tgF)]


def _read(out):
    """Everything a program returns, computed (a pending tapegrad value is computed here)."""
    if isinstance(out, (tuple, list)):
        return [_read(o) for o in out]
    if out is None:
        return None
    return np.asarray(out.detach().numpy() if hasattr(out, "detach") else out)


# (name, program(m, F, pend): pend(t) makes an index tensor pending in tapegrad, error, words)
INDEX = [
    ("gather", lambda m, F, p: m.gather(m.arange(3.), 0, p(m.tensor([0, 3]))),
     RuntimeError, "index 3 is out of bounds for dimension 0 with size 3"),
    ("gather negative", lambda m, F, p: m.gather(m.arange(3.), 0, p(m.tensor([-1]))),
     RuntimeError, "index -1 is out of bounds for dimension 0 with size 3"),
    ("index_select", lambda m, F, p: m.index_select(m.arange(3.), 0, p(m.tensor([3]))),
     IndexError, "index out of range in self"),
    ("index_select negative", lambda m, F, p: m.index_select(m.arange(3.), 0, p(m.tensor([-1]))),
     IndexError, "index out of range in self"),
    ("take", lambda m, F, p: m.take(m.arange(3.), p(m.tensor([3]))),
     IndexError, "out of range: tried to access index 3 on a tensor of 3 elements"),
    ("take negative", lambda m, F, p: m.take(m.arange(3.), p(m.tensor([-4]))),
     IndexError, "out of range: tried to access index -4 on a tensor of 3 elements"),
    ("take_along_dim", lambda m, F, p: m.take_along_dim(m.arange(3.), p(m.tensor([3]))),
     RuntimeError, "index 3 is out of bounds for dimension 0 with size 3"),
    ("embedding", lambda m, F, p: F.embedding(p(m.tensor([0, 5])), m.ones(3, 2)),
     IndexError, "index out of range in self"),
    ("embedding negative", lambda m, F, p: F.embedding(p(m.tensor([-1])), m.ones(3, 2)),
     IndexError, "index out of range in self"),
    ("x[idx]", lambda m, F, p: m.arange(3.)[p(m.tensor([3]))],
     IndexError, "index 3 is out of bounds for dimension 0 with size 3"),
    ("x[idx] negative", lambda m, F, p: m.arange(3.)[p(m.tensor([-4]))],
     IndexError, "index -4 is out of bounds for dimension 0 with size 3"),
    ("x[idx] = v", lambda m, F, p: _setitem(m.zeros(3), p(m.tensor([3])), 1.0),
     IndexError, "index 3 is out of bounds for dimension 0 with size 3"),
    ("index_add_", lambda m, F, p: m.zeros(3).index_add_(0, p(m.tensor([3])), m.ones(1)),
     IndexError, "index out of range in self"),
    ("index_add_ negative", lambda m, F, p: m.zeros(3).index_add_(0, p(m.tensor([-1])),
                                                                   m.ones(1)),
     IndexError, "index out of range in self"),
    ("index_copy_", lambda m, F, p: m.zeros(3).index_copy_(0, p(m.tensor([3])), m.ones(1)),
     IndexError, "index_copy_\\(\\): index 3 is out of bounds for dimension 0 with size 3"),
    ("index_put_", lambda m, F, p: m.zeros(3).index_put_((p(m.tensor([3])),), m.ones(1)),
     IndexError, "index 3 is out of bounds for dimension 0 with size 3"),
    ("scatter_", lambda m, F, p: m.zeros(3).scatter_(0, p(m.tensor([3])), m.ones(1)),
     RuntimeError, "index 3 is out of bounds for dimension 0 with size 3"),
    ("scatter_ negative", lambda m, F, p: m.zeros(3).scatter_(0, p(m.tensor([-1])), m.ones(1)),
     RuntimeError, "index -1 is out of bounds for dimension 0 with size 3"),
    ("scatter_add_", lambda m, F, p: m.zeros(3).scatter_add_(0, p(m.tensor([3])), m.ones(1)),
     RuntimeError, "index 3 is out of bounds for dimension 0 with size 3"),
    ("one_hot", lambda m, F, p: F.one_hot(p(m.tensor([3])), 3),
     RuntimeError, "Class values must be smaller than num_classes"),
    ("one_hot negative", lambda m, F, p: F.one_hot(p(m.tensor([-1])), 3),
     RuntimeError, "Class values must be non-negative"),
    ("cross_entropy", lambda m, F, p: F.cross_entropy(m.zeros(2, 3), p(m.tensor([0, 3]))),
     IndexError, "Target 3 is out of bounds"),
    ("cross_entropy -1", lambda m, F, p: F.cross_entropy(m.zeros(2, 3), p(m.tensor([0, -1]))),
     IndexError, "Target -1 is out of bounds"),
    ("nll_loss", lambda m, F, p: F.nll_loss(m.zeros(2, 3), p(m.tensor([0, 3]))),
     IndexError, "Target 3 is out of bounds"),
    ("nll_loss 0-d", lambda m, F, p: F.nll_loss(m.zeros(3), p(m.tensor(3))),
     IndexError, "Target 3 is out of bounds"),
]


def _setitem(x, index, value):
    x[index] = value
    return x


def _known(t):
    return t


def _pending(t):
    return t * 1


def _raises(program, pend, error, words):
    for m, F in _libs():
        with pytest.raises(error, match=words):
            _read(program(m, F, pend if m is tg else _known))


@pytest.mark.parametrize("name,program,error,words", INDEX, ids=[c[0] for c in INDEX])
def test_index_out_of_bounds_known(name, program, error, words):
    _raises(program, _known, error, words)


@pytest.mark.parametrize("name,program,error,words", INDEX, ids=[c[0] for c in INDEX])
def test_index_out_of_bounds_pending(name, program, error, words):
    _raises(program, _pending, error, words)


# programs PyTorch accepts, around the bounds: the same values in both
VALUES = [
    ("x[idx] negative wraps", lambda m, F, p: m.arange(3.)[p(m.tensor([-1, -3]))]),
    ("x[idx] = v negative wraps", lambda m, F, p: _setitem(m.zeros(3), p(m.tensor([-1])), 1.0)),
    ("take negative wraps", lambda m, F, p: m.take(m.arange(3.), p(m.tensor([-1])))),
    ("uint8 index is a mask", lambda m, F, p: m.arange(3.)[m.tensor([1, 0, 1], dtype=m.uint8)]),
    ("cross_entropy ignore_index", lambda m, F, p: F.cross_entropy(
        m.tensor([[1., 2., 3.], [0., 1., 0.]]), p(m.tensor([2, -100])))),
    ("cross_entropy custom ignore_index", lambda m, F, p: F.cross_entropy(
        m.tensor([[1., 2., 3.], [0., 1., 0.]]), p(m.tensor([1, 7])), ignore_index=7)),
    ("scatter index longer than self along dim", lambda m, F, p: m.zeros(2).scatter_(
        0, p(m.tensor([0, 1, 0])), m.ones(3))),
    ("bincount", lambda m, F, p: m.bincount(m.tensor([0, 3, 3]))),
    ("bincount weights", lambda m, F, p: m.bincount(m.tensor([0, 1, 1]),
                                                     weights=m.tensor([1., 2., 3.]), minlength=4)),
    ("index_copy_", lambda m, F, p: m.zeros(3).index_copy_(0, p(m.tensor([2, 0])),
                                                           m.tensor([5., 6.]))),
    ("int tensor ** negative tensor", lambda m, F, p: m.tensor([2, 1, -1, -1]) ** m.tensor(
        [-1, -2, -1, -2])),
    ("relu(nan)", lambda m, F, p: F.relu(m.tensor([NAN, -1., 2.]))),
    ("median nan", lambda m, F, p: m.tensor([1., NAN, 2.]).median()),
    ("median dim nan", lambda m, F, p: tuple(m.tensor([[1., NAN, 2.], [3., 1., 2.]]).median(1))),
    ("max nan", lambda m, F, p: m.tensor([1., NAN, 2.]).max()),
    ("min dim nan", lambda m, F, p: tuple(m.tensor([1., NAN, 2.]).min(0))),
    ("tensor(-1, uint8) wraps", lambda m, F, p: m.tensor([-1], dtype=m.uint8)),
]


@pytest.mark.filterwarnings("ignore:indexing with dtype torch.uint8")
@pytest.mark.parametrize("name,program", VALUES, ids=[c[0] for c in VALUES])
@pytest.mark.parametrize("pend", [_known, _pending])
def test_accepted_programs_agree(name, program, pend):
    expected = _read(program(torch, tF, _known))
    got = _read(program(tg, tgF, pend))
    np.testing.assert_equal(got, expected)


ARGUMENTS = [
    ("int // 0", lambda m, F: m.tensor([1, 2]) // m.tensor([1, 0]), RuntimeError,
     "ZeroDivisionError"),
    ("int % 0", lambda m, F: m.tensor([1]) % m.tensor([0]), RuntimeError, "ZeroDivisionError"),
    ("int // number 0", lambda m, F: m.tensor([1]) // 0, RuntimeError, "ZeroDivisionError"),
    ("int % number 0", lambda m, F: m.tensor([1]) % 0, RuntimeError, "ZeroDivisionError"),
    ("div trunc 0", lambda m, F: m.div(m.tensor([1]), m.tensor([0]), rounding_mode="trunc"),
     RuntimeError, "ZeroDivisionError"),
    ("fmod 0", lambda m, F: m.fmod(m.tensor([1]), m.tensor([0])), RuntimeError,
     "ZeroDivisionError"),
    ("div rounding_mode typo", lambda m, F: m.div(m.ones(1), 2, rounding_mode="typo"),
     RuntimeError, "rounding_mode"),
    ("int ** negative number", lambda m, F: m.tensor([2]) ** -1, RuntimeError,
     "Integers to negative integer powers are not allowed"),
    ("tensor(2**63)", lambda m, F: m.tensor([2 ** 63]), ValueError, "Overflow"),
    ("tensor(300, int8)", lambda m, F: m.tensor([300], dtype=m.int8), RuntimeError,
     "value cannot be converted to type int8 without overflow"),
    ("tensor(2**40, int32)", lambda m, F: m.tensor([2 ** 40], dtype=m.int32), RuntimeError,
     "value cannot be converted to type int32 without overflow"),
    ("randint low >= high", lambda m, F: m.randint(3, 3, (2,)), RuntimeError,
     "random_ expects 'from' to be less than 'to', but got from=3 >= to=3"),
    ("multinomial negative", lambda m, F: m.multinomial(m.tensor([-1., 1.]), 1), RuntimeError,
     "probability tensor contains either `inf`, `nan` or element < 0"),
    ("multinomial inf", lambda m, F: m.multinomial(m.tensor([math.inf, 1.]), 1), RuntimeError,
     "probability tensor contains either `inf`, `nan` or element < 0"),
    ("multinomial zero", lambda m, F: m.multinomial(m.tensor([0., 0.]), 1), RuntimeError,
     "invalid multinomial distribution \\(sum of probabilities <= 0\\)"),
    ("bernoulli p > 1", lambda m, F: m.bernoulli(m.tensor([1.5])), RuntimeError,
     "p_in >= 0 && p_in <= 1"),
    ("normal std < 0", lambda m, F: m.normal(m.tensor([0.]), m.tensor([-1.])), RuntimeError,
     "normal expects all elements of std >= 0.0"),
    ("inverse singular", lambda m, F: m.inverse(m.zeros(2, 2)), RuntimeError,
     "linalg.inv: .*singular"),
    ("solve singular", lambda m, F: m.linalg.solve(m.zeros(2, 2), m.ones(2)), RuntimeError,
     "linalg.solve: The solver failed because the input matrix is singular"),
    ("cholesky not PD", lambda m, F: m.linalg.cholesky(-m.eye(2)), RuntimeError,
     "linalg.cholesky: The factorization could not be completed because the input is not "
     "positive-definite"),
    ("conv2d stride 0", lambda m, F: F.conv2d(m.ones(1, 1, 3, 3), m.ones(1, 1, 2, 2), stride=0),
     RuntimeError, "non-positive stride is not supported"),
    ("conv2d negative padding", lambda m, F: F.conv2d(m.ones(1, 1, 3, 3), m.ones(1, 1, 2, 2),
                                                       padding=-1),
     RuntimeError, "negative padding is not supported"),
    ("conv2d kernel > input", lambda m, F: F.conv2d(m.ones(1, 1, 3, 3), m.ones(1, 1, 4, 4)),
     RuntimeError, "Calculated padded input size per channel: \\(3 x 3\\). Kernel size: "
     "\\(4 x 4\\). Kernel size can't be greater than actual input size"),
    ("conv1d kernel > padded input", lambda m, F: F.conv1d(m.ones(1, 1, 3), m.ones(1, 1, 6),
                                                            padding=1),
     RuntimeError, "Calculated padded input size per channel: \\(5\\). Kernel size: \\(6\\)"),
    ("max_pool2d stride 0", lambda m, F: F.max_pool2d(m.ones(1, 1, 3, 3), 2, stride=0),
     RuntimeError, "stride should not be zero"),
    ("max_pool2d negative padding", lambda m, F: F.max_pool2d(m.ones(1, 1, 3, 3), 2, padding=-1),
     RuntimeError, "pad must be non-negative, but got pad: -1"),
    ("avg_pool2d kernel > input", lambda m, F: F.avg_pool2d(m.ones(1, 1, 3, 3), 4),
     RuntimeError, "Output size is too small"),
    ("huber_loss delta 0", lambda m, F: F.huber_loss(m.ones(2), m.zeros(2), delta=0.),
     RuntimeError, "huber_loss does not support non-positive values for delta"),
    ("binary_cross_entropy input", lambda m, F: F.binary_cross_entropy(m.tensor([1.5]),
                                                                        m.tensor([1.])),
     RuntimeError, "all elements of input should be between 0 and 1"),
    ("binary_cross_entropy target", lambda m, F: F.binary_cross_entropy(m.tensor([0.5]),
                                                                         m.tensor([1.5])),
     RuntimeError, "all elements of target should be between 0 and 1"),
    ("binary_cross_entropy nan input", lambda m, F: F.binary_cross_entropy(m.tensor([NAN]),
                                                                            m.tensor([1.])),
     RuntimeError, "all elements of input should be between 0 and 1"),
    ("tensor_split 0", lambda m, F: m.tensor_split(m.arange(3), 0), RuntimeError,
     "number of sections must be larger than 0, got 0"),
    ("narrow 0-d", lambda m, F: m.tensor(1.).narrow(0, 0, 1), RuntimeError,
     "narrow\\(\\) cannot be applied to a 0-dim tensor"),
    ("linear 0-d", lambda m, F: F.linear(m.tensor(1.), m.ones(1, 1)), RuntimeError,
     "both arguments to linear need to be at least 1D, but they are 0D and 2D"),
    ("chunk 0-d", lambda m, F: m.tensor(1.).chunk(1), RuntimeError,
     "chunk expects at least a 1-dimensional tensor"),
    ("randn(-1)", lambda m, F: m.randn(-1), RuntimeError,
     "Trying to create tensor with negative dimension -1: \\[-1\\]"),
    ("rand(2, -3)", lambda m, F: m.rand(2, -3), RuntimeError,
     "Trying to create tensor with negative dimension -3: \\[2, -3\\]"),
    ("repeat(-1)", lambda m, F: m.ones(2).repeat(-1), RuntimeError,
     "Trying to create tensor with negative dimension -2: \\[-2\\]"),
    ("bincount negative", lambda m, F: m.bincount(m.tensor([-1])), RuntimeError,
     "bincount only supports 1-d non-negative integral inputs"),
    ("repeat_interleave negative", lambda m, F: m.repeat_interleave(m.arange(3.),
                                                                     m.tensor([1, -1, 1])),
     RuntimeError, "repeats can not be negative"),
    ("scatter index larger than self", lambda m, F: m.zeros(2, 2).scatter_(
        0, m.zeros(2, 3, dtype=m.long), m.ones(2, 3)), RuntimeError, "Expected index \\[2, 3\\]"),
]


@pytest.mark.parametrize("name,program,error,words", ARGUMENTS, ids=[c[0] for c in ARGUMENTS])
def test_invalid_arguments_raise_as_pytorch(name, program, error, words):
    for m, F in _libs():
        with pytest.raises(error, match=words):
            _read(program(m, F))


def test_linalg_error_is_a_runtime_error_raised_where_computed():
    assert issubclass(tg.linalg.LinAlgError, RuntimeError)
    a = tg.zeros(2, 2, requires_grad=True)
    inv = tg.linalg.inv(a * 2)  # pending: checked by the program that computes it
    with pytest.raises(tg.linalg.LinAlgError, match="singular"):
        inv.sum().backward()
    assert a.grad is None
    good = tg.tensor([[2., 1.], [1., 3.]], requires_grad=True)
    tg.linalg.inv(good).sum().backward()
    expected = torch.tensor([[2., 1.], [1., 3.]], requires_grad=True)
    torch.linalg.inv(expected).sum().backward()
    np.testing.assert_allclose(good.grad.numpy(), expected.grad.numpy(), rtol=1e-5)


def test_pending_error_names_the_op_and_the_recording_line():
    index = tg.tensor([0, 3]) * 1
    out = tg.gather(tg.arange(3.), 0, index)
    line = f"{__file__}:{test_pending_error_names_the_op_and_the_recording_line.__code__.co_firstlineno + 2}"
    with pytest.raises(RuntimeError, match="index 3 is out of bounds") as info:
        out.numpy()
    assert "gather recorded at " + line in str(info.value)


def test_pending_index_checked_in_backward_leaves_grad_untouched():
    x = tg.arange(3., requires_grad=True)
    loss = tg.gather(x * 2, 0, tg.tensor([0, 3]) * 1).sum()
    with pytest.raises(RuntimeError, match="index 3 is out of bounds for dimension 0"):
        loss.backward()
    assert x.grad is None
    tg.gather(x * 2, 0, tg.tensor([0, 2]) * 1).sum().backward()  # the next one is unaffected
    np.testing.assert_equal(x.grad.numpy(), [2., 0., 2.])


def test_pending_index_checked_in_a_compiled_step_which_then_applies_nothing():
    w = tg.ones(3, 2, requires_grad=True)
    opt = tg.optim.SGD([w], lr=0.1)

    @tg.compile
    def step(idx):
        opt.zero_grad()
        loss = tgF.embedding(idx * 1, w).sum()
        loss.backward()
        opt.step()
        return loss

    for _ in range(3):  # two eager runs, then the compiled program
        step(tg.tensor([0, 2]))
    before = w.detach().numpy().copy()
    with pytest.raises(IndexError, match="index out of range in self"):
        step(tg.tensor([0, 5]))
    np.testing.assert_equal(w.detach().numpy(), before)
    step(tg.tensor([1, 2]))
    np.testing.assert_allclose(w.detach().numpy(), before - 0.1 * np.array([[0, 0], [1, 1], [1, 1]]))


def test_bad_write_refused_at_record_time_leaves_the_next_backward_whole():
    buf = tg.zeros(())
    with tg.no_grad():
        with pytest.raises(RuntimeError, match="non-positive stride is not supported"):
            buf.add_(tgF.conv2d(tg.ones(1, 1, 3, 3), tg.ones(1, 1, 2, 2), stride=0).sum())
    w = tg.ones(2, requires_grad=True)
    (w * 2).sum().backward()
    np.testing.assert_equal(w.grad.numpy(), [2., 2.])
    assert buf.item() == 0.0


_TABLE = np.arange(15.0, dtype=np.float32).reshape(5, 3)


def _rebound(m):
    t = m.tensor([0, 9])
    v = t.view(-1)
    t.data = m.tensor([0, 1])  # the view keeps showing [0, 9], as in PyTorch
    return v


def _written(m):
    t = m.tensor([[0, 1], [2, 3]])
    v = t.view(-1)
    v.add_(6)  # through the view: the base holds 6..9 now
    return v


# (name, the index a view shows, whether it is in range): a pending view of a known array
VIEWS = [
    ("view, in range", lambda m: m.tensor([[0, 1], [4, 2]]).view(-1), True),
    ("view, out of range", lambda m: m.tensor([[0, 1], [9, 2]]).view(-1), False),
    ("transposed slice, in range", lambda m: m.tensor([[0, 1], [4, 2]]).t()[1], True),
    ("slice, the bad element outside it", lambda m: m.tensor([0, 1, 9])[:2], True),
    ("slice, the bad element inside it", lambda m: m.tensor([9, 1, 0])[:2], False),
    ("view of a rebound base", _rebound, False),
    ("view written through", _written, False),
]


@pytest.mark.parametrize("name,index,valid", VIEWS, ids=[c[0] for c in VIEWS])
def test_pending_views_of_known_indices_checked_as_pytorch(name, index, valid):
    """A pending view of a known array is checked on that array on the host where the check
    passes there (no guard: the program's caller then waits for nothing); where it fails, the
    view's own values decide, in the program."""
    from tapegrad._core import checks
    for m, F in _libs():
        idx = index(m)
        assert m is torch or idx._cell.node.value is None  # pending in tapegrad
        made = checks.guards_made
        if valid:
            got = F.embedding(idx, m.tensor(_TABLE))
            if m is torch:
                want = got.numpy()
            else:
                np.testing.assert_array_equal(got.numpy(), want)
                guarded = "slice, the bad" in name  # the base fails: the view is guarded
                assert (checks.guards_made > made) == guarded
        else:
            with pytest.raises(IndexError, match="index out of range in self"):
                _read(F.embedding(idx, m.tensor(_TABLE)))
