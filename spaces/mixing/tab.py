"""Mixing tab: style mixing (Karras et al., 2019), Image2StyleGAN++ crossover, and interpolation.

The methods land with the mixing issue; this tab already offers the registry's models and
shows the latents the session sent here.
"""
from __future__ import annotations

from typing import Any

from spaces.family import FamilySpec, build_family_tab

SPEC = FamilySpec(
    key="mixing",
    title="Mixing",
    purpose=("### Mixing\nCombine latents: take the coarse styles (pose, face shape) of one face and the fine "
             "styles (colours) of another, glue two halves of different faces into one coherent face, or "
             "interpolate smoothly between latents and export the result as a video."),
    methods=(
        ("Style mixing (StyleGAN, Karras et al., 2019)", "copy the coarse, middle or fine W+ layers of B into A; the paper's grid"),
        ("Crossover and inpainting (Image2StyleGAN++)", "masked optimisation merges two faces or fills a hole"),
        ("Interpolation", "slerp in Z or lerp in W/W+, per layer range, as MP4 or GIF"),
    ),
    receives_latents=True,
)


def build_tab(ctx: Any) -> None:
    build_family_tab(ctx, SPEC)
