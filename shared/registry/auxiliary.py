"""Auxiliary network records used by the applications: dlib's 68-point face landmarks (FFHQ
alignment; Kazemi & Sullivan, CVPR 2014, davisking/dlib-models), the VGG16 backbone of LPIPS
(Zhang et al., CVPR 2018, richzhang/PerceptualSimilarity; torchvision weights as published by
timm), CLIPs for open_clip (OpenAI ViT-B/32 and ViT-L/14, Radford et al., ICML 2021, openai/CLIP;
OpenCLIP's LAION-2B ViT-B/32, mlfoundations/open_clip), and the ArcFace
IR-SE50 identity network that pSp/e4e/ReStyle use (Deng et al., CVPR 2019; TreB1eN/InsightFace_Pytorch).
Records only.
"""
from __future__ import annotations

from shared.registry._card import HubSource, LocalSource, ModelCard

_OPENAI = ("Radford et al., Learning Transferable Visual Models From Natural Language Supervision, ICML 2021 "
           "(arXiv:2103.00020)")


def _clip(model_id: str, open_clip_model: str, repo: str, license: str, paper: str, official_repo: str,
          description: str) -> ModelCard:
    """A CLIP for open_clip: the named open_clip model built with `open_clip_model.safetensors` from `repo`."""
    return ModelCard(id=model_id, family="auxiliary", arch="clip-vit", arch_config={"open_clip_model": open_clip_model},
                     format="open-clip-safetensors", tasks=("text-editing", "text-image-embedding"),
                     sources=(HubSource(repo, "open_clip_model.safetensors", None),), sha256=None, size=None,
                     license=license, paper=paper, official_repo=official_repo, resolution=224,
                     description=description)


CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        id="dlib-landmarks-68",
        family="auxiliary",
        arch="dlib-shape-predictor",
        arch_config={"num_landmarks": 68},
        format="dlib-dat",
        tasks=("face-landmarks",),
        sources=(HubSource("public-data/dlib_face_landmark_model", "shape_predictor_68_face_landmarks.dat", None),),
        sha256=None,
        size=None,
        license="Boost Software License (dlib model); trained on iBUG 300-W, whose terms exclude "
                "commercial use",
        paper="Kazemi & Sullivan, One Millisecond Face Alignment with an Ensemble of Regression Trees, "
              "CVPR 2014",
        official_repo="https://github.com/davisking/dlib-models",
        resolution=None,
        description="dlib's 68-point face landmark predictor, used to align photos the way FFHQ was "
                    "aligned before inversion.",
        manual_url="http://dlib.net/files/shape_predictor_68_face_landmarks.dat.bz2",
    ),
    ModelCard(
        id="lpips-vgg16",
        family="auxiliary",
        arch="vgg16",
        arch_config={"timm_model": "vgg16.tv_in1k"},
        format="timm-safetensors",
        tasks=("perceptual-loss",),
        sources=(HubSource("timm/vgg16.tv_in1k", "model.safetensors", None),),
        sha256=None,
        size=None,
        license="BSD-3-Clause (torchvision ImageNet weights)",
        paper="Zhang et al., The Unreasonable Effectiveness of Deep Features as a Perceptual Metric, "
              "CVPR 2018 (arXiv:1801.03924)",
        official_repo="https://github.com/richzhang/PerceptualSimilarity",
        resolution=None,
        description="ImageNet VGG16 backbone of the LPIPS perceptual loss (timm's `features.*` keys equal "
                    "torchvision's); the linear heads ship with the lpips package.",
    ),
    _clip("clip-vit-b-32", "ViT-B-32-quickgelu", "timm/vit_base_patch32_clip_224.openai", "MIT", _OPENAI,
          "https://github.com/openai/CLIP",
          "OpenAI CLIP ViT-B/32 for open_clip (build it as ViT-B-32-quickgelu to match the original), used by the "
          "text-driven editing methods."),
    _clip("clip-vit-l-14", "ViT-L-14-quickgelu", "timm/vit_large_patch14_clip_224.openai", "MIT", _OPENAI,
          "https://github.com/openai/CLIP",
          "OpenAI CLIP ViT-L/14 for open_clip (ViT-L-14-quickgelu): a larger text/image embedding for the "
          "text-driven editing methods (about 1.7 GB)."),
    _clip("clip-vit-b-32-laion2b", "ViT-B-32", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
          "MIT (OpenCLIP weights trained on LAION-2B)",
          "Cherti et al., Reproducible Scaling Laws for Contrastive Language-Image Learning, CVPR 2023 "
          "(arXiv:2212.07143)", "https://github.com/mlfoundations/open_clip",
          "OpenCLIP ViT-B/32 trained on LAION-2B (open_clip's ViT-B-32 with GELU), an alternative CLIP for the "
          "text-driven editing methods."),
    ModelCard(
        id="arcface-ir-se50",
        family="auxiliary",
        arch="arcface-ir-se",
        arch_config={"num_layers": 50, "mode": "ir_se", "input_size": 112},
        format="torch-state-dict",
        tasks=("face-identity",),
        sources=(LocalSource("$HUB_WEIGHTS_DIR/model_ir_se50.pth"),),
        sha256=None,
        size=None,
        license="MIT (TreB1eN/InsightFace_Pytorch code and weights); trained on MS-Celeb-1M, which its "
                "authors withdrew: research use only",
        paper="Deng et al., ArcFace: Additive Angular Margin Loss for Deep Face Recognition, CVPR 2019 "
              "(arXiv:1801.07698)",
        official_repo="https://github.com/TreB1eN/InsightFace_Pytorch",
        resolution=112,
        description="ArcFace IR-SE50 face-recognition backbone (`model_ir_se50.pth`, the file pSp, e4e and "
                    "ReStyle train their identity loss with); the Inversion tab reports identity similarity "
                    "with it. Not on the Hub: point the record at your copy.",
        manual_url="https://drive.google.com/file/d/1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn/view",
    ),
)
