"""NVlabs StyleGAN2 (stylegan2-ada-pytorch `training/networks.py`, stylegan3
`training/networks_stylegan2.py`, github.com/NVlabs) <-> our rosinality-named StyleGAN2.

An explicit key-by-key table (REFERENCE §4) with shape checks, in both directions, and the
construction of `StyleGAN2Config` from the official constructor kwargs.
"""
from __future__ import annotations

import math
import re

import torch

from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from shared.errors import CheckpointError
from shared.loaders._common import load_strict

__all__ = ["config_from_nvlabs_kwargs", "config_from_nvlabs_state_dict", "nvlabs_to_rosinality",
           "rosinality_to_nvlabs", "stylegan2_from_nvlabs", "is_nvlabs_stylegan2"]

# Constructor kwargs that change nothing at inference (or that we handle) and are accepted silently.
_IGNORED = {"num_fp16_res", "fused_modconv_default", "fp16_channels_last", "channels_last", "epochs",
            "class_name", "w_avg_beta", "square"}


def is_nvlabs_stylegan2(sd: dict) -> bool:
    return "synthesis.b4.const" in sd and "mapping.fc0.weight" in sd


def _flatten_kwargs(kwargs: dict) -> dict:
    kw = dict(kwargs)
    syn = dict(kw.pop("synthesis_kwargs", None) or {})  # ADA nests them, stylegan3's repo flattens them
    kw.update(syn)
    return kw


def config_from_nvlabs_kwargs(init_kwargs: dict, class_name: str = "training.networks_stylegan2.Generator",
                              init_args: tuple = ()) -> StyleGAN2Config:
    """`StyleGAN2Config` from the official Generator's constructor arguments."""
    names = ["z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"]
    kw = _flatten_kwargs({**dict(zip(names, init_args)), **init_kwargs})
    mk = dict(kw.pop("mapping_kwargs", None) or {})
    for key in names:
        if key not in kw:
            raise CheckpointError(f"The pickled generator has no {key!r} constructor argument; it is not a "
                                  "StyleGAN2 generator we can rebuild.")
    arch = kw.pop("architecture", "skip")
    if arch != "skip":
        raise CheckpointError(f"StyleGAN2 architecture {arch!r} is not supported (only the official 'skip' "
                              "generator architecture is).")
    for key, want in (("activation", "lrelu"), ("use_noise", True)):
        if kw.get(key, want) != want:
            raise CheckpointError(f"StyleGAN2 generator with {key}={kw[key]!r} is not supported.")
    if mk.get("activation", "lrelu") != "lrelu":
        raise CheckpointError(f"Mapping activation {mk['activation']!r} is not supported.")
    # The stylegan3 repo's SynthesisBlock clamps at 256 by default, stylegan2-ada's does not.
    default_clamp = 256 if class_name.endswith("networks_stylegan2.Generator") else None
    known = set(names) | {"channel_base", "channel_max", "conv_clamp", "resample_filter", "activation", "use_noise"}
    unknown = sorted(set(kw) - known - _IGNORED)
    if unknown:
        raise CheckpointError(f"Unsupported StyleGAN2 constructor arguments {unknown}: this checkpoint uses a "
                              "variant our generator does not implement.")
    filt = kw.get("resample_filter", [1, 3, 3, 1])
    cfg = StyleGAN2Config.nvlabs(
        z_dim=int(kw["z_dim"]), w_dim=int(kw["w_dim"]), c_dim=int(kw["c_dim"]),
        img_resolution=int(kw["img_resolution"]), img_channels=int(kw["img_channels"]),
        channel_base=int(kw.get("channel_base", 32768)), channel_max=int(kw.get("channel_max", 512)),
        mapping_layers=int(mk.get("num_layers", 8)), mapping_lr=float(mk.get("lr_multiplier", 0.01)),
        conv_clamp=kw.get("conv_clamp", default_clamp),
        mapping_hidden=mk.get("layer_features"), embed_features=mk.get("embed_features"),
        resample_kernel=tuple(float(v) for v in filt), num_fp16_res=int(kw.get("num_fp16_res", 4)))
    return cfg


def config_from_nvlabs_state_dict(sd: dict[str, torch.Tensor], conv_clamp: float | None = 256) -> StyleGAN2Config:
    """Infer the config from NVlabs keys and shapes (for bare state dicts without kwargs)."""
    n_map = len([k for k in sd if re.fullmatch(r"mapping\.fc\d+\.weight", k)])
    res = max(int(m.group(1)) for k in sd if (m := re.fullmatch(r"synthesis\.b(\d+)\.conv1\.weight", k)))
    chans = tuple((2 ** i, int(sd[f"synthesis.b{2 ** i}.conv1.weight"].shape[0]))
                  for i in range(2, int(math.log2(res)) + 1))
    c_dim = int(sd["mapping.embed.weight"].shape[1]) if "mapping.embed.weight" in sd else 0
    embed = int(sd["mapping.embed.weight"].shape[0]) if c_dim else None
    return StyleGAN2Config(
        z_dim=int(sd["mapping.fc0.weight"].shape[1]) - (embed or 0), w_dim=int(sd[f"mapping.fc{n_map - 1}.weight"].shape[0]),
        c_dim=c_dim, img_resolution=res, img_channels=int(sd["synthesis.b4.torgb.weight"].shape[0]),
        mapping_layers=n_map, mapping_hidden=int(sd["mapping.fc0.weight"].shape[0]) if n_map > 1 else None,
        embed_features=embed, channels=chans, conv_clamp=conv_clamp)


def _key_table(cfg: StyleGAN2Config) -> list[tuple[str, str, str]]:
    """(nvlabs key, rosinality key, shape rule) for every generator tensor."""
    rows = [(f"mapping.fc{k}.{p}", f"style.{k + 1}.{p}", "same") for k in range(cfg.mapping_layers)
            for p in ("weight", "bias")]
    if cfg.c_dim:
        rows += [(f"mapping.embed.{p}", f"embed.{p}", "same") for p in ("weight", "bias")]
    rows.append(("synthesis.b4.const", "input.input", "unsqueeze0"))

    def layer(nv, ro, noise_idx, up):
        out = [(f"{nv}.weight", f"{ro}.conv.weight", "unsqueeze0"), (f"{nv}.bias", f"{ro}.activate.bias", "same"),
               (f"{nv}.affine.weight", f"{ro}.conv.modulation.weight", "same"),
               (f"{nv}.affine.bias", f"{ro}.conv.modulation.bias", "same"),
               (f"{nv}.noise_strength", f"{ro}.noise.weight", "scalar1"),
               (f"{nv}.noise_const", f"noises.noise_{noise_idx}", "noise")]
        if up:
            out.append((f"{nv}.resample_filter", f"{ro}.conv.blur.kernel", "times4"))
        return out

    def torgb(nv, ro, up_src):
        out = [(f"{nv}.weight", f"{ro}.conv.weight", "unsqueeze0"), (f"{nv}.bias", f"{ro}.bias", "rgb_bias"),
               (f"{nv}.affine.weight", f"{ro}.conv.modulation.weight", "same"),
               (f"{nv}.affine.bias", f"{ro}.conv.modulation.bias", "same")]
        if up_src:
            out.append((up_src, f"{ro}.upsample.kernel", "times4"))
        return out

    rows += layer("synthesis.b4.conv1", "conv1", 0, False)
    rows += torgb("synthesis.b4.torgb", "to_rgb1", None)
    for i in range(1, int(math.log2(cfg.img_resolution)) - 1):
        b = f"synthesis.b{4 * 2 ** i}"
        rows += layer(f"{b}.conv0", f"convs.{2 * i - 2}", 2 * i - 1, True)
        rows += layer(f"{b}.conv1", f"convs.{2 * i - 1}", 2 * i, False)
        rows += torgb(f"{b}.torgb", f"to_rgbs.{i - 1}", f"{b}.resample_filter")
    return rows


_TO_ROS = {"same": lambda t: t, "unsqueeze0": lambda t: t.unsqueeze(0), "scalar1": lambda t: t.reshape(1),
           "noise": lambda t: t.reshape(1, 1, *t.shape[-2:]), "times4": lambda t: t * 4,
           "rgb_bias": lambda t: t.reshape(1, -1, 1, 1)}
_TO_NV = {"same": lambda t: t, "unsqueeze0": lambda t: t.squeeze(0), "scalar1": lambda t: t.reshape(()),
          "noise": lambda t: t.reshape(t.shape[-2:]), "times4": lambda t: t / 4, "rgb_bias": lambda t: t.reshape(-1)}


def nvlabs_to_rosinality(sd: dict[str, torch.Tensor], cfg: StyleGAN2Config) -> tuple[dict, torch.Tensor | None]:
    """Rename an NVlabs generator state dict; returns (rosinality state dict, w_avg or None)."""
    out = {}
    for nv, ro, rule in _key_table(cfg):
        if nv not in sd:
            raise CheckpointError(f"The NVlabs StyleGAN2 weights lack {nv!r}; the file is incomplete or another "
                                  "architecture.")
        out[ro] = _TO_ROS[rule](sd[nv].float())
    return out, sd.get("mapping.w_avg")


def rosinality_to_nvlabs(G: StyleGAN2Generator) -> dict[str, torch.Tensor]:
    """Our generator's weights under the official NVlabs names (w_avg included)."""
    own = G.state_dict()
    out = {nv: _TO_NV[rule](own[ro]).clone() for nv, ro, rule in _key_table(G.config)}
    f = torch.tensor(G.config.resample_kernel)
    f2 = torch.outer(f, f) / torch.outer(f, f).sum()
    for i in range(2, int(math.log2(G.img_resolution)) + 1):  # buffers our layers do not need
        b = f"synthesis.b{2 ** i}"
        out.setdefault(f"{b}.resample_filter", f2.clone())
        out[f"{b}.conv1.resample_filter"] = f2.clone()
    out["mapping.w_avg"] = G.w_avg.clone()
    return out


def stylegan2_from_nvlabs(init_kwargs: dict | None, tensors: dict[str, torch.Tensor], *,
                          class_name: str = "training.networks_stylegan2.Generator",
                          init_args: tuple = ()) -> StyleGAN2Generator:
    """Build our StyleGAN2 from an NVlabs Generator's kwargs (None = infer from shapes) and tensors."""
    cfg = (config_from_nvlabs_kwargs(init_kwargs, class_name, init_args) if init_kwargs is not None
           else config_from_nvlabs_state_dict(tensors))
    sd, w_avg = nvlabs_to_rosinality(tensors, cfg)
    G = StyleGAN2Generator(cfg)
    load_strict(G, sd)
    if w_avg is not None:
        G.w_avg.copy_(w_avg.float())
    return G.eval().requires_grad_(False)
