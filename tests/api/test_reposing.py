"""The Reposing tab's Directions section through its API (/repose, /repose_strip, /repose_transform)
on the demo world, offline: the head turns the way asked (as the demo predictor reads it), the
strip has its steps, and what cannot run says why."""
from __future__ import annotations

import re

import pytest
import torch
from gradio_client.exceptions import AppError

from shared import registry
from tests.api.calls import assert_still_serving, call, png

torch.set_num_threads(1)
DEMO = registry.DEFAULT_GENERATOR_ID


def _reading(info: str) -> tuple[float, float]:
    m = re.search(r"reads yaw ([+-]\d+)° → ([+-]\d+)°", info)
    assert m, info
    return float(m.group(1)), float(m.group(2))


def test_endpoints_are_listed(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/repose", "/repose_strip", "/repose_transform"} <= names


@pytest.mark.parametrize("yaw", [10, -10])
def test_fitted_directions_turn_the_head_the_way_asked(client, yaw):
    src, out, info = call(client, DEMO, "3", None, "fitted", "coarse", yaw, 0, 0, 1, api_name="/repose")
    assert png(src).shape == png(out).shape == (64, 64, 3)
    assert f"asked yaw {yaw:+d}°" in info and "calibrated" in info and "edits rows 0-" in info
    before, after = _reading(info)
    assert (after - before) * yaw > 0 and abs(after - before) > 3, info


def test_strip_has_seven_steps_over_the_range(client):
    gallery, info = call(client, DEMO, "3", None, "fitted", "coarse", 30, 0, 1, api_name="/repose_strip")
    assert [g["caption"] for g in gallery] == ["-30°", "-20°", "-10°", "+0°", "+10°", "+20°", "+30°"]
    assert "from -30° to +30°" in info


def test_what_cannot_run_says_why(client):
    with pytest.raises(AppError, match="input transform is StyleGAN3's"):
        call(client, DEMO, "3", None, 0.1, 0.0, 10, api_name="/repose_transform")
    with pytest.raises(AppError, match="pose file is not on this machine"):
        call(client, DEMO, "3", None, "file", "coarse", 10, 0, 0, 1, api_name="/repose")
    with pytest.raises(AppError, match="Give a source"):
        call(client, DEMO, "", None, "fitted", "coarse", 10, 0, 0, 1, api_name="/repose")
    with pytest.raises(AppError, match="not in the list of choices"):   # Gradio's own check of the radio
        call(client, DEMO, "3", None, "magic", "coarse", 10, 0, 0, 1, api_name="/repose")
    assert_still_serving(client)
