"""Reposing and garment transfer with Pose with Style (AlBahar et al., SIGGRAPH Asia 2021;
BadourAlBahar/pose-with-style@f344f3b, `inference.py` and `garment_transfer.py`), as pure functions.

Inputs are in the official format: the source photo, its silhouette (`_sil.png`) and its DensePose IUV
map (`_iuv.png`, channels I, U, V), and the target IUV map, all `G.size` pixels high and at most as wide
(DeepFashion photos are 512 x 352). As the official scripts do, the silhouette is joined with the body
pixels, the partial UV-space coordinates of the source are computed from its IUV map and completed by the
coordinate-completion model, the inputs are centred in a square (the left side takes the odd pixel) and
the output is cropped back to the width of the target's frame. Mistakes a user can make raise
`InputError` with a sentence; randomness (the synthesis noise) comes in as `noise` or a `generator`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from shared.archs.posewithstyle import CoordinateCompletion, PoseWithStyleGenerator
from shared.densepose import (GARMENT_PARTS, check_iuv, check_lookup, normalize_partial_coordinates,
                              partial_coordinates, union_silhouette)
from shared.errors import InputError

__all__ = ["GARMENT_PARTS", "GarmentResult", "ReposeResult", "appearance_input", "complete_coordinates",
           "image_from_uint8", "repose", "silhouette_from_uint8", "transfer_garment"]


@dataclass(frozen=True)
class ReposeResult:
    image: torch.Tensor        # [1, 3, S, w_target] float32, about [-1, 1]: the person in the target pose
    square: torch.Tensor       # [1, 3, S, S] the generator's whole output
    coordinates: torch.Tensor  # [1, 2, S, S] the source's complete UV-space coordinates in [-1, 1]


@dataclass(frozen=True)
class GarmentResult:
    image: torch.Tensor        # [1, 3, S, w] float32: the person wearing the chosen part of the garment photo
    square: torch.Tensor       # [1, 3, S, S]
    part_mask: torch.Tensor    # [1, 1, h, w] {0, 1}: where the garment's part lands (at the part map's size)


def image_from_uint8(image_hwc: np.ndarray) -> torch.Tensor:
    """A photo (uint8 [H, W, 3]) -> float32 [1, 3, H, W] in [-1, 1], as torchvision's ToTensor + Normalize(0.5)."""
    a = np.asarray(image_hwc)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise InputError(f"The photo must be an RGB image (uint8 [H, W, 3]); got {a.dtype} {list(a.shape)}.")
    return (torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float().div(255) - 0.5) / 0.5


def silhouette_from_uint8(sil: np.ndarray) -> torch.Tensor:
    """A `_sil.png` (uint8 [H, W] or [H, W, C], first channel used) -> float32 [1, 1, H, W] in [0, 1]."""
    a = np.asarray(sil)
    if a.ndim == 3:
        a = a[:, :, 0]
    if a.ndim != 2:
        raise InputError(f"The silhouette must be a grey-level image; got shape {list(np.asarray(sil).shape)}.")
    return torch.from_numpy(a.astype(np.float64) / 255).float()[None, None]


def _check_person(size: int, image: torch.Tensor, silhouette: torch.Tensor, iuv: torch.Tensor, who: str
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image, joined silhouette, IUV) checked against the generator's size."""
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[:2] != (1, 3):
        raise InputError(f"The {who} photo is missing or not one RGB image [1, 3, H, W].")
    h, w = image.shape[2:]
    if h != size or w > size:
        raise InputError(f"This Pose with Style model works at {size} px: the {who} photo must be {size} px high "
                         f"and at most {size} px wide, not {h} x {w}; resize it together with its IUV map and "
                         "silhouette.")
    if image.min() < -1.001 or image.max() > 1.001:
        raise InputError(f"The {who} photo must be in [-1, 1] (use image_from_uint8).")
    iuv = check_iuv(iuv, f"{who} IUV map")
    if iuv.shape[0] != 1 or iuv.shape[2:] != image.shape[2:]:
        raise InputError(f"The {who} IUV map is {list(iuv.shape[2:])} but the photo is {[h, w]}; they must match.")
    if not isinstance(silhouette, torch.Tensor):
        raise InputError(f"The {who} silhouette is missing; upload the `_sil.png` mask.")
    return image.float(), union_silhouette(silhouette.float(), iuv), iuv


def _to_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre [N, C, size, w] in a size x size square of zeros (the left side takes the odd column)."""
    diff = size - x.shape[3]
    return F.pad(x, (diff - diff // 2, diff // 2, 0, 0))


def _crop(img: torch.Tensor, width: int) -> torch.Tensor:
    diff = img.shape[3] - width
    return img[:, :, :, diff - diff // 2: diff - diff // 2 + width]


@torch.no_grad()  # not inference_mode: trainers use the result as an input of graphs that need gradients
def complete_coordinates(ccm: CoordinateCompletion, iuv: torch.Tensor, lookup: torch.Tensor, *,
                         resolution: int = 512) -> torch.Tensor:
    """The source's complete UV-space coordinates: partial coordinates from its IUV map (with left/right
    symmetry), normalised as inference.py does, completed by the CCM.

    Args:
        ccm: the coordinate-completion model. iuv: [1, 3, H, W] raw IUV of the (unpadded) source.
        lookup: [24, 256, 256, 2] UV lookup table. resolution: side of the UV map (the generator's size).

    Returns:
        float32 [1, 2, R, R] in (-1, 1), on the CCM's device.
    """
    iuv = check_iuv(iuv, "source IUV map")
    table = check_lookup(lookup).cpu().numpy()
    hwc = iuv[0].permute(1, 2, 0).to("cpu", torch.uint8).numpy()
    coords, mask = partial_coordinates(hwc, table, resolution)
    uv_coor, uv_mask = normalize_partial_coordinates(coords, mask, *hwc.shape[:2])
    device = next(ccm.parameters()).device
    return ccm(uv_coor.to(device), uv_mask.to(device)).float()


def appearance_input(image: torch.Tensor, silhouette: torch.Tensor, coordinates: torch.Tensor) -> torch.Tensor:
    """The generator's `appearance` [N, 6, S, S]: RGB [-1, 1], joined silhouette [0, 1], coordinates [-1, 1]."""
    return torch.cat([image, silhouette, coordinates.to(image)], 1)


def _noise_check(G: PoseWithStyleGenerator, noise: list[torch.Tensor] | None) -> None:
    if noise is not None and len(noise) != G.config.num_noise:
        raise InputError(f"Pass {G.config.num_noise} noise maps (one per synthesis layer), not {len(noise)}.")


@torch.inference_mode()
def repose(G: PoseWithStyleGenerator, ccm: CoordinateCompletion, image: torch.Tensor, silhouette: torch.Tensor,
           iuv_source: torch.Tensor, iuv_target: torch.Tensor, lookup: torch.Tensor, *,
           noise: list[torch.Tensor] | None = None, generator: torch.Generator | None = None) -> ReposeResult:
    """Repaint the person of `image` in the pose of `iuv_target` (the official inference.py).

    Args:
        G: the reposing generator (size S). ccm: the coordinate-completion model.
        image: source photo [1, 3, S, w] in [-1, 1] (`image_from_uint8`), w <= S.
        silhouette: [1, 1, S, w] in [0, 1] (`silhouette_from_uint8`); joined with the body pixels here.
        iuv_source: [1, 3, S, w] raw IUV (I, U, V) of the photo. iuv_target: [1, 3, S, w'] raw IUV of the pose.
        lookup: [24, 256, 256, 2] UV lookup table.
        noise: `G.config.num_noise` maps [1, 1, r, r]; None draws them from `generator`.

    Returns:
        `ReposeResult` on G's device.
    """
    img, sil, iuv_s = _check_person(G.size, image, silhouette, iuv_source, "source")
    iuv_t = check_iuv(iuv_target, "target IUV map")
    if iuv_t.shape[0] != 1 or iuv_t.shape[2] != G.size or iuv_t.shape[3] > G.size:
        raise InputError(f"The target IUV map must be {G.size} px high and at most {G.size} px wide; got "
                         f"{list(iuv_t.shape[2:])}.")
    lookup = check_lookup(lookup)
    _noise_check(G, noise)
    device = next(G.parameters()).device
    coor = complete_coordinates(ccm, iuv_s, lookup, resolution=G.size).to(device)
    appearance = appearance_input(_to_square(img, G.size), _to_square(sil, G.size), coor).to(device)
    out = G(appearance, _to_square(iuv_t, G.size).to(device), lookup, noise=noise, generator=generator)
    return ReposeResult(image=_crop(out, iuv_t.shape[3]), square=out, coordinates=coor)


@torch.inference_mode()
def transfer_garment(G: PoseWithStyleGenerator, ccm: CoordinateCompletion, image: torch.Tensor,
                     silhouette: torch.Tensor, iuv: torch.Tensor, garment_image: torch.Tensor,
                     garment_silhouette: torch.Tensor, garment_iuv: torch.Tensor, lookup: torch.Tensor,
                     parts_map: torch.Tensor, *, part: str = "upper_body", noise: list[torch.Tensor] | None = None,
                     generator: torch.Generator | None = None) -> GarmentResult:
    """Dress the person of `image` in one part of the person of `garment_image`, keeping the person's pose
    (the official garment_transfer.py).

    Args:
        image, silhouette, iuv: the person (as in `repose`). garment_*: the person who wears the garment.
        lookup: UV lookup table. parts_map: [1, 1, h, w] UV part map (`uv_space_parts.npy`).
        part: one of `GARMENT_PARTS`: 'upper_body', 'lower_body', 'full_body' or 'face'.

    Returns:
        `GarmentResult` on G's device.
    """
    if part not in GARMENT_PARTS:
        raise InputError(f"Choose the part to transfer among {', '.join(GARMENT_PARTS)}; got {part!r}.")
    img, sil, iuv = _check_person(G.size, image, silhouette, iuv, "person")
    g_img, g_sil, g_iuv = _check_person(G.size, garment_image, garment_silhouette, garment_iuv, "garment")
    if not isinstance(parts_map, torch.Tensor) or parts_map.ndim != 4 or parts_map.shape[:2] != (1, 1):
        raise InputError("The UV part map must be one map [1, 1, h, w] (uv_space_parts.npy).")
    lookup = check_lookup(lookup)
    _noise_check(G, noise)
    device = next(G.parameters()).device
    sq = G.size
    person = appearance_input(_to_square(img, sq), _to_square(sil, sq),
                              complete_coordinates(ccm, iuv, lookup, resolution=sq)).to(device)
    garment = appearance_input(_to_square(g_img, sq), _to_square(g_sil, sq),
                               complete_coordinates(ccm, g_iuv, lookup, resolution=sq)).to(device)
    pose = _to_square(iuv, sq).to(device)
    styles, part_mask = G.garment_styles(person, garment, pose, lookup, parts_map, GARMENT_PARTS[part])
    out = G.synthesize(pose, styles, noise if noise is not None else G.make_noise(1, generator, device))
    return GarmentResult(image=_crop(out, iuv.shape[3]), square=out, part_mask=part_mask)
