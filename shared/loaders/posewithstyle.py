"""Pose with Style files (AlBahar et al., SIGGRAPH Asia 2021; BadourAlBahar/pose-with-style@f344f3b, MIT).

- `posewithstyle.pt`: `torch.save({'g_ema': state_dict, ...})` of `model.py: Generator` (train.py's
  checkpoints also hold 'g', 'd' and optimiser states); the size and widths are read off the keys.
- `CCM_epoch50.pt`: `{'g': state_dict}` of `util/coordinate_completion_model.py: CoordinateCompletion`.
- our native `.safetensors` of either network (`shared.loaders.native`).
- `dp_uv_lookup_256.npy` (the DensePose UV lookup table) and `uv_space_parts.npy` (the UV atlas's part
  map, garment transfer): plain NumPy arrays, read with `allow_pickle=False`.
Files are told apart by their content. `.pt` files are read with `torch.load(weights_only=True)`: a
pickle that wants to run code is refused. Every failure is one `CheckpointError` sentence.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from shared.archs.posewithstyle import CoordinateCompletion, PoseWithStyleConfig, PoseWithStyleGenerator
from shared.densepose import LOOKUP_SHAPE
from shared.errors import CheckpointError
from shared.loaders._common import load_strict, read_head, sniff_format, torch_load_weights
from shared.loaders.native import NATIVE_KEY, generator_from_native

__all__ = ["ccm_from_state_dict", "config_from_state_dict", "generator_from_state_dict", "is_ccm_state_dict",
           "is_posewithstyle_state_dict", "load_ccm", "load_posewithstyle", "load_uv_lookup", "load_uv_parts"]

log = logging.getLogger(__name__)

_GEN_KEYS = ("appearance_encoder.conv1.0.weight", "pose_encoder.convs.0.0.weight", "conv1.conv.gamma.0.weight")
_CCM_KEY = "generator.model.0.conv2d.weight"


def is_posewithstyle_state_dict(sd) -> bool:
    return isinstance(sd, dict) and all(k in sd for k in _GEN_KEYS)


def is_ccm_state_dict(sd) -> bool:
    return isinstance(sd, dict) and _CCM_KEY in sd and "generator.model.17.weight" in sd


def config_from_state_dict(sd: dict[str, torch.Tensor]) -> PoseWithStyleConfig:
    """Size, widths and modulation width of an official-layout generator state dict."""
    levels = len([k for k in sd if re.fullmatch(r"appearance_encoder\.conv\d+1\.weight", k)])
    n_rgb = len([k for k in sd if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])
    if levels != n_rgb + 1:
        raise CheckpointError(f"The Pose with Style weights are inconsistent: {levels} appearance-encoder scales "
                              f"but {n_rgb} upsampling blocks.")
    chans = {16: int(sd["conv1.conv.weight"].shape[1])}
    for j in range(n_rgb):
        chans[32 * 2 ** j] = int(sd[f"convs.{2 * j + 1}.conv.weight"].shape[1])
    try:
        return PoseWithStyleConfig(size=16 * 2 ** n_rgb, ngf=int(sd[_GEN_KEYS[0]].shape[0]),
                                   channels=tuple(sorted(chans.items())),
                                   modulation_hidden=int(sd[_GEN_KEYS[2]].shape[0]))
    except ValueError as e:
        raise CheckpointError(f"These Pose with Style weights have a shape we do not support ({e}).") from e


def generator_from_state_dict(sd: dict[str, torch.Tensor]) -> PoseWithStyleGenerator:
    """Our generator from an official `g_ema` state dict (same keys, shapes checked one by one)."""
    G = PoseWithStyleGenerator(config_from_state_dict(sd))
    load_strict(G, sd)
    return G.eval().requires_grad_(False)


def ccm_from_state_dict(sd: dict[str, torch.Tensor]) -> CoordinateCompletion:
    """Our coordinate-completion model from an official `g` state dict."""
    C = CoordinateCompletion()
    load_strict(C, sd)
    return C.eval().requires_grad_(False)


def _read(path: str | Path, what: str):
    """('torch', object) or ('native', module) for a checkpoint file; sentences for everything else."""
    head, size = read_head(path)
    kind = sniff_format(head, size)
    name = Path(path).name
    if kind == "empty":
        raise CheckpointError(f"{name} is empty (0 bytes); download {what} again.")
    if kind == "html":
        raise CheckpointError(f"{name} is a web page, not {what} (a Google Drive download that failed, often its "
                              "quota or virus-scan page); download the file again.")
    if kind in ("zip", "legacy-torch"):
        return "torch", torch_load_weights(path, kind)
    if kind == "safetensors":
        return "native", _read_native(Path(path))
    if kind == "pickle":
        raise CheckpointError(f"{name} is a bare pickle, not a torch.save file; {what} is the official `.pt` file.")
    raise CheckpointError(f"{name} is not a checkpoint format we know; {what} is the official `.pt` file.")


def _read_native(path: Path) -> torch.nn.Module:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path.name} is truncated or corrupted ({e}); download it again.") from e
    if NATIVE_KEY not in meta:
        raise CheckpointError(f"{path.name} has no StyleGAN Hub config in its header; save it with "
                              "shared.loaders.native.save_native.")
    return generator_from_native(tensors, json.loads(meta[NATIVE_KEY]))


def load_posewithstyle(path: str | Path) -> PoseWithStyleGenerator:
    """The reposing generator from `posewithstyle.pt` ({'g_ema': ...}) or our native `.safetensors`.

    Raises:
        CheckpointError: the file is another model (the CCM, a StyleGAN2), damaged, or unsafe to unpickle.
    """
    kind, obj = _read(path, "posewithstyle.pt")
    name = Path(path).name
    if kind == "native":
        if not isinstance(obj, PoseWithStyleGenerator):
            raise CheckpointError(f"{name} holds a {getattr(obj, 'arch', type(obj).__name__)} model, not the Pose "
                                  "with Style generator.")
        return obj
    if not isinstance(obj, dict):
        raise CheckpointError(f"{name} holds a {type(obj).__name__}, not a dict of weights.")
    if is_ccm_state_dict(obj.get("g")):
        raise CheckpointError(f"{name} is the coordinate-completion model (CCM_epoch50.pt), not the reposing "
                              "generator; give it to the CCM record and use posewithstyle.pt here.")
    sd = obj.get("g_ema")
    if sd is None and is_posewithstyle_state_dict(obj.get("g")):
        log.warning("%s has no 'g_ema'; using the non-averaged generator 'g'", name)
        sd = obj["g"]
    if sd is None and is_posewithstyle_state_dict(obj):
        sd = obj
    if not is_posewithstyle_state_dict(sd):
        what = "a StyleGAN2 generator" if isinstance(sd, dict) and "input.input" in sd else "no Pose with Style weights"
        raise CheckpointError(f"{name} holds {what} (top-level keys {sorted(map(str, obj))[:6]}); the reposing "
                              "generator is posewithstyle.pt from the official README.")
    return generator_from_state_dict(sd)


def load_ccm(path: str | Path) -> CoordinateCompletion:
    """The coordinate-completion model from `CCM_epoch50.pt` ({'g': ...}) or our native `.safetensors`."""
    kind, obj = _read(path, "CCM_epoch50.pt")
    name = Path(path).name
    if kind == "native":
        if not isinstance(obj, CoordinateCompletion):
            raise CheckpointError(f"{name} holds a {getattr(obj, 'arch', type(obj).__name__)} model, not the "
                                  "coordinate-completion model.")
        return obj
    if not isinstance(obj, dict):
        raise CheckpointError(f"{name} holds a {type(obj).__name__}, not a dict of weights.")
    if is_posewithstyle_state_dict(obj.get("g_ema")) or is_posewithstyle_state_dict(obj.get("g")):
        raise CheckpointError(f"{name} is the Pose with Style reposing generator, not the coordinate-completion "
                              "model; use CCM_epoch50.pt here.")
    sd = obj.get("g") if isinstance(obj.get("g"), dict) else obj
    if not is_ccm_state_dict(sd):
        raise CheckpointError(f"{name} holds no coordinate-completion weights (top-level keys "
                              f"{sorted(map(str, obj))[:6]}); use CCM_epoch50.pt from the official README.")
    return ccm_from_state_dict(sd)


def _load_npy(path: str | Path, what: str) -> np.ndarray:
    head, size = read_head(path)
    name = Path(path).name
    if sniff_format(head, size) == "html":
        raise CheckpointError(f"{name} is a web page, not {what} (a Google Drive download that failed); "
                              "download the file again.")
    if not head.startswith(b"\x93NUMPY"):
        raise CheckpointError(f"{name} is not a NumPy .npy file; {what} is the `.npy` file from the official README.")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:  # object arrays need pickle, which we refuse
        raise CheckpointError(f"{name} holds Python objects, which we refuse to unpickle; {what} is a plain "
                              "numeric array.") from e
    except (OSError, EOFError) as e:
        raise CheckpointError(f"{name} is truncated or corrupted ({e}); download it again.") from e


def load_uv_lookup(path: str | Path) -> torch.Tensor:
    """`dp_uv_lookup_256.npy` -> float [24, 256, 256, 2] (the file's precision), values in [0, 1], indexed
    `[I - 1, V, U]`."""
    a = _load_npy(path, "the UV lookup table")
    if tuple(a.shape) != LOOKUP_SHAPE or not np.issubdtype(a.dtype, np.floating):
        raise CheckpointError(f"{Path(path).name} has shape {list(a.shape)} ({a.dtype}); the UV lookup table "
                              f"dp_uv_lookup_256.npy is float {list(LOOKUP_SHAPE)}.")
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise CheckpointError(f"{Path(path).name} has values outside [0, 1]; it is not the UV lookup table.")
    return torch.from_numpy(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("=")))


def load_uv_parts(path: str | Path) -> torch.Tensor:
    """`uv_space_parts.npy` -> float32 [1, 1, H, W]: the 0-based DensePose part of each UV-atlas pixel."""
    a = _load_npy(path, "the UV part map")
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.number) or not np.isfinite(a).all():
        raise CheckpointError(f"{Path(path).name} has shape {list(a.shape)} ({a.dtype}); the UV part map "
                              "uv_space_parts.npy is a 2-D array of part indices.")
    return torch.from_numpy(a.astype(np.float32))[None, None]
