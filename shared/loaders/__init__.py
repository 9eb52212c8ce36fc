"""`load_generator`: one entry point for every generator checkpoint the hub accepts.

The format is recognised from the file's content, never its extension:
rosinality `.pt` (github.com/rosinality/stylegan2-pytorch), pSp / e4e / ReStyle checkpoints
(their `decoder.*` StyleGAN2), NVlabs persistence pickles (StyleGAN2-ADA, StyleGAN3, EG3D, StyleNeRF; read
by a restricted unpickler that executes nothing), the TensorFlow pickles of NVlabs/stylegan and
NVlabs/stylegan2 (`tf_pickle.py`, read without TensorFlow, executing nothing), our own safetensors format (weights +
JSON config in the header), and bare state dicts in safetensors (such as the official
parity vectors). Errors a user can cause come back as one `CheckpointError` sentence.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import BinaryIO

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load

from shared.archs.stylegan3 import StyleGAN3Generator, config_from_state_dict
from shared.archs.stylenerf import StyleNeRFGenerator
from shared.errors import CheckpointError
from shared.loaders._common import (assign_strict, file_format, load_strict, read_head, read_headed_safetensors,
                                    sniff_format, torch_load_weights)
from shared.loaders.encoders import load_encoder
from shared.loaders.native import NATIVE_KEY, generator_from_native
from shared.loaders.nvlabs_eg3d import config_from_eg3d_kwargs, eg3d_from_nvlabs, eg3d_from_persistent, is_nvlabs_eg3d
from shared.loaders.nvlabs_pickle import read_nvlabs_pickle
from shared.loaders.nvlabs_stylegan2 import is_nvlabs_stylegan2, stylegan2_from_nvlabs
from shared.loaders.posewithstyle import is_ccm_state_dict, is_posewithstyle_state_dict
from shared.loaders.rosinality import generator_from_rosinality, is_rosinality_state_dict
from shared.loaders.tf_pickle import generator_from_tf, is_tf_pickle_head, read_tf_pickle

__all__ = ["assign_strict", "file_format", "generator_from_persistent", "load_encoder", "load_generator",
           "read_headed_safetensors", "sniff_format", "torch_load_weights"]

log = logging.getLogger(__name__)

def load_generator(path_or_file: str | os.PathLike | BinaryIO) -> torch.nn.Module:
    """Load any supported generator checkpoint.

    Args:
        path_or_file: a path or a binary file object (seekable).

    Returns:
        A StyleGAN (v1), StyleGAN2, StyleGAN3, StyleNeRF or EG3D generator on the CPU, float32, eval mode, no gradients.

    Raises:
        CheckpointError: with one sentence saying what is wrong and what to do.
    """
    head, size = read_head(path_or_file)
    kind = sniff_format(head, size)
    name = getattr(path_or_file, "name", None) or str(path_or_file)
    if kind == "empty":
        raise CheckpointError(f"{Path(name).name} is empty (0 bytes); download it again.")
    if kind == "html":
        raise CheckpointError(f"{Path(name).name} is an HTML page, not a checkpoint (often a download that "
                              "failed, e.g. a quota or login page); download the real file again.")
    if kind == "safetensors":
        return _load_safetensors(path_or_file, size)
    if kind in ("zip", "legacy-torch"):
        return _from_torch_object(torch_load_weights(path_or_file, kind), name)
    if kind == "pickle":
        if is_tf_pickle_head(_read_prefix(path_or_file, 4096)):   # TF pickles name their Network class first
            return generator_from_tf(read_tf_pickle(path_or_file))
        return _from_nvlabs_pickle(path_or_file)
    raise CheckpointError(f"{Path(name).name} is not a checkpoint format we know (rosinality .pt, "
                          "pSp/e4e .pt, NVlabs .pkl (PyTorch or TensorFlow) or .safetensors).")


def _read_prefix(src, n: int) -> bytes:
    """The first `n` bytes of a path or seekable file (its position is kept)."""
    if isinstance(src, (str, os.PathLike)):
        with open(src, "rb") as f:
            return f.read(n)
    pos = src.tell()
    data = src.read(n)
    src.seek(pos)
    return data


# ---- torch.save files ------------------------------------------------------------------------

def _from_torch_object(obj, name: str) -> torch.nn.Module:
    if not isinstance(obj, dict):
        raise CheckpointError(f"{Path(name).name} holds a {type(obj).__name__}, not a dict of weights.")
    for key in ("g_ema", "g"):
        sd = obj.get(key)
        if isinstance(sd, dict) and (is_posewithstyle_state_dict(sd) or is_ccm_state_dict(sd)):
            raise CheckpointError(f"{Path(name).name} is a Pose with Style checkpoint (a reposing network, not a "
                                  "StyleGAN generator); use it in the Reposing tab through its registry record "
                                  "(posewithstyle-deepfashion-512 / posewithstyle-ccm-deepfashion), or "
                                  "shared.loaders.posewithstyle.load_posewithstyle / load_ccm.")
    if "g_ema" in obj:
        return generator_from_rosinality(obj["g_ema"], obj.get("latent_avg"))
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        sd = obj["state_dict"]
        dec = {k[len("decoder."):]: v for k, v in sd.items() if k.startswith("decoder.")}
        if dec:
            return generator_from_rosinality(dec, obj.get("latent_avg"))
        if any(k.startswith("encoder.") for k in sd):
            raise CheckpointError("This pSp/e4e/ReStyle checkpoint holds only an encoder (no 'decoder.*' "
                                  "generator weights); load the generator separately.")
    if is_rosinality_state_dict(obj):
        return generator_from_rosinality(obj, None)
    if set(obj) & {"d", "D", "discriminator"} and not set(obj) & {"g", "G", "g_ema", "G_ema"}:
        raise CheckpointError("This checkpoint holds only a discriminator; the hub needs the generator "
                              "('g_ema') weights.")
    if "g" in obj and isinstance(obj["g"], dict) and is_rosinality_state_dict(obj["g"]):
        log.warning("%s has no 'g_ema'; using the non-averaged generator 'g'", name)
        return generator_from_rosinality(obj["g"], obj.get("latent_avg"))
    keys = sorted(map(str, obj))[:6]
    raise CheckpointError(f"Unknown architecture: no StyleGAN generator weights recognised (top-level keys {keys}).")


# ---- NVlabs pickles --------------------------------------------------------------------------

def _from_nvlabs_pickle(src) -> torch.nn.Module:
    data = read_nvlabs_pickle(src)
    if not isinstance(data, dict):
        raise CheckpointError("This pickle is not an NVlabs network snapshot (expected a dict with 'G_ema').")
    net = data.get("G_ema") or data.get("G")
    if net is None:
        if "D" in data:
            raise CheckpointError("This snapshot holds only a discriminator ('D'); the hub needs 'G_ema'.")
        raise CheckpointError(f"This pickle has no generator ('G_ema'); found keys {sorted(map(str, data))[:6]}.")
    return generator_from_persistent(net)


def generator_from_persistent(net) -> torch.nn.Module:
    """Build our generator from a harvested NVlabs `PersistentObject`.

    Official pickles store bare class names ('Generator'), so the architecture is told apart
    by the tensors it holds.
    """
    class_name = net.class_name.rsplit(".", 1)[-1]
    tensors = net.tensors()
    kwargs = dict(net.init_kwargs)
    if class_name == "Generator" and "synthesis.input.freqs" in tensors:
        return StyleGAN3Generator.from_nvlabs(kwargs, tensors).eval().requires_grad_(False)
    if class_name == "Generator" and is_nvlabs_stylegan2(tensors):
        # stylegan2-ada-pytorch nests `synthesis_kwargs` (its blocks default to no clamping);
        # the stylegan3 repo's networks_stylegan2 flattens them (default clamp 256).
        origin = ("training.networks.Generator" if "synthesis_kwargs" in kwargs
                  else "training.networks_stylegan2.Generator")
        return stylegan2_from_nvlabs(kwargs, tensors, class_name=origin, init_args=tuple(net.init_args))
    if any(k.startswith("synthesis.fg_nerf.") for k in tensors):  # StyleNeRF (facebookresearch/StyleNeRF)
        return StyleNeRFGenerator.from_nvlabs(kwargs, tensors)
    if class_name == "TriPlaneGenerator" or is_nvlabs_eg3d(tensors):
        return eg3d_from_persistent(net)
    raise CheckpointError(f"Unknown architecture {class_name!r}: supported NVlabs generators are StyleGAN2, "
                          "StyleGAN2-ADA, StyleGAN3, StyleNeRF and EG3D.")


# ---- safetensors -----------------------------------------------------------------------------

def _load_safetensors(src, size: int) -> torch.nn.Module:
    raw = Path(src).read_bytes() if isinstance(src, (str, os.PathLike)) else src.read()
    header_len = int.from_bytes(raw[:8], "little")
    if header_len + 8 > len(raw):
        raise CheckpointError("The .safetensors file is truncated (its header promises more bytes than the "
                              "file has); download it again.")
    try:
        header = json.loads(raw[8: 8 + header_len])
        meta = header.get("__metadata__") or {}
        data_end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise CheckpointError(f"The .safetensors header is corrupted ({e}); download the file again.") from e
    if 8 + header_len + data_end > len(raw):
        raise CheckpointError(f"The .safetensors file is truncated ({len(raw)} of {8 + header_len + data_end} "
                              "bytes); download it again.")
    try:
        tensors = st_load(raw)
    except (SafetensorError, ValueError) as e:
        raise CheckpointError(f"The .safetensors file is corrupted ({e}); download it again.") from e
    if NATIVE_KEY in meta:
        return generator_from_native(tensors, json.loads(meta[NATIVE_KEY]))
    sidecar = _sidecar(src)
    ctor = sidecar.get("constructor")
    try:
        return _from_bare_state_dict(tensors, dict(ctor) if isinstance(ctor, dict) else None)
    except CheckpointError:
        origin = sidecar.get("origin") or {}
        if origin.get("class"):  # say what the file is, from its sidecar JSON
            raise CheckpointError(f"{Path(src).name} holds a {origin['class']} from {origin.get('repo', '?')}, "
                                  "not a generator load_generator supports (StyleGAN2, StyleGAN3).") from None
        raise


def _sidecar(src) -> dict:
    """`NAME.json` beside `NAME.safetensors` (the parity-vector layout), or {}."""
    if not isinstance(src, (str, os.PathLike)):
        return {}
    side = Path(src).with_suffix(".json")
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text())
    except (ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def _from_bare_state_dict(tensors: dict[str, torch.Tensor], ctor: dict | None) -> torch.nn.Module:
    if any(k.startswith("sd.") for k in tensors):  # official parity vectors: weights under `sd.`
        tensors = {k[3:]: v for k, v in tensors.items() if k.startswith("sd.")}
    if is_rosinality_state_dict(tensors):
        latent_avg = tensors.pop("latent_avg", None)
        return generator_from_rosinality(tensors, latent_avg)
    class_name = (ctor or {}).pop("class_name", "")
    if any(k.startswith("synthesis.fg_nerf.") for k in tensors):  # StyleNeRF: the sidecar's constructor is needed
        if ctor is None or "G_kwargs" not in ctor:
            raise CheckpointError("These are StyleNeRF weights without their constructor arguments; keep the JSON "
                                  "sidecar (NAME.json with 'constructor.G_kwargs') beside the .safetensors file.")
        kwargs = {**ctor["G_kwargs"], **{k: ctor[k] for k in ("c_dim", "img_resolution", "img_channels") if k in ctor}}
        return StyleNeRFGenerator.from_nvlabs(kwargs, tensors)
    if is_nvlabs_eg3d(tensors):  # official TriPlaneGenerator names; the sidecar's constructor is needed
        if ctor is None:
            raise CheckpointError("These are EG3D weights without their constructor arguments; keep the JSON "
                                  "sidecar (NAME.json with 'constructor') beside the .safetensors file.")
        nrr = ctor.pop("neural_rendering_resolution", None)  # an attribute of the official generator
        attrs = {"neural_rendering_resolution": nrr} if nrr is not None else None
        return eg3d_from_nvlabs(config_from_eg3d_kwargs(ctor, attrs), tensors)
    if is_nvlabs_stylegan2(tensors):
        return stylegan2_from_nvlabs(ctor, tensors, class_name=class_name or "training.networks_stylegan2.Generator")
    if "synthesis.input.freqs" in tensors:
        if ctor is not None:
            return StyleGAN3Generator.from_nvlabs(ctor, tensors).eval().requires_grad_(False)
        G = StyleGAN3Generator(config_from_state_dict(tensors))
        load_strict(G, tensors)
        return G.eval().requires_grad_(False)
    if any(k.startswith(("b4.", "b8.", "epilogue.")) for k in tensors):
        raise CheckpointError("These are discriminator weights; the hub needs a generator.")
    raise CheckpointError("Unknown architecture: the .safetensors weights match no supported generator "
                          "(StyleGAN2 rosinality/NVlabs names, StyleGAN3).")
