"""Reposing › Pose with Style in a real browser (Debian chromium, Playwright): with the tiny files of
tests/tinypws.py in place, the line at the top says the four files are here; uploading a synthetic
person (photo, silhouette, IUV) and a target IUV and pressing Repose shows the 128 x 88 result and both
IUV previews whole. Screenshots at 1400x1000 and 400x800 go to tests/artifacts/screenshots/ (look at them)."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from tests.browser.pages import app_page, clipped_images, decoded_png, screenshot
from tests.running_app import running_app
from tests.tinypws import SIZE, WIDTH, save_person, save_tiny_models

pytestmark = pytest.mark.browser
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with the tiny Pose with Style files in place (this module's own, replacing conftest's)."""
    env = {var: str(path) for var, path in save_tiny_models(tmp_path_factory.mktemp("tinypws")).items()}
    with running_app(tmp_path_factory, env=env, styled=True) as (address, _, _):
        yield address


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("people")
    return save_person(folder, "source", 0), save_person(folder, "target", 1, shift=8)


@pytest.mark.parametrize("width, height", [(1400, 1000), (400, 800)])
def test_repose_uploaded_person(browser, url: str, files, width: int, height: int):
    source, target = files
    with app_page(browser, url, width, height, "Reposing", "Pose with Style") as page:
        line = page.locator("#pws-available").inner_text()
        assert line.count("✓ here") == 4, line
        for elem, path in (("pws-photo", source["image"]), ("pws-sil", source["sil"]), ("pws-iuv", source["iuv"]),
                           ("pws-target", target["iuv"])):
            page.locator(f"#{elem} input[type=file]").set_input_files(str(path))
            page.locator(f"#{elem} img").first.wait_for(state="visible")
        page.locator("#pws-run").click()
        page.locator("#pws-info").get_by_text("reposed to the target IUV").wait_for()
        for elem in ("pws-result", "pws-source-iuv", "pws-target-iuv"):
            img = page.locator(f"#{elem} img").first
            img.wait_for(state="visible")
            shown = decoded_png(page, img.get_attribute("src"))
            assert shown.shape == (SIZE, WIDTH, 3) and shown.astype(np.float32).std() > 5, elem
            img.scroll_into_view_if_needed()
            assert clipped_images(page, f"#{elem}") == [], elem
        page.wait_for_timeout(300)
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 20, "the page scrolls sideways"
        screenshot(page, f"reposing-posewithstyle-{width}x{height}")
        page.get_by_label("Garment transfer").check()
        page.locator("#pws-garment-run").wait_for(state="visible")
        assert not page.locator("#pws-run").is_visible() and not page.locator("#pws-target").is_visible()
        assert page.locator("#pws-garment-photo").is_visible() and page.locator("#pws-part").is_visible()
        screenshot(page, f"reposing-posewithstyle-garment-{width}x{height}")
