"""Losses and image metrics for inversion: LPIPS, a feature-space fallback, masked MSE, PSNR and
StyleGAN2's noise regulariser.

- LPIPS (Zhang et al., CVPR 2018; richzhang/PerceptualSimilarity, the `lpips` package 0.1.4):
  `build_lpips` makes `lpips.LPIPS(net='vgg')` without any download. Its linear heads ship in
  the wheel (`lpips/weights/v0.1/vgg.pth`); its VGG16 trunk comes from our registry record
  (`timm/vgg16.tv_in1k` model.safetensors, whose `features.*` keys equal torchvision's
  `vgg16().features`). The module is built on the meta device (the package's own constructor
  would initialise all 138M VGG16 parameters, classifier included, ~14 s on one CPU thread)
  and then takes the tensors strictly, key by key.
- The fallback perceptual loss (`FeatureLoss`) is LPIPS' "baseline" formula over any feature
  extractor: per layer, unit-normalise channels, square the difference, sum channels, average
  space, sum layers. Offline, the demo world's predictor features plug in here; with no
  extractor at all, `build_lpips(None)` keeps LPIPS' heads over a random VGG trunk
  (`pnet_rand`), still a usable, if weaker, perceptual distance. Results name the loss used.
- The noise regulariser is NVlabs' (stylegan2-ada-pytorch `projector.py`): squared
  autocorrelation at lag 1 in x and y over an average-pooled pyramid down to 8x8.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from shared.errors import CheckpointError

__all__ = ["FeatureLoss", "LPIPSLoss", "PerceptualLoss", "build_lpips", "load_vgg16_features", "masked_mse",
           "noise_regularization", "perceptual_loss", "psnr", "LPIPS_SLICES"]

# LPIPS' VGG16 trunk: torchvision `features` indices [start, end) of slice1..slice5 (relu1_2 .. relu5_3).
LPIPS_SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))


@runtime_checkable
class PerceptualLoss(Protocol):
    """A perceptual distance between image batches.

    `name` says which loss it is (shown in the UI and stored in `InversionResult.extra`).
    `__call__(x, y, mask=None)` takes x, y [N, 3, H, W] in [-1, 1] and an optional mask
    [N or 1, 1, H, W] in [0, 1] (1 = compare here) and returns [N] distances, differentiable in x.
    """
    name: str

    def __call__(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor: ...


def _prepare(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, max_size: int | None):
    """Mask both images (Image2StyleGAN++'s masked perceptual loss), then area-downsample to at
    most `max_size` px as NVlabs' projector does before VGG (VGG was trained near 224 px)."""
    if mask is not None:
        m = mask.to(x.dtype)
        x, y = x * m, y * m
    if max_size is not None and x.shape[-1] > max_size:
        x = F.interpolate(x, size=(max_size, max_size), mode="area")
        y = F.interpolate(y, size=(max_size, max_size), mode="area")
    return x, y


class LPIPSLoss(nn.Module):
    """`PerceptualLoss` over an `lpips.LPIPS` module (inputs in [-1, 1], no re-normalisation)."""

    def __init__(self, module: nn.Module, name: str = "lpips-vgg16", *, max_size: int | None = 256):
        super().__init__()
        self.module, self.name, self.max_size = module, name, max_size

    def forward(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x, y = _prepare(x, y, mask, self.max_size)
        return self.module(x, y).reshape(x.shape[0])


class FeatureLoss(nn.Module):
    """`PerceptualLoss` over any feature extractor (the documented fallback when LPIPS' VGG16
    weights are not available): sum over layers of the spatial mean of
    |f(x)/|f(x)| - f(y)/|f(y)||^2, norms taken over channels at each position.

    Args:
        extractor: img [N, 3, H, W] in [-1, 1] -> sequence of feature maps [N, C_l, H_l, W_l]
                   (an nn.Module is registered, so `.to(device)` moves it).
        name:      what to call the loss in results, e.g. 'features:demo-predictor'.
        max_size:  area-downsample larger inputs to this size first (None: never).
    """

    def __init__(self, extractor: Callable[[torch.Tensor], Sequence[torch.Tensor]], name: str, *,
                 max_size: int | None = 256):
        super().__init__()
        self.extractor, self.name, self.max_size = extractor, name, max_size

    def forward(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x, y = _prepare(x, y, mask, self.max_size)
        total = x.new_zeros(x.shape[0])
        for fx, fy in zip(self.extractor(x), self.extractor(y), strict=True):
            fx = fx * torch.rsqrt(fx.square().sum(dim=1, keepdim=True) + 1e-20)
            fy = fy * torch.rsqrt(fy.square().sum(dim=1, keepdim=True) + 1e-20)
            total = total + (fx - fy).square().sum(dim=1).mean(dim=(1, 2))
        return total


# ---- LPIPS with the registry's VGG16 ------------------------------------------------------------

def load_vgg16_features(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read VGG16's convolutional trunk from a safetensors file with torchvision/timm names.

    Args:
        path: `model.safetensors` of `timm/vgg16.tv_in1k` (or any file holding torchvision's
              `vgg16().features` tensors as `features.{i}.weight/bias`; other keys are ignored).
    Returns:
        {'features.{i}.weight' | 'features.{i}.bias': float32 CPU tensor} for the 13 convolutions.
    Raises:
        CheckpointError: the file lacks a convolution or a shape differs from VGG16's.
    """
    from safetensors.torch import load_file

    tensors = load_file(str(path), device="cpu")
    out = {}
    for key, shape in _vgg16_feature_shapes().items():
        t = tensors.get(key)
        if t is None:
            raise CheckpointError(f"{Path(path).name} has no {key!r}; expected timm/torchvision VGG16 weights.")
        if tuple(t.shape) != shape:
            raise CheckpointError(f"{key} in {Path(path).name} has shape {list(t.shape)}, VGG16 needs {list(shape)}.")
        out[key] = t.to(torch.float32).contiguous()
    return out


def _vgg16_feature_shapes() -> dict[str, tuple[int, ...]]:
    from torchvision.models import vgg16

    with torch.device("meta"):
        features = vgg16().features
    return {f"features.{k}": tuple(v.shape) for k, v in features.state_dict().items()}


def _random_vgg16_features(generator: torch.Generator | None) -> dict[str, torch.Tensor]:
    """torchvision's VGG initialisation (Kaiming normal, fan_out, zero bias), drawn from `generator`."""
    out = {}
    for key, shape in _vgg16_feature_shapes().items():
        t = torch.empty(shape)
        if key.endswith("weight"):
            nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", generator=generator)
        else:
            t.zero_()
        out[key] = t
    return out


def build_lpips(vgg_weights_path: str | os.PathLike | None = None, *,
                generator: torch.Generator | None = None) -> nn.Module:
    """LPIPS-VGG (v0.1) with its calibrated linear heads, offline.

    Equivalent to `lpips.LPIPS(net='vgg', pretrained=True, pnet_rand=True)` followed by loading
    the VGG16 trunk: the package never downloads torchvision weights when `pnet_rand=True`; we
    go further and build it on the meta device so no VGG16 is randomly initialised for nothing.

    Args:
        vgg_weights_path: VGG16 safetensors (registry record `timm/vgg16.tv_in1k`); None keeps a
            random trunk (torchvision's init, drawn from `generator`): a weaker perceptual loss
            for offline use and tests.
        generator: RNG for the random trunk (ignored when weights are given).
    Returns:
        The `lpips.LPIPS` module on the CPU, eval mode, no gradients. `module(x, y)` takes
        [N, 3, H, W] in [-1, 1] and returns [N, 1, 1, 1].
    """
    import lpips

    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's `pretrained=` deprecation notice
        module = lpips.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False)
    heads_path = Path(lpips.__file__).parent / "weights" / "v0.1" / "vgg.pth"
    heads = torch.load(heads_path, map_location="cpu", weights_only=True)
    features = (load_vgg16_features(vgg_weights_path) if vgg_weights_path is not None
                else _random_vgg16_features(generator))
    state = {}
    for k in range(5):  # the heads are registered twice: as lin{k} and as lins.{k}
        state[f"lin{k}.model.1.weight"] = state[f"lins.{k}.model.1.weight"] = heads[f"lin{k}.model.1.weight"]
    for key, t in features.items():
        idx = int(key.split(".")[1])
        s = next(i for i, (a, b) in enumerate(LPIPS_SLICES) if a <= idx < b)
        state[f"net.slice{s + 1}.{key[len('features.'):]}"] = t
    scaling = lpips.ScalingLayer()  # two constant buffers, cheap on the CPU
    state["scaling_layer.shift"], state["scaling_layer.scale"] = scaling.shift, scaling.scale
    module.load_state_dict(state, strict=True, assign=True)
    return module.eval().requires_grad_(False)


def perceptual_loss(vgg_weights_path: str | os.PathLike | None = None, *,
                    fallback: Callable[[torch.Tensor], Sequence[torch.Tensor]] | None = None,
                    fallback_name: str = "features", generator: torch.Generator | None = None,
                    ) -> LPIPSLoss | FeatureLoss:
    """Pick the perceptual loss the way the hub does.

    1. VGG16 weights available: LPIPS-VGG, named 'lpips-vgg16'.
    2. Otherwise a fallback feature extractor (the demo world's predictor): `FeatureLoss`, named
       'features:<fallback_name>'.
    3. Otherwise LPIPS' heads over a random VGG trunk, named 'lpips-vgg16-random-trunk'.
    """
    if vgg_weights_path is not None:
        return LPIPSLoss(build_lpips(vgg_weights_path), "lpips-vgg16")
    if fallback is not None:
        return FeatureLoss(fallback, f"features:{fallback_name}")
    return LPIPSLoss(build_lpips(None, generator=generator), "lpips-vgg16-random-trunk")


# ---- pixel losses and metrics -------------------------------------------------------------------

def masked_mse(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error per image [N]; with a mask [N or 1, 1, H, W], the mean over masked pixels
    (weighted by the mask), so the value does not depend on the region's size."""
    err = (x - y).square()
    if mask is None:
        return err.flatten(1).mean(dim=1)
    m = mask.to(err.dtype).expand(err.shape[0], 1, *err.shape[2:])
    return (err * m).flatten(1).sum(dim=1) / (m.flatten(1).sum(dim=1) * err.shape[1]).clamp_min(1e-8)


def psnr(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image [N] for images in [-1, 1] (peak-to-peak 2),
    both clamped to [-1, 1] first; optional mask as in `masked_mse`."""
    mse = masked_mse(x.detach().clamp(-1, 1), y.detach().clamp(-1, 1), mask)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))


def noise_regularization(noises: Sequence[torch.Tensor]) -> torch.Tensor:
    """NVlabs' noise regulariser: for each map [1, 1, r, r] and its 2x average-pooled versions
    down to 8x8, the squared mean of x * roll(x, 1) along width and along height, all summed."""
    total = noises[0].new_zeros(())
    for n in noises:
        while True:
            total = total + (n * torch.roll(n, shifts=1, dims=3)).mean().square()
            total = total + (n * torch.roll(n, shifts=1, dims=2)).mean().square()
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    return total
