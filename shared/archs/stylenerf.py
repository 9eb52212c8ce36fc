"""StyleNeRF generator (Gu et al., "StyleNeRF: A Style-based 3D-Aware Generator for High-resolution
Image Synthesis", ICLR 2022; github.com/facebookresearch/StyleNeRF).

Reproduces facebookresearch/StyleNeRF@7f5610a058f27fcc360c6b972181983d7df794cb
`training/networks.py: Generator` with `training/stylenerf.py: NeRFSynthesisNetwork` (the FFHQ
configuration, `conf/model/stylenerf_ffhq.yaml`) on the same weights, in eval mode: a mapping MLP;
a foreground NeRF whose 1x1 layers are style-modulated by rows of ws (positional encoding of the
3D point, optional view-direction branch) and a NeRF++ background queried at inverse-sphere points
with latent codes; two-pass volume rendering at `resolution_vol` (uniform samples, then
deterministic hierarchical samples from the coarse weights); then a 2D StyleGAN2-like up-sampler
("nn_cat" up-sampling, magnitude-EMA input gain) from the NeRF feature map to the image. Cameras
follow the official `dnnlib/camera.py`: a camera on a sphere looking at the origin, z up, given by
yaw (azimuth) and pitch (polar angle, pi/2 = level), and a pinhole of field of view `fov`.
Submodules carry the official names, so `state_dict()` keys equal those of an official `G_ema`.
Calling convention is NVlabs': `G.mapping(z, c)` -> ws, `G.synthesis(ws, camera=...)` -> img,
`G(z, c, camera=...)`; `G.synthesis.render(...)` also returns the NeRF image and depth. Cameras
and the rendering maths live in `shared.archs.stylenerf_rendering`.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from custom_ops import bias_act, conv2d_resample, filter2d, setup_filter, upsample2d
from shared.archs.layers import FullyConnectedLayer, MappingNetwork, MappingWAvg, check_weights_fit
from shared.archs.stylenerf_rendering import (NeRFCamera, camera_from_angles, camera_rays, inverse_sphere_points,
                                              pixel_grid, positional_encoding, project_points, sample_pdf,
                                              volume_weights)
from shared.errors import CheckpointError

__all__ = ["NeRFCamera", "NeRFRender", "StyleNeRFConfig", "StyleNeRFGenerator", "camera_from_angles",
           "project_points", "sample_pdf"]

_LRELU_GAIN = math.sqrt(2)


@dataclass(frozen=True)
class StyleNeRFConfig:
    """Every official constructor argument that changes shapes or numbers (FFHQ defaults)."""
    z_dim: int = 512                      # input latent size
    w_dim: int = 512                      # intermediate latent size
    c_dim: int = 0                        # label size, 0 = unconditional
    img_resolution: int = 256             # output size
    img_channels: int = 3                 # output channels
    mapping_layers: int = 8               # mapping MLP depth
    mapping_lr: float = 0.01              # mapping learning-rate multiplier
    channel_base: float = 1.0             # up-sampler channels = min(channel_base*32768 // res, channel_max)
    channel_max: int = 1024
    conv_clamp: float | None = 256        # clamp of the up-sampler layers, None = off
    kernel_size: int = 1                  # up-sampler convolution size
    magnitude_ema_beta: float = 0.999     # > 0: up-sampler layers scale inputs by w_avg.rsqrt()
    resolution_vol: int = 32              # NeRF rendering resolution
    rgb_out_dim: int = 256                # NeRF feature channels (besides RGB)
    z_dim_bg: int = 32                    # background latent code size
    fg_hidden: int = 128                  # foreground MLP width
    fg_blocks: int = 8                    # foreground MLP depth (fc_in + blocks)
    fg_freqs: int = 10                    # positional-encoding frequencies of points
    fg_view_freqs: int = 4                # positional-encoding frequencies of view directions
    fg_viewdirs: bool = False             # view-dependent RGB branch (`from_ray`)
    fg_downscale: float = 1.0             # points are divided by this before encoding
    bg_hidden: int = 64                   # background MLP width
    bg_blocks: int = 4                    # background MLP depth
    bg_freqs: int = 10
    bg_downscale: float = 1.0
    background: bool = True               # False = official `no_background`
    n_ray_samples: int = 14               # foreground samples per ray (twice with hierarchical)
    n_bg_samples: int = 4                 # background samples per ray
    hierarchical: bool = True             # second pass sampled from the first pass's weights
    fov: float = 12.0                     # field of view [deg]
    range_u: tuple[float, float] = (-0.3, 0.3)                               # yaw range [rad]
    range_v: tuple[float, float] = (1.4157963267948965, 1.7257963267948966)  # pitch range [rad]
    range_radius: tuple[float, float] = (1.0, 1.0)                           # camera distance
    depth_range: tuple[float, float] = (0.88, 1.12)                          # foreground ray segment
    bg_start: float = 0.5                 # background inverse depth starts here

    def __post_init__(self):
        res = self.img_resolution
        if res < 4 or res & (res - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {res}")
        for name in ("range_u", "range_v", "range_radius", "depth_range"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if self.fg_blocks < 1 or self.bg_blocks < 1:
            raise ValueError("fg_blocks and bg_blocks must be >= 1")

    @property
    def vol_resolution(self) -> int:
        return min(self.resolution_vol, self.img_resolution)

    @property
    def block_resolutions(self) -> tuple[int, ...]:
        return tuple(2 ** i for i in range(2, int(math.log2(self.img_resolution)) + 1)
                     if 2 ** i > self.vol_resolution)

    def channels(self, res: int) -> int:
        return min(int(self.channel_base * 32768) // res, self.channel_max)

    @property
    def fg_num_ws(self) -> int:
        return self.fg_blocks + 2           # fc_in, blocks, sigma_out, feat_out

    @property
    def num_ws(self) -> int:
        n = len(self.block_resolutions)
        return self.fg_num_ws + (2 * n + 1 if n else 0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "StyleNeRFConfig":
        return cls(**dict(d))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_nvlabs_kwargs(cls, init_kwargs: Mapping) -> "StyleNeRFConfig":
        """Config from the official `Generator` constructor kwargs (a pickle's `init_kwargs` or the
        parity JSON's `G_kwargs` + dims). Raises CheckpointError naming any option we do not implement."""
        try:
            return _config_from_official(dict(init_kwargs))
        except (TypeError, ValueError) as e:  # e.g. an OmegaConf interpolation left unresolved in a pickle
            raise CheckpointError(f"the StyleNeRF constructor arguments hold a value of the wrong kind ({e}).") from None


# ---- official kwargs -> config -----------------------------------------------------------------
def _require(cond: bool, what: str) -> None:
    if not cond:
        raise CheckpointError(f"this StyleNeRF checkpoint uses {what}, which the hub does not implement "
                              "(supported: the FFHQ configuration of facebookresearch/StyleNeRF).")


def _nerf_kwargs_ok(kw: Mapping, name: str, inverse_sphere: bool) -> None:
    _require(kw.get("positional_encoding", "normal") == "normal", f"{name} positional_encoding="
             f"{kw.get('positional_encoding')!r}")
    for flag in ("use_sdf",):
        _require(kw.get(flag) is None, f"{name}.{flag}")
    for flag in ("merge_sigma_feat", "no_sigma", "tcnn_backend", "use_skip", "add_rgb", "use_pos",
                 "use_normal", "normalized_feat", "final_sigmoid_act", "disable_latents"):
        _require(not kw.get(flag, False), f"{name}.{flag}=True")
    _require(bool(kw.get("predict_rgb", False)), f"{name}.predict_rgb=False")
    _require(int(kw.get("shuffle_factor", 1)) == 1, f"{name}.shuffle_factor")
    _require(bool(kw.get("inverse_sphere", False)) == inverse_sphere, f"{name}.inverse_sphere")
    _require(float(kw.get("magnitude_ema_beta", -1)) <= 0, f"{name}.magnitude_ema_beta")


def _config_from_official(kw: dict) -> StyleNeRFConfig:
    kw.pop("class_name", None)
    mapping = dict(kw.get("mapping_kwargs") or {})
    syn = dict(kw.get("synthesis_kwargs") or {})
    missing = [k for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels") if k not in kw]
    if missing:
        raise CheckpointError(f"StyleNeRF constructor arguments are missing: {', '.join(missing)}.")
    _require(not mapping.get("module_name") or mapping["module_name"].endswith("MappingNetwork"),
             f"mapping module {mapping.get('module_name')}")
    _require(str(syn.get("module_name", "")).endswith("NeRFSynthesisNetwork"),
             f"synthesis module {syn.get('module_name')!r}")
    _require(not kw.get("encoder_kwargs"), "an image encoder")
    _require(int(syn.get("z_dim", 256)) == 0, "foreground latent codes (z_dim > 0)")
    _require(not (syn.get("input_kwargs") or {}) or syn["input_kwargs"].get("output_mode") == "none",
             "NeRF input features (input_kwargs)")
    _require(syn.get("architecture", "skip") == "skip", f"architecture={syn.get('architecture')!r}")
    _require(syn.get("upsample_mode", "default") == "nn_cat", f"upsample_mode={syn.get('upsample_mode')!r}")
    _require(not syn.get("use_noise", False), "noise inputs (use_noise=True)")
    for flag in ("predict_camera", "prog_nerf_only", "use_single_layer"):
        _require(not syn.get(flag, False), f"{flag}=True")
    _require(syn.get("rectangular") is None, "rectangular crops")
    rv = int(syn.get("resolution_vol", 32))
    _require(int(syn.get("resolution_start") or rv) >= rv, "resolution_start < resolution_vol")
    # checkpoints older than the *_kwargs groups keep camera and renderer options in synthesis_kwargs
    cam = dict(syn.get("camera_kwargs") or syn)
    _require(cam.get("depth_transform") in (None, "None"), f"depth_transform={cam.get('depth_transform')!r}")
    _require(not cam.get("ray_align_corner", True), "ray_align_corner=True")
    _require(not cam.get("dists_normalized", False), "dists_normalized=True")
    ren = dict(syn.get("renderer_kwargs") or syn)
    _require(ren.get("sigma_type", "relu") == "relu", f"sigma_type={ren.get('sigma_type')!r}")
    for flag in ("white_background", "fine_only", "mask_background"):
        _require(not ren.get(flag, False), f"{flag}=True")
    up = dict(syn.get("upsampler_kwargs") or {})
    for flag in ("no_2d_renderer", "no_residual_img", "shared_rgb_style"):
        _require(not up.get(flag, False), f"upsampler {flag}=True")
    for key in ("block_reses", "channel_dict", "out_channel_dict", "channel_base_sz"):
        _require(up.get(key) is None, f"upsampler {key}")
    fg, bg = dict(syn.get("foreground_kwargs") or {}), dict(syn.get("background_kwargs") or {})
    _nerf_kwargs_ok(fg, "foreground", inverse_sphere=False)
    background = not ren.get("no_background", False)
    if background:
        _nerf_kwargs_ok(bg, "background", inverse_sphere=True)
        _require(not bg.get("use_viewdirs", False), "a view-dependent background")
    clamp = syn.get("conv_clamp")
    return StyleNeRFConfig(
        z_dim=int(kw["z_dim"]), w_dim=int(kw["w_dim"]), c_dim=int(kw["c_dim"]),
        img_resolution=int(kw["img_resolution"]), img_channels=int(kw["img_channels"]),
        mapping_layers=int(mapping.get("num_layers", 8)), mapping_lr=float(mapping.get("lr_multiplier", 0.01)),
        channel_base=float(up.get("channel_base", syn.get("channel_base", 1))),
        channel_max=int(syn.get("channel_max", 1024)),
        conv_clamp=None if clamp is None else float(clamp), kernel_size=int(syn.get("kernel_size", 3)),
        magnitude_ema_beta=float(syn.get("magnitude_ema_beta", -1)),
        resolution_vol=rv, rgb_out_dim=int(syn.get("rgb_out_dim", 256)), z_dim_bg=int(syn.get("z_dim_bg", 128)),
        fg_hidden=int(fg.get("hidden_size", 128)), fg_blocks=int(fg.get("n_blocks", 8)),
        fg_freqs=int(fg.get("n_freq_posenc", 10)), fg_view_freqs=int(fg.get("n_freq_posenc_views", 4)),
        fg_viewdirs=bool(fg.get("use_viewdirs", False)), fg_downscale=float(fg.get("downscale_p_by", 1)),
        bg_hidden=int(bg.get("hidden_size", 128)), bg_blocks=int(bg.get("n_blocks", 8)),
        bg_freqs=int(bg.get("n_freq_posenc", 10)), bg_downscale=float(bg.get("downscale_p_by", 1)),
        background=background,
        n_ray_samples=int(ren.get("n_ray_samples", 14)), n_bg_samples=int(ren.get("n_bg_samples", 4)),
        hierarchical=bool(ren.get("hierarchical", True)),
        fov=float(cam.get("fov", 49.13)), range_u=tuple(cam.get("range_u", (0, 0))),
        range_v=tuple(cam.get("range_v", (0.25, 0.25))), range_radius=tuple(cam.get("range_radius", (2.732, 2.732))),
        depth_range=tuple(cam.get("depth_range", (0.5, 6.0))), bg_start=float(cam.get("bg_start", 1.0)),
    )


# ---- layers (official names and buffers) --------------------------------------------------------
def _modulate(weight: torch.Tensor, styles: torch.Tensor, demodulate: bool) -> torch.Tensor:
    """Per-sample weights [N, O, I, k, k] = weight [O, I, k, k] * styles [N, I] (then demodulated)."""
    w = weight.unsqueeze(0) * styles.reshape(styles.shape[0], 1, -1, 1, 1)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(styles.shape[0], -1, 1, 1, 1)
    return w


def _modconv_1x1(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool) -> torch.Tensor:
    """Fused modulated 1x1 convolution of x [N, I, H, W] as one grouped convolution (official
    `modulated_conv2d(fused_modconv=True)`); styles [M, I] with N a multiple of M."""
    n = x.shape[0]
    if styles.shape[0] < n:  # one style per sample, shared by its sample points
        styles = styles.repeat_interleave(n // styles.shape[0], dim=0)
    w = _modulate(weight, styles, demodulate)
    x = conv2d_resample(x.reshape(1, -1, *x.shape[2:]), w.reshape(-1, *w.shape[2:]).to(x.dtype), groups=n)
    return x.reshape(n, -1, *x.shape[2:])


class PointLayer(nn.Module):
    """The official `Style2Layer`: a 1x1 layer over sample points laid out as images
    [N*S, C, h, w]. With w_dim > 0 a demodulated style-modulated layer + leaky ReLU (gain sqrt 2);
    with w_dim == 0 a plain linear layer + ReLU (background NeRF)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int):
        super().__init__()
        self.w_dim = w_dim
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))
        if w_dim > 0:
            self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
            self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
            self.bias = nn.Parameter(torch.zeros([out_channels]))
        else:
            self.weight = nn.Parameter(torch.empty(out_channels, in_channels).uniform_(-1, 1) / math.sqrt(in_channels))
            self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-1, 1) / math.sqrt(in_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        if self.w_dim == 0:
            return F.relu(F.conv2d(x, self.weight[:, :, None, None], self.bias))
        x = _modconv_1x1(x, self.weight, self.affine(w), demodulate=True)
        return bias_act(x, self.bias.to(x.dtype), act="lrelu", gain=_LRELU_GAIN)


class PointOutput(nn.Module):
    """The official `ToRGBLayer` at 1x1 on sample points [N*S, C, h, w]: modulated without
    demodulation (styles scaled by 1/sqrt(in)) or, with w_dim == 0, plain linear; no activation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int):
        super().__init__()
        self.w_dim = w_dim
        if w_dim > 0:
            self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
            self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
            self.bias = nn.Parameter(torch.zeros([out_channels]))
            self.weight_gain = 1 / math.sqrt(in_channels)
        else:
            self.weight = nn.Parameter(torch.empty(out_channels, in_channels).uniform_(-1, 1) / math.sqrt(in_channels))
            self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-1, 1) / math.sqrt(in_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        if self.w_dim == 0:
            return F.conv2d(x, self.weight[:, :, None, None], self.bias)
        x = _modconv_1x1(x, self.weight, self.affine(w) * self.weight_gain, demodulate=False)
        return bias_act(x, self.bias.to(x.dtype))


class Conv2dLayer(nn.Module):
    """The official `Conv2dLayer` (no resampling): conv with weight gain 1/sqrt(fan_in), bias, activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, activation: str = "linear"):
        super().__init__()
        self.activation = activation
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        x = conv2d_resample(x, w.to(x.dtype), padding=self.padding)
        return bias_act(x, self.bias.to(x.dtype), act=self.activation)


class NeRFBlock(nn.Module):
    """Density and colour/feature field (official `NeRFBlock`): positional encoding of the point
    (plus a latent code when `z_dim > 0`), `n_blocks` point layers, `sigma_out` and `feat_out`
    heads, and `to_rgb` on the features (optionally plus `from_ray` of the view direction).

    The view-direction branch (`use_viewdirs`) follows the official code's evident intent; at
    7f5610a that line cannot run (its einops pattern holds a full-width parenthesis), so there is
    no official output to compare it with. The FFHQ models do not use it."""

    def __init__(self, *, input_dim: int, w_dim: int, z_dim: int, hidden: int, n_blocks: int, out_dim: int,
                 n_freqs: int, n_view_freqs: int, use_viewdirs: bool, downscale: float, img_channels: int):
        super().__init__()
        self.n_freqs, self.n_view_freqs, self.downscale = n_freqs, n_view_freqs, downscale
        self.z_dim, self.use_viewdirs = z_dim, use_viewdirs
        dim_embed, dim_view = input_dim * n_freqs * 2, 3 * n_view_freqs * 2
        if z_dim > 0:  # a latent code replaces the styles
            w_dim, dim_embed, dim_view = 0, dim_embed + z_dim, dim_view + z_dim
        self.w_dim = w_dim
        self.fc_in = PointLayer(dim_embed, hidden, w_dim)
        if n_blocks > 1:
            self.blocks = nn.ModuleList([PointLayer(hidden, hidden, w_dim) for _ in range(n_blocks - 1)])
        self.sigma_out = PointOutput(hidden, 1, w_dim)
        self.feat_out = PointOutput(hidden, out_dim, w_dim)
        if use_viewdirs:
            self.from_ray = Conv2dLayer(dim_view, out_dim, kernel_size=1)
        self.to_rgb = Conv2dLayer(out_dim, img_channels, kernel_size=1)
        self.num_ws = 0 if z_dim > 0 else n_blocks + 2

    def forward(self, p: torch.Tensor, ray_d: torch.Tensor | None, ws: torch.Tensor | None,
                z_shape: torch.Tensor | None, z_app: torch.Tensor | None, shape: tuple[int, int, int]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """p [N, h*w*S, D] points (pixel-major, samples innermost), ray_d [N, h*w*S, 3], ws
        [N, num_ws, w_dim] (None when z_dim > 0), z_shape/z_app [N, z_dim], shape (h, w, S).
        Returns (rgb + features [N, h*w*S, C + out_dim], raw density [N, h*w*S]).

        The points are laid out as images [N*S, D, h, w] like the official code, so that the
        layers run the same convolutions (the hierarchical sampler amplifies rounding)."""
        h, w, s = shape
        n = p.shape[0]
        as_image = lambda t: t.reshape(n, h, w, s, -1).permute(0, 3, 4, 1, 2).reshape(n * s, -1, h, w)
        x = positional_encoding(as_image(p).permute(0, 2, 3, 1) / self.downscale, self.n_freqs)
        if self.z_dim > 0:
            x = torch.cat([x, z_shape.repeat_interleave(s, dim=0)[:, None, None, :].expand(-1, h, w, -1)], -1)
        x = x.permute(0, 3, 1, 2)                                            # [N*S, C, h, w]
        row = (lambda i: ws[:, i]) if ws is not None else (lambda i: None)
        blocks = getattr(self, "blocks", ())
        net = self.fc_in(x, row(0))
        for i, layer in enumerate(blocks):
            net = layer(net, row(i + 1))
        sigma = self.sigma_out(net, row(len(blocks) + 1))
        feat = self.feat_out(net, row(len(blocks) + 2))
        if self.use_viewdirs and ray_d is not None:
            d = positional_encoding(ray_d / torch.norm(ray_d, dim=-1, keepdim=True), self.n_view_freqs)
            if self.z_dim > 0:
                d = torch.cat([d, z_app[:, None, :].expand(-1, d.shape[1], -1)], -1)
            rgb = self.to_rgb(F.leaky_relu(feat + self.from_ray(as_image(d))))
        else:
            rgb = self.to_rgb(feat)
        out = torch.cat([rgb, feat], 1)
        back = lambda t: t.reshape(n, s, -1, h, w).permute(0, 3, 4, 1, 2).reshape(n, h * w * s, -1)
        return back(out), back(sigma)[..., 0]


class SynthesisLayer(nn.Module):
    """Up-sampler layer (official `SynthesisLayer`, no noise): magnitude-EMA input gain, modulated
    convolution, optional "nn_cat" 2x up-sampling with its `adapter`, bias + leaky ReLU + clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *, kernel_size: int, up: int,
                 conv_clamp: float | None, magnitude_ema: bool):
        super().__init__()
        self.up, self.conv_clamp, self.padding = up, conv_clamp, kernel_size // 2
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))
        if up == 2:
            self.adapter = nn.Sequential(Conv2dLayer(out_channels * 2, out_channels // 4, 1, activation="lrelu"),
                                         Conv2dLayer(out_channels // 4, out_channels, 1))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        if magnitude_ema:
            self.register_buffer("w_avg", torch.ones([]))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if hasattr(self, "w_avg"):
            x = x * self.w_avg.rsqrt()
        wm = _modulate(self.weight, self.affine(w), demodulate=True)               # [N, O, I, k, k]
        x = conv2d_resample(x.reshape(1, -1, *x.shape[2:]), wm.reshape(-1, *wm.shape[2:]).to(x.dtype),
                            padding=self.padding, groups=n, flip_weight=(self.up == 1))
        x = x.reshape(n, -1, *x.shape[2:])
        if self.up == 2:
            x = self._nn_cat_up(x)
        clamp = self.conv_clamp
        return bias_act(x, self.bias.to(x.dtype), act="lrelu", gain=_LRELU_GAIN, clamp=clamp)

    def _nn_cat_up(self, x: torch.Tensor) -> torch.Tensor:
        """2x: nearest neighbour plus a learned correction from the averages of edge neighbours."""
        pad = F.pad(x, [1, 1, 1, 1])
        left, upper = pad[..., 1:-1, :-2], pad[..., :-2, 1:-1]
        lower, right = pad[..., 2:, 1:-1], pad[..., 1:-1, 2:]
        quads = torch.stack([left + upper, upper + right, left + lower, right + lower], 2) / 2  # [N, C, 4, H, W]
        xb = F.pixel_shuffle(quads.view(quads.shape[0], -1, *quads.shape[-2:]), 2)
        xa = F.interpolate(x, size=(x.shape[-2] * 2, x.shape[-1] * 2), mode="nearest")
        x = xa + self.adapter[1](self.adapter[0](torch.cat([xa, xb], 1)))
        return filter2d(x, self.resample_filter)


class ToRGBLayer(nn.Module):
    """Up-sampler ToRGB (official `ToRGBLayer`): modulated conv without demodulation, bias, clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        wm = _modulate(self.weight, self.affine(w) * self.weight_gain, demodulate=False)
        x = conv2d_resample(x.reshape(1, -1, *x.shape[2:]), wm.reshape(-1, *wm.shape[2:]).to(x.dtype), groups=n)
        return bias_act(x.reshape(n, -1, *x.shape[2:]), self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """Up-sampler block (official `SynthesisBlock`, architecture 'skip'): conv0 (2x up), conv1, and
    ToRGB added to the up-sampled image of the previous block."""

    def __init__(self, in_channels: int, out_channels: int, cfg: StyleNeRFConfig, *, is_last: bool):
        super().__init__()
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))
        kw = dict(kernel_size=cfg.kernel_size, conv_clamp=cfg.conv_clamp, magnitude_ema=cfg.magnitude_ema_beta > 0)
        self.conv0 = SynthesisLayer(in_channels, out_channels, cfg.w_dim, up=2, **kw)
        self.conv1 = SynthesisLayer(out_channels, out_channels, cfg.w_dim, up=1, **kw)
        self.torgb = ToRGBLayer(out_channels, cfg.img_channels, cfg.w_dim, cfg.conv_clamp)
        self.num_conv, self.num_torgb = 2, 1

    def forward(self, x: torch.Tensor, img: torch.Tensor, ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [N, C, H, W], img [N, 3, H, W], ws [N, 3, w_dim] -> (x, img) at 2H x 2W."""
        x = self.conv0(x, ws[:, 0])
        x = self.conv1(x, ws[:, 1])
        img = upsample2d(img, self.resample_filter)
        return x, img + self.torgb(x, ws[:, 2])


def _dividable(n: int) -> tuple[int, int]:
    """(h, w) with h * w = n and h the largest divisor <= sqrt(n) (the official `dividable`)."""
    h = next(i for i in range(int(np.sqrt(n)), 0, -1) if n % i == 0)
    return h, n // h


# ---- networks -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NeRFRender:
    """What one synthesis call renders: `img` [N, C, H, W] (final, float32, roughly [-1, 1]),
    `img_nerf` [N, C, r, r] (the volume-rendered RGB before up-sampling, r = resolution_vol) and
    `depth` [N, 1, r, r] (expected foreground distance along the ray, in units of the pixel ray)."""
    img: torch.Tensor
    img_nerf: torch.Tensor
    depth: torch.Tensor


class NeRFSynthesisNetwork(nn.Module):
    """ws -> image: volume rendering of the foreground/background fields at `resolution_vol`,
    then the 2D up-sampler blocks `b{res}` (official `NeRFSynthesisNetwork`, eval mode, alpha = 1)."""

    def __init__(self, cfg: StyleNeRFConfig):
        super().__init__()
        self.cfg = cfg
        self.num_ws = cfg.num_ws
        self.fg_nerf = NeRFBlock(input_dim=3, w_dim=cfg.w_dim, z_dim=0, hidden=cfg.fg_hidden, n_blocks=cfg.fg_blocks,
                                 out_dim=cfg.rgb_out_dim, n_freqs=cfg.fg_freqs, n_view_freqs=cfg.fg_view_freqs,
                                 use_viewdirs=cfg.fg_viewdirs, downscale=cfg.fg_downscale,
                                 img_channels=cfg.img_channels)
        if cfg.background:
            self.bg_nerf = NeRFBlock(input_dim=4, w_dim=cfg.w_dim, z_dim=cfg.z_dim_bg, hidden=cfg.bg_hidden,
                                     n_blocks=cfg.bg_blocks, out_dim=cfg.rgb_out_dim, n_freqs=cfg.bg_freqs,
                                     n_view_freqs=4, use_viewdirs=False, downscale=cfg.bg_downscale,
                                     img_channels=cfg.img_channels)
        self.block_names = []
        res_list = cfg.block_resolutions
        for i, res in enumerate(res_list):
            cin = cfg.rgb_out_dim if i == 0 else cfg.channels(res_list[i - 1])
            setattr(self, f"b{res}", SynthesisBlock(cin, cfg.channels(res), cfg, is_last=i == len(res_list) - 1))
            self.block_names.append(f"b{res}")
        self.register_buffer("alpha", torch.ones([]))  # progressive-growing state; 1 = finished

    def camera(self, yaw: float = 0.0, pitch: float = math.pi / 2, *, fov: float | None = None,
               batch_size: int = 1, device: torch.device | str = "cpu") -> NeRFCamera:
        """A camera of this model's rig (`range_radius` midpoint, `fov` default); see `camera_from_angles`."""
        r0, r1 = self.cfg.range_radius
        return camera_from_angles(yaw, pitch, fov=self.cfg.fov if fov is None else fov, radius=r0 + 0.5 * (r1 - r0),
                                  batch_size=batch_size, device=device)

    def background_codes(self, batch_size: int, generator: torch.Generator | None = None, *,
                         tmp: float = 0.65, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """(z_shape_bg, z_app_bg) [N, z_dim_bg] each, N(0, tmp^2) as renderer.py draws them."""
        shape = torch.randn(batch_size, self.cfg.z_dim_bg, generator=generator) * tmp
        app = torch.randn(batch_size, self.cfg.z_dim_bg, generator=generator) * tmp
        return shape.to(device), app.to(device)

    def forward(self, ws: torch.Tensor, *, camera: NeRFCamera | None = None,
                bg_codes: tuple[torch.Tensor, torch.Tensor] | None = None, noise_mode: str = "const") -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> img [N, C, H, W]; see `render`."""
        return self.render(ws, camera=camera, bg_codes=bg_codes, noise_mode=noise_mode).img

    def render(self, ws: torch.Tensor, *, camera: NeRFCamera | None = None,
               bg_codes: tuple[torch.Tensor, torch.Tensor] | None = None, noise_mode: str = "const") -> NeRFRender:
        """Render ws from `camera` (default: frontal, batch of N) with background codes `bg_codes`
        (default: zeros, the codes' mean). `noise_mode` is accepted for the NVlabs calling
        convention; the FFHQ models have no noise inputs."""
        n, cfg = ws.shape[0], self.cfg
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (self.num_ws, cfg.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {cfg.w_dim}], got {list(ws.shape)}")
        if noise_mode not in ("const", "random", "none"):
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")
        camera = (self.camera(batch_size=n) if camera is None else camera).to(ws.device)
        if camera.batch_size != n:
            raise ValueError(f"the camera batch ({camera.batch_size}) must match ws ({n})")
        if bg_codes is None:
            bg_codes = (ws.new_zeros(n, cfg.z_dim_bg), ws.new_zeros(n, cfg.z_dim_bg))
        ws = ws.to(torch.float32)
        feat, depth = self._render_volume(ws[:, :cfg.fg_num_ws], camera, bg_codes)
        r = cfg.vol_resolution
        full = feat.permute(0, 2, 1).reshape(n, -1, r, r)                    # [N, C + feat, r, r]
        img, x = full[:, :cfg.img_channels], full[:, cfg.img_channels:]
        img_nerf, w_idx = img, cfg.fg_num_ws
        for name in self.block_names:
            x, img = getattr(self, name)(x, img, ws[:, w_idx:w_idx + 3])
            w_idx += 2
        return NeRFRender(img=img, img_nerf=img_nerf, depth=depth.reshape(n, 1, r, r))

    def _render_volume(self, styles: torch.Tensor, camera: NeRFCamera,
                       bg_codes: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Features [N, r*r, C + rgb_out_dim] and foreground depth [N, r*r] (official forward_rendering
        + forward_rendering_background, eval mode)."""
        cfg, n = self.cfg, styles.shape[0]
        pixels = pixel_grid(cfg.vol_resolution, n, styles.device)
        pixels_world, origin = camera_rays(camera, pixels)
        ray = pixels_world - origin                                          # [N, P, 3]
        s = cfg.n_ray_samples
        d0, d1 = cfg.depth_range
        di = torch.linspace(0.0, 1.0, steps=s, device=styles.device).expand(n, ray.shape[1], s)
        di_trs = d1 * di + d0 * (1 - di)
        feat, sigma = self._query_fg(styles, origin, ray, di_trs)
        last = 1e10 if not cfg.background else 0.0
        weights, bg_lambda = volume_weights(sigma, di_trs, ray, last)
        if cfg.hierarchical:
            with torch.no_grad():
                mid = 0.5 * (di[..., :-1] + di[..., 1:])
                di_fine = sample_pdf(mid.reshape(-1, s - 1), weights.reshape(-1, s)[:, 1:-1], s).reshape(n, -1, s)
            di_trs_fine = d1 * di_fine + d0 * (1 - di_fine)
            feat_f, sigma_f = self._query_fg(styles, origin, ray, di_trs_fine)
            di, order = torch.sort(torch.cat([di_fine, di], 2), dim=2)
            di_trs = torch.gather(torch.cat([di_trs_fine, di_trs], 2), 2, order)
            sigma = torch.gather(torch.cat([sigma_f, sigma], 2), 2, order)
            feat = torch.cat([feat_f, feat], 2)
            feat = torch.gather(feat, 2, order.unsqueeze(-1).expand(-1, -1, -1, feat.shape[-1]))
            weights, bg_lambda = volume_weights(sigma, di_trs, ray, last)
        out = torch.sum(weights.unsqueeze(-1) * feat, dim=-2)
        depth = torch.sum(weights * di_trs, dim=-1)
        if cfg.background:
            out = out + bg_lambda.unsqueeze(-1) * self._render_background(pixels_world, origin, bg_codes)
        return out, depth

    def _query_fg(self, styles: torch.Tensor, origin: torch.Tensor, ray: torch.Tensor,
                  depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Foreground field at origin + depth * ray: features [N, P, S, C'] and density [N, P, S]."""
        n, p, s = depth.shape
        pts = origin.unsqueeze(-2) + depth.unsqueeze(-1) * ray.unsqueeze(-2)  # [N, P, S, 3]
        dirs = ray.unsqueeze(-2).expand(-1, -1, s, -1)
        h, w = _dividable(p)
        feat, sigma_raw = self.fg_nerf(pts.reshape(n, p * s, 3), dirs.reshape(n, p * s, 3), styles, None, None,
                                       (h, w, s))
        return feat.reshape(n, p, s, -1), F.relu(sigma_raw.reshape(n, p, s))

    def _render_background(self, pixels_world: torch.Tensor, origin: torch.Tensor,
                           bg_codes: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """NeRF++ background composited along each ray: [N, P, C + rgb_out_dim]."""
        cfg = self.cfg
        n, p, _ = origin.shape
        s = cfg.n_bg_samples
        di = torch.linspace(-1.0, 0.0, steps=s, device=origin.device).expand(n, p, s) * cfg.bg_start
        direction = pixels_world - origin
        direction = direction / direction.norm(dim=-1, keepdim=True)
        pts = inverse_sphere_points(origin.unsqueeze(-2).expand(n, p, s, 3), direction.unsqueeze(-2).expand(n, p, s, 3),
                                    -di)
        z_shape, z_app = bg_codes
        feat, sigma_raw = self.bg_nerf(pts.reshape(n, p * s, 4), None, None, z_shape.to(origin), z_app.to(origin),
                                       (*_dividable(p), s))
        weights, _ = volume_weights(F.relu(sigma_raw.reshape(n, p, s)), di, None, 1e10)
        return torch.sum(weights.unsqueeze(-1) * feat.reshape(n, p, s, -1), dim=-2)


class StyleNeRFGenerator(MappingWAvg, nn.Module):
    """StyleNeRF generator with the official module names and the NVlabs calling convention."""

    arch = "stylenerf"

    def __init__(self, config: StyleNeRFConfig):
        super().__init__()
        self.config = config
        self.z_dim, self.c_dim, self.w_dim = config.z_dim, config.c_dim, config.w_dim
        self.img_resolution, self.img_channels, self.num_ws = config.img_resolution, config.img_channels, config.num_ws
        self.synthesis = NeRFSynthesisNetwork(config)
        self.mapping = MappingNetwork(config)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, *, camera: NeRFCamera | None = None,
                bg_codes: tuple[torch.Tensor, torch.Tensor] | None = None, noise_mode: str = "const") -> torch.Tensor:
        """z [N, z_dim] (+ c) -> img [N, C, H, W] seen from `camera`; see `NeRFSynthesisNetwork.render`."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, camera=camera, bg_codes=bg_codes, noise_mode=noise_mode)

    # ---- loading ---------------------------------------------------------------------------
    @classmethod
    def from_nvlabs(cls, init_kwargs: Mapping, state_dict: Mapping[str, torch.Tensor]) -> "StyleNeRFGenerator":
        """Build from an official `Generator`'s constructor kwargs and `state_dict()` (CPU, fp32, eval).

        Official keys map one to one onto ours; every key and shape is checked (CheckpointError).
        A snapshot taken before the progressive curriculum finished (`synthesis.alpha` != 1) is refused.
        """
        config = StyleNeRFConfig.from_nvlabs_kwargs(init_kwargs)
        return cls.from_state_dict(state_dict, config)

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, torch.Tensor], config: StyleNeRFConfig) -> "StyleNeRFGenerator":
        with torch.device("meta"):
            G = cls(config)
        check_weights_fit({k: tuple(v.shape) for k, v in G.state_dict().items()}, state_dict, "StyleNeRF")
        alpha = float(state_dict["synthesis.alpha"])
        if alpha != 1:
            raise CheckpointError(f"this StyleNeRF snapshot has synthesis.alpha = {alpha:g} (taken before the "
                                  "progressive-growing curriculum finished, or trained without it); only finished "
                                  "snapshots (alpha = 1) are supported.")
        tensors = {}
        for k, v in state_dict.items():
            if not torch.is_floating_point(v):
                raise CheckpointError(f"tensor {k} has dtype {v.dtype}; expected floating point weights.")
            tensors[k] = v.detach().to(device="cpu", dtype=torch.float32).clone().contiguous()
        G.load_state_dict(tensors, strict=True, assign=True)
        return G.eval().requires_grad_(False)
