"""CUDA path of `bias_act`: an autograd Function around our kernels (cuda/bias_act.cu).

Forward: y = clamp(act(x + b) * gain). Backward: one kernel recomputes s = x + b and
returns dx = dy * gain * act'(s), zero where the output reached a clamp bound (PyTorch's
clamp convention: only values strictly inside pass the gradient); db is the sum of dx over every
axis but `dim`. The backward pass is first-order only (`once_differentiable`), which is
what inversion and latent optimisation need. Semantics follow NVlabs'
`torch_utils/ops/bias_act.py` (github.com/NVlabs/stylegan3).
"""
from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from custom_ops import _build
from custom_ops.activations import ACTIVATIONS


def _prepare(x: torch.Tensor, b: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    x = x.contiguous()
    if b is not None:
        b = b.to(device=x.device, dtype=x.dtype).contiguous()
    return x, b


class _BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, b: torch.Tensor | None, dim: int, act_id: int, alpha: float, gain: float,
                clamp: float):
        xc, bc = _prepare(x, b)
        y = _build.load_plugin("bias_act").bias_act(xc, bc, dim, act_id, alpha, gain, clamp)
        ctx.save_for_backward(xc, bc)
        ctx.args = (dim, act_id, alpha, gain, clamp)
        ctx.bias_dtype = None if b is None else b.dtype
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy: torch.Tensor):
        xc, bc = ctx.saved_tensors
        dim, act_id, alpha, gain, clamp = ctx.args
        dx = db = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            dy = dy.to(xc.dtype).contiguous()
            dx = _build.load_plugin("bias_act").bias_act_grad(dy, xc, bc, dim, act_id, alpha, gain, clamp)
        if ctx.needs_input_grad[1]:
            axes = [i for i in range(dx.ndim) if i != dim]
            acc = torch.float64 if dx.dtype == torch.float64 else torch.float32
            db = (dx.sum(dim=axes, dtype=acc) if axes else dx.to(acc)).to(ctx.bias_dtype)
        if not ctx.needs_input_grad[0]:
            dx = None
        return dx, db, None, None, None, None, None


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, *, dim: int = 1, act: str = "linear",
             alpha: float | None = None, gain: float | None = None, clamp: float | None = -1.0) -> torch.Tensor:
    """CUDA bias_act; arguments as `custom_ops.bias_act` (clamp < 0 or None: no clamping)."""
    spec = ACTIVATIONS[act]
    alpha = float(spec.def_alpha if alpha is None else alpha)
    gain = float(spec.def_gain if gain is None else gain)
    clamp = -1.0 if clamp is None or clamp < 0 else float(clamp)
    if not math.isfinite(gain) or not math.isfinite(alpha):
        raise ValueError(f"bias_act: gain and alpha must be finite, got gain={gain}, alpha={alpha}")
    if x.ndim == 0:
        raise ValueError("bias_act expects a tensor with at least one axis")
    dim = dim % x.ndim
    return _BiasAct.apply(x, b, dim, spec.cuda_idx, alpha, gain, clamp)
