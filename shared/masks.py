"""Region masks chosen by name, as the mixing and editing methods take them (Image2StyleGAN++'s
masked embedding, Abdal et al., CVPR 2020; StyleSpace's localisation, Wu et al., CVPR 2021): a
preset half or centre square, a part of a face segmented by the demo world's predictor, or the
painted layers of an image editor. The masks themselves are built by `shared.crossover`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from shared.crossover import mask_from_layers, predicted_part_mask, preset_mask
from shared.errors import InputError

__all__ = ["region_mask", "shade_outside"]


def region_mask(choice: str, size: int, image: torch.Tensor | None = None,
                layers: Sequence[np.ndarray | None] | None = None) -> torch.Tensor:
    """[1, 1, size, size] float mask (1 = the region) for `choice`: 'drawn' (the union of `layers`,
    RGBA uint8 [H, W, 4]), 'part:<name>' (a `shared.crossover.PART_PRESETS` part of `image` [1, 3, H, W] in [-1, 1],
    as the demo predictor segments it) or a `MASK_PRESETS` name
    (`shared.crossover`)."""
    if choice == "drawn":
        return mask_from_layers(list(layers or []), size)
    if choice.startswith("part:"):
        if image is None:
            raise InputError("A part mask needs the image to segment.")
        return predicted_part_mask(image, choice.split(":", 1)[1], size)
    return preset_mask(choice, size)   # raises, naming the presets, for any other name


def shade_outside(image: torch.Tensor, mask: torch.Tensor, level: float = -0.6) -> torch.Tensor:
    """`image` [N, 3, H, W] in [-1, 1] with the pixels outside `mask` ([1, 1, H, W], 1 = kept) set to a
    dark grey `level`: how a mask is shown."""
    return image * mask + (1 - mask) * torch.full_like(image, level)
