"""The region painter of the Mixing and Local editing tabs: a Gradio image editor with one fixed
brush, and the value that puts an image into it (enlarged so small generators are easy to paint on).
"""
from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np

__all__ = ["PAINTER_SIDE", "painter_value", "region_painter"]

PAINTER_SIDE = 256   # images smaller than this are enlarged (nearest) by a whole factor to reach it


def region_painter(label: str) -> gr.ImageEditor:
    """An image editor that paints one colour on one layer (read by `shared.masks.region_mask`)."""
    return gr.ImageEditor(label=label, type="numpy", image_mode="RGBA", sources=[], transforms=[], layers=False,
                          brush=gr.Brush(colors=["#ff3366"], default_size=16, color_mode="fixed"),
                          canvas_size=(PAINTER_SIDE, PAINTER_SIDE), height=300, format="png")


def painter_value(image: Any) -> dict[str, Any]:
    """The editor's value showing `image` (uint8 [H, W, 3+]) enlarged, with nothing painted yet."""
    arr = np.asarray(image)[..., :3]
    k = max(1, PAINTER_SIDE // max(arr.shape[:2]))
    big = arr.repeat(k, 0).repeat(k, 1) if k > 1 else arr
    return {"background": big, "layers": [], "composite": big}
