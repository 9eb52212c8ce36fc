"""Tests for the procedural portrait renderer (shared/portraits.py): determinism, documented
factor distributions, agreement of the part map with the image, part placement, 3-D view
consistency (backward warp between two yaws), captions, and speed (slow)."""
from __future__ import annotations

import colorsys
import math
import time

import numpy as np
import pytest
import torch

from shared import portraits as P

PART = {name: i for i, name in enumerate(P.PART_NAMES)}


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _set(f: P.Factors, **values) -> P.Factors:
    """The same people with some factors overwritten (categoricals by name)."""
    vals = dict(f.values)
    for name, v in values.items():
        spec = next(s for s in P.FACTORS if s.name == name)
        if spec.kind == "categorical":
            vals[name] = torch.full((len(f),), spec.categories.index(v), dtype=torch.long)
        else:
            vals[name] = torch.full((len(f),), float(v))
    return P.Factors(vals)


def _interior(mask: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Pixels whose k x k neighbourhood lies inside mask [N,H,W] and inside the image (away
    from anti-aliased edges)."""
    outside = torch.nn.functional.pad(1 - mask.float().unsqueeze(1), [k // 2] * 4, value=1.0)
    return torch.nn.functional.max_pool2d(outside, k, 1).squeeze(1) == 0


# ----------------------------------------------------------------------------- determinism

def test_same_seed_same_portraits_and_different_seeds_differ():
    a, b, c = (P.render(P.sample_factors(12, s), 64) for s in (7, 7, 8))
    assert torch.equal(a.factors.to_vector(), b.factors.to_vector())
    assert torch.equal(a.img, b.img) and torch.equal(a.parts, b.parts)
    assert torch.equal(a.depth, b.depth)
    assert not torch.equal(a.factors.to_vector(), c.factors.to_vector())
    # every portrait differs from its counterpart of the other seed
    assert ((a.img - c.img).abs().flatten(1).amax(1) > 0.1).all()


def test_generator_is_advanced_and_no_global_rng_is_used():
    g = torch.Generator().manual_seed(3)
    f1, f2 = P.sample_factors(4, g), P.sample_factors(4, g)
    assert not torch.equal(f1.to_vector(), f2.to_vector())
    g = torch.Generator().manual_seed(3)
    assert torch.equal(P.sample_factors(4, g).to_vector(), f1.to_vector())
    with torch.random.fork_rng():
        torch.manual_seed(0)
        before = torch.rand(1)
        torch.manual_seed(0)
        P.render(P.sample_factors(2, 1), 32)
        assert torch.equal(torch.rand(1), before)  # the global generator was not consumed


def test_golden_values_of_seed_0():
    """Pinned numbers: a change here changes every trained model of the demo bundle."""
    out = P.render_seeds([0, 1], 64)
    vec = out.factors.to_vector()[0]
    torch.testing.assert_close(vec[:6], torch.tensor(
        [37.604240, 8.312795, 0.987815, 1.100979, 0.645024, 0.791148]), atol=1e-5, rtol=0)
    assert vec[13:].tolist() == [4.0, 4.0, 1.0, 0.0, 3.0, 0.0]
    torch.testing.assert_close(out.img[0, :, 30:33, 30], torch.tensor(
        [[0.020031, 0.018798, 0.017177], [-0.335525, -0.336328, -0.337384],
         [-0.563250, -0.563778, -0.564472]]), atol=1e-4, rtol=0)
    assert torch.bincount(out.parts[0].flatten(), minlength=9).tolist() == [
        2442, 1108, 478, 17, 19, 16, 16, 0, 0]
    assert P.caption(out.factors, 0) == ("a smiling person with grey hair in a bun and blue "
                                         "eyes, turned right, looking up, on a cyan background")


def test_portrait_does_not_depend_on_its_batch():
    many = P.render_seeds([3, 5, 11, 42], 64)
    one = P.render_seeds([11], 64)
    assert torch.equal(many.img[2], one.img[0]) and torch.equal(many.parts[2], one.parts[0])
    f = P.sample_factors(40, 0)  # mixed styles: rendered in sorted, differently-built chunks
    full, alone = P.render(f, 50, chunk=7), P.render(f.select([13, 31]), 50)
    assert torch.equal(full.img[[13, 31]], alone.img)
    assert torch.equal(full.parts[[13, 31]], alone.parts)
    torch.set_num_threads(2)  # threads split the pixel loops elsewhere: same bits
    two = P.render(f.select(slice(8, 16)), 50, chunk=8)
    assert torch.equal(two.img, full.img[8:16]) and torch.equal(two.depth, full.depth[8:16])


# ----------------------------------------------------------------------------- factors

def test_factor_samples_match_documented_distributions():
    n = 5000
    f = P.sample_factors(n, 123)
    for spec in P.FACTORS:
        x = f[spec.name]
        if spec.kind == "continuous":
            assert x.dtype == torch.float32
            width = spec.high - spec.low
            assert x.min() >= spec.low and x.max() <= spec.high, spec.name
            # uniform: mean within 4 standard errors, both ends reached, flat histogram
            se = width / math.sqrt(12 * n)
            assert abs(x.mean().item() - (spec.low + spec.high) / 2) < 4 * se, spec.name
            assert x.min() < spec.low + 0.01 * width and x.max() > spec.high - 0.01 * width
            hist = torch.histc(x, bins=5, min=spec.low, max=spec.high) / n
            assert (hist - 0.2).abs().max() < 4 * math.sqrt(0.2 * 0.8 / n), spec.name
        else:
            assert x.dtype == torch.int64 and len(spec.categories) == len(spec.probs)
            assert math.isclose(sum(spec.probs), 1.0)
            freq = torch.bincount(x, minlength=len(spec.categories)).double() / n
            assert len(freq) == len(spec.categories), spec.name
            for p, q in zip(spec.probs, freq.tolist()):
                assert abs(p - q) < 4 * math.sqrt(p * (1 - p) / n), (spec.name, p, q)


def test_factor_vector_layout_round_trips():
    f = P.sample_factors(6, 2)
    vec = f.to_vector()
    assert vec.shape == (6, len(P.FACTORS)) and vec.dtype == torch.float32
    for j, spec in enumerate(P.FACTORS):
        assert torch.equal(vec[:, j], f[spec.name].float())
    back = P.Factors.from_vector(vec)
    assert all(torch.equal(back[s.name], f[s.name]) for s in P.FACTORS)
    d = f.to_dict(0)
    assert list(d) == [s.name for s in P.FACTORS]
    assert d["hair_style"] in P.FACTORS[[s.name for s in P.FACTORS].index("hair_style")].categories
    with pytest.raises(ValueError):
        P.Factors.from_vector(vec[:, :-1])
    with pytest.raises(ValueError):
        P.Factors({"yaw": torch.zeros(2)})
    bad = dict(f.values)
    bad["hair_style"] = torch.full((6,), 9)
    with pytest.raises(ValueError, match="hair_style"):
        P.render(P.Factors(bad), 32)
    with pytest.raises(ValueError):
        P.render(f, 4)
    assert torch.equal(P.factors_for_seeds([4, 2]).select(1).to_vector(),
                       P.sample_factors(1, 2).to_vector())


def test_with_view_changes_only_the_view():
    f = P.sample_factors(5, 9)
    g = P.with_view(f, yaw=25.0, pitch=torch.linspace(-10, 10, 5))
    assert torch.equal(g["yaw"], torch.full((5,), 25.0))
    assert torch.equal(g["pitch"], torch.linspace(-10, 10, 5))
    assert all(torch.equal(g[s.name], f[s.name])
               for s in P.FACTORS if s.name not in ("yaw", "pitch"))


# ----------------------------------------------------------------------------- images and parts

def test_output_shapes_ranges_and_sizes_agree():
    f = P.sample_factors(16, 4)
    small, big = P.render(f, 64), P.render(f, 128)
    assert small.img.shape == (16, 3, 64, 64) and big.img.shape == (16, 3, 128, 128)
    assert small.parts.shape == (16, 64, 64) and small.parts.dtype == torch.int64
    assert small.img.dtype == torch.float32
    assert small.img.min() >= -1 and small.img.max() <= 1
    assert small.parts.min() >= 0 and small.parts.max() < len(P.PART_NAMES)
    # the two sizes are the same picture: 128 box-downsampled matches 64 up to edge pixels
    pooled = torch.nn.functional.avg_pool2d(big.img, 2)
    assert (pooled - small.img).abs().mean() < 0.02
    agree = (big.parts[:, ::2, ::2] == small.parts).float().mean()
    assert agree > 0.93


def test_background_pixels_have_the_background_colour():
    f = P.sample_factors(24, 5)
    out = P.render(f, 64)
    bg = torch.tensor([colorsys.hsv_to_rgb(float(h), 0.35, 0.88) for h in f["background_hue"]])
    bg = (bg * 2 - 1)[:, :, None, None].expand_as(out.img)
    inner = _interior(out.parts == 0).unsqueeze(1).expand_as(out.img)
    assert inner.sum() > 0.2 * inner.numel()
    torch.testing.assert_close(out.img[inner], bg[inner].float(), atol=1e-6, rtol=0)
    assert torch.isinf(out.depth[out.parts == 0]).all()
    assert torch.isfinite(out.depth[out.parts > 0]).all()
    # and no foreground pixel well inside a part has the background colour
    fg = _interior(out.parts > 0).unsqueeze(1).expand_as(out.img)
    far = (out.img - bg).abs().amax(1, keepdim=True).expand_as(fg)[fg] > 1e-3
    assert far.float().mean() > 0.99


def test_hair_and_skin_pixels_are_shaded_versions_of_their_colours():
    """Inside a hair or skin region the colour is the factor's colour times one Lambert factor
    in [ambient, 1], so the per-channel ratio is the same in all three channels."""
    f = _set(P.sample_factors(24, 6), hair_color="red", beard="none", glasses="none")
    out = P.render(f, 128)
    rgb = (out.img + 1) / 2
    hair = P._HAIR[3].clone()
    tone = f["skin_tone"] * (len(P._SKIN) - 1)
    lo = tone.floor().long().clamp(max=len(P._SKIN) - 2)
    skin = torch.lerp(P._SKIN[lo], P._SKIN[lo + 1], (tone - lo).unsqueeze(1))
    for label, ref in ((PART["hair"], hair.expand(24, 3)), (PART["skin"], skin)):
        inner = _interior(out.parts == label, 5)
        ratio = rgb / ref[:, :, None, None]                          # [N,3,H,W]
        r = ratio.permute(0, 2, 3, 1)[inner]                         # [M,3]
        assert len(r) > 1000
        assert (r.amax(1) - r.amin(1)).quantile(0.99) < 0.02, P.PART_NAMES[label]
        assert r.min() > 0.35 and r.max() < 1.001, P.PART_NAMES[label]


def test_parts_appear_where_expected_on_frontal_faces():
    f = P.with_view(P.sample_factors(48, 10), yaw=0.0, pitch=0.0)
    out = P.render(f, 64)
    rows = torch.arange(64.0).view(1, 64, 1).expand(48, 64, 64)
    cols = torch.arange(64.0).view(1, 1, 64).expand(48, 64, 64)
    for i in range(48):
        parts, d = out.parts[i], f.to_dict(i)

        def row(label: int) -> float:
            return rows[i][parts == label].mean().item()

        for name in ("skin", "eyes", "brows", "nose", "mouth"):
            assert (parts == PART[name]).sum() >= 3, (i, name)
        assert row(PART["brows"]) < row(PART["eyes"]) < row(PART["nose"]) < row(PART["mouth"])
        eye_cols = cols[i][parts == PART["eyes"]]
        assert (eye_cols < 31.5).sum() >= 2 and (eye_cols > 31.5).sum() >= 2  # two eyes
        assert abs(eye_cols.mean().item() - 31.5) < 1.5                        # symmetric
        assert ((parts == PART["hair"]).sum() > 20) == (d["hair_style"] != "bald"), i
        assert ((parts == PART["glasses"]).sum() > 10) == (d["glasses"] != "none"), i
        assert ((parts == PART["beard"]).sum() > 10) == (d["beard"] == "beard"), i
        if d["hair_style"] != "bald":  # hair tops the head (long hair also hangs below)
            assert rows[i][parts == PART["hair"]].min() < rows[i][parts == PART["brows"]].min()
        if d["beard"] == "beard":
            assert row(PART["beard"]) > row(PART["eyes"])


def test_view_signs_and_light_direction():
    f = _set(P.sample_factors(8, 11), pitch=0, glasses="none", light_elevation=0)
    cols = torch.arange(64.0).expand(64, 64)
    for yaw, side in ((30.0, 1), (-30.0, -1)):
        out = P.render(P.with_view(f, yaw=yaw), 64)
        for i in range(8):
            nose = cols[out.parts[i] == PART["nose"]].mean()
            assert side * (nose - 31.5) > 3, "positive yaw turns the nose to the image right"
    up, down = (P.render(P.with_view(f, yaw=0.0, pitch=p), 64) for p in (20.0, -20.0))
    for i in range(8):  # positive pitch looks up: the face's features rise in the image
        for name in ("eyes", "mouth"):
            rise = (cols.T[down.parts[i] == PART[name]].mean()
                    - cols.T[up.parts[i] == PART[name]].mean())
            assert rise > 2, (i, name)
    lum = {}
    for az in (-60.0, 60.0):
        out = P.render(_set(P.with_view(f, yaw=0.0), light_azimuth=az), 64)
        face = out.parts == PART["skin"]
        bright = out.img.mean(1)
        lum[az] = [(bright[i][:, 32:][face[i][:, 32:]].mean() -
                    bright[i][:, :32][face[i][:, :32]].mean()).item() for i in range(8)]
    assert all(x > 0.05 for x in lum[60.0]) and all(x < -0.05 for x in lum[-60.0])


def test_back_facing_features_are_hidden():
    """Seen from behind (yaw 180) no face part is visible; in profile (yaw 90) one eye at most."""
    f = P.sample_factors(16, 12)
    back = P.render(P.with_view(f, yaw=180.0, pitch=0.0), 64)
    for name in ("eyes", "brows", "nose", "mouth", "glasses"):
        assert (back.parts == PART[name]).sum() == 0, name
    side = P.render(P.with_view(f, yaw=90.0, pitch=0.0), 64)
    for i in range(16):
        eye_cols = torch.nonzero(side.parts[i] == PART["eyes"])[:, 1]
        assert len(eye_cols) > 0 and eye_cols.max() - eye_cols.min() < 8  # one eye, at the front
        assert eye_cols.float().mean() > 36  # the face looks to the image right


# ----------------------------------------------------------------------------- view consistency

def _warp_labels(src: P.RenderOutput, dst: P.RenderOutput, size: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward-warp src's part map into dst's view with the documented geometry: a dst pixel
    with depth d is the world point (u, v, CAMERA_Z - d); its head-frame point is
    R_dst^T (X - HEAD_CENTER); seen from src it is at HEAD_CENTER + R_src p. Returns the warped
    labels [N,H,W] and the mask of pixels visible in both views (depths agree within 0.04)."""
    s = P.VIEW_HALF_EXTENT
    centres = (torch.arange(size, dtype=torch.float64) + 0.5) * (2 * s / size) - s
    u = centres.view(1, 1, size).expand(len(dst.parts), size, size)
    v = centres.flip(0).view(1, size, 1).expand(len(dst.parts), size, size)
    z = P.CAMERA_Z - dst.depth.double()
    centre = torch.tensor(P.HEAD_CENTER, dtype=torch.float64).view(1, 3, 1, 1)
    world = torch.stack([u, v, z], 1) - centre                        # [N,3,H,W]

    def rot(f: P.Factors) -> torch.Tensor:  # R_y(yaw) R_x(pitch) as documented, written anew
        a, b = np.deg2rad(f["yaw"].double().numpy()), np.deg2rad(f["pitch"].double().numpy())
        ry = np.stack([np.stack([np.cos(a), 0 * a, np.sin(a)], -1),
                       np.stack([0 * a, 1 + 0 * a, 0 * a], -1),
                       np.stack([-np.sin(a), 0 * a, np.cos(a)], -1)], -2)
        rx = np.stack([np.stack([1 + 0 * b, 0 * b, 0 * b], -1),
                       np.stack([0 * b, np.cos(b), np.sin(b)], -1),
                       np.stack([0 * b, -np.sin(b), np.cos(b)], -1)], -2)
        return torch.from_numpy(ry @ rx)

    m = rot(src.factors) @ rot(dst.factors).transpose(1, 2)           # dst world -> src world
    xs = torch.einsum("nij,njhw->nihw", m, torch.nan_to_num(world, posinf=0.0)) + centre
    col = ((xs[:, 0] + s) / (2 * s) * size - 0.5).round().long()
    row = ((s - xs[:, 1]) / (2 * s) * size - 0.5).round().long()
    inside = (col >= 0) & (col < size) & (row >= 0) & (row < size) & torch.isfinite(z)
    col, row = col.clamp(0, size - 1), row.clamp(0, size - 1)
    idx = torch.arange(len(dst.parts)).view(-1, 1, 1)
    warped = src.parts[idx, row, col]
    src_z = P.CAMERA_Z - src.depth.double()[idx, row, col]
    visible = inside & ((src_z - xs[:, 2]).abs() < 0.04)
    return warped, visible


def _part_ious(warped, parts, mask) -> dict[str, float]:
    out = {}
    for name in P.PART_NAMES[2:]:
        a, b = (warped == PART[name]) & mask, (parts == PART[name]) & mask
        union = (a | b).sum().item()
        if union:
            out[name] = (a & b).sum().item() / union
    return out


@pytest.mark.parametrize("seed,yaw_a,yaw_b,pitch", [(21, -20.0, 15.0, 8.0), (5, -40.0, 40.0, 0.0),
                                                   (7, 0.0, 30.0, -15.0)])
def test_same_person_at_two_yaws_agrees_after_3d_warp(seed, yaw_a, yaw_b, pitch):
    """Render 12 people at two yaws (128 px) and warp the first part map into the second view
    with the known geometry; parts that move with the head must land on the same parts.
    Margins: nearest-pixel resampling moves a boundary by up to half a pixel, so a part k px
    thick keeps IoU >= about (k - 1) / (k + 1) even if every boundary pixel flips: >= 0.75 for
    eyes, nose, mouth, hair and beard (>= 7 px), >= 0.5 for brows and frames (3-4 px). We
    assert 0.8 and 0.7 (measured: 0.87-1.0 for all parts at these views), and that a plain
    overlay of the two maps (no rotation) does much worse."""
    size = 128
    f = _set(P.sample_factors(12, seed), pitch=pitch)
    a, b = P.render(P.with_view(f, yaw=yaw_a), size), P.render(P.with_view(f, yaw=yaw_b), size)
    warped, visible = _warp_labels(a, b, size)
    head = visible & (b.parts >= 2)
    assert head.sum() > 15000
    agree = (warped[head] == b.parts[head]).float().mean().item()
    ious = _part_ious(warped, b.parts, visible)
    assert agree > 0.97, agree
    assert set(ious) >= {"eyes", "brows", "nose", "mouth", "hair"}
    for name, iou in ious.items():
        assert iou >= (0.7 if name in ("brows", "glasses") else 0.8), (name, iou, ious)
    plain = _part_ious(a.parts, b.parts, visible & torch.isfinite(a.depth))
    assert plain["eyes"] < ious["eyes"] - 0.3 and plain["nose"] < ious["nose"] - 0.3


def test_pitch_change_is_also_consistent():
    size = 128
    f = _set(P.sample_factors(8, 22), yaw=10.0)
    a, b = P.render(P.with_view(f, pitch=-15.0), size), P.render(P.with_view(f, pitch=12.0), size)
    warped, visible = _warp_labels(a, b, size)
    head = visible & (b.parts >= 2)
    assert (warped[head] == b.parts[head]).float().mean() > 0.95


# ----------------------------------------------------------------------------- captions

def test_caption_mentions_the_factors():
    f = _set(P.sample_factors(1, 0), smile=0.3, hair_style="short", hair_color="red",
             glasses="round", glasses_color="black", yaw=-30, pitch=0, beard="none",
             mouth_open=0.1, background_hue=0.6, eye_color="green")
    text = P.caption(f, 0)
    assert text.startswith("a smiling person with short red hair")
    for word in ("round black glasses", "green eyes", "turned left", "on a blue background"):
        assert word in text, text
    assert "beard" not in text and "open mouth" not in text
    f = P.sample_factors(300, 1)
    for i, text in enumerate(P.captions(f)):
        d = f.to_dict(i)
        assert ("glasses" in text) == (d["glasses"] != "none"), text
        assert ("beard" in text) == (d["beard"] == "beard"), text
        assert (d["hair_style"] == "bald") == ("bald" in text), text
        if d["hair_style"] != "bald":
            assert d["hair_color"] in text, text
        assert f"{d['eye_color']} eyes" in text
        assert ("smiling" in text) == (d["smile"] > 0.15), text
        assert ("frowning" in text) == (d["smile"] < -0.15), text
        assert ("turned right" in text) == (d["yaw"] > 12), text


# ----------------------------------------------------------------------------- speed

@pytest.mark.slow
def test_render_speed_at_64px():
    """Target: >= 200 portraits/s at 64x64 on one core. The shared 2-core test machine is busy,
    so the throughput is measured in process CPU time with one thread (what one idle core
    gives) and asserted with a 1.5x margin; the wall-clock figure is printed too."""
    f = P.sample_factors(256, 0)
    P.render(f.select(slice(0, 32)), 64)
    best_cpu = best_wall = 0.0
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        P.render(f, 64)
        best_wall = max(best_wall, 256 / (time.perf_counter() - t0))
        best_cpu = max(best_cpu, 256 / (time.process_time() - c0))
    print(f"portraits 64px, 1 thread: {best_cpu:.0f} img/s (CPU time), "
          f"{best_wall:.0f} img/s (wall)")
    assert best_cpu >= 200 / 1.5
