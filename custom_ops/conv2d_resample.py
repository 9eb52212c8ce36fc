"""conv2d_resample: 2-D convolution with optional FIR up/downsampling.

Semantics of NVlabs' `torch_utils/ops/conv2d_resample.py` (github.com/NVlabs/stylegan3),
which rosinality's ModulatedConv2d reproduces with `conv_transpose2d` followed by `Blur`:
upsampling runs as a stride-`up` transposed convolution followed by the filter, and
downsampling as the filter followed by a strided convolution. Built on `upfirdn2d`, so it
uses the CUDA kernel whenever that op does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from custom_ops.upfirdn2d import _quad, filter_size, upfirdn2d

__all__ = ["conv2d_resample"]


def _conv(x, w, *, stride=1, padding=(0, 0), groups=1, transpose=False, flip_weight=True):
    # torch convolutions are correlations; flip_weight=False asks for a true convolution.
    if not flip_weight and (w.shape[2] > 1 or w.shape[3] > 1):
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, *, up: int = 1,
                    down: int = 1, padding=0, groups: int = 1, flip_weight: bool = True,
                    flip_filter: bool = False, impl: str = "auto") -> torch.Tensor:
    """Convolution of `x` [N, C*groups?, H, W] with `w` [O, C/groups, kh, kw] and resampling.

    Args:
        x: input [N, in_channels, H, W].
        w: weight [out_channels, in_channels // groups, kh, kw].
        f: FIR filter for resampling (from `setup_filter`), or None.
        up, down: integer factors (1 = none).
        padding: int, (px, py) or (px0, px1, py0, py1), as in the official op.
        groups: convolution groups (the modulated convolution uses one per sample).
        flip_weight: False = true convolution, True = correlation (torch's default).
        flip_filter: passed to `upfirdn2d`.

    Returns:
        [N, out_channels, H', W'].
    """
    assert x.ndim == 4 and w.ndim == 4
    out_channels, in_per_group, kh, kw = w.shape
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = _quad(padding)

    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2

    # 1x1 kernel with downsampling: filter first, then a cheap pointwise convolution.
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter, impl=impl)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)

    # 1x1 kernel with upsampling: pointwise convolution, then filter.
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter,
                         impl=impl)

    # Downsampling only: filter, then strided convolution.
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter, impl=impl)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    if up > 1:
        # Transposed convolution wants [in, out/groups, kh, kw].
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw)
            w = w.transpose(1, 2).reshape(groups * in_per_group, out_channels // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, w, stride=up, padding=(pyt, pxt), groups=groups, transpose=True,
                  flip_weight=not flip_weight)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up ** 2,
                      flip_filter=flip_filter, impl=impl)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter, impl=impl)
        return x

    # No resampling: plain convolution, padding folded in when symmetric.
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=(py0, px0), groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, None, padding=[px0, px1, py0, py1], impl=impl)
    return _conv(x, w, groups=groups, flip_weight=flip_weight)
