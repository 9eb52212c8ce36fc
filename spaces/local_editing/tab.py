"""Local editing tab: Editing in Style, Retrieve in Style, StyleSpace, linear directions, StyleFlow.

The methods land with the local-editing issue; this tab already offers the registry's models
and shows the latents the session sent here.
"""
from __future__ import annotations

from typing import Any

from spaces.family import FamilySpec, build_family_tab

SPEC = FamilySpec(
    key="local-editing",
    title="Local editing",
    purpose=("### Local editing\nChange one thing about a face (the eyes, the smile, the hair, the lighting) and "
             "leave the rest alone, with several published methods side by side on the same latent."),
    methods=(
        ("Editing in Style (Collins et al., 2020)", "part clusters of a layer's activations; transfer a part's style from a reference"),
        ("Retrieve in Style (Chong et al., 2021)", "part-specific style channels; transfer and retrieval of eyes, nose, mouth, hair, pose"),
        ("StyleSpace (Wu et al., 2021)", "edit single style channels; find the channels that control a drawn region"),
        ("Linear directions", "InterFaceGAN boundaries, GANSpace (PCA of W) and SeFa (closed-form factorisation)"),
        ("StyleFlow (Abdal et al., 2021)", "attribute and lighting sliders through a conditional normalising flow"),
    ),
    receives_latents=True,
)


def build_tab(ctx: Any) -> None:
    build_family_tab(ctx, SPEC)
