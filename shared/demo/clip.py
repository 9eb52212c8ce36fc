"""The demo world's small CLIP: building the `open_clip.CLIP` from the config in the shipped
file's header and loading its weights (training, the zero-shot evaluation and the command line:
`training.demo.clip`).

Reproduces the CLIP recipe (Radford et al., ICML 2021, "Learning Transferable Visual Models From
Natural Language Supervision") with the mlfoundations/open_clip v3.3.0 implementation: the
`open_clip.CLIP` model built from a custom model config and open_clip's default BPE
`SimpleTokenizer`.

Why `open_clip.CLIP(**config)` and not `open_clip.create_model`: in open_clip 3.3.0
`create_model` takes a model *name* (a built-in config, `hf-hub:` or `local-dir:`), and
`add_model_config` registers configs only from files on disk into a process-wide table;
`create_model` itself instantiates `CLIP(**model_cfg)`, which is what we call with our dict.

The shipped file stores only the token-embedding rows of the demo vocabulary with their token
ids; the loader rebuilds the full open_clip embedding with zero rows for every other token.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor, nn

__all__ = ["DEFAULT_PATH", "OPENAI_MEAN", "OPENAI_STD", "build_clip", "load_demo_clip", "make_preprocess",
           "text_tokenizer"]

DEFAULT_PATH = Path(__file__).resolve().parent / "bundle" / "clip.safetensors"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)   # open_clip's default image normalisation
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def build_clip(model_cfg: dict) -> nn.Module:
    """An untrained `open_clip.CLIP` from an open_clip model config dict (float32, CPU)."""
    import open_clip
    return open_clip.CLIP(**json.loads(json.dumps(model_cfg)))   # deep copy: CLIP keeps dicts


def text_tokenizer(context_length: int):
    import open_clip
    return open_clip.SimpleTokenizer(context_length=context_length)


def make_preprocess(image_size: int = 64) -> Callable[[Tensor], Tensor]:
    """Differentiable map from our images [N,3,H,W] in [-1,1] (any device) to the model's input:
    resize to image_size (bilinear, antialiased) if needed, then open_clip's mean/std
    normalisation of [0,1] pixels."""
    def preprocess(img: Tensor) -> Tensor:
        if img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f"images must be [N,3,H,W], got {tuple(img.shape)}")
        if img.shape[-2:] != (image_size, image_size):
            img = F.interpolate(img, size=(image_size, image_size), mode="bilinear",
                                align_corners=False, antialias=True)
        mean = torch.tensor(OPENAI_MEAN, dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
        std = torch.tensor(OPENAI_STD, dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
        return (img * 0.5 + 0.5 - mean) / std
    return preprocess


def load_demo_clip(path: str | Path = DEFAULT_PATH):
    """Load the shipped demo CLIP.

    Returns:
        (model, tokenizer, preprocess_fn): an `open_clip.CLIP` in eval mode, float32 on the CPU,
        with the full 49,408-token embedding (zero rows outside the demo vocabulary); open_clip's
        `SimpleTokenizer` (texts -> LongTensor [N, context_length]); and a differentiable map
        from images [N,3,H,W] in [-1,1] to the image tower's input [N,3,64,64].
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"The demo CLIP weights are missing at {path}; "
                                "run `python -m training.demo.clip train`.")
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata() or {}
    if "open_clip_config" not in meta:
        raise ValueError(f"{path} has no open_clip_config in its header; it is not a demo CLIP.")
    model_cfg = json.loads(meta["open_clip_config"])
    size = int(json.loads(meta["preprocess"])["size"])
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(str(path)).items()}
    ids, rows = state.pop("token_embedding.ids"), state.pop("token_embedding.weight")
    model = build_clip(model_cfg)
    full = torch.zeros_like(model.token_embedding.weight)
    full[ids] = rows
    state["token_embedding.weight"] = full
    model.load_state_dict(state)
    model.eval().requires_grad_(False)
    return model, text_tokenizer(model_cfg["text_cfg"]["context_length"]), make_preprocess(size)
