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


@pytest.mark.browser
def test_browser_latent_mapper_follows_the_target_prompt(page):
    """The mapper picker takes the mapper trained for the target prompt, or says there is none
    (issue 21: it stayed on 'blonde hair' while the prompt said 'glasses')."""
    open_tab(page, "Text editing")
    open_tab(page, "Latent mapper")
    pick, note = page.locator("#text-mapper-pick input").first, page.locator("#text-mapper-match")
    assert pick.input_value() == "demo: a person wearing glasses"   # the default target prompt
    assert "matches the target prompt" in note.inner_text()
    target = page.locator("#text-target textarea, #text-target input").first
    for prompt, shown in (("a person with blonde hair", "demo: a person with blonde hair"),
                          ("a person with red hair", "")):
        target.fill(prompt)
        target.press("Enter")
        note.get_by_text("No mapper here" if not shown else "a person with blonde hair").first.wait_for()
        assert pick.input_value() == shown, (prompt, pick.input_value())
    assert "No mapper here is trained for 'a person with red hair'" in note.inner_text()
    screenshot(page, "text-editing-mapper-no-match")
