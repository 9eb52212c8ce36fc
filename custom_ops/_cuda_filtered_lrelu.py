"""CUDA path of `filtered_lrelu`: two launches of our FIR kernel (cuda/filtered_lrelu.cu).

Forward, as in NVlabs' `torch_utils/ops/filtered_lrelu.py` (github.com/NVlabs/stylegan3):
stage 1 adds the bias, upsamples with `fu` (gain up**2, the given padding) and applies
leaky ReLU, gain and clamp in the same kernel, writing a uint8 gradient code per pixel
when autograd needs one (0 clamped, 1 positive branch, 2 negative branch); stage 2
filters with `fd` and downsamples. Unlike the official fused kernel the upsampled
intermediate is materialised (correctness first).

Backward runs on the same kernel, not through the reference ops: the adjoint of stage 2
(upsample dy by `down` with the flipped `fd`), multiplication by the code's slope
(gain, gain*slope or 0), then the adjoint of stage 1 (flipped `fu`, downsample by `up`);
db sums dx over N, H, W. It is first-order only (`once_differentiable`) and filters get
no gradient, as in the official op.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from custom_ops import _build
from custom_ops._cuda_upfirdn2d import Pair, Quad, effective_filter, grad_padding, out_size, resample


def _stage(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, up: Pair, down: Pair, pad0: Pair, out_hw: Pair,
           *, activate: bool = False, slope: float = 0.0, gain: float = 1.0, clamp: float = -1.0,
           want_code: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    plugin = _build.load_plugin("filtered_lrelu")
    return plugin.fir(x, w, b, up[0], up[1], down[0], down[1], pad0[0], pad0[1], out_hw[0], out_hw[1],
                      activate, slope, gain, clamp, want_code)


def _plain(x: torch.Tensor, w: torch.Tensor, up: Pair, down: Pair, pad0: Pair, out_hw: Pair) -> torch.Tensor:
    return _stage(x, w, None, up, down, pad0, out_hw)[0]


class _FilteredLrelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, b: torch.Tensor | None, wu: torch.Tensor, wd: torch.Tensor, up: int,
                down: int, padding: Quad, gain: float, slope: float, clamp: float):
        n, c, h, w = x.shape
        px0, px1, py0, py1 = padding
        mid_h = out_size(h, up, 1, py0, py1, wu.shape[0])
        mid_w = out_size(w, up, 1, px0, px1, wu.shape[1])
        out_h = out_size(mid_h, 1, down, 0, 0, wd.shape[0])
        out_w = out_size(mid_w, 1, down, 0, 0, wd.shape[1])
        if min(mid_h, mid_w, out_h, out_w) < 1:
            raise ValueError(f"filtered_lrelu: padding {list(padding)} is too small for the filters "
                             f"on a {h}x{w} input")
        bc = None if b is None else b.to(device=x.device, dtype=x.dtype).contiguous()
        want_code = bool(ctx.needs_input_grad[0] or ctx.needs_input_grad[1])
        mid, code = _stage(x.contiguous(), wu, bc, (up, up), (1, 1), (px0, py0), (mid_h, mid_w), activate=True,
                           slope=slope, gain=gain, clamp=clamp, want_code=want_code)
        y = _plain(mid, wd, (1, 1), (down, down), (0, 0), (out_h, out_w))
        ctx.save_for_backward(code, wu, wd)
        ctx.geometry = ((h, w), (mid_h, mid_w), up, down, padding, gain, slope)
        ctx.dtypes = (x.dtype, None if b is None else b.dtype)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy: torch.Tensor):
        code, wu, wd = ctx.saved_tensors
        in_hw, mid_hw, up, down, padding, gain, slope = ctx.geometry
        x_dtype, b_dtype = ctx.dtypes
        if not (ctx.needs_input_grad[0] or ctx.needs_input_grad[1]):
            return (None,) * 10
        dy = dy.to(x_dtype).contiguous()
        # Adjoint of stage 2: [N, C, out_h, out_w] -> [N, C, mid_h, mid_w].
        pad2 = grad_padding(mid_hw, tuple(dy.shape[2:]), (wd.shape[1], wd.shape[0]), (1, 1), (down, down),
                            (0, 0, 0, 0))
        dmid = resample(dy, wd.flip([0, 1]).contiguous(), (down, down), (1, 1), pad2, _plain)
        # Through the activation: d/du of clamp(lrelu(u) * gain).
        dmid = torch.where(code == 1, dmid * gain, torch.where(code == 2, dmid * (gain * slope), 0))
        # Adjoint of stage 1: [N, C, mid_h, mid_w] -> [N, C, H, W].
        pad1 = grad_padding(in_hw, mid_hw, (wu.shape[1], wu.shape[0]), (up, up), (1, 1), padding)
        dx = resample(dmid.contiguous(), wu.flip([0, 1]).contiguous(), (1, 1), (up, up), pad1, _plain)
        db = None
        if ctx.needs_input_grad[1]:
            acc = torch.float64 if dx.dtype == torch.float64 else torch.float32
            db = dx.sum(dim=[0, 2, 3], dtype=acc).to(b_dtype)
        if not ctx.needs_input_grad[0]:
            dx = None
        return dx, db, None, None, None, None, None, None, None, None


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None = None, fd: torch.Tensor | None = None,
                   b: torch.Tensor | None = None, *, up: int = 1, down: int = 1, padding: Quad = (0, 0, 0, 0),
                   gain: float = 2 ** 0.5, slope: float = 0.2, clamp: float | None = None,
                   flip_filter: bool = False) -> torch.Tensor:
    """CUDA filtered_lrelu; arguments as `custom_ops.filtered_lrelu` (padding as a 4-tuple)."""
    if x.ndim != 4:
        raise ValueError(f"filtered_lrelu expects [N, C, H, W], got {list(x.shape)}")
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[1]):
        raise ValueError(f"filtered_lrelu: bias must be [{x.shape[1]}], got {list(b.shape)}")
    if up < 1 or down < 1:
        raise ValueError(f"filtered_lrelu: up and down must be >= 1, got up={up}, down={down}")
    wu = effective_filter(fu, flip_filter=flip_filter, gain=float(up ** 2), like=x)
    wd = effective_filter(fd, flip_filter=flip_filter, gain=1.0, like=x)
    clamp = -1.0 if clamp is None or clamp < 0 else float(clamp)
    return _FilteredLrelu.apply(x, b, wu, wd, int(up), int(down), tuple(padding), float(gain), float(slope), clamp)
