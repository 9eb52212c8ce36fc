"""Safe reader for the TensorFlow network pickles of NVlabs/stylegan@1e0d5c78 and
NVlabs/stylegan2@bf0fe0ba (`karras2019stylegan-*.pkl`, `stylegan2-*-config-f.pkl`), without TensorFlow.

The official `dnnlib.tflib.network.Network.__getstate__` pickles each network as a `Network`
instance whose state is a dict: `version` (2-4), `name`, `static_kwargs`, `components` (sub-networks,
e.g. Gs's `mapping` and `synthesis`), `build_module_src` (the full source of the module that builds
it), `build_func_name`, and `variables`, a list of (local name, numpy array). The published files
hold the tuple (G, D, Gs). The official `__setstate__` `exec`s `build_module_src`; this reader never
does: a restricted `pickle.Unpickler` maps `dnnlib.tflib.network.Network` onto an inert stand-in that
only stores the state, allows the numpy array/scalar rebuilders (numpy 1.x and 2.x spellings),
`dnnlib` EasyDict (as a dict) and `collections.OrderedDict`, and refuses every other global with
its name before anything runs. The stand-ins become frozen `TFNetwork` records (source dropped,
only its length and sha256 kept).

Mapping onto our generators is an explicit table with shape checks: StyleGAN v1 Gs ->
`shared.archs.stylegan1.StyleGAN1Generator`; StyleGAN2 Gs -> the NVlabs PyTorch names (as
NVlabs/stylegan2-ada-pytorch `legacy.py` renames them) -> `StyleGAN2Generator`.
"""
from __future__ import annotations

import hashlib
import math
import os
import pickle
import re
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import torch

from shared.archs.stylegan1 import StyleGAN1Config, StyleGAN1Generator
from shared.archs.stylegan2 import StyleGAN2Generator
from shared.errors import CheckpointError, UnsafePickleError
from shared.loaders._common import load_strict
from shared.loaders.nvlabs_pickle import (_EasyDictStandIn, _check_head, _label, _latin1_encode,
                                          _np_multiarray, _np_numeric, _replace_easydicts)
from shared.loaders.nvlabs_stylegan2 import config_from_nvlabs_state_dict, nvlabs_to_rosinality

__all__ = ["TFNetwork", "TFUnpickler", "generator_from_tf", "is_tf_pickle_head", "read_tf_pickle",
           "stylegan1_from_tf", "stylegan2_from_tf", "tf_stylegan2_to_nvlabs"]

TF_NETWORK_GLOBAL = b"dnnlib.tflib.network"


def is_tf_pickle_head(head: bytes) -> bool:
    """Whether the first bytes of a pickle (a few KB) name the TF `Network` class: the official
    files start with the (G, D, Gs) tuple, so the class global comes right after the header."""
    return TF_NETWORK_GLOBAL in head


@dataclass(frozen=True, eq=False)
class TFNetwork:
    """One `dnnlib.tflib.network.Network`, as data.

    name:            'G', 'D', 'Gs', 'G_mapping', 'G_synthesis', ...
    build_func_name: 'G_style' (v1), 'G_main' (StyleGAN2), 'G_mapping', 'G_synthesis', ...
    static_kwargs:   constructor kwargs as plain data.
    components:      sub-networks by name ('mapping', 'synthesis').
    variables:       own variables by local name ('Dense0/weight', 'dlatent_avg', ...) as numpy arrays.
    version:         tflib pickle version (2, 3 or 4).
    module_src_len, module_src_sha256: of the dropped build source (identification only).
    """
    name: str
    build_func_name: str
    static_kwargs: dict
    components: dict
    variables: dict
    version: int
    module_src_len: int
    module_src_sha256: str

    def all_variables(self) -> dict[str, np.ndarray]:
        """Own variables plus every component's, the latter as 'component/local name'."""
        out = dict(self.variables)
        for cname, comp in self.components.items():
            out.update({f"{cname}/{k}": v for k, v in comp.all_variables().items()})
        return out


class _NetworkStandIn:
    """What `dnnlib.tflib.network.Network` unpickles into: the state dict is stored, nothing runs."""

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _record(obj: Any, path: str) -> TFNetwork:
    state = getattr(obj, "state", None)
    if not isinstance(state, dict) or "variables" not in state or "name" not in state:
        raise CheckpointError(f"the network at {path or 'the top'} has no name or variables (not a tflib Network)")
    src = state.get("build_module_src") or ""
    src_bytes = src.encode("utf-8", "replace") if isinstance(src, str) else bytes(src)
    variables = OrderedDict()
    for item in state["variables"]:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
            raise CheckpointError(f"a variable entry of {state['name']!r} is not a (name, array) pair")
        value = item[1]
        if not isinstance(value, (np.ndarray, np.generic, float, int)):
            raise CheckpointError(f"variable {item[0]!r} of {state['name']!r} is a {type(value).__name__}, not an array")
        variables[item[0]] = np.asarray(value)
    components = {}
    for cname, comp in (state.get("components") or {}).items():
        components[str(cname)] = _record(comp, f"{path}/{cname}")
    return TFNetwork(name=str(state["name"]), build_func_name=str(state.get("build_func_name") or ""),
                     static_kwargs=_plain(dict(state.get("static_kwargs") or {})), components=components,
                     variables=dict(variables), version=int(state.get("version", 0)),
                     module_src_len=len(src_bytes), module_src_sha256=hashlib.sha256(src_bytes).hexdigest())


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


def _globals() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {
        ("dnnlib.tflib.network", "Network"): _NetworkStandIn,
        ("dnnlib", "EasyDict"): _EasyDictStandIn,
        ("dnnlib.util", "EasyDict"): _EasyDictStandIn,
        ("collections", "OrderedDict"): OrderedDict,
        ("_codecs", "encode"): _latin1_encode,
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
        ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
    }
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "scalar")] = _np_multiarray.scalar
        table[(f"{core}.multiarray", "_reconstruct")] = _np_multiarray._reconstruct
        table[(f"{core}.numeric", "_frombuffer")] = _np_numeric._frombuffer
    return table


_GLOBALS = _globals()


class TFUnpickler(pickle.Unpickler):
    """Resolves only the allow-list above; any other global raises `UnsafePickleError` naming it."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        err = UnsafePickleError(f"refers to the Python global '{module}.{name}'")
        err.global_name = f"{module}.{name}"  # type: ignore[attr-defined]
        raise err

    def persistent_load(self, pid: Any) -> Any:
        raise CheckpointError("it uses pickle persistent ids, which TF network pickles never do")


def read_tf_pickle(file: str | os.PathLike | BinaryIO) -> TFNetwork | tuple[TFNetwork, ...]:
    """Read a TF network pickle without TensorFlow and without executing anything in it.

    Returns:
        the pickled network(s) as `TFNetwork` records: the official (G, D, Gs) tuple, or one network.
    Raises:
        UnsafePickleError: a global outside the allow-list (named); nothing was run.
        CheckpointError: empty, HTML, truncated, damaged, or not TF networks (one sentence).
    """
    label = _label(file)
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            return _read(f, label)
    return _read(file, label)


def _read(f: BinaryIO, label: str) -> TFNetwork | tuple[TFNetwork, ...]:
    start = f.tell()
    _check_head(f.read(64), label)
    f.seek(start)
    try:
        obj = _replace_easydicts(TFUnpickler(f).load())
    except UnsafePickleError as e:
        name = getattr(e, "global_name", "an unknown global")
        err = UnsafePickleError(f"{label} was refused: it refers to the Python global '{name}', which a "
                                "TensorFlow StyleGAN network pickle never needs, and nothing in it was run.")
        err.global_name = name  # type: ignore[attr-defined]
        raise err from None
    except EOFError:
        raise CheckpointError(f"{label} ends too early (it is truncated, most likely by an interrupted "
                              "download); download it again.") from None
    except pickle.UnpicklingError as e:
        if "truncated" in str(e) or "ran out" in str(e).lower():
            raise CheckpointError(f"{label} ends too early (it is truncated, most likely by an interrupted "
                                  "download); download it again.") from None
        raise CheckpointError(f"{label} is not a pickle file (or is badly damaged).") from None
    except CheckpointError as e:
        raise CheckpointError(f"{label} is not a valid TF network pickle: {e}.") from None
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError, struct.error,
            RecursionError) as e:
        raise CheckpointError(f"{label} is not a valid TF network pickle: it is damaged ({type(e).__name__}).") from None
    try:
        if isinstance(obj, (tuple, list)) and obj and all(isinstance(o, _NetworkStandIn) for o in obj):
            return tuple(_record(o, "") for o in obj)
        if isinstance(obj, _NetworkStandIn):
            return _record(obj, "")
    except CheckpointError as e:
        raise CheckpointError(f"{label} is not a valid TF network pickle: {e}.") from None
    raise CheckpointError(f"{label} holds a {type(obj).__name__}, not TensorFlow networks (expected the "
                          "official (G, D, Gs) tuple).")


# ---- onto our generators ---------------------------------------------------------------------------
def _gs(obj: TFNetwork | tuple[TFNetwork, ...]) -> TFNetwork:
    """The averaged generator: Gs of the (G, D, Gs) tuple, or a lone generator network."""
    nets = obj if isinstance(obj, tuple) else (obj,)
    for name in ("Gs", "G"):
        for net in nets:
            if net.name == name and {"mapping", "synthesis"} <= set(net.components):
                return net
    gens = [n for n in nets if {"mapping", "synthesis"} <= set(n.components)]
    if gens:
        return gens[-1]
    raise CheckpointError("This TF pickle holds no generator (a network with 'mapping' and 'synthesis' "
                          f"components); found {[n.name for n in nets]}.")


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32, copy=True))


def _need(vs: dict, key: str, shape: tuple | None = None) -> np.ndarray:
    if key not in vs:
        raise CheckpointError(f"The TF generator lacks the variable {key!r}; the file is incomplete or another "
                              "architecture.")
    if shape is not None and tuple(vs[key].shape) != tuple(shape):
        raise CheckpointError(f"The TF variable {key!r} has shape {list(vs[key].shape)}, expected {list(shape)}.")
    return vs[key]


def _common_checks(gs: TFNetwork) -> tuple[dict, dict, dict]:
    mv, sv = gs.components["mapping"].variables, gs.components["synthesis"].variables
    if "LabelConcat/weight" in mv:
        raise CheckpointError("This TF generator is class-conditional (LabelConcat); only unconditional TF "
                              "networks (all official ones) are supported.")
    lod = float(np.asarray(sv.get("lod", gs.variables.get("lod", 0.0))))
    if lod != 0:
        raise CheckpointError(f"This TF generator was saved mid-way through progressive growing (lod {lod:g}); "
                              "only finished networks (lod 0) are supported.")
    return gs.variables, mv, sv


def _resolution(sv: dict, conv: str) -> int:
    res = [int(m.group(1)) for k in sv if (m := re.fullmatch(rf"(\d+)x\1/{conv}/weight", k))]
    if not res:
        raise CheckpointError("The TF synthesis network has no convolution layers it could be read from.")
    return max(res)


def _mapping_table(mv: dict) -> list[tuple[str, str, np.ndarray]]:
    n = len([k for k in mv if re.fullmatch(r"Dense\d+/weight", k)])
    out = []
    for i in range(n):
        out.append((f"Dense{i}/weight", f"fc{i}.weight", _need(mv, f"Dense{i}/weight").T))
        out.append((f"Dense{i}/bias", f"fc{i}.bias", _need(mv, f"Dense{i}/bias")))
    return out


def stylegan1_from_tf(gs: TFNetwork, *, crop: tuple[int, int, int, int] | None = None) -> StyleGAN1Generator:
    """Our StyleGAN (v1) generator from the official v1 Gs record (lod 0, unconditional).
    `crop` (top, left, height, width) cuts the output (cars: (64, 0, 384, 512))."""
    own, mv, sv = _common_checks(gs)
    res = _resolution(sv, "Conv1") if "8x8/Conv1/weight" in sv else 4
    log2 = int(math.log2(res))
    chans = tuple((2 ** r, int(_need(sv, f"{2 ** r}x{2 ** r}/{'Conv' if r == 2 else 'Conv1'}/weight").shape[3]))
                  for r in range(2, log2 + 1))
    dense0 = _need(mv, "Dense0/weight")
    n_map = len([k for k in mv if re.fullmatch(r"Dense\d+/weight", k)])
    cfg = StyleGAN1Config(
        z_dim=int(dense0.shape[0]), w_dim=int(_need(mv, f"Dense{n_map - 1}/weight").shape[1]), img_resolution=res,
        img_channels=int(_need(sv, "ToRGB_lod0/weight").shape[3]), mapping_layers=n_map,
        mapping_hidden=int(dense0.shape[1]), channels=chans,
        fused_scale=_fused_rule(gs), crop=crop)
    G = StyleGAN1Generator(cfg)
    sd: dict[str, torch.Tensor] = {f"mapping.{k.replace('fc', 'fcs.')}": _t(v) for _, k, v in _mapping_table(mv)}
    sd["mapping.w_avg"] = _t(_need(own, "dlatent_avg", (cfg.w_dim,)))
    sd["synthesis.const"] = _t(_need(sv, "4x4/Const/const")[0])
    scopes = ["4x4/Const", "4x4/Conv"] + [f"{2 ** r}x{2 ** r}/{n}" for r in range(3, log2 + 1)
                                          for n in ("Conv0_up", "Conv1")]
    for i, scope in enumerate(scopes):
        p = f"synthesis.layers.{i}"
        if i:
            sd[f"{p}.weight"] = _t(_need(sv, f"{scope}/weight").transpose(3, 2, 0, 1))   # [k,k,in,out] -> [out,in,k,k]
        sd[f"{p}.noise_strength"] = _t(_need(sv, f"{scope}/Noise/weight"))
        sd[f"{p}.bias"] = _t(_need(sv, f"{scope}/bias"))
        sd[f"{p}.style.weight"] = _t(_need(sv, f"{scope}/StyleMod/weight").T)
        sd[f"{p}.style.bias"] = _t(_need(sv, f"{scope}/StyleMod/bias"))
        sd[f"{p}.noise_const"] = _t(_need(sv, f"noise{i}"))
    sd["synthesis.torgb.weight"] = _t(_need(sv, "ToRGB_lod0/weight")[0, 0].T)                # [1,1,C,3] -> [3,C]
    sd["synthesis.torgb.bias"] = _t(_need(sv, "ToRGB_lod0/bias"))
    load_strict(G, sd)
    return G.eval().requires_grad_(False)


def _fused_rule(gs: TFNetwork) -> str:
    """The official fused_scale setting: 'auto' unless the static kwargs say True or False."""
    value = gs.components["synthesis"].static_kwargs.get("fused_scale", gs.static_kwargs.get("fused_scale", "auto"))
    return "always" if value is True else "never" if value is False else "auto"


def tf_stylegan2_to_nvlabs(gs: TFNetwork) -> dict[str, torch.Tensor]:
    """The official StyleGAN2 TF Gs variables under the NVlabs PyTorch names (the renaming of
    NVlabs/stylegan2-ada-pytorch `legacy.py`): dense weights transposed, conv weights [k,k,in,out] ->
    [out,in,k,k], Conv0_up kernels flipped (the TF layer is a transposed conv), affine biases + 1,
    noise inputs as each layer's noise_const, the [1,3,3,1] resample filters."""
    own, mv, sv = _common_checks(gs)
    res = _resolution(sv, "Conv1") if "8x8/Conv1/weight" in sv else 4
    out: dict[str, torch.Tensor] = {f"mapping.{k}": _t(v) for _, k, v in _mapping_table(mv)}
    out["mapping.w_avg"] = _t(_need(own, "dlatent_avg"))
    out["synthesis.b4.const"] = _t(_need(sv, "4x4/Const/const")[0])
    f = np.array([1, 3, 3, 1], dtype=np.float32)
    f2 = torch.from_numpy(np.outer(f, f) / np.outer(f, f).sum())

    def modconv(scope: str, dst: str, noise: int | None, flip: bool = False) -> None:
        w = _need(sv, f"{scope}/weight")
        w = w[::-1, ::-1] if flip else w
        out[f"{dst}.weight"] = _t(w.transpose(3, 2, 0, 1))
        out[f"{dst}.bias"] = _t(_need(sv, f"{scope}/bias"))
        out[f"{dst}.affine.weight"] = _t(_need(sv, f"{scope}/mod_weight").T)
        out[f"{dst}.affine.bias"] = _t(_need(sv, f"{scope}/mod_bias") + 1)
        if noise is not None:
            out[f"{dst}.noise_strength"] = _t(_need(sv, f"{scope}/noise_strength"))
            out[f"{dst}.noise_const"] = _t(_need(sv, f"noise{noise}")[0, 0])
            out[f"{dst}.resample_filter"] = f2.clone()

    modconv("4x4/Conv", "synthesis.b4.conv1", 0)
    modconv("4x4/ToRGB", "synthesis.b4.torgb", None)
    for i in range(1, int(math.log2(res)) - 1):
        r = 4 * 2 ** i
        modconv(f"{r}x{r}/Conv0_up", f"synthesis.b{r}.conv0", 2 * i - 1, flip=True)
        modconv(f"{r}x{r}/Conv1", f"synthesis.b{r}.conv1", 2 * i)
        modconv(f"{r}x{r}/ToRGB", f"synthesis.b{r}.torgb", None)
        out[f"synthesis.b{r}.resample_filter"] = f2.clone()
    return out


def stylegan2_from_tf(gs: TFNetwork) -> StyleGAN2Generator:
    """Our StyleGAN2 generator from the official StyleGAN2 TF Gs record (skip architecture, no clamping)."""
    arch = gs.components["synthesis"].static_kwargs.get("architecture", "skip")
    if arch != "skip":
        raise CheckpointError(f"This TF StyleGAN2 generator uses architecture {arch!r}; only 'skip' (config e/f) "
                              "is supported.")
    tensors = tf_stylegan2_to_nvlabs(gs)
    cfg = config_from_nvlabs_state_dict(tensors, conv_clamp=None)
    sd, w_avg = nvlabs_to_rosinality(tensors, cfg)
    G = StyleGAN2Generator(cfg)
    load_strict(G, sd)
    G.w_avg.copy_(w_avg.float())
    return G.eval().requires_grad_(False)


def generator_from_tf(obj: TFNetwork | tuple[TFNetwork, ...], *,
                      crop: tuple[int, int, int, int] | None = None) -> torch.nn.Module:
    """Our generator for a read TF pickle, told apart by its variables: StyleGAN v1 (StyleMod layers)
    or StyleGAN2 (modulated convs)."""
    gs = _gs(obj)
    sv = gs.components["synthesis"].variables
    if "4x4/Const/StyleMod/weight" in sv:
        return stylegan1_from_tf(gs, crop=crop)
    if "4x4/Conv/mod_weight" in sv:
        if crop is not None:
            raise CheckpointError("crop is only defined for StyleGAN (v1) networks.")
        return stylegan2_from_tf(gs)
    raise CheckpointError(f"Unknown TF generator ({gs.build_func_name or gs.name}): neither StyleGAN (v1) nor "
                          "StyleGAN2 layers were found.")
