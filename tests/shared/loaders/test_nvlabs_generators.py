"""NVlabs persistence pickles through `load_generator`: official-structure snapshots written
from the parity weights (StyleGAN2 in both repos' kwargs layouts, StyleGAN3 T and R) load into
our modules and reproduce the official outputs; malicious pickles are refused and nothing runs."""
import copy
import os
import pickle

import pytest
import torch
from torch import nn

from shared import load_generator
from shared.errors import CheckpointError, UnsafePickleError
from tests.shared.loaders.nvlabs_pickles import EasyDict, write_nvlabs_pickle
from tests.parity import IMG_TOL, WS_TOL, load_vector, rel_err

_PARAM_NAMES = {"weight", "bias", "const", "noise_strength"}
# Official class of each submodule path component (networks_stylegan2.py).
_CLASS_OF = {"mapping": "MappingNetwork", "synthesis": "SynthesisNetwork", "affine": "FullyConnectedLayer",
             "torgb": "ToRGBLayer", "embed": "FullyConnectedLayer"}


def _official_class(name: str) -> str:
    if name in _CLASS_OF:
        return _CLASS_OF[name]
    if name.startswith("fc"):
        return "FullyConnectedLayer"
    if name.startswith("b") and name[1:].isdigit():
        return "SynthesisBlock"
    if name in ("conv0", "conv1"):
        return "SynthesisLayer"
    raise KeyError(name)


def nvlabs_module_tree(sd: dict[str, torch.Tensor], top: str = "Generator") -> nn.Module:
    """An nn.Module tree with the official NVlabs StyleGAN2 structure holding `sd`
    (parameters and buffers as the official classes register them)."""
    classes: dict[str, type] = {}

    def make(cls_name):
        if cls_name not in classes:
            classes[cls_name] = type(cls_name, (nn.Module,), {})
        return classes[cls_name]()

    root = make(top)
    for key, value in sd.items():
        *path, leaf = key.split(".")
        mod = root
        for part in path:
            if not hasattr(mod, part):
                mod.add_module(part, make(_official_class(part)))
            mod = getattr(mod, part)
        if leaf in _PARAM_NAMES:
            mod.register_parameter(leaf, nn.Parameter(value.clone()))
        else:
            mod.register_buffer(leaf, value.clone())
    return root


def _dummy_d() -> nn.Module:
    d = type("Discriminator", (nn.Module,), {})()
    d.register_parameter("weight", nn.Parameter(torch.zeros(4)))
    return d


@pytest.fixture(scope="module")
def sg2(parity_dir):
    sd, t, meta = load_vector(parity_dir, "nvlabs_sg2_g64")
    kw = dict(meta["constructor"])
    kw.pop("class_name")
    return sd, t, kw


@torch.no_grad()
@pytest.mark.parametrize("layout", ["stylegan3-repo", "ada"])
@pytest.mark.parametrize("spelling", ["numpy.core", "numpy._core"])
def test_stylegan2_snapshot(sg2, tmp_path, layout, spelling):
    sd, t, kw = sg2
    kw = copy.deepcopy(kw)
    if layout == "ada":  # stylegan2-ada-pytorch: training.networks.Generator, nested synthesis_kwargs
        syn = EasyDict(channel_base=kw.pop("channel_base"), channel_max=kw.pop("channel_max"),
                       num_fp16_res=4, conv_clamp=256)
        kw = {**kw, "synthesis_kwargs": syn, "mapping_kwargs": EasyDict(kw["mapping_kwargs"])}
        class_name = "training.networks.Generator"
    else:
        kw = {**kw, "mapping_kwargs": EasyDict(kw["mapping_kwargs"])}
        class_name = "training.networks_stylegan2.Generator"
    kw["mapping_kwargs"]["w_avg_beta"] = __import__("numpy").float64(0.995)  # numpy scalar in kwargs
    G_off = nvlabs_module_tree(sd)
    path = write_nvlabs_pickle(tmp_path / "network-snapshot-000000.pkl",
                               {"G": (class_name, kw, G_off), "D": ("training.networks.Discriminator", {}, _dummy_d()),
                                "G_ema": (class_name, kw, G_off)}, numpy_spelling=spelling, protocol=3)
    G = load_generator(path)
    assert G.arch == "stylegan2" and G.config.conv_clamp == 256
    z = t["z"]
    assert rel_err(G(z, None, noise_mode="const"), t["a.img"]) <= IMG_TOL
    assert rel_err(G(z, None, truncation_psi=0.7), t["b.img"]) <= IMG_TOL
    assert rel_err(G.mapping(z, None), t["c.ws"]) <= WS_TOL
    assert rel_err(G.synthesis(t["d.ws"]), t["d.img"]) <= IMG_TOL


@torch.no_grad()
@pytest.mark.parametrize("name", ["nvlabs_sg3t_g64", "nvlabs_sg3r_g64"])
def test_stylegan3_snapshot(tmp_path, name, parity_dir):
    from shared.archs.stylegan3 import StyleGAN3Generator
    sd, t, meta = load_vector(parity_dir, name)
    kw = dict(meta["constructor"])
    class_name = kw.pop("class_name", "training.networks_stylegan3.Generator")
    kw["mapping_kwargs"] = EasyDict(kw.get("mapping_kwargs", {}))
    official = StyleGAN3Generator.from_nvlabs(kw, sd)  # a module tree with the official names
    path = write_nvlabs_pickle(tmp_path / "stylegan3.pkl", {"G_ema": (class_name, kw, official)})
    G = load_generator(path)
    assert G.arch == "stylegan3"
    z = t["z"]
    assert rel_err(G.mapping(z, None, truncation_psi=0.7), t["c.ws_trunc"]) <= WS_TOL
    assert rel_err(G(z, None, noise_mode="const"), t["a.img"]) <= IMG_TOL
    G.synthesis.input.transform.copy_(t["e.transform"])
    assert rel_err(G.synthesis(t["d.ws"]), t["f.img"]) <= IMG_TOL


def test_discriminator_only_snapshot(tmp_path):
    path = write_nvlabs_pickle(tmp_path / "d.pkl", {"D": ("training.networks.Discriminator", {}, _dummy_d())})
    with pytest.raises(CheckpointError, match="only a discriminator"):
        load_generator(path)


def test_unknown_nvlabs_architecture(tmp_path):
    net = type("Generator", (nn.Module,), {})()
    net.register_parameter("foo", nn.Parameter(torch.zeros(2)))
    path = write_nvlabs_pickle(tmp_path / "odd.pkl", {"G_ema": ("training.odd.Generator", {}, net)})
    with pytest.raises(CheckpointError, match="Unknown architecture"):
        load_generator(path)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("payload", ["os.system", "eval"])
def test_malicious_pickle_refused_and_nothing_ran(tmp_path, payload):
    marker = tmp_path / "pwned"
    if payload == "os.system":
        obj = {"G_ema": _Evil(marker)}
    else:
        class _Eval:
            def __reduce__(self):
                return (eval, (f"open({str(marker)!r}, 'w').close()",))
        obj = {"G_ema": _Eval()}
    path = tmp_path / "stylegan2-ffhq-1024x1024.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=4))
    with pytest.raises(UnsafePickleError) as e:
        load_generator(path)
    assert ("system" in str(e.value)) or ("eval" in str(e.value))
    assert not marker.exists()
