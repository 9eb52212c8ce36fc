"""Tiny random-weight Pose with Style files (a 128 px generator of the official architecture with narrow
widths, the coordinate-completion model, a synthetic DensePose UV lookup table and UV part map, fixed
seeds, CPU) and synthetic person inputs in the official formats (photo, `_sil.png`, `_iuv.png` with
channels I, U, V), so the Reposing tab's Pose with Style section runs its real code paths offline.
The files stand in for the `posewithstyle-deepfashion-512` records through `HUB_MODEL_PATH_<ID>`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from shared.archs.posewithstyle import CoordinateCompletion, PoseWithStyleConfig, PoseWithStyleGenerator
from shared.loaders.native import save_native
from shared.registry import env_var_for
from shared.registry.posewithstyle import CCM_ID, GENERATOR_ID, LOOKUP_ID, PARTS_ID

SIZE, WIDTH = 128, 88      # DeepFashion's 512 x 352 frame at a quarter of the side
TINY = PoseWithStyleConfig(size=SIZE, ngf=8, channels=((16, 64), (32, 32), (64, 24), (128, 16)), modulation_hidden=16)


def _randomise(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights that make a visible picture (as tests/shared/archs/test_posewithstyle.py does)."""
    g = torch.Generator().manual_seed(seed)   # test-local; library code never seeds
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
        for name, b in module.named_buffers():
            if name.endswith("running_var"):
                b.copy_(1 + 0.1 * torch.rand(b.shape, generator=g))
            elif name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
    return module.eval().requires_grad_(False)


def tiny_generator(seed: int = 1) -> PoseWithStyleGenerator:
    torch.manual_seed(seed)
    return _randomise(PoseWithStyleGenerator(TINY), seed)


def tiny_ccm(seed: int = 2) -> CoordinateCompletion:
    torch.manual_seed(seed)
    return _randomise(CoordinateCompletion(), seed)


def synthetic_lookup() -> np.ndarray:
    """The parity README's table: T[i, v, u] = ((i % 6 + (u + .5)/256)/6, (i // 6 + (v + .5)/256)/4)."""
    i = np.arange(24)[:, None, None]
    v = np.arange(256)[None, :, None]
    u = np.arange(256)[None, None, :]
    table = np.zeros((24, 256, 256, 2))
    table[..., 0] = ((i % 6) + (u + 0.5) / 256) / 6
    table[..., 1] = ((i // 6) + (v + 0.5) / 256) / 4
    return table


def synthetic_parts(side: int = 256) -> np.ndarray:
    """A UV part map laid out as the synthetic lookup table: part i (0-based) fills cell (i // 6, i % 6)
    of a 4 x 6 grid, with the atlas' rows counted from the top (b = 1 at row 0)."""
    rows, cols = np.mgrid[0:side, 0:side]
    a, b = (cols + 0.5) / side, 1 - (rows + 0.5) / side
    return (np.floor(b * 4).clip(0, 3) * 6 + np.floor(a * 6).clip(0, 5)).astype(np.int64)


def save_tiny_models(folder: Path) -> dict[str, Path]:
    """Write the four files; returns {env var: path} for the generator, CCM, lookup and parts records."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = save_native(tiny_generator(), folder / "tiny-posewithstyle.safetensors", source="tests/tinypws.py")
    ccm = save_native(tiny_ccm(), folder / "tiny-ccm.safetensors", source="tests/tinypws.py")
    np.save(folder / "dp_uv_lookup_256.npy", synthetic_lookup())
    np.save(folder / "uv_space_parts.npy", synthetic_parts())
    return {env_var_for(GENERATOR_ID): gen, env_var_for(CCM_ID): ccm,
            env_var_for(LOOKUP_ID): folder / "dp_uv_lookup_256.npy",
            env_var_for(PARTS_ID): folder / "uv_space_parts.npy"}


def person(seed: int = 0, *, height: int = SIZE, width: int = WIDTH, shift: int = 0
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo uint8 [H, W, 3], silhouette uint8 [H, W], IUV uint8 [H, W, 3] with channels I, U, V): a
    body-shaped block of parts with smooth U, V ramps, `shift` pixels to the right."""
    rng = np.random.RandomState(seed)
    photo = np.clip(rng.normal(128, 40, (height, width, 3)), 0, 255).astype(np.uint8)
    top, bottom = height // 8, height - height // 8
    left, right = width // 4 + shift, 3 * width // 4 + shift
    sil = np.zeros((height, width), np.uint8)
    sil[top - 4:bottom + 4, max(left - 4, 0):min(right + 4, width)] = 255
    iuv = np.zeros((height, width, 3), np.uint8)
    rows, cols = np.mgrid[top:bottom, left:right]
    band = (rows - top) * 6 // (bottom - top)                 # six bands of parts from head to feet
    iuv[top:bottom, left:right, 0] = np.array([23, 2, 1, 15, 7, 9])[band] + (cols >= (left + right) // 2)
    iuv[top:bottom, left:right, 1] = ((cols - left) * 255 // max(right - left - 1, 1)).astype(np.uint8)
    iuv[top:bottom, left:right, 2] = ((rows - top) * 255 // max(bottom - top - 1, 1)).astype(np.uint8)
    return photo, sil, iuv


def save_person(folder: Path, name: str, seed: int = 0, **kwargs) -> dict[str, Path]:
    """`person` as the official files: {'image': name.png, 'sil': name_sil.png, 'iuv': name_iuv.png}."""
    folder.mkdir(parents=True, exist_ok=True)
    photo, sil, iuv = person(seed, **kwargs)
    paths = {"image": folder / f"{name}.png", "sil": folder / f"{name}_sil.png", "iuv": folder / f"{name}_iuv.png"}
    Image.fromarray(photo).save(paths["image"])
    Image.fromarray(sil).save(paths["sil"])
    Image.fromarray(iuv).save(paths["iuv"])
    return paths
