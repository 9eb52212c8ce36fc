"""StyleNeRF snapshots through the restricted unpickler (shared/loaders/nvlabs_pickle.py).

facebookresearch/StyleNeRF@7f5610a pickles its networks with NVlabs persistence (format 6), and
its `run_train.py` builds the constructor kwargs inside an OmegaConf config, so the stored
`_init_kwargs` are `omegaconf.dictconfig.DictConfig` trees (value nodes, `ContainerMetadata`
with `typing.Any` and `collections.defaultdict(dict)`, absolute `${...}` interpolations). The
pickles here are written with that structure by tests/shared/loaders/nvlabs_pickles.py plus small
stand-ins pickled under the OmegaConf names; the weights are the official parity vector's.
"""
from __future__ import annotations

import builtins
import collections
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch

from shared import registry
from shared.archs.stylenerf import NeRFCamera, StyleNeRFGenerator
from shared.errors import CheckpointError, UnsafePickleError
from shared.loaders import load_generator
from shared.loaders.nvlabs_pickle import read_nvlabs_pickle
from shared.model_cache import default_loader
from tests.parity import load_vector, rel_err
from tests.shared.loaders.nvlabs_pickles import pickle_globals, write_nvlabs_pickle

IMG_TOL = 2e-4  # parity README, stylenerf_ffhq_tiny


# ---- OmegaConf-shaped stand-ins (pickled as NEWOBJ + BUILD of their __dict__, like OmegaConf's) ----
class DictConfig:
    pass


class ListConfig:
    pass


class AnyNode:
    pass


class ContainerMetadata:
    pass


class Metadata:
    pass


class AnyType:  # pickled by reference as typing.Any
    pass


OMEGA_NAMES = {DictConfig: "omegaconf.dictconfig.DictConfig", ListConfig: "omegaconf.listconfig.ListConfig",
               AnyNode: "omegaconf.nodes.AnyNode", ContainerMetadata: "omegaconf.base.ContainerMetadata",
               Metadata: "omegaconf.base.Metadata", AnyType: "typing.Any"}


def _meta(cls: type, key: Any, object_type: Any) -> Any:
    m = cls()
    m.__dict__.update(ref_type=AnyType, object_type=object_type, optional=True, key=key, flags={}, flags_root=False,
                      resolver_cache=collections.defaultdict(dict))
    if cls is ContainerMetadata:
        m.__dict__.update(key_type=AnyType, element_type=AnyType)
    return m


def omega(value: Any, parent: Any = None, key: Any = None) -> Any:
    """A plain dict/list/scalar as an OmegaConf-shaped tree (what DictConfig.__getstate__ pickles)."""
    if isinstance(value, dict):
        node = DictConfig()
        node.__dict__.update(_metadata=_meta(ContainerMetadata, key, None), _parent=parent)
        node._content = {k: omega(v, node, k) for k, v in value.items()}
    elif isinstance(value, list):
        node = ListConfig()
        node.__dict__.update(_metadata=_meta(ContainerMetadata, key, list), _parent=parent)
        node._content = [omega(v, node, i) for i, v in enumerate(value)]
    else:
        node = AnyNode()
        node.__dict__.update(_metadata=_meta(Metadata, key, None), _parent=parent, _val=value)
    return node


@pytest.fixture(scope="module")
def vector(parity_dir: Path):
    return load_vector(parity_dir, "stylenerf_ffhq_tiny")


def _official_kwargs(meta: dict) -> dict:
    c = meta["constructor"]
    return {**c["G_kwargs"], "c_dim": c["c_dim"], "img_resolution": c["img_resolution"],
            "img_channels": c["img_channels"]}


def _omegaconf_kwargs(meta: dict, *, num_layers: Any = "${spec.map}", extra_node: Any = None) -> dict:
    """`dict(**args.G_kwargs)` as training_loop receives it: nested values are DictConfigs under one
    root that also holds `spec` (so `${spec.map}` resolves to the official num_layers, 2)."""
    kw = _official_kwargs(meta)
    g = {k: v for k, v in kw.items() if k != "class_name"}
    g["mapping_kwargs"] = {**g["mapping_kwargs"], "num_layers": num_layers}
    if extra_node is not None:
        g["synthesis_kwargs"] = {**g["synthesis_kwargs"], "camera_kwargs": {
            **g["synthesis_kwargs"]["camera_kwargs"], "hook": extra_node}}
    root = omega({"spec": {"map": 2}, "G_kwargs": g})
    tree = root._content["G_kwargs"]._content
    return {k: (v if isinstance(v, (DictConfig, ListConfig)) else v._val) for k, v in tree.items()}


def _write(path: Path, G: torch.nn.Module, kwargs: dict, extra: dict | None = None, protocol: int = 3) -> Path:
    return write_nvlabs_pickle(path, {"G_ema": ("training.networks.Generator", kwargs, G)}, extra,
                               protocol=protocol, plain_modules=OMEGA_NAMES)


@pytest.fixture(scope="module")
def G(vector) -> StyleNeRFGenerator:
    sd, _, meta = vector
    return StyleNeRFGenerator.from_nvlabs(_official_kwargs(meta), sd)


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_stylenerf_snapshot_loads_and_matches_official(tmp_path: Path, vector, G, protocol: int) -> None:
    _, t, meta = vector
    path = _write(tmp_path / "stylenerf.pkl", G, _omegaconf_kwargs(meta), protocol=protocol)
    names = pickle_globals(path.read_bytes())
    assert {"omegaconf.dictconfig.DictConfig", "omegaconf.nodes.AnyNode", "typing.Any",
            "collections.defaultdict"} <= names
    G2 = load_generator(path)
    assert isinstance(G2, StyleNeRFGenerator) and G2.config == G.config and G2.config.mapping_layers == 2
    cam = NeRFCamera(t["a.camera_K"], t["a.camera_RT"])
    with torch.no_grad():
        img = G2(t["z"], None, camera=cam, bg_codes=(t["latent_codes.z_shape_bg"], t["latent_codes.z_app_bg"]))
    assert rel_err(img, t["a.img"]) <= IMG_TOL


def test_omegaconf_kwargs_become_plain_data(tmp_path: Path, vector, G) -> None:
    _, _, meta = vector
    data = read_nvlabs_pickle(_write(tmp_path / "s.pkl", G, _omegaconf_kwargs(meta)))
    kw = data["G_ema"].init_kwargs
    assert kw["mapping_kwargs"] == {"num_layers": 2}                       # ${spec.map} resolved
    assert kw["synthesis_kwargs"]["camera_kwargs"]["range_u"] == [-0.3, 0.3]
    assert type(kw["synthesis_kwargs"]) is dict


def test_unresolvable_interpolation_is_a_clear_error(tmp_path: Path, vector, G) -> None:
    _, _, meta = vector
    path = _write(tmp_path / "s.pkl", G, _omegaconf_kwargs(meta, num_layers="${nowhere.map}"))
    with pytest.raises(CheckpointError, match=re.escape("${nowhere.map}")):
        load_generator(path)


# ---- malicious pickles in the StyleNeRF layout --------------------------------------------------
class _Call:
    """Pickles as `func(*args)`; plain `pickle` would run the call when loading."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


def _attacks(marker: Path) -> dict[str, tuple[str, Any]]:
    touch = f"touch {marker}"
    return {
        "os.system": (f"{os.system.__module__}.system", _Call(os.system, touch)),
        "builtins.eval": ("builtins.eval", _Call(eval, f"__import__('os').system({touch!r})")),
        "subprocess.Popen": ("subprocess.Popen", _Call(subprocess.Popen, ["touch", str(marker)])),
    }


@pytest.mark.parametrize("attack", ["os.system", "builtins.eval", "subprocess.Popen"])
@pytest.mark.parametrize("where", ["top level", "omegaconf node"])
def test_malicious_stylenerf_pickles_are_refused(tmp_path: Path, vector, G, attack: str, where: str) -> None:
    _, _, meta = vector
    marker = tmp_path / "pwned"
    global_name, payload = _attacks(marker)[attack]
    if where == "top level":
        path = _write(tmp_path / "evil.pkl", G, _omegaconf_kwargs(meta), extra={"evil": payload})
    else:  # the value of a node deep inside synthesis_kwargs.camera_kwargs
        path = _write(tmp_path / "evil.pkl", G, _omegaconf_kwargs(meta, extra_node=payload))
    assert global_name in pickle_globals(path.read_bytes())
    with pytest.raises(UnsafePickleError, match=re.escape(f"'{global_name}'")):
        load_generator(path)
    assert not marker.exists()


def test_type_names_of_omegaconf_metadata_cannot_be_called(tmp_path: Path, vector, G) -> None:
    # `builtins.dict` is allowed as a name inside OmegaConf metadata, but only as an inert record
    _, _, meta = vector
    path = _write(tmp_path / "call.pkl", G, _omegaconf_kwargs(meta), extra={"x": _Call(builtins.dict, [("a", 1)])})
    assert "builtins.dict" in pickle_globals(path.read_bytes())
    with pytest.raises(CheckpointError, match="not a valid NVlabs network pickle"):
        read_nvlabs_pickle(path)


def test_registry_records_load_through_the_model_cache_loader(tmp_path: Path, vector, G) -> None:
    _, _, meta = vector
    card = registry.get("stylenerf-ffhq-256")
    assert card.arch == "stylenerf" and card.format == "nvlabs-pkl"
    G2 = default_loader(card, _write(tmp_path / "ffhq_256.pkl", G, _omegaconf_kwargs(meta)))
    assert isinstance(G2, StyleNeRFGenerator)
