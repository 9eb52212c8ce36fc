"""The Text editing tab in a browser: global directions from an example."""
from __future__ import annotations

import pytest
import torch

from tests.browser.pages import open_tab, screenshot

torch.set_num_threads(1)


@pytest.mark.browser
def test_browser_edits_with_global_directions_from_an_example(page):
    open_tab(page, "Text editing")
    page.get_by_text("Describe the change and let CLIP steer the generator").wait_for()
    page.get_by_role("button", name="Edit with global directions").click()
    info = page.locator("#text-g-info")
    info.get_by_text("channels").first.wait_for()
    images = page.locator("#text-g-out img")
    assert images.count() >= 2
    screenshot(page, "text-editing-global")
