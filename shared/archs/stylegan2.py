"""StyleGAN2 generator (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", 2020).

One module that reproduces both official PyTorch implementations on the same weights:
rosinality/stylegan2-pytorch@bef283a (`model.py: Generator`, whose parameter names our
`state_dict()` uses, 171 tensors at FFHQ-1024 config-f) and NVlabs' StyleGAN2 in
stylegan2-ada-pytorch / stylegan3 (`training/networks_stylegan2.py: Generator`, loaded by
renaming keys in `from_nvlabs`). Calling convention is NVlabs': `G.mapping(z, c)` -> ws,
`G.synthesis(ws, noise_mode=...)` -> img, plus a StyleSpace API (`G.synthesis.styles`,
`G.synthesis.from_styles`, `style_layout`) for channel-level editing (Wu et al., 2021).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from custom_ops import bias_act, conv2d_resample, setup_filter, upsample2d
from shared.archs.layers import FullyConnectedLayer, normalize_2nd_moment, truncate

__all__ = ["StyleGAN2Config", "StyleGAN2Generator", "StyleLayer", "flat_to_styles", "style_layout", "styles_to_flat"]

_NVLABS_KNOWN_KWARGS = {
    "z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs",
    "channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture", "resample_filter",
    "use_noise", "activation", "fused_modconv_default", "class_name", "square",
}


@dataclass(frozen=True)
class StyleGAN2Config:
    """Everything that defines a StyleGAN2 generator (shapes and numerics)."""
    z_dim: int = 512                      # input latent size
    w_dim: int = 512                      # intermediate latent size (rosinality's style_dim)
    c_dim: int = 0                        # class-label size, 0 = unconditional
    img_resolution: int = 1024            # output size, a power of two in 32..1024 (4..1024 allowed)
    img_channels: int = 3                 # output channels
    mapping_layers: int = 8               # number of fully connected mapping layers
    mapping_lr: float = 0.01              # mapping learning-rate multiplier (scales weights at run time)
    mapping_hidden: int | None = None     # hidden width of the mapping MLP, None = w_dim
    embed_features: int | None = None     # class embedding width, None = w_dim
    channels: tuple[tuple[int, int], ...] = ()  # ((resolution, channels), ...) from 4 px up
    conv_clamp: float | None = None       # clamp activations (NVlabs uses 256), None = off
    resample_kernel: tuple[float, ...] = (1, 3, 3, 1)  # FIR taps for up-sampling
    num_fp16_res: int = 4                 # resolutions run in fp16 when synthesis(..., fp16=True)
    normalize_z: bool = True              # PixelNorm of z (all official models); False when z's norm
                                          # carries meaning (the demo world's factor-coordinate z)
    z_onehot: tuple[tuple[int, tuple[float, ...]], ...] = ()  # (start, offsets) per arg-max group of z:
                                          # z[start:start+K] becomes the +-1 one-hot code of
                                          # argmax(z_k + offsets_k) before the MLP (the demo world's
                                          # categorical factors); () for every official model

    def __post_init__(self):
        res = self.img_resolution
        if res < 4 or res & (res - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {res}")
        object.__setattr__(self, "channels", tuple((int(r), int(c)) for r, c in self.channels))
        object.__setattr__(self, "resample_kernel", tuple(float(v) for v in self.resample_kernel))
        object.__setattr__(self, "z_onehot", tuple((int(s), tuple(float(b) for b in offs))
                                                   for s, offs in self.z_onehot))
        for s, offs in self.z_onehot:
            if s < 0 or s + len(offs) > self.z_dim or len(offs) < 2:
                raise ValueError(f"z_onehot group at {s} with {len(offs)} categories does not fit z_dim={self.z_dim}")
        have = [r for r, _ in self.channels]
        need = [2 ** i for i in range(2, int(math.log2(res)) + 1)]
        if have != need:
            raise ValueError(f"channels must list resolutions {need}, got {have}")

    @property
    def num_ws(self) -> int:
        return 2 * int(math.log2(self.img_resolution)) - 2

    @property
    def channel_dict(self) -> dict[int, int]:
        return dict(self.channels)

    @classmethod
    def rosinality(cls, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                   lr_mlp: float = 0.01, channels: dict[int, int] | None = None) -> "StyleGAN2Config":
        """rosinality's `Generator(size, style_dim, n_mlp, channel_multiplier)` (config-f: cm=2)."""
        cm = channel_multiplier
        default = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm,
                   512: 32 * cm, 1024: 16 * cm}
        default.update({int(k): int(v) for k, v in (channels or {}).items()})
        chans = tuple((2 ** i, default[2 ** i]) for i in range(2, int(math.log2(size)) + 1))
        return cls(z_dim=style_dim, w_dim=style_dim, img_resolution=size, mapping_layers=n_mlp,
                   mapping_lr=lr_mlp, channels=chans)

    @classmethod
    def nvlabs(cls, *, z_dim: int, w_dim: int, img_resolution: int, c_dim: int = 0, img_channels: int = 3,
               channel_base: int = 32768, channel_max: int = 512, mapping_layers: int = 8,
               mapping_lr: float = 0.01, conv_clamp: float | None = None, **extra) -> "StyleGAN2Config":
        """NVlabs' `channels = min(channel_base // res, channel_max)` schedule."""
        chans = tuple((2 ** i, min(channel_base // 2 ** i, channel_max))
                      for i in range(2, int(math.log2(img_resolution)) + 1))
        return cls(z_dim=z_dim, w_dim=w_dim, c_dim=c_dim, img_resolution=img_resolution,
                   img_channels=img_channels, mapping_layers=mapping_layers, mapping_lr=mapping_lr,
                   channels=chans, conv_clamp=conv_clamp, **extra)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = {str(r): c for r, c in self.channels}
        d["resample_kernel"] = list(self.resample_kernel)
        d["z_onehot"] = [[s, list(offs)] for s, offs in self.z_onehot]
        if not d["z_onehot"]:
            del d["z_onehot"]   # files of generators without groups stay as they were
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "StyleGAN2Config":
        d = dict(d)
        ch = d.get("channels", ())
        if isinstance(ch, dict):
            d["channels"] = tuple(sorted((int(r), int(c)) for r, c in ch.items()))
        if "size" in d:  # the short form used by registry records
            base = cls.rosinality(int(d.pop("size")), int(d.pop("style_dim", 512)), int(d.pop("n_mlp", 8)),
                                  int(d.pop("channel_multiplier", 2)), channels=dict(d.pop("channels", ())))
            return cls(**{**asdict(base), **d})
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass(frozen=True)
class StyleLayer:
    """One StyleSpace layer: the affine output that modulates one convolution."""
    name: str          # module path, e.g. "convs.3" or "to_rgbs.1"
    index: int         # position in the list returned by `styles()`
    ws_index: int      # row of ws that feeds it
    resolution: int    # output resolution of the layer
    channels: int      # style vector length (= input channels of the convolution)
    offset: int        # start of this layer in the flat style vector
    is_torgb: bool = field(default=False)


# --------------------------------------------------------------------------------------------
# Building blocks; attribute names follow rosinality so that state_dict keys match.

class _Modulation(FullyConnectedLayer):
    """Affine map w -> s (bias initialised to 1)."""


class ModulatedConv2d(nn.Module):
    """Weight-modulated (and optionally demodulated) convolution, optionally upsampling by 2."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, *,
                 demodulate: bool = True, upsample: bool = False, kernel: tuple[float, ...] = (1, 3, 3, 1)):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.upsample = demodulate, upsample
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = _Modulation(w_dim, in_channels, bias_init=1)
        self.scale = 1 / math.sqrt(in_channels * kernel_size ** 2)
        if upsample:
            self.blur = _KernelHolder(setup_filter(list(kernel), gain=4))  # rosinality stores factor**2 * f

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 1 and x.dtype == torch.float32:
            return self._forward_unfused(x, s)
        n, _, h, w_ = x.shape
        w = self.weight * self.scale * s.reshape(n, 1, -1, 1, 1).to(x.dtype)  # [N, O, I, k, k]
        if x.dtype == torch.float16 and self.demodulate:  # keep fp16 weights in range (NVlabs trick)
            w = w / w.flatten(2).abs().amax(dim=2).reshape(n, -1, 1, 1, 1)
        if self.demodulate:
            w = w * torch.rsqrt(w.square().sum(dim=[2, 3, 4]) + 1e-8).reshape(n, -1, 1, 1, 1)
        w = w.reshape(n * self.out_channels, self.in_channels, self.kernel_size, self.kernel_size).to(x.dtype)
        x = x.reshape(1, -1, h, w_)
        f = self.blur.kernel / 4 if self.upsample else None
        # flip_weight=(up == 1), as NVlabs does: the transposed path then runs the kernel unflipped.
        x = conv2d_resample(x, w, f, up=2 if self.upsample else 1, padding=self.kernel_size // 2, groups=n,
                            flip_weight=not self.upsample)
        return x.reshape(n, self.out_channels, x.shape[2], x.shape[3])

    def _forward_unfused(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Scale activations instead of weights (NVlabs' fused_modconv=False): one shared-weight
        convolution for the whole batch, several times faster on CPU than the grouped form."""
        w = self.weight[0] * self.scale  # [O, I, k, k]
        x = x * s.reshape(x.shape[0], -1, 1, 1)
        f = self.blur.kernel / 4 if self.upsample else None
        x = conv2d_resample(x, w, f, up=2 if self.upsample else 1, padding=self.kernel_size // 2,
                            flip_weight=not self.upsample)
        if self.demodulate:
            d = (w[None] * s[:, None, :, None, None]).square().sum(dim=[2, 3, 4]).add(1e-8).rsqrt()  # [N, O]
            x = x * d.reshape(x.shape[0], -1, 1, 1)
        return x


class _KernelHolder(nn.Module):
    """Holds a FIR kernel buffer under the name `kernel` (rosinality's Blur/Upsample)."""

    def __init__(self, kernel: torch.Tensor):
        super().__init__()
        self.register_buffer("kernel", kernel)


class _NoiseStrength(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))


class _Bias(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))


class StyledConv(nn.Module):
    """Modulated conv -> noise -> bias + lrelu (+ clamp)."""

    def __init__(self, in_channels, out_channels, w_dim, *, upsample=False, kernel=(1, 3, 3, 1), conv_clamp=None):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, upsample=upsample, kernel=kernel)
        self.noise = _NoiseStrength()
        self.activate = _Bias(out_channels)
        self.conv_clamp = conv_clamp

    def forward(self, x, s, noise=None):
        """`noise` is None or a callable giving the noise image for the conv output."""
        x = self.conv(x, s)
        if noise is not None:
            n = noise(x)
            if n is not None:
                x = x + (self.noise.weight * n).to(x.dtype)
        return bias_act(x, self.activate.bias.to(x.dtype), act="lrelu", clamp=self.conv_clamp)


class ToRGB(nn.Module):
    """1x1 modulated conv without demodulation, plus the upsampled skip image."""

    def __init__(self, in_channels, img_channels, w_dim, *, upsample=True, kernel=(1, 3, 3, 1), conv_clamp=None):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, img_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, img_channels, 1, 1))
        if upsample:
            self.upsample = _KernelHolder(setup_filter(list(kernel), gain=4))
        self.conv_clamp = conv_clamp

    def forward(self, x, s, skip=None):
        y = self.conv(x, s)
        y = bias_act(y, self.bias.reshape(-1).to(y.dtype), clamp=self.conv_clamp).float()
        if skip is not None:
            skip = upsample2d(skip, self.upsample.kernel / 4)
            y = y + skip
        return y


class _Noises(nn.Module):
    def __init__(self, num_layers: int):
        super().__init__()
        for i in range(num_layers):
            r = 2 ** ((i + 5) // 2)
            self.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))


class _Const(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, 4, 4))


# --------------------------------------------------------------------------------------------

class _SynthesisView:
    """`G.synthesis`: callable view (not a submodule, so state_dict keys stay rosinality's)."""

    def __init__(self, g: "StyleGAN2Generator"):
        self._g = g

    def __call__(self, ws, noise_mode="const", *, generator=None, fp16=False, noises=None, **ignored):
        """ws [N, num_ws, w_dim] -> img [N, 3, H, W]. `noises`: optional list of per-layer noise maps
        ([1 or N, 1, r, r], as `G.noises.noise_i`) used instead of `noise_mode` (e.g. optimised noise)."""
        return self._g._synthesize(self.styles(ws), noise_mode=noise_mode, generator=generator, fp16=fp16,
                                   noises=noises)

    def styles(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """ws [N, num_ws, w_dim] -> StyleSpace: one [N, C_l] tensor per layer (toRGB included)."""
        g = self._g
        assert ws.ndim == 3 and ws.shape[1:] == (g.num_ws, g.w_dim), f"ws must be [N, {g.num_ws}, {g.w_dim}]"
        return [mod.modulation(ws[:, layer.ws_index]) for layer, mod in zip(g.style_layers, g._style_modules())]

    def from_styles(self, styles: list[torch.Tensor], noise_mode="const", *, generator=None, fp16=False,
                    noises=None):
        """StyleSpace -> image [N, 3, H, W]."""
        return self._g._synthesize(styles, noise_mode=noise_mode, generator=generator, fp16=fp16, noises=noises)


class StyleGAN2Generator(nn.Module):
    """StyleGAN2 generator with skip-architecture toRGB (config-e/f), rosinality parameter names."""

    arch = "stylegan2"

    def __init__(self, config: StyleGAN2Config):
        super().__init__()
        cfg = config
        self.config = cfg
        self.z_dim, self.w_dim, self.c_dim = cfg.z_dim, cfg.w_dim, cfg.c_dim
        self.img_resolution, self.img_channels, self.num_ws = cfg.img_resolution, cfg.img_channels, cfg.num_ws
        ch, kern, clamp = cfg.channel_dict, cfg.resample_kernel, cfg.conv_clamp
        hidden = cfg.mapping_hidden or cfg.w_dim
        embed = cfg.embed_features or cfg.w_dim
        if cfg.c_dim:
            self.embed = FullyConnectedLayer(cfg.c_dim, embed)
        widths = [cfg.z_dim + (embed if cfg.c_dim else 0)] + [hidden] * (cfg.mapping_layers - 1) + [cfg.w_dim]
        self.style = nn.ModuleList([nn.Identity()] + [
            FullyConnectedLayer(widths[i], widths[i + 1], lr_multiplier=cfg.mapping_lr, activation="lrelu")
            for i in range(cfg.mapping_layers)])
        self.input = _Const(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], cfg.w_dim, kernel=kern, conv_clamp=clamp)
        self.to_rgb1 = ToRGB(ch[4], cfg.img_channels, cfg.w_dim, upsample=False, conv_clamp=clamp)
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        log_res = int(math.log2(cfg.img_resolution))
        for i in range(3, log_res + 1):
            cin, cout = ch[2 ** (i - 1)], ch[2 ** i]
            self.convs.append(StyledConv(cin, cout, cfg.w_dim, upsample=True, kernel=kern, conv_clamp=clamp))
            self.convs.append(StyledConv(cout, cout, cfg.w_dim, kernel=kern, conv_clamp=clamp))
            self.to_rgbs.append(ToRGB(cout, cfg.img_channels, cfg.w_dim, kernel=kern, conv_clamp=clamp))
        self.noises = _Noises(2 * (log_res - 2) + 1)
        # Truncation centre; rosinality keeps it outside g_ema (`latent_avg`), so it is not persistent.
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim), persistent=False)
        self.style_layers = style_layout(cfg)

    # ---- latents -------------------------------------------------------------------------
    @property
    def synthesis(self) -> _SynthesisView:
        return _SynthesisView(self)

    def mapping(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, *, update_emas: bool = False) -> torch.Tensor:
        """z [N, z_dim] (+ c [N, c_dim]) -> ws [N, num_ws, w_dim], truncated toward `w_avg`."""
        x = None
        if self.z_dim:
            x = self._onehot_groups(z.to(torch.float32))
            x = normalize_2nd_moment(x) if self.config.normalize_z else x
        if self.c_dim:
            if c is None or c.shape[-1] != self.c_dim:
                raise ValueError(f"this generator is class-conditional: pass c of shape [N, {self.c_dim}]")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for layer in self.style[1:]:
            x = layer(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        return truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)

    def _onehot_groups(self, z: torch.Tensor) -> torch.Tensor:
        """Replace each `config.z_onehot` group of z by the +-1 one-hot code of its offset arg-max
        (no gradient flows through a group; the other dimensions pass unchanged)."""
        if not self.config.z_onehot:
            return z
        x = z.clone()
        for start, offs in self.config.z_onehot:
            k = len(offs)
            idx = torch.argmax(z[:, start:start + k] + z.new_tensor(offs), dim=1)
            x[:, start:start + k] = 2 * torch.nn.functional.one_hot(idx, k).to(z.dtype) - 1
        return x

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, noise_mode="const", **kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, **kwargs)

    # ---- synthesis -----------------------------------------------------------------------
    def _style_modules(self) -> list[ModulatedConv2d]:
        mods = [self.conv1.conv, self.to_rgb1.conv]
        for i, rgb in enumerate(self.to_rgbs):
            mods += [self.convs[2 * i].conv, self.convs[2 * i + 1].conv, rgb.conv]
        return mods

    def _noise(self, i: int, mode: str, generator, noises=None):
        """A callable x -> noise image for layer i (None for noise_mode='none')."""
        if noises is not None:
            return lambda x: noises[i]
        if mode == "none":
            return None
        if mode == "const":
            return lambda x: getattr(self.noises, f"noise_{i}")
        if mode == "random":
            return lambda x: torch.randn((x.shape[0], 1, x.shape[2], x.shape[3]), generator=generator,
                                         device=x.device, dtype=torch.float32)
        raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {mode!r}")

    def _synthesize(self, styles, *, noise_mode="const", generator=None, fp16=False, noises=None) -> torch.Tensor:
        if len(styles) != len(self.style_layers):
            raise ValueError(f"expected {len(self.style_layers)} style vectors, got {len(styles)}")
        if noises is not None and len(noises) != len(self.convs) + 1:
            raise ValueError(f"expected {len(self.convs) + 1} noise maps, got {len(noises)}")
        n = styles[0].shape[0]
        fp16_from = self.img_resolution // 2 ** (self.config.num_fp16_res - 1)
        half = fp16 and styles[0].device.type == "cuda"
        x = self.input.input.repeat(n, 1, 1, 1)
        x = self.conv1(x, styles[0], self._noise(0, noise_mode, generator, noises))
        img = self.to_rgb1(x, styles[1])
        for i, rgb in enumerate(self.to_rgbs):
            res = 2 ** (i + 3)
            dtype = torch.float16 if half and res >= fp16_from else torch.float32
            x = x.to(dtype)
            s0, s1, s2 = styles[2 + 3 * i: 5 + 3 * i]
            x = self.convs[2 * i](x, s0, self._noise(2 * i + 1, noise_mode, generator, noises))
            x = self.convs[2 * i + 1](x, s1, self._noise(2 * i + 2, noise_mode, generator, noises))
            img = rgb(x, s2, img)
        return img

    # ---- weights ---------------------------------------------------------------------------
    @torch.no_grad()
    def init_random_(self, generator: torch.Generator) -> "StyleGAN2Generator":
        """Deterministic official-style initialisation: N(0,1) conv weights and constant input,
        fully connected layers N(0,1)/lr_multiplier with their bias_init (1 for the affines),
        zero biases and noise strengths, N(0,1) noise buffers."""
        for name, module in self.named_modules():
            if isinstance(module, FullyConnectedLayer):
                module.init_random_(generator)
        for name, p in self.named_parameters():
            if ".modulation." in name or name.startswith(("style.", "embed.")):
                continue
            if name.endswith("noise.weight") or name.endswith("bias"):
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=generator))
        for name, b in self.noises.named_buffers():
            b.copy_(torch.randn(b.shape, generator=generator))
        return self


def style_layout(config: StyleGAN2Config) -> list[StyleLayer]:
    """The StyleSpace layers of a StyleGAN2 generator, in the order `styles()` returns them.

    At FFHQ-1024 config-f: 26 layers, 9088 channels (6048 without the 9 toRGB layers).
    """
    ch = config.channel_dict
    layers, offset = [], 0

    def add(name, ws_index, res, channels, is_torgb=False):
        nonlocal offset
        layers.append(StyleLayer(name, len(layers), ws_index, res, channels, offset, is_torgb))
        offset += channels

    add("conv1", 0, 4, ch[4])
    add("to_rgb1", 1, 4, ch[4], True)
    for i in range(int(math.log2(config.img_resolution)) - 2):
        res = 2 ** (i + 3)
        add(f"convs.{2 * i}", 2 * i + 1, res, ch[res // 2])
        add(f"convs.{2 * i + 1}", 2 * i + 2, res, ch[res])
        add(f"to_rgbs.{i}", 2 * i + 3, res, ch[res], True)
    return layers


def styles_to_flat(styles: list[torch.Tensor]) -> torch.Tensor:
    """List of [N, C_l] style vectors -> one [N, sum C_l] tensor (offsets from `style_layout`)."""
    return torch.cat(styles, dim=1)


def flat_to_styles(s: torch.Tensor, layout: list[StyleLayer]) -> list[torch.Tensor]:
    """Inverse of `styles_to_flat`."""
    total = layout[-1].offset + layout[-1].channels
    if s.shape[-1] != total:
        raise ValueError(f"flat style vector must have {total} channels, got {s.shape[-1]}")
    return [s[:, layer.offset: layer.offset + layer.channels] for layer in layout]
