"""Tiny random generators shared by the latent and mixing tests (a module that defines its own `sg2` or
`sg3` uses that one)."""
from __future__ import annotations

import pytest
import torch

from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from shared.archs.stylegan3 import StyleGAN3Config, StyleGAN3Generator


@pytest.fixture(scope="module")
def sg2() -> StyleGAN2Generator:
    cfg = StyleGAN2Config.rosinality(32, 32, 2, channels={4: 32, 8: 32, 16: 16, 32: 16})
    return StyleGAN2Generator(cfg).init_random_(torch.Generator().manual_seed(0)).eval()


@pytest.fixture(scope="module")
def sg3() -> StyleGAN3Generator:
    cfg = StyleGAN3Config(z_dim=16, w_dim=16, img_resolution=32, channel_base=256, channel_max=16, num_layers=6,
                          num_critical=2, mapping_layers=2, mapping_lr=1.0)
    return StyleGAN3Generator(cfg, generator=torch.Generator().manual_seed(4)).eval()


@pytest.fixture(params=["sg2", "sg3"])
def G(request):
    return request.getfixturevalue(request.param)
