"""The 3D rendering tab in a real browser (Debian chromium, Playwright): with the tiny StyleNeRF and
EG3D files of tests/tiny3d.py in place, the availability line names them, Render shows a PNG image
and its depth map, and the orbit section returns a playable MP4. Screenshots at 1400x1000 and
400x800 go to tests/artifacts/screenshots/ (look at them)."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from tests.browser.pages import WAIT_MS, decoded_png, open_tab, screenshot
from tests.running_app import running_app
from tests.tiny3d import EG3D_ID, NERF_ID, save_tiny_models

pytestmark = pytest.mark.browser
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with the tiny 3D files in place (this module's own, replacing conftest's)."""
    env = {var: str(path) for var, path in save_tiny_models(tmp_path_factory.mktemp("tiny3d")).items()}
    with running_app(tmp_path_factory, env=env, styled=True) as (address, _, _):
        yield address


def _open(browser, url: str, width: int, height: int):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    page.get_by_text("StyleGAN applications side by side").wait_for()
    open_tab(page, "3D rendering")
    return context, page


def _shown(page, elem: str) -> np.ndarray:
    img = page.locator(f"#{elem} img").first
    img.wait_for(state="visible")
    return decoded_png(page, img.get_attribute("src"))


def test_render_view_and_orbit_video(browser, url: str):
    context, page = _open(browser, url, 1400, 1000)
    try:
        line = page.locator("#r3d-available").inner_text()
        assert NERF_ID in line and EG3D_ID in line and "HUB_MODEL_PATH_" in line
        page.locator("#r3d-render").click()
        image, depth = _shown(page, "r3d-image"), _shown(page, "r3d-depth")
        assert image.shape == depth.shape == (32, 32, 3)             # the tiny StyleNeRF, picked first
        assert image.astype(np.float32).var() > 10 and depth.astype(np.float32).var() > 10
        page.locator("#r3d-info").get_by_text(NERF_ID).wait_for()
        screenshot(page, "3d-rendering-view")

        page.get_by_role("tab", name="Orbit video", exact=True).click()
        page.locator("#r3d-orbit-run").click()
        page.locator("#r3d-orbit-info").get_by_text("24 frames at 12 fps").wait_for()
        src = page.locator("#r3d-video video").first.get_attribute("src")
        response = page.request.get(src)
        assert response.ok and response.body()[4:8] == b"ftyp"      # an MP4 the page can play
        screenshot(page, "3d-rendering-orbit")

        page.get_by_role("tab", name="Mesh", exact=True).click()
        page.get_by_label("32", exact=True).check()
        page.locator("#r3d-level input").fill(f"{_level_inside_the_field():.4f}")
        page.locator("#r3d-mesh-run").click()
        page.locator("#r3d-mesh-info").get_by_text("32³ grid").wait_for()
        link = page.locator("#r3d-glb a").first
        link.wait_for(state="visible")
        assert page.request.get(link.get_attribute("href")).body()[:4] == b"glTF"
        page.locator("#r3d-model3d canvas").first.wait_for(state="visible")
        page.locator("#r3d-mesh-run").scroll_into_view_if_needed()
        page.wait_for_timeout(3000)  # let the viewer draw
        # a viewport shot: a full-page one resizes the WebGL canvas, which the viewer then shows blank
        screenshot(page, "3d-rendering-mesh", full_page=False)
    finally:
        context.close()


def _level_inside_the_field() -> float:
    """A density level the tiny StyleNeRF's seed-0 field crosses (the file is the same seeded model)."""
    from shared.rendering3d import density_grid, latent_for_seed
    from tests.tiny3d import tiny_stylenerf

    G = tiny_stylenerf()
    sigma = density_grid(G, latent_for_seed(G, 0), 32).sigma
    return float(np.median(sigma[sigma > sigma.min()]))


def test_narrow_screen_layout(browser, url: str):
    context, page = _open(browser, url, 1400, 1000)   # at 400 px the tab strip folds into a menu
    try:
        page.locator("#r3d-render").click()
        _shown(page, "r3d-depth")
        page.set_viewport_size({"width": 400, "height": 800})
        page.wait_for_timeout(500)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, f"the page scrolls sideways on a phone ({width} px)"
        assert page.locator("#r3d-image img").first.is_visible() and page.locator("#r3d-render").is_visible()
        screenshot(page, "3d-rendering-narrow")
    finally:
        context.close()
