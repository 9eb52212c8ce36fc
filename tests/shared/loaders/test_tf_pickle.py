"""TensorFlow network pickles (shared/loaders/tf_pickle.py) without TensorFlow: parity with the official
NVlabs/stylegan and NVlabs/stylegan2 TF code on the committed vectors (tests/data/tf_pickles, made by
make_tf_vectors.py there), the restricted unpickler (malicious pickles refused, nothing executed),
damaged files as sentences, and conversion to our format with the back-check."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.archs.stylegan1 import StyleGAN1Generator
from shared.archs.stylegan2 import StyleGAN2Generator
from shared.convert import convert
from shared.convert import main as convert_main
from shared.errors import CheckpointError, UnsafePickleError
from shared.loaders import load_generator
from shared.loaders.tf_pickle import TFNetwork, generator_from_tf, read_tf_pickle, tf_stylegan2_to_nvlabs

torch.set_num_threads(1)
DATA = Path(__file__).resolve().parents[2] / "data" / "tf_pickles"
VECTORS = ("tf_stylegan1_r128", "tf_stylegan2_r32")
WS_TOL = 1e-5


def _vector(name: str) -> tuple[Path, dict[str, torch.Tensor], dict]:
    arrays = np.load(DATA / f"{name}.npz")
    return DATA / f"{name}.pkl", {k: torch.from_numpy(arrays[k]) for k in arrays.files}, \
        json.loads((DATA / f"{name}.json").read_text())


def _img_err(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max(1, max |want|): the images must stay under 1e-4."""
    assert got.shape == want.shape
    return float((got - want).abs().max()) / max(1.0, float(want.abs().max()))


# ---- parity with the official TF code ----------------------------------------------------------------
@pytest.mark.parametrize("name", VECTORS)
def test_tf_pickle_matches_the_official_tf_outputs(name):
    path, t, meta = _vector(name)
    G = load_generator(path)                       # recognised by content, no TensorFlow involved
    assert isinstance(G, StyleGAN1Generator if "stylegan1" in name else StyleGAN2Generator)
    psi, cutoff = meta["truncation"]["psi"], meta["truncation"]["cutoff"]
    with torch.no_grad():
        a_ws = G.mapping(t["z"], None)
        b_ws = G.mapping(t["z"], None, truncation_psi=psi, truncation_cutoff=cutoff)
        b_img = G(t["z"], None, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode="const")
        c_img = G.synthesis(t["a_ws"], noise_mode="const")
        d_img = G.synthesis(t["d_ws"], noise_mode="const")
    assert float((a_ws - t["a_ws"]).abs().max()) <= WS_TOL
    assert float((b_ws - t["b_ws"]).abs().max()) <= WS_TOL
    for got, key in ((b_img, "b_img"), (c_img, "c_img"), (d_img, "d_img")):
        assert _img_err(got, t[key]) <= 1e-4, key
    # the noise inputs matter (so 'const' really reads the pickle's noise variables)
    with torch.no_grad():
        assert _img_err(G.synthesis(t["a_ws"], noise_mode="none"), t["c_img"]) > 1e-3


def test_v1_vector_covers_fused_and_plain_upscaling():
    G = load_generator(DATA / "tf_stylegan1_r128.pkl")
    kinds = {layer.res: layer.kind for layer in G.synthesis.layers[2::2]}
    assert kinds == {8: "up", 16: "up", 32: "up", 64: "up", 128: "fused"}   # the official 'auto' rule
    assert G.num_ws == 12 and G.img_shape == (128, 128)


def test_stylegan2_renaming_is_legacy_py_s():
    """Our TF -> NVlabs renaming gives the tensors stylegan2-ada-pytorch's legacy.py gives (checked once by
    tests/data/tf_pickles/check_against_legacy.py: max diff 0); here its structural rules."""
    gs = read_tf_pickle(DATA / "tf_stylegan2_r32.pkl")[2]
    sd = tf_stylegan2_to_nvlabs(gs)
    sv = gs.components["synthesis"].variables
    w = sv["8x8/Conv0_up/weight"]
    assert torch.equal(sd["synthesis.b8.conv0.weight"], torch.from_numpy(w[::-1, ::-1].transpose(3, 2, 0, 1).copy()))
    assert torch.equal(sd["synthesis.b8.conv1.weight"], torch.from_numpy(sv["8x8/Conv1/weight"].transpose(3, 2, 0, 1)))
    assert torch.allclose(sd["synthesis.b4.conv1.affine.bias"], torch.from_numpy(sv["4x4/Conv/mod_bias"]) + 1)
    assert torch.equal(sd["synthesis.b16.conv0.noise_const"], torch.from_numpy(sv["noise3"][0, 0]))
    assert torch.equal(sd["mapping.w_avg"], torch.from_numpy(gs.variables["dlatent_avg"]))


# ---- what the reader returns -----------------------------------------------------------------------
def test_records_hold_the_official_layout_and_drop_the_source():
    G, D, Gs = read_tf_pickle(DATA / "tf_stylegan1_r128.pkl")
    assert (G.name, D.name, Gs.name) == ("G", "D", "Gs") and Gs.build_func_name == "G_style"
    assert set(Gs.components) == {"mapping", "synthesis"} and Gs.version in (3, 4)
    assert set(Gs.variables) == {"lod", "dlatent_avg"}
    assert Gs.components["synthesis"].variables["4x4/Const/const"].shape == (1, 32, 4, 4)
    assert "ToRGB_lod5/weight" in Gs.components["synthesis"].variables       # progressive-growing leftovers
    assert Gs.static_kwargs["resolution"] == 128 and Gs.module_src_len > 0
    assert not hasattr(Gs, "build_module_src")
    flat = Gs.all_variables()
    assert "mapping/Dense0/weight" in flat and "synthesis/noise11" in flat


def test_lod_and_conditional_networks_are_refused_with_a_sentence():
    G, D, Gs = read_tf_pickle(DATA / "tf_stylegan1_r128.pkl")
    syn = Gs.components["synthesis"]
    growing = dataclasses.replace(syn, variables={**syn.variables, "lod": np.float32(1.5)})
    with pytest.raises(CheckpointError, match="progressive growing"):
        generator_from_tf(dataclasses.replace(Gs, components={**Gs.components, "synthesis": growing}))
    mp = Gs.components["mapping"]
    cond = dataclasses.replace(mp, variables={**mp.variables, "LabelConcat/weight": np.zeros((4, 32), np.float32)})
    with pytest.raises(CheckpointError, match="class-conditional"):
        generator_from_tf(dataclasses.replace(Gs, components={**Gs.components, "mapping": cond}))
    with pytest.raises(CheckpointError, match="no generator"):
        generator_from_tf((D,))


# ---- restricted unpickler -------------------------------------------------------------------------
class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def fake_dnnlib(monkeypatch):
    """A `dnnlib.tflib.network.Network` class that pickles like the official one (state from
    __getstate__), registered under the official module path only while the test writes pickles."""
    class Network:
        def __init__(self, state: dict):
            self._state = state

        def __getstate__(self):
            return self._state

    Network.__module__, Network.__qualname__ = "dnnlib.tflib.network", "Network"
    mod = types.ModuleType("dnnlib.tflib.network")
    mod.Network = Network
    for name in ("dnnlib", "dnnlib.tflib"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "dnnlib.tflib.network", mod)
    return Network


def _state(name: str, variables: list, components: dict | None = None, src: str = "") -> dict:
    return {"version": 4, "name": name, "static_kwargs": {"resolution": 8}, "components": components or {},
            "build_module_src": src, "build_func_name": "G_main", "variables": variables}


def _write(path: Path, obj) -> Path:
    import pickle
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
    return path


def test_malicious_tf_layout_pickle_is_refused_and_nothing_runs(tmp_path, fake_dnnlib):
    marker = tmp_path / "pwned"
    evil = fake_dnnlib(_state("G_synthesis", [("4x4/Const/const", _Evil(marker))]))
    gs = fake_dnnlib(_state("Gs", [("dlatent_avg", np.zeros(4, np.float32))], {"synthesis": evil}))
    path = _write(tmp_path / "evil.pkl", (gs, gs, gs))
    for load in (read_tf_pickle, load_generator):
        with pytest.raises(UnsafePickleError, match=r"'posix\.system'") as info:
            load(path)
        assert "nothing in it was run" in str(info.value)
    assert not marker.exists()


def test_build_module_src_is_never_executed(tmp_path, fake_dnnlib):
    marker = tmp_path / "ran"
    src = f"open({str(marker)!r}, 'w').write('x')\n"
    net = fake_dnnlib(_state("Gs", [("dlatent_avg", np.ones(3, np.float32))], src=src))
    (record,) = read_tf_pickle(_write(tmp_path / "src.pkl", (net,)))
    assert isinstance(record, TFNetwork) and record.module_src_len == len(src) and not marker.exists()
    assert record.variables["dlatent_avg"].tolist() == [1, 1, 1]
    with pytest.raises(CheckpointError, match="no generator"):
        load_generator(tmp_path / "src.pkl")


def test_other_globals_and_contents_are_refused(tmp_path, fake_dnnlib):
    net = fake_dnnlib(_state("Gs", [("x", torch.zeros(2))]))            # a torch tensor: not TF layout
    with pytest.raises(UnsafePickleError, match="torch"):
        read_tf_pickle(_write(tmp_path / "torch.pkl", (net,)))
    bad = fake_dnnlib(_state("Gs", [("x", "not an array")]))
    with pytest.raises(CheckpointError, match="not an array"):
        read_tf_pickle(_write(tmp_path / "str.pkl", (bad,)))
    with pytest.raises(CheckpointError, match="not TensorFlow networks"):
        read_tf_pickle(_write(tmp_path / "dict.pkl", {"G": 1}))


# ---- damaged files -----------------------------------------------------------------------------------
def test_truncated_html_and_empty_files_are_sentences(tmp_path):
    data = (DATA / "tf_stylegan2_r32.pkl").read_bytes()
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(data[: len(data) // 2])
    for load in (read_tf_pickle, load_generator):
        with pytest.raises(CheckpointError, match="truncated"):
            load(cut)
    html = tmp_path / "stylegan2-ffhq-config-f.pkl"
    html.write_bytes(b"<!DOCTYPE html><html><body>Google Drive - Virus scan warning</body></html>")
    with pytest.raises(CheckpointError, match="HTML page"):
        load_generator(html)
    with pytest.raises(CheckpointError, match="HTML page"):
        read_tf_pickle(html)
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_generator(empty)


# ---- conversion -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", VECTORS)
def test_convert_round_trip_to_safetensors(tmp_path, name):
    src = DATA / f"{name}.pkl"
    dst = tmp_path / "g.safetensors"
    assert convert(src, dst) == 0.0
    G0, G1 = load_generator(src), load_generator(dst)
    assert G1.arch == G0.arch and G1.config == G0.config
    _, t, _ = _vector(name)
    with torch.no_grad():
        assert torch.equal(G1.synthesis(t["a_ws"], noise_mode="const"), G0.synthesis(t["a_ws"], noise_mode="const"))


def test_convert_cli_back_checks(tmp_path, capsys):
    assert convert_main([str(DATA / "tf_stylegan2_r32.pkl"), str(tmp_path / "g.pt"), "--to", "rosinality"]) == 0
    assert "(ok)" in capsys.readouterr().out
    assert convert_main([str(DATA / "tf_stylegan1_r128.pkl"), str(tmp_path / "g1.pt"), "--to", "rosinality"]) == 2
    assert "only defined for StyleGAN2" in capsys.readouterr().err
