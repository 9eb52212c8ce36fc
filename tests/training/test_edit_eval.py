"""The demo world's shipped directions and StyleSpace channel table move the factors they are named
for, as the predictor measures (training.demo.edit_eval, training.demo.attribute_channels)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.editing.stylespace import edit_channels, style_stats

torch.set_num_threads(1)


# ---- the demo world's directions (issue 7, item 6) -----------------------------------------------------
@pytest.mark.slow
def test_demo_directions_move_their_factors():
    """The fitted InterFaceGAN directions of the demo world, judged by the predictor on 100 fresh
    latents: the geometry and lighting directions move their factor the requested way for >= 90 %
    of the edits and more than they move the other factors (measured: see the note)."""
    from shared import load_generator
    from shared.demo.bundle import bundle_file, load_demo_directions
    from training.demo.edit_eval import SUCCESS_TARGET, direction_report
    from shared.demo.predictor import DEFAULT_PATH, load_predictor
    G = load_generator(bundle_file("generator.safetensors")).eval()
    names = ["face_width", "face_length", "skin_tone", "light_azimuth", "light_elevation"]
    r = direction_report(G, load_predictor(DEFAULT_PATH), load_demo_directions(), names=names)
    for name in names:
        assert r[name]["success"] >= SUCCESS_TARGET, (name, r[name])
        assert r[name]["target_change"] > r[name]["other_change"], (name, r[name])


@pytest.mark.slow
def test_named_stylespace_channels_move_their_factor():
    """The shipped table (python -m training.demo.attribute_channels): each factor's first channel with a
    recorded effect of at least 0.1 of the range,
    moved +strength sigma on 32 fresh latents, changes that factor in the recorded direction more
    than any other continuous factor on average."""
    from shared import load_generator
    from shared.demo.attribute_channels import load_attribute_channels
    from training.demo.attribute_channels import CONTINUOUS
    from shared.demo.bundle import bundle_file
    from shared.demo.predictor import DEFAULT_PATH, load_predictor
    table = load_attribute_channels()
    assert table and sum(bool(rows) for rows in table["factors"].values()) >= 3
    G = load_generator(bundle_file("generator.safetensors")).eval()
    predictor = load_predictor(DEFAULT_PATH)
    stats = style_stats(G, samples=2000, seed=table["seed"] + 1)
    ws = G.mapping(torch.randn([32, G.z_dim], generator=torch.Generator().manual_seed(99)))
    spans = torch.tensor([s.high - s.low for s in CONTINUOUS])

    def read(img):
        f = predictor.predict(img).factors
        return torch.stack([f[s.name].float() for s in CONTINUOUS], 1) / spans

    with torch.no_grad():
        base = read(G.synthesis(ws, noise_mode="const"))
        for factor, rows in table["factors"].items():
            if not rows or abs(rows[0]["effect"]) < 0.1:  # smaller recorded effects are at the predictor's noise level (n = 8)
                continue
            r = rows[0]
            img, _ = edit_channels(G, ws, [(r["layer"], r["channel"], table["strength"])], stats)
            delta = (read(img) - base).mean(0)
            j = [s.name for s in CONTINUOUS].index(factor)
            assert delta[j] * np.sign(r["effect"]) > 0, (factor, delta[j], r)
            assert delta[j].abs() >= delta.abs().max() * 0.999, (factor, delta)
