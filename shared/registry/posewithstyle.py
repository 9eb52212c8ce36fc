"""Pose with Style records (AlBahar et al., SIGGRAPH Asia 2021; BadourAlBahar/pose-with-style, MIT): the
reposing generator `posewithstyle.pt`, the coordinate-completion model `CCM_epoch50.pt`, the DensePose UV
lookup table `dp_uv_lookup_256.npy` and the UV part map `uv_space_parts.npy` (garment transfer). All four
are Google Drive downloads linked from the official README, not on the Hub: put them in
`$HUB_WEIGHTS_DIR/posewithstyle/` or point `HUB_MODEL_PATH_<ID>` at them. Records only.
"""
from __future__ import annotations

from shared.registry._card import LocalSource, ModelCard

_PAPER = ("AlBahar et al., Pose with Style: Detail-Preserving Pose-Guided Image Synthesis with Conditional "
          "StyleGAN, SIGGRAPH Asia 2021 (arXiv:2109.06166)")
_REPO = "https://github.com/BadourAlBahar/pose-with-style"
_MIT = "MIT (pose-with-style code and weights); trained on DeepFashion In-shop, whose terms allow non-commercial " \
       "research only"
_DRIVE = "https://drive.google.com/file/d/{}/view"

GENERATOR_ID = "posewithstyle-deepfashion-512"
CCM_ID = "posewithstyle-ccm-deepfashion"
LOOKUP_ID = "densepose-uv-lookup-256"
PARTS_ID = "densepose-uv-parts"


def _local(name: str) -> tuple[LocalSource]:
    return (LocalSource(f"$HUB_WEIGHTS_DIR/posewithstyle/{name}"),)


CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        id=GENERATOR_ID,
        family="posewithstyle",
        arch="posewithstyle",
        arch_config={"size": 512, "ngf": 64, "modulation_hidden": 128},
        format="posewithstyle-pt",
        tasks=("reposing",),
        sources=_local("posewithstyle.pt"),
        sha256=None,
        size=None,
        license=_MIT,
        paper=_PAPER,
        official_repo=_REPO,
        resolution=512,
        description="Pose with Style reposing generator (`posewithstyle.pt`, its `g_ema`): repaints a DeepFashion "
                    "person photo in a target DensePose pose; inputs are the photo, its silhouette and IUV map, "
                    "and the target IUV map, all 512 px high.",
        manual_url=_DRIVE.format("1IcIJMTHA-_-_qcjRIrnSUnQf4n8GmtPd"),
        companions={"ccm": CCM_ID, "uv-lookup": LOOKUP_ID, "uv-parts": PARTS_ID},
    ),
    ModelCard(
        id=CCM_ID,
        family="posewithstyle",
        arch="posewithstyle-ccm",
        arch_config={"ngf": 32, "uv_resolution": 512},
        format="posewithstyle-pt",
        tasks=("reposing",),
        sources=_local("CCM_epoch50.pt"),
        sha256=None,
        size=None,
        license=_MIT,
        paper=_PAPER,
        official_repo=_REPO,
        resolution=512,
        description="Pose with Style coordinate-completion model (`CCM_epoch50.pt`, its `g`): fills in the image "
                    "coordinates of the body surface the source photo does not show (512 x 512 UV map).",
        manual_url=_DRIVE.format("1Tck_NzJ4ifT76csEShOtlRK7HpfjFhHP"),
    ),
    ModelCard(
        id=LOOKUP_ID,
        family="posewithstyle",
        arch="densepose-uv-lookup",
        arch_config={"shape": [24, 256, 256, 2], "index": "[I - 1, V, U]"},
        format="npy",
        tasks=("reposing",),
        sources=_local("dp_uv_lookup_256.npy"),
        sha256=None,
        size=None,
        license="MIT (pose-with-style repository)",
        paper=_PAPER,
        official_repo=_REPO,
        resolution=None,
        description="DensePose UV lookup table (`dp_uv_lookup_256.npy`): for each body part and (V, U) value of "
                    "an IUV map, the point of the 2-D UV atlas it belongs to. Needed by every Pose with Style "
                    "model.",
        manual_url=_DRIVE.format("1JLQ5bGl7YU-BwmdSc-DySy5Ya6FQIJBy"),
    ),
    ModelCard(
        id=PARTS_ID,
        family="posewithstyle",
        arch="densepose-uv-parts",
        arch_config={"parts": "0-based DensePose part per UV-atlas pixel"},
        format="npy",
        tasks=("reposing",),
        sources=_local("uv_space_parts.npy"),
        sha256=None,
        size=None,
        license="MIT (pose-with-style repository)",
        paper=_PAPER,
        official_repo=_REPO,
        resolution=None,
        description="UV-space body-part segmentation (`uv_space_parts.npy`): which body part each pixel of the UV "
                    "atlas belongs to; Pose with Style's garment transfer uses it to pick the upper body, lower "
                    "body, full body or face.",
        manual_url=_DRIVE.format("179zoQVVrEgFbkEmHwLHU1AAqPktH-guU"),
    ),
)
