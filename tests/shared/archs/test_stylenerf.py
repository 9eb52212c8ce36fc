"""StyleNeRF against the official parity vector, plus cameras, config checks and the native format.

Parity data: ../shared/parity/stylenerf_ffhq_tiny.{json,safetensors}, made by
facebookresearch/StyleNeRF@7f5610a `training/networks.py: Generator` with
`training/stylenerf.py: NeRFSynthesisNetwork` on CPU in float32 (eval mode, alpha = 1).
Tolerance from its README: 2e-4 * max(1, max|expected|) on img / img_nerf, 1e-5 on ws.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from shared.archs.stylenerf import (NeRFCamera, StyleNeRFConfig, StyleNeRFGenerator, camera_from_angles,
                                    project_points)
from shared.archs.stylenerf_rendering import camera_rays, pixel_grid
from shared.errors import CheckpointError
from shared.loaders import load_generator
from shared.loaders.native import save_native
from tests.parity import load_vector, rel_err

NAME = "stylenerf_ffhq_tiny"
IMG_TOL = 2e-4   # README: img / img_nerf, float32 path
WS_TOL = 1e-5


def _official_kwargs(meta: dict) -> dict:
    ctor = meta["constructor"]
    return {**ctor["G_kwargs"], "c_dim": ctor["c_dim"], "img_resolution": ctor["img_resolution"],
            "img_channels": ctor["img_channels"]}


@pytest.fixture(scope="module")
def vector(parity_dir: Path):
    sd, tensors, meta = load_vector(parity_dir, NAME)
    return sd, tensors, meta


@pytest.fixture(scope="module")
def G(vector) -> StyleNeRFGenerator:
    sd, _, meta = vector
    return StyleNeRFGenerator.from_nvlabs(_official_kwargs(meta), sd)


def _camera(tensors: dict, case: str) -> NeRFCamera:
    return NeRFCamera(tensors[f"{case}.camera_K"], tensors[f"{case}.camera_RT"])


def _bg(tensors: dict) -> tuple[torch.Tensor, torch.Tensor]:
    return tensors["latent_codes.z_shape_bg"], tensors["latent_codes.z_app_bg"]


@pytest.fixture(scope="module")
def renders(G, vector) -> dict[str, torch.Tensor]:
    _, t, _ = vector
    out = {}
    with torch.no_grad():
        a = G.synthesis.render(G.mapping(t["z"]), camera=_camera(t, "a"), bg_codes=_bg(t))
        out["a.img"], out["a.img_nerf"] = a.img, a.img_nerf
        out["a.img_final"] = G(t["z"], None, camera=_camera(t, "a"), bg_codes=_bg(t))
        out["b.ws"] = G.mapping(t["z"], None, truncation_psi=0.7)
        out["b.ws_psi1"] = G.mapping(t["z"], None, truncation_psi=1)
        for case, cam in (("b", "b"), ("c", "a")):
            r = G.synthesis.render(out["b.ws"], camera=_camera(t, cam), bg_codes=_bg(t), noise_mode="const")
            out[f"{case}.img"], out[f"{case}.img_nerf"] = r.img, r.img_nerf
    return out


OUTPUTS = ["a.img", "a.img_nerf", "a.img_final", "b.ws", "b.ws_psi1", "b.img", "b.img_nerf", "c.img", "c.img_nerf"]


@pytest.mark.parametrize("key", OUTPUTS)
def test_parity_with_official_stylenerf(renders, vector, key: str) -> None:
    _, t, _ = vector
    tol = WS_TOL if ".ws" in key else IMG_TOL
    err = rel_err(renders[key], t[key])
    assert err <= tol, f"{key}: max|ours - official| / max(1, max|official|) = {err:.3g} > {tol:g}"


def test_view_dependence_is_real(renders) -> None:
    # README: camera B vs A changes the image by about 2.1; a camera ignored would pass nothing above
    assert float((renders["b.img"] - renders["c.img"]).abs().max()) > 1.0


def test_load_generator_reads_the_parity_file_by_content(parity_dir: Path, renders, vector) -> None:
    _, t, _ = vector
    G2 = load_generator(parity_dir / f"{NAME}.safetensors")
    assert isinstance(G2, StyleNeRFGenerator) and not G2.training
    with torch.no_grad():
        ws = G2.mapping(t["z"], None, truncation_psi=0.7)
    assert rel_err(ws, t["b.ws"]) <= WS_TOL


def test_native_round_trip(tmp_path: Path, G, vector, renders) -> None:
    _, t, _ = vector
    path = save_native(G, tmp_path / "nerf.safetensors", source="parity")
    G2 = load_generator(path)
    assert isinstance(G2, StyleNeRFGenerator) and G2.config == G.config
    for k, v in G.state_dict().items():
        assert torch.equal(G2.state_dict()[k], v), k
    with torch.no_grad():
        img = G2.synthesis(renders["b.ws"], camera=_camera(t, "b"), bg_codes=_bg(t))
    assert torch.equal(img, renders["b.img"])
    assert StyleNeRFConfig.from_dict(G.config.to_dict()) == G.config


# ---- cameras (dnnlib/camera.py: get_camera(mode=[u, v, r]), angular, look_at with z up) --------

@pytest.mark.parametrize("case", ["a", "b"])
def test_camera_from_yaw_pitch_fov_matches_official_get_camera(vector, case: str) -> None:
    _, t, meta = vector
    spec = meta["derived"][f"camera_{case.upper()}"]
    cam = camera_from_angles(spec["yaw"], spec["pitch"], fov=meta["derived"]["camera_fov_deg"], batch_size=2)
    assert torch.allclose(cam.intrinsics_inv, t[f"{case}.camera_K"], atol=1e-7, rtol=0)
    assert torch.allclose(cam.cam2world, t[f"{case}.camera_RT"], atol=1e-6, rtol=0)


def test_known_points_project_where_the_official_camera_puts_them() -> None:
    fov, res, h = 12.0, 64, 0.05
    cam = camera_from_angles(0.0, math.pi / 2, fov=fov, radius=1.0)   # frontal: camera on +x, z up
    assert torch.allclose(cam.cam2world[0, :3, 3], torch.tensor([1.0, 0.0, 0.0]), atol=1e-7)
    f = 1 / math.tan(math.radians(fov) / 2)
    pts = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, h], [0.0, h, 0.0]]])
    cr = project_points(pts, cam, res)[0]
    centre = (res - 1) / 2
    assert torch.allclose(cr[0], torch.tensor([centre, centre]), atol=1e-4)              # origin: image centre
    assert torch.allclose(cr[1], torch.tensor([centre, ((1 - f * h) * res - 1) / 2]), atol=1e-3)  # world up: up
    assert torch.allclose(cr[2], torch.tensor([((1 + f * h) * res - 1) / 2, centre]), atol=1e-3)  # world +y: right
    # yaw turns the camera about z towards +y; pitch > pi/2 looks from below
    side = camera_from_angles(0.3, math.pi / 2 + 0.2, fov=fov).cam2world[0, :3, 3]
    expected = torch.tensor([math.sin(math.pi / 2 + 0.2) * math.cos(0.3), math.sin(math.pi / 2 + 0.2) * math.sin(0.3),
                             math.cos(math.pi / 2 + 0.2)])
    assert torch.allclose(side, expected, atol=1e-6)


def test_rays_through_pixels_project_back_to_those_pixels() -> None:
    cam = camera_from_angles(0.2, 1.5, fov=12.0, batch_size=1)
    pixels_world, origin = camera_rays(cam, pixel_grid(8, 1))
    points = origin + 1.05 * (pixels_world - origin)                 # somewhere inside the depth range
    cr = project_points(points, cam, 8)[0]
    rows, cols = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    assert torch.allclose(cr, torch.stack([cols.flatten(), rows.flatten()], -1), atol=1e-3)


def test_model_camera_uses_the_rig(G) -> None:
    cam = G.synthesis.camera(0.1, 1.6, batch_size=3)
    ref = camera_from_angles(0.1, 1.6, fov=G.config.fov, radius=1.0, batch_size=3)
    assert torch.equal(cam.cam2world, ref.cam2world) and torch.equal(cam.intrinsics_inv, ref.intrinsics_inv)


# ---- config and loading checks ---------------------------------------------------------------

def test_unsupported_official_options_are_named(vector) -> None:
    _, _, meta = vector
    kw = _official_kwargs(meta)
    kw["synthesis_kwargs"] = {**kw["synthesis_kwargs"],
                              "camera_kwargs": {**kw["synthesis_kwargs"]["camera_kwargs"], "ray_align_corner": True}}
    with pytest.raises(CheckpointError, match="ray_align_corner"):
        StyleNeRFConfig.from_nvlabs_kwargs(kw)


def test_unfinished_curriculum_snapshot_is_refused(vector) -> None:
    sd, _, meta = vector
    sd = {**sd, "synthesis.alpha": torch.tensor(0.5)}
    with pytest.raises(CheckpointError, match="alpha = 0.5"):
        StyleNeRFGenerator.from_nvlabs(_official_kwargs(meta), sd)


def test_wrong_shapes_are_refused(vector) -> None:
    sd, _, meta = vector
    sd = {**sd, "synthesis.fg_nerf.fc_in.weight": torch.zeros(32, 61, 1, 1)}
    with pytest.raises(CheckpointError, match="fc_in.weight"):
        StyleNeRFGenerator.from_nvlabs(_official_kwargs(meta), sd)


def test_bad_inputs_raise_clear_errors(G) -> None:
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(torch.zeros(1, 3, G.w_dim))
    with pytest.raises(ValueError, match="camera batch"):
        G.synthesis(torch.zeros(2, G.num_ws, G.w_dim), camera=G.synthesis.camera(batch_size=1))


def test_tiny_random_model_with_view_directions_renders() -> None:
    cfg = StyleNeRFConfig(z_dim=16, w_dim=16, img_resolution=16, mapping_layers=2, channel_max=16, resolution_vol=8,
                          rgb_out_dim=16, z_dim_bg=4, fg_hidden=16, fg_blocks=2, fg_viewdirs=True, bg_hidden=8,
                          bg_blocks=2, n_ray_samples=6, n_bg_samples=3)
    torch.manual_seed(0)  # test-local; library code never seeds
    G = StyleNeRFGenerator(cfg).eval()
    assert G.num_ws == cfg.num_ws == 4 + 3 and hasattr(G.synthesis.fg_nerf, "from_ray")
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        r = G.synthesis.render(G.mapping(z), camera=G.synthesis.camera(0.2, 1.5, batch_size=2))
    assert r.img.shape == (2, 3, 16, 16) and r.img_nerf.shape == (2, 3, 8, 8) and r.depth.shape == (2, 1, 8, 8)
    assert torch.isfinite(r.img).all()
    d0, d1 = cfg.depth_range
    assert float(r.depth.min()) >= 0 and float(r.depth.max()) <= d1 + 1e-5
