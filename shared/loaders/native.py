"""The hub's own generator format: one `.safetensors` file whose header metadata holds a JSON
config (`{"format_version", "arch", "config", "source"}`) beside the weights.

Loading it builds the module from the config and copies the tensors; nothing is executed.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from shared.archs.eg3d import EG3DConfig, EG3DGenerator
from shared.archs.posewithstyle import CCMConfig, CoordinateCompletion, PoseWithStyleConfig, PoseWithStyleGenerator
from shared.archs.stylegan1 import StyleGAN1Config, StyleGAN1Generator
from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from shared.archs.stylegan3 import StyleGAN3Config, StyleGAN3Generator
from shared.archs.stylenerf import StyleNeRFConfig, StyleNeRFGenerator
from shared.errors import CheckpointError
from shared.loaders._common import load_strict

__all__ = ["FORMAT_VERSION", "generator_from_native", "save_native"]

FORMAT_VERSION = 1
NATIVE_KEY = "stylegan_hub"


def _arch_classes(arch: str):
    if arch == "stylegan1":
        return StyleGAN1Config, StyleGAN1Generator
    if arch == "stylegan2":
        return StyleGAN2Config, StyleGAN2Generator
    if arch == "stylegan3":
        return StyleGAN3Config, StyleGAN3Generator
    if arch == "eg3d":
        return EG3DConfig, EG3DGenerator
    if arch == "stylenerf":
        return StyleNeRFConfig, StyleNeRFGenerator
    if arch == "posewithstyle":
        return PoseWithStyleConfig, PoseWithStyleGenerator
    if arch == "posewithstyle-ccm":
        return CCMConfig, CoordinateCompletion
    raise CheckpointError(f"Unknown architecture {arch!r} in the file's config (known: stylegan1, stylegan2, stylegan3, eg3d, stylenerf, posewithstyle, posewithstyle-ccm).")


def save_native(G: torch.nn.Module, path: str | Path, *, source: str = "",
                dtype: torch.dtype = torch.float32) -> Path:
    """Write `G` as `.safetensors` with its config in the header (tensors stored as `dtype`;
    loading always gives float32 modules). Returns the path."""
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in G.state_dict().items()}
    if "w_avg" not in tensors and "mapping.w_avg" not in tensors and hasattr(G, "w_avg"):  # reposing nets have none
        tensors["w_avg"] = G.w_avg.detach().to("cpu", torch.float32).contiguous()
    meta = {"format_version": FORMAT_VERSION, "arch": G.arch, "config": G.config.to_dict(), "source": source}
    path = Path(path)
    save_file(tensors, str(path), metadata={NATIVE_KEY: json.dumps(meta, sort_keys=True)})
    return path


def generator_from_native(tensors: dict[str, torch.Tensor], meta: dict) -> torch.nn.Module:
    """Build a generator from our format's tensors and parsed metadata."""
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"This file was written by a newer StyleGAN Hub (format "
                              f"{meta.get('format_version')}); update the hub to read it.")
    config_cls, gen_cls = _arch_classes(str(meta.get("arch")))
    try:
        cfg = config_cls.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"The file's config is invalid for {meta.get('arch')}: {e}.") from e
    G = gen_cls(cfg)
    tensors = dict(tensors)
    w_avg = tensors.pop("w_avg", None)
    load_strict(G, tensors)
    if w_avg is not None:
        G.w_avg.copy_(w_avg.float())
    return G.eval().requires_grad_(False)
