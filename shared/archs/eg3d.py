"""EG3D tri-plane generator (Chan et al., "Efficient Geometry-aware 3D Generative Adversarial
Networks", CVPR 2022), reproducing NVlabs/eg3d@7cf1fd1 (`eg3d/training/triplane.py:
TriPlaneGenerator`, `training/volumetric_rendering/*`, `training/superresolution.py`,
`eg3d/camera_utils.py`) on the official weights.

A StyleGAN2 (our `StyleGAN2Generator`, 256 px, 96 channels) draws three 32-channel feature planes;
points along camera rays are projected onto the planes, bilinearly sampled, averaged and decoded by
a small MLP into density and 32 features; two-pass volume rendering (stratified, then importance
samples, MipRayMarcher2 compositing) gives a low-resolution feature image whose first three
channels are the raw RGB, and a StyleGAN2-block super-resolution network makes the final image.
The generator is conditioned on the 25-value camera vector `c` = cam2world (4x4, OpenCV axes:
x right, y down, z forward) flattened row-major, then the normalised intrinsics (3x3) flattened.
Every op runs in plain PyTorch (custom ops through `custom_ops`, reference path on the CPU). The
official renderer always jitters its samples with `torch.rand`; here the uniform draws come from a
`generator` or are passed in (`RayDraws`), which is how the parity vectors are reproduced.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from custom_ops import setup_filter, upsample2d
from shared.archs.layers import FullyConnectedLayer, truncate
from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator, StyledConv, ToRGB

__all__ = ["EG3DConfig", "EG3DGenerator", "PointSamples", "RayDraws", "Render", "SR_MODULES", "camera_vector",
           "fov_to_intrinsics", "look_at_pose", "ray_bundle"]

PLANE_CHANNELS = 32      # features per plane; the backbone draws 3 * 32 channels
BACKBONE_RESOLUTION = 256

# Super-resolution networks of training/superresolution.py, by official class name:
# (input resolution, interpolate only when smaller, antialias allowed,
#  ((out channels, resolution, upsamples), ...) for its two StyleGAN2 blocks).
SR_MODULES: dict[str, tuple[int, bool, bool, tuple[tuple[int, int, bool], ...]]] = {
    "SuperresolutionHybrid2X": (64, False, True, ((128, 64, False), (64, 128, True))),
    "SuperresolutionHybrid4X": (128, True, True, ((128, 128, False), (64, 256, True))),
    "SuperresolutionHybrid8X": (128, False, True, ((128, 256, True), (64, 512, True))),
    "SuperresolutionHybrid8XDC": (128, False, True, ((256, 256, True), (128, 512, True))),
    "SuperresolutionHybridDeepfp32": (128, True, False, ((128, 128, False), (64, 256, True))),
    # not official: the hub's 64 px demo 3D generator (training/demo3d), 32 px neural rendering
    "HubSuperresolution2X64": (32, False, True, ((64, 32, False), (32, 64, True))),
}


@dataclass(frozen=True)
class EG3DConfig:
    """Everything that defines an EG3D generator (shapes, rendering and camera defaults)."""
    z_dim: int = 512                      # input latent size
    w_dim: int = 512                      # intermediate latent size (the SR blocks need 512)
    c_dim: int = 25                       # conditioning size: 16 cam2world + 9 intrinsics
    img_resolution: int = 512             # final image size
    mapping_layers: int = 2               # mapping MLP depth (train.py: 2)
    mapping_lr: float = 0.01              # mapping learning-rate multiplier
    channel_base: int = 32768             # backbone channels = min(channel_base // res, channel_max)
    channel_max: int = 512
    conv_clamp: float | None = None       # backbone clamp (train.py: None)
    sr_module: str = "SuperresolutionHybrid8XDC"  # official class name, a key of SR_MODULES
    sr_conv_clamp: float | None = 256     # 256 when sr_num_fp16_res > 0 (the released models)
    sr_antialias: bool = True             # antialiased bilinear resize into the SR network
    sr_noise_mode: str = "none"           # superresolution_noise_mode: 'none', 'random' or 'const'
    decoder_lr_mul: float = 1.0           # decoder learning-rate multiplier (runtime gain)
    neural_rendering_resolution: int = 128  # rays per image side
    depth_resolution: int = 48            # stratified samples per ray
    depth_resolution_importance: int = 48  # importance samples per ray (0 = one pass)
    ray_start: float = 2.25               # near bound along each ray
    ray_end: float = 3.3                  # far bound along each ray
    box_warp: float = 1.0                 # side of the cube the planes span, centred at 0
    disparity_space_sampling: bool = False  # stratify in 1/depth instead of depth
    white_back: bool = False              # composite over white (ShapeNet)
    c_gen_conditioning_zero: bool = False  # mapping sees zeros instead of the camera
    c_scale: float = 1.0                  # multiplier on c for the mapping
    avg_camera_radius: float = 2.7        # default orbit radius (visualiser convention)
    avg_camera_pivot: tuple[float, float, float] = (0.0, 0.0, 0.2)  # default look-at point
    plane_resolution: int = BACKBONE_RESOLUTION  # tri-plane side (official: 256; the demo 3D model: 64)
    normalize_z: bool = True              # backbone PixelNorm of z (official); False for factor-coordinate z
    z_onehot: tuple[tuple[int, tuple[float, ...]], ...] = ()  # backbone arg-max groups of z (StyleGAN2Config)

    def __post_init__(self):
        object.__setattr__(self, "avg_camera_pivot", tuple(float(v) for v in self.avg_camera_pivot))
        object.__setattr__(self, "z_onehot", tuple((int(s), tuple(float(b) for b in offs))
                                                   for s, offs in self.z_onehot))
        if self.sr_module not in SR_MODULES:
            raise ValueError(f"sr_module must be one of {sorted(SR_MODULES)}, got {self.sr_module!r}")
        out_res = SR_MODULES[self.sr_module][3][-1][1]
        if self.img_resolution != out_res:
            raise ValueError(f"{self.sr_module} makes {out_res} px images, but img_resolution is {self.img_resolution}")
        if self.w_dim != 512:
            raise ValueError(f"EG3D's super-resolution blocks are built for w_dim=512, got {self.w_dim}")
        if self.sr_noise_mode not in ("none", "random", "const"):
            raise ValueError(f"sr_noise_mode must be 'none', 'random' or 'const', got {self.sr_noise_mode!r}")
        if self.depth_resolution < 2 or self.depth_resolution_importance < 0:
            raise ValueError("depth_resolution must be >= 2 and depth_resolution_importance >= 0")
        if not 0 < self.ray_start < self.ray_end:
            raise ValueError(f"need 0 < ray_start < ray_end, got {self.ray_start}, {self.ray_end}")

    @property
    def backbone(self) -> StyleGAN2Config:
        return StyleGAN2Config.nvlabs(z_dim=self.z_dim, w_dim=self.w_dim, c_dim=self.c_dim,
                                      img_resolution=self.plane_resolution, img_channels=3 * PLANE_CHANNELS,
                                      channel_base=self.channel_base, channel_max=self.channel_max,
                                      mapping_layers=self.mapping_layers, mapping_lr=self.mapping_lr,
                                      conv_clamp=self.conv_clamp, normalize_z=self.normalize_z,
                                      z_onehot=self.z_onehot)

    @property
    def num_ws(self) -> int:
        return self.backbone.num_ws

    def to_dict(self) -> dict:
        d = asdict(self)
        d["avg_camera_pivot"] = list(self.avg_camera_pivot)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EG3DConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown EG3D config keys {unknown}")
        return cls(**d)


@dataclass(frozen=True)
class RayDraws:
    """The uniform draws of one render (the official `torch.rand_like` / `torch.rand` calls).

    stratified: [N, rays, depth_resolution, 1] in [0, 1), jitter of the coarse samples.
    importance: [N * rays, depth_resolution_importance] in [0, 1), inverse-CDF positions.
    """
    stratified: torch.Tensor
    importance: torch.Tensor | None = None

    @classmethod
    def draw(cls, n: int, rays: int, depth: int, importance: int, *, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> "RayDraws":
        """Fresh draws in the official order (stratified first), from `generator` (None: torch's default)."""
        s = torch.rand((n, rays, depth, 1), generator=generator, device=device)
        i = torch.rand((n * rays, importance), generator=generator, device=device) if importance else None
        return cls(s, i)

    @classmethod
    def midpoints(cls, n: int, rays: int, depth: int, importance: int, *,
                  device: torch.device | str = "cpu") -> "RayDraws":
        """No jitter: bin centres for the coarse pass and evenly spaced CDF positions (flicker-free video)."""
        s = torch.full((n, rays, depth, 1), 0.5, device=device)
        i = ((torch.arange(importance, device=device) + 0.5) / importance).expand(n * rays, importance)
        return cls(s, i.contiguous() if importance else None)


@dataclass(frozen=True)
class Render:
    """One EG3D render. image [N, 3, R, R] in about [-1, 1]; image_raw [N, 3, r, r] (the first three
    feature channels); image_depth [N, 1, r, r] (distance along the ray); feature_image [N, 32, r, r]."""
    image: torch.Tensor
    image_raw: torch.Tensor
    image_depth: torch.Tensor
    feature_image: torch.Tensor

    def __getitem__(self, key: str) -> torch.Tensor:  # `out['image']`, as the official dict is read
        return getattr(self, key)


@dataclass(frozen=True)
class PointSamples:
    """Decoder output at query points: sigma [N, P, 1] raw density (the ray marcher applies
    softplus(sigma - 1)), rgb [N, P, 32] features in (-0.001, 1.001)."""
    sigma: torch.Tensor
    rgb: torch.Tensor


# --------------------------------------------------------------------------------------------
# Cameras (eg3d/camera_utils.py conventions)

def look_at_pose(yaw: float | torch.Tensor, pitch: float | torch.Tensor, pivot=(0.0, 0.0, 0.2), radius: float = 2.7,
                 *, batch_size: int = 1) -> torch.Tensor:
    """cam2world [N, 4, 4] of a camera looking at `pivot`, with no roll.

    As the official `LookAtPoseSampler.sample(pi/2 + yaw, pi/2 + pitch, pivot, radius=radius)`: the
    camera sits on the sphere of `radius` around the world origin (not around the pivot), at
    (r sin(phi) sin(yaw), r cos(phi), r sin(phi) cos(yaw)) with cos(phi) = -2 pitch / pi. World y
    points up: yaw 0 / pitch 0 is on the +z axis, positive yaw moves the camera towards +x, positive
    pitch moves it down. Columns are the camera's x (image right), y (image down) and z (forward)
    axes in world space, then its position (OpenCV convention).

    Args:
        yaw, pitch: radians (floats or [N] tensors). pivot: look-at point (3 numbers or [3] tensor).
        radius: distance from the world origin. batch_size: rows when yaw and pitch are floats.
    """
    # pi/2 is added in double precision, as the official call sites do before the float32 tensor exists
    h = (torch.as_tensor(yaw, dtype=torch.float64).reshape(-1, 1) + math.pi / 2).float()
    v = (torch.as_tensor(pitch, dtype=torch.float64).reshape(-1, 1) + math.pi / 2).float()
    n = max(h.shape[0], v.shape[0], batch_size)
    h, v = h.expand(n, 1), v.expand(n, 1)
    v = torch.clamp(v, 1e-5, math.pi - 1e-5)
    phi = torch.arccos(1 - 2 * (v / math.pi))
    origin = torch.cat([radius * torch.sin(phi) * torch.cos(math.pi - h), radius * torch.cos(phi),
                        radius * torch.sin(phi) * torch.sin(math.pi - h)], dim=1)  # [N, 3]
    target = torch.as_tensor(pivot, dtype=torch.float32, device=h.device).reshape(1, 3)
    forward = _unit(_unit(target - origin))  # normalised twice, as LookAtPoseSampler + create_cam2world_matrix do
    up = torch.tensor([0.0, 1.0, 0.0], device=h.device).expand_as(forward)
    right = -_unit(torch.cross(up, forward, dim=-1))
    down = _unit(torch.cross(forward, right, dim=-1))  # "up" in the official code; points to image-down
    pose = torch.eye(4, device=h.device).repeat(n, 1, 1)
    pose[:, :3, :3] = torch.stack((right, down, forward), dim=-1)
    pose[:, :3, 3] = origin
    return pose


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / torch.norm(v, dim=-1, keepdim=True)


def fov_to_intrinsics(fov_degrees: float) -> torch.Tensor:
    """Normalised intrinsics [3, 3] (principal point 0.5, 0.5) for a vertical field of view.

    Keeps the official `FOV_to_intrinsics` constants (pi as 3.14159, sqrt 2 as 1.414): 18.837 degrees
    (gen_samples.py) gives a focal length of 4.2634 image widths; the FFHQ camera labels and
    gen_videos.py use 4.2647.
    """
    focal = float(1 / (math.tan(fov_degrees * 3.14159 / 360) * 1.414))
    return torch.tensor([[focal, 0, 0.5], [0, focal, 0.5], [0, 0, 1]], dtype=torch.float32)


def camera_vector(cam2world: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """c [N, 25] = cam2world [N, 4, 4] flattened row-major, then intrinsics [N or 1, 3, 3] (or [3, 3])."""
    cam2world = cam2world.reshape(-1, 16)
    k = intrinsics.reshape(-1, 9).to(cam2world).expand(cam2world.shape[0], 9)
    return torch.cat([cam2world, k], dim=1)


def ray_bundle(cam2world: torch.Tensor, intrinsics: torch.Tensor, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One ray per pixel centre (official `RaySampler`): origins, unit directions [N, R*R, 3], row-major
    pixels (ray k is row k // R, column k % R). Pixel centres are ((j + 0.5) / R, (i + 0.5) / R) in
    the normalised image plane; skew is honoured."""
    n, dev = cam2world.shape[0], cam2world.device
    idx = torch.arange(resolution, dtype=torch.float32, device=dev) * (1.0 / resolution) + (0.5 / resolution)
    y, x = torch.meshgrid(idx, idx, indexing="ij")
    x, y = x.reshape(1, -1).expand(n, -1), y.reshape(1, -1).expand(n, -1)  # [N, M]
    fx, fy = intrinsics[:, 0, 0, None], intrinsics[:, 1, 1, None]
    cx, cy, sk = intrinsics[:, 0, 2, None], intrinsics[:, 1, 2, None], intrinsics[:, 0, 1, None]
    ones = torch.ones_like(x)
    x_lift = (x - cx + cy * sk / fy - sk * y / fy) / fx * ones
    y_lift = (y - cy) / fy * ones
    cam_points = torch.stack((x_lift, y_lift, ones, ones), dim=-1)  # [N, M, 4]
    world = torch.bmm(cam2world, cam_points.permute(0, 2, 1)).permute(0, 2, 1)[:, :, :3]
    origin = cam2world[:, :3, 3]
    dirs = F.normalize(world - origin[:, None, :], dim=2)
    return origin.unsqueeze(1).repeat(1, dirs.shape[1], 1), dirs


# --------------------------------------------------------------------------------------------
# Tri-plane sampling, decoder, volume rendering

def sample_planes(planes: torch.Tensor, points: torch.Tensor, box_warp: float) -> torch.Tensor:
    """Bilinear features of points on the three planes: planes [N, 3, C, H, W], points [N, M, 3] ->
    [N, 3, M, C]. Plane 0 is spanned by (x, y), plane 1 by (x, z), plane 2 by (z, x), each
    covering [-box_warp/2, box_warp/2]; outside is zero."""
    n, p, c, h, w = planes.shape
    m = points.shape[1]
    pts = (2 / box_warp) * points
    x, y, z = pts.unbind(-1)
    uv = torch.stack([torch.stack([x, y], -1), torch.stack([x, z], -1), torch.stack([z, x], -1)], dim=1)  # [N, 3, M, 2]
    out = F.grid_sample(planes.reshape(n * p, c, h, w), uv.reshape(n * p, 1, m, 2).float(), mode="bilinear",
                        padding_mode="zeros", align_corners=False)  # [N*3, C, 1, M]
    return out.permute(0, 3, 2, 1).reshape(n, p, m, c)


class TriPlaneDecoder(nn.Module):
    """OSGDecoder: mean over planes -> FC(32, 64) -> softplus -> FC(64, 1 + 32); sigmoid-clamped features."""

    def __init__(self, in_features: int = PLANE_CHANNELS, hidden: int = 64, out_features: int = PLANE_CHANNELS,
                 lr_multiplier: float = 1.0):
        super().__init__()
        self.fc0 = FullyConnectedLayer(in_features, hidden, lr_multiplier=lr_multiplier)
        self.fc1 = FullyConnectedLayer(hidden, 1 + out_features, lr_multiplier=lr_multiplier)

    def forward(self, features: torch.Tensor) -> PointSamples:
        x = features.mean(1)  # [N, M, C]
        n, m, c = x.shape
        x = self.fc1(F.softplus(self.fc0(x.reshape(n * m, c)))).reshape(n, m, -1)
        rgb = torch.sigmoid(x[..., 1:]) * (1 + 2 * 0.001) - 0.001  # Mip-NeRF's widened sigmoid
        return PointSamples(sigma=x[..., 0:1], rgb=rgb)


def composite(colors: torch.Tensor, densities: torch.Tensor, depths: torch.Tensor, *, white_back: bool = False):
    """MipRayMarcher2 over [N, R, S, C] colours, [N, R, S, 1] densities and depths.

    Returns rgb [N, R, C] in [-1, 1], depth [N, R, 1], weights [N, R, S-1, 1]. Densities and
    colours are averaged over neighbouring samples; depth is clamped to the min/max sample depth
    of the whole batch, as the official code does.
    """
    deltas = depths[:, :, 1:] - depths[:, :, :-1]
    colors_mid = (colors[:, :, :-1] + colors[:, :, 1:]) / 2
    densities_mid = F.softplus((densities[:, :, :-1] + densities[:, :, 1:]) / 2 - 1)
    depths_mid = (depths[:, :, :-1] + depths[:, :, 1:]) / 2
    alpha = 1 - torch.exp(-(densities_mid * deltas))
    transmit = torch.cat([torch.ones_like(alpha[:, :, :1]), 1 - alpha + 1e-10], -2)
    weights = alpha * torch.cumprod(transmit, -2)[:, :, :-1]
    rgb = torch.sum(weights * colors_mid, -2)
    total = weights.sum(2)
    depth = torch.nan_to_num(torch.sum(weights * depths_mid, -2) / total, float("inf"))
    depth = torch.clamp(depth, torch.min(depths), torch.max(depths))
    if white_back:
        rgb = rgb + 1 - total
    return rgb * 2 - 1, depth, weights


def stratified_depths(n: int, rays: int, start: float, end: float, count: int, u: torch.Tensor,
                      disparity: bool = False) -> torch.Tensor:
    """Coarse sample depths [N, R, count, 1]: evenly spaced bins jittered by u (same shape)."""
    if disparity:
        t = torch.linspace(0, 1, count, device=u.device).reshape(1, 1, count, 1).repeat(n, rays, 1, 1)
        t = t + u * (1 / (count - 1))
        return 1.0 / (1.0 / start * (1.0 - t) + 1.0 / end * t)
    d = torch.linspace(start, end, count, device=u.device).reshape(1, 1, count, 1).repeat(n, rays, 1, 1)
    return d + u * ((end - start) / (count - 1))


def importance_depths(depths: torch.Tensor, weights: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Fine sample depths [N, R, K, 1] drawn from the coarse weights (smoothed by a 2-tap max then a
    2-tap mean, plus 0.01) by inverse-CDF sampling at the positions u [N*R, K]."""
    n, r, s, _ = depths.shape
    z = depths.reshape(n * r, s)
    w = weights.reshape(n * r, -1)
    w = F.max_pool1d(w.unsqueeze(1).float(), 2, 1, padding=1)
    w = F.avg_pool1d(w, 2, 1).squeeze(1) + 0.01
    mids = 0.5 * (z[:, :-1] + z[:, 1:])
    return sample_pdf(mids, w[:, 1:-1], u).reshape(n, r, u.shape[1], 1)


def sample_pdf(bins: torch.Tensor, weights: torch.Tensor, u: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Inverse-CDF samples: bins [B, S+1] edges, weights [B, S], u [B, K] in [0, 1) -> [B, K]."""
    b, s = weights.shape
    pdf = (weights + eps) / torch.sum(weights + eps, -1, keepdim=True)
    cdf = torch.cumsum(pdf, -1)
    cdf = torch.cat([torch.zeros_like(cdf[:, :1]), cdf], -1)
    u = u.contiguous()
    inds = torch.searchsorted(cdf, u, right=True)
    below, above = torch.clamp_min(inds - 1, 0), torch.clamp_max(inds, s)
    idx = torch.stack([below, above], -1).view(b, -1)
    cdf_g = torch.gather(cdf, 1, idx).view(b, -1, 2)
    bins_g = torch.gather(bins, 1, idx).view(b, -1, 2)
    denom = cdf_g[..., 1] - cdf_g[..., 0]
    denom = torch.where(denom < eps, torch.ones_like(denom), denom)  # empty bins are never chosen anyway
    return bins_g[..., 0] + (u - cdf_g[..., 0]) / denom * (bins_g[..., 1] - bins_g[..., 0])


def _merge(d1, c1, s1, d2, c2, s2):
    """Concatenate two sample sets along the ray and sort them by depth."""
    d, c, s = torch.cat([d1, d2], -2), torch.cat([c1, c2], -2), torch.cat([s1, s2], -2)
    _, order = torch.sort(d, dim=-2)
    return (torch.gather(d, -2, order), torch.gather(c, -2, order.expand(-1, -1, -1, c.shape[-1])),
            torch.gather(s, -2, order))


# --------------------------------------------------------------------------------------------
# Super-resolution

class _SRBlock(nn.Module):
    """A StyleGAN2 synthesis block of the SR network: [2x up] conv, conv, toRGB added to the skip image."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, up: bool, w_dim: int,
                 conv_clamp: float | None):
        super().__init__()
        self.up = up
        self.conv0 = StyledConv(in_channels, out_channels, w_dim, upsample=up, conv_clamp=conv_clamp)
        self.conv1 = StyledConv(out_channels, out_channels, w_dim, conv_clamp=conv_clamp)
        self.torgb = ToRGB(out_channels, 3, w_dim, upsample=False, conv_clamp=conv_clamp)
        self.register_buffer("noise0", torch.randn(1, 1, resolution, resolution))
        self.register_buffer("noise1", torch.randn(1, 1, resolution, resolution))
        self.register_buffer("skip_filter", setup_filter([1, 3, 3, 1]))

    def forward(self, x, img, w, noise_mode: str, generator):
        for conv, buf in ((self.conv0, self.noise0), (self.conv1, self.noise1)):
            x = conv(x, conv.conv.modulation(w), _noise(buf, noise_mode, generator))
        if self.up:
            img = upsample2d(img, self.skip_filter)
        return x, img + self.torgb(x, self.torgb.conv.modulation(w))


def _noise(buffer: torch.Tensor, mode: str, generator):
    if mode == "none":
        return None
    if mode == "const":
        return lambda x: buffer
    if mode == "random":
        return lambda x: torch.randn((x.shape[0], 1, x.shape[2], x.shape[3]), generator=generator, device=x.device)
    raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {mode!r}")


class SuperResolution(nn.Module):
    """EG3D's SuperresolutionHybrid* networks (see SR_MODULES); every block uses the last ws row."""

    def __init__(self, kind: str, in_channels: int, w_dim: int, conv_clamp: float | None, antialias: bool):
        super().__init__()
        self.input_resolution, self.only_smaller, aa_ok, blocks = SR_MODULES[kind]
        self.antialias = antialias and aa_ok
        (c0, r0, u0), (c1, r1, u1) = blocks
        self.block0 = _SRBlock(in_channels, c0, r0, u0, w_dim, conv_clamp)
        self.block1 = _SRBlock(c0, c1, r1, u1, w_dim, conv_clamp)

    def forward(self, rgb, x, ws, noise_mode: str = "none", generator=None) -> torch.Tensor:
        w = ws[:, -1].to(torch.float32)
        r = self.input_resolution
        if (x.shape[-1] < r) if self.only_smaller else (x.shape[-1] != r):
            x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False, antialias=self.antialias)
            rgb = F.interpolate(rgb, size=(r, r), mode="bilinear", align_corners=False, antialias=self.antialias)
        x, rgb = self.block0(x, rgb, w, noise_mode, generator)
        x, rgb = self.block1(x, rgb, w, noise_mode, generator)
        return rgb


# --------------------------------------------------------------------------------------------

class EG3DGenerator(nn.Module):
    """EG3D TriPlaneGenerator. `G.mapping(z, c)` -> ws [N, num_ws, 512]; `G.synthesis(ws, c)` -> `Render`;
    `G(z, c)` both. `G.planes(ws)` / `G.render(planes, c)` split synthesis so that the planes of one
    latent can be reused across cameras (orbits), and `G.sample_mixed(points, dirs, ws)` decodes
    arbitrary points (meshes)."""

    arch = "eg3d"

    def __init__(self, config: EG3DConfig):
        super().__init__()
        cfg = self.config = config
        self.z_dim, self.w_dim, self.c_dim = cfg.z_dim, cfg.w_dim, cfg.c_dim
        self.img_resolution, self.img_channels = cfg.img_resolution, 3
        self.backbone = StyleGAN2Generator(cfg.backbone)
        self.num_ws = self.backbone.num_ws
        self.decoder = TriPlaneDecoder(lr_multiplier=cfg.decoder_lr_mul)
        self.superresolution = SuperResolution(cfg.sr_module, PLANE_CHANNELS, cfg.w_dim, cfg.sr_conv_clamp,
                                               cfg.sr_antialias)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.backbone.w_avg

    @property
    def neural_rendering_resolution(self) -> int:
        return self.config.neural_rendering_resolution

    # ---- latents -------------------------------------------------------------------------
    def mapping(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, *, update_emas: bool = False) -> torch.Tensor:
        """z [N, z_dim], c [N, 25] -> ws [N, num_ws, w_dim] (truncated toward `w_avg` on rows < cutoff)."""
        _check_camera(c, z.shape[0])
        c = torch.zeros_like(c) if self.config.c_gen_conditioning_zero else c * self.config.c_scale
        ws = self.backbone.mapping(z, c)
        return truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)

    def forward(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, noise_mode: str = "const", *,
                neural_rendering_resolution: int | None = None, draws: RayDraws | None = None,
                generator: torch.Generator | None = None, sr_noise_mode: str | None = None) -> Render:
        """`mapping` then `synthesis`; the same c conditions the mapping and places the camera."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, c, noise_mode=noise_mode, neural_rendering_resolution=neural_rendering_resolution,
                              draws=draws, generator=generator, sr_noise_mode=sr_noise_mode)

    # ---- synthesis -----------------------------------------------------------------------
    def synthesis(self, ws: torch.Tensor, c: torch.Tensor, *, noise_mode: str = "const",
                  neural_rendering_resolution: int | None = None, draws: RayDraws | None = None,
                  generator: torch.Generator | None = None, sr_noise_mode: str | None = None) -> Render:
        """ws [N, num_ws, w_dim] and camera c [N, 25] -> `Render`.

        Args:
            noise_mode: backbone noise ('const', 'random', 'none'); the official default is 'random'.
            neural_rendering_resolution: rays per side (None: the config's).
            draws: the uniform draws to use (None: drawn from `generator`, or torch's default one).
            sr_noise_mode: super-resolution noise (None: the config's `sr_noise_mode`).
        """
        return self.render(self.planes(ws, noise_mode=noise_mode, generator=generator), c, ws,
                           neural_rendering_resolution=neural_rendering_resolution, draws=draws,
                           generator=generator, sr_noise_mode=sr_noise_mode)

    def planes(self, ws: torch.Tensor, *, noise_mode: str = "const", generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """ws -> tri-plane features [N, 3, 32, 256, 256]."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        p = self.backbone.synthesis(ws.to(torch.float32), noise_mode=noise_mode, generator=generator)
        return p.reshape(p.shape[0], 3, PLANE_CHANNELS, p.shape[-2], p.shape[-1])

    def render(self, planes: torch.Tensor, c: torch.Tensor, ws: torch.Tensor, *,
               neural_rendering_resolution: int | None = None, draws: RayDraws | None = None,
               generator: torch.Generator | None = None, sr_noise_mode: str | None = None) -> Render:
        """Volume-render `planes` from camera c [N, 25], then super-resolve with ws (last row)."""
        cfg = self.config
        n = planes.shape[0]
        _check_camera(c, n)
        res = int(neural_rendering_resolution or cfg.neural_rendering_resolution)
        origins, dirs = ray_bundle(c[:, :16].reshape(-1, 4, 4), c[:, 16:25].reshape(-1, 3, 3), res)
        if draws is None:
            draws = RayDraws.draw(n, res * res, cfg.depth_resolution, cfg.depth_resolution_importance,
                                  generator=generator, device=planes.device)
        features, depth = self.march(planes, origins, dirs, draws)
        feature_image = features.permute(0, 2, 1).reshape(n, features.shape[-1], res, res).contiguous()
        depth_image = depth.permute(0, 2, 1).reshape(n, 1, res, res)
        rgb = feature_image[:, :3]
        image = self.superresolution(rgb, feature_image, ws, noise_mode=sr_noise_mode or cfg.sr_noise_mode,
                                     generator=generator)
        return Render(image=image, image_raw=rgb, image_depth=depth_image, feature_image=feature_image)

    def march(self, planes: torch.Tensor, origins: torch.Tensor, dirs: torch.Tensor, draws: RayDraws):
        """Two-pass volume rendering of rays [N, R, 3] -> features [N, R, 32], depth [N, R, 1]."""
        cfg = self.config
        n, r, _ = origins.shape
        k = cfg.depth_resolution_importance
        _check_draws(draws, n, r, cfg.depth_resolution, k)
        depths = stratified_depths(n, r, cfg.ray_start, cfg.ray_end, cfg.depth_resolution,
                                   draws.stratified.to(origins), cfg.disparity_space_sampling)
        colors, sigmas = self._along_rays(planes, origins, dirs, depths)
        if k > 0:
            _, _, weights = composite(colors, sigmas, depths, white_back=cfg.white_back)
            with torch.no_grad():
                fine = importance_depths(depths, weights, draws.importance.to(origins))
            colors_f, sigmas_f = self._along_rays(planes, origins, dirs, fine)
            depths, colors, sigmas = _merge(depths, colors, sigmas, fine, colors_f, sigmas_f)
        rgb, depth, _ = composite(colors, sigmas, depths, white_back=cfg.white_back)
        return rgb, depth

    def _along_rays(self, planes, origins, dirs, depths):
        n, r, s, _ = depths.shape
        points = (origins.unsqueeze(-2) + depths * dirs.unsqueeze(-2)).reshape(n, -1, 3)
        out = self.decoder(sample_planes(planes, points, self.config.box_warp))
        return out.rgb.reshape(n, r, s, -1), out.sigma.reshape(n, r, s, 1)

    def sample_mixed(self, coordinates: torch.Tensor, directions: torch.Tensor | None, ws: torch.Tensor, *,
                     noise_mode: str = "const") -> PointSamples:
        """Decode points [N, P, 3] (world units; the planes span +-box_warp/2) for latents ws.
        Directions are accepted for the official signature; EG3D's decoder ignores them."""
        return self.decode(self.planes(ws, noise_mode=noise_mode), coordinates)

    def decode(self, planes: torch.Tensor, coordinates: torch.Tensor) -> PointSamples:
        """Density and features at points [N, P, 3] from precomputed planes."""
        return self.decoder(sample_planes(planes, coordinates, self.config.box_warp))

    # ---- cameras ---------------------------------------------------------------------------
    def camera(self, yaw: float | torch.Tensor = 0.0, pitch: float | torch.Tensor = 0.0, fov_degrees: float = 18.837,
               *, radius: float | None = None, batch_size: int = 1) -> torch.Tensor:
        """c [N, 25] for a camera looking at the model's average pivot (as gen_samples.py builds it)."""
        cfg = self.config
        pose = look_at_pose(yaw, pitch, cfg.avg_camera_pivot, cfg.avg_camera_radius if radius is None else radius,
                            batch_size=batch_size)
        return camera_vector(pose, fov_to_intrinsics(fov_degrees))


def _check_camera(c: torch.Tensor, n: int) -> None:
    if c is None or c.ndim != 2 or c.shape[1] != 25 or c.shape[0] != n:
        got = None if c is None else list(c.shape)
        raise ValueError(f"c must be the camera vector [N={n}, 25] (16 cam2world + 9 intrinsics), got {got}")


def _check_draws(draws: RayDraws, n: int, rays: int, depth: int, importance: int) -> None:
    want = (n, rays, depth, 1)
    if tuple(draws.stratified.shape) != want:
        raise ValueError(f"draws.stratified must be {list(want)}, got {list(draws.stratified.shape)}")
    if importance and (draws.importance is None or tuple(draws.importance.shape) != (n * rays, importance)):
        got = None if draws.importance is None else list(draws.importance.shape)
        raise ValueError(f"draws.importance must be [{n * rays}, {importance}], got {got}")
