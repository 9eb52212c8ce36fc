"""shared/rendering3d.py on tiny random-weight EG3D and StyleNeRF generators (tests/tiny3d.py):
one camera convention for both, views with depth, orbit videos that decode with the right frame
count, stop between frames, and meshes that come back from GLB inside the model's volume."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.archs.stylenerf_rendering import project_points
from shared.errors import InputError
from shared.mixing import write_video
from shared.rendering3d import (DEFAULT_FOV, RenderCancelled, View, density_grid, depth_to_image, extract_mesh,
                                generator_camera, latent_for_seed, orbit_views, render_orbit, render_view, write_glb)
from tests.tiny3d import tiny_eg3d, tiny_stylenerf

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def eg3d():
    return tiny_eg3d()


@pytest.fixture(scope="module")
def nerf():
    return tiny_stylenerf()


@pytest.fixture(params=["eg3d", "stylenerf"])
def G(request, eg3d, nerf):
    return eg3d if request.param == "eg3d" else nerf


def _rig(G, view: View) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(camera position, image-right axis, image-down axis) in world space."""
    cam = generator_camera(G, view)
    if G.arch == "eg3d":
        pose = cam[0, :16].reshape(4, 4)
        return pose[:3, 3], pose[:3, 0], pose[:3, 1]
    pose = cam.cam2world[0]
    return pose[:3, 3], pose[:3, 0], -pose[:3, 1]   # StyleNeRF's camera y axis is image-up


# ---- camera convention --------------------------------------------------------------------------
def test_yaw_and_pitch_move_the_camera_the_same_way_on_both_archs(G):
    pos0, right, down = _rig(G, View(0, 0))
    pos_yaw, _, _ = _rig(G, View(20, 0))
    pos_pitch, _, _ = _rig(G, View(0, 15))
    assert float((pos_yaw - pos0) @ right) > 0.05 * float(pos0.norm())   # positive yaw: to the camera's right
    assert abs(float((pos_yaw - pos0) @ down)) < 1e-5
    assert float((pos_pitch - pos0) @ down) > 0.05 * float(pos0.norm())  # positive pitch: down (looks up)
    # yaw is an angle around the vertical axis through the subject
    up = -down
    flat = lambda p: p - (p @ up) * up  # noqa: E731
    cos = float(flat(pos_yaw) @ flat(pos0) / (flat(pos_yaw).norm() * flat(pos0).norm()))
    assert math.degrees(math.acos(min(1.0, cos))) == pytest.approx(20, abs=0.2)


def test_the_look_at_point_projects_to_the_image_centre(eg3d, nerf):
    c = generator_camera(eg3d, View(25, -10))
    pose, k = c[0, :16].reshape(4, 4), c[0, 16:].reshape(3, 3)
    pivot = torch.tensor([*eg3d.config.avg_camera_pivot, 1.0])
    cam = torch.linalg.inv(pose) @ pivot
    uv = (k @ (cam[:3] / cam[2]))[:2]
    assert torch.allclose(uv, torch.tensor([0.5, 0.5]), atol=1e-5) and float(cam[2]) > 0  # in front, centred
    px = project_points(torch.zeros(1, 1, 3), generator_camera(nerf, View(25, -10)), 16)[0, 0]
    assert torch.allclose(px, torch.tensor([7.5, 7.5]), atol=1e-4)


def test_field_of_view_follows_each_official_definition(eg3d, nerf):
    c = generator_camera(eg3d, View(0, 0, 30.0))
    assert float(c[0, 16]) == pytest.approx(1 / (math.tan(30 * 3.14159 / 360) * 1.414), rel=1e-5)
    assert float(generator_camera(eg3d, View())[0, 16]) == pytest.approx(4.2634, abs=1e-3)  # gen_samples.py
    cam = generator_camera(nerf, View(0, 0, 30.0))
    assert float(cam.intrinsics_inv[0, 0, 0]) == pytest.approx(math.tan(math.radians(15)), rel=1e-5)
    assert float(generator_camera(nerf, View()).intrinsics_inv[0, 0, 0]) == pytest.approx(
        math.tan(math.radians(DEFAULT_FOV["stylenerf"] / 2)), rel=1e-5)


def test_bad_views_and_models_raise_input_errors(eg3d):
    with pytest.raises(InputError, match="Yaw"):
        generator_camera(eg3d, View(200, 0))
    with pytest.raises(InputError, match="field of view"):
        generator_camera(eg3d, View(0, 0, 0.0))
    with pytest.raises(InputError, match="StyleNeRF or EG3D"):
        latent_for_seed(torch.nn.Linear(2, 2), 0)
    with pytest.raises(InputError, match="2 to"):
        orbit_views(1)


# ---- views and orbits -------------------------------------------------------------------------------
def test_render_view_gives_image_and_depth_deterministically(G):
    ws = latent_for_seed(G, 5, 0.7)
    a, b = render_view(G, ws, View(10, 5)), render_view(G, ws, View(10, 5))
    res, vol = G.img_resolution, (G.config.neural_rendering_resolution if G.arch == "eg3d" else 16)
    assert a.img.shape == (1, 3, res, res) and a.depth.shape == (1, 1, vol, vol)
    assert torch.equal(a.img, b.img) and torch.equal(a.depth, b.depth)  # no ray jitter: no flicker
    assert float(render_view(G, ws, View(-30, 0)).img.sub(a.img).abs().mean()) > 1e-4  # the camera matters
    grey = depth_to_image(a.depth, res)
    assert grey.shape == (1, 3, res, res) and float(grey.min()) >= -1 and float(grey.max()) <= 1


def test_orbit_video_decodes_with_the_right_frame_count(nerf, tmp_path: Path):
    import imageio.v2 as imageio

    views = orbit_views(7, yaw_range=20, pitch=5)
    assert views[0].yaw == 0 and views[0].pitch == pytest.approx(10) and len(views) == 7
    assert max(v.yaw for v in views) == pytest.approx(20 * math.sin(2 * math.pi * 2 / 7))
    steps = []
    orbit = render_orbit(nerf, latent_for_seed(nerf, 1), views, progress=lambda f, _: steps.append(f))
    assert orbit.img.shape == (7, 3, 32, 32) and orbit.depth.shape == (7, 1, 16, 16) and steps[-1] == 1.0
    path = write_video(orbit.img, tmp_path / "orbit.mp4", fps=10)
    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        frames = [f for f in reader]
    finally:
        reader.close()
    assert len(frames) == 7 and frames[0].shape == (32, 32, 3)


def test_eg3d_orbit_reuses_the_planes_and_matches_single_views(eg3d):
    ws = latent_for_seed(eg3d, 2)
    views = orbit_views(2, yaw_range=15)
    orbit = render_orbit(eg3d, ws, views)
    single = render_view(eg3d, ws, views[1])
    assert torch.allclose(orbit.img[1:2], single.img, atol=1e-5)


def test_orbit_stops_between_frames(nerf):
    calls = iter(range(100))
    with pytest.raises(RenderCancelled, match="after 2 of 5"):
        render_orbit(nerf, latent_for_seed(nerf, 1), orbit_views(5), should_stop=lambda: next(calls) >= 2)


# ---- meshes ------------------------------------------------------------------------------------------
def test_mesh_is_a_valid_glb_inside_the_volume(G, tmp_path: Path):
    import trimesh

    ws = latent_for_seed(G, 4)
    grid = density_grid(G, ws, 32)
    assert grid.sigma.shape == (32, 32, 32) and np.isfinite(grid.sigma).all()
    level = float(np.median(grid.sigma[grid.sigma > grid.sigma.min()]))  # StyleNeRF's relu leaves many zeros
    mesh = extract_mesh(G, ws, grid, level)
    assert len(mesh.vertices) > 100 and mesh.colors.shape == (len(mesh.vertices), 3)
    path = write_glb(mesh, tmp_path / "mesh.glb")
    assert Path(path).read_bytes()[:4] == b"glTF"
    back = trimesh.load(path, force="mesh")
    assert back.vertices.shape == mesh.vertices.shape and back.faces.shape == mesh.faces.shape
    half = -grid.origin[0] + grid.spacing / 2       # the cube is centred at the origin
    assert np.abs(back.vertices).max() <= half + 1e-4
    assert np.allclose(np.sort(back.vertices, axis=0), np.sort(mesh.vertices, axis=0), atol=1e-5)


def test_mesh_level_outside_the_field_is_a_sentence(nerf):
    ws = latent_for_seed(nerf, 4)
    grid = density_grid(nerf, ws, 32)
    with pytest.raises(InputError, match="never crosses level 1e\\+06"):
        extract_mesh(nerf, ws, grid, 1e6)
    with pytest.raises(InputError, match="32, 64, 128, 256"):
        density_grid(nerf, ws, 48)
