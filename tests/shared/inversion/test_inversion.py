"""Inversion methods (`shared.inversion`) on tiny random StyleGAN2 generators and encoders.

Targets are rendered by the same generator from other latents, so a good inversion exists and
each method can be held to numbers: it lowers its own loss, beats the mean-latent image by PSNR,
and the method-specific contracts hold (mask, noise, encoder arithmetic, PTI's private copy,
cancellation, determinism, offline LPIPS and ArcFace loading).
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shared.archs.encoders import EncoderConfig, build_encoder
from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from shared.errors import InputError
from shared.inversion import (ArcFaceIdentity, FeatureLoss, InversionCancelled, LPIPSLoss, NoiseOptions,
                              OptimizeOptions, PTIOptions, arcface_from_state_dict, build_lpips, compute_w_stats,
                              encode, encode_then_optimize, encoder_input, load_arcface,
                              optimize_latent, optimize_wplus_noise, perceptual_loss, pivotal_tuning, psnr,
                              synthesize_with_noises)
from shared.inversion.losses import LPIPS_SLICES
from shared.inversion.optimize import lr_schedule
from shared.errors import CheckpointError
from tests.shared.inversion.arcface_reference import OfficialBackbone, randomised_state

RES, W_DIM, NUM_WS = 32, 32, 8
STEPS = 80
SAMPLES = 2000


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny_generator() -> StyleGAN2Generator:
    cfg = StyleGAN2Config.rosinality(RES, W_DIM, 2, channels={4: 32, 8: 32, 16: 16, 32: 16})
    G = StyleGAN2Generator(cfg).init_random_(torch.Generator().manual_seed(0)).eval()
    with torch.no_grad():  # official init zeroes the noise strengths; make noise matter
        for conv in [G.conv1, *G.convs]:
            conv.noise.weight.fill_(0.3)
        for rgb in [G.to_rgb1, *G.to_rgbs]:  # renders mostly inside [-1, 1], like a trained model
            rgb.conv.weight.mul_(0.3)
    return G


@pytest.fixture(scope="module")
def G() -> StyleGAN2Generator:
    return _tiny_generator()


@pytest.fixture(scope="module")
def stats(G):
    s = compute_w_stats(G, SAMPLES)
    with torch.no_grad():
        G.w_avg.copy_(s.w_avg)
    return s


class _RandomFeatures(nn.Module):
    """A fixed random two-level conv feature extractor (a fast stand-in for VGG)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.c1, self.c2 = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 32, 3, stride=2, padding=1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        self.requires_grad_(False)

    def forward(self, x):
        a = F.relu(self.c1(x))
        return [a, F.relu(self.c2(a))]


@pytest.fixture(scope="module")
def perc() -> FeatureLoss:
    return FeatureLoss(_RandomFeatures(), "features:random-conv")


@pytest.fixture(scope="module")
def target(G):
    """A W+ target: rows 0-3 from one latent, 4-7 from another (not reachable in W)."""
    with torch.no_grad():
        w = G.mapping(torch.randn(2, W_DIM, generator=torch.Generator().manual_seed(5)))
        ws = torch.cat([w[:1, :4], w[1:, 4:]], dim=1)
        return G.synthesis(ws, noise_mode="const")


@pytest.fixture(scope="module")
def baseline(G, stats, target):
    with torch.no_grad():
        img = G.synthesis(stats.w_avg.reshape(1, 1, -1).expand(1, NUM_WS, W_DIM), noise_mode="const")
    return float(psnr(img, target))


@pytest.fixture(scope="module")
def runs(G, stats, target, perc):
    """W and W+ on the same budget, shared by several tests."""
    return {space: optimize_latent(G, target, OptimizeOptions(steps=STEPS, space=space, w_avg_samples=SAMPLES),
                                   perceptual=perc, w_stats=stats, seed=0)
            for space in ("w", "w+")}


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_unchanged(module: nn.Module, snap: dict[str, torch.Tensor]) -> None:
    now = module.state_dict()
    assert now.keys() == snap.keys()
    for k, v in snap.items():
        assert torch.equal(now[k], v), k
    assert all(p.grad is None for p in module.parameters())


# ---- optimisation ------------------------------------------------------------------------------

def test_synthesize_with_noises_equals_constant_noise(G):
    ws = G.mapping(torch.randn(2, W_DIM, generator=torch.Generator().manual_seed(1)))
    bufs = [getattr(G.noises, f"noise_{i}") for i in range(len(G.convs) + 1)]
    with torch.no_grad():
        assert torch.equal(synthesize_with_noises(G, ws, bufs), G.synthesis(ws, noise_mode="const"))
        other = [torch.zeros_like(b) for b in bufs]
        assert not torch.allclose(synthesize_with_noises(G, ws, other), G.synthesis(ws, noise_mode="const"))


@pytest.mark.parametrize("space", ["w", "w+"])
def test_optimisation_lowers_its_loss_and_beats_mean_latent(runs, target, baseline, space):
    r = runs[space]
    assert r.method == space and r.ws.shape == (1, NUM_WS, W_DIM) and r.image.shape == (1, 3, RES, RES)
    assert len(r.losses) == STEPS and r.noises is None and r.seconds > 0
    assert r.extra["perceptual"] == "features:random-conv"
    first, last = r.losses[0], r.losses[-1]
    assert last["loss"] < 0.5 * first["loss"]
    assert last["mse"] < first["mse"] and last["perceptual"] < first["perceptual"]
    assert r.image.min() >= -1 and r.image.max() <= 1
    assert float(psnr(r.image, target)) > baseline + 5
    if space == "w":
        assert torch.equal(r.ws, r.ws[:, :1].expand_as(r.ws))  # one vector repeated
    # the schedule: warm-up from 0, cosine decay towards 0 at the end
    assert r.losses[0]["lr"] == 0 and max(log["lr"] for log in r.losses) == pytest.approx(0.1)
    assert r.losses[-1]["lr"] < 0.01


def test_wplus_beats_w_on_the_same_budget(runs, target):
    """The target mixes two latents across layers, so W (one vector for all layers) cannot
    reproduce it while W+ can; with the same steps and schedule W+ must end clearly closer."""
    p_w, p_wp = (float(psnr(runs[s].image, target)) for s in ("w", "w+"))
    assert p_wp > p_w + 1.0, (p_w, p_wp)


def test_optimised_noise_is_regularised_and_renormalised(G, stats, target, perc):
    snap = _snapshot(G)
    opts = OptimizeOptions(steps=40, space="w+", noise="optimize", w_avg_samples=SAMPLES)
    r = optimize_latent(G, target, opts, perceptual=perc, w_stats=stats, seed=0)
    _assert_unchanged(G, snap)  # G's own noise buffers were copied, not optimised in place
    assert r.noises is not None and len(r.noises) == 2 * int(math.log2(RES)) - 3
    for i, n in enumerate(r.noises):
        assert n.shape == getattr(G.noises, f"noise_{i}").shape
        assert abs(float(n.mean())) < 1e-4 and float(n.square().mean()) == pytest.approx(1, abs=1e-4)
    assert all(not torch.equal(n, getattr(G.noises, f"noise_{i}")) for i, n in enumerate(r.noises))
    assert all("noise_reg" in log for log in r.losses) and r.losses[-1]["loss"] < r.losses[0]["loss"]
    with torch.no_grad():
        assert torch.allclose(r.image, synthesize_with_noises(G, r.ws, r.noises).clamp(-1, 1))
    assert r.extra["noise"] == "optimize"


def test_mask_restricts_fitting_and_noise_phase_improves(G, stats, target, perc):
    """Left half: the target; right half: a different render. Compared with the same W+ run
    without a mask, the masked run must fit the inside better and the outside worse, and its
    gain over the mean latent must be larger inside than outside."""
    with torch.no_grad():
        other = G.synthesis(G.mapping(torch.randn(1, W_DIM, generator=torch.Generator().manual_seed(9))))
        base = G.synthesis(stats.w_avg.reshape(1, 1, -1).expand(1, NUM_WS, W_DIM))
    mask = torch.zeros(1, 1, RES, RES)
    mask[..., : RES // 2] = 1
    composite = target * mask + other * (1 - mask)
    opts = OptimizeOptions(steps=STEPS, w_avg_samples=SAMPLES)
    r = optimize_wplus_noise(G, composite, opts, NoiseOptions(steps=40), perceptual=perc, mask=mask, w_stats=stats)
    free = optimize_latent(G, composite, opts, perceptual=perc, w_stats=stats)
    assert r.method == "w+n" and r.noises is not None and len(r.losses) == STEPS + 40
    wplus = r.extra["wplus_result"]  # phase 1 of the masked run: same budget as `free`

    def db(img, m):
        return float(psnr(img, composite, m))

    inside, outside = mask, 1 - mask
    assert db(wplus.image, inside) > db(free.image, inside) + 1
    assert db(wplus.image, outside) < db(free.image, outside) - 1
    assert db(wplus.image, inside) - db(base, inside) > db(wplus.image, outside) - db(base, outside) + 5
    phase2 = [log for log in r.losses if log["phase"] == 2]
    assert phase2[-1]["mse"] < phase2[0]["mse"]  # the noise maps fit what W+ left in the region
    assert db(r.image, inside) > db(wplus.image, inside)
    assert torch.equal(r.ws, wplus.ws)


def test_stylegan3_optimises_without_noise_and_refuses_the_noise_method():
    from shared.archs.stylegan3 import StyleGAN3Config, StyleGAN3Generator

    cfg = StyleGAN3Config(z_dim=8, w_dim=8, img_resolution=16, channel_base=128, channel_max=8, num_layers=4,
                          num_critical=1, margin_size=2)
    G3 = StyleGAN3Generator(cfg, generator=torch.Generator().manual_seed(0)).eval()
    snap = _snapshot(G3)
    with torch.no_grad():
        tgt = G3(torch.randn(1, 8, generator=torch.Generator().manual_seed(1)))
    r = optimize_latent(G3, tgt, OptimizeOptions(steps=6, noise="optimize", w_avg_samples=64))
    assert r.noises is None and r.extra["noise"] == "fixed" and r.ws.shape == (1, G3.num_ws, 8)
    assert r.losses[-1]["mse"] < r.losses[0]["mse"]
    _assert_unchanged(G3, snap)
    with pytest.raises(InputError, match="StyleGAN2"):
        optimize_wplus_noise(G3, tgt)


def test_schedule_and_presets():
    assert lr_schedule(0, 100, 0.05, 0.25) == 0 and lr_schedule(2, 100, 0.05, 0.25) == pytest.approx(0.4)
    assert lr_schedule(50, 100, 0.05, 0.25) == 1
    assert lr_schedule(90, 100, 0.05, 0.25) == pytest.approx(0.5 - 0.5 * math.cos(0.4 * math.pi))
    assert lr_schedule(0, 100, 0.0, 0.0) == 1 and lr_schedule(99, 100, 0.0, 0.0) == 1
    nv = OptimizeOptions.nvlabs_projector()
    assert (nv.steps, nv.lr, nv.space, nv.noise, nv.mse_weight, nv.noise_regularize_weight) == \
        (1000, 0.1, "w", "optimize", 0.0, 1e5)
    i2s = OptimizeOptions.image2stylegan()
    assert (i2s.steps, i2s.lr, i2s.space, i2s.lr_rampup, i2s.lr_rampdown, i2s.latent_noise) == \
        (5000, 0.01, "w+", 0.0, 0.0, 0.0)
    pti = PTIOptions()
    assert (pti.pivot.steps, pti.pivot.lr, pti.pivot.w_avg_samples, pti.steps, pti.lr, pti.perceptual_threshold) == \
        (450, 0.01, 600, 350, 3e-4, 0.07)


def test_bad_target_and_options_are_input_errors(G, target, stats):
    with pytest.raises(InputError, match=r"\[1, 3, 32, 32\]"):
        optimize_latent(G, target[..., :16, :16], w_stats=stats)
    with pytest.raises(InputError, match="empty"):
        optimize_latent(G, target, mask=torch.zeros(1, 1, RES, RES), w_stats=stats)
    with pytest.raises(InputError, match="'w' or 'w\\+'"):
        OptimizeOptions(space="z")


def test_cancellation_stops_between_steps_with_partial_result(G, stats, target, perc):
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 5

    with pytest.raises(InversionCancelled) as info:
        optimize_latent(G, target, OptimizeOptions(steps=50, w_avg_samples=SAMPLES), perceptual=perc, w_stats=stats,
                        should_stop=should_stop)
    partial = info.value.partial
    assert len(calls) == 6 and partial is not None and len(partial.losses) == 5
    assert partial.ws.shape == (1, NUM_WS, W_DIM) and partial.extra["stopped_early"]

    seen = []

    def progress(fraction, message):
        seen.append(fraction)
        if fraction >= 0.5:
            raise InversionCancelled("user pressed stop")

    with pytest.raises(InversionCancelled, match="user pressed stop") as info:
        optimize_latent(G, target, OptimizeOptions(steps=20, w_avg_samples=SAMPLES), w_stats=stats, progress=progress)
    assert seen == sorted(seen) and seen[-1] == 0.5 and len(info.value.partial.losses) == 10


def test_same_seed_same_result(G, stats, target, perc):
    opts = OptimizeOptions(steps=10, space="w+", noise="optimize", w_avg_samples=SAMPLES)
    a, b, c = (optimize_latent(G, target, opts, perceptual=perc, w_stats=stats, seed=s) for s in (3, 3, 4))
    assert torch.equal(a.ws, b.ws) and all(torch.equal(x, y) for x, y in zip(a.noises, b.noises))
    assert not torch.equal(a.ws, c.ws)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    d = optimize_latent(G, target, opts, perceptual=perc, w_stats=stats, seed=g1)
    e = optimize_latent(G, target, opts, perceptual=perc, w_stats=stats, seed=g2)
    assert torch.equal(d.ws, e.ws) and torch.equal(d.ws, a.ws)


# ---- encoders -------------------------------------------------------------------------------------

def _tiny_encoder(encoder_type: str, input_nc: int) -> nn.Module:
    cfg = EncoderConfig(encoder_type=encoder_type, mode="ir", input_nc=input_nc, n_styles=NUM_WS, w_dim=W_DIM,
                        input_size=32, widths=(8, 16, 24, 32), blocks=(1, 1, 1, 1))
    with torch.random.fork_rng():
        torch.manual_seed(len(encoder_type))
        return build_encoder(cfg).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def latent_avg(stats):
    g = torch.Generator().manual_seed(11)
    return stats.w_avg.expand(NUM_WS, W_DIM) + 0.1 * torch.randn(NUM_WS, W_DIM, generator=g)


@pytest.mark.parametrize("encoder_type,kind", [("GradualStyleEncoder", "psp"), ("Encoder4Editing", "e4e")])
def test_psp_and_e4e_add_latent_avg(G, target, latent_avg, encoder_type, kind):
    enc = _tiny_encoder(encoder_type, 3)
    big = F.interpolate(target, scale_factor=2, mode="bilinear", align_corners=False)  # resized back to 32
    r = encode(enc, G, big, latent_avg, kind=kind, resize_to=32)
    with torch.no_grad():
        x = encoder_input(big, 32)
        assert torch.allclose(x, F.interpolate(big, size=(32, 32), mode="bilinear", antialias=True))
        codes = enc(x)
        assert torch.equal(r.ws, codes + latent_avg)
        assert torch.equal(r.image, G.synthesis(r.ws, noise_mode="const").clamp(-1, 1))
        raw = encode(enc, G, big, latent_avg, kind=kind, resize_to=32, add_latent_avg=False)
        assert torch.equal(raw.ws, codes)
    assert r.method == kind and r.ws.shape == (1, NUM_WS, W_DIM) and r.steps == () and len(r.losses) == 1
    assert r.extra["latent_avg_added"] and not raw.extra["latent_avg_added"]


@pytest.mark.parametrize("encoder_type,kind", [("BackboneEncoder", "restyle_psp"),
                                               ("ProgressiveBackboneEncoder", "restyle_e4e")])
def test_restyle_keeps_every_step_and_accumulates_residuals(G, target, latent_avg, encoder_type, kind):
    enc = _tiny_encoder(encoder_type, 6)
    r = encode(enc, G, target, latent_avg, kind=kind, iterations=3, resize_to=32)
    assert len(r.steps) == 3 and len(r.losses) == 3 and r.extra["iterations"] == 3
    with torch.no_grad():  # the official run_on_batch loop, by hand
        ws = latent_avg.unsqueeze(0)
        y = F.adaptive_avg_pool2d(G.synthesis(ws, noise_mode="const"), (32, 32))
        for i in range(3):
            ws = enc(torch.cat([target, y], dim=1)) + ws
            img = G.synthesis(ws, noise_mode="const")
            y = F.adaptive_avg_pool2d(img, (32, 32))
            assert r.steps[i].index == i
            assert torch.allclose(r.steps[i].ws, ws, atol=1e-6)
            assert torch.allclose(r.steps[i].image, img.clamp(-1, 1), atol=1e-6)
    assert torch.equal(r.ws, r.steps[-1].ws) and torch.equal(r.image, r.steps[-1].image)


def test_encoder_errors(G, target, latent_avg):
    enc = _tiny_encoder("BackboneEncoder", 6)
    with pytest.raises(InputError, match="latent_avg"):
        encode(enc, G, target, None, kind="restyle_psp", resize_to=32)
    with pytest.raises(InputError, match="kind"):
        encode(enc, G, target, latent_avg, kind="hyperstyle", resize_to=32)
    cfg = EncoderConfig(encoder_type="GradualStyleEncoder", mode="ir", n_styles=6, w_dim=W_DIM, input_size=32,
                        widths=(8, 16, 24, 32), blocks=(1, 1, 1, 1))
    with pytest.raises(InputError, match="generator"):
        encode(build_encoder(cfg).eval(), G, target, None, kind="psp", resize_to=32)


def test_restyle_cancel_keeps_finished_iterations(G, target, latent_avg):
    enc = _tiny_encoder("BackboneEncoder", 6)
    calls = []
    with pytest.raises(InversionCancelled) as info:
        encode(enc, G, target, latent_avg, kind="restyle_psp", iterations=5, resize_to=32,
               should_stop=lambda: calls.append(1) or len(calls) > 2)
    assert len(info.value.partial.steps) == 2


def test_hybrid_starts_from_the_encoder_and_improves_it(G, stats, target, latent_avg, perc):
    enc = _tiny_encoder("Encoder4Editing", 3)
    r = encode_then_optimize(enc, G, target, latent_avg, kind="e4e", options=OptimizeOptions.hybrid(steps=40),
                             perceptual=perc, resize_to=32, w_stats=stats)
    e = r.extra["encoder_result"]
    assert r.method == "hybrid_e4e" and torch.equal(r.extra["init_ws"], e.ws)
    assert r.losses[-1]["loss"] < r.losses[0]["loss"]
    assert float(psnr(r.image, target)) > float(psnr(e.image, target)) + 3


# ---- PTI ----------------------------------------------------------------------------------------------

def test_pti_tunes_a_private_copy_and_improves_the_reconstruction(G, stats, target, perc):
    snap = _snapshot(G)
    opts = PTIOptions(pivot=OptimizeOptions(steps=40, space="w", noise="optimize", lr=0.1, mse_weight=0.0,
                                            w_avg_samples=SAMPLES),
                      steps=40, lr=3e-3, perceptual_threshold=0.0, locality_alpha=3.0)
    fractions = []
    r = pivotal_tuning(G, target, opts, perceptual=perc, w_stats=stats, seed=0,
                       progress=lambda f, m: fractions.append(f))
    _assert_unchanged(G, snap)  # bit-identical weights and buffers, no gradients left behind
    tuned = r.extra["generator"]
    assert tuned is not G and not any(p.requires_grad for p in tuned.parameters())
    assert any(not torch.equal(tuned.state_dict()[k], v) for k, v in snap.items())
    pivot = r.extra["pivot_result"]
    assert torch.equal(r.ws, pivot.ws) and r.extra["tuning_steps"] == 40
    tuning = [log for log in r.losses if log["phase"] == 2]
    assert len(tuning) == 40 and all("locality" in log for log in tuning)
    assert tuning[-1]["mse"] < 0.5 * tuning[0]["mse"]
    assert float(psnr(r.image, target)) > float(psnr(pivot.image, target)) + 3
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # the threshold stops early, before any update (official check order)
    early = pivotal_tuning(G, target, PTIOptions(steps=5, perceptual_threshold=1e9, locality=False),
                           perceptual=perc, pivot_ws=r.ws, seed=0)
    assert early.extra["stopped_early"] and early.extra["tuning_steps"] == 0 and early.extra["pivot_result"] is None
    _assert_unchanged(G, snap)


# ---- losses -----------------------------------------------------------------------------------------

def _no_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    import torchvision.models._api as tv_api
    monkeypatch.setattr(tv_api, "load_state_dict_from_url", refuse, raising=False)


def _vgg_feature_tensors(seed: int) -> dict[str, torch.Tensor]:
    """Random tensors under torchvision's `vgg16().features` names (built on meta: no init cost)."""
    from torchvision.models import vgg16

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in vgg16().features.state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    return {f"features.{k}": torch.randn(s, generator=g) * 0.05 for k, s in shapes.items()}


def test_lpips_builds_offline_with_a_random_trunk(monkeypatch):
    _no_downloads(monkeypatch)
    a = build_lpips(None, generator=torch.Generator().manual_seed(0))
    b = build_lpips(None, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not any(p.requires_grad for p in a.parameters()) and not a.training
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1, torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    loss = LPIPSLoss(a, "lpips-vgg16-random-trunk")
    d = loss(x, y)
    assert d.shape == (2,) and (d > 0).all() and torch.allclose(loss(x, x), torch.zeros(2), atol=1e-6)
    assert torch.allclose(loss(x, y, torch.zeros(1, 1, 64, 64)), torch.zeros(2), atol=1e-6)


def test_lpips_loads_vgg_features_from_safetensors_exactly(tmp_path, monkeypatch):
    import lpips
    from pathlib import Path
    from safetensors.torch import save_file

    _no_downloads(monkeypatch)
    feats = _vgg_feature_tensors(3)
    extra = {"head.fc.weight": torch.zeros(4, 4)}  # timm's file holds more than the trunk
    path = tmp_path / "model.safetensors"
    save_file({**feats, **extra}, str(path))
    m = build_lpips(path)
    sd = m.state_dict()
    for key, t in feats.items():
        i = int(key.split(".")[1])
        s = next(n for n, (lo, hi) in enumerate(LPIPS_SLICES, start=1) if lo <= i < hi)
        assert torch.equal(sd[f"net.slice{s}.{key[len('features.'):]}"], t), key
    heads = torch.load(Path(lpips.__file__).parent / "weights/v0.1/vgg.pth", map_location="cpu", weights_only=True)
    for k, v in heads.items():
        assert torch.equal(sd[k], v)
    assert sum(k.startswith("net.") for k in sd) == len(feats)
    loss = perceptual_loss(path)
    assert isinstance(loss, LPIPSLoss) and loss.name == "lpips-vgg16"

    bad = dict(feats)
    bad["features.28.weight"] = torch.zeros(3, 3)
    save_file(bad, str(tmp_path / "bad.safetensors"))
    with pytest.raises(CheckpointError, match="features.28.weight"):
        build_lpips(tmp_path / "bad.safetensors")


def test_perceptual_fallback_is_named_in_results(G, stats, target):
    loss = perceptual_loss(None, fallback=_RandomFeatures(), fallback_name="demo-predictor")
    assert isinstance(loss, FeatureLoss) and loss.name == "features:demo-predictor"
    r = optimize_latent(G, target, OptimizeOptions(steps=3, w_avg_samples=SAMPLES), perceptual=loss, w_stats=stats)
    assert r.extra["perceptual"] == "features:demo-predictor"
    r = optimize_latent(G, target, OptimizeOptions(steps=3, w_avg_samples=SAMPLES), w_stats=stats)
    assert r.extra["perceptual"] == "none" and "perceptual" not in r.losses[0]


# ---- identity -----------------------------------------------------------------------------------------

def test_arcface_official_ir_se50_layout():
    with torch.device("meta"):
        official, ours = OfficialBackbone(), ArcFaceIdentity()
    assert {k: v.shape for k, v in official.state_dict().items()} == {k: v.shape for k, v in ours.state_dict().items()}
    assert list(official.state_dict()) == list(ours.state_dict())


def test_arcface_loads_official_layout_and_matches_reference(tmp_path):
    widths = (16, 32, 48, 64)
    ref = OfficialBackbone(widths, (1, 2, 1, 1)).eval()
    sd = randomised_state(ref, 4)
    ref.load_state_dict(sd)
    path = tmp_path / "model_ir_se50.pth"
    torch.save(sd, path)
    model = load_arcface(path)
    assert isinstance(model, ArcFaceIdentity) and not model.training
    g = torch.Generator().manual_seed(2)
    a = torch.rand(2, 3, 256, 256, generator=g) * 2 - 1
    ramp = torch.linspace(-1, 1, 256)
    b = torch.stack([ramp.expand(3, 256, 256), ramp[:, None].expand(3, 256, 256)])  # smooth, unlike `a`
    with torch.no_grad():
        want = ref(F.adaptive_avg_pool2d(a[:, :, 35:223, 32:220], (112, 112)))  # pSp's IDLoss.extract_feats
        assert torch.allclose(model.embed(a), want, atol=1e-5)
        sim = model.similarity(a, b)
        assert sim.shape == (2,) and torch.allclose(model.similarity(a, a), torch.ones(2), atol=1e-5)
        assert (sim < 0.9999).all()
        big = F.interpolate(a, size=(512, 512), mode="nearest")  # 2x nearest, pooled back exactly
        assert torch.allclose(model.embed(big), model.embed(a), atol=1e-5)
    prefixed = arcface_from_state_dict({f"module.{k}": v for k, v in sd.items()})
    assert all(torch.equal(x, y) for x, y in zip(prefixed.state_dict().values(), model.state_dict().values()))
    with pytest.raises(CheckpointError, match="layout"):
        arcface_from_state_dict({"weight": torch.zeros(1)})
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_arcface(tmp_path / "junk.pth")


# ---- device handling ----------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_methods_run_on_cuda_and_match_cpu(G, stats, target, perc, latent_avg, monkeypatch):
    """Random numbers are drawn on the CPU and moved, so a seed gives the same run on CUDA."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    import copy

    Gc, pc = copy.deepcopy(G).cuda(), copy.deepcopy(perc).cuda()
    opts = OptimizeOptions(steps=10, noise="optimize", w_avg_samples=SAMPLES)
    cpu = optimize_latent(G, target, opts, perceptual=perc, w_stats=stats, seed=1)
    gpu = optimize_latent(Gc, target, opts, perceptual=pc, seed=1)
    assert gpu.ws.device.type == "cpu" and gpu.image.device.type == "cpu"
    assert torch.allclose(gpu.ws, cpu.ws, atol=1e-3)
    enc = _tiny_encoder("BackboneEncoder", 6).cuda()
    r = encode(enc, Gc, target, latent_avg, kind="restyle_psp", iterations=2, resize_to=32)
    assert r.ws.device.type == "cpu" and len(r.steps) == 2
    snap = _snapshot(Gc)
    p = pivotal_tuning(Gc, target, PTIOptions(steps=3), perceptual=pc, pivot_ws=cpu.ws, seed=0)
    assert next(p.extra["generator"].parameters()).device.type == "cuda"
    _assert_unchanged(Gc, snap)
