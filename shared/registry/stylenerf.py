"""StyleNeRF weight records (Gu et al., "StyleNeRF: A Style-based 3D-Aware Generator for
High-resolution Image Synthesis", ICLR 2022, facebookresearch/StyleNeRF), published by Meta on
the Hub as NVlabs persistence pickles in `facebook/stylenerf-ffhq-config-basic`. Records only:
the model cache's `default_loader` reads each file with `shared.loaders.load_generator`, which
recognises StyleNeRF by its tensors and builds `shared.archs.stylenerf.StyleNeRFGenerator` from the
pickle's constructor kwargs and weights (restricted unpickler; nothing in the pickle runs). The
revision is unpinned: it could not be looked up offline.
"""
from __future__ import annotations

from shared.registry._card import HubSource, ModelCard

_LICENSE = "CC BY-NC 4.0 (StyleNeRF); NVIDIA Source Code License-NC for the StyleGAN2 parts (non-commercial use only)"
_PAPER = ("Gu et al., StyleNeRF: A Style-based 3D-Aware Generator for High-resolution Image Synthesis, "
          "ICLR 2022 (arXiv:2110.08985)")


def _card(res: int) -> ModelCard:
    return ModelCard(
        id=f"stylenerf-ffhq-{res}",
        family="stylenerf",
        arch="stylenerf",
        arch_config={"img_resolution": res, "config": "basic"},  # the rest is read from the pickle
        format="nvlabs-pkl",
        tasks=("3d-rendering", "generation"),
        sources=(HubSource("facebook/stylenerf-ffhq-config-basic", f"ffhq_{res}.pkl", None),),
        sha256=None,
        size=None,
        license=_LICENSE,
        paper=_PAPER,
        official_repo="https://github.com/facebookresearch/StyleNeRF",
        resolution=res,
        description=f"StyleNeRF FFHQ {res} px (config basic): 3D-aware face generator with camera control.",
    )


CARDS: tuple[ModelCard, ...] = tuple(_card(res) for res in (256, 512, 1024))
