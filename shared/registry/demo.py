"""The embedded default generator: a small StyleGAN2 (Karras et al., CVPR 2020; layout of
rosinality/stylegan2-pytorch `Generator`) whose weights are made in code from a fixed seed.

It is UNTRAINED: its images are coloured noise-like patterns, not faces. It exists so that a fresh
machine without network starts the hub and the Generate tab works; the demo-world bundle replaces
it as the default when it lands. Records only.
"""
from __future__ import annotations

from shared.registry._card import BuiltinSource, ModelCard

DEMO_ID = "demo-untrained-stylegan2-64"

CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        id=DEMO_ID,
        family="demo",
        arch="stylegan2",
        # Short form read by `StyleGAN2Config.from_dict` (rosinality-style fields).
        arch_config={"size": 64, "style_dim": 128, "n_mlp": 4,
                     "channels": {"4": 128, "8": 128, "16": 128, "32": 64, "64": 32}},
        format="builtin",
        tasks=("generation", "mixing"),
        sources=(BuiltinSource(seed=20240611),),
        sha256=None,
        size=None,
        license="MIT (project code)",
        paper="Karras et al., Analyzing and Improving the Image Quality of StyleGAN, CVPR 2020 (arXiv:1912.04958)",
        official_repo="https://github.com/NVlabs/stylegan2",
        resolution=64,
        description="UNTRAINED: a 64 px StyleGAN2 with fixed random weights made in code (no download), "
                    "so the hub works offline; its images are random patterns, not faces.",
        untrained=True,
    ),
)
