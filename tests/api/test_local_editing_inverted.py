"""Every Local editing sub-section on an inverted photo (issue 7: "works offline on the demo model
and on an inverted photo"): a demo-world portrait, uploaded as a 256-px picture, is inverted (W+
optimisation), sent to the tab's session store like the Inversion tab's Send does, and each
section's handler edits it by name."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from shared import registry
from shared.images import to_uint8_hwc
from shared.images import image_to_tensor
from shared.inversion.compare import CompareOptions, prepare_target, run_methods
from shared.portraits import render_seeds

pytestmark = pytest.mark.slow   # ~80 s: a real inversion, a catalogue, a channel sweep
DEMO = registry.DEFAULT_GENERATOR_ID
NAME = "inverted · W+ optimisation"


@pytest.fixture(scope="module")
def ctx():
    from shared.context import create_context
    return create_context(device=torch.device("cpu"))


@pytest.fixture(scope="module")
def inverted(ctx):
    """(session store holding the inverted latent, the latent, its rendering)."""
    from spaces.latents import send_latent
    from spaces.local_editing import SEND_TARGETS
    G = ctx.models.generator(DEMO)
    photo = to_uint8_hwc(render_seeds([7], 256).img)[0]
    face = prepare_target(photo, "center", G.img_resolution)
    run = run_methods(G, image_to_tensor(face.image), ["w+"], CompareOptions(steps=40, lr=0.1))[0]
    ws = run.result.ws.detach().float().cpu().numpy()
    store, message = send_latent(None, SEND_TARGETS, "local-editing", NAME, DEMO, ws, "inversion")
    assert "Local editing" in message
    with torch.no_grad():
        image = G.synthesis(torch.from_numpy(ws), noise_mode="const").float().clamp(-1, 1)
    return store, ws, to_uint8_hwc(image)[0]


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_directions_and_stylespace_edit_the_inverted_latent(ctx, inverted):
    from spaces.local_editing.directions import _on_direction
    from spaces.local_editing.stylespace import _on_stylespace
    store, ws, image = inverted
    strip, edited, info, pick = _on_direction(ctx, DEMO, "3", NAME, "interfacegan", "smile", None, 3.0, "all", "", store)
    assert NAME in info and _close(strip[2][0], image)                      # strength 0 is the inverted photo
    assert np.abs(strip[4][0].astype(float) - strip[0][0].astype(float)).mean() > 1
    assert pick.ws.shape == ws.shape and not np.allclose(pick.ws, ws)
    s_strip, s_edited, s_info = _on_stylespace(ctx, DEMO, "3", NAME, "3", 7, 10.0, store)
    assert NAME in s_info and _close(s_strip[len(s_strip) // 2][0], image)


def test_part_transfers_and_retrieval_take_the_inverted_latent(ctx, inverted):
    from spaces.local_editing.editing_in_style import _on_catalog, _on_transfer
    from spaces.local_editing.retrieve_in_style import _on_ris_retrieve, _on_ris_transfer
    store, _, image = inverted
    _, _, state, *_ = _on_catalog(ctx, DEMO, 6, 32, "auto")
    gallery, info, matrix = _on_transfer(ctx, DEMO, "3", NAME, state, "20", [0, 1], 0.2, 3, store)
    assert matrix.ndim == 3 and matrix.shape[2] == 3
    assert gallery[0][1] == f"target: {NAME}" and _close(gallery[0][0], image)
    gallery, info = _on_ris_transfer(ctx, DEMO, "3", NAME, "hair", "predictor", None, [], [], "20", 1.0, store)
    assert gallery[0][1] == f"target: {NAME}" and _close(gallery[0][0], image) and "inside the hair" in info
    found, info = _on_ris_retrieve(ctx, DEMO, "3", NAME, "eyes", "predictor", None, [], [], "0-15", store)
    assert found[0][1] == f"query: {NAME}" and found[1][1].startswith(f"{NAME} · 1.00")   # it joined the bank
    assert "17 faces of the bank" in info


def test_styleflow_and_region_channels_on_the_inverted_latent(ctx, inverted):
    from spaces.local_editing.styleflow import _on_sf_read, _on_styleflow
    from spaces.local_editing.stylespace import _on_find_channels
    store, ws, image = inverted
    line, note, light, *sliders = _on_sf_read(ctx, DEMO, "3", NAME, store)
    values = [s["value"] for s in sliders]
    values[0] = max(-40.0, min(40.0, values[0] + 15.0))                      # turn the head
    gallery, info, pick = _on_styleflow(ctx, DEMO, "3", NAME, line, *values, "", "attribute", store)
    assert _close(gallery[0][0], image) and f"on **{NAME}**" in info and "| yaw |" in info
    assert pick.ws.shape == ws.shape
    found, table, layer, channel = _on_find_channels(ctx, DEMO, "3", NAME, "part:hair", None, 5.0, store)
    assert _close(found[0][0], image) and "| layer | channel | change inside |" in table
