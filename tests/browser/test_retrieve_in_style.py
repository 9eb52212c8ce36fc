"""Retrieve in Style in a browser: a hair transfer."""
from __future__ import annotations

import pytest

from tests.browser.pages import screenshot


@pytest.mark.browser
def test_browser_transfers_hair_with_retrieve_in_style(page):
    page.get_by_role("tab", name="Local editing", exact=True).click()
    page.get_by_role("tab", name="Retrieve in Style", exact=True).click()
    page.locator("#edit-ris-run").click()
    page.locator("#edit-ris-info").get_by_text("style channels carry the hair").wait_for()
    page.locator("#edit-retrieve").click()
    page.locator("#edit-retrieved-info").get_by_text("faces of the bank ranked").wait_for()
    assert page.locator("#edit-ris-result img").count() == 3
    assert page.locator("#edit-retrieved img").count() == 9
    screenshot(page, "local_editing_ris")
