"""Latent-editing asset records: the StyleFlow prior (Abdal et al., ACM TOG 2021,
RameenAbdal/StyleFlow) and InterFaceGAN FFHQ boundaries in W (Shen et al., CVPR 2020,
genforce/interfacegan) as shipped with e4e (omertov/encoder4editing,
`editings/interfacegan_directions/`). None of them is on the Hub: point the records at your
copies (`HUB_MODEL_PATH_<ID>` or `$HUB_WEIGHTS_DIR`). Records only.
"""
from __future__ import annotations

from shared.registry._card import LocalSource, ModelCard

_E4E_DIRS = "https://github.com/omertov/encoder4editing/tree/main/editings/interfacegan_directions"


def _interfacegan(name: str, what: str) -> ModelCard:
    return ModelCard(
        id=f"interfacegan-ffhq-{name}",
        family="editing",
        arch="latent-direction",
        arch_config={"space": "w", "w_dim": 512, "for": "stylegan2-ffhq-1024"},
        format="latent-direction",
        tasks=("local-editing",) + (("reposing",) if name == "pose" else ()),
        sources=(LocalSource(f"$HUB_WEIGHTS_DIR/interfacegan_directions/{name}.pt"),),
        sha256=None,
        size=None,
        license="MIT (encoder4editing repository)",
        paper="Shen et al., Interpreting the Latent Space of GANs for Semantic Face Editing, CVPR 2020 "
              "(arXiv:1907.10786)",
        official_repo="https://github.com/genforce/interfacegan",
        resolution=None,
        description=f"InterFaceGAN boundary for {what} in the W space of StyleGAN2 FFHQ config-f ([1, 512]), the "
                    f"file e4e ships as `{name}.pt`; use it in the Local editing tab's direction-file method.",
        manual_url=f"{_E4E_DIRS}/{name}.pt",
    )


CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        id="styleflow-ffhq",
        family="editing",
        arch="styleflow-cnf",
        arch_config={"input_dim": 512, "hidden": [512, 512, 512, 512, 512], "context_dim": 17,
                     "for": "stylegan2-ffhq-1024"},
        format="torch-state-dict",
        tasks=("local-editing",),
        sources=(LocalSource("$HUB_WEIGHTS_DIR/modellarge10k.pt"),),
        sha256=None,
        size=None,
        license="CC BY-NC-SA 4.0 (StyleFlow; non-commercial)",
        paper="Abdal et al., StyleFlow: Attribute-conditioned Exploration of StyleGAN-Generated Images using "
              "Conditional Continuous Normalizing Flows, ACM TOG 2021 (arXiv:2008.02401)",
        official_repo="https://github.com/RameenAbdal/StyleFlow",
        resolution=None,
        description="StyleFlow's conditional CNF prior over W+ of StyleGAN2 FFHQ config-f (`modellarge10k.pt`, "
                    "the state dict of cnf(512, '512-512-512-512-512', 17, 1)); `shared.archs.styleflow` loads it.",
        manual_url="https://github.com/RameenAbdal/StyleFlow#installation",
    ),
    _interfacegan("age", "age"),
    _interfacegan("smile", "smiling"),
    _interfacegan("pose", "head pose (yaw)"),
)
