"""filtered_lrelu: upsample, leaky ReLU, downsample — StyleGAN3's alias-free nonlinearity.

Semantics of NVlabs' `torch_utils/ops/filtered_lrelu.py` (github.com/NVlabs/stylegan3):
add the bias, upsample by `up` with filter `fu` (gain up**2) and the given padding,
apply leaky ReLU with `slope`, multiply by `gain`, clamp, then filter with `fd` and
keep every `down`-th pixel.
"""
from __future__ import annotations

import math

import torch

from custom_ops import _dispatch
from custom_ops.bias_act import _bias_act_ref
from custom_ops.upfirdn2d import _quad, _upfirdn2d_ref, filter_size

__all__ = ["filtered_lrelu"]


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None = None, fd: torch.Tensor | None = None,
                   b: torch.Tensor | None = None, *, up: int = 1, down: int = 1, padding=0,
                   gain: float = math.sqrt(2), slope: float = 0.2, clamp: float | None = None,
                   flip_filter: bool = False, impl: str = "auto") -> torch.Tensor:
    """Bias, upsampling FIR filter, leaky ReLU, downsampling FIR filter.

    Args:
        x: input [N, C, H, W].
        fu: upsampling filter, 1-D (separable) or 2-D, or None.
        fd: downsampling filter, 1-D or 2-D, or None.
        b: bias [C] or None.
        up, down: integer factors.
        padding: int, (px, py) or (px0, px1, py0, py1), applied on the upsampled image.
        gain: multiplier after the activation.
        slope: negative slope of the leaky ReLU.
        clamp: clamp to [-clamp, clamp] after the gain; None = no clamping.
        flip_filter: correlation instead of convolution for both filters.
        impl: "auto", "ref" or "cuda".

    Returns:
        [N, C, H_out, W_out] with H_out = ((H*up + py0 + py1 - (fu_h-1) - (fd_h-1)) + down - 1) // down.
    """
    if _dispatch.use_cuda("filtered_lrelu", x, impl):
        from custom_ops import _cuda_filtered_lrelu  # the CUDA path is imported on first use only
        return _cuda_filtered_lrelu.filtered_lrelu(x, fu, fd, b, up=int(up), down=int(down), padding=_quad(padding),
                                                   gain=float(gain), slope=float(slope), clamp=clamp,
                                                   flip_filter=flip_filter)
    return _filtered_lrelu_ref(x, fu, fd, b, up=up, down=down, padding=padding, gain=gain, slope=slope,
                               clamp=clamp, flip_filter=flip_filter)


def _filtered_lrelu_ref(x, fu=None, fd=None, b=None, *, up=1, down=1, padding=0, gain=math.sqrt(2),
                        slope=0.2, clamp=None, flip_filter=False):
    """Pure-PyTorch reference: three reference ops in sequence."""
    assert x.ndim == 4, f"expected [N, C, H, W], got {list(x.shape)}"
    fu_w, fu_h = filter_size(fu)
    fd_w, fd_h = filter_size(fd)
    px0, px1, py0, py1 = _quad(padding)
    n, c, h, w = x.shape
    out_w = (w * up + (px0 + px1) - (fu_w - 1) - (fd_w - 1) + (down - 1)) // down
    out_h = (h * up + (py0 + py1) - (fu_h - 1) - (fd_h - 1) + (down - 1)) // down
    assert out_w >= 1 and out_h >= 1, "padding too small for the filters"
    x = _bias_act_ref(x, b)
    x = _upfirdn2d_ref(x, fu, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter)
    x = _bias_act_ref(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    x = _upfirdn2d_ref(x, fd, down=down, flip_filter=flip_filter)
    assert x.shape[2:] == (out_h, out_w), (x.shape, out_h, out_w)
    return x
