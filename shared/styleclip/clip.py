"""CLIP models for text-driven editing (Radford et al., ICML 2021, openai/CLIP; built with
mlfoundations/open_clip), behind one small interface.

`clip_for(model_id)` gets a CLIP record through the model cache; `load_clip(card, path)`, the
cache's loader for CLIP records, builds the record's open_clip model (an open_clip model name in
`arch_config['open_clip_model']`, weights from the record's safetensors file; or the demo world's
own CLIP), and `ClipModel` wraps it with the model's *own* preprocessing written on tensors so
the optimising methods can back-propagate through it: shortest-side resize with the model's
interpolation (antialiased), centre crop, mean/std normalisation of [0, 1] pixels. Images come in
as float [N, 3, H, W] in [-1, 1]; embeddings leave L2-normalised.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor, nn

from shared.demo.clip import load_demo_clip
from shared.errors import InputError
from shared.model_cache import ModelCache, default_cache

__all__ = ["ClipModel", "clip_for", "load_clip", "tensor_preprocess"]

def tensor_preprocess(size: int, mean: Sequence[float], std: Sequence[float], interpolation: str = "bicubic"):
    """Differentiable image transform: [N,3,H,W] in [-1,1] -> the tower's normalised [N,3,size,size].
    Matches open_clip's eval transform for square and non-square inputs: resize the shortest side
    to `size`, centre-crop, normalise."""
    mode = {"bicubic": "bicubic", "bilinear": "bilinear", "nearest": "nearest"}.get(interpolation, "bicubic")

    def preprocess(img: Tensor) -> Tensor:
        if img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f"images must be [N,3,H,W], got {tuple(img.shape)}")
        h, w = img.shape[-2:]
        if min(h, w) != size:   # torchvision's Resize(int): the long side is truncated, not rounded
            nh, nw = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
            img = F.interpolate(img, size=(nh, nw), mode=mode, align_corners=False,
                                antialias=mode != "nearest")
        h, w = img.shape[-2:]
        top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))   # CenterCrop's offsets
        img = img[..., top:top + size, left:left + size]
        m = torch.tensor(mean, dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
        s = torch.tensor(std, dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
        return ((img * 0.5 + 0.5).clamp(0, 1) - m) / s
    return preprocess


@dataclass(eq=False)
class ClipModel:
    """A frozen CLIP with its tokenizer and differentiable preprocessing.

    Attributes:
        model_id:   registry id it was built from.
        model:      an `open_clip.CLIP` in eval mode with requires_grad off.
        tokenizer:  texts -> LongTensor [N, context_length].
        preprocess: differentiable [N,3,H,W] in [-1,1] -> tower input.
        image_size: the tower's input size.
    """
    model_id: str
    model: nn.Module
    tokenizer: object
    preprocess: object
    image_size: int

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """Normalised text embeddings [N, D] (no gradient)."""
        tokens = self.tokenizer(list(texts)).to(self.device)
        with torch.no_grad():
            return F.normalize(self.model.encode_text(tokens).float(), dim=-1)

    def encode_image(self, images: Tensor) -> Tensor:
        """Normalised image embeddings [N, D] of images in [-1, 1]; differentiable in `images`."""
        x = self.preprocess(images.to(self.device, torch.float32))
        return F.normalize(self.model.encode_image(x).float(), dim=-1)


def load_clip(card, path: Path | None) -> ClipModel:
    """Build the CLIP of a registry record on the CPU. `card.arch` is 'clip-vit' (a named open_clip
    model, `arch_config['open_clip_model']`, loaded from the record's open_clip safetensors file) or
    'open-clip' (the demo world's CLIP with its config in the file header)."""
    import open_clip
    if path is None:
        raise InputError(f"CLIP '{card.id}' has no weights file.")
    if card.arch == "open-clip":
        model, tokenizer, _ = load_demo_clip(path)
        with safe_open(str(path), "pt") as fh:
            pre = json.loads((fh.metadata() or {})["preprocess"])
        size = int(pre["size"])
        preprocess = tensor_preprocess(size, pre["mean"], pre["std"], "bilinear")
        return ClipModel(card.id, model, tokenizer, preprocess, size)
    if card.arch != "clip-vit":
        raise InputError(f"'{card.id}' is not a CLIP model (arch {card.arch}).")
    name = (card.arch_config or {}).get("open_clip_model")
    if not name:
        raise InputError(f"CLIP record '{card.id}' names no open_clip model (arch_config['open_clip_model']).")
    model = open_clip.create_model(name, pretrained=None)
    state = load_file(str(path))
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:                      # shape mismatches
        first = str(e).split("\n\t")[1] if "\n\t" in str(e) else str(e)[:200]
        raise InputError(f"The weights of '{card.id}' do not fit open_clip's {name}: {first}") from e
    missing = [k for k in missing if not k.endswith("attn_mask")]
    if missing or unexpected:
        raise InputError(f"The weights of '{card.id}' do not fit open_clip's {name}: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}.")
    model.eval().requires_grad_(False)
    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg["size"][0] if isinstance(cfg["size"], (tuple, list)) else int(cfg["size"])
    preprocess = tensor_preprocess(int(size), cfg["mean"], cfg["std"], cfg.get("interpolation", "bicubic"))
    return ClipModel(card.id, model, open_clip.get_tokenizer(name), preprocess, int(size))


def clip_for(model_id: str, device: torch.device | str = "cpu", *, models: ModelCache | None = None,
             progress=None) -> ClipModel:
    """The CLIP of registry record `model_id` on `device`, through the model cache (`models`, default
    the process's: loaded once, shared, read-only). `progress(fraction, text)` reports the download."""
    clip = (models or default_cache()).get(model_id, device=device, progress=progress)
    if not isinstance(clip, ClipModel):
        raise InputError(f"'{model_id}' is not a CLIP model.")
    return clip
