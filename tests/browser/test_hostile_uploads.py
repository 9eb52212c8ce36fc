"""The hostile and odd image uploads of issue 19's corpus (tests/api/hostile_inputs.py) dropped into the
Inversion tab's photo box in a real browser: each refused file brings its sentence on the page as soon
as it is dropped (before any button), a refused file does not stay in the box, the page keeps working,
and a good portrait uploaded after them is taken. Screenshot of one refusal:
tests/artifacts/screenshots/hostile-upload.png."""
from __future__ import annotations

import re

import pytest

from tests.api.hostile_inputs import IMAGE_CASES
from tests.browser.pages import app_page, screenshot

pytestmark = pytest.mark.browser
REFUSED = [c for c in IMAGE_CASES if c.expect is not None]


def _path(case, folder) -> str:
    upload = case.args(folder)[0]
    return upload["path"] if isinstance(upload, dict) else str(upload)


def test_refused_uploads_say_why_in_the_page_and_the_page_keeps_working(browser, url: str, tmp_path):
    assert len(REFUSED) >= 10
    with app_page(browser, url, 1400, 1000, "Inversion") as page:
        box = page.locator("#inversion-photo input[type=file]")
        for i, case in enumerate(REFUSED):
            folder = tmp_path / f"case{i}"
            folder.mkdir()
            box.set_input_files(_path(case, folder))
            page.get_by_text(re.compile(case.expect)).first.wait_for(state="visible")
            page.locator("#inversion-photo img").first.wait_for(state="detached")   # the refused file is not kept
            if i == 0:
                page.wait_for_timeout(800)
                screenshot(page, "hostile-upload", full_page=False)
            for close in page.locator(".toast-close").all():   # clear the toasts for the next case
                if close.is_visible():
                    close.click()
        good = [c for c in IMAGE_CASES if c.name == "greyscale JPEG"][0]
        folder = tmp_path / "good"
        folder.mkdir()
        box.set_input_files(_path(good, folder))
        page.locator("#inversion-photo img").first.wait_for(state="visible")
