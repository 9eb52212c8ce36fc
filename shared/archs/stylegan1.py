"""StyleGAN (v1) generator: Karras et al., "A Style-Based Generator Architecture for Generative
Adversarial Networks", CVPR 2019; behaviour of NVlabs/stylegan@1e0d5c78 `training/networks_stylegan.py`
(G_style, G_mapping, G_synthesis), written in PyTorch without copying it.

What the official generator computes at its final level of detail (lod 0), reproduced here:
- Mapping: z pixel-normalised, `mapping_layers` dense layers with equalised learning rate, He gain
  √2 folded into the weight scale (√2/√fan_in · lrmul, lrmul 0.01), bias · lrmul, leaky ReLU 0.2
  without an output gain (unlike StyleGAN2), broadcast to num_ws = 2·log2(res) − 2 rows.
- Truncation (G_style): ws[:, :cutoff] = w_avg + ψ(ws − w_avg) toward `dlatent_avg`; the official
  defaults ψ 0.7 on the first 8 rows are `OFFICIAL_TRUNCATION` (our calling convention, as for the
  other generators, defaults to no truncation).
- Synthesis: a learned constant 4x4, then per layer the epilogue noise (per-channel weight) → bias →
  leaky ReLU → instance norm → style modulation x·(s₀+1)+s₁ with s = dense(w_row) (gain 1). Each
  block after 4x4 is an up-scaling 3x3 conv followed by the 3-tap [1,2,1] blur, then a 3x3 conv.
  The up-scaling conv is fused (transposed conv with the 3x3 kernel summed into 4x4, the official
  `upscale2d_conv2d`) where the official 'auto' rule fuses: blocks of 128 px and up; below, nearest
  up-sampling then the conv. The two are not interchangeable: `conv2d_transpose` is the adjoint of
  a correlation, so the fused layer equals up-sampling then the conv with the kernel flipped. Only ToRGB_lod0 is used (the lower-lod ToRGB layers are progressive-
  growing leftovers that do not contribute at lod 0; the loader checks lod == 0).
- Non-square datasets (LSUN cars, 512x384) were trained letterboxed in 512x512; `crop`
  (top, left, height, width) cuts the synthesis output as the official figures do (cars: rows 64-447).

Calling convention (NVlabs): `G.mapping(z, c, truncation_psi, truncation_cutoff)` -> ws
[N, num_ws, w_dim]; `G.synthesis(ws, noise_mode='const'|'random'|'none')` -> img [N, 3, H, W];
`G(z, c, ...)`; `G.w_avg`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from shared.archs.layers import MappingWAvg, normalize_2nd_moment, truncate

__all__ = ["OFFICIAL_TRUNCATION", "StyleGAN1Config", "StyleGAN1Generator", "official_channels"]

OFFICIAL_TRUNCATION = (0.7, 8)   # G_style defaults: truncation_psi, truncation_cutoff
_BLUR = torch.tensor([1.0, 2.0, 1.0])


def official_channels(resolution: int, fmap_base: int = 8192, fmap_decay: float = 1.0,
                      fmap_max: int = 512) -> tuple[tuple[int, int], ...]:
    """((res, channels), ...) for 4 .. resolution by the official nf(stage) rule (stage = log2(res) - 1)."""
    def nf(stage: int) -> int:
        return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)
    return tuple((2 ** r, nf(r - 1)) for r in range(2, int(math.log2(resolution)) + 1))


@dataclass(frozen=True)
class StyleGAN1Config:
    """Architecture of a StyleGAN (v1) generator. Defaults: the official FFHQ 1024 network."""
    z_dim: int = 512                      # latent_size
    w_dim: int = 512                      # dlatent_size
    img_resolution: int = 1024            # synthesis resolution (square)
    img_channels: int = 3                 # num_channels
    mapping_layers: int = 8               # mapping_layers
    mapping_hidden: int = 512             # mapping_fmaps
    mapping_lr: float = 0.01              # mapping_lrmul
    channels: tuple[tuple[int, int], ...] = ()   # ((res, C), ...) 4 .. img_resolution; () = official rule
    fused_scale: str = "auto"             # 'auto' (fuse blocks >= 128 px), 'always' or 'never'
    blur: bool = True                     # the [1,2,1] blur after up-scaling (blur_filter)
    crop: tuple[int, int, int, int] | None = None   # (top, left, height, width) of the output, None = full

    def __post_init__(self) -> None:
        log2 = math.log2(self.img_resolution)
        if self.img_resolution < 4 or log2 != int(log2):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {self.img_resolution}")
        if not self.channels:
            object.__setattr__(self, "channels", official_channels(self.img_resolution))
        object.__setattr__(self, "channels", tuple((int(r), int(c)) for r, c in self.channels))
        if [r for r, _ in self.channels] != [2 ** i for i in range(2, int(log2) + 1)]:
            raise ValueError(f"channels must list every resolution 4..{self.img_resolution}, got {self.channels}")
        if min(c for _, c in self.channels) < 1:
            raise ValueError(f"every resolution needs at least one channel, got {self.channels}")
        if self.fused_scale not in ("auto", "always", "never"):
            raise ValueError(f"fused_scale must be 'auto', 'always' or 'never', got {self.fused_scale!r}")
        if self.crop is not None:
            object.__setattr__(self, "crop", tuple(int(v) for v in self.crop))
            top, left, h, w = self.crop
            if len(self.crop) != 4 or min(self.crop) < 0 or h < 1 or w < 1 or top + h > self.img_resolution \
                    or left + w > self.img_resolution:
                raise ValueError(f"crop (top, left, height, width) must lie inside {self.img_resolution}px, got {self.crop}")

    @property
    def num_ws(self) -> int:
        return 2 * int(math.log2(self.img_resolution)) - 2

    @property
    def channel_dict(self) -> dict[int, int]:
        return dict(self.channels)

    def fused(self, res: int) -> bool:
        """Whether the block producing `res` px fuses up-scaling into a transposed conv."""
        return self.fused_scale == "always" or (self.fused_scale == "auto" and res >= 128)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = [list(rc) for rc in self.channels]
        d["crop"] = list(self.crop) if self.crop is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> StyleGAN1Config:
        d = dict(d)
        d["channels"] = tuple(tuple(rc) for rc in d.get("channels") or ())
        if d.get("crop") is not None:
            d["crop"] = tuple(d["crop"])
        return cls(**d)


class _Dense(nn.Module):
    """Equalised dense layer y = x @ (W·gain/√in·lr)ᵀ + b·lr (weight [out, in], bias [out])."""

    def __init__(self, in_features: int, out_features: int, gain: float, lr: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.weight_gain, self.bias_gain = gain / math.sqrt(in_features) * lr, lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias * self.bias_gain, x, (self.weight * self.weight_gain).t())


class _Mapping(nn.Module):
    """G_mapping plus G_style's broadcast and truncation: `G.mapping(z, c, psi, cutoff)`."""

    def __init__(self, cfg: StyleGAN1Config):
        super().__init__()
        self.z_dim, self.num_ws = cfg.z_dim, cfg.num_ws
        widths = [cfg.z_dim] + [cfg.mapping_hidden] * (cfg.mapping_layers - 1) + [cfg.w_dim]
        self.fcs = nn.ModuleList(_Dense(widths[i], widths[i + 1], math.sqrt(2), cfg.mapping_lr)
                                 for i in range(cfg.mapping_layers))
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))   # dlatent_avg

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, *, update_emas: bool = False) -> torch.Tensor:
        """z [N, z_dim] -> ws [N, num_ws, w_dim], truncated toward `w_avg` (c must be None or empty:
        the official v1 networks are unconditional; update_emas is ignored)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        if c is not None and c.numel():
            raise ValueError("this StyleGAN (v1) generator is unconditional; pass c=None")
        x = normalize_2nd_moment(z.to(torch.float32))
        for fc in self.fcs:
            x = F.leaky_relu(fc(x), 0.2)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)                 # [N, num_ws, w_dim]
        return truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)


class _Layer(nn.Module):
    """One synthesis layer: optional conv (plain, up-scaling or fused up-scaling, + blur), then the
    epilogue noise -> bias -> lrelu -> instance norm -> style modulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, res: int, *, conv: str, blur: bool):
        super().__init__()
        self.kind, self.blur, self.res = conv, blur and conv in ("up", "fused"), res
        if conv != "const":
            self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
            self.weight_gain = math.sqrt(2) / math.sqrt(in_channels * 9)
        self.noise_strength = nn.Parameter(torch.zeros(out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.style = _Dense(w_dim, 2 * out_channels, gain=1.0)
        self.register_buffer("noise_const", torch.randn(1, 1, res, res))

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain                        # [out, in, 3, 3]
        if self.kind == "fused":   # upscale2d_conv2d: 3x3 kernel summed into 4x4, transposed conv stride 2
            w = F.pad(w, (1, 1, 1, 1))
            w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
            x = F.conv_transpose2d(x, w.transpose(0, 1), stride=2, padding=1)
        else:
            if self.kind == "up":
                x = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)   # nearest (tf.tile)
            x = F.conv2d(x, w, padding=1)
        if self.blur:
            c = x.shape[1]
            f = (_BLUR[:, None] * _BLUR[None, :] / 16).to(x)[None, None].repeat(c, 1, 1, 1)
            x = F.conv2d(x, f, padding=1, groups=c)
        return x

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if self.kind != "const":
            x = self._conv(x)
        if noise is not None:
            x = x + noise * self.noise_strength.view(1, -1, 1, 1)
        x = F.leaky_relu(x + self.bias.view(1, -1, 1, 1), 0.2)
        x = x - x.mean(dim=(2, 3), keepdim=True)                  # instance norm, eps 1e-8
        x = x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + 1e-8)
        style = self.style(w).view(-1, 2, x.shape[1], 1, 1)      # [N, 2, C, 1, 1]
        return x * (style[:, 0] + 1) + style[:, 1]


class _Synthesis(nn.Module):
    def __init__(self, cfg: StyleGAN1Config):
        super().__init__()
        self.cfg = cfg
        ch = cfg.channel_dict
        self.const = nn.Parameter(torch.ones(ch[4], 4, 4))
        layers = [_Layer(ch[4], ch[4], cfg.w_dim, 4, conv="const", blur=False),
                  _Layer(ch[4], ch[4], cfg.w_dim, 4, conv="plain", blur=False)]
        for r in range(3, int(math.log2(cfg.img_resolution)) + 1):
            res = 2 ** r
            up = "fused" if cfg.fused(res) else "up"
            layers += [_Layer(ch[res // 2], ch[res], cfg.w_dim, res, conv=up, blur=cfg.blur),
                       _Layer(ch[res], ch[res], cfg.w_dim, res, conv="plain", blur=False)]
        self.layers = nn.ModuleList(layers)
        self.torgb = _Dense(ch[cfg.img_resolution], cfg.img_channels, gain=1.0)   # 1x1 conv as a dense

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", *, generator: torch.Generator | None = None,
                noises: list[torch.Tensor] | None = None, fp16: bool = False) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> img [N, img_channels, H, W] (H, W = crop or img_resolution).
        noise_mode: 'const' (stored noise inputs), 'random' (drawn from `generator`) or 'none';
        `noises` (one [1 or N, 1, r, r] per layer) overrides it. fp16 is ignored (v1 runs in fp32)."""
        cfg = self.cfg
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (cfg.num_ws, cfg.w_dim):
            raise ValueError(f"ws must be [N, {cfg.num_ws}, {cfg.w_dim}], got {list(ws.shape)}")
        if noise_mode not in ("const", "random", "none"):
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")
        if noises is not None and len(noises) != len(self.layers):
            raise ValueError(f"expected {len(self.layers)} noise maps, got {len(noises)}")
        ws = ws.to(torch.float32)
        x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
        for i, layer in enumerate(self.layers):
            if noises is not None:
                noise = noises[i]
            elif noise_mode == "const":
                noise = layer.noise_const
            elif noise_mode == "random":
                noise = torch.randn((ws.shape[0], 1, layer.res, layer.res), generator=generator, device=ws.device)
            else:
                noise = None
            x = layer(x, ws[:, i], noise)
        img = torch.einsum("nchw,oc->nohw", x, self.torgb.weight * self.torgb.weight_gain) \
            + (self.torgb.bias * self.torgb.bias_gain).view(1, -1, 1, 1)
        if cfg.crop is not None:
            top, left, h, w = cfg.crop
            img = img[:, :, top:top + h, left:left + w]
        return img


class StyleGAN1Generator(MappingWAvg, nn.Module):
    """StyleGAN (v1) generator, NVlabs calling convention (see the module docstring)."""

    arch = "stylegan1"

    def __init__(self, config: StyleGAN1Config = StyleGAN1Config()):
        super().__init__()
        self.config = config
        self.z_dim, self.w_dim, self.c_dim = config.z_dim, config.w_dim, 0
        self.img_resolution, self.img_channels, self.num_ws = config.img_resolution, config.img_channels, config.num_ws
        self.mapping = _Mapping(config)
        self.synthesis = _Synthesis(config)

    @property
    def img_shape(self) -> tuple[int, int]:
        """(H, W) of the images (the crop for letterboxed datasets such as cars: (384, 512))."""
        crop = self.config.crop
        return (crop[2], crop[3]) if crop is not None else (self.img_resolution, self.img_resolution)

    def set_crop(self, crop: tuple[int, int, int, int] | None) -> StyleGAN1Generator:
        """Cut the output to `crop` (top, left, height, width), or show it whole (None): what the
        registry record of a letterboxed dataset asks for (cars: (64, 0, 384, 512)). Returns self."""
        self.config = replace(self.config, crop=crop)
        self.synthesis.cfg = self.config
        return self

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, noise_mode: str = "const", *,
                generator: torch.Generator | None = None) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, generator=generator)
