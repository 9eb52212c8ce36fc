"""Safe NVlabs persistence-pickle reader (shared/loaders/nvlabs_pickle.py).

Pickles are written by tests/nvlabs_pickles.py with the structure of official
stylegan2-ada-pytorch / stylegan3 snapshots; malicious ones must be refused before anything runs.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import struct
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from shared.errors import CheckpointError, UnsafePickleError
from shared.loaders.nvlabs_pickle import (NVlabsUnpickler, PersistentObject, TorchModuleRecord,
                                          read_nvlabs_pickle)
from tests.shared.loaders.nvlabs_pickles import EasyDict, _default_source, pickle_globals, write_nvlabs_pickle

SPELLINGS = [(3, "numpy.core"), (4, "numpy.core"), (3, "numpy._core"), (4, "numpy._core")]


# --- a small network tree in the NVlabs manner ------------------------------------------------

class FullyConnectedLayer(torch.nn.Module):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.activation = "lrelu"
        self.weight = torch.nn.Parameter(torch.randn(out_features, in_features))
        self.bias = torch.nn.Parameter(torch.randn(out_features))
        self.weight_gain = np.float64(1 / np.sqrt(in_features))  # numpy scalar attribute


class SynthesisLayer(torch.nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.affine = FullyConnectedLayer(4, channels)
        self.weight = torch.nn.Parameter(torch.randn(channels, channels, 3, 3))
        self.register_parameter("bias", None)                      # None parameter: skipped
        self.register_buffer("resample_filter", torch.tensor([1.0, 3.0, 3.0, 1.0]))
        self.register_buffer("noise_const", None)                  # None buffer: skipped
        self.register_buffer("scratch", torch.ones(2), persistent=False)
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.act_gain = np.sqrt(np.float64(2))
        self.in_size = np.asarray([8, 8])                          # numpy array attribute
        self.conv_clamp = None
        self.make_noise = lambda: None                             # not plain data: left out


class SynthesisNetwork(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer_names = ["L0_8_6", "L1_8_6"]
        for name in self.layer_names:
            setattr(self, name, SynthesisLayer(6))
        self.torgb = torch.nn.Sequential(FullyConnectedLayer(6, 3), torch.nn.Softplus())


class MappingNetwork(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc0, self.fc1 = FullyConnectedLayer(4, 4), FullyConnectedLayer(4, 4)
        self.register_buffer("w_avg", torch.randn(4))
        self.w_avg_beta = 0.995


class Generator(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.z_dim, self.w_dim = 4, 4
        self.mapping = MappingNetwork()
        self.synthesis = SynthesisNetwork()


G_KWARGS: dict[str, Any] = {
    "z_dim": 4, "c_dim": 0, "w_dim": 4, "img_resolution": 8, "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2, "lr_multiplier": np.float64(0.01)},
    "synthesis_kwargs": {"channel_base": 32768, "conv_clamp": 256,
                         "block_kwargs": {"architecture": "skip", "fused_modconv": np.bool_(True)}},
}
D_KWARGS: dict[str, Any] = {"c_dim": 0, "img_resolution": 8, "img_channels": 3,
                            "epilogue_kwargs": {"mbstd_group_size": np.int64(4)}}


@pytest.fixture(scope="module")
def nets() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)  # test-local; library code never seeds
    return {"G": Generator(), "D": MappingNetwork(), "G_ema": Generator()}


def _write(path: Path, nets: dict[str, torch.nn.Module], **kwargs: Any) -> Path:
    networks = {"G": ("training.networks_stylegan3.Generator", G_KWARGS, nets["G"]),
                "D": ("training.networks_stylegan2.Discriminator", D_KWARGS, nets["D"]),
                "G_ema": ("training.networks_stylegan3.Generator", G_KWARGS, nets["G_ema"])}
    return write_nvlabs_pickle(path, networks, kwargs.pop("extra", None), **kwargs)


# --- round trip --------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol,spelling", SPELLINGS)
def test_round_trip(tmp_path: Path, nets: dict[str, torch.nn.Module], protocol: int,
                    spelling: str) -> None:
    path = _write(tmp_path / "snapshot.pkl", nets, protocol=protocol, numpy_spelling=spelling)
    names = pickle_globals(path.read_bytes())
    other = "numpy._core" if spelling == "numpy.core" else "numpy.core"
    assert {f"{spelling}.multiarray.scalar", f"{spelling}.multiarray._reconstruct",
            "torch_utils.persistence._reconstruct_persistent_obj", "dnnlib.util.EasyDict",
            "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
            "torch.storage._load_from_bytes", "collections.OrderedDict"} <= names
    assert not any(n.startswith(other + ".") for n in names)
    assert not any(n.startswith("tests.") for n in names)

    data = read_nvlabs_pickle(path)
    assert list(data) == ["G", "D", "G_ema", "augment_pipe", "training_set_kwargs"]
    assert data["augment_pipe"] is None
    assert type(data["training_set_kwargs"]) is dict and data["training_set_kwargs"]["resolution"] == 1024

    for key, class_name in [("G", "Generator"), ("D", "Discriminator"), ("G_ema", "Generator")]:
        obj = data[key]
        assert isinstance(obj, PersistentObject)
        assert (obj.class_name, obj.version, obj.init_args) == (class_name, 6, ())
        expected = nets[key].state_dict()
        got = obj.tensors()
        assert list(got) == list(expected)  # same keys, same order as nn.Module.state_dict()
        for name, tensor in expected.items():
            assert got[name].dtype == tensor.dtype and torch.equal(got[name], tensor), name
            assert not got[name].requires_grad
    assert "synthesis.L0_8_6.scratch" not in data["G"].tensors()
    assert "synthesis.L0_8_6.bias" not in data["G"].tensors()
    assert "synthesis.L0_8_6.noise_const" not in data["G"].tensors()


@pytest.mark.parametrize("protocol,spelling", SPELLINGS)
def test_kwargs_and_attributes_are_plain(tmp_path: Path, nets: dict[str, torch.nn.Module],
                                         protocol: int, spelling: str) -> None:
    data = read_nvlabs_pickle(_write(tmp_path / "s.pkl", nets, protocol=protocol,
                                     numpy_spelling=spelling))
    kw = data["G_ema"].init_kwargs
    assert kw == {"z_dim": 4, "c_dim": 0, "w_dim": 4, "img_resolution": 8, "img_channels": 3,
                  "mapping_kwargs": {"num_layers": 2, "lr_multiplier": 0.01},
                  "synthesis_kwargs": {"channel_base": 32768, "conv_clamp": 256,
                                       "block_kwargs": {"architecture": "skip",
                                                        "fused_modconv": True}}}
    assert type(kw) is dict and type(kw["mapping_kwargs"]) is dict
    assert type(kw["synthesis_kwargs"]["block_kwargs"]) is dict
    assert type(kw["mapping_kwargs"]["lr_multiplier"]) is float
    assert type(kw["synthesis_kwargs"]["block_kwargs"]["fused_modconv"]) is bool
    d_kw = data["D"].init_kwargs["epilogue_kwargs"]
    assert d_kw == {"mbstd_group_size": 4} and type(d_kw["mbstd_group_size"]) is int
    # The raw state keeps the pickled kwargs, with EasyDicts as plain dicts.
    raw = data["G_ema"].state["_init_kwargs"]["mapping_kwargs"]
    assert type(raw) is dict and isinstance(raw["lr_multiplier"], np.float64)

    modules = dict(data["G_ema"].named_modules())
    assert modules["synthesis.L0_8_6"].class_name == "SynthesisLayer"
    assert modules["synthesis.L0_8_6.affine"].class_name == "FullyConnectedLayer"
    assert isinstance(modules["synthesis.torgb"], TorchModuleRecord)
    assert modules["synthesis.torgb"].class_name == "torch.nn.modules.container.Sequential"
    assert modules["synthesis.torgb.0"].class_name == "FullyConnectedLayer"
    layer = modules["synthesis.L0_8_6"].attributes()
    assert layer["act_gain"] == pytest.approx(2 ** 0.5) and type(layer["act_gain"]) is float
    assert layer["in_size"] == [8, 8] and layer["conv_clamp"] is None
    assert "make_noise" not in layer
    assert modules["synthesis"].attributes()["layer_names"] == ["L0_8_6", "L1_8_6"]
    assert modules["mapping"].attributes()["w_avg_beta"] == 0.995


def test_structure_matches_official_persistence(tmp_path: Path,
                                                 nets: dict[str, torch.nn.Module]) -> None:
    """Look at the raw `meta` dicts the way `torch_utils.persistence` would receive them."""
    metas: list[dict[str, Any]] = []

    class RawEasyDict(dict):
        pass

    class Spy(NVlabsUnpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) == ("torch_utils.persistence", "_reconstruct_persistent_obj"):
                return lambda meta: metas.append(meta) or meta
            if (module, name) == ("dnnlib.util", "EasyDict"):
                return RawEasyDict
            return super().find_class(module, name)

    with open(_write(tmp_path / "s.pkl", nets, protocol=3), "rb") as f:
        top = Spy(f).load()
    assert type(top["training_set_kwargs"]) is dict  # training_loop pickles dict(training_set_kwargs)
    assert all(set(m) == {"type", "version", "module_src", "class_name", "state"} for m in metas)
    assert {m["type"] for m in metas} == {"class"} and {m["version"] for m in metas} == {6}
    g = top["G_ema"]
    assert g["class_name"] == "Generator"
    assert g["module_src"] == _default_source("training.networks_stylegan3")
    state = g["state"]
    assert state["training"] is False and list(state)[-2:] == ["_init_args", "_init_kwargs"]
    assert type(state["_init_kwargs"]) is dict  # made by **kwargs; nested dicts stay EasyDicts
    assert type(state["_init_kwargs"]["mapping_kwargs"]) is RawEasyDict
    assert type(state["_modules"]["synthesis"]["state"]["_modules"]["torgb"]).__name__ == "Sequential"
    assert isinstance(state["_non_persistent_buffers_set"], set)
    # All classes of one source module share one source string, as in the official pickles.
    layer_metas = [m for m in metas if m["class_name"] == "SynthesisLayer"]
    assert layer_metas[0]["module_src"] is g["module_src"]


def test_module_src_is_never_executed(tmp_path: Path, nets: dict[str, torch.nn.Module]) -> None:
    marker = tmp_path / "executed"
    src = f"open({str(marker)!r}, 'w').close()\nimport dnnlib, torch_utils\n"
    data = read_nvlabs_pickle(_write(tmp_path / "s.pkl", nets, module_src=src))
    assert not marker.exists()
    assert "dnnlib" not in sys.modules and "torch_utils" not in sys.modules
    g = data["G_ema"]
    assert g.module_src_len == len(src)
    assert g.module_src_sha256 == hashlib.sha256(src.encode()).hexdigest()
    assert not hasattr(g, "module_src") and "module_src" not in g.state


def test_file_objects(tmp_path: Path, nets: dict[str, torch.nn.Module]) -> None:
    raw = _write(tmp_path / "s.pkl", nets).read_bytes()

    class Unseekable(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._buf = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            return self._buf.readinto(b)

    expected = nets["G_ema"].state_dict()
    for source in (io.BytesIO(raw), Unseekable(raw), open(tmp_path / "s.pkl", "rb")):
        with source:
            got = read_nvlabs_pickle(source)["G_ema"].tensors()
        assert all(torch.equal(got[k], v) for k, v in expected.items())


@pytest.mark.parametrize("good", ["training.volumetric_rendering.renderer.ImportanceRenderer",
                                  "training.triplane.OSGDecoder"])
def test_eg3d_plain_submodules(tmp_path: Path, good: str) -> None:
    """EG3D keeps a few undecorated modules (ImportanceRenderer...) inside its generator."""

    class Renderer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.plane_axes = torch.eye(3)

    class TriPlaneGenerator(torch.nn.Module):
        def __init__(self, renderer_cls: type) -> None:
            super().__init__()
            self.renderer = renderer_cls()
            self.decoder = torch.nn.Sequential(FullyConnectedLayer(4, 4), torch.nn.Softplus())

    net = TriPlaneGenerator(Renderer)
    path = write_nvlabs_pickle(tmp_path / "eg3d.pkl", {"G_ema": ("TriPlaneGenerator", {}, net)},
                               plain_modules={Renderer: good})
    g = read_nvlabs_pickle(path)["G_ema"]
    assert dict(g.named_modules())["renderer"].class_name == good
    assert list(g.tensors()) == list(net.state_dict())

    bad = "training.custom.Renderer"
    path = write_nvlabs_pickle(tmp_path / "bad.pkl", {"G_ema": ("TriPlaneGenerator", {}, net)},
                               plain_modules={Renderer: bad})
    with pytest.raises(UnsafePickleError, match=re.escape(f"'{bad}'")):
        read_nvlabs_pickle(path)


# --- malicious pickles -------------------------------------------------------------------------

class _Call:
    """Pickles as `func(*args)`; unpickling it with plain `pickle` would run the call."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


def _torch_save_bytes(obj: Any, zipfile: bool) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=zipfile)
    return buf.getvalue()


def _attacks(marker: Path) -> dict[str, tuple[str, Any]]:
    touch = f"touch {marker}"
    system = f"{os.system.__module__}.system"  # 'posix.system' on Linux
    return {
        "os.system": (system, _Call(os.system, touch)),
        "builtins.eval": ("builtins.eval", _Call(eval, f"__import__('os').system({touch!r})")),
        "subprocess.Popen": ("subprocess.Popen", _Call(subprocess.Popen, ["touch", str(marker)])),
        "legacy storage payload": (system, _Call(torch.storage._load_from_bytes,
                                                 _torch_save_bytes(_Call(os.system, touch), False))),
        "zip storage payload": (system, _Call(torch.storage._load_from_bytes,
                                              _torch_save_bytes(_Call(os.system, touch), True))),
    }


@pytest.mark.parametrize("attack", ["os.system", "builtins.eval", "subprocess.Popen",
                                    "legacy storage payload", "zip storage payload"])
@pytest.mark.parametrize("where", ["top level", "init kwargs"])
def test_malicious_pickles_are_refused(tmp_path: Path, nets: dict[str, torch.nn.Module],
                                       attack: str, where: str) -> None:
    marker = tmp_path / "pwned"
    global_name, payload = _attacks(marker)[attack]
    if where == "top level":
        path = _write(tmp_path / "evil.pkl", nets, extra={"evil": payload})
    else:  # hidden in the constructor kwargs of a network, deep inside G_ema's state
        path = write_nvlabs_pickle(tmp_path / "evil.pkl", {"G_ema": (
            "Generator", {"mapping_kwargs": EasyDict(hook=payload)}, nets["G_ema"])})
    if "payload" not in attack:
        assert global_name in pickle_globals(path.read_bytes())
    with pytest.raises(UnsafePickleError, match=re.escape(f"'{global_name}'")) as info:
        read_nvlabs_pickle(path)
    assert str(info.value).startswith("'evil.pkl' was refused")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2])
def test_handwritten_os_system_pickle(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    cmd = f"touch {marker}".encode()
    if protocol == 0:
        data = b"cos\nsystem\n(S'" + cmd + b"'\ntR."
    else:
        data = b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(cmd)) + cmd + b"\x85R."
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(UnsafePickleError, match=re.escape("'os.system'")):
        read_nvlabs_pickle(path)
    with pytest.raises(UnsafePickleError, match=re.escape("'os.system'")):
        NVlabsUnpickler(io.BytesIO(data)).load()
    assert not marker.exists()


def test_storage_payload_must_be_a_storage(tmp_path: Path, nets: dict[str, torch.nn.Module]) -> None:
    payload = _Call(torch.storage._load_from_bytes,
                    _torch_save_bytes({"w": torch.ones(2)}, True))
    path = _write(tmp_path / "odd.pkl", nets, extra={"odd": payload})
    with pytest.raises(CheckpointError, match="tensor storage holds a dict"):
        read_nvlabs_pickle(path)


# --- user errors -------------------------------------------------------------------------------

def test_truncated_file(tmp_path: Path, nets: dict[str, torch.nn.Module]) -> None:
    data = _write(tmp_path / "full.pkl", nets).read_bytes()
    for cut in (2, 40, len(data) // 3, len(data) // 2, len(data) - 1):
        path = tmp_path / "model.pkl"
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError) as info:
            read_nvlabs_pickle(path)
        assert str(info.value) == ("'model.pkl' ends too early (it is truncated, most likely by an "
                                   "interrupted download); download it again."), cut
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="^'model.pkl' is empty"):
        read_nvlabs_pickle(path)


def test_html_page(tmp_path: Path) -> None:
    path = tmp_path / "stylegan3-t-ffhq-1024x1024.pkl"
    path.write_bytes(b"\n  <!DOCTYPE html>\n<html><head><title>Hugging Face</title></head></html>")
    with pytest.raises(CheckpointError) as info:
        read_nvlabs_pickle(path)
    assert str(info.value).startswith("'stylegan3-t-ffhq-1024x1024.pkl' is an HTML page, not a network pickle")
    assert not isinstance(info.value, UnsafePickleError)


@pytest.mark.parametrize("data,message", [
    (b"GIF89a\x01\x00\x01\x00\x00\xff\x00", "is not a pickle file"),
    (b"PK\x03\x04\x14\x00\x00\x00", "is a zip archive"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n", "Git LFS pointer"),
    (pickle.dumps([1, 2, 3], protocol=4), "is a pickle of a list, not an NVlabs network snapshot"),
])
def test_not_an_nvlabs_pickle(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "file.pkl"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=re.escape(message)) as info:
        read_nvlabs_pickle(path)
    assert str(info.value).startswith("'file.pkl' ") and str(info.value).endswith(".")


def test_plain_data_pickles_still_read(tmp_path: Path) -> None:
    """Allowed globals alone (OrderedDict, numpy, tensors) make a readable, if useless, file."""
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"a": OrderedDict(x=np.float32(1.5)), "t": torch.arange(3.0),
                                   "s": {1, 2}}, protocol=3))
    data = read_nvlabs_pickle(path)
    assert data["a"] == {"x": 1.5} and data["s"] == {1, 2}
    assert torch.equal(data["t"], torch.arange(3.0))
