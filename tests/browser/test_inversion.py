"""The Inversion tab in a browser: an uploaded demo render is inverted."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from shared.images import to_uint8_hwc
from shared.portraits import render_seeds
from tests.browser.pages import decoded_png, screenshot

torch.set_num_threads(1)


# ---- browser ------------------------------------------------------------------------------------
@pytest.mark.browser
def test_browser_inverts_an_uploaded_demo_render(page, tmp_path):
    path = tmp_path / "portrait.png"
    Image.fromarray(to_uint8_hwc(render_seeds([11], 256).img)[0]).save(path)
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.get_by_role("tab", name="Inversion", exact=True).click()
    page.locator("#inversion-photo input[type=file]").set_input_files(str(path))
    page.locator("#inversion-align-note").get_by_text("was found").wait_for()  # the default for a new photo
    page.get_by_label("Centre crop (no alignment)").check()
    page.locator("#inversion-align").click()
    page.locator("#inversion-aligned img").wait_for(state="visible")
    page.get_by_label("W optimisation (Image2StyleGAN)").uncheck()  # W+ and the demo e4e (default on)
    page.get_by_text("Method options").click()
    steps = page.get_by_label("number input for Optimisation steps")
    steps.fill("5")
    steps.press("Enter")
    page.locator("#inversion-run").click()
    thumbs = page.locator("#inversion-gallery img")
    thumbs.nth(1).wait_for(state="visible")
    page.locator("#inversion-info").get_by_text("W+ optimisation").first.wait_for()
    page.locator("#inversion-info").get_by_text("e4e encoder").first.wait_for()
    thumbs.nth(2).wait_for(state="visible")  # the gallery may render just after the table
    assert thumbs.count() == 3
    recon = decoded_png(page, thumbs.nth(1).get_attribute("src"))
    assert recon.shape == (64, 64, 3)
    assert recon.astype(np.float32).var() > 10, "the reconstruction is blank"
    assert "PSNR" in page.locator("#inversion-info").inner_text() or "| W+" in page.locator("#inversion-info").inner_text()
    page.wait_for_timeout(500)
    assert screenshot(page, "inversion-run").stat().st_size > 10_000


@pytest.mark.browser
@pytest.mark.parametrize("photo, mode, note", [
    ("astronaut", "FFHQ alignment (dlib landmarks)", "A face was found"),
    ("coffee", "Centre crop (no alignment)", "No face was found"),
])
def test_browser_a_new_photo_defaults_to_ffhq_alignment_when_it_has_a_face(page, tmp_path, photo, mode, note):
    """A real photo with a face (skimage's astronaut) picks FFHQ alignment; one without a face
    (a cup of coffee) picks centre crop and says so. Issue 21: centre crop wasted the run."""
    skimage_data = pytest.importorskip("skimage.data")
    path = tmp_path / f"{photo}.png"
    Image.fromarray(getattr(skimage_data, photo)()).save(path)
    page.get_by_role("tab", name="Inversion", exact=True).click()
    assert page.get_by_label("Centre crop (no alignment)").is_checked()   # the demo model's default
    page.locator("#inversion-photo input[type=file]").set_input_files(str(path))
    page.locator("#inversion-align-note").get_by_text(note).wait_for()
    assert page.get_by_label(mode).is_checked()
    page.locator("#inversion-align").click()
    page.locator("#inversion-aligned img").wait_for(state="visible")
    line = page.locator("#inversion-align-info").inner_text()
    assert ("FFHQ alignment" if photo == "astronaut" else "Centre crop") in line, line
    screenshot(page, f"inversion-default-alignment-{photo}")
