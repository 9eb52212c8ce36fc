"""training.rig: the self-supervised StyleRig trainer (Tewari et al., CVPR 2020) on a tiny random
generator with a tiny differentiable face model: it lowers the control loss, resumes from its
checkpoint exactly, exports a file shared.rig loads, and its evaluation reports the figures."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from shared.rig import RigConfig, RigControl, RigNet, load_rig
from training.rig.estimator import Reading
from training.rig.evaluate import evaluate_rig
from training.rig.train import RigTrainConfig, draw_targets, main, rig_losses, sample_sources, train_rig

CH = ((4, 32), (8, 32), (16, 16))
CONTROLS = (RigControl("turn", -30.0, 30.0, "degrees"), RigControl("glow", 0.0, 1.0, "share"))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tiny models run fastest on one thread (the CPU is shared); the old setting comes back."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def G() -> StyleGAN2Generator:
    cfg = StyleGAN2Config(z_dim=8, w_dim=16, img_resolution=16, mapping_layers=2, channels=CH)
    return StyleGAN2Generator(cfg).init_random_(torch.Generator().manual_seed(0)).eval().requires_grad_(False)


class TinyFaceModel(nn.Module):
    """Reads 2 controls and 2 'other factors' as fixed random linear functions of the 4x4-pooled
    image, standardised on the generator's own images so the controls span about -1..1."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.proj = nn.Parameter(torch.randn(48, 4, generator=g), requires_grad=False)
        with torch.no_grad():
            f = self._raw(G.synthesis(G.mapping(torch.randn(256, 8, generator=g))))
        self.register_buffer("mean", f.mean(0))
        self.register_buffer("std", f.std(0))

    def _raw(self, img: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(img, 4).flatten(1) @ self.proj

    def forward(self, img: Tensor) -> Reading:
        f = (self._raw(img) - self.mean) / self.std                 # [N, 4], about N(0, 1)
        return Reading(f[:, :2] / 2, {"width": f[:, 2:3] / 8 + 0.5, "hat": torch.sigmoid(f[:, 3:4])})


@pytest.fixture(scope="module")
def face(G) -> TinyFaceModel:
    return TinyFaceModel(G)


def _cfg(**kw) -> RigTrainConfig:
    return RigTrainConfig(**{"batch": 8, "lr": 3e-3, "stat_samples": 512, "save_every": 5, "log_every": 5, **kw})


def _rig_config(G) -> RigConfig:
    return RigConfig(G.w_dim, G.num_ws, CONTROLS, hidden=32, code_dim=8)


def _held_out_losses(G, rig: RigNet, face, cfg: RigTrainConfig) -> dict[str, float]:
    g = torch.Generator().manual_seed(999)
    ws, src = sample_sources(G, face, 64, g)
    with torch.no_grad():
        return {k: v.item() for k, v in rig_losses(G, rig, face, ws, src, draw_targets(src.controls, 0.2, g),
                                                   cfg).items()}


def test_targets_change_one_control_or_all(G, face):
    src = torch.linspace(-0.9, 0.9, 400).reshape(200, 2)
    t = draw_targets(src, 0.0, torch.Generator().manual_seed(1))
    changed = (t != src).sum(1)
    assert changed.max() == 1 and changed.sum() >= 195          # exactly one control per sample
    t_all = draw_targets(src, 1.0, torch.Generator().manual_seed(1))
    assert (t_all != src).all() and t_all.abs().max() <= 1
    far = draw_targets(torch.full((4, 2), 3.0), 0.0, torch.Generator().manual_seed(2))
    assert far.abs().max() <= 1                                  # readings beyond a range ask for its edge


def test_losses_reach_the_rig_only(G, face):
    rig = RigNet(_rig_config(G))
    g = torch.Generator().manual_seed(0)
    ws, src = sample_sources(G, face, 4, g)
    losses = rig_losses(G, rig, face, ws, src, draw_targets(src.controls, 0.5, g), _cfg())
    assert set(losses) == {"control", "others", "offset", "identity", "cycle", "total"}
    assert losses["offset"] == 0 and losses["cycle"] == 0 and losses["others"] == 0   # fresh rig = identity
    assert losses["control"] > 0.01
    losses["total"].backward()
    assert rig.dec2.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in G.parameters()) and face.proj.grad is None


@pytest.fixture(scope="module")
def trained(G, face, tmp_path_factory):
    """60 steps in two runs of 30 (the second resumes from the first's checkpoint), with their log lines."""
    run, lines = tmp_path_factory.mktemp("rig") / "run", []
    cfg, rc = _cfg(cycle=5.0), _rig_config(G)
    _, rec = train_rig(G, face, rc, cfg, run, max_steps=30, log=lines.append)
    assert rec["steps"] == 30 and (run / "state.pt").is_file()
    rig, rec = train_rig(G, face, rc, cfg, run, max_steps=60, log=lines.append)
    assert rec["steps"] == 60 and rec["last_losses"]["total"] > 0
    return rig, lines, run


def test_training_lowers_the_control_loss(G, face, trained):
    rig, lines, _ = trained
    assert any(s.startswith("resumed at step 30") for s in lines)
    assert any(s.startswith("step 60: control") for s in lines)
    cfg = _cfg(cycle=5.0)
    fresh = RigNet(rig.config)
    fresh.w_mean, fresh.w_std = rig.w_mean, rig.w_std
    before, after = _held_out_losses(G, fresh, face, cfg), _held_out_losses(G, rig, face, cfg)
    assert after["control"] < 0.5 * before["control"], (before, after)
    assert after["cycle"] < 0.05 and after["others"] < 0.01, after
    with pytest.raises(ValueError, match="another config"):
        train_rig(G, face, RigConfig(16, G.num_ws, CONTROLS, hidden=16), cfg, trained[2], max_steps=61)


def test_resuming_gives_the_same_rig_as_one_run(G, face, tmp_path):
    cfg, rc = _cfg(), _rig_config(G)
    train_rig(G, face, rc, cfg, tmp_path / "a", max_steps=5)
    resumed, _ = train_rig(G, face, rc, cfg, tmp_path / "a", max_steps=10)
    straight, _ = train_rig(G, face, rc, cfg, tmp_path / "b", max_steps=10)
    fresh = RigNet(rc)
    for k, v in straight.state_dict().items():
        assert torch.allclose(resumed.state_dict()[k], v, atol=1e-6), k
    assert not torch.equal(straight.enc1.weight, fresh.enc1.weight)


def test_evaluation_reports_each_control(G, face, trained):
    rig = trained[0]
    res = evaluate_rig(G, rig, face, n=40, batch=20, time_reps=3)
    assert set(res["controls"]) == {"turn", "glow"}
    for m in res["controls"].values():
        assert -1 <= m["correlation"] <= 1 and m["mae"] >= 0 and m["other_factors"] >= m["other_factors_mean"] >= 0
        assert m["offset"] > 0 and m["cycle"] >= 0 and m["unit"]
    identity = RigNet(rig.config)
    flat = evaluate_rig(G, identity, face, n=40, batch=20, time_reps=1)
    assert flat["worst"]["other_factors"] == 0 and flat["worst"]["other_controls"] == 0
    assert all(m["offset"] == 0 and m["cycle"] == 0 for m in flat["controls"].values())
    for name, m in res["controls"].items():          # the trained rig follows the request; the identity cannot
        assert m["correlation"] > flat["controls"][name]["correlation"] + 0.3, (name, m, flat["controls"][name])
        assert m["mae"] < flat["controls"][name]["mae"]
    assert res["worst"]["correlation"] == min(m["correlation"] for m in res["controls"].values())
    assert 0 < res["ms_rig"] < 1000 and res["ms_edit"] > 0


def test_command_line_trains_resumes_and_exports(tmp_path, capsys):
    from shared.demo.predictor import DEFAULT_PATH
    from shared.demo.bundle import BUNDLE_DIR
    gen = BUNDLE_DIR / "generator.safetensors"
    if not (gen.is_file() and DEFAULT_PATH.is_file()):
        pytest.skip("the demo bundle (generator, predictor) is not built on this machine")
    args = ["--generator", str(gen), "--run-dir", str(tmp_path / "run"), "--steps", "2", "--batch", "2",
            "--threads", "1", "--export", str(tmp_path / "rig.safetensors"), "--rows", "0,1,2,3"]
    main(args)
    main([*args[:5], "3", *args[6:]])
    out = capsys.readouterr().out
    assert "resumed at step 2" in out and "trained 3 steps" in out
    rig = load_rig(tmp_path / "rig.safetensors")
    assert rig.config.names == ("yaw", "pitch", "smile", "mouth_open", "light_azimuth", "light_elevation")
    assert rig.config.edit_rows == (0, 1, 2, 3)
