"""Shape rules (`Op.shape`): the shape and dtype a row's rule gives without tracing equal what
`jax.eval_shape` of the row's own function gives, for every row that has one, over shapes with
broadcasting, 0-d and empty dimensions, every dtype kind and Python scalars; where tracing
refuses the inputs, so does recording with the rule."""
import itertools

import jax
import numpy as np
import pytest

import tapegrad as tg
from tapegrad._core import dtype as _dtype, record as _record
from tapegrad._core.graph import REGISTRY

KINDS = [_dtype.float32, _dtype.float64, _dtype.bfloat16, _dtype.int64, _dtype.uint8,
         _dtype.bool, _dtype.complex64]
# shapes per arity, cycled: equal, broadcast against 1s and missing dimensions, 0-d, empty
SHAPES = [[(3, 4)], [(2, 1, 4), (3, 1)], [(), (5,)], [(0, 3), (1, 3)], [(4,), (), (2, 4)]]
RULED = sorted(name for name, op in REGISTRY.items() if op.shape is not None)


def traced(op, signature, static):
    """The reference: the row's function traced at these shapes (None where it refuses them)."""
    abstract = [jax.ShapeDtypeStruct(s[0], s[1].np) if isinstance(s, tuple) else s(1)
                for s in signature]
    try:
        with jax.enable_x64(True):
            res = jax.eval_shape(lambda *xs: op.fn(*xs, **static), *abstract)
    except (TypeError, ValueError):
        return None
    return tuple(res.shape), _dtype.from_numpy_dtype(res.dtype)


def ruled(op, signature, static):
    try:
        return op.shape(signature, **static)
    except (TypeError, ValueError):
        return None


def elementwise_signatures():
    """One to four inputs: every dtype alone, paired with itself, float32 and int64, and with
    Python scalars, and same-dtype triples and quadruples (addcmul's value), over the shape
    patterns in turn."""
    kind_lists = ([(k,) for k in KINDS] + [(a, b) for a, b in itertools.product(KINDS, repeat=2)
                     if a is b or _dtype.float32 in (a, b) or _dtype.int64 in (a, b)]
                  + [(k, s) for k in KINDS for s in (float, int, bool)] + [(float, k) for k in KINDS]
                  + [(k,) * 3 for k in KINDS] + [(_dtype.float32, _dtype.float64, _dtype.int64),
                                                  (_dtype.int64, _dtype.float32, float)]
                  + [(k,) * 3 + (s,) for k in KINDS for s in (float, int)])
    for n, kinds in enumerate(kind_lists):
        shapes = itertools.cycle(SHAPES[n % len(SHAPES)])
        yield tuple(k if isinstance(k, type) else (next(shapes), k) for k in kinds)


def test_every_ruled_row_is_tested():
    assert set(RULED) >= {"linear", "cross_entropy", "mul", "add", "relu", "tanh", "eq"}
    assert {n for n in RULED if REGISTRY[n].promote is None} <= {"linear", "cross_entropy"}


@pytest.mark.parametrize("name", [n for n in RULED if REGISTRY[n].promote is not None])
def test_elementwise_rule_equals_tracing(name):
    op = REGISTRY[name]
    compared = 0
    for signature in elementwise_signatures():
        try:
            static = {"dtype": _record.promote(op, signature)}
        except (TypeError, ValueError, KeyError):
            continue
        expected = traced(op, signature, static)
        # where the row refuses this arity or dtype, tracing raises, and so does the rule
        assert ruled(op, signature, static) == expected, (name, signature)
        compared += expected is not None
    assert compared >= 5, (name, compared)


def _floats():
    return [_dtype.float32, _dtype.float64, _dtype.bfloat16, _dtype.float16]


@pytest.mark.parametrize("dtype", _floats() + [_dtype.int64])
def test_linear_rule_equals_tracing(dtype):
    op = REGISTRY["linear"]
    cases = [[(5, 3), (4, 3)], [(5, 3), (4, 3), (4,)], [(3,), (4, 3), (4,)], [(2, 6, 3), (4, 3)],
             [(0, 3), (4, 3), (4,)], [(5, 3), (3,)], [(5, 3), (4, 3), (1,)], [(5, 3), (4, 3), ()],
             [(3,), (3,), ()]]
    for shapes in cases:
        signature = tuple((s, dtype) for s in shapes)
        got = op.shape(signature)
        if got is not None:  # None: traced instead
            assert got == traced(op, signature, {}), shapes
    assert (op.shape((((5, 3), dtype), ((4, 3), dtype))) is not None) == dtype.is_floating_point
    # mixed dtypes are left to tracing (and to linear's own dtype check)
    assert op.shape((((5, 3), _dtype.float32), ((4, 3), _dtype.float64))) is None


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", _floats())
def test_cross_entropy_rule_equals_tracing(reduction, dtype):
    op = REGISTRY["cross_entropy"]
    cases = [((6, 4), (6,), _dtype.int64, False), ((4,), (), _dtype.int64, False),
             ((2, 4, 3, 5), (2, 3, 5), _dtype.int64, False), ((0, 4), (0,), _dtype.int64, False),
             ((6, 4), (6, 4), dtype, True), ((2, 4, 3), (2, 4, 3), dtype, True)]
    for x, t, t_dtype, probs in cases:
        for weight in ((), (((4,), dtype),)):
            for smoothing in (0.0, 0.1):
                static = dict(reduction=reduction, ignore_index=-100,
                              label_smoothing=smoothing, probs=probs)
                signature = ((x, dtype), (t, t_dtype)) + weight
                assert op.shape(signature, **static) == traced(op, signature, static), \
                    (x, t, weight, smoothing)


def test_recording_with_a_rule_raises_where_tracing_does():
    with pytest.raises(RuntimeError, match="must match the size of tensor b"):
        tg.ones(2, 3) + tg.ones(4, 3)
    with pytest.raises(RuntimeError, match="not implemented for 'Float'"):
        tg.ones(2, 3).bitwise_and(tg.ones(2, 3))
    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied"):
        tg.nn.functional.linear(tg.ones(2, 3), tg.ones(4, 5))
