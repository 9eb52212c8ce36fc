"""Official pSp / e4e / ReStyle checkpoints -> our encoder modules (`shared.archs.encoders`).

The official training code (eladrich/pixel2style2pixel@5cfff385, omertov/encoder4editing@99ea5057,
yuval-alaluf/restyle-encoder@5e802762) saves `{'state_dict': {encoder.*, decoder.*}, 'opts':
vars(argparse options), 'latent_avg': [n_styles, 512]}` (plus optimiser state when resuming is
enabled). We read it with `torch.load(weights_only=True)`: `opts` is a plain dict of numbers,
strings, lists and None, so nothing needs allow-listing and no code in the file runs.

`opts['encoder_type']` names the class. The row count follows the official rules: pSp and ReStyle
read `output_size` (older pSp checkpoints lack it: 1024), e4e reads `stylegan_size`;
`n_styles = 2*log2(size) - 2`. The input channels come from `opts['input_nc']` (e4e's own
classes hard-code 3; without the key, ReStyle's own classes default to 6 and the rest to 3). The
remaining architecture (IR depth, SE or not, widths, input size) is read off the weight shapes, so
reduced encoders built through `EncoderConfig` load too; opts and weights must agree, else a
`CheckpointError` says which.

The input shape follows the official transforms of `opts['dataset_type']`: 256x256, except the
cars encoders (`cars_encode`, e.g. the official `e4e_cars_encode.pt`: 512-px generator, 16 styles),
whose `CarsEncodeTransforms` resize to 192x256 (HxW); `EncoderConfig.input_hw` carries that.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import safe_open

from shared.archs.encoders import (ENCODER_TYPES, IR_BLOCKS, RESNET34_BLOCKS, EncoderConfig, build_encoder,
                                   default_config)
from shared.errors import CheckpointError
from shared.loaders._common import assign_strict, file_format, torch_load_weights

__all__ = ["EncoderCheckpoint", "config_from_encoder_state_dict", "encoder_from_checkpoint", "encoder_latent_avg",
           "load_encoder", "load_encoder_checkpoint"]

_E4E_REPO_TYPES = {"Encoder4Editing"}  # e4e's own classes: 3 input channels whatever opts say
#: opts['dataset_type'] -> (H, W) of the official inference transform, where it is not square
#: (e4e and ReStyle `configs/transforms_config.py: CarsEncodeTransforms`)
INPUT_HW_BY_DATASET = {"cars_encode": (192, 256)}
_UNSUPPORTED = {  # official classes we do not implement, with what they are
    "BackboneEncoderUsingLastLayerIntoW": "pSp's W-space ablation encoder",
    "BackboneEncoderUsingLastLayerIntoWPlus": "pSp's W+ ablation encoder",
    "SingleStyleCodeEncoder": "e4e's single-code ablation encoder",
}


@dataclass(frozen=True)
class EncoderCheckpoint:
    """What an encoder checkpoint holds besides the generator.

    encoder:    the encoder module (CPU, float32, eval, no grad); `forward(x)` gives raw codes.
    config:     its `EncoderConfig`.
    latent_avg: [n_styles, w_dim] average latent to add to the codes, or None when the file has none
                (e4e saves it only with `start_from_latent_avg`).
    opts:       the training options stored in the file.
    """

    encoder: torch.nn.Module
    config: EncoderConfig
    latent_avg: torch.Tensor | None
    opts: dict


def load_encoder(path_or_file: str | os.PathLike | BinaryIO) -> torch.nn.Module:
    """Load the encoder of an official pSp / e4e / ReStyle checkpoint.

    Args:
        path_or_file: a `.pt` path or a seekable binary file object.

    Returns:
        The encoder module on the CPU, float32, eval mode, no gradients. `forward(x)` takes
        [N, input_nc, 256, 256] in [-1, 1] ([N, 3, 192, 256] for the cars encoders; see
        `config.input_shape`) (ReStyle: image and current reconstruction, 6 channels)
        and returns the raw codes [N, n_styles, 512], before `latent_avg` and ReStyle's iterations.

    Raises:
        CheckpointError: one sentence (not a checkpoint, generator only, no opts, unknown encoder
        type, weights that do not match the options or the architecture).
    """
    return load_encoder_checkpoint(path_or_file).encoder


def load_encoder_checkpoint(path_or_file: str | os.PathLike | BinaryIO) -> EncoderCheckpoint:
    """Like `load_encoder`, but also returns the config, `latent_avg` and `opts`."""
    kind = file_format(path_or_file)
    name = Path(getattr(path_or_file, "name", None) or str(path_or_file)).name
    if kind == "empty":
        raise CheckpointError(f"{name} is empty (0 bytes); download it again.")
    if kind == "safetensors":
        return _encoder_from_safetensors(path_or_file, name)
    if kind not in ("zip", "legacy-torch"):
        raise CheckpointError(f"{name} is not a PyTorch checkpoint; pSp, e4e and ReStyle encoders are the "
                              "`.pt` files their training scripts save.")
    return encoder_from_checkpoint(torch_load_weights(path_or_file, kind), name)


#: header key of the hub's own encoder files (`training.demo.train_encoder.save_demo_encoder`)
SAFETENSORS_META_KEY = "stylegan_hub_encoder"


def _encoder_from_safetensors(path_or_file: str | os.PathLike | BinaryIO, name: str) -> EncoderCheckpoint:
    """The hub's own encoder format: safetensors with `encoder.*` weights, `latent_avg`, and the
    official options as JSON under SAFETENSORS_META_KEY; read through the same checks."""
    try:
        if hasattr(path_or_file, "read"):
            path_or_file.seek(0)
            raw = path_or_file.read()
            tensors = load_bytes(raw)
            header_len = int.from_bytes(raw[:8], "little")
            meta = json.loads(raw[8:8 + header_len]).get("__metadata__") or {}
        else:
            with safe_open(str(path_or_file), "pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{name} could not be read as safetensors: {e}.") from e
    if SAFETENSORS_META_KEY not in meta:
        raise CheckpointError(f"{name} is a safetensors file without encoder options in its header; the hub reads "
                              "encoders as official pSp/e4e/ReStyle `.pt` files or its own encoder files.")
    opts = json.loads(meta[SAFETENSORS_META_KEY]).get("opts")
    latent_avg = tensors.pop("latent_avg", None)
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    ckpt = {"state_dict": tensors, "opts": opts}
    if latent_avg is not None:
        ckpt["latent_avg"] = latent_avg.float()
    return encoder_from_checkpoint(ckpt, name)


def encoder_from_checkpoint(ckpt: object, name: str = "the checkpoint") -> EncoderCheckpoint:
    """Build the encoder from an already loaded official checkpoint dict (see `load_encoder`)."""
    enc, opts = _split(ckpt, name)
    encoder_type = opts.get("encoder_type")
    if not isinstance(encoder_type, str):
        raise CheckpointError(f"{name} has no opts['encoder_type'], so the encoder class is unknown.")
    if encoder_type in _UNSUPPORTED:
        raise CheckpointError(f"{name} holds {_UNSUPPORTED[encoder_type]} ({encoder_type}), which the hub does "
                              f"not support; supported: {', '.join(ENCODER_TYPES)}.")
    if encoder_type not in ENCODER_TYPES:
        raise CheckpointError(f"Unknown encoder_type {encoder_type!r} in {name}; supported: "
                              f"{', '.join(ENCODER_TYPES)}.")
    cfg = config_from_encoder_state_dict(encoder_type, enc)
    input_hw = INPUT_HW_BY_DATASET.get(opts.get("dataset_type"))
    if input_hw is not None:
        try:
            cfg = EncoderConfig.from_dict({**cfg.to_dict(), "input_hw": input_hw})
        except ValueError as e:
            raise CheckpointError(f"{name}: dataset_type {opts['dataset_type']!r} means {input_hw[0]}x{input_hw[1]} "
                                  f"inputs, which this encoder's style heads cannot take ({e}).") from e
    _check_opts(cfg, opts, name)
    encoder = _build_loaded(cfg, enc)
    return EncoderCheckpoint(encoder, cfg, encoder_latent_avg(ckpt, cfg.n_styles, cfg.w_dim), dict(opts))


def _split(ckpt: object, name: str) -> tuple[dict[str, torch.Tensor], Mapping]:
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{name} holds a {type(ckpt).__name__}, not a pSp/e4e/ReStyle checkpoint dict.")
    sd = ckpt.get("state_dict")
    if not isinstance(sd, dict):
        if "g_ema" in ckpt or "G_ema" in ckpt:
            raise CheckpointError(f"{name} is a generator-only checkpoint ('g_ema'); an encoder checkpoint "
                                  "has 'state_dict' with 'encoder.*' weights.")
        raise CheckpointError(f"{name} has no 'state_dict', so it is not a pSp/e4e/ReStyle checkpoint "
                              f"(top-level keys {sorted(map(str, ckpt))[:6]}).")
    enc = {k[len("encoder."):]: v for k, v in sd.items() if isinstance(k, str) and k.startswith("encoder.")}
    if not enc:
        if any(isinstance(k, str) and k.startswith("decoder.") for k in sd):
            raise CheckpointError(f"{name} holds only a generator ('decoder.*'), no 'encoder.*' weights.")
        raise CheckpointError(f"{name} has no 'encoder.*' weights in its state_dict.")
    bad = [k for k, v in enc.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"encoder.{bad[0]} in {name} is not a tensor; the file is damaged.")
    opts = ckpt.get("opts")
    if not isinstance(opts, Mapping):
        raise CheckpointError(f"{name} has no 'opts' (the training options naming the encoder type); "
                              "re-save it with the official training script's layout.")
    return enc, opts


def _n_styles_from_opts(opts: Mapping, name: str) -> int:
    size = opts.get("output_size") or opts.get("stylegan_size") or 1024
    try:
        return 2 * int(math.log2(int(size))) - 2
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{name}: opts give the generator size as {size!r}, not a resolution in pixels.") from e


def _check_opts(cfg: EncoderConfig, opts: Mapping, name: str) -> None:
    n_styles = _n_styles_from_opts(opts, name)
    if n_styles != cfg.n_styles:
        raise CheckpointError(f"{name}: its options mean a {2 ** ((n_styles + 2) // 2)}-px generator "
                              f"({n_styles} styles) but the encoder weights have {cfg.n_styles} style blocks.")
    input_nc = opts.get("input_nc", default_config(cfg.encoder_type).input_nc)
    if cfg.encoder_type in _E4E_REPO_TYPES:
        input_nc = 3
    if input_nc != cfg.input_nc:
        raise CheckpointError(f"{name}: its options say {input_nc} input channels but the encoder's first "
                              f"convolution takes {cfg.input_nc}.")


def config_from_encoder_state_dict(encoder_type: str, sd: Mapping[str, torch.Tensor]) -> EncoderConfig:
    """Infer the `EncoderConfig` of an `encoder_type` module from its (prefix-free) state dict."""
    resnet = ENCODER_TYPES[encoder_type].backbone == "resnet"
    stem_key = "conv1.weight" if resnet else "input_layer.0.weight"
    unit_key = "body.{}.conv1.weight" if resnet else "body.{}.res_layer.1.weight"
    unit_re = re.escape(unit_key).replace(r"\{\}", r"(\d+)")
    units = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(unit_re, k)))
    n_styles = len([k for k in sd if re.fullmatch(r"styles\.\d+\.linear\.weight", k)])
    if stem_key not in sd or not units or units != list(range(len(units))) or not n_styles:
        raise CheckpointError(f"The encoder weights do not have the layout of {encoder_type} "
                              f"(looked for {stem_key!r}, 'body.N.*' and 'styles.N.linear.weight').")
    stem = sd[stem_key]
    widths: list[int] = []
    blocks: list[int] = []
    for i in units:  # a stage is a run of units of one width (widths strictly increase)
        depth = int(sd[unit_key.format(i)].shape[0])
        if widths and depth == widths[-1]:
            blocks[-1] += 1
        else:
            widths.append(depth)
            blocks.append(1)
    if len(widths) != 4:
        raise CheckpointError(f"The {encoder_type} body has {len(widths)} stages of widths {widths}; expected 4.")
    n_convs = len([k for k in sd if re.fullmatch(r"styles\.0\.convs\.\d+\.weight", k)])
    num_layers = next((n for n, b in IR_BLOCKS.items() if b == tuple(blocks)), None)
    official = (resnet and tuple(blocks) == RESNET34_BLOCKS) or (not resnet and num_layers is not None)
    try:
        return EncoderConfig(
            encoder_type=encoder_type, num_layers=num_layers or 50,
            mode="ir_se" if resnet or "body.0.res_layer.5.fc1.weight" in sd else "ir",  # ResNet: unused
            input_nc=int(stem.shape[1]), n_styles=n_styles, w_dim=int(sd["styles.0.linear.weight"].shape[0]),
            input_size=16 * 2 ** n_convs, widths=tuple(widths), blocks=None if official else tuple(blocks))
    except ValueError as e:
        raise CheckpointError(f"The {encoder_type} weights describe an impossible architecture ({e}).") from e


def _build_loaded(cfg: EncoderConfig, sd: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Build on the meta device and take over the checkpoint's tensors (no random init, no copy)."""
    with torch.device("meta"):
        model = build_encoder(cfg)
    return assign_strict(model, sd, cfg.encoder_type)


def encoder_latent_avg(ckpt: Mapping, n_styles: int, w_dim: int = 512) -> torch.Tensor | None:
    """The checkpoint's `latent_avg` as [n_styles, w_dim] float32, or None if it has none.

    pSp, e4e and ReStyle store it repeated per row ([n_styles, w_dim]); pSp's `learn_in_w` stores
    [1, w_dim] and older files a bare [w_dim]; those rows are repeated.
    """
    avg = ckpt.get("latent_avg") if isinstance(ckpt, Mapping) else None
    if avg is None:
        return None
    if not isinstance(avg, torch.Tensor) or avg.shape[-1] != w_dim or avg.ndim > 2:
        raise CheckpointError(f"latent_avg should be [{n_styles}, {w_dim}], got "
                              f"{list(avg.shape) if isinstance(avg, torch.Tensor) else type(avg).__name__}.")
    avg = avg.detach().to(torch.float32).reshape(-1, w_dim)
    if avg.shape[0] == 1:
        avg = avg.expand(n_styles, w_dim)
    if avg.shape[0] != n_styles:
        raise CheckpointError(f"latent_avg has {avg.shape[0]} rows but the encoder predicts {n_styles}.")
    return avg.clone()
