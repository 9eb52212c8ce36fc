"""Inversion tab: real photos into a generator's latent space (Image2StyleGAN, pSp, e4e, ReStyle, PTI).

The methods land with the inversion issue; this tab already offers the registry's models
and shows the latents the session sent here.
"""
from __future__ import annotations

from typing import Any

from spaces.family import FamilySpec, build_family_tab

SPEC = FamilySpec(
    key="inversion",
    title="Inversion",
    purpose=("### Inversion\nPut a real photo into a generator's latent space so it can be edited: upload a "
             "photo or pick an example, align the face (FFHQ alignment from dlib's 68 landmarks), run several "
             "inversion methods side by side, compare reconstruction quality and time, then send the chosen "
             "latent to the editing tabs."),
    methods=(
        ("Optimisation in W and W+ (Image2StyleGAN)", "perceptual + pixel loss minimised with Adam"),
        ("W+ and noise maps (Image2StyleGAN++)", "also fits the noise inputs, optionally inside a mask"),
        ("pSp (Richardson et al., 2021)", "one encoder pass from the image to W+"),
        ("e4e (Tov et al., 2021)", "an encoder trained to stay in editable regions of W+"),
        ("ReStyle (Alaluf et al., 2021)", "pSp or e4e applied iteratively, each step's output kept"),
        ("Hybrid", "an encoder's result refined by optimisation"),
        ("PTI, pivotal tuning (Roich et al., 2022)", "fine-tunes a per-session copy of the generator around the inverted latent"),
    ),
    receives_latents=True,
)


def build_tab(ctx: Any) -> None:
    build_family_tab(ctx, SPEC)
