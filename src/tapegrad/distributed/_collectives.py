"""Collectives on tensors, with PyTorch's in-place semantics, as SPMD programs over the group.

Each process's tensor becomes its slice of a global `jax.Array` of shape `(world, *shape)`,
sharded along the group mesh's "rank" axis. One jitted program reduces, selects or reshapes
along that axis into a replicated result (sharded again for reduce-scatter and scatter), and
XLA's SPMD partitioner turns that into an all-reduce, all-gather, reduce-scatter or
collective-permute. This process's shard of the result is written into the tensor in place
(outside autograd, as c10d's collectives are). Before each one, the processes agree on what they
run (`ProcessGroup.agree`), so a mismatch raises instead of hanging.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .._core import grad_mode as _grad_mode
from .._tensor.inplace import set_value
from .._tensor.tensor import Tensor
from ._group import ProcessGroup, ReduceOp, Work, default_group

_TRACED = ("torch.distributed collectives run eagerly, between the processes' own programs; "
           "this tensor is being traced (tapegrad.compile or a JAX transformation). Call the "
           "collective outside the compiled step.")


def _reduce(op: ReduceOp, pg: ProcessGroup):
    """The reduction over the stacked axis 0, in the input's dtype."""
    world = pg.size()
    if op is ReduceOp.SUM:
        return lambda g: jnp.sum(g, axis=0, dtype=g.dtype)
    if op is ReduceOp.AVG:  # divided first, as DDP's gradient averaging
        return lambda g: jnp.sum(g / jnp.asarray(world, g.dtype), axis=0, dtype=g.dtype)
    if op is ReduceOp.PRODUCT:
        return lambda g: jnp.prod(g, axis=0, dtype=g.dtype)
    if op is ReduceOp.MIN:
        return lambda g: jnp.min(g, axis=0)
    if op is ReduceOp.MAX:
        return lambda g: jnp.max(g, axis=0)
    bitwise = {ReduceOp.BAND: jnp.bitwise_and, ReduceOp.BOR: jnp.bitwise_or,
               ReduceOp.BXOR: jnp.bitwise_xor}[op]
    # gloo's all-reduce has no bitwise reductions: gather everything, then reduce locally
    return lambda g: bitwise.reduce(jax.lax.with_sharding_constraint(g, pg.replicated), axis=0)


def _check_op(op, tensors) -> ReduceOp:
    if not isinstance(op, ReduceOp):
        raise TypeError(f"op must be a torch.distributed.ReduceOp, got {op!r}")
    for t in tensors:
        d = t.dtype
        if op is ReduceOp.AVG and not (d.is_floating_point or d.is_complex):
            raise RuntimeError(f"ReduceOp.AVG needs floating point or complex tensors, got {d}")
        if op in (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR) and (d.is_floating_point
                                                                   or d.is_complex):
            raise RuntimeError(f"ReduceOp.{op.name} needs integer or bool tensors, got {d}")
    return op


def fingerprint(op_type: str, arrays, **extra) -> str:
    """What a collective is, as every process must agree on it (PyTorch's fingerprint fields)."""
    shapes = [list(a.shape) for a in arrays]
    dtypes = [str(a.dtype) for a in arrays]
    tail = "".join(f", {k}={v}" for k, v in extra.items())
    return f"OpType={op_type}, TensorShape={shapes}, TensorDtypes={dtypes}{tail}"


def local_value(pg: ProcessGroup, t: Tensor) -> jax.Array:
    """`t`'s value on this process's collective device."""
    if not isinstance(t, Tensor):
        raise TypeError(f"collectives take tensors, got {type(t).__name__}")
    value = t._value()
    if isinstance(value, jax.core.Tracer):
        raise RuntimeError(_TRACED)
    if value.sharding.device_set != {pg.device}:
        if len(value.sharding.device_set) > 1:
            raise RuntimeError("a tensor spread over several devices (a DTensor or a "
                               "DataParallel batch) cannot join a process-group collective; "
                               "pass its full_tensor() or one shard")
        value = jax.device_put(value, pg.device)
    return value


def _program(pg: ProcessGroup, key: tuple, fn, out_shardings):
    prog = pg.programs.get(key)
    if prog is None:
        prog = pg.programs[key] = jax.jit(fn, out_shardings=out_shardings)
    return prog


def _lift(x):
    return [v[None] for v in x]


def stacked(pg: ProcessGroup, values: list) -> list:
    """Each local array as this process's slice of a global `(world, *shape)` array."""
    with jax.enable_x64(True):
        lifted = _program(pg, ("lift",), _lift, None)(values)
    return [jax.make_array_from_single_device_arrays((pg.size(),) + v.shape[1:], pg.stacked, [v])
            for v in lifted]


def _run(pg: ProcessGroup, key: tuple, fn, values: list, out_shardings=None) -> list:
    """Run `fn` over the stacked global arrays; this process's part of each result."""
    globals_ = stacked(pg, values)
    prog = _program(pg, key, fn, pg.replicated if out_shardings is None else out_shardings)
    with jax.enable_x64(True):
        outs = prog(globals_)
    return [o.addressable_data(0) for o in outs]


def reduce_arrays(pg: ProcessGroup, values: list, op: ReduceOp) -> list:
    """`values` (arrays on `pg.device`) reduced over the processes, one program for all."""
    r = _reduce(op, pg)
    return _run(pg, ("all_reduce", op), lambda gs: [r(g) for g in gs], values)


def write(t: Tensor, value: jax.Array) -> None:
    """Store a collective's result in `t`, in place, on the device `t` was on."""
    if not isinstance(value, jax.core.Tracer):  # (traced: inside a compiled step)
        devices = t._value().sharding.device_set
        if value.sharding.device_set != devices and len(devices) == 1:
            value = jax.device_put(value, next(iter(devices)))
    if not t._is_view():
        set_value(t, value)
    else:  # a view writes through its base
        with _grad_mode.no_grad():
            t.copy_(Tensor._from_array(value))


def _root(pg: ProcessGroup, rank, group_rank, name: str) -> int:
    if rank is None:
        rank = group_rank
    if rank is None:
        raise ValueError(f"Either {name} or group_{name} must be specified")
    if not 0 <= rank < pg.size():
        raise ValueError(f"Invalid {name} rank {rank}: the world has {pg.size()} ranks")
    return rank


def _done(async_op: bool):
    return Work() if async_op else None


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce `tensor` over all processes; every process gets the result in `tensor`."""
    pg = default_group(group)
    _check_op(op, [tensor])
    value = local_value(pg, tensor)
    pg.agree(fingerprint("ALLREDUCE", [value], ReduceOp=op.name))
    write(tensor, reduce_arrays(pg, [value], op)[0])
    return _done(async_op)


def reduce(tensor: Tensor, dst: int | None = None, op: ReduceOp = ReduceOp.SUM, group=None,
           async_op: bool = False, group_dst: int | None = None):
    """Reduce `tensor` over all processes into rank `dst`'s `tensor` (others keep theirs)."""
    pg = default_group(group)
    dst = _root(pg, dst, group_dst, "dst")
    _check_op(op, [tensor])
    value = local_value(pg, tensor)
    pg.agree(fingerprint("REDUCE", [value], ReduceOp=op.name, Root=dst))
    out = reduce_arrays(pg, [value], op)[0]
    if pg.rank() == dst:
        write(tensor, out)
    return _done(async_op)


def broadcast(tensor: Tensor, src: int | None = None, group=None, async_op: bool = False,
              group_src: int | None = None):
    """Copy rank `src`'s `tensor` into every process's `tensor`."""
    pg = default_group(group)
    src = _root(pg, src, group_src, "src")
    value = local_value(pg, tensor)
    pg.agree(fingerprint("BROADCAST", [value], Root=src))
    write(tensor, broadcast_arrays(pg, [value], src)[0])
    return _done(async_op)


def broadcast_arrays(pg: ProcessGroup, values: list, src: int) -> list:
    """Rank `src`'s arrays on every process, one program for all."""
    return _run(pg, ("broadcast", src), lambda gs: [g[src] for g in gs], values)


def _check_list(tensors, like: Tensor, world: int, what: str) -> None:
    if not isinstance(tensors, (list, tuple)) or len(tensors) != world:
        n = len(tensors) if isinstance(tensors, (list, tuple)) else type(tensors).__name__
        raise ValueError(f"{what} must be a list of world_size={world} tensors, got {n}")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor) or t.shape != like.shape or t.dtype is not like.dtype:
            got = (f"{list(t.shape)} {t.dtype}" if isinstance(t, Tensor)
                   else type(t).__name__)
            raise ValueError(f"{what}[{i}] must match the input tensor ({list(like.shape)} "
                             f"{like.dtype}), got {got}")


def _gather_all(pg: ProcessGroup, value) -> list:
    world = pg.size()
    return _run(pg, ("all_gather", world), lambda gs: [gs[0][i] for i in range(world)], [value])


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False):
    """Every process's `tensor`, in rank order, into every process's `tensor_list`."""
    pg = default_group(group)
    _check_list(tensor_list, tensor, pg.size(), "tensor_list")
    value = local_value(pg, tensor)
    pg.agree(fingerprint("ALLGATHER", [value]))
    for t, part in zip(tensor_list, _gather_all(pg, value)):
        write(t, part)
    return _done(async_op)


def gather(tensor: Tensor, gather_list: list | None = None, dst: int | None = None, group=None,
           async_op: bool = False, group_dst: int | None = None):
    """Every process's `tensor`, in rank order, into rank `dst`'s `gather_list`."""
    pg = default_group(group)
    dst = _root(pg, dst, group_dst, "dst")
    if pg.rank() == dst:
        _check_list(gather_list, tensor, pg.size(), "gather_list")
    elif gather_list:
        raise ValueError("Argument ``gather_list`` must NOT be specified on non-destination "
                         "ranks.")
    value = local_value(pg, tensor)
    pg.agree(fingerprint("GATHER", [value], Root=dst))
    parts = _gather_all(pg, value)
    if pg.rank() == dst:
        for t, part in zip(gather_list, parts):
            write(t, part)
    return _done(async_op)


def _sharded_shape(shape: tuple, world: int) -> tuple:
    """A global shape whose dim-0 sharding gives each rank one `shape` (flat for 0-d)."""
    return (world * shape[0],) + tuple(shape[1:]) if shape else (world,)


def _own_shard(pg: ProcessGroup, key: tuple, fn, value, shape: tuple) -> jax.Array:
    """Run `fn` (stacked input -> the sharded global result) and keep this rank's `shape`."""
    out = _run(pg, key, lambda gs: [fn(gs[0])], [value], out_shardings=pg.stacked)[0]
    return out if shape else out.reshape(())


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group=None,
                           async_op: bool = False):
    """Every process's `input_tensor` into `output_tensor`: concatenated along dim 0
    (`world * n` rows) or stacked (`(world, *shape)`)."""
    pg = default_group(group)
    world, shape = pg.size(), tuple(input_tensor.shape)
    out_shape = tuple(output_tensor.shape)
    if out_shape not in (_sharded_shape(shape, world), (world,) + shape) or \
            output_tensor.dtype is not input_tensor.dtype:
        raise ValueError(f"output tensor size must be equal to world_size times input tensor "
                         f"size: world_size={world}, input {list(shape)} "
                         f"{input_tensor.dtype}, output {list(out_shape)} {output_tensor.dtype}")
    value = local_value(pg, input_tensor)
    pg.agree(fingerprint("_ALLGATHER_BASE", [value], Output=list(out_shape)))
    out = _run(pg, ("all_gather_into", out_shape), lambda gs: [gs[0].reshape(out_shape)],
               [value])[0]
    write(output_tensor, out)
    return _done(async_op)


def reduce_scatter_tensor(output: Tensor, input: Tensor, op: ReduceOp = ReduceOp.SUM,
                          group=None, async_op: bool = False):
    """Reduce `input` (`world` chunks along dim 0, or stacked) over the processes; rank r's
    `output` gets chunk r of the result."""
    pg = default_group(group)
    world, shape = pg.size(), tuple(output.shape)
    in_shape = tuple(input.shape)
    if in_shape not in (_sharded_shape(shape, world), (world,) + shape) or \
            output.dtype is not input.dtype:
        raise ValueError(f"input tensor must be the same size as output size times world size: "
                         f"world_size={world}, input {list(in_shape)} {input.dtype}, output "
                         f"{list(shape)} {output.dtype}")
    _check_op(op, [input])
    value = local_value(pg, input)
    pg.agree(fingerprint("_REDUCE_SCATTER_BASE", [value], ReduceOp=op.name,
                         Output=list(shape)))
    r, flat = _reduce(op, pg), _sharded_shape(shape, world)
    write(output, _own_shard(pg, ("reduce_scatter", op, shape),
                             lambda g: r(g).reshape(flat), value, shape))
    return _done(async_op)


def scatter(tensor: Tensor, scatter_list: list | None = None, src: int | None = None,
            group=None, async_op: bool = False, group_src: int | None = None):
    """Rank `src`'s `scatter_list[r]` into rank r's `tensor`."""
    pg = default_group(group)
    src = _root(pg, src, group_src, "src")
    world, shape = pg.size(), tuple(tensor.shape)
    if pg.rank() == src:
        _check_list(scatter_list, tensor, world, "scatter_list")
        with jax.enable_x64(True):
            value = jnp.stack([local_value(pg, t) for t in scatter_list])
    else:
        if scatter_list:
            raise ValueError("Argument ``scatter_list`` must NOT be specified on non-source "
                             "ranks.")
        with jax.enable_x64(True):  # this rank's slice of the stacked input goes unread
            value = jax.device_put(jnp.zeros((world,) + shape, tensor.dtype.np), pg.device)
    pg.agree(fingerprint("SCATTER", [local_value(pg, tensor)], Root=src))
    flat = _sharded_shape(shape, world)
    write(tensor, _own_shard(pg, ("scatter", src, shape), lambda g: g[src].reshape(flat),
                             value, shape))
    return _done(async_op)
