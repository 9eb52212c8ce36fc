"""What a newcomer sees (issue 21): examples that run, and every result image visible whole, at a
desktop window (1400×1000) and a phone-sized one (400×800).

One page produces a result in every tab that has one, mostly by clicking the tab's examples (so a
click that only fills the inputs fails here), then each tab is checked and photographed at both
window sizes: no shown image may be cut by a box around it, cropped by its fit, or reach outside the
page. Screenshots: tests/artifacts/screenshots/tab-<tab>-<window>.png.
"""
from __future__ import annotations

import pytest
import torch

from tests.browser.pages import WINDOWS, clipped_images, open_tab, screenshot, shown_images

pytestmark = pytest.mark.browser
torch.set_num_threads(1)

# (tab, sub-tab to show or None, screenshot name, CSS selectors of result images that must be shown)
VIEWS = [
    ("Generate", None, "generate", ["#generate-gallery"]),
    ("Inversion", None, "inversion", ["#inversion-aligned", "#inversion-gallery", "#inversion-slider"]),
    ("Mixing", "Style mixing", "mixing", ["#mixing-grid"]),
    ("Local editing", "Linear directions", "local-editing", ["#edit-strip"]),
    ("Local editing", "StyleSpace channels", "local-editing-stylespace", ["#edit-named-result"]),
    ("Reposing", None, "reposing", ["#repose-source", "#repose-result", "#repose-strip"]),
    ("3D rendering", None, "3d-rendering", []),
    ("Text editing", "Global directions", "text-editing", ["#text-g-out"]),
    ("Text editing", "Latent mapper", "text-editing-mapper", ["#text-m-out"]),
    ("Models", None, "models", []),
]


def _show(page, tab: str, sub: str | None) -> None:
    open_tab(page, tab)
    if sub:
        open_tab(page, sub)
    page.wait_for_timeout(300)


def _results_from_examples(page) -> None:
    """A result in every tab, from its examples where it has them (asserting that they run)."""
    open_tab(page, "Generate")
    page.get_by_text("8 faces, ψ 0.7", exact=True).click()
    page.locator("#generate-info").get_by_text("ψ 0.7 on all layers").wait_for()   # the example's settings ran
    assert "8 image(s)" in page.locator("#generate-info").inner_text()

    open_tab(page, "Inversion")
    page.locator("#inversion-examples img").first.click()
    page.locator("#inversion-aligned img").wait_for(state="visible")
    assert page.get_by_label("Centre crop (no alignment)").is_checked()
    page.get_by_label("W optimisation (Image2StyleGAN)").uncheck()   # W+ alone, 3 steps: a quick result
    page.get_by_label("e4e encoder").uncheck()
    page.get_by_text("Method options").click()
    steps = page.get_by_label("number input for Optimisation steps")
    steps.fill("3")
    steps.press("Enter")
    page.locator("#inversion-run").click()
    page.locator("#inversion-info").get_by_text("W+ optimisation").first.wait_for()

    open_tab(page, "Mixing")
    page.get_by_text("6 × 6, coarse rows", exact=True).click()
    page.locator("#mixing-grid-info").get_by_text("6 × 6 grid").wait_for()

    open_tab(page, "Local editing")
    page.get_by_text("smile", exact=True).first.click()
    page.locator("#edit-info").get_by_text("InterFaceGAN 'smile'").wait_for()
    from spaces.local_editing.stylespace import _named_slider_spec
    factor, layer, channel, *_ = next(s for s in _named_slider_spec() if s[0] == "mouth_open")
    page.get_by_role("tab", name="StyleSpace channels", exact=True).click()
    box = page.get_by_label(f"number input for {factor} (layer {layer}, channel {channel})")
    box.fill("15")
    box.press("Enter")
    page.locator("#edit-named-run").click()
    page.locator("#edit-named-info").get_by_text("The demo predictor reads each moved factor").wait_for()

    open_tab(page, "Reposing")   # no examples: its buttons
    page.locator("#repose-run").click()
    page.locator("#repose-result img").wait_for(state="visible")
    page.locator("#repose-strip-run").click()
    page.locator("#repose-strip img").first.wait_for(state="visible")

    open_tab(page, "Text editing")
    page.get_by_role("tab", name="Latent mapper", exact=True).click()
    page.locator("#text-m-run").click()   # the default target prompt has its mapper: glasses
    page.locator("#text-m-info").get_by_text("demo mapper 'a person wearing glasses'").wait_for()
    page.get_by_role("tab", name="Global directions", exact=True).click()
    page.get_by_text("→ red hair", exact=True).click()
    page.locator("#text-g-info").get_by_text("a person with red hair").wait_for(timeout=300_000)
    assert "channels" in page.locator("#text-g-info").inner_text()


def test_examples_run_and_every_result_is_visible_whole(page):
    page.set_viewport_size({"width": WINDOWS["desktop"][0], "height": WINDOWS["desktop"][1]})
    _results_from_examples(page)
    problems = []
    for window, (width, height) in WINDOWS.items():
        page.set_viewport_size({"width": width, "height": height})
        for tab, sub, name, results in VIEWS:
            _show(page, tab, sub)
            for selector in results:
                assert shown_images(page, selector) >= 1, f"{selector} shows no image at {window}"
            problems += [f"{name} at {window}: {p}" for p in clipped_images(page)]
            assert screenshot(page, f"tab-{name}-{window}").stat().st_size > 5_000
    assert not problems, "\n".join(problems)
