"""shared.rig: the StyleRig RigNet (Tewari et al., CVPR 2020) at run time: shapes, rows, control units,
the slider defaults, and its safetensors file (bit-exact round trip, clear refusals)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from shared.errors import CheckpointError, InputError
from shared.portraits import FACTORS
from shared.rig import (HEADER_KEY, RigConfig, RigControl, RigNet, controls_tensor, default_controls, demo_controls,
                        load_rig, read_rig_header, rig_edit, save_rig)

W_DIM, NUM_WS = 16, 6


def _rig(rows=None, seed: int = 0) -> RigNet:
    rig = RigNet(RigConfig(W_DIM, NUM_WS, demo_controls(), hidden=12, code_dim=4, rows=rows),
                 generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():                                   # a non-trivial rig (a fresh one is the identity)
        for p in rig.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
        rig.w_mean.fill_(0.3)
        rig.w_std.fill_(2.0)
    return rig.eval()


def _ws(n: int = 3) -> torch.Tensor:
    return torch.randn(n, NUM_WS, W_DIM, generator=torch.Generator().manual_seed(5))


def _mid() -> dict[str, float]:
    return {c.name: (c.low + c.high) / 2 for c in demo_controls()}


def test_demo_controls_follow_the_factor_table():
    specs = {s.name: s for s in FACTORS}
    ctrl = demo_controls()
    assert [c.name for c in ctrl] == ["yaw", "pitch", "smile", "mouth_open", "light_azimuth", "light_elevation"]
    for c in ctrl:
        assert (c.low, c.high) == (specs[c.name].low, specs[c.name].high) and c.unit
    yaw = ctrl[0]
    assert yaw.normalise(torch.tensor([-40.0, 0.0, 40.0])).tolist() == [-1.0, 0.0, 1.0]
    assert yaw.denormalise(torch.tensor(0.5)).item() == 20.0
    with pytest.raises(ValueError, match="not continuous factors"):
        demo_controls(("yaw", "glasses"))


def test_fresh_rig_is_the_identity_and_shapes_hold():
    rig = RigNet(RigConfig(W_DIM, NUM_WS, demo_controls()))
    ws = _ws()
    assert torch.equal(rig(ws, torch.zeros(3, 6)), ws)
    assert _rig().offsets(ws, torch.zeros(3, 6)).shape == (3, NUM_WS, W_DIM)
    with pytest.raises(ValueError, match=r"ws must be \[N, 6, 16\]"):
        rig(ws[:, :5], torch.zeros(3, 6))
    with pytest.raises(ValueError, match=r"targets must be \[3, 6\]"):
        rig(ws, torch.zeros(3, 5))


def test_only_the_named_rows_move_and_targets_matter():
    rig = _rig(rows=(0, 2))
    ws = _ws()
    a = rig_edit(rig, ws, _mid())
    b = rig_edit(rig, ws, {**_mid(), "yaw": 30.0})
    assert a.shape == ws.shape and a.dtype == ws.dtype
    untouched = [1, 3, 4, 5]
    assert torch.equal(a[:, untouched], ws[:, untouched]) and torch.equal(b[:, untouched], ws[:, untouched])
    assert (a[:, [0, 2]] - ws[:, [0, 2]]).abs().amax() > 1e-3
    assert (a - b).abs().amax() > 1e-3
    # the rows are per-row networks: each row's offset depends on its own latent only
    ws2 = ws.clone()
    ws2[:, 2] += 1.0
    c = rig_edit(rig, ws2, _mid())
    assert torch.allclose(c[:, 0], a[:, 0], atol=1e-6)


def test_dict_and_tensor_controls_agree_and_broadcast():
    rig, ws = _rig(), _ws()
    vals = {**_mid(), "yaw": -20.0, "smile": 0.5}
    t = torch.tensor([vals[c.name] for c in rig.config.controls])
    assert torch.equal(rig_edit(rig, ws, vals), rig_edit(rig, ws, t))
    assert torch.equal(rig_edit(rig, ws, vals), rig_edit(rig, ws, t.expand(3, -1)))
    u = controls_tensor(rig.config, vals, 3)
    assert u.shape == (3, 6) and u[0, 0].item() == pytest.approx(-0.5) and u[0, 2].item() == pytest.approx(0.5)


def test_user_mistakes_are_one_sentence():
    cfg = _rig().config
    with pytest.raises(InputError, match="missing pitch"):
        controls_tensor(cfg, {k: v for k, v in _mid().items() if k != "pitch"}, 1)
    with pytest.raises(InputError, match="no control roll"):
        controls_tensor(cfg, {**_mid(), "roll": 3.0}, 1)
    with pytest.raises(InputError, match=r"yaw must be within -40..40"):
        controls_tensor(cfg, {**_mid(), "yaw": 90.0}, 1)
    with pytest.raises(InputError, match="finite"):
        controls_tensor(cfg, {**_mid(), "smile": float("nan")}, 1)
    with pytest.raises(InputError, match="for 2 latents but 3"):
        controls_tensor(cfg, torch.zeros(2, 6), 3)


def test_default_controls_read_the_prediction_and_clamp():
    cfg = _rig().config
    factors = {c.name: torch.tensor([c.low, (c.low + c.high) / 2]) for c in cfg.controls}
    factors["yaw"] = torch.tensor([55.0, -12.5])                     # beyond the range: clamped
    pred = SimpleNamespace(factors=factors)
    first, second = default_controls(pred, cfg), default_controls(pred, cfg, 1)
    assert first["yaw"] == 40.0 and first["smile"] == -1.0 and second["yaw"] == -12.5
    assert second["light_elevation"] == pytest.approx(20.0)
    controls_tensor(cfg, first, 1)                                    # what it returns is always accepted


def test_config_round_trip_and_validation():
    cfg = RigConfig(W_DIM, NUM_WS, demo_controls()[:2], rows=(1, 4))
    assert RigConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="rows must be distinct"):
        RigConfig(W_DIM, NUM_WS, demo_controls(), rows=(0, 6))
    with pytest.raises(ValueError, match="unique"):
        RigConfig(W_DIM, NUM_WS, (RigControl("a", 0, 1), RigControl("a", 0, 2)))
    with pytest.raises(ValueError, match="high > low"):
        RigControl("a", 1.0, 1.0)


def test_save_load_round_trip_is_bit_exact(tmp_path):
    rig = _rig(rows=(0, 1, 3))
    path = save_rig(rig, tmp_path / "rig.safetensors", training={"steps": 7})
    back = load_rig(path)
    assert back.config == rig.config and not back.training
    assert not any(p.requires_grad for p in back.parameters())
    sd, bsd = rig.state_dict(), back.state_dict()
    assert sd.keys() == bsd.keys() and all(torch.equal(sd[k], bsd[k]) for k in sd)
    ws = _ws()
    assert torch.equal(rig_edit(back, ws, _mid()), rig_edit(rig, ws, _mid()))
    header = read_rig_header(path)
    assert header["arch"] == "rignet" and header["format_version"] == 1 and header["training"] == {"steps": 7}
    half = load_rig(save_rig(rig, tmp_path / "half.safetensors", dtype=torch.float16))
    assert half.enc1.weight.dtype == torch.float32
    assert torch.allclose(rig_edit(half, ws, _mid()), rig_edit(rig, ws, _mid()), atol=5e-3)


def test_loader_refuses_foreign_files(tmp_path):
    rig = _rig()
    tensors = {k: v.contiguous() for k, v in rig.state_dict().items()}
    header = {"format_version": 1, "arch": "rignet", "config": rig.config.to_dict()}
    cases = {
        "plain": (None, "without a rig header"),
        "mapper": ({**header, "arch": "styleclip-levels-mapper"}, "not a rignet"),
        "newer": ({**header, "format_version": 9}, "newer version"),
        "config": ({**header, "config": {**rig.config.to_dict(), "w_dim": 32}}, "do not fit the header's config"),
        "fields": ({**header, "config": {**rig.config.to_dict(), "bogus": 1}}, "config is malformed"),
    }
    for name, (hdr, msg) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        save_file(tensors, str(path), metadata=None if hdr is None else {HEADER_KEY: json.dumps(hdr)})
        with pytest.raises(CheckpointError, match=msg):
            load_rig(path)
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_rig(tmp_path / "junk.safetensors")
    with pytest.raises(CheckpointError, match="No rig file"):
        load_rig(tmp_path / "absent.safetensors")


def test_model_cache_loads_a_rig_record(tmp_path):
    from shared.model_cache import load_record
    from shared.registry import LocalSource, ModelCard
    rig = _rig()
    path = save_rig(rig, tmp_path / "rig.safetensors")
    card = ModelCard(id="rig-test", family="t", arch="rignet", arch_config=None, format="safetensors",
                     tasks=("reposing",), sources=(LocalSource(str(path)),), sha256=None, size=None, license="MIT",
                     paper="p", official_repo="r", resolution=64, description="d")
    loaded = load_record(card, path)
    assert isinstance(loaded, RigNet) and loaded.config == rig.config
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), rig.state_dict().values()))
