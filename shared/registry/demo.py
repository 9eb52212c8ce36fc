"""The demo world's models: networks trained by this project on procedural portraits
(shared/portraits.py), shipped in the repository (shared/demo/bundle/, built by
`python -m training.demo.build`), so every tab works on a machine without network; and the
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
DEMO_PREDICTOR_ID = "demo-portraits-predictor"
DEMO_DIRECTIONS_ID = "demo-portraits-directions"
UNTRAINED_ID = "demo-untrained-stylegan2-64"
BUNDLE = "shared/demo/bundle"
_LICENSE = "MIT (project code and weights, trained by this project)"
_STYLEGAN2 = "Karras et al., Analyzing and Improving the Image Quality of StyleGAN, CVPR 2020 (arXiv:1912.04958)"

# The StyleCLIP latent mappers trained for the demo generator: file stem, prompt (the file header's),
# config (the header's), sha256 and size (manifest.json). Listed in file-name order.
_MAPPERS: tuple[tuple[str, str, dict, str, int], ...] = (
    ("blonde_hair", "a person with blonde hair",
     {"w_dim": 128, "layers": 1, "levels": ["coarse", "medium", "fine"], "lr_mul": 0.01},
     "0f7eeac0ca1d1744b1690e15df31a9fc3d3662cbce586d397ea5b4ae46cba942", 100928),
    ("glasses", "a person wearing glasses",
     {"w_dim": 128, "layers": 2, "levels": ["coarse", "medium"], "lr_mul": 0.01},
     "9e61613de44285f02c4bcec32861b8f3cc142a4c0faab004eefe4a56a0701151", 134120),
)
DEMO_MAPPER_IDS = tuple(f"demo-portraits-mapper-{stem.replace('_', '-')}" for stem, *_ in _MAPPERS)


def _mapper_card(stem: str, prompt: str, config: dict, sha256: str, size: int) -> ModelCard:
    return ModelCard(
        id=f"demo-portraits-mapper-{stem.replace('_', '-')}",
        family="demo",
        arch="styleclip-levels-mapper",
        arch_config={"prompt": prompt, **config, "strength": 0.1},
        format="safetensors",
        tasks=("text-editing",),
        sources=(LocalSource(f"{BUNDLE}/mapper_{stem}.safetensors"),),
        sha256=sha256,
        size=size,
        license=_LICENSE,
        paper="Patashnik et al., StyleCLIP: Text-Driven Manipulation of StyleGAN Imagery, ICCV 2021 "
              "(arXiv:2103.17249)",
        official_repo="https://github.com/orpatashnik/StyleCLIP",
        resolution=None,
        description=f"StyleCLIP latent mapper for \"{prompt}\" on the demo generator, trained by this project "
                    f"with the demo CLIP (`python -m training.styleclip.train_mapper`); record in "
                    f"`mapper_{stem}.json`.",
    )


CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        id=DEMO_ID,
        family="demo",
        arch="stylegan2",
        # z is the renderer's factor vector in Gaussian coordinates (shared.demo.factor_latents): 35
        # dimensions, not normalised; each categorical factor's dimensions enter the mapping as the
        # one-hot code of arg-max(z_k + b_k), (start, offsets b) per factor as in the file's header.
        arch_config={"size": 64, "style_dim": 128, "n_mlp": 4, "z_dim": 35, "mapping_lr": 1.0, "normalize_z": False,
                     "channels": {"4": 256, "8": 192, "16": 128, "32": 96, "64": 64},
                     "z_onehot": [
                         [13, [-0.29009759777408733, 0.33759743921659785, 0.33759743921659785,
                               -0.19254864032955415, -0.19254864032955415]],
                         [18, [0.1713863886279668, 0.1713863886279668, 0.013970766255246372, -0.17837177175559,
                               -0.17837177175559]],
                         [23, [0.379114379963639, -0.03974108377125125, -0.3393732961923877]],
                         [26, [0.37101328080849155, -0.18550664040424578, -0.18550664040424578]],
                         [29, [0.0, 0.0, 0.0, 0.0]],
                         [33, [0.4769362759989332, -0.4769362759989332]]]},
        format="safetensors",
        tasks=("generation", "mixing", "inversion", "local-editing", "reposing", "text-editing"),
        sources=(LocalSource(f"{BUNDLE}/generator.safetensors"),),
        sha256="61befd133abe1cf22e2adbb2af951ca23e036dd45bbe1cd65c6d921a7bfbfb76",
        size=4744984,
        license=_LICENSE,
        paper=_STYLEGAN2,
        official_repo="https://github.com/NVlabs/stylegan2",
        resolution=64,
        description="The demo world's StyleGAN2, distilled by this project from the procedural portrait renderer "
                    "(known pose, hair, glasses, smile...; z is the renderer's factor vector), shipped in the "
                    "repository: works offline. Its metrics are in the Models tab.",
        companions={"encoder": DEMO_ENCODER_ID, "predictor": DEMO_PREDICTOR_ID, "clip": DEMO_CLIP_ID,
                    "flow": DEMO_FLOW_ID, "directions": DEMO_DIRECTIONS_ID, "mappers": DEMO_MAPPER_IDS},
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
        sha256="a8bce51f3a50f711056d93473095f95cfa91f064ddf21793b3cf21e22b9ad5cc",
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
        sha256="f01c3d98672a5dc32a795d7f60f344513a016ba87a4e129228dbe56a7a428989",
        size=133336,
        license=_LICENSE,
        paper="Abdal et al., StyleFlow: Attribute-conditioned Exploration of StyleGAN-Generated Images using "
              "Conditional Continuous Normalizing Flows, ACM TOG 2021 (arXiv:2008.02401)",
        official_repo="https://github.com/RameenAbdal/StyleFlow",
        resolution=None,
        description="A StyleFlow prior over the demo generator's W, trained by this project "
                    "(`training/demo/train_flow.py`), conditioned on yaw, pitch, smile, light direction and the "
                    "probabilities of glasses, baldness and a beard as the demo predictor reads them; the Local "
                    "editing tab's StyleFlow sliders on the demo model. Training record in `flow.json`.",
    ),
    ModelCard(
        id=DEMO_PREDICTOR_ID,
        family="demo",
        arch="demo-predictor",
        arch_config={"input_size": 64, "for": DEMO_ID},
        format="safetensors",
        tasks=("attribute-prediction",),
        sources=(LocalSource(f"{BUNDLE}/predictor.safetensors"),),
        sha256="32afd41fc0a4d93e2e07374823e469eb795baa9713d6bfa324f594b738a48c2b",
        size=2692178,
        license=_LICENSE,
        paper="Own construction: a ResNet-style encoder (He et al., CVPR 2016) with a feature-pyramid part "
              "decoder (Lin et al., CVPR 2017)",
        official_repo="this project (shared/demo/predictor.py)",
        resolution=64,
        description="The demo world's judge: a small CNN that reads every portrait factor and the part map of a "
                    "64 px image, trained by this project on renders (`python -m training.demo.predictor`). It "
                    "names clusters, reads edits, draws part masks and scores the demo generator.",
    ),
    ModelCard(
        id=DEMO_DIRECTIONS_ID,
        family="demo",
        arch="direction-set",
        arch_config={"space": "w", "w_dim": 128, "for": DEMO_ID},
        format="safetensors",
        tasks=("local-editing",),
        sources=(LocalSource(f"{BUNDLE}/directions.safetensors"),),
        sha256="a12e636b4d63822dc091f549b90ca57475a84c9b0b31df391708de68f832e9c4",
        size=20328,
        license=_LICENSE,
        paper="Shen et al., Interpreting the Latent Space of GANs for Semantic Face Editing, CVPR 2020 "
              "(arXiv:1907.10786)",
        official_repo="https://github.com/genforce/interfacegan",
        resolution=None,
        description="InterFaceGAN-style W directions of the demo generator, one per portrait factor, fitted by "
                    "this project on predictor labels and calibrated (fit and slope per direction).",
    ),
    *(_mapper_card(*m) for m in _MAPPERS),
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
