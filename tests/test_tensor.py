"""Tensors: construction, dtypes, properties, conversions, repr, devices, the generator."""
import re
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tapegrad as tg


# -- construction and default dtypes ------------------------------------------------------------
@pytest.mark.parametrize("data, dtype", [
    (1.5, tg.float32), (2, tg.int64), (True, tg.bool), ([1, 2.5], tg.float32), ([[1, 2]], tg.int64),
    ([True, False], tg.bool), (np.zeros(2), tg.float64), (np.zeros(2, np.float32), tg.float32),
    (np.arange(3), tg.int64), (np.arange(3, dtype=np.int32), tg.int32),
])
def test_tensor_infers_pytorch_default_dtypes(data, dtype):
    t = tg.tensor(data)
    assert t.dtype is dtype
    np.testing.assert_array_equal(t.numpy(), np.asarray(data))


def test_64_bit_types_are_really_64_bit():
    big = 2**40 + 1
    t = tg.tensor([big])
    assert t.dtype is tg.int64 and t.item() == big
    d = tg.tensor([1.0 + 1e-12], dtype=tg.float64)
    assert d.jax().dtype == jnp.float64 and d.item() == 1.0 + 1e-12
    assert (tg.tensor([big]) + 1).item() == big + 1


def test_unrelated_jax_code_keeps_its_32_bit_defaults():
    tg.tensor([1.0], dtype=tg.float64) * 2  # tapegrad runs 64-bit work ...
    assert jnp.array(1.0).dtype == jnp.float32  # ... without switching JAX's global mode
    assert jnp.arange(3).dtype == jnp.int32
    assert not jax.config.jax_enable_x64


def test_dtype_aliases_compare_equal():
    assert tg.float is tg.float32 and tg.double is tg.float64 and tg.long is tg.int64
    assert tg.half is tg.float16 and tg.int is tg.int32
    assert tg.float32 == tg.float and tg.float32 != tg.float64


def test_from_jax_and_numpy_and_zero_copy_out():
    a = jnp.arange(4.0)
    t = tg.tensor(a)
    assert t.dtype is tg.float32
    out = t.jax()
    assert isinstance(out, jax.Array) and out is t.jax()  # the stored array itself, no copy
    n = tg.from_numpy(np.array([1, 2], dtype=np.int16))
    assert n.dtype is tg.int16
    with pytest.raises(TypeError, match="expected np.ndarray"):
        tg.from_numpy([1, 2])


def test_legacy_constructor_is_float32():
    assert tg.Tensor([1, 2]).dtype is tg.float32
    assert tg.Tensor(2, 3).shape == (2, 3)
    assert tg.Tensor().shape == (0,)


def test_factories():
    assert tg.zeros(2, 3).shape == (2, 3) and tg.zeros((2, 3)).dtype is tg.float32
    np.testing.assert_array_equal(tg.ones(2).numpy(), [1, 1])
    assert tg.full((2,), 7).dtype is tg.int64 and tg.full((2,), 7.0).dtype is tg.float32
    assert tg.arange(5).dtype is tg.int64 and tg.arange(0, 1, 0.25).dtype is tg.float32
    np.testing.assert_allclose(tg.arange(0, 1, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(tg.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5), rtol=1e-6)
    np.testing.assert_array_equal(tg.eye(2).numpy(), np.eye(2))
    x = tg.ones(2, 3, dtype=tg.float64)
    for like in (tg.zeros_like, tg.ones_like, tg.empty_like, tg.randn_like, tg.rand_like):
        y = like(x)
        assert y.shape == x.shape and y.dtype is tg.float64
    assert tg.full_like(x, 3).numpy().tolist() == [[3, 3, 3]] * 2
    assert tg.empty(3).shape == (3,)


_ARANGES = [(5,), (1, 4), (0, 1, 0.1), (10, 0, -3), (0, 5.5), (-3, 7, 2), (0, 0), (2.5,),
            (0.5, 3, 1, "int64"), (0, 5.5, 1.5, "int64"), (-2.5, 2, 1, "int64"),
            (2.7, -1, -1, "int64"), (2.7, -1, -1, "int32"), (0, 5.5, 1.5, "int32"),
            (1, 2.5, 0.5, "int32"), (0, 1, 0.1, "float64"), (2 ** 40, 2 ** 40 + 3)]


@pytest.mark.parametrize("args", _ARANGES, ids=str)
def test_arange_follows_pytorch(args):
    """Lengths from the bounds as PyTorch computes them (an integer dtype truncates the bounds
    first; int64 takes its length from the truncated bounds, other integers from the given
    ones); float values are `start + i * step` in double, then cast."""
    *bounds, dtype = args if isinstance(args[-1], str) else (*args, None)
    ours = tg.arange(*bounds, dtype=dtype and getattr(tg, dtype))
    truncated = {(0.5, 3, 1, "int64"): [0, 1, 2], (0, 5.5, 1.5, "int64"): [0, 1, 2, 3, 4],
                 (-2.5, 2, 1, "int64"): [-2, -1, 0, 1], (2.7, -1, -1, "int64"): [2, 1, 0],
                 (2.7, -1, -1, "int32"): [2, 1, 0, -1], (0, 5.5, 1.5, "int32"): [0, 1, 2, 3],
                 (1, 2.5, 0.5, "int32"): [1, 1, 1]}
    if args in truncated:
        assert ours.tolist() == truncated[args]
    else:
        wide = np.float64 if ours.dtype.is_floating_point else np.int64
        assert ours.dtype is (getattr(tg, dtype) if dtype else
                              tg.int64 if wide is np.int64 else tg.float32)
        np.testing.assert_array_equal(ours.numpy(), np.arange(*bounds, dtype=wide).astype(
            ours.dtype.np))
    try:
        import torch
    except ImportError:
        return
    ref = torch.arange(*bounds, dtype=dtype and getattr(torch, dtype))
    assert str(ref.dtype).split(".")[1] == ours.dtype.name
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())


def test_slices_with_tensor_bounds():
    x = tg.arange(10.0)
    n = tg.tensor(3)
    assert x[:n].tolist() == [0, 1, 2] and x[n:n + 2].tolist() == [3, 4]
    x[:n] = 0
    assert x.tolist()[:4] == [0, 0, 0, 3]


def test_factories_and_moves_place_values_on_the_device_asked_for():
    """A factory's result on another device than the default is placed there at once, and so is
    a tensor moved there with `to()` when no gradient flows through the move (a program runs
    where its inputs are, so a move inside one would not move). A model moved there trains
    there. Two host devices stand in for accelerators."""
    import os
    import subprocess
    import sys
    code = ("import tapegrad as tg\n"
            "def on(t): return sorted(d.id for d in t.jax().devices())\n"
            "for t in (tg.zeros(3, device='cpu:1'), tg.arange(3, device='cpu:1'),\n"
            "          tg.eye(2, device='cpu:1'), tg.randn(2, device='cpu:1'),\n"
            "          tg.tensor([1.0, 2.0]).to('cpu:1'), (tg.ones(2) * 3).to('cpu:1')):\n"
            "    assert on(t) == [1], t.jax().devices()\n"
            "assert on(tg.ones(2, device='cpu:0')) == [0]\n"
            "model = tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.ReLU(), tg.nn.Linear(8, 2))\n"
            "model.to('cpu:1')\n"
            "opt = tg.optim.Adam(model.parameters(), lr=0.1)\n"
            "x, y = tg.randn(16, 4).to('cpu:1'), tg.randint(0, 2, (16,)).to('cpu:1')\n"
            "losses = []\n"
            "for _ in range(3):\n"
            "    opt.zero_grad()\n"
            "    loss = tg.nn.functional.cross_entropy(model(x), y)\n"
            "    loss.backward()\n"
            "    opt.step()\n"
            "    losses.append(loss.item())\n"
            "    assert on(loss) == [1]\n"
            "assert losses[-1] < losses[0], losses\n"
            "state = [t for s in opt.state.values() for t in s.values()]\n"
            "assert {d for t in list(model.parameters()) + state for d in on(t)} == {1}\n")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


def test_arange_with_truncated_zero_step_raises():
    with pytest.raises(RuntimeError, match="step must be nonzero"):
        tg.arange(0, 5, 0)
    with pytest.raises(ValueError, match="step must be nonzero"):  # 0.5 truncates to 0
        tg.arange(1, 2.5, 0.5, dtype=tg.int64)


def test_filled_factories_are_recorded_and_a_new_fill_value_reuses_the_program():
    tg.full((3,), 1.5).numpy()
    traces = tg.autograd.cache_info().traces
    for v in (2.5, -1.0, float("inf")):
        t = tg.full((3,), v)
        assert t.numpy().tolist() == [v] * 3 and t.dtype is tg.float32
    assert tg.autograd.cache_info().traces == traces
    z = tg.zeros(2, requires_grad=True)
    assert z.is_leaf and z.requires_grad and z.grad_fn is None
    (z * 3).sum().backward()
    assert z.grad.tolist() == [3, 3]


def test_manual_seed_repeats_and_draws_differ():
    tg.manual_seed(123)
    a = tg.randn(4).numpy()
    b = tg.randn(4).numpy()
    tg.manual_seed(123)
    np.testing.assert_array_equal(tg.randn(4).numpy(), a)
    assert not np.array_equal(a, b)
    u = tg.rand(1000).numpy()
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.05
    g = tg.Generator().manual_seed(5)
    np.testing.assert_array_equal(tg.randn(3, generator=g).numpy(),
                                  tg.randn(3, generator=tg.Generator().manual_seed(5)).numpy())
    r = tg.randint(0, 10, (100,))
    assert r.dtype is tg.int64 and 0 <= r.numpy().min() and r.numpy().max() < 10
    assert sorted(tg.randperm(6).tolist()) == list(range(6))


# -- properties and conversions -------------------------------------------------------------------
def test_properties():
    t = tg.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and isinstance(t.shape, tg.Size)
    assert t.size() == (2, 3, 4) and t.size(1) == 3 and t.size(-1) == 4
    assert t.dim() == 3 and t.ndim == 3 and t.numel() == 24 and len(t) == 2
    assert t.T.shape == (4, 3, 2)
    with pytest.raises(IndexError, match="Dimension out of range"):
        t.size(3)


def test_conversions():
    t = tg.tensor([[1.5, 2.0]])
    assert t.tolist() == [[1.5, 2.0]]
    assert tg.tensor(2.5).item() == 2.5 and float(tg.tensor(2.5)) == 2.5
    assert int(tg.tensor(3)) == 3 and bool(tg.tensor(1.0))
    np.testing.assert_array_equal(np.asarray(t), [[1.5, 2.0]])
    assert t.double().dtype is tg.float64 and t.long().dtype is tg.int64
    assert t.float().dtype is tg.float32 and t.to(tg.float64).dtype is tg.float64
    assert t.to(t) is t and t.to(str(t.device)) is t
    assert t.long().tolist() == [[1, 2]]
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        t.item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(tg.ones(2))


def test_numpy_refuses_tensors_that_require_grad():
    w = tg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires grad"):
        w.numpy()
    np.testing.assert_array_equal(w.detach().numpy(), [1, 1])


def test_clone_and_contiguous():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert c.grad_fn.name() == "CloneBackward0"
    c.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 1])
    assert x.contiguous() is x and x.is_contiguous()


def test_repr_follows_pytorch():
    if tg.tensor(0.0).device.type != "cpu":  # PyTorch names any other device in the repr
        assert repr(tg.tensor([1.0, 2.0])) == f"tensor([1., 2.], device='{tg.tensor(0.0).device}')"
        return
    assert repr(tg.tensor([1.0, 2.0], requires_grad=True)) == "tensor([1., 2.], requires_grad=True)"
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x * 2) == "tensor([2., 4.], grad_fn=<MulBackward0>)"
    assert repr(tg.tensor(2.5)) == "tensor(2.5000)"
    assert repr(tg.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(tg.tensor([1.0], dtype=tg.float64)) == "tensor([1.], dtype=tapegrad.float64)"
    assert repr(tg.tensor([[1.5, -2.0]])) == "tensor([[ 1.5000, -2.0000]])"


# -- devices --------------------------------------------------------------------------------------
def test_devices():
    t = tg.ones(2)
    default = jax.devices()[0]  # tensors live on JAX's default device, the GPU where there is one
    assert t.device == tg.device(default) and t.device.type == {"gpu": "cuda"}.get(
        default.platform, default.platform)
    assert str(tg.device("cuda:1")) == "cuda:1" and tg.device("cuda", 0).index == 0
    assert repr(tg.device("cpu")) == "device(type='cpu')"
    assert tg.ones(2, device="cpu").device.type == "cpu"
    if default.platform == "cpu":
        assert t.cpu() is t
    assert tg.cuda.is_available() == bool([d for d in jax.devices() if d.platform == "gpu"])
    assert tg.cuda.device_count() == len([d for d in jax.devices() if d.platform == "gpu"])
    tg.cuda.manual_seed_all(0)
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
        tg.device("abacus")


_NO_GPU_CALLS = {  # what a CPU-only PyTorch build raises, with the key words of its message
    "current_device": lambda T: T.cuda.current_device(),
    "get_device_name": lambda T: T.cuda.get_device_name(),
    "synchronize": lambda T: T.cuda.synchronize(),
    "to": lambda T: T.zeros(2).to("cuda:1"),
    "cuda": lambda T: T.zeros(2).cuda(),
    "factory": lambda T: T.zeros(2, device="cuda"),
    "device_context": lambda T: T.cuda.device(1).__enter__(),
    "set_device_cpu": lambda T: T.cuda.set_device("cpu"),
    "negative_index": lambda T: T.device("cuda", -1),
    "negative_string": lambda T: T.device("cuda:-1"),
}


@pytest.mark.skipif(tg.cuda.is_available(), reason="the errors of a machine without a GPU")
@pytest.mark.parametrize("call", sorted(_NO_GPU_CALLS))
def test_cuda_without_a_gpu_raises_as_pytorch_without_cuda(call):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("the reference is a PyTorch build without CUDA")
    with pytest.raises(Exception) as theirs:
        _NO_GPU_CALLS[call](torch)
    with pytest.raises(type(theirs.value), match=re.escape(str(theirs.value))):
        _NO_GPU_CALLS[call](tg)


def test_cuda_without_a_gpu_answers_as_pytorch():
    if tg.cuda.is_available():
        pytest.skip("the answers of a machine without a GPU")
    assert tg.cuda.device_count() == 0 and not tg.cuda.is_initialized()
    tg.cuda.set_device(-1)  # PyTorch: a negative index does nothing
    with tg.cuda.device(-1):
        pass
    with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
        tg.cuda.set_device(0)  # (a CPU-only PyTorch has no _cuda_setDevice: AttributeError)


def test_cross_device_copy_is_differentiable():
    x = tg.ones(2, requires_grad=True)
    y = x.to(tg.device("cpu"), tg.float64)
    assert y.dtype is tg.float64 and y.grad_fn is not None
    y.sum().backward()
    assert x.grad.dtype is tg.float32


def test_grad_mode_is_thread_local():
    seen = []
    with tg.no_grad():
        t = threading.Thread(target=lambda: seen.append(tg.is_grad_enabled()))
        t.start()
        t.join()
        assert not tg.is_grad_enabled()
    assert seen == [True]


def test_views_see_optimizer_updates():
    w = tg.zeros(4, requires_grad=True)
    view = w.detach()[1:3]
    opt = tg.optim.SGD([w], lr=1.0)
    (w * tg.arange(4.0)).sum().backward()
    opt.step()
    assert view.tolist() == [-1.0, -2.0]
