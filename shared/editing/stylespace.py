"""StyleSpace channel edits (Wu, Lischinski, Shechtman, "StyleSpace Analysis: Disentangled
Controls for StyleGAN Image Generation", CVPR 2021; betterze/StyleSpace).

S is the list of per-layer style vectors the affines make from W+ (`G.synthesis.styles`). An edit
adds `strength` standard deviations of one channel (std over sampled latents, as the paper scales
its edits) to that channel and renders with `G.synthesis.from_styles`. `region_channels` finds the
channels that act on a drawn region (the paper's localisation by gradient maps, done here by
finite differences: each channel is moved and the share of the pixel change inside the region
is measured). StyleGAN2 only: the
StyleGAN3 code exposes no S-space API. toRGB channels are editable but the paper leaves them out
of its channel search, so `channel_names` marks them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from shared.errors import InputError
from shared.model_cache import DerivedCache, default_cache

__all__ = ["RegionChannel", "StyleStats", "channel_names", "edit_channels", "region_channels", "style_stats"]


@dataclass(frozen=True, eq=False)
class StyleStats:
    """Per-layer mean and std of the style channels over sampled latents (CPU float32 lists)."""
    mean: list[torch.Tensor]
    std: list[torch.Tensor]
    samples: int


def _check(G: nn.Module) -> None:
    if getattr(G, "arch", None) != "stylegan2":
        raise InputError("StyleSpace edits need a StyleGAN2 generator (the StyleGAN3 code has no S-space API).")


def style_stats(G: nn.Module, *, samples: int = 2_000, seed: int = 0, key: str | None = None,
                cache: DerivedCache | None = None) -> StyleStats:
    """Mean and std of every style channel over `samples` latents (psi 1) from `seed`; kept in the
    derived-data cache (`cache`, default the process model cache's) per `key` (a model id) when given."""
    _check(G)
    if key is None:
        return _measure_stats(G, int(samples), int(seed))
    store = cache if cache is not None else default_cache().derived
    return store.get_or_build(("stylespace-stats", key, int(samples), int(seed)),
                              lambda: _measure_stats(G, int(samples), int(seed)))


@torch.no_grad()
def _measure_stats(G: nn.Module, samples: int, seed: int) -> StyleStats:
    g = torch.Generator().manual_seed(int(seed))
    dev = next(G.parameters()).device
    sums = sq = None
    for start in range(0, samples, 500):
        n = min(500, samples - start)
        ws = G.mapping(torch.randn([n, G.z_dim], generator=g).to(dev))
        s = [x.double().cpu() for x in G.synthesis.styles(ws)]
        sums = [x.sum(0) for x in s] if sums is None else [a + x.sum(0) for a, x in zip(sums, s)]
        sq = [x.square().sum(0) for x in s] if sq is None else [a + x.square().sum(0) for a, x in zip(sq, s)]
    mean = [a / samples for a in sums]
    std = [(b / samples - m.square()).clamp_min(0).sqrt() for b, m in zip(sq, mean)]
    return StyleStats([m.float() for m in mean], [x.float() for x in std], samples)


def channel_names(G: nn.Module) -> list[tuple[str, int, int]]:
    """(label, layer index, channels) per style layer, e.g. ('layer 3: 16 px conv (row 3), 192 ch', 3, 192)."""
    _check(G)
    out = []
    for layer in G.style_layers:
        kind = "toRGB" if layer.is_torgb else "conv"
        out.append((f"layer {layer.index}: {layer.resolution} px {kind} (row {layer.ws_index}), {layer.channels} ch",
                    layer.index, layer.channels))
    return out


@torch.no_grad()
def edit_channels(G: nn.Module, ws: torch.Tensor, edits: Sequence[tuple[int, int, float]], stats: StyleStats, *,
                  noise_mode: str = "const") -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Render ws [N, num_ws, w_dim] with each (layer, channel, strength) edit applied in S:
    s[layer][:, channel] += strength * std. Returns (images [N, 3, H, W] in [-1, 1] CPU, the edited
    styles). An empty edit list renders ws unchanged."""
    _check(G)
    ws = torch.as_tensor(ws, dtype=torch.float32)
    if ws.ndim != 3 or tuple(ws.shape[1:]) != (G.num_ws, G.w_dim):
        raise InputError(f"The latent must be [N, {G.num_ws}, {G.w_dim}], got {list(ws.shape)}.")
    dev = next(G.parameters()).device
    styles = [s.clone() for s in G.synthesis.styles(ws.to(dev))]
    for layer, channel, strength in edits:
        if not 0 <= int(layer) < len(styles):
            raise InputError(f"Layer {layer} does not exist; this model has style layers 0 to {len(styles) - 1}.")
        if not 0 <= int(channel) < styles[int(layer)].shape[1]:
            raise InputError(f"Layer {layer} has channels 0 to {styles[int(layer)].shape[1] - 1}, not {channel}.")
        styles[int(layer)][:, int(channel)] += float(strength) * float(stats.std[int(layer)][int(channel)])
    img = G.synthesis.from_styles(styles, noise_mode=noise_mode)
    return img.float().cpu().clamp(-1, 1), [s.cpu() for s in styles]


@dataclass(frozen=True)
class RegionChannel:
    """A style channel ranked for a region: share of its effect inside the region and its size."""
    layer: int
    channel: int
    inside: float     # share of the squared pixel change inside the region (0..1)
    energy: float     # mean squared pixel change inside the region


@torch.no_grad()
def region_channels(G: nn.Module, ws: torch.Tensor, region: torch.Tensor, stats: StyleStats, *, strength: float = 5.0,
                    top: int = 10, min_inside: float = 0.5, include_torgb: bool = False, batch: int = 64,
                    progress=None) -> list[RegionChannel]:
    """The channels that control a region of one image (StyleSpace Sec. 4, by finite differences
    instead of gradient maps): every channel is moved by `strength` standard deviations; channels
    whose change falls mostly inside `region` ([R, R] or [1, 1, R, R], 1 = region) rank by the
    change inside. Returns the top `top` with at least `min_inside` of their change inside."""
    _check(G)
    ws = torch.as_tensor(ws, dtype=torch.float32)
    if ws.shape[0] != 1:
        raise InputError("Find channels for one latent at a time.")
    r = int(G.img_resolution)
    mask = torch.as_tensor(region, dtype=torch.float32).reshape(r, r)
    if float(mask.sum()) == 0:
        raise InputError("The region is empty; draw over the part of the face to control.")
    dev = next(G.parameters()).device
    styles = G.synthesis.styles(ws.to(dev))
    base = G.synthesis.from_styles(styles, noise_mode="const").float().cpu().clamp(-1, 1)  # what is shown
    jobs = [(l.index, c) for l in G.style_layers if include_torgb or not l.is_torgb for c in range(l.channels)]
    found: list[RegionChannel] = []
    for start in range(0, len(jobs), batch):
        chunk = jobs[start:start + batch]
        edited = [s.repeat(len(chunk), 1) for s in styles]
        for i, (layer, channel) in enumerate(chunk):
            edited[layer][i, channel] += float(strength) * float(stats.std[layer][channel])
        img = G.synthesis.from_styles(edited, noise_mode="const").float().cpu().clamp(-1, 1)
        change = (img - base).square().sum(dim=1)                               # [B, R, R]
        inside = (change * mask).flatten(1).sum(1)
        total = change.flatten(1).sum(1).clamp_min(1e-12)
        for i, (layer, channel) in enumerate(chunk):
            found.append(RegionChannel(layer, channel, float(inside[i] / total[i]),
                                       float(inside[i] / mask.sum())))
        if progress is not None:
            progress(min(1.0, (start + batch) / len(jobs)), f"{min(start + batch, len(jobs))} of {len(jobs)} channels")
    ranked = sorted((c for c in found if c.inside >= min_inside), key=lambda c: c.energy, reverse=True)
    return ranked[:max(1, int(top))]
