"""StyleGAN3 (T and R) against the official NVlabs parity vectors, plus schedule, loading and helpers.

Parity data: ../shared/parity/nvlabs_sg3{t,r}_g64.{json,safetensors}, made by
NVlabs/stylegan3@c233a919 `training/networks_stylegan3.py: Generator` on CPU in float32.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from shared.archs.stylegan3 import (StyleGAN3Config, StyleGAN3Generator, config_from_state_dict,
                                    design_lowpass_filter, input_transform_matrix, layer_schedule,
                                    set_input_transform)
from shared.errors import CheckpointError
from tests.parity import load_vector

VECTORS = ["nvlabs_sg3t_g64", "nvlabs_sg3r_g64"]
IMAGE_CASES = ["a", "b", "d", "e", "f"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _load_vector(parity_dir: Path, name: str) -> tuple[dict, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(json, state dict, other tensors); cloned, since unaligned safetensors memory shifts BLAS results."""
    sd, tensors, meta = load_vector(parity_dir, name)
    return meta, sd, tensors


def _max_diff(ours: torch.Tensor, expected: torch.Tensor) -> float:
    assert ours.shape == expected.shape and ours.dtype == torch.float32
    return (ours - expected).abs().max().item()


@pytest.fixture(scope="module", params=VECTORS)
def vector(request, parity_dir):
    """Runs every case once through a generator built by `from_nvlabs` from the JSON constructor."""
    meta, sd, t = _load_vector(parity_dir, request.param)
    G = StyleGAN3Generator.from_nvlabs(meta["constructor"], sd)
    z, c0 = t["z"], torch.zeros([t["z"].shape[0], 0])
    out = {}
    with torch.no_grad():
        out["a.img"] = G(z, c0, truncation_psi=1, noise_mode="const")
        out["b.img"] = G(z, c0, truncation_psi=0.7, truncation_cutoff=None, noise_mode="const")
        out["c.ws"] = G.mapping(z, None, truncation_psi=1)
        out["c.ws_trunc"] = G.mapping(z, c0, truncation_psi=0.7, truncation_cutoff=None)
        out["d.img"] = G.synthesis(t["d.ws"], noise_mode="const")
        G.synthesis.input.transform.copy_(t["e.transform"])
        out["e.img"] = G(z, None, truncation_psi=1, noise_mode="const")
        out["f.img"] = G.synthesis(t["d.ws"], noise_mode="const")
    return request.param, meta, sd, t, G, out


# ---- parity ----------------------------------------------------------------------------------
@pytest.mark.slow  # ~1 min for both vectors with the current reference filtered_lrelu on one core
@pytest.mark.parametrize("case", IMAGE_CASES)
def test_parity_images(vector, case):
    name, _, _, t, _, out = vector
    expected = t[f"{case}.img"]
    tol = 1e-4 * max(1.0, expected.abs().max().item())
    assert _max_diff(out[f"{case}.img"], expected) <= tol, f"{name} case {case}"


@pytest.mark.slow
@pytest.mark.parametrize("key", ["c.ws", "c.ws_trunc"])
def test_parity_ws(vector, key):
    name, _, _, t, _, out = vector
    tol = 1e-5 * max(1.0, t[key].abs().max().item())
    assert _max_diff(out[key], t[key]) <= tol, f"{name} {key}"


@pytest.mark.slow
def test_parity_outputs_are_not_trivial(vector):
    """Guards the parity cases: truncation and the transform really change the images."""
    _, _, _, t, _, out = vector
    assert (out["a.img"] - out["b.img"]).abs().max() > 1e-2
    assert (out["a.img"] - out["e.img"]).abs().max() > 1e-3
    assert (t["c.ws"] - t["c.ws_trunc"]).abs().max() > 1e-1


@pytest.mark.slow
def test_parity_with_inferred_config(vector):
    """A bare state dict is enough: the inferred config equals the constructor's, and it runs."""
    name, meta, sd, t, G_ref, _ = vector
    cfg = config_from_state_dict(sd)
    assert cfg == StyleGAN3Config.from_nvlabs_kwargs(meta["constructor"])
    G = StyleGAN3Generator.from_state_dict(sd)
    assert G.config == cfg
    with torch.no_grad():
        img = G.synthesis(t["d.ws"], noise_mode="const")
    expected = t["d.img"]
    assert _max_diff(img, expected) <= 1e-4 * max(1.0, expected.abs().max().item()), name


@pytest.mark.parametrize("name", VECTORS)
def test_state_dict_keys_shapes_and_order_match_official(name, parity_dir):
    meta, sd, _ = _load_vector(parity_dir, name)
    G = StyleGAN3Generator.from_nvlabs(meta["constructor"], sd)
    ours = G.state_dict()
    official = [(k, shape) for k, shape, _ in meta["weights"]["state_dict_keys"]]
    assert [(k, list(v.shape)) for k, v in ours.items()] == official
    for k, v in ours.items():
        assert torch.equal(v, sd[k]), k


# ---- filter design -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", VECTORS)
def test_designed_filters_equal_the_official_buffers(name, parity_dir):
    meta, sd, _ = _load_vector(parity_dir, name)
    cfg = StyleGAN3Config.from_nvlabs_kwargs(meta["constructor"])
    G = StyleGAN3Generator(cfg, generator=torch.Generator().manual_seed(0))
    n_checked = 0
    for key, f in G.state_dict().items():
        if key.endswith("_filter"):
            assert f.shape == sd[key].shape, key
            assert (f - sd[key]).abs().max().item() <= 3e-8, key  # float32 rounding at most
            n_checked += 1
    assert n_checked == 28  # L14 (ToRGB) has neither filter; every other layer has both
    radial = [k for k, v in sd.items() if v.ndim == 2 and k.endswith("down_filter")]
    assert len(radial) == (12 if cfg.use_radial_filters else 0)  # critically sampled L12, L13 stay separable


def test_filter_design_against_scipy_firwin():
    signal = pytest.importorskip("scipy.signal")
    special = pytest.importorskip("scipy.special")
    import numpy as np
    for taps, cutoff, width, fs in [(12, 2, 4.3, 32), (13, 16, 3.7, 64), (24, 100.5, 40, 512), (7, 3, 0.5, 16)]:
        ref = signal.firwin(numtaps=taps, cutoff=cutoff, width=width, fs=fs)
        ref = torch.tensor(ref, dtype=torch.float32)
        assert (design_lowpass_filter(taps, cutoff, width, fs) - ref).abs().max() <= 3e-8
        if taps % 2 == 0:  # the official jinc formula divides by r, which is never 0 for even taps
            x = (np.arange(taps) - (taps - 1) / 2) / fs
            r = np.hypot(*np.meshgrid(x, x))
            f = special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
            w = np.kaiser(taps, signal.kaiser_beta(signal.kaiser_atten(taps, width / (fs / 2))))
            f = f * np.outer(w, w)
            f = torch.tensor(f / f.sum(), dtype=torch.float32)
            assert (design_lowpass_filter(taps, cutoff, width, fs, radial=True) - f).abs().max() <= 3e-8
    assert design_lowpass_filter(1, 2, 1, 8) is None


def test_radial_filter_with_odd_taps_is_finite():
    f = design_lowpass_filter(7, 3.0, 2.0, 16, radial=True)
    assert torch.isfinite(f).all() and abs(f.sum().item() - 1) < 1e-6 and torch.equal(f, f.t())


# ---- official FFHQ-1024 configs (shapes only, on the meta device) -------------------------------
FFHQ_T = dict(z_dim=512, w_dim=512, c_dim=0, img_resolution=1024, img_channels=3, mapping_kwargs={"num_layers": 2},
              channel_base=32768, channel_max=512, magnitude_ema_beta=0.5 ** (32 / 20e3))
FFHQ_R = dict(FFHQ_T, channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True)


@pytest.mark.parametrize("kwargs, names, n_params", [
    (FFHQ_T, ["L0_36_512", "L1_36_512", "L2_52_512", "L3_52_512", "L4_84_512", "L5_148_512", "L6_148_512",
              "L7_276_323", "L8_276_203", "L9_532_128", "L10_1044_81", "L11_1044_51", "L12_1044_32",
              "L13_1024_32", "L14_1024_3"], 22_313_167),
    (FFHQ_R, ["L0_36_1024", "L1_36_1024", "L2_52_1024", "L3_52_1024", "L4_84_1024", "L5_148_1024",
              "L6_148_1024", "L7_276_645", "L8_276_406", "L9_532_256", "L10_1044_161", "L11_1044_102",
              "L12_1044_64", "L13_1024_64", "L14_1024_3"], 15_093_151),
], ids=["T", "R"])
def test_ffhq_1024_official_key_set(kwargs, names, n_params):
    cfg = StyleGAN3Config.from_nvlabs_kwargs(kwargs)
    with torch.device("meta"):
        G = StyleGAN3Generator(cfg)
    sd = G.state_dict()
    assert G.num_ws == 16 and G.synthesis.layer_names == names
    assert len(sd) == 5 + 6 + 14 * 7 + 5  # mapping, input, L0..L13, ToRGB (no filters)
    assert sum(p.numel() for p in G.parameters()) == n_params  # the paper's 22.3M (T) / 15.1M (R)
    ch, k = (512, 3) if kwargs is FFHQ_T else (1024, 1)
    expect = {"mapping.w_avg": [512], "mapping.fc0.weight": [512, 512], "mapping.fc1.bias": [512],
              "synthesis.input.weight": [ch, ch], "synthesis.input.freqs": [ch, 2],
              "synthesis.input.phases": [ch], "synthesis.input.transform": [3, 3],
              "synthesis.input.affine.weight": [4, 512], f"synthesis.{names[0]}.weight": [ch, ch, k, k],
              f"synthesis.{names[0]}.magnitude_ema": [], f"synthesis.{names[0]}.up_filter": [12],
              f"synthesis.{names[0]}.down_filter": [12, 12] if k == 1 else [12],
              f"synthesis.{names[4]}.up_filter": [24], f"synthesis.{names[10]}.up_filter": [24],
              f"synthesis.{names[12]}.down_filter": [12], f"synthesis.{names[13]}.down_filter": [12],
              f"synthesis.{names[14]}.weight": [3, ch // 16, 1, 1],
              f"synthesis.{names[14]}.affine.weight": [ch // 16, 512]}
    for key, shape in expect.items():
        assert list(sd[key].shape) == shape, key
    assert not any(key.startswith(f"synthesis.{names[14]}.") and key.endswith("_filter") for key in sd)
    inp, specs = layer_schedule(cfg)
    assert (inp.size, inp.sampling_rate, inp.bandwidth) == (36, 16.0, 2.0)
    assert [s.out_sampling_rate for s in specs] == [16, 16, 32, 32, 64, 128, 128, 256, 256, 512] + [1024] * 5
    assert sum(s.use_fp16 for s in specs) == 10  # sampling rate > 1024 / 2**4 (num_fp16_res=4): L5..L14


# ---- loading from official kwargs ----------------------------------------------------------------
class _EasyDict(dict):
    """Stands in for dnnlib.EasyDict, which real pickles hold."""
    def __getattr__(self, name):
        return self[name]


def test_from_nvlabs_accepts_dict_subclasses_and_training_only_kwargs(parity_dir):
    meta, sd, t = _load_vector(parity_dir, "nvlabs_sg3t_g64")
    kw = _EasyDict({k: v for k, v in meta["constructor"].items() if k != "class_name"})
    kw["mapping_kwargs"] = _EasyDict(kw["mapping_kwargs"], w_avg_beta=0.995)
    kw.update(magnitude_ema_beta=0.998, num_fp16_res=4, conv_clamp=256)
    G = StyleGAN3Generator.from_nvlabs(kw, sd)
    assert G.config.magnitude_ema_beta == 0.998
    assert replace(G.config, magnitude_ema_beta=0.999) == config_from_state_dict(sd)
    assert not G.training and all(v.dtype == torch.float32 for v in G.state_dict().values())
    sd["mapping.w_avg"].add_(1.0)  # the generator owns its tensors
    assert not torch.equal(G.w_avg, sd["mapping.w_avg"])


@pytest.mark.parametrize("extra, named", [
    ({"use_noise": True}, "use_noise"),
    ({"mapping_kwargs": {"num_layers": 2, "layer_features": 256}}, "mapping_kwargs.layer_features"),
])
def test_from_nvlabs_refuses_unknown_kwargs(extra, named, parity_dir):
    meta, sd, _ = _load_vector(parity_dir, "nvlabs_sg3t_g64")
    with pytest.raises(CheckpointError, match=named):
        StyleGAN3Generator.from_nvlabs({**meta["constructor"], **extra}, sd)


def test_from_nvlabs_refuses_other_classes_and_missing_kwargs(parity_dir):
    meta, sd, _ = _load_vector(parity_dir, "nvlabs_sg3t_g64")
    with pytest.raises(CheckpointError, match="StyleGAN3"):
        kw = {**meta["constructor"], "class_name": "training.networks_stylegan2.Generator"}
        StyleGAN3Generator.from_nvlabs(kw, sd)
    kw = dict(meta["constructor"])
    del kw["w_dim"]
    with pytest.raises(CheckpointError, match="w_dim"):
        StyleGAN3Generator.from_nvlabs(kw, sd)


def test_strict_key_and_shape_checks(parity_dir):
    meta, sd, _ = _load_vector(parity_dir, "nvlabs_sg3t_g64")
    bad = dict(sd)
    del bad["synthesis.L3_36_64.bias"]
    with pytest.raises(CheckpointError, match="missing synthesis.L3_36_64.bias"):
        StyleGAN3Generator.from_nvlabs(meta["constructor"], bad)
    bad = {**sd, "synthesis.L14_64_3.up_filter": torch.ones(12)}
    with pytest.raises(CheckpointError, match="unexpected synthesis.L14_64_3.up_filter"):
        StyleGAN3Generator.from_nvlabs(meta["constructor"], bad)
    bad = {**sd, "synthesis.L0_36_64.weight": torch.zeros(64, 64, 1, 1)}
    with pytest.raises(CheckpointError, match="L0_36_64.weight"):
        StyleGAN3Generator.from_nvlabs(meta["constructor"], bad)
    with pytest.raises(CheckpointError, match="conv_kernel|L0_36_64"):  # R-shaped weights, T kwargs
        StyleGAN3Generator.from_nvlabs({**meta["constructor"], "conv_kernel": 1}, sd)


def test_config_inference_refuses_non_default_schedules_and_foreign_tensors(parity_dir):
    _, sd, _ = _load_vector(parity_dir, "nvlabs_sg3t_g64")
    with pytest.raises(CheckpointError, match="filters of L4_52_64"):
        config_from_state_dict({**sd, "synthesis.L4_52_64.up_filter": sd["synthesis.L4_52_64.up_filter"] * 1.01})
    with pytest.raises(CheckpointError, match="not an official StyleGAN3"):
        config_from_state_dict({"style.1.weight": torch.zeros(4, 4)})


# ---- config, transform, interface ----------------------------------------------------------------
def test_config_round_trips_through_json_and_nvlabs_kwargs():
    cfg = StyleGAN3Config(img_resolution=256, channel_base=65536, channel_max=1024, conv_kernel=1,
                          use_radial_filters=True, c_dim=10, conv_clamp=None, mapping_layers=3)
    assert StyleGAN3Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert StyleGAN3Config.from_nvlabs_kwargs(cfg.to_nvlabs_kwargs()) == cfg
    with pytest.raises(ValueError, match="bogus"):
        StyleGAN3Config.from_dict({**cfg.to_dict(), "bogus": 1})


def test_set_input_transform_matches_gen_images(parity_dir):
    meta, sd, t = _load_vector(parity_dir, "nvlabs_sg3r_g64")
    G = StyleGAN3Generator.from_nvlabs(meta["constructor"], sd)
    m = set_input_transform(G, translate=(0.1, -0.05), angle=10)
    assert torch.equal(m, t["e.transform"])
    assert torch.equal(G.synthesis.input.transform, t["e.transform"])
    assert torch.allclose(m, torch.tensor(meta["transform"]["matrix_written_to_buffer"]), rtol=0, atol=1e-7)
    set_input_transform(G)
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))
    assert torch.equal(input_transform_matrix((0.0, 0.0), 90.0).round(decimals=6),
                       torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]))


def _tiny(**kw) -> StyleGAN3Config:
    return StyleGAN3Config(**{**dict(z_dim=8, w_dim=8, img_resolution=16, channel_base=128, channel_max=8), **kw})


def test_interface_truncation_cutoff_and_w_avg():
    G = StyleGAN3Generator(_tiny(), generator=torch.Generator().manual_seed(1)).eval()
    assert (G.z_dim, G.w_dim, G.c_dim, G.num_ws, G.img_resolution, G.img_channels) == (8, 8, 0, 16, 16, 3)
    G.w_avg = torch.full([8], 0.5)
    assert torch.equal(G.mapping.w_avg, torch.full([8], 0.5))
    z = torch.randn([2, 8], generator=torch.Generator().manual_seed(2))
    ws = G.mapping(z)
    ws_t = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=6)
    assert torch.equal(ws_t[:, 6:], ws[:, 6:])
    assert torch.allclose(ws_t[:, :6], 0.5 + 0.5 * (ws[:, :6] - 0.5))
    img = G.synthesis(ws, noise_mode="none", force_fp32=True, update_emas=False)
    assert img.shape == (2, 3, 16, 16) and img.dtype == torch.float32
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="bogus")
    with pytest.raises(ValueError, match=r"\[N, 16, 8\]"):
        G.synthesis(ws[:, :3])
    with pytest.raises(ValueError, match=r"\[N, 8\]"):
        G.mapping(torch.zeros(2, 5))


def test_class_conditional_mapping():
    G = StyleGAN3Generator(_tiny(c_dim=3), generator=torch.Generator().manual_seed(3)).eval()
    sd = G.state_dict()
    assert list(sd["mapping.embed.weight"].shape) == [8, 3] and list(sd["mapping.fc0.weight"].shape) == [8, 16]
    z = torch.randn([2, 8], generator=torch.Generator().manual_seed(4))
    c = torch.eye(3)[[0, 2]]
    ws = G.mapping(z, c)
    assert not torch.allclose(ws, G.mapping(z, torch.eye(3)[[1, 1]]))
    with pytest.raises(ValueError, match="class-conditional"):
        G.mapping(z, None)
    G2 = StyleGAN3Generator.from_nvlabs(G.config.to_nvlabs_kwargs(), sd)
    assert torch.equal(G2.mapping(z, c), ws)
    inferred = config_from_state_dict(sd)  # every layer is at channel_max, so channel_base is not identifiable
    assert replace(inferred, channel_base=G.config.channel_base) == G.config
    assert layer_schedule(inferred) == layer_schedule(G.config)


def test_determinism():
    def g(seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    A, B, C = (StyleGAN3Generator(_tiny(), generator=g(s)).eval() for s in (5, 5, 6))
    assert all(torch.equal(a, b) for a, b in zip(A.state_dict().values(), B.state_dict().values()))
    assert not torch.equal(A.synthesis.input.freqs, C.synthesis.input.freqs)
    z = torch.randn([3, 8], generator=g(7))
    with torch.no_grad():
        x1, x2 = A(z, truncation_psi=0.7), A(z, truncation_psi=0.7)
        single = torch.cat([A(z[i:i + 1], truncation_psi=0.7) for i in range(3)])
    assert torch.equal(x1, x2)
    assert (x1 - single).abs().max() <= 1e-5  # batch-wide style RMS only matters at the 1e-8 epsilon


def test_reference_path_supports_autograd():
    G = StyleGAN3Generator(_tiny(use_radial_filters=True, conv_kernel=1), generator=torch.Generator().manual_seed(8))
    ws = torch.randn([1, G.num_ws, G.w_dim], generator=torch.Generator().manual_seed(9)).requires_grad_(True)
    G.synthesis(ws).square().mean().backward()
    assert ws.grad is not None and torch.isfinite(ws.grad).all() and ws.grad.abs().sum() > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", VECTORS)
def test_cuda_fp32_parity_and_fp16_path(name, monkeypatch, parity_dir):
    """Device handling of our modules (reference ops pinned; the kernels have their own tests)."""
    monkeypatch.setenv("HUB_OPS", "ref")
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    meta, sd, t = _load_vector(parity_dir, name)
    G = StyleGAN3Generator.from_nvlabs(meta["constructor"], sd).to("cuda")
    ws, expected = t["d.ws"].cuda(), t["d.img"]
    with torch.no_grad():
        img32 = G.synthesis(ws).cpu()
        img16 = G.synthesis(ws, fp16=True).cpu()
        forced = G.synthesis(ws, fp16=True, force_fp32=True).cpu()
    scale = max(1.0, expected.abs().max().item())
    assert _max_diff(img32, expected) <= 1e-4 * scale
    assert torch.equal(forced, img32)
    assert torch.isfinite(img16).all() and img16.dtype == torch.float32
    assert _max_diff(img16, expected) <= 2e-2 * scale  # half precision in L5..L14, as official GPU inference
