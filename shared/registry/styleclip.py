"""StyleCLIP asset records (Patashnik et al., ICCV 2021; orpatashnik/StyleCLIP): the global-direction
files for StyleGAN2 FFHQ config-f (`fs3.npy`, the channel relevance matrix for OpenAI CLIP ViT-B/32,
and `S_mean_std`, the StyleSpace channel statistics) and the official latent-mapper checkpoints.
None is on the Hub (Google Drive / the repository only): point the records at your copies
(`HUB_MODEL_PATH_<ID>` or `$HUB_WEIGHTS_DIR`). Records only.
"""
from __future__ import annotations

from shared.registry._card import LocalSource, ModelCard

_PAPER = ("Patashnik et al., StyleCLIP: Text-Driven Manipulation of StyleGAN Imagery, ICCV 2021 "
          "(arXiv:2103.17249)")
_REPO = "https://github.com/orpatashnik/StyleCLIP"
_GLOBAL = f"{_REPO}/tree/main/global_directions"

GLOBAL_CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        id="styleclip-fs3-ffhq",
        family="editing",
        arch="styleclip-relevance",
        arch_config={"channels": 6048, "clip_dim": 512, "clip": "clip-vit-b-32", "for": "stylegan2-ffhq-1024",
                     "stats": "styleclip-s-mean-std-ffhq"},
        format="npy",
        tasks=("text-editing",),
        sources=(LocalSource("$HUB_WEIGHTS_DIR/styleclip/fs3.npy"),),
        sha256=None,
        size=None,
        license="MIT (StyleCLIP repository)",
        paper=_PAPER,
        official_repo=_REPO,
        resolution=None,
        description="StyleCLIP global directions: the relevance of each of the 6048 StyleSpace channels of "
                    "FFHQ config-f (toRGB excluded) to CLIP ViT-B/32's embedding ([6048, 512], "
                    "`global_directions/npy/ffhq/fs3.npy`).",
        manual_url=f"{_GLOBAL}/npy/ffhq",
    ),
    ModelCard(
        id="styleclip-s-mean-std-ffhq",
        family="editing",
        arch="stylespace-stats",
        arch_config={"layers": 26, "for": "stylegan2-ffhq-1024"},
        format="numpy-pickle",
        tasks=("text-editing",),
        sources=(LocalSource("$HUB_WEIGHTS_DIR/styleclip/S_mean_std"),),
        sha256=None,
        size=None,
        license="MIT (StyleCLIP repository)",
        paper=_PAPER,
        official_repo=_REPO,
        resolution=None,
        description="StyleSpace channel mean and std of FFHQ config-f (a pickle of two lists of 26 arrays, all "
                    "style layers including toRGB; `global_directions/npy/ffhq/S_mean_std`), the scale of the "
                    "global-direction edits. Read with a NumPy-only unpickler.",
        manual_url=f"{_GLOBAL}/npy/ffhq",
    ),
)

# Latent-mapper records (official checkpoints as local files). The file names and the level flags
# (no_fine_mapper for the hairstyle and expression edits) are the official ones (`utils.py`,
# `notebooks/mapper_playground.ipynb`); the README gives the text only for mohawk ("mohawk
# hairstyle"), the paper's figures give "Afro hairstyle", "Bob-cut hairstyle" and "Curly hair";
# the other prompts are inferred from the checkpoint names (`opts['description']` inside the file
# is what the loader shows once the file is there).
_MAPPER_DOCS = f"{_REPO}#editing-via-latent-mapper"
_MAPPERS: tuple[tuple[str, str, bool], ...] = (   # file stem, prompt, no_fine_mapper
    ("afro", "afro hairstyle", True),
    ("angry", "angry face", True),
    ("beyonce", "Beyonce", False),
    ("bobcut", "bob-cut hairstyle", True),
    ("bowlcut", "bowl-cut hairstyle", True),
    ("curly_hair", "curly hair", True),
    ("depp", "Johnny Depp", False),
    ("hilary_clinton", "Hillary Clinton", False),
    ("mohawk", "mohawk hairstyle", True),
    ("purple_hair", "purple hair", False),
    ("surprised", "surprised face", True),
    ("taylor_swift", "Taylor Swift", False),
    ("trump", "Donald Trump", False),
    ("zuckerberg", "Mark Zuckerberg", False),
)


def _mapper_card(stem: str, prompt: str, no_fine: bool) -> ModelCard:
    levels = ["coarse", "medium"] + ([] if no_fine else ["fine"])
    return ModelCard(
        id=f"styleclip-mapper-{stem.replace('_', '-')}-ffhq",
        family="editing",
        arch="styleclip-levels-mapper",
        arch_config={"prompt": prompt, "for": "stylegan2-ffhq-1024", "w_dim": 512, "layers": 4, "levels": levels,
                     "no_coarse_mapper": False, "no_medium_mapper": False, "no_fine_mapper": no_fine,
                     "strength": 0.1},
        format="styleclip-mapper-pt",
        tasks=("text-editing",),
        sources=(LocalSource(f"$HUB_WEIGHTS_DIR/styleclip/mappers/{stem}.pt"),),
        sha256=None,
        size=None,
        license="MIT (StyleCLIP repository)",
        paper=_PAPER,
        official_repo=_REPO,
        resolution=None,
        description=f"StyleCLIP latent mapper for \"{prompt}\" on StyleGAN2 FFHQ config-f (official "
                    f"`mapper/pretrained/{stem}.pt`; LevelsMapper{', no fine mapper' if no_fine else ''}; "
                    "edit w + 0.1·M(w)).",
        manual_url=_MAPPER_DOCS,
    )


MAPPER_CARDS: tuple[ModelCard, ...] = tuple(_mapper_card(*m) for m in _MAPPERS)

# StyleCLIP's second mapper architecture (`--mapper_type SingleMapper`: one MLP over all 18 rows). No
# official SingleMapper checkpoint is published; this record is for one trained with the official
# `mapper/scripts/train.py --mapper_type SingleMapper --description "<prompt>"`, saved as the
# official `{'state_dict': mapper.mapping.mapping.*, 'opts'}`; the prompt is read from its opts.
SINGLE_MAPPER_CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        id="styleclip-single-mapper-ffhq",
        family="editing",
        arch="styleclip-single-mapper",
        arch_config={"prompt": "", "for": "stylegan2-ffhq-1024", "w_dim": 512, "layers": 4,
                     "mapper_type": "SingleMapper", "strength": 0.1},
        format="styleclip-mapper-pt",
        tasks=("text-editing",),
        sources=(LocalSource("$HUB_WEIGHTS_DIR/styleclip/mappers/single_mapper.pt"),),
        sha256=None,
        size=None,
        license="MIT (StyleCLIP repository)",
        paper=_PAPER,
        official_repo=_REPO,
        resolution=None,
        description="A StyleCLIP SingleMapper (one mapping over all W+ rows) for StyleGAN2 FFHQ config-f, trained "
                    "with the official mapper script (`--mapper_type SingleMapper`); its prompt is the file's "
                    "opts['description']. Edit w + 0.1·M(w).",
        manual_url=f"{_REPO}/blob/main/mapper/scripts/train.py",
    ),
)

CARDS: tuple[ModelCard, ...] = GLOBAL_CARDS + MAPPER_CARDS + SINGLE_MAPPER_CARDS
