"""Our CUDA kernels against the PyTorch references, forward and gradient (needs a GPU).

Each case runs the public op with `impl="cuda"` (so a failed build fails the test) on
float32 and float16 inputs, and the reference on the CPU in float64 from the very same
(rounded) input values, so the tolerance only has to cover the kernel's own storage
precision. The grids use non-default arguments throughout: up/down 1, 2 and 4, asymmetric
and negative padding, flip_filter, 1-D and 2-D filters, lrelu slopes other than 0.2,
gains and clamps.
"""
from __future__ import annotations

import itertools

import pytest
import torch

import custom_ops
from custom_ops import bias_act, conv2d_resample, filtered_lrelu, setup_filter, upfirdn2d
from custom_ops.bias_act import ACTIVATIONS, _bias_act_ref
from custom_ops.filtered_lrelu import _filtered_lrelu_ref
from custom_ops.upfirdn2d import _upfirdn2d_ref

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

DTYPES = [torch.float32, torch.float16]


@pytest.fixture(autouse=True)
def _exact_float32(monkeypatch):
    # cuDNN would otherwise run float32 convolutions (conv2d_resample) in TF32.
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    monkeypatch.delenv("HUB_OPS", raising=False)
    yield
    torch.backends.cudnn.allow_tf32 = saved


def _rand(shape, seed, dtype=torch.float32, device="cuda"):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)


def _forward_backward(fn, inputs, weight):
    leaves = [None if t is None else t.detach().clone().requires_grad_(True) for t in inputs]
    y = fn(*leaves)
    (y * weight.to(y.dtype)).sum().backward()
    return y.detach(), [None if t is None else t.grad for t in leaves]


def _on_cpu64(inputs):
    return [None if t is None else t.detach().cpu().double() for t in inputs]


def _assert_close(actual, expected, dtype, what):
    scale = max(1.0, expected.abs().max().item())
    tol = 1e-4 if dtype == torch.float32 else 1e-2
    assert actual.dtype == dtype or what == "db", (what, actual.dtype)
    torch.testing.assert_close(actual.cpu().double(), expected, rtol=tol, atol=tol * scale,
                               msg=lambda m: f"{what}: {m}")


def _compare(cuda_fn, ref_fn, inputs, dtype, seed):
    y_ref = ref_fn(*_on_cpu64(inputs))
    weight = _rand(y_ref.shape, seed, dtype)
    y, grads = _forward_backward(cuda_fn, inputs, weight)
    y_ref, grads_ref = _forward_backward(ref_fn, _on_cpu64(inputs), weight.cpu().double())
    assert y.is_cuda and y.shape == y_ref.shape
    _assert_close(y, y_ref, dtype, "y")
    for name, g, g_ref in zip(["dx", "db"], grads, grads_ref):
        if g_ref is not None:
            _assert_close(g, g_ref, dtype, name)


FILTERS = {
    "1d_4": [1, 3, 3, 1],
    "1d_5": [0.5, -1.0, 2.0, 0.25, 1.5],
    "2d_3x4": [[1.0, 2.0, 0.5, -1.0], [0.0, 3.0, 1.0, 2.0], [-0.5, 1.0, 1.0, 0.25]],
}
PADDINGS = {"asym": (2, 1, 3, 0), "neg": (-1, 4, 3, -2)}


def _filter(name: str, normalize: bool = False) -> torch.Tensor:
    """1-D taps stay 1-D (the separable path); float32 like setup_filter's output."""
    f = torch.tensor(FILTERS[name], dtype=torch.float32)
    return f / f.sum() if normalize else f


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16"])
@pytest.mark.parametrize("up, down, pad, fname", [
    (up, down, pad, fname) for (up, down), pad, fname in
    itertools.product(itertools.product([1, 2, 4], [1, 2, 4]), PADDINGS, FILTERS)])
def test_upfirdn2d(up, down, pad, fname, dtype):
    f = _filter(fname)
    flip = (up + down) % 2 == 1 or fname == "2d_3x4"
    kwargs = dict(up=up, down=down, padding=PADDINGS[pad], flip_filter=flip, gain=1.7)
    x = _rand([2, 3, 9, 11], 0, dtype)
    _compare(lambda t: upfirdn2d(t, f, impl="cuda", **kwargs),
             lambda t: _upfirdn2d_ref(t, f.double(), **kwargs), [x], dtype, 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16"])
def test_upfirdn2d_anisotropic(dtype):
    f = _filter("2d_3x4")
    kwargs = dict(up=(2, 1), down=(1, 4), padding=(1, -1, 5, 2), flip_filter=True)
    x = _rand([1, 4, 8, 6], 2, dtype)
    _compare(lambda t: upfirdn2d(t, f, impl="cuda", **kwargs),
             lambda t: _upfirdn2d_ref(t, f.double(), **kwargs), [x], dtype, 3)


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16"])
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("alpha, gain, clamp", [(None, None, None), (0.35, 0.7, 0.6)], ids=["defaults", "custom"])
def test_bias_act(act, alpha, gain, clamp, dtype):
    x = _rand([4, 6, 5, 3], 10, dtype) * 2
    b = _rand([6], 11, dtype)
    kwargs = dict(dim=1, act=act, alpha=alpha, gain=gain, clamp=clamp)
    _compare(lambda t, bb: bias_act(t, bb, impl="cuda", **kwargs),
             lambda t, bb: _bias_act_ref(t, bb, **kwargs), [x, b], dtype, 12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16"])
@pytest.mark.parametrize("shape, dim", [([7], 0), ([8, 5], 0), ([2, 3, 9], 2), ([2, 3, 9], -1)])
def test_bias_act_dims(shape, dim, dtype):
    x = _rand(shape, 20, dtype)
    b = _rand([shape[dim]], 21, dtype)
    kwargs = dict(act="lrelu", alpha=0.1, gain=1.7, clamp=1.2)
    _compare(lambda t, bb: bias_act(t, bb, dim=dim, impl="cuda", **kwargs),
             lambda t, bb: _bias_act_ref(t, bb, dim=dim % len(shape), **kwargs), [x, b], dtype, 22)


FLRELU_ARGS = [
    # (padding, fu, fd, slope, gain, clamp, flip)
    ((7, 6, 5, 8), "1d_5", "1d_4", 0.2, 2 ** 0.5, None, False),
    ((3, 2, 4, 1), "1d_4", "2d_3x4", 0.05, 1.3, 0.8, True),
    ((-1, 5, 4, -1), "2d_3x4", "1d_5", 0.3, 0.9, None, False),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16"])
@pytest.mark.parametrize("up, down, args", [
    (up, down, args) for up, down, args in itertools.product([1, 2, 4], [1, 2, 4], FLRELU_ARGS)])
def test_filtered_lrelu(up, down, args, dtype):
    padding, fu_name, fd_name, slope, gain, clamp, flip = args
    fu = _filter(fu_name, normalize=True)
    fd = _filter(fd_name, normalize=True)
    kwargs = dict(up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip)
    x = _rand([2, 3, 10, 9], 40, dtype)
    b = _rand([3], 41, dtype)
    _compare(lambda t, bb: filtered_lrelu(t, fu, fd, bb, impl="cuda", **kwargs),
             lambda t, bb: _filtered_lrelu_ref(t, fu.double(), fd.double(), bb, **kwargs), [x, b], dtype, 42)


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16"])
def test_filtered_lrelu_stylegan3_layer(dtype):
    # A critically sampled StyleGAN3-T layer: 36x36 in, up 2, 12-tap separable filters, down 2.
    fu = setup_filter(torch.hann_window(12, periodic=False) + 0.1)
    fd = setup_filter(torch.hann_window(12, periodic=False) + 0.2)
    x = _rand([2, 8, 36, 36], 50, dtype)
    b = _rand([8], 51, dtype)
    kwargs = dict(up=2, down=2, padding=(10, 10, 10, 10), gain=2 ** 0.5, slope=0.2, clamp=256.0)
    _compare(lambda t, bb: filtered_lrelu(t, fu, fd, bb, impl="cuda", **kwargs),
             lambda t, bb: _filtered_lrelu_ref(t, fu.double(), fd.double(), bb, **kwargs), [x, b], dtype, 52)


@pytest.mark.parametrize("up, down, kernel, groups", [(1, 1, 3, 1), (2, 1, 3, 2), (1, 2, 3, 1), (2, 1, 1, 1),
                                                      (1, 2, 1, 1), (2, 2, 3, 1)])
def test_conv2d_resample(up, down, kernel, groups):
    x = _rand([2, 4, 8, 8], 60)
    w = _rand([6, 4 // groups, kernel, kernel], 61)
    f = setup_filter([1, 3, 3, 1])
    kwargs = dict(up=up, down=down, padding=(2, 0, 1, 1) if up == down == 1 else 1, groups=groups)
    _compare(lambda t, ww: conv2d_resample(t, ww, f, impl="cuda", **kwargs),
             lambda t, ww: conv2d_resample(t, ww, f.double(), impl="ref", **kwargs), [x, w], torch.float32, 62)


def test_gradcheck_float64_on_the_gpu():
    x = _rand([1, 2, 5, 4], 70, torch.float64).requires_grad_(True)
    b = _rand([2], 71, torch.float64).requires_grad_(True)
    f = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 1.0]], dtype=torch.float64)
    up = lambda t: upfirdn2d(t, f, up=2, down=(1, 2), padding=(2, -1, 1, 3), gain=1.5, impl="cuda")
    assert torch.autograd.gradcheck(up, (x,))
    assert torch.autograd.gradgradcheck(up, (x,))
    assert torch.autograd.gradcheck(lambda t, bb: bias_act(t, bb, act="swish", gain=1.3, clamp=1.0, impl="cuda"),
                                    (x, b))
    fl = lambda t, bb: filtered_lrelu(t, setup_filter([1, 3, 3, 1]), f, bb, up=2, down=2, padding=(3, 2, 2, 3),
                                      gain=1.2, slope=0.15, clamp=2.0, impl="cuda")
    assert torch.autograd.gradcheck(fl, (x, b))


def test_layouts_and_empty_batches():
    f = setup_filter([1, 3, 3, 1])
    x = _rand([2, 5, 8, 8], 80).to(memory_format=torch.channels_last)
    torch.testing.assert_close(upfirdn2d(x, f, up=2, padding=2, impl="cuda"),
                               _upfirdn2d_ref(x.contiguous(), f.cuda(), up=2, padding=2), rtol=1e-5, atol=1e-5)
    xt = _rand([4, 6, 3], 81).transpose(0, 2)  # non-contiguous [3, 6, 4]
    b = _rand([6], 82)
    torch.testing.assert_close(bias_act(xt, b, act="lrelu", impl="cuda"), _bias_act_ref(xt, b, act="lrelu"))
    empty = torch.zeros([0, 3, 8, 8], device="cuda")
    assert upfirdn2d(empty, f, down=2, padding=1, impl="cuda").shape == (0, 3, 4, 4)
    assert bias_act(empty, torch.zeros(3, device="cuda"), act="relu", impl="cuda").shape == empty.shape


def test_status_reports_the_kernels_after_use():
    x = _rand([1, 2, 6, 6], 90)
    upfirdn2d(x, setup_filter([1, 2, 1]), impl="auto")
    bias_act(x, act="lrelu", impl="auto")
    filtered_lrelu(x, impl="auto")
    st = custom_ops.status()
    assert all(st[op]["path"] == "cuda" for op in ("upfirdn2d", "bias_act", "filtered_lrelu")), st
    assert custom_ops.summary() == "ops: CUDA kernels"
