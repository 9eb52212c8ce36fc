"""The Local editing tab in a browser: a smile edit, a part catalogue and transfer, a named slider."""
from __future__ import annotations

import pytest
import torch

from tests.browser.pages import screenshot

torch.set_num_threads(1)


@pytest.mark.browser
def test_browser_edits_a_smile(page):
    page.get_by_role("tab", name="Local editing", exact=True).click()
    page.locator("#edit-run").click()
    page.locator("#edit-info").get_by_text("InterFaceGAN 'smile'").wait_for()
    assert page.locator("#edit-strip img").count() == 5
    screenshot(page, "local_editing")


@pytest.mark.browser
def test_browser_builds_a_part_catalogue_and_transfers(page):
    page.get_by_role("tab", name="Local editing", exact=True).click()
    page.get_by_role("tab", name="Editing in Style", exact=True).click()
    page.locator("#edit-eis-build").click()
    page.locator("#edit-eis-info").get_by_text("parts from spherical k-means").wait_for()
    page.locator("#edit-eis-run").click()
    page.locator("#edit-eis-result-info").get_by_text("style channels taken from the reference").wait_for()
    assert page.locator("#edit-eis-overlay img").count() == 8
    screenshot(page, "local_editing_eis")


@pytest.mark.browser
def test_browser_moves_a_named_stylespace_slider(page):
    from spaces.local_editing.stylespace import _named_slider_spec
    factor, layer, channel, *_ = next(s for s in _named_slider_spec() if s[0] == "mouth_open")
    page.get_by_role("tab", name="Local editing", exact=True).click()
    page.get_by_role("tab", name="StyleSpace channels", exact=True).click()
    box = page.get_by_label(f"number input for {factor} (layer {layer}, channel {channel})")
    box.fill("15")
    box.press("Enter")
    page.locator("#edit-named-run").click()
    page.locator("#edit-named-info").get_by_text("The demo predictor reads each moved factor").wait_for()
    assert page.locator("#edit-named-result img").count() == 2
    screenshot(page, "local_editing_named_sliders")
