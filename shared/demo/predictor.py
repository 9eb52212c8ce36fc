"""The demo world's judge: a small CNN that reads every portrait factor and the part map, its
architecture and loading (training, evaluation and the command line: `training.demo.predictor`).

Own construction (no paper reproduced): a strided convolutional encoder (ResNet-style stages,
He et al. 2016) and a feature-pyramid decoder (Lin et al. 2017, FPN) that upsamples back to
64x64 part logits over `PART_NAMES`, with the input image as the last skip connection so part
edges are placed to the pixel. The factor heads read two things: the flattened 4x4 encoder
output, and statistics pooled over each predicted part (the decoder's features averaged under
the part's soft mask, and the mask's area, centroid and moments), which carry the small
details a global vector misses: iris colour, brow thickness, the bend of a smile.

Continuous factors are regressed in [-1, 1] (their documented range mapped linearly);
`background_hue` is circular (hue 0 and 1 render the same colour), so it is regressed as the
point (cos, sin) of its angle. Categorical factors are classified; `glasses_color` is only
trained and scored where glasses are drawn (without glasses it is invisible).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import Tensor, nn

from shared.portraits import FACTORS, PART_NAMES, Factors

__all__ = ["CATEGORICAL", "CIRCULAR", "CONTINUOUS", "DEFAULT_PATH", "FORMAT", "MASKED", "RESOLUTION", "Prediction",
           "Predictor", "PredictorConfig", "PredictorFeatures", "RawOutputs", "decode_regression", "encode_regression",
           "load_predictor"]

DEFAULT_PATH = Path(__file__).resolve().parent / "bundle" / "predictor.safetensors"
FORMAT = "shared.demo.predictor/1"

RESOLUTION = 64
CIRCULAR = ("background_hue",)          # continuous factors defined modulo their range
MASKED = {"glasses_color": ("glasses", 0)}  # factor -> (gate factor, code where it is hidden)
CONTINUOUS = tuple(s for s in FACTORS if s.kind == "continuous")
CATEGORICAL = tuple(s for s in FACTORS if s.kind == "categorical")


@dataclass(frozen=True)
class PredictorConfig:
    enc_channels: tuple[int, ...] = (32, 64, 128, 192)  # stages at 32, 16, 8, 4 px
    dec_channels: tuple[int, ...] = (64, 48, 32, 16)    # decoder at 8, 16, 32, 64 px
    global_dim: int = 256                               # flattened 4x4 encoder features
    part_dim: int = 128                                 # embedding of the part-pooled stats
    feature_dim: int = 256                              # penultimate layer, feeds the heads
    refine_channels: int = 0                            # residual 3x3 block at 64 px (0: none)


@dataclass(frozen=True)
class Prediction:
    """factors: predicted Factors (continuous in their units, categorical as codes), [N] each;
    probs: softmax [N, K] per categorical factor; parts [N, 64, 64] int64 over PART_NAMES;
    features [N, feature_dim] float32 (penultimate layer, the demo world's perceptual space)."""
    factors: Factors
    probs: dict[str, Tensor]
    parts: Tensor
    features: Tensor


@dataclass(frozen=True)
class RawOutputs:
    reg: Tensor                   # [N, n_reg] regression targets' space
    logits: dict[str, Tensor]     # [N, K] per categorical factor
    part_logits: Tensor           # [N, P, 64, 64]
    features: Tensor              # [N, feature_dim]


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.SiLU(inplace=True))


class _Stage(nn.Module):
    """Strided conv, then a residual 3x3 conv: [N, cin, H, W] -> [N, cout, H/2, W/2]."""

    def __init__(self, cin: int, cout: int, first: bool) -> None:
        super().__init__()
        self.down = _conv_bn(cin, cout, 4 if first else 3, 2)
        self.conv = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        x = self.down(x)
        return F.silu(x + self.conv(x))


_N_MOMENTS = 7


def _part_stats(probs: Tensor, feats: Tensor) -> Tensor:
    """Per predicted part: the probability-weighted mean of feats, and shape moments of the
    part's mask (area, centroid, second moments, and E[dy dx^2], which is the sign and size of
    an arc's bend, e.g. a smile). probs [N, P, H, W], feats [N, C, H, W] -> [N, P * (C + 7)]."""
    n, p, h, w = probs.shape
    wgt = probs.reshape(n, p, h * w)
    mass = wgt.sum(-1, keepdim=True) + 1e-3                            # [N, P, 1]
    mean = torch.einsum("nkq,ncq->nkc", wgt, feats.reshape(n, -1, h * w)) / mass
    # coordinates in units of 1/8 of the half image, about a mouth's half width, so that the
    # moments of small parts are O(1) before their batch norm
    ys, xs = torch.meshgrid(torch.linspace(8, -8, h, device=probs.device),
                            torch.linspace(-8, 8, w, device=probs.device), indexing="ij")
    xy = torch.stack([xs.reshape(-1), ys.reshape(-1)])                 # [2, HW]
    c = torch.einsum("nkq,dq->nkd", wgt, xy) / mass                    # [N, P, 2] centroid
    dx, dy = xy[0] - c[..., :1], xy[1] - c[..., 1:]                    # [N, P, HW]
    mom = torch.stack([(wgt * t).sum(-1) for t in (dx * dx, dy * dy, dx * dy, dy * dx * dx)],
                      -1) / mass                                       # [N, P, 4]
    shape = torch.cat([mass / (h * w), c, mom], -1)                    # [N, P, 7]
    return torch.cat([mean, shape], -1).flatten(1)


def _reg_width() -> int:
    return sum(2 if s.name in CIRCULAR else 1 for s in CONTINUOUS)


class Predictor(nn.Module):
    """Factor and part predictor for 64x64 portraits in [-1, 1]."""

    def __init__(self, config: PredictorConfig = PredictorConfig()) -> None:
        super().__init__()
        self.config = config
        enc, dec = config.enc_channels, config.dec_channels
        if len(enc) != 4 or len(dec) != 4:
            raise ValueError("PredictorConfig needs 4 encoder and 4 decoder widths")
        self.stages = nn.ModuleList(
            _Stage(cin, cout, i == 0) for i, (cin, cout) in enumerate(zip((3,) + enc, enc)))
        self.to_global = nn.Sequential(
            _conv_bn(enc[3], 64, 1), nn.Flatten(), nn.Linear(64 * 16, config.global_dim),
            nn.LayerNorm(config.global_dim), nn.SiLU())
        part_stats = len(PART_NAMES) * (dec[3] + 3 + _N_MOMENTS)
        self.to_part = nn.Sequential(nn.BatchNorm1d(part_stats),
                                     nn.Linear(part_stats, config.part_dim), nn.SiLU())
        self.trunk = nn.Sequential(
            nn.Linear(config.global_dim + config.part_dim, config.feature_dim), nn.SiLU())
        self.reg_head = nn.Linear(config.feature_dim, _reg_width())
        self.cls_heads = nn.ModuleDict(
            {s.name: nn.Linear(config.feature_dim, len(s.categories)) for s in CATEGORICAL})
        # FPN decoder: lateral 1x1 from encoder stages 3, 2, 1, then the image itself at 64 px
        self.top = nn.Conv2d(enc[3], dec[0], 1)
        self.laterals = nn.ModuleList(
            nn.Conv2d(c, d, 1) for c, d in zip((enc[2], enc[1], enc[0]), dec[:3]))
        self.smooth = nn.ModuleList(
            _conv_bn(d, dn) for d, dn in zip(dec[:3], dec[1:3] + (dec[3],)))
        self.fuse = _conv_bn(dec[3] + 3, dec[3])
        self.refine = None
        if config.refine_channels > 0:
            # zero-initialised output: a model grown from saved weights starts where they were
            self.refine = nn.Sequential(_conv_bn(dec[3] + 3, config.refine_channels),
                                        nn.Conv2d(config.refine_channels, dec[3], 3, 1, 1))
            nn.init.zeros_(self.refine[1].weight)
            nn.init.zeros_(self.refine[1].bias)
        self.part_head = nn.Conv2d(dec[3], len(PART_NAMES), 1)

    def forward(self, img: Tensor) -> RawOutputs:
        """img [N, 3, 64, 64] in [-1, 1] -> raw outputs (regression space, logits)."""
        if img.ndim != 4 or tuple(img.shape[1:]) != (3, RESOLUTION, RESOLUTION):
            raise ValueError(f"The predictor reads [N, 3, 64, 64] images, got {tuple(img.shape)}")
        img = img.contiguous(memory_format=torch.channels_last)  # faster oneDNN convs on CPU
        skips, x = [], img
        for stage in self.stages:
            x = stage(x)
            skips.append(x)                                      # 32, 16, 8, 4 px
        y = self.top(x)                                          # [N, dec0, 4, 4]
        for lateral, smooth, skip in zip(self.laterals, self.smooth, skips[2::-1]):
            y = F.interpolate(y, scale_factor=2.0, mode="nearest")
            y = smooth(y + lateral(skip))                        # [N, dec_i+1, 2H, 2W]
        y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
        y = torch.cat([self.fuse(torch.cat([y, img], dim=1)), img], dim=1)  # [N, dec3+3, 64, 64]
        if self.refine is not None:
            y = torch.cat([y[:, :-3] + self.refine(y), img], dim=1)
        part_logits = self.part_head(y[:, :-3])
        stats = _part_stats(part_logits.detach().softmax(1), y)
        features = self.trunk(torch.cat([self.to_global(x), self.to_part(stats)], dim=1))
        logits = {name: head(features) for name, head in self.cls_heads.items()}
        return RawOutputs(self.reg_head(features), logits, part_logits, features)

    @torch.inference_mode()
    def predict(self, img: Tensor) -> Prediction:
        """Read factors, parts and features of images [N, 3, 64, 64] in [-1, 1] (any device
        the model is on). Returns a Prediction on that device; the model is left as it was."""
        was_training = self.training
        self.eval()
        out = self(img.to(next(self.parameters()).device, torch.float32))
        self.train(was_training)
        vals = decode_regression(out.reg)
        probs = {k: v.softmax(1) for k, v in out.logits.items()}
        vals.update({k: p.argmax(1) for k, p in probs.items()})
        return Prediction(Factors(vals), probs, out.part_logits.argmax(1), out.features)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ----------------------------------------------------------------------------- targets

def encode_regression(factors: Factors) -> Tensor:
    """Continuous factors -> [N, n_reg]: [-1, 1] over the documented range, (cos, sin) for
    circular ones."""
    cols = []
    for s in CONTINUOUS:
        u = (factors[s.name].float() - s.low) / (s.high - s.low)
        if s.name in CIRCULAR:
            cols += [torch.cos(2 * math.pi * u), torch.sin(2 * math.pi * u)]
        else:
            cols.append(2 * u - 1)
    return torch.stack(cols, 1)


def decode_regression(reg: Tensor) -> dict[str, Tensor]:
    """Inverse of `encode_regression`, clamped to each factor's range: name -> [N] float32."""
    vals, j = {}, 0
    for s in CONTINUOUS:
        if s.name in CIRCULAR:
            u = torch.atan2(reg[:, j + 1], reg[:, j]).div(2 * math.pi).remainder(1.0)
            j += 2
        else:
            u = reg[:, j].clamp(-1, 1).add(1).mul(0.5)
            j += 1
        vals[s.name] = (s.low + (s.high - s.low) * u).float()
    return vals


def load_predictor(path: Path | str = DEFAULT_PATH) -> Predictor:
    """Load a saved predictor on the CPU in float32, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No predictor weights at {path}; train them with "
                                "`python -m training.demo.predictor train`.")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a predictor file (format {meta.get('format')!r}).")
        state = {k: f.get_tensor(k) for k in f.keys()}
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(meta["config"]).items()}
    model = Predictor(PredictorConfig(**cfg))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in state.items()}, strict=True)
    return model.to(memory_format=torch.channels_last).eval()


class PredictorFeatures(nn.Module):
    """The predictor's encoder as a perceptual feature extractor (the offline fallback of the
    inversion losses, `shared.inversion.losses.FeatureLoss`): img [N, 3, H, W] in [-1, 1] ->
    its four stage outputs (32, 16, 8, 4 px). Inputs of another size are resized to 64 px
    (antialiased bilinear); frozen, eval mode, gradients flow to the input."""

    def __init__(self, predictor: Predictor) -> None:
        super().__init__()
        self.stages = predictor.stages
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "PredictorFeatures":
        return super().train(False)   # batch-norm statistics stay the trained ones

    def forward(self, img: Tensor) -> list[Tensor]:
        if tuple(img.shape[-2:]) != (RESOLUTION, RESOLUTION):
            img = F.interpolate(img, size=(RESOLUTION, RESOLUTION), mode="bilinear", align_corners=False,
                                antialias=True)
        out, x = [], img
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out
