"""The demo 3D generator's distillation (`training.demo3d.distill3d`) and measurement
(`training.demo3d.evaluate3d`) at a toy size: steps lower the loss, runs resume and refuse another
config, the export loads through the hub's loader and renders through shared/rendering3d.py, the
relit targets keep the light fixed to the head, and the measurement reads the renderer's own orbit
as consistent (its floor)."""
from __future__ import annotations

import math

import pytest
import torch

import training.demo3d.distill3d as D
import training.demo3d.evaluate3d as E
from shared.archs.eg3d import EG3DGenerator, RayDraws
from shared.demo.camera3d import DEMO_FOV_DEGREES, portrait_camera
from shared.loaders import load_generator
from shared.portraits import head_rotation
from shared.rendering3d import View, render_image

torch.set_num_threads(1)
TINY = D.Distill3DConfig(neural_resolution=16, plane_resolution=16, channel_base=256, channel_max=16,
                         depth_samples=4, importance_samples=4, batch=2, perceptual=0.0, schedule_kimg=1.0)


def _run(cfg, run_dir, kimg, logs=None, export=None):
    report = logs.append if logs is not None else (lambda s: None)
    return D.distill3d(cfg, run_dir, kimg=kimg, log_every=1, eval_every_kimg=100.0, export=export, progress=report)


def test_latent_layout_and_generator_config():
    assert D.Z3_DIM == 33
    cfg = D.generator_config(D.Distill3DConfig())
    assert (cfg.z_dim, cfg.img_resolution, cfg.neural_rendering_resolution, cfg.plane_resolution) == (33, 64, 32, 64)
    assert not cfg.normalize_z and len(cfg.z_onehot) == 6      # the six categorical factors, arg-max exact
    z = torch.randn(3, D.Z3_DIM, generator=torch.Generator().manual_seed(0))
    f = D.latent_factors(z, torch.tensor([10.0, -5.0, 0.0]), 3.0)
    assert f["yaw"].tolist() == [10.0, -5.0, 0.0] and f["pitch"].tolist() == [3.0] * 3


def test_static_light_fixes_the_light_to_the_head():
    z, yaw, pitch = D.sample_latents(4, torch.Generator().manual_seed(1))
    f = D.latent_factors(z, yaw, pitch)
    same = D.static_light(f, yaw, pitch)
    assert torch.allclose(same["light_azimuth"], f["light_azimuth"], atol=1e-3)
    cyaw, cpitch = torch.tensor([0.0, 30.0, -20.0, 5.0]), torch.tensor([0.0, -10.0, 15.0, 0.0])
    relit = D.static_light(f, cyaw, cpitch)

    def light(az, el):
        az, el = torch.deg2rad(az.double()), torch.deg2rad(el.double())
        return torch.stack([az.sin() * el.cos(), el.sin(), az.cos() * el.cos()], 1).unsqueeze(2)

    in_head = head_rotation(yaw, pitch).transpose(1, 2) @ light(relit["light_azimuth"], relit["light_elevation"])
    want = head_rotation(cyaw, cpitch).transpose(1, 2) @ light(f["light_azimuth"], f["light_elevation"])
    assert torch.allclose(in_head, want, atol=1e-5)


def test_steps_lower_the_loss_on_a_batch():
    cfg = D.Distill3DConfig(**{**TINY.__dict__, "lr": 0.002})
    G = D.build_generator(cfg)
    loss_fn = D._Losses(cfg)
    opt = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
    losses = []
    for _ in range(6):
        loss = D._step(G, loss_fn, cfg, torch.Generator().manual_seed(5))["total"]   # the same batch each time
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.85 * losses[0], losses


def test_trains_checkpoints_resumes_and_refuses_another_config(tmp_path):
    logs = []
    _run(TINY, tmp_path, 0.004, logs)
    st = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert st["step"] == 2 and st["nimg"] == 4
    assert any("s/step" in line and "depth" in line for line in logs)
    logs = []
    _run(D.Distill3DConfig(**{**TINY.__dict__, "schedule_kimg": 0.5}), tmp_path, 0.006, logs)
    assert any("resumed at step 2" in line for line in logs)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 3
    with pytest.raises(ValueError, match="another config"):
        _run(D.Distill3DConfig(**{**TINY.__dict__, "depth_weight": 0.9}), tmp_path, 0.008)


def test_export_loads_and_renders_through_rendering3d(tmp_path):
    path = tmp_path / "demo3d.safetensors"
    G_ema = _run(TINY, tmp_path / "run", 0.002, export=path)
    G = load_generator(path)
    assert isinstance(G, EG3DGenerator) and G.config == G_ema.config
    z = torch.randn(1, D.Z3_DIM, generator=torch.Generator().manual_seed(2))
    c = portrait_camera(20.0, -5.0)
    r = G.config.neural_rendering_resolution
    draws = RayDraws.midpoints(1, r * r, G.config.depth_resolution, G.config.depth_resolution_importance)
    with torch.no_grad():
        assert torch.equal(G(z, c, draws=draws).image, G_ema(z, c, draws=draws).image)
        ws = G.mapping(z, portrait_camera(0.0, 0.0))
        img, depth = render_image(G, ws, View(yaw=-20.0, pitch=5.0, fov=DEMO_FOV_DEGREES))
    assert img.shape == (1, 3, 64, 64) and depth.shape == (1, 1, 16, 16)
    assert torch.isfinite(img).all()
    lo, hi = G.config.ray_start, G.config.ray_end
    assert ((depth >= lo) & (depth <= hi)).all()                  # distances along the rays, inside the volume


def test_measurement_on_a_toy_model_and_the_renderers_own_orbit(tmp_path):
    G = D.build_generator(TINY).eval().requires_grad_(False)
    psnr, per_view, views = E.measure_psnr(G, people=1)
    assert len(views) == len(per_view) == 20 and math.isfinite(psnr)
    cons = E.measure_consistency(G, E.load_predictor(), people=2, frames=12)
    assert cons["yaw_correlation_renderer"] > 0.95                  # the predictor reads the true orbit
    assert max(cons["identity_change_renderer"].values()) <= 0.25
    assert set(cons["identity_change"]) == set(E.IDENTITY_FACTORS)
    speed = E.measure_speed(G, repeats=1)
    assert all(v > 0 for v in speed.values())
