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

Layer ranges ('coarse', 'middle', 'fine') are computed per model from the resolution each ws
row controls (see `row_resolutions` and `layer_ranges`).

Videos are written with imageio and the ffmpeg binary bundled in imageio-ffmpeg (H.264,
yuv420p, playable in browsers); GIFs with Pillow.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from shared.generation import MAX_SEED, NOISE_MODES, InputError, class_one_hot, input_transform
from shared.images import to_uint8_hwc

__all__ = ["LayerRange", "GridResult", "RANGE_NAMES", "MAX_GRID", "MAX_FRAMES", "row_resolutions",
           "layer_ranges", "resolve_rows", "z_from_seeds", "ws_from_seeds", "mix_styles", "style_mix_images",
           "style_mixing_grid", "slerp", "lerp", "interpolation_path", "interpolate", "write_video",
           "write_gif"]

RANGE_NAMES = ("coarse", "middle", "fine")
MAX_GRID = 6             # most sources and most destinations in one grid
MAX_FRAMES = 600         # most frames in one interpolation / video
MAX_FRAMES_PER_SEGMENT = 240
MAX_VIDEO_FPS = 60
MAX_GIF_FPS = 50         # GIF stores delays in 1/100 s; browsers slow down anything faster than 50 fps
COARSE_MAX_PX = 8        # paper: coarse = 4-8 px
FINE_MIN_PX = 64         # paper: fine = 64 px and up (middle = 16-32 px)
SPACES = ("z", "w", "w+")
Progress = Callable[[float, str], object]


# ---- layer ranges ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerRange:
    """A named group of ws rows and the (effective) resolutions they control."""
    name: str                       # 'coarse', 'middle' or 'fine'
    rows: tuple[int, ...]           # ws rows, ascending
    resolutions: tuple[int, ...]    # distinct resolutions [px] the rows control, ascending

    @property
    def label(self) -> str:
        """For display, e.g. 'coarse: rows 0-2 (4-8 px)'."""
        rows = f"{self.rows[0]}" if len(self.rows) == 1 else f"{self.rows[0]}-{self.rows[-1]}"
        lo, hi = self.resolutions[0], self.resolutions[-1]
        px = f"{lo} px" if lo == hi else f"{lo}-{hi} px"
        return f"{self.name}: rows {rows} ({px})"


def _arch(G: torch.nn.Module) -> str:
    arch = getattr(G, "arch", None)
    if arch not in ("stylegan2", "stylegan3"):
        raise InputError(f"Style mixing works with StyleGAN2 and StyleGAN3 models; this model is {arch or 'unknown'}.")
    return arch


def row_resolutions(G: torch.nn.Module) -> tuple[int, ...]:
    """The resolution [px] each ws row controls, one per row.

    StyleGAN2: row 0 modulates the 4 px convolution, rows 2k-1 and 2k (k >= 1) the two
    convolutions at 4 * 2**k px (row 2k-1 also feeds the toRGB of the previous resolution), and
    the last row only the final toRGB, at the output resolution. So rows read 4, 8, 8, 16, 16, ...

    StyleGAN3: there are no fixed resolutions; each layer is band-limited to a cutoff f_c
    (cycles per image) that grows geometrically (paper Sec. 3.2). A row's resolution is the
    Nyquist size of its layer, 2 * f_c, rounded to the nearest power of two in log scale
    (row 0 feeds the Fourier input, whose bandwidth is the first cutoff; row i >= 1 feeds layer
    `synthesis.layer_names[i - 1]`, output cutoff).
    """
    if _arch(G) == "stylegan2":
        res = int(G.img_resolution)
        return tuple(min(2 ** (2 + math.ceil(i / 2)), res) for i in range(int(G.num_ws)))
    syn = G.synthesis
    cutoffs = [float(syn.input.bandwidth)] + [float(getattr(syn, n).spec.out_cutoff) for n in syn.layer_names]
    return tuple(int(2 ** math.floor(math.log2(2 * f) + 0.5 + 1e-9)) for f in cutoffs[:int(G.num_ws)])


def layer_ranges(G: torch.nn.Module) -> dict[str, LayerRange]:
    """The named layer ranges of a model: 'coarse', 'middle' and 'fine'.

    Rule (the StyleGAN paper's bands, on `row_resolutions`): fine = rows at >= 64 px, or at
    the output resolution for models smaller than 64 px; coarse = the other rows at <= 8 px;
    middle = the rest (16-32 px). A band with no rows (only in models of 16 px or less) is left
    out. For StyleGAN2 at 1024 px this gives rows 0-2 / 3-6 / 7-17; for StyleGAN3-T at 1024 px,
    rows 0-3 / 4-6 / 7-15.

    Returns:
        {name: LayerRange} in coarse, middle, fine order.
    Raises:
        InputError: the model is not a StyleGAN2 or StyleGAN3 generator.
    """
    res = row_resolutions(G)
    fine_min = min(FINE_MIN_PX, int(G.img_resolution))
    band = ["fine" if r >= fine_min else "coarse" if r <= COARSE_MAX_PX else "middle" for r in res]
    out = {}
    for name in RANGE_NAMES:
        rows = tuple(i for i, b in enumerate(band) if b == name)
        if rows:
            out[name] = LayerRange(name, rows, tuple(sorted({res[i] for i in rows})))
    return out


_ROWS_TOKEN = re.compile(r"^(\d+)(?:-(\d+))?$")


def resolve_rows(G: torch.nn.Module, rows: str | LayerRange | Iterable[int | str]) -> tuple[int, ...]:
    """Turn a rows choice into sorted, distinct ws row indices.

    Args:
        G: the generator the rows belong to.
        rows: a range name ('coarse'), several joined by '+' or ',' ('coarse+middle'), a rows
            spec ('0-3, 8'), a LayerRange, or an iterable of ints and/or range names.
    Raises:
        InputError: an unknown name, a row outside 0..num_ws-1, or nothing chosen.
    """
    num_ws = int(G.num_ws)
    if isinstance(rows, LayerRange):
        items: list = list(rows.rows)
    elif isinstance(rows, str):
        items = [t for t in re.split(r"[+,;\s]+", rows.strip().lower()) if t]
    else:
        items = list(rows)
    ranges = layer_ranges(G)
    chosen: set[int] = set()
    for item in items:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            values = [int(item)]
        elif isinstance(item, str) and item.strip().lower() in ranges:
            values = list(ranges[item.strip().lower()].rows)
        elif isinstance(item, str) and _ROWS_TOKEN.match(item.strip()):
            m = _ROWS_TOKEN.match(item.strip())
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise InputError(f"The row range {lo}-{hi} runs backwards; write it as {hi}-{lo}.")
            values = list(range(lo, hi + 1))
        else:
            names = ", ".join(ranges)
            raise InputError(f"Unknown layer range {item!r}; use {names} or row numbers from 0 to {num_ws - 1}.")
        bad = [v for v in values if not 0 <= v < num_ws]
        if bad:
            raise InputError(f"Row {bad[0]} does not exist; this model has rows 0 to {num_ws - 1}.")
        chosen.update(values)
    if not chosen:
        raise InputError(f"Choose at least one layer range ({', '.join(ranges)}) or row to mix.")
    return tuple(sorted(chosen))


# ---- latents --------------------------------------------------------------------------------------
def _device(G: torch.nn.Module) -> torch.device:
    return next(G.parameters()).device


def z_from_seeds(G: torch.nn.Module, seeds: Sequence[int]) -> torch.Tensor:
    """z [N, z_dim] for seeds, exactly as `shared.generation.generate_images` draws them."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise InputError("No seeds given; write seeds like 0, 0-7 or 1,5,9.")
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise InputError(f"Seeds go from 0 to {MAX_SEED}; {bad[0]} is outside that.")
    return torch.cat([torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(s)) for s in seeds])


def _map(G: torch.nn.Module, z: torch.Tensor, psi: float, truncation_cutoff: int | None,
         class_idx: int | None) -> torch.Tensor:
    """z [N, z_dim] -> ws [N, num_ws, w_dim] on the CPU, float32."""
    if not math.isfinite(float(psi)):
        raise InputError("Truncation psi must be a finite number such as 0.7 or 1.")
    if truncation_cutoff is not None and not 1 <= int(truncation_cutoff) <= G.num_ws:
        raise InputError(f"Truncation cutoff must be a number of layers from 1 to {G.num_ws}, not {truncation_cutoff}.")
    device = _device(G)
    c = class_one_hot(G, class_idx, device=device)
    if c is not None:
        c = c.expand(z.shape[0], -1)
    cutoff = None if truncation_cutoff is None else int(truncation_cutoff)
    with torch.inference_mode():
        ws = G.mapping(z.to(device, torch.float32), c, truncation_psi=float(psi), truncation_cutoff=cutoff)
    return ws.to("cpu", torch.float32)


def ws_from_seeds(G: torch.nn.Module, seeds: Sequence[int], psi: float = 1.0, *,
                  truncation_cutoff: int | None = None, class_idx: int | None = None) -> torch.Tensor:
    """W+ codes for seeds: ws [N, num_ws, w_dim] (CPU float32), equal to `generate_images(...).ws`."""
    return _map(G, z_from_seeds(G, seeds), psi, truncation_cutoff, class_idx)


def _as_cpu_float(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A float32 CPU tensor; numpy input (e.g. the latent store's read-only arrays) is copied."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.array(x, dtype=np.float32))
    return torch.as_tensor(x).detach().to("cpu", torch.float32)


def _check_ws(G: torch.nn.Module, ws: torch.Tensor | np.ndarray, what: str) -> torch.Tensor:
    """Accept [num_ws, w_dim] or [N, num_ws, w_dim]; return float32 CPU [N, num_ws, w_dim]."""
    ws = _as_cpu_float(ws)
    if ws.ndim == 2:
        ws = ws.unsqueeze(0)
    want = (int(G.num_ws), int(G.w_dim))
    if ws.ndim != 3 or tuple(ws.shape[1:]) != want or ws.shape[0] == 0:
        raise InputError(f"The {what} latent has shape {list(ws.shape)}, but this model needs W+ codes of shape "
                         f"[N, {want[0]}, {want[1]}]; it was probably made with another model.")
    if not torch.isfinite(ws).all():
        raise InputError(f"The {what} latent contains NaN or infinite values.")
    return ws


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
    a, b = _check_ws(G, ws_a, "destination"), _check_ws(G, ws_b, "source")
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
    if noise_mode not in NOISE_MODES:
        raise InputError(f"Noise mode must be one of {', '.join(NOISE_MODES)}; got {noise_mode!r}.")
    is_sg3 = _arch(G) == "stylegan3"
    device = _device(G)
    out = []
    n = ws.shape[0]
    with torch.inference_mode(), (input_transform(G, (0.0, 0.0), 0.0) if is_sg3 else nullcontext()):
        for start in range(0, n, batch_size):
            if progress is not None:
                progress(start / n, f"{what} {start + 1}-{min(start + batch_size, n)} of {n}")
            chunk = ws[start:start + batch_size].to(device)
            if is_sg3:
                img = G.synthesis(chunk, noise_mode=noise_mode)
            else:
                gen = (torch.Generator(device=device).manual_seed(int(noise_seed) + start)
                       if noise_mode == "random" else None)
                img = G.synthesis(chunk, noise_mode=noise_mode, generator=gen)
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
    rows: tuple[int, ...]       # the ws rows taken from the sources


def style_mixing_grid(G: torch.nn.Module, sources_ws: torch.Tensor, destinations_ws: torch.Tensor,
                      rows: str | LayerRange | Iterable[int | str], *, noise_mode: str = "const",
                      noise_seed: int = 0, fill: int = 255, progress: Progress | None = None) -> GridResult:
    """The style-mixing grid of the StyleGAN paper, for up to 6 sources x 6 destinations.

    Args:
        sources_ws: [S, num_ws, w_dim], shown across the top; they give the chosen rows.
        destinations_ws: [D, num_ws, w_dim], shown down the left side; they keep the other rows.
        rows: see `resolve_rows`.
        fill: value of the empty top-left cell.
    Raises:
        InputError: more than 6 sources or destinations, none, wrong shapes, or bad rows.
    """
    src, dst = _check_ws(G, sources_ws, "source"), _check_ws(G, destinations_ws, "destination")
    s, d = src.shape[0], dst.shape[0]
    if s > MAX_GRID or d > MAX_GRID:
        raise InputError(f"The grid holds at most {MAX_GRID} sources and {MAX_GRID} destinations; "
                         f"got {s} sources and {d} destinations.")
    idx = resolve_rows(G, rows)
    mixed = dst[:, None].repeat(1, s, 1, 1)                     # [D, S, num_ws, w_dim]
    mixed[:, :, list(idx)] = src[None, :, list(idx)].expand(d, -1, -1, -1)
    all_ws = torch.cat([src, dst, mixed.reshape(d * s, *mixed.shape[2:])])
    images = _synthesize(G, all_ws, noise_mode=noise_mode, noise_seed=noise_seed, progress=progress)
    src_img, dst_img, mix_img = images[:s], images[s:s + d], images[s + d:].reshape(d, s, *images.shape[1:])
    h, w = images.shape[-2:]
    u8 = to_uint8_hwc(images)
    sheet = np.full(((d + 1) * h, (s + 1) * w, 3), fill, dtype=np.uint8)
    for j in range(s):
        sheet[:h, (j + 1) * w:(j + 2) * w] = u8[j]
    for i in range(d):
        sheet[(i + 1) * h:(i + 2) * h, :w] = u8[s + i]
        for j in range(s):
            sheet[(i + 1) * h:(i + 2) * h, (j + 1) * w:(j + 2) * w] = u8[s + d + i * s + j]
    return GridResult(sheet=sheet, sources=src_img, destinations=dst_img, mixes=mix_img, mixes_ws=mixed, rows=idx)


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
    lat = _as_cpu_float(latents)
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
        latents: 'z': z [K, z_dim] (e.g. `z_from_seeds`), slerped then mapped with psi /
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
    lat = _as_cpu_float(latents)
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
        lat = _check_ws(G, lat, "key")
    idx = None if rows is None else list(resolve_rows(G, rows))
    path = interpolation_path(lat, space=space, frames_per_segment=frames_per_segment)
    if space == "z":
        ws = _map(G, path, psi, truncation_cutoff, class_idx)
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
