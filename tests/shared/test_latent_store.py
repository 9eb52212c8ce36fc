"""The per-session latent store (shared.latent_store): immutable puts, a bound, read-only entries."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.latent_store import LatentEntry, LatentStore

torch.set_num_threads(1)


# ---- latent store ------------------------------------------------------------------------------
def _entry(model: str = "m", value: float = 0.0) -> LatentEntry:
    return LatentEntry(model_id=model, ws=np.full((1, 4, 8), value, np.float32), source="test")


def test_latent_store_put_returns_a_new_store():
    empty = LatentStore()
    one = empty.put("a", _entry(), for_tab="mixing")
    assert len(empty) == 0 and len(one) == 1 and one is not empty
    assert one.get("a").ws.shape == (1, 4, 8)
    assert one.latest_for("mixing")[0] == "a" and one.latest_for("inversion") is None
    two = one.put("b", _entry("other", 1.0))
    assert two.list() == ["a", "b"] and two.list(model_id="other") == ["b"]
    assert two.latest_for("mixing")[0] == "a"
    with pytest.raises(KeyError, match="Generate tab"):
        two.get("zzz")


def test_latent_store_is_bounded_and_entries_are_read_only():
    store = LatentStore(max_entries=3)
    for i in range(5):
        store = store.put(f"e{i}", _entry(value=i), for_tab="mixing" if i == 0 else None)
    assert store.list() == ["e2", "e3", "e4"]
    assert store.latest_for("mixing") is None  # its entry was dropped
    with pytest.raises(ValueError):
        store.get("e4").ws[0, 0, 0] = 5
    with pytest.raises(ValueError, match="num_ws"):
        LatentEntry(model_id="m", ws=np.zeros((2, 4, 8), np.float32), source="x")
