"""The StyleCLIP mapper trainer (training.styleclip.train_mapper): exact resumption, a short demo
training run, and the shipped demo mappers' measured success."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from shared.errors import InputError
from shared.styleclip.mapper import LevelsMapper, MapperConfig, apply_mapper, demo_mappers, load_mapper
from training.styleclip.train_mapper import TrainSettings, train_mapper

torch.set_num_threads(1)


class _PixelClip:
    """A fake CLIP: a fixed random projection of the pixels, unit-normalised."""
    model_id = "pixels"

    def __init__(self, size: int = 32, dim: int = 8):
        self.proj = torch.randn(3 * size * size, dim, generator=torch.Generator().manual_seed(11))

    def encode_image(self, img):
        return F.normalize(img.flatten(1) @ self.proj, dim=-1)

    def encode_text(self, texts):
        return F.normalize(torch.ones(len(texts), self.proj.shape[1]), dim=-1)


def test_training_resumes_exactly(small_g, tmp_path):
    G, clip = small_g, _PixelClip()
    cfg = MapperConfig(w_dim=G.w_dim, layers=2)
    full = train_mapper(G, clip, TrainSettings(prompt="a face", steps=6, batch=2, lr=0.5), cfg)
    part = train_mapper(G, clip, TrainSettings(prompt="a face", steps=3, batch=2, lr=0.5, checkpoint_every=2), cfg,
                        run_dir=tmp_path)
    assert part.steps == 3 and (tmp_path / "state.pt").is_file()
    rest = train_mapper(G, clip, TrainSettings(prompt="a face", steps=6, batch=2, lr=0.5, checkpoint_every=2), cfg,
                        run_dir=tmp_path)
    assert rest.steps == 6 and len(rest.history) == 6
    assert [h["loss"] for h in rest.history] == pytest.approx([h["loss"] for h in full.history], rel=1e-6)
    for a, b in zip(rest.mapper.parameters(), full.mapper.parameters()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    assert all(p.grad is None for p in G.parameters())
    with pytest.raises(InputError, match="other settings"):
        train_mapper(G, clip, TrainSettings(prompt="another face", steps=7, batch=2), cfg, run_dir=tmp_path)
    with pytest.raises(InputError, match="w_dim"):
        train_mapper(G, clip, TrainSettings(prompt="a face", steps=1), MapperConfig(w_dim=8, layers=1))


@torch.no_grad()
def _clip_loss(G, clip, mapper, ws, text) -> float:
    img = G.synthesis(apply_mapper(mapper, ws), noise_mode="const").clamp(-1, 1)
    return float((1 - (clip.encode_image(img) * text).sum(-1)).mean())


def test_short_demo_training_lowers_the_clip_loss(demo_g_clip):
    G, clip = demo_g_clip
    prompt = "a person wearing glasses"
    cfg = MapperConfig(w_dim=G.w_dim, layers=1, levels=("coarse", "medium"))
    settings = TrainSettings(prompt=prompt, steps=40, batch=4, lr=0.5, seed=3)
    untrained = LevelsMapper(cfg, generator=torch.Generator().manual_seed(settings.seed)).eval()
    res = train_mapper(G, clip, settings, cfg)
    ws = G.mapping(torch.randn(16, G.z_dim, generator=torch.Generator().manual_seed(123)), truncation_psi=0.7)
    text = clip.encode_text([prompt])
    before, after = _clip_loss(G, clip, untrained, ws, text), _clip_loss(G, clip, res.mapper, ws, text)
    assert after < before - 0.02, (before, after)


def test_shipped_demo_mappers_meet_the_measured_success(demo_g_clip):
    from shared.demo.predictor import load_predictor
    from training.styleclip.train_mapper import _target_for, measure_mapper
    G, _ = demo_g_clip
    predictor = load_predictor()
    for prompt, path in demo_mappers().items():
        mapper, _ = load_mapper(path)
        recorded = json.loads(path.with_suffix(".json").read_text())["measured"]
        got = measure_mapper(G, mapper, predictor, _target_for(prompt, None), n=recorded["n"], timing_repeats=1)
        # the target (>= 80 % success, other factors moving less than the target) with a
        # margin, and agreement with the figures recorded when the mapper was shipped
        assert got["success"] >= 0.8 and got["success"] >= recorded["success"] - 0.04, (prompt, got)
        assert got["other_change"] < 0.75 * got["target_change"], (prompt, got)
        assert got["target_change"] == pytest.approx(recorded["target_change"], abs=0.02)
