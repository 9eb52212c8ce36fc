"""StyleGAN2 residual discriminator (Karras et al. 2020, config-e/f "resnet" D).

Follows the structure of NVlabs' `training/networks_stylegan2.py: Discriminator`
(github.com/NVlabs/stylegan3): fromRGB at the top resolution, residual blocks that halve the
resolution with a [1,3,3,1] low-pass filter, a minibatch-standard-deviation layer and a
conv + two fully connected layers. Used only to train the demo world's small generator.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from custom_ops import bias_act, conv2d_resample, setup_filter
from custom_ops.bias_act import ACTIVATIONS
from shared.archs.layers import FullyConnectedLayer

__all__ = ["Discriminator"]


class Conv2dLayer(nn.Module):
    """Equalised-learning-rate conv with optional downsampling, bias and activation."""

    def __init__(self, cin: int, cout: int, k: int, *, bias: bool = True, activation: str = "linear",
                 down: int = 1, conv_clamp: float | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))
        self.weight_gain = 1 / math.sqrt(cin * k * k)
        self.activation, self.down, self.padding, self.conv_clamp = activation, down, k // 2, conv_clamp

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight * self.weight_gain
        x = conv2d_resample(x, w.to(x.dtype), self.resample_filter, down=self.down, padding=self.padding,
                            flip_weight=True)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=ACTIVATIONS[self.activation].def_gain * gain,
                        clamp=clamp)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv0 = Conv2dLayer(cin, cin, 3, activation="lrelu")
        self.conv1 = Conv2dLayer(cin, cout, 3, activation="lrelu", down=2)
        self.skip = Conv2dLayer(cin, cout, 1, bias=False, down=2)

    def forward(self, x):
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return x + y


class Discriminator(nn.Module):
    """img [N, C, R, R] in [-1, 1] -> logits [N, 1]."""

    def __init__(self, img_resolution: int, channels: dict[int, int], img_channels: int = 3,
                 mbstd_group: int = 4):
        super().__init__()
        self.img_resolution = img_resolution
        log_res = int(math.log2(img_resolution))
        self.fromrgb = Conv2dLayer(img_channels, channels[img_resolution], 1, activation="lrelu")
        self.blocks = nn.ModuleList(_Block(channels[2 ** i], channels[2 ** (i - 1)]) for i in range(log_res, 2, -1))
        c4 = channels[4]
        self.mbstd_group = mbstd_group
        self.conv = Conv2dLayer(c4 + 1, c4, 3, activation="lrelu")
        self.fc = FullyConnectedLayer(c4 * 16, c4, activation="lrelu")
        self.out = FullyConnectedLayer(c4, 1)

    def _mbstd(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.mbstd_group, n)
        while n % g:
            g -= 1
        y = x.reshape(g, -1, c, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean(dim=[1, 2, 3])  # [n/g]
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.fromrgb(img)
        for block in self.blocks:
            x = block(x)
        x = self.conv(self._mbstd(x))
        return self.out(self.fc(x.flatten(1)))
