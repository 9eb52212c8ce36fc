"""shared.availability: what a registry model needs before it runs here (issue 21's picker labels)."""
from __future__ import annotations

import dataclasses

import pytest

from shared import registry
from shared.availability import STATES, availability, sort_key


@pytest.fixture(autouse=True)
def empty_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "hub"))
    monkeypatch.setenv("HUB_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_the_demo_world_and_builtin_models_are_ready():
    for model_id in (registry.DEFAULT_GENERATOR_ID, registry.UNTRAINED_ID):
        a = availability(registry.get(model_id))
        assert (a.state, a.label, a.reason, a.ready, a.runs) == ("ready", "ready", "", True, True)


def test_a_hub_model_downloads_when_online_and_says_why_not_when_offline():
    card = registry.get("stylegan2-ffhq-1024")
    online = availability(card, online=True)
    assert (online.state, online.label, online.ready, online.runs) == ("download", "downloads from the Hub", False, True)
    offline = availability(card)   # HF_HUB_OFFLINE=1 answers without a probe
    assert (offline.state, offline.label, offline.runs) == ("offline", "downloads from the Hub · offline now", False)
    assert "HF_HUB_OFFLINE=1" in offline.reason and card.env_var in offline.reason


def test_a_known_size_is_in_the_label():
    card = dataclasses.replace(registry.get("stylegan2-ffhq-1024"), size=364_123_456)
    assert availability(card, online=True).label == "downloads 364 MB from the Hub"
    assert availability(dataclasses.replace(card, size=1_234_000_000), online=False).label == \
        "downloads 1.2 GB from the Hub · offline now"


def test_a_local_file_model_says_where_to_get_it_and_is_ready_once_the_file_is_there(monkeypatch, tmp_path):
    card = registry.get("stylegan3-t-ffhq-1024")
    a = availability(card, online=True)
    assert (a.state, a.label, a.runs) == ("local-file", "needs a local file", False)
    assert card.env_var in a.reason and card.manual_url in a.reason
    path = tmp_path / "sg3.pkl"
    path.write_bytes(b"\x80\x02")
    monkeypatch.setenv(card.env_var, str(path))
    assert availability(card).state == "ready"


def test_states_sort_ready_first():
    assert sorted(["local-file", "offline", "ready", "download"], key=sort_key) == list(STATES)
