"""The CUDA path of every op, run on the CPU with the kernels' own maths, against the references.

`host_plugin.HostPlugin` replaces the compiled plugin with a g++ build of the same
per-element functions the CUDA kernels call (custom_ops/cuda/*_core.cuh), so these tests
check the kernels' index arithmetic and the Python autograd wrappers (effective filters,
gradient padding, activation codes) on a machine without a GPU. The CUDA launch code
itself is covered by the compile test and, on a GPU, by test_cuda_vs_ref.py.
"""
from __future__ import annotations

import itertools

import pytest
import torch

from custom_ops import _build, _cuda_bias_act, _cuda_filtered_lrelu, _cuda_upfirdn2d
from custom_ops.bias_act import ACTIVATIONS, _bias_act_ref
from custom_ops.filtered_lrelu import _filtered_lrelu_ref
from custom_ops.upfirdn2d import _upfirdn2d_ref
from tests.custom_ops.host_plugin import HostPlugin, build_host_library

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def host_lib(tmp_path_factory):
    lib = build_host_library(tmp_path_factory.mktemp("host_kernels"))
    if lib is None:
        pytest.skip("g++ is not installed: cannot build the kernels' maths for the CPU")
    return lib


@pytest.fixture
def plugin(host_lib, monkeypatch):
    host = HostPlugin(host_lib)
    monkeypatch.setattr(_build, "load_plugin", lambda op: host)
    return host


def _rand(shape, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def _grads(fn, inputs, weight):
    """d(sum(fn(*inputs) * weight)) / d inputs (None for inputs without grad)."""
    leaves = [t.detach().clone().requires_grad_(True) if t is not None else None for t in inputs]
    y = fn(*leaves)
    (y * weight).sum().backward()
    return y.detach(), [t.grad if t is not None else None for t in leaves]


FILTERS = {
    "none": None,
    "1d_4": torch.tensor([1.0, 3.0, 3.0, 1.0]),
    "1d_5": torch.tensor([0.5, -1.0, 2.0, 0.25, 1.5]),
    "2d_3x4": torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.0, 3.0, 1.0, 2.0], [-0.5, 1.0, 1.0, 0.25]]),
}

UPFIRDN_CASES = [
    # (up, down, padding, filter, flip_filter, gain)
    ((1, 1), (1, 1), (0, 0, 0, 0), "2d_3x4", False, 1.0),
    ((2, 2), (1, 1), (2, 1, 2, 1), "1d_4", False, 4.0),
    ((1, 1), (2, 2), (1, 1, 1, 1), "1d_4", True, 1.0),
    ((2, 2), (2, 2), (3, 2, 1, 4), "2d_3x4", False, 2.5),
    ((4, 4), (1, 1), (3, 0, 1, 2), "1d_5", True, 16.0),
    ((1, 1), (4, 4), (5, 3, 2, 6), "1d_5", False, 1.0),
    ((2, 1), (1, 2), (1, 2, 0, 3), "2d_3x4", True, 0.5),
    ((3, 2), (2, 3), (-1, 2, 3, -2), "2d_3x4", False, 1.0),
    ((2, 2), (1, 1), (-2, -1, -3, 0), "1d_4", False, 1.0),
    ((1, 1), (1, 1), (-1, -2, 0, -1), "none", False, 3.0),
    ((4, 4), (2, 2), (0, 0, 0, 0), "1d_4", True, 1.0),
    ((1, 4), (4, 1), (2, 2, -1, 5), "1d_5", False, 2.0),
]


@pytest.mark.parametrize("case", UPFIRDN_CASES, ids=lambda c: f"up{c[0]}_down{c[1]}_pad{c[2]}_{c[3]}_flip{int(c[4])}")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_upfirdn2d_forward_and_grad(plugin, case, dtype):
    up, down, padding, fname, flip, gain = case
    f = FILTERS[fname]
    x = _rand([2, 3, 6, 5], 0, dtype)
    ref = lambda t: _upfirdn2d_ref(t, f, up=up, down=down, padding=padding, flip_filter=flip, gain=gain)
    cuda = lambda t: _cuda_upfirdn2d.upfirdn2d(t, f if f is not None else torch.ones([1, 1]), up=up, down=down,
                                               padding=padding, flip_filter=flip, gain=gain)
    y_ref = ref(x)
    weight = _rand(y_ref.shape, 1, dtype)
    y_ref, (gx_ref,) = _grads(ref, [x], weight)
    y, (gx,) = _grads(cuda, [x], weight)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-4)
    assert y.shape == y_ref.shape and y.dtype == dtype
    torch.testing.assert_close(y, y_ref, **tol)
    torch.testing.assert_close(gx, gx_ref, **tol)
    assert "upfirdn2d" in plugin.calls


def test_upfirdn2d_gradcheck_and_gradgradcheck(plugin):
    f = FILTERS["2d_3x4"]
    x = _rand([1, 2, 4, 5], 3).requires_grad_(True)
    fn = lambda t: _cuda_upfirdn2d.upfirdn2d(t, f, up=(2, 1), down=(1, 2), padding=(2, -1, 1, 3), gain=1.5)
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_upfirdn2d_rejects_empty_output(plugin):
    x = _rand([1, 1, 3, 3], 0)
    with pytest.raises(ValueError, match="leaves no output"):
        _cuda_upfirdn2d.upfirdn2d(x, torch.ones([4, 4]), padding=(-1, -1, 0, 0))


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("alpha, gain, clamp", [(None, None, None), (0.35, 0.7, 0.6)])
def test_bias_act_forward_and_grad(plugin, act, alpha, gain, clamp):
    x = _rand([3, 5, 4, 2], 10) * 2
    b = _rand([5], 11)
    kwargs = dict(dim=1, act=act, alpha=alpha, gain=gain)
    ref = lambda t, bb: _bias_act_ref(t, bb, clamp=clamp, **kwargs)
    cuda = lambda t, bb: _cuda_bias_act.bias_act(t, bb, clamp=clamp, **kwargs)
    weight = _rand(x.shape, 12)
    y_ref, (gx_ref, gb_ref) = _grads(ref, [x, b], weight)
    y, (gx, gb) = _grads(cuda, [x, b], weight)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gb, gb_ref, rtol=1e-10, atol=1e-10)
    if clamp is not None:
        assert y.abs().max() <= clamp and (gx == 0).any(), "some outputs should be clamped"


@pytest.mark.parametrize("shape, dim", [([7], 0), ([4, 6], 0), ([2, 3, 5], 2), ([2, 3, 5], -1), ([2, 4, 3, 3], 1)])
def test_bias_act_dims_float32(plugin, shape, dim):
    x = _rand(shape, 20, torch.float32)
    b = _rand([shape[dim]], 21, torch.float32)
    weight = _rand(shape, 22, torch.float32)
    kwargs = dict(dim=dim % len(shape), act="lrelu", alpha=0.1, gain=1.7, clamp=1.2)
    y_ref, (gx_ref, gb_ref) = _grads(lambda t, bb: _bias_act_ref(t, bb, **kwargs), [x, b], weight)
    y, (gx, gb) = _grads(lambda t, bb: _cuda_bias_act.bias_act(t, bb, **{**kwargs, "dim": dim}), [x, b], weight)
    torch.testing.assert_close(y, y_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gb, gb_ref, rtol=1e-5, atol=1e-5)


def test_bias_act_without_bias_and_gradcheck(plugin):
    x = _rand([2, 3, 4], 30).requires_grad_(True)
    b = _rand([3], 31).requires_grad_(True)
    fn = lambda t, bb: _cuda_bias_act.bias_act(t, bb, act="swish", gain=1.3, clamp=1.0)
    assert torch.autograd.gradcheck(fn, (x, b))
    y = _cuda_bias_act.bias_act(x.detach(), None, act="tanh", gain=2.0)
    torch.testing.assert_close(y, 2.0 * torch.tanh(x.detach()), rtol=1e-12, atol=1e-12)


FLRELU_CASES = [
    # (up, down, padding, fu, fd, slope, gain, clamp, flip, bias)
    (1, 1, (0, 0, 0, 0), "none", "none", 0.2, 2 ** 0.5, None, False, True),
    (2, 2, (5, 4, 5, 4), "1d_4", "1d_4", 0.2, 2 ** 0.5, None, False, True),
    (2, 1, (3, 2, 4, 1), "1d_5", "2d_3x4", 0.05, 1.3, 0.8, True, True),
    (1, 2, (2, 1, 1, 2), "2d_3x4", "1d_5", 0.3, 0.9, None, False, False),
    (4, 4, (7, 6, 5, 8), "1d_5", "1d_4", 0.1, 1.0, 0.5, False, True),
    (4, 2, (-1, 3, 2, -2), "1d_4", "2d_3x4", 0.25, 1.5, None, True, True),
    (2, 4, (1, 1, 1, 1), "none", "1d_5", 0.0, 2.0, 1.0, False, True),
    (1, 1, (-1, 2, 3, -1), "2d_3x4", "none", -0.4, 1.1, None, True, True),
]


@pytest.mark.parametrize("case", FLRELU_CASES, ids=lambda c: f"up{c[0]}_down{c[1]}_pad{c[2]}_{c[3]}_{c[4]}_s{c[5]}")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_filtered_lrelu_forward_and_grad(plugin, case, dtype):
    up, down, padding, fu_name, fd_name, slope, gain, clamp, flip, with_bias = case
    fu, fd = FILTERS[fu_name], FILTERS[fd_name]
    x = _rand([2, 3, 6, 7], 40, dtype)
    b = _rand([3], 41, dtype) if with_bias else None
    kwargs = dict(up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip)
    ref = lambda t, bb: _filtered_lrelu_ref(t, fu, fd, bb, **kwargs)
    cuda = lambda t, bb: _cuda_filtered_lrelu.filtered_lrelu(t, fu, fd, bb, **kwargs)
    weight = _rand(ref(x, b).shape, 42, dtype)
    y_ref, (gx_ref, gb_ref) = _grads(ref, [x, b], weight)
    y, (gx, gb) = _grads(cuda, [x, b], weight)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    assert y.shape == y_ref.shape
    torch.testing.assert_close(y, y_ref, **tol)
    torch.testing.assert_close(gx, gx_ref, **tol)
    if with_bias:
        torch.testing.assert_close(gb, gb_ref, **tol)
    assert plugin.calls.count("fir") == 4  # two forward stages, two adjoint stages


def test_filtered_lrelu_inference_skips_the_code(plugin, monkeypatch):
    seen = []
    original = plugin.fir

    def spy(*args):
        seen.append(args[-1])  # want_code
        return original(*args)

    monkeypatch.setattr(plugin, "fir", spy)
    x = _rand([1, 2, 5, 5], 50)
    _cuda_filtered_lrelu.filtered_lrelu(x, FILTERS["1d_4"], FILTERS["1d_4"], up=2, down=2, padding=(3, 3, 3, 3))
    assert seen == [False, False]
    _cuda_filtered_lrelu.filtered_lrelu(x.requires_grad_(True), FILTERS["1d_4"], FILTERS["1d_4"], up=2, down=2,
                                        padding=(3, 3, 3, 3))
    assert seen[2:] == [True, False]


def test_filtered_lrelu_gradcheck(plugin):
    x = _rand([1, 2, 4, 4], 60).requires_grad_(True)
    b = _rand([2], 61).requires_grad_(True)
    fn = lambda t, bb: _cuda_filtered_lrelu.filtered_lrelu(t, FILTERS["1d_4"], FILTERS["2d_3x4"], bb, up=2, down=2,
                                                           padding=(3, 2, 2, 3), gain=1.2, slope=0.15, clamp=2.0)
    assert torch.autograd.gradcheck(fn, (x, b))


@pytest.mark.parametrize("up, down", list(itertools.product([1, 2], [1, 2])))
def test_dispatch_routes_to_plugin(plugin, monkeypatch, up, down):
    """With a (pretend) built plugin, the public ops take the CUDA path for CUDA tensors only."""
    from custom_ops import _dispatch, upfirdn2d

    monkeypatch.setattr(_dispatch, "_state", {})
    x = _rand([1, 1, 4, 4], 70)
    y = upfirdn2d(x, FILTERS["1d_4"], up=up, down=down, padding=2, impl="auto")
    assert plugin.calls == []  # a CPU tensor never reaches the plugin
    torch.testing.assert_close(y, _upfirdn2d_ref(x, FILTERS["1d_4"], up=up, down=down, padding=2))


def test_clamp_bound_gradient_matches_the_reference(plugin):
    # gain 2, slope 0.25: 0.5 and -2 land exactly on the bound +-1, 0.75 and -3 beyond it.
    values = torch.tensor([0.5, -2.0, 0.75, -3.0, 0.1], dtype=torch.float64)
    expected = torch.tensor([0.0, 0.0, 0.0, 0.0, 2.0], dtype=torch.float64)  # torch.clamp: strictly inside only
    x = values.clone().requires_grad_(True)
    _cuda_bias_act.bias_act(x, None, dim=0, act="lrelu", alpha=0.25, gain=2.0, clamp=1.0).sum().backward()
    torch.testing.assert_close(x.grad, expected)
    x = values.reshape(1, 1, 1, 5).clone().requires_grad_(True)
    y = _cuda_filtered_lrelu.filtered_lrelu(x, None, None, None, gain=2.0, slope=0.25, clamp=1.0)
    y.sum().backward()
    torch.testing.assert_close(y.detach().flatten(), torch.tensor([1.0, -1.0, 1.0, -1.0, 0.2], dtype=torch.float64))
    torch.testing.assert_close(x.grad.flatten(), expected)
