"""The Reposing tab in a real browser: Repose shows the source and the turned face whole, the info
line carries the demo predictor's reading, the yaw strip fills its gallery. Screenshots at
1400x1000 and 400x800 go to tests/artifacts/screenshots/ (look at them)."""
from __future__ import annotations

import pytest

from tests.browser.pages import app_page, clipped_images, decoded_png, screenshot

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width, height", [(1400, 1000), (400, 800)])
def test_repose_and_strip(browser, url: str, width: int, height: int):
    with app_page(browser, url, width, height, "Reposing") as page:
        page.locator("#repose-run").click()
        page.locator("#repose-info").get_by_text("reads yaw").wait_for()
        for elem in ("repose-source", "repose-result"):
            img = page.locator(f"#{elem} img").first
            img.wait_for(state="visible")
            assert decoded_png(page, img.get_attribute("src")).shape == (64, 64, 3)
        page.locator("#repose-strip-run").click()
        page.locator("#repose-strip").get_by_text("+20°", exact=True).wait_for()
        page.locator("#repose-info").get_by_text("from -20° to +20°").wait_for()
        assert clipped_images(page, "#repose-result") == [] and clipped_images(page, "#repose-source") == []
        screenshot(page, f"reposing-directions-{width}x{height}")
