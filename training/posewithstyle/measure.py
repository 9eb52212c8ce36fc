"""How well Pose with Style reposes the demo world: PSNR of `shared.posewithstyle.repose` (the official
inference path, CCM included) against the renderer's true target view, and the time per repose.

Held-out pairs: n sources drawn by `sample_factors(n, seed)` (each at its own sampled view) and, for each,
a target view with yaw and pitch drawn uniformly from the factor table's ranges; the target keeps every
other factor (the same person, expression and light). Reposing as the tab does it: the source image,
its IUV map and silhouette, the target's IUV map, then `composite_background`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from shared.archs.posewithstyle import CoordinateCompletion, PoseWithStyleGenerator
from shared.portraits import FACTORS, Factors, sample_factors, with_view
from shared.portraits_iuv import composite_background, demo_uv_lookup, render_person
from shared.posewithstyle import repose

__all__ = ["ReposeMeasure", "heldout_pairs", "measure_repose", "psnr"]

_RANGES = {s.name: (s.low, s.high) for s in FACTORS if s.name in ("yaw", "pitch")}


@dataclass(frozen=True)
class ReposeMeasure:
    psnr_db: float                   # mean PSNR over the pairs [dB], images in [-1, 1] (peak-to-peak 2)
    psnr_per_pair: tuple[float, ...]
    seconds_per_repose: float        # mean wall time of one repose (CCM, generator, compositing)
    n: int


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR [N] in dB of images in [-1, 1] ([N, 3, H, W])."""
    mse = ((a.float() - b.float()) / 2).square().mean(dim=[1, 2, 3])
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def heldout_pairs(n: int, seed: int = 9_100_001) -> tuple[Factors, Factors]:
    """(source factors, target factors) of n fixed held-out pairs: the same people at a new yaw and pitch."""
    source = sample_factors(n, seed)
    g = torch.Generator().manual_seed(seed + 1)
    view = {k: lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64) for k, (lo, hi) in _RANGES.items()}
    return source, with_view(source, yaw=view["yaw"].float(), pitch=view["pitch"].float())


@torch.inference_mode()
def measure_repose(G: PoseWithStyleGenerator, ccm: CoordinateCompletion, *, n: int = 100, seed: int = 9_100_001,
                   lookup: torch.Tensor | None = None) -> ReposeMeasure:
    """PSNR against the true target view and the time per repose on n held-out pairs (CPU, G's size).

    Args:
        G, ccm: the demo world's reposing generator and coordinate-completion model (eval mode).
        n: number of pairs. seed: which held-out pairs. lookup: the UV table (default `demo_uv_lookup()`).
    """
    lookup = demo_uv_lookup() if lookup is None else lookup
    src_f, tgt_f = heldout_pairs(n, seed)
    src, tgt = render_person(src_f, G.size), render_person(tgt_f, G.size)
    gen = torch.Generator().manual_seed(seed + 2)
    outs, seconds = [], 0.0
    for k in range(n):
        t0 = time.perf_counter()
        res = repose(G, ccm, src.img[k:k + 1], src.silhouette[k:k + 1], src.iuv[k:k + 1], tgt.iuv[k:k + 1],
                     lookup, generator=gen)
        outs.append(composite_background(res.image, tgt.iuv[k:k + 1], src.img[k:k + 1], src.silhouette[k:k + 1]))
        seconds += time.perf_counter() - t0
    values = psnr(torch.cat(outs).clamp(-1, 1), tgt.img)
    return ReposeMeasure(float(values.mean()), tuple(round(float(v), 3) for v in values), seconds / n, n)
