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


# ---- z_onehot: arg-max groups of z enter the MLP as +-1 one-hot codes -------------------------------
def _grouped(groups) -> StyleGAN2Generator:
    cfg = StyleGAN2Config(z_dim=8, w_dim=16, img_resolution=16, mapping_layers=2, channels=CH, normalize_z=False,
                          z_onehot=groups)
    return StyleGAN2Generator(cfg).init_random_(torch.Generator().manual_seed(0)).eval()


def test_onehot_groups_see_only_the_offset_argmax():
    G = _grouped(((2, (0.0, 0.5, -0.5)), (5, (0.0, 0.0))))
    z = torch.tensor([[0.3, -1.2, 0.9, 0.7, 0.1, -0.4, 0.2, 1.1]])
    codes = G._onehot_groups(z)
    # group 1: 0.9+0, 0.7+0.5, 0.1-0.5 -> category 1; group 2: -0.4, 0.2 -> category 1
    assert torch.equal(codes, torch.tensor([[0.3, -1.2, -1.0, 1.0, -1.0, -1.0, 1.0, 1.1]]))
    moved = z.clone()
    moved[0, 2:5] = torch.tensor([-3.0, 2.0, 1.0])      # same arg-max, other values: same w
    assert torch.equal(G.mapping(moved), G.mapping(z))
    moved[0, 4] = 5.0                                    # another category: another w
    assert not torch.allclose(G.mapping(moved), G.mapping(z), atol=1e-4)
    # the continuous dimensions still carry gradients (inversion in z), the groups none
    zz = z.clone().requires_grad_(True)
    G.mapping(zz).square().sum().backward()
    assert (zz.grad[0, [0, 1, 7]] != 0).all() and (zz.grad[0, 2:7] == 0).all()


def test_onehot_groups_round_trip_the_native_format_and_are_checked(tmp_path):
    G = _grouped(((0, (0.1, -0.1)),))
    back = load_generator(save_native(G, tmp_path / "g.safetensors"))
    assert back.config == G.config and back.config.z_onehot == ((0, (0.1, -0.1)),)
    z = torch.randn([3, 8], generator=torch.Generator().manual_seed(3))
    assert torch.equal(back(z), G(z))
    assert "z_onehot" not in _g(True).config.to_dict()   # files without groups are unchanged
    with pytest.raises(ValueError, match="does not fit"):
        StyleGAN2Config(z_dim=8, w_dim=16, img_resolution=16, mapping_layers=2, channels=CH,
                        z_onehot=((7, (0.0, 0.0)),))
