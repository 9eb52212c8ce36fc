"""The pure-PyTorch reference ops: shapes, hand-computed cases and float64 gradchecks (CPU)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from custom_ops import bias_act, conv2d_resample, filtered_lrelu, setup_filter, upfirdn2d
from custom_ops.bias_act import ACTIVATIONS, _bias_act_ref
from custom_ops.filtered_lrelu import _filtered_lrelu_ref
from custom_ops.upfirdn2d import _upfirdn2d_ref, downsample2d, filter2d, upsample2d

torch.set_num_threads(1)


def _rand(shape, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


# ----------------------------------------------------------------------------- upfirdn2d

@pytest.mark.parametrize("up, down, padding, fshape", [
    (1, 1, 0, (3, 3)), (2, 1, (2, 1, 2, 1), (4, 4)), (1, 2, (1, 2), (4, 4)), ((2, 3), (3, 2), (1, 0, 2, 5), (3, 5)),
    (4, 4, (-1, 2, 3, -2), (1, 4)), (1, 1, (-2, -1, 0, -1), (2, 2)),
])
def test_upfirdn2d_output_shape(up, down, padding, fshape):
    x = torch.zeros([2, 3, 7, 9])
    y = upfirdn2d(x, torch.ones(fshape), up=up, down=down, padding=padding, impl="ref")
    upx, upy = (up, up) if isinstance(up, int) else up
    dx, dy = (down, down) if isinstance(down, int) else down
    p = [padding] * 4 if isinstance(padding, int) else (padding if len(padding) == 4 else
                                                        [padding[0], padding[0], padding[1], padding[1]])
    fh, fw = fshape
    assert y.shape == (2, 3, (7 * upy + p[2] + p[3] - fh) // dy + 1, (9 * upx + p[0] + p[1] - fw) // dx + 1)


def test_upfirdn2d_identity_and_zero_insertion():
    x = _rand([1, 2, 3, 4], 0)
    torch.testing.assert_close(upfirdn2d(x, None, impl="ref"), x)
    y = upfirdn2d(x, None, up=2, impl="ref")
    assert y.shape == (1, 2, 6, 8)
    torch.testing.assert_close(y[:, :, ::2, ::2], x)
    assert y[:, :, 1::2].abs().max() == 0 and y[:, :, :, 1::2].abs().max() == 0


def test_upsample_of_a_delta_is_the_scaled_filter():
    # Taps [1, 3, 3, 1] (normalised, outer product); upsample2d pads by (2, 1) and gains up**2 = 4.
    x = torch.zeros([1, 1, 3, 3])
    x[0, 0, 1, 1] = 1
    y = upsample2d(x, setup_filter([1, 3, 3, 1]), up=2, impl="ref")
    g = torch.tensor([0, 1, 3, 3, 1, 0]) / 8
    assert y.shape == (1, 1, 6, 6)
    torch.testing.assert_close(y[0, 0], 4 * torch.outer(g, g))
    assert math.isclose(y.sum().item(), 4.0, rel_tol=1e-6)  # a constant image keeps its level


def test_convolution_flip_gain_and_down_by_hand():
    x = torch.tensor([[[[0.0, 1.0, 0.0, 0.0]]]])  # a delta at column 1
    f = torch.tensor([[1.0, 2.0, 5.0]])
    conv = upfirdn2d(x, f, padding=(2, 2, 0, 0), impl="ref")
    corr = upfirdn2d(x, f, padding=(2, 2, 0, 0), flip_filter=True, impl="ref")
    torch.testing.assert_close(conv[0, 0, 0], torch.tensor([0.0, 1.0, 2.0, 5.0, 0.0, 0.0]))
    torch.testing.assert_close(corr[0, 0, 0], torch.tensor([0.0, 5.0, 2.0, 1.0, 0.0, 0.0]))
    down = upfirdn2d(x, f, down=2, padding=(2, 2, 0, 0), gain=3.0, impl="ref")
    torch.testing.assert_close(down[0, 0, 0], torch.tensor([0.0, 6.0, 0.0]))


def test_negative_padding_crops():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y = upfirdn2d(x, None, padding=(-1, 0, -2, 1), impl="ref")
    expected = torch.cat([x[:, :, 2:, 1:], torch.zeros(1, 1, 1, 3)], dim=2)
    torch.testing.assert_close(y, expected)


def test_separable_filter_equals_its_outer_product():
    x = _rand([2, 2, 5, 6], 1)
    f = torch.tensor([0.5, 2.0, -1.0, 1.5], dtype=torch.float64)
    for kwargs in (dict(up=2, padding=(2, 1, 3, 0)), dict(down=2, padding=1, flip_filter=True, gain=2.0)):
        torch.testing.assert_close(upfirdn2d(x, f, impl="ref", **kwargs),
                                   upfirdn2d(x, torch.outer(f, f), impl="ref", **kwargs))


def test_resampling_keeps_a_constant_image_constant():
    x = torch.full([1, 1, 16, 16], 0.7)
    f = setup_filter([1, 3, 3, 1])
    torch.testing.assert_close(upsample2d(x, f, impl="ref")[..., 4:-4, 4:-4], torch.full([1, 1, 24, 24], 0.7))
    torch.testing.assert_close(downsample2d(x, f, impl="ref")[..., 2:-2, 2:-2], torch.full([1, 1, 4, 4], 0.7))
    torch.testing.assert_close(filter2d(x, f, impl="ref")[..., 2:-2, 2:-2], torch.full([1, 1, 12, 12], 0.7))
    assert filter2d(x, f, impl="ref").shape == x.shape


def test_setup_filter():
    torch.testing.assert_close(setup_filter([1, 2, 1]), torch.outer(torch.tensor([1.0, 2, 1]),
                                                                       torch.tensor([1.0, 2, 1])) / 16)
    sep = setup_filter(list(range(1, 9)))
    assert sep.shape == (8,) and math.isclose(sep.sum().item(), 1.0, rel_tol=1e-6)
    torch.testing.assert_close(setup_filter([1, 2], flip_filter=True, normalize=False, gain=4.0),
                               torch.tensor([[4.0, 2.0], [2.0, 1.0]]) * 4)


def test_upfirdn2d_gradcheck():
    x = _rand([1, 2, 4, 5], 2).requires_grad_(True)
    f1 = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    f2 = _rand([3, 2], 3)
    assert torch.autograd.gradcheck(lambda t: _upfirdn2d_ref(t, f1, up=2, down=1, padding=(1, 2, 0, 1)), (x,))
    assert torch.autograd.gradcheck(
        lambda t: _upfirdn2d_ref(t, f2, up=(1, 2), down=(2, 1), padding=(-1, 2, 1, 0), flip_filter=True, gain=2.0),
        (x,))


# ----------------------------------------------------------------------------- bias_act

def test_lrelu_slope_gain_and_clamp_by_hand():
    x = torch.tensor([-2.0, -0.5, 0.0, 1.5])
    torch.testing.assert_close(bias_act(x, act="lrelu", alpha=0.1, dim=0, impl="ref"),
                               torch.tensor([-0.2, -0.05, 0.0, 1.5]) * math.sqrt(2))
    torch.testing.assert_close(bias_act(x, act="lrelu", alpha=0.1, gain=1.0, dim=0, impl="ref"),
                               torch.tensor([-0.2, -0.05, 0.0, 1.5]))
    torch.testing.assert_close(bias_act(x, act="lrelu", gain=1.0, clamp=0.3, dim=0, impl="ref"),
                               torch.tensor([-0.3, -0.1, 0.0, 0.3]))
    torch.testing.assert_close(bias_act(x, torch.tensor([1.0, 1.0, 1.0, 1.0]), dim=0, act="relu", impl="ref"),
                               torch.tensor([0.0, 0.5, 1.0, 2.5]) * math.sqrt(2))


def test_bias_runs_along_dim():
    x = torch.zeros([2, 3, 4])
    b = torch.tensor([1.0, 2.0, 3.0, 4.0])
    for dim in (2, -1):
        y = bias_act(x, b, dim=dim, impl="ref")
        torch.testing.assert_close(y, b.expand(2, 3, 4))
    y = bias_act(x, torch.tensor([1.0, 2.0, 3.0]), impl="ref")
    torch.testing.assert_close(y[0, :, 0], torch.tensor([1.0, 2.0, 3.0]))


@pytest.mark.parametrize("act, value_at_half, value_at_minus_one, gain", [
    ("linear", 0.5, -1.0, 1.0),
    ("relu", 0.5, 0.0, math.sqrt(2)),
    ("lrelu", 0.5, -0.2, math.sqrt(2)),
    ("tanh", math.tanh(0.5), math.tanh(-1.0), 1.0),
    ("sigmoid", 1 / (1 + math.exp(-0.5)), 1 / (1 + math.exp(1.0)), 1.0),
    ("elu", 0.5, math.exp(-1.0) - 1, 1.0),
    ("selu", 1.0507009873554805 * 0.5, 1.0507009873554805 * 1.6732632423543772 * (math.exp(-1.0) - 1), 1.0),
    ("softplus", math.log1p(math.exp(0.5)), math.log1p(math.exp(-1.0)), 1.0),
    ("swish", 0.5 / (1 + math.exp(-0.5)), -1.0 / (1 + math.exp(1.0)), math.sqrt(2)),
])
def test_activation_values_and_default_gains(act, value_at_half, value_at_minus_one, gain):
    assert math.isclose(ACTIVATIONS[act].def_gain, gain)
    y = bias_act(torch.tensor([0.5, -1.0], dtype=torch.float64), act=act, dim=0, impl="ref")
    torch.testing.assert_close(y, torch.tensor([value_at_half, value_at_minus_one], dtype=torch.float64) * gain)


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="unknown activation"):
        bias_act(torch.zeros(3), act="gelu", dim=0)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_bias_act_gradcheck(act):
    x = (_rand([2, 3, 4], 4) * 2).requires_grad_(True)
    b = _rand([3], 5).requires_grad_(True)
    fn = lambda t, bb: _bias_act_ref(t, bb, act=act, alpha=0.3, gain=1.3, clamp=1.5)
    assert torch.autograd.gradcheck(fn, (x, b))


def test_clamp_stops_the_gradient_from_the_bound_on():
    # gain 2, slope 0.25: outputs 1, -1 (on the bound), 1.5, -1.5 (clamped to +-1), 0.2;
    # the gradient passes only strictly inside the bounds (the official kernel's rule), whatever the torch version.
    x = torch.tensor([0.5, -2.0, 0.75, -3.0, 0.1], dtype=torch.float64, requires_grad=True)
    y = _bias_act_ref(x, act="lrelu", alpha=0.25, gain=2.0, clamp=1.0)
    y.sum().backward()
    torch.testing.assert_close(y.detach(), torch.tensor([1.0, -1.0, 1.0, -1.0, 0.2], dtype=torch.float64))
    torch.testing.assert_close(x.grad, torch.tensor([0.0, 0.0, 0.0, 0.0, 2.0], dtype=torch.float64))


# ----------------------------------------------------------------------------- filtered_lrelu

def test_filtered_lrelu_without_filters_is_bias_lrelu_gain_clamp():
    x = _rand([2, 3, 4, 5], 6)
    b = _rand([3], 7)
    y = filtered_lrelu(x, None, None, b, gain=1.7, slope=0.1, clamp=0.8, impl="ref")
    s = x + b[None, :, None, None]
    torch.testing.assert_close(y, (torch.where(s > 0, s, 0.1 * s) * 1.7).clamp(-0.8, 0.8))


def test_filtered_lrelu_clamp_gradient_at_the_bound():
    x = torch.tensor([0.5, -2.0, 0.75, -3.0, 0.1], dtype=torch.float64).reshape(1, 1, 1, 5).requires_grad_(True)
    y = _filtered_lrelu_ref(x, gain=2.0, slope=0.25, clamp=1.0)
    y.sum().backward()
    torch.testing.assert_close(x.grad.flatten(), torch.tensor([0.0, 0.0, 0.0, 0.0, 2.0], dtype=torch.float64))


@pytest.mark.parametrize("h, w, up, down, padding, taps", [
    (36, 36, 2, 2, (10, 10, 10, 10), (12, 12)),  # StyleGAN3-T critically sampled layer
    (20, 24, 4, 2, (1, 3, 2, 0), (8, 6)),
    (16, 16, 1, 2, 5, (6, 6)),
])
def test_filtered_lrelu_output_shape(h, w, up, down, padding, taps):
    fu = setup_filter([1.0] * taps[0])
    fd = setup_filter([1.0] * taps[1])
    y = filtered_lrelu(torch.zeros([1, 2, h, w]), fu, fd, up=up, down=down, padding=padding, impl="ref")
    p = [padding] * 4 if isinstance(padding, int) else padding
    assert y.shape == (1, 2, (h * up + p[2] + p[3] - (taps[0] - 1) - (taps[1] - 1) + down - 1) // down,
                       (w * up + p[0] + p[1] - (taps[0] - 1) - (taps[1] - 1) + down - 1) // down)


def test_filtered_lrelu_is_the_composition_of_the_three_ops():
    x = _rand([1, 2, 6, 6], 8)
    b = _rand([2], 9)
    fu = setup_filter([1, 3, 3, 1])
    fd = setup_filter([1, 2, 1])
    y = filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=(3, 2, 3, 2), gain=1.2, slope=0.3, impl="ref")
    t = upfirdn2d(x + b[None, :, None, None], fu, up=2, padding=(3, 2, 3, 2), gain=4, impl="ref")
    t = torch.where(t > 0, t, 0.3 * t) * 1.2
    torch.testing.assert_close(y, upfirdn2d(t, fd, down=2, impl="ref"))


def test_filtered_lrelu_gradcheck():
    x = _rand([1, 2, 5, 4], 10).requires_grad_(True)
    b = _rand([2], 11).requires_grad_(True)
    fu = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64) / 8
    fd = _rand([3, 2], 12)
    fn = lambda t, bb: _filtered_lrelu_ref(t, fu, fd, bb, up=2, down=2, padding=(3, 1, 2, 2), gain=1.3, slope=0.1,
                                           clamp=1.2, flip_filter=True)
    assert torch.autograd.gradcheck(fn, (x, b))


# ----------------------------------------------------------------------------- conv2d_resample

def _adjusted_padding(padding, f, up, down):
    px0, px1, py0, py1 = padding
    fw = fh = 1 if f is None else f.shape[-1]
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    return [px0, px1, py0, py1]


def _conv2d_resample_slow(x, w, f, *, up, down, padding, groups, flip_weight):
    """Upsample, pad, filter, convolve, filter again and downsample: the op's definition."""
    p = _adjusted_padding(padding, f, up, down)
    x = _upfirdn2d_ref(x, f if up > 1 or down > 1 else None, up=up, padding=p, gain=up ** 2)
    x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
    if down > 1:
        x = _upfirdn2d_ref(x, f, down=down) if up > 1 else x[:, :, ::down, ::down]
    return x


@pytest.mark.parametrize("kernel, up, down, padding, groups, flip_weight", [
    (3, 1, 1, (1, 1, 1, 1), 1, True),
    (3, 1, 1, (2, 0, 1, 1), 1, False),
    (3, 2, 1, (1, 1, 1, 1), 1, True),
    (3, 2, 1, (1, 1, 1, 1), 2, False),
    (3, 1, 2, (1, 1, 1, 1), 1, True),
    (1, 2, 1, (0, 0, 0, 0), 1, True),
    (1, 1, 2, (0, 0, 0, 0), 2, True),
    (3, 2, 2, (1, 1, 1, 1), 1, True),
])
def test_conv2d_resample_matches_its_definition(kernel, up, down, padding, groups, flip_weight):
    x = _rand([2, 4, 8, 8], 13)
    w = _rand([6, 4 // groups, kernel, kernel], 14)
    f = setup_filter([1, 3, 3, 1]).double()
    kwargs = dict(up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight)
    y = conv2d_resample(x, w, f, impl="ref", **kwargs)
    torch.testing.assert_close(y, _conv2d_resample_slow(x, w, f, **kwargs))


def test_conv2d_resample_gradcheck():
    x = _rand([1, 2, 4, 4], 15).requires_grad_(True)
    w = _rand([3, 2, 3, 3], 16).requires_grad_(True)
    f = setup_filter([1, 3, 3, 1]).double()
    assert torch.autograd.gradcheck(lambda t, ww: conv2d_resample(t, ww, f, up=2, padding=1, impl="ref"), (x, w))
    assert torch.autograd.gradcheck(lambda t, ww: conv2d_resample(t, ww, f, down=2, padding=1, impl="ref"), (x, w))
