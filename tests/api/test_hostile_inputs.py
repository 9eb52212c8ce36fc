"""Hostile and odd inputs through the API (issue 19 item 3): every case of `tests/api/hostile_inputs.py`
gets its sentence (or a normal result) and the app still serves afterwards; plus what `gradio_client`
cannot send (NaN in the JSON body), and property tests of the number check every numeric field has.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio_client.exceptions import AppError
from hypothesis import given, settings
from hypothesis import strategies as st

from spaces.handlers import _number_check
from tests.api.calls import TIMEOUT, assert_still_serving, call
from tests.api.hostile_inputs import CASES, DEMO

LEAKS = re.compile(r"Traceback|File \"/|HF_TOKEN|/work/|site-packages|upstream Gradio app has raised")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_hostile_input_gets_its_sentence_and_the_app_keeps_serving(client, case, tmp_path: Path):
    assert len(CASES) >= 30
    if case.expect is None:
        result = call(client, *case.args(tmp_path), api_name=case.endpoint)
        assert case.check is None or case.check(result), (case.name, result)
    else:
        with pytest.raises(AppError) as info:
            call(client, *case.args(tmp_path), api_name=case.endpoint)
        message = str(info.value)
        assert re.search(case.expect, message), (case.name, message)
        assert not LEAKS.search(message), (case.name, message)
    assert_still_serving(client)


def _raw_call(url: str, endpoint: str, body: str) -> tuple[str, object]:
    """POST a hand-written JSON body to Gradio's call route: (last SSE event name, its data)."""
    with httpx.Client(base_url=url, timeout=TIMEOUT) as http:
        event_id = http.post(f"gradio_api/call{endpoint}", content=body,
                             headers={"Content-Type": "application/json"}).json()["event_id"]
        text = http.get(f"gradio_api/call{endpoint}/{event_id}").text
    events = re.findall(r"event: (\w+)\ndata: (.*)", text)
    name, data = events[-1]
    return name, json.loads(data)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_a_raw_request_are_refused(app, client, literal):
    """Python's JSON reader takes NaN and Infinity, and NaN passes every bound: the number check refuses them."""
    body = f'{{"data": ["{DEMO}", "0", {literal}, 0, null, 0, 0, 0, "const"]}}'
    event, data = _raw_call(app[0], "/generate", body)
    assert event == "error" and data["error"].startswith("Truncation ψ must be a finite number"), data
    assert_still_serving(client)


def test_a_numeric_string_is_read_as_its_number(client):
    gallery, info, first = call(client, DEMO, "5", "0.7", "0", None, "0", "0", "0", "const", api_name="/generate")
    assert first == 5 and "ψ 0.7" in info


# ---- the number check, property-tested -------------------------------------------------------
_SLIDER = gr.Slider(-1.0, 2.0, value=0.7, step=0.05, label="Truncation ψ", render=False)
_COUNT = gr.Number(0, precision=0, label="Truncation cutoff", render=False)
_ANYTHING = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                      st.text(max_size=20), st.lists(st.integers(), max_size=3),
                      st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                      st.floats(-10, 10).map(repr))


@settings(max_examples=400, deadline=None)
@given(payload=_ANYTHING)
def test_a_slider_gets_a_finite_number_in_range_or_a_sentence(payload):
    check = _number_check(_SLIDER, _SLIDER.preprocess)
    try:
        value = check(payload)
    except gr.Error as e:
        assert re.search(r"Truncation ψ must be a (finite )?number|less than minimum|greater than maximum", str(e))
        return
    assert type(value) in (int, float) and math.isfinite(value) and -1.0 <= value <= 2.0


@settings(max_examples=400, deadline=None)
@given(payload=_ANYTHING)
def test_an_integer_field_gets_an_int_or_none_or_a_sentence(payload):
    check = _number_check(_COUNT, _COUNT.preprocess)
    try:
        value = check(payload)
    except gr.Error as e:
        assert "Truncation cutoff must be a" in str(e)
        return
    assert value is None or (type(value) is int)
    if payload is None:
        assert value is None


def test_the_corpus_table_renders(tmp_path: Path):
    """Every case has a distinct name (the note's table is keyed by it) and JSON-encodable arguments."""
    assert len({c.name for c in CASES}) == len(CASES)
    for case in CASES:
        if case.endpoint != "/upload_latent" and case.endpoint != "/align":
            json.dumps(case.args(tmp_path))
