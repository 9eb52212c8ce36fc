"""Rendering 3D-aware generators: one camera for StyleNeRF and EG3D, single views with depth, orbit
videos and meshes from the density field.

Follows the official scripts: NVlabs/eg3d@7cf1fd1 `gen_samples.py` (frontal conditioning camera,
look-at pose at the model's pivot, `FOV_to_intrinsics`, `--shapes`: density on a cube grid of side
`box_warp`, marching cubes at level 10 as their README's ChimeraX recipe) and `gen_videos.py`
(orbit: yaw swings sinusoidally, pitch follows a quarter-phase cosine; the mapping keeps the frontal
conditioning camera so that identity does not drift, NVlabs/eg3d #28), and
facebookresearch/StyleNeRF@7f5610a `dnnlib/camera.py: get_camera` (yaw/pitch/fov, z up). Marching
cubes is scikit-image's (Lewiner et al. 2003); GLB export is trimesh's.

One camera convention for both architectures: yaw and pitch in degrees, 0/0 frontal, positive yaw
moves the camera to its own right around the subject, positive pitch moves it down (looking up);
the field of view is each architecture's official one (EG3D: `FOV_to_intrinsics`; StyleNeRF: the
full angle of the pinhole). Meshes are written in glTF axes: +y up, the face looking along +z.
Nothing here imports gradio; the 3D tab adapts these functions.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from shared.errors import InputError
from shared.latents import z_from_seeds

__all__ = ["ARCHS", "DEFAULT_FOV", "DEFAULT_LEVEL", "MESH_RESOLUTIONS", "DensityGrid", "Mesh", "Orbit",
           "RenderCancelled", "View", "ViewRender", "check_view", "depth_to_image", "density_grid", "extract_mesh",
           "generator_camera", "latent_for_seed", "orbit_views", "query_field", "render_image", "render_orbit",
           "render_view", "write_glb"]

ARCHS = ("eg3d", "stylenerf")
DEFAULT_FOV = {"eg3d": 18.837, "stylenerf": 12.0}      # gen_samples.py; conf/model/stylenerf_ffhq.yaml
DEFAULT_LEVEL = {"eg3d": 10.0, "stylenerf": 10.0}      # EG3D README's ChimeraX level; StyleNeRF ships none
MESH_RESOLUTIONS = (32, 64, 128, 256)
MAX_ORBIT_FRAMES = 240
YAW_LIMIT, PITCH_LIMIT, FOV_RANGE = 90.0, 60.0, (1.0, 90.0)
_CHUNK = 1 << 16                                        # points decoded per call

Progress = Callable[[float, str], None]
ShouldStop = Callable[[], bool]


class RenderCancelled(Exception):
    """The caller's stop flag fired between frames or grid chunks."""


@dataclass(frozen=True)
class View:
    """A camera: yaw and pitch [deg] around the subject (0, 0 = frontal), field of view [deg]."""
    yaw: float = 0.0
    pitch: float = 0.0
    fov: float | None = None           # None: the architecture's default (DEFAULT_FOV)


@dataclass(frozen=True)
class ViewRender:
    """img [1, 3, H, W] in about [-1, 1]; depth [1, 1, r, r] distance along each ray at the volume
    resolution r; seconds of rendering (latent to image), all on the CPU."""
    img: torch.Tensor
    depth: torch.Tensor
    seconds: float


@dataclass(frozen=True)
class Orbit:
    """img [F, 3, H, W], depth [F, 1, r, r] (CPU), the views rendered and the seconds taken."""
    img: torch.Tensor
    depth: torch.Tensor
    views: tuple[View, ...]
    seconds: float


@dataclass(frozen=True)
class DensityGrid:
    """sigma [R, R, R] float32, axes (x, y, z) of the model's world, at `origin + index * spacing`."""
    sigma: np.ndarray
    origin: np.ndarray                 # [3] world position of sigma[0, 0, 0]
    spacing: float
    arch: str


@dataclass(frozen=True)
class Mesh:
    """vertices [V, 3] float32 in glTF axes (model world units), faces [T, 3] int64, colors [V, 3]
    uint8 (the field's RGB at each vertex), and the density level it was cut at."""
    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray
    level: float


# ---- cameras and latents ---------------------------------------------------------------------------
def _arch(G: torch.nn.Module) -> str:
    arch = getattr(G, "arch", None)
    if arch not in ARCHS:
        raise InputError(f"This is a {arch or type(G).__name__} model; 3D rendering needs a StyleNeRF or EG3D "
                         "generator.")
    return arch


def check_view(view: View) -> View:
    """The view with finite angles inside the limits (InputError otherwise)."""
    for name, value, most in (("Yaw", view.yaw, YAW_LIMIT), ("Pitch", view.pitch, PITCH_LIMIT)):
        if not (math.isfinite(float(value)) and abs(float(value)) <= most):
            raise InputError(f"{name} must be between -{most:g} and {most:g} degrees, not {value}.")
    lo, hi = FOV_RANGE
    if view.fov is not None and not (math.isfinite(float(view.fov)) and lo <= float(view.fov) <= hi):
        raise InputError(f"The field of view must be between {lo:g} and {hi:g} degrees, not {view.fov}.")
    return view


def generator_camera(G: torch.nn.Module, view: View, *, device: torch.device | str = "cpu"):
    """The camera of `view` in G's own convention: EG3D c [1, 25] (look-at pose at the model's pivot
    and radius + intrinsics), StyleNeRF `NeRFCamera` (official get_camera, pitch measured from +z)."""
    check_view(view)
    arch = _arch(G)
    fov = DEFAULT_FOV[arch] if view.fov is None else float(view.fov)
    yaw, pitch = math.radians(view.yaw), math.radians(view.pitch)
    if arch == "eg3d":
        return G.camera(yaw, pitch, fov).to(device)
    return G.synthesis.camera(yaw, math.pi / 2 + pitch, fov=fov, device=device)


@torch.inference_mode()
def latent_for_seed(G: torch.nn.Module, seed: int, psi: float = 0.7) -> torch.Tensor:
    """ws [1, num_ws, w_dim] of a seed on G's device. EG3D maps with the frontal conditioning camera
    (gen_videos.py), truncation cutoff 14 as gen_samples.py; StyleNeRF truncates every row."""
    arch = _arch(G)
    if not (math.isfinite(float(psi)) and -1 <= float(psi) <= 2):
        raise InputError(f"Truncation ψ must be between -1 and 2, not {psi}.")
    device = G.w_avg.device
    z = z_from_seeds(G, [int(seed)]).to(device)
    if arch == "eg3d":
        c = G.camera(0.0, 0.0, DEFAULT_FOV["eg3d"]).to(device)
        return G.mapping(z, c, truncation_psi=float(psi), truncation_cutoff=14)
    return G.mapping(z, None, truncation_psi=float(psi))


# ---- rendering -----------------------------------------------------------------------------------
def _eg3d_render(G, planes, ws, view: View):
    from shared.archs.eg3d import RayDraws
    cfg = G.config
    res = cfg.neural_rendering_resolution
    draws = RayDraws.midpoints(1, res * res, cfg.depth_resolution, cfg.depth_resolution_importance,
                               device=planes.device)  # no jitter: views and video frames do not flicker
    out = G.render(planes, generator_camera(G, view, device=planes.device), ws, draws=draws)
    return out.image, out.image_depth


def render_image(G: torch.nn.Module, ws: torch.Tensor, view: View, *, planes: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Image [N, 3, R, R] and depth of ws [N, num_ws, w_dim] from `view`, differentiable (inversion
    optimises through it); `planes` reuses EG3D tri-planes computed from the same ws."""
    arch = _arch(G)
    if arch == "eg3d":
        return _eg3d_render(G, G.planes(ws) if planes is None else planes, ws, view)
    out = G.synthesis.render(ws, camera=generator_camera(G, view, device=ws.device))
    return out.img, out.depth


@torch.inference_mode()
def render_view(G: torch.nn.Module, ws: torch.Tensor, view: View) -> ViewRender:
    """Render latent ws [1, num_ws, w_dim] from `view`: the final image and the depth map (CPU)."""
    t0 = time.perf_counter()
    img, depth = render_image(G, ws.to(G.w_avg.device), view)
    return ViewRender(img.float().cpu(), depth.float().cpu(), time.perf_counter() - t0)


def orbit_views(frames: int, *, yaw_range: float = 30.0, pitch: float = 0.0, pitch_range: float | None = None,
                fov: float | None = None) -> tuple[View, ...]:
    """`frames` views of one closed loop (gen_videos.py's path): yaw = yaw_range * sin(2 pi t),
    pitch = pitch + pitch_range * cos(2 pi t), t = k / frames; pitch_range defaults to yaw_range / 4."""
    if not 2 <= int(frames) <= MAX_ORBIT_FRAMES:
        raise InputError(f"An orbit needs 2 to {MAX_ORBIT_FRAMES} frames, not {frames}.")
    amp = float(yaw_range)
    p_amp = amp / 4 if pitch_range is None else float(pitch_range)
    views = []
    for k in range(int(frames)):
        t = 2 * math.pi * k / int(frames)
        views.append(check_view(View(amp * math.sin(t), float(pitch) + p_amp * math.cos(t), fov)))
    return tuple(views)


@torch.inference_mode()
def render_orbit(G: torch.nn.Module, ws: torch.Tensor, views: tuple[View, ...], *, progress: Progress | None = None,
                 should_stop: ShouldStop | None = None) -> Orbit:
    """Render ws [1, num_ws, w_dim] from each view (EG3D's tri-planes are computed once).

    Raises RenderCancelled when `should_stop()` turns true between frames."""
    arch = _arch(G)
    t0 = time.perf_counter()
    ws = ws.to(G.w_avg.device)
    planes = G.planes(ws) if arch == "eg3d" else None
    imgs, depths = [], []
    for k, view in enumerate(views):
        if should_stop is not None and should_stop():
            raise RenderCancelled(f"stopped after {k} of {len(views)} frames")
        img, depth = render_image(G, ws, view, planes=planes)
        imgs.append(img.float().cpu())
        depths.append(depth.float().cpu())
        if progress is not None:
            progress((k + 1) / len(views), f"frame {k + 1} of {len(views)}")
    return Orbit(torch.cat(imgs), torch.cat(depths), tuple(views), time.perf_counter() - t0)


def depth_to_image(depth: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Depth [N, 1, r, r] -> grey image [N, 3, S, S] in [-1, 1]: near is white, far black, each
    image stretched over its own depth range; nearest up-sampling to `size` (None: keep r)."""
    d = depth.float()
    lo = d.amin(dim=(1, 2, 3), keepdim=True)
    hi = d.amax(dim=(1, 2, 3), keepdim=True)
    x = 1 - (d - lo) / (hi - lo).clamp_min(1e-8)
    if size is not None and size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="nearest")
    return (x * 2 - 1).expand(-1, 3, -1, -1).contiguous()


# ---- density field and meshes ----------------------------------------------------------------------
def _volume(G) -> tuple[float, np.ndarray]:
    """(half side, centre) of the cube that holds the foreground, in world units."""
    if _arch(G) == "eg3d":
        return G.config.box_warp / 2, np.zeros(3, np.float32)
    cfg = G.config
    radius = 0.5 * (cfg.range_radius[0] + cfg.range_radius[1])
    near, far = cfg.depth_range  # the foreground segment of each (unit-depth) ray from the camera
    return float(max(radius - near, far - radius)), np.zeros(3, np.float32)


@torch.inference_mode()
def query_field(G: torch.nn.Module, ws: torch.Tensor, points: torch.Tensor, *, planes: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Density and colour at world points [P, 3]: sigma [P] (EG3D: the decoder's raw density;
    StyleNeRF: relu of the foreground density) and rgb [P, 3] in [0, 1], on the CPU."""
    arch = _arch(G)
    dev = G.w_avg.device
    ws = ws.to(dev)
    sig, rgb = [], []
    if arch == "eg3d" and planes is None:
        planes = G.planes(ws)
    for chunk in points.split(_CHUNK):
        p = chunk.to(dev, torch.float32).unsqueeze(0)  # [1, P, 3]
        if arch == "eg3d":
            out = G.decode(planes, p)
            s, c = out.sigma[0, :, 0], out.rgb[0, :, :3]
        else:
            nerf = G.synthesis.fg_nerf
            feat, s_raw = nerf(p, None, ws[:, :G.config.fg_num_ws], None, None, (1, p.shape[1], 1))
            s, c = F.relu(s_raw[0]), (feat[0, :, :3] + 1) / 2
        sig.append(s.float().cpu())
        rgb.append(c.float().clamp(0, 1).cpu())
    return torch.cat(sig), torch.cat(rgb)


@torch.inference_mode()
def density_grid(G: torch.nn.Module, ws: torch.Tensor, resolution: int = 64, *, progress: Progress | None = None,
                 should_stop: ShouldStop | None = None) -> DensityGrid:
    """The density of ws [1, num_ws, w_dim] on a resolution^3 grid of cell centres over the cube
    that holds the foreground (EG3D: side box_warp; StyleNeRF: the rays' foreground segment)."""
    arch = _arch(G)
    if int(resolution) not in MESH_RESOLUTIONS:
        raise InputError(f"The grid resolution must be one of {', '.join(map(str, MESH_RESOLUTIONS))}, "
                         f"not {resolution}.")
    r = int(resolution)
    half, centre = _volume(G)
    spacing = 2 * half / r
    origin = centre - half + spacing / 2
    axis = torch.arange(r, dtype=torch.float32) * spacing
    planes = G.planes(ws.to(G.w_avg.device)) if arch == "eg3d" else None
    sigma = np.empty((r, r, r), np.float32)
    gy, gz = torch.meshgrid(axis, axis, indexing="ij")
    slab = max(1, _CHUNK // (r * r))  # x-slices per call
    for x0 in range(0, r, slab):
        if should_stop is not None and should_stop():
            raise RenderCancelled(f"stopped after {x0} of {r} slices")
        xs = axis[x0:x0 + slab]
        pts = torch.stack([xs[:, None, None].expand(-1, r, r), gy.expand(len(xs), -1, -1),
                           gz.expand(len(xs), -1, -1)], -1).reshape(-1, 3) + torch.from_numpy(origin)
        s, _ = query_field(G, ws, pts, planes=planes)
        sigma[x0:x0 + len(xs)] = s.reshape(len(xs), r, r).numpy()
        if progress is not None:
            progress(min(1.0, (x0 + len(xs)) / r), f"density grid {min(r, x0 + len(xs))} of {r} slices")
    return DensityGrid(sigma, origin.astype(np.float32), float(spacing), arch)


def _to_gltf(points: np.ndarray, arch: str) -> np.ndarray:
    """World -> glTF axes (+y up, face towards +z). EG3D's world already is (y up, camera at +z);
    StyleNeRF's is z up with the frontal camera on +x and image right along +y."""
    if arch == "eg3d":
        return points
    return points[:, [1, 2, 0]]


def extract_mesh(G: torch.nn.Module, ws: torch.Tensor, grid: DensityGrid, level: float | None = None) -> Mesh:
    """Marching cubes (scikit-image) on the grid at `level` (None: DEFAULT_LEVEL of the arch), with
    each vertex coloured by the field's RGB there. Raises InputError when the level is not crossed."""
    from skimage.measure import marching_cubes  # heavy; only needed here

    level = DEFAULT_LEVEL[grid.arch] if level is None else float(level)
    lo, hi = float(grid.sigma.min()), float(grid.sigma.max())
    if not (math.isfinite(level) and lo < level < hi):
        raise InputError(f"The density never crosses level {level:g} on this grid (it spans {lo:.3g} to {hi:.3g}); "
                         "pick a level inside that range.")
    # "descent": the object holds the larger values (density), so normals face out
    verts, faces, _, _ = marching_cubes(grid.sigma, level=level, spacing=(grid.spacing,) * 3,
                                        gradient_direction="descent")
    world = (verts + grid.origin).astype(np.float32)
    _, rgb = query_field(G, ws, torch.from_numpy(world))
    colors = (rgb.numpy() * 255).round().astype(np.uint8)
    return Mesh(_to_gltf(world, grid.arch).astype(np.float32), faces.astype(np.int64), colors, level)


def write_glb(mesh: Mesh, path: str | os.PathLike) -> str:
    """Write the mesh with vertex colours as a binary glTF (trimesh). Returns the path."""
    import trimesh  # heavy; only needed here

    alpha = np.full((len(mesh.colors), 1), 255, np.uint8)
    tm = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, vertex_colors=np.hstack([mesh.colors, alpha]),
                         process=False)
    path = os.fspath(path)
    tm.export(path, file_type="glb")
    return path
