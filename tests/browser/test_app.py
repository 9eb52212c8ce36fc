"""The page in a real browser: Debian chromium driven by Playwright (sync API).

Launches the app in-process on 127.0.0.1, visits every tab, generates images in Generate and
checks that the gallery shows non-blank PNGs, sends a latent to Mixing and sees it arrive,
downloads a model in Models from the local Hub server and sees it marked cached. A screenshot
of each tab is saved under tests/artifacts/screenshots/ (git-ignored) for people to look at.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from shared import registry
from tests.browser.pages import decoded_png, open_tab, screenshot
from tests.hubserver import HubServer

pytestmark = pytest.mark.browser
torch.set_num_threads(1)

# (tab label, a text that only that tab shows, screenshot name)
TABS = [
    ("Generate", "Pick a generator and some seeds", "generate"),
    ("Inversion", "Put a real photo into a generator's latent space", "inversion"),
    ("Mixing", "Combine latents", "mixing"),
    ("Local editing", "Change one thing about a face", "local-editing"),
    ("Reposing", "Turn a generated or inverted face", "reposing"),
    ("3D rendering", "Generate faces with 3D-aware generators", "3d-rendering"),
    ("Text editing", "Describe the change and let CLIP steer the generator", "text-editing"),
    ("Models", "Every network the hub knows", "models"),
]



# ---- tests ---------------------------------------------------------------------------------------
def test_every_tab_renders(page):
    labels = [t.inner_text().strip() for t in page.get_by_role("tab").all()]
    assert labels == [label for label, _, _ in TABS]
    status = page.locator("#status-line").inner_text()
    assert "Device" in status and "ops:" in status and "offline" in status
    for label, marker, name in TABS:
        open_tab(page, label)
        page.get_by_text(marker).first.wait_for(state="visible")
        assert screenshot(page, name).stat().st_size > 10_000


def test_generate_shows_png_images_and_sends_a_latent_to_mixing(page):
    page.locator("#generate-seeds textarea, #generate-seeds input").first.fill("0-3")
    page.locator("#generate-run").click()
    thumbs = page.locator("#generate-gallery img")
    thumbs.nth(3).wait_for(state="visible")
    assert thumbs.count() == 4
    for i in range(4):
        img = decoded_png(page, thumbs.nth(i).get_attribute("src"))
        assert img.shape == (64, 64, 3)
        assert img.astype(np.float32).var() > 50, "the generated image is blank"
    info = page.locator("#generate-info").inner_text()
    assert "4 image(s)" in info and "seeds 0, 1, 2, 3" in info
    screenshot(page, "generate")

    thumbs.nth(2).click()  # choose seed 2
    page.get_by_role("button", name="Send to Mixing").click()
    page.locator("#generate-sent").get_by_text("Sent seed 2").wait_for()
    open_tab(page, "Mixing")
    page.locator("#mixing-inbox").get_by_text("Latest sent here: seed 2").wait_for()
    screenshot(page, "mixing")


def test_bad_seeds_show_a_readable_error(page):
    page.locator("#generate-seeds textarea, #generate-seeds input").first.fill("abc")
    page.locator("#generate-run").click()
    page.get_by_text("Could not read 'abc' as a seed").first.wait_for(state="visible")
    page.wait_for_timeout(1000)  # let the toast finish fading in
    screenshot(page, "generate-error", full_page=False)  # the toast is fixed to the viewport


def test_models_download_from_the_local_hub_marks_it_cached(page, hub_env: HubServer, rosinality_ckpt):
    ckpt = rosinality_ckpt
    card = registry.get("stylegan2-ffhq-1024-rosinality")
    src = card.hub_sources[0]
    hub_env.commit(src.repo_id, {src.filename: ckpt.read_bytes()})

    open_tab(page, "Models")
    row = page.locator("#models-table").get_by_role("row").filter(has_text=card.id).first
    row.wait_for()
    picker = page.locator("#models-picker input").first
    picker.click()
    picker.fill(card.id)
    page.get_by_role("option", name=card.id, exact=True).click()
    page.locator("#models-download").click()
    page.locator("#models-result").get_by_text("is cached at").wait_for()
    assert hub_env.count(src.filename, method="GET") == 1
    cells = [c.strip() for c in row.inner_text().split("\n") if c.strip()]
    assert cells[:1] == [card.id] and cells[5] == "yes", cells
    assert cells[6].startswith("unverified (first seen"), cells
    screenshot(page, "models")
