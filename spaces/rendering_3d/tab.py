"""3D rendering tab: 3D-aware generators (StyleNeRF, EG3D) rendered from any camera.

The methods land with a later issue; this tab already offers the registry's models.
"""
from __future__ import annotations

from typing import Any

from spaces.family import FamilySpec, build_family_tab

SPEC = FamilySpec(
    key="3d-rendering",
    title="3D rendering",
    purpose=("### 3D rendering\nGenerate faces with 3D-aware generators and look at them from any camera: orbit "
             "videos, depth maps and meshes."),
    methods=(
        ("StyleNeRF (Gu et al., 2022)", "a style-based NeRF generator; FFHQ 256 to 1024 px from the Hub"),
        ("EG3D (Chan et al., 2022)", "a tri-plane generator; weights as a local file from NVIDIA NGC"),
        ("Orbit video and depth", "camera yaw/pitch sliders, an orbit as MP4, the depth map"),
        ("Mesh export", "marching cubes on the density field, shown in a 3D viewer"),
    ),
)


def build_tab(ctx: Any) -> None:
    build_family_tab(ctx, SPEC)
