"""Cameras and volume rendering of StyleNeRF (Gu et al., ICLR 2022; github.com/facebookresearch/StyleNeRF).

Pure tensor functions following facebookresearch/StyleNeRF@7f5610a058f27fcc360c6b972181983d7df794cb:
`dnnlib/camera.py` (`get_camera_mat`, `get_camera_pose` with angular cameras, `look_at`,
`arange_pixels`, `image_points_to_world`, `depth2pts_outside`, `sample_pdf`) and the compositing
of `training/stylenerf.py: CameraRay.calc_volume_weights`. The camera sits on a sphere around the
origin, world z up, and looks at the origin along its own -z axis; image x runs right and y up, in
[-1, 1] at pixel centres. Used by `shared.archs.stylenerf`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["NeRFCamera", "camera_from_angles", "camera_rays", "inverse_sphere_points", "pixel_grid",
           "positional_encoding", "project_points", "sample_pdf", "volume_weights"]


# ---- camera (dnnlib/camera.py conventions) -------------------------------------------------------
@dataclass(frozen=True)
class NeRFCamera:
    """A batch of StyleNeRF cameras: `intrinsics_inv` [N, 4, 4] (the official `camera_mat`, the
    inverse of diag(f, f, 1, 1) with f = 1 / tan(fov / 2)) and `cam2world` [N, 4, 4] (the official
    `world_mat`). The camera looks along its -z axis; image x runs right, y up, both in [-1, 1]."""
    intrinsics_inv: torch.Tensor
    cam2world: torch.Tensor

    def __post_init__(self):
        for name in ("intrinsics_inv", "cam2world"):
            t = getattr(self, name)
            if t.ndim != 3 or tuple(t.shape[1:]) != (4, 4):
                raise ValueError(f"{name} must have shape [N, 4, 4], got {list(t.shape)}")
        if self.intrinsics_inv.shape[0] != self.cam2world.shape[0]:
            raise ValueError("intrinsics_inv and cam2world must have the same batch size")

    @property
    def batch_size(self) -> int:
        return int(self.cam2world.shape[0])

    def to(self, device: torch.device | str) -> "NeRFCamera":
        return NeRFCamera(self.intrinsics_inv.to(device), self.cam2world.to(device))


def camera_from_angles(yaw: float, pitch: float, *, fov: float, radius: float = 1.0, batch_size: int = 1,
                       device: torch.device | str = "cpu") -> NeRFCamera:
    """The official `get_camera(mode=[u, v, r])` with `angular_camera=True`, from angles.

    Args:
        yaw: azimuth [rad] around the world z axis; 0 puts the camera on the +x axis (frontal).
        pitch: polar angle [rad] from +z; pi/2 is level, larger looks from below.
        fov: field of view [deg]. radius: distance of the camera from the origin.
    Returns:
        NeRFCamera with N = batch_size, float32 on `device`. The camera looks at the origin with
        world +z as up (`look_at`).
    """
    focal = np.float32(1.0 / np.tan(0.5 * fov * np.pi / 180.0))
    k = torch.tensor([[focal, 0, 0, 0], [0, focal, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.float32)
    k_inv = torch.inverse(k[None]).repeat(batch_size, 1, 1)
    loc = np.stack([np.sin(pitch) * np.cos(yaw), np.sin(pitch) * np.sin(yaw), np.cos(pitch)], -1)  # float64
    loc = torch.tensor(np.broadcast_to(loc, (batch_size, 3)).copy()).float()
    loc = loc * (torch.ones(batch_size) * radius).unsqueeze(-1)
    z_axis = _unit(loc)
    up = torch.tensor([0.0, 0.0, 1.0]).expand_as(z_axis)
    x_axis = _unit(torch.cross(up, z_axis, dim=-1))
    y_axis = _unit(torch.cross(z_axis, x_axis, dim=-1))
    rt = torch.eye(4).reshape(1, 4, 4).repeat(batch_size, 1, 1)
    rt[:, :3, :3] = torch.stack([x_axis, y_axis, z_axis], dim=-1)
    rt[:, :3, -1] = loc
    return NeRFCamera(k_inv.to(device), rt.to(device))


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(p=2, dim=-1, keepdim=True).clamp(min=1e-8)


def pixel_grid(resolution: int, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Pixel-centre image coordinates [N, res*res, 2] in row-major order, x right, y up (the official
    `arange_pixels(corner_aligned=False, invert_y_axis=True)`)."""
    u = 1 - 1 / resolution
    x = torch.linspace(-u, u, resolution)
    y = torch.linspace(-u, u, resolution)
    gx, gy = torch.meshgrid(x, y, indexing="ij")
    pix = torch.stack([gx, gy], -1).permute(1, 0, 2).reshape(1, -1, 2).repeat(batch_size, 1, 1)
    pix[..., -1] *= -1.0
    return pix.to(device)


def camera_rays(camera: NeRFCamera, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World positions of image points at camera depth 1 and the camera centre.

    Args: pixels [N, P, 2] image coordinates. Returns: (pixels_world [N, P, 3], origin [N, P, 3]).
    """
    n, p, _ = pixels.shape
    m = camera.cam2world @ camera.intrinsics_inv                        # [N, 4, 4]
    hom = torch.cat([pixels.permute(0, 2, 1), torch.ones(n, 2, p, device=pixels.device)], 1)
    hom[:, 2:3] = -hom[:, 2:3]                                          # depth -1 along the view axis
    pixels_world = (m @ hom)[:, :3].permute(0, 2, 1)
    centre = torch.zeros(n, 4, p, device=pixels.device)
    centre[:, -1] = 1.0
    origin = (m @ centre)[:, :3].permute(0, 2, 1)
    return pixels_world, origin


def project_points(points: torch.Tensor, camera: NeRFCamera, resolution: int) -> torch.Tensor:
    """World points [N, P, 3] -> (column, row) pixel positions [N, P, 2] in a res x res image
    (pixel centres at integers, row 0 at the top), inverting `camera_rays`."""
    world2cam = torch.inverse(camera.cam2world)
    hom = torch.cat([points, torch.ones_like(points[..., :1])], -1)
    cam = (world2cam @ hom.transpose(1, 2)).transpose(1, 2)[..., :3]   # [N, P, 3]
    focal = 1.0 / camera.intrinsics_inv[:, 0, 0]
    xy = cam[..., :2] / (-cam[..., 2:3]) * focal[:, None, None]
    col = ((xy[..., 0] + 1) * resolution - 1) / 2
    row = ((1 - xy[..., 1]) * resolution - 1) / 2
    return torch.stack([col, row], -1)


# ---- volume rendering (training/stylenerf.py VolumeRenderer, dnnlib/camera.py) ------------------
def positional_encoding(p: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """[..., D] -> [..., 2 * n_freqs * D]: sin and cos of 2^i * pi * p for i < n_freqs."""
    return torch.cat([torch.cat([torch.sin((2 ** i) * np.pi * p), torch.cos((2 ** i) * np.pi * p)], dim=-1)
                      for i in range(n_freqs)], dim=-1)


def volume_weights(sigma: torch.Tensor, depth: torch.Tensor, ray_vector: torch.Tensor | None,
                   last_dist: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Alpha compositing weights [N, P, S] and the transmittance left before the last sample [N, P].

    `depth` [N, P, S] is sorted; distances are scaled by |ray_vector| [N, P, 3]; the last interval
    is `last_dist` (> 0 also makes the last sample opaque, as the official code does)."""
    dists = depth[..., 1:] - depth[..., :-1]
    if ray_vector is not None:
        dists = dists * torch.norm(ray_vector, dim=-1, keepdim=True)
    dists = torch.cat([dists, torch.ones_like(dists[..., :1]) * last_dist], dim=-1)
    alpha = 1.0 - torch.exp(-F.relu(sigma) * dists)
    if last_dist > 0:
        alpha[..., -1] = 1
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :, :1]), 1.0 - alpha + 1e-10], dim=-1), dim=-1)[..., :-1]
    return alpha * trans, trans[..., -1]


def sample_pdf(bins: torch.Tensor, weights: torch.Tensor, n_samples: int, *, eps: float = 1e-5) -> torch.Tensor:
    """Deterministic inverse-CDF sampling (the official `sample_pdf(det=True)`, from nerf_pl).

    Args: bins [R, B+1] bin edges, weights [R, B]. Returns: samples [R, n_samples].
    The formulas are kept literally (weights + eps, pdf, cumsum, left searchsorted, small
    denominators set to 1): the last sample sits on a float-rounding discontinuity.
    """
    n_rays, n_bins = weights.shape
    weights = weights + eps
    pdf = weights / torch.sum(weights, -1, keepdim=True)
    cdf = torch.cumsum(pdf, -1)
    cdf = torch.cat([torch.zeros_like(cdf[:, :1]), cdf], -1)
    u = torch.linspace(0, 1, n_samples, device=bins.device).expand(n_rays, n_samples).contiguous()
    inds = torch.searchsorted(cdf, u)
    below = torch.clamp_min(inds - 1, 0)
    above = torch.clamp_max(inds, n_bins)
    inds_sampled = torch.stack([below, above], -1).view(n_rays, 2 * n_samples)
    cdf_g = torch.gather(cdf, 1, inds_sampled).view(n_rays, n_samples, 2)
    bins_g = torch.gather(bins, 1, inds_sampled).view(n_rays, n_samples, 2)
    denom = cdf_g[..., 1] - cdf_g[..., 0]
    denom[denom < eps] = 1
    return bins_g[..., 0] + (u - cdf_g[..., 0]) / denom * (bins_g[..., 1] - bins_g[..., 0])


def inverse_sphere_points(origin: torch.Tensor, direction: torch.Tensor, inv_depth: torch.Tensor) -> torch.Tensor:
    """NeRF++ background points (the official `depth2pts_outside`): the unit-sphere point the ray
    crosses, rotated towards the ray's closest point by the angle that inverse depth `inv_depth`
    gives, with `inv_depth` appended. origin, direction [..., 3]; inv_depth [...] -> [..., 4]."""
    d1 = -torch.sum(direction * origin, dim=-1) / torch.sum(direction * direction, dim=-1)
    p_mid = origin + d1.unsqueeze(-1) * direction
    p_mid_norm = torch.norm(p_mid, dim=-1)
    ray_d_cos = 1.0 / torch.norm(direction, dim=-1)
    d2 = torch.sqrt(1.0 - p_mid_norm * p_mid_norm) * ray_d_cos
    p_sphere = origin + (d1 + d2).unsqueeze(-1) * direction
    axis = torch.cross(origin, p_sphere, dim=-1)
    axis = axis / torch.norm(axis, dim=-1, keepdim=True)
    phi = torch.asin(p_mid_norm)
    theta = torch.asin(p_mid_norm * inv_depth)
    angle = (phi - theta).unsqueeze(-1)
    rotated = (p_sphere * torch.cos(angle) + torch.cross(axis, p_sphere, dim=-1) * torch.sin(angle)
               + axis * torch.sum(axis * p_sphere, dim=-1, keepdim=True) * (1.0 - torch.cos(angle)))
    rotated = rotated / torch.norm(rotated, dim=-1, keepdim=True)
    return torch.cat((rotated, inv_depth.unsqueeze(-1)), dim=-1)
