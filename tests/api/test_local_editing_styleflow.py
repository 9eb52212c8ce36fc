"""The Local editing tab's StyleFlow section through its handlers."""
from __future__ import annotations

import re

import gradio as gr
import numpy as np
import pytest
import torch

from shared import registry

torch.set_num_threads(1)
DEMO = registry.DEFAULT_GENERATOR_ID


# ---- the tab's handler, called directly -----------------------------------------------------------------
@pytest.fixture(scope="module")
def ctx():
    from shared.context import create_context
    return create_context(device=torch.device("cpu"))


def test_tab_reads_the_source_and_edits_it(ctx):
    from spaces.local_editing import _on_send
    from spaces.local_editing.styleflow import SF_SLIDERS, _on_sf_read, _on_styleflow
    line, note, light, *sliders = _on_sf_read(ctx, DEMO, "3", None, None)
    assert line.startswith("yaw=") and "demo predictor" in note and len(sliders) == SF_SLIDERS
    values = [s["value"] for s in sliders]
    assert sliders[0]["label"].startswith("yaw (degrees")
    values[0] = max(-40.0, min(40.0, values[0] + 15.0))
    gallery, info, pick = _on_styleflow(ctx, DEMO, "3", None, line, *values, "", "attribute", None)
    (orig, cap0), (edited, cap1) = gallery
    assert orig.shape == edited.shape == (64, 64, 3) and cap0 == "original: seed 3" and cap1 == "edited"
    assert np.abs(orig.astype(int) - edited.astype(int)).mean() > 1
    assert "StyleFlow (the demo world's flow) on **seed 3**" in info and "| yaw |" in info and "read after" in info
    assert re.search(r"\d+\.\d\d s", info)
    assert pick.model_id == DEMO and pick.ws.shape == (1, 10, 128) and "StyleFlow yaw" in pick.source
    store, sent = _on_send(pick, "mixing", None)                   # the shared "Send latent" button
    entry = store.get(store.list(DEMO)[0])
    assert "Mixing" in sent and np.array_equal(np.asarray(entry.ws), pick.ws)
    # unchanged sliders: the sliders as read give back the source
    _, info0, _ = _on_styleflow(ctx, DEMO, "3", None, line, *[s["value"] for s in sliders], "", "attribute", None)
    assert "| yaw |" not in info0


def test_tab_says_how_to_get_the_official_flow(ctx, tmp_path, monkeypatch):
    from spaces.local_editing.styleflow import SF_SLIDERS, _on_styleflow
    monkeypatch.setenv("HUB_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.delenv("HUB_MODEL_PATH_STYLEFLOW_FFHQ", raising=False)
    with pytest.raises(gr.Error, match="modellarge10k.pt.*HUB_MODEL_PATH_STYLEFLOW_FFHQ"):
        _on_styleflow(ctx, "stylegan2-ffhq-1024", "3", None, "", *[0.5] * SF_SLIDERS, "", "attribute", None)
    with pytest.raises(gr.Error, match="demo model and for StyleGAN2 FFHQ 1024 only"):
        _on_styleflow(ctx, "stylegan2-afhqcat-512", "3", None, "", *[0.5] * SF_SLIDERS, "", "attribute", None)
