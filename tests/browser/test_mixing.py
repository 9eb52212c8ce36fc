"""The Mixing tab in a browser: a style-mixing grid and a crossover from an example."""
from __future__ import annotations

import re

import pytest
import torch

from tests.browser.pages import screenshot

torch.set_num_threads(1)


@pytest.mark.browser
def test_browser_makes_a_grid_and_picks_a_cell(page):
    page.get_by_role("tab", name="Mixing", exact=True).click()
    page.locator("#mixing-ranges").get_by_text("coarse: rows 0-2").wait_for()
    page.locator("#mixing-grid-run").click()
    page.locator("#mixing-grid-info").get_by_text("3 × 3 grid").wait_for()
    img = page.locator("#mixing-grid img").first
    img.wait_for()
    box = img.bounding_box()
    img.click(position={"x": box["width"] * 2.5 / 4, "y": box["height"] * 1.5 / 4})  # row 1, column 2
    page.get_by_text("Picked: seed 4 with rows 0, 1, 2 of seed 2").wait_for()
    screenshot(page, "mixing_grid")


@pytest.mark.browser
def test_browser_crossover_from_an_example(page):
    page.get_by_role("tab", name="Mixing", exact=True).click()
    page.get_by_role("tab", name="Crossover / inpainting", exact=True).click()
    page.get_by_text("left half of one + right of another").click()   # renders seeds 1 and 2 into A and B
    page.locator("#mixing-b-info").get_by_text("seed 2").wait_for()
    page.locator("#mixing-crossover-run").click()
    page.locator("#mixing-crossover-info").get_by_text("Crossover in").wait_for(timeout=180_000)
    info = page.locator("#mixing-crossover-info").inner_text()
    energy = [float(x) for x in re.findall(r"seam (\d+\.\d+) vs (\d+\.\d+)", info)[0]]
    assert energy[0] < energy[1], info
    assert page.locator("#mixing-crossover-gallery img").count() == 5
    screenshot(page, "mixing_crossover")


@pytest.mark.browser
def test_browser_an_interpolation_example_makes_its_video(page):
    """Clicking an example runs it (issue 21: examples only filled the inputs)."""
    page.get_by_role("tab", name="Mixing", exact=True).click()
    page.get_by_role("tab", name="Interpolation", exact=True).click()
    page.get_by_text("slerp in Z", exact=True).click()
    info = page.locator("#mixing-interp-info")
    info.get_by_text("through 2 keys in Z").wait_for(timeout=300_000)
    page.locator("#mixing-video video").wait_for(state="attached")
    screenshot(page, "mixing_interpolation_example")
