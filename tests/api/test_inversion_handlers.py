"""The Inversion tab's compare handler driven directly (no server): Stop keeps the methods already
finished, and an ArcFace file given by path adds identity scores to captions and the table."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from shared import registry
from shared.images import image_to_tensor
from tests.shared.inversion.arcface_reference import OfficialBackbone, randomised_state

torch.set_num_threads(1)
DEMO = registry.DEFAULT_GENERATOR_ID
STEPS = 5


# ---- cancellation -------------------------------------------------------------------------------
def test_stop_keeps_the_methods_already_finished(portrait):
    """The Stop button sets the session's flag; the method running then ends and the finished
    ones stay in the last output (the tab's generator handler, driven directly)."""
    from types import SimpleNamespace

    from shared.context import Settings, create_context
    from spaces.inversion import runs as tab

    ctx = create_context(device=torch.device("cpu"), settings=Settings())
    request = SimpleNamespace(session_hash="stop-test")

    def progress(fraction: float, desc: str | None = None) -> None:
        if desc and "(2/2)" in desc:  # the second method has started: press Stop
            tab.on_stop(request)

    image = np.asarray(Image.open(portrait).convert("RGB"))
    outputs = list(tab._compare(ctx, image, "center", DEMO, ["w", "w+"], STEPS, 0.1, 2, request, progress))
    gallery, info, _, _, session, chosen = outputs[-1]
    assert [r.key for r in session.runs] == ["w"]
    assert len(gallery) == 2 and "**Stopped** after 1 of 2 method(s)" in info
    assert chosen["value"] == "w"


# ---- identity similarity ------------------------------------------------------------------------
def test_identity_similarity_is_scored_when_arcface_weights_are_given(portrait, tmp_path, monkeypatch):
    """With `HUB_MODEL_PATH_ARCFACE_IR_SE50` pointing at an official-layout IR-SE file (random
    weights, reduced widths), every run gets an identity score, shown in captions and the table."""
    from types import SimpleNamespace

    from shared.context import Settings, create_context
    from shared.inversion import compare as compare_module
    from shared.inversion.identity import load_arcface
    from spaces.inversion import runs as tab

    path = tmp_path / "model_ir_se50.pth"
    torch.save(randomised_state(OfficialBackbone((16, 32, 48, 64), (1, 2, 1, 1)).eval(), 4), path)
    monkeypatch.setenv("HUB_MODEL_PATH_ARCFACE_IR_SE50", str(path))
    ctx = create_context(device=torch.device("cpu"), settings=Settings())
    image = np.asarray(Image.open(portrait).convert("RGB"))
    request = SimpleNamespace(session_hash="identity-test")
    outputs = list(tab._compare(ctx, image, "center", DEMO, ["e4e"], STEPS, 0.1, 2, request, None))
    gallery, info, _, _, session, _ = outputs[-1]
    assert "Identity similarity: **arcface-ir-se50**" in info and "| identity |" in info
    caption = gallery[1][1]
    score = float(caption.split("ID ")[1].split(" ")[0])
    model = load_arcface(path)
    target = image_to_tensor(session.target)
    recon = image_to_tensor(session.runs[0].image)
    with torch.no_grad():
        want = float(model.similarity(recon, target)[0])
        assert abs(float(model.similarity(target, target)[0]) - 1) < 1e-5
    assert abs(score - want) < 0.01  # PNG rounding of the reconstruction only
    monkeypatch.setenv("HUB_MODEL_PATH_ARCFACE_IR_SE50", str(tmp_path / "missing.pth"))
    assert compare_module.default_identity() is None  # a wrong path turns scoring off, with the note's sentence
