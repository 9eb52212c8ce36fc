"""The demo generator's distillation trainer (`training.demo.distill`) at a toy size: it trains and
checkpoints, resumes with a changed learning-rate schedule, refuses any other change, resumes runs
begun before a setting existed, and keeps style mixes out until `mix_from_kimg`."""
from __future__ import annotations

import pytest
import torch

import training.demo.distill as D

torch.set_num_threads(1)
TINY = D.DistillConfig(resolution=32, w_dim=16, channels=((4, 16), (8, 16), (16, 8), (32, 8)), batch=2, perceptual=0.0,
                       schedule_kimg=1.0)


def _run(cfg, run_dir, kimg, logs=None):
    report = logs.append if logs is not None else (lambda s: None)
    return D.distill(cfg, run_dir, kimg=kimg, log_every=1, progress=report)


def test_trains_checkpoints_and_resumes_with_a_new_schedule(tmp_path):
    _run(TINY, tmp_path, 0.004)
    st = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert st["step"] == 2 and st["nimg"] == 4
    logs = []
    _run(D.DistillConfig(**{**TINY.__dict__, "schedule_kimg": 0.5}), tmp_path, 0.006, logs)
    assert any("schedule changed from 1 to 0.5" in line for line in logs)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 3
    with pytest.raises(ValueError, match="another config"):
        _run(D.DistillConfig(**{**TINY.__dict__, "mix_prob": 0.9}), tmp_path, 0.008)


def test_a_run_begun_before_a_setting_existed_resumes_with_its_default(tmp_path):
    _run(TINY, tmp_path, 0.002)
    st = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    del st["config"]["mix_from_kimg"]                      # as written before the setting existed
    torch.save(st, tmp_path / "checkpoint.pt")
    _run(TINY, tmp_path, 0.004)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 2


def test_no_mixes_before_mix_from_kimg(tmp_path, monkeypatch):
    cuts = []
    real = D.mixed_factors

    def spy(fa, fb, cut, homes):
        cuts.append(cut.clone())
        return real(fa, fb, cut, homes)

    monkeypatch.setattr(D, "mixed_factors", spy)
    cfg = D.DistillConfig(**{**TINY.__dict__, "mix_prob": 1.0, "mix_from_kimg": 0.004})
    _run(cfg, tmp_path, 0.008)
    num_ws = 2 * 5 - 2   # 32 px: rows of 4, 8, 16, 32 px
    assert all((c == num_ws).all() for c in cuts[:2])       # first 4 images: unmixed
    assert all((c < num_ws).all() for c in cuts[2:])        # then every sample a mix
