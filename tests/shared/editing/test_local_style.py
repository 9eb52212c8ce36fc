"""Editing in Style (shared.editing.local_style): spherical k-means, part catalogues and transfer,
the contribution picture, region channels, on a small random StyleGAN2."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.editing.stylespace import edit_channels, style_stats
from shared.errors import InputError
from shared.latents import ws_from_seeds
from shared.mixing import style_mix_images

torch.set_num_threads(1)


# ---- Editing in Style ---------------------------------------------------------------------------------
def test_spherical_kmeans_separates_directions():
    from shared.editing.local_style import spherical_kmeans
    g = torch.Generator().manual_seed(0)
    a = torch.tensor([1.0, 0, 0]) + 0.05 * torch.randn(50, 3, generator=g)
    b = torch.tensor([0, 1.0, 0]) * 7 + 0.05 * torch.randn(50, 3, generator=g)  # scale does not matter
    centres, labels = spherical_kmeans(torch.cat([a, b]), 2, seed=1)
    assert len(set(labels[:50].tolist())) == 1 and len(set(labels[50:].tolist())) == 1
    assert labels[0] != labels[50] and torch.allclose(centres.norm(dim=1), torch.ones(2), atol=1e-5)
    with pytest.raises(InputError, match="Choose 2 to"):
        spherical_kmeans(a, 1)


def test_catalogue_and_transfer_on_a_small_generator(sg2):
    from shared.editing.local_style import build_catalog, locality, part_maps, transfer_part
    cat = build_catalog(sg2, k=4, samples=16, seed=2)
    assert len(cat.contributions) == len(sg2.style_layers)
    for m, layer in zip(cat.contributions, sg2.style_layers):
        assert m.shape == (4, layer.channels)
        assert torch.allclose(m.sum(0), torch.ones(layer.channels), atol=1e-4)  # shares over parts add to 1
    ws = ws_from_seeds(sg2, [1, 2])
    maps = part_maps(sg2, cat, ws)
    assert maps.shape == (2, 32, 32) and maps.max() < 4
    same, _ = transfer_part(sg2, cat, ws[:1], ws[:1], [0], min_resolution=4, epsilon=50, rho=0.0)
    base = style_mix_images(sg2, ws[:1], ws[:1], list(range(sg2.num_ws)))
    assert torch.allclose(same, base, atol=1e-5)           # the reference equal to the target: no change
    none, moved = transfer_part(sg2, cat, ws[:1], ws[1:], [0], epsilon=0.0)
    assert moved == 0 and torch.allclose(none, base, atol=1e-5)
    img, moved = transfer_part(sg2, cat, ws[:1], ws[1:], [0, 1], rho=0.0, epsilon=50, min_resolution=4)
    assert moved > 0 and (img - base).abs().max() > 1e-3
    assert 0 <= locality(base, img, maps[0] <= 1) <= 1
    again, _ = transfer_part(sg2, cat, ws[:1], ws[1:], [0, 1], rho=0.0, epsilon=50, min_resolution=4)
    assert torch.equal(img, again)
    with pytest.raises(InputError, match="clusters among"):
        transfer_part(sg2, cat, ws[:1], ws[1:], [9])


def test_contribution_image_marks_the_channels_taken(sg2):
    from shared.editing.local_style import build_catalog, cached_catalog, contribution_image, part_channels
    cat = build_catalog(sg2, k=4, samples=16, seed=2)
    img = contribution_image(sg2, cat, [0, 1], rho=0.0, epsilon=50, min_resolution=4, scale=1)
    widest = max(l.channels for l in sg2.style_layers)
    assert img.dtype == np.uint8 and img.shape == (14 + len(sg2.style_layers) * 13, 74 + widest, 3)
    masks = part_channels(sg2, cat, [0, 1], rho=0.0, epsilon=50, min_resolution=4)
    for i, m in enumerate(masks):                                   # cyan ticks exactly on the channels taken
        tick = (img[14 + i * 13, 74:74 + len(m)] == (0, 200, 230)).all(axis=1)
        assert np.array_equal(tick, m.numpy().astype(bool))
    a, hit = cached_catalog("random-sg2", sg2, k=4, samples=16, seed=2)
    b, hit2 = cached_catalog("random-sg2", sg2, k=4, samples=16, seed=2)
    assert not hit and hit2 and a is b and torch.equal(a.centres, cat.centres)


def test_region_channels_act_inside_the_region(sg2):
    from shared.editing.stylespace import region_channels
    ws = ws_from_seeds(sg2, [4])
    stats = style_stats(sg2, samples=200)
    region = torch.zeros(32, 32)
    region[:, :16] = 1
    found = region_channels(sg2, ws, region, stats, top=5, min_inside=0.6)
    assert found and all(c.inside >= 0.6 for c in found)
    assert [c.energy for c in found] == sorted((c.energy for c in found), reverse=True)
    base, _ = edit_channels(sg2, ws, [], stats)
    moved, _ = edit_channels(sg2, ws, [(found[0].layer, found[0].channel, 5.0)], stats)
    change = (moved - base).square().sum(1)[0]
    assert float(change[:, :16].sum() / change.sum()) == pytest.approx(found[0].inside, abs=1e-4)
    with pytest.raises(InputError, match="region is empty"):
        region_channels(sg2, ws, torch.zeros(32, 32), stats)
