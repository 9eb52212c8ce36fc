"""CUDA path of `upfirdn2d`: an autograd Function around our kernel (cuda/upfirdn2d.cu).

The kernel correlates with an *effective* 2-D filter: the taps flipped unless
`flip_filter` (NVlabs' convention in `torch_utils/ops/upfirdn2d.py`, github.com/NVlabs/stylegan3),
scaled by the gain, and 1-D (separable) taps expanded to their outer product. The gradient
of upfirdn2d with respect to its input is again an upfirdn2d: the dual filter (flipped),
up and down swapped, and the padding chosen so the result has the input's size; it is
itself expressed with this Function, so higher-order gradients work. Filters are treated
as constants (no gradient), as in the official op.
"""
from __future__ import annotations

from typing import Callable

import torch

from custom_ops import _build

Pair = tuple[int, int]
Quad = tuple[int, int, int, int]
# (x, w, up, down, (pad_x0, pad_y0), (out_h, out_w)) -> y
Launcher = Callable[[torch.Tensor, torch.Tensor, Pair, Pair, Pair, Pair], torch.Tensor]


def filter_dtype(x: torch.Tensor) -> torch.dtype:
    """The kernels read filters in float64 for float64 data and float32 otherwise."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def effective_filter(f: torch.Tensor | None, *, flip_filter: bool, gain: float, like: torch.Tensor) -> torch.Tensor:
    """The 2-D correlation filter [fh, fw] the kernel applies, on `like`'s device.

    Matches `_upfirdn2d_ref`: 1-D taps are applied once per axis (each scaled by
    sqrt(gain)), i.e. their outer product scaled by gain; a 2-D filter is scaled by gain.
    """
    if f is None:
        f = torch.ones([1, 1])
    if f.ndim not in (1, 2):
        raise ValueError(f"filter must be 1-D or 2-D, got shape {list(f.shape)}")
    f = f.detach().to(device=like.device, dtype=filter_dtype(like))
    if f.ndim == 1:
        f = torch.outer(f, f)
    f = f * gain
    if not flip_filter:
        f = f.flip([0, 1])
    return f.contiguous()


def out_size(size: int, up: int, down: int, pad0: int, pad1: int, taps: int) -> int:
    """Output length along one axis: (size*up + pad0 + pad1 - taps) // down + 1."""
    return (size * up + pad0 + pad1 - taps) // down + 1


def grad_padding(in_size: Pair, out_hw: Pair, taps: Pair, up: Pair, down: Pair, padding: Quad) -> Quad:
    """Padding of the upfirdn2d that maps dy [.., out_h, out_w] back to dx [.., in_h, in_w].

    Forward: y[o] = sum_k w[k] x[i] over o*down + k - pad0 = i*up. Its adjoint upsamples dy
    by `down`, correlates with the flipped filter and keeps every `up`-th sample, which
    needs a leading pad of taps - 1 - pad0 and a trailing pad that makes the length in_size.
    Arguments are (x, y) pairs except `in_size`/`out_hw`, which are (h, w).
    """
    (in_h, in_w), (out_h, out_w) = in_size, out_hw
    fw, fh = taps
    px0, _, py0, _ = padding
    gx0 = fw - 1 - px0
    gy0 = fh - 1 - py0
    gx1 = in_w * up[0] - out_w * down[0] + px0 - up[0] + 1
    gy1 = in_h * up[1] - out_h * down[1] + py0 - up[1] + 1
    return gx0, gx1, gy0, gy1


def _launch(x: torch.Tensor, w: torch.Tensor, up: Pair, down: Pair, pad0: Pair, out_hw: Pair) -> torch.Tensor:
    plugin = _build.load_plugin("upfirdn2d")
    return plugin.upfirdn2d(x, w, up[0], up[1], down[0], down[1], pad0[0], pad0[1], out_hw[0], out_hw[1])


def resample(x: torch.Tensor, w: torch.Tensor, up: Pair, down: Pair, padding: Quad, launch: Launcher) -> torch.Tensor:
    """Runs one kernel pass with effective filter `w` [fh, fw]; checks the output size."""
    n, c, h, wd = x.shape
    fh, fw = w.shape
    px0, px1, py0, py1 = padding
    out_h = out_size(h, up[1], down[1], py0, py1, fh)
    out_w = out_size(wd, up[0], down[0], px0, px1, fw)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"upfirdn2d: padding {list(padding)} leaves no output for a {h}x{wd} input "
                         f"and a {fh}x{fw} filter")
    return launch(x.contiguous(), w, up, down, (px0, py0), (out_h, out_w))


class _Upfirdn2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, up: Pair, down: Pair, padding: Quad):
        y = resample(x, w, up, down, padding, _launch)
        ctx.save_for_backward(w)
        ctx.geometry = (tuple(x.shape[2:]), up, down, padding)
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        (w,) = ctx.saved_tensors
        in_size, up, down, padding = ctx.geometry
        dx = None
        if ctx.needs_input_grad[0]:
            taps = (w.shape[1], w.shape[0])
            gpad = grad_padding(in_size, tuple(dy.shape[2:]), taps, up, down, padding)
            dx = _Upfirdn2d.apply(dy, w.flip([0, 1]), down, up, gpad)
        return dx, None, None, None, None


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, *, up: Pair = (1, 1), down: Pair = (1, 1),
              padding: Quad = (0, 0, 0, 0), flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """CUDA upfirdn2d; arguments as `custom_ops.upfirdn2d` after normalisation to (x, y) pairs."""
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects [N, C, H, W], got {list(x.shape)}")
    w = effective_filter(f, flip_filter=flip_filter, gain=gain, like=x)
    return _Upfirdn2d.apply(x, w, tuple(up), tuple(down), tuple(padding))
