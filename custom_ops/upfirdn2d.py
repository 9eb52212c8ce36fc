"""upfirdn2d: upsample, pad, FIR-filter and downsample a batch of 2-D images.

Reproduces the semantics of NVlabs' `torch_utils/ops/upfirdn2d.py`
(github.com/NVlabs/stylegan3) and of rosinality's `op/upfirdn2d.py`
(github.com/rosinality/stylegan2-pytorch): zero-insertion upsampling, padding (negative
values crop), true convolution with the filter (flipped unless `flip_filter`), then
keeping every `down`-th pixel. The pure-PyTorch reference runs everywhere and supports
autograd; a fused CUDA kernel is used for CUDA tensors when it builds.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from custom_ops import _dispatch

__all__ = ["upfirdn2d", "setup_filter", "upsample2d", "downsample2d", "filter2d"]


def _pair(v) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    sx, sy = v
    return int(sx), int(sy)


def _quad(padding) -> tuple[int, int, int, int]:
    if isinstance(padding, int):
        return padding, padding, padding, padding
    if len(padding) == 2:
        px, py = padding
        return int(px), int(px), int(py), int(py)
    px0, px1, py0, py1 = padding
    return int(px0), int(px1), int(py0), int(py1)


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """Returns (width, height) of a 1-D (separable) or 2-D filter; (1, 1) for None."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[-1], f.shape[-2]


def setup_filter(f, *, device=None, normalize: bool = True, flip_filter: bool = False,
                 gain: float = 1.0, separable: bool | None = None) -> torch.Tensor:
    """Turns taps (list, array or tensor) into a float32 filter tensor.

    A 1-D list becomes its outer product unless it is separable (by default when it has
    8 or more taps, as NVlabs does). `normalize` makes the taps sum to one, `gain` then
    scales a 2-D filter by `gain` and a 1-D filter by `sqrt(gain)` (it is applied twice).
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32, device=device)
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, *, up=1, down=1, padding=0,
              flip_filter: bool = False, gain: float = 1.0, impl: str = "auto") -> torch.Tensor:
    """Pad, upsample, filter and downsample a batch of images.

    Args:
        x: input [N, C, H, W], any float dtype.
        f: FIR filter, 2-D [fh, fw], 1-D [taps] (applied separably) or None (identity).
        up: integer upsampling factor, int or (x, y).
        down: integer downsampling factor, int or (x, y).
        padding: int, (px, py) or (px0, px1, py0, py1), applied after upsampling;
            negative values crop.
        flip_filter: False = convolution (the filter is flipped), True = correlation.
        gain: overall gain; the filter is scaled by `gain ** (f.ndim / 2)`.
        impl: "auto", "ref" or "cuda".

    Returns:
        [N, C, (H*up + py0 + py1 - fh) // down + 1, (W*up + px0 + px1 - fw) // down + 1].
    """
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    if _dispatch.use_cuda("upfirdn2d", x, impl):
        from custom_ops import _cuda_upfirdn2d  # the CUDA path is imported on first use only
        return _cuda_upfirdn2d.upfirdn2d(x, f, up=_pair(up), down=_pair(down), padding=_quad(padding),
                                         flip_filter=flip_filter, gain=gain)
    return _upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)


def _upfirdn2d_ref(x, f, *, up=1, down=1, padding=0, flip_filter=False, gain=1.0):
    """Pure-PyTorch reference (autograd-capable, vectorised)."""
    assert x.ndim == 4, f"expected [N, C, H, W], got {list(x.shape)}"
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _quad(padding)
    n, c, h, w = x.shape

    # Zero insertion: [N, C, H, 1, W, 1] padded to [N, C, H, upy, W, upx].
    if upx > 1 or upy > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)

    # Pad (positive) then crop (negative).
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]

    f = f.to(x.dtype) * (gain ** (f.ndim / 2))
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    # Depthwise (grouped) convolution: far faster on CPU than N*C single-channel images.
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].expand(c, 1, *f.shape), groups=c)
    else:
        x = F.conv2d(x, f[None, None, None, :].expand(c, 1, 1, f.shape[0]), groups=c)
        x = F.conv2d(x, f[None, None, :, None].expand(c, 1, f.shape[0], 1), groups=c)
    return x[:, :, ::downy, ::downx]


def upsample2d(x, f, *, up=2, padding=0, flip_filter=False, gain=1.0, impl="auto"):
    """Upsample by `up` with filter `f`, keeping the image centred (gain up**2)."""
    upx, upy = _pair(up)
    px0, px1, py0, py1 = _quad(padding)
    fw, fh = filter_size(f)
    p = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=(upx, upy), padding=p, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)


def downsample2d(x, f, *, down=2, padding=0, flip_filter=False, gain=1.0, impl="auto"):
    """Downsample by `down` with filter `f`, keeping the image centred."""
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _quad(padding)
    fw, fh = filter_size(f)
    p = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=(downx, downy), padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def filter2d(x, f, *, padding=0, flip_filter=False, gain=1.0, impl="auto"):
    """Filter with `f` keeping the size (padding added around the filter's centre)."""
    px0, px1, py0, py1 = _quad(padding)
    fw, fh = filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)
