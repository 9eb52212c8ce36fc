"""EG3D weight records (Chan et al., "Efficient Geometry-aware 3D Generative Adversarial
Networks", CVPR 2022, NVlabs/eg3d). No Hub mirror was found; NVIDIA publishes the pickles on NGC
(`research/eg3d`). Each record is a local file: put it in `$HUB_WEIGHTS_DIR` (default
`~/.cache/stylegan-hub/weights`) or point `HUB_MODEL_PATH_<ID>` at it. Records only: the model
cache loads each pickle with `shared.loaders.load_generator` (restricted unpickler, nothing in the
file runs) into `shared.archs.eg3d.EG3DGenerator`; rendering settings come from the pickle.
"""
from __future__ import annotations

from shared.registry._card import LocalSource, ModelCard

_LICENSE = "NVIDIA Source Code License-NC (non-commercial use only)"
_PAPER = "Chan et al., Efficient Geometry-aware 3D Generative Adversarial Networks, CVPR 2022 (arXiv:2112.07945)"
_NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research/eg3d/versions/1/files/"

# (id suffix, NGC file, output resolution, neural-rendering resolution, what it draws)
_PICKLES = (
    ("ffhq-512", "ffhq512-128.pkl", 512, 128, "human faces (FFHQ)"),
    ("ffhq-512-nr64", "ffhq512-64.pkl", 512, 64, "human faces (FFHQ), first training stage"),
    ("ffhqrebalanced-512", "ffhqrebalanced512-128.pkl", 512, 128, "human faces (FFHQ, pose-rebalanced)"),
    ("ffhqrebalanced-512-nr64", "ffhqrebalanced512-64.pkl", 512, 64, "human faces (FFHQ, pose-rebalanced)"),
    ("afhqcats-512", "afhqcats512-128.pkl", 512, 128, "cat faces (AFHQv2 Cats)"),
    ("shapenetcars-128", "shapenetcars128-64.pkl", 128, 64, "cars (ShapeNet Cars)"),
)


def _card(suffix: str, fname: str, res: int, neural_res: int, what: str) -> ModelCard:
    return ModelCard(
        id=f"eg3d-{suffix}",
        family="eg3d",
        arch="eg3d",
        arch_config={"img_resolution": res, "neural_rendering_resolution": neural_res},
        format="nvlabs-pkl",
        tasks=("3d-rendering", "generation"),
        sources=(LocalSource(f"$HUB_WEIGHTS_DIR/{fname}"),),
        sha256=None,
        size=None,
        license=_LICENSE,
        paper=_PAPER,
        official_repo="https://github.com/NVlabs/eg3d",
        resolution=res,
        description=f"EG3D tri-plane generator, {res} px ({neural_res} px neural rendering): {what}. "
                    f"Not on the Hub: download {fname} from NVIDIA NGC.",
        manual_url=_NGC + fname,
    )


CARDS: tuple[ModelCard, ...] = tuple(_card(*row) for row in _PICKLES)
