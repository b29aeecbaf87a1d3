"""Strides of views against PyTorch: `stride()`, `storage_offset()`, `is_contiguous()` over a
table of view chains, where `view` works or raises, and which `reshape`/`contiguous` results
alias their base (written through, the base compared with PyTorch's)."""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")

SHAPE = (2, 3, 4, 5)

# each chain runs unchanged on a torch tensor and on a tapegrad tensor of shape SHAPE
CHAINS = {
    "base": lambda x: x,
    "transpose": lambda x: x.transpose(1, 2),
    "swapaxes": lambda x: x.swapaxes(0, 3),
    "permute": lambda x: x.permute(3, 1, 0, 2),
    "channels_last": lambda x: x.permute(0, 2, 3, 1),
    "channels_last_view": lambda x: x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2),
    "t": lambda x: x.reshape(6, 20).t(),
    "t_1d": lambda x: x.reshape(-1)[::7].t(),
    "mT": lambda x: x.mT,
    "step": lambda x: x[:, 1::2],
    "step_last": lambda x: x[..., ::3],
    "int_slice": lambda x: x[1, :, 2:],
    "none_int": lambda x: x[:, None, 1],
    "ellipsis_none": lambda x: x[..., None, 2:4],
    "empty_slice": lambda x: x[:, 3:1],
    "bool_true": lambda x: x[:, True, 1:],
    "bool_false": lambda x: x[..., False, ::2],
    "late_empty": lambda x: x[:, :, 6:],
    "negative": lambda x: x[-1, -2:, ::2, -1],
    "narrow": lambda x: x.narrow(2, 1, 2),
    "select": lambda x: x.select(3, 4),
    "unsqueeze": lambda x: x.unsqueeze(2),
    "unsqueeze_end": lambda x: x[:, :, :, 1].unsqueeze(-1),
    "view": lambda x: x.view(6, 20),
    "view_of_slice": lambda x: x[:, 1:].view(2, 2, 20),
    "expand": lambda x: x[:, :1].expand(2, 3, 4, 5),
    "expand_new": lambda x: x[0, 0, 0].expand(2, 1, 5),
    "expand_0d": lambda x: x[0, 0, 0, 0].expand(1, 3),
    "diagonal": lambda x: x.diagonal(0, 1, 2),
    "diagonal_pos": lambda x: x.diagonal(1, 2, 3),
    "diagonal_neg": lambda x: x.diagonal(-1, 3, 2),
    "squeeze": lambda x: x[:, :1].squeeze(1),
    "squeeze_all": lambda x: x[:1, :, 2:3].squeeze(),
    "unbind": lambda x: x.unbind(1)[2],
    "split": lambda x: x.split(2, dim=2)[1],
    "chunk": lambda x: x.chunk(2, 3)[1],
    "movedim": lambda x: x.movedim(1, -1),
    "flatten": lambda x: x.flatten(1),
    "flatten_view": lambda x: x.transpose(0, 1).flatten(2),
    "unflatten": lambda x: x.transpose(2, 3).unflatten(3, (2, 2)),
    "as_strided": lambda x: x.as_strided((3, 4), (7, 2), 5),
    "as_strided_of_view": lambda x: x[1].as_strided((2, 3), (1, 2)),
    "chain": lambda x: x.permute(1, 0, 3, 2)[:, :, 1:4:2].unsqueeze(0).transpose(0, 4)[1:],
}
if hasattr(tg.Tensor, "unfold"):  # Tensor.unfold comes with the branch that adds it
    CHAINS["unfold"] = lambda x: x.unfold(3, 2, 2)
    CHAINS["unfold_overlap"] = lambda x: x.transpose(1, 3).unfold(1, 3, 1)

# shapes to `view`/`reshape` each chain's result into (when the element count fits)
TARGETS = [(-1,), (2, -1), (-1, 2), (1, -1, 1)]


def _format(name: str):
    """tapegrad's memory format `name` (PyTorch's object where tapegrad has none: both read it
    by name)."""
    return getattr(tg, name, None) or getattr(torch, name)


def _pair(chain):
    t = torch.arange(float(np.prod(SHAPE))).reshape(SHAPE)
    g = tg.arange(float(np.prod(SHAPE))).reshape(SHAPE)
    return t, g, chain(t), chain(g)


@pytest.mark.parametrize("name", list(CHAINS))
def test_layout_matches_pytorch(name):
    _, _, a, b = _pair(CHAINS[name])
    assert tuple(b.shape) == tuple(a.shape)
    assert b.stride() == a.stride()
    assert [b.stride(d) for d in range(-b.ndim, b.ndim)] == \
        [a.stride(d) for d in range(-a.ndim, a.ndim)]
    assert b.storage_offset() == a.storage_offset()
    assert b.is_contiguous() == a.is_contiguous()
    for fmt in ("channels_last", "channels_last_3d", "contiguous_format", "preserve_format"):
        want = a.is_contiguous(memory_format=getattr(torch, fmt))
        assert b.is_contiguous(memory_format=_format(fmt)) == want, fmt
    np.testing.assert_array_equal(np.asarray(b), a.numpy())


@pytest.mark.parametrize("name", list(CHAINS))
def test_view_raises_where_pytorch_does(name):
    _, _, a, b = _pair(CHAINS[name])
    for shape in (s for s in TARGETS if _fits(name, s)):
        try:
            want = a.view(shape)
        except RuntimeError as e:
            assert "view size is not compatible" in str(e)
            with pytest.raises(RuntimeError, match=r"view size is not compatible with input "
                               r"tensor's size and stride .*Use \.reshape\(\.\.\.\) instead"):
                b.view(shape)
            continue
        got = b.view(shape)
        assert got.stride() == want.stride() and got.storage_offset() == want.storage_offset()


def _write_through(make):
    """Write 1000 through `make`'s result on each side; the bases (and results) must agree."""
    t, g, a, b = _pair(make)
    try:  # `expand` views (and reshapes of them) are read-only on both sides
        a.mul_(-1).add_(1000)
    except RuntimeError as e:
        with pytest.raises(RuntimeError, match="more than one element"):
            b.mul_(-1).add_(1000)
        assert "more than one element" in str(e)
        return
    b.mul_(-1).add_(1000)
    np.testing.assert_array_equal(np.asarray(g), t.numpy())
    np.testing.assert_array_equal(np.asarray(b), a.numpy())
    assert (b._base is None) == (a._base is None)


def _fits(name: str, shape: tuple) -> bool:
    numel = CHAINS[name](torch.zeros(SHAPE)).numel()
    return numel > 0 and numel % max(1, -int(np.prod(shape))) == 0


@pytest.mark.parametrize("name,shape", [(n, s) for n in CHAINS for s in TARGETS if _fits(n, s)])
def test_reshape_aliases_where_pytorch_does(name, shape):
    _write_through(lambda x: CHAINS[name](x).reshape(shape))


@pytest.mark.parametrize("name", list(CHAINS))
def test_contiguous_copies_exactly_where_pytorch_does(name):
    _write_through(lambda x: CHAINS[name](x).contiguous())
    t, g = CHAINS[name](torch.zeros(SHAPE)), CHAINS[name](tg.zeros(SHAPE))
    assert (g.contiguous() is g) == (t.contiguous() is t)


def test_grad_fn_names_of_reshape():
    x = tg.ones(3, 4, requires_grad=True)
    tx = torch.ones(3, 4, requires_grad=True)
    for f in (lambda v: v.reshape(2, 6), lambda v: v.t().reshape(-1), lambda v: v.t().reshape(4, 3),
              lambda v: v.t().contiguous(), lambda v: v.t().view(4, 1, 3)):
        assert type(f(x).grad_fn).__name__ == type(f(tx).grad_fn).__name__


def test_errors_of_as_strided_and_memory_formats():
    x, tx = tg.arange(12.0), torch.arange(12.0)
    for args in (((3, 4), (4, 1), 1), ((2, 2), (-1, 1)), ((2,), (1, 2), 0)):
        with pytest.raises(RuntimeError) as want:
            tx.as_strided(*args)
        with pytest.raises(RuntimeError, match=str(want.value)[:30].replace("[", r"\[")):
            x.as_strided(*args)
    with pytest.raises(RuntimeError, match="preserve memory format is unsupported"):
        x[::2].contiguous(memory_format=_format("preserve_format"))


def test_as_strided_gradient_sums_over_overlaps():
    x, tx = tg.arange(8.0, requires_grad=True), torch.arange(8.0, requires_grad=True)
    (x.as_strided((3, 3), (2, 1), 1) * tg.arange(9.0).reshape(3, 3)).sum().backward()
    (tx.as_strided((3, 3), (2, 1), 1) * torch.arange(9.0).reshape(3, 3)).sum().backward()
    np.testing.assert_array_equal(np.asarray(x.grad), tx.grad.numpy())


def test_overlapping_as_strided_is_read_only():
    """PyTorch lets an in-place op write an overlapping `as_strided` view (the result then depends
    on the order its kernel visits elements); tapegrad refuses, as PyTorch does for `expand`."""
    x = tg.arange(8.0)
    v = x.as_strided((2, 2), (1, 1))
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        v.add_(1)
    np.testing.assert_array_equal(np.asarray(v), [[0, 1], [1, 2]])
