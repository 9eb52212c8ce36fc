"""Style mixing and latent interpolation as pure functions over a StyleGAN2/StyleGAN3 generator.

Style mixing follows Karras et al., "A Style-Based Generator Architecture for Generative
Adversarial Networks" (CVPR 2019, Sec. 3.1 and Fig. 3) and the `style_mixing.py` script of
NVlabs/stylegan2-ada-pytorch (github.com/NVlabs/stylegan2-ada-pytorch): a mix is the W+ code of
a destination image with some rows replaced by the same rows of a source image. In the grid the
sources run across the top, the destinations down the side, and cell (i, j) is destination i
with the chosen rows taken from source j.

Interpolation: spherical in Z (slerp, as in the "perceptual path length" of the same paper:
directions are slerped and norms lerped), linear in W and W+ (lerp). With `rows`, only those
rows of W+ move and the others stay at the first key latent's values.

Rows and layer ranges ('coarse', 'middle', 'fine'), seeds and W+ checks come from
`shared.latents` (see `resolve_rows` and `layer_ranges` there).

Videos are written with imageio and the ffmpeg binary bundled in imageio-ffmpeg (H.264,
yuv420p, playable in browsers); GIFs with Pillow.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from shared.errors import InputError
from shared.generation import check_noise_mode, input_transform, synthesize
from shared.images import image_grid, to_uint8_hwc
from shared.latents import LayerRange, as_cpu_float, check_ws, map_z, resolve_rows, stylegan_arch

__all__ = ["GridResult", "MAX_GRID", "MAX_FRAMES", "PAPER_FIGURE_BANDS", "mix_styles", "style_mix_images",
           "style_mixing_grid", "slerp",
           "lerp", "interpolation_path", "interpolate", "write_video", "write_gif"]

MAX_GRID = 6             # most sources and most destinations in one grid
MAX_FRAMES = 600         # most frames in one interpolation / video
MAX_FRAMES_PER_SEGMENT = 240
MAX_VIDEO_FPS = 60
MAX_GIF_FPS = 50         # GIF stores delays in 1/100 s; browsers slow down anything faster than 50 fps
SPACES = ("z", "w", "w+")
Progress = Callable[[float, str], object]


# ---- style mixing ---------------------------------------------------------------------------------
def mix_styles(G: torch.nn.Module, ws_a: torch.Tensor, ws_b: torch.Tensor,
               rows: str | LayerRange | Iterable[int | str]) -> torch.Tensor:
    """ws_a with the chosen rows taken from ws_b.

    Args:
        G: the generator both codes belong to (for num_ws and the named ranges).
        ws_a: [N, num_ws, w_dim] (or [num_ws, w_dim]): the destination, keeps all other rows.
        ws_b: same shape, or batch 1 (broadcast): gives the chosen rows.
        rows: see `resolve_rows`.
    Returns:
        ws [N, num_ws, w_dim] float32 on the CPU (a new tensor).
    """
    a, b = check_ws(G, ws_a, "destination"), check_ws(G, ws_b, "source")
    if a.shape[0] != b.shape[0]:
        if b.shape[0] == 1:
            b = b.expand(a.shape[0], -1, -1)
        elif a.shape[0] == 1:
            a = a.expand(b.shape[0], -1, -1)
        else:
            raise InputError(f"Give as many source latents as destination latents ({b.shape[0]} vs {a.shape[0]}), or one.")
    idx = list(resolve_rows(G, rows))
    out = a.clone()
    out[:, idx] = b[:, idx]
    return out


def _synthesize(G: torch.nn.Module, ws: torch.Tensor, *, noise_mode: str, noise_seed: int,
                batch_size: int = 8, progress: Progress | None = None, what: str = "image") -> torch.Tensor:
    """ws [N, num_ws, w_dim] -> images [N, 3, H, W] float32 CPU in [-1, 1], in batches."""
    check_noise_mode(noise_mode)
    is_sg3 = stylegan_arch(G) == "stylegan3"
    device = next(G.parameters()).device
    out = []
    n = ws.shape[0]
    with torch.inference_mode(), (input_transform(G, (0.0, 0.0), 0.0) if is_sg3 else nullcontext()):
        for start in range(0, n, batch_size):
            if progress is not None:
                progress(start / n, f"{what} {start + 1}-{min(start + batch_size, n)} of {n}")
            chunk = ws[start:start + batch_size].to(device)
            img = synthesize(G, chunk, noise_mode=noise_mode, noise_seed=int(noise_seed) + start)
            out.append(img.to("cpu", torch.float32).clamp_(-1, 1))
    if progress is not None:
        progress(1.0, f"{n} {what}(s) done")
    return torch.cat(out)


def style_mix_images(G: torch.nn.Module, ws_a: torch.Tensor, ws_b: torch.Tensor,
                     rows: str | LayerRange | Iterable[int | str], *, noise_mode: str = "const",
                     noise_seed: int = 0) -> torch.Tensor:
    """Images of `mix_styles(G, ws_a, ws_b, rows)`: [N, 3, H, W] float32 CPU in [-1, 1].

    `noise_mode` 'const' (default, deterministic), 'none', or 'random' drawn from `noise_seed`.
    """
    return _synthesize(G, mix_styles(G, ws_a, ws_b, rows), noise_mode=noise_mode, noise_seed=noise_seed)


@dataclass(frozen=True, eq=False)
class GridResult:
    """The paper's style-mixing figure and its parts (all on the CPU)."""
    sheet: np.ndarray           # uint8 [(D+1)*H, (S+1)*W, 3]: blank corner, sources on top, destinations left
    sources: torch.Tensor       # [S, 3, H, W] in [-1, 1]
    destinations: torch.Tensor  # [D, 3, H, W]
    mixes: torch.Tensor         # [D, S, 3, H, W]: destination i with `rows` from source j
    mixes_ws: torch.Tensor      # [D, S, num_ws, w_dim]
    rows: tuple[int, ...]       # the ws rows taken from the sources (the first destination's, per_row: each)
    per_row: tuple[tuple[int, ...], ...] = ()   # rows taken per destination (one entry per destination)


#: The StyleGAN paper's figure 3 (NVlabs/stylegan generate_figures.py): six destinations taking coarse
#: styles three times, middle styles twice, fine styles once from the sources.
PAPER_FIGURE_BANDS = ("coarse", "coarse", "coarse", "middle", "middle", "fine")


def style_mixing_grid(G: torch.nn.Module, sources_ws: torch.Tensor, destinations_ws: torch.Tensor,
                      rows: str | LayerRange | Iterable[int | str] | None, *, noise_mode: str = "const",
                      noise_seed: int = 0, fill: int = 255, progress: Progress | None = None,
                      per_destination: Sequence[str | LayerRange | Iterable[int | str]] | None = None) -> GridResult:
    """The style-mixing grid of the StyleGAN paper, for up to 6 sources x 6 destinations.

    Args:
        sources_ws: [S, num_ws, w_dim], shown across the top; they give the chosen rows.
        destinations_ws: [D, num_ws, w_dim], shown down the left side; they keep the other rows.
        rows: see `resolve_rows` (the same for every destination).
        fill: value of the empty top-left cell.
        per_destination: instead of `rows`, one row choice per destination, as the paper's figure 3
            (`PAPER_FIGURE_BANDS`: coarse, coarse, coarse, middle, middle, fine).
    Raises:
        InputError: more than 6 sources or destinations, none, wrong shapes, or bad rows.
    """
    src, dst = check_ws(G, sources_ws, "source"), check_ws(G, destinations_ws, "destination")
    s, d = src.shape[0], dst.shape[0]
    if s > MAX_GRID or d > MAX_GRID:
        raise InputError(f"The grid holds at most {MAX_GRID} sources and {MAX_GRID} destinations; "
                         f"got {s} sources and {d} destinations.")
    if per_destination is not None:
        if len(per_destination) != d:
            raise InputError(f"Give one row choice per destination: {d} destinations, {len(per_destination)} "
                             "choices.")
        per_row = tuple(tuple(resolve_rows(G, r)) for r in per_destination)
    else:
        per_row = (tuple(resolve_rows(G, rows)),) * d
    idx = per_row[0]
    mixed = dst[:, None].repeat(1, s, 1, 1)                     # [D, S, num_ws, w_dim]
    for i, take in enumerate(per_row):
        mixed[i, :, list(take)] = src[:, list(take)]
    all_ws = torch.cat([src, dst, mixed.reshape(d * s, *mixed.shape[2:])])
    images = _synthesize(G, all_ws, noise_mode=noise_mode, noise_seed=noise_seed, progress=progress)
    src_img, dst_img, mix_img = images[:s], images[s:s + d], images[s + d:].reshape(d, s, *images.shape[1:])
    u8 = to_uint8_hwc(images)
    tiles = [np.full_like(u8[:1], fill), u8[:s]]               # blank corner, then the sources
    for i in range(d):                                          # each destination, then its mixes
        tiles += [u8[s + i:s + i + 1], u8[s + d + i * s:s + d + (i + 1) * s]]
    sheet = image_grid(np.concatenate(tiles), columns=s + 1, fill=fill)
    return GridResult(sheet=sheet, sources=src_img, destinations=dst_img, mixes=mix_img, mixes_ws=mixed, rows=idx,
                      per_row=per_row)


# ---- interpolation --------------------------------------------------------------------------------
def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """a + t (b - a); `t` broadcasts against a and b (e.g. t [T, 1] with a, b [D])."""
    return a + torch.as_tensor(t, dtype=a.dtype) * (b - a)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation over the last dimension.

    The direction moves along the great circle from a/|a| to b/|b| and the norm is lerped from
    |a| to |b|, so unit vectors stay unit and the endpoints are exact. Nearly parallel (or
    antiparallel) pairs, where the great circle is ill-defined, fall back to lerp.

    Args:
        a, b: [..., D]. t: scalar or a tensor broadcasting against [..., 1] (e.g. [T, 1] with a, b [1, D]).
    """
    t = torch.as_tensor(t, dtype=a.dtype)
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na.clamp_min(eps), b / nb.clamp_min(eps)
    cos = (ua * ub).sum(-1, keepdim=True).clamp(-1, 1)
    omega = torch.acos(cos)
    so = torch.sin(omega)
    safe = so.abs() > 1e-4
    so_safe = torch.where(safe, so, torch.ones_like(so))
    direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / so_safe
    out = direction * lerp(na, nb, t)
    out = torch.where(safe, out, lerp(a, b, t))
    return out


def _check_frames_per_segment(frames_per_segment: int, segments: int) -> int:
    f = int(frames_per_segment)
    if not 1 <= f <= MAX_FRAMES_PER_SEGMENT:
        raise InputError(f"Frames per segment must be from 1 to {MAX_FRAMES_PER_SEGMENT}, not {frames_per_segment}.")
    total = segments * f + 1
    if total > MAX_FRAMES:
        raise InputError(f"That makes {total} frames; at most {MAX_FRAMES} fit in one video, "
                         "so use fewer frames per segment or fewer key latents.")
    return f


def interpolation_path(latents: torch.Tensor, *, space: str, frames_per_segment: int) -> torch.Tensor:
    """The latents along a path through key latents, endpoints included.

    Args:
        latents: key latents, [K, D] for space 'z' or 'w', [K, num_ws, w_dim] for 'w+'; K >= 2.
        space: 'z' (slerp) or 'w' / 'w+' (lerp).
        frames_per_segment: frames from one key to the next; the last key is added once at the end,
            so F = (K - 1) * frames_per_segment + 1 and frame j * frames_per_segment is key j.
    Returns:
        [F, *latents.shape[1:]] float32.
    """
    if space not in SPACES:
        raise InputError(f"Interpolation space must be one of {', '.join(SPACES)}; got {space!r}.")
    lat = as_cpu_float(latents)
    if lat.shape[0] < 2:
        raise InputError("Give at least two latents to interpolate between.")
    f = _check_frames_per_segment(frames_per_segment, lat.shape[0] - 1)
    t = (torch.arange(f, dtype=torch.float32) / f).reshape(f, *([1] * (lat.ndim - 1)))
    pieces = []
    for a, b in zip(lat[:-1], lat[1:]):
        pieces.append(slerp(a[None], b[None], t) if space == "z" else lerp(a[None], b[None], t))
    pieces.append(lat[-1:])
    return torch.cat(pieces)


def interpolate(G: torch.nn.Module, latents: torch.Tensor, *, space: str = "w", frames_per_segment: int = 30,
                rows: str | LayerRange | Iterable[int | str] | None = None, psi: float = 1.0,
                truncation_cutoff: int | None = None, class_idx: int | None = None, noise_mode: str = "const",
                noise_seed: int = 0, progress: Progress | None = None) -> torch.Tensor:
    """Frames of an interpolation through two or more key latents.

    Args:
        G: StyleGAN2 or StyleGAN3 generator.
        latents: 'z': z [K, z_dim] (e.g. `shared.latents.z_from_seeds`), slerped then mapped with psi /
            truncation_cutoff / class_idx; 'w': w [K, w_dim] or W+ codes [K, num_ws, w_dim]
            whose rows are equal (row 0 is used); 'w+': ws [K, num_ws, w_dim] (e.g. inverted photos).
        frames_per_segment: see `interpolation_path`; F = (K - 1) * frames_per_segment + 1.
        rows: None moves every row; otherwise only these rows (see `resolve_rows`) follow the
            path and the others stay at the first key's W+ values.
        noise_mode: 'const' (default), 'none', or 'random' (one draw per frame batch from noise_seed).
    Returns:
        frames [F, 3, H, W] float32 CPU in [-1, 1].
    Raises:
        InputError: bad space, shapes, counts or rows.
    """
    if space not in SPACES:
        raise InputError(f"Interpolation space must be one of {', '.join(SPACES)}; got {space!r}.")
    lat = as_cpu_float(latents)
    num_ws, w_dim = int(G.num_ws), int(G.w_dim)
    if space == "z":
        if lat.ndim != 2 or lat.shape[1] != G.z_dim:
            raise InputError(f"Z latents must have shape [K, {G.z_dim}], got {list(lat.shape)}.")
    elif space == "w":
        if lat.ndim == 3 and tuple(lat.shape[1:]) == (num_ws, w_dim):
            lat = lat[:, 0]
        if lat.ndim != 2 or lat.shape[1] != w_dim:
            raise InputError(f"W latents must have shape [K, {w_dim}] or [K, {num_ws}, {w_dim}], got {list(lat.shape)}.")
    else:
        lat = check_ws(G, lat, "key")
    idx = None if rows is None else list(resolve_rows(G, rows))
    path = interpolation_path(lat, space=space, frames_per_segment=frames_per_segment)
    if space == "z":
        ws = map_z(G, path, psi, truncation_cutoff=truncation_cutoff, class_idx=class_idx)
    elif space == "w":
        ws = path[:, None, :].repeat(1, num_ws, 1)
    else:
        ws = path
    if idx is not None:
        fixed = ws[:1].repeat(ws.shape[0], 1, 1)
        fixed[:, idx] = ws[:, idx]
        ws = fixed
    return _synthesize(G, ws, noise_mode=noise_mode, noise_seed=noise_seed, progress=progress, what="frame")


# ---- export ---------------------------------------------------------------------------------------
def _frames_uint8(frames: torch.Tensor | np.ndarray) -> np.ndarray:
    """float [F, 3, H, W] in [-1, 1] or uint8 [F, H, W, 3] -> uint8 [F, H, W, 3]."""
    if isinstance(frames, np.ndarray) and frames.dtype == np.uint8:
        u8 = frames
    else:
        x = torch.as_tensor(frames)
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f"Frames must be [F, 3, H, W] images, got shape {list(x.shape)}.")
        u8 = to_uint8_hwc(x)
    if u8.ndim != 4 or u8.shape[-1] != 3:
        raise InputError(f"Frames must be [F, H, W, 3] uint8 images, got shape {list(u8.shape)}.")
    if not 1 <= u8.shape[0] <= MAX_FRAMES:
        raise InputError(f"A video needs 1 to {MAX_FRAMES} frames, not {u8.shape[0]}.")
    return u8


def _check_fps(fps: float, most: int) -> float:
    if not (math.isfinite(float(fps)) and 1 <= float(fps) <= most):
        raise InputError(f"Frames per second must be from 1 to {most}, not {fps}.")
    return float(fps)


def write_video(frames: torch.Tensor | np.ndarray, path: str | os.PathLike, fps: float = 30) -> str:
    """Write frames as an H.264 MP4 (yuv420p, faststart) with imageio-ffmpeg's bundled ffmpeg.

    Args:
        frames: float [F, 3, H, W] in [-1, 1] or uint8 [F, H, W, 3]; H and W even.
        path: output file, normally ending in .mp4.
        fps: 1 to 60.
    Returns:
        the path, as a string.
    """
    import imageio.v2 as imageio  # heavy; only needed here

    u8 = _frames_uint8(frames)
    fps = _check_fps(fps, MAX_VIDEO_FPS)
    if u8.shape[1] % 2 or u8.shape[2] % 2:
        raise InputError(f"Video frames need an even width and height, got {u8.shape[2]}x{u8.shape[1]}.")
    path = os.fspath(path)
    writer = imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
                                quality=8, macro_block_size=2, output_params=["-movflags", "+faststart"],
                                ffmpeg_log_level="error")
    try:
        for frame in u8:
            writer.append_data(frame)
    finally:
        writer.close()
    return path


def write_gif(frames: torch.Tensor | np.ndarray, path: str | os.PathLike, fps: float = 20) -> str:
    """Write frames as a looping GIF with Pillow.

    GIF delays are whole hundredths of a second, so fps is 1 to 50 and the delay is rounded.
    Pillow merges consecutive identical frames (adding their delays), so a still stretch
    keeps its duration but counts as one frame.
    """
    from PIL import Image

    u8 = _frames_uint8(frames)
    fps = _check_fps(fps, MAX_GIF_FPS)
    delay = int(round(100 / fps)) * 10  # ms, a whole number of hundredths
    images = [Image.fromarray(f) for f in u8]
    path = os.fspath(path)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=delay, loop=0,
                   disposal=1)
    return path
