"""Calls where PyTorch raises and tapegrad used to return a value: the same error type and
message (each program runs unchanged on `torch` and on `tapegrad`)."""
from __future__ import annotations

import re

import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")


def _pad(m, shape, pad, mode):
    return m.nn.functional.pad(m.zeros(shape), pad, mode=mode)


RAISES = {
    "reflect_left": lambda m: _pad(m, (1, 1, 3), (3, 0), "reflect"),
    "reflect_right": lambda m: _pad(m, (1, 1, 3), (0, 3), "reflect"),
    "reflect_2d_height": lambda m: _pad(m, (1, 1, 3, 4), (0, 0, 3, 0), "reflect"),
    "reflect_2d_width": lambda m: _pad(m, (1, 4, 5), (5, 1, 0, 0), "reflect"),
    "reflect_3d_depth": lambda m: _pad(m, (1, 2, 3, 3, 3), (0, 0, 0, 0, 0, 3), "reflect"),
    "reflect_empty": lambda m: _pad(m, (1, 1, 0), (0, 0), "reflect"),
    "replicate_empty_2d": lambda m: _pad(m, (2, 0, 3), (1, 1, 1, 1), "replicate"),
    "reflect_1d_input": lambda m: _pad(m, (3,), (1, 1), "reflect"),
    "replicate_too_many": lambda m: _pad(m, (2, 3), (1, 1, 1, 1), "replicate"),
    "circular_twice": lambda m: _pad(m, (1, 1, 3), (4, 0), "circular"),
    "circular_twice_2d": lambda m: _pad(m, (1, 1, 3, 3), (0, 0, 0, 4), "circular"),
    "squeeze_0d": lambda m: m.tensor(1.0).squeeze(10),
    "squeeze_0d_negative": lambda m: m.tensor(1.0).squeeze(-2),
    "squeeze_0d_dims": lambda m: m.tensor(1.0).squeeze((0, 1)),
    "cumsum_0d": lambda m: m.tensor(1.0).cumsum(dim=1),
    "cumprod_0d": lambda m: m.tensor(1.0).cumprod(dim=-2),
    "sort_0d": lambda m: m.tensor(1.0).sort(1),
    "argsort_0d": lambda m: m.tensor(1.0).argsort(dim=1),
    "argmax_0d": lambda m: m.tensor(1.0).argmax(1),
    "linspace_bool": lambda m: m.linspace(0, 1, 5, dtype=m.bool),
    "div_rounding_mode": lambda m: m.div(m.ones(2), 2, rounding_mode="typo"),
    "div_rounding_mode_inplace": lambda m: m.ones(2).div_(2, rounding_mode="typo"),
}

# the same calls at their limits, which PyTorch accepts: the values must agree
ACCEPTS = {
    "reflect_limit": lambda m: _pad(m, (1, 1, 3), (2, 2), "reflect"),
    "circular_limit": lambda m: _pad(m, (1, 1, 3), (3, 3), "circular"),
    "circular_unbatched": lambda m: _pad(m, (1, 3), (1, 1), "circular"),
    "squeeze_0d": lambda m: m.tensor(1.0).squeeze(-1),
    "cumsum_0d": lambda m: m.tensor(2.0).cumsum(dim=0),
    "cumprod_0d": lambda m: m.tensor(2.0).cumprod(dim=-1),
    "sort_0d": lambda m: m.tensor(2.0).sort(0).values,
}


@pytest.mark.parametrize("name", list(RAISES))
def test_raises_as_pytorch(name):
    with pytest.raises(Exception) as want:
        RAISES[name](torch)
    with pytest.raises(type(want.value), match="^" + re.escape(str(want.value)) + "$"):
        RAISES[name](tg)


@pytest.mark.parametrize("name", list(ACCEPTS))
def test_accepts_as_pytorch(name):
    want, got = ACCEPTS[name](torch), ACCEPTS[name](tg)
    assert tuple(got.shape) == tuple(want.shape)
    assert got.tolist() == want.tolist()
