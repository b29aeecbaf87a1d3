"""Views share storage with their base: in-place ops through a view update the base (and
autograd sees it), in-place ops on the base update live views; checked against PyTorch's
semantics stated in its docs, and against numpy for the values."""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg


def test_inplace_on_views_updates_base():
    x = tg.arange(12.0).reshape(3, 4)
    ref = np.arange(12.0).reshape(3, 4)
    x[0].zero_()
    ref[0] = 0
    x[:, 1].mul_(2)
    ref[:, 1] *= 2
    x.view(-1).add_(1)
    ref += 1
    x.t()[3].fill_(-1)
    ref[:, 3] = -1
    x[1:, ::2].sub_(10)
    ref[1:, ::2] -= 10
    x.diagonal().neg_()
    ref[np.arange(3), np.arange(3)] *= -1
    x.unsqueeze(0).squeeze(0).permute(1, 0)[0, 2] = 100.0
    ref[2, 0] = 100
    np.testing.assert_array_equal(x.numpy(), ref)


def test_base_changes_show_in_live_views():
    x = tg.zeros(2, 3)
    row, col, flat = x[1], x[:, 2], x.view(-1)
    x.add_(1)
    row.mul_(5)  # also updates col and flat, which alias the same elements
    np.testing.assert_array_equal(row.numpy(), [5, 5, 5])
    np.testing.assert_array_equal(col.numpy(), [1, 5])
    np.testing.assert_array_equal(flat.numpy(), [1, 1, 1, 5, 5, 5])
    x[0, 2] = 7.0
    np.testing.assert_array_equal(col.numpy(), [7, 5])


def test_view_of_view_writes_root():
    x = tg.zeros(4, 4)
    v = x[1:].t()[2]  # x[1:, 2]
    v.fill_(3.0)
    expected = np.zeros((4, 4))
    expected[1:, 2] = 3
    np.testing.assert_array_equal(x.numpy(), expected)


def test_autograd_through_inplace_view():
    w = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = w * 1
    y[0].mul_(y[1].detach().clone())  # y[0] = w[0] * [3, 4]
    y[:, 1].pow_(2)
    y.sum().backward()
    # d/dw of sum([w00*3, (w01*4)^2, w10, w11^2])
    np.testing.assert_allclose(w.grad.numpy(), [[3.0, 2 * 32.0], [1.0, 8.0]])
    assert y.grad_fn.name() == "CopySlices"


def test_alias_of_a_view_shares_its_version():
    # As in PyTorch: `y[1].detach()` aliases y's storage, so changing y after using it raises.
    w = tg.ones(2, 2, requires_grad=True)
    y = w * 1
    y[0].mul_(y[1].detach())
    y[:, 1].pow_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_data_and_no_grad_writes_keep_leaf():
    p = tg.ones(3, requires_grad=True)
    p.data[1].fill_(0.0)
    with tg.no_grad():
        p[2].mul_(5)
    assert p.is_leaf and p.grad_fn is None
    np.testing.assert_array_equal(p.detach().numpy(), [1, 0, 5])
    (p * p).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), [2, 0, 10])


def test_leaf_view_inplace_raises():
    p = tg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        p[0].mul_(2)


def test_saved_view_modified_raises():
    w = tg.ones(2, 3, requires_grad=True)
    y = w * 2
    v = y[0]
    z = v * v  # saves v
    y.add_(1)  # changes v's storage
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_expanded_view_is_read_only():
    x = tg.zeros(3, 1)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        x.expand(3, 2).add_(1)


def test_advanced_indexing_copies():
    x = tg.zeros(3)
    x[tg.tensor([0, 1])].fill_(1.0)  # a copy, as in PyTorch: x unchanged
    x[x == 0].fill_(2.0)
    np.testing.assert_array_equal(x.numpy(), [0, 0, 0])
    x[tg.tensor([0, 2])] = 4.0  # assignment writes
    np.testing.assert_array_equal(x.numpy(), [4, 0, 4])


def test_view_errors():
    with pytest.raises(RuntimeError, match=r"shape '\[5\]' is invalid for input of size 6"):
        tg.zeros(6).view(5)
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        tg.zeros(3)[3]
    with pytest.raises(IndexError, match="out of bounds"):
        tg.zeros(3, 2)[tg.tensor([1, -4])]
