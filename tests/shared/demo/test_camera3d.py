"""The demo world's 3D camera convention (shared/demo/camera3d.py): renderer views as EG3D cameras.
A known point (the nose tip, surface points read from the renderer's depth) lands on the same pixel
under the renderer's orthographic camera and EG3D's pinhole `portrait_camera`, and depths agree."""
from __future__ import annotations

import math

import torch

from shared.archs.eg3d import fov_to_intrinsics, look_at_pose, ray_bundle
from shared.demo import camera3d as C
from shared.portraits import CAMERA_Z, HEAD_CENTER, PART_NAMES, head_rotation, render, sample_factors, with_view

VIEWS = [(0.0, 0.0), (25.0, -10.0), (-40.0, 20.0), (33.0, 17.0)]


def test_frontal_camera_is_eg3d_look_at_from_plus_z():
    pose = C.portrait_cam2world(0.0, 0.0)[0]
    assert torch.allclose(pose[:3, :3], torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]]))  # right, down, forward
    assert torch.allclose(pose[:3, 3], torch.tensor([0.0, -HEAD_CENTER[1], C.CAMERA_DISTANCE]))
    c = C.portrait_camera(torch.tensor([0.0, 10.0]), 5.0)
    assert c.shape == (2, 25) and torch.allclose(c[:, 16:], C.portrait_intrinsics().reshape(1, 9).expand(2, 9))


def test_points_project_to_the_renderers_pixels():
    g = torch.Generator().manual_seed(0)
    pts = (torch.rand([1, 200, 3], generator=g) * 2 - 1) * torch.tensor([1.0, 1.2, 0.9])
    for yaw, pitch in VIEWS:
        eg3d = C.project_points(C.portrait_camera(yaw, pitch), pts, 64)
        ours = C.project_portrait(pts, yaw, pitch, 64)
        # pinhole vs orthographic: off by dz / (distance - dz) of the offset from the image centre
        rot = head_rotation(torch.tensor([yaw]), torch.tensor([pitch])).float()
        dz = (pts @ rot.transpose(1, 2))[..., 2:3]                              # world depth off the focus plane
        bound = dz.abs() / (C.CAMERA_DISTANCE - dz.abs()) * (ours - 32).abs() + 1e-3
        assert ((eg3d - ours).abs() <= bound).all()
        assert (eg3d - ours).abs().max() < 0.35
        # points on the focus plane (the renderer's world z = 0) land exactly on the same pixel
        world = torch.rand([1, 50, 3], generator=g) * 2 - 1
        world[..., 2] = 0
        head = (world - torch.tensor(HEAD_CENTER)) @ rot          # R^T (w - centre), row vectors
        assert (C.project_points(C.portrait_camera(yaw, pitch), head, 64)
                - C.project_portrait(head, yaw, pitch, 64)).abs().max() < 2e-3


def test_nose_tip_lands_on_the_rendered_nose_at_the_same_depth():
    f = sample_factors(1, 3)
    for yaw, pitch in VIEWS:
        out = render(with_view(f, yaw=yaw, pitch=pitch), 64)
        tip = torch.tensor([[[0.0, -0.17 * float(f["face_length"][0]), 0.72 + 0.17]]])  # nose ellipsoid's front
        col, row = C.project_points(C.portrait_camera(yaw, pitch), tip, 64)[0, 0].tolist()
        i, j = int(row), int(col)
        assert PART_NAMES[int(out.parts[0, i, j])] == "nose", (yaw, pitch, i, j)
        rot = head_rotation(torch.tensor([yaw]), torch.tensor([pitch]))[0].float()
        world_z = float((rot @ tip[0, 0])[2] + HEAD_CENTER[2])
        assert abs(float(out.depth[0, i, j]) - (CAMERA_Z - world_z)) < 0.03       # the tip is the surface there
        eye = C.portrait_cam2world(yaw, pitch)[0, :3, 3]
        eg3d_depth = float(C.ray_depth_from_portrait(out.depth)[0, 0, i, j])
        assert abs(eg3d_depth - float(torch.linalg.norm(tip[0, 0] - eye))) < 0.03


def test_eg3d_rays_pass_through_the_renderers_surface():
    f = sample_factors(2, 11)
    for yaw, pitch in VIEWS:
        out = render(with_view(f, yaw=yaw, pitch=pitch), 32)
        c = C.portrait_camera(yaw, pitch).expand(2, 25)
        origins, dirs = ray_bundle(c[:, :16].reshape(-1, 4, 4), c[:, 16:].reshape(-1, 3, 3), 32)
        t = C.ray_depth_from_portrait(out.depth).reshape(2, -1, 1)              # distance along each ray
        fg = torch.isfinite(t[..., 0])
        hit = (origins + t * dirs)[fg]                                          # EG3D: head-frame points
        # the renderer's surface point of the same pixel: its pixel centre at depth, to the head frame
        size, s = 32, 1.32
        centres = (torch.arange(size) + 0.5) * (2 * s / size) - s
        v, u = torch.meshgrid(centres.flip(0), centres, indexing="ij")
        world = torch.stack([u.expand(2, -1, -1), v.expand(2, -1, -1), CAMERA_Z - out.depth], -1).reshape(2, -1, 3)
        rot = head_rotation(torch.tensor([yaw]), torch.tensor([pitch]))[0].float()
        head = ((world - torch.tensor(HEAD_CENTER)) @ rot)[fg]
        assert fg.sum() > 300
        assert (hit - head).norm(dim=-1).max() < 0.02                          # same point, 1/3 px at 32 px


def test_look_at_angles_put_the_tab_camera_at_the_same_viewpoint():
    for yaw, pitch in VIEWS:
        ey, ep = C.look_at_angles(yaw, pitch)
        tab = look_at_pose(ey, ep, C.LOOK_AT_PIVOT, C.CAMERA_DISTANCE)[0]
        ours = C.portrait_cam2world(yaw, pitch)[0]
        cos = torch.dot(tab[:3, 2], ours[:3, 2]) / (tab[:3, 2].norm() * ours[:3, 2].norm())
        assert math.degrees(math.acos(min(1.0, float(cos)))) < 0.2          # the same viewing direction
        assert (tab[:3, 3] - ours[:3, 3]).norm() < 0.2
        if yaw == 0 or pitch == 0:                                             # no roll then
            assert torch.allclose(tab[:3, 0], ours[:3, 0], atol=2e-3)
    k = torch.tensor(C.FOCAL)
    assert torch.isclose(fov_to_intrinsics(C.DEMO_FOV_DEGREES)[0, 0], k, rtol=1e-4)
