"""Text editing tab: StyleCLIP's three methods (global directions, mapper, optimisation) with any CLIP.

The methods land with the text-editing issue; this tab already offers the registry's models
and shows the latents the session sent here.
"""
from __future__ import annotations

from typing import Any

from spaces.family import FamilySpec, build_family_tab

SPEC = FamilySpec(
    key="text-editing",
    title="Text editing",
    purpose=("### Text editing\nEdit a face by describing the change (\"a smiling face\", \"purple hair\"), with "
             "StyleCLIP's three methods on any generator in the registry and any CLIP that open_clip loads, "
             "each with its cost shown."),
    methods=(
        ("Global directions (StyleCLIP)", "a text direction mapped to style channels through a CLIP relevance matrix; fast"),
        ("Latent mapper (StyleCLIP)", "a small network trained per prompt that maps a latent to its edit"),
        ("Latent optimisation (StyleCLIP)", "CLIP loss plus distance to the source latent, in W, W+ or S"),
    ),
    receives_latents=True,
)


def build_tab(ctx: Any) -> None:
    build_family_tab(ctx, SPEC)
