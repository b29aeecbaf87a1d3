"""`DistributedDataParallel`: one process per rank, gradients averaged across processes.

Each process runs the module on its own batch; the backward accumulates local gradients into
`.grad` as usual. As in PyTorch, a post-accumulate-grad hook on each parameter queues one
callback at the end of the backward, which averages every parameter's `.grad` over the
processes in one collective program (`tapegrad.distributed`: an XLA all-reduce). The module's
state is broadcast from rank 0 at construction, and its buffers before each forward
(`broadcast_buffers`). `no_sync()` skips the averaging, so gradients accumulate locally; the
next synchronised backward averages the accumulated `.grad`s, as PyTorch's DDP does.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import jax
import jax.numpy as jnp

from ..._autograd.engine import queue_callback
from ..._autograd.grads import write_grad
from ..._core import grad_mode as _grad_mode, stepmode as _stepmode
from ..._core.compile import materialize
from ...distributed import _collectives, _group
from ..modules.module import Module

_UNFINISHED = (
    "Expected to have finished reduction in the prior iteration before starting a new one. "
    "This error indicates that your module has parameters that were not used in producing "
    "loss. You can enable unused parameter detection by passing the keyword argument "
    "`find_unused_parameters=True` to `torch.nn.parallel.DistributedDataParallel`, and by "
    "making sure all `forward` function outputs participate in calculating loss. Parameter "
    "indices which did not receive grad for rank {rank}: {indices}")

_TRACED = (
    "DistributedDataParallel averages gradients between the processes, which it can do in "
    "uncompiled steps and in tapegrad.compile (there every process runs the compiled step on "
    "its own values, with the all-reduce inside), not inside another JAX trace (jax.jit, "
    "jax.grad). Run the step uncompiled or under tapegrad.compile.")

_UNUSED_COMPILED = (
    "DistributedDataParallel in tapegrad.compile: parameters {indices} received no gradient on "
    "rank {rank}. Every process runs the same compiled program, whose all-reduce takes every "
    "parameter's gradient, so none may go without one (find_unused_parameters cannot tell a "
    "missing gradient from a zero one there). Run this step uncompiled, with "
    "find_unused_parameters=True.")


class DistributedDataParallel(Module):
    """Data parallel training over processes: `model = DDP(model)`; after `loss.backward()`
    every process holds the gradient averaged over all processes.

    `device_ids`/`output_device` name this process's one device, if any; `find_unused_parameters`
    lets parameters go without a gradient (their average counts zeros; a parameter no process
    used keeps `.grad` None). Buckets, `gradient_as_bucket_view` and `static_graph` are
    accepted and change nothing: all gradients are averaged in one program.
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool | None = None, init_sync: bool = True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters: bool = False,
                 check_reduction: bool = False, gradient_as_bucket_view: bool = False,
                 static_graph: bool = False, delay_all_reduce_named_params=None,
                 param_to_hook_all_reduce=None, mixed_precision=None, device_mesh=None,
                 skip_all_reduce_unused_params: bool = False, bucket_cap_mb_list=None,
                 batched_grad_copy: bool = False, forward_sync_buffers: bool | None = None
                 ) -> None:
        super().__init__()
        if mixed_precision is not None or delay_all_reduce_named_params is not None or \
                param_to_hook_all_reduce is not None:
            raise ValueError("DistributedDataParallel(mixed_precision=..., "
                             "delay_all_reduce_named_params=..., param_to_hook_all_reduce=...) "
                             "is not supported: gradients are averaged in one program in their "
                             "own dtype")
        if device_mesh is not None:
            raise ValueError("DistributedDataParallel(device_mesh=...) is not supported: it "
                             "averages over the default process group")
        self.process_group = _group.default_group(process_group)
        params = list(dict.fromkeys(p for p in module.parameters() if p.requires_grad))
        if not params:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't "
                               "have any parameter that requires a gradient.")
        if device_ids is not None and len(device_ids) > 1:
            raise ValueError("device_ids can only be None or contain a single element.")
        types = {p.device.type for p in params}
        if (device_ids or output_device is not None) and types == {"cpu"}:
            raise ValueError(
                "DistributedDataParallel device_ids and output_device arguments only work with "
                "single-device/multiple-device GPU modules or CPU modules, but got device_ids "
                f"{device_ids}, output_device {output_device}, and module parameters "
                f"{ {p.device for p in params} }.")
        self.module = module
        self.device_ids = device_ids
        self.output_device = output_device
        self.dim = dim
        self.broadcast_buffers = True if broadcast_buffers is None else broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self._params = params
        self._armed = False  # a synchronised forward ran: average after backward
        self._queued = False
        self._unused = None  # parameter indices a backward left without gradient
        if init_sync:
            self._broadcast(list(module.parameters()) + list(module.buffers()))
        for p in params:
            p.register_post_accumulate_grad_hook(self._on_gradient)

    # -- forward ----------------------------------------------------------------------------------
    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if self._unused is not None:
            unused, self._unused = self._unused, None
            raise RuntimeError(_UNFINISHED.format(rank=self.process_group.rank(),
                                                  indices=unused))
        log = _stepmode.state.active
        if log is not None:  # tapegrad.compile: each process runs the step on its own values
            if log.tracing and log.per_process is not self.process_group.mesh:
                raise RuntimeError(_TRACED)
            log.per_process = self.process_group.mesh
            self._note_sync(self.require_backward_grad_sync)
        if self.require_forward_param_sync and self.broadcast_buffers:
            buffers = list(self.module.buffers())
            if buffers:
                self._broadcast(buffers)
        if _grad_mode.is_grad_enabled() and self.require_backward_grad_sync:
            self._armed = True
            self._queued = False
        return self.module(*inputs, **kwargs)

    def _syncs(self) -> bool:
        """Whether a backward now averages (what a compiled step's program is traced for)."""
        return self.require_backward_grad_sync

    def _note_sync(self, at_entry: bool) -> None:
        """In a compiled step, log the averaging state the step began with (its first use of
        this module: `no_sync` entered in the step, or a forward): a call that begins in another
        state learns the step again."""
        log = _stepmode.state.active
        if log is not None and all(read != self._syncs for read, _ in log.conditions):
            log.conditions.append((self._syncs, at_entry))

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Within it, backward passes accumulate gradients locally, unaveraged; the first
        synchronised backward after it averages the accumulated `.grad`s."""
        old = self.require_backward_grad_sync
        self._note_sync(old)
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    # -- gradients ---------------------------------------------------------------------------------
    def _on_gradient(self, param) -> None:
        if self._armed and not self._queued:
            self._queued = True
            queue_callback(self._average_gradients)

    def _average_gradients(self) -> None:
        """Average every parameter's `.grad` over the processes, in one all-reduce program.
        The flags go back to where a step found them, so a compiled step's guards see the
        module unchanged."""
        self._armed = self._queued = False
        pg = self.process_group
        params = self._params
        grads = [p.grad for p in params]
        pending = [g._node for g in grads if g is not None and g._node.value is None]
        if pending:
            materialize(pending)
        if _stepmode.tracing():
            self._average_traced(grads)
            return
        if any(isinstance(g._node.value, jax.core.Tracer) for g in grads if g is not None):
            raise RuntimeError(_TRACED)
        with jax.enable_x64(True), jax.default_device(pg.device):
            values = [_collectives.local_value(pg, g) if g is not None
                      else jnp.zeros(p.shape, p.dtype.np) for p, g in zip(params, grads)]
            used = jnp.asarray([g is not None for g in grads], jnp.float32)
        pg.agree(_collectives.fingerprint("ALLREDUCE", values + [used], ReduceOp="AVG",
                                          Caller="DistributedDataParallel"))
        *averaged, used_anywhere = _collectives.reduce_arrays(pg, values + [used],
                                                              _group.ReduceOp.AVG)
        used_anywhere = jax.device_get(used_anywhere) > 0
        for p, g, value, anywhere in zip(params, grads, averaged, used_anywhere):
            if g is not None:
                _collectives.write(g, value)
            elif anywhere:  # unused here, used elsewhere: the average of the others' gradients
                write_grad(p, jax.device_put(value, p._value().sharding))
        unused = [i for i, g in enumerate(grads) if g is None]
        if unused and not self.find_unused_parameters:
            self._unused = unused

    def _average_traced(self, grads: list) -> None:
        """The averaging inside a compiled step: an all-reduce over the processes' axis."""
        pg = self.process_group
        unused = [i for i, g in enumerate(grads) if g is None]
        if unused:
            raise RuntimeError(_UNUSED_COMPILED.format(indices=unused, rank=pg.rank()))
        values = [g._value() for g in grads]
        pg.agree(_collectives.fingerprint("ALLREDUCE", values, ReduceOp="AVG",
                                          Caller="DistributedDataParallel (compiled)"))
        (axis,) = pg.mesh.axis_names
        for g, value in zip(grads, values):
            _collectives.write(g, jax.lax.pmean(value, axis))

    def _broadcast(self, tensors: list) -> None:
        """Rank 0's values of `tensors` on every process (one program for all)."""
        pg = self.process_group
        if _stepmode.tracing():  # inside a compiled step: rank 0's block of each value
            (axis,) = pg.mesh.axis_names
            for t in tensors:
                _collectives.write(t, jax.lax.all_gather(t._value(), axis)[0])
            return
        values = [_collectives.local_value(pg, t) for t in tensors]
        pg.agree(_collectives.fingerprint("BROADCAST", values, Root=0,
                                          Caller="DistributedDataParallel"))
        for t, value in zip(tensors, _collectives.broadcast_arrays(pg, values, 0)):
            _collectives.write(t, value)
