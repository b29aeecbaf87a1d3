"""`F.interpolate` on integer images against PyTorch: uint8 bilinear and bicubic compute and
round as PyTorch's CPU kernel (integer weights, one pass per dimension), bit for bit; the integer inputs
PyTorch refuses are refused with its error."""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as G

torch = pytest.importorskip("torch")
F = torch.nn.functional

RESIZES = [dict(size=(7, 5)), dict(size=(2, 3)), dict(scale_factor=2), dict(scale_factor=1.7),
           dict(size=(4, 11)), dict(scale_factor=(0.5, 3.0)), dict(size=(1, 1))]


@pytest.mark.parametrize("hw", [(4, 4), (5, 7), (8, 3)])
@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_uint8_bilinear_matches_pytorch(hw, resize, align_corners, mode):
    rng = np.random.default_rng(sum(hw))
    for channels in (1, 5):  # PyTorch has a vectorised kernel for <= 4 channels, generic above
        a = rng.integers(0, 256, (2, channels) + hw).astype(np.uint8)
        want = F.interpolate(torch.tensor(a), mode=mode, align_corners=align_corners, **resize)
        got = G.interpolate(tg.tensor(a), mode=mode, align_corners=align_corners, **resize)
        assert got.dtype == tg.uint8
        np.testing.assert_array_equal(np.asarray(got), want.numpy())


@pytest.mark.parametrize("dtype, mode, shape", [
    ("uint8", "linear", (1, 1, 4)), ("int32", "bilinear", (1, 1, 4, 4)),
    ("int64", "nearest", (1, 1, 4, 4)), ("int8", "linear", (1, 1, 4)),
    ("uint8", "trilinear", (1, 1, 2, 3, 4)), ("uint8", "area", (1, 1, 4)),
    ("uint8", "area", (1, 1, 2, 3, 4)), ("int32", "bicubic", (1, 1, 4, 4)),
    ("bool", "nearest", (1, 1, 4)), ("int64", "nearest-exact", (1, 1, 2, 3, 4)),
    ("int16", "area", (1, 1, 4, 4))])
def test_integer_inputs_pytorch_refuses(dtype, mode, shape):
    with pytest.raises(NotImplementedError) as want:
        F.interpolate(torch.zeros(shape, dtype=getattr(torch, dtype)), scale_factor=2, mode=mode)
    with pytest.raises(NotImplementedError, match=str(want.value)):
        G.interpolate(tg.zeros(shape, dtype=getattr(tg, dtype)), scale_factor=2, mode=mode)


@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_uint8_nearest_matches_pytorch(resize, mode):
    a = np.random.default_rng(3).integers(0, 256, (1, 3, 5, 7)).astype(np.uint8)
    want = F.interpolate(torch.tensor(a), mode=mode, **resize)
    got = G.interpolate(tg.tensor(a), mode=mode, **resize)
    np.testing.assert_array_equal(np.asarray(got), want.numpy())
