"""DensePose-style IUV maps of the demo world's portraits, for Pose with Style on the demo world.

Pose with Style (AlBahar et al., SIGGRAPH Asia 2021; BadourAlBahar/pose-with-style@f344f3b) reads a
person's pose as a DensePose IUV map: per pixel a body part I (0 = background) and the part's surface
coordinates U, V, stored as 0..255 in channels I, U, V (`shared.densepose`). The portrait renderer
(`shared.portraits`) knows every surface it hits, so it can write the same map exactly: this module
ray-casts the renderer's own surfaces (reusing its geometry functions), keeps per pixel the surface that
labels it (the renderer's front-to-back compositing) and charts the hit point in that surface's own
frame, so a surface point keeps its (I, U, V) under any yaw and pitch.

Charts. Every surface is an ellipsoid (or, for the glasses and the neck, a cylinder) in the head frame;
a hit point becomes its unit-sphere direction (longitude `lon = atan2(x, z)`, latitude) and the surface
is split at x = 0 into a left/right pair of DensePose part indices, as DensePose splits the head (23/24).
V = 1/2 + lat / pi. The official left/right symmetry (`shared.densepose._mirror_iuv`) holds: pairs
(23, 24) and (3, 4) flip U under mirroring (U = lon / pi on the right, 1 - |lon| / pi on the left), the
other pairs keep it (U = |lon| / pi). Eyes, brows, mouth, beard and the glasses' arms are paint on the
head and share its chart. The UV lookup table `demo_uv_lookup()` ([24, 256, 256, 2], indexed
`[I - 1, V, U]` like `dp_uv_lookup_256.npy`) lays the parts out on one atlas, each pair continuous
across its seam at lon = 0.

    part                     I (right, left)  atlas cell (a0, b0, width, height)
    head skin (and paint)    23, 24           (0, 0.5, 1, 0.5)
    nose                     3, 4             (0.75, 0.375, 0.25, 0.125)
    ears                     5, 6             (0.75, 0.25, 0.25, 0.125)
    hair cap, outside        7, 8             (0, 0.25, 0.5, 0.25)
    hair cap, inside         11, 12           (0.5, 0.25, 0.25, 0.25)
    long hair                13, 14           (0, 0, 0.5, 0.25)
    bun                      15, 16           (0.5, 0.125, 0.25, 0.125)
    glasses frame            17, 18           (0.5, 0, 0.25, 0.125)
    neck (world frame)       19, 20           (0.75, 0, 0.25, 0.25)

The official architecture has no path from the source's background to the target's (the warped
appearance is masked by the target body; DeepFashion's backgrounds are all white), while the demo
world's are flat colours of any hue: `composite_background` paints the source's background colour
around the target body, the one step the demo world adds to the official pipeline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from shared.portraits import (HEAD_CENTER, VIEW_HALF_EXTENT, Factors, _STYLE, _Grid, _Layer, _cast, _col,
                              _composite, _glasses, _grid, _hair, _head, _neck, _vec, head_rotation, render)

__all__ = ["PART_CHARTS", "DemoPerson", "composite_background", "demo_uv_lookup", "render_iuv", "render_person",
           "surface_coordinates"]


@dataclass(frozen=True)
class _Chart:
    right: int                                   # DensePose I of the x >= 0 half (the left half is right + 1)
    cell: tuple[float, float, float, float]      # (a0, b0, width, height) in the atlas
    kind: str                                    # "flip": U flips under mirroring, "keep": it does not,
    #                                              "whole": each side is one whole surface (the ears)


#: the demo world's parts, by name (see the module docstring)
PART_CHARTS: dict[str, _Chart] = {
    "head": _Chart(23, (0.0, 0.5, 1.0, 0.5), "flip"),
    "nose": _Chart(3, (0.75, 0.375, 0.25, 0.125), "flip"),
    "ears": _Chart(5, (0.75, 0.25, 0.25, 0.125), "whole"),
    "hair": _Chart(7, (0.0, 0.25, 0.5, 0.25), "keep"),
    "hair_inside": _Chart(11, (0.5, 0.25, 0.25, 0.25), "keep"),
    "long_hair": _Chart(13, (0.0, 0.0, 0.5, 0.25), "keep"),
    "bun": _Chart(15, (0.5, 0.125, 0.25, 0.125), "keep"),
    "glasses": _Chart(17, (0.5, 0.0, 0.25, 0.125), "keep"),
    "neck": _Chart(19, (0.75, 0.0, 0.25, 0.25), "keep"),
}


@dataclass(frozen=True)
class _Surface:
    """One composited surface's chart on the grid: I, U (in [0, 1]), V (in [0, 1]), each [n, H, W]."""
    i: Tensor
    u: Tensor
    v: Tensor


def _pair(chart: _Chart, lon: Tensor, lat: Tensor) -> _Surface:
    """Chart a surface split at lon = 0 (x = 0) into chart.right (x >= 0) and chart.right + 1."""
    right = lon >= 0
    frac = lon.abs() / math.pi
    u = torch.where(right, frac, 1 - frac) if chart.kind == "flip" else frac
    i = torch.where(right, chart.right, chart.right + 1)
    return _Surface(i, u, (0.5 + lat / math.pi).clamp(0, 1))


def _sphere(chart: _Chart, q0: Tensor, q1: Tensor, q2: Tensor) -> _Surface:
    """Chart a point by its direction (q0, q1, q2) from the surface's centre."""
    return _pair(chart, torch.atan2(q0, q2), torch.atan2(q1, torch.hypot(q0, q2)))


def _head_surface(p: list[Tensor], f: Factors) -> _Surface:
    x, y, z = p  # the cranium's axes make the chart the same for every face shape
    return _sphere(PART_CHARTS["head"], x / _col(0.70 * f["face_width"]), y / _col(0.86 * f["face_length"]),
                   z / 0.80)


def _nose(g: _Grid, f: Factors, n: int):
    return _cast(g, _vec(n, 0, -0.17 * f["face_length"], 0.72), _vec(n, 0.078, 0.16, 0.17))


def _ears(g: _Grid, f: Factors, n: int) -> tuple[_Layer, _Surface] | None:
    """The renderer's ear layer (one layer for both ears) and its chart, or None when no ear shows."""
    ears_out = (f["hair_style"] != 2) & (f["hair_style"] != 3)
    if not bool(ears_out.any()):
        return None
    ears = [_cast(g, _vec(n, side * 0.68 * f["face_width"], -0.06, -0.06), _vec(n, 0.075, 0.17, 0.11))
            for side in (-1.0, 1.0)]
    left = ears[0].alpha >= ears[1].alpha
    q = [torch.where(left, ears[0].q(k), ears[1].q(k)) for k in range(3)]
    side = torch.where(left, -1.0, 1.0)
    lon = torch.atan2(q[0] * side, q[2])           # mirrored on the left ear: the two ears share U, V
    chart = PART_CHARTS["ears"]
    surf = _Surface(torch.where(left, chart.right + 1, chart.right), (lon + math.pi) / (2 * math.pi),
                    (0.5 + torch.atan2(q[1], torch.hypot(q[0], q[2])) / math.pi).clamp(0, 1))
    alpha = torch.maximum(ears[0].alpha, ears[1].alpha).mul_(_col(ears_out.float()))
    return _Layer(alpha, torch.where(left, ears[0].t, ears[1].t), torch.zeros(1, 3, 1, 1), 1.0, 0), surf


def _hair_surfaces(g: _Grid, f: Factors, n: int) -> list[_Surface]:
    """Charts of `shared.portraits._hair`'s layers, in its order: the cap's outside and inside, long hair,
    bun (each only when some portrait of the chunk has it)."""
    st = _STYLE[f["hair_style"]]
    fw, fl = f["face_width"], f["face_length"]
    out = []
    if bool((st[:, 0] > 0).any()):
        axes = torch.stack([0.70 * fw * st[:, 1], 0.86 * fl * st[:, 2], 0.80 * st[:, 1]], 1)
        h = _cast(g, _vec(n, 0, 0.03, -0.01), axes)
        t_back = h.tmid * 2 - h.t
        out.append(_sphere(PART_CHARTS["hair"], h.q(0), h.q(1), h.q(2)))
        out.append(_sphere(PART_CHARTS["hair_inside"], h.q(0, t_back), h.q(1, t_back), h.q(2, t_back)))
    extra = st[:, 6]
    if bool((extra == 1).any()):
        hang = head_rotation(torch.zeros(n), f["pitch"])
        down = (hang.transpose(1, 2) @ _vec(n, 0, -0.67 * fl, 0).unsqueeze(2)).squeeze(2)
        e = _cast(g, _vec(n, 0, 0.05 * fl, -0.45) + down, _vec(n, 0.74 * fw, 1.15 * fl, 0.38), hang)
        out.append(_sphere(PART_CHARTS["long_hair"], e.q(0), e.q(1), e.q(2)))
    if bool((extra == 2).any()):
        e = _cast(g, _vec(n, 0, 0.86 * fl, -0.34), _vec(n, 0.27, 0.25, 0.27))
        out.append(_sphere(PART_CHARTS["bun"], e.q(0), e.q(1), e.q(2)))
    return out


def _glasses_surface(g: _Grid, n: int) -> _Surface:
    rad = 0.78
    cyl = _cast(g, _vec(n, 0, 0, 0.83 - rad), _vec(n, rad, 100.0, rad))
    y = cyl.q(1) * 100.0
    return _pair(PART_CHARTS["glasses"], torch.atan2(cyl.q(0), cyl.q(2)), (y / 0.25).clamp(-1, 1) * (math.pi / 2))


def _neck_surface(g: _Grid, n: int, size: int) -> _Surface:
    top = HEAD_CENTER[1] - 0.45
    un = (g.u / 0.25).clamp(-1, 1).expand(n, size, size)
    height = ((g.v + VIEW_HALF_EXTENT) / (top + VIEW_HALF_EXTENT)).clamp(0, 1).expand(n, size, size)
    return _pair(PART_CHARTS["neck"], torch.asin(un) * 2, (height - 0.5) * math.pi)


def _iuv_chunk(f: Factors, size: int) -> tuple[Tensor, Tensor]:
    """(IUV float32 [n, 3, H, W] raw 0..255, silhouette float32 [n, 1, H, W]) for one chunk."""
    n = len(f)
    f = Factors({k: v.double() if v.is_floating_point() else v for k, v in f.values.items()})
    g = _grid(f, size)
    black = torch.zeros(1, 3, 1, 1)
    alpha, t, p, _ = _head(g, f, n)
    layers, surfs = [_Layer(alpha, t, black, 1.0, 0)], [_head_surface(p, f)]
    nose = _nose(g, f, n)
    layers.append(_Layer(nose.alpha, nose.t, black, 1.0, 0))
    surfs.append(_sphere(PART_CHARTS["nose"], nose.q(0), nose.q(1), nose.q(2)))
    ears = _ears(g, f, n)
    if ears is not None:
        layers.append(ears[0])
        surfs.append(ears[1])
    for (a, th, _), s in zip(_hair(g, f, n), _hair_surfaces(g, f, n), strict=True):
        layers.append(_Layer(a, th, black, 1.0, 0))
        surfs.append(s)
    if bool((f["glasses"] > 0).any()):
        ga, gt = _glasses(g, f, n)
        layers.append(_Layer(ga, gt, black, 1.0, 0))
        surfs.append(_glasses_surface(g, n))
    neck = _neck(g, n, size, black)
    layers.append(_Layer(neck.alpha, neck.t, black, 1.0, 0))
    surfs.append(_neck_surface(g, n, size))
    # the renderer's compositing with each layer labelled by its index: the surface that labels a pixel
    layers = [_Layer(ly.alpha, ly.t, ly.rgb, ly.shade, k + 1) for k, ly in enumerate(layers)]
    rgb, winner, _ = _composite(layers, torch.ones(n, 3), n, size)
    sil = 1 - (rgb[:, :1] + 1) / 2                                 # 1 - the background's weight
    iuv = torch.zeros(n, 3, size, size)
    for k, s in enumerate(surfs):
        here = (winner == k + 1).unsqueeze(1)
        chan = torch.stack([s.i.float().expand(n, size, size), (s.u * 255).round().float(),
                            (s.v * 255).round().float()], 1).clamp(0, 255)
        iuv = torch.where(here, chan, iuv)
    return iuv, sil


def _chunks(factors: Factors, size: int) -> tuple[Tensor, Tensor]:
    chunk = max(1, 131072 // (size * size))
    outs = [_iuv_chunk(factors.select(slice(i, i + chunk)), size) for i in range(0, len(factors), chunk)]
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


@torch.inference_mode()
def render_iuv(factors: Factors, size: int = 64) -> Tensor:
    """The IUV map of each portrait, as `shared.portraits.render` sees it.

    Args:
        factors: N portraits' factors (any view).
        size: height and width in pixels (>= 8).
    Returns:
        float32 [N, 3, size, size] on the CPU, channels I, U, V holding whole numbers 0..255 (the raw
        `_iuv.png` values `shared.densepose.check_iuv` reads): I the part (0 on the background, see
        `PART_CHARTS`), U and V the surface coordinates round(255 u), u in [0, 1].
    """
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    return _chunks(factors, size)[0]


@dataclass(frozen=True)
class DemoPerson:
    """A portrait in Pose with Style's input format: img [N, 3, S, S] in [-1, 1], iuv [N, 3, S, S] raw
    0..255 (I, U, V), silhouette [N, 1, S, S] in [0, 1] (the renderer's coverage), and its factors."""
    img: Tensor
    iuv: Tensor
    silhouette: Tensor
    factors: Factors


@torch.inference_mode()
def render_person(factors: Factors, size: int = 64) -> DemoPerson:
    """Render portraits together with their IUV maps and silhouettes (CPU, float32)."""
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    iuv, sil = _chunks(factors, size)
    return DemoPerson(render(factors, size).img, iuv, sil, factors)


def surface_coordinates(part: Tensor, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """Atlas point (a, b) in [0, 1]^2 of surface coordinates: part [...] int (1..24), u, v [...] in [0, 1]."""
    a, b = torch.zeros_like(u), torch.zeros_like(v)
    for chart in PART_CHARTS.values():
        a0, b0, w, h = chart.cell
        for side, index in ((0, chart.right), (1, chart.right + 1)):
            here = part == index
            if chart.kind == "whole":
                x = a0 + w * (0.5 * side + 0.5 * u)
            elif side == 0:
                x = a0 + w * (0.5 + 0.5 * u)
            else:
                x = a0 + w * (0.5 * u if chart.kind == "flip" else 0.5 - 0.5 * u)
            a = torch.where(here, x, a)
            b = torch.where(here, b0 + h * v, b)
    return a, b


def demo_uv_lookup() -> Tensor:
    """The demo world's UV lookup table: float32 [24, 256, 256, 2], entry [I - 1, V, U] = the atlas point
    (a, b) of part I at (U / 255, V / 255) (unused parts: (0, 0)); read as `dp_uv_lookup_256.npy` is."""
    part = torch.arange(1, 25).reshape(24, 1, 1).expand(24, 256, 256)
    v = (torch.arange(256, dtype=torch.float64) / 255).reshape(1, 256, 1).expand(24, 256, 256)
    u = (torch.arange(256, dtype=torch.float64) / 255).reshape(1, 1, 256).expand(24, 256, 256)
    a, b = surface_coordinates(part, u, v)
    return torch.stack([a, b], -1).float()


def composite_background(out: Tensor, target_iuv: Tensor, source_img: Tensor, source_silhouette: Tensor
                         ) -> Tensor:
    """Paint the source's background colour outside the target body (dilated by one pixel, so the
    generator draws the anti-aliased edge): the demo world's flat backgrounds, which the official
    architecture cannot carry from source to target.

    Args:
        out: generator output [N, 3, S, S]. target_iuv: [N, 3, S, S] raw IUV of the target pose.
        source_img: [N, 3, S, S] in [-1, 1]. source_silhouette: [N, 1, S, S] in [0, 1].
    Returns:
        [N, 3, S, S]: out on the body, elsewhere the per-channel median of the source's background pixels
        (those with silhouette 0; the source's border row when there are none).
    """
    body = F.max_pool2d((target_iuv[:, :1] > 0).to(out.dtype), 3, stride=1, padding=1)
    bg = []
    for img, sil in zip(source_img, source_silhouette):
        free = sil[0] <= 0
        pixels = img[:, free] if bool(free.any()) else img[:, 0, :]
        bg.append(pixels.median(dim=1).values)
    colour = torch.stack(bg).to(out)[:, :, None, None]
    return out * body + colour * (1 - body)
