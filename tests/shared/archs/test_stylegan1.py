"""StyleGAN (v1) generator (shared/archs/stylegan1.py): configs, the fused up-scaling, noise modes,
truncation, the cars crop (512x384) through the registry record, style mixing and generation.
Official parity is in tests/shared/loaders/test_tf_pickle.py (vectors from the official TF code)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from shared import registry
from shared.archs.stylegan1 import (OFFICIAL_TRUNCATION, StyleGAN1Config, StyleGAN1Generator, _Layer,
                                    official_channels)
from shared.generation import generate_images
from shared.latents import layer_ranges, row_resolutions
from shared.loaders.native import generator_from_native, save_native
from shared.mixing import style_mix_images
from shared.model_cache import default_loader

torch.set_num_threads(1)
DATA = Path(__file__).resolve().parents[2] / "data" / "tf_pickles"


def _tiny(**kw) -> StyleGAN1Generator:
    cfg = StyleGAN1Config(z_dim=16, w_dim=16, mapping_hidden=16, mapping_layers=2, img_resolution=kw.pop("res", 32),
                          channels=kw.pop("channels", ()) or official_channels(kw.get("res", 32), 64, 1.0, 8), **kw)
    torch.manual_seed(0)
    G = StyleGAN1Generator(cfg).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if p.ndim == 1:
                p.add_(0.2 * torch.randn(p.shape))
        G.w_avg = torch.randn(16) * 0.5
    return G


def test_official_channels_and_defaults():
    assert dict(official_channels(1024)) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64,
                                             512: 32, 1024: 16}
    cfg = StyleGAN1Config()
    assert cfg.num_ws == 18 and cfg.fused(128) and not cfg.fused(64) and OFFICIAL_TRUNCATION == (0.7, 8)
    assert StyleGAN1Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="crop"):
        StyleGAN1Config(img_resolution=64, crop=(60, 0, 10, 64))
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN1Config(img_resolution=96)


def test_fused_upscale_is_upscale_then_conv_with_the_kernel_flipped():
    """The official fusion (3x3 kernel summed into 4x4, tf.nn.conv2d_transpose) equals tiling 2x then the
    3x3 conv *with the kernel flipped*: conv2d_transpose is the adjoint of a correlation. The official
    networks were trained this way (the TF vector at 128 px pins it); this test pins the relation."""
    torch.manual_seed(1)
    fused = _Layer(5, 6, 8, 16, conv="fused", blur=True)
    plain = _Layer(5, 6, 8, 16, conv="up", blur=True)
    sd = fused.state_dict()
    plain.load_state_dict({**sd, "weight": sd["weight"].flip(2, 3)})
    x, w = torch.randn(2, 5, 8, 8), torch.randn(2, 8)
    with torch.no_grad():
        assert torch.allclose(fused(x, w, fused.noise_const), plain(x, w, plain.noise_const), atol=1e-5)
        plain.load_state_dict(sd)
        assert not torch.allclose(fused(x, w, fused.noise_const), plain(x, w, plain.noise_const), atol=1e-2)


def test_shapes_noise_modes_and_truncation():
    G = _tiny()
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ws = G.mapping(z, None)
        assert ws.shape == (3, 8, 16) and torch.equal(ws[:, 0], ws[:, 7])
        t = G.mapping(z, None, truncation_psi=0.7, truncation_cutoff=4)
        assert torch.allclose(t[:, :4], G.w_avg + 0.7 * (ws[:, :4] - G.w_avg)) and torch.equal(t[:, 4:], ws[:, 4:])
        img = G.synthesis(ws, noise_mode="const")
        assert img.shape == (3, 3, 32, 32) and torch.equal(img, G(z, None))
        r1 = G.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(5))
        r2 = G.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(5))
        assert torch.equal(r1, r2) and not torch.allclose(r1, img)
        assert not torch.allclose(G.synthesis(ws, noise_mode="none"), img)
    with pytest.raises(ValueError, match="unconditional"):
        G.mapping(z, torch.ones(3, 2))
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="fresh")


def test_native_round_trip(tmp_path):
    G = _tiny(crop=(4, 0, 24, 32))
    G2 = generator_from_native(*_native(G, tmp_path))
    ws = G.mapping(torch.randn(1, 16), None)
    with torch.no_grad():
        assert torch.equal(G2.synthesis(ws), G.synthesis(ws)) and G2.img_shape == (24, 32)


def _native(G, tmp_path):
    import json

    from safetensors import safe_open
    path = save_native(G, tmp_path / "g.safetensors")
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, json.loads(f.metadata()["stylegan_hub"])


# ---- cars: 512x384, as the official figures crop the 512x512 letterboxed output -------------------------
def test_cars_aspect_ratio_from_the_record(tmp_path):
    card = registry.get("stylegan1-cars-512x384")
    assert card.arch_config["crop"] == [64, 0, 384, 512] and card.resolution == 512 and card.format == "tf-pkl"
    G = StyleGAN1Generator(StyleGAN1Config(z_dim=8, w_dim=8, mapping_hidden=8, mapping_layers=1, img_resolution=512,
                                           channels=official_channels(512, 1024, 1.0, 4),
                                           crop=tuple(card.arch_config["crop"]))).eval()
    with torch.no_grad():
        img = G(torch.randn(1, 8), None)
    assert img.shape == (1, 3, 384, 512) and G.img_shape == (384, 512)
    full = G.set_crop(None)
    with torch.no_grad():
        whole = full(torch.randn(1, 8, generator=torch.Generator().manual_seed(0)), None)
        part = full.set_crop((64, 0, 384, 512))(torch.randn(1, 8, generator=torch.Generator().manual_seed(0)), None)
    assert whole.shape == (1, 3, 512, 512) and torch.equal(part, whole[:, :, 64:448])


def test_model_cache_applies_a_record_crop_to_a_tf_pickle():
    base = registry.get("stylegan1-cars-512x384")
    import dataclasses
    card = dataclasses.replace(base, id="stylegan1-test-crop", arch_config={**base.arch_config, "crop": [16, 0, 96, 128]})
    G = default_loader(card, DATA / "tf_stylegan1_r128.pkl")
    with torch.no_grad():
        assert G(torch.randn(2, 32), None).shape == (2, 3, 96, 128)


# ---- the tabs' methods -------------------------------------------------------------------------------
def test_layer_bands_are_the_papers_and_mixing_swaps_rows():
    G1024 = StyleGAN1Generator(StyleGAN1Config(z_dim=4, w_dim=4, mapping_hidden=4, mapping_layers=1,
                                               channels=official_channels(1024, 2048, 1.0, 2)))
    assert row_resolutions(G1024)[:6] == (4, 4, 8, 8, 16, 16)
    bands = {k: v.rows for k, v in layer_ranges(G1024).items()}
    assert bands == {"coarse": (0, 1, 2, 3), "middle": (4, 5, 6, 7), "fine": tuple(range(8, 18))}   # paper fig. 3
    G = _tiny()
    ws = G.mapping(torch.randn(2, 16, generator=torch.Generator().manual_seed(3)), None)
    mixed = style_mix_images(G, ws[:1], ws[1:], "coarse")
    with torch.no_grad():
        want = G.synthesis(torch.cat([ws[1:, :4], ws[:1, 4:]], dim=1))
    assert torch.allclose(mixed, want.clamp(-1, 1), atol=1e-6)


def test_generate_images_with_the_official_truncation():
    G = _tiny()
    psi, cutoff = OFFICIAL_TRUNCATION
    out = generate_images(G, [0, 1], truncation_psi=psi, truncation_cutoff=cutoff)
    again = generate_images(G, [0, 1], truncation_psi=psi, truncation_cutoff=cutoff)
    assert out.images.shape == (2, 3, 32, 32) and torch.equal(out.images, again.images)
    assert out.ws.shape == (2, 8, 16)
