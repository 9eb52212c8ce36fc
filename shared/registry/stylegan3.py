"""StyleGAN3 weight records (Karras et al., "Alias-Free Generative Adversarial Networks",
NeurIPS 2021, NVlabs/stylegan3), configs T (translation) and R (rotation equivariant).

No Hub mirror was found; NVIDIA publishes the pickles on NGC (`research/stylegan3`). Each record
is a local file: download it from `manual_url` and put it in `$HUB_WEIGHTS_DIR` (default
`~/.cache/stylegan-hub/weights`) or point `HUB_MODEL_PATH_<ID>` at it. Records only.
"""
from __future__ import annotations

from shared.registry._card import LocalSource, ModelCard

_LICENSE = "NVIDIA Source Code License-NC (non-commercial use only)"
_PAPER = "Karras et al., Alias-Free Generative Adversarial Networks, NeurIPS 2021 (arXiv:2106.12423)"
_NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"

# (dataset tag in the file name, resolution, what it draws)
_DATASETS = (
    ("ffhq", 1024, "aligned human faces (FFHQ)"),
    ("ffhqu", 1024, "unaligned human faces (FFHQ-U)"),
    ("ffhqu", 256, "unaligned human faces (FFHQ-U)"),
    ("metfaces", 1024, "faces from art collections (MetFaces)"),
    ("metfacesu", 1024, "unaligned MetFaces"),
    ("afhqv2", 512, "animal faces (AFHQv2)"),
)
_CONFIGS = {"t": "translation equivariant (config T)", "r": "rotation equivariant (config R)"}


def _card(cfg: str, dataset: str, res: int, what: str) -> ModelCard:
    fname = f"stylegan3-{cfg}-{dataset}-{res}x{res}.pkl"
    faces = dataset.startswith(("ffhq", "metfaces"))
    tasks = ("generation", "mixing", "inversion", "reposing") + (("text-editing",) if faces else ())
    return ModelCard(
        id=f"stylegan3-{cfg}-{dataset}-{res}",
        family="stylegan3",
        arch="stylegan3",
        arch_config={"img_resolution": res, "config": cfg.upper()},  # the rest is read from the pickle
        format="nvlabs-pkl",
        tasks=tasks,
        sources=(LocalSource(f"$HUB_WEIGHTS_DIR/{fname}"),),
        sha256=None,
        size=None,
        license=_LICENSE,
        paper=_PAPER,
        official_repo="https://github.com/NVlabs/stylegan3",
        resolution=res,
        description=f"StyleGAN3-{cfg.upper()} {res} px, {_CONFIGS[cfg]}: {what}. Not on the Hub: "
                    f"download {fname} from NVIDIA NGC.",
        manual_url=_NGC + fname,
    )


CARDS: tuple[ModelCard, ...] = tuple(_card(cfg, *row) for row in _DATASETS for cfg in ("t", "r"))
