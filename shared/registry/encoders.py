"""Encoder weight records: e4e (Tov et al., "Designing an Encoder for StyleGAN Image
Manipulation", SIGGRAPH 2021, omertov/encoder4editing), pSp (Richardson et al., "Encoding in
Style", CVPR 2021, eladrich/pixel2style2pixel) and ReStyle (Alaluf et al., ICCV 2021,
yuval-alaluf/restyle-encoder). Their checkpoints hold the encoder, the rosinality FFHQ decoder
and the latent average (`{'state_dict', 'opts', 'latent_avg'}`). Records only.
"""
from __future__ import annotations

from shared.registry._card import HubSource, LocalSource, ModelCard

_NVIDIA_DECODER = "decoder weights: NVIDIA Source Code License-NC (non-commercial use only)"

CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        id="e4e-ffhq-encode",
        family="encoders",
        arch="e4e",
        arch_config={"encoder_type": "Encoder4Editing", "input_size": 256, "decoder_size": 1024},
        format="psp-pt",
        tasks=("encoding", "inversion"),
        sources=(HubSource("public-data/e4e", "e4e_ffhq_encode.pt", None),
                 HubSource("AIRI-Institute/HairFastGAN",
                           "pretrained_models/encoder4editing/e4e_ffhq_encode.pt", None)),
        sha256=None,
        size=None,
        license=f"MIT (encoder code and weights); {_NVIDIA_DECODER}",
        paper="Tov et al., Designing an Encoder for StyleGAN Image Manipulation, SIGGRAPH 2021 "
              "(arXiv:2102.02766)",
        official_repo="https://github.com/omertov/encoder4editing",
        resolution=1024,
        description="e4e encoder for aligned FFHQ faces (256 px in, W+ out) with its StyleGAN2 "
                    "FFHQ-1024 decoder; built for editable inversions.",
        manual_url="https://github.com/omertov/encoder4editing#pretrained-models",
    ),
    ModelCard(
        id="psp-ffhq-encode",
        family="encoders",
        arch="psp",
        arch_config={"encoder_type": "GradualStyleEncoder", "input_size": 256, "decoder_size": 1024},
        format="psp-pt",
        tasks=("encoding", "inversion"),
        sources=(HubSource("AIRI-Institute/HairFastGAN",
                           "pretrained_models/FeatureStyleEncoder/psp_ffhq_encode.pt", None),
                 LocalSource("$HUB_WEIGHTS_DIR/psp_ffhq_encode.pt")),
        sha256=None,
        size=None,
        license=f"MIT (encoder code and weights); {_NVIDIA_DECODER}",
        paper="Richardson et al., Encoding in Style: a StyleGAN Encoder for Image-to-Image "
              "Translation, CVPR 2021 (arXiv:2008.00951)",
        official_repo="https://github.com/eladrich/pixel2style2pixel",
        resolution=1024,
        description="pSp encoder for aligned FFHQ faces (256 px in, W+ out) with its StyleGAN2 "
                    "FFHQ-1024 decoder; built for faithful reconstructions.",
        manual_url="https://github.com/eladrich/pixel2style2pixel#pretrained-models",
    ),
    ModelCard(
        id="restyle-psp-ffhq-encode",
        family="encoders",
        arch="restyle-psp",
        arch_config={"encoder_type": "BackboneEncoder", "input_size": 256, "decoder_size": 1024},
        format="psp-pt",
        tasks=("encoding", "inversion"),
        sources=(LocalSource("$HUB_WEIGHTS_DIR/restyle_psp_ffhq_encode.pt"),),
        sha256=None,
        size=None,
        license=f"MIT (encoder code and weights); {_NVIDIA_DECODER}",
        paper="Alaluf et al., ReStyle: A Residual-Based StyleGAN Encoder via Iterative Refinement, "
              "ICCV 2021 (arXiv:2104.02699)",
        official_repo="https://github.com/yuval-alaluf/restyle-encoder",
        resolution=1024,
        description="ReStyle over pSp for FFHQ faces (iterative refinement of the inversion). Not on "
                    "the Hub: download restyle_psp_ffhq_encode.pt from the ReStyle README.",
        manual_url="https://github.com/yuval-alaluf/restyle-encoder#pretrained-models",
    ),
    ModelCard(
        id="restyle-e4e-ffhq-encode",
        family="encoders",
        arch="restyle-e4e",
        arch_config={"encoder_type": "ProgressiveBackboneEncoder", "input_size": 256, "decoder_size": 1024},
        format="psp-pt",
        tasks=("encoding", "inversion"),
        sources=(LocalSource("$HUB_WEIGHTS_DIR/restyle_e4e_ffhq_encode.pt"),),
        sha256=None,
        size=None,
        license=f"MIT (encoder code and weights); {_NVIDIA_DECODER}",
        paper="Alaluf et al., ReStyle: A Residual-Based StyleGAN Encoder via Iterative Refinement, "
              "ICCV 2021 (arXiv:2104.02699)",
        official_repo="https://github.com/yuval-alaluf/restyle-encoder",
        resolution=1024,
        description="ReStyle over e4e for FFHQ faces (iterative refinement, editable latents). Not on "
                    "the Hub: download restyle_e4e_ffhq_encode.pt from the ReStyle README.",
        manual_url="https://github.com/yuval-alaluf/restyle-encoder#pretrained-models",
    ),
    ModelCard(
        id="e4e-cars-encode",
        family="encoders",
        arch="e4e",
        arch_config={"encoder_type": "Encoder4Editing", "input_size": 256, "input_hw": [192, 256],
                     "decoder_size": 512, "n_styles": 16, "dataset_type": "cars_encode"},
        format="psp-pt",
        tasks=("encoding",),
        sources=(LocalSource("$HUB_WEIGHTS_DIR/e4e_cars_encode.pt"),),
        sha256=None,
        size=None,
        license=f"MIT (encoder code and weights); {_NVIDIA_DECODER}",
        paper="Tov et al., Designing an Encoder for StyleGAN Image Manipulation, SIGGRAPH 2021 "
              "(arXiv:2102.02766)",
        official_repo="https://github.com/omertov/encoder4editing",
        resolution=512,
        description="e4e encoder for Stanford Cars with its StyleGAN2 cars-512 decoder (16 styles); takes "
                    "192x256 (HxW) inputs, as the official CarsEncodeTransforms resize them. Not on the Hub: "
                    "download e4e_cars_encode.pt from the e4e README. Inversion in the hub's tab needs a cars "
                    "generator record, which the hub does not have, so it is offered for encoding only.",
        manual_url="https://github.com/omertov/encoder4editing#pretrained-models",
    ),
)
