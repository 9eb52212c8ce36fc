"""NVlabs EG3D (`eg3d/training/triplane.py: TriPlaneGenerator`, github.com/NVlabs/eg3d@7cf1fd1)
-> our `EG3DGenerator`.

`EG3DConfig` comes from the official constructor kwargs plus the two attributes a pickle carries
(`neural_rendering_resolution`, `rendering_kwargs`); tensors are renamed by an explicit table with
shape checks: the backbone through the NVlabs StyleGAN2 table, the super-resolution blocks and the
decoder here. The official `resample_filter` buffers our layers do not need are checked and dropped.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from shared.archs.eg3d import SR_MODULES, EG3DConfig, EG3DGenerator
from shared.errors import CheckpointError
from shared.loaders._common import load_strict
from shared.loaders.nvlabs_stylegan2 import nvlabs_to_rosinality

__all__ = ["config_from_eg3d_kwargs", "eg3d_from_nvlabs", "eg3d_from_persistent", "is_nvlabs_eg3d"]

_CTOR_NAMES = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
# Constructor options that change nothing at inference (rendering options we do not read, such as the
# density regulariser's, are training-only).
_IGNORED = {"num_fp16_res", "sr_num_fp16_res", "fused_modconv_default", "fp16_channels_last", "class_name",
            "sr_kwargs", "architecture", "resample_filter", "use_noise", "activation"}
_UNUSED_FILTER = re.compile(r"superresolution\.(resample_filter|block\d\.conv[01]\.resample_filter)")


def is_nvlabs_eg3d(tensors: Mapping[str, torch.Tensor]) -> bool:
    return "backbone.synthesis.b4.const" in tensors and "decoder.net.0.weight" in tensors


def config_from_eg3d_kwargs(init_kwargs: Mapping[str, Any], attributes: Mapping[str, Any] | None = None,
                            init_args: tuple = ()) -> EG3DConfig:
    """`EG3DConfig` from TriPlaneGenerator's constructor arguments; `attributes` (the pickled
    instance's `neural_rendering_resolution` / `rendering_kwargs`) win over the constructor's."""
    kw = {**dict(zip(_CTOR_NAMES, init_args)), **dict(init_kwargs)}
    attrs = dict(attributes or {})
    for key in _CTOR_NAMES:
        if key not in kw:
            raise CheckpointError(f"The EG3D generator has no {key!r} constructor argument; it cannot be rebuilt.")
    rk = dict(attrs.get("rendering_kwargs") or kw.get("rendering_kwargs") or {})
    mk = dict(kw.get("mapping_kwargs") or {})
    if int(kw["img_channels"]) != 3:
        raise CheckpointError(f"EG3D generators with {kw['img_channels']} image channels are not supported (3 only).")
    unknown = sorted(set(kw) - set(_CTOR_NAMES) - {"mapping_kwargs", "rendering_kwargs", "channel_base",
                                                    "channel_max", "conv_clamp"} - _IGNORED)
    if unknown:
        raise CheckpointError(f"Unsupported EG3D constructor arguments {unknown}: this checkpoint uses a variant "
                              "our generator does not implement.")
    sr = str(rk.get("superresolution_module", "")).rsplit(".", 1)[-1]
    if sr not in SR_MODULES:
        raise CheckpointError(f"Unsupported EG3D super-resolution module {rk.get('superresolution_module')!r} "
                              f"(supported: {', '.join(sorted(SR_MODULES))}).")
    if "auto" in (rk.get("ray_start"), rk.get("ray_end")):
        raise CheckpointError("This EG3D model samples rays between automatic box bounds (ray_start='auto'), "
                              "which the hub does not implement.")
    if rk.get("clamp_mode", "softplus") != "softplus":
        raise CheckpointError(f"EG3D clamp_mode {rk['clamp_mode']!r} is not supported (the official ray "
                              "marcher only supports 'softplus').")
    for key, want in (("architecture", "skip"), ("activation", "lrelu"), ("use_noise", True)):
        if kw.get(key, want) != want:
            raise CheckpointError(f"EG3D backbone with {key}={kw[key]!r} is not supported.")
    if [float(v) for v in kw.get("resample_filter", (1, 3, 3, 1))] != [1.0, 3.0, 3.0, 1.0]:
        raise CheckpointError(f"EG3D backbone with resample_filter={kw['resample_filter']!r} is not supported.")
    pivot = rk.get("avg_camera_pivot", (0, 0, 0))  # gen_samples.py's default when a pickle has none
    try:
        return EG3DConfig(
            z_dim=int(kw["z_dim"]), w_dim=int(kw["w_dim"]), c_dim=int(kw["c_dim"]),
            img_resolution=int(kw["img_resolution"]),
            mapping_layers=int(mk.get("num_layers", 8)), mapping_lr=float(mk.get("lr_multiplier", 0.01)),
            channel_base=int(kw.get("channel_base", 32768)), channel_max=int(kw.get("channel_max", 512)),
            conv_clamp=kw.get("conv_clamp", 256),  # the EG3D SynthesisBlock's own default
            sr_module=sr, sr_conv_clamp=256 if int(kw.get("sr_num_fp16_res", 0)) > 0 else None,
            sr_antialias=bool(rk.get("sr_antialias", True)),
            sr_noise_mode=str(rk.get("superresolution_noise_mode", "none")),
            decoder_lr_mul=float(rk.get("decoder_lr_mul", 1)),
            neural_rendering_resolution=int(attrs.get("neural_rendering_resolution", 64)),
            depth_resolution=int(rk["depth_resolution"]),
            depth_resolution_importance=int(rk.get("depth_resolution_importance", 0)),
            ray_start=float(rk["ray_start"]), ray_end=float(rk["ray_end"]), box_warp=float(rk["box_warp"]),
            disparity_space_sampling=bool(rk.get("disparity_space_sampling", False)),
            white_back=bool(rk.get("white_back", False)),
            c_gen_conditioning_zero=bool(rk.get("c_gen_conditioning_zero", False)),
            c_scale=float(rk.get("c_scale", 0)),  # TriPlaneGenerator.mapping's own default
            avg_camera_radius=float(rk.get("avg_camera_radius", 2.7)),
            avg_camera_pivot=tuple(float(v) for v in pivot))
    except KeyError as e:
        raise CheckpointError(f"The EG3D rendering options lack {e.args[0]!r}; the checkpoint is incomplete.") from None
    except ValueError as e:
        raise CheckpointError(f"The EG3D configuration is not supported: {e}.") from None


def _sr_table(cfg: EG3DConfig) -> list[tuple[str, str, str]]:
    """(official key, our key, rule) for the super-resolution network."""
    rows = []
    for b, (_, _, up) in enumerate(SR_MODULES[cfg.sr_module][3]):
        nv, ours = f"superresolution.block{b}", f"superresolution.block{b}"
        for i in (0, 1):
            rows += [(f"{nv}.conv{i}.weight", f"{ours}.conv{i}.conv.weight", "unsqueeze0"),
                     (f"{nv}.conv{i}.bias", f"{ours}.conv{i}.activate.bias", "same"),
                     (f"{nv}.conv{i}.affine.weight", f"{ours}.conv{i}.conv.modulation.weight", "same"),
                     (f"{nv}.conv{i}.affine.bias", f"{ours}.conv{i}.conv.modulation.bias", "same"),
                     (f"{nv}.conv{i}.noise_strength", f"{ours}.conv{i}.noise.weight", "scalar1"),
                     (f"{nv}.conv{i}.noise_const", f"{ours}.noise{i}", "noise")]
        if up:
            rows.append((f"{nv}.conv0.resample_filter", f"{ours}.conv0.conv.blur.kernel", "times4"))
        rows += [(f"{nv}.torgb.weight", f"{ours}.torgb.conv.weight", "unsqueeze0"),
                 (f"{nv}.torgb.bias", f"{ours}.torgb.bias", "rgb_bias"),
                 (f"{nv}.torgb.affine.weight", f"{ours}.torgb.conv.modulation.weight", "same"),
                 (f"{nv}.torgb.affine.bias", f"{ours}.torgb.conv.modulation.bias", "same"),
                 (f"{nv}.resample_filter", f"{ours}.skip_filter", "same")]
    rows += [(f"decoder.net.{i}.{p}", f"decoder.fc{j}.{p}", "same") for i, j in ((0, 0), (2, 1))
             for p in ("weight", "bias")]
    return rows


_RULES = {"same": lambda t: t, "unsqueeze0": lambda t: t.unsqueeze(0), "scalar1": lambda t: t.reshape(1),
          "noise": lambda t: t.reshape(1, 1, *t.shape[-2:]), "times4": lambda t: t * 4,
          "rgb_bias": lambda t: t.reshape(1, -1, 1, 1)}


def eg3d_from_nvlabs(cfg: EG3DConfig, tensors: Mapping[str, torch.Tensor]) -> EG3DGenerator:
    """Build our EG3D from the official TriPlaneGenerator state dict (`backbone.*`, `superresolution.*`,
    `decoder.net.*`) for the given config."""
    backbone = {k[len("backbone."):]: v for k, v in tensors.items() if k.startswith("backbone.")}
    sd_bb, w_avg = nvlabs_to_rosinality(backbone, cfg.backbone)
    sd = {f"backbone.{k}": v for k, v in sd_bb.items()}
    used = {f"backbone.{k}" for k in backbone}
    for nv, ours, rule in _sr_table(cfg):
        if nv not in tensors:
            raise CheckpointError(f"The EG3D weights lack {nv!r}; the file is incomplete or another variant.")
        sd[ours] = _RULES[rule](tensors[nv].float())
        used.add(nv)
    extra = sorted(k for k in set(tensors) - used if not _UNUSED_FILTER.fullmatch(k))
    if extra:
        raise CheckpointError(f"The EG3D weights hold tensors this architecture does not have ({extra[:4]}); "
                              "the checkpoint is another variant.")
    G = EG3DGenerator(cfg)
    load_strict(G, sd)
    if w_avg is not None:
        G.w_avg.copy_(w_avg.float())
    return G.eval().requires_grad_(False)


def eg3d_from_persistent(net: Any) -> EG3DGenerator:
    """Our EG3D from a harvested `PersistentObject` of class TriPlaneGenerator."""
    attrs = net.attributes()
    cfg = config_from_eg3d_kwargs(net.init_kwargs, attrs, tuple(net.init_args))
    return eg3d_from_nvlabs(cfg, net.tensors())
