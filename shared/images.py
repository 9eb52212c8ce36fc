"""Conversions between the hub's image tensors and what a UI shows.

Inside the hub an image batch is float `[N, 3, H, W]` in [-1, 1] (NVlabs' convention, see
`gen_images.py` in github.com/NVlabs/stylegan3, which maps it with `x * 127.5 + 128` and a clamp).
Only at the edge does it become uint8 `[N, H, W, 3]` (or one contact sheet for a grid).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from shared.errors import InputError

__all__ = ["image_grid", "image_to_tensor", "to_uint8_hwc"]


def to_uint8_hwc(images: torch.Tensor) -> np.ndarray:
    """Map a batch of images from [-1, 1] to displayable bytes.

    Args:
        images: float tensor [N, C, H, W] (C = 1 or 3) in [-1, 1], any device; values outside
            the range are clipped.
    Returns:
        np.uint8 array [N, H, W, C] on the CPU (-1 -> 0, 0 -> 128, 1 -> 255).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be [N, 1|3, H, W], got {tuple(images.shape)}")
    x = images.detach().to("cpu", torch.float32)
    x = (x * 127.5 + 128).clamp(0, 255).to(torch.uint8)  # [N, C, H, W]
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [1, 3, H, W] in [-1, 1] (the inverse of `to_uint8_hwc`, up to rounding).

    Raises:
        InputError: the image is not a uint8 RGB array.
    """
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise InputError(f"Expected a uint8 RGB image [H, W, 3], got {arr.dtype} {tuple(arr.shape)}.")
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float().sub(128.0).div(127.5)


def image_grid(images: np.ndarray, *, columns: int | None = None, pad: int = 0,
               fill: int = 255) -> np.ndarray:
    """Tile uint8 images row by row into one contact sheet.

    Args:
        images: uint8 array [N, H, W, C] (as `to_uint8_hwc` returns).
        columns: images per row; None picks ceil(sqrt(N)).
        pad: pixels between tiles and around the sheet.
        fill: value of the padding and of empty cells.
    Returns:
        uint8 array [rows * (H + pad) + pad, columns * (W + pad) + pad, C].
    """
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [N, H, W, C], got {images.dtype} {images.shape}")
    n, h, w, c = images.shape
    if n == 0:
        raise ValueError("image_grid needs at least one image")
    cols = columns or math.ceil(math.sqrt(n))
    if cols < 1:
        raise ValueError(f"columns must be >= 1, got {cols}")
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    sheet = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), fill, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        sheet[y:y + h, x:x + w] = images[i]
    return sheet
