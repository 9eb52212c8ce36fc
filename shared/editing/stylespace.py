"""StyleSpace channel edits (Wu, Lischinski, Shechtman, "StyleSpace Analysis: Disentangled
Controls for StyleGAN Image Generation", CVPR 2021; betterze/StyleSpace).

S is the list of per-layer style vectors the affines make from W+ (`G.synthesis.styles`). An edit
adds `strength` standard deviations of one channel (std over sampled latents, as the paper scales
its edits) to that channel and renders with `G.synthesis.from_styles`. StyleGAN2 only: the
StyleGAN3 code exposes no S-space API. toRGB channels are editable but the paper leaves them out
of its channel search, so `channel_names` marks them.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from shared.generation import InputError

__all__ = ["StyleStats", "channel_names", "edit_channels", "style_stats"]


@dataclass(frozen=True, eq=False)
class StyleStats:
    """Per-layer mean and std of the style channels over sampled latents (CPU float32 lists)."""
    mean: list[torch.Tensor]
    std: list[torch.Tensor]
    samples: int


_STATS: dict[tuple, StyleStats] = {}
_LOCK = threading.Lock()


def _check(G: nn.Module) -> None:
    if getattr(G, "arch", None) != "stylegan2":
        raise InputError("StyleSpace edits need a StyleGAN2 generator (the StyleGAN3 code has no S-space API).")


@torch.no_grad()
def style_stats(G: nn.Module, *, samples: int = 2_000, seed: int = 0, key: str | None = None) -> StyleStats:
    """Mean and std of every style channel over `samples` latents (psi 1) from `seed`; cached per
    `key` (a model id) in this process when given."""
    _check(G)
    cache_key = None if key is None else (key, int(samples), int(seed))
    if cache_key is not None:
        with _LOCK:
            if cache_key in _STATS:
                return _STATS[cache_key]
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
    out = StyleStats([m.float() for m in mean], [x.float() for x in std], samples)
    if cache_key is not None:
        with _LOCK:
            _STATS[cache_key] = out
    return out


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
