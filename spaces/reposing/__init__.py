"""Reposing tab: change the pose of a face while keeping who it is.

Layout and wiring only. Sections: pose directions in a 2D StyleGAN's latent space and StyleGAN3's
input transform (`spaces.reposing.directions` over `shared.reposing`); Pose with Style on its official
checkpoints (`spaces.reposing.posewithstyle` over `shared.posewithstyle`); the learnt rig and the
side-by-side comparison keep their places until they work.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from spaces.reposing import directions, posewithstyle

__all__ = ["build_tab"]

TASK = "reposing"
INTRO = """### Reposing
Turn a generated or inverted face to look left, right, up or down while its identity stays the same.
**Directions** moves the latent along pose directions on the coarse rows (the demo world's fitted
boundaries in degrees, InterFaceGAN's FFHQ `pose` file, or GANSpace/SeFa components), and turns
StyleGAN3's canvas with its input transform. **Pose with Style** reposes a person photo to a target
DensePose pose (its official checkpoints, files you download). 3D-aware generators turn their camera in the
**3D rendering** tab."""
LATER = (
    ("Rig", "StyleRig-style rig (Tewari et al., CVPR 2020): a RigNet learnt over W that sets yaw, pitch, smile, "
            "mouth and light to the values you ask for. Not trained yet; this section stays here until it works."),
    ("Compare", "One source and one target pose through every reposing method side by side, with timings; it opens "
                "with the rig and the demo-world Pose with Style model."),
)


def build_tab(ctx: Any) -> None:
    with gr.Tab("Reposing", id=TASK):
        gr.Markdown(INTRO)
        with gr.Tabs():
            directions.build_section(ctx)
            posewithstyle.build_section(ctx)
            for title, text in LATER:
                with gr.Tab(title):
                    gr.Markdown(f"**Not available yet.** {text}")
