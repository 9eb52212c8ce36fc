"""Retrieve in Style (shared.editing.retrieve_style) on a small random generator: contributions, part
queries (pose on the coarse layers), the norm-keeping transfer, retrieval, catalogue masks."""
from __future__ import annotations

import pytest
import torch

from shared import registry
from shared.archs.stylegan2 import flat_to_styles, styles_to_flat
from shared.editing import retrieve_style as ris
from shared.errors import InputError
from shared.latents import ws_from_seeds

DEMO = registry.DEFAULT_GENERATOR_ID


def _masks(n: int, size: int = 32) -> dict[str, torch.Tensor]:
    """Fixed boxes standing in for parts: hair on top, eyes across the middle, mouth below."""
    hair, eyes, mouth = (torch.zeros(n, size, size, dtype=torch.bool) for _ in range(3))
    hair[:, :8] = True
    eyes[:, 12:15, 6:26] = True
    mouth[:, 22:26, 10:22] = True
    return {"hair": hair, "eyes": eyes, "mouth": mouth}


def _coarse(G) -> torch.Tensor:
    return torch.cat([torch.full((l.channels,), l.resolution <= ris.COARSE_RESOLUTION) for l in G.style_layers])


def test_contributions_are_shares_that_add_up_to_one(sg2):
    ws = ws_from_seeds(sg2, [1, 2])
    m = ris.part_contributions(sg2, ws, _masks(2))
    total = sum(l.channels for l in sg2.style_layers)
    parts = ["hair", "eyes", "mouth", ris.REST]
    assert all(m[p].shape == (total,) for p in parts)
    assert torch.allclose(sum(m[p] for p in parts), torch.ones(total), atol=1e-5)
    assert float(m["_area_hair"]) == pytest.approx(8 / 32) and float(m["_area_eyes"]) == pytest.approx(60 / 1024)
    # the shares are energy shares: a feature map that is zero outside the box puts all its energy in it
    assert (m["hair"] >= 0).all() and (m["hair"] <= 1 + 1e-6).all()
    with pytest.raises(InputError, match="one mask per latent"):
        ris.part_contributions(sg2, ws[:1], _masks(2))


def test_part_queries_follow_the_coarse_layer_rule_and_pose_is_hairs_complement(sg2):
    m = ris.part_contributions(sg2, ws_from_seeds(sg2, [3, 4]), _masks(2))
    coarse = _coarse(sg2)
    eyes, hair, pose = (ris.part_query(sg2, m, p) for p in ("eyes", "hair", "pose"))
    assert float(eyes.max()) == pytest.approx(1.0) and (eyes[coarse] == 0).all()     # coarse: hair and pose only
    assert float(hair[coarse].sum()) > 0
    assert torch.allclose(pose[coarse], 1 - m["hair"][coarse]) and (pose[~coarse] == 0).all()
    # a channel belongs to one part only: where its energy is densest
    mouth = ris.part_query(sg2, m, "mouth")
    assert not ((eyes > 0) & (mouth > 0)).any() and not ((eyes > 0) & (hair > 0)).any()
    with pytest.raises(InputError, match="name the hair part"):
        ris.part_query(sg2, {k: v for k, v in m.items() if "hair" not in k}, "pose")
    with pytest.raises(InputError, match="Unknown part 'nose'"):
        ris.part_query(sg2, m, "nose")


def test_transfer_keeps_the_norm_and_is_deterministic(sg2):
    ws = ws_from_seeds(sg2, [6, 7])
    m = ris.part_contributions(sg2, ws, _masks(2))
    q = ris.part_query(sg2, m, "hair")
    with torch.no_grad():
        base = sg2.synthesis(ws[:1], noise_mode="const").float().clamp(-1, 1)
    assert torch.allclose(ris.transfer(sg2, ws[:1], ws[1:], q, amount=0.0), base, atol=1e-5)
    assert torch.allclose(ris.transfer(sg2, ws[:1], ws[:1], q), base, atol=1e-5)   # reference = target: no change
    out = ris.transfer(sg2, ws[:1], ws[1:], q)
    assert (out - base).abs().max() > 1e-3 and torch.equal(out, ris.transfer(sg2, ws[:1], ws[1:], q))
    # with a 0/1 query, amount 1 gives the reference's direction at the target's norm on those channels
    hard = (q > 0).float()
    with torch.no_grad():
        s = styles_to_flat(sg2.synthesis.styles(ws[:1]))
        r = styles_to_flat(sg2.synthesis.styles(ws[1:]))
    want = s * (1 - hard) + hard * r / (hard * r).norm() * (hard * s).norm()
    with torch.no_grad():
        expected = sg2.synthesis.from_styles(flat_to_styles(want, sg2.style_layers), noise_mode="const").clamp(-1, 1)
    assert torch.allclose(ris.transfer(sg2, ws[:1], ws[1:], hard), expected, atol=1e-5)
    assert float((hard * want).norm()) == pytest.approx(float((hard * s).norm()), rel=1e-5)
    with pytest.raises(InputError, match="No style channel belongs"):
        ris.transfer(sg2, ws[:1], ws[1:], torch.zeros_like(q))
    with pytest.raises(InputError, match="between 0 and 2"):
        ris.transfer(sg2, ws[:1], ws[1:], q, amount=3)


def test_retrieval_finds_the_query_first_and_ranks_by_the_part(sg2):
    bank = ws_from_seeds(sg2, list(range(12)))
    m = ris.part_contributions(sg2, bank[5:6], _masks(1))
    q = ris.part_query(sg2, m, "eyes")
    order, sim = ris.retrieve_part(sg2, bank[5:6], bank, q)
    assert int(order[0]) == 5 and float(sim[0]) == pytest.approx(1.0, abs=1e-5)
    assert (sim[:-1] >= sim[1:]).all() and sorted(order.tolist()) == list(range(12))
    # the similarity is the cosine of the part's weighted styles around the mean style
    with torch.no_grad():
        s = styles_to_flat(sg2.synthesis.styles(bank))
        mean = styles_to_flat(sg2.synthesis.styles(sg2.w_avg.reshape(1, 1, -1).expand(1, sg2.num_ws, -1)))[0]
    sim_direct = torch.nn.functional.cosine_similarity(q * (s - mean), (q * (s[5] - mean))[None], dim=1)
    assert torch.allclose(sim, sim_direct[order], atol=1e-5)


def test_catalogue_masks_are_unions_of_named_clusters(sg2):
    from shared.editing.local_style import build_catalog, part_maps
    cat = build_catalog(sg2, k=4, samples=16, seed=2)
    ws = ws_from_seeds(sg2, [1, 2])
    masks = ris.catalogue_masks(sg2, cat, ws, {"hair": [0, 2], "eyes": [1]})
    maps = part_maps(sg2, cat, ws)
    assert torch.equal(masks["hair"], (maps == 0) | (maps == 2)) and torch.equal(masks["eyes"], maps == 1)
    with pytest.raises(InputError, match="among 0 to 3"):
        ris.catalogue_masks(sg2, cat, ws, {"hair": [7]})
    with pytest.raises(InputError, match="Unknown part 'ears'"):
        ris.catalogue_masks(sg2, cat, ws, {"ears": [0]})
