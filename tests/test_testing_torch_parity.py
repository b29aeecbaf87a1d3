"""`tapegrad.testing` (assert_close, make_tensor) against `torch.testing`: the same calls pass or
fail with the same error type and message; make_tensor's ranges, strides and errors."""
import math

import numpy as np
import pytest

import tapegrad
from tapegrad.testing import assert_close, make_tensor


# each case builds (actual, expected, options) from a library module `L` (torch or tapegrad)
ASSERT_CASES = {
    "close": lambda L: (L.tensor([1., 2., 3.]), L.tensor([1., 2.5, 3.]), {}),
    "within_tolerance": lambda L: (L.tensor([0.]), L.tensor([1e-6]), {}),
    "integers": lambda L: (L.tensor([1, 2, 3]), L.tensor([1, 4, 3]), {}),
    "zero_dim": lambda L: (L.tensor(1.), L.tensor(2.), {}),
    "zero_dim_int": lambda L: (L.tensor(3), L.tensor(4), {}),
    "zero_dim_bool": lambda L: (L.tensor(True), L.tensor(False), {}),
    "bools": lambda L: (L.tensor([True]), L.tensor([False]), {}),
    "one_element": lambda L: (L.tensor([[1.]]), L.tensor([[2.]]), {}),
    "matrix": lambda L: (L.tensor([[1., 2.], [3, 4]]), L.tensor([[1., 2.], [3, 5]]), {}),
    "dtype": lambda L: (L.tensor([1.]), L.tensor([1.], dtype=L.float64), {}),
    "dtype_unchecked": lambda L: (L.tensor([1., 2.]), L.tensor([2., 3.], dtype=L.float64),
                                  {"check_dtype": False}),
    "loosest_tolerance": lambda L: (L.tensor([1., 2.], dtype=L.float16),
                                    L.tensor([1., 2.002], dtype=L.float64),
                                    {"check_dtype": False}),
    "int_vs_float": lambda L: (L.tensor([1, 2], dtype=L.int32), L.tensor([1., 2.5]),
                               {"check_dtype": False}),
    "shape": lambda L: (L.tensor([1., 2]), L.tensor([1.]), {}),
    "nan": lambda L: (L.tensor([math.nan]), L.tensor([math.nan]), {}),
    "equal_nan": lambda L: (L.tensor([math.nan]), L.tensor([math.nan]), {"equal_nan": True}),
    "equal_nan_other": lambda L: (L.tensor([1., math.nan]), L.tensor([2., math.nan]),
                                  {"equal_nan": True}),
    "nan_actual": lambda L: (L.tensor([1., math.nan]), L.tensor([1., 2.]), {}),
    "inf": lambda L: (L.tensor([0., 1.]), L.tensor([0., math.inf]), {}),
    "exact": lambda L: (L.tensor([1., 2.]), L.tensor([1., 3.]), {"rtol": 0, "atol": 0}),
    "own_tolerance": lambda L: (L.tensor([1., 2.]), L.tensor([1., 2.]) + 1e-3,
                                {"rtol": 0, "atol": 1e-2}),
    "only_rtol": lambda L: (L.tensor([1.]), L.tensor([1.]), {"rtol": 1e-3}),
    "only_atol": lambda L: (L.tensor([1.]), L.tensor([1.]), {"atol": 1e-3}),
    "custom_msg": lambda L: (L.tensor([1., 2.]), L.tensor([1., 2.1]), {"msg": "custom"}),
    "callable_msg": lambda L: ([L.tensor(1.), L.tensor(2.)], [L.tensor(1.), L.tensor(3.)],
                               {"msg": lambda m: "P:" + m}),
    "complex": lambda L: (L.tensor([1 + 1j]), L.tensor([1 + 2j]), {}),
    "bfloat16": lambda L: (L.tensor([1.], dtype=L.bfloat16), L.tensor([1.1], dtype=L.bfloat16),
                           {}),
    "bfloat16_close": lambda L: (L.tensor([1.], dtype=L.bfloat16),
                                 L.tensor([1.01], dtype=L.bfloat16), {}),
    "stride": lambda L: (L.tensor([[1., 2.], [3, 4]]).t(), L.tensor([[1., 3.], [2, 4]]),
                         {"check_stride": True}),
    "stride_of_slice": lambda L: (L.tensor([1., 2.])[::2], L.tensor([1.]),
                                  {"check_stride": True}),
    "requires_grad": lambda L: (L.tensor([1.]).requires_grad_(), L.tensor([1.]), {}),
    "empty": lambda L: (L.tensor([]), L.tensor([]), {}),
    "sequence": lambda L: ([L.tensor(1.), L.tensor(2.)], [L.tensor(1.), L.tensor(3.)], {}),
    "nested": lambda L: ([1, [2, 3]], [1, [2, 4]], {}),
    "tuple_and_list": lambda L: ((1, 2), [1, 2], {}),
    "sequence_length": lambda L: ([1, 2], [1, 2, 3], {}),
    "mapping": lambda L: ({"a": L.tensor(1.)}, {"a": L.tensor(3.)}, {}),
    "mapping_keys": lambda L: ({"a": 1}, {"b": 1}, {}),
    "mapping_and_list": lambda L: ({"a": 1}, [1], {}),
    "floats": lambda L: (1.0, 1.5, {}),
    "floats_close": lambda L: (1.0, 1.0 + 1e-8, {}),
    "ints": lambda L: (1, 2, {}),
    "int_and_float": lambda L: (1, 1.0, {}),
    "complex_numbers": lambda L: (2 + 1j, 2 + 1.1j, {}),
    "numpy_scalars": lambda L: (np.float32(1.0), np.float32(2.0), {}),
    "python_bools": lambda L: (True, False, {}),
    "none": lambda L: (None, None, {}),
    "none_and_number": lambda L: (1, None, {}),
    "tensor_and_float": lambda L: (L.tensor([1.]), 1.0, {}),
    "strings": lambda L: ("a", "a", {}),
    "numpy_arrays": lambda L: (np.array([1.]), np.array([2.]), {}),
    "parameter": lambda L: (L.nn.Parameter(L.tensor([1.])), L.tensor([1.]), {}),
}


def _outcome(module, check, case):
    actual, expected, options = ASSERT_CASES[case](module)
    try:
        check(actual, expected, **options)
    except (AssertionError, TypeError, ValueError) as e:
        return type(e), str(e).replace("torch.", "tapegrad.")
    return None


@pytest.mark.parametrize("case", sorted(ASSERT_CASES))
def test_assert_close_matches_pytorch(case):
    torch = pytest.importorskip("torch")
    assert _outcome(tapegrad, assert_close, case) == _outcome(
        torch, torch.testing.assert_close, case)


def test_assert_close_without_pytorch():
    # float32: rtol 1.3e-6, atol 1e-5, so 1 vs 1 + 1.2e-5 fails and 1 vs 1 + 1.0e-5 passes
    assert_close(tapegrad.tensor([1.]), tapegrad.tensor([1. + 1.0e-5]))
    with pytest.raises(AssertionError, match=r"Greatest absolute difference: 1\.\d+e-05"):
        assert_close(tapegrad.tensor([1.]), tapegrad.tensor([1. + 1.2e-5]))
    with pytest.raises(AssertionError, match="Mismatched elements: 2 / 4 \\(50.0%\\)"):
        assert_close(tapegrad.tensor([1, 2, 3, 4]), tapegrad.tensor([1, 0, 3, 0]))
    with pytest.raises(AssertionError, match="The failure occurred for item \\['w'\\]\\[1\\]"):
        assert_close({"w": [tapegrad.tensor(1.), tapegrad.tensor(2.)]},
                     {"w": [tapegrad.tensor(1.), tapegrad.tensor(5.)]})


DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
          "float64", "complex64"]


@pytest.mark.parametrize("name", DTYPES)
def test_make_tensor_range_and_layout(name):
    dtype = getattr(tapegrad, name)
    t = make_tensor(4, 50, dtype=dtype, device="cpu")
    assert t.shape == (4, 50) and t.dtype is dtype
    values = t.numpy().astype(np.complex128 if dtype.is_complex else np.float64)
    parts = [values.real, values.imag] if dtype.is_complex else [values.real]
    low, high = {"bool": (0, 1), "uint8": (0, 9)}.get(name, (-9, 9))
    for part in parts:
        assert part.min() >= low and part.max() <= high
    assert len(np.unique(values)) > 1
    strided = make_tensor((3, 4), dtype=dtype, noncontiguous=True)
    assert strided.shape == (3, 4) and strided.stride() == (8, 2)
    assert not strided.is_contiguous()
    if name not in ("bool",):
        nonzero = make_tensor(200, dtype=dtype, low=-1, high=1, exclude_zero=True)
        assert (nonzero.numpy() != 0).all()


def test_make_tensor_requires_grad():
    t = make_tensor(3, dtype=tapegrad.float64, low=0.5, high=0.6, requires_grad=True)
    assert t.requires_grad and t.is_leaf
    assert ((t.detach().numpy() >= 0.5) & (t.detach().numpy() < 0.6)).all()


MAKE_ERRORS = {
    "int_requires_grad": dict(dtype="int64", requires_grad=True),
    "low_not_below_high": dict(dtype="float32", low=2, high=1),
    "nan_bound": dict(dtype="float32", low=math.nan),
    "outside_dtype": dict(dtype="uint8", low=-20, high=-10),
    "noncontiguous_and_format": dict(dtype="float32", noncontiguous=True,
                                     memory_format="contiguous_format"),
}


@pytest.mark.parametrize("case", sorted(MAKE_ERRORS))
def test_make_tensor_errors_match_pytorch(case):
    torch = pytest.importorskip("torch")

    def outcome(L, make):
        kwargs = dict(MAKE_ERRORS[case])
        kwargs["dtype"] = getattr(L, kwargs["dtype"])
        if "memory_format" in kwargs:
            kwargs["memory_format"] = getattr(L, kwargs["memory_format"])
        with pytest.raises(Exception) as info:
            make((2, 3), device="cpu", **kwargs)
        return info.type, str(info.value).replace("torch.", "tapegrad.").replace(
            "tapegrad.testing.", "")

    theirs = outcome(torch, torch.testing.make_tensor)
    ours = outcome(tapegrad, make_tensor)
    assert ours[0] is theirs[0]
    assert ours[1].split(",")[0] == theirs[1].split(",")[0]


RANDINT_BOUNDS = [(0, 3, "bool"), (0, 2, "bool"), (0, 300, "uint8"), (-1, 3, "uint8"),
                  (-129, 0, "int8"), (0, 2 ** 15 + 1, "int16"), (0, 5, "float32")]


@pytest.mark.parametrize("low,high,name", RANDINT_BOUNDS)
def test_randint_bounds_match_pytorch(low, high, name):
    torch = pytest.importorskip("torch")

    def outcome(L):
        try:
            t = L.randint(low, high, (50,), dtype=getattr(L, name))
        except RuntimeError as e:
            return str(e)
        values = t.numpy().astype(np.float64)
        assert values.min() >= low and values.max() < high and values.dtype.kind == "f"
        return str(t.dtype).replace("torch.", "tapegrad.")

    assert outcome(tapegrad) == outcome(torch)
