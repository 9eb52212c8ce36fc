"""StyleGAN3 generator, configs T and R (Karras et al., "Alias-Free Generative Adversarial Networks", 2021).

Reproduces NVlabs/stylegan3@c233a919a6faee6e36a316ddd4eddababad1adf9
`training/networks_stylegan3.py: Generator` on the same weights: a mapping MLP, a Fourier-feature
input whose frequencies are rotated/translated per sample (and by the user transform in the
buffer `synthesis.input.transform`), then 15 layers of modulated convolution followed by the
alias-free nonlinearity (`filtered_lrelu`: up-sample, leaky ReLU, down-sample with
Kaiser-windowed low-pass filters; radially symmetric jinc filters for config R). Cutoffs,
stopbands, sampling rates and margins follow the official geometric schedule (`layer_schedule`).
Submodules carry the official names, so `state_dict()` keys equal those of an official `G_ema`.
Calling convention is NVlabs': `G.mapping(z, c)` -> ws [N, num_ws, w_dim],
`G.synthesis(ws)` -> img [N, C, H, W], `G(z, c)`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import torch
from torch import nn

from custom_ops import conv2d_resample, filtered_lrelu
from shared.archs.layers import FullyConnectedLayer, MappingNetwork, MappingWAvg, check_weights_fit
from shared.errors import CheckpointError

__all__ = ["InputSpec", "LayerSpec", "StyleGAN3Config", "StyleGAN3Generator", "config_from_state_dict",
           "design_lowpass_filter", "input_transform_matrix", "layer_filters", "layer_schedule",
           "set_input_transform"]


@dataclass(frozen=True)
class StyleGAN3Config:
    """Every constructor argument of the official Generator that changes shapes or numbers."""
    z_dim: int = 512                      # input latent size
    c_dim: int = 0                        # class-label size, 0 = unconditional
    w_dim: int = 512                      # intermediate latent size
    img_resolution: int = 1024            # output size
    img_channels: int = 3                 # output channels
    mapping_layers: int = 2               # mapping MLP depth (official mapping_kwargs.num_layers)
    mapping_lr: float = 0.01              # mapping learning-rate multiplier (scales weights at run time)
    channel_base: int = 32768             # channels = min(channel_base / 2 / cutoff, channel_max)
    channel_max: int = 512
    num_layers: int = 14                  # layers excluding the Fourier input and ToRGB
    num_critical: int = 2                 # critically sampled layers at the end
    first_cutoff: float = 2.0             # f_c of the first layer
    first_stopband: float = 2 ** 2.1      # minimum stopband f_t of the first layer
    last_stopband_rel: float = 2 ** 0.3   # minimum stopband of the last layer relative to its cutoff
    margin_size: int = 10                 # extra pixels around the image in the intermediate layers
    output_scale: float = 0.25            # the image is multiplied by this at the end
    num_fp16_res: int = 4                 # layers run in fp16 when synthesis(..., fp16=True) on CUDA
    conv_clamp: float | None = 256        # clamp activations to [-X, X], None = off
    conv_kernel: int = 3                  # 3 for config T, 1 for config R (ToRGB is always 1)
    use_radial_filters: bool = False      # radially symmetric down-sampling filters (config R)
    filter_size: int = 6                  # low-pass taps per unit of the lower sampling rate
    lrelu_upsampling: int = 2             # oversampling factor around the leaky ReLU
    magnitude_ema_beta: float = 0.999     # training only: decay of the input-magnitude average

    def __post_init__(self):
        if self.num_layers <= self.num_critical or self.num_critical < 0:
            raise ValueError(f"num_layers ({self.num_layers}) must exceed num_critical ({self.num_critical})")
        if self.img_resolution < 4 or self.conv_kernel < 1 or self.filter_size < 1 or self.lrelu_upsampling < 1:
            raise ValueError("img_resolution, conv_kernel, filter_size and lrelu_upsampling must be positive")

    @property
    def num_ws(self) -> int:
        return self.num_layers + 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "StyleGAN3Config":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown StyleGAN3 config fields: {', '.join(unknown)}")
        return cls(**dict(d))

    def to_nvlabs_kwargs(self) -> dict:
        """The official `Generator(**kwargs)` constructor arguments for this config."""
        d = self.to_dict()
        mapping = {"num_layers": d.pop("mapping_layers"), "lr_multiplier": d.pop("mapping_lr")}
        return {**d, "mapping_kwargs": mapping}

    @classmethod
    def from_nvlabs_kwargs(cls, init_kwargs: Mapping) -> "StyleGAN3Config":
        """Config from official constructor kwargs (a pickle's `init_kwargs`, dict subclasses allowed).

        Raises CheckpointError naming any argument that is missing or that we do not implement.
        """
        kw = dict(init_kwargs)
        mapping = dict(kw.pop("mapping_kwargs", None) or {})
        class_name = kw.pop("class_name", None)
        if class_name is not None and not str(class_name).endswith("networks_stylegan3.Generator"):
            raise CheckpointError(f"expected a StyleGAN3 generator, got class {class_name}.")
        missing = [k for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels") if k not in kw]
        if missing:
            raise CheckpointError(f"StyleGAN3 constructor arguments are missing: {', '.join(missing)}.")
        for k in _HARMLESS_MAPPING_KWARGS:
            mapping.pop(k, None)
        out = {"mapping_layers": int(mapping.pop("num_layers", 2)),
               "mapping_lr": float(mapping.pop("lr_multiplier", 0.01))}
        unknown = sorted(set(kw) - set(_CONFIG_TYPES)) + [f"mapping_kwargs.{k}" for k in sorted(mapping)]
        if unknown:
            raise CheckpointError("this StyleGAN3 checkpoint uses constructor arguments the hub does not "
                                  f"implement: {', '.join(unknown)}.")
        for k, v in kw.items():
            if v is None and k != "conv_clamp":
                raise CheckpointError(f"StyleGAN3 constructor argument {k} is None; expected a number.")
            out[k] = None if v is None else _CONFIG_TYPES[k](v)
        return cls(**out)


_CONFIG_TYPES = {f.name: {"int": int, "float": float, "bool": bool}.get(str(f.type).split(" ")[0], float)
                 for f in fields(StyleGAN3Config) if f.name not in ("mapping_layers", "mapping_lr")}
_HARMLESS_MAPPING_KWARGS = ("w_avg_beta", "freeze_layers", "freeze_embed")  # training-time only


# ---- schedule and filters (pure numpy, float64 as the official code) --------------------------
@dataclass(frozen=True)
class InputSpec:
    """The Fourier-feature input: channels, size [px], sampling rate and bandwidth."""
    channels: int
    size: int
    sampling_rate: float
    bandwidth: float


@dataclass(frozen=True)
class LayerSpec:
    """One synthesis layer of the official schedule."""
    name: str                             # official name L{idx}_{out_size}_{out_channels}
    is_torgb: bool
    is_critically_sampled: bool
    use_fp16: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    tmp_sampling_rate: int                # rate at which the leaky ReLU runs
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up_factor: int
    down_factor: int
    up_taps: int                          # 1 = no filter (the official None buffer)
    down_taps: int
    down_radial: bool
    padding: tuple[int, int, int, int]    # (x0, x1, y0, y1) for filtered_lrelu


def layer_schedule(cfg: StyleGAN3Config) -> tuple[InputSpec, list[LayerSpec]]:
    """Cutoffs, stopbands, sampling rates, sizes and channels of every layer (paper Sec. 3.2, App. F)."""
    n, res = cfg.num_layers, cfg.img_resolution
    last_cutoff = res / 2
    last_stopband = last_cutoff * cfg.last_stopband_rel
    exponents = np.minimum(np.arange(n + 1) / (n - cfg.num_critical), 1)
    cutoffs = cfg.first_cutoff * (last_cutoff / cfg.first_cutoff) ** exponents
    stopbands = cfg.first_stopband * (last_stopband / cfg.first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, res))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + cfg.margin_size * 2
    sizes[-2:] = res
    channels = np.rint(np.minimum((cfg.channel_base / 2) / cutoffs, cfg.channel_max))
    channels[-1] = cfg.img_channels

    specs = []
    for i in range(n + 1):
        p = max(i - 1, 0)
        torgb = i == n
        k = 1 if torgb else cfg.conv_kernel
        r_in, r_out = int(rates[p]), int(rates[i])
        tmp = max(r_in, r_out) * (1 if torgb else cfg.lrelu_upsampling)
        up, down = int(np.rint(tmp / r_in)), int(np.rint(tmp / r_out))
        assert r_in * up == tmp and r_out * down == tmp, "sampling rates must divide the ReLU rate"
        up_taps = cfg.filter_size * up if up > 1 and not torgb else 1
        down_taps = cfg.filter_size * down if down > 1 and not torgb else 1
        s_in, s_out = int(sizes[p]), int(sizes[i])
        # Padding so that the output grid lands on the symmetric sample positions (paper App. C.3).
        total = (s_out - 1) * down + 1 - (s_in + k - 1) * up + up_taps + down_taps - 2
        lo = (total + up) // 2
        critical = i >= n - cfg.num_critical
        specs.append(LayerSpec(
            name=f"L{i}_{s_out}_{int(channels[i])}", is_torgb=torgb, is_critically_sampled=critical,
            use_fp16=bool(rates[i] * 2 ** cfg.num_fp16_res > res),
            in_channels=int(channels[p]), out_channels=int(channels[i]), in_size=s_in, out_size=s_out,
            in_sampling_rate=r_in, out_sampling_rate=r_out, tmp_sampling_rate=tmp,
            in_cutoff=float(cutoffs[p]), out_cutoff=float(cutoffs[i]),
            in_half_width=float(half_widths[p]), out_half_width=float(half_widths[i]),
            conv_kernel=k, up_factor=up, down_factor=down, up_taps=up_taps, down_taps=down_taps,
            down_radial=cfg.use_radial_filters and not critical, padding=(lo, total - lo, lo, total - lo)))
    inp = InputSpec(channels=int(channels[0]), size=int(sizes[0]), sampling_rate=float(rates[0]),
                    bandwidth=float(cutoffs[0]))
    return inp, specs


def _kaiser_beta(numtaps: int, width: float) -> float:
    """Kaiser's empirical beta for a window of `numtaps` and transition `width` (fraction of Nyquist)."""
    atten = 2.285 * (numtaps - 1) * np.pi * width + 7.95  # stopband attenuation in dB
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> torch.Tensor | None:
    """Kaiser-windowed low-pass FIR filter, as `scipy.signal.firwin(numtaps, cutoff, width=, fs=)`.

    Args:
        numtaps: filter length; 1 returns None (identity, absent from the official state_dict).
        cutoff: cutoff frequency, in the units of `fs`.
        width: transition band width (twice the half-width), in the units of `fs`.
        fs: sampling rate.
        radial: 2-D radially symmetric filter (jinc windowed by the outer product of Kaiser windows).

    Returns:
        float32 [numtaps] (separable) or [numtaps, numtaps] (radial), summing to one; or None.
    """
    if numtaps < 1:
        raise ValueError(f"numtaps must be >= 1, got {numtaps}")
    if numtaps == 1:
        return None
    window = np.kaiser(numtaps, _kaiser_beta(numtaps, width / (fs / 2)))
    if not radial:
        rel = cutoff / (fs / 2)
        f = rel * np.sinc(rel * (np.arange(numtaps) - (numtaps - 1) / 2)) * window
        return torch.as_tensor(f / f.sum(), dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    j1 = torch.special.bessel_j1(torch.from_numpy((2 * cutoff) * (np.pi * r))).numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(r > 0, j1 / (np.pi * r), cutoff)  # the r -> 0 limit of J1(2 pi c r) / (pi r) is c
    f = f * np.outer(window, window)
    return torch.as_tensor(f / np.sum(f), dtype=torch.float32)


def layer_filters(spec: LayerSpec) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The (up, down) filters of a layer: the input cutoff before the ReLU, the output cutoff after it."""
    up = design_lowpass_filter(spec.up_taps, spec.in_cutoff, spec.in_half_width * 2, spec.tmp_sampling_rate)
    down = design_lowpass_filter(spec.down_taps, spec.out_cutoff, spec.out_half_width * 2, spec.tmp_sampling_rate,
                                 radial=spec.down_radial)
    return up, down


# ---- user transform ----------------------------------------------------------------------------
def input_transform_matrix(translate: tuple[float, float] = (0.0, 0.0), angle: float = 0.0) -> torch.Tensor:
    """The 3x3 matrix that `synthesis.input.transform` must hold to show the image translated by
    `translate` (in image units, where the image spans [-0.5, 0.5]) and rotated by `angle` degrees:
    the inverse of the official gen_images.py `make_transform(translate, angle)`, in float64 then
    rounded to float32 as gen_images.py does. Returns float32 [3, 3]."""
    a = angle / 360.0 * np.pi * 2
    m = np.eye(3)
    m[0] = [np.cos(a), np.sin(a), translate[0]]
    m[1] = [-np.sin(a), np.cos(a), translate[1]]
    return torch.from_numpy(np.linalg.inv(m)).to(torch.float32)


@torch.no_grad()
def set_input_transform(G: "StyleGAN3Generator", translate: tuple[float, float] = (0.0, 0.0),
                        angle: float = 0.0) -> torch.Tensor:
    """Translate/rotate what `G` synthesises by writing `G.synthesis.input.transform` in place.

    `translate=(0, 0), angle=0` restores the identity. The transform applies to every later call
    (it is a buffer, saved with the weights). Returns the matrix written, float32 [3, 3].
    """
    buf = G.synthesis.input.transform
    m = input_transform_matrix(translate, angle)
    buf.copy_(m.to(device=buf.device, dtype=buf.dtype))
    return m


# ---- modules -----------------------------------------------------------------------------------
class SynthesisInput(nn.Module):
    """Fourier features of fixed random frequencies, rotated/translated by an affine of w[0]."""

    def __init__(self, w_dim: int, spec: InputSpec):
        super().__init__()
        self.channels, self.size = spec.channels, spec.size
        self.sampling_rate, self.bandwidth = spec.sampling_rate, spec.bandwidth
        self.weight = nn.Parameter(torch.empty(spec.channels, spec.channels))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0], init="stylegan3")
        self.register_buffer("transform", torch.eye(3, 3))  # user's inverse transform of the image
        self.register_buffer("freqs", torch.zeros(spec.channels, 2))
        self.register_buffer("phases", torch.zeros(spec.channels))

    def init_random_(self, generator: torch.Generator | None = None) -> None:
        with torch.no_grad():
            freqs = torch.randn([self.channels, 2], generator=generator)  # uniform on the disc of radius bandwidth
            radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
            freqs /= radii * radii.square().exp().pow(0.25)
            self.freqs.copy_(freqs * self.bandwidth)
            self.phases.copy_(torch.rand([self.channels], generator=generator) - 0.5)
            self.weight.copy_(torch.randn(self.weight.shape, generator=generator))
            self.transform.copy_(torch.eye(3))
        self.affine.init_random_(generator)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        n = w.shape[0]
        t = self.affine(w)  # (cos, sin, tx, ty), normalised so that (cos, sin) is a rotation
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        zero, one = torch.zeros_like(t[:, 0]), torch.ones_like(t[:, 0])
        rot = torch.stack([t[:, 0], -t[:, 1], zero, t[:, 1], t[:, 0], zero, zero, zero, one], 1).view(n, 3, 3)
        shift = torch.stack([one, zero, -t[:, 2], zero, one, -t[:, 3], zero, zero, one], 1).view(n, 3, 3)
        m = rot @ shift @ self.transform.unsqueeze(0)  # [N, 3, 3]: learned rotation, shift, then the user's
        freqs = self.freqs.unsqueeze(0)  # [1, C, 2]
        phases = self.phases.unsqueeze(0) + (freqs @ m[:, :2, 2:]).squeeze(2)  # [N, C]
        freqs = freqs @ m[:, :2, :2]  # [N, C, 2]
        # Fade out frequencies that the user transform pushed beyond the band (no aliasing).
        amp = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grid = nn.functional.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)
        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N, H, W, C]
        x = torch.sin((x + phases.unsqueeze(1).unsqueeze(2)) * (np.pi * 2)) * amp.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)  # [N, C, H, W]


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, demodulate: bool,
                     padding: int, input_gain: torch.Tensor | None) -> torch.Tensor:
    """Per-sample modulated convolution as one grouped convolution.

    x [N, I, H, W], weight [O, I, k, k], styles [N, I], input_gain [] or None -> [N, O, H', W'].
    With demodulation the weight and styles are first brought to unit RMS (over the whole batch
    for the styles, as the official code does; it cancels out up to the 1e-8 epsilon).
    """
    n, i = x.shape[0], weight.shape[1]
    if demodulate:
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    w = weight.unsqueeze(0) * styles.unsqueeze(1).unsqueeze(3).unsqueeze(4)  # [N, O, I, k, k]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().unsqueeze(2).unsqueeze(3).unsqueeze(4)
    if input_gain is not None:
        w = w * input_gain.expand(n, i).unsqueeze(1).unsqueeze(3).unsqueeze(4)
    x = x.reshape(1, -1, *x.shape[2:])
    x = conv2d_resample(x, w.reshape(-1, i, *w.shape[3:]).to(x.dtype), padding=padding, groups=n)
    return x.reshape(n, -1, *x.shape[2:])


class SynthesisLayer(nn.Module):
    """Modulated conv, then bias + filtered leaky ReLU (up, lrelu, down) + clamp; ToRGB when last."""

    def __init__(self, w_dim: int, spec: LayerSpec, cfg: StyleGAN3Config):
        super().__init__()
        self.spec, self.conv_clamp = spec, cfg.conv_clamp
        self.affine = FullyConnectedLayer(w_dim, spec.in_channels, bias_init=1, init="stylegan3")
        self.weight = nn.Parameter(torch.empty(spec.out_channels, spec.in_channels, spec.conv_kernel, spec.conv_kernel))
        self.bias = nn.Parameter(torch.empty(spec.out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))
        up_filter, down_filter = layer_filters(spec)
        self.register_buffer("up_filter", up_filter)  # None (absent from state_dict) when 1 tap
        self.register_buffer("down_filter", down_filter)

    def init_random_(self, generator: torch.Generator | None = None) -> None:
        self.affine.init_random_(generator)
        with torch.no_grad():
            self.weight.copy_(torch.randn(self.weight.shape, generator=generator))
            self.bias.zero_()
            self.magnitude_ema.fill_(1.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        s = self.spec
        styles = self.affine(w)  # [N, in_channels]
        if s.is_torgb:
            styles = styles * (1 / np.sqrt(s.in_channels * s.conv_kernel ** 2))
        x = modulated_conv2d(x.to(dtype), self.weight, styles, demodulate=not s.is_torgb,
                             padding=s.conv_kernel - 1, input_gain=self.magnitude_ema.rsqrt())
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias.to(x.dtype), up=s.up_factor,
                              down=s.down_factor, padding=s.padding, gain=1.0 if s.is_torgb else math.sqrt(2),
                              slope=1.0 if s.is_torgb else 0.2, clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        s = self.spec
        return (f"{s.in_channels}->{s.out_channels}, size {s.in_size}->{s.out_size}, "
                f"rate {s.in_sampling_rate}->{s.out_sampling_rate}, cutoff {s.in_cutoff:g}->{s.out_cutoff:g}, "
                f"up {s.up_factor}, down {s.down_factor}")


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> img [N, img_channels, H, W]: Fourier input, then the scheduled layers."""

    def __init__(self, cfg: StyleGAN3Config):
        super().__init__()
        self.w_dim, self.num_ws = cfg.w_dim, cfg.num_ws
        self.img_resolution, self.img_channels = cfg.img_resolution, cfg.img_channels
        self.output_scale = cfg.output_scale
        inp, specs = layer_schedule(cfg)
        self.input = SynthesisInput(cfg.w_dim, inp)
        self.layer_names = [s.name for s in specs]
        for s in specs:
            setattr(self, s.name, SynthesisLayer(cfg.w_dim, s, cfg))

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", *, fp16: bool = False,
                force_fp32: bool = False, **ignored) -> torch.Tensor:
        """Synthesise images from W+.

        Args:
            ws: [N, num_ws, w_dim].
            noise_mode: 'const', 'random' or 'none'; accepted for the common interface (StyleGAN3 has no noise).
            fp16: run the layers the official code marks fp16 in half precision (CUDA only).
            force_fp32: the official switch; overrides `fp16`. Other keyword arguments
                (`update_emas`, ...) are training-only and ignored.

        Returns:
            img [N, img_channels, img_resolution, img_resolution], float32, about [-1, 1].
        """
        if noise_mode not in ("const", "random", "none"):
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        half = fp16 and not force_fp32 and ws.device.type == "cuda"
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            layer = getattr(self, name)
            x = layer(x, w, dtype=torch.float16 if half and layer.spec.use_fp16 else torch.float32)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)


class StyleGAN3Generator(MappingWAvg, nn.Module):
    """StyleGAN3 generator (configs T and R) with the official module names and calling convention."""

    arch = "stylegan3"

    def __init__(self, config: StyleGAN3Config, *, generator: torch.Generator | None = None):
        """Builds the network; weights are initialised as the official code does, drawing from
        `generator` (or torch's default generator when None). Build under `torch.device('meta')`
        to get shapes only."""
        super().__init__()
        self.config = config
        self.z_dim, self.c_dim, self.w_dim = config.z_dim, config.c_dim, config.w_dim
        self.img_resolution, self.img_channels, self.num_ws = config.img_resolution, config.img_channels, config.num_ws
        self.synthesis = SynthesisNetwork(config)
        self.mapping = MappingNetwork(config, init="stylegan3")
        if not any(p.is_meta for p in self.parameters()):
            self.init_random_(generator)

    @torch.no_grad()
    def init_random_(self, generator: torch.Generator | None = None) -> "StyleGAN3Generator":
        """Official initialisation: N(0, 1) weights, zero biases, affine biases 1, identity transform."""
        for m in self.modules():
            if isinstance(m, (FullyConnectedLayer, SynthesisInput, SynthesisLayer)):
                m.init_random_(generator)
        self.mapping.w_avg.zero_()
        return self

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, noise_mode: str = "const", **synthesis_kwargs) -> torch.Tensor:
        """z [N, z_dim] (+ c [N, c_dim]) -> img [N, img_channels, H, W]; see `SynthesisNetwork.forward`."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)

    # ---- loading ---------------------------------------------------------------------------
    @classmethod
    def from_nvlabs(cls, init_kwargs: Mapping, state_dict: Mapping[str, torch.Tensor]) -> "StyleGAN3Generator":
        """Build from an official `Generator`'s constructor kwargs and its `state_dict()` (CPU, fp32, eval)."""
        return cls.from_state_dict(state_dict, StyleGAN3Config.from_nvlabs_kwargs(init_kwargs))

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, torch.Tensor],
                        config: StyleGAN3Config | None = None) -> "StyleGAN3Generator":
        """Build from official-named tensors; the config is inferred from them when not given.

        Every key and shape must match the config exactly (CheckpointError otherwise). The stored
        filters, `w_avg`, `magnitude_ema` and `transform` buffers are used as stored.
        """
        config = config_from_state_dict(state_dict) if config is None else config
        with torch.device("meta"):
            G = cls(config)
        expected = {k: tuple(v.shape) for k, v in G.state_dict().items()}
        check_weights_fit(expected, state_dict, "StyleGAN3")
        tensors = {}
        for k, v in state_dict.items():
            if not torch.is_floating_point(v):
                raise CheckpointError(f"tensor {k} has dtype {v.dtype}; expected floating point weights.")
            tensors[k] = v.detach().to(device="cpu", dtype=torch.float32).clone().contiguous()
        G.load_state_dict(tensors, strict=True, assign=True)
        return G.eval()


# ---- config inference --------------------------------------------------------------------------
_LAYER_RE = re.compile(r"^synthesis\.L(\d+)_(\d+)_(\d+)\.weight$")


def config_from_state_dict(sd: Mapping[str, torch.Tensor]) -> StyleGAN3Config:
    """Infer the config of an official StyleGAN3 generator from its tensor names and shapes alone.

    Read from the tensors: z/c/w dims, mapping depth, resolution, channels, layer count, conv
    kernel, radial filters, filter size, margin and (from the channel schedule) channel_base/max.
    Assumed official defaults: cutoff/stopband schedule, num_critical, lrelu_upsampling,
    output_scale, conv_clamp and mapping lr. The stored filters are then compared with the filters
    that config designs, so a checkpoint with other schedule hyperparameters is refused
    (CheckpointError) rather than run wrongly; pass its constructor kwargs instead.
    """
    layers = sorted((int(m[1]), int(m[2]), int(m[3])) for k in sd if (m := _LAYER_RE.match(k)))
    need = ("mapping.w_avg", "mapping.fc0.weight", "synthesis.input.weight")
    if not layers or any(k not in sd for k in need) or [i for i, _, _ in layers] != list(range(len(layers))):
        raise CheckpointError("these tensors are not an official StyleGAN3 generator (G_ema) state dict.")
    w_dim = int(sd["mapping.w_avg"].shape[0])
    c_dim = int(sd["mapping.embed.weight"].shape[1]) if "mapping.embed.weight" in sd else 0
    n_map = sum(1 for k in sd if re.fullmatch(r"mapping\.fc\d+\.weight", k))
    first = f"synthesis.L0_{layers[0][1]}_{layers[0][2]}"
    down0 = sd.get(f"{first}.down_filter")
    base = StyleGAN3Config(
        z_dim=int(sd["mapping.fc0.weight"].shape[1]) - (w_dim if c_dim else 0), c_dim=c_dim, w_dim=w_dim,
        img_resolution=layers[-1][1], img_channels=layers[-1][2], mapping_layers=n_map,
        num_layers=len(layers) - 1, conv_kernel=int(sd[f"{first}.weight"].shape[-1]),
        use_radial_filters=any(v.ndim == 2 for k, v in sd.items() if k.endswith(".down_filter")),
        filter_size=int(down0.shape[0]) // 2 if down0 is not None else 6)
    inp, _ = layer_schedule(base)
    margin = (layers[0][1] - inp.sampling_rate) / 2
    if margin < 0 or margin != int(margin):
        raise CheckpointError(f"cannot infer the StyleGAN3 margin from layer {first}; pass the constructor kwargs.")
    channels = [ch for _, _, ch in layers[:-1]]
    cfg = replace(base, margin_size=int(margin), channel_max=max(channels),
                  channel_base=_infer_channel_base(base, channels))
    check_weights_fit({k: tuple(v.shape) for k, v in _meta_state(cfg).items()}, sd, "StyleGAN3")
    _, specs = layer_schedule(cfg)
    for s in specs:
        for key, designed in zip((f"synthesis.{s.name}.up_filter", f"synthesis.{s.name}.down_filter"),
                                 layer_filters(s)):
            if designed is not None and (sd[key].float() - designed).abs().max() > 1e-6:
                raise CheckpointError(f"the filters of {s.name} do not follow the default StyleGAN3 schedule; "
                                      "pass the constructor kwargs.")
    return cfg


def _meta_state(cfg: StyleGAN3Config) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return StyleGAN3Generator(cfg).state_dict()


def _infer_channel_base(base: StyleGAN3Config, channels: list[int]) -> int:
    """channel_base such that rint(min(channel_base / 2 / cutoff_i, max)) reproduces `channels`."""
    cmax = max(channels)
    n = base.num_layers
    exps = np.minimum(np.arange(n + 1) / (n - base.num_critical), 1)
    cutoffs = base.first_cutoff * (base.img_resolution / 2 / base.first_cutoff) ** exps
    lo, hi = 0.0, math.inf
    for ch, f in zip(channels, cutoffs):
        lo = max(lo, 2 * f * (ch - 0.5))  # saturated layers only bound it from below
        if ch < cmax:
            hi = min(hi, 2 * f * (ch + 0.5))
    # Prefer the official default, then powers of two, then any integer in the feasible interval.
    candidates = [32768] + [2 ** k for k in range(4, 24)]
    candidates += list(range(math.ceil(lo), math.floor(min(hi, lo + 4096)) + 1))
    for cb in candidates:
        if lo <= cb <= hi and np.array_equal(np.rint(np.minimum(cb / 2 / cutoffs[:-1], cmax)), channels):
            return int(cb)
    raise CheckpointError("cannot infer channel_base from the StyleGAN3 layer widths; pass the constructor kwargs.")
