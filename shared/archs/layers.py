"""Layers shared by the StyleGAN2 and StyleGAN3 generators.

Equalised-learning-rate fully connected layer, second-moment normalisation and
truncation, with the semantics of NVlabs' `FullyConnectedLayer`/`normalize_2nd_moment`
(github.com/NVlabs/stylegan3, `training/networks_stylegan2.py`) and rosinality's
`EqualLinear`/`PixelNorm` (github.com/rosinality/stylegan2-pytorch, `model.py`).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from custom_ops import bias_act

__all__ = ["FullyConnectedLayer", "normalize_2nd_moment", "truncate"]


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) along `dim` (PixelNorm)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(nn.Module):
    """y = act(x @ (W * lr / sqrt(in)).T + b * lr); parameters `weight` [out, in] and `bias` [out]."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, bias_init: float = 0.0,
                 lr_multiplier: float = 1.0, activation: str = "linear"):
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.lr_multiplier, self.bias_init = lr_multiplier, float(bias_init)
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    @torch.no_grad()
    def init_random_(self, generator: torch.Generator) -> None:
        """Official initialisation: weight N(0, 1) / lr_multiplier, bias = bias_init."""
        self.weight.copy_(torch.randn(self.weight.shape, generator=generator) / self.lr_multiplier)
        if self.bias is not None:
            self.bias.fill_(self.bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype) * self.bias_gain if self.bias is not None else None
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        x = x.matmul(w.t())
        return bias_act(x, b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, activation={self.activation}"


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float = 1.0, cutoff: int | None = None) -> torch.Tensor:
    """Truncation trick: ws[:, :cutoff] = w_avg + psi * (ws[:, :cutoff] - w_avg).

    Args:
        ws: [N, num_ws, w_dim]. w_avg: [w_dim]. psi: 1 = no truncation. cutoff: None = all rows.
    """
    if psi == 1:
        return ws
    if cutoff is None:
        return w_avg.lerp(ws, psi)
    ws = ws.clone()
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws
