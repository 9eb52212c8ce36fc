"""A small random StyleGAN2 shared by the editing tests (directions, StyleSpace, part catalogues, Retrieve
in Style); it overrides tests/shared/conftest.py's `sg2` here."""
from __future__ import annotations

import pytest
import torch

from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator


@pytest.fixture(scope="module")
def sg2() -> StyleGAN2Generator:
    cfg = StyleGAN2Config(z_dim=32, w_dim=32, img_resolution=32, mapping_layers=2,
                          channels=((4, 32), (8, 32), (16, 16), (32, 8)))
    return StyleGAN2Generator(cfg).init_random_(torch.Generator().manual_seed(1)).eval()
