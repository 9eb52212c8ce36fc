"""Pose with Style on the demo world (training/posewithstyle): a tiny 64 px run (the CCM's dilated convolutions need 48 px or more) lowers its loss, resumes
where it stopped, and its export loads through the Pose with Style loaders and reposes through
`shared.posewithstyle.repose` (the official inference path, CCM included)."""
from __future__ import annotations

import json
import math

import pytest
import torch

from shared.loaders.posewithstyle import load_ccm, load_posewithstyle, load_uv_lookup
from shared.portraits import sample_factors
from shared.portraits_iuv import demo_uv_lookup, render_person
from shared.posewithstyle import repose
from training.posewithstyle.measure import heldout_pairs, measure_repose, psnr
from training.posewithstyle.train_demo import (DEMO_FILES, PWSDemoConfig, _networks, _pair_batch, _repose_batch, export,
                                              generator_config, train)

TINY = PWSDemoConfig(ngf=4, channels=((16, 16), (32, 8), (64, 8)), modulation_hidden=8, ccm_ngf=4, batch=4,
                     lr=0.01, ccm_lr=0.003, pool_people=6, views=2, refresh_every=4, perceptual=0.1)


def test_default_config_is_a_64px_official_architecture():
    cfg = generator_config(PWSDemoConfig())
    assert cfg.size == 64 and cfg.num_levels == 3 and cfg.num_noise == 5


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("pws")
    lines: list[str] = []
    G, ccm = train(TINY, run_dir, steps=8, eval_every=8, eval_pairs=2, log_every=4, progress=lines.append)
    return run_dir, lines, G, ccm


def _losses(lines: list[str]) -> list[float]:
    return [float(s.split("loss ")[1].split()[0]) for s in lines if s.startswith("step")]


def test_a_few_steps_lower_the_loss(run):
    """On fixed pairs of the run's pool, the trained weights do better than the initial ones."""
    run_dir, lines, _, _ = run
    assert len(_losses(lines)) == 2 and any("held-out PSNR" in s for s in lines)
    pool = torch.load(run_dir / "pool.pt", weights_only=True)
    batch = _pair_batch(pool, TINY, torch.Generator().manual_seed(3))
    table = demo_uv_lookup()
    G, ccm = _networks(TINY)
    st = torch.load(run_dir / "checkpoint.pt", weights_only=False)

    def loss() -> float:
        with torch.no_grad():
            fake, _ = _repose_batch(G, ccm, batch, table, torch.Generator().manual_seed(4))
        return float((fake - batch["target"]).abs().mean())

    before = loss()
    G.load_state_dict(st["G"])
    ccm.load_state_dict(st["ccm"])
    assert loss() < 0.8 * before


def test_resume_continues_from_the_checkpoint(run, tmp_path):
    run_dir, _, G, _ = run
    log = json.loads((run_dir / "log.json").read_text())
    assert log[-1]["step"] == 8 and "heldout_psnr" in log[-1]
    lines: list[str] = []
    G2, _ = train(TINY, run_dir, steps=8, progress=lines.append)      # already there: nothing to do
    assert lines[0].startswith("resumed at step 8") and lines[-1] == "stopped at step 8"
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), G2.state_dict().values()))
    lines = []
    train(TINY, run_dir, steps=10, log_every=1, progress=lines.append)
    assert [s.split()[1] for s in lines if s.startswith("step")] == ["9", "10"]
    with pytest.raises(ValueError, match="another config"):
        train(PWSDemoConfig(batch=2), run_dir, steps=11)


def test_export_loads_and_reposes_through_the_official_path(run, tmp_path):
    _, _, G, ccm = run
    paths = export(G, ccm, tmp_path)
    assert [p.name for p in paths] == list(DEMO_FILES)
    G2, ccm2, table = load_posewithstyle(paths[0]), load_ccm(paths[1]), load_uv_lookup(paths[2])
    assert G2.size == 64 and ccm2.config.ngf == 4 and torch.equal(table, demo_uv_lookup())
    src_f, tgt_f = heldout_pairs(1, seed=5)
    src, tgt = render_person(src_f, 64), render_person(tgt_f, 64)
    out = repose(G2, ccm2, src.img, src.silhouette, src.iuv, tgt.iuv, table, generator=torch.Generator().manual_seed(0))
    ref = repose(G, ccm, src.img, src.silhouette, src.iuv, tgt.iuv, table, generator=torch.Generator().manual_seed(0))
    assert out.image.shape == (1, 3, 64, 64) and torch.isfinite(out.image).all()
    assert torch.allclose(out.image, ref.image, atol=1e-5)
    m = measure_repose(G2, ccm2, n=2, seed=5)
    assert m.n == 2 and len(m.psnr_per_pair) == 2 and 5 < m.psnr_db < 60 and m.seconds_per_repose > 0


def test_psnr():
    a = render_person(sample_factors(2, 0), 16).img
    assert torch.isinf(psnr(a, a)).sum() == 0 and float(psnr(a, a).min()) >= 99
    b = a.clone()
    b[:, :, 0, 0] += 0.2
    expected = 10 * math.log10(1 / ((0.1 ** 2) * 3 / (3 * 16 * 16)))
    assert torch.allclose(psnr(a, b), torch.full([2], expected), atol=1e-3)
