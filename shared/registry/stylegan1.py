"""StyleGAN (v1) weight records and the TensorFlow StyleGAN2 FFHQ config-f pickle: Karras et al., "A
Style-Based Generator Architecture for Generative Adversarial Networks", CVPR 2019 (NVlabs/stylegan),
and "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020 (NVlabs/stylegan2).

The official networks exist only as TensorFlow pickles of (G, D, Gs) (`karras2019stylegan-*.pkl`
from the Google Drive folder in NVlabs/stylegan's README, `stylegan2-ffhq-config-f.pkl` from
nvlabs-fi-cdn.nvidia.com); we know of no Hub mirror we could pin, so these are local-file records
(`$HUB_WEIGHTS_DIR/stylegan/...` or `HUB_MODEL_PATH_<ID>`), read without TensorFlow by
`shared.loaders.tf_pickle`. Licence: CC BY-NC 4.0 (the networks' licence in both READMEs).

Tasks: generation and mixing (the StyleGAN paper's figure 3 is a v1 style-mixing figure). Not
offered: inversion, local editing (StyleSpace is a StyleGAN2 notion: v1 has no modulated
convolutions), text editing and reposing, whose encoders, mappers and statistics are made for
StyleGAN2. The cars network draws 512x512 with the 512x384 picture letterboxed; its record crops
rows 64-447 as the official figures do (`generate_figures.py`: cy=64, ch=384). Records only.
"""
from __future__ import annotations

from shared.registry._card import LocalSource, ModelCard

CC_BY_NC = "CC BY-NC 4.0 (NVIDIA; non-commercial use only)"
_PAPER = ("Karras et al., A Style-Based Generator Architecture for Generative Adversarial Networks, CVPR 2019 "
          "(arXiv:1812.04948)")
_REPO = "https://github.com/NVlabs/stylegan"
_DRIVE = "https://drive.google.com/uc?id="
_TASKS = ("generation", "mixing")

# (id tag, file name, resolution, Drive id from the README, what it draws, crop (top, left, h, w))
_NETWORKS = (
    ("ffhq-1024", "karras2019stylegan-ffhq-1024x1024.pkl", 1024, "1MEGjdvVpUsu1jB4zrXZN7Y4kBBOzizDQ",
     "aligned human faces (FFHQ)", None),
    ("celebahq-1024", "karras2019stylegan-celebahq-1024x1024.pkl", 1024, "1MGqJl28pN4t7SAtSrPdSRJSQJqahkzUf",
     "celebrity faces (CelebA-HQ)", None),
    ("bedrooms-256", "karras2019stylegan-bedrooms-256x256.pkl", 256, "1MOSKeGF0FJcivpBI7s63V9YHloUTORiF",
     "bedrooms (LSUN Bedroom)", None),
    ("cars-512x384", "karras2019stylegan-cars-512x384.pkl", 512, "1MJ6iCfNtMIRicihwRorsM3b7mmtmK9c3",
     "cars (LSUN Car), 512x384", (64, 0, 384, 512)),
    ("cats-256", "karras2019stylegan-cats-256x256.pkl", 256, "1MQywl0FNt6lHu8E_EUqnRbviagS7fbiJ",
     "cats (LSUN Cat)", None),
)


def _card(tag: str, fname: str, res: int, drive_id: str, what: str, crop) -> ModelCard:
    config = {"img_resolution": res, "c_dim": 0, "truncation_psi": 0.7, "truncation_cutoff": 8}
    if crop is not None:
        config["crop"] = list(crop)
    return ModelCard(
        id=f"stylegan1-{tag}",
        family="stylegan1",
        arch="stylegan1",
        arch_config=config,
        format="tf-pkl",
        tasks=_TASKS,
        sources=(LocalSource(f"$HUB_WEIGHTS_DIR/stylegan/{fname}"),),
        sha256=None,
        size=None,
        license=CC_BY_NC,
        paper=_PAPER,
        official_repo=_REPO,
        resolution=res,
        description=f"StyleGAN (v1) generator for {what}: the official TensorFlow pickle, read without "
                    "TensorFlow. The official truncation is psi 0.7 on the first 8 rows."
                    + (" Output cropped to 512x384 as the official figures." if crop else ""),
        manual_url=f"{_DRIVE}{drive_id}",
    )


V1_CARDS: tuple[ModelCard, ...] = tuple(_card(*n) for n in _NETWORKS)

TF_STYLEGAN2_CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        id="stylegan2-tf-ffhq-config-f",
        family="stylegan2",
        arch="stylegan2",
        arch_config={"img_resolution": 1024, "c_dim": 0},
        format="tf-pkl",
        tasks=_TASKS,
        sources=(LocalSource("$HUB_WEIGHTS_DIR/stylegan2/stylegan2-ffhq-config-f.pkl"),),
        sha256=None,
        size=None,
        license=CC_BY_NC,
        paper="Karras et al., Analyzing and Improving the Image Quality of StyleGAN, CVPR 2020 (arXiv:1912.04958)",
        official_repo="https://github.com/NVlabs/stylegan2",
        resolution=1024,
        description="StyleGAN2 FFHQ config-f as the original TensorFlow pickle (the file older tools point to), "
                    "read without TensorFlow; the same network as stylegan2-ffhq-1024.",
        manual_url="https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-ffhq-config-f.pkl",
    ),
)

CARDS: tuple[ModelCard, ...] = V1_CARDS + TF_STYLEGAN2_CARDS
