"""A StyleGAN (v1) TensorFlow pickle through the app's API: the record `stylegan1-bedrooms-256` pointed at
the small official-layout pickle of tests/data/tf_pickles (HUB_MODEL_PATH_<ID>, as a user with the
downloaded file does), then /generate and /mix as for any other generator."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from shared import registry
from shared.generation import generate_images
from shared.images import to_uint8_hwc
from shared.latents import ws_from_seeds
from shared.mixing import style_mix_images
from tests.api.calls import call, png

torch.set_num_threads(1)
MODEL = "stylegan1-bedrooms-256"
PICKLE = Path(__file__).resolve().parents[1] / "data" / "tf_pickles" / "tf_stylegan1_r128.pkl"


@pytest.fixture(scope="module", autouse=True)
def _user_file():
    """The user's downloaded pickle, announced by the record's environment variable."""
    mp = pytest.MonkeyPatch()
    mp.setenv(registry.get(MODEL).env_var, str(PICKLE))
    yield
    mp.undo()


def test_generate_with_a_tf_pickle_matches_the_library(client, app):
    gallery, timing, _ = call(client, MODEL, "3-4", 0.7, 8, None, 0.0, 0.0, 0.0, "const", api_name="/generate")
    assert [g["caption"] for g in gallery] == ["seed 3", "seed 4"]
    G = app[1].models.generator(MODEL)
    assert G.arch == "stylegan1"
    want = to_uint8_hwc(generate_images(G, [3, 4], truncation_psi=0.7, truncation_cutoff=8).images)
    for item, expected in zip(gallery, want):
        assert np.array_equal(png(item["image"]), expected)


def test_mix_with_a_tf_pickle(client, app):
    args = (MODEL, "9", [], "8", [], "coarse", "", 1.0, "const")
    gallery, info, _ = call(client, *args, api_name="/mix")
    assert [g["caption"] for g in gallery] == ["destination: seed 8", "source: seed 9", "mix"]
    G = app[1].models.generator(MODEL)
    want = to_uint8_hwc(style_mix_images(G, ws_from_seeds(G, [8]), ws_from_seeds(G, [9]), "coarse"))[0]
    assert int(np.abs(png(gallery[2]["image"]).astype(int) - want.astype(int)).max()) <= 1
    assert "rows 0, 1, 2, 3 of seed 9" in info      # the paper's coarse styles: 4-8 px


def test_v1_is_refused_where_its_methods_do_not_apply(app):
    """The v1 records are tagged generation and mixing only; a v1 id sent to another tab's handler
    (possible through the API) gets a sentence, not a crash deep in a StyleGAN2-only method."""
    import gradio as gr

    from spaces.handlers import stylegan_generator
    for purpose in ("inversion", "editing", "text editing", "reposing"):
        with pytest.raises(gr.Error, match="works in Generate and Mixing"):
            stylegan_generator(app[1], MODEL, purpose)
    card, G = stylegan_generator(app[1], MODEL, "mixing")
    assert card.id == MODEL and G.arch == "stylegan1"
    assert set(registry.get(MODEL).tasks) == {"generation", "mixing"}
