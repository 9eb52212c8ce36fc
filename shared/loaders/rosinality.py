"""rosinality-format StyleGAN2 checkpoints (github.com/rosinality/stylegan2-pytorch, `model.py`).

`{'g_ema': state_dict, 'latent_avg': [w_dim]}` as written by its `train.py` and
`convert_weight.py`, and the `decoder.*` weights inside pSp / e4e / ReStyle checkpoints
(`{'state_dict', 'opts', 'latent_avg'}`). Size, mapping depth, style size and the channel
schedule are inferred from the keys and shapes; nothing in the file is executed.
"""
from __future__ import annotations

import re

import torch

from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from shared.errors import CheckpointError
from shared.loaders._common import load_strict

__all__ = ["is_rosinality_state_dict", "config_from_rosinality", "generator_from_rosinality"]


def is_rosinality_state_dict(sd: dict) -> bool:
    return "input.input" in sd and "conv1.conv.weight" in sd and "style.1.weight" in sd


def config_from_rosinality(sd: dict[str, torch.Tensor]) -> StyleGAN2Config:
    """Infer a `StyleGAN2Config` from rosinality keys and shapes."""
    n_mlp = len([k for k in sd if re.fullmatch(r"style\.\d+\.weight", k)])
    n_rgb = len([k for k in sd if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])
    size = 4 * 2 ** n_rgb
    first = sd["style.1.weight"]
    last = sd[f"style.{n_mlp}.weight"]
    chans = {4: int(sd["input.input"].shape[1])}
    for i in range(n_rgb):
        chans[8 * 2 ** i] = int(sd[f"convs.{2 * i}.conv.weight"].shape[1])
    c_dim = int(sd["embed.weight"].shape[1]) if "embed.weight" in sd else 0
    embed = int(sd["embed.weight"].shape[0]) if c_dim else None
    hidden = int(first.shape[0]) if n_mlp > 1 else None
    img_channels = int(sd["to_rgb1.conv.weight"].shape[1])
    kernel = (1, 3, 3, 1)
    return StyleGAN2Config(
        z_dim=int(first.shape[1]) - (embed or 0), w_dim=int(last.shape[0]), c_dim=c_dim, img_resolution=size,
        img_channels=img_channels, mapping_layers=n_mlp, mapping_hidden=hidden, embed_features=embed,
        channels=tuple(sorted(chans.items())), resample_kernel=kernel)


def generator_from_rosinality(sd: dict[str, torch.Tensor], latent_avg: torch.Tensor | None = None,
                              conv_clamp: float | None = None) -> StyleGAN2Generator:
    """Build our StyleGAN2 from a rosinality `g_ema` state dict (strict keys and shapes)."""
    if not is_rosinality_state_dict(sd):
        raise CheckpointError("This file does not hold rosinality StyleGAN2 generator weights "
                              "(no 'input.input' / 'conv1.conv.weight' / 'style.1.weight' keys).")
    cfg = config_from_rosinality(sd)
    if conv_clamp is not None:
        cfg = StyleGAN2Config.from_dict({**cfg.to_dict(), "conv_clamp": conv_clamp})
    G = StyleGAN2Generator(cfg)
    load_strict(G, sd)
    if latent_avg is not None:
        G.w_avg.copy_(_w_avg_from(latent_avg, cfg.w_dim))
    return G.eval().requires_grad_(False)


def _w_avg_from(latent_avg: torch.Tensor, w_dim: int) -> torch.Tensor:
    t = torch.as_tensor(latent_avg, dtype=torch.float32)
    if t.shape[-1] != w_dim:
        raise CheckpointError(f"latent_avg has {t.shape[-1]} values but the generator's w_dim is {w_dim}.")
    return t.reshape(-1, w_dim)[0] if t.ndim > 1 else t  # e4e stores [18, w_dim] with identical rows
