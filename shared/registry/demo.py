"""The demo world's models: networks trained by this project on procedural portraits
(shared/portraits.py), shipped in the repository (shared/demo/bundle/, built by
`python -m shared.demo.build`), so every tab works on a machine without network; and the
embedded untrained StyleGAN2 (Karras et al., CVPR 2020; layout of rosinality/stylegan2-pytorch
`Generator`) whose weights are made in code from a fixed seed. Records only.

The sha256 and size of each bundle file are those of `shared/demo/bundle/manifest.json`;
tests/test_demo_bundle.py checks that the two agree with the files.
"""
from __future__ import annotations

from shared.registry._card import BuiltinSource, LocalSource, ModelCard

DEMO_ID = "demo-portraits-stylegan2-64"
DEMO_ENCODER_ID = "demo-portraits-e4e-64"
DEMO_CLIP_ID = "demo-portraits-clip"
DEMO_FLOW_ID = "demo-portraits-styleflow"
UNTRAINED_ID = "demo-untrained-stylegan2-64"
BUNDLE = "shared/demo/bundle"
_LICENSE = "MIT (project code and weights, trained by this project)"
_STYLEGAN2 = "Karras et al., Analyzing and Improving the Image Quality of StyleGAN, CVPR 2020 (arXiv:1912.04958)"

#: generator id -> {inversion method key: encoder record} for encoders trained for that generator
PAIRED_ENCODERS: dict[str, dict[str, str]] = {DEMO_ID: {"e4e": DEMO_ENCODER_ID}}

CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        id=DEMO_ID,
        family="demo",
        arch="stylegan2",
        arch_config={"size": 64, "style_dim": 128, "n_mlp": 4,
                     "channels": {"4": 256, "8": 192, "16": 128, "32": 96, "64": 48}},
        format="safetensors",
        tasks=("generation", "mixing", "inversion", "local-editing", "text-editing"),
        sources=(LocalSource(f"{BUNDLE}/generator.safetensors"),),
        sha256="4a4b263722256ed7793a3f7e6dac89cd87579d9f420718c2b3cb6af96f693215",
        size=4699992,
        license=_LICENSE,
        paper=_STYLEGAN2,
        official_repo="https://github.com/NVlabs/stylegan2",
        resolution=64,
        description="The demo world's StyleGAN2, trained by this project on procedural cartoon portraits "
                    "(known pose, hair, glasses, smile...), shipped in the repository: works offline. "
                    "Its metrics are in the Models tab.",
    ),
    ModelCard(
        id=DEMO_ENCODER_ID,
        family="demo",
        arch="e4e",
        arch_config={"encoder_type": "Encoder4Editing", "input_size": 64, "widths": [32, 64, 96, 128],
                     "blocks": [1, 1, 2, 1], "n_styles": 10, "w_dim": 128},
        format="safetensors",
        tasks=("encoding", "inversion"),
        sources=(LocalSource(f"{BUNDLE}/encoder.safetensors"),),
        sha256="10e27aaa20249775b57097733de05a700df3b4fb51f2bd75164da1f9fc72ecba",
        size=10584408,
        license=_LICENSE,
        paper="Tov et al., Designing an Encoder for StyleGAN Image Manipulation, SIGGRAPH 2021 (arXiv:2102.02766)",
        official_repo="https://github.com/omertov/encoder4editing",
        resolution=64,
        description="e4e with a reduced IR-SE backbone, trained by this project to invert the demo generator "
                    "(image -> W+).",
    ),
    ModelCard(
        id=DEMO_CLIP_ID,
        family="demo",
        arch="open-clip",
        arch_config={"prompt_templates": "demo"},
        format="open-clip-safetensors",
        tasks=("text-editing", "text-image-embedding"),
        sources=(LocalSource(f"{BUNDLE}/clip.safetensors"),),
        sha256="1c8d9534d24413b5a1104229a8fd9406280139f90fc192a08a626aad51912c29",
        size=6506066,
        license=_LICENSE,
        paper="Radford et al., Learning Transferable Visual Models From Natural Language Supervision, ICML 2021",
        official_repo="https://github.com/mlfoundations/open_clip",
        resolution=None,
        description="A small CLIP built and trained with open_clip on render/caption pairs of the demo world, "
                    "for text-driven editing offline.",
    ),
    ModelCard(
        id=DEMO_FLOW_ID,
        family="demo",
        arch="styleflow-cnf",
        arch_config={"input_dim": 128, "hidden": [112, 112, 112], "context_dim": 8, "num_ws": 10,
                     "for": DEMO_ID},
        format="safetensors",
        tasks=("local-editing",),
        sources=(LocalSource(f"{BUNDLE}/flow.safetensors"),),
        sha256="55157a39e170f95f83a2774121c36c91d1f2540c046a1384093f4341d07445ea",
        size=133392,
        license=_LICENSE,
        paper="Abdal et al., StyleFlow: Attribute-conditioned Exploration of StyleGAN-Generated Images using "
              "Conditional Continuous Normalizing Flows, ACM TOG 2021 (arXiv:2008.02401)",
        official_repo="https://github.com/RameenAbdal/StyleFlow",
        resolution=None,
        description="A StyleFlow prior over the demo generator's W, trained by this project "
                    "(`shared/demo/train_flow.py`), conditioned on yaw, pitch, smile, light direction and the "
                    "probabilities of glasses, baldness and a beard as the demo predictor reads them; the Local "
                    "editing tab's StyleFlow sliders on the demo model. Training record in `flow.json`.",
    ),
    ModelCard(
        id=UNTRAINED_ID,
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
        paper=_STYLEGAN2,
        official_repo="https://github.com/NVlabs/stylegan2",
        resolution=64,
        description="UNTRAINED: a 64 px StyleGAN2 with fixed random weights made in code (no download or file); "
                    "its images are random patterns, not faces. A baseline for the demo world's metrics.",
        untrained=True,
    ),
)
