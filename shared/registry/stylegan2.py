"""StyleGAN2 weight records: rosinality's FFHQ config-f conversion and NVIDIA's PyTorch pickles.

Papers: Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (CVPR 2020,
NVlabs/stylegan2) and "Training Generative Adversarial Networks with Limited Data" (NeurIPS 2020,
NVlabs/stylegan2-ada-pytorch). The pickles are the files NVIDIA publishes on NGC under
`research/stylegan2` (names `stylegan2-<dataset>-<res>x<res>.pkl`), mirrored on the Hub by hysts
(`hysts/StyleGAN2`, later `public-data/StyleGAN2`, folder `models/`). Records only.
"""
from __future__ import annotations

from shared.registry._card import HubSource, ModelCard
from shared.registry.styleclip import MAPPER_CARDS

NVIDIA_NC = "NVIDIA Source Code License-NC (non-commercial use only)"
_STYLEGAN2 = "Karras et al., Analyzing and Improving the Image Quality of StyleGAN, CVPR 2020 (arXiv:1912.04958)"
_ADA = "Karras et al., Training Generative Adversarial Networks with Limited Data, NeurIPS 2020 (arXiv:2006.06676)"
_SG3 = "Karras et al., Alias-Free Generative Adversarial Networks, NeurIPS 2021 (arXiv:2106.12423)"
_NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
_GEN_TASKS = ("generation", "mixing", "inversion", "local-editing", "reposing")
_FACE_TASKS = _GEN_TASKS + ("text-editing",)

# The assets made for FFHQ config-f at 1024 px (both its rosinality conversion and NVIDIA's pickle):
# StyleFlow's prior, StyleCLIP's global-direction files (for OpenAI CLIP ViT-B/32) and its mappers.
FFHQ_CONFIG_F_COMPANIONS = {"flow": "styleflow-ffhq", "clip": "clip-vit-b-32", "relevance": "styleclip-fs3-ffhq",
                            "stylespace-stats": "styleclip-s-mean-std-ffhq",
                            "mappers": tuple(c.id for c in MAPPER_CARDS)}

# (dataset tag in the file name, resolution, paper that released it, what it draws, conditional classes)
_PICKLES = (
    ("ffhq", 1024, _STYLEGAN2, "aligned human faces (FFHQ), config-f", 0),
    ("ffhq", 512, _ADA, "aligned human faces (FFHQ)", 0),
    ("ffhq", 256, _ADA, "aligned human faces (FFHQ)", 0),
    ("ffhqu", 1024, _SG3, "unaligned human faces (FFHQ-U, StyleGAN3 paper baseline)", 0),
    ("ffhqu", 256, _SG3, "unaligned human faces (FFHQ-U, StyleGAN3 paper baseline)", 0),
    ("metfaces", 1024, _ADA, "faces from art collections (MetFaces)", 0),
    ("metfacesu", 1024, _SG3, "unaligned MetFaces (StyleGAN3 paper baseline)", 0),
    ("afhqcat", 512, _ADA, "cat faces (AFHQ Cat)", 0),
    ("afhqdog", 512, _ADA, "dog faces (AFHQ Dog)", 0),
    ("afhqwild", 512, _ADA, "wild animal faces (AFHQ Wild)", 0),
    ("afhqv2", 512, _SG3, "animal faces (AFHQv2, all classes)", 0),
    ("celebahq", 256, _ADA, "celebrity faces (CelebA-HQ)", 0),
    ("lsundog", 256, _ADA, "dogs (LSUN Dog)", 0),
    ("brecahad", 512, _ADA, "breast-cancer histopathology tiles (BreCaHAD)", 0),
    ("cifar10", 32, _ADA, "CIFAR-10 objects, class-conditional (10 classes)", 10),
)


def _pickle_card(dataset: str, res: int, paper: str, what: str, c_dim: int) -> ModelCard:
    fname = f"stylegan2-{dataset}-{res}x{res}.pkl"
    faces = dataset.startswith(("ffhq", "celebahq", "metfaces"))
    return ModelCard(
        id=f"stylegan2-{dataset}-{res}",
        family="stylegan2",
        arch="stylegan2",
        arch_config={"img_resolution": res, "c_dim": c_dim},  # the rest is read from the pickle
        format="nvlabs-pkl",
        tasks=_FACE_TASKS if faces else _GEN_TASKS,
        sources=(HubSource("public-data/StyleGAN2", f"models/{fname}", None),
                 HubSource("hysts/StyleGAN2", f"models/{fname}", None)),
        sha256=None,
        size=None,
        license=NVIDIA_NC,
        paper=paper,
        official_repo="https://github.com/NVlabs/stylegan3",
        resolution=res,
        description=f"NVIDIA StyleGAN2 pickle, {res} px: {what}.",
        manual_url=_NGC + fname,
        companions=FFHQ_CONFIG_F_COMPANIONS if (dataset, res) == ("ffhq", 1024) else {},
    )


CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        id="stylegan2-ffhq-1024-rosinality",
        family="stylegan2",
        arch="stylegan2",
        arch_config={"size": 1024, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2},
        format="rosinality-pt",
        tasks=_FACE_TASKS,
        sources=(HubSource("akhaliq/jojogan-stylegan2-ffhq-config-f", "stylegan2-ffhq-config-f.pt", None),),
        sha256=None,
        size=None,
        license=NVIDIA_NC,
        paper=_STYLEGAN2,
        official_repo="https://github.com/NVlabs/stylegan2 (converted by rosinality/stylegan2-pytorch)",
        resolution=1024,
        description="StyleGAN2 config-f on FFHQ at 1024 px in rosinality's format, the decoder that "
                    "pSp, e4e, ReStyle and StyleCLIP were trained against.",
        manual_url="https://github.com/rosinality/stylegan2-pytorch#pretrained-checkpoints",
        companions=FFHQ_CONFIG_F_COMPANIONS,
    ),
    *(_pickle_card(*row) for row in _PICKLES),
)
