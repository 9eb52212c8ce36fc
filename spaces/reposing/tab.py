"""Reposing tab: change the head pose of a face while keeping who it is.

The methods land with a later issue; this tab already offers the registry's models.
"""
from __future__ import annotations

from typing import Any

from spaces.family import FamilySpec, build_family_tab

SPEC = FamilySpec(
    key="reposing",
    title="Reposing",
    purpose=("### Reposing\nTurn a generated or inverted face to look left, right, up or down while its identity "
             "stays the same, in a 2D StyleGAN through its latent space or in a 3D-aware generator through "
             "its camera."),
    methods=(
        ("Pose directions in W (InterFaceGAN-style)", "move along yaw and pitch directions, with identity layers held fixed"),
        ("Camera control in 3D-aware generators", "render the same StyleNeRF or EG3D latent from a new camera"),
        ("StyleGAN3 input transform", "translate and rotate the canvas of a StyleGAN3 image (already in Generate)"),
    ),
)


def build_tab(ctx: Any) -> None:
    build_family_tab(ctx, SPEC)
