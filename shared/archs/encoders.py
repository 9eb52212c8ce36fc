"""pSp, e4e and ReStyle image encoders (image -> StyleGAN W+ codes), written from the papers'
official code without copying it:

- pSp, "Encoding in Style" (Richardson et al., CVPR 2021): `GradualStyleEncoder` in
  eladrich/pixel2style2pixel@5cfff385 `models/encoders/psp_encoders.py` and `helpers.py`.
- e4e, "Designing an Encoder for StyleGAN Image Manipulation" (Tov et al., SIGGRAPH 2021):
  `Encoder4Editing` in omertov/encoder4editing@99ea5057 `models/encoders/psp_encoders.py`.
- ReStyle (Alaluf et al., ICCV 2021): `BackboneEncoder`, `ResNetBackboneEncoder`,
  `ProgressiveBackboneEncoder`, `ResNetProgressiveBackboneEncoder` and the FPN variants
  `GradualStyleEncoder` / `ResNetGradualStyleEncoder` in yuval-alaluf/restyle-encoder@5e802762
  `models/encoders/{restyle_psp_encoders, restyle_e4e_encoders, fpn_encoders, map2style}.py`.

Backbones: the IR / IR-SE ResNet of ArcFace (bottleneck_IR[_SE] units: BN, 3x3 conv, PReLU,
strided 3x3 conv, BN, optional squeeze-excitation, plus a 1x1-conv or subsampling shortcut), or
torchvision's ResNet34 `BasicBlock`s (layer1..4) behind a 7x7 stride-2 stem with PReLU.
Module and parameter names equal the official ones, so an official checkpoint's
`state_dict['encoder.*']` loads with the prefix stripped, in the same `state_dict()` order.

`forward(x)` returns the raw codes [N, n_styles, w_dim] exactly as the official encoder
module does: before pSp/e4e add `latent_avg` and before ReStyle's iteration loop. e4e-style
(progressive) encoders return `w0` in every row plus each row's own delta for rows
1..progressive_stage (default: all rows, the official `ProgressiveStage.Inference`).

Deviation: the official FPN encoders tap the body after units 6, 20 and 23 (IR) or 6, 12, 15
(ResNet34), which are the ends of stages 2-4 only for the 50-layer IR and ResNet34 bodies; with
100 or 152 layers the official code fails (unit 23 has 256 channels). Here the taps are always
the stage ends, which gives the official indices where the official code works.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from shared.archs.layers import FullyConnectedLayer

__all__ = [
    "ENCODER_TYPES", "EncoderConfig", "GradualStyleEncoder", "ResNetGradualStyleEncoder", "Encoder4Editing",
    "BackboneEncoder", "ResNetBackboneEncoder", "ProgressiveBackboneEncoder", "ResNetProgressiveBackboneEncoder",
    "build_encoder", "default_config", "n_styles_for_resolution",
]

IR_BLOCKS = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}  # units per stage (get_blocks)
RESNET34_BLOCKS = (3, 4, 6, 3)
OFFICIAL_WIDTHS = (64, 128, 256, 512)
SE_REDUCTION = 16
COARSE_END, MIDDLE_END = 3, 7  # FPN encoders: styles 0-2 read the coarsest map, 3-6 the middle, 7+ the finest


def _heads_reach_one(side: int, input_size: int) -> bool:
    """Whether an input side of `side` px ends at 1 in each style head: the body halves it 4 times
    (ceil), the coarse/middle/fine heads then apply log2(input_size/16) + 0/1/2 stride-2 convs to the
    maps at /16, /8, /4."""
    if side < 16 or side % 16 or side > input_size:
        return False
    convs = int(math.log2(input_size // 16))
    for extra, down in ((0, 16), (1, 8), (2, 4)):
        n = side // down
        for _ in range(convs + extra):
            n = (n + 1) // 2
        if n != 1:
            return False
    return True


def n_styles_for_resolution(resolution: int) -> int:
    """Number of W+ rows of a StyleGAN2 generator at `resolution` px: 2*log2(res) - 2 (18 at 1024)."""
    return 2 * int(math.log2(resolution)) - 2


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture of one encoder. The defaults are the official pSp FFHQ encoder.

    Args:
        encoder_type: the official class name (a key of `ENCODER_TYPES`), as in `opts.encoder_type`.
        num_layers:   IR depth, 50 / 100 / 152 (units per stage from `IR_BLOCKS`); ResNet types ignore it.
        mode:         'ir' or 'ir_se' (squeeze-excitation in every unit); ResNet types ignore it.
        input_nc:     input channels: 3 for pSp and e4e, 6 for ReStyle (image and current reconstruction).
        n_styles:     W+ rows, `n_styles_for_resolution(generator resolution)`: 18 at 1024 px.
        w_dim:        width of each code row (512 for official StyleGAN2).
        input_size:   the square input resolution, 16 * 2^k with k >= 1 (official: 256). The style heads
                      downsample their feature map (input/16, /8, /4) to 1x1 with log2 stride-2 convs.
        widths:       channels of the four backbone stages (official (64, 128, 256, 512)); strictly
                      increasing. Together with `blocks` this is how a smaller encoder is built through its
                      config (the demo world's e4e), e.g. `widths=(16, 32, 48, 64), blocks=(1, 1, 2, 1)`.
        blocks:       units per stage; None means the official counts (`IR_BLOCKS[num_layers]`, or ResNet34's
                      (3, 4, 6, 3)).
        input_hw:     (H, W) of the input when it is not input_size x input_size, e.g. (192, 256) for e4e's
                      cars encoder (official `CarsEncodeTransforms` resize to 192x256 while the style heads
                      keep their 256-px conv counts). Each side must reach 1x1 in every style head.
    """

    encoder_type: str = "GradualStyleEncoder"
    num_layers: int = 50
    mode: str = "ir_se"
    input_nc: int = 3
    n_styles: int = 18
    w_dim: int = 512
    input_size: int = 256
    widths: tuple[int, int, int, int] = OFFICIAL_WIDTHS
    blocks: tuple[int, int, int, int] | None = None
    input_hw: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.encoder_type not in ENCODER_TYPES:
            raise ValueError(f"Unknown encoder_type {self.encoder_type!r}; known: {', '.join(ENCODER_TYPES)}.")
        if self.num_layers not in IR_BLOCKS:
            raise ValueError(f"num_layers must be 50, 100 or 152, got {self.num_layers}.")
        if self.mode not in ("ir", "ir_se"):
            raise ValueError(f"mode must be 'ir' or 'ir_se', got {self.mode!r}.")
        object.__setattr__(self, "widths", tuple(int(c) for c in self.widths))
        if self.blocks is not None:
            object.__setattr__(self, "blocks", tuple(int(b) for b in self.blocks))
        if len(self.widths) != 4 or any(b <= a for a, b in zip(self.widths, self.widths[1:])) or self.widths[0] < 1:
            raise ValueError(f"widths must be four strictly increasing channel counts, got {self.widths}.")
        if self.blocks is not None and (len(self.blocks) != 4 or min(self.blocks) < 1):
            raise ValueError(f"blocks must be four unit counts >= 1, got {self.blocks}.")
        if self.uses_se and self.widths[0] < SE_REDUCTION:
            raise ValueError(f"mode 'ir_se' needs widths >= {SE_REDUCTION} (squeeze ratio), got {self.widths}.")
        k = self.input_size // 16
        if self.input_size % 16 or k < 2 or k & (k - 1):
            raise ValueError(f"input_size must be 16 * 2^k with k >= 1 (32, 64, ..., 256), got {self.input_size}.")
        if self.input_nc < 1 or self.n_styles < 1 or self.w_dim < 1:
            raise ValueError("input_nc, n_styles and w_dim must be positive.")
        if self.input_hw is not None:
            object.__setattr__(self, "input_hw", tuple(int(n) for n in self.input_hw))
            if len(self.input_hw) != 2 or not all(_heads_reach_one(n, self.input_size) for n in self.input_hw):
                raise ValueError(f"input_hw {self.input_hw} does not reduce to 1x1 in the style heads of a "
                                 f"{self.input_size}-px encoder (each side a multiple of 16, at most {self.input_size}).")

    @property
    def input_shape(self) -> tuple[int, int]:
        """(H, W) of the input the encoder takes."""
        return self.input_hw or (self.input_size, self.input_size)

    @property
    def backbone(self) -> str:
        return ENCODER_TYPES[self.encoder_type].backbone

    @property
    def uses_se(self) -> bool:
        return self.backbone == "ir" and self.mode == "ir_se"

    @property
    def stage_blocks(self) -> tuple[int, int, int, int]:
        if self.blocks is not None:
            return self.blocks
        return RESNET34_BLOCKS if self.backbone == "resnet" else IR_BLOCKS[self.num_layers]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EncoderConfig:
        d = dict(d)
        for key in ("widths", "blocks", "input_hw"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)


# ---- building blocks -------------------------------------------------------------------------

class SEModule(nn.Module):
    """Squeeze-excitation: x * sigmoid(fc2(relu(fc1(mean_hw(x))))), 1x1 convs without bias."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class BottleneckIR(nn.Module):
    """ArcFace IR unit (official `bottleneck_IR` / `bottleneck_IR_SE`). The stride sits on the
    second 3x3 conv; the shortcut subsamples (1x1 max-pool) when the width does not change."""

    def __init__(self, in_channel: int, depth: int, stride: int, se: bool):
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_channel, depth, 1, stride, bias=False),
                                                nn.BatchNorm2d(depth))
        layers = [nn.BatchNorm2d(in_channel),
                  nn.Conv2d(in_channel, depth, 3, 1, 1, bias=False),
                  nn.PReLU(depth),
                  nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
                  nn.BatchNorm2d(depth)]
        if se:
            layers.append(SEModule(depth))
        self.res_layer = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class GradualStyleBlock(nn.Module):
    """map2style head: log2(spatial) stride-2 3x3 convs with LeakyReLU(0.01) take a
    [N, in_c, spatial, spatial] map to [N, out_c, 1, 1], then an equalised-learning-rate linear
    layer (rosinality's `EqualLinear`, lr_mul 1 = `FullyConnectedLayer`) gives one code row."""

    def __init__(self, in_c: int, out_c: int, spatial: int):
        super().__init__()
        self.out_c, self.spatial = out_c, spatial
        num_pools = int(math.log2(spatial))
        layers: list[nn.Module] = []
        for i in range(max(num_pools, 1)):
            layers += [nn.Conv2d(in_c if i == 0 else out_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = FullyConnectedLayer(out_c, out_c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)  # [N, out_c, 1, 1]
        return self.linear(x.flatten(1))


def _upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """FPN merge: bilinear (align_corners=True) upsampling of x to y's size, plus y."""
    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y


def _ir_units(cfg: EncoderConfig) -> list[nn.Module]:
    units, prev = [], cfg.widths[0]
    for depth, count in zip(cfg.widths, cfg.stage_blocks):
        for i in range(count):
            units.append(BottleneckIR(prev if i == 0 else depth, depth, 2 if i == 0 else 1, cfg.uses_se))
        prev = depth
    return units


def _resnet_units(cfg: EncoderConfig) -> list[nn.Module]:
    from torchvision.models.resnet import BasicBlock  # the official body is torchvision's resnet34

    units, prev = [], cfg.widths[0]
    for stage, (planes, count) in enumerate(zip(cfg.widths, cfg.stage_blocks)):
        stride = 1 if stage == 0 else 2
        for i in range(count):
            s = stride if i == 0 else 1
            down = None
            if s != 1 or prev != planes:
                down = nn.Sequential(nn.Conv2d(prev, planes, 1, s, bias=False), nn.BatchNorm2d(planes))
            units.append(BasicBlock(prev, planes, s, down))
            prev = planes
    return units


# ---- encoders --------------------------------------------------------------------------------

class _StyleEncoder(nn.Module):
    """Backbone (IR or ResNet34-style) + one GradualStyleBlock per W+ row.

    Class attributes select the official variant: `backbone` ('ir' | 'resnet'), `pyramid`
    (pSp's FPN: rows 0-2 from the last stage, 3-6 from FPN level 2, 7+ from FPN level 1; otherwise
    every row reads the last stage, ReStyle's "backbone" encoders) and `progressive` (e4e: row 0 is
    w0 and every other row is w0 + its delta).
    """

    backbone: ClassVar[str] = "ir"
    pyramid: ClassVar[bool] = True
    progressive: ClassVar[bool] = False

    def __init__(self, config: EncoderConfig | None = None):
        super().__init__()
        cfg = config or default_config(type(self).__name__)
        if ENCODER_TYPES.get(cfg.encoder_type) is not type(self):
            raise ValueError(f"config.encoder_type is {cfg.encoder_type!r}, not {type(self).__name__!r}.")
        self.config = cfg
        self.style_count = cfg.n_styles
        self.coarse_ind, self.middle_ind = COARSE_END, MIDDLE_END
        w0, top = cfg.widths[0], cfg.widths[3]
        if self.backbone == "ir":
            self.input_layer = nn.Sequential(nn.Conv2d(cfg.input_nc, w0, 3, 1, 1, bias=False),
                                             nn.BatchNorm2d(w0), nn.PReLU(w0))
            self.body = nn.Sequential(*_ir_units(cfg))
        else:
            self.conv1 = nn.Conv2d(cfg.input_nc, w0, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(w0)
            self.relu = nn.PReLU(w0)
            self.body = nn.Sequential(*_resnet_units(cfg))
        self.styles = nn.ModuleList(GradualStyleBlock(top, cfg.w_dim, self._spatial(i)) for i in range(cfg.n_styles))
        if self.pyramid:
            self.latlayer1 = nn.Conv2d(cfg.widths[2], top, kernel_size=1)
            self.latlayer2 = nn.Conv2d(cfg.widths[1], top, kernel_size=1)
        ends = [sum(cfg.stage_blocks[:k + 1]) - 1 for k in range(4)]
        self._taps = (ends[1], ends[2], ends[3])  # body indices giving c1, c2, c3 (50 layers: 6, 20, 23)
        if self.progressive:
            self.progressive_stage = cfg.n_styles - 1

    def _spatial(self, i: int) -> int:
        size = self.config.input_size
        if not self.pyramid or i < COARSE_END:
            return size // 16
        return size // 8 if i < MIDDLE_END else size // 4

    def set_progressive_stage(self, stage: int) -> None:
        """e4e training stage: rows 1..stage get their delta, later rows stay w0 (stage 0: W only)."""
        if not self.progressive:
            raise ValueError(f"{type(self).__name__} is not a progressive (e4e-style) encoder.")
        stage = int(getattr(stage, "value", stage))
        if stage < 0:
            raise ValueError(f"progressive stage must be >= 0, got {stage}.")
        self.progressive_stage = min(stage, self.style_count - 1)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        if self.backbone == "ir":
            return self.input_layer(x)
        return self.relu(self.bn1(self.conv1(x)))

    def _check_input(self, x: torch.Tensor) -> None:
        cfg = self.config
        h, w = cfg.input_shape
        if x.ndim != 4 or x.shape[1] != cfg.input_nc or tuple(x.shape[-2:]) != (h, w):
            raise ValueError(f"{type(self).__name__} expects input [N, {cfg.input_nc}, {h}, {w}], got {list(x.shape)}.")

    def _raw_styles(self, x: torch.Tensor, count: int) -> list[torch.Tensor]:
        """Outputs of styles[0..count-1], each [N, w_dim]."""
        self._check_input(x)
        x = self._stem(x)
        if not self.pyramid:
            feat = self.body(x)  # [N, C, size/16, size/16]
            return [self.styles[i](feat) for i in range(count)]
        c1 = c2 = None
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i == self._taps[0]:
                c1 = x  # [N, widths[1], size/4, size/4]
            elif i == self._taps[1]:
                c2 = x  # [N, widths[2], size/8, size/8]
        c3 = x          # [N, widths[3], size/16, size/16]
        out, feat = [], c3
        for i in range(count):
            if i == COARSE_END:
                p2 = feat = _upsample_add(c3, self.latlayer1(c2))
            elif i == MIDDLE_END:
                feat = _upsample_add(p2, self.latlayer2(c1))
            out.append(self.styles[i](feat))
        return out

    def style_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """The raw output of every style block, [N, n_styles, w_dim]. For progressive encoders row 0
        is w0 and row i >= 1 the delta alone (before w0 is added)."""
        return torch.stack(self._raw_styles(x, self.style_count), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw codes [N, n_styles, w_dim] for input x [N, input_nc, *config.input_shape] in [-1, 1]."""
        if not self.progressive:
            return self.style_outputs(x)
        used = min(self.progressive_stage + 1, self.style_count)
        raw = self._raw_styles(x, used)
        w0 = raw[0]
        rows = [w0] + [w0 + d for d in raw[1:]] + [w0] * (self.style_count - used)
        return torch.stack(rows, dim=1)


class GradualStyleEncoder(_StyleEncoder):
    """pSp's FPN encoder over IR-SE50 (also ReStyle's `fpn_encoders.GradualStyleEncoder`)."""
    backbone, pyramid, progressive = "ir", True, False


class ResNetGradualStyleEncoder(_StyleEncoder):
    """ReStyle's FPN encoder over a ResNet34 body."""
    backbone, pyramid, progressive = "resnet", True, False


class Encoder4Editing(_StyleEncoder):
    """e4e: the pSp FPN encoder predicting w0 plus per-row deltas."""
    backbone, pyramid, progressive = "ir", True, True


class BackboneEncoder(_StyleEncoder):
    """ReStyle-pSp: every row from the last 16x16 IR-SE50 stage."""
    backbone, pyramid, progressive = "ir", False, False


class ResNetBackboneEncoder(_StyleEncoder):
    """ReStyle-pSp over ResNet34."""
    backbone, pyramid, progressive = "resnet", False, False


class ProgressiveBackboneEncoder(_StyleEncoder):
    """ReStyle-e4e: w0 plus deltas, every row from the last IR-SE50 stage."""
    backbone, pyramid, progressive = "ir", False, True


class ResNetProgressiveBackboneEncoder(_StyleEncoder):
    """ReStyle-e4e over ResNet34."""
    backbone, pyramid, progressive = "resnet", False, True


ENCODER_TYPES: dict[str, type[_StyleEncoder]] = {c.__name__: c for c in (
    GradualStyleEncoder, ResNetGradualStyleEncoder, Encoder4Editing, BackboneEncoder, ResNetBackboneEncoder,
    ProgressiveBackboneEncoder, ResNetProgressiveBackboneEncoder)}

# ReStyle's own classes read 6 channels (image + current reconstruction) by default; pSp and e4e 3.
_RESTYLE_ONLY = {"ResNetGradualStyleEncoder", "BackboneEncoder", "ResNetBackboneEncoder",
                 "ProgressiveBackboneEncoder", "ResNetProgressiveBackboneEncoder"}


def default_config(encoder_type: str, **overrides) -> EncoderConfig:
    """The official FFHQ configuration of `encoder_type` (1024-px generator: 18 rows), with overrides."""
    base = {"encoder_type": encoder_type, "input_nc": 6 if encoder_type in _RESTYLE_ONLY else 3}
    return EncoderConfig(**{**base, **overrides})


def build_encoder(config: EncoderConfig) -> _StyleEncoder:
    """Instantiate the encoder class named by `config.encoder_type` (randomly initialised, train mode)."""
    return ENCODER_TYPES[config.encoder_type](config)
