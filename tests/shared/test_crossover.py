"""Crossover and inpainting (Image2StyleGAN++) on the demo generator."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.crossover import (MASK_PRESETS, crossover, dilate, erode, inpaint, mask_from_layers, part_mask,
                              predicted_part_mask, preset_mask, seam_band, seam_energy)
from shared.errors import InputError
from shared.inversion import InversionCancelled
from shared.inversion.compare import default_perceptual
from shared.latents import ws_from_seeds
from shared.mixing import style_mix_images
from shared.portraits import PART_NAMES, render_seeds

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def G(demo_generator):
    return demo_generator


@pytest.fixture(scope="module")
def pair(G):
    ws = ws_from_seeds(G, [1, 2])
    return style_mix_images(G, ws, ws, list(range(G.num_ws))), ws


# ---- masks ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, where", [("left", (slice(None), slice(0, 32))), ("right", (slice(None), slice(32, 64))),
                                         ("upper", (slice(0, 32), slice(None))), ("lower", (slice(32, 64), slice(None))),
                                         ("centre", (slice(16, 48), slice(16, 48)))])
def test_preset_masks(name, where):
    m = preset_mask(name, 64)
    assert m.shape == (1, 1, 64, 64) and set(m.unique().tolist()) == {0.0, 1.0}
    assert (m[0, 0][where] == 1).all() and float(m.sum()) == float(m[0, 0][where].numel())
    assert name in MASK_PRESETS


def test_bad_presets_and_masks_are_sentences(G, pair):
    with pytest.raises(InputError, match="Unknown mask preset 'diagonal'"):
        preset_mask("diagonal", 64)
    with pytest.raises(InputError, match="Nothing is painted"):
        mask_from_layers([np.zeros((256, 256, 4), np.uint8)], 64)
    imgs, _ = pair
    with pytest.raises(InputError, match="not none or all"):
        crossover(G, imgs[:1], imgs[1:], torch.zeros(1, 1, 64, 64), steps=1, noise_steps=0)
    with pytest.raises(InputError, match=r"\[1, 1, 64, 64\]"):
        crossover(G, imgs[:1], imgs[1:], torch.ones(1, 1, 32, 32), steps=1, noise_steps=0)
    with pytest.raises(InputError, match=r"Image B must be \[1, 3, 64, 64\]"):
        crossover(G, imgs[:1], imgs[1:, :, :32], preset_mask("left", 64), steps=1)
    with pytest.raises(InputError, match="seam width"):
        crossover(G, imgs[:1], imgs[1:], preset_mask("left", 64), steps=1, seam_px=40)
    with pytest.raises(InputError, match="whole image"):
        inpaint(G, imgs[:1], preset_mask("centre", 64), steps=1, seam_px=16)


def test_mask_from_painted_layers():
    layer = np.zeros((256, 256, 4), np.uint8)
    layer[:, :128, 3] = 255                      # the left half painted (alpha)
    m = mask_from_layers([None, layer], 64)
    assert torch.equal(m, preset_mask("left", 64))
    rgb = np.zeros((128, 128, 3), np.uint8)
    rgb[64:, :, 0] = 200                          # an RGB layer: non-black = painted
    assert torch.equal(mask_from_layers([rgb], 64), preset_mask("lower", 64))


def test_morphology_and_seam_band():
    m = preset_mask("left", 64)
    assert float(dilate(m, 2).sum()) == 64 * 34 and float(erode(m, 2).sum()) == 64 * 30
    band = seam_band(m, 3)
    assert float(band.sum()) == 64 * 6 and (band[0, 0, :, 29:35] == 1).all()
    flat = torch.zeros(1, 3, 64, 64)
    assert seam_energy(flat, m) == 0.0
    paste = torch.cat([torch.full((1, 3, 64, 32), -1.0), torch.full((1, 3, 64, 32), 1.0)], dim=3)
    assert seam_energy(paste, m, px=1) == pytest.approx(3 * 4.0 / 2)  # one of the band's two columns jumps by 2


def test_part_masks_follow_the_rendered_parts():
    """The demo predictor's part map of a render overlaps the renderer's own parts."""
    out = render_seeds([3, 11], 64)
    for i in range(2):
        truth = part_mask(out.parts[i], [PART_NAMES.index("hair")], 64)
        if truth.sum() < 50:
            continue
        guess = predicted_part_mask(out.img[i:i + 1], "hair")
        iou = float((truth * guess).sum() / ((truth + guess) > 0).float().sum())
        assert iou > 0.6, iou
    with pytest.raises(InputError, match="Unknown part"):
        predicted_part_mask(out.img[:1], "ears")


# ---- the method -------------------------------------------------------------------------------------
def test_crossover_matches_each_source_and_smooths_the_seam(G, pair):
    imgs, ws = pair
    before = {k: v.clone() for k, v in G.state_dict().items()}
    m = preset_mask("left", 64)
    res = crossover(G, imgs[:1], imgs[1:], m, steps=60, noise_steps=30, perceptual=default_perceptual(),
                    ws_a=ws[:1], ws_b=ws[1:], seed=3)
    s = res.scores
    assert res.image.shape == (1, 3, 64, 64) and res.ws.shape == (1, G.num_ws, G.w_dim)
    assert s["psnr_a"] > 24 and s["psnr_b"] > 24, s
    assert s["seam_energy"] < 0.5 * s["seam_energy_naive"], s
    assert torch.equal(res.naive, m * imgs[:1] + (1 - m) * imgs[1:])
    assert float(res.weight.sum()) == 64 * 64 - 64 * 6      # the seam band (3 px each side) is free
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())  # the shared model is untouched
    again = crossover(G, imgs[:1], imgs[1:], m, steps=60, noise_steps=30, perceptual=default_perceptual(),
                      ws_a=ws[:1], ws_b=ws[1:], seed=3)
    assert torch.allclose(again.image, res.image, atol=1e-5)  # deterministic per seed


def test_inpainting_keeps_the_known_part_and_fills_the_hole(G, pair):
    imgs, ws = pair
    hole = preset_mask("centre", 64)
    res = inpaint(G, imgs[:1], hole, steps=60, noise_steps=30, perceptual=default_perceptual())
    assert res.scores["psnr_known"] > 24, res.scores
    inside = res.image[:, :, 20:44, 20:44]
    assert inside.std() > 0.05 and (inside - res.naive[:, :, 20:44, 20:44]).abs().mean() > 0.1  # not the grey hole


def test_crossover_can_be_stopped(G, pair):
    imgs, _ = pair
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(InversionCancelled):
        crossover(G, imgs[:1], imgs[1:], preset_mask("upper", 64), steps=50, noise_steps=0, should_stop=stop)


def test_crossover_on_stylegan3_runs_wplus_only():
    from shared.archs.stylegan3 import StyleGAN3Config, StyleGAN3Generator
    cfg = StyleGAN3Config(z_dim=16, w_dim=16, img_resolution=32, channel_base=256, channel_max=16, num_layers=6,
                          num_critical=2, mapping_layers=2, mapping_lr=1.0)
    G3 = StyleGAN3Generator(cfg, generator=torch.Generator().manual_seed(4)).eval()
    r = G3.img_resolution
    a, b = torch.rand(2, 1, 3, r, r, generator=torch.Generator().manual_seed(1)) * 2 - 1
    res = crossover(G3, a, b, preset_mask("left", r), steps=5, noise_steps=20)
    assert res.result.noises is None and len(res.result.losses) == 5
