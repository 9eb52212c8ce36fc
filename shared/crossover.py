"""Image crossover and inpainting by masked embedding (Image2StyleGAN++).

Abdal, Qin, Wonka, "Image2StyleGAN++: How to Edit the Embedded Images?", CVPR 2020, Sec. 5
(crossover, inpainting); there is no official code. Both are one operation, a masked
Image2StyleGAN++ embedding (`shared.inversion.optimize.optimize_wplus_noise`: W+ with a masked
perceptual + pixel loss, then the noise maps with a masked pixel loss):

- crossover: the target is the naive paste `M * A + (1 - M) * B`, fitted everywhere except a
  band of `seam_px` pixels on each side of the mask's edge, which nothing constrains: the
  generator has to make the two halves one coherent face there;
- inpainting: the target is one image, fitted everywhere except the hole (grown by `seam_px`),
  which the generator fills from its prior.

StyleGAN3 has no noise inputs, so there only the W+ phase runs. Masks are float [1, 1, R, R] in
[0, 1] at the generator's resolution; `preset_mask`, `part_mask` and `mask_from_layers` make
them from presets, a predicted part map, or the layers a user drew in the browser.

Scores: PSNR inside each source's region (minus the seam band) and the seam's gradient energy,
the mean squared finite difference along the mask's edge, to compare with the naive paste's.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shared import registry
from shared.errors import InputError
from shared.inversion.losses import PerceptualLoss, psnr
from shared.inversion.optimize import (NoiseOptions, OptimizeOptions, WStats, optimize_latent, optimize_wplus_noise)
from shared.inversion.result import InversionResult, Progress, ShouldStop
from shared.model_cache import ModelCache, default_cache
from shared.portraits import PART_NAMES

__all__ = ["MASK_PRESETS", "PART_PRESETS", "MaskedEdit", "crossover", "demo_predictor", "dilate", "erode", "inpaint",
           "mask_from_layers", "part_mask", "predicted_part_mask", "preset_mask", "seam_band", "seam_energy"]

MASK_PRESETS = ("left", "right", "upper", "lower", "centre")
# Part presets over the demo world's part labels (shared.portraits.PART_NAMES).
PART_PRESETS: dict[str, tuple[str, ...]] = {
    "hair": ("hair",),
    "face": ("skin", "eyes", "brows", "nose", "mouth", "glasses", "beard"),
    "eyes": ("eyes", "brows", "glasses"),
    "mouth": ("mouth", "beard"),
    "background": ("background",),
}
MAX_SEAM_PX = 16


# ---- masks ----------------------------------------------------------------------------------------
def preset_mask(name: str, size: int) -> torch.Tensor:
    """[1, 1, size, size] float mask: 'left' / 'right' / 'upper' / 'lower' half (1 = from image A,
    the region kept for inpainting's hole), or 'centre' (a centred square of half the side)."""
    m = torch.zeros(1, 1, size, size)
    half = size // 2
    if name == "left":
        m[..., :, :half] = 1
    elif name == "right":
        m[..., :, half:] = 1
    elif name == "upper":
        m[..., :half, :] = 1
    elif name == "lower":
        m[..., half:, :] = 1
    elif name == "centre":
        q = size // 4
        m[..., q:size - q, q:size - q] = 1
    else:
        raise InputError(f"Unknown mask preset {name!r}; choose one of {', '.join(MASK_PRESETS)}.")
    return m


def part_mask(parts: torch.Tensor | np.ndarray, wanted: Sequence[int], size: int | None = None) -> torch.Tensor:
    """Mask of the pixels whose part label is in `wanted`, from a label map [H, W] (or [1, H, W]),
    e.g. the demo world predictor's parts; resized (nearest) to `size`."""
    p = torch.as_tensor(np.asarray(parts)).long()
    if p.ndim == 3:
        p = p[0]
    if p.ndim != 2:
        raise InputError(f"A part map must be [H, W] labels, got shape {list(p.shape)}.")
    m = torch.zeros_like(p, dtype=torch.float32)
    for k in wanted:
        m[p == int(k)] = 1.0
    m = m[None, None]
    if size is not None and m.shape[-1] != size:
        m = F.interpolate(m, size=(size, size), mode="nearest")
    return m


def demo_predictor(models: ModelCache | None = None) -> nn.Module:
    """The demo world's predictor (the demo generator's "predictor" companion record) on the CPU,
    from the model cache (`models`, default the process's)."""
    predictor_id = registry.companion(registry.DEFAULT_GENERATOR_ID, "predictor")
    if predictor_id is None:
        raise InputError("Part masks need the demo world's predictor, which the registry does not list.")
    return (models or default_cache()).get(predictor_id, device="cpu")


@torch.no_grad()
def predicted_part_mask(image: torch.Tensor, preset: str, size: int | None = None, *,
                        models: ModelCache | None = None) -> torch.Tensor:
    """Mask of a part (a `PART_PRESETS` key) as the demo world's predictor (`demo_predictor(models)`)
    segments `image` ([1, 3, H, W] in [-1, 1], read at 64 px), at `size` (default H). Meaningful on
    portraits of the demo world; on other faces it is the predictor's best guess."""
    if preset not in PART_PRESETS:
        raise InputError(f"Unknown part {preset!r}; choose one of {', '.join(PART_PRESETS)}.")
    x = torch.as_tensor(image, dtype=torch.float32)
    if x.ndim != 4 or x.shape[:2] != (1, 3):
        raise InputError(f"The image for a part mask must be [1, 3, H, W], got {list(x.shape)}.")
    small = x if x.shape[-1] == 64 else F.interpolate(x, size=(64, 64), mode="area" if x.shape[-1] > 64 else "bilinear",
                                                      align_corners=None if x.shape[-1] > 64 else False)
    parts = demo_predictor(models).predict(small).parts[0].cpu()
    m = part_mask(parts, [PART_NAMES.index(n) for n in PART_PRESETS[preset]], size or int(x.shape[-1]))
    if float(m.sum()) == 0:
        raise InputError(f"The predictor finds no {preset} in image A; pick another part or draw the mask.")
    return m


def mask_from_layers(layers: Sequence[np.ndarray | None], size: int) -> torch.Tensor:
    """The union of painted pixels of an image editor's layers (RGBA uint8 [H, W, 4]: alpha > 0;
    RGB: any non-black pixel), resized by area to [1, 1, size, size] and thresholded at 0.5."""
    union: np.ndarray | None = None
    for layer in layers:
        if layer is None:
            continue
        arr = np.asarray(layer)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise InputError(f"A mask layer must be an RGB or RGBA image, got shape {list(arr.shape)}.")
        painted = arr[..., 3] > 0 if arr.shape[2] == 4 else arr[..., :3].max(axis=2) > 0
        union = painted if union is None else union | painted
    if union is None or not union.any():
        raise InputError("Nothing is painted on the mask; draw over the region to take from image A (or pick a "
                         "preset).")
    m = torch.from_numpy(union.astype(np.float32))[None, None]
    return (F.interpolate(m, size=(size, size), mode="area") >= 0.5).float()


def _check_mask(mask: torch.Tensor, size: int, what: str = "mask") -> torch.Tensor:
    m = torch.as_tensor(mask, dtype=torch.float32)
    if m.ndim == 2:
        m = m[None, None]
    if m.ndim != 4 or tuple(m.shape) != (1, 1, size, size):
        raise InputError(f"The {what} must be [1, 1, {size}, {size}] at the generator's resolution, "
                         f"got {list(m.shape)}.")
    if not torch.isfinite(m).all() or float(m.min()) < 0 or float(m.max()) > 1:
        raise InputError(f"The {what} must hold values from 0 to 1.")
    return m


def dilate(mask: torch.Tensor, px: int) -> torch.Tensor:
    """Grow a [N, 1, H, W] mask by `px` pixels (square structuring element)."""
    if px <= 0:
        return mask
    return F.max_pool2d(mask, 2 * px + 1, stride=1, padding=px)


def erode(mask: torch.Tensor, px: int) -> torch.Tensor:
    """Shrink a [N, 1, H, W] mask by `px` pixels (the image border does not erode)."""
    if px <= 0:
        return mask
    return 1 - F.max_pool2d(1 - mask, 2 * px + 1, stride=1, padding=px)


def seam_band(mask: torch.Tensor, px: int) -> torch.Tensor:
    """Pixels within `px` of the mask's edge, on either side: dilate(m) - erode(m), as 0/1."""
    m = (mask > 0.5).float()
    return (dilate(m, px) - erode(m, px)).clamp(0, 1)


def seam_energy(image: torch.Tensor, mask: torch.Tensor, px: int = 1) -> float:
    """Mean over the seam band (width `px` each side) of the squared horizontal + vertical finite
    differences, summed over channels; image [1, 3, H, W] in [-1, 1]. Lower = smoother join."""
    img = image.detach().float().cpu()
    band = seam_band(mask.float().cpu(), px)
    dx = torch.zeros_like(img)
    dy = torch.zeros_like(img)
    dx[..., :, :-1] = img[..., :, 1:] - img[..., :, :-1]
    dy[..., :-1, :] = img[..., 1:, :] - img[..., :-1, :]
    energy = (dx.square() + dy.square()).sum(dim=1, keepdim=True)
    return float((energy * band).sum() / band.sum().clamp_min(1))


# ---- the method -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MaskedEdit:
    """Result of `crossover` or `inpaint` (everything on the CPU).

    image:   [1, 3, R, R] the generator's coherent result; naive: the target it was fitted to
             (the naive paste, or the image with the hole in grey); weight: where the loss looked.
    scores:  'psnr_a' / 'psnr_b' (crossover: PSNR inside each source's region, seam band left out;
             inpainting: 'psnr_known' outside the grown hole), 'seam_energy' of the result and
             'seam_energy_naive' of the naive paste (crossover only).
    """
    kind: str                   # 'crossover' or 'inpaint'
    image: torch.Tensor
    naive: torch.Tensor
    weight: torch.Tensor
    ws: torch.Tensor
    result: InversionResult
    scores: dict[str, float]
    seconds: float


def _check_image(G: nn.Module, img: torch.Tensor, what: str) -> torch.Tensor:
    r = int(G.img_resolution)
    x = torch.as_tensor(img, dtype=torch.float32)
    if x.ndim != 4 or tuple(x.shape) != (1, 3, r, r):
        raise InputError(f"Image {what} must be [1, 3, {r}, {r}] at the generator's resolution, got "
                         f"{list(x.shape)}.")
    return x.cpu()


def _embed(G: nn.Module, target: torch.Tensor, weight: torch.Tensor, *, steps: int, noise_steps: int, lr: float,
           perceptual: PerceptualLoss | None, init_ws: torch.Tensor | None, w_stats: WStats | None, seed: int,
           progress: Progress | None, should_stop: ShouldStop | None) -> InversionResult:
    options = OptimizeOptions(steps=steps, lr=lr, space="w+")
    common = dict(perceptual=perceptual, mask=weight, init_ws=init_ws, w_stats=w_stats, seed=seed, progress=progress,
                  should_stop=should_stop)
    if noise_steps > 0 and getattr(G, "noises", None) is not None:
        return optimize_wplus_noise(G, target, options, NoiseOptions(steps=noise_steps), **common)
    return optimize_latent(G, target, options, **common)


def _check_counts(steps: int, noise_steps: int, seam_px: int) -> None:
    if not 1 <= int(steps) <= 5000 or not 0 <= int(noise_steps) <= 5000:
        raise InputError("Use 1 to 5000 W+ steps and 0 to 5000 noise steps.")
    if not 0 <= int(seam_px) <= MAX_SEAM_PX:
        raise InputError(f"The seam width must be from 0 to {MAX_SEAM_PX} pixels, not {seam_px}.")


def _init(G: nn.Module, latents: Sequence[torch.Tensor | None]) -> torch.Tensor | None:
    """Mean of the known W+ codes (the optimiser starts from W's mean when none is known)."""
    known = [torch.as_tensor(np.asarray(w), dtype=torch.float32).reshape(1, G.num_ws, G.w_dim)
             for w in latents if w is not None]
    return torch.cat(known).mean(0, keepdim=True) if known else None


def crossover(G: nn.Module, image_a: torch.Tensor, image_b: torch.Tensor, mask: torch.Tensor, *,
              steps: int = 200, noise_steps: int = 100, lr: float = 0.05, seam_px: int = 3,
              perceptual: PerceptualLoss | None = None, ws_a: torch.Tensor | None = None,
              ws_b: torch.Tensor | None = None, w_stats: WStats | None = None, seed: int = 0,
              progress: Progress | None = None, should_stop: ShouldStop | None = None) -> MaskedEdit:
    """Glue the masked region of A to the rest of B and let G make one coherent face of it.

    Args:
        G:          StyleGAN2 (W+ then noise) or StyleGAN3 (W+ only), shared, never modified.
        image_a, image_b: [1, 3, R, R] in [-1, 1] at G's resolution.
        mask:       [1, 1, R, R] in [0, 1]: 1 where the result comes from A.
        steps, noise_steps, lr: the two Image2StyleGAN++ phases (noise_steps 0: W+ only).
        seam_px:    half-width of the unconstrained band along the mask's edge.
        ws_a, ws_b: W+ codes of A and B when known (seeds, inverted photos): the start is their mean.
    Raises:
        InputError for shapes, an empty or full mask, bad counts; InversionCancelled (with the
        partial result) when `should_stop` fires.
    """
    r = int(G.img_resolution)
    a, b = _check_image(G, image_a, "A"), _check_image(G, image_b, "B")
    m = (_check_mask(mask, r) > 0.5).float()
    _check_counts(steps, noise_steps, seam_px)
    if float(m.sum()) == 0 or float(m.sum()) == r * r:
        raise InputError("The mask must cover part of the image, not none or all of it: it marks what comes from A.")
    naive = m * a + (1 - m) * b
    band = seam_band(m, seam_px) if seam_px > 0 else torch.zeros_like(m)
    weight = 1 - band
    t0 = time.perf_counter()
    res = _embed(G, naive, weight, steps=steps, noise_steps=noise_steps, lr=lr, perceptual=perceptual,
                 init_ws=_init(G, [ws_a, ws_b]), w_stats=w_stats, seed=seed, progress=progress,
                 should_stop=should_stop)
    img = res.image.float().cpu()
    region_a, region_b = m * weight, (1 - m) * weight
    scores = {"psnr_a": float(psnr(img, a, region_a)[0]) if region_a.sum() > 0 else float("nan"),
              "psnr_b": float(psnr(img, b, region_b)[0]) if region_b.sum() > 0 else float("nan"),
              "seam_energy": seam_energy(img, m), "seam_energy_naive": seam_energy(naive, m)}
    return MaskedEdit("crossover", img, naive, weight, res.ws.float().cpu(), res, scores, time.perf_counter() - t0)


def inpaint(G: nn.Module, image: torch.Tensor, hole: torch.Tensor, *, steps: int = 200, noise_steps: int = 100,
            lr: float = 0.05, seam_px: int = 2, perceptual: PerceptualLoss | None = None,
            ws: torch.Tensor | None = None, w_stats: WStats | None = None, seed: int = 0,
            progress: Progress | None = None, should_stop: ShouldStop | None = None) -> MaskedEdit:
    """Fill `hole` ([1, 1, R, R], 1 = missing) of `image` from the generator's prior: the image is
    fitted outside the hole grown by `seam_px`; the result's hole is what G makes there.
    Arguments and errors as `crossover` (`ws`: the image's W+ code when known, the start)."""
    r = int(G.img_resolution)
    x = _check_image(G, image, "to inpaint")
    h = (_check_mask(hole, r, "hole") > 0.5).float()
    _check_counts(steps, noise_steps, seam_px)
    if float(h.sum()) == 0 or float(h.sum()) == r * r:
        raise InputError("The hole must cover part of the image, not none or all of it.")
    weight = 1 - dilate(h, seam_px)
    if float(weight.sum()) == 0:
        raise InputError("The hole and its seam cover the whole image; make the hole smaller.")
    naive = x * (1 - h)  # the hole in grey (0 in [-1, 1])
    t0 = time.perf_counter()
    res = _embed(G, naive, weight, steps=steps, noise_steps=noise_steps, lr=lr, perceptual=perceptual,
                 init_ws=_init(G, [ws]), w_stats=w_stats, seed=seed, progress=progress, should_stop=should_stop)
    img = res.image.float().cpu()
    scores = {"psnr_known": float(psnr(img, x, weight)[0]), "seam_energy": seam_energy(img, h),
              "seam_energy_naive": seam_energy(naive, h)}
    return MaskedEdit("inpaint", img, naive, weight, res.ws.float().cpu(), res, scores, time.perf_counter() - t0)
