"""Retrieve in Style through the app's API."""
from __future__ import annotations

import re

import pytest
from gradio_client.exceptions import AppError

from shared import registry
from tests.api.calls import call, new_client

DEMO = registry.DEFAULT_GENERATOR_ID


# ---- the tab ------------------------------------------------------------------------------------------------
def test_ris_endpoints(app):
    c = new_client(app)
    gallery, info = call(c, DEMO, "3", None, "hair", "predictor", [], [], "20", 1.0, api_name="/ris_transfer")
    assert [g["caption"] for g in gallery] == ["target: seed 3", "reference: seed 20", "hair taken"]
    assert re.search(r"\d+ style channels carry the hair", info)
    assert re.search(r"\d+% of the pixel change lies inside the hair", info)
    _, info = call(c, DEMO, "3", None, "pose", "predictor", [], [], "20", 1.0, api_name="/ris_transfer")
    assert "no locality is measured" in info
    with pytest.raises(AppError, match="Build the part catalogue"):
        call(c, DEMO, "3", None, "eyes", "catalogue", [], [], "20", 1.0, api_name="/ris_transfer")
    found, info = call(c, DEMO, "3", None, "eyes", "predictor", [], [], "0-31", api_name="/ris_retrieve")
    assert found[0]["caption"] == "query: seed 3" and len(found) == 9
    assert found[1]["caption"].startswith("seed 3 · 1.00")      # the query is in the bank: found first
    assert "32 faces of the bank ranked by their eyes" in info
    # with a catalogue: clusters named here make the parts
    _, _, _, part_choices, hair_choices = call(c, DEMO, 6, 32, "auto", api_name="/part_catalogue")
    assert part_choices["choices"] == hair_choices["choices"] and part_choices["value"] == []
    ids = [v for _, v in part_choices["choices"]]
    with pytest.raises(AppError, match="tick the hair clusters"):
        call(c, DEMO, "3", None, "pose", "catalogue", [], [], "20", 1.0, api_name="/ris_transfer")
    gallery, info = call(c, DEMO, "3", None, "eyes", "catalogue", ids[:1], ids[1:2], "20", 0.5,
                         api_name="/ris_transfer")
    assert len(gallery) == 3 and "amount 0.50" in info
