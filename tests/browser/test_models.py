"""Model pickers and the Models tab in a browser (issue 21): every choice says what it needs before
it runs here, ready ones first, with a line saying why the others cannot run; a failed Download
keeps the table and says why beside it; the long reference tables start collapsed; the header
says which world the page runs in.

The app runs offline (HF_HUB_OFFLINE=1, an empty Hub cache), so only the demo world is ready.
"""
from __future__ import annotations

import pytest
import torch

from shared import registry
from tests.browser.pages import open_tab, screenshot

pytestmark = pytest.mark.browser
torch.set_num_threads(1)


def _options(page, picker: str) -> list[str]:
    page.locator(f"{picker} input").first.click()
    options = page.get_by_role("option")
    options.first.wait_for()
    texts = [t.strip().split("\n")[-1] for t in options.all_inner_texts()]  # "✓\n<label>" when chosen
    page.keyboard.press("Escape")
    return texts


def test_header_says_the_offline_demo_world(page):
    world = page.locator("#world-line").inner_text()
    assert "Offline demo world" in world and "Hub cannot be reached" in world, world


def test_generator_choices_carry_availability_ready_first(page):
    for tab, picker in (("Generate", "#generate-model"), ("Mixing", "#mixing-model"),
                        ("Local editing", "#edit-model"), ("Text editing", "#text-model"),
                        ("Inversion", "#inversion-model")):
        open_tab(page, tab)
        texts = _options(page, picker)
        assert len(texts) > 10, (tab, texts)
        states = ["ready" if t.endswith("· ready") else "hub" if "from the Hub · offline now" in t
                  else "local" if t.endswith("· needs a local file") else t for t in texts]
        assert set(states) <= {"ready", "hub", "local"}, (tab, states)
        assert states == sorted(states, key=["ready", "hub", "local"].index), (tab, texts)
        assert texts[0] == f"{registry.DEFAULT_GENERATOR_ID} · ready", (tab, texts[0])
        assert "stylegan2-ffhq-1024 · downloads from the Hub · offline now" in texts, tab
        if tab != "Local editing":   # StyleGAN3 (NGC pickles) is not offered for local editing
            assert "stylegan3-t-ffhq-1024 · needs a local file" in texts, tab
        info = page.locator(picker).inner_text()   # the line beside the picker counts them
        assert f"{states.count('ready')} ready here" in info, (tab, info)
        assert f"{states.count('hub')} need the Hub, which is offline here" in info, (tab, info)
        if "local" in states:
            assert f"{states.count('local')} need a file you download by hand" in info, (tab, info)
    open_tab(page, "Generate")
    page.locator("#generate-model input").first.click()
    page.get_by_role("option").first.wait_for()
    screenshot(page, "generate-model-choices", full_page=False)


def test_an_unavailable_choice_says_why(page):
    open_tab(page, "Generate")
    picker = page.locator("#generate-model input").first
    picker.click()
    picker.fill("stylegan3-t-ffhq-1024")
    page.get_by_role("option", name="stylegan3-t-ffhq-1024 · needs a local file", exact=True).click()
    why = page.locator("p", has_text="Cannot run here now:").first
    why.wait_for()
    assert "HUB_MODEL_PATH_STYLEGAN3_T_FFHQ_1024" in why.inner_text(), why.inner_text()


def test_a_failed_download_keeps_the_table_and_says_why_beside_it(page):
    open_tab(page, "Models")
    table = page.locator("#models-table")
    model_id = "stylegan2-ffhq-1024-rosinality"   # the first Hub model: among the rows the table draws
    row = table.get_by_role("row").filter(has_text=model_id).first
    row.wait_for()
    rows_before = table.get_by_role("row").count()
    assert rows_before > 10
    # the long reference sections start collapsed, so the tab is not a wall of tables
    assert not page.get_by_text("Get the file from").is_visible()
    assert page.locator("#models-demo-metrics").count() == 0 or not page.locator("#models-demo-metrics").is_visible()
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 2600, f"the Models tab is {height} px tall"

    picker = page.locator("#models-picker input").first
    picker.click()
    picker.fill(model_id)
    page.get_by_role("option", name=model_id, exact=True).click()
    page.locator("#models-download").click()
    result = page.locator("#models-result")
    result.get_by_text("Download of").wait_for()
    assert "HF_HUB_OFFLINE=1" in result.inner_text()
    assert table.get_by_role("row").count() == rows_before, "the table was replaced"
    assert "download failed" in row.inner_text(), row.inner_text()
    assert page.locator("#models-table .error").count() == 0
    screenshot(page, "models-failed-download")
