"""pSp / e4e / ReStyle encoders: parity with the official modules (../shared/parity encoder
vectors, weights rebuilt from their JSON recipe), the official checkpoint layout through
`load_encoder`, reduced configs, and the errors a user can cause."""
import io
import time
from pathlib import Path

import pytest
import torch

from shared import load_encoder
from shared.errors import CheckpointError
from shared.archs.encoders import (ENCODER_TYPES, EncoderConfig, build_encoder, default_config,
                                   n_styles_for_resolution)
from shared.loaders.encoders import (config_from_encoder_state_dict, encoder_from_checkpoint, encoder_latent_avg,
                                     load_encoder_checkpoint)
from tests.parity import WS_TOL, load_vector, recipe_state_dict, rel_err

torch.set_num_threads(1)

# vector -> (encoder_type, the official opts a checkpoint of that model carries)
VECTORS = {
    "psp_gradual_irse50": ("GradualStyleEncoder", {"encoder_type": "GradualStyleEncoder", "input_nc": 3,
                                                   "output_size": 1024}),
    "e4e_irse50": ("Encoder4Editing", {"encoder_type": "Encoder4Editing", "stylegan_size": 1024}),
    "restyle_psp_backbone_irse50": ("BackboneEncoder", {"encoder_type": "BackboneEncoder", "input_nc": 6,
                                                        "output_size": 1024}),
    "restyle_psp_backbone_resnet34": ("ResNetBackboneEncoder", {"encoder_type": "ResNetBackboneEncoder",
                                                                "input_nc": 6, "output_size": 1024}),
}
# README: codes within 1e-5 * max(1, max|expected|); we use the same conv algorithm (torch's CPU conv)
# as the official run, so the tighter of the two allowed tolerances applies to every encoder.
CODES_TOL = WS_TOL


def _run_vector(parity_dir: Path, name: str) -> dict:
    """Rebuild the vector's weights, load them through the official checkpoint layout (in memory)
    and run the encoder once; keep only the outputs so the 1 GB models do not pile up."""
    _, t, meta = load_vector(parity_dir, name)
    encoder_type, opts = VECTORS[name]
    entries = meta["weights"]["entries"]
    t0 = time.perf_counter()
    sd = recipe_state_dict(entries)
    recipe_s = time.perf_counter() - t0
    ckpt = {"state_dict": {f"encoder.{k}": v for k, v in sd.items()}, "opts": dict(opts)}
    del sd
    loaded = encoder_from_checkpoint(ckpt, name)
    del ckpt
    enc = loaded.encoder
    own = enc.state_dict()
    out = {"t": t, "config": loaded.config, "recipe_s": recipe_s,
           "keys_in_order": list(own) == [e["key"] for e in entries],
           "shapes": all(list(own[e["key"]].shape) == e["shape"] for e in entries)}
    del own
    x = t["x"]
    t0 = time.perf_counter()
    with torch.no_grad():
        out["codes"] = enc(x)
        out["forward_s"] = time.perf_counter() - t0
        if enc.progressive:
            out["per_style"] = enc.style_outputs(x)
            enc.set_progressive_stage(2)
            out["codes_stage2"] = enc(x)
    return out


@pytest.fixture(scope="module")
def parity(parity_dir):
    cache: dict[str, dict] = {}

    def run(name: str) -> dict:
        if name not in cache:
            cache[name] = _run_vector(parity_dir, name)
        return cache[name]
    return run


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VECTORS))
def test_encoder_parity(parity, name):
    r = parity(name)
    encoder_type = VECTORS[name][0]
    # the loader read the official architecture off the weights and the opts
    assert r["config"] == default_config(encoder_type, input_nc=r["t"]["x"].shape[1])
    assert r["keys_in_order"] and r["shapes"], "state_dict() keys/order/shapes differ from the official module"
    err = rel_err(r["codes"], r["t"]["codes"])
    print(f"{name}: rel err {err:.2e} (recipe {r['recipe_s']:.1f} s, forward {r['forward_s']:.2f} s)")
    assert err <= CODES_TOL, f"{name}: {err:.3e}"


@pytest.mark.slow
def test_e4e_per_style_and_summation(parity):
    r = parity("e4e_irse50")
    per, codes = r["t"]["per_style"], r["t"]["codes"]
    # the vector's own semantics: row 0 is w0, row i is w0 + delta_i
    assert torch.equal(codes[:, 0], per[:, 0])
    assert torch.equal(codes[:, 1:], per[:, :1] + per[:, 1:])
    err = rel_err(r["per_style"], per)
    print(f"e4e_irse50 per_style: rel err {err:.2e}")
    assert err <= CODES_TOL
    ours = r["per_style"]
    assert torch.equal(r["codes"], torch.cat([ours[:, :1], ours[:, :1] + ours[:, 1:]], dim=1))
    # progressive stage 2: rows 1-2 get their deltas, rows 3+ stay w0
    s2 = r["codes_stage2"]
    assert torch.equal(s2[:, :3], r["codes"][:, :3])
    assert torch.equal(s2[:, 3:], ours[:, :1].expand(-1, 15, -1))


# ---- reduced configs: built through EncoderConfig, saved in the official layout ----------------

SMALL = dict(widths=(16, 24, 32, 48), blocks=(1, 2, 2, 1), w_dim=32, input_size=32, n_styles=10)


def small_config(encoder_type: str, **kw) -> EncoderConfig:
    return default_config(encoder_type, **{**SMALL, **kw})


def _official_ckpt(enc: torch.nn.Module, opts: dict, with_decoder: bool = True, latent_avg=None) -> dict:
    sd = {f"encoder.{k}": v.clone() for k, v in enc.state_dict().items()}
    if with_decoder:  # a few generator tensors, as pSp's state_dict has them next to the encoder
        sd.update({"decoder.style.1.weight": torch.randn(32, 32), "decoder.input.input": torch.randn(1, 32, 4, 4)})
    ckpt = {"state_dict": sd, "opts": opts}
    if latent_avg is not None:
        ckpt["latent_avg"] = latent_avg
    return ckpt


def _randomise_buffers(enc: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
        for name, b in enc.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(1 + 0.1 * torch.rand(b.shape, generator=g))


def _opts_for(encoder_type: str, cfg: EncoderConfig) -> dict:
    size = 2 ** ((cfg.n_styles + 2) // 2)
    if encoder_type == "Encoder4Editing":  # e4e's options: stylegan_size, no input_nc
        return {"encoder_type": encoder_type, "stylegan_size": size, "start_from_latent_avg": True}
    return {"encoder_type": encoder_type, "input_nc": cfg.input_nc, "output_size": size, "device": "cuda:0",
            "learning_rate": 1e-4, "progressive_steps": [0, 20000], "checkpoint_path": None}


@pytest.mark.parametrize("encoder_type", list(ENCODER_TYPES))
def test_load_encoder_official_layout_roundtrip(tmp_path, encoder_type):
    cfg = small_config(encoder_type)
    torch.manual_seed(0)
    enc = build_encoder(cfg).eval()
    _randomise_buffers(enc, 1)
    avg = torch.randn(cfg.n_styles, cfg.w_dim)
    path = tmp_path / "model.pt"
    torch.save(_official_ckpt(enc, _opts_for(encoder_type, cfg), latent_avg=avg), path)

    loaded = load_encoder(path)
    assert type(loaded).__name__ == encoder_type
    assert loaded.config == cfg and not loaded.training
    assert all(not p.requires_grad for p in loaded.parameters())
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(2, cfg.input_nc, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        want, got = enc(x), loaded(x)
    assert got.shape == (2, cfg.n_styles, cfg.w_dim)
    assert torch.equal(got, want)
    # batch rows are independent (no view(-1, C) mixing of the batch)
    with torch.no_grad():
        assert torch.allclose(loaded(x[1:]), got[1:], atol=1e-5, rtol=0)

    ck = load_encoder_checkpoint(path)
    assert torch.equal(ck.latent_avg, avg) and ck.opts["encoder_type"] == encoder_type


def test_encoder_only_checkpoint_and_file_object(tmp_path):
    cfg = small_config("Encoder4Editing")
    enc = build_encoder(cfg).eval()
    buf = io.BytesIO()
    torch.save(_official_ckpt(enc, _opts_for("Encoder4Editing", cfg), with_decoder=False), buf)
    buf.seek(0)
    ck = load_encoder_checkpoint(buf)
    assert ck.latent_avg is None and ck.config == cfg
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(ck.encoder(x), enc(x))


def test_legacy_format_fp16_and_plain_ir(tmp_path):
    """Pre-zip torch.save files, half-precision weights (loaded as float32) and the IR body without SE."""
    cfg = small_config("GradualStyleEncoder", mode="ir", blocks=(2, 1, 1, 2))
    enc = build_encoder(cfg).eval()
    _randomise_buffers(enc, 3)
    ckpt = _official_ckpt(enc, _opts_for("GradualStyleEncoder", cfg))
    ckpt["state_dict"] = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()}
    path = tmp_path / "legacy.pt"
    torch.save(ckpt, path, _use_new_zipfile_serialization=False)
    loaded = load_encoder(path)
    assert loaded.config == cfg and all(p.dtype == torch.float32 for p in loaded.parameters())
    assert not any(k.endswith("fc1.weight") for k in loaded.state_dict())
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4)) * 2 - 1
    with torch.no_grad():
        assert rel_err(loaded(x), enc(x)) < 2e-2  # fp16 rounding of the weights only


def test_restyle_gradual_and_psp_defaults():
    """'GradualStyleEncoder' is both pSp's (3 channels) and ReStyle's FPN encoder (input_nc from opts);
    older pSp checkpoints have no output_size (1024 px -> 18 rows)."""
    cfg = small_config("GradualStyleEncoder", input_nc=6, n_styles=18)
    enc = build_encoder(cfg)
    ck = encoder_from_checkpoint(_official_ckpt(enc, {"encoder_type": "GradualStyleEncoder", "input_nc": 6}))
    assert ck.config.input_nc == 6 and ck.config.n_styles == 18
    cfg3 = small_config("GradualStyleEncoder", n_styles=18)
    ck3 = encoder_from_checkpoint(_official_ckpt(build_encoder(cfg3), {"encoder_type": "GradualStyleEncoder"}))
    assert ck3.config == cfg3


def test_latent_avg_shapes():
    row = torch.randn(32)
    assert torch.equal(encoder_latent_avg({"latent_avg": row}, 10, 32), row.expand(10, 32))
    assert torch.equal(encoder_latent_avg({"latent_avg": row[None]}, 10, 32), row.expand(10, 32))
    full = torch.randn(10, 32)
    assert torch.equal(encoder_latent_avg({"latent_avg": full}, 10, 32), full)
    assert encoder_latent_avg({}, 10, 32) is None
    with pytest.raises(CheckpointError):
        encoder_latent_avg({"latent_avg": torch.randn(18, 32)}, 10, 32)


def test_official_configs_and_counts():
    """Official defaults: value counts of the official modules (from the parity JSONs)."""
    counts = {"GradualStyleEncoder": 267161076, "BackboneEncoder": 205610164, "ResNetBackboneEncoder": 195945188,
              "Encoder4Editing": 267161076}
    for encoder_type, n in counts.items():
        with torch.device("meta"):
            enc = build_encoder(default_config(encoder_type))
        assert sum(v.numel() for v in enc.state_dict().values()) == n
    assert EncoderConfig() == default_config("GradualStyleEncoder")
    assert n_styles_for_resolution(1024) == 18 and n_styles_for_resolution(256) == 14
    with torch.device("meta"):  # FPN taps: the official indices, and stage ends for 100/152 layers
        taps = {(t, n): build_encoder(default_config(t, num_layers=n))._taps
                for t in ("GradualStyleEncoder", "ResNetGradualStyleEncoder") for n in (50, 100)}
    assert taps[("GradualStyleEncoder", 50)] == (6, 20, 23)
    assert taps[("ResNetGradualStyleEncoder", 50)] == taps[("ResNetGradualStyleEncoder", 100)] == (6, 12, 15)
    assert taps[("GradualStyleEncoder", 100)] == (15, 45, 48)


@pytest.mark.parametrize("num_layers", [50, 100, 152])
@pytest.mark.parametrize("mode", ["ir", "ir_se"])
def test_config_read_off_official_shapes(num_layers, mode):
    for encoder_type in ("GradualStyleEncoder", "ProgressiveBackboneEncoder"):
        cfg = default_config(encoder_type, num_layers=num_layers, mode=mode)
        with torch.device("meta"):
            sd = build_encoder(cfg).state_dict()
        assert config_from_encoder_state_dict(encoder_type, sd) == cfg


def test_config_validation():
    with pytest.raises(ValueError, match="encoder_type"):
        EncoderConfig(encoder_type="Nope")
    with pytest.raises(ValueError, match="num_layers"):
        EncoderConfig(num_layers=34)
    with pytest.raises(ValueError, match="input_size"):
        EncoderConfig(input_size=48)
    with pytest.raises(ValueError, match="widths"):
        EncoderConfig(widths=(64, 64, 128, 256))
    with pytest.raises(ValueError, match="ir_se"):
        EncoderConfig(widths=(8, 16, 32, 64))
    enc = build_encoder(small_config("BackboneEncoder"))
    with pytest.raises(ValueError, match=r"expects input \[N, 6, 32, 32\]"):
        enc(torch.zeros(1, 3, 32, 32))


# ---- errors a user can cause ------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_e4e():
    cfg = small_config("Encoder4Editing")
    return cfg, build_encoder(cfg).eval()


def _save(tmp_path, obj, name="x.pt"):
    p = tmp_path / name
    torch.save(obj, p)
    return p


def _err(src) -> str:
    with pytest.raises(CheckpointError) as ei:
        load_encoder(src)
    msg = str(ei.value)
    assert msg.count("\n") == 0 and len(msg) < 400
    return msg


def test_error_generator_only(tmp_path):
    assert "generator-only" in _err(_save(tmp_path, {"g_ema": {"input.input": torch.zeros(1)}, "latent_avg": None}))
    ckpt = {"state_dict": {"decoder.input.input": torch.zeros(1, 8, 4, 4)}, "opts": {"encoder_type": "Encoder4Editing"}}
    assert "only a generator" in _err(_save(tmp_path, ckpt))


def test_error_missing_opts_and_type(tmp_path, small_e4e):
    cfg, enc = small_e4e
    ckpt = _official_ckpt(enc, {})
    del ckpt["opts"]
    assert "no 'opts'" in _err(_save(tmp_path, ckpt))
    assert "encoder_type" in _err(_save(tmp_path, _official_ckpt(enc, {"stylegan_size": 32})))
    msg = _err(_save(tmp_path, _official_ckpt(enc, {"encoder_type": "MyFancyEncoder"})))
    assert "Unknown encoder_type 'MyFancyEncoder'" in msg and "Encoder4Editing" in msg
    assert "not support" in _err(_save(tmp_path, _official_ckpt(enc, {"encoder_type": "SingleStyleCodeEncoder"})))


def test_error_mismatches(tmp_path, small_e4e):
    cfg, enc = small_e4e
    opts = _opts_for("Encoder4Editing", cfg)
    # opts say 1024 px (18 rows), weights have 10 style blocks
    assert "18 styles" in _err(_save(tmp_path, _official_ckpt(enc, {**opts, "stylegan_size": 1024})))
    assert "not a resolution" in _err(_save(tmp_path, _official_ckpt(enc, {**opts, "stylegan_size": "huge"})))
    # a tensor of the wrong shape
    ckpt = _official_ckpt(enc, opts)
    ckpt["state_dict"]["encoder.styles.4.linear.weight"] = torch.zeros(32, 16)
    assert "has shape [32, 16]" in _err(_save(tmp_path, ckpt))
    # a missing tensor
    ckpt = _official_ckpt(enc, opts)
    del ckpt["state_dict"]["encoder.latlayer1.bias"]
    assert "missing ['latlayer1.bias']" in _err(_save(tmp_path, ckpt))
    # weights of another encoder class under this encoder_type
    other = build_encoder(small_config("ResNetBackboneEncoder", input_nc=3))
    assert "layout of Encoder4Editing" in _err(_save(tmp_path, _official_ckpt(other, opts)))
    # ReStyle opts say 6 channels, weights take 3
    bb = build_encoder(small_config("BackboneEncoder", input_nc=3))
    assert "6 input channels" in _err(_save(tmp_path, _official_ckpt(bb, {**_opts_for("BackboneEncoder", small_config(
        "BackboneEncoder")), "input_nc": 6})))


def test_error_not_a_checkpoint(tmp_path):
    assert "empty" in _err(_save_bytes(tmp_path, b""))
    assert "not a PyTorch checkpoint" in _err(_save_bytes(tmp_path, b"<html>quota exceeded</html>"))
    assert "not a pSp/e4e/ReStyle checkpoint" in _err(_save(tmp_path, [torch.zeros(2)]))
    assert "no 'state_dict'" in _err(_save(tmp_path, {"params": torch.zeros(2)}))
    assert "No file" in _err(tmp_path / "missing.pt")


def test_refuses_pickled_objects(tmp_path, small_e4e):
    """A checkpoint whose opts are an arbitrary Python object is refused, never unpickled."""
    cfg, enc = small_e4e
    p = _save(tmp_path, _official_ckpt(enc, _Opts()))
    assert "refuse" in _err(p)


class _Opts(dict):
    """A dict subclass: torch.load(weights_only=True) must refuse to rebuild it."""


def _save_bytes(tmp_path, data: bytes):
    p = tmp_path / "raw.pt"
    p.write_bytes(data)
    return p


# ---- e4e cars: 512-px generator (16 styles), 192x256 (HxW) inputs ---------------------------------------
def test_e4e_cars_official_layout_takes_192x256(tmp_path):
    """The official `e4e_cars_encode.pt` layout: Encoder4Editing with 16 style heads built for 256-px
    inputs (conv counts 4/5/6), opts stylegan_size 512 and dataset_type 'cars_encode', whose official
    transform resizes to 192x256. Reduced widths keep the test fast; the spatial layout is official."""
    cfg = default_config("Encoder4Editing", widths=(16, 24, 32, 48), blocks=(1, 1, 1, 1), w_dim=32, n_styles=16)
    torch.manual_seed(3)
    enc = build_encoder(cfg).eval()
    _randomise_buffers(enc, 4)
    assert [len(enc.styles[i].convs) // 2 for i in (0, 3, 7)] == [4, 5, 6]
    opts = {"encoder_type": "Encoder4Editing", "stylegan_size": 512, "dataset_type": "cars_encode",
            "start_from_latent_avg": True}
    path = tmp_path / "e4e_cars_encode.pt"
    torch.save(_official_ckpt(enc, opts, latent_avg=torch.randn(16, 32)), path)
    ck = load_encoder_checkpoint(path)
    assert ck.config.input_shape == (192, 256) and ck.config.n_styles == 16 and ck.latent_avg.shape == (16, 32)
    x = torch.rand(2, 3, 192, 256, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.no_grad():
        codes = ck.encoder(x)
        assert codes.shape == (2, 16, 32)
        assert torch.allclose(ck.encoder(x[1:]), codes[1:], atol=1e-5, rtol=0)   # rows stay per image
        # every head ends at 1x1 on the 12x16 / 24x32 / 48x64 maps (no spatial positions folded into the batch)
        feats = ck.encoder.body(ck.encoder._stem(x))
        assert tuple(feats.shape[-2:]) == (12, 16) and tuple(ck.encoder.styles[0].convs(feats).shape[-2:]) == (1, 1)
        # the square input of the FFHQ encoders is refused with the expected shape named
        with pytest.raises(ValueError, match=r"\[N, 3, 192, 256\]"):
            ck.encoder(torch.zeros(1, 3, 256, 256))
    # the same weights with FFHQ options take 256x256 and give other codes for the resized image
    ffhq = encoder_from_checkpoint(_official_ckpt(enc, {**opts, "dataset_type": "ffhq_encode"}))
    assert ffhq.config.input_shape == (256, 256)
    # an input shape the heads cannot reduce is a sentence, not a crash later
    with pytest.raises(ValueError, match="does not reduce"):
        EncoderConfig(encoder_type="Encoder4Editing", input_hw=(200, 256))


def test_e4e_cars_matches_the_official_encoder():
    """Vector from the official e4e `Encoder4Editing(50, 'ir_se', opts)` with stylegan_size 512 on a
    192x256 input (tests/data/official_torch/make_vectors.py): weights from the JSON recipe in the
    official checkpoint layout, loaded through encoder_from_checkpoint with the cars options."""
    import hashlib
    import json

    import numpy as np
    root = Path(__file__).resolve().parents[2] / "data" / "official_torch"
    meta = json.loads((root / "e4e_cars_encoder.json").read_text())
    codes = torch.from_numpy(np.load(root / "e4e_cars_encoder.npz")["codes"])
    x = np.random.RandomState(6).uniform(-1, 1, (1, 3, 192, 256)).astype(np.float32)
    assert hashlib.sha256(x.tobytes()).hexdigest() == meta["x_sha256"]
    sd = recipe_state_dict(meta["entries"])
    ck = encoder_from_checkpoint({"state_dict": {f"encoder.{k}": v for k, v in sd.items()},
                                  "opts": meta["constructor"]["opts"]}, "e4e_cars_encode.pt")
    assert ck.config.input_shape == (192, 256) and ck.config.n_styles == 16
    with torch.no_grad():
        got = ck.encoder(torch.from_numpy(x))
    assert rel_err(got, codes) <= CODES_TOL
