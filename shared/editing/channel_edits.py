"""StyleSpace requests as the app runs them (Wu, Lischinski, Shechtman, "StyleSpace Analysis:
Disentangled Controls for StyleGAN Image Generation", CVPR 2021; betterze/StyleSpace): a strip over
strengths for one channel, several named channels at once with a predictor's reading before and
after, and the channels that act inside a region with a preview each. The channel edit itself is
`shared.editing.stylespace.edit_channels`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from shared.editing.stylespace import RegionChannel, StyleStats, edit_channels, region_channels
from shared.errors import InputError

__all__ = ["NamedEdit", "RegionSearch", "channel_strip", "edit_named_channels", "search_region_channels"]


@torch.no_grad()
def channel_strip(G: nn.Module, ws: torch.Tensor, layer: int, channel: int, strengths: Sequence[float],
                  stats: StyleStats) -> torch.Tensor:
    """One style channel moved by each strength (standard deviations): images [len(strengths), 3, H, W]."""
    return torch.cat([edit_channels(G, ws, [(int(layer), int(channel), float(s))], stats)[0] for s in strengths])


@dataclass(frozen=True)
class NamedEdit:
    """Named channels moved at once, with a predictor's reading of the images."""
    images: torch.Tensor        # [2, 3, H, W] original, edited; float32 in [-1, 1], CPU
    reading: Any                # the predictor's prediction of `images` (its `.factors[name]` is [2])


@torch.no_grad()
def edit_named_channels(G: nn.Module, ws: torch.Tensor, edits: Sequence[tuple[int, int, float]], stats: StyleStats,
                        predictor: nn.Module) -> NamedEdit:
    """Move every (layer, channel, strength) of `edits` on `ws` [1, num_ws, w_dim]; `predictor` reads the
    original and the edited image."""
    base, _ = edit_channels(G, ws, [], stats)
    edited, _ = edit_channels(G, ws, list(edits), stats)
    images = torch.cat([base, edited]).clamp(-1, 1)
    return NamedEdit(images, predictor.predict(images))


@dataclass(frozen=True)
class RegionSearch:
    """The channels that act inside a region, each with a preview."""
    image: torch.Tensor             # [1, 3, H, W] the source
    region: torch.Tensor            # [R, R] the region searched
    found: list[RegionChannel]      # best first
    previews: torch.Tensor          # [len(found), 3, H, W] each channel moved alone


@torch.no_grad()
def search_region_channels(G: nn.Module, ws: torch.Tensor,
                           region: torch.Tensor | Callable[[torch.Tensor], torch.Tensor], stats: StyleStats, *,
                           strength: float, top: int = 8, progress=None) -> RegionSearch:
    """StyleSpace's localisation: the `top` channels whose change lies mostly inside `region` ([R, R],
    1 = region; or a function of the source image [1, 3, H, W] that gives it), each previewed at
    `strength` standard deviations."""
    img = G.synthesis(ws, noise_mode="const").float().cpu().clamp(-1, 1)
    region = region(img) if callable(region) else region
    found = region_channels(G, ws, region, stats, strength=float(strength), top=top, progress=progress)
    if not found:
        raise InputError("No channel acts mostly inside that region; draw a larger region or pick another part.")
    previews = torch.cat([edit_channels(G, ws, [(c.layer, c.channel, float(strength))], stats)[0] for c in found])
    return RegionSearch(img, region, found, previews)
