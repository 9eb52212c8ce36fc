"""StyleCLIP latent mapper (shared.styleclip.mapper): parity with the official LevelsMapper
(../shared/parity `styleclip_levels_mapper`, weights rebuilt from the JSON recipe), the official checkpoint
layout (full and `no_fine_mapper`), our safetensors files, the edit on a small random generator, and the
demo mappers shipped in the bundle. Their training: tests/training/test_train_mapper.py."""
from __future__ import annotations

import argparse
import json
import re

import pytest
import torch

from shared.errors import InputError
from shared.errors import CheckpointError
from shared.styleclip.mapper import (LevelsMapper, MapperConfig, SingleMapper, apply_mapper, demo_mappers,
                                     edit_with_mapper, load_mapper, mapper_from_state_dict, save_mapper)
from tests.parity import load_vector, recipe_state_dict, rel_err

torch.set_num_threads(1)
DEMO = "demo-portraits-stylegan2-64"
DEMO_CLIP = "demo-portraits-clip"
BUNDLE_MAPPER_MAX_BYTES = 140_000


def _tolerance(meta: dict) -> float:
    """The relative factor of the JSON's suggested tolerance ('max-abs-diff <= X * max(1, max|codes|)')."""
    m = re.search(r"<=\s*([0-9.]+e-?[0-9]+|[0-9.]+)", meta["suggested_tolerance"])
    assert m, meta["suggested_tolerance"]
    return float(m.group(1))


# ---- parity ------------------------------------------------------------------------------------------
def test_levels_mapper_matches_the_official_vector(parity_dir):
    _, t, meta = load_vector(parity_dir, "styleclip_levels_mapper")
    entries = meta["weights"]["entries"]
    opts = next((v for k, v in meta["constructor"].items() if k.startswith("opts")), {})
    mapper = mapper_from_state_dict(recipe_state_dict(entries), opts)
    assert list(mapper.state_dict()) == [e["key"] for e in entries]          # official keys, official order
    assert mapper.config.w_dim == t["x"].shape[-1]
    with torch.no_grad():
        out = mapper(t["x"])
    assert rel_err(out, t["codes"]) <= _tolerance(meta)
    # the 0.1 of inference is not in the vector
    assert torch.allclose(apply_mapper(mapper, t["x"]), t["x"] + 0.1 * out)


def test_quirks_pixelnorm_over_rows_and_fixed_row_split():
    cfg = MapperConfig(w_dim=8, layers=1)
    mapper = LevelsMapper(cfg, generator=torch.Generator().manual_seed(1))
    ws = torch.randn(2, 10, 8, generator=torch.Generator().manual_seed(2))
    out = mapper(ws)
    # scaling one row's features leaves the other coarse rows' outputs changed (norm over rows) ...
    ws2 = ws.clone()
    ws2[:, 0] *= 3
    out2 = mapper(ws2)
    assert not torch.allclose(out2[:, 1:4], out[:, 1:4]) and torch.equal(out2[:, 4:], out[:, 4:])
    # ... and scaling all rows of a level together leaves that level's output unchanged
    ws3 = ws.clone()
    ws3[:, 4:8] *= 5
    assert torch.allclose(mapper(ws3), out, atol=1e-5)


# ---- official checkpoint layout ---------------------------------------------------------------------
def _official(mapper: LevelsMapper, opts, *, decoder: bool = True) -> dict:
    sd = {f"mapper.{k}": v.clone() for k, v in mapper.state_dict().items()}
    if decoder:
        sd["decoder.style.1.weight"] = torch.randn(4, 4)
        sd["decoder.input.input"] = torch.randn(1, 4, 4, 4)
    return {"state_dict": sd, "opts": opts}


def _opts(cfg: MapperConfig, **kw) -> dict:
    return {"exp_dir": "../results/x", "mapper_type": "LevelsMapper", "description": "mohawk hairstyle",
            "learning_rate": 0.5, "batch_size": 2, "stylegan_size": 1024, "checkpoint_path": None,
            "device": "cuda:0", **cfg.official_opts(), **kw}


@pytest.mark.parametrize("levels", [("coarse", "medium", "fine"), ("coarse", "medium"), ("medium",)])
def test_official_checkpoint_loads_and_equals_its_writer(tmp_path, levels):
    cfg = MapperConfig(w_dim=32, layers=3, levels=levels)
    writer = LevelsMapper(cfg, generator=torch.Generator().manual_seed(5)).eval()
    for p in writer.parameters():    # non-zero biases too
        p.data += torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 10
    path = tmp_path / "mohawk.pt"
    torch.save(_official(writer, _opts(cfg)), path)
    mapper, meta = load_mapper(path)
    assert mapper.config == cfg and meta["prompt"] == "mohawk hairstyle"
    assert meta["no_fine_mapper"] == ("fine" not in levels)
    ws = torch.randn(3, 18, 32, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        out = mapper(ws)
        assert torch.equal(out, writer(ws))
    for name, start, end in (("coarse", 0, 4), ("medium", 4, 8), ("fine", 8, 18)):
        assert (out[:, start:end].abs().sum() == 0) == (name not in levels)


def test_official_namespace_opts_legacy_format_and_errors(tmp_path):
    cfg = MapperConfig(w_dim=16, layers=4, levels=("coarse", "medium"))
    writer = LevelsMapper(cfg, generator=torch.Generator().manual_seed(7))
    ns = argparse.Namespace(**_opts(cfg, description="purple hair"))
    path = tmp_path / "ns.pt"
    torch.save(_official(writer, ns), path, _use_new_zipfile_serialization=False)
    mapper, meta = load_mapper(path)
    assert meta["prompt"] == "purple hair" and torch.equal(mapper.state_dict()["course_mapping.mapping.4.weight"],
                                                           writer.state_dict()["course_mapping.mapping.4.weight"])
    # opts contradicting the weights
    torch.save(_official(writer, _opts(cfg, no_fine_mapper=False, no_medium_mapper=True)), tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="no_medium_mapper"):
        load_mapper(tmp_path / "bad.pt")
    # a pickled object outside the allow-list is refused, nothing executed
    torch.save({"state_dict": _official(writer, {})["state_dict"], "opts": {"x": torch.nn.Identity()}},
               tmp_path / "obj.pt")
    with pytest.raises(CheckpointError, match="refuse"):
        load_mapper(tmp_path / "obj.pt")
    torch.save({"state_dict": {"decoder.w": torch.zeros(1)}, "opts": {}}, tmp_path / "dec.pt")
    with pytest.raises(CheckpointError, match="no StyleCLIP LevelsMapper"):
        load_mapper(tmp_path / "dec.pt")
    torch.save({"state_dict": {"mapper.mapping.mapping.1.weight": torch.zeros(4, 4)}}, tmp_path / "single.pt")
    with pytest.raises(CheckpointError, match="SingleMapper weights lack mapping.mapping.1.bias"):
        load_mapper(tmp_path / "single.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError):
        load_mapper(tmp_path / "junk.pt")


# ---- our files ---------------------------------------------------------------------------------------
def test_safetensors_round_trip(tmp_path):
    cfg = MapperConfig(w_dim=24, layers=2, levels=("coarse", "fine"))
    mapper = LevelsMapper(cfg, generator=torch.Generator().manual_seed(8))
    ws = torch.randn(2, 10, 24, generator=torch.Generator().manual_seed(9))
    p32 = save_mapper(mapper, tmp_path / "m.safetensors", prompt="a person wearing glasses",
                      training={"steps": 3, "batch": 2})
    again, meta = load_mapper(p32)
    assert again.config == cfg and meta["prompt"] == "a person wearing glasses" and meta["training"]["steps"] == 3
    with torch.no_grad():
        assert torch.equal(again(ws), mapper(ws))
    p16 = save_mapper(mapper, tmp_path / "h.safetensors", prompt="x", dtype=torch.float16)
    half, _ = load_mapper(p16)
    assert all(p.dtype == torch.float32 for p in half.parameters())
    with torch.no_grad():
        assert (half(ws) - mapper(ws)).abs().max() < 1e-2 * mapper(ws).abs().max()
    from safetensors.torch import save_file
    save_file({"a": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="without a mapper header"):
        load_mapper(tmp_path / "plain.safetensors")


# ---- the edit on a small random generator -------------------------------------------------------------
def test_edit_with_mapper_shapes_determinism_and_errors(small_g):
    G = small_g
    mapper = LevelsMapper(MapperConfig(w_dim=G.w_dim, layers=2), generator=torch.Generator().manual_seed(4)).eval()
    ws = G.mapping(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0)))
    img, edited = edit_with_mapper(G, mapper, ws)
    assert img.shape == (3, 3, 32, 32) and edited.shape == ws.shape and img.device.type == "cpu"
    assert float(img.min()) >= -1 and float(img.max()) <= 1
    img2, edited2 = edit_with_mapper(G, mapper, ws)
    assert torch.equal(img, img2) and torch.equal(edited, edited2)
    assert torch.allclose(edited, ws + 0.1 * mapper(ws))
    same, unchanged = edit_with_mapper(G, mapper, ws, strength=0.0)
    assert torch.equal(unchanged, ws)
    assert torch.allclose(same, G.synthesis(ws, noise_mode="const").clamp(-1, 1))
    with pytest.raises(InputError, match="latent must be"):
        edit_with_mapper(G, mapper, ws[:, :3])
    with pytest.raises(InputError, match="dimensional"):
        edit_with_mapper(G, LevelsMapper(MapperConfig(w_dim=8, layers=1)), ws)


# ---- the demo world ------------------------------------------------------------------------------------
def test_shipped_demo_mappers_are_small_and_raise_clip_similarity(demo_g_clip):
    G, clip = demo_g_clip
    mappers = demo_mappers()
    assert len(mappers) >= 2
    ws = G.mapping(torch.randn(16, G.z_dim, generator=torch.Generator().manual_seed(8_100_000)), truncation_psi=0.7)
    for prompt, path in mappers.items():
        assert path.stat().st_size <= BUNDLE_MAPPER_MAX_BYTES
        mapper, meta = load_mapper(path)
        assert meta["prompt"] == prompt and mapper.w_dim == G.w_dim
        side = json.loads(path.with_suffix(".json").read_text())
        assert side["training"]["steps_done"] >= 1 and side["training"]["prompt"] == prompt
        text = clip.encode_text([prompt])
        with torch.no_grad():
            source = G.synthesis(ws, noise_mode="const").clamp(-1, 1)
            edited, _ = edit_with_mapper(G, mapper, ws)
            gain = (clip.encode_image(edited) * text).sum(-1) - (clip.encode_image(source) * text).sum(-1)
        assert float(gain.mean()) > 0.02 and float((gain > 0).float().mean()) >= 0.75, (prompt, gain)


# ---- SingleMapper (official mapper_type='SingleMapper') --------------------------------------------------
def _single_reference(sd: dict, ws: torch.Tensor, lr_mul: float = 0.01) -> torch.Tensor:
    """The official SingleMapper written out: PixelNorm over dim 1 of the whole [N, rows, w_dim] W+ (all
    rows together), then per layer leaky_relu(x @ (W·lr_mul/√in)ᵀ + b·lr_mul, 0.2)·√2."""
    x = ws * torch.rsqrt(ws.square().mean(dim=1, keepdim=True) + 1e-8)
    for i in range(1, 1 + len(sd) // 2):
        w, b = sd[f"mapper.mapping.mapping.{i}.weight"], sd[f"mapper.mapping.mapping.{i}.bias"]
        x = torch.nn.functional.leaky_relu(x @ (w * lr_mul / w.shape[1] ** 0.5).T + b * lr_mul, 0.2) * 2 ** 0.5
    return x


def test_official_single_mapper_checkpoint_loads(tmp_path):
    g = torch.Generator().manual_seed(11)
    w_dim = 32
    sd = {}
    for i in range(1, 5):     # the official Mapper: PixelNorm (index 0) + 4 EqualLinear (1..4)
        sd[f"mapper.mapping.mapping.{i}.weight"] = torch.randn(w_dim, w_dim, generator=g) / 0.01
        sd[f"mapper.mapping.mapping.{i}.bias"] = torch.randn(w_dim, generator=g) * 10
    ckpt = {"state_dict": {**sd, "decoder.style.1.weight": torch.randn(4, 4)},
            "opts": {"mapper_type": "SingleMapper", "description": "a person with purple hair",
                     "no_coarse_mapper": False, "no_medium_mapper": False, "no_fine_mapper": False,
                     "stylegan_size": 1024}}
    torch.save(ckpt, tmp_path / "single.pt")
    mapper, meta = load_mapper(tmp_path / "single.pt")
    assert isinstance(mapper, SingleMapper) and meta["mapper_type"] == "SingleMapper"
    assert mapper.config == MapperConfig(w_dim=w_dim, layers=4, mapper_type="SingleMapper")
    assert meta["prompt"] == "a person with purple hair"
    assert list(mapper.state_dict()) == [k[len("mapper."):] for k in sd]      # official keys, official order
    ws = torch.randn(2, 18, w_dim, generator=g)
    with torch.no_grad():
        out = mapper(ws)
    assert torch.allclose(out, _single_reference(sd, ws), rtol=1e-5, atol=1e-5 * out.abs().max().item())
    # one mapping over all rows: the norm spans all 18 rows, so scaling a fine row changes the coarse output
    ws2 = ws.clone()
    ws2[:, 17] *= 4
    with torch.no_grad():
        assert not torch.allclose(mapper(ws2)[:, :4], out[:, :4])
    # round trip through our safetensors file keeps the type
    again, meta2 = load_mapper(save_mapper(mapper, tmp_path / "single.safetensors", prompt="purple"))
    assert isinstance(again, SingleMapper) and meta2["arch"] == "styleclip-single-mapper"
    with torch.no_grad():
        assert torch.equal(again(ws), out)
    # opts that name the other type are refused with both names
    torch.save({**ckpt, "opts": {**ckpt["opts"], "mapper_type": "LevelsMapper"}}, tmp_path / "lie.pt")
    with pytest.raises(CheckpointError, match="'LevelsMapper' but the weights are a SingleMapper"):
        load_mapper(tmp_path / "lie.pt")
    with pytest.raises(ValueError, match="mapper_type"):
        LevelsMapper(MapperConfig(mapper_type="SingleMapper"))


def test_single_mapper_matches_the_official_class():
    """Vector from the official StyleCLIP `SingleMapper` (tests/data/official_torch/make_vectors.py):
    weights from the JSON recipe, saved in the official checkpoint layout, loaded through load_mapper."""
    import numpy as np
    from pathlib import Path
    root = Path(__file__).resolve().parents[2] / "data" / "official_torch"
    meta = json.loads((root / "styleclip_single_mapper.json").read_text())
    t = np.load(root / "styleclip_single_mapper.npz")
    sd = recipe_state_dict(meta["entries"])
    mapper = mapper_from_state_dict({f"mapper.{k}": v for k, v in sd.items()}, meta["constructor"]["opts"])
    assert isinstance(mapper, SingleMapper) and list(mapper.state_dict()) == [e["key"] for e in meta["entries"]]
    with torch.no_grad():
        out = mapper(torch.from_numpy(t["x"]))
    assert rel_err(out, torch.from_numpy(t["codes"])) <= 1e-5
