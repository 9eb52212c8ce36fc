"""Identity similarity with ArcFace's IR-SE50 (Deng et al., CVPR 2019), as pSp/e4e/ReStyle use it.

The network is TreB1eN/InsightFace_Pytorch `model.py: Backbone(50, drop_ratio=0.6, mode='ir_se')`
(copied by eladrich/pixel2style2pixel `models/encoders/model_irse.py`), the file usually named
`model_ir_se50.pth`: a plain state dict with `input_layer` (3x3 conv, BN, PReLU), `body` (the
IR-SE units that `shared.archs.encoders.BottleneckIR` already implements) and `output_layer`
(BatchNorm2d, Dropout, Flatten, Linear(512*7*7 -> 512), BatchNorm1d), output L2-normalised.
Pre-processing follows pSp's `criteria/id_loss.py`: the aligned face at 256 px, crop rows
35:223 and columns 32:220, adaptive average pool to 112x112. The identity similarity of two
images is the cosine of their embeddings (pSp reports it as `1 - loss`).
"""
from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from shared.archs.encoders import IR_BLOCKS, SE_REDUCTION, BottleneckIR
from shared.errors import CheckpointError
from shared.loaders import assign_strict

__all__ = ["ArcFaceIdentity", "IdentityModel", "arcface_from_state_dict", "load_arcface"]

_CROP = (35, 223, 32, 220)  # rows, columns at 256 px (pSp's "interesting region")


@runtime_checkable
class IdentityModel(Protocol):
    """Face identity embeddings: `embed(img [N, 3, H, W] in [-1, 1]) -> [N, D]` unit vectors,
    `similarity(a, b) -> [N]` cosine similarity of the embeddings (1 = same identity)."""
    name: str

    def embed(self, img: torch.Tensor) -> torch.Tensor: ...

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor: ...


class ArcFaceIdentity(nn.Module):
    """IR-SE ArcFace backbone with the official module names (see the module docstring).

    Args:
        widths:   channels of the four stages (official (64, 128, 256, 512)).
        blocks:   units per stage (IR-SE50: (3, 4, 14, 3)).
        se:       squeeze-excitation in every unit ('ir_se'); False for plain 'ir'.
        input_size: 112 (official) or 224; the Linear layer sees widths[3] x (input/16)^2.
        embedding: output size (512).
    """

    name = "arcface-ir-se50"

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512), blocks: tuple[int, ...] = IR_BLOCKS[50], *,
                 se: bool = True, input_size: int = 112, embedding: int = 512):
        super().__init__()
        self.input_size = input_size
        w0, top = widths[0], widths[-1]
        side = input_size // 16
        # Registration order as the official module: input_layer, output_layer, body.
        self.input_layer = nn.Sequential(nn.Conv2d(3, w0, 3, 1, 1, bias=False), nn.BatchNorm2d(w0), nn.PReLU(w0))
        self.output_layer = nn.Sequential(nn.BatchNorm2d(top), nn.Dropout(0.6), nn.Flatten(),
                                          nn.Linear(top * side * side, embedding), nn.BatchNorm1d(embedding))
        units, prev = [], w0
        for depth, count in zip(widths, blocks):
            for i in range(count):
                units.append(BottleneckIR(prev if i == 0 else depth, depth, 2 if i == 0 else 1, se))
            prev = depth
        self.body = nn.Sequential(*units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, 3, input_size, input_size] (already cropped) -> unit embeddings [N, embedding]."""
        x = self.output_layer(self.body(self.input_layer(x)))
        return F.normalize(x, dim=1)

    def preprocess(self, img: torch.Tensor) -> torch.Tensor:
        """Aligned face [N, 3, H, W] in [-1, 1] -> the network input: to 256 px (average pooling
        when larger, bilinear when smaller), pSp's crop, adaptive average pool to input_size."""
        if img.shape[-1] > 256 or img.shape[-2] > 256:
            img = F.adaptive_avg_pool2d(img, (256, 256))
        elif img.shape[-2:] != (256, 256):
            img = F.interpolate(img, size=(256, 256), mode="bilinear", align_corners=False)
        r0, r1, c0, c1 = _CROP
        return F.adaptive_avg_pool2d(img[:, :, r0:r1, c0:c1], (self.input_size, self.input_size))

    def embed(self, img: torch.Tensor) -> torch.Tensor:
        return self(self.preprocess(img.to(torch.float32)))

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (self.embed(a) * self.embed(b)).sum(dim=1)


def arcface_from_state_dict(sd: Mapping[str, torch.Tensor], name: str = "the ArcFace weights") -> ArcFaceIdentity:
    """Build `ArcFaceIdentity` from an official `Backbone` state dict (widths, units per stage, SE
    and input size read off the shapes; a `module.` DataParallel prefix is dropped).

    Returns the module on the CPU, float32, eval mode, no gradients.
    Raises CheckpointError when the tensors do not form an IR / IR-SE backbone.
    """
    sd = dict(sd)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    units = sorted({int(m.group(1)) for k in sd if (m := re.fullmatch(r"body\.(\d+)\.res_layer\.1\.weight", k))})
    if "input_layer.0.weight" not in sd or "output_layer.3.weight" not in sd or units != list(range(len(units))) \
            or not units:
        raise CheckpointError(f"{name} do not have the ArcFace IR-SE layout (input_layer, body.N.res_layer, "
                              "output_layer).")
    widths: list[int] = []
    blocks: list[int] = []
    for i in units:
        depth = int(sd[f"body.{i}.res_layer.1.weight"].shape[0])
        if widths and depth == widths[-1]:
            blocks[-1] += 1
        else:
            widths.append(depth)
            blocks.append(1)
    se = "body.0.res_layer.5.fc1.weight" in sd
    linear = sd["output_layer.3.weight"]
    side2 = int(linear.shape[1]) // widths[-1]
    side = int(round(side2 ** 0.5))
    if len(widths) != 4 or side * side != side2 or (se and widths[0] < SE_REDUCTION):
        raise CheckpointError(f"{name} describe an unsupported backbone (stage widths {widths}, "
                              f"linear input {int(linear.shape[1])}).")
    with torch.device("meta"):
        model = ArcFaceIdentity(tuple(widths), tuple(blocks), se=se, input_size=16 * side,
                                embedding=int(linear.shape[0]))
    return assign_strict(model, sd, "ArcFace IR-SE")


def load_arcface(path: str | os.PathLike) -> ArcFaceIdentity:
    """Load `model_ir_se50.pth` (a plain state dict; read with `weights_only=True`, nothing executes)."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as e:
        raise CheckpointError(f"{Path(path).name} could not be read as a PyTorch state dict ({e}).") from e
    if not isinstance(sd, Mapping):
        raise CheckpointError(f"{Path(path).name} holds a {type(sd).__name__}, not an ArcFace state dict.")
    return arcface_from_state_dict(sd, Path(path).name)
