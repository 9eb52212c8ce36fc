"""The demo generator's style-mixing split (training.demo.evaluate.mixing_split)."""
from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


# ---- the mixing split (issue 6, item 5) ---------------------------------------------------------------
@pytest.mark.slow
def test_demo_style_mixing_splits_shape_from_colour(demo_generator):
    """Over 200 random pairs, B's coarse rows carry B's pose and face shape while A keeps its
    colours, and B's finer rows the reverse, for >= 80 % of those (mix, factor) decisions."""
    from training.demo.evaluate import MIXING_SPLIT_TARGET, mixing_split
    from shared.demo.predictor import DEFAULT_PATH, load_predictor
    r = mixing_split(demo_generator, load_predictor(DEFAULT_PATH), pairs=200)
    assert r["share"] >= MIXING_SPLIT_TARGET, {k: r[k]["share"] for k in ("coarse", "finer", "fine")}
    coarse = r["coarse"]["factors"]
    assert coarse["face_width"]["follows"] == "B" and coarse["background_hue"]["follows"] == "A"
    assert r["finer"]["factors"]["background_hue"]["follows"] == "B"
