"""Shape buckets for ragged batches: one backward program per bucket of batch sizes.

A loop whose batch size changes (a last partial batch, batches drawn from 1..64) would compile
one backward program per size. Once a segment's structure has been met at two batch sizes, and
the engine can prove the batch dimension safe to pad, the segment runs on data padded to a bucket
size instead (8, 16, 32, 64, then steps of a sixteenth of the power of two), so the sizes of one
bucket share one program. A size whose bucket has no program yet runs on the smallest larger
bucket that has one, until the estimated time its padding rows have cost there would have paid
for compiling its own (`size_for`); the first bucket compiled is that of the largest size met, so
a loop of sizes 1..64 compiles one.

The proof, per program (`plan`): the batch size `n` is the leading size of the data arrays (the
frontier arrays that are not parameter values). Each node fed by a batched value must be
*row-wise* -- row `j` of its output computed from row `j` of its batched inputs and from whole
unbatched ones (pointwise ops with broadcasting that keeps dim 0, `linear`, `matmul`, softmax
and norms over other dims, `embedding`, reshapes that keep dim 0) -- or a *maskable reduction*
of dim 0 (`sum`, `mean`, and the losses with `reduction="mean"|"sum"`), which the bucketed
program computes over the first `n` rows only. The root must be unbatched (a loss), and so must
every gradient the program returns. Anything else keeps exact shapes.

Why the padded program gives the exact run's numbers: the padding rows are copies of row 0, so
every value computed from them is one the exact run computes too; the masked reductions leave
them out, so they receive an exactly zero cotangent, and `0 * finite` adds nothing to a gradient.
The one way a padding row could still show is a non-finite value (`0 * inf` is NaN): the
program returns whether all its outputs are finite, and when they are not, the segment is run
again at exact shapes, so NaN and inf come out exactly as they would without buckets. Results
agree with the exact-shape run up to the summation order of XLA's kernels at the two sizes.
"""
from __future__ import annotations

import collections
import functools
import math
import threading

import jax
import jax.numpy as jnp
import numpy as np

from .._core.compile import (COMPUTED, FRONTIER, STOP, cache, node_fn, node_key, on_clear,
                             quick_compile_s)
from .._core.graph import AccumulateGrad, GetItem, Node
from .._core.jax_compat import put

MIN_BUCKET = 8
# Estimated run time per padding row, forward and backward: per element of a batched value, and
# per multiply-add of a batched `linear` or `matmul` (the quick tier's kernels on the 2-core CPU,
# within a few times; they decide only when a size gets a bucket program of its own)
ELEMENT_S = 3e-9
MAC_S = 1.5e-10
_MAX_ENTRIES = 512
_plans: collections.OrderedDict = collections.OrderedDict()  # exact key -> Plan | None
_met: collections.OrderedDict = collections.OrderedDict()  # structure -> _Met
_enabled = [True]


def set_shape_buckets(enabled: bool) -> None:
    """Whether a backward met at several batch sizes runs on padded batches, one program per
    size bucket (default True; see `buckets`). Off, every batch size has its own program."""
    _enabled[0] = bool(enabled)


def _forget() -> None:
    _plans.clear()
    _met.clear()


on_clear.append(_forget)


def _remember(table: collections.OrderedDict, key, value):
    table[key] = value
    while len(table) > _MAX_ENTRIES:
        table.popitem(last=False)
    return value


def bucket_size(n: int) -> int:
    """The padded size for `n` rows: at least MIN_BUCKET, then powers of two up to 64, then
    multiples of a sixteenth of the power of two at or above `n` (under 12.5% padding)."""
    if n <= MIN_BUCKET:
        return MIN_BUCKET
    p = 1 << (n - 1).bit_length()
    if p <= 64:
        return p
    step = p // 16
    return -(-n // step) * step


class _NotRowwise(Exception):
    pass


class Plan:
    """How one exact-shape segment runs bucketed: which frontier arrays are padded, which
    outputs are sliced back, and the rewritten program entries."""

    __slots__ = ("n", "padded", "rows", "rows_p", "rows_f", "entries_p", "entries_f", "structure",
                 "row_s")


class _Met:
    """What a bucketed structure has met: its batch sizes, the buckets given a program, and per
    bucket without one, the estimated seconds its sizes have lost on larger ones."""

    __slots__ = ("sizes", "built", "lost")

    def __init__(self) -> None:
        self.sizes: set = set()
        self.built: set = set()
        self.lost: dict = {}


class Rows(threading.local):
    """The valid-row count of a bucketed program being traced (a traced scalar, set per trace;
    per thread, as two threads may trace the same program at once)."""

    count = None

    def mask(self, x):
        """True on the first `count` rows of `x` (dim 0), broadcastable to `x`."""
        valid = jnp.arange(x.shape[0]) < self.count
        return valid.reshape((x.shape[0],) + (1,) * (x.ndim - 1))

    def keep(self, x, fill):
        return jnp.where(self.mask(x), x, jnp.asarray(fill, x.dtype))


# -- the rules: per op, whether a node fed by batched values is row-wise or a masked reduction ---
# A rule gets (node, its static arguments as a dict, which inputs are batched, n, the Rows of the
# program) and returns (batched, fn): whether its output is batched, and the function the
# bucketed program applies (None: the node's own). It raises _NotRowwise where it cannot prove.

def _arrays(node, flags):
    return [(i, f) for i, f in zip(node.inputs, flags) if isinstance(i, Node)]


def _pointwise(node, static, flags, n, rows):
    rank = len(node.shape)
    for i, batched in _arrays(node, flags):
        if batched:
            if len(i.shape) != rank:
                raise _NotRowwise
        elif len(i.shape) == rank and i.shape[0] != 1:
            raise _NotRowwise  # an unbatched operand of the output's rank would not broadcast
    return True, None


def _guard(node, static, flags, n, rows):
    """A value check passes its first input through; the test over padding rows (copies of row
    0) fails only where row 0 fails, and reports the first failing value, a valid row's."""
    return flags[0], None


def _first_only(node, static, flags, n, rows):
    """Row-wise in the first input (rank >= 2), every other input unbatched (weights)."""
    if not flags[0] or any(flags[1:]) or len(node.inputs[0].shape) < 2:
        raise _NotRowwise
    return True, None


def _matmul(node, static, flags, n, rows):
    a, b = node.inputs
    if flags[1] or not flags[0] or len(a.shape) < 2 or not (
            len(b.shape) <= 2 or len(b.shape) < len(a.shape)):
        raise _NotRowwise
    return True, None


def _along(name: str):
    """Row-wise when the static `name` dims leave dim 0 alone."""
    def rule(node, static, flags, n, rows):
        rank = len(node.inputs[0].shape)
        dims = static[name]
        dims = dims if isinstance(dims, (tuple, list)) else (dims,)
        if any(flags[1:]) or rank < 2 or any(d % rank == 0 for d in dims):
            raise _NotRowwise
        return True, None
    return rule


def _trailing(node, static, flags, n, rows):
    """layer_norm / rms_norm: normalised over trailing dims that leave dim 0 out."""
    if any(flags[1:]) or static["n_dims"] >= len(node.inputs[0].shape):
        raise _NotRowwise
    return True, None


def _embedding(node, static, flags, n, rows):
    if not flags[0] or flags[1]:
        raise _NotRowwise
    return True, None


def _reshape(node, static, flags, n, rows):
    x, shape = node.inputs[0], tuple(static["shape"])
    if (not shape or shape[0] not in (n, -1) or node.shape[0] != n
            or math.prod(node.shape[1:]) != math.prod(x.shape[1:])):
        raise _NotRowwise
    fn = functools.partial(node.op.fn, **dict(static, shape=(-1,) + shape[1:]))
    return True, fn


def _permute(node, static, flags, n, rows):
    if static["dims"][0] % len(node.inputs[0].shape) != 0:
        raise _NotRowwise
    return True, None


def _transpose(node, static, flags, n, rows):
    rank = len(node.inputs[0].shape)
    if rank < 2 or static["dim0"] % rank == 0 or static["dim1"] % rank == 0:
        raise _NotRowwise
    return True, None


def _reduction(node, static, flags, n, rows):
    """sum / mean: row-wise over other dims; over dim 0, the first `n` rows only."""
    shape = node.inputs[0].shape
    dim = static["dim"]
    dims = tuple(range(len(shape))) if dim is None else tuple(
        d % len(shape) for d in (dim if isinstance(dim, (tuple, list)) else (dim,)))
    if 0 not in dims:
        return True, None
    if node.op.name == "sum":
        fn = node_fn(node)
        return False, lambda x: fn(rows.keep(x, 0))
    rest = math.prod(shape[d] for d in dims if d != 0)

    def mean(x):
        acc = jnp.float32 if jnp.finfo(x.dtype).bits < 32 else x.dtype
        total = jnp.sum(rows.keep(x, 0).astype(acc), axis=dims, keepdims=static["keepdim"])
        return (total / (rows.count * rest).astype(acc)).astype(x.dtype)
    return False, mean


def _masked_sum(loss, static, rows):
    """A loss's `reduction` over the valid rows of its unreduced form."""
    total = jnp.sum(rows.keep(loss, 0))
    if static["reduction"] == "sum":
        return total
    return total / (rows.count * math.prod(loss.shape[1:])).astype(loss.dtype)


def _class_loss(node, static, flags, n, rows):
    """cross_entropy / nll_loss over class indices: padded rows get `ignore_index`, so PyTorch's
    own mean (over the targets not ignored, class weights included) leaves them out."""
    if not (flags[0] and flags[1]) or any(flags[2:]) or len(node.inputs[0].shape) < 2:
        raise _NotRowwise
    if static["reduction"] == "none":
        return True, None
    fn = node_fn(node)
    if static.get("probs"):
        if static["label_smoothing"] or len(node.inputs) > 2:
            raise _NotRowwise
        unreduced = functools.partial(node.op.fn, **dict(static, reduction="none"))
        return False, lambda x, t: _masked_sum(unreduced(x, t), static, rows)
    ignore = static["ignore_index"]
    return False, lambda x, t, *w: fn(x, rows.keep(t, ignore), *w)


def _elementwise_loss(node, static, flags, n, rows):
    x, target = node.inputs[:2]
    if len(node.inputs) != 2 or not (flags[0] and flags[1]) or len(x.shape) != len(target.shape):
        raise _NotRowwise
    if static["reduction"] == "none":
        return True, None
    unreduced = functools.partial(node.op.fn, **dict(static, reduction="none"))
    return False, lambda x, t: _masked_sum(unreduced(x, t), static, rows)


_POINTWISE = (
    "abs add addcdiv addcmul bitwise_and bitwise_left_shift bitwise_or bitwise_right_shift "
    "bitwise_xor ceil clamp copysign eq floor floor_divide fmax fmin fmod frac ge gt heaviside "
    "hypot le lerp lt maximum minimum mul ne neg pow relu remainder round sgn sign square sub "
    "trunc where acos acosh asin asinh atan atan2 atanh cos cosh digamma div erf erfinv exp exp2 "
    "expm1 lgamma log log10 log1p log2 logaddexp logit polygamma reciprocal rsqrt sigmoid sin "
    "sinh sqrt tan tanh xlogy alias clone to_copy celu elu gelu hardsigmoid hardswish hardtanh "
    "leaky_relu log_sigmoid mish relu6 selu silu softplus softsign nan_to_num masked_fill "
    "isfinite isinf isnan logical_and logical_not logical_or logical_xor bitwise_not").split()
RULES = {name: _pointwise for name in _POINTWISE}
RULES.update(
    check=_guard, linear=_first_only, prelu=_first_only, matmul=_matmul, embedding=_embedding,
    softmax=_along("dim"), log_softmax=_along("dim"), layer_norm=_trailing, rms_norm=_trailing,
    reshape=_reshape, unsafe_view=_reshape, permute=_permute, transpose=_transpose,
    sum=_reduction, mean=_reduction, cross_entropy=_class_loss, nll_loss=_class_loss,
    mse_loss=_elementwise_loss, l1_loss=_elementwise_loss, smooth_l1_loss=_elementwise_loss,
    huber_loss=_elementwise_loss, binary_cross_entropy=_elementwise_loss,
    binary_cross_entropy_with_logits=_elementwise_loss)


# -- the plan ---------------------------------------------------------------------------------------

def plan(key, tr, walk_p, walk_f, kinds):
    """The bucketed form of the segment under exact `key`, when it is worth it: the segment
    proven safe to pad, its structure met at another batch size, and no exact program for this
    size compiled yet (a loop of one batch size keeps its exact program). Else None."""
    if not _enabled[0] or key in cache.programs:
        return None
    if key in _plans:
        found = _plans[key]
        _plans.move_to_end(key)
    else:
        found = _remember(_plans, key, _analyse(tr, walk_p, walk_f, kinds))
    if found is None:
        return None
    met = _met.get(found.structure)
    if met is None:
        met = _remember(_met, found.structure, _Met())
    if len(met.sizes) < 2:
        met.sizes.add(found.n)
        if len(met.sizes) < 2:
            return None
    return found


def size_for(found: Plan, nodes: int) -> int:
    """The bucket `found` runs in: its own where that has a program; else the smallest larger one
    with a program, while the rows padded beyond its own have cost less than compiling it (a
    quick compile of `nodes` nodes); else its own, or at once the bucket of the largest size met
    when no larger bucket has a program (the sizes to come are likely at most that)."""
    met = _met[found.structure]
    met.sizes.add(found.n)
    own = bucket_size(found.n)
    if own not in met.built:
        larger = [b for b in met.built if b > own]
        lost = met.lost.get(own, 0.0)
        if larger and lost < quick_compile_s(nodes):
            size = min(larger)
            met.lost[own] = lost + (size - own) * found.row_s
            return size
        own = own if larger else bucket_size(max(met.sizes))
        met.built.add(own)
    return own


def _analyse(tr, walk_p, walk_f, kinds):
    data = _data(tr, walk_p, walk_f)
    sizes = collections.Counter(tr.frontier[i].shape[0] for i in data)
    for n, _ in sizes.most_common(2):
        if n < 1:
            continue
        try:
            return _prove(n, tr, walk_p, walk_f, kinds, data)
        except _NotRowwise:
            continue
    return None


def _data(tr, walk_p, walk_f) -> list:
    """The frontier arrays that reach the backward other than as parameter values: read by it
    directly, or by the values of its stops that are not leaves. (The old values and gradients
    that an update in place of a parameter reads reach it only as that parameter's value.)"""
    stops = walk_f.stops
    wanted = {r for s, r in zip(stops, walk_p.top_refs) if type(s) is not AccumulateGrad}
    wanted.update(r for refs in walk_f.in_refs for r in refs if r % 3 == FRONTIER)
    for i in range(len(walk_p.nodes) - 1, -1, -1):
        if i * 3 + COMPUTED in wanted:
            wanted.update(walk_p.in_refs[i])
    params = {id(s.inputs[0]) for s in stops if type(s) is AccumulateGrad}
    read = sorted(r // 3 for r in wanted if r % 3 == FRONTIER)
    return [i for i in read if isinstance(tr.frontier[i], Node) and tr.frontier[i].shape
            and id(tr.frontier[i]) not in params]


def _prove(n, tr, walk_p, walk_f, kinds, data):
    padded = tuple(i for i in data if tr.frontier[i].shape[0] == n)
    if not all(_single_device(x.value) for x in tr.frontier if isinstance(x, Node)):
        raise _NotRowwise  # sharded programs keep their shapes
    front = {i * 3 + FRONTIER for i in padded}
    rows = Rows()
    entries_p, rows_p, key_p = _rewrite(walk_p, n, front, (), rows)
    stops = [r in front or (r % 3 == COMPUTED and rows_p[r // 3])
             for r in walk_p.top_refs[:len(walk_f.stops)]]
    if any(b and k != "const" for b, k in zip(stops, kinds)):
        raise _NotRowwise  # a gradient with the batch dimension (an input's)
    entries_f, rows_f, key_f = _rewrite(walk_f, n, front, stops, rows)
    top = walk_f.top_refs[0]
    if (top % 3 == COMPUTED and rows_f[top // 3]) or top in front:
        raise _NotRowwise  # a root with the batch dimension
    if not any(rows_f) and not any(stops):
        raise _NotRowwise  # nothing batched reaches the root: nothing to pad
    frontier = tuple((type(x),) if not isinstance(x, Node) else
                     (("batch",) + tuple(x.shape[1:]) if i in padded else tuple(x.shape), x.dtype)
                     for i, x in enumerate(tr.frontier))
    p = Plan()
    p.n, p.padded, p.rows = n, padded, rows
    p.row_s = _row_seconds(walk_p.nodes, rows_p) + _row_seconds(walk_f.nodes, rows_f)
    p.rows_p, p.rows_f, p.entries_p, p.entries_f = rows_p, rows_f, entries_p, entries_f
    p.structure = (frontier, key_p, walk_p.top_refs, key_f, walk_f.top_refs, kinds)
    return p


def _row_seconds(nodes, batched) -> float:
    """The estimated run time of one row of the batched nodes, forward and backward."""
    total = 0.0
    for node, b in zip(nodes, batched):
        if b:
            elements = math.prod(node.shape[1:])
            total += elements * ELEMENT_S
            if node.op.name in ("linear", "matmul"):
                total += elements * node.inputs[0].shape[-1] * MAC_S
    return 3 * total


def _single_device(value) -> bool:
    sharding = getattr(value, "sharding", None)
    return sharding is None or len(sharding.device_set) == 1


def _rewrite(walk, n, front, stops, rows: Rows):
    """Per node of `walk`: the function the bucketed program applies, whether its output is
    batched, and its part of the bucket key (statics that named `n` rewritten)."""
    batched, entries, key = [], [], []
    for node, refs in zip(walk.nodes, walk.in_refs):
        flags = [r in front if r % 3 == FRONTIER else stops[r // 3] if r % 3 == STOP
                 else batched[r // 3] for r in refs]
        fn = None
        out = False
        if any(flags):
            rule = RULES.get(node.op.name) if type(node) not in (GetItem, AccumulateGrad) \
                and node.op is not None else None
            if rule is None or node.op.n_out != 1:
                raise _NotRowwise
            out, fn = rule(node, dict(node.static), flags, n, rows)
        batched.append(out)
        entries.append((node_fn(node) if fn is None else fn, refs))
        nk = node_key(node)
        if fn is not None and node.op.name in ("reshape", "unsafe_view"):
            nk = (node.op, tuple((k, (-1,) + tuple(v)[1:] if k == "shape" else v)
                                 for k, v in node.static))
        key.append((nk, refs))
    return tuple(entries), tuple(batched), tuple(key)


def pad(value, size: int):
    """`value` with rows appended up to `size`: copies of its first row, made on the host so
    that a new batch size compiles nothing."""
    host = np.asarray(value)
    extra = np.broadcast_to(host[:1], (size - host.shape[0],) + host.shape[1:])
    return _put(np.concatenate([host, extra]), value)


def unpad(value, n: int):
    """The first `n` rows of a padded result, sliced on the host (no program per size)."""
    return _put(np.asarray(value)[:n], value)


def _put(host: np.ndarray, like):
    """On `like`'s device, committed as `like` is: the programs then see the same arguments at
    every step (jax.jit compiles again where commitment changes)."""
    return put(host, next(iter(like.sharding.device_set)), like.committed)

