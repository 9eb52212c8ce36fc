"""Tiny random-weight 3D generators (EG3D and StyleNeRF at toy sizes, fixed seeds, CPU) saved in the
hub's native format, and the registry records pointed at them with `HUB_MODEL_PATH_<ID>`, so the
3D tab and `shared.rendering3d` run their real code paths offline. Sizes follow the parity vectors'
(`eg3d_triplane_nr32`: 2x super-resolution to 128 px, 4096/32 backbone channels) but smaller still."""
from __future__ import annotations

from pathlib import Path

import torch

from shared.archs.eg3d import EG3DConfig, EG3DGenerator
from shared.archs.stylenerf import StyleNeRFConfig, StyleNeRFGenerator
from shared.loaders.native import save_native
from shared.registry import env_var_for

EG3D_ID, NERF_ID = "eg3d-ffhq-512", "stylenerf-ffhq-256"   # records the tiny files stand in for


def tiny_eg3d(seed: int = 0) -> EG3DGenerator:
    cfg = EG3DConfig(img_resolution=128, sr_module="SuperresolutionHybrid2X", channel_base=4096, channel_max=32,
                     neural_rendering_resolution=16, depth_resolution=8, depth_resolution_importance=8)
    torch.manual_seed(seed)  # test-local; library code never seeds
    return EG3DGenerator(cfg).eval().requires_grad_(False)


def tiny_stylenerf(seed: int = 0) -> StyleNeRFGenerator:
    cfg = StyleNeRFConfig(z_dim=16, w_dim=16, img_resolution=32, mapping_layers=2, channel_max=16, resolution_vol=16,
                          rgb_out_dim=16, z_dim_bg=4, fg_hidden=16, fg_blocks=2, bg_hidden=8, bg_blocks=2,
                          n_ray_samples=6, n_bg_samples=3)
    torch.manual_seed(seed)
    return StyleNeRFGenerator(cfg).eval().requires_grad_(False)


def save_tiny_models(folder: Path) -> dict[str, Path]:
    """Write both tiny generators natively; returns {env var: path} for the two records."""
    folder.mkdir(parents=True, exist_ok=True)
    eg = save_native(tiny_eg3d(), folder / "tiny-eg3d.safetensors", source="tests/tiny3d.py")
    nf = save_native(tiny_stylenerf(), folder / "tiny-stylenerf.safetensors", source="tests/tiny3d.py")
    return {env_var_for(EG3D_ID): eg, env_var_for(NERF_ID): nf}
