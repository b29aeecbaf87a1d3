"""`tapegrad.func` (PyTorch's `torch.func`): function transforms over JAX's.

`grad`, `grad_and_value`, `vjp`, `jvp`, `linearize`, `jacrev`, `jacfwd`, `hessian` and `vmap`
take functions of tensors and return functions of tensors; underneath they are `jax.vjp`,
`jax.jvp`, `jax.linearize`, `jax.jacrev`, `jax.jacfwd` and `jax.vmap` of a pure function that runs the tapegrad code on
tensors over JAX's tracers. They compose (`vmap(grad(f))`, `jacrev(jacfwd(f))`) and run under
`jax.jit`. `functional_call` makes a module a function of its parameters, and
`stack_module_state` stacks an ensemble's parameters for `vmap`:

    params, buffers = tapegrad.func.stack_module_state(models)
    def run(p, b, x):
        return tapegrad.func.functional_call(models[0], (p, b), (x,))
    out = tapegrad.func.vmap(run, in_dims=(0, 0, None))(params, buffers, x)
"""
from __future__ import annotations

from ._call import functional_call, stack_module_state
from ._transforms import (functionalize, grad, grad_and_value, hessian, jacfwd, jacrev, jvp,
                          linearize, vjp)
from ._vmap import vmap

__all__ = ["functional_call", "stack_module_state", "grad", "grad_and_value", "vjp", "jvp",
           "linearize", "jacrev", "jacfwd", "hessian", "vmap", "functionalize"]
