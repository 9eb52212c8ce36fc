"""shared.inversion.compare: the Inversion tab's pure helper runs several methods on one prepared
target and scores each (the methods' quality is tests/shared/inversion/test_inversion.py)."""
from __future__ import annotations

import numpy as np
import torch

from shared import registry
from shared.images import to_uint8_hwc
from shared.images import image_to_tensor
from shared.inversion.compare import CompareOptions, prepare_target, run_methods
from shared.portraits import render_seeds

torch.set_num_threads(1)
DEMO = registry.DEFAULT_GENERATOR_ID
STEPS = 5


# ---- the pure helper ------------------------------------------------------------------------------
def test_run_methods_scores_each_method_and_improves_on_the_start():
    from shared.model_cache import ModelCache
    G = ModelCache("cpu", 1 << 30).generator(DEMO)
    face = prepare_target(to_uint8_hwc(render_seeds([7], 256).img)[0], "center", G.img_resolution)
    assert face.image.shape == (64, 64, 3) and face.method == "center-crop"
    target = image_to_tensor(face.image)
    runs = run_methods(G, target, ["w+", "w"], CompareOptions(steps=20, lr=0.1))
    assert [r.key for r in runs] == ["w+", "w"]
    for run in runs:
        assert run.result.ws.shape == (1, G.num_ws, G.w_dim)
        assert run.seconds > 0 and np.isfinite(run.psnr)
        first_mse, last_mse = run.result.losses[0]["mse"], run.result.losses[-1]["mse"]
        assert last_mse < first_mse, f"{run.key}: MSE did not go down ({first_mse} -> {last_mse})"
        assert run.perceptual is None and "PSNR" in run.caption()
