"""Pose with Style (AlBahar et al., "Pose with Style: Detail-Preserving Pose-Guided Image Synthesis with
Conditional StyleGAN", SIGGRAPH Asia 2021; BadourAlBahar/pose-with-style@f344f3b, MIT licence).

Two networks, with the official parameter names so official checkpoints load key for key:
- `PoseWithStyleGenerator` (`model.py: Generator`): an appearance encoder turns the source image and its
  silhouette into features at every scale, warps them to the target pose through the flow "target IUV
  -> UV atlas -> complete source coordinates" (`grid_sample`), masks them with the target body and fuses
  them with an FPN; a pose encoder turns the target IUV into a 16 x 16 feature map, which StyleGAN2-style
  synthesis layers upsample, each spatially modulated (gamma * x + beta, then instance normalisation)
  by the warped appearance features of its scale. No mapping network and no latent.
- `CoordinateCompletion` (`util/coordinate_completion_model.py`, the CCM): gated convolutions with
  reflection padding, eval-mode BatchNorm and ELU, dilated in the middle, that fill in the image
  coordinates of the UV atlas the source photo does not show.
Equalised convolutions, the [1, 3, 3, 1] blur and the fused bias + leaky ReLU follow rosinality's
StyleGAN2 (whose CPU paths the official code runs) through `custom_ops`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from custom_ops import bias_act, setup_filter, upfirdn2d
from shared.densepose import sample_by_uv, uv_grid

__all__ = ["CCMConfig", "CoordinateCompletion", "PoseWithStyleConfig", "PoseWithStyleGenerator"]

_KERNEL = (1, 3, 3, 1)


@dataclass(frozen=True)
class PoseWithStyleConfig:
    """Shapes of a Pose with Style generator. `official(size)` is the published configuration
    (`Generator(size, 2048, 8, channel_multiplier=2)`; style_dim and n_mlp are unused there)."""
    size: int = 512                              # output side: a power of two, 32..512
    ngf: int = 64                                # encoder base width, doubled per scale up to ngf * 8
    channels: tuple[tuple[int, int], ...] = ()   # ((resolution, channels), ...) from 16 px up
    modulation_hidden: int = 128                 # width of the 1x1 gamma / beta networks

    def __post_init__(self):
        if self.size < 32 or self.size > 512 or self.size & (self.size - 1):
            raise ValueError(f"size must be a power of two in 32..512, got {self.size}")
        chans = tuple((int(r), int(c)) for r, c in (self.channels or self._official_channels()))
        object.__setattr__(self, "channels", chans)
        need = [2 ** i for i in range(4, int(math.log2(self.size)) + 1)]
        if [r for r, _ in chans] != need:
            raise ValueError(f"channels must list resolutions {need}, got {[r for r, _ in chans]}")
        coarsest = self.ngf * min(2 ** (self.num_levels - 1), 8)  # the pose encoder's output width
        if dict(chans)[16] != coarsest:
            raise ValueError(f"channels at 16 px must equal the encoders' 16 px width {coarsest}, "
                             f"got {dict(chans)[16]}")

    def _official_channels(self) -> tuple[tuple[int, int], ...]:
        cm = 2
        table = {16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm}
        return tuple((r, table[r]) for r in sorted(table) if r <= self.size)

    @classmethod
    def official(cls, size: int = 512) -> "PoseWithStyleConfig":
        return cls(size=size)

    @property
    def channel_dict(self) -> dict[int, int]:
        return dict(self.channels)

    @property
    def num_levels(self) -> int:
        """Encoder scales: size, size/2, ..., 16."""
        return int(math.log2(self.size)) - 3

    @property
    def num_noise(self) -> int:
        return 2 * (int(math.log2(self.size)) - 4) + 1

    def noise_shapes(self) -> list[tuple[int, int, int, int]]:
        """Shape [1, 1, r, r] of each noise input, in the order `noise=` takes them."""
        return [(1, 1, 16 * 2 ** ((i + 1) // 2), 16 * 2 ** ((i + 1) // 2)) for i in range(self.num_noise)]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = {str(r): c for r, c in self.channels}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PoseWithStyleConfig":
        d = dict(d)
        if isinstance(d.get("channels"), dict):
            d["channels"] = tuple(sorted((int(r), int(c)) for r, c in d["channels"].items()))
        return cls(**d)


# ---- rosinality-style layers (official key names) ------------------------------------------------

class _Kernel(nn.Module):
    """A FIR kernel buffer `kernel` (rosinality's Blur / Upsample), applied with `upfirdn2d`."""

    def __init__(self, padding: tuple[int, int], gain: float = 1.0, up: int = 1):
        super().__init__()
        self.register_buffer("kernel", setup_filter(list(_KERNEL)) * gain)
        self.padding, self.up = padding, up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p0, p1 = self.padding
        return upfirdn2d(x, self.kernel, up=self.up, padding=(p0, p1, p0, p1))


class EqualConv2d(nn.Module):
    """Convolution with weights N(0, 1) scaled by 1/sqrt(fan_in) at run time."""

    def __init__(self, cin: int, cout: int, k: int, *, stride: int = 1, padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale, self.stride, self.padding = 1 / math.sqrt(cin * k * k), stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class _LeakyReLU(nn.Module):
    """Bias + leaky ReLU (slope 0.2) * sqrt(2): rosinality's FusedLeakyReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bias_act(x, self.bias, act="lrelu")


def _conv_layer(cin: int, cout: int, k: int, *, down: bool = False, activate: bool = True) -> nn.Sequential:
    """rosinality's ConvLayer: [blur + stride 2 when down] equalised conv [+ bias and lrelu]."""
    layers: list[nn.Module] = []
    if down:
        p = len(_KERNEL) - 2 + k - 1
        layers.append(_Kernel(((p + 1) // 2, p // 2)))
    layers.append(EqualConv2d(cin, cout, k, stride=2 if down else 1, padding=0 if down else k // 2, bias=False))
    if activate:
        layers.append(_LeakyReLU(cout))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """Two 3x3 conv layers (the second halves the size) plus a 1x1 downsampling skip, / sqrt(2)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = _conv_layer(cin, cin, 3)
        self.conv2 = _conv_layer(cin, cout, 3, down=True)
        self.skip = _conv_layer(cin, cout, 1, down=True, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


# ---- spatially modulated synthesis ---------------------------------------------------------------

class SpatiallyModulatedConv2d(nn.Module):
    """x -> gamma(style) * x + beta(style) -> conv (transposed, stride 2, then blur when upsampling)
    -> instance normalisation (unbiased variance + 1e-5). The style is a feature map of x's size."""

    def __init__(self, cin: int, cout: int, k: int, *, upsample: bool = False, hidden: int = 128):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, cout, cin, k, k))
        self.scale, self.padding, self.upsample = 1 / math.sqrt(cin * k * k), k // 2, upsample
        if upsample:
            self.blur = _Kernel((1, 1), gain=4)
        self.gamma = nn.Sequential(EqualConv2d(cin, hidden, 1), nn.ReLU(), EqualConv2d(hidden, cin, 1))
        self.beta = nn.Sequential(EqualConv2d(cin, hidden, 1), nn.ReLU(), EqualConv2d(hidden, cin, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        w = self.weight[0] * self.scale                                       # [O, I, k, k]
        x = self.gamma(style) * x + self.beta(style)
        if self.upsample:
            x = self.blur(F.conv_transpose2d(x, w.transpose(0, 1), stride=2))
        else:
            x = F.conv2d(x, w, padding=self.padding)
        n, c = x.shape[:2]
        flat = x.reshape(n, c, -1)
        std = (flat.var(dim=2) + 1e-5).sqrt().reshape(n, c, 1, 1)
        return (x - flat.mean(dim=2).reshape(n, c, 1, 1)) / std


class _NoiseStrength(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))


class StyledConv(nn.Module):
    """Spatially modulated 3x3 conv -> + strength * noise -> bias + lrelu."""

    def __init__(self, cin: int, cout: int, *, upsample: bool = False, hidden: int = 128):
        super().__init__()
        self.conv = SpatiallyModulatedConv2d(cin, cout, 3, upsample=upsample, hidden=hidden)
        self.noise = _NoiseStrength()
        self.activate = _LeakyReLU(cout)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.activate(self.conv(x, style) + self.noise.weight * noise)


class ToRGB(nn.Module):
    """Spatially modulated 1x1 conv to RGB + bias, plus the upsampled image of the previous scale."""

    def __init__(self, cin: int, *, upsample: bool = True, hidden: int = 128):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            self.upsample = _Kernel((2, 1), gain=4, up=2)
        self.conv = SpatiallyModulatedConv2d(cin, 3, 1, hidden=hidden)

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv(x, style) + self.bias
        return y if skip is None else y + self.upsample(skip)


# ---- encoders ------------------------------------------------------------------------------------

def _encoder_widths(cfg: PoseWithStyleConfig) -> list[int]:
    """Channels of the encoder's feature maps, finest (size) to coarsest (16 px)."""
    return [cfg.ngf * min(2 ** k, 8) for k in range(cfg.num_levels)]


class PoseEncoder(nn.Module):
    """Target IUV (raw 0..255 values) [N, 3, S, S] -> features [N, ngf * 8, 16, 16]."""

    def __init__(self, cfg: PoseWithStyleConfig):
        super().__init__()
        widths = _encoder_widths(cfg)
        convs = [_conv_layer(3, cfg.ngf, 1)] + [ResBlock(a, b) for a, b in zip(widths[:-1], widths[1:])]
        self.convs = nn.Sequential(*convs)

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        return self.convs(pose)


class SpatialAppearanceEncoder(nn.Module):
    """Source RGB + silhouette -> features at every scale, warped to the target pose, masked by the target
    body and fused coarse to fine (FPN). Submodules `conv1..convK` (encoder), `conv{k}1` (lateral 1x1 on
    features + mask) and `conv{k}3` (3x3 outputs), k = 1 at full size."""

    def __init__(self, cfg: PoseWithStyleConfig):
        super().__init__()
        widths, ch = _encoder_widths(cfg), cfg.channel_dict
        self.num_levels, lateral = cfg.num_levels, ch[16]
        self.conv1 = _conv_layer(4, cfg.ngf, 1)
        for k in range(2, self.num_levels + 1):
            setattr(self, f"conv{k}", ResBlock(widths[k - 2], widths[k - 1]))
        for k in range(1, self.num_levels + 1):
            setattr(self, f"conv{k}1", EqualConv2d(widths[k - 1] + 1, lateral, 1))
        for k in range(1, self.num_levels):
            setattr(self, f"conv{k}3", EqualConv2d(lateral, ch[cfg.size >> (k - 1)], 3, padding=1))

    def warped_features(self, source: torch.Tensor, flow: torch.Tensor, body: torch.Tensor
                        ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Encoder features of `source` [N, 4, S, S] warped by `flow` [N, 2, S, S] and masked by `body`
        [N, 1, S, S]: (features, masks), finest first."""
        feats, masks, x = [], [], source
        for k in range(1, self.num_levels + 1):
            x = getattr(self, f"conv{k}")(x)
            size = x.shape[2:]
            f = F.interpolate(flow, size=size, mode="bilinear", align_corners=True)
            m = F.interpolate(body, size=size, mode="bilinear", align_corners=True)
            warped = F.grid_sample(x, f.permute(0, 2, 3, 1), mode="bilinear", padding_mode="zeros",
                                   align_corners=False)
            feats.append(warped * m)
            masks.append(m)
        return feats, masks

    def fuse(self, feats: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor]:
        """FPN over warped features (finest first) -> styles, coarsest (16 px) first."""
        k = self.num_levels
        top = getattr(self, f"conv{k}1")(torch.cat([feats[-1], masks[-1]], 1))
        styles, f = [top], top
        for k in range(self.num_levels - 1, 0, -1):
            f = F.interpolate(f, scale_factor=2, mode="nearest") + getattr(self, f"conv{k}1")(
                torch.cat([feats[k - 1], masks[k - 1]], 1))
            styles.append(getattr(self, f"conv{k}3")(f))
        return styles

    def forward(self, appearance: torch.Tensor, grid: torch.Tensor, body: torch.Tensor) -> list[torch.Tensor]:
        """appearance [N, 6, S, S] (RGB, silhouette, complete coordinates), the target's UV grid [N, 2, S, S]
        (`shared.densepose.uv_grid`) and body mask [N, 1, S, S] -> styles, coarsest first."""
        flow = sample_by_uv(appearance[:, 4:6], grid)
        return self.fuse(*self.warped_features(appearance[:, :4], flow, body))


# ---- the generator -------------------------------------------------------------------------------

class PoseWithStyleGenerator(nn.Module):
    """Reposes a person: (appearance of the source, target IUV) -> image [N, 3, S, S] in about [-1, 1]."""

    arch = "posewithstyle"

    def __init__(self, config: PoseWithStyleConfig):
        super().__init__()
        cfg = self.config = config
        ch, hidden = cfg.channel_dict, cfg.modulation_hidden
        self.size = cfg.size
        self.appearance_encoder = SpatialAppearanceEncoder(cfg)
        self.pose_encoder = PoseEncoder(cfg)
        self.conv1 = StyledConv(ch[16], ch[16], hidden=hidden)
        self.to_rgb1 = ToRGB(ch[16], upsample=False, hidden=hidden)
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        for res in (2 ** i for i in range(5, int(math.log2(cfg.size)) + 1)):
            self.convs.append(StyledConv(ch[res // 2], ch[res], upsample=True, hidden=hidden))
            self.convs.append(StyledConv(ch[res], ch[res], hidden=hidden))
            self.to_rgbs.append(ToRGB(ch[res], hidden=hidden))

    def styles(self, appearance: torch.Tensor, pose: torch.Tensor, lookup: torch.Tensor) -> list[torch.Tensor]:
        """The warped appearance features that modulate synthesis, coarsest (16 px) first.

        Args:
            appearance: [N, 6, S, S]: RGB in [-1, 1], silhouette in [0, 1], complete coordinates in [-1, 1].
            pose: [N, 3, S, S] target IUV, raw 0..255 values.
            lookup: [24, 256, 256, 2] UV lookup table.
        """
        body = (pose[:, :1] != 0).float()
        return self.appearance_encoder(appearance, uv_grid(pose, lookup), body)

    def garment_styles(self, person: torch.Tensor, garment: torch.Tensor, pose: torch.Tensor, lookup: torch.Tensor,
                       parts_map: torch.Tensor, parts: tuple[int, ...]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Styles for garment transfer (`GarmentTransferSpatialAppearanceEncoder`): both people's features are
        warped to `pose`; where the UV part map, warped the same way, shows one of `parts` (1-based DensePose
        indices) the garment's features replace the person's.

        Args:
            person, garment: [N, 6, S, S] appearances (see `styles`); pose: [N, 3, S, S] raw IUV (usually the
                person's own); parts_map: [1, 1, h, w] 0-based part of each UV-atlas pixel.

        Returns:
            (styles, coarsest first; part mask [N, 1, h, w] in {0, 1} at the part map's size).
        """
        body = (pose[:, :1] != 0).float()
        grid = uv_grid(pose, lookup)
        enc = self.appearance_encoder
        own, masks = enc.warped_features(person[:, :4], sample_by_uv(person[:, 4:6], grid), body)
        other, _ = enc.warped_features(garment[:, :4], sample_by_uv(garment[:, 4:6], grid), body)
        labels = sample_by_uv(parts_map.to(pose).expand(pose.shape[0], -1, -1, -1), grid).round()
        wanted = torch.tensor([p - 1 for p in parts], dtype=labels.dtype, device=labels.device)
        part_mask = torch.isin(labels, wanted).float()
        feats = []
        for a, b in zip(own, other):
            m = F.interpolate(part_mask, size=a.shape[2:], mode="bilinear", align_corners=True)
            feats.append(b * m + a * (1 - m))
        return enc.fuse(feats, masks), part_mask

    def synthesize(self, pose: torch.Tensor, styles: list[torch.Tensor], noise: list[torch.Tensor]) -> torch.Tensor:
        """Pose features modulated by `styles` (see `styles`) -> image [N, 3, S, S]."""
        x = self.conv1(self.pose_encoder(pose), styles[0], noise[0])
        img = self.to_rgb1(x, styles[0])
        for j, rgb in enumerate(self.to_rgbs):
            x = self.convs[2 * j](x, styles[j], noise[2 * j + 1])
            x = self.convs[2 * j + 1](x, styles[j + 1], noise[2 * j + 2])
            img = rgb(x, styles[j + 1], img)
        return img

    def make_noise(self, batch: int = 1, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> list[torch.Tensor]:
        """Fresh N(0, 1) noise maps [batch, 1, r, r], one per synthesis layer, drawn from `generator`."""
        return [torch.randn((batch,) + s[1:], generator=generator, device=device) for s in self.config.noise_shapes()]

    def forward(self, appearance: torch.Tensor, pose: torch.Tensor, lookup: torch.Tensor, *,
                noise: list[torch.Tensor] | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """The official `G(appearance=..., pose=..., noise=...)[0]`.

        Args:
            appearance: [N, 6, S, S] (see `styles`).
            pose: [N, 3, S, S] target IUV, raw 0..255 values.
            lookup: [24, 256, 256, 2] UV lookup table.
            noise: one map per layer ([1 or N, 1, r, r], `config.noise_shapes()`); None draws them from
                `generator` (the official default draws fresh noise on every call).

        Returns:
            image [N, 3, S, S], float32, about [-1, 1].
        """
        if noise is None:
            noise = self.make_noise(appearance.shape[0], generator, appearance.device)
        if len(noise) != self.config.num_noise:
            raise ValueError(f"expected {self.config.num_noise} noise maps, got {len(noise)}")
        return self.synthesize(pose, self.styles(appearance, pose, lookup), noise)


# ---- coordinate completion -----------------------------------------------------------------------

@dataclass(frozen=True)
class CCMConfig:
    """The coordinate-completion model has one official shape (ngf = 32); kept as a config for the
    native format."""
    ngf: int = 32

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CCMConfig":
        return cls(**d)


class GatedConv(nn.Module):
    """Reflection pad -> conv and gate conv -> BatchNorm -> ELU, times sigmoid(gate)."""

    def __init__(self, cin: int, cout: int, k: int, *, stride: int = 1, padding: int = 0, dilation: int = 1):
        super().__init__()
        self.pad = nn.ReflectionPad2d(padding)
        self.conv2d = nn.Conv2d(cin, cout, k, stride, 0, dilation)
        self.mask_conv2d = nn.Conv2d(cin, cout, k, stride, 0, dilation)
        self.batch_norm2d = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pad(x)
        return F.elu(self.batch_norm2d(self.conv2d(x))) * torch.sigmoid(self.mask_conv2d(x))


class _CoordinateGenerator(nn.Module):
    def __init__(self, ngf: int):
        super().__init__()
        n1, n2, n4 = ngf, ngf * 2, ngf * 4
        middle = [GatedConv(n4, n4, 3, padding=d, dilation=d) for d in (1, 1, 2, 4, 8, 8, 1, 1)]
        self.model = nn.Sequential(
            GatedConv(3, n1, 5, padding=2), GatedConv(n1, n2, 3, stride=2, padding=1),
            GatedConv(n2, n2, 3, padding=1), GatedConv(n2, n4, 3, stride=2, padding=1),
            *middle,
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), GatedConv(n4, n2, 3, padding=1),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), GatedConv(n2, n1, 3, padding=1),
            GatedConv(n1, n1 // 2, 3, padding=1), nn.Conv2d(n1 // 2, 2, 3, padding=1), nn.Tanh())


class CoordinateCompletion(nn.Module):
    """Partial UV-space coordinates [N, 2, R, R] (-10 where unknown) and their mask [N, 1, R, R]
    -> complete coordinates [N, 2, R, R] in (-1, 1). R must be a multiple of 4. Call in eval mode."""

    arch = "posewithstyle-ccm"

    def __init__(self, config: CCMConfig = CCMConfig()):
        super().__init__()
        self.config = config
        self.generator = _CoordinateGenerator(config.ngf)

    def forward(self, uv_coor: torch.Tensor, uv_mask: torch.Tensor) -> torch.Tensor:
        return self.generator.model(torch.cat([uv_coor, uv_mask], 1))
