"""The demo world's one camera convention for 3D: the portrait renderer's view (yaw, pitch) as an
EG3D camera (Chan et al., CVPR 2022; NVlabs/eg3d@7cf1fd1 `camera_utils.py`: c = cam2world 4x4 in
OpenCV axes, flattened, then normalised intrinsics 3x3). Own construction; it is what the demo 3D
generator (training/demo3d) is trained with.

The convention. The EG3D world is the renderer's head frame (shared/portraits.py): origin at
`HEAD_CENTER`, x the head's left-to-right (image right when frontal), y up, z out of the face. The
renderer turns the head by R = R_y(yaw) R_x(pitch) in front of a fixed orthographic camera; seen
from the head, that is a camera at R^T ((0, 0, CAMERA_DISTANCE) - HEAD_CENTER) with axes right
R^T e_x, down -R^T e_y and forward -R^T e_z (so it rolls a little when yaw and pitch are both
non-zero, as the renderer's views do). The renderer is orthographic and EG3D's ray sampler is a
pinhole, so the camera is far (`CAMERA_DISTANCE` = 100 world units) with a narrow field of view
whose focus plane (the renderer's world plane z = 0, through the head centre) spans the renderer's
image, +-VIEW_HALF_EXTENT: a point at depth dz off that plane lands dz / 100 of its distance from
the image centre away from the renderer's pixel (<= 0.3 px at 64 px for the head's +-0.9 depth).
Pixels are EG3D's: centre (j + 0.5, i + 0.5) / R, row i downwards, as the renderer's.

In the rendering tab's angles (shared/rendering3d.py `View`: look-at camera, positive yaw moves the
camera to its right, i.e. the face turns to the image left) a renderer view is about
View(yaw=-yaw, pitch=pitch) at `DEMO_FOV_DEGREES` with radius `CAMERA_DISTANCE` and pivot
(0, -0.14, 0) (exact when pitch or yaw is 0 up to the 0.14 / 100 rad tilt, else without the roll).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from shared.portraits import CAMERA_Z, HEAD_CENTER, VIEW_HALF_EXTENT, head_rotation

__all__ = ["CAMERA_DISTANCE", "DEMO_FOV_DEGREES", "FOCAL", "LOOK_AT_PIVOT", "look_at_angles",
           "portrait_cam2world", "portrait_camera", "portrait_intrinsics", "project_points",
           "project_portrait", "ray_depth_from_portrait"]

CAMERA_DISTANCE = 100.0                              # camera to the focus plane, world units
FOCAL = CAMERA_DISTANCE / (2 * VIEW_HALF_EXTENT)     # focal length in image widths (37.88)
#: the field of view that eg3d `fov_to_intrinsics` (official constants) turns into FOCAL
DEMO_FOV_DEGREES = 360 / 3.14159 * math.atan(1 / (1.414 * FOCAL))
LOOK_AT_PIVOT = (0.0, -HEAD_CENTER[1], 0.0)          # the image centre's ray at the frontal view


def _angles(yaw: float | Tensor, pitch: float | Tensor) -> tuple[Tensor, Tensor]:
    yaw = torch.as_tensor(yaw, dtype=torch.float32).reshape(-1)
    pitch = torch.as_tensor(pitch, dtype=torch.float32).reshape(-1)
    n = max(len(yaw), len(pitch))
    return yaw.expand(n), pitch.expand(n)


def portrait_cam2world(yaw: float | Tensor, pitch: float | Tensor) -> Tensor:
    """cam2world [N, 4, 4] float32 (OpenCV axes, EG3D world = head frame) of renderer views.

    Args:
        yaw, pitch: the renderer's view factors in degrees (floats or [N] tensors; broadcast).
    """
    yaw, pitch = _angles(yaw, pitch)
    rt = head_rotation(yaw, pitch).transpose(1, 2)                     # [N, 3, 3] world -> head
    eye = torch.tensor([0.0, 0.0, CAMERA_DISTANCE], dtype=torch.float64) - torch.tensor(HEAD_CENTER,
                                                                                      dtype=torch.float64)
    pose = torch.eye(4, dtype=torch.float64).repeat(len(yaw), 1, 1)
    pose[:, :3, 0], pose[:, :3, 1], pose[:, :3, 2] = rt[:, :, 0], -rt[:, :, 1], -rt[:, :, 2]
    pose[:, :3, 3] = rt @ eye
    return pose.float()


def portrait_intrinsics() -> Tensor:
    """Normalised intrinsics [3, 3]: focal FOCAL image widths, principal point at the centre."""
    return torch.tensor([[FOCAL, 0, 0.5], [0, FOCAL, 0.5], [0, 0, 1]], dtype=torch.float32)


def portrait_camera(yaw: float | Tensor, pitch: float | Tensor) -> Tensor:
    """EG3D camera vectors c [N, 25] of renderer views (yaw, pitch in degrees)."""
    pose = portrait_cam2world(yaw, pitch)
    k = portrait_intrinsics().reshape(1, 9).expand(len(pose), 9)
    return torch.cat([pose.reshape(-1, 16), k], dim=1)


def project_points(c: Tensor, points: Tensor, size: int) -> Tensor:
    """Pinhole projection of world points [N, P, 3] by EG3D cameras c [N, 25] into pixel
    coordinates [N, P, 2] (column, row; pixel (i, j) covers [j, j+1) x [i, i+1)) of a size x size image."""
    pose, k = c[:, :16].reshape(-1, 4, 4), c[:, 16:25].reshape(-1, 3, 3)
    cam = (points - pose[:, None, :3, 3]) @ pose[:, :3, :3]            # [N, P, 3] camera coordinates
    uv = cam @ k.transpose(1, 2)
    return uv[..., :2] / uv[..., 2:3] * size


def project_portrait(points: Tensor, yaw: float | Tensor, pitch: float | Tensor, size: int) -> Tensor:
    """Where the renderer draws head-frame points [N, P, 3] at view (yaw, pitch) [deg]: pixel
    coordinates [N, P, 2] (column, row) of its orthographic camera, as `project_points`."""
    yaw, pitch = _angles(yaw, pitch)
    world = points.double() @ head_rotation(yaw, pitch).transpose(1, 2) + torch.tensor(HEAD_CENTER,
                                                                                       dtype=torch.float64)
    col = (world[..., 0] + VIEW_HALF_EXTENT) / (2 * VIEW_HALF_EXTENT) * size
    row = (VIEW_HALF_EXTENT - world[..., 1]) / (2 * VIEW_HALF_EXTENT) * size
    return torch.stack([col, row], -1).float()


def ray_depth_from_portrait(depth: Tensor) -> Tensor:
    """The renderer's depth maps [N, H, W] (distance from its camera plane; inf on the background)
    as EG3D depths [N, 1, H, W]: distance along each pixel's ray from the `portrait_camera`."""
    size = depth.shape[-1]
    x = ((torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5) / FOCAL
    off_axis = torch.sqrt(1 + x[None, :] ** 2 + x[:, None] ** 2)     # 1 / cos of each ray's angle
    return ((depth - CAMERA_Z + CAMERA_DISTANCE) * off_axis).unsqueeze(1)


def look_at_angles(yaw: float | Tensor, pitch: float | Tensor) -> tuple[Tensor, Tensor]:
    """EG3D look-at angles (radians; `look_at_pose` / `EG3DGenerator.camera`) whose camera sits in
    the direction of the renderer view (yaw, pitch) [deg]: the same viewpoint without the roll."""
    yaw, pitch = _angles(yaw, pitch)
    a, b = torch.deg2rad(yaw.double()), torch.deg2rad(pitch.double())
    eg_yaw = torch.atan2(-torch.sin(a), torch.cos(a) * torch.cos(b))
    eg_pitch = math.pi / 2 * torch.cos(a) * torch.sin(b)   # look_at_pose: camera height = -2 pitch / pi
    return eg_yaw.float(), eg_pitch.float()
