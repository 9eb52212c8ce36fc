"""Layers shared by the StyleGAN2 and StyleGAN3 generators, the discriminator and the encoders.

Equalised-learning-rate fully connected layer, second-moment normalisation and
truncation, with the semantics of NVlabs' `FullyConnectedLayer`/`normalize_2nd_moment`
(github.com/NVlabs/stylegan3, `training/networks_stylegan2.py` and `networks_stylegan3.py`)
and rosinality's `EqualLinear`/`PixelNorm` (github.com/rosinality/stylegan2-pytorch, `model.py`).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from custom_ops import bias_act
from shared.errors import CheckpointError

__all__ = ["FullyConnectedLayer", "MappingNetwork", "MappingWAvg", "check_weights_fit", "normalize_2nd_moment", "truncate"]


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) along `dim` (PixelNorm)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(nn.Module):
    """y = act(x @ (W * lr / sqrt(in)).T + b * lr); parameters `weight` [out, in] and `bias` [out].

    One layer for both generators; `init` picks whose official initialisation is reproduced
    bit for bit (the forward pass is the same). StyleGAN2 (`networks_stylegan2.py`): W = N(0, 1)
    / lr, b = bias_init. StyleGAN3 (`networks_stylegan3.py`): W = N(0, 1) * (weight_init / lr),
    b = bias_init / lr. Weights are drawn from torch's default generator when the layer is
    built, as the official code does, and again from a given generator by `init_random_`.

    Args:
        bias: whether the layer has a bias.
        bias_init: the initial bias, one number or one per output feature.
        lr_multiplier: equalised learning-rate multiplier (0.01 in the mapping networks).
        weight_init: scale of the initial weights ('stylegan3' init only; 0 gives zero weights).
        activation: a `custom_ops.bias_act` activation name.
        init: 'stylegan2' or 'stylegan3'.
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True,
                 bias_init: float | list[float] = 0.0, lr_multiplier: float = 1.0, weight_init: float = 1.0,
                 activation: str = "linear", init: str = "stylegan2"):
        super().__init__()
        if init not in ("stylegan2", "stylegan3"):
            raise ValueError(f"init must be 'stylegan2' or 'stylegan3', got {init!r}")
        if init == "stylegan2" and weight_init != 1:
            raise ValueError("weight_init is a StyleGAN3 option; pass init='stylegan3' with it")
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.lr_multiplier, self.weight_init, self.init = lr_multiplier, weight_init, init
        self.bias_init = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features]).copy()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.init_random_(None)

    @torch.no_grad()
    def init_random_(self, generator: torch.Generator | None) -> None:
        """The official initialisation (see the class), drawing from `generator` (None: torch's default)."""
        w = torch.randn(self.weight.shape, generator=generator)
        if self.init == "stylegan2":
            self.weight.copy_(w / self.lr_multiplier)
        else:
            self.weight.copy_(w * (self.weight_init / self.lr_multiplier))
        if self.bias is not None:
            b = self.bias_init if self.init == "stylegan2" else self.bias_init / self.lr_multiplier
            self.bias.copy_(torch.from_numpy(b))

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


class MappingNetwork(nn.Module):
    """NVlabs' mapping network (stylegan3 `networks_stylegan3.py`, vendored unchanged by StyleNeRF and
    EG3D): normalised z (+ embedded, normalised c) through `mapping_layers` lrelu layers with the
    mapping learning-rate multiplier, broadcast to num_ws rows and truncated toward the buffer
    `w_avg`. `cfg` gives z_dim, c_dim, w_dim, num_ws, mapping_layers and mapping_lr; `init` picks the
    official random initialisation ('stylegan2' or 'stylegan3', see `FullyConnectedLayer`)."""

    def __init__(self, cfg, *, init: str = "stylegan2"):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = cfg.z_dim, cfg.c_dim, cfg.w_dim, cfg.num_ws
        self.num_layers = cfg.mapping_layers
        if cfg.c_dim > 0:
            self.embed = FullyConnectedLayer(cfg.c_dim, cfg.w_dim, init=init)
        widths = [cfg.z_dim + (cfg.w_dim if cfg.c_dim > 0 else 0)] + [cfg.w_dim] * cfg.mapping_layers
        for i in range(cfg.mapping_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(widths[i], widths[i + 1], activation="lrelu",
                                                        lr_multiplier=cfg.mapping_lr, init=init))
        self.register_buffer("w_avg", torch.zeros([cfg.w_dim]))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] or None -> ws [N, num_ws, w_dim]. `update_emas` is ignored."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"this generator is class-conditional: pass c of shape [N, {self.c_dim}]")
            x = torch.cat([x, normalize_2nd_moment(self.embed(c.to(torch.float32)))], dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        ws = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # [N, num_ws, w_dim]
        return truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)


class MappingWAvg:
    """Mixin for generators whose truncation centre is their `mapping.w_avg` buffer [w_dim]:
    `G.w_avg` reads it and `G.w_avg = value` copies into it (the NVlabs attribute path)."""

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping.w_avg

    @w_avg.setter
    def w_avg(self, value: torch.Tensor) -> None:
        with torch.no_grad():
            self.mapping.w_avg.copy_(torch.as_tensor(value).reshape(self.mapping.w_avg.shape))


def check_weights_fit(expected: dict[str, tuple], state_dict: dict[str, torch.Tensor], arch: str) -> None:
    """Raise CheckpointError naming the missing, unexpected or mis-shaped tensors when `state_dict`
    does not fit a module whose tensors have the shapes `expected` (arch: its name in the sentence)."""
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        parts = [f"{what} {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
                 for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise CheckpointError(f"the weights do not fit this {arch} config ({'; '.join(parts)}).")
    bad = [f"{k} {list(state_dict[k].shape)} (expected {list(s)})" for k, s in expected.items()
           if tuple(state_dict[k].shape) != s]
    if bad:
        raise CheckpointError(f"the weights do not fit this {arch} config (shape of {', '.join(bad[:3])}).")
