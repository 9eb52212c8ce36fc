"""Retrieve in Style (shared.editing.retrieve_style): contributions, part queries (pose on the coarse
layers), the norm-keeping transfer, retrieval; its figures on the demo world; the tab's two endpoints
and one browser path."""
from __future__ import annotations

import re

import pytest
import torch
from gradio_client.exceptions import AppError

from shared import registry
from shared.archs.stylegan2 import flat_to_styles, styles_to_flat
from shared.editing import retrieve_style as ris
from shared.generation import InputError
from shared.mixing import ws_from_seeds
from tests.test_app_api import app, call, client  # noqa: F401 - fixtures
from tests.test_browser import browser, page, screenshot, url  # noqa: F401 - fixtures
from tests.test_editing import sg2  # noqa: F401 - fixture: a small random StyleGAN2

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


# ---- demo world: the benchmark's figures with margins (benchmarks/editing.py --only ris) ---------------
@pytest.fixture(scope="module")
def demo():
    from shared import load_generator
    from shared.demo.bundle import bundle_file
    from shared.demo.predictor import DEFAULT_PATH, load_predictor
    return load_generator(bundle_file("generator.safetensors")).eval(), load_predictor(DEFAULT_PATH)


def test_demo_world_transfer_and_retrieval_figures(demo):
    from shared.demo.ris_eval import retrieval_report, transfer_report
    G, predictor = demo
    ws = ws_from_seeds(G, list(range(9_100_000, 9_100_032)))   # seeds the benchmark did not use
    rep = transfer_report(G, predictor, ws[:16], ws[16:], parts=("hair", "eyes", "pose"))
    assert rep["hair"]["locality"] >= 0.6          # measured 0.76 on 100 pairs: hair stays in the hair
    assert rep["eyes"]["locality"] >= 1.5 * 0.03   # measured 0.20 against an area of ~3 %: well above chance
    assert rep["pose"]["success"] >= 0.6           # measured 0.81: yaw/pitch move toward the reference's
    assert rep["eyes"]["other_change"] < rep["pose"]["other_change"]   # a part moves less of the face than pose
    bank = ws_from_seeds(G, list(range(9_200_000, 9_200_120)))
    ret = retrieval_report(G, predictor, ws[:10], bank, parts=("hair", "pose"))
    assert ret["hair"]["same_colour_top"] > ret["hair"]["same_colour_bank"] + 0.05
    assert ret["pose"]["ratio"] < 0.97


# ---- the tab ------------------------------------------------------------------------------------------------
def test_ris_endpoints(app):  # noqa: F811
    from tests.test_app_api import new_client
    c = new_client(app)
    gallery, info = call(c, DEMO, "3", None, "hair", "predictor", [], [], "20", 1.0, api_name="/ris_transfer")
    assert [g["caption"] for g in gallery] == ["target: seed 3", "reference: seed 20", "hair taken"]
    assert re.search(r"\d+ style channels carry the hair", info)
    assert re.search(r"\d+% of the pixel change lies inside the hair", info)
    _, info = call(c, DEMO, "3", None, "pose", "predictor", [], [], "20", 1.0, api_name="/ris_transfer")
    assert "no locality is measured" in info
    with pytest.raises(AppError, match="Build the part catalogue"):
        call(c, DEMO, "3", None, "eyes", "catalogue", [], [], "20", 1.0, api_name="/ris_transfer")
    found, info = call(c, DEMO, "3", None, "eyes", "predictor", [], [], "0-31", api_name="/ris_retrieve")
    assert found[0]["caption"] == "query: seed 3" and len(found) == 9
    assert found[1]["caption"].startswith("seed 3 · 1.00")      # the query is in the bank: found first
    assert "32 faces of the bank ranked by their eyes" in info
    # with a catalogue: clusters named here make the parts
    _, _, _, part_choices, hair_choices = call(c, DEMO, 6, 32, "auto", api_name="/part_catalogue")
    assert part_choices["choices"] == hair_choices["choices"] and part_choices["value"] == []
    ids = [v for _, v in part_choices["choices"]]
    with pytest.raises(AppError, match="tick the hair clusters"):
        call(c, DEMO, "3", None, "pose", "catalogue", [], [], "20", 1.0, api_name="/ris_transfer")
    gallery, info = call(c, DEMO, "3", None, "eyes", "catalogue", ids[:1], ids[1:2], "20", 0.5,
                         api_name="/ris_transfer")
    assert len(gallery) == 3 and "amount 0.50" in info


@pytest.mark.browser
def test_browser_transfers_hair_with_retrieve_in_style(page):  # noqa: F811
    page.get_by_role("tab", name="Local editing", exact=True).click()
    page.get_by_role("tab", name="Retrieve in Style", exact=True).click()
    page.locator("#edit-ris-run").click()
    page.locator("#edit-ris-info").get_by_text("style channels carry the hair").wait_for()
    page.locator("#edit-retrieve").click()
    page.locator("#edit-retrieved-info").get_by_text("faces of the bank ranked").wait_for()
    assert page.locator("#edit-ris-result img").count() == 3
    assert page.locator("#edit-retrieved img").count() == 9
    screenshot(page, "local_editing_ris")
