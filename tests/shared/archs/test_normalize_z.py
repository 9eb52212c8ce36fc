"""StyleGAN2Config.normalize_z: the official PixelNorm of z by default; off for the demo world's
factor-coordinate latents, whose norm carries meaning. The native format keeps the setting and
the official formats refuse a generator they could not represent."""
from __future__ import annotations

import pytest
import torch

from shared import load_generator
from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from shared.convert import convert
from shared.errors import CheckpointError
from shared.loaders.native import save_native

CH = ((4, 32), (8, 32), (16, 16))


def _g(normalize_z: bool) -> StyleGAN2Generator:
    cfg = StyleGAN2Config(z_dim=8, w_dim=16, img_resolution=16, mapping_layers=2, channels=CH, normalize_z=normalize_z)
    return StyleGAN2Generator(cfg).init_random_(torch.Generator().manual_seed(0)).eval()


def test_scale_of_z_matters_only_without_normalisation():
    z = torch.randn([3, 8], generator=torch.Generator().manual_seed(1))
    on, off = _g(True), _g(False)
    assert torch.allclose(on.mapping(z), on.mapping(3 * z), atol=1e-5)
    assert not torch.allclose(off.mapping(z), off.mapping(3 * z), atol=1e-3)
    off.load_state_dict(on.state_dict())
    zn = z / z.square().mean(1, keepdim=True).sqrt()   # already normalised: both agree
    assert torch.allclose(on.mapping(zn), off.mapping(zn), atol=1e-5)


def test_native_format_keeps_the_setting_and_official_formats_refuse_it(tmp_path):
    G = _g(False)
    path = save_native(G, tmp_path / "g.safetensors")
    back = load_generator(path)
    assert back.config.normalize_z is False
    z = torch.randn([2, 8], generator=torch.Generator().manual_seed(2))
    assert torch.equal(back(z), G(z))
    for to in ("rosinality", "nvlabs-names"):
        with pytest.raises(CheckpointError, match="--to native"):
            convert(path, tmp_path / f"out-{to}", to=to)
